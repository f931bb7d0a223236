"""Shared test settings (hypothesis profiles sized for a 2-core CI machine) and data fixtures.

The data fixtures are module-scoped: each test module gets its own copy of a data set.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

import mlteach

# `ci` (the default, and what `make test` selects) is derandomized: every run draws the same
# examples, so the suite passes or fails the same way every time; a failure prints the example
# and the blob to reproduce it. `dev` explores new random examples on each run
# (`HYPOTHESIS_PROFILE=dev pytest tests --hypothesis-seed=N` replays one exploration).
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=15, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def sleep():
    return mlteach.load("sleepstudy")


@pytest.fixture(scope="module")
def unbalanced(sleep):
    """sleepstudy with subject k keeping its first 3 + (k mod 8) days: sizes 3 to 10."""
    codes = sleep["Subject"].cat.codes
    return sleep[sleep["Days"] < 3 + codes % 8].reset_index(drop=True)


@pytest.fixture(scope="module")
def grunfeld():
    return mlteach.load("grunfeld")


@pytest.fixture(scope="module")
def hsb():
    return mlteach.load("hsb82")
