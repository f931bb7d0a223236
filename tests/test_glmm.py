"""Random-intercept GLMMs: identities, the API, and messages for bad input.

Agreement with lme4::glmer and MASS::glmmPQL is in test_glmm_reference.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import integrate, special

import mlteach
from mlteach.errors import (BoundaryFitWarning, DataTypeError, FormulaSyntaxError,
                            GroupingError, MlteachError, SeparationWarning)
from mlteach.glmm import compare_glmm_methods, glmm, marginal_loglik
from mlteach.glmm.family import Family
from mlteach.glmm.model import prepare

CONTRA = "use ~ age + I(age**2) + urban + livch + (1 | district)"


@pytest.fixture(scope="module")
def contraception() -> pd.DataFrame:
    return mlteach.load("contraception")


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return mlteach.load("cbpp")


@pytest.fixture(scope="module")
def grouse() -> pd.DataFrame:
    return mlteach.load("grouseticks")


@pytest.fixture(scope="module")
def contra_fit(contraception):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeparationWarning)   # district 11: all 'N'
        return glmm(CONTRA, contraception)


def _cbpp_data(cbpp):
    return prepare("incidence ~ period + (1 | herd)", cbpp, Family("binomial"), "size", None)


def _exact_loglik(data, beta, sd) -> float:
    """Σ_j log ∫ Π_i f(y_i | b) φ(b; 0, σ²) db by adaptive 1-D integration (scipy.quad)."""
    fam = data.family
    eta0 = data.X @ beta + data.offset
    total = 0.0
    for j in range(data.groups.n_groups):
        rows = data.groups.codes == j
        y, m, e, c = data.y[rows], data.trials[rows], eta0[rows], data.const[rows].sum()

        def log_integrand(u):
            return float(np.sum(fam.loglik(e + sd * u, y, m))) - u * u / 2 - 0.5 * np.log(2 * np.pi)

        grid = np.linspace(-8, 8, 321)
        peak = max(log_integrand(u) for u in grid)
        value, _ = integrate.quad(lambda u: np.exp(log_integrand(u) - peak), -12, 12,
                                  epsabs=0, epsrel=1e-13, limit=200)
        total += peak + np.log(value) + c
    return total


# ------------------------------------------------------------------------------- identities


def test_one_node_quadrature_is_the_laplace_formula(contraception):
    """The K = 1 Gauss–Hermite rule gives g(û) + ½log 2π − ½log h, written out here directly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeparationWarning)
        data = prepare(CONTRA, contraception, Family("binomial"), None, None)
    beta = np.array([-1.0, 0.004, -0.0045, 0.7, 0.8, 0.9, 0.9])
    for sd in (0.3, 0.5, 1.5):
        r = marginal_loglik(data, beta, sd, nagq=1)
        u, h = r.modes.u, r.modes.h
        eta = data.X @ beta + sd * u[data.groups.codes]
        p = special.expit(eta)
        ll = np.sum(data.y * np.log(p) + (1 - data.y) * np.log1p(-p))
        laplace = ll - np.sum(u ** 2) / 2 - 0.5 * np.sum(np.log(h))
        assert r.value == pytest.approx(laplace, abs=1e-9)
        # û is the mode: the penalised score σΣ(y − p) − u vanishes in every group
        score = sd * np.bincount(data.groups.codes, data.y - p) - u
        assert np.max(np.abs(score)) < 1e-9


def test_agq_with_one_node_fits_as_laplace(cbpp):
    a = glmm("incidence ~ period + (1 | herd)", cbpp, trials="size")
    b = glmm("incidence ~ period + (1 | herd)", cbpp, trials="size", method="agq", nagq=1)
    assert (a.method, a.nagq, b.method, b.nagq) == ("laplace", 1, "agq", 1)
    np.testing.assert_allclose(b.fixef, a.fixef, rtol=0, atol=1e-10)
    assert b.loglik == pytest.approx(a.loglik, abs=1e-10)


@pytest.mark.parametrize("nagq", [1, 7])
def test_zero_variance_gives_the_glm_likelihood(contraception, nagq):
    """At σ = 0 every rule integrates exactly: the log-likelihood is the logistic GLM's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeparationWarning)
        data = prepare(CONTRA, contraception, Family("binomial"), None, None)
    glm = sm.GLM(data.y, data.X, family=sm.families.Binomial()).fit()
    r = marginal_loglik(data, glm.params, 0.0, nagq)
    assert r.value == pytest.approx(glm.llf, abs=1e-8)
    # and the score in β is the GLM's score, zero at the GLM estimate; in σ it is 0 by symmetry
    assert np.max(np.abs(r.grad_beta)) < 1e-6
    assert abs(r.grad_sd) < 1e-12


def test_boundary_fit_equals_statsmodels_glm():
    """Groups with identical data carry no between-group variation: σ̂ = 0 and β̂ = GLM."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=12)
    y = (rng.uniform(size=12) < special.expit(0.3 + 0.8 * x)).astype(float)
    data = pd.DataFrame({"y": np.tile(y, 8), "x": np.tile(x, 8), "g": np.repeat(range(8), 12)})
    with pytest.warns(BoundaryFitWarning, match="estimated at zero.*no evidence"):
        fit = glmm("y ~ x + (1 | g)", data)
    ref = sm.GLM(data["y"], sm.add_constant(data["x"]), family=sm.families.Binomial()).fit()
    assert fit.sd_re == 0.0
    np.testing.assert_allclose(fit.fixef.to_numpy(), ref.params.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(fit.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-4)
    assert fit.loglik == pytest.approx(ref.llf, abs=1e-8)
    assert np.all(fit.ranef["Intercept"] == 0)


def test_poisson_zero_variance_gives_statsmodels_glm(grouse):
    data = prepare("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", grouse, Family("poisson"), None,
                   None)
    ref = sm.GLM(data.y, data.X, family=sm.families.Poisson()).fit()
    assert marginal_loglik(data, ref.params, 0.0, 5).value == pytest.approx(ref.llf, abs=1e-7)


def test_quadrature_converges_to_the_exact_likelihood(cbpp):
    """AGQ error shrinks with nodes; 25 nodes match adaptive 1-D integration to 1e-8."""
    data = _cbpp_data(cbpp)
    beta, sd = np.array([-1.4, -1.0, -1.1, -1.6]), 0.64
    exact = _exact_loglik(data, beta, sd)
    errors = [abs(marginal_loglik(data, beta, sd, k, gradient=False).value - exact)
              for k in (1, 3, 5, 9, 25)]
    assert errors[0] > 1e-3                      # Laplace is visibly approximate here
    assert errors[-1] < 1e-8
    assert errors[1] < errors[0] and errors[3] < errors[1]


def test_gradient_matches_finite_differences(cbpp, grouse):
    cases = [(_cbpp_data(cbpp), np.array([-1.4, -1.0, -1.1, -1.6]), 0.64),
             (prepare("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", grouse, Family("poisson"),
                      None, None), np.array([0.3, 1.1, -0.9, -0.02]), 0.9)]
    for data, beta, sd in cases:
        for k in (1, 5):
            r = marginal_loglik(data, beta, sd, k)
            h = 1e-6
            num = []
            for j in range(len(beta) + 1):
                theta = np.append(beta, sd)
                up, dn = theta.copy(), theta.copy()
                up[j] += h
                dn[j] -= h
                f = [marginal_loglik(data, t[:-1], t[-1], k, gradient=False).value
                     for t in (up, dn)]
                num.append((f[0] - f[1]) / (2 * h))
            np.testing.assert_allclose(np.append(r.grad_beta, r.grad_sd), num,
                                       rtol=1e-5, atol=1e-5)


def test_two_level_category_outcome_is_coded_second_level_one(contraception, contra_fit):
    data = contraception.assign(use01=(contraception["use"] == "Y").astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeparationWarning)
        numeric = glmm(CONTRA.replace("use ~", "use01 ~"), data)
    np.testing.assert_allclose(contra_fit.fixef, numeric.fixef, atol=1e-9)
    assert "'Y' coded 1, 'N' coded 0" in str(contra_fit.summary())
    assert list(contra_fit.fixef.index) == ["Intercept", "age", "I(age ** 2)", "urban[T.Y]",
                                            "livch[T.1]", "livch[T.2]", "livch[T.3+]"]


# ------------------------------------------------------------------------------------- API


def test_result_api(contra_fit, contraception):
    r = contra_fit
    assert r.converged and r.method == "laplace" and r.nagq == 1
    assert (r.nobs, r.ngroups) == (1934, 60)
    assert list(r.ranef.columns) == ["Intercept"] and r.ranef.index[0] == "1"
    assert r.ranef.index.equals(r.ranef_condvar.index)
    assert np.all(r.ranef_condvar["Intercept"] > 0)
    assert np.all(r.ranef_condvar["Intercept"] < r.sd_re ** 2)   # data shrink the prior
    assert r.to_frame().columns[0] == "estimate"
    ci = r.conf_int()
    assert np.all(ci["lower"] < r.fixef) and np.all(r.fixef < ci["upper"])
    assert "Laplace" in r._repr_html_() and "Log-likelihood" in str(r)
    assert r.aic == pytest.approx(-2 * r.loglik + 2 * 8)
    s2 = r.sd_re ** 2
    assert r.icc() == pytest.approx(s2 / (s2 + np.pi ** 2 / 3))
    with pytest.raises(Exception):
        r.sd_re = 1.0                                    # frozen


def test_predict(contra_fit, contraception):
    r = contra_fit
    X = r.data.X
    eta0 = X @ r.fixef.to_numpy()
    b = r.ranef["Intercept"].to_numpy()[r.data.groups.codes]
    np.testing.assert_allclose(r.predict(include_random=False), special.expit(eta0))
    np.testing.assert_allclose(r.predict(), special.expit(eta0 + b))
    np.testing.assert_allclose(r.predict(type="link"), eta0 + b)
    new = contraception.iloc[[0, 5, 100]]
    np.testing.assert_allclose(r.predict(new), r.predict().iloc[[0, 5, 100]])
    other = new.assign(district=pd.Categorical(["999", "1", "1"]))
    with pytest.raises(GroupingError, match="not seen: '999'.*include_random=False"):
        r.predict(other)
    assert r.predict(other, include_random=False).shape == (3,)


def test_poisson_with_offset_and_icc_refused(grouse):
    data = grouse.assign(logexp=np.log(np.full(len(grouse), 2.0)))
    plain = glmm("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", grouse, family="poisson")
    shifted = glmm("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", data, family="poisson",
                   offset="logexp")
    # a constant offset log 2 is absorbed by the intercept, nothing else changes
    assert shifted.fixef["Intercept"] == pytest.approx(plain.fixef["Intercept"] - np.log(2),
                                                       abs=1e-6)
    np.testing.assert_allclose(shifted.fixef.iloc[1:], plain.fixef.iloc[1:], atol=1e-6)
    np.testing.assert_allclose(shifted.predict(data), plain.predict(grouse), rtol=1e-6)
    with pytest.raises(MlteachError, match="Poisson model is not defined simply"):
        plain.icc()


def test_pql_has_no_loglik(cbpp):
    r = glmm("incidence ~ period + (1 | herd)", cbpp, family="binomial", trials="size",
             method="pql")
    assert np.isnan(r.loglik) and np.isnan(r.aic) and r.nagq is None
    text = str(r.summary())
    assert "PQL has no log-likelihood" in text and "none (PQL maximises no likelihood)" in text
    assert r.scale > 0


def test_compare_methods_table(cbpp):
    table = compare_glmm_methods("incidence ~ period + (1 | herd)", cbpp, trials="size",
                                 nagq=(1, 9))
    assert list(table.index) == ["Laplace", "AGQ (9 nodes)", "PQL"]
    assert {"Intercept", "sd_re", "loglik", "fit_time_s", "converged"} <= set(table.columns)
    assert np.isnan(table.loc["PQL", "loglik"]) and table.loc["Laplace", "converged"]
    assert (table["fit_time_s"] > 0).all()
    assert "<table" in table._repr_html_()


# ------------------------------------------------------------------------------- bad input


def test_binary_outcome_outside_zero_one(cbpp):
    with pytest.raises(DataTypeError, match=r"'incidence' must be 0 or 1.*row 0.*has 2.*trials="):
        glmm("incidence ~ period + (1 | herd)", cbpp)


def test_more_successes_than_trials(cbpp):
    bad = cbpp.assign(size=cbpp["size"].where(cbpp.index != 2, 3))     # row 2: 4 successes
    with pytest.raises(DataTypeError, match=r"more successes than trials.*row 2: 4 successes "
                                            r"out of 3 trials"):
        glmm("incidence ~ period + (1 | herd)", bad, trials="size")


def test_negative_counts(grouse):
    bad = grouse.assign(TICKS=grouse["TICKS"].where(grouse.index != 7, -2))
    with pytest.raises(DataTypeError, match=r"'TICKS' must be a count.*negative at row 7: -2"):
        glmm("TICKS ~ YEAR + (1 | LOCATION)", bad, family="poisson")


@pytest.mark.parametrize("nagq, pattern", [
    (0, "at least 1 .1 node is the Laplace approximation"),
    (500, "nagq=500 is more quadrature nodes than can help.*at most 100"),
    (2.5, "whole number"),
])
def test_bad_nagq(cbpp, nagq, pattern):
    with pytest.raises(MlteachError, match=pattern):
        glmm("incidence ~ period + (1 | herd)", cbpp, trials="size", method="agq", nagq=nagq)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"method": "laplace", "nagq": 5}, "Laplace approximation uses one node.*method='agq'"),
    ({"method": "pql", "nagq": 5}, "PQL does not use quadrature"),
    ({"method": "mcmc"}, "method must be 'laplace', 'agq' or 'pql'"),
    ({"family": "gaussian"}, "family must be 'binomial'"),
    ({"family": "poisson", "trials": "size"}, "only applies to the binomial family"),
])
def test_bad_options(cbpp, kwargs, pattern):
    kwargs = {"trials": "size", **kwargs}
    with pytest.raises(MlteachError, match=pattern):
        glmm("incidence ~ period + (1 | herd)", cbpp, **kwargs)


def test_formula_without_random_effects_is_refused(cbpp):
    with pytest.raises(FormulaSyntaxError, match=r"'incidence ~ period' has no random-effect "
                                                 r"term such as '\(1 \| group\)'.*a GLM"):
        glmm("incidence ~ period", cbpp, trials="size")


def test_more_random_effects_than_rows_is_refused_as_lme4(cbpp):
    """glmer stops: 'number of observations (=56) < number of random effects (=60) for term
    (period | herd)'."""
    with pytest.raises(GroupingError, match=r"\(period \| herd\) has 60 random effects "
                                            r"\(15 groups × 4 per group\) for 56 rows.*cannot "
                                            r"be estimated.*\(1 \| herd\)"):
        glmm("incidence ~ period + (period | herd)", cbpp, trials="size")


def test_nested_observation_level_effect_leaves_the_boundary(cbpp):
    """(1 | herd/period) on cbpp: the herd SD's deviance has zero slope at 0 and falls inside
    (a saddle on the boundary); glmer 1.1-31 reaches logLik -87.31916, herd SD 0.18396,
    period:herd SD 0.89107 (checked in R for this test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = glmm("incidence ~ period + (1 | herd/period)", cbpp, trials="size")
    assert fit.converged
    assert fit.loglik == pytest.approx(-87.31916, abs=2e-5)
    assert fit.sd_re["herd: Intercept"] == pytest.approx(0.18396, abs=1e-3)
    assert fit.sd_re["herd:period: Intercept"] == pytest.approx(0.89107, abs=1e-3)


def test_cbind_outcome_with_an_expression_equals_trials(cbpp):
    a = glmm("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    b = glmm("incidence ~ period + (1 | herd)", cbpp, trials="size")
    assert a.loglik == pytest.approx(b.loglik, abs=1e-9)
    np.testing.assert_allclose(a.params, b.params, atol=1e-7)


def test_text_outcome_with_many_levels(contraception):
    with pytest.raises(DataTypeError, match=r"'livch' is not numeric.*exactly two levels, found 4"):
        glmm("livch ~ age + (1 | district)", contraception)


def test_group_with_all_outcomes_equal_warns_and_fits(contraception):
    pattern = (r"In 3 of 60 groups of 'district' every outcome is the same "
               r"\(all 0 in '11', '49'; all 1 in '3'\)")
    with pytest.warns(SeparationWarning, match=pattern):
        fit = glmm(CONTRA, contraception)
    assert fit.converged
    b = fit.ranef["Intercept"]
    assert b["11"] < 0 and b["49"] < 0 and b["3"] > 0
    assert np.all(np.abs(b) < 3 * fit.sd_re)              # finite, shrunk toward 0


def test_complete_separation_warns_and_still_fits():
    rng = np.random.default_rng(3)
    x = rng.normal(size=120)
    data = pd.DataFrame({"y": (x > 0).astype(int), "x": x, "g": np.repeat(range(12), 10)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = glmm("y ~ x + (1 | g)", data)
    messages = [str(w.message) for w in caught if issubclass(w.category, SeparationWarning)]
    assert any("perfectly predicted by 'x' in part" in m and "separation" in m for m in messages)
    assert fit.fixef["x"] > 5                                   # heading off to infinity


def test_power_inside_I_is_read_as_in_R(contraception):
    """`I(age^2)` is a power, as in R and as the course writes the model, not a bitwise XOR."""
    with pytest.warns(SeparationWarning):  # three districts where every outcome is the same
        r_style = glmm("use ~ age + I(age^2) + urban + (1 | district)", contraception)
    with pytest.warns(SeparationWarning):
        python_style = glmm("use ~ age + I(age**2) + urban + (1 | district)", contraception)
    pd.testing.assert_series_equal(r_style.fixef, python_style.fixef)
    assert "I(age ** 2)" in r_style.fixef.index


def test_rows_sorted_by_group_give_the_same_likelihood(grouse):
    """`GLMMData.contiguous` (rows sorted by group, segmented sums) only reorders the rows: the
    Laplace and AGQ values, gradients and modes equal those computed on the data's own order."""
    shuffled = grouse.sample(frac=1.0, random_state=3)
    data = prepare("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", shuffled, Family("poisson"),
                   None, None)
    assert data._segment_starts is None
    work = data.contiguous()
    assert work._segment_starts is not None and work.contiguous() is work
    np.testing.assert_array_equal(np.sort(work.y), np.sort(data.y))
    beta, sd = np.array([0.3, 1.1, -0.9, -0.02]), 0.9
    for k in (1, 5):
        a, b = marginal_loglik(data, beta, sd, k), marginal_loglik(work, beta, sd, k)
        assert abs(a.value - b.value) < 1e-9 * abs(a.value)
        np.testing.assert_allclose(b.grad_beta, a.grad_beta, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(b.modes.u, a.modes.u, rtol=1e-9, atol=1e-12)
    per_group = np.arange(data.groups.n_groups, dtype=float)
    np.testing.assert_array_equal(work.expand(per_group), per_group[work.groups.codes])
    np.testing.assert_allclose(work.group_sum(work.y), data.group_sum(data.y))
