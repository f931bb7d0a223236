"""Design matrices, grouping indexes and group means: the pieces every estimator shares.

The fixed part of a model formula is parsed and encoded by formulaic; this module adds what
multilevel models need around it: checks at the door (unknown variables, column types, text
outcomes, missing values, values a transformation cannot take, perfect collinearity), the
grouping index, and the group means behind within/between decompositions, group-mean centring
and the Mundlak device (book chapters 1 and 3).

Formulas are code
-----------------
Each term of a formula such as ``y ~ np.log(x) + I(x**2) + C(school)`` is a Python expression,
evaluated on the data. The names a formula may use are, and are only:

* the columns of the data (quote a name that is not a Python identifier with backticks:
  `` `my col` + `IQ.verb` ``; unicode names such as ``schüle`` need no quoting);
* ``np`` (numpy), and numpy's ``log``, ``exp`` and ``sqrt`` (`FORMULA_NAMESPACE`);
* formulaic's transforms: ``C`` (categories, with ``contr.treatment(...)`` and friends), ``I``,
  ``center``, ``scale``, ``standardize``, ``poly``, ``bs``, ``lag`` and the others formulaic
  documents. formulaic's ``center(x)`` centres at the grand mean; for group-mean centring use
  `mlteach.center` on the data before fitting.

Nothing else: not pandas, not the caller's variables, not mlteach's own functions, not Python
builtins; a formula naming anything else is an `UnknownVariableError` that lists what is
available. A term that evaluates to a missing or infinite value (``np.log(0)``) is an error naming
the term and its first such row, never a silently dropped row.

Column types are checked at the door (`check_column_types`), once, for every estimator: dates,
durations and complex numbers are errors; text columns (``object``, pandas ``"str"``/``"string"``
or pyarrow strings) are always categories, dummy-coded by their text ("1", "2" are the labels
"1", "2", never numbers); an ``object`` column of numbers is an error (convert it with
``astype(float)``, or wrap it in ``C()``); a categorical predictor with a category no row has is
an error (its dummy would be all zero), while a grouping variable's unused categories are simply
not groups. The rows used are copied (only the columns used), so later edits of the caller's
DataFrame cannot change a fitted model; category levels and contrasts are captured at fit time,
and new data for a prediction with a level not seen in fitting is an `UnseenLevelError`.
"""

from __future__ import annotations

import ast
import builtins
import datetime as _dt
import difflib
import numbers
import re
import sys
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from formulaic import Formula, ModelSpec, model_matrix
from formulaic.errors import FactorEvaluationError, FormulaParsingError
from formulaic.errors import FormulaSyntaxError as _FormulaicSyntaxError
from formulaic.transforms import TRANSFORMS as _FORMULAIC_TRANSFORMS

from mlteach.errors import (
    DataTypeError,
    FormulaSyntaxError,
    GroupingError,
    MissingDataWarning,
    RankDeficientError,
    UnknownVariableError,
    UnseenLevelError,
    user_stacklevel,
)

# ----------------------------------------------------------------------------------------------
# The names a formula can use
# ----------------------------------------------------------------------------------------------

#: The namespace every formula is evaluated in, besides the data's columns and formulaic's own
#: transforms (``C``, ``I``, ``center``, ``scale``, ``poly``, ``bs``, ...). See the module docs.
FORMULA_NAMESPACE: dict[str, object] = {"np": np, "log": np.log, "exp": np.exp, "sqrt": np.sqrt}

_TRANSFORM_NAMES = frozenset(_FORMULAIC_TRANSFORMS)
_FORMULA_NAMES = frozenset(FORMULA_NAMESPACE) | _TRANSFORM_NAMES


def formula_context() -> dict[str, object]:
    """A fresh copy of `FORMULA_NAMESPACE`, to pass as formulaic's ``context=``."""
    return dict(FORMULA_NAMESPACE)


def _available_names() -> str:
    transforms = sorted(_TRANSFORM_NAMES - set(FORMULA_NAMESPACE), key=str.lower)
    return f"np (numpy), log, exp, sqrt and formulaic's transforms ({', '.join(transforms)})"


def encode_formula(spec, data: pd.DataFrame, **kwargs):
    """formulaic's `model_matrix` evaluated in `FORMULA_NAMESPACE` (never the caller's globals).

    Every formula mlteach encodes goes through here, so that a formula can reach only the data,
    numpy and formulaic's transforms.
    """
    kwargs.setdefault("context", formula_context())
    with np.errstate(all="ignore"):
        return model_matrix(spec, data, **kwargs)


# ----------------------------------------------------------------------------------------------
# Checks at the door
# ----------------------------------------------------------------------------------------------


def check_columns(data: pd.DataFrame, names: Iterable[str], role: str = "variable") -> None:
    """Raise `UnknownVariableError` naming every requested column that `data` lacks.

    A requested name that labels several columns of `data` is a `DataTypeError` naming it.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataTypeError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    names = list(dict.fromkeys(names))
    missing = [n for n in names if n not in data.columns]
    library = [n for n in missing if str(n).split(".")[0] in _LIBRARY_NAMES]
    if library:
        raise UnknownVariableError(
            f"The name {str(library[0]).split('.')[0]!r} is not available in formulas and is not "
            f"a column of the data: a formula is evaluated with only the data's columns and "
            f"{_available_names()}. Compute the column beforehand (e.g. data['z'] = ...) and use "
            f"it by name.")
    if missing:
        parts = []
        for name in missing:
            close = difflib.get_close_matches(str(name), [str(c) for c in data.columns], n=1)
            parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise UnknownVariableError(
            f"Unknown {role}{'s' if len(missing) > 1 else ''} {', '.join(parts)}: not a column of "
            f"the data. Columns are: {', '.join(map(str, data.columns))}."
        )
    if not data.columns.is_unique:
        dup = [n for n in names if (data.columns == n).sum() > 1]
        if dup:
            raise DataTypeError(
                f"The data have several columns named {', '.join(map(repr, dup))}, so "
                f"{'it is' if len(dup) == 1 else 'they are'} ambiguous. Rename the duplicates "
                f"(or drop them with data = data.loc[:, ~data.columns.duplicated()]) before "
                f"fitting."
            )


def _value_kind(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "boolean"
    if isinstance(v, numbers.Number):
        return "number"
    if isinstance(v, str):
        return "text"
    if isinstance(v, (_dt.date, _dt.datetime, _dt.timedelta, np.datetime64, np.timedelta64)):
        return "date"
    return type(v).__name__


def _is_text_dtype(dtype) -> bool:
    """pandas "str"/"string" dtypes and pyarrow strings (not object: that is inspected)."""
    if isinstance(dtype, pd.StringDtype):
        return True
    arrow = getattr(pd, "ArrowDtype", None)
    if arrow is not None and isinstance(dtype, arrow):
        return pd.api.types.is_string_dtype(dtype)
    return False


def _mixed_labels(values: pd.Series) -> tuple[object, object] | None:
    """Two labels of different kinds (number and text, ...) in an object column, clashing ones
    (1 and '1') first; None if all labels are of one kind."""
    uniq = pd.unique(values.dropna())
    kinds: dict[str, object] = {}
    for v in uniq:
        kinds.setdefault(_value_kind(v), v)
    if len(kinds) < 2:
        return None
    by_text: dict[str, object] = {}
    for v in uniq:
        key = str(v)
        if key in by_text and _value_kind(by_text[key]) != _value_kind(v):
            return by_text[key], v
        by_text.setdefault(key, v)
    a, b = list(kinds.values())[:2]
    return a, b


def check_column_types(data: pd.DataFrame, columns: Iterable[str], role: str = "predictor",
                       categorical: Iterable[str] = ()) -> None:
    """Check, once at the door, that the `columns` of `data` have a type a model can use.

    `role` is "predictor", "outcome" or "grouping variable"; `categorical` names predictors that
    the formula wraps in ``C()`` (an object column of numbers is then fine).

    * dates, durations and complex numbers: `DataTypeError` with how to convert them;
    * an ``object`` column of numbers: `DataTypeError` (convert with ``astype(float)``, or wrap
      it in ``C()``), never silently one dummy per value;
    * labels mixing kinds (``1`` and ``'1'``): `GroupingError` for a grouping variable,
      `DataTypeError` otherwise;
    * text columns (``object``, ``"str"``, ``"string"``, pyarrow) are categories; as an outcome
      they are an error (raised by the outcome check).
    """
    categorical = set(categorical)
    for name in dict.fromkeys(columns):
        col = data[name]
        dtype = col.dtype
        if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
            raise DataTypeError(
                f"The {role} {name!r} holds dates ({dtype}), which a model cannot use directly. "
                f"Convert them to a number first, e.g. the year, data['{name}_year'] = "
                f"data['{name}'].dt.year, or the days since the start, data['{name}_days'] = "
                f"(data['{name}'] - data['{name}'].min()).dt.days."
            )
        if pd.api.types.is_timedelta64_dtype(dtype):
            raise DataTypeError(
                f"The {role} {name!r} holds durations ({dtype}), which a model cannot use "
                f"directly. Convert them to a number of units, e.g. data['{name}_days'] = "
                f"data['{name}'].dt.total_seconds() / 86400."
            )
        if pd.api.types.is_complex_dtype(dtype):
            raise DataTypeError(
                f"The {role} {name!r} holds complex numbers, which a model cannot use. Use the "
                f"real part or the modulus, e.g. data['{name}'] = np.abs(data['{name}'])."
            )
        if dtype != object:
            continue
        values = col.dropna()
        kinds = {_value_kind(v) for v in pd.unique(values)}
        if "date" in kinds:
            raise DataTypeError(
                f"The {role} {name!r} holds dates or times (Python objects), which a model "
                f"cannot use directly. Convert them to a number first, e.g. the year or the days "
                f"since the start: data['{name}'] = pd.to_datetime(data['{name}']).dt.year."
            )
        clash = _mixed_labels(values)
        if clash is not None:
            a, b = clash
            error = GroupingError if role == "grouping variable" else DataTypeError
            raise error(
                f"The {role} {name!r} mixes {_value_kind(a)} and {_value_kind(b)} values, e.g. "
                f"{a!r} and {b!r}, which would be different levels although they may print the "
                f"same. Make them one type, e.g. data['{name}'] = data['{name}'].astype(str)."
            )
        if kinds == {"number"} and role != "grouping variable" and name not in categorical:
            example = ", ".join(repr(_plain(v)) for v in pd.unique(values)[:3])
            if role == "outcome":
                raise DataTypeError(
                    f"The outcome {name!r} holds numbers stored as Python objects (dtype "
                    f"object, values such as {example}). Convert with df['{name}'] = "
                    f"df['{name}'].astype(float)."
                )
            raise DataTypeError(
                f"The {role} {name!r} holds numbers stored as Python objects (dtype object, "
                f"values such as {example}), which a formula would silently turn into one "
                f"dummy per value. To use it as a number, convert with df['{name}'] = "
                f"df['{name}'].astype(float), or wrap it in C() to treat it as categories."
            )


def _unused_categories(values: pd.Series) -> list:
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return []
    present = set(pd.unique(values.cat.codes.to_numpy()))
    return [c for k, c in enumerate(values.cat.categories) if k not in present]


def _unused_message(name: str, unused: list, role: str) -> str:
    return (f"The {role} {name!r} is categorical with categor{'y' if len(unused) == 1 else 'ies'} "
            f"{', '.join(map(repr, unused[:5]))}{' ...' if len(unused) > 5 else ''} that no row "
            f"used has")


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
    number = re.search(r"`\s*([0-9][0-9.]*)\s*`", formula)
    if number:
        name = number.group(1)
        raise FormulaSyntaxError(
            f"The formula {formula!r} names a column {name!r}, but a formula reads "
            f"`{name}` as the number {name} ({'the intercept' if name in ('0', '1') else 'a constant'}"
            f"), so the column would silently not be used. Rename the column, e.g. "
            f"data = data.rename(columns={{'{name}': 'x{name}'}}) (or {{{name}: 'x{name}'}} if "
            f"the name is a number), and use the new name.")
    if re.search(r"\.\s*_", re.sub(r"`[^`]*`", "", formula)):
        raise FormulaSyntaxError(
            f"The formula {formula!r} uses a name that starts with '_' after a dot: formulas "
            f"cannot reach private attributes. Compute the column beforehand and use it by name.")
    try:
        parsed = Formula(r_powers(formula))
    except (_FormulaicSyntaxError, FormulaParsingError) as exc:
        raise FormulaSyntaxError(f"Could not parse the formula {formula!r}:\n{exc}") from None
    except SyntaxError as exc:
        term = (exc.text or "").strip()
        hint = ""
        if re.search(r"[A-Za-z_]\w*\.\d", term):
            hint = (" A column name with a dot followed by digits must be quoted with "
                    "backticks, e.g. np.log(`x.1`).")
        raise FormulaSyntaxError(
            f"Could not parse the formula {formula!r}: the term {term!r} is not a valid Python "
            f"expression ({exc.msg}).{hint}") from None
    return parsed


# R functions that R users write in formulas, and what to write here instead.
_R_ONLY = {
    "factor": "C(x) to treat x as categorical",
    "as.factor": "C(x) to treat x as categorical",
    "relevel": "C(x, contr.treatment(base='level')) to choose the reference level",
    "as.numeric": "a numeric column made beforehand, e.g. data['x'].astype(float)",
}

# Names that are not data columns, to leave out of `formula_variables`.
_NOT_COLUMNS = set(_FORMULA_NAMES)
# Names users reach for that a formula cannot use: named in the error, with what is available.
_LIBRARY_NAMES = frozenset({"pd", "pandas", "numpy", "mlteach", "os", "sys", "math", "scipy",
                            "sp", "stats", "smf", "sm", "statsmodels"}) | frozenset(dir(builtins))


def _factor_expressions(formula: Formula) -> list[tuple[str, str]]:
    """(expression, kind) of every factor of every term, kind "python" or "lookup"."""
    out = []
    for side in _sides(formula):
        for term in side:
            for factor in term.factors:
                method = getattr(factor.eval_method, "value", str(factor.eval_method))
                if method in ("python", "lookup"):
                    out.append((str(factor.expr), method))
    return out


def _expression_names(expr: str, kind: str) -> list[tuple[str, bool, bool]]:
    """(name, called, inside C()) for each variable an expression uses, dotted chains kept whole
    when not called (lme4's ``IQ.verb``); called chains (``np.log``) give their first name."""
    if kind == "lookup":
        return [(expr, False, False)]
    quoted: dict[str, str] = {}

    def _quote(match: re.Match) -> str:
        key = f"__mlteach_q{len(quoted)}__"
        quoted[key] = match.group(1)
        return key

    code = re.sub(r"`([^`]+)`", _quote, expr)
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError:
        return []
    found: list[tuple[str, bool, bool]] = []

    def chain(node) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(quoted.get(node.id, node.id))
        return ".".join(reversed(parts))

    def visit(node, in_c: bool) -> None:
        if isinstance(node, ast.Call):
            func = chain(node.func)
            if func is not None:
                found.append((func.split(".")[0], True, in_c))
            else:
                visit(node.func, in_c)
            inner = in_c or func == "C"
            if func == "Q":  # Q("my col"): a column named by a string
                found.extend((a.value, False, in_c) for a in node.args
                             if isinstance(a, ast.Constant) and isinstance(a.value, str))
            for arg in node.args:
                visit(arg, inner)
            for kw in node.keywords:
                visit(kw.value, inner)
            return
        if isinstance(node, (ast.Attribute, ast.Name)):
            name = chain(node)
            if name is not None:
                found.append((name, False, in_c))
                return
        for child in ast.iter_child_nodes(node):
            visit(child, in_c)

    visit(tree.body, False)
    return found


def _check_formula_names(formula: Formula, text: str, data: pd.DataFrame) -> None:
    """Refuse names a formula cannot use (pandas, Python builtins, ...) unless they are columns of
    `data`, saying what a formula can use; other unknown names are left to `check_columns`."""
    for expr, kind in _factor_expressions(formula):
        for name, _, _ in _expression_names(expr, kind):
            head = name.split(".")[0]
            if name in data.columns or head in data.columns or head in _FORMULA_NAMES:
                continue
            if head in _LIBRARY_NAMES:
                raise UnknownVariableError(
                    f"The name {head!r} in the term {expr!r} of the formula {text!r} is not "
                    f"available in formulas: a formula is evaluated with only the data's columns "
                    f"and {_available_names()}. Compute the column beforehand (e.g. "
                    f"data['z'] = ...) and use it by name.")


def formula_variables(formula: Formula) -> list[str]:
    """The data columns a parsed formula needs (names such as 'np', 'C' or 'log' excluded).

    formulaic reports a dotted column name (R style, ``IQ.verb``) by its first part, ``IQ``, as
    if it were attribute access; the dotted name is kept whole here (a dotted name not followed
    by '(' is a column, as lme4 reads it; ``np.log(x)`` is a call). Variables inside stateful
    transforms (``center(z)``) are included, which formulaic's own list misses.
    """
    names: set[str] = set()
    for expr, kind in _factor_expressions(formula):
        for name, called, _ in _expression_names(expr, kind):
            head = name.split(".")[0]
            if called or head in _NOT_COLUMNS:
                continue
            names.add(name)
    for side in _sides(formula):  # anything formulaic found that the walk did not
        for v in side.required_variables:
            v = str(v)
            if v not in _NOT_COLUMNS and not any(n.split(".")[0] == v for n in names):
                names.add(v)
    return sorted(names)


def _categorical_variables(formula: Formula) -> set[str]:
    """Variables that appear only inside ``C(...)``."""
    inside: dict[str, bool] = {}
    for expr, kind in _factor_expressions(formula):
        for name, called, in_c in _expression_names(expr, kind):
            if not called:
                inside[name] = inside.get(name, True) and in_c
    return {n for n, only in inside.items() if only}


def _sides(formula: Formula) -> list[Formula]:
    if hasattr(formula, "lhs") and hasattr(formula, "rhs"):
        return [formula.lhs, formula.rhs]
    return [formula]


def _text_as_object(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns of every string dtype as object columns: formulaic then treats them all as
    categories (it would read pandas "string" columns as numbers)."""
    for name in frame.columns[[_is_text_dtype(t) for t in frame.dtypes]]:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), np.nan)
    return frame


def drop_missing(data: pd.DataFrame, columns: Sequence[str], context: str = "the model"
                 ) -> pd.DataFrame:
    """Return the rows of `data` complete on `columns`, warning with a count of what was dropped.

    Missing values are dropped listwise, as lme4, plm and statsmodels do by default, but never
    silently: the `MissingDataWarning` counts rows per variable and says how to take control.
    The result is never `data` itself (with pandas' copy-on-write, later edits of `data` do not
    reach it); `fixed_design` passes only the columns a model uses and copies them.
    """
    columns = list(dict.fromkeys(columns))
    check_columns(data, columns)
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
            stacklevel=user_stacklevel(),
        )
        if (~bad).sum() == 0:
            raise DataTypeError(f"Every row has a missing value in {detail}: nothing left to fit.")
        data = data.loc[~bad]
    else:
        data = data.copy(deep=False)
    for col in columns:
        values = data[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) \
                and not pd.api.types.is_complex_dtype(values):
            arr = values.to_numpy(dtype=float)
            if not np.isfinite(arr).all():
                row = data.index[~np.isfinite(arr)][0]
                raise DataTypeError(
                    f"Variable {col!r} has infinite values (first at row {row!r}). Replace or "
                    f"drop them before fitting."
                )
    return data


def _rows(k) -> str:
    return f"{int(k)} row{'' if int(k) == 1 else 's'}"


def _plain(value):
    """A numpy scalar as the Python number it holds (for messages: 0, not np.int64(0))."""
    return value.item() if isinstance(value, np.generic) else value


def _term_of_columns(spec: ModelSpec) -> list[str]:
    """The formula term each column of a model matrix comes from."""
    out: list[str] = []
    for entry in spec.structure:
        out += [str(entry.term)] * len(entry.columns)
    return out


def _check_finite(matrix, spec: ModelSpec, frame: pd.DataFrame, formula: Formula,
                  where: str) -> np.ndarray:
    """The model matrix as floats; a missing or infinite value is an error naming the term, its
    first row (index label) and the values of the variables there."""
    try:
        arr = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataTypeError(f"A term of the formula does not evaluate to numbers: {exc}.") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    ok = np.isfinite(arr)
    if ok.all():
        return arr
    terms = _term_of_columns(spec)
    j = int(np.flatnonzero(~ok.all(axis=0))[0])
    pos = int(np.flatnonzero(~ok[:, j])[0])
    term = terms[j] if j < len(terms) else str(matrix.columns[j])
    value = arr[pos, j]
    what = "missing (NaN)" if np.isnan(value) else ("+inf" if value > 0 else "-inf")
    count = _rows((~ok.all(axis=1)).sum())
    row = frame.index[pos]
    if term in frame.columns:
        variables = [term]
    else:
        try:
            variables = [v for v in formula_variables(Formula(term)) if v in frame.columns]
        except Exception:  # noqa: BLE001 - a term name formulaic cannot re-read: no values shown
            variables = []
    values = ", ".join(f"{v} = {_plain(frame[v].iloc[pos])!r}" for v in variables)
    col = variables[0] if variables else "x"
    raise DataTypeError(
        f"The term {term!r} is {what} at row {row!r} of {where}"
        f"{f' ({values})' if values else ''}; {count} in all. "
        f"A model cannot use missing or infinite values: for a transformation such as np.log "
        f"or sqrt keep the rows where it is defined (e.g. for np.log({col}): "
        f"data = data[data['{col}'] > 0]) or "
        f"transform differently (e.g. np.log1p); otherwise fix or drop those rows."
    )


# ----------------------------------------------------------------------------------------------
# The fixed part of a model
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """An encoded fixed-effects design: response, model matrix and how they were made.

    Attributes
    ----------
    y
        (n,) float array, the response.
    X
        (n, p) float array, the fixed-effects model matrix.
    terms
        column names of X, as formulaic names them (``Intercept``, ``sector[T.Public]``).
    response
        name of the response expression.
    index
        the row labels of the data actually used (after dropping missing values).
    spec
        formulaic's frozen spec of the right-hand side, to encode new data the same way (its
        category levels are those seen at fit time).
    data
        a copy of the rows and columns used, for grouping variables and later reference.
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
        """Encode new data with the training-data spec (same levels, same contrasts).

        A category level not seen in fitting is an `UnseenLevelError` (formulaic would encode it
        as the reference level); a missing or infinite term value is a `DataTypeError`.
        """
        variables = formula_variables(self.spec.formula)
        check_columns(newdata, variables, "variable")
        frame = _text_as_object(newdata[variables].copy())
        miss = frame.isna()
        if miss.to_numpy().any():
            name = miss.columns[miss.any().to_numpy()][0]
            row = frame.index[miss[name].to_numpy()][0]
            raise DataTypeError(
                f"newdata's {name!r} is missing at row {row!r} ({_rows(miss.any(axis=1).sum())} "
                f"with a missing value): a prediction needs every variable of the model. "
                f"Drop or fill those rows first, e.g. newdata.dropna(subset={variables}).")
        _check_levels(self.spec, frame)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mm = encode_formula(self.spec, frame, na_action="ignore")
        for w in caught:
            text = str(w.message)
            if "outside of the nominated levels" in text:
                raise UnseenLevelError(
                    f"newdata has a category level the model was not fitted with: {text.split('.')[0]}. "
                    f"Drop those rows or map them to a known level.")
        for w in caught:
            if not (issubclass(w.category, FutureWarning) or "Categorical" in str(w.message)):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return _check_finite(mm, self.spec, frame, self.spec.formula, "newdata")


def _check_levels(spec: ModelSpec, frame: pd.DataFrame) -> None:
    """Raise `UnseenLevelError` for a level of a categorical term not seen in fitting."""
    for expr, (kind, state) in spec.encoder_state.items():
        if getattr(kind, "value", kind) != "categorical" or "categories" not in state:
            continue
        known = list(state["categories"])
        if expr in frame.columns:
            col = expr
        else:  # C(col) or C(col, ...): the levels are col's values
            match = re.match(r"^\s*C\s*\(\s*(`[^`]+`|[^\W\d][\w.]*)\s*[,)]", expr)
            col = match.group(1).strip("`") if match else None
            if col not in frame.columns:
                continue  # an expression such as C(x > 3): formulaic's warning is caught instead
        values = pd.unique(frame[col].dropna())
        known_set = set(known)
        unseen = [v for v in values if v not in known_set]
        if unseen:
            raise UnseenLevelError(
                f"newdata's {col!r} has level{'s' if len(unseen) > 1 else ''} "
                f"{', '.join(map(repr, unseen[:10]))} not seen when the model was fitted "
                f"(term {expr!r}; known levels: {', '.join(map(repr, known))}). The model has no "
                f"coefficient for an unseen level (its dummies would all be zero, as for the "
                f"reference level): drop those rows or map them to a known level.")


def refuse_unused_categories(data: pd.DataFrame, names: Sequence[str], consequence: str) -> None:
    """`DataTypeError` for the first categorical predictor in `names` with a category no row has;
    `consequence` says what the model would make of it (an all-zero column)."""
    for name in names:
        unused = _unused_categories(data[name])
        if unused:
            raise DataTypeError(
                f"{_unused_message(name, unused, 'predictor')}: {consequence}. Drop unused "
                f"categories with df[{name!r}] = df[{name!r}].cat.remove_unused_categories().")


def fixed_design(
    formula: str,
    data: pd.DataFrame,
    extra: Sequence[str] = (),
    context: str = "the model",
    check_rank: bool = True,
) -> Design:
    """Encode the fixed part `y ~ x + ...` of a model on complete rows of `data`.

    `extra` names further columns (groups, clusters, time) whose missing values also drop a row,
    so that every array an estimator builds refers to the same rows. The formula is evaluated in
    `FORMULA_NAMESPACE` (see the module docs); column types are checked by `check_column_types`.
    """
    parsed = parse_formula(formula)
    if not (hasattr(parsed, "lhs") and len(parsed.lhs) > 0):
        raise FormulaSyntaxError(
            f"The formula {formula!r} has no response: write it as 'y ~ x', outcome on the left."
        )
    if not isinstance(data, pd.DataFrame):
        raise DataTypeError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    _check_formula_names(parsed, formula, data)
    variables = formula_variables(parsed)
    check_columns(data, list(variables) + list(extra))
    outcome = [v for v in formula_variables(parsed.lhs) if v in data.columns]
    predictors = [v for v in formula_variables(parsed.rhs) if v in data.columns]
    check_column_types(data, outcome, "outcome")
    check_column_types(data, predictors, "predictor", categorical=_categorical_variables(parsed))
    _check_response_type(parsed, data)
    columns = list(dict.fromkeys(list(variables) + list(extra)))
    used = _text_as_object(drop_missing(data[columns], columns, context).copy())
    refuse_unused_categories(used, predictors, "the formula would make an all-zero dummy for "
                             "each, and the design would be rank deficient")
    try:
        mm = encode_formula(parsed, used, na_action="ignore")
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
    y = _check_finite(lhs, lhs.model_spec, used, parsed, "the data").ravel()
    X = _check_finite(rhs, rhs.model_spec, used, parsed, "the data")
    terms = [str(c) for c in rhs.columns]
    if X.shape[1] == 0:
        raise FormulaSyntaxError(
            f"The formula {formula!r} has no fixed-effect columns; keep the intercept ('y ~ 1')."
        )
    if check_rank:
        assert_full_rank(X, terms)
    return Design(
        y=y,
        X=X,
        terms=terms,
        response=str(lhs.columns[0]),
        index=used.index,
        spec=rhs.model_spec,
        data=used,
    )


def _check_response_type(parsed: Formula, data: pd.DataFrame) -> None:
    for name in formula_variables(parsed.lhs):
        if name in data.columns:
            col = data[name]
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)) \
                    or _is_text_dtype(col.dtype):
                example = ", ".join(map(repr, pd.unique(col.dropna())[:3]))
                raise DataTypeError(
                    f"The outcome {name!r} is not numeric (values such as {example}). A linear "
                    f"model needs numbers: recode it, e.g. data['{name}'] = "
                    f"(data['{name}'] == <level>).astype(int), or use mlteach.glmm for a binary "
                    f"outcome. Text that holds numbers converts with "
                    f"data['{name}'] = data['{name}'].astype(float)."
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
    """Integer codes and string labels, in category order or sorted order (as R's factor()).

    Labels of different kinds in one column (``1`` and ``'1'``) are a `GroupingError`.
    """
    if values.dtype == object:
        check_column_types(values.to_frame(), [values.name], "grouping variable")
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.remove_unused_categories()
        return cats.cat.codes.to_numpy(np.int64), [str(c) for c in cats.cat.categories]
    # Hash first (pandas.factorize: O(n)), then sort only the distinct labels: sorting a
    # million strings (np.unique) costs ~1 s, sorting a few thousand levels nothing.
    codes, uniq = pd.factorize(values.to_numpy(), sort=False)
    if (codes < 0).any():                       # missing labels: left to np.unique as before
        uniq, codes = np.unique(values.to_numpy(), return_inverse=True)
        return codes.astype(np.int64), [str(u) for u in uniq]
    order = np.argsort(np.asarray(uniq), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], [str(u) for u in np.asarray(uniq)[order]]


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
    "check_column_types", "FORMULA_NAMESPACE", "formula_context", "encode_formula", "user_stacklevel",
    "assert_full_rank", "check_grouping", "group_mean", "center", "decompose_variance", "mundlak",
]
