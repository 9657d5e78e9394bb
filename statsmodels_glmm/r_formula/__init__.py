"""R's formula language (as written in lme4 scripts) translated for patsy.

``translate`` turns the fixed-effects right-hand side of an R formula into a
patsy formula whose ``dmatrix`` is R's ``model.matrix``: the same columns, in
the same order, with the same values (column *names* follow patsy's
convention). To get there it does what R's ``terms.formula`` does -- expands
``*``, ``/``, ``^``, ``%in%`` and ``-`` into a list of terms, sorts them by
order, and decides for every factor in every term whether it is coded by
contrasts or by indicators (the Chambers-Heiberger rule of ``TermCode`` and
``model.matrix``'s no-intercept adjustment). The result is written as a flat
patsy formula with one term per R term.

Patsy orders the columns of a design differently from R: it puts every term
without a numeric factor first, then groups terms by their numeric factors.
``y ~ x + f`` is ``Intercept, f, x`` in patsy and ``(Intercept), x, f`` in R.
When patsy's order or its choice of coding would differ from R's, the factors
of the terms concerned are written as numeric 0/1 indicators of their levels
(``dummy(f, "b")``), which patsy keeps where they are. This needs the levels,
so pass the data frame (not just the column names) to ``translate``.

``R_NAMESPACE`` holds R's functions for formulas (``factor``, ``relevel``,
``scale``, ``poly``, ``ns``, ``bs``, ``cut``, ...), written as patsy stateful
transforms where they learn something from the data, so that prediction on new
data uses what was learned on the fitted data (R's ``makepredictcall``).
"""

from collections import OrderedDict
from dataclasses import dataclass
from io import StringIO
import itertools
import json
import keyword
import math
import numbers
import re
import tokenize
import unicodedata

import numpy as np
import pandas as pd
from patsy import EvalEnvironment, NAAction, PatsyError, stateful_transform
import patsy.builtins
from patsy.categorical import CategoricalSniffer, _CategoricalBox, guess_categorical
from patsy.contrasts import Helmert, Sum, Treatment
from patsy.desc import Term
from patsy.redundancy import pick_contrasts_for_term
from scipy.interpolate import BSpline

from ..levels import level_label

__all__ = ["R_NAMESPACE", "translate", "translate_expression", "translate_formula",
           "has_formula_dot", "expand_dot", "update_formula", "character_levels", "r_sort_key",
           "referenced_columns"]


# ---------------------------------------------------------------------------
# R's order of levels
# ---------------------------------------------------------------------------

# ICU's root collation (R's sort() of text in en_US.UTF-8 and in C.UTF-8 when R
# uses ICU) orders the printable ASCII characters that are not letters or
# digits like this; letters compare without case and accents first.
_PUNCTUATION = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"
_PUNCT_RANK = {ch: i for i, ch in enumerate(_PUNCTUATION)}


def _primary(ch):
    if ch in _PUNCT_RANK:
        return (0, _PUNCT_RANK[ch], "")
    if ch.isdigit():
        return (1, int(ch) if ch.isascii() else 0, ch)
    base = unicodedata.normalize("NFD", ch)[0].lower()
    if base.isalpha():
        return (2, 0, base)
    return (3, ord(ch), "")


def r_sort_key(text):
    """Sort key of a string in R's collation of text (en_US.UTF-8 / ICU root).

    Case-insensitive first (``"a" < "B" < "c"``), lowercase before uppercase on
    ties (``"b" < "B"``), accents after the plain letter, punctuation before
    digits before letters. For letters and digits this is the key
    ``(s.lower(), s.swapcase())``.
    """
    text = str(text)
    primary = tuple(_primary(ch) for ch in text)
    secondary = tuple(unicodedata.normalize("NFD", ch)[1:] for ch in text)
    tertiary = text.swapcase()
    return (primary, secondary, tertiary)


def _is_missing(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and np.isnan(v)


def _is_bool(v):
    return isinstance(v, (bool, np.bool_))


def _is_number(v):
    return isinstance(v, numbers.Real) and not _is_bool(v)


def character_levels(values):
    """The distinct non-missing values of a column in R's order of factor levels.

    Numbers sort numerically, booleans ``False < True``, text in R's collation
    (:func:`r_sort_key`: ``["mutant", "WT"]``, where Python's ``sorted`` gives
    ``["WT", "mutant"]``). A categorical keeps its categories' order (the ones
    present). Mixed types sort as their R text (``as.character``). The values
    are returned as they are (not as text), one per distinct R label.
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().unique())
        return [c for c in values.cat.categories if c in present]
    if isinstance(values, pd.Categorical):
        present = set(pd.Series(values).dropna().unique())
        return [c for c in values.categories if c in present]
    seen = OrderedDict()
    for v in pd.unique(pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object)):
        if _is_missing(v):
            continue
        seen.setdefault(level_label(v), v)
    distinct = list(seen.values())
    if distinct and all(_is_number(v) for v in distinct):
        return sorted(distinct, key=float)
    if distinct and all(_is_bool(v) for v in distinct):
        return sorted(distinct)
    return sorted(distinct, key=lambda v: r_sort_key(level_label(v)))


# ---------------------------------------------------------------------------
# helpers for the transforms
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# factor, as_factor, as_character, relevel, dummy, cut
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# scale and poly
# ---------------------------------------------------------------------------


class _Scale:
    """R's ``scale(x, center = TRUE, scale = TRUE)``, with the centre and scale of
    the fitted data kept for new data.

    ``center``: TRUE (column means), FALSE, or numbers. ``scale``: TRUE (the
    sample standard deviation, ddof = 1, of the centred column; without centring
    the root mean square ``sqrt(sum(x^2) / (n - 1))``), FALSE, or numbers.
    Missing values are left out, as R does.
    """

    def __init__(self):
        self._chunks = []
        self._args = None
        self._center = self._scale = None

    def memorize_chunk(self, x, center=True, scale=True):
        self._args = (center, scale)
        self._chunks.append(_float(x))

    def memorize_finish(self):
        center, scale = self._args
        x = np.concatenate([np.atleast_1d(c) for c in self._chunks], axis=0)
        x2 = x.reshape(x.shape[0], -1)
        self._chunks = None
        if isinstance(center, (bool, np.bool_)):
            cen = np.nanmean(x2, axis=0) if center else np.zeros(x2.shape[1])
        else:
            cen = np.broadcast_to(np.asarray(center, dtype=float).ravel(),
                                  (x2.shape[1],)).copy()
        xc = x2 - cen
        if isinstance(scale, (bool, np.bool_)):
            if scale:
                n = np.sum(~np.isnan(xc), axis=0)
                sc = np.sqrt(np.nansum(xc ** 2, axis=0) / np.maximum(1, n - 1))
            else:
                sc = np.ones(x2.shape[1])
        else:
            sc = np.broadcast_to(np.asarray(scale, dtype=float).ravel(),
                                 (x2.shape[1],)).copy()
        self._center, self._scale = cen, sc

    def transform(self, x, center=True, scale=True):
        v = _float(x)
        out = (v.reshape(v.shape[0], -1) - self._center) / self._scale
        return out.reshape(v.shape)


class _Poly:
    """R's ``poly(x, degree = 1, raw = FALSE)``.

    Orthogonal: R's algorithm (QR of the centred powers; ``alpha`` and ``norm2``
    kept, and values through the three-term recurrence of
    ``stats:::predict.poly``). ``raw = TRUE``: x, x^2, ..., x^degree.
    """

    def __init__(self):
        self._chunks = []
        self._degree = 1
        self._raw = False
        self._alpha = self._norm2 = None

    @staticmethod
    def _get_degree(args, degree):
        if args:
            if len(args) > 1 or np.ndim(args[0]) != 0:
                raise PatsyError("poly() of several variables (R's polym) is not supported: "
                                 "write the interactions of poly() terms explicitly")
            degree = args[0]
        if degree != int(degree) or int(degree) < 1:
            raise PatsyError(f"poly(): 'degree' must be a whole number >= 1, got {degree}")
        return int(degree)

    def memorize_chunk(self, x, *args, degree=1, raw=False):
        self._degree = self._get_degree(args, degree)
        self._raw = bool(raw)
        self._chunks.append(_float(x).ravel())

    def memorize_finish(self):
        x = np.concatenate(self._chunks)
        self._chunks = None
        if self._raw:
            return
        degree = self._degree
        x = x[~np.isnan(x)]
        if degree >= len(np.unique(x)):
            raise PatsyError("poly(): 'degree' must be less than number of unique points")
        xbar = x.mean()
        xc = x - xbar
        X = xc[:, None] ** np.arange(degree + 1)
        q, r = np.linalg.qr(X)
        Z = q * np.diag(r)
        norm2 = np.sum(Z ** 2, axis=0)
        self._alpha = (np.sum(xc[:, None] * Z ** 2, axis=0) / norm2 + xbar)[:degree]
        self._norm2 = np.concatenate([[1.0], norm2])

    def transform(self, x, *args, degree=1, raw=False):
        degree = self._degree
        v = _float(x).ravel()
        if self._raw:
            return v[:, None] ** np.arange(1, degree + 1)
        alpha, norm2 = self._alpha, self._norm2
        Z = np.ones((v.size, degree + 1))
        Z[:, 1] = v - alpha[0]
        for i in range(1, degree):
            Z[:, i + 1] = (v - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
        Z = Z / np.sqrt(norm2[1:])
        return Z[:, 1:]


# ---------------------------------------------------------------------------
# splines: R's splineDesign, bs and ns
# ---------------------------------------------------------------------------


def spline_design(knots, x, ord=4, derivs=0):
    """R's ``splines::splineDesign(knots, x, ord, derivs)`` (outer.ok = FALSE):
    the B-spline basis (or its derivatives) of order ``ord`` at ``x``."""
    knots = np.asarray(knots, dtype=float)
    x = np.asarray(x, dtype=float).ravel()
    derivs = np.broadcast_to(np.asarray(derivs, dtype=int), x.shape)
    k = ord - 1
    n = knots.size - ord
    if np.any((x < knots[k]) | (x > knots[n])):
        raise PatsyError("the x data must be in the range of the inner knots")
    spline = BSpline(knots, np.eye(n), k, extrapolate=True)
    out = np.empty((x.size, n))
    for d in np.unique(derivs):
        rows = derivs == d
        out[rows] = spline(x[rows], nu=int(d))
    return out


def _householder_qty(a, b):
    """Q^T b for the QR decomposition of ``a`` (n x p, full column rank) by
    Householder reflections as LINPACK's dqrdc2 (R's qr()) computes them."""
    a = np.array(a, dtype=float)
    b = np.array(b, dtype=float)
    for j in range(a.shape[1]):
        col = a[j:, j]
        norm = np.linalg.norm(col)
        if norm == 0:
            continue
        if col[0] != 0:
            norm = math.copysign(norm, col[0])
        u = col / norm
        u[0] += 1.0
        for m in (a, b):  # H = I - u u^T / u[0]
            sub = m[j:]
            sub -= np.outer(u, u @ sub) / u[0]
    return b


class _SplineBase:
    def __init__(self):
        self._chunks = []
        self._args = None
        self._state = None

    def memorize_chunk(self, x, *args, **kwargs):
        self._args = (args, kwargs)
        self._chunks.append(_float(x).ravel())

    def _data_and_knots(self, df, knots, boundary_knots, n_inner_of_df):
        x = np.concatenate(self._chunks)
        self._chunks = None
        x = x[~np.isnan(x)]
        if boundary_knots is None:
            if x.size == 0:
                raise PatsyError("no non-missing values for the spline's boundary knots")
            bk = np.array([x.min(), x.max()])
            inside = np.ones(x.size, bool)
        else:
            bk = np.sort(np.asarray(boundary_knots, dtype=float).ravel())
            if bk.size != 2:
                raise PatsyError("Boundary_knots must be two numbers")
            inside = (x >= bk[0]) & (x <= bk[1])
        if df is not None and knots is None:
            n_inner = max(n_inner_of_df(int(df)), 0)
            probs = np.linspace(0, 1, n_inner + 2)[1:-1]
            knots = np.quantile(x[inside], probs) if n_inner else np.array([])
        knots = np.array([] if knots is None else knots, dtype=float).ravel()
        return bk, knots

    def transform(self, x, *args, **kwargs):
        v = _float(x).ravel()
        out = np.full((v.size, self._ncol()), np.nan)
        ok = ~np.isnan(v)
        if ok.any():
            out[ok] = self._basis(v[ok])
        return out


class _BS(_SplineBase):
    """R's ``splines::bs(x, df, knots, degree = 3, intercept = FALSE,
    Boundary_knots)``, including R's extrapolation beyond the boundary knots (a
    Taylor expansion at a pivot inside them) for new data."""

    def memorize_finish(self):
        args, kwargs = self._args
        params = dict(zip(["df", "knots", "degree", "intercept", "Boundary_knots"], args))
        params.update(kwargs)
        unknown = set(params) - {"df", "knots", "degree", "intercept", "Boundary_knots"}
        if unknown:
            raise PatsyError(f"bs(): unknown argument(s) {sorted(unknown)}")
        degree = int(params.get("degree", 3))
        intercept = bool(params.get("intercept", False))
        ord = degree + 1
        bk, knots = self._data_and_knots(params.get("df"), params.get("knots"),
                                         params.get("Boundary_knots"),
                                         lambda df: df - ord + (1 - intercept))
        aknots = np.sort(np.concatenate([np.repeat(bk, ord), knots]))
        self._state = dict(aknots=aknots, bk=bk, ord=ord, degree=degree,
                           intercept=intercept, knots=knots)

    def _ncol(self):
        s = self._state
        return s["aknots"].size - s["ord"] - (0 if s["intercept"] else 1)

    def _basis(self, v):
        s = self._state
        aknots, bk, ord, degree = s["aknots"], s["bk"], s["ord"], s["degree"]
        basis = np.zeros((v.size, aknots.size - ord))
        left, right = v < bk[0], v > bk[1]
        inside = ~(left | right)
        if inside.any():
            basis[inside] = spline_design(aknots, v[inside], ord)
        e = 0.25
        scalef = np.array([math.gamma(i + 1) for i in range(ord)])
        derivs = np.arange(degree + 1)
        for mask, pivot in ((left, (1 - e) * bk[0] + e * aknots[ord]),
                            (right, (1 - e) * bk[1] + e * aknots[aknots.size - ord - 1])):
            if mask.any():
                xp = np.column_stack([np.ones(mask.sum())]
                                     + [(v[mask] - pivot) ** p for p in range(1, degree + 1)])
                tt = spline_design(aknots, np.repeat(pivot, ord), ord, derivs)
                basis[mask] = xp @ (tt / scalef[:, None])
        return basis if s["intercept"] else basis[:, 1:]


class _NS(_SplineBase):
    """R's ``splines::ns(x, df, knots, intercept = FALSE, Boundary_knots)``: the
    cubic B-spline basis with the second-derivative constraints at the boundary
    knots projected out by R's QR; linear beyond the boundary knots."""

    def memorize_finish(self):
        args, kwargs = self._args
        params = dict(zip(["df", "knots", "intercept", "Boundary_knots"], args))
        params.update(kwargs)
        unknown = set(params) - {"df", "knots", "intercept", "Boundary_knots"}
        if unknown:
            raise PatsyError(f"ns(): unknown argument(s) {sorted(unknown)}")
        intercept = bool(params.get("intercept", False))
        bk, knots = self._data_and_knots(params.get("df"), params.get("knots"),
                                         params.get("Boundary_knots"),
                                         lambda df: df - 1 - intercept)
        aknots = np.sort(np.concatenate([np.repeat(bk, 4), knots]))
        const = spline_design(aknots, bk, 4, derivs=[2, 2])
        if not intercept:
            const = const[:, 1:]
        self._state = dict(aknots=aknots, bk=bk, const=const, intercept=intercept,
                           knots=knots)

    def _ncol(self):
        return self._state["const"].shape[1] - 2

    def _basis(self, v):
        s = self._state
        aknots, bk = s["aknots"], s["bk"]
        basis = np.zeros((v.size, aknots.size - 4))
        left, right = v < bk[0], v > bk[1]
        inside = ~(left | right)
        if inside.any():
            basis[inside] = spline_design(aknots, v[inside], 4)
        for mask, pivot in ((left, bk[0]), (right, bk[1])):
            if mask.any():
                tt = spline_design(aknots, [pivot, pivot], 4, derivs=[0, 1])
                basis[mask] = np.column_stack([np.ones(mask.sum()), v[mask] - pivot]) @ tt
        if not s["intercept"]:
            basis = basis[:, 1:]
        return _householder_qty(s["const"].T, basis.T)[2:].T


# ---------------------------------------------------------------------------
# plain functions
# ---------------------------------------------------------------------------


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


factor = stateful_transform(_Factor)
as_factor = stateful_transform(_AsFactor)
as_character = stateful_transform(_AsCharacter)
relevel = stateful_transform(_Relevel)
dummy = stateful_transform(_Dummy)
cut = stateful_transform(_Cut)
scale = stateful_transform(_Scale)
poly = stateful_transform(_Poly)
ns = stateful_transform(_NS)
bs = stateful_transform(_BS)

_FUNCTIONS = {
    "factor": factor, "as_factor": as_factor, "as_character": as_character,
    "relevel": relevel, "dummy": dummy, "cut": cut, "scale": scale, "poly": poly,
    "ns": ns, "bs": bs,
    "log": _r_log, "exp": _elementwise(np.exp), "sqrt": _elementwise(np.sqrt),
    "log1p": _elementwise(np.log1p), "log10": _elementwise(np.log10),
    "log2": _elementwise(np.log2), "abs": _elementwise(np.abs),
    "expm1": _elementwise(np.expm1), "floor": _elementwise(np.floor),
    "ceiling": _elementwise(np.ceil), "trunc": _elementwise(np.trunc),
    "sin": _elementwise(np.sin), "cos": _elementwise(np.cos),
    "round": lambda x, digits=0: np.round(_float(x), int(digits)),
    "as_numeric": as_numeric, "as_integer": as_integer, "pmin": pmin, "pmax": pmax,
    "c": c, "is_in": is_in, "is_na": is_na, "ifelse": ifelse,
    "mean": _reducer(np.mean, "mean"), "median": _reducer(np.median, "median"),
    "sd": _reducer(_sd, "sd"), "min": _reducer(np.min, "min"),
    "max": _reducer(np.max, "max"), "sum": _reducer(np.sum, "sum"),
    "I": patsy.builtins.I, "Q": patsy.builtins.Q, "C": patsy.builtins.C,
    "Treatment": Treatment, "Sum": Sum, "Helmert": Helmert,
}
_CONSTANTS = {"pi": math.pi}
_ALIAS_PREFIX = "r_"

#: The functions of translated formulas: give to patsy as
#: ``eval_env=EvalEnvironment([R_NAMESPACE])``. Every function also exists as
#: ``r_<name>``, used when a data column has the function's name.
R_NAMESPACE = dict(_FUNCTIONS)
R_NAMESPACE.update(_CONSTANTS)
R_NAMESPACE.update({_ALIAS_PREFIX + k: v for k, v in _FUNCTIONS.items()})
R_NAMESPACE["np"] = np
R_NAMESPACE.update({_ALIAS_PREFIX + k: v for k, v in _CONSTANTS.items()})

# R's dotted names of functions, and functions whose output is a factor
_R_FUNCTION_NAMES = {"as.factor": "as_factor", "as.numeric": "as_numeric",
                     "as.double": "as_numeric", "as.integer": "as_integer",
                     "as.character": "as_character", "is.na": "is_na"}
_FACTOR_FUNCTIONS = {"factor", "as_factor", "as_character", "relevel", "cut", "C"}
_UNSUPPORTED = {
    "ordered": "ordered factors (R codes them by orthogonal polynomials, contr.poly); "
               "use factor() for treatment contrasts",
    "as.ordered": "ordered factors (contr.poly); use factor()",
    "interaction": "interaction(a, b) as one factor; write the interaction a:b",
    "offset": "offset() here; offset terms belong at the top level of the formula "
              "(parse_formula extracts them)",
    "s": "mgcv smooths s(); use ns() or bs()", "te": "mgcv smooths te(); use ns() or bs()",
    "ti": "mgcv smooths ti(); use ns() or bs()",
    "polym": "polym(); write poly() terms and their interactions",
    "cbind": "cbind() on the right-hand side",
    "function": "function definitions", "with": "with()", "within": "within()",
    "seq": "seq(); write the values with c()",
    "rep": "rep(); write the values with c()",
}
_R_CONSTANTS = {"TRUE": "True", "T": "True", "FALSE": "False", "F": "False", "NULL": "None",
                # Python-style formulas keep working: center=True
                "True": "True", "False": "False", "None": "None",
                "Inf": "float('inf')", "NaN": "float('nan')", "NA": "float('nan')",
                "NA_real_": "float('nan')", "NA_integer_": "float('nan')"}


# ---------------------------------------------------------------------------
# tokenizer and parser of R expressions
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # NUM STR NAME OP EOF
    text: str
    value: object
    start: int
    end: int
    quoted: bool = False


_OPERATORS = ["%%", "::", ":::", "<=", ">=", "==", "!=", "&&", "||", "<-", "<<-", "->", "->>",
              "|>", "**", "+", "-", "*", "/", "^", ":", "~", "!", "&", "|", "<", ">", "=",
              "(", ")", ",", "[", "]", "$", "@", "{", "}", "?", ";", "\\"]
_OPERATORS.sort(key=len, reverse=True)
_NUM_RE = re.compile(r"0[xX][0-9a-fA-F]+L?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[Li]?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v", "\\": "\\", '"': '"', "'": "'", "`": "`", " ": " "}


def _read_quoted(text, i, quote):
    """The decoded text of a quoted string/backtick name starting at text[i]."""
    out = []
    j = i + 1
    while j < len(text):
        ch = text[j]
        if ch == "\\" and j + 1 < len(text):
            nxt = text[j + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                j += 2
                continue
            m = re.match(r"x([0-9a-fA-F]{1,2})|u\{?([0-9a-fA-F]{1,4})\}?|"
                         r"U\{?([0-9a-fA-F]{1,8})\}?", text[j + 1:])
            if m:
                out.append(chr(int(next(g for g in m.groups() if g), 16)))
                j += 1 + m.end()
                continue
            raise PatsyError(f"unknown escape \\{nxt} in {text[i:j + 2]!r}")
        if ch == quote:
            return "".join(out), j + 1
        out.append(ch)
        j += 1
    raise PatsyError(f"unterminated {quote}...{quote} in {text!r}")


def _tokenize(text):
    toks = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch in "\"'":
            value, j = _read_quoted(text, i, ch)
            toks.append(_Tok("STR", text[i:j], value, i, j))
            i = j
            continue
        if ch == "`":
            value, j = _read_quoted(text, i, "`")
            toks.append(_Tok("NAME", text[i:j], value, i, j, quoted=True))
            i = j
            continue
        m = _NUM_RE.match(text, i)
        if m and (ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit())):
            raw = m.group(0)
            if raw.endswith("i"):
                raise PatsyError(f"complex number {raw!r} in formula")
            core = raw.rstrip("L")
            value = int(core, 16) if core[:2].lower() == "0x" else float(core)
            toks.append(_Tok("NUM", raw, value, i, m.end()))
            i = m.end()
            continue
        if ch.isalpha() or ch == "." or ch == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "._"):
                j += 1
            word = text[i:j]
            if ch == "_":
                raise PatsyError(f"{word!r} is not an R name (names cannot start with '_'): "
                                 f"write `{word}` in backticks")
            toks.append(_Tok("NAME", word, word, i, j))
            i = j
            continue
        if ch == "%":
            j = text.find("%", i + 1)
            if j < 0:
                raise PatsyError(f"unterminated %operator% in {text!r}")
            toks.append(_Tok("OP", text[i:j + 1], text[i:j + 1], i, j + 1))
            i = j + 1
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                toks.append(_Tok("OP", op, "^" if op == "**" else op, i, i + len(op)))
                i += len(op)
                break
        else:
            raise PatsyError(f"unexpected character {ch!r} in {text!r}")
    toks.append(_Tok("EOF", "", None, n, n))
    return toks


@dataclass(frozen=True, eq=False)
class _Node:
    kind: str            # name num str call binop unary paren
    value: object = None  # name text / number / string / operator
    args: tuple = ()     # children; for call: ((argname or None, node), ...)
    fn: object = None    # call: the function name node
    start: int = 0
    end: int = 0
    quoted: bool = False
    raw: str = ""


_COMPARISONS = ("<", ">", "<=", ">=", "==", "!=")


class _Parser:
    def __init__(self, text):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    @property
    def tok(self):
        return self.toks[self.i]

    def _is(self, *ops):
        return self.tok.kind == "OP" and self.tok.value in ops

    def _next(self):
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def _expect(self, op):
        if not self._is(op):
            raise PatsyError(f"expected {op!r} at position {self.tok.start} of {self.text!r}")
        return self._next()

    def parse(self):
        if self.tok.kind == "EOF":
            raise PatsyError("empty formula")
        node = self.parse_tilde()
        if self.tok.kind != "EOF":
            raise PatsyError(f"unexpected {self.tok.text!r} at position {self.tok.start} "
                             f"of {self.text!r}")
        return node

    def _bin(self, op, left, right):
        return _Node("binop", op, (left, right), start=left.start, end=right.end)

    def parse_tilde(self):
        if self._is("~"):
            start = self._next().start
            operand = self.parse_or()
            return _Node("unary", "~", (operand,), start=start, end=operand.end)
        left = self.parse_or()
        while self._is("~"):
            self._next()
            left = self._bin("~", left, self.parse_or())
        return left

    def _binary_level(self, ops, sub):
        left = sub()
        while self._is(*ops):
            op = self._next().value
            left = self._bin(op, left, sub())
        return left

    def parse_or(self):
        return self._binary_level(("|", "||"), self.parse_and)

    def parse_and(self):
        return self._binary_level(("&", "&&"), self.parse_not)

    def parse_not(self):
        if self._is("!"):
            start = self._next().start
            operand = self.parse_not()
            return _Node("unary", "!", (operand,), start=start, end=operand.end)
        return self.parse_comparison()

    def parse_comparison(self):
        return self._binary_level(_COMPARISONS, self.parse_add)

    def parse_add(self):
        return self._binary_level(("+", "-"), self.parse_mul)

    def parse_mul(self):
        return self._binary_level(("*", "/"), self.parse_special)

    def parse_special(self):
        left = self.parse_colon()
        while (self.tok.kind == "OP" and self.tok.value.startswith("%")) or self._is("|>"):
            op = self._next().value
            if op == "|>":
                raise PatsyError("the pipe |> is not supported in formulas")
            left = self._bin(op, left, self.parse_colon())
        return left

    def parse_colon(self):
        return self._binary_level((":",), self.parse_unary)

    def parse_unary(self):
        if self._is("-", "+"):
            tok = self._next()
            operand = self.parse_unary()
            return _Node("unary", tok.value, (operand,), start=tok.start, end=operand.end)
        if self._is("!"):
            return self.parse_not()
        return self.parse_power()

    def parse_power(self):
        base = self.parse_postfix()
        if self._is("^"):
            self._next()
            return self._bin("^", base, self.parse_unary())
        return base

    def parse_postfix(self):
        node = self.parse_primary()
        while True:
            if self._is("("):
                node = self._call(node)
            elif self._is("[", "$", "@"):
                raise PatsyError(f"{self.tok.text!r} (indexing / element access) is not "
                                 f"supported in formulas: add the variable as a column")
            else:
                return node

    def _call(self, fn):
        if fn.kind != "name":
            raise PatsyError(f"only named functions can be called in formulas "
                             f"({self.text[fn.start:fn.end]!r})")
        self._expect("(")
        args = []
        while not self._is(")"):
            name = None
            if (self.tok.kind in ("NAME", "STR") and self.toks[self.i + 1].kind == "OP"
                    and self.toks[self.i + 1].value == "="):
                name = self._next().value
                self._next()
            if self._is(",", ")"):
                raise PatsyError(f"empty argument in call of {fn.value}() in {self.text!r}")
            args.append((name, self.parse_tilde()))
            if self._is(","):
                self._next()
                if self._is(")"):
                    raise PatsyError(f"empty argument in call of {fn.value}() in {self.text!r}")
            elif not self._is(")"):
                raise PatsyError(f"expected ',' or ')' at position {self.tok.start} of "
                                 f"{self.text!r}")
        end = self._next().end
        return _Node("call", fn.value, tuple(args), fn=fn, start=fn.start, end=end)

    def parse_primary(self):
        tok = self._next()
        if tok.kind == "NUM":
            return _Node("num", tok.value, start=tok.start, end=tok.end, raw=tok.text)
        if tok.kind == "STR":
            return _Node("str", tok.value, start=tok.start, end=tok.end, raw=tok.text)
        if tok.kind == "NAME":
            if self._is("::", ":::"):
                self._next()
                inner = self._next()
                if inner.kind != "NAME":
                    raise PatsyError(f"expected a name after {tok.text}:: in {self.text!r}")
                return _Node("name", inner.value, start=tok.start, end=inner.end,
                             quoted=inner.quoted, raw=tok.value)
            return _Node("name", tok.value, start=tok.start, end=tok.end, quoted=tok.quoted)
        if tok.kind == "OP" and tok.value == "(":
            inner = self.parse_tilde()
            end = self._expect(")").end
            return _Node("paren", None, (inner,), start=tok.start, end=end)
        if tok.kind == "OP" and tok.value in ("{", "<-", "<<-", "->", "->>", "=", "?", ";"):
            raise PatsyError(f"{tok.value!r} is not supported in formulas")
        if tok.kind == "EOF":
            raise PatsyError(f"formula {self.text!r} ends unexpectedly")
        raise PatsyError(f"unexpected {tok.text!r} at position {tok.start} of {self.text!r}")


def _parse(text):
    return _Parser(text).parse()


# ---------------------------------------------------------------------------
# R's deparse (for term labels, variable identity and update_formula)
# ---------------------------------------------------------------------------

_R_RESERVED = {"if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE",
               "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_",
               "NA_character_", "NA_complex_", "in"}


def _is_syntactic(name):
    if not name or name in _R_RESERVED:
        return False
    if name[0] == ".":
        if len(name) > 1 and name[1].isdigit():
            return False
    elif not name[0].isalpha():
        return False
    return all(ch.isalnum() or ch in "._" for ch in name)


def r_name(name):
    """``name`` as R writes it: bare if syntactic, else in backticks."""
    if _is_syntactic(name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _r_string(value):
    return json.dumps(value, ensure_ascii=False)


def _deparse(node):
    k = node.kind
    if k == "name":
        prefix = f"{node.raw}::" if node.raw else ""
        return prefix + r_name(node.value)
    if k == "num":
        return node.raw
    if k == "str":
        return _r_string(node.value)
    if k == "paren":
        return f"({_deparse(node.args[0])})"
    if k == "call":
        parts = [(f"{r_name(n)} = " if n is not None else "") + _deparse(a)
                 for n, a in node.args]
        return f"{_deparse(node.fn)}({', '.join(parts)})"
    if k == "unary":
        op = node.value
        inner = _deparse(node.args[0])
        return f"~{inner}" if op == "~" else f"{op}{inner}"
    left, right = (_deparse(a) for a in node.args)
    if node.value in ("^", ":", "/"):
        return f"{left}{node.value}{right}"
    return f"{left} {node.value} {right}"


def _key(node):
    """Identity of a model variable (R's MatchVar: the same expression)."""
    if node.kind == "paren" and node.args[0].kind in ("name", "num", "str", "call"):
        return _key(node.args[0])
    if node.kind == "num":
        return repr(float(node.value))
    return _deparse(node)


# ---------------------------------------------------------------------------
# R's model-formula algebra (terms.formula)
# ---------------------------------------------------------------------------

_FORMULA_OPS = ("+", "-", "*", "/", ":", "^", "%in%")


class _Terms:
    """R's ExtractVars / EncodeVars on a right-hand side.

    ``variables``: ordered dict key -> node (R's variable order); ``terms``:
    list of frozensets of variable indices, in R's order (sorted by order,
    otherwise as generated); ``intercept``.
    """

    def __init__(self, rhs, lhs=None, allow_dot=False):
        self.variables = OrderedDict()
        self.allow_dot = allow_dot
        if lhs is not None:
            self._install(lhs)
        self._extract(rhs)
        self.intercept = True
        self.parity = True
        terms = self._encode(rhs)
        order = sorted(range(len(terms)), key=lambda i: len(terms[i]))
        self.terms = [terms[i] for i in order]

    def _install(self, node):
        key = _key(node)
        if key not in self.variables:
            self.variables[key] = node
        return list(self.variables).index(key)

    @staticmethod
    def _is_zero_one(node):
        return node.kind == "num" and node.value in (0, 1)

    def _check_variable(self, node):
        if node.kind == "num":
            raise PatsyError(f"the number {node.raw} is not a valid term in a model formula "
                             "(only 0 and 1, for the intercept); use I() for arithmetic")
        if node.kind == "str":
            raise PatsyError(f"the string {node.raw} is not a valid term in a model formula")
        if node.kind == "name" and node.value == "." and not node.quoted and not self.allow_dot:
            raise PatsyError("'.' (all other columns) in a formula: expand it first with "
                             "r_formula.expand_dot(rhs, data, exclude=response_columns)")
        if node.kind == "binop" and node.value in ("|", "||"):
            raise PatsyError(f"random-effects term ({_deparse(node)}) inside the fixed "
                             "effects: bars must stand alone in parentheses at the top level")
        if node.kind in ("unary", "binop") and node.value == "~":
            raise PatsyError("'~' inside the right-hand side of a formula")
        if node.kind == "call" and node.value == "offset":
            raise PatsyError("offset() must be a term of its own at the top level of the "
                             "formula (parse_formula extracts it), not inside another term")

    def _extract(self, node):
        """R's ExtractVars: install the variables in order of appearance (R 4.x
        also installs those of removed terms, which matters for the order of
        factors inside interactions)."""
        k = node.kind
        if self._is_zero_one(node):
            return
        if k == "paren" or (k == "unary" and node.value in ("+", "-")):
            return self._extract(node.args[0])
        if k == "binop" and node.value in _FORMULA_OPS:
            if node.value == "^":
                if node.args[1].kind != "num":
                    raise PatsyError(f"invalid power in formula: {_deparse(node)} (the power "
                                     "must be a number; use I() for arithmetic)")
                return self._extract(node.args[0])
            self._extract(node.args[0])
            return self._extract(node.args[1])
        self._check_variable(node)
        self._install(node)

    @staticmethod
    def _trim(terms):
        out = []
        for t in terms:
            if t and t not in out:
                out.append(t)
        return out

    def _encode(self, node):
        k = node.kind
        if node.kind == "num" and node.value == 1:
            self.intercept = self.parity
            return []
        if node.kind == "num" and node.value == 0:
            self.intercept = not self.parity
            return []
        if k == "paren":
            return self._encode(node.args[0])
        if k == "unary" and node.value == "+":
            return self._encode(node.args[0])
        if k == "unary" and node.value == "-":
            return self._delete([], node.args[0])
        if k == "binop" and node.value in _FORMULA_OPS:
            op = node.value
            if op == "-":
                return self._delete(self._encode(node.args[0]), node.args[1])
            left = self._encode(node.args[0])
            if op == "^":
                power = node.args[1].value
                if power != int(power) or power <= 1:
                    raise PatsyError(f"invalid power in formula: {_deparse(node)}")
                term = right = left
                for _ in range(int(power) - 1):
                    term = self._trim([lt | rt for lt in left for rt in right])
                    right = term
                return term
            right = self._encode(node.args[1])
            if op == "+":
                return self._trim(left + right)
            if op == ":":
                return self._trim([lt | rt for lt in left for rt in right])
            # R's CrossTerms / NestTerms return nothing when the left side is empty
            # (listAppend's result is dropped): (a - a) * b and (a - a) / b are empty
            if op == "*":
                if not left:
                    return []
                return self._trim(left + right + [lt | rt for lt in left for rt in right])
            if op == "%in%":
                allr = frozenset().union(*right) if right else frozenset()
                return self._trim([lt | allr for lt in left])
            if op == "/":
                if not left:
                    return []
                alll = frozenset().union(*left) if left else frozenset()
                return self._trim(left + [alll | rt for rt in right])
        self._check_variable(node)
        return [frozenset([self._install(node)])]

    def _delete(self, left, right_node):
        self.parity = not self.parity
        right = self._encode(right_node)
        self.parity = not self.parity
        for t in right:
            if not t:
                self.intercept = False
            left = [lt for lt in left if lt != t]
        return left

    def codes(self):
        """R's factor pattern: for each term, {variable index: 1 (contrasts) or
        2 (indicators)} (TermCode, before model.matrix's no-intercept rule)."""
        out = []
        for j, term in enumerate(self.terms):
            code = {}
            for v in term:
                rest = term - {v}
                if not rest or any(rest <= t for t in self.terms[:j]):
                    code[v] = 1
                else:
                    code[v] = 2
            out.append(code)
        return out


# ---------------------------------------------------------------------------
# R expressions -> Python code
# ---------------------------------------------------------------------------

# Python precedence of the emitted operators
_PY_PREC = {"|": 6, "&": 8, "+": 10, "-": 10, "*": 11, "/": 11, "//": 11, "%": 11, "**": 13}
_CMP_PREC = 5
_UNARY_PREC = 12
_ATOM_PREC = 20
_R_TO_PY_OP = {"+": "+", "-": "-", "*": "*", "/": "/", "^": "**", "%%": "%", "%/%": "//",
               "&": "&", "&&": "&", "|": "|", "||": "|"}


def _py_string(value):
    return json.dumps(value, ensure_ascii=False)


class _Columns:
    def __init__(self, columns):
        self.frame = None
        if isinstance(columns, pd.DataFrame):
            names = [str(c) for c in columns.columns]
            self.frame = (columns if list(columns.columns) == names
                          else columns.set_axis(names, axis=1))
        elif isinstance(columns, dict):
            names = [str(c) for c in columns]
        elif columns is None:
            names = []
        elif isinstance(columns, str):
            raise TypeError("columns must be a data frame or a list of column names")
        else:
            names = [str(c) for c in columns]
        self.names = names
        self.set = set(names)

    def code(self, name):
        """How patsy reads column ``name``."""
        if (name.isidentifier() and not keyword.iskeyword(name)
                and name not in R_NAMESPACE and name not in ("True", "False", "None")):
            return name
        return f"{self.fn('Q')}({_py_string(name)})"

    def fn(self, name):
        """A function of R_NAMESPACE by a name no data column hides."""
        return _ALIAS_PREFIX + name if name in self.set else name

    def factor_code(self, name, ordered_poly=True):
        """Code of a data column used as a factor: the column itself, or
        ``factor(column)`` when patsy would order its levels differently from R
        (text: patsy sorts "WT" before "mutant", R the other way round)."""
        code = self.code(name)
        if self.frame is None:
            return code
        values = self.frame[name]
        if ordered_poly and isinstance(values.dtype, pd.CategoricalDtype) and \
                values.dtype.ordered:
            # R codes an ordered factor with orthogonal polynomials (contr.poly)
            return f"{self.fn('C')}({code}, {self.fn('Poly')})"
        if isinstance(values.dtype, pd.CategoricalDtype) or not guess_categorical(values):
            return code
        present = [v for v in pd.unique(values.astype(object)) if not _is_missing(v)]
        r_order = [level_label(v) for v in character_levels(present)]
        try:
            patsy_order = [level_label(v) for v in sorted(present)]
        except TypeError:
            patsy_order = None
        return code if patsy_order == r_order else f"{self.fn('factor')}({code})"


def _function_name(node, cols):
    name, pkg = node.value, node.raw
    if node.quoted and not name.isidentifier():
        raise PatsyError(f"cannot call `{name}`: not a known function")
    if name in _UNSUPPORTED:
        raise PatsyError(f"{name}() is not supported: {_UNSUPPORTED[name]}")
    if name in _R_FUNCTION_NAMES:
        return cols.fn(_R_FUNCTION_NAMES[name])
    if name in _FUNCTIONS:
        return cols.fn(name)
    if name.startswith("np.") and hasattr(np, name[3:]) and "np" not in cols.set:
        return name
    if "." in name or not name.isidentifier() or keyword.iskeyword(name):
        raise PatsyError(f"{name!r} is not a known function: the R functions available are "
                         f"{sorted(set(_FUNCTIONS) - {'np'})} (R's dotted names "
                         f"{sorted(_R_FUNCTION_NAMES)} are translated)"
                         + (f" (from package {pkg})" if pkg else ""))
    return name  # a function of the caller's environment


_PATSY_CONTRASTS = ("Treatment", "Sum", "Helmert", "Diff", "Poly", "ContrastMatrix")


def _is_patsy_contrast(node):
    """A patsy contrast written the Python way: ``Treatment(reference="b")``,
    ``Sum(omit=0)``, ``Poly()``, or a contrast matrix held in a variable."""
    if node.kind == "call":
        return node.value in _PATSY_CONTRASTS
    return node.kind == "name"


def _is_treatment(node):
    return _contrast_name(node) == "Treatment" or (
        node.kind == "call" and node.value == "Treatment")


def _contrast_name(node):
    """R's contrast argument of C(f, contr) -> patsy's contrast."""
    name = node.value if node.kind in ("name", "str") else None
    table = {"contr.treatment": "Treatment", "treatment": "Treatment",
             "contr.sum": "Sum", "sum": "Sum", "contr.helmert": "Helmert",
             "helmert": "Helmert", "Treatment": "Treatment", "Sum": "Sum",
             "Helmert": "Helmert"}
    if name in table:
        return table[name]
    return None


def _to_python(node, cols):
    """(code, precedence) of an R expression in arithmetic context."""
    k = node.kind
    if k == "name":
        name = node.value
        if name in cols.set:
            return cols.code(name), _ATOM_PREC
        if node.quoted:
            raise PatsyError(f"`{name}` is not a column of the data")
        if name in _R_CONSTANTS:
            return _R_CONSTANTS[name], _ATOM_PREC
        if name in _CONSTANTS:
            return cols.fn(name), _ATOM_PREC
        if name == ".":
            raise PatsyError("'.' in a formula: expand it first with r_formula.expand_dot")
        if "." in name or not name.isidentifier() or keyword.iskeyword(name):
            raise PatsyError(f"{name!r} is neither a column of the data nor a known function"
                             + (" (a dotted name is read whole, never as an attribute)"
                                if "." in name else ""))
        return name, _ATOM_PREC
    if k == "num":
        v = node.value
        if isinstance(v, int) or (float(v).is_integer() and abs(v) < 1e15):
            return str(int(v)), _ATOM_PREC
        return repr(float(v)), _ATOM_PREC
    if k == "str":
        return _py_string(node.value), _ATOM_PREC
    if k == "paren":
        inner, _ = _to_python(node.args[0], cols)
        return f"({inner})", _ATOM_PREC
    if k == "call":
        fname = _function_name(node.fn, cols)
        base = node.value
        args = []
        named = False
        for i, (aname, anode) in enumerate(node.args):
            if base == "C" and i == 1 and aname in (None, "contr"):
                contrast = _contrast_name(anode)
                if contrast is not None:
                    args.append(cols.fn(contrast))
                    continue
                if not _is_patsy_contrast(anode):
                    raise PatsyError(f"C(): unsupported contrasts {_deparse(anode)}; use "
                                     "contr.treatment, contr.sum, contr.helmert or a patsy "
                                     "contrast such as Treatment(reference='b')")
            if base == "C" and i == 0 and anode.kind == "name" and anode.value in cols.set:
                # C() chooses the contrasts itself, also for an ordered factor
                code = cols.factor_code(anode.value, ordered_poly=False)
            else:
                code, _ = _to_python(anode, cols)
            if aname is None:
                if named:
                    raise PatsyError(f"positional argument after a named one in "
                                     f"{_deparse(node)}")
                args.append(code)
            else:
                named = True
                pname = aname.replace(".", "_")
                if not pname.isidentifier() or keyword.iskeyword(pname):
                    raise PatsyError(f"argument name {aname!r} in {_deparse(node)}")
                args.append(f"{pname}={code}")
        return f"{fname}({', '.join(args)})", _ATOM_PREC
    if k == "unary":
        op = node.value
        if op == "~":
            raise PatsyError("'~' inside a formula term")
        code, prec = _to_python(node.args[0], cols)
        if prec < _UNARY_PREC:
            code = f"({code})"
        return ("~" if op == "!" else op) + code, _UNARY_PREC
    # binary
    op = node.value
    if op == "~":
        raise PatsyError("'~' inside a formula term")
    if op == "%in%":
        a, _ = _to_python(node.args[0], cols)
        b, _ = _to_python(node.args[1], cols)
        return f"{cols.fn('is_in')}({a}, {b})", _ATOM_PREC
    if op == ":":
        raise PatsyError(f"the sequence operator ':' in {_deparse(node)} is not supported "
                         "inside functions; write the values with c()")
    if op.startswith("%") and op not in _R_TO_PY_OP:
        raise PatsyError(f"the operator {op} is not supported")
    left, lp = _to_python(node.args[0], cols)
    right, rp = _to_python(node.args[1], cols)
    if op in _COMPARISONS:
        prec = _CMP_PREC
        left = f"({left})" if lp <= prec else left
        right = f"({right})" if rp <= prec else right
        return f"{left} {op} {right}", prec
    pyop = _R_TO_PY_OP[op]
    prec = _PY_PREC[pyop]
    if pyop == "**":
        left = f"({left})" if lp <= prec else left
        right = f"({right})" if rp < _UNARY_PREC else right
    else:
        left = f"({left})" if lp < prec else left
        right = f"({right})" if rp <= prec else right
    return f"{left} {pyop} {right}", prec


def _variable_code(node, cols):
    """Python code of a model variable as a patsy factor: a name, Q("..."), a
    call, or the expression inside I(...)."""
    while node.kind == "paren":
        node = node.args[0]
    code, prec = _to_python(node, cols)
    if node.kind in ("name", "call") and prec == _ATOM_PREC:
        return code
    return f"{cols.fn('I')}({code})"


# ---------------------------------------------------------------------------
# the variables' types, and patsy's term order
# ---------------------------------------------------------------------------


@dataclass
class _Var:
    node: object
    code: str                 # the patsy factor
    data_code: str            # the values (for dummy(): a C() box is not)
    categorical: bool
    levels: list = None       # R labels, in patsy's (= R's) order, when known
    ncols: int = 1
    treatment: bool = True    # coded by treatment contrasts
    is_array: bool = False    # evaluates to a numpy array (columns can be sliced)


def _strip_parens(node):
    while node.kind == "paren":
        node = node.args[0]
    return node


def _static_categorical(node, cols):
    node = _strip_parens(node)
    if node.kind == "call":
        name = _R_FUNCTION_NAMES.get(node.value, node.value)
        if name == "I" and node.args:
            return _static_categorical(node.args[0][1], cols)
        return name in _FACTOR_FUNCTIONS
    if node.kind == "binop":
        return node.value in _COMPARISONS + ("&", "&&", "|", "||", "%in%")
    if node.kind == "unary":
        return node.value == "!"
    if node.kind == "name" and cols.frame is not None and node.value in cols.set:
        return bool(guess_categorical(cols.frame[node.value]))
    return False


def _describe(node, cols):
    """A _Var for a model variable, evaluated on the data when there is some."""
    inner = _strip_parens(node)
    code = data_code = _variable_code(node, cols)
    if inner.kind == "name" and inner.value in cols.set:
        code = cols.factor_code(inner.value)
    var = _Var(node, code, data_code, _static_categorical(node, cols))
    if code.startswith(f"{cols.fn('C')}(") and code.endswith(f", {cols.fn('Poly')})"):
        var.treatment = False  # an ordered factor: contr.poly
    if inner.kind == "call" and inner.value == "C":
        var.treatment = len(inner.args) < 2 or _is_treatment(inner.args[1][1])
        first = inner.args[0][1]
        var.data_code = (cols.factor_code(first.value, ordered_poly=False)
                         if first.kind == "name" and first.value in cols.set
                         else _variable_code(first, cols))
    if cols.frame is None:
        return var
    try:
        env = EvalEnvironment([R_NAMESPACE])
        with np.errstate(all="ignore"):
            value = env.eval(code, inner_namespace=cols.frame)
    except Exception:  # noqa: BLE001 - patsy reports the failure when it evaluates
        return var
    var.categorical = bool(isinstance(value, _CategoricalBox) or guess_categorical(value))
    if var.categorical:
        sniffer = CategoricalSniffer(NAAction())
        try:
            sniffer.sniff(value)
            var.levels = [level_label(v) for v in sniffer.levels_contrast()[0]]
        except Exception:  # noqa: BLE001
            var.levels = None
    else:
        var.ncols = 1 if np.ndim(value) < 2 else int(np.shape(value)[1])
        var.is_array = isinstance(value, np.ndarray)
    return var


def _patsy_layout(pieces, intercept):
    """Simulate patsy's design_matrix_builders on a term list.

    ``pieces``: list of (term id, factor keys, numeric keys). Returns the term ids
    in patsy's column order and, for each, patsy's codings (list of dicts
    {factor key: full rank?}).
    """
    buckets = OrderedDict()
    all_pieces = ([(None, (), frozenset())] if intercept else []) + list(pieces)
    for piece in all_pieces:
        bucket = frozenset(k for k in piece[1] if k in piece[2])
        buckets.setdefault(bucket, []).append(piece)
    if frozenset() in buckets:
        buckets.move_to_end(frozenset(), last=False)
    order, codings = [], []
    for members in buckets.values():
        members = sorted(members, key=lambda p: len(p[1]))
        used = set()
        for term_id, factors, numeric in members:
            coding = pick_contrasts_for_term(Term(list(factors)), set(numeric), used)
            if term_id is not None:
                order.append(term_id)
                codings.append(coding)
    return order, codings


def _layout(terms, codes, variables, intercept, r_column_order=True):
    """Decide, per R term, whether patsy may code it itself (``native``) or
    its categorical factors must be written as level indicators.

    With ``r_column_order=False`` patsy may put the columns in its own order (the
    same model, patsy's names and terms); indicators are written only where
    patsy would code a term differently from R."""
    numericized = set()
    for _ in range(len(terms) + 1):
        pieces = []
        for j, term in enumerate(terms):
            factors = tuple(sorted(term))
            if j in numericized:
                # each column is its own all-numeric patsy term: keep R's place
                pieces.append((j, tuple((j, v) for v in factors),
                               frozenset((j, v) for v in factors)))
            else:
                pieces.append((j, factors,
                               frozenset(v for v in factors if not variables[v].categorical)))
        order, codings = _patsy_layout(pieces, intercept)
        bad = None
        for pos, (j, coding) in enumerate(zip(order, codings)):
            if j != pos and r_column_order:
                # patsy moved term `j` forward: write it (or the one R puts here) numerically
                cand = j if any(variables[v].categorical for v in terms[j]) else pos
                bad = cand
                break
            if j in numericized:
                continue
            cats = [v for v in sorted(terms[j]) if variables[v].categorical]
            want = {v: codes[j][v] == 2 for v in cats}
            # patsy's "full rank" coding of non-treatment contrasts is not indicators
            odd = any(want[v] and not variables[v].treatment for v in cats)
            if len(coding) != 1 or coding[0] != want or odd:
                bad = j
                break
        if bad is None:
            return numericized
        if bad in numericized or not any(variables[v].categorical for v in terms[bad]):
            raise PatsyError("cannot reproduce R's column order with patsy for this formula")
        numericized.add(bad)
    raise PatsyError("cannot reproduce R's column order with patsy for this formula")


def _numeric_term_code(term, code, variables, cols, taken):
    """The patsy terms (in R's column order) of an R term whose categorical
    factors are written as dummy() indicators."""
    factors = sorted(term)
    per_factor = []
    seen_categorical = False
    for v in factors:
        var = variables[v]
        if var.categorical:
            seen_categorical = True
            if var.levels is None:
                raise PatsyError(
                    f"R codes {_deparse(var.node)} in this formula in a way patsy would not "
                    "(or would order differently); to write it explicitly the levels must be "
                    "known: pass the data frame, not only the column names, to translate()")
            if not var.treatment and code[v] != 2:
                raise PatsyError(f"{_deparse(var.node)}: C() with non-treatment contrasts is "
                                 "supported only where patsy codes it as R does; reorder the "
                                 "formula or use treatment contrasts")
            levels = var.levels if code[v] == 2 else var.levels[1:]
            per_factor.append([_indicator_code(var.data_code, lev, cols, taken)
                               for lev in levels])
        elif var.ncols > 1 and seen_categorical:
            # R's columns vary the first factor fastest: split the matrix by column
            if not var.is_array:
                raise PatsyError(
                    f"{_deparse(var.node)} ({var.ncols} columns) follows a factor in an "
                    "interaction that has to be written column by column; write it before "
                    "the factor in the formula (R's column order follows the order in which "
                    "variables first appear)")
            per_factor.append([f"{var.code}[:, {j}]" for j in range(var.ncols)])
        else:
            per_factor.append([var.code])
    out = []
    # R: the first factor varies fastest
    for combo in itertools.product(*reversed(per_factor)):
        out.append(":".join(reversed(combo)))
    return out


def _indicator_code(data_code, level, cols, taken):
    """``dummy(f, "level")``, spelled so that it differs from every variable of
    the formula (a user's own dummy(f, "b") is another patsy factor)."""
    fn = cols.fn("dummy")
    for spelling in (f"{fn}({data_code}, {_py_string(level)})",
                     f"{fn}({data_code}, levels={_py_string(level)})",
                     f"{fn}({data_code}, levelsToKeep={_py_string(level)})"):
        if spelling not in taken:
            return spelling
    raise PatsyError(f"cannot write the indicator of level {level!r} of {data_code} without "
                     "clashing with a variable of the formula")


def _join_terms(pieces):
    """``a + b + ...``; long sums as a balanced tree of parentheses, since patsy
    evaluates a chain of n terms n calls deep."""
    if len(pieces) <= 100:
        return " + ".join(pieces)
    half = len(pieces) // 2
    return f"({_join_terms(pieces[:half])}) + ({_join_terms(pieces[half:])})"


def translate(rhs, columns, r_column_order=False):
    """Translate the right-hand side of an R model formula into patsy's language.

    Parameters
    ----------
    rhs : str
        The fixed-effects right-hand side in R syntax, without random-effect bars
        and ``offset()`` terms (``formula_parser.parse_formula`` removes those)
        and without ``.`` (see :func:`expand_dot`).
    columns : pandas.DataFrame or sequence of str
        The data (preferred) or its column names. With the data, the types of the
        variables are known (a text column is a factor, with R's order of
        levels) and R's column order can always be reproduced; with names only,
        bare columns are taken as numeric.

    Returns
    -------
    str
        A patsy formula right-hand side; evaluate it with
        ``eval_env=EvalEnvironment([R_NAMESPACE])``. Its design matrix has R's
        ``model.matrix`` columns (same values and coding); in patsy's column
        order and names unless ``r_column_order``, which reproduces R's order
        exactly by writing some factors as ``dummy()`` indicators (then a factor
        is no longer one term for ``wald_test_terms``).

    Raises
    ------
    patsy.PatsyError
        For constructs that are not supported, naming them and what to write.
    """
    if not isinstance(rhs, str):
        raise PatsyError(f"formula must be a string, got {type(rhs).__name__}")
    cols = _Columns(columns)
    node = _parse(rhs)
    terms = _Terms(node)
    keys = list(terms.variables)
    variables = [_describe(terms.variables[k], cols) for k in keys]
    codes = terms.codes()
    if not terms.intercept:
        # model.matrix: the first factor of the first term holding one gets indicators
        for j, term in enumerate(terms.terms):
            cats = [v for v in sorted(term) if variables[v].categorical]
            if cats:
                codes[j][cats[0]] = 2
                break
    numericized = _layout(terms.terms, codes, variables, terms.intercept, r_column_order)
    pieces = ["1" if terms.intercept else "0"]
    taken = {var.code for var in variables}
    for j, term in enumerate(terms.terms):
        if j in numericized:
            pieces.extend(_numeric_term_code(term, codes[j], variables, cols, taken))
        else:
            pieces.append(":".join(variables[v].code for v in sorted(term)))
    return _join_terms(pieces)


# ---------------------------------------------------------------------------
# '.' and update()
# ---------------------------------------------------------------------------


def _formula_level_dots(node, out):
    """Name('.') nodes at the formula level (not inside calls or bars)."""
    k = node.kind
    if k == "name" and node.value == "." and not node.quoted:
        out.append(node)
    elif k == "paren":
        _formula_level_dots(node.args[0], out)
    elif k == "unary" and node.value in ("+", "-"):
        _formula_level_dots(node.args[0], out)
    elif k == "binop" and node.value in _FORMULA_OPS + ("~",):
        for a in node.args:
            _formula_level_dots(a, out)
    return out


def expand_dot(rhs, columns, exclude=()):
    """Replace a formula-level ``.`` with the sum of the data's columns.

    As R's ``terms(formula, data = )``: every column in data order except those
    in ``exclude`` (the variables of the response). Dots inside function calls
    or random-effect bars are left alone. The result is R formula text.
    """
    names = _Columns(columns).names
    exclude = {str(e) for e in exclude}
    keep = [r_name(n) for n in names if n not in exclude]
    replacement = "(" + " + ".join(keep) + ")" if keep else "1"
    dots = _formula_level_dots(_parse(rhs), [])
    out = rhs
    for dot in sorted(dots, key=lambda n: n.start, reverse=True):
        out = out[:dot.start] + replacement + out[dot.end:]
    return out


def _substitute_dot(node, value, parent_op=None):
    """R's ExpandDots: every ``.`` symbol in ``node`` replaced by ``value``
    (parenthesised where an operator would otherwise bind differently)."""
    k = node.kind
    if k == "name" and node.value == "." and not node.quoted:
        if value.kind in ("binop", "unary") and parent_op is not None:
            return _Node("paren", None, (value,))
        return value
    if k == "call":
        args = tuple((n, _substitute_dot(a, value)) for n, a in node.args)
        return _Node("call", node.value, args, fn=node.fn)
    if k == "paren":
        return _Node("paren", None, (_substitute_dot(node.args[0], value),))
    if k in ("binop", "unary"):
        op = node.value
        ctx = None if op == "+" else op
        args = tuple(_substitute_dot(a, value, ctx) for a in node.args)
        return _Node(k, op, args)
    return node


def update_formula(old, new):
    """R's ``update.formula(old, new)`` on lme4 formulas (bars included).

    ``.`` in ``new`` stands for the corresponding side of ``old``; a one-sided
    ``new`` keeps the old response. The result is simplified as R does
    (``terms(simplify = TRUE)``): the terms expanded and ordered by order, bar
    terms as ``(expr | g)``, offsets last, ``- 1`` when there is no intercept.
    Removing a bar term (``. ~ . - (1 | g)``) drops it.

    Returns
    -------
    str
        The new formula, e.g. ``"y ~ z + (1 | g)"``.
    """
    old_node, new_node = _parse(old), _parse(new)

    def sides(node, text):
        if node.kind == "binop" and node.value == "~":
            return node.args[0], node.args[1]
        if node.kind == "unary" and node.value == "~":
            return None, node.args[0]
        raise PatsyError(f"{text!r} is not a formula (no '~')")

    old_lhs, old_rhs = sides(old_node, old)
    new_lhs, new_rhs = sides(new_node, new)
    if new_lhs is None:
        lhs = old_lhs
    elif old_lhs is not None:
        lhs = _substitute_dot(new_lhs, old_lhs)
    else:
        lhs = new_lhs
    rhs = _substitute_dot(new_rhs, _Node("paren", None, (old_rhs,)))
    return _simplified(lhs, rhs)


class _UpdateTerms(_Terms):
    """Terms where bars and offsets are variables (as R's terms() sees them)."""

    def _check_variable(self, node):
        if node.kind in ("num", "str"):
            super()._check_variable(node)


def _simplified(lhs, rhs):
    terms = _UpdateTerms(rhs, lhs=lhs, allow_dot=True)
    names = [_deparse(n) for n in terms.variables.values()]
    offsets = {i for i, n in enumerate(terms.variables.values())
               if n.kind == "call" and n.value == "offset"}
    labels = []
    for t in terms.terms:
        if t & offsets:
            continue
        label = ":".join(names[v] for v in sorted(t))
        if "|" in label:
            label = f"({label})"
        labels.append(label)
    labels += [names[i] for i in sorted(offsets)]  # R re-adds every offset variable
    text = " + ".join(labels) if labels else "1"
    if not terms.intercept:
        text += " - 1"
    return f"{_deparse(lhs)} ~ {text}" if lhs is not None else f"~ {text}"


# ---------------------------------------------------------------------------
# whole lme4 formulas
# ---------------------------------------------------------------------------


def translate_expression(text, columns):
    """An R expression in arithmetic context (a response, a ``cbind()`` argument,
    an ``offset()``) as Python code for ``R_NAMESPACE``: ``^`` is a power,
    backtick and dotted names are columns, ``TRUE`` is ``True``."""
    return _to_python(_parse(text), _Columns(columns))[0]


def has_formula_dot(rhs):
    """Whether a right-hand side has R's ``.`` (all other columns) at formula level."""
    try:
        found = []
        _formula_level_dots(_parse(rhs), found)
        return bool(found)
    except PatsyError:
        return False


def translate_formula(parsed, frame):
    """An lme4 formula parsed by :func:`formula_parser.parse_formula`, with every
    part translated from R's language for patsy (see :func:`translate`).

    ``.`` in the fixed part expands to every column but the response's (R's
    ``terms(formula, data = )``, which lme4 uses); the response, ``cbind()``
    arguments and ``offset()`` terms are arithmetic expressions; the covariates
    of each random-effects term follow the same rules as the fixed part.

    Returns
    -------
    formula_parser.ParsedFormula
    """
    from dataclasses import replace

    rhs = parsed.fixed_rhs
    response_parts = list(parsed.cbind) if parsed.cbind is not None else [parsed.lhs]
    if has_formula_dot(rhs):
        exclude = set()
        for part in response_parts:
            exclude.update(referenced_columns(part, frame.columns))
        rhs = expand_dot(rhs, frame, exclude=sorted(exclude))
    bars = [replace(bar, expr=translate(bar.expr, frame)) for bar in parsed.bars]
    cbind = (None if parsed.cbind is None
             else tuple(translate_expression(part, frame) for part in parsed.cbind))
    lhs = parsed.lhs if parsed.cbind is not None else _translate_lhs(parsed.lhs, frame)
    return replace(parsed, lhs=lhs, cbind=cbind, fixed_rhs=translate(rhs, frame),
                   bars=bars,
                   offsets=[translate_expression(e, frame) for e in parsed.offsets])


def _translate_lhs(lhs, frame):
    """The response: statsmodels' two-column ``s + f`` stays as it is."""
    if lhs in frame.columns:
        return lhs
    try:
        node = _parse(lhs)
    except PatsyError:
        return lhs
    if node.kind == "op" and node.value == "+":
        return lhs
    return translate_expression(lhs, frame)


def referenced_columns(text, columns):
    """Columns of the data that an expression names (as identifiers or in Q("..."))."""
    names = set(re.findall(r"""Q\(\s*["']([^"']+)["']\s*\)""", text))
    names.update(re.findall(r"`([^`]+)`", text))
    names.update(re.findall(r"[A-Za-z.][A-Za-z0-9._]*", text))  # R's dotted names
    try:
        tokens = tokenize.generate_tokens(StringIO(text).readline)
        names.update(tok.string for tok in tokens if tok.type == tokenize.NAME)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", text))
    return [c for c in columns if c in names]
