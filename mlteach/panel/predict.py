"""Predictions from panel fits: what each estimator can predict, and with which group effects.

A panel estimator removes part of the variation before it runs least squares, so what it can
predict depends on what it removed:

* fixed effects (`within`, `lsdv`) estimate one intercept α_i per group seen in fitting (and, two
  way, one effect γ_t per period). They predict ŷ = α̂_i (+ γ̂_t) + x'β̂ for those groups and
  nothing for a new group, whose α is unknown;
* random effects (`swamy_arora`, `quasi_demeaned_gls`, `rewb`) estimate the population line
  ŷ = x'β̂, which holds for any group, and a predicted effect û_i for each group seen;
* the between regression predicts group means ȳ_i from group means x̄_i;
* first differences predict the change of y from one period to the next.

`PredictionBasis` holds what `PanelResult.predict` needs beyond the coefficients; `predict` is
the one function that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlteach.design import Design, GroupIndex, check_columns
from mlteach.errors import DataTypeError, GroupingError, MlteachError

if TYPE_CHECKING:
    from mlteach.panel._core import PanelResult

FIXED_KINDS = ("within", "lsdv")
RANDOM_KINDS = ("random", "gls", "rewb")


@dataclass(frozen=True)
class PredictionBasis:
    """What a fit keeps for prediction: the encoding of its data and its group effects.

    Attributes
    ----------
    design : the encoded rows used in fitting (its formulaic spec encodes new data the same way).
    group_levels : the group labels seen in fitting (strings, level order).
    group_effect : α̂_i (fixed effects: in the first period, two-way) or û_i (random effects:
        the GLS conditional mean, see `blup_shrinkage`) by group level; None for `between` and
        `first_difference`.
    time_levels, time_effect : the periods seen and γ̂_t (0 in the first) of a two-way fixed-
        effects fit; else None.
    split_terms, split_means : for `rewb`, the terms split into within and mean parts and their
        group means in fitting (G × len(split_terms)); else empty / None.
    fitted : in-sample predictions of `first_difference` (fitted changes), else None.
    row_groups : the position in `group_levels` of each fitted row's group, fixed at fit time
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


# ----------------------------------------------------------------------------------------------
# Prediction
# ----------------------------------------------------------------------------------------------


def _labels(newdata: pd.DataFrame, column: str) -> np.ndarray:
    """Group labels of new rows as strings, as `GroupIndex` labels the fitted rows."""
    values = newdata[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype(str).to_numpy()
    return np.array([str(v) for v in values.to_numpy()], dtype=object)


def _positions(labels: np.ndarray, levels: pd.Index) -> np.ndarray:
    return pd.Index(levels).get_indexer(pd.Index(labels))


def _unseen_error(what: str, column: str, unseen: list, n_seen: int) -> GroupingError:
    shown = ", ".join(repr(u) for u in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
    return GroupingError(
        f"newdata has {len(unseen)} {what}(s) of {column!r} that the fit did not see: {shown} "
        f"(the fit estimated effects for {n_seen} {what}s). Fixed effects cannot predict a new "
        f"{what}: its effect was never estimated. Use a random-effects model (swamy_arora(), "
        f"rewb(), or mlteach.lmm), which predicts a new group from the population line, or "
        f"predict(newdata, include_effects=False) for the slope part x'β̂ alone."
    )


def _columns(fit: "PanelResult", design: Design) -> np.ndarray:
    return np.array([design.terms.index(t) for t in fit.params.index], dtype=np.intp)


def _slope_part(fit: "PanelResult", basis: PredictionBasis, newdata: pd.DataFrame | None
                ) -> np.ndarray:
    """x'β̂ over the estimated terms (rewb: on its within and mean columns)."""
    d = basis.design
    if fit.kind == "rewb":
        return _rewb_matrix(fit, basis, newdata) @ fit.params.to_numpy()
    X = d.X if newdata is None else d.encode(newdata)
    return X[:, _columns(fit, d)] @ fit.params.to_numpy()


def _rewb_matrix(fit: "PanelResult", basis: PredictionBasis, newdata: pd.DataFrame | None
                 ) -> np.ndarray:
    """The within-between columns of `rewb` for the fitted rows or for `newdata`.

    A group seen in fitting keeps its group means x̄_i from the fit; a new group's means are
    those of its rows in `newdata` (the only information about that group there is).
    """
    d = basis.design
    if newdata is None:
        X, pos = d.X, basis.fitted_groups(fit.group).codes
        means_seen = basis.split_means
        means = means_seen[pos]
    else:
        check_columns(newdata, [fit.group], "group variable")
        X = d.encode(newdata)
        pos = _positions(_labels(newdata, fit.group), basis.group_levels)
        split_j = [d.terms.index(t) for t in basis.split_terms]
        means = np.empty((len(newdata), len(split_j)))
        seen = pos >= 0
        means[seen] = basis.split_means[pos[seen]]
        if (~seen).any():
            new = GroupIndex.from_data(newdata.loc[~seen], fit.group)
            means[~seen] = new.expand(new.mean(X[~seen][:, split_j]).reshape(new.n_groups, -1))
    cols: dict[str, np.ndarray] = {}
    for j, t in enumerate(d.terms):
        if t in basis.split_terms:
            m = means[:, basis.split_terms.index(t)]
            cols[f"{t}_within"], cols[f"{t}_mean"] = X[:, j] - m, m
        else:
            cols[t] = X[:, j]
    return np.column_stack([cols[t] for t in fit.params.index])


def predict(fit: "PanelResult", newdata: pd.DataFrame | None, include_effects: bool | None
            ) -> pd.Series:
    """See `PanelResult.predict`."""
    basis = fit.prediction_basis
    if basis is None:
        raise MlteachError(f"This {fit.estimator} result was built without what prediction needs; "
                         f"refit it with mlteach.panel.")
    if include_effects not in (None, True, False):
        raise DataTypeError(f"include_effects must be True or False, got {include_effects!r}.")
    if fit.kind == "fd":
        return _predict_fd(basis, newdata, include_effects)
    if fit.kind == "between":
        return _predict_between(fit, basis, newdata, include_effects)
    include = True if include_effects is None else include_effects
    index = basis.design.index if newdata is None else newdata.index
    out = _slope_part(fit, basis, newdata)
    if include and fit.kind in FIXED_KINDS:
        out = out + _fixed_effects_part(fit, basis, newdata)
    elif include:
        out = out + _random_effects_part(fit, basis, newdata)
    return pd.Series(out, index=index, name="predicted")


def _fixed_effects_part(fit: "PanelResult", basis: PredictionBasis,
                        newdata: pd.DataFrame | None) -> np.ndarray:
    if newdata is None:
        # α̂_i (+ γ̂_t) of the fitted rows is y − x'β̂ − e exactly; no need to rebuild it.
        return basis.design.y - fit.resid.to_numpy() - _slope_part(fit, basis, None)
    check_columns(newdata, [fit.group], "group variable")
    pos = _positions(_labels(newdata, fit.group), basis.group_levels)
    if (pos < 0).any():
        unseen = list(dict.fromkeys(_labels(newdata, fit.group)[pos < 0]))
        raise _unseen_error("group", fit.group, unseen, len(basis.group_levels))
    part = basis.group_effect[pos]
    if basis.time_effect is not None:
        check_columns(newdata, [fit.time], "time variable")
        tpos = basis.time_levels.get_indexer(newdata[fit.time])
        if (tpos < 0).any():
            unseen = list(dict.fromkeys(newdata[fit.time].to_numpy()[tpos < 0].tolist()))
            raise _unseen_error("period", fit.time, unseen, len(basis.time_levels))
        part = part + basis.time_effect[tpos]
    return part


def _random_effects_part(fit: "PanelResult", basis: PredictionBasis,
                         newdata: pd.DataFrame | None) -> np.ndarray:
    if newdata is None:
        return basis.group_effect[basis.fitted_groups(fit.group).codes]
    check_columns(newdata, [fit.group], "group variable")
    pos = _positions(_labels(newdata, fit.group), basis.group_levels)
    # A new group's effect is predicted by its mean, 0: its prediction is the population line.
    return np.where(pos >= 0, basis.group_effect[np.maximum(pos, 0)], 0.0)


def _predict_between(fit: "PanelResult", basis: PredictionBasis, newdata: pd.DataFrame | None,
                     include_effects: bool | None) -> pd.Series:
    if include_effects:
        raise MlteachError(
            "between() estimates no group effects: each group is one row, and its residual is "
            "all that distinguishes it. predict() gives the fitted group means x̄'β̂; leave "
            "include_effects unset (or False).")
    d = basis.design
    beta = fit.params.to_numpy()
    if newdata is None:
        groups = basis.fitted_groups(fit.group)
        Xb = groups.mean(d.X).reshape(groups.n_groups, -1)
        return pd.Series(Xb @ beta, index=pd.Index(groups.levels, name=fit.group),
                         name="predicted")
    return pd.Series(d.encode(newdata) @ beta, index=newdata.index, name="predicted")


def _predict_fd(basis: PredictionBasis, newdata: pd.DataFrame | None,
                include_effects: bool | None) -> pd.Series:
    if include_effects:
        raise MlteachError(
            "first_difference() has no group effects to add: differencing removed them. Its "
            "predictions are changes of y from the previous period; leave include_effects "
            "unset (or False).")
    if newdata is not None:
        raise MlteachError(
            "first_difference() cannot predict for newdata: it estimates how y changes when x "
            "changes from one period to the next, not the level of y (the group effects that "
            "set each group's level were differenced away), and a formula's terms (logs, "
            "interactions, categories) are not the differences of new rows' values. "
            "predict() without newdata gives the fitted changes Δŷ_it = Δx_it'β̂ of the fitted "
            "rows. To predict levels use within(), lsdv() or a random-effects model.")
    return basis.fitted.rename("predicted")  # rename returns a new Series
