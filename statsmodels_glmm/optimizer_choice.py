"""The optimizers a fit can use, behind one call (``GLMM.fit(optimizer=...)``).

Every method minimises a bound-constrained objective (θ diagonal elements ≥ 0,
everything else free) from the same start with the same stopping budget, and
reports an :class:`optimizer.OptimizeResult`:

- ``"bobyqa"`` (the default): NLopt's BOBYQA, a quadratic-model trust region
  (lme4's ``nloptwrap``);
- ``"nelder_mead"``: NLopt's Nelder-Mead simplex (``LN_NELDERMEAD``; lme4's
  ``Nelder_Mead`` is the same method, lme4's default second stage);
- ``"sbplx"``: NLopt's Subplex (``LN_SBPLX``), Nelder-Mead on subspaces, more
  robust than the plain simplex;
- ``"lbfgsb"``: scipy's L-BFGS-B with central finite-difference gradients
  (lme4's ``optimx`` L-BFGS-B);
- ``"trust_constr"``: scipy's trust-region interior-point method with the same
  finite-difference gradients and a BFGS Hessian.

The derivative-free methods see the tolerances on the objective and the
parameters directly; the gradient methods stop when the projected gradient or
the change of the objective becomes negligible. Failed evaluations (PIRLS
cannot find the modes) count as the starting value for every method, as in
:func:`optimizer.bobyqa`.
"""

import warnings

import nlopt
import numpy as np
from scipy import optimize

from .optimizer import OptimizeResult, bobyqa, nlopt_minimize

__all__ = ["OPTIMIZERS", "minimize", "check_optimizer"]

OPTIMIZERS = {
    "bobyqa": "NLopt BOBYQA",
    "nelder_mead": "NLopt Nelder-Mead",
    "sbplx": "NLopt Subplex",
    "lbfgsb": "scipy L-BFGS-B",
    "trust_constr": "scipy trust-constr",
}
_NLOPT = {"nelder_mead": nlopt.LN_NELDERMEAD, "sbplx": nlopt.LN_SBPLX}
# relative step of the central differences: (machine epsilon)^(1/3)
_FD_STEP = 6e-6


def check_optimizer(name):
    """The optimizer's name, validated (ValueError naming ``optimizer`` otherwise)."""
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, "
                         f"got {name!r}")
    return name.lower()


def minimize(method, fun, x0, lower, initial_step, ftol_abs=1e-10, xtol_abs=1e-9,
             maxeval=10000, ftol_rel=1e-12):
    """Minimise ``fun`` subject to ``x >= lower`` with the optimizer ``method``.

    Parameters
    ----------
    method : str
        One of :data:`OPTIMIZERS`.
    fun : callable
        ``fun(x) -> float``; ``ArithmeticError``, ``RuntimeError`` and
        ``LinAlgError`` count as a failed evaluation.
    x0, lower, initial_step : array_like
        Start, lower bounds and the derivative-free methods' first steps.
    ftol_abs, xtol_abs, ftol_rel : float
        Stopping tolerances (see :func:`optimizer.nlopt_minimize`).
    maxeval : int
        The budget of evaluations (finite differences included).

    Returns
    -------
    optimizer.OptimizeResult
    """
    if method == "bobyqa":  # exactly the call the stages always made
        return bobyqa(fun, x0, lower, initial_step, ftol_abs=ftol_abs, xtol_abs=xtol_abs,
                      maxeval=maxeval, ftol_rel=ftol_rel)
    if method in _NLOPT:
        return nlopt_minimize(fun, x0, lower, initial_step, ftol_abs=ftol_abs,
                              xtol_abs=xtol_abs, maxeval=maxeval, ftol_rel=ftol_rel,
                              algorithm=_NLOPT[method])
    return _scipy_minimize(method, fun, x0, lower, ftol_abs, maxeval)


class _Budget(Exception):
    """The evaluation budget is spent."""


class _Guarded:
    """``fun`` counting evaluations, keeping the best point, and replacing failed
    evaluations by the starting value (so that a method's model stays finite)."""

    def __init__(self, fun, x0, maxeval):
        self.fun, self.maxeval = fun, maxeval
        self.f_start = float(fun(x0))
        self.nfev, self.failures = 1, 0
        self.best_x, self.best_f = np.array(x0, dtype=float), self.f_start

    def __call__(self, x):
        if self.nfev >= self.maxeval:
            raise _Budget
        self.nfev += 1
        try:
            value = float(self.fun(np.asarray(x, dtype=float)))
        except (ArithmeticError, RuntimeError, np.linalg.LinAlgError):
            value = np.nan
        if not np.isfinite(value):
            self.failures += 1
            return self.f_start
        if value < self.best_f:
            self.best_x, self.best_f = np.array(x, dtype=float), value
        return value


def _central_gradient(objective, lower):
    """Central differences of step ``_FD_STEP`` · max(|x|, 1), one-sided at a bound."""
    def gradient(x):
        x = np.asarray(x, dtype=float)
        f0 = objective(x)
        grad = np.empty(x.size)
        for i in range(x.size):
            h = _FD_STEP * max(abs(x[i]), 1.0)
            up, down = x.copy(), x.copy()
            up[i] += h
            if x[i] - h >= lower[i]:
                down[i] -= h
                grad[i] = (objective(up) - objective(down)) / (2 * h)
            else:
                grad[i] = (objective(up) - f0) / h
        return grad
    return gradient


def _scipy_minimize(method, fun, x0, lower, ftol_abs, maxeval):
    """L-BFGS-B or trust-constr over the box [lower, ∞)."""
    x0 = np.maximum(np.asarray(x0, dtype=float), lower)
    lower = np.asarray(lower, dtype=float)
    guarded = _Guarded(fun, x0, maxeval)
    if x0.size == 0:
        return OptimizeResult(x0, guarded.f_start, 1, True, "no parameters")
    gradient = _central_gradient(guarded, lower)
    bounds = optimize.Bounds(lower, np.full(x0.size, np.inf))
    # the objective is ~1e3-1e6 on real data: scipy's relative ftol from our absolute one
    ftol = max(ftol_abs / max(abs(guarded.f_start), 1.0), 1e-15)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # trust-constr's "delta_grad == 0.0"
            if method == "lbfgsb":
                out = optimize.minimize(guarded, x0, jac=gradient, method="L-BFGS-B",
                                        bounds=bounds, options={
                                            "maxfun": maxeval, "maxiter": maxeval,
                                            "ftol": ftol, "gtol": 1e-6})
            else:
                out = optimize.minimize(guarded, x0, jac=gradient, method="trust-constr",
                                        hess=optimize.BFGS(), bounds=bounds, options={
                                            "maxiter": maxeval, "gtol": 1e-6,
                                            "xtol": 1e-10})
        converged, message = bool(out.success), str(out.message)
    except _Budget:
        converged, message = False, "maximum number of evaluations reached"
    if guarded.failures and 2 * guarded.failures >= guarded.nfev:
        converged = False
        message = (f"{guarded.failures} evaluations failed (the objective could not be "
                   "evaluated)")
    return OptimizeResult(guarded.best_x, guarded.best_f, guarded.nfev, converged, message,
                          guarded.failures)
