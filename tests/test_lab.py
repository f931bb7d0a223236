"""`make lab`, as the README says to run it, starts JupyterLab on the chapters with MyST rendering.

The server is started on a free loopback port without a browser, asked for its page, its
extensions and its file list, and stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_opens_the_notebooks_with_make_lab():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "\n.venv/bin/jupyter lab" not in readme


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


@pytest.fixture
def lab_server():
    port = free_port()
    args = (f"--no-browser --port={port} --ip=127.0.0.1 --ServerApp.token= "
            "--ServerApp.password= --ServerApp.disable_check_xsrf=True")
    proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("make lab exited: " + proc.stdout.read().decode()[-2000:])
            try:
                if get(base + "/api/status")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 90 s")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_make_lab_serves_the_chapters_with_jupyterlab_myst(lab_server):
    status, page = get(lab_server + "/lab")
    assert status == 200 and b"JupyterLab" in page
    extensions = {e["name"]: e for e in json.loads(get(lab_server + "/lab/api/extensions")[1])}
    assert "jupyterlab-myst" in extensions and extensions["jupyterlab-myst"]["enabled"]
    listing = json.loads(get(lab_server + "/api/contents")[1])
    names = {item["name"] for item in listing["content"]}
    assert "02-random-intercepts.ipynb" in names
    # nbconvert, for "Download as" and for instructors' scripts
    out = subprocess.run([str(ROOT / ".venv/bin/jupyter"), "nbconvert", "--version"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
