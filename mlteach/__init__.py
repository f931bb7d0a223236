"""mlteach: multilevel models for teaching, with numbers that match lme4, plm and Stata.

The library behind the course book: each function implements a concept of a chapter and its
docstring points to the equation it computes.
"""

from mlteach import errors
from mlteach.data import list_datasets, load
from mlteach.design import center, decompose_variance, group_mean, mundlak
from mlteach.exercises import check
from mlteach.glmm import GLMMResult, compare_glmm_methods, glmm  # function shadows subpackage
from mlteach.lmm import LMMResult, lmm  # the function shadows the subpackage's name
from mlteach.lrt import LRTResult, lrt
from mlteach.ols import OLSResult, ols
from mlteach.panel import (
    between, compare, first_difference, hausman, lsdv, mundlak_test, quasi_demeaned_gls, rewb,
    swamy_arora, within,
)
from mlteach.pooling import no_pooling, shrinkage_table
from mlteach.simulate import simulate_clustered

__version__ = "0.1.0"


def __getattr__(name: str):
    """Import `mlteach.plots` on first use, so `import mlteach` does not load matplotlib."""
    if name == "plots":
        import importlib

        return importlib.import_module("mlteach.plots")
    raise AttributeError(f"module 'mlteach' has no attribute {name!r}")

__all__ = [
    "errors", "load", "list_datasets", "center", "decompose_variance", "group_mean", "mundlak",
    "ols", "OLSResult", "simulate_clustered", "check", "lmm", "LMMResult",
    "within", "lsdv", "first_difference", "between", "swamy_arora", "quasi_demeaned_gls", "rewb",
    "hausman", "mundlak_test", "compare", "lrt", "LRTResult", "no_pooling", "shrinkage_table",
    "glmm", "GLMMResult", "compare_glmm_methods", "plots",
]
