"""Numpy-style docstrings for the API reference, without napoleon's reading of attributes.

napoleon turns the first line of an attribute's or a property's docstring into a type when it
contains a colon: ``"Deviance residuals: y minus the fitted mean."`` would be printed as the type
"Deviance residuals" (and, with ``nitpicky``, warned about as a missing cross-reference target).
mlteach's property docstrings are plain sentences, so this extension keeps napoleon for functions,
classes and methods (their Parameters / Returns / Attributes sections) and leaves attribute and
property docstrings as written. It swaps napoleon's ``autodoc-process-docstring`` listener for a
wrapper once every extension is loaded.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.ext.napoleon import _process_docstring

EVENT = "autodoc-process-docstring"
PLAIN_KINDS = {"attribute", "property"}


def _process_unless_attribute(app: Sphinx, what: str, name: str, obj: object, options: object,
                              lines: list[str]) -> None:
    if what not in PLAIN_KINDS:
        _process_docstring(app, what, name, obj, options, lines)


def _swap_listener(app: Sphinx) -> None:
    for listener in list(app.events.listeners[EVENT]):
        if listener.handler is _process_docstring:
            app.disconnect(listener.id)
            app.connect(EVENT, _process_unless_attribute, priority=listener.priority)


def setup(app: Sphinx) -> dict[str, object]:
    app.setup_extension("sphinx.ext.napoleon")
    app.connect("builder-inited", _swap_listener)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
