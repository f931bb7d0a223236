"""No pooling (one OLS per group) and the shrinkage table: identities from the book.

The key fact: in a random-intercept model, b̂_j = λ_j (no-pooling − β̂₀) with
λ_j = τ²/(τ² + σ²/n_j), exactly. The tests compute group means and per-group OLS fits
independently (pandas, mlteach.ols) and compare.
"""

import numpy as np
import pandas as pd
import pytest

import mlteach
from mlteach.errors import (
    GroupingError,
    ModelComparisonError,
    SmallGroupWarning,
    UnknownVariableError,
)
from mlteach.lmm import lmm
from mlteach.pooling import no_pooling, shrinkage_factor, shrinkage_table


# ------------------------------------------------------------------------ no pooling


def test_no_pooling_equals_ols_fitted_in_each_group(sleep):
    table = no_pooling("Reaction ~ Days", sleep, "Subject")
    assert list(table.index) == [str(s) for s in sleep["Subject"].cat.categories]
    assert table.index.name == "Subject"
    assert list(table.columns) == ["Intercept", "Days", "se(Intercept)", "se(Days)", "n"]
    for subject in ("308", "335", "372"):
        one = mlteach.ols("Reaction ~ Days", sleep[sleep["Subject"] == subject])
        row = table.loc[subject]
        np.testing.assert_allclose(row[["Intercept", "Days"]], one.params, rtol=1e-10)
        np.testing.assert_allclose(row[["se(Intercept)", "se(Days)"]], one.bse, rtol=1e-10)
        assert row["n"] == 10


def test_no_pooling_reports_too_small_groups_as_nan_with_a_warning(sleep):
    data = sleep[~((sleep["Subject"] == "308") & (sleep["Days"] > 0))]      # 1 row
    data = data[~((data["Subject"] == "309") & (data["Days"] > 1))]         # 2 rows: exact fit
    data = data.copy()
    data.loc[data["Subject"] == "310", "Days"] = 4.0                        # no variation
    with pytest.warns(SmallGroupWarning, match=r"2 of 18 groups of 'Subject'.*'308' \(1 row "
                                               r"for 2 coefficients\); '310' \(no variation "
                                               r"in 'Days'\)"):
        table = no_pooling("Reaction ~ Days", data, "Subject")
    assert table.loc[["308", "310"], ["Intercept", "Days"]].isna().all().all()
    assert table.loc["308", "n"] == 1
    # two rows, two coefficients: the line through both points, but no standard error
    two = data[data["Subject"] == "309"].sort_values("Days")
    slope = np.diff(two["Reaction"].to_numpy())[0]
    assert table.loc["309", "Days"] == pytest.approx(slope, rel=1e-10)
    assert np.isnan(table.loc["309", "se(Days)"])
    assert table.drop(index=["308", "309", "310"]).notna().all().all()


def test_no_pooling_bad_input(sleep):
    with pytest.raises(UnknownVariableError, match="'Subjekt' \\(did you mean 'Subject'\\?\\)"):
        no_pooling("Reaction ~ Days", sleep, "Subjekt")
    with pytest.raises(GroupingError, match="single level"):
        no_pooling("Reaction ~ Days", sleep.assign(one="a"), "one")


# ------------------------------------------------------------------------ shrinkage


@pytest.mark.parametrize("reml", [True, False])
def test_intercept_only_blup_is_shrinkage_factor_times_group_mean_deviation(unbalanced, reml):
    fit = lmm("Reaction ~ 1 + (1 | Subject)", unbalanced, reml=reml)
    table = shrinkage_table(fit, unbalanced).loc["Intercept"]
    means = unbalanced.groupby("Subject", observed=True)["Reaction"].mean()
    sizes = unbalanced.groupby("Subject", observed=True).size()
    np.testing.assert_allclose(table["no_pooling"], means.to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(table["n"], sizes.to_numpy())
    assert table["n"].nunique() == 8                        # really unbalanced
    beta0 = float(fit.fixef["Intercept"])
    tau2 = float(fit.cov_re.loc["Intercept", "Intercept"])
    lam = tau2 / (tau2 + fit.sigma ** 2 / sizes.to_numpy())
    np.testing.assert_allclose(table["shrinkage_theory"], lam, rtol=1e-12)
    # the identity: BLUP = λ_j (ȳ_j − β̂₀), to the solver's accuracy
    blup = fit.ranef["Intercept"].to_numpy()
    np.testing.assert_allclose(blup, lam * (means.to_numpy() - beta0), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(table["shrinkage"], table["shrinkage_theory"], rtol=1e-7)
    # smaller groups are shrunk more
    order = np.argsort(table["n"].to_numpy())
    assert np.all(np.diff(table["shrinkage_theory"].to_numpy()[order]) >= 0)
    np.testing.assert_allclose(table["partial_pooling"], beta0 + blup, rtol=1e-12)
    assert table["complete_pooling"].iloc[0] == pytest.approx(unbalanced["Reaction"].mean())


def test_random_intercept_with_a_covariate_shrinks_exactly_too(unbalanced):
    fit = lmm("Reaction ~ Days + (1 | Subject)", unbalanced)
    table = shrinkage_table(fit, unbalanced).loc["Intercept"]
    slope = float(fit.fixef["Days"])
    # no pooling holds the slope at β̂: the group mean of Reaction − β̂·Days
    expected = (unbalanced["Reaction"] - slope * unbalanced["Days"]).groupby(
        unbalanced["Subject"], observed=True).mean()
    np.testing.assert_allclose(table["no_pooling"], expected.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(table["shrinkage"], table["shrinkage_theory"], rtol=1e-7)
    ols = mlteach.ols("Reaction ~ Days", unbalanced)
    assert table["complete_pooling"].iloc[0] == pytest.approx(ols.params["Intercept"])


def test_random_slopes_compare_with_separate_regressions(sleep):
    fit = lmm("Reaction ~ Days + (Days | Subject)", sleep)
    table = shrinkage_table(fit)                             # data from the fit itself
    assert list(dict.fromkeys(table.index.get_level_values("term"))) == ["Intercept", "Days"]
    separate = no_pooling("Reaction ~ Days", sleep, "Subject")
    for term in ("Intercept", "Days"):
        part = table.loc[term]
        np.testing.assert_allclose(part["no_pooling"], separate[term], rtol=1e-10)
        np.testing.assert_allclose(part["partial_pooling"],
                                   fit.fixef[term] + fit.ranef[term].to_numpy(), rtol=1e-12)
        assert part["shrinkage_theory"].isna().all()
        assert (part["fixed_effect"] == fit.fixef[term]).all()
    # on average the BLUP keeps less than the group's own deviation
    assert np.median(table.loc["Days", "shrinkage"]) < 1


def test_shrinkage_factor_limits():
    np.testing.assert_allclose(shrinkage_factor(4.0, 16.0, [1, 4, 1e9]), [0.2, 0.5, 1.0])
    assert shrinkage_factor(0.0, 1.0, 5) == 0.0


def test_shrinkage_table_refuses_other_data_and_ambiguous_factors(sleep):
    fit = lmm("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(ModelComparisonError, match="162 complete rows.*fit used 180"):
        shrinkage_table(fit, sleep[sleep["Days"] > 0])
    pen = mlteach.load("penicillin")
    crossed = lmm("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    with pytest.raises(GroupingError, match="several grouping factors \\('plate', 'sample'\\).*"
                                            "group='plate'"):
        shrinkage_table(crossed, pen)
    table = shrinkage_table(crossed, pen, group="sample").loc["Intercept"]
    assert len(table) == 6 and table["shrinkage_theory"].isna().all()  # crossed: no formula
    with pytest.raises(GroupingError, match="'batch' is not a grouping factor"):
        shrinkage_table(crossed, pen, group="batch")


# ------------------------------------------------------------------------ printing


def test_a_group_with_an_all_zero_outcome_prints_zero_not_minus_zero():
    # Least squares on all-zero y returns -0.0; the table must show 0.0.
    data = pd.DataFrame({"g": list("aaabbbccc"), "y": [0, 0, 0, 1, 0, 1, 1, 1, 0]})
    table = no_pooling("y ~ 1", data, "g")
    assert table.loc["a", "Intercept"] == 0.0
    assert not np.signbit(table[["Intercept", "se(Intercept)"]].to_numpy()).any()
    assert "-0.0" not in table.to_string()


def test_shrinkage_table_of_contraception_has_no_negative_zero():
    data = mlteach.load("contraception")
    data["use"] = (data["use"] == "Y").astype(int)
    fit = lmm("use ~ 1 + (1 | district)", data)
    table = shrinkage_table(fit, data).loc["Intercept"]
    nobody = table.index[table["no_pooling"] == 0]
    assert len(nobody) >= 1                 # districts where no woman uses contraception
    assert not np.signbit(table.loc[nobody, "no_pooling"]).any()
    assert "-0.0" not in table.to_string()
