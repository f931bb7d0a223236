"""Offsets: known parts of the linear predictor, with coefficient 1 (lme4's ``offset()``).

``y ~ x + offset(log(exposure)) + (1 | g)`` adds log(exposure) to η = Xβ + Zb (to the mean of
an LMM, to the linear predictor of a GLMM). Each ``offset(expr)`` is encoded by formulaic as a
single column in `mlteach.design.FORMULA_NAMESPACE`, like the fixed part; several are summed.
The encoding is kept, so predictions for new data evaluate the same expressions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import ModelSpec

from mlteach.design import (_check_finite, _text_as_object, check_columns, encode_formula,
                            formula_variables, parse_formula)
from mlteach.errors import DataTypeError, FormulaSyntaxError


@dataclass(frozen=True)
class Offset:
    """The model's offset terms: their expressions and formulaic specs (to encode new data)."""

    exprs: tuple[str, ...]
    specs: tuple[ModelSpec, ...] = field(repr=False)

    def values(self, data: pd.DataFrame, where: str = "newdata") -> np.ndarray:
        """The summed offset for the rows of `data` (zeros when the model has none)."""
        total = np.zeros(len(data))
        for expr, spec in zip(self.exprs, self.specs):
            total += _encode(expr, spec, data, where)
        return total

    @property
    def variables(self) -> list[str]:
        return offset_variables(self.exprs)


def offset_variables(exprs: tuple[str, ...]) -> list[str]:
    """The data columns the offset expressions use."""
    names: list[str] = []
    for expr in exprs:
        names += formula_variables(parse_formula(f"0 + I({expr})"))
    return list(dict.fromkeys(names))


def build_offset(exprs: tuple[str, ...], data: pd.DataFrame, label: str = "offset") -> Offset:
    """Encode each ``offset(expr)`` on the rows used; an expression must give one number a row.

    `label` names what the expression is in messages: ``offset`` (as ``offset(expr)``), or e.g.
    ``failures`` for the second argument of a ``cbind()`` outcome.
    """
    specs = []
    for expr in exprs:
        shown = f"offset({expr})" if label == "offset" else expr
        formula = parse_formula(f"0 + I({expr})")
        variables = formula_variables(formula)
        check_columns(data, variables, "variable")
        for name in variables:
            col = data[name]
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                raise DataTypeError(
                    f"The {label} '{shown}' uses {name!r}, which is not numeric "
                    f"({col.dtype}): " + ("an offset is a number added to the linear "
                    "predictor, e.g. offset(log(exposure)) with exposure a positive number."
                    if label == "offset" else f"the {label} must be numbers."))
        frame = _text_as_object(data[variables].copy()) if variables else data
        mm = encode_formula(formula, frame, na_action="ignore")
        if mm.shape[1] != 1:
            raise FormulaSyntaxError(
                f"'{shown}' gives {mm.shape[1]} columns; the {label} must be one number "
                f"per row (a single expression such as log(exposure)).")
        specs.append(mm.model_spec)
        _check_finite(mm, mm.model_spec, frame, formula, "the data")
    return Offset(exprs=tuple(exprs), specs=tuple(specs))


def _encode(expr: str, spec: ModelSpec, data: pd.DataFrame, where: str) -> np.ndarray:
    variables = formula_variables(spec.formula)
    check_columns(data, variables, "offset variable")
    miss = data[variables].isna().any(axis=1).to_numpy() if variables else np.zeros(len(data), bool)
    if miss.any():
        row = data.index[miss][0]
        raise DataTypeError(
            f"{where}'s offset 'offset({expr})' is missing at row {row!r} "
            f"({int(miss.sum())} rows): drop or fill those rows first.")
    frame = _text_as_object(data[variables].copy()) if variables else data
    mm = encode_formula(spec, frame, na_action="ignore")
    return _check_finite(mm, spec, frame, spec.formula, where)[:, 0]


__all__ = ["Offset", "build_offset", "offset_variables"]
