"""Answer checks for chapter 3, Mundlak and group-mean centering.

Exercise 3.1 is conceptual (no check). Exercise 3.5 is a simulation; its check compares the
student's estimate with the population value of the between regression in that design, with a
tolerance wide enough for any honest seeded simulation of the stated size.
"""

from __future__ import annotations

from mlteach.data import load
from mlteach.design import mundlak
from mlteach.exercises import Expected, register
from mlteach.lmm import lmm
from mlteach.panel import within


@register("3.2", rtol=1e-3, asks="the contextual effect of value (coefficient of the firm mean "
          "of value in the Mundlak model)",
          hints=["Add the firm means with mlteach.mundlak(grunfeld, ['value', 'capital'], "
                 "'firm') and fit inv ~ value + capital + value_mean + capital_mean "
                 "+ (1 | firm)."])
def grunfeld_contextual():
    data = mundlak(load("grunfeld"), ["value", "capital"], "firm")
    fit = lmm("inv ~ value + capital + value_mean + capital_mean + (1 | firm)", data)
    ctx = float(fit.fixef["value_mean"])
    w = float(fit.fixef["value"])
    return Expected(ctx, mistakes={
        "the between effect of value (within plus contextual)": ctx + w,
        "the within effect of value": w,
        "the contextual effect of capital": float(fit.fixef["capital_mean"]),
    })


@register("3.3", rtol=0.0, atol=1e-6,
          asks="the random intercept slope of Days minus the within (fixed effects) slope",
          hints=["Subtract mlteach.within('Reaction ~ Days', sleep, group='Subject')"
                 ".params['Days'] from the lmm coefficient of Days."])
def sleepstudy_ri_minus_within():
    sleep = load("sleepstudy")
    ri = float(lmm("Reaction ~ Days + (1 | Subject)", sleep).fixef["Days"])
    fe = float(within("Reaction ~ Days", sleep, group="Subject").params["Days"])
    return Expected(ri - fe, mistakes={
        "the random intercept slope itself, not the difference": ri,
        "the within slope itself, not the difference": fe,
    })


@register("3.4", rtol=1e-3, asks="the contextual effect of the school's minority proportion",
          hints=["Make minority = (minrty == 'Yes') as 0/1, add school means of minority and ses "
                 "with mlteach.mundlak, and keep minority itself uncentred."])
def hsb_minority_contextual():
    hsb = load("hsb82")
    hsb["minority"] = (hsb["minrty"] == "Yes").astype(float)
    hsb = mundlak(hsb, ["minority", "ses"], "school")
    fit = lmm("mAch ~ minority + minority_mean + ses_within + ses_mean + (1 | school)", hsb)
    rewb = lmm("mAch ~ minority_within + minority_mean + ses_within + ses_mean + (1 | school)",
               hsb)
    ctx = float(fit.fixef["minority_mean"])
    return Expected(ctx, mistakes={
        "the between effect (the coefficient of minority_mean next to the centred dummy)":
            float(rewb.fixef["minority_mean"]),
        "the within-school gap (the coefficient of minority)": float(fit.fixef["minority"]),
    })


@register("3.5", rtol=0.05, asks="the REWB coefficient of x_mean for 2,000 groups of 3",
          hints=["simulate_clustered(n_groups=2000, group_size=3, beta_within=1, "
                 "beta_between=2, icc=0.2, corr_xu=0, seed=rng), then mlteach.rewb('y ~ x', "
                 "data, group='group').params['x_mean']."])
def small_group_attenuation():
    # Population slope of the group mean of y on the observed group mean of x:
    # (β_B σ_b² + β_W σ_w²/n) / (σ_b² + σ_w²/n) with σ_b = σ_w = 1. For 2,000 groups of 3 the
    # sampling SD of the estimate is about 0.015, so rtol=0.05 (≈ 0.09) is six SDs; the true
    # β_B = 2 and the n = 30 value (1.97) are both outside it.
    def target(n: int, b_w: float = 1.0, b_b: float = 2.0) -> float:
        return (b_b + b_w / n) / (1 + 1 / n)

    return Expected(target(3), mistakes={
        "the between effect of the simulation model (beta_between = 2), which the noisy "
        "observed means cannot recover": 2.0,
        "the value for groups of 30": target(30),
        "the within coefficient": 1.0,
    })

