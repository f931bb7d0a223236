"""Answer checks for chapter 7, nonlinear models (random intercepts in logistic and Poisson models).

Exercise 7.1 is conceptual (no check). Exercise 7.5 is a bias simulation whose numbers depend on
the student's random draws and number of replications, so it has no check either.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import special

from mlteach.data import load
from mlteach.errors import SeparationWarning
from mlteach.exercises import Expected, register
from mlteach.glmm import glmm

CONTRACEPTION = "use ~ age + I(age**2) + urban + livch + (1 | district)"


def _latent_icc(sd: float) -> float:
    return sd ** 2 / (sd ** 2 + math.pi ** 2 / 3)


@register("7.2", rtol=2e-3,
          asks="the latent-scale ICC of the cbpp model fitted by adaptive quadrature (25 nodes)",
          hints=["mlteach.glmm('incidence ~ period + (1 | herd)', cbpp, trials='size', "
                 "method='agq', nagq=25).icc() gives it.",
                 "The latent ICC is tau^2 / (tau^2 + pi^2 / 3), with the variance tau^2 of the "
                 "herd intercepts."])
def cbpp_latent_icc():
    cbpp = load("cbpp")
    formula = "incidence ~ period + (1 | herd)"
    agq = glmm(formula, cbpp, trials="size", method="agq", nagq=25)
    pql = glmm(formula, cbpp, trials="size", method="pql")
    tau = agq.sd_re
    return Expected(float(agq.icc()), mistakes={
        "the ICC of the PQL fit": _latent_icc(pql.sd_re),
        "the SD of the herd intercepts, not the ICC": float(tau),
        "tau / (tau + pi^2/3), with the standard deviation in place of the variance":
            float(tau / (tau + math.pi ** 2 / 3)),
        "the linear-model ICC with a residual variance of 1": float(tau ** 2 / (tau ** 2 + 1)),
    })


@register("7.3", rtol=5e-3, atol=1e-5,
          asks="the population-averaged difference in the probability of use, urban minus "
               "rural, at age 0 with two living children",
          hints=["Compute the linear predictor without the district intercept "
                 "(predict(..., type='link', include_random=False)) for an urban and a rural "
                 "woman, then average expit(eta + mu) over mu ~ N(0, sd_re^2) for each, and "
                 "subtract.",
                 "Average the probabilities, not the linear predictors."])
def contraception_marginal_difference():
    contra = load("contraception")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeparationWarning)
        fit = glmm(CONTRACEPTION, contra, method="agq", nagq=25)
    woman = pd.DataFrame({
        "age": [0.0, 0.0],
        "urban": pd.Categorical(["Y", "N"], categories=["N", "Y"]),
        "livch": pd.Categorical(["2", "2"], categories=["0", "1", "2", "3+"]),
    })
    eta = fit.predict(woman, type="link", include_random=False).to_numpy()
    z, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()
    p_avg = special.expit(eta[:, None] + fit.sd_re * z[None, :]) @ w
    p_typ = special.expit(eta)
    return Expected(float(p_avg[0] - p_avg[1]), mistakes={
        "the difference for a typical district (mu = 0), not averaged over districts":
            float(p_typ[0] - p_typ[1]),
        "the conditional log odds ratio of urban residence": float(fit.fixef["urban[T.Y]"]),
        "the conditional odds ratio of urban residence":
            float(np.exp(fit.fixef["urban[T.Y]"])),
    })


@register("7.4", rtol=2e-3,
          asks="the SD of the chick-level intercepts in TICKS ~ YEAR + cHEIGHT + (1 | INDEX), "
               "Poisson, adaptive quadrature with 25 nodes",
          hints=["mlteach.glmm(..., family='poisson', method='agq', nagq=25).sd_re.",
                 "With one observation per group Laplace and quadrature differ: use nagq=25."])
def grouseticks_chick_sd():
    grouse = load("grouseticks")
    formula = "TICKS ~ YEAR + cHEIGHT + (1 | INDEX)"
    agq = glmm(formula, grouse, family="poisson", method="agq", nagq=25)
    laplace = glmm(formula, grouse, family="poisson", method="laplace")
    location = glmm("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", grouse, family="poisson",
                    method="agq", nagq=25)
    return Expected(float(agq.sd_re), mistakes={
        "the Laplace estimate": float(laplace.sd_re),
        "the SD of the location intercepts (the chapter's model)": float(location.sd_re),
        "the rate ratio exp(SD), not the SD": float(np.exp(agq.sd_re)),
    })
