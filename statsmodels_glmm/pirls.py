"""Penalized iteratively reweighted least squares (PIRLS).

Finds the conditional modes û of the spherical random effects u (and, for the
nAGQ=0 shortcut, β jointly) that minimise the penalized objective

    pdev(u) = −2 log p(y | u, β) + ‖u‖²,

by Fisher scoring on the blocked Cholesky system of :mod:`blocked_cholesky`
(Newton's method with the observed information for a non-canonical link, where
that is positive definite), with step-halving as lme4 does. With β fixed the
fixed-effects design is never touched: ``X β + offset`` enters once, as
``fixed_eta``.

Convergence is lme4's rule (the relative change of the penalized objective)
with a much tighter default tolerance, so that the Laplace and AGQ values do
not carry PIRLS error.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["PirlsError", "PirlsResult", "converged", "damped_factor", "largest_step", "pirls",
           "step_accepted"]


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
        mu, neg2ll = response.mu_and_neg2ll(eta, phi)
    return eta, mu, neg2ll, float(neg2ll.sum() + u @ u)


def damped_factor(system, scaled, w, X):
    """Factor of the joint (u, β) system when X'WX is numerically singular.

    Under (quasi-)separation some fitted means go to the boundary (μ → 0 for a
    count, 0 or 1 for a proportion) and their weights underflow, so a combination
    of β has no information left and the Schur complement of the β block loses
    positive definiteness to rounding. D = δ diag(X'WX) is added to the β block,
    with the smallest δ (from 1e-8) that factors.

    Returns
    -------
    factor, ridge : BlockedCholesky, ndarray
        ``ridge`` is the diagonal of D.
    """
    d = np.einsum("ij,i,ij->j", X, w, X)
    floor = np.finfo(float).eps * max(float(np.max(d, initial=0.0)), 1.0)
    for delta in (1e-8, 1e-6, 1e-4):
        ridge = delta * np.maximum(d, floor)
        try:
            return system.factor(scaled, w, X, ridge=ridge), ridge
        except np.linalg.LinAlgError:
            continue
    raise PirlsError("PIRLS: the fixed-effects block is singular even after damping")


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
        ``step_tol``. The second test matters when the iteration converges only
        linearly (Fisher scoring, for a non-canonical link where the observed
        information is not positive definite), where a small change of the
        objective can hide an error in û that log|L| would inherit.
    information : {"observed", "expected"}
        Weights of the factor returned at the modes, which gives log|L|² in the
        Laplace approximation and the scale of the quadrature: the observed
        information (the true Laplace approximation, as glmmTMB) or the
        expected (Fisher) information, as lme4. They agree for canonical links.

    Returns
    -------
    PirlsResult
        (or :class:`fused_pirls.FusedPirlsResult`, the same interface, where the
        compiled single-term path applies)
    """
    joint = X is not None
    if fused_pirls.applies(response, re, joint):
        iteration = dict(tol=tol, step_tol=step_tol, maxit=maxit, max_halvings=max_halvings)
        modes = (fused_pirls.fused_joint_pirls(response, re, scaled, offset, X, u0, beta0,
                                               **iteration) if joint else
                 fused_pirls.fused_pirls(response, re, scaled, offset, u0, beta, **iteration))
        if modes is not None:
            return modes
    q = re.n_re
    u = u0.copy()
    b = beta0.copy() if joint else None
    fixed = offset + X @ b if joint else offset
    eta, mu, neg2ll, pdev = _objective(response, re, scaled, fixed, u, phi)
    if not np.isfinite(pdev):
        raise PirlsError("PIRLS: non-finite objective at the starting values")
    stalls = 0
    newton = not response.canonical
    for iteration in range(1, maxit + 1):  # noqa: B007 (reported after the loop)
        w, dmu = response.irls_quantities(eta, mu, phi)
        # the working residual (y − μ)/μ' (the score is w times it), and the linear
        # predictor on the scale of what is solved for: Z Λ u (+ X β if joint).
        # μ' of the logit is floored at eps; others may underflow to 0 (a diverging
        # η), where the weight is 0 too
        if response.link == "logit" or np.all(dmu):
            resid = (response.y - mu) / dmu
        else:
            resid = np.divide(response.y - mu, dmu, out=np.zeros_like(mu), where=dmu != 0)
        lin = eta - (offset if joint else fixed)
        factor = None
        w_fisher = w
        if newton:
            # a Newton step, with the observed information, converges quadratically;
            # Fisher scoring (w) only linearly for a non-canonical link, and the
            # deviance, hence the finite-difference Hessian, would then depend on
            # the warm start. Some observed weights may be negative (large
            # residuals); Fisher scoring where the matrix is not positive definite.
            w_obs = response.observed_weights(eta, mu, phi)
            if np.all(np.isfinite(w_obs)):
                try:
                    factor = system.factor(scaled, w_obs, X)
                    w = w_obs
                except np.linalg.LinAlgError:
                    factor = None
        # Fisher scoring: w (lin + resid); Newton: w_obs lin + w_fisher resid
        rhs = system.rhs(scaled, w * (lin + resid) if w is w_fisher
                         else w * lin + w_fisher * resid, X)
        try:
            if factor is None:
                factor = system.factor(scaled, w, X)
        except np.linalg.LinAlgError:
            if not joint:
                raise
            # a Levenberg-Marquardt step: (A + D) x = rhs + D b damps the update
            # of the unidentified combinations of β without moving the fixed point
            factor, ridge = damped_factor(system, scaled, w, X)
            rhs[-1] = rhs[-1] + ridge * b
        sol = factor.solve(rhs)
        u_new = np.concatenate(sol[:len(re.terms)]) if q else u
        b_new = sol[-1] if joint else None
        for _ in range(max_halvings):
            fixed_new = offset + X @ b_new if joint else fixed
            eta_n, mu_n, neg2ll_n, pdev_n = _objective(
                response, re, scaled, fixed_new, u_new, phi)
            if step_accepted(pdev_n, pdev, tol):
                break
            u_new = 0.5 * (u + u_new)
            if joint:
                b_new = 0.5 * (b + b_new)
        else:
            raise PirlsError(
                "PIRLS step-halvings failed to reduce the penalized deviance"
            )
        change = pdev - pdev_n
        step = largest_step(u_new, u, b_new, b)
        u, b, fixed = u_new, b_new, fixed_new
        eta, mu, neg2ll, pdev = eta_n, mu_n, neg2ll_n, pdev_n
        done, stalls = converged(change, pdev, step, stalls, tol, step_tol)
        if done:
            break
    else:
        raise PirlsError(f"PIRLS did not converge in {maxit} iterations")
    if response.canonical:
        # the last iteration's factor, at a u within step_tol of the modes
        return PirlsResult(u, b if joint else beta, eta, mu,
                           factor.leading(len(re.terms)), neg2ll, iteration)
    factor = _factor_at_modes(response, system, scaled, eta, mu, phi, information)
    return PirlsResult(u, b if joint else beta, eta, mu, factor, neg2ll, iteration)


def step_accepted(pdev_new, pdev, tol):
    """A step is kept when the penalized deviance is finite and not larger (up to
    ``tol`` relative); otherwise it is halved."""
    return bool(np.isfinite(pdev_new) and pdev_new <= pdev + tol * (abs(pdev) + 1))


def converged(change, pdev, step, stalls, tol, step_tol):
    """lme4's rule plus a step bound: converged when the objective and the step
    have both settled, or the objective has been flat for four iterations
    (directions where μ is saturated, e.g. separation).

    Returns
    -------
    done : bool
    stalls : int
        Consecutive flat iterations, for the next call.
    """
    flat = abs(change) <= tol * (abs(pdev) + 1)
    stalls = stalls + 1 if flat else 0
    return (flat and step <= step_tol) or stalls >= 4, stalls


def largest_step(u_new, u, b_new=None, b=None):
    """The largest change of u (and of β, when given)."""
    step = np.max(np.abs(u_new - u), initial=0.0)
    if b_new is not None:
        step = max(step, np.max(np.abs(b_new - b), initial=0.0))
    return step


def _factor_at_modes(response, system, scaled, eta, mu, phi, information):
    """The factor of Λ'Z'WZΛ + I at the modes with the expected or observed
    information as W (a non-canonical link, where they differ)."""
    if information == "expected":
        w = response.working_weights(eta, mu, phi)
    else:
        w = response.observed_weights(eta, mu, phi)
    try:
        return system.factor(scaled, w)
    except np.linalg.LinAlgError:
        raise PirlsError(f"the {information} information at the conditional modes is not "
                         "positive definite") from None


# imported last: fused_pirls uses this module's iteration rules
from . import fused_pirls  # noqa: E402
