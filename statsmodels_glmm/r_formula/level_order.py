"""R's order of factor levels: :func:`r_sort_key` (R's collation of text) and
:func:`character_levels` (the distinct values of a column in R's level order).
"""

from collections import OrderedDict
import unicodedata

import numpy as np
import pandas as pd

from ..levels import level_label
from .values import _is_bool, _is_missing, _is_number

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
