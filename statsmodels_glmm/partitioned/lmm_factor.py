"""One evaluation of the one-pass linear mixed model: the blocked Cholesky factor
at θ from the cross-product blocks (:class:`LmmFactor`).

The scaled matrix bordered by [X y] is factored block by block: L₁₁ block
diagonal; L_i1 sparse; a later diagonal block block diagonal when every earlier
factor nests in it, else dense (LAPACK, in place); the last diagonal element of
the [X y] block is r, the square root of the penalized residual sum of squares.

With two crossed scalar terms (L1 of issue 14: 1e5 x 1e4 levels, 1e7 level
pairs) an evaluation is the dense Cholesky factorization of the second block
(1e4², LAPACK) and, before it, the Schur complement L₂₁L₂₁ᵀ, which is the pair
block's Gram with a column scaling: :func:`~statsmodels_glmm.compiled.tiled_gram_lower`
over a pattern tiled once. The dense block and L₂₁ live in the arrays of the
previous evaluation.
"""

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .. import compiled
from ..blocked_cholesky import BlockDiagonalFactor
from ..re_terms import factor_from_theta, theta_rows_cols, theta_slices
from .kernels import _sparse_rdiv_t

__all__ = ["LmmFactor"]

# entries of a dense chunk of a Schur product (8 bytes each): bounds the
# temporaries of the sparse rank update to ~100 MB whatever the block size
_CHUNK_ENTRIES = 6_000_000


class _DenseLower:
    """Cholesky factor of a dense block, computed in place (LAPACK potrf on the
    transposed view: the lower triangle of the C-ordered array becomes L; the
    strict upper triangle is left as it was and never read)."""

    def __init__(self, mat):
        _, info = sla.lapack.dpotrf(mat.T, lower=False, overwrite_a=True, clean=False)
        if info != 0:
            raise np.linalg.LinAlgError("matrix is not positive definite")
        self.L = mat

    def logdet2(self):
        return 2.0 * float(np.sum(np.log(np.diagonal(self.L))))

    def rdiv_t(self, A):
        """A L⁻ᵀ, dense."""
        A = A.toarray() if sp.issparse(A) else np.asarray(A)
        return sla.solve_triangular(self.L, A.T, lower=True, check_finite=False).T

    def solve_t(self, v):
        return sla.solve_triangular(self.L, v, lower=True, trans="T", check_finite=False)


def _expanded_csr(pb, si, sj, ell_i, ell_j):
    """CSR pattern of a pair block with its S_i x S_j entries, and the position of
    each stored entry in ``vals.ravel()`` (computed once)."""
    m = pb.keys.size
    if si == sj == 1:  # keys sorted row-major: CSR order; the values shared, not copied
        indptr = np.concatenate([[0], np.cumsum(np.bincount(pb.rows, minlength=ell_i))])
        template = sp.csr_matrix((pb.vals.reshape(-1), pb.cols.astype(np.int32), indptr),
                                 shape=(ell_i, ell_j), copy=False)
        return template, None
    rows = (pb.rows[:, None, None] * si + np.arange(si)[None, :, None]) * np.ones(
        (1, 1, sj), dtype=np.int64)
    cols = (pb.cols[:, None, None] * sj + np.arange(sj)[None, None, :]) * np.ones(
        (1, si, 1), dtype=np.int64)
    pos = np.arange(m * si * sj, dtype=np.float64)
    template = sp.csr_matrix((pos, (rows.ravel(), cols.ravel())),
                             shape=(ell_i * si, ell_j * sj))
    return template, template.data.astype(np.int64)


def _gram_lower(mat, B):
    """mat −= B Bᵀ on and below the diagonal, for a sparse B: by row chunks
    [s, e) as the transposed product B[:e] B[s:e]ᵀ (B[:e] a view of B's arrays,
    only the small operand converted), so the cost is Σ nnz² over the columns of
    B and the temporaries are bounded by ``_CHUNK_ENTRIES``, never q² x q₁."""
    B = B.tocsr()
    q = mat.shape[0]
    step = max(1, _CHUNK_ENTRIES // max(q, 1))
    for s in range(0, q, step):
        e = min(s + step, q)
        nz = B.indptr[e]
        head = sp.csr_matrix((B.data[:nz], B.indices[:nz], B.indptr[:e + 1]),
                             shape=(e, B.shape[1]), copy=False)
        mat[s:e, :e] -= (head @ B[s:e].T.tocsr()).toarray().T


def _minus_gram_blocks(blocks, B):
    """Per-level S x S blocks minus those of B Bᵀ (B's rows nest: only they occur)."""
    ell, s = blocks.shape[0], blocks.shape[1]
    if sp.issparse(B):
        if s == 1:
            return blocks - np.asarray(B.multiply(B).sum(axis=1)).reshape(ell, 1, 1)
        G = (B @ B.T).tocsr()
        idx = np.arange(ell) * s
        out = blocks.copy()
        for a in range(s):
            for b in range(s):
                out[:, a, b] -= np.asarray(G[idx + a, idx + b]).ravel()
        return out
    Bb = np.asarray(B).reshape(ell, s, -1)
    return blocks - np.einsum("lik,ljk->lij", Bb, Bb)


def _prod_t(A, B):
    """A Bᵀ: sparse when both are, else dense."""
    if sp.issparse(A) and sp.issparse(B):
        return (A @ B.T).tocsr()
    if sp.issparse(A):
        return np.asarray(A @ np.asarray(B).T)
    if sp.issparse(B):
        return np.asarray((B @ np.asarray(A).T).T)
    return A @ B.T


def _sub(A, B):
    if sp.issparse(A) and sp.issparse(B):
        return (A - B).tocsr()
    return (A.toarray() if sp.issparse(A) else A) - (B.toarray() if sp.issparse(B) else B)


def _rdiv_t(factor, A):
    """A L_jj⁻ᵀ: sparse stays sparse against a block-diagonal factor."""
    if isinstance(factor, BlockDiagonalFactor):
        if not sp.issparse(A):
            return factor.rdiv_t(np.asarray(A))
        if factor.size == 1:  # a column scaling over the same index arrays
            A = A.tocsr()
            return sp.csr_matrix((A.data * factor.inverse[A.indices, 0, 0], A.indices,
                                  A.indptr), shape=A.shape, copy=False)
        return _sparse_rdiv_t(A, factor)
    return factor.rdiv_t(A)


def _nests(pb):
    """Whether each level of the earlier term meets one level of the later one."""
    # no level of the earlier term in two pairs (a count, not a sort of 1e7 keys)
    return pb.keys.size == 0 or np.bincount(pb.cols, minlength=pb.ell_j).max() <= 1


def _term_theta(sizes):
    """(slices of θ per term, start, lower bound) in lme4's order."""
    diagonal = [r == c for s, _ in sizes for r, c in theta_rows_cols(s)]
    slices = theta_slices([s * (s + 1) // 2 for s, _ in sizes])
    return (slices, np.where(diagonal, 1.0, 0.0), np.where(diagonal, 0.0, -np.inf))


class LmmFactor:
    """The blocked Cholesky factor of the scaled, bordered cross-product matrix

        [ΛᵀZᵀWZΛ + I   ΛᵀZᵀW[X y]]
        [[X y]ᵀWZΛ     [X y]ᵀW[X y]]

    at θ, from :class:`LmmBlocks` (the rows are never needed). The sparsity
    pattern of each pair block and which diagonal blocks stay block diagonal are
    worked out once; :meth:`update` refactors at a new θ.

    Parameters
    ----------
    blocks : LmmBlocks
    """

    def __init__(self, blocks):
        self.blocks = blocks
        self.sizes = blocks.sizes
        self.slices, self.theta_start, self.theta_lower = _term_theta(self.sizes)
        k = len(self.sizes)
        self.nested = [j == 0 or all(_nests(blocks.pairs[j, l]) for l in range(j))
                       for j in range(k)]
        self._templates = {}
        for (i, j), pb in blocks.pairs.items():
            (si, ei), (sj, ej) = self.sizes[i], self.sizes[j]
            template, perm = _expanded_csr(pb, si, sj, ei, ej)
            if perm is not None and np.array_equal(perm, np.arange(perm.size)):
                perm = None
            self._templates[i, j] = (template, perm)
        # L_j1 L_j1ᵀ of two scalar terms is the pair block A_j1 itself with a
        # column scaling (below): its tiled pattern is built once, and L_j1 is
        # never read for the Gram, the costliest step of a crossed evaluation
        self._grams = {j: compiled.TiledGramPattern(self._templates[j, 0][0])
                       for j in range(1, k) if not self.nested[j]
                       and self.sizes[j][0] == self.sizes[0][0] == 1
                       and compiled.available(blocks.pairs[j, 0].keys.size)}
        self._buffers = {}
        self.theta = None

    def _dense_diag(self, j, m, T):
        """The dense factor of diagonal block j: Λ_jᵀZ_jᵀWZ_jΛ_j + I (per-level
        blocks ``m``) minus L_jl L_jlᵀ over the earlier terms l."""
        if m.shape[1] > 1:
            dense = sla.block_diag(*m)
        else:
            # the array of the last evaluation's factor (replaced by this one):
            # a new one would be zeroed page by page while the Gram writes it
            dense = self._buffers.get(j)
            if dense is None:
                dense = self._buffers[j] = np.empty((m.shape[0], m.shape[0]))
            dense.fill(0.0)
            np.fill_diagonal(dense, m[:, 0, 0])
        for l in range(j):
            if l == 0 and j in self._grams:
                # L_j1 = θ_j A_j1 θ_1 L₁₁⁻ᵀ with L₁₁ diagonal
                scale = (T[j][0, 0] * T[0][0, 0] * self.diag[0].inverse[:, 0, 0]) ** 2
                compiled.tiled_gram_lower(dense, self._grams[j], scale=scale)
                continue
            Ljl = self.lower[j, l]
            if sp.issparse(Ljl):
                _gram_lower(dense, Ljl)
            else:
                dense -= Ljl @ Ljl.T
        return _DenseLower(dense)

    def _scalar_lower(self, i, T):
        """L_i1 = θ_i A_i1 θ_1 L₁₁⁻ᵀ of two scalar terms (L₁₁ diagonal), in place
        in the array of the last evaluation: at 1e7 pairs, no temporaries of
        80 MB each next to the dense block."""
        template = self._templates[i, 0][0]
        out = self._buffers.get((i, 0))
        if out is None:
            out = self._buffers[i, 0] = sp.csr_matrix(
                (np.empty_like(template.data), template.indices, template.indptr),
                shape=template.shape, copy=False)
        # the products in the order of _scaled_pair and _rdiv_t (same rounding)
        np.multiply(template.data, T[i][0, 0] * T[0][0, 0], out=out.data)
        inverse = self.diag[0].inverse[:, 0, 0]
        for c in range(0, out.data.size, _CHUNK_ENTRIES):
            out.data[c:c + _CHUNK_ENTRIES] *= inverse[template.indices[c:c + _CHUNK_ENTRIES]]
        return out

    def _scaled_pair(self, i, j, T):
        """Λ_iᵀ (Z_iᵀWZ_j) Λ_j, sparse with the stored pattern."""
        template, perm = self._templates[i, j]
        if T[i].size == T[j].size == 1:
            vals = template.data * (T[i][0, 0] * T[j][0, 0])
        else:
            vals = np.einsum("ba,mbc,cd->mad", T[i], self.blocks.pairs[i, j].vals,
                             T[j]).ravel()
            vals = vals if perm is None else vals[perm]
        # a new matrix over the template's index arrays (shared, never modified)
        return sp.csr_matrix((vals, template.indices, template.indptr),
                             shape=template.shape, copy=False)

    def update(self, theta):
        """Factor at θ; returns (log|L|² of the random effects, log|R_X|², r²)."""
        b = self.blocks
        k = len(self.sizes)
        T = [factor_from_theta(theta[sl], s) for sl, (s, _) in zip(self.slices, self.sizes)]
        self.diag, self.lower, self.border = [], {}, []
        for j, (s, ell) in enumerate(self.sizes):
            m = np.einsum("ba,lbc,cd->lad", T[j], b.diag[j], T[j])
            m[:, np.arange(s), np.arange(s)] += 1.0
            if self.nested[j]:
                for l in range(j):
                    m = _minus_gram_blocks(m, self.lower[j, l])
                self.diag.append(BlockDiagonalFactor(m))
            else:
                self.diag.append(self._dense_diag(j, m, T))
                del m
            for i in range(j + 1, k):
                if j == 0 and s == self.sizes[i][0] == 1:
                    self.lower[i, 0] = self._scalar_lower(i, T)
                    continue
                mij = self._scaled_pair(i, j, T)
                for l in range(j):
                    mij = _sub(mij, _prod_t(self.lower[i, l], self.lower[j, l]))
                self.lower[i, j] = _rdiv_t(self.diag[j], mij)
                del mij
            bx = np.einsum("ba,lbc->lac", T[j], b.zxy[j].reshape(ell, s, -1))
            bx = bx.reshape(ell * s, -1).T
            for l in range(j):
                bx = bx - _prod_t(self.border[l], self.lower[j, l])
            self.border.append(_rdiv_t(self.diag[j], bx))
        xx = b.xy - sum(Bx @ Bx.T for Bx in self.border)
        self.LXX = np.linalg.cholesky(xx)
        self.theta = np.array(theta, dtype=float)
        p = b.k_fe
        d = np.diagonal(self.LXX)
        ld_L = sum(f.logdet2() for f in self.diag)
        return ld_L, 2.0 * float(np.sum(np.log(d[:p]))), float(d[p] ** 2)

    def solve(self):
        """β̂ and the spherical modes û at the last θ (back-substitution; the y row
        of L is the forward-solved right-hand side)."""
        p = self.blocks.k_fe
        RX = self.LXX[:p, :p]
        beta = sla.solve_triangular(RX, self.LXX[p, :p], lower=True, trans="T")
        k = len(self.sizes)
        x = [None] * k
        for j in reversed(range(k)):
            t = self.border[j][p] - self.border[j][:p].T @ beta
            for i in range(j + 1, k):
                t = t - self.lower[i, j].T @ x[i]
            x[j] = self.diag[j].solve_t(np.asarray(t).ravel())
        return beta, np.concatenate(x)

    def rx_inverse(self):
        """R_X⁻¹ (lower triangular, R_X R_Xᵀ = the Schur complement onto β)."""
        p = self.blocks.k_fe
        return sla.solve_triangular(self.LXX[:p, :p], np.eye(p), lower=True)
