"""Wald tests when columns of X were dropped for collinearity.

statsmodels' ``wald_test`` inverts the covariance of every column of
``params``; dropped columns are NaN there (as lme4 reports them), so the
hypotheses are restricted to the estimable columns first.
"""

import numpy as np
from patsy import DesignInfo
from statsmodels.stats.contrast import ContrastResults

__all__ = ["wald_test_estimable"]


def _constraints(r_matrix, names):
    """(R, q) of a hypothesis given as text, a (R, q) tuple or a matrix."""
    if isinstance(r_matrix, str):
        constraint = DesignInfo(names).linear_constraint(r_matrix)
        R, q = constraint.coefs, constraint.constants.ravel()
    elif isinstance(r_matrix, tuple):
        R, q = np.atleast_2d(np.asarray(r_matrix[0], float)), np.asarray(r_matrix[1], float)
    else:
        R = np.atleast_2d(np.asarray(r_matrix, dtype=float))
        q = np.zeros(R.shape[0])
    return R, np.broadcast_to(np.ravel(q), (R.shape[0],))


def wald_test_estimable(res, r_matrix, use_f=None, df_constraints=None):
    """Wald test of the constraint rows that involve estimated columns only.

    Rows that involve only dropped columns are left out (``wald_test_terms``
    then tests what remains of a term, or reports NaN for a term that was
    dropped whole); a row that mixes them with estimated columns is an error.
    """
    model = res.model
    names = list(model.exog_names)
    R, q = _constraints(r_matrix, names)
    dropped = np.ones(len(names), dtype=bool)
    dropped[model.kept_columns] = False
    on_dropped = np.any(R[:, dropped] != 0, axis=1)
    on_kept = np.any(R[:, ~dropped] != 0, axis=1)
    mixed = on_dropped & on_kept
    if mixed.any():
        bad = [n for n, d in zip(names, dropped) if d and np.any(R[mixed][:, names.index(n)])]
        raise ValueError(f"the hypothesis involves {', '.join(bad)}, dropped from the "
                         "model for collinearity (not estimable)")
    rows = on_kept
    if not rows.any():
        nan = np.nan
        return ContrastResults(chi2=nan, df_denom=0, statistic=nan, distribution="chi2",
                               distargs=(0,))
    Rk, diff = R[rows][:, ~dropped], R[rows][:, ~dropped] @ res.fe_params - q[rows]
    cov = Rk @ res.cov_fe @ Rk.T
    stat = float(diff @ np.linalg.pinv(cov) @ diff)
    J = df_constraints or int(np.linalg.matrix_rank(cov))
    if use_f or (use_f is None and res.use_t):
        return ContrastResults(F=stat / J, df_denom=res.df_resid, df_num=J)
    return ContrastResults(chi2=stat, df_denom=J, statistic=stat, distribution="chi2",
                           distargs=(J,))
