"""The tokenizer of R expressions: numbers, strings, names (backticks too) and
operators, with their positions in the text.
"""

from dataclasses import dataclass
import re

from patsy import PatsyError


@dataclass(frozen=True)
class _Tok:
    kind: str  # NUM STR NAME OP EOF
    text: str
    value: object
    start: int
    end: int
    quoted: bool = False


_OPERATORS = ["%%", "::", ":::", "<=", ">=", "==", "!=", "&&", "||", "<-", "<<-", "->", "->>",
              "|>", "**", "+", "-", "*", "/", "^", ":", "~", "!", "&", "|", "<", ">", "=",
              "(", ")", ",", "[", "]", "$", "@", "{", "}", "?", ";", "\\"]
_OPERATORS.sort(key=len, reverse=True)
_NUM_RE = re.compile(r"0[xX][0-9a-fA-F]+L?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[Li]?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v", "\\": "\\", '"': '"', "'": "'", "`": "`", " ": " "}


def _read_quoted(text, i, quote):
    """The decoded text of a quoted string/backtick name starting at text[i]."""
    out = []
    j = i + 1
    while j < len(text):
        ch = text[j]
        if ch == "\\" and j + 1 < len(text):
            nxt = text[j + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                j += 2
                continue
            m = re.match(r"x([0-9a-fA-F]{1,2})|u\{?([0-9a-fA-F]{1,4})\}?|"
                         r"U\{?([0-9a-fA-F]{1,8})\}?", text[j + 1:])
            if m:
                out.append(chr(int(next(g for g in m.groups() if g), 16)))
                j += 1 + m.end()
                continue
            raise PatsyError(f"unknown escape \\{nxt} in {text[i:j + 2]!r}")
        if ch == quote:
            return "".join(out), j + 1
        out.append(ch)
        j += 1
    raise PatsyError(f"unterminated {quote}...{quote} in {text!r}")


def _tokenize(text):
    toks = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch in "\"'":
            value, j = _read_quoted(text, i, ch)
            toks.append(_Tok("STR", text[i:j], value, i, j))
            i = j
            continue
        if ch == "`":
            value, j = _read_quoted(text, i, "`")
            toks.append(_Tok("NAME", text[i:j], value, i, j, quoted=True))
            i = j
            continue
        m = _NUM_RE.match(text, i)
        if m and (ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit())):
            raw = m.group(0)
            if raw.endswith("i"):
                raise PatsyError(f"complex number {raw!r} in formula")
            core = raw.rstrip("L")
            value = int(core, 16) if core[:2].lower() == "0x" else float(core)
            toks.append(_Tok("NUM", raw, value, i, m.end()))
            i = m.end()
            continue
        if ch.isalpha() or ch == "." or ch == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "._"):
                j += 1
            word = text[i:j]
            if ch == "_":
                raise PatsyError(f"{word!r} is not an R name (names cannot start with '_'): "
                                 f"write `{word}` in backticks")
            toks.append(_Tok("NAME", word, word, i, j))
            i = j
            continue
        if ch == "%":
            j = text.find("%", i + 1)
            if j < 0:
                raise PatsyError(f"unterminated %operator% in {text!r}")
            toks.append(_Tok("OP", text[i:j + 1], text[i:j + 1], i, j + 1))
            i = j + 1
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                toks.append(_Tok("OP", op, "^" if op == "**" else op, i, i + len(op)))
                i += len(op)
                break
        else:
            raise PatsyError(f"unexpected character {ch!r} in {text!r}")
    toks.append(_Tok("EOF", "", None, n, n))
    return toks
