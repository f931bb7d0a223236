"""The book's exercise conventions, parsed: used by make_student.py, exercise_table.py and tests.

An exercise is written once, in a chapter notebook (``notebooks/NN-topic.ipynb``)::

    ```{exercise} Within and between slopes        <- title: the topic in the exercise table
    :label: ex-3-2                                 <- ex-<chapter>-<number>; check id "3.2"

    % minutes: 15; data: hsb82                     <- MyST comment: not shown, read by the table
    Fit the REWB model and report the within-school slope as `answer`.
    ```

    ```{solution} ex-3-2                           <- plain solution directive (never gated)
    The within slope is ...
    ```

    [code cell, tag "solution"]  answer = fit.params["ses_within"]
    [code cell, tag "check"]     mlteach.check("3.2", answer)

Code cells tagged ``solution`` belong to the most recent exercise above them; the student
edition replaces each run of them with a ``# Your code here`` cell (``answer = None`` when the
solution assigns ``answer``). A ``check`` cell is kept for students. Cells that are neither
must not use what a solution computes: the student edition runs top to bottom with
``answer = None``. An exercise with solution code or a check cell is *computational*, any other
*conceptual*.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

SOLUTION_TAG = "solution"
CHECK_TAG = "check"
PLACEHOLDER = "# Your code here"

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|:{3,})\{(?P<name>[a-zA-Z0-9_-]+)\}"
                    r"[ \t]*(?P<arg>.*?)\s*$")
_LABEL = re.compile(r"^ex-(\d+)-(\d+)$")
_CHECK_CALL = re.compile(r"""check\(\s*["']([^"']+)["']""")
_LOAD_CALL = re.compile(r"""load\(\s*["']([A-Za-z0-9_]+)["']""")


class ConventionError(ValueError):
    """A notebook breaks the exercise conventions; the message names the notebook and cell."""


@dataclass
class Directive:
    name: str          # "exercise", "solution", ...
    argument: str      # the title of an exercise; the label an answer solves
    options: dict[str, str]
    body: str
    start: int         # first line (index into text.splitlines())
    end: int           # one past the closing fence line


def directives(text: str) -> list[Directive]:
    """Top-level fenced directives (``` or :::) of a MyST markdown text, in order."""
    lines = text.splitlines()
    found: list[Directive] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group("fence")
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        body_lines = lines[i + 1:j]
        options: dict[str, str] = {}
        k = 0
        if body_lines and body_lines[0].strip() == "---":          # YAML options block
            end = next((n for n in range(1, len(body_lines)) if body_lines[n].strip() == "---"),
                       None)
            if end is not None:
                for line in body_lines[1:end]:
                    key, _, value = line.partition(":")
                    options[key.strip()] = value.strip()
                k = end + 1
        while k < len(body_lines) and re.match(r"^\s*:[\w-]+:", body_lines[k]):
            key, value = re.match(r"^\s*:([\w-]+):\s*(.*)$", body_lines[k]).groups()
            options[key] = value.strip()
            k += 1
        found.append(Directive(m.group("name"), m.group("arg"), options,
                               "\n".join(body_lines[k:]).strip("\n"), i, min(j + 1, len(lines))))
        i = j + 1
    return found


def strip_solutions(text: str) -> str:
    """The markdown text without its ``{solution}`` directives (and the blank lines they leave)."""
    found = [d for d in directives(text) if d.name == "solution"]
    gated = [d for d in directives(text) if d.name in ("solution-start", "solution-end")]
    if gated:
        raise ConventionError(
            "Gated solutions ({solution-start}/{solution-end}) are not used in this book: write a "
            "plain ```{solution} ex-N-M``` directive and tag solution code cells 'solution'."
        )
    if not found:
        return text
    lines = text.splitlines()
    drop = {n for d in found for n in range(d.start, d.end)}
    kept = [line for n, line in enumerate(lines) if n not in drop]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")


def assigns_answer(source: str) -> bool:
    """Does this code assign a variable called ``answer``?"""
    # IPython line magics (`%time answer = f()`) run the rest of the line as Python.
    python = re.sub(r"^(\s*)%{1,2}\w+[ \t]*", r"\1", source, flags=re.MULTILINE)
    python = re.sub(r"^\s*!.*$", "", python, flags=re.MULTILINE)
    try:
        tree = ast.parse(python)
    except SyntaxError:      # not Python after all: fall back to a line match
        return bool(re.search(r"^\s*answer\s*(:[^=\n]*)?=(?!=)", python, re.MULTILINE))
    return any(isinstance(node, ast.Name) and node.id == "answer"
               and isinstance(node.ctx, ast.Store) for node in ast.walk(tree))


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_solution_code(cell) -> bool:
    return cell.get("cell_type") == "code" and SOLUTION_TAG in tags(cell)


def is_check_code(cell) -> bool:
    return cell.get("cell_type") == "code" and CHECK_TAG in tags(cell)


def source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


@dataclass
class Exercise:
    """One exercise of a notebook, with what the tools need to know about it."""

    label: str
    id: str
    title: str
    body: str
    notebook: str
    options: dict[str, str] = field(default_factory=dict)   # from "% key: value" comment lines
    solution_text: list[str] = field(default_factory=list)  # bodies of {solution} directives
    solution_code: list[str] = field(default_factory=list)  # sources of solution-tagged cells
    checks: list[str] = field(default_factory=list)         # ids passed to mlteach.check

    @property
    def kind(self) -> str:
        return "computational" if self.solution_code or self.checks else "conceptual"

    @property
    def topic(self) -> str:
        if self.title:
            return self.title
        text = " ".join(line for line in self.body.splitlines() if not line.startswith("%"))
        first = re.split(r"(?<=[.?!])\s", text.strip(), maxsplit=1)[0]
        return first if len(first) <= 80 else first[:77].rstrip() + "..."

    @property
    def minutes(self) -> str | None:
        value = self.options.get("minutes") or self.options.get("time")
        if not value:
            return None
        return re.sub(r"\s*(min|minutes)\.?$", "", value.strip())

    def datasets(self, known: list[str]) -> list[str]:
        """The ``% data:`` line if given; else data sets named in the exercise or its code."""
        if self.options.get("data"):
            return [d.strip() for d in re.split(r"[,\s]+", self.options["data"]) if d.strip()]
        code = "\n".join(self.solution_code)
        found = _LOAD_CALL.findall(code)
        text = f"{self.title}\n{self.body}\n{code}"
        found += [k for k in known if re.search(rf"\b{re.escape(k)}\b", text)]
        return list(dict.fromkeys(d for d in found if d in known))


def _comment_options(body: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for line in body.splitlines():
        if line.startswith("%"):
            for part in line[1:].split(";"):
                key, sep, value = part.partition(":")
                if sep:
                    options[key.strip().lower()] = value.strip()
    return options


def exercises(nb, name: str) -> list[Exercise]:
    """Every exercise of a notebook (nbformat node or dict), checked against the conventions.

    Raises ConventionError for a malformed label, a solution without an exercise, solution code
    or a check cell before any exercise, or a check id that differs from its exercise's.
    """
    found: list[Exercise] = []
    by_label: dict[str, Exercise] = {}
    current: Exercise | None = None
    for n, cell in enumerate(nb["cells"]):
        where = f"{name}, cell {n}"
        if cell["cell_type"] == "markdown":
            for d in directives(source(cell)):
                if d.name == "exercise":
                    label = d.options.get("label", "")
                    m = _LABEL.match(label)
                    if not m:
                        raise ConventionError(
                            f"{where}: an exercise needs ':label: ex-<chapter>-<number>' (e.g. "
                            f"ex-3-2), found {label!r}.")
                    if label in by_label:
                        raise ConventionError(f"{where}: exercise label {label} used twice.")
                    current = Exercise(label, f"{int(m.group(1))}.{int(m.group(2))}",
                                       d.argument, d.body, name, _comment_options(d.body))
                    found.append(current)
                    by_label[label] = current
                elif d.name == "solution":
                    if d.argument not in by_label:
                        raise ConventionError(
                            f"{where}: '{{solution}} {d.argument}' does not name an exercise "
                            f"above it (known: {', '.join(by_label) or 'none'}).")
                    by_label[d.argument].solution_text.append(d.body)
                elif d.name in ("solution-start", "solution-end"):
                    strip_solutions(source(cell))            # raises the explanation
        elif is_solution_code(cell) or is_check_code(cell):
            if current is None:
                raise ConventionError(f"{where}: a cell tagged {tags(cell)} comes before any "
                                      f"exercise.")
            if is_solution_code(cell) and is_check_code(cell):
                raise ConventionError(f"{where}: a cell cannot be tagged both 'solution' and "
                                      f"'check': students must see the check, not the solution.")
            if is_solution_code(cell):
                current.solution_code.append(source(cell))
            else:
                ids = _CHECK_CALL.findall(source(cell))
                if not ids:
                    raise ConventionError(f"{where}: a 'check' cell must call "
                                          f"mlteach.check(\"{current.id}\", answer).")
                for ex_id in ids:
                    if ex_id not in (current.id, current.label):
                        raise ConventionError(
                            f"{where}: this check cell follows exercise {current.id} "
                            f"({current.label}) but checks {ex_id!r}.")
                current.checks.append(current.id)
    return found


def chapter_title(nb) -> str:
    """The first '# ' heading of a notebook."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in source(cell).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def chapter_notebooks(root: Path) -> list[Path]:
    """The notebooks of the book, ``notebooks/*.ipynb`` in order (``_*.ipynb`` excluded)."""
    return sorted(p for p in (root / "notebooks").glob("*.ipynb") if not p.name.startswith("_"))
