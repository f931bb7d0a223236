"""PQL with any random part (`mlteach.glmm(..., method="pql")`) against MASS::glmmPQL.

References: tests/reference/mass_glmmpql_general.{R,json,Rout.txt} (MASS 7.3-58.2, nlme
3.1-162): a correlated random slope (binomial), nested intercepts (Poisson) and three-level
nested intercepts (binomial). mlteach iterates its own weighted LMM (the LMM's evaluator with
prior weights, fitted by ML), glmmPQL iterates lme; both stop by glmmPQL's rule, here after the
same number of rounds. Tolerances: fixed effects 1e-5 absolute, standard errors and random-effect
covariances 1e-4 relative, residual scale 1e-6 relative (measured: 5e-7, 1.4e-6, 1e-6, 7e-8).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlteach
from mlteach.errors import MlteachError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_glmm_general import dataset, r_term  # noqa: E402

REF = json.loads((ROOT / "tests" / "reference" / "mass_glmmpql_general.json").read_text())
CASES = REF["cases"]


@pytest.fixture(scope="module")
def fits():
    out = {}
    for name, case in CASES.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = mlteach.glmm(case["formula"], dataset(case["data"]), family=case["family"],
                               method="pql")
        out[name] = (fit, [str(w.message) for w in caught])
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_matches_glmmpql(fits, name):
    case, (fit, caught) = CASES[name], fits[name]
    assert not caught, caught
    assert fit.method == "pql" and np.isnan(fit.loglik) and fit.converged
    fixef = {r_term(k): v for k, v in fit.params.items()}
    se = {r_term(k): v for k, v in fit.bse.items()}
    assert set(fixef) == set(case["fixef"])
    for term, value in case["fixef"].items():
        assert fixef[term] == pytest.approx(value, abs=1e-5), term
        assert se[term] == pytest.approx(case["se"][term], rel=1e-4), term
    assert fit.scale == pytest.approx(case["residual_scale"], rel=1e-6)
    assert fit.n_evaluations == case["pql_iterations"]


@pytest.mark.parametrize("name", list(CASES))
def test_random_effect_covariances_match(fits, name):
    case, (fit, _) = CASES[name], fits[name]
    cov = fit.cov_re if isinstance(fit.cov_re, dict) else {None: fit.cov_re}
    # nlme names a nested level by its innermost factor ('BROOD' for LOCATION/BROOD)
    by_inner = {(g.split(":")[-1] if g else None): c for g, c in cov.items()}
    for level in case["random_cov"]:
        ours = by_inner[level["level"]] if len(by_inner) > 1 else next(iter(by_inner.values()))
        np.testing.assert_allclose(ours.to_numpy(), np.array(level["cov"]), rtol=1e-4)


def test_general_pql_equals_the_random_intercept_pql():
    """One random intercept fitted by the general route (the shared weighted LMM) gives the
    batched random-intercept PQL's answer: two implementations of glmmPQL's iteration."""
    from mlteach.glmm.family import Family
    from mlteach.glmm.model import MixedGLMMData, prepare
    from mlteach.mixed.formula import parse_mixed_formula
    from mlteach.mixed.structure import build_structure

    fit_mod = sys.modules["mlteach.glmm.fit"]
    cb = mlteach.load("cbpp")
    formula = "incidence ~ period + (1 | herd)"
    ri = prepare(formula, cb, Family("binomial"), "size", None)
    structure = build_structure(parse_mixed_formula(formula).random, ri.design.data,
                                allow_one_per_group=True)
    mixed = MixedGLMMData(family=ri.family, y=ri.y, trials=ri.trials, X=ri.X, offset=ri.offset,
                          const=ri.const, structure=structure, design=ri.design,
                          formula=formula)
    general = fit_mod._result_pql_general(mixed)
    batched = mlteach.glmm(formula, cb, trials="size", method="pql")
    np.testing.assert_allclose(general.params, batched.params, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(general.bse, batched.bse, rtol=1e-5)
    assert general.sd_re == pytest.approx(batched.sd_re, rel=1e-5)
    assert general.scale == pytest.approx(batched.scale, rel=1e-6)
    np.testing.assert_allclose(general.ranef.to_numpy().ravel(),
                               batched.ranef.to_numpy().ravel(), atol=1e-6)


def test_pql_with_a_non_canonical_link_and_agq_error():
    cb = mlteach.load("cbpp")
    fit = mlteach.glmm("incidence ~ period + (1 | herd)", cb, trials="size", link="probit",
                       method="pql")
    assert fit.method == "pql" and fit.link == "probit" and np.all(np.isfinite(fit.bse))
    with pytest.raises(MlteachError, match=r"method='agq' \(adaptive quadrature\) is available "
                                           r"for one random intercept.*'laplace' \(the "
                                           r"default\) or 'pql'"):
        mlteach.glmm("incidence ~ period + (1 | herd) + (1 | period)", cb, trials="size",
                     method="agq")
