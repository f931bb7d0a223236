"""Fast checks of the book's frame, without building it (issue #2).

The full build (`make book`, warnings as errors) catches the same problems, but takes time and
reports them one file at a time. These tests say in one run which glossary term, citation key,
data set section or notation symbol is missing. Each checker is also run on a deliberately bad
input, so a checker that silently finds nothing cannot pass.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from pybtex.database import parse_file, parse_string

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BIB = BOOK / "references.bib"
DATA = ROOT / "mlteach" / "data"

# ---------------------------------------------------------------------------------------------
# What the course notes require
# ---------------------------------------------------------------------------------------------

#: Terms the course notes define (their vocabulary list), with "fixed effects" in both senses.
COURSE_NOTE_TERMS = [
    "multilevel model", "mixed effects model", "hierarchical linear model",
    "Bayesian hierarchical model", "random effects", "fixed effects (statistics)",
    "fixed effects (econometrics)", "random intercept", "random slope", "random coefficient",
    "group-varying coefficient", "variance components", "longitudinal model", "panel data model",
    "growth curve model",
]

#: Terms the notes use in their argument and the chapters need.
CHAPTER_TERMS = [
    "within effect", "between effect", "contextual effect", "group-mean centering",
    "grand-mean centering", "Mundlak device", "within-between (REWB) model", "shrinkage",
    "partial pooling", "complete pooling", "no pooling", "BLUP", "empirical Bayes",
    "conditional mode", "intraclass correlation (ICC)", "maximum likelihood", "ML",
    "restricted maximum likelihood", "REML", "profiled deviance", "Hausman test",
    "cluster-robust standard errors", "singular fit", "boundary fit", "Swamy–Arora estimator",
    "first differences", "least squares dummy variables", "LSDV", "within transformation",
    "i.i.d.", "latent variable", "Laplace approximation", "adaptive Gauss–Hermite quadrature",
    "penalized quasi-likelihood", "PQL", "MQL", "PIRLS", "exchangeability",
    "cross-level interaction", "crossed random effects", "nested random effects",
    "likelihood-ratio test",
]

#: Works the course notes cite (key -> who), and works the book adds for its data and methods.
COURSE_NOTE_CITATIONS = {
    "bell2015": "Bell & Jones 2015", "mundlak1978": "Mundlak 1978",
    "hausman1978": "Hausman 1978", "eisenhart1947": "Eisenhart 1947",
    "skrondal_rabehesketh2004": "Rabe-Hesketh & Skrondal 2004 (Skrondal first author)",
    "airy1861": "Airy 1861", "scheffe1959": "Scheffé 1959", "fisher1925": "Fisher 1925",
    "swamy1972": "Swamy & Arora 1972", "robinson1991": "Robinson 1991",
    "barr2013": "Barr et al. 2013", "beck2007": "Beck & Katz 2007",
    "hsiao2008": "Hsiao & Pesaran 2008", "fitzmaurice2012": "Fitzmaurice, Laird & Ware 2012",
    "bates2015lme4": "Bates et al. 2015 (lme4)",
    "bates2015parsimonious": "Bates et al. 2015 (parsimonious mixed models)",
}
BOOK_CITATIONS = [
    "breslow1993", "raudenbush2002", "belenky2003", "davies1972", "huq1990", "grunfeld1958",
    "baltagi1983", "baltagi2021", "self1987", "stram1994", "wooldridge2010", "gelman2007",
    "pinheiro2000", "box1973", "lesnoff2004", "elston2001", "cameron2015", "liang1986",
    "pinheiro2006", "efron1975",
]

#: The symbols the notes define (their notation list, whose symbols are Y, X, Y_i, X_i, X_j,
#: the group mean, alpha, beta, epsilon_i, mu_j, epsilon_ij, N_xj, beta_i, beta_j) and the
#: ones the book adds, as LaTeX. Compared with braces and spaces removed.
NOTATION_SYMBOLS = [
    "Y", "X", "Y_i", "X_i", "X_j", r"\overline{X}_{j}", r"\alpha", r"\beta",
    r"\varepsilon_i", r"\mu_j", r"\varepsilon_{ij}", "N_{xj}", r"\beta_i", r"\beta_j",
    "Y_{ij}", "X_{ij}", r"\tau^2", r"\sigma^2", r"\theta", r"\rho", "J", "n_j", "G",
    r"\mathbf{G}", r"\nu_j", r"\beta_W", r"\beta_B", r"\alpha_i",
]

# ---------------------------------------------------------------------------------------------
# Checkers (pure functions of text, so they can be tested on bad input)
# ---------------------------------------------------------------------------------------------

_GLOSSARY_BLOCK = re.compile(r"^(`{3,}|:{3,})\{glossary\}[^\n]*\n(.*?)^\1\s*$", re.S | re.M)
_TERM_ROLE = re.compile(r"\{term\}`([^`]+)`")
_CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
_DOC_ROLE = re.compile(r"\{doc\}`([^`]+)`")


def glossary_terms(markdown: str) -> set[str]:
    """Every term (lower case) defined in the MyST glossary blocks of a page.

    In a glossary block, a term is a line that starts in the first column (not an option line
    like ``:sorted:``); its definition is the indented text after it, and several term lines in
    a row are aliases of one entry.
    """
    terms: set[str] = set()
    for match in _GLOSSARY_BLOCK.finditer(markdown):
        for line in match.group(2).splitlines():
            if line.strip() and not line[0].isspace() and not line.startswith(":"):
                terms.add(line.strip().lower())
    return terms


def _role_target(text: str) -> str:
    """``text <target>`` -> target; ``target`` -> target."""
    m = re.search(r"<([^<>]+)>\s*$", text)
    return (m.group(1) if m else text).strip()


def _without_code_spans(text: str) -> str:
    """Drop ``double-backtick`` code spans, where a role is shown, not used."""
    return re.sub(r"``.+?``", "", text, flags=re.S)


def term_references(text: str) -> list[str]:
    """The glossary terms that {term} roles in a text point to (lower case, one blank per
    white-space run, as Sphinx matches them)."""
    return [re.sub(r"\s+", " ", _role_target(t)).lower()
            for t in _TERM_ROLE.findall(_without_code_spans(text))]


def cite_keys(text: str) -> list[str]:
    """The keys in every {cite}, {cite:p}, {cite:t}, ... role; pre/post text in braces dropped."""
    keys = []
    for body in _CITE_ROLE.findall(text):
        for key in body.split(","):
            key = re.sub(r"\{[^}]*\}", "", key).strip()
            if key:
                keys.append(key)
    return keys


def unknown_terms(text: str, defined: set[str]) -> list[str]:
    return sorted({t for t in term_references(text) if t not in defined})


def unknown_keys(text: str, bib_keys: set[str]) -> list[str]:
    return sorted({k for k in cite_keys(text) if k not in bib_keys})


def dataset_sections(markdown: str) -> set[str]:
    """Data set names that head a section: ``## name: title`` or ``## name``."""
    return set(re.findall(r"^##\s+`?([A-Za-z0-9_]+)`?\s*(?::|$)", markdown, re.M))


def _squash(latex: str) -> str:
    return re.sub(r"[{}\s]", "", latex)


def missing_symbols(markdown: str, symbols: list[str]) -> list[str]:
    """Symbols that do not occur in the page's math (compared without braces and spaces)."""
    pieces = re.findall(r"\$\$(.*?)\$\$|\$([^$\n]+)\$", markdown, re.S)
    # Braces dropped, white space kept as one blank so that "\\beta X" stays two tokens.
    flat = re.sub(r"\s+", " ", re.sub(r"[{}]", "", " ".join(a or b for a, b in pieces)))
    missing = []
    for sym in symbols:
        pattern = re.escape(_squash(sym))
        if re.fullmatch(r"[A-Za-z]", sym):
            # A bare letter must stand alone: not the G of \mathbf{G}, not the X of X_{ij}.
            pattern = rf"(?<![A-Za-z\\]){pattern}"
        if sym[-1].isalpha():
            # X_i must not be found inside X_{ij}, nor \beta inside \betaB.
            pattern = rf"{pattern}(?![A-Za-z])"
        if not re.search(pattern, flat):
            missing.append(sym)
    return missing


def markdown_of_notebook(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c.get("source", "")) for c in nb.get("cells", [])
                     if c.get("cell_type") == "markdown")


def book_texts() -> dict[str, str]:
    """Prose the book renders: book/*.md and the markdown cells of notebooks/*.ipynb."""
    texts = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
             for p in sorted(BOOK.glob("*.md"))}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        texts[str(nb.relative_to(ROOT))] = markdown_of_notebook(nb)
    return texts


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glossary() -> set[str]:
    return glossary_terms((BOOK / "glossary.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bib_keys() -> set[str]:
    return set(parse_file(str(BIB), bib_format="bibtex").entries.keys())


# ---------------------------------------------------------------------------------------------
# The book
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("term", COURSE_NOTE_TERMS + CHAPTER_TERMS)
def test_glossary_defines_term(term, glossary):
    assert term.lower() in glossary, (
        f"book/glossary.md defines no glossary term {term!r}; add an entry (or an alias line) "
        f"inside the ```{{glossary}} block.")


def test_bibliography_parses_and_has_every_needed_work(bib_keys):
    needed = list(COURSE_NOTE_CITATIONS) + BOOK_CITATIONS
    missing = [k for k in needed if k not in bib_keys]
    assert not missing, f"book/references.bib lacks {missing}"


def test_bibliography_entries_are_complete():
    db = parse_file(str(BIB), bib_format="bibtex")
    problems = []
    for key, entry in db.entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor")
        if not people:
            problems.append(f"{key}: no author or editor")
        for field in ("title", "year"):
            if not entry.fields.get(field):
                problems.append(f"{key}: no {field}")
        if entry.type == "article":
            for field in ("journal", "volume", "pages"):
                if not entry.fields.get(field):
                    problems.append(f"{key}: article without {field}")
        if entry.type in ("book", "incollection") and not entry.fields.get("publisher"):
            problems.append(f"{key}: {entry.type} without publisher")
        doi = entry.fields.get("doi", "")
        if doi and not re.fullmatch(r"10\.\d{4,9}/\S+", doi):
            problems.append(f"{key}: malformed DOI {doi!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source", sorted(book_texts()))
def test_terms_used_are_defined(source, glossary):
    bad = unknown_terms(book_texts()[source], glossary)
    assert not bad, (f"{source} links to glossary terms that book/glossary.md does not define: "
                     f"{bad}")


@pytest.mark.parametrize("source", sorted(book_texts()))
def test_citation_keys_exist(source, bib_keys):
    bad = unknown_keys(book_texts()[source], bib_keys)
    assert not bad, f"{source} cites keys missing from book/references.bib: {bad}"


def test_one_bibliography_directive():
    pages = [s for s, text in book_texts().items() if "{bibliography}" in text]
    assert pages == ["book/references.md"], (
        f"the {{bibliography}} directive must be on book/references.md only (found on {pages}); "
        f"several give duplicate-citation warnings")


@pytest.mark.parametrize("name", sorted(p.stem for p in DATA.glob("*.csv")))
def test_every_data_set_has_a_section(name):
    page = (BOOK / "datasets.md").read_text(encoding="utf-8")
    assert name in dataset_sections(page), (
        f"mlteach/data/{name}.csv has no '## {name}: ...' section on book/datasets.md")
    assert f'mlteach.load("{name}")' in page, f"book/datasets.md never shows how to load {name}"


def test_every_notation_symbol_is_on_the_notation_page():
    page = (BOOK / "notation.md").read_text(encoding="utf-8")
    missing = missing_symbols(page, NOTATION_SYMBOLS)
    assert not missing, f"book/notation.md does not show {missing}"


def test_toc_files_exist_and_reference_pages_are_listed():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [ch["file"] for ch in part.get("chapters", [])]
    missing = [f for f in files
               if not any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    for page in ("book/intro", "book/notation", "book/glossary", "book/datasets",
                 "book/references"):
        assert page in files, f"_toc.yml does not list {page}"


def test_doc_links_point_to_existing_documents():
    bad = []
    for source, text in book_texts().items():
        for target in map(_role_target, _DOC_ROLE.findall(text)):
            path = (ROOT / target.lstrip("/")) if target.startswith("/") else \
                (ROOT / source).parent / target
            if not any(Path(f"{path}{ext}").exists() for ext in (".md", ".ipynb")):
                bad.append(f"{source}: {{doc}}`{target}`")
    assert not bad, "links to documents that do not exist:\n" + "\n".join(bad)


def test_config_builds_offline_and_strict():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["only_build_toc_files"] is True
    sphinx = config["sphinx"]["config"]
    assert sphinx["nitpicky"] is True
    assert not re.match(r"https?:", sphinx["mathjax_path"]), "MathJax must be the local copy"
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]
    assert sphinx["bibtex_reference_style"].startswith("author_year")
    assert config["bibtex_bibfiles"] == ["book/references.bib"]
    assert "notebooks/*.md" in config["exclude_patterns"]


# ---------------------------------------------------------------------------------------------
# The checkers fail on bad input
# ---------------------------------------------------------------------------------------------

_BAD_GLOSSARY = """\
# Glossary

```{glossary}
:sorted:

random intercept
varying intercept
  A definition.

shrinkage
  Another definition, mentioning {term}`random intercept`.
```

Outside the block: not a term
"""


def test_checker_glossary_parser():
    assert glossary_terms(_BAD_GLOSSARY) == {"random intercept", "varying intercept",
                                             "shrinkage"}
    assert glossary_terms("no glossary here\n") == set()


def test_checker_flags_unknown_terms():
    defined = glossary_terms(_BAD_GLOSSARY)
    text = ("A {term}`random intercept`, a {term}`Shrinkage`, a {term}`varying\n  intercept`, "
            "a {term}`pooled estimate <partial pooling>` and a {term}`random slop`; "
            "a role shown as code, ``{term}`anything` ``, is not a use.")
    assert unknown_terms(text, defined) == ["partial pooling", "random slop"]
    assert unknown_terms("no roles at all", defined) == []


def test_checker_flags_unknown_citation_keys():
    keys = {"bell2015", "mundlak1978"}
    text = ("{cite:t}`bell2015` and {cite:p}`mundlak1978,hausman1978` and "
            "{cite}`{see}bell2015{p. 140}` and {cite:ps}`bates2051`")
    assert cite_keys(text) == ["bell2015", "mundlak1978", "hausman1978", "bell2015", "bates2051"]
    assert unknown_keys(text, keys) == ["bates2051", "hausman1978"]


def test_checker_rejects_a_malformed_bibliography():
    with pytest.raises(Exception):
        parse_string("@article{broken, author = {A}, title = {unclosed", "bibtex")
    ok = parse_string("@book{k, author={A, B}, title={T}, publisher={P}, year={2000}}", "bibtex")
    assert list(ok.entries) == ["k"]


def test_checker_data_set_sections():
    page = "## hsb82: students in schools\n\ntext\n\n### hsb82 details\n\n## `cbpp`\n"
    assert dataset_sections(page) == {"hsb82", "cbpp"}
    assert "sleepstudy" not in dataset_sections(page)


def test_checker_notation_symbols():
    page = r"Here $Y_{ij} = \alpha + \beta X_{ij}$ and $\mathbf{G}$."
    assert missing_symbols(page, ["Y_{ij}", r"\alpha", r"\beta", "X_{ij}"]) == []
    # X_i is not X_{ij}; G is only in \mathbf{G}; tau is absent; N_{xj} absent.
    assert missing_symbols(page, ["X_i", "G", r"\tau^2", "N_{xj}"]) == [
        "X_i", "G", r"\tau^2", "N_{xj}"]
    # Text outside math does not count.
    assert missing_symbols("the letter J in prose", ["J"]) == ["J"]
