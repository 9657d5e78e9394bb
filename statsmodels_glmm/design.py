"""The fixed-effects design matrix X: collinear columns and a well-conditioned basis.

One QR factorization of X serves two purposes. Collinear columns are found with
R's scale-invariant rank rule (as lme4). And when X is badly conditioned (a
covariate of order 1e6 next to the intercept, columns of very different scales),
the fit works internally with an orthogonal basis X̃ = X T⁻¹ of the same column
space, so that the normal equations X̃'WX̃ PIRLS solves are as well conditioned as
the weights allow; β = T⁻¹ β̃ is mapped back at the boundaries.
"""

import warnings

import numpy as np
import scipy.linalg as sla
from statsmodels.tools.sm_exceptions import ValueWarning

from .chunked import triangular_factor

__all__ = ["DesignBasis", "independent_columns", "analyse_design", "drop_collinear_columns"]

# above this condition number of X the fit uses the orthogonal basis
_MAX_COND = 1e3


def _triangular_factor(X):
    """R of X = Q R (min(n, p) x p)."""
    return triangular_factor(X)


def _independent(R, tol):
    """Kept column indices, from the triangular factor of X (see
    :func:`independent_columns`)."""
    p = R.shape[1]
    norms = np.sqrt(np.einsum("ij,ij->j", R, R))  # the column norms of X
    candidates = [j for j in range(p) if norms[j] > 0 and np.isfinite(norms[j])]
    if not candidates:
        return np.zeros(0, dtype=np.intp)
    R = R[:, candidates] / norms[candidates]
    kept = list(range(len(candidates)))
    while True:
        diag = np.abs(np.diag(sla.qr(R[:, kept], mode="r")[0])) if kept else np.ones(0)
        weak = np.flatnonzero(diag[:len(kept)] < tol)
        # a column past the rank of a wide X has no diagonal element: dependent
        if len(kept) > diag.size:
            weak = np.append(weak, diag.size)
        if weak.size == 0:
            break
        del kept[int(weak[0])]
    return np.asarray([candidates[i] for i in kept], dtype=np.intp)


def independent_columns(X, tol=1e-7):
    """Indices of the columns of X kept when collinear ones are dropped.

    Columns are taken left to right and a column is dropped when what it adds to
    the span of the columns kept before it is below ``tol`` relative to its own
    norm, R's ``qr(X, tol = 1e-7)`` rule (LINPACK dqrdc2) that lme4 uses. The
    decision is invariant to the scale of each column (``x * 1e8``, ``x + 1e4``
    keep a full-rank design) and, of two collinear columns, drops the later one.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    tol : float

    Returns
    -------
    ndarray of intp
        The kept column indices, in order.
    """
    if X.shape[1] == 0:
        return np.zeros(0, dtype=np.intp)
    return _independent(_triangular_factor(X), tol)


class DesignBasis:
    """X = X̃ T with X̃'X̃ = n I when X is badly conditioned; otherwise X̃ = X.

    Attributes
    ----------
    X : ndarray (n, p)
        The design the fit works with (X̃, or X itself).
    T : ndarray (p, p) or None
        Upper triangular, β̃ = T β; ``None`` when X̃ is X.
    """

    def __init__(self, X, R=None, max_cond=_MAX_COND):
        n, p = X.shape
        self.T = None
        self.X = X
        if p == 0:
            return
        R = _triangular_factor(X) if R is None else R
        diag = np.abs(np.diag(R))
        if R.shape[0] < p or diag.min() == 0:
            return
        if np.linalg.cond(R) > max_cond:
            scale = np.sqrt(n)
            self.T = R / scale
            self.X = sla.solve_triangular(R, X.T, trans="T", lower=False).T * scale

    def to_internal(self, beta):
        """β̃ = T β."""
        return beta if self.T is None else self.T @ beta

    def to_external(self, beta_internal):
        """β = T⁻¹ β̃."""
        if self.T is None:
            return beta_internal
        return sla.solve_triangular(self.T, beta_internal, lower=False)

    def external_factor(self, C):
        """T⁻¹ C: maps a square root C of a covariance of β̃ to one of β."""
        if self.T is None:
            return C
        return sla.solve_triangular(self.T, C, lower=False)

    def external_cholesky(self, C):
        """The lower Cholesky factor of T⁻¹ C C' T⁻ᵀ, computed without forming it
        (an RQ step on T⁻¹ C), so it is accurate however badly X is scaled."""
        if self.T is None:
            return C
        R = sla.qr(self.external_factor(C).T, mode="r")[0]
        L = R.T
        return L * np.where(np.diag(L) < 0, -1.0, 1.0)

    def cov_to_external(self, V):
        """T⁻¹ V T⁻ᵀ."""
        if self.T is None:
            return V
        A = self.external_factor(V)
        return self.external_factor(A.T).T

    def log_abs_det(self):
        """log |det T| (0 when X̃ is X)."""
        return 0.0 if self.T is None else float(np.sum(np.log(np.abs(np.diag(self.T)))))


def analyse_design(X, tol=1e-7):
    """Kept columns (R's rank rule) and the basis of ``X[:, kept]``, from one QR."""
    if X.shape[1] == 0:
        return np.zeros(0, dtype=np.intp), DesignBasis(X)
    R = _triangular_factor(X)
    kept = _independent(R, tol)
    R_kept = _triangular_factor(R[:, kept]) if kept.size else None
    Xk = X if kept.size == X.shape[1] else X[:, kept]
    return kept, DesignBasis(Xk, R_kept)


def drop_collinear_columns(X, names, tol=1e-7, stacklevel=3):
    """Drop columns of X that are linear combinations of earlier ones, as lme4
    (R's scale-invariant QR rank rule, tolerance 1e-7), with a warning naming
    them (they are reported as NaN in ``params``).

    Returns
    -------
    X_kept : ndarray
    kept : ndarray of int
        Indices of the kept columns.
    basis : DesignBasis
        The well-conditioned basis of ``X_kept``.
    """
    kept, basis = analyse_design(X, tol)
    if len(kept) < X.shape[1]:
        dropped = [names[i] for i in range(X.shape[1]) if i not in kept]
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
            f"column(s): {', '.join(dropped)} (linear combinations of earlier columns; "
            "reported as NaN in params)", ValueWarning, stacklevel=stacklevel)
        X = X[:, kept]
    return X, np.asarray(kept, dtype=np.intp), basis
