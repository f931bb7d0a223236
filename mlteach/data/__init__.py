"""The data sets the book uses, shipped with the package (see PROVENANCE.md in this folder).

>>> import mlteach
>>> hsb = mlteach.load("hsb82")
>>> hsb.shape
(7185, 8)
"""

from __future__ import annotations

import difflib
from importlib import resources

import pandas as pd

from mlteach.errors import UnknownDatasetError

# Columns that identify groups or categories, read as categoricals with levels in sorted order
# (R's default), so group labels print as in lme4 and plm. Everything else keeps its CSV type.
_CATEGORICAL: dict[str, list[str]] = {
    "hsb82": ["school", "minrty", "sx", "sector"],
    "sleepstudy": ["Subject"],
    "dyestuff": ["Batch"],
    "dyestuff2": ["Batch"],
    "contraception": ["woman", "district", "use", "livch", "urban"],
    "grunfeld": [],
    "gasoline": ["country"],
    "pastes": ["batch", "cask", "sample"],
    "penicillin": ["plate", "sample"],
    "cbpp": ["herd", "period"],
    "grouseticks": ["INDEX", "BROOD", "LOCATION", "YEAR"],
    "verbagg": ["Gender", "item", "resp", "id", "btype", "situ", "mode", "r2"],
    "guimmun": ["kid", "mom", "comm", "immun", "kid2p", "mom25p", "ord", "ethn", "momEd", "husEd",
                "momWork", "rural"],
}

# Columns holding numeric identifiers that must sort numerically, not as text.
_NUMERIC_LEVELS = {("hsb82", "school"), ("sleepstudy", "Subject"), ("contraception", "woman"),
                   ("contraception", "district"), ("cbpp", "herd"), ("cbpp", "period"),
                   ("grouseticks", "INDEX"), ("grouseticks", "BROOD"), ("grouseticks", "LOCATION"),
                   ("grouseticks", "YEAR"), ("verbagg", "id"), ("guimmun", "kid"),
                   ("guimmun", "mom"), ("guimmun", "comm")}


def list_datasets() -> list[str]:
    """Names of the shipped data sets, for `mlteach.load`."""
    files = resources.files(__name__).iterdir()
    return sorted(f.name[:-4] for f in files if f.name.endswith(".csv"))


def load(name: str) -> pd.DataFrame:
    """Load a shipped data set as a DataFrame with grouping and category columns as categoricals.

    Parameters
    ----------
    name : str
        One of `mlteach.list_datasets()`, e.g. ``"hsb82"``, ``"sleepstudy"``, ``"grunfeld"``.

    Notes
    -----
    Sources, variables and units are on the book's *Data sets* page and in ``PROVENANCE.md``
    beside the CSV files. Category levels are in sorted order (numerically for numeric ids),
    as R orders factor levels, so that group labels and contrasts match lme4 and plm.
    """
    available = list_datasets()
    if name not in available:
        close = difflib.get_close_matches(str(name), available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownDatasetError(
            f"mlteach has no data set called {name!r}.{hint} "
            f"Available data sets: {', '.join(available)}."
        )
    with resources.files(__name__).joinpath(f"{name}.csv").open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh)
    for col in _CATEGORICAL.get(name, []):
        if col not in frame.columns:
            continue
        values = frame[col]
        if (name, col) in _NUMERIC_LEVELS and pd.api.types.is_numeric_dtype(values):
            levels = [str(v) for v in sorted(values.unique())]
            frame[col] = pd.Categorical(values.astype(str), categories=levels)
        else:
            frame[col] = pd.Categorical(values.astype(str),
                                        categories=sorted(values.astype(str).unique()))
    return frame


__all__ = ["load", "list_datasets"]
