"""R's ``.`` (all other columns) at the formula level: :func:`expand_dot` and
:func:`has_formula_dot`.
"""

from patsy import PatsyError

from .columns import _Columns
from .deparse import r_name
from .parser import _parse
from .terms import _FORMULA_OPS


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


def has_formula_dot(rhs):
    """Whether a right-hand side has R's ``.`` (all other columns) at formula level."""
    try:
        found = []
        _formula_level_dots(_parse(rhs), found)
        return bool(found)
    except PatsyError:
        return False
