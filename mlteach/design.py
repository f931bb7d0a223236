"""Design matrices, grouping indexes and group means: the pieces every estimator shares.

The fixed part of a model formula is parsed and encoded by formulaic; this module adds what
multilevel models need around it: checks at the door (unknown variables, text outcomes, missing
values, perfect collinearity), the grouping index, and the group means behind within/between
decompositions, group-mean centring and the Mundlak device (book chapters 1 and 3).
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from formulaic import Formula, ModelSpec, model_matrix
from formulaic.errors import FactorEvaluationError, FormulaParsingError
from formulaic.errors import FormulaSyntaxError as _FormulaicSyntaxError

from mlteach.errors import (
    DataTypeError,
    FormulaSyntaxError,
    GroupingError,
    MissingDataWarning,
    RankDeficientError,
    UnknownVariableError,
)

# ----------------------------------------------------------------------------------------------
# Checks at the door
# ----------------------------------------------------------------------------------------------


def check_columns(data: pd.DataFrame, names: Iterable[str], role: str = "variable") -> None:
    """Raise `UnknownVariableError` naming every requested column that `data` lacks."""
    if not isinstance(data, pd.DataFrame):
        raise DataTypeError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    missing = [n for n in names if n not in data.columns]
    if not missing:
        return
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name, [str(c) for c in data.columns], n=1)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise UnknownVariableError(
        f"Unknown {role}{'s' if len(missing) > 1 else ''} {', '.join(parts)}: not a column of "
        f"the data. Columns are: {', '.join(map(str, data.columns))}."
    )


def r_powers(formula: str) -> str:
    """Read ``^`` inside a function call (``I(x^2)``, ``np.log(x^2)``) as a power, as R does.

    Python would evaluate ``x^2`` as a bitwise XOR: silently wrong for integer columns such as
    sleepstudy's ``Days``, an error for floats. Outside calls ``^`` keeps its formula meaning,
    interactions up to an order (``(a + b)^2``), as in R.
    """
    out: list[str] = []
    calls: list[bool] = []  # for each open parenthesis: does it open a function call?
    for ch in formula:
        if ch == "(":
            before = "".join(out).rstrip()
            calls.append(bool(before) and (before[-1].isalnum() or before[-1] in "_."))
            out.append(ch)
        elif ch == ")":
            if calls:
                calls.pop()
            out.append(ch)
        elif ch == "^" and any(calls):
            out.append("**")
        else:
            out.append(ch)
    return "".join(out)


def parse_formula(formula: str) -> Formula:
    """Parse a one-sided or two-sided formula with formulaic, re-raising syntax errors plainly.

    ``^`` inside a function call is read as a power, as in R (see `r_powers`).
    """
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaSyntaxError("The formula must be a non-empty string such as 'y ~ x + z'.")
    for r_name, python in _R_ONLY.items():
        if re.search(rf"(?<![\w.]){re.escape(r_name)}\s*\(", formula):
            raise FormulaSyntaxError(
                f"The formula {formula!r} uses R's {r_name}(), which Python formulas do not "
                f"know. Instead write {python}.")
    if re.search(r"~\s*\.\s*($|[-+])", formula):
        raise FormulaSyntaxError(
            f"The formula {formula!r} uses '.' for 'all other columns', which needs the data to "
            f"expand: name the predictors, e.g. ' + '.join(columns).")
    try:
        return Formula(r_powers(formula))
    except (_FormulaicSyntaxError, FormulaParsingError) as exc:
        raise FormulaSyntaxError(f"Could not parse the formula {formula!r}:\n{exc}") from None


# R functions that R users write in formulas, and what to write here instead.
_R_ONLY = {
    "factor": "C(x) to treat x as categorical",
    "as.factor": "C(x) to treat x as categorical",
    "relevel": "C(x, contr.treatment(base='level')) to choose the reference level",
    "as.numeric": "a numeric column made beforehand, e.g. data['x'].astype(float)",
}


_NOT_COLUMNS = {"np", "numpy", "pd", "C", "center", "scale", "I", "poly", "bs", "log", "exp"}


def formula_variables(formula: Formula) -> list[str]:
    """The data columns a parsed formula needs (numpy names such as 'np' excluded).

    formulaic reports a dotted column name (R style, ``IQ.verb``) by its first part, ``IQ``, as
    if it were attribute access; the dotted name is restored from the formula's text (a dotted
    name not followed by '(' is a column, as lme4 reads it; ``np.log(x)`` is a call).
    """
    names = set()
    for side in _sides(formula):
        names |= {str(v) for v in side.required_variables}
        for dotted in re.findall(r"(?<![\w.])([A-Za-z_]\w*(?:\.\w+)+)(?!\w|\.|\s*\()",
                                 str(side)):
            head = dotted.split(".")[0]
            if head in names and head not in _NOT_COLUMNS:
                names.discard(head)
                names.add(dotted)
    return sorted(n for n in names if n not in _NOT_COLUMNS)


def _sides(formula: Formula) -> list[Formula]:
    if hasattr(formula, "lhs") and hasattr(formula, "rhs"):
        return [formula.lhs, formula.rhs]
    return [formula]


def drop_missing(data: pd.DataFrame, columns: Sequence[str], context: str = "the model"
                 ) -> pd.DataFrame:
    """Return the rows of `data` complete on `columns`, warning with a count of what was dropped.

    Missing values are dropped listwise, as lme4, plm and statsmodels do by default, but never
    silently: the `MissingDataWarning` counts rows per variable and says how to take control.
    """
    columns = list(dict.fromkeys(columns))
    sub = data[columns]
    miss = sub.isna()
    bad = miss.any(axis=1).to_numpy()
    if bad.any():
        per_var = miss.sum()
        detail = ", ".join(f"{c}: {int(k)}" for c, k in per_var.items() if k)
        warnings.warn(
            f"Dropped {int(bad.sum())} of {len(data)} rows with missing values before fitting "
            f"{context} (missing per variable: {detail}); {int((~bad).sum())} rows remain. "
            f"To choose yourself, drop or impute them first, e.g. "
            f"data.dropna(subset={[c for c, k in per_var.items() if k]}).",
            MissingDataWarning,
            stacklevel=3,
        )
        if (~bad).sum() == 0:
            raise DataTypeError(f"Every row has a missing value in {detail}: nothing left to fit.")
        data = data.loc[~bad]
    for col in columns:
        values = data[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            arr = values.to_numpy(dtype=float)
            if not np.isfinite(arr).all():
                row = data.index[~np.isfinite(arr)][0]
                raise DataTypeError(
                    f"Variable {col!r} has infinite values (first at row {row!r}). Replace or "
                    f"drop them before fitting."
                )
    return data


# ----------------------------------------------------------------------------------------------
# The fixed part of a model
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """An encoded fixed-effects design: response, model matrix and how they were made.

    Attributes
    ----------
    y : (n,) float array, the response.
    X : (n, p) float array, the fixed-effects model matrix.
    terms : column names of X, as formulaic names them (``Intercept``, ``sector[T.Public]``).
    response : name of the response expression.
    index : the row labels of the data actually used (after dropping missing values).
    spec : formulaic's frozen spec of the right-hand side, to encode new data the same way.
    data : the rows used, for grouping variables and later reference.
    """

    y: np.ndarray
    X: np.ndarray
    terms: list[str]
    response: str
    index: pd.Index
    spec: ModelSpec = field(repr=False)
    data: pd.DataFrame = field(repr=False)

    @property
    def nobs(self) -> int:
        return int(self.X.shape[0])

    def encode(self, newdata: pd.DataFrame) -> np.ndarray:
        """Encode new data with the training-data spec (same levels, same contrasts)."""
        check_columns(newdata, [v for v in formula_variables(self.spec.formula)], "variable")
        return np.asarray(model_matrix(self.spec, newdata, na_action="raise"), dtype=float)


def fixed_design(
    formula: str,
    data: pd.DataFrame,
    extra: Sequence[str] = (),
    context: str = "the model",
    check_rank: bool = True,
) -> Design:
    """Encode the fixed part `y ~ x + ...` of a model on complete rows of `data`.

    `extra` names further columns (groups, clusters, time) whose missing values also drop a row,
    so that every array an estimator builds refers to the same rows.
    """
    parsed = parse_formula(formula)
    if not (hasattr(parsed, "lhs") and len(parsed.lhs) > 0):
        raise FormulaSyntaxError(
            f"The formula {formula!r} has no response: write it as 'y ~ x', outcome on the left."
        )
    variables = formula_variables(parsed)
    check_columns(data, list(variables) + list(extra))
    _check_response_type(parsed, data)
    used = drop_missing(data, list(variables) + list(extra), context)
    try:
        mm = model_matrix(parsed, used, na_action="raise")
    except _FormulaicSyntaxError as exc:
        raise FormulaSyntaxError(f"Could not parse the formula {formula!r}:\n{exc}") from None
    except FactorEvaluationError as exc:
        dotted = [v for v in variables if "." in v]
        hint = (f" Inside a function call a dotted column name must be quoted with backticks, "
                f"e.g. np.log(`{dotted[0]}`)." if dotted else "")
        raise FormulaSyntaxError(
            f"Could not evaluate a term of the formula {formula!r}: {exc}.{hint}") from None
    lhs, rhs = mm.lhs, mm.rhs
    if lhs.shape[1] != 1:
        raise DataTypeError(
            f"The response {str(parsed.lhs)!r} must be one numeric column; it encodes to "
            f"{lhs.shape[1]} columns ({', '.join(map(str, lhs.columns))}). Convert it to numbers "
            f"first, e.g. data['y01'] = (data['y'] == 'Yes').astype(int)."
        )
    X = np.asarray(rhs, dtype=float)
    terms = [str(c) for c in rhs.columns]
    if X.shape[1] == 0:
        raise FormulaSyntaxError(
            f"The formula {formula!r} has no fixed-effect columns; keep the intercept ('y ~ 1')."
        )
    if check_rank:
        assert_full_rank(X, terms)
    return Design(
        y=np.asarray(lhs, dtype=float).ravel(),
        X=X,
        terms=terms,
        response=str(lhs.columns[0]),
        index=used.index,
        spec=rhs.model_spec,
        data=used,
    )


def _check_response_type(parsed: Formula, data: pd.DataFrame) -> None:
    for name in parsed.lhs.required_variables:
        name = str(name)
        if name in data.columns:
            col = data[name]
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                example = ", ".join(map(repr, pd.unique(col.dropna())[:3]))
                raise DataTypeError(
                    f"The outcome {name!r} is not numeric (values such as {example}). A linear "
                    f"model needs numbers: recode it, e.g. data['{name}'] = "
                    f"(data['{name}'] == <level>).astype(int), or use mlteach.glmm for a binary "
                    f"outcome."
                )


def assert_full_rank(X: np.ndarray, terms: Sequence[str], rtol: float = 1e-9) -> None:
    """Raise `RankDeficientError` naming each column that is a combination of earlier ones.

    Uses the diagonal of R in X = QR: |R_jj| is the length of what column j adds beyond the
    columns before it, so a (relatively) zero R_jj marks column j as redundant.
    """
    n, p = X.shape
    if p > n:
        raise RankDeficientError(
            f"The model has {p} coefficients but only {n} rows: it cannot be estimated. "
            f"Use fewer terms or more data."
        )
    norms = np.linalg.norm(X, axis=0)
    R = np.linalg.qr(X, mode="r")
    diag = np.abs(np.diag(R))
    dependent = [j for j in range(p) if norms[j] == 0 or diag[j] <= rtol * max(norms[j], 1e-300)]
    if not dependent:
        return
    keep = [j for j in range(p) if j not in dependent]
    parts = []
    for j in dependent:
        if norms[j] == 0:
            parts.append(f"{terms[j]!r} is zero in every row")
            continue
        coef, *_ = np.linalg.lstsq(X[:, keep], X[:, j], rcond=None)
        scale = np.abs(coef).max()
        others = [terms[k] for k, c in zip(keep, coef) if abs(c) > 1e-8 * max(scale, 1e-300)]
        parts.append(f"{terms[j]!r} is an exact linear combination of " +
                     ", ".join(repr(o) for o in others))
    raise RankDeficientError(
        "The design matrix is rank deficient (perfect collinearity): " + "; ".join(parts) +
        ". Remove one of the collinear terms (for example a variable that is constant, or a "
        "group mean next to group dummies)."
    )


# ----------------------------------------------------------------------------------------------
# Grouping
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupIndex:
    """Which group each row belongs to: integer codes 0..G-1 and the group labels as strings.

    Build it with `GroupIndex.from_data(data, "school")` or, for the interaction of nested
    factors (classes within schools), `GroupIndex.from_data(data, ["school", "class"])`, whose
    labels are joined with ':' as lme4 does (``"1224:3"``).
    """

    name: str
    codes: np.ndarray
    levels: pd.Index

    @classmethod
    def from_data(cls, data: pd.DataFrame, by: str | Sequence[str]) -> "GroupIndex":
        """Index the rows of `data` by the column `by` (several columns: their interaction).

        Missing group values are an error naming the first such row.
        """
        cols = [by] if isinstance(by, str) else list(by)
        check_columns(data, cols, "grouping variable")
        for c in cols:
            if data[c].isna().any():
                row = data.index[data[c].isna().to_numpy()][0]
                raise GroupingError(
                    f"The grouping variable {c!r} is missing at row {row!r}. Every row needs a "
                    f"group: drop those rows or give them a group."
                )
        if len(cols) == 1:
            codes, levels = _factorize(data[cols[0]])
        else:
            keys = [_factorize(data[c]) for c in cols]
            combined = np.zeros(len(data), dtype=np.int64)
            for k, lev in keys:
                combined = combined * len(lev) + k
            uniq, codes = np.unique(combined, return_inverse=True)
            labels = []
            for u in uniq:
                parts = []
                for k, lev in reversed(keys):
                    parts.append(lev[u % len(lev)])
                    u //= len(lev)
                labels.append(":".join(reversed(parts)))
            levels = pd.Index(labels, dtype=object)
        return cls(name=":".join(cols), codes=np.asarray(codes, dtype=np.intp), levels=levels)

    @property
    def n_groups(self) -> int:
        return len(self.levels)

    @property
    def sizes(self) -> np.ndarray:
        """Number of rows in each group, in level order."""
        return np.bincount(self.codes, minlength=self.n_groups)

    def sum(self, x: np.ndarray) -> np.ndarray:
        """Per-group sums of a vector (G,) or of each column of a matrix (G, k)."""
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            return np.bincount(self.codes, weights=x, minlength=self.n_groups)
        return np.column_stack([np.bincount(self.codes, weights=x[:, j], minlength=self.n_groups)
                                for j in range(x.shape[1])]).reshape(self.n_groups, x.shape[1])

    def mean(self, x: np.ndarray) -> np.ndarray:
        """Per-group means, (G,) or (G, k)."""
        sums = self.sum(x)
        sizes = self.sizes
        return sums / (sizes if sums.ndim == 1 else sizes[:, None])

    def expand(self, per_group: np.ndarray) -> np.ndarray:
        """Copy per-group values to the rows of each group."""
        return np.asarray(per_group)[self.codes]

    def demean(self, x: np.ndarray) -> np.ndarray:
        """Subtract from each row its group's mean (the within transformation)."""
        return np.asarray(x, dtype=float) - self.expand(self.mean(x))


def _factorize(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and string labels, in category order or sorted order (as R's factor())."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.remove_unused_categories()
        return cats.cat.codes.to_numpy(np.int64), [str(c) for c in cats.cat.categories]
    uniq, codes = np.unique(values.to_numpy(), return_inverse=True)
    return codes.astype(np.int64), [str(u) for u in uniq]


def check_grouping(groups: GroupIndex, nobs: int, role: str = "grouping variable",
                   allow_one_per_group: bool = False) -> None:
    """Errors for a grouping that cannot separate within from between variation."""
    if groups.n_groups < 2:
        raise GroupingError(
            f"The {role} {groups.name!r} has a single level ({groups.levels[0]!r}) in the rows "
            f"used: there is nothing to compare between groups. Check that you passed the right "
            f"column, or fit a model without it."
        )
    if not allow_one_per_group and groups.n_groups == nobs:
        raise GroupingError(
            f"The {role} {groups.name!r} has as many levels as rows ({nobs}): every group has "
            f"one observation, so group effects cannot be told apart from the residual. Use a "
            f"variable that groups several rows together."
        )


# ----------------------------------------------------------------------------------------------
# Group means, centring, within/between decomposition
# ----------------------------------------------------------------------------------------------


def _series_and_groups(x, groups, data) -> tuple[pd.Series, pd.Series]:
    if data is not None:
        check_columns(data, [x, groups] if isinstance(x, str) else [groups])
        x = data[x] if isinstance(x, str) else x
        groups = data[groups] if isinstance(groups, str) else groups
    x = pd.Series(x) if not isinstance(x, pd.Series) else x
    groups = pd.Series(groups, index=x.index) if not isinstance(groups, pd.Series) else groups
    if len(x) != len(groups):
        raise DataTypeError(f"x has {len(x)} values but groups has {len(groups)}; they must match.")
    if not pd.api.types.is_numeric_dtype(x):
        raise DataTypeError(
            f"Cannot average {x.name!r}: it is not numeric. Group means and centring apply to "
            f"numeric variables; code a category as 0/1 indicators first."
        )
    return x, groups


def group_mean(x, groups, data: pd.DataFrame | None = None) -> pd.Series:
    """The mean of x in each row's group, X̄_j, repeated on every row of group j.

    `x` and `groups` are Series (or column names of `data`). Missing x values are ignored in
    the means, as in a per-group `mean()`.

    >>> hsb = load("hsb82"); np.allclose(group_mean("ses", "school", hsb), hsb["meanses"])
    True
    """
    x, groups = _series_and_groups(x, groups, data)
    out = x.groupby(groups.to_numpy(), observed=True, sort=False).transform("mean")
    return out.rename(f"{x.name}_mean" if x.name is not None else None)


def center(x, groups, data: pd.DataFrame | None = None) -> pd.Series:
    """Group-mean centring: x_ij − x̄_j, the within part of x (eq. for the Mundlak/REWB model)."""
    x, groups = _series_and_groups(x, groups, data)
    return (x - group_mean(x, groups)).rename(f"{x.name}_within" if x.name is not None else None)


def decompose_variance(x, groups, data: pd.DataFrame | None = None) -> pd.Series:
    """Split the variance of x into within-group and between-group parts.

    With population (divide-by-n) variances the parts add up exactly:
    Σ(x_ij − x̄)² = Σ(x_ij − x̄_j)² + Σ n_j (x̄_j − x̄)². The between share is a descriptive
    intraclass correlation of x itself, telling how much of x a fixed-effects model discards.
    """
    x, groups = _series_and_groups(x, groups, data)
    ok = x.notna().to_numpy()
    x, groups = x[ok], groups[ok]
    means = group_mean(x, groups)
    total = float(((x - x.mean()) ** 2).mean())
    within = float(((x - means) ** 2).mean())
    between = float(((means - x.mean()) ** 2).mean())
    return pd.Series(
        {"total": total, "within": within, "between": between,
         "between_share": between / total if total > 0 else float("nan"),
         "n_groups": float(groups.nunique())},
        name=x.name,
    )


def mundlak(data: pd.DataFrame, variables: str | Sequence[str], group: str,
            center_within: bool = True, suffix_mean: str = "_mean",
            suffix_within: str = "_within") -> pd.DataFrame:
    """Return a copy of `data` with group means (and, by default, centred parts) of `variables`.

    For each x it adds ``x_mean`` (x̄_j) and ``x_within`` (x_ij − x̄_j). Regressing y on
    ``x_within + x_mean`` is the within-between (REWB) model of Bell & Jones (2015); on
    ``x + x_mean`` it is Mundlak's (1978) device. In both, the coefficient on the within part
    (or on x) equals the fixed-effects slope exactly.
    """
    names = [variables] if isinstance(variables, str) else list(variables)
    check_columns(data, names + [group])
    out = data.copy()
    for name in names:
        gm = group_mean(name, group, data)
        out[f"{name}{suffix_mean}"] = gm.to_numpy()
        if center_within:
            out[f"{name}{suffix_within}"] = (data[name] - gm).to_numpy()
    return out


__all__ = [
    "Design", "GroupIndex", "fixed_design", "parse_formula", "r_powers", "check_columns", "drop_missing",
    "assert_full_rank", "check_grouping", "group_mean", "center", "decompose_variance", "mundlak",
]
