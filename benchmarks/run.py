"""Run every benchmark in this folder (`make bench`).

Each ``bench_*.py`` module has a ``main() -> pandas.DataFrame`` that times mlteach against the
established implementation *in the same run* and returns one row per case with the ratio. The
tables are printed and written to ``benchmarks/results/<name>.md`` (the book's status page shows
them) together with the machine and package versions of the run.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def environment() -> str:
    import numpy, pandas, scipy, statsmodels, linearmodels  # noqa: E401
    import os
    return (f"Python {platform.python_version()}, numpy {numpy.__version__}, pandas "
            f"{pandas.__version__}, scipy {scipy.__version__}, statsmodels {statsmodels.__version__}, "
            f"linearmodels {linearmodels.__version__}; {os.cpu_count()} cores; "
            f"{time.strftime('%Y-%m-%d')}")


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE))
    RESULTS.mkdir(exist_ok=True)
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if names:  # `run.py lmm` or `run.py bench_lmm` selects bench_lmm only (not bench_glmm)
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in names}
        modules = [m for m in modules if m in wanted]
    env = environment()
    for name in modules:
        print(f"\n## {name}\n", flush=True)
        table = importlib.import_module(name).main()
        # A '|' inside a cell (lme4 formulas) would split the Markdown column: escape it.
        table = table.apply(lambda col: col.str.replace("|", r"\|", regex=False)
                            if col.dtype == object or pd.api.types.is_string_dtype(col) else col)
        text = table.to_markdown(index=False, floatfmt=".4g")
        print(text)
        (RESULTS / f"{name.removeprefix('bench_')}.md").write_text(
            f"# Benchmark: {name.removeprefix('bench_')}\n\n{text}\n\n_Run: {env}._\n")


if __name__ == "__main__":
    main(sys.argv[1:])
