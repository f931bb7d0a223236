#!/usr/bin/env python
"""Write the "run anywhere" edition of the chapters: the full notebooks, for any Jupyter front end.

    python tools/make_anywhere.py                    # `make anywhere`: into _build/anywhere
    python tools/make_anywhere.py --html _build/html # the book's .ipynb downloads, rewritten
    python tools/make_anywhere.py --in-place         # notebooks/*.ipynb rewritten (Binder only)

The chapters in ``notebooks/`` are written for the book: their markdown is MyST
(``{glue:text}`` placeholders, ``{numref}``/``{eq}``/``{term}`` roles, admonition and exercise
fences) that only the Sphinx build renders. This edition is the same chapters, solutions and
stored outputs included, rewritten by `plain_markdown.plain_notebook`: glued numbers written
in, cross-references and citations as the book prints them, exercises, solutions and
admonitions as plain markdown, ``from myst_nb import glue`` replaced by a stand-in. The glue
records (outputs only the book build reads, under a ``application/papermill.record/...`` type)
are dropped; every other output is kept. Plain JupyterLab, VS Code and Colab show it as the
book does. The source notebooks are not touched (except with ``--in-place``, meant for a
throwaway checkout such as Binder's: the book build needs the MyST sources).

``<out>`` gets ``notebooks/*.ipynb``, ``notebooks/mlteach/`` (the full library with its data and
its answer checks, importable from ``notebooks/``), ``requirements.txt`` (the student
edition's: the same packages), ``README.md`` and ``mlteach-notebooks.zip``.

``--html DIR`` rewrites the chapter notebooks the built book offers for download
(``DIR/_sources/notebooks/*.ipynb``, the page's download button) the same way, so a reader who
downloads a chapter from the book gets this edition.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exercise_conventions import chapter_notebooks  # noqa: E402
from plain_markdown import BookIndex, plain_notebook  # noqa: E402
import make_student  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "anywhere"
RECORD = "application/papermill.record/"

ANYWHERE_NOTE = (
    "**Run-anywhere edition** of a chapter of the mlteach course book: the numbers the book "
    "computes are written into the text, and nothing needs the book's Sphinx tools. Run it "
    "with `mlteach` importable (the `mlteach/` folder next to this notebook in the zip, or "
    "`pip install` of the project) and the packages of `requirements.txt`."
)

README = """\
# Run-anywhere edition: the full chapter notebooks for any Jupyter front end

Made by `make anywhere` (`tools/make_anywhere.py`) from the chapter notebooks of the course
book. These are the chapters as the book shows them, solutions and outputs included, written
in plain Jupyter markdown: the numbers are written in (no `{glue:text}` placeholders),
cross-references read "Figure 2.1" and "(2.3)", glossary terms and citations as the book
prints them, exercises and solutions as plain paragraphs. They read right in JupyterLab
(with or without jupyterlab-myst), VS Code, Colab and on GitHub.

| path | what |
| --- | --- |
| `notebooks/*.ipynb` | the chapters, executed, outputs kept |
| `notebooks/mlteach/` | the course library with its data sets and answer checks, importable from `notebooks/` |
| `requirements.txt` | the Python packages the notebooks need |
| `mlteach-notebooks.zip` | all of the above in one file |

## Running them

Unzip `mlteach-notebooks.zip`, then (Python 3.11+):

```bash
python -m venv .venv && . .venv/bin/activate
python -m pip install -r requirements.txt
jupyter lab notebooks/
```

In Colab or another hosted Jupyter, upload a notebook together with the `mlteach/` folder (or
the zip, then `!unzip mlteach-notebooks.zip`) and `!pip install linearmodels formulaic`.

For a course without solutions, hand out the student edition instead (`make student`).
"""


def strip_glue_records(nb) -> None:
    """Drop outputs whose only data are glue records (the book build reads them, no one else)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if data and all(k.startswith(RECORD) for k in data):
                continue
            if "scrapbook" in output.get("metadata", {}):
                output.metadata.pop("scrapbook")
            kept.append(output)
        cell.outputs = kept


def anywhere_notebook(nb, index: BookIndex, name: str = "notebook", note: bool = True):
    """A copy of the executed chapter `nb` for plain Jupyter front ends (see the docstring)."""
    out = plain_notebook(copy.deepcopy(nb), nb, index, name)
    strip_glue_records(out)
    for cell in out.cells:
        for key in ("execution", "ExecuteTime"):
            cell.metadata.pop(key, None)
    if note:
        first = nbformat.v4.new_markdown_cell(ANYWHERE_NOTE)
        first["id"] = "anywhere-edition-note"
        out.cells.insert(0, first)
    nbformat.validate(out)
    return out


def rewrite(notebooks: list[Path], targets: list[Path], note: bool = True) -> list[Path]:
    """Write the anywhere version of each notebook to the matching target path."""
    index = BookIndex.build(notebooks)
    converted = [anywhere_notebook(nbformat.read(p, as_version=4), index, p.name, note)
                 for p in notebooks]                      # all read before any is written
    for nb, target in zip(converted, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return targets


def write_edition(notebooks: list[Path], out: Path) -> list[Path]:
    dest = out / "notebooks"
    if dest.exists():
        shutil.rmtree(dest)
    written = rewrite(notebooks, [dest / p.name for p in notebooks])
    shutil.copytree(ROOT / "mlteach", dest / "mlteach",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (out / "README.md").write_text(README, encoding="utf-8")
    (out / "requirements.txt").write_text(make_student.requirements(), encoding="utf-8")
    with zipfile.ZipFile(out / "mlteach-notebooks.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("README.md", "requirements.txt"):
            zf.write(out / name, f"mlteach-notebooks/{name}")
        for path in sorted(dest.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"mlteach-notebooks/{path.relative_to(out)}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="chapter notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (_build/anywhere)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--html", type=Path, metavar="DIR",
                       help="rewrite the .ipynb downloads of the book built in DIR instead")
    where.add_argument("--in-place", action="store_true",
                       help="rewrite notebooks/*.ipynb themselves (a throwaway checkout only)")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or chapter_notebooks(ROOT)
    if args.html:
        sources = args.html.resolve() / "_sources" / "notebooks"
        if not sources.is_dir():
            raise SystemExit(f"{sources} does not exist: build the book first (make book).")
        pairs = [(p, sources / p.name) for p in notebooks if (sources / p.name).exists()]
        rewrite([p for p, _ in pairs], [t for _, t in pairs])
        print(f"{len(pairs)} downloadable chapter notebooks rewritten in {sources}")
        return 0
    if args.in_place:
        rewrite(notebooks, notebooks)
        print(f"{len(notebooks)} chapter notebooks rewritten in place")
        return 0
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    written = write_edition(notebooks, out)
    print(f"{len(written)} run-anywhere notebooks, README.md and mlteach-notebooks.zip in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
