"""R's plain (stateless) functions for formulas: ``log``, ``exp``, ...,
``as.numeric``, ``pmin``/``pmax``, ``c``, ``%in%``, ``is.na``, ``ifelse`` and the
reductions ``mean``, ``sd``, ``min``, ...
"""

import numpy as np
import pandas as pd

from ..levels import level_label
from .values import _float, _is_bool, _is_missing, _is_number, _labels_of, _values


def _r_log(x, base=None):
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(_float(x))
        return out if base is None else out / np.log(float(base))


def _elementwise(fn):
    def wrapped(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return fn(_float(x))
    wrapped.__name__ = fn.__name__
    return wrapped


def as_numeric(x):
    """R's ``as.numeric``: a factor gives its level codes 1, 2, ...; text is
    parsed (NaN if not a number); logicals are 0/1."""
    if isinstance(x, pd.Series) and isinstance(x.dtype, pd.CategoricalDtype):
        x = x.array
    if isinstance(x, pd.Categorical):
        codes = x.codes.astype(float) + 1
        codes[x.codes < 0] = np.nan
        return codes
    if isinstance(x, pd.DataFrame):
        return _float(x)
    vals = _values(x)
    if vals.dtype == object:
        return pd.to_numeric(pd.Series(vals, dtype=object), errors="coerce").to_numpy(float)
    return vals.astype(float)


def as_integer(x):
    """R's ``as.integer``: factor codes, or numbers truncated toward zero."""
    return np.trunc(as_numeric(x))


def pmin(*args):
    """R's ``pmin``: elementwise minimum (NaN propagates, as na.rm = FALSE)."""
    out = _float(args[0])
    for a in args[1:]:
        out = np.minimum(out, _float(a))
    return out


def pmax(*args):
    """R's ``pmax``: elementwise maximum (NaN propagates, as na.rm = FALSE)."""
    out = _float(args[0])
    for a in args[1:]:
        out = np.maximum(out, _float(a))
    return out


def c(*args):
    """R's ``c()``: the arguments flattened into one vector (a float array if
    all are numbers, else a list of R texts)."""
    flat = []
    for a in args:
        flat.extend(np.atleast_1d(np.asarray(a, dtype=object)).ravel().tolist()
                    if not isinstance(a, str) else [a])
    if flat and all(_is_bool(v) for v in flat):
        return np.array(flat, dtype=bool)
    if all(_is_number(v) or _is_bool(v) for v in flat):
        return np.array(flat, dtype=float)
    return [v if isinstance(v, str) else level_label(v) for v in flat]


def is_in(x, table):
    """R's ``x %in% table`` (values compared as R text)."""
    labels, _ = _labels_of(x)
    want = {level_label(v) for v in np.atleast_1d(np.asarray(table, dtype=object)).ravel()
            if not _is_missing(v)}
    return np.array([lab is not None and lab in want for lab in labels])


def is_na(x):
    """R's ``is.na``."""
    labels, _ = _labels_of(x)
    return np.array([lab is None for lab in labels])


def ifelse(test, yes, no):
    """R's ``ifelse``: NaN where ``test`` is missing."""
    t = _float(test)
    missing = np.isnan(t)
    out = np.where(np.nan_to_num(t) != 0, _values(yes), _values(no))
    if missing.any():
        out = out.astype(float)
        out[missing] = np.nan
    return out


def _reducer(fn, name):
    def reduce(x, na_rm=False):
        v = _float(x)
        if na_rm:
            v = v[~np.isnan(v)]
        return fn(v)
    reduce.__name__ = name
    reduce.__doc__ = f"R's ``{name}(x, na.rm = FALSE)``."
    return reduce


def _sd(v):
    return float(np.std(v, ddof=1)) if v.size > 1 else np.nan
