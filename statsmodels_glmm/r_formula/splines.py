"""R's splines: ``splines::splineDesign`` (:func:`spline_design`), and ``bs`` and
``ns`` as patsy stateful transforms whose knots are learned from the fitted data.
"""

import math

import numpy as np
from patsy import PatsyError
from scipy.interpolate import BSpline

from .values import _float


def spline_design(knots, x, ord=4, derivs=0):
    """R's ``splines::splineDesign(knots, x, ord, derivs)`` (outer.ok = FALSE):
    the B-spline basis (or its derivatives) of order ``ord`` at ``x``."""
    knots = np.asarray(knots, dtype=float)
    x = np.asarray(x, dtype=float).ravel()
    derivs = np.broadcast_to(np.asarray(derivs, dtype=int), x.shape)
    k = ord - 1
    n = knots.size - ord
    if np.any((x < knots[k]) | (x > knots[n])):
        raise PatsyError("the x data must be in the range of the inner knots")
    spline = BSpline(knots, np.eye(n), k, extrapolate=True)
    out = np.empty((x.size, n))
    for d in np.unique(derivs):
        rows = derivs == d
        out[rows] = spline(x[rows], nu=int(d))
    return out


def _householder_qty(a, b):
    """Q^T b for the QR decomposition of ``a`` (n x p, full column rank) by
    Householder reflections as LINPACK's dqrdc2 (R's qr()) computes them."""
    a = np.array(a, dtype=float)
    b = np.array(b, dtype=float)
    for j in range(a.shape[1]):
        col = a[j:, j]
        norm = np.linalg.norm(col)
        if norm == 0:
            continue
        if col[0] != 0:
            norm = math.copysign(norm, col[0])
        u = col / norm
        u[0] += 1.0
        for m in (a, b):  # H = I - u u^T / u[0]
            sub = m[j:]
            sub -= np.outer(u, u @ sub) / u[0]
    return b


class _SplineBase:
    def __init__(self):
        self._chunks = []
        self._args = None
        self._state = None

    def memorize_chunk(self, x, *args, **kwargs):
        self._args = (args, kwargs)
        self._chunks.append(_float(x).ravel())

    def _data_and_knots(self, df, knots, boundary_knots, n_inner_of_df):
        x = np.concatenate(self._chunks)
        self._chunks = None
        x = x[~np.isnan(x)]
        if boundary_knots is None:
            if x.size == 0:
                raise PatsyError("no non-missing values for the spline's boundary knots")
            bk = np.array([x.min(), x.max()])
            inside = np.ones(x.size, bool)
        else:
            bk = np.sort(np.asarray(boundary_knots, dtype=float).ravel())
            if bk.size != 2:
                raise PatsyError("Boundary_knots must be two numbers")
            inside = (x >= bk[0]) & (x <= bk[1])
        if df is not None and knots is None:
            n_inner = max(n_inner_of_df(int(df)), 0)
            probs = np.linspace(0, 1, n_inner + 2)[1:-1]
            knots = np.quantile(x[inside], probs) if n_inner else np.array([])
        knots = np.array([] if knots is None else knots, dtype=float).ravel()
        return bk, knots

    def transform(self, x, *args, **kwargs):
        v = _float(x).ravel()
        out = np.full((v.size, self._ncol()), np.nan)
        ok = ~np.isnan(v)
        if ok.any():
            out[ok] = self._basis(v[ok])
        return out


class _BS(_SplineBase):
    """R's ``splines::bs(x, df, knots, degree = 3, intercept = FALSE,
    Boundary_knots)``, including R's extrapolation beyond the boundary knots (a
    Taylor expansion at a pivot inside them) for new data."""

    def memorize_finish(self):
        args, kwargs = self._args
        params = dict(zip(["df", "knots", "degree", "intercept", "Boundary_knots"], args))
        params.update(kwargs)
        unknown = set(params) - {"df", "knots", "degree", "intercept", "Boundary_knots"}
        if unknown:
            raise PatsyError(f"bs(): unknown argument(s) {sorted(unknown)}")
        degree = int(params.get("degree", 3))
        intercept = bool(params.get("intercept", False))
        ord = degree + 1
        bk, knots = self._data_and_knots(params.get("df"), params.get("knots"),
                                         params.get("Boundary_knots"),
                                         lambda df: df - ord + (1 - intercept))
        aknots = np.sort(np.concatenate([np.repeat(bk, ord), knots]))
        self._state = dict(aknots=aknots, bk=bk, ord=ord, degree=degree,
                           intercept=intercept, knots=knots)

    def _ncol(self):
        s = self._state
        return s["aknots"].size - s["ord"] - (0 if s["intercept"] else 1)

    def _basis(self, v):
        s = self._state
        aknots, bk, ord, degree = s["aknots"], s["bk"], s["ord"], s["degree"]
        basis = np.zeros((v.size, aknots.size - ord))
        left, right = v < bk[0], v > bk[1]
        inside = ~(left | right)
        if inside.any():
            basis[inside] = spline_design(aknots, v[inside], ord)
        e = 0.25
        scalef = np.array([math.gamma(i + 1) for i in range(ord)])
        derivs = np.arange(degree + 1)
        for mask, pivot in ((left, (1 - e) * bk[0] + e * aknots[ord]),
                            (right, (1 - e) * bk[1] + e * aknots[aknots.size - ord - 1])):
            if mask.any():
                xp = np.column_stack([np.ones(mask.sum())]
                                     + [(v[mask] - pivot) ** p for p in range(1, degree + 1)])
                tt = spline_design(aknots, np.repeat(pivot, ord), ord, derivs)
                basis[mask] = xp @ (tt / scalef[:, None])
        return basis if s["intercept"] else basis[:, 1:]


class _NS(_SplineBase):
    """R's ``splines::ns(x, df, knots, intercept = FALSE, Boundary_knots)``: the
    cubic B-spline basis with the second-derivative constraints at the boundary
    knots projected out by R's QR; linear beyond the boundary knots."""

    def memorize_finish(self):
        args, kwargs = self._args
        params = dict(zip(["df", "knots", "intercept", "Boundary_knots"], args))
        params.update(kwargs)
        unknown = set(params) - {"df", "knots", "intercept", "Boundary_knots"}
        if unknown:
            raise PatsyError(f"ns(): unknown argument(s) {sorted(unknown)}")
        intercept = bool(params.get("intercept", False))
        bk, knots = self._data_and_knots(params.get("df"), params.get("knots"),
                                         params.get("Boundary_knots"),
                                         lambda df: df - 1 - intercept)
        aknots = np.sort(np.concatenate([np.repeat(bk, 4), knots]))
        const = spline_design(aknots, bk, 4, derivs=[2, 2])
        if not intercept:
            const = const[:, 1:]
        self._state = dict(aknots=aknots, bk=bk, const=const, intercept=intercept,
                           knots=knots)

    def _ncol(self):
        return self._state["const"].shape[1] - 2

    def _basis(self, v):
        s = self._state
        aknots, bk = s["aknots"], s["bk"]
        basis = np.zeros((v.size, aknots.size - 4))
        left, right = v < bk[0], v > bk[1]
        inside = ~(left | right)
        if inside.any():
            basis[inside] = spline_design(aknots, v[inside], 4)
        for mask, pivot in ((left, bk[0]), (right, bk[1])):
            if mask.any():
                tt = spline_design(aknots, [pivot, pivot], 4, derivs=[0, 1])
                basis[mask] = np.column_stack([np.ones(mask.sum()), v[mask] - pivot]) @ tt
        if not s["intercept"]:
            basis = basis[:, 1:]
        return _householder_qty(s["const"].T, basis.T)[2:].T
