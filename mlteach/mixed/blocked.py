"""The penalised system A = Λ'Z'WZΛ + I factored by blocks, for solving and for log det A.

Design note (issue 14; the same idea as MixedModels.jl's blocked Cholesky). Order the random
effects so that the grouping factor with the most effects comes first, block 1, and put all the
others in block 2:

    A = [ A₁₁  A₁₂ ]      A₁₁ = diag(D_1, ..., D_J): one q₁ × q₁ block per level of factor 1,
        [ A₂₁  A₂₂ ]            because a row belongs to exactly one of its levels;
                          A₁₂ = A₂₁' sparse (a row touches one level of factor 1);
                          A₂₂ small (the other factors' effects: r₂ of them), kept dense.

Block elimination needs only the Schur complement S = A₂₂ − A₂₁ A₁₁⁻¹ A₁₂ (r₂ × r₂, dense):

    log det A = Σ_j log det D_j + log det S,
    A x = g:    S x₂ = g₂ − M'g₁,  x₁ = A₁₁⁻¹ g₁ − M x₂,   M = A₁₁⁻¹ A₁₂.

One grouping factor (r₂ = 0) is J independent q₁ × q₁ systems, solved as one batched array
operation; crossed designs with a small second factor (subjects × items: r₂ = 24 for VerbAgg)
and nested ones (children in mothers in communities: r₂ = 161) reduce to a small dense S.
The sparsity pattern of every piece is fixed by the grouping factors, so it is worked out once
(`BlockedPattern`); each evaluation only adds up numbers (`np.bincount`) and factors D_j and S.
Where block 2 is large (r₂ > `MAX_DENSE`) the caller keeps its general sparse factorisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import linalg

MAX_DENSE = 2500   # largest r₂ for a dense Schur complement (50 MB)


class BlockedPattern:
    """The fixed layout of A for the columns C (n × r) of ZΛ's non-zeros, row by row.

    `first` is the column range [start, start + n1·q1) of factor 1's effects and `q1` its
    effects per level; every row has exactly q1 of its r entries in that range, at positions
    `pos1` (the same for every row) and the others at `pos2`.
    """

    def __init__(self, C: np.ndarray, q: int, start: int, n1: int, q1: int, pos1: np.ndarray):
        n, r = C.shape
        self.q, self.q1, self.n1 = q, q1, n1
        self.start, self.stop = start, start + n1 * q1
        self.pos1 = pos1
        self.pos2 = np.setdiff1d(np.arange(r), pos1)
        self.r2 = q - n1 * q1
        self.level = (C[:, pos1[0]] - start) // q1                    # factor-1 level of each row
        C2 = C[:, self.pos2]
        self.C2 = np.where(C2 < start, C2, C2 - n1 * q1)             # index within block 2
        q1sq = q1 * q1
        # D_j: entry (a, b) of level j at j·q1² + a·q1 + b
        a, b = np.divmod(np.arange(q1sq), q1)
        self._d_key = (self.level[:, None] * q1sq + np.arange(q1sq)[None, :]).ravel()
        self._d_a, self._d_b = a, b
        r2i = len(self.pos2)
        if self.r2:
            # A₁₂ in CSR: row level·q1 + a, column C2[:, c]
            rows = (self.level[:, None, None] * q1 + np.arange(q1)[None, :, None])
            keys = (rows * self.r2 + self.C2[:, None, :]).ravel()
            uniq, self._b_pos = np.unique(keys, return_inverse=True)
            b_row, b_col = np.divmod(uniq, self.r2)
            self._b_indices = b_col.astype(np.int32)
            self._b_indptr = np.searchsorted(b_row, np.arange(n1 * q1 + 1)).astype(np.int32)
            self._b_row = b_row
            self._b_nnz = len(uniq)
            # A₂₂ dense: flat index c·r2 + d
            self._a22_key = (self.C2[:, :, None] * self.r2 + self.C2[:, None, :]).ravel()
            # a dense A₁₂ when most of its entries are filled (crossed designs): one BLAS
            # product for A₂₁A₁₁⁻¹A₁₂ instead of a sparse one
            self._dense_b = self._b_nnz > 0.25 * n1 * q1 * self.r2 and n1 * q1 * self.r2 < 4e6
            if self._dense_b:
                self._b_flat = (b_row * self.r2 + b_col).astype(np.int64)
        self._r2i = r2i

    @classmethod
    def choose(cls, C: np.ndarray, block_columns: list[tuple[int, int, int, np.ndarray]],
               q: int) -> "BlockedPattern | None":
        """The pattern with the structure block of most effects first, or None when the rest
        is too large for a dense Schur complement. `block_columns` lists (start, n_levels,
        q_k, positions in a row) for each structure block."""
        start, n1, q1, pos1 = max(block_columns, key=lambda b: b[1] * b[2])
        if q - n1 * q1 > MAX_DENSE:
            return None
        return cls(C, q, start, n1, q1, pos1)

    def factor(self, V: np.ndarray, w: np.ndarray) -> "BlockedFactor":
        """Factor A = Λ'Z'WZΛ + I for the row values V (n × r) and weights w."""
        q1, n1 = self.q1, self.n1
        V1 = V[:, self.pos1]
        Vw1 = V1 * w[:, None]
        prods = (Vw1[:, self._d_a] * V1[:, self._d_b]).ravel()
        D = np.bincount(self._d_key, weights=prods, minlength=n1 * q1 * q1).reshape(n1, q1, q1)
        D[:, np.arange(q1), np.arange(q1)] += 1.0
        if q1 == 1:
            d = D[:, 0, 0]
            logdet = float(np.log(d).sum())
            L1 = None
        else:
            L1 = np.linalg.cholesky(D)                                # batched, lower
            logdet = 2.0 * float(np.log(np.diagonal(L1, axis1=1, axis2=2)).sum())
            d = None
        if not self.r2:
            return BlockedFactor(self, d, L1, None, None, None, logdet)
        V2 = V[:, self.pos2]
        bvals = (Vw1[:, :, None] * V2[:, None, :]).ravel()
        bdata = np.bincount(self._b_pos, weights=bvals, minlength=self._b_nnz)
        Vw2 = V2 * w[:, None]
        S = np.bincount(self._a22_key, weights=(Vw2[:, :, None] * V2[:, None, :]).ravel(),
                        minlength=self.r2 * self.r2).reshape(self.r2, self.r2)
        S[np.diag_indices(self.r2)] += 1.0
        if self._dense_b:
            Bd = np.zeros(n1 * q1 * self.r2)
            Bd[self._b_flat] = bdata
            Bd = Bd.reshape(n1 * q1, self.r2)
            if q1 == 1:
                Md = Bd / d[:, None]
            else:
                Md = np.einsum("jab,jbc->jac", np.linalg.inv(D),
                               Bd.reshape(n1, q1, self.r2)).reshape(n1 * q1, self.r2)
            S -= Bd.T @ Md
            LS = linalg.cholesky(S, lower=True, check_finite=False)
            logdet += 2.0 * float(np.log(np.diag(LS)).sum())
            return BlockedFactor(self, d, L1, Bd, Md, LS, logdet)
        B = sp.csr_matrix((bdata, self._b_indices, self._b_indptr), shape=(n1 * q1, self.r2))
        if q1 == 1:
            M = B.copy()
            M.data = M.data / d[self._b_row]
        else:
            Dinv = np.linalg.inv(D)
            Dinv_bd = sp.bsr_matrix((Dinv, np.arange(n1), np.arange(n1 + 1)),
                                    shape=(n1 * q1, n1 * q1))
            M = (Dinv_bd @ B).tocsr()
        S -= (B.T @ M).toarray()
        LS = linalg.cholesky(S, lower=True, check_finite=False)
        logdet += 2.0 * float(np.log(np.diag(LS)).sum())
        return BlockedFactor(self, d, L1, B, M, LS, logdet)


@dataclass
class BlockedFactor:
    """A factored by blocks: `solve(g)` gives A⁻¹g, `logdet` is log det A."""

    pattern: BlockedPattern
    d: np.ndarray | None          # q1 = 1: the diagonal of A₁₁
    L1: np.ndarray | None         # q1 > 1: lower Cholesky factors of the D_j (J × q1 × q1)
    B: sp.csr_matrix | np.ndarray | None      # A₁₂ (dense when mostly filled)
    M: sp.csr_matrix | np.ndarray | None      # A₁₁⁻¹A₁₂
    LS: np.ndarray | None         # lower Cholesky factor of S
    logdet: float

    def _solve11(self, g1: np.ndarray) -> np.ndarray:
        if self.d is not None:
            return g1 / self.d
        p = self.pattern
        G = g1.reshape(p.n1, p.q1, 1)
        y = np.linalg.solve(self.L1, G)
        x = np.linalg.solve(np.transpose(self.L1, (0, 2, 1)), y)
        return x.ravel()

    def solve(self, g: np.ndarray) -> np.ndarray:
        p = self.pattern
        g1 = g[p.start:p.stop]
        x = np.empty_like(g)
        if not p.r2:
            x[p.start:p.stop] = self._solve11(g1)
            return x
        g2 = np.concatenate([g[:p.start], g[p.stop:]])
        t = g2 - self.M.T @ g1
        x2 = linalg.cho_solve((self.LS, True), t, check_finite=False)
        x1 = self._solve11(g1) - self.M @ x2
        x[p.start:p.stop] = x1
        x[:p.start] = x2[:p.start]
        x[p.stop:] = x2[p.start:]
        return x


__all__ = ["BlockedPattern", "BlockedFactor", "MAX_DENSE"]
