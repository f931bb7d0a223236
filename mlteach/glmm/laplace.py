"""The Laplace approximation for a GLMM with any random-effects structure (glmer, nAGQ = 1).

The model, with spherical random effects u and b = Λ_θ u (the structure of `mlteach.mixed`):

    y_i | u ~ Binomial(m_i, μ_i) or Poisson(μ_i),   g(μ_i) = η_i = x_i'β + o_i + z_i'Λ_θ u,
    u ~ N(0, I_q).

For given (θ, β):

1. **Conditional modes** û maximise the penalised log-likelihood Σ_i ℓ_i(η_i) − ½‖u‖² by
   penalised iteratively reweighted least squares (PIRLS): Fisher scoring steps
   u ← u + A⁻¹(Λ'Z'ℓ' − u) with A = Λ'Z'WZΛ + I and W the Fisher weights, halved when the
   penalised log-likelihood would fall. Iteration stops when the decrement
   (Λ'Z'ℓ' − u)'A⁻¹(Λ'Z'ℓ' − u) is below 1e-10, after one more full step, so the modes are
   exact to rounding. With a canonical link Fisher scoring is Newton's method and that last
   step squares the error; with probit or cloglog it converges only linearly, so steps go on
   until the largest is below 1e-11 (log det A depends on û to first order: a mode off by
   1e-5 would make the deviance noisy at that size and stall the optimiser) (glmer stops at its ``tolPwrss``, 1e-7 by default, and takes log det A from
   the factor of the step before its last one: see tests/reference/lme4_glmm_extra.R).
2. **Laplace**: log L(θ, β) ≈ Σ_i log p(y_i | η̂_i) − ½‖û‖² − ½ log det A(û), with A at the
   modes. glmer's deviance −2 log L is the same quantity (its ``aic`` + u'u + ldL2).

The deviance is minimised over (θ, β) jointly by the shared optimiser
(`mlteach.mixed.optimize.minimize_deviance`): θ on the unit scale of `ReStructure.theta_scale`
and β in coordinates whitened by the GLM's information, so neither the units of a covariate nor
of a random slope shape the search. The covariance of β̂ is the β block of 2H⁻¹, H the
finite-difference Hessian of the deviance over (θ, β), as glmer's default ``vcov``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from scipy.sparse.linalg import splu

from mlteach.glmm.family import Family
from mlteach.mixed.blocked import BlockedFactor, BlockedPattern
from mlteach.mixed.optimize import Optimum, fd_derivatives, minimize_deviance
from mlteach.mixed.structure import ReStructure

PIRLS_TOL = 1e-10
PIRLS_MAXITER = 200
PIRLS_STEP_TOL = 1e-11   # non-canonical links: largest Fisher step at the modes
# Difference step (θ̃ on unit scale, β whitened: unit curvature): rounding noise of a deviance
# summed over 1e5 rows stays 1e-4 of the Hessian; truncation error is h² ~ 1e-6 of it.
FD_FLOOR = 1e-3


@dataclass(frozen=True)
class Modes:
    """PIRLS at one (θ, β): modes û, linear predictor η̂, log p(y | η̂) summed (with constants),
    log det A(û), iterations used and whether the decrement met `PIRLS_TOL`."""

    u: np.ndarray
    eta: np.ndarray
    cond_loglik: float
    logdet: float
    n_iter: int
    converged: bool

    @property
    def laplace(self) -> float:
        """The Laplace log-likelihood Σ log p(y | η̂) − ½‖û‖² − ½ log det A."""
        return self.cond_loglik - 0.5 * float(self.u @ self.u) - 0.5 * self.logdet


class LaplaceDeviance:
    """−2 × the Laplace log-likelihood of a GLMM as a function of (θ, β), by sparse PIRLS.

    ZΛ_θ is kept row by row: row i has r = Σ_k q_k non-zeros, the values z_ik'T_k of each
    block k at the columns of its level j_k(i) (fixed), so ZΛu, Λ'Z's and the non-zeros of
    A = Λ'Z'WZΛ + I are weighted sums over those r values (O(n r²) array operations, no
    sparse matrix products). A is factored by blocks (`mlteach.mixed.blocked`: the factor
    with most effects first, a dense Schur complement for the others) or, when the others are
    too many, by SuperLU in symmetric mode. The modes of the last evaluation start the next.
    """

    def __init__(self, family: Family, y: np.ndarray, trials: np.ndarray, X: np.ndarray,
                 offset: np.ndarray, const: np.ndarray, structure: ReStructure):
        self.family, self.y, self.m, self.X, self.offset = family, y, trials, X, offset
        self.const = float(const.sum())
        self.structure = structure
        self.q = structure.n_effects
        cols, start, layout, pos = [], 0, [], 0
        for b in structure.blocks:
            cols.append(start + b.groups.codes[:, None] * b.q + np.arange(b.q)[None, :])
            layout.append((start, b.groups.n_groups, b.q, np.arange(pos, pos + b.q)))
            start += b.n_effects
            pos += b.q
        self._C = np.hstack(cols)                                   # (n, r) columns of ZΛ
        self._blocked = BlockedPattern.choose(self._C, layout, self.q)
        n, r = self._C.shape
        # the non-zeros of A: every pair of a row's columns, plus the diagonal
        keys = (self._C[:, :, None] * self.q + self._C[:, None, :]).ravel()
        keys = np.concatenate([keys, np.arange(self.q) * (self.q + 1)])
        uniq, pos = np.unique(keys, return_inverse=True)
        a_row, a_col = uniq % self.q, uniq // self.q                 # column-major: CSC order
        self._pair_pos = pos[:n * r * r]
        self._diag_pos = pos[n * r * r:]
        self._A_indices = a_row.astype(np.int32)
        self._A_indptr = np.searchsorted(a_col, np.arange(self.q + 1)).astype(np.int32)
        self._nnz = len(uniq)
        self._u = np.zeros(self.q)
        self.n_evaluations = 0

    def values(self, theta: np.ndarray) -> np.ndarray:
        """The (n, r) non-zeros of ZΛ_θ: [Z_1 T_1, ..., Z_K T_K] row by row."""
        Ts = self.structure.factors_T(np.asarray(theta, dtype=float))
        return np.hstack([b.Z @ T for b, T in zip(self.structure.blocks, Ts)])

    def _times_u(self, V: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.einsum("ir,ir->i", V, u[self._C])

    def _transpose_times(self, V: np.ndarray, s: np.ndarray) -> np.ndarray:
        return np.bincount(self._C.ravel(), weights=(V * s[:, None]).ravel(),
                           minlength=self.q)

    def A(self, V: np.ndarray, w: np.ndarray) -> sp.csc_matrix:
        """A = Λ'Z'WZΛ + I for the non-zeros V of ZΛ and weights w."""
        Vw = V * w[:, None]
        prods = (Vw[:, :, None] * V[:, None, :]).ravel()
        data = np.bincount(self._pair_pos, weights=prods, minlength=self._nnz)
        data[self._diag_pos] += 1.0
        return sp.csc_matrix((data, self._A_indices, self._A_indptr), shape=(self.q, self.q))

    def _factor(self, V: np.ndarray, w: np.ndarray) -> "BlockedFactor | _SparseFactor":
        """A factored: by blocks where the other factors' effects are few enough for a dense
        Schur complement (`mlteach.mixed.blocked`), else by SuperLU in symmetric mode."""
        if self._blocked is not None:
            return self._blocked.factor(V, w)
        return _SparseFactor(splu(self.A(V, w), permc_spec="MMD_AT_PLUS_A",
                                  diag_pivot_thresh=0.0, options={"SymmetricMode": True}))

    def _penalised(self, eta: np.ndarray, u: np.ndarray) -> float:
        return float(np.sum(self.family.loglik_any(eta, self.y, self.m))) - 0.5 * float(u @ u)

    def modes(self, theta: np.ndarray, beta: np.ndarray, u_start: np.ndarray | None = None
              ) -> Modes:
        """Penalised IRLS for û at (θ, β), then log det A at û (see the module notes)."""
        V = self.values(theta)
        eta_fixed = self.X @ beta + self.offset
        u = (self._u if u_start is None else u_start).copy()
        eta = eta_fixed + self._times_u(V, u)
        obj = self._penalised(eta, u)
        if not np.isfinite(obj):                       # a wild warm start: begin at u = 0
            u = np.zeros(self.q)
            eta = eta_fixed.copy()
            obj = self._penalised(eta, u)
        converged, it = False, 0
        for it in range(1, PIRLS_MAXITER + 1):
            score, w = self.family.working(eta, self.y, self.m)
            g = self._transpose_times(V, score) - u
            lu = self._factor(V, w)
            step = lu.solve(g)
            decrement = float(g @ step)
            if decrement < PIRLS_TOL and (self.family.canonical
                                          or np.max(np.abs(step)) < PIRLS_STEP_TOL):
                # one more full step (the error is squared), then A at the final modes
                u = u + step
                eta = eta_fixed + self._times_u(V, u)
                _, w = self.family.working(eta, self.y, self.m)
                lu = self._factor(V, w)
                converged = True
                break
            t = 1.0
            while True:
                u_new = u + t * step
                eta_new = eta_fixed + self._times_u(V, u_new)
                obj_new = self._penalised(eta_new, u_new)
                if obj_new >= obj - 1e-13 * abs(obj) or t < 1e-8:
                    break
                t /= 2
            u, eta, obj = u_new, eta_new, obj_new
        logdet = lu.logdet
        cond = float(np.sum(self.family.loglik_any(eta, self.y, self.m))) + self.const
        if np.all(np.isfinite(u)):
            self._u = u
        return Modes(u=u, eta=eta, cond_loglik=cond, logdet=logdet, n_iter=it,
                     converged=converged)

    def __call__(self, theta: np.ndarray, beta: np.ndarray) -> float:
        self.n_evaluations += 1
        value = -2.0 * self.modes(theta, beta).laplace
        return value if np.isfinite(value) else np.inf

    def A_at(self, theta: np.ndarray, modes: Modes) -> sp.csc_matrix:
        """A = Λ'Z'WZΛ + I at the modes (for conditional variances)."""
        _, w = self.family.working(modes.eta, self.y, self.m)
        return self.A(self.values(theta), w)


class _SparseFactor:
    """SuperLU's factor of A (symmetric positive definite: det A is the product of U's
    diagonal), with the interface of `BlockedFactor`."""

    def __init__(self, lu):
        self._lu = lu
        self.logdet = float(np.log(np.abs(lu.U.diagonal())).sum())

    def solve(self, g: np.ndarray) -> np.ndarray:
        return self._lu.solve(g)


@dataclass(frozen=True)
class LaplaceFit:
    """The optimum of the Laplace deviance: θ̂, β̂, the covariance of β̂ and the checks."""

    theta: np.ndarray
    beta: np.ndarray
    vcov: np.ndarray
    deviance: float
    modes: Modes
    optimum: Optimum
    n_evaluations: int


def fit_laplace(dev: LaplaceDeviance, beta_start: np.ndarray, information: np.ndarray
                ) -> LaplaceFit:
    """Minimise the Laplace deviance over (θ, β) (see the module notes) from the GLM's β."""
    structure = dev.structure
    k = structure.n_theta
    scale = structure.theta_scale()
    T = _whitening(information)

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:k] / scale, beta_start + T @ x[k:]

    def f(x: np.ndarray) -> float:
        theta, beta = unpack(x)
        return dev(theta, beta)

    p = len(beta_start)
    lower = np.concatenate([structure.theta_lower(), np.full(p, -np.inf)])
    start = np.concatenate([structure.theta_start(), np.zeros(p)])
    opt = minimize_deviance(f, start, lower, fd_floor=FD_FLOOR, noise_stop=True)
    if opt.hessian is not None:        # the optimiser's last Hessian: at or next to θ̂, β̂
        H, at_bound = opt.hessian, opt.near_bound
    else:
        _, H, at_bound, _ = fd_derivatives(f, opt.theta, lower, FD_FLOOR)
    free = ~(opt.at_bound | at_bound)
    free[k:] = True
    cov_x = np.full((k + p, k + p), np.nan)
    try:
        Hf = H[np.ix_(free, free)]
        cov_x[np.ix_(free, free)] = 2.0 * linalg.inv(0.5 * (Hf + Hf.T))
    except linalg.LinAlgError:
        pass
    theta, beta = unpack(opt.theta)
    vcov = T @ cov_x[k:, k:] @ T.T
    modes = dev.modes(theta, beta)
    return LaplaceFit(theta=theta, beta=beta, vcov=0.5 * (vcov + vcov.T),
                      deviance=-2.0 * modes.laplace, modes=modes, optimum=opt,
                      n_evaluations=dev.n_evaluations)


def _whitening(information: np.ndarray) -> np.ndarray:
    """T with T'(X'WX)T = I (the GLM's information), or a diagonal scaling if it is singular."""
    try:
        L = linalg.cholesky(information, lower=True)
        return linalg.solve_triangular(L, np.eye(len(information)), lower=True).T
    except linalg.LinAlgError:
        return np.diag(1.0 / np.sqrt(np.maximum(np.diag(information), 1e-12)))


__all__ = ["LaplaceDeviance", "LaplaceFit", "Modes", "fit_laplace"]
