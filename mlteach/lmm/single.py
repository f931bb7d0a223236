"""Fast profiled deviance for models with one grouping factor, from per-group sufficient statistics.

With a single grouping factor, Z is block diagonal: group j contributes an n_j × q block Z_j
(all random-effect columns of that factor), and Λ_θ = I_G ⊗ T with T the q × q relative
covariance factor (block diagonal itself for ``||`` terms). Then A = Λ'Z'ZΛ + I is block
diagonal too, with q × q blocks

    A_j = T'(Z_j'Z_j)T + I,   B_j = T'Z_j'X_j,   c_j = T'Z_j'y_j,

so every quantity of `mlteach.lmm.deviance` is a sum over groups of small dense pieces:
log|L|² = Σ_j log det A_j, B'A⁻¹B = Σ_j B_j'A_j⁻¹B_j, and so on. The data enter only through
Z_j'Z_j, Z_j'X_j, Z_j'y_j, X'X, X'y and y'y, computed in one pass over the rows; each deviance
evaluation then costs O(G q³ + G q p²), independent of the number of rows.
"""

from __future__ import annotations

import numpy as np

from mlteach.lmm.deviance import PLS, profiled_deviance, schur_solution
from mlteach.lmm.structure import ReStructure


def group_crossproducts(Z: np.ndarray, W: np.ndarray, codes: np.ndarray, G: int) -> np.ndarray:
    """Σ_{i in group j} z_i w_i' for every group j, shape (G, q, m), by weighted bincounts."""
    n, q = Z.shape
    m = W.shape[1]
    out = np.empty((G, q, m))
    for a in range(q):
        za = Z[:, a]
        ones = np.all(za == 1.0)
        for k in range(m):
            weights = W[:, k] if ones else za * W[:, k]
            out[:, a, k] = np.bincount(codes, weights=weights, minlength=G)
    return out


class SingleFactorDeviance:
    """PLS quantities for a model whose random-effect blocks all share one grouping factor."""

    def __init__(self, X: np.ndarray, y: np.ndarray, structure: ReStructure):
        if not structure.single_factor:
            raise ValueError("SingleFactorDeviance needs a single grouping factor.")
        self.structure = structure
        blocks = structure.blocks
        codes = blocks[0].groups.codes
        self.G = blocks[0].groups.n_groups
        Z = np.column_stack([b.Z for b in blocks])
        self.q = Z.shape[1]
        self.n, self.p = X.shape
        ZtZ = group_crossproducts(Z, Z, codes, self.G)
        self.ZtZ = 0.5 * (ZtZ + ZtZ.transpose(0, 2, 1))
        ZtXy = group_crossproducts(Z, np.column_stack([X, y]), codes, self.G)
        self.ZtX, self.Zty = ZtXy[:, :, :-1], ZtXy[:, :, -1]
        self.XtX = X.T @ X
        self.Xty = X.T @ y
        self.yty = float(y @ y)
        self._offsets = np.cumsum([0] + [b.q for b in blocks])

    def T(self, theta: np.ndarray) -> np.ndarray:
        """The q × q relative covariance factor of one group (block diagonal over blocks)."""
        T = np.zeros((self.q, self.q))
        for (lo, hi), Tk in zip(zip(self._offsets[:-1], self._offsets[1:]),
                                self.structure.factors_T(theta)):
            T[lo:hi, lo:hi] = Tk
        return T

    def pls(self, theta: np.ndarray) -> PLS:
        """Solve the penalised least-squares problem at θ, group by group, vectorised."""
        theta = np.asarray(theta, dtype=float)
        T = self.T(theta)
        if self.q == 1:
            t = T[0, 0]
            A = t * t * self.ZtZ[:, 0, 0] + 1.0                   # (G,)
            B = t * self.ZtX[:, 0, :]                              # (G, p)
            c = t * self.Zty[:, 0]                                 # (G,)
            logdet_L = np.log(A).sum()
            Ainv_B, Ainv_c = B / A[:, None], c / A
            BtAinvB = B.T @ Ainv_B
            BtAinvc = B.T @ Ainv_c
            ctAinvc = c @ Ainv_c
            pls = schur_solution(self.XtX, self.Xty, self.yty, BtAinvB, BtAinvc, ctAinvc,
                                 logdet_L, Ainv_c, Ainv_B)
            return pls
        A = T.T[None] @ self.ZtZ @ T[None] + np.eye(self.q)[None]   # (G, q, q)
        B = T.T[None] @ self.ZtX                                    # (G, q, p)
        c = self.Zty @ T                                            # (G, q) = (T'c_j)'
        chol = np.linalg.cholesky(A)
        logdet_L = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
        W = np.linalg.solve(A, np.concatenate([B, c[:, :, None]], axis=2))
        Ainv_B, Ainv_c = W[:, :, :-1], W[:, :, -1]
        BtAinvB = np.einsum("gqi,gqj->ij", B, Ainv_B)
        BtAinvc = np.einsum("gqi,gq->i", B, Ainv_c)
        ctAinvc = float(np.einsum("gq,gq->", c, Ainv_c))
        pls = schur_solution(self.XtX, self.Xty, self.yty, BtAinvB, BtAinvc, ctAinvc,
                             logdet_L, Ainv_c.reshape(-1), Ainv_B.reshape(-1, self.p))
        return pls

    def objective(self, theta: np.ndarray, reml: bool) -> float:
        """The profiled deviance (REML criterion when `reml`) at θ."""
        return profiled_deviance(self.pls(theta), self.n, self.p, reml)

    def ranef_blocks(self, theta: np.ndarray, pls: PLS) -> list[np.ndarray]:
        """Per block, the (G, q_k) conditional modes b_j = T û_j."""
        b = pls.u.reshape(self.G, self.q) @ self.T(theta).T
        return [b[:, lo:hi] for lo, hi in zip(self._offsets[:-1], self._offsets[1:])]

    def condvar_blocks(self, theta: np.ndarray, sigma2: float) -> list[np.ndarray]:
        """Per block, the (G, q_k, q_k) conditional covariances σ² T A_j⁻¹ T' (lme4's condVar)."""
        T = self.T(theta)
        A = T.T[None] @ self.ZtZ @ T[None] + np.eye(self.q)[None]
        V = sigma2 * T[None] @ np.linalg.inv(A) @ T.T[None]
        return [V[:, lo:hi, lo:hi] for lo, hi in zip(self._offsets[:-1], self._offsets[1:])]


__all__ = ["SingleFactorDeviance", "group_crossproducts"]
