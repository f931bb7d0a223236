"""What every fitted model and every test returns: one vocabulary of result names.

`mlteach.results.base` holds the pieces results are built from (`Summary`, `CoefficientTable`,
`OwnsTables`, `coef_table`, `confidence_interval`, `renamed`); `mlteach.results.tests` holds
`TestResult`, the one object for Wald, Hausman, Mundlak and likelihood-ratio tests.

The same thing has the same name in every result (issue 14). Families: ``ols`` (`mlteach.ols`),
``panel`` (every estimator of `mlteach.panel`), ``lmm`` (`mlteach.lmm`), ``glmm``
(`mlteach.glmm`). A name not listed for a family is absent there on purpose.

==================  ==================  =========================================  ====================
name                type                meaning                                    results
==================  ==================  =========================================  ====================
``params``          Series              coefficients (fixed effects) by term       ols panel lmm glmm
``fixef``           Series              alias of ``params`` (lme4's name)          ols panel lmm glmm
``bse``             Series              standard errors by term                    ols panel lmm glmm
``vcov``            DataFrame           covariance matrix of ``params``            ols panel lmm glmm
``tvalues``         Series              estimate / SE (t, or z when normal)        ols panel lmm glmm
``pvalues``         Series              two-sided p-values of ``tvalues``          ols panel lmm glmm
``conf_int(level)`` DataFrame           Wald intervals, columns lower, upper       ols panel lmm glmm
``nobs``            int                 rows of the model (of the regression run)  ols panel lmm glmm
``ngroups``         int (lmm: dict)     groups (lmm: by grouping factor)           panel lmm glmm
``df_resid``        int                 residual degrees of freedom                ols panel
``n_params``        int                 parameters counted by logLik/AIC/BIC       lmm glmm
``loglik``          float               log-likelihood (see below)                 ols panel lmm glmm
``aic``             float               −2 loglik + 2 k                            ols lmm glmm
``bic``             float               −2 loglik + log(n) k                       ols lmm glmm
``fitted``          Series              in-sample fitted values, ``predict()``     ols panel lmm glmm
``resid``           Series              residuals of the model as fitted           ols panel lmm glmm
``predict(...)``    Series              ``predict(newdata=None, include_random=)`` ols panel lmm glmm
``summary()``       Summary             printed summary (text and HTML)            ols panel lmm glmm
``to_frame()``      DataFrame           coefficient table by term                  ols panel lmm glmm
``_repr_html_()``   str                 the summary as HTML for notebooks          ols panel lmm glmm
==================  ==================  =========================================  ====================

Definitions where estimators differ:

* ``loglik``: ``ols`` is the Gaussian log-likelihood at σ̂² = e'e/n, statsmodels' ``llf``;
  ``panel`` is linearmodels' ``loglik``, the same formula on the residuals and rows of the
  regression each estimator runs (demeaned, differenced, group means, quasi-demeaned);
  ``lmm`` is lme4's ``logLik`` (ML or REML); ``glmm`` the Laplace/AGQ approximation (NaN for PQL).
* ``aic``, ``bic``: ``ols`` as statsmodels, k = the number of coefficients (σ² not counted);
  ``lmm``, ``glmm`` as lme4, k = ``n_params``. Panel estimators have none: neither plm nor
  linearmodels defines them for a transformed regression.
* ``fitted``, ``predict``: ``include_random`` says whether the group effect is added.
  Fixed effects (``within``, ``lsdv``): the estimated intercept α̂_i (two-way: and γ̂_t), for
  groups seen in fitting only. Random effects (``swamy_arora``, ``quasi_demeaned_gls``,
  ``rewb``): the predicted effect û_i, 0 for a new group. ``between`` and
  ``first_difference`` have no group effects to add. ``ols`` has no ``include_random``.
* ``resid``: for random-effects panel estimators, the residuals of the quasi-demeaned
  regression actually run (as plm), so ``fitted + resid`` is not y there.

Tests (`TestResult`: Wald, Hausman, Mundlak; the likelihood-ratio test follows it):
``name``, ``null`` (H0 in words), ``statistic``, ``df``, ``df_denom`` (None for χ²),
``pvalue``, ``distribution`` (e.g. ``chi2(2)``, ``F(2, 187)``), ``details`` (DataFrame or
None), ``notes``, ``summary()``, ``to_frame()``, ``_repr_html_()``.

Renamed in issue 14 (the old name works for one release with a `DeprecationWarning`):
``n_groups`` → ``ngroups`` (panel), ``fittedvalues`` → ``fitted`` (ols), ``p_value`` →
``pvalue`` (tests, lrt), ``include_effects=`` → ``include_random=`` (panel ``predict``),
``df_model`` → ``n_params`` (glmm).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlteach.results.base import (
    CoefficientTable, OwnsTables, Summary, coef_table, confidence_interval, format_value, renamed,
    wald_statistics,
)
from mlteach.results.tests import TestResult, wald_test

FAMILIES = ("ols", "panel", "lmm", "glmm")


@dataclass(frozen=True)
class ResultName:
    """One row of the table above: a canonical name, its type, and the families that have it.

    `kind` is "Series", "DataFrame", "int", "float", "int or dict" or "method".
    """

    name: str
    kind: str
    families: tuple[str, ...] = FAMILIES


RESULT_API: tuple[ResultName, ...] = (
    ResultName("params", "Series"), ResultName("fixef", "Series"), ResultName("bse", "Series"),
    ResultName("vcov", "DataFrame"), ResultName("tvalues", "Series"),
    ResultName("pvalues", "Series"), ResultName("conf_int", "method"),
    ResultName("nobs", "int"), ResultName("ngroups", "int or dict", ("panel", "lmm", "glmm")),
    ResultName("df_resid", "int", ("ols", "panel")), ResultName("n_params", "int", ("lmm", "glmm")),
    ResultName("loglik", "float"), ResultName("aic", "float", ("ols", "lmm", "glmm")),
    ResultName("bic", "float", ("ols", "lmm", "glmm")), ResultName("fitted", "Series"),
    ResultName("resid", "Series"), ResultName("predict", "method"),
    ResultName("summary", "method"), ResultName("to_frame", "method"),
    ResultName("_repr_html_", "method"),
)

TEST_API: tuple[ResultName, ...] = tuple(
    ResultName(n, k, ("test",)) for n, k in (
        ("name", "str"), ("null", "str"), ("statistic", "float"), ("df", "int"),
        ("df_denom", "int or None"), ("pvalue", "float"), ("distribution", "str"),
        ("details", "DataFrame or None"), ("notes", "tuple"), ("summary", "method"),
        ("to_frame", "method"), ("_repr_html_", "method")))

__all__ = [
    "CoefficientTable", "OwnsTables", "Summary", "coef_table", "confidence_interval",
    "format_value", "renamed", "wald_statistics", "TestResult", "wald_test", "RESULT_API", "TEST_API",
    "ResultName", "FAMILIES",
]
