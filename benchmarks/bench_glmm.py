"""Benchmark: mlteach.glmm (Laplace, AGQ-25, PQL) beside statsmodels and, if R is there, glmer.

Cases: Contraception (1,934 women in 60 districts, ``use ~ age + I(age**2) + urban + livch``)
by Laplace and by adaptive quadrature with 25 nodes, and a simulated logistic model with
100,000 rows in 1,000 groups (two covariates, σ = 0.8).

Comparators, in the same run:
- statsmodels' ``BinomialBayesMixedGLM`` with ``fit_vb`` (variational Bayes) and ``fit_map``
  (posterior mode). These are *different estimators* (Bayesian, with priors on the variance),
  not maximum likelihood: the ratio compares the cost of a random-intercept logistic fit,
  not the same numbers. The table shows how far their fixed effects are from ours. On
  Contraception (unscaled age²) statsmodels 0.15's ``fit_vb`` returns its starting values
  (every fixed effect 0) and ``fit_map`` puts the random-intercept SD at e^-60, i.e. 0.
- lme4::glmer (nAGQ 1 or 25) when ``Rscript`` with lme4 is on the PATH: timed inside R
  (``system.time``, best of `REPEAT`), so R's start-up is not counted.

Times are the best of `REPEAT` runs and include parsing the formula and building matrices.
At 100,000 rows statsmodels is run once and by ``fit_map`` only: ``fit_vb`` took 496 s there
in a trial run on the 2-core development machine (``fit_map`` 27 s).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mlteach

REPEAT = 3
CONTRA = "use ~ age + I(age**2) + urban + livch + (1 | district)"
ROOT = Path(__file__).resolve().parent.parent


def simulated(n_groups: int = 1000, size: int = 100, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), size)
    x1 = rng.normal(size=g.size)
    x2 = rng.binomial(1, 0.4, g.size)
    eta = -0.5 + 0.7 * x1 - 0.4 * x2 + rng.normal(0, 0.8, n_groups)[g]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": pd.Categorical(g)})


def best_time(fn):
    times, out = [], None
    for _ in range(REPEAT):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, min(times)


def statsmodels_fit(kind: str, fixed: str, group: str, data: pd.DataFrame, repeat: int = REPEAT):
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    def run():
        model = BinomialBayesMixedGLM.from_formula(fixed, {group: f"0 + C({group})"}, data)
        return model.fit_vb() if kind == "vb" else model.fit_map()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times, out = [], None
        for _ in range(repeat):
            start = time.perf_counter()
            out = run()
            times.append(time.perf_counter() - start)
        return out, min(times)


def glmer_seconds(csv: str, formula: str, nagq: int) -> float:
    """glmer's fit time inside R (best of REPEAT), or NaN without Rscript/lme4."""
    if shutil.which("Rscript") is None:
        return float("nan")
    script = f"""
    suppressPackageStartupMessages(library(lme4))
    d <- read.csv("{csv}")
    for (v in intersect(c("district", "urban", "livch", "g"), names(d))) d[[v]] <- factor(d[[v]])
    if ("use" %in% names(d)) d$use <- as.integer(d$use == "Y")
    if ("livch" %in% names(d)) d$livch <- factor(d$livch, levels = c("0", "1", "2", "3+"))
    t <- replicate({REPEAT}, system.time(suppressWarnings(suppressMessages(
      glmer({formula}, data = d, family = binomial, nAGQ = {nagq}))))[["elapsed"]])
    cat(min(t))
    """
    try:
        out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                             timeout=600, check=True, cwd=ROOT)
        return float(out.stdout.strip().split()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return float("nan")


def main() -> pd.DataFrame:
    rows = []
    contra = mlteach.load("contraception")
    contra01 = contra.assign(use=(contra["use"] == "Y").astype(int))
    sim = simulated()
    sim_csv = Path("/tmp") / "mlteach_bench_glmm_sim.csv"
    sim.to_csv(sim_csv, index=False)
    fixed_contra = "use ~ age + I(age**2) + urban + livch"
    r_contra = "use ~ age + I(age^2) + urban + livch + (1 | district)"

    cases = [
        ("Contraception", contra, CONTRA, "laplace", None, "mlteach/data/contraception.csv",
         r_contra, 1, contra01, fixed_contra, "district"),
        ("Contraception", contra, CONTRA, "agq", 25, "mlteach/data/contraception.csv",
         r_contra, 25, contra01, fixed_contra, "district"),
        ("Simulated 100,000 rows / 1,000 groups", sim, "y ~ x1 + x2 + (1 | g)", "laplace", None,
         str(sim_csv), "y ~ x1 + x2 + (1 | g)", 1, sim, "y ~ x1 + x2", "g"),
        ("Simulated 100,000 rows / 1,000 groups", sim, "y ~ x1 + x2 + (1 | g)", "pql", None,
         None, None, None, None, None, None),
    ]
    sm_cache: dict = {}
    for label, data, formula, method, nagq, csv, r_formula, r_nagq, sm_data, sm_fixed, group \
            in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit, secs = best_time(lambda: mlteach.glmm(formula, data, method=method, nagq=nagq))
        row = {"case": label, "method": method if nagq is None else f"agq ({nagq} nodes)",
               "mlteach_s": secs, "converged": fit.converged}
        if csv is not None:
            g = glmer_seconds(csv, r_formula, r_nagq)
            row.update(glmer_s=g, glmer_over_mlteach=g / secs)
        if sm_data is not None:
            if label not in sm_cache:
                big = len(sm_data) > 50_000
                kinds = ("map",) if big else ("vb", "map")
                sm_cache[label] = {k: statsmodels_fit(k, sm_fixed, group, sm_data,
                                                      repeat=1 if big else REPEAT)
                                   for k in kinds}
            for k, (res, t) in sm_cache[label].items():
                # patsy orders categorical terms first: align by name
                fe = pd.Series(res.fe_mean, index=res.model.exog_names)[fit.fixef.index]
                row[f"sm_{k}_s"] = t
                row[f"sm_{k}_over_mlteach"] = t / secs
                diff = np.abs(fe.to_numpy() - fit.fixef.to_numpy())
                row[f"sm_{k}_max_abs_fe_diff"] = float(np.max(diff))
        rows.append(row)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(main())
