"""A fresh Python environment outside the repository, as a student or reader would make one.

`FreshEnv.create(home, pip_args)` runs `python -m venv` and `pip install <pip_args>` with nothing
of ours leaking in (no PYTHONPATH, no active virtual environment) and registers the new
environment as a Jupyter kernel in a folder of its own; `execute` runs a notebook top to bottom
in that kernel; `shared` makes one per requirements file and test session. Used by the
student-edition, run-anywhere and fresh-install tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


_SHARED: dict[str, "FreshEnv"] = {}


@dataclass(frozen=True)
class FreshEnv:
    python: Path
    jupyter_path: Path
    kernel_name: str

    @classmethod
    def create(cls, home: Path, pip_args: list[str], kernel_name: str) -> "FreshEnv":
        assert ROOT not in home.parents, "the environment must live outside the repository"
        subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
        python = home / "venv" / "bin" / "python"
        result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pip_args],
                                capture_output=True, text=True, cwd=home, env=clean_environ())
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        kernel = home / "jupyter" / "kernels" / kernel_name
        kernel.mkdir(parents=True)
        (kernel / "kernel.json").write_text(json.dumps({
            "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": kernel_name, "language": "python"}))
        return cls(python, home / "jupyter", kernel_name)

    @classmethod
    def shared(cls, tmp_path_factory, requirements: Path, kernel_name: str) -> "FreshEnv":
        """One environment per test session for a given requirements.txt *content*.

        The student and run-anywhere editions write the same requirements.txt: their tests share
        one `pip install -r` (each costs minutes) instead of making one each.
        """
        text = requirements.read_text(encoding="utf-8")
        if text not in _SHARED:
            home = tmp_path_factory.mktemp(kernel_name)
            local = home / "requirements.txt"          # what the student was handed
            local.write_text(text, encoding="utf-8")
            _SHARED[text] = cls.create(home, ["-r", str(local)], kernel_name)
        return _SHARED[text]

    def run(self, code: str, cwd: Path) -> str:
        return subprocess.run([str(self.python), "-c", code], capture_output=True, text=True,
                              cwd=cwd, check=True, env=clean_environ()).stdout

    def execute(self, path: Path, cwd: Path):
        """Run the notebook at `path` in this environment's kernel, working directory `cwd`."""
        from nbclient import NotebookClient

        nb = nbformat.read(path, as_version=4)
        env = {"OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
               "JUPYTER_PATH": str(self.jupyter_path), "PYTHONPATH": ""}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            NotebookClient(nb, timeout=300, kernel_name=self.kernel_name,
                           resources={"metadata": {"path": str(cwd)}}).execute()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return nb
