"""Econometric panel estimators and tests (book chapters on fixed effects, random effects and
the Mundlak device).

=====================  ===========================================  ==================
function               estimator                                    plm equivalent
=====================  ===========================================  ==================
`within`               fixed effects by demeaning (one- or two-way) ``model="within"``
`lsdv`                 fixed effects by dummy variables             ``lm(y ~ x + factor(i))``
`first_difference`     first differences                            ``model="fd"``
`between`              regression on group means                    ``model="between"``
`swamy_arora`          random effects, Swamy–Arora GLS              ``random.method="swar"``
`quasi_demeaned_gls`   GLS for a given θ (0 = pooled, 1 = within)   —
`rewb`                 within-between (Mundlak) random effects      ``y ~ x + Between(x)``
`hausman`              Hausman test                                 ``phtest(fe, re)``
`mundlak_test`         regression-based robust Hausman test         ``phtest(method="aux")``
`compare`              fits side by side                            —
=====================  ===========================================  ==================

Modules, each importing only those above it: `core` (the panel at the door, least squares,
covariance matrices) → `results` (one result class per estimator family, each owning its
`predict`) → `fixed`, `random` (the estimators) → `hausman` (the tests comparing them) →
`compare` (fits side by side). `TestResult` and `wald_test` come from `mlteach.results`.
"""

from mlteach.panel.compare import Comparison, compare
from mlteach.panel.fixed import between, first_difference, lsdv, twoway_demean, within
from mlteach.panel.hausman import hausman, mundlak_test
from mlteach.panel.random import (
    VarianceComponents, quasi_demeaned_gls, rewb, swamy_arora, swamy_arora_components, theta,
)
from mlteach.panel.results import (
    BetweenResult, FirstDifferenceResult, FixedEffectsResult, GLSResult, LSDVResult, PanelResult,
    REWBResult, RandomEffectsResult,
)
from mlteach.results import TestResult, wald_test

__all__ = [
    "within", "lsdv", "first_difference", "between", "swamy_arora", "quasi_demeaned_gls",
    "rewb", "hausman", "mundlak_test", "compare", "wald_test", "theta", "twoway_demean",
    "swamy_arora_components", "PanelResult", "FixedEffectsResult", "LSDVResult",
    "FirstDifferenceResult", "BetweenResult", "GLSResult", "RandomEffectsResult", "REWBResult",
    "TestResult", "Comparison", "VarianceComponents",
]
