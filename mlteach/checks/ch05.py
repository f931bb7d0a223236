"""Answer checks for chapter 5, random slopes.

Exercises 5.1 (standard deviation or standard error) and 5.4 (a random slope for a school-level
variable) are conceptual and have no check.
"""

from __future__ import annotations

import numpy as np

from mlteach.data import load
from mlteach.exercises import Expected, register
from mlteach.lmm import lmm
from mlteach.lrt import lrt


@register("5.2", rtol=1e-3,
          asks="the standard deviation of the country-specific price elasticities (τ₁ of lrpmg)",
          hints=["Fit lgaspcar ~ lincomep + lrpmg + lcarpcap + (1 + lrpmg | country) by REML "
                 "and take the square root of the lrpmg diagonal element of fit.cov_re."])
def gasoline_elasticity_sd():
    gasoline = load("gasoline")
    fit = lmm("lgaspcar ~ lincomep + lrpmg + lcarpcap + (1 + lrpmg | country)", gasoline)
    ml = lmm("lgaspcar ~ lincomep + lrpmg + lcarpcap + (1 + lrpmg | country)", gasoline,
             reml=False)
    return Expected(float(np.sqrt(fit.cov_re.loc["lrpmg", "lrpmg"])), mistakes={
        "the standard error of the average elasticity (a standard error, not the spread of "
        "the country slopes)": float(fit.bse["lrpmg"]),
        "the average elasticity itself": float(fit.fixef["lrpmg"]),
        "the maximum-likelihood (not REML) estimate":
            float(np.sqrt(ml.cov_re.loc["lrpmg", "lrpmg"])),
    })


@register("5.3", rtol=1e-3,
          asks="the share of the cses slope variance explained by the two cross-level "
               "interactions (sector × cses and meanses × cses)",
          hints=["Compare the cses variance in fit.cov_re of mAch ~ cses + meanses + "
                 "(1 + cses | school) with that of mAch ~ (meanses + sector) * cses + "
                 "(1 + cses | school): 1 − after / before."])
def hsb_slope_variance_explained():
    hsb = load("hsb82")
    before = lmm("mAch ~ cses + meanses + (1 + cses | school)", hsb).cov_re.loc["cses", "cses"]
    after = lmm("mAch ~ (meanses + sector) * cses + (1 + cses | school)",
                hsb).cov_re.loc["cses", "cses"]
    sector_only = lmm("mAch ~ cses * sector + meanses + (1 + cses | school)",
                      hsb).cov_re.loc["cses", "cses"]
    return Expected(float(1 - after / before), mistakes={
        "the share still unexplained (after / before)": float(after / before),
        "the share explained by sector alone": float(1 - sector_only / before),
        "a ratio of standard deviations instead of variances":
            float(1 - np.sqrt(after / before)),
    })


@register("5.5", rtol=1e-2,
          asks="the boundary-corrected p-value of the test of the firm-level slope variance "
               "of value",
          hints=["mlteach.lrt(smaller, larger) returns p_naive and p_boundary; both models are "
                 "REML fits with the same fixed effects.",
                 "If the larger fit warns about convergence, measure value in billions."])
def grunfeld_slope_test():
    grunfeld = load("grunfeld")
    grunfeld["value_bn"] = grunfeld["value"] / 1000     # the statistic does not depend on the unit
    test = lrt(lmm("inv ~ value_bn + capital + (1 | firm)", grunfeld),
               lmm("inv ~ value_bn + capital + (1 + value_bn | firm)", grunfeld))
    return Expected(float(test.p_boundary), mistakes={
        "the naive χ²(2) p-value": float(test.p_naive),
        "the likelihood-ratio statistic": float(test.statistic),
    })
