"""What every panel estimator shares: the panel at the door, least squares and sandwiches.

A panel is a data set of groups (firms, countries, pupils) observed at several times. Each
estimator in `mlteach.panel` transforms the rows (removes group means, takes differences,
averages, quasi-demeans) and then runs least squares on the transformed data; this module holds
the steps they have in common so that every estimator does them the same way:

1. `prepare_panel` checks the group and time columns, encodes the formula (`fixed_design`) and
   builds the grouping index (`GroupIndex`) and the time positions;
2. `least_squares` (from `mlteach.ols`) solves the transformed regression by a QR decomposition;
3. `covariance` turns residuals into a classical, heteroskedasticity-robust or cluster-robust
   covariance matrix with a stated small-sample factor;
4. `result_fields` gathers the coefficient fields every result has.

The results themselves, each owning its `predict`, are in `mlteach.panel.results`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from mlteach.design import Design, GroupIndex, check_columns, fixed_design
from mlteach.errors import (DataTypeError, DroppedTermWarning, GroupingError, MlteachError,
                            RankDeficientError, user_stacklevel)
from mlteach.ols import LeastSquares

CovType = Literal["classical", "robust", "cluster"]

# A column whose transformed values are this small relative to its raw values has no variation
# left (e.g. a time-invariant regressor after removing group means); what remains is rounding.
ZERO_VARIATION = 1e-9


def check_option(name: str, value: object, allowed: Sequence[str]) -> None:
    """Raise `MlteachError` unless `value` is one of the `allowed` option strings."""
    if value not in allowed:
        raise MlteachError(
            f"{name}={value!r} is not an option; choose one of "
            f"{', '.join(repr(a) for a in allowed)}."
        )


# ----------------------------------------------------------------------------------------------
# The panel at the door
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """An encoded panel: the design, which group each row belongs to, and its time position.

    Attributes
    ----------
    design
        the encoded formula on the complete rows (`mlteach.design.Design`).
    groups
        `GroupIndex` of the group column on those rows.
    time
        integer position of each row's time in `time_levels` (None without a time column).
    time_levels
        the distinct times in order (numeric/date order, or category order).
    group_name
        the group column's name.
    time_name
        the time column's name (None without one).
    """

    design: Design
    groups: GroupIndex
    time: np.ndarray | None
    time_levels: pd.Index | None
    group_name: str
    time_name: str | None

    @property
    def nobs(self) -> int:
        return self.design.nobs

    @property
    def n_periods(self) -> int:
        return 0 if self.time_levels is None else len(self.time_levels)


def check_index_columns(data: pd.DataFrame, group: str, time: str | None) -> None:
    """Errors for panel index columns that are absent or have missing values.

    A row without a group (or time) cannot be placed in the panel, so it is an error rather
    than a row silently dropped with the missing values of the model's variables.
    """
    if not isinstance(group, str):
        raise DataTypeError(f"group must be the name of a column (a string), got {group!r}.")
    names = [("group", group)] + ([("time", time)] if time is not None else [])
    check_columns(data, [c for _, c in names], "panel index variable")
    for role, col in names:
        miss = data[col].isna().to_numpy()
        if miss.any():
            row = data.index[miss][0]
            raise GroupingError(
                f"The {role} variable {col!r} is missing (NaN) in {int(miss.sum())} row(s), "
                f"first at row {row!r}. Every row of a panel needs a {role}: drop those rows, "
                f"e.g. data.dropna(subset=[{col!r}]), or fill the {role} in."
            )


def time_positions(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer position of each value among the sorted distinct values (category order)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.remove_unused_categories()
        return cats.cat.codes.to_numpy(np.intp), pd.Index(cats.cat.categories)
    uniq, codes = np.unique(values.to_numpy(), return_inverse=True)
    return codes.astype(np.intp), pd.Index(uniq)


def check_unique_pairs(groups: GroupIndex, time: np.ndarray, time_levels: pd.Index,
                       group_name: str, time_name: str) -> None:
    """Raise `GroupingError` naming a group and time that occur in more than one row."""
    key = groups.codes.astype(np.int64) * len(time_levels) + time
    uniq, first, counts = np.unique(key, return_index=True, return_counts=True)
    dup = counts > 1
    if dup.any():
        j = int(np.argmax(dup))
        g, t = divmod(int(uniq[j]), len(time_levels))
        when = time_levels[t]
        when = when.item() if isinstance(when, np.generic) else when
        raise GroupingError(
            f"{int(dup.sum())} (group, time) pair(s) occur in more than one row: for example "
            f"{group_name} = {groups.levels[g]!r} at {time_name} = {when!r} has "
            f"{int(counts[j])} rows. A panel has one row per group and time; aggregate the "
            f"duplicates or drop them, e.g. data.drop_duplicates(subset=[{group_name!r}, "
            f"{time_name!r}]), or check that you passed the right time column."
        )


def prepare_panel(formula: str, data: pd.DataFrame, group: str, time: str | None = None,
                  context: str = "the panel model", unique: bool = True,
                  min_groups: int = 2) -> Panel:
    """Check the index columns, encode the formula on complete rows and index the panel.

    Rows with a missing value in a model variable are dropped (with `MissingDataWarning`);
    a missing group or time is an error. With `unique`, each (group, time) pair must occur once.
    """
    check_index_columns(data, group, time)
    extra = [group] + ([time] if time is not None else [])
    design = fixed_design(formula, data, extra=extra, context=context)
    groups = GroupIndex.from_data(design.data, group)
    if groups.n_groups < min_groups:
        raise GroupingError(
            f"The group variable {group!r} has {groups.n_groups} level(s) in the rows used; "
            f"{context} needs at least {min_groups}. Check that you passed the right column."
        )
    tpos = tlev = None
    if time is not None:
        tpos, tlev = time_positions(design.data[time])
        if unique:
            check_unique_pairs(groups, tpos, tlev, group, time)
    return Panel(design=design, groups=groups, time=tpos, time_levels=tlev,
                 group_name=group, time_name=time)


def drop_without_variation(raw: np.ndarray, transformed: np.ndarray, terms: Sequence[str],
                           reason: str, silent: Sequence[str] = ("Intercept",)
                           ) -> tuple[np.ndarray, list[str]]:
    """Indices of the columns that keep variation after a transformation, and names dropped.

    A column is dropped when its transformed values are rounding error relative to its raw
    values. Dropped terms other than `silent` ones (the intercept, which a fixed-effects model
    always absorbs) are named in a `DroppedTermWarning` that ends with `reason`, and returned.
    """
    raw_norm = np.sqrt((raw ** 2).sum(axis=0))
    new_norm = np.sqrt((transformed ** 2).sum(axis=0))
    gone = new_norm <= ZERO_VARIATION * np.maximum(raw_norm, 1e-300)
    loud = [t for t, g in zip(terms, gone) if g and t not in silent]
    if loud:
        warnings.warn(
            f"Dropped {', '.join(repr(t) for t in loud)} from {reason}",
            DroppedTermWarning, stacklevel=user_stacklevel(),
        )
    return np.flatnonzero(~gone), loud


# ----------------------------------------------------------------------------------------------
# Least squares and covariance matrices
# ----------------------------------------------------------------------------------------------


def sandwich(XtX_inv: np.ndarray, X: np.ndarray, resid: np.ndarray,
             clusters: GroupIndex | None) -> np.ndarray:
    """The sandwich (X'X)⁻¹ M (X'X)⁻¹ without small-sample factor (HC0 / CR0).

    M = Σ_i x_i x_i' e_i² (White) when `clusters` is None, else Σ_g s_g s_g' with the cluster
    scores s_g = Σ_{i∈g} x_i e_i (Arellano 1987; plm's vcovHC(method="arellano", type="HC0")).
    """
    scores = X * resid[:, None]
    if clusters is not None:
        scores = clusters.sum(scores).reshape(clusters.n_groups, X.shape[1])
    meat = scores.T @ scores
    V = XtX_inv @ meat @ XtX_inv
    return (V + V.T) / 2


@dataclass(frozen=True)
class Covariance:
    """A covariance matrix of the coefficients with the facts needed to report it."""

    matrix: np.ndarray
    cov_type: CovType
    factor: float
    df_inference: int
    n_clusters: int | None
    description: str


def covariance(ls: LeastSquares, X: np.ndarray, cov: CovType, df_resid: int,
               clusters: GroupIndex | None, small_sample: bool,
               k_cluster: int | None = None) -> Covariance:
    """Classical, heteroskedasticity-robust or cluster-robust covariance of β̂.

    classical : σ̂²(X'X)⁻¹ with σ̂² = e'e / df_resid; t(df_resid) inference.
    robust    : White's sandwich times n/df_resid (HC1 with the estimator's own residual
                degrees of freedom); t(df_resid).
    cluster   : the Arellano sandwich clustered by `clusters` times
                c = G/(G − 1) · (n − 1)/(n − K) with K = `k_cluster` (default: columns of X);
                t(G − 1) inference, as Stata. With ``small_sample=False`` the factor is 1
                (HC0/CR0, plm's vcovHC default) and inference is normal.
    """
    n, p = X.shape
    if cov == "classical":
        s2 = ls.ssr / df_resid
        return Covariance(s2 * ls.XtX_inv, "classical", 1.0, df_resid, None,
                          "classical (i.i.d. errors)")
    if cov == "robust":
        factor = n / df_resid if small_sample else 1.0
        V = factor * sandwich(ls.XtX_inv, X, ls.resid, None)
        label = "HC1" if small_sample else "HC0"
        return Covariance(V, "robust", factor, df_resid if small_sample else None, None,
                          f"heteroskedasticity-robust ({label})")
    assert clusters is not None
    G = clusters.n_groups
    if G < 2:
        raise GroupingError("Cluster-robust standard errors need at least two clusters.")
    K = p if k_cluster is None else k_cluster
    factor = G / (G - 1) * (n - 1) / (n - K) if small_sample else 1.0
    V = factor * sandwich(ls.XtX_inv, X, ls.resid, clusters)
    label = f"CR1, t({G - 1})" if small_sample else "CR0 (no small-sample factor), normal"
    return Covariance(V, "cluster", factor, G - 1 if small_sample else None, G,
                      f"cluster-robust by {clusters.name} ({G} clusters; {label})")


def rsquared(y: np.ndarray, resid: np.ndarray) -> float:
    """R² of the regression actually run: the squared correlation of y and its fitted values.

    This is plm's default (``r.squared(type = "cor")``). When the regression has a constant,
    or y and the fitted values both average zero (demeaned data), it equals 1 − e'e/Σ(y − ȳ)².
    It differs for GLS in unbalanced panels, where the constant becomes 1 − θ_i.
    """
    fitted = y - resid
    if np.ptp(fitted) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(y, fitted)[0, 1] ** 2)


def assert_enough_rows(n: int, p: int, what: str, terms: Sequence[str] | None = None) -> None:
    """Raise `RankDeficientError` when a regression has no residual degrees of freedom."""
    if n <= p:
        named = f" ({', '.join(terms)})" if terms is not None else ""
        raise RankDeficientError(
            f"{what} has {n} rows but {p} coefficients{named}: no residual degrees of freedom "
            f"are left to estimate the error variance. Use fewer regressors or more data."
        )


# ----------------------------------------------------------------------------------------------
# The fields every result shares
# ----------------------------------------------------------------------------------------------


def series(values: np.ndarray, terms: Sequence[str], name: str) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=pd.Index(list(terms)), name=name)


def frame(matrix: np.ndarray, terms: Sequence[str]) -> pd.DataFrame:
    idx = pd.Index(list(terms))
    return pd.DataFrame(matrix, index=idx, columns=idx)


def result_fields(ls: LeastSquares, cv: Covariance, terms: Sequence[str], df_resid: int
                  ) -> dict:
    """The coefficient fields every result shares, from a solved regression and its covariance."""
    return dict(
        params=series(ls.beta, terms, "estimate"),
        bse=series(np.sqrt(np.diag(cv.matrix)), terms, "std.err"),
        vcov=frame(cv.matrix, terms),
        df_resid=int(df_resid), df_inference=cv.df_inference, cov_type=cv.cov_type,
        cov_description=cv.description, cov_factor=float(cv.factor),
        n_clusters=cv.n_clusters, ssr=ls.ssr, sigma2=ls.ssr / df_resid,
    )
