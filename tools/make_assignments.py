#!/usr/bin/env python
"""Write nbgrader assignments of the chapters (the instructor edition) into _build/nbgrader.

    python tools/make_assignments.py                  # `make assignments`: every chapter
    python tools/make_assignments.py --out COURSE notebooks/03-mundlak-centering.ipynb

``<out>`` is an nbgrader course directory: ``nbgrader_config.py`` and
``source/chNN/NN-topic.ipynb``, one assignment per chapter. In it::

    nbgrader generate_assignment ch03      # release/ch03: what students get
    nbgrader autograde ch03                # after collecting submitted/<student>/ch03/
    nbgrader export                        # grades.csv

Each chapter becomes an assignment with nbgrader cell metadata:

- each run of ``solution``-tagged code cells becomes one **autograded answer** cell
  (``solution``): the instructor's code between ``### BEGIN SOLUTION`` / ``### END SOLUTION``,
  which `nbgrader generate_assignment` replaces by ``# Your code here``; ``answer = None`` stays
  in front when the solution assigns ``answer``, so the released notebook runs top to bottom;
- each ``check`` cell becomes an **autograder test** cell (``grade``, 1 point) derived from the
  same answer check: students see ``mlteach.check("3.2", answer)``; a hidden test, which
  displays the verdict and asserts it (a wrong answer fails with the check's hint, never the
  reference answer), is removed from the release and restored by
  `nbgrader autograde`, which runs it with the instructor's full mlteach (with
  ``mlteach/checks``, the reference answers);
- each ``{solution}`` directive becomes a **manually graded answer** markdown cell (1 point)
  holding the model answer, which the release replaces by "Your answer here.";
- each markdown cell holding an exercise is **locked** (read-only); all other cells are kept;
- the markdown is rewritten for any Jupyter front end (`plain_markdown.py`), as in the student
  edition; outputs are cleared.

``nbgrader_config.py`` sets the stubs, a kernel timeout, and ignores any ``mlteach/`` folder in
a submission, so that grading always imports the instructor's installed mlteach, never a copy a
student handed in.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exercise_conventions import (  # noqa: E402
    assigns_answer,
    chapter_notebooks,
    directives,
    exercises,
    is_check_code,
    is_solution_code,
    source,
    strip_solutions,
)
from plain_markdown import BookIndex, plain_notebook  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "nbgrader"
CHECK_POINTS = 1
MANUAL_POINTS = 1
CODE_STUB = "# Your code here"
TEXT_STUB = "Your answer here."
ANSWER_NONE = "answer = None  # replace None with your result"
_CHECK_CALL = re.compile(r"""check\(\s*["']([^"']+)["']""")

CONFIG = f'''\
# nbgrader configuration of the mlteach course (written by tools/make_assignments.py).
c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "mlteach"
# A submission's own mlteach/ folder is never copied into autograded/: the hidden tests must run
# the instructor's installed mlteach (the full edition, with mlteach/checks), not a student's copy.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "mlteach"]
# What students see in place of the solutions (the released notebooks run top to bottom).
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}
c.ClearSolutions.text_stub = {TEXT_STUB!r}
# A chapter runs in about 10-20 s; the default 30 s per cell is enough, 300 s leaves room.
c.Execute.timeout = 300
'''

NOTE = (
    "**Assignment.** Write your code in the cells marked `# Your code here` and put your result "
    "in `answer`; write your explanations where it says *Your answer here.* The cell below each "
    "answer, `mlteach.check(...)`, is graded when you hand the notebook in; do not change it. "
    "Run the notebook from the top (Kernel → Restart & Run All) before you hand it in."
)


def assignment_name(path: Path) -> str:
    m = re.match(r"(\d+)-", path.name)
    return f"ch{int(m.group(1)):02d}" if m else path.stem


def _meta(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def _label_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def _segments(text: str) -> list[tuple[str, object]]:
    """("text", str) and ("solution", Directive) parts of a markdown cell, in order; text parts
    that are blank are left out."""
    lines = text.splitlines()
    parts: list[tuple[str, object]] = []
    start = 0
    for d in directives(text):
        if d.name != "solution":
            continue
        parts.append(("text", "\n".join(lines[start:d.start])))
        parts.append(("solution", d))
        start = d.end
    parts.append(("text", "\n".join(lines[start:])))
    strip_solutions(text)                        # refuses gated solutions, with the reason
    return [(k, v.strip("\n") if k == "text" else v) for k, v in parts
            if k == "solution" or v.strip()]


def assignment_notebook(nb, index: BookIndex, name: str = "notebook"):
    """The nbgrader source version of the executed chapter `nb` (see the module docstring)."""
    found = exercises(nb, name)                  # refuse notebooks that break the conventions
    by_label = {ex.label: ex for ex in found}
    out = copy.deepcopy(nb)
    cells: list = []
    run: list = []
    used: set[str] = set()
    current = None                               # the exercise the next code cells belong to
    pending: list = []                           # answer cells waiting for the exercise's end

    def unique(grade_id: str) -> str:
        base, n = grade_id, 1
        while grade_id in used:
            n += 1
            grade_id = f"{base}-{n}"
        used.add(grade_id)
        return grade_id

    def close_run() -> None:
        if not run:
            return
        code = "\n\n".join(source(c).rstrip("\n") for c in run)
        head = ANSWER_NONE + "\n" if any(assigns_answer(source(c)) for c in run) else ""
        cell = nbformat.v4.new_code_cell(
            f"{head}### BEGIN SOLUTION\n{code}\n### END SOLUTION")
        cell["id"] = run[0].get("id", cell["id"])
        cell.metadata["tags"] = ["solution"]
        cell.metadata["nbgrader"] = _meta(unique(f"{current or 'code'}-answer"), solution=True)
        cells.append(cell)
        run.clear()

    for cell in out.cells:
        if is_solution_code(cell):
            run.append(cell)
            continue
        close_run()
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if cell.cell_type == "markdown":
            # A cell is cut at its {solution} directives: the text around them stays (locked
            # where it states an exercise), each solution becomes a manually graded answer cell,
            # placed after the exercise's code and check (before the next markdown text).
            for n, (kind, text) in enumerate(_segments(source(cell))):
                if kind == "solution":
                    ex = by_label[text.argument]
                    answer = nbformat.v4.new_markdown_cell(text.body)
                    answer.metadata["nbgrader"] = _meta(
                        unique(f"{_label_id(ex.label)}-explain"), solution=True, grade=True,
                        points=MANUAL_POINTS)
                    pending.append(answer)
                    continue
                cells.extend(pending)
                pending.clear()
                part = copy.deepcopy(cell) if n else cell
                if n:
                    part["id"] = f"{cell.get('id', 'md')}-{n}"[:64]
                part.source = text
                labels = [d.options.get("label", "") for d in directives(text)
                          if d.name == "exercise"]
                if labels:
                    current = _label_id(labels[-1])
                    part.metadata["nbgrader"] = _meta(unique(f"{_label_id(labels[0])}-text"),
                                                      locked=True)
                cells.append(part)
            continue
        if is_check_code(cell):
            ids = _CHECK_CALL.findall(source(cell))
            # The verdict is displayed (graded feedback) and asserted: a wrong answer fails
            # with the check's hint as the message; no reference answer is in the code.
            hidden = "\n".join(f'_verdict = mlteach.check("{i}", answer)\n'
                               f'display(_verdict)\n'
                               f'assert _verdict, str(_verdict)' for i in ids)
            cell.source = (f"{source(cell).rstrip()}\n### BEGIN HIDDEN TESTS\n{hidden}\n"
                           f"### END HIDDEN TESTS")
            cell.metadata["nbgrader"] = _meta(unique(f"{_label_id(current or 'check')}-check"),
                                              grade=True, locked=True, points=CHECK_POINTS)
        cells.append(cell)
    close_run()
    cells.extend(pending)
    first = nbformat.v4.new_markdown_cell(NOTE)
    first["id"] = "assignment-note"
    cells.insert(0, first)
    out.cells = cells
    out.metadata.pop("widgets", None)
    plain_notebook(out, nb, index, name)      # glued numbers, roles, directives, glue import
    nbformat.validate(out)
    return out


def write_course(notebooks: list[Path], out: Path) -> list[Path]:
    """Write nbgrader_config.py and source/<assignment>/<chapter>.ipynb into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(CONFIG, encoding="utf-8")
    index = BookIndex.build(chapter_notebooks(ROOT))   # cross-references to every chapter
    written = []
    for path in notebooks:
        folder = out / "source" / assignment_name(path)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        nb = assignment_notebook(nbformat.read(path, as_version=4), index, path.name)
        target = folder / path.name
        target.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="chapter notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, default=OUT, help="course directory (_build/nbgrader)")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or chapter_notebooks(ROOT)
    written = write_course(notebooks, args.out.resolve())
    for path in written:
        print(path)
    print(f"{len(written)} nbgrader assignments and nbgrader_config.py in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
