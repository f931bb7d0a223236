"""From a formula and a DataFrame to the arrays of a random-intercept GLMM, checked at the door.

The model is  y_ij | b_j ~ Binomial(m_ij, p_ij) or Poisson(μ_ij),
              η_ij = x_ij'β + offset_ij + b_j,   b_j ~ N(0, σ²),
written ``y ~ x1 + x2 + (1 | g)``. Only one random intercept is supported; everything that
is not is refused here with a message saying what is.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from mlteach.design import (
    Design, GroupIndex, check_columns, check_grouping, fixed_design, r_powers,
)
from mlteach.errors import (DataTypeError, FormulaSyntaxError,
                            MlteachError, SeparationWarning, user_stacklevel)
from mlteach.glmm.family import Family

_BAR_TERM = re.compile(r"\(([^()]*\|[^()]*)\)")
_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class RandomInterceptFormula:
    """``y ~ fixed + (1 | group)`` split into the fixed formula and the grouping column."""

    fixed: str
    group: str


def parse_random_intercept(formula: str) -> RandomInterceptFormula:
    """Split off the one ``(1 | group)`` term, refusing every other random-effects form."""
    if not isinstance(formula, str) or "~" not in formula:
        raise FormulaSyntaxError(
            f"The formula must be a string such as 'y ~ x + (1 | group)', got {formula!r}.")
    terms = _BAR_TERM.findall(formula)
    supported = ("mlteach.glmm supports exactly one random intercept, written '(1 | group)' "
                 "with a single grouping column")
    if not terms:
        raise FormulaSyntaxError(
            f"The formula {formula!r} has no random-effects term. {supported}, e.g. "
            f"'use ~ age + urban + (1 | district)'. For a model without group effects fit an "
            f"ordinary GLM (statsmodels.formula.api.glm).")
    if len(terms) > 1:
        raise FormulaSyntaxError(
            f"The formula {formula!r} has {len(terms)} random-effects terms "
            f"({', '.join('(' + t.strip() + ')' for t in terms)}). {supported}; crossed or "
            f"nested random effects are not available for GLMMs here.")
    inner = terms[0]
    if "||" in inner:
        raise FormulaSyntaxError(
            f"'({inner.strip()})' uses '||' (uncorrelated random slopes). {supported}.")
    lhs, rhs = (part.strip() for part in inner.split("|", 1))
    if lhs.replace(" ", "") not in {"1"}:
        raise FormulaSyntaxError(
            f"'({inner.strip()})' asks for random slopes or a random term other than the "
            f"intercept ({lhs!r} before the bar). {supported}: random slopes are not "
            f"implemented for GLMMs.")
    if not _NAME.match(rhs):
        raise FormulaSyntaxError(
            f"'({inner.strip()})' groups by {rhs!r}, which is not a single column name. "
            f"{supported}; for nested groups make one combined column first, e.g. "
            f"data['school_class'] = data['school'].astype(str) + ':' + data['class'].astype(str).")
    fixed = _BAR_TERM.sub(" ", formula)
    left, right = fixed.split("~", 1)
    right = re.sub(r"\+\s*\+", "+", right).strip()
    right = re.sub(r"^\+|\+$", "", right).strip() or "1"
    right = r_powers(right)  # I(age^2) is a power, as in R (the term is named 'I(age ** 2)')
    return RandomInterceptFormula(fixed=f"{left.strip()} ~ {right}", group=rhs)


@dataclass(frozen=True)
class GLMMData:
    """Everything a fit needs, with rows in the order of the data used.

    y : successes (binomial) or counts (Poisson); trials : m_i (ones for a 0/1 outcome);
    X : fixed-effects matrix; offset : known part of η; groups : which group each row is in;
    Zt : the (groups × rows) 0/1 matrix whose products give per-group sums;
    const : the η-free part of each row's log-likelihood.
    """

    family: Family
    y: np.ndarray
    trials: np.ndarray
    X: np.ndarray
    offset: np.ndarray
    groups: GroupIndex
    const: np.ndarray
    design: Design = field(repr=False)
    formula: str = ""
    outcome_note: str = ""
    trials_name: str | None = None
    offset_name: str | None = None
    Zt: sparse.csr_matrix = field(default=None, repr=False)

    def group_sum(self, values: np.ndarray) -> np.ndarray:
        """Σ over the rows of each group, for a vector (G,) or each column of a matrix (G, k)."""
        if values.ndim == 1:
            return np.bincount(self.groups.codes, weights=values, minlength=self.groups.n_groups)
        return np.asarray(self.Zt @ values)


def prepare(formula: str, data: pd.DataFrame, family: Family, trials: str | None,
            offset: str | None) -> GLMMData:
    """Parse, encode and check a GLMM, returning its arrays (errors name rows and columns)."""
    parsed = parse_random_intercept(formula)
    if not isinstance(data, pd.DataFrame):
        raise DataTypeError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    for role, name in (("trials", trials), ("offset", offset)):
        if name is not None and not isinstance(name, str):
            raise DataTypeError(f"{role} must be a column name (a string), got {name!r}.")
    if trials is not None and family.name != "binomial":
        raise DataTypeError(
            f"trials={trials!r} only applies to the binomial family (successes out of trials); "
            f"a Poisson model takes counts, with offset= for exposure.")
    extra = [parsed.group] + [c for c in (trials, offset) if c is not None]
    check_columns(data, extra)
    data, note = _code_binary_outcome(parsed.fixed, data, family, trials)
    design = fixed_design(parsed.fixed, data, extra=extra,
                          context="the generalized linear mixed model")
    used = design.data
    y = design.y
    if trials is None:
        m = np.ones_like(y)
    else:
        m = _numeric_column(used, trials, "trials")
    off = np.zeros_like(y) if offset is None else _numeric_column(used, offset, "offset")
    _check_outcome(y, m, design, family, trials)
    _check_not_constant(y, m, design, family, trials)
    groups = GroupIndex.from_data(used, parsed.group)
    check_grouping(groups, design.nobs,
                   allow_one_per_group=(family.name == "poisson" or trials is not None))
    if family.name == "binomial":
        _warn_constant_groups(y, m, groups)
    n = design.nobs
    Zt = sparse.csr_matrix((np.ones(n), (groups.codes, np.arange(n))),
                           shape=(groups.n_groups, n))
    return GLMMData(family=family, y=y, trials=m, X=design.X, offset=off, groups=groups,
                    const=family.constant(y, m), design=design, formula=formula,
                    outcome_note=note, trials_name=trials, offset_name=offset, Zt=Zt)


def _code_binary_outcome(fixed: str, data: pd.DataFrame, family: Family, trials: str | None
                         ) -> tuple[pd.DataFrame, str]:
    """Code a two-level categorical outcome as 0/1 (second level = 1) and say so."""
    name = fixed.split("~", 1)[0].strip()
    if name not in data.columns:
        return data, ""
    col = data[name]
    if pd.api.types.is_bool_dtype(col):
        return data.assign(**{name: col.astype(float)}), f"{name}: True coded 1, False coded 0"
    if pd.api.types.is_numeric_dtype(col):
        return data, ""
    if isinstance(col.dtype, pd.CategoricalDtype):
        levels = [lv for lv in col.cat.categories if (col == lv).any()]
    else:
        levels = sorted(map(str, pd.unique(col.dropna())))
        col = col.astype(object).where(col.isna(), col.astype(str))
    if family.name != "binomial" or trials is not None or len(levels) != 2:
        what = ("a Poisson model needs counts" if family.name != "binomial" else
                "with trials= the outcome must count successes" if trials is not None else
                f"a binary model needs exactly two levels, found {len(levels)}")
        raise DataTypeError(
            f"The outcome {name!r} is not numeric (levels {', '.join(map(repr, levels[:6]))}) "
            f"and {what}. Recode it, e.g. data['{name}01'] = (data['{name}'] == "
            f"{levels[-1]!r}).astype(int).")
    coded = pd.Series(np.where(col.isna(), np.nan, (col == levels[1]).astype(float)),
                      index=data.index)
    note = f"{name}: {levels[1]!r} coded 1, {levels[0]!r} coded 0"
    return data.assign(**{name: coded}), note


def _numeric_column(used: pd.DataFrame, name: str, role: str) -> np.ndarray:
    col = used[name]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise DataTypeError(f"The {role} column {name!r} must be numeric, got {col.dtype}.")
    return col.to_numpy(dtype=float)


def _first_bad(design: Design, bad: np.ndarray) -> str:
    first = design.index[bad][0]
    label = repr(first) if isinstance(first, str) else str(first)
    more = f" (and {bad.sum() - 1} more rows)" if bad.sum() > 1 else ""
    return f"row {label}{more}"


def _check_outcome(y: np.ndarray, m: np.ndarray, design: Design, family: Family,
                   trials: str | None) -> None:
    name = design.response
    if family.name == "poisson":
        bad = y < 0
        if bad.any():
            raise DataTypeError(
                f"The Poisson outcome {name!r} must be a count (0, 1, 2, ...); it is negative "
                f"at {_first_bad(design, bad)}: {y[bad][0]:g}. Counts cannot be negative.")
        bad = y != np.round(y)
        if bad.any():
            raise DataTypeError(
                f"The Poisson outcome {name!r} must be whole counts; {_first_bad(design, bad)} "
                f"has {y[bad][0]:g}. For rates, model the count with offset=<log exposure>.")
        return
    if trials is None:
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise DataTypeError(
                f"The binary outcome {name!r} must be 0 or 1 (or a two-level category); "
                f"{_first_bad(design, bad)} has {y[bad][0]:g}. If {name!r} counts successes out "
                f"of a number of trials, pass trials='<column of trials>'.")
        return
    bad = (m < 1) | (m != np.round(m))
    if bad.any():
        raise DataTypeError(
            f"The trials column {trials!r} must hold whole numbers of at least 1; "
            f"{_first_bad(design, bad)} has {m[bad][0]:g}. Drop rows with no trials.")
    bad = (y < 0) | (y != np.round(y))
    if bad.any():
        raise DataTypeError(
            f"The outcome {name!r} must count successes (0, 1, 2, ...); "
            f"{_first_bad(design, bad)} has {y[bad][0]:g}.")
    bad = y > m
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise DataTypeError(
            f"The outcome {name!r} has more successes than trials ({trials!r}) at "
            f"{_first_bad(design, bad)}: {y[i]:g} successes out of {m[i]:g} trials. Check that "
            f"{trials!r} is the total number of trials, not the number of failures.")


def _check_not_constant(y: np.ndarray, m: np.ndarray, design: Design, family: Family,
                        trials: str | None) -> None:
    """`MlteachError` when the outcome is the same in every row: there is nothing to estimate.

    A Poisson outcome that is 0 everywhere puts the rate's maximum-likelihood estimate at 0,
    its log (the linear predictor) at minus infinity; a binary outcome that is all 0 or all 1
    does the same to the log-odds. The optimiser would otherwise fail inside linear algebra.
    """
    name, n = design.response, design.nobs
    if family.name == "poisson":
        if np.all(y == 0):
            raise MlteachError(
                f"The Poisson outcome {name!r} is 0 in every one of the {n} rows used, so a "
                f"Poisson rate cannot be estimated: the best-fitting rate is 0, whose log (the "
                f"model's scale) is minus infinity, and no coefficient or group variance can "
                f"be estimated. Check that {name!r} is the right column and that the rows "
                f"used (after dropping missing values) are the ones you meant.")
        return
    what = (f"every one of the {int(m.sum())} trials ({trials!r}) " if trials is not None
            else f"{name!r} ")
    for value, word, outcome in ((0, "failed" if trials else "is 0", "0"),
                                 (1, "succeeded" if trials else "is 1", "1")):
        if (value == 0 and np.all(y == 0)) or (value == 1 and np.all(y == m)):
            subject = (f"In the {n} rows used {what}{word}" if trials is not None
                       else f"The binary outcome {what}{word} in every one of the {n} rows used")
            raise MlteachError(
                f"{subject}, so there is nothing for a logistic model to explain: the "
                f"estimated probability of a 1 would be exactly {outcome}, its log-odds "
                f"{'minus' if value == 0 else 'plus'} infinity, and no coefficient or group "
                f"variance can be estimated. Check the outcome column and how it is coded "
                f"(which level is 1), and that the rows used are the ones you meant.")


def _warn_constant_groups(y: np.ndarray, m: np.ndarray, groups: GroupIndex) -> None:
    """Warn about groups in which every trial succeeded or every trial failed.

    Binomial only. A Poisson group with only zero counts is the analogous case, but in count
    data (ticks on grouse, rare events) it is ordinary rather than a sign of trouble, so it
    is not flagged; its conditional mode is shrunk toward the average in the same way.
    """
    succ = np.bincount(groups.codes, weights=y, minlength=groups.n_groups)
    tot = np.bincount(groups.codes, weights=m, minlength=groups.n_groups)
    zero, full = succ == 0, succ == tot
    if not (zero | full).any():
        return
    parts = []
    for label, mask in (("all 0", zero), ("all 1", full)):
        if mask.any():
            names = [repr(groups.levels[j]) for j in np.flatnonzero(mask)[:5]]
            more = f" and {mask.sum() - 5} more" if mask.sum() > 5 else ""
            parts.append(f"{label} in {', '.join(names)}{more}")
    k = int((zero | full).sum())
    warnings.warn(
        f"In {k} of {groups.n_groups} groups of {groups.name!r} every outcome is the same "
        f"({'; '.join(parts)}): on their own these groups would push their intercept to "
        f"minus or plus infinity (separation within a group). The model still fits: the normal "
        f"distribution of the group intercepts pulls their conditional modes toward the average "
        f"(shrinkage), but their predicted intercepts rest on that assumption alone.",
        SeparationWarning, stacklevel=user_stacklevel())
