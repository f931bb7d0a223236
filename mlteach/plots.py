"""Plots of fitted mixed models for the book: caterpillar, shrinkage and spaghetti plots.

Every function draws on the Axes it is given (or on a new figure with a white background, so
the plot stays legible in dark-themed notebooks), returns that Axes and never calls
``plt.show()``. Titles and axis labels use the model's variable names; colour is always
explained by a legend or a colour bar.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch
from matplotlib.transforms import offset_copy
from scipy import stats

from mlteach.design import (
    GroupIndex,
    check_columns,
    drop_missing,
    formula_variables,
    parse_formula,
)
from mlteach.errors import GroupingError, MlteachError, UnknownVariableError
from mlteach.ols import ols
from mlteach.pooling import no_pooling, shrinkage_table

# Mid-tone colours that read on white and on dark backgrounds alike.
POINT = "#4C72B0"      # blue
HIGHLIGHT = "#DD8452"  # orange
REFERENCE = "#C44E52"  # red
MUTED = "#8C8C8C"      # grey
CMAP = "viridis"
# At most this many group labels on a y axis; with more groups every k-th group is labelled.
_MAX_TICK_LABELS = 40

GroupLabels = bool | Sequence[str] | None


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    """The Axes to draw on: the caller's, or a new white figure of `size` inches."""
    if ax is not None:
        return ax
    fig, new = plt.subplots(figsize=size, facecolor="white", layout="constrained")
    new.set_facecolor("white")
    return new


def _group_labels(ax: Axes, labels: list[str], name: str, note: str,
                  show: GroupLabels = None) -> None:
    """Label the rows of a one-row-per-group plot, thinning the labels so they never collide.

    `show` None: every group while at most `_MAX_TICK_LABELS` labels fit the Axes' height
    (about 1.5 font heights each), else every k-th group, said in the axis label. True: every
    group. False: none. A list of group labels: only those groups.
    """
    n = len(labels)
    ax.set_ylim(-1, n)
    fontsize = 8 if n > 25 else 9
    step = 1
    if show is None:
        height_pt = ax.get_position().height * ax.figure.get_figheight() * 72
        fit = max(1, min(_MAX_TICK_LABELS, int(height_pt / (1.5 * fontsize))))
        step = -(-n // fit)  # ceiling division
        positions = list(range(0, n, step))
    elif show is True:
        positions = list(range(n))
    elif show is False:
        positions = []
    else:
        wanted = [str(g) for g in show]
        unknown = [g for g in wanted if g not in set(labels)]
        if unknown:
            raise UnknownVariableError(f"labels: {', '.join(map(repr, unknown[:5]))} "
                           f"{'is not a group' if len(unknown) == 1 else 'are not groups'} of "
                           f"{name!r}; pass group labels such as {labels[0]!r}, or True/False.")
        positions = [i for i, g in enumerate(labels) if g in set(wanted)]
    ax.set_yticks(positions, [labels[i] for i in positions], fontsize=fontsize)
    if show is None and step > 1:
        note += f"; one in {step} of {n} labelled"
    elif not positions and n:
        note += f"; {n} groups, labels hidden"
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
                group: str | None = None, ax: Axes | None = None,
                labels: GroupLabels = None) -> Axes:
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
    labels : bool or list of group labels, optional
        Which groups are named on the y axis. By default every group while the labels fit
        (at most 40, fewer on a short Axes); with more groups every k-th group in the sorted
        order is labelled, and the axis label says so. True names every group, False none, a
        list only those groups (e.g. the ones the text discusses).

    Notes
    -----
    The intervals use the conditional variance of each random effect given the data at the
    estimated parameters (lme4's ``condVar``); they ignore the uncertainty in β̂ and the
    variance components, so they are somewhat too narrow. Groups whose interval excludes zero
    (differ from the overall estimate) are highlighted.
    """
    if not 0 < level < 1:
        raise MlteachError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}.")
    factor, ranef = _factor_block(fit.ranef, fit, group, "random effects")
    _, condvar = _factor_block(fit.ranef_condvar, fit, factor, "conditional variances")
    columns = [str(c) for c in ranef.columns]
    term = columns[0] if term is None else term
    if term not in columns:
        raise UnknownVariableError(f"{term!r} is not a random effect by {factor!r}; the random effects "
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
    _group_labels(ax, [str(g) for g in est.index], factor, "sorted by predicted effect",
                  labels)
    # Short enough for a half-width panel; the title says the rest.
    ax.set_xlabel(f"BLUP of {term} (deviation from fixed effect)")
    ax.set_title(f"Random effects of {term} by {factor}, with {level:.0%} intervals")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.grid(axis="x", color="0.9", linewidth=0.8)
    return ax


def shrinkage_plot(fit_or_table: Any, term: str | None = None, data: pd.DataFrame | None = None,
                   group: str | None = None, ax: Axes | None = None,
                   labels: GroupLabels = None) -> Axes:
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
    labels : bool or list of group labels, optional
        Which groups are named on the y axis, as in `caterpillar` (by default as many as fit).

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
        raise UnknownVariableError(f"{term!r} is not in the shrinkage table; its terms are "
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
        # The book writes the intercept as α and slopes as β (notation page).
        Line2D([], [], color=REFERENCE, linewidth=1.5,
               label=f"fixed effect {'α̂' if term == 'Intercept' else 'β̂'} = {fixed:.4g}"),
        Line2D([], [], color=MUTED, linestyle="--",
               label=f"complete pooling (OLS) = {pooled:.4g}"),
    ]
    _group_labels(ax, [str(g) for g in t.index], name, "ordered by no-pooling estimate", labels)
    ax.set_xlabel(f"Estimate of {term} (outcome {response})")
    _legend_below_xlabel(ax, handles)
    ax.set_title(f"Shrinkage of {term} by {name}: no pooling → partial pooling")
    ax.grid(axis="x", color="0.9", linewidth=0.8)
    return ax


def _legend_below_xlabel(ax: Axes, handles: list[Line2D]) -> None:
    """A legend centred under the Axes, below its tick labels and x label.

    The offset is in points (tick length and pad, tick-label and x-label heights), so it holds
    whatever the figure's size and layout; a constrained-layout figure makes room for it.
    """
    tick = ax.xaxis.get_major_ticks()[0]
    tick_pt = tick.get_tick_padding() + tick.get_pad() + 1.3 * tick.label1.get_size()
    label = ax.xaxis.label
    label_pt = ax.xaxis.labelpad + 1.3 * label.get_size() * (label.get_text().count("\n") + 1)
    below = offset_copy(ax.transAxes, fig=ax.figure, y=-(tick_pt + label_pt + 4), units="points")
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
              bbox_transform=below, ncol=2, fontsize=8, frameon=False)


def _formula_name(name: str) -> str:
    return name if name.isidentifier() else f"`{name}`"


SpaghettiKind = Literal["observed", "ols", "fitted"]


def _population_line(fit: Any, rows: pd.DataFrame, x: str, xs: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The fixed-effects prediction along a grid of x, other covariates held fixed.

    Numeric covariates are held at their means over the plotted rows; for categorical ones the
    prediction is averaged over their observed combinations, weighted by frequency (for a
    model linear in its dummies, the prediction at the mean dummy values).
    """
    from mlteach.mixed.formula import parse_mixed_formula  # the mixed-model formula parser

    grid = np.unique(xs)
    if len(grid) > 100:
        grid = np.linspace(grid[0], grid[-1], 100)
    fixed = parse_mixed_formula(fit.formula).fixed
    others = [v for v in formula_variables(parse_formula(fixed))
              if v != x and v in rows.columns and v != _response_name(fixed)]
    # A numeric column used as C(v) is categorical: its mean would be an unseen level.
    numeric = [v for v in others if pd.api.types.is_numeric_dtype(rows[v])
               and not pd.api.types.is_bool_dtype(rows[v])
               and not re.search(rf"C\(\s*{re.escape(v)}\b", fixed)]
    categorical = [v for v in others if v not in numeric]
    if categorical:
        shares = rows.groupby(categorical, observed=True).size()
        combos = shares.index.to_frame(index=False)
        weights = (shares / shares.sum()).to_numpy()
    else:
        combos, weights = pd.DataFrame(index=[0]), np.ones(1)
    new = combos.loc[np.repeat(combos.index, len(grid))].reset_index(drop=True)
    new[x] = np.tile(grid, len(combos))
    for v in numeric:
        new[v] = float(rows[v].mean())
    for v in categorical:  # keep the category dtype, so new data is encoded as the fitted data
        new[v] = new[v].astype(rows[v].dtype)
    predicted = np.asarray(fit.predict(new, include_random=False), dtype=float)
    return grid, weights @ predicted.reshape(len(combos), len(grid))


def _response_name(formula: str) -> str:
    return formula.split("~", 1)[0].strip() if "~" in formula else ""


def spaghetti(data: pd.DataFrame, x: str, y: str, group: str, fit: Any = None,
              ax: Axes | None = None, kind: SpaghettiKind | None = None) -> Axes:
    """Spaghetti plot: the data and one line of `y` against `x` per group.

    Parameters
    ----------
    data : DataFrame
    x, y : str
        Columns for the horizontal and vertical axes.
    group : str
        The grouping column; one line per level.
    fit : a fitted `mlteach.lmm` model, optional
        The thick reference line is then the model's population-average prediction (fixed
        effects only); without a fit it is the OLS fit of y on x ignoring groups (complete
        pooling).
    ax : matplotlib Axes, optional
    kind : {"observed", "ols", "fitted"}, optional
        What each group's line shows: ``"observed"`` its raw trajectory (its observations
        joined in order of x, as in growth-curve plots); ``"ols"`` a separate OLS fit of y on
        x in the group (no pooling); ``"fitted"`` the model's group-specific predictions
        (fixed effects + BLUPs, needs `fit`). By default ``"fitted"`` with a fit and
        ``"ols"`` without.

    Notes
    -----
    Fitted lines join each group's fitted values in order of x; with other covariates that
    vary within groups they need not be straight. The population line is drawn at fixed
    values of the model's other covariates: numeric ones at their means over the plotted rows
    (e.g. a school-mean ``meanses``), categorical ones averaged over their observed mix. (Averaging
    the predictions of the rows at each x instead would give a jagged line, since different
    groups are observed at different x.) With at most ten groups each has its own colour,
    named in the legend; with more, group lines share one colour.
    """
    if kind is None:
        kind = "fitted" if fit is not None else "ols"
    if kind not in ("observed", "ols", "fitted"):
        raise MlteachError(f"kind must be 'observed', 'ols' or 'fitted', got {kind!r}.")
    if kind == "fitted" and fit is None:
        raise MlteachError("kind='fitted' draws a model's predictions: pass the fitted model, "
                         "spaghetti(data, x, y, group, fit=mlteach.lmm(...), kind='fitted').")
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
    formula = f"{_formula_name(y)} ~ {_formula_name(x)}"
    if kind in ("fitted", "observed"):
        if kind == "fitted":
            values = np.asarray(fit.predict(rows, include_random=True), dtype=float)
            what = "mixed-model predictions"
        else:
            values, what = ys, "observed trajectories"
        lines = []
        for j in range(groups.n_groups):  # each group's points joined in order of x
            sel = groups.codes == j
            order = np.argsort(xs[sel], kind="stable")
            lines.append((xs[sel][order], values[sel][order]))
    else:
        per_group = no_pooling(formula, rows, group)
        slope_term = [c for c in per_group.columns if c not in ("Intercept", "n")
                      and not c.startswith("se(")][0]
        what = "separate OLS per group"
        lines = []
        for j, label in enumerate(labels):
            a, b = per_group.loc[label, "Intercept"], per_group.loc[label, slope_term]
            sel = groups.codes == j
            grid = np.array([xs[sel].min(), xs[sel].max()])
            lines.append((grid, a + b * grid) if np.isfinite(a) and np.isfinite(b)
                         else (np.array([]), np.array([])))
    if fit is not None:
        ref_label = "population average (fixed effects)"
        ref_x, ref_y = _population_line(fit, rows, x, xs)
    else:
        ref_label = "complete pooling (OLS ignoring groups)"
        pooled = ols(formula, rows).params
        slope_term = [t for t in pooled.index if t != "Intercept"][0]
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
    ax.set_title(f"{y} against {x}, one line per {group} ({what})")
    ax.legend(title=group if few else None, fontsize=8, title_fontsize=8, frameon=False,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(color="0.9", linewidth=0.8)
    return ax


__all__ = ["caterpillar", "shrinkage_plot", "spaghetti"]
