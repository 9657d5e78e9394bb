""":func:`translate`: an R right-hand side as a patsy formula whose design matrix
is R's ``model.matrix``. The variables' types are found from the data, patsy's
term order and coding are simulated, and terms patsy would place or code
differently from R are written as ``dummy()`` indicators.
"""

from collections import OrderedDict
from dataclasses import dataclass
import itertools

import numpy as np
from patsy import EvalEnvironment, NAAction, PatsyError
from patsy.categorical import CategoricalSniffer, _CategoricalBox, guess_categorical
from patsy.desc import Term
from patsy.redundancy import pick_contrasts_for_term

from ..levels import level_label
from .columns import _Columns, _py_string
from .deparse import _deparse
from .expressions import _is_treatment, _variable_code
from .namespace import _FACTOR_FUNCTIONS, _R_FUNCTION_NAMES, R_NAMESPACE
from .parser import _COMPARISONS, _parse
from .terms import _Terms


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
