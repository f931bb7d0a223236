"""The API reference (book/api/): generated from the docstrings when the book is built.

Static checks of the built pages: every estimator family has its page; each page shows the
signatures and parameter descriptions the docstrings carry (so a docstring that autodoc could
not import, or a page that lost its directives, fails here); the glossary's "In mlteach:" names
link to their entries; and the package ships ``py.typed`` so editors and type checkers read the
annotations the pages print. Skips, saying why, when the book has not been built (``make test``
builds it first).
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import pytest

import mlteach

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("MLTEACH_BOOK_HTML") or ROOT / "_build" / "html")
API = SITE / "book" / "api"

built = pytest.mark.skipif(not (API / "index.html").exists(),
                           reason="no built book in _build/html: run `make book` first "
                                  "(`make test` does)")

# page -> (objects whose entries it must hold, a phrase from one of their parameter lists)
PAGES = {
    "ols": (["mlteach.ols", "mlteach.OLSResult"], "cluster"),
    "lmm": (["mlteach.lmm", "mlteach.LMMResult"], "reml"),
    "glmm": (["mlteach.glmm", "mlteach.GLMMResult"], "nagq"),
    "panel": (["mlteach.within", "mlteach.swamy_arora", "mlteach.hausman",
               "mlteach.mundlak_test"], "group"),
    "lrt": (["mlteach.lrt", "mlteach.LRTResult"], "boundary"),
    "design": (["mlteach.center", "mlteach.group_mean", "mlteach.mundlak",
                "mlteach.decompose_variance"], "group"),
    "pooling": (["mlteach.no_pooling", "mlteach.shrinkage_table"], "group"),
    "plots": (["mlteach.plots.caterpillar"], "fit"),
    "simulate": (["mlteach.simulate_clustered"], "seed"),
    "data": (["mlteach.load", "mlteach.list_datasets"], "name"),
    "exercises": (["mlteach.check"], "answer"),
    "errors": (["mlteach.errors.MlteachError", "mlteach.errors.MlteachWarning"], "MlteachError"),
}


def _text(page: str) -> str:
    from bs4 import BeautifulSoup
    html = (API / f"{page}.html").read_text(encoding="utf-8")
    return BeautifulSoup(html, "html.parser")


@built
@pytest.mark.parametrize("page", sorted(PAGES))
def test_each_family_has_a_generated_page(page):
    objects, phrase = PAGES[page]
    soup = _text(page)
    ids = {tag["id"] for tag in soup.select("dt[id]")}
    for name in objects:
        assert name in ids, f"book/api/{page}: no entry for {name} (has {sorted(ids)[:8]}...)"
    body = soup.get_text(" ")
    assert phrase.lower() in body.lower(), f"book/api/{page}: no mention of {phrase!r}"


@built
def test_lmm_entry_shows_signature_and_parameters():
    soup = _text("lmm")
    entry = soup.find("dt", id="mlteach.lmm")
    signature = entry.get_text(" ")
    for argument in ("formula", "data", "reml"):
        assert argument in signature, f"signature lacks {argument!r}: {signature!r}"
    described = entry.find_next_sibling("dd").get_text(" ")
    assert re.search(r"Parameters", described), "no Parameters field list for mlteach.lmm"
    assert "REML" in described and "Returns" in described


@built
def test_results_document_their_attributes():
    """Attribute sections become entries: fixef, bse, ranef on the LMM result."""
    ids = {tag["id"] for tag in _text("lmm").select("dt[id]")}
    for attribute in ("fixef", "bse", "ranef"):
        assert f"mlteach.LMMResult.{attribute}" in ids, attribute


@built
def test_glossary_names_link_to_the_reference():
    from bs4 import BeautifulSoup
    soup = BeautifulSoup((SITE / "book" / "glossary.html").read_text(encoding="utf-8"),
                         "html.parser")
    links = {a["href"].split("#")[-1] for a in soup.select("a.reference.internal[href*='api/']")}
    for name in ("mlteach.ols", "mlteach.lmm", "mlteach.glmm", "mlteach.within",
                 "mlteach.mundlak"):
        assert name in links, f"glossary does not link {name} (links: {sorted(links)[:10]})"


def test_package_ships_py_typed():
    assert resources.files(mlteach).joinpath("py.typed").is_file()
    assert '"mlteach" = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()
