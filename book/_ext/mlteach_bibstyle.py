"""Author-year citations in round brackets: "Bell and Jones (2015)", "(Mundlak, 1978; Hausman, 1978)".

sphinxcontrib-bibtex's built-in ``author_year`` style prints square brackets. This registers the
same style with round brackets under the name ``author_year_round`` (the documented way to
customise it: a dataclass subclass registered with sphinxcontrib-bibtex's plugin store), selected in ``_config.yml``
by ``bibtex_reference_style: author_year_round``.
"""

import dataclasses

from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

_GROUP = "sphinxcontrib.bibtex.style.referencing"
_NAME = "author_year_round"


def _round() -> BracketStyle:
    return BracketStyle(left="(", right=")", sep="; ")


@dataclasses.dataclass
class RoundAuthorYearReferenceStyle(AuthorYearReferenceStyle):
    """``author_year`` with parentheses and ``;`` between several works."""

    bracket_parenthetical: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_textual: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_author: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_label: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_year: BracketStyle = dataclasses.field(default_factory=_round)


def setup(app):
    register_plugin(_GROUP, _NAME, RoundAuthorYearReferenceStyle, force=True)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
