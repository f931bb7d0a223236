"""No pooling, complete pooling and partial pooling (book chapter on shrinkage).

Three ways to estimate a group's coefficient β_j:

* **no pooling**: a separate least-squares regression in each group, as if the groups had
  nothing in common (the course notes' "run one model per group" intuition);
* **complete pooling**: one regression on all rows, ignoring the groups, so every β_j = β̂;
* **partial pooling**: the mixed model's β̂ + b̂_j, fixed effect plus predicted random effect
  (BLUP), which pulls each group's own estimate towards the overall one.

For a model whose only random effect is an intercept by one factor, the pull is exact and known:

    b̂_j = λ_j · (ȳ*_j − β̂₀),     λ_j = τ² / (τ² + σ²/n_j),

where ȳ*_j is group j's mean of y − x'β̂ + β̂₀ (its no-pooling intercept with the slopes held at
β̂). λ_j, the *shrinkage factor* (also called the reliability of the group mean), is the share
of the group's own deviation that the BLUP keeps: near 1 for large groups or large τ², near 0
for small, noisy groups, which are pulled almost all the way to β̂₀.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd

from mlteach.design import (
    GroupIndex,
    check_columns,
    check_grouping,
    encode_formula,
    fixed_design,
    formula_variables,
    parse_formula,
)
from mlteach.errors import (DataTypeError, GroupingError, ModelComparisonError,
                            SmallGroupWarning, user_stacklevel)
from mlteach.ols import ols

# --------------------------------------------------------------------------------------------
# One regression per group
# --------------------------------------------------------------------------------------------


def _why_not_estimable(X: np.ndarray, terms: Sequence[str]) -> str | None:
    """Why least squares cannot estimate every coefficient in this group (None when it can)."""
    n, p = X.shape
    if n < p:
        return f"{n} row{'s' if n != 1 else ''} for {p} coefficients"
    if np.linalg.matrix_rank(X) == p:
        return None
    constant = [t for j, t in enumerate(terms)
                if t != "Intercept" and np.ptp(X[:, j]) == 0]
    if constant:
        return "no variation in " + ", ".join(map(repr, constant))
    return "collinear columns"


def _without_negative_zero(values: np.ndarray) -> np.ndarray:
    """`values` with −0.0 replaced by 0.0 (IEEE: −0.0 + 0.0 = +0.0; other values unchanged).

    Least squares on an all-zero outcome (a district where no woman uses contraception) returns
    −0.0 from rounding inside the solver, which pandas prints as ``-0.0``: a reader takes it for
    a tiny negative estimate.
    """
    return np.asarray(values, dtype=float) + 0.0


def ols_by_group(X: np.ndarray, y: np.ndarray, groups: GroupIndex, terms: Sequence[str]
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Per-group least squares β̂_j = (X_j'X_j)⁻¹X_j'y_j and classical SEs.

    Returns coefficients (G, p), standard errors (G, p) and a dict group label -> reason for
    the groups that cannot be estimated (their rows are NaN). A group with exactly p rows
    fits perfectly: coefficients exist but the SEs (n_j − p = 0 residual df) are NaN.
    """
    G, p = groups.n_groups, X.shape[1]
    coef = np.full((G, p), np.nan)
    se = np.full((G, p), np.nan)
    problems: dict[str, str] = {}
    order = np.argsort(groups.codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(groups.sizes)])
    for j in range(G):
        rows = order[bounds[j]:bounds[j + 1]]
        Xj, yj = X[rows], y[rows]
        why = _why_not_estimable(Xj, terms)
        if why is not None:
            problems[str(groups.levels[j])] = why
            continue
        beta, *_ = np.linalg.lstsq(Xj, yj, rcond=None)
        coef[j] = beta
        dof = len(rows) - p
        if dof > 0:
            resid = yj - Xj @ beta
            s2 = float(resid @ resid) / dof
            se[j] = np.sqrt(s2 * np.diag(np.linalg.inv(Xj.T @ Xj)))
    return _without_negative_zero(coef), _without_negative_zero(se), problems


def _warn_small_groups(problems: dict[str, str], group: str, n_groups: int) -> None:
    if not problems:
        return
    items = list(problems.items())
    shown = "; ".join(f"{g!r} ({why})" for g, why in items[:8])
    more = f"; and {len(items) - 8} more" if len(items) > 8 else ""
    warnings.warn(
        f"No separate regression for {len(items)} of {n_groups} groups of {group!r}; their "
        f"estimates are NaN: {shown}{more}. A group needs at least as many rows as "
        f"coefficients and variation in every predictor. Variables constant within a group "
        f"(group-level variables) cannot be estimated within one group at all: leave them out "
        f"of the per-group formula.",
        SmallGroupWarning, stacklevel=user_stacklevel())


def no_pooling(formula: str, data: pd.DataFrame, group: str) -> pd.DataFrame:
    """No-pooling estimates: one ordinary least-squares fit of `formula` per group.

    Parameters
    ----------
    formula : str
        The per-group model, e.g. ``"Reaction ~ Days"``; no random-effect terms.
    data : DataFrame
    group : str
        The grouping column; one regression is fitted to the rows of each of its levels.

    Returns
    -------
    DataFrame
        Indexed by group label (str, in level order), with one column per coefficient
        (formulaic's names, e.g. ``Intercept``, ``Days``), their classical standard errors
        ``se(Intercept)``, ``se(Days)``, and ``n``, the rows of each group.

    Notes
    -----
    Within group j, β̂_j = (X_j'X_j)⁻¹X_j'y_j and SE = √diag(s_j² (X_j'X_j)⁻¹) with
    s_j² = e_j'e_j/(n_j − p). The design is encoded once on all rows, so a categorical
    predictor has the same columns in every group. Groups with fewer rows than coefficients or
    no variation in a predictor get NaN and a `SmallGroupWarning` naming them; a group with
    exactly as many rows as coefficients gets coefficients but NaN standard errors.
    """
    design = fixed_design(formula, data, extra=[group], context="the per-group regressions")
    groups = GroupIndex.from_data(design.data, group)
    check_grouping(groups, design.nobs)
    coef, se, problems = ols_by_group(design.X, design.y, groups, design.terms)
    _warn_small_groups(problems, group, groups.n_groups)
    index = pd.Index(groups.levels, name=group, dtype=object)
    out = pd.DataFrame(coef, index=index, columns=design.terms)
    for k, t in enumerate(design.terms):
        out[f"se({t})"] = se[:, k]
    out["n"] = groups.sizes
    return out


# --------------------------------------------------------------------------------------------
# No, partial and complete pooling side by side
# --------------------------------------------------------------------------------------------


def shrinkage_factor(tau2: float, sigma2: float, n: np.ndarray | float) -> np.ndarray:
    """Shrinkage factor λ_j = τ²/(τ² + σ²/n_j) of a random-intercept model (reliability)."""
    n = np.asarray(n, dtype=float)
    if tau2 == 0:
        return np.zeros_like(n)
    return tau2 / (tau2 + sigma2 / n)


def _pick(per_factor: Any, factor: str) -> pd.DataFrame:
    """The block of a per-factor attribute (`ranef`, `cov_re`) that belongs to `factor`."""
    if isinstance(per_factor, pd.DataFrame):
        return per_factor
    keys = [k for k in per_factor if k == factor or str(k).rsplit(".", 1)[0] == factor]
    if not keys:
        raise GroupingError(f"The fit has no random effects by {factor!r}; it has "
                            f"{', '.join(map(repr, per_factor))}.")
    return pd.concat([per_factor[k] for k in keys], axis=1)


def shrinkage_table(fit: Any, data: pd.DataFrame | None = None, group: str | None = None
                    ) -> pd.DataFrame:
    """No-pooling, partial-pooling and complete-pooling estimates and shrinkage factor by group.

    Parameters
    ----------
    fit : a fitted `mlteach.lmm` model.
    data : DataFrame
        The data the model was fitted to (needed for the per-group regressions). By default
        the rows the fit used (``fit.design.data``).
    group : str, optional
        The grouping factor to tabulate, needed only when the model has several.

    Returns
    -------
    DataFrame
        Indexed by (term, group) for every random-effect term of that factor, so that
        ``table.loc["Intercept"]`` is indexed by group. Columns:

        ``n`` rows in the group; ``no_pooling`` the group's own least-squares estimate;
        ``partial_pooling`` β̂ + b̂_j (fixed effect plus BLUP); ``fixed_effect`` β̂, the value
        partial pooling shrinks towards; ``complete_pooling`` the OLS estimate ignoring groups;
        ``shrinkage`` the empirical factor (partial − β̂)/(no pooling − β̂); and
        ``shrinkage_theory`` τ²/(τ² + σ²/n_j) for a model whose only random effect is an
        intercept by one factor (NaN otherwise).

    Notes
    -----
    The no-pooling estimates regress y − X_F β̂_F on the random-effect columns within each
    group, where X_F are the fixed-effect columns without a random counterpart held at the
    mixed model's estimates (for ``y ~ x + (x | g)`` this is simply y on x per group; for
    ``y ~ x + (1 | g)`` it is the group mean of y − x β̂_x). With that choice, for a random-
    intercept model, b̂_j = λ_j (no pooling − β̂₀) exactly, so ``shrinkage`` equals
    ``shrinkage_theory``. With random slopes the terms shrink jointly, and the empirical factor
    of one term can fall outside [0, 1] when the effects are correlated.
    """
    from mlteach.mixed.formula import parse_mixed_formula  # the mixed-model formula parser

    if data is None:  # mlteach.lmm fits keep the rows they used in their fixed-effects design
        data = getattr(getattr(fit, "design", None), "data", getattr(fit, "data", None))
        if data is None:
            raise DataTypeError("shrinkage_table needs the data the model was fitted to: "
                            "shrinkage_table(fit, data).")
    mixed = parse_mixed_formula(fit.formula)
    factors = list(dict.fromkeys(t.factor for t in mixed.random))
    names = [":".join(f) for f in factors]
    if group is None:
        if len(factors) > 1:
            raise GroupingError(
                f"The model has several grouping factors ({', '.join(map(repr, names))}); say "
                f"which to tabulate, e.g. shrinkage_table(fit, data, group={names[0]!r}).")
        factor = factors[0]
    elif group in names:
        factor = factors[names.index(group)]
    else:
        raise GroupingError(f"{group!r} is not a grouping factor of the model "
                            f"{fit.formula!r}; its factors are {', '.join(map(repr, names))}.")
    name = ":".join(factor)
    blocks = [t for t in mixed.random if t.factor == factor]

    random_vars = sorted({v for b in blocks for v in formula_variables(parse_formula(b.expr))})
    all_factor_cols = sorted({c for f in factors for c in f})
    check_columns(data, random_vars + all_factor_cols)
    design = fixed_design(mixed.fixed, data, extra=random_vars + all_factor_cols,
                          context="the pooling comparison")
    if design.nobs != int(fit.nobs):
        raise ModelComparisonError(
            f"The data have {design.nobs} complete rows for this model but the fit used "
            f"{fit.nobs}: pass the data the model was fitted to.")
    rows = design.data
    # evaluated in mlteach.design.FORMULA_NAMESPACE, as the fit's own random-effect terms
    mats = [encode_formula(b.expr, rows) for b in blocks]
    Z = np.column_stack([np.asarray(m, dtype=float) for m in mats])
    z_terms = [str(c) for m in mats for c in m.columns]
    groups = GroupIndex.from_data(rows, list(factor))

    beta = pd.Series(fit.fixef, dtype=float)
    held = [k for k, t in enumerate(design.terms) if t not in z_terms]
    offset = design.X[:, held] @ beta.reindex([design.terms[k] for k in held]).to_numpy()
    no_pool, _, problems = ols_by_group(Z, design.y - offset, groups, z_terms)
    _warn_small_groups(problems, name, groups.n_groups)

    ranef = _pick(fit.ranef, name).reindex(index=pd.Index(groups.levels, dtype=object))
    if ranef.isna().any().any():
        raise ModelComparisonError(
            f"The fit has no random effects for some groups of {name!r} in these data; pass "
            f"the data the model was fitted to.")
    complete = ols(mixed.fixed, rows).params
    theory = np.full(groups.n_groups, np.nan)
    if len(mixed.random) == 1 and z_terms == ["Intercept"]:
        tau2 = float(np.asarray(_pick(fit.cov_re, name), dtype=float)[0, 0])
        theory = shrinkage_factor(tau2, float(fit.sigma) ** 2, groups.sizes)

    parts = []
    for k, term in enumerate(z_terms):
        fe = float(beta.get(term, 0.0))
        partial = fe + ranef[term].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            factor_emp = (partial - fe) / (no_pool[:, k] - fe)
        parts.append(pd.DataFrame({
            "term": term, "group": groups.levels, "n": groups.sizes,
            "no_pooling": no_pool[:, k],
            "partial_pooling": _without_negative_zero(partial),
            "fixed_effect": fe + 0.0,
            "complete_pooling": float(complete.get(term, 0.0)) + 0.0,
            "shrinkage": _without_negative_zero(factor_emp),
            "shrinkage_theory": theory if term == "Intercept" else np.nan,
        }))
    out = pd.concat(parts, ignore_index=True).set_index(["term", "group"])
    out.index = out.index.set_names(["term", name])
    out.attrs.update({"group": name, "response": design.response, "formula": fit.formula})
    return out


__all__ = ["no_pooling", "shrinkage_table", "shrinkage_factor", "ols_by_group"]
