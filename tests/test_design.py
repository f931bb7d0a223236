"""Design helpers: group means, centring, the within/between decomposition, GroupIndex."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlteach
from mlteach.design import GroupIndex, check_grouping, fixed_design
from mlteach.errors import DataTypeError, GroupingError, UnknownVariableError


@st.composite
def grouped(draw):
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=8))
    values = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=sum(sizes),
                           max_size=sum(sizes)))
    groups = np.repeat([f"g{k}" for k in range(len(sizes))], sizes)
    order = draw(st.permutations(range(sum(sizes))))
    return pd.DataFrame({"x": np.asarray(values)[order], "g": groups[order]})


@given(grouped())
def test_within_plus_between_is_total(frame):
    parts = mlteach.decompose_variance("x", "g", frame)
    scale = max(1.0, frame.x.abs().max() ** 2)
    assert parts["within"] + parts["between"] == pytest.approx(parts["total"], abs=1e-9 * scale)
    assert parts["within"] >= -1e-12 and parts["between"] >= -1e-12


@given(grouped())
def test_centred_variable_has_zero_group_means(frame):
    centred = mlteach.center("x", "g", frame)
    means = centred.groupby(frame["g"]).mean()
    np.testing.assert_allclose(means, 0, atol=1e-9 * max(1.0, frame.x.abs().max()))
    np.testing.assert_allclose(centred + mlteach.group_mean("x", "g", frame), frame.x,
                               atol=1e-9 * max(1.0, frame.x.abs().max()))


def test_group_mean_keeps_the_row_order_and_index():
    frame = pd.DataFrame({"x": [1.0, 10.0, 3.0, 20.0], "g": ["a", "b", "a", "b"]},
                         index=[10, 11, 12, 13])
    pd.testing.assert_series_equal(mlteach.group_mean("x", "g", frame),
                                   pd.Series([2.0, 15.0, 2.0, 15.0], index=frame.index,
                                             name="x_mean"))


def test_mundlak_adds_means_and_within_parts():
    hsb = mlteach.load("hsb82")
    out = mlteach.mundlak(hsb, "ses", "school")
    np.testing.assert_allclose(out["ses_mean"], hsb["meanses"], rtol=1e-9)
    np.testing.assert_allclose(out["ses_within"], hsb["cses"], atol=1e-9)
    assert "ses_mean" not in hsb.columns  # the input is not modified


def test_hsb_variance_shares():
    parts = mlteach.decompose_variance("ses", "school", mlteach.load("hsb82"))
    # ses is strongly clustered by school: roughly a quarter of its variance lies between schools
    assert 0.2 < parts["between_share"] < 0.35
    assert parts["n_groups"] == 160


def test_group_index_nested_labels_and_sums():
    frame = pd.DataFrame({"school": ["s1", "s1", "s2", "s2", "s2"],
                          "klass": ["a", "b", "a", "a", "b"],
                          "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    idx = GroupIndex.from_data(frame, ["school", "klass"])
    assert list(idx.levels) == ["s1:a", "s1:b", "s2:a", "s2:b"]
    np.testing.assert_array_equal(idx.sizes, [1, 1, 2, 1])
    np.testing.assert_allclose(idx.mean(frame.y.to_numpy()), [1, 2, 3.5, 5])
    np.testing.assert_allclose(idx.demean(frame.y.to_numpy()), [0, 0, -0.5, 0.5, 0])


def test_group_index_with_missing_group_names_the_row():
    frame = pd.DataFrame({"g": ["a", None, "b"], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(GroupingError, match=r"'g' is missing at row 1"):
        GroupIndex.from_data(frame, "g")


def test_one_row_per_group_is_refused():
    frame = pd.DataFrame({"g": ["a", "b", "c"], "y": [1.0, 2.0, 3.0]})
    idx = GroupIndex.from_data(frame, "g")
    with pytest.raises(GroupingError, match=r"as many levels as rows \(3\)"):
        check_grouping(idx, 3)


def test_text_variable_cannot_be_averaged():
    with pytest.raises(DataTypeError, match=r"Cannot average 'sector'"):
        mlteach.group_mean("sector", "school", mlteach.load("hsb82"))


def test_unknown_group_column():
    with pytest.raises(UnknownVariableError, match=r"'schools' \(did you mean 'school'\?\)"):
        mlteach.center("ses", "schools", mlteach.load("hsb82"))


def test_fixed_design_drops_rows_with_missing_extra_columns():
    data = mlteach.load("grunfeld").astype({"firm": float})
    data.loc[[0, 1], "firm"] = np.nan
    with pytest.warns(mlteach.errors.MissingDataWarning, match="Dropped 2 of 200"):
        design = fixed_design("inv ~ value", data, extra=["firm"])
    assert design.nobs == 198 and 0 not in design.index
