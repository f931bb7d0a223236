"""Minimise the profiled deviance over θ, polish the optimum and check it.

1. A bounded quasi-Newton search (L-BFGS-B, lower bound 0 on the diagonal of each T_k) from
   the start it is given, with the analytic gradient when the evaluator has one (the
   single-factor path) and finite differences otherwise. `mlteach.lmm.fit.optimize_theta`
   calls it on θ for unit-scale random-effect columns, starting at T̃_k = I.
2. A polish: projected Newton steps on the coordinates not held at their bound. The Hessian is
   the finite-difference derivative of the analytic gradient (2k gradients for k elements of
   θ) or, without a gradient, second differences of the deviance. Near a smooth interior
   optimum each step roughly squares the error, so the deviance is met to rounding.
3. Checks at the result: the Newton step that remains (the *scaled gradient*, H⁻¹g) must be
   small, and the Hessian on the free coordinates positive definite; a coordinate at its bound
   must have a non-negative gradient (moving it inside would not help).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import minimize

from mlteach.errors import BoundaryFitWarning, ConvergenceWarning, warn
from mlteach.mixed.structure import ReStructure

# lme4's isSingular(tol = 1e-4), applied to θ on the unit scale (`ReStructure.theta_scale`):
# the same verdict for intercepts, and for slopes one that does not depend on the covariate's
# units (lme4's, on θ itself, calls a slope of x in millions singular when its θ is 1e-5).
SINGULAR_TOL = 1e-4

Objective = Callable[[np.ndarray], float]
ObjectiveGradient = Callable[[np.ndarray], tuple[float, np.ndarray]]
Derivatives = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, int]]


@dataclass(frozen=True)
class Optimum:
    """Where the search ended and what the checks found there."""

    theta: np.ndarray
    value: float
    gradient: np.ndarray
    scaled_gradient: float
    hessian_min_eig: float
    at_bound: np.ndarray
    nfev: int
    message: str
    flat: bool = False   # the criterion took the same value everywhere the search looked
    hessian: np.ndarray | None = None      # the Hessian of the last check (at or next to x)
    near_bound: np.ndarray | None = None   # coordinates within a difference step of the bound


def _steps(x: np.ndarray, floor: float = 1e-5) -> np.ndarray:
    return np.maximum(1e-4 * np.abs(x), floor)


def fd_derivatives(f: Objective, x: np.ndarray, lower: np.ndarray, floor: float = 1e-5
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Finite-difference gradient and Hessian of f at x (one-sided at a bound).

    Returns (g, H, at_bound, evaluations). Central differences with steps h_i = max(1e-4·|x_i|,
    `floor`) for coordinates away from their bound; forward three-point formulas for those at
    it. The rounding noise ε of f enters H as ε/h²: a criterion summed over 10⁵ rows (|f| ~
    10⁵, ε ~ 1e-10) needs h ~ 1e-3, which the GLMM's unit-curvature coordinates allow.
    """
    k = len(x)
    h = _steps(x, floor)
    at_bound = (x - lower) <= h
    f0 = f(x)
    nfev = 1
    g = np.empty(k)
    H = np.empty((k, k))
    fp, fm = np.empty(k), np.empty(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        if at_bound[i]:
            f1, f2 = f(x + e), f(x + 2 * e)
            g[i] = (-3 * f0 + 4 * f1 - f2) / (2 * h[i])
            H[i, i] = (f0 - 2 * f1 + f2) / h[i] ** 2
            fp[i], fm[i] = f1, np.nan
        else:
            fp[i], fm[i] = f(x + e), f(x - e)
            g[i] = (fp[i] - fm[i]) / (2 * h[i])
            H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h[i] ** 2
        nfev += 2
    for i in range(k):
        for j in range(i):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = h[i], h[j]
            if at_bound[i] or at_bound[j]:
                # forward difference: (f(x+ei+ej) − f(x+ei) − f(x+ej) + f0)/(hi hj)
                H[i, j] = (f(x + ei + ej) - fp[i] - fp[j] + f0) / (h[i] * h[j])
                nfev += 1
            else:
                H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                           + f(x - ei - ej)) / (4 * h[i] * h[j])
                nfev += 4
            H[j, i] = H[i, j]
    return g, H, at_bound, nfev


def gradient_derivatives(fg: ObjectiveGradient, x: np.ndarray, lower: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Analytic gradient of f at x and its Hessian by differences of that gradient.

    Returns (g, H, at_bound, evaluations) as `fd_derivatives`. Column i of H is the central
    difference (g(x + h_i e_i) − g(x − h_i e_i))/(2h_i), or the forward one for a coordinate
    within h_i of its bound; H is then symmetrised. 2k + 1 evaluations instead of ~2k².
    """
    k = len(x)
    h = _steps(x)
    at_bound = (x - lower) <= h
    g = fg(x)[1]
    H = np.empty((k, k))
    nfev = 1
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        if at_bound[i]:
            H[:, i] = (fg(x + e)[1] - g) / h[i]
            nfev += 1
        else:
            H[:, i] = (fg(x + e)[1] - fg(x - e)[1]) / (2 * h[i])
            nfev += 2
    return g, 0.5 * (H + H.T), at_bound, nfev


def _free(g: np.ndarray, at_bound: np.ndarray) -> np.ndarray:
    """Coordinates allowed to move: interior ones, and bound ones whose gradient points inside."""
    return ~(at_bound & (g >= 0))


def polish(f: Objective, derivatives: Derivatives, x: np.ndarray, lower: np.ndarray,
           max_iter: int = 8, step_tol: float = 1e-9, decrease_tol: float = 0.0
           ) -> tuple[np.ndarray, float, int, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """Projected Newton steps from x with backtracking; stops when a step no longer helps.

    Returns (x, f(x), evaluations, derivatives at x or None). Stopping because the Newton step
    left is below `step_tol` (relative to |x|) keeps the derivatives just computed at x, so the
    final check does not have to compute them again. With finite-difference derivatives the
    gradient is only as good as the noise of f allows, so the step never falls below 1e-9:
    there a step whose predicted decrease ½g'H⁻¹g is below `decrease_tol` is the last one (it
    is taken, and the derivatives from just before it are returned: it moved x by about the
    precision the differences have).
    """
    fx = f(x)
    nfev = 1
    for _ in range(max_iter):
        g, H, at_bound, n = derivatives(x)
        nfev += n
        free = _free(g, at_bound)
        if not free.any():
            return x, fx, nfev, (g, H, at_bound)
        Hf = H[np.ix_(free, free)]
        try:
            np.linalg.cholesky(Hf)
            step_f = -np.linalg.solve(Hf, g[free])
        except np.linalg.LinAlgError:
            return x, fx, nfev, (g, H, at_bound)
        if np.max(np.abs(step_f)) < step_tol * max(1.0, np.max(np.abs(x))):
            return x, fx, nfev, (g, H, at_bound)
        step = np.zeros_like(x)
        step[free] = step_f
        if -0.5 * float(g[free] @ step_f) < decrease_tol:
            cand = np.maximum(x + step, lower)
            fc = f(cand)
            nfev += 1
            if fc <= fx + 1e-12 * max(1.0, abs(fx)):
                x, fx = cand, min(fc, fx)
            return x, fx, nfev, (g, H, at_bound)
        # Within rounding of the optimum the deviance cannot tell a better point from a worse
        # one (it changes in its 14th digit): a full Newton step whose predicted decrease is
        # below that noise is taken unless the deviance rises beyond the noise. The gradient
        # at the end point, not the deviance, then shows whether the step helped.
        noise = 1e-12 * max(1.0, abs(fx))
        within_noise = -0.5 * float(g[free] @ step_f) < noise
        improved = False
        for t in (1.0, 0.5, 0.25, 0.1):
            cand = np.maximum(x + t * step, lower)
            fc = f(cand)
            nfev += 1
            if fc < fx or (t == 1.0 and within_noise and fc <= fx + noise):
                x, fx, improved = cand, fc, True
                break
        if not improved:
            return x, fx, nfev, (g, H, at_bound)
    return x, fx, nfev, None


def snap_to_bound(f: Objective, x: np.ndarray, fx: float, lower: np.ndarray,
                  near: float = 1e-5, tol: float = 1e-8) -> tuple[np.ndarray, float, int]:
    """Set diagonal elements of θ that are within `near` of 0 to exactly 0 when the deviance
    does not rise by more than `tol`: a boundary fit then reports a variance of exactly zero."""
    nfev = 0
    for i in np.flatnonzero((lower == 0) & (x > 0) & (x < near)):
        cand = x.copy()
        cand[i] = 0.0
        fc = f(cand)
        nfev += 1
        if fc <= fx + tol:
            x, fx = cand, fc
    return x, fx, nfev


def _quasi_newton(f: Objective, start: np.ndarray, lower: np.ndarray,
                  fg: ObjectiveGradient | None = None, noisy: bool = False):
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    if fg is None and noisy:
        # A criterion with iterated inner modes (the GLMM's Laplace deviance) is noisy at
        # 1e-13 of its value, and L-BFGS-B's forward differences turn that into gradient
        # noise far above gtol = 1e-7: the search then spends hundreds of evaluations chasing
        # it. The Newton polish (central differences) finishes from a looser stop.
        options = {"ftol": 1e-10, "gtol": 1e-4, "maxiter": 2000, "maxls": 20}
        res = minimize(f, start, method="L-BFGS-B", bounds=bounds, options=options)
    elif fg is None:
        options = {"ftol": 1e-12, "gtol": 1e-7, "maxiter": 2000, "maxls": 50}
        res = minimize(f, start, method="L-BFGS-B", bounds=bounds, options=options)
    else:
        # With the exact gradient the Newton polish that follows converges quadratically, so
        # the search may stop earlier; tight tolerances here only make the line search
        # chase rounding noise at the optimum (dozens of evaluations at the same point).
        options = {"ftol": 1e-10, "gtol": 1e-5, "maxiter": 2000, "maxls": 20}
        res = minimize(fg, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    x = np.maximum(np.asarray(res.x, dtype=float), lower)
    # Values within rounding of the bound are the bound: a variance of 1e-12 σ² is zero.
    x = np.where((lower == 0) & (x < 1e-10), 0.0, x)
    return x, float(res.fun), int(res.nfev), str(res.message)


def _escape_bound_saddle(f: Objective, fg: ObjectiveGradient | None, x: np.ndarray, fx: float,
                         lower: np.ndarray, H: np.ndarray, held: np.ndarray,
                         noisy: bool = False):
    """Move off a boundary point where the deviance falls on moving inside.

    At θ_i = 0 (a diagonal element of T_k) the deviance depends on θ_i through θ_i², so its
    slope there is zero even when it *decreases* inside (negative curvature): a saddle on the
    boundary, where a quasi-Newton search whose first step overshoots to the bound stops (e.g.
    a random intercept SD of 0.07σ, whose deviance is within 2e-3 of the boundary value). Probe
    the coordinates at the bound with negative curvature (held, or "free" only because a
    rounding-level slope points inside) at a grid of values inside, and search again
    from the best probe. Returns (x, f(x), evaluations, message), or None when no probe helps.
    """
    neg = held & (lower == 0) & (np.diag(H) < 0)
    if not neg.any():
        return None
    noise = 1e-12 * max(1.0, abs(fx))
    best, f_best, nfev = None, fx - noise, 0
    for t in (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0):
        cand = x.copy()
        cand[neg] = t * max(1.0, float(np.max(np.abs(x))))
        fc = f(cand)
        nfev += 1
        if fc < f_best:
            best, f_best = cand, fc
    if best is None:
        return None
    xs, fs, n, message = _quasi_newton(f, best, lower, fg, noisy)
    nfev += n
    if not fs < f_best:   # the search fell back onto the bound: keep the probe, polish from it
        xs, fs, message = best, f_best, "probe inside the boundary"
    return xs, fs, nfev, message


def minimize_deviance(f: Objective, start: np.ndarray, lower: np.ndarray,
                      fg: ObjectiveGradient | None = None, fd_floor: float = 1e-5,
                      noise_stop: bool = False,
                      restarts: Sequence[np.ndarray] = ()) -> Optimum:
    """Minimise f over θ ≥ lower: L-BFGS-B, then Newton polish, then the checks.

    `fg`, when given, returns f and its analytic gradient together; it then drives the search
    and the Hessian is differenced from it (`gradient_derivatives`). Without it, gradients and
    Hessians are finite differences of f (`fd_derivatives`).

    A search that ends on the boundary (some diagonal element of T_k at 0) is repeated from
    smaller and larger starting values and from each of `restarts`, keeping the best end
    point. On the boundary θ_i = 0 the deviance depends on θ_i only through θ_i², so its slope
    there is zero whether or not moving inside would help: a quasi-Newton step that lands on
    the bound can stop at such a saddle.
    """
    if fg is None:
        def derivatives(x):
            return fd_derivatives(f, x, lower, fd_floor)
    else:
        def derivatives(x):
            return gradient_derivatives(fg, x, lower)
    x, fx, nfev, message = _quasi_newton(f, start, lower, fg, noise_stop)
    if np.any((lower == 0) & (x == 0)):
        for other in [start * scale for scale in (0.5, 0.1, 2.0)] + list(restarts):
            xs, fs, n, msg = _quasi_newton(f, other, lower, fg, noise_stop)
            nfev += n
            if fs < fx - 1e-10 * max(1.0, abs(fx)):
                x, fx, message = xs, fs, msg
    # `noise_stop` (finite differences only): stop polishing where the predicted gain is at
    # the noise of f (the GLMM's Laplace deviance: its modes are iterated, so f is noisier
    # than the LMM's closed-form profiled deviance, whose polish keeps going to 1e-9 steps)
    decrease_tol = 1e-14 * max(1.0, abs(fx)) if noise_stop and fg is None else 0.0
    for attempt in range(4):
        x, fx, n, derivs = polish(f, derivatives, x, lower, decrease_tol=decrease_tol)
        nfev += n
        x_snapped, fx, n = snap_to_bound(f, x, fx, lower)
        nfev += n
        if derivs is None or not np.array_equal(x_snapped, x):
            derivs = derivatives(x_snapped)
            nfev += derivs[3]
        x = x_snapped
        g, H, at_bound = derivs[:3]
        free = _free(g, at_bound)
        if attempt == 3:
            break
        escaped = _escape_bound_saddle(f, fg, x, fx, lower, H, at_bound, noise_stop)
        if escaped is None:
            break
        x, fx, n, message = escaped
        nfev += n
    scaled, min_eig = 0.0, np.inf
    if free.any():
        Hf = H[np.ix_(free, free)]
        eig = np.linalg.eigvalsh(Hf)
        min_eig = float(eig.min())
        if min_eig > 0:
            scaled = float(np.max(np.abs(np.linalg.solve(Hf, g[free]))))
        else:
            scaled = float(np.max(np.abs(g[free])))
    held = at_bound & ~free
    if held.any():
        # a held coordinate with negative curvature: the deviance falls on moving inside
        min_eig = min(min_eig, float(np.min(np.diag(H)[held])))
    return Optimum(theta=x, value=float(fx), gradient=g, scaled_gradient=scaled,
                   hessian_min_eig=min_eig, at_bound=at_bound & ~free, nfev=int(nfev),
                   message=message, hessian=H, near_bound=at_bound)


def check_fit(opt: Optimum, structure: ReStructure, theta: np.ndarray | None = None) -> bool:
    """Warn in plain words about boundary fits and doubtful convergence; return `converged`.

    `theta` is θ in the original units when the optimum's coordinates hold more than θ (the
    GLMM's search over θ and β together); by default the optimum's own coordinates.
    """
    converged = True
    if opt.flat:
        warn(
            "The optimiser could not estimate the random-effect variances: the criterion "
            "(deviance) is the same for every value it tried (a flat criterion), so the reported "
            "variances are only where the search started (equal to the residual variance). "
            "The data carry "
            "no information about them, e.g. because the fixed part already contains the "
            "random terms. Simplify the random effects or remove fixed terms that duplicate "
            "them.", ConvergenceWarning)
        return False
    theta_unit = structure.to_unit_scale(opt.theta if theta is None else theta)
    scale = max(1.0, float(np.max(np.abs(theta_unit))))
    # the Newton step left, relative to θ̃ (a random-effect SD of 6000σ is known to 1e-3·6000)
    if opt.scaled_gradient > 1e-3 * scale or np.any(opt.gradient[opt.at_bound] < -1e-3):
        converged = False
        warn(
            f"The optimiser may not have found the best estimates: the deviance still slopes at "
            f"the end point (scaled gradient {opt.scaled_gradient:.2g}; a failure to converge). "
            f"Rescale covariates (e.g. centre and divide by the SD), or simplify the random "
            f"effects.", ConvergenceWarning)
    if np.isfinite(opt.hessian_min_eig) and opt.hessian_min_eig < -1e-6 * scale:
        converged = False
        warn(
            "The fit may sit at a saddle point rather than a maximum of the likelihood (the "
            "Hessian of the deviance is not positive definite). Simplify the random effects or "
            "rescale covariates.", ConvergenceWarning)
    # on the unit scale (columns of Z with RMS 1), so the verdict does not depend on units
    for block, T in zip(structure.blocks, structure.factors_T(theta_unit)):
        diag = np.diag(T)
        if not np.any(diag < SINGULAR_TOL):
            continue
        relative_var = np.diag(T @ T.T)  # variances in units of σ² (unit-scale columns)
        zero = [c for c, v in zip(block.columns, relative_var) if v < SINGULAR_TOL ** 2]
        where = f"'({block.term.expr} | {block.factor})'"
        if zero:
            what = " and ".join(repr(z) for z in zero)
            kind = "intercept" if zero == ["Intercept"] else "effect"
            warn(
                f"The random-{kind} variance of {what} by {block.factor!r} is estimated at zero "
                f"(a boundary, or 'singular', fit): these data show no evidence that it differs "
                f"between groups of {block.factor!r}. Consider dropping it from {where}.",
                BoundaryFitWarning)
        else:
            warn(
                f"The random effects in {where} are perfectly correlated (a correlation "
                f"estimated at ±1: a boundary, or 'singular', fit): the data cannot separate "
                f"them. Consider uncorrelated effects ('||') or dropping a random slope.",
                BoundaryFitWarning)
    return converged


__all__ = ["Optimum", "minimize_deviance", "check_fit", "SINGULAR_TOL", "polish", "fd_derivatives",
           "gradient_derivatives"]
