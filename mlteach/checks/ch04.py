"""Answer checks for chapter 4, fixed effects.

Exercises 4.1 and 4.6 are conceptual (no check). Exercises 4.2 and 4.3 use the ``wage_panel``
data that ship with linearmodels (Vella & Verbeek 1998), which the book does not copy into
mlteach; the checks load them from there.
"""

from __future__ import annotations

import warnings

from mlteach.data import load
from mlteach.exercises import Expected, register
from mlteach.ols import ols
from mlteach.panel import first_difference, hausman, mundlak_test, swamy_arora, within

WAGE_FORMULA = "lwage ~ exper + expersq + union + married"


def _wages():
    from linearmodels.datasets import wage_panel

    return wage_panel.load()


@register("4.2", asks="the fixed effects (within) estimate of the union coefficient",
          hints=["mlteach.within(formula, wages, group='nr') fits person fixed effects; take "
                 ".params['union']."])
def union_premium_fe():
    wages = _wages()
    return Expected(float(within(WAGE_FORMULA, wages, group="nr").params["union"]), mistakes={
        "the pooled least-squares coefficient (no person effects)":
            float(ols(WAGE_FORMULA, wages).params["union"]),
        "the random effects coefficient (swamy_arora)":
            float(swamy_arora(WAGE_FORMULA, wages, group="nr").params["union"]),
    })


@register("4.3", rtol=1e-3, asks="the cluster-robust Mundlak (regression-based Hausman) statistic",
          hints=["mlteach.mundlak_test(formula, wages, group='nr') uses cluster-robust errors by "
                 "default; take .statistic."])
def wage_mundlak_statistic():
    wages = _wages()
    fe = within(WAGE_FORMULA, wages, group="nr")
    re = swamy_arora(WAGE_FORMULA, wages, group="nr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classical = hausman(fe, re)
    return Expected(float(mundlak_test(WAGE_FORMULA, wages, group="nr").statistic), mistakes={
        "the classical Hausman statistic (mlteach.hausman), not the robust test":
            float(classical.statistic),
        "the Mundlak statistic with classical standard errors (cov='classical')":
            float(mundlak_test(WAGE_FORMULA, wages, group="nr", cov="classical").statistic),
    })


@register("4.4", asks="the first-difference slope of value (no intercept), full Grunfeld panel",
          hints=["mlteach.first_difference('inv ~ 0 + value + capital', grunfeld, group='firm', "
                 "time='year')."])
def grunfeld_fd_value():
    grunfeld = load("grunfeld")
    return Expected(
        float(first_difference("inv ~ 0 + value + capital", grunfeld, group="firm",
                               time="year").params["value"]),
        mistakes={
            "the within (fixed effects) slope of value":
                float(within("inv ~ value + capital", grunfeld, group="firm").params["value"]),
            "the first-difference slope with an intercept in the differenced model":
                float(first_difference("inv ~ value + capital", grunfeld, group="firm",
                                       time="year").params["value"]),
        })


@register("4.5", asks="the ratio of the cluster-robust to the classical fixed effects standard "
                      "error of Days",
          hints=["Fit mlteach.within('Reaction ~ Days', sleep, group='Subject') twice, once with "
                 "cov='cluster', and divide the .bse of Days."])
def sleepstudy_fe_se_ratio():
    sleep = load("sleepstudy")
    classical = within("Reaction ~ Days", sleep, group="Subject").bse["Days"]
    clustered = within("Reaction ~ Days", sleep, group="Subject", cov="cluster").bse["Days"]
    pooled = ols("Reaction ~ Days", sleep).bse["Days"]
    return Expected(float(clustered / classical), mistakes={
        "the classical over the cluster-robust standard error (the ratio upside down)":
            float(classical / clustered),
        "the cluster-robust fixed effects standard error over the pooled classical one":
            float(clustered / pooled),
    })
