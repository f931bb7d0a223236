"""mlteach.ols against statsmodels OLS on real data, identities, and bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given
from hypothesis import strategies as st

import mlteach
from mlteach.errors import (DataTypeError, FormulaSyntaxError, GroupingError, MissingDataWarning,
                            RankDeficientError, UnknownVariableError)

TOL = 1e-8


def _sm(formula, data, cluster=None):
    model = smf.ols(formula, data)
    if cluster is None:
        return model.fit()
    codes = pd.factorize(data[cluster])[0]
    return model.fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)


CASES = [
    ("hsb82", "mAch ~ ses + C(sector) + cses", "school"),
    ("hsb82", "mAch ~ ses * sector + meanses", "school"),
    ("grunfeld", "inv ~ value + capital", "firm"),
    ("gasoline", "lgaspcar ~ lincomep + lrpmg + lcarpcap", "country"),
    ("sleepstudy", "Reaction ~ Days", "Subject"),
]


@pytest.mark.parametrize("name,formula,cluster", CASES)
@pytest.mark.parametrize("clustered", [False, True])
def test_ols_matches_statsmodels(name, formula, cluster, clustered):
    data = mlteach.load(name)
    ours = mlteach.ols(formula, data, cluster=cluster if clustered else None)
    ref = _sm(formula, data, cluster if clustered else None)
    terms = ours.params.index
    assert set(terms) == set(ref.params.index)
    np.testing.assert_allclose(ours.params, ref.params[terms], rtol=TOL, atol=0)
    np.testing.assert_allclose(ours.bse, ref.bse[terms], rtol=TOL, atol=0)
    np.testing.assert_allclose(ours.conf_int(), ref.conf_int().loc[terms], rtol=TOL)
    np.testing.assert_allclose(ours.pvalues, ref.pvalues[terms], rtol=1e-6, atol=1e-300)
    assert ours.rsquared == pytest.approx(ref.rsquared, rel=TOL)
    assert ours.sigma == pytest.approx(np.sqrt(ref.mse_resid), rel=TOL)
    assert ours.df_inference == (data[cluster].nunique() - 1 if clustered else ref.df_resid)


def test_cluster_of_singletons_is_hc1():
    """CR1 with every row its own cluster has factor n/(n−p): exactly White's HC1."""
    data = mlteach.load("grunfeld").assign(row=lambda d: np.arange(len(d)))
    ours = mlteach.ols("inv ~ value + capital", data, cluster="row")
    ref = smf.ols("inv ~ value + capital", data).fit(cov_type="HC1")
    np.testing.assert_allclose(ours.bse, ref.bse[ours.params.index], rtol=TOL)


@given(n=st.integers(8, 60), seed=st.integers(0, 2**31 - 1), shift=st.floats(-1e3, 1e3))
def test_ols_solves_normal_equations(n, seed, shift):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"x1": rng.normal(shift, 1, n), "x2": rng.normal(size=n)})
    data["y"] = 1 + 2 * data.x1 - data.x2 + rng.normal(size=n)
    fit = mlteach.ols("y ~ x1 + x2", data)
    X = np.column_stack([np.ones(n), data.x1, data.x2])
    # residuals are orthogonal to every column of X
    np.testing.assert_allclose(X.T @ fit.resid.to_numpy(), 0, atol=1e-7 * np.abs(X).max() * n)
    expected = np.linalg.lstsq(X, data.y.to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(fit.params.to_numpy(), expected, rtol=1e-7, atol=1e-9)


def test_predict_new_data_uses_training_encoding():
    hsb = mlteach.load("hsb82")
    fit = mlteach.ols("mAch ~ ses + sector", hsb)
    new = pd.DataFrame({"ses": [0.0, 1.0], "sector": ["Public", "Catholic"]})
    pred = fit.predict(new)
    b = fit.params
    assert pred.iloc[0] == pytest.approx(b["Intercept"] + b["sector[T.Public]"])
    assert pred.iloc[1] == pytest.approx(b["Intercept"] + b["ses"])


def test_summary_and_html():
    fit = mlteach.ols("inv ~ value", mlteach.load("grunfeld"), cluster="firm")
    text = str(fit.summary())
    assert "cluster-robust CR1, 10 clusters, t(9)" in text and "value" in text
    assert "<table" in fit._repr_html_()


# ---------------------------------------------------------------- bad input


def test_unknown_variable_suggests_close_name():
    with pytest.raises(UnknownVariableError, match=r"Unknown variable 'mach' \(did you mean 'mAch'\?\)"):
        mlteach.ols("mach ~ ses", mlteach.load("hsb82"))


def test_unknown_cluster_variable():
    with pytest.raises(UnknownVariableError, match="'schol'"):
        mlteach.ols("mAch ~ ses", mlteach.load("hsb82"), cluster="schol")


def test_text_outcome_is_refused_with_recoding_hint():
    with pytest.raises(DataTypeError, match=r"outcome 'use' is not numeric .*\(data\['use'\] =="):
        mlteach.ols("use ~ age", mlteach.load("contraception"))


def test_missing_values_are_dropped_with_a_count():
    data = mlteach.load("grunfeld")
    data.loc[[3, 7], "value"] = np.nan
    data.loc[11, "inv"] = np.nan
    with pytest.warns(MissingDataWarning, match=r"Dropped 3 of 200 rows .*inv: 1, value: 2.*197 rows remain"):
        fit = mlteach.ols("inv ~ value + capital", data)
    assert fit.nobs == 197


def test_missing_cluster_values_also_drop_rows():
    data = mlteach.load("grunfeld").astype({"firm": float})
    data.loc[0, "firm"] = np.nan
    with pytest.warns(MissingDataWarning, match=r"firm: 1"):
        fit = mlteach.ols("inv ~ value", data, cluster="firm")
    assert fit.nobs == 199


def test_infinite_values_are_an_error():
    data = mlteach.load("grunfeld")
    data.loc[5, "value"] = np.inf
    with pytest.raises(DataTypeError, match=r"'value' has infinite values \(first at row 5\)"):
        mlteach.ols("inv ~ value", data)


def test_rank_deficient_design_names_the_collinear_terms():
    data = mlteach.load("grunfeld").assign(total=lambda d: d.value + d.capital)
    with pytest.raises(RankDeficientError,
                       match=r"'total' is an exact linear combination of 'value', 'capital'"):
        mlteach.ols("inv ~ value + capital + total", data)


def test_constant_column_is_collinear_with_intercept():
    data = mlteach.load("grunfeld").assign(one=2.0)
    with pytest.raises(RankDeficientError, match=r"'one' is an exact linear combination of 'Intercept'"):
        mlteach.ols("inv ~ value + one", data)


def test_single_cluster_is_refused():
    data = mlteach.load("grunfeld").query("firm == 1")
    with pytest.raises(GroupingError, match=r"cluster variable 'firm' has a single level \('1'\)"):
        mlteach.ols("inv ~ value", data, cluster="firm")


def test_formula_syntax_error_points_at_the_problem():
    with pytest.raises(FormulaSyntaxError, match=r"Could not parse the formula 'inv ~ value \+ \(capital'"):
        mlteach.ols("inv ~ value + (capital", mlteach.load("grunfeld"))


def test_formula_without_response():
    with pytest.raises(FormulaSyntaxError, match="has no response"):
        mlteach.ols("~ value", mlteach.load("grunfeld"))


def test_no_warning_on_complete_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mlteach.ols("inv ~ value", mlteach.load("grunfeld"), cluster="firm")
