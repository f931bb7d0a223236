"""mlteach.lmm against lme4 1.1-31 on mlmRev data sets (tests/reference/lme4_lmm_mlmrev.json,
made by lme4_lmm_mlmrev.R), REML and ML:

* Exam: ``normexam ~ standLRT + sex + schavg + (1 + standLRT | school)`` (4,059 rows);
* ScotsSec, crossed: ``attain ~ verbal + sex + (1 | primary) + (1 | second)`` (3,435 rows);
* Oxboys: ``height ~ age + I(age^2) + (age | Subject)`` (234 rows);
* egsingle, nested three levels: ``math ~ year + (1 | schoolid/childid)`` (7,230 rows);
* Chem97, partially crossed: ``score ~ gcsecnt + (1 | school) + (1 | lea)`` (31,022 rows);
* beyond those: Exam with two 3-level factors, Oxboys with a quadratic random slope, ScotsSec
  with a crossed random slope (singular; lme4's default ML fit is 1.2e-3 short in logLik),
  Gcsemv with 202 missing outcomes (na.omit), Early (age slope by child; singular under ML).

The data are not shipped with mlteach. Exam, ScotsSec and Oxboys are stored in the JSON itself
(`datasets[...]["data_columns"]`; Gcsemv and Early too), so their tests always run. egsingle and Chem97 are read from
/tmp/mlmrev_<name>.csv, written by ``Rscript tests/reference/lme4_lmm_mlmrev.R`` (needs the R
package mlmRev); without them those tests skip, and with them the row count and the sum of the
outcome must match the JSON. Factors have sorted levels (R's default after character →
factor(), as in lme4_lmm_mlmrev.R): ScotsSec's term is ``sexM`` (mlmRev's own order gives sexF).

Tolerances as tests/test_lmm_more.py: logLik within 1e-6 of lme4's best (a tight BOBYQA restart
from its default θ; every case here) and never below its default fit by more than 1e-6;
estimates 1e-4 relative (1e-3 for singular fits, as tests/test_lmm_more.py).
"""

from __future__ import annotations

import json
import time
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlteach
from mlteach.errors import BoundaryFitWarning, MissingDataWarning

from lme4_compare import best_fit, close, factor, norm, positions

REF = json.loads((Path(__file__).parent / "reference" / "lme4_lmm_mlmrev.json").read_text())
CASES, DATASETS = REF["cases"], REF["datasets"]
RTOL, RTOL_SINGULAR = 1e-4, 1e-3


@lru_cache(maxsize=None)
def dataset(name: str) -> pd.DataFrame:
    info = DATASETS[name]
    if "data_columns" in info:
        d = pd.DataFrame(info["data_columns"])   # JSON null (R's NA) → None / NaN
    else:
        path = Path(info["csv"])
        if not path.exists():
            pytest.skip(f"{path} is missing: the mlmRev data are not shipped with mlteach; "
                        f"write it with `{info['command']}` (needs R with lme4 and mlmRev)")
        d = pd.read_csv(path, dtype={f: str for f in info["factors"]})
        assert len(d) == info["nrow"] and d[info["outcome"]].sum() == pytest.approx(
            info["checksum"], rel=1e-12), (f"{path} differs from the data of the reference "
                                          f"(rows / sum of {info['outcome']}); rewrite it with "
                                          f"`{info['command']}`")
    for f in info["factors"]:
        d[f] = pd.Categorical(d[f], categories=sorted(d[f].dropna().astype(str).unique()))
    for c in info["columns"]:
        if c not in info["factors"]:
            d[c] = d[c].astype(float)
    assert len(d) == info["nrow"]
    assert d[info["outcome"]].sum() == pytest.approx(info["checksum"], rel=1e-12)
    assert d[info["outcome"]].isna().sum() == info["n_missing"]
    return d


@lru_cache(maxsize=None)
def fit_timed(name: str):
    case = CASES[name]
    d = dataset(case["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        warnings.simplefilter("ignore", MissingDataWarning)
        t = time.perf_counter()
        r = mlteach.lmm(case["formula"], d, reml=case["reml"])
        return r, time.perf_counter() - t


def fit(name: str):
    return fit_timed(name)[0]


def best(name: str) -> dict:
    return best_fit(CASES[name])


@pytest.mark.parametrize("name", list(DATASETS))
def test_embedded_or_csv_data_match_reference(name):
    d = dataset(name)
    info = DATASETS[name]
    assert list(d.columns) == info["columns"]


@pytest.mark.parametrize("name", list(CASES))
def test_loglik(name):
    r, case = fit(name), CASES[name]
    assert r.reml == case["reml"] and r.nobs == case["results"]["nobs"]
    assert r.n_params == case["results"]["df"]
    assert r.loglik >= case["results"]["loglik"] - 1e-6
    assert r.loglik == pytest.approx(best(name)["loglik"], abs=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_estimates(name):
    r, ref = fit(name), best(name)
    tol = RTOL_SINGULAR if ref["isSingular"] else RTOL
    assert r.singular == ref["isSingular"]
    assert [norm(t) for t in r.fixef.index] == [norm(t) for t in ref["fixef"]]
    fe = np.array(list(ref["fixef"].values()))
    close(r.fixef, fe, np.max(np.abs(fe)), tol)
    for ours, se in zip(r.bse, ref["se"].values()):
        close(ours, se, se, tol)
    close(r.sigma, ref["sigma"], ref["sigma"], tol)
    assert r.ngroups == {factor(g, r)[0]: n for g, n in ref["ngrps"].items()}
    total = max(ref["sigma"] ** 2, max(np.max(np.abs(v["cov"])) for g, v in
                                         ref["varcorr"].items() if g != "Residual"))
    for g, vc in ref["varcorr"].items():
        if g == "Residual":
            continue
        cov = r.get_cov_re(factor(g, r)[0])
        idx = positions(vc["terms"], cov.index)
        ours = cov.to_numpy()[np.ix_(idx, idx)]
        close(np.diag(ours), np.diag(vc["cov"]), total, tol)
        if not ref["isSingular"]:   # each variance relative to itself (Chem97's lea: 1% of school)
            for j in range(len(idx)):
                close(ours[j, j], vc["cov"][j][j], vc["cov"][j][j], tol)
        if len(idx) > 1:
            sds = np.sqrt(np.diag(ours))
            close(ours / np.outer(sds, sds), vc["corr"], 1.0, 2 * tol)


@pytest.mark.parametrize("name", list(CASES))
def test_blups_and_conditional_variances(name):
    r, ref = fit(name), best(name)
    tol = RTOL_SINGULAR if ref["isSingular"] else RTOL
    for g, re_ in ref["ranef"].items():
        f, reverse = factor(g, r)
        levels = [":".join(reversed(lv.split(":"))) if reverse else lv for lv in re_["levels"]]
        idx = positions(re_["columns"], r.get_ranef(f).columns)
        ours = r.get_ranef(f).loc[levels].to_numpy()[:, idx]
        theirs = np.array(re_["values"], float)
        close(ours, theirs, max(np.max(np.abs(theirs)), ref["sigma"] * 1e-3), tol)
        ours_cv = r.get_condvar(f).loc[levels].to_numpy()[:, idx]
        for j, values in enumerate(ref["condvar"][g]["diag"].values()):
            close(ours_cv[:, j], values, max(np.max(np.abs(values)), 1e-8 * ref["sigma"] ** 2),
                  3 * tol)


def test_fit_times_summary(capsys):
    """Not an assertion: prints fit times (ours, lme4's default lmer) and logLik differences."""
    lines = []
    for name in CASES:
        try:
            r, t = fit_timed(name)
        except pytest.skip.Exception:
            lines.append(f"{name:22s} skipped (CSV missing)")
            continue
        c = CASES[name]
        lines.append(f"{name:22s} ours {t:7.3f} s  lme4 {c['time_default_s']:7.3f} s  "
                     f"logLik - lme4 best {r.loglik - best(name)['loglik']:+.2g}, "
                     f"- lme4 default {r.loglik - c['results']['loglik']:+.2g}")
    print("\n" + "\n".join(lines))
