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
- off-diagonal blocks are stored dense, except between two scalar terms whose
  factors nest (the finer in the coarser): those have one nonzero per column and
  are kept so through the factorization (:mod:`nested_blocks`, as MixedModels.jl);
- the scatter indices of each block are computed once from the level codes;
  an evaluation accumulates the weighted rows of ``Z Λ`` into them.

No CHOLMOD, no fill-reducing permutation and no q x q matrix for the first term.
"""

import numpy as np
import scipy.linalg as sla

from .chunked import weighted_gram
from .compiled import group_row_sums
from .nested_blocks import NestedBlock, gram_diagonal, matmul, matmul_t, product_t, subtract

_potrf, _trtrs = sla.lapack.dpotrf, sla.lapack.dtrtrs

__all__ = ["BlockDiagonalFactor", "DenseFactor", "BlockedCholesky", "PenalizedSystem",
           "x_border"]


class BlockDiagonalFactor:
    """Cholesky factor of a block-diagonal matrix stored as (ell, S, S)."""

    def __init__(self, blocks):
        self.size = blocks.shape[1]
        if self.size == 1:
            if not blocks.min() > 0:  # as np.linalg.cholesky for S > 1 (and for NaN)
                raise np.linalg.LinAlgError("matrix is not positive definite")
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
        if s == 1:  # scalar term: elementwise
            d = mat[:, 0, 0]
            return v * d if v.ndim == 1 else v * d[:, None]
        if v.ndim == 1:
            return np.einsum("lij,lj->li", mat, v.reshape(ell, s)).ravel()
        out = np.einsum("lij,ljk->lik", mat, v.reshape(ell, s, -1))
        return out.reshape(ell * s, -1)

    def solve(self, v):
        """L⁻¹ v."""
        if v.ndim == 1 and self.size > 1:
            return self._substitute(v, transpose=False)
        return self._apply(self.inverse, v)

    def solve_t(self, v):
        """L⁻ᵀ v."""
        if v.ndim == 1 and self.size > 1:
            return self._substitute(v, transpose=True)
        return self._apply(np.transpose(self.inverse, (0, 2, 1)), v)

    def _substitute(self, v, transpose):
        """Forward (L) or back (Lᵀ) substitution for a vector, vectorized over the
        levels: S² small passes, 3-5x faster than forming the per-level inverses
        (a PIRLS step solves once with each and may never need the inverses)."""
        L, s = self.L, self.size
        V = v.reshape(-1, s)
        out = np.empty_like(V)
        order = range(s - 1, -1, -1) if transpose else range(s)
        for i in order:
            acc = V[:, i].copy()
            for k in (range(i + 1, s) if transpose else range(i)):
                acc -= (L[:, k, i] if transpose else L[:, i, k]) * out[:, k]
            out[:, i] = acc / L[:, i, i]
        return out.ravel()

    def rdiv_t(self, A):
        """A L⁻ᵀ for a dense (m, ell*S) matrix A or a :class:`NestedBlock`."""
        ell, s = self.L.shape[0], self.size
        if isinstance(A, NestedBlock):  # scalar term: columns rescaled, pattern kept
            return A.scale_columns(self.inverse[:, 0, 0])
        if s == 1:
            return A * self.inverse[:, 0, 0]
        R = A.reshape(A.shape[0], ell, s)
        return np.einsum("mls,lts->mlt", R, self.inverse).reshape(A.shape)

    def to_dense(self):
        return sla.block_diag(*self.L)


class DenseFactor:
    """Cholesky factor of a dense symmetric positive definite matrix (LAPACK).

    LAPACK's ``dpotrf``/``dtrtrs`` are called directly: the blocks are small (the
    fixed effects, a crossed term's levels) and factored at every PIRLS step,
    where scipy.linalg's wrappers cost 10-17 µs a call against 2-5 µs for the
    work itself (``cholesky`` and ``solve_triangular`` call the same routines).
    """

    def __init__(self, mat):
        mat = np.asarray(mat, dtype=float)
        if mat.size == 0:  # no fixed effects: an empty block
            self.L = np.zeros(mat.shape)
            return
        L, info = _potrf(mat, lower=1, clean=1)
        if info > 0:
            raise np.linalg.LinAlgError(
                f"{info}-th leading minor of the array is not positive definite")
        if info < 0:
            raise ValueError(f"illegal argument {-info} to LAPACK's dpotrf")
        self.L = L

    def logdet2(self):
        return 2.0 * float(np.sum(np.log(np.diag(self.L))))

    def diagonal(self):
        return np.diag(self.L)

    def _trtrs(self, b, trans):
        b = np.asarray(b, dtype=float)
        if b.size == 0:
            return b.copy()
        x, info = _trtrs(self.L, b, lower=1, trans=trans)
        if info != 0:
            raise np.linalg.LinAlgError(f"singular triangular factor (dtrtrs info {info})")
        return x

    def solve(self, v):
        return self._trtrs(v, 0)

    def solve_t(self, v):
        return self._trtrs(v, 1)

    def rdiv_t(self, A):
        return self._trtrs(np.asarray(A).T, 0).T

    def to_dense(self):
        return self.L


def _diag_blocks_of_gram(R, n_levels, size):
    """Diagonal (S x S) blocks of R Rᵀ for R of shape (ell*S, m)."""
    if isinstance(R, NestedBlock):  # R Rᵀ is diagonal
        return gram_diagonal(R)[:, None, None]
    Rb = R.reshape(n_levels, size, -1)
    return np.einsum("lik,ljk->lij", Rb, Rb)


def _minus_gram(mjj, R):
    """mjj - R Rᵀ for a dense mjj."""
    if isinstance(R, NestedBlock):
        out = mjj.copy()
        out[np.diag_indices_from(out)] -= gram_diagonal(R)
        return out
    return mjj - R @ R.T


class BlockedCholesky:
    """Factor L of a symmetric block matrix, block by block.

    Parameters
    ----------
    diag : list
        Diagonal blocks: an (ell, S, S) array (block diagonal) or a dense matrix.
    lower : dict
        ``lower[i, j]`` (i > j): the off-diagonal block ``M_ij``, dense or a
        :class:`~statsmodels_glmm.nested_blocks.NestedBlock`.
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
                    mjj = _minus_gram(mjj, Ljl)
                self.diag[j] = DenseFactor(mjj)
            for i in range(j + 1, k):
                mij = lower[i, j]
                for l in range(j):
                    mij = subtract(mij, product_t(self.lower[i, l], self.lower[j, l]))
                self.lower[i, j] = self.diag[j].rdiv_t(mij)

    def block(self, j):
        """The factor of diagonal block j (a random-effects term, or X last)."""
        return self.diag[j]

    def fixed_block(self):
        """R_X, the factor of the fixed-effects block (the last one, when the
        system was factored with X)."""
        return self.diag[-1]

    def leading(self, k):
        """The factor of the leading k x k blocks (e.g. without the X border)."""
        sub = object.__new__(BlockedCholesky)
        sub.diag = self.diag[:k]
        sub.lower = {(i, j): blk for (i, j), blk in self.lower.items() if i < k}
        return sub

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
                v = v - matmul(self.lower[j, l], y[l])
            y.append(self.diag[j].solve(v))
        x = [None] * k
        for j in reversed(range(k)):
            v = y[j]
            for i in range(j + 1, k):
                v = v - matmul_t(self.lower[i, j], x[i])
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
            out[offs[i]:offs[i + 1], offs[j]:offs[j + 1]] = np.asarray(blk)
        return out


def x_border(refs, zt, n_levels, w, X):
    """X'W Z Λ for one term (rows' level codes ``refs``, Z Λ values ``zt``) as a
    dense p x (n_levels * S) block: per-level row sums of X (one compiled pass
    over the rows, or one ``bincount`` per covariate and column)."""
    s = zt.shape[1]
    out = np.empty((X.shape[1], n_levels, s))
    for a in range(s):
        out[:, :, a] = group_row_sums(refs, w * zt[:, a], X, n_levels).T
    return out.reshape(X.shape[1], n_levels * s)


class PenalizedSystem:
    """Assembles and factors the PIRLS system for given θ and weights.

    Every block of Λ'Z'WZΛ (and of the X border) is accumulated with
    ``np.bincount`` on scatter indices computed once from the level codes, so an
    evaluation costs a few O(n) passes plus the size of the blocks, with no
    sparse-matrix machinery on the hot path. Weights enter linearly (never
    through ``sqrt(w)``), so individual weights may be negative (observed
    information of a non-canonical link) as long as the matrix is positive
    definite.

    Parameters
    ----------
    random_effects : re_terms.RandomEffects
    nested_blocks : bool, default True
        Store the block between two scalar terms whose factors nest as a
        :class:`~statsmodels_glmm.nested_blocks.NestedBlock` (one nonzero per
        column); ``False`` stores every off-diagonal block dense (for testing).
    """

    def __init__(self, random_effects, nested_blocks=True):
        self.re = random_effects
        terms = random_effects.terms
        # flat index of observation o in the dense (q_j x q_i) block, for covariate
        # pair (0, 0); pair (a, b) adds a * q_i + b.
        self._scatter = {}
        # parent level in term j of each level of term i, for two scalar terms where
        # i's factor nests in j's: block (j, i) is a NestedBlock
        self._parent = {}
        for j, tj in enumerate(terms):
            for i in range(j):
                ti = terms[i]
                if (nested_blocks and tj.n_cov == 1 and ti.n_cov == 1
                        and ti.is_nested_in(tj)):
                    parent = np.zeros(ti.n_levels, dtype=np.intp)
                    parent[ti.refs] = tj.refs
                    self._parent[j, i] = parent
                    continue
                self._scatter[j, i] = (tj.refs.astype(np.int64) * tj.n_cov * ti.n_re
                                       + ti.refs * ti.n_cov)

    def _block_diagonal(self, term, zt, w):
        """Per-level S x S blocks of Z_j'WZ_j (scaled by T), shape (ell, S, S)."""
        s, ell = term.n_cov, term.n_levels
        blocks = np.empty((ell, s, s))
        for a in range(s):
            wa = w * zt[:, a]
            for b in range(a + 1):
                vals = np.bincount(term.refs, weights=wa * zt[:, b], minlength=ell)
                blocks[:, a, b] = vals
                blocks[:, b, a] = vals
        return blocks

    def _off_diagonal(self, j, i, scaled, w):
        """Block (j, i) of Λ'Z'WZΛ: dense, or nested (one nonzero per column)."""
        tj, ti = self.re.terms[j], self.re.terms[i]
        parent = self._parent.get((j, i))
        if parent is not None:
            vals = np.bincount(ti.refs, weights=w * scaled[j][:, 0] * scaled[i][:, 0],
                               minlength=ti.n_levels)
            return NestedBlock(parent, vals, tj.n_levels)
        base = self._scatter[j, i]
        size = tj.n_re * ti.n_re
        out = np.zeros(size)
        for a in range(tj.n_cov):
            wa = w * scaled[j][:, a]
            for b in range(ti.n_cov):
                out += np.bincount(base + (a * ti.n_re + b), weights=wa * scaled[i][:, b],
                                   minlength=size)
        return out.reshape(tj.n_re, ti.n_re)

    def _x_border(self, i, scaled, w, X):
        """X'WZ_iΛ_i as a dense p x q_i block."""
        term = self.re.terms[i]
        return x_border(term.refs, scaled[i], term.n_levels, w, X)

    def factor(self, scaled, w, X=None, ridge=None):
        """Factor Λ'Z'WZΛ + I (and the X border when ``X`` is given).

        Parameters
        ----------
        scaled : list of ndarray
            Per term, ``z @ T`` (see ``RandomEffects.scaled_covariates``).
        w : ndarray
            The weights W (diagonal).
        X : ndarray, optional
            Fixed-effects model matrix, appended as the last, unpenalized block.
        ridge : ndarray, optional
            Added to the diagonal of X'WX (a Levenberg-Marquardt damping of the β
            block, used by PIRLS when X'WX is numerically singular).

        Returns
        -------
        BlockedCholesky
        """
        diag, lower = [], {}
        for j, term in enumerate(self.re.terms):
            blocks = self._block_diagonal(term, scaled[j], w)
            for a in range(term.n_cov):
                blocks[:, a, a] += 1.0
            if j == 0 or self.re.nested[j]:
                diag.append(blocks)
            else:
                diag.append(sla.block_diag(*blocks) if term.n_cov > 1
                            else np.diag(blocks[:, 0, 0]))
            for i in range(j):
                lower[j, i] = self._off_diagonal(j, i, scaled, w)
        if X is not None:
            k = len(self.re.terms)
            xwx = weighted_gram(X, w)
            if ridge is not None:
                xwx[np.diag_indices_from(xwx)] += ridge
            diag.append(xwx)
            for i in range(k):
                lower[k, i] = self._x_border(i, scaled, w, X)
        return BlockedCholesky(diag, lower)

    def rhs(self, scaled, weighted, X=None):
        """Blocks of Λ'Z' v (and X' v) for ``v = w * r``."""
        out = []
        for term, zt in zip(self.re.terms, scaled):
            s, ell = term.n_cov, term.n_levels
            block = np.empty(ell * s)
            for a in range(s):
                block[a::s] = np.bincount(term.refs, weights=weighted * zt[:, a], minlength=ell)
            out.append(block)
        if X is not None:
            out.append(X.T @ weighted)
        return out
