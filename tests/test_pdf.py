"""`make pdf` (tools/make_pdf.py): the printed book has every chapter and its equations.

The whole book is printed from the HTML build into a temporary folder, as `make pdf` does, and
read back with pdftotext (poppler-utils). Skips, saying why, without a built book or Chromium.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
sys.path.insert(0, str(ROOT / "tools"))
import make_pdf  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not (HTML / "index.html").exists(),
                       reason="no built book in _build/html: run `make book` first"),
    pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                       reason="no Chromium: `apt-get install chromium` (.ci/run does this)"),
    pytest.mark.skipif(not shutil.which("pdftotext"),
                       reason="no pdftotext: `apt-get install poppler-utils`"),
]


def text_of(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                         text=True, check=True).stdout
    return " ".join(out.split())


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pdf")
    make_pdf.make_pdf(HTML, out)
    return out


def chapter_titles() -> dict[str, str]:
    titles = {}
    for page in make_pdf.toc_pages():
        if page.startswith("notebooks/"):
            soup = BeautifulSoup((HTML / f"{page}.html").read_text(encoding="utf-8"),
                                 "html.parser")
            h1 = soup.select_one("article h1")
            titles[Path(page).name] = " ".join(h1.get_text().replace("#", "").split())
    return titles


def test_every_page_is_in_the_book_with_a_bookmark(printed):
    from pypdf import PdfReader

    reader = PdfReader(str(printed / "mlteach.pdf"))
    pages = make_pdf.toc_pages()
    assert len(reader.outline) == len(pages)
    assert len(reader.pages) > 3 * len(pages)
    assert reader.metadata.title == make_pdf._book_title()


def test_each_chapter_title_and_its_equations(printed):
    whole = text_of(printed / "mlteach.pdf")
    titles = chapter_titles()
    assert len(titles) >= 8
    for name, title in titles.items():
        assert title in whole, f"chapter title {title!r} not in the book's PDF"
        chapter = text_of(printed / "chapters" / f"{name}.pdf")
        # The theme's print header (title and contents) comes first, then the numbered title.
        assert title in chapter[:3000], (name, chapter[:300])
        number = title.split(".")[0]
        # Equations are typeset, not raw TeX: numbered displays read "(2.1)", and no math
        # delimiter of the HTML (\( \) \[ \], which MathJax replaces) is left in the text.
        # (TeX inside code, such as a plot label "$\\tau$", is code, not a failed equation.)
        source = (HTML / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
        if 'class="math' in source and "eqno" in source:
            assert f"({number}.1)" in chapter, f"{name}: no equation ({number}.1) in its PDF"
        raw = re.findall(r".{20}(?:\\\(|\\\[|\\begin\{).{20}", chapter)
        assert not raw, f"{name}: raw TeX in the PDF: {raw[:3]}"
        # Solutions print open: the first solution's text is in the chapter's PDF.
        soup = BeautifulSoup(source, "html.parser")
        prose = [p for p in soup.select("div.solution p")
                 if not p.select(".math, code, a") and len(p.get_text().split()) >= 6]
        if prose:
            words = " ".join(prose[0].get_text().split()[:6])
            assert words in chapter, f"{name}: solution text {words!r} not printed"


def test_a_rendered_equation_reads_as_mathematics(printed):
    """Equation (2.1), the random intercept model, as MathJax drew it (Greek letters, indices)."""
    chapter = text_of(printed / "chapters" / "02-random-intercepts.pdf")
    assert re.search(r"Y ij = α \+ βX ij \+ μ j \+ ε ij", chapter), chapter[:2000]
    assert "(2.1)" in chapter


def test_clear_errors(tmp_path):
    with pytest.raises(make_pdf.PdfError, match="run `make book` first"):
        make_pdf.make_pdf(tmp_path, tmp_path / "out")
