#!/usr/bin/env python
"""Write the student edition of the book (no solutions) into _build/student.

    python tools/make_student.py              # `make student`: notebooks, README, zip, HTML
    python tools/make_student.py --no-html    # notebooks, README and zip only (seconds)
    python tools/make_student.py --out DIR tests/fixtures/ex_demo.ipynb

For every notebook (default: ``notebooks/*.ipynb``) it writes ``<out>/notebooks/<name>.ipynb``:

- each run of code cells tagged ``solution`` becomes one ``# Your code here`` cell, which
  assigns ``answer = None`` when the solution assigns ``answer``;
- each ``{solution}`` directive is cut from its markdown cell (a cell left empty is dropped);
- every output and execution count is cleared; ``check`` cells and all other cells are kept;
- a short note at the top tells students how to answer and check;
- the markdown is rewritten for any Jupyter front end (`plain_markdown.py`): glued numbers
  substituted, cross-references, glossary terms and citations as plain text, admonitions and
  exercises as block quotes and bold titles, and ``from myst_nb import glue`` replaced by a
  stand-in, so nothing Sphinx-only is imported.

Beside them it copies what the notebooks need: the ``mlteach`` package with its data, but
without ``mlteach/checks`` (the code that recomputes every reference answer stays with the
instructors, and a check in this edition says *to be graded*), and any non-chapter files in
``notebooks/``. It writes ``requirements.txt``, ``README.md`` (how to hand the notebooks out and
how answers are checked) and ``mlteach-student.zip``.

The student HTML book (``<out>/html``) is built by Jupyter Book from a temporary copy of the
sources in which the same stripping is done, except that the outputs of ordinary cells are kept
(readers see the chapter as in the instructors' book; placeholder and check cells have no
output), the instructors' page is replaced by a stub (so links to it still work), and
``{solution}`` directives are cut from every markdown page too. sphinx-exercise's
``hide_solutions`` is not used: it crashes on gated solutions and leaves the solution code
cells in place.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_markdown import BookIndex, plain_notebook  # noqa: E402
from exercise_conventions import (  # noqa: E402
    PLACEHOLDER,
    assigns_answer,
    chapter_notebooks,
    exercises,
    is_check_code,
    is_solution_code,
    source,
    strip_solutions,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "student"
INSTRUCTOR_PAGES = ("book/instructors",)
# Top-level entries never copied into the temporary book sources.
NOT_BOOK_SOURCES = {".git", ".venv", "_build", ".hypothesis", ".pytest_cache", ".ci", "tests",
                    "tools", "benchmarks", "mlteach", "notebooks", "__pycache__"}
# What the student notebooks import (linearmodels: the wage_panel data of chapters 4 and 8), and
# JupyterLab to open them: a fresh environment with only these runs every notebook.
RUNTIME_PACKAGES = ("numpy", "pandas", "scipy", "formulaic", "matplotlib", "ipykernel",
                    "linearmodels", "jupyterlab")

INSTRUCTOR_STUB = """# For instructors

This is the student edition of the book, without solutions. The instructors' guide (assigning
exercises, the answer checks, adding an exercise, the table of every exercise) is in the full
edition.
"""

STUDENT_NOTE = (
    "**Student edition.** The solutions are not in this notebook. Each exercise has a cell "
    "marked `# Your code here`: write your code there, put your result in `answer`, and run "
    "the check cell below it (`mlteach.check(...)`). It says *correct*, or *not yet* with a "
    "hint; it never shows the answer. Run the notebook from the top (Kernel → Restart & Run "
    "All) before you start."
)


def _clean_metadata(cell) -> None:
    for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
        cell.metadata.pop(key, None)


def student_notebook(nb, name: str = "notebook", keep_outputs: bool = False,
                     note: bool = True):
    """A copy of `nb` without solutions (see the module docstring).

    `keep_outputs=True` (for the HTML book) keeps the outputs of ordinary cells; the outputs of
    check cells are always cleared, since they report on the instructors' solution.
    """
    exercises(nb, name)                        # refuse notebooks that break the conventions
    out = copy.deepcopy(nb)
    cells = []
    run: list = []                             # the current run of solution code cells

    def close_run() -> None:
        if not run:
            return
        text = PLACEHOLDER + "\n"
        if any(assigns_answer(source(c)) for c in run):
            text += "answer = None  # replace None with your result\n"
        placeholder = nbformat.v4.new_code_cell(text.rstrip("\n"))
        if "id" in run[0]:
            placeholder["id"] = run[0]["id"]   # unique: the cell it replaces is gone
        cells.append(placeholder)
        run.clear()

    for cell in out.cells:
        if is_solution_code(cell):
            run.append(cell)
            continue
        if cell.cell_type == "markdown":
            text = strip_solutions(source(cell))
            if not text.strip():
                continue                      # a solution-only cell: dropped, run continues
            cell.source = text
        close_run()
        _clean_metadata(cell)
        if cell.cell_type == "code":
            if not keep_outputs or is_check_code(cell):
                cell.outputs = []
                cell.execution_count = None
        cells.append(cell)
    close_run()
    if not keep_outputs:
        for cell in cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
    if note:
        first = nbformat.v4.new_markdown_cell(STUDENT_NOTE)
        first["id"] = "student-edition-note"
        cells.insert(0, first)
    out.cells = cells
    out.metadata.pop("widgets", None)
    return out


def _without_reference_answers(folder: str, names: list[str]) -> set[str]:
    """`shutil.copytree` ignore rule for the student copy of mlteach: caches, and the answer
    checks (``mlteach/checks``)."""
    skip = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
    if Path(folder) == ROOT / "mlteach":
        skip.add("checks")
    return skip


def write_notebooks(notebooks: list[Path], out: Path) -> list[Path]:
    """Write the student notebooks and the files they need to run into `out`/notebooks."""
    dest = out / "notebooks"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    written = []
    index = BookIndex.build(notebooks)
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        student = plain_notebook(student_notebook(nb, path.name), nb, index, path.name)
        nbformat.validate(student)
        target = dest / path.name
        target.write_text(nbformat.writes(student) + "\n", encoding="utf-8")
        written.append(target)
    # What the notebooks need besides an installed environment: mlteach with its data sets
    # (importable from the notebooks' folder), and any data or images kept next to the chapters.
    # Not mlteach/checks: it computes every reference answer (the instructors' autograder uses it).
    shutil.copytree(ROOT / "mlteach", dest / "mlteach",
                    ignore=_without_reference_answers)
    src = ROOT / "notebooks"
    for item in sorted(src.iterdir()) if src.exists() else []:
        if item.suffix in (".ipynb", ".md") or item.name.startswith((".", "_")):
            continue                           # chapters, their MyST twins (with solutions!)
        if item.is_dir():
            shutil.copytree(item, dest / item.name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        else:
            shutil.copy2(item, dest / item.name)
    return written


def requirements() -> str:
    """Pinned runtime requirements (the versions of requirements.lock)."""
    pins = {}
    lock = ROOT / "requirements.lock"
    if lock.exists():
        for line in lock.read_text().splitlines():
            name, sep, version = line.partition("==")
            if sep:
                pins[name.strip().lower()] = line.strip()
    return "\n".join(pins.get(p, p) for p in RUNTIME_PACKAGES) + "\n"


README = """\
# Student edition: notebooks without solutions

Made by `make student` from the chapter notebooks of the course book. Every exercise keeps its
text and a check cell; its solution is replaced by a cell marked `# Your code here`.

| path | what |
| --- | --- |
| `notebooks/*.ipynb` | the chapters without solutions, outputs cleared |
| `notebooks/mlteach/` | the course library and its data sets, importable from `notebooks/` |
| `requirements.txt` | the Python packages the notebooks need |
| `mlteach-student.zip` | all of the above in one file, to hand out |
| `html/` | the book without solutions (`html/index.html`), if built |

## Handing the notebooks out

- **Zip**: give students `mlteach-student.zip`. They unzip it, run
  `python -m pip install -r requirements.txt` (Python 3.10+) and open `notebooks/` in
  JupyterLab (`jupyter lab notebooks/`; requirements.txt installs it), VS Code or Colab. The
  `mlteach` folder next to the notebooks is what `import mlteach` loads, so nothing else needs
  installing. The notebooks are plain Jupyter markdown: the numbers the book computes are
  written in, cross-references read "Figure 2.1" and "(2.3)", and nothing needs the book's
  Sphinx tools.
- **LMS** (Moodle, Canvas, ...): upload one chapter notebook per assignment, and the zip once
  as course material (the notebooks need the `mlteach` folder next to them, or mlteach
  installed). Students submit their completed `.ipynb`.
- **JupyterHub**: copy `notebooks/` (with `mlteach/`) into the course's shared folder or a git
  repository pulled with nbgitpuller, on a hub whose image installs `requirements.txt`.
- **Web**: publish `html/` as a static site (any web server, GitHub Pages, an LMS page); it is
  the book without solutions.

## How students check their answers

Each computational exercise has a cell marked `# Your code here` that starts with
`answer = None`, followed by a check cell:

```python
mlteach.check("1.2", answer)
```

Students write their code, put the result in `answer` and run the check. While `answer` is
`None` it says *no answer yet*, so the notebook runs top to bottom before any exercise is done;
once there is an answer it says *to be graded*. This edition has no reference answers: the
code that recomputes them (`mlteach/checks` in the full edition) is not shipped, so a student
cannot read an answer off it. Grade the handed-in notebooks with the full edition: the
autograder of the nbgrader assignments (`tools/make_assignments.py`, see the instructors' page
of the book) runs the same checks and says *correct* or *not yet* with a hint. For
self-assessment with instant hints, give students the full edition instead (`make anywhere`).
Conceptual exercises have no check; discuss them in class.
"""


def write_bundle(out: Path) -> Path:
    """README.md, requirements.txt and the zip of notebooks + both."""
    (out / "README.md").write_text(README, encoding="utf-8")
    (out / "requirements.txt").write_text(requirements(), encoding="utf-8")
    archive = out / "mlteach-student.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("README.md", "requirements.txt"):
            zf.write(out / name, f"mlteach-student/{name}")
        for path in sorted((out / "notebooks").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"mlteach-student/{path.relative_to(out)}")
    return archive


def student_book_sources(notebooks: list[Path], dest: Path) -> None:
    """Copy the book sources to `dest` with solutions stripped, ready for jupyter-book."""
    for item in ROOT.iterdir():
        if item.name in NOT_BOOK_SOURCES or item.name.startswith(".git"):
            continue
        if item.is_dir():
            shutil.copytree(item, dest / item.name,
                            ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        else:
            shutil.copy2(item, dest / item.name)
    for page in INSTRUCTOR_PAGES:          # a stub keeps links to the page and its label working
        path = dest / f"{page}.md"
        if path.exists():
            labels = [line for line in path.read_text(encoding="utf-8").splitlines()
                      if line.startswith("(") and line.endswith(")=")]
            path.write_text("\n".join(labels + [INSTRUCTOR_STUB]), encoding="utf-8")
    for md in dest.rglob("*.md"):
        text = md.read_text(encoding="utf-8")
        stripped = strip_solutions(text)
        if stripped != text:
            md.write_text(stripped + "\n", encoding="utf-8")
    nbdir = dest / "notebooks"
    nbdir.mkdir(exist_ok=True)
    for path in notebooks:
        nb = student_notebook(nbformat.read(path, as_version=4), path.name,
                              keep_outputs=True, note=False)
        (nbdir / path.name).write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    src = ROOT / "notebooks"
    for item in sorted(src.iterdir()) if src.exists() else []:
        if item.suffix in (".ipynb", ".md") or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, nbdir / item.name)
        else:
            shutil.copy2(item, nbdir / item.name)


def build_html(notebooks: list[Path], out: Path, strict: bool = True) -> Path:
    """Build the book without solutions into `out`/html; return that folder."""
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build"]
    with tempfile.TemporaryDirectory(prefix="mlteach-student-") as tmp:
        sources = Path(tmp) / "book"
        sources.mkdir()
        student_book_sources(notebooks, sources)
        flags = ["--warningiserror", "--nitpick", "--keep-going"] if strict else []
        result = subprocess.run(cmd + [str(sources), *flags], capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
            raise SystemExit(f"The student HTML build failed (exit {result.returncode}).")
        target = out / "html"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(sources / "_build" / "html", target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to convert (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (_build/student)")
    parser.add_argument("--no-html", dest="html", action="store_false",
                        help="skip the student HTML book (notebooks, README and zip only)")
    parser.add_argument("--lenient", action="store_true",
                        help="build the HTML without --warningiserror/--nitpick")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or chapter_notebooks(ROOT)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    written = write_notebooks(notebooks, out)
    archive = write_bundle(out)
    for path in written:
        print(f"{path.relative_to(out.parent) if out.parent in path.parents else path}")
    print(f"{len(written)} student notebooks, README.md and {archive.name} in {out}")
    if args.html:
        html = build_html(notebooks, out, strict=not args.lenient)
        print(f"Student HTML book: {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
