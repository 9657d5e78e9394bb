"""R's ``scale`` and ``poly`` as patsy stateful transforms: the centre and scale,
or the orthogonal polynomials' coefficients, of the fitted data are kept for new
data.
"""

import numpy as np
from patsy import PatsyError

from .values import _float


class _Scale:
    """R's ``scale(x, center = TRUE, scale = TRUE)``, with the centre and scale of
    the fitted data kept for new data.

    ``center``: TRUE (column means), FALSE, or numbers. ``scale``: TRUE (the
    sample standard deviation, ddof = 1, of the centred column; without centring
    the root mean square ``sqrt(sum(x^2) / (n - 1))``), FALSE, or numbers.
    Missing values are left out, as R does.
    """

    def __init__(self):
        self._chunks = []
        self._args = None
        self._center = self._scale = None

    def memorize_chunk(self, x, center=True, scale=True):
        self._args = (center, scale)
        self._chunks.append(_float(x))

    def memorize_finish(self):
        center, scale = self._args
        x = np.concatenate([np.atleast_1d(c) for c in self._chunks], axis=0)
        x2 = x.reshape(x.shape[0], -1)
        self._chunks = None
        if isinstance(center, (bool, np.bool_)):
            cen = np.nanmean(x2, axis=0) if center else np.zeros(x2.shape[1])
        else:
            cen = np.broadcast_to(np.asarray(center, dtype=float).ravel(),
                                  (x2.shape[1],)).copy()
        xc = x2 - cen
        if isinstance(scale, (bool, np.bool_)):
            if scale:
                n = np.sum(~np.isnan(xc), axis=0)
                sc = np.sqrt(np.nansum(xc ** 2, axis=0) / np.maximum(1, n - 1))
            else:
                sc = np.ones(x2.shape[1])
        else:
            sc = np.broadcast_to(np.asarray(scale, dtype=float).ravel(),
                                 (x2.shape[1],)).copy()
        self._center, self._scale = cen, sc

    def transform(self, x, center=True, scale=True):
        v = _float(x)
        out = (v.reshape(v.shape[0], -1) - self._center) / self._scale
        return out.reshape(v.shape)


class _Poly:
    """R's ``poly(x, degree = 1, raw = FALSE)``.

    Orthogonal: R's algorithm (QR of the centred powers; ``alpha`` and ``norm2``
    kept, and values through the three-term recurrence of
    ``stats:::predict.poly``). ``raw = TRUE``: x, x^2, ..., x^degree.
    """

    def __init__(self):
        self._chunks = []
        self._degree = 1
        self._raw = False
        self._alpha = self._norm2 = None

    @staticmethod
    def _get_degree(args, degree):
        if args:
            if len(args) > 1 or np.ndim(args[0]) != 0:
                raise PatsyError("poly() of several variables (R's polym) is not supported: "
                                 "write the interactions of poly() terms explicitly")
            degree = args[0]
        if degree != int(degree) or int(degree) < 1:
            raise PatsyError(f"poly(): 'degree' must be a whole number >= 1, got {degree}")
        return int(degree)

    def memorize_chunk(self, x, *args, degree=1, raw=False):
        self._degree = self._get_degree(args, degree)
        self._raw = bool(raw)
        self._chunks.append(_float(x).ravel())

    def memorize_finish(self):
        x = np.concatenate(self._chunks)
        self._chunks = None
        if self._raw:
            return
        degree = self._degree
        x = x[~np.isnan(x)]
        if degree >= len(np.unique(x)):
            raise PatsyError("poly(): 'degree' must be less than number of unique points")
        xbar = x.mean()
        xc = x - xbar
        X = xc[:, None] ** np.arange(degree + 1)
        q, r = np.linalg.qr(X)
        Z = q * np.diag(r)
        norm2 = np.sum(Z ** 2, axis=0)
        self._alpha = (np.sum(xc[:, None] * Z ** 2, axis=0) / norm2 + xbar)[:degree]
        self._norm2 = np.concatenate([[1.0], norm2])

    def transform(self, x, *args, degree=1, raw=False):
        degree = self._degree
        v = _float(x).ravel()
        if self._raw:
            return v[:, None] ** np.arange(1, degree + 1)
        alpha, norm2 = self._alpha, self._norm2
        Z = np.ones((v.size, degree + 1))
        Z[:, 1] = v - alpha[0]
        for i in range(1, degree):
            Z[:, i + 1] = (v - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
        Z = Z / np.sqrt(norm2[1:])
        return Z[:, 1:]
