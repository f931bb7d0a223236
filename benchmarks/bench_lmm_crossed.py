"""Benchmark: LMMs with several grouping factors (issue 15) — mlteach.lmm vs lme4's lmer.

Cases: lme4's Penicillin (crossed) and Pastes (nested), InstEval (73,421 ratings of 1,128
lecturers by 2,972 students: ``(1|s) + (1|d) + (1|dept)`` and with ``(1 + service|dept)``;
shipped as benchmarks/data/insteval.csv.gz, written by export_insteval.R), a simulated
three-level model with 1,000,000 rows (2,000 schools × 10 classes × 50 pupils;
``(1|school/class)`` and ``(1 + x|school) + (1|school:class)``) and a one-factor model with
1,000,000 rows whose 10,000 group labels are strings.

Both programs fit the same data in the same run (REML): each data set is written to a CSV in
/tmp and lmer (default lmerControl) is timed inside one R process with ``system.time`` (R's
start-up and reading the CSV not counted; mlteach's time includes building the model from the
DataFrame). Times are the best of `REPEAT` fits, or one fit where a fit takes over 20 s.
"evaluations" is mlteach's number of deviance evaluations (with gradient where the evaluator
has one); peak memory is the Python process's tracemalloc peak during one more fit (not timed).
Not yet run here: the ml-1m-shaped crossed model (6,000 users × 4,000 items, 1,000,000 rows),
whose second factor has more effects than a dense Schur complement takes (it goes through the
general sparse path, minutes per fit).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mlteach

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPEAT = 5
TMP = Path("/tmp")


def insteval() -> pd.DataFrame:
    text = {c: str for c in ("s", "d", "dept", "service", "studage", "lectage")}
    return pd.read_csv(HERE / "data" / "insteval.csv.gz", dtype=text)


def three_level(seed: int = 11, schools: int = 2000, classes: int = 10, pupils: int = 50
                ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(schools), classes * pupils)
    klass = np.repeat(np.arange(schools * classes), pupils)
    x = rng.normal(size=school.size)
    y = (1 + 0.5 * x + rng.normal(0, 0.6, schools)[school] + rng.normal(0, 0.3, schools)[school] * x
         + rng.normal(0, 0.4, schools * classes)[klass] + rng.normal(size=school.size))
    return pd.DataFrame({"y": y, "x": x, "school": [f"s{i}" for i in school],
                         "class": [f"c{i % classes}" for i in klass]})


def string_groups(seed: int = 12, groups: int = 10_000, size: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.permutation(np.repeat(np.arange(groups), size))
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.7, groups)[g] + rng.normal(size=g.size)
    labels = np.array([f"group-{i:05d}" for i in range(groups)], dtype=object)
    return pd.DataFrame({"y": y, "x": x, "g": labels[g]})


def cases():
    pen, pas, ie = mlteach.load("penicillin"), mlteach.load("pastes"), insteval()
    big = three_level()
    yield "Penicillin", pen, "diameter ~ 1 + (1 | plate) + (1 | sample)"
    yield "Pastes", pas, "strength ~ 1 + (1 | batch/cask)"
    yield "InstEval model 1", ie, "y ~ service + (1 | s) + (1 | d) + (1 | dept)"
    yield "InstEval model 2", ie, "y ~ service + (1 | s) + (1 | d) + (1 + service | dept)"
    yield "three-level 1M (1|school/class)", big, "y ~ x + (1 | school/class)"
    yield ("three-level 1M (1+x|school)+(1|school:class)", big,
           "y ~ x + (1 + x | school) + (1 | school:class)")
    yield "one factor 1M, string labels", string_groups(), "y ~ x + (1 | g)"


def ours(data: pd.DataFrame, formula: str):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mlteach.lmm(formula, data)

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


def lmer_times(jobs: list[tuple[str, str, str, list[str]]]) -> dict[str, tuple[float, float]]:
    """{name: (lmer seconds, logLik)} for (name, csv, formula, text columns)."""
    if shutil.which("Rscript") is None:
        return {}
    lines = ["suppressPackageStartupMessages(library(lme4))", "out <- c(); ll <- c()"]
    for name, csv, formula, factors in jobs:
        lines += [f'd <- read.csv("{csv}", stringsAsFactors = FALSE)',
                  f"for (v in c({', '.join(repr(f) for f in factors)})) d[[v]] <- factor(d[[v]])",
                  "t <- c()",
                  f"for (i in 1:{REPEAT}) {{ t <- c(t, system.time(m <- suppressWarnings("
                  f"suppressMessages(lmer({formula}, data = d))))[['elapsed']]);"
                  " if (t[length(t)] > 20) break }",
                  f'out["{name}"] <- min(t); ll["{name}"] <- as.numeric(logLik(m))']
    lines.append('cat(paste(names(out), out, sprintf("%.10f", ll), sep = "=", collapse = "\\n"))')
    script = TMP / "mlteach_bench_lmm_crossed.R"
    script.write_text("\n".join(lines))
    try:
        res = subprocess.run(["Rscript", str(script)], capture_output=True, text=True,
                             timeout=3000, check=True, cwd=ROOT)
    except subprocess.SubprocessError:
        return {}
    out = {}
    for line in res.stdout.strip().splitlines():
        name, secs, loglik = line.split("=")
        out[name] = (float(secs), float(loglik))
    return out


def main() -> pd.DataFrame:
    rows, jobs = [], []
    for i, (name, data, formula) in enumerate(cases()):
        fit, secs, peak = ours(data, formula)
        rows.append({"case": name, "rows": len(data), "mlteach_s": secs,
                     "evaluations": fit.optinfo["nfev"], "evaluator": fit.optinfo["evaluator"],
                     "peak_MB": peak / 2**20, "loglik": fit.loglik})
        csv = TMP / f"mlteach_bench_lmm_crossed_{i}.csv"
        data.to_csv(csv, index=False)
        text = [c for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])]
        jobs.append((name, str(csv), formula, text))
    lmer = lmer_times(jobs)
    table = pd.DataFrame(rows)
    table["lmer_s"] = [lmer.get(r["case"], (np.nan, np.nan))[0] for r in rows]
    table["lmer_over_mlteach"] = table["lmer_s"] / table["mlteach_s"]
    table["loglik_minus_lmer"] = [r["loglik"] - lmer.get(r["case"], (np.nan, np.nan))[1]
                                  for r in rows]
    return table


if __name__ == "__main__":
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(main().to_string(index=False))
