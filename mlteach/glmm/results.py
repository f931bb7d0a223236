"""The fitted GLMM: estimates, conditional modes, predictions and summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mlteach.results.base import (OwnsTables, Summary, coef_table, confidence_interval,
                                  wald_statistics)
from mlteach.design import check_columns
from mlteach.errors import GroupingError, MlteachError
from mlteach.glmm.model import GLMMData, MixedGLMMData
from mlteach.mixed.predict import random_part
from mlteach.mixed.structure import varcorr_rows

Method = Literal["laplace", "agq", "pql"]
PredictType = Literal["response", "link"]

_METHOD_WORDS = {
    "laplace": "Laplace approximation (adaptive Gauss-Hermite with 1 node)",
    "agq": "adaptive Gauss-Hermite quadrature",
    "pql": "penalised quasi-likelihood (Breslow & Clayton 1993; as MASS::glmmPQL)",
}


@dataclass(frozen=True, repr=False)
class GLMMResult(OwnsTables):
    """A fitted GLMM, complete when returned.

    With several grouping factors `ranef`, `ranef_condvar`, `cov_re` and `ngroups` are dicts
    keyed by factor, as in `mlteach.LMMResult`.

    Attributes
    ----------
    fixef
        fixed effects β̂ by term (formulaic names, e.g. ``urban[T.Y]``).
    bse
        their standard errors. Laplace/AGQ: from the inverse of the finite-difference Hessian
        of the approximate deviance over (θ, β) jointly, the β block (as lme4's default
        ``vcov`` for glmer fits, for nAGQ = 1 and > 1 alike). PQL: from the final working
        linear mixed model as ``summary(glmmPQL)`` prints them (nlme rescales the ML residual
        variance by n/(n − p) there; ``vcov(glmmPQL)`` does not).
    vcov
        the covariance matrix of β̂ behind `bse`.
    sd_re
        σ̂, the standard deviation of the random intercepts on the link scale; for a model
        with several random-effect terms, a Series of their SDs by ``"factor: term"``.
    loglik
        the approximate marginal log-likelihood (all constants included); NaN for PQL,
        which maximises no likelihood.
    ranef
        conditional modes b̂_j = Λ_θ û_j by group level (one column per term, e.g.
        ``Intercept``); for PQL the
        BLUPs of the final working model.
    ranef_condvar
        the conditional variance of each b_j (σ̂²/h_j; PQL: working-model value).
    converged
        whether the convergence check passed (see `convergence`).
    method
        ``"laplace"``, ``"agq"`` or ``"pql"``.
    nagq
        quadrature nodes per random effect: 1 for Laplace, the nodes for AGQ, None for PQL.
    scale
        PQL's estimated residual SD of the working model (1 would mean no over- or
        underdispersion); 1.0 for the likelihood methods, where it is fixed by the family.
    convergence
        a sentence saying how convergence was judged and what was found.
    theta
        θ̂, the elements of the lower Cholesky factors of the random effects' covariance
        matrices, by factor and term (lme4's ``getME(m, "theta")``: binomial and Poisson have
        no residual scale, so these are on the link scale; for one random intercept θ = σ̂).
    cov_re
        covariance matrix of the random effects on the link scale (a dict by grouping
        factor when there are several), as the LMM's.
    link
        the link function ("logit", "probit", "cloglog", "log").
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
    data: "GLMMData | MixedGLMMData" = field(repr=False)
    theta: pd.Series | None = None
    cov_re: pd.DataFrame | dict[str, pd.DataFrame] | None = None
    link: str = ""

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
        """Number of estimated parameters: the fixed effects and the elements of θ (σ)."""
        return len(self.fixef) + len(self.theta)

    @property
    def n_params(self) -> int:
        """Number of estimated parameters (the name `mlteach.LMMResult` uses): `df_model`."""
        return self.df_model

    @property
    def _general(self) -> bool:
        """Fitted by the general path (any random part) rather than the one-intercept one."""
        return isinstance(self.data, MixedGLMMData)

    def varcorr(self) -> pd.DataFrame:
        """Variances, SDs and correlations of the random effects by (group, term), as lme4's
        ``VarCorr`` (on the link scale; a GLMM has no residual variance row)."""
        if not self._general:
            return pd.DataFrame({"variance": [self.sd_re ** 2], "std.dev": [self.sd_re]},
                                index=pd.MultiIndex.from_tuples([(self.group, "Intercept")],
                                                                names=["group", "term"]))
        covs = self.cov_re if isinstance(self.cov_re, dict) else {self.group: self.cov_re}
        rows = varcorr_rows(covs)
        return pd.DataFrame(rows).set_index(["group", "term"])

    @property
    def aic(self) -> float:
        """AIC = deviance + 2 df_model (NaN for PQL)."""
        return self.deviance + 2 * self.df_model

    @property
    def bic(self) -> float:
        """BIC = deviance + log(n) df_model (NaN for PQL)."""
        return self.deviance + np.log(self.nobs) * self.df_model

    @property
    def tvalues(self) -> pd.Series:
        """z = β̂ / SE by term (glmer's "z value")."""
        return wald_statistics(self.fixef, self.bse)[0].rename("z")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided normal p-values of `tvalues` (glmer's "Pr(>|z|)")."""
        return wald_statistics(self.fixef, self.bse)[1]

    @property
    def fitted(self) -> pd.Series:
        """In-sample fitted means on the response scale, with the random effects: the
        probability of a success (binomial) or the expected count (Poisson); ``predict()``."""
        return self.predict()

    @property
    def resid(self) -> pd.Series:
        """Response residuals: the observed proportion of successes (binomial; y / trials) or
        count (Poisson) minus `fitted`. lme4's ``residuals()`` default for glmer is deviance
        residuals; these are its ``type = "response"``."""
        observed = self.data.y / self.data.trials
        return pd.Series(observed - self.fitted.to_numpy(), index=self.fitted.index,
                         name="resid")

    @property
    def reml(self) -> bool:
        """Always False: a GLMM is fitted by (approximate) maximum likelihood; `mlteach.lrt`
        reads this to compare fits."""
        return False

    @property
    def design(self):
        """The fixed part's design (model matrix, rows used), as `mlteach.LMMResult.design`."""
        return self.data.design

    @property
    def structure(self):
        """The random-effects structure (None for the one-random-intercept path)."""
        return self.data.structure if self._general else None

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
        if self._general:
            return self._icc_general()
        if self.family != "binomial" or self.link not in ("", "logit"):
            raise MlteachError(
                "The intraclass correlation of a Poisson model is not defined simply: there is "
                "no latent residual with a fixed variance as the logistic model's π²/3. "
                "Approximations exist (e.g. Nakagawa, Johnson & Schielzeth 2017, lognormal: "
                "σ²/(σ² + log(1 + 1/λ)) with λ the mean rate) but they depend on the rate; "
                "report the random-intercept SD (sd_re) on the log scale instead, or its "
                "rate ratio exp(sd_re).")
        s2 = self.sd_re ** 2
        return float(s2 / (s2 + np.pi ** 2 / 3))

    def _icc_general(self) -> float | pd.Series:
        """Latent-scale shares σ_k²/(Σσ² + π²/3) for intercept-only logistic models."""
        vc = self.varcorr()
        if self.family != "binomial" or self.link != "logit":
            raise MlteachError(
                "icc() is defined here for logistic (logit-link) models, whose latent residual "
                "has the fixed variance π²/3 (probit: 1, but report the SDs instead).")
        if any(t != "Intercept" for t in vc.index.get_level_values("term")):
            raise MlteachError(
                "icc() is defined for random-intercept models only: with random slopes the "
                "between-group variance changes with the covariate. Use varcorr().")
        var = vc["variance"].droplevel("term")
        shares = var / (var.sum() + np.pi ** 2 / 3)
        return float(shares.iloc[0]) if len(shares) == 1 else shares.rename("icc")

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
        if self._general:
            return self._predict_general(newdata, type, include_random, allow_new_levels)
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
            eta = X @ beta + self._new_offset(newdata)
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

    def _new_offset(self, newdata: pd.DataFrame) -> np.ndarray:
        """The offset column and ``offset()`` terms evaluated on new data."""
        d = self.data
        out = np.zeros(len(newdata))
        if d.offset_name is not None:
            check_columns(newdata, [d.offset_name], "offset column")
            out += newdata[d.offset_name].to_numpy(dtype=float)
        if d.offset_terms is not None:
            out += d.offset_terms.values(newdata, "newdata")
        return out

    def _ranef_blocks(self) -> list[np.ndarray]:
        ranef = self.ranef if isinstance(self.ranef, dict) else {self.group: self.ranef}
        return [ranef[b.factor][b.columns].to_numpy() for b in self.data.structure.blocks]

    def _predict_general(self, newdata, type, include_random, allow_new_levels) -> pd.Series:
        d = self.data
        beta = self.fixef.to_numpy()
        structure = d.structure
        if newdata is None:
            eta = d.X @ beta + d.offset
            if include_random:
                for blk, b in zip(structure.blocks, self._ranef_blocks()):
                    eta = eta + np.einsum("ik,ik->i", blk.Z, b[blk.groups.codes])
            index = d.design.index
        else:
            eta = d.design.encode(newdata) @ beta + self._new_offset(newdata)
            if include_random:
                eta = eta + random_part(structure, self._ranef_blocks(), d.design.data,
                                        newdata, allow_new_levels=allow_new_levels)
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
        link = self.link or ("logit" if self.family == "binomial" else "log")
        fam = f"{'binomial' if self.family == 'binomial' else 'Poisson'}, {link} link"
        groups = self.ngroups if isinstance(self.ngroups, dict) else {self.group: self.ngroups}
        facts: list[tuple[str, object]] = [
            ("Formula", self.formula), ("Family", fam), ("Method", self._method_label()),
            ("Observations", self.nobs)] + [(f"Groups ({g})", n) for g, n in groups.items()]
        if self.data.outcome_note:
            facts.append(("Outcome coding", self.data.outcome_note))
        if self.data.trials_name:
            facts.append(("Trials", self.data.trials_name))
        if self.data.offset_name:
            facts.append(("Offset", self.data.offset_name))
        if not self._general:
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
        if self.family == "binomial" and not self._general and self.link in ("", "logit"):
            facts.append(("ICC (latent logit scale)", self.icc()))
        facts.append(("Converged", "yes" if self.converged else "NO"))
        if not self.converged:
            notes.append(self.convergence)
        tables = [("Fixed effects", self.to_frame())]
        title = f"Generalized linear mixed model: random intercept for {self.group}"
        if self._general:
            vc = self.varcorr()
            for col in [c for c in vc.columns if c.startswith("corr with")]:
                vc[col] = vc[col].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
            tables.insert(0, ("Random effects (link scale)", vc))
            title = f"Generalized linear mixed model: random effects for {self.group}"
        return Summary(title, facts, tables, notes)

    def __str__(self) -> str:
        return str(self.summary())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def method_label(method: Method, nagq: int | None) -> str:
    """Short label for tables: 'Laplace', 'AGQ (25 nodes)', 'PQL'."""
    return {"laplace": "Laplace", "pql": "PQL"}.get(method, f"AGQ ({nagq} nodes)")


__all__ = ["GLMMResult", "method_label"]
