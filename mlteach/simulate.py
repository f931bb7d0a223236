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

import numpy as np
import pandas as pd


def group_sizes(n_groups: int, size: int | tuple[int, int] | Sequence[int],
                rng: np.random.Generator) -> np.ndarray:
    """Group sizes: a constant, uniform integers in [lo, hi], or an explicit list."""
    if isinstance(size, (int, np.integer)):
        sizes = np.full(n_groups, int(size))
    elif isinstance(size, tuple) and len(size) == 2:
        lo, hi = size
        sizes = rng.integers(lo, hi + 1, size=n_groups)
    else:
        sizes = np.asarray(size, dtype=int)
        if len(sizes) != n_groups:
            raise ValueError(f"group_size has {len(sizes)} entries but n_groups is {n_groups}.")
    if (sizes < 1).any():
        raise ValueError("Every group needs at least one row (group_size >= 1).")
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
    if not 0 <= icc < 1:
        raise ValueError(f"icc must be in [0, 1), got {icc}.")
    if not -1 <= corr_xu <= 1:
        raise ValueError(f"corr_xu is a correlation and must be in [-1, 1], got {corr_xu}.")
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
