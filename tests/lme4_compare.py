"""Helpers shared by the lme4 reference tests: matching lme4's names to ours, and tolerances.

lme4 names terms 'sxMale', '(Intercept)', 'I(cses^2)' and factors 'childid:schoolid' (or
'school.1' for a second `||` block); formulaic and mlteach name them 'sx[T.Male]', 'Intercept',
'I(cses ** 2)' and 'schoolid:childid'. These functions put both on one footing.
"""

from __future__ import annotations

import re

import numpy as np


def best_fit(case: dict) -> dict:
    """lme4's best fit for a reference case: the tight restart when it was higher, else the default."""
    return case["best"] if case["best_is"] == "tight" else case["results"]


def norm(term: str) -> str:
    """'sx[T.Male]' and 'sxMale' → 'sxMale'; 'I(cses ** 2)' and 'I(cses^2)' → 'I(cses^2)';
    'sector[Catholic]' → 'sectorCatholic'; '(Intercept)' → 'Intercept'."""
    term = term.replace("(Intercept)", "Intercept").replace(" ", "").replace("**", "^")
    return re.sub(r"\[(?:T\.)?([^\]]+)\]", r"\1", term)


def positions(r_terms, ours) -> list[int]:
    """Where each of lme4's terms sits among ours."""
    ours_n = [norm(t) for t in ours]
    return [ours_n.index(norm(t)) for t in r_terms]


def factor(r_factor: str, result) -> tuple[str, bool]:
    """lme4's group name (e.g. 'childid:schoolid') → ours, and whether ':' parts are reversed."""
    base = re.sub(r"\.\d+$", "", r_factor)
    if base in result.group_names:
        return base, False
    rev = ":".join(reversed(base.split(":")))
    assert rev in result.group_names, (r_factor, result.group_names)
    return rev, True


def close(ours, theirs, scale, rtol) -> None:
    """Assert max |ours − theirs| / scale ≤ rtol."""
    diff = float(np.max(np.abs(np.asarray(ours, float) - np.asarray(theirs, float)))) / scale
    assert diff <= rtol, f"relative difference {diff:.3g} > {rtol}"
