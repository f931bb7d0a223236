"""Fitting GLMMs: the pipeline behind `mlteach.glmm`.

Stages, each callable on its own: `prepare` (formula and data → arrays, checked, with the shared
random-effects structure) → for any structure, the Laplace deviance of `mlteach.glmm.laplace`
minimised by the shared optimiser; for one scalar random intercept, the batched
`marginal_loglik` (Laplace or AGQ, with its exact gradient) and `maximise` (quasi-Newton, then
Newton steps on a finite-difference Hessian, with a convergence check) → assemble a
`GLMMResult`. PQL takes its own route through `fit_pql` / `fit_pql_general`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from numbers import Integral
from typing import Callable, Literal, Sequence

import numpy as np
import pandas as pd
from scipy import linalg, optimize

from mlteach.errors import (BoundaryFitWarning, ConvergenceWarning, MlteachError,
                            SeparationWarning, user_stacklevel)
from mlteach.glmm.family import (LINKS, Family, FamilyName, GLMFit, fit_glm,
                                 separation_direction)
from mlteach.glmm.laplace import LaplaceDeviance, fit_laplace
from mlteach.glmm.model import GLMMData, MixedGLMMData, prepare
from mlteach.glmm.pql import fit_pql, fit_pql_general
from mlteach.glmm.quadrature import marginal_loglik
from mlteach.glmm.results import GLMMResult, Method, method_label
from mlteach.mixed.optimize import check_fit
from mlteach.mixed.structure import block_diag_T, conditional_covariances, split_factor_blocks

MAX_NAGQ = 100
DEFAULT_AGQ_NODES = 25
# σ below this (on the link scale) is treated as a candidate boundary fit and compared with σ = 0.
BOUNDARY_SD = 1e-4


def glmm(formula: str, data: pd.DataFrame, family: FamilyName = "binomial",
         method: Method = "laplace", nagq: int | None = None, trials: str | None = None,
         offset: str | None = None, link: str | None = None, weights: str | None = None
         ) -> GLMMResult:
    """Fit a logistic (or probit, cloglog) or Poisson mixed model (book, GLMM chapter).

    Parameters
    ----------
    formula : str
        lme4's syntax: ``"y ~ x1 + x2 + (1 | group)"``, random slopes ``(1 + x | g)``,
        uncorrelated ``(1 + x || g)``, nested ``(1 | a/b)``, crossed ``(1 | a) + (1 | b)``,
        ``offset(log(exposure))`` terms and, for the binomial, ``cbind(successes, failures)``
        on the left. The fixed part is formulaic syntax (powers as ``I(age**2)``, named
        ``I(age ** 2)``).
    data : DataFrame
    family : "binomial" or "poisson"
        Binomial: a 0/1 outcome, a two-level categorical outcome (its second level, in
        category order, is coded 1 and the summary says so), a count of successes with
        ``trials`` or ``cbind``, or a proportion with ``weights``. Poisson (log link): counts.
    method : "laplace", "agq" or "pql"
        Laplace approximation (any random-effects structure), adaptive Gauss–Hermite
        quadrature with ``nagq`` nodes (one grouping factor with a scalar random effect and a
        canonical link, as glmer allows), or penalised quasi-likelihood (any random part, as
        MASS::glmmPQL).
    nagq : int, optional
        Quadrature nodes for ``method="agq"`` (default 25, at most 100); ``nagq=1`` is the
        Laplace approximation. Not used by "laplace" (always 1) or "pql".
    trials : str, optional
        Column with the number of trials when the outcome counts successes (binomial only).
    offset : str, optional
        Column added to the linear predictor with coefficient 1, e.g. log exposure (the same
        as ``offset(column)`` in the formula).
    link : str, optional
        "logit" (default), "probit" or "cloglog" for the binomial; "log" for Poisson.
    weights : str, optional
        Binomial only: the number of trials behind a proportion outcome (glmer's binomial
        ``weights``); successes are outcome × weights.

    Returns
    -------
    GLMMResult

    Notes
    -----
    The model, with spherical random effects u and b = Λ_θ u (the structure `mlteach.lmm` uses):

    .. math::

        \\begin{gathered}
        y_i \\mid u \\sim \\text{Binomial}(m_i, \\mu_i) \\text{ or Poisson}(\\mu_i), \\\\
        g(\\mu_i) = \\eta_i = x_i'\\beta + o_i + z_i'\\Lambda_\\theta u,
        \\quad u \\sim N(0, I).
        \\end{gathered}

    Laplace maximises the approximate marginal log-likelihood over (θ, β) jointly, as glmer's
    final stage does, with the conditional modes û found exactly by penalised IRLS at every
    evaluation (`mlteach.glmm.laplace`). With one grouping factor and a scalar random effect,
    Laplace and AGQ run on a batched path that works with b_j = σu_j: the likelihood is symmetric
    in σ, so σ is optimised on the whole real line and reported as ``|σ|``; a fit whose σ falls
    below 1e-4 is compared with σ = 0 (the ordinary GLM), and the better one is kept (a boundary
    fit, with a `BoundaryFitWarning`). Convergence is judged by Newton's decrement g'H⁻¹g < 1e-8
    with H positive definite, H the finite-difference Hessian of −log L. PQL follows
    MASS::glmmPQL for any random part (see `mlteach.glmm.pql`).
    """
    fam, method, nagq = _check_options(family, method, nagq, link)
    data_ = prepare(formula, data, fam, trials, offset, weights)
    if isinstance(data_, MixedGLMMData):
        if method == "pql":
            return _result_pql_general(data_)
        if method != "laplace":
            what = ("more than one random intercept" if fam.canonical
                    else f"the {fam.link} link")
            raise MlteachError(
                f"method='agq' (adaptive quadrature) is available for one random intercept "
                f"'(1 | group)' with the canonical link (logit, log); this model has {what}. "
                f"Fit it with method='laplace' (the default) or 'pql', which handle any "
                f"random-effects structure and link.")
        return _result_general(data_)
    if method == "pql":
        return _result_pql(data_)
    return _result_likelihood(data_, method, nagq)


def _check_options(family: str, method: str, nagq: object, link: object = None
                   ) -> tuple[Family, Method, int | None]:
    if family not in ("binomial", "poisson"):
        raise MlteachError(
            f"family must be 'binomial' (logistic, 0/1 or successes out of trials) or "
            f"'poisson' (counts), got {family!r}.")
    if link is not None and link not in LINKS[family]:
        raise MlteachError(
            f"link={link!r} is not available for the {family} family; choose one of "
            f"{', '.join(map(repr, LINKS[family]))}.")
    fam = Family(family, None if link is None or link == LINKS[family][0] else link)
    if method not in ("laplace", "agq", "pql"):
        raise MlteachError(f"method must be 'laplace', 'agq' or 'pql', got {method!r}.")
    if nagq is not None and (isinstance(nagq, bool) or not isinstance(nagq, Integral)):
        raise MlteachError(f"nagq must be a whole number of quadrature nodes, got {nagq!r}.")
    if method == "laplace":
        if nagq not in (None, 1):
            raise MlteachError(
                f"The Laplace approximation uses one node; for nagq={nagq} nodes use "
                f"method='agq'.")
        return fam, method, 1
    if method == "pql":
        if nagq is not None:
            raise MlteachError("PQL does not use quadrature: leave nagq unset for method='pql'.")
        return fam, method, None
    nagq = DEFAULT_AGQ_NODES if nagq is None else int(nagq)
    if nagq < 1:
        raise MlteachError(
            f"nagq must be at least 1 (1 node is the Laplace approximation), got {nagq}.")
    if nagq > MAX_NAGQ:
        raise MlteachError(
            f"nagq={nagq} is more quadrature nodes than can help: the nodes are centred and "
            f"scaled at each group's mode, so the one-dimensional integrals are already "
            f"accurate far below the statistical uncertainty with 10-25 nodes, while the work "
            f"grows with every node. Use at most {MAX_NAGQ} (25 is a common choice; compare "
            f"several with compare_glmm_methods).")
    return fam, method, nagq


# ----------------------------------------------------------------------------------------------
# Laplace and adaptive quadrature
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Optimum:
    """Where `maximise` stopped, with the Hessian there and the verdict of its check."""

    beta: np.ndarray
    sd: float
    loglik: float
    cov: np.ndarray            # inverse Hessian of −log L over (β, σ)
    converged: bool
    decrement: float
    positive_definite: bool
    n_evaluations: int


def maximise(data: GLMMData, nagq: int, glm: GLMFit | None = None,
             start: tuple[np.ndarray, float] | None = None) -> Optimum:
    """Maximise the AGQ (nagq = 1: Laplace) log-likelihood over θ = (β, σ) jointly.

    Coordinates are whitened by the Hessian at the start, θ = θ₀ + Tx with T'HT ≈ I, so that
    badly scaled columns (age and age²) do not slow the optimiser. BFGS with the exact gradient
    finds the Laplace optimum; for nagq > 1 BFGS continues from there on the quadrature
    likelihood (the conditional modes are the same, only the integration rule differs). Newton
    steps on a central-difference Hessian of the exact gradient then polish the optimum and
    give the covariance matrix.
    """
    p = data.X.shape[1]
    if glm is None:
        glm = fit_glm(data.family, data.y, data.trials, data.X, data.offset, data.const)
    cache = {"u": None, "n": 0}

    def negll(theta: np.ndarray, k: int = nagq, gradient: bool = True):
        cache["n"] += 1
        r = marginal_loglik(data, theta[:p], float(theta[p]), k, cache["u"], gradient)
        cache["u"] = r.modes.u
        if not gradient:
            return -r.value
        return -r.value, -np.append(r.grad_beta, r.grad_sd)

    if start is None:
        sds = (0.25, 0.5, 1.0, 2.0)
        values = [negll(np.append(glm.beta, s), 1, gradient=False) for s in sds]
        start = (glm.beta, sds[int(np.argmin(values))])
    theta0 = np.append(start[0], start[1])
    H0 = _hessian(lambda t: negll(t, 1)[1], theta0, np.full(p + 1, 1e-5), central=False)
    T = _whitening(H0, glm.information)

    def in_x(x: np.ndarray, k: int = nagq):
        f, g = negll(theta0 + T @ x, k)
        return f, T.T @ g

    x = np.zeros(p + 1)
    for k in sorted({1, nagq}):
        x = optimize.minimize(in_x, x, args=(k,), jac=True, method="BFGS",
                              options={"gtol": 1e-5, "maxiter": 2000}).x
    f, g = in_x(x)
    Hx = _hessian(lambda y: in_x(y)[1], x, np.full(p + 1, 1e-4), central=True)
    for _ in range(4):                                    # Newton polish on the Hessian
        step, decrement, pd_ok = _newton_step(Hx, g)
        if decrement < 1e-8 and pd_ok:
            break
        t = 1.0
        while t > 1e-4:
            f_new, g_new = in_x(x + t * step)
            if f_new <= f + 1e-12 * abs(f):
                break
            t /= 2
        else:
            break
        x, f, g = x + t * step, f_new, g_new
        Hx = _hessian(lambda y: in_x(y)[1], x, np.full(p + 1, 1e-4), central=True)
    _, decrement, pd_ok = _newton_step(Hx, g)
    theta = theta0 + T @ x
    cov = T @ _inverse(Hx) @ T.T
    return Optimum(beta=theta[:p], sd=float(theta[p]), loglik=-f, cov=cov,
                   converged=bool(pd_ok and decrement < 1e-8 and np.isfinite(f)),
                   decrement=float(decrement), positive_definite=pd_ok,
                   n_evaluations=cache["n"])


def _hessian(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: np.ndarray,
             central: bool) -> np.ndarray:
    """Finite-difference Hessian from an exact gradient, symmetrised."""
    k = len(x)
    H = np.empty((k, k))
    g0 = None if central else grad(x)
    for j in range(k):
        e = np.zeros(k)
        e[j] = h[j]
        H[:, j] = ((grad(x + e) - grad(x - e)) / (2 * h[j]) if central
                   else (grad(x + e) - g0) / h[j])
    return (H + H.T) / 2


def _whitening(H0: np.ndarray, info_beta: np.ndarray) -> np.ndarray:
    """T with T'H₀T = I (from the Cholesky factor of H₀), or a diagonal fallback."""
    try:
        L = linalg.cholesky(H0, lower=True)
        return linalg.solve_triangular(L, np.eye(len(H0)), lower=True).T
    except linalg.LinAlgError:
        d = np.append(np.diag(info_beta), max(abs(H0[-1, -1]), 1.0))
        return np.diag(1.0 / np.sqrt(np.maximum(d, 1e-12)))


def _newton_step(H: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """Newton step −H⁻¹g, the decrement g'H⁻¹g and whether H is positive definite."""
    try:
        c = linalg.cho_factor(H)
    except linalg.LinAlgError:
        return -g, float(g @ g), False
    step = -linalg.cho_solve(c, g)
    return step, float(-g @ step), True


def _inverse(H: np.ndarray) -> np.ndarray:
    """H⁻¹, or NaNs when H is singular (reported through `converged`, not a second warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        try:
            return linalg.inv(H)
        except linalg.LinAlgError:
            return np.full(H.shape, np.nan)


def _result_likelihood(data: GLMMData, method: Method, nagq: int) -> GLMMResult:
    fam = data.family
    p = data.X.shape[1]
    glm = fit_glm(fam, data.y, data.trials, data.X, data.offset, data.const)
    _check_separation(data, glm)
    work = data.contiguous()             # rows sorted by group: fast group sums; same model
    opt = maximise(work, nagq, glm)
    beta, sd, cov, loglik = opt.beta, opt.sd, opt.cov, opt.loglik
    boundary = False
    if abs(sd) < BOUNDARY_SD:
        if glm.loglik >= loglik - 1e-9:
            boundary = True
            beta, sd, loglik = glm.beta, 0.0, glm.loglik
            cov = _boundary_cov(work, beta, nagq)
    final = marginal_loglik(work, beta, sd, nagq, gradient=False)
    b = sd * final.modes.u
    condvar = sd ** 2 / final.modes.h
    sd = abs(sd)
    decrement_text = (f"Newton decrement {opt.decrement:.2g} (criterion < 1e-8), Hessian "
                      f"{'positive definite' if opt.positive_definite else 'not positive definite'}"
                      f", after {opt.n_evaluations} likelihood evaluations")
    if boundary:
        decrement_text += "; σ = 0 taken from the ordinary GLM, whose optimum is exact"
    converged = opt.converged or boundary
    if not converged:
        warnings.warn(
            f"The optimiser stopped without clear evidence of a maximum (no convergence: "
            f"{decrement_text}). Estimates may be inaccurate: rescale badly scaled "
            f"predictors (centre them, or divide by their SD) and check for separation.",
            ConvergenceWarning, stacklevel=user_stacklevel())
    if boundary:
        warnings.warn(
            f"The random-intercept SD for {data.groups.name!r} is estimated at zero: the data "
            f"show no evidence that groups differ beyond chance (a boundary, or singular, fit). "
            f"The fixed effects equal those of the ordinary GLM without the random intercept.",
            BoundaryFitWarning, stacklevel=user_stacklevel())
    return _assemble(data, method, nagq, beta, cov[:p, :p], sd, loglik, b, condvar,
                     converged, decrement_text, scale=1.0,
                     n_evaluations=opt.n_evaluations)


def _boundary_cov(data: GLMMData, beta: np.ndarray, nagq: int) -> np.ndarray:
    """Covariance at σ = 0: by symmetry in σ the (β, σ) cross terms vanish, leaving the GLM's."""
    p = len(beta)

    def grad(theta):
        r = marginal_loglik(data, theta[:p], float(theta[p]), nagq)
        return -np.append(r.grad_beta, r.grad_sd)

    H = _hessian(grad, np.append(beta, 0.0), np.append(np.full(p, 1e-5), 1e-3), central=True)
    cov = np.full((p + 1, p + 1), np.nan)
    cov[:p, :p] = _inverse(H[:p, :p])
    return cov


def _check_separation(data: GLMMData, glm: GLMFit) -> list[str] | None:
    """Warn, naming the terms, when the fixed effects separate a binomial outcome; return them."""
    if data.family.name != "binomial":
        return None
    eta = data.X @ glm.beta + data.offset
    if glm.converged and np.max(np.abs(eta)) < 15:
        return None
    delta = separation_direction(data.family, data.y, data.trials, data.X)
    if delta is None:
        return None
    terms = [t for t, d in zip(data.design.terms, delta) if abs(d) > 1e-6 * np.max(np.abs(delta))]
    if len(terms) > 1 and "Intercept" in terms:            # the intercept only shifts the cut
        terms.remove("Intercept")
    warnings.warn(
        f"The outcome is perfectly predicted by {', '.join(map(repr, terms))} in part of the "
        f"data (complete or quasi-complete separation): the likelihood keeps rising as these "
        f"coefficients grow, so their estimates and standard errors are not meaningful. "
        f"Remove or merge the offending term or categories, or use a penalised (Firth) fit.",
        SeparationWarning, stacklevel=user_stacklevel())
    return terms


# ----------------------------------------------------------------------------------------------
# Any random-effects structure: Laplace by sparse PIRLS
# ----------------------------------------------------------------------------------------------


def _result_general(data: MixedGLMMData) -> GLMMResult:
    fam = data.family
    glm = fit_glm(fam, data.y, data.trials, data.X, data.offset, data.const)
    _check_separation(data, glm)
    dev = LaplaceDeviance(fam, data.y, data.trials, data.X, data.offset, data.const,
                          data.structure)
    fit = fit_laplace(dev, glm.beta, glm.information)
    structure = data.structure
    converged = check_fit(fit.optimum, structure, theta=fit.theta)
    if not fit.modes.converged:
        converged = False
        warnings.warn(
            "Penalised IRLS did not settle on the conditional modes of the random effects at "
            "the estimates, so the Laplace log-likelihood may be inaccurate. Rescale the "
            "predictors (centre them, or divide by their SD) and check for separation.",
            ConvergenceWarning, stacklevel=user_stacklevel())
    A = dev.A_at(fit.theta, fit.modes)
    opt = fit.optimum
    text = (f"Laplace approximation at exact conditional modes (PIRLS decrement < 1e-10); "
            f"optimiser: {opt.message}; scaled gradient {opt.scaled_gradient:.2g}, smallest "
            f"Hessian eigenvalue {opt.hessian_min_eig:.3g}, after {fit.n_evaluations} "
            f"deviance evaluations")
    blocks_b, condcov = _laplace_blocks(structure, fit.theta, fit.modes.u, A)
    return _assemble_mixed(data, fit.theta, fit.beta, fit.vcov, -0.5 * fit.deviance,
                           blocks_b, condcov, converged, text, fit.n_evaluations)


def _result_pql_general(data: MixedGLMMData) -> GLMMResult:
    """PQL with any random part (`fit_pql_general`); reported on glmmPQL's scale: random-effect
    covariances absolute (σ²Λ_θΛ_θ'), `scale` the working model's residual SD."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(all="ignore"):
            fit = fit_pql_general(data)
    if not (np.all(np.isfinite(fit.beta)) and np.all(np.isfinite(np.diag(fit.vcov)))):
        raise MlteachError(
            f"PQL broke down: its estimates came out as NaN (not a number) for "
            f"{data.design.response!r}. This happens when some rows are fitted perfectly "
            f"(probabilities of exactly 0 or 1, or rates of 0). Fit with method='laplace', and "
            f"check for terms or groups that predict the outcome exactly.")
    # Only the last working model's verdicts concern the user (boundary, convergence).
    converged = check_fit(fit.optimum, data.structure) and fit.converged
    for w in caught:
        if not issubclass(w.category, (BoundaryFitWarning, ConvergenceWarning)):
            warnings.warn(w.message, w.category, stacklevel=user_stacklevel())
    if not fit.converged:
        warnings.warn(
            "PQL did not settle in 10 rounds (no convergence): the linear predictor was still "
            "changing. PQL is known to struggle with small clusters and binary data; compare "
            "with method='laplace'.", ConvergenceWarning, stacklevel=user_stacklevel())
    text = (f"PQL iterations: {fit.n_iter} (glmmPQL's rule: stop when the linear predictor "
            f"changes by less than 1e-6 in relative squared norm, at most 10 rounds); each "
            f"round a weighted linear mixed model fitted by maximum likelihood")
    return _assemble_mixed(data, fit.theta * fit.sigma, fit.beta, fit.vcov, float("nan"),
                           fit.b_blocks, fit.condcov, converged, text, fit.n_iter,
                           method="pql", scale=fit.sigma)


def _laplace_blocks(structure, theta: np.ndarray, u: np.ndarray, A
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """b = Λ_θ û split by structure block (levels × q_k), and each block's conditional
    covariances (levels × q_k × q_k) from A = Λ'Z'WZΛ + I at the modes."""
    b_all = np.zeros(structure.n_effects)
    rows, cols, ind = structure.lambda_pattern()
    np.add.at(b_all, rows, theta[ind] * u[cols])
    condcov = split_factor_blocks(structure, conditional_covariances(structure, A, theta, 1.0))
    blocks_b, pos = [], 0
    for blk in structure.blocks:
        blocks_b.append(b_all[pos:pos + blk.n_effects].reshape(blk.groups.n_groups, blk.q))
        pos += blk.n_effects
    return blocks_b, condcov


def _assemble_mixed(data: MixedGLMMData, theta: np.ndarray, beta: np.ndarray,
                    vcov: np.ndarray, loglik: float, blocks_b: list[np.ndarray],
                    condcov: list[np.ndarray], converged: bool, convergence: str,
                    n_evaluations: int, method: Method = "laplace", scale: float = 1.0
                    ) -> GLMMResult:
    """The result of a general GLMM: random effects b by factor, as the LMM reports them.
    `theta` is the factor of the random effects' covariance (cov = Λ_θΛ_θ', absolute)."""
    structure = data.structure
    terms = pd.Index(data.design.terms)
    ranef, condvar, cov_re, ngroups = {}, {}, {}, {}
    Ts = structure.factors_T(theta)
    for g in structure.factors:
        idx = [i for i, blk in enumerate(structure.blocks) if blk.factor == g]
        cols_g = [c for i in idx for c in structure.blocks[i].columns]
        levels = pd.Index([str(v) for v in structure.blocks[idx[0]].groups.levels], name=g)
        ranef[g] = pd.DataFrame(np.column_stack([blocks_b[i] for i in idx]), index=levels,
                                columns=cols_g)
        condvar[g] = pd.DataFrame(
            np.column_stack([np.diagonal(condcov[i], axis1=1, axis2=2) for i in idx]),
            index=levels, columns=cols_g)
        cov_re[g] = pd.DataFrame(block_diag_T([Ts[i] @ Ts[i].T for i in idx]), index=cols_g,
                                 columns=cols_g)
        ngroups[g] = len(levels)
    sds = pd.Series({f"{g}: {c}": float(np.sqrt(cov_re[g].loc[c, c]))
                     for g in cov_re for c in cov_re[g].index}, name="sd")
    one = len(ngroups) == 1
    pick = (lambda d: next(iter(d.values()))) if one else (lambda d: d)
    return GLMMResult(
        fixef=pd.Series(beta, index=terms, name="estimate"),
        bse=pd.Series(np.sqrt(np.where(np.diag(vcov) >= 0, np.diag(vcov), np.nan)),
                      index=terms, name="std.err"),
        vcov=pd.DataFrame(vcov, index=terms, columns=terms),
        sd_re=float(sds.iloc[0]) if len(sds) == 1 else sds, loglik=float(loglik),
        ranef=pick(ranef), ranef_condvar=pick(condvar), converged=bool(converged),
        method=method, nagq=1 if method == "laplace" else None, nobs=data.design.nobs,
        ngroups=pick(ngroups) if one else ngroups, family=data.family.name,
        formula=data.formula, group=", ".join(ngroups), scale=float(scale),
        convergence=convergence,
        n_evaluations=int(n_evaluations), data=data,
        theta=pd.Series(theta, index=structure.theta_names(), name="theta"),
        cov_re=pick(cov_re), link=data.family.link)


# ----------------------------------------------------------------------------------------------
# PQL
# ----------------------------------------------------------------------------------------------


def _result_pql(data: GLMMData) -> GLMMResult:
    separated = None
    if data.family.name == "binomial":
        glm = fit_glm(data.family, data.y, data.trials, data.X, data.offset, data.const)
        separated = _check_separation(data, glm)
    try:
        with np.errstate(all="ignore"):
            fit = fit_pql(data)
        lmm = fit.lmm
        finite = (np.all(np.isfinite(lmm.beta)) and np.all(np.isfinite(np.diag(lmm.vcov)))
                  and np.isfinite(lmm.tau) and np.isfinite(lmm.sigma))
    except (np.linalg.LinAlgError, linalg.LinAlgError, FloatingPointError):
        finite = False
    if not finite:
        if separated:
            raise MlteachError(
                f"PQL cannot estimate this model: the outcome {data.design.response!r} is "
                f"perfectly predicted by {', '.join(map(repr, separated))} (complete "
                f"separation), so the coefficients run off to infinity and PQL's working "
                f"linear model breaks down (its estimates came out as NaN, not a number). "
                f"Remove or merge the offending term or categories, or fit with "
                f"method='laplace', which reports the diverging estimates with a warning.")
        raise MlteachError(
            f"PQL broke down: its estimates came out as NaN (not a number) for "
            f"{data.design.response!r}. This happens when some rows are fitted perfectly "
            f"(probabilities of exactly 0 or 1, or rates of 0). Fit with method='laplace' or "
            f"'agq', and check for terms or groups that predict the outcome exactly.")
    text = (f"PQL iterations: {fit.n_iter} (glmmPQL's rule: stop when the linear predictor "
            f"changes by less than 1e-6 in relative squared norm, at most 10 rounds)")
    if not fit.converged:
        warnings.warn(
            f"PQL did not settle in 10 rounds (no convergence): the linear predictor was still "
            f"changing. PQL is known to struggle with small clusters and binary data; compare "
            f"with method='laplace' or 'agq'.", ConvergenceWarning, stacklevel=user_stacklevel())
    return _assemble(data, "pql", None, lmm.beta, lmm.vcov, lmm.tau, float("nan"), lmm.blup,
                     lmm.condvar, fit.converged, text, scale=lmm.sigma, n_evaluations=fit.n_iter)


# ----------------------------------------------------------------------------------------------
# Assembling the result
# ----------------------------------------------------------------------------------------------


def _assemble(data: GLMMData, method: Method, nagq: int | None, beta: np.ndarray,
              vcov: np.ndarray, sd: float, loglik: float, b: np.ndarray, condvar: np.ndarray,
              converged: bool, convergence: str, scale: float, n_evaluations: int
              ) -> GLMMResult:
    terms = pd.Index(data.design.terms)
    levels = pd.Index(data.groups.levels, name=data.groups.name)
    return GLMMResult(
        fixef=pd.Series(beta, index=terms, name="estimate"),
        bse=pd.Series(np.sqrt(np.where(np.diag(vcov) >= 0, np.diag(vcov), np.nan)), index=terms,
                      name="std.err"),
        vcov=pd.DataFrame(vcov, index=terms, columns=terms),
        sd_re=float(sd), loglik=float(loglik),
        ranef=pd.DataFrame({"Intercept": b}, index=levels),
        ranef_condvar=pd.DataFrame({"Intercept": condvar}, index=levels),
        converged=bool(converged), method=method, nagq=nagq, nobs=data.design.nobs,
        ngroups=data.groups.n_groups, family=data.family.name, formula=data.formula,
        group=data.groups.name, scale=float(scale), convergence=convergence,
        n_evaluations=int(n_evaluations), data=data,
        theta=pd.Series([float(sd)], index=[f"{data.groups.name}.Intercept"], name="theta"),
        cov_re=pd.DataFrame([[float(sd) ** 2]], index=["Intercept"], columns=["Intercept"]),
        link=data.family.link)


# ----------------------------------------------------------------------------------------------
# One model, several methods
# ----------------------------------------------------------------------------------------------


def compare_glmm_methods(formula: str, data: pd.DataFrame, family: FamilyName = "binomial",
                         nagq: Sequence[int] = (1, 5, 25), pql: bool = True,
                         trials: str | None = None, offset: str | None = None) -> pd.DataFrame:
    """Fit one GLMM by Laplace, adaptive quadrature (each `nagq`) and PQL, side by side.

    Returns a DataFrame with one row per method (``Laplace``, ``AGQ (25 nodes)``, ``PQL``) and
    columns: each fixed effect, ``sd_re``, ``loglik`` (NaN for PQL), ``fit_time_s`` and
    ``converged``. A warning raised by several fits (e.g. about groups whose outcomes are all
    equal) is shown once.

    Notes
    -----
    ``nagq=1`` is the Laplace approximation. As nagq grows the AGQ log-likelihood converges to
    the exact marginal likelihood; PQL's estimates of σ are typically smaller (biased toward 0)
    for binary outcomes and small groups (Breslow & Clayton 1993; Rodríguez & Goldman 1995).
    """
    runs: list[tuple[Method, int | None]] = [("laplace" if q == 1 else "agq", int(q))
                                              for q in nagq]
    if pql:
        runs.append(("pql", None))
    rows, labels, seen = [], [], set()
    for method, q in runs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            fit = glmm(formula, data, family=family, method=method,
                       nagq=q if method == "agq" else None, trials=trials, offset=offset)
            elapsed = time.perf_counter() - t0
        for w in caught:
            key = (w.category, str(w.message))
            if key not in seen:
                seen.add(key)
                warnings.warn(w.message, w.category, stacklevel=user_stacklevel())
        labels.append(method_label(method, q))
        rows.append({**fit.fixef.to_dict(), "sd_re": fit.sd_re, "loglik": fit.loglik,
                     "fit_time_s": elapsed, "converged": fit.converged})
    return pd.DataFrame(rows, index=pd.Index(labels, name="method"))


__all__ = ["glmm", "compare_glmm_methods", "maximise"]
