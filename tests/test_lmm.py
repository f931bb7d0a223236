"""mlteach.lmm: formula parsing, bad input, identities that must hold, and the result object."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlteach
from mlteach.errors import (
    BoundaryFitWarning,
    DataTypeError,
    FormulaSyntaxError,
    GroupingError,
    MissingDataWarning,
    UnknownVariableError,
)
from mlteach.mixed.formula import RandomTerm, parse_mixed_formula


@pytest.fixture(scope="module")
def rs(sleep):
    return mlteach.lmm("Reaction ~ Days + (Days | Subject)", sleep)


# ------------------------------------------------------------------------- formula parsing


@pytest.mark.parametrize("formula, fixed, random", [
    ("y ~ x + (1 | g)", "y ~ x", [("1", ("g",))]),
    ("y ~ x + (x | g)", "y ~ x", [("x", ("g",))]),
    ("y ~ x + (0 + x | g)", "y ~ x", [("0 + x", ("g",))]),
    ("y ~ x + (1 + x || g)", "y ~ x", [("1", ("g",)), ("0 + x", ("g",))]),
    ("y ~ (1 | a/b)", "y ~ 1", [("1", ("a",)), ("1", ("a", "b"))]),
    ("y ~ x*z + (1|a) + (1|b)", "y ~ x*z", [("1", ("a",)), ("1", ("b",))]),
    ("y ~ C(f, Treatment('b')) + (1 + log(x) | g:h)", "y ~ C(f, Treatment('b'))",
     [("1 + log(x)", ("g", "h"))]),
])
def test_parse_lme4_syntax(formula, fixed, random):
    parsed = parse_mixed_formula(formula)
    assert parsed.fixed == fixed
    assert parsed.random == tuple(RandomTerm(e, f) for e, f in random)


@pytest.mark.parametrize("formula, match", [
    ("y ~ x + (1 | g", r"'\(' is never closed"),
    ("y ~ x + (1 | g))", r"closes a parenthesis that was never opened"),
    ("y ~ x + (1 | )", r"Nothing after the bar"),
    ("y ~ x + ( | g)", r"Nothing before the bar"),
    ("y ~ x + 1 | g", r"must be in its own parentheses"),
    ("y ~ x", r"no random-effect term"),
    ("y ~ x + (1 | g + h)", r"'g \+ h' is not a column name"),
    ("y x (1 | g)", r"outcome on the left"),
])
def test_formula_errors_point_at_the_problem(formula, match):
    with pytest.raises(FormulaSyntaxError, match=match):
        parse_mixed_formula(formula)


def test_syntax_error_shows_a_caret():
    with pytest.raises(FormulaSyntaxError) as info:
        parse_mixed_formula("y ~ x + (1 | )")
    lines = str(info.value).splitlines()
    assert lines[-1].index("^") == lines[-2].index(")") - 1 or "^" in lines[-1]


# ------------------------------------------------------------------------------- bad input


def test_unknown_variables_are_named(sleep):
    with pytest.raises(UnknownVariableError, match=r"'Subjekt' \(did you mean 'Subject'\?\)"):
        mlteach.lmm("Reaction ~ Days + (1 | Subjekt)", sleep)
    with pytest.raises(UnknownVariableError, match=r"'Dayz'"):
        mlteach.lmm("Reaction ~ Days + (Dayz | Subject)", sleep)


def test_one_level_grouping_factor(sleep):
    data = sleep.assign(one="a")
    with pytest.raises(GroupingError, match=r"'one' has a single level"):
        mlteach.lmm("Reaction ~ Days + (1 | one)", data)


def test_grouping_with_one_row_per_group(sleep):
    data = sleep.assign(row=np.arange(len(sleep)))
    with pytest.raises(GroupingError, match=r"'row' has as many levels as rows"):
        mlteach.lmm("Reaction ~ Days + (1 | row)", data)


def test_too_many_random_effects_for_the_rows(sleep):
    data = sleep.assign(pair=np.arange(len(sleep)) // 2)
    with pytest.raises(GroupingError, match=r"\(Days \| pair\) has 180 random effects \(90 groups × 2 per group\) for "
                                            r"180 rows: its variance parameters and the "
                                            r"residual variance cannot be estimated"):
        mlteach.lmm("Reaction ~ Days + (Days | pair)", data)


def test_missing_values_dropped_with_count(sleep):
    data = sleep.copy()
    data.loc[[3, 7], "Reaction"] = np.nan
    data["Subject"] = data["Subject"].astype(object)
    data.loc[11, "Subject"] = None
    with pytest.warns(MissingDataWarning, match=r"Dropped 3 of 180 rows"):
        r = mlteach.lmm("Reaction ~ Days + (1 | Subject)", data)
    assert r.nobs == 177
    assert 3 not in r.data_index and 11 not in r.data_index


def test_slope_that_does_not_vary_within_groups(sleep):
    data = sleep.assign(subject_mean=sleep.groupby("Subject", observed=True)["Days"]
                        .transform("mean") + sleep["Subject"].cat.codes)
    with pytest.raises(GroupingError, match=r"'subject_mean' takes a single value within every "
                                            r"group of 'Subject'"):
        mlteach.lmm("Reaction ~ Days + (subject_mean | Subject)", data)


def test_text_outcome_refused(sleep):
    data = sleep.assign(label=np.where(sleep["Reaction"] > 300, "slow", "fast"))
    with pytest.raises(DataTypeError, match=r"outcome 'label' is not numeric"):
        mlteach.lmm("label ~ Days + (1 | Subject)", data)


def test_reml_must_be_boolean(sleep):
    with pytest.raises(TypeError, match=r"reml must be True or False"):
        mlteach.lmm("Reaction ~ Days + (1 | Subject)", sleep, reml="yes")


# ------------------------------------------------------------------------------ identities


def small_data(seed: int, n_groups: int = 8, size: int = 6, tau: float = 0.7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), size)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + tau * rng.normal(size=n_groups)[g] + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"s{j}" for j in g])})


def test_zero_variance_component_gives_ols():
    data = mlteach.load("dyestuff2")
    with pytest.warns(BoundaryFitWarning):
        r = mlteach.lmm("Yield ~ 1 + (1 | Batch)", data)
    o = mlteach.ols("Yield ~ 1", data)
    assert r.get_cov_re().iloc[0, 0] == 0.0
    np.testing.assert_allclose(r.fixef, o.params, rtol=1e-12)
    np.testing.assert_allclose(r.bse, o.bse, rtol=1e-10)   # REML σ̂² = e'e/(n − p)
    assert r.sigma == pytest.approx(o.sigma, rel=1e-12)


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000))
def test_balanced_reml_equals_anova_estimator(seed):
    data = small_data(seed, tau=1.0)
    n = 6
    fit = mlteach.ols("y ~ C(g)", data)
    msw = fit.sigma ** 2
    means = data.groupby("g", observed=True)["y"].mean()
    msb = n * ((means - data["y"].mean()) ** 2).sum() / (len(means) - 1)
    tau2 = (msb - msw) / n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        r = mlteach.lmm("y ~ 1 + (1 | g)", data)
    if tau2 > 0:
        assert r.get_cov_re().iloc[0, 0] == pytest.approx(tau2, rel=1e-6)
        assert r.sigma ** 2 == pytest.approx(msw, rel=1e-6)
    else:
        assert r.singular and r.get_cov_re().iloc[0, 0] == 0.0


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000))
def test_invariant_to_row_order_and_group_labels(seed):
    data = small_data(seed)
    formula = "y ~ x + (1 + x | g)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mlteach.lmm(formula, data)
        shuffled = data.sample(frac=1.0, random_state=seed)
        relabel = {f"s{j}": f"z{7 - j}" for j in range(8)}
        shuffled["g"] = pd.Categorical(shuffled["g"].astype(str).map(relabel))
        b = mlteach.lmm(formula, shuffled)
    assert b.loglik == pytest.approx(a.loglik, abs=1e-7)
    np.testing.assert_allclose(b.fixef, a.fixef, rtol=1e-5, atol=1e-7)
    renamed = b.ranef.rename(index={v: k for k, v in relabel.items()}).loc[a.ranef.index]
    np.testing.assert_allclose(renamed, a.ranef, rtol=1e-4, atol=1e-6)


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), c=st.floats(0.01, 100.0))
def test_scaling_y_scales_fixed_effects_and_sds(seed, c):
    data = small_data(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mlteach.lmm("y ~ x + (1 | g)", data)
        b = mlteach.lmm("y ~ x + (1 | g)", data.assign(y=c * data["y"]))
    np.testing.assert_allclose(b.fixef, c * a.fixef, rtol=1e-6, atol=1e-9 * c)
    assert b.sigma == pytest.approx(c * a.sigma, rel=1e-6)
    sd_a = np.sqrt(a.get_cov_re().iloc[0, 0])
    assert np.sqrt(b.get_cov_re().iloc[0, 0]) == pytest.approx(c * sd_a, rel=1e-5, abs=1e-6 * c)
    # the density of c·y is that of y divided by c per residual degree of freedom
    assert b.loglik == pytest.approx(a.loglik - (a.nobs - 2) * np.log(c), abs=1e-6)


def slope_data(seed: int, n_groups: int = 10, size: int = 8) -> pd.DataFrame:
    """Groups with random intercepts and random slopes of x (SD 0.5, correlation −0.4)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), size)
    x = rng.normal(2.0, 1.5, size=g.size)
    b = rng.multivariate_normal([0, 0], [[1.0, -0.2], [-0.2, 0.25]], size=n_groups)
    y = 1 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"s{j}" for j in g])})


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), log10_c=st.floats(-4.0, 4.0),
       reml=st.booleans(), uncorrelated=st.booleans())
def test_rescaling_a_random_slope_changes_nothing_but_units(seed, log10_c, reml, uncorrelated):
    """x → c·x is a change of units: the same fit, with the slope's SD divided by c.

    Fitted values, the singular flag and the ML log-likelihood are unchanged; the REML one
    shifts by −log|c| (its log|X'X| term, one rescaled fixed-effect column). This holds
    because the optimiser searches on the unit scale (`ReStructure.theta_scale`); on θ
    itself a covariate in thousands could stop it at a spurious boundary.
    """
    c = 10.0 ** log10_c
    data = slope_data(seed)
    formula = f"y ~ x + (1 + x {'||' if uncorrelated else '|'} g)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mlteach.lmm(formula, data, reml=reml)
        b = mlteach.lmm(formula, data.assign(x=c * data["x"]), reml=reml)
    shift = -np.log(c) if reml else 0.0
    assert b.loglik == pytest.approx(a.loglik + shift, abs=1e-7)
    assert b.singular == a.singular and b.converged == a.converged
    np.testing.assert_allclose(b.fitted, a.fitted, rtol=0, atol=1e-5 * np.abs(a.fitted).max())
    sd_a, sd_b = (np.sqrt(np.diag(r.get_cov_re().to_numpy())) for r in (a, b))
    assert sd_b[0] == pytest.approx(sd_a[0], rel=1e-4, abs=1e-6 * a.sigma)
    assert sd_b[1] == pytest.approx(sd_a[1] / c, rel=1e-4, abs=1e-6 * a.sigma / c)
    assert b.sigma == pytest.approx(a.sigma, rel=1e-6)


@pytest.mark.parametrize("formula", ["Reaction ~ Days + (1 | Subject)",
                                     "Reaction ~ Days + (Days | Subject)",
                                     "Reaction ~ Days + (Days || Subject)",
                                     "Reaction ~ Days + (0 + Days | Subject)"])
@pytest.mark.parametrize("reml", [True, False])
def test_fast_path_equals_sparse_path(sleep, formula, reml):
    a = mlteach.lmm(formula, sleep, reml=reml, method="single")
    b = mlteach.lmm(formula, sleep, reml=reml, method="sparse")
    assert a.optinfo["evaluator"] == "SingleFactorDeviance"
    assert b.optinfo["evaluator"] == "SparseDeviance"
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    np.testing.assert_allclose(a.fixef, b.fixef, rtol=1e-6)
    np.testing.assert_allclose(a.ranef, b.ranef, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.ranef_condvar, b.ranef_condvar, rtol=1e-5)
    # the full per-level matrices too, including the covariance across '||' blocks
    np.testing.assert_allclose(a.ranef_condcov, b.ranef_condcov, rtol=1e-5,
                               atol=1e-7 * np.abs(a.ranef_condcov.to_numpy()).max())


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000))
def test_evaluators_agree_at_any_theta(seed):
    """Same deviance, β̂ and û from the per-group and the sparse evaluator, at random θ."""
    from mlteach.lmm.fit import deviance_function
    from mlteach.design import fixed_design
    from mlteach.mixed.structure import build_structure
    data = small_data(seed)
    rng = np.random.default_rng(seed)
    parsed = parse_mixed_formula("y ~ x + (1 + x | g)")
    design = fixed_design(parsed.fixed, data, extra=["g"])
    structure = build_structure(parsed.random, design.data)
    theta = np.abs(rng.normal(size=3)) * np.array([1, 0, 1]) + rng.normal(size=3) * [0, 1, 0]
    a = deviance_function(design, structure, "single")
    b = deviance_function(design, structure, "sparse")
    for reml in (True, False):
        assert a.objective(theta, reml) == pytest.approx(b.objective(theta, reml), rel=1e-12)
    pa, pb = a.pls(theta), b.pls(theta)
    np.testing.assert_allclose(pa.beta, pb.beta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pa.u, pb.u, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("formula", ["Reaction ~ Days + (1 | Subject)",
                                     "Reaction ~ Days + (Days | Subject)",
                                     "Reaction ~ Days + (Days || Subject)"])
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analytic_gradient_equals_finite_differences(sleep, formula, reml, seed):
    """The single-factor path's ∂d/∂θ against central differences of d, at random θ."""
    from mlteach.design import fixed_design
    from mlteach.lmm.fit import deviance_function, random_variables
    from mlteach.mixed.structure import build_structure
    parsed = parse_mixed_formula(formula)
    design = fixed_design(parsed.fixed, sleep, extra=random_variables(parsed))
    structure = build_structure(parsed.random, design.data)
    dev = deviance_function(design, structure, "single")
    rng = np.random.default_rng(seed)
    diag = structure.theta_lower() == 0
    theta = np.where(diag, rng.uniform(0.05, 2.0, diag.size), rng.normal(size=diag.size))
    value, grad = dev.objective_and_gradient(theta, reml)
    assert value == dev.objective(theta, reml)
    h = 1e-5
    fd = np.array([(dev.objective(theta + e, reml) - dev.objective(theta - e, reml)) / (2 * h)
                   for e in h * np.eye(theta.size)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5 * np.max(np.abs(fd)))


def test_convergence_check_uses_gradient_and_hessian(sleep, rs):
    """At the optimum the analytic gradient is small and the differenced Hessian PD; a fit
    stopped short is caught by the same check."""
    from mlteach.errors import ConvergenceWarning
    from mlteach.lmm.fit import check_fit
    from mlteach.mixed.optimize import minimize_deviance
    assert rs.converged and rs.optinfo["evaluator"] == "SingleFactorDeviance"
    assert rs.optinfo["scaled_gradient"] < 1e-6
    assert rs.optinfo["hessian_min_eig"] > 0
    assert np.max(np.abs(rs.optinfo["gradient"])) < 1e-4
    assert rs.optinfo["nfev"] < 100

    from mlteach.lmm.fit import deviance_function
    dev = deviance_function(rs.design, rs.structure, "single")
    opt = minimize_deviance(lambda t: dev.objective(t, True), rs.structure.theta_start(),
                            rs.structure.theta_lower(),
                            lambda t: dev.objective_and_gradient(t, True))
    far = dataclasses.replace(opt, theta=opt.theta * 1.5, scaled_gradient=0.3)
    with pytest.warns(ConvergenceWarning, match="deviance still slopes"):
        assert not check_fit(far, rs.structure)


@pytest.mark.parametrize("expr", ["1", "x", "1 + x", "x + 1", "0 + x", "x + 0", "z + x",
                                  "1 + z + x", "0 + z + x", "k", "b", "f", "log(w)", "x:z",
                                  "x + x"])
def test_plain_random_terms_encode_as_formulaic(expr):
    """Random-effect expressions of plain numeric columns skip formulaic: same columns, names
    and order; anything else (booleans, text, functions, interactions) goes through it."""
    from formulaic import model_matrix
    from mlteach.mixed.structure import _plain_columns, _plain_expression
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=6), "z": rng.normal(size=6), "k": np.arange(6),
                         "w": rng.uniform(1, 2, 6), "b": [True, False] * 3, "f": list("abcabc")})
    columns = _plain_expression(expr, data)
    mm = model_matrix(expr, data)
    if expr in ("b", "f", "log(w)", "x:z", "x + x"):
        assert columns is None
    else:
        assert columns == list(mm.columns)
        np.testing.assert_array_equal(_plain_columns(columns, data), np.asarray(mm, dtype=float))


@pytest.mark.parametrize("eps", [0.0, 1e-12, 1e-9, 1e-8, 1e-7, 1e-5])
def test_rank_check_agrees_with_the_qr_check(eps):
    """The lmm rank check (Cholesky screen, QR when in doubt) gives the shared QR verdict."""
    from mlteach.design import assert_full_rank, fixed_design
    from mlteach.errors import RankDeficientError
    from mlteach.lmm.fit import check_full_rank
    data = small_data(3)
    rng = np.random.default_rng(0)
    data["x2"] = 2 * data["x"] + eps * rng.normal(size=len(data))
    design = fixed_design("y ~ x + x2", data, check_rank=False)
    try:
        assert_full_rank(design.X, design.terms)
        expected = None
    except RankDeficientError as exc:
        expected = str(exc)
    if expected is None:
        check_full_rank(design)
    else:
        with pytest.raises(RankDeficientError, match="linear combination"):
            check_full_rank(design)
        with pytest.raises(RankDeficientError, match="'x2' is an exact linear combination"):
            mlteach.lmm("y ~ x + x2 + (1 | g)", data)


def test_statsmodels_mixedlm_agrees_on_random_slopes(sleep):
    """statsmodels MixedLM (REML, same model) agrees with us to its optimiser's precision.

    Differences from lme4/mlteach: statsmodels parameterises the covariance itself (cov_re in
    units of σ², reported scaled by `scale`), optimises with BFGS/LBFGS on a Cholesky factor and
    stops earlier, so agreement is to ~1e-5 relative, not 1e-8; its `llf` for REML fits is the
    restricted log-likelihood on the same scale as lme4's (no constant dropped).
    """
    import statsmodels.formula.api as smf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = smf.mixedlm("Reaction ~ Days", sleep, groups=sleep["Subject"],
                         re_formula="~Days").fit(reml=True)
    ours = mlteach.lmm("Reaction ~ Days + (Days | Subject)", sleep)
    np.testing.assert_allclose(ours.fixef, sm.fe_params, rtol=1e-5)
    np.testing.assert_allclose(ours.bse, sm.bse_fe, rtol=1e-4)
    np.testing.assert_allclose(ours.cov_re.to_numpy(), sm.cov_re.to_numpy(), rtol=1e-3)
    assert ours.loglik == pytest.approx(sm.llf, abs=1e-4)
    assert ours.loglik >= sm.llf - 1e-9


# --------------------------------------------------------------------------- result object


def test_result_is_frozen_and_complete(rs):
    with pytest.raises(Exception):
        rs.sigma = 1.0
    assert rs.group_names == ("Subject",)
    assert rs.re_terms == {"Subject": ["Intercept", "Days"]}
    assert rs.response == "Reaction"
    assert list(rs.ranef.columns) == ["Intercept", "Days"]
    assert rs.ranef.index[0] == "308" and all(isinstance(v, str) for v in rs.ranef.index)
    assert rs.ngroups == {"Subject": 18}
    assert rs.n_params == 6
    np.testing.assert_allclose(rs.fitted + rs.resid, mlteach.load("sleepstudy")["Reaction"])


def test_conf_int_is_wald(rs):
    ci = rs.conf_int(0.9)
    np.testing.assert_allclose(ci["upper"] - rs.fixef, 1.6448536269514722 * rs.bse)


def test_summary_labels_variances_and_sds(rs):
    text = str(rs.summary())
    assert "Variance" in text and "Std. deviation" in text and "corr with Intercept" in text
    assert "NaN" not in text  # no correlation for a term with itself or the residual: blank
    assert "Groups: Subject" in text and "REML" in text
    assert "<table" in rs._repr_html_()
    frame = rs.to_frame()
    assert {"estimate", "std.err", "t"} <= set(frame.columns)


def test_text_repr_is_the_summary(rs):
    """repr() (what a notebook shows as text/plain) is the summary, not a dump of every array."""
    crossed = mlteach.lmm("diameter ~ 1 + (1 | plate) + (1 | sample)",
                          mlteach.load("penicillin"))
    for r in (rs, crossed):
        text = repr(r)
        assert text == str(r) == str(r.summary())
        assert text.startswith("Linear mixed model")
        assert f"Formula                  {r.formula}" in text
        assert "array(" not in text and "LMMResult(" not in text and "Design(" not in text
        assert len(text.splitlines()) < 40
    assert "Groups: plate            24" in repr(crossed) and "sample" in repr(crossed)
    assert "Log-likelihood (REML)    -871.8141" in repr(rs)


def test_predict_new_group_gets_population_line(rs):
    new = pd.DataFrame({"Days": [0.0, 5.0, 5.0], "Subject": ["308", "308", "new subject"]})
    with pytest.warns(mlteach.errors.MlteachWarning, match=r"1 row of newdata has a level of "
                      r"'Subject' not seen in fitting \(e.g. new subject\)"):
        pred = rs.predict(new)
    b = rs.ranef.loc["308"]
    beta = rs.fixef
    assert pred.iloc[1] == pytest.approx(beta["Intercept"] + b["Intercept"]
                                         + 5 * (beta["Days"] + b["Days"]))
    assert pred.iloc[2] == pytest.approx(beta["Intercept"] + 5 * beta["Days"])
    np.testing.assert_allclose(rs.predict(), rs.fitted)
    np.testing.assert_allclose(rs.predict(include_random=False),
                               rs.fixef["Intercept"] + rs.fixef["Days"] * rs.design.X[:, 1])


def test_icc_for_random_intercepts_and_refusal_for_slopes(sleep, rs):
    ri = mlteach.lmm("Reaction ~ Days + (1 | Subject)", sleep)
    tau2 = ri.get_cov_re().iloc[0, 0]
    assert ri.icc() == pytest.approx(tau2 / (tau2 + ri.sigma ** 2))
    with pytest.raises(ValueError, match=r"random-intercept models only"):
        rs.icc()


def test_several_factors_give_dicts():
    r = mlteach.lmm("diameter ~ 1 + (1 | plate) + (1 | sample)", mlteach.load("penicillin"))
    assert set(r.ranef) == {"plate", "sample"} and set(r.cov_re) == {"plate", "sample"}
    assert r.ngroups == {"plate": 24, "sample": 6}
    shares = r.icc()
    assert set(shares.index) == {"plate", "sample"} and shares.sum() < 1
    with pytest.raises(ValueError, match=r"several grouping factors"):
        r.get_ranef()


def test_conditional_covariances_equal_the_dense_inverse():
    """The sparse path's per-level blocks σ² T_f (A⁻¹)_jj T_f' (Schur complement, never the
    full inverse) equal those of the dense inverse of A, for two crossed factors and a '||'
    term whose blocks share a factor; the result's frame holds the same numbers."""
    from mlteach.lmm.deviance import SparseDeviance, block_diag_T
    rng = np.random.default_rng(5)
    data = slope_data(5)
    data["h"] = pd.Categorical(rng.integers(0, 4, len(data)).astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        r = mlteach.lmm("y ~ x + (1 + x || g) + (1 | h)", data)
    dev = SparseDeviance(r.design.X, r.design.y, r.structure)
    theta = r.theta.to_numpy()
    s2 = r.sigma ** 2
    Ainv = np.linalg.inv(dev.A(theta).toarray())
    Ts = r.structure.factors_T(theta)
    positions = r.structure.factor_positions()
    got = dev.condcov_factors(theta, s2)
    for f, pos in positions.items():
        Tf = block_diag_T([T for T, b in zip(Ts, r.structure.blocks) if b.factor == f])
        want = np.stack([s2 * Tf @ Ainv[np.ix_(p, p)] @ Tf.T for p in pos])
        np.testing.assert_allclose(got[f], want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
        frame = r.get_condcov(f).to_numpy().reshape(want.shape)
        np.testing.assert_allclose(frame, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
    assert np.abs(got["g"][:, 0, 1]).max() > 0    # '||' blocks: conditionally correlated
