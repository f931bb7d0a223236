"""Issue 12, "nothing silently wrong": inputs that used to give a number (or a bare numpy or
scipy error) now raise an `MlteachError` or warn with an `MlteachWarning` that says plainly what
is wrong and how to fix it. Each test checks the message text."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mlteach
from mlteach.errors import (DataTypeError, MlteachError, ModelComparisonError,
                            RankDeficientError, SeparationWarning)


@pytest.fixture(scope="module")
def grunfeld():
    return mlteach.load("grunfeld")


# ----------------------------------------------------------------------------------------------
# 1. hausman() refuses fits of different models
# ----------------------------------------------------------------------------------------------


def test_hausman_refuses_different_terms(grunfeld):
    fe = mlteach.within("inv ~ value", grunfeld, group="firm")
    re = mlteach.swamy_arora("inv ~ value + capital", grunfeld, group="firm")
    with pytest.raises(ModelComparisonError,
                       match=r"The fixed-effects fit has terms \[value\] but the random-effects "
                             r"fit has \[value, capital\] \(only the random-effects fit has "
                             r"\[capital\]\): fit both with the same formula"):
        mlteach.hausman(fe, re)


def test_hausman_refuses_different_outcomes(grunfeld):
    g = grunfeld.assign(inv2=grunfeld["inv"] * 2)
    fe = mlteach.within("inv ~ value + capital", g, group="firm")
    re = mlteach.swamy_arora("inv2 ~ value + capital", g, group="firm")
    with pytest.raises(ModelComparisonError,
                       match="fixed-effects fit models the outcome 'inv' but the random-effects "
                             "fit models 'inv2'"):
        mlteach.hausman(fe, re)


def test_hausman_refuses_different_rows_with_the_same_count(grunfeld):
    f = "inv ~ value + capital"
    fe = mlteach.within(f, grunfeld, group="firm")
    shifted = grunfeld.copy()
    shifted.index = shifted.index + 1000
    re = mlteach.swamy_arora(f, shifted, group="firm")
    with pytest.raises(ModelComparisonError,
                       match=r"same number of rows \(200\) but not the same rows: row 0 is in "
                             r"the fixed-effects fit but not in the random-effects fit"):
        mlteach.hausman(fe, re)


def test_hausman_refuses_different_row_counts(grunfeld):
    f = "inv ~ value + capital"
    fe = mlteach.within(f, grunfeld, group="firm")
    re = mlteach.swamy_arora(f, grunfeld.iloc[:-3], group="firm")
    with pytest.raises(ModelComparisonError,
                       match="different data: the fixed-effects fit uses 200 rows in 10 groups, "
                             "the random-effects fit 197 rows in 10 groups"):
        mlteach.hausman(fe, re)


def test_hausman_same_model_still_works(grunfeld):
    f = "inv ~ value + capital"
    fe = mlteach.within(f, grunfeld, group="firm")
    re = mlteach.swamy_arora(f, grunfeld, group="firm")
    assert np.isfinite(mlteach.hausman(fe, re).statistic)


def test_hausman_wrong_kind_is_an_mlteach_error(grunfeld):
    f = "inv ~ value + capital"
    fe = mlteach.within(f, grunfeld, group="firm")
    with pytest.raises(DataTypeError, match="re must be a result of swamy_arora"):
        mlteach.hausman(fe, fe)


# ----------------------------------------------------------------------------------------------
# 2. Results own their data: edits to the caller's frame or to returned tables change nothing
# ----------------------------------------------------------------------------------------------


def test_predict_unchanged_after_reordering_categories_in_callers_frame(grunfeld):
    g = grunfeld.copy()
    g["firm"] = pd.Categorical(g["firm"])
    g["size"] = pd.Categorical(np.where(g["firm"].astype(int) <= 5, "big", "small"))
    fit = mlteach.swamy_arora("inv ~ value + capital + C(year > 1944)", g, group="firm")
    before = fit.predict()
    g["firm"] = g["firm"].cat.reorder_categories(list(g["firm"].cat.categories[::-1]))
    g["size"] = g["size"].cat.reorder_categories(["small", "big"])
    g["value"] = 0.0
    pd.testing.assert_series_equal(fit.predict(), before)


def test_editing_params_resid_or_vcov_changes_nothing_in_the_result(grunfeld):
    f = "inv ~ value + capital"
    for fit in (mlteach.within(f, grunfeld, group="firm"),
                mlteach.swamy_arora(f, grunfeld, group="firm"),
                mlteach.lsdv(f, grunfeld, group="firm")):
        pred, params, resid = fit.predict(), fit.params.copy(), fit.resid.copy()
        table = str(fit.summary())
        p, e, v, se = fit.params, fit.resid, fit.vcov, fit.bse   # as a user would
        p.iloc[:] = 99.0
        e.iloc[:] = 1e6
        v.iloc[:, :] = 0.0
        se.iloc[:] = 0.0
        pd.testing.assert_series_equal(fit.params, params)
        pd.testing.assert_series_equal(fit.resid, resid)
        pd.testing.assert_series_equal(fit.predict(), pred)
        assert str(fit.summary()) == table


def test_editing_ols_params_changes_nothing(grunfeld):
    fit = mlteach.ols("inv ~ value + capital", grunfeld)
    params, fitted = fit.params.copy(), fit.predict().copy()
    p, fv = fit.params, fit.fitted
    p.iloc[:] = 0.0
    fv.iloc[:] = 0.0
    pd.testing.assert_series_equal(fit.params, params)
    pd.testing.assert_series_equal(fit.predict(), fitted)
    pd.testing.assert_series_equal(fit.predict(grunfeld), fitted.rename("predicted"),
                                   check_names=False)


# ----------------------------------------------------------------------------------------------
# 3. No residual degrees of freedom
# ----------------------------------------------------------------------------------------------


def test_ols_with_as_many_coefficients_as_rows():
    d = pd.DataFrame({"y": [1.0, 2, 4], "a": [1.0, 3, 2], "b": [0.0, 1, 5]})
    with pytest.raises(RankDeficientError,
                       match=r"3 rows but 3 coefficients \(Intercept, a, b\): no residual "
                             r"degrees of freedom"):
        mlteach.ols("y ~ a + b", d)


@pytest.fixture
def tiny_panel():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"g": np.repeat([1, 2, 3], 2), "t": np.tile([1, 2], 3),
                         "y": rng.normal(size=6), "a": rng.normal(size=6),
                         "b": rng.normal(size=6), "c": rng.normal(size=6)})


@pytest.mark.parametrize("estimator", ["within", "lsdv"])
def test_fixed_effects_without_residual_df(tiny_panel, estimator):
    with pytest.raises(RankDeficientError,
                       match=r"no residual degrees of freedom: 6 rows in 3 groups of 'g' and 3 "
                             r"coefficient\(s\) \(a, b, c\) leave n − G − k = 6 − 3 − 3 = 0"):
        getattr(mlteach, estimator)("y ~ a + b + c", tiny_panel, group="g")


def test_twoway_within_without_residual_df(tiny_panel):
    with pytest.raises(RankDeficientError,
                       match=r"6 rows in 3 groups of 'g' over 2 periods of 't' and 3 "
                             r"coefficient\(s\) \(a, b, c\) leave n − G − \(T − 1\) − k"):
        mlteach.within("y ~ a + b + c", tiny_panel, group="g", time="t", effects="twoways")


def test_first_difference_without_residual_df(tiny_panel):
    with pytest.raises(RankDeficientError,
                       match=r"6 rows in 3 groups of 'g' over 2 periods of 't' give 3 "
                             r"differences .* for 3 coefficient\(s\) \(Intercept, a, b\)"):
        mlteach.first_difference("y ~ a + b", tiny_panel, group="g", time="t")


def test_panel_options_are_mlteach_errors(grunfeld):
    with pytest.raises(MlteachError, match="cov='sandwich' is not an option"):
        mlteach.within("inv ~ value", grunfeld, group="firm", cov="sandwich")


# ----------------------------------------------------------------------------------------------
# 4. simulate_clustered with impossible arguments
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(group_size=(5, 2)),
     r"group_size=\(5, 2\) has its minimum 5 above its maximum 2: give the range as "
     r"\(smallest, largest\)"),
    (dict(group_size=(0, 3)), r"group_size=\(0, 3\): the smallest group size must be at least 1"),
    (dict(group_size=0), "group_size must be at least 1, got 0"),
    (dict(n_groups=3, group_size=[3, 0, 2]),
     r"group_size must give every group a whole number of rows of at least 1; entry 1 "
     r"\(group 2\) is 0"),
    (dict(total_var=-1), r"total_var must be > 0 \(the variance of y given x.*got -1"),
    (dict(n_groups=0), "n_groups must be at least 1, got 0"),
    (dict(n_groups=2.5), "n_groups must be a whole number of at least 1, got 2.5"),
    (dict(icc=1.5), r"icc must be in \[0, 1\) .*got 1.5"),
    (dict(icc=-0.1), r"icc must be in \[0, 1\) .*got -0.1"),
    (dict(icc=float("nan")), r"icc must be a finite number in \[0, 1\).*got nan"),
    (dict(slope_sd=-1), r"slope_sd must be >= 0 \(a standard deviation cannot be negative\)"),
    (dict(sd_x_within=-2), r"sd_x_within must be >= 0"),
    (dict(icc=0, corr_xu=0.5),
     "corr_xu=0.5 asks for group means of x correlated with the group effects, but icc=0 "
     "gives no group effects"),
])
def test_simulate_clustered_refuses_impossible_arguments(kwargs, pattern):
    with pytest.raises(MlteachError, match=pattern):
        mlteach.simulate_clustered(**kwargs)


# ----------------------------------------------------------------------------------------------
# 5. GLMM: constant outcomes and separation under PQL
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def clustered():
    rng = np.random.default_rng(1)
    return pd.DataFrame({"g": np.repeat(np.arange(10), 5), "x": rng.normal(size=50)})


def test_poisson_outcome_zero_everywhere(clustered):
    data = clustered.assign(y=0)
    with pytest.raises(MlteachError,
                       match="The Poisson outcome 'y' is 0 in every one of the 50 rows used, "
                             "so a Poisson rate cannot be estimated"):
        mlteach.glmm("y ~ x + (1 | g)", data, family="poisson")


@pytest.mark.parametrize("value, word", [(0, "0"), (1, "1")])
def test_binary_outcome_constant_everywhere(clustered, value, word):
    data = clustered.assign(y=value)
    with pytest.raises(MlteachError,
                       match=f"The binary outcome 'y' is {word} in every one of the 50 rows "
                             f"used, so there is nothing for a logistic model to explain"):
        mlteach.glmm("y ~ x + (1 | g)", data, method="pql")


def test_binomial_trials_all_successes(clustered):
    data = clustered.assign(n=3, y=3)
    with pytest.raises(MlteachError,
                       match=r"In the 50 rows used every one of the 150 trials \('n'\) "
                             r"succeeded"):
        mlteach.glmm("y ~ x + (1 | g)", data, trials="n")


def test_pql_under_complete_separation_says_so(clustered):
    data = clustered.assign(y=(clustered["x"] > 0).astype(int))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(MlteachError,
                           match=r"PQL cannot estimate this model: the outcome 'y' is perfectly "
                                 r"predicted by 'x' \(complete separation\)"):
            mlteach.glmm("y ~ x + (1 | g)", data, method="pql")
    sep = [w for w in caught if issubclass(w.category, SeparationWarning)
           and "perfectly predicted by 'x'" in str(w.message)]
    assert sep and sep[0].filename == __file__          # points at the caller's line
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


@pytest.mark.filterwarnings("ignore::mlteach.errors.BoundaryFitWarning")
def test_editing_glmm_fixef_changes_nothing(clustered):
    rng = np.random.default_rng(2)
    data = clustered.assign(y=rng.poisson(2.0, size=50))
    fit = mlteach.glmm("y ~ x + (1 | g)", data, family="poisson")
    fixef, ranef = fit.fixef.copy(), fit.ranef.copy()
    f, r = fit.fixef, fit.ranef
    f.iloc[:] = 0.0
    r.iloc[:, :] = 0.0
    pd.testing.assert_series_equal(fit.fixef, fixef)
    pd.testing.assert_frame_equal(fit.ranef, ranef)
