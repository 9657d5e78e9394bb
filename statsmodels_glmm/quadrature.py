"""Gauss-Hermite rules and adaptive Gauss-Hermite quadrature (nAGQ > 1).

For a model with one random-effects term (scalar, or vector-valued with a
product grid) the marginal likelihood factorises over the levels j. In the
scalar case Each one-dimensional integral is centred at the
conditional mode û_j and scaled by s_j = 1 / L_jj (the conditional standard
deviation from the PIRLS factor):

    ∫ p(y_j | u) φ(u) du ≈ s_j Σ_k w_k p(y_j | û_j + s_j z_k) φ(û_j + s_j z_k) / φ(z_k)

with (z_k, w_k) a k-point rule for the standard normal kernel. Unlike lme4
(issue #161) the conditional density keeps its normalizing constant, so the
result is on the same scale as the Laplace approximation (nAGQ=1 is the
one-point rule) and as a GLM's log-likelihood.
"""

from functools import cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["gauss_hermite_normal", "product_grid", "agq_deviance", "agq_level_deviances"]


@cache
def gauss_hermite_normal(k):
    """k-point Gauss-Hermite rule for the N(0, 1) density.

    Nodes are symmetrised (each averaged with its negated mirror) and the
    weights normalised to sum to one; for odd k the middle node is exactly 0.

    Returns
    -------
    nodes, weights : ndarray
    """
    if k < 1:
        raise ValueError("the number of quadrature points must be at least 1")
    z, w = hermegauss(k)
    z = 0.5 * (z - z[::-1])
    w = 0.5 * (w + w[::-1])
    w = w / w.sum()
    if k % 2:
        z[k // 2] = 0.0
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def product_grid(k, dim):
    """Tensor-product k-point rule in ``dim`` dimensions: nodes (k**dim, dim), weights."""
    z, w = gauss_hermite_normal(k)
    grids = np.meshgrid(*([z] * dim), indexing="ij")
    nodes = np.column_stack([g.ravel() for g in grids])
    weights = np.prod(np.meshgrid(*([w] * dim), indexing="ij"), axis=0).ravel()
    return nodes, weights


def agq_deviance(response, re, scaled, offset, modes, k, phi=1.0):
    """−2 log marginal likelihood by adaptive Gauss-Hermite quadrature.

    One random-effects term (one grouping factor) with S ≥ 1 covariates: the
    integral factorises over its levels. Level j's S-dimensional integral uses
    the product grid of k points per dimension, centred at the mode ũ_j and
    scaled by the Cholesky factor L_j of the curvature there (u = ũ_j + L_j⁻ᵀ z),
    so for S = 1 this is the scalar rule of lme4 and MixedModels.jl, and for
    S > 1 the multivariate AGQ of GLMMadaptive (lme4 issue #123).

    Parameters
    ----------
    response : response.Response
    re : re_terms.RandomEffects
        Exactly one term.
    scaled : list of ndarray
        ``re.scaled_covariates(theta)``.
    offset : ndarray
        Offset plus X β.
    modes : pirls.PirlsResult
        PIRLS result at the same parameters (β fixed).
    k : int
        Number of quadrature points per dimension.

    Returns
    -------
    float
    """
    devc0, log_mult = _agq_terms(response, re, scaled, offset, modes, k, phi)
    return float(devc0.sum() + modes.factor.logdet2() - 2.0 * log_mult.sum())


def agq_level_deviances(response, re, scaled, offset, modes, k, phi=1.0):
    """The terms of :func:`agq_deviance` per level of the grouping factor (their
    sum is the deviance): −2 × each level's log marginal likelihood."""
    devc0, log_mult = _agq_terms(response, re, scaled, offset, modes, k, phi)
    L = modes.factor.block(0).L
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    return devc0 + logdet - 2.0 * log_mult


def _agq_terms(response, re, scaled, offset, modes, k, phi):
    """Per level: the penalized deviance at the mode, and the log of the
    quadrature's multiplier of the Laplace value."""
    term = re.terms[0]
    refs, ell, s = term.refs, term.n_levels, term.n_cov
    zt = scaled[0]
    u_hat = modes.u.reshape(ell, s)
    block = modes.factor.block(0)
    # L_j⁻ᵀ per level: u = ũ_j + L_j⁻ᵀ z has covariance (L_j L_jᵀ)⁻¹
    scale_t = np.transpose(block.inverse, (0, 2, 1))
    devc0 = (np.bincount(refs, weights=modes.neg2ll, minlength=ell)
             + np.sum(u_hat ** 2, axis=1))
    nodes, weights = product_grid(k, s)
    terms = np.empty((len(nodes), ell))
    for i, (z, w) in enumerate(zip(nodes, weights)):
        if not np.any(z):
            terms[i] = np.log(w)
            continue
        u = u_hat + scale_t @ z
        eta = offset + np.einsum("ij,ij->i", zt, u[refs])
        mu = response.mu(eta)
        devc = np.bincount(refs, weights=response.neg2loglik_obs(mu, phi), minlength=ell)
        terms[i] = np.log(w) + 0.5 * z @ z - 0.5 * (devc + np.sum(u * u, axis=1) - devc0)
    top = terms.max(axis=0)
    log_mult = top + np.log(np.exp(terms - top).sum(axis=0))
    return devc0, log_mult
