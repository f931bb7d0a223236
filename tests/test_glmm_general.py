"""mlteach.glmm with lme4's full random-effects syntax against glmer (stored values; no R needed).

Reference: tests/reference/lme4_glmm_general.json, written by lme4_glmm_general.R (lme4 1.1-31,
R 4.2.2): crossed (VerbAgg subjects × items), correlated and uncorrelated random slopes
(Contraception), a random-slope Poisson model with an offset, nested two- and three-level
binomial (guImmun) and Poisson (grouseticks) models, probit and cloglog links and the
cbind(successes, failures) response.

What is compared, and why:

* ``laplace_max``: the Laplace log-likelihood computed independently in R (modes by its own
  Newton iteration to |step| < 1e-12, the log determinant by Matrix) and maximised over
  (θ, β). mlteach computes the Laplace approximation at exact modes, so its maximum must equal
  this one: log-likelihood within 1e-6, fixed effects within 1e-4 (absolute), the Cholesky
  factor θ (for these families, with no residual scale, the random-effect SDs and covariances)
  within 1e-3 relative (or 1e-3 absolute for elements near 0).
* glmer's own fit (``tight`` and ``default``): glmer's deviance takes log det L from the
  factor PIRLS built before its last step, so its maximum differs from the exact one by
  ``loglik_tight_minus_default`` and by the size of that shortcut. Our log-likelihood is never
  below glmer's by more than 1e-6 (it is the maximum of the same approximation) and its
  estimates are within 1e-2 of glmer's.
* Standard errors: glmer's default (finite-difference Hessian over θ and β), 2e-2 relative:
  both programs difference a noisy function numerically.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlteach
from mlteach.errors import MlteachWarning

REF = json.loads((Path(__file__).parent / "reference" / "lme4_glmm_general.json").read_text())
CASES = REF["cases"]


def dataset(file: str) -> pd.DataFrame:
    """The data set as the R script built it (its ``python_columns`` say how)."""
    name = file.removesuffix(".csv")
    d = mlteach.load(name)
    if name == "verbagg":
        d["r2"] = (d["r2"] == "Y").astype(int)
    elif name == "contraception":
        d["use"] = (d["use"] == "Y").astype(int)
        d["urbanY"] = (d["urban"] == "Y").astype(float)
    elif name == "cbpp":
        d["pnum"] = d["period"].cat.codes.astype(float) + 1.0
    elif name == "guimmun":
        d["immun"] = (d["immun"] == "Y").astype(int)
    return d


def r_term(name: str) -> str:
    """formulaic's column name → R's ('Intercept' → '(Intercept)', 'urban[T.Y]' → 'urbanY')."""
    if name == "Intercept":
        return "(Intercept)"
    name = name.replace("I(age ** 2)", "I(age^2)")
    m = re.fullmatch(r"(.+)\[T\.(.+)\]", name)
    return m.group(1) + m.group(2) if m else name


def r_theta_name(name: str) -> str:
    """Our θ label 'comm:mom.Intercept' → R's 'mom:comm.(Intercept)' (R names an interaction
    of grouping factors inner first)."""
    group, *terms = re.split(r"\.(?![^\[]*\])", name)   # not the dots inside [T.Y]
    group = ":".join(reversed(group.split(":")))
    return ".".join([group] + [r_term(t) for t in terms])


_fits: dict[str, mlteach.glmm] = {}


def fit(case: str):
    if case not in _fits:
        c = CASES[case]
        formula = re.sub(r"\s+", " ", c["formula"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MlteachWarning)
            _fits[case] = mlteach.glmm(formula, dataset(c["data"]), family=c["family"],
                                       link=c["link"])
    return _fits[case]


def test_every_case_is_checked():
    assert len(CASES) >= 10
    assert {"verbagg_crossed", "contraception_slope", "contraception_uncorr", "guimmun_nested",
            "grouse_three", "cbpp_slope_offset", "cbpp_probit", "cbpp_cloglog"} <= set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_laplace_maximum_equals_the_independent_one(case):
    ref, f = CASES[case]["laplace_max"], fit(case)
    assert f.converged
    assert f.loglik == pytest.approx(ref["loglik"], abs=1e-6)
    ours = pd.Series(f.params.to_numpy(), index=[r_term(t) for t in f.params.index])
    theirs = pd.Series(ref["fixef"])
    assert set(ours.index) == set(theirs.index)
    np.testing.assert_allclose(ours[theirs.index], theirs, atol=1e-4)
    theta = pd.Series(f.theta.to_numpy(), index=[r_theta_name(t) for t in f.theta.index])
    ref_theta = pd.Series(ref["theta"])
    assert set(theta.index) == set(ref_theta.index)
    np.testing.assert_allclose(theta[ref_theta.index], ref_theta, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("case", sorted(CASES))
def test_at_least_glmers_likelihood_and_close_to_its_estimates(case):
    c, f = CASES[case], fit(case)
    tight = c["tight"]
    assert f.loglik >= tight["loglik"] - 1e-6
    assert f.nobs == tight["nobs"]
    ng = f.ngroups if isinstance(f.ngroups, dict) else {"": f.ngroups}
    assert sorted(ng.values()) == sorted(tight["ngroups"].values())
    ours = pd.Series(f.params.to_numpy(), index=[r_term(t) for t in f.params.index])
    np.testing.assert_allclose(ours[list(tight["fixef"])], pd.Series(tight["fixef"]), atol=1e-2)
    se = pd.Series(f.bse.to_numpy(), index=ours.index)
    np.testing.assert_allclose(se[list(c["default"]["se"])], pd.Series(c["default"]["se"]),
                               rtol=2e-2)


@pytest.mark.parametrize("case", ["contraception_slope", "guimmun_nested", "verbagg_crossed"])
def test_conditional_modes_match_glmer(case):
    """ranef at our estimates against glmer's at its tight ones, first three levels of each
    factor (shifted by the estimate differences, so a loose 2e-2)."""
    c, f = CASES[case], fit(case)
    ranef = f.ranef if isinstance(f.ranef, dict) else {next(iter(c["tight"]["ngroups"])): f.ranef}
    for group, first3 in c["tight"]["ranef_first3"].items():
        table = ranef.get(":".join(reversed(group.split(":"))), ranef.get(group))
        for level, values in zip(first3["levels"], first3["values"]):
            ours_level = ":".join(reversed(level.split(":")))
            row = table.loc[ours_level if ours_level in table.index else level]
            for term, value in zip(first3["columns"], values):
                column = next(col for col in table.columns if r_term(col) == term)
                assert row[column] == pytest.approx(value, abs=2e-2), (group, level, term)
