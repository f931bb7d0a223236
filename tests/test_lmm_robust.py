"""Nothing silently wrong in mlteach.lmm (issue 12): confounded random effects, a flat
criterion, matching of groups in predict, and results that share no state with the caller."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import mlteach
from mlteach.design import fixed_design
from mlteach.errors import (BoundaryFitWarning, ConvergenceWarning, MlteachError,
                            MlteachWarning, RankDeficientError)
from mlteach.lmm.fit import check_fit, deviance_function, optimize_theta, random_variables
from mlteach.mixed.formula import parse_mixed_formula
from mlteach.mixed.structure import build_structure


@pytest.fixture(scope="module")
def pastes():
    return mlteach.load("pastes")


@pytest.fixture(scope="module")
def rs(sleep):
    return mlteach.lmm("Reaction ~ Days + (Days | Subject)", sleep)


def no_warnings(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


# ---------------------------------------------------------------------------------------------
# 1. Random effects that the fixed part already contains
# ---------------------------------------------------------------------------------------------


def test_random_intercept_confounded_with_fixed_dummies_is_refused(sleep):
    with pytest.raises(RankDeficientError,
                       match=r"The random intercept of \(1 \| Subject\) is confounded with the "
                             r"fixed term C\(Subject\).*variance cannot be estimated.*"
                             r"Drop C\(Subject\) from the fixed part, or drop \(1 \| Subject\)"):
        mlteach.lmm("Reaction ~ Days + C(Subject) + (1|Subject)", sleep)
    assert issubclass(RankDeficientError, MlteachError)


@pytest.mark.parametrize("reml", [True, False])
def test_intercept_of_a_slope_term_confounded(sleep, reml):
    with pytest.raises(RankDeficientError,
                       match=r"random intercept of \(Days \| Subject\) is confounded with the "
                             r"fixed term C\(Subject\).*or drop the random intercept from "
                             r"\(Days \| Subject\)"):
        mlteach.lmm("Reaction ~ Days + C(Subject) + (Days | Subject)", sleep, reml=reml)


def test_random_slope_confounded_with_fixed_slopes_by_group(sleep):
    with pytest.raises(RankDeficientError,
                       match=r"The random slope of 'Days' in \(0 \+ Days \| Subject\) is "
                             r"confounded with the fixed term Days:C\(Subject\).*its own slope of "
                             r"'Days'.*Drop Days:C\(Subject\) from the fixed part"):
        mlteach.lmm("Reaction ~ Days:C(Subject) + (0 + Days | Subject)", sleep)


def test_nested_term_confounded_only_at_its_level(pastes):
    with pytest.raises(RankDeficientError,
                       match=r"random intercept of \(1 \| batch\) is confounded with the fixed "
                             r"term C\(batch\)"):
        mlteach.lmm("strength ~ C(batch) + (1 | batch/cask)", pastes)
    # cask within batch is not absorbed by batch dummies: a legitimate model
    fit = mlteach.lmm("strength ~ C(batch) + (1 | batch:cask)", pastes)
    assert fit.get_cov_re().iloc[0, 0] > 0


def test_group_level_covariates_are_not_confounding(sleep):
    hsb = mlteach.load("hsb82")
    fit = mlteach.lmm("mAch ~ ses + meanses + sector + (1 | school)", hsb)
    assert fit.get_cov_re().iloc[0, 0] > 0
    # three groups and three fixed columns, one of them a group-level covariate: the
    # projection test runs (as many levels as columns of X) and must not fire
    three = sleep[sleep["Subject"].isin(["308", "309", "310"])].copy()
    three["Subject"] = three["Subject"].cat.remove_unused_categories()
    three["level"] = three["Subject"].cat.codes.astype(float) ** 2
    fit = mlteach.lmm("Reaction ~ Days + level + (1 | Subject)", three)
    assert fit.theta.iloc[0] > 0.1


def _pieces(formula, data, method):
    parsed = parse_mixed_formula(formula)
    design = fixed_design(parsed.fixed, data, extra=random_variables(parsed), check_rank=False)
    structure = build_structure(parsed.random, design.data)
    return deviance_function(design, structure, method), structure


@pytest.mark.parametrize("method", ["single", "sparse"])
def test_flat_criterion_warns(sleep, method):
    """Past the confounding check (calling the stages directly), a flat REML criterion leaves θ
    at its start; the check says so instead of reporting τ² = σ² as an estimate."""
    dev, structure = _pieces("Reaction ~ Days + C(Subject) + (1|Subject)", sleep, method)
    opt = optimize_theta(dev, structure, reml=True)
    assert opt.flat
    with pytest.warns(ConvergenceWarning, match=r"could not estimate the random-effect "
                                                r"variances.*a flat criterion") as record:
        assert check_fit(opt, structure) is False
    assert record[0].filename == __file__


def test_ordinary_fit_is_not_flat(sleep):
    dev, structure = _pieces("Reaction ~ Days + (1 | Subject)", sleep, "single")
    opt = optimize_theta(dev, structure, reml=True)
    assert not opt.flat
    assert no_warnings(lambda: check_fit(opt, structure))


def test_fit_warnings_point_at_the_calling_line(sleep):
    noise = sleep.assign(Reaction=np.random.default_rng(1).normal(size=len(sleep)))
    with pytest.warns(BoundaryFitWarning, match=r"estimated at zero") as record:
        mlteach.lmm("Reaction ~ Days + (1 | Subject)", noise)
    assert record[0].filename == __file__


# ---------------------------------------------------------------------------------------------
# 2. predict: groups matched by value; unseen and missing groups counted
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def float_groups(sleep):
    data = sleep.assign(Subj=sleep["Subject"].astype(int).astype(float))
    return data, mlteach.lmm("Reaction ~ Days + (1 | Subj)", data)


def test_numeric_groups_match_by_value(float_groups):
    data, fit = float_groups
    new = pd.DataFrame({"Days": [1, 2], "Subj": [308, 309]})           # ints against 308.0
    pred = no_warnings(lambda: fit.predict(new))
    b = fit.ranef["Intercept"]
    expected = fit.fixef["Intercept"] + fit.fixef["Days"] * new["Days"] + b.iloc[[0, 1]].values
    np.testing.assert_allclose(pred, expected)
    assert pred.iloc[0] != pytest.approx(fit.predict(new, include_random=False).iloc[0])


def test_text_does_not_match_numeric_groups(float_groups):
    _, fit = float_groups
    new = pd.DataFrame({"Days": [1, 1], "Subj": ["308", 308]})
    with pytest.warns(MlteachWarning,
                      match=r"1 row of newdata has a level of 'Subj' not seen in fitting "
                            r"\(e\.g\. 308\).*random effects of 0.*newdata's 'Subj' holds text "
                            r"where the fitted 'Subj' holds numbers") as record:
        pred = fit.predict(new)
    assert record[0].filename == __file__
    assert pred.iloc[0] == pytest.approx(fit.predict(new, include_random=False).iloc[0])
    assert pred.iloc[1] != pytest.approx(pred.iloc[0])


def test_unseen_and_missing_groups_are_counted(rs):
    new = pd.DataFrame({"Days": [0.0, 5.0, 5.0, 1.0, 2.0, 3.0],
                        "Subject": ["308", "308", "new", np.nan, 999, "new"]})
    with pytest.warns(MlteachWarning,
                      match=r"^3 rows of newdata have levels of 'Subject' not seen in fitting "
                            r"\(e\.g\. new, 999\) and 1 row has a missing 'Subject': their "
                            r"predictions use random effects of 0 for 'Subject' \(the population "
                            r"average\).*Pass include_random=False to silence this") as record:
        pred = rs.predict(new)
    assert record[0].filename == __file__
    fixed = rs.predict(new, include_random=False)
    np.testing.assert_allclose(pred.iloc[2:], fixed.iloc[2:])
    b = rs.ranef.loc["308"]
    assert pred.iloc[1] == pytest.approx(rs.fixef["Intercept"] + b["Intercept"]
                                         + 5 * (rs.fixef["Days"] + b["Days"]))
    no_warnings(lambda: rs.predict(new, include_random=False))


def test_only_missing_groups(rs):
    new = pd.DataFrame({"Days": [1.0, 2.0], "Subject": [np.nan, np.nan]})
    with pytest.warns(MlteachWarning, match=r"^2 rows of newdata have a missing 'Subject'"):
        rs.predict(new)


def test_categorical_newdata_matches_by_value(sleep, rs):
    rows = sleep.iloc[[0, 15, 40]]
    labels = rows["Subject"].astype(str)
    other_order = rows.assign(Subject=pd.Categorical(
        labels, categories=["x"] + sorted(labels, reverse=True)))
    expected = rs.fitted.iloc[[0, 15, 40]].to_numpy()
    np.testing.assert_allclose(no_warnings(lambda: rs.predict(other_order)), expected)
    np.testing.assert_allclose(no_warnings(lambda: rs.predict(rows)), expected)


def test_nested_factors_match_each_component(pastes):
    fit = mlteach.lmm("strength ~ 1 + (1 | batch/cask)", pastes)
    np.testing.assert_allclose(no_warnings(lambda: fit.predict(pastes)), fit.fitted)
    new = pd.DataFrame({"batch": ["A", "A", "Z"], "cask": ["a", "q", "a"]})
    with pytest.warns(MlteachWarning) as record:
        pred = fit.predict(new)
    messages = [str(w.message) for w in record]
    assert any(m.startswith("1 row of newdata has a level of 'batch' not seen in fitting "
                            "(e.g. Z)") for m in messages)
    assert any(m.startswith("2 rows of newdata have levels of 'batch:cask' not seen in fitting "
                            "(e.g. A:q, Z:a)") for m in messages)
    mu = fit.fixef["Intercept"]
    b_batch = fit.get_ranef("batch")["Intercept"]
    b_cask = fit.get_ranef("batch:cask")["Intercept"]
    assert pred.iloc[0] == pytest.approx(mu + b_batch["A"] + b_cask["A:a"])
    assert pred.iloc[1] == pytest.approx(mu + b_batch["A"])
    assert pred.iloc[2] == pytest.approx(mu)


# ---------------------------------------------------------------------------------------------
# 3. No shared mutable state
# ---------------------------------------------------------------------------------------------


def test_editing_returned_tables_changes_nothing(sleep):
    fit = mlteach.lmm("Reaction ~ Days + (Days | Subject)", sleep)
    fixef = fit.fixef.to_numpy().copy()
    fitted = fit.fitted.to_numpy().copy()
    new = sleep.head(5)
    pred = fit.predict(new).to_numpy().copy()
    ranef = fit.ranef.to_numpy().copy()

    table = fit.params
    table.iloc[:] = 0.0
    table = fit.fixef
    table.iloc[:] = 0.0
    table = fit.bse
    table.iloc[:] = 0.0
    table = fit.vcov
    table.iloc[:, :] = 0.0
    table = fit.theta
    table.iloc[:] = 0.0
    table = fit.ranef
    table.iloc[:, :] = 0.0
    table = fit.get_ranef()
    table.iloc[:, :] = 0.0
    table = fit.get_cov_re()
    table.iloc[:, :] = 0.0
    table = fit.cov_re
    table.iloc[:, :] = 0.0
    table = fit.ranef_condvar
    table.iloc[:, :] = 0.0
    table = fit.get_condcov()
    table.iloc[:, :] = 0.0
    table = fit.fitted
    table.iloc[:] = 0.0
    table = fit.resid
    table.iloc[:] = 0.0
    counts, terms, info = fit.ngroups, fit.re_terms, fit.optinfo
    counts["Subject"] = 0
    terms["Subject"].append("x")
    info["gradient"][:] = 99.0

    np.testing.assert_array_equal(fit.fixef.to_numpy(), fixef)
    np.testing.assert_array_equal(fit.params.to_numpy(), fixef)
    np.testing.assert_array_equal(fit.ranef.to_numpy(), ranef)
    np.testing.assert_array_equal(fit.fitted.to_numpy(), fitted)
    np.testing.assert_array_equal(fit.predict().to_numpy(), fitted)
    np.testing.assert_array_equal(fit.predict(new).to_numpy(), pred)
    assert fit.get_cov_re().iloc[0, 0] > 0 and fit.bse.iloc[0] > 0 and fit.theta.iloc[0] > 0
    assert fit.ngroups == {"Subject": 18} and fit.re_terms == {"Subject": ["Intercept", "Days"]}
    assert np.all(fit.optinfo["gradient"] != 99.0)
    assert (fit.resid.to_numpy() != 0).all()
    assert "Subject" in str(fit)


def test_editing_the_callers_data_after_fitting_changes_nothing(sleep):
    data = sleep.assign(Subj=sleep["Subject"].astype(int))
    fit = mlteach.lmm("Reaction ~ Days + (1 | Subj)", data)
    new = data.iloc[[0, 30]][["Days", "Subj"]].copy()
    before_fitted = fit.predict().to_numpy().copy()
    before_new = fit.predict(new).to_numpy().copy()
    data["Days"] = 0.0
    data["Subj"] = data["Subj"] + 1000
    data.loc[0, "Reaction"] = 1e6
    np.testing.assert_array_equal(fit.predict().to_numpy(), before_fitted)
    np.testing.assert_array_equal(no_warnings(lambda: fit.predict(new)).to_numpy(), before_new)


def test_crossed_factors_predict_the_fitted_rows():
    pen = mlteach.load("penicillin")
    fit = mlteach.lmm("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    np.testing.assert_allclose(no_warnings(lambda: fit.predict(pen)), fit.fitted)
    new = pen.head(2).assign(sample=["A", "no such sample"])
    with pytest.warns(MlteachWarning, match=r"^1 row of newdata has a level of 'sample' not seen "
                                            r"in fitting \(e\.g\. no such sample\)"):
        pred = fit.predict(new)
    b_plate = fit.get_ranef("plate")["Intercept"]
    b_sample = fit.get_ranef("sample")["Intercept"]
    plate = str(new["plate"].iloc[1])
    assert pred.iloc[1] == pytest.approx(fit.fixef["Intercept"] + b_plate[plate])
    assert pred.iloc[0] == pytest.approx(fit.fixef["Intercept"] + b_plate[str(new["plate"].iloc[0])]
                                         + b_sample["A"])


# ---------------------------------------------------------------------------------------------
# 5. Random-effect terms: any column name, the formula namespace, column types
# ---------------------------------------------------------------------------------------------


def _same_fit(a, b):
    np.testing.assert_allclose(a.fixef.to_numpy(), b.fixef.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-5, atol=1e-8)


def test_backtick_grouping_name_with_a_space(sleep, rs):
    data = sleep.rename(columns={"Subject": "my subject"})
    fit = mlteach.lmm("Reaction ~ Days + (Days | `my subject`)", data)
    assert fit.structure.factors == ["my subject"]
    _same_fit(fit, rs)
    np.testing.assert_allclose(fit.predict(data.head(3)), rs.predict(sleep.head(3)))


def test_backtick_grouping_names_may_hold_formula_characters():
    parsed = parse_mixed_formula("y ~ `a+b` + (1 | `g|h`/`s:t (u)`) + (1 | schüle:IQ.verb)")
    assert parsed.fixed == "y ~ `a+b`"
    assert [t.factor for t in parsed.random] == [("g|h",), ("g|h", "s:t (u)"),
                                                 ("schüle", "IQ.verb")]


def test_unicode_random_slope_variable(sleep, rs):
    data = sleep.rename(columns={"Days": "größe", "Subject": "schüle"})
    fit = mlteach.lmm("Reaction ~ größe + (größe | schüle)", data)
    assert fit.structure.blocks[0].columns == ["Intercept", "größe"]
    _same_fit(fit, rs)
    # the same variable through formulaic (not the plain-column shortcut) gives the same fit
    fit2 = mlteach.lmm("Reaction ~ größe + (1 + I(größe) | schüle)", data)
    _same_fit(fit2, rs)


def test_random_terms_are_evaluated_in_the_formula_namespace(sleep):
    data = sleep.assign(ld=np.log(sleep["Days"] + 1))
    fit = mlteach.lmm("Reaction ~ Days + (np.log(Days + 1) | Subject)", sleep)
    ref = mlteach.lmm("Reaction ~ Days + (ld | Subject)", data)
    assert fit.structure.blocks[0].columns == ["Intercept", "np.log(Days + 1)"]
    _same_fit(fit, ref)
    # new data go through the same namespace
    np.testing.assert_allclose(fit.predict(sleep.head(5)), ref.predict(data.head(5)))
    table = mlteach.shrinkage_table(fit, sleep)
    assert set(table.index.get_level_values("term")) == {"Intercept", "np.log(Days + 1)"}


NOT_AVAILABLE = (r"is not available in formulas: a formula is evaluated with only the data's "
                 r"columns and np \(numpy\), log, exp, sqrt and formulaic's transforms")


@pytest.mark.parametrize("term", ["pd.to_numeric(Days)", "abs(Days)", "pd.io.formats(Days)"])
def test_pandas_or_builtins_in_a_random_term_are_refused_as_in_the_fixed_part(sleep, term):
    from mlteach.errors import UnknownVariableError
    head = term.split(".")[0].split("(")[0]
    with pytest.raises(UnknownVariableError, match=rf"^The name '{head}' in the term "
                                                   rf"'{re.escape(term)}' of the formula "
                                                   rf"'Reaction ~ {re.escape(term)}' {NOT_AVAILABLE}"):
        mlteach.lmm(f"Reaction ~ {term} + (1 | Subject)", sleep)
    # through mlteach.lmm the name is refused by fixed_design's column check, before the random
    # part is built: the same explanation and list of what a formula can use
    with pytest.raises(UnknownVariableError, match=rf"^The name '{head}' is not available in "
                                                   rf"formulas and is not a column of the data: "
                                                   rf"{NOT_AVAILABLE.split(': ', 1)[1]}"):
        mlteach.lmm(f"Reaction ~ Days + (1 + {term} | Subject)", sleep)
    # building the random part directly: the fixed part's message, naming the random term
    parsed = parse_mixed_formula(f"Reaction ~ Days + (1 + {term} | Subject)")
    with pytest.raises(UnknownVariableError, match=rf"^The name '{head}' in the term "
                                                   rf"'{re.escape(term)}' of the formula "
                                                   rf"'\(1 \+ {re.escape(term)} \| Subject\)' "
                                                   rf"{NOT_AVAILABLE}"):
        build_structure(parsed.random, sleep)


def test_infinite_random_term_names_the_term_and_row_as_in_the_fixed_part(sleep):
    from mlteach.errors import DataTypeError
    message = (r"^The term 'np.log\(Days\)' is -inf at row 0 of the data \(Days = 0\); 18 rows "
               r"in all\. A model cannot use missing or infinite values")
    with pytest.raises(DataTypeError, match=message):
        mlteach.lmm("Reaction ~ np.log(Days) + (1 | Subject)", sleep)
    with pytest.raises(DataTypeError, match=message):
        mlteach.lmm("Reaction ~ Days + (np.log(Days) | Subject)", sleep)


def _fixed_part_message(formula, data):
    from mlteach.errors import DataTypeError
    with pytest.raises(DataTypeError) as info:
        mlteach.lmm(formula, data)
    return str(info.value)


@pytest.mark.parametrize("kind", ["dates", "object numbers", "durations"])
def test_random_slope_columns_are_type_checked_as_in_the_fixed_part(sleep, kind):
    from mlteach.errors import DataTypeError
    if kind == "dates":
        col = pd.Timestamp("2020-01-01") + pd.to_timedelta(sleep["Days"], unit="D")
        start = r"^The predictor 'w' holds dates \(datetime64"
    elif kind == "durations":
        col = pd.to_timedelta(sleep["Days"], unit="D")
        start = r"^The predictor 'w' holds durations \(timedelta64"
    else:
        col = sleep["Days"].astype(object)
        start = (r"^The predictor 'w' holds numbers stored as Python objects \(dtype object, "
                 r"values such as 0, 1, 2\), which a formula would silently turn into one dummy "
                 r"per value")
    data = sleep.assign(w=col)
    fixed = _fixed_part_message("Reaction ~ w + (1 | Subject)", data)
    assert re.match(start, fixed)
    for formula in ["Reaction ~ Days + (1 + w | Subject)", "Reaction ~ Days + (0 + w || Subject)",
                    "Reaction ~ Days + (1 + I(w) | Subject)"]:
        with pytest.raises(DataTypeError) as info:
            mlteach.lmm(formula, data)
        assert str(info.value) == fixed


def test_object_numbers_inside_C_in_a_random_term_are_categories(sleep):
    data = sleep.assign(w=(sleep["Days"] > 4).astype(int).astype(object))
    parsed = parse_mixed_formula("Reaction ~ Days + (1 + C(w) | Subject)")
    structure = build_structure(parsed.random, data)
    assert structure.blocks[0].columns == ["Intercept", "C(w)[T.1]"]


def test_unused_category_in_a_random_term_is_refused(sleep):
    from mlteach.errors import DataTypeError
    data = sleep.assign(w=pd.Categorical(np.where(sleep["Days"] > 4, "late", "early"),
                                         categories=["early", "late", "never"]))
    with pytest.raises(DataTypeError, match=r"^The predictor 'w' is categorical with category "
                                            r"'never' that no row used has: the random-effect "
                                            r"term '\(1 \+ w \| Subject\)' would make"):
        mlteach.lmm("Reaction ~ Days + (1 + w | Subject)", data)


def test_grouping_columns_keep_their_own_checks(sleep):
    from mlteach.errors import GroupingError
    mixed = sleep["Subject"].astype(object).copy()
    mixed.iloc[0] = str(mixed.iloc[0])
    mixed.iloc[1:] = [int(v) for v in mixed.iloc[1:]]
    with pytest.raises(GroupingError, match=r"^The grouping variable 'g' mixes"):
        mlteach.lmm("Reaction ~ Days + (1 | g)", sleep.assign(g=mixed))


def test_missing_random_slope_value_in_newdata_is_an_error(sleep):
    from mlteach.errors import DataTypeError
    data = sleep.assign(w=sleep["Days"] * 1.0)
    for formula in ["Reaction ~ Days + (w | Subject)", "Reaction ~ Days + (np.log(w + 1) | Subject)"]:
        fit = mlteach.lmm(formula, data)
        new = data.head(3).copy()
        new.loc[1, "w"] = np.nan
        with pytest.raises(DataTypeError, match=r"^newdata's 'w' is missing at row 1 \(1 row with "
                                                r"a missing value\): a prediction needs every "
                                                r"variable of the model"):
            fit.predict(new)
        assert np.isfinite(fit.predict(new, include_random=False)).all()
