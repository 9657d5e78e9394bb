"""The parser of R expressions: tokens to a tree of ``_Node`` (R's grammar and
operator precedence, for what formulas use).
"""

from dataclasses import dataclass

from patsy import PatsyError

from .tokenizer import _tokenize


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
