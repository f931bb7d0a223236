"""Tests that compare fixed and random effects: Hausman's and the Mundlak (auxiliary) version.

Both ask one question: are the group effects u_i correlated with the regressors? If not,
random effects and fixed effects estimate the same β and random effects is more precise; if
so, only fixed effects is consistent.

* `hausman` (Hausman 1978) compares the two estimates directly: plm's ``phtest(fe, re)`` and
  Stata's ``hausman fe re``. It needs classical errors and can fail when the variance of the
  difference is not positive definite.
* `mundlak_test` (Mundlak 1978; Wooldridge 2010, §10.7.3) adds the group means x̄_i to the
  random-effects model and tests that their coefficients are zero with a cluster-robust Wald
  test: valid under heteroskedasticity and serial correlation, and never "not positive
  definite". plm's ``phtest(..., method = "aux", vcov = vcovHC)``.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mlteach.results import TestResult, coef_table, wald_test
from mlteach.errors import (DataTypeError, HausmanWarning,
                            MlteachError, ModelComparisonError, user_stacklevel)
from mlteach.panel.core import CovType, check_option, prepare_panel
from mlteach.panel.random import gls_fit, swamy_arora_components
from mlteach.panel.results import FixedEffectsResult, PanelResult, RandomEffectsResult, REWBResult


def _psd_inverse(V: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, int, bool]:
    """Generalised inverse of a symmetric matrix, its rank, and whether it is positive definite.

    Works on the matrix scaled to unit diagonal so that regressors measured in different units
    do not decide the rank; eigenvalues below `rtol` times the largest (in absolute value)
    count as zero.
    """
    V = (V + V.T) / 2
    s = np.sqrt(np.abs(np.diag(V)))
    s[s == 0] = 1.0
    C = V / np.outer(s, s)
    lam, U = np.linalg.eigh(C)
    big = np.abs(lam) > rtol * np.abs(lam).max()
    pos_def = bool(np.all(lam > rtol * np.abs(lam).max()))
    Cinv = (U[:, big] / lam[big]) @ U[:, big].T
    return Cinv / np.outer(s, s), int(big.sum()), pos_def


def _model_terms(fit: PanelResult) -> list[str]:
    """The formula's terms as encoded (before any was dropped), without the intercept."""
    basis = fit.prediction_basis
    terms = (list(basis.design.terms) if basis is not None
             else list(fit.params.index) + list(fit.dropped))
    return [t for t in terms if t != "Intercept"]


def _shown(items: Sequence[str]) -> str:
    return "[" + ", ".join(items) + "]"


def check_same_model(a: PanelResult, b: PanelResult, name_a: str, name_b: str,
                     test: str) -> None:
    """Raise `ModelComparisonError` unless two fits have the same outcome, terms, group and rows.

    A test that compares two estimates of the same β (Hausman's) is meaningless when the two
    fits estimate different models or use different rows: it would still return a number.
    """
    da = a.prediction_basis.design if a.prediction_basis is not None else None
    db = b.prediction_basis.design if b.prediction_basis is not None else None
    fix = f"fit both with the same formula, group and data before calling {test}"
    if da is not None and db is not None and da.response != db.response:
        raise ModelComparisonError(
            f"The {name_a} fit models the outcome {da.response!r} but the {name_b} fit models "
            f"{db.response!r}: {test} compares estimates of the same model, so {fix}.")
    ta, tb = _model_terms(a), _model_terms(b)
    if ta != tb:
        if sorted(ta) == sorted(tb):
            detail = "in a different order"
        else:
            only_a = [t for t in ta if t not in tb]
            only_b = [t for t in tb if t not in ta]
            detail = "; ".join(
                [f"only the {name_a} fit has {_shown(only_a)}"] * bool(only_a)
                + [f"only the {name_b} fit has {_shown(only_b)}"] * bool(only_b))
        raise ModelComparisonError(
            f"The {name_a} fit has terms {_shown(ta)} but the {name_b} fit has {_shown(tb)} "
            f"({detail}): {fix}.")
    if a.group != b.group:
        raise ModelComparisonError(
            f"The {name_a} fit has groups {a.group!r} but the {name_b} fit has groups "
            f"{b.group!r}: {fix}.")
    if a.n_rows != b.n_rows or a.ngroups != b.ngroups:
        raise ModelComparisonError(
            f"The two fits use different data: the {name_a} fit uses {a.n_rows} rows in "
            f"{a.ngroups} groups, the {name_b} fit {b.n_rows} rows in {b.ngroups} groups. "
            f"{fix[0].upper() + fix[1:]}; if rows with missing values were dropped from one "
            f"of them, drop them from the data first, e.g. data.dropna(subset=[...]).")
    if da is not None and db is not None and not da.index.equals(db.index):
        ia, ib = pd.Index(da.index), pd.Index(db.index)
        only_a, only_b = ia.difference(ib), ib.difference(ia)
        if len(only_a) or len(only_b):
            ex = (f"row {only_a[0]!r} is in the {name_a} fit but not in the {name_b} fit"
                  if len(only_a) else
                  f"row {only_b[0]!r} is in the {name_b} fit but not in the {name_a} fit")
            raise ModelComparisonError(
                f"The two fits use the same number of rows ({a.n_rows}) but not the same rows: "
                f"{ex} ({max(len(only_a), len(only_b))} row(s) differ). {fix[0].upper()}"
                f"{fix[1:]}.")


def hausman(fe: PanelResult, re: PanelResult) -> TestResult:
    """Hausman's test of fixed against random effects (plm ``phtest``, Stata ``hausman``).

    Parameters
    ----------
    fe : the fixed-effects fit (`within` or `lsdv`), classical errors.
    re : the random-effects fit (`swamy_arora`), classical errors, same data.

    Raises `ModelComparisonError` when the two fits differ in outcome, terms, group or rows
    (the statistic would compare estimates of different models).

    Notes
    -----
    Over the k slopes that both models estimate,

    .. math::

        H = (\\hat\\beta_{FE} - \\hat\\beta_{RE})'
            [\\widehat{V}_{FE} - \\widehat{V}_{RE}]^{-1}
            (\\hat\\beta_{FE} - \\hat\\beta_{RE}) \\sim \\chi^2_k

    under H0: the group effects are uncorrelated with the regressors (then random effects is
    efficient and Var(b_FE − b_RE) = V_FE − V_RE). In a finite sample V_FE − V_RE need not be
    positive definite; then, as Stata, a generalised inverse is used, df is its rank, and a
    `HausmanWarning` says so. If the quadratic form is then negative, ``|H|`` is reported, as plm's
    ``phtest`` does (Stata prints the negative value), with the warning. The classical test is invalid with robust errors; use
    `mundlak_test` then.
    """
    # The classical test compares the within slopes with Swamy–Arora's (REWB splits them).
    for role, fit, ok, made_by in (
            ("fe", fe, isinstance(fe, FixedEffectsResult), "within() or lsdv()"),
            ("re", re, isinstance(re, RandomEffectsResult) and not isinstance(re, REWBResult),
             "swamy_arora()")):
        if not ok:
            raise DataTypeError(f"hausman(fe, re): {role} must be a result of {made_by}, "
                                f"got {getattr(fit, 'estimator', type(fit).__name__)}.")
        if fit.cov_type != "classical":
            raise ModelComparisonError(
                f"hausman() needs classical standard errors, but the {role} fit used "
                f"{fit.cov_description}. The formula Var(b_FE − b_RE) = V_FE − V_RE holds only "
                f"when random effects is efficient (i.i.d. errors). For a test that allows "
                f"heteroskedasticity and serial correlation use mundlak_test().")
    check_same_model(fe, re, "fixed-effects", "random-effects", "hausman()")
    common = [t for t in fe.params.index if t in re.params.index and t != "Intercept"]
    if not common:
        raise ModelComparisonError(
            "The fixed- and random-effects fits share no coefficient to compare.")
    d = (fe.params[common] - re.params[common]).to_numpy()
    Vd = (fe.vcov.loc[common, common] - re.vcov.loc[common, common]).to_numpy()
    Vinv, rank, pos_def = _psd_inverse(Vd)
    H = float(d @ Vinv @ d)
    notes: tuple[str, ...] = ()
    if not pos_def:
        k = len(common)
        if rank < k:
            why = (f"it is singular (rank {rank} of {k}), so the data cannot tell the two "
                   f"estimates apart in every direction. A generalised inverse was used and df "
                   f"set to its rank, {rank}, as Stata's hausman does")
        else:
            why = ("it has a negative eigenvalue: in this sample random effects is not more "
                   "precise than fixed effects in every direction, as the test assumes. The "
                   f"statistic uses the generalised (here the ordinary) inverse, df = {rank}")
        msg = (f"The variance of the difference between the fixed- and random-effects "
               f"estimates, V_FE − V_RE, is not positive definite: {why}. Treat the p-value "
               f"with caution, or use mundlak_test(), which does not have this problem.")
        if H < 0:
            msg += (f" The quadratic form is negative ({H:.4g}), which the test cannot "
                    f"interpret; its absolute value is reported, as plm's phtest does, and "
                    f"the p-value of that is not meaningful.")
        warnings.warn(msg, HausmanWarning, stacklevel=user_stacklevel())
        notes = (msg,)
    H = abs(H)
    p = float(stats.chi2.sf(H, rank)) if rank > 0 else float("nan")
    details = pd.DataFrame({
        "fixed effects": fe.params[common], "random effects": re.params[common],
        "difference": d, "sqrt(diag(V_FE - V_RE))": np.sqrt(np.maximum(np.diag(Vd), 0)),
    })
    return TestResult(
        name="Hausman test (fixed vs random effects)",
        null="the group effects are uncorrelated with the regressors (random effects is "
             "consistent and efficient; fixed and random effects estimate the same slopes)",
        statistic=H, df=rank, df_denom=None, pvalue=p, details=details, notes=notes)


def mundlak_test(formula: str, data: pd.DataFrame, group: str, cov: CovType = "cluster",
                 small_sample: bool = True) -> TestResult:
    """Regression-based (Mundlak / Wooldridge) Hausman test with a robust Wald statistic.

    Parameters
    ----------
    formula, data, group : as `swamy_arora`.
    cov : {"cluster", "robust", "classical"}
        Covariance of the augmented random-effects fit used in the Wald test. "cluster"
        (default) is valid under heteroskedasticity and any correlation within groups.
    small_sample : bool
        Multiply the cluster-robust covariance by G/(G − 1)·(n − 1)/(n − p) (Stata's CR1).
        False gives plm's ``phtest(method = "aux", vcov = function(x) vcovHC(x, method =
        "arellano", type = "HC0"))`` exactly.

    Notes
    -----
    Fit the random-effects model with the group mean of every regressor that varies within
    groups added,

    .. math::

        y_{it} = \\alpha + x_{it}'\\beta + \\bar x_i'\\gamma + u_i + \\varepsilon_{it},

    by GLS with the Swamy–Arora θ of the model without the means (see `rewb` for why these
    are the augmented model's own components), and test H0: γ = 0 with
    W = γ̂'V̂_γ⁻¹γ̂ ~ χ²(q). γ̂ is the difference between the between and within effects, so
    γ = 0 is the Hausman hypothesis; with classical errors W is close to, but not equal to,
    Hausman's H.

    plm's ``phtest(method = "aux")`` regresses the quasi-demeaned y on a constant 1, the
    quasi-demeaned slopes and the within-demeaned regressors. That spans the same space as
    ours except for the intercept, which GLS transforms to 1 − θ_i: the two agree exactly when
    θ is the same in every group (balanced panels, or equal group sizes) and differ a little
    otherwise (12% in the statistic on the ragged Grunfeld panel of ``plm_extra.R``). We keep
    the GLS intercept, the regression Mundlak and Wooldridge (2010, eq. 10.88) write down.
    """
    check_option("cov", cov, ("classical", "robust", "cluster"))
    panel = prepare_panel(formula, data, group, None, context="the Mundlak test")
    vc = swamy_arora_components(panel)
    d, groups = panel.design, panel.groups
    means = groups.expand(groups.mean(d.X).reshape(groups.n_groups, -1))
    varying = [j for j, t in enumerate(d.terms)
               if t != "Intercept" and np.linalg.norm(d.X[:, j] - means[:, j])
               > 1e-9 * np.linalg.norm(d.X[:, j])]
    if not varying:
        raise MlteachError("No regressor varies within groups: there are no group means to test.")
    mean_names = [f"{d.terms[j]}_mean" for j in varying]
    X = np.column_stack([d.X, means[:, varying]])
    fields, _, _, _ = gls_fit(panel, X, list(d.terms) + mean_names, vc.theta, cov, small_sample)
    params, V = fields["params"], fields["vcov"]
    test = wald_test(params, V, mean_names, None,
                     "the group means of the regressors have no effect once the regressors are "
                     "in the model (γ = 0: the group effects are uncorrelated with the "
                     "regressors, random effects is consistent)",
                     name="Mundlak (regression-based Hausman) test")
    details = coef_table(params[mean_names], fields["bse"][mean_names], None)
    note = _mundlak_note(cov, small_sample, fields["n_clusters"], group, test.df)
    return TestResult(test.name, test.null, test.statistic, test.df, None, test.pvalue,
                      details=details, notes=(note,))


def _mundlak_note(cov: CovType, small_sample: bool, n_clusters: int | None, group: str,
                  q: int) -> str:
    """What the Mundlak test's covariance is and that its statistic is a Wald χ²(q)."""
    if cov == "cluster":
        factor = ("CR1: with the small-sample factor G/(G − 1)·(n − 1)/(n − p)" if small_sample
                  else "CR0: without a small-sample factor")
        vcov = f"cluster-robust by {group} ({factor}; G = {n_clusters} clusters)"
    elif cov == "robust":
        vcov = ("heteroskedasticity-robust (HC1: with the factor n/(n − p))" if small_sample
                else "heteroskedasticity-robust (HC0: without a small-sample factor)")
    else:
        vcov = "classical (i.i.d. errors)"
    return (f"Wald χ² test: W = γ̂'V̂⁻¹γ̂ is compared with chi2({q}) ({q} df, one per group "
            f"mean tested); V̂, the covariance of γ̂, is {vcov}.")
