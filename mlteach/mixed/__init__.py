"""The shared core of the mixed models: what `mlteach.lmm` and `mlteach.glmm` are built on.

* `formula`: lme4's random-effects syntax (bars, ``||``, ``/``, ``:``, several terms,
  ``offset()``) parsed into the fixed part and random-effect terms;
* `structure`: the random-effects structure, the blocks of Z and of Λ_θ (θ ↦ Λ_θ);
* `optimize`: the bounded quasi-Newton search, Newton polish and convergence checks.

The estimator families sit on top: `mlteach.lmm` (profiled (RE)ML deviance) and `mlteach.glmm`
(penalised IRLS, the Laplace approximation and adaptive quadrature).
"""
