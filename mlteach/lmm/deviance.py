"""The profiled deviance of a linear mixed model in penalised least-squares form (book §LMM).

Model (Bates, Mächler, Bolker & Walker 2015, eqs. 2–4): with spherical random effects u,

    y | u ~ N(Xβ + ZΛ_θ u, σ² I),   u ~ N(0, σ² I),   b = Λ_θ u.

For given θ, β and u minimise the penalised residual sum of squares

    r²(θ, β, u) = ‖y − Xβ − ZΛ_θ u‖² + ‖u‖²,

whose normal equations have the blocks A = Λ'Z'ZΛ + I = L L', B = Λ'Z'X and c = Λ'Z'y.
Eliminating u leaves the Schur complement R_X'R_X = X'X − B'A⁻¹B, and

    β̂ = (R_X'R_X)⁻¹ (X'y − B'A⁻¹c),   û = A⁻¹(c − Bβ̂),
    pwrss = r²(θ) = y'y − c'A⁻¹c − β̂'(X'y − B'A⁻¹c).

Profiling β and σ² out of the likelihood leaves a function of θ alone (eqs. 34 and 41):

    ML:    d(θ)   = log|L|² + n·(1 + log(2π r²/n))
    REML:  d_R(θ) = log|L|² + log|R_X|² + (n−p)·(1 + log(2π r²/(n−p)))

with σ̂² = r²/n (ML) or r²/(n−p) (REML). −d/2 is the (restricted) log-likelihood.

Three evaluators give the same `PLS` quantities: `SparseDeviance` (any structure, sparse LU of
A) here, `SingleFactorDeviance` (one grouping factor, per-group blocks) in `mlteach.lmm.single`
and `BlockedDeviance` (several grouping factors, block elimination) in `mlteach.lmm.blocked`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from mlteach.mixed.structure import (ReStructure, block_diag_T, conditional_covariances,
                                     split_factor_blocks)


@dataclass(frozen=True)
class PLS:
    """The penalised least-squares solution at one θ.

    Attributes
    ----------
    logdet_L
        log|L_θ|² = log det(Λ'Z'ZΛ + I).
    logdet_RX
        log|R_X|² = log det(X'X − B'A⁻¹B).
    pwrss
        r²(θ), the penalised weighted residual sum of squares at β̂, û.
    beta
        β̂(θ).
    u
        û(θ), the spherical random effects (b = Λ_θ u); None when not asked for.
    RXtRX
        R_X'R_X, whose inverse times σ̂² is the covariance of β̂.
    """

    logdet_L: float
    logdet_RX: float
    pwrss: float
    beta: np.ndarray
    u: np.ndarray | None
    RXtRX: np.ndarray


def dof(n: int, p: int, reml: bool) -> int:
    """Degrees of freedom of the residual variance: n − p under REML, n under ML."""
    return n - p if reml else n


def sigma2_hat(pls: PLS, n: int, p: int, reml: bool) -> float:
    """σ̂² = r²/(n − p) under REML, r²/n under ML."""
    return pls.pwrss / dof(n, p, reml)


def profiled_deviance(pls: PLS, n: int, p: int, reml: bool) -> float:
    """−2 × the profiled (restricted) log-likelihood at θ (Bates et al. 2015, eqs. 34, 41)."""
    d = dof(n, p, reml)
    out = pls.logdet_L + d * (1.0 + np.log(2.0 * np.pi * pls.pwrss / d))
    return float(out + pls.logdet_RX) if reml else float(out)


# pwrss = y'y − c'A⁻¹c − β̂'(X'y − B'A⁻¹c) cancels: when n·y'y/pwrss exceeds this, its rounding
# error (≈ ε·y'y) moves the deviance n·(1 + log r²/n) by more than ~1e-8, and the evaluators
# recompute r² from the residuals (`residual_pwrss`), which is accurate to rounding.
CANCELLATION_LIMIT = 1e8


def cancels(n: int, yty: float, pwrss: float) -> bool:
    """True when r² from the cross-products has lost too many digits (`CANCELLATION_LIMIT`):
    the random effects explain nearly all of a large y'y (e.g. a between-group variance 1e8
    times the residual one)."""
    return n * yty > CANCELLATION_LIMIT * pwrss


def residual_pwrss(r: np.ndarray, u: np.ndarray) -> float:
    """r² = ‖y − Xβ̂ − ZΛû‖² + ‖û‖², from the residuals r (no cancellation)."""
    return max(float(r @ r) + float(u @ u), 1e-300)


def rx_cancels(XtX: np.ndarray, RXtRX: np.ndarray) -> bool:
    """True when R_X'R_X = X'X − B'A⁻¹B has lost more than 7 digits on its diagonal (columns of
    X nearly absorbed by large random effects), so that log|R_X|² (REML) errs by ≳ 1e-9."""
    d = np.diag(RXtRX)
    return bool(np.any(np.diag(XtX) > 1e7 * np.maximum(d, 1e-300)))


def with_residual_rx(pls: PLS, EtE_plus_UtU: np.ndarray) -> PLS:
    """`pls` with R_X'R_X = E'E + U'U recomputed from the residuals E = X − ZΛU of the
    penalised regression of X on ZΛ (U = A⁻¹B): X'V⁻¹X without cancellation."""
    RXtRX = 0.5 * (EtE_plus_UtU + EtE_plus_UtU.T)
    chol = np.linalg.cholesky(RXtRX)
    return dataclasses.replace(pls, RXtRX=RXtRX,
                               logdet_RX=float(2 * np.log(np.diag(chol)).sum()))


def schur_solution(XtX: np.ndarray, Xty: np.ndarray, yty: float, BtAinvB: np.ndarray,
                   BtAinvc: np.ndarray, ctAinvc: float, logdet_L: float,
                   Ainv_c: np.ndarray | None = None, Ainv_B: np.ndarray | None = None) -> PLS:
    """β̂, r² (and û when A⁻¹c, A⁻¹B are given) from the products with A⁻¹ (both evaluators)."""
    RXtRX = XtX - BtAinvB
    rhs = Xty - BtAinvc
    chol = np.linalg.cholesky(RXtRX)
    beta = np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))
    pwrss = float(yty - ctAinvc - beta @ rhs)
    u = None if Ainv_c is None else Ainv_c - Ainv_B @ beta
    return PLS(logdet_L=float(logdet_L), logdet_RX=float(2 * np.log(np.diag(chol)).sum()),
               pwrss=max(pwrss, 1e-300), beta=beta, u=u, RXtRX=RXtRX)


class SparseDeviance:
    """PLS quantities for any random-effects structure, via a sparse LU of A = Λ'Z'ZΛ + I.

    Cross-products Z'Z, Z'X, Z'y, X'X, X'y, y'y are formed once; each evaluation builds Λ_θ from
    θ (through a fixed map of its non-zeros to θ) and factors the q × q sparse matrix A.
    SuperLU with diagonal pivoting on a symmetric ordering acts as a sparse Cholesky here:
    A is symmetric positive definite, so det A is the product of U's diagonal.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, structure: ReStructure):
        self.structure = structure
        Z = structure.Z_sparse()
        Zt = Z.T.tocsr()
        self.ZtZ = (Zt @ Z).tocsc()
        self.ZtX = np.asarray(Zt @ X)
        self.Zty = np.asarray(Zt @ y).ravel()
        self.XtX = X.T @ X
        self.Xty = X.T @ y
        self.yty = float(y @ y)
        self.n, self.p = X.shape
        self.q = Z.shape[1]
        self._X, self._y, self._Z = X, y, Z   # for `residual_pwrss` when r² cancels
        self._rows, self._cols, self._ind = structure.lambda_pattern()

    def Lambda(self, theta: np.ndarray) -> sp.csc_matrix:
        """Λ_θ, block diagonal with T_k repeated for each level of factor k."""
        return sp.csc_matrix((theta[self._ind], (self._rows, self._cols)), shape=(self.q, self.q))

    def A(self, theta: np.ndarray) -> sp.csc_matrix:
        """A = Λ'Z'ZΛ + I, the matrix whose Cholesky factor is L_θ."""
        Lam = self.Lambda(theta)
        return (Lam.T @ self.ZtZ @ Lam + sp.identity(self.q, format="csc")).tocsc()

    def _factor(self, theta: np.ndarray):
        return splu(self.A(theta), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                    options={"SymmetricMode": True})

    def solve_A(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """log det A, Λ'Z'[X y] and A⁻¹Λ'Z'[X y] at θ (sparse LU of A)."""
        Lam = self.Lambda(theta)
        lu = self._factor(theta)
        logdet_L = float(np.log(np.abs(lu.U.diagonal())).sum())
        Bc = np.asarray(Lam.T @ np.column_stack([self.ZtX, self.Zty]))
        return logdet_L, Bc, lu.solve(Bc)

    def pls(self, theta: np.ndarray, with_u: bool = True) -> PLS:
        """Solve the penalised least-squares problem at θ (û is cheap here: always formed)."""
        theta = np.asarray(theta, dtype=float)
        return self.pls_from(theta, *self.solve_A(theta))

    def pls_from(self, theta: np.ndarray, logdet_L: float, Bc: np.ndarray, W: np.ndarray
                 ) -> PLS:
        """The PLS solution from log det A, Λ'Z'[X y] and A⁻¹Λ'Z'[X y] (`solve_A`), with r²
        and R_X'R_X recomputed from residuals where the cross-products cancel."""
        B, c = Bc[:, :-1], Bc[:, -1]
        Ainv_B, Ainv_c = W[:, :-1], W[:, -1]
        out = schur_solution(self.XtX, self.Xty, self.yty, B.T @ Ainv_B, B.T @ Ainv_c,
                             float(c @ Ainv_c), logdet_L, Ainv_c, Ainv_B)
        if cancels(self.n, self.yty, out.pwrss):
            Lam = self.Lambda(theta)
            r = self._y - self._X @ out.beta - self._Z @ np.asarray(Lam @ out.u).ravel()
            out = dataclasses.replace(out, pwrss=residual_pwrss(r, out.u))
        if rx_cancels(self.XtX, out.RXtRX):
            E = self._X - np.asarray(self._Z @ (self.Lambda(theta) @ Ainv_B))
            out = with_residual_rx(out, E.T @ E + Ainv_B.T @ Ainv_B)
        return out

    def objective(self, theta: np.ndarray, reml: bool) -> float:
        """The profiled deviance (REML criterion when `reml`) at θ."""
        return profiled_deviance(self.pls(theta), self.n, self.p, reml)

    def ranef_blocks(self, theta: np.ndarray, pls: PLS) -> list[np.ndarray]:
        """Per block k, the (G_k, q_k) conditional modes b = Λ_θ û (lme4's ``ranef``)."""
        b = np.asarray(self.Lambda(theta) @ pls.u).ravel()
        out, pos = [], 0
        for blk in self.structure.blocks:
            out.append(b[pos:pos + blk.n_effects].reshape(blk.groups.n_groups, blk.q))
            pos += blk.n_effects
        return out

    def condcov_factors(self, theta: np.ndarray, sigma2: float) -> dict[str, np.ndarray]:
        """Per grouping factor, the (G, q_f, q_f) conditional covariances σ² T_f (A⁻¹)_jj T_f'
        (`mlteach.mixed.structure.conditional_covariances`)."""
        return conditional_covariances(self.structure, self.A(theta), theta, sigma2)

    def condvar_blocks(self, theta: np.ndarray, sigma2: float) -> list[np.ndarray]:
        """Per block k, the (G_k, q_k, q_k) conditional covariances σ² T_k (A⁻¹)_jj T_k'
        (lme4's ``condVar``): the diagonal sub-blocks of `condcov_factors`."""
        return split_factor_blocks(self.structure, self.condcov_factors(theta, sigma2))


__all__ = ["PLS", "SparseDeviance", "profiled_deviance", "sigma2_hat", "dof", "schur_solution",
           "cancels", "residual_pwrss", "rx_cancels", "with_residual_rx",
           "block_diag_T", "split_factor_blocks"]
