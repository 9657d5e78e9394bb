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

import statsmodels.genmod.families as fam

from .base import BOUNDED_LINKS, FamilyKernel, link_name
from .binomial import BinomialKernel
from .continuous import GammaKernel, GaussianKernel, InverseGaussianKernel
from .counts import NegativeBinomialKernel, PoissonKernel
from .generic import GenericKernel
from .tweedie import TweedieKernel

__all__ = [
    "FamilyKernel", "BinomialKernel", "PoissonKernel", "NegativeBinomialKernel",
    "GammaKernel", "InverseGaussianKernel", "GaussianKernel", "TweedieKernel",
    "GenericKernel", "kernel_class", "kernel_for", "family_name", "link_name",
    "has_dispersion", "BOUNDED_LINKS",
]

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
        return not isinstance(family, (fam.Binomial, fam.Poisson, fam.NegativeBinomial))
    return cls.n_dispersion > 0
