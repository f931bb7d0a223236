"""Result objects of mlteach.panel: printing, HTML, tables, intervals, immutability, compare()."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlteach
from mlteach import panel as P

F = "inv ~ value + capital"


@pytest.fixture(scope="module")
def fits():
    g = mlteach.load("grunfeld")
    return {
        "ols": mlteach.ols(F, g),
        "between": P.between(F, g, group="firm"),
        "within": P.within(F, g, group="firm"),
        "re": P.swamy_arora(F, g, group="firm"),
        "rewb": P.rewb(F, g, group="firm"),
        "cluster": P.within(F, g, group="firm", cov="cluster"),
    }


def test_summary_text_and_html(fits):
    text = str(fits["within"])
    for part in ("Fixed effects (within)", "Absorbed effects", "10 firm means",
                 "R-squared (within)", "Residual df", "188", "value", "capital"):
        assert part in text
    html = fits["re"]._repr_html_()
    assert "<table" in html and "sigma2_u (group effects)" in html and "theta" in html
    assert "cluster-robust by firm (10 clusters; CR1, t(9))" in str(fits["cluster"])
    rewb = str(fits["rewb"])
    assert "Contextual effects (between − within)" in rewb and "value_within" in rewb


def test_to_frame_and_conf_int_use_the_inference_df(fits):
    w, c = fits["within"], fits["cluster"]
    tab = w.to_frame()
    assert list(tab.columns[:4]) == ["estimate", "std.err", "t", "P>|t|"]
    q = stats.t.ppf(0.975, 188)
    np.testing.assert_allclose(w.conf_int()["lower"], w.params - q * w.bse, rtol=1e-12)
    np.testing.assert_allclose(c.conf_int(0.9)["upper"],
                               c.params + stats.t.ppf(0.95, 9) * c.bse, rtol=1e-12)
    np.testing.assert_allclose(w.pvalues, 2 * stats.t.sf(np.abs(w.tvalues), 188), rtol=1e-12)
    hc0 = P.within(F, mlteach.load("grunfeld"), group="firm", cov="cluster", small_sample=False)
    assert hc0.df_inference is None and "z" in hc0.to_frame().columns


def test_results_are_frozen(fits):
    with pytest.raises(dataclasses.FrozenInstanceError):
        fits["within"].params = None


def test_test_objects_print_h0_statistic_df_distribution_pvalue(fits):
    h = P.hausman(fits["within"], fits["re"])
    text = str(h)
    assert text.startswith("Hausman test (fixed vs random effects)\nH0: the group effects are "
                           "uncorrelated")
    assert "~ chi2(2) under H0 (df = 2)" in text and "p-value = 0.3119" in text
    facts = dict(h.summary().facts)
    assert facts["df"] == 2 and facts["Distribution under H0"] == "chi2(2)"
    assert "<table" in h._repr_html_() and "difference" in h._repr_html_()
    m = P.mundlak_test(F, mlteach.load("grunfeld"), group="firm")
    assert "Mundlak" in str(m) and "value_mean" in m._repr_html_() and m.df == 2
    w = fits["within"].wald(["value"])
    np.testing.assert_allclose(w.statistic, fits["within"].tvalues["value"] ** 2, rtol=1e-12)
    assert w.distribution == "F(1, 188)"


def test_compare_side_by_side(fits):
    cmp = P.compare(fits["ols"], fits["between"], fits["within"], fits["re"], fits["rewb"])
    assert list(cmp.params.columns) == ["Pooled", "Between", "Within", "RE (Swamy–Arora)",
                                        "REWB"]
    assert list(cmp.params.index[:3]) == ["Intercept", "value", "capital"]
    np.testing.assert_allclose(cmp.params.loc["value", "Within"],
                               fits["within"].params["value"])
    assert np.isnan(cmp.params.loc["Intercept", "Within"])
    table = cmp.to_frame()
    assert table.loc["value", "Within"] == "0.1101"
    assert "(0.0119)" in table["Within"].tolist()
    assert table.loc["Groups", "Pooled"] == "" and table.loc["Groups", "Between"] == "10"
    assert table.loc["Observations", "Between"] == "200"
    assert "<table" in cmp._repr_html_() and "standard errors in parentheses" in str(cmp)
    same_kind = P.compare(fits["within"], fits["cluster"], fits["re"])
    assert list(same_kind.params.columns) == ["Within 1", "Within 2", "RE (Swamy–Arora)"]
    named = P.compare(fits["within"], fits["re"], names=["FE", "RE"])
    assert list(named.bse.columns) == ["FE", "RE"]


def test_compare_prints_full_estimator_names_above_a_narrow_table(fits):
    """The long estimator names form a legend; the table's columns are the short names."""
    text = str(P.compare(fits["ols"], fits["within"], fits["rewb"]))
    lines = text.splitlines()
    assert lines[2].split() == ["Pooled", "Pooled", "OLS"]
    assert "REWB    Within-between random effects (REWB, Swamy–Arora GLS)" in text
    table = text[text.index("Coefficients"):]
    assert "Within-between random effects" not in table and "Estimator" not in table
    assert max(len(line) for line in table.splitlines()[:-2]) < 60


def test_compare_accepts_lmm_and_ols_results(fits):
    g = mlteach.load("grunfeld")
    mixed = mlteach.lmm(F + " + (1 | firm)", g)
    cmp = P.compare(fits["ols"], fits["re"], mixed)
    assert list(cmp.params.columns) == ["Pooled", "RE (Swamy–Arora)", "LMM"]
    np.testing.assert_array_equal(cmp.params["LMM"].to_numpy(), mixed.fixef.to_numpy())
    np.testing.assert_array_equal(cmp.bse["LMM"].to_numpy(), mixed.bse.to_numpy())
    np.testing.assert_array_equal(cmp.params["Pooled"].to_numpy(),
                                  fits["ols"].params.to_numpy())
    assert cmp.stats.loc["Groups", "LMM"] == 10
    assert cmp.stats.loc["Estimator", "LMM"] == "Linear mixed model (REML)"
    assert cmp.stats.loc["Standard errors", "LMM"] == "model-based"
    assert list(P.compare(mixed, mixed).params.columns) == ["LMM 1", "LMM 2"]


def test_compare_html_is_narrow_enough_for_a_phone():
    """Estimate and SE share a cell, long term names get break points, the table may scroll.

    Measured: the longest run of text that a browser cannot break inside a table cell.
    """
    import re
    g = mlteach.load("grunfeld").rename(columns={"value": "market_value_of_the_firm"})
    f = "inv ~ market_value_of_the_firm * capital"
    cmp = P.compare(P.within(f, g, group="firm"), P.swamy_arora(f, g, group="firm"),
                    P.rewb(f, g, group="firm"))
    page = cmp._repr_html_()
    assert "overflow-x:auto" in page and "overflow-wrap:anywhere" in page
    assert "market_<wbr>value_<wbr>of_<wbr>the_<wbr>firm:<wbr>capital" in page
    assert re.search(r"\d\.\d{4}<br>\(\d+\.\d{4}\)", page)
    table = page[page.index("<table"):page.index("</table>")]
    text = re.sub(r"<wbr>|<br>", " ", table)
    text = re.sub(r"<[^>]+>", " ", text)
    assert max(len(tok) for tok in text.split()) <= 16
    assert "Within-between random effects" not in table   # full names are below the table


def test_lsdv_result_has_group_effects():
    g = mlteach.load("grunfeld")
    d = P.lsdv(F, g, group="firm", time="year", effects="twoways")
    assert d.group_effects.shape == (10, 2) and d.time_effects.shape == (19, 2)
    assert list(d.time_effects.index[:2]) == [1936, 1937]
    assert list(d.params.index) == ["value", "capital"]


# ----------------------------------------------------------------------------------------------
# Prediction, against hand computations on Grunfeld (balanced: 10 firms × 20 years)
# ----------------------------------------------------------------------------------------------


def _xb(fit, data, terms=("value", "capital")):
    return data[list(terms)].to_numpy() @ fit.params[list(terms)].to_numpy()


def test_within_and_lsdv_predict_with_the_group_intercepts(grunfeld):
    g = grunfeld
    w, d = P.within(F, g, group="firm"), P.lsdv(F, g, group="firm")
    means = g.groupby("firm")[["inv", "value", "capital"]].mean()
    alpha = means["inv"] - means[["value", "capital"]].to_numpy() @ w.params.to_numpy()
    by_hand = alpha.loc[g["firm"]].to_numpy() + _xb(w, g)
    np.testing.assert_allclose(w.predict(), by_hand, rtol=1e-12)
    np.testing.assert_allclose(w.predict(), g["inv"] - w.resid, rtol=1e-12)
    new = g.sample(15, random_state=1)                   # any rows, any order, own index
    pred = w.predict(new)
    assert pred.name == "predicted" and pred.index.equals(new.index)
    np.testing.assert_allclose(pred, alpha.loc[new["firm"]].to_numpy() + _xb(w, new), rtol=1e-12)
    np.testing.assert_allclose(d.predict(new), pred, rtol=1e-10)
    np.testing.assert_allclose(w.predict(new, include_random=False), _xb(w, new), rtol=1e-12)
    unseen = new.assign(firm=new["firm"] + 100)          # the slope part needs no group
    np.testing.assert_allclose(w.predict(unseen, include_random=False), _xb(w, new))


def test_twoway_fixed_effects_predict_with_group_and_time_effects(grunfeld):
    g = grunfeld
    kw = dict(group="firm", time="year", effects="twoways")
    w, d = P.within(F, g, **kw), P.lsdv(F, g, **kw)
    # LSDV's printed α_i (first year) and γ_t (relative to 1935) by hand
    gamma = pd.concat([pd.Series({1935: 0.0}), d.time_effects["estimate"]])
    by_hand = (d.group_effects["estimate"].loc[g["firm"].astype(str)].to_numpy()
               + gamma.loc[g["year"]].to_numpy() + _xb(d, g))
    np.testing.assert_allclose(w.predict(), g["inv"] - w.resid, rtol=1e-10)
    np.testing.assert_allclose(w.predict(g), by_hand, rtol=1e-9)
    np.testing.assert_allclose(d.predict(g), by_hand, rtol=1e-12)


def test_random_effects_predict_population_line_and_blup(grunfeld):
    g = grunfeld
    re = P.swamy_arora(F, g, group="firm")
    line = re.params["Intercept"] + _xb(re, g)
    e_bar = (g["inv"] - line).groupby(g["firm"]).mean()
    T = 20
    lam = T * re.sigma2_u / (T * re.sigma2_u + re.sigma2_e)
    np.testing.assert_allclose(lam, 1 - (1 - re.theta) ** 2, rtol=1e-12)
    u_hat = lam * e_bar
    np.testing.assert_allclose(re.predict(include_random=False), line, rtol=1e-12)
    np.testing.assert_allclose(re.predict(), line + u_hat.loc[g["firm"]].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(re.predict(g, include_random=True), re.predict(), rtol=1e-12)
    # a firm not seen in fitting gets û = 0: the population line
    new = g.head(3).assign(firm=99)
    np.testing.assert_allclose(re.predict(new), line[:3], rtol=1e-12)
    # θ = 1 makes the group effects the fixed-effects intercepts
    gls1 = P.quasi_demeaned_gls(F, g, group="firm", theta=1.0)
    np.testing.assert_allclose(gls1.predict(g), P.within(F, g, group="firm").predict(g),
                               rtol=1e-10)


def test_rewb_predict_uses_the_fitted_group_means(grunfeld):
    g = grunfeld
    r = P.rewb(F, g, group="firm")
    xbar = g.groupby("firm")[["value", "capital"]].transform("mean")
    b = r.params
    line = (b["Intercept"] + b["value_within"] * (g["value"] - xbar["value"])
            + b["value_mean"] * xbar["value"] + b["capital_within"] * (g["capital"] - xbar["capital"])
            + b["capital_mean"] * xbar["capital"])
    lam = 1 - (1 - r.theta) ** 2
    u_hat = lam * (g["inv"] - line).groupby(g["firm"]).mean()
    np.testing.assert_allclose(r.predict(include_random=False), line, rtol=1e-12)
    np.testing.assert_allclose(r.predict(g), line + u_hat.loc[g["firm"]].to_numpy(), rtol=1e-12)
    # a row of a seen firm keeps that firm's means, whatever other rows newdata has
    one = g.iloc[[45]]
    np.testing.assert_allclose(r.predict(one), r.predict().iloc[[45]], rtol=1e-12)
    # a new firm's means come from its own rows in newdata
    new = g[g.firm == 3].head(2).assign(firm=99)
    m = new[["value", "capital"]].mean()
    expect = (b["Intercept"] + b["value_within"] * (new["value"] - m["value"])
              + b["value_mean"] * m["value"] + b["capital_within"] * (new["capital"] - m["capital"])
              + b["capital_mean"] * m["capital"])
    np.testing.assert_allclose(r.predict(new), expect, rtol=1e-12)


def test_between_predicts_group_means_and_fd_predicts_changes(grunfeld):
    g = grunfeld
    b = P.between(F, g, group="firm")
    means = g.groupby("firm")[["inv", "value", "capital"]].mean()
    fitted = b.params["Intercept"] + _xb(b, means)
    np.testing.assert_allclose(b.predict(), fitted, rtol=1e-12)
    np.testing.assert_allclose(b.predict(), means["inv"].to_numpy() - b.resid, rtol=1e-12)
    assert list(b.predict().index) == [str(i) for i in range(1, 11)]
    np.testing.assert_allclose(b.predict(g.head(4)), b.params["Intercept"] + _xb(b, g.head(4)))
    fd = P.first_difference(F, g, group="firm", time="year")
    diffs = g.sort_values(["firm", "year"]).groupby("firm")[["inv", "value", "capital"]].diff()
    diffs = diffs.dropna()
    by_hand = pd.Series(fd.params["Intercept"] + _xb(fd, diffs), index=diffs.index)
    pred = fd.predict()                                  # indexed by the later row
    assert pred.index.equals(fd.resid.index) and len(pred) == 190
    np.testing.assert_allclose(pred, by_hand.loc[pred.index], rtol=1e-10)
    np.testing.assert_allclose(pred, diffs.loc[pred.index, "inv"] - fd.resid, rtol=1e-10)


# ----------------------------------------------------------------------------------------------
# Swamy–Arora σ²_u before truncation; Mundlak test's note; plain-text repr
# ----------------------------------------------------------------------------------------------


def test_sigma2_u_raw_shows_a_negative_estimate(grunfeld):
    """Equal firm means of inv: the between regression fits exactly (SSR_B = 0), so the
    balanced-panel formula SSR_B/(G − K_B) − σ²_e/T gives σ̂²_u = −σ̂²_e/T exactly."""
    g = grunfeld
    flat = g.assign(inv=g["inv"] - g.groupby("firm")["inv"].transform("mean") + g["inv"].mean())
    with pytest.warns(mlteach.errors.BoundaryFitWarning, match="below zero"):
        re = P.swamy_arora(F, flat, group="firm")
    np.testing.assert_allclose(re.sigma2_u_raw, -re.sigma2_e / 20, rtol=1e-9)
    assert re.sigma2_u == 0 and re.theta == 0
    text = str(re)
    assert "sigma2_u before truncation at 0" in text
    assert f"{re.sigma2_u_raw:.4g}" in text
    ok = P.swamy_arora(F, g, group="firm")
    assert ok.sigma2_u_raw == ok.sigma2_u > 0
    assert "before truncation" not in str(ok)


def test_mundlak_note_names_the_covariance_and_the_chi2_wald_test(grunfeld):
    m = P.mundlak_test(F, grunfeld, group="firm")
    text = str(m)
    assert m.distribution == "chi2(2)"
    assert ("Note: Wald χ² test: W = γ̂'V̂⁻¹γ̂ is compared with chi2(2) (2 df, one per group "
            "mean tested); V̂, the covariance of γ̂, is cluster-robust by firm (CR1: with the "
            "small-sample factor G/(G − 1)·(n − 1)/(n − p); G = 10 clusters).") in text
    assert "t(9)" not in text
    hc0 = P.mundlak_test(F, grunfeld, group="firm", small_sample=False)
    assert "CR0: without a small-sample factor; G = 10 clusters" in str(hc0)
    classical = P.mundlak_test(F, grunfeld, group="firm", cov="classical")
    assert "is classical (i.i.d. errors)." in str(classical)
    robust = P.mundlak_test(F, grunfeld, group="firm", cov="robust")
    assert "heteroskedasticity-robust (HC1" in str(robust)


def test_plain_text_repr_is_the_summary(fits, grunfeld):
    g = grunfeld
    results = [fits["between"], fits["within"], fits["re"], fits["rewb"],
               P.lsdv(F, g, group="firm"),
               P.first_difference(F, g, group="firm", time="year"),
               P.quasi_demeaned_gls(F, g, group="firm", theta=0.5)]
    for r in results:
        text = repr(r)
        assert text == str(r) and text.startswith(r.estimator + "\n")
        assert "array(" not in text and "params=" not in text and len(text) < 5000
    tests = [P.hausman(fits["within"], fits["re"]), P.mundlak_test(F, g, group="firm"),
             fits["within"].wald()]
    for t in tests:
        assert repr(t) == str(t) and repr(t).startswith(t.name + "\nH0: ")
    cmp = P.compare(fits["within"], fits["re"])
    assert repr(cmp) == str(cmp) and repr(cmp).startswith("Model comparison")
    vc = P.swamy_arora_components(
        mlteach.panel.core.prepare_panel(F, g, "firm"))
    assert repr(vc).startswith("VarianceComponents(sigma2_e=") and "array" not in repr(vc)
    assert "groups=10)" in repr(vc)
