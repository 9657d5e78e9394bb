"""Count kernels: Poisson and negative binomial (NB2)."""

import numpy as np
from scipy import special

from .base import _LARGE_COUNT, _TINY, FamilyKernel, _xlog_ratio

__all__ = ["PoissonKernel", "NegativeBinomialKernel"]


class PoissonKernel(FamilyKernel):
    """Poisson counts.

    −2 log p is evaluated as the unit deviance plus −2 log p(y | μ = y), the latter
    computed once: y log μ and log y! are each ~1e7 for counts ~1e6, and their
    rounding, which would change from one evaluation to the next, exceeds the
    tolerances of PIRLS and of the optimizer. The deviance form has only the log
    of ratios near 1 (log1p), as lme4's deviance residuals.
    """

    name = "poisson"
    links = ("log", "identity", "sqrt")
    canonical_link = "log"
    separation = "count"
    integer_valued = True

    def __init__(self, family, data):
        super().__init__(family, data)
        y = self.y
        self._log_y_factorial = special.gammaln(y + 1)
        sat = 2.0 * self.weights * (y - special.xlogy(y, y) + self._log_y_factorial)
        self._y_pos = np.where(y > 0, y, 1.0)
        self._log_y_pos = np.log(self._y_pos)
        self._y_large = idx = np.flatnonzero(y > _LARGE_COUNT)
        # the deviance form expanded for small counts: 2w μ − 2w y log μ + const,
        # and what the deviance form needs on the rows with large counts
        self._a = 2.0 * self.weights * y
        self._b = 2.0 * self.weights
        self._c = self._a * (self._log_y_pos - 1.0) + sat
        self._large_rows = (y[idx], self._y_pos[idx], self._log_y_pos[idx], sat[idx])

    def check_support(self, endog_name):
        super().check_support(endog_name)
        if np.any(self.y < 0):
            raise ValueError(f"{self.name} response {endog_name!r} has negative values")

    def response_warnings(self, endog_name):
        if np.any(np.abs(self.y - np.round(self.y)) > 1e-8):
            return [f"non-integer counts in Poisson response {endog_name!r}"]
        return []

    def variance(self, mu, disp=None):
        return self.family.variance(mu)

    def irls_quantities(self, eta, mu, disp=1.0):
        if self.link == "log":  # μ' = V = μ
            return self.weights * mu, mu
        return super().irls_quantities(eta, mu, disp)

    def unit_deviance(self, mu, disp=None):
        y, w = self.y, self.weights
        return 2 * w * (special.xlogy(y, y / mu) - (y - mu))

    def neg2loglik_obs(self, mu, disp=1.0):
        # μ is positive for the log link, so plain logs are safe
        m = mu if mu.min(initial=1.0) > 0 else np.maximum(mu, _TINY)
        out = self._b * mu - self._a * np.log(m) + self._c
        if self._y_large.size:
            idx = self._y_large
            yl, yp, log_yp, sat = self._large_rows
            ylog = _xlog_ratio(yl, yp, log_yp, m[idx], np.arange(idx.size))
            out[idx] = 2.0 * self.weights[idx] * (ylog - (yl - mu[idx])) + sat
        return out

    def start_mu(self):
        return self.y + 0.1

    def simulate(self, mu, disp, rng):
        return rng.poisson(mu).astype(float)


class NegativeBinomialKernel(PoissonKernel):
    """Negative binomial (NB2), Var(y | u) = μ + α μ².

    Parameters
    ----------
    estimate_alpha : bool
        α is a parameter of the likelihood (``disp`` = α, packed as log α, as
        :func:`model.glmer_nb`), or fixed at the family's ``alpha``. At α = 0 the
        kernel is the Poisson (the boundary of the estimated α).
    """

    name = "negative.binomial"
    links = ("log", "identity", "sqrt")
    dispersion_names = ("alpha",)

    def __init__(self, family, data, estimate_alpha=False):
        super().__init__(family, data)
        self.estimate_alpha = bool(estimate_alpha)
        self.n_dispersion = int(self.estimate_alpha)
        self.nb_alpha = float(getattr(family, "alpha", 1.0))
        self._sat = (None, None, None, None)

    def alpha(self, disp=None):
        """α: ``disp`` when α is estimated, else the family's."""
        return disp if (self.estimate_alpha and disp is not None) else self.nb_alpha

    def variance(self, mu, disp=None):
        return mu + self.alpha(disp) * mu * mu

    def variance_deriv(self, mu, disp=None):
        return 1.0 + 2.0 * self.alpha(disp) * mu

    def irls_quantities(self, eta, mu, disp=1.0):
        if self.link == "log":
            return self.weights * mu / (1.0 + self.alpha(disp) * mu), mu
        return FamilyKernel.irls_quantities(self, eta, mu, disp)

    @property
    def canonical(self):
        return False

    def unit_deviance(self, mu, disp=None):
        a = self.alpha(disp)
        if a == 0:
            return super().unit_deviance(mu, disp)
        y, w = self.y, self.weights
        return 2 * w * (special.xlogy(y, y / mu) - (y + 1 / a) * np.log((1 + a * y) / (1 + a * mu)))

    def neg2loglik_obs(self, mu, disp=1.0):
        if self.alpha(disp) == 0:  # the limit α → 0 is the Poisson
            return super().neg2loglik_obs(mu, disp)
        y, w = self.y, self.weights
        r = 1.0 / self.alpha(disp)
        if self._sat[0] != r:
            sat = -2.0 * w * (special.gammaln(y + r) - special.gammaln(r)
                              - self._log_y_factorial + r * np.log(r / (r + y))
                              + special.xlogy(y, y / (r + y)))
            self._sat = (r, sat, np.log(y + r), np.flatnonzero(y + r > _LARGE_COUNT))
        _, sat, log_yr, yr_large = self._sat
        m = np.maximum(mu, _TINY)
        diff = y - mu if yr_large.size else None
        ylog = (_xlog_ratio(y, self._y_pos, self._log_y_pos, m, self._y_large)
                - _xlog_ratio(y + r, y + r, log_yr, mu + r, yr_large, diff))
        return 2.0 * w * ylog + sat

    def start_dispersion(self, mu, df_resid):
        """Moment estimate of α from Var(y) = μ + α μ²."""
        excess = np.sum(self.weights * ((self.y - mu) ** 2 - mu))
        return max(excess / np.sum(self.weights * mu ** 2), 0.01)

    def phi(self, disp):
        return float(self.alpha(disp))

    def sigma(self, disp):
        return 1.0

    def residual_variance(self, disp):
        return None

    def dispersion_labels(self):
        return [(".nbtheta", "theta (negative binomial shape)")][:self.n_dispersion]

    def report_dispersion(self, i, packed):
        """log α → the shape θ = 1/α (lme4's and glmmTMB's)."""
        return np.exp(-np.asarray(packed, dtype=float))

    def report_is_decreasing(self, i):
        return True

    def shape(self, disp):
        """θ = 1/α (∞ at the Poisson boundary)."""
        alpha = self.alpha(disp)
        return np.inf if alpha == 0 else 1.0 / alpha

    def simulate(self, mu, disp, rng):
        if self.alpha(disp) == 0:
            return super().simulate(mu, disp, rng)
        r = 1.0 / self.alpha(disp)
        return rng.negative_binomial(r, r / (r + mu)).astype(float)
