"""Parse an lme4-style mixed-model formula into its fixed part and its random-effect terms.

``y ~ x + (1 + x | school) + (1 | school:class)`` is split into the fixed part ``y ~ x`` (encoded
by formulaic through `mlteach.design.fixed_design`) and random-effect terms, each a
left-hand expression (the columns that vary between groups, encoded by formulaic too) and a
grouping factor. The shorthands are expanded here, as lme4 does:

* ``(x | g)`` means ``(1 + x | g)``: the intercept is implied, remove it with ``0 +``;
* ``(1 + x || g)`` means ``(1 | g) + (0 + x | g)``: separate, uncorrelated blocks;
* ``(1 | a/b)`` means ``(1 | a) + (1 | a:b)``: b nested in a.

Two more pieces of lme4's syntax are taken out of the fixed part here: ``offset(expr)`` terms
(known parts of the linear predictor, coefficient 1; several are added up), and a binomial
response written ``cbind(successes, failures)``.

Syntax errors point at the offending character with a caret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from formulaic import Formula
from formulaic.errors import FormulaSyntaxError as _FormulaicSyntaxError

from mlteach.design import r_powers
from mlteach.errors import FormulaSyntaxError


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect block ``(expr | factor)`` with its own covariance matrix.

    Attributes
    ----------
    expr
        formulaic right-hand side for the block's columns, e.g. ``"1 + Days"`` or ``"0 + Days"``.
    factor
        the grouping columns; several columns form their interaction (``("batch", "cask")``).
    """

    expr: str
    factor: tuple[str, ...]

    @property
    def factor_name(self) -> str:
        """The grouping factor's name as lme4 prints it, e.g. ``"batch:cask"``."""
        return ":".join(self.factor)


@dataclass(frozen=True)
class MixedFormula:
    """A parsed mixed-model formula: the fixed part and the expanded random-effect blocks."""

    text: str
    fixed: str
    random: tuple[RandomTerm, ...]
    offsets: tuple[str, ...] = ()
    cbind: tuple[str, str] | None = None

    @property
    def response(self) -> str:
        """The outcome as written left of '~' in `fixed` (the successes for ``cbind``)."""
        return self.fixed.split("~", 1)[0].strip()


# A grouping column: a Python-identifier-like name (unicode letters such as ``schüle``, digits,
# underscores and R's dots, ``IQ.verb``), or any name quoted with backticks (``my school``).
_NAME = re.compile(r"^\s*(`[^`]+`|[^\W\d][\w.]*|\.[^\W\d][\w.]*)\s*$")


def _mask_quoted(text: str) -> str:
    """`text` with every character inside backtick quotes replaced by ``_`` (same length), so
    that a quoted name such as `` `a+b (c)` `` hides its '+', ':', '|' and parentheses."""
    out, quoted = [], False
    for ch in text:
        if ch == "`":
            quoted = not quoted
            out.append(ch)
        else:
            out.append("_" if quoted else ch)
    return "".join(out)


def _split_outside_backticks(text: str, sep: str) -> list[str]:
    """Split `text` at `sep`, except inside backtick quotes (`` `a:b` `` is one name)."""
    pieces, start = [], 0
    for i, ch in enumerate(_mask_quoted(text)):
        if ch == sep:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return pieces


def _pointer(text: str, pos: int, message: str) -> FormulaSyntaxError:
    """A syntax error that shows the formula with a caret under position `pos`."""
    return FormulaSyntaxError(f"{message}\n    {text}\n    {' ' * pos}^")


def _split_top(text: str, sep: str, offset: int, full: str) -> list[tuple[int, str]]:
    """Split `text` at `sep` outside parentheses; return (start offset, piece) pairs."""
    pieces, depth, start = [], 0, 0
    scan = _mask_quoted(text)  # parentheses and separators inside `quoted names` do not count
    for i, ch in enumerate(scan):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _pointer(full, offset + i, "This ')' closes a parenthesis that was never "
                                                 "opened: remove it or add the matching '('.")
        elif ch == sep and depth == 0:
            pieces.append((offset + start, text[start:i]))
            start = i + 1
    if depth > 0:
        opened = [i for i, ch in enumerate(scan) if ch == "("]
        # the unmatched '(' is the last one still open: walk back to find it
        depth, unmatched = 0, opened[-1]
        for i in range(len(scan) - 1, -1, -1):
            if scan[i] == ")":
                depth += 1
            elif scan[i] == "(":
                if depth == 0:
                    unmatched = i
                    break
                depth -= 1
        raise _pointer(full, offset + unmatched, "This '(' is never closed: add the matching ')'.")
    pieces.append((offset + start, text[start:]))
    return pieces


def _grouping(text: str, pos: int, full: str) -> list[tuple[str, ...]]:
    """Expand a grouping expression ``g``, ``a:b`` or ``a/b/c`` into factors (tuples of columns)."""
    if not text.strip():
        raise _pointer(full, pos, "Nothing after the bar '|': name the grouping variable, "
                                  "e.g. '(1 | school)'.")
    levels = _split_outside_backticks(text, "/")
    out: list[tuple[str, ...]] = []
    prefix: tuple[str, ...] = ()
    at = pos
    for level in levels:
        cols = []
        for name in _split_outside_backticks(level, ":"):
            match = _NAME.match(name)
            if not match:
                raise _pointer(full, at + len(name) - len(name.lstrip()),
                               f"The grouping factor {name.strip()!r} is not a column name. Write "
                               f"a variable, 'a:b' for an interaction or 'a/b' for b nested in a.")
            cols.append(match.group(1)[1:-1] if match.group(1).startswith("`")
                        else match.group(1))
            at += len(name) + 1
        prefix = prefix + tuple(cols)
        out.append(prefix)
    return out


def _block_exprs(expr: str, pos: int, full: str, uncorrelated: bool) -> list[str]:
    """The formulaic expressions of the blocks on the left of a bar (one, or one per term)."""
    if not expr.strip():
        raise _pointer(full, pos, "Nothing before the bar '|': say which effects vary between "
                                  "groups, e.g. '(1 | g)' for a random intercept.")
    try:
        terms = [str(t) for t in Formula(expr)]
    except _FormulaicSyntaxError as exc:
        raise _pointer(full, pos, f"Could not read the random-effect expression {expr.strip()!r}: "
                                  f"{exc}") from None
    if not terms:
        raise _pointer(full, pos, f"The random-effect expression {expr.strip()!r} has no columns; "
                                  f"use '1' for a random intercept.")
    if not uncorrelated:
        return [expr.strip()]
    return ["1" if t == "1" else f"0 + {t}" for t in terms]


def parse_mixed_formula(text: str, without: str = "mlteach.ols") -> MixedFormula:
    """Split ``y ~ fixed + (expr | group) + ...`` into the fixed part and random-effect blocks.

    Raises `FormulaSyntaxError`, pointing at the offending token, for unbalanced parentheses,
    an empty side of a bar, a bar outside parentheses, or a formula without a random term
    (whose message suggests `without`, the tool for a model with no random effects).
    """
    if not isinstance(text, str) or "~" not in text:
        raise FormulaSyntaxError(
            f"The formula must be a string 'y ~ x + (1 | group)', outcome on the left; got "
            f"{text!r}.")
    text = r_powers(text)  # I(x^2) is a power, as in R, in the fixed and the random part
    tilde = text.index("~")
    lhs, rhs = text[:tilde], text[tilde + 1:]
    _split_top(text, "\0", 0, text)  # parenthesis balance of the whole formula
    fixed_terms: list[str] = []
    random: list[RandomTerm] = []
    offsets: list[str] = []
    for start, piece in _split_top(rhs, "+", tilde + 1, text):
        stripped = piece.strip()
        lead = start + len(piece) - len(piece.lstrip())
        if not stripped:
            raise _pointer(text, lead, "A '+' with nothing after it (or two '+' in a row).")
        bar = _top_bar(stripped)
        if stripped.startswith("(") and stripped.endswith(")") and _is_wrapped(stripped) \
                and _top_bar(stripped[1:-1]) is not None:
            inner = stripped[1:-1]
            k, width = _top_bar(inner)
            left, right = inner[:k], inner[k + width:]
            factors = _grouping(right, lead + 1 + k + width, text)
            blocks = _block_exprs(left, lead + 1, text, uncorrelated=(width == 2))
            for factor in factors:
                random += [RandomTerm(expr=b, factor=factor) for b in blocks]
        elif bar is not None or "|" in _mask_quoted(stripped):
            where = lead + _mask_quoted(stripped).index("|")
            raise _pointer(text, where, "A random-effect term must be in its own parentheses, "
                                        "e.g. 'y ~ x + (1 + x | g)'.")
        elif _call_of(stripped, "offset") is not None:
            inner = _call_of(stripped, "offset")
            if not inner.strip():
                raise _pointer(text, lead, "offset() needs an expression, e.g. "
                                           "'offset(log(exposure))'.")
            offsets.append(inner.strip())
        else:
            fixed_terms.append(stripped)
    if not random:
        raise FormulaSyntaxError(
            f"The formula {text!r} has no random-effect term such as '(1 | group)'. Add one, or "
            f"fit a model without random effects with {without}.")
    lhs, pair = _response(lhs, text)
    fixed = f"{lhs} ~ {' + '.join(fixed_terms) if fixed_terms else '1'}"
    return MixedFormula(text=text, fixed=fixed, random=tuple(random), offsets=tuple(offsets),
                        cbind=pair)


def _call_of(text: str, name: str) -> str | None:
    """The argument text of ``name(...)`` when `text` is exactly that call, else None."""
    head = text[:len(name)]
    rest = text[len(name):].lstrip()
    if head != name or not rest.startswith("(") or not _is_wrapped(rest):
        return None
    return rest[1:-1]


def _response(lhs: str, full: str) -> tuple[str, tuple[str, str] | None]:
    """The outcome; for ``cbind(s, f)`` the successes and the (s, f) pair.

    Each side is a column name (backticks removed) or an expression of columns, as lme4's
    ``cbind(incidence, size - incidence)``.
    """
    lhs = lhs.strip()
    inner = _call_of(lhs, "cbind")
    if inner is None:
        return lhs, None
    parts = [p.strip() for p in _split_outside_backticks(inner, ",")]
    if len(parts) != 2 or not all(parts):
        raise _pointer(full, 0, f"cbind() on the left of '~' takes two arguments, the "
                                f"successes and the failures, e.g. 'cbind(incidence, "
                                f"size - incidence) ~ period + (1 | herd)'; got {lhs!r}.")
    s, f = (p[1:-1] if _NAME.match(p) and p.startswith("`") else p for p in parts)
    return s, (s, f)


def _is_wrapped(text: str) -> bool:
    """True if the opening '(' of `text` is closed by its last character."""
    depth = 0
    for i, ch in enumerate(_mask_quoted(text)):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i == len(text) - 1
    return False


def _top_bar(text: str) -> tuple[int, int] | None:
    """Position and width (1 for '|', 2 for '||') of the first bar outside parentheses."""
    depth = 0
    scan = _mask_quoted(text)
    for i, ch in enumerate(scan):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return i, 2 if scan[i + 1:i + 2] == "|" else 1
    return None


__all__ = ["RandomTerm", "MixedFormula", "parse_mixed_formula"]
