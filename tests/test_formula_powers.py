"""`^` inside a function call is a power, as in R: `I(Days^2)` must not be a bitwise XOR."""

import numpy as np
import pandas as pd
import pytest

import mlteach
from mlteach.design import r_powers


@pytest.mark.parametrize("formula, expected", [
    ("y ~ I(x^2)", "y ~ I(x**2)"),
    ("y ~ np.log(x^2) + z", "y ~ np.log(x**2) + z"),
    ("y ~ (a + b)^2", "y ~ (a + b)^2"),                      # interactions up to order 2
    ("y ~ I((x - 1)^3) + (a + b)^2", "y ~ I((x - 1)**3) + (a + b)^2"),
    ("y ~ x + (1 + I(x^2) | g)", "y ~ x + (1 + I(x**2) | g)"),  # lme4 bar: not a call
])
def test_r_powers(formula, expected):
    assert r_powers(formula) == expected


def test_ols_reads_a_power_on_an_integer_column(sleep):
    r_style = mlteach.ols("Reaction ~ Days + I(Days^2)", sleep)
    explicit = mlteach.ols("Reaction ~ Days + I(Days**2)", sleep)
    np.testing.assert_allclose(r_style.params.to_numpy(), explicit.params.to_numpy())
    square = sleep.assign(d2=sleep["Days"] ** 2)
    np.testing.assert_allclose(r_style.params.to_numpy(),
                               mlteach.ols("Reaction ~ Days + d2", square).params.to_numpy())


def test_interaction_power_still_expands(grunfeld):
    fit = mlteach.ols("inv ~ (value + capital)^2", grunfeld)
    assert list(fit.params.index) == ["Intercept", "value", "capital", "value:capital"]


def test_lmm_fixed_and_random_parts_read_powers(sleep):
    r_style = mlteach.lmm("Reaction ~ Days + I(Days^2) + (1 | Subject)", sleep)
    explicit = mlteach.lmm("Reaction ~ Days + I(Days**2) + (1 | Subject)", sleep)
    pd.testing.assert_series_equal(r_style.fixef, explicit.fixef)
