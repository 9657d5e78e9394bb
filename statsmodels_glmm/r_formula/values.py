"""R's view of values: what is missing, logical or a number, and column-like
arguments (Series, Categorical, arrays, scalars) as plain arrays for the
transforms and functions of formulas.
"""

import numbers

import numpy as np
import pandas as pd
from patsy import PatsyError

from ..levels import level_label


def _is_missing(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and np.isnan(v)


def _is_bool(v):
    return isinstance(v, (bool, np.bool_))


def _is_number(v):
    return isinstance(v, numbers.Real) and not _is_bool(v)


def _values(x):
    """1-D object or float array of a column-like argument."""
    if isinstance(x, (pd.Series, pd.Index)):
        if isinstance(x.dtype, pd.CategoricalDtype):
            return x.astype(object).to_numpy()
        if pd.api.types.is_extension_array_dtype(x.dtype):
            return x.astype(object).where(x.notna(), None).to_numpy()
        return x.to_numpy()
    if isinstance(x, pd.Categorical):
        return np.asarray(x.astype(object))
    arr = np.asarray(x)
    return arr.reshape(-1) if arr.ndim == 0 else arr


def _float(x):
    """A float array (1-D or 2-D) of a numeric argument; missing values are NaN."""
    if isinstance(x, pd.DataFrame):
        return x.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if isinstance(x, pd.Series) and pd.api.types.is_extension_array_dtype(x.dtype):
        return x.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    arr = np.asarray(x)
    if arr.dtype == object:
        arr = np.array([np.nan if _is_missing(v) else v for v in arr.ravel()],
                       dtype=float).reshape(arr.shape)
    return np.asarray(arr, dtype=float)


def _labels_of(x):
    """(labels, categories) of a factor-like argument: the R text of every value
    (None if missing) and, for a categorical, its categories."""
    if isinstance(x, pd.Series) and isinstance(x.dtype, pd.CategoricalDtype):
        x = x.array
    if isinstance(x, pd.Categorical):
        cats = [level_label(c) for c in x.categories]
        labels = [None if c < 0 else cats[c] for c in x.codes]
        return labels, cats
    vals = _values(x)
    return [None if _is_missing(v) else level_label(v) for v in vals], None


def _categorical(labels, levels):
    """A pandas Categorical of labels (None = missing) with the given levels."""
    index = {lev: i for i, lev in enumerate(levels)}
    codes = np.array([-1 if lab is None else index.get(lab, -1) for lab in labels],
                     dtype=np.int64)
    return pd.Categorical.from_codes(codes, categories=pd.Index(levels, dtype=object))


def _scalar(value, name):
    arr = np.asarray(value).ravel()
    if arr.size != 1:
        raise PatsyError(f"{name} must be a single value, got {value!r}")
    return arr[0]
