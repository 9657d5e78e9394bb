"""Whole lme4 formulas: :func:`translate_formula` translates every part of a
formula parsed by ``formula_parser.parse_formula`` (fixed part, bars, response,
``cbind()`` arguments, offsets) from R's language for patsy.
"""

from patsy import PatsyError

from .columns import referenced_columns
from .dots import expand_dot, has_formula_dot
from .expressions import translate_expression
from .model_matrix import translate
from .parser import _parse


def translate_formula(parsed, frame):
    """An lme4 formula parsed by :func:`formula_parser.parse_formula`, with every
    part translated from R's language for patsy (see :func:`translate`).

    ``.`` in the fixed part expands to every column but the response's (R's
    ``terms(formula, data = )``, which lme4 uses); the response, ``cbind()``
    arguments and ``offset()`` terms are arithmetic expressions; the covariates
    of each random-effects term follow the same rules as the fixed part.

    Returns
    -------
    formula_parser.ParsedFormula
    """
    from dataclasses import replace

    rhs = parsed.fixed_rhs
    response_parts = list(parsed.cbind) if parsed.cbind is not None else [parsed.lhs]
    if has_formula_dot(rhs):
        exclude = set()
        for part in response_parts:
            exclude.update(referenced_columns(part, frame.columns))
        rhs = expand_dot(rhs, frame, exclude=sorted(exclude))
    bars = [replace(bar, expr=translate(bar.expr, frame)) for bar in parsed.bars]
    cbind = (None if parsed.cbind is None
             else tuple(translate_expression(part, frame) for part in parsed.cbind))
    lhs = parsed.lhs if parsed.cbind is not None else _translate_lhs(parsed.lhs, frame)
    return replace(parsed, lhs=lhs, cbind=cbind, fixed_rhs=translate(rhs, frame),
                   bars=bars,
                   offsets=[translate_expression(e, frame) for e in parsed.offsets])


def _translate_lhs(lhs, frame):
    """The response: statsmodels' two-column ``s + f`` stays as it is."""
    if lhs in frame.columns:
        return lhs
    try:
        node = _parse(lhs)
    except PatsyError:
        return lhs
    if node.kind == "op" and node.value == "+":
        return lhs
    return translate_expression(lhs, frame)
