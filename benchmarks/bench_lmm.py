"""Benchmark: mlteach.lmm against statsmodels' MixedLM on the same data, in the same run (REML).

Cases: sleepstudy; a 500-row random-intercept fit (50 groups of 10, the size of a Monte Carlo
replicate in the book); simulated data with 2 covariates, 100 rows per group, at 100,000 rows
(1,000 groups) and 1,000,000 rows (10,000 groups), random intercept and random intercept +
slope; a nested three-level model (students in classes in schools, 100,000 rows; mlteach only,
as statsmodels has no nested random effects other than variance components that are slow there).
Reported: seconds per fit (for data under 10,000 rows the best of 5 fits, for both packages,
as one fit of a few milliseconds is at the mercy of the shared machine; one fit otherwise), the
ratio, the largest relative difference of the fixed effects, the log-likelihood difference (ours
− statsmodels; positive means ours is higher) and the peak memory of the mlteach fit
(tracemalloc, numpy allocations included; measured in a separate run).

Threads: whatever the environment sets (OMP_NUM_THREADS and friends are reported in the table
note); mlteach's work is mostly single-threaded numpy.
"""

from __future__ import annotations

import os
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

import mlteach
from mlteach.simulate import simulate_clustered


def simulated(n_groups: int, size: int = 100, seed: int = 1) -> pd.DataFrame:
    data = simulate_clustered(n_groups=n_groups, group_size=size, icc=0.2, slope_sd=0.3,
                              seed=seed)
    rng = np.random.default_rng(seed + 1)
    data["x2"] = rng.normal(size=len(data))
    data["y"] = data["y"] + 0.5 * data["x2"]
    return data


def nested(n_schools: int = 500, classes: int = 10, students: int = 20, seed: int = 3
           ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(n_schools), classes * students)
    klass = np.tile(np.repeat(np.arange(classes), students), n_schools)
    x = rng.normal(size=school.size)
    y = (1 + 0.5 * x + 0.6 * rng.normal(size=n_schools)[school]
         + 0.4 * rng.normal(size=n_schools * classes)[school * classes + klass]
         + rng.normal(size=school.size))
    return pd.DataFrame({"y": y, "x": x, "school": pd.Categorical(school),
                         "klass": pd.Categorical(klass)})


def timed(fn, repeat: int = 1):
    """The result of fn() and the best wall-clock time of `repeat` calls."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def peak_mb(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2 ** 20


def case(label: str, data: pd.DataFrame, formula: str, sm_fixed: str | None,
         sm_group: str | None, sm_re: str | None) -> dict:
    repeat = 5 if len(data) < 10_000 else 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, t_ours = timed(lambda: mlteach.lmm(formula, data), repeat)
        memory = peak_mb(lambda: mlteach.lmm(formula, data))
        row = {"case": label, "rows": len(data),
               "groups": ", ".join(f"{k}: {v}" for k, v in ours.ngroups.items()),
               "mlteach s": t_ours, "statsmodels s": np.nan, "ratio": np.nan,
               "max rel. diff fixef": np.nan, "logLik ours - sm": np.nan,
               "mlteach peak MB": memory}
        if sm_fixed is None:
            return row
        import statsmodels.formula.api as smf
        model = smf.mixedlm(sm_fixed, data, groups=data[sm_group], re_formula=sm_re)
        sm, t_sm = timed(lambda: model.fit(reml=True), repeat)
    fe = sm.fe_params.reindex(ours.fixef.index)
    row.update({"statsmodels s": t_sm, "ratio": t_sm / t_ours,
                "max rel. diff fixef": float(np.max(np.abs(ours.fixef - fe) / np.abs(fe))),
                "logLik ours - sm": ours.loglik - sm.llf})
    return row


def main() -> pd.DataFrame:
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    # warm-up (imports, formulaic's first use) so that the first timed case is not penalised
    case("warm-up", mlteach.load("sleepstudy"), "Reaction ~ Days + (Days | Subject)",
         "Reaction ~ Days", "Subject", "~Days")
    rows = [case("sleepstudy (Days | Subject)", mlteach.load("sleepstudy"),
                 "Reaction ~ Days + (Days | Subject)", "Reaction ~ Days", "Subject", "~Days"),
            case("random intercept", simulated(50, size=10), "y ~ x + x2 + (1 | group)",
                 "y ~ x + x2", "group", None)]
    for n_groups in (1_000, 10_000):
        data = simulated(n_groups)
        rows.append(case("random intercept", data, "y ~ x + x2 + (1 | group)",
                         "y ~ x + x2", "group", None))
        rows.append(case("random intercept + slope", data, "y ~ x + x2 + (1 + x | group)",
                         "y ~ x + x2", "group", "~x"))
    rows.append(case("nested (1 | school/klass)", nested(), "y ~ x + (1 | school/klass)",
                     None, None, None))
    table = pd.DataFrame(rows)
    table.attrs["note"] = f"thread settings: {threads}"
    print(table.attrs["note"])
    return table


if __name__ == "__main__":
    print(main().to_markdown(index=False, floatfmt=".4g"))
