"""The two response distributions of the GLMM chapter, with their canonical links.

Each family gives the conditional log-likelihood of one row, ℓ_i(η_i), and its first three
derivatives in the linear predictor η. With a canonical link these are all the estimators
need (book, chapter on generalized multilevel models):

    binomial, logit link:  ℓ = y·η − m·log(1 + e^η) + log C(m, y)
                           ℓ' = y − m·p,   −ℓ'' = v = m·p(1 − p),   −ℓ''' = v' = v·(1 − 2p)
    Poisson, log link:     ℓ = y·η − e^η − log y!
                           ℓ' = y − μ,     −ℓ'' = v = μ,             −ℓ''' = v' = μ

where p = 1/(1 + e^−η), μ = e^η and m is the number of trials (1 for a 0/1 outcome). The
constants log C(m, y) and −log y! are kept, so log-likelihoods are complete and comparable
with R's ``logLik`` and with statsmodels' GLM.

Other links (probit p = Φ(η), complementary log-log p = 1 − exp(−e^η)) are used through
`Family.working`: the score ∂ℓ/∂η and the Fisher (expected) weight m·(dμ/dη)²/V(μ) that
penalised IRLS uses, as glmer does. For a canonical link the Fisher weight is v = −ℓ''.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, special

FamilyName = Literal["binomial", "poisson"]
LINKS = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log",)}
# η is clipped here before exponentials, so a wild trial step cannot overflow (e^700 ≈ 1e304).
_ETA_MAX = 700.0


def _logistic(eta: np.ndarray) -> np.ndarray:
    """p = 1/(1 + e^−η), exact to rounding (relative error ~1e-16 in p; 1 − p, where p → 1, to
    absolute error ~1e-16), and about four times as fast as scipy.special.expit on large arrays."""
    with np.errstate(over="ignore"):
        e = np.exp(-eta)                                # inf for η < −709: p = 0
    e += 1.0
    return np.reciprocal(e, out=e)


@dataclass(frozen=True)
class Family:
    """A response distribution and its link: binomial (logit, probit or cloglog), Poisson (log).

    Without `link` the canonical one (logit, log). `loglik`, `derivatives`, `score` and
    `loglik_and_score` are the canonical-link formulas used by the random-intercept quadrature;
    `loglik_any`, `working` and `inverse_link` serve every link.
    """

    name: FamilyName
    link_name: str | None = None

    @property
    def link(self) -> str:
        return self.link_name or LINKS[self.name][0]

    @property
    def canonical(self) -> bool:
        return self.link == LINKS[self.name][0]

    def loglik_any(self, eta: np.ndarray, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        """ℓ_i(η) without the constant, for any link: y log p + (m − y) log(1 − p) or
        y log μ − μ."""
        if self.link == "probit":
            return y * special.log_ndtr(eta) + (m - y) * special.log_ndtr(-eta)
        if self.link == "cloglog":
            e = np.exp(np.minimum(eta, _ETA_MAX))
            # log p = log(1 − exp(−e^η)), log(1 − p) = −e^η
            return y * np.log(-np.expm1(-e)) - (m - y) * e
        return self.loglik(eta, y, m)

    def working(self, eta: np.ndarray, y: np.ndarray, m: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """(score ∂ℓ/∂η, Fisher weight m·(dμ/dη)²/V(μ)) row by row, for any link.

        probit: with r₁ = φ/Φ(η), r₀ = φ/Φ(−η) (computed on the log scale, stable in the
        tails), score = y·r₁ − (m − y)·r₀ and weight = m·r₁·r₀.
        cloglog: with e = e^η, score = y·e/(e^e − 1) − (m − y)·e and weight = m·e²/(e^e − 1).
        """
        if self.link == "probit":
            log_phi = -0.5 * eta * eta - 0.5 * np.log(2 * np.pi)
            r1 = np.exp(log_phi - special.log_ndtr(eta))
            r0 = np.exp(log_phi - special.log_ndtr(-eta))
            return y * r1 - (m - y) * r0, m * r1 * r0
        if self.link == "cloglog":
            e = np.exp(np.minimum(eta, _ETA_MAX))
            with np.errstate(over="ignore"):
                ratio = e / np.expm1(e)              # e/(e^e − 1) → 1 as e → 0, 0 as e → ∞
            ratio = np.where(e < 1e-300, 1.0, ratio)
            return y * ratio - (m - y) * e, m * e * ratio
        score, v, _ = self.derivatives(eta, y, m)
        return score, v

    def constant(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        """The part of ℓ_i free of η: log C(m, y) (binomial) or −log y! (Poisson)."""
        if self.name == "binomial":
            return special.gammaln(m + 1) - special.gammaln(y + 1) - special.gammaln(m - y + 1)
        return -special.gammaln(y + 1)

    def loglik(self, eta: np.ndarray, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        """ℓ_i(η) without the constant, row by row (broadcasts over extra node columns)."""
        if self.name == "binomial":
            # log(1 + e^η) = max(η, 0) + log1p(e^−|η|): no overflow, faster than logaddexp;
            # in place, as memory traffic is the cost on large arrays
            soft = np.abs(eta)
            np.negative(soft, out=soft)
            np.exp(soft, out=soft)
            np.log1p(soft, out=soft)
            soft += np.maximum(eta, 0.0)
            soft *= m
            out = y * eta
            out -= soft
            return out
        with np.errstate(over="ignore"):             # a wild trial step: ℓ = −inf, rejected
            return y * eta - np.exp(eta)

    def derivatives(self, eta: np.ndarray, y: np.ndarray, m: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ℓ', v, v'): the score y − E(y), the variance v = −ℓ'' and its slope v' = −ℓ'''."""
        score, v = self.score_and_variance(eta, y, m)
        return score, v, self.variance_slope(score, v, y, m)

    def score_and_variance(self, eta: np.ndarray, y: np.ndarray, m: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
        """(ℓ', v) only: what each step of penalised IRLS needs (arithmetic in place: on a
        million rows the passes over memory are the cost)."""
        if self.name == "binomial":
            p = _logistic(eta)
            v = np.subtract(1.0, p)
            v *= p
            v *= m                                      # m·p(1 − p)
            p *= m
            return np.subtract(y, p, out=p), v          # y − m·p
        with np.errstate(over="ignore"):
            mu = np.exp(eta)
        return y - mu, mu

    def variance_slope(self, score: np.ndarray, v: np.ndarray, y: np.ndarray, m: np.ndarray
                       ) -> np.ndarray:
        """v' = −ℓ''' from ℓ' and v at the same η: v·(1 − 2p) with p = (y − ℓ')/m
        (binomial), μ = v (Poisson)."""
        if self.name == "binomial":
            p = (y - score) / m
            return v * (1.0 - 2.0 * p)
        return v.copy()

    def score(self, eta: np.ndarray, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        """ℓ'(η) = y − E(y | η) only (cheaper than `derivatives`)."""
        if self.name == "binomial":
            return y - m * _logistic(eta)
        return y - np.exp(eta)

    def loglik_and_score(self, eta: np.ndarray, y: np.ndarray, m: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """(ℓ without the constant, ℓ') together, for the (rows × nodes) arrays of quadrature.

        For the logit both come from one t = tanh(η/2): p = (1 + t)/2 and
        log(1 + e^η) = max(η, 0) − log((1 + |t|)/2), about twice as fast as computing
        log(1 + e^η) and p separately; the absolute error is below 1e-15 per row.
        """
        # In-place arithmetic: these arrays are rows × nodes and memory traffic dominates.
        if self.name == "binomial":
            t = np.multiply(eta, 0.5)
            np.tanh(t, out=t)
            score = np.multiply(t, -0.5 * m)
            score += y - 0.5 * m                        # y − m(1 + t)/2
            np.abs(t, out=t)
            t *= 0.5
            t += 0.5
            np.log(t, out=t)                            # log((1 + |t|)/2) = −log(1 + e^−|η|)
            ll = np.maximum(eta, 0.0)
            ll -= t                                     # log(1 + e^η)
            ll *= -m
            np.multiply(y, eta, out=t)
            ll += t
            return ll, score
        mu = np.exp(eta)
        ll = np.multiply(y, eta)
        ll -= mu
        np.subtract(y, mu, out=mu)
        return ll, mu

    def inverse_link(self, eta: np.ndarray) -> np.ndarray:
        """Probability p = 1/(1 + e^−η), Φ(η) or 1 − exp(−e^η); or rate μ = e^η."""
        if self.link == "probit":
            return special.ndtr(eta)
        if self.link == "cloglog":
            return -np.expm1(-np.exp(np.minimum(eta, _ETA_MAX)))
        return special.expit(eta) if self.name == "binomial" else np.exp(eta)


@dataclass(frozen=True)
class GLMFit:
    """Maximum-likelihood fit of the GLM without random effects (σ = 0)."""

    beta: np.ndarray
    loglik: float
    information: np.ndarray   # X'WX at the estimate, W = v
    converged: bool
    n_iter: int


def fit_glm(family: Family, y: np.ndarray, m: np.ndarray, X: np.ndarray, offset: np.ndarray,
            const: np.ndarray, tol: float = 1e-12, maxiter: int = 100) -> GLMFit:
    """Iteratively reweighted least squares for the GLM η = Xβ + offset (Newton's method).

    Fisher scoring β ← β + (X'WX)⁻¹X'ℓ' with the Fisher weights W (`Family.working`); with a
    canonical link it is Newton's method, ℓ' = y − E y. Steps are halved when the
    log-likelihood would fall. Used for starting values, as the
    σ = 0 limit of the GLMM, and for PQL's first working response (as MASS::glmmPQL).
    """
    n, p = X.shape
    beta = np.zeros(p)
    # A start near the data: η = link(ȳ) keeps the first step short for rare outcomes.
    if family.name == "binomial":
        frac = np.clip((y.sum() + 0.5) / (m.sum() + 1.0), 1e-6, 1 - 1e-6)
        eta0 = {"logit": np.log(frac / (1 - frac)), "probit": special.ndtri(frac),
                "cloglog": np.log(-np.log1p(-frac))}[family.link]
    else:
        eta0 = np.log(max(y.mean(), 1e-6))
    beta = np.linalg.lstsq(X, np.full(n, eta0) - offset, rcond=None)[0]

    def ll(b: np.ndarray) -> float:
        return float(np.sum(family.loglik_any(X @ b + offset, y, m)))

    current = ll(beta)
    converged = False
    it = 0
    for it in range(1, maxiter + 1):
        score, v = family.working(X @ beta + offset, y, m)
        info = X.T @ (X * v[:, None])
        step = np.linalg.lstsq(info, X.T @ score, rcond=None)[0]
        t = 1.0
        while True:
            trial = ll(beta + t * step)
            if trial >= current - 1e-12 * abs(current) or t < 1e-10:
                break
            t /= 2
        beta = beta + t * step
        change = trial - current
        current = trial
        if abs(change) <= tol * (abs(current) + 0.1):
            converged = True
            break
    _, v = family.working(X @ beta + offset, y, m)
    return GLMFit(beta=beta, loglik=current + float(const.sum()),
                  information=X.T @ (X * v[:, None]), converged=converged, n_iter=it)


def separation_direction(family: Family, y: np.ndarray, m: np.ndarray, X: np.ndarray
                         ) -> np.ndarray | None:
    """A direction δ along which the binomial likelihood rises forever (separation), or None.

    (Quasi-)complete separation means some δ ≠ 0 has x_i'δ ≥ 0 wherever every trial succeeded,
    x_i'δ ≤ 0 wherever every trial failed and x_i'δ = 0 for mixed rows, with at least one
    strict inequality (Albert & Anderson 1984). Found as a small linear programme.
    """
    if family.name != "binomial":
        return None
    allone, allzero = y >= m, y <= 0
    mixed = ~(allone | allzero)
    sign = np.where(allone, 1.0, -1.0)
    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale
    A_ub = -(sign[~mixed, None] * Xs[~mixed])            # sign·x'δ ≥ 0
    A_eq = Xs[mixed] if mixed.any() else None
    c = A_ub.sum(axis=0)                                   # maximise Σ sign·x'δ
    res = optimize.linprog(c, A_ub=A_ub, b_ub=np.zeros(A_ub.shape[0]), A_eq=A_eq,
                           b_eq=np.zeros(A_eq.shape[0]) if A_eq is not None else None,
                           bounds=[(-1, 1)] * X.shape[1], method="highs")
    if res.status != 0 or -res.fun <= 1e-7:
        return None
    return res.x / scale
