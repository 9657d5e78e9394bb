"""``remove_data()``: a fit without its per-observation arrays.

statsmodels' ``remove_data`` sets the model's ``endog``/``exog`` (and the data
container's arrays) to None. A GLMM holds much more per observation: the
response with its weights and its family kernel's precomputations, the
random-effects design Z, the offset, the user's data (for ``update``) and the
modes' η, μ and log-likelihood terms. :class:`DataRemovalMixin` removes all of
them and puts :class:`RemovedData` placeholders in their place, so that what
needs them fails with an error naming what was removed, instead of a
``NoneType`` error or, as the bootstrap did, an empty result.

What keeps working: ``params``, ``bse``, ``summary()`` (its statistics are
computed before the arrays go), ``varcorr()``, ``ranef()``, ``coef()``, Wald
tests, and ``predict``/``get_prediction``/``simulate`` at ``newdata`` (the
model frame stays: pickled fits rebuild their formula design from it).
"""

import numpy as np

__all__ = ["DataRemovedError", "RemovedData", "DataRemovalMixin", "require_data"]


class DataRemovedError(ValueError):
    """What the operation needs was removed by ``remove_data()``."""


class RemovedData:
    """Placeholder of an array or object removed by ``remove_data()``: every use
    raises :class:`DataRemovedError` naming it. ``shape`` is kept (the number of
    covariates of a random-effects term is read from it)."""

    def __init__(self, what, shape=None):
        self.what = what
        self.shape = shape

    def _fail(self, *args, **kwargs):
        raise DataRemovedError(f"{self.what} was removed by remove_data(): this needs the "
                               "data of the fit; refit the model (or keep a copy made "
                               "before remove_data) to use it")

    def __getattr__(self, name):
        if name.startswith("__"):  # protocols probed by pickle, copy, numpy
            raise AttributeError(name)
        self._fail()

    def __repr__(self):
        return f"<{self.what}: removed by remove_data()>"

    __array__ = __len__ = __iter__ = __getitem__ = __call__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __matmul__ = __rmatmul__ = __truediv__ = __rtruediv__ = __neg__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = _fail


def is_removed(value):
    return isinstance(value, RemovedData)


def require_data(res, what):
    """Raise :class:`DataRemovedError` naming what is missing when the data of the
    fit ``res`` were removed."""
    removed = getattr(res.model, "removed_data", None)
    if removed:
        raise DataRemovedError(f"{what} needs the data of the fit, which remove_data() "
                               f"removed ({', '.join(removed)}); refit the model to use it")


# the per-observation cached values of the results (recomputed, then failing, on use)
_ROW_CACHES = ("fittedvalues", "fittedvalues_array", "resid_pearson", "resid_deviance",
               "resid_response", "resid_working", "linear_predictor")


def _per_row(value, nobs):
    """True for an array (or a tuple holding one) with one entry per observation."""
    if isinstance(value, tuple):
        return any(_per_row(v, nobs) for v in value)
    return isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == nobs


def _strip(obj, label, nobs):
    """A shallow copy of ``obj`` with placeholders for its per-observation
    attributes (the original may be shared with other fits), and their labels."""
    copy = _shallow_copy(obj)
    removed = []
    for name, value in list(vars(copy).items()):
        if _per_row(value, nobs):
            what = f"{label}.{name.lstrip('_')}"
            setattr(copy, name, RemovedData(what, getattr(value, "shape", None)))
            removed.append(what)
    return copy, removed


def _shallow_copy(obj):
    new = object.__new__(type(obj))
    new.__dict__.update(vars(obj))
    return new


def _remove_model_arrays(model):
    """Placeholders for the model's per-observation attributes; their names.

    ``model`` is the results' own copy; what it shares with other fits (the
    random effects, the design basis, the response of a refit's original) is
    copied before it is stripped. The response and its family kernel stay (their
    formulas and the dispersion's meaning are needed at new data): only their
    arrays go.
    """
    from .params import ParameterLayout  # (imports nothing of this module)

    nobs = model.response.nobs
    model.random_effects.theta_scale()  # computed from the covariates, kept
    model.response, removed = _strip(model.response, "model.response", nobs)
    kernel, more = _strip(model.kernel, "the family kernel", nobs)
    model.kernel = model.response.kernel = kernel
    removed += more
    for name in ("endog", "exog", "offset", "weights"):
        if getattr(model, name, None) is not None or name in ("endog", "exog"):
            setattr(model, name, RemovedData(f"model.{name}"))
    model.design_basis, more = _strip(model.design_basis, "model.design_basis", nobs)
    removed += more
    re = _shallow_copy(model.random_effects)
    re.terms = []
    for term in model.random_effects.terms:
        term, more = _strip(term, f"the random-effects term ({term.expr} | "
                                  f"{term.group_name})", nobs)
        re.terms.append(term)
        removed += more
    model.random_effects = re
    model.parameters = ParameterLayout(re, kernel, model.k_fe, model.fe_names)
    model.system = RemovedData("model.system (the penalized system of the data)")
    data = model.data
    _ = model.exog_names, model.endog_names  # (statsmodels caches them)
    for name in ("orig_endog", "orig_exog"):
        if getattr(data, name, None) is not None:
            setattr(data, name, None)
            removed.append(f"model.data.{name}")
    if getattr(model, "source", None) is not None:
        removed.append("model.source (the data, for update)")
    model.source = None
    model._start_cache = None
    return ["model.endog", "model.exog"] + removed


class DataRemovalMixin:
    """``remove_data()`` for :class:`results.GLMMResults`."""

    def remove_data(self):
        """Remove the per-observation arrays from the results and the model.

        Keeps what needs no data (estimates, ``summary()``, ``varcorr()``,
        ``ranef()``, Wald tests) and the model frame, so that ``predict``,
        ``get_prediction`` and ``simulate`` at ``newdata`` keep working, also
        after pickling. Everything that needs the data (``refit``, ``simulate``
        without ``newdata``, ``bootstrap``, ``profile``, ``allfit``, the fitted
        values and residuals) raises :class:`DataRemovedError` naming what was
        removed.
        """
        self.__dict__.setdefault("_cache", {})  # statsmodels expects it (fresh fits lack it)
        from .conditional_prediction import joint_factor  # (imports this module)

        # what summary(), deviance and the prediction's standard errors need
        self.summary_statistics()
        try:
            joint_factor(self)
        except np.linalg.LinAlgError:
            pass
        if not getattr(self.model, "removed_data", None):
            # the results' own model and data container: other fits may share them
            self.model = _shallow_copy(self.model)
            self.model.data = _shallow_copy(self.model.data)
        super().remove_data()
        model = self.model
        removed = _remove_model_arrays(model) if not getattr(model, "removed_data", None) \
            else []
        modes = self.fit_record.modes
        for name in ("eta", "mu", "neg2ll"):
            if not is_removed(getattr(modes, name)):
                setattr(modes, name, RemovedData(f"the modes' {name}"))
        for key in _ROW_CACHES:
            self._cache.pop(key, None)
        if not getattr(model, "removed_data", None):
            model.removed_data = removed

    def summary_statistics(self):
        """The data-dependent numbers of :meth:`summary` and :attr:`deviance`,
        computed once and kept through ``remove_data()``.

        Returns
        -------
        dict
            ``scaled_residual_quantiles`` (of the Pearson residuals over σ) and
            ``deviance``.
        """
        kept = self.__dict__.setdefault("_kept_statistics", {})
        if "deviance" not in kept:
            scaled = np.asarray(self.resid_pearson) / self.sigma
            kept["scaled_residual_quantiles"] = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1.0])
            kept["deviance"] = float(self.model.response.unit_deviance(
                self.fittedvalues_array, self.fit_record.dispersion).sum())
        return kept
