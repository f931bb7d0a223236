"""Linear mixed models by REML and ML, as lme4's ``lmer`` (book chapters on multilevel models).

``mlteach.lmm(formula, data, reml=True)`` fits ``y ~ x + (1 + x | g)`` style models. The pieces,
each usable on its own: `formula` (lme4 syntax → fixed part + random blocks), `structure`
(Z, grouping factors, θ ↦ Λ_θ), `deviance` (penalised least squares and the profiled deviance;
sparse path), `single` (fast path for one grouping factor), `optimize`, `fit`, `result`.
"""

from mlteach.lmm.fit import lmm
from mlteach.lmm.result import LMMResult

__all__ = ["lmm", "LMMResult"]
