"""Tweedie (compound Poisson-gamma, 1 < p < 2) log density, accurate over the whole range.

Why not ``statsmodels.genmod.families.Tweedie(eql=False).loglike_obs``: it computes
x = ((p-1) phi / y)**alpha / ((2-p) phi) in linear scale, which overflows for p near 1
(p = 1.01: -inf / +inf for most y), and scipy's ``log_wright_bessel`` is off by up to
~1e-6 relative for very large x (p = 1.1, phi = 0.01, y = mu = 1000: log f is -2.4156,
statsmodels gives -3.1145).

Here the density is the series f(y) = sum_{n>=1} Pois(n; lambda) Gamma(y; n alpha, gamma)
with lambda = mu^(2-p) / (phi (2-p)), alpha = (2-p)/(p-1), gamma = phi (p-1) mu^(p-1),
f(0) = exp(-lambda).  Each term is evaluated in Loader's (2000) saddle-point form
(stirlerr + bd0, as R's dpois/dgamma), so no large quantities cancel: the log terms
near the peak are O(log n), not O(n log n).  The terms are summed by log-sum-exp over
a window around the peak j_max = y^(2-p) / (phi (2-p)) (Dunn & Smyth 2005) whose half
width is ~12 standard deviations of n, widened until both ends are 40 log units below
the peak.  Vectorized over observations (numpy broadcasting of y, mu, phi, p).
"""

import numpy as np
from scipy.special import gammaln, logsumexp

__all__ = ["tweedie_logpdf"]

_LN_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_S = (1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188)


def _stirlerr(x):
    """log Gamma(x+1) - (x+1/2) log x + x - log sqrt(2 pi), for x > 0."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    small = x <= 15
    xs = x[small]
    out[small] = gammaln(xs + 1) - (xs + 0.5) * np.log(xs) + xs - _LN_SQRT_2PI
    xl = x[~small]
    x2 = 1 / (xl * xl)
    out[~small] = (_S[0] - (_S[1] - (_S[2] - (_S[3] - _S[4] * x2) * x2) * x2) * x2) / xl
    return out


def _bd0(x, m):
    """x log(x/m) + m - x without cancellation (Loader 2000), x > 0, m > 0."""
    x, m = np.broadcast_arrays(np.asarray(x, float), np.asarray(m, float))
    out = x * np.log(x / m) + m - x
    near = np.abs(x - m) < 0.1 * (x + m)
    if np.any(near):
        xn, mn = x[near], m[near]
        v = (xn - mn) / (xn + mn)
        s = (xn - mn) * v
        ej = 2 * xn * v
        v2 = v * v
        for j in range(1, 20):  # |v| < 0.1: converged to double precision by j ~ 8
            ej = ej * v2
            s = s + ej / (2 * j + 1)
        out[near] = s
    return out


def _log_term(n, y, lam, alpha, z):
    """log[Pois(n; lam) Gamma(y; shape n alpha, scale y / z)], n >= 1, y > 0."""
    a = n * alpha
    log_pois = -_stirlerr(n) - _bd0(n, lam) - _LN_SQRT_2PI - 0.5 * np.log(n)
    # Gamma(y; a, scale) = dpois_raw(a, y/scale) * a / y
    log_gam = -_stirlerr(a) - _bd0(a, z) - _LN_SQRT_2PI - 0.5 * np.log(a) + np.log(a / y)
    return log_pois + log_gam


def _log_series(y, lam, alpha, z, jmax, half):
    """log sum_n exp(term n) over [lo, hi] windows; returns value and edge gaps."""
    lo = np.maximum(1.0, np.floor(jmax - half))
    hi = np.ceil(jmax + half)
    out = np.empty(y.shape)
    gap = np.empty(y.shape)
    width = (hi - lo + 1).astype(np.int64)
    # group by width (rounded up to a power of 2) to keep the 2-d blocks compact
    bucket = np.ceil(np.log2(width)).astype(int)
    for b in np.unique(bucket):
        idx = np.nonzero(bucket == b)[0]
        k = np.arange(2 ** b, dtype=float)
        n = lo[idx, None] + k[None, :]
        valid = n <= hi[idx, None]
        n = np.where(valid, n, lo[idx, None])
        t = _log_term(n, y[idx, None], lam[idx, None], alpha[idx, None], z[idx, None])
        t = np.where(valid, t, -np.inf)
        out[idx] = logsumexp(t, axis=1)
        tmax = t.max(axis=1)
        first = t[:, 0]
        last = t[np.arange(len(idx)), width[idx] - 1]
        # a window touching n = 1 needs no check on the left
        left_gap = np.where(lo[idx] <= 1, np.inf, tmax - first)
        gap[idx] = np.minimum(left_gap, tmax - last)
    return out, gap


def tweedie_logpdf(y, mu, phi, p):
    """Elementwise log density of the Tweedie distribution, Var(Y) = phi mu^p, 1 < p < 2.

    Broadcasts y, mu, phi and p.  y == 0 gives -mu^(2-p)/(phi (2-p)); y < 0 gives -inf.
    """
    y, mu, phi, p = (np.asarray(v, dtype=float) for v in (y, mu, phi, p))
    y, mu, phi, p = np.broadcast_arrays(y, mu, phi, p)
    if np.any((p <= 1) | (p >= 2)):
        raise ValueError("tweedie_logpdf needs 1 < p < 2")
    shape = y.shape
    y, mu, phi, p = (v.ravel() for v in (y, mu, phi, p))
    lam = mu ** (2 - p) / (phi * (2 - p))
    out = np.where(y == 0, -lam, -np.inf)
    pos = y > 0
    if np.any(pos):
        yp, mp_, php, pp, lp = y[pos], mu[pos], phi[pos], p[pos], lam[pos]
        alpha = (2 - pp) / (pp - 1)
        # y / gamma, gamma = phi (p-1) mu^(p-1): the gamma part's Poisson mean
        z = yp / (php * (pp - 1) * mp_ ** (pp - 1))
        jmax = np.maximum(1.0, yp ** (2 - pp) / (php * (2 - pp)))
        half = np.ceil(12 * np.sqrt(jmax / (1 + alpha))) + 15
        val = np.empty(yp.shape)
        todo = np.arange(yp.size)
        for _ in range(60):
            v, gap = _log_series(yp[todo], lp[todo], alpha[todo], z[todo], jmax[todo],
                                 half[todo])
            val[todo] = v
            ok = gap > 40
            if ok.all():
                break
            todo = todo[~ok]
            half[todo] *= 2
        else:
            raise RuntimeError("tweedie series window did not converge")
        out[pos] = val
    return out.reshape(shape)
