"""The GLMM response: y, binomial trials and prior weights, with the family kernel
that evaluates its conditional likelihood.

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
parameter of the likelihood, not lme4's plug-in estimate. The formulas live in
the family kernels of :mod:`families`; this class normalises the data and hands
the kernel's methods to PIRLS, the quadrature and the results.
"""

import copy

import numpy as np

from .families import (
    BinomialKernel,
    family_name,
    has_dispersion,
    kernel_class,
    kernel_for,
    link_name,
)

__all__ = ["Response", "family_name", "link_name", "has_dispersion"]


def _as_float(values, what):
    """``values`` as float64, read-only; a float64 array is not copied (on large
    data each copy is another n floats)."""
    arr = np.asarray(values)
    try:
        out = arr.astype(float, copy=False)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numeric, got dtype {arr.dtype}") from None
    if out is arr:  # shared with the caller's array: a view that cannot write to it
        out = out.view()
        out.flags.writeable = False
    return out


class Response:
    """Response vector and its family kernel, as used by PIRLS and the likelihood.

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
    estimate_alpha : bool
        Negative binomial: α is a parameter of the likelihood.

    Attributes
    ----------
    kernel : families.FamilyKernel
        The family's formulas; its methods (``mu``, ``irls_quantities``,
        ``neg2loglik_obs`` ...) are also available on the response.
    """

    def __init__(self, family, endog, prior_weights=None, offset=None, endog_name="y",
                 estimate_alpha=False):
        self.family = copy.deepcopy(family)
        y = _as_float(endog, f"response {endog_name!r}")
        n = y.shape[0]
        self.prior_weights = self._prior_weights(prior_weights, n)
        # no offset: a read-only zero vector that takes no memory per row
        self.offset = (np.broadcast_to(0.0, (n,)) if offset is None
                       else _as_float(offset, "offset"))
        if self.offset.shape != (n,):
            raise ValueError(f"offset has length {self.offset.size}, expected {n}")
        self.y, self.trials = self._proportions(y, endog_name)
        if prior_weights is None and y.ndim == 1:
            # unit trials and weights: one read-only broadcast of ones serves as the
            # trials, the prior weights and their product
            self.prior_weights = self.trials
        self.weights = (self.trials if self.prior_weights is self.trials
                        else self.trials * self.prior_weights)
        self.kernel = kernel_for(self.family, self, estimate_alpha=estimate_alpha)
        self.kernel.check_support(endog_name)
        self.name = self.kernel.name
        self.link = self.kernel.link

    @staticmethod
    def _prior_weights(prior_weights, n):
        pw = (np.broadcast_to(1.0, (n,)) if prior_weights is None
              else _as_float(prior_weights, "weights"))
        if pw.shape != (n,):
            raise ValueError(f"weights has length {pw.size}, expected {n} (one per observation)")
        if not np.all(np.isfinite(pw)) or np.any(pw < 0):
            raise ValueError("weights must be finite and non-negative")
        if n and not np.any(pw > 0):
            raise ValueError("weights are all zero: no observation contributes to the fit")
        return pw

    def _proportions(self, y, endog_name):
        """(y, trials): a two-column binomial response becomes proportions."""
        if y.ndim == 1:  # unit trials: read-only ones that take no memory per row
            return y, np.broadcast_to(1.0, y.shape)
        if y.ndim != 2:
            raise ValueError(f"response {endog_name!r} must be one or two columns")
        if y.shape[1] != 2 or kernel_class(self.family) is not BinomialKernel:
            raise ValueError("a two-column response (successes, failures) needs the "
                             "Binomial family")
        successes, failures = y[:, 0], y[:, 1]
        if np.any(successes < 0) or np.any(failures < 0):
            raise ValueError(f"response {endog_name!r}: counts must be non-negative")
        trials = successes + failures
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(trials > 0, successes / np.where(trials > 0, trials, 1), 0.0)
        return y, trials

    @property
    def nobs(self):
        return self.y.shape[0]

    @property
    def estimate_alpha(self):
        return bool(getattr(self.kernel, "estimate_alpha", False))

    @property
    def canonical(self):
        return self.kernel.canonical

    # the kernel's formulas, as PIRLS, the quadrature and the results call them
    def mu(self, eta):
        return self.kernel.mu(eta)

    def mu_eta(self, eta):
        return self.kernel.mu_eta(eta)

    def variance(self, mu, phi=None):
        return self.kernel.variance(mu, phi)

    def working_weights(self, eta, mu, phi=1.0):
        return self.kernel.irls_quantities(eta, mu, phi)[0]

    def irls_quantities(self, eta, mu, phi=1.0):
        return self.kernel.irls_quantities(eta, mu, phi)

    def observed_weights(self, eta, mu, phi=1.0):
        return self.kernel.observed_weights(eta, mu, phi)

    def unit_deviance(self, mu, phi=None):
        return self.kernel.unit_deviance(mu, phi)

    def neg2loglik_obs(self, mu, phi=1.0):
        return self.kernel.neg2loglik_obs(mu, phi)

    def mu_and_neg2ll(self, eta, phi=1.0):
        return self.kernel.mu_and_neg2ll(eta, phi)

    def start_eta(self):
        return self.kernel.start_eta()
