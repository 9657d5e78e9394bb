"""Tweedie (compound Poisson-gamma, 1 < p < 2) log density, accurate over the whole range.

Standalone reference implementation for the Tweedie GLMM family (issue 13); not part of
the package. Run ``python tweedie_density.py`` (or pytest on this file) for the checks.

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


def tweedie_neg2loglik(y, mu, phi, p, weights=None, var_weights=None):
    """-2 log-likelihood, summed over observations.

    weights: glmmTMB's meaning (glmmTMB.cpp multiplies each observation's log density by
    weights(i): a frequency / likelihood weight).  var_weights: statsmodels' meaning,
    the dispersion of observation i is phi / var_weights[i].
    """
    phi = np.asarray(phi, dtype=float)
    if var_weights is not None:
        phi = phi / np.asarray(var_weights, dtype=float)
    ll = tweedie_logpdf(y, mu, phi, p)
    if weights is not None:
        ll = np.asarray(weights, dtype=float) * ll
    return -2 * float(np.sum(ll))


# ---------------------------------------------------------------------------------------
# checks: an mpmath series (60 digits) as the exact reference, glmmTMB's values
# (tests/results/reference.json, cases.tweedie.density_grid) and statsmodels
# ---------------------------------------------------------------------------------------

GRID_Y = [0, 1e-6, 0.01, 0.5, 1, 5, 50, 1e3]
GRID_MU = [1e-3, 0.1, 1, 10, 1e3]
GRID_P = [1.01, 1.1, 1.5, 1.9, 1.99]
GRID_PHI = [0.01, 0.5, 1, 10, 100]


def grid():
    """The check grid in R's expand.grid(mu, phi, p, y) order (mu varies fastest)."""
    y, p, phi, mu = np.meshgrid(GRID_Y, GRID_P, GRID_PHI, GRID_MU, indexing="ij")
    return y.ravel(), mu.ravel(), phi.ravel(), p.ravel()


def logpdf_mpmath(y, mu, phi, p, dps=60):
    """Exact (to ~dps digits) log density: the series summed in multiprecision."""
    import mpmath as mpm

    with mpm.workdps(dps):
        y, mu, phi, p = (mpm.mpf(float(v)) for v in (y, mu, phi, p))
        lam = mu ** (2 - p) / (phi * (2 - p))
        if y == 0:
            return float(-lam)
        alpha = (2 - p) / (p - 1)
        gam = phi * (p - 1) * mu ** (p - 1)
        ly, lg, ll = mpm.log(y), mpm.log(gam), mpm.log(lam)

        def t(n):
            n = mpm.mpf(n)
            return (-lam + n * ll - mpm.loggamma(n + 1) + (n * alpha - 1) * ly - y / gam
                    - n * alpha * lg - mpm.loggamma(n * alpha))

        # the terms are log-concave in n: climb from Dunn & Smyth's j_max to the peak
        n0 = max(1, int(float(y ** (2 - p) / (phi * (2 - p)))))
        while n0 > 1 and t(n0 - 1) > t(n0):
            n0 -= 1
        while t(n0 + 1) > t(n0):
            n0 += 1
        tmax = t(n0)
        terms = [tmax]
        for step in (1, -1):
            n = n0 + step
            while n >= 1:
                v = t(n)
                terms.append(v)
                if v < tmax - 120:
                    break
                n += step
        return float(tmax + mpm.log(mpm.fsum(mpm.exp(v - tmax) for v in terms)))


def _reference_grid():
    y, mu, phi, p = grid()
    exact = np.array([logpdf_mpmath(*args) for args in zip(y, mu, phi, p)])
    return y, mu, phi, p, exact


def _rel_err(value, exact):
    return np.abs(value - exact) / np.maximum(np.abs(exact), 1.0)


def test_logpdf_against_mpmath():
    y, mu, phi, p, exact = _reference_grid()
    got = tweedie_logpdf(y, mu, phi, p)
    assert np.all(np.isfinite(got))
    err = _rel_err(got, exact)
    assert err.max() < 1e-12, (err.max(), np.argmax(err))


def test_glmmtmb_grid():
    """glmmTMB's dtweedie (reference.json) and ours on the same grid."""
    import json
    from pathlib import Path

    ref = json.loads((Path(__file__).parent / "tests" / "results" / "reference.json")
                     .read_text())["cases"]["tweedie"]["density_grid"]
    y, mu, phi, p = grid()
    assert np.allclose(ref["y"], y) and np.allclose(ref["mu"], mu)
    assert np.allclose(ref["phi"], phi) and np.allclose(ref["p"], p)
    got = tweedie_logpdf(y, mu, phi, p)
    assert _rel_err(got, np.array(ref["logf"])).max() < 1e-8


def _moments(mu, phi, p):
    """P(Y=0) + mass of y > 0, mean and variance by numerical integration of our density."""
    from scipy.integrate import quad

    p0 = float(np.exp(tweedie_logpdf(0.0, mu, phi, p)))
    cuts = [0, mu / 10, mu, 5 * mu, 50 * mu, 500 * mu]

    def integral(k):
        def g(v):
            return (v - (mu if k == 2 else 0)) ** k * np.exp(tweedie_logpdf(v, mu, phi, p))

        return sum(quad(g, a, b, epsabs=0, epsrel=1e-12, limit=200)[0]
                   for a, b in zip(cuts[:-1], cuts[1:]))

    return p0 + integral(0), integral(1), integral(2) + mu ** 2 * p0


def test_moments():
    """Mass 1, mean mu, variance phi mu^p."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quad's roundoff notes at the far tail
        for mu, phi, p in [(1, 1, 1.5), (10, 0.5, 1.1), (0.1, 2, 1.9), (3, 0.2, 1.3)]:
            mass, mean, var = _moments(mu, phi, p)
            assert abs(mass - 1) < 1e-10
            assert abs(mean / mu - 1) < 1e-10
            assert abs(var / (phi * mu ** p) - 1) < 1e-9


def test_neg2loglik_weights():
    y = np.array([0.0, 0.3, 2.0, 7.5])
    mu = np.array([0.5, 1.0, 2.0, 4.0])
    ll = tweedie_logpdf(y, mu, 1.3, 1.4)
    w = np.array([1.0, 2.0, 0.5, 3.0])
    assert np.isclose(tweedie_neg2loglik(y, mu, 1.3, 1.4, weights=w), -2 * np.sum(w * ll))
    assert np.isclose(tweedie_neg2loglik(y, mu, 1.3, 1.4, var_weights=w),
                      -2 * np.sum(tweedie_logpdf(y, mu, 1.3 / w, 1.4)))


def report():
    """Statsmodels, glmmTMB (if reference.json has the grid) and ours against mpmath."""
    import json
    from pathlib import Path
    import warnings

    import statsmodels.api as sm

    y, mu, phi, p, exact = _reference_grid()
    ours = tweedie_logpdf(y, mu, phi, p)
    sm_vals = np.empty_like(exact)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(len(y)):
            fam = sm.families.Tweedie(var_power=p[i], eql=False)
            sm_vals[i] = fam.loglike_obs(np.array([y[i]]), np.array([mu[i]]), 1.0, phi[i])[0]
    columns = {"ours": ours, "statsmodels": sm_vals}
    path = Path(__file__).parent / "tests" / "results" / "reference.json"
    cases = json.loads(path.read_text())["cases"]
    if "tweedie" in cases:
        columns["glmmTMB"] = np.array(cases["tweedie"]["density_grid"]["logf"])
    for name, val in columns.items():
        finite = np.isfinite(val)
        rel = np.abs(val - exact) / np.abs(exact)
        bad = ~finite | (rel > 1e-8)
        print(f"{name}: non-finite {np.sum(~finite)}, rel err > 1e-8 at {np.sum(bad & finite)}, "
              f"max rel err (finite) {np.max(rel[finite]):.2e}, "
              f"max |err| (finite) {np.max(np.abs(val - exact)[finite]):.2e}")
        for i in np.nonzero(bad)[0][:200]:
            print(f"   y={y[i]:g} mu={mu[i]:g} phi={phi[i]:g} p={p[i]:g}: exact {exact[i]:.12g}"
                  f" {name} {val[i]:.12g}")


if __name__ == "__main__":
    report()
