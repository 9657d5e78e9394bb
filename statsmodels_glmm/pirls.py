"""Penalized iteratively reweighted least squares (PIRLS).

Finds the conditional modes û of the spherical random effects u (and, for the
nAGQ=0 shortcut, β jointly) that minimise the penalized objective

    pdev(u) = −2 log p(y | u, β) + ‖u‖²,

by Fisher scoring on the blocked Cholesky system of :mod:`blocked_cholesky`,
with step-halving as lme4 does. With β fixed the fixed-effects design is never
touched: ``X β + offset`` enters once, as ``fixed_eta``.

Convergence is lme4's rule (the relative change of the penalized objective)
with a much tighter default tolerance, so that the Laplace and AGQ values do
not carry PIRLS error.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["PirlsError", "PirlsResult", "factor_with_ridge", "pirls"]


class PirlsError(RuntimeError):
    """PIRLS could not find the conditional modes."""


@dataclass
class PirlsResult:
    """The conditional modes and everything evaluated there.

    Attributes
    ----------
    u : ndarray
        Conditional modes of the spherical random effects.
    beta : ndarray or None
        β from the joint (nAGQ=0) iteration, ``None`` when β was fixed.
    eta, mu : ndarray
        Linear predictor (with offset) and mean at the modes.
    factor : blocked_cholesky.BlockedCholesky
        Factor of Λ'Z'WZΛ + I at the modes (random-effects blocks only).
    neg2ll : ndarray
        −2 log p(y_i | û) per observation.
    iterations : int
    """

    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    factor: object
    neg2ll: np.ndarray
    iterations: int

    @property
    def penalized_deviance(self):
        return float(self.neg2ll.sum() + self.u @ self.u)

    def laplace(self):
        """−2 log of the Laplace approximation to the marginal likelihood."""
        return self.penalized_deviance + self.factor.logdet2()


def _objective(response, re, scaled, fixed_eta, u, phi):
    eta = fixed_eta + re.linear_predictor(scaled, u)
    # a step can leave the mean's domain (e.g. μ < 0 with an inverse link); the
    # objective is then NaN/inf, which the step-halving below handles
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mu = response.mu(eta)
        neg2ll = response.neg2loglik_obs(mu, phi)
    return eta, mu, neg2ll, float(neg2ll.sum() + u @ u)


def factor_with_ridge(system, scaled, w, X):
    """The PIRLS system's factor; when X'WX is singular because the weights vanish
    in some direction (separation: fitted means at 0 or 1), a relative ridge of
    1e-10 on the X block keeps the step defined (step-halving keeps it a descent)."""
    try:
        return system.factor(scaled, w, X)
    except np.linalg.LinAlgError:
        if X is None:
            raise
        scale = float(np.max(np.abs(w))) * float(np.max(np.sum(X * X, axis=0)))
        return system.factor(scaled, w, X, x_ridge=1e-10 * max(scale, 1e-300))


def pirls(response, re, system, scaled, offset, u0, phi=1.0, X=None, beta0=None,
          beta=None, tol=1e-12, step_tol=1e-10, maxit=200, max_halvings=30,
          information="observed"):
    """Run PIRLS at fixed θ (given through ``scaled``) and dispersion ``phi``.

    Parameters
    ----------
    response : response.Response
    re : re_terms.RandomEffects
    system : blocked_cholesky.PenalizedSystem
    scaled : list of ndarray
        ``re.scaled_covariates(theta)``.
    offset : ndarray
        The offset, plus ``X @ beta`` when β is fixed.
    u0 : ndarray
        Starting u. The fit warm-starts from the previous evaluation's modes;
        with u converged to ``step_tol`` the result does not depend on it.
    X, beta0 : ndarray, optional
        Given both: iterate jointly over (u, β) starting from ``beta0``.
    beta : ndarray, optional
        Returned unchanged as ``PirlsResult.beta`` when β is fixed.
    tol, step_tol : float
        Converged when the relative change of the penalized deviance is below
        ``tol`` (lme4's rule) *and* the largest change of u (and β) is below
        ``step_tol``. The second test matters for non-canonical links, where
        Fisher scoring converges only linearly and a small change of the
        objective can hide an error in û that log|L| would inherit.
    information : {"observed", "expected"}
        Weights of the factor returned at the modes, which gives log|L|² in the
        Laplace approximation and the scale of the quadrature: the observed
        information (the true Laplace approximation, as glmmTMB) or the
        expected (Fisher) information, as lme4. They agree for canonical links.

    Returns
    -------
    PirlsResult
    """
    joint = X is not None
    q = re.n_re
    u = u0.copy()
    b = beta0.copy() if joint else None
    fixed = offset + X @ b if joint else offset
    eta, mu, neg2ll, pdev = _objective(response, re, scaled, fixed, u, phi)
    if not np.isfinite(pdev):
        raise PirlsError("PIRLS: non-finite objective at the starting values")
    stalls = 0
    for iteration in range(1, maxit + 1):  # noqa: B007 (reported after the loop)
        w, dmu = response.irls_quantities(eta, mu, phi)
        # working response on the scale of what is solved for: Z Λ u (+ X β if joint)
        if np.all(dmu):
            resid = (response.y - mu) / dmu
        else:  # μ' underflowed to 0 (a diverging η): such rows have weight 0 too
            resid = np.divide(response.y - mu, dmu, out=np.zeros_like(mu), where=dmu != 0)
        working = (eta - (offset if joint else fixed)) + resid
        factor = factor_with_ridge(system, scaled, w, X)
        sol = factor.solve(system.rhs(scaled, w * working, X))
        u_new = np.concatenate(sol[:len(re.terms)]) if q else u
        b_new = sol[-1] if joint else None
        for _ in range(max_halvings):
            fixed_new = offset + X @ b_new if joint else fixed
            eta_n, mu_n, neg2ll_n, pdev_n = _objective(
                response, re, scaled, fixed_new, u_new, phi)
            if np.isfinite(pdev_n) and pdev_n <= pdev + tol * (abs(pdev) + 1):
                break
            u_new = 0.5 * (u + u_new)
            if joint:
                b_new = 0.5 * (b + b_new)
        else:
            raise PirlsError(
                "PIRLS step-halvings failed to reduce the penalized deviance"
            )
        change = pdev - pdev_n
        step = np.max(np.abs(u_new - u), initial=0.0)
        if joint:
            step = max(step, np.max(np.abs(b_new - b), initial=0.0))
        u, b, fixed = u_new, b_new, fixed_new
        eta, mu, neg2ll, pdev = eta_n, mu_n, neg2ll_n, pdev_n
        flat = abs(change) <= tol * (abs(pdev) + 1)
        stalls = stalls + 1 if flat else 0
        # converged: objective and step both settled, or the objective is flat for
        # several iterations (directions where μ is saturated, e.g. separation)
        if (flat and step <= step_tol) or stalls >= 4:
            break
    else:
        raise PirlsError(f"PIRLS did not converge in {maxit} iterations")
    if information == "expected" or response.canonical:
        # the last iteration's factor, at a u within step_tol of the modes
        return PirlsResult(u, b if joint else beta, eta, mu,
                           factor.leading(len(re.terms)), neg2ll, iteration)
    w = response.observed_weights(eta, mu, phi)
    try:
        factor = system.factor(scaled, w)
    except np.linalg.LinAlgError:
        raise PirlsError("the observed information at the conditional modes is not "
                         "positive definite") from None
    return PirlsResult(u, b if joint else beta, eta, mu, factor, neg2ll, iteration)
