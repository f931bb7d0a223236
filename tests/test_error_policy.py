"""Every error mlteach raises on purpose is an MlteachError, and every warning names the user's
line: checked over the whole package's source, so a new `raise ValueError` or a hand-counted
`stacklevel=3` fails here."""

from __future__ import annotations

import ast
import builtins
import importlib
import warnings
from pathlib import Path

import pytest

import mlteach
from mlteach.errors import MlteachError, MlteachWarning

PACKAGE = Path(mlteach.__file__).parent
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_raised_errors_are_mlteach_errors(path):
    module = importlib.import_module(module_name(path))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wrong = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                and isinstance(node.exc.func, ast.Name):
            name = node.exc.func.id
            cls = getattr(module, name, None) or getattr(builtins, name, None)
            if isinstance(cls, type) and issubclass(cls, Exception) \
                    and not issubclass(cls, MlteachError) \
                    and cls not in (NotImplementedError, AttributeError):   # protocol errors
                wrong.append(f"line {node.lineno}: raise {cls.__name__}")
    assert not wrong, f"{path.name}: raise an MlteachError subclass instead: {wrong}"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_warnings_point_at_the_users_line(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wrong = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "warn" and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "warnings" and path.name != "errors.py":
            level = next((k.value for k in node.keywords if k.arg == "stacklevel"), None)
            if not (isinstance(level, ast.Call) and getattr(level.func, "id", "") == "user_stacklevel"):
                wrong.append(f"line {node.lineno}")
    assert not wrong, (f"{path.name}: pass stacklevel=user_stacklevel() (or use "
                       f"mlteach.errors.warn) so the warning names the caller's line: {wrong}")


def test_warn_names_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mlteach.errors.warn("a message", MlteachWarning)
    assert caught and caught[0].filename == __file__


def test_a_deep_warning_names_the_callers_line():
    import numpy as np
    import pandas as pd

    data = pd.DataFrame({"y": [1.0, 2.0, np.nan, 4.0, 5.0, 7.0], "x": [0.0, 1, 2, 3, 4, 6]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mlteach.ols("y ~ x", data)
    assert [w.filename for w in caught if issubclass(w.category, MlteachWarning)] == [__file__]
