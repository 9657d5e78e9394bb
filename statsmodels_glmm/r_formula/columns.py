"""The data's columns as formulas name them: how patsy reads a column
(``Q("...")`` when needed, a factor in R's order of levels), and
:func:`referenced_columns`, the columns an expression names.
"""

from io import StringIO
import json
import keyword
import re
import tokenize

import pandas as pd
from patsy.categorical import guess_categorical

from ..levels import level_label
from .level_order import character_levels
from .namespace import _ALIAS_PREFIX, R_NAMESPACE
from .values import _is_missing


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
