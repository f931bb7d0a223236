"""Fixed effects, first differences and the between regression (book chapter on fixed effects).

Each estimator removes part of the variation in the data and runs least squares on the rest:

* `within`: subtract group means (and, two-way, time means) — only within-group variation is left;
* `lsdv`: the same model with one dummy variable per group, so the group intercepts are visible;
* `first_difference`: subtract each row's previous period in the same group;
* `between`: keep only the group means — only between-group variation is left.

Numbers follow R's plm (``model = "within" | "fd" | "between"``); the docstrings say where
plm, linearmodels and Stata use different conventions.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

from mlteach.design import GroupIndex, assert_full_rank, check_grouping
from mlteach.errors import MissingDataWarning, MlteachError, RankDeficientError, user_stacklevel
from mlteach.ols import least_squares
from mlteach.panel.core import (
    CovType, Panel, assert_enough_rows, rsquared, check_option,
    covariance, drop_without_variation, prepare_panel, result_fields,
)
from mlteach.panel.results import (
    BetweenResult, FirstDifferenceResult, FixedEffectsResult, LSDVResult, PredictionBasis,
)

Effects = Literal["group", "twoways"]


# ----------------------------------------------------------------------------------------------
# The within transformation
# ----------------------------------------------------------------------------------------------


def twoway_demean(M: np.ndarray, groups: GroupIndex, time: np.ndarray, n_periods: int
                  ) -> tuple[np.ndarray, int]:
    """Remove group and time effects from the columns of `M` exactly; also their number.

    Returns the residuals of each column on group and time dummies, and the number of time
    effects estimated beyond the group effects (T − 1 in a connected panel). By
    Frisch–Waugh–Lovell the residuals are r − D̃δ, with r the group-demeaned column, D̃ the
    group-demeaned time dummies and δ = (D̃'D̃)⁺ D̃'r. Both D̃'D̃ = diag(n_t) − N'diag(1/n_g)N
    (N the group × time count matrix) and D̃'r = D'r (time sums of r) need only sums, so no
    n × T dummy matrix is built. In a balanced panel this equals x − x̄_g − x̄_t + x̄.
    """
    M = np.asarray(M, dtype=float)
    one_d = M.ndim == 1
    M = M[:, None] if one_d else M
    r = groups.demean(M)
    A_pinv, rank = _time_dummy_gram_pinv(groups, time, n_periods)
    S = np.column_stack([np.bincount(time, weights=r[:, j], minlength=n_periods)
                         for j in range(r.shape[1])])
    delta_rows = (A_pinv @ S)[time]
    out = r - delta_rows + groups.expand(groups.mean(delta_rows))
    return (out[:, 0] if one_d else out), rank


def _time_dummy_gram_pinv(groups: GroupIndex, time: np.ndarray, n_periods: int
                          ) -> tuple[np.ndarray, int]:
    """(D̃'D̃)⁺ for the group-demeaned time dummies D̃, and its rank (see `twoway_demean`)."""
    counts = sparse.csr_matrix((np.ones(len(time)), (groups.codes, time)),
                               shape=(groups.n_groups, n_periods))
    inv_sizes = sparse.diags(1.0 / groups.sizes)
    A = np.diag(np.asarray(counts.sum(axis=0)).ravel()) - (counts.T @ inv_sizes @ counts).toarray()
    lam, U = np.linalg.eigh((A + A.T) / 2)
    keep = lam > 1e-10 * lam.max()
    return (U[:, keep] / lam[keep]) @ U[:, keep].T, int(keep.sum())


def twoway_effects(f: np.ndarray, groups: GroupIndex, time: np.ndarray, n_periods: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Split f_it = α_i + γ_t into group effects α_i and time effects γ_t with γ_first = 0.

    `f` must lie in the span of the group and time dummies (e.g. y − Xβ̂ − e of a two-way
    within fit). By Frisch–Waugh–Lovell γ solves (D̃'D̃)γ = D̃'f̃ with f̃ the group-demeaned f,
    and then α_i is the group mean of f − γ_t. Periods no row of `time` uses get γ = 0. In a
    panel whose groups and periods fall apart into unconnected blocks only the sums α_i + γ_t
    of observed pairs are determined; each block's split then follows the pseudo-inverse.
    """
    A_pinv, _ = _time_dummy_gram_pinv(groups, time, n_periods)
    S = np.bincount(time, weights=groups.demean(f), minlength=n_periods)
    gamma = A_pinv @ S
    gamma = gamma - gamma[0]
    alpha = groups.mean(f - gamma[time])
    return alpha, gamma


def _absorb(panel: Panel, effects: Effects, M: np.ndarray) -> tuple[np.ndarray, int]:
    """Within-transform `M`; return it and the number of time effects absorbed (0 one-way)."""
    if effects == "group":
        return panel.groups.demean(M), 0
    return twoway_demean(M, panel.groups, panel.time, panel.n_periods)


def _dropped_reason(panel: Panel, effects: Effects) -> str:
    g = panel.group_name
    if effects == "group":
        what = (f"it does not vary within any {g} (it is time-invariant), so the {g} effects "
                f"absorb it")
    else:
        what = (f"it has no variation left once the {g} and {panel.time_name} effects are "
                f"removed (it is constant within each {g}, or changes only with "
                f"{panel.time_name})")
    return (f"the fixed-effects model: {what} and its coefficient cannot be estimated "
            f"(perfect collinearity with the dummy variables). To estimate the effect of a "
            f"{g}-level variable use between(), swamy_arora() or rewb().")


def _within_parts(panel: Panel, effects: Effects):
    d = panel.design
    check_grouping(panel.groups, d.nobs, role="group variable")
    Z, n_time_effects = _absorb(panel, effects, np.column_stack([d.y, d.X]))
    keep, dropped = drop_without_variation(d.X, Z[:, 1:], d.terms, _dropped_reason(panel, effects))
    if keep.size == 0:
        raise RankDeficientError(
            f"No regressor in {d.spec.formula!s} varies within groups of {panel.group_name!r}: "
            f"there is nothing for a fixed-effects model to estimate. Use between() or "
            f"swamy_arora() for group-level variables."
        )
    terms = [d.terms[j] for j in keep]
    _check_within_df(panel, effects, n_time_effects, terms)
    Xw = Z[:, 1:][:, keep]
    assert_full_rank(Xw, terms)
    return Z[:, 0], Xw, terms, keep, tuple(dropped), n_time_effects


def _check_within_df(panel: Panel, effects: Effects, n_time: int, terms: list[str]) -> None:
    """`RankDeficientError` naming rows, groups, periods and coefficients when n − G − (T − 1)
    − k ≤ 0: the fixed-effects model would fit every row exactly and has no error variance."""
    n, G, k = panel.nobs, panel.groups.n_groups, len(terms)
    left = n - G - n_time - k
    if left > 0:
        return
    g, t = panel.group_name, panel.time_name
    used = f"{G} {g} means"
    if effects == "twoways":
        used += f" and {n_time} {t} effects (from {panel.n_periods} periods)"
    raise RankDeficientError(
        f"The fixed-effects model has no residual degrees of freedom: {n} rows in {G} groups "
        f"of {g!r}" + (f" over {panel.n_periods} periods of {t!r}" if t is not None else "")
        + f" and {k} coefficient(s) ({', '.join(terms)}) leave n − G"
        + (" − (T − 1)" if effects == "twoways" else "") + " − k = "
        f"{n} − {G}" + (f" − {n_time}" if effects == "twoways" else "") + f" − {k} = {left}. "
        f"The {used} use up {G + n_time} of the rows, so the model would fit every row "
        f"exactly and leave nothing to estimate the error variance. Use fewer regressors, "
        f"more rows per group (periods), or a random-effects model (swamy_arora()).")


def _singleton_note(panel: Panel) -> tuple[int, tuple[str, ...]]:
    singles = int((panel.groups.sizes == 1).sum())
    if not singles:
        return 0, ()
    return singles, (
        f"{singles} group(s) have a single row (singletons): removing their mean leaves "
        f"nothing, so they add nothing to the slopes. They stay in the row count and in the "
        f"absorbed means, which leaves the degrees of freedom unchanged (as plm and "
        f"xtreg, fe; reghdfe drops them).",)


def within(formula: str, data: pd.DataFrame, group: str, time: str | None = None,
           cov: CovType = "classical", effects: Effects = "group",
           small_sample: bool = True) -> FixedEffectsResult:
    """Fixed-effects (within) estimator: least squares on deviations from group means.

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + x2"``. The intercept and any regressor that does not vary within groups
        are absorbed by the group effects; the latter are dropped with a `DroppedTermWarning`.
    data : DataFrame
    group : str
        Column identifying the groups (firms, countries, pupils).
    time : str, optional
        Column identifying the period; needed for ``effects="twoways"``. When given, each
        (group, time) pair must occur once.
    cov : {"classical", "robust", "cluster"}
        Classical errors; heteroskedasticity-robust (HC1, see Notes); or cluster-robust by
        group (Stata's ``xtreg, fe vce(cluster group)``).
    effects : {"group", "twoways"}
        Group effects only, or group and time effects.
    small_sample : bool
        Apply the small-sample factor to robust and cluster-robust errors (default). False
        gives the plain sandwich (HC0), as plm's ``vcovHC`` default, with normal inference.

    Returns
    -------
    FixedEffectsResult
        R² is the within R², 1 − e'e/ỹ'ỹ; `predict` adds the estimated α̂_i (+ γ̂_t).

    Notes
    -----
    The model and its estimator (book: fixed effects):

    .. math::

        y_{it} = \\alpha_i + x_{it}'\\beta + \\varepsilon_{it}, \\qquad
        \\hat\\beta = (\\tilde X'\\tilde X)^{-1}\\tilde X'\\tilde y, \\quad
        \\tilde x_{it} = x_{it} - \\bar x_i

    (two-way: :math:`+\\gamma_t`, and :math:`\\tilde x` is the residual on both sets of
    dummies, see `twoway_demean`). Classical variance :math:`\\hat\\sigma^2(\\tilde X'\\tilde
    X)^{-1}` with :math:`\\hat\\sigma^2 = e'e/(n - G - k)`: the G absorbed means count as
    estimated parameters (two-way: also the T − 1 time effects), as in plm, Stata and
    linearmodels.

    Cluster-robust errors are the Arellano sandwich :math:`(\\tilde X'\\tilde X)^{-1}
    \\sum_g \\tilde X_g'e_g e_g'\\tilde X_g(\\tilde X'\\tilde X)^{-1}` times
    :math:`c = \\frac{G}{G-1}\\frac{n-1}{n-K}` with K = k + 1: the slopes plus the constant
    that ``xtreg, fe`` reports (Stata's robust variance counts the parameters in e(V), which
    hold ``_cons`` but not the absorbed group means; two-way, the T − 1 time dummies of
    ``xtreg y x i.t, fe`` are also counted). The absorbed effects are not counted because they
    are nested in the clusters (Cameron & Miller 2015, §III.B); ``areg`` and ``regress`` with
    dummies count them and give larger errors. plm's ``vcovHC(type = "sss")`` uses the same
    formula with K = k (plm's within model has no constant), so its variance is ours times
    (n − k − 1)/(n − k); ``small_sample=False`` gives plm's default HC0 exactly. Inference uses
    t(G − 1) as Stata does.

    ``cov="robust"`` is White's sandwich on the demeaned data times n/(n − G − k). It is
    inconsistent when T is fixed and G grows (Stock & Watson 2008); prefer ``"cluster"``,
    which is also what Stata's ``xtreg, fe vce(robust)`` computes.

    Groups with one row (singletons) contribute nothing to β̂ and are reported in the notes.

    linearmodels' ``PanelOLS(entity_effects=True)`` gives the same numbers with
    ``fit(debiased=True)`` (its default divides e'e by n − G, not n − G − k); its clustered
    covariance with ``debiased=True, group_debias=True`` is plm's "sss" (K = k).
    """
    check_option("cov", cov, ("classical", "robust", "cluster"))
    check_option("effects", effects, ("group", "twoways"))
    if effects == "twoways" and time is None:
        raise MlteachError("effects='twoways' removes time effects too: name the time column, "
                         "e.g. within(..., group='firm', time='year', effects='twoways').")
    panel = prepare_panel(formula, data, group, time, context="the fixed-effects model")
    yw, Xw, terms, keep, dropped, n_time = _within_parts(panel, effects)
    n, G, k = panel.nobs, panel.groups.n_groups, len(terms)
    df_resid = n - G - n_time - k
    assert_enough_rows(n - G - n_time, k, "The within regression")
    ls = least_squares(Xw, yw)
    cv = covariance(ls, Xw, cov, df_resid, panel.groups, small_sample, k_cluster=k + 1 + n_time)
    singles, notes = _singleton_note(panel)
    name = "Fixed effects (within" + (", two-way)" if effects == "twoways" else ")")
    absorbed = f"{G} {group} means" + (f" + {n_time} {time} effects" if n_time else "")
    basis = _fixed_effects_basis(panel, effects, panel.design.X[:, keep] @ ls.beta, ls.resid)
    return FixedEffectsResult(
        estimator=name, formula=formula, nobs=n, n_rows=n, ngroups=G,
        rsquared=rsquared(yw, ls.resid), rsquared_kind="within",
        group=group, time=time, resid=pd.Series(ls.resid, index=panel.design.index,
                                                 name="resid"),
        dropped=dropped, notes=notes,
        facts=(("Absorbed effects", absorbed), ("Singleton groups", singles)),
        prediction_basis=basis, **result_fields(ls, cv, terms, df_resid),
    )


def _fixed_effects_basis(panel: Panel, effects: Effects, xb: np.ndarray, resid: np.ndarray
                         ) -> PredictionBasis:
    """The estimated α̂_i (and γ̂_t) for prediction: f = y − x'β̂ − e is exactly α_i (+ γ_t)."""
    f = panel.design.y - xb - resid
    levels = pd.Index(panel.groups.levels)
    if effects == "group":
        return PredictionBasis(design=panel.design, group_levels=levels,
                               group_effect=panel.groups.mean(f))
    alpha, gamma = twoway_effects(f, panel.groups, panel.time, panel.n_periods)
    return PredictionBasis(design=panel.design, group_levels=levels, group_effect=alpha,
                           time_levels=panel.time_levels, time_effect=gamma)


# ----------------------------------------------------------------------------------------------
# Least squares with dummy variables
# ----------------------------------------------------------------------------------------------

_LSDV_MAX_CELLS = 30_000_000


def lsdv(formula: str, data: pd.DataFrame, group: str, time: str | None = None,
         cov: CovType = "classical", effects: Effects = "group",
         small_sample: bool = True) -> LSDVResult:
    """Least squares with one dummy variable per group (LSDV): the fixed-effects model written out.

    Parameters are those of `within`. Returns slopes, standard errors and degrees of freedom
    identical to `within` (Frisch–Waugh–Lovell) and, in addition, the group intercepts
    ``group_effects`` α̂_i = ȳ_i − x̄_i'β̂ with their standard errors.

    Notes
    -----
    .. math::

        y = D\\alpha + X\\beta + \\varepsilon, \\qquad D_{ig} = 1\\{\\text{row } i \\in g\\}

    solved as one least-squares problem in (α, β), with all G dummies and no constant (two-way:
    plus dummies for every period but the first). The cluster-robust factor counts K = k + 1
    (+ T − 1), as `within`: the dummies are nested in the clusters. (``regress y x i.g,
    vce(cluster g)`` in Stata would count them and give errors larger by
    √((n − k − 1)/(n − G − k)).) The n × G dummy matrix is built in memory: for many groups
    use `within`.
    """
    check_option("cov", cov, ("classical", "robust", "cluster"))
    check_option("effects", effects, ("group", "twoways"))
    if effects == "twoways" and time is None:
        raise MlteachError("effects='twoways' adds time dummies too: name the time column.")
    panel = prepare_panel(formula, data, group, time, context="the dummy-variable model")
    _, _, terms, keep, dropped, n_time_effects = _within_parts(panel, effects)
    n, G = panel.nobs, panel.groups.n_groups
    n_time = panel.n_periods - 1 if effects == "twoways" else 0
    if n * (G + n_time) > _LSDV_MAX_CELLS:
        raise MlteachError(
            f"lsdv() would build a {n} × {G + n_time} matrix of dummy variables: too large. "
            f"within() gives the same slopes and standard errors without it."
        )
    D = np.zeros((n, G))
    D[np.arange(n), panel.groups.codes] = 1.0
    blocks, names = [D], [f"{group}[{lev}]" for lev in panel.groups.levels]
    if n_time:
        Tm = np.zeros((n, panel.n_periods))
        Tm[np.arange(n), panel.time] = 1.0
        blocks.append(Tm[:, 1:])
        names += [f"{time}[T.{lev}]" for lev in panel.time_levels[1:]]
    X = np.column_stack(blocks + [panel.design.X[:, keep]])
    all_names = names + terms
    assert_full_rank(X, all_names)
    df_resid = n - X.shape[1]
    assert_enough_rows(n, X.shape[1], "The dummy-variable regression")
    ls = least_squares(X, panel.design.y)
    k = len(terms)
    cv = covariance(ls, X, cov, df_resid, panel.groups, small_sample,
                    k_cluster=k + 1 + n_time_effects)
    fields = result_fields(ls, cv, all_names, df_resid)
    params, bse, vcov = fields.pop("params"), fields.pop("bse"), fields.pop("vcov")

    def block(sel: list[str], index: pd.Index) -> pd.DataFrame:
        return pd.DataFrame({"estimate": params[sel].to_numpy(), "std.err": bse[sel].to_numpy()},
                            index=index)

    group_effects = block(names[:G], pd.Index(panel.groups.levels, name=group))
    time_effects = (block(names[G:], pd.Index(panel.time_levels[1:], name=time))
                    if n_time else None)
    singles, notes = _singleton_note(panel)
    y = panel.design.y
    yw, _ = _absorb(panel, effects, y)
    basis = PredictionBasis(
        design=panel.design, group_levels=pd.Index(panel.groups.levels),
        row_groups=panel.groups.codes,
        group_effect=group_effects["estimate"].to_numpy(),
        time_levels=panel.time_levels if n_time else None,
        time_effect=(np.concatenate([[0.0], time_effects["estimate"].to_numpy()])
                     if n_time else None))
    return LSDVResult(
        estimator="Least squares with dummy variables (LSDV)", formula=formula,
        nobs=n, n_rows=n, ngroups=G,
        params=params[terms], bse=bse[terms], vcov=vcov.loc[terms, terms],
        rsquared=rsquared(yw, ls.resid), rsquared_kind="within",
        group=group, time=time,
        resid=pd.Series(ls.resid, index=panel.design.index, name="resid"),
        dropped=dropped, notes=notes, facts=(("Dummy variables", len(names)),),
        group_effects=group_effects, time_effects=time_effects, prediction_basis=basis,
        **fields,
    )


# ----------------------------------------------------------------------------------------------
# First differences
# ----------------------------------------------------------------------------------------------


def first_difference(formula: str, data: pd.DataFrame, group: str, time: str,
                     cov: CovType = "classical", small_sample: bool = True) -> FirstDifferenceResult:
    """First-difference estimator: least squares on y_it − y_i,t−1 and x_it − x_i,t−1.

    Parameters
    ----------
    formula : str
        ``"y ~ x"``. With an intercept (the default) the differenced model keeps a constant,
        which estimates the average change per period (a linear trend in levels), as plm does;
        write ``"y ~ 0 + x"`` for none (as linearmodels, which refuses a constant).
    data : DataFrame, in any row order (rows are sorted by group and time here).
    group, time : str
        Columns of the groups and the periods; each (group, time) pair must occur once.
    cov : {"classical", "robust", "cluster"}
        Cluster-robust errors cluster the differences by group with the factor
        G/(G − 1)·(n − 1)/(n − p) over the n differences and p coefficients (as Stata's
        ``regress D.y D.x, vce(cluster g)`` and plm's ``vcovHC(type = "sss")``).
    small_sample : bool
        As in `within`.

    Notes
    -----
    .. math::

        \\Delta y_{it} = \\Delta x_{it}'\\beta + \\Delta\\varepsilon_{it}, \\qquad
        \\Delta z_{it} = z_{it} - z_{i,t-1}

    Periods are the distinct values of `time` in the data, in order (numeric, date or category
    order). A difference is formed only between a row and the same group's previous period;
    where a group skips a period (a gap) that difference is not formed and a
    `MissingDataWarning` says how many were lost. This is linearmodels' rule and plm's
    ``diff()``; plm's ``model = "fd"`` instead differences consecutive rows across the gap.
    With two periods and an intercept-free formula the estimator equals `within`.
    """
    check_option("cov", cov, ("classical", "robust", "cluster"))
    if time is None:
        raise MlteachError("first_difference() needs the time column to order the rows.")
    panel = prepare_panel(formula, data, group, time, context="the first-difference model")
    d, codes, tpos = panel.design, panel.groups.codes, panel.time
    order = np.lexsort((tpos, codes))
    same = codes[order][1:] == codes[order][:-1]
    step = tpos[order][1:] - tpos[order][:-1]
    ok = same & (step == 1)
    gaps = same & (step > 1)
    now, before = order[1:][ok], order[:-1][ok]
    notes: list[str] = []
    if gaps.any():
        g_gap = np.unique(codes[order][1:][gaps])
        msg = (f"{int(gaps.sum())} difference(s) in {len(g_gap)} group(s) would span a gap "
               f"in {time} (a skipped period, e.g. {group} = {panel.groups.levels[g_gap[0]]!r})"
               f" and were not formed; each gap costs one difference.")
        warnings.warn(msg + " To difference across gaps as plm's model='fd' does, renumber "
                      "the periods within each group first.", MissingDataWarning, stacklevel=user_stacklevel())
        notes.append(msg)
    if now.size == 0:
        raise RankDeficientError(
            f"No group of {group!r} has two consecutive periods of {time!r}: there are no "
            f"first differences to fit."
        )
    dy = d.y[now] - d.y[before]
    dX = d.X[now] - d.X[before]
    is_int = np.array([t == "Intercept" for t in d.terms])
    dX[:, is_int] = 1.0
    keep, dropped = drop_without_variation(
        np.where(is_int, 1.0, d.X[now]), dX, d.terms,
        f"the first-difference model: it does not change over time within any {group}, so "
        f"its differences are all zero and its coefficient cannot be estimated. Use "
        f"between(), swamy_arora() or rewb() for {group}-level variables.", silent=())
    terms = [d.terms[j] for j in keep]
    X = dX[:, keep]
    n, p = X.shape
    if n <= p:
        raise RankDeficientError(
            f"The first-difference model has no residual degrees of freedom: {d.nobs} rows in "
            f"{panel.groups.n_groups} groups of {group!r} over {panel.n_periods} periods of "
            f"{time!r} give {n} differences (one per pair of consecutive periods) for {p} "
            f"coefficient(s) ({', '.join(terms)}). The differences would be fitted exactly, "
            f"leaving nothing to estimate the error variance. Use fewer regressors or more "
            f"periods per group.")
    assert_full_rank(X, terms)
    uniq, inv = np.unique(codes[now], return_inverse=True)
    diff_groups = GroupIndex(name=group, codes=inv.astype(np.intp), levels=pd.Index(panel.groups.levels)[uniq])
    ls = least_squares(X, dy)
    cv = covariance(ls, X, cov, n - p, diff_groups, small_sample)
    if len(uniq) < panel.groups.n_groups:
        notes.append(f"{panel.groups.n_groups - len(uniq)} group(s) have no consecutive "
                     f"periods and contribute no difference.")
    return FirstDifferenceResult(
        estimator="First differences", formula=formula, nobs=n, n_rows=d.nobs,
        ngroups=panel.groups.n_groups,
        rsquared=rsquared(dy, ls.resid),
        rsquared_kind="differences", group=group, time=time,
        resid=pd.Series(ls.resid, index=d.index[now], name="resid"),
        dropped=tuple(dropped), notes=tuple(notes),
        facts=(("Differences", n), ("Gaps skipped", int(gaps.sum()))),
        prediction_basis=PredictionBasis(
            design=d, group_levels=pd.Index(panel.groups.levels),
            row_groups=panel.groups.codes,
            fitted=pd.Series(dy - ls.resid, index=d.index[now], name="predicted")),
        **result_fields(ls, cv, terms, n - p),
    )


# ----------------------------------------------------------------------------------------------
# Between
# ----------------------------------------------------------------------------------------------


def between(formula: str, data: pd.DataFrame, group: str,
            cov: Literal["classical", "robust"] = "classical",
            small_sample: bool = True) -> BetweenResult:
    """Between estimator: least squares on the group means, one row per group.

    Parameters
    ----------
    formula : str
    data : DataFrame
    group : str
    cov : {"classical", "robust"}
        Classical, or heteroskedasticity-robust (HC1 over the G rows; HC0 without
        `small_sample`).

    Notes
    -----
    .. math::

        \\bar y_i = \\alpha + \\bar x_i'\\beta + \\bar u_i, \\qquad i = 1, \\dots, G

    Every group counts once whatever its size (unweighted), as plm's ``model = "between"``
    and linearmodels' ``BetweenOLS`` without weights. The residual degrees of freedom are
    G − p, so there must be more groups than coefficients. Regressors that vary only within
    groups still enter through their group means.
    """
    check_option("cov", cov, ("classical", "robust"))
    panel = prepare_panel(formula, data, group, None, context="the between model")
    d, groups = panel.design, panel.groups
    G, p = groups.n_groups, d.X.shape[1]
    if G <= p:
        raise RankDeficientError(
            f"The between regression has one row per group: {G} groups of {group!r} cannot "
            f"estimate {p} coefficients ({', '.join(d.terms)}) and leave degrees of freedom "
            f"for the error. Use fewer regressors or data with more groups."
        )
    Xb, yb = groups.mean(d.X).reshape(G, p), groups.mean(d.y)
    assert_full_rank(Xb, d.terms)
    ls = least_squares(Xb, yb)
    cv = covariance(ls, Xb, cov, G - p, None, small_sample)
    return BetweenResult(
        estimator="Between (group means)", formula=formula, nobs=G,
        n_rows=d.nobs, ngroups=G,
        rsquared=rsquared(yb, ls.resid),
        rsquared_kind="between", group=group, time=None,
        resid=pd.Series(ls.resid, index=pd.Index(groups.levels, name=group), name="resid"),
        prediction_basis=PredictionBasis(design=d, group_levels=pd.Index(groups.levels),
                                         row_groups=groups.codes),
        **result_fields(ls, cv, d.terms, G - p),
    )
