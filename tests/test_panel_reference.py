"""mlteach.panel against R's plm (stored JSON) and linearmodels, to 1e-8 relative.

References: tests/reference/plm_panel.json (plm_panel.R: Grunfeld, an unbalanced Grunfeld
subset with 16 rows per firm, Gasoline) and tests/reference/plm_extra.json (plm_extra.R: a
ragged Grunfeld panel whose firms have 12 to 18 rows with gaps, and first differences that skip
gaps). R names "(Intercept)" and "Between(x)"; ours are "Intercept" and "x_mean" /
contextual effects.
"""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlteach
from mlteach import panel as P
from mlteach.errors import DroppedTermWarning, HausmanWarning, MissingDataWarning

TOL = 1e-8
REF = Path(__file__).parent / "reference"
PLM = json.loads((REF / "plm_panel.json").read_text())["datasets"]
EXTRA = json.loads((REF / "plm_extra.json").read_text())["datasets"]


def _grunfeld_unbalanced():
    g = mlteach.load("grunfeld")
    return g[(g.firm * 7 + g.year) % 5 != 0].reset_index(drop=True)


def _grunfeld_ragged():
    g = mlteach.load("grunfeld")
    keep = (g.year <= 1954 - (3 * g.firm) % 7) & ((g.firm + g.year) % 9 != 0)
    return g[keep].reset_index(drop=True)


DATA = {
    "grunfeld": (lambda: mlteach.load("grunfeld"), "firm", "year"),
    "grunfeld_unbalanced": (_grunfeld_unbalanced, "firm", "year"),
    "gasoline": (lambda: mlteach.load("gasoline"), "country", "year"),
}
SETS = list(DATA)


def _name(r_name: str) -> str:
    return "Intercept" if r_name == "(Intercept)" else r_name


def close(ours, ref, rtol=TOL):
    """Compare a Series (ours, by our names) with a plm dict {R name: value}."""
    names = [_name(k) for k in ref]
    np.testing.assert_allclose(np.asarray(ours[names], dtype=float),
                               np.asarray(list(ref.values()), dtype=float), rtol=rtol, atol=0)


def close_vcov(ours, ref):
    names = [_name(k) for k in ref["names"]]
    np.testing.assert_allclose(ours.loc[names, names].to_numpy(), np.array(ref["matrix"]),
                               rtol=TOL, atol=0)


def setup(name):
    load, group, time = DATA[name]
    entry = PLM[name]
    return load(), group, time, entry["formula"], entry


def test_unbalanced_rule_matches_reference():
    data, *_ = setup("grunfeld_unbalanced")
    assert len(data) == PLM["grunfeld_unbalanced"]["nobs"] == 160
    assert len(_grunfeld_ragged()) == EXTRA["ragged"]["nobs"]


# ----------------------------------------------------------------------------------------------
# Estimators against plm
# ----------------------------------------------------------------------------------------------


def _check_fit(ours, ref, vcov=True):
    close(ours.params, ref["coefficients"])
    close(ours.bse, ref["se"])
    if vcov:
        close_vcov(ours.vcov, ref["vcov"])
    assert ours.df_resid == ref["df_residual"]
    np.testing.assert_allclose(ours.rsquared, ref["rsq"], rtol=TOL)
    np.testing.assert_allclose(ours.rsquared_adj, ref["adjrsq"], rtol=TOL)


@pytest.mark.parametrize("name", SETS)
def test_within(name):
    data, group, time, f, e = setup(name)
    ours = P.within(f, data, group=group)
    ref = e["models"]["within"]
    _check_fit(ours, ref)
    F = ours.wald()   # classical overall F equals plm's fstatistic
    np.testing.assert_allclose(F.statistic, ref["fstatistic"]["statistic"], rtol=TOL)
    assert [F.df, F.df_denom] == ref["fstatistic"]["df"]
    np.testing.assert_allclose(F.pvalue, ref["fstatistic"]["p_value"], rtol=1e-6)


@pytest.mark.parametrize("name", SETS)
def test_within_twoways(name):
    data, group, time, f, e = setup(name)
    ours = P.within(f, data, group=group, time=time, effects="twoways")
    _check_fit(ours, e["models"]["within_twoways"])


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("model", ["within", "within_twoways"])
def test_within_cluster_robust(name, model):
    """HC0 equals plm's vcovHC(arellano, HC0); our CR1 is plm's "sss" with K = k + 1."""
    data, group, time, f, e = setup(name)
    kw = dict(time=time, effects="twoways") if model == "within_twoways" else {}
    ref = e["models"][model]
    hc0 = P.within(f, data, group=group, cov="cluster", small_sample=False, **kw)
    close(hc0.bse, ref["vcovHC_arellano_HC0"]["se"])
    close_vcov(hc0.vcov, ref["vcovHC_arellano_HC0"]["vcov"])
    cr1 = P.within(f, data, group=group, cov="cluster", **kw)
    n, k, G = cr1.nobs, len(cr1.params), cr1.n_groups
    n_time = n - G - k - cr1.df_resid   # time effects absorbed (two-way), else 0
    # Stata's xtreg, fe counts the constant (and two-way the time dummies) in K; plm does not.
    stata_over_plm = (n - k) / (n - k - 1 - n_time)
    np.testing.assert_allclose(cr1.bse ** 2 / stata_over_plm,
                               pd.Series(ref["vcovHC_arellano_sss"]["se"]) ** 2, rtol=TOL)
    np.testing.assert_allclose(cr1.cov_factor, G / (G - 1) * (n - 1) / (n - k - 1 - n_time),
                               rtol=1e-15)
    assert cr1.df_inference == G - 1


@pytest.mark.parametrize("name", SETS)
def test_lsdv_group_effects_match_plm_fixef(name):
    data, group, time, f, e = setup(name)
    ours = P.lsdv(f, data, group=group)
    fx = e["models"]["within"]["fixef"]["individual"]["level"]
    np.testing.assert_allclose(ours.group_effects["estimate"].to_numpy(),
                               list(fx["values"].values()), rtol=TOL)
    np.testing.assert_allclose(ours.group_effects["std.err"].to_numpy(),
                               list(fx["se"].values()), rtol=TOL)
    assert list(ours.group_effects.index) == list(fx["values"].keys())
    _check_fit(ours, e["models"]["within"])


@pytest.mark.parametrize("name", SETS)
def test_between(name):
    data, group, time, f, e = setup(name)
    _check_fit(P.between(f, data, group=group), e["models"]["between"])


@pytest.mark.parametrize("name", ["grunfeld", "gasoline"])
def test_first_difference_balanced(name):
    data, group, time, f, e = setup(name)
    ref = e["models"]["fd"]
    _check_fit(P.first_difference(f, data, group=group, time=time), ref)
    hc0 = P.first_difference(f, data, group=group, time=time, cov="cluster", small_sample=False)
    close(hc0.bse, ref["vcovHC_arellano_HC0"]["se"])
    # For first differences Stata's regress D.y D.x, vce(cluster) and plm's "sss" agree:
    # K counts the intercept in both.
    cr1 = P.first_difference(f, data, group=group, time=time, cov="cluster")
    close(cr1.bse, ref["vcovHC_arellano_sss"]["se"])


def test_first_difference_unbalanced_gap_conventions():
    """plm's model='fd' differences across gaps; we skip them, as plm's diff() does.

    Renumbering the periods within each firm (so no gaps remain) reproduces plm's fd.
    """
    data, group, time, f, e = setup("grunfeld_unbalanced")
    with pytest.warns(MissingDataWarning, match=r"36 difference\(s\) in 10 group\(s\) would "
                                                r"span a gap in year"):
        ours = P.first_difference(f, data, group=group, time=time)
    ref = EXTRA["grunfeld_unbalanced"]["fd_skip_gaps"]
    close(ours.params, ref["coefficients"])
    close(ours.bse, ref["se"])
    assert ours.nobs == ref["nobs"] and ours.df_resid == ref["df_residual"]
    renumbered = data.assign(pos=data.groupby("firm")["year"].rank())
    plm_like = P.first_difference(f, renumbered, group=group, time="pos")
    _check_fit(plm_like, e["models"]["fd"])


@pytest.mark.parametrize("name", SETS)
def test_swamy_arora(name):
    data, group, time, f, e = setup(name)
    ours = P.swamy_arora(f, data, group=group)
    ref = e["models"]["random_swar"]
    _check_fit(ours, ref)
    np.testing.assert_allclose(ours.sigma2_e, ref["ercomp"]["sigma2"]["idios"], rtol=TOL)
    np.testing.assert_allclose(ours.sigma2_u, ref["ercomp"]["sigma2"]["id"], rtol=TOL)
    th = ref["ercomp"]["theta"]
    if th["balanced"]:
        assert isinstance(ours.theta, float)
        np.testing.assert_allclose(ours.theta, th["theta"], rtol=TOL)
    else:   # plm calls it unbalanced, but every firm keeps 16 rows: θ is one number
        np.testing.assert_allclose(ours.theta_by_group.to_numpy(),
                                   list(th["theta"].values()), rtol=TOL)
    hc0 = P.swamy_arora(f, data, group=group, cov="cluster", small_sample=False)
    close(hc0.bse, ref["vcovHC_arellano_HC0"]["se"])


@pytest.mark.parametrize("name", SETS)
def test_pooled_is_gls_with_theta_zero(name):
    data, group, time, f, e = setup(name)
    _check_fit(P.quasi_demeaned_gls(f, data, group=group, theta=0.0), e["models"]["pooling"])


@pytest.mark.parametrize("name", SETS)
def test_hausman_and_mundlak_tests(name):
    data, group, time, f, e = setup(name)
    fe, re = P.within(f, data, group=group), P.swamy_arora(f, data, group=group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HausmanWarning)   # gasoline: see test_panel_errors
        h = P.hausman(fe, re)
    ref = e["hausman"]["classic"]
    np.testing.assert_allclose(h.statistic, ref["statistic"], rtol=TOL)
    assert h.df == ref["df"]
    np.testing.assert_allclose(h.pvalue, ref["p_value"], rtol=1e-6)
    for cov, key in (("cluster", "aux_arellano_HC0"), ("classical", "aux_classical")):
        m = P.mundlak_test(f, data, group=group, cov=cov, small_sample=False)
        np.testing.assert_allclose(m.statistic, e["hausman"][key]["statistic"], rtol=TOL)
        assert m.df == e["hausman"][key]["df"]
        np.testing.assert_allclose(m.pvalue, e["hausman"][key]["p_value"], rtol=1e-6)


@pytest.mark.parametrize("name", SETS)
def test_rewb_matches_plm_mundlak(name):
    """y ~ x_within + x_mean is plm's y ~ x + Between(x) reparametrised: the within effect is
    plm's x coefficient, the contextual effect (between − within) its Between(x) coefficient,
    and their SEs agree because the two regressions have the same fit."""
    data, group, time, f, e = setup(name)
    ours = P.rewb(f, data, group=group)
    ref = e["mundlak"] if e["mundlak"]["available"] else e["mundlak_fixed_theta"]
    xs = [k for k in ref["coefficients"] if k != "(Intercept)" and not k.startswith("Between(")]
    for x in xs:
        for table, key in ((ours.within_effects, x), (ours.contextual_effects, f"Between({x})")):
            np.testing.assert_allclose(table.loc[x, "estimate"], ref["coefficients"][key],
                                       rtol=TOL)
            np.testing.assert_allclose(table.loc[x, "std.err"], ref["se"][key], rtol=TOL)
    np.testing.assert_allclose(ours.params["Intercept"], ref["coefficients"]["(Intercept)"],
                               rtol=TOL)
    close(ours.within_effects["estimate"], e["models"]["within"]["coefficients"])


# ----------------------------------------------------------------------------------------------
# A ragged panel: group sizes differ, gaps inside the series (plm_extra.json)
# ----------------------------------------------------------------------------------------------

F = "inv ~ value + capital"


def test_ragged_panel_matches_plm():
    data, e = _grunfeld_ragged(), EXTRA["ragged"]["models"]
    assert sorted(data.groupby("firm").size().unique()) == [12, 13, 14, 15, 16, 17, 18]
    for fit, key in ((P.within(F, data, group="firm"), "within"),
                     (P.within(F, data, group="firm", time="year", effects="twoways"),
                      "within_twoways"),
                     (P.swamy_arora(F, data, group="firm"), "random_swar")):
        close(fit.params, e[key]["coefficients"])
        close_vcov(fit.vcov, e[key]["vcov"])
        assert fit.df_resid == e[key]["df_residual"]
        np.testing.assert_allclose(fit.rsquared, e[key]["rsq"], rtol=TOL)
    be = P.between(F, data, group="firm")
    close(be.params, e["between"]["coefficients"])
    close(be.bse, e["between"]["se"])
    re = P.swamy_arora(F, data, group="firm")
    np.testing.assert_allclose([re.sigma2_e, re.sigma2_u],
                               [e["random_swar"]["sigma2"]["idios"],
                                e["random_swar"]["sigma2"]["id"]], rtol=TOL)
    assert isinstance(re.theta, pd.Series)
    np.testing.assert_allclose(re.theta.to_numpy(), list(e["random_swar"]["theta"].values()),
                               rtol=TOL)
    for cov_fit, key in ((P.within(F, data, group="firm", cov="cluster", small_sample=False),
                          "within"),
                         (P.swamy_arora(F, data, group="firm", cov="cluster",
                                        small_sample=False), "random_swar")):
        close(cov_fit.bse, e[key]["se_arellano_HC0"])
    with pytest.warns(MissingDataWarning, match="would span a gap"):
        fd = P.first_difference(F, data, group="firm", time="year")
    close(fd.params, e["fd_skip_gaps"]["coefficients"])
    close(fd.bse, e["fd_skip_gaps"]["se"])
    with pytest.warns(MissingDataWarning, match="would span a gap"):
        fd_hc0 = P.first_difference(F, data, group="firm", time="year", cov="cluster",
                                    small_sample=False)
    close(fd_hc0.bse, e["fd_skip_gaps"]["se_arellano_HC0"])
    h = P.hausman(P.within(F, data, group="firm"), re)
    np.testing.assert_allclose(h.statistic, EXTRA["ragged"]["hausman"]["classic"]["statistic"],
                               rtol=TOL)


def test_ragged_mundlak_test_differs_from_plm_only_by_the_intercept():
    """plm's aux regression uses a constant 1 where GLS has 1 − θ_i (see mundlak_test Notes).

    Rebuilding plm's regression from our θ reproduces its statistic to 1e-8, so the 12%
    difference of our statistic is that convention and nothing else.
    """
    data = _grunfeld_ragged()
    ref = EXTRA["ragged"]["hausman"]["aux_arellano_HC0"]["statistic"]
    ours = P.mundlak_test(F, data, group="firm", small_sample=False).statistic
    assert abs(ours / ref - 1) > 0.05
    re = P.swamy_arora(F, data, group="firm")
    groups = mlteach.design.GroupIndex.from_data(data, "firm")
    th = re.theta_by_group.to_numpy()[groups.codes]
    X, y = data[["value", "capital"]].to_numpy(float), data["inv"].to_numpy(float)
    Xs = X - th[:, None] * groups.expand(groups.mean(X))
    ys = y - th * groups.expand(groups.mean(y))
    A = np.column_stack([np.ones(len(y)), Xs, groups.demean(X)])
    b = np.linalg.lstsq(A, ys, rcond=None)[0]
    scores = groups.sum(A * (ys - A @ b)[:, None])
    Ai = np.linalg.inv(A.T @ A)
    V = Ai @ scores.T @ scores @ Ai
    np.testing.assert_allclose(b[3:] @ np.linalg.solve(V[3:, 3:], b[3:]), ref, rtol=TOL)


# ----------------------------------------------------------------------------------------------
# linearmodels, where its definitions agree with ours
# ----------------------------------------------------------------------------------------------

lm = pytest.importorskip("linearmodels")

LM_SETS = {"grunfeld": lambda: mlteach.load("grunfeld"), "ragged": _grunfeld_ragged}


@pytest.mark.parametrize("name", list(LM_SETS))
def test_linearmodels_cross_checks(name):
    data = LM_SETS[name]()
    p = data.set_index(["firm", "year"])
    X, y = p[["value", "capital"]], p["inv"]
    Xc = X.assign(const=1.0)[["const", "value", "capital"]]

    def same(ours, theirs_params, theirs_se, rtol=TOL):
        np.testing.assert_allclose(ours.params.to_numpy(), theirs_params.to_numpy(), rtol=rtol)
        np.testing.assert_allclose(ours.bse.to_numpy(), theirs_se.to_numpy(), rtol=rtol)

    # debiased=True divides by n − G − k as we (and plm) do; its default divides by n − G.
    r = lm.PanelOLS(y, X, entity_effects=True).fit(debiased=True)
    same(P.within(F, data, group="firm"), r.params, r.std_errors)
    r = lm.PanelOLS(y, X, entity_effects=True, time_effects=True).fit(debiased=True)
    same(P.within(F, data, group="firm", time="year", effects="twoways"), r.params, r.std_errors)
    r = lm.PanelOLS(y, X, entity_effects=True).fit(cov_type="robust", debiased=True)
    same(P.within(F, data, group="firm", cov="robust"), r.params, r.std_errors)
    # linearmodels' clustered covariance with debiased and group_debias is plm's "sss"
    # (K = k); ours is Stata's (K = k + 1).
    ours = P.within(F, data, group="firm", cov="cluster")
    r = lm.PanelOLS(y, X, entity_effects=True).fit(cov_type="clustered", cluster_entity=True,
                                                   debiased=True, group_debias=True)
    n, k = ours.nobs, 2
    np.testing.assert_allclose(ours.bse ** 2 * (n - k - 1) / (n - k), r.std_errors ** 2,
                               rtol=TOL)
    # Random effects: small_sample=True is the Swamy–Arora/Baltagi–Chang estimator (needed
    # only when group sizes differ); debiased=True divides by n − p as plm.
    r = lm.RandomEffects(y, Xc).fit(debiased=True, small_sample=True)
    re = P.swamy_arora(F, data, group="firm")
    same(re, r.params, r.std_errors)
    np.testing.assert_allclose(re.sigma2_u, r.variance_decomposition["Effects"], rtol=TOL)
    # Between: unweighted group means in both.
    r = lm.BetweenOLS(y, Xc).fit(debiased=True)
    same(P.between(F, data, group="firm"), r.params, r.std_errors)
    # First differences: linearmodels refuses a constant and skips gaps, as we do.
    r = lm.FirstDifferenceOLS(y, X).fit(debiased=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        fd = P.first_difference("inv ~ 0 + value + capital", data, group="firm", time="year")
    same(fd, r.params, r.std_errors)
    assert fd.nobs == r.nobs


# ----------------------------------------------------------------------------------------------
# linearmodels' wage_panel against plm (plm_more.json): balanced and unbalanced with gaps,
# time-invariant regressors, year dummies, cluster-robust vcovHC, Hausman with more regressors
# ----------------------------------------------------------------------------------------------

MORE = json.loads((REF / "plm_more.json").read_text())["datasets"]


def _wage():
    from linearmodels.datasets import wage_panel
    return wage_panel.load()


def _wage_unbalanced():
    w = _wage()
    keep = (w.year <= 1987 - w.nr % 3) & ((w.nr + 3 * w.year) % 7 != 0)
    return w[keep].reset_index(drop=True)


def _more_name(r_name: str) -> str:
    """plm's 'factor(year)1981' is formulaic's 'C(year)[T.1981]'."""
    m = re.fullmatch(r"factor\((\w+)\)(.+)", r_name)
    return f"C({m.group(1)})[T.{m.group(2)}]" if m else _name(r_name)


def _more_vec(ours, ref):
    names = [_more_name(k) for k in ref]
    return np.asarray(ours[names], dtype=float), np.asarray(list(ref.values()), dtype=float)


def _more_close(ours, ref, rtol=TOL):
    np.testing.assert_allclose(*_more_vec(ours, ref), rtol=rtol, atol=0)


def _more_close_vcov(ours, ref, rtol=TOL):
    names = [_more_name(k) for k in ref["names"]]
    np.testing.assert_allclose(ours.loc[names, names].to_numpy(), np.array(ref["matrix"]),
                               rtol=rtol, atol=0)


def _more_setup(name):
    entry = MORE[name]
    data = _wage() if entry["nobs"] == 4360 else _wage_unbalanced()
    formula = re.sub(r"factor\((\w+)\)", r"C(\1)", entry["formula"])
    return data, formula, entry


def _more_fit(model, formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedTermWarning)
        if model == "pooling":
            return P.quasi_demeaned_gls(formula, data, group="nr", theta=0.0, **kw)
        if model == "within":
            return P.within(formula, data, group="nr", **kw)
        if model == "within_twoways":
            return P.within(formula, data, group="nr", time="year", effects="twoways", **kw)
        if model == "between":
            return P.between(formula, data, group="nr", **kw)
        if model == "fd":   # plm's model = "fd" differences across gaps: renumber the periods
            pos = data.assign(pos=data.groupby("nr")["year"].rank())
            return P.first_difference(formula, pos, group="nr", time="pos", **kw)
        return P.swamy_arora(formula, data, group="nr", **kw)


MORE_FITS = [(d, m) for d in MORE for m in MORE[d]["models"]]


def test_wage_panel_rows_match_reference():
    for name in ("wage", "wage_unbalanced"):
        data, _, entry = _more_setup(name)
        assert len(data) == entry["nobs"]
        assert data["lwage"].sum() == pytest.approx(entry["lwage_sum"], rel=1e-14)
    sizes = _wage_unbalanced().groupby("nr").size()
    assert sorted(sizes.unique()) == [5, 6, 7]   # unequal T_i, and gaps inside the series


@pytest.mark.parametrize("name, model", MORE_FITS)
def test_wage_panel_matches_plm(name, model):
    data, formula, entry = _more_setup(name)
    ref = entry["models"][model]
    ours = _more_fit(model, formula, data)
    assert sorted(ours.params.index) == sorted(_more_name(k) for k in ref["coefficients"])
    _more_close(ours.params, ref["coefficients"])
    _more_close(ours.bse, ref["se"])
    _more_close_vcov(ours.vcov, ref["vcov"])
    assert ours.df_resid == ref["df_residual"]
    np.testing.assert_allclose(ours.rsquared, ref["rsq"], rtol=TOL)
    np.testing.assert_allclose(ours.rsquared_adj, ref["adjrsq"], rtol=TOL)
    if model == "random_swar":
        np.testing.assert_allclose([ours.sigma2_e, ours.sigma2_u],
                                   [ref["sigma2"]["idios"], ref["sigma2"]["id"]], rtol=TOL)
        th = ref["theta"]
        if isinstance(th, dict):
            np.testing.assert_allclose(ours.theta_by_group[list(th)].to_numpy(),
                                       list(th.values()), rtol=TOL)
        else:
            np.testing.assert_allclose(ours.theta, th, rtol=TOL)
    if model == "between":
        return
    # cluster-robust: HC0 is plm's vcovHC(arellano, HC0); plm's "sss" is
    # G/(G − 1)·(n − 1)/(n − K) with K = the coefficients plm estimates, ours counts the
    # absorbed constant (and time effects) too in within models
    hc0 = _more_fit(model, formula, data, cov="cluster", small_sample=False)
    _more_close(hc0.bse, ref["vcovHC_arellano_HC0"]["se"])
    _more_close_vcov(hc0.vcov, ref["vcovHC_arellano_HC0"]["vcov"])
    n, k, G = hc0.nobs, len(hc0.params), hc0.ngroups
    sss = G / (G - 1) * (n - 1) / (n - k)
    ours_sss, theirs = _more_vec(hc0.bse ** 2 * sss, ref["vcovHC_arellano_sss"]["se"])
    np.testing.assert_allclose(np.sqrt(ours_sss), theirs, rtol=TOL)
    hc1 = _more_vec(hc0.bse ** 2, ref["vcovHC_arellano_HC1"]["se"])
    if model != "fd":   # plm's HC1 for fd uses another n; HC1 = n/(n − K) otherwise
        np.testing.assert_allclose(np.sqrt(hc1[0] * n / (n - k)), hc1[1], rtol=TOL)
    cr1 = _more_fit(model, formula, data, cov="cluster")
    K = k
    if model.startswith("within"):   # + the constant and, two-way, the T − 1 time effects
        K += 1 + (n - G - k - cr1.df_resid)
    np.testing.assert_allclose(cr1.cov_factor, G / (G - 1) * (n - 1) / (n - K), rtol=1e-13)


@pytest.mark.parametrize("name", ["wage_time_invariant", "wage_unbalanced_time_invariant"])
def test_wage_time_invariant_regressors_dropped_as_plm(name):
    """plm drops educ and black from the within model silently; we drop them with a warning."""
    data, formula, entry = _more_setup(name)
    with pytest.warns(DroppedTermWarning, match=r"'educ', 'black'.*time-invariant"):
        ours = P.within(formula, data, group="nr")
    assert ours.dropped == ("educ", "black")
    _more_close(ours.params, entry["models"]["within"]["coefficients"])


def test_wage_first_differences_skipping_gaps():
    data, formula, entry = _more_setup("wage_unbalanced")
    ref = entry["fd_skip_gaps"]
    with pytest.warns(MissingDataWarning, match="would span a gap"):
        ours = P.first_difference(formula, data, group="nr", time="year")
    _more_close(ours.params, ref["coefficients"])
    _more_close(ours.bse, ref["se"])
    assert ours.nobs == ref["nobs"] and ours.df_resid == ref["df_residual"]
    with pytest.warns(MissingDataWarning):
        hc0 = P.first_difference(formula, data, group="nr", time="year", cov="cluster",
                                 small_sample=False)
    _more_close(hc0.bse, ref["se_arellano_HC0"])


MORE_HAUSMAN = [d for d in MORE if "hausman" in MORE[d]]


@pytest.mark.parametrize("name", MORE_HAUSMAN)
def test_wage_hausman_matches_phtest(name):
    data, formula, entry = _more_setup(name)
    ref = entry["hausman"]["classic"]
    fe, re_ = _more_fit("within", formula, data), _more_fit("random_swar", formula, data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HausmanWarning)
        h = P.hausman(fe, re_)
    np.testing.assert_allclose(h.statistic, ref["statistic"], rtol=TOL)
    assert h.df == ref["df"]
    np.testing.assert_allclose(h.pvalue, ref["p_value"], rtol=1e-6)
    if name == "wage_more":
        # V_FE − V_RE has a negative eigenvalue and the quadratic form is −40.3: plm's phtest
        # reports its absolute value, and so do we, with the warning
        assert any("quadratic form is negative" in str(w.message) for w in caught)


@pytest.mark.parametrize("name", MORE_HAUSMAN)
def test_wage_mundlak_matches_phtest_aux(name):
    """Balanced panels: equal to phtest(method = "aux"), classical and arellano HC0.

    With a time-invariant regressor (educ, black, hisp) plm 2.6-2 takes the tested
    coefficients by position and tests the wrong ones (educ, black, ...); plm_more.R repeats
    its auxiliary regression and tests the within-demeaned terms by name (`*_tilde`), which is
    what we reproduce. Unbalanced panels differ by the intercept convention described in
    `mundlak_test` (plm's constant 1 where GLS has 1 − θ_i): within 15% here.
    """
    data, formula, entry = _more_setup(name)
    h = entry["hausman"]
    balanced = entry["nobs"] == 4360
    for cov, key in (("cluster", "aux_arellano_HC0"), ("classical", "aux_classical")):
        ref = h[key + "_tilde"] if h["aux_positional_mismatch"] else h[key]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DroppedTermWarning)
            m = P.mundlak_test(formula, data, group="nr", cov=cov, small_sample=False)
        assert m.df == ref["df"]
        if balanced:
            np.testing.assert_allclose(m.statistic, ref["statistic"], rtol=TOL)
            np.testing.assert_allclose(m.pvalue, ref["p_value"], rtol=1e-6)
        else:
            assert m.statistic == pytest.approx(ref["statistic"], rel=0.15)
    if h["aux_positional_mismatch"]:   # plm's own number is far off
        assert abs(h["aux_classical"]["statistic"] / h["aux_classical_tilde"]["statistic"] - 1) \
            > 0.05
