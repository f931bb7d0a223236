"""Fast profiled deviance for models with one grouping factor, from per-group sufficient statistics.

With a single grouping factor, Z is block diagonal: group j contributes an n_j × q block Z_j
(all random-effect columns of that factor), and Λ_θ = I_G ⊗ T with T the q × q relative
covariance factor (block diagonal itself for ``||`` terms). Then A = Λ'Z'ZΛ + I is block
diagonal too, with q × q blocks

    A_j = T'(Z_j'Z_j)T + I,   B_j = T'Z_j'X_j,   c_j = T'Z_j'y_j,

so every quantity of `mlteach.lmm.deviance` is a sum over groups of small dense pieces:
log|L|² = Σ_j log det A_j, B'A⁻¹B = Σ_j B_j'A_j⁻¹B_j, and so on. The data enter only through
Z_j'Z_j, Z_j'X_j, Z_j'y_j, X'X, X'y and y'y, computed in one pass over the rows; each deviance
evaluation then costs O(G q³ + G q p²), independent of the number of rows. The same pieces give
the analytic gradient ∂d/∂θ (`SingleFactorDeviance.objective_and_gradient`, derived there) at
about the cost of the deviance.
"""

from __future__ import annotations

import numpy as np

from mlteach.errors import MlteachError
from mlteach.lmm.deviance import (PLS, cancels, profiled_deviance, residual_pwrss, rx_cancels,
                                  schur_solution, split_factor_blocks, with_residual_rx)
from mlteach.mixed.structure import ReStructure


def group_crossproducts(Z: list[np.ndarray], W: list[np.ndarray], codes: np.ndarray, G: int,
                        symmetric: bool = False) -> np.ndarray:
    """Σ_{i in group j} z_ia w_ik for every group j, shape (q, m, G), by weighted bincounts.

    `Z` and `W` are lists of columns (no stacked copy of a million-row matrix is made). With
    `symmetric` (W is Z), only k ≥ a is summed and the rest copied.
    """
    out = np.empty((len(Z), len(W), G))
    ones = [bool(za[0] == 1.0 and np.all(za == 1.0)) for za in Z]
    sizes = None
    for a, za in enumerate(Z):
        for k, wk in enumerate(W):
            if symmetric and k < a:
                out[a, k] = out[k, a]
            elif ones[a] and wk is za:
                if sizes is None:
                    sizes = np.bincount(codes, minlength=G).astype(float)
                out[a, k] = sizes
            else:
                out[a, k] = np.bincount(codes, weights=wk if ones[a] else za * wk, minlength=G)
    return out


# Small dense linear algebra on stacks of q × q matrices, with the group index *last*: entry
# (i, j) of all G matrices is one contiguous array, so each step is one vector operation over
# groups and the loops run over q only (q is the number of random terms, usually 1 to 3).


def batched_cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors L (q, q, G) of the SPD matrices A (q, q, G)."""
    q = A.shape[0]
    L = np.zeros_like(A)
    for j in range(q):
        d = A[j, j] - sum(L[j, k] * L[j, k] for k in range(j))
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, q):
            L[i, j] = (A[i, j] - sum(L[i, k] * L[j, k] for k in range(j))) / L[j, j]
    return L


def forward_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """L_j⁻¹B_j for L (q, q, G) lower triangular and B (q, G, m)."""
    q = L.shape[0]
    R = np.empty_like(B)
    for i in range(q):
        acc = B[i] - sum(L[i, k][:, None] * R[k] for k in range(i))
        R[i] = acc / L[i, i][:, None]
    return R


def backward_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """L_j'⁻¹B_j for L (q, q, G) lower triangular and B (q, G, m)."""
    q = L.shape[0]
    R = np.empty_like(B)
    for i in range(q - 1, -1, -1):
        acc = B[i] - sum(L[k, i][:, None] * R[k] for k in range(i + 1, q))
        R[i] = acc / L[i, i][:, None]
    return R


class SingleFactorDeviance:
    """PLS quantities for a model whose random-effect blocks all share one grouping factor."""

    has_gradient = True      # `objective_and_gradient` for every structure of one factor

    def __init__(self, X: np.ndarray, y: np.ndarray, structure: ReStructure):
        if not structure.single_factor:
            raise MlteachError("SingleFactorDeviance needs a single grouping factor.")
        self.structure = structure
        blocks = structure.blocks
        codes = blocks[0].groups.codes
        self.G = blocks[0].groups.n_groups
        Z = [b.Z[:, k] for b in blocks for k in range(b.q)]
        self.q = len(Z)
        self.n, self.p = X.shape
        self.ZtZ = group_crossproducts(Z, Z, codes, self.G, symmetric=True)   # (q, q, G)
        self._ZtZ_sum = self.ZtZ.sum(axis=2)                               # Σ_j M_j
        Xy = [X[:, k] for k in range(self.p)] + [y]
        self.ZtXy = group_crossproducts(Z, Xy, codes, self.G).transpose(0, 2, 1).copy()
        self.XtX = X.T @ X                                               # ZtXy: (q, G, p+1)
        self.Xty = X.T @ y
        self.yty = float(y @ y)
        self._X, self._y, self._Z, self._codes = X, y, Z, codes   # for `_residuals`
        self._offsets = np.cumsum([0] + [b.q for b in blocks])
        # position (row, column) in T of every element of θ, for the gradient
        rows, cols = [], []
        for b, lo in zip(blocks, self._offsets[:-1]):
            r, c = b.lower_tri()
            rows.append(r + lo)
            cols.append(c + lo)
        self._theta_rows = np.concatenate(rows)
        self._theta_cols = np.concatenate(cols)
        self._theta_flat = self._theta_rows * self.q + self._theta_cols
        self._diag = np.arange(self.q)

    def T(self, theta: np.ndarray) -> np.ndarray:
        """The q × q relative covariance factor of one group (block diagonal over blocks)."""
        T = np.zeros(self.q * self.q)
        T[self._theta_flat] = theta
        return T.reshape(self.q, self.q)

    def A(self, theta: np.ndarray) -> np.ndarray:
        """The blocks A_j = T'(Z_j'Z_j)T + I, shape (q, q, G)."""
        T = self.T(theta)
        return self._A(T, self._TtM(T))

    def _TtM(self, T: np.ndarray) -> np.ndarray:
        """T'M_j for every group, shape (q, q, G), as one matrix product."""
        q, G = self.q, self.G
        return (T.T @ self.ZtZ.reshape(q, q * G)).reshape(q, q, G)

    def _A(self, T: np.ndarray, TtM: np.ndarray) -> np.ndarray:
        A = np.einsum("adj,db->abj", TtM, T)
        A[self._diag, self._diag] += 1.0
        return A

    def _u(self, L: np.ndarray, R: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """û_j = L_j'⁻¹(L_j⁻¹c_j − L_j⁻¹B_j β̂), shape (q, G)."""
        p = self.p
        return backward_solve(L, (R[:, :, p] - R[:, :, :p] @ beta)[:, :, None])[:, :, 0]

    def _residuals(self, T: np.ndarray, u: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """r = y − Xβ̂ − ZΛû row by row (an O(n) pass, only when r² cancels)."""
        b = (T @ u)[:, self._codes]                                       # (q, n)
        r = self._y - self._X @ beta
        for k, zk in enumerate(self._Z):
            r = r - zk * b[k]
        return r

    def _solve(self, theta: np.ndarray):
        """The pieces every evaluation needs: T, T'M_j, L_j, R_j = L_j⁻¹[B_j c_j] and the PLS
        solution without û (`pls` and `objective_and_gradient` share them), and the residuals
        r = y − Xβ̂ − ZΛû when r² from the cross-products cancels (`deviance.cancels`; then r²
        is recomputed from them), else None."""
        theta = np.asarray(theta, dtype=float)
        T = self.T(theta)
        q, p, G = self.q, self.p, self.G
        TtM = self._TtM(T)
        L = batched_cholesky(self._A(T, TtM))
        Bc = (T.T @ self.ZtXy.reshape(q, -1)).reshape(q, G, p + 1)   # [T'Z_j'X_j, T'Z_j'y_j]
        R = forward_solve(L, Bc)
        logdet_L = 2.0 * float(np.log(L[self._diag, self._diag]).sum())
        flat = R.reshape(q * G, p + 1)
        gram = flat.T @ flat
        out = schur_solution(self.XtX, self.Xty, self.yty, gram[:p, :p], gram[:p, p],
                             float(gram[p, p]), logdet_L)
        resid = None
        if cancels(self.n, self.yty, out.pwrss):
            u = self._u(L, R, out.beta)
            resid = self._residuals(T, u, out.beta)
            out = PLS(out.logdet_L, out.logdet_RX, residual_pwrss(resid, u.ravel()), out.beta,
                      None, out.RXtRX)
        if rx_cancels(self.XtX, out.RXtRX):
            Ux = backward_solve(L, R[:, :, :p])                           # A_j⁻¹B_j, (q, G, p)
            bx = np.einsum("ab,bgp->agp", T, Ux)[:, self._codes]          # (q, n, p)
            E = self._X - sum(zk[:, None] * bx[k] for k, zk in enumerate(self._Z))
            Uf = Ux.reshape(q * G, p)
            out = with_residual_rx(out, E.T @ E + Uf.T @ Uf)
        return T, TtM, L, R, out, resid

    def pls(self, theta: np.ndarray, with_u: bool = True) -> PLS:
        """Solve the penalised least-squares problem at θ, all groups at once.

        The Cholesky factors L_j of A_j are computed element by element over arrays of length
        G, then R_j = L_j⁻¹[B_j c_j]; Σ_j R_j'R_j holds B'A⁻¹B, B'A⁻¹c and c'A⁻¹c.
        """
        _, _, L, R, out, _ = self._solve(theta)
        if not with_u:
            return out
        # û_j = L_j'⁻¹(L_j⁻¹c_j − L_j⁻¹B_j β̂), stored level by level like the sparse path
        u = self._u(L, R, out.beta)
        return PLS(out.logdet_L, out.logdet_RX, out.pwrss, out.beta, u.T.reshape(-1),
                   out.RXtRX)

    def objective(self, theta: np.ndarray, reml: bool) -> float:
        """The profiled deviance (REML criterion when `reml`) at θ."""
        return profiled_deviance(self.pls(theta, with_u=False), self.n, self.p, reml)

    def objective_and_gradient(self, theta: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
        """The profiled deviance at θ and its analytic gradient ∂d/∂θ (book §LMM, optimisation).

        Write V = ZΛΛ'Z' + I (so Var y = σ²V), e = y − Xβ̂ and C = R_X'R_X = X'V⁻¹X. By the
        matrix determinant lemma log|L|² = log|A| = log|V|, and r² = e'V⁻¹e (u eliminated), so

            d(θ)   = log|V| + n·(1 + log(2π r²/n))                            (ML)
            d_R(θ) = log|V| + log|C| + (n−p)·(1 + log(2π r²/(n−p)))          (REML).

        θ_k is the element (r, c) of T, so ∂Λ/∂θ_k = I_G ⊗ E_rc and ∂V = Z(∂Λ Λ' + Λ ∂Λ')Z'.
        With the standard results ∂log|V| = tr(V⁻¹∂V), ∂log|C| = −tr(C⁻¹X'V⁻¹ ∂V V⁻¹X), and
        ∂r² = −e'V⁻¹ ∂V V⁻¹e (β̂ minimises r², so its own change does not count), every term is
        tr(D_j F_j) with D_j = E_rc T' + T E_rc' and a symmetric q × q matrix F_j per group, and
        tr((E T' + T E')F) = 2(F T)_rc. Per group j, with M_j = Z_j'Z_j and the Cholesky factor
        A_j = L_j L_j' of `pls`, put P_j = L_j⁻¹T'M_j and v_j = L_j⁻¹(c_j − B_jβ̂) (= L_j'û_j):

            K = Σ_j Z_j'V_j⁻¹Z_j = Σ_j (M_j − P_j'P_j),
            s_j = Z_j'V_j⁻¹e_j = Z_j'e_j − P_j'v_j,          S = Σ_j s_j s_j',
            W_j = Z_j'V_j⁻¹X_j = Z_j'X_j − P_j'L_j⁻¹B_j,     Q = Σ_j W_j C⁻¹ W_j',

        and then, with ν = n (ML) or n − p (REML),

            ∂d/∂θ_k   = 2[(K − (ν/r²) S) T]_rc                 (ML)
            ∂d_R/∂θ_k = 2[(K − Q − (ν/r²) S) T]_rc             (REML).

        Every piece is a sum over groups of q × q products: the gradient costs about as much as
        the deviance itself. Where a diagonal element of T is 0, the column of the gradient
        matrix is 0 as well: the deviance depends on it through its square there.
        """
        q, p, G, n = self.q, self.p, self.G, self.n
        T, TtM, L, R, pls, resid = self._solve(theta)
        value = profiled_deviance(pls, n, p, reml)
        beta = pls.beta
        # P_j = L_j⁻¹ T'M_j, stored (q, G, q) as forward_solve wants
        P = forward_solve(L, np.ascontiguousarray(TtM.transpose(0, 2, 1)))
        Pf = P.reshape(q * G, q)
        K = self._ZtZ_sum - Pf.T @ Pf
        # U_j = Z_j'V_j⁻¹[X_j y_j] = Z_j'[X_j y_j] − P_j'L_j⁻¹[B_j c_j]; W_j = U_j[:, :p]
        U = self.ZtXy.copy()                                              # (q, G, p+1)
        for a in range(q):
            for b in range(q):
                U[b] -= P[a, :, b, None] * R[a]
        if resid is None:
            s = U[:, :, p] - U[:, :, :p] @ beta                           # s_j, (q, G)
        else:   # V_j⁻¹e_j is the residual r_j: s_j = Z_j'r_j without cancellation
            s = np.stack([np.bincount(self._codes, weights=zk * resid, minlength=G)
                          for zk in self._Z])
        nu = n - p if reml else n
        F = K - (nu / pls.pwrss) * (s @ s.T)
        if reml:
            W = U[:, :, :p]
            WCinv = W @ np.linalg.inv(pls.RXtRX)                          # p × p: small
            F = F - np.tensordot(WCinv, W, axes=([1, 2], [1, 2]))
        grad = 2.0 * (F @ T)[self._theta_rows, self._theta_cols]
        return value, grad

    def ranef_blocks(self, theta: np.ndarray, pls: PLS) -> list[np.ndarray]:
        """Per block, the (G, q_k) conditional modes b_j = T û_j."""
        b = pls.u.reshape(self.G, self.q) @ self.T(theta).T
        return [b[:, lo:hi] for lo, hi in zip(self._offsets[:-1], self._offsets[1:])]

    def condcov_factors(self, theta: np.ndarray, sigma2: float) -> dict[str, np.ndarray]:
        """The (G, q, q) conditional covariances σ² T A_j⁻¹ T' of each group's random effects
        (lme4's ``condVar``; all terms of the one factor, across ``||`` blocks too), keyed by
        the factor. With S_j = L_j⁻¹T', T A_j⁻¹ T' = S_j'S_j.
        """
        T = self.T(theta)
        L = batched_cholesky(self.A(theta))
        S = forward_solve(L, np.repeat(T.T[:, None, :], self.G, axis=1))  # (q, G, q)
        return {self.structure.factors[0]: sigma2 * np.einsum("kga,kgb->gab", S, S)}

    def condvar_blocks(self, theta: np.ndarray, sigma2: float) -> list[np.ndarray]:
        """Per block, the (G, q_k, q_k) conditional covariances: the diagonal sub-blocks of
        `condcov_factors`."""
        return split_factor_blocks(self.structure, self.condcov_factors(theta, sigma2))


__all__ = ["SingleFactorDeviance", "group_crossproducts", "batched_cholesky"]
