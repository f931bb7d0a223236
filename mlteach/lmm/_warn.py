"""Warnings that point at the user's line: the first caller outside the mlteach package."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_stacklevel() -> int:
    """The `stacklevel` for `warnings.warn` called from the function that calls this one, such
    that the warning names the first frame outside mlteach (the user's code)."""
    frame = sys._getframe(1)       # the function that will call warnings.warn: level 1
    level = 1
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR + os.sep):
            return level
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning]) -> None:
    """`warnings.warn` with the stack level of the user's calling line."""
    warnings.warn(message, category, stacklevel=user_stacklevel())
