"""The kernel base class: the generic exponential-family formulas every family
kernel inherits, and the shared numerical helpers."""

import numpy as np
from statsmodels.genmod.families import links as L

__all__ = ["FamilyKernel", "link_name", "BOUNDED_LINKS"]

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
BOUNDED_LINKS = ("logit", "probit", "cauchit", "cloglog", "loglog", "cdf")
_POWER_NAMES = {1.0: "identity", 0.5: "sqrt", -1.0: "inverse", -2.0: "1/mu^2"}
_LINK_CLASSES = [
    (L.Logit, "logit"), (L.Probit, "probit"), (L.Cauchy, "cauchit"), (L.CLogLog, "cloglog"),
    (L.LogLog, "loglog"), (L.LogC, "logc"), (L.Log, "log"),
]


def link_name(link):
    """R's name of a statsmodels link instance: ``"logit"``, ``"1/mu^2"`` ...,
    ``"Power(0.3)"`` for other powers, ``"cdf"`` for other CDF links, else the
    class name."""
    for cls, name in _LINK_CLASSES:
        if type(link) is cls:
            return name
    if isinstance(link, L.Power):
        return _POWER_NAMES.get(float(link.power), f"Power({link.power:g})")
    if isinstance(link, L.CDFLink):
        return "cdf"
    return type(link).__name__


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

    Attributes
    ----------
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
    integer_valued : bool
        The observations are integers on the scale of :meth:`count_scale`
        (counts, binomial successes): simulation-based residuals randomize ties.
    """

    name = "generic"
    links = None
    canonical_link = None
    n_dispersion = 0
    dispersion_names = ()
    separation = None
    is_linear_mixed_model = False
    integer_valued = False

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

    def mu_and_neg2ll(self, eta, disp=1.0):
        """(μ, −2 log p(y_i | μ_i)) at η: :meth:`mu` then :meth:`neg2loglik_obs`.
        A kernel may fuse the two into fewer passes over the data (PIRLS
        evaluates them together at every step)."""
        mu = self.mu(eta)
        return mu, self.neg2loglik_obs(mu, disp)

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
    def count_scale(self, values):
        """Responses as the model holds them (``y``, :meth:`simulate`'s draws; one
        row per observation, any columns) on the scale of each observation's own
        distribution: the values themselves (binomial: successes)."""
        return np.asarray(values, dtype=float)

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
