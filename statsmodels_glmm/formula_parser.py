"""Split an lme4-style formula into its fixed part and its random-effect bars.

Neither patsy nor formulaic understands ``(expr | g)``. This module finds the
bar terms at the top level of the right-hand side (lme4's ``findbars`` /
``nobars``), expands ``||`` into independent terms and ``a/b`` into nested
grouping factors, pulls out ``offset(...)`` terms and recognises a
``cbind(successes, failures)`` response. Everything else is left to the
formula engine.
"""

from dataclasses import dataclass, field
import re

from patsy import PatsyError

from .r_formula import R_NAMESPACE

__all__ = ["BarTerm", "ParsedFormula", "parse_formula", "split_top_level", "R_FUNCTIONS"]

# The functions available in formulas besides the caller's variables (R's: see
# r_formula); the former name of the formula namespace, kept for compatibility.
R_FUNCTIONS = R_NAMESPACE



@dataclass(frozen=True)
class BarTerm:
    """One random-effects term ``(expr | g1:g2...)`` after expansion.

    Attributes
    ----------
    expr : str
        The model formula of the random-effect covariates (``"1"``, ``"1 + x"``,
        ``"0 + x"``).
    factors : tuple of str
        The grouping variables; several mean their interaction (``a:b``).
    """

    expr: str
    factors: tuple
    name: str = ""

    @property
    def group_name(self):
        """Name of the grouping factor as lme4 prints it (``a:b``, ``b:a`` for ``a/b``)."""
        return self.name or ":".join(self.factors)

    def __str__(self):
        return f"({self.expr} | {self.group_name})"


@dataclass
class ParsedFormula:
    """The pieces of an lme4-style formula.

    Attributes
    ----------
    formula : str
        The formula as given.
    lhs : str or None
        The response expression (``None`` for a one-sided formula).
    cbind : tuple of str or None
        The two expressions of a ``cbind(successes, failures)`` response.
    fixed_rhs : str
        The fixed-effects right-hand side, bars and offsets removed.
    bars : list of BarTerm
        The random-effects terms, ``||`` and ``/`` expanded, in formula order.
    offsets : list of str
        The expressions inside ``offset(...)`` terms.
    """

    formula: str
    lhs: str
    cbind: tuple
    fixed_rhs: str
    bars: list = field(default_factory=list)
    offsets: list = field(default_factory=list)

    @property
    def fixed_formula(self):
        """The fixed-effects formula in statsmodels syntax (no bars, no cbind)."""
        if self.cbind is not None:
            # r_I: patsy's I() under a name no data column takes (a column "I" would)
            lhs = " + ".join(f"r_I({part})" for part in self.cbind)
        else:
            lhs = self.lhs
        return f"{lhs} ~ {self.fixed_rhs}"


def _check_balanced(text, formula):
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            break
    if depth != 0:
        raise PatsyError(f"unbalanced parentheses in formula {formula!r}")


def split_top_level(text, separators):
    """Split ``text`` at separator characters that are outside parentheses.

    Returns a list of ``(separator_before, piece)`` pairs; the first separator
    is ``""``. Separators inside ``()``, ``[]`` or quotes are ignored.
    """
    pieces = []
    depth = 0
    quote = None
    start = 0
    sep_before = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch in separators:
            pieces.append((sep_before, text[start:i].strip()))
            sep_before = ch
            start = i + 1
    pieces.append((sep_before, text[start:].strip()))
    return pieces


def _strip_outer_parens(text):
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def _call_argument(term, name):
    """Return the argument string of ``name(...)`` if ``term`` is that call."""
    stripped = term.strip()
    prefix = name + "("
    if stripped.startswith(prefix) and stripped.endswith(")"):
        inner = stripped[len(prefix):-1]
        # make sure the closing paren matches the opening one
        depth = 0
        for ch in inner:
            depth += ch == "("
            depth -= ch == ")"
            if depth < 0:
                return None
        return inner.strip() if depth == 0 else None
    return None


def _find_bar(term):
    """Return (lhs, rhs, double) if the parenthesized term holds a top-level bar."""
    if not (term.startswith("(") and term.endswith(")")):
        return None
    inner = _strip_outer_parens(term)
    if inner == term:
        return None
    parts = split_top_level(inner, "|")
    if len(parts) == 1:
        return None
    texts = [piece for _, piece in parts]
    if len(texts) == 2:
        return texts[0], texts[1], False
    if len(texts) == 3 and texts[1] == "":
        return texts[0], texts[2], True
    raise PatsyError(f"malformed random-effects term {term!r}: use (expr | g) or (expr || g)")


def _column_name(text):
    """A grouping column as written: ``g``, ``site.id``, ``Q("g rp")``, `` `g rp` ``;
    ``""`` for anything else (an expression is not a grouping factor)."""
    quoted = re.fullmatch(r"""Q\(\s*(["'])(.+)\1\s*\)|`([^`]+)`""", text)
    if quoted:
        return quoted.group(2) or quoted.group(3)
    # (1 | factor(g)): a grouping factor is a factor already
    wrapped = re.fullmatch(r"(?:factor|as\.factor|as\.character|as_factor)\((.+)\)", text)
    if wrapped:
        return _column_name(wrapped.group(1).strip())
    return text if text.replace("_", "").replace(".", "").isalnum() else ""


def _expand_grouping(group, term):
    """Grouping factors of a bar term, as lme4 expands them.

    ``a:b`` → [((a, b), "a:b")]; ``a/b/c`` → [((c, b, a), "c:(b:a)"),
    ((b, a), "b:a"), ((a,), "a")]: innermost first, the inner factor named first
    (its levels vary slowest), exactly as lme4's ``findbars``.
    """
    nest = [piece for _, piece in split_top_level(_strip_outer_parens(group), "/")]
    if any(not piece for piece in nest):
        raise PatsyError(f"malformed grouping factor in random-effects term {term!r}")
    groupings = []
    factors, name = (), ""
    for level in nest:
        parts = tuple(_column_name(_strip_outer_parens(piece))
                      for _, piece in split_top_level(level, ":"))
        if any(not f for f in parts):
            raise PatsyError(
                f"grouping factor {level!r} in {term!r} must be a column name or an "
                "interaction of column names (a:b)"
            )
        label = ":".join(parts)
        if name:
            name = f"{label}:{name}" if len(factors) == 1 else f"{label}:({name})"
        else:
            name = label
        factors = parts + factors
        groupings.append((factors, name))
    return groupings[::-1]


def _independent_parts(expr, term):
    """Split the covariate formula of a ``||`` term into one formula per term."""
    pieces = split_top_level(expr, "+-")
    has_intercept = True
    parts = []
    for sep, piece in pieces:
        if piece in ("0", "-1") or (sep == "-" and piece == "1"):
            has_intercept = False
        elif piece == "1":
            has_intercept = sep != "-"
        elif piece:
            if sep == "-":
                raise PatsyError(f"cannot remove {piece!r} in double-bar term {term!r}")
            parts.append(f"0 + {piece}")
    if not parts and not has_intercept:
        raise PatsyError(f"random-effects term {term!r} has no covariates")
    return (["1"] if has_intercept else []) + parts


def parse_formula(formula):
    """Parse an lme4-style formula.

    Parameters
    ----------
    formula : str
        For example ``"cbind(k, n - k) ~ x + (1 + x | g) + offset(log(t))"``.

    Returns
    -------
    ParsedFormula
    """
    if not isinstance(formula, str):
        raise PatsyError(f"formula must be a string, got {type(formula).__name__}")
    _check_balanced(formula, formula)
    sides = split_top_level(formula, "~")
    if len(sides) != 2 or not sides[1][1]:
        raise PatsyError(f"formula {formula!r} needs the form 'response ~ terms'")
    lhs = sides[0][1] or None
    if lhs is None:
        raise PatsyError(f"formula {formula!r} has no response (left-hand side)")
    if "|" in re.sub(r"(\"[^\"]*\"|'[^']*')", "", lhs):
        raise PatsyError(f"the response {lhs!r} of formula {formula!r} contains '|': "
                         "random-effects terms (expr | g) belong on the right-hand side")
    cbind = None
    cbind_args = _call_argument(lhs, "cbind")
    if cbind_args is not None:
        cbind = tuple(piece for _, piece in split_top_level(cbind_args, ","))
        if len(cbind) != 2 or not all(cbind):
            raise PatsyError(
                f"cbind() in {formula!r} needs exactly two arguments: successes, failures"
            )
    bars, offsets, fixed = [], [], []
    for sep, term in split_top_level(sides[1][1], "+-"):
        if not term:
            if sep or fixed:
                raise PatsyError(f"empty term in formula {formula!r}")
            continue
        bar = _find_bar(term)
        offset = _call_argument(term, "offset")
        if bar is not None:
            if sep == "-":
                raise PatsyError(f"cannot subtract random-effects term {term!r}")
            expr, group, double = bar
            if not expr:
                raise PatsyError(f"random-effects term {term!r} has no covariates")
            if not group:
                raise PatsyError(f"random-effects term {term!r} has no grouping factor")
            exprs = _independent_parts(expr, term) if double else [expr]
            for factors, name in _expand_grouping(group, term):
                bars.extend(BarTerm(e, factors, name) for e in exprs)
        elif offset is not None:
            if sep == "-":
                raise PatsyError(f"cannot subtract offset term {term!r}")
            offsets.append(offset)
        else:
            fixed.append(f"{sep} {term}" if sep else term)
    fixed_rhs = " ".join(fixed).strip()
    if not fixed_rhs:
        fixed_rhs = "1"
    elif fixed_rhs.startswith("-"):
        fixed_rhs = "1 " + fixed_rhs
    elif fixed_rhs.startswith("+"):
        fixed_rhs = fixed_rhs[1:].strip()
    return ParsedFormula(formula, lhs, cbind, fixed_rhs, bars, offsets)
