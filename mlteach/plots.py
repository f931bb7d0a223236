"""Plots of fitted mixed models for the book: caterpillar, shrinkage and spaghetti plots.

Every function draws on the Axes it is given (or on a new figure with a white background, so
the plot stays legible in dark-themed notebooks), returns that Axes and never calls
``plt.show()``. Titles and axis labels use the model's variable names; colour is always
explained by a legend or a colour bar.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch
from scipy import stats

from mlteach.design import GroupIndex, check_columns, drop_missing
from mlteach.errors import GroupingError
from mlteach.ols import ols
from mlteach.pooling import no_pooling, shrinkage_table

# Mid-tone colours that read on white and on dark backgrounds alike.
POINT = "#4C72B0"      # blue
HIGHLIGHT = "#DD8452"  # orange
REFERENCE = "#C44E52"  # red
MUTED = "#8C8C8C"      # grey
CMAP = "viridis"
_MAX_TICK_LABELS = 50


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    """The Axes to draw on: the caller's, or a new white figure of `size` inches."""
    if ax is not None:
        return ax
    fig, new = plt.subplots(figsize=size, facecolor="white", layout="constrained")
    new.set_facecolor("white")
    return new


def _group_labels(ax: Axes, labels: list[str], name: str, note: str) -> None:
    ax.set_ylim(-1, len(labels))
    if len(labels) <= _MAX_TICK_LABELS:
        ax.set_yticks(np.arange(len(labels)), labels, fontsize=8 if len(labels) > 25 else 9)
    else:
        ax.set_yticks([])
    ax.set_ylabel(f"{name} ({note})")


def _factor_block(per_factor: Any, fit: Any, group: str | None, what: str) -> tuple[str, Any]:
    """The factor name and the block of a per-factor attribute (DataFrame or dict by factor)."""
    if isinstance(per_factor, pd.DataFrame):
        factors = list(getattr(fit, "ngroups", {}) or {"group": 0})
        return (group or factors[0]), per_factor
    names = list(per_factor)
    if group is None:
        if len(names) > 1:
            raise GroupingError(f"The model has random effects by several factors "
                                f"({', '.join(map(repr, names))}); choose one with "
                                f"group={names[0]!r}.")
        group = names[0]
    if group not in per_factor:
        raise GroupingError(f"The model has no {what} by {group!r}; it has "
                            f"{', '.join(map(repr, names))}.")
    return group, per_factor[group]


def caterpillar(fit: Any, term: str | None = None, level: float = 0.95,
                group: str | None = None, ax: Axes | None = None) -> Axes:
    """Caterpillar plot: each group's predicted random effect (BLUP) with its interval, sorted.

    Parameters
    ----------
    fit : a fitted `mlteach.lmm` model.
    term : str, optional
        Which random effect (``"Intercept"``, ``"Days"``); the first one by default.
    level : float
        Coverage of the intervals b̂_j ± z·√Var(b_j | y), from ``fit.ranef_condvar``.
    group : str, optional
        The grouping factor, needed only when the model has several.
    ax : matplotlib Axes, optional

    Notes
    -----
    The intervals use the conditional variance of each random effect given the data at the
    estimated parameters (lme4's ``condVar``); they ignore the uncertainty in β̂ and the
    variance components, so they are somewhat too narrow. Groups whose interval excludes zero
    (differ from the overall estimate) are highlighted.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}.")
    factor, ranef = _factor_block(fit.ranef, fit, group, "random effects")
    _, condvar = _factor_block(fit.ranef_condvar, fit, factor, "conditional variances")
    columns = [str(c) for c in ranef.columns]
    term = columns[0] if term is None else term
    if term not in columns:
        raise KeyError(f"{term!r} is not a random effect by {factor!r}; the random effects "
                       f"are {', '.join(map(repr, columns))}.")
    est = ranef[term].astype(float)
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(condvar[term].reindex(est.index)
                                                      .astype(float))
    order = np.argsort(est.to_numpy(), kind="stable")
    est, half = est.iloc[order], half.iloc[order]
    y = np.arange(len(est))
    ax = _axes(ax, (6.5, min(12.0, max(3.5, 0.2 * len(est) + 1.5))))
    clear = ((est - half) > 0) | ((est + half) < 0)
    ax.axvline(0.0, color=MUTED, linestyle="--", linewidth=1.2, zorder=1)
    for mask, colour, label in ((~clear, POINT, f"{level:.0%} interval includes 0"),
                                (clear, HIGHLIGHT, f"{level:.0%} interval excludes 0")):
        if mask.any():
            ax.errorbar(est[mask], y[mask.to_numpy()], xerr=half[mask], fmt="o", color=colour,
                        ecolor=colour, elinewidth=1.2, markersize=4, capsize=0, label=label,
                        zorder=2)
    _group_labels(ax, [str(g) for g in est.index], factor, "sorted by predicted effect")
    ax.set_xlabel(f"Predicted random effect of {term} (BLUP, deviation from the fixed effect)")
    ax.set_title(f"Random effects of {term} by {factor}, with {level:.0%} intervals")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.grid(axis="x", color="0.9", linewidth=0.8)
    return ax


def shrinkage_plot(fit_or_table: Any, term: str | None = None, data: pd.DataFrame | None = None,
                   group: str | None = None, ax: Axes | None = None) -> Axes:
    """Shrinkage plot: an arrow per group from its no-pooling to its partial-pooling estimate.

    Parameters
    ----------
    fit_or_table : a fitted `mlteach.lmm` model (then `data` is needed) or a table from
        `mlteach.shrinkage_table`.
    term : str, optional
        Which coefficient (``"Intercept"``, ``"Days"``); the first random effect by default.
    data : DataFrame, optional
        The data the model was fitted to, when a fit is passed.
    group : str, optional
        The grouping factor, when the model has several.
    ax : matplotlib Axes, optional

    Notes
    -----
    Groups are ordered by their no-pooling estimate; arrows and points are coloured by group
    size, so that the stronger pull on small groups shows. The solid vertical line is the
    fixed effect β̂, the value partial pooling shrinks towards; the dashed line the complete-
    pooling (OLS, groups ignored) estimate. Groups without a no-pooling estimate (too few rows)
    show only their partial-pooling point.
    """
    table = (fit_or_table if isinstance(fit_or_table, pd.DataFrame)
             else shrinkage_table(fit_or_table, data, group))
    terms = list(dict.fromkeys(table.index.get_level_values("term")))
    term = terms[0] if term is None else term
    if term not in terms:
        raise KeyError(f"{term!r} is not in the shrinkage table; its terms are "
                       f"{', '.join(map(repr, terms))}.")
    t = table.loc[term].sort_values("no_pooling", na_position="first")
    name = table.attrs.get("group", t.index.name or "group")
    response = table.attrs.get("response", "the outcome")
    y = np.arange(len(t))
    sizes = t["n"].to_numpy(dtype=float)
    equal = sizes.min() == sizes.max()
    norm = Normalize(vmin=sizes.min(), vmax=max(sizes.max(), sizes.min() + 1))
    # Equal group sizes: one colour, stated in the legend, instead of an empty colour scale.
    cmap = ListedColormap([POINT]) if equal else plt.get_cmap(CMAP)
    ax = _axes(ax, (7.0, min(12.0, max(3.5, 0.2 * len(t) + 1.5))))
    nop, part = t["no_pooling"].to_numpy(float), t["partial_pooling"].to_numpy(float)
    for yi, a, b, n in zip(y, nop, part, sizes):
        if np.isfinite(a) and np.isfinite(b):
            ax.add_patch(FancyArrowPatch((a, yi), (b, yi), arrowstyle="-|>", mutation_scale=9,
                                         shrinkA=0, shrinkB=3, linewidth=1.3,
                                         color=cmap(norm(n)), zorder=2, gid="shrinkage-arrow"))
    ax.scatter(nop, y, s=22, facecolors="none", edgecolors=cmap(norm(sizes)), linewidths=1.2,
               zorder=3)
    points = ax.scatter(part, y, s=22, c=sizes, cmap=cmap, norm=norm, zorder=4)
    fixed = float(t["fixed_effect"].iloc[0])
    pooled = float(t["complete_pooling"].iloc[0])
    ax.axvline(fixed, color=REFERENCE, linewidth=1.5, zorder=1)
    ax.axvline(pooled, color=MUTED, linestyle="--", linewidth=1.2, zorder=1)
    marker = POINT if equal else MUTED
    if not equal:
        ax.figure.colorbar(points, ax=ax, label=f"group size n (rows per {name})", shrink=0.8)
    handles = [
        Line2D([], [], marker="o", linestyle="none", markerfacecolor="none",
               markeredgecolor=marker, label="no pooling (separate regression per group)"),
        Line2D([], [], marker="o", linestyle="none", color=marker,
               label="partial pooling (fixed effect + BLUP)" +
                     (f"; every group has n = {sizes[0]:.0f}" if equal else "")),
        Line2D([], [], color=REFERENCE, linewidth=1.5, label=f"fixed effect β̂ = {fixed:.4g}"),
        Line2D([], [], color=MUTED, linestyle="--",
               label=f"complete pooling (OLS) = {pooled:.4g}"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2,
              fontsize=8, frameon=False)
    _group_labels(ax, [str(g) for g in t.index], name, "ordered by no-pooling estimate")
    ax.set_xlabel(f"Estimate of {term} (outcome {response})")
    ax.set_title(f"Shrinkage of {term} by {name}: no pooling → partial pooling")
    ax.grid(axis="x", color="0.9", linewidth=0.8)
    return ax


def _formula_name(name: str) -> str:
    return name if name.isidentifier() else f"`{name}`"


def spaghetti(data: pd.DataFrame, x: str, y: str, group: str, fit: Any = None,
              ax: Axes | None = None) -> Axes:
    """Spaghetti plot: the data and one fitted line of `y` against `x` per group.

    Parameters
    ----------
    data : DataFrame
    x, y : str
        Columns for the horizontal and vertical axes.
    group : str
        The grouping column; one line per level.
    fit : a fitted `mlteach.lmm` model, optional
        Lines are then the model's group-specific predictions (fixed effects + BLUPs) and the
        thick line its population-average prediction (fixed effects only). Without a fit the
        lines are separate OLS fits of y on x per group (no pooling) and the thick line is the
        OLS fit ignoring groups (complete pooling).
    ax : matplotlib Axes, optional

    Notes
    -----
    Lines join each group's fitted values in order of x; with other covariates in the model
    they need not be straight. With at most ten groups each has its own colour, named in the
    legend; with more, group lines share one colour.
    """
    check_columns(data, [x, y, group])
    rows = drop_missing(data, [x, y, group], context="the spaghetti plot")
    groups = GroupIndex.from_data(rows, group)
    xs = rows[x].to_numpy(dtype=float)
    ys = rows[y].to_numpy(dtype=float)
    labels = [str(g) for g in groups.levels]
    G = groups.n_groups
    few = G <= 10
    colours = ([plt.get_cmap("tab10")(k) for k in range(groups.n_groups)] if few
               else [POINT] * groups.n_groups)
    ax = _axes(ax, (8.0, 4.5))
    ax.scatter(xs, ys, s=10, alpha=0.45, zorder=1,
               c=[colours[c] for c in groups.codes] if few else MUTED,
               label=None if few else "observations")
    if fit is not None:
        fitted = np.asarray(fit.predict(rows, include_random=True), dtype=float)
        population = np.asarray(fit.predict(rows, include_random=False), dtype=float)
        kind, ref_label = "mixed-model predictions", "population average (fixed effects)"
        lines = []
        for j in range(groups.n_groups):
            sel = groups.codes == j
            order = np.argsort(xs[sel], kind="stable")
            lines.append((xs[sel][order], fitted[sel][order]))
        ref = pd.Series(population).groupby(xs).mean()
        ref_x, ref_y = ref.index.to_numpy(float), ref.to_numpy(float)
    else:
        formula = f"{_formula_name(y)} ~ {_formula_name(x)}"
        per_group = no_pooling(formula, rows, group)
        slope_term = [c for c in per_group.columns if c not in ("Intercept", "n")
                      and not c.startswith("se(")][0]
        kind, ref_label = "separate OLS per group", "complete pooling (OLS ignoring groups)"
        lines = []
        for j, label in enumerate(labels):
            a, b = per_group.loc[label, "Intercept"], per_group.loc[label, slope_term]
            sel = groups.codes == j
            grid = np.array([xs[sel].min(), xs[sel].max()])
            lines.append((grid, a + b * grid) if np.isfinite(a) and np.isfinite(b)
                         else (np.array([]), np.array([])))
        pooled = ols(formula, rows).params
        ref_x = np.array([xs.min(), xs.max()])
        ref_y = pooled["Intercept"] + pooled[slope_term] * ref_x
    drawn = 0
    for j, (lx, ly) in enumerate(lines):
        if len(lx):
            label = labels[j] if few else (f"one line per {group}" if drawn == 0 else None)
            ax.plot(lx, ly, color=colours[j], alpha=0.9 if few else max(0.3, 0.6 - G / 400),
                    linewidth=1.2 if G <= 50 else 0.9,
                    label=label, gid=f"group:{labels[j]}", zorder=2)
            drawn += 1
    # With one colour per group the reference line must not look like one of them.
    ax.plot(ref_x, ref_y, color=MUTED if few else REFERENCE, linestyle="--" if few else "-",
            linewidth=3, label=ref_label, gid="reference", zorder=3)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{y} against {x}, one line per {group} ({kind})")
    ax.legend(title=group if few else None, fontsize=8, title_fontsize=8, frameon=False,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(color="0.9", linewidth=0.8)
    return ax


__all__ = ["caterpillar", "shrinkage_plot", "spaghetti"]
