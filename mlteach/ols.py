"""The classical linear model (book chapter 1): OLS with classical or cluster-robust errors.

    y = Xβ + ε,   β̂ = (X'X)⁻¹X'y

Classical standard errors assume ε i.i.d.: Var(β̂) = σ̂²(X'X)⁻¹ with σ̂² = e'e/(n − p).
Cluster-robust (CR1) standard errors allow any correlation of ε within clusters:

    Var(β̂) = c · (X'X)⁻¹ [Σ_g X_g'e_g e_g'X_g] (X'X)⁻¹,   c = G/(G − 1) · (n − 1)/(n − p),

the small-sample factor c of Stata's ``regress, vce(cluster)`` and of statsmodels; inference then
uses Student's t with G − 1 degrees of freedom, as Stata does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import linalg

from mlteach.results.base import CoefficientTable, Summary, renamed
from mlteach.design import Design, GroupIndex, check_grouping, fixed_design
from mlteach.errors import RankDeficientError


@dataclass(frozen=True)
class LeastSquares:
    """β̂ = (X'X)⁻¹X'y by QR, with the residuals and (X'X)⁻¹ that the covariances need."""

    beta: np.ndarray
    resid: np.ndarray
    XtX_inv: np.ndarray

    @property
    def ssr(self) -> float:
        """The residual sum of squares e'e."""
        return float(self.resid @ self.resid)


def least_squares(X: np.ndarray, y: np.ndarray) -> LeastSquares:
    """Solve the least-squares problem min ‖y − Xβ‖² through X = QR (X of full column rank)."""
    Q, R = np.linalg.qr(X)
    beta = linalg.solve_triangular(R, Q.T @ y)
    Rinv = linalg.solve_triangular(R, np.eye(R.shape[0]))
    return LeastSquares(beta=beta, resid=y - X @ beta, XtX_inv=Rinv @ Rinv.T)


@dataclass(frozen=True)
class OLSResult(CoefficientTable):
    """A fitted classical linear model. Every attribute is set when it is returned.

    t statistics, p-values and intervals use t(n − p), or t(G − 1) with cluster-robust errors.
    `fitted` is ŷ = Xβ̂ (``fittedvalues`` before issue 14, a deprecated alias); `loglik`, `aic`
    and `bic` are statsmodels' ``llf``, ``aic`` and ``bic``.
    """

    short_name: ClassVar[str] = "Pooled"

    params: pd.Series
    bse: pd.Series
    vcov: pd.DataFrame
    sigma: float
    nobs: int
    df_resid: int
    df_inference: int
    rsquared: float
    cov_type: Literal["classical", "cluster"]
    n_clusters: int | None
    formula: str
    resid: pd.Series = field(repr=False)
    fitted: pd.Series = field(repr=False)
    design: Design = field(repr=False)

    fittedvalues = renamed("fittedvalues", "fitted")

    @property
    def rsquared_adj(self) -> float:
        """Adjusted R², 1 − (1 − R²)(n − 1)/(n − p)."""
        return 1 - (1 - self.rsquared) * (self.nobs - 1) / self.df_resid

    @property
    def loglik(self) -> float:
        """Gaussian log-likelihood at σ̂² = e'e/n: −n/2 · (log 2π + log(e'e/n) + 1), statsmodels'
        ``llf`` (whatever the kind of standard errors)."""
        ssr = float(self.resid @ self.resid)
        return float(-0.5 * self.nobs * (np.log(2 * np.pi) + np.log(ssr / self.nobs) + 1))

    @property
    def aic(self) -> float:
        """−2 loglik + 2p with p the number of coefficients (σ² not counted), as statsmodels."""
        return -2.0 * self.loglik + 2.0 * len(self.params)

    @property
    def bic(self) -> float:
        """−2 loglik + log(n) p with p the number of coefficients, as statsmodels."""
        return -2.0 * self.loglik + np.log(self.nobs) * len(self.params)

    def predict(self, newdata: pd.DataFrame | None = None) -> pd.Series:
        """Fitted values for the estimation data, or predictions for `newdata`."""
        if newdata is None:
            return self.fitted
        X = self.design.encode(newdata)
        return pd.Series(X @ self.params.to_numpy(), index=newdata.index, name="predicted")

    def summary(self) -> Summary:
        """Formula, rows, kind of standard errors, σ̂, R² and the coefficient table."""
        se_kind = ("classical (i.i.d. errors)" if self.cov_type == "classical"
                   else f"cluster-robust CR1, {self.n_clusters} clusters, t({self.df_inference})")
        facts = [("Formula", self.formula), ("Observations", self.nobs),
                 ("Standard errors", se_kind), ("Residual SD (sigma)", self.sigma),
                 ("R-squared", self.rsquared), ("Adj. R-squared", self.rsquared_adj)]
        return Summary("Ordinary least squares", facts, [("Coefficients", self.to_frame())])

    def __str__(self) -> str:
        return str(self.summary())

    # The plain-text display in a console or notebook is the summary, not a dump of every field
    # (residuals, fitted values and the design included), as for the other results.
    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def ols(formula: str, data: pd.DataFrame, cluster: str | None = None) -> OLSResult:
    """Fit the classical linear model by least squares.

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + x2"`` in formulaic's syntax (categoricals with ``C(x)``; interactions ``a:b``).
    data : DataFrame
    cluster : str, optional
        Column whose groups may have correlated errors (schools, firms). Gives CR1
        cluster-robust standard errors, as Stata's ``vce(cluster)``; None gives classical ones.

    Notes
    -----
    Rows with a missing value in any variable used (cluster included) are dropped with a
    `MissingDataWarning`. A rank-deficient design raises `RankDeficientError` naming the
    collinear terms. See the book's chapter 1.
    """
    design = fixed_design(formula, data, extra=[cluster] if cluster else (),
                          context="the linear model")
    X, y = design.X, design.y
    n, p = X.shape
    if n <= p:
        raise RankDeficientError(
            f"{n} rows but {p} coefficients ({', '.join(design.terms)}): no residual degrees "
            f"of freedom are left, so the fit would pass through every row and the error "
            f"variance and standard errors cannot be estimated. Least squares needs more rows "
            f"than coefficients: use fewer terms or more data.")
    ls = least_squares(X, y)
    beta, resid, XtX_inv = ls.beta, ls.resid, ls.XtX_inv
    fitted = X @ beta
    df_resid = n - p
    sigma2 = ls.ssr / df_resid
    n_clusters = None
    if cluster is None:
        V = sigma2 * XtX_inv
        df_inf = df_resid
        cov_type = "classical"
    else:
        groups = GroupIndex.from_data(design.data, cluster)
        check_grouping(groups, n, role="cluster variable", allow_one_per_group=True)
        G = groups.n_groups
        scores = groups.sum(X * resid[:, None])          # Σ_i∈g x_i e_i, one row per cluster
        meat = scores.T @ scores
        c = G / (G - 1) * (n - 1) / (n - p)
        V = c * XtX_inv @ meat @ XtX_inv
        df_inf, cov_type, n_clusters = G - 1, "cluster", G
    terms = pd.Index(design.terms)
    tss = float(((y - y.mean()) ** 2).sum()) if "Intercept" in terms else float((y ** 2).sum())
    return OLSResult(
        params=pd.Series(beta, index=terms, name="estimate"),
        bse=pd.Series(np.sqrt(np.diag(V)), index=terms, name="std.err"),
        vcov=pd.DataFrame(V, index=terms, columns=terms),
        sigma=float(np.sqrt(sigma2)), nobs=n, df_resid=df_resid, df_inference=df_inf,
        rsquared=1 - ls.ssr / tss if tss > 0 else float("nan"),
        cov_type=cov_type, n_clusters=n_clusters, formula=formula,
        resid=pd.Series(resid, index=design.index, name="resid"),
        fitted=pd.Series(fitted, index=design.index, name="fitted"),
        design=design,
    )
