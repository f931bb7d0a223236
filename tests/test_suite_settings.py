"""The suite itself: `make test` runs the derandomized hypothesis profile, so a run is repeatable."""

import os
import re
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]


def test_make_test_selects_the_derandomized_ci_profile():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^export HYPOTHESIS_PROFILE \?= ci$", makefile, re.M)


@pytest.mark.skipif(os.environ.get("HYPOTHESIS_PROFILE", "ci") != "ci",
                    reason="another hypothesis profile was asked for")
def test_ci_profile_is_derandomized_and_prints_how_to_reproduce():
    current = settings()
    assert current.derandomize and current.database is None and current.print_blob


def test_hypothesis_database_is_not_committed():
    assert ".hypothesis/" in (ROOT / ".gitignore").read_text().splitlines()
