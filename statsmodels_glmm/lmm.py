"""The linear mixed model (Gaussian, identity link), fitted exactly by the
profiled (RE)ML criterion of lme4's ``lmer``.

At θ the penalized least-squares problem is solved once by the blocked
Cholesky factor (no iteration): β̂(θ), û(θ) and the penalized residual sum of
squares r²(θ) give

    ML:    log|L|² + n (1 + log(2π r² / n)),
    REML:  log|L|² + log|R_X|² + (n − p)(1 + log(2π r² / (n − p))),

minus Σ log w for prior weights; σ² = r² / n (or n − p) is profiled out.
"""

import warnings

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from .convergence import try_boundary
from .optimizer_choice import minimize
from .results import GLMMFit

__all__ = ["LmmModes", "lmm_solve", "lmm_criterion", "fit_lmm"]


class LmmModes:
    """The LMM counterpart of a PIRLS result (same attributes)."""

    def __init__(self, u, beta, eta, mu, factor, neg2ll):
        self.u, self.beta, self.eta, self.mu = u, beta, eta, mu
        self.factor, self.neg2ll, self.iterations = factor, neg2ll, 1


def lmm_solve(model, theta):
    """Profiled pieces of the linear mixed model at θ (exact, no iteration).

    Returns
    -------
    factor, u, beta, pwrss, log|L|², log|R_X|²
    """
    re = model.random_effects
    resp = model.response
    scaled = re.scaled_covariates(theta)
    w = resp.weights
    basis = model.design_basis
    factor = model.system.factor(scaled, w, basis.X)
    y = resp.y - model.offset
    sol = factor.solve(model.system.rhs(scaled, w * y, basis.X))
    u = np.concatenate(sol[:-1])
    resid = y - basis.X @ sol[-1] - re.linear_predictor(scaled, u)
    pwrss = float(np.sum(w * resid ** 2) + u @ u)
    k = len(re.terms)
    # log|R_X|² of the user's X (the REML criterion depends on it): X = X̃ T
    ld_RX = factor.fixed_block().logdet2() + 2.0 * basis.log_abs_det()
    return factor, u, basis.to_external(sol[-1]), pwrss, factor.logdet2(range(k)), ld_RX


def lmm_criterion(model, theta, reml):
    """The profiled −2 log-likelihood (ML) or REML criterion at θ."""
    _, _, _, pwrss, ld_L, ld_RX = lmm_solve(model, theta)
    n = model.nobs
    p = model.k_fe
    w = model.response.weights
    log_w = float(np.sum(np.log(w[w > 0])))
    if reml:
        dof = n - p
        return ld_L + ld_RX + dof * (1 + np.log(2 * np.pi * pwrss / dof)) - log_w
    return ld_L + n * (1 + np.log(2 * np.pi * pwrss / n)) - log_w


def fit_lmm(model, options):
    """Fit the linear mixed model; ``options`` is the model's :class:`FitOptions`.

    Returns
    -------
    results.GLMMFit
    """
    re = model.random_effects
    theta0 = model.theta_start(options.start)
    lower = re.theta_lower()
    ts = re.theta_scale()  # the optimizer sees θ · scale
    observer = options.observer_for("lmm")
    nfev = [0]

    def criterion(t):
        value = lmm_criterion(model, t / ts, options.reml)
        if observer is not None:
            nfev[0] += 1
            observer(nfev[0], t / ts, value)
        return value

    opt = minimize(options.optimizer, criterion, theta0, lower, np.full(theta0.size, 0.2),
                   maxeval=options.maxfun)
    theta = try_boundary(opt.x, lower, criterion, options.boundary_tol) / ts
    factor, u, beta, pwrss, _, _ = lmm_solve(model, theta)
    sigma2 = pwrss / (model.nobs - model.k_fe if options.reml else model.nobs)
    RXinv = np.linalg.inv(factor.fixed_block().L)
    vcov = sigma2 * model.design_basis.cov_to_external(RXinv.T @ RXinv)
    eta = model.offset + model.exog @ beta + re.linear_predictor(re.scaled_covariates(theta), u)
    modes = LmmModes(u, beta, eta, eta, factor, model.response.neg2loglik_obs(eta, sigma2))
    if not opt.converged:
        warnings.warn(f"the optimizer did not converge: {opt.message}",
                      ConvergenceWarning, stacklevel=4)
    return GLMMFit(
        theta=theta, beta=beta, dispersion=sigma2, modes=modes,
        neg2ll=lmm_criterion(model, theta, options.reml), nAGQ=1, optimizer=opt,
        nfev={"stage1_nfev": opt.nfev, "stage2_nfev": 0}, vcov=vcov,
        vcov_conditional=vcov, cov_type="conditional", information=options.information,
        reml=options.reml)
