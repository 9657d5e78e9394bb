"""Simulation from a fit or from a formula with given parameters (lme4's
``simulate.merMod`` and ``simulate(formula, newdata=, newparams=)``).

A simulated response draws, for every random-effects term that is not
conditioned on, new spherical effects u ~ N(0, I) for every level (b = σ Λ u
for the linear mixed model, b = Λ u otherwise), forms
η = X β + offset + Z b and draws y | η from the family kernel.

Which terms keep their fitted effects follows lme4: ``use_u=True`` conditions
on all of them, ``re_form`` (a formula such as ``"~(1 | herd)"``) on the terms
it names, the default on none. At new data a level that was not in the fit
(``allow_new_levels=True``) gets a newly drawn effect even in a conditioned
term (lme4 would give it 0): a new herd is a draw from the herd population.
"""

import warnings

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import ValueWarning

from .data_removal import is_removed, require_data
from .families import BinomialKernel
from .frame import prepare_newdata
from .prediction import fixed_design, newdata_level_codes, select_terms
from .prediction import simulate as simulate_fitted
from .response import Response

__all__ = ["SimulationMixin", "simulate_formula", "simulate_rows"]


def _term_levels(term, newdata, allow_new_levels):
    """Level indices of the rows of ``newdata`` in ``term``: fitted levels first,
    then each new level (numbered in order of appearance); −1 for a missing
    grouping value; and the number of levels in all."""
    codes, labels, missing = newdata_level_codes(
        term, newdata, allow_new_levels, remedy="draw new random effects for them")
    new = (codes < 0) & ~missing
    n_levels = term.n_levels
    if new.any():
        extra, uniques = pd.factorize(pd.Series(labels[new], dtype=object))
        codes = codes.copy()
        codes[new] = n_levels + extra
        n_levels += len(uniques)
    return codes, n_levels, missing


def simulate_rows(res, theta, beta, newdata=None, conditioned=None, u=None,
                  allow_new_levels=False, offset=None):
    """What a draw needs at the rows of the fit (or ``newdata``): the fixed part
    of η and, per term, the levels, covariates and the effects it is
    conditioned on. ``res`` is the fit (its model and design for ``newdata``).

    Returns
    -------
    fixed : ndarray
        X β + offset.
    parts : list of (codes, z, n_levels, T, b_fit or None)
        ``codes`` −1: no effect (a missing grouping value, allowed); NaN in z:
        not allowed. ``b_fit``: the fitted effects of the fitted levels when
        the term is conditioned on.
    index : pandas.Index or None
    """
    model = res.model
    re = model.random_effects
    factors = re.factors(np.asarray(theta, dtype=float))
    conditioned = conditioned or [False] * len(re.terms)
    b_fit = re.conditional_modes(np.asarray(theta, dtype=float), u) if u is not None else None
    if newdata is None:
        fixed = model.exog @ beta + model.offset
        parts = [(term.refs, term.z, term.n_levels, T, b_fit[j] if conditioned[j] else None)
                 for j, (term, T) in enumerate(zip(re.terms, factors))]
        return fixed, parts, model.row_labels
    frame = prepare_newdata(newdata)
    X, offs = fixed_design(res, frame, offset)
    parts = []
    for j, (term, T) in enumerate(zip(re.terms, factors)):
        z = term.covariates_for(frame)
        codes, n_levels, missing = _term_levels(term, frame, allow_new_levels)
        if not allow_new_levels:
            z = np.where(missing[:, None], np.nan, z)
        parts.append((codes, z, n_levels, T, b_fit[j] if conditioned[j] else None))
    return X @ beta + offs, parts, frame.index


def _draw_eta(fixed, parts, rng, b_scale):
    """One draw of η: new effects for every level not conditioned on."""
    eta = fixed.copy()
    for codes, z, n_levels, T, b_fit in parts:
        s = T.shape[0]
        b = (rng.standard_normal((n_levels, s)) @ T.T) * b_scale
        if b_fit is not None:
            b[:len(b_fit)] = b_fit
        contrib = np.einsum("ij,ij->i", np.nan_to_num(z), b[np.maximum(codes, 0)])
        contrib[codes < 0] = 0.0
        contrib[np.isnan(z).any(axis=1)] = np.nan
        eta += contrib
    return eta


def _row_kernel(model, nrows, weights):
    """A family kernel for ``nrows`` new rows with prior weights (binomial trials)
    ``weights`` (default 1, as lme4)."""
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != (nrows,):
            raise ValueError(f"weights has shape {weights.shape}, expected ({nrows},)")
    # a response value in the family's support (the kernel checks it; never used)
    placeholder = np.full(nrows, 0.0 if isinstance(model.kernel, BinomialKernel) else 1.0)
    return Response(model.family, placeholder, weights, None, model.endog_label,
                    estimate_alpha=model.estimate_alpha).kernel


def draw(fixed, parts, disp, nsim, rng, kernel, index, b_scale=1.0):
    """``nsim`` simulated responses (NaN where η is undefined) as a DataFrame."""
    sims = {}
    for k in range(nsim):
        eta = _draw_eta(fixed, parts, rng, b_scale)
        ok = np.isfinite(eta)
        mu = kernel.mu(np.where(ok, eta, 0.0))
        y = np.asarray(kernel.simulate(mu, disp, rng), dtype=float)
        sims[f"sim_{k + 1}"] = np.where(ok, y, np.nan)
    return pd.DataFrame(sims, index=index)


def _parameters(model, newparams, theta, beta, disp):
    """(θ, β, dispersion) from ``newparams`` (keys ``theta``, ``beta`` and
    ``sigma`` or ``phi``), the given values filling in what it lacks."""
    newparams = dict(newparams or {})
    unknown = set(newparams) - {"theta", "beta", "sigma", "phi"}
    if unknown:
        raise ValueError(f"newparams has unknown keys {sorted(unknown)}; use 'theta', "
                         "'beta', and 'sigma' or 'phi'")
    if "theta" in newparams:
        theta = _vector(newparams["theta"], model.random_effects.theta_names(), "theta")
    if "beta" in newparams:
        beta = _vector(newparams["beta"], model.fe_names, "beta")
    if "sigma" in newparams and "phi" in newparams:
        raise ValueError("newparams: give 'sigma' or 'phi', not both")
    if "sigma" in newparams:
        disp = float(newparams["sigma"]) ** 2
    elif "phi" in newparams:
        disp = newparams["phi"]
    if disp is None:
        raise ValueError(f"the {model.kernel.name} family has a dispersion parameter: "
                         "give newparams['sigma'] (σ, φ = σ²) or newparams['phi']")
    if model.kernel.n_dispersion and not model.is_lmm:
        disp = model.kernel.check_dispersion_start(disp)
    if theta is None or beta is None:
        missing = [k for k, v in (("theta", theta), ("beta", beta)) if v is None]
        raise ValueError(f"newparams lacks {missing}")
    if np.any(theta < model.random_effects.theta_lower()):
        raise ValueError("newparams['theta']: diagonal elements must be >= 0")
    return theta, beta, disp


def _vector(values, names, key):
    """A parameter vector in the model's order (a dict or Series is matched by name)."""
    names = list(names)
    if isinstance(values, (dict, pd.Series)):
        values = dict(values)
        absent = [n for n in names if n not in values]
        if absent or len(values) != len(names):
            raise ValueError(f"newparams[{key!r}] must name {names}, got {list(values)}")
        values = [values[n] for n in names]
    out = np.asarray(values, dtype=float).ravel()
    if out.size != len(names):
        raise ValueError(f"newparams[{key!r}] has {out.size} values, the model needs "
                         f"{len(names)} ({', '.join(names)})")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"newparams[{key!r}] has non-finite values")
    return out


def _b_scale(model, disp):
    """σ for the linear mixed model (its θ is relative to σ), 1 otherwise."""
    return float(np.sqrt(disp)) if model.is_lmm else 1.0


class SimulationMixin:
    """lme4's ``simulate`` for :class:`results.GLMMResults`."""

    def simulate(self, nsim=1, seed=None, use_u=False, newdata=None, re_form=None,
                 allow_new_levels=False, weights=None, newparams=None):
        """Simulate responses from the fitted model (lme4's ``simulate``).

        Parameters
        ----------
        nsim : int
        seed : int, numpy Generator or None
        use_u : bool
            Condition on the fitted random effects of every term; otherwise
            (default) draw new ones, u ~ N(0, I) (b = Λ u).
        newdata : pandas.DataFrame, optional
            Simulate at new rows.
        re_form : str, optional
            Condition on the terms of the grouping factors it names
            (``"~(1 | herd)"``), drawing the others; overrides ``use_u``.
        allow_new_levels : bool
            Levels of ``newdata`` that are not in the fit get newly drawn effects
            (also in a conditioned term); otherwise they are an error.
        weights : array_like, optional
            With ``newdata``: the prior weights of its rows (binomial trials);
            default 1 per row, as lme4.
        newparams : dict, optional
            ``{"theta": ..., "beta": ..., "sigma"/"phi": ...}`` replacing the
            estimates (lme4's ``newparams``).

        Returns
        -------
        pandas.DataFrame
            One column per simulation (``sim_1`` ...), the response on the model's
            scale: 0/1 or proportions for the binomial (trials as in the fit, or
            ``weights``), counts for the Poisson; NaN rows where a covariate or
            (not allowed) grouping value of ``newdata`` is missing.
        """
        model = self.model
        n_terms = len(model.random_effects.terms)
        conditioned = (select_terms(model.random_effects, re_form) if re_form is not None
                       else [bool(use_u)] * n_terms)
        if newdata is None:
            require_data(self, "simulate without newdata")
            if weights is not None:
                raise ValueError("weights are for the rows of newdata; the fitted rows "
                                 "keep the fit's weights")
            if not any(conditioned) and newparams is None:  # as it always was
                return simulate_fitted(self, nsim, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        theta, beta, disp = _parameters(model, newparams, self.theta.to_numpy(),
                                        self.fe_params, self.fit_record.dispersion)
        fixed, parts, index = simulate_rows(self, theta, beta, newdata, conditioned, self.u,
                                            allow_new_levels)
        if newdata is None:
            kernel = model.kernel
        else:
            trials = model.response.trials
            if weights is None and not is_removed(trials) and np.any(trials > 1):
                warnings.warn("simulating binomial responses at newdata with 1 trial per "
                              "row (lme4's default); pass weights= for the numbers of "
                              "trials", ValueWarning, stacklevel=2)
            kernel = _row_kernel(model, len(fixed), weights)
        return draw(fixed, parts, disp, nsim, rng, kernel, index,
                    _b_scale(model, disp))


def simulate_formula(formula, newdata, newparams, family=None, nsim=1, seed=None,
                     weights=None, offset=None, eval_env=None):
    """Simulate responses from a model given by its formula and parameters, at
    the rows of ``newdata`` (lme4's ``simulate(~ x + (1 | g), newdata = ,
    newparams = list(theta = , beta = ), family = )``).

    Parameters
    ----------
    formula : str
        The right-hand side (``"~ x + (1 | g)"``; a left-hand side is ignored).
    newdata : pandas.DataFrame
        Covariates and grouping factors.
    newparams : dict
        ``theta`` (lme4's θ, in the order of ``GLMM.random_effects.theta_names``),
        ``beta`` (the fixed effects in the order of the design's columns, or a
        dict by name), and for the families with a dispersion ``sigma`` (σ, as
        lme4; φ = σ²) or ``phi`` (the family's dispersion value: φ; (φ, p) for
        Tweedie).
    family : statsmodels family, optional
        Default ``Binomial()``; the negative binomial's α is the family's.
        Gaussian with the identity link is the linear mixed model: b = σ Λ u.
    nsim : int
    seed : int, numpy Generator or None
    weights : str or array_like, optional
        Prior weights (binomial trials) per row; default 1.
    offset : str or array_like, optional
        Added to the formula's ``offset(...)`` terms.
    eval_env : dict, optional
        Namespace for functions in the formula (default: the caller's).

    Returns
    -------
    pandas.DataFrame
        ``sim_1`` ..., indexed as ``newdata``; NaN rows where a variable is missing.
    """
    from types import SimpleNamespace

    from .conditional_prediction import pad_rows
    from .families import kernel_class
    from .model import GLMM, _caller_namespace
    from .validation import as_data_frame, check_family

    family = check_family(family)
    rhs = formula.split("~", 1)[1] if "~" in formula else formula
    data = as_data_frame(newdata)
    # a placeholder response in the family's support that is neither constant nor
    # non-integer (the model's construction checks it; it is never fitted)
    values = (0.0, 1.0) if kernel_class(family) is BinomialKernel else (1.0, 2.0)
    data = data.assign(simulated_response_=np.resize(values, len(data)))
    model = GLMM.from_formula(f"simulated_response_ ~ {rhs}", data, family=family,
                              weights=weights, offset=offset, missing="exclude",
                              eval_env=eval_env or _caller_namespace(1))
    theta, beta, disp = _parameters(model, newparams, None, None,
                                    None if model.kernel.n_dispersion else
                                    model.kernel.default_dispersion())
    fixed, parts, _ = simulate_rows(SimpleNamespace(model=model), theta, beta)
    sims = draw(fixed, parts, disp, int(nsim), np.random.default_rng(seed), model.kernel,
                None, _b_scale(model, disp))
    return pd.DataFrame({name: pad_rows(model, col, "exclude") for name, col in sims.items()})
