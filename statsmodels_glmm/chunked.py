"""O(n p) reductions over the fixed-effects design in blocks of rows.

On large data an expression such as ``X.T @ (w[:, None] * X)`` materialises an
n x p temporary as large as X itself (0.9 GB at 1e7 rows and 11 columns) and
streams it through memory twice; BLAS also handles the tall-skinny product badly.
Taken over blocks of rows that fit in the cache, the same sums need no temporary
beyond one block and run 2-3 times faster. Below one block the result is the
plain expression, so small models get the same numbers as before.
"""

import numpy as np
import scipy.linalg as sla

__all__ = ["CHUNK_ROWS", "weighted_gram", "max_abs_product", "triangular_factor"]

# 16384 rows x 11 columns x 8 bytes = 1.4 MB per block: inside L2 with its product
CHUNK_ROWS = 16384


def _blocks(n, rows=CHUNK_ROWS):
    return (slice(start, min(start + rows, n)) for start in range(0, n, rows))


def weighted_gram(X, w):
    """X' diag(w) X, summed over blocks of rows (w may have negative entries).

    Parameters
    ----------
    X : ndarray, shape (n, p)
    w : ndarray, shape (n,)

    Returns
    -------
    ndarray, shape (p, p)
    """
    n, p = X.shape
    if n <= CHUNK_ROWS:
        return X.T @ (w[:, None] * X)
    out = np.zeros((p, p))
    for rows in _blocks(n):
        block = X[rows]
        out += block.T @ (w[rows, None] * block)
    return out


def max_abs_product(X, C):
    """Column maxima of ``|X @ C|`` (0 for no rows) without forming ``X @ C``."""
    n = X.shape[0]
    out = np.zeros(C.shape[1])
    for rows in _blocks(n):
        np.maximum(out, np.max(np.abs(X[rows] @ C), axis=0, initial=0.0), out=out)
    return out


def triangular_factor(X, rows=8 * CHUNK_ROWS):
    """R of X = Q R (min(n, p) x p), without a copy of X on large data.

    LAPACK's QR overwrites a copy of its argument; for tall X the factor is
    taken block by block instead (TSQR): the R of the stacked R factors of the
    blocks is an R of X (unique up to the signs of its rows, which nothing
    downstream depends on), and as accurate, since every step is orthogonal.
    """
    n, p = X.shape
    if n <= 2 * rows or p == 0:
        R = sla.qr(X, mode="r", check_finite=False)[0]
        return R[:min(R.shape), :]
    stacked = [_block_r(X[block]) for block in _blocks(n, rows)]
    R = sla.qr(np.vstack(stacked), mode="r", check_finite=False)[0]
    return R[:p, :]


def _block_r(block):
    """The p x p R of a tall block, from LAPACK's dgeqrf on a column-major copy
    (scipy's ``qr(mode="r")`` returns an R as tall as the block and takes twice as
    long; only the top p rows are kept, so no block-sized array stays alive)."""
    qr, _, _, info = sla.lapack.dgeqrf(np.asfortranarray(block, dtype=float),
                                       overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"QR of a block failed (LAPACK info {info})")
    p = block.shape[1]
    return np.triu(qr[:p, :])
