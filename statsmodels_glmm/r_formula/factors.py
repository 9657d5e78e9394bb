"""R's functions that make factors in formulas, as patsy stateful transforms:
``factor``, ``as.factor``, ``as.character``, ``relevel``, lme4's ``dummy`` and
``cut``. The levels (or break points) are learned from the fitted data and kept
for new data.
"""

from collections import OrderedDict

import numpy as np
import pandas as pd
from patsy import PatsyError

from ..levels import level_label
from .level_order import character_levels, r_sort_key
from .values import _categorical, _float, _is_missing, _is_number, _labels_of, _scalar, _values


class _Levels:
    """Collects the distinct values seen, for R's default levels."""

    def __init__(self):
        self._seen = OrderedDict()
        self._categories = None

    def add(self, x):
        if isinstance(x, pd.Series) and isinstance(x.dtype, pd.CategoricalDtype):
            x = x.array
        if isinstance(x, pd.Categorical):
            cats = [level_label(c) for c in x.categories]
            if self._categories is None:
                self._categories = (cats, set())
            used = self._categories[1]
            used.update(cats[c] for c in np.unique(x.codes) if c >= 0)
            return
        for v in pd.unique(pd.Series(_values(x).ravel(), dtype=object)):
            if not _is_missing(v):
                self._seen.setdefault(level_label(v), v)

    def levels(self, keep_unused=False, as_text=False):
        if self._categories is not None:
            cats, used = self._categories
            out = list(cats) if keep_unused else [c for c in cats if c in used]
            return sorted(out, key=r_sort_key) if as_text else out
        if as_text:
            return sorted(self._seen, key=r_sort_key)
        return [level_label(v) for v in character_levels(list(self._seen.values()))]


def _label_list(values):
    return [level_label(v) for v in np.atleast_1d(np.asarray(values, dtype=object)).ravel()]


class _Factor:
    """R's ``factor(x, levels, labels)``: a categorical in R's level order.

    Levels are learned from the fitted data (numbers numerically, text in R's
    collation, a categorical's own order, unused levels dropped) and kept for new
    data, where a value outside them is an error, as in R's ``predict``. With
    explicit ``levels``, other values are missing (NA), as in R.
    """

    _keep_unused = False
    _as_text = False

    def __init__(self):
        self._seen = _Levels()
        self._args = None
        self._levels = self._labels = None

    def memorize_chunk(self, x, levels=None, labels=None):
        self._args = (levels, labels)
        if levels is None:
            self._seen.add(x)

    def memorize_finish(self):
        levels, labels = self._args
        if levels is not None:
            levels = _label_list(levels)
        else:
            levels = self._seen.levels(self._keep_unused, self._as_text)
        if labels is None:
            labels = list(levels)
        else:
            labels = [str(v) for v in np.atleast_1d(np.asarray(labels, dtype=object)).ravel()]
            if len(labels) == 1 and len(levels) > 1:
                labels = [f"{labels[0]}{i + 1}" for i in range(len(levels))]
            if len(labels) != len(levels):
                raise PatsyError(f"factor(): {len(labels)} labels for {len(levels)} levels")
        self._levels, self._labels = levels, labels

    def transform(self, x, levels=None, labels=None):
        values, _ = _labels_of(x)
        if self._args[0] is None:
            new = sorted({v for v in values if v is not None} - set(self._levels))
            if new:
                raise PatsyError(f"factor has new level(s) {new[:5]} not seen in the fitted "
                                 f"data (levels {self._levels[:10]})")
        # duplicated labels merge levels, as in R
        out_levels = list(OrderedDict.fromkeys(self._labels))
        mapping = dict(zip(self._levels, self._labels))
        return _categorical([None if v is None else mapping.get(v) for v in values], out_levels)


class _AsFactor(_Factor):
    """R's ``as.factor(x)``: like ``factor(x)`` but a factor keeps all its levels."""

    _keep_unused = True

    def memorize_chunk(self, x):
        super().memorize_chunk(x)

    def transform(self, x):
        return super().transform(x)


class _AsCharacter(_AsFactor):
    """R's ``as.character(x)`` in a formula: text, which model.matrix turns into a
    factor whose levels are the sorted *texts* (``"10" < "9"``)."""

    _as_text = True
    _keep_unused = False


class _Relevel:
    """R's ``relevel(x, ref)``: ``ref`` (a level, or a 1-based position if a
    number) becomes the first level; the others keep their order."""

    def __init__(self):
        self._seen = _Levels()
        self._ref = None
        self._levels = None

    def memorize_chunk(self, x, ref):
        self._ref = ref
        self._seen.add(x)

    def memorize_finish(self):
        levels = self._seen.levels(keep_unused=True)
        ref = _scalar(self._ref, "relevel()'s ref")
        if _is_number(ref):
            pos = int(ref) - 1
            if not 0 <= pos < len(levels):
                raise PatsyError(f"relevel(): ref = {ref} is not a level position "
                                 f"(1..{len(levels)})")
            ref = levels[pos]
        ref = level_label(ref)
        if ref not in levels:
            raise PatsyError(f"relevel(): ref level {ref!r} does not exist "
                             f"(levels: {levels[:10]})")
        self._levels = [ref] + [lev for lev in levels if lev != ref]

    def transform(self, x, ref):
        values, _ = _labels_of(x)
        new = sorted({v for v in values if v is not None} - set(self._levels))
        if new:
            raise PatsyError(f"relevel(): new level(s) {new[:5]} not seen in the fitted data")
        return _categorical(values, self._levels)


class _Dummy:
    """lme4's ``dummy(f, levels)``: 0/1 indicator column(s) of the given level(s)
    of ``f`` (all levels, in R's order, if none are given). Missing ``f`` gives
    NaN (the row is dropped as incomplete)."""

    def __init__(self):
        self._seen = _Levels()
        self._keep = None

    def memorize_chunk(self, f, levels=None, levelsToKeep=None):  # noqa: N803 (lme4's name)
        levels = levels if levels is not None else levelsToKeep
        if levels is None:
            self._seen.add(f)
        else:
            self._keep = _label_list(levels)

    def memorize_finish(self):
        if self._keep is None:
            self._keep = self._seen.levels(keep_unused=True)

    def transform(self, f, levels=None, levelsToKeep=None):  # noqa: N803
        keep = self._keep
        values, _ = _labels_of(f)
        out = np.array([[np.nan if v is None else float(v == lev) for lev in keep]
                        for v in values], dtype=float).reshape(len(values), len(keep))
        return out[:, 0] if len(keep) == 1 else out


def _format_g(value, digits):
    """C's ``%.{digits}g`` (R's formatC(x, digits, width = 1))."""
    return f"{value + 0.0:.{digits}g}"


class _Cut:
    """R's ``cut(x, breaks, labels, right, include_lowest, dig_lab)``.

    A number of breaks is turned into break points from the range of the fitted
    data (as R does), kept for new data; labels are R's (``"(0.994,2.33]"``).
    ``labels=False`` gives the interval codes 1, 2, ... as numbers. All
    intervals are levels, also empty ones (as R's cut).
    """

    def __init__(self):
        self._min = np.inf
        self._max = -np.inf
        self._args = None
        self._breaks = None
        self._labels = None

    def memorize_chunk(self, x, breaks, labels=None, right=True, include_lowest=False,
                       dig_lab=3):
        self._args = (breaks, labels, right, include_lowest, dig_lab)
        v = _float(x).ravel()
        v = v[~np.isnan(v)]
        if v.size:
            self._min = min(self._min, v.min())
            self._max = max(self._max, v.max())

    def memorize_finish(self):
        breaks, labels, right, include_lowest, dig_lab = self._args
        breaks = np.atleast_1d(np.asarray(breaks, dtype=float)).ravel()
        if breaks.size == 1:
            if not np.isfinite(breaks[0]) or breaks[0] < 2:
                raise PatsyError("cut(): invalid number of intervals")
            nb = int(breaks[0] + 1)
            if not np.isfinite(self._min):
                raise PatsyError("cut(): no non-missing values to take the range of")
            lo, hi = self._min, self._max
            dx = hi - lo
            if dx == 0:
                dx = abs(lo) if lo != 0 else 1.0
                breaks = np.linspace(lo - dx / 1000, hi + dx / 1000, nb)
            else:
                breaks = np.linspace(lo, hi, nb)
                breaks[0], breaks[-1] = lo - dx / 1000, hi + dx / 1000
        else:
            breaks = np.sort(breaks)
        nb = breaks.size
        if len(np.unique(breaks)) != nb:
            raise PatsyError("cut(): 'breaks' are not unique")
        if labels is None:
            text = None
            for dig in range(int(dig_lab), max(12, int(dig_lab)) + 1):
                text = [_format_g(b, dig) for b in breaks]
                if all(text[i] != text[i + 1] for i in range(nb - 1)):
                    break
            open_, close = ("(", "]") if right else ("[", ")")
            labs = [f"{open_}{text[i]},{text[i + 1]}{close}" for i in range(nb - 1)]
            if include_lowest:
                if right:
                    labs[0] = "[" + labs[0][1:]
                else:
                    labs[-1] = labs[-1][:-1] + "]"
        elif labels is False:
            labs = False
        else:
            labs = [str(v) for v in np.atleast_1d(np.asarray(labels, dtype=object)).ravel()]
            if len(labs) != nb - 1:
                raise PatsyError("cut(): number of intervals and length of 'labels' differ")
        self._breaks, self._labels = breaks, labs

    def transform(self, x, breaks, labels=None, right=True, include_lowest=False, dig_lab=3):
        v = _float(x).ravel()
        b = self._breaks
        with np.errstate(invalid="ignore"):
            if right:
                code = np.searchsorted(b, v, side="left")  # b[i-1] < v <= b[i]
                if include_lowest:
                    code = np.where(v == b[0], 1, code)
            else:
                code = np.searchsorted(b, v, side="right")  # b[i-1] <= v < b[i]
                if include_lowest:
                    code = np.where(v == b[-1], b.size - 1, code)
        valid = (code >= 1) & (code <= b.size - 1) & ~np.isnan(v)
        if self._labels is False:
            return np.where(valid, code, np.nan).astype(float)
        labs = list(OrderedDict.fromkeys(self._labels))
        names = [self._labels[c - 1] if ok else None for c, ok in zip(code, valid)]
        return _categorical(names, labs)
