"""The student edition (tools/make_student.py): no solutions, no outputs, and it runs.

Built from the chapter notebooks and from tests/fixtures/ex_demo.ipynb, a small notebook that
follows the exercise conventions (it registers its own checks, under chapter 0).
"""

from __future__ import annotations

import html as html_module
import re
import json
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import exercise_conventions as conv  # noqa: E402
import make_student  # noqa: E402
from plain_markdown import RAW_MYST  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from fresh_env import FreshEnv  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "ex_demo.ipynb"
NOTEBOOKS = [FIXTURE, *conv.chapter_notebooks(ROOT)]
IDS = [p.stem for p in NOTEBOOKS]


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    make_student.write_notebooks(NOTEBOOKS, out)
    make_student.write_bundle(out)
    return out


def instructor_and_student(edition: Path, path: Path):
    return (nbformat.read(path, as_version=4),
            nbformat.read(edition / "notebooks" / path.name, as_version=4))


def solution_lines(nb) -> set[str]:
    """Lines of solution code and solution prose that appear nowhere else in the notebook."""
    secret, public = set(), set()
    for cell in nb.cells:
        text = conv.source(cell)
        if conv.is_solution_code(cell):
            secret.update(text.splitlines())
        elif cell.cell_type == "markdown":
            for d in conv.directives(text):
                if d.name == "solution":
                    secret.update(d.body.splitlines())
            public.update(conv.strip_solutions(text).splitlines())
        else:
            public.update(text.splitlines())
    # A secret line that the public text already contains (an exercise that shows how to load
    # its data inline, say) is not a leak: the leak checks below look for substrings too.
    public_text = "\n".join(public)
    return {line.strip() for line in secret
            if line.strip() and line.strip() not in {p.strip() for p in public}
            and line.strip() not in public_text}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_solution_code_or_prose(edition, path):
    teacher, student = instructor_and_student(edition, path)
    text = "\n".join(conv.source(c) for c in student.cells) + json.dumps(student.metadata)
    lines = {line.strip() for line in text.splitlines()}
    leaked = sorted(solution_lines(teacher) & lines)
    assert not leaked, f"solution lines in the student {path.name}: {leaked[:5]}"
    assert not any(conv.is_solution_code(c) for c in student.cells)
    assert "{solution}" not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_outputs_and_check_cells_kept(edition, path):
    teacher, student = instructor_and_student(edition, path)
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "execution" not in cell.metadata
    checks = [c.source for c in teacher.cells if conv.is_check_code(c)]
    assert [c.source for c in student.cells if conv.is_check_code(c)] == checks
    exercises = conv.exercises(teacher, path.name)
    placeholders = [c for c in student.cells if c.cell_type == "code"
                    and c.source.startswith(conv.PLACEHOLDER)]
    with_code = [ex for ex in exercises if ex.solution_code]
    assert len(placeholders) >= len(with_code)
    wants_answer = sum(any(conv.assigns_answer(s) for s in ex.solution_code) for ex in with_code)
    assert sum("answer = None" in c.source for c in placeholders) == wants_answer
    nbformat.validate(student)


def test_fixture_edition_in_detail(edition):
    _, student = instructor_and_student(edition, FIXTURE)
    sources = [c.source for c in student.cells]
    assert sources[0].startswith("**Student edition.**")
    # exercise 0.2 has two solution cells: one placeholder replaces both
    i = sources.index('mlteach.check("0.2", answer)')
    assert sources[i - 1] == "# Your code here\nanswer = None  # replace None with your result"
    assert sources[i - 2].startswith("**Exercise 0.2: Centring within schools**")
    # the conceptual exercise 0.4 keeps its text, loses its solution (same markdown cell)
    cell = next(s for s in sources if s.startswith("**Exercise 0.4"))
    assert "Explain in two sentences" in cell and "unmeasured influences" not in cell
    assert len({c.id for c in student.cells}) == len(student.cells)


def test_bundle(edition):
    assert (edition / "notebooks" / "mlteach" / "exercises.py").exists()
    assert (edition / "notebooks" / "mlteach" / "data" / "hsb82.csv").exists()
    assert "How students check their answers" in (edition / "README.md").read_text()
    assert "pandas==" in (edition / "requirements.txt").read_text()
    with zipfile.ZipFile(edition / "mlteach-student.zip") as zf:
        names = zf.namelist()
    assert "mlteach-student/notebooks/ex_demo.ipynb" in names
    assert "mlteach-student/notebooks/mlteach/data/hsb82.csv" in names
    assert not [n for n in names if n.endswith(".md") and "/notebooks/" in n
                and "/mlteach/" not in n], "MyST twins (with solutions) must not be shipped"


def test_no_reference_answers_shipped(edition):
    """The code that recomputes the answers (mlteach/checks) stays with the instructors: no
    file of the edition registers a chapter's check or holds a check function's source."""
    assert not (edition / "notebooks" / "mlteach" / "checks").exists()
    with zipfile.ZipFile(edition / "mlteach-student.zip") as zf:
        assert not [n for n in zf.namelist() if "/mlteach/checks" in n]
    check_sources = {p.name: p.read_text(encoding="utf-8")
                     for p in (ROOT / "mlteach" / "checks").glob("ch*.py")}
    assert check_sources, "the full edition has its checks"
    defs = {line.strip() for text in check_sources.values() for line in text.splitlines()
            if line.startswith("def ")}
    for path in (edition / "notebooks").rglob("*"):
        if path.suffix in (".py", ".ipynb", ".json", ".md", ".txt"):
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not re.search(r'^@register\("[1-9]', text, re.M), f"{path} registers a check"
            hits = [d for d in defs if d in text]
            assert not hits, f"{path} holds check code: {hits[:3]}"


@pytest.fixture(scope="module")
def student_kernel(edition, tmp_path_factory) -> FreshEnv:
    """A fresh virtual environment outside the repository with only what the edition's
    requirements.txt installs (`python -m venv`, then `pip install -r requirements.txt`, as the
    edition's README tells a student)."""
    return FreshEnv.shared(tmp_path_factory, edition / "requirements.txt", "mlteach-student")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_reads_right_in_any_jupyter_front_end(edition, path):
    """No MyST a plain front end (JupyterLab without jupyterlab-myst, VS Code, Colab) shows
    raw: no {role}`...`, no ```{directive}, no (label)= line, no $$ (label); no import of
    myst_nb (a Sphinx extension the edition does not install)."""
    nb = nbformat.read(edition / "notebooks" / path.name, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            hit = RAW_MYST.search(cell.source)
            assert hit is None, (f"{path.name} cell {i}: raw MyST "
                                 f"{cell.source[max(0, hit.start() - 30):hit.end() + 30]!r}")
            assert not re.search(r"^% ", cell.source, re.M), f"{path.name} cell {i}: comment"
        else:
            assert not re.search(r"^\s*(from|import) myst_nb", cell.source, re.M), (
                f"{path.name} cell {i} imports myst_nb")


def test_glued_numbers_and_references_are_substituted(edition):
    nb = nbformat.read(edition / "notebooks" / "02-random-intercepts.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "**Exercise 2.1: Variances, standard deviations and the ICC**" in text
    assert "\\tag{2.1}" in text and "(2.1)" in text
    assert "Figure 2.1" in text and "> **Learning goals**" in text
    # the chapter's own glued value, formatted as the book formats it
    executed = nbformat.read(ROOT / "notebooks" / "02-random-intercepts.ipynb", as_version=4)
    from plain_markdown import format_glue, glue_values
    glued = glue_values(executed)
    assert format_glue(glued["null_icc"], ".3f") in text


# A chapter takes about as long as its instructor version (notebooks/_timings.json: ~30 s for
# chapter 1), so chapters are marked slow; the fixture runs in a few seconds.
@pytest.mark.parametrize("path", [pytest.param(p, marks=[] if p == FIXTURE else pytest.mark.slow)
                                  for p in NOTEBOOKS], ids=IDS)
def test_student_notebook_runs_as_handed_out(edition, student_kernel, path, tmp_path):
    """Top to bottom, in a fresh folder with only the bundle and a fresh environment with only
    its requirements.txt, exercises left as handed out."""
    shutil.copytree(edition / "notebooks", tmp_path / "notebooks")
    nb = student_kernel.execute(tmp_path / "notebooks" / path.name, tmp_path / "notebooks")
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert not [o for o in first.outputs if o.get("output_type") == "error"]
    for cell in nb.cells:
        if conv.is_check_code(cell):
            text = "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)
            assert "no answer yet" in text, text


def test_student_check_says_to_be_graded(edition, student_kernel, tmp_path):
    """With an answer, the student edition's check cannot judge it and says so (no exception,
    not 'correct'); the fixture's own notebook-registered check still works."""
    shutil.copytree(edition / "notebooks", tmp_path / "notebooks")
    out = student_kernel.run(
        "import mlteach\n"
        "print(mlteach.exercises.has_reference_answers())\n"
        "r = mlteach.check('2.3', 0.42); print(r.status, bool(r))\n"
        "print(mlteach.check('ex-5-1', None).status)\n", tmp_path / "notebooks")
    lines = out.splitlines()
    assert lines[0] == "False"
    assert lines[1] == "to be graded False"
    assert lines[2] == "no answer yet"
    assert "autograder checks it" in mlteach_to_be_graded()


def mlteach_to_be_graded() -> str:
    import mlteach.exercises
    return mlteach.exercises.TO_BE_GRADED


@pytest.mark.slow
def test_student_html_has_no_solutions(tmp_path):
    """Build the student HTML book and look for solution lines in every page and source."""
    chapters = conv.chapter_notebooks(ROOT)
    if not chapters:
        pytest.skip("no chapter notebooks yet")
    html = make_student.build_html(chapters, tmp_path)
    stub = (html / "book" / "instructors.html").read_text(encoding="utf-8")
    assert "student edition" in stub and "Adding an exercise" not in stub
    for path in chapters:
        # The chapter's own page and the sources it ships (.ipynb download, _sources text). Other
        # chapters' pages are left out: a line that is secret here may be ordinary code there
        # (`with warnings.catch_warnings(record=True) as caught:` is both).
        own = [p for p in html.rglob(f"{path.stem}*")
               if p.suffix in (".html", ".ipynb", ".md", ".txt")]
        assert any(p.suffix == ".html" for p in own), f"no student page for {path.name}"
        pages = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in own)
        nb = nbformat.read(path, as_version=4)
        leaked = [line for line in solution_lines(nb)
                  if len(line) > 20 and (line in pages or html_module.escape(line) in pages)]
        assert not leaked, f"{path.name}: solution lines in the student HTML: {leaked[:3]}"


def test_plain_rewrite_of_each_myst_form():
    from plain_markdown import BookIndex, PlainMarkdownError, Rewriter

    index = BookIndex(labels={"ex-3-1": "Exercise 3.1"}, numbers={"eq-a": "3.2", "fig-b": "3.1"},
                      kinds={"eq-a": "Equation", "fig-b": "Figure"},
                      pages={"/book/notation": "Notation"},
                      cites={"mundlak1978": ("Mundlak", "1978"),
                             "bell2015": ("Bell and Jones", "2015")})
    r = Rewriter(index, {"tau": "0.123456", "n": "160"})
    text = r.markdown(
        "(sec-x)=\n% a comment\nSee {numref}`fig-b`, {eq}`eq-a` and {ref}`ex-3-1`; the\n"
        "{term}`ICC\n<intraclass correlation (ICC)>` is {glue:text}`tau:.2f` in {glue:text}`n`\n"
        "schools {cite:p}`mundlak1978,bell2015`, as {cite:t}`bell2015` say; {doc}`/book/notation`."
        "\n\n```{admonition} Careful\n:class: warning\nA $\\tau$ line.\n```\n\n"
        "$$\ny = x\n$$ (eq-a)\n")
    assert text == (
        "See Figure 3.1, (3.2) and Exercise 3.1; the\nICC is 0.12 in 160\n"
        "schools (Mundlak, 1978; Bell and Jones, 2015), as Bell and Jones (2015) say; Notation."
        "\n\n> **Careful**\n>\n> A $\\tau$ line.\n\n$$\ny = x\n\\tag{3.2}\n$$")
    with pytest.raises(PlainMarkdownError, match="no glued value 'nope'"):
        r.markdown("{glue:text}`nope`")
    with pytest.raises(PlainMarkdownError, match=r"the role \{kbd\} has no plain rewrite"):
        r.markdown("{kbd}`Ctrl`")
