"""Textbook identities of the panel estimators, for any data (hypothesis).

within = LSDV (slopes, SEs, all covariance kinds, one- and two-way); the REWB/Mundlak within
effect = the fixed-effects slope (Mundlak 1978); GLS with θ = 0 = pooled OLS and θ = 1 = within;
first differences = within when T = 2; row order does not matter.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import mlteach
from mlteach import panel as P
from mlteach.errors import BoundaryFitWarning

F = "y ~ x1 + x2"
EXACT = dict(rtol=1e-9, atol=1e-12)


def make_panel(seed: int, n_groups: int, balanced: bool, n_periods: int = 5,
               shuffle: bool = True) -> pd.DataFrame:
    """A panel with group effects correlated with x, a group-level z, unbalanced on request.

    Unbalanced panels drop random (group, period) rows but keep every group's first two
    periods and its last, so every group has within variation and at least one first
    difference between adjacent periods (first differences then leave at least one row per
    group). Properties that need more residual degrees of freedom than that guarantees say so
    with `assume(residual_df(...) > 0)`.
    """
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), n_periods)
    t = np.tile(np.arange(2000, 2000 + n_periods), n_groups)
    u = rng.normal(size=n_groups)
    x1 = rng.normal(size=g.size) + u[g]
    x2 = rng.normal(size=g.size) + 0.5 * t / 1000
    z = rng.normal(size=n_groups)[g]
    y = 1 + 0.5 * x1 - 0.3 * x2 + 0.2 * z + u[g] + rng.normal(size=g.size)
    df = pd.DataFrame({"g": [f"G{j:02d}" for j in g], "t": t, "x1": x1, "x2": x2, "z": z,
                       "y": y})
    if not balanced:
        keep = rng.random(g.size) > 0.35
        keep[np.flatnonzero(t <= 2001)] = True
        keep[np.flatnonzero(t == 2000 + n_periods - 1)] = True
        df = df[keep]
    if shuffle:
        df = df.sample(frac=1.0, random_state=seed % 1000)
    return df.reset_index(drop=True)


panels = st.builds(make_panel, seed=st.integers(0, 2**31 - 1), n_groups=st.integers(3, 9),
                   balanced=st.booleans(), n_periods=st.integers(3, 6))
# Random effects need more groups than between coefficients (up to 4 here).
re_panels = st.builds(make_panel, seed=st.integers(0, 2**31 - 1), n_groups=st.integers(6, 10),
                      balanced=st.booleans(), n_periods=st.integers(3, 6))


def residual_df(data: pd.DataFrame, twoways: bool = False, k: int = 2) -> int:
    """Residual degrees of freedom of the within estimator of `k` slopes: n − G (− (T − 1))."""
    n, G, T = len(data), data["g"].nunique(), data["t"].nunique()
    return n - G - k - (T - 1 if twoways else 0)


def same(a, b, **tol):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), **(tol or EXACT))


@settings(max_examples=30)
@given(data=panels, cov=st.sampled_from(["classical", "robust", "cluster"]),
       twoways=st.booleans())
def test_within_equals_lsdv(data, cov, twoways):
    # two-way effects on a small unbalanced panel can use up every degree of freedom
    assume(residual_df(data, twoways) > 0)
    kw = dict(time="t", effects="twoways") if twoways else {}
    w = P.within(F, data, group="g", cov=cov, **kw)
    d = P.lsdv(F, data, group="g", cov=cov, **kw)
    same(w.params, d.params)
    same(w.bse, d.bse)
    assert w.df_resid == d.df_resid
    same(w.rsquared, d.rsquared)
    # predictions with the effects: within splits y − x'β̂ − e into α̂_i (+ γ̂_t) itself
    same(w.predict(data), d.predict(data), rtol=1e-8, atol=1e-8)
    same(w.predict(), data.loc[w.resid.index, "y"] - w.resid, rtol=1e-8, atol=1e-8)
    if not twoways:   # α̂_i = ȳ_i − x̄_i'β̂
        means = data.groupby("g")[["y", "x1", "x2"]].mean()
        alpha = means["y"] - means[["x1", "x2"]].to_numpy() @ w.params.to_numpy()
        same(d.group_effects["estimate"], alpha.loc[d.group_effects.index])


@given(seed=st.integers(0, 2**31 - 1), n_groups=st.integers(3, 7), n_periods=st.integers(3, 6))
def test_twoway_demeaning_balanced_closed_form(seed, n_groups, n_periods):
    """In a balanced panel the exact two-way transformation is x − x̄_i − x̄_t + x̄."""
    data = make_panel(seed, n_groups, True, n_periods)
    groups = mlteach.design.GroupIndex.from_data(data, "g")
    tpos, tlev = np.unique(data["t"], return_inverse=True)
    x = data["x1"].to_numpy()
    closed = (x - data.groupby("g")["x1"].transform("mean")
              - data.groupby("t")["x1"].transform("mean") + x.mean())
    out, n_time = P.twoway_demean(x, groups, tlev, len(tpos))
    same(out, closed)
    assert n_time == n_periods - 1


@settings(max_examples=25)
@given(data=re_panels, cov=st.sampled_from(["classical", "cluster"]))
def test_rewb_within_effect_is_fixed_effects_slope(data, cov):
    """Mundlak (1978): the within coefficient does not depend on θ or on the group means."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)   # σ²_u = 0 is still a valid θ
        r = P.rewb("y ~ x1 + x2 + z", data, group="g", cov=cov)
    with pytest.warns(mlteach.errors.DroppedTermWarning, match="'z'"):
        w = P.within("y ~ x1 + x2 + z", data, group="g", cov=cov)
    same(r.within_effects["estimate"], w.params[["x1", "x2"]])
    same(r.contextual_effects["estimate"],
         r.between_effects["estimate"] - r.within_effects["estimate"])
    assert list(r.params.index) == ["Intercept", "x1_within", "x1_mean", "x2_within",
                                    "x2_mean", "z"]


@settings(max_examples=25)
@given(data=re_panels)
def test_rewb_is_swamy_arora_on_mundlak_columns(data):
    """rewb() equals swamy_arora() on design.mundlak()'s x_within and x_mean columns."""
    aug = mlteach.mundlak(data, ["x1", "x2"], "g")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        a = P.swamy_arora("y ~ x1_within + x1_mean + x2_within + x2_mean", aug, group="g")
        b = P.rewb(F, data, group="g")
    same(a.params, b.params, rtol=1e-8, atol=1e-10)
    same(a.bse, b.bse, rtol=1e-8, atol=1e-12)
    same(a.sigma2_u, b.sigma2_u, rtol=1e-9)


@given(data=panels)
def test_gls_theta_zero_is_pooled_ols(data):
    g = P.quasi_demeaned_gls(F, data, group="g", theta=0.0)
    o = mlteach.ols(F, data)
    same(g.params, o.params)
    same(g.bse, o.bse)
    c = P.quasi_demeaned_gls(F, data, group="g", theta=0.0, cov="cluster")
    same(c.bse, mlteach.ols(F, data, cluster="g").bse)


@given(data=panels)
def test_gls_theta_one_is_within(data):
    g = P.quasi_demeaned_gls(F, data, group="g", theta=1.0)
    w = P.within(F, data, group="g")
    same(g.params, w.params)
    n, G, k = w.nobs, w.ngroups, 2
    # Same residuals; only the residual degrees of freedom differ (n − k vs n − G − k).
    same(g.bse, w.bse * np.sqrt((n - G - k) / (n - k)))


@settings(max_examples=25)
@given(data=re_panels)
def test_swamy_arora_is_gls_with_its_theta(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        re = P.swamy_arora(F, data, group="g")
        g = P.quasi_demeaned_gls(F, data, group="g", theta=re.theta_by_group)
    same(re.params, g.params)
    same(re.bse, g.bse)
    sizes = data.groupby("g").size()
    same(re.theta_by_group,
         1 - np.sqrt(re.sigma2_e / (sizes * re.sigma2_u + re.sigma2_e)).loc[re.theta_by_group.index])
    if sizes.nunique() == 1:
        assert isinstance(re.theta, float)


@given(seed=st.integers(0, 2**31 - 1), n_groups=st.integers(4, 12),
       cov=st.sampled_from(["classical", "cluster"]))
def test_first_difference_equals_within_when_two_periods(seed, n_groups, cov):
    data = make_panel(seed, n_groups, True, n_periods=2)
    fd = P.first_difference("y ~ 0 + x1 + x2", data, group="g", time="t", cov=cov)
    w = P.within(F, data, group="g", cov=cov)
    same(fd.params, w.params)
    if cov == "classical":
        same(fd.bse, w.bse)
    assert fd.df_resid == w.df_resid


@settings(max_examples=15)
@given(seed=st.integers(0, 2**31 - 1), balanced=st.booleans())
def test_row_order_does_not_matter(seed, balanced):
    a = make_panel(seed, 7, balanced, 5, shuffle=False)
    b = a.sample(frac=1.0, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # gap warnings on unbalanced panels
        for fit in (lambda d: P.first_difference(F, d, group="g", time="t"),
                    lambda d: P.within(F, d, group="g", time="t", effects="twoways"),
                    lambda d: P.swamy_arora(F, d, group="g")):
            same(fit(a).params, fit(b).params)
