"""Finite-difference derivatives of a scalar objective (lme4's ``R/deriv.R``,
statsmodels' ``tools/numdiff``), with the step sizes the GLMM fit uses.

Model-free: every function takes a callable ``fun(x) -> float``.
"""

import numpy as np

__all__ = ["gradient_and_curvature", "numerical_hessian", "curvature_steps"]


def gradient_and_curvature(fun, x, step):
    """Central-difference gradient and diagonal curvature (2k + 1 evaluations).

    Returns
    -------
    H, gradient : ndarray
        A diagonal matrix of the curvatures (negative ones replaced by their
        absolute value, so that it can stand in for a Hessian) and the gradient.
    """
    f0 = fun(x)
    eye = np.diag(step)
    fp = np.array([fun(x + e) for e in eye])
    fm = np.array([fun(x - e) for e in eye])
    curv = (fp - 2 * f0 + fm) / step ** 2
    return np.diag(np.where(curv > 0, curv, np.abs(curv) + 1e-8)), (fp - fm) / (2 * step)


def numerical_hessian(fun, x, step=1e-4):
    """Symmetric finite-difference Hessian, second-order accurate.

    Diagonal: (f(x+h) − 2 f(x) + f(x−h)) / h². Off-diagonal from the two
    diagonal moves f(x ± h e_i ± h e_j) and the axis values already computed:
    [f(++) + f(−−) − f(+i) − f(−i) − f(+j) − f(−j) + 2 f(x)] / (2h²). That is
    1 + 2k + k(k−1) evaluations, half of lme4's 4-point rule off the diagonal,
    with the same O(h²) error. The central-difference gradient comes with it.

    Returns
    -------
    H, gradient : ndarray
    """
    k = x.size
    h = np.broadcast_to(np.asarray(step, dtype=float), (k,))
    f0 = fun(x)
    eye = np.diag(h)
    fp = np.array([fun(x + eye[i]) for i in range(k)])
    fm = np.array([fun(x - eye[i]) for i in range(k)])
    H = np.diag((fp - 2 * f0 + fm) / h ** 2)
    for i in range(k):
        for j in range(i):
            fpp = fun(x + eye[i] + eye[j])
            fmm = fun(x - eye[i] - eye[j])
            val = (fpp + fmm - fp[i] - fm[i] - fp[j] - fm[j] + 2 * f0) / (2 * h[i] * h[j])
            H[i, j] = H[j, i] = val
    return H, (fp - fm) / (2 * h)


def curvature_steps(objective, p, lower, default=0.1):
    """Initial optimizer steps: half a standard error, from the curvature of the
    objective (2 evaluations per parameter); ``default`` where it cannot be had.

    On large data θ is known to ±0.01 while β is whitened to unit scale; without
    this the problem looks badly conditioned to BOBYQA and it stops early.
    """
    steps = np.full(p.size, default)
    try:
        f0 = objective(p)
        for i in range(p.size):
            h = 1e-3 * max(abs(p[i]), 0.1)
            if p[i] - h < lower[i]:
                continue
            e = np.zeros(p.size)
            e[i] = h
            curv = (objective(p + e) - 2 * f0 + objective(p - e)) / h ** 2
            if np.isfinite(curv) and curv > 0:
                steps[i] = float(np.clip(0.5 * np.sqrt(2.0 / curv), 1e-4, default))
    except (ArithmeticError, RuntimeError, np.linalg.LinAlgError):
        pass  # the default steps: only the optimizer's first moves depend on them
    return steps
