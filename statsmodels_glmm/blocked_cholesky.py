"""Blocked Cholesky factor of the penalized weighted cross-product matrix.

The matrix is ``Λ'Z'WZΛ + I`` (random effects only, used when β is fixed),
optionally bordered by the unpenalized fixed-effects block ``[Λ'Z'WX; X'WX]``
(joint PIRLS, nAGQ=0). Following MixedModels.jl rather than a general sparse
Cholesky:

- the random-effects terms come sorted by decreasing number of levels, so the
  first diagonal block is block diagonal (one ``S x S`` block per level) and
  never fills in;
- a later diagonal block stays block diagonal when every earlier factor is
  nested in its factor (detected structurally in :mod:`re_terms`); otherwise
  it is stored dense and factored by LAPACK;
- off-diagonal blocks are stored dense;
- the sparsity pattern of each ``Z_j`` is built once; an evaluation only
  replaces its values (the rows of ``Z Λ`` scaled by the square-root weights).

No CHOLMOD, no fill-reducing permutation and no q x q matrix for the first term.
"""

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

__all__ = ["BlockDiagonalFactor", "DenseFactor", "BlockedCholesky", "PenalizedSystem"]


class BlockDiagonalFactor:
    """Cholesky factor of a block-diagonal matrix stored as (ell, S, S)."""

    def __init__(self, blocks):
        self.size = blocks.shape[1]
        if self.size == 1:
            self.L = np.sqrt(blocks)
        else:
            self.L = np.linalg.cholesky(blocks)
        self._inv = None

    @property
    def inverse(self):
        """Per-level inverses of the lower-triangular blocks."""
        if self._inv is None:
            self._inv = 1.0 / self.L if self.size == 1 else np.linalg.inv(self.L)
        return self._inv

    def logdet2(self):
        """log det(L L') = 2 Σ log diag L."""
        return 2.0 * float(np.sum(np.log(np.diagonal(self.L, axis1=1, axis2=2))))

    def diagonal(self):
        return np.diagonal(self.L, axis1=1, axis2=2).ravel()

    def _apply(self, mat, v):
        ell, s = mat.shape[0], self.size
        if v.ndim == 1:
            return np.einsum("lij,lj->li", mat, v.reshape(ell, s)).ravel()
        out = np.einsum("lij,ljk->lik", mat, v.reshape(ell, s, -1))
        return out.reshape(ell * s, -1)

    def solve(self, v):
        """L⁻¹ v."""
        return self._apply(self.inverse, v)

    def solve_t(self, v):
        """L⁻ᵀ v."""
        return self._apply(np.transpose(self.inverse, (0, 2, 1)), v)

    def rdiv_t(self, A):
        """A L⁻ᵀ for a dense (m, ell*S) matrix A."""
        ell, s = self.L.shape[0], self.size
        R = A.reshape(A.shape[0], ell, s)
        return np.einsum("mls,lts->mlt", R, self.inverse).reshape(A.shape)

    def to_dense(self):
        return sla.block_diag(*self.L)


class DenseFactor:
    """Cholesky factor of a dense symmetric positive definite matrix (LAPACK)."""

    def __init__(self, mat):
        self.L = sla.cholesky(mat, lower=True, check_finite=False)

    def logdet2(self):
        return 2.0 * float(np.sum(np.log(np.diag(self.L))))

    def diagonal(self):
        return np.diag(self.L)

    def solve(self, v):
        return sla.solve_triangular(self.L, v, lower=True, check_finite=False)

    def solve_t(self, v):
        return sla.solve_triangular(self.L, v, lower=True, trans="T", check_finite=False)

    def rdiv_t(self, A):
        return sla.solve_triangular(self.L, A.T, lower=True, check_finite=False).T

    def to_dense(self):
        return self.L


def _diag_blocks_of_gram(R, n_levels, size):
    """Diagonal (S x S) blocks of R Rᵀ for R of shape (ell*S, m)."""
    Rb = R.reshape(n_levels, size, -1)
    return np.einsum("lik,ljk->lij", Rb, Rb)


class BlockedCholesky:
    """Factor L of a symmetric block matrix, block by block.

    Parameters
    ----------
    diag : list
        Diagonal blocks: an (ell, S, S) array (block diagonal) or a dense matrix.
    lower : dict
        ``lower[i, j]`` (i > j): the dense off-diagonal block ``M_ij``.
    """

    def __init__(self, diag, lower):
        k = len(diag)
        self.diag = [None] * k
        self.lower = {}
        for j in range(k):
            mjj = diag[j]
            earlier = [self.lower[j, l] for l in range(j)]
            if mjj.ndim == 3:
                for Ljl in earlier:
                    mjj = mjj - _diag_blocks_of_gram(Ljl, mjj.shape[0], mjj.shape[1])
                self.diag[j] = BlockDiagonalFactor(mjj)
            else:
                for Ljl in earlier:
                    mjj = mjj - Ljl @ Ljl.T
                self.diag[j] = DenseFactor(mjj)
            for i in range(j + 1, k):
                mij = lower[i, j]
                for l in range(j):
                    mij = mij - self.lower[i, l] @ self.lower[j, l].T
                self.lower[i, j] = self.diag[j].rdiv_t(mij)

    def logdet2(self, blocks=None):
        """log det of the factored matrix, over the given diagonal blocks."""
        idx = range(len(self.diag)) if blocks is None else blocks
        return sum(self.diag[j].logdet2() for j in idx)

    def solve(self, rhs):
        """Solve (L Lᵀ) x = rhs, with rhs split into blocks (a list)."""
        k = len(self.diag)
        y = []
        for j in range(k):
            v = rhs[j]
            for l in range(j):
                v = v - self.lower[j, l] @ y[l]
            y.append(self.diag[j].solve(v))
        x = [None] * k
        for j in reversed(range(k)):
            v = y[j]
            for i in range(j + 1, k):
                v = v - self.lower[i, j].T @ x[i]
            x[j] = self.diag[j].solve_t(v)
        return x

    def to_dense(self):
        """The whole factor as a dense lower-triangular matrix (for inspection)."""
        sizes = [d.to_dense().shape[0] for d in self.diag]
        offs = np.concatenate([[0], np.cumsum(sizes)])
        out = np.zeros((offs[-1], offs[-1]))
        for j, d in enumerate(self.diag):
            out[offs[j]:offs[j + 1], offs[j]:offs[j + 1]] = d.to_dense()
        for (i, j), blk in self.lower.items():
            out[offs[i]:offs[i + 1], offs[j]:offs[j + 1]] = blk
        return out


class PenalizedSystem:
    """Assembles and factors the PIRLS system for given θ and weights.

    The CSR pattern of each term's ``Z`` is precomputed; an evaluation fills in
    the values ``z T`` (the rows of Z Λ). Weights enter as ``Z'Λ' (w * ...)``
    rather than through ``sqrt(w)``, so individual weights may be negative
    (observed information of a non-canonical link) as long as the whole
    matrix is positive definite.

    Parameters
    ----------
    random_effects : re_terms.RandomEffects
    """

    def __init__(self, random_effects):
        self.re = random_effects
        self._patterns = []
        for term in random_effects.terms:
            n, s = term.z.shape
            indptr = np.arange(0, n * s + 1, s)
            indices = (term.refs[:, None] * s + np.arange(s)).ravel()
            self._patterns.append((indptr, indices, (n, term.n_re)))

    def term_matrices(self, scaled, w=None):
        """Per term, Z_j Λ_j (times ``w`` row-wise when given) as CSR matrices."""
        mats = []
        for (indptr, indices, shape), zt in zip(self._patterns, scaled):
            values = zt if w is None else zt * w[:, None]
            mats.append(sp.csr_matrix((values.ravel(), indices, indptr), shape=shape))
        return mats

    def _diagonal_block(self, j, term, ZL, ZLw, w, zt):
        if j == 0 or self.re.nested[j]:
            s, ell = term.n_cov, term.n_levels
            blocks = np.empty((ell, s, s))
            for a in range(s):
                for b in range(a + 1):
                    vals = np.bincount(term.refs, weights=w * zt[:, a] * zt[:, b],
                                       minlength=ell)
                    blocks[:, a, b] = vals
                    blocks[:, b, a] = vals
            idx = np.arange(s)
            blocks[:, idx, idx] += 1.0
            return blocks
        dense = (ZL.T @ ZLw).toarray()
        dense[np.diag_indices_from(dense)] += 1.0
        return dense

    def factor(self, scaled, w, X=None):
        """Factor Λ'Z'WZΛ + I (and the X border when ``X`` is given).

        Parameters
        ----------
        scaled : list of ndarray
            Per term, ``z @ T`` (see ``RandomEffects.scaled_covariates``).
        w : ndarray
            The weights W (diagonal).
        X : ndarray, optional
            Fixed-effects model matrix, appended as the last, unpenalized block.

        Returns
        -------
        BlockedCholesky, list of the (unweighted) Z_j Λ_j matrices for :meth:`rhs`
        """
        ZL = self.term_matrices(scaled)
        ZLw = self.term_matrices(scaled, w)
        diag, lower = [], {}
        for j, term in enumerate(self.re.terms):
            diag.append(self._diagonal_block(j, term, ZL[j], ZLw[j], w, scaled[j]))
            for i in range(j):
                lower[j, i] = (ZL[j].T @ ZLw[i]).toarray()
        if X is not None:
            k = len(ZL)
            diag.append(X.T @ (w[:, None] * X))
            for i in range(k):
                lower[k, i] = np.asarray((ZLw[i].T @ X).T)
        return BlockedCholesky(diag, lower), ZL

    @staticmethod
    def rhs(ZL, weighted, X=None):
        """Blocks of Λ'Z' v (and X' v) for ``v = w * r``."""
        out = [np.asarray(Zj.T @ weighted) for Zj in ZL]
        if X is not None:
            out.append(X.T @ weighted)
        return out
