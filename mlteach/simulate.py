"""Clustered data with a known truth, for the book's Monte Carlo experiments and for tests.

The data-generating process (notation page):

    x_ij = x̄*_j + w_ij,                         w_ij ~ N(0, sd_x_within²)
    x̄*_j = sd_x_between · (ρ·μ_j/τ + √(1−ρ²)·z_j),   z_j ~ N(0, 1)
    y_ij = α + β_W (x_ij − x̄*_j) + β_B x̄*_j + μ_j + b_j (x_ij − x̄*_j) + ε_ij
    μ_j ~ N(0, τ²),  b_j ~ N(0, slope_sd²),  ε_ij ~ N(0, σ²)

with τ² = icc · total_var and σ² = (1 − icc) · total_var, so `icc` is the intraclass correlation
of y given x. ρ (`corr_xu`) correlates the group's average x with its random intercept: ρ ≠ 0
is the confounding that biases a random-intercept model and that the Mundlak device removes.
"""

from __future__ import annotations

from typing import Sequence

import math
from numbers import Integral, Real

import numpy as np
import pandas as pd

from mlteach.errors import MlteachError


def _whole(name: str, value: object, low: int) -> int:
    """`value` as an int, or `MlteachError` naming the argument, its value and the range."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise MlteachError(f"{name} must be a whole number of at least {low}, got {value!r}.")
    if value < low:
        raise MlteachError(f"{name} must be at least {low}, got {value}.")
    return int(value)


def _number(name: str, value: object, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False, why: str = "") -> float:
    """`value` as a finite float in the stated range, or `MlteachError` saying which."""
    lo_b, hi_b = "(" if low_open else "[", ")" if high_open else "]"
    rng = (f"{lo_b}{low:g}, {high:g}{hi_b}" if low is not None and high is not None else
           f"{'>' if low_open else '>='} {low:g}" if low is not None else "")
    need = f" in {rng}" if low is not None and high is not None else (f" {rng}" if rng else "")
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise MlteachError(f"{name} must be a finite number{need}{why}, got {value!r}.")
    v = float(value)
    if (low is not None and (v < low or (low_open and v == low))) or \
            (high is not None and (v > high or (high_open and v == high))):
        raise MlteachError(f"{name} must be{need}{why}, got {value!r}.")
    return v


def group_sizes(n_groups: int, size: int | tuple[int, int] | Sequence[int],
                rng: np.random.Generator) -> np.ndarray:
    """Group sizes: a constant, uniform integers in [lo, hi], or an explicit list."""
    if isinstance(size, Integral) and not isinstance(size, bool):
        sizes = np.full(n_groups, _whole("group_size", size, 1))
    elif isinstance(size, tuple) and len(size) == 2:
        lo, hi = size
        for part, v in (("minimum", lo), ("maximum", hi)):
            if isinstance(v, bool) or not isinstance(v, Integral):
                raise MlteachError(
                    f"group_size=(lo, hi) needs whole numbers; its {part} is {v!r}.")
        if lo < 1:
            raise MlteachError(
                f"group_size=({lo}, {hi}): the smallest group size must be at least 1, got {lo}.")
        if lo > hi:
            raise MlteachError(
                f"group_size=({lo}, {hi}) has its minimum {lo} above its maximum {hi}: give "
                f"the range as (smallest, largest), e.g. group_size=({hi}, {lo}).")
        sizes = rng.integers(int(lo), int(hi) + 1, size=n_groups)
    else:
        try:
            raw = np.asarray(size, dtype=float)
        except (TypeError, ValueError):
            raise MlteachError(
                f"group_size must be a whole number, a range (lo, hi) or one size per group, "
                f"got {size!r}.") from None
        if raw.ndim != 1:
            raise MlteachError(
                f"group_size must be a whole number, a range (lo, hi) or a flat list of one "
                f"size per group, got {size!r}.")
        if len(raw) != n_groups:
            raise MlteachError(
                f"group_size has {len(raw)} entries but n_groups is {n_groups}.")
        bad = ~np.isfinite(raw) | (raw != np.round(raw)) | (raw < 1)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise MlteachError(
                f"group_size must give every group a whole number of rows of at least 1; "
                f"entry {j} (group {j + 1}) is {raw[j]:g}.")
        sizes = raw.astype(int)
    return sizes


def simulate_clustered(
    n_groups: int = 50,
    group_size: int | tuple[int, int] | Sequence[int] = 20,
    icc: float = 0.2,
    beta_within: float = 1.0,
    beta_between: float | None = None,
    intercept: float = 0.0,
    corr_xu: float = 0.0,
    slope_sd: float = 0.0,
    total_var: float = 1.0,
    sd_x_within: float = 1.0,
    sd_x_between: float = 1.0,
    seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Simulate students-in-schools style data with known within and between effects.

    Parameters
    ----------
    n_groups, group_size : number of groups; size per group (int), a range ``(lo, hi)`` drawn
        uniformly, or one size per group.
    icc : intraclass correlation of y given x, τ²/(τ² + σ²), in [0, 1).
    total_var : τ² + σ², > 0. `slope_sd`, `sd_x_within`, `sd_x_between` must be ≥ 0.
        Arguments out of range raise `MlteachError` naming the argument, its value and the
        valid range.
    beta_within, beta_between : effects of x_ij − x̄_j and of x̄_j. `beta_between=None` sets it
        equal to `beta_within` (no contextual effect).
    corr_xu : correlation ρ between the group's mean x and its random intercept μ_j.
    slope_sd : SD of the random slopes b_j of the within part of x (0 for none).
    seed : seed or Generator, for reproducible draws.

    Returns
    -------
    DataFrame with columns ``group`` (categorical "g001"...), ``x``, ``y`` and the true
    ``x_mean_true``, ``mu``, ``slope``; the parameters are in ``df.attrs["truth"]``.
    """
    n_groups = _whole("n_groups", n_groups, 1)
    icc = _number("icc", icc, 0, 1, high_open=True,
                  why=" (the share of the variance of y between groups; 1 would leave no "
                      "within-group variance)")
    if not (isinstance(corr_xu, Real) and not isinstance(corr_xu, bool) and -1 <= corr_xu <= 1):
        raise MlteachError(
            f"corr_xu is a correlation and must be in [-1, 1], got {corr_xu!r}.")
    corr_xu = float(corr_xu)
    total_var = _number("total_var", total_var, 0, low_open=True,
                        why=" (the variance of y given x, tau^2 + sigma^2)")
    for name, value in (("slope_sd", slope_sd), ("sd_x_within", sd_x_within),
                        ("sd_x_between", sd_x_between)):
        _number(name, value, 0, why=" (a standard deviation cannot be negative)")
    for name, value in (("beta_within", beta_within), ("intercept", intercept)) + (
            (("beta_between", beta_between),) if beta_between is not None else ()):
        _number(name, value)
    if corr_xu != 0 and icc == 0:
        raise MlteachError(
            f"corr_xu={corr_xu:g} asks for group means of x correlated with the group effects, "
            f"but icc=0 gives no group effects to correlate with (the simulated correlation "
            f"would be 0). Use icc > 0, or corr_xu=0.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    beta_between = beta_within if beta_between is None else beta_between
    sizes = group_sizes(n_groups, group_size, rng)
    tau2, sigma2 = icc * total_var, (1 - icc) * total_var
    tau = np.sqrt(tau2)
    mu = rng.normal(0.0, tau, n_groups) if tau > 0 else np.zeros(n_groups)
    z = rng.normal(size=n_groups)
    mu_std = mu / tau if tau > 0 else np.zeros(n_groups)
    xbar = sd_x_between * (corr_xu * mu_std + np.sqrt(1 - corr_xu ** 2) * z)
    slopes = rng.normal(0.0, slope_sd, n_groups) if slope_sd > 0 else np.zeros(n_groups)
    g = np.repeat(np.arange(n_groups), sizes)
    w = rng.normal(0.0, sd_x_within, len(g))
    eps = rng.normal(0.0, np.sqrt(sigma2), len(g))
    x = xbar[g] + w
    y = intercept + (beta_within + slopes[g]) * w + beta_between * xbar[g] + mu[g] + eps
    width = len(str(n_groups))
    labels = [f"g{j + 1:0{width}d}" for j in range(n_groups)]
    frame = pd.DataFrame({
        "group": pd.Categorical.from_codes(g, categories=labels),
        "x": x, "y": y, "x_mean_true": xbar[g], "mu": mu[g], "slope": slopes[g],
    })
    frame.attrs["truth"] = {
        "intercept": intercept, "beta_within": beta_within, "beta_between": beta_between,
        "tau2": tau2, "sigma2": sigma2, "icc": icc, "corr_xu": corr_xu, "slope_sd": slope_sd,
        "n_groups": n_groups,
    }
    return frame
