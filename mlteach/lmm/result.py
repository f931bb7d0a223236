"""The result of a linear mixed-model fit: estimates, random effects, predictions and printing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlteach._tables import Summary, coef_table, confidence_interval
from mlteach.design import Design, GroupIndex, check_columns
from mlteach.lmm.structure import ReStructure

Frames = pd.DataFrame | dict[str, pd.DataFrame]


@dataclass(frozen=True)
class LMMResult:
    """A fitted linear mixed model (REML or ML). Every attribute is set when it is returned.

    Attributes
    ----------
    formula : the lme4-style formula as given.
    reml : True for a REML fit, False for maximum likelihood.
    fixef, bse : fixed effects β̂ and their standard errors, by term (as lme4's ``fixef``,
        ``sqrt(diag(vcov))``).
    vcov : σ̂²(R_X'R_X)⁻¹, the covariance of β̂ given θ̂ (lme4's ``vcov``).
    sigma : σ̂, the residual standard deviation.
    theta : θ̂, the elements of the relative covariance factors (lme4's ``getME(m, "theta")``).
    loglik : the maximised log-likelihood; for a REML fit the *restricted* one, as lme4's
        ``logLik``.
    cov_re : covariance matrix of the random effects (rows and columns by random term), in the
        units of y; a dict keyed by grouping factor when there are several.
    ranef : conditional modes (BLUPs) b̂, one row per group level (labels as strings), one
        column per random term; a dict keyed by grouping factor when there are several.
    ranef_condvar : conditional variances of b given y at the estimates (the diagonal of
        lme4's ``condVar``), same shape as `ranef`.
    ranef_condcov : the full conditional covariance matrix of each level's random effects
        given y (lme4's ``condVar`` array, one q × q block per level): rows indexed by
        (level, term), columns by term, so ``ranef_condcov.loc["308"]`` is level 308's
        matrix. Terms of one factor in separate ``||`` blocks keep their conditional
        covariance (lme4 reports only the diagonal blocks); a dict keyed by grouping factor
        when there are several. For prediction intervals: Var(z'b_j | y) = z' C_j z.
    singular : a variance at zero or a correlation at ±1, as lme4's ``isSingular(tol = 1e-4)``:
        some diagonal element of a T_k is below 1e-4, with T_k for random-effect columns
        scaled to root mean square 1 (the same as lme4 for intercepts; for slopes the verdict
        does not change with the units of the covariate).
    converged : False if the optimiser's checks failed (a `ConvergenceWarning` was issued).
    nobs : rows used. ngroups : levels per grouping factor.
    n_params : number of estimated parameters, p + len(θ) + 1 (lme4's df of ``logLik``).
    response : name of the outcome. group_names : the grouping factors.
    re_terms : the random terms (column names) of each grouping factor.
    data_index : row labels of the data used. fitted, resid : ŷ = Xβ̂ + Zb̂ and y − ŷ.
    optinfo : optimiser details (evaluations, gradient, Hessian eigenvalues, path taken).
    """

    formula: str
    reml: bool
    fixef: pd.Series
    bse: pd.Series
    vcov: pd.DataFrame
    sigma: float
    theta: pd.Series
    loglik: float
    cov_re: Frames
    ranef: Frames
    ranef_condvar: Frames
    ranef_condcov: Frames
    singular: bool
    converged: bool
    nobs: int
    ngroups: dict[str, int]
    n_params: int
    response: str
    group_names: tuple[str, ...]
    re_terms: dict[str, list[str]]
    data_index: pd.Index = field(repr=False)
    fitted: pd.Series = field(repr=False)
    resid: pd.Series = field(repr=False)
    optinfo: dict = field(repr=False)
    design: Design = field(repr=False)
    structure: ReStructure = field(repr=False)

    # ---------------------------------------------------------------- per-factor access
    def _one(self, value: Frames, factor: str | None) -> pd.DataFrame:
        if isinstance(value, pd.DataFrame):
            if factor not in (None, self.group_names[0]):
                raise KeyError(f"No grouping factor {factor!r}; the model has "
                               f"{self.group_names[0]!r}.")
            return value
        if factor is None:
            raise ValueError(f"The model has several grouping factors "
                             f"({', '.join(self.group_names)}); name one.")
        if factor not in value:
            raise KeyError(f"No grouping factor {factor!r}; the model has "
                           f"{', '.join(self.group_names)}.")
        return value[factor]

    def get_ranef(self, factor: str | None = None) -> pd.DataFrame:
        """Conditional modes of one grouping factor as a DataFrame (any number of factors)."""
        return self._one(self.ranef, factor)

    def get_condvar(self, factor: str | None = None) -> pd.DataFrame:
        """Conditional variances of one grouping factor's random effects."""
        return self._one(self.ranef_condvar, factor)

    def get_condcov(self, factor: str | None = None) -> pd.DataFrame:
        """Conditional covariance matrices of one grouping factor's random effects, rows
        (level, term), columns term."""
        return self._one(self.ranef_condcov, factor)

    def get_cov_re(self, factor: str | None = None) -> pd.DataFrame:
        """Covariance matrix of one grouping factor's random effects."""
        return self._one(self.cov_re, factor)

    @property
    def params(self) -> pd.Series:
        """Alias of `fixef`, the name mlteach.ols and mlteach.panel results (and statsmodels) use."""
        return self.fixef

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
        rows = []
        for g in self.group_names:
            cov = self.get_cov_re(g)
            sd = np.sqrt(np.diag(cov.to_numpy()))
            for i, term in enumerate(cov.index):
                row = {"group": g, "term": term, "variance": cov.iloc[i, i], "std.dev": sd[i]}
                for j in range(i):
                    denom = sd[i] * sd[j]
                    row[f"corr with {cov.index[j]}"] = (cov.iloc[i, j] / denom if denom > 0
                                                        else np.nan)
                rows.append(row)
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
                raise ValueError(
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

        Groups of `newdata` not seen in fitting get random effects 0: their prediction is the
        population-average line Xβ̂, the best guess for a new group. Random effects of a
        grouping factor are added only for the levels it had in the data used for the fit.
        """
        if newdata is None:
            if include_random:
                return self.fitted.rename("predicted")
            X = self.design.X
            return pd.Series(X @ self.fixef.to_numpy(), index=self.data_index, name="predicted")
        X = self.design.encode(newdata)
        out = X @ self.fixef.to_numpy()
        if include_random:
            for block, b in zip(self.structure.blocks, self._ranef_blocks()):
                check_columns(newdata, list(block.term.factor), "grouping variable")
                Z = block.encode(newdata)
                labels = _labels(newdata, block.term.factor)
                pos = pd.Index(block.groups.levels).get_indexer(labels)
                seen = pos >= 0
                contrib = np.zeros(len(newdata))
                contrib[seen] = np.einsum("ik,ik->i", Z[seen], b[pos[seen]])
                out = out + contrib
        return pd.Series(out, index=newdata.index, name="predicted")

    def _ranef_blocks(self) -> list[np.ndarray]:
        return [self.get_ranef(b.factor)[b.columns].to_numpy() for b in self.structure.blocks]

    # ---------------------------------------------------------------- printing
    def summary(self) -> Summary:
        """Variances and standard deviations of the random effects, correlations, group counts
        and the fixed-effects table."""
        method = "REML (restricted maximum likelihood)" if self.reml else "maximum likelihood (ML)"
        ll_label = "Log-likelihood (REML)" if self.reml else "Log-likelihood"
        facts = [("Formula", self.formula), ("Estimation", method), ("Observations", self.nobs)]
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


def _labels(data: pd.DataFrame, factor: tuple[str, ...]) -> pd.Index:
    """Group labels as strings, joined with ':' for an interaction (as `GroupIndex`)."""
    parts = [data[c].astype(str).to_numpy() for c in factor]
    labels = parts[0]
    for p in parts[1:]:
        labels = np.char.add(np.char.add(labels.astype(str), ":"), p.astype(str))
    return pd.Index(labels.astype(str), dtype=object)


__all__ = ["LMMResult"]
