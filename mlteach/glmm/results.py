"""The fitted random-intercept GLMM: estimates, conditional modes, predictions and summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mlteach.results.base import OwnsTables, Summary, coef_table, confidence_interval
from mlteach.design import check_columns
from mlteach.errors import GroupingError, MlteachError
from mlteach.glmm.model import GLMMData

Method = Literal["laplace", "agq", "pql"]
PredictType = Literal["response", "link"]

_METHOD_WORDS = {
    "laplace": "Laplace approximation (adaptive Gauss-Hermite with 1 node)",
    "agq": "adaptive Gauss-Hermite quadrature",
    "pql": "penalised quasi-likelihood (Breslow & Clayton 1993; as MASS::glmmPQL)",
}


@dataclass(frozen=True, repr=False)
class GLMMResult(OwnsTables):
    """A fitted random-intercept GLMM, complete when returned.

    Attributes
    ----------
    fixef : fixed effects β̂ by term (formulaic names, e.g. ``urban[T.Y]``).
    bse : their standard errors. Laplace/AGQ: from the inverse of the finite-difference Hessian
        of the approximate deviance over (σ, β) jointly, the β block (as lme4's default
        ``vcov`` for glmer fits, for nAGQ = 1 and > 1 alike). PQL: from the final working
        linear mixed model as ``summary(glmmPQL)`` prints them (nlme rescales the ML residual
        variance by n/(n − p) there; ``vcov(glmmPQL)`` does not).
    vcov : the covariance matrix of β̂ behind `bse`.
    sd_re : σ̂, the standard deviation of the random intercepts on the link scale.
    loglik : the approximate marginal log-likelihood (all constants included); NaN for PQL,
        which maximises no likelihood.
    ranef : conditional modes b̂_j = σ̂·û_j by group level (column ``Intercept``); for PQL the
        BLUPs of the final working model.
    ranef_condvar : the conditional variance of each b_j (σ̂²/h_j; PQL: working-model value).
    converged : whether the convergence check passed (see `convergence`).
    method, nagq : ``"laplace"`` (nagq 1), ``"agq"`` (nagq nodes) or ``"pql"`` (nagq None).
    scale : PQL's estimated residual SD of the working model (1 would mean no over- or
        underdispersion); 1.0 for the likelihood methods, where it is fixed by the family.
    convergence : a sentence saying how convergence was judged and what was found.
    """

    fixef: pd.Series
    bse: pd.Series
    vcov: pd.DataFrame
    sd_re: float
    loglik: float
    ranef: pd.DataFrame
    ranef_condvar: pd.DataFrame
    converged: bool
    method: Method
    nagq: int | None
    nobs: int
    ngroups: int
    family: str
    formula: str
    group: str
    scale: float
    convergence: str
    n_evaluations: int
    data: GLMMData = field(repr=False)

    # ------------------------------------------------------------------ numbers
    @property
    def params(self) -> pd.Series:
        """Alias of `fixef`, the name mlteach.ols and mlteach.panel results (and statsmodels) use."""
        return self.fixef

    @property
    def deviance(self) -> float:
        """−2 × the approximate marginal log-likelihood (NaN for PQL)."""
        return -2.0 * self.loglik

    @property
    def df_model(self) -> int:
        """Number of estimated parameters: the fixed effects and σ."""
        return len(self.fixef) + 1

    @property
    def aic(self) -> float:
        """AIC = deviance + 2 df_model (NaN for PQL)."""
        return self.deviance + 2 * self.df_model

    @property
    def bic(self) -> float:
        """BIC = deviance + log(n) df_model (NaN for PQL)."""
        return self.deviance + np.log(self.nobs) * self.df_model

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals β̂ ± z·SE for the fixed effects (normal quantiles)."""
        return confidence_interval(self.fixef, self.bse, None, level)

    def to_frame(self, level: float = 0.95) -> pd.DataFrame:
        """The fixed-effects table (estimate, SE, z, p, interval) by term."""
        return coef_table(self.fixef, self.bse, None, level)

    def icc(self) -> float:
        """Intraclass correlation on the latent (logit) scale: σ² / (σ² + π²/3).

        Notes
        -----
        A logistic model is a threshold model for a latent y* = η + b_j + ε with ε standard
        logistic, Var ε = π²/3, so the share of latent variance between groups is
        σ²/(σ² + π²/3) (Snijders & Bosker 2012, sec. 17.3). A Poisson model has no such latent
        residual with a fixed variance, so this method refuses it rather than pick one of the
        competing approximations.
        """
        if self.family != "binomial":
            raise MlteachError(
                "The intraclass correlation of a Poisson model is not defined simply: there is "
                "no latent residual with a fixed variance as the logistic model's π²/3. "
                "Approximations exist (e.g. Nakagawa, Johnson & Schielzeth 2017, lognormal: "
                "σ²/(σ² + log(1 + 1/λ)) with λ the mean rate) but they depend on the rate; "
                "report the random-intercept SD (sd_re) on the log scale instead, or its "
                "rate ratio exp(sd_re).")
        s2 = self.sd_re ** 2
        return float(s2 / (s2 + np.pi ** 2 / 3))

    # -------------------------------------------------------------- prediction
    def predict(self, newdata: pd.DataFrame | None = None,
                type: PredictType = "response", include_random: bool = True,
                allow_new_levels: bool = False) -> pd.Series:
        """Predicted probabilities (binomial) or rates (Poisson), or the linear predictor.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict for; the estimation rows when None. It needs the model's
            variables, the offset column if the model has one, and the grouping column when
            ``include_random`` is True.
        type : "response" or "link"
            ``"response"``: probability of success per trial (binomial) or expected count
            (Poisson); ``"link"``: η on the logit or log scale.
        include_random : bool
            True adds each group's conditional mode b̂_j (a prediction for *that* group);
            False sets b_j = 0 (a typical group). Note that for a nonlinear link the value at
            b = 0 is not the population-average probability E_b[p], which is closer to 0.5.
        allow_new_levels : bool
            With ``include_random``, rows whose group the model has not seen get b = 0 (a
            typical group) instead of an error, as lme4's ``predict(...,
            allow.new.levels = TRUE)``; rows of known groups keep their b̂_j.
        """
        if type not in ("response", "link"):
            raise MlteachError(f"type must be 'response' or 'link', got {type!r}.")
        d = self.data
        beta = self.fixef.to_numpy()
        b = self.ranef["Intercept"].to_numpy()
        if newdata is None:
            eta = d.X @ beta + d.offset
            if include_random:
                eta = eta + b[d.groups.codes]
            index = d.design.index
        else:
            X = d.design.encode(newdata)
            eta = X @ beta
            if d.offset_name is not None:
                check_columns(newdata, [d.offset_name], "offset column")
                eta = eta + newdata[d.offset_name].to_numpy(dtype=float)
            if include_random:
                check_columns(newdata, [self.group], "grouping variable")
                labels = newdata[self.group].astype(str).to_numpy()
                pos = pd.Index(d.groups.levels).get_indexer(labels)
                if (pos < 0).any() and not allow_new_levels:
                    unknown = sorted(set(labels[pos < 0]))
                    raise GroupingError(
                        f"newdata has levels of {self.group!r} the model has not seen: "
                        f"{', '.join(map(repr, unknown[:5]))}. Their intercepts are unknown: "
                        f"predict with include_random=False (b = 0, a typical group), or with "
                        f"allow_new_levels=True (b = 0 for the unseen groups only).")
                eta = eta + np.where(pos >= 0, b[np.maximum(pos, 0)], 0.0)
            index = newdata.index
        out = eta if type == "link" else d.family.inverse_link(eta)
        return pd.Series(out, index=index, name="eta" if type == "link" else "predicted")

    # ---------------------------------------------------------------- printing
    def _method_label(self) -> str:
        if self.method == "agq":
            return f"{_METHOD_WORDS['agq']} ({self.nagq} nodes)"
        return _METHOD_WORDS[self.method]

    def summary(self) -> Summary:
        """Family, method, groups, random-intercept SD, likelihood (or PQL's note), ICC,
        convergence and the fixed-effects table."""
        fam = ("binomial, logit link" if self.family == "binomial" else "Poisson, log link")
        facts: list[tuple[str, object]] = [
            ("Formula", self.formula), ("Family", fam), ("Method", self._method_label()),
            ("Observations", self.nobs), (f"Groups ({self.group})", self.ngroups),
        ]
        if self.data.outcome_note:
            facts.append(("Outcome coding", self.data.outcome_note))
        if self.data.trials_name:
            facts.append(("Trials", self.data.trials_name))
        if self.data.offset_name:
            facts.append(("Offset", self.data.offset_name))
        facts.append((f"SD of random intercepts ({self.group})", self.sd_re))
        notes = []
        if self.method == "pql":
            facts += [("Working-model residual SD", self.scale),
                      ("Log-likelihood", "none (PQL maximises no likelihood)")]
            notes.append("PQL has no log-likelihood: it fits a sequence of weighted linear mixed "
                         "models to a working response, so AIC, BIC and likelihood-ratio tests "
                         "are not available. Standard errors are those of the final working "
                         "model, as summary(glmmPQL) gives them; the table uses normal (z) "
                         "quantiles where glmmPQL prints t statistics with nlme's degrees of "
                         "freedom.")
        else:
            facts += [("Log-likelihood", self.loglik), ("AIC", self.aic), ("BIC", self.bic)]
        if self.family == "binomial":
            facts.append(("ICC (latent logit scale)", self.icc()))
        facts.append(("Converged", "yes" if self.converged else "NO"))
        if not self.converged:
            notes.append(self.convergence)
        return Summary(f"Generalized linear mixed model: random intercept for {self.group}",
                       facts, [("Fixed effects", self.to_frame())], notes)

    def __str__(self) -> str:
        return str(self.summary())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def method_label(method: Method, nagq: int | None) -> str:
    """Short label for tables: 'Laplace', 'AGQ (25 nodes)', 'PQL'."""
    return {"laplace": "Laplace", "pql": "PQL"}.get(method, f"AGQ ({nagq} nodes)")


__all__ = ["GLMMResult", "method_label"]
