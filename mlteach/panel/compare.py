"""Several fitted models side by side in one table (as Stata's esttab or linearmodels' compare)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from mlteach.results.base import Summary
from mlteach.errors import DataTypeError, MlteachError
from mlteach.ols import OLSResult
from mlteach.panel.results import PanelResult

_NOTE = ("R² is of the regression each estimator runs (within, between, quasi-demeaned, "
         "differences), so it is not comparable across columns.")


@dataclass(frozen=True)
class Comparison:
    """Coefficients and standard errors of several fits, aligned by term.

    Attributes
    ----------
    params
        DataFrame of coefficients, one row per term (in order of first appearance) and
        one column per model; NaN where a model has no such term.
    bse
        DataFrame of standard errors, laid out as `params`.
    stats
        DataFrame of model facts (estimator, rows, groups, R² and its kind, SE type).
    """

    params: pd.DataFrame
    bse: pd.DataFrame
    stats: pd.DataFrame

    def to_frame(self, digits: int = 4) -> pd.DataFrame:
        """The table as text: each term's estimate with its SE in parentheses below it, then the
        model facts (the printed summary lists the estimators above the table instead)."""
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
        """The estimators by column name, then the table without the long estimator names."""
        legend = [(name, est) for name, est in self.stats.loc["Estimator"].items()]
        return Summary("Model comparison", legend, [
            ("Coefficients (standard errors in parentheses)",
             self.to_frame().drop(index="Estimator"))], (_NOTE,))

    def __str__(self) -> str:
        return str(self.summary())

    __repr__ = __str__

    def _repr_html_(self, digits: int = 4) -> str:
        """A narrow table for notebooks and phones: estimate and (SE) share a cell, term names
        may wrap after ':', '_', '[', '.' and ',', and the table scrolls if it is still wide."""
        cell = "style='padding:0.15em 0.5em;text-align:right;vertical-align:top'"
        head = "style='padding:0.15em 0.5em;text-align:left;vertical-align:top;" \
               "overflow-wrap:anywhere;max-width:12em'"
        out = ["<div class='mlteach-summary mlteach-compare' "
               "style='max-width:100%;overflow-x:auto'>",
               "<strong>Model comparison</strong>",
               "<p><em>Coefficients (standard errors in parentheses)</em></p>",
               "<table style='border-collapse:collapse'>",
               "<thead><tr><th></th>" + "".join(f"<th {cell}>{_breakable(c)}</th>"
                                                for c in self.params.columns) + "</tr></thead>",
               "<tbody>"]
        for term in self.params.index:
            cells = []
            for v, e in zip(self.params.loc[term], self.bse.loc[term]):
                cells.append("" if np.isnan(v) else f"{v:.{digits}f}<br>({e:.{digits}f})")
            out.append(f"<tr><th {head}>{_breakable(term)}</th>"
                       + "".join(f"<td {cell}>{c}</td>" for c in cells) + "</tr>")
        facts = self.to_frame(digits).loc[list(self.stats.index)].drop(index="Estimator")
        for label, row in facts.iterrows():
            out.append(f"<tr><th {head}>{_breakable(label)}</th>"
                       + "".join(f"<td {cell}>{_breakable(v)}</td>" for v in row) + "</tr>")
        out += ["</tbody></table>", "<p><small>Models: " + "; ".join(
            f"<strong>{_breakable(n)}</strong> = {_breakable(e)}"
            for n, e in self.stats.loc["Estimator"].items()) + ".</small></p>",
            f"<p><small>Note: {html.escape(_NOTE)}</small></p>", "</div>"]
        return "\n".join(out)


def _breakable(text: object) -> str:
    """HTML-escaped text with a line-break opportunity after ':', '_', '[', '.', ',' and '/'."""
    return re.sub(r"([:_\[.,/])", r"\1<wbr>", html.escape(str(text)))


def _coefficients(fit: Any) -> pd.Series | None:
    """β̂ by term: `params` (every mlteach result has it, and `fixef` as its alias), else
    `fixef` for other objects that have only that name; None if neither."""
    return getattr(fit, "params", getattr(fit, "fixef", None))


def _groups(fit: Any) -> object:
    n = getattr(fit, "ngroups", None)
    if isinstance(n, dict):
        return next(iter(n.values())) if len(n) == 1 else ", ".join(
            f"{g}: {k}" for g, k in n.items())
    return n


def _short_name(fit: Any) -> str:
    """The column heading: short enough for a phone (the full names print above the table).
    mlteach's OLS and panel results name themselves (`short_name`)."""
    if isinstance(fit, (OLSResult, PanelResult)):
        return fit.short_name
    return {"LMMResult": "LMM", "GLMMResult": "GLMM"}.get(type(fit).__name__,
                                                           type(fit).__name__)


def _facts(fit: Any) -> dict:
    if isinstance(fit, OLSResult):
        return {"Estimator": "Pooled OLS", "Observations": fit.nobs, "Groups": None,
                "R-squared": fit.rsquared, "R-squared of": "the data",
                "Standard errors": fit.cov_type}
    if isinstance(fit, PanelResult):
        return {"Estimator": fit.estimator, "Observations": fit.n_rows, "Groups": fit.ngroups,
                "R-squared": fit.rsquared, "R-squared of": fit.rsquared_kind,
                "Standard errors": fit.cov_type}
    if type(fit).__name__ == "LMMResult":
        est = "Linear mixed model (" + ("REML" if fit.reml else "ML") + ")"
    elif type(fit).__name__ == "GLMMResult":
        est = f"Generalized linear mixed model ({fit.family}, {fit.method})"
    else:
        est = type(fit).__name__
    return {"Estimator": est, "Observations": getattr(fit, "nobs", None),
            "Groups": _groups(fit), "R-squared": None, "R-squared of": None,
            "Standard errors": getattr(fit, "cov_type", "model-based")}


def _check_fit(i: int, fit: Any) -> None:
    coef = _coefficients(fit)
    if not (isinstance(coef, pd.Series) and isinstance(getattr(fit, "bse", None), pd.Series)):
        raise DataTypeError(f"Argument {i + 1} of compare() is a {type(fit).__name__}, not a fitted "
                        f"model: compare() needs coefficients (`params` or `fixef`) and "
                        f"standard errors (`bse`) by term, as results of mlteach.ols, "
                        f"mlteach.panel, mlteach.lmm and mlteach.glmm have.")


def compare(*fits: Any, names: Sequence[str] | None = None) -> Comparison:
    """Put fitted models side by side: coefficients (SEs), rows, groups, R², estimator.

    Parameters
    ----------
    *fits : results of `mlteach.ols`, `within`, `lsdv`, `between`, `first_difference`,
        `swamy_arora`, `rewb`, `quasi_demeaned_gls`, `mlteach.lmm` or `mlteach.glmm` (any
        result with coefficients ``params`` or ``fixef`` and standard errors ``bse``).
    names : column headings. Default: short names ("Pooled", "Between", "Within", "LSDV",
        "First diff.", "RE (Swamy–Arora)", "GLS (θ given)", "REWB", "LMM", "GLMM"), numbered
        "Within 1", "Within 2", ... when two fits are of the same kind. The summary lists each
        column's full estimator name above the table.

    Examples
    --------
    >>> g = mlteach.load("grunfeld")
    >>> f = "inv ~ value + capital"
    >>> compare(mlteach.ols(f, g), mlteach.between(f, g, group="firm"),
    ...         mlteach.within(f, g, group="firm"), mlteach.swamy_arora(f, g, group="firm"))
    """
    if not fits:
        raise MlteachError("compare() needs at least one fitted model.")
    for i, f in enumerate(fits):
        _check_fit(i, f)
    if names is None:
        base = [_short_name(f) for f in fits]
        names = [b if base.count(b) == 1 else f"{b} {base[:i + 1].count(b)}"
                 for i, b in enumerate(base)]
    names = list(names)
    if len(names) != len(fits):
        raise MlteachError(f"names has {len(names)} entries for {len(fits)} models.")
    if len(set(names)) != len(names):
        raise MlteachError(f"names must be distinct, got {names}.")
    coefs = [_coefficients(f) for f in fits]
    terms: list[str] = []
    for c in coefs:
        terms += [t for t in c.index if t not in terms]
    params = pd.DataFrame({n: c.reindex(terms) for n, c in zip(names, coefs)})
    bse = pd.DataFrame({n: f.bse.reindex(terms) for n, f in zip(names, fits)})
    stats = pd.DataFrame({n: _facts(f) for n, f in zip(names, fits)}).astype(object)
    return Comparison(params=params, bse=bse, stats=stats)
