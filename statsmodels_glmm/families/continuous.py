"""Kernels of the families with a dispersion φ: Gamma, inverse Gaussian, Gaussian."""

import numpy as np
from scipy import special, stats

from .base import BOUNDED_LINKS, FamilyKernel

__all__ = ["GammaKernel", "InverseGaussianKernel", "GaussianKernel"]


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
    links = ("identity", "log", "inverse", "sqrt") + BOUNDED_LINKS
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
