"""Answer checks for the book's exercises: ``mlteach.check("1.2", answer)``.

For students
------------
Each computational exercise is followed by a check cell. Put your result in a variable called
``answer`` and run the check::

    answer = fit.params["ses"]
    mlteach.check("1.2", answer)       # "1.2" is exercise 1.2 (label ex-1-2 in the book)

In the full (instructor) edition of mlteach the check recomputes the right answer from the shipped
data and says *correct*, *not yet* with a hint that names what is off (wrong sign, a variance where a standard deviation was asked, the
between-group effect instead of the within-group one, a Series where one number was asked, ...),
or *no answer yet* while ``answer`` is still ``None``. It never prints the answer itself. The
result is truthy only when the answer is correct, so ``assert mlteach.check("1.2", answer)``
works in scripts.

In the student edition (``make student``) the package ships without ``mlteach/checks``: no
reference answer and no code that computes one reaches the students. There the check says *no
answer yet* while ``answer`` is ``None`` and otherwise *to be graded*: the instructor's
autograder (nbgrader, with the full edition) checks the answer when the notebook is handed in.
`has_reference_answers()` tells which edition is installed.

For chapter authors: adding a check
-----------------------------------
Checks for chapter N live in ``mlteach/checks/chNN.py`` (one module per chapter; every module in
that package is imported the first time `check` is called). A check is a function without
arguments that *computes* the right answer with the library from the shipped data (never a
typed number: the check follows the library and the data), registered with `register`::

    import mlteach
    from mlteach.exercises import Expected, register

    @register("3.2", rtol=1e-3, asks="the within-school slope of ses")
    def within_slope():
        hsb = mlteach.mundlak(mlteach.load("hsb82"), "ses", "school")
        fit = mlteach.ols("mAch ~ ses_within + ses_mean", hsb)
        return Expected(fit.params["ses_within"],
                        mistakes={"the between-school slope": fit.params["ses_mean"]})

A plain value may be returned instead of an `Expected`. The type of the value decides what
counts as an answer:

- a number (float or int): one number, compared with ``|a - e| <= atol + rtol * |e|``;
- a pandas Series or 1-d array: one value per element, same length (Series answers are aligned
  by index first when both have the same labels);
- a DataFrame or 2-d array: same shape, compared elementwise;
- a bool or str: equal (strings ignoring case and surrounding blanks).

Choose ``rtol`` for the exercise: the default 1e-3 accepts answers rounded to four significant
digits; loosen it for simulation exercises, tighten it where the point is an exact identity.

When an answer is wrong the hint is the first of these that applies:

1. wrong type or shape, with the right value if there is one ("a Series where one number was
   asked: use float(...)");
2. one of the exercise's named ``mistakes`` ("Your answer matches the between-school slope,
   but the exercise asks for the within-school slope of ses.");
3. generic mistakes: wrong sign; the square of the answer (a variance where a standard deviation
   was asked) or its square root (the reverse); for vectors, off by one constant or, given
   ``groups=``, off by an amount constant within each group (the group mean);
4. right order of magnitude but outside the tolerance; otherwise simply not close;

followed by the check's own ``hints`` (general advice, e.g. "Cluster by school.").

The exercise conventions (directives, ``solution`` and ``check`` cell tags) and the student
edition are described in ``notebooks/README.md`` and on the book's page for instructors.
Honest limit: where the checks are installed their source is readable, so a student who has
them can learn from it how an answer is computed; that is why the student edition leaves them
out and grading runs them on the instructor's side.
"""

from __future__ import annotations

import html
import importlib
import math
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from mlteach.errors import DataTypeError, MlteachError

__all__ = ["check", "register", "Expected", "CheckResult", "Check", "UnknownExerciseError",
           "registered", "get", "exercise_id", "exercise_label", "has_reference_answers"]

_ID = re.compile(r"^(\d+)\.(\d+)$")
_LABEL = re.compile(r"^ex-(\d+)-(\d+)$")


class UnknownExerciseError(MlteachError, KeyError):
    """`mlteach.check` was given an exercise id that has no registered check."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# ----------------------------------------------------------------------------------------------
# Exercise ids: "1.2" in code, ex-1-2 as the label in the book
# ----------------------------------------------------------------------------------------------


def exercise_id(name: str) -> str:
    """The id ``"1.2"`` for ``"1.2"`` or the book label ``"ex-1-2"``; a clear error otherwise."""
    if isinstance(name, (float, int)) and not isinstance(name, bool):
        raise DataTypeError(
            f"Exercise ids are strings such as '1.2', got the number {name!r}: a number loses "
            f"trailing zeros (1.10 becomes 1.1). Write mlteach.check('{name}', answer)."
        )
    text = str(name).strip()
    if m := _ID.match(text) or _LABEL.match(text):
        return f"{int(m.group(1))}.{int(m.group(2))}"
    raise MlteachError(
        f"{name!r} is not an exercise id: write 'chapter.number' such as '1.2' (the exercise "
        f"labelled ex-1-2 in the book)."
    )


def exercise_label(ex_id: str) -> str:
    """The book label ``"ex-1-2"`` of exercise ``"1.2"``."""
    chapter, number = exercise_id(ex_id).split(".")
    return f"ex-{chapter}-{number}"


def _sort_key(ex_id: str) -> tuple[int, int]:
    chapter, number = ex_id.split(".")
    return int(chapter), int(number)


# ----------------------------------------------------------------------------------------------
# What a check computes, and what it returns
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """The right answer to an exercise and the known wrong answers worth naming.

    Attributes
    ----------
    value
        the right answer (number, Series/array, DataFrame, bool or str).
    mistakes
        ``{description: wrong value}``; an answer matching a wrong value gets the hint
        "Your answer matches <description>, but the exercise asks for <asks>."
    groups
        for a per-row vector answer, each row's group (Series or array); enables the hint
        "off by an amount constant within each group" (e.g. the group mean).
    """

    value: Any
    mistakes: Mapping[str, Any] = field(default_factory=dict)
    groups: Any = None


# Mark and colour of each verdict, for the text and HTML displays.
_STYLE = {"correct": ("✓", "#1a7f37"), "not yet": ("✗", "#b35900"),
          "no answer yet": ("…", "#57606a"), "to be graded": ("→", "#0550ae")}

# What the student edition (no mlteach/checks) says about an answer it cannot check.
TO_BE_GRADED = (
    "This student edition of mlteach has no reference answers, so it cannot tell whether your "
    "answer is right: your instructor's autograder checks it when you hand the notebook in. "
    "Make sure `answer` holds what the exercise asks for (one number, one value per group, ...) "
    "and that the notebook runs from the top (Restart & Run All)."
)
NO_ANSWER = "Assign your result to `answer` and run this cell again."


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one answer. Truthy only when the answer is correct."""

    exercise: str
    status: Literal["correct", "not yet", "no answer yet", "to be graded"]
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark, _ = _STYLE[self.status]
        return f"{mark} Exercise {self.exercise}: {self.status}. {self.message}".rstrip()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        mark, colour = _STYLE[self.status]
        message = f" {html.escape(self.message)}" if self.message else ""
        return (f"<div class='mlteach-check' style='border-left:4px solid {colour};"
                f"padding:0.3em 0.8em'><strong style='color:{colour}'>{mark} Exercise "
                f"{html.escape(self.exercise)}: {self.status}.</strong>{message}</div>")


@dataclass(frozen=True)
class Check:
    """A registered check: how to compute the right answer and how close an answer must be."""

    exercise: str
    compute: Callable[[], Any] = field(repr=False)
    rtol: float = 1e-3
    atol: float = 1e-8
    asks: str | None = None
    hints: tuple[str, ...] = ()

    def expected(self) -> Expected:
        """Compute the right answer now (from the shipped data, with the library)."""
        value = self.compute()
        return value if isinstance(value, Expected) else Expected(value)

    def __call__(self, answer: Any) -> CheckResult:
        if answer is None:
            return CheckResult(self.exercise, "no answer yet", NO_ANSWER)
        hint = _diagnose(answer, self.expected(), self.rtol, self.atol, self.asks)
        if hint is None:
            return CheckResult(self.exercise, "correct", "")
        extra = " ".join(self.hints)
        return CheckResult(self.exercise, "not yet", f"{hint} {extra}".strip())


_REGISTRY: dict[str, Check] = {}
_loaded = False
_has_checks = False            # is mlteach.checks installed (full edition)? set on first load


def register(exercise: str, *, rtol: float = 1e-3, atol: float = 1e-8, asks: str | None = None,
             hints: Sequence[str] = ()) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Decorator: register the function as the check of `exercise` ("3.2" or "ex-3-2").

    The function takes no arguments and returns the right answer (a value or an `Expected`).
    `rtol`/`atol` set the tolerance; `asks` names what the exercise asks for (used in hints);
    `hints` are general advice shown after any wrong answer. Registering a second function for
    the same exercise is an error, except the same function again (re-running a notebook cell).
    """
    ex = exercise_id(exercise)
    if rtol < 0 or atol < 0:
        raise MlteachError(f"Tolerances must be >= 0, got rtol={rtol!r}, atol={atol!r}.")
    if isinstance(hints, str):
        hints = (hints,)

    def decorate(fn: Callable[[], Any]) -> Callable[[], Any]:
        old = _REGISTRY.get(ex)
        if old is not None and _where(old.compute) != _where(fn):
            raise MlteachError(
                f"Exercise {ex} already has a check ({_where(old.compute)}); {_where(fn)} "
                f"cannot be registered for it too. Give the new exercise its own number."
            )
        _REGISTRY[ex] = Check(ex, fn, float(rtol), float(atol), asks, tuple(hints))
        return fn

    return decorate


def _where(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _load_chapter_checks() -> None:
    """Import every module of `mlteach.checks` once, so that their checks are registered.

    The student edition has no `mlteach.checks`: then nothing is registered but what a notebook
    registers itself.
    """
    global _loaded, _has_checks
    if _loaded:
        return
    try:
        package = importlib.import_module("mlteach.checks")
    except ModuleNotFoundError as error:
        if error.name != "mlteach.checks":
            raise
        _loaded, _has_checks = True, False
        return
    _has_checks = True
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        importlib.import_module(f"{package.__name__}.{info.name}")
    _loaded = True


def has_reference_answers() -> bool:
    """True in the full (instructor) edition, which has the chapter checks; False in the student
    edition, which ships without them."""
    _load_chapter_checks()
    return _has_checks


def registered() -> list[str]:
    """Ids of every exercise with a check, in book order."""
    _load_chapter_checks()
    return sorted(_REGISTRY, key=_sort_key)


def get(exercise: str) -> Check:
    """The registered `Check` of an exercise; `UnknownExerciseError` listing the known ids."""
    ex = exercise_id(exercise)
    _load_chapter_checks()
    if ex not in _REGISTRY:
        if not _has_checks:
            raise UnknownExerciseError(
                f"This student edition of mlteach has no answer checks, so there is no check "
                f"for exercise {ex!r} to get: the reference answers are with your instructor. "
                f"mlteach.check({ex!r}, answer) still runs (it says the answer is to be graded); "
                f"the checks themselves are in the full edition (pip install of the course "
                f"repository).")
        known = ", ".join(registered()) or "none yet"
        raise UnknownExerciseError(
            f"There is no check for exercise {ex!r}. Exercises with checks: {known}. Check the "
            f"number against the exercise heading in the book (exercise {ex} is labelled "
            f"{exercise_label(ex)})."
        )
    return _REGISTRY[ex]


def check(exercise: str, answer: Any = None) -> CheckResult:
    """Check a student's answer to an exercise; see the module docstring.

    Parameters
    ----------
    exercise : str
        ``"chapter.number"`` as in the book, e.g. ``"1.2"`` (the label ``"ex-1-2"`` works too).
    answer : the student's result, or None while there is none (prints "no answer yet").

    Returns
    -------
    CheckResult, truthy when the answer is correct; it displays itself in a notebook. In the
    student edition (no reference answers) an answer is *to be graded* (falsy), see the module
    docstring.
    """
    ex = exercise_id(exercise)
    _load_chapter_checks()
    if ex not in _REGISTRY and not _has_checks:
        if answer is None:
            return CheckResult(ex, "no answer yet", NO_ANSWER)
        return CheckResult(ex, "to be graded", TO_BE_GRADED)
    return get(ex)(answer)


# ----------------------------------------------------------------------------------------------
# Comparing an answer with the expected value, and naming what is off
# ----------------------------------------------------------------------------------------------

_Kind = Literal["number", "vector", "table", "bool", "text"]


def _kind(value: Any) -> _Kind:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, pd.DataFrame):
        return "table"
    arr = np.asarray(value)
    if arr.ndim == 1:
        return "vector"
    if arr.ndim == 2:
        return "table"
    if arr.ndim == 0:
        return "number"
    raise DataTypeError(f"A check returned a {type(value).__name__} of {arr.ndim} dimensions; "
                    f"checks compare numbers, 1-d vectors, tables, bools and strings.")


def _describe(answer: Any) -> str:
    """'a pandas Series of 3 values', 'a str', ... for hints."""
    name = type(answer).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    if isinstance(answer, pd.DataFrame):
        return f"a pandas DataFrame of {answer.shape[0]} rows and {answer.shape[1]} columns"
    if isinstance(answer, pd.Series):
        return f"a pandas Series of {len(answer)} value{'s' * (len(answer) != 1)}"
    if isinstance(answer, np.ndarray):
        return f"a NumPy array of shape {answer.shape}"
    if isinstance(answer, (list, tuple)):
        return f"{article} {name} of {len(answer)} item{'s' * (len(answer) != 1)}"
    return f"{article} {name}"


def _as_float_array(answer: Any) -> np.ndarray | None:
    """The answer as a float array, or None if it is not numeric."""
    if isinstance(answer, (bool, np.bool_, str, bytes)):
        return None
    if isinstance(answer, (pd.Series, pd.DataFrame)):
        answer = answer.to_numpy()
    try:
        arr = np.asarray(answer, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr


def _coerce(answer: Any, kind: _Kind, expected: Any) -> tuple[Any, str | None, str | None]:
    """(value to compare or None, wrong-type remark or None, fatal problem or None)."""
    if kind == "bool":
        if isinstance(answer, (bool, np.bool_)):
            return bool(answer), None, None
        return None, None, f"The exercise asks for True or False; you gave {_describe(answer)}."
    if kind == "text":
        if isinstance(answer, str):
            return answer, None, None
        return None, None, f"The exercise asks for a word or a name (a str); you gave " \
                           f"{_describe(answer)}."
    if kind == "number":
        if isinstance(answer, (int, float, np.integer, np.floating)) \
                and not isinstance(answer, (bool, np.bool_)):
            return float(answer), None, None
        if isinstance(answer, str):
            try:
                value = float(answer)
            except ValueError:
                return None, None, (f"The exercise asks for one number; you gave the text "
                                    f"{answer!r}.")
            return value, "it is text (a str), not a number: remove the quotes", None
        arr = _as_float_array(answer)
        if arr is None:
            return None, None, (f"The exercise asks for one number; you gave "
                                f"{_describe(answer)}. Take the number you need from it "
                                f"(e.g. fit.params['x']).")
        if arr.size == 1:
            return float(arr.ravel()[0]), (f"it is {_describe(answer)}, not a single number: "
                                           f"use float(...) or .item()"), None
        return None, None, (f"The exercise asks for one number; you gave {_describe(answer)}. "
                            f"Pick the one value the exercise asks for.")
    # vector or table
    exp = np.asarray(expected.to_numpy() if isinstance(expected, (pd.Series, pd.DataFrame))
                     else expected, dtype=float)
    arr = _as_float_array(answer)
    if arr is None or arr.ndim == 0:
        what = "one value per element" if kind == "vector" else "a table"
        return None, None, (f"The exercise asks for {what} ({exp.size} values); you gave "
                            f"{_describe(answer)}.")
    remark = None
    if kind == "vector":
        if isinstance(answer, pd.Series) and isinstance(expected, pd.Series) \
                and answer.index.has_duplicates is False \
                and set(answer.index) == set(expected.index):
            arr = answer.reindex(expected.index).to_numpy(dtype=float)   # align by label
        if arr.ndim == 2 and 1 in arr.shape:
            remark = (f"it is {_describe(answer)}, not a one-dimensional Series or array: "
                      f"select the column, e.g. df['x'], or use .ravel()")
            arr = arr.ravel()
    if arr.shape != exp.shape:
        return None, None, (f"Your answer has shape {arr.shape} ({arr.size} values), but "
                            f"{exp.size} values in shape {exp.shape} are asked for. Check that "
                            f"you kept one value per unit asked for (rows vs groups).")
    return arr, remark, None


def _close(a: Any, e: Any, rtol: float, atol: float) -> bool:
    if isinstance(e, str):
        return isinstance(a, str) and a.strip().casefold() == e.strip().casefold()
    if isinstance(e, (bool, np.bool_)):
        return bool(a) == bool(e)
    a, e = np.asarray(a, dtype=float), np.asarray(_plain(e), dtype=float)
    return a.shape == e.shape and bool(np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True))


def _plain(value: Any) -> Any:
    return value.to_numpy(dtype=float) if isinstance(value, (pd.Series, pd.DataFrame)) else value


def _diagnose(answer: Any, exp: Expected, rtol: float, atol: float,
              asks: str | None) -> str | None:
    """None if `answer` is right, otherwise a hint naming what is off (never the answer)."""
    kind = _kind(exp.value)
    value, remark, problem = _coerce(answer, kind, exp.value)
    if problem is not None:
        return problem
    if isinstance(value, float) and not math.isfinite(value):
        return f"Your answer is {value}, not a finite number: look for a division by zero or " \
               f"missing values."
    if _close(value, exp.value, rtol, atol):
        if remark is None:
            return None
        return f"Right value, wrong type: {remark}."
    for name, wrong in exp.mistakes.items():
        if wrong is not None and _close(value, wrong, rtol, atol):
            target = f"the exercise asks for {asks}" if asks else "that is not what the " \
                                                                  "exercise asks for"
            return f"Your answer matches {name}, but {target}."
    if kind in ("bool", "text"):
        return "That is not the answer. Reread the question and your output."
    return _numeric_hint(np.asarray(value, dtype=float),
                         np.asarray(_plain(exp.value), dtype=float), exp.groups, rtol, atol)


def _numeric_hint(a: np.ndarray, e: np.ndarray, groups: Any, rtol: float,
                  atol: float) -> str:
    def close(x, y) -> bool:
        return bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True))

    nonzero = bool(np.any(np.abs(e) > atol))
    if nonzero and close(-a, e):
        return "The sign is wrong: the size is right but the direction is reversed."
    if nonzero and np.all(e >= 0) and not close(e, e ** 2):
        if close(a, e ** 2):
            return ("Your answer is the square of the right one: did you give a variance "
                    "where a standard deviation was asked?")
        if np.all(a >= 0) and close(a ** 2, e):
            return ("Your answer is the square root of the right one: did you give a standard "
                    "deviation where a variance was asked?")
    if a.ndim == 1 and a.size > 1:
        diff = a - e
        if np.allclose(diff, diff[0], rtol=0, atol=atol + rtol * np.abs(e).max()):
            return ("Your values differ from the right ones by the same constant everywhere: "
                    "check the centring (grand mean vs group mean) or an intercept.")
        if groups is not None:
            g = pd.Series(np.asarray(groups))
            spread = pd.Series(diff).groupby(g.to_numpy()).agg(lambda d: d.max() - d.min())
            if np.all(spread.to_numpy() <= atol + rtol * np.abs(e).max()):
                return ("Your values are off by an amount that is the same within each group: "
                        "are you off by the group mean (centred on the wrong mean, or not "
                        "centred at all)?")
    size_a, size_e = float(np.linalg.norm(a)), float(np.linalg.norm(e))
    same_sign = a.size != 1 or np.sign(a.ravel()[0]) == np.sign(e.ravel()[0])
    if size_e > 0 and same_sign and 0.5 <= size_a / size_e <= 2:
        return ("Right order of magnitude, but not within the tolerance: check rounding "
                "(keep at least four significant digits), the rows used (missing values, "
                "subsets) and the exact model asked for.")
    return ("Not close to the right answer. Reread the question: which model, which "
            "variable, which rows?")
