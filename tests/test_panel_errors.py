"""Bad input and estimation trouble in mlteach.panel: each message is checked by its text."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mlteach
from mlteach import panel as P
from mlteach.errors import (BoundaryFitWarning, DroppedTermWarning, GroupingError,
                            HausmanWarning, MissingDataWarning, RankDeficientError,
                            UnknownVariableError)

F = "inv ~ value + capital"


@pytest.mark.parametrize("fit", [
    lambda d: P.within(F, d, group="firm"),
    lambda d: P.between(F, d, group="firm"),
    lambda d: P.swamy_arora(F, d, group="firm"),
    lambda d: P.first_difference(F, d, group="firm", time="year"),
])
def test_missing_group_is_an_error_naming_the_row(grunfeld, fit):
    d = grunfeld.astype({"firm": float})
    d.loc[17, "firm"] = np.nan
    with pytest.raises(GroupingError, match=r"group variable 'firm' is missing \(NaN\) in 1 "
                                            r"row\(s\), first at row 17.*dropna"):
        fit(d)


def test_missing_time_is_an_error(grunfeld):
    d = grunfeld.astype({"year": float})
    d.loc[[3, 4], "year"] = np.nan
    with pytest.raises(GroupingError, match=r"time variable 'year' is missing \(NaN\) in 2 "
                                            r"row\(s\), first at row 3"):
        P.first_difference(F, d, group="firm", time="year")


def test_unknown_group_column(grunfeld):
    with pytest.raises(UnknownVariableError, match="'frim' \\(did you mean 'firm'\\?\\)"):
        P.within(F, grunfeld, group="frim")


def test_duplicate_group_time_pairs_name_group_and_time(grunfeld):
    d = pd.concat([grunfeld, grunfeld.iloc[[0]]], ignore_index=True)
    with pytest.raises(GroupingError, match=r"1 \(group, time\) pair\(s\) occur in more than "
                                            r"one row.*firm = '1' at year = 1935 has 2 rows"):
        P.first_difference(F, d, group="firm", time="year")
    with pytest.raises(GroupingError, match="drop_duplicates"):
        P.within(F, d, group="firm", time="year", effects="twoways")


def test_time_invariant_regressor_is_dropped_with_a_named_warning(grunfeld):
    d = grunfeld.assign(size=grunfeld.groupby("firm")["capital"].transform("mean"))
    with pytest.warns(DroppedTermWarning, match=r"Dropped 'size' from the fixed-effects model: "
                                                r"it does not vary within any firm"):
        fit = P.within("inv ~ value + capital + size", d, group="firm")
    assert list(fit.params.index) == ["value", "capital"]
    assert fit.dropped == ("size",)
    assert "Not estimable" in str(fit.summary())
    with pytest.warns(DroppedTermWarning, match="changes only with year"):
        P.within("inv ~ value + capital + year", d, group="firm", time="year",
                 effects="twoways")
    with pytest.warns(DroppedTermWarning, match="its differences are all zero"):
        P.first_difference("inv ~ value + capital + size", d, group="firm", time="year")


def test_no_regressor_varies_within(grunfeld):
    d = grunfeld.assign(size=grunfeld.groupby("firm")["capital"].transform("mean"))
    with pytest.warns(DroppedTermWarning), \
            pytest.raises(RankDeficientError, match="No regressor .* varies within groups"):
        P.within("inv ~ size", d, group="firm")


def test_all_groups_singletons(grunfeld):
    d = grunfeld.assign(row=np.arange(len(grunfeld)))
    with pytest.raises(GroupingError, match="as many levels as rows.*every group has one "
                                            "observation"):
        P.within(F, d, group="row")


def test_singletons_are_reported(grunfeld):
    d = grunfeld[~((grunfeld.firm == 3) & (grunfeld.year > 1935))]
    fit = P.within(F, d, group="firm")
    assert dict(fit.facts)["Singleton groups"] == 1
    assert "1 group(s) have a single row (singletons)" in str(fit)


def test_between_needs_more_groups_than_coefficients(grunfeld):
    d = grunfeld[grunfeld.firm <= 3]
    with pytest.raises(RankDeficientError, match=r"one row per group: 3 groups of 'firm' cannot "
                                                 r"estimate 4 coefficients \(Intercept, value, "
                                                 r"capital, year\)"):
        P.between("inv ~ value + capital + year", d, group="firm")


def test_one_group_is_an_error(grunfeld):
    with pytest.raises(GroupingError, match=r"'firm' has 1 level\(s\) in the rows used"):
        P.within(F, grunfeld[grunfeld.firm == 1], group="firm")


def test_hausman_not_positive_definite_warns_in_plain_words():
    """Gasoline: V_FE − V_RE has a negative eigenvalue (plm reports the statistic silently)."""
    gas = mlteach.load("gasoline")
    f = "lgaspcar ~ lincomep + lrpmg + lcarpcap"
    fe, re = P.within(f, gas, group="country"), P.swamy_arora(f, gas, group="country")
    with pytest.warns(HausmanWarning, match=r"V_FE − V_RE, is not positive definite: it has a "
                                            r"negative eigenvalue.*random effects is not more "
                                            r"precise.*df = 3.*mundlak_test"):
        h = P.hausman(fe, re)
    assert h.df == 3 and "not positive definite" in str(h)


def test_generalised_inverse_rank_and_definiteness():
    """The helper behind hausman(): a singular difference gets df = rank, not k."""
    from mlteach.panel.hausman import _psd_inverse
    V = np.array([[4.0, 2.0], [2.0, 1.0]])          # rank 1
    inv, rank, pos_def = _psd_inverse(V)
    assert (rank, pos_def) == (1, False)
    np.testing.assert_allclose(V @ inv @ V, V, rtol=1e-12)     # a generalised inverse
    inv, rank, pos_def = _psd_inverse(np.diag([1e-6, 3e4]))   # units differ, still PD
    assert (rank, pos_def) == (2, True)
    assert _psd_inverse(np.diag([1.0, -0.5]))[1:] == (2, False)


def test_hausman_rejects_robust_fits_and_wrong_models(grunfeld):
    fe = P.within(F, grunfeld, group="firm", cov="cluster")
    re = P.swamy_arora(F, grunfeld, group="firm")
    with pytest.raises(ValueError, match="needs classical standard errors.*mundlak_test"):
        P.hausman(fe, re)
    with pytest.raises(TypeError, match="re must be a result of swamy_arora"):
        P.hausman(P.within(F, grunfeld, group="firm"), P.between(F, grunfeld, group="firm"))
    with pytest.raises(ValueError, match="different data"):
        P.hausman(P.within(F, grunfeld[grunfeld.year > 1940], group="firm"), re)


def test_negative_variance_component_warns_and_gives_pooled_ols():
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(12), 5)
    x = rng.normal(size=g.size) + rng.normal(size=12)[g]
    noise = rng.normal(size=g.size)
    noise -= pd.Series(noise).groupby(g).transform("mean").to_numpy()   # no group means
    d = pd.DataFrame({"g": g, "x": x, "y": 2 * x + noise})
    with pytest.warns(BoundaryFitWarning, match=r"estimated below zero \(Swamy–Arora σ²_u = "
                                                r"-.*set to 0.*pooled OLS \(θ = 0\)"):
        re = P.swamy_arora("y ~ x", d, group="g")
    assert re.sigma2_u == 0 and re.theta == 0.0
    np.testing.assert_allclose(re.params, mlteach.ols("y ~ x", d).params, rtol=1e-10)


@pytest.mark.parametrize("call,match", [
    (lambda d: P.within(F, d, group="firm", cov="hc3"), r"cov='hc3' is not an option; choose "
                                                        r"one of 'classical', 'robust', "
                                                        r"'cluster'"),
    (lambda d: P.within(F, d, group="firm", effects="time"), "effects='time' is not an option"),
    (lambda d: P.within(F, d, group="firm", effects="twoways"), "name the time column"),
    (lambda d: P.between(F, d, group="firm", cov="cluster"), "cov='cluster' is not an option"),
    (lambda d: P.rewb(F, d, group="firm", engine="ml"), "engine='ml' is not an option"),
    (lambda d: P.quasi_demeaned_gls(F, d, group="firm", theta=1.5), r"theta must lie in \[0, 1\]"),
    (lambda d: P.quasi_demeaned_gls(F, d, group="firm", theta={"1": 0.5}),
     r"theta has no value for group\(s\) \['2', '3', '4', '5', '6'\]"),
    (lambda d: P.rewb(F, d, group="firm", variables=["valu"]), r"\['valu'\] are not terms"),
    (lambda d: P.rewb("inv ~ value + capital + fm", d.assign(
        fm=d.groupby("firm")["value"].transform("mean")), group="firm", variables=["fm"]),
     "do not vary within groups of 'firm': they have only a between effect"),
])
def test_options_validated_at_the_door(grunfeld, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(grunfeld)


def test_first_difference_without_consecutive_periods(grunfeld):
    # Every firm is observed every other year, odd firms in odd years: all years occur in the
    # panel, but no firm has two consecutive ones.
    d = grunfeld[(grunfeld.year - grunfeld.firm) % 2 == 0]
    with pytest.warns(MissingDataWarning, match="span a gap"), \
            pytest.raises(RankDeficientError, match="No group of 'firm' has two consecutive "
                                                    "periods of 'year'"):
        P.first_difference(F, d, group="firm", time="year")


def test_missing_model_values_are_dropped_with_a_count(grunfeld):
    d = grunfeld.copy()
    d.loc[5, "value"] = np.nan
    with pytest.warns(MissingDataWarning, match="Dropped 1 of 200 rows"):
        fit = P.within(F, d, group="firm")
    assert fit.nobs == 199


def test_compare_rejects_non_fits(grunfeld):
    fit = P.within(F, grunfeld, group="firm")
    with pytest.raises(TypeError, match="Argument 2 of compare\\(\\) is a str"):
        P.compare(fit, "within")
    with pytest.raises(ValueError, match="names has 1 entries for 2 models"):
        P.compare(fit, fit, names=["a"])
    with pytest.raises(TypeError, match=r"needs coefficients \(`params` or `fixef`\) and "
                                        r"standard errors \(`bse`\)"):
        P.compare(fit, pd.Series([1.0]))


def test_fixed_effects_cannot_predict_a_new_group(grunfeld):
    fit = P.within(F, grunfeld, group="firm")
    new = pd.concat([grunfeld.head(2), grunfeld.head(3).assign(firm=[11, 12, 11])])
    for f in (fit, P.lsdv(F, grunfeld, group="firm")):
        with pytest.raises(GroupingError, match=(
                r"newdata has 2 group\(s\) of 'firm' that the fit did not see: '11', '12' "
                r"\(the fit estimated effects for 10 groups\)\. Fixed effects cannot predict "
                r"a new group: its effect was never estimated\. Use a random-effects model "
                r"\(swamy_arora\(\), rewb\(\), or mlteach\.lmm\).*"
                r"include_random=False\) for the slope part")):
            f.predict(new)
    with pytest.raises(UnknownVariableError, match="firm"):
        fit.predict(grunfeld.drop(columns="firm"))


def test_twoway_fixed_effects_cannot_predict_a_new_period(grunfeld):
    fit = P.within(F, grunfeld, group="firm", time="year", effects="twoways")
    with pytest.raises(GroupingError, match=r"newdata has 1 period\(s\) of 'year' that the fit "
                                            r"did not see: 1960 \(the fit estimated effects "
                                            r"for 20 periods\)"):
        fit.predict(grunfeld.head(2).assign(year=1960))


def test_predict_refusals_say_why(grunfeld):
    fd = P.first_difference(F, grunfeld, group="firm", time="year")
    with pytest.raises(ValueError, match=r"first_difference\(\) cannot predict for newdata: it "
                                         r"estimates how y changes when x changes.*not the "
                                         r"level of y"):
        fd.predict(grunfeld)
    with pytest.raises(ValueError, match="has no group effects to add: differencing removed"):
        fd.predict(include_random=True)
    b = P.between(F, grunfeld, group="firm")
    with pytest.raises(ValueError, match=r"between\(\) estimates no group effects"):
        b.predict(include_random=True)
    with pytest.raises(TypeError, match="include_effects must be True or False, got 'yes'"):
        P.within(F, grunfeld, group="firm").predict(include_effects="yes")
    with pytest.raises(UnknownVariableError, match="firm"):
        P.rewb(F, grunfeld, group="firm").predict(grunfeld.drop(columns="firm"))
