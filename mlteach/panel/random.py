"""Random effects by feasible GLS with Swamy–Arora variance components, and the REWB model.

The random-intercept model y_it = α + x_it'β + u_i + ε_it, u_i ~ (0, σ²_u), ε_it ~ (0, σ²_e),
is estimated in three steps, each a function here:

1. `swamy_arora_components`: σ²_e from the within regression, σ²_u from the between
   regression (Swamy & Arora 1972; Baltagi & Chang 1994 for unbalanced panels);
2. `theta`: the quasi-demeaning weight of each group, θ_i = 1 − √(σ²_e / (T_i σ²_u + σ²_e));
3. `quasi_demeaned_gls`: least squares on y_it − θ_i ȳ_i and x_it − θ_i x̄_i, which is GLS.

θ = 0 is pooled OLS and θ = 1 the within estimator: random effects sits between the two.
`rewb` splits each regressor into its within part x − x̄_i and its group mean x̄_i (Mundlak
1978; Bell & Jones 2015), so one model reports within, between and contextual effects.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from mlteach.results import coef_table
from mlteach.design import GroupIndex, assert_full_rank
from mlteach.errors import BoundaryFitWarning, MlteachError, RankDeficientError, user_stacklevel
from mlteach.ols import least_squares
from mlteach.panel.core import (
    CovType, Panel, ZERO_VARIATION, assert_enough_rows, rsquared,
    check_option, covariance, drop_without_variation, prepare_panel, result_fields,
)
from mlteach.panel.results import GLSResult, PredictionBasis, RandomEffectsResult, REWBResult


# ----------------------------------------------------------------------------------------------
# Variance components
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VarianceComponents:
    """Swamy–Arora estimates σ²_e (idiosyncratic) and σ²_u (group), with what they came from.

    `k_within` and `k_between` are the ranks of the within and between regressions, whose
    residual degrees of freedom n − G − k_within and G − k_between divide the sums of squares.
    `sigma2_u_raw` is the estimate before truncation at zero.
    """

    sigma2_e: float
    sigma2_u: float
    sigma2_u_raw: float
    k_within: int
    k_between: int
    sizes: np.ndarray

    @property
    def theta(self) -> np.ndarray:
        return theta(self.sigma2_u, self.sigma2_e, self.sizes)

    def __repr__(self) -> str:
        # The estimates, not the array of group sizes behind them.
        return (f"VarianceComponents(sigma2_e={self.sigma2_e:.6g}, sigma2_u={self.sigma2_u:.6g}, "
                f"sigma2_u_raw={self.sigma2_u_raw:.6g}, k_within={self.k_within}, "
                f"k_between={self.k_between}, groups={len(self.sizes)})")


def theta(sigma2_u: float, sigma2_e: float, sizes: np.ndarray) -> np.ndarray:
    """The GLS quasi-demeaning weight θ_i = 1 − √(σ²_e / (T_i σ²_u + σ²_e)) for each group."""
    sizes = np.asarray(sizes, dtype=float)
    return 1.0 - np.sqrt(sigma2_e / (sizes * sigma2_u + sigma2_e))


def _rank_lstsq(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Least-squares residuals and rank, columns scaled to unit length first."""
    norms = np.sqrt((X ** 2).sum(axis=0))
    norms[norms == 0] = 1.0
    b, _, rank, _ = np.linalg.lstsq(X / norms, y, rcond=None)
    return y - (X / norms) @ b, int(rank)


def _weighted_trace(Xb: np.ndarray, sizes: np.ndarray, rank: int) -> float:
    """tr[(X̄'TX̄)⁻¹ X̄'T²X̄] = Σ_i T_i ‖q_i‖², q_i the rows of an orthonormal basis of √T X̄.

    Forming X̄'TX̄ and inverting it squares the condition number of badly scaled columns
    (hours ≈ 2000 next to a 0/1 dummy loses ~1e-10 in σ²_u); the orthonormal basis from the
    SVD of the column-scaled √T X̄ does not. Its first `rank` columns span the between
    regression (a generalised inverse when columns are collinear).
    """
    A = Xb * np.sqrt(sizes)[:, None]
    norms = np.sqrt((A ** 2).sum(axis=0))
    norms[norms == 0] = 1.0
    U = np.linalg.svd(A / norms, full_matrices=False)[0][:, :rank]
    return float(sizes @ (U ** 2).sum(axis=1))


def swamy_arora_components(panel: Panel) -> VarianceComponents:
    """Swamy–Arora variance components (plm ``random.method = "swar"``; linearmodels
    ``RandomEffects(small_sample=True)``).

    Notes
    -----
    With ẽ the residuals of the within regression (k_W regressors that vary within groups) and
    û the residuals of the between regression run on the rows, i.e. of ȳ_i on x̄_i weighted
    by T_i (K_B coefficients, intercept included),

    .. math::

        \\hat\\sigma^2_e = \\frac{\\tilde e'\\tilde e}{n - G - k_W}, \\qquad
        \\hat\\sigma^2_u = \\frac{\\hat u'\\hat u - (G - K_B)\\hat\\sigma^2_e}
                               {n - \\operatorname{tr}[(\\bar X'T\\bar X)^{-1}\\bar X'T^2\\bar X]}

    with T = diag(T_i) (Baltagi & Chang 1994). In a balanced panel this is the textbook
    σ̂²_u = SSR_B/(G − K_B) − σ̂²_e/T of the unweighted regression of the means. A negative
    σ̂²_u is set to 0 with a `BoundaryFitWarning`.
    """
    d, groups = panel.design, panel.groups
    n, G = d.nobs, groups.n_groups
    Z = groups.demean(np.column_stack([d.y, d.X]))
    keep, _ = drop_without_variation(d.X, Z[:, 1:], d.terms, "", silent=d.terms)
    e_w, k_w = _rank_lstsq(Z[:, 1:][:, keep], Z[:, 0])
    df_w = n - G - k_w
    if df_w <= 0:
        raise RankDeficientError(
            f"The within regression behind σ²_e has no residual degrees of freedom ({n} rows, "
            f"{G} groups, {k_w} regressors varying within groups): random effects need more "
            f"rows per group."
        )
    sigma2_e = float(e_w @ e_w) / df_w
    sizes = groups.sizes.astype(float)
    Xb = groups.mean(d.X).reshape(G, -1)
    yb = groups.mean(d.y)
    root = np.sqrt(sizes)[:, None]
    # Columns whose group means are all (numerically) zero, such as x − x̄_i, have no between
    # variation; rescaling their rounding error would make it look like a regressor.
    between_norm = np.sqrt(((Xb * root) ** 2).sum(axis=0))
    Xb = Xb[:, between_norm > ZERO_VARIATION * np.sqrt((d.X ** 2).sum(axis=0))]
    ub, k_b = _rank_lstsq(Xb * root, yb * root[:, 0])
    if G <= k_b:
        raise RankDeficientError(
            f"The between regression behind σ²_u has {G} groups for {k_b} coefficients: "
            f"random effects need more groups than regressors."
        )
    trace = _weighted_trace(Xb, sizes, k_b)
    raw = (float(ub @ ub) - (G - k_b) * sigma2_e) / (n - trace)
    if raw < 0:
        warnings.warn(
            f"The variance of the group effects is estimated below zero (Swamy–Arora "
            f"σ²_u = {raw:.4g}) and set to 0: the group means differ no more than the "
            f"within-group noise alone would make them, so there is no evidence of group "
            f"effects and random effects reduce to pooled OLS (θ = 0).",
            BoundaryFitWarning, stacklevel=user_stacklevel(),
        )
    return VarianceComponents(sigma2_e=sigma2_e, sigma2_u=max(raw, 0.0), sigma2_u_raw=raw,
                              k_within=k_w, k_between=k_b, sizes=groups.sizes)


# ----------------------------------------------------------------------------------------------
# GLS by quasi-demeaning
# ----------------------------------------------------------------------------------------------


def blup_shrinkage(theta: np.ndarray) -> np.ndarray:
    """The factor λ_i = T_iσ²_u / (T_iσ²_u + σ²_e) = 1 − (1 − θ_i)² of û_i = λ_i ē_i.

    Written in θ_i = 1 − √(σ²_e / (T_iσ²_u + σ²_e)), so it also serves `quasi_demeaned_gls`,
    whose θ is given rather than estimated: θ = 0 gives λ = 0 (no group effects, pooled OLS),
    θ = 1 gives λ = 1 (the fixed-effects intercepts).
    """
    theta = np.asarray(theta, dtype=float)
    return 1.0 - (1.0 - theta) ** 2


def random_group_effects(y: np.ndarray, X: np.ndarray, beta: np.ndarray, groups: GroupIndex,
                         theta: np.ndarray) -> np.ndarray:
    """û_i = λ_i · mean_{t}(y_it − x_it'β̂), the GLS conditional mean E[u_i | y] at the estimates.

    Under the random-intercept model the composite residuals y_it − x_it'β of group i average
    to ē_i = u_i + ε̄_i, and the best linear predictor of u_i from ē_i is
    Cov(u_i, ē_i)/Var(ē_i) · ē_i = σ²_u / (σ²_u + σ²_e/T_i) · ē_i (the BLUP of the book's
    shrinkage chapter, with the Swamy–Arora variances and the GLS β̂ plugged in).
    """
    return blup_shrinkage(theta) * groups.mean(y - X @ beta)


def gls_fit(panel: Panel, X: np.ndarray, terms: list[str], theta_g: np.ndarray,
             cov: CovType, small_sample: bool) -> tuple[dict, np.ndarray, list[str], tuple]:
    """Least squares of y − θ_i ȳ_i on X − θ_i x̄_i: the fields of the result."""
    groups, y = panel.groups, panel.design.y
    th = theta_g[groups.codes]
    M = np.column_stack([y, X])
    Ms = M - th[:, None] * groups.expand(groups.mean(M))
    keep, dropped = drop_without_variation(
        X, Ms[:, 1:], terms,
        "the GLS model: with θ = 1 in every group it does not vary within groups and the "
        "quasi-demeaning removes it (θ = 1 is the fixed-effects estimator).")
    if keep.size == 0:
        raise RankDeficientError("No regressor is left after quasi-demeaning.")
    kept = [terms[j] for j in keep]
    Xs, ys = Ms[:, 1:][:, keep], Ms[:, 0]
    assert_full_rank(Xs, kept)
    n, p = Xs.shape
    assert_enough_rows(n, p, "The GLS regression")
    ls = least_squares(Xs, ys)
    cv = covariance(ls, Xs, cov, n - p, groups, small_sample)
    fields = result_fields(ls, cv, kept, n - p)
    effects = random_group_effects(y, X[:, keep], ls.beta, groups, theta_g)
    fields.update(rsquared=rsquared(ys, ls.resid), nobs=n, n_rows=n,
                  ngroups=groups.n_groups,
                  resid=pd.Series(ls.resid, index=panel.design.index, name="resid"),
                  dropped=tuple(dropped),
                  prediction_basis=PredictionBasis(design=panel.design,
                                                   group_levels=pd.Index(groups.levels),
                                                   row_groups=groups.codes,
                                                   group_effect=effects))
    return fields, ls.beta, kept, tuple(dropped)


def quasi_demeaned_gls(formula: str, data: pd.DataFrame, group: str,
                       theta: float | Mapping[str, float] | pd.Series,
                       cov: CovType = "classical", small_sample: bool = True) -> GLSResult:
    """GLS for a given θ: least squares on y_it − θ_i ȳ_i and x_it − θ_i x̄_i.

    Parameters
    ----------
    theta : float or per-group mapping / Series (indexed by group label)
        The quasi-demeaning weight in [0, 1]. θ = 0 gives pooled OLS; θ = 1 the within
        estimator (the intercept and time-invariant regressors then vanish and are dropped);
        Swamy–Arora's θ_i gives `swamy_arora`.

    Notes
    -----
    .. math::

        y_{it} - \\theta_i\\bar y_i = (1 - \\theta_i)\\alpha + (x_{it} - \\theta_i\\bar x_i)'\\beta
            + \\text{error}

    The variance is σ̂²(X*'X*)⁻¹ with σ̂² = e*'e*/(n − p) from this regression, as plm. With
    θ = 1 these degrees of freedom do not count the G group means, so the slopes equal
    `within` but the classical standard errors are larger there by √((n − p)/(n − G − k)).
    """
    check_option("cov", cov, ("classical", "robust", "cluster"))
    panel = prepare_panel(formula, data, group, None, context="the GLS model")
    theta_g = _theta_per_group(theta, panel.groups)
    fields, _, _, _ = gls_fit(panel, panel.design.X, list(panel.design.terms), theta_g, cov,
                               small_sample)
    shown = (f"{theta_g[0]:.4g}" if np.ptp(theta_g) == 0
             else f"{theta_g.min():.4g} to {theta_g.max():.4g}")
    return GLSResult(estimator=f"GLS by quasi-demeaning (θ = {shown})",
                     formula=formula, rsquared_kind="quasi-demeaned",
                     group=group, time=None, **fields)


def _theta_per_group(theta, groups: GroupIndex) -> np.ndarray:
    if np.isscalar(theta):
        values = np.full(groups.n_groups, float(theta))
    else:
        s = pd.Series(theta)
        s.index = s.index.map(str)
        missing = [g for g in groups.levels if g not in s.index]
        if missing:
            raise MlteachError(f"theta has no value for group(s) {missing[:5]}; give one per "
                             f"group label of {groups.name!r} (or a single number).")
        values = s.reindex(list(groups.levels)).to_numpy(dtype=float)
    if not np.all((values >= 0) & (values <= 1)):
        raise MlteachError(f"theta must lie in [0, 1] (0 = pooled OLS, 1 = within); got values "
                         f"from {values.min():.4g} to {values.max():.4g}.")
    return values


# ----------------------------------------------------------------------------------------------
# Random effects
# ----------------------------------------------------------------------------------------------


def _re_facts(vc: VarianceComponents) -> tuple[tuple[str, object], ...]:
    th = vc.theta
    shown = th[0] if np.ptp(th) == 0 else f"{th.min():.4g} to {th.max():.4g} (by group size)"
    return (("sigma2_u (group effects)", vc.sigma2_u), ("sigma2_e (idiosyncratic)", vc.sigma2_e),
            ("rho = sigma2_u / (sigma2_u + sigma2_e)",
             vc.sigma2_u / (vc.sigma2_u + vc.sigma2_e)),
            ("theta", shown)) + _raw_fact(vc)


def _raw_fact(vc: VarianceComponents) -> tuple[tuple[str, object], ...]:
    """The untruncated σ²_u, printed only when it was negative (and so set to zero)."""
    if vc.sigma2_u_raw >= 0:
        return ()
    return (("sigma2_u before truncation at 0", vc.sigma2_u_raw),)


def swamy_arora(formula: str, data: pd.DataFrame, group: str, cov: CovType = "classical",
                small_sample: bool = True) -> RandomEffectsResult:
    """Random-effects GLS with Swamy–Arora variance components (plm ``random.method="swar"``).

    Parameters
    ----------
    formula : str
    data : DataFrame
    group : str
    cov : {"classical", "robust", "cluster"}
        Classical GLS errors (as plm), White or cluster-robust by group on the quasi-demeaned
        data (factor G/(G − 1)·(n − 1)/(n − p); none without `small_sample`, = plm's
        ``vcovHC(method = "arellano")``).

    Notes
    -----
    .. math::

        y_{it} = \\alpha + x_{it}'\\beta + u_i + \\varepsilon_{it}, \\quad
        \\theta_i = 1 - \\sqrt{\\frac{\\sigma^2_e}{T_i\\sigma^2_u + \\sigma^2_e}}

    See `swamy_arora_components` for σ²_u, σ²_e and `quasi_demeaned_gls` for the GLS step.
    linearmodels' ``RandomEffects`` agrees with plm on balanced panels; on unbalanced panels
    only with ``small_sample=True`` (its default uses the harmonic mean of T_i and the
    unweighted between regression). Its covariance divides by n unless ``debiased=True``.
    """
    check_option("cov", cov, ("classical", "robust", "cluster"))
    panel = prepare_panel(formula, data, group, None, context="the random-effects model")
    vc = swamy_arora_components(panel)
    th = vc.theta
    fields, _, _, _ = gls_fit(panel, panel.design.X, list(panel.design.terms), th, cov,
                               small_sample)
    return RandomEffectsResult(
        estimator="Random effects (Swamy–Arora GLS)", formula=formula,
        rsquared_kind="quasi-demeaned", group=group, time=None,
        facts=_re_facts(vc), sigma2_u=vc.sigma2_u, sigma2_e=vc.sigma2_e,
        sigma2_u_raw=vc.sigma2_u_raw,
        theta_by_group=pd.Series(th, index=pd.Index(panel.groups.levels, name=group),
                                 name="theta"),
        **fields,
    )


# ----------------------------------------------------------------------------------------------
# Within-between (REWB) / Mundlak
# ----------------------------------------------------------------------------------------------


def within_between_design(panel: Panel, variables: Sequence[str] | None
                          ) -> tuple[np.ndarray, list[str], list[str]]:
    """Replace each chosen column x of the design by x − x̄_i (``x_within``) and x̄_i (``x_mean``).

    `variables` are design terms as formulaic names them (a numeric column's name, or e.g.
    ``np.log(x)``); None takes every term that varies within groups. Returns the new matrix,
    its term names and the terms split.
    """
    d, groups = panel.design, panel.groups
    means = groups.expand(groups.mean(d.X).reshape(groups.n_groups, -1))
    within_part = d.X - means
    varying = [t for j, t in enumerate(d.terms)
               if t != "Intercept" and np.linalg.norm(within_part[:, j])
               > ZERO_VARIATION * np.linalg.norm(d.X[:, j])]
    if variables is None:
        chosen = varying
    else:
        chosen = [variables] if isinstance(variables, str) else list(variables)
        unknown = [v for v in chosen if v not in d.terms]
        if unknown:
            raise MlteachError(f"{unknown} are not terms of the model; its terms are "
                             f"{', '.join(d.terms)} (use these names).")
        fixed = [v for v in chosen if v not in varying]
        if fixed:
            raise MlteachError(
                f"{fixed} do not vary within groups of {panel.group_name!r}: they have only a "
                f"between effect. Leave them out of `variables` (they stay in the model as "
                f"they are).")
    if not chosen:
        raise RankDeficientError("No regressor varies within groups: there is no within "
                                 "effect to separate from a between effect.")
    cols, names = [], []
    for j, t in enumerate(d.terms):
        if t in chosen:
            cols += [within_part[:, j], means[:, j]]
            names += [f"{t}_within", f"{t}_mean"]
        else:
            cols.append(d.X[:, j])
            names.append(t)
    return np.column_stack(cols), names, chosen


def rewb(formula: str, data: pd.DataFrame, group: str, variables: Sequence[str] | None = None,
         engine: Literal["swamy_arora"] = "swamy_arora", cov: CovType = "classical",
         small_sample: bool = True) -> REWBResult:
    """Random-effects within-between (REWB) model: within and between effects side by side.

    Parameters
    ----------
    formula : str
        The model as you would write it, ``"y ~ x1 + x2 + z"``.
    variables : list of str, optional
        Terms to split into ``x_within`` = x − x̄_i and ``x_mean`` = x̄_i. Default: every
        term that varies within groups. Group-level terms stay as they are.
    engine : {"swamy_arora"}
        How the random intercept is estimated: Swamy–Arora GLS (as plm).
    cov : {"classical", "robust", "cluster"}

    Notes
    -----
    .. math::

        y_{it} = \\alpha + \\beta_W (x_{it} - \\bar x_i) + \\beta_B \\bar x_i + u_i
                 + \\varepsilon_{it}

    β_W equals the fixed-effects slope exactly, whatever θ (Mundlak 1978): x − x̄_i is
    unchanged by quasi-demeaning and orthogonal to everything constant within groups. The
    contextual effect β_B − β_W is Mundlak's coefficient on x̄_i in ``y ~ x + x̄``.

    The variance components (θ) are those of the model without the group means. Adding x̄_i
    changes neither the within regression (x̄_i does not vary within groups) nor the between
    regression (x̄_i is already its regressor), so these are also the model's own Swamy–Arora
    components; plm cannot compute them for unbalanced panels because the added columns
    are collinear in its between step. The same numbers come from `swamy_arora` on
    ``mlteach.mundlak(data, variables, group)`` with ``y ~ x_within + x_mean`` when no row
    has a missing value (this function takes group means over the rows actually used).
    """
    check_option("cov", cov, ("classical", "robust", "cluster"))
    check_option("engine", engine, ("swamy_arora",))
    panel = prepare_panel(formula, data, group, None, context="the REWB model")
    vc = swamy_arora_components(panel)
    X, names, chosen = within_between_design(panel, variables)
    th = vc.theta
    fields, _, kept, _ = gls_fit(panel, X, names, th, cov, small_sample)
    d, groups = panel.design, panel.groups
    split = [d.terms.index(v) for v in chosen]
    fields["prediction_basis"] = replace(
        fields["prediction_basis"], split_terms=tuple(chosen),
        split_means=groups.mean(d.X[:, split]).reshape(groups.n_groups, len(split)))
    params, V, df = fields["params"], fields["vcov"], fields["df_inference"]
    w_names = [f"{v}_within" for v in chosen]
    b_names = [f"{v}_mean" for v in chosen]
    idx = pd.Index(chosen, name="variable")
    bw = pd.Series(params[w_names].to_numpy(), index=idx)
    bb = pd.Series(params[b_names].to_numpy(), index=idx)
    se_w = pd.Series(np.sqrt(np.diag(V.loc[w_names, w_names])), index=idx)
    se_b = pd.Series(np.sqrt(np.diag(V.loc[b_names, b_names])), index=idx)
    var_c = (np.diag(V.loc[b_names, b_names]) + np.diag(V.loc[w_names, w_names])
             - 2 * np.diag(V.loc[b_names, w_names].to_numpy()))
    se_c = pd.Series(np.sqrt(var_c), index=idx)
    return REWBResult(
        estimator="Within-between random effects (REWB, Swamy–Arora GLS)",
        formula=formula, rsquared_kind="quasi-demeaned", group=group, time=None,
        facts=_re_facts(vc), sigma2_u=vc.sigma2_u, sigma2_e=vc.sigma2_e,
        sigma2_u_raw=vc.sigma2_u_raw,
        theta_by_group=pd.Series(th, index=pd.Index(panel.groups.levels, name=group),
                                 name="theta"),
        within_effects=coef_table(bw, se_w, df), between_effects=coef_table(bb, se_b, df),
        contextual_effects=coef_table(bb - bw, se_c, df),
        **fields,
    )
