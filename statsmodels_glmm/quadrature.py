"""Gauss-Hermite rules and adaptive Gauss-Hermite quadrature (nAGQ > 1).

For a model with one scalar random-effects term the marginal likelihood
factorises over the levels j. Each one-dimensional integral is centred at the
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

__all__ = ["gauss_hermite_normal", "agq_deviance"]


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


def agq_deviance(response, re, scaled, offset, modes, k, phi=1.0):
    """−2 log marginal likelihood by adaptive Gauss-Hermite quadrature.

    Parameters
    ----------
    response : response.Response
    re : re_terms.RandomEffects
        Exactly one term, with one covariate.
    scaled : list of ndarray
        ``re.scaled_covariates(theta)``.
    offset : ndarray
        Offset plus X β.
    modes : pirls.PirlsResult
        PIRLS result at the same parameters (β fixed).
    k : int
        Number of quadrature points.

    Returns
    -------
    float
    """
    term = re.terms[0]
    refs, ell = term.refs, term.n_levels
    zt = scaled[0][:, 0]
    u_hat = modes.u
    sd = 1.0 / modes.factor.diag[0].diagonal()
    devc0 = np.bincount(refs, weights=modes.neg2ll, minlength=ell) + u_hat ** 2
    nodes, weights = gauss_hermite_normal(k)
    # log of Σ_k w_k exp(z_k²/2 − (devc_j(z_k) − devc0_j)/2), accumulated stably
    terms = np.empty((len(nodes), ell))
    for i, (z, w) in enumerate(zip(nodes, weights)):
        if z == 0.0:
            terms[i] = np.log(w)
            continue
        u = u_hat + z * sd
        mu = response.mu(offset + zt * u[refs])
        devc = np.bincount(refs, weights=response.neg2loglik_obs(mu, phi), minlength=ell)
        terms[i] = np.log(w) + 0.5 * z * z - 0.5 * (devc + u * u - devc0)
    top = terms.max(axis=0)
    log_mult = top + np.log(np.exp(terms - top).sum(axis=0))
    return float(devc0.sum() + modes.factor.logdet2() - 2.0 * log_mult.sum())
