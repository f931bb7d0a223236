"""nbgrader assignments (tools/make_assignments.py): metadata, release without answers, grading.

The end-to-end test does what the instructors' page (book/instructors.md, "Grading with
nbgrader") tells an instructor to do, command for command, in a temporary course directory:
write the course, `nbgrader generate_assignment ch03`, put two submissions in place (one with
exercise 3.2 solved, one handed in untouched), `nbgrader autograde ch03`, `nbgrader export`, and
read the scores from grades.csv.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.preprocessors import CheckCellMetadata, ClearHiddenTests, ClearOutput, ClearSolutions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import exercise_conventions as conv  # noqa: E402
import make_assignments  # noqa: E402
from plain_markdown import RAW_MYST  # noqa: E402
from test_student_edition import solution_lines  # noqa: E402

CHAPTERS = conv.chapter_notebooks(ROOT)
IDS = [p.stem for p in CHAPTERS]
CHAPTER = ROOT / "notebooks" / "03-mundlak-centering.ipynb"     # the walk-through's chapter
INSTRUCTORS = ROOT / "book" / "instructors.md"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("course")
    make_assignments.write_course(CHAPTERS, out)
    return out


def source_nb(course: Path, path: Path):
    return nbformat.read(course / "source" / make_assignments.assignment_name(path) / path.name,
                         as_version=4)


def released(nb):
    """What `nbgrader generate_assignment` does to a notebook, with this course's stubs, done
    in-process with nbgrader's own preprocessors (the end-to-end test runs the command)."""
    from traitlets.config import Config

    config = Config()
    config.ClearSolutions.code_stub = {"python": make_assignments.CODE_STUB}
    config.ClearSolutions.text_stub = make_assignments.TEXT_STUB
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)   # a copy, sources as text
    for pre in (ClearSolutions(config=config), ClearOutput(), ClearHiddenTests(),
                CheckCellMetadata()):
        nb, _ = pre.preprocess(nb, {})
    return nb


def grading(nb) -> dict[str, dict]:
    return {c.metadata["nbgrader"]["grade_id"]: dict(c.metadata["nbgrader"], cell=c)
            for c in nb.cells if "nbgrader" in c.metadata}


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_cells_carry_nbgrader_metadata(course, path):
    chapter = nbformat.read(path, as_version=4)
    found = conv.exercises(chapter, path.name)
    cells = grading(source_nb(course, path))
    for ex in found:
        label = ex.label
        assert cells[f"{label}-text"]["locked"], f"{label}: exercise text not locked"
        for n, _ in enumerate(ex.solution_text):
            explain = cells[f"{label}-explain" + (f"-{n + 1}" if n else "")]
            assert explain["solution"] and explain["grade"] and explain["points"] == 1
        if ex.solution_code:
            answer = cells[f"{label}-answer"]
            assert answer["solution"] and not answer["grade"]
            assert "### BEGIN SOLUTION" in answer["cell"].source
        if ex.checks:
            test = cells[f"{label}-check"]
            assert test["grade"] and not test["solution"] and test["points"] == 1
            text = test["cell"].source
            assert text.startswith(f'mlteach.check("{ex.id}", answer)\n### BEGIN HIDDEN TESTS')
            assert f'_verdict = mlteach.check("{ex.id}", answer)' in text
            assert "assert _verdict" in text
    # every check cell of the chapter became a graded test, and nothing else did
    graded_code = [c for c in cells.values() if c["grade"] and c["cell"].cell_type == "code"]
    assert len(graded_code) == sum(map(conv.is_check_code, chapter.cells))
    # autograder tests never hold a number: they call the same check students see
    for c in graded_code:
        without_ids = re.sub(r'mlteach\.check\("\d+\.\d+"', "", c["cell"].source)
        assert not re.search(r"\d\.\d", without_ids), c["cell"].source


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_release_has_no_solutions_and_reads_right(course, path):
    nb = released(source_nb(course, path))
    text = "\n".join(c.source for c in nb.cells)
    leaked = sorted(solution_lines(nbformat.read(path, as_version=4))
                    & {line.strip() for line in text.splitlines()})
    assert not leaked, f"{path.name}: solution lines in the release: {leaked[:5]}"
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "_verdict" not in text
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            assert RAW_MYST.search(cell.source) is None, f"{path.name} cell {i}: raw MyST"
        else:
            assert not re.search(r"^\s*(from|import) myst_nb", cell.source, re.M)
            assert cell.outputs == []
    stubs = [c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
             and c.cell_type == "code"]
    assert stubs and all(s.endswith(make_assignments.CODE_STUB) for s in stubs)


def test_course_config(course):
    config = (course / "nbgrader_config.py").read_text()
    assert '"mlteach"]' in config and "code_stub" in config and "c.Execute.timeout" in config
    assert sorted(p.name for p in (course / "source").iterdir()) == \
        [f"ch{n:02d}" for n in range(1, len(CHAPTERS) + 1)]


# ----------------------------------------------------------------------------------------------
# End to end, as on the instructors' page
# ----------------------------------------------------------------------------------------------


def commands_on_the_page() -> list[str]:
    """The shell commands of the page's nbgrader walk-through (the ```bash blocks of its
    'Grading with nbgrader' section), comments dropped."""
    page = INSTRUCTORS.read_text(encoding="utf-8")
    section = page.split("## Grading with nbgrader", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def test_page_walks_through_these_steps():
    assert commands_on_the_page() == [
        "python tools/make_assignments.py --out ~/mlteach-course",
        "cd ~/mlteach-course",
        "nbgrader generate_assignment ch03",
        "nbgrader autograde ch03",
        "nbgrader export --to grades.csv",
    ]


def run(command: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    """One command of the page, in a shell whose PATH starts with this Python's environment
    (an activated venv) and whose mlteach is this checkout (the instructor's full edition)."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=str(ROOT), HOME=str(home), OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    result = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


def fill_in(release: Path, source: Path, grade_id: str, target: Path) -> None:
    """A student's submission: the released notebook with one answer cell written (here: the
    instructor's solution code, without the solution markers)."""
    nb = nbformat.read(release, as_version=4)
    solution = next(c.source for c in nbformat.read(source, as_version=4).cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    code = re.search(r"### BEGIN SOLUTION\n(.*)\n### END SOLUTION", solution, re.S).group(1)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source = code
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)


@pytest.mark.slow
def test_generate_autograde_export_as_on_the_instructors_page(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    course = home / "mlteach-course"
    commands = commands_on_the_page()
    # 1. write the course (the page writes every chapter; one is enough here) and cd into it
    assert commands[0].startswith("python tools/make_assignments.py --out ")
    run(f"{commands[0].replace('python ', f'{sys.executable} ', 1)} {CHAPTER}", ROOT, home)
    assert commands[1] == "cd ~/mlteach-course" and course.is_dir()
    # 2. release
    run(commands[2], course, home)
    release = course / "release" / "ch03" / CHAPTER.name
    assert release.exists()
    # 3. two submissions, collected as nbgrader expects them: submitted/<student>/ch03/
    source = course / "source" / "ch03" / CHAPTER.name
    fill_in(release, source, "ex-3-2-answer", course / "submitted" / "alice" / "ch03" /
            CHAPTER.name)
    cheat = course / "submitted" / "alice" / "ch03" / "mlteach"     # a fake library handed in
    cheat.mkdir()
    (cheat / "__init__.py").write_text("def check(*args, **kwargs):\n    return True\n")
    (course / "submitted" / "bob" / "ch03").mkdir(parents=True)
    shutil.copy2(release, course / "submitted" / "bob" / "ch03" / CHAPTER.name)
    # 4. autograde, 5. export, then read the scores
    run(commands[3], course, home)
    run(commands[4], course, home)
    with open(course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    chapter = nbformat.read(CHAPTER, as_version=4)
    found = conv.exercises(chapter, CHAPTER.name)
    max_score = len([e for e in found for _ in e.checks]) + sum(len(e.solution_text)
                                                                 for e in found)
    assert float(rows["alice"]["max_score"]) == max_score
    assert float(rows["alice"]["score"]) == 1.0        # exercise 3.2 right, the rest empty
    assert float(rows["bob"]["score"]) == 0.0
    assert not (course / "autograded" / "alice" / "ch03" / "mlteach").exists()
    graded = nbformat.read(course / "autograded" / "alice" / "ch03" / CHAPTER.name, as_version=4)
    verdicts = {c.metadata["nbgrader"]["grade_id"]: "".join(
        o.get("data", {}).get("text/plain", "") + o.get("evalue", "") for o in c.outputs)
        for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade")
        and c.cell_type == "code"}
    assert "Exercise 3.2: correct." in verdicts["ex-3-2-check"]
    assert "Exercise 3.3: no answer yet." in verdicts["ex-3-3-check"]
