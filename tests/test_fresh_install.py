"""The full chapter notebooks run after `pip install ".[notebooks]"` in a fresh environment.

Not our .venv: a new virtual environment outside the repository with only the project and its
`notebooks` extra, as a reader who clones the book and wants to run the chapters would make it.
Every chapter then runs top to bottom in that environment's kernel, from a folder outside the
repository (so `import mlteach` is the installed package, not the source tree).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


@pytest.fixture(scope="module")
def project_kernel(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("fresh-install")
    # nothing of ours leaks in: no PYTHONPATH, no active virtual environment
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    assert ROOT not in home.parents
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
    python = home / "venv" / "bin" / "python"
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                             f"{ROOT}[notebooks]"], capture_output=True, text=True, cwd=home,
                            env=clean)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    where = subprocess.run([str(python), "-c", "import mlteach; print(mlteach.__file__)"],
                           capture_output=True, text=True, cwd=home, check=True, env=clean).stdout
    assert str(ROOT) not in where, f"mlteach imported from the source tree: {where}"
    kernel = home / "jupyter" / "kernels" / "mlteach-fresh"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "mlteach (fresh install)", "language": "python"}))
    return home


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_after_pip_install_of_the_project(project_kernel, path, tmp_path):
    from nbclient import NotebookClient

    shutil.copy2(path, tmp_path / path.name)
    nb = nbformat.read(tmp_path / path.name, as_version=4)
    env = {"OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": "",
           "JUPYTER_PATH": str(project_kernel / "jupyter")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=300, kernel_name="mlteach-fresh",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "error"]
    assert not errors
