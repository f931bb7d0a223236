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


@pytest.mark.parametrize("formula, pattern", [
    ("Reaction ~ factor(Days)", r"uses R's factor\(\).*Instead write C\(x\)"),
    ("Reaction ~ as.factor(Days) + (1 | Subject)", r"uses R's as.factor\(\)"),
    ("Reaction ~ .", r"uses '\.' for 'all other columns'"),
])
def test_r_only_syntax_gets_a_python_hint(sleep, formula, pattern):
    fit = mlteach.lmm if "|" in formula else mlteach.ols
    with pytest.raises(mlteach.errors.FormulaSyntaxError, match=pattern):
        fit(formula, sleep)


def test_a_column_whose_name_ends_in_factor_is_not_mistaken_for_r(sleep):
    data = sleep.assign(myfactor=sleep["Days"] % 3)
    fit = mlteach.ols("Reaction ~ C(myfactor)", data)
    assert len(fit.params) == 3


def test_dotted_column_names_as_in_r(sleep):
    """R data often have dotted names (mlmRev's IQ.verb): formulaic reports them as 'IQ'."""
    data = sleep.rename(columns={"Days": "Days.n"})
    plain = mlteach.ols("Reaction ~ Days", sleep)
    dotted = mlteach.ols("Reaction ~ Days.n", data)
    np.testing.assert_allclose(dotted.params.to_numpy(), plain.params.to_numpy())
    mixed = mlteach.lmm("Reaction ~ Days.n + (Days.n | Subject)", data)
    np.testing.assert_allclose(mixed.fixef.to_numpy(),
                               mlteach.lmm("Reaction ~ Days + (Days | Subject)", sleep).fixef)
    quoted = mlteach.ols("Reaction ~ np.log(`Days.n` + 1)", data)
    assert list(quoted.params.index) == ["Intercept", "np.log(`Days.n` + 1)"]
    with pytest.raises(mlteach.errors.FormulaSyntaxError, match=r"quoted with backticks"):
        mlteach.ols("Reaction ~ np.log(Days.n + 1)", data)
    with pytest.raises(mlteach.errors.UnknownVariableError, match=r"'Days\.m'"):
        mlteach.ols("Reaction ~ Days.m", data)
