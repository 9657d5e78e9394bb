"""The generic kernel: a user's statsmodels ``Family`` subclass."""

import numpy as np
import statsmodels.genmod.families as fam

from .base import FamilyKernel

__all__ = ["GenericKernel"]


class GenericKernel(FamilyKernel):
    """A statsmodels ``Family`` subclass fitted from its own variance, link and
    ``loglike_obs``: the seed paper's "user-specified distributions within the
    exponential family".

    The family has a dispersion parameter φ (estimated by maximum likelihood) when
    its ``loglike_obs`` depends on ``scale`` (checked numerically), unless it is a
    subclass of statsmodels' binomial, Poisson or negative binomial, whose scale
    is 1 by convention. Missing
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
        # statsmodels' convention: binomial, Poisson and NB subclasses have scale 1
        fixed_scale = isinstance(family, (fam.Binomial, fam.Poisson, fam.NegativeBinomial))
        depends = not np.allclose(ll1, ll2, rtol=0, atol=1e-12)
        self.n_dispersion = int(depends and not fixed_scale)
        self.dispersion_names = ("phi",)[:self.n_dispersion]

    def unit_deviance(self, mu, disp=None):
        """The family's deviance residuals squared; without them, the deviance
        from the log-likelihood, 2 [ℓ(y; y) − ℓ(y; μ)] at scale 1."""
        try:
            return super().unit_deviance(mu, disp)
        except (AttributeError, NotImplementedError, TypeError):
            ll = self.family.loglike_obs
            saturated = np.where(self.y == 0, np.finfo(float).tiny, self.y)  # 0 log 0 = 0
            with np.errstate(all="ignore"):
                return 2.0 * (ll(self.y, saturated, var_weights=self.weights, scale=1.0)
                              - ll(self.y, mu, var_weights=self.weights, scale=1.0))

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
