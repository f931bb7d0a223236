"""The data loader: every shipped data set loads with the documented shape and types."""

import pandas as pd
import pytest

import mlteach
from mlteach.errors import UnknownDatasetError

SHAPES = {
    "hsb82": (7185, 8), "sleepstudy": (180, 3), "dyestuff": (30, 2), "contraception": (1934, 6),
    "grunfeld": (200, 5), "gasoline": (342, 6),
}


@pytest.mark.parametrize("name,shape", SHAPES.items())
def test_shapes(name, shape):
    assert mlteach.load(name).shape == shape


def test_every_listed_dataset_loads_and_is_documented():
    from importlib import resources
    provenance = resources.files("mlteach.data").joinpath("PROVENANCE.md").read_text()
    for name in mlteach.list_datasets():
        frame = mlteach.load(name)
        assert len(frame) > 0
        assert f"`{name}" in provenance, f"{name} has no provenance entry"


def test_grouping_columns_are_categoricals_in_numeric_order():
    hsb = mlteach.load("hsb82")
    assert isinstance(hsb["school"].dtype, pd.CategoricalDtype)
    assert hsb["school"].nunique() == 160
    cats = [int(c) for c in hsb["school"].cat.categories]
    assert cats == sorted(cats)
    contra = mlteach.load("contraception")
    assert list(contra["livch"].cat.categories) == ["0", "1", "2", "3+"]
    assert [int(c) for c in contra["district"].cat.categories][:3] == [1, 2, 3]
    assert pd.api.types.is_float_dtype(hsb["mAch"])


def test_hsb_school_means_match_the_shipped_meanses():
    hsb = mlteach.load("hsb82")
    pd.testing.assert_series_equal(mlteach.group_mean("ses", "school", hsb), hsb["meanses"],
                                   check_names=False, rtol=1e-9)


def test_unknown_dataset_lists_the_available_ones():
    with pytest.raises(UnknownDatasetError, match=r"no data set called 'hsb'.*Did you mean 'hsb82'\?.*Available data sets: .*sleepstudy"):
        mlteach.load("hsb")
