"""Compiled row loops (numba, an optional extra) with numpy fallbacks.

Two reductions dominate fits on large data and have no fast numpy form:

* **Per-level row sums** ``out[g] += w_i x_i`` (Z'WX for a scalar term). numpy
  does it with one ``bincount`` per column, each a pass over n rows with a
  strided read of the row-major design (97 ms at 1e6 x 11 here); one compiled
  pass reads each row once (14 ms).
* **The Gram matrix of a sparse block**, ``S -= C diag(d) Cᵀ`` on and below the
  diagonal (the Schur complement of a crossed factor onto another). BLAS
  ``syrk`` on the densified block does q₁ q₂² multiply-adds; the sparse sum
  needs only Σ nnz(column)² of them, but numpy/scipy have no sparse-times-
  sparse-into-dense product (scipy's builds a sparse result first). The loop
  below runs row by row, so each output row is written while it sits in cache.

Both are used only on sizes where compilation (once per machine: the kernels
are cached on disk) is repaid. Without numba, or with the environment
variable ``STATSMODELS_GLMM_NO_NUMBA`` set, every caller takes its numpy path.
"""

import functools
import importlib.util
import os

import numpy as np

__all__ = ["available", "one_thread", "group_row_sums", "sparse_gram_lower", "SparseGramPattern"]

# numba is imported on first use (it costs 0.3 s), not with the package
HAVE_NUMBA = importlib.util.find_spec("numba") is not None
ENABLED = HAVE_NUMBA and not os.environ.get("STATSMODELS_GLMM_NO_NUMBA")
# below this many multiply-adds a numpy call is as fast as loading a kernel
MIN_WORK = 200_000


def available(work=None):
    """Whether the compiled kernels are used (numba installed and not disabled),
    for a reduction of ``work`` multiply-adds when given."""
    return ENABLED and (work is None or work >= MIN_WORK)


@functools.cache
def _kernels():
    """Compile (or load from the on-disk cache) the kernels."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def _group_row_sums(refs, weights, X, out):  # pragma: no cover - compiled
        n, p = X.shape
        for i in range(n):
            g = refs[i]
            f = weights[i]
            for c in range(p):
                out[g, c] += f * X[i, c]

    @numba.njit(cache=True, nogil=True, parallel=True)
    def _sparse_gram_lower(out, indptr, indices, data, t_indptr, t_indices, t_data,
                           scale, chunks):  # pragma: no cover - compiled
        n_rows = out.shape[0]
        # rows interleaved over the chunks: row i costs ∝ i (the lower triangle)
        for chunk in numba.prange(chunks):
            for i in range(chunk, n_rows, chunks):
                row = out[i]
                for pp in range(indptr[i], indptr[i + 1]):
                    a = indices[pp]
                    f = data[pp] * scale[a]
                    for qq in range(t_indptr[a], t_indptr[a + 1]):
                        j = t_indices[qq]
                        if j > i:  # column indices of the transpose are sorted
                            break
                        row[j] -= f * t_data[qq]

    return {"group_row_sums": _group_row_sums, "sparse_gram_lower": _sparse_gram_lower,
            "threads": numba.get_num_threads}


def one_thread():
    """Run this thread's compiled kernels on one thread (numba's setting is per
    thread). For threads that already run side by side, one per partition: a
    kernel's own fork and join then only cost (C1 on 2 cores, a free one: 0.095
    s of wall per round against 0.117 s one partition after the other)."""
    if ENABLED:
        import numba

        numba.set_num_threads(1)


def group_row_sums(refs, weights, X, n_levels):
    """Σ over rows of level g of ``weights[i] * X[i]``, shape (n_levels, p).

    Parameters
    ----------
    refs : ndarray of int
        Level code of each row.
    weights : ndarray, shape (n,)
    X : ndarray, shape (n, p)
    n_levels : int
    """
    X = np.asarray(X)
    out = np.zeros((n_levels, X.shape[1]))
    if available(X.size) and X.flags.c_contiguous:
        _kernels()["group_row_sums"](refs, np.ascontiguousarray(weights, dtype=float), X, out)
        return out
    for c in range(X.shape[1]):
        out[:, c] = np.bincount(refs, weights=weights * X[:, c], minlength=n_levels)
    return out


class SparseGramPattern:
    """A sparse matrix C (q x m) in the two orders :func:`sparse_gram_lower` reads:
    by rows (CSR) and by columns (CSR of Cᵀ with sorted row indices), with the
    permutation taking the CSR values to the transposed order, so that new values
    on the same pattern cost one gather."""

    def __init__(self, C):
        import scipy.sparse as sp

        C = sp.csr_matrix(C)
        C.sum_duplicates()
        C.sort_indices()
        self.shape = C.shape
        self.indptr = C.indptr.astype(np.int64)
        self.indices = C.indices.astype(np.int64)
        # positions 0..nnz-1 carried through the transpose give the permutation
        pos = sp.csr_matrix((np.arange(C.nnz, dtype=float) + 1.0, C.indices, C.indptr),
                            shape=C.shape).T.tocsr()
        pos.sort_indices()
        self.t_indptr = pos.indptr.astype(np.int64)
        self.t_indices = pos.indices.astype(np.int64)
        self.t_order = (pos.data - 1.0).astype(np.int64)
        self.data = C.data


def sparse_gram_lower(out, pattern, data=None, scale=None):
    """``out -= C diag(scale) Cᵀ`` on and below the diagonal, in place.

    Parameters
    ----------
    out : ndarray, shape (q, q), C-ordered
        Only its lower triangle is updated (and meaningful afterwards).
    pattern : SparseGramPattern
        The pattern of C (q x m).
    data : ndarray, optional
        C's values in the pattern's CSR order (default: the pattern's own).
    scale : ndarray, shape (m,), optional
        The diagonal weights (default: ones).
    """
    data = pattern.data if data is None else np.ascontiguousarray(data, dtype=float)
    m = pattern.shape[1]
    scale = np.ones(m) if scale is None else np.ascontiguousarray(scale, dtype=float)
    if available(pattern.data.size) and out.flags.c_contiguous:
        kernels = _kernels()
        chunks = 4 * kernels["threads"]()
        kernels["sparse_gram_lower"](out, pattern.indptr, pattern.indices, data, pattern.t_indptr,
                           pattern.t_indices, data[pattern.t_order], scale, chunks)
        return out
    _gram_lower_numpy(out, pattern, data, scale)
    return out


def _gram_lower_numpy(out, pattern, data, scale, block_entries=2**24):
    """The numpy path: dense products of row blocks of C (q x m) against C
    scaled, keeping the temporaries near ``block_entries`` doubles."""
    import scipy.sparse as sp

    C = sp.csr_matrix((data, pattern.indices, pattern.indptr), shape=pattern.shape)
    Cs = (C @ sp.diags(scale)).tocsr()
    q = out.shape[0]
    step = max(1, block_entries // max(q, 1))
    for s in range(0, q, step):
        e = min(s + step, q)
        out[s:e, :e] -= (Cs[s:e] @ C[:e].T).toarray()
    return out
