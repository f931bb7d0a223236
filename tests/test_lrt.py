"""Likelihood-ratio tests of nested mixed models: lme4's anova() numbers, the boundary mixture,
and refusals of comparisons that make no sense."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import mlteach
from mlteach.errors import ConvergenceWarning, ModelComparisonError
from mlteach.lmm import lmm
from mlteach.lrt import LRTResult, chi2_mixture_sf, lrt

REF = json.loads((Path(__file__).parent / "reference" / "lme4_lmm.json").read_text())["lrt"]
RI = "Reaction ~ Days + (1 | Subject)"
RS = "Reaction ~ Days + (Days | Subject)"
UNCORR = "Reaction ~ Days + (Days || Subject)"


@pytest.fixture(scope="module")
def fits(sleep):
    out = {}
    for name, formula in (("ri", RI), ("rs", RS), ("uncorr", UNCORR)):
        for reml in (True, False):
            out[name, reml] = lmm(formula, sleep, reml=reml)
    out["empty", False] = lmm("Reaction ~ 1 + (1 | Subject)", sleep, reml=False)
    out["empty", True] = lmm("Reaction ~ 1 + (1 | Subject)", sleep, reml=True)
    return out


@pytest.mark.parametrize("reml,key", [(False, "ml"), (True, "reml_no_refit")])
def test_statistic_df_and_naive_p_match_lme4_anova(fits, reml, key):
    ref = REF[key]
    res = lrt(fits["ri", reml], fits["rs", reml])
    assert isinstance(res, LRTResult)
    assert res.df == ref["Df"] == 2
    assert res.statistic == pytest.approx(ref["Chisq"], abs=1e-5)
    assert res.p_naive == pytest.approx(ref["p_value"], rel=1e-5)
    table = res.to_frame()
    np.testing.assert_array_equal(table["npar"], ref["npar"])
    for col in ("AIC", "BIC", "logLik", "deviance"):
        np.testing.assert_allclose(table[col], ref[col], atol=1e-5, err_msg=col)
    assert res.criterion == ("REML" if reml else "ML")


def test_random_slope_with_covariance_uses_half_chi2_1_half_chi2_2(fits):
    res = lrt(fits["ri", False], fits["rs", False])
    x = res.statistic
    expected = 0.5 * stats.chi2.sf(x, 1) + 0.5 * stats.chi2.sf(x, 2)
    assert res.method == "boundary"
    assert res.distribution == "0.5·χ²(1) + 0.5·χ²(2)"
    assert res.p_boundary == pytest.approx(expected, rel=1e-12)
    assert res.p_value == res.p_boundary < res.p_naive
    assert res.added_random == (("Subject", "Days"),)
    assert res.n_added_variances == 1
    assert "variance of the random effect 'Days' across 'Subject' is zero" in res.h0
    assert "covariance with 'Intercept'" in res.h0


def test_one_variance_without_covariance_halves_the_naive_p(fits):
    # (1 | Subject) inside (Days || Subject): one new variance, no covariance -> 0.5χ²₀ + 0.5χ²₁,
    # whose tail beyond x > 0 is half the χ²₁ tail.
    res = lrt(fits["ri", False], fits["uncorr", False])
    assert res.df == 1
    assert res.distribution == "0.5·χ²(0) + 0.5·χ²(1)"
    assert res.statistic > 0
    assert res.p_boundary == pytest.approx(0.5 * res.p_naive, rel=1e-12)
    assert res.p_value == res.p_boundary


def test_adding_only_a_covariance_has_no_boundary(fits):
    res = lrt(fits["uncorr", False], fits["rs", False])
    assert res.df == 1 and res.n_added_variances == 0
    assert res.method == "naive" and np.isnan(res.p_boundary)
    assert res.p_value == pytest.approx(stats.chi2.sf(res.statistic, 1), rel=1e-12)
    assert "uncorrelated" in res.h0
    # 2(ℓ1 − ℓ0) from the two fits' own log-likelihoods
    assert res.statistic == pytest.approx(
        2 * (fits["rs", False].loglik - fits["uncorr", False].loglik), rel=1e-12)


def test_fixed_effect_test_with_ml_fits_is_plain_chi2(fits):
    res = lrt(fits["empty", False], fits["ri", False])
    assert res.added_fixed == ("Days",) and res.added_random == ()
    assert res.df == 1 and res.method == "naive"
    assert res.distribution == "χ²(1)"
    assert res.p_value == pytest.approx(stats.chi2.sf(res.statistic, 1), rel=1e-12)
    assert "coefficient of 'Days' is zero" in res.h0


def test_mixture_tail_is_a_probability():
    assert chi2_mixture_sf(0.0, (0, 1), (0.5, 0.5)) == 1.0
    assert chi2_mixture_sf(1e-12, (0, 1), (0.5, 0.5)) == pytest.approx(0.5, abs=1e-5)
    assert chi2_mixture_sf(1e6, (1, 2), (0.5, 0.5)) == 0.0


def test_result_prints_hypothesis_statistic_distribution_and_p(fits):
    res = lrt(fits["ri", False], fits["rs", False])
    text = str(res)
    for piece in ("H0", "H1", "Statistic LR = 2(ℓ₁ − ℓ₀)", "42.14", "Degrees of freedom",
                  "0.5·χ²(1) + 0.5·χ²(2)", "p-value", "Naive p, χ²(2)", "7.072e-10",
                  "Self & Liang"):
        assert piece in text, piece
    html = res._repr_html_()
    assert "<table" in html and "H0" in html
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.statistic = 0.0  # type: ignore[misc]


# ------------------------------------------------------------------------ refusals


def test_refuses_reml_fits_with_different_fixed_effects(fits):
    with pytest.raises(ModelComparisonError, match=r"REML.*fixed effects differ.*'Days'.*"
                                                   r"refit both with reml=False"):
        lrt(fits["empty", True], fits["ri", True])


def test_refuses_one_reml_and_one_ml_fit(fits):
    with pytest.raises(ModelComparisonError,
                       match=r"fitted by REML \(the smaller\), the other by ML.*reml=False"):
        lrt(fits["ri", True], fits["rs", False])


def test_refuses_fits_to_different_rows(fits, sleep):
    fewer = lmm(RS, sleep[sleep["Days"] > 0], reml=False)
    with pytest.raises(ModelComparisonError, match="different rows: the smaller to 180, the "
                                                   "larger to 162"):
        lrt(fits["ri", False], fewer)


def test_refuses_models_with_the_same_number_of_parameters(fits):
    with pytest.raises(ModelComparisonError, match="Both models have 6 parameters.*AIC or BIC"):
        lrt(fits["rs", False], fits["rs", False])


def test_refuses_the_larger_model_first(fits):
    with pytest.raises(ModelComparisonError, match=r"Pass the smaller \(null\) model first"):
        lrt(fits["rs", False], fits["ri", False])


def test_refuses_non_nested_fixed_effects(sleep):
    a = lmm("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
    b = lmm("Reaction ~ I(Days ** 2) + Days:I(Days > 4) + (1 | Subject)", sleep, reml=False)
    with pytest.raises(ModelComparisonError, match="not nested: the smaller model's fixed "
                                                   "effect.*'Days'"):
        lrt(a, b)


def test_refuses_different_outcomes(sleep):
    data = sleep.assign(log_rt=np.log(sleep["Reaction"]))
    a = lmm("Reaction ~ 1 + (1 | Subject)", data, reml=False)
    b = lmm("log_rt ~ Days + (1 | Subject)", data, reml=False)
    with pytest.raises(ModelComparisonError, match="different outcomes \\('Reaction' and "
                                                   "'log_rt'\\)"):
        lrt(a, b)


def test_refuses_objects_that_are_not_fits(fits):
    with pytest.raises(ModelComparisonError, match="lacks .*loglik"):
        lrt(object(), fits["rs", False])


# ------------------------------------------------------------------------ warnings


def test_warns_and_sets_zero_when_the_larger_model_fits_worse(fits):
    bad = dataclasses.replace(fits["rs", False], loglik=fits["ri", False].loglik - 1.0)
    with pytest.warns(ConvergenceWarning, match="stopped short of the maximum. LR is set to 0"):
        res = lrt(fits["ri", False], bad)
    assert res.statistic == 0.0 and res.p_value == 1.0


def test_warns_when_a_fit_did_not_converge(fits):
    bad = dataclasses.replace(fits["rs", False], converged=False)
    with pytest.warns(ConvergenceWarning, match=r"larger model \(Reaction ~ Days \+ \(Days \| "
                                                r"Subject\)\) did not converge"):
        lrt(fits["ri", False], bad)


# ------------------------------------------------------------------------ more lme4 anova()

MORE = json.loads((Path(__file__).parent / "reference" / "lme4_lrt.json").read_text())
DATASET = {"pastes.csv": "pastes", "sleepstudy.csv": "sleepstudy"}


@pytest.mark.parametrize("name", sorted(MORE["comparisons"]))
def test_more_comparisons_match_lme4_anova_and_r_mixture(name):
    ref = MORE["comparisons"][name]
    data = mlteach.load(DATASET[ref["data"]])
    res = lrt(lmm(ref["smaller"], data, reml=ref["reml"]),
              lmm(ref["larger"], data, reml=ref["reml"]))
    assert res.df == ref["Df"]
    assert res.statistic == pytest.approx(ref["Chisq"], abs=1e-5)
    assert res.p_naive == pytest.approx(ref["p_naive"], rel=1e-4)
    np.testing.assert_allclose(res.to_frame()["logLik"], ref["logLik"], atol=1e-5)
    np.testing.assert_allclose(res.to_frame()["BIC"], ref["BIC"], atol=1e-5)
    assert res.n_added_variances == ref["n_added_variances"]
    if ref["p_boundary"] is None:
        assert res.method == "naive" and np.isnan(res.p_boundary)
    else:
        assert res.method == "boundary"
        assert res.p_boundary == pytest.approx(ref["p_boundary"], rel=1e-4)


# ------------------------------------------------------------------------ nesting by column space


def test_days_is_nested_in_day_dummies_by_column_space(sleep):
    # No term name is shared, but the linear trend is a combination of the day dummies.
    linear = lmm("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    dummies = lmm("Reaction ~ C(Days) + (Days | Subject)", sleep, reml=False)
    res = lrt(linear, dummies)
    hand = 2 * (dummies.loglik - linear.loglik)
    assert res.df == 8 == (10 + 3 + 1) - (2 + 3 + 1)
    assert res.n_added_fixed == 8 and res.n_added_variances == 0
    assert res.statistic == pytest.approx(hand, rel=1e-12)
    assert res.p_value == pytest.approx(stats.chi2.sf(hand, 8), rel=1e-12)
    assert res.method == "naive" and res.distribution == "χ²(8)"
    assert "reduce to the smaller model's ('Intercept', 'Days'): 8 linear restrictions" in res.h0


def test_span_residual_sees_combinations_not_names():
    from mlteach.lrt import span_residual

    days = np.arange(10.0)
    dummies = (days[:, None] == days[None, :]).astype(float)
    inside = np.column_stack([np.ones(10), days, np.log1p(days)])
    assert np.all(span_residual(inside, dummies) < 1e-12)
    trend = np.column_stack([np.ones(10), days])
    assert span_residual(days[:, None] ** 2, trend)[0] > 0.1


def test_refuses_random_effects_outside_the_larger_span(sleep):
    small = lmm("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    big = lmm("Reaction ~ C(Days) + (1 | Subject)", sleep, reml=False)
    with pytest.raises(ModelComparisonError, match="not nested: the smaller model's random "
                                                   "effect\\(s\\) 'Days' by 'Subject'"):
        lrt(small, big)


def test_refuses_correlated_random_effects_inside_uncorrelated_ones(sleep):
    small = lmm("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    big = lmm("Reaction ~ C(Days) + (Days || Subject)", sleep, reml=False)
    with pytest.raises(ModelComparisonError, match="not nested: the smaller model lets its "
                                                   "random effects 'Intercept', 'Days' by "
                                                   "'Subject' be correlated"):
        lrt(small, big)


def test_refuses_the_same_number_of_rows_but_different_rows(sleep):
    early = lmm("Reaction ~ 1 + (1 | Subject)", sleep[sleep["Days"] < 9], reml=False)
    late = lmm(RI, sleep[sleep["Days"] > 0], reml=False)
    with pytest.raises(ModelComparisonError, match="different rows: both use 162 observations, "
                                                   "but not the same ones"):
        lrt(early, late)
