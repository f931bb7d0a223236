"""The full chapter notebooks run after `pip install ".[notebooks]"` in a fresh environment.

Not our .venv: a new virtual environment outside the repository with only the project and its
`notebooks` extra, as a reader who clones the book and wants to run the chapters would make it.
Every chapter then runs top to bottom in that environment's kernel, from a folder outside the
repository (so `import mlteach` is the installed package, not the source tree).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
sys.path.insert(0, str(ROOT / "tests"))
from fresh_env import FreshEnv  # noqa: E402


@pytest.fixture(scope="module")
def project_env(tmp_path_factory) -> FreshEnv:
    home = tmp_path_factory.mktemp("fresh-install")
    env = FreshEnv.create(home, [f"{ROOT}[notebooks]"], "mlteach-fresh")
    where = env.run("import mlteach; print(mlteach.__file__)", cwd=home)
    assert str(ROOT) not in where, f"mlteach imported from the source tree: {where}"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_after_pip_install_of_the_project(project_env, path, tmp_path):
    shutil.copy2(path, tmp_path / path.name)
    nb = project_env.execute(tmp_path / path.name, tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "error"]
    assert not errors
