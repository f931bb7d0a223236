"""Answer checks for chapter 8, longitudinal data and growth curves.

Exercise 8.4 (panel model or growth curve for opinion in countries over time) is conceptual and
has no check. Exercise 8.2 uses the ``wage_panel`` data that ship with linearmodels (Vella &
Verbeek 1998); the check loads them from there, as chapter 4's checks do.
"""

from __future__ import annotations

import numpy as np

from mlteach.data import load
from mlteach.exercises import Expected, register
from mlteach.lmm import lmm
from mlteach.lrt import lrt


@register("8.1", rtol=1e-3,
          asks="the standard deviation of the subjects' reaction times at day 9 (the intercept "
               "SD of (Days | Subject) with time counted from day 9)",
          hints=["Make a column t = Days - 9, fit Reaction ~ t + (t | Subject) by REML and take "
                 "the square root of the Intercept diagonal element of fit.cov_re."])
def sleepstudy_sd_at_day9():
    sleep = load("sleepstudy")
    at9 = lmm("Reaction ~ t + (t | Subject)", sleep.assign(t=sleep["Days"] - 9))
    at0 = lmm("Reaction ~ Days + (Days | Subject)", sleep)
    return Expected(float(np.sqrt(at9.cov_re.loc["Intercept", "Intercept"])), mistakes={
        "the intercept SD with time counted from day 0": float(
            np.sqrt(at0.cov_re.loc["Intercept", "Intercept"])),
        "the slope SD (the same in both parameterisations)": float(
            np.sqrt(at9.cov_re.loc["t", "t"])),
        "the residual SD": float(at9.sigma),
    })


def _wages():
    from linearmodels.datasets import wage_panel

    wages = wage_panel.load()
    return wages.assign(t=wages["year"] - 1980)


@register("8.2", rtol=1e-3,
          asks="the standard deviation of the men's yearly wage growth rates (the slope SD of "
               "lwage ~ t + (1 + t | nr), t = year - 1980, REML)",
          hints=["Take the square root of the t diagonal element of fit.cov_re; fit.bse['t'] "
                 "is the standard error of the average growth rate, a different quantity."])
def wage_growth_sd():
    wages = _wages()
    fit = lmm("lwage ~ t + (1 + t | nr)", wages)
    return Expected(float(np.sqrt(fit.cov_re.loc["t", "t"])), mistakes={
        "the standard error of the average growth rate": float(fit.bse["t"]),
        "the average growth rate": float(fit.fixef["t"]),
        "the SD of the intercepts": float(np.sqrt(fit.cov_re.loc["Intercept", "Intercept"])),
    })


@register("8.3", rtol=1e-3,
          asks="the likelihood-ratio statistic for the firm-specific trends in log investment "
               "((1 | firm) against (1 + t | firm), REML)",
          hints=["mlteach.lrt(smaller, larger).statistic; both fits of log(inv) ~ t by REML, "
                 "with t = year - 1935."])
def grunfeld_trend_lr():
    grunfeld = load("grunfeld")
    data = grunfeld.assign(t=grunfeld["year"] - 1935, linv=np.log(grunfeld["inv"]))
    small = lmm("linv ~ t + (1 | firm)", data)
    large = lmm("linv ~ t + (1 + t | firm)", data)
    test = lrt(small, large)
    return Expected(float(test.statistic), mistakes={
        "the boundary-corrected p-value (the exercise asks for the statistic)":
            float(test.p_boundary),
        "the naive p-value (the exercise asks for the statistic)": float(test.p_naive),
        "half the statistic (the log-likelihood difference, not twice it)":
            float(test.statistic / 2),
    })


@register("8.5", rtol=1e-3,
          asks="the average daily slope of (Days | Subject) fitted to days 2 to 9 only",
          hints=["Keep the rows with Days >= 2, count time from the baseline day (t = Days - "
                 "2), fit Reaction ~ t + (t | Subject) by REML and take fit.fixef['t']."])
def sleepstudy_slope_after_baseline():
    sleep = load("sleepstudy")
    after = sleep[sleep["Days"] >= 2].assign(t=lambda d: d["Days"] - 2)
    fit = lmm("Reaction ~ t + (t | Subject)", after)
    full = lmm("Reaction ~ Days + (Days | Subject)", sleep)
    return Expected(float(fit.fixef["t"]), mistakes={
        "the slope fitted to all ten days": float(full.fixef["Days"]),
        "the SD of the subjects' slopes": float(np.sqrt(fit.cov_re.loc["t", "t"])),
    })
