"""R expressions -> Python code for ``R_NAMESPACE``: names, numbers, strings,
calls (R's functions, with ``C()``'s contrasts), and R's operators with
Python's precedence.
"""

import keyword

import numpy as np
from patsy import PatsyError

from .columns import _Columns, _py_string
from .deparse import _deparse
from .namespace import _CONSTANTS, _FUNCTIONS, _R_CONSTANTS, _R_FUNCTION_NAMES, _UNSUPPORTED
from .parser import _COMPARISONS, _parse

# Python precedence of the emitted operators
_PY_PREC = {"|": 6, "&": 8, "+": 10, "-": 10, "*": 11, "/": 11, "//": 11, "%": 11, "**": 13}
_CMP_PREC = 5
_UNARY_PREC = 12
_ATOM_PREC = 20
_R_TO_PY_OP = {"+": "+", "-": "-", "*": "*", "/": "/", "^": "**", "%%": "%", "%/%": "//",
               "&": "&", "&&": "&", "|": "|", "||": "|"}


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
        return _name_to_python(node, cols)
    if k == "num":
        return _num_to_python(node)
    if k == "str":
        return _py_string(node.value), _ATOM_PREC
    if k == "paren":
        inner, _ = _to_python(node.args[0], cols)
        return f"({inner})", _ATOM_PREC
    if k == "call":
        return _call_to_python(node, cols)
    if k == "unary":
        return _unary_to_python(node, cols)
    return _binary_to_python(node, cols)


def _name_to_python(node, cols):
    """A name: a data column, an R constant (``TRUE``, ``pi``), or a name of the
    caller's environment; ``.`` and names Python cannot read are errors."""
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


def _num_to_python(node):
    """A number: whole numbers (below 1e15) as integers, others as floats."""
    v = node.value
    if isinstance(v, int) or (float(v).is_integer() and abs(v) < 1e15):
        return str(int(v)), _ATOM_PREC
    return repr(float(v)), _ATOM_PREC


def _call_to_python(node, cols):
    """A call of a function of R_NAMESPACE (or of the caller's environment), its
    named arguments with R's dots as underscores (``na.rm`` -> ``na_rm``)."""
    fname = _function_name(node.fn, cols)
    base = node.value
    args = []
    named = False
    for i, (aname, anode) in enumerate(node.args):
        if base == "C" and i == 1 and aname in (None, "contr"):
            contrast = _c_contrast_code(anode, cols)
            if contrast is not None:
                args.append(contrast)
                continue
        code = _argument_code(base, i, anode, cols)
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


def _c_contrast_code(anode, cols):
    """The contrasts argument of ``C(f, contr)``: patsy's contrast for R's
    ``contr.treatment`` / ``contr.sum`` / ``contr.helmert``, or None for a patsy
    contrast written the Python way (translated as any other argument)."""
    contrast = _contrast_name(anode)
    if contrast is not None:
        return cols.fn(contrast)
    if not _is_patsy_contrast(anode):
        raise PatsyError(f"C(): unsupported contrasts {_deparse(anode)}; use "
                         "contr.treatment, contr.sum, contr.helmert or a patsy "
                         "contrast such as Treatment(reference='b')")
    return None


def _argument_code(base, i, anode, cols):
    """Code of argument ``i`` of a call of ``base``."""
    if base == "C" and i == 0 and anode.kind == "name" and anode.value in cols.set:
        # C() chooses the contrasts itself, also for an ordered factor
        return cols.factor_code(anode.value, ordered_poly=False)
    code, _ = _to_python(anode, cols)
    return code


def _unary_to_python(node, cols):
    """``-x``, ``+x`` and ``!x`` (Python's ``~``, elementwise on arrays)."""
    op = node.value
    if op == "~":
        raise PatsyError("'~' inside a formula term")
    code, prec = _to_python(node.args[0], cols)
    if prec < _UNARY_PREC:
        code = f"({code})"
    return ("~" if op == "!" else op) + code, _UNARY_PREC


def _binary_to_python(node, cols):
    """A binary operator: ``%in%`` as ``is_in()``, comparisons, and R's arithmetic
    and logical operators as Python's, parenthesised by Python's precedence."""
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


def translate_expression(text, columns):
    """An R expression in arithmetic context (a response, a ``cbind()`` argument,
    an ``offset()``) as Python code for ``R_NAMESPACE``: ``^`` is a power,
    backtick and dotted names are columns, ``TRUE`` is ``True``."""
    return _to_python(_parse(text), _Columns(columns))[0]
