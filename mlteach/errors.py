"""Errors and warnings raised by mlteach.

Every message says what was found, what was expected and how to fix it, naming the variable,
row or group involved. Warnings use plain words first and keep the technical term beside them,
so a student can act on them.
"""

from __future__ import annotations

import sys
import warnings


class MlteachError(ValueError):
    """Base class of every error raised by mlteach for bad input."""


class UnknownVariableError(MlteachError, KeyError):
    """A formula or argument names a column the data do not have."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class FormulaSyntaxError(MlteachError):
    """A model formula could not be parsed."""


class DataTypeError(MlteachError, TypeError):
    """A variable has the wrong type, e.g. a text outcome in a linear model."""


class RankDeficientError(MlteachError):
    """The design matrix has linearly dependent columns (perfect collinearity)."""


class GroupingError(MlteachError):
    """A grouping or cluster variable cannot do its job (one group, one row per group, ...)."""


class UnknownDatasetError(MlteachError, KeyError):
    """`mlteach.load` was asked for a data set it does not ship."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ModelComparisonError(MlteachError):
    """Two fitted models cannot be compared as asked (not nested, different rows, REML fits
    with different fixed effects)."""


class UnseenLevelError(MlteachError, KeyError):
    """New data for a prediction hold a category level the model was not fitted with."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MlteachWarning(UserWarning):
    """Base class of every warning issued by mlteach."""


class MissingDataWarning(MlteachWarning):
    """Rows with missing values were dropped before fitting; the message counts them."""


class BoundaryFitWarning(MlteachWarning):
    """A variance is estimated at zero or a correlation at +/-1 (a boundary or 'singular' fit)."""


class ConvergenceWarning(MlteachWarning):
    """The optimiser stopped without clear evidence that it reached the optimum."""


class HausmanWarning(MlteachWarning):
    """The Hausman variance difference is not positive definite; a generalised inverse was used."""


class SeparationWarning(MlteachWarning):
    """A binary outcome is perfectly predicted in the data or within a group."""


class DroppedTermWarning(MlteachWarning):
    """A term was removed from the model, e.g. a time-invariant variable under fixed effects."""


class SmallGroupWarning(MlteachWarning):
    """Some groups are too small (or too uniform) for a separate regression; they are NaN."""


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first caller outside mlteach.

    Call it in the function that calls `warnings.warn`, and pass the result as ``stacklevel``:
    the warning then names the student's line, however deep inside mlteach it was raised.
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] == "mlteach":
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning]) -> None:
    """`warnings.warn` pointing at the user's calling line (see `user_stacklevel`)."""
    warnings.warn(message, category, stacklevel=user_stacklevel())


__all__ = [name for name in dir() if name[0].isupper()] + ["user_stacklevel", "warn"]
