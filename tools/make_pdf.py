#!/usr/bin/env python
"""Print the HTML book to PDF: the whole book and one PDF per chapter (`make pdf`).

    python tools/make_pdf.py                        # _build/html -> _build/pdf
    python tools/make_pdf.py --html DIR --out DIR   # another build, another folder
    python tools/make_pdf.py --only notebooks/02-random-intercepts   # one page (tests)

The HTML build is the book as readers see it (MathJax equations, figures, glued numbers), so
the PDF is printed from it rather than rebuilt through LaTeX: Debian's Chromium, driven by
Playwright (both already used by the browser tests), opens every page of ``_toc.yml`` in order
from a local web server, waits until MathJax has typeset the equations, opens the collapsed
solutions and dropdowns (a printed book shows them; hidden figure code stays hidden), and prints the page with the print rules
of ``book/_static/mlteach.css`` (no sidebars, buttons or navigation; equations and figures not
split across pages). pypdf joins the pages into ``mlteach.pdf`` with one bookmark per page;
each chapter is also written alone as ``chapters/<name>.pdf``.

Writes ``<out>/mlteach.pdf`` and ``<out>/chapters/*.pdf``; prints the page count and time.
Needs Chromium (``apt-get install chromium``) and a built book (``make book``).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
import time
from pathlib import Path

import yaml
from pypdf import PdfReader, PdfWriter

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# A4, printed at 85 % of the screen size (the screen font is large for paper); the footer
# carries the page's title and number.
PAGE = {"format": "A4", "scale": 0.85, "margin": {"top": "18mm", "bottom": "18mm", "left": "16mm",
                                   "right": "16mm"}}
FOOTER = ("<div style='font-size:8px;width:100%;padding:0 16mm;color:#444;display:flex;"
          "justify-content:space-between'><span class='title'></span>"
          "<span><span class='pageNumber'></span> / <span class='totalPages'></span></span></div>")


class PdfError(RuntimeError):
    """The book cannot be printed (no build, no browser); the message says what to do."""


def toc_pages(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Every page of the table of contents, in reading order, as paths without suffix."""
    spec = yaml.safe_load(toc.read_text(encoding="utf-8"))
    pages = [spec["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in spec.get("parts", []):
        walk(part.get("chapters"))
    walk(spec.get("chapters"))
    return pages


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(html: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _print_page(browser, url: str, target: Path) -> str:
    """Print one page to `target`; returns its title."""
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    try:
        page.goto(url, wait_until="load")
        if page.evaluate("() => !!document.querySelector('article .math')"):
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("() => MathJax.startup.promise")
        # Solutions (their prose and code) and dropdowns print open; code the book hides behind
        # "Show code cell source" (figure code) stays hidden, as on screen. Images load first.
        page.evaluate("""() => {
            document.querySelectorAll('.tag_solution details').forEach(d => d.open = true);
            document.querySelectorAll('.toggle-hidden, .toggle-details__container')
                .forEach(e => e.classList.remove('toggle-hidden'));
        }""")
        page.wait_for_function("() => [...document.images].every(i => i.complete)")
        page.emulate_media(media="print")
        title = page.evaluate(
            "() => (document.querySelector('article h1') || {}).textContent || document.title")
        page.pdf(path=str(target), print_background=True, display_header_footer=True,
                 header_template="<span></span>", footer_template=FOOTER, **PAGE)
        return " ".join(title.replace("#", "").split())
    finally:
        page.close()


def make_pdf(html: Path = ROOT / "_build" / "html", out: Path = ROOT / "_build" / "pdf",
             only: list[str] | None = None) -> Path:
    """Print the pages of `html` (all of ``_toc.yml``, or `only`) and join them; returns the
    path of the whole-book PDF."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise PdfError("make pdf prints the HTML book with Chromium, which is not installed: "
                       "`apt-get install chromium` (Debian), then run `make pdf` again.")
    if not (html / "index.html").exists():
        raise PdfError(f"No HTML book in {html}: run `make book` first (`make pdf` does).")
    pages = only or toc_pages()
    missing = [p for p in pages if not (html / f"{p}.html").exists()]
    if missing:
        raise PdfError(f"The HTML build lacks {missing[:3]}: rebuild it with `make book`.")
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    (out / "chapters").mkdir(exist_ok=True)
    parts = out / "pages"
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir()
    server, base = _serve(html)
    printed: list[tuple[str, str, Path]] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                for i, name in enumerate(pages):
                    target = parts / f"{i:03d}.pdf"
                    title = _print_page(browser, f"{base}{name}.html", target)
                    printed.append((name, title, target))
            finally:
                browser.close()
    finally:
        server.shutdown()
    book = PdfWriter()
    for name, title, path in printed:
        start = len(book.pages)
        book.append(str(path))
        book.add_outline_item(title=title, page_number=start)
        if name.startswith("notebooks/"):
            shutil.copy2(path, out / "chapters" / f"{Path(name).name}.pdf")
    book.add_metadata({"/Title": _book_title(), "/Author": "The mlteach authors"})
    whole = out / "mlteach.pdf"
    with open(whole, "wb") as fh:
        book.write(fh)
    shutil.rmtree(parts)
    return whole


def _book_title() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return str(config.get("title", "mlteach"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "pdf")
    parser.add_argument("--only", nargs="*", help="pages to print (paths as in _toc.yml)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        whole = make_pdf(args.html, args.out, args.only)
    except PdfError as error:
        print(f"make pdf: {error}", file=sys.stderr)
        return 1
    n = len(PdfReader(str(whole)).pages)
    chapters = sorted((args.out / "chapters").glob("*.pdf"))
    print(f"Wrote {whole} ({n} pages) and {len(chapters)} chapter PDFs in "
          f"{args.out / 'chapters'} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
