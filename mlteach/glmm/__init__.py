"""Generalized linear mixed models with one random intercept (book chapter on GLMMs).

Logistic and Poisson models ``y ~ x + (1 | g)`` fitted by the Laplace approximation, adaptive
Gauss–Hermite quadrature or penalised quasi-likelihood, matching lme4::glmer and
MASS::glmmPQL. Modules follow the pipeline: `model` (formula and data, checked), `family`
(the response distributions and the plain GLM), `quadrature` (conditional modes and the
approximate marginal likelihood), `pql` (the working linear mixed model), `fit` (optimisation
and the public functions), `results` (the fitted model).
"""

from mlteach.glmm.fit import compare_glmm_methods, glmm
from mlteach.glmm.quadrature import marginal_loglik
from mlteach.glmm.results import GLMMResult

__all__ = ["glmm", "compare_glmm_methods", "GLMMResult", "marginal_loglik"]
