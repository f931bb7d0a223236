"""The rendered book, checked as a reader sees it (issue #9).

Static checks read every page of ``_build/html``: internal links and anchors resolve, images
exist, figures are opaque (legible in dark mode), and no page loads MathJax from a CDN. Browser
checks serve the site on localhost and drive Debian's headless Chromium with Playwright: on
every chapter page the equations are typeset by MathJax, every figure has loaded, glossary and
citation links exist, exercise solutions open and close, nothing is logged to the console as an
error, and nothing overflows a phone's width. On every page, at a phone's width (390 px) and a
laptop's (1280 px), display equations stay inside their column with the number beside them (at
1280 px they fit; at 390 px a wide one scrolls with a visible scrollbar), there is one search
box, and figure captions meet WCAG AA contrast (4.5:1) in light and dark mode. Screenshots of
two pages are saved as artefacts in ``_build/test-artifacts``.

``make test`` builds the book first. Run alone, these tests skip (with the reason) when the book
has not been built or when no Chromium is installed. ``MLTEACH_BOOK_HTML`` points them at another
build (e.g. ``jupyter-book build . --path-output /tmp/b`` then
``MLTEACH_BOOK_HTML=/tmp/b/_build/html``).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("MLTEACH_BOOK_HTML") or ROOT / "_build" / "html")
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
        # Scrollbars drawn as a reader's browser draws them (Playwright hides them by default),
        # so the equation test can tell a visible scrollbar from a clipped equation.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              ignore_default_args=["--hide-scrollbars"])
        yield chromium
        chromium.close()


def _open(browser, url: str, width: int = 1280, color_scheme: str = "light"):
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=color_scheme)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status}: {resp.url}")
            if resp.status >= 400 else None)
    page.goto(url, wait_until="load")
    if page.evaluate("() => !!document.querySelector('article .math')"):
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


# Display equations, per page and width: the equation's box stays inside the article column, the
# equation number lies beside the equation (not over it), and the equation either fits its box
# or scrolls with a scrollbar the reader can see (a scroll box whose offsetHeight exceeds its
# clientHeight by the scrollbar). Equations inside closed solutions are not laid out and are
# skipped. The search controls a reader can see, and the caption colours, come from the same
# page load.
_LAYOUT = """() => {
    const visible = e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
        return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
    const article = document.querySelector('article.bd-article');
    if (!article) return {equations: [], search: null};
    const column = article.getBoundingClientRect();
    const pad = parseFloat(getComputedStyle(article).paddingRight) || 0;
    const equations = [];
    for (const box of document.querySelectorAll('article div.math')) {
        const mjx = box.querySelector(':scope > mjx-container[display="true"]');
        if (!mjx || !visible(box)) continue;
        const eqno = box.querySelector(':scope > .eqno');
        const b = box.getBoundingClientRect(), m = mjx.getBoundingClientRect();
        const n = eqno && visible(eqno) ? eqno.getBoundingClientRect() : null;
        const style = getComputedStyle(mjx);
        equations.push({
            name: (eqno ? eqno.innerText.replace('#', '').trim() : '') || box.id || '(unnumbered)',
            id: box.id,
            outside_column: Math.round(b.right - (column.right - pad)),
            overflow: mjx.scrollWidth - mjx.clientWidth,
            scrolls: ['auto', 'scroll'].includes(style.overflowX),
            scrollbar: mjx.offsetHeight - mjx.clientHeight,
            number_over_equation: n ? (n.left < m.right - 1 && n.right > m.left + 1) : false,
        });
    }
    const search = [...document.querySelectorAll(
        'input[type=search], .search-button-field, .search-button, #searchbox input')]
        .filter(e => visible(e) && !e.closest('dialog'))
        .map(e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.'));
    return {equations, search};
}"""

# Luminance contrast (WCAG 2.1) of each caption's text colour against the first opaque
# background behind it.
_CAPTIONS = """() => {
    const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => { const f = c => { c /= 255;
        return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
    const background = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.99)) return c.slice(0, 3); }
        return [255, 255, 255]; };
    return [...document.querySelectorAll('article figcaption .caption-text, article figcaption .caption-number, article table caption')]
        .map(e => { const s = getComputedStyle(e), fg = rgb(s.color), bg = background(e);
            const a = fg.length === 4 ? fg[3] * parseFloat(s.opacity) : parseFloat(s.opacity);
            const mixed = fg.slice(0, 3).map((c, i) => a * c + (1 - a) * bg[i]);
            const [hi, lo] = [lum(mixed), lum(bg)].sort((x, y) => y - x);
            return {text: e.innerText.slice(0, 40), color: s.color, background: bg.join(','),
                    ratio: (hi + 0.05) / (lo + 0.05)}; });
}"""

# Broken so that they fit a phone (issue 13: eqs. 6.1 and 6.5 at 390 px).
_FIT_PHONE = {"equation-eq-shr-three", "equation-eq-shr-alpha"}


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_equations_fit_or_scroll_visibly_and_one_search_box(browser, site_url, width):
    pages = [p for p in _pages() if _soup(p).find("article")]  # index.html only redirects
    assert pages
    bad, searches, checked = [], [], 0
    for path in pages:
        name = str(path.relative_to(SITE))
        page, _ = _open(browser, urljoin(site_url, name), width)
        try:
            layout = page.evaluate(_LAYOUT)
        finally:
            page.close()
        if len(layout["search"]) != 1:
            searches.append(f"{name}: {len(layout['search'])} search boxes {layout['search']}")
        for eq in layout["equations"]:
            checked += 1
            where = f"{name} eq. {eq['name']} at {width}px"
            if eq["outside_column"] > 1:
                bad.append(f"{where}: sticks out of the column by {eq['outside_column']}px")
            if eq["number_over_equation"]:
                bad.append(f"{where}: the equation number is drawn over the equation")
            if eq["overflow"] > 1:
                if width >= 1280 or eq["id"] in _FIT_PHONE:
                    bad.append(f"{where}: {eq['overflow']}px wider than its column "
                               "(break it with aligned/gathered)")
                elif not eq["scrolls"] or eq["scrollbar"] < 4:
                    bad.append(f"{where}: clipped by {eq['overflow']}px with no visible "
                               "scrollbar")
    assert checked > 50, f"only {checked} display equations found at {width}px"
    assert not bad, "display equations that overflow:\n" + "\n".join(bad)
    assert not searches, "pages without exactly one search box:\n" + "\n".join(searches)


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_figure_captions_meet_wcag_aa_contrast(browser, site_url, scheme):
    low, checked = [], 0
    for chapter in _chapters():
        page, _ = _open(browser, urljoin(site_url, f"notebooks/{chapter.name}"),
                        color_scheme=scheme)
        try:
            assert page.evaluate("() => document.documentElement.dataset.theme") == scheme
            captions = page.evaluate(_CAPTIONS)
        finally:
            page.close()
        for cap in captions:
            checked += 1
            if cap["ratio"] < 4.5:
                low.append(f"{chapter.name}: {cap['ratio']:.2f}:1 ({cap['color']} on "
                           f"rgb({cap['background']})) {cap['text']!r}")
    assert checked >= len(_chapters()), "the chapters should have figure captions"
    assert not low, f"captions below WCAG AA (4.5:1) in {scheme} mode:\n" + "\n".join(low)
