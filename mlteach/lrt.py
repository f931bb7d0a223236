"""Likelihood-ratio tests of nested linear mixed models (book chapter on model comparison).

Two fits, the smaller M₀ nested in the larger M₁, are compared by

    LR = 2 (ℓ₁ − ℓ₀),

which, when M₀ is true, is approximately χ² with df = (parameters of M₁) − (parameters of M₀).
That approximation needs every extra parameter to be free to move either side of its value under
H0. A variance cannot: H0 "τ² = 0" puts it on the edge (boundary) of [0, ∞), and the statistic
is then a 50:50 mixture of χ² distributions (Self & Liang 1987; Stram & Lee 1994):

    one new variance, no covariances            0.5 χ²₀   + 0.5 χ²₁
    one new random slope with its covariances   0.5 χ²_{q−1} + 0.5 χ²_q   (q parameters added)

The naive χ²_q p-value is then too large (conservative); lme4's ``anova()`` reports the naive one.

Log-likelihoods are comparable only between fits by the same criterion on the same rows. REML
log-likelihoods depend on the fixed-effects design, so REML fits may be compared only when their
fixed effects are identical (a test of variance components); otherwise refit with ML.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from mlteach.results.base import Summary
from mlteach.errors import ConvergenceWarning, ModelComparisonError, user_stacklevel

# --------------------------------------------------------------------------------------------
# What a fit looks like to this module: anything with these attributes (mlteach.lmm results).
# --------------------------------------------------------------------------------------------

_NEEDED = ("loglik", "n_params", "nobs", "reml", "fixef", "cov_re", "ngroups", "formula")


def _check_fit(fit: Any, role: str) -> None:
    missing = [a for a in _NEEDED if not hasattr(fit, a)]
    if missing:
        raise ModelComparisonError(
            f"The {role} model is a {type(fit).__name__}, which lacks {', '.join(missing)}. "
            f"lrt() compares two fits returned by mlteach.lmm(formula, data, reml=False) "
            f"or two by mlteach.glmm (Laplace or AGQ)."
        )


def random_terms(fit: Any) -> dict[str, list[str]]:
    """The random-effect terms of a fit by grouping factor, e.g. ``{'Subject': ['Intercept']}``.

    `fit.cov_re` is one covariance DataFrame when the model has a single grouping factor (whose
    name is then the single key of `fit.ngroups`), or a dict of them by factor.
    """
    cov = fit.cov_re
    if isinstance(cov, pd.DataFrame):
        ng = fit.ngroups
        factors = list(ng) if isinstance(ng, dict) else [str(getattr(fit, "group", "group"))]
        factor = factors[0] if len(factors) == 1 else "group"
        return {factor: [str(t) for t in cov.index]}
    return {str(f): [str(t) for t in c.index] for f, c in cov.items()}


def _factor_base(name: str) -> str:
    # lme4 names the blocks of (x || g) 'g', 'g.1', ...; they belong to the same factor g.
    return re.sub(r"\.\d+$", "", name)


def _random_pairs(fit: Any) -> set[tuple[str, str]]:
    return {(_factor_base(f), t) for f, terms in random_terms(fit).items() for t in terms}


def _response(formula: str) -> str:
    return formula.split("~", 1)[0].strip() if "~" in formula else ""


def _criterion(fit: Any) -> Literal["REML", "ML"]:
    return "REML" if bool(fit.reml) else "ML"


# --------------------------------------------------------------------------------------------
# Nesting by column space
#
# M₀ is nested in M₁ when every mean and covariance M₀ can produce, M₁ can produce too. For the
# fixed part that means the columns of X₀ lie in the span of the columns of X₁ (on the same
# rows): `y ~ Days` is nested in `y ~ C(Days)` although no term name is shared, because the
# linear trend is a combination of the day dummies. For the random part of each grouping
# factor, each random-effect block of M₀ (its columns Z₀ₖ, which share one covariance matrix)
# must lie in the span of one block of M₁, so that M₁ can reproduce the covariance of M₀.
# --------------------------------------------------------------------------------------------

# A column counts as inside a span when its least-squares residual is below this share of its
# own norm: far above rounding error (≈1e-15), far below any real difference between models.
_SPAN_TOL = 1e-8


def span_residual(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Relative distance of each column a of `A` from the span of the columns of `B`.

    ‖a − B ĉ‖ / ‖a‖ with ĉ the least-squares coefficients (0 for a zero column, 1 when B has
    no columns). The columns of B are scaled to unit length first, so that columns in very
    different units (years and dummies) do not upset the solver.
    """
    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    norms_a = np.linalg.norm(A, axis=0)
    if B.shape[1] == 0:
        return np.where(norms_a > 0, 1.0, 0.0)
    norms_b = np.linalg.norm(B, axis=0)
    Bs = B[:, norms_b > 0] / norms_b[norms_b > 0]
    coef, *_ = np.linalg.lstsq(Bs, A, rcond=None)
    resid = np.linalg.norm(A - Bs @ coef, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms_a > 0, resid / norms_a, 0.0)


def _rows(fit: Any) -> pd.Index | None:
    index = getattr(fit, "data_index", None)
    if index is None:
        index = getattr(getattr(fit, "design", None), "index", None)
    return None if index is None else pd.Index(index)


def _fixed_matrix(fit: Any, rows: pd.Index | None) -> np.ndarray | None:
    """The fit's fixed-effects model matrix X, its rows in the order of `rows` (None if absent)."""
    X = getattr(getattr(fit, "design", None), "X", None)
    if X is None:
        return None
    X = np.asarray(X, dtype=float)
    own = _rows(fit)
    if rows is not None and own is not None and not own.equals(rows):
        X = X[own.get_indexer(rows)]
    return X


def _random_blocks(fit: Any, rows: pd.Index | None
                   ) -> list[tuple[str, list[str], np.ndarray]] | None:
    """(factor, column names, Z) of each random-effect block, rows as `rows` (None if absent)."""
    blocks = getattr(getattr(fit, "structure", None), "blocks", None)
    if blocks is None:
        return None
    own = _rows(fit)
    take = (None if rows is None or own is None or own.equals(rows)
            else own.get_indexer(rows))
    out = []
    for b in blocks:
        Z = np.asarray(b.Z, dtype=float)
        out.append((_factor_base(str(b.factor)), [str(c) for c in b.columns],
                    Z if take is None else Z[take]))
    return out


def _not_in_fixed_span(smaller: Any, larger: Any, rows: pd.Index | None) -> list[str]:
    """The smaller model's fixed-effect columns outside the span of the larger model's."""
    X0, X1 = _fixed_matrix(smaller, rows), _fixed_matrix(larger, rows)
    terms0 = [str(t) for t in smaller.fixef.index]
    if X0 is None or X1 is None:  # not an mlteach.lmm fit: fall back on the term names
        names1 = {str(t) for t in larger.fixef.index}
        return [t for t in terms0 if t not in names1]
    return [t for t, r in zip(terms0, span_residual(X0, X1)) if r > _SPAN_TOL]


def _random_problem(smaller: Any, larger: Any, rows: pd.Index | None) -> str | None:
    """Why the smaller model's random effects are not nested in the larger's (None if they are)."""
    blocks0, blocks1 = _random_blocks(smaller, rows), _random_blocks(larger, rows)
    if blocks0 is None or blocks1 is None:  # not an mlteach.lmm fit: fall back on the names
        extra = sorted(_random_pairs(smaller) - _random_pairs(larger))
        if not extra:
            return None
        return ("the smaller model's random effect(s) " +
                ", ".join(f"{t!r} by {f!r}" for f, t in extra) + " are not in the larger model.")
    for factor, names, Z0 in blocks0:
        same = [Z1 for f, _, Z1 in blocks1 if f == factor]
        if not same:
            return (f"the smaller model's random effect(s) " +
                    ", ".join(f"{t!r} by {factor!r}" for t in names) + " are not in the larger "
                    f"model, which has no random effects by {factor!r}.")
        if any(np.all(span_residual(Z0, Z1) <= _SPAN_TOL) for Z1 in same):
            continue
        outside = span_residual(Z0, np.column_stack(same)) > _SPAN_TOL
        if outside.any():
            return ("the smaller model's random effect(s) " +
                    ", ".join(f"{t!r} by {factor!r}" for t, o in zip(names, outside) if o) +
                    " are not in the larger model (nor in the span of its random-effect "
                    f"columns by {factor!r}).")
        return (f"the smaller model lets its random effects {', '.join(map(repr, names))} by "
                f"{factor!r} be correlated, but the larger model keeps them in separate, "
                f"uncorrelated terms (as in (x || g)), so it cannot reproduce that covariance.")
    return None


def _n_variances(fit: Any) -> int:
    """Number of random-effect variances (random-effect columns over all blocks)."""
    blocks = getattr(getattr(fit, "structure", None), "blocks", None)
    if blocks is None:
        return len(_random_pairs(fit))
    return int(sum(len(b.columns) for b in blocks))


# --------------------------------------------------------------------------------------------
# The distributions of the statistic
# --------------------------------------------------------------------------------------------


def chi2_sf(x: float, df: int) -> float:
    """P(χ²_df ≥ x), with χ²₀ the point mass at zero (P = 1 at x = 0, 0 beyond)."""
    if df == 0:
        return 1.0 if x <= 0 else 0.0
    return float(stats.chi2.sf(x, df))


def chi2_mixture_sf(x: float, dfs: tuple[int, ...], weights: tuple[float, ...]) -> float:
    """P(LR ≥ x) when LR follows the mixture Σ_k w_k χ²_{df_k} (weights summing to one)."""
    return float(sum(w * chi2_sf(x, d) for w, d in zip(weights, dfs)))


def _mixture_label(dfs: tuple[int, ...], weights: tuple[float, ...]) -> str:
    return " + ".join(f"{w:g}·χ²({d})" for w, d in zip(weights, dfs))


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LRTResult:
    """A likelihood-ratio test of two nested mixed models.

    Attributes
    ----------
    statistic
        LR = 2(ℓ₁ − ℓ₀), the likelihood-ratio (deviance-difference) statistic.
    df
        number of parameters the larger model adds.
    p_value
        the p-value this test reports (`p_boundary` when available, else `p_naive`).
    p_naive
        P(χ²_df ≥ LR), as lme4's ``anova()`` reports it.
    p_boundary
        the boundary-corrected p-value from the χ² mixture, or NaN when the larger
        model adds no variance (no boundary) or several variances at once (no simple mixture).
    distribution
        the reference distribution used, e.g. ``"0.5·χ²(1) + 0.5·χ²(2)"``.
    method
        ``"boundary"`` or ``"naive"``: which p-value is `p_value`.
    reason
        why that p-value was used, in words.
    h0
        the null hypothesis in words (the smaller model is enough).
    h1
        the alternative in words.
    criterion
        ``"ML"`` or ``"REML"``.
    added_fixed
        the fixed terms of the larger model whose names are not in the smaller one.
    added_random
        the (factor, term) random terms of the larger model not in the smaller one.
        n_added_fixed and n_added_variances count
        the new fixed effects and variances among the `df` parameters. They count dimensions:
        for Days inside C(Days) nine dummy names are new but n_added_fixed = 10 − 2 = 8.
    models
        a table (like lme4's ``anova()``) with npar, AIC, BIC, logLik and deviance of both.
    """

    statistic: float
    df: int
    p_value: float
    p_naive: float
    p_boundary: float
    distribution: str
    method: Literal["boundary", "naive"]
    reason: str
    h0: str
    h1: str
    criterion: Literal["ML", "REML"]
    added_fixed: tuple[str, ...]
    added_random: tuple[tuple[str, str], ...]
    n_added_variances: int
    nobs: int
    models: pd.DataFrame
    n_added_fixed: int = 0

    @property
    def pvalue(self) -> float:
        """Alias of `p_value`, the name mlteach.panel's tests (hausman, mundlak_test) use."""
        return self.p_value

    def to_frame(self) -> pd.DataFrame:
        """The comparison table, one row per model, with Chisq, Df and both p-values."""
        out = self.models.copy()
        out["Chisq"] = [np.nan, self.statistic]
        out["Df"] = [np.nan, float(self.df)]
        out["p (naive χ²)"] = [np.nan, self.p_naive]
        out["p (boundary)"] = [np.nan, self.p_boundary]
        return out

    def summary(self) -> Summary:
        """H0 and H1, the statistic, its reference distribution, both p-values and the
        models' table."""
        facts: list[tuple[str, object]] = [
            ("H0", self.h0),
            ("H1", self.h1),
            ("Log-likelihoods", f"{self.criterion}, {self.nobs} observations"),
            ("Statistic LR = 2(ℓ₁ − ℓ₀)", self.statistic),
            ("Degrees of freedom", self.df),
            ("Distribution under H0", self.distribution),
            ("p-value", self.p_value),
            (f"Naive p, χ²({self.df})", self.p_naive),
            ("Boundary-corrected p", self.p_boundary),
        ]
        table = self.to_frame().drop(columns="formula")
        for col in ("p (naive χ²)", "p (boundary)"):  # p-values need more than 4 decimals
            table[col] = [f"{v:.4g}" if np.isfinite(v) else "" for v in table[col]]
        table["Chisq"] = [f"{v:.4f}" if np.isfinite(v) else "" for v in table["Chisq"]]
        table["Df"] = [f"{v:.0f}" if np.isfinite(v) else "" for v in table["Df"]]
        return Summary("Likelihood-ratio test of nested mixed models", facts,
                       [("Models (smaller = " + self.models["formula"].iloc[0] + ")", table)],
                       notes=(self.reason,))

    def __str__(self) -> str:
        return str(self.summary())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


# --------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------


def _check_glmm_pair(smaller: Any, larger: Any) -> None:
    """Two GLMMs compare only with the same family, link and likelihood approximation."""
    glmm = [hasattr(f, "family") and hasattr(f, "method") for f in (smaller, larger)]
    if not any(glmm):
        return
    if not all(glmm):
        raise ModelComparisonError(
            "lrt() cannot compare a linear mixed model with a GLMM: their likelihoods are of "
            "different outcomes' distributions. Compare two mlteach.lmm fits or two "
            "mlteach.glmm fits.")
    for fit, role in ((smaller, "first"), (larger, "second")):
        if fit.method == "pql":
            raise ModelComparisonError(
                f"The {role} model was fitted by PQL, which maximises no likelihood (its "
                f"loglik is NaN), so no likelihood-ratio test exists. Refit both with "
                f"method='laplace' (or 'agq').")
    for attr, what in (("family", "family"), ("link", "link"), ("method", "method"),
                       ("nagq", "number of quadrature nodes (nagq)")):
        a, b = getattr(smaller, attr), getattr(larger, attr)
        if a != b:
            raise ModelComparisonError(
                f"The two GLMMs differ in {what} ({a!r} and {b!r}): their log-likelihoods are "
                f"not comparable. Refit them alike, e.g. both with method='laplace'.")


def _check_comparable(smaller: Any, larger: Any) -> None:
    _check_glmm_pair(smaller, larger)
    if int(smaller.nobs) != int(larger.nobs):
        raise ModelComparisonError(
            f"The models were fitted to different rows: the smaller to {smaller.nobs}, the "
            f"larger to {larger.nobs} observations. Log-likelihoods of different data cannot be "
            f"compared. Drop rows with missing values in any variable of either model first "
            f"(data.dropna(subset=[...])) and refit both on the same rows."
        )
    ys, yl = _response(smaller.formula), _response(larger.formula)
    if ys and yl and ys != yl:
        raise ModelComparisonError(
            f"The models have different outcomes ({ys!r} and {yl!r}); a likelihood-ratio test "
            f"compares models of the same outcome."
        )
    if bool(smaller.reml) != bool(larger.reml):
        raise ModelComparisonError(
            f"One model was fitted by {_criterion(smaller)} (the smaller), the other by "
            f"{_criterion(larger)}: their log-likelihoods are different criteria. Refit both "
            f"with reml=False."
        )
    if int(smaller.n_params) == int(larger.n_params):
        raise ModelComparisonError(
            f"Both models have {smaller.n_params} parameters, so neither is nested in the "
            f"other and a likelihood-ratio test does not apply. Compare non-nested models by "
            f"AIC or BIC instead."
        )
    if int(smaller.n_params) > int(larger.n_params):
        raise ModelComparisonError(
            f"The first model has more parameters ({smaller.n_params}) than the second "
            f"({larger.n_params}). Pass the smaller (null) model first: lrt(smaller, larger)."
        )
    rows = _rows(larger)
    rows_smaller = _rows(smaller)
    if rows is not None and rows_smaller is not None and not rows_smaller.sort_values().equals(
            rows.sort_values()):
        raise ModelComparisonError(
            f"The models were fitted to different rows: both use {larger.nobs} observations, "
            f"but not the same ones (row labels differ). Log-likelihoods of different data "
            f"cannot be compared. Fit both models to the same data frame, after dropping rows "
            f"with missing values in any variable of either model."
        )
    not_in = _not_in_fixed_span(smaller, larger, rows)
    if not_in:
        raise ModelComparisonError(
            f"The models are not nested: the smaller model's fixed effect(s) "
            f"{', '.join(map(repr, not_in))} are not in the larger model, nor combinations of "
            f"its fixed-effect columns. A likelihood-ratio test needs the smaller model to be "
            f"the larger one with some terms removed or restricted (e.g. Days within C(Days))."
        )
    problem = _random_problem(smaller, larger, rows)
    if problem:
        raise ModelComparisonError("The models are not nested: " + problem)
    fs, fl = list(smaller.fixef.index), set(larger.fixef.index)
    if bool(smaller.reml) and set(fs) != fl:
        added = [t for t in larger.fixef.index if t not in set(fs)]
        raise ModelComparisonError(
            f"Both models were fitted by REML but their fixed effects differ (the larger adds "
            f"{', '.join(map(repr, added))}). REML log-likelihoods of models with different "
            f"fixed effects are not comparable: refit both with reml=False, e.g. "
            f"mlteach.lmm(formula, data, reml=False)."
        )


def _model_table(smaller: Any, larger: Any) -> pd.DataFrame:
    rows = {}
    for label, fit in (("smaller", smaller), ("larger", larger)):
        ll, k, n = float(fit.loglik), int(fit.n_params), int(fit.nobs)
        rows[label] = {"formula": str(fit.formula), "npar": k, "AIC": -2 * ll + 2 * k,
                       "BIC": -2 * ll + k * np.log(n), "logLik": ll, "deviance": -2 * ll}
    return pd.DataFrame.from_dict(rows, orient="index")


def _hypotheses(added_fixed: list[str], added_random: list[tuple[str, str]], n_cov: int,
                smaller_pairs: set[tuple[str, str]], n_fixed: int | None = None,
                n_var: int | None = None, smaller_fixed: list[str] | None = None) -> str:
    n_fixed = len(added_fixed) if n_fixed is None else n_fixed
    n_var = len(added_random) if n_var is None else n_var
    parts = []
    if n_fixed != len(added_fixed):
        # Nested by column space only (Days inside C(Days)): no single coefficient is zero.
        parts.append(f"the fixed effects reduce to the smaller model's "
                     f"({', '.join(map(repr, smaller_fixed or []))}): {n_fixed} linear "
                     f"restriction{'s' if n_fixed != 1 else ''} on the larger model's fixed "
                     f"effects")
    elif added_fixed:
        parts.append("the coefficient" + ("s" if len(added_fixed) > 1 else "") + " of " +
                     ", ".join(map(repr, added_fixed)) + (" are" if len(added_fixed) > 1
                                                          else " is") + " zero")
    if n_var != len(added_random):
        parts.append(f"the random effects reduce to the smaller model's: {n_var} variance"
                     f"{'s' if n_var != 1 else ''} (and {n_cov} covariance"
                     f"{'s' if n_cov != 1 else ''}) of the larger model's random effects "
                     f"{'are' if n_var != 1 else 'is'} zero")
    elif added_random:
        what = ", ".join(f"{t!r} across {f!r}" for f, t in added_random)
        parts.append(f"the variance{'s' if len(added_random) > 1 else ''} of the random "
                     f"effect{'s' if len(added_random) > 1 else ''} {what} "
                     f"{'are' if len(added_random) > 1 else 'is'} zero")
        partners = [t for f, t in sorted(smaller_pairs) if f == added_random[0][0]]
        if n_cov and len(added_random) == 1 and n_cov == len(partners):
            parts[-1] += (f" (and so {'are its covariances' if n_cov > 1 else 'is its covariance'}"
                          f" with {', '.join(map(repr, partners))})")
        elif n_cov:
            parts[-1] += (f" (and so {'are' if n_cov > 1 else 'is'} the {n_cov} covariance"
                          f"{'s' if n_cov > 1 else ''} the larger model adds)")
    elif n_cov:
        parts.append(f"the {n_cov} covariance parameter{'s' if n_cov > 1 else ''} the larger "
                     f"model adds {'are' if n_cov > 1 else 'is'} zero (random effects "
                     f"uncorrelated)")
    return "; ".join(parts) if parts else "the extra parameters are zero"


def lrt(smaller: Any, larger: Any) -> LRTResult:
    """Likelihood-ratio test LR = 2(ℓ₁ − ℓ₀) of a smaller mixed model nested in a larger one.

    Parameters
    ----------
    smaller, larger : fits from `mlteach.lmm` on the same rows, the smaller nested in the
        larger. Nesting is decided by column space, not by term names: each fixed-effect column
        of the smaller model must be a combination of the larger model's fixed-effect columns
        (so ``Days`` is nested in ``C(Days)``), and for each grouping factor, each random-effect
        block of the smaller model must lie in the span of one block of the larger model by
        the same factor (so ``(Days | g)`` is not nested in ``(Days || g)``). Use ML fits
        (``reml=False``) unless both have the same fixed effects and differ only in random
        effects, where REML fits may also be compared.

    Returns
    -------
    LRTResult
        Prints H0, the statistic, df, the reference distribution and the p-value; keeps both
        the naive and the boundary-corrected p-values.

    Notes
    -----
    With df = Δ(number of parameters), the naive p-value is P(χ²_df ≥ LR). When the larger
    model adds exactly one variance (a new random intercept, or a random slope together with
    its covariances with the random effects already there), that variance is zero under H0,
    on the boundary of its range, and

    .. math:: LR \\sim \\tfrac12 \\chi^2_{df-1} + \\tfrac12 \\chi^2_{df}

    (Self & Liang 1987; Stram & Lee 1994; χ²₀ is a point mass at 0). This p-value is used
    and is half-way between the two χ² tail areas; the naive one is too large. When several
    variances are added at once the mixture weights depend on the information matrix and no
    closed form is used: the naive p-value is reported and is conservative. A larger model
    that only adds covariances (e.g. ``(x || g)`` against ``(x | g)``) has no boundary problem.
    The mixture is itself a large-sample result; with few groups the larger model's variance is
    estimated at zero more than half the time and even the corrected p-value tends to be
    conservative (Pinheiro & Bates 2000, sec. 2.4), though less so than the naive one.

    Raises `ModelComparisonError` for fits to different rows, of different outcomes, by
    different criteria, not nested, or fitted by REML with different fixed effects.
    """
    _check_fit(smaller, "first (smaller)")
    _check_fit(larger, "second (larger)")
    _check_comparable(smaller, larger)
    for role, fit in (("smaller", smaller), ("larger", larger)):
        if hasattr(fit, "converged") and not bool(fit.converged):
            warnings.warn(f"The {role} model ({fit.formula}) did not converge; its "
                          f"log-likelihood, and so this test, may be wrong.",
                          ConvergenceWarning, stacklevel=user_stacklevel())

    df = int(larger.n_params) - int(smaller.n_params)
    fs = set(smaller.fixef.index)
    added_fixed = [str(t) for t in larger.fixef.index if t not in fs]
    # Counted by dimension, not by name: Days inside C(Days) adds 10 − 2 = 8 fixed effects
    # although nine dummy names are new.
    n_fixed = len(larger.fixef) - len(smaller.fixef)
    rs = _random_pairs(smaller)
    added_random = sorted(_random_pairs(larger) - rs)
    n_var = _n_variances(larger) - _n_variances(smaller)
    n_cov = df - n_fixed - n_var
    if n_cov < 0 or n_var < 0:
        raise ModelComparisonError(
            f"The larger model adds {n_fixed} fixed effect(s) and {n_var} variance(s) "
            f"but only {df} parameter(s): the two fits do not describe nested models."
        )

    l0, l1 = float(smaller.loglik), float(larger.loglik)
    statistic = 2.0 * (l1 - l0)
    if statistic < 0:
        if statistic < -1e-6 * max(1.0, abs(l0)):
            warnings.warn(
                f"The larger model's log-likelihood ({l1:.6g}) is below the smaller model's "
                f"({l0:.6g}), although it contains the smaller model: its optimiser stopped "
                f"short of the maximum. LR is set to 0; refit the larger model (other starting "
                f"values or optimiser) before trusting this test.",
                ConvergenceWarning, stacklevel=user_stacklevel())
        statistic = 0.0

    p_naive = chi2_sf(statistic, df)
    crit = _criterion(larger)
    if n_var == 1:
        dfs, weights = (df - 1, df), (0.5, 0.5)
        p_boundary = chi2_mixture_sf(statistic, dfs, weights)
        distribution = _mixture_label(dfs, weights)
        method: Literal["boundary", "naive"] = "boundary"
        f, t = added_random[0]
        reason = (
            f"Under H0 the variance of {t!r} across {f!r} is zero, on the boundary of its "
            f"range (a variance cannot be negative), so LR follows the mixture {distribution}, "
            f"not χ²({df}) (Self & Liang 1987; Stram & Lee 1994). The boundary-corrected p is "
            f"used; the naive χ²({df}) p, as lme4's anova() prints it, is too large."
        )
    elif n_var > 1:
        p_boundary, distribution, method = float("nan"), f"χ²({df})", "naive"
        reason = (
            f"The larger model adds {n_var} variances at once. Their zero values under H0 are "
            f"all on the boundary; the mixture weights then depend on the model, so the naive "
            f"χ²({df}) p is reported. It is conservative (too large): if it is small, the "
            f"evidence is at least that strong. Test one variance at a time for an exact mixture."
        )
    else:
        p_boundary, distribution, method = float("nan"), f"χ²({df})", "naive"
        reason = (
            f"The larger model adds no variance, so no parameter is on a boundary under H0 and "
            f"LR is approximately χ²({df})."
        )
    if crit == "REML":
        reason += (" Both fits are REML with identical fixed effects, so REML log-likelihoods "
                   "are comparable.")
    return LRTResult(
        statistic=statistic, df=df,
        p_value=p_boundary if method == "boundary" else p_naive,
        p_naive=p_naive, p_boundary=p_boundary, distribution=distribution, method=method,
        reason=reason, h0=_hypotheses(added_fixed, added_random, n_cov, rs, n_fixed, n_var,
                                  list(map(str, smaller.fixef.index))),
        h1=f"the larger model, {larger.formula}", criterion=crit,
        added_fixed=tuple(added_fixed), added_random=tuple(added_random),
        n_added_variances=n_var, nobs=int(larger.nobs), models=_model_table(smaller, larger),
        n_added_fixed=n_fixed,
    )


__all__ = ["lrt", "LRTResult", "chi2_mixture_sf", "random_terms", "span_residual"]
