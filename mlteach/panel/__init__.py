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
"""

from mlteach.panel._core import PanelResult
from mlteach.panel.compare import Comparison, compare
from mlteach.panel.fixed import LSDVResult, between, first_difference, lsdv, twoway_demean, within
from mlteach.panel.hausman import hausman, mundlak_test
from mlteach.results import TestResult, wald_test
from mlteach.panel.random import (
    REWBResult, RandomEffectsResult, VarianceComponents, quasi_demeaned_gls, rewb, swamy_arora,
    swamy_arora_components, theta,
)

__all__ = [
    "within", "lsdv", "first_difference", "between", "swamy_arora", "quasi_demeaned_gls",
    "rewb", "hausman", "mundlak_test", "compare", "wald_test", "theta", "twoway_demean",
    "swamy_arora_components", "PanelResult", "LSDVResult", "RandomEffectsResult", "REWBResult",
    "TestResult", "Comparison", "VarianceComponents",
]
