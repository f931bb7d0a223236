"""mlteach.lmm with prior weights= and offset() terms against lmer (stored values; no R needed).

Reference: tests/reference/lme4_lmm_weights.json, written by lme4_lmm_weights.R (lme4 1.1-31):
a proportion outcome weighted by herd size (cbpp), a deterministic weight on sleepstudy, an
offset(2 * Days) on sleepstudy, and both an offset(log(size)) and weights on cbpp; REML and ML.
lmer's prior weights make Var(e_i) = σ²/w_i; its fitted values and predictions include the
offset.

Estimates are compared with lmer's ``tight`` refit (bobyqa from its default estimates, rhoend
1e-12): the ML surface is flat along θ, and lmer's default stopping rule left θ off by 4e-5 on
sleep_offset and sleep_weights (logLik 1.3e-8 and 3.4e-9 below the tight value, which is ours
to 1e-10). Tolerances as the other lmer reference tests: log-likelihood 1e-6 absolute, fixed
effects, SEs, σ and θ 1e-5 relative (to the scale of the quantity), fitted values and
conditional modes 1e-5 relative.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlteach
from lme4_compare import norm

REF = json.loads((Path(__file__).parent / "reference" / "lme4_lmm_weights.json").read_text())
CASES = REF["cases"]


def dataset(case: str) -> pd.DataFrame:
    c = CASES[case]
    d = mlteach.load(c["data"].removesuffix(".csv"))
    if case == "cbpp_prop":
        d["prop"] = d["incidence"] / d["size"]
    elif case == "sleep_weights":
        d["w"] = 1.0 + d["Days"] % 3
    elif case == "cbpp_both":
        d["ly"] = np.log(d["incidence"] + 0.5)
    return d


def fit(case: str, reml: bool):
    c = CASES[case]
    return mlteach.lmm(c["formula"], dataset(case), reml=reml, weights=c["weights"])


PARAMS = [(case, reml) for case in sorted(CASES) for reml in (True, False)]


def test_all_cases_present():
    assert set(CASES) == {"cbpp_prop", "sleep_weights", "sleep_offset", "cbpp_both"}


@pytest.mark.parametrize("case, reml", PARAMS)
def test_estimates_match_lmer(case, reml):
    default = CASES[case]["reml" if reml else "ml"]
    ref = default["tight"]
    f = fit(case, reml)
    assert f.loglik == pytest.approx(ref["loglik"], abs=1e-6)
    assert f.loglik >= default["loglik"] - 1e-9
    assert f.nobs == default["nobs"]
    ours = pd.Series(f.params.to_numpy(), index=[norm(t) for t in f.params.index])
    theirs = pd.Series(ref["fixef"]).rename(index=norm)
    np.testing.assert_allclose(ours[theirs.index], theirs, rtol=1e-5,
                               atol=1e-5 * float(np.abs(theirs).max()))
    se = pd.Series(f.bse.to_numpy(), index=ours.index)
    ref_se = pd.Series(ref["se"]).rename(index=norm)
    np.testing.assert_allclose(se[ref_se.index], ref_se, rtol=1e-5)
    assert f.sigma == pytest.approx(ref["sigma"], rel=1e-5)
    np.testing.assert_allclose(np.sort(f.theta.to_numpy()), np.sort(list(ref["theta"].values())),
                               atol=1e-5)


@pytest.mark.parametrize("case, reml", PARAMS)
def test_fitted_predictions_and_modes_match_lmer(case, reml):
    default = CASES[case]["reml" if reml else "ml"]
    ref = default["tight"]
    f = fit(case, reml)
    scale = float(np.abs(ref["fitted_first5"]).max())
    np.testing.assert_allclose(f.fitted.to_numpy()[:5], ref["fitted_first5"], atol=1e-5 * scale)
    y = f.fitted.to_numpy()[:5] + f.resid.to_numpy()[:5]
    np.testing.assert_allclose(y, np.add(default["fitted_first5"], default["resid_first5"]),
                               atol=1e-9 * scale)
    data = dataset(case).iloc[:3]
    pred = default["predict_first3"]           # at lmer's default fit: 1e-5 covers the gap
    np.testing.assert_allclose(f.predict(data, include_random=True), pred["with_re"],
                               atol=1e-5 * scale)
    np.testing.assert_allclose(f.predict(data, include_random=False), pred["re_form_NA"],
                               atol=1e-5 * scale)
    for group, first3 in ref["ranef_first3"].items():
        table = f.get_ranef(group)
        for level, values in zip(first3["levels"], first3["values"]):
            row = table.loc[level if level in table.index else type(table.index[0])(level)]
            for term, value in zip(first3["columns"], values):
                column = next(c for c in table.columns if norm(c) == norm(term))
                assert row[column] == pytest.approx(value, abs=1e-4 * max(1.0, abs(value)))


def test_weights_are_prior_weights_not_frequency_weights():
    """Var(e_i) = σ²/w_i: doubling every weight leaves the model as it was with σ̂ scaled by
    √2 and the same estimates and SEs (lmer's prior weights); frequency weights would
    change the SEs instead."""
    d = dataset("sleep_weights")
    a = mlteach.lmm("Reaction ~ Days + (Days | Subject)", d, weights="w")
    b = mlteach.lmm("Reaction ~ Days + (Days | Subject)", d.assign(w=2 * d["w"]), weights="w")
    np.testing.assert_allclose(a.params, b.params, rtol=1e-7)
    np.testing.assert_allclose(a.bse, b.bse, rtol=1e-6)
    assert b.sigma == pytest.approx(a.sigma * np.sqrt(2), rel=1e-7)
    assert b.loglik == pytest.approx(a.loglik, abs=1e-8)      # ½Σlog w offsets log σ²
