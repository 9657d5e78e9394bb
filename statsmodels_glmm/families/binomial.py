"""The binomial kernel: 0/1, proportions with trials, [successes, failures]."""

import numpy as np
from scipy import special

from .base import _EPS, _LARGE_COUNT, BOUNDED_LINKS, FamilyKernel, _xlog_ratio

__all__ = ["BinomialKernel"]


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
            self.binom_mult = np.where(self.m > 0, self.weights / np.where(
                self.m > 0, self.m, 1), 0.0)
        # counts m·y and trials m; R's binomial()$aic rounds them, but non-integer
        # counts (R warns) would then make the likelihood disagree with the IRLS
        # equations: the continuous extension (gammaln) is kept instead
        self._k = self.m * y
        self._n = self.m
        self._nk = self._n - self._k
        self._bernoulli = bool(np.all((self._n == 1) | (self.binom_mult == 0)))
        self._const = (special.gammaln(self._n + 1) - special.gammaln(self._k + 1)
                       - special.gammaln(self._n - self._k + 1))
        if not self._bernoulli:  # (0/1 data have a one-log fast path)
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
            return -2.0 * self.binom_mult * np.log(np.where(self._k > 0, mu, 1.0 - mu))
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
