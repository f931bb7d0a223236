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


@pytest.fixture(scope="module")
def grunfeld():
    return mlteach.load("grunfeld")


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
