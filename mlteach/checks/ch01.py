"""Answer checks for chapter 1, the classical linear model and clustered data.

Exercise 1.1 is conceptual (no check). Exercise 1.4 is a coverage simulation whose numbers depend
on the student's random draws and on how many replications they run, so it has no check either.
"""

from __future__ import annotations

from mlteach.data import load
from mlteach.design import decompose_variance
from mlteach.exercises import Expected, register
from mlteach.ols import ols


@register("1.2", asks="the ratio of the CR1 to the classical standard error of the Days slope",
          hints=["Fit Reaction ~ Days twice, once with cluster='Subject', and divide the "
                 "standard errors (.bse) of Days."])
def sleepstudy_se_ratio():
    sleep = load("sleepstudy")
    ratio = (ols("Reaction ~ Days", sleep, cluster="Subject").bse
             / ols("Reaction ~ Days", sleep).bse)
    return Expected(float(ratio["Days"]), mistakes={
        "the classical over the CR1 standard error (the ratio upside down)":
            float(1 / ratio["Days"]),
        "the ratio for the intercept": float(ratio["Intercept"]),
    })


@register("1.3", asks="the between-firm share of the variance of value",
          hints=["mlteach.decompose_variance('value', 'firm', grunfeld) splits the variance."])
def grunfeld_between_share():
    parts = decompose_variance("value", "firm", load("grunfeld"))
    return Expected(float(parts["between_share"]), mistakes={
        "the within-firm share": float(parts["within"] / parts["total"]),
        "the between-firm variance (a variance, not a share of the total)":
            float(parts["between"]),
    })


@register("1.5", rtol=0.3, asks="the between share for 200 groups of 5",
          hints=["Draw 1,000 independent normal values, give each run of 5 the same group, and "
                 "take 'between_share' from mlteach.decompose_variance."])
def unclustered_between_share():
    # For independent x, E[between SS] = (G - 1) σ² and E[total SS] = (N - 1) σ², so the share
    # is about (G - 1)/(N - 1) ≈ 1/m. One sample has a relative SD near sqrt(2/(G - 1)) ≈ 10%,
    # hence rtol=0.3 (three SDs): any honest simulation passes.
    def expected_share(groups: int, m: int) -> float:
        return (groups - 1) / (groups * m - 1)

    return Expected(expected_share(200, 5), mistakes={
        "the share for groups of 50": expected_share(200, 50),
        "the within-group share": 1 - expected_share(200, 5),
    })
