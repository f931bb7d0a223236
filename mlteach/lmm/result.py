"""The result of a linear mixed-model fit: estimates, random effects, predictions and printing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlteach.results.base import Summary, coef_table, confidence_interval, wald_statistics
from mlteach.design import Design
from mlteach.errors import MlteachError, UnknownVariableError
from mlteach.mixed.offset import Offset
from mlteach.mixed.predict import random_part
from mlteach.mixed.structure import ReStructure, varcorr_rows

Frames = pd.DataFrame | dict[str, pd.DataFrame]


@dataclass(frozen=True)
class LMMResult:
    """A fitted linear mixed model (REML or ML). Every attribute is set when it is returned.

    Tables and dicts (`fixef`, `params`, `bse`, `vcov`, `theta`, `cov_re`, `ranef`,
    `ranef_condvar`, `ranef_condcov`, `ngroups`, `re_terms`, `fitted`, `resid`, `optinfo` and
    the ``get_*`` methods) return a fresh copy at each access: editing one never changes the
    result, its other attributes or its predictions. The result also keeps its own copy of the
    rows used, so editing the DataFrame passed to `mlteach.lmm` afterwards changes nothing.

    Attributes
    ----------
    formula
        the lme4-style formula as given.
    reml
        True for a REML fit, False for maximum likelihood.
    fixef
        fixed effects β̂ by term (as lme4's ``fixef``).
    bse
        their standard errors, by term (``sqrt(diag(vcov))``).
    vcov
        σ̂²(R_X'R_X)⁻¹, the covariance of β̂ given θ̂ (lme4's ``vcov``).
    sigma
        σ̂, the residual standard deviation.
    theta
        θ̂, the elements of the relative covariance factors (lme4's ``getME(m, "theta")``).
    loglik
        the maximised log-likelihood; for a REML fit the *restricted* one, as lme4's
        ``logLik``.
    cov_re
        covariance matrix of the random effects (rows and columns by random term), in the
        units of y; a dict keyed by grouping factor when there are several.
    ranef
        conditional modes (BLUPs) b̂, one row per group level (labels as strings), one
        column per random term; a dict keyed by grouping factor when there are several.
    ranef_condvar
        conditional variances of b given y at the estimates (the diagonal of
        lme4's ``condVar``), same shape as `ranef`.
    ranef_condcov
        the full conditional covariance matrix of each level's random effects
        given y (lme4's ``condVar`` array, one q × q block per level): rows indexed by
        (level, term), columns by term, so ``ranef_condcov.loc["308"]`` is level 308's
        matrix. Terms of one factor in separate ``||`` blocks keep their conditional
        covariance (lme4 reports only the diagonal blocks); a dict keyed by grouping factor
        when there are several. For prediction intervals: Var(z'b_j | y) = z' C_j z.
    singular
        a variance at zero or a correlation at ±1, as lme4's ``isSingular(tol = 1e-4)``:
        some diagonal element of a T_k is below 1e-4, with T_k for random-effect columns
        scaled to root mean square 1 (the same as lme4 for intercepts; for slopes the verdict
        does not change with the units of the covariate).
    converged
        False if the optimiser's checks failed (a `ConvergenceWarning` was issued).
    nobs
        rows used. ngroups : levels per grouping factor.
    n_params
        number of estimated parameters, p + len(θ) + 1 (lme4's df of ``logLik``).
    response
        name of the outcome. group_names : the grouping factors.
    re_terms
        the random terms (column names) of each grouping factor.
    data_index
        row labels of the data used. fitted, resid : ŷ = Xβ̂ + Zb̂ (+ offset) and y − ŷ.
    offset
        the ``offset()`` terms (None without them); predictions add them.
    weights
        the name of the prior-weights column, or None.
    optinfo
        optimiser details (evaluations, gradient, Hessian eigenvalues, path taken).
    """

    formula: str
    reml: bool
    _fixef: pd.Series
    _bse: pd.Series
    _vcov: pd.DataFrame
    sigma: float
    _theta: pd.Series
    loglik: float
    _cov_re: Frames
    _ranef: Frames
    _ranef_condvar: Frames
    _ranef_condcov: Frames
    singular: bool
    converged: bool
    nobs: int
    _ngroups: dict[str, int]
    n_params: int
    response: str
    group_names: tuple[str, ...]
    _re_terms: dict[str, list[str]]
    data_index: pd.Index = field(repr=False)
    _fitted: pd.Series = field(repr=False)
    _resid: pd.Series = field(repr=False)
    _optinfo: dict = field(repr=False)
    design: Design = field(repr=False)
    structure: ReStructure = field(repr=False)
    offset: Offset | None = field(default=None, repr=False)
    weights: str | None = None


    # Every table and dict the result hands out is a fresh copy: editing `fit.params` or
    # `fit.ranef` never changes the result, its other attributes or later predictions.
    @property
    def fixef(self):
        return _copied(self._fixef)

    @property
    def bse(self):
        return _copied(self._bse)

    @property
    def vcov(self):
        return _copied(self._vcov)

    @property
    def theta(self):
        return _copied(self._theta)

    @property
    def cov_re(self):
        return _copied(self._cov_re)

    @property
    def ranef(self):
        return _copied(self._ranef)

    @property
    def ranef_condvar(self):
        return _copied(self._ranef_condvar)

    @property
    def ranef_condcov(self):
        return _copied(self._ranef_condcov)

    @property
    def ngroups(self):
        return _copied(self._ngroups)

    @property
    def re_terms(self):
        return _copied(self._re_terms)

    @property
    def fitted(self):
        return _copied(self._fitted)

    @property
    def resid(self):
        return _copied(self._resid)

    @property
    def optinfo(self):
        return _copied(self._optinfo)

    # ---------------------------------------------------------------- per-factor access
    def _one(self, value: Frames, factor: str | None) -> pd.DataFrame:
        if isinstance(value, pd.DataFrame):
            if factor not in (None, self.group_names[0]):
                raise UnknownVariableError(f"No grouping factor {factor!r}; the model has "
                               f"{self.group_names[0]!r}.")
            return value
        if factor is None:
            raise MlteachError(f"The model has several grouping factors "
                             f"({', '.join(self.group_names)}); name one.")
        if factor not in value:
            raise UnknownVariableError(f"No grouping factor {factor!r}; the model has "
                           f"{', '.join(self.group_names)}.")
        return value[factor]

    def get_ranef(self, factor: str | None = None) -> pd.DataFrame:
        """Conditional modes of one grouping factor as a DataFrame (any number of factors)."""
        return self._one(self._ranef, factor).copy()

    def get_condvar(self, factor: str | None = None) -> pd.DataFrame:
        """Conditional variances of one grouping factor's random effects."""
        return self._one(self._ranef_condvar, factor).copy()

    def get_condcov(self, factor: str | None = None) -> pd.DataFrame:
        """Conditional covariance matrices of one grouping factor's random effects, rows
        (level, term), columns term."""
        return self._one(self._ranef_condcov, factor).copy()

    def get_cov_re(self, factor: str | None = None) -> pd.DataFrame:
        """Covariance matrix of one grouping factor's random effects."""
        return self._one(self._cov_re, factor).copy()

    @property
    def params(self) -> pd.Series:
        """Alias of `fixef`, the name mlteach.ols and mlteach.panel results (and statsmodels) use
        (a copy, as every table of the result)."""
        return _copied(self._fixef)

    # ---------------------------------------------------------------- likelihood summaries
    @property
    def deviance(self) -> float:
        """−2 log-likelihood (the REML criterion for REML fits, lme4's ``REMLcrit``)."""
        return -2.0 * self.loglik

    @property
    def aic(self) -> float:
        """AIC = −2 logLik + 2 n_params (for REML fits, of the REML log-likelihood, as lme4)."""
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """BIC = −2 logLik + log(n) n_params (for REML fits, of the REML likelihood, as lme4)."""
        return -2.0 * self.loglik + np.log(self.nobs) * self.n_params

    def varcorr(self) -> pd.DataFrame:
        """Variance components in one tidy table: variance, SD and correlations per factor.

        Rows are (group, term) pairs plus ``("Residual", "")``; correlations are given between
        random terms of the same factor (``corr with <term>`` columns), as lme4's ``VarCorr``.
        """
        rows = varcorr_rows({g: self.get_cov_re(g) for g in self.group_names})
        rows.append({"group": "Residual", "term": "", "variance": self.sigma ** 2,
                     "std.dev": self.sigma})
        return pd.DataFrame(rows).set_index(["group", "term"])

    def icc(self) -> float | pd.Series:
        """Intraclass correlation τ²/(τ² + σ²) of a random-intercept model.

        For one grouping factor this is the correlation between two outcomes of the same group
        and the share of the (conditional on x) outcome variance that lies between groups. For
        several intercept-only factors it returns, per factor, τ_k²/(Σ_l τ_l² + σ²): the share
        of variance at that level (the correlation of two rows sharing that factor only, for
        crossed factors; sharing it and nothing below, for nested ones).

        Refused for random slopes: then the between-group variance depends on x, so no single
        ICC exists. Compute it at a value of x yourself from `cov_re`.
        """
        for g, terms in self.re_terms.items():
            if terms != ["Intercept"]:
                raise MlteachError(
                    f"icc() is defined for random-intercept models only, but {g!r} has random "
                    f"terms {terms}: with random slopes the between-group variance changes with "
                    f"the covariate, so there is no single intraclass correlation. At x = 0 it "
                    f"is cov_re.loc['Intercept', 'Intercept'] / (that + sigma**2).")
        taus = pd.Series({g: float(self.get_cov_re(g).iloc[0, 0]) for g in self.group_names})
        shares = taus / (taus.sum() + self.sigma ** 2)
        return float(shares.iloc[0]) if len(shares) == 1 else shares.rename("icc")

    # ---------------------------------------------------------------- inference
    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals β̂ ± z·SE for the fixed effects (lme4's ``confint(method = "Wald")``)."""
        return confidence_interval(self.fixef, self.bse, None, level)

    @property
    def tvalues(self) -> pd.Series:
        """t = β̂ / SE by term (lme4's "t value")."""
        return wald_statistics(self.fixef, self.bse)[0]

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of `tvalues` from the normal distribution (as `to_frame`; with
        few groups this is optimistic)."""
        return wald_statistics(self.fixef, self.bse)[1]

    def to_frame(self, level: float = 0.95) -> pd.DataFrame:
        """Fixed effects: estimate, SE, t = estimate/SE, normal p-value and Wald interval.

        The p-value and interval treat t as standard normal; with few groups this is
        optimistic (lme4 prints no p-values for this reason). Prefer a likelihood-ratio test.
        """
        table = coef_table(self.fixef, self.bse, None, level, stat="t")
        return table.rename(columns={"P>|t|": "P>|t| (normal)"})

    # ---------------------------------------------------------------- prediction
    def predict(self, newdata: pd.DataFrame | None = None, include_random: bool = True
                ) -> pd.Series:
        """Predictions Xβ̂ (+ Zb̂ when `include_random`) for the fitted rows or for `newdata`.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict for; the rows used in fitting when None. It needs the fixed-effect
            variables and, when `include_random`, the grouping columns and the variables of
            the random terms.
        include_random : bool
            True adds each row's group random effects b̂ (a prediction for *that* group);
            False gives the population-average line Xβ̂ for every row.

        Notes
        -----
        Groups are matched to the levels seen in fitting by value: a group stored as 1.0 in
        the fitted data is the group 1 of `newdata`; text and numbers are never matched to
        each other (the text '1' is not the number 1). For a nested or interaction factor
        such as ``school:class`` every component must match.

        Rows whose group was not seen in fitting, or whose group is missing (NaN), get random
        effects 0 for that grouping factor: their prediction is the population-average line
        (for that factor), the best guess for a new group, as lme4's ``predict(...,
        allow.new.levels = TRUE)``. A warning (`MlteachWarning`) counts them per grouping
        factor; rows of groups seen in fitting keep their b̂.
        """
        fixef = self._fixef.to_numpy()
        if newdata is None:
            if include_random:
                return self._fitted.rename("predicted")
            X = self.design.X
            return pd.Series(X @ fixef + self._offset_of(self.design.data, "the data"),
                             index=self.data_index, name="predicted")
        X = self.design.encode(newdata)
        out = X @ fixef + self._offset_of(newdata, "newdata")
        if include_random:
            out = out + random_part(self.structure, self._ranef_blocks(), self.design.data,
                                    newdata)
        return pd.Series(out, index=newdata.index, name="predicted")

    def _offset_of(self, data: pd.DataFrame, where: str) -> np.ndarray | float:
        """The model's ``offset()`` terms evaluated on `data` (0 without offsets)."""
        return 0.0 if self.offset is None else self.offset.values(data, where)

    def _ranef_blocks(self) -> list[np.ndarray]:
        return [self._one(self._ranef, b.factor)[b.columns].to_numpy()
                for b in self.structure.blocks]

    # ---------------------------------------------------------------- printing
    def summary(self) -> Summary:
        """Variances and standard deviations of the random effects, correlations, group counts
        and the fixed-effects table."""
        method = "REML (restricted maximum likelihood)" if self.reml else "maximum likelihood (ML)"
        ll_label = "Log-likelihood (REML)" if self.reml else "Log-likelihood"
        facts = [("Formula", self.formula), ("Estimation", method), ("Observations", self.nobs)]
        if self.weights is not None:
            facts.append(("Prior weights", f"{self.weights} (residual variance sigma^2 / w)"))
        if self.offset is not None:
            facts.append(("Offset", " + ".join(self.offset.exprs)))
        facts += [(f"Groups: {g}", n) for g, n in self.ngroups.items()]
        facts += [(ll_label, f"{self.loglik:.4f}"), ("AIC", f"{self.aic:.4f}"),
                  ("BIC", f"{self.bic:.4f}"), ("Residual SD (sigma)", f"{self.sigma:.4f}"),
                  ("Converged", "yes" if self.converged else "NO: see the warning"),
                  ("Singular (boundary) fit", "yes" if self.singular else "no")]
        vc = self.varcorr()
        vc = vc.rename(columns={"variance": "Variance (σ², τ²)", "std.dev": "Std. deviation"})
        for col in [c for c in vc.columns if c.startswith("corr with")]:
            # A term has no correlation with itself or with the residual: print blank, not NaN.
            vc[col] = vc[col].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
        tables = [("Random effects: variances and standard deviations (SD = √variance)", vc),
                  ("Fixed effects (t and intervals use the normal approximation)",
                   self.to_frame())]
        notes = []
        if self.singular:
            notes.append("A variance is (near) zero or a correlation is ±1: a boundary "
                         "('singular') fit. Consider a simpler random-effects structure.")
        return Summary("Linear mixed model", facts, tables, notes)

    def __str__(self) -> str:
        return str(self.summary())

    # The dataclass default would print every field, fitted values and design included
    # (thousands of characters); a notebook showing the result as text gets the summary.
    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def _copied(value):
    """A deep copy of a pandas object, array, list or dict of them (other values as they are)."""
    if isinstance(value, (pd.Series, pd.DataFrame, np.ndarray)):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


__all__ = ["LMMResult"]
