"""Tests of statistics as objects: one `TestResult` for Wald, Hausman, Mundlak and likelihood-ratio
tests, and the Wald test of coefficients that every least-squares result offers.

A test prints what a reader needs to judge it (style guide, point 6): the null hypothesis in
words, the statistic, its distribution under H0 with the degrees of freedom, the p-value, and
the caveats found while computing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mlteach.results.base import OwnsTables, Summary, format_value, renamed


@dataclass(frozen=True)
class TestResult(OwnsTables):
    """A hypothesis test: null hypothesis, statistic, distribution with df, and p-value.

    Subclasses add their own facts as keyword-only fields (``@dataclass(frozen=True,
    kw_only=True)``), so every test keeps these names, its `summary()`, `to_frame()` and HTML.

    Attributes
    ----------
    name
        the test's name ("Hausman test (fixed vs random effects)", ...).
    null
        the null hypothesis in words.
    statistic
        the test statistic (W/q for an F test, W or 2·Δlog L for a χ² test).
    df
        degrees of freedom (numerator df for F).
    df_denom
        denominator df for an F test, else None (χ² or a χ² mixture).
    pvalue
        upper-tail p-value.
    details
        a table behind the statistic (the compared coefficients, the fitted models).
    notes
        plain-language caveats (a generalised inverse was used, a boundary was tested).
    distribution
        the statistic's distribution under H0 as printed; by default ``chi2(df)``
        or ``F(df, df_denom)``. A test with another reference distribution (the LRT's
        ``0.5 chi2(0) + 0.5 chi2(1)`` mixture at a variance boundary) passes its own.
    """

    __test__ = False  # not a pytest test class

    name: str
    null: str
    statistic: float
    df: int
    df_denom: int | None = None
    pvalue: float = float("nan")
    details: pd.DataFrame | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()
    distribution: str = ""

    def __post_init__(self) -> None:
        if not self.distribution:
            shown = (f"chi2({self.df})" if self.df_denom is None
                     else f"F({self.df}, {self.df_denom})")
            object.__setattr__(self, "distribution", shown)

    p_value = renamed("p_value", "pvalue")

    def to_frame(self) -> pd.DataFrame:
        """One row indexed by the test's name: statistic, df (and df_denom), distribution, p."""
        row = {"statistic": self.statistic, "df": self.df}
        if self.df_denom is not None:
            row["df_denom"] = self.df_denom
        row.update(distribution=self.distribution, pvalue=self.pvalue)
        return pd.DataFrame([row], index=pd.Index([self.name], name="test"))

    def summary(self) -> Summary:
        """H0, the statistic, its distribution under H0 with df, the p-value and details."""
        facts = [("H0", self.null), ("Statistic", self.statistic),
                 ("Distribution under H0", self.distribution), ("df", self.df),
                 ("p-value", self.pvalue)]
        tables = [("Details", self.details)] if self.details is not None else []
        return Summary(self.name, facts, tables, self.notes)

    def __str__(self) -> str:
        df = self.df if self.df_denom is None else f"{self.df}, {self.df_denom}"
        s = (f"{self.name}\nH0: {self.null}\nstatistic = {format_value(self.statistic)} ~ "
             f"{self.distribution} under H0 (df = {df}), p-value = {format_value(self.pvalue)}")
        return s + "".join(f"\nNote: {n}" for n in self.notes)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def wald_test(params: pd.Series, vcov: pd.DataFrame, terms: Sequence[str],
              df_denom: int | None, null: str, name: str = "Wald test") -> TestResult:
    """Wald test that the coefficients of `terms` are jointly zero.

    W = b'V⁻¹b is χ²(q) under H0 (large samples); with `df_denom`, W/q is reported as
    F(q, df_denom).
    """
    terms = list(terms)
    b = params[terms].to_numpy()
    V = vcov.loc[terms, terms].to_numpy()
    W = float(b @ np.linalg.solve(V, b))
    q = len(terms)
    if df_denom is None:
        return TestResult(name, null, W, q, None, float(stats.chi2.sf(W, q)))
    return TestResult(name, null, W / q, q, int(df_denom), float(stats.f.sf(W / q, q, df_denom)))
