"""Small pickles: what a fit stores per observation, and what it rebuilds.

A pickled fit used to carry every per-observation array several times: the
user's data (for ``update``), the model frame, statsmodels' design twice (the
formula engine's DataFrames and their arrays), the response with its weights,
the family kernel's precomputed constants, the random-effects design, the
modes' η, μ and log-likelihood terms (~490 MB for a 1e6-row Bernoulli fit
with ten covariates). Only what cannot be derived is stored now:

- **the model frame** is rebuilt from the user's data when its columns are the
  data's (the same values and dtypes at the kept rows), which is the usual case;
- **statsmodels' design** (``orig_endog``/``orig_exog`` and their arrays, the
  model's ``endog``/``exog``) is re-evaluated from the formula on the frame, as
  unpickling already did for the formula engine's design description;
- **the response** is rebuilt from ``endog`` (prior weights and offset kept
  only when they are not all 1 and 0), and with it the family kernel;
- **the random-effects design** keeps its level codes in the smallest integer
  type and drops covariates that are all 1 (an intercept);
- **the modes** keep u and the factor; η, μ and −2 log p(y|û) are recomputed
  when the recomputation is bit-identical (checked when pickling).

Each rebuild is the computation that produced the value in the first place, so
a round trip gives identical numbers (the tests check fitted values, the
deviance and predictions bit for bit).
"""

import dataclasses

import numpy as np
import pandas as pd

from .data_removal import is_removed
from .params import ParameterLayout
from .response import Response
from .validation import select_rows

__all__ = ["compact_model_state", "restore_model", "compact_term_state", "restore_term",
           "CompactPicklingMixin"]

_DERIVED = "__derived__"  # marks a state entry rebuilt on loading


# -- the model frame ---------------------------------------------------------------------------
def _frame_recipe(model, frame):
    """How to rebuild ``frame`` from the user's data: (positions of the kept rows or
    None for all, names of the columns taken from the data, the other columns),
    or None when the frame is not derivable."""
    source = getattr(model, "source", None)
    if source is None or not isinstance(frame, pd.DataFrame):
        return None
    try:
        selected = select_rows(source["data"], source["subset"])
    except Exception:  # the data changed since the fit: keep the frame
        return None
    if not selected.index.is_unique:
        return None
    positions = selected.index.get_indexer(frame.index)
    if np.any(positions < 0):
        return None
    if len(positions) == len(selected) and np.array_equal(positions, np.arange(len(selected))):
        positions = None
    derived, kept = [], {}
    for name in frame.columns:
        column = frame[name]
        if name in selected.columns and _same_column(column, selected[name], positions):
            derived.append(name)
        else:
            kept[name] = column.reset_index(drop=True)
    if not derived:
        return None
    kept = pd.DataFrame(kept, index=pd.RangeIndex(len(frame)))
    return {"positions": positions, "derived": derived, "kept": kept,
            "columns": list(frame.columns)}


def _same_column(column, candidate, positions):
    if positions is not None:
        candidate = candidate.iloc[positions]
    return column.dtype == candidate.dtype and column.reset_index(drop=True).equals(
        candidate.reset_index(drop=True))


def _rebuild_frame(model, recipe):
    source = model.source
    selected = select_rows(source["data"], source["subset"])
    if recipe["positions"] is not None:
        selected = selected.iloc[recipe["positions"]]
    parts = selected[recipe["derived"]]
    kept = recipe["kept"].set_axis(parts.index, axis=0)
    return pd.concat([parts, kept], axis=1)[recipe["columns"]]


# -- the model ---------------------------------------------------------------------------------
def compact_model_state(model, state, data_fields):
    """Drop from a model's pickled ``state`` what :func:`restore_model` rebuilds.

    ``data_fields`` are the fields of the statsmodels data container being
    pickled (a copy, changed here). Returns them.
    """
    if any(is_removed(state.get(k)) for k in ("endog", "exog")) or "response" not in state:
        return data_fields
    formula_design = data_fields.get("restore_r_model_spec", False) and all(
        isinstance(data_fields.get(k), np.ndarray) for k in ("endog", "exog"))
    if formula_design:
        same = {"exog": state.get("exog") is data_fields["exog"],
                "endog": state.get("endog") is data_fields["endog"],
                "basis": model.design_basis.X is state.get("exog")}
        for key in ("orig_endog", "orig_exog", "endog", "exog"):
            data_fields.pop(key, None)
        data_fields["restore_design"] = same
        for key in ("exog", "endog"):
            if same[key]:
                state[key] = _DERIVED
        if same["basis"]:  # X̃ is X itself (a well-conditioned design)
            basis = object.__new__(type(model.design_basis))
            basis.__dict__.update(vars(model.design_basis), X=_DERIVED)
            state["design_basis"] = basis
        recipe = _frame_recipe(model, data_fields.get("frame"))
        if recipe is not None:
            data_fields["frame"] = None
            data_fields["frame_recipe"] = recipe
    resp = state["response"]
    if type(resp) is Response:
        weights = resp.prior_weights
        state["response"] = (_DERIVED, {
            "prior_weights": None if np.all(weights == 1) else weights,
            "offset": None if not np.any(resp.offset) else resp.offset,
            "estimate_alpha": resp.estimate_alpha})
        for key in ("kernel", "parameters", "offset", "weights"):
            state[key] = _DERIVED
        state["model_weights_given"] = model.weights is not None
    return data_fields


def restore_data_arrays(data):
    """statsmodels' arrays of the design, from the formula engine's DataFrames."""
    data.endog, data.exog = data._convert_endog_exog(data.orig_endog, data.orig_exog)


def rebuild_frame(model, data):
    """The model frame of ``data`` from its recipe (before the design is evaluated)."""
    recipe = vars(data).pop("frame_recipe", None)
    if recipe is not None:
        data.frame = _rebuild_frame(model, recipe)


def restore_model(model):
    """Rebuild what :func:`compact_model_state` dropped (``model.__dict__`` loaded,
    the design re-evaluated)."""
    same = vars(model.data).pop("restore_design", None)
    if same is not None:
        if same["exog"]:
            model.exog = model.data.exog
        if same["endog"]:
            model.endog = model.data.endog
        if same["basis"]:
            model.design_basis.X = model.exog
    recipe = model.response
    if not (isinstance(recipe, tuple) and recipe[0] == _DERIVED):
        return
    info = recipe[1]
    model.response = Response(model.family, model.endog, info["prior_weights"],
                              info["offset"], model.endog_label,
                              estimate_alpha=info["estimate_alpha"])
    model.kernel = model.response.kernel
    model.offset = model.response.offset
    model.weights = model.response.prior_weights if vars(model).pop(
        "model_weights_given") else None
    model.parameters = ParameterLayout(model.random_effects, model.kernel, model.k_fe,
                                       model.fe_names)


# -- random-effects terms ---------------------------------------------------------------------
def compact_term_state(state):
    """Level codes in the smallest integer type, covariates of 1 dropped, and the
    template's row labels (unused) replaced by a range."""
    refs, z = state.get("refs"), state.get("z")
    if isinstance(refs, np.ndarray) and refs.size:
        state["refs"] = refs.astype(np.min_scalar_type(int(refs.max())))
    if isinstance(z, np.ndarray) and z.size and np.all(z == 1.0):
        state["z"] = (_DERIVED, z.shape)
    template = state.get("template")
    if isinstance(template, pd.DataFrame):
        state["template"] = template.reset_index(drop=True)
    return state


def restore_term(term):
    if isinstance(term.refs, np.ndarray) and term.refs.dtype != np.intp:
        term.refs = term.refs.astype(np.intp)
    if isinstance(term.z, tuple) and term.z[0] == _DERIVED:
        term.z = np.ones(term.z[1])


# -- results: the modes ------------------------------------------------------------------------
def _recomputed_modes(res, modes):
    """η, μ and −2 log p(y|û) at the modes, computed as the final PIRLS step does."""
    model = res.model
    re = model.random_effects
    fixed = model.offset + model.exog @ np.asarray(res.fe_params)
    eta = fixed + re.linear_predictor(re.scaled_covariates(res.theta.to_numpy()), modes.u)
    if model.is_lmm:
        return eta, eta, model.response.neg2loglik_obs(eta, res.fit_record.dispersion)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mu, neg2ll = model.response.mu_and_neg2ll(eta, res.fit_record.dispersion)
    return eta, mu, neg2ll


class CompactPicklingMixin:
    """Pickling of :class:`results.GLMMResults` without the modes' per-observation
    arrays when they are recomputed identically, nor cached per-row values."""

    def __getstate__(self):
        state = self.__dict__.copy()
        cache = state.get("_cache")
        if isinstance(cache, dict):
            nobs = getattr(self, "nobs", None)
            state["_cache"] = {k: v for k, v in cache.items()
                               if not (hasattr(v, "shape") and np.ndim(v) >= 1
                                       and len(v) == nobs)}
        record = state.get("fit_record")
        modes = getattr(record, "modes", None)
        if modes is None or any(is_removed(getattr(modes, k, None))
                                for k in ("eta", "mu", "neg2ll")) or \
                getattr(self.model, "removed_data", None):
            return state
        try:
            again = _recomputed_modes(self, modes)
        except Exception:  # keep the arrays when they cannot be recomputed
            return state
        if all(np.array_equal(a, getattr(modes, k)) for a, k in
               zip(again, ("eta", "mu", "neg2ll"))):
            light = object.__new__(type(modes))
            light.__dict__.update(vars(modes), eta=_DERIVED, mu=_DERIVED, neg2ll=_DERIVED)
            state["fit_record"] = dataclasses.replace(record, modes=light)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        modes = self.fit_record.modes
        if isinstance(getattr(modes, "eta", None), str) and modes.eta == _DERIVED:
            modes.eta, modes.mu, modes.neg2ll = _recomputed_modes(self, modes)

