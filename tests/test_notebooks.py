"""Hygiene of the chapter notebooks and of the nbval sanitize file.

nbval (run by `make test` after these tests) re-executes every notebook and compares each cell's
fresh text output with the stored one. It cannot see what it is not given: a notebook saved with
cleared outputs, or a sanitize rule nbval silently failed to read, passes unnoticed. These tests
close those gaps, and check that each `.ipynb` still says what its MyST-markdown twin says.
See notebooks/README.md for the conventions they enforce.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TWINS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]-*.md"))
MAX_BYTES = 2_000_000
MIN_EXERCISES = 4

# Absolute paths of this machine (or a reader's) must not be stored: they differ elsewhere.
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|tmp|Users|private/var)/|[A-Z]:\\\\Users")
# A plotting cell that does not end in plt.show() stores the repr of its last expression.
MATPLOTLIB_REPR = re.compile(r"<matplotlib\.|<Axes|^\[<matplotlib|^Text\(", re.MULTILINE)


def ids(paths):
    return [p.name for p in paths]


def load(path: Path):
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def text_of(output) -> list[str]:
    """Every text an output stores (images excluded: base64 may contain '/tmp/' by chance)."""
    texts = []
    if output.output_type == "stream":
        texts.append(output.text)
    elif output.output_type in ("execute_result", "display_data"):
        for mime, value in output.get("data", {}).items():
            if not mime.startswith("image/") or mime == "image/svg+xml":
                texts.append(value if isinstance(value, str) else json.dumps(value))
    elif output.output_type == "error":
        texts += [output.ename, output.evalue, *output.traceback]
    return texts


# ------------------------------------------------------------------------------------------
# (1) The sanitize file: read the way nbval reads it, and every rule fires.
# ------------------------------------------------------------------------------------------

# One sample per rule, in file order: (text as a run might print it, text after sanitizing).
SANITIZE_SAMPLES = [
    ("<function f at 0x7f3a2b1c9d30>", "<function f at 0xADDRESS>"),
    ("<Figure size 640x480 with 1 Axes>", "<Figure size WxH with 1 Axes>"),
    ("1.23 ms ± 45.6 µs per loop (mean ± std. dev. of 7 runs, 1,000 loops each)", "TIMEIT"),
    ("CPU times: user 1.2 s, sys: 3 ms, total: 1.2 s\nWall time: 1.31 s",
     "CPU times: TIME\nWall time: TIME"),
    ("<td>lmm</td><td>0.083 s</td>  fitted in 12.5 ms", "<td>lmm</td><td>DURATION</td>  fitted "
     "in DURATION"),
    ("fitted 2025-11-27 19:57:01.123 (log 2024-01-05)", "fitted DATE (log DATE)"),
    ("Date:  Thu, 27 Nov 2025", "Date:  DATE"),
    ("Time:  19:57:01", "Time:  CLOCK"),
    ('<style>#T_8f3a1 th {}</style><td id="T_8f3a1_row0_col0">', '<style>#T_UUID th {}</style>'
     '<td id="T_UUID_row0_col0">'),
    ("0.29901141223509814 and 302.80374871764224 but 0.1234", "0.299011412 and 302.803748717 but "
     "0.1234"),
]

# Outputs a chapter prints legitimately, which no rule may touch.
SANITIZE_UNTOUCHED = [
    "Intercept    12.6575  0.1880  67.3280  0.0000",
    "coverage 0.9500 with 50 schools of 20 students in the 1990s; 3 sets, 2 samples, 4 slopes",
    "mAch ~ ses, cluster = school (160 clusters)",
    "<table><tr><th>icc</th><td>0.2</td><td>1.3 x</td></tr></table>",
    "hex colour #1f77b4 and id 0x1f",
]


def sanitize_rules():
    return get_sanitize_patterns(SANITIZE.read_text(encoding="utf-8"))


def apply_rules(text: str, rules) -> str:
    for regex, replace in rules:   # nbval applies them in file order, with re.sub
        text = re.sub(regex, replace, text)
    return text


def test_sanitize_file_is_read_completely_by_nbval():
    lines = SANITIZE.read_text(encoding="utf-8").splitlines()
    rules = sanitize_rules()
    n_regex = sum(line.startswith("regex:") for line in lines)
    n_replace = sum(line.startswith("replace:") for line in lines)
    assert len(rules) == n_regex == n_replace, (
        f"nbval reads {len(rules)} rules, but the file has {n_regex} 'regex:' and {n_replace} "
        f"'replace:' lines: each 'regex:' line must be followed directly by its 'replace:' line."
    )
    for i, line in enumerate(lines):
        if line.startswith("regex:"):
            assert lines[i + 1].startswith("replace:"), f"line {i + 2} must be 'replace: ...'"
        assert line == line.rstrip(), f"line {i + 1} has trailing spaces, which nbval keeps"
    regexes = [r for r, _ in rules]
    assert len(set(regexes)) == len(regexes), "a duplicated regex overwrites the earlier rule"
    for regex, _ in rules:
        re.compile(regex)


def test_every_sanitize_rule_fires_on_its_sample():
    rules = sanitize_rules()
    assert len(rules) == len(SANITIZE_SAMPLES), "add a sample for each new rule"
    for (regex, replace), (sample, expected) in zip(rules, SANITIZE_SAMPLES):
        assert re.search(regex, sample), f"rule {regex!r} does not fire on {sample!r}"
        assert apply_rules(sample, rules) == expected


@pytest.mark.parametrize("text", SANITIZE_UNTOUCHED)
def test_sanitize_rules_leave_results_alone(text):
    assert apply_rules(text, sanitize_rules()) == text


# ------------------------------------------------------------------------------------------
# (2) Hygiene: executed, in order, no errors, no machine paths, small, outputs stored.
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_executed_in_order(path):
    cells = code_cells(load(path))
    assert cells, "a chapter notebook without code cells"
    counts = [c.execution_count for c in cells]
    assert None not in counts, (
        f"code cells {[i for i, c in enumerate(counts) if c is None]} were not executed: run "
        f"`make execute` (nbval does not check cells without stored outputs)"
    )
    assert counts == list(range(1, len(cells) + 1)), (
        f"execution counts {counts} are not 1..{len(cells)}: execute top to bottom with "
        f"`python tools/execute_notebooks.py {path.name}`"
    )
    for cell in cells:
        for out in cell.outputs:
            if out.output_type == "execute_result":
                assert out.execution_count == cell.execution_count


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_outputs_stored_and_clean(path):
    cells = code_cells(load(path))
    assert sum(len(c.outputs) for c in cells) > 0, "no stored outputs: run `make execute`"
    for i, cell in enumerate(cells):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if "raises-exception" in tags(cell):
            assert errors, f"code cell {i} is tagged raises-exception but raised nothing"
        else:
            assert not errors, f"code cell {i} stored an error: {errors[0].ename}"
        for out in cell.outputs:
            assert not (out.output_type == "stream" and out.name == "stderr"), (
                f"code cell {i} wrote to stderr (a warning?): {out.text[:200]!r}. Warnings print "
                f"the kernel's temporary file path, which changes every run: show them with "
                f"warnings.catch_warnings(record=True) and print(w[0].message)."
            )
            if out.output_type == "execute_result":
                plain = out.get("data", {}).get("text/plain", "")
                assert not MATPLOTLIB_REPR.search(plain), (
                    f"code cell {i} stores the repr {plain[:60]!r}: end plotting cells with "
                    f"plt.show()"
                )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_absolute_paths(path):
    nb = load(path)
    for i, cell in enumerate(nb.cells):
        match = ABSOLUTE_PATH.search(cell.source)
        assert not match, f"cell {i} source has the absolute path {match.group()!r}..."
        for out in cell.get("outputs", []):
            for text in text_of(out):
                match = ABSOLUTE_PATH.search(text)
                assert not match, (f"cell {i} output has an absolute path near "
                                   f"{text[max(match.start() - 40, 0):match.end() + 40]!r}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_size_limit(path):
    size = path.stat().st_size
    assert size < MAX_BYTES, (f"{path.name} is {size / 1e6:.1f} MB: lower the figure DPI or "
                              f"print fewer rows")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_volatile_metadata(path):
    nb = load(path)
    assert "jupytext" not in nb.metadata
    for i, cell in enumerate(nb.cells):
        assert "execution" not in cell.metadata, (
            f"cell {i} stores execution timestamps: execute with tools/execute_notebooks.py")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_glued_numbers_are_plain(path):
    """Glued NumPy scalars would render as 'np.float64(0.95)' in the prose."""
    for cell in code_cells(load(path)):
        for out in cell.outputs:
            if "scrapbook" in out.get("metadata", {}):
                # glue(..., display=False) stores under application/papermill.record/text/plain
                plain = "".join(v for k, v in out.get("data", {}).items()
                                if k.endswith("text/plain"))
                assert plain and not plain.startswith("np."), (
                    f"glue {out.metadata['scrapbook'].get('name')!r} stores {plain!r}: glue "
                    f"float(x) or int(x)")


# ------------------------------------------------------------------------------------------
# (3) Each .ipynb says what its MyST-markdown twin says; (4) the kernel is python3.
# ------------------------------------------------------------------------------------------

def test_every_notebook_has_a_twin():
    stems_md = {p.stem for p in TWINS}
    stems_nb = {p.stem for p in NOTEBOOKS}
    assert stems_nb <= stems_md, f"notebooks without a .md twin: {sorted(stems_nb - stems_md)}"
    assert stems_md <= stems_nb, (f"twins never executed (run `make execute`): "
                                  f"{sorted(stems_md - stems_nb)}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_in_sync_with_markdown_twin(path):
    twin = path.with_suffix(".md")
    if not twin.exists():
        pytest.skip("no twin (reported by test_every_notebook_has_a_twin)")
    text = jupytext.read(twin, fmt="md:myst")
    stored = load(path)
    assert len(text.cells) == len(stored.cells), (
        f"{twin.name} has {len(text.cells)} cells, {path.name} {len(stored.cells)}: run "
        f"`python tools/execute_notebooks.py {twin.relative_to(ROOT)}`")
    for i, (a, b) in enumerate(zip(text.cells, stored.cells)):
        assert (a.cell_type, a.source) == (b.cell_type, b.source), (
            f"cell {i} differs between {twin.name} and {path.name}: re-execute the chapter")
        assert tags(a) == tags(b), f"cell {i} tags differ: {sorted(tags(a))} vs {sorted(tags(b))}"
        assert a.metadata.get("mystnb") == b.metadata.get("mystnb")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_kernelspec(path):
    meta = load(path).metadata
    assert meta.get("kernelspec", {}).get("name") == "python3"
    assert meta.get("kernelspec", {}).get("language") == "python"


# ------------------------------------------------------------------------------------------
# Chapter conventions (notebooks/README.md) that a build or nbval would not catch.
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_setup_cell(path):
    first = code_cells(load(path))[0]
    assert tags(first) & {"remove-cell", "hide-input", "remove-input"}, (
        "the first code cell is the hidden setup cell: tag it remove-cell or hide-input")
    # `make test` exports MPLBACKEND=Agg, under which figures are never displayed and
    # plt.show() warns on stderr; the magic makes nbval see what the executor stored.
    assert "%matplotlib inline" in first.source
    assert "default_rng(" in first.source, "seed the chapter: rng = np.random.default_rng(<seed>)"
    assert 'pd.set_option("display.precision"' in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_exercises_have_solutions(path):
    markdown = "\n".join(c.source for c in load(path).cells if c.cell_type == "markdown")
    exercises = re.findall(r"^[`:]{3,}\{exercise\}[^\n]*\n:label: (\S+)", markdown, re.M)
    solutions = re.findall(r"^[`:]{3,}\{solution\} (\S+)", markdown, re.M)
    assert len(exercises) >= MIN_EXERCISES, (
        f"{len(exercises)} exercises (with a :label: on the line after the directive); "
        f"chapters have at least {MIN_EXERCISES}")
    assert len(set(exercises)) == len(exercises), "duplicate exercise labels"
    assert sorted(solutions) == sorted(exercises), (
        f"exercises without a solution: {sorted(set(exercises) - set(solutions))}; solutions "
        f"without an exercise: {sorted(set(solutions) - set(exercises))}")


def test_timings_recorded():
    timings_path = NOTEBOOK_DIR / "_timings.json"
    if not NOTEBOOKS:
        pytest.skip("no notebooks yet")
    timings = json.loads(timings_path.read_text())
    missing = [p.stem for p in NOTEBOOKS if p.stem not in timings]
    assert not missing, f"no execution time recorded for {missing}: run `make execute`"


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
PAGES = sorted((ROOT / "book").glob("*.md")) + TWINS


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=ids(NOTEBOOKS + PAGES))
def test_no_control_characters_in_prose_or_math(path):
    """A TAB or other control character in prose is nearly always an escape gone wrong: a
    Python string "\\tau" becomes TAB + "au" and the formula reads N(0, au^2)."""
    if path.suffix == ".ipynb":
        sources = [(i, c.source) for i, c in enumerate(load(path).cells)
                   if c.cell_type == "markdown"]
    else:
        sources = [(0, path.read_text(encoding="utf-8"))]
    for i, text in sources:
        for lineno, line in enumerate(text.splitlines(), 1):
            hit = CONTROL.search(line)
            assert hit is None, (
                f"{path.name} (cell {i}, line {lineno}) has control character "
                f"{hit.group()!r} in {line.strip()[:80]!r}: write the backslash escape it "
                f"replaced (e.g. \\t of \\tau) as a real backslash")
