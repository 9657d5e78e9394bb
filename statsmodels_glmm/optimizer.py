"""Bound-constrained derivative-free minimisation with BOBYQA (NLopt).

NLopt's ``LN_BOBYQA`` is Powell's quadratic-model trust-region method, the
optimizer lme4 (``nloptwrap``), MixedModels.jl and glmmTMB's peers use for
these smooth, low-dimensional, derivative-free objectives. NLopt rescales the
variables so that the per-coordinate initial steps are equal, which matters
when θ and β (on very different scales) are optimised together.
"""

from dataclasses import dataclass

import nlopt
import numpy as np

__all__ = ["OptimizeResult", "bobyqa", "nlopt_minimize"]

_MESSAGES = {
    nlopt.SUCCESS: "success",
    nlopt.STOPVAL_REACHED: "stopval reached",
    nlopt.FTOL_REACHED: "ftol reached",
    nlopt.XTOL_REACHED: "xtol reached",
    nlopt.MAXEVAL_REACHED: "maximum number of evaluations reached",
    nlopt.MAXTIME_REACHED: "maximum time reached",
    nlopt.ROUNDOFF_LIMITED: "roundoff-limited (converged to working precision)",
}


@dataclass
class OptimizeResult:
    """Outcome of :func:`bobyqa`."""

    x: np.ndarray
    fun: float
    nfev: int
    converged: bool
    message: str
    failed_evaluations: int = 0


def bobyqa(fun, x0, lower, initial_step, ftol_abs=1e-10, xtol_abs=1e-9, maxeval=10000,
           upper=None, ftol_rel=1e-12):
    """Minimise ``fun`` from ``x0`` subject to ``lower <= x <= upper`` by BOBYQA.

    See :func:`nlopt_minimize` for the parameters.
    """
    return nlopt_minimize(fun, x0, lower, initial_step, ftol_abs, xtol_abs, maxeval, upper,
                          ftol_rel, algorithm=nlopt.LN_BOBYQA)


def nlopt_minimize(fun, x0, lower, initial_step, ftol_abs=1e-10, xtol_abs=1e-9, maxeval=10000,
                   upper=None, ftol_rel=1e-12, algorithm=nlopt.LN_BOBYQA):
    """Minimise ``fun`` from ``x0`` subject to ``lower <= x <= upper`` with one of
    NLopt's derivative-free algorithms (default BOBYQA).

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float``. If it raises ``ArithmeticError`` or
        ``RuntimeError`` (e.g. PIRLS failure) the evaluation counts as the
        starting value, which keeps BOBYQA's quadratic model finite.
    x0, lower, initial_step : array_like
    upper : array_like, optional
        Default +inf.
    ftol_abs, xtol_abs, ftol_rel : float
        Stopping tolerances on the objective and on the parameters. The relative
        one matters on large data, where −2ℓ is large and the rounding noise of
        its sum over millions of rows exceeds any small absolute tolerance.
    maxeval : int
    algorithm : int
        NLopt's algorithm constant (``nlopt.LN_BOBYQA``, ``nlopt.LN_NELDERMEAD``,
        ``nlopt.LN_SBPLX`` ...).

    Returns
    -------
    OptimizeResult
    """
    x0 = np.asarray(x0, dtype=float)
    lower = np.asarray(lower, dtype=float)
    upper = np.full(x0.size, np.inf) if upper is None else np.asarray(upper, dtype=float)
    x0 = np.minimum(np.maximum(x0, lower), upper)
    f_start = float(fun(x0))
    failures = [0]
    best = {"x": x0.copy(), "f": f_start}

    def objective(x, grad):
        try:
            value = float(fun(np.asarray(x)))
        except (ArithmeticError, RuntimeError, np.linalg.LinAlgError):
            failures[0] += 1
            return f_start
        if not np.isfinite(value):
            failures[0] += 1
            return f_start
        if value < best["f"]:
            best["x"], best["f"] = np.array(x, dtype=float), value
        return value

    if x0.size == 0:
        return OptimizeResult(x0, f_start, 1, True, "no parameters")
    opt = nlopt.opt(algorithm, x0.size)
    opt.set_min_objective(objective)
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    # BOBYQA's first trust region must fit in the box (NLopt refuses it otherwise)
    width = upper - lower
    step = np.asarray(initial_step, dtype=float)
    step = np.where(np.isfinite(width) & (width > 0), np.minimum(step, 0.5 * width), step)
    opt.set_initial_step(step)
    opt.set_ftol_abs(ftol_abs)
    opt.set_ftol_rel(ftol_rel)
    opt.set_xtol_abs(np.full(x0.size, xtol_abs))
    opt.set_maxeval(maxeval)
    try:
        opt.optimize(x0)
        code = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        # NLopt: "roundoff errors limited progress" — the tolerances are below the
        # objective's floating-point noise; the best point found is the answer.
        code = nlopt.ROUNDOFF_LIMITED
    nfev = opt.get_numevals() + 1
    converged = code in (nlopt.SUCCESS, nlopt.FTOL_REACHED, nlopt.XTOL_REACHED,
                         nlopt.ROUNDOFF_LIMITED)
    message = _MESSAGES.get(code, f"nlopt code {code}")
    if failures[0] > 0 and 2 * failures[0] >= nfev:
        # failed evaluations count as the starting value: when they dominate,
        # BOBYQA's "convergence" only says that its model of a constant is flat
        converged = False
        message = f"{failures[0]} evaluations failed (the objective could not be evaluated)"
    return OptimizeResult(best["x"], best["f"], nfev, converged, message, failures[0])
