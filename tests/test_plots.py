"""The book's plots run on real fits, draw one element per group, label what they show and
never call plt.show()."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

import mlteach  # noqa: E402
from mlteach.errors import GroupingError, SmallGroupWarning  # noqa: E402
from mlteach.lmm import lmm  # noqa: E402
from mlteach.plots import caterpillar, shrinkage_plot, spaghetti  # noqa: E402
from mlteach.pooling import shrinkage_table  # noqa: E402


@pytest.fixture(autouse=True)
def no_show_and_close(monkeypatch):
    def show(*args, **kwargs):
        raise AssertionError("plot functions must not call plt.show()")
    monkeypatch.setattr(plt, "show", show)
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def rs_fit(sleep):
    return lmm("Reaction ~ Days + (Days | Subject)", sleep)


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_caterpillar_one_sorted_interval_per_group(rs_fit):
    ax = caterpillar(rs_fit, term="Days", level=0.9)
    points = np.concatenate([np.asarray(line.get_xdata(), dtype=float) for line in ax.lines
                             if line.get_marker() == "o"])
    assert len(points) == 18
    assert np.all(np.diff(np.sort(points)) >= 0)
    np.testing.assert_allclose(np.sort(points), np.sort(rs_fit.ranef["Days"].to_numpy()))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == sorted(rs_fit.ranef.index)
    assert labels[0] == rs_fit.ranef["Days"].idxmin()        # bottom row: smallest BLUP
    assert "Days" in ax.get_title() and "Subject" in ax.get_title()
    assert "90%" in ax.get_title()
    assert "Days" in ax.get_xlabel() and "Subject" in ax.get_ylabel()
    assert any("excludes 0" in t for t in _legend_texts(ax))
    assert ax.figure.get_facecolor()[:3] == (1.0, 1.0, 1.0)


def test_caterpillar_intervals_use_conditional_variances(rs_fit):
    fig, ax = plt.subplots()
    out = caterpillar(rs_fit, ax=ax)                         # default: first term, Intercept
    assert out is ax
    segments = np.concatenate([c.get_segments() for c in ax.collections
                               if hasattr(c, "get_segments")])
    half = np.sort([(s[1, 0] - s[0, 0]) / 2 for s in segments])
    expected = np.sort(1.959963984540054 * np.sqrt(rs_fit.ranef_condvar["Intercept"]))
    np.testing.assert_allclose(half, expected, rtol=1e-10)
    assert "Intercept" in ax.get_title()


def test_caterpillar_bad_input(rs_fit):
    with pytest.raises(KeyError, match="'days' is not a random effect by 'Subject'.*'Days'"):
        caterpillar(rs_fit, term="days")
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        caterpillar(rs_fit, level=95)
    pen = mlteach.load("penicillin")
    crossed = lmm("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    with pytest.raises(GroupingError, match="several factors.*group='plate'"):
        caterpillar(crossed)
    ax = caterpillar(crossed, group="sample")
    assert len(ax.get_yticklabels()) == 6


def test_shrinkage_plot_one_arrow_per_group_coloured_by_size(unbalanced):
    fit = lmm("Reaction ~ Days + (1 | Subject)", unbalanced)
    ax = shrinkage_plot(fit, data=unbalanced)
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 18
    table = shrinkage_table(fit, unbalanced).loc["Intercept"]
    starts = sorted(a._posA_posB[0][0] for a in arrows)
    ends = sorted(a._posA_posB[1][0] for a in arrows)
    np.testing.assert_allclose(starts, np.sort(table["no_pooling"]))
    np.testing.assert_allclose(ends, np.sort(table["partial_pooling"]))
    # a colour bar explains the colour (group size)
    colourbars = [a for a in ax.figure.axes if a is not ax]
    assert len(colourbars) == 1 and "group size" in colourbars[0].get_ylabel()
    sizes = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_array()
             is not None]
    np.testing.assert_array_equal(np.sort(sizes[0].get_array()), np.sort(table["n"]))
    # the overall estimate as a vertical line
    vlines = [line.get_xdata()[0] for line in ax.lines]
    assert fit.fixef["Intercept"] in vlines
    texts = _legend_texts(ax)
    assert any(t.startswith("no pooling") for t in texts)
    assert any(t.startswith("partial pooling") for t in texts)
    assert any(t.startswith("fixed effect") for t in texts)
    assert "Intercept" in ax.get_title() and "Subject" in ax.get_title()
    assert "Reaction" in ax.get_xlabel()


def test_shrinkage_plot_from_a_table_with_a_missing_group(sleep, rs_fit):
    data = sleep[~((sleep["Subject"] == "308") & (sleep["Days"] > 0))]
    fit = lmm("Reaction ~ Days + (Days | Subject)", data)
    with pytest.warns(SmallGroupWarning, match="'308'"):
        table = shrinkage_table(fit, data)
    ax = shrinkage_plot(table, term="Days")
    assert len([p for p in ax.patches if isinstance(p, FancyArrowPatch)]) == 17
    assert "Days" in ax.get_title()
    with pytest.raises(KeyError, match="'Slope' is not in the shrinkage table"):
        shrinkage_plot(table, term="Slope")


def test_spaghetti_with_a_fit_draws_each_groups_predictions(sleep, rs_fit):
    ax = spaghetti(sleep, "Days", "Reaction", "Subject", fit=rs_fit)
    group_lines = [line for line in ax.lines if str(line.get_gid()).startswith("group:")]
    assert len(group_lines) == 18
    line = next(g for g in group_lines if g.get_gid() == "group:309")
    rows = sleep[sleep["Subject"] == "309"].sort_values("Days")
    np.testing.assert_allclose(line.get_ydata(), rs_fit.predict(rows).to_numpy())
    reference = [line for line in ax.lines if line.get_gid() == "reference"]
    assert len(reference) == 1
    np.testing.assert_allclose(reference[0].get_ydata(),
                               rs_fit.fixef["Intercept"] + rs_fit.fixef["Days"] * np.arange(10))
    assert ax.get_xlabel() == "Days" and ax.get_ylabel() == "Reaction"
    assert "Subject" in ax.get_title() and "mixed-model" in ax.get_title()
    assert "population average (fixed effects)" in _legend_texts(ax)


def test_spaghetti_without_a_fit_draws_per_group_ols_lines(sleep):
    few = sleep[sleep["Subject"].isin(["308", "309", "310", "330"])]
    fig, ax = plt.subplots()
    assert spaghetti(few, "Days", "Reaction", "Subject", ax=ax) is ax
    group_lines = [line for line in ax.lines if str(line.get_gid()).startswith("group:")]
    assert len(group_lines) == 4
    one = mlteach.ols("Reaction ~ Days", few[few["Subject"] == "330"]).params
    line = next(g for g in group_lines if g.get_gid() == "group:330")
    np.testing.assert_allclose(line.get_ydata(), one["Intercept"] + one["Days"] * np.array([0, 9]))
    assert len({tuple(g.get_color()) for g in group_lines}) == 4    # one colour per group
    texts = _legend_texts(ax)
    assert {"308", "309", "310", "330"} <= set(texts)
    assert "complete pooling (OLS ignoring groups)" in texts
    assert ax.get_legend().get_title().get_text() == "Subject"


def test_spaghetti_bad_input(sleep):
    with pytest.raises(mlteach.errors.UnknownVariableError,
                       match="'Dayz' \\(did you mean 'Days'"):
        spaghetti(sleep, "Dayz", "Reaction", "Subject")


# ------------------------------------------------------------------------ readable layout


def _overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("height", [None, 3.0])
def test_shrinkage_plot_legend_clears_the_x_label_and_tick_labels(sleep, rs_fit, height):
    if height is None:                      # the plot's own figure
        ax = shrinkage_plot(rs_fit, data=sleep, term="Days")
    else:                                   # a short panel of the caller's (the old legend,
        _, ax = plt.subplots(figsize=(7, height), layout="constrained")  # 10% of the Axes
        shrinkage_plot(rs_fit, data=sleep, term="Days", ax=ax)           # down, hit the label)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert not _overlap(legend, ax.xaxis.label.get_window_extent(renderer))
    for tick in ax.get_xticklabels():
        if tick.get_text():
            assert not _overlap(legend, tick.get_window_extent(renderer)), tick.get_text()
    assert legend.y1 < ax.xaxis.label.get_window_extent(renderer).y0      # below the x label
    figure = fig.bbox
    assert figure.x0 <= legend.x0 and legend.x1 <= figure.x1 and figure.y0 <= legend.y0


def test_caterpillar_thins_group_labels_so_they_do_not_collide(hsb):
    fit = lmm("mAch ~ 1 + (1 | school)", hsb)
    ax = caterpillar(fit)
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    shown = [t for t in ax.get_yticklabels() if t.get_text()]
    assert 10 <= len(shown) <= 40 < 160
    boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.y0)
    assert all(lower.y1 <= upper.y0 for lower, upper in zip(boxes, boxes[1:]))
    assert "one in 4 of 160 labelled" in ax.get_ylabel()
    assert shown[0].get_text() == fit.ranef["Intercept"].idxmin()   # bottom row still named
    # overrides: every group, none, or the groups named
    assert len(caterpillar(fit, labels=True).get_yticklabels()) == 160
    assert len(caterpillar(fit, labels=False).get_yticklabels()) == 0
    named = caterpillar(fit, labels=["1224", "9586"])
    assert sorted(t.get_text() for t in named.get_yticklabels()) == ["1224", "9586"]
    with pytest.raises(KeyError, match="'0000' is not a group of 'school'"):
        caterpillar(fit, labels=["0000"])


# ------------------------------------------------------------------------ spaghetti kinds


def test_spaghetti_observed_joins_each_groups_observations_in_x_order(sleep):
    few = sleep[sleep["Subject"].isin(["308", "309", "310"])].sample(frac=1, random_state=1)
    ax = spaghetti(few, "Days", "Reaction", "Subject", kind="observed")
    line = next(g for g in ax.lines if g.get_gid() == "group:309")
    rows = few[few["Subject"] == "309"].sort_values("Days")
    np.testing.assert_array_equal(line.get_xdata(), rows["Days"].to_numpy(float))
    np.testing.assert_array_equal(line.get_ydata(), rows["Reaction"].to_numpy())
    assert "observed trajectories" in ax.get_title()
    assert "complete pooling (OLS ignoring groups)" in _legend_texts(ax)
    with pytest.raises(ValueError, match="kind='fitted' draws a model's predictions"):
        spaghetti(few, "Days", "Reaction", "Subject", kind="fitted")
    with pytest.raises(ValueError, match="kind must be 'observed', 'ols' or 'fitted'"):
        spaghetti(few, "Days", "Reaction", "Subject", kind="raw")


def test_spaghetti_population_line_holds_group_level_covariates_at_their_means(hsb):
    some = hsb[hsb["school"].isin(hsb["school"].cat.categories[:30])]
    fit = lmm("mAch ~ cses * sector + meanses + (cses | school)", some)
    ax = spaghetti(some, "cses", "mAch", "school", fit=fit)
    reference = next(line for line in ax.lines if line.get_gid() == "reference")
    x = np.asarray(reference.get_xdata(), dtype=float)
    b = fit.fixef
    public = float((some["sector"] == "Public").mean())
    # the prediction at mean meanses, averaged over the sector mix: a straight line
    expected = (b["Intercept"] + b["meanses"] * some["meanses"].mean()
                + b["sector[T.Public]"] * public
                + (b["cses"] + b["cses:sector[T.Public]"] * public) * x)
    np.testing.assert_allclose(reference.get_ydata(), expected, rtol=1e-10)
    assert x.min() == some["cses"].min() and x.max() == some["cses"].max()
    # the same fit can show the raw trajectories against its population line
    observed = spaghetti(some, "cses", "mAch", "school", fit=fit, kind="observed")
    assert "observed trajectories" in observed.get_title()
    assert "population average (fixed effects)" in _legend_texts(observed)


def test_reference_line_is_named_alpha_for_the_intercept_and_beta_for_a_slope(sleep, rs_fit):
    """The legend follows the notation page: α for the intercept, β for slopes."""
    for term, symbol in (("Intercept", "α̂"), ("Days", "β̂")):
        ax = shrinkage_plot(rs_fit, term=term, data=sleep)
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(t.startswith(f"fixed effect {symbol} = ") for t in texts), texts
        plt.close(ax.figure)


def test_caterpillar_axis_label_fits_a_half_width_panel(rs_fit):
    ax = caterpillar(rs_fit, term="Days")
    assert ax.get_xlabel() == "BLUP of Days (deviation from fixed effect)"
    plt.close(ax.figure)
