"""The random-effects structure: the model matrix Z, the grouping factors and θ ↦ Λ_θ.

For random-effect block k with q_k columns Z_k (e.g. intercept and ``Days``) and a grouping
factor with G_k levels, the block contributes G_k·q_k random effects, ordered level by level
(the q_k effects of level 1, then of level 2, ...). Its covariance is

    Var(b_k) = σ² · (I_{G_k} ⊗ T_k T_k'),

with T_k the q_k × q_k lower-triangular *relative covariance factor*. θ lists the lower-triangle
elements of every T_k, column by column (lme4's order within a block); the diagonal elements
are bounded below by 0, so a variance can reach exactly zero. Λ_θ = ⊕_k (I_{G_k} ⊗ T_k).
"""

from __future__ import annotations

import dataclasses
import keyword
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import Formula, ModelSpec
from formulaic.errors import FactorEvaluationError

from mlteach.design import (
    GroupIndex,
    _categorical_variables,
    _check_finite,
    _check_formula_names,
    _text_as_object,
    check_column_types,
    check_columns,
    check_grouping,
    encode_formula,
    formula_variables,
    parse_formula,
    refuse_unused_categories,
)
from mlteach.errors import DataTypeError, FormulaSyntaxError, GroupingError, MlteachWarning, warn
from mlteach.mixed.formula import MixedFormula, RandomTerm
from mlteach.mixed.offset import offset_variables


@dataclass(frozen=True)
class Block:
    """One random-effect block: its columns, grouping factor and place in θ.

    Attributes
    ----------
    term
        the parsed ``(expr | factor)``.
    Z
        (n, q) dense columns of the block (before expansion by group).
    columns
        names of the q columns (formulaic's, e.g. ``Intercept``, ``Days``).
    groups
        the grouping index (codes per row, level labels).
    spec
        formulaic's spec, to encode new data the same way; None when the expression is only
        ``1``/``0`` and plain numeric columns, which `encode` then copies directly.
    theta_slice
        the positions of this block's elements in θ.
    """

    term: RandomTerm
    Z: np.ndarray = field(repr=False)
    columns: list[str]
    groups: GroupIndex = field(repr=False)
    spec: ModelSpec | None = field(repr=False)
    theta_slice: slice

    def encode(self, data: pd.DataFrame) -> np.ndarray:
        """The block's columns Z for (new) data, encoded as for the fitted data."""
        if self.spec is not None:
            # evaluated in mlteach.design.FORMULA_NAMESPACE, as the fixed part; a missing or
            # infinite value is an error naming the term and row, never a silent NaN
            variables = formula_variables(self.spec.formula)
            check_columns(data, variables, "variable")
            _check_new_missing(data, variables)
            frame = _text_as_object(data[variables].copy()) if variables else data
            mm = encode_formula(self.spec, frame, na_action="ignore")
            return _check_finite(mm, self.spec, frame, self.spec.formula, "newdata")
        names = [c for c in self.columns if c != "Intercept"]
        check_columns(data, names, "variable")
        _check_new_missing(data, names)
        return _plain_columns(self.columns, data)

    @property
    def q(self) -> int:
        return len(self.columns)

    @property
    def factor(self) -> str:
        return self.term.factor_name

    @property
    def n_effects(self) -> int:
        return self.q * self.groups.n_groups

    def lower_tri(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of T's lower triangle, column by column (θ's order)."""
        rows, cols = [], []
        for c in range(self.q):
            for r in range(c, self.q):
                rows.append(r)
                cols.append(c)
        return np.array(rows), np.array(cols)


@dataclass(frozen=True)
class ReStructure:
    """All random-effect blocks of a model, in formula order."""

    blocks: tuple[Block, ...]

    @property
    def n_theta(self) -> int:
        return self.blocks[-1].theta_slice.stop

    @property
    def factors(self) -> list[str]:
        """Grouping-factor names, in order of first appearance."""
        return list(dict.fromkeys(b.factor for b in self.blocks))

    @property
    def single_factor(self) -> bool:
        return len(self.factors) == 1

    def theta_lower(self) -> np.ndarray:
        """Lower bounds of θ: 0 for diagonal elements of each T_k, −∞ below the diagonal."""
        out = []
        for b in self.blocks:
            r, c = b.lower_tri()
            out.append(np.where(r == c, 0.0, -np.inf))
        return np.concatenate(out)

    def theta_start(self) -> np.ndarray:
        """Starting value: T_k = I (random-effect SDs equal to the residual SD), as lme4."""
        return np.where(self.theta_lower() == 0.0, 1.0, 0.0)

    def theta_scale(self) -> np.ndarray:
        """Per element of θ, the scale s of its row's column: θ̃ = s ⊙ θ is θ on the unit scale.

        For block k let D_k = diag(root mean square of each column of Z_k) (1 for an intercept).
        Then Z_k T_k = (Z_k D_k⁻¹)(D_k T_k): the same model written with unit-RMS columns and
        the factor T̃_k = D_k T_k, still lower triangular with the same zero pattern and sign
        constraints. Element (r, c) of T̃_k is s_r times that of T_k. The optimiser searches
        on θ̃ (`mlteach.lmm.fit.optimize_theta`), so a random slope of x and of 1000·x give the
        same search, and its start T̃ = I means every random effect moves y by about σ.
        """
        out = []
        for b in self.blocks:
            rms = np.sqrt(np.mean(b.Z ** 2, axis=0))
            rms = np.where(rms > 0, rms, 1.0)
            out.append(rms[b.lower_tri()[0]])
        return np.concatenate(out)

    def to_unit_scale(self, theta: np.ndarray) -> np.ndarray:
        """θ ↦ θ̃ = s ⊙ θ (see `theta_scale`)."""
        return np.asarray(theta, dtype=float) * self.theta_scale()

    def from_unit_scale(self, theta_unit: np.ndarray) -> np.ndarray:
        """θ̃ ↦ θ = θ̃ / s, the inverse of `to_unit_scale` (exact zeros stay zero)."""
        return np.asarray(theta_unit, dtype=float) / self.theta_scale()

    def theta_names(self) -> list[str]:
        """lme4-style names: ``Subject.Intercept``, ``Subject.Days.Intercept``, ``Subject.Days``."""
        names = []
        for b in self.blocks:
            for r, c in zip(*b.lower_tri()):
                names.append(f"{b.factor}.{b.columns[r]}" if r == c
                             else f"{b.factor}.{b.columns[r]}.{b.columns[c]}")
        return names

    def factors_T(self, theta: np.ndarray) -> list[np.ndarray]:
        """The relative covariance factors T_k (lower triangular) for θ."""
        out = []
        for b in self.blocks:
            T = np.zeros((b.q, b.q))
            r, c = b.lower_tri()
            T[r, c] = theta[b.theta_slice]
            out.append(T)
        return out

    @property
    def n_effects(self) -> int:
        """q = Σ_k G_k q_k, the number of random effects (columns of Z)."""
        return sum(b.n_effects for b in self.blocks)

    def lambda_pattern(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row, column and θ-index of every structural non-zero of Λ_θ (lme4's ``Lind``)."""
        rows, cols, ind = [], [], []
        offset = 0
        for b in self.blocks:
            r, c = b.lower_tri()
            G = b.groups.n_groups
            base = offset + np.arange(G)[:, None] * b.q
            rows.append((base + r[None, :]).ravel())
            cols.append((base + c[None, :]).ravel())
            ind.append(np.tile(np.arange(b.theta_slice.start, b.theta_slice.stop), G))
            offset += b.n_effects
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(ind)

    def factor_positions(self) -> dict[str, np.ndarray]:
        """Per grouping factor, the (G, q_f) positions in u of its random effects: level by
        level, the terms of all its blocks in formula order (one row per level)."""
        offsets = np.cumsum([0] + [b.n_effects for b in self.blocks])
        out: dict[str, list[np.ndarray]] = {}
        for b, lo in zip(self.blocks, offsets[:-1]):
            pos = lo + np.arange(b.groups.n_groups)[:, None] * b.q + np.arange(b.q)[None, :]
            out.setdefault(b.factor, []).append(pos)
        return {f: np.hstack(parts) for f, parts in out.items()}

    def row_scaled(self, scale: np.ndarray) -> "ReStructure":
        """The same structure with each row of every block's Z multiplied by `scale` (prior
        weights enter a linear mixed model as √w_i times each row)."""
        return ReStructure(tuple(dataclasses.replace(b, Z=b.Z * scale[:, None])
                                 for b in self.blocks))

    def Z_sparse(self) -> sp.csc_matrix:
        """Z = [Z_1 ... Z_K], each block expanded to G_k·q_k columns (level-major), sparse."""
        mats = []
        for b in self.blocks:
            n, q = b.Z.shape
            rows = np.repeat(np.arange(n), q)
            cols = (b.groups.codes[:, None] * q + np.arange(q)[None, :]).ravel()
            mats.append(sp.csc_matrix((b.Z.ravel(), (rows, cols)), shape=(n, b.n_effects)))
        return sp.hstack(mats, format="csc")


def conditional_covariances(structure: ReStructure, A: sp.spmatrix, theta: np.ndarray,
                            sigma2: float) -> dict[str, np.ndarray]:
    """Per grouping factor, the (G, q_f, q_f) conditional covariances σ² T_f (A⁻¹)_jj T_f'
    of each level's random effects (all terms of the factor, T_f = ⊕ of its T_k), from
    A = Λ'Z'WZΛ + I (W = I for a linear mixed model; σ² = 1 for a GLMM).

    These are lme4's ``condVar`` blocks (for ``||`` terms lme4 gives only the diagonal
    sub-blocks; here the covariance between them is kept). Only the per-level diagonal
    blocks of A⁻¹ are needed. Order u with the effects of the factor with most effects
    first, level by level: A = [[A₁₁, A₁₂], [A₂₁, A₂₂]] has A₁₁ block diagonal (one
    q_f × q_f block per level: different levels of one factor share no rows), so with
    W = A₁₁⁻¹A₁₂ and S = A₂₂ − A₂₁W (dense, the size of the other factors' effects):

        (A⁻¹)₁₁ = A₁₁⁻¹ + W S⁻¹ W',   (A⁻¹)₂₂ = S⁻¹.
    """
    positions = structure.factor_positions()
    factors = list(positions)
    big = max(factors, key=lambda f: positions[f].size)
    others = [f for f in factors if f != big]
    idx1 = positions[big].ravel()
    idx2 = np.concatenate([positions[f].ravel() for f in others]) if others else idx1[:0]
    A = A.tocsr()
    G1, q1 = positions[big].shape
    rows, cols = np.broadcast_arrays(
        np.arange(G1)[:, None, None] * q1 + np.arange(q1)[None, :, None],
        np.arange(G1)[:, None, None] * q1 + np.arange(q1)[None, None, :])
    A11_sp = A[idx1][:, idx1]
    A11_blocks = np.asarray(A11_sp[rows.ravel(), cols.ravel()]).reshape(G1, q1, q1)
    A11_inv = np.linalg.inv(A11_blocks)
    inv_blocks = {big: A11_inv}
    if idx2.size:
        # A₁₂ and W stay sparse (nested designs: one non-zero per row); only S is dense
        A12 = A[idx1][:, idx2].tocsr()                         # (G1·q1, q2)
        A11_inv_bd = sp.bsr_matrix((A11_inv, np.arange(G1), np.arange(G1 + 1)),
                                   shape=(G1 * q1, G1 * q1))
        W = (A11_inv_bd @ A12).tocsr()
        S = A[idx2][:, idx2].toarray() - (A12.T @ W).toarray()
        S_inv = np.linalg.inv(S)
        # the levels' blocks of W S⁻¹ W', a few thousand rows of W S⁻¹ at a time
        extra = np.empty((G1, q1, q1))
        step = max(1, int(4e6 // max(S.shape[0], 1)) // q1)
        for lo in range(0, G1, step):
            Wc = W[lo * q1:(lo + step) * q1]
            Mc = np.asarray(Wc @ S_inv).reshape(-1, q1, S.shape[0])
            Wd = Wc.toarray().reshape(-1, q1, S.shape[0])
            extra[lo:lo + step] = np.einsum("gam,gbm->gab", Mc, Wd)
        inv_blocks[big] = A11_inv + extra
        pos = 0
        for f in others:
            G, q = positions[f].shape
            r = pos + np.arange(G)[:, None, None] * q + np.arange(q)[None, :, None]
            c = pos + np.arange(G)[:, None, None] * q + np.arange(q)[None, None, :]
            inv_blocks[f] = S_inv[r, c]
            pos += G * q
    Ts = structure.factors_T(theta)
    out = {}
    for f in factors:
        Tf = block_diag_T([T for T, b in zip(Ts, structure.blocks) if b.factor == f])
        out[f] = sigma2 * Tf[None] @ inv_blocks[f] @ Tf.T[None]
    return out


def block_diag_T(Ts: list[np.ndarray]) -> np.ndarray:
    """⊕ T_k: the relative covariance factor of all terms of one grouping factor."""
    q = sum(T.shape[0] for T in Ts)
    out = np.zeros((q, q))
    pos = 0
    for T in Ts:
        k = T.shape[0]
        out[pos:pos + k, pos:pos + k] = T
        pos += k
    return out


def split_factor_blocks(structure: ReStructure, by_factor: dict[str, np.ndarray]
                        ) -> list[np.ndarray]:
    """Per block, its (G, q_k, q_k) diagonal sub-block of its factor's (G, q_f, q_f) array."""
    out, pos = [], {f: 0 for f in by_factor}
    for b in structure.blocks:
        lo = pos[b.factor]
        out.append(by_factor[b.factor][:, lo:lo + b.q, lo:lo + b.q])
        pos[b.factor] = lo + b.q
    return out


def random_variables(parsed: MixedFormula) -> list[str]:
    """Columns the random part and the offsets need: grouping columns, variables of the block
    expressions and of the ``offset()`` terms."""
    names: list[str] = []
    for term in parsed.random:
        names += formula_variables(Formula(term.expr)) + list(term.factor)
    names += offset_variables(parsed.offsets)
    return list(dict.fromkeys(names))


def build_structure(terms: tuple[RandomTerm, ...], data: pd.DataFrame,
                    allow_one_per_group: bool = False) -> ReStructure:
    """Encode each random-effect block on the rows used, check its grouping, place it in θ.

    `allow_one_per_group`: a factor with one row per level is allowed (a GLMM's observation-
    level random effect: over-dispersion); in a linear mixed model it would duplicate the
    residual and is an error.
    """
    blocks = []
    start = 0
    nobs = len(data)
    for term in terms:
        check_term(term, data)
        groups = GroupIndex.from_data(data, list(term.factor))
        check_grouping(groups, nobs, role="grouping factor",
                       allow_one_per_group=allow_one_per_group)
        columns = _plain_expression(term.expr, data)
        if columns is not None:
            Z, spec = _plain_columns(columns, data), None
        else:
            Z, spec, columns = _encode_term(term, data)
        _check_varies_within(Z, columns, groups, term)
        k = len(columns) * (len(columns) + 1) // 2
        blocks.append(Block(term=term, Z=Z, columns=columns, groups=groups,
                            spec=spec, theta_slice=slice(start, start + k)))
        _check_identifiable(blocks[-1], nobs, allow_one_per_group)
        start += k
    _check_duplicate_columns(blocks)
    return ReStructure(tuple(blocks))


def _check_identifiable(block: Block, nobs: int, allow_one_per_group: bool) -> None:
    """lme4's check.nobs.vs.nRE: a term with as many random effects as rows (LMM: with at
    least as many; GLMM, no residual variance: with more) cannot be estimated."""
    n_re = block.groups.n_groups * len(block.columns)
    if n_re > nobs or (n_re == nobs and not allow_one_per_group):
        term = f"({block.term.expr} | {block.term.factor_name})"
        extra = "" if allow_one_per_group else " and the residual variance"
        raise GroupingError(
            f"The term {term} has {n_re} random effects ({block.groups.n_groups} groups × "
            f"{len(block.columns)} per group) for {nobs} rows: its variance parameters{extra} "
            f"cannot be estimated (lme4 stops here too). Drop random slopes from the term, "
            f"e.g. (1 | {block.term.factor_name}), or use a grouping with fewer levels.")


def check_term(term: RandomTerm, data: pd.DataFrame) -> None:
    """The checks at the door of the fixed part, for a block's left-hand expression.

    Names a formula cannot use (``pd``, Python builtins, ...) are an `UnknownVariableError`
    with the fixed part's message; the columns it uses have their types checked by
    `mlteach.design.check_column_types` as predictors (dates, durations, complex numbers and
    numbers stored as Python objects are a `DataTypeError`); a categorical column with a
    category no row has is a `DataTypeError` (its column of Z would be all zero).
    """
    parsed = parse_formula(term.expr)
    _check_formula_names(parsed, f"({term.expr} | {term.factor_name})", data)
    variables = formula_variables(parsed)
    check_columns(data, variables, "variable")
    check_column_types(data, variables, "predictor", categorical=_categorical_variables(parsed))
    refuse_unused_categories(data, variables, f"the random-effect term '({term.expr} | "
                             f"{term.factor_name})' would make an all-zero column for each")


def _check_new_missing(data: pd.DataFrame, variables: list[str]) -> None:
    """A missing value of a random-effect variable in new data is an error (as for the fixed
    part's variables), never a silent NaN prediction."""
    if not variables:
        return
    miss = data[variables].isna()
    if miss.to_numpy().any():
        name = miss.columns[miss.any().to_numpy()][0]
        row = data.index[miss[name].to_numpy()][0]
        k = int(miss.any(axis=1).sum())
        raise DataTypeError(
            f"newdata's {name!r} is missing at row {row!r} ({k} row{'' if k == 1 else 's'} "
            f"with a missing value): a prediction needs every variable of the model. Drop or "
            f"fill those rows first, e.g. newdata.dropna(subset={variables}).")


def _encode_term(term: RandomTerm, data: pd.DataFrame
                 ) -> tuple[np.ndarray, ModelSpec, list[str]]:
    """A block's columns encoded by formulaic in `mlteach.design.FORMULA_NAMESPACE`."""
    parsed = parse_formula(term.expr)
    variables = formula_variables(parsed)
    frame = _text_as_object(data[variables].copy()) if variables else data
    try:
        mm = encode_formula(parsed, frame, na_action="ignore")
    except FactorEvaluationError as exc:
        raise FormulaSyntaxError(
            f"Could not evaluate the random-effect term '({term.expr} | {term.factor_name})': "
            f"{exc}.") from None
    Z = _check_finite(mm, mm.model_spec, frame, parsed, "the data")
    return Z, mm.model_spec, [str(c) for c in mm.columns]


def _plain_expression(expr: str, data: pd.DataFrame) -> list[str] | None:
    """Column names of a random-effect expression made only of ``1``, ``0`` and distinct plain
    numeric (not boolean) columns, such as ``1 + Days`` or ``0 + x``; None for anything else.

    Formulaic encodes these as the intercept (unless ``0``) followed by the columns in the
    order written; building them directly skips its fixed cost (a few ms a term), which
    matters for small data fitted many times. Everything else goes through formulaic.
    """
    tokens = [t.strip() for t in expr.split("+")]
    names = [t for t in tokens if t not in ("0", "1")]
    if ("0" in tokens and "1" in tokens) or len(set(names)) != len(names):
        return None
    for name in names:
        if (not name.isidentifier() or keyword.iskeyword(name) or name not in data.columns
                or not pd.api.types.is_numeric_dtype(data[name])
                or pd.api.types.is_bool_dtype(data[name])):
            return None
    return (["Intercept"] if "0" not in tokens else []) + names


def _plain_columns(columns: list[str], data: pd.DataFrame) -> np.ndarray:
    """The (n, q) matrix of `columns` (``Intercept`` a column of ones), column-major."""
    Z = np.empty((len(data), len(columns)), order="F")
    for j, c in enumerate(columns):
        Z[:, j] = 1.0 if c == "Intercept" else data[c].to_numpy(dtype=float)
    return Z


def _check_varies_within(Z: np.ndarray, columns: list[str], groups: GroupIndex,
                         term: RandomTerm) -> None:
    """A random slope of x needs x to vary within groups; otherwise it is a second intercept."""
    has_intercept = "Intercept" in columns
    for j, name in enumerate(columns):
        if name == "Intercept":
            continue
        spread = np.abs(groups.demean(Z[:, j])).max()
        scale = max(np.abs(Z[:, j]).max(), 1e-300)
        if spread > 1e-10 * scale:
            continue
        message = (
            f"The random slope of {name!r} by {term.factor_name!r} cannot be estimated: "
            f"{name!r} takes a single value within every group of {term.factor_name!r}, so "
            f"slopes cannot differ between groups (it would duplicate the random intercept). "
            f"Drop {name!r} from '({term.expr} | {term.factor_name})', or keep it as a fixed "
            f"effect only.")
        if has_intercept:
            raise GroupingError(message)
        warn(message, MlteachWarning)


def _check_duplicate_columns(blocks: list[Block]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for b in blocks:
        for c in b.columns:
            key = (b.factor, c)
            if key in seen:
                raise GroupingError(
                    f"The random effect {c!r} by {b.factor!r} appears in two terms; it can have "
                    f"only one variance. Keep it in one '(... | {b.factor})' term.")
            seen[key] = c


__all__ = ["Block", "ReStructure", "build_structure", "check_term", "conditional_covariances",
           "block_diag_T", "split_factor_blocks", "random_variables"]


def varcorr_rows(covs: dict[str, pd.DataFrame]) -> list[dict]:
    """One row per (group, term) of lme4's ``VarCorr``: variance, SD and the correlations with
    the factor's earlier terms (``corr with <term>``; NaN where an SD is 0)."""
    rows = []
    for g, cov in covs.items():
        sd = np.sqrt(np.diag(cov.to_numpy()))
        for i, term in enumerate(cov.index):
            row = {"group": g, "term": term, "variance": cov.iloc[i, i], "std.dev": sd[i]}
            for j in range(i):
                denom = sd[i] * sd[j]
                row[f"corr with {cov.index[j]}"] = (cov.iloc[i, j] / denom if denom > 0
                                                    else np.nan)
            rows.append(row)
    return rows
