"""From a formula and a DataFrame to the arrays of a GLMM, checked at the door.

The model is  y_i | b ~ Binomial(m_i, p_i) or Poisson(μ_i),
              g(μ_i) = η_i = x_i'β + o_i + z_i'b,   b ~ N(0, Σ_θ),
written in lme4's syntax (`mlteach.mixed.formula`): ``y ~ x + (1 | g)``, random slopes
``(1 + x | g)``, ``||``, nested ``(1 | a/b)`` and crossed ``(1 | a) + (1 | b)`` terms,
``offset()`` terms and a ``cbind(successes, failures)`` outcome.

`prepare` returns a `GLMMData` for one random intercept of one grouping column with the
canonical link (the batched one-dimensional path, where adaptive quadrature is available) and a
`MixedGLMMData` with the shared random-effects structure for everything else.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse

from mlteach.design import Design, GroupIndex, check_columns, check_grouping, fixed_design
from mlteach.errors import (DataTypeError, FormulaSyntaxError,
                            MlteachError, SeparationWarning, user_stacklevel)
from mlteach.glmm.family import Family
from mlteach.mixed.formula import MixedFormula, parse_mixed_formula
from mlteach.mixed.offset import Offset, build_offset, offset_variables
from mlteach.mixed.structure import ReStructure, build_structure, random_variables

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
    offset_terms: Offset | None = field(default=None, repr=False)

    def group_sum(self, values: np.ndarray) -> np.ndarray:
        """Σ over the rows of each group, for a vector (G,) or each column of a matrix (G, k).

        With the rows of each group contiguous (see `contiguous`) this is a segmented sum
        (``np.add.reduceat``, ten times faster than a scatter-add on a million rows).
        """
        starts = self._segment_starts
        if starts is not None:
            return np.add.reduceat(values, starts, axis=0)
        if values.ndim == 1:
            return np.bincount(self.groups.codes, weights=values, minlength=self.groups.n_groups)
        return np.asarray(self.Zt @ values)

    def expand(self, per_group: np.ndarray) -> np.ndarray:
        """One value per row from one per group (``per_group[codes]``; a repeat when the rows
        of each group are contiguous, five times faster)."""
        if self._segment_starts is not None:
            return np.repeat(per_group, self._group_sizes)
        return per_group[self.groups.codes]

    @cached_property
    def _group_sizes(self) -> np.ndarray:
        return np.bincount(self.groups.codes, minlength=self.groups.n_groups)

    @cached_property
    def _segment_starts(self) -> np.ndarray | None:
        """First row of each group when groups 0, 1, ..., G−1 occupy consecutive row blocks."""
        codes = self.groups.codes
        if codes.size == 0 or codes[0] != 0 or np.any(np.diff(codes) < 0):
            return None
        starts = np.flatnonzero(np.diff(codes)) + 1
        if starts.size != self.groups.n_groups - 1:       # a group without rows
            return None
        return np.concatenate(([0], starts))

    def contiguous(self) -> "GLMMData":
        """The same model with its rows sorted by group (stable), for fast group sums.

        Only the order of the rows changes (group codes, and so the conditional modes, stay):
        estimation may run on this copy while fitted values are reported for `self`.
        """
        if self._segment_starts is not None:
            return self
        order = np.argsort(self.groups.codes, kind="stable")
        groups = GroupIndex(self.groups.name, self.groups.codes[order], self.groups.levels)
        return replace(self, y=self.y[order], trials=self.trials[order], X=self.X[order],
                       offset=self.offset[order], const=self.const[order], groups=groups,
                       Zt=None if self.Zt is None else self.Zt[:, order])


@dataclass(frozen=True)
class MixedGLMMData:
    """A GLMM with any random-effects structure, rows in the order of the data used.

    y : successes (binomial) or counts (Poisson); trials : m_i; X : fixed-effects matrix;
    offset : known part of η (the ``offset=`` column plus the formula's ``offset()`` terms);
    const : the η-free part of each row's log-likelihood; structure : the random effects.
    """

    family: Family
    y: np.ndarray
    trials: np.ndarray
    X: np.ndarray
    offset: np.ndarray
    const: np.ndarray
    structure: ReStructure = field(repr=False)
    design: Design = field(repr=False)
    formula: str = ""
    outcome_note: str = ""
    trials_name: str | None = None
    offset_name: str | None = None
    offset_terms: Offset | None = field(default=None, repr=False)


def prepare(formula: str, data: pd.DataFrame, family: Family, trials: str | None,
            offset: str | None, weights: str | None = None) -> GLMMData | MixedGLMMData:
    """Parse, encode and check a GLMM, returning its arrays (errors name rows and columns).

    The outcome's number of trials comes from ``trials=`` (a column), a ``cbind(s, f)``
    response (trials s + f) or, for a proportion outcome, ``weights=`` (trials w, successes
    y·w, as glmer's binomial ``weights``); otherwise each row is one trial.
    """
    parsed = parse_mixed_formula(formula, without="a GLM (statsmodels' glm)")
    if not isinstance(data, pd.DataFrame):
        raise DataTypeError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    for role, name in (("trials", trials), ("offset", offset), ("weights", weights)):
        if name is not None and not isinstance(name, str):
            raise DataTypeError(f"{role} must be a column name (a string), got {name!r}.")
    if family.name != "binomial":
        for role, name in (("trials", trials), ("weights", weights)):
            if name is not None:
                raise DataTypeError(
                    f"{role}={name!r} only applies to the binomial family (successes out of "
                    f"trials); a Poisson model takes counts, with offset= or offset(log("
                    f"exposure)) in the formula for exposure.")
        if parsed.cbind is not None:
            raise DataTypeError(
                f"cbind(successes, failures) is a binomial outcome; with family='poisson' "
                f"the outcome is one column of counts.")
    given = [n for n in (trials, weights) if n is not None] + (["cbind"] if parsed.cbind else [])
    if len(given) > 1:
        raise DataTypeError(
            "Give the number of trials one way only: trials='<column>', a "
            "cbind(successes, failures) outcome, or weights= for a proportion outcome.")
    if parsed.cbind is not None:
        trials_cols = offset_variables((parsed.cbind[1],))
    else:
        trials_cols = [c for c in (trials, weights) if c is not None]
    extra = random_variables(parsed) + trials_cols + ([offset] if offset is not None else [])
    extra = list(dict.fromkeys(extra))
    check_columns(data, extra)
    counted = trials is not None or parsed.cbind is not None
    data, note = _code_binary_outcome(parsed.fixed, data, family, trials if counted else None)
    design = fixed_design(parsed.fixed, data, extra=extra,
                          context="the generalized linear mixed model")
    used = design.data
    y = design.y
    trials_name = trials
    if parsed.cbind is not None:
        if parsed.cbind[1] in used.columns:
            failures = _numeric_column(used, parsed.cbind[1], "failures")
        else:   # an expression such as size - incidence
            failures = build_offset((parsed.cbind[1],), used, label="failures").values(
                used, "the data")
        m = y + failures
        trials_name = f"{parsed.cbind[0]} + {parsed.cbind[1]}"
    elif weights is not None:
        m = _numeric_column(used, weights, "weights")
        y = _successes_from_proportion(y, m, design, weights)
        trials_name = weights
    elif trials is not None:
        m = _numeric_column(used, trials, "trials")
    else:
        m = np.ones_like(y)
    off = np.zeros_like(y) if offset is None else _numeric_column(used, offset, "offset")
    terms = build_offset(parsed.offsets, used) if parsed.offsets else None
    if terms is not None:
        off = off + terms.values(used, "the data")
    counted = counted or weights is not None
    _check_outcome(y, m, design, family, trials_name if counted else None)
    _check_not_constant(y, m, design, family, trials_name if counted else None)
    if _one_random_intercept(parsed) and family.canonical:
        group = parsed.random[0].factor[0]
        groups = GroupIndex.from_data(used, group)
        check_grouping(groups, design.nobs,
                       allow_one_per_group=(family.name == "poisson" or counted))
        if family.name == "binomial":
            _warn_constant_groups(y, m, groups)
        n = design.nobs
        Zt = sparse.csr_matrix((np.ones(n), (groups.codes, np.arange(n))),
                               shape=(groups.n_groups, n))
        return GLMMData(family=family, y=y, trials=m, X=design.X, offset=off, groups=groups,
                        const=family.constant(y, m), design=design, formula=formula,
                        outcome_note=note, trials_name=trials_name, offset_name=offset, Zt=Zt,
                        offset_terms=terms)
    structure = build_structure(parsed.random, used, allow_one_per_group=True)
    return MixedGLMMData(family=family, y=y, trials=m, X=design.X, offset=off,
                         const=family.constant(y, m), structure=structure, design=design,
                         formula=formula, outcome_note=note, trials_name=trials_name,
                         offset_name=offset, offset_terms=terms)


def _one_random_intercept(parsed: MixedFormula) -> bool:
    """One random-effect term, an intercept only, grouped by one column: ``(1 | g)``."""
    return (len(parsed.random) == 1 and parsed.random[0].expr.replace(" ", "") == "1"
            and len(parsed.random[0].factor) == 1)


def _successes_from_proportion(y: np.ndarray, w: np.ndarray, design: Design, name: str
                               ) -> np.ndarray:
    """glmer's binomial ``weights``: y is a proportion of w trials; successes y·w (whole)."""
    bad = (y < 0) | (y > 1)
    if bad.any():
        raise DataTypeError(
            f"With weights={name!r} the binomial outcome {design.response!r} is a proportion "
            f"of successes between 0 and 1; {_first_bad(design, bad)} has {y[bad][0]:g}. For "
            f"counts of successes pass trials={name!r} instead.")
    s = y * w
    bad = np.abs(s - np.round(s)) > 1e-8 * np.maximum(w, 1.0)
    if bad.any():
        raise DataTypeError(
            f"With weights={name!r}, {design.response!r} × {name!r} must be a whole number of "
            f"successes; {_first_bad(design, bad)} gives {s[bad][0]:g}. Check that the "
            f"weights are the numbers of trials behind each proportion.")
    return np.round(s)


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
