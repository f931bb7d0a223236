"""Random effects for new data: match each row's groups to the fitted levels (by value).

Shared by the LMM and GLMM results. A group stored as 1.0 in the fitted data is the group 1
of new data; text and numbers are never matched to each other; for a nested or interaction
factor every component must match. Unseen or missing groups get random effects 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlteach.design import check_columns
from mlteach.errors import GroupingError, MlteachWarning, warn
from mlteach.mixed.structure import ReStructure


def random_part(structure: ReStructure, ranef_blocks: list[np.ndarray], fitted: pd.DataFrame,
                newdata: pd.DataFrame, allow_new_levels: bool = True) -> np.ndarray:
    """Σ_k z_ik' b̂_{k, j(i)} for every row of `newdata` (0 for groups not seen in fitting).

    Unseen or missing groups are counted in an `MlteachWarning` per grouping factor, or, when
    `allow_new_levels` is False, are a `GroupingError` naming examples.
    """
    out = np.zeros(len(newdata))
    unmatched: dict[str, dict] = {}
    for block, b in zip(structure.blocks, ranef_blocks):
        check_columns(newdata, list(block.term.factor), "grouping variable")
        Z = block.encode(newdata)
        pos, missing, report = match_levels(block, fitted, newdata)
        seen = pos >= 0
        out[seen] += np.einsum("ik,ik->i", Z[seen], b[pos[seen]])
        if not seen.all():
            unmatched.setdefault(block.factor, {"pos": pos, "missing": missing, **report})
    for factor, info in unmatched.items():
        if not allow_new_levels:
            raise GroupingError(
                f"newdata has levels of {factor!r} the model has not seen (e.g. "
                f"{', '.join(info['examples']) or 'missing values'}): their random effects are "
                f"unknown. Predict with include_random=False (a typical group), or with "
                f"allow_new_levels=True (random effects 0 for the unseen groups only).")
        warn_unmatched(factor, info)
    return out


def _key(value: object) -> tuple[str, object]:
    """A value's kind and value, so that 1 and 1.0 are the same group but '1' is not 1."""
    if isinstance(value, (bool, np.bool_)):
        return ("b", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    return ("o", value)


_KIND_WORDS = {"n": "numbers", "s": "text", "b": "True/False values", "o": "other values"}


def match_levels(block, fitted: pd.DataFrame, newdata: pd.DataFrame
                  ) -> tuple[np.ndarray, np.ndarray, dict]:
    """For each row of `newdata`, the position of its group among `block`'s fitted levels.

    Returns (pos, missing, report): pos is −1 for a group not seen in fitting or a missing
    one; missing marks rows with a missing value in some grouping column; report holds
    examples of unseen groups and a hint when a column holds another kind of value (text
    against numbers) than in fitting.
    """
    cols = list(block.term.factor)
    codes = block.groups.codes
    n_levels = block.groups.n_groups
    first = np.unique(codes, return_index=True)[1]      # a fitted row of each level
    n = len(newdata)
    level_code = np.zeros(n_levels, dtype=np.int64)
    row_code = np.zeros(n, dtype=np.int64)
    matched = np.ones(n, dtype=bool)
    missing = np.zeros(n, dtype=bool)
    hints = []
    for c in cols:
        fitted_keys = [_key(v) for v in fitted[c].to_numpy(dtype=object)[first]]
        distinct = {k: j for j, k in enumerate(dict.fromkeys(fitted_keys))}
        width = len(distinct) + 1
        level_code = level_code * width + np.array([distinct[k] for k in fitted_keys])
        values = newdata[c]
        na = values.isna().to_numpy()
        uniq_codes, uniq = pd.factorize(values.to_numpy(dtype=object))
        uniq_keys = [_key(v) for v in uniq]
        lookup = np.array([distinct.get(k, -1) for k in uniq_keys] + [-1], dtype=np.int64)
        col_code = lookup[uniq_codes]          # factorize's −1 (missing) picks the last, −1
        missing |= na
        matched &= col_code >= 0
        row_code = row_code * width + np.maximum(col_code, 0)
        new_kinds = {k[0] for k, j in zip(uniq_keys, lookup) if j < 0}
        fitted_kinds = {k[0] for k in distinct}
        if new_kinds and not (new_kinds & fitted_kinds):
            hints.append(
                f"newdata's {c!r} holds {' and '.join(_KIND_WORDS[k] for k in sorted(new_kinds))}"
                f" where the fitted {c!r} holds "
                f"{' and '.join(_KIND_WORDS[k] for k in sorted(fitted_kinds))}, and the two "
                f"are never matched: convert the column to the fitted kind first")
    pos = pd.Index(level_code).get_indexer(row_code)
    pos[~matched | missing] = -1
    unseen = (pos < 0) & ~missing
    examples = []
    if unseen.any():
        rows = newdata.loc[unseen, cols].drop_duplicates().head(3)
        examples = [":".join(str(v) for v in r) for r in rows.itertuples(index=False)]
    return pos, missing, {"examples": examples, "hints": hints}


def warn_unmatched(factor: str, info: dict) -> None:
    """Count the rows of newdata whose `factor` group was not seen or is missing."""
    missing = info["missing"]
    n_new = int(((info["pos"] < 0) & ~missing).sum())
    n_missing = int(missing.sum())
    parts = []
    if n_new:
        rows = "1 row of newdata has" if n_new == 1 else f"{n_new} rows of newdata have"
        level = "a level" if n_new == 1 else "levels"
        parts.append(f"{rows} {level} of {factor!r} not seen in fitting "
                     f"(e.g. {', '.join(info['examples'])})")
    if n_missing:
        of = "" if n_new else " of newdata"
        rows = f"1 row{of} has" if n_missing == 1 else f"{n_missing} rows{of} have"
        parts.append(f"{rows} a missing {factor!r}")
    message = (" and ".join(parts) + ": their predictions use random effects of 0 for "
               f"{factor!r} (the population average), as for a new group.")
    if info["hints"]:
        message += " Note: " + "; ".join(info["hints"]) + "."
    message += " Pass include_random=False to silence this (population average for all rows)."
    warn(message, MlteachWarning)


__all__ = ["random_part", "match_levels", "warn_unmatched"]
