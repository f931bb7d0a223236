"""The results of the panel estimators. Each result class owns its `predict`.

A panel estimator removes part of the variation before it runs least squares, so what it can
predict depends on what it removed, and each result class says so in its `_predict`:

* `FixedEffectsResult` (`within`; `LSDVResult` for `lsdv`) estimated one intercept α_i per
  group seen in fitting (and, two way, one effect γ_t per period). It predicts
  ŷ = α̂_i (+ γ̂_t) + x'β̂ for those groups and nothing for a new group, whose α is unknown;
* `GLSResult` (`quasi_demeaned_gls`; `RandomEffectsResult` for `swamy_arora`, `REWBResult`
  for `rewb`) estimated the population line ŷ = x'β̂, which holds for any group, and a
  predicted effect û_i for each group seen;
* `BetweenResult` predicts group means ȳ_i from group means x̄_i;
* `FirstDifferenceResult` predicts the change of y from one period to the next.

`PredictionBasis` holds what the predictions need beyond the coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd

from mlteach.design import Design, GroupIndex, check_columns
from mlteach.errors import DataTypeError, GroupingError, MlteachError, warn
from mlteach.panel.core import CovType
from mlteach.results import CoefficientTable, Summary, TestResult, renamed, wald_test


@dataclass(frozen=True)
class PredictionBasis:
    """What a fit keeps for prediction: the encoding of its data and its group effects.

    Attributes
    ----------
    design
        the encoded rows used in fitting (its formulaic spec encodes new data the same way).
    group_levels
        the group labels seen in fitting (strings, level order).
    group_effect
        α̂_i (fixed effects: in the first period, two-way) or û_i (random effects:
        the GLS conditional mean, see `mlteach.panel.random.random_group_effects`) by group
        level; None for `between` and `first_difference`.
    time_levels
        the periods seen in a two-way fixed-effects fit; else None.
    time_effect
        γ̂_t for those periods (0 in the first); else None.
    split_terms
        for `rewb`, the terms split into within and mean parts; else empty.
    split_means
        for `rewb`, their group means in fitting (G × len(split_terms)); else None.
    fitted
        in-sample predictions of `first_difference` (fitted changes), else None.
    row_groups
        the position in `group_levels` of each fitted row's group, fixed at fit time
        (read-only), so that in-sample predictions never re-read a data frame.

    The basis owns what it holds: `design` encodes a copy of the data made at fit time, and
    the arrays are made read-only, so editing the caller's data frame (values, or the order
    of a categorical's categories) after fitting changes no prediction.
    """

    design: Design
    group_levels: pd.Index
    group_effect: np.ndarray | None = None
    time_levels: pd.Index | None = None
    time_effect: np.ndarray | None = None
    split_terms: tuple[str, ...] = ()
    split_means: np.ndarray | None = None
    fitted: pd.Series | None = None
    row_groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("group_effect", "time_effect", "split_means", "row_groups"):
            value = getattr(self, name)
            if value is not None:
                value = np.array(value, copy=True)
                value.setflags(write=False)
                object.__setattr__(self, name, value)
        if self.fitted is not None:
            object.__setattr__(self, "fitted", self.fitted.copy())

    def fitted_groups(self, name: str) -> GroupIndex:
        """The groups of the fitted rows as at fit time."""
        if self.row_groups is None:
            return GroupIndex.from_data(self.design.data, name)
        return GroupIndex(name=name, codes=self.row_groups, levels=self.group_levels)

    def positions(self, newdata: pd.DataFrame, column: str) -> np.ndarray:
        """The position in `group_levels` of each new row's group; −1 for a group not seen."""
        check_columns(newdata, [column], "group variable")
        return pd.Index(self.group_levels).get_indexer(pd.Index(group_labels(newdata, column)))


def group_labels(newdata: pd.DataFrame, column: str) -> np.ndarray:
    """Group labels of new rows as strings, as `GroupIndex` labels the fitted rows."""
    values = newdata[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype(str).to_numpy()
    return np.array([str(v) for v in values.to_numpy()], dtype=object)


def unseen_error(what: str, column: str, unseen: list, n_seen: int) -> GroupingError:
    """The error for new data holding groups (or periods) a fixed-effects fit did not see."""
    shown = ", ".join(repr(u) for u in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
    return GroupingError(
        f"newdata has {len(unseen)} {what}(s) of {column!r} that the fit did not see: {shown} "
        f"(the fit estimated effects for {n_seen} {what}s). Fixed effects cannot predict a new "
        f"{what}: its effect was never estimated. Use a random-effects model (swamy_arora(), "
        f"rewb(), or mlteach.lmm), which predicts a new group from the population line, or "
        f"predict(newdata, include_random=False) for the slope part x'β̂ alone."
    )


def gaussian_loglik(ssr: float, nobs: int) -> float:
    """−n/2 · (log 2π + log(e'e/n) + 1): the Gaussian log-likelihood at σ̂² = e'e/n.

    statsmodels' ``llf`` of OLS, and linearmodels' ``loglik`` of a panel estimator applied to
    the residuals and rows of the regression it runs.
    """
    if ssr <= 0:
        return float("nan")
    return float(-0.5 * nobs * (np.log(2 * np.pi) + np.log(ssr / nobs) + 1))


# ----------------------------------------------------------------------------------------------
# The result every panel estimator shares
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PanelResult(CoefficientTable):
    """A fitted panel regression. Every attribute is set when it is returned.

    Attributes
    ----------
    estimator
        the estimator's name as printed ("Fixed effects (within)", ...).
    kind
        (class attribute) a short machine name: "within", "lsdv", "fd", "between",
        "random", "gls", "rewb"; `short_name` is the column heading `compare` prints.
    params
        coefficients by term (formulaic names).
    bse
        their standard errors.
    vcov
        their covariance matrix (of the kind `cov_type`, with factor `cov_factor`).
    nobs
        rows of the regression actually run (differences for first differences, groups
        for the between regression); `n_rows` is the rows of the data used.
    ngroups
        groups in the rows used (``n_groups`` before issue 14, a deprecated alias).
    df_resid
        residual degrees of freedom of the classical variance (absorbed effects counted).
    df_inference
        degrees of freedom of the t distribution for tests and intervals
        (None: normal).
    rsquared
        R² of the regression actually run; `rsquared_kind` says which ("within", ...).
    ssr
        residual sum of squares of that regression.
    sigma2
        its error variance e'e/df_resid.
    resid
        residuals of that regression, indexed by the data's row labels.
    dropped
        terms removed because the transformation left them without variation.
    notes
        plain-language facts printed under the summary (gaps, singletons, conventions).
    prediction_basis
        what `predict` needs besides the coefficients (the data's encoding and
        the estimated group effects); see `PredictionBasis`.
    """

    kind: ClassVar[str] = "panel"
    short_name: ClassVar[str] = "Panel"

    estimator: str
    formula: str
    params: pd.Series
    bse: pd.Series
    vcov: pd.DataFrame
    nobs: int
    n_rows: int
    ngroups: int
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
    prediction_basis: PredictionBasis | None = field(default=None, repr=False, compare=False)

    n_groups = renamed("n_groups", "ngroups")

    @property
    def rsquared_adj(self) -> float:
        """1 − (1 − R²)(n − 1)/df_resid, as plm's ``r.squared(dfcor=TRUE)``."""
        return 1 - (1 - self.rsquared) * (self.nobs - 1) / self.df_resid

    @property
    def loglik(self) -> float:
        """Gaussian log-likelihood of the regression actually run, linearmodels' ``loglik``:
        −n/2 · (log 2π + log(e'e/n) + 1) with n = `nobs` and e'e = `ssr`."""
        return gaussian_loglik(self.ssr, self.nobs)

    @property
    def fitted(self) -> pd.Series:
        """In-sample predictions, ``predict()`` (with the group effects where there are any)."""
        return self.predict()

    def wald(self, terms: Sequence[str] | None = None) -> TestResult:
        """Joint Wald test that the coefficients of `terms` (default: all but Intercept) are 0.

        F = b'V⁻¹b / q with (q, df_inference) degrees of freedom; χ²(q) when inference is
        normal. With classical errors this is the usual overall F test of the regression.
        """
        terms = [t for t in self.params.index if t != "Intercept"] if terms is None else terms
        return wald_test(self.params, self.vcov, terms, self.df_inference,
                         f"{self.estimator}: all coefficients of {', '.join(terms)} are zero")

    def predict(self, newdata: pd.DataFrame | None = None, include_random: bool | None = None,
                include_effects: bool | None = None) -> pd.Series:
        """Predictions for the fitted rows (``newdata=None``) or for the rows of `newdata`.

        What is predicted depends on the estimator (each result class implements its own):

        ``within``, ``lsdv`` (fixed effects)
            ŷ_it = α̂_i + x_it'β̂ (two-way: + γ̂_t), with α̂_i = ȳ_i − x̄_i'β̂ the estimated
            intercept of group i. For the fitted rows this is y − e. `newdata` needs the group
            column (two-way: also the time column), and only groups (periods) seen in fitting
            can be predicted: a new group's intercept was never estimated, so a `GroupingError`
            names it. ``include_random=False`` gives the slope part x'β̂ alone (no intercept),
            for any rows.
        ``swamy_arora``, ``rewb``, ``quasi_demeaned_gls`` (random effects)
            ``include_random=True`` (default): ŷ_it = α̂ + x_it'β̂ + û_i with the GLS
            conditional mean of the group effect

            .. math::

                \\hat u_i = \\frac{T_i\\hat\\sigma^2_u}{T_i\\hat\\sigma^2_u + \\hat\\sigma^2_e}\\,
                \\frac{1}{T_i}\\sum_t (y_{it} - \\hat\\alpha - x_{it}'\\hat\\beta)
                = [1 - (1 - \\theta_i)^2]\\, \\bar e_i

            computed from the fitted rows (T_i of them); a group not seen in fitting gets
            û = 0, so its prediction is the population line (as ``mlteach.lmm``'s predict).
            ``include_random=False``: the population line α̂ + x'β̂ for every row. For
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

        ``include_effects`` is the name of `include_random` before issue 14 (deprecated).

        Returns
        -------
        Series named "predicted", indexed like `newdata` (the fitted rows' labels without it).
        """
        arg = "include_random"
        if include_effects is not None:
            warn("predict(include_effects=...) is renamed predict(include_random=...), the "
                 "name mlteach.lmm and mlteach.glmm use; include_effects will be removed in "
                 "the next release.", DeprecationWarning)
            if include_random is not None:
                raise MlteachError("Give include_random only (include_effects is its old "
                                   "name), not both.")
            include_random, arg = include_effects, "include_effects"
        if include_random not in (None, True, False):
            raise DataTypeError(f"{arg} must be True or False, got {include_random!r}.")
        if self.prediction_basis is None:
            raise MlteachError(f"This {self.estimator} result was built without what prediction "
                               f"needs; refit it with mlteach.panel.")
        return self._predict(newdata, include_random)

    def _predict(self, newdata: pd.DataFrame | None, include_random: bool | None) -> pd.Series:
        raise NotImplementedError(f"{type(self).__name__} does not predict.")

    def _slope_matrix(self, newdata: pd.DataFrame | None) -> np.ndarray:
        """The columns of the estimated terms for the fitted rows or for `newdata`."""
        d = self.prediction_basis.design
        X = d.X if newdata is None else d.encode(newdata)
        return X[:, [d.terms.index(t) for t in self.params.index]]

    def _slope_part(self, newdata: pd.DataFrame | None) -> np.ndarray:
        """x'β̂ over the estimated terms."""
        return self._slope_matrix(newdata) @ self.params.to_numpy()

    def _index(self, newdata: pd.DataFrame | None) -> pd.Index:
        return self.prediction_basis.design.index if newdata is None else newdata.index

    def summary(self) -> Summary:
        """Estimator, formula, panel size, kind of standard errors, R² and the coefficient
        table, with the estimator's notes (dropped terms, gaps, conventions)."""
        facts: list[tuple[str, object]] = [
            ("Estimator", self.estimator), ("Formula", self.formula),
            ("Group", self.group)]
        if self.time is not None:
            facts.append(("Time", self.time))
        facts += [("Rows used", self.n_rows), ("Groups", self.ngroups)]
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


# ----------------------------------------------------------------------------------------------
# Fixed effects
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, repr=False)
class FixedEffectsResult(PanelResult):
    """A fixed-effects (within) fit: the slopes, and the group (and time) effects behind
    `predict`."""

    kind: ClassVar[str] = "within"
    short_name: ClassVar[str] = "Within"

    def _predict(self, newdata: pd.DataFrame | None, include_random: bool | None) -> pd.Series:
        """x'β̂, plus α̂_i (+ γ̂_t) unless ``include_random=False``; seen groups only."""
        out = self._slope_part(newdata)
        if include_random is not False:
            out = out + self._effects_part(newdata)
        return pd.Series(out, index=self._index(newdata), name="predicted")

    def _effects_part(self, newdata: pd.DataFrame | None) -> np.ndarray:
        basis = self.prediction_basis
        if newdata is None:
            # α̂_i (+ γ̂_t) of the fitted rows is y − x'β̂ − e exactly; no need to rebuild it.
            return basis.design.y - self.resid.to_numpy() - self._slope_part(None)
        pos = basis.positions(newdata, self.group)
        if (pos < 0).any():
            unseen = list(dict.fromkeys(group_labels(newdata, self.group)[pos < 0]))
            raise unseen_error("group", self.group, unseen, len(basis.group_levels))
        part = basis.group_effect[pos]
        if basis.time_effect is not None:
            check_columns(newdata, [self.time], "time variable")
            tpos = basis.time_levels.get_indexer(newdata[self.time])
            if (tpos < 0).any():
                unseen = list(dict.fromkeys(newdata[self.time].to_numpy()[tpos < 0].tolist()))
                raise unseen_error("period", self.time, unseen, len(basis.time_levels))
            part = part + basis.time_effect[tpos]
        return part


@dataclass(frozen=True, kw_only=True, repr=False)
class LSDVResult(FixedEffectsResult):
    """A fixed-effects fit by dummy variables: slopes as `within`, plus the intercepts.

    It has every attribute of `PanelResult`, and these:

    Attributes
    ----------
    group_effects
        DataFrame indexed by group level with the estimate and SE of each group's
        intercept α_i (in the first period, two-way).
    time_effects
        DataFrame of the time effects γ_t relative to the first period (two-way),
        else None.
    """

    kind: ClassVar[str] = "lsdv"
    short_name: ClassVar[str] = "LSDV"

    group_effects: pd.DataFrame
    time_effects: pd.DataFrame | None = None


# ----------------------------------------------------------------------------------------------
# First differences and the between regression
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, repr=False)
class FirstDifferenceResult(PanelResult):
    """A first-difference fit; it predicts changes of y, not levels."""

    kind: ClassVar[str] = "fd"
    short_name: ClassVar[str] = "First diff."

    def _predict(self, newdata: pd.DataFrame | None, include_random: bool | None) -> pd.Series:
        """The fitted changes Δŷ_it of the fitted rows; no group effects, no new data."""
        if include_random:
            raise MlteachError(
                "first_difference() has no group effects to add: differencing removed them. Its "
                "predictions are changes of y from the previous period; leave include_random "
                "unset (or False).")
        if newdata is not None:
            raise MlteachError(
                "first_difference() cannot predict for newdata: it estimates how y changes when "
                "x changes from one period to the next, not the level of y (the group effects "
                "that set each group's level were differenced away), and a formula's terms "
                "(logs, interactions, categories) are not the differences of new rows' values. "
                "predict() without newdata gives the fitted changes Δŷ_it = Δx_it'β̂ of the "
                "fitted rows. To predict levels use within(), lsdv() or a random-effects model.")
        return self.prediction_basis.fitted.rename("predicted")  # rename returns a new Series


@dataclass(frozen=True, kw_only=True, repr=False)
class BetweenResult(PanelResult):
    """A between fit (one row per group); it predicts group means."""

    kind: ClassVar[str] = "between"
    short_name: ClassVar[str] = "Between"

    def _predict(self, newdata: pd.DataFrame | None, include_random: bool | None) -> pd.Series:
        """The fitted group means x̄_i'β̂ (indexed by group), or x'β̂ for `newdata`."""
        if include_random:
            raise MlteachError(
                "between() estimates no group effects: each group is one row, and its residual "
                "is all that distinguishes it. predict() gives the fitted group means x̄'β̂; "
                "leave include_random unset (or False).")
        basis = self.prediction_basis
        d, beta = basis.design, self.params.to_numpy()
        if newdata is None:
            groups = basis.fitted_groups(self.group)
            Xb = groups.mean(d.X).reshape(groups.n_groups, -1)
            return pd.Series(Xb @ beta, index=pd.Index(groups.levels, name=self.group),
                             name="predicted")
        return pd.Series(d.encode(newdata) @ beta, index=newdata.index, name="predicted")


# ----------------------------------------------------------------------------------------------
# Random effects (GLS)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, repr=False)
class GLSResult(PanelResult):
    """A GLS fit by quasi-demeaning: the population line and the predicted group effects û_i."""

    kind: ClassVar[str] = "gls"
    short_name: ClassVar[str] = "GLS (θ given)"

    def _predict(self, newdata: pd.DataFrame | None, include_random: bool | None) -> pd.Series:
        """The population line x'β̂, plus û_i unless ``include_random=False`` (0 for a new
        group)."""
        out = self._slope_part(newdata)
        if include_random is not False:
            out = out + self._effects_part(newdata)
        return pd.Series(out, index=self._index(newdata), name="predicted")

    def _effects_part(self, newdata: pd.DataFrame | None) -> np.ndarray:
        basis = self.prediction_basis
        if newdata is None:
            return basis.group_effect[basis.fitted_groups(self.group).codes]
        pos = basis.positions(newdata, self.group)
        # A new group's effect is predicted by its mean, 0: its prediction is the population line.
        return np.where(pos >= 0, basis.group_effect[np.maximum(pos, 0)], 0.0)


@dataclass(frozen=True, kw_only=True, repr=False)
class RandomEffectsResult(GLSResult):
    """A random-effects (GLS) fit with its variance components.

    It has every attribute of `PanelResult`, and these:

    Attributes
    ----------
    sigma2_u
        variance of the group effects u_i, truncated at zero as a variance must be.
    sigma2_e
        variance of the idiosyncratic error.
    sigma2_u_raw
        the Swamy–Arora estimate of σ²_u before that truncation. It is negative
        when the group means differ less than the within-group noise alone would make them
        (a `BoundaryFitWarning` is issued, and `sigma2_u` and θ are 0); printed in the
        summary then.
    theta_by_group
        θ_i per group label (Series). `theta` is one number when every group
        has the same number of rows, else this Series.
    """

    kind: ClassVar[str] = "random"
    short_name: ClassVar[str] = "RE (Swamy–Arora)"

    sigma2_u: float
    sigma2_e: float
    theta_by_group: pd.Series
    sigma2_u_raw: float

    @property
    def theta(self) -> float | pd.Series:
        th = self.theta_by_group
        return float(th.iloc[0]) if np.ptp(th.to_numpy()) == 0 else th

    @property
    def rho(self) -> float:
        """Share of the error variance due to the group effects, σ²_u / (σ²_u + σ²_e)."""
        return self.sigma2_u / (self.sigma2_u + self.sigma2_e)


@dataclass(frozen=True, kw_only=True, repr=False)
class REWBResult(RandomEffectsResult):
    """A within-between random-effects fit, with the effects of each split regressor.

    It has every attribute of `RandomEffectsResult`, and these:

    Attributes
    ----------
    within_effects
        coefficient table of the x_within terms (the fixed-effects slopes).
    between_effects
        coefficient table of the x_mean terms (effects of the group means).
    contextual_effects
        between − within for each variable (Mundlak's coefficient on x̄_i
        in ``y ~ x + x_mean``), with standard errors from the covariance of the two.
    """

    kind: ClassVar[str] = "rewb"
    short_name: ClassVar[str] = "REWB"

    within_effects: pd.DataFrame
    between_effects: pd.DataFrame
    contextual_effects: pd.DataFrame

    def _slope_matrix(self, newdata: pd.DataFrame | None) -> np.ndarray:
        """The within-between columns of `rewb` for the fitted rows or for `newdata`.

        A group seen in fitting keeps its group means x̄_i from the fit; a new group's means
        are those of its rows in `newdata` (the only information about that group there is).
        """
        basis = self.prediction_basis
        d = basis.design
        if newdata is None:
            X = d.X
            means = basis.split_means[basis.fitted_groups(self.group).codes]
        else:
            pos = basis.positions(newdata, self.group)
            X = d.encode(newdata)
            split_j = [d.terms.index(t) for t in basis.split_terms]
            means = np.empty((len(newdata), len(split_j)))
            seen = pos >= 0
            means[seen] = basis.split_means[pos[seen]]
            if (~seen).any():
                new = GroupIndex.from_data(newdata.loc[~seen], self.group)
                means[~seen] = new.expand(
                    new.mean(X[~seen][:, split_j]).reshape(new.n_groups, -1))
        cols: dict[str, np.ndarray] = {}
        for j, t in enumerate(d.terms):
            if t in basis.split_terms:
                m = means[:, basis.split_terms.index(t)]
                cols[f"{t}_within"], cols[f"{t}_mean"] = X[:, j] - m, m
            else:
                cols[t] = X[:, j]
        return np.column_stack([cols[t] for t in self.params.index])

    def summary(self) -> Summary:
        """The random-effects summary plus the within, between and contextual effects tables."""
        s = super().summary()
        tables = list(s.tables) + [("Within effects (x − group mean)", self.within_effects),
                                   ("Between effects (group mean)", self.between_effects),
                                   ("Contextual effects (between − within)",
                                    self.contextual_effects)]
        return type(s)(s.title, s.facts, tables, s.notes)
