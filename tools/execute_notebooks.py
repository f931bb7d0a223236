#!/usr/bin/env python
"""Execute the chapter notebooks from their MyST-markdown twins, deterministically.

    python tools/execute_notebooks.py                      # every notebooks/NN-*.md
    python tools/execute_notebooks.py notebooks/01-classical-linear-model.md
    python tools/execute_notebooks.py notebooks/*.ipynb    # .ipynb arguments mean their .md twin
    python tools/execute_notebooks.py --check notebooks/01-classical-linear-model.md

A chapter is written as ``notebooks/NN-topic.md`` (jupytext MyST markdown: readable diffs) and
read by nbval and the book as ``notebooks/NN-topic.ipynb`` (with stored outputs). For each
chapter this script

1. reads the ``.md`` with jupytext (cell tags and other cell metadata are kept); a notebook
   without a twin is re-executed from its own cells;
2. runs it top to bottom with nbclient in the project's ``python3`` kernel, working directory
   ``notebooks/``, with one BLAS/OpenMP thread, ``PYTHONHASHSEED=0`` and the inline matplotlib
   backend, so that every number and every figure comes out the same on every run;
3. removes what changes from run to run although the results do not (execution timestamps,
   random cell ids, stream outputs split at different points), so an unchanged chapter is
   rewritten byte for byte identical;
4. writes the ``.ipynb`` and records its wall-clock execution time in ``notebooks/_timings.json``
   (for the book's status page).

``--check`` executes without writing and exits 1 if any stored ``.ipynb`` would change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TIMINGS = NOTEBOOKS / "_timings.json"
KERNEL = "python3"

# Set before the kernel starts: the kernel process inherits them.
DETERMINISTIC_ENV = {
    "OMP_NUM_THREADS": "1",          # one thread: floating-point sums keep one order
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",           # set/dict-of-str iteration order
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",   # silences a debugger warning printed to stderr
}

# Cell metadata that records when and how long a cell ran: different on every run.
VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")
# Notebook metadata that only describes the tool that wrote the file, not the chapter.
VOLATILE_NB_METADATA = ("jupytext", "widgets", "papermill")


def twin_paths(arg: str | Path) -> tuple[Path | None, Path]:
    """(markdown twin or None, notebook) for a ``.md`` or ``.ipynb`` argument."""
    path = Path(arg).resolve()
    if path.suffix not in (".md", ".ipynb"):
        raise SystemExit(f"{arg}: expected a chapter .md or .ipynb file.")
    md, ipynb = path.with_suffix(".md"), path.with_suffix(".ipynb")
    if md.exists():
        return md, ipynb
    if ipynb.exists():
        return None, ipynb
    raise SystemExit(f"{arg}: neither {md.name} nor {ipynb.name} exists.")


def default_chapters() -> list[Path]:
    """Every chapter twin ``notebooks/NN-*.md`` (README.md and _*.md are not chapters)."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]-*.md"))


def read_source(md: Path | None, ipynb: Path):
    """The unexecuted notebook: from the markdown twin if there is one."""
    import jupytext
    import nbformat

    if md is not None:
        nb = jupytext.read(md, fmt="md:myst")
    else:
        nb = nbformat.read(ipynb, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if not cell.source.strip():
                where = md or ipynb
                raise SystemExit(f"{where.name}: empty code cell (remove it): kernels skip "
                                 f"empty cells, which breaks the 1..n execution count.")
    return nb


def check_kernel() -> None:
    """Refuse to run in a kernel from another Python environment than this script's."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    exe = Path(spec.argv[0])
    if exe.name.startswith("python") and exe.is_absolute():
        if Path(exe).resolve().parent != Path(sys.executable).resolve().parent:
            raise SystemExit(
                f"The {KERNEL!r} kernel runs {exe}, not this environment's Python "
                f"({sys.executable}). Install the project kernel with "
                f"`{sys.executable} -m ipykernel install --sys-prefix --name python3`, or run "
                f"this script with the Python of the kernel's environment."
            )


def coalesce_streams(outputs: list) -> list:
    """Merge consecutive stream outputs of one name: where a kernel splits them varies."""
    merged: list = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged
                and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    return merged


def normalise(nb) -> None:
    """Remove what differs between runs with identical results; fix cell ids by position."""
    for key in VOLATILE_NB_METADATA:
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": KERNEL}
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"   # uuid ids would change on every conversion
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
            for out in cell.outputs:
                if out.get("output_type") == "execute_result":
                    out["execution_count"] = cell.execution_count


def execute(nb, timeout: int):
    """Run every cell in order in a fresh project kernel, cwd notebooks/."""
    from nbclient import NotebookClient

    os.environ.update(DETERMINISTIC_ENV)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=KERNEL, record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        allow_errors=False,          # a cell tagged raises-exception may still raise
    )
    client.execute()
    return nb


def serialise(nb) -> str:
    import nbformat

    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def update_timings(seconds: dict[str, float]) -> None:
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    for name, secs in seconds.items():
        timings[name] = {"seconds": round(secs, 1)}
    timings = {k: timings[k] for k in sorted(timings)
               if (NOTEBOOKS / f"{k}.ipynb").exists() or k in seconds}
    TIMINGS.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="chapter .md or .ipynb files (default: all)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell")
    parser.add_argument("--check", action="store_true",
                        help="execute without writing; exit 1 if a stored notebook would change")
    args = parser.parse_args(argv)

    check_kernel()
    files = args.files or default_chapters()
    if not files:
        print("No chapter notebooks found in notebooks/.")
        return 0
    pairs = list(dict.fromkeys(twin_paths(f) for f in files))   # a.md and a.ipynb: once
    seconds: dict[str, float] = {}
    stale: list[str] = []
    for md, ipynb in pairs:
        rel = ipynb.relative_to(ROOT)
        nb = read_source(md, ipynb)
        start = time.perf_counter()
        execute(nb, args.timeout)
        elapsed = time.perf_counter() - start
        normalise(nb)
        text = serialise(nb)
        old = ipynb.read_text(encoding="utf-8") if ipynb.exists() else None
        status = "unchanged" if text == old else "changed"
        if args.check:
            if text != old:
                stale.append(str(rel))
        else:
            if text != old:
                ipynb.write_text(text, encoding="utf-8")
            seconds[ipynb.stem] = elapsed
        print(f"{rel}: {len(nb.cells)} cells, {elapsed:.1f} s, {status}")
    if args.check:
        if stale:
            print("Stale (run `make execute`): " + ", ".join(stale))
            return 1
        return 0
    update_timings(seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
