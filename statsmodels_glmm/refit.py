"""Refitting a model to a new response (lme4's ``refit``).

A new response comes in the forms the package produces or reads: what
:meth:`GLMMResults.simulate` returns (a one-column DataFrame ``sim_1``, or the
Series of one column), a plain vector, or for the binomial a two-column
``[successes, failures]`` array or DataFrame. It is normalised here, then the
model is copied with a new :class:`response.Response` (the design, random
effects and family kept) and fitted from the current estimates.
"""

import re

import numpy as np
import pandas as pd

from .data_removal import require_data
from .families import BinomialKernel
from .params import ParameterLayout
from .response import Response

__all__ = ["RefitMixin", "new_response_values", "model_with_response"]


def new_response_values(model, endog):
    """``endog`` as a float array of shape (n,) or, binomial only, (n, 2).

    A one-column DataFrame (or an (n, 1) array) is its column; a DataFrame of
    several simulations (columns ``sim_1``, ``sim_2`` ... as :meth:`simulate`
    returns), or two columns for another family than the binomial, is an error
    naming ``new_endog``.
    """
    simulations = isinstance(endog, pd.DataFrame) and all(
        re.fullmatch(r"sim_\d+", str(c)) for c in endog.columns)
    if isinstance(endog, pd.DataFrame) and (endog.shape[1] != 2 or simulations):
        if endog.shape[1] != 1:
            raise ValueError(f"new_endog has {endog.shape[1]} columns "
                             f"({', '.join(map(str, endog.columns[:4]))} ...): pass one "
                             "response, e.g. sims['sim_1']")
        endog = endog.iloc[:, 0]
    try:
        y = np.asarray(endog, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("new_endog must be numeric") from None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    nobs = model.response.nobs
    if y.ndim not in (1, 2) or y.shape[0] != nobs:
        raise ValueError(f"new_endog has shape {y.shape}, the model has {nobs} observations")
    if y.ndim == 2 and (y.shape[1] != 2 or not isinstance(model.kernel, BinomialKernel)):
        raise ValueError(f"new_endog has {y.shape[1]} columns: two columns "
                         "[successes, failures] are for the binomial family only; otherwise "
                         "pass one column")
    return y


def model_with_response(model, endog):
    """A shallow copy of ``model`` (design, random effects, family) with the new
    response ``endog`` (see :func:`new_response_values`)."""
    resp = model.response
    y = new_response_values(model, endog)
    # proportions keep the trials as weights; counts carry their own trials
    weights = resp.weights if y.ndim == 1 else resp.prior_weights
    # a shallow copy of the attributes (not copy.copy, which would go through the
    # pickling state and re-evaluate the formula's design)
    new = object.__new__(type(model))
    new.__dict__.update(vars(model))
    new.response = Response(model.family, y, weights, resp.offset, model.endog_label,
                            estimate_alpha=model.estimate_alpha)
    new.kernel = new.response.kernel
    new.parameters = ParameterLayout(model.random_effects, new.kernel, model.k_fe,
                                     model.fe_names)
    new.endog = y
    new._start_cache = None
    return new


class RefitMixin:
    """lme4's ``refit`` for :class:`results.GLMMResults`."""

    def refit(self, new_endog, **fit_kwargs):
        """Refit the same model to a new response (lme4's ``refit``).

        Reuses the random-effects structure, design and family, and starts from
        the current estimates in a single optimizer stage, with the fit's
        optimizer and options.

        Parameters
        ----------
        new_endog : array_like, pandas.Series or pandas.DataFrame
            One response in the representation :meth:`simulate` returns
            (proportions for a binomial with trials; its one-column DataFrame
            ``simulate(1)`` is accepted as it is), or, for the binomial, two
            columns [successes, failures].
        **fit_kwargs
            Passed to :meth:`GLMM.fit` (defaults: the original ``nAGQ``, no
            nAGQ=0 stage, starting at the current θ, β and dispersion).

        Returns
        -------
        GLMMResultsWrapper
        """
        require_data(self, "refit")
        model = self.model.with_response(new_endog)
        start = {"theta": self.theta.to_numpy(), "beta": self.fe_params}
        if model.has_dispersion and self.dispersion > 0:
            start["phi"] = self.fit_record.dispersion
        options = self.fit_record.options
        kwargs = {"nAGQ": self.nAGQ, "start": start, "nAGQ0_init": False,
                  "information": self.fit_record.information}
        if model.is_lmm:
            kwargs = {"reml": self.reml, "start": {"theta": start["theta"]}}
        if options is not None:
            kwargs["optimizer"] = options.optimizer
        kwargs.update(fit_kwargs)
        return model.fit(**kwargs)
