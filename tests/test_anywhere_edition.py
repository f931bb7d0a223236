"""The run-anywhere edition (tools/make_anywhere.py): the full chapters for any Jupyter front end.

What a reader downloads or launches (the zip of `make anywhere`, the book's .ipynb download
button, Binder) must read right where no Sphinx runs: no MyST role or directive left that a
plain front end shows raw, the glued numbers written in, solutions and outputs kept, and every
notebook must run top to bottom in a fresh environment with only the edition's
requirements.txt (the same file as the student edition's, so the two tests share one venv).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import exercise_conventions as conv  # noqa: E402
import make_anywhere  # noqa: E402
import make_student  # noqa: E402
from plain_markdown import RAW_MYST, BookIndex, Rewriter, format_glue, glue_values  # noqa: E402
from fresh_env import FreshEnv  # noqa: E402

CHAPTERS = conv.chapter_notebooks(ROOT)
IDS = [p.stem for p in CHAPTERS]


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("anywhere")
    make_anywhere.write_edition(CHAPTERS, out)
    return out


def assert_plain(nb, name: str) -> None:
    """What a plain front end (JupyterLab without jupyterlab-myst, VS Code, Colab) would show
    raw: {role}`...`, ```{directive} / :::{directive} fences, (label)= lines, $$ (label), MyST
    comments; and code that imports myst_nb (not installed outside the book build)."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            hit = RAW_MYST.search(cell.source)
            assert hit is None, (f"{name} cell {i}: raw MyST "
                                 f"{cell.source[max(0, hit.start() - 30):hit.end() + 30]!r}")
            assert not re.search(r"^% ", cell.source, re.M), f"{name} cell {i}: MyST comment"
        elif cell.cell_type == "code":
            assert not re.search(r"^\s*(from|import) myst_nb", cell.source, re.M), (
                f"{name} cell {i} imports myst_nb")
            for output in cell.get("outputs", []):
                assert not any(k.startswith(make_anywhere.RECORD) for k in output.get("data", {}))


def test_the_check_sees_raw_myst():
    """The detector itself: each form it must catch, and plain text it must leave alone."""
    for raw in ("see {numref}`fig-x`", "```{exercise} T", ":::{note}", "(sec-a)=", "$$ (eq-a)",
                "{glue:text}`tau:.2f`"):
        assert RAW_MYST.search(raw), raw
    for plain in ("see Figure 2.1", "$$\n\\tag{2.1}\n$$", "`{}`.format", "> **Note**"):
        assert RAW_MYST.search(plain) is None, plain


def test_api_roles_become_inline_code():
    """{py:func} and friends link to the API reference in the book; elsewhere they are code."""
    rewrite = Rewriter(BookIndex(), {}).inline
    assert rewrite("fit with {py:func}`mlteach.lmm`.") == "fit with `mlteach.lmm`."
    assert rewrite("see {py:class}`~mlteach.LMMResult`") == "see `LMMResult`"
    assert rewrite("{py:meth}`predict <mlteach.LMMResult.predict>`") == "predict"
    assert RAW_MYST.search(rewrite("{py:attr}`mlteach.LMMResult.ranef`")) is None


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_reads_right_in_any_jupyter_front_end(edition, path):
    assert_plain(nbformat.read(edition / "notebooks" / path.name, as_version=4), path.name)


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_full_chapter_kept_solutions_outputs_and_numbers(edition, path):
    source = nbformat.read(path, as_version=4)
    nb = nbformat.read(edition / "notebooks" / path.name, as_version=4)
    code = [c for c in source.cells if c.cell_type == "code"]
    assert [c for c in nb.cells if c.cell_type == "code"].__len__() == len(code)
    assert sum(conv.is_solution_code(c) for c in nb.cells) == sum(map(conv.is_solution_code,
                                                                      code))
    # every ordinary output is kept (pictures, tables, text), only glue records go
    kept = sum(len(c.outputs) for c in nb.cells if c.cell_type == "code")
    records = sum(1 for c in code for o in c.outputs
                  if o.get("data") and all(k.startswith(make_anywhere.RECORD) for k in o.data))
    assert kept == sum(len(c.outputs) for c in code) - records > 0
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for ex in conv.exercises(source, path.name):
        assert f"**Exercise {ex.id}" in text
        if ex.solution_text:
            assert f"> **Solution to Exercise {ex.id}**" in text
    nbformat.validate(nb)


def test_glued_numbers_written_in(edition):
    nb = nbformat.read(edition / "notebooks" / "02-random-intercepts.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    glued = glue_values(nbformat.read(ROOT / "notebooks" / "02-random-intercepts.ipynb",
                                      as_version=4))
    assert format_glue(glued["null_icc"], ".3f") in text
    assert "\\tag{2.1}" in text and "Figure 2.1" in text and "> **Learning goals**" in text
    assert text.startswith("**Run-anywhere edition**")


def test_bundle(edition):
    assert (edition / "notebooks" / "mlteach" / "checks" / "ch02.py").exists()
    # the student edition's file, so the two fresh-venv tests share one pip install
    assert (edition / "requirements.txt").read_text() == make_student.requirements()
    with zipfile.ZipFile(edition / "mlteach-notebooks.zip") as zf:
        names = zf.namelist()
    assert "mlteach-notebooks/README.md" in names
    assert "mlteach-notebooks/notebooks/02-random-intercepts.ipynb" in names
    assert "mlteach-notebooks/notebooks/mlteach/data/hsb82.csv" in names
    assert not [n for n in names if n.endswith(".md") and "/notebooks/" in n
                and "/mlteach/" not in n], "the MyST twins are not part of this edition"


def test_book_downloads_are_rewritten(tmp_path):
    """`--html DIR` (run by `make book`) replaces the .ipynb the download button serves."""
    sources = tmp_path / "html" / "_sources" / "notebooks"
    sources.mkdir(parents=True)
    for path in CHAPTERS[:2]:
        shutil.copy2(path, sources / path.name)
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_anywhere.py"),
                             "--html", str(tmp_path / "html")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for path in CHAPTERS[:2]:
        assert_plain(nbformat.read(sources / path.name, as_version=4), path.name)
    missing = subprocess.run([sys.executable, str(ROOT / "tools" / "make_anywhere.py"),
                              "--html", str(tmp_path / "nowhere")], capture_output=True,
                             text=True)
    assert missing.returncode != 0 and "build the book first" in missing.stderr


def test_make_book_and_binder_serve_this_edition():
    """The book's download button and Binder's checkout get the rewritten notebooks."""
    makefile = (ROOT / "Makefile").read_text()
    book = makefile.split("\nbook:", 1)[1].split("\n\n", 1)[0]
    assert "tools/make_anywhere.py --html _build/html" in book
    assert re.search(r"^anywhere: .*\n\t\$\(PY\) tools/make_anywhere.py", makefile, re.M)
    assert "tools/make_anywhere.py --in-place" in (ROOT / "binder" / "postBuild").read_text()
    assert "make anywhere" in (ROOT / "README.md").read_text()


def test_in_place_rewrite_for_binder(tmp_path):
    copies = []
    for path in CHAPTERS:
        shutil.copy2(path, tmp_path / path.name)
        copies.append(tmp_path / path.name)
    assert make_anywhere.main(["--in-place", *map(str, copies)]) == 0
    for path in copies:
        assert_plain(nbformat.read(path, as_version=4), path.name)


@pytest.fixture(scope="module")
def reader_kernel(edition, tmp_path_factory) -> FreshEnv:
    """A fresh venv outside the repository with only the edition's requirements.txt (shared
    with the student-edition test: the same file)."""
    return FreshEnv.shared(tmp_path_factory, edition / "requirements.txt", "mlteach-student")


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_runs_in_a_fresh_environment(edition, reader_kernel, path, tmp_path):
    """Top to bottom from an unzipped copy, solutions included: every check says correct."""
    with zipfile.ZipFile(edition / "mlteach-notebooks.zip") as zf:
        zf.extractall(tmp_path)
    folder = tmp_path / "mlteach-notebooks" / "notebooks"
    nb = reader_kernel.execute(folder / path.name, folder)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "error"]
    assert not errors, errors[0]
    for cell in nb.cells:
        if conv.is_check_code(cell):
            text = "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)
            assert ": correct." in text, text
