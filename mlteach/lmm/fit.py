"""Fit a linear mixed model: parse → encode → deviance function → optimise → check → assemble.

Each stage can be called on its own (as lme4's modular functions): `parse_mixed_formula`,
`build_structure`, `deviance_function` (the profiled deviance as a function of θ, to plot or
optimise), `minimize_deviance`, `check_fit`, and `assemble`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pandas as pd

from mlteach.design import (Design, assert_full_rank, check_columns, fixed_design,
                            formula_variables)
from mlteach.errors import (BoundaryFitWarning, ConvergenceWarning, DataTypeError,
                            FormulaSyntaxError, GroupingError, MlteachError, RankDeficientError,
                            warn)
from mlteach.lmm.blocked import BlockedDeviance
from mlteach.lmm.deviance import SparseDeviance, sigma2_hat, split_factor_blocks
from mlteach.mixed.formula import MixedFormula, parse_mixed_formula
from mlteach.mixed.offset import Offset, build_offset
from mlteach.mixed.blocked import MAX_DENSE
from mlteach.mixed.optimize import SINGULAR_TOL, Optimum, check_fit, minimize_deviance
from mlteach.lmm.result import LMMResult
from mlteach.lmm.single import SingleFactorDeviance
from mlteach.mixed.structure import ReStructure, build_structure, random_variables

Method = Literal["auto", "single", "blocked", "sparse"]
# A random-effect column whose residual after projection on span(X) is below this share of
# its length lies in span(X) (`check_confounding`).
CONFOUND_RTOL = 1e-8
# A criterion whose values over the whole search differ by less than this (relative) is flat.
FLAT_RTOL = 1e-9


def deviance_function(design: Design, structure: ReStructure, method: Method = "auto",
                      weights: np.ndarray | None = None, offset: np.ndarray | None = None
                      ) -> SingleFactorDeviance | SparseDeviance:
    """The evaluator of the profiled deviance: per-group fast path for one grouping factor,
    block elimination for several, sparse LU when the smaller factors have too many effects
    for a dense Schur complement (or as requested by `method`).

    With prior weights w (residual variance σ²/w_i, as lmer's ``weights``) the rows of X, y − o
    and Z are multiplied by √w_i: the weighted model is an unweighted one in those rows. Its
    deviance differs from the evaluator's by the constant −Σ log w_i (`log_weights`), which
    moves no estimate; `assemble` adds it to the log-likelihood.
    """
    if method not in ("auto", "single", "blocked", "sparse"):
        raise MlteachError(f"method must be 'auto', 'single', 'blocked' or 'sparse', got "
                           f"{method!r}.")
    if method == "single" and not structure.single_factor:
        raise MlteachError(f"method='single' needs one grouping factor; this model has "
                         f"{', '.join(structure.factors)}. Use method='auto'.")
    X, y = design.X, design.y
    if offset is not None:
        y = y - offset
    if weights is not None:
        sw = np.sqrt(weights)
        X, y = X * sw[:, None], y * sw
        structure = structure.row_scaled(sw)
    if method == "sparse":
        return SparseDeviance(X, y, structure)
    if method == "blocked" or not structure.single_factor:
        blocked = BlockedDeviance.choose(X, y, structure)
        if blocked is not None:
            return blocked
        if method == "blocked":
            raise MlteachError(f"method='blocked' needs at most {MAX_DENSE} random effects "
                               f"outside the largest block; this model has more. Use "
                               f"method='auto'.")
        return SparseDeviance(X, y, structure)
    return SingleFactorDeviance(X, y, structure)


def prior_weights(name: object, used: pd.DataFrame) -> np.ndarray | None:
    """The column of prior weights (lmer's ``weights``), checked: finite and positive."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise DataTypeError(f"weights must be a column name (a string), got {name!r}.")
    col = used[name]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise DataTypeError(f"The weights column {name!r} must be numeric, got {col.dtype}.")
    w = col.to_numpy(dtype=float)
    bad = ~np.isfinite(w) | (w <= 0)
    if bad.any():
        row = used.index[bad][0]
        raise DataTypeError(
            f"The weights column {name!r} must be positive and finite; row {row!r} has "
            f"{w[bad][0]:g} ({int(bad.sum())} such rows). A weight w_i says row i has residual "
            f"variance sigma^2 / w_i: drop rows that should not count instead of giving them "
            f"weight 0.")
    return w


def check_full_rank(design: Design) -> None:
    """`mlteach.design.assert_full_rank`'s verdict, without its QR when the answer is clear.

    The Cholesky factor of the column-scaled X'X has the diagonal |R_jj|/‖x_j‖ of X = QR.
    Cholesky is accurate to about p·ε in these scaled units, so when every ratio exceeds 1e-6
    (squared, 1e-12 ≫ p·ε) the design is certainly above the 1e-9 threshold of the QR check;
    otherwise (or if the factorisation fails) the QR check decides and names the columns.
    The saving matters for large n (a QR of a million rows takes ~0.1 s).
    """
    X = design.X
    XtX = X.T @ X
    norms = np.sqrt(np.diag(XtX))
    if np.all(norms > 0):
        try:
            R = np.linalg.cholesky(XtX / np.outer(norms, norms))
            if np.all(np.diag(R) > 1e-6):
                return
        except np.linalg.LinAlgError:
            pass
    assert_full_rank(X, design.terms)


def _check_sizes(design: Design, structure: ReStructure) -> None:
    n, p = design.X.shape
    if n <= p:
        raise DataTypeError(f"{n} rows for {p} fixed effects: the model needs more rows.")
    # a term with as many random effects as rows: `mlteach.mixed.structure.build_structure`


def _fixed_terms_of(design: Design, columns: np.ndarray) -> list[str]:
    """Formula terms (``C(Subject)``, ``Days:C(Subject)``) owning the given columns of X."""
    owners = []
    for term, idx in design.spec.term_indices.items():
        if any(j in idx for j in columns):
            owners.append(str(term))
    return owners


def check_confounding(design: Design, structure: ReStructure) -> None:
    """Refuse random effects that the fixed effects already contain.

    For column k of a random-effects block with grouping factor g (the intercept of
    ``(1 | g)``, or the slope of ``Days`` in ``(Days | g)``), the model adds one column per
    level, z_k restricted to that level's rows. If all of them lie in the column span of X,
    as they do when the fixed part has the dummies of g (``C(g)``, or ``Days:C(g)`` for the
    slope), the fixed effects absorb every value of those random effects: their variance is
    not identified, the REML criterion is flat in it (the optimiser stays at its start and
    reports τ² = σ²) and the ML one drives it to 0. A group-level covariate in X (a group
    mean) spans one direction among the G columns, not all of them, and is not flagged.

    The test projects each column on span(X) with a QR of X and compares the residual's
    length with the column's (relative tolerance `CONFOUND_RTOL`). Columns of different
    levels have disjoint rows and so are linearly independent: when more than p levels have
    a non-zero column they cannot all lie in the p-dimensional span(X), which settles
    ordinary models without any projection.
    """
    X = design.X
    n, p = X.shape
    Q = None
    for block in structure.blocks:
        codes, G = block.groups.codes, block.groups.n_groups
        for k, name in enumerate(block.columns):
            z = block.Z[:, k]
            col_norm2 = np.bincount(codes, weights=z * z, minlength=G)
            present = np.flatnonzero(col_norm2 > 0)
            if len(present) == 0 or len(present) > p:
                continue
            if Q is None:
                Q = np.linalg.qr(X, mode="reduced")[0]
            E = np.zeros((n, len(present)))
            pos = np.full(G, -1)
            pos[present] = np.arange(len(present))
            rows = np.flatnonzero(pos[codes] >= 0)
            E[rows, pos[codes[rows]]] = z[rows]
            resid = E - Q @ (Q.T @ E)
            ratio = np.linalg.norm(resid, axis=0) / np.sqrt(col_norm2[present])
            if np.all(ratio <= CONFOUND_RTOL):
                _raise_confounded(design, block, name, E)


def _raise_confounded(design: Design, block, name: str, E: np.ndarray) -> None:
    coef = np.linalg.lstsq(design.X, E, rcond=None)[0]
    size = np.abs(coef).max(axis=1)
    used = np.flatnonzero(size > 1e-8 * max(size.max(), 1e-300))
    terms = _fixed_terms_of(design, used)
    named = [t for t in terms if t not in ("1", "Intercept")] or terms
    fixed = " and ".join(named)
    plural = "s" if len(named) > 1 else ""
    term = f"({block.term.expr} | {block.factor})"
    if name == "Intercept":
        what, own = f"The random intercept of {term}", "intercept"
        drop = term if block.q == 1 else f"the random intercept from {term}"
    else:
        what, own = f"The random slope of {name!r} in {term}", f"slope of {name!r}"
        drop = term if block.q == 1 else f"{name!r} from {term}"
    raise RankDeficientError(
        f"{what} is confounded with the fixed term{plural} {fixed}: the fixed effects already "
        f"give every level of {block.factor!r} its own {own}, so the data cannot say how much "
        f"the levels vary around the average and that variance cannot be estimated (the "
        f"criterion would be flat in it). Drop {fixed} from the fixed part, or drop {drop}.")


def lmm(formula: str, data: pd.DataFrame, reml: bool = True, method: Method = "auto",
        weights: str | None = None) -> LMMResult:
    """Fit a linear mixed model by REML (default) or maximum likelihood, as lme4's ``lmer``.

    Parameters
    ----------
    formula : str
        lme4 syntax: ``y ~ x + (1 | g)``, ``(1 + x | g)`` (or ``(x | g)``), ``(0 + x | g)``,
        uncorrelated ``(1 + x || g)``, nested ``(1 | school/class)`` or
        ``(1 | school) + (1 | school:class)``, crossed ``(1 | a) + (1 | b)``. The fixed part and
        the random-effect expressions are encoded by formulaic (``C(f)``, ``log(x)``, ``a:b``).
    data : DataFrame
    reml : bool
        True for restricted maximum likelihood (REML), False for maximum likelihood (needed to
        compare models with different fixed effects by a likelihood-ratio test).
    method : {"auto", "single", "blocked", "sparse"}
        Evaluator of the deviance: "auto" uses per-group sufficient statistics for one grouping
        factor, the block elimination of `mlteach.lmm.blocked` for several (when the factors
        other than the largest have at most 2,500 effects) and a sparse LU otherwise; the
        others force one (for tests).
    weights : str, optional
        Column of prior weights w_i > 0, as lmer's ``weights``: row i has residual variance
        σ²/w_i (e.g. a mean of w_i observations). ``offset(expr)`` terms in the formula add
        known values with coefficient 1 to the mean (``y ~ x + offset(2 * x) + (1 | g)``).

    Returns
    -------
    LMMResult

    Raises
    ------
    RankDeficientError
        When the fixed effects are collinear, or when a random term is confounded with fixed
        terms: all the columns a random intercept or slope adds (one per level) lie in the span
        of the fixed-effect columns, e.g. ``C(g) + (1 | g)`` or ``Days:C(g) + (0 + Days | g)``
        (`check_confounding`). Its variance could not be estimated.

    Warns
    -----
    ConvergenceWarning
        Doubtful convergence, a saddle point, or a flat criterion (the same value wherever
        the optimiser looked: the data say nothing about the random-effect variances).
    BoundaryFitWarning
        A variance estimated at zero or a correlation at ±1.

    Notes
    -----
    The model, with b = Λ_θ u:

    .. math::

        y = X\\beta + Zb + \\varepsilon, \\quad b \\sim N(0, \\sigma^2 \\Lambda_\\theta
        \\Lambda_\\theta'), \\quad \\varepsilon \\sim N(0, \\sigma^2 I).

    β and σ² are profiled out; θ minimises the profiled deviance (REML criterion) of
    `mlteach.lmm.deviance`. Rows with a missing value in any variable used, grouping columns
    included, are dropped with a counted `MissingDataWarning`.
    """
    if not isinstance(reml, (bool, np.bool_)):
        raise DataTypeError(f"reml must be True or False, got {reml!r}.")
    parsed = parse_mixed_formula(formula)
    if parsed.cbind is not None:
        raise FormulaSyntaxError(
            f"cbind(successes, failures) on the left of '~' is a binomial outcome: fit it with "
            f"mlteach.glmm(..., family='binomial'). A linear mixed model takes one numeric "
            f"outcome.")
    extra = random_variables(parsed) + ([weights] if isinstance(weights, str) else [])
    if isinstance(weights, str):
        check_columns(data, [weights], "weights column")
    design = fixed_design(parsed.fixed, data, extra=list(dict.fromkeys(extra)),
                          context="the mixed model", check_rank=False)
    check_full_rank(design)
    # design.data is fixed_design's own copy of the columns used (never the caller's frame):
    # editing the caller's DataFrame after fitting changes neither the fit nor predict()
    structure = build_structure(parsed.random, design.data)
    _check_sizes(design, structure)
    check_confounding(design, structure)
    w = prior_weights(weights, design.data)
    offset = build_offset(parsed.offsets, design.data) if parsed.offsets else None
    o = offset.values(design.data, "the data") if offset is not None else None
    dev = deviance_function(design, structure, method, weights=w, offset=o)
    opt = optimize_theta(dev, structure, bool(reml))
    return assemble(formula, bool(reml), design, structure, dev, opt, offset=offset,
                    weights=w, weights_name=weights)


def optimize_theta(dev: SingleFactorDeviance | SparseDeviance, structure: ReStructure,
                   reml: bool) -> Optimum:
    """Minimise the profiled deviance over θ, searching on the unit scale θ̃ = s ⊙ θ.

    θ̃ is θ for random-effect columns rescaled to root mean square 1
    (`ReStructure.theta_scale`): a pure reparameterisation, so the optimum is the same, but
    the search no longer depends on the units of a random slope's covariate. On θ itself the
    elements of T for a slope of x in thousands are a thousand times smaller than the
    intercept's, and a quasi-Newton search from T = I can stall at a spurious boundary
    (Grunfeld's ``(1 + value | firm)``: correlation +1 instead of −0.4).

    The search starts at T̃ = I; lme4's start T = I (θ̃ = s) is a further start when the
    first search ends on the boundary. The returned `Optimum` has θ in the original units;
    its gradient, scaled gradient and Hessian eigenvalue are those on the unit scale, so the
    convergence checks are also invariant to the units of the covariates.
    """
    scale = structure.theta_scale()
    seen = [np.inf, -np.inf]       # smallest and largest criterion value the search met

    def record(value: float) -> float:
        if np.isfinite(value):
            seen[0], seen[1] = min(seen[0], value), max(seen[1], value)
        return value

    def objective(theta_unit: np.ndarray) -> float:
        return record(dev.objective(theta_unit / scale, reml))

    objective_and_gradient = None
    if getattr(dev, "has_gradient", False):
        def objective_and_gradient(theta_unit: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = dev.objective_and_gradient(theta_unit / scale, reml)
            return record(value), grad / scale          # ∂d/∂θ̃ = (∂d/∂θ) / s

    start = structure.theta_start()
    lme4_start = structure.to_unit_scale(start)
    restarts = [] if np.allclose(lme4_start, start) else [lme4_start]
    opt = minimize_deviance(objective, start, structure.theta_lower(), objective_and_gradient,
                            restarts=restarts)
    flat = False
    if seen[1] - seen[0] <= FLAT_RTOL * max(1.0, abs(opt.value)):
        # Every value met was the same (the search may have stopped at once, its gradient 0):
        # look further away before calling the criterion flat.
        probes = [objective(start * t) for t in (0.0, 0.3, 3.0)]
        flat = max(probes + [seen[1]]) - min(probes + [seen[0]]) <= (
            FLAT_RTOL * max(1.0, abs(opt.value)))
    return dataclasses.replace(opt, theta=structure.from_unit_scale(opt.theta), flat=flat)


def assemble(formula: str, reml: bool, design: Design, structure: ReStructure,
             dev: SingleFactorDeviance | SparseDeviance, opt: Optimum,
             offset: Offset | None = None, weights: np.ndarray | None = None,
             weights_name: str | None = None) -> LMMResult:
    """Everything the result reports, computed at θ̂ (and the checks' warnings issued).

    `dev` may be weighted (`deviance_function`); fitted values, residuals and predictions are
    on the original rows: ŷ = Xβ̂ + Zb̂ + o, and the log-likelihood gains ½ Σ log w_i.
    """
    n, p = design.X.shape
    theta = opt.theta
    pls = dev.pls(theta)
    s2 = sigma2_hat(pls, n, p, reml)
    terms = pd.Index(design.terms)
    V = s2 * np.linalg.inv(pls.RXtRX)
    V = 0.5 * (V + V.T)
    Ts = structure.factors_T(theta)
    cov_blocks = [s2 * T @ T.T for T in Ts]
    converged = check_fit(opt, structure)
    b_blocks = dev.ranef_blocks(theta, pls)
    condcov_arrays = dev.condcov_factors(theta, s2)
    cv_blocks = split_factor_blocks(structure, condcov_arrays)

    factors = structure.factors
    cov_re, ranef, condvar, condcov, re_terms, ngroups = {}, {}, {}, {}, {}, {}
    for g in factors:
        blocks = [i for i, b in enumerate(structure.blocks) if b.factor == g]
        cols = [c for i in blocks for c in structure.blocks[i].columns]
        levels = structure.blocks[blocks[0]].groups.levels
        q = len(cols)
        C = np.zeros((q, q))
        pos = 0
        for i in blocks:
            k = structure.blocks[i].q
            C[pos:pos + k, pos:pos + k] = cov_blocks[i]
            pos += k
        index = pd.Index([str(v) for v in levels], name=g)
        cov_re[g] = pd.DataFrame(C, index=cols, columns=cols)
        ranef[g] = pd.DataFrame(np.column_stack([b_blocks[i] for i in blocks]),
                                index=index, columns=cols)
        condvar[g] = pd.DataFrame(
            np.column_stack([np.diagonal(cv_blocks[i], axis1=1, axis2=2) for i in blocks]),
            index=index, columns=cols)
        G = len(levels)
        condcov[g] = pd.DataFrame(
            condcov_arrays[g].reshape(G * q, q), columns=cols,
            index=pd.MultiIndex.from_product([index, cols], names=[g, "term"]))
        re_terms[g] = cols
        ngroups[g] = len(levels)

    lower = structure.theta_lower()
    singular = bool(np.any(structure.to_unit_scale(theta)[lower == 0] < SINGULAR_TOL))
    fitted_fixed = design.X @ pls.beta
    Zb = np.zeros(n)
    for blk, b in zip(structure.blocks, b_blocks):
        Zb += np.einsum("ik,ik->i", blk.Z, b[blk.groups.codes])
    fitted = fitted_fixed + Zb
    o = offset.values(design.data, "the data") if offset is not None else np.zeros(n)
    fitted = fitted + o
    log_w = 0.0 if weights is None else float(np.log(weights).sum())
    one = len(factors) == 1
    pick = (lambda d: d[factors[0]]) if one else (lambda d: d)
    return LMMResult(
        formula=formula, reml=reml,
        _fixef=pd.Series(pls.beta, index=terms, name="estimate"),
        _bse=pd.Series(np.sqrt(np.diag(V)), index=terms, name="std.err"),
        _vcov=pd.DataFrame(V, index=terms, columns=terms),
        sigma=float(np.sqrt(s2)),
        _theta=pd.Series(theta, index=structure.theta_names(), name="theta"),
        loglik=-0.5 * opt.value + 0.5 * log_w,
        _cov_re=pick(cov_re), _ranef=pick(ranef), _ranef_condvar=pick(condvar),
        _ranef_condcov=pick(condcov),
        singular=singular, converged=converged, nobs=n, _ngroups=ngroups,
        n_params=p + len(theta) + 1, response=design.response, group_names=tuple(factors),
        _re_terms=re_terms, data_index=design.index,
        _fitted=pd.Series(fitted, index=design.index, name="fitted"),
        _resid=pd.Series(design.y - fitted, index=design.index, name="resid"),
        _optinfo={"evaluator": type(dev).__name__, "nfev": opt.nfev,
                 "gradient": opt.gradient, "scaled_gradient": opt.scaled_gradient,
                 "hessian_min_eig": opt.hessian_min_eig, "message": opt.message},
        design=design, structure=structure, offset=offset, weights=weights_name,
    )


__all__ = ["lmm", "deviance_function", "optimize_theta", "check_fit", "check_full_rank",
           "check_confounding", "assemble",
           "random_variables"]
