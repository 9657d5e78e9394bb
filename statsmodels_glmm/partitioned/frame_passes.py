"""The per-partition steps of :func:`dask_frame.partition_frame`.

Every function here runs inside a Dask task on one input partition (a pandas
DataFrame) and returns either the partition's rows prepared as the in-memory
model frame would hold them, or small summaries (distinct values, counts, a
triangular factor) that the driver combines into global facts. The context
``c`` is the dict held by a :class:`portable.Portable`: the global facts
learned so far (categories, level dictionaries, patsy's design descriptions).

The in-memory pipeline (:mod:`frame`) is reused step by step; what differs is
only where a step needs all rows at once (a categorical's used levels, the
levels of a text response), which here reads the global facts instead of the
partition.
"""

import warnings

import numpy as np
import pandas as pd
from patsy import PatsyError, build_design_matrices

from ..design import _triangular_factor
from ..frame import (
    RESPONSE_COLUMN,
    _expression_values,
    binary_response,
    check_design_finite,
    count_expression_missing,
    evaluate_response,
    normalize_column,
)
from ..levels import level_label, lookup_codes
from ..validation import numeric_vector, select_rows
from .data import PartitionData

# distinct values of a numeric column kept for the skeleton frame: R's
# translation needs every level only of columns used as factors, and a numeric
# column with more distinct values than this is not one
NUMERIC_DISTINCT_CAP = 1_000
EXTRA_COLUMNS = {"weights": "__weights__", "offset": "__offset__"}


def selected(raw, subset, needed):
    """The partition's rows selected by ``subset`` and the model's columns."""
    frame = raw.set_axis([str(col) for col in raw.columns], axis=1)
    if subset is not None and len(frame):
        frame = select_rows(frame, subset)
    return frame[needed]


def distinct_values(values):
    """The distinct non-missing values; at most NUMERIC_DISTINCT_CAP (and the
    extremes) of a numeric column."""
    present = values.dropna()
    if pd.api.types.is_numeric_dtype(values.dtype) and not \
            pd.api.types.is_bool_dtype(values.dtype):
        unique = present.drop_duplicates()
        if len(unique) > NUMERIC_DISTINCT_CAP:
            # the first values and the extremes: enough for types and ranges
            unique = pd.concat([unique.iloc[:NUMERIC_DISTINCT_CAP],
                                present.loc[[present.idxmin(), present.idxmax()]]])
        return unique.reset_index(drop=True)
    return present.drop_duplicates().reset_index(drop=True)


def summarize_raw(raw, subset, needed):
    """Per column of the selected rows: missing and infinite counts, the used
    categories of a categorical, the distinct values otherwise."""
    frame = selected(raw, subset, needed)
    out = {"nrows": len(frame), "columns": {}}
    for name in frame.columns:
        values = frame[name]
        info = {"na": int(values.isna().sum()), "inf": 0, "inf_label": None}
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy()
            used = np.zeros(len(values.cat.categories), dtype=bool)
            used[codes[codes >= 0]] = True
            info["categories"] = list(values.cat.categories)
            info["used"] = used
        else:
            info["distinct"] = distinct_values(values)
            if pd.api.types.is_numeric_dtype(values.dtype) and not \
                    pd.api.types.is_bool_dtype(values.dtype):
                bad = np.isinf(values.to_numpy(dtype=float, na_value=np.nan))
                info["inf"] = int(bad.sum())
                info["inf_label"] = frame.index[np.argmax(bad)] if bad.any() else None
        out["columns"][name] = info
    return out


def _as_labels(values):
    """frame.normalize_column's rule for an object column mixing numbers and
    text: R's as.character (decided here for all partitions at once)."""
    return values.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v))
                      else level_label(v))


def normalize_partition(frame, c):
    """The columns as :func:`frame.normalize_columns` leaves them on the whole
    data: categoricals carry the categories used anywhere, and a column mixing
    numbers and text anywhere is text everywhere."""
    changed = {}
    for name in frame.columns:
        values = frame[name]
        if name in c["categories"]:
            new = values.cat.set_categories(c["categories"][name])
        elif name in c["mixed"]:
            new = _as_labels(values)
        else:
            new = normalize_column(values)
        if new is not values:
            changed[name] = new
    return frame.assign(**changed) if changed else frame


def response_values(frame, c):
    """The evaluated response expression (to collect its global levels)."""
    return evaluate_response(c["response"]["code"], frame, c["env"])


def response_distinct(raw, ctx):
    """Distinct values of a non-numeric evaluated response, else None."""
    c = ctx.value
    frame = normalize_partition(selected(raw, c["subset"], c["needed"]), c)
    values = response_values(frame, c)
    if is_plain_numeric(values):
        return None
    return values.dropna().drop_duplicates().reset_index(drop=True)


def is_plain_numeric(values):
    """Numbers that :func:`frame.binary_response` passes through row by row."""
    dtype = getattr(values, "dtype", None)
    return (dtype is not None and pd.api.types.is_numeric_dtype(dtype)
            and not pd.api.types.is_bool_dtype(dtype)
            and not isinstance(dtype, pd.CategoricalDtype))


def _recode_response(frame, c):
    """frame._recode_response, with the levels of the whole response appended so
    that a two-level text response is coded by its global levels."""
    spec = c["response"]
    if spec is None:
        return frame
    values = response_values(frame, c).reset_index(drop=True)
    levels = spec["levels"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warned once on the driver
        if levels is None or is_plain_numeric(values):
            coded = binary_response(values, spec["label"], spec["binomial"]).to_numpy()
        else:
            both = pd.concat([values, levels], ignore_index=True)
            coded = binary_response(both, spec["label"], spec["binomial"]).to_numpy()
            coded = coded[:len(values)]
    return frame.assign(**{RESPONSE_COLUMN: coded})


def prepare(raw, c):
    """Selected, normalised rows with the response recoded (all rows)."""
    frame = normalize_partition(selected(raw, c["subset"], c["needed"]), c)
    frame = frame.set_axis(pd.RangeIndex(len(frame)), axis=0)
    return _recode_response(frame, c)


def _observed(frame, c):
    """frame._observed_rows with the driver's design descriptions."""
    infos, na_action = c["na_infos"], c["na_action"]
    ok = np.ones(len(frame), dtype=bool)
    n_off = len(c["offset_exprs"])
    groups = [infos[0:2]] + [[info] for info in infos[2:]]
    wheres = (["the fixed effects"] + ["the offset"] * n_off
              + [f"random-effects term {bar}" for bar in c["bars"]])
    try:
        with np.errstate(all="ignore"):
            for group, where in zip(groups, wheres):
                mats = build_design_matrices(group, frame, NA_action=na_action,
                                             return_type="dataframe")
                check_design_finite(mats[-1], where)
                ok &= frame.index.isin(mats[-1].index)
    except PatsyError as exc:
        if na_action == "raise" and "missing values" in str(exc):
            raise ValueError(f"missing values in the model variables: {exc}") from None
        raise
    for bar in c["bars"]:
        for name in bar.factors:
            ok &= frame[name].notna().to_numpy()
    return ok


def complete(frame, c):
    """frame._complete_cases: the rows where every model variable is observed,
    with the ``weights=``/``offset=`` values as columns; and counts."""
    extra = {what: numeric_vector(_expression_values(value, frame, c["env"], what),
                                  frame, what)
             for what, value in c["extra"].items()}
    ok = _observed(frame, c)
    raising = c["na_action"] == "raise"
    for what, arr in extra.items():
        if arr is not None:
            observed = ~np.isnan(arr)
            if raising and not observed.all():
                raise ValueError(f"{what} has {int((~observed).sum())} missing value(s)")
            ok &= observed
    if raising and not ok.all():
        raise ValueError("missing values in the grouping factors")
    stats = {"n": len(frame), "observed": {w: None if a is None else int(np.sum(~np.isnan(a)))
                                           for w, a in extra.items()},
             "expression_missing": 0}
    if not ok.all():
        stats["expression_missing"] = count_expression_missing(
            frame, c["used"], extra.values(), ok)
    out = frame.assign(**{EXTRA_COLUMNS[w]: a for w, a in extra.items() if a is not None})
    out = out[ok]
    return out.set_axis(pd.RangeIndex(len(out)), axis=0), stats


def summarize_complete(raw, ctx):
    """Counts and the distinct values of the grouping columns over complete rows."""
    c = ctx.value
    frame, stats = complete(prepare(raw, c), c)
    stats["n_complete"] = len(frame)
    stats["groups"] = {name: frame[name].drop_duplicates().reset_index(drop=True)
                       for name in c["group_columns"]}
    return stats


def complete_frame(raw, ctx):
    """The complete rows (the chunks of the driver's memorize passes)."""
    c = ctx.value
    return complete(prepare(raw, c), c)[0]


def _combined_codes(frame, c, bar, cache):
    """group_codes' key of each row: per-factor global codes in mixed radix."""
    combined = np.zeros(len(frame), dtype=np.int64)
    for name in bar.factors:
        labels = c["labels"][name]
        if name not in cache:
            cache[name] = lookup_codes(frame[name], labels)[0]
        combined = combined * len(labels) + cache[name]
    return combined


def interaction_keys(raw, ctx):
    """Per bar with several factors, the distinct combined keys (else None)."""
    c = ctx.value
    frame = complete_frame(raw, ctx)
    cache = {}
    return [np.unique(_combined_codes(frame, c, bar, cache)) if len(bar.factors) > 1
            else None for bar in c["bars"]]


def term_refs(frame, c):
    """Global level codes per bar, in the formula's order of bars."""
    cache, refs = {}, []
    for bar, keys in zip(c["bars"], c["bar_keys"]):
        combined = _combined_codes(frame, c, bar, cache)
        refs.append((combined if keys is None
                     else np.searchsorted(keys, combined)).astype(np.intp))
    return refs


def _fixed_design(frame, c):
    infos = c["infos"]
    lhs, rhs = build_design_matrices([infos["lhs"], infos["rhs"]], frame,
                                     NA_action="raise")
    endog = np.asarray(lhs, dtype=float)
    return (endog[:, 0] if endog.shape[1] == 1 else endog), np.asarray(rhs, dtype=float)


def design_statistics(raw, ctx):
    """R of X = QR (all columns), the row count per level of every term, and the
    distinct (level of term i, level of term j) pairs of every two terms (model
    order), from which the driver decides which factors nest in which."""
    c = ctx.value
    frame = complete_frame(raw, ctx)
    exog = _fixed_design(frame, c)[1]
    R = (_triangular_factor(exog) if exog.shape[0] and exog.shape[1]
         else np.zeros((0, exog.shape[1])))
    refs = term_refs(frame, c)
    order = c["order"]
    counts = [np.bincount(refs[j], minlength=c["n_levels"][j]) for j in order]
    pairs = {(a, b): distinct_pairs(refs[i], refs[j])
             for a, i in enumerate(order) for b, j in enumerate(order) if a != b}
    return {"R": R, "counts": counts, "pairs": pairs}


def distinct_pairs(x, y):
    """The distinct rows (x_i, y_i) of two arrays of level codes, sorted, shape
    (k, 2), as ``np.unique(..., axis=0)``: one int64 code per row, sorted
    (``np.unique`` of the rows, or of the codes, takes 50x as long at 1e6 rows)."""
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    base = int(y.max()) + 1 if y.size else 1
    codes = np.sort(x * base + y)
    codes = codes[np.concatenate([[True], codes[1:] != codes[:-1]])] if codes.size else codes
    return np.stack([codes // base, codes % base], axis=1)


def _offset(frame, c):
    """frame._total_offset: ``offset=`` plus the formula's offset(...) terms."""
    total = np.zeros(len(frame))
    if EXTRA_COLUMNS["offset"] in frame.columns:
        total += frame[EXTRA_COLUMNS["offset"]].to_numpy()
    for expr, info in zip(c["offset_exprs"], c["infos"]["offsets"]):
        (mat,) = build_design_matrices([info], frame, NA_action="raise")
        values = np.asarray(mat).ravel()
        if not np.all(np.isfinite(values)):
            raise ValueError(f"offset({expr}) has infinite values in "
                             f"{int(np.sum(~np.isfinite(values)))} row(s)")
        total += values
    return total


def partition_pieces(raw, ctx, first_row):
    """The input partition's complete rows as PartitionData, one per output
    partition (rows of the levels dealt to it; possibly none)."""
    c = ctx.value
    frame = complete_frame(raw, ctx)
    endog, exog = _fixed_design(frame, c)
    exog = exog if c["kept"] is None else exog[:, c["kept"]]
    weights = (frame[EXTRA_COLUMNS["weights"]].to_numpy()
               if EXTRA_COLUMNS["weights"] in frame.columns else None)
    refs = term_refs(frame, c)
    zs = [np.asarray(build_design_matrices([info], frame, NA_action="raise")[0], dtype=float)
          for info in c["infos"]["bars"]]
    order = c["order"]
    offset = _offset(frame, c)
    target = c["level_part"][refs[order[c["by"]]]]
    rows = first_row + np.arange(len(frame))
    pieces = []
    for p in range(c["n_out"]):
        idx = np.flatnonzero(target == p)
        pieces.append(PartitionData(
            endog=endog[idx], exog=exog[idx], offset=offset[idx],
            weights=None if weights is None else weights[idx],
            refs=[refs[j][idx] for j in order], z=[zs[j][idx] for j in order],
            rows=rows[idx]))
    return tuple(pieces)


def concat_pieces(pieces):
    """One output partition from its pieces (input partition order, so the rows
    stay in the data's order)."""
    first = pieces[0]
    return PartitionData(
        endog=np.concatenate([p.endog for p in pieces]),
        exog=np.concatenate([p.exog for p in pieces]),
        offset=np.concatenate([p.offset for p in pieces]),
        weights=(None if first.weights is None
                 else np.concatenate([p.weights for p in pieces])),
        refs=[np.concatenate([p.refs[j] for p in pieces]) for j in range(len(first.refs))],
        z=[np.concatenate([p.z[j] for p in pieces]) for j in range(len(first.z))],
        rows=np.concatenate([p.rows for p in pieces]))


def prepared(raw, ctx):
    """:func:`prepare` as a task (the chunks of the driver's first memorize passes)."""
    return prepare(raw, ctx.value)
