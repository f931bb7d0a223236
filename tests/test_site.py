"""The rendered book, checked as a reader sees it (issue #9).

Static checks read every page of ``_build/html``: internal links and anchors resolve, images
exist, figures are opaque (legible in dark mode), and no page loads MathJax from a CDN. Browser
checks serve the site on localhost and drive Debian's headless Chromium with Playwright: on
every chapter page the equations are typeset by MathJax, every figure has loaded, glossary and
citation links exist, exercise solutions open and close, nothing is logged to the console as an
error, and nothing overflows a phone's width. Screenshots of two pages are saved as artefacts in
``_build/test-artifacts``.

``make test`` builds the book first. Run alone, these tests skip (with the reason) when the book
has not been built or when no Chromium is installed.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
ARTIFACTS = ROOT / "_build" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not (SITE / "index.html").exists(),
                                reason="no built book in _build/html: run `make book` first "
                                       "(`make test` does)")


def _pages() -> list[Path]:
    return sorted(p for p in SITE.rglob("*.html") if "_static" not in p.parts
                  and p.name not in {"genindex.html", "search.html"})


def _chapters() -> list[Path]:
    return sorted((SITE / "notebooks").glob("*.html"))


@functools.lru_cache(maxsize=None)
def _soup(path: Path):
    from bs4 import BeautifulSoup
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


@functools.lru_cache(maxsize=None)
def _anchors(path: Path) -> frozenset[str]:
    soup = _soup(path)
    return frozenset(t.get("id") for t in soup.find_all(id=True)) | frozenset(
        t.get("name") for t in soup.find_all("a", attrs={"name": True}))


def _local_target(page: Path, href: str) -> tuple[Path, str] | None:
    if href.startswith(("http://", "https://", "mailto:", "javascript:", "data:")):
        return None
    parts = urlsplit(href)  # drops ?v=... cache busters
    target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
    return target, unquote(parts.fragment)


# ------------------------------------------------------------------ static checks, no browser


def test_every_internal_link_and_anchor_resolves():
    broken = []
    for page in _pages():
        for tag in _soup(page).find_all("a", href=True):
            found = _local_target(page, tag["href"])
            if found is None:
                continue
            target, fragment = found
            if not target.exists():
                broken.append(f"{page.relative_to(SITE)} -> {tag['href']} (no such file)")
            elif fragment and target.suffix == ".html" and fragment not in _anchors(target):
                broken.append(f"{page.relative_to(SITE)} -> {tag['href']} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:40])


def test_every_image_and_script_is_shipped_locally():
    missing, remote_math = [], []
    for page in _pages():
        soup = _soup(page)
        for tag, attr in (("img", "src"), ("script", "src"), ("link", "href")):
            for node in soup.find_all(tag, attrs={attr: True}):
                ref = node[attr]
                if "mathjax" in ref.lower() and ref.startswith(("http", "//")):
                    remote_math.append(f"{page.relative_to(SITE)}: {ref}")
                found = _local_target(page, ref)
                if found and not found[0].exists():
                    missing.append(f"{page.relative_to(SITE)}: {ref}")
    assert not remote_math, "MathJax must load from the local copy:\n" + "\n".join(remote_math)
    assert not missing, "missing local files:\n" + "\n".join(missing[:40])


def test_figures_are_opaque_so_dark_mode_keeps_them_legible():
    from PIL import Image
    figures = sorted((SITE / "_images").glob("*.png"))
    assert figures, "the chapters should have figures"
    see_through = []
    for path in figures:
        with Image.open(path) as image:
            if image.mode in ("RGBA", "LA") and image.getextrema()[-1][0] < 255:
                see_through.append(path.name)
    assert not see_through, f"figures with transparent pixels: {see_through}"


def test_chapters_link_the_glossary_and_the_bibliography():
    for page in _chapters():
        links = [a["href"] for a in _soup(page).find_all("a", href=True)]
        assert any("glossary.html#term-" in h for h in links), f"{page.name}: no glossary link"
        assert any("references.html#id" in h for h in links), f"{page.name}: no citation link"


def test_launch_and_download_buttons_point_at_real_notebooks():
    for page in _chapters():
        html = page.read_text(encoding="utf-8")
        stem = page.stem
        assert f"_sources/notebooks/{stem}.ipynb" in html, f"{page.name}: no .ipynb download"
        assert (SITE / "_sources" / "notebooks" / f"{stem}.ipynb").exists()
        assert f"notebooks/{stem}.ipynb" in html and "mybinder.org" in html, \
            f"{page.name}: no Binder launch button"
        assert "colab.research.google.com" in html, f"{page.name}: no Colab launch button"


# ------------------------------------------------------------------ browser checks


@pytest.fixture(scope="module")
def site_url():
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium: install Debian's browser with `apt-get install chromium` "
                    "(.ci/run does this in CI)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _open(browser, url: str, width: int = 1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status}: {resp.url}")
            if resp.status >= 400 else None)
    page.goto(url, wait_until="load")
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => MathJax.startup.promise")
    return page, problems


@pytest.mark.browser
@pytest.mark.parametrize("chapter", [p.name for p in _chapters()] or ["<none>"])
def test_chapter_page_in_a_browser(browser, site_url, chapter):
    if chapter == "<none>":
        pytest.skip("no chapter pages in the build")
    url = urljoin(site_url, f"notebooks/{chapter}")
    page, problems = _open(browser, url)
    try:
        maths = page.evaluate("""() => {
            const all = [...document.querySelectorAll('article .math')];
            return {total: all.length,
                    typeset: all.filter(m => m.querySelector('mjx-container')).length,
                    errors: document.querySelectorAll('mjx-merror').length};
        }""")
        assert maths["total"] > 0, "the chapter should have equations"
        assert maths["typeset"] == maths["total"], f"equations not rendered by MathJax: {maths}"
        assert maths["errors"] == 0, f"MathJax reported TeX errors: {maths}"

        images = page.evaluate("""async () => {
            const imgs = [...document.querySelectorAll('article img')];
            await Promise.all(imgs.map(i => i.decode().catch(() => null)));
            return imgs.map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}));
        }""")
        assert images, "the chapter should have figures"
        assert all(i["ok"] for i in images), f"figures that did not load: {images}"

        solutions = page.locator("div.solution.dropdown")
        count = solutions.count()
        assert count >= 4, f"expected at least four exercise solutions, found {count}"
        first = solutions.first
        body = first.locator("section, div.section, p").last
        first.scroll_into_view_if_needed()
        assert not body.is_visible(), "a solution should start hidden"
        first.locator(".toggle-button, button").first.click()
        body.wait_for(state="visible", timeout=5000)
        first.locator(".toggle-button, button").first.click()
        body.wait_for(state="hidden", timeout=5000)

        assert not problems, "\n".join(problems)
    finally:
        page.close()


@pytest.mark.browser
def test_pages_fit_a_phone_and_screenshots(browser, site_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chapters = _chapters()
    targets = [("intro-phone", "book/intro.html", 390)]
    if chapters:
        targets.append(("chapter-desktop", f"notebooks/{chapters[0].name}", 1280))
        targets.append(("chapter-phone", f"notebooks/{chapters[0].name}", 390))
    for name, path, width in targets:
        page, problems = _open(browser, urljoin(site_url, path), width)
        try:
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, f"{path} scrolls sideways by {overflow}px at width {width}"
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
            assert not problems, "\n".join(problems)
        finally:
            page.close()
    assert (ARTIFACTS / "intro-phone.png").stat().st_size > 10_000
