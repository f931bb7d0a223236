"""What every panel estimator shares: the panel at the door, least squares, sandwiches, results.

A panel is a data set of groups (firms, countries, pupils) observed at several times. Each
estimator in `mlteach.panel` transforms the rows (removes group means, takes differences,
averages, quasi-demeans) and then runs least squares on the transformed data; this module holds
the steps they have in common so that every estimator does them the same way:

1. `prepare_panel` checks the group and time columns, encodes the formula (`fixed_design`) and
   builds the grouping index (`GroupIndex`) and the time positions;
2. `least_squares` (from `mlteach.ols`) solves the transformed regression by a QR decomposition;
3. `covariance` turns residuals into a classical, heteroskedasticity-robust or cluster-robust
   covariance matrix with a stated small-sample factor;
4. `PanelResult` is the frozen result that prints, tabulates and gives intervals.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mlteach.results import CoefficientTable, Summary, TestResult, wald_test
from mlteach.design import Design, GroupIndex, check_columns, fixed_design
from mlteach.errors import (DataTypeError, DroppedTermWarning, GroupingError, MlteachError,
                            RankDeficientError, user_stacklevel)
from mlteach.ols import LeastSquares

if TYPE_CHECKING:
    from mlteach.panel.predict import PredictionBasis

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
    design : the encoded formula on the complete rows (`mlteach.design.Design`).
    groups : `GroupIndex` of the group column on those rows.
    time : integer position of each row's time in `time_levels` (None without a time column).
    time_levels : the distinct times in order (numeric/date order, or category order).
    group_name, time_name : the column names.
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
# Results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PanelResult(CoefficientTable):
    """A fitted panel regression. Every attribute is set when it is returned.

    Attributes
    ----------
    estimator : the estimator's name as printed ("Fixed effects (within)", ...).
    kind : a short machine name: "within", "lsdv", "fd", "between", "random", "gls", "rewb".
    params, bse : coefficients and standard errors by term (formulaic names).
    vcov : their covariance matrix (of the kind `cov_type`, with factor `cov_factor`).
    nobs : rows of the regression actually run (differences for first differences, groups
        for the between regression); `n_rows` is the rows of the data used.
    n_groups : groups in the rows used.
    df_resid : residual degrees of freedom of the classical variance (absorbed effects counted).
    df_inference : degrees of freedom of the t distribution for tests and intervals
        (None: normal).
    rsquared : R² of the regression actually run; `rsquared_kind` says which ("within", ...).
    ssr, sigma2 : residual sum of squares and error variance e'e/df_resid of that regression.
    resid : residuals of that regression, indexed by the data's row labels.
    dropped : terms removed because the transformation left them without variation.
    notes : plain-language facts printed under the summary (gaps, singletons, conventions).
    prediction_basis : what `predict` needs besides the coefficients (the data's encoding and
        the estimated group effects); see `mlteach.panel.predict`.
    """

    estimator: str
    kind: str
    formula: str
    params: pd.Series
    bse: pd.Series
    vcov: pd.DataFrame
    nobs: int
    n_rows: int
    n_groups: int
    df_resid: int
    df_inference: int | None
    cov_type: CovType
    cov_description: str
    cov_factor: float
    n_clusters: int | None
    rsquared: float
    rsquared_kind: str
    ssr: float
    sigma2: float
    group: str
    time: str | None
    resid: pd.Series = field(repr=False)
    dropped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    facts: tuple[tuple[str, object], ...] = ()
    prediction_basis: "PredictionBasis | None" = field(default=None, repr=False, compare=False)


    @property
    def rsquared_adj(self) -> float:
        """1 − (1 − R²)(n − 1)/df_resid, as plm's ``r.squared(dfcor=TRUE)``."""
        return 1 - (1 - self.rsquared) * (self.nobs - 1) / self.df_resid

    def wald(self, terms: Sequence[str] | None = None) -> TestResult:
        """Joint Wald test that the coefficients of `terms` (default: all but Intercept) are 0.

        F = b'V⁻¹b / q with (q, df_inference) degrees of freedom; χ²(q) when inference is
        normal. With classical errors this is the usual overall F test of the regression.
        """
        terms = [t for t in self.params.index if t != "Intercept"] if terms is None else terms
        return wald_test(self.params, self.vcov, terms, self.df_inference,
                         f"{self.estimator}: all coefficients of {', '.join(terms)} are zero")

    def predict(self, newdata: pd.DataFrame | None = None,
                include_effects: bool | None = None) -> pd.Series:
        """Predictions for the fitted rows (``newdata=None``) or for the rows of `newdata`.

        What is predicted depends on the estimator:

        ``within``, ``lsdv`` (fixed effects)
            ŷ_it = α̂_i + x_it'β̂ (two-way: + γ̂_t), with α̂_i = ȳ_i − x̄_i'β̂ the estimated
            intercept of group i. For the fitted rows this is y − e. `newdata` needs the group
            column (two-way: also the time column), and only groups (periods) seen in fitting
            can be predicted: a new group's intercept was never estimated, so a `GroupingError`
            names it. ``include_effects=False`` gives the slope part x'β̂ alone (no intercept),
            for any rows.
        ``swamy_arora``, ``rewb``, ``quasi_demeaned_gls`` (random effects)
            ``include_effects=True`` (default): ŷ_it = α̂ + x_it'β̂ + û_i with the GLS
            conditional mean of the group effect

            .. math::

                \\hat u_i = \\frac{T_i\\hat\\sigma^2_u}{T_i\\hat\\sigma^2_u + \\hat\\sigma^2_e}\\,
                \\frac{1}{T_i}\\sum_t (y_{it} - \\hat\\alpha - x_{it}'\\hat\\beta)
                = [1 - (1 - \\theta_i)^2]\\, \\bar e_i

            computed from the fitted rows (T_i of them); a group not seen in fitting gets
            û = 0, so its prediction is the population line (as ``mlteach.lmm``'s predict).
            ``include_effects=False``: the population line α̂ + x'β̂ for every row. For
            ``rewb`` a seen group keeps its fitted group means x̄_i; a new group's means are
            taken from its rows in `newdata`, which must therefore hold the group column.
        ``between``
            The fitted group means x̄_i'β̂, one per group (indexed by group), or x'β̂ for the
            rows of `newdata`: the predicted group mean of y for a group whose regressors
            average x. There are no group effects to include.
        ``first_difference``
            The fitted changes Δŷ_it = Δx_it'β̂ (+ the constant, the average change per
            period), indexed by the later row of each difference: a prediction of how much y
            changed since the previous period, not of its level. `newdata` is refused, since
            levels cannot be predicted once the group effects are differenced away.

        Returns
        -------
        Series named "predicted", indexed like `newdata` (the fitted rows' labels without it).
        """
        from mlteach.panel.predict import predict
        return predict(self, newdata, include_effects)

    def summary(self) -> Summary:
        """Estimator, formula, panel size, kind of standard errors, R² and the coefficient
        table, with the estimator's notes (dropped terms, gaps, conventions)."""
        facts: list[tuple[str, object]] = [
            ("Estimator", self.estimator), ("Formula", self.formula),
            ("Group", self.group)]
        if self.time is not None:
            facts.append(("Time", self.time))
        facts += [("Rows used", self.n_rows), ("Groups", self.n_groups)]
        if self.nobs != self.n_rows:
            facts.append(("Rows of the regression", self.nobs))
        facts += list(self.facts)
        facts += [("Standard errors", self.cov_description),
                  ("Residual df", self.df_resid),
                  (f"R-squared ({self.rsquared_kind})", self.rsquared),
                  ("Adj. R-squared", self.rsquared_adj)]
        notes = list(self.notes)
        if self.dropped:
            notes.append("Not estimable (no variation left after the transformation): "
                         + ", ".join(self.dropped) + ".")
        return Summary(self.estimator, facts, [("Coefficients", self.to_frame())], notes)

    def __str__(self) -> str:
        return str(self.summary())

    # The plain-text display in a console or notebook is the summary, not a dump of every field.
    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


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


def chi2_or_f_pvalue(stat: float, q: int, df: int | None) -> float:
    """Upper-tail p-value of F(q, df) for stat = W/q, or of χ²(q) for stat = W when df is None."""
    return float(stats.chi2.sf(stat, q) if df is None else stats.f.sf(stat, q, df))
