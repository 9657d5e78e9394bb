"""R's model-formula algebra (``terms.formula``): a right-hand side expanded into
its variables and its terms in R's order, and R's factor pattern of contrasts
or indicators.
"""

from collections import OrderedDict

from patsy import PatsyError

from .deparse import _deparse, _key

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
