"""Grouping-factor levels, one rule for fitting and for prediction.

R turns a grouping variable into a factor through ``as.character``: the integer
``1``, the double ``1.0`` and the string ``"1"`` are one level, and a date is
its ``YYYY-MM-DD`` text. pandas keeps them apart (``1 != "1"``, a float column in
new data prints ``1.0``, two datetime resolutions print differently), so levels
compared as Python values or as ``str()`` silently split or miss levels. Every
value is mapped here to one canonical label first; the fit's levels and the
lookup of new data use the same map, so ``predict`` on the fitted rows finds
every fitted level whatever dtype the new data arrives in.
"""

import datetime as _dt
import numbers

import numpy as np
import pandas as pd

__all__ = ["level_label", "factor_codes", "lookup_codes"]

# integral doubles below this print as integers, as R's as.character does
_INTEGRAL_LIMIT = 1e15


def level_label(value):
    """The canonical text of one non-missing grouping value (R's ``as.character``)."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if np.isfinite(v) and v == np.floor(v) and abs(v) < _INTEGRAL_LIMIT:
            return str(int(v))
        return format(v, ".15g")
    if isinstance(value, (pd.Timestamp, np.datetime64, _dt.datetime, _dt.date)):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None and stamp == stamp.normalize():
            return stamp.strftime("%Y-%m-%d")
        return stamp.isoformat(sep=" ")
    if isinstance(value, (pd.Timedelta, np.timedelta64, _dt.timedelta)):
        return str(pd.Timedelta(value))
    return str(value)


def _sort_key(values):
    """How the distinct values of a non-categorical column are ordered as levels:
    numerically for numbers, in time for dates, as text otherwise (R's sort of a
    character vector)."""
    if all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
           for v in values):
        return lambda pair: (float(pair[0]), pair[1])
    if all(isinstance(v, (pd.Timestamp, np.datetime64, _dt.datetime, _dt.date))
           for v in values):
        try:
            stamps = [pd.Timestamp(v) for v in values]
            sorted(stamps)
            return lambda pair: (pd.Timestamp(pair[0]), pair[1])
        except TypeError:  # tz-aware mixed with naive
            pass
    return lambda pair: (pair[1], "")


def _raw_codes(values):
    """Integer codes (-1 for missing) and the distinct raw values of a column."""
    values = pd.Series(values) if not isinstance(values, pd.Series) else values
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy().astype(np.intp)
        return codes, list(values.cat.categories), True
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.intp), list(uniques), False


def factor_codes(values):
    """Level codes and labels of a grouping column, R's ``factor()`` of it.

    Parameters
    ----------
    values : pandas.Series or array_like

    Returns
    -------
    codes : ndarray of intp
        Index of each row's level; -1 where the value is missing.
    labels : list of str
        The canonical labels of the levels that occur, in level order: a
        categorical's own order, numbers numerically, dates in time, text sorted.
    """
    raw, uniques, categorical = _raw_codes(values)
    used = np.zeros(len(uniques), dtype=bool)
    used[raw[raw >= 0]] = True
    labels_of = [level_label(u) for u in uniques]
    if categorical:
        order = [i for i in range(len(uniques)) if used[i]]
    else:
        key = _sort_key(uniques)
        order = [i for _, _, i in sorted(
            ((u, lab, i) for i, (u, lab) in enumerate(zip(uniques, labels_of))),
            key=lambda t: key((t[0], t[1])))]
    labels, index_of = [], {}
    remap = np.full(len(uniques) + 1, -1, dtype=np.intp)  # last slot: missing (-1)
    for i in order:
        lab = labels_of[i]
        if lab not in index_of:  # 1, 1.0 and "1" are one level
            index_of[lab] = len(labels)
            labels.append(lab)
        remap[i] = index_of[lab]
    return remap[raw], labels


def lookup_codes(values, labels):
    """Index of each value's level in ``labels`` (a fitted factor's levels).

    Returns
    -------
    codes : ndarray of intp
        -1 for a level not in ``labels`` and for a missing value.
    text : ndarray of str
        The canonical label of each value (``""`` where missing), for messages.
    missing : ndarray of bool
    """
    raw, uniques, _ = _raw_codes(values)
    index_of = {lab: i for i, lab in enumerate(labels)}
    labels_of = [level_label(u) for u in uniques]
    remap = np.array([index_of.get(lab, -1) for lab in labels_of] + [-1], dtype=np.intp)
    text = np.array(labels_of + [""], dtype=object)
    return remap[raw], text[raw], raw < 0
