"""The binomial kernel: 0/1, proportions with trials, [successes, failures]."""

import numpy as np
from scipy import special

from ..chunked import CHUNK_ROWS
from .base import _EPS, _LARGE_COUNT, BOUNDED_LINKS, FamilyKernel, _xlog_ratio

__all__ = ["BinomialKernel"]

# The fused form is used while every |η| is below this: the plain form's
# log(1 − μ) of a rounded μ near 1 (and its clamping of μ to [ε, 1 − ε]) then
# agrees with it to ~1e-10 relative per row; beyond, where fits degenerate, the
# plain form is kept so that every response form gives the same numbers
_FUSED_ETA_MAX = 15.0


def _logit_bernoulli(eta, y, mult):
    """(μ, −2 log p(y | μ)) for 0/1 data and the logit link, from one exp and one
    log per row (expit and then log μ or log(1 − μ) take two of each).

    With e = exp(−|η|): μ = 1/(1 + e) for η ≥ 0 and e/(1 + e) below, and
    −log p(y | η) = log(1 + e) + max(η, 0) − y η, where max(η, 0) − y η is exact
    for y in {0, 1} (0, η or −η). The log of 1 + e rather than log1p(e) (slower here) errs by
    ~1e-16 in absolute value, as log μ of the rounded μ does. Returns None when
    some |η| reaches ``_FUSED_ETA_MAX``.

    The rows are taken in cache-sized blocks with two scratch buffers: a numpy
    expression over all rows would allocate (and page in) a fresh n-vector for
    every intermediate.
    """
    n = eta.shape[0]
    mu, nll = np.empty(n), np.empty(n)
    e, r = np.empty(min(n, CHUNK_ROWS)), np.empty(min(n, CHUNK_ROWS))
    for start in range(0, n, CHUNK_ROWS):
        rows = slice(start, min(start + CHUNK_ROWS, n))
        et, m, ll = eta[rows], mu[rows], nll[rows]
        eb, rb = e[:ll.shape[0]], r[:ll.shape[0]]
        np.abs(et, out=eb)
        if eb.max(initial=0.0) >= _FUSED_ETA_MAX:
            return None
        np.negative(eb, out=eb)
        np.exp(eb, out=eb)
        np.add(eb, 1.0, out=ll)
        np.reciprocal(ll, out=m)
        np.log(ll, out=ll)
        # h = 1 for η ≥ 0, else 0 (copysign: a masked copy or heaviside is slower)
        np.copysign(0.5, et, out=rb)
        rb += 0.5
        np.maximum(eb, rb, out=eb)  # the numerator: 1 for η ≥ 0, else e
        m *= eb
        rb -= y[rows]
        rb *= et  # (h − y) η = max(η, 0) − y η, exactly
        ll += rb
    nll *= 2.0 * mult
    return mu, nll


class BinomialKernel(FamilyKernel):
    """Binomial: 0/1, proportions with trials, or [successes, failures].

    Follows R's ``binomial()$aic`` weighting rule (``m`` = trials if any exceeds 1,
    else the weights), so that the three forms give the same log-likelihood.
    """

    name = "binomial"
    links = BOUNDED_LINKS + ("log", "identity")
    canonical_link = "logit"
    separation = "probability"
    integer_valued = True

    def __init__(self, family, data):
        super().__init__(family, data)
        y, trials = self.y, self.trials
        self.m = trials if np.any(trials > 1) else self.weights
        with np.errstate(invalid="ignore", divide="ignore"):
            mult = np.where(self.m > 0, self.weights / np.where(self.m > 0, self.m, 1), 0.0)
        # counts m·y and trials m; R's binomial()$aic rounds them, but non-integer
        # counts (R warns) would then make the likelihood disagree with the IRLS
        # equations: the continuous extension (gammaln) is kept instead
        k = self.m * y
        self._bernoulli = bool(np.all((self.m == 1) | (mult == 0)))
        if self._bernoulli:
            # 0/1 data need only y (not the four float vectors of the counts'
            # form) and the multiplier, a scalar for unit weights
            self.binom_mult = 1.0 if np.all(mult == 1.0) else mult
            return
        self.binom_mult, self._k, self._n = mult, k, self.m
        self._nk = self._n - self._k
        self._const = (special.gammaln(self._n + 1) - special.gammaln(self._k + 1)
                       - special.gammaln(self._n - self._k + 1))
        self._deviance_form(y)

    def _deviance_form(self, y):
        """Precomputed pieces of −2 log p for binomial counts (see neg2loglik_obs):
        the deviance form expanded, −2 m k log μ − 2 m (n − k) log(1 − μ) + const,
        for rows with small counts (as few passes over the data as the plain form),
        and, for the rows with large counts, what the deviance form needs there."""
        k, nk, mult = self._k, self._nk, self.binom_mult
        # −2 log p(y | μ = y), the saturated model
        sat = -2.0 * (self._const + special.xlogy(k, y) + special.xlogy(nk, 1.0 - y))
        y_pos = np.where(k > 0, y, 1.0)
        ycomp_pos = np.where(nk > 0, 1.0 - y, 1.0)
        self._a, self._b = 2.0 * mult * k, 2.0 * mult * nk
        self._c = self._a * np.log(y_pos) + self._b * np.log(ycomp_pos) + mult * sat
        idx = np.flatnonzero((k > _LARGE_COUNT) | (nk > _LARGE_COUNT))
        self._large = idx
        self._large_rows = (k[idx], nk[idx], y[idx], y_pos[idx], np.log(y_pos[idx]),
                            ycomp_pos[idx], np.log(ycomp_pos[idx]), mult[idx], sat[idx])

    def check_support(self, endog_name):
        super().check_support(endog_name)
        if np.any(self.y < 0) or np.any(self.y > 1):
            raise ValueError(
                f"binomial response {endog_name!r} must lie in [0, 1] (or use "
                "cbind(successes, failures) for counts)")

    def response_warnings(self, endog_name):
        counts = self.m * self.y  # rounded to ~1e-16 relative: with 1e9 trials, ~1e-7
        if np.any(np.abs(counts - np.round(counts)) > 1e-8 * np.maximum(counts, 1.0)):
            return [f"non-integer numbers of successes in binomial response {endog_name!r}"]
        return []

    @property
    def is_bernoulli(self):
        return bool(np.all(self.trials == 1) and np.all(self.weights <= 1))

    def mu(self, eta):
        if self.link == "log":  # (unclamped, as before: lme4's log-binomial)
            return super().mu(eta)
        mu = special.expit(eta) if self.link == "logit" else super().mu(eta)
        np.maximum(mu, _EPS, out=mu)
        np.minimum(mu, 1.0 - _EPS, out=mu)
        return mu

    def variance(self, mu, disp=None):
        return np.maximum(mu * (1.0 - mu), _EPS)

    def variance_deriv(self, mu, disp=None):
        return 1.0 - 2.0 * mu

    def irls_quantities(self, eta, mu, disp=1.0):
        if self.link == "logit":  # μ' = V = μ(1 − μ)
            d = np.maximum(mu * (1.0 - mu), _EPS)
            return self.weights * d, d
        return super().irls_quantities(eta, mu, disp)

    def unit_deviance(self, mu, disp=None):
        y, w = self.y, self.weights
        return 2 * w * (special.xlogy(y, y / mu) + special.xlogy(1 - y, (1 - y) / (1 - mu)))

    def neg2loglik_obs(self, mu, disp=1.0):
        """Counts with trials are evaluated in the deviance form: the unit deviance
        plus −2 log p(y | μ = y), computed once (see PoissonKernel)."""
        # μ is clamped inside (0, 1), so plain logs are safe (and ~10x faster than xlogy)
        if self._bernoulli:  # one log per row: log μ or log(1 − μ)
            return -2.0 * self.binom_mult * np.log(np.where(self.y > 0, mu, 1.0 - mu))
        out = self._c - self._a * np.log(mu) - self._b * np.log1p(-mu)
        if self._large.size:
            idx = self._large
            k, nk, yl, yp, log_yp, cp, log_cp, mult, sat = self._large_rows
            m = mu[idx]
            dev = (_xlog_ratio(k, yp, log_yp, m, np.flatnonzero(k > _LARGE_COUNT))
                   + _xlog_ratio(nk, cp, log_cp, 1.0 - m, np.flatnonzero(nk > _LARGE_COUNT),
                                 m - yl))
            out[idx] = mult * (2.0 * dev + sat)
        return out

    def mu_and_neg2ll(self, eta, disp=1.0):
        # on large data only: small fits keep the rounding of the plain form, which
        # degenerate (flat) likelihoods are sensitive to
        if self.link == "logit" and self._bernoulli and eta.shape[0] > CHUNK_ROWS:
            fused = _logit_bernoulli(eta, self.y, self.binom_mult)
            if fused is not None:
                return fused
        return super().mu_and_neg2ll(eta, disp)

    def start_mu(self):
        return (self.weights * self.y + 0.5) / (self.weights + 1)

    def count_scale(self, values):
        """Successes m · y (rounded where they are integers up to rounding)."""
        values = np.asarray(values, dtype=float)
        counts = values * self.m.reshape((-1,) + (1,) * (values.ndim - 1))
        whole = np.round(counts)
        return np.where(np.abs(counts - whole) <= 1e-8 * np.maximum(whole, 1.0), whole,
                        counts)

    def simulate(self, mu, disp, rng):
        """Proportions, keeping the fit's trials."""
        trials = np.round(self.m).astype(np.int64) if np.any(self.trials > 1) or \
            np.any(self.weights != 1) else np.ones(mu.size, dtype=np.int64)
        successes = rng.binomial(trials, mu)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(trials > 0, successes / np.maximum(trials, 1), 0.0)
