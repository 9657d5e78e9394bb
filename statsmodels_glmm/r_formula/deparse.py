"""R's deparse of a parsed expression, for term labels, variable identity and
``update_formula``.
"""

import json

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
