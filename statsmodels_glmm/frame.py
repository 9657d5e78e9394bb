"""From the user's data frame to the model frame the formula engine can read.

Data as it arrives is not what patsy expects: nullable ``Int64``/``Float64``/
``boolean`` and ``string`` columns carry ``pd.NA`` (patsy raises on it),
categoricals carry unused levels (R's ``model.frame`` drops them, patsy makes
them the baseline of a rank-deficient design), object columns mix ``1`` and
``"1"`` (one level in R). This module normalises those columns once, and
evaluates the response expression itself, so that a boolean or two-level
response reached through any expression (``Q("my y")``, ``I(y > 0)``) is
recoded to 0/1 instead of becoming two indicator columns.
"""

from dataclasses import dataclass
import numbers
import re
import warnings

import numpy as np
import pandas as pd
from patsy import EvalEnvironment, ModelDesc, PatsyError, dmatrices, dmatrix
import patsy.builtins
import statsmodels.genmod.families as fam
from statsmodels.tools.sm_exceptions import ValueWarning

from .formula_parser import split_top_level
from .levels import level_label
from .r_formula import (
    character_levels,
    has_formula_dot,
    referenced_columns,
    translate_expression,
    translate_formula,
)
from .re_terms import build_random_effects
from .validation import as_data_frame, numeric_vector, select_rows

__all__ = ["check_design_finite", "check_values", "count_expression_missing",
           "normalize_columns", "prepare_newdata", "evaluate_response", "binary_response",
           "referenced_columns", "check_covariate_dtypes", "RESPONSE_COLUMN",
           "ModelFrame", "model_frame", "check_proportion", "formula_model"]

# the evaluated response is stored under this name for the formula engine
RESPONSE_COLUMN = "__response__"
# above this many rows the design is not copied into column-major order
_COPY_ROWS = 100_000


def _is_mixed_object(values):
    """An object column holding numbers and text (or several Python types)."""
    kinds = set()
    for v in pd.unique(values.dropna()):
        if isinstance(v, (bool, np.bool_)):
            kinds.add("bool")
        elif isinstance(v, numbers.Number):
            kinds.add("number")
        else:
            kinds.add(type(v).__name__)
        if len(kinds) > 1:
            return True
    return False


def normalize_column(values):
    """One column as patsy reads it correctly (see the module docstring)."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return values.cat.remove_unused_categories()
    if pd.api.types.is_extension_array_dtype(dtype):
        if pd.api.types.is_bool_dtype(dtype):
            if values.isna().any():  # True/False/None: a factor with missing values
                return values.astype(object).where(values.notna(), None)
            return values.astype(bool)
        if pd.api.types.is_numeric_dtype(dtype):
            return pd.Series(values.astype("Float64").to_numpy(dtype=float, na_value=np.nan),
                             index=values.index, name=values.name)
        if pd.api.types.is_string_dtype(dtype):
            return values.astype(object).where(values.notna(), None)
    if pd.api.types.is_unsigned_integer_dtype(dtype) or (
            pd.api.types.is_integer_dtype(dtype) and np.dtype(dtype).itemsize < 8):
        # R has no small or unsigned integers: k - size must not wrap around
        if dtype == np.uint64 and values.max() >= 2 ** 63:
            return values  # labels beyond int64: keep them exact
        return values.astype(np.int64)
    if pd.api.types.is_object_dtype(dtype) and _is_mixed_object(values):
        # R's as.character: 1, 1.0 and "1" are one level
        return values.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v))
                          else level_label(v))
    return values


def normalize_columns(frame, names):
    """``frame`` with the columns in ``names`` normalised: a shallow copy holding
    the new columns (the caller's frame is never modified), or ``frame`` itself
    when no column changes."""
    changed = {}
    for name in names:
        if name in frame.columns:
            column = frame[name]
            new = normalize_column(column)
            if new is not column:
                changed[name] = new
    return frame.assign(**changed) if changed else frame


def prepare_newdata(newdata):
    """New data for prediction, normalised as the fitted data was.

    Categorical columns become their values, so that the formula engine matches
    them to the fitted levels by label whatever categories (order, unused ones)
    the new frame's dtype carries.
    """
    frame = as_data_frame(newdata)
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    out = normalize_columns(frame, frame.columns)
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(object).where(out[name].notna(), None)
    return out


def check_values(frame, names, missing):
    """Refuse infinite values in the model's columns (never dropped silently), and
    with ``missing="raise"`` name the columns that have missing values."""
    for name in names:
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values.dtype) and not \
                pd.api.types.is_bool_dtype(values.dtype):
            infinite = np.isinf(values.to_numpy(dtype=float, na_value=np.nan))
            if infinite.any():
                raise ValueError(f"column {name!r} has infinite values in "
                                 f"{int(infinite.sum())} row(s) (e.g. row "
                                 f"{frame.index[np.argmax(infinite)]!r}); remove them or use "
                                 "finite values")
    if missing == "raise":
        counts = {name: int(frame[name].isna().sum()) for name in names}
        culprits = [f"{name!r} ({k} rows)" for name, k in counts.items() if k]
        if culprits:
            raise ValueError(f"missing values in column(s) {', '.join(culprits)} "
                             "(missing='raise')")


def count_expression_missing(frame, names, extra, kept):
    """Rows dropped although every column and argument they use is observed: an
    expression of the formula (log of a negative number, 0/0 ...) made them missing."""
    observed = np.ones(len(frame), dtype=bool)
    if names:
        observed &= ~frame[list(names)].isna().any(axis=1).to_numpy()
    for values in extra:
        if values is not None:
            observed &= ~np.isnan(values)
    return int(np.sum(observed & ~kept))


def check_design_finite(design, where):
    """A design evaluated by the formula engine must be finite (``log(0)``)."""
    values = design.to_numpy(dtype=float)
    bad = np.isinf(values)
    if bad.any():
        names = [str(c) for c, b in zip(design.columns, bad.any(axis=0)) if b]
        raise ValueError(f"{', '.join(names)} in {where} is infinite in "
                         f"{int(bad.any(axis=1).sum())} row(s) (e.g. the log of 0)")


def check_covariate_dtypes(frame, text, where):
    """Refuse date and duration columns used as covariates: R would enter them as
    numbers (days or seconds since 1970), patsy as a factor; neither is what a
    user usually means, so ask for an explicit choice."""
    for name in referenced_columns(text, frame.columns):
        dtype = frame[name].dtype
        if not (pd.api.types.is_datetime64_any_dtype(dtype)
                or pd.api.types.is_timedelta64_dtype(dtype)):
            continue
        if re.search(rf"\bC\(\s*{re.escape(name)}\s*[,)]", text):
            continue  # an explicit factor
        raise ValueError(
            f"column {name!r} in {where} is a {dtype} column: use C({name}) for a factor, "
            f"or convert it to a number first (e.g. days since a date)")


def _namespace(eval_env):
    namespace = {name: getattr(patsy.builtins, name) for name in patsy.builtins.__all__}
    namespace.update(eval_env)
    return namespace


def evaluate_response(lhs, frame, eval_env, what="the response"):
    """Evaluate a single expression (the response, or an R expression given as
    ``weights=``/``offset=``) on the frame, as a Series.

    Raises a PatsyError naming the expression if it cannot be evaluated.
    """
    if lhs in frame.columns:
        return frame[lhs]
    env = EvalEnvironment([_namespace(eval_env)])
    try:
        with np.errstate(all="ignore"):
            value = env.eval(lhs, inner_namespace=frame)
    except NameError as exc:
        name = re.search(r"name '([^']+)'", str(exc))
        culprit = repr(name.group(1)) if name else lhs
        raise PatsyError(f"{culprit} in {what} {lhs!r} is neither a column of the "
                         "data nor a known function") from None
    except Exception as exc:  # the user's expression can fail in any way
        raise PatsyError(f"cannot evaluate {what} {lhs!r}: "
                         f"{type(exc).__name__}: {exc}") from None
    if isinstance(value, pd.DataFrame):
        if value.shape[1] != 1:
            raise PatsyError(f"{what} {lhs!r} has {value.shape[1]} columns; use "
                             "cbind(successes, failures) for a two-column binomial response")
        value = value.iloc[:, 0]
    if np.ndim(value) == 0:
        raise PatsyError(f"{what} {lhs!r} is a single value, not one per row")
    if not isinstance(value, pd.Series):
        arr = np.asarray(value)
        if arr.ndim != 1 or arr.shape[0] != len(frame):
            raise PatsyError(f"{what} {lhs!r} must give one value per row; got shape "
                             f"{arr.shape} for {len(frame)} rows")
        value = pd.Series(arr, index=frame.index)
    return value


def binary_response(values, label, binomial=True):
    """A boolean / two-level categorical or text response as 0/1 floats (the
    first level is 0, as R's "failure"); numeric responses pass unchanged.

    With more than two levels a binomial response follows R (the first level is
    failure, all others success) with a warning; other families refuse it.
    Missing values stay NaN so that the row is dropped as incomplete.
    """
    values = normalize_column(values) if isinstance(values, pd.Series) else values
    values = pd.Series(values) if not isinstance(values, pd.Series) else values
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise ValueError(f"response {label!r} is a {dtype} column; the response must be "
                         "numeric, boolean or a two-level factor")
    if pd.api.types.is_bool_dtype(dtype):
        return values.astype(float)
    if isinstance(dtype, pd.CategoricalDtype):
        levels = list(values.cat.remove_unused_categories().cat.categories)
    elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        present = values.dropna()
        if len(present) and all(isinstance(v, (bool, np.bool_)) for v in pd.unique(present)):
            return present.astype(float).reindex(values.index)
        if len(present) and all(isinstance(v, numbers.Real) for v in pd.unique(present)):
            return values.astype(float)
        levels = character_levels(present)  # R's order: "no" < "Yes", so "Yes" is 1
    else:
        return values
    shown = [str(v) for v in levels][:10]
    if len(levels) < 2 or (len(levels) > 2 and not binomial):
        raise ValueError(
            f"response {label!r} has {len(levels)} levels {shown}; a categorical response "
            "needs exactly two (the first is 0)")
    if len(levels) > 2:
        warnings.warn(
            f"response {label!r} has {len(levels)} levels {shown}: as in R, the first "
            f"({shown[0]!r}) is failure (0) and all others success (1)", ValueWarning,
            stacklevel=5)
    return (values != levels[0]).astype(float).where(values.notna())


def check_proportion(parsed, family, weights):
    """lme4's proportion response ``y/n`` needs ``weights=n`` (the trials)."""
    if parsed.cbind is not None or weights is not None:
        return
    if isinstance(family, fam.Binomial) and len(split_top_level(parsed.lhs, "/")) == 2:
        trials = split_top_level(parsed.lhs, "/")[1][1]
        raise ValueError(f"the proportion response {parsed.lhs!r} needs weights={trials} "
                         "(the number of trials), as in lme4; or write "
                         f"cbind(successes, failures)")


# -- formula + data → the model frame (lme4's glFormula) -----------------------------------
@dataclass
class ModelFrame:
    """What :func:`model_frame` hands the model.

    Attributes
    ----------
    fixed_formula : str
        The fixed-effects formula for statsmodels/patsy (the response recoded
        into ``RESPONSE_COLUMN`` where needed).
    frame : pandas.DataFrame
        Complete rows only, indexed by the user's labels.
    parsed : formula_parser.ParsedFormula
        The formula translated from R.
    random_effects : re_terms.RandomEffects
    offset : ndarray
        ``offset=`` plus the formula's ``offset(...)`` terms, per kept row.
    weights : ndarray or None
    explicit_offset : ndarray or None
        The ``offset=`` argument alone (prediction adds new ``offset(...)`` values).
    """

    fixed_formula: str
    frame: pd.DataFrame
    parsed: object
    random_effects: object
    offset: np.ndarray
    weights: object
    explicit_offset: object


def _expression_values(value, frame, eval_env, what):
    """``weights=``/``offset=`` given as an R expression (``offset="log(Area)"``, as
    an R script writes ``offset = log(Area)``): its values; a column name or an
    array is returned as it is."""
    if not isinstance(value, str) or value in frame.columns:
        return value
    if not re.search(r"[^\w.]", value):  # a plain name that is not a column
        return value  # numeric_vector names it
    code = translate_expression(value, frame)
    return evaluate_response(code, frame, eval_env, what=f"{what}=").to_numpy()


def _selected_frame(data, subset, parsed, formula, missing):
    """The rows of ``subset``, columns normalised and checked."""
    frame = select_rows(data, subset)
    if len(frame) == 0:
        raise ValueError("subset selects no rows of data")
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise ValueError(f"data has duplicated column names: {sorted(set(duplicated))}")
    used = (list(frame.columns) if has_formula_dot(parsed.fixed_rhs)
            else referenced_columns(formula, frame.columns))
    frame = normalize_columns(frame, used)
    check_values(frame, used, missing)
    check_covariate_dtypes(frame, parsed.fixed_rhs, "the fixed effects")
    for bar in parsed.bars:
        check_covariate_dtypes(frame, bar.expr, f"random-effects term {bar}")
    return frame, used


def _recode_response(parsed, frame, eval_env, binomial):
    """A single response expression evaluated here (0/1 recoding of two-level and
    boolean responses): the frame with ``RESPONSE_COLUMN`` and the formula."""
    if parsed.cbind is not None or len(split_top_level(parsed.lhs, "+")) != 1:
        return frame, parsed.fixed_formula
    response = evaluate_response(parsed.lhs, frame, eval_env)
    # assign, never set an item: frame may share columns with the user's data
    frame = frame.assign(**{RESPONSE_COLUMN: binary_response(
        response, parsed.lhs, binomial).to_numpy()})
    return frame, f"{RESPONSE_COLUMN} ~ {parsed.fixed_rhs}"


def model_frame(formula, data, parsed, binomial, subset=None, weights=None, offset=None,
                missing="drop", eval_env=None):
    """Formula + data → :class:`ModelFrame` (lme4's ``glFormula``): complete cases,
    response recoding, offsets, weights, levels and row labels.

    ``parsed`` is the parsed lme4 formula (not yet translated from R);
    ``binomial`` whether the family is the binomial (response recoding).
    """
    frame, used = _selected_frame(as_data_frame(data), subset, parsed, formula, missing)
    parsed = translate_formula(parsed, frame)
    frame, fixed_formula = _recode_response(parsed, frame, eval_env, binomial)
    extra = {what: numeric_vector(_expression_values(value, frame, eval_env, what),
                                  frame, what)
             for what, value in (("weights", weights), ("offset", offset))}
    for what, values in extra.items():
        if values is not None and np.isnan(values).all():
            raise ValueError(f"{what} has only missing values")
    # rows by position from here on: the data's index may repeat labels (after a
    # concat), which label-based selection of complete rows would confuse
    labels = frame.index
    frame = frame.set_axis(pd.RangeIndex(len(frame)), axis=0)
    complete = _complete_cases(frame, fixed_formula, parsed, extra, missing, eval_env)
    _warn_expression_missing(frame, complete, used, extra)
    frame = complete
    if len(frame) == 0:
        raise ValueError("no observations left after removing rows with missing values")
    rows = frame["__row__"].to_numpy()
    total_offset = _total_offset(frame, parsed, extra["offset"], rows, eval_env)
    prior = None if extra["weights"] is None else extra["weights"][rows]
    re_terms = build_random_effects(parsed.bars, frame, eval_env)
    keep = labels[frame.index]
    frame = frame.drop(columns="__row__").set_axis(keep, axis=0)  # the user's labels
    explicit = None if extra["offset"] is None else extra["offset"][rows]
    return ModelFrame(fixed_formula, frame, parsed, re_terms, total_offset, prior, explicit)


def _warn_expression_missing(frame, complete, used, extra):
    produced = 0 if len(complete) == len(frame) else count_expression_missing(
        frame, used, extra.values(), frame.index.isin(complete.index))
    if produced:
        warnings.warn(f"{produced} row(s) with every variable observed are dropped "
                      "because an expression of the formula is missing or undefined "
                      "there (e.g. the log of a negative number)", ValueWarning,
                      stacklevel=5)


def _total_offset(frame, parsed, explicit, rows, eval_env):
    """``offset=`` plus every ``offset(...)`` term of the formula."""
    env = EvalEnvironment([eval_env])
    if explicit is None and not parsed.offsets:  # read-only zeros, no memory per row
        return np.broadcast_to(0.0, (len(frame),))
    total = np.zeros(len(frame))
    if explicit is not None:
        total += explicit[rows]
    for expr in parsed.offsets:
        values = np.asarray(
            dmatrix(f"0 + r_I({expr})", frame, eval_env=env, NA_action="raise")).ravel()
        if not np.all(np.isfinite(values)):
            raise ValueError(f"offset({expr}) has infinite values in "
                             f"{int(np.sum(~np.isfinite(values)))} row(s)")
        total += values
    return total


def _plain_columns(formula, frame):
    """The columns a formula reads when each of its factors is a column name (no
    function or transform of one), else None."""
    try:
        desc = ModelDesc.from_formula(formula)
    except PatsyError:
        return None
    names = set()
    for term in desc.lhs_termlist + desc.rhs_termlist:
        for factor in term.factors:
            code = getattr(factor, "code", None)
            if code not in frame.columns:
                return None
            names.add(code)
    return sorted(names)


def _observed_rows(frame, pieces, parsed, na_action, env):
    """Rows where the fixed design, the offsets and every random-effects term are
    defined (formula engine's missing-value rule)."""
    ok = pd.Series(True, index=frame.index)
    with np.errstate(all="ignore"):
        for i, piece in enumerate(pieces):
            plain = _plain_columns(piece, frame) if i == 0 and na_action == "drop" else None
            if plain is not None:
                # columns used as they are (infinite values were refused before):
                # the rows the design keeps are those where they are observed, and
                # building it here (a copy of the size of X, twice) is not needed
                for name in plain:
                    ok &= frame[name].notna()
                continue
            if i == 0:
                _, design = dmatrices(piece, frame, eval_env=env, NA_action=na_action,
                                      return_type="dataframe")
                check_design_finite(design, "the fixed effects")
            else:
                design = dmatrix(piece, frame, eval_env=env, NA_action=na_action,
                                 return_type="dataframe")
                check_design_finite(design, "the offset")
            ok &= frame.index.isin(design.index)
        for bar in parsed.bars:
            design = dmatrix(bar.expr, frame, eval_env=env, NA_action=na_action,
                             return_type="dataframe")
            check_design_finite(design, f"random-effects term {bar}")
            ok &= frame.index.isin(design.index)
            for name in bar.factors:
                if name not in frame.columns:
                    raise PatsyError(f"grouping factor {name!r} in {bar} is not a "
                                     "column of the data")
                ok &= frame[name].notna()
    return ok


def _complete_cases(frame, fixed_formula, parsed, extra, missing, eval_env):
    """Restrict to rows where every variable of the model is observed."""
    na_action = "raise" if missing == "raise" else "drop"
    env = EvalEnvironment([eval_env])
    frame = frame.assign(__row__=np.arange(len(frame)))
    pieces = [fixed_formula] + [f"0 + r_I({e})" for e in parsed.offsets]
    try:
        ok = _observed_rows(frame, pieces, parsed, na_action, env)
    except PatsyError as exc:
        if missing == "raise" and "missing values" in str(exc):
            raise ValueError(f"missing values in the model variables: {exc}") from None
        unknown = re.search(r"NameError: name '([^']+)' is not defined", str(exc))
        if unknown:
            raise PatsyError(
                f"{unknown.group(1)!r} in formula {parsed.formula!r} is neither a column "
                "of the data nor a known function") from None
        raise
    for what, arr in extra.items():
        if arr is not None:
            observed = ~np.isnan(arr)
            if missing == "raise" and not observed.all():
                raise ValueError(f"{what} has {int((~observed).sum())} missing value(s)")
            ok &= observed
    if missing == "raise" and not ok.all():
        raise ValueError("missing values in the grouping factors")
    return frame if ok.all() else frame[ok.to_numpy()]


def formula_model(cls, formula, frame, eval_env, **kwargs):
    """statsmodels' ``Model.from_formula`` on a complete model frame, keeping one
    copy of the design.

    statsmodels asks patsy for data frames, and pandas copies patsy's matrix
    into its own layout: the design exists twice at once (2 GB at 1e7 rows and
    11 columns). Here patsy's matrix becomes the data frame's values as it is.
    The rows are complete already, so missing values are an error.
    """
    endog, exog = dmatrices(formula, frame, eval_env=EvalEnvironment([eval_env]),
                            NA_action="raise", return_type="matrix")
    # pandas' column-major layout, as statsmodels' frames have it (BLAS rounds
    # products with it as before), except on large data, where the copy costs
    # the size of the design
    layout = "C" if len(frame) > _COPY_ROWS else "F"
    frames = [pd.DataFrame(np.asarray(m, order=layout), index=frame.index, copy=False,
                           columns=m.design_info.column_names) for m in (endog, exog)]
    kwargs.update(missing="raise", missing_idx=None, formula=formula,
                  model_spec=exog.design_info)
    model = cls(*frames, **kwargs)
    model.formula = formula
    model.data.frame = frame
    return model
