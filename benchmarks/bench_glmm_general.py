"""Benchmark: general GLMMs (crossed, nested, random slopes, links) — mlteach.glmm vs glmer.

Cases: the ten glmer reference cases of tests/reference/lme4_glmm_general.json (same data,
formulas and families), a simulated 100,000-row crossed logistic model (2,000 subjects × 50
items, issue 14's "≤ 5 s") and a simulated 1,000,000-row logistic random-intercept model
(10,000 groups, issue 14's "≤ 2 s").

Both programs fit the same data in the same run: each data set is written to a CSV in /tmp
(derived columns included, categorical columns as text) and glmer (lme4 with its default
glmerControl, nAGQ = 1) is timed inside one R process with ``system.time`` (R's start-up not
counted). Times are the best of `REPEAT` runs, or one run where a fit takes over 20 s. The
evaluation count is mlteach's number of Laplace deviance evaluations; peak memory is the
Python process's tracemalloc peak during one more fit (not timed).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mlteach

ROOT = Path(__file__).resolve().parent.parent
REF = json.loads((ROOT / "tests" / "reference" / "lme4_glmm_general.json").read_text())
REPEAT = 3
TMP = Path("/tmp")
sys.path.insert(0, str(ROOT / "tests"))


def reference_cases():
    from test_glmm_general import dataset      # the data exactly as the reference tests build it
    for name, case in REF["cases"].items():
        yield (name, dataset(case["data"]), re.sub(r"\s+", " ", case["formula"]),
               case["family"], case["link"])


def simulated_crossed(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ns, ni = 2000, 50
    s, it = np.repeat(np.arange(ns), ni), np.tile(np.arange(ni), ns)
    x = rng.normal(size=s.size)
    eta = 0.2 + 0.5 * x + rng.normal(0, 0.8, ns)[s] + rng.normal(0, 0.5, ni)[it]
    return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x,
                         "subj": pd.Categorical(s), "item": pd.Categorical(it)})


def simulated_intercept(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_g, size = 10_000, 100
    g = np.repeat(np.arange(n_g), size)
    x = rng.normal(size=g.size)
    eta = -0.3 + 0.6 * x + rng.normal(0, 0.7, n_g)[g]
    return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x,
                         "g": pd.Categorical(g)})


def ours(data, formula, family, link):
    """Best time of `REPEAT` fits (one when a fit takes over 20 s), then one more fit under
    tracemalloc for the peak memory (tracemalloc slows numpy code, so it is not timed)."""
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mlteach.glmm(formula, data, family=family, link=link)

    times, fit = [], None
    for _ in range(REPEAT):
        start = time.perf_counter()
        fit = run()
        times.append(time.perf_counter() - start)
        if times[-1] > 20:
            break
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return fit, min(times), peak


def glmer_times(jobs: list[tuple[str, str, str, str, str, list[str]]]) -> dict[str, float]:
    """{name: glmer seconds} for (name, csv, R formula, family, link, factor columns)."""
    if shutil.which("Rscript") is None:
        return {}
    lines = ["suppressPackageStartupMessages(library(lme4))", "out <- c()"]
    for name, csv, formula, family, link, factors in jobs:
        lines += [f'd <- read.csv("{csv}", stringsAsFactors = FALSE)',
                  f"for (v in c({', '.join(repr(f) for f in factors)})) d[[v]] <- factor(d[[v]])",
                  "t <- c()",
                  f"for (i in 1:{REPEAT}) {{ t <- c(t, system.time(suppressWarnings(suppressMessages("
                  f"glmer({formula}, data = d, family = {family}(link = '{link}')))))[['elapsed']]);"
                  " if (t[length(t)] > 20) break }",
                  f'out["{name}"] <- min(t)']
    lines.append('cat(paste(names(out), out, sep = "=", collapse = "\\n"))')
    script = TMP / "mlteach_bench_glmm_general.R"
    script.write_text("\n".join(lines))
    try:
        res = subprocess.run(["Rscript", str(script)], capture_output=True, text=True,
                             timeout=3000, check=True, cwd=ROOT)
    except subprocess.SubprocessError:
        return {}
    return {k: float(v) for k, v in (ln.split("=") for ln in res.stdout.strip().splitlines())}


def main() -> pd.DataFrame:
    cases = list(reference_cases())
    cases.append(("simulated crossed 100k (2,000 x 50)", simulated_crossed(),
                  "y ~ x + (1 | subj) + (1 | item)", "binomial", "logit"))
    cases.append(("simulated intercept 1M (10,000 groups)", simulated_intercept(),
                  "y ~ x + (1 | g)", "binomial", "logit"))
    rows, jobs = [], []
    for i, (name, data, formula, family, link) in enumerate(cases):
        fit, secs, peak = ours(data, formula, family, link)
        rows.append({"case": name, "rows": len(data), "mlteach_s": secs,
                     "evaluations": fit.n_evaluations, "peak_MB": peak / 2**20,
                     "loglik": fit.loglik, "converged": fit.converged})
        csv = TMP / f"mlteach_bench_glmm_general_{i}.csv"
        data.to_csv(csv, index=False)
        factors = [c for c in data.columns if isinstance(data[c].dtype, pd.CategoricalDtype)]
        r_formula = formula.replace("**", "^")
        jobs.append((name, str(csv), r_formula, family, link, factors))
    glmer = glmer_times(jobs)
    table = pd.DataFrame(rows)
    table["glmer_s"] = [glmer.get(r["case"], np.nan) for r in rows]
    table["glmer_over_mlteach"] = table["glmer_s"] / table["mlteach_s"]
    return table


if __name__ == "__main__":
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(main().to_string(index=False))
