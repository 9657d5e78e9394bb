"""The GLMM fit as named stages, lme4's pipeline (``R/modular.R``):

1. :func:`initial_values` — θ from lme4's identity factors (or the user's), β and
   the dispersion from one weighted least-squares step at R's ``mustart``;
2. :func:`optimize_joint` — the nAGQ=0 stage over (θ, dispersion), β by PIRLS
   (lme4's first ``optimizeGlmer``);
3. :func:`optimize_full` — the final stage over (θ, dispersion, β) in whitened
   coordinates, with a restart from off the boundary and lme4's boundary check;
4. :func:`post_fit` — the finite-difference Hessian (or gradient), lme4's
   convergence checks and the covariance of β̂ (``checkConv``, ``mkMerMod``).

Every evaluation goes through :class:`devfun.DevianceFunction`; the stages only
choose where to evaluate it.
"""

import copy
import dataclasses
import warnings

import numpy as np
import scipy.linalg as sla
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from . import fused_pirls
from .chunked import CHUNK_ROWS, max_abs_product, weighted_gram
from .convergence import check_convergence, choose_vcov, try_boundary
from .derivatives import curvature_steps, gradient_and_curvature, numerical_hessian
from .devfun import DevianceFunction
from .exceptions import BoundaryWarning
from .optimizer_choice import minimize
from .params import OptimizerMap
from .pirls import PirlsError, damped_factor
from .results import GLMMFit

__all__ = ["StageResult", "fit_glmm", "fit_negative_binomial", "glm_start_values",
           "initial_values", "optimize_joint", "optimize_full", "post_fit",
           "conditional_vcov", "beta_whitening"]

# The finite-difference Hessian costs ~k² deviance evaluations of O(n) each; above
# this n·k² it is skipped by default (lme4 ≥ 1.1-38 skips it for every n ≥ 1e4).
_HESSIAN_BUDGET = 2e7


@dataclasses.dataclass
class StageResult:
    """Where a stage ended: the packed parameters, the optimizer coordinates and
    their map, the optimizer's report, the modes' warm start and its β."""

    params: np.ndarray
    x: np.ndarray
    coords: OptimizerMap
    optimizer: object
    u: np.ndarray
    beta: np.ndarray
    devfun: DevianceFunction = None


def fit_glmm(model, options):
    """Fit a GLMM by the stages above; returns a :class:`results.GLMMFit`."""
    theta0, disp0, beta0 = initial_values(model, options.start)
    joint = optimize_joint(model, theta0, disp0, beta0, options)
    if options.nAGQ == 0:
        return _finish_joint(model, joint, options)
    full = optimize_full(model, joint, options)
    return post_fit(model, full, joint, options)


def glm_start_values(model):
    """Starting β and dispersion: one weighted least-squares step from R's
    ``mustart`` (as lme4, whose first PIRLS starts at η = g(mustart)), and a
    moment estimate of the dispersion there (:meth:`GLMM.glm_start` caches it)."""
    resp, kernel, basis = model.response, model.kernel, model.design_basis
    with np.errstate(all="ignore"):
        w, z, ok = start_working_response(kernel, resp.y, model.offset)
        if resp.nobs <= CHUNK_ROWS:  # (small fits keep the rounding they had)
            Xw = basis.X[ok] * w[ok, None]
            gram, score = Xw.T @ basis.X[ok], Xw.T @ z[ok]
        else:  # rows left out get weight 0 (and z 0, as 0 * inf is NaN): no copies
            w, z = np.where(ok, w, 0.0), np.where(ok, z, 0.0)
            gram, score = weighted_gram(basis.X, w), basis.X.T @ (w * z)
        beta = start_beta(gram, score, basis.to_external)
        mu = kernel.mu(model.exog @ beta + model.offset)
        disp = kernel.start_dispersion(mu, max(resp.nobs - model.k_fe, 1))
    return beta, checked_start_dispersion(kernel, disp)


def start_working_response(kernel, y, offset):
    """Weights w and working response z of the least-squares step from R's
    mustart, and the rows where both are usable (``ok``)."""
    eta = kernel.start_eta()
    mu = kernel.mu(eta)
    w, dmu = kernel.irls_quantities(eta, mu, kernel.default_dispersion())
    z = eta - offset + (y - mu) / dmu
    return w, z, np.isfinite(z) & np.isfinite(w) & (w > 0)


def start_beta(gram, score, to_external=None):
    """β of the normal equations ``gram β = score`` (0 when singular or not
    finite), mapped by ``to_external`` (the design basis) if given."""
    k = score.shape[0]
    try:
        beta = np.linalg.solve(gram, score)
        beta = beta if to_external is None else to_external(beta)
    except np.linalg.LinAlgError:
        return np.zeros(k)
    return beta if np.all(np.isfinite(beta)) else np.zeros(k)


def checked_start_dispersion(kernel, disp):
    """The moment estimate of the dispersion, or the family's default without one;
    a degenerate estimate (not finite, ≤ 0) becomes φ = 1."""
    if not kernel.n_dispersion:
        return kernel.default_dispersion()
    phi = np.ravel(disp)[0]
    if not (np.isfinite(phi) and phi > 0):
        return kernel.check_dispersion_start(1.0)
    return disp


def initial_values(model, start):
    """Starting θ (optimizer coordinates θ · scale), dispersion and β."""
    beta_glm, disp_glm = model.glm_start()
    beta0 = np.asarray(start.get("beta", beta_glm), dtype=float)
    if beta0.shape != (model.k_fe,):
        raise ValueError(f"start['beta'] must have {model.k_fe} elements")
    disp0 = start.get("phi", disp_glm)
    return model.theta_start(start), disp0, beta0


def optimize_joint(model, theta0, disp0, beta0, options):
    """The nAGQ=0 stage over (θ, dispersion), β by PIRLS jointly with u.

    Skipped (the start returned as it is) when ``nAGQ0_init`` is False and nAGQ ≥ 1.
    Its optimum is only a starting point unless nAGQ=0, so it is not polished.
    """
    layout = model.parameters
    coords = OptimizerMap(layout)
    devfun = model.deviance_function(0, options.information, beta0=beta0,
                                     observer=options.observer_for("stage1"))
    x = np.concatenate([theta0, layout.kernel.pack_dispersion(disp0)
                        if layout.k_dispersion else []])
    opt = None
    if options.nAGQ == 0 or options.nAGQ0_init:
        tols = {} if options.nAGQ == 0 else {"ftol_abs": 1e-6, "xtol_abs": 1e-5}
        opt = minimize(options.optimizer, coords.wrap(devfun), x, coords.lower(),
                       np.full(x.size, 0.5), maxeval=options.maxfun, **tols)
        x = opt.x
    params = coords.to_packed(x)
    if opt is None:
        return StageResult(params, x, coords, None, devfun.warm_u, beta0, devfun)
    theta, disp, _ = layout.unpack(params)
    modes = devfun.modes(theta, disp)
    return StageResult(params, x, coords, opt, modes.u, devfun.external_beta(modes), devfun)


def _finish_joint(model, joint, options):
    """nAGQ=0: the boundary check, then β and the modes by a fresh joint PIRLS."""
    k = model.k_theta
    coords, x = joint.coords, joint.x.copy()
    objective = coords.wrap(joint.devfun)
    x[:k] = try_boundary(x[:k], coords.lower()[:k], lambda t: objective(
        np.concatenate([t, x[k:]])), options.boundary_tol)
    theta, disp, _ = model.parameters.unpack(coords.to_packed(x))
    modes = model.pirls(theta, None, disp, information=options.information)
    _warn_unconverged(joint.optimizer)
    vcov = model.conditional_vcov(theta, modes.beta, disp, modes.u)
    return GLMMFit(theta=theta, beta=modes.beta, dispersion=disp, modes=modes,
                   neg2ll=modes.laplace(), nAGQ=0, optimizer=joint.optimizer,
                   nfev={"stage1_nfev": joint.optimizer.nfev, "stage2_nfev": 0},
                   vcov=vcov, vcov_conditional=vcov, cov_type="conditional",
                   information=options.information)


def optimize_full(model, joint, options):
    """The final stage over (θ, dispersion, β), β whitened at the joint optimum.

    β is optimised as β = β₁ + C z with C C' the conditional covariance at the
    stage-1 solution: the fixed effects are often strongly correlated (age, age²,
    age:ch), which BOBYQA's 2n+1-point quadratic model learns only slowly.
    """
    layout = model.parameters
    theta1, disp1, _ = layout.unpack(joint.params)
    whitening = beta_whitening(model, theta1, joint.beta, disp1, joint.u)
    coords = OptimizerMap(layout, joint.beta, whitening)
    devfun = model.deviance_function(options.nAGQ, options.information, u0=joint.u,
                                     observer=options.observer_for("stage2"))
    objective = coords.wrap(devfun)
    x0 = np.concatenate([joint.x, np.zeros(model.k_fe)])
    lower = coords.lower()
    steps = _initial_steps(model, joint, lower)
    # ftol 1e-8 on −2ℓ (and 1e-7 SE in β): ~1e-6 from the optimum at worst
    opt = minimize(options.optimizer, objective, x0, lower, steps, ftol_abs=1e-8,
                   xtol_abs=1e-7, maxeval=options.maxfun)
    opt = _restart_edge(model, objective, opt, lower, steps, options)
    k = model.k_theta
    x = opt.x.copy()
    x[:k] = try_boundary(x[:k], lower[:k], lambda t: objective(np.concatenate([t, x[k:]])),
                         options.boundary_tol)
    return StageResult(coords.to_packed(x), x, coords, opt, joint.u, None, devfun)


def _initial_steps(model, joint, lower):
    """BOBYQA's first steps: θ from the curvature of the joint stage (half an SE),
    β half a conditional SE (stage-1 β is often more than one SE from the
    Laplace β; a radius of 0.5 halves the evaluations on large data)."""
    m = joint.x.size
    theta_steps = np.full(m, 0.1)
    if joint.optimizer is not None:
        theta_steps = curvature_steps(joint.coords.wrap(joint.devfun), joint.x, lower[:m])
    return np.concatenate([theta_steps, np.full(model.k_fe, 0.5)])


def _restart_edge(model, objective, opt, lower, steps, options, edge=1e-4):
    """Restart once from off the boundary when the optimum has a θ diagonal
    element at 0 (a singular covariance), keeping the better optimum.

    With several random effects per level the deviance surface has ridges along
    the boundary: started from the nAGQ=0 solution the optimizer can settle with
    one variance at 0 when another configuration (a different element at 0, or
    none) is better (cf. lme4's ``restart_edge``). The restart is from lme4's
    starting θ (identity factors, in the covariates' units; an element at 0 leaves
    the sign of its column's correlations arbitrary, so restarting nearby stays in
    the same basin), the other parameters where they are.
    """
    k = model.k_theta
    at_edge = (lower[:k] == 0) & (opt.x[:k] < edge)
    if not at_edge.any():
        return opt
    start = opt.x.copy()
    start[:k] = model.random_effects.theta_start()
    second = minimize(options.optimizer, objective, start, lower, steps, ftol_abs=1e-8,
                      xtol_abs=1e-7, maxeval=options.maxfun)
    best = second if second.fun < opt.fun - 1e-8 else opt
    return dataclasses.replace(best, nfev=opt.nfev + second.nfev)


def post_fit(model, full, joint, options):
    """The modes and deviance at the optimum, derivatives there (Hessian or
    gradient), the convergence checks and the covariance of β̂."""
    theta, disp, beta = model.parameters.unpack(full.params)
    devfun = model.deviance_function(options.nAGQ, options.information)
    modes = devfun.modes(theta, disp, beta, u0=full.u)
    neg2ll = devfun.approximation(modes, theta, disp, beta)
    _warn_unconverged(full.optimizer)
    use_hessian, hessian, convergence, skipped = _derivatives(model, full, modes, options)
    vcov_conditional = model.conditional_vcov(theta, beta, disp, modes.u)
    vcov, cov_type = choose_vcov(hessian if use_hessian else None, vcov_conditional,
                                 model.k_fe)
    return GLMMFit(
        theta=theta, beta=beta, dispersion=disp, modes=modes, neg2ll=neg2ll,
        nAGQ=options.nAGQ, optimizer=full.optimizer,
        nfev={"stage1_nfev": joint.optimizer.nfev if joint.optimizer else 0,
              "stage2_nfev": full.optimizer.nfev},
        vcov=vcov, vcov_conditional=vcov_conditional, cov_type=cov_type,
        information=options.information, hessian=hessian if use_hessian else None,
        convergence=convergence, hessian_skipped=skipped)


def _derivatives(model, full, modes, options):
    """Hessian (or gradient and curvature) in the optimizer's coordinates, where
    the problem is well scaled, mapped back to the packed parameters.

    Returns
    -------
    use_hessian, hessian, convergence, hessian_skipped
    """
    coords, x = full.coords, full.x
    devfun = model.deviance_function(options.nAGQ, options.information, u0=modes.u,
                                     observer=options.observer_for("derivatives"))
    objective = coords.wrap(devfun)
    if isinstance(devfun, DevianceFunction):  # its warm start (partitioned: the crossed modes)
        objective = _AxisWarmStart(objective, devfun, x, modes.u)
    # β steps of 0.01 conditional SE: the deviance has rounding noise of ~1e-10
    # (more with huge counts, whose per-observation scores are large) and
    # noise / h² must stay well below the unit curvature of z
    m = coords.k_head
    h = np.concatenate([np.full(m, 1e-4), np.full(model.k_fe, 1e-2)])
    calc_hessian = options.calc_hessian
    if calc_hessian == "auto":
        calc_hessian = model.nobs * x.size ** 2 <= _HESSIAN_BUDGET
    use_hessian = bool(calc_hessian) and options.cov_type != "conditional"
    skipped = not calc_hessian and options.cov_type != "conditional"
    derivative = numerical_hessian if use_hessian else gradient_and_curvature
    try:
        with np.errstate(all="ignore"):
            H_x, grad_x = derivative(objective, x, h)
        if not (np.all(np.isfinite(H_x)) and np.all(np.isfinite(grad_x))):
            raise ArithmeticError("non-finite deviance next to the optimum")
    except (PirlsError, np.linalg.LinAlgError, ArithmeticError) as exc:
        # a neighbour of the optimum where PIRLS fails: estimates diverging
        # (separation) or an ill-posed problem; say so instead of crashing
        warnings.warn(f"the deviance could not be evaluated next to the optimum "
                      f"({exc}): no Hessian and no convergence check; standard "
                      "errors are conditional on the covariance parameters",
                      ConvergenceWarning, stacklevel=6)
        return False, None, None, skipped
    J = coords.jacobian()
    hessian = J.T @ H_x @ J if use_hessian else None
    convergence = check_convergence(x[:model.k_theta], model.random_effects.theta_lower(),
                                    H_x, grad_x, stacklevel=6)
    return use_hessian, hessian, convergence, skipped


class _AxisWarmStart:
    """The objective for finite differences around ``x0``, with each PIRLS warm
    started from the modes extrapolated linearly from those at ``x0`` and at the
    points already evaluated on the axes through it.

    The off-diagonal points x0 ± h e_i ± h e_j of the Hessian (most of its k²
    evaluations) then start within O(h²) of their modes instead of O(h), and
    PIRLS needs two iterations instead of three; it converges to the same modes
    (to its step tolerance) from either start.
    """

    def __init__(self, objective, devfun, x0, u0):
        self.objective, self.devfun = objective, devfun
        self.x0, self.u0 = np.asarray(x0, dtype=float), u0
        self.axis = {}  # (i, sign) -> (step, modes - u0)

    def __call__(self, x):
        d = np.asarray(x, dtype=float) - self.x0
        moved = np.flatnonzero(d)
        start = self.u0.copy()
        for i in moved:
            step, du = self.axis.get((i, d[i] > 0), (None, None))
            if step is not None:
                start += (d[i] / step) * du
        self.devfun.warm_u = start
        value = self.objective(x)
        if moved.size == 1:
            i = moved[0]
            self.axis[i, d[i] > 0] = (d[i], self.devfun.warm_u - self.u0)
        return value


def _warn_unconverged(opt):
    if not opt.converged:
        warnings.warn(f"the optimizer did not converge: {opt.message} after "
                      f"{opt.nfev} evaluations", ConvergenceWarning, stacklevel=5)


# -- the covariance of β conditional on θ ---------------------------------------------------
class InMemoryOperations:
    """What the stages ask of a model that holds its rows (:class:`GLMM`); a
    partitioned model answers the same questions with rounds over its partitions."""

    def conditional_vcov(self, theta, beta, disp, u, internal=False, damped=True):
        """See :func:`conditional_vcov`."""
        return conditional_vcov(self, theta, beta, disp, u, internal, damped)

    def linear_predictor_reach(self, C):
        """max |X C| per column: how far a unit step along each column moves η."""
        return max_abs_product(self.exog, C)


def _joint_factor(model, theta, disp, u, beta, damped=False):
    """Blocked factor including the X border, at the given modes.

    ``damped``: if X'WX is numerically singular (separation), factor it with
    PIRLS's Levenberg-Marquardt damping instead of raising LinAlgError.
    """
    re = model.random_effects
    scaled = re.scaled_covariates(theta)
    if fused_pirls.applies(model.response, re, joint=True):
        try:
            factor = fused_pirls.joint_factor(model.response, re, scaled, model.offset,
                                              model.exog @ beta, model.design_basis.X, u)
        except np.linalg.LinAlgError:
            factor = None
        if factor is not None:
            return factor
    eta = model.offset + model.exog @ beta + re.linear_predictor(scaled, u)
    mu = model.response.mu(eta)
    w = model.response.working_weights(eta, mu, disp)
    try:
        return model.system.factor(scaled, w, model.design_basis.X)
    except np.linalg.LinAlgError:
        if not damped:
            raise
        return damped_factor(model.system, scaled, w, model.design_basis.X)[0]


def conditional_vcov(model, theta, beta, disp, u, internal=False, damped=True):
    """(R_X' R_X)⁻¹: the covariance of β̂ conditional on θ (lme4's RX vcov); of β̃
    (the design basis's coordinates) if ``internal``.

    Under separation X'WX is singular and the damped factor is used: the
    variances of the diverging combinations are then huge (as lme4's) rather
    than an error."""
    factor = _joint_factor(model, theta, disp, u, beta, damped=damped)
    RX = factor.fixed_block().L
    inv = sla.solve_triangular(RX, np.eye(RX.shape[0]), lower=True)
    vcov = inv.T @ inv
    return vcov if internal else model.design_basis.cov_to_external(vcov)


def beta_whitening(model, theta, beta, disp, u, max_reach=10.0):
    """Cholesky factor C of the conditional covariance of β (identity if singular),
    taken in the well-conditioned basis and mapped back.

    A column of C whose unit step would move some linear predictor by more than
    ``max_reach`` (a nearly unidentified combination, e.g. under separation) is
    shrunk to that reach, so that the optimizer's and the Hessian's steps stay on
    the scale where the deviance can be evaluated.
    """
    try:
        root = np.linalg.cholesky(model.conditional_vcov(theta, beta, disp, u,
                                                         internal=True, damped=False))
    except np.linalg.LinAlgError:
        return np.eye(model.k_fe)
    C = model.design_basis.external_cholesky(root)
    reach = model.linear_predictor_reach(C)
    with np.errstate(divide="ignore"):
        return C * np.minimum(1.0, max_reach / reach)


# -- the negative binomial's boundary α = 0 --------------------------------------------------
def fit_negative_binomial(model, options):
    """Fit with the NB shape θ = 1/α estimated, detecting its boundary θ = ∞.

    When the counts show no overdispersion beyond the random effects the
    likelihood increases monotonically towards α = 0 (the Poisson GLMM), and the
    optimizer stops somewhere on the flat tail (θ ~ 1e5) with a meaningless "SE"
    and spurious curvature warnings. If the fitted α is negligible, the Poisson
    GLMM (the exact limit) is fitted; when it is at least as good, it is the ML
    fit and is reported with α = 0, θ = ∞, no SE for θ, and a warning. Only the
    warnings of the fit reported are shown.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_glmm(model, options)
    boundary = None
    alpha = fit.dispersion
    if alpha * float(np.max(fit.modes.mu)) <= 1e-2:
        with warnings.catch_warnings(record=True) as caught_boundary:
            warnings.simplefilter("always")
            boundary = _poisson_limit(model, fit, options)
    if boundary is None:
        _reemit(caught)
        return fit
    _reemit(caught_boundary)
    warnings.warn(
        f"the negative binomial shape theta = 1/alpha diverges (the optimizer stopped at "
        f"{1 / alpha:.3g} on a flat likelihood): the counts show no overdispersion "
        "beyond the random effects, so the maximum likelihood fit is the Poisson GLMM "
        "(alpha = 0, theta = inf), reported here; theta has no standard error",
        BoundaryWarning, stacklevel=5)
    return boundary


def _poisson_limit(model, fit, options):
    """The Poisson GLMM fit (NB with α = 0) if it is as good as ``fit``, else None."""
    poisson = type(model)(model.endog, model.exog, random_effects=model.random_effects,
                          family=sm.families.Poisson(link=copy.deepcopy(model.family.link)),
                          offset=model.offset, weights=model.weights)
    start = {"theta": fit.theta, "beta": fit.beta}
    boundary = fit_glmm(poisson, dataclasses.replace(options, start=start, nAGQ0_init=False))
    if boundary.neg2ll > fit.neg2ll + 1e-6:
        return None
    # α = 0 in the NB's terms; no Hessian: its layout lacks log α
    return dataclasses.replace(boundary, dispersion=0.0, hessian=None)


def _reemit(caught):
    for item in caught:
        warnings.warn(item.message, item.category, stacklevel=5)
