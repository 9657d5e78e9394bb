"""Sparse off-diagonal blocks of the blocked Cholesky factor for nested scalar terms.

When the factor of a scalar term ``j`` (finer) is nested in the factor of a scalar
term ``i`` (coarser), every column of the block ``M_ij`` of Λ'Z'WZΛ has exactly one
nonzero, in the row of the parent level. As in MixedModels.jl such a block is
stored as (parent index per column, value per column), a :class:`NestedBlock`:

- ``L_ij = M_ij L_jj⁻ᵀ`` keeps the pattern (``L_jj`` is diagonal for a scalar,
  block-diagonal term), it only rescales the columns;
- ``L_ij L_ijᵀ`` is diagonal (a ``bincount`` of the squared values), so the
  coarser term's diagonal block stays block diagonal;
- the product ``L_il L_jlᵀ`` of two such blocks is again one-nonzero-per-column
  when term ``j`` is nested in term ``i`` (a ``bincount`` too), and a dense block
  (one ``bincount`` over the flat index) otherwise.

The helpers below take either a :class:`NestedBlock` or a dense ndarray, so
:class:`blocked_cholesky.BlockedCholesky` handles both kinds of block alike;
anything that needs a dense block gets one from ``np.asarray(block)``.
"""

import numpy as np

__all__ = ["NestedBlock", "gram_diagonal", "matmul", "matmul_t", "product_t", "subtract"]


class NestedBlock:
    """A matrix with one nonzero per column: entry ``(rows[c], c)`` is ``vals[c]``.

    Parameters
    ----------
    rows : ndarray of intp, shape (n_cols,)
        Row (parent level) of the nonzero of each column.
    vals : ndarray, shape (n_cols,)
        The nonzero of each column.
    n_rows : int
        Number of rows.
    """

    __slots__ = ("rows", "vals", "n_rows")

    def __init__(self, rows, vals, n_rows):
        self.rows = rows
        self.vals = vals
        self.n_rows = int(n_rows)

    @property
    def shape(self):
        """(n_rows, n_cols) of the matrix."""
        return (self.n_rows, len(self.rows))

    def to_dense(self):
        """The block as a dense ndarray."""
        out = np.zeros(self.shape)
        out[self.rows, np.arange(len(self.rows))] = self.vals
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.to_dense()
        return out if dtype is None else out.astype(dtype)

    def __getstate__(self):
        return (self.rows, self.vals, self.n_rows)

    def __setstate__(self, state):
        self.rows, self.vals, self.n_rows = state

    def scale_columns(self, d):
        """The block times ``diag(d)`` (the same pattern, rescaled columns)."""
        return NestedBlock(self.rows, self.vals * d, self.n_rows)


def matmul(A, v):
    """``A @ v`` for a dense or nested block A and a vector or matrix v."""
    if not isinstance(A, NestedBlock):
        return A @ v
    if v.ndim == 1:
        return np.bincount(A.rows, weights=A.vals * v, minlength=A.n_rows)
    m = v.shape[1]
    flat = A.rows[:, None] * m + np.arange(m)
    out = np.bincount(flat.ravel(), weights=(A.vals[:, None] * v).ravel(),
                      minlength=A.n_rows * m)
    return out.reshape(A.n_rows, m)


def matmul_t(A, v):
    """``Aᵀ @ v`` for a dense or nested block A and a vector or matrix v."""
    if not isinstance(A, NestedBlock):
        return A.T @ v
    if v.ndim == 1:
        return A.vals * v[A.rows]
    return A.vals[:, None] * v[A.rows]


def gram_diagonal(A):
    """The diagonal of ``A Aᵀ`` for a nested block A (where it is the whole of it)."""
    return np.bincount(A.rows, weights=A.vals * A.vals, minlength=A.n_rows)


def _nested_product_t(A, B):
    """``A Bᵀ`` for two nested blocks with the same columns."""
    va = A.vals * B.vals
    parent = np.zeros(B.n_rows, dtype=A.rows.dtype)
    parent[B.rows] = A.rows
    if np.array_equal(parent[B.rows], A.rows):
        # the rows of B nest in the rows of A: one nonzero per column again
        return NestedBlock(parent, np.bincount(B.rows, weights=va, minlength=B.n_rows),
                           A.n_rows)
    flat = A.rows * B.n_rows + B.rows
    out = np.bincount(flat, weights=va, minlength=A.n_rows * B.n_rows)
    return out.reshape(A.n_rows, B.n_rows)


def _dense_nested_product_t(D, B):
    """``D Bᵀ`` for a dense (m, n) matrix D and a nested (r, n) block B."""
    m = D.shape[0]
    flat = B.rows[None, :] + (np.arange(m) * B.n_rows)[:, None]
    out = np.bincount(flat.ravel(), weights=(D * B.vals).ravel(), minlength=m * B.n_rows)
    return out.reshape(m, B.n_rows)


def product_t(A, B):
    """``A @ Bᵀ`` for dense or nested blocks; nested when it has that pattern.

    Parameters
    ----------
    A, B : ndarray or NestedBlock
        Blocks with the same number of columns.

    Returns
    -------
    ndarray or NestedBlock
    """
    a_nested, b_nested = isinstance(A, NestedBlock), isinstance(B, NestedBlock)
    if a_nested and b_nested:
        return _nested_product_t(A, B)
    if b_nested:
        return _dense_nested_product_t(A, B)
    if a_nested:
        return _dense_nested_product_t(B, A).T
    return A @ B.T


def subtract(M, P):
    """``M - P`` for dense or nested blocks; nested when both share one pattern."""
    if isinstance(M, NestedBlock) and isinstance(P, NestedBlock):
        if M.rows is P.rows or np.array_equal(M.rows, P.rows):
            return NestedBlock(M.rows, M.vals - P.vals, M.n_rows)
    if isinstance(P, NestedBlock):
        out = np.array(M, dtype=float)
        out[P.rows, np.arange(len(P.rows))] -= P.vals
        return out
    return np.asarray(M) - P
