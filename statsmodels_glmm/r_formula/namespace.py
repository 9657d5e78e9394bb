"""``R_NAMESPACE``: R's functions for formulas by the names translated formulas
call them, and the tables of R's names the translator needs (dotted names,
functions whose output is a factor, unsupported functions, constants).
"""

import math

import numpy as np
from patsy import stateful_transform
import patsy.builtins
from patsy.contrasts import Helmert, Sum, Treatment

from .factors import _AsCharacter, _AsFactor, _Cut, _Dummy, _Factor, _Relevel
from .plain_functions import (
    _elementwise,
    _r_log,
    _reducer,
    _sd,
    as_integer,
    as_numeric,
    c,
    ifelse,
    is_in,
    is_na,
    pmax,
    pmin,
)
from .scale_poly import _Poly, _Scale
from .splines import _BS, _NS
from .values import _float

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
