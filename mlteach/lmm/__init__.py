"""Linear mixed models by REML and ML, as lme4's ``lmer`` (book chapters on multilevel models).

``mlteach.lmm(formula, data, reml=True)`` fits ``y ~ x + (1 + x | g)`` style models on the
shared core in `mlteach.mixed` (formula, random-effects structure, optimiser). The pieces here,
each usable on its own: `deviance` (penalised least squares and the profiled deviance; sparse
path), `single` (fast path for one grouping factor), `fit`, `result`.
"""

from mlteach.lmm.fit import lmm
from mlteach.lmm.result import LMMResult

__all__ = ["lmm", "LMMResult"]
