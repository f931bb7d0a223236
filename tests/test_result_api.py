"""One result API (issue 14): every name of `mlteach.results.RESULT_API` on every estimator family,
with its type, and `lrt` on GLMMs as lme4's anova().
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlteach
import mlteach.panel as P
from mlteach.errors import ModelComparisonError
from mlteach.results import RESULT_API


@pytest.fixture(scope="module")
def fits():
    g, s, cb = mlteach.load("grunfeld"), mlteach.load("sleepstudy"), mlteach.load("cbpp")
    F = "inv ~ value + capital"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "ols": mlteach.ols(F, g),
            "panel within": P.within(F, g, group="firm"),
            "panel between": P.between(F, g, group="firm"),
            "panel first_difference": P.first_difference(F, g, group="firm", time="year"),
            "panel swamy_arora": P.swamy_arora(F, g, group="firm"),
            "panel rewb": P.rewb(F, g, group="firm"),
            "panel lsdv": P.lsdv(F, g, group="firm"),
            "lmm": mlteach.lmm("Reaction ~ Days + (Days | Subject)", s),
            "glmm laplace": mlteach.glmm("incidence ~ period + (1 | herd)", cb, trials="size"),
            "glmm agq": mlteach.glmm("incidence ~ period + (1 | herd)", cb, trials="size",
                                     method="agq", nagq=9),
            "glmm pql": mlteach.glmm("incidence ~ period + (1 | herd)", cb, trials="size",
                                     method="pql"),
            "glmm general": mlteach.glmm("incidence ~ period + (1 | herd/period)", cb,
                                         trials="size"),
        }
    return out


CASES = ["ols", "panel within", "panel between", "panel first_difference", "panel swamy_arora",
         "panel rewb", "panel lsdv", "lmm", "glmm laplace", "glmm agq", "glmm pql",
         "glmm general"]


@pytest.mark.parametrize("case", CASES)
def test_every_canonical_name_with_its_type(fits, case):
    fit, family = fits[case], case.split()[0]
    for entry in RESULT_API:
        if family not in entry.families:
            continue
        value = getattr(fit, entry.name)
        if entry.kind == "method":
            assert callable(value), entry.name
            result = value()
            if entry.name in ("conf_int", "to_frame"):
                assert isinstance(result, pd.DataFrame), entry.name
            if entry.name == "predict":
                assert isinstance(result, pd.Series)
        elif entry.kind in ("Series", "DataFrame"):
            assert type(value).__name__ == entry.kind, entry.name
        elif entry.kind == "int":
            assert isinstance(value, (int, np.integer)), entry.name
        elif entry.kind == "float":
            assert isinstance(value, (float, np.floating)), entry.name
        elif entry.kind == "int or dict":
            assert isinstance(value, (int, np.integer, dict)), entry.name


@pytest.mark.parametrize("case", ["lmm", "glmm laplace", "glmm general"])
def test_tvalues_pvalues_and_fitted_agree_with_their_definitions(fits, case):
    fit = fits[case]
    np.testing.assert_allclose(fit.tvalues, fit.params / fit.bse)
    np.testing.assert_allclose(fit.pvalues, 2 * stats.norm.sf(np.abs(fit.params / fit.bse)))
    pd.testing.assert_series_equal(fit.fitted, fit.predict(), check_names=False)
    mine = fit.fitted                               # the caller's object ...
    mine.iloc[:] = -1.0
    assert (fit.fitted != -1.0).all()               # ... shares no memory with the result


def test_glmm_residuals_are_observed_proportion_minus_fitted(fits):
    fit = fits["glmm laplace"]
    cb = mlteach.load("cbpp")
    np.testing.assert_allclose(fit.resid + fit.fitted, cb["incidence"] / cb["size"], atol=1e-12)


def test_lrt_compares_glmms_as_lme4_anova(fits):
    """anova(glmer(... (1 | herd)), glmer(... (1 | herd/period))) in lme4 1.1-31: Chisq 9.4143
    on 1 df (logLik -92.0263 and -87.3192, test_glmm_general and test_glmm hold both)."""
    test = mlteach.lrt(fits["glmm laplace"], fits["glmm general"])
    assert test.statistic == pytest.approx(2 * (fits["glmm general"].loglik
                                                - fits["glmm laplace"].loglik))
    assert test.statistic == pytest.approx(9.4143, abs=2e-3)
    assert test.df == 1


def test_lrt_refuses_pql_and_mixed_approximations(fits):
    with pytest.raises(ModelComparisonError, match="fitted by PQL, which maximises no likelihood"):
        mlteach.lrt(fits["glmm pql"], fits["glmm general"])
    with pytest.raises(ModelComparisonError, match=r"differ in method \('agq' and 'laplace'\)"):
        mlteach.lrt(fits["glmm agq"], fits["glmm general"])
    with pytest.raises(ModelComparisonError, match="cannot compare a linear mixed model with a GLMM"):
        mlteach.lrt(fits["lmm"], fits["glmm general"])
