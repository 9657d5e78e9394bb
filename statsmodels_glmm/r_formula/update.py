"""R's ``update.formula`` on lme4 formulas: :func:`update_formula`, with ``.``
standing for the old formula's side and the result simplified as R does.
"""

from patsy import PatsyError

from .deparse import _deparse
from .parser import _Node, _parse
from .terms import _Terms


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
