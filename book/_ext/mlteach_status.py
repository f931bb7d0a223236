"""The ``mlteach-status`` directive: the book's status page, computed at build time.

It renders three things the reader may want to check before trusting a number: how long each
chapter notebook took to execute when its outputs were last refreshed (``notebooks/_timings.json``,
written by ``make execute``), the versions of the packages the book was built with, and the
latest benchmark tables (``benchmarks/results/*.md``, written by ``make bench``).
"""

from __future__ import annotations

import json
import platform
import re
from importlib import metadata
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

# A table cell holding only pandas' "nan" (a comparison that was not run).
_NAN_CELL = re.compile(r"\|\s*nan\s*(?=\|)")

PACKAGES = ["mlteach", "numpy", "pandas", "scipy", "statsmodels", "linearmodels", "formulaic",
            "matplotlib", "jupyter-book", "sphinx", "myst-nb", "nbval", "pytest", "hypothesis"]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


class StatusDirective(SphinxDirective):
    """Insert the status tables (execution times, package versions, benchmarks)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        root = Path(self.env.srcdir)
        timings_file = root / "notebooks" / "_timings.json"
        self.env.note_dependency(str(timings_file))
        lines = ["## Chapter notebooks", "",
                 "Wall-clock seconds to execute each chapter top to bottom when its stored outputs "
                 "were last refreshed (`make execute`, two cores, one BLAS thread).", "",
                 "| chapter | seconds |", "| --- | ---: |"]
        timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
        for name, entry in sorted(timings.items()):
            lines.append(f"| {{doc}}`/notebooks/{name}` | {entry['seconds']:.1f} |")
        lines += ["", "## Software", "",
                  f"Built with Python {platform.python_version()} and:", "",
                  "| package | version |", "| --- | --- |"]
        lines += [f"| {p} | {_version(p)} |" for p in PACKAGES]
        results = sorted((root / "benchmarks" / "results").glob("*.md"))
        lines += ["", "## Benchmarks", "",
                  "Seconds per fit (columns ending in `s` or `_s`) on the machine and date given "
                  "under each table; ratios are the other package's time over mlteach's. A dash "
                  "marks a comparison that was not run for that case (the other package has no "
                  "such method, or the case was too large for it).", ""]
        if not results:
            lines.append("No benchmark results yet: run `make bench`.")
        for path in results:
            self.env.note_dependency(str(path))
            text = path.read_text().splitlines()
            title = text[0].lstrip("# ").strip() if text else path.stem
            # pandas writes a missing value as "nan"; a reader should see a dash, not a float.
            body = [_NAN_CELL.sub("| — ", row) if row.startswith("|") else row
                    for row in text[1:]]
            lines += [f"### {title}", ""] + body + [""]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=str(timings_file)), self.content_offset,
                                container)
        return container.children


def setup(app):
    app.add_directive("mlteach-status", StatusDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
