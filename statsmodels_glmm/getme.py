"""Components of a fit by lme4's ``getME`` names, and its ``hatvalues``."""

import numpy as np
import pandas as pd
import scipy.linalg as sla

from .data_removal import is_removed

__all__ = ["get_me", "hat_matrix_diag"]


def get_me(res, name):
    """The component ``name`` of the fit ``res`` (see :meth:`GLMMResults.get_me`)."""
    model = res.model
    re = model.random_effects
    theta = res.theta.to_numpy()
    getters = {
        "X": lambda: model.exog,
        "Z": re.sparse_z,
        "Lambda": lambda: re.relative_factor(theta),
        "Lambdat": lambda: re.relative_factor(theta).T.tocsr(),
        "u": lambda: res.u,
        "b": lambda: re.relative_factor(theta) @ res.u,
        "L": lambda: res.fit_record.modes.factor.leading(len(re.terms)).to_dense(),
        "theta": lambda: res.theta,
        "beta": lambda: pd.Series(res.fe_params, index=model.fe_names),
        "lower": re.theta_lower,
        "mu": lambda: res.fit_record.modes.mu,
        "eta": lambda: res.fit_record.modes.eta,
        "y": lambda: model.response.y,
        "offset": lambda: model.offset,
        "weights": lambda: model.response.prior_weights,
        "flist": lambda: {t.group_name: pd.Categorical.from_codes(t.refs, t.levels)
                          for t in re.terms},
        "cnms": lambda: {t.group_name: t.cnames for t in re.terms},
        "n": lambda: int(res.nobs),
        "p": lambda: model.k_fe,
        "q": lambda: re.n_re,
    }
    if name not in getters:
        raise ValueError(f"unknown component {name!r}; one of {sorted(getters)}")
    value = getters[name]()
    if is_removed(value):  # remove_data() took it: say so now, not at first use
        value._fail()
    return value


def hat_matrix_diag(res):
    """Diagonal of the penalized weighted least-squares hat matrix at the optimum."""
    model = res.model
    re = model.random_effects
    theta = res.theta.to_numpy()
    modes = res.fit_record.modes
    scaled = re.scaled_covariates(theta)
    disp = model.kernel.default_dispersion() if model.is_lmm else \
        res.fit_record.dispersion
    w = model.response.working_weights(modes.eta, modes.mu, disp)
    n, q = len(w), re.n_re
    if n * (q + model.k_fe) > 5e7:
        raise ValueError("the hat matrix diagonal needs an n x (q + p) dense solve; "
                         "this model is too large")
    factor = model.system.factor(scaled, w, model.exog)
    A = np.column_stack([re.sparse_z().toarray() @ re.relative_factor(theta).toarray(),
                         model.exog]) * np.sqrt(w)[:, None]
    V = sla.solve_triangular(factor.to_dense(), A.T, lower=True)
    return np.sum(V * V, axis=0)
