"""Checks at the door (issue 12, "nothing silently wrong"): every estimator gets them from
mlteach.design. Each test checks the message text, not only the exception class."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mlteach
from mlteach.design import FORMULA_NAMESPACE, check_column_types, drop_missing, fixed_design
from mlteach.errors import (
    DataTypeError,
    FormulaSyntaxError,
    GroupingError,
    MissingDataWarning,
    MlteachError,
    MlteachWarning,
    UnknownVariableError,
    UnseenLevelError,
)


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return mlteach.load("sleepstudy")


@pytest.fixture()
def d(sleep) -> pd.DataFrame:
    return sleep.copy()


# ---------------------------------------------------------------------------------------------
# A. Formulas reach only the data, numpy and formulaic's transforms
# ---------------------------------------------------------------------------------------------


def test_pandas_is_not_available_in_formulas(d):
    d["x1"] = d["Days"] * 1.0
    with pytest.raises(UnknownVariableError,
                       match=r"name 'pd' .* is not available in formulas.*columns and np "
                             r"\(numpy\), log, exp, sqrt and formulaic's transforms \(.*C,"):
        mlteach.ols("Reaction ~ I(x1 + 0*pd.io.common.os.getpid())", d)


def test_pandas_refused_in_lmm_too(d):
    with pytest.raises(MlteachError, match=r"name 'pd' .* not available in formulas"):
        mlteach.lmm("Reaction ~ I(Days + 0*pd.NA) + (1 | Subject)", d)


@pytest.mark.parametrize("term", ["I(__import__('os').getpid())", "I(len(Days))"])
def test_builtins_are_not_available(d, term):
    name = term[2:].split("(")[0]
    with pytest.raises(UnknownVariableError, match=rf"name '{name}' .* not available in formulas"):
        mlteach.ols(f"Reaction ~ {term}", d)


def test_private_attributes_are_refused(d):
    with pytest.raises(FormulaSyntaxError, match="cannot reach private attributes"):
        mlteach.ols("Reaction ~ I(Days.__class__)", d)


def test_a_column_named_like_a_builtin_is_still_a_column(d):
    d["id"] = d["Days"] * 2.0
    fit = mlteach.ols("Reaction ~ id", d)
    assert "id" in fit.params.index


def test_center_is_formulaics_grand_mean_centring_not_mlteachs(d):
    fit = mlteach.ols("Reaction ~ center(Days)", d)
    ref = mlteach.ols("Reaction ~ Days", d)
    assert fit.params["center(Days)"] == pytest.approx(ref.params["Days"])
    assert fit.params["Intercept"] == pytest.approx(d["Reaction"].mean())


def test_namespace_functions_work(d):
    fit = mlteach.ols("np.log(Reaction) ~ sqrt(Days) + exp(Days / 10) + log(Days + 1) + C(Days > 4)", d)
    assert fit.params.size == 5
    assert set(FORMULA_NAMESPACE) == {"np", "log", "exp", "sqrt"}


def test_module_docs_say_formulas_are_code():
    import mlteach.design as design
    assert "Formulas are code" in design.__doc__ and "not pandas" in design.__doc__


# ---------------------------------------------------------------------------------------------
# B. Column types, checked once for every estimator
# ---------------------------------------------------------------------------------------------


def test_datetime_predictor(d):
    d["when"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(d["Days"], unit="D")
    with pytest.raises(DataTypeError, match=r"predictor 'when' holds dates .*Convert them to a "
                                            r"number.*year.*days since the start"):
        mlteach.ols("Reaction ~ when", d)
    with pytest.raises(DataTypeError, match=r"predictor 'when' holds dates"):
        mlteach.lmm("Reaction ~ when + (1 | Subject)", d)


def test_timedelta_and_complex(d):
    d["dur"] = pd.to_timedelta(d["Days"], unit="D")
    d["z"] = d["Days"] + 1j
    with pytest.raises(DataTypeError, match=r"'dur' holds durations.*total_seconds"):
        mlteach.ols("Reaction ~ dur", d)
    with pytest.raises(DataTypeError, match=r"'z' holds complex numbers"):
        mlteach.ols("Reaction ~ z", d)


def test_string_dtype_predictor_is_categorical_text(d):
    d["S"] = d["Days"].astype(str).astype("string")  # "0", ..., "9": labels, not numbers
    fit = mlteach.ols("Reaction ~ S", d)
    assert "S[T.1]" in fit.params.index and fit.params.size == 10
    ref = mlteach.ols("Reaction ~ C(Days)", d)
    np.testing.assert_allclose(fit.fitted, ref.fittedvalues)


def test_string_dtype_outcome_is_an_error(d):
    d["R"] = d["Reaction"].astype(str).astype("string")
    with pytest.raises(DataTypeError, match=r"outcome 'R' is not numeric.*astype\(float\)"):
        mlteach.ols("R ~ Days", d)


def test_object_numbers_are_refused(d):
    d["Days"] = d["Days"].astype(object)
    msg = (r"convert with df\['Days'\] = df\['Days'\]\.astype\(float\), or wrap it in C\(\) to "
           r"treat it as categories")
    with pytest.raises(DataTypeError, match=msg):
        mlteach.ols("Reaction ~ Days", d)
    with pytest.raises(DataTypeError, match=msg):
        mlteach.lmm("Reaction ~ Days + (1 | Subject)", d)
    assert mlteach.ols("Reaction ~ C(Days)", d).params.size == 10  # asked for categories: fine


def test_duplicate_column_names(d):
    dup = pd.concat([d, d[["Days"]]], axis=1)
    with pytest.raises(DataTypeError, match=r"several columns named 'Days'.*Rename the duplicates"):
        mlteach.ols("Reaction ~ Days", dup)


def test_unused_category_in_a_predictor(d):
    d["g"] = pd.Categorical(np.where(d["Days"] < 5, "a", "b"), categories=["a", "b", "c"])
    with pytest.raises(DataTypeError, match=r"predictor 'g' .*'c' that no row used has.*all-zero "
                                            r"dummy.*rank deficient.*df\['g'\] = "
                                            r"df\['g'\]\.cat\.remove_unused_categories\(\)"):
        mlteach.ols("Reaction ~ g", d)


def test_unused_category_of_a_grouping_variable_is_not_a_group(d):
    """Subsetting a categorical grouping leaves unused categories: harmless, they are no group."""
    d["Subject"] = d["Subject"].cat.add_categories(["999"])
    few = d[d["Subject"].isin(["308", "309", "310"])]
    with warnings.catch_warnings():
        warnings.simplefilter("error", MlteachWarning)
        fit = mlteach.lmm("Reaction ~ Days + (1 | Subject)", few)
    assert fit.ngroups == {"Subject": 3}


def test_missing_data_warning_points_at_the_users_line(d):
    d.loc[3, "Days"] = np.nan
    with pytest.warns(MissingDataWarning, match="Dropped 1 of 180") as record:
        mlteach.ols("Reaction ~ Days", d)
    assert record[0].filename == __file__
    with pytest.warns(MissingDataWarning) as record:
        mlteach.lmm("Reaction ~ Days + (1 | Subject)", d)
    assert [r.filename for r in record if r.category is MissingDataWarning] == [__file__]


def test_group_labels_mixing_types(d):
    d["G"] = pd.Series([1 if k % 2 else "1" for k in range(len(d))], index=d.index, dtype=object)
    d["G2"] = d["G"].where(d["Days"] > 4, "2")
    with pytest.raises(GroupingError, match=r"grouping variable 'G' mixes .* '1' and 1.*astype\(str\)"):
        mlteach.ols("Reaction ~ Days", d, cluster="G")
    with pytest.raises(GroupingError, match=r"grouping variable 'G' mixes"):
        mlteach.lmm("Reaction ~ Days + (1 | G)", d)


def test_mixed_labels_in_a_predictor(d):
    d["G"] = pd.Series([1 if k % 2 else "1" for k in range(len(d))], index=d.index, dtype=object)
    with pytest.raises(DataTypeError, match=r"predictor 'G' mixes .* '1' and 1"):
        mlteach.ols("Reaction ~ G", d)


def test_check_column_types_directly(d):
    check_column_types(d, ["Reaction", "Days", "Subject"])  # fine
    with pytest.raises(DataTypeError, match="'Days' holds numbers stored as Python objects"):
        check_column_types(d.astype({"Days": object}), ["Days"])


def test_a_column_named_1_would_be_the_intercept(d):
    d["1"] = d["Days"]
    with pytest.raises(FormulaSyntaxError, match=r"names a column '1', but a formula reads `1` as "
                                                 r"the number 1 \(the intercept\).*Rename"):
        mlteach.ols("Reaction ~ `1`", d)


def test_unicode_and_spaces_in_formula_variables_and_clusters(d):
    d = d.rename(columns={"Subject": "schüle"})
    d["my col"] = d["Days"] * 1.0
    d["größe"] = d["Days"] ** 2.0
    fit = mlteach.ols("Reaction ~ `my col`", d, cluster="schüle")
    assert "my col" in fit.params.index
    assert "größe" in mlteach.ols("Reaction ~ größe", d).params.index
    lmm = mlteach.lmm("Reaction ~ `my col` + größe + (1 | Subject)", d.assign(Subject=d["schüle"]))
    assert {"my col", "größe"} <= set(lmm.fixef.index)


def test_unicode_grouping_factor_in_lmm(d):
    d = d.rename(columns={"Subject": "schüle"})
    fit = mlteach.lmm("Reaction ~ Days + (1 | schüle)", d)
    ref = mlteach.lmm("Reaction ~ Days + (1 | Subject)", d.rename(columns={"schüle": "Subject"}))
    assert fit.structure.factors == ["schüle"]
    np.testing.assert_allclose(fit.fixef.to_numpy(), ref.fixef.to_numpy(), rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# C. Terms that evaluate to NaN/inf, syntax errors inside calls
# ---------------------------------------------------------------------------------------------


def test_log_of_zero_names_the_term_and_row(d):
    d.index = [f"r{k}" for k in range(len(d))]
    with pytest.raises(DataTypeError, match=r"term 'np.log\(Days\)' is -inf at row 'r0' of the "
                                            r"data \(Days = 0\); 18 rows in all"):
        mlteach.ols("Reaction ~ np.log(Days)", d)
    with pytest.raises(DataTypeError, match=r"term 'np.log\(Days\)' is -inf at row 'r0'"):
        mlteach.lmm("Reaction ~ np.log(Days) + (1 | Subject)", d)


def test_log_of_negative_outcome(d):
    with pytest.raises(DataTypeError, match=r"term 'np.log\(Reaction - 300\)' is missing \(NaN\) "
                                            r"at row 0 of the data \(Reaction = 249.56\)"):
        mlteach.ols("np.log(Reaction - 300) ~ Days", d)


def test_no_numpy_runtime_warning_leaks(d):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataTypeError, match="is -inf"):
            mlteach.ols("Reaction ~ log(Days)", d)


def test_syntax_error_inside_a_call(d):
    with pytest.raises(FormulaSyntaxError, match=r"the term 'np.log\(x.1\)' is not a valid Python "
                                                 r"expression.*backticks, e.g. np.log\(`x.1`\)"):
        mlteach.ols("Reaction ~ np.log(x.1)", d)


# ---------------------------------------------------------------------------------------------
# D. Results do not share mutable state with the caller
# ---------------------------------------------------------------------------------------------


def test_design_data_is_a_copy_of_the_used_columns(d):
    d["unused"] = 1.0
    design = fixed_design("Reaction ~ Days", d, extra=["Subject"])
    assert design.data is not d
    assert sorted(design.data.columns) == ["Days", "Reaction", "Subject"]
    rows = drop_missing(d, ["Days"])
    assert rows is not d
    d.loc[0, "Days"] = 99
    assert design.data.loc[0, "Days"] == 0 and rows.loc[0, "Days"] == 0


def test_editing_categories_after_fitting_changes_nothing(d):
    d["g"] = pd.Categorical(np.where(d["Days"] < 5, "early", "late"))
    fit = mlteach.ols("Reaction ~ g", d)
    before = fit.predict(d.head(4)).to_numpy().copy()
    d["g"] = d["g"].cat.reorder_categories(["late", "early"])
    np.testing.assert_allclose(fit.predict(d.head(4)).to_numpy(), before)
    assert list(fit.params.index) == ["Intercept", "g[T.late]"]


# ---------------------------------------------------------------------------------------------
# E. Unseen category levels in predict
# ---------------------------------------------------------------------------------------------


def test_unseen_level_in_ols_predict(d):
    fit = mlteach.ols("Reaction ~ Days + C(Subject)", d)
    new = d.head(3).copy()
    new["Subject"] = new["Subject"].astype(object)
    new.loc[new.index[0], "Subject"] = "999"
    with pytest.raises(UnseenLevelError, match=r"'Subject' has level '999' not seen when the model "
                                               r"was fitted \(term 'C\(Subject\)'; known levels: "
                                               r"'308', '309'.*as for the reference level\)"):
        fit.predict(new)


def test_unseen_level_of_a_plain_categorical_column(d):
    d["g"] = np.where(d["Days"] < 5, "early", "late")
    fit = mlteach.ols("Reaction ~ Days + g", d)
    new = d.head(2).assign(g=["early", "middle"])
    with pytest.raises(UnseenLevelError, match=r"'g' has level 'middle' .*known levels: 'early', "
                                               r"'late'"):
        fit.predict(new)
    assert np.isfinite(fit.predict(d.head(2))).all()


def test_categorical_expressions_predict_new_values(d):
    fit = mlteach.ols("Reaction ~ C(Days > 4) + C(Subject, contr.treatment(base='309'))", d)
    new = d.head(3).assign(Days=[20, 30, 1])  # new Days, known levels of Days > 4
    np.testing.assert_allclose(fit.predict(new).to_numpy()[[0, 1]], fit.predict(new).iloc[0])
    new = d.head(1).assign(Subject=pd.Categorical(["999"]))
    with pytest.raises(UnseenLevelError, match=r"'Subject' has level '999' not seen.*known levels: '308'"):
        fit.predict(new)


def test_unseen_level_in_lmm_predict(d):
    d["g"] = np.where(d["Days"] < 5, "early", "late")
    fit = mlteach.lmm("Reaction ~ Days + C(g) + (1 | Subject)", d)
    new = d.head(2).assign(g=["early", "middle"])
    with pytest.raises(UnseenLevelError, match=r"'g' has level 'middle'"):
        fit.design.encode(new)  # the path LMMResult.predict(newdata) takes
