"""The LMM's penalised least squares for several grouping factors, by blocks of A (issue 15).

Design note. With A = Λ'Z'ZΛ + I (`mlteach.lmm.deviance`), put first the random-effect block
with most effects (the grouping factor with most levels, e.g. InstEval's 2,972 students) and
all other blocks after it:

    A = [ Λ₁'(Z₁'Z₁)Λ₁ + I    Λ₁'(Z₁'Z₂)Λ₂     ]  =  [ A₁₁  A₁₂ ]
        [ Λ₂'(Z₂'Z₁)Λ₁        Λ₂'(Z₂'Z₂)Λ₂ + I ]     [ A₂₁  A₂₂ ]

Z₁'Z₁ is block diagonal (one q₁ × q₁ block per level: a row has one level of factor 1), so A₁₁
is too, and A is factored by one block elimination (`mlteach.mixed.blocked.factor_blocks`):
the batched Cholesky factors of A₁₁'s blocks and the dense Cholesky factor of the Schur
complement S = A₂₂ − A₂₁A₁₁⁻¹A₁₂, whose size r₂ is the number of the other blocks' effects
(1,142 for InstEval's lecturers and departments). Then

    log det A = Σ_j log det (A₁₁)_j + log det S,

and A⁻¹Λ'Z'[X y] follows from the same two factors. This is MixedModels.jl's blocked Cholesky
(Bates et al., MixedModels.jl) with two blocks.

The cross-products Z'Z, Z'X, Z'y are formed once; an evaluation only scales them by Λ_θ
(for scalar terms, one number per effect) and factors: no sparse matrix is built, ordered or
analysed per evaluation, unlike the general path's SuperLU (`SparseDeviance`), which stays for
structures whose other blocks are too many for a dense S (r₂ > `MAX_DENSE`). A₁₂ is kept dense
when it is small or mostly filled (crossed designs), sparse otherwise (nested designs, where
each level of factor 1 meets one level of factor 2).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mlteach.lmm.deviance import SparseDeviance, profiled_deviance
from mlteach.mixed.blocked import (MAX_DENSE, BlockLayout, NestedFactor, factor_blocks,
                                   nested_parent)
from mlteach.mixed.structure import ReStructure

# A₁₂ dense when it has at most this many entries, or (up to DENSE_B_MAX) a quarter filled
DENSE_B_SMALL = 200_000
DENSE_B_MAX = 4_000_000


class BlockedDeviance(SparseDeviance):
    """PLS quantities for several grouping factors by the block elimination of the module notes.

    Inherits the cross-products, Λ_θ and the once-per-fit pieces (conditional modes and
    covariances) from `SparseDeviance`; replaces its per-evaluation sparse LU.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, structure: ReStructure, first: int):
        super().__init__(X, y, structure)
        blocks = structure.blocks
        offsets = np.cumsum([0] + [b.n_effects for b in blocks])
        b1 = blocks[first]
        start, n1, q1 = int(offsets[first]), b1.groups.n_groups, b1.q
        stop = start + n1 * q1
        self.layout = BlockLayout(start=start, stop=stop, n1=n1, q1=q1, r2=self.q - n1 * q1)
        self.first = first
        # block 2's pieces, in the order of u without block 1: (block, start within block 2)
        self.others, pos = [], 0
        for k, b in enumerate(blocks):
            if k != first:
                self.others.append((k, pos))
                pos += b.n_effects
        self.scalar = all(b.q == 1 for b in blocks)
        # Z₁'Z₁ as its (n1, q1, q1) diagonal blocks
        a, c = np.divmod(np.arange(q1 * q1), q1)
        keys = (b1.groups.codes[:, None] * (q1 * q1) + np.arange(q1 * q1)[None, :]).ravel()
        self.D_raw = np.bincount(keys, weights=(b1.Z[:, a] * b1.Z[:, c]).ravel(),
                                 minlength=n1 * q1 * q1).reshape(n1, q1, q1)
        if not self.scalar:
            # Λ₂ as a sparse matrix: its non-zeros' rows, columns and θ positions, once
            r, cc, ind = structure.lambda_pattern()
            keep = (r < start) | (r >= stop)
            shift = lambda i: np.where(i < start, i, i - n1 * q1)  # noqa: E731
            self._lam2 = (shift(r[keep]), shift(cc[keep]), ind[keep])
        idx2 = np.r_[0:start, stop:self.q]
        ZtZ = self.ZtZ.tocsr()
        rows1 = ZtZ[start:stop]
        B = rows1[:, idx2].tocsr()
        B.sort_indices()
        self.ZtXy = np.column_stack([self.ZtX, self.Zty])
        self.parent = nested_parent(b1.groups.codes, n1, blocks[self.others[0][0]].groups.codes
                                    ) if len(self.others) == 1 else None
        if self.parent is not None:
            # nested: B_j (q1 × q2) per level j at column block p(j); A₂₂ by its own blocks
            b2 = blocks[self.others[0][0]]
            q2, G2 = b2.q, b2.groups.n_groups
            rows, cols = np.repeat(np.arange(B.shape[0]), np.diff(B.indptr)), B.indices
            self.Bn_raw = np.zeros((n1, q1, q2))
            self.Bn_raw[rows // q1, rows % q1, cols % q2] = B.data
            a2, c2 = np.divmod(np.arange(q2 * q2), q2)
            keys = (b2.groups.codes[:, None] * (q2 * q2) + np.arange(q2 * q2)[None, :]).ravel()
            self.A22n_raw = np.bincount(keys, weights=(b2.Z[:, a2] * b2.Z[:, c2]).ravel(),
                                        minlength=G2 * q2 * q2).reshape(G2, q2, q2)
            self.gather = sp.csr_matrix((np.ones(n1), (self.parent, np.arange(n1))),
                                        shape=(G2, n1))
            self.dense_b = False
            return
        size = n1 * q1 * self.layout.r2
        self.dense_b = size <= DENSE_B_SMALL or (size <= DENSE_B_MAX and B.nnz > 0.25 * size)
        self.B_raw = B.toarray() if self.dense_b else B
        self.A22_raw = ZtZ[idx2][:, idx2].toarray()

    @classmethod
    def choose(cls, X: np.ndarray, y: np.ndarray, structure: ReStructure
               ) -> "BlockedDeviance | None":
        """The evaluator with the block of most effects first, or None when the others have
        more than `MAX_DENSE` effects and are not a factor that the first is nested in (the
        general sparse path then)."""
        sizes = [b.n_effects for b in structure.blocks]
        first = int(np.argmax(sizes))
        blocks = structure.blocks
        nested = len(blocks) == 2 and nested_parent(
            blocks[first].groups.codes, blocks[first].groups.n_groups,
            blocks[1 - first].groups.codes) is not None
        if not nested and structure.n_effects - sizes[first] > MAX_DENSE:
            return None
        return cls(X, y, structure, first)

    # Λ' G and H Λ by blocks, for dense G (q × m) and H (m × q)

    def _lambda_scalars(self, theta: np.ndarray) -> np.ndarray:
        """Scalar terms only: the diagonal of Λ_θ, one θ per effect."""
        return np.concatenate([np.full(b.n_effects, theta[b.theta_slice.start])
                               for b in self.structure.blocks])

    def _lt_times(self, Ts: list[np.ndarray], G: np.ndarray) -> np.ndarray:
        """Λ'G: level j of block k contributes T_k' G_j."""
        out = np.empty_like(G)
        pos = 0
        for b, T in zip(self.structure.blocks, Ts):
            seg = G[pos:pos + b.n_effects].reshape(b.groups.n_groups, b.q, -1)
            out[pos:pos + b.n_effects] = np.einsum("ab,jam->jbm", T, seg).reshape(b.n_effects, -1)
            pos += b.n_effects
        return out

    def _times_lambda2(self, Ts: list[np.ndarray], H: np.ndarray) -> np.ndarray:
        """H Λ₂ for H (m × r₂): level j of each other block k contributes H_j T_k."""
        out = np.empty_like(H)
        for k, pos in self.others:
            b = self.structure.blocks[k]
            seg = H[:, pos:pos + b.n_effects].reshape(H.shape[0], b.groups.n_groups, b.q)
            out[:, pos:pos + b.n_effects] = np.einsum("mja,ab->mjb", seg, Ts[k]).reshape(
                H.shape[0], b.n_effects)
        return out

    def _pieces(self, theta: np.ndarray):
        """A₁₁'s blocks, A₁₂, A₂₂ and Λ'Z'[X y] at θ."""
        lay = self.layout
        if self.scalar:
            lam = self._lambda_scalars(theta)
            t1 = lam[lay.start]
            lam2 = np.concatenate([lam[:lay.start], lam[lay.stop:]])
            D = self.D_raw * (t1 * t1)
            if self.dense_b:
                B = self.B_raw * (t1 * lam2)[None, :]
            else:
                B = self.B_raw.copy()
                B.data = B.data * (t1 * lam2[B.indices])
            A22 = self.A22_raw * lam2[:, None] * lam2[None, :]
            Bc = self.ZtXy * lam[:, None]
        else:
            Ts = self.structure.factors_T(theta)
            T1 = Ts[self.first]
            D = np.einsum("ab,jac,cd->jbd", T1, self.D_raw, T1)
            r, c, ind = self._lam2
            Lam2 = sp.csr_matrix((theta[ind], (r, c)), shape=(lay.r2, lay.r2))
            if self.dense_b:
                B = np.einsum("ab,jam->jbm", T1, self.B_raw.reshape(lay.n1, lay.q1, -1))
                B = self._times_lambda2(Ts, B.reshape(lay.n1 * lay.q1, -1))
            else:
                Lam1 = sp.bsr_matrix((np.broadcast_to(T1, (lay.n1,) + T1.shape).copy(),
                                      np.arange(lay.n1), np.arange(lay.n1 + 1)),
                                     shape=(lay.n1 * lay.q1,) * 2)
                B = (Lam1.T @ self.B_raw @ Lam2).tocsr()
            A22 = np.asarray(Lam2.T @ np.asarray(Lam2.T @ self.A22_raw).T).T
            Bc = self._lt_times(Ts, self.ZtXy)
        D[:, np.arange(lay.q1), np.arange(lay.q1)] += 1.0
        A22[np.diag_indices(lay.r2)] += 1.0
        return D, B, A22, Bc

    def solve_A(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """log det A, Λ'Z'[X y] and A⁻¹Λ'Z'[X y] at θ, by block elimination."""
        return self._solve(np.asarray(theta, dtype=float))[:3]

    def _nested_factor(self, theta: np.ndarray) -> tuple[NestedFactor, np.ndarray]:
        """Nested factors: the per-level pieces scaled by T₁, T₂ and factored."""
        Ts = self.structure.factors_T(theta)
        T1, T2 = Ts[self.first], Ts[self.others[0][0]]
        D = np.einsum("ab,jac,cd->jbd", T1, self.D_raw, T1)
        D[:, np.arange(self.layout.q1), np.arange(self.layout.q1)] += 1.0
        Bn = np.einsum("ab,jac,cd->jbd", T1, self.Bn_raw, T2)
        A22 = np.einsum("ab,jac,cd->jbd", T2, self.A22n_raw, T2)
        A22[:, np.arange(T2.shape[0]), np.arange(T2.shape[0])] += 1.0
        factor = NestedFactor(self.layout, self.parent, self.gather, D, Bn, A22)
        return factor, self._lt_times(Ts, self.ZtXy)

    def _solve(self, theta: np.ndarray):
        if self.parent is not None:
            factor, Bc = self._nested_factor(theta)
        else:
            D, B, A22, Bc = self._pieces(theta)
            factor = factor_blocks(self.layout, D, B, A22)
        return factor.logdet, Bc, factor.solve(Bc), factor

    def condcov_factors(self, theta: np.ndarray, sigma2: float) -> dict[str, np.ndarray]:
        """Per grouping factor, σ² T_f (A⁻¹)_jj T_f' (lme4's ``condVar``); nested factors
        read the levels' blocks of A⁻¹ off their factorisation."""
        if self.parent is None:
            return super().condcov_factors(theta, sigma2)
        theta = np.asarray(theta, dtype=float)
        factor, _ = self._nested_factor(theta)
        inv1, inv2 = factor.level_inverse_blocks()
        Ts = self.structure.factors_T(theta)
        out = {}
        for k, inv in ((self.first, inv1), (self.others[0][0], inv2)):
            T = Ts[k]
            out[self.structure.blocks[k].factor] = sigma2 * T[None] @ inv @ T.T[None]
        return out

    has_gradient = True

    def objective_and_gradient(self, theta: np.ndarray, reml: bool
                               ) -> tuple[float, np.ndarray]:
        """The profiled deviance and its gradient in θ.

        With Λ'Z'ZΛ = A − I, Λ'Z'Z = (A − I)Λ⁻¹ wherever Λ is invertible, so for the element
        θ_t = (T_k)_rc, whose ∂Λ/∂θ_t = Λ_t puts E_rc in each level's block of term k,

            ∂ log det A/∂θ_t = 2 tr(A⁻¹Λ'Z'Z Λ_t) = 2 tr((I − A⁻¹)Λ⁻¹Λ_t)
                             = 2 [(G_k I − Σ_j (A⁻¹)_jj) T_k⁻¹]_cr,

        Σ_j over the G_k levels' q_k × q_k diagonal blocks of A⁻¹ (`summed_inverse_blocks`);
        for a scalar term 2(G_k − Σ_j (A⁻¹)_jj)/θ_k. Under REML the same holds for the full
        system Ω = [[A, ΛZ'X], [X'ZΛ, X'X]] (log det Ω = log|L|² + log|R_X|²), whose
        (Ω⁻¹)_uu = A⁻¹ + A⁻¹B(R_X'R_X)⁻¹B'A⁻¹ adds Σ_j V_j V_j' with V = A⁻¹B R_X⁻¹. By the
        envelope theorem the minimised r² moves as ∂r²/∂θ_t = −2 Σ_j (Z'e)_jr û_jc, with
        e = y − Xβ̂ − ZΛû. At θ_k = 0 (a scalar term at its bound) the log-determinant term is
        0 (A depends on θ_k through θ_k²); a singular T_k of a vector term falls back to
        central differences of the deviance.
        """
        theta = np.asarray(theta, dtype=float)
        logdet_L, Bc, W, factor = self._solve(theta)
        pls = self.pls_from(theta, logdet_L, Bc, W)
        d = self.n - self.p if reml else self.n
        value = profiled_deviance(pls, self.n, self.p, reml)
        Ts = self.structure.factors_T(theta)
        if any(b.q > 1 and np.any(np.diag(T) == 0.0)
               for b, T in zip(self.structure.blocks, Ts)):
            return value, self._difference_gradient(theta, reml)
        others = [(pos2, self.structure.blocks[k].groups.n_groups, self.structure.blocks[k].q)
                  for k, pos2 in self.others]
        summed_blocks = factor.summed_inverse_blocks(others)
        summed_of = {self.first: summed_blocks[0]}
        summed_of.update({k: m for (k, _), m in zip(self.others, summed_blocks[1:])})
        V = None
        if reml:
            R = np.linalg.cholesky(pls.RXtRX)
            V = np.linalg.solve(R, W[:, :-1].T).T               # A⁻¹B R_X⁻ᵀ, (q, p)
        Zte = self.Zty - self.ZtX @ pls.beta - self.ZtZ @ self._lambda_times(Ts, pls.u)
        grad = np.zeros_like(theta)
        pos = 0
        for k, (b, T) in enumerate(zip(self.structure.blocks, Ts)):
            G, q = b.groups.n_groups, b.q
            summed = summed_of[k]
            if V is not None:
                Vk = V[pos:pos + b.n_effects].reshape(G, q, -1)
                summed = summed + np.einsum("jam,jbm->ab", Vk, Vk)
            ze = Zte[pos:pos + b.n_effects].reshape(G, q)
            uk = pls.u[pos:pos + b.n_effects].reshape(G, q)
            dr2 = -2.0 * ze.T @ uk                               # [r, c]: Σ_j ze_jr u_jc
            r_idx, c_idx = b.lower_tri()
            if q == 1 and T[0, 0] == 0.0:
                dlogdet = np.zeros((1, 1))
            else:
                dlogdet = 2.0 * (G * np.eye(q) - summed) @ np.linalg.inv(T)   # [c, r]
            grad[b.theta_slice] = dlogdet[c_idx, r_idx] + d * dr2[r_idx, c_idx] / pls.pwrss
            pos += b.n_effects
        return value, grad

    def _lambda_times(self, Ts: list[np.ndarray], u: np.ndarray) -> np.ndarray:
        """Λu: level j of block k gives T_k u_j."""
        out = np.empty_like(u)
        pos = 0
        for b, T in zip(self.structure.blocks, Ts):
            seg = u[pos:pos + b.n_effects].reshape(b.groups.n_groups, b.q)
            out[pos:pos + b.n_effects] = (seg @ T.T).ravel()
            pos += b.n_effects
        return out

    def _difference_gradient(self, theta: np.ndarray, reml: bool) -> np.ndarray:
        """Central differences (forward at a bound) of the deviance: where T_k is singular."""
        lower = self.structure.theta_lower()
        grad = np.empty_like(theta)
        for t in range(theta.size):
            h = 1e-6 * max(1.0, abs(theta[t]))
            e = np.zeros_like(theta)
            e[t] = h
            if theta[t] - h < lower[t]:
                grad[t] = (self.objective(theta + e, reml) - self.objective(theta, reml)) / h
            else:
                grad[t] = (self.objective(theta + e, reml)
                           - self.objective(theta - e, reml)) / (2 * h)
        return grad


__all__ = ["BlockedDeviance"]
