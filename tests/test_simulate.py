"""simulate_clustered: the simulated data carry the truth they claim."""

import numpy as np
import pytest

import mlteach


def test_reproducible_with_seed():
    a = mlteach.simulate_clustered(n_groups=10, seed=3)
    b = mlteach.simulate_clustered(n_groups=10, seed=3)
    assert a.equals(b)
    assert not a.equals(mlteach.simulate_clustered(n_groups=10, seed=4))


def test_truth_is_recovered_in_a_large_sample():
    data = mlteach.simulate_clustered(n_groups=2000, group_size=30, icc=0.3, beta_within=1.5,
                                      beta_between=-0.5, corr_xu=0.6, seed=11)
    # the within slope is recovered by regressing y on x's deviation from its group mean
    data = mlteach.mundlak(data, "x", "group")
    fit = mlteach.ols("y ~ x_within + x_mean", data)
    assert fit.params["x_within"] == pytest.approx(1.5, abs=0.02)
    # The coefficient on the *sample* mean x̄_j = x̄*_j + w̄_j mixes three things, each divided by
    # Var(x̄_j) = 1 + 1/30: the between effect, the confounding Cov(μ_j, x̄*_j) = ρτ, and the
    # within effect carried by w̄_j (variance 1/30).
    var_mean = 1 + 1 / 30
    expected = (-0.5 + 0.6 * np.sqrt(0.3) + 1.5 / 30) / var_mean
    assert fit.params["x_mean"] == pytest.approx(expected, abs=0.03)
    mu = data.groupby("group", observed=True)["mu"].first()
    assert mu.var() == pytest.approx(0.3, rel=0.1)
    resid = data.y - data.mu - 1.5 * (data.x - data.x_mean_true) + 0.5 * data.x_mean_true
    assert resid.var() == pytest.approx(0.7, rel=0.05)


def test_group_sizes_from_range():
    data = mlteach.simulate_clustered(n_groups=50, group_size=(2, 9), seed=1)
    sizes = data.groupby("group", observed=True).size()
    assert sizes.min() >= 2 and sizes.max() <= 9 and sizes.nunique() > 3


def test_bad_parameters():
    with pytest.raises(ValueError, match=r"icc must be in \[0, 1\)"):
        mlteach.simulate_clustered(icc=1.0)
    with pytest.raises(ValueError, match="corr_xu is a correlation"):
        mlteach.simulate_clustered(corr_xu=2)
    with pytest.raises(ValueError, match="group_size has 2 entries but n_groups is 3"):
        mlteach.simulate_clustered(n_groups=3, group_size=[4, 5])
