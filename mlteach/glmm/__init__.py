"""Generalized linear mixed models (book chapter on GLMMs).

Logistic (logit, probit, cloglog) and Poisson models with any random part lme4 accepts
(random slopes, nested, crossed, several terms), fitted by the Laplace approximation, adaptive
Gauss–Hermite quadrature (one scalar random effect) or penalised quasi-likelihood, matching
lme4::glmer and MASS::glmmPQL. Modules follow the pipeline: `model` (formula and data, checked),
`family` (the response distributions and the plain GLM), `laplace` (penalised IRLS and the
Laplace deviance for any structure), `quadrature` (the batched one-intercept path, Laplace and
AGQ), `pql` (the working linear mixed model), `fit` (optimisation and the public functions),
`results` (the fitted model).
"""

from mlteach.glmm.fit import compare_glmm_methods, glmm
from mlteach.glmm.quadrature import marginal_loglik
from mlteach.glmm.results import GLMMResult

__all__ = ["glmm", "compare_glmm_methods", "GLMMResult", "marginal_loglik"]
