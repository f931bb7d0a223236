"""The marginal likelihood of a random-intercept GLMM by Laplace and adaptive Gauss–Hermite rules.

Write the intercept of group j as b_j = σ·u_j with u_j ~ N(0, 1) (the "spherical" form lme4
uses, which stays regular at σ = 0). Group j contributes

    L_j(β, σ) = ∫ exp g_j(u) du,    g_j(u) = Σ_i∈j ℓ_i(x_i'β + o_i + σu) + log φ(u).

With one intercept per group the integrals are one-dimensional and independent, so every step
below is vectorised over groups.

1. Conditional mode (penalised IRLS): û_j maximises g_j; Newton's step is
   u ← u + g_j'(u)/h_j(u) with curvature h_j = −g_j'' = 1 + σ²Σ_i v_i.
2. Adaptive Gauss–Hermite quadrature with K nodes z_k and weights w_k for the standard normal
   density, centred at û_j and scaled by s_j = h_j^(−1/2) (Liu & Pierce 1994):

       log L_j ≈ log s_j + log Σ_k w_k exp{g_j(û_j + s_j z_k)} / φ(z_k).

   With K = 1 (z = 0, w = 1) this is the Laplace approximation
   log L_j ≈ g_j(û_j) + ½ log 2π − ½ log h_j, so ``nagq=1`` *is* Laplace.
3. The gradient in (β, σ) is exact for the approximation: besides the direct dependence it
   carries dû/dθ = g_uθ/h and dh/dθ (which needs the third derivative v'), because away from
   K → ∞ the rule is not stationary in û and s.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mlteach.glmm.model import GLMMData

LOG_2PI = float(np.log(2 * np.pi))


@lru_cache(maxsize=32)
def gauss_hermite(nagq: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_k and log(w_k/φ(z_k)) of the K-point Gauss–Hermite rule for ∫ f(z)φ(z) dz."""
    z, w = np.polynomial.hermite_e.hermegauss(nagq)   # weight exp(−z²/2), Σw = √(2π)
    # log w_k − log φ(z_k) with w_k normalised to sum to one: log w_raw + z²/2.
    return z, np.log(w) + z ** 2 / 2


@dataclass(frozen=True)
class Modes:
    """Conditional modes û_j (spherical scale), curvatures h_j and Newton iterations used;
    `rows` holds (ℓ', v, v') of every row at the modes when PIRLS computed them there."""

    u: np.ndarray
    h: np.ndarray
    n_iter: int
    converged: bool
    rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def conditional_modes(data: GLMMData, eta_fixed: np.ndarray, sd: float,
                      u_start: np.ndarray | None = None, tol: float = 1e-11,
                      maxiter: int = 60) -> Modes:
    """Penalised IRLS for the random intercepts: Newton's method on each g_j, all groups at once.

    Each g_j is strictly concave (−g_j'' = h_j ≥ 1), so Newton's method converges from any
    start once steps that lower g_j are halved; iteration stops when every Newton decrement
    |g_j'|/√h_j is below `tol`.
    """
    fam, y, m, codes = data.family, data.y, data.trials, data.groups.codes
    G = data.groups.n_groups
    u = np.zeros(G) if u_start is None else u_start.copy()
    if sd == 0.0:
        return Modes(u=np.zeros(G), h=np.ones(G), n_iter=0, converged=True)

    def objective(u: np.ndarray) -> np.ndarray:
        return data.group_sum(fam.loglik(eta_fixed + sd * data.expand(u), y, m)) - u ** 2 / 2

    g, previous, safe = None, np.inf, True
    for it in range(1, maxiter + 1):
        score, v = fam.score_and_variance(eta_fixed + sd * data.expand(u), y, m)
        grad = sd * data.group_sum(score) - u
        h = 1.0 + sd ** 2 * data.group_sum(v)
        decrement = np.max(np.abs(grad) / np.sqrt(h))
        if decrement < tol:
            return Modes(u=u, h=h, n_iter=it - 1, converged=True,
                         rows=(score, v, fam.variance_slope(score, v, y, m)))
        step = grad / h
        new = u + step
        safe = safe and decrement < previous           # unchecked steps must keep shrinking it
        previous = decrement
        if safe and decrement < 0.1:
            # Close to the modes (a warm start from the last evaluation, usually) Newton's
            # method on the concave g_j converges quadratically: the step is taken without
            # evaluating g_j (two passes over the rows fewer). Should the decrement ever stop
            # falling, every later step is checked.
            u = new
            g = None
            continue
        if g is None:
            g = objective(u)
        g_new = objective(new)
        worse = g_new < g - 1e-12 * np.abs(g)
        halvings = 0
        while worse.any() and halvings < 30:
            step = np.where(worse, step / 2, step)
            new = np.where(worse, u + step, new)
            g_new = objective(new)
            worse = g_new < g - 1e-12 * np.abs(g)
            halvings += 1
        u, g = new, g_new
    score, v, dv = fam.derivatives(eta_fixed + sd * u[codes], y, m)
    h = 1.0 + sd ** 2 * data.group_sum(v)
    grad = sd * data.group_sum(score) - u
    return Modes(u=u, h=h, n_iter=maxiter, converged=bool(np.max(np.abs(grad) / np.sqrt(h)) < 1e-6),
                 rows=(score, v, dv))


@dataclass(frozen=True)
class MarginalLoglik:
    """The approximate marginal log-likelihood Σ_j log L_j at (β, σ), its gradient and modes."""

    value: float
    grad_beta: np.ndarray | None
    grad_sd: float | None
    modes: Modes


def marginal_loglik(data: GLMMData, beta: np.ndarray, sd: float, nagq: int = 1,
                    u_start: np.ndarray | None = None, gradient: bool = True
                    ) -> MarginalLoglik:
    """Adaptive Gauss–Hermite (nagq ≥ 1; 1 = Laplace) approximation of the GLMM log-likelihood.

    Returns Σ_j log L_j including every constant, and, with `gradient`, its exact derivatives
    with respect to β and σ (see the module docstring for the formulas).
    """
    fam, y, m, X, codes = data.family, data.y, data.trials, data.X, data.groups.codes
    eta_fixed = X @ beta + data.offset
    modes = conditional_modes(data, eta_fixed, sd, u_start)
    if nagq == 1:
        return _laplace(data, eta_fixed, sd, modes, gradient)
    u_hat, h = modes.u, modes.h
    s = 1.0 / np.sqrt(h)
    z, logw = gauss_hermite(nagq)
    u_nodes = u_hat[:, None] + s[:, None] * z[None, :]                  # (G, K)
    eta = eta_fixed[:, None] + sd * u_nodes[codes]                      # (n, K)
    if gradient:
        ll_nodes, score_nodes = fam.loglik_and_score(eta, y[:, None], m[:, None])   # (n, K)
    else:
        ll_nodes = fam.loglik(eta, y[:, None], m[:, None])
    a = logw[None, :] + data.group_sum(ll_nodes) - u_nodes ** 2 / 2 - LOG_2PI / 2  # (G, K)
    a_max = a.max(axis=1, keepdims=True)
    log_sum = a_max[:, 0] + np.log(np.exp(a - a_max).sum(axis=1))
    value = float((np.log(s) + log_sum).sum() + data.const.sum())
    if not gradient:
        return MarginalLoglik(value, None, None, modes)

    # Node weights π_jk and the group derivatives of g at the nodes.
    pi = np.exp(a - log_sum[:, None])                                   # (G, K)
    L1 = data.group_sum(score_nodes)                                    # Σ_i ℓ'_ik
    g_u = sd * L1 - u_nodes                                             # ∂g/∂u at nodes
    P1 = (pi * g_u).sum(axis=1)
    P2 = (pi * g_u * z[None, :]).sum(axis=1)
    r = (pi[codes] * score_nodes).sum(axis=1)                           # Σ_k π_k ℓ'_ik
    # Quantities at the mode.
    eta_mode = eta_fixed + sd * u_hat[codes]
    score0, v0, dv0 = modes.rows if modes.rows is not None else fam.derivatives(eta_mode, y, m)
    S1, S2, Sl = data.group_sum(v0), data.group_sum(dv0), data.group_sum(score0)
    c_h = -0.5 * (1.0 + s * P2) / h                                     # ∂ log L_j / ∂h_j
    # β: dû/dβ = Σ_i x_i b_i and dh/dβ = Σ_i x_i a_i with row weights b_i, a_i.
    b_rows = -sd * v0 / h[codes]
    a_rows = sd ** 2 * dv0 + sd ** 3 * S2[codes] * b_rows
    grad_beta = X.T @ (r + c_h[codes] * a_rows + P1[codes] * b_rows)
    # σ.
    du_dsd = (Sl - sd * u_hat * S1) / h
    dh_dsd = 2 * sd * S1 + sd ** 2 * S2 * u_hat + sd ** 3 * S2 * du_dsd
    grad_sd = float(np.sum(c_h * dh_dsd + (pi * u_nodes * L1).sum(axis=1) + P1 * du_dsd))
    return MarginalLoglik(value, grad_beta, grad_sd, modes)


def _laplace(data: GLMMData, eta_fixed: np.ndarray, sd: float, modes: Modes, gradient: bool
             ) -> MarginalLoglik:
    """The K = 1 case of `marginal_loglik` (one node, at the mode), written with one value per
    row instead of rows × nodes: log L_j = g_j(û_j) + ½ log 2π − ½ log h_j, and the same
    exact gradient with π_j = 1, z = 0 (so P2 = 0, c_h = −1/(2h_j)).

    The β gradient Σ_i x_i (ℓ'_i + c_h b_i ... ) collapses to X'(ℓ' + A_j v'_i + B_j v_i) with
    A_j = c_h σ² and B_j = −(c_h σ³ S2_j + g_u,j) σ / h_j: two per-group factors spread over
    the rows instead of five row vectors.
    """
    fam, y, m, X = data.family, data.y, data.trials, data.X
    u_hat, h = modes.u, modes.h
    eta_mode = eta_fixed + sd * data.expand(u_hat) if sd != 0.0 else eta_fixed
    ll = data.group_sum(fam.loglik(eta_mode, y, m))
    value = float(np.sum(ll - u_hat ** 2 / 2 - 0.5 * np.log(h)) + data.const.sum())
    if not gradient:
        return MarginalLoglik(value, None, None, modes)
    rows = modes.rows if modes.rows is not None and sd != 0.0 else fam.derivatives(eta_mode, y, m)
    score0, v0, dv0 = rows
    S1, S2, L1 = data.group_sum(v0), data.group_sum(dv0), data.group_sum(score0)
    g_u = sd * L1 - u_hat                                               # ≈ 0: the mode
    c_h = -0.5 / h
    A = c_h * sd ** 2
    B = -(c_h * sd ** 3 * S2 + g_u) * sd / h
    weights = data.expand(A) * dv0
    weights += data.expand(B) * v0
    weights += score0
    grad_beta = X.T @ weights
    du_dsd = (L1 - sd * u_hat * S1) / h
    dh_dsd = 2 * sd * S1 + sd ** 2 * S2 * u_hat + sd ** 3 * S2 * du_dsd
    grad_sd = float(np.sum(c_h * dh_dsd + u_hat * L1 + g_u * du_dsd))
    return MarginalLoglik(value, grad_beta, grad_sd, modes)
