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
from scipy.linalg import lapack

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
        if not self.r2:
            return factor_blocks(self, D, None, None)
        V2 = V[:, self.pos2]
        bvals = (Vw1[:, :, None] * V2[:, None, :]).ravel()
        bdata = np.bincount(self._b_pos, weights=bvals, minlength=self._b_nnz)
        Vw2 = V2 * w[:, None]
        A22 = np.bincount(self._a22_key, weights=(Vw2[:, :, None] * V2[:, None, :]).ravel(),
                          minlength=self.r2 * self.r2).reshape(self.r2, self.r2)
        A22[np.diag_indices(self.r2)] += 1.0
        if self._dense_b:
            B = np.zeros(n1 * q1 * self.r2)
            B[self._b_flat] = bdata
            B = B.reshape(n1 * q1, self.r2)
        else:
            B = sp.csr_matrix((bdata, self._b_indices, self._b_indptr),
                              shape=(n1 * q1, self.r2))
        return factor_blocks(self, D, B, A22)


def factor_blocks(layout: "BlockedPattern | BlockLayout", D: np.ndarray,
                  B: "sp.csr_matrix | np.ndarray | None", A22: np.ndarray | None
                  ) -> "BlockedFactor":
    """Factor A = [[A₁₁, B], [B', A₂₂]] from its pieces: the (J, q1, q1) blocks D_j of A₁₁,
    B = A₁₂ (dense or CSR) and A₂₂ dense (None, None for one grouping factor). Overwrites
    A₂₂ with the Schur complement S = A₂₂ − B'A₁₁⁻¹B before factoring it."""
    q1, n1 = layout.q1, layout.n1
    if q1 == 1:
        d, L1 = D[:, 0, 0], None
        logdet = float(np.log(d).sum())
    else:
        d, L1 = None, np.linalg.cholesky(D)                          # batched, lower
        logdet = 2.0 * float(np.log(np.diagonal(L1, axis1=1, axis2=2)).sum())
    if B is None:
        return BlockedFactor(layout, d, L1, None, None, None, logdet)
    if isinstance(B, np.ndarray):
        if q1 == 1:
            M = B / d[:, None]
        else:
            M = np.einsum("jab,jbc->jac", np.linalg.inv(D),
                          B.reshape(n1, q1, -1)).reshape(n1 * q1, -1)
        A22 -= B.T @ M
    else:
        if q1 == 1:
            M = B.copy()
            M.data = M.data / np.repeat(d, np.diff(B.indptr))
        else:
            Dinv_bd = sp.bsr_matrix((np.linalg.inv(D), np.arange(n1), np.arange(n1 + 1)),
                                    shape=(n1 * q1, n1 * q1))
            M = (Dinv_bd @ B).tocsr()
        A22 -= (B.T @ M).toarray()
    LS = linalg.cholesky(A22, lower=True, check_finite=False)
    logdet += 2.0 * float(np.log(np.diag(LS)).sum())
    return BlockedFactor(layout, d, L1, B, M, LS, logdet)


@dataclass(frozen=True)
class BlockLayout:
    """Where block 1 sits in u: effects [start, stop), n1 levels of q1 effects, r2 others."""

    start: int
    stop: int
    n1: int
    q1: int
    r2: int


@dataclass
class BlockedFactor:
    """A factored by blocks: `solve(g)` gives A⁻¹g, `logdet` is log det A."""

    pattern: "BlockedPattern | BlockLayout"
    d: np.ndarray | None          # q1 = 1: the diagonal of A₁₁
    L1: np.ndarray | None         # q1 > 1: lower Cholesky factors of the D_j (J × q1 × q1)
    B: sp.csr_matrix | np.ndarray | None      # A₁₂ (dense when mostly filled)
    M: sp.csr_matrix | np.ndarray | None      # A₁₁⁻¹A₁₂
    LS: np.ndarray | None         # lower Cholesky factor of S
    logdet: float

    def _solve11(self, g1: np.ndarray) -> np.ndarray:
        if self.d is not None:
            return g1 / (self.d if g1.ndim == 1 else self.d[:, None])
        p = self.pattern
        G = g1.reshape(p.n1, p.q1, -1)
        y = np.linalg.solve(self.L1, G)
        x = np.linalg.solve(np.transpose(self.L1, (0, 2, 1)), y)
        return x.reshape(g1.shape)

    def summed_inverse_blocks(self, others: list[tuple[int, int, int]]) -> list[np.ndarray]:
        """What the LMM's gradient needs of A⁻¹: for block 1 and for each other block (given
        as its start in block 2, levels G and effects per level q), the levels' q × q
        diagonal blocks of A⁻¹ summed over the levels. With M = A₁₁⁻¹A₁₂,
        (A⁻¹)₁₁ = A₁₁⁻¹ + M S⁻¹M', so entry (a, b) of block 1's sum is that of Σ_j (A₁₁)_j⁻¹
        plus Σ (M_a'M_b) ∘ S⁻¹ (M_a: the rows of M for effect a): r₂ × r₂ products M_a'M_b,
        never an n × r₂ one; the others' come from (A⁻¹)₂₂ = S⁻¹.
        """
        p = self.pattern
        if self.d is not None:
            summed = np.array([[np.sum(1.0 / self.d)]])
        else:
            Linv = np.linalg.inv(self.L1)                       # A₁₁⁻¹ = L⁻ᵀL⁻¹ per level
            summed = np.einsum("jca,jcb->ab", Linv, Linv)
        if not p.r2:
            return [summed]
        # dpotri writes S⁻¹'s lower triangle and leaves LS's zero upper triangle as it was
        S_low, info = lapack.dpotri(self.LS, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("the Schur complement S is singular")
        diagS = np.diag(S_low)
        rows = [self.M[a::p.q1] if p.q1 > 1 else self.M for a in range(p.q1)]
        for a in range(p.q1):
            for b in range(a + 1):
                K = rows[a].T @ rows[b]
                K = K.toarray() if sp.issparse(K) else np.asarray(K)
                if a != b:
                    K = 0.5 * (K + K.T)                         # S⁻¹ symmetric: its sym. part
                # Σ K ∘ S⁻¹ for symmetric K from the lower triangle (the transposed view has
                # LAPACK's layout: no copy)
                value = 2.0 * float(np.vdot(K, S_low.T)) - float(np.diag(K) @ diagS)
                summed[a, b] += value
                if a != b:
                    summed[b, a] += value
        out = [summed]
        for pos, G, q in others:
            idx = pos + np.arange(G)[:, None] * q + np.arange(q)[None, :]      # (G, q)
            hi = np.maximum.outer(np.arange(q), np.arange(q))
            lo = np.minimum.outer(np.arange(q), np.arange(q))
            out.append(S_low[idx[:, hi], idx[:, lo]].sum(axis=0))
        return out

    def solve(self, g: np.ndarray) -> np.ndarray:
        """A⁻¹g for a vector g (q,) or a matrix g (q, m)."""
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


def nested_parent(codes1: np.ndarray, n1: int, codes2: np.ndarray) -> np.ndarray | None:
    """The level of factor 2 that each level of factor 1 lies in, or None when some level of
    factor 1 meets several levels of factor 2 (not nested)."""
    parent = np.zeros(n1, dtype=np.int64)
    parent[codes1] = codes2
    return parent if np.array_equal(parent[codes1], codes2) else None


class NestedFactor:
    """A = [[A₁₁, A₁₂], [A₂₁, A₂₂]] factored when factor 1 is nested in factor 2 (classes in
    schools): each level j of factor 1 meets one level p(j) of factor 2, so A₁₂ has one
    q₁ × q₂ block B_j per level j (at column block p(j)), A₂₂ is block diagonal and so is
    the Schur complement, one q₂ × q₂ block per level g of factor 2:

        S_g = (A₂₂)_g − Σ_{j: p(j) = g} B_j' D_j⁻¹ B_j.

    Everything is a batched operation on small blocks: no dense r₂ × r₂ matrix at all.
    """

    def __init__(self, layout: "BlockLayout", parent: np.ndarray, gather: sp.csr_matrix,
                 D: np.ndarray, Bn: np.ndarray, A22: np.ndarray):
        self.layout, self.parent, self.gather = layout, parent, gather
        self.L1 = np.linalg.cholesky(D)                               # (n1, q1, q1)
        Dinv = np.linalg.inv(D)
        self.M = Dinv @ Bn                                            # (n1, q1, q2)
        self.Dinv = Dinv
        G2, q2 = A22.shape[0], A22.shape[1]
        BtM = np.einsum("jab,jac->jbc", Bn, self.M).reshape(len(parent), -1)
        S = A22 - np.asarray(gather @ BtM).reshape(G2, q2, q2)
        self.LS = np.linalg.cholesky(S)
        self.Sinv = np.linalg.inv(S)
        self.logdet = 2.0 * float(np.log(np.diagonal(self.L1, axis1=1, axis2=2)).sum()
                                  + np.log(np.diagonal(self.LS, axis1=1, axis2=2)).sum())

    def solve(self, g: np.ndarray) -> np.ndarray:
        """A⁻¹g for a vector g (q,) or a matrix g (q, m)."""
        lay = self.layout
        G2, q2 = self.Sinv.shape[0], self.Sinv.shape[1]
        g1 = g[lay.start:lay.stop].reshape(lay.n1, lay.q1, -1)
        g2 = np.concatenate([g[:lay.start], g[lay.stop:]]).reshape(G2, q2, -1)
        m = g1.shape[2]
        t = g2 - np.asarray(self.gather @ np.einsum("jab,jam->jbm", self.M, g1).reshape(
            lay.n1, -1)).reshape(G2, q2, m)
        x2 = self.Sinv @ t
        x1 = self.Dinv @ g1 - self.M @ x2[self.parent]
        x = np.empty_like(g, dtype=float)
        x[lay.start:lay.stop] = x1.reshape(g[lay.start:lay.stop].shape)
        x2 = x2.reshape((-1,) + g.shape[1:])
        x[:lay.start], x[lay.stop:] = x2[:lay.start], x2[lay.start:]
        return x

    def level_inverse_blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """The levels' diagonal blocks of A⁻¹: D_j⁻¹ + M_j S_p(j)⁻¹ M_j' and S_g⁻¹."""
        M = self.M
        inner = np.einsum("jab,jbc,jdc->jad", M, self.Sinv[self.parent], M)
        return self.Dinv + inner, self.Sinv

    def summed_inverse_blocks(self, others: list[tuple[int, int, int]]) -> list[np.ndarray]:
        """Σ_j of the levels' diagonal blocks of A⁻¹, for block 1 and the (one) other."""
        one, two = self.level_inverse_blocks()
        return [one.sum(axis=0), two.sum(axis=0)]


__all__ = ["BlockedPattern", "BlockedFactor", "BlockLayout", "NestedFactor", "factor_blocks",
           "nested_parent", "MAX_DENSE"]
