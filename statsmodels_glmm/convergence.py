"""Checks at the optimum (lme4's ``R/checkConv.R``) and the choice of the
covariance of β̂.

Model-free: the functions take the gradient, the Hessian, θ's lower bounds and
an objective; they warn with statsmodels' warning classes.
"""

import warnings

import numpy as np
import scipy.linalg as sla
from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning

__all__ = ["check_convergence", "choose_vcov", "try_boundary"]


def check_convergence(theta, lower, H, grad, tol=2e-3, stacklevel=5):
    """Gradient and Hessian checks at the optimum, lme4's rules.

    Both are taken in the optimizer's coordinates (θ, log φ and whitened β),
    where the problem is well scaled, so badly scaled covariates do not produce
    lme4's false "failed to converge" / "very large eigenvalue" warnings; a
    genuinely unconverged fit still fails the gradient test. θ elements at their
    bound 0 are left out.

    Returns
    -------
    dict
        ``singular``, ``max_abs_grad``, ``max_scaled_grad``,
        ``hessian_eigenvalues`` and the ``messages`` that were warned.
    """
    singular = bool(np.any(theta[lower == 0] < 1e-4))
    out = {"singular": singular, "max_abs_grad": float(np.max(np.abs(grad))),
           "hessian_eigenvalues": np.linalg.eigvalsh(H), "messages": []}
    active = np.ones(grad.size, dtype=bool)
    active[:theta.size] = ~((lower == 0) & (theta < 1e-4))  # at the bound: skip
    g, Ha = grad[active], H[np.ix_(active, active)]
    try:
        scaled = sla.solve_triangular(np.linalg.cholesky(Ha), g, lower=True)
        out["max_scaled_grad"] = float(np.max(np.minimum(np.abs(scaled), np.abs(g)),
                                              initial=0.0))
    except np.linalg.LinAlgError:
        out["max_scaled_grad"] = np.nan
        out["messages"].append("the Hessian is not positive definite at the optimum")
    if out["max_scaled_grad"] > tol:
        out["messages"].append(
            f"the fit may not have converged: scaled gradient {out['max_scaled_grad']:.2g} "
            f"> {tol}")
    eig = np.linalg.eigvalsh(Ha) if Ha.size else np.array([1.0])
    if np.any(eig < -1e-6):
        out["messages"].append(
            f"degenerate Hessian with {int(np.sum(eig < -1e-6))} negative eigenvalues")
    for msg in out["messages"]:
        warnings.warn(msg, ConvergenceWarning, stacklevel=stacklevel)
    return out


def choose_vcov(hessian, vcov_conditional, k_fe, stacklevel=5):
    """The covariance of β̂: the β block of 2 H⁻¹ when the Hessian is usable,
    else the conditional covariance (with a warning if the Hessian fails).

    Returns
    -------
    vcov : ndarray
    cov_type : {"hessian", "conditional"}
    """
    if hessian is None:
        return vcov_conditional, "conditional"
    try:
        inv = np.linalg.inv(hessian)
        vcov = 2.0 * inv[-k_fe:, -k_fe:]
        vcov = 0.5 * (vcov + vcov.T)
        np.linalg.cholesky(vcov)
        return vcov, "hessian"
    except np.linalg.LinAlgError:
        warnings.warn("the finite-difference Hessian is not positive definite; "
                      "using the conditional covariance of the fixed effects",
                      HessianInversionWarning, stacklevel=stacklevel)
        return vcov_conditional, "conditional"


def try_boundary(theta, lower, objective, tol):
    """Set θ diagonal elements within ``tol`` of 0 to 0 when that is no worse
    (lme4's ``check.boundary``)."""
    near = np.flatnonzero((lower == 0) & (theta > 0) & (theta < tol))
    if near.size == 0:
        return theta
    trial = theta.copy()
    trial[near] = 0.0
    try:
        if objective(trial) <= objective(theta):
            return trial
    except (ArithmeticError, RuntimeError):
        pass  # the boundary cannot be evaluated: keep the interior optimum
    return theta
