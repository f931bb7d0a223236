"""Answer checks for chapter 2, random intercepts.

Exercise 2.1 is conceptual (no check). Exercise 2.6 is a bias simulation whose numbers depend on
the student's random draws and number of replications, so it has no check either.
"""

from __future__ import annotations

import warnings

from mlteach.data import load
from mlteach.errors import BoundaryFitWarning
from mlteach.exercises import Expected, register
from mlteach.lmm import lmm
from mlteach.panel import swamy_arora, within


@register("2.2", rtol=1e-3, atol=1e-6,
          asks="the untruncated analysis-of-variance estimate (MSB - MSW) / n of the batch "
               "variance in dyestuff2",
          hints=["MSB = n * sum((batch mean - grand mean)^2) / (J - 1); "
                 "MSW = sum((Yield - batch mean)^2) / (N - J); n = 5 per batch.",
                 "The estimate is allowed to be negative: do not truncate it at zero."])
def dyestuff2_anova_tau2():
    data = load("dyestuff2")
    n = 5
    batch = data.groupby("Batch", observed=True)["Yield"]
    msb = n * ((batch.mean() - data["Yield"].mean()) ** 2).sum() / (batch.ngroups - 1)
    msw = ((data["Yield"] - batch.transform("mean")) ** 2).sum() / (len(data) - batch.ngroups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        fit = lmm("Yield ~ 1 + (1 | Batch)", data)
    return Expected(float((msb - msw) / n), mistakes={
        "the REML estimate, truncated at zero": float(fit.cov_re.iloc[0, 0]),
        "MSB - MSW without dividing by the batch size": float(msb - msw),
        "MSW - MSB (the difference the wrong way round), divided by n": float((msw - msb) / n),
    })


@register("2.3", asks="the intraclass correlation of the REML model Reaction ~ Days + (1 | Subject)",
          hints=["fit.icc() of the model with Days gives it; it is tau^2 / (tau^2 + sigma^2) "
                 "with variances, not standard deviations."])
def sleepstudy_icc():
    sleep = load("sleepstudy")
    with_days = lmm("Reaction ~ Days + (1 | Subject)", sleep)
    null = lmm("Reaction ~ 1 + (1 | Subject)", sleep)
    tau = float(with_days.cov_re.iloc[0, 0]) ** 0.5
    return Expected(float(with_days.icc()), mistakes={
        "the ICC of the null model without Days": float(null.icc()),
        "the ratio of standard deviations tau / (tau + sigma)": tau / (tau + with_days.sigma),
    })


@register("2.4", asks="the share of the total variance due to samples in penicillin",
          hints=["Fit diameter ~ 1 + (1 | plate) + (1 | sample); fit.icc() gives one share per "
                 "factor."])
def penicillin_sample_share():
    fit = lmm("diameter ~ 1 + (1 | plate) + (1 | sample)", load("penicillin"))
    shares = fit.icc()
    var = fit.varcorr()["variance"]
    return Expected(float(shares["sample"]), mistakes={
        "the plate share": float(shares["plate"]),
        "the sample share of the between-group variance only (sigma^2 left out)":
            float(var.iloc[1] / (var.iloc[0] + var.iloc[1])),
        "the sample share ignoring the plate variance":
            float(var.iloc[1] / (var.iloc[1] + var.iloc[2])),
    })


@register("2.5", rtol=1e-3, atol=1e-6,
          asks="the random-intercept (REML) coefficient of lincomep minus the within coefficient",
          hints=["mlteach.lmm('lgaspcar ~ lincomep + lrpmg + lcarpcap + (1 | country)', gasoline)"
                 " and mlteach.within('lgaspcar ~ lincomep + lrpmg + lcarpcap', gasoline, "
                 "group='country')."])
def gasoline_ri_minus_within():
    gas = load("gasoline")
    formula = "lgaspcar ~ lincomep + lrpmg + lcarpcap"
    ri = float(lmm(formula + " + (1 | country)", gas).fixef["lincomep"])
    fe = float(within(formula, gas, group="country").params["lincomep"])
    sa = float(swamy_arora(formula, gas, group="country").params["lincomep"])
    return Expected(ri - fe, mistakes={
        "the Swamy–Arora random-effects coefficient minus the within one": sa - fe,
        "the random-intercept coefficient itself": ri,
        "the within coefficient itself": fe,
    })
