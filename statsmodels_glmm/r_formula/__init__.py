"""R's formula language (as written in lme4 scripts) translated for patsy.

``translate`` turns the fixed-effects right-hand side of an R formula into a
patsy formula whose ``dmatrix`` is R's ``model.matrix``: the same columns, in
the same order, with the same values (column *names* follow patsy's
convention). To get there it does what R's ``terms.formula`` does -- expands
``*``, ``/``, ``^``, ``%in%`` and ``-`` into a list of terms, sorts them by
order, and decides for every factor in every term whether it is coded by
contrasts or by indicators (the Chambers-Heiberger rule of ``TermCode`` and
``model.matrix``'s no-intercept adjustment). The result is written as a flat
patsy formula with one term per R term.

Patsy orders the columns of a design differently from R: it puts every term
without a numeric factor first, then groups terms by their numeric factors.
``y ~ x + f`` is ``Intercept, f, x`` in patsy and ``(Intercept), x, f`` in R.
When patsy's order or its choice of coding would differ from R's, the factors
of the terms concerned are written as numeric 0/1 indicators of their levels
(``dummy(f, "b")``), which patsy keeps where they are. This needs the levels,
so pass the data frame (not just the column names) to ``translate``.

``R_NAMESPACE`` holds R's functions for formulas (``factor``, ``relevel``,
``scale``, ``poly``, ``ns``, ``bs``, ``cut``, ...), written as patsy stateful
transforms where they learn something from the data, so that prediction on new
data uses what was learned on the fitted data (R's ``makepredictcall``).

The modules of this package, one per concept:

- ``level_order``: R's order of factor levels (``r_sort_key``, ``character_levels``);
- ``values``: missing / logical / numeric values, and column-like arguments as arrays;
- ``factors``, ``scale_poly``, ``splines``: the stateful transforms (``factor``,
  ``relevel``, ``dummy``, ``cut``; ``scale``, ``poly``; ``ns``, ``bs``);
- ``plain_functions``: R's stateless functions (``log``, ``as.numeric``, ``ifelse``, ...);
- ``namespace``: ``R_NAMESPACE`` and the tables of R's function names;
- ``tokenizer``, ``parser``, ``deparse``: R expressions read and written back;
- ``terms``: R's model-formula algebra (``terms.formula``);
- ``columns``: how patsy reads a data column, and ``referenced_columns``;
- ``expressions``: R expressions as Python code (``translate_expression``);
- ``model_matrix``: ``translate``, a right-hand side with R's ``model.matrix`` columns;
- ``dots``, ``update``: ``expand_dot`` / ``has_formula_dot``, and ``update_formula``;
- ``lme4_formula``: ``translate_formula``, every part of a parsed lme4 formula.
"""

# besides the API (__all__), the other public names of the former single module
# r_formula.py stay importable from here (the lines marked noqa: F401)
from .columns import referenced_columns
from .deparse import r_name  # noqa: F401
from .dots import expand_dot, has_formula_dot
from .expressions import translate_expression
from .level_order import character_levels, r_sort_key
from .lme4_formula import translate_formula
from .model_matrix import translate
from .namespace import R_NAMESPACE as _R_NAMESPACE
from .namespace import as_character, as_factor, bs, cut, dummy, factor, ns, poly, relevel, scale  # noqa: F401
from .plain_functions import as_integer, as_numeric, c, ifelse, is_in, is_na, pmax, pmin  # noqa: F401
from .splines import spline_design  # noqa: F401
from .update import update_formula

__all__ = ["R_NAMESPACE", "translate", "translate_expression", "translate_formula",
           "has_formula_dot", "expand_dot", "update_formula", "character_levels", "r_sort_key",
           "referenced_columns"]

#: The functions of translated formulas: give to patsy as
#: ``eval_env=EvalEnvironment([R_NAMESPACE])``. Every function also exists as
#: ``r_<name>``, used when a data column has the function's name.
R_NAMESPACE = _R_NAMESPACE
