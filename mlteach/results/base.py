"""Tables, printed summaries and renamed-attribute aliases shared by every result object.

A `Summary` is a title, a list of (label, value) facts and a few captioned tables; it prints as
plain text for the console and as HTML in notebooks and the book. `CoefficientTable` gives a
result with `params`, `bse` and `df_inference` its t statistics, p-values, intervals and
coefficient table; `OwnsTables` hands out copies of a result's tables; `renamed` keeps an old
attribute name working for one release, with a `DeprecationWarning` naming the new one.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mlteach.errors import MlteachError, warn


class OwnsTables:
    """Mixin for results: every public Series or DataFrame attribute is handed out as a copy,
    so editing ``fit.params`` (or resid, vcov, ...) changes nothing in the fit, its predictions
    or its summary. Methods that only read may use the stored object through the same name."""

    def __getattribute__(self, name: str):
        value = object.__getattribute__(self, name)
        if isinstance(value, (pd.Series, pd.DataFrame)) and not name.startswith("_"):
            return value.copy()
        return value


def coef_table(params: pd.Series, bse: pd.Series, df: float | None = None,
               level: float = 0.95, stat: str | None = None) -> pd.DataFrame:
    """Estimate, standard error, t (or z) statistic, p-value and confidence interval by term.

    `df` gives Student-t inference with that many degrees of freedom; None gives normal (z).
    """
    est = params.astype(float)
    se = bse.reindex(est.index).astype(float)
    t = est / se
    if df is None:
        p = 2 * stats.norm.sf(np.abs(t))
        q = stats.norm.ppf(0.5 + level / 2)
        stat = stat or "z"
    else:
        p = 2 * stats.t.sf(np.abs(t), df)
        q = stats.t.ppf(0.5 + level / 2, df)
        stat = stat or "t"
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return pd.DataFrame({
        "estimate": est, "std.err": se, stat: t, f"P>|{stat}|": p,
        f"[{lo:.3g}": est - q * se, f"{hi:.3g}]": est + q * se,
    })


def wald_statistics(params: pd.Series, bse: pd.Series, df: float | None = None
                    ) -> tuple[pd.Series, pd.Series]:
    """(tvalues, pvalues): estimate / SE and its two-sided p-value (normal when `df` is None,
    Student t with `df` degrees of freedom otherwise), by term."""
    t = (params.astype(float) / bse.reindex(params.index).astype(float)).rename("t")
    tail = stats.norm.sf(np.abs(t)) if df is None else stats.t.sf(np.abs(t), df)
    return t, pd.Series(2 * tail, index=params.index, name="pvalue")


def confidence_interval(params: pd.Series, bse: pd.Series, df: float | None = None,
                        level: float = 0.95) -> pd.DataFrame:
    """Wald intervals estimate ± q·SE with columns 'lower' and 'upper'."""
    if not 0 < level < 1:
        raise MlteachError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}.")
    q = stats.norm.ppf(0.5 + level / 2) if df is None else stats.t.ppf(0.5 + level / 2, df)
    return pd.DataFrame({"lower": params - q * bse, "upper": params + q * bse})


def renamed(old: str, new: str) -> property:
    """A read-only attribute `old` that returns `new` and warns that it was renamed.

    Old names stay one release so that existing code keeps running; the `DeprecationWarning`
    names the caller's line and the new name (see `mlteach.results` for the canonical names).
    """

    def get(self):
        warn(f"{type(self).__name__}.{old} is renamed {new}: use .{new} ({old} will be "
             f"removed in the next release).", DeprecationWarning)
        return getattr(self, new)

    return property(get, doc=f"Deprecated alias of `{new}` (the name before issue 14).")


class CoefficientTable(OwnsTables):
    """Mixin for results with `params`, `bse` and `df_inference` (None for normal inference).

    Gives every least-squares result the same t statistics, p-values, intervals and table.
    """

    @property
    def fixef(self) -> pd.Series:
        """Alias of `params`, the name mlteach.lmm and mlteach.glmm results (and lme4) use."""
        return self.params

    @property
    def tvalues(self) -> pd.Series:
        """t (or z) statistics estimate / SE by term."""
        return self.params / self.bse

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the t (or z) statistics by term."""
        return self.to_frame().iloc[:, 3]

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals estimate ± q·SE (t quantiles with `df_inference` df; normal if None)."""
        return confidence_interval(self.params, self.bse, self.df_inference, level)

    def to_frame(self, level: float = 0.95) -> pd.DataFrame:
        """The coefficient table (estimate, SE, t or z, p-value, interval) indexed by term."""
        return coef_table(self.params, self.bse, self.df_inference, level)


def format_value(value) -> str:
    """A number as printed in summaries: 4 significant digits, scientific when very large/small."""
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
            return f"{value:.4e}"
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


@dataclass(frozen=True)
class Summary:
    """A printable, notebook-friendly summary of a fitted model or a test."""

    title: str
    facts: Sequence[tuple[str, object]] = ()
    tables: Sequence[tuple[str, pd.DataFrame]] = ()
    notes: Sequence[str] = field(default_factory=tuple)

    def __str__(self) -> str:
        lines = [self.title, "=" * len(self.title)]
        if self.facts:
            width = max(len(k) for k, _ in self.facts)
            lines += [f"{k:<{width}}  {format_value(v)}" for k, v in self.facts]
        for caption, table in self.tables:
            lines += ["", caption, table.to_string(float_format=lambda v: f"{v:.4f}")]
        if self.notes:
            lines += [""] + [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        out = [f"<div class='mlteach-summary'><strong>{html.escape(self.title)}</strong>"]
        if self.facts:
            out.append("<table><tbody>" + "".join(
                f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                f"<td>{html.escape(format_value(v))}</td></tr>" for k, v in self.facts) + "</tbody></table>")
        for caption, table in self.tables:
            out.append(f"<p><em>{html.escape(caption)}</em></p>")
            out.append(table.to_html(float_format=lambda v: f"{v:.4f}", border=0))
        for n in self.notes:
            out.append(f"<p><small>Note: {html.escape(n)}</small></p>")
        out.append("</div>")
        return "\n".join(out)
