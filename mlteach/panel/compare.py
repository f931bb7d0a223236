"""Several fitted models side by side in one table (as Stata's esttab or linearmodels' compare)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from mlteach._tables import Summary
from mlteach.ols import OLSResult
from mlteach.panel._core import PanelResult

_SHORT = {"within": "Within (FE)", "lsdv": "LSDV", "fd": "First differences",
          "between": "Between", "random": "Random effects", "gls": "GLS (given θ)",
          "rewb": "REWB"}


@dataclass(frozen=True)
class Comparison:
    """Coefficients and standard errors of several fits, aligned by term.

    Attributes
    ----------
    params, bse : DataFrames, one row per term (in order of first appearance) and one column
        per model; NaN where a model has no such term.
    stats : DataFrame of model facts (estimator, rows, groups, R² and its kind, SE type).
    """

    params: pd.DataFrame
    bse: pd.DataFrame
    stats: pd.DataFrame

    def to_frame(self, digits: int = 4) -> pd.DataFrame:
        """The printed table: each term's estimate with its SE in parentheses below it."""
        rows, index = [], []
        for term in self.params.index:
            est = self.params.loc[term]
            se = self.bse.loc[term]
            rows.append(["" if np.isnan(v) else f"{v:.{digits}f}" for v in est])
            rows.append(["" if np.isnan(v) else f"({v:.{digits}f})" for v in se])
            index += [term, ""]
        body = pd.DataFrame(rows, index=index, columns=self.params.columns)
        facts = self.stats.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v))
                               else (f"{v:.{digits}f}" if isinstance(v, float) else str(v)))
        return pd.concat([body, facts])

    def summary(self) -> Summary:
        return Summary("Model comparison", (), [
            ("Coefficients (standard errors in parentheses)", self.to_frame())],
            ("R² is of the regression each estimator runs (within, between, quasi-demeaned, "
             "differences), so it is not comparable across columns.",))

    def __str__(self) -> str:
        return str(self.summary())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def _facts(fit) -> dict:
    if isinstance(fit, OLSResult):
        return {"Estimator": "Pooled OLS", "Observations": fit.nobs, "Groups": None,
                "R-squared": fit.rsquared, "R-squared of": "the data",
                "Standard errors": fit.cov_type}
    return {"Estimator": fit.estimator, "Observations": fit.n_rows, "Groups": fit.n_groups,
            "R-squared": fit.rsquared, "R-squared of": fit.rsquared_kind,
            "Standard errors": fit.cov_type}


def compare(*fits: OLSResult | PanelResult, names: Sequence[str] | None = None) -> Comparison:
    """Put fitted models side by side: coefficients (SEs), rows, groups, R², estimator.

    Parameters
    ----------
    *fits : results of `mlteach.ols`, `within`, `lsdv`, `between`, `first_difference`,
        `swamy_arora`, `rewb` or `quasi_demeaned_gls`.
    names : column headings; default the estimators' short names (numbered if repeated).

    Examples
    --------
    >>> g = mlteach.load("grunfeld")
    >>> f = "inv ~ value + capital"
    >>> compare(mlteach.ols(f, g), mlteach.between(f, g, group="firm"),
    ...         mlteach.within(f, g, group="firm"), mlteach.swamy_arora(f, g, group="firm"))
    """
    if not fits:
        raise ValueError("compare() needs at least one fitted model.")
    for i, f in enumerate(fits):
        if not isinstance(f, (OLSResult, PanelResult)):
            raise TypeError(f"Argument {i + 1} of compare() is a {type(f).__name__}, not a fitted "
                            f"model from mlteach.ols or mlteach.panel.")
    if names is None:
        base = ["Pooled OLS" if isinstance(f, OLSResult) else _SHORT.get(f.kind, f.estimator)
                for f in fits]
        names = [b if base.count(b) == 1 else f"{b} ({base[:i + 1].count(b)})"
                 for i, b in enumerate(base)]
    names = list(names)
    if len(names) != len(fits):
        raise ValueError(f"names has {len(names)} entries for {len(fits)} models.")
    if len(set(names)) != len(names):
        raise ValueError(f"names must be distinct, got {names}.")
    terms: list[str] = []
    for f in fits:
        terms += [t for t in f.params.index if t not in terms]
    params = pd.DataFrame({n: f.params.reindex(terms) for n, f in zip(names, fits)})
    bse = pd.DataFrame({n: f.bse.reindex(terms) for n, f in zip(names, fits)})
    stats = pd.DataFrame({n: _facts(f) for n, f in zip(names, fits)}).astype(object)
    return Comparison(params=params, bse=bse, stats=stats)
