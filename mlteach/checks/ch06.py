"""Answer checks for chapter 6, shrinkage and partial pooling.

Exercises 6.1 and 6.5 are conceptual (no check). Exercise 6.4 is a simulation whose numbers
depend on the student's draws, so it has no check either.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlteach.data import load
from mlteach.exercises import Expected, register
from mlteach.lmm import lmm
from mlteach.pooling import shrinkage_factor, shrinkage_table


@register("6.2", asks="the shrinkage factor lambda of the dyestuff batches (REML)",
          hints=["lambda = tau^2 / (tau^2 + sigma^2 / n) with tau^2 = fit.cov_re.iloc[0, 0], "
                 "sigma^2 = fit.sigma ** 2 and n = 5 preparations per batch."])
def dyestuff_lambda():
    data = load("dyestuff")
    fit = lmm("Yield ~ 1 + (1 | Batch)", data)
    fit_ml = lmm("Yield ~ 1 + (1 | Batch)", data, reml=False)
    tau2 = float(fit.cov_re.iloc[0, 0])
    sigma2 = float(fit.sigma) ** 2
    lam = float(shrinkage_factor(tau2, sigma2, 5))
    return Expected(lam, mistakes={
        "1 - lambda, the fraction of the distance that is removed": 1 - lam,
        "the intraclass correlation tau^2 / (tau^2 + sigma^2), without the batch size":
            tau2 / (tau2 + sigma2),
        "a factor computed with standard deviations instead of variances":
            float(np.sqrt(tau2) / (np.sqrt(tau2) + float(fit.sigma) / 5)),
        "the maximum-likelihood (not REML) factor": float(shrinkage_factor(
            float(fit_ml.cov_re.iloc[0, 0]), float(fit_ml.sigma) ** 2, 5)),
    })


@register("6.3", asks="the partial-pooling proportion of users in the district with the fewest "
                      "women (linear model use01 ~ 1 + (1 | district))",
          hints=["Code use as 1.0 for 'Y' and 0.0 otherwise, fit the model with mlteach.lmm and "
                 "read the 'partial_pooling' column of mlteach.shrinkage_table(fit) for the "
                 "district with the smallest 'n'."])
def contraception_smallest_district():
    data = load("contraception")
    data = data.assign(use01=(data["use"] == "Y").astype(float))
    table = shrinkage_table(lmm("use01 ~ 1 + (1 | district)", data)).loc["Intercept"]
    row = table.loc[table["n"].idxmin()]
    return Expected(float(row["partial_pooling"]), mistakes={
        "the district's own proportion (no pooling)": float(row["no_pooling"]),
        "the overall intercept (complete shrinkage)": float(row["fixed_effect"]),
        "the district's predicted deviation (the BLUP) without the intercept":
            float(row["partial_pooling"] - row["fixed_effect"]),
        "the shrinkage factor of the district": float(row["shrinkage"]),
    })


@register("6.6", rtol=1e-3, atol=1e-4,
          asks="the mean over Catholic schools of (partial-pooling prediction - own mean) in "
               "the model mAch ~ sector + (1 | school)",
          hints=["The partial-pooling prediction of a school's mean is the fixed part for its "
                 "sector plus its BLUP; fit.predict(data, include_random=True) averaged by "
                 "school gives it.",
                 "Subtract the school's own mean of mAch, then average over Catholic schools."])
def catholic_pull():
    hsb = load("hsb82")
    catholic = hsb.groupby("school", observed=True)["sector"].first() == "Catholic"
    own = hsb.groupby("school", observed=True)["mAch"].mean()

    def pull(formula: str) -> float:
        fit = lmm(formula, hsb)
        predicted = pd.Series(np.asarray(fit.predict(hsb, include_random=True)), index=hsb.index)
        by_school = predicted.groupby(hsb["school"], observed=True).mean()
        return float((by_school - own)[catholic].mean())

    return Expected(pull("mAch ~ sector + (1 | school)"), mistakes={
        "the pull in the empty model without sector": pull("mAch ~ 1 + (1 | school)"),
    })
