"""The public API: every exported name exists, and `mlteach.plots` loads on first use."""

import subprocess
import sys

import pytest

import mlteach


@pytest.mark.parametrize("name", mlteach.__all__)
def test_exported_name_exists(name):
    assert getattr(mlteach, name) is not None


def test_plots_is_imported_lazily():
    code = ("import sys, mlteach; assert 'mlteach.plots' not in sys.modules; "
            "mlteach.plots.caterpillar; assert 'mlteach.plots' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'ols2'"):
        mlteach.ols2
