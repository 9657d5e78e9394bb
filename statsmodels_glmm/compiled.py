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

import contextlib
import functools
import importlib.util
import os
import threading

import numpy as np

__all__ = ["available", "group_row_sums", "limit_threads", "run_parallel", "sparse_gram_lower",
           "SparseGramPattern", "TiledGramPattern", "tiled_gram_lower"]

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
    """The kernels module: numba imported, and the kernels compiled or loaded
    from numba's on-disk cache, on first use."""
    from . import _numba_kernels

    return _numba_kernels


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
        _kernels().group_row_sums(refs, np.ascontiguousarray(weights, dtype=float), X, out)
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
        chunks = 4 * kernels.threads()
        run_parallel(kernels.sparse_gram_lower, out, pattern.indptr, pattern.indices, data,
                     pattern.t_indptr, pattern.t_indices, data[pattern.t_order], scale, chunks)
        return out
    _gram_lower_numpy(out, pattern, data, scale)
    return out


def _gram_lower_numpy(out, pattern, data, scale, block_entries=2**24):
    """The numpy path: dense products of row blocks of C (q x m) against C
    scaled, keeping the temporaries near ``block_entries`` doubles."""
    import scipy.sparse as sp

    C = sp.csr_matrix((data, pattern.indices, pattern.indptr), shape=pattern.shape)
    return _csr_gram_lower(out, C, scale, block_entries)


def _csr_gram_lower(out, C, scale, block_entries=2**24):
    """``out -= C diag(scale) Cᵀ`` (lower triangle) for a CSR C, by row blocks."""
    import scipy.sparse as sp

    Cs = (C @ sp.diags(scale)).tocsr()
    q = out.shape[0]
    step = max(1, block_entries // max(q, 1))
    for s in range(0, q, step):
        e = min(s + step, q)
        out[s:e, :e] -= (Cs[s:e] @ C[:e].T).toarray()
    return out


def limit_threads(threads):
    """Run this thread's compiled kernels on at most ``threads`` threads (numba's
    setting is per thread). For a Dask worker's task, or threads that already run
    side by side, one per partition: the workers or threads are the parallelism,
    and a kernel's own fork and join only cost (C1 on 2 cores with a free one:
    0.095 s of wall per round against 0.117 s one partition after the other)."""
    if ENABLED:
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


_LAUNCH = threading.Lock()
_LAYER = {"checked": False, "serialize": True}


def run_parallel(kernel, *args):
    """Call a ``parallel=True`` kernel. numba's fallback threading layer
    (workqueue, used where neither TBB nor OpenMP loads) aborts the process when
    two threads launch parallel kernels at once: there the launches are
    serialized (the first one, before the layer is known, too)."""
    guard = _LAUNCH if _LAYER["serialize"] else contextlib.nullcontext()
    with guard:
        out = kernel(*args)
        if not _LAYER["checked"]:
            import numba

            _LAYER["checked"] = True
            _LAYER["serialize"] = numba.threading_layer() == "workqueue"
    return out


class TiledGramPattern:
    """A sparse matrix C (q x m) arranged for :func:`tiled_gram_lower`: its rows
    cut into bands of ``band`` rows, and the entries ordered by (band, column,
    row), so that a tile (band I x band J) of C diag(d) Cᵀ reads two contiguous
    stretches of C: per column a, its entries in band I times those in band J.

    Parameters
    ----------
    C : sparse matrix, shape (q, m)
    band : int, optional
        Rows per band (default 512). A tile of the output (band² doubles, 2 MB
        at 512) stays in the shared cache, where the scattered updates land,
        while the bands' entries are streamed once per tile: at 1e4 x 1e5 with
        1e7 entries, bands of 512 rows took 3.0 CPU-s, of 256 3.6, of 1024 8
        (the tiles of two threads crowd the cache), against 5.8 row by row.

    Notes
    -----
    The row-by-row kernel of :func:`sparse_gram_lower` streams, for each row i
    and each of its columns a, column a's entries: Σ_a nnz(a)² reads from
    memory (8 GB for a 1e4 x 1e5 C with 1e7 entries). A tile reads the entries
    of its two bands once, (q / band)² / 2 tiles of 2 nnz band / q entries.
    """

    def __init__(self, C, band=None):
        import scipy.sparse as sp

        C = sp.csr_matrix(C)
        C.sum_duplicates()
        C.sort_indices()
        q, m = self.shape = C.shape
        self.band = max(1, min(q, 512 if band is None else int(band)))
        n_bands = -(-q // self.band) if q else 0
        # C's positions carried to column order (a counting sort: the rows
        # increase within each column), then stably by band: (band, column, row)
        pos = sp.csr_matrix((np.arange(1.0, C.nnz + 1.0), C.indices, C.indptr),
                            shape=C.shape).tocsc()
        band_of = pos.indices // self.band
        by_band = np.argsort(band_of.astype(np.uint16) if n_bands <= 2**16 else band_of,
                             kind="stable")  # a radix sort for 16-bit keys
        index = np.int32 if C.nnz < 2**31 else np.int64
        self.order = (pos.data[by_band] - 1.0).astype(index)
        self.rows = pos.indices[by_band].astype(np.int32 if q < 2**31 else np.int64)
        cols = np.repeat(np.arange(m, dtype=np.int64), np.diff(pos.indptr))
        counts = np.bincount(band_of * m + cols, minlength=n_bands * m)
        self.ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.vals = C.data[self.order]
        tile_i, tile_j = np.tril_indices(n_bands)
        self.tile_i, self.tile_j = tile_i.astype(np.int64), tile_j.astype(np.int64)
        self.nnz = C.nnz

    def banded(self, data):
        """Values given in C's CSR order, in the pattern's order."""
        return np.asarray(data, dtype=float)[self.order]


def tiled_gram_lower(out, pattern, data=None, scale=None):
    """``out -= C diag(scale) Cᵀ`` on and below the diagonal, in place, tile by
    tile (see :class:`TiledGramPattern`); without numba the numpy path of
    :func:`sparse_gram_lower`.

    Parameters
    ----------
    out : ndarray, shape (q, q), C-ordered
        Only its lower triangle is updated (and meaningful afterwards).
    pattern : TiledGramPattern
        The pattern of C (q x m).
    data : ndarray, optional
        C's values in CSR order (default: those the pattern was built from).
    scale : ndarray, shape (m,), optional
        The diagonal weights (default: ones).
    """
    vals = pattern.vals if data is None else pattern.banded(data)
    m = pattern.shape[1]
    scale = np.ones(m) if scale is None else np.ascontiguousarray(scale, dtype=float)
    if available(pattern.nnz) and out.flags.c_contiguous:
        kernels = _kernels()
        chunks = 4 * kernels.threads()
        run_parallel(kernels.tiled_gram_lower, out, pattern.ptr, pattern.rows, vals, scale,
                     pattern.tile_i, pattern.tile_j, chunks)
        return out
    import scipy.sparse as sp

    n_bands = pattern.tile_i.max() + 1 if pattern.tile_i.size else 0
    cols = np.repeat(np.tile(np.arange(m), n_bands), np.diff(pattern.ptr))
    C = sp.csr_matrix((vals, (pattern.rows, cols)), shape=pattern.shape)
    return _csr_gram_lower(out, C, scale)
