"""Family kernels: everything the fit needs to know about a distribution.

One small class per family (lme4's ``glmDist`` subclasses in ``src/glmFamily.h``,
glum's ``ExponentialDispersionModel``), chosen once from the statsmodels family
by :func:`kernel_for`:

- the mean function μ(η), μ'(η) and the variance V(μ);
- the PIRLS weights: Fisher (expected) and observed information;
- the unit deviance and the exact −2 log p(y | μ) with every normalizing constant;
- R's starting values (``mustart``) and a moment estimate of the dispersion;
- the dispersion parameters: how many, their packed (unconstrained) form, their
  names and reported values;
- simulation of new responses.

Every method receives the dispersion as ``disp``, an opaque value the kernel
defines: 1.0 for binomial and Poisson, φ for Gamma, inverse Gaussian and Gaussian,
α for the negative binomial (when estimated), the pair (φ, p) for Tweedie.

Adding a family means adding one class here (and registering it in
``_KERNELS``); a statsmodels ``Family`` subclass that is not registered is fitted
through :class:`GenericKernel`, from its own variance, link and ``loglike_obs``.
"""

import numpy as np
from scipy import special, stats
import statsmodels.genmod.families as fam
from statsmodels.genmod.families import links as L

__all__ = [
    "FamilyKernel", "BinomialKernel", "PoissonKernel", "NegativeBinomialKernel",
    "GammaKernel", "InverseGaussianKernel", "GaussianKernel", "TweedieKernel",
    "GenericKernel", "kernel_class", "kernel_for", "family_name", "link_name",
    "has_dispersion",
]

_EPS = np.finfo(float).eps
_TINY = np.finfo(float).tiny
_ETA_MAX = 700.0
# counts above this get log(a / b) as log1p((a − b) / b) in the deviance form of the
# likelihood: a count x multiplies the ~1e-16 rounding of log(a / b)
_LARGE_COUNT = 1e3
# Links whose mean range fits the family: R's okLinks, statsmodels' loglog and the
# links lme4's own tests fit (binomial identity; any monotone link for the Gaussian,
# whose mean is unrestricted). Refused: an inverse or log-complement link for a
# probability, a logit for a count, and other links that cannot span the mean range.
_BOUNDED_LINKS = ("logit", "probit", "cauchit", "cloglog", "loglog", "cdf")
_LINK_NAMES = {
    "Logit": "logit", "Probit": "probit", "CLogLog": "cloglog", "Log": "log",
    "Identity": "identity", "InversePower": "inverse", "Sqrt": "sqrt",
    "InverseSquared": "1/mu^2", "Cauchy": "cauchit", "LogLog": "loglog",
}


def link_name(link):
    """R's name of a statsmodels link object."""
    return _LINK_NAMES.get(type(link).__name__, type(link).__name__)


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


class FamilyKernel:
    """Base kernel: the generic exponential-family formulas.

    Parameters
    ----------
    family : statsmodels family
    data : response.Response
        The normalised response: ``y``, ``weights`` (trials × prior weights),
        ``prior_weights``, ``trials``.

    Class attributes
    ----------------
    name : str
        R's family name (used in messages and summaries, never for dispatch).
    links : tuple of str or None
        The links whose range fits the mean (None: any).
    canonical_link : str
        The link for which observed and expected information agree.
    n_dispersion : int
        Number of dispersion parameters in the likelihood.
    separation : {"probability", "count", None}
        Which boundary of the mean separation drives fitted values to.
    """

    name = "generic"
    links = None
    canonical_link = None
    n_dispersion = 0
    dispersion_names = ()
    separation = None
    is_linear_mixed_model = False

    def __init__(self, family, data):
        self.family = family
        self.link = link_name(family.link)
        self.y = data.y
        self.weights = data.weights
        self.prior_weights = data.prior_weights
        self.trials = data.trials

    # -- support and data checks ----------------------------------------------------
    def check_support(self, endog_name):
        """Raise ValueError if the response lies outside the family's support."""
        if not np.all(np.isfinite(self.y)):
            raise ValueError(f"response {endog_name!r} has non-finite values")

    def response_warnings(self, endog_name):
        """Messages about a response R would warn about (non-integer counts ...)."""
        return []

    @property
    def is_bernoulli(self):
        """A 0/1 response with unit weights (a level per row is then unidentifiable)."""
        return False

    @property
    def canonical(self):
        """True for the canonical link, where observed and expected information agree."""
        return self.link == self.canonical_link

    # -- mean function ---------------------------------------------------------------
    def mu(self, eta):
        """Inverse link, clamped away from the boundary of the mean's range."""
        if self.link == "log":
            return np.exp(np.minimum(eta, _ETA_MAX))
        mu = self.family.link.inverse(eta)
        if mu is eta or np.shares_memory(mu, eta):  # identity link returns its input
            mu = mu.copy()
        return mu

    def mu_eta(self, eta):
        """dμ/dη, floored at machine epsilon in absolute value as R does."""
        if self.link == "log":
            return np.exp(np.minimum(eta, _ETA_MAX))
        d = self.family.link.inverse_deriv(eta)
        return np.where(np.abs(d) < _EPS, np.where(d < 0, -_EPS, _EPS), d)

    def mu_eta2(self, eta):
        """d²μ/dη²."""
        if self.link == "log":
            return self.mu_eta(eta)
        return self.family.link.inverse_deriv2(eta)

    # -- variance and weights ------------------------------------------------------------
    def variance(self, mu, disp=None):
        """V(μ) (for the negative binomial and Tweedie it depends on ``disp``)."""
        return self.family.variance(mu)

    def variance_deriv(self, mu, disp=None):
        """dV/dμ."""
        return self.family.variance.deriv(mu)

    def weight_scale(self, disp):
        """The factor dividing the prior weights: φ, or 1 without a dispersion."""
        return 1.0

    def working_weights(self, eta, mu, disp=1.0):
        """PIRLS (Fisher scoring) weights w μ'(η)² / (φ V(μ))."""
        return self.irls_quantities(eta, mu, disp)[0]

    def irls_quantities(self, eta, mu, disp=1.0):
        """(weights w μ'² / (φ V), μ'(η)) for one PIRLS step."""
        d = self.mu_eta(eta)
        return self.weights * d * d / (self.weight_scale(disp) * self.variance(mu, disp)), d

    def observed_weights(self, eta, mu, disp=1.0):
        """Observed information −∂² log p(y_i | η_i)/∂η_i², the weights of the true
        Laplace approximation. Equal to the working weights for canonical links."""
        d1 = self.mu_eta(eta)
        var = self.variance(mu, disp)
        dvar = self.variance_deriv(mu, disp)
        correction = (self.y - mu) * (self.mu_eta2(eta) / var - d1 * d1 * dvar / (var * var))
        return self.weights / self.weight_scale(disp) * (d1 * d1 / var - correction)

    # -- likelihood ---------------------------------------------------------------------
    def unit_deviance(self, mu, disp=None):
        """Weighted unit deviances w_i d(y_i, μ_i) (their sum is the GLM deviance)."""
        return self.family.resid_dev(self.y, mu, var_weights=self.weights) ** 2

    def neg2loglik_obs(self, mu, disp=1.0):
        """−2 log p(y_i | μ_i) with every normalizing constant."""
        scale = self.weight_scale(disp)
        ll = self.family.loglike_obs(self.y, mu, var_weights=self.weights, scale=scale)
        return -2.0 * np.where(self.weights > 0, ll, 0.0)

    # -- starting values -------------------------------------------------------------------
    def start_mu(self):
        """R's ``mustart``."""
        return self.family.starting_mu(self.y)

    def start_eta(self):
        """Starting linear predictor (without offset)."""
        return self.family.link(self.start_mu())

    def start_dispersion(self, mu, df_resid):
        """A moment estimate of the dispersion at the GLM start (Pearson χ² / df)."""
        pearson = self.weights * (self.y - mu) ** 2 / self.variance(mu)
        return float(np.sum(pearson) / df_resid)

    # -- dispersion parameters ---------------------------------------------------------------
    def default_dispersion(self):
        """The value of ``disp`` when the family has no dispersion parameter."""
        return 1.0

    def check_dispersion_start(self, value):
        """A user's starting dispersion as ``disp``; ValueError if impossible."""
        if np.ndim(value) != 0:
            raise TypeError("one dispersion value")
        value = float(value)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"start['phi'] must be a positive number, got {value!r}")
        return value

    def pack_dispersion(self, disp):
        """``disp`` as the unconstrained optimizer values (log φ)."""
        return np.log([disp]) if self.n_dispersion else np.empty(0)

    def unpack_dispersion(self, packed):
        """Optimizer values → ``disp``."""
        return float(np.exp(packed[0])) if self.n_dispersion else 1.0

    def phi(self, disp):
        """The reported dispersion φ (``results.dispersion``)."""
        return float(disp) if self.n_dispersion else 1.0

    def sigma(self, disp):
        """lme4's ``sigma()``: √φ (1 without a dispersion)."""
        return float(np.sqrt(self.phi(disp)))

    def residual_variance(self, disp):
        """The ``Residual`` row of ``varcorr`` (φ), or None."""
        return self.phi(disp) if self.n_dispersion else None

    def dispersion_labels(self):
        """(lme4's short name, readable name) of each dispersion parameter as
        profiles and the bootstrap report it."""
        return [(".sigma", "sigma")][:self.n_dispersion]

    def report_dispersion(self, i, packed):
        """Packed values of dispersion parameter ``i`` → its reported scale
        (σ = √φ); vectorized over ``packed``."""
        return np.exp(0.5 * np.asarray(packed, dtype=float))

    def report_is_decreasing(self, i):
        """True when the reported scale decreases in the packed value."""
        return False

    def summary_line(self, disp, hessian_se=None):
        """The summary's line about the dispersion, or None."""
        if not self.n_dispersion:
            return None
        return f"Dispersion parameter (ML): {self.phi(disp):.4g}."

    # -- simulation -----------------------------------------------------------------------------
    def simulate(self, mu, disp, rng):
        """One draw of the response given the conditional means."""
        try:
            dist = self.family.get_distribution(mu, scale=self.phi(disp),
                                                var_weights=self.weights)
        except (AttributeError, NotImplementedError):
            raise NotImplementedError(
                f"family {type(self.family).__name__} cannot simulate responses "
                "(it has no get_distribution)") from None
        return np.asarray(dist.rvs(random_state=rng), dtype=float)


class BinomialKernel(FamilyKernel):
    """Binomial: 0/1, proportions with trials, or [successes, failures].

    Follows R's ``binomial()$aic`` weighting rule (``m`` = trials if any exceeds 1,
    else the weights), so that the three forms give the same log-likelihood.
    """

    name = "binomial"
    links = _BOUNDED_LINKS + ("log", "identity")
    canonical_link = "logit"
    separation = "probability"

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

    def simulate(self, mu, disp, rng):
        """Proportions, keeping the fit's trials."""
        trials = np.round(self.m).astype(np.int64) if np.any(self.trials > 1) or \
            np.any(self.weights != 1) else np.ones(mu.size, dtype=np.int64)
        successes = rng.binomial(trials, mu)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(trials > 0, successes / np.maximum(trials, 1), 0.0)


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


class _DispersionKernel(FamilyKernel):
    """Families with a dispersion φ estimated by maximum likelihood."""

    n_dispersion = 1
    dispersion_names = ("phi",)

    def weight_scale(self, disp):
        return disp

    def irls_quantities(self, eta, mu, disp=1.0):
        if self.link == "log":
            d = mu
            w = self.weights * d * d / self.variance(mu)
            return (w if disp == 1.0 else w / disp), d
        return super().irls_quantities(eta, mu, disp)


class GammaKernel(_DispersionKernel):
    name = "Gamma"
    links = ("inverse", "identity", "log")
    canonical_link = "inverse"

    def check_support(self, endog_name):
        super().check_support(endog_name)
        if np.any(self.y <= 0):
            raise ValueError(f"{self.name} response {endog_name!r} must be positive")

    def irls_quantities(self, eta, mu, disp=1.0):
        if self.link == "log":  # μ'² / V = 1
            w = self.weights * np.ones_like(mu)
            return (w if disp == 1.0 else w / disp), mu
        return super().irls_quantities(eta, mu, disp)

    def unit_deviance(self, mu, disp=None):
        return 2 * self.weights * (-np.log(self.y / mu) + (self.y - mu) / mu)

    def neg2loglik_obs(self, mu, disp=1.0):
        y, w = self.y, self.weights
        shape = w / disp
        ll = (shape * np.log(shape * y / mu) - shape * y / mu - np.log(y)
              - special.gammaln(shape))
        return -2.0 * np.where(w > 0, ll, 0.0)

    def start_mu(self):
        return np.full_like(self.y, np.average(self.y, weights=self.weights))

    def simulate(self, mu, disp, rng):
        shape = self.weights / disp
        return rng.gamma(shape, mu / shape)


class InverseGaussianKernel(GammaKernel):
    name = "inverse.gaussian"
    links = ("1/mu^2", "inverse", "identity", "log")
    canonical_link = "1/mu^2"

    def irls_quantities(self, eta, mu, disp=1.0):
        return _DispersionKernel.irls_quantities(self, eta, mu, disp)

    def unit_deviance(self, mu, disp=None):
        return self.weights * (self.y - mu) ** 2 / (self.y * mu * mu)

    def neg2loglik_obs(self, mu, disp=1.0):
        y, w = self.y, self.weights
        ll = 0.5 * (np.log(w / (2 * np.pi * disp * y ** 3))
                    - w * (y - mu) ** 2 / (disp * y * mu * mu))
        return -2.0 * np.where(w > 0, ll, 0.0)

    def simulate(self, mu, disp, rng):
        lam = self.weights / disp
        return stats.invgauss.rvs(mu / lam, scale=lam, random_state=rng)


class GaussianKernel(_DispersionKernel):
    """Gaussian; with the identity link the linear mixed model (see :mod:`lmm`)."""

    name = "gaussian"
    links = ("identity", "log", "inverse", "sqrt") + _BOUNDED_LINKS
    canonical_link = "identity"

    @property
    def is_linear_mixed_model(self):
        return self.link == "identity"

    def variance_deriv(self, mu, disp=None):
        return np.zeros_like(mu)

    def unit_deviance(self, mu, disp=None):
        return self.weights * (self.y - mu) ** 2

    def neg2loglik_obs(self, mu, disp=1.0):
        w = self.weights
        ll = -0.5 * (np.log(2 * np.pi * disp / w) + w * (self.y - mu) ** 2 / disp)
        return -2.0 * np.where(w > 0, ll, 0.0)

    def start_mu(self):
        return self.y

    def simulate(self, mu, disp, rng):
        return rng.normal(mu, np.sqrt(disp / self.weights))


class TweedieKernel(FamilyKernel):
    """Tweedie compound Poisson-gamma, 1 < p < 2: Var(y | u) = φ μ^p, with exact
    zeros and a continuous positive part (glmmTMB's ``tweedie()``).

    The power p and the dispersion φ are both estimated by maximum likelihood:
    ``disp`` is the pair (φ, p), packed as (log φ, logit(p − 1)) as glmmTMB does.
    The density is statsmodels' ``Tweedie.loglike_obs`` (Dunn and Smyth's series
    through scipy's Wright Bessel function). The family's ``var_power`` is the
    starting value of p.
    """

    name = "tweedie"
    links = ("log", "identity", "sqrt", "inverse")
    canonical_link = None  # μ^(1−p)/(1−p): depends on p, never a statsmodels link
    n_dispersion = 2
    dispersion_names = ("phi", "power")
    separation = "count"

    def __init__(self, family, data):
        super().__init__(family, data)
        p = float(family.var_power)
        if not 1.0 < p < 2.0:
            raise ValueError(f"the Tweedie family needs 1 < var_power < 2 (compound "
                             f"Poisson-gamma), got {p:g}")
        self.start_power = p
        self._density = fam.Tweedie(link=L.Log(), var_power=p, eql=False)

    def check_support(self, endog_name):
        super().check_support(endog_name)
        if np.any(self.y < 0):
            raise ValueError(f"Tweedie response {endog_name!r} has negative values")

    def variance(self, mu, disp=None):
        p = self.start_power if disp is None else disp[1]
        return np.power(mu, p)

    def variance_deriv(self, mu, disp=None):
        p = self.start_power if disp is None else disp[1]
        return p * np.power(mu, p - 1.0)

    def weight_scale(self, disp):
        return disp[0]

    def unit_deviance(self, mu, disp=None):
        p = self.start_power if disp is None else disp[1]
        y = self.y
        dev = (np.power(y, 2 - p) / ((1 - p) * (2 - p)) - y * np.power(mu, 1 - p) / (1 - p)
               + np.power(mu, 2 - p) / (2 - p))
        return 2 * self.weights * dev

    def neg2loglik_obs(self, mu, disp=1.0):
        phi, p = disp
        self._density.var_power = p
        with np.errstate(all="ignore"):
            ll = self._density.loglike_obs(self.y, mu, var_weights=self.weights, scale=phi)
        return -2.0 * np.where(self.weights > 0, ll, 0.0)

    def start_mu(self):
        return self.y + 0.1 * np.average(self.y, weights=self.weights)

    def start_eta(self):
        return self.family.link(self.start_mu())

    def start_dispersion(self, mu, df_resid):
        pearson = self.weights * (self.y - mu) ** 2 / np.power(mu, self.start_power)
        return (float(np.sum(pearson) / df_resid), self.start_power)

    def default_dispersion(self):
        return (1.0, self.start_power)

    def check_dispersion_start(self, value):
        try:
            phi, p = (value, self.start_power) if np.ndim(value) == 0 else value
            phi, p = float(phi), float(p)
        except (TypeError, ValueError):
            phi = p = np.nan
        if not (np.isfinite(phi) and phi > 0 and 1 < p < 2):
            raise ValueError(f"start['phi'] for the Tweedie family is φ > 0 or (φ, p) with "
                             f"1 < p < 2, got {value!r}")
        return (float(phi), float(p))

    def pack_dispersion(self, disp):
        phi, p = disp
        return np.array([np.log(phi), special.logit(p - 1.0)])

    def unpack_dispersion(self, packed):
        return (float(np.exp(packed[0])), float(1.0 + special.expit(packed[1])))

    def phi(self, disp):
        return float(disp[0])

    def power(self, disp):
        return float(disp[1])

    def dispersion_labels(self):
        return [(".sigma", "sigma"), (".power", "power")]

    def report_dispersion(self, i, packed):
        packed = np.asarray(packed, dtype=float)
        return np.exp(0.5 * packed) if i == 0 else 1.0 + special.expit(packed)

    def summary_line(self, disp, hessian_se=None):
        return (f"Tweedie dispersion phi (ML): {self.phi(disp):.4g}; "
                f"power p (ML): {self.power(disp):.4g}.")

    def simulate(self, mu, disp, rng):
        """Compound Poisson-gamma draws: N ~ Poisson(λ), y = Σ of N Gamma(α, γ)."""
        phi, p = disp
        phi = phi / self.weights
        lam = np.power(mu, 2 - p) / (phi * (2 - p))
        shape = (2 - p) / (p - 1)
        scale = phi * (p - 1) * np.power(mu, p - 1)
        n = rng.poisson(lam)
        out = np.zeros(mu.size)
        pos = n > 0
        out[pos] = rng.gamma(shape * n[pos], scale[pos])
        return out


class GenericKernel(FamilyKernel):
    """A statsmodels ``Family`` subclass fitted from its own variance, link and
    ``loglike_obs``: the seed paper's "user-specified distributions within the
    exponential family".

    The family has a dispersion parameter φ (estimated by maximum likelihood) when
    its ``loglike_obs`` depends on ``scale``, which is checked numerically. Missing
    derivatives (a variance without ``deriv``, a link without ``inverse_deriv2``)
    are taken by central differences.
    """

    def __init__(self, family, data):
        super().__init__(family, data)
        self.name = type(family).__name__
        self.canonical_link = None
        mu = self.family.starting_mu(self.y)
        with np.errstate(all="ignore"):
            ll1 = family.loglike_obs(self.y, mu, var_weights=self.weights, scale=1.0)
            ll2 = family.loglike_obs(self.y, mu, var_weights=self.weights, scale=2.0)
        if not np.all(np.isfinite(ll1)):
            raise ValueError(f"family {self.name}: loglike_obs is not finite at the "
                             "starting values; check its support and link")
        self.n_dispersion = int(not np.allclose(ll1, ll2, rtol=0, atol=1e-12))
        self.dispersion_names = ("phi",)[:self.n_dispersion]

    def weight_scale(self, disp):
        return disp if self.n_dispersion else 1.0

    def variance_deriv(self, mu, disp=None):
        try:
            return self.family.variance.deriv(mu)
        except (AttributeError, NotImplementedError):
            h = 1e-6 * np.maximum(np.abs(mu), 1e-8)
            return (self.family.variance(mu + h) - self.family.variance(mu - h)) / (2 * h)

    def mu_eta2(self, eta):
        try:
            return self.family.link.inverse_deriv2(eta)
        except (AttributeError, NotImplementedError):
            h = 1e-5 * np.maximum(np.abs(eta), 1.0)
            return (self.family.link.inverse_deriv(eta + h)
                    - self.family.link.inverse_deriv(eta - h)) / (2 * h)


_KERNELS = {
    fam.Binomial: BinomialKernel, fam.Poisson: PoissonKernel,
    fam.NegativeBinomial: NegativeBinomialKernel, fam.Gamma: GammaKernel,
    fam.InverseGaussian: InverseGaussianKernel, fam.Gaussian: GaussianKernel,
    fam.Tweedie: TweedieKernel,
}


def kernel_class(family):
    """The kernel class of a statsmodels family instance (GenericKernel for a
    family class that is not one of statsmodels' own)."""
    return _KERNELS.get(type(family), GenericKernel)


def kernel_for(family, data, estimate_alpha=False):
    """The kernel of ``family`` for the normalised response ``data``.

    ``estimate_alpha`` (negative binomial only): α is estimated by maximum likelihood.
    """
    cls = kernel_class(family)
    if cls is NegativeBinomialKernel:
        return cls(family, data, estimate_alpha=estimate_alpha)
    return cls(family, data)


def family_name(family):
    """R's name of the family: binomial, poisson, Gamma, gaussian, inverse.gaussian,
    negative.binomial, tweedie; the class name of a user-defined family."""
    cls = kernel_class(family)
    return type(family).__name__ if cls is GenericKernel else cls.name


def has_dispersion(family, estimate_alpha=False):
    """True for the families whose likelihood has a free dispersion parameter (for
    the negative binomial: its α, when estimated, see :func:`model.glmer_nb`)."""
    cls = kernel_class(family)
    if cls is NegativeBinomialKernel:
        return bool(estimate_alpha)
    if cls is GenericKernel:
        return not isinstance(family, (fam.Binomial, fam.Poisson))
    return cls.n_dispersion > 0
