"""Penalised quasi-likelihood (Breslow & Clayton 1993), as MASS::glmmPQL computes it.

PQL replaces the GLMM by a sequence of *weighted linear* mixed models for the working response

    z_i = η_i − o_i + (y_i − E y_i)/v_i,   with weights w_i = v_i  (canonical link),

    z = Xβ + b_j + e_i,   b_j ~ N(0, τ²),   e_i ~ N(0, σ²/w_i),

refitting until the linear predictor η = Xβ + b̂ + o settles. `fit_pql` is the batched route for
one random intercept; `fit_pql_general` takes any random part lme4 accepts and fits each working
model with the LMM's own evaluator (prior weights, maximum likelihood). Like glmmPQL (MASS 7.3) the
working model is fitted by maximum likelihood (``lme(..., method = "ML")``), σ² is estimated
rather than fixed at 1, the start is the GLM fit, and iteration stops when
Σ(η − η_old)² < 10⁻⁶ Σ η² or after 10 rounds. There is no likelihood to report: PQL maximises
none, and the working model's likelihood is not the GLMM's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize

from mlteach.glmm.family import fit_glm
from mlteach.glmm.model import GLMMData, MixedGLMMData
from mlteach.lmm.deviance import sigma2_hat
from mlteach.lmm.fit import deviance_function, optimize_theta
from mlteach.mixed.optimize import Optimum
from mlteach.mixed.structure import split_factor_blocks


@dataclass(frozen=True)
class WeightedLMM:
    """ML fit of z = Xβ + b_j + e with Var(b_j) = τ² = λσ², Var(e_i) = σ²/w_i."""

    beta: np.ndarray
    vcov: np.ndarray        # σ̂²·n/(n − p)·(X'V⁻¹X)⁻¹, as summary(lme) reports for ML fits
    tau: float
    sigma: float
    blup: np.ndarray        # b̂_j = E(b_j | z)
    condvar: np.ndarray     # Var(b_j | z)
    loglik: float           # of the working model, not of the GLMM


def weighted_ri_lmm(data: GLMMData, z: np.ndarray, w: np.ndarray) -> WeightedLMM:
    """Maximum-likelihood weighted random-intercept LMM, profiled over λ = τ²/σ².

    Notes
    -----
    For group j let W_j = Σ_i w_i and c_j = λ/(1 + λW_j). By the Sherman–Morrison formula
    σ²V_j⁻¹ = diag(w) − c_j w w', so every GLS quantity is a weighted group sum:

    .. math::

        X'V^{-1}X \\propto X'WX - \\sum_j c_j s_j s_j', \\quad s_j = \\sum_{i\\in j} w_i x_i,

    and the profiled ML deviance is n log(r'V⁻¹r/n) + Σ_j log(1 + λW_j) + constants.
    """
    X = data.X
    n, p = X.shape
    Wj = data.group_sum(w)
    sX = data.group_sum(X * w[:, None])                    # (G, p)
    sz = data.group_sum(w * z)
    XtWX = X.T @ (X * w[:, None])
    XtWz = X.T @ (w * z)
    zWz = float(w @ (z * z))

    def gls(lam: float):
        c = lam / (1.0 + lam * Wj)
        A = XtWX - sX.T @ (sX * c[:, None])
        beta = np.linalg.solve(A, XtWz - sX.T @ (c * sz))
        sr = sz - sX @ beta
        r = z - X @ beta
        rVr = float(w @ (r * r)) - float(c @ (sr * sr))
        return beta, A, rVr, c, sr

    def deviance(t: float) -> float:
        lam = np.exp(t)
        _, _, rVr, _, _ = gls(lam)
        return n * np.log(rVr / n) + float(np.sum(np.log1p(lam * Wj)))

    # A coarse grid guards against a poor bracket; Brent's method then refines log λ.
    grid = np.linspace(-20.0, 10.0, 31)
    devs = np.array([deviance(t) for t in grid])
    k = int(np.argmin(devs))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(deviance, bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-10, "maxiter": 500})
    t = float(res.x) if res.fun <= devs[k] else float(grid[k])
    lam = np.exp(t) if t > grid[0] + 1e-6 else 0.0        # at the lower end: no group variance
    beta, A, rVr, c, sr = gls(lam)
    sigma2 = rVr / n
    loglik = -0.5 * (n * (1 + np.log(2 * np.pi * sigma2)) + float(np.sum(np.log1p(lam * Wj)))
                     - float(np.sum(np.log(w))))
    # Standard errors as summary(lme) prints them for ML fits (adjustSigma = TRUE):
    # σ̂² is rescaled by n/(n − p), the REML-like degrees-of-freedom correction.
    vcov = sigma2 * n / (n - p) * np.linalg.inv(A)
    return WeightedLMM(beta=beta, vcov=vcov, tau=float(np.sqrt(lam * sigma2)),
                       sigma=float(np.sqrt(sigma2)), blup=c * sr, condvar=sigma2 * c,
                       loglik=loglik)


@dataclass(frozen=True)
class PQLFit:
    lmm: WeightedLMM
    n_iter: int
    converged: bool


def fit_pql(data: GLMMData, maxiter: int = 10, tol: float = 1e-6) -> PQLFit:
    """Iterate the working LMM from the GLM start until η settles (glmmPQL's rule and defaults)."""
    fam, y, m, X, off = data.family, data.y, data.trials, data.X, data.offset
    codes = data.groups.codes
    glm = fit_glm(fam, y, m, X, off, data.const)
    eta = X @ glm.beta + off
    converged = False
    for it in range(1, maxiter + 1):
        score, v, _ = fam.derivatives(eta, y, m)
        z = eta - off + score / v
        lmm = weighted_ri_lmm(data, z, v)
        eta_old = eta
        eta = X @ lmm.beta + lmm.blup[codes] + off
        if np.sum((eta - eta_old) ** 2) < tol * np.sum(eta ** 2):
            converged = True
            break
    return PQLFit(lmm=lmm, n_iter=it, converged=converged)


# ----------------------------------------------------------------------------------------------
# Any random-effects structure: the working model is the shared weighted LMM
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneralPQLFit:
    """PQL with any random part: the last working LMM at its ML optimum (θ relative to σ)."""

    beta: np.ndarray
    vcov: np.ndarray            # σ̂²·n/(n − p)·(X'V⁻¹X)⁻¹, as summary(lme) reports for ML fits
    theta: np.ndarray           # relative covariance factor of the working LMM (b = σΛ_θ u)
    sigma: float                # the working model's residual SD (ML), glmmPQL's m$sigma
    b_blocks: list[np.ndarray]  # BLUPs b̂ per structure block, (levels × q_k)
    condcov: list[np.ndarray]   # conditional covariances per block (levels × q_k × q_k)
    optimum: Optimum            # of the last working LMM's profiled ML deviance
    n_iter: int
    converged: bool


def fit_pql_general(data: MixedGLMMData, maxiter: int = 10, tol: float = 1e-6
                    ) -> GeneralPQLFit:
    """glmmPQL for a `MixedGLMMData`: the working response z = η − o + ℓ'/w and Fisher weights
    w (any link: z = η − o + (y − mμ)/(m dμ/dη)) define a weighted LMM, fitted by maximum
    likelihood with the LMM's own evaluator (`mlteach.lmm.fit.deviance_function` with prior
    weights, so Var(e_i) = σ²/w_i as lme's ``varFixed(~invwt)``); η = Xβ̂ + Zb̂ + o is updated
    and the rounds repeat until η settles (glmmPQL's rule, at most 10 rounds).
    """
    fam, y, m, X, off = data.family, data.y, data.trials, data.X, data.offset
    structure = data.structure
    n, p = X.shape
    glm = fit_glm(fam, y, m, X, off, data.const)
    eta = X @ glm.beta + off
    converged = False
    for it in range(1, maxiter + 1):
        score, w = fam.working(eta, y, m)
        z = eta - off + score / w
        design = replace(data.design, y=z)
        dev = deviance_function(design, structure, weights=w)
        opt = optimize_theta(dev, structure, reml=False)
        theta = opt.theta
        pls = dev.pls(theta)
        b_blocks = dev.ranef_blocks(theta, pls)
        eta_old = eta
        Zb = np.zeros(n)
        for blk, b in zip(structure.blocks, b_blocks):
            Zb += np.einsum("ik,ik->i", blk.Z, b[blk.groups.codes])
        eta = X @ pls.beta + Zb + off
        if np.sum((eta - eta_old) ** 2) < tol * np.sum(eta ** 2):
            converged = True
            break
    s2 = sigma2_hat(pls, n, p, False)
    vcov = s2 * n / (n - p) * np.linalg.inv(pls.RXtRX)
    condcov = split_factor_blocks(structure, dev.condcov_factors(theta, s2))
    return GeneralPQLFit(beta=pls.beta, vcov=0.5 * (vcov + vcov.T), theta=theta,
                         sigma=float(np.sqrt(s2)), b_blocks=b_blocks, condcov=condcov,
                         optimum=opt, n_iter=it, converged=converged)
