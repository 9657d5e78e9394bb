"""Checks of the user's arguments, in one place, before any numerical work.

Every check raises ``ValueError`` or ``TypeError`` with a message that names the
argument (and the column, row or element at fault), so that a bad argument never
surfaces as a numpy/scipy/pandas/nlopt traceback from deep inside the fit.
"""

import dataclasses
import functools
import numbers
import re
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.genmod.families as fam
from statsmodels.genmod.families import links as L
from statsmodels.tools.sm_exceptions import ValueWarning

from .families import kernel_class, link_name
from .optimizer_choice import check_optimizer
from .progress import feedback, make_monitor
from .robust import check_cluster_options

__all__ = [
    "as_data_frame", "check_family", "check_fit_arguments", "check_start", "numeric_vector",
    "select_rows", "check_nagq", "check_design_rows", "check_identifiable", "FitOptions",
    "fit_options",
]

_MAX_NAGQ = 100
_MAX_AGQ_NODES = 10_000  # product grid nAGQ**S for S correlated random effects
# Dense blocks below this size are factored faster by single-threaded BLAS
_SMALL_DENSE = 1000

# R's family objects by name (family="binomial" as in glmer(family = binomial))
R_FAMILIES = {
    "binomial": fam.Binomial, "poisson": fam.Poisson, "gamma": fam.Gamma,
    "gaussian": fam.Gaussian, "inverse.gaussian": fam.InverseGaussian,
    "inverse_gaussian": fam.InverseGaussian, "negative.binomial": fam.NegativeBinomial,
    "negativebinomial": fam.NegativeBinomial,
    # glmmTMB's tweedie(): log link, the power estimated (from 1.5)
    "tweedie": functools.partial(fam.Tweedie, var_power=1.5),
}
R_LINKS = {
    "logit": L.Logit, "probit": L.Probit, "cauchit": L.Cauchy, "cloglog": L.CLogLog,
    "log": L.Log, "identity": L.Identity, "inverse": L.InversePower, "sqrt": L.Sqrt,
    "1/mu^2": L.InverseSquared,
}


def _family_from_r(text):
    """R's family as text: ``"binomial"``, ``"poisson"``, ``'binomial(link = "probit")'``,
    ``"Gamma(log)"`` (a family call as written in an R script)."""
    pattern = r"""\s*([A-Za-z_.]+)\s*(?:\(\s*(?:link\s*=\s*)?["']?([^"')]*)["']?\s*\))?\s*"""
    match = re.fullmatch(pattern, text)
    cls = R_FAMILIES.get(match.group(1).lower()) if match else None
    if cls is None:
        raise ValueError(f"unknown family {text!r}; use one of "
                         f"{', '.join(sorted(set(R_FAMILIES)))} (optionally with a link, "
                         "'binomial(link = \"probit\")') or a statsmodels family")
    link = (match.group(2) or "").strip()
    if not link:
        return cls()
    if link not in R_LINKS:
        raise ValueError(f"unknown link {link!r} in family {text!r}; use one of "
                         f"{', '.join(R_LINKS)}")
    return cls(link=R_LINKS[link](), check_link=False)


def check_family(family):
    """The family as a statsmodels family instance with a link that makes sense.

    Accepts an instance, a family class (``sm.families.Poisson``) or R's name
    (``"poisson"``); ``None`` means the binomial family.
    """
    if family is None:
        return sm.families.Binomial()
    if isinstance(family, str):
        return check_family(_family_from_r(family))
    if isinstance(family, type) and issubclass(family, fam.Family):
        try:
            return family()
        except TypeError:
            raise TypeError(f"family {family.__name__} needs arguments: pass an instance, "
                            f"e.g. sm.families.{family.__name__}(...)") from None
    if not isinstance(family, fam.Family):
        raise TypeError(f"family must be a statsmodels family such as "
                        f"sm.families.Binomial(), got {type(family).__name__}")
    allowed = kernel_class(family).links  # None: a user's family, any link
    kind = link_name(family.link)
    if allowed is not None and kind not in allowed:
        shown = [a for a in allowed if a != "cdf"]
        raise ValueError(
            f"the {kind} link does not fit the {type(family).__name__} family (its mean "
            f"range does not match); use one of the links {', '.join(shown)}")
    return family


def as_data_frame(data):
    """``data`` as a pandas DataFrame: polars, pyarrow and other frames that speak
    the dataframe interchange protocol are converted; anything else is refused."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"data: cannot make a DataFrame from the dict: {exc}") from None
    converted = None
    try:
        if hasattr(data, "to_pandas"):
            converted = data.to_pandas()
        elif hasattr(data, "__dataframe__"):
            converted = pd.api.interchange.from_dataframe(data)
    except Exception as exc:  # any conversion failure of a foreign frame library
        raise TypeError(f"data of type {type(data).__name__} could not be converted to a "
                        f"pandas DataFrame ({exc}); pass a pandas DataFrame") from None
    if isinstance(converted, pd.DataFrame):
        return converted
    raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}; "
                    "pass a pandas DataFrame")


def _mask_from_expression(data, subset):
    try:
        mask = data.eval(subset, engine="python")
    except Exception as exc:  # pandas raises many kinds for a bad expression
        raise ValueError(f"subset {subset!r} is not an expression over the columns of "
                         f"data: {exc}") from None
    if not isinstance(mask, pd.Series) or not pd.api.types.is_bool_dtype(mask.dtype):
        raise ValueError(f"subset {subset!r} must evaluate to one True/False per row")
    return mask


def select_rows(data, subset):
    """The rows of ``data`` that ``subset`` selects.

    ``subset`` is a boolean mask (one value per row, no missing values; a Series
    must carry the index of ``data``), an expression over the columns such as
    ``"urban == 'Y' & age > 20"`` (R's ``subset=``), or index labels.
    """
    if subset is None:
        return data
    if isinstance(subset, str):
        subset = _mask_from_expression(data, subset)
    if isinstance(subset, pd.Series) and (pd.api.types.is_bool_dtype(subset.dtype)
                                          or subset.dtype == object):
        if not subset.index.equals(data.index):
            if len(subset.index) != len(data.index) or not subset.index.sort_values().equals(
                    data.index.sort_values()):
                raise ValueError("subset is a Series whose index does not match the rows "
                                 "of data; pass a mask aligned with data.index")
            subset = subset.reindex(data.index)
        values = subset.to_numpy(dtype=object)
    else:
        values = np.asarray(subset, dtype=object) if not isinstance(subset, np.ndarray) \
            else subset
    if values.ndim != 1:
        raise ValueError(f"subset must be one-dimensional, got shape {values.shape}")
    is_bool = values.dtype == bool or (values.size and all(
        isinstance(v, (bool, np.bool_)) or v is None or v is pd.NA
        or (isinstance(v, float) and np.isnan(v)) for v in values[:10000]))
    if is_bool and values.size:
        missing = pd.isna(values)
        if missing.any():
            raise ValueError(f"subset has {int(missing.sum())} missing value(s); a mask "
                             "needs True or False for every row")
        if values.size != len(data):
            raise ValueError(f"subset has {values.size} values, data has {len(data)} rows")
        return data.loc[values.astype(bool)]
    absent = pd.Index(values).difference(data.index)
    if len(absent):
        raise ValueError(f"subset: {len(absent)} label(s) not in the index of data, e.g. "
                         f"{list(absent[:5])}")
    return data.loc[values]


def numeric_vector(value, frame, what):
    """A weights/offset argument as floats aligned with ``frame``.

    ``value`` is a column name or an array with one value per row. Missing
    values (NaN, None, pd.NA) stay NaN (the row is then incomplete); ±inf and
    non-numeric values are refused, naming the argument.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value not in frame.columns:
            raise ValueError(f"{what} column {value!r} is not in the data")
        series, label = frame[value], f"{what} column {value!r}"
    else:
        if isinstance(value, pd.Series) and not value.index.equals(frame.index):
            if len(value) != len(frame) or not value.index.sort_values().equals(
                    frame.index.sort_values()):
                raise ValueError(f"{what} is a Series whose index does not match the rows "
                                 "of data; pass values aligned with data.index")
            value = value.reindex(frame.index)
        if isinstance(getattr(value, "dtype", None), pd.CategoricalDtype):
            raise ValueError(f"{what} must be numeric, got a categorical")
        series, label = pd.Series(np.asarray(value, dtype=object).ravel()
                                  if np.ndim(value) else [value]), what
        if np.ndim(value) > 1 and np.shape(value)[1:] != (1,) * (np.ndim(value) - 1):
            raise ValueError(f"{what} must be one value per row, got shape {np.shape(value)}")
        if len(series) != len(frame):
            raise ValueError(f"{what} has length {len(series)}, expected {len(frame)} "
                             "(rows of data)")
    arr = _as_float(series, label)
    if np.isinf(arr).any():
        rows = np.flatnonzero(np.isinf(arr))
        raise ValueError(f"{label} has infinite values in {rows.size} row(s) (positions "
                         f"{rows[:5].tolist()}); remove them or use finite values")
    return arr


def _as_float(series, label):
    """Floats with NaN for any missing value; refuse text and other objects."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        raise ValueError(f"{label} must be numeric, got a categorical")
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("Float64").to_numpy(dtype=float, na_value=np.nan) \
            if pd.api.types.is_extension_array_dtype(series.dtype) \
            else series.to_numpy(dtype=float)
    values = series.to_numpy(dtype=object)
    out = np.empty(values.size)
    for i, v in enumerate(values):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            out[i] = np.nan
        elif isinstance(v, (numbers.Real, np.bool_)):
            out[i] = float(v)
        else:
            raise ValueError(f"{label} must be numeric; found {v!r} "
                             f"(dtype {series.dtype})")
    return out


def _positive_int(value, what, allow=()):
    """``value`` as a Python int ≥ 1 (an integral float such as 3000.0 is accepted)."""
    if isinstance(value, str) and value in allow:
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and \
            not isinstance(value, numbers.Integral) and float(value).is_integer():
        value = int(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or \
            value < 1:
        extra = "" if not allow else f" or one of {list(allow)}"
        raise ValueError(f"{what} must be a positive integer{extra}, got {value!r}")
    return int(value)


def check_fit_arguments(maxfun, blas_threads, boundary_tol, calc_hessian, nAGQ0_init):
    """Type and range checks of :meth:`GLMM.fit`'s scalar options.

    Returns
    -------
    maxfun, blas_threads
        As plain Python values (numpy integers are converted for nlopt).
    """
    maxfun = _positive_int(maxfun, "maxfun")
    if blas_threads is not None:
        blas_threads = _positive_int(blas_threads, "blas_threads", allow=("auto",))
    if isinstance(boundary_tol, bool) or not isinstance(boundary_tol, numbers.Real) or \
            not np.isfinite(boundary_tol) or boundary_tol < 0:
        raise ValueError(f"boundary_tol must be a non-negative number, got {boundary_tol!r}")
    if calc_hessian not in (True, False, "auto"):
        raise ValueError(f"calc_hessian must be True, False or 'auto', got {calc_hessian!r}")
    if not isinstance(nAGQ0_init, (bool, np.bool_)):
        raise ValueError(f"nAGQ0_init must be True or False, got {nAGQ0_init!r}")
    return maxfun, blas_threads


def check_start(start, k_theta, k_fe, theta_lower, kernel):
    """Validated starting values ``{"theta", "beta", "phi"}`` as float arrays.

    A numeric vector is θ (as lme4's ``start``); lme4's name ``fixef`` is accepted
    for β. Refuses unknown keys, wrong lengths, non-finite values, θ below its
    bounds and φ ≤ 0. ``kernel`` (:mod:`families`) says whether the family has
    a dispersion parameter and checks its starting value.
    """
    if start is None:
        return {}
    if not isinstance(start, dict):
        if isinstance(start, (str, bytes)) or np.ndim(start) != 1:
            raise TypeError(f"start must be a dict like {{'theta': ..., 'beta': ...}} or "
                            f"the theta values (as lme4), got {type(start).__name__}")
        start = {"theta": start}  # lme4: a numeric start is theta
    start = dict(start)
    if "fixef" in start and "beta" not in start:
        start["beta"] = start.pop("fixef")
    unknown = set(start) - {"theta", "beta", "phi"}
    if unknown:
        raise ValueError(f"unknown start values: {', '.join(sorted(map(str, unknown)))}; "
                         "use 'theta', 'beta' or 'phi'")
    out = {}
    sizes = {"theta": k_theta, "beta": k_fe}
    for key, size in sizes.items():
        if start.get(key) is None:
            continue
        try:
            arr = np.asarray(start[key], dtype=float).ravel()
        except (TypeError, ValueError):
            raise ValueError(f"start[{key!r}] must be numeric") from None
        if arr.size != size:
            raise ValueError(f"start[{key!r}] must have {size} elements, got {arr.size}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"start[{key!r}] has non-finite values")
        out[key] = arr
    if "theta" in out and np.any(out["theta"] < theta_lower):
        bad = np.flatnonzero(out["theta"] < theta_lower).tolist()
        raise ValueError(f"start['theta'] elements {bad} are below their lower bound 0 "
                         "(diagonal elements of the relative covariance factor)")
    if start.get("phi") is not None:
        if not kernel.n_dispersion:
            raise ValueError("start['phi'] is only for families with a dispersion parameter")
        phi = start["phi"]
        if isinstance(phi, bool) or (np.ndim(phi) == 0 and not isinstance(phi, numbers.Real)):
            raise ValueError(f"start['phi'] must be a positive number, got {phi!r}")
        try:
            out["phi"] = kernel.check_dispersion_start(phi)
        except TypeError:
            raise ValueError(f"start['phi'] must be a positive number, got {phi!r}") from None
    return out


def _rows_missing(value, what, n):
    """Per row, whether an array argument has a missing value (checks its length)."""
    if value is None:
        return np.zeros(n, dtype=bool)
    arr = np.asarray(value, dtype=object) if not isinstance(value, (pd.Series, pd.DataFrame)) \
        else value.to_numpy(dtype=object)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(f"{what} has length {arr.shape[0] if arr.ndim else 1}, expected {n} "
                         "(one per observation of endog)")
    missing = pd.isna(arr)
    return missing.any(axis=1) if missing.ndim == 2 else missing


def _check_numeric(value, what):
    """Array input must be numbers (missing values allowed here), never ±inf."""
    if value is None:
        return
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):  # find the culprit for the message
        frame = value if isinstance(value, pd.DataFrame) else pd.DataFrame(
            np.asarray(value, dtype=object).reshape(np.shape(value)[0], -1))
        arr = np.column_stack([_as_float(frame[name], what) for name in frame.columns])
    if np.isinf(arr).any():
        raise ValueError(f"{what} has infinite values in "
                         f"{int(np.isinf(arr).reshape(len(arr), -1).any(axis=1).sum())} row(s)")


def _take(value, keep):
    if value is None:
        return None
    if isinstance(value, (pd.Series, pd.DataFrame)):
        return value.iloc[keep]
    return np.asarray(value)[keep]


def complete_arrays(endog, exog, groups, exog_re, offset, weights, missing, has_terms):
    """Array input of :class:`GLMM`: check lengths and drop incomplete rows.

    With ``missing="drop"`` a row with a missing value in any argument is removed
    from all of them; otherwise missing values are an error naming the argument.
    """
    if missing not in ("none", "drop", "raise"):
        raise ValueError(f"missing must be 'none', 'drop' or 'raise', got {missing!r}")
    if not has_terms:
        if groups is None:
            raise ValueError("a GLMM needs random effects: pass random_effects or groups")
        if np.ndim(groups) != 1:
            raise ValueError(f"groups must be one-dimensional (one label per observation), "
                             f"got shape {np.shape(groups)}")
    n = np.shape(endog)[0] if np.ndim(endog) else 0
    args = {"endog": endog, "exog": exog, "groups": groups, "exog_re": exog_re,
            "offset": offset, "weights": weights}
    flags = {what: _rows_missing(value, what, n) for what, value in args.items()}
    for what in ("endog", "exog", "exog_re", "offset", "weights"):
        _check_numeric(args[what], what)
    incomplete = np.logical_or.reduce(list(flags.values()))
    if not incomplete.any():
        return endog, exog, groups, exog_re, offset, weights
    if missing != "drop" or has_terms:
        culprits = [f"{what} ({int(flag.sum())} rows)" for what, flag in flags.items()
                    if flag.any()]
        hint = "" if has_terms else "; pass missing='drop' to remove those rows"
        raise ValueError(f"missing values in {', '.join(culprits)}{hint}")
    keep = ~incomplete
    if not keep.any():
        raise ValueError("no observations left after removing rows with missing values")
    return tuple(_take(value, keep) for value in args.values())


# -- the model's data -------------------------------------------------------------------------
def check_design_rows(X, n):
    """The fixed-effects design has ``n`` rows of finite values."""
    if X.ndim != 2 or X.shape[0] != n:
        raise ValueError(f"exog must have {n} rows")
    if not np.all(np.isfinite(X)):
        raise ValueError("the fixed-effects design has non-finite values")


def check_identifiable(response, random_effects, endog_label, is_lmm, stacklevel=3):
    """Errors and warnings about the response and the grouping factors that
    lme4/R give: a constant response, non-integer counts (the family kernel's
    warnings), a factor with one level, or with one level per observation where
    its effect cannot be told from the residual."""
    y = response.y[response.weights > 0]
    if y.size and np.ptp(y) == 0:
        raise ValueError(f"response {endog_label!r} is constant ({y[0]:g}): there is "
                         "nothing to model")
    kernel = response.kernel
    for message in kernel.response_warnings(endog_label):
        warnings.warn(message, ValueWarning, stacklevel=stacklevel)
    n = response.nobs
    for term in random_effects.terms:
        if term.n_levels == n and (kernel.is_bernoulli or is_lmm):
            kind = "0/1 (Bernoulli) response" if kernel.is_bernoulli else "linear mixed model"
            raise ValueError(
                f"grouping factor {term.group_name!r} has one level per observation: "
                f"its random effect is not identifiable in a {kind}")
    for term in random_effects.terms:
        if term.n_levels < 2:
            raise ValueError(f"grouping factor {term.group_name!r} has {term.n_levels} "
                             "level; a random effect needs at least two")
        if term.n_re > n:
            raise ValueError(
                f"term ({term.expr} | {term.group_name}) has {term.n_re} random "
                f"effects for {n} observations; the model is not identifiable")


# -- the arguments of fit ---------------------------------------------------------------------
def check_nagq(nAGQ, random_effects):
    """The number of quadrature points as an int (1.0 is 1, as in R), checked
    against the random-effects terms (nAGQ > 1 needs a single term)."""
    if isinstance(nAGQ, (float, np.floating)) and float(nAGQ).is_integer():
        nAGQ = int(nAGQ)
    if not isinstance(nAGQ, (int, np.integer)) or isinstance(nAGQ, bool) or nAGQ < 0:
        raise ValueError(f"nAGQ must be a non-negative integer, got {nAGQ!r}")
    nAGQ = int(nAGQ)
    if nAGQ > _MAX_NAGQ:
        raise ValueError(f"nAGQ must be at most {_MAX_NAGQ}, got {nAGQ}")
    terms = random_effects.terms
    if nAGQ > 1 and len(terms) != 1:
        raise ValueError(
            "nAGQ > 1 needs a single random-effects term such as (1 | g) or "
            "(1 + x | g); this model has "
            f"{', '.join(f'({t.expr} | {t.group_name})' for t in terms)}")
    if nAGQ > 1 and nAGQ ** terms[0].n_cov > _MAX_AGQ_NODES:
        raise ValueError(
            f"nAGQ = {nAGQ} for {terms[0].n_cov} correlated random effects needs "
            f"{nAGQ ** terms[0].n_cov} quadrature nodes per level (at most "
            f"{_MAX_AGQ_NODES}); use fewer points")
    return nAGQ


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """The validated arguments of :meth:`GLMM.fit` (see there)."""

    nAGQ: int = 1
    start: dict = dataclasses.field(default_factory=dict)
    reml: bool = False
    cov_type: str = None
    maxfun: int = 10000
    nAGQ0_init: bool = True
    boundary_tol: float = 1e-5
    calc_hessian: object = "auto"
    information: str = "observed"
    optimizer: str = "bobyqa"
    cov_kwds: dict = None
    use_t: bool = False
    observer: object = None  # a progress.FitMonitor (verbose, callback, progress) or None

    def observer_for(self, stage):
        """The observer of one stage's deviance function, or None."""
        return None if self.observer is None else self.observer.stage(stage)

    def feedback(self):
        """Context of the fit that closes the observer's progress bar."""
        return feedback(self.observer)


def _largest_dense_block(random_effects, k_fe):
    """Order of the largest dense block of the factor (crossed terms, X)."""
    re = random_effects
    crossed = [t.n_re for j, t in enumerate(re.terms) if j > 0 and not re.nested[j]]
    return max(crossed + [k_fe])


def _statsmodels_fit_options(model, cov_type, cov_kwds=None, use_t=False):
    """statsmodels' ``cov_kwds`` (with ``cov_type="cluster"``, checked before the fit
    by :func:`robust.check_cluster_options`) and ``use_t``."""
    if not isinstance(use_t, (bool, np.bool_)):
        raise TypeError(f"use_t must be True or False, got {use_t!r}")
    if cov_kwds is not None and cov_type != "cluster":
        raise ValueError("cov_kwds needs cov_type='cluster'")
    if cov_type == "cluster":
        cov_kwds = check_cluster_options(model, cov_kwds)
    return {"cov_kwds": cov_kwds, "use_t": bool(use_t)}


def fit_options(model, unexpected, blas_threads, **arguments):
    """Validated :class:`FitOptions` of ``model.fit`` and the BLAS thread limit
    (``"auto"``: one thread when every dense block is small). The keywords
    ``verbose``, ``callback`` and ``progress`` become the options' observer (None
    when all are off)."""
    statsmodels_options = {key: unexpected.pop(key) for key in ("cov_kwds", "use_t")
                           if key in unexpected}
    feedback = {key: unexpected.pop(key) for key in ("verbose", "callback", "progress")
                if key in unexpected}
    if unexpected:
        raise TypeError(f"unexpected keyword arguments: {', '.join(unexpected)}")
    arguments.update(_statsmodels_fit_options(model, arguments["cov_type"],
                                              **statsmodels_options))
    arguments["observer"] = make_monitor(**feedback)
    arguments["nAGQ"] = check_nagq(arguments["nAGQ"], model.random_effects)
    if arguments["reml"] and not model.is_lmm:
        raise ValueError("reml=True needs the Gaussian family with the identity link")
    if arguments["information"] not in ("observed", "expected"):
        raise ValueError("information must be 'observed' or 'expected'")
    if arguments["cov_type"] not in (None, "hessian", "conditional", "cluster"):
        raise ValueError("cov_type must be 'hessian', 'conditional' or 'cluster'")
    arguments["maxfun"], blas_threads = check_fit_arguments(
        arguments["maxfun"], blas_threads, arguments["boundary_tol"],
        arguments["calc_hessian"], arguments["nAGQ0_init"])
    arguments["optimizer"] = check_optimizer(arguments["optimizer"])
    arguments["start"] = check_start(arguments["start"], model.k_theta, model.k_fe,
                                     model.random_effects.theta_lower(), model.kernel)
    if blas_threads == "auto":
        small = _largest_dense_block(model.random_effects, model.k_fe) < _SMALL_DENSE
        blas_threads = 1 if small else None
    return FitOptions(**arguments), blas_threads
