"""The blocked evaluator for several grouping factors (`mlteach.lmm.blocked`, issue 15).

It must give the general sparse evaluator's numbers at any θ (deviance, β̂, û, for crossed and
nested factors, scalar and vector terms, with prior weights); its analytic gradient must
equal central differences of its deviance; auto picks it for several factors. The lme4
reference cases run through it in tests/test_lmm_reference.py (quantities at lme4's θ̂, and
every multi-factor fit, since `method="auto"` uses it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlteach
from mlteach.design import fixed_design, _factorize
from mlteach.errors import MlteachError
from mlteach.lmm.fit import deviance_function, random_variables
from mlteach.mixed.formula import parse_mixed_formula
from mlteach.mixed.structure import build_structure

FORMULAS = {
    "crossed": "y ~ x + (1 | a) + (1 | b)",
    "nested": "y ~ x + (1 | a) + (1 | a:b)",
    "three": "y ~ x + (1 | a) + (1 | b) + (1 | c)",
    "slope_crossed": "y ~ x + (1 + x | a) + (1 | b)",
    "slope_nested": "y ~ x + (1 + x | a) + (1 | a:b)",
    "uncorrelated": "y ~ x + (1 | a) + (0 + x | a) + (1 | b)",
    "slope_on_small": "y ~ x + (1 | a) + (1 + x | b)",
}


def crossed_data(seed: int, na: int, nb: int, reps: int) -> pd.DataFrame:
    """Every level of a meets every level of b, `reps` rows per cell (so rows > effects);
    c is a third factor crossing both."""
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(na), nb * reps)
    b = np.tile(np.repeat(np.arange(nb), reps), na)
    c = rng.integers(0, 3, size=a.size)
    x = rng.normal(size=a.size)
    y = (1 + 0.5 * x + rng.normal(size=na)[a] + 0.7 * rng.normal(size=nb)[b]
         + 0.3 * rng.normal(size=na)[a] * x + rng.normal(size=a.size))
    return pd.DataFrame({"y": y, "x": x, "a": [f"a{i}" for i in a],
                         "b": [f"b{i}" for i in b], "c": c.astype(str),
                         "w": rng.uniform(0.5, 2.0, size=a.size)})


def evaluators(formula: str, data: pd.DataFrame, weights: np.ndarray | None = None):
    parsed = parse_mixed_formula(formula)
    design = fixed_design(parsed.fixed, data, extra=random_variables(parsed))
    structure = build_structure(parsed.random, design.data)
    return (deviance_function(design, structure, "blocked", weights=weights),
            deviance_function(design, structure, "sparse", weights=weights), structure)


def random_theta(structure, rng) -> np.ndarray:
    diag = structure.theta_lower() == 0
    return np.where(diag, rng.uniform(0.05, 2.5, diag.size), rng.normal(size=diag.size))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(sorted(FORMULAS)),
       na=st.integers(3, 9), nb=st.integers(2, 6), weighted=st.booleans())
def test_blocked_equals_sparse_at_any_theta(seed, kind, na, nb, weighted):
    data = crossed_data(seed, na, nb, reps=2)
    w = data["w"].to_numpy() if weighted else None
    blocked, sparse, structure = evaluators(FORMULAS[kind], data, w)
    assert type(blocked).__name__ == "BlockedDeviance"
    theta = random_theta(structure, np.random.default_rng(seed))
    for reml in (True, False):
        assert blocked.objective(theta, reml) == pytest.approx(sparse.objective(theta, reml),
                                                               rel=1e-11)
    pb, ps = blocked.pls(theta), sparse.pls(theta)
    np.testing.assert_allclose(pb.beta, ps.beta, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(pb.u, ps.u, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pb.RXtRX, ps.RXtRX, rtol=1e-9)


@pytest.mark.parametrize("kind", sorted(FORMULAS))
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analytic_gradient_equals_finite_differences(kind, reml, seed):
    data = crossed_data(seed, 7, 4, reps=2)
    dev, _, structure = evaluators(FORMULAS[kind], data)
    assert dev.has_gradient
    theta = random_theta(structure, np.random.default_rng(seed))
    value, grad = dev.objective_and_gradient(theta, reml)
    assert value == pytest.approx(dev.objective(theta, reml), rel=1e-13)
    h = 1e-5
    fd = np.array([(dev.objective(theta + e, reml) - dev.objective(theta - e, reml)) / (2 * h)
                   for e in h * np.eye(theta.size)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)))


@pytest.mark.parametrize("kind,nested", [("nested", True), ("slope_nested", True),
                                         ("crossed", False), ("three", False),
                                         ("slope_crossed", False)])
def test_nested_factors_take_the_per_level_path(kind, nested):
    """Classes in schools: the Schur complement is block diagonal (one block per school), and
    the evaluator factors it block by block; crossed factors keep the dense complement."""
    dev, sparse, structure = evaluators(FORMULAS[kind], crossed_data(3, 4, 5, 2))
    assert (dev.parent is not None) == nested
    theta = random_theta(structure, np.random.default_rng(3))
    for reml in (True, False):
        assert dev.objective(theta, reml) == pytest.approx(sparse.objective(theta, reml),
                                                           rel=1e-11)
    s2 = 1.7
    for f, cov in dev.condcov_factors(theta, s2).items():
        np.testing.assert_allclose(cov, sparse.condcov_factors(theta, s2)[f], rtol=1e-9,
                                   atol=1e-12)


def test_gradient_is_zero_in_a_coordinate_at_its_bound():
    """At θ_k = 0 the deviance depends on θ_k through θ_k²: its slope there is 0."""
    dev, _, structure = evaluators(FORMULAS["crossed"], crossed_data(5, 6, 4, 2))
    for reml in (True, False):
        _, grad = dev.objective_and_gradient(np.array([0.0, 0.8]), reml)
        assert grad[0] == 0.0 and grad[1] != 0.0


def test_singular_vector_term_falls_back_to_differences():
    """A vector term's T_k with a zero on its diagonal (a boundary point the search may visit)
    has no inverse: the gradient there is a difference quotient, still close to the truth."""
    dev, _, structure = evaluators(FORMULAS["slope_crossed"], crossed_data(1, 6, 4, 2))
    theta = np.array([0.9, 0.3, 0.0, 0.7])                   # T = [[0.9, 0], [0.3, 0]]
    for reml in (True, False):
        _, grad = dev.objective_and_gradient(theta, reml)
        inside = theta + np.array([0, 0, 1e-7, 0])
        _, grad_inside = dev.objective_and_gradient(inside, reml)
        np.testing.assert_allclose(grad, grad_inside, rtol=1e-4, atol=1e-4)


def test_auto_uses_the_blocked_evaluator_and_matches_sparse_fit():
    pen = mlteach.load("penicillin")
    a = mlteach.lmm("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    b = mlteach.lmm("diameter ~ 1 + (1 | plate) + (1 | sample)", pen, method="sparse")
    assert a.optinfo["evaluator"] == "BlockedDeviance"
    assert b.optinfo["evaluator"] == "SparseDeviance"
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-5)
    # the analytic gradient needs far fewer evaluations than differences
    assert a.optinfo["nfev"] < b.optinfo["nfev"] / 2


def test_blocked_refuses_too_many_other_effects():
    """Two factors of 2,600 levels: a dense Schur complement of 2,600² is refused by name."""
    rng = np.random.default_rng(0)
    n = 2600 * 3
    data = pd.DataFrame({"y": rng.normal(size=n), "a": np.tile(np.arange(2600), 3),
                         "b": rng.permutation(np.tile(np.arange(2600), 3))})
    with pytest.raises(MlteachError, match="method='blocked' needs at most 2500 random "
                                           "effects outside the largest block"):
        mlteach.lmm("y ~ 1 + (1 | a) + (1 | b)", data, method="blocked")
    bad = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "g": list("aabb")})
    with pytest.raises(MlteachError, match="method must be 'auto', 'single', 'blocked' or "
                                           "'sparse', got 'dense'"):
        mlteach.lmm("y ~ 1 + (1 | g)", bad, method="dense")


@settings(max_examples=40)
@given(labels=st.lists(st.one_of(st.text(min_size=0, max_size=4)), min_size=1, max_size=60),
       categorical=st.booleans())
def test_group_codes_are_sorted_levels(labels, categorical):
    """Factorising by hashing gives np.unique's sorted levels and codes (R's factor())."""
    values = pd.Series(labels, dtype="category" if categorical else object, name="g")
    codes, levels = _factorize(values)
    if categorical:
        cats = list(values.cat.remove_unused_categories().cat.categories)
        assert levels == [str(c) for c in cats]
    else:
        uniq, expected = np.unique(np.array(labels, dtype=object), return_inverse=True)
        assert levels == [str(u) for u in uniq]
        np.testing.assert_array_equal(codes, expected)
    assert [levels[c] for c in codes] == [str(v) for v in labels]
