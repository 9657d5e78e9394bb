"""The GLMM response: y, binomial trials, prior weights and the family's exact
conditional log-likelihood.

Every binomial form — 0/1 (or boolean, two-level categorical), a two-column
``[successes, failures]`` response, or a proportion with ``weights=`` trials —
is normalised to a proportion ``y``, GLM weights ``w`` (trials times prior
weights) and R's ``m`` (``n`` trials if any exceeds 1, else the weights), so
that all three give the same fit and the same log-likelihood, as in R's
``binomial()$aic``.

The conditional log-likelihood keeps every normalizing constant (binomial
coefficients, ``log y!``, the Gamma and Gaussian constants). For families with
a dispersion ``phi`` the prior weights are precision weights (dispersion
``phi / w``), the GLM convention used by PIRLS; the dispersion is a real
parameter of the likelihood, not lme4's plug-in estimate.
"""

import copy

import numpy as np
from scipy import special
import statsmodels.genmod.families as fam

__all__ = ["Response", "family_name", "link_name", "has_dispersion"]

_EPS = np.finfo(float).eps
_TINY = np.finfo(float).tiny
_ETA_MAX = 700.0


# counts above this get log(a / b) as log1p((a − b) / b) in the deviance form of the
# likelihood: a count x multiplies the ~1e-16 rounding of log(a / b)
_LARGE_COUNT = 1e3


def _xlog_ratio(x, a, log_a, b, large, diff=None):
    """x · log(a / b) for counts x ≥ 0, with b > 0 and a > 0 where x > 0.

    ``a`` is data, ``log_a`` its log, precomputed; both must be finite where x = 0
    (e.g. a = 1), which then gives 0. At the indices ``large`` (x > _LARGE_COUNT)
    the ratio is taken as log1p of the relative difference, ``diff`` = a − b if
    given (better when a and b are themselves rounded differences such as 1 − y),
    or a plain log far from 1.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = x * (log_a - np.log(b))
        if large.size:
            al, bl = a[large], b[large]
            r = ((al - bl) if diff is None else diff[large]) / bl
            out[large] = x[large] * np.where(r < -0.5, np.log(al / bl), np.log1p(r))
    return out


def family_name(family):
    """R's name of the family: binomial, poisson, Gamma, gaussian, inverse.gaussian."""
    names = {
        fam.Binomial: "binomial",
        fam.Poisson: "poisson",
        fam.Gamma: "Gamma",
        fam.Gaussian: "gaussian",
        fam.InverseGaussian: "inverse.gaussian",
        fam.NegativeBinomial: "negative.binomial",
    }
    for cls, name in names.items():
        if type(family) is cls:
            return name
    raise ValueError(
        f"family {type(family).__name__} is not supported; use Binomial, Poisson, Gamma, "
        "Gaussian, InverseGaussian or NegativeBinomial from statsmodels.api.families"
    )


def link_name(link):
    """R's name of a statsmodels link object."""
    names = {
        "Logit": "logit", "Probit": "probit", "CLogLog": "cloglog", "Log": "log",
        "Identity": "identity", "InversePower": "inverse", "Sqrt": "sqrt",
        "InverseSquared": "1/mu^2", "Cauchy": "cauchit", "LogLog": "loglog",
    }
    return names.get(type(link).__name__, type(link).__name__)


def has_dispersion(family):
    """True for the families whose likelihood has a free dispersion parameter (for the
    negative binomial: its α, when estimated, see :func:`model.glmer_nb`)."""
    name = family_name(family)
    if name == "negative.binomial":
        return bool(getattr(family, "estimate_alpha", False))
    return name in ("Gamma", "gaussian", "inverse.gaussian")


def _as_float(values, what):
    arr = np.asarray(values)
    if arr.dtype == bool:
        return arr.astype(float)
    try:
        return arr.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numeric, got dtype {arr.dtype}") from None


class Response:
    """Response vector and family callbacks used by PIRLS and the likelihood.

    Parameters
    ----------
    family : statsmodels family instance
        Copied; the caller's object is never modified.
    endog : array_like, shape (n,) or (n, 2)
        The response; two columns mean ``[successes, failures]`` (binomial).
    prior_weights : array_like or None
    offset : array_like or None
    endog_name : str
        Used in error messages.
    """

    def __init__(self, family, endog, prior_weights=None, offset=None, endog_name="y"):
        self.family = copy.deepcopy(family)
        self.name = family_name(self.family)
        self.link = link_name(self.family.link)
        y = _as_float(endog, f"response {endog_name!r}")
        n = y.shape[0]
        pw = np.ones(n) if prior_weights is None else _as_float(prior_weights, "weights")
        if pw.shape != (n,):
            raise ValueError(f"weights has length {pw.size}, expected {n} (one per observation)")
        if not np.all(np.isfinite(pw)) or np.any(pw < 0):
            raise ValueError("weights must be finite and non-negative")
        if n and not np.any(pw > 0):
            raise ValueError("weights are all zero: no observation contributes to the fit")
        self.offset = np.zeros(n) if offset is None else _as_float(offset, "offset")
        if self.offset.shape != (n,):
            raise ValueError(f"offset has length {self.offset.size}, expected {n}")
        self.prior_weights = pw
        if y.ndim == 2:
            if y.shape[1] != 2 or self.name != "binomial":
                raise ValueError(
                    "a two-column response (successes, failures) needs the Binomial family"
                )
            successes, failures = y[:, 0], y[:, 1]
            if np.any(successes < 0) or np.any(failures < 0):
                raise ValueError(f"response {endog_name!r}: counts must be non-negative")
            trials = successes + failures
            with np.errstate(invalid="ignore", divide="ignore"):
                y = np.where(trials > 0, successes / np.where(trials > 0, trials, 1), 0.0)
        elif y.ndim == 1:
            trials = np.ones(n)
        else:
            raise ValueError(f"response {endog_name!r} must be one or two columns")
        self.y = y
        self.trials = trials
        self.weights = trials * pw
        self._check_support(endog_name)
        if self.name == "binomial":
            self.m = trials if np.any(trials > 1) else self.weights
            with np.errstate(invalid="ignore", divide="ignore"):
                self.binom_mult = np.where(self.m > 0, self.weights / np.where(
                    self.m > 0, self.m, 1), 0.0)
            # counts m·y and trials m; R's binomial()$aic rounds them, but non-integer
            # counts (R warns) would then make the likelihood disagree with the IRLS
            # equations: the continuous extension (gammaln) is kept instead
            self._binom_k = self.m * y
            self._binom_n = self.m
            self._binom_nk = self._binom_n - self._binom_k
            self._bernoulli = bool(np.all((self._binom_n == 1) | (self.binom_mult == 0)))
            self._binom_const = (special.gammaln(self._binom_n + 1)
                                 - special.gammaln(self._binom_k + 1)
                                 - special.gammaln(self._binom_n - self._binom_k + 1))
            if not self._bernoulli:  # (0/1 data have a one-log fast path)
                self._binomial_deviance_form(y)
        elif self.name in ("poisson", "negative.binomial"):
            self._pois_const = special.gammaln(y + 1)
            sat = 2.0 * self.weights * (y - special.xlogy(y, y) + self._pois_const)
            y_pos = np.where(y > 0, y, 1.0)
            log_y_pos = np.log(y_pos)
            self._y_large = idx = np.flatnonzero(y > _LARGE_COUNT)
            # the deviance form expanded for small counts: 2w μ − 2w y log μ + const,
            # and what the deviance form needs on the rows with large counts
            self._pois_a = 2.0 * self.weights * y
            self._pois_b = 2.0 * self.weights
            self._pois_c = self._pois_a * (log_y_pos - 1.0) + sat
            self._pois_large_rows = (y[idx], y_pos[idx], log_y_pos[idx], sat[idx])
            if self.name == "negative.binomial":
                self._y_pos, self._log_y_pos = y_pos, log_y_pos
                self._nb_sat = (None, None, None, None)
        self.estimate_alpha = bool(getattr(self.family, "estimate_alpha", False))
        self.nb_alpha = float(getattr(self.family, "alpha", 1.0))

    def _binomial_deviance_form(self, y):
        """Precomputed pieces of −2 log p for binomial counts (see neg2loglik_obs):
        the deviance form expanded, −2 m k log μ − 2 m (n − k) log(1 − μ) + const,
        for rows with small counts (as few passes over the data as the plain form),
        and, for the rows with large counts, what the deviance form needs there."""
        k, nk, mult = self._binom_k, self._binom_nk, self.binom_mult
        # −2 log p(y | μ = y), the saturated model
        sat = -2.0 * (self._binom_const + special.xlogy(k, y) + special.xlogy(nk, 1.0 - y))
        y_pos = np.where(k > 0, y, 1.0)
        ycomp_pos = np.where(nk > 0, 1.0 - y, 1.0)
        self._binom_a, self._binom_b = 2.0 * mult * k, 2.0 * mult * nk
        self._binom_c = (self._binom_a * np.log(y_pos) + self._binom_b * np.log(ycomp_pos)
                         + mult * sat)
        idx = np.flatnonzero((k > _LARGE_COUNT) | (nk > _LARGE_COUNT))
        self._binom_large = idx
        self._binom_large_rows = (k[idx], nk[idx], y[idx], y_pos[idx], np.log(y_pos[idx]),
                                  ycomp_pos[idx], np.log(ycomp_pos[idx]), mult[idx], sat[idx])

    @property
    def canonical(self):
        """True for a canonical link, where observed and expected information agree."""
        return (self.name, self.link) in {
            ("binomial", "logit"), ("poisson", "log"), ("gaussian", "identity"),
            ("Gamma", "inverse"), ("inverse.gaussian", "1/mu^2")}

    @property
    def nobs(self):
        return self.y.shape[0]

    def _check_support(self, endog_name):
        y = self.y
        if not np.all(np.isfinite(y)):
            raise ValueError(f"response {endog_name!r} has non-finite values")
        if self.name == "binomial" and (np.any(y < 0) or np.any(y > 1)):
            raise ValueError(
                f"binomial response {endog_name!r} must lie in [0, 1] (or use "
                "cbind(successes, failures) for counts)"
            )
        if self.name in ("poisson", "negative.binomial") and np.any(y < 0):
            raise ValueError(f"{self.name} response {endog_name!r} has negative values")
        if self.name in ("Gamma", "inverse.gaussian") and np.any(y <= 0):
            raise ValueError(f"{self.name} response {endog_name!r} must be positive")

    # -- mean function -------------------------------------------------------
    def mu(self, eta):
        """Inverse link, clamped away from the boundary of the mean's range."""
        link = self.family.link
        if self.link == "log":
            return np.exp(np.minimum(eta, _ETA_MAX))
        mu = special.expit(eta) if self.link == "logit" else link.inverse(eta)
        if mu is eta or np.shares_memory(mu, eta):  # identity link returns its input
            mu = mu.copy()
        if self.name == "binomial":
            np.maximum(mu, _EPS, out=mu)
            np.minimum(mu, 1.0 - _EPS, out=mu)
        return mu

    def mu_eta(self, eta):
        """dμ/dη, floored at machine epsilon in absolute value as R does."""
        if self.link == "log":
            return np.exp(np.minimum(eta, _ETA_MAX))
        d = self.family.link.inverse_deriv(eta)
        return np.where(np.abs(d) < _EPS, np.where(d < 0, -_EPS, _EPS), d)

    def alpha(self, phi=None):
        """The negative binomial α: ``phi`` when α is estimated, else the family's."""
        return phi if (self.estimate_alpha and phi is not None) else self.nb_alpha

    def variance(self, mu, phi=None):
        if self.name == "binomial":
            return np.maximum(mu * (1.0 - mu), _EPS)
        if self.name == "negative.binomial":
            return mu + self.alpha(phi) * mu * mu
        return self.family.variance(mu)

    def _scale(self, phi):
        """The factor dividing the weights: φ for dispersion families, 1 for NB."""
        return 1.0 if self.name == "negative.binomial" else phi

    def working_weights(self, eta, mu, phi=1.0):
        """PIRLS (Fisher scoring) weights w μ'(η)² / (φ V(μ))."""
        return self.irls_quantities(eta, mu, phi)[0]

    def irls_quantities(self, eta, mu, phi=1.0):
        """(weights w μ'² / (φ V), μ'(η)) for one PIRLS step, in few passes.

        The common pairs get closed forms: binomial-logit (μ' = V = μ(1−μ)) and
        the log link (μ' = μ).
        """
        if self.name == "binomial" and self.link == "logit":
            d = np.maximum(mu * (1.0 - mu), _EPS)
            return self.weights * d if phi == 1.0 else self.weights * d / phi, d
        if self.link == "log":
            d = mu
            if self.name == "poisson":
                w = self.weights * mu
            elif self.name == "Gamma":
                w = self.weights * np.ones_like(mu)
            elif self.name == "negative.binomial":
                return self.weights * mu / (1.0 + self.alpha(phi) * mu), d
            else:
                w = self.weights * d * d / self.variance(mu)
            return (w if phi == 1.0 else w / phi), d
        d = self.mu_eta(eta)
        return self.weights * d * d / (self._scale(phi) * self.variance(mu, phi)), d

    def observed_weights(self, eta, mu, phi=1.0):
        """Observed information −∂² log p(y_i | η_i)/∂η_i², the weights of the true
        Laplace approximation. Equal to :meth:`working_weights` for canonical links.
        """
        d1 = self.mu_eta(eta)
        var = self.variance(mu, phi)
        if self.name == "binomial":
            dvar = 1.0 - 2.0 * mu
        elif self.name == "Gaussian" or self.name == "gaussian":
            dvar = np.zeros_like(mu)
        elif self.name == "negative.binomial":
            dvar = 1.0 + 2.0 * self.alpha(phi) * mu
        else:
            dvar = self.family.variance.deriv(mu)
        if self.link == "log":
            d2 = d1
        else:
            d2 = self.family.link.inverse_deriv2(eta)
        correction = (self.y - mu) * (d2 / var - d1 * d1 * dvar / (var * var))
        return self.weights / self._scale(phi) * (d1 * d1 / var - correction)

    # -- likelihood ------------------------------------------------------------
    def unit_deviance(self, mu, phi=None):
        """Weighted unit deviances w_i d(y_i, μ_i) (their sum is the GLM deviance)."""
        y, w = self.y, self.weights
        if self.name == "negative.binomial" and self.alpha(phi) > 0:
            a = self.alpha(phi)
            return 2 * w * (special.xlogy(y, y / mu)
                            - (y + 1 / a) * np.log((1 + a * y) / (1 + a * mu)))
        if self.name == "binomial":
            return 2 * w * (special.xlogy(y, y / mu) + special.xlogy(1 - y, (1 - y) / (1 - mu)))
        if self.name in ("poisson", "negative.binomial"):  # NB with α = 0: Poisson
            return 2 * w * (special.xlogy(y, y / mu) - (y - mu))
        if self.name == "Gamma":
            return 2 * w * (-np.log(y / mu) + (y - mu) / mu)
        if self.name == "inverse.gaussian":
            return w * (y - mu) ** 2 / (y * mu * mu)
        return w * (y - mu) ** 2

    def neg2loglik_obs(self, mu, phi=1.0):
        """−2 log p(y_i | μ_i), with every normalizing constant.

        Binomial follows R's ``binomial()$aic`` weighting rule, so the 0/1,
        proportion-with-weights and two-column forms agree.

        Counts (Poisson, negative binomial, binomial with trials) are evaluated as
        the unit deviance plus −2 log p(y_i | μ_i = y_i), the latter computed once:
        y log μ and log y! are each ~1e7 for counts ~1e6 (~1e10 for 1e9 trials),
        and their rounding, which would change from one evaluation to the next,
        exceeds the tolerances of PIRLS and of the optimizer. The deviance form
        has only the log of ratios near 1 (log1p), as lme4's deviance residuals.
        """
        y, w = self.y, self.weights
        # μ is clamped inside (0, 1) for the binomial and is positive for the
        # log link, so plain logs are safe (and ~10x faster than xlogy)
        if self.name == "binomial":
            if self._bernoulli:  # one log per row: log μ or log(1 − μ)
                return -2.0 * self.binom_mult * np.log(np.where(self._binom_k > 0, mu, 1.0 - mu))
            out = self._binom_c - self._binom_a * np.log(mu) - self._binom_b * np.log1p(-mu)
            if self._binom_large.size:
                idx = self._binom_large
                k, nk, yl, yp, log_yp, cp, log_cp, mult, sat = self._binom_large_rows
                m = mu[idx]
                dev = (_xlog_ratio(k, yp, log_yp, m, np.flatnonzero(k > _LARGE_COUNT))
                       + _xlog_ratio(nk, cp, log_cp, 1.0 - m, np.flatnonzero(nk > _LARGE_COUNT),
                                     m - yl))
                out[idx] = mult * (2.0 * dev + sat)
            return out
        if self.name == "poisson" or (self.name == "negative.binomial"
                                      and self.alpha(phi) == 0):
            # (the negative binomial's limit α → 0 is the Poisson)
            m = mu if mu.min(initial=1.0) > 0 else np.maximum(mu, _TINY)
            out = self._pois_b * mu - self._pois_a * np.log(m) + self._pois_c
            if self._y_large.size:
                idx = self._y_large
                yl, yp, log_yp, sat = self._pois_large_rows
                ylog = _xlog_ratio(yl, yp, log_yp, m[idx], np.arange(idx.size))
                out[idx] = 2.0 * w[idx] * (ylog - (yl - mu[idx])) + sat
            return out
        if self.name == "negative.binomial":
            r = 1.0 / self.alpha(phi)
            if self._nb_sat[0] != r:
                sat = -2.0 * w * (special.gammaln(y + r) - special.gammaln(r)
                                  - self._pois_const + r * np.log(r / (r + y))
                                  + special.xlogy(y, y / (r + y)))
                self._nb_sat = (r, sat, np.log(y + r), np.flatnonzero(y + r > _LARGE_COUNT))
            _, sat, log_yr, yr_large = self._nb_sat
            m = np.maximum(mu, _TINY)
            diff = y - mu if yr_large.size else None
            ylog = (_xlog_ratio(y, self._y_pos, self._log_y_pos, m, self._y_large)
                    - _xlog_ratio(y + r, y + r, log_yr, mu + r, yr_large, diff))
            return 2.0 * w * ylog + sat
        if self.name == "Gamma":
            shape = w / phi
            ll = (shape * np.log(shape * y / mu) - shape * y / mu - np.log(y)
                  - special.gammaln(shape))
            return -2.0 * np.where(w > 0, ll, 0.0)
        if self.name == "inverse.gaussian":
            ll = 0.5 * (np.log(w / (2 * np.pi * phi * y ** 3))
                        - w * (y - mu) ** 2 / (phi * y * mu * mu))
            return -2.0 * np.where(w > 0, ll, 0.0)
        # gaussian
        ll = -0.5 * (np.log(2 * np.pi * phi / w) + w * (y - mu) ** 2 / phi)
        return -2.0 * np.where(w > 0, ll, 0.0)

    def start_eta(self):
        """Starting linear predictor (without offset), R's ``mustart`` rules."""
        y = self.y
        if self.name == "binomial":
            mustart = (self.weights * y + 0.5) / (self.weights + 1)
        elif self.name in ("poisson", "negative.binomial"):
            mustart = y + 0.1
        elif self.name == "Gamma" or self.name == "inverse.gaussian":
            mustart = np.full_like(y, np.average(y, weights=self.weights))
        else:
            mustart = y
        return self.family.link(mustart)
