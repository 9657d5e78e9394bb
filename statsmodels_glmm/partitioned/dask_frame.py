"""A Dask DataFrame and an lme4 formula → the partitioned design and its partitions.

:func:`partition_frame` builds exactly the model that
``GLMM.from_formula(formula, df)`` builds on the same rows in memory, without
ever holding all rows on the driver. It reuses the in-memory pipeline
(:mod:`frame`, :mod:`formula_parser`, :mod:`r_formula`, :mod:`levels`,
:mod:`design`); what needs all rows at once is computed globally from
per-partition summaries:

1. per column, the distinct values and used categories (a *skeleton* frame of
   them, on which the R formula is translated and the response levels found),
   missing and infinite counts;
2. patsy's design descriptions (factor types and levels, the state of
   ``scale()``, ``poly()``, ``factor()``) by patsy's incremental builders, whose
   memorize passes read one partition at a time: first on all rows (which rows
   are complete), then on the complete rows (the model's design);
3. the level dictionaries of the grouping factors, over complete rows;
4. the collinear columns from the triangular factors of the partitions' X
   (TSQR), the row count per level of the partitioning factor and the nesting
   of the other factors in it.

The partitions are then built lazily: each input partition deals its rows to
the output partition that owns their level of the largest grouping factor.
The driver holds level dictionaries and p × p factors, never an O(n) array.
"""

import copy
import functools
import re
import sys
from types import SimpleNamespace
import warnings

import numpy as np
import pandas as pd
from patsy import EvalEnvironment, ModelDesc, PatsyError, design_matrix_builders
from statsmodels.tools.sm_exceptions import ValueWarning

from ..design import drop_collinear_columns
from ..formula_parser import parse_formula, split_top_level
from ..frame import (
    RESPONSE_COLUMN,
    _is_mixed_object,
    binary_response,
    check_covariate_dtypes,
    check_proportion,
    normalize_column,
)
from ..levels import factor_codes
from ..r_formula import R_NAMESPACE, has_formula_dot, referenced_columns, translate_formula
from ..validation import check_family, numeric_vector
from . import frame_passes as fp
from .data import PartitionedDesign, TermInfo, partitioning_term
from .portable import Portable

__all__ = ["partition_frame"]


def _import_dask():
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:  # pragma: no cover - the optional extra
        raise ImportError("partition_frame needs dask: pip install "
                          "'statsmodels_glmm[dask]'") from exc
    return dask, dd


def _check_arguments(dd, data, weights, offset, subset, missing):
    if not isinstance(data, dd.DataFrame):
        raise TypeError(
            "data must be a dask.dataframe.DataFrame (dd.read_parquet(...), "
            f"dd.from_pandas(df, npartitions=...)), got {type(data).__name__}; "
            "for a pandas DataFrame use GLMM.from_formula / glmer")
    for what, value in (("weights", weights), ("offset", offset), ("subset", subset)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"with a Dask DataFrame, {what} must be a column name or an "
                            f"expression over the columns, got {type(value).__name__}")
    if missing not in ("drop", "raise", "none"):
        raise ValueError(f"missing must be 'drop' or 'raise', got {missing!r}")


def _compute(dask, tasks):
    return list(dask.compute(*tasks)) if tasks else []


# -- pass 1: columns --------------------------------------------------------------------
def _union(series_list, meta):
    present = [s for s in series_list if len(s)]
    if not present:
        return meta.iloc[:0].reset_index(drop=True)
    return pd.concat(present, ignore_index=True).drop_duplicates().reset_index(drop=True)


def _global_categories(infos, dtype):
    """The categories used anywhere, in the categorical's order."""
    cats = infos[0]["categories"]
    if all(info["categories"] == cats for info in infos):
        used = np.logical_or.reduce([info["used"] for info in infos])
        return [c for c, u in zip(cats, used) if u]
    seen = {}  # categories differ between partitions (unknown to dask): first seen
    for info in infos:
        for c, u in zip(info["categories"], info["used"]):
            if u:
                seen.setdefault(c, None)
    return list(seen)


def _check_values(name, infos, missing):
    """frame.check_values from the partitions' counts."""
    inf = sum(info["inf"] for info in infos)
    if inf:
        label = next(info["inf_label"] for info in infos if info["inf"])
        raise ValueError(f"column {name!r} has infinite values in {inf} row(s) (e.g. row "
                         f"{label!r}); remove them or use finite values")
    return sum(info["na"] for info in infos)


def _columns_facts(summaries, meta, used, missing):
    """Global categories, mixed columns and the skeleton frame (every distinct
    value of each column, cycled to a common length)."""
    if sum(s["nrows"] for s in summaries) == 0:
        raise ValueError("subset selects no rows of data")
    categories, mixed, skeleton, na_counts = {}, set(), {}, {}
    for name in meta.columns:
        infos = [s["columns"][name] for s in summaries]
        na_counts[name] = _check_values(name, infos, missing) if name in used else 0
        dtype = meta[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            cats = _global_categories(infos, dtype)
            categories[name] = cats
            skeleton[name] = pd.Series(pd.Categorical(cats, categories=cats,
                                                      ordered=dtype.ordered))
            continue
        distinct = fp.distinct_values(_union([info["distinct"] for info in infos],
                                              meta[name]))
        if pd.api.types.is_object_dtype(distinct.dtype) and _is_mixed_object(distinct):
            mixed.add(name)
        skeleton[name] = normalize_column(distinct)
    if missing == "raise":
        culprits = [f"{n!r} ({k} rows)" for n, k in na_counts.items() if k]
        if culprits:
            raise ValueError(f"missing values in column(s) {', '.join(culprits)} "
                             "(missing='raise')")
    return categories, mixed, _skeleton_frame(skeleton)


def _skeleton_frame(columns):
    length = max([len(s) for s in columns.values()] + [1])
    out = {}
    for name, values in columns.items():
        if len(values) == 0:
            out[name] = values.reindex(range(length))
        else:
            out[name] = values.take(np.arange(length) % len(values)).reset_index(drop=True)
    return pd.DataFrame(out, index=pd.RangeIndex(length))


# -- formula on the skeleton ------------------------------------------------------------
def _env_subset(eval_env, texts):
    """The formula namespace the tasks need: R's functions and the caller's names
    that the expressions mention (not the caller's whole namespace)."""
    names = set()
    for text in texts:
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text or ""))
    out = dict(R_NAMESPACE)
    out.update({k: v for k, v in eval_env.items() if k in names})
    return out


def _response_spec(dask, tparsed, skeleton, binomial, raws, ctx):
    """frame._recode_response's decision, and the global levels of a
    non-numeric response (checked and warned about here, once)."""
    if tparsed.cbind is not None or len(split_top_level(tparsed.lhs, "+")) != 1:
        return None
    spec = {"code": tparsed.lhs, "label": tparsed.lhs, "binomial": binomial, "levels": None}
    if tparsed.lhs in skeleton.columns:
        column = skeleton[tparsed.lhs]
        distinct = None if fp.is_plain_numeric(column) else [column.drop_duplicates()]
    else:
        ctx.value["response"] = spec
        found = _compute(dask, [dask.delayed(fp.response_distinct)(raw, ctx) for raw in raws])
        distinct = None if all(d is None for d in found) else [d for d in found
                                                                 if d is not None]
    if distinct is not None:
        levels = pd.concat(distinct, ignore_index=True).drop_duplicates()
        levels = levels.reset_index(drop=True)
        binary_response(levels, tparsed.lhs, binomial)  # errors and the >2 levels warning
        spec["levels"] = levels
    return spec


def _termlists(fixed_formula, tparsed):
    desc = ModelDesc.from_formula(fixed_formula)
    return ([desc.lhs_termlist, desc.rhs_termlist]
            + [ModelDesc.from_formula(f"0 + r_I({e})").rhs_termlist for e in tparsed.offsets]
            + [ModelDesc.from_formula(bar.expr).rhs_termlist for bar in tparsed.bars])


def _builders(dask, termlists, chunk_task, raws, ctx, env, na_action, formula):
    """patsy's incremental builders, one partition on the driver at a time."""
    def chunks():
        for raw in raws:
            yield dask.compute(dask.delayed(chunk_task)(raw, ctx))[0]

    try:
        with np.errstate(all="ignore"):
            return design_matrix_builders(termlists, chunks, EvalEnvironment([env]),
                                          na_action)
    except PatsyError as exc:  # frame._complete_cases' message for an unknown name
        unknown = re.search(r"NameError: name '([^']+)' is not defined", str(exc))
        if unknown:
            raise PatsyError(f"{unknown.group(1)!r} in formula {formula!r} is neither a "
                             "column of the data nor a known function") from None
        raise


# -- passes over the complete rows ------------------------------------------------------
def _complete_facts(stats, c, meta):
    """Model-frame checks from the complete-rows pass; the per-factor levels."""
    for what in ("weights", "offset"):
        counts = [s["observed"][what] for s in stats]
        if counts[0] is not None and sum(counts) == 0:
            raise ValueError(f"{what} has only missing values")
    produced = sum(s["expression_missing"] for s in stats)
    if produced:
        warnings.warn(f"{produced} row(s) with every variable observed are dropped "
                      "because an expression of the formula is missing or undefined "
                      "there (e.g. the log of a negative number)", ValueWarning,
                      stacklevel=4)
    if sum(s["n_complete"] for s in stats) == 0:
        raise ValueError("no observations left after removing rows with missing values")
    labels = {}
    for name in c["group_columns"]:
        distinct = _union([s["groups"][name] for s in stats], meta[name])
        if name in c["categories"]:
            distinct = distinct.astype(pd.CategoricalDtype(c["categories"][name],
                                                           meta[name].dtype.ordered))
        labels[name] = factor_codes(distinct)[1]
    return labels


def _term_levels(dask, raws, ctx):
    """Per bar, the sorted combined keys (interactions) and the level labels."""
    c = ctx.value
    c["bar_keys"] = [None] * len(c["bars"])
    if any(len(bar.factors) > 1 for bar in c["bars"]):
        found = _compute(dask, [dask.delayed(fp.interaction_keys)(raw, ctx) for raw in raws])
        for j, bar in enumerate(c["bars"]):
            if len(bar.factors) > 1:
                c["bar_keys"][j] = np.unique(np.concatenate([f[j] for f in found]))
    levels = []
    for bar, keys in zip(c["bars"], c["bar_keys"]):
        if keys is None:
            levels.append(pd.Index(c["labels"][bar.factors[0]]))
            continue
        sizes = [len(c["labels"][name]) for name in bar.factors]
        names = []
        for key in keys:
            parts = []
            for name, size in zip(reversed(bar.factors), reversed(sizes)):
                key, idx = divmod(int(key), size)
                parts.append(c["labels"][name][idx])
            names.append(":".join(reversed(parts)))
        levels.append(pd.Index(names))
    return levels


def _design_decisions(dask, raws, ctx, names, n_out):
    """Kept columns (R's rank rule on the stacked R factors), the output partition
    of each level of the partitioning term (:func:`data.partitioning_term`, the
    outermost factor), which terms are local, and the partitioning term's
    position in the model order."""
    c = ctx.value
    found = _compute(dask, [dask.delayed(fp.design_statistics)(raw, ctx) for raw in raws])
    stacked = np.vstack([f["R"] for f in found])
    if stacked.shape[1]:
        kept = drop_collinear_columns(stacked, names, stacklevel=4)[1]
    else:
        kept = np.zeros(0, dtype=np.intp)
    n_terms = len(c["order"])

    @functools.cache
    def nested_in(a, b):  # each level of term a occurs with one level of term b
        if a == b:
            return True
        pairs = fp.distinct_pairs(*np.concatenate([f["pairs"][a, b] for f in found]).T)
        return not np.any(pairs[1:, 0] == pairs[:-1, 0])  # (pairs sorted by a's level)

    sizes = [SimpleNamespace(n_levels=c["n_levels"][j]) for j in c["order"]]
    by = partitioning_term(sizes, nested_in)
    counts = np.sum([f["counts"][by] for f in found], axis=0)
    before = np.cumsum(counts) - counts  # split_model's rule: contiguous runs of levels
    level_part = np.minimum(before * n_out // max(int(counts.sum()), 1), n_out - 1)
    local = [nested_in(a, by) for a in range(n_terms)]
    return kept, level_part, local, by


def _caller_namespace(depth):
    frame = sys._getframe(depth + 1)
    namespace = dict(frame.f_globals)
    namespace.update(frame.f_locals)
    return namespace


def _model_formula(formula, data, family, weights, offset, subset, missing, dd):
    """The formula checks of GLMM.from_formula; the parsed formula and columns."""
    _check_arguments(dd, data, weights, offset, subset, missing)
    family = check_family(family)
    parsed = parse_formula(formula)
    if not parsed.bars:
        raise PatsyError(
            f"formula {formula!r} has no random-effects term like (1 | g); "
            "for a model without random effects use statsmodels GLM")
    check_proportion(parsed, family, weights)
    columns = [str(col) for col in data.columns]
    duplicated = sorted({col for col in columns if columns.count(col) > 1})
    if duplicated:
        raise ValueError(f"data has duplicated column names: {duplicated}")
    used = (columns if has_formula_dot(parsed.fixed_rhs)
            else referenced_columns(formula, columns))
    extra = [v for v in (weights, offset) if v is not None]
    needed = [col for col in columns
              if col in used or any(col in referenced_columns(v, [col]) for v in extra)]
    return family, parsed, used, needed


def _skeleton_checks(parsed, skeleton, extra):
    """frame._selected_frame's dtype checks and numeric_vector's unknown-column
    error, on the skeleton (they depend on dtypes and names only)."""
    check_covariate_dtypes(skeleton, parsed.fixed_rhs, "the fixed effects")
    for bar in parsed.bars:
        check_covariate_dtypes(skeleton, bar.expr, f"random-effects term {bar}")
    for what, value in extra.items():
        if value is not None and not re.search(r"[^\w.]", value):
            numeric_vector(value, skeleton, what)


def _final_infos(infos, tparsed):
    n_off = len(tparsed.offsets)
    out = {"lhs": infos[0], "rhs": infos[1], "offsets": infos[2:2 + n_off],
           "bars": infos[2 + n_off:]}
    cnames = []
    for bar, info in zip(tparsed.bars, out["bars"]):
        if not info.column_names:
            raise PatsyError(f"random-effects term {bar} has no covariates")
        cnames.append(["(Intercept)" if col == "Intercept" else col
                       for col in info.column_names])
    return out, cnames


def partition_frame(formula, data, family=None, weights=None, offset=None, missing="drop",
                    eval_env=None, npartitions=None, estimate_alpha=False, subset=None):
    """Preprocess a Dask DataFrame into a :class:`data.PartitionedDesign` and lazy
    partitions, the same model as :meth:`GLMM.from_formula` on the same rows.

    Parameters
    ----------
    formula : str
        An lme4 formula (with at least one ``(expr | g)`` term).
    data : dask.dataframe.DataFrame
    family : statsmodels family, optional
        Default ``Binomial()``.
    weights, offset : str, optional
        Column names or R expressions over the columns.
    missing : {"drop", "raise"}
    eval_env : dict, optional
        Namespace for functions in the formula (default: the caller's).
    npartitions : int, optional
        Number of output partitions (default: the input's).
    estimate_alpha : bool
    subset : str, optional
        An expression over the columns (``"urban == 'Y'"``).

    Returns
    -------
    design : PartitionedDesign
    parts : list of dask.delayed
        Each computes one :class:`data.PartitionData`; every level of the largest
        grouping factor lies in exactly one of them.
    """
    dask, dd = _import_dask()
    family, parsed, used, needed = _model_formula(formula, data, family, weights, offset,
                                                  subset, missing, dd)
    na_action = "raise" if missing in ("raise", "none") else "drop"
    eval_env = {**(_caller_namespace(1) if eval_env is None else eval_env), **R_NAMESPACE}
    raws = data.to_delayed()
    meta = data._meta.set_axis([str(col) for col in data.columns], axis=1)[needed]
    summaries = _compute(dask, [dask.delayed(fp.summarize_raw)(raw, subset, needed)
                                for raw in raws])
    categories, mixed, skeleton = _columns_facts(summaries, meta, used, na_action)
    extra = {"weights": weights, "offset": offset}
    _skeleton_checks(parsed, skeleton, extra)
    tparsed = translate_formula(parsed, skeleton)
    texts = [formula, tparsed.fixed_formula, weights, offset, tparsed.lhs]
    ctx = Portable({"needed": needed, "subset": subset, "categories": categories,
                    "mixed": mixed, "env": _env_subset(eval_env, texts), "response": None,
                    "extra": extra, "na_action": na_action, "bars": tparsed.bars,
                    "offset_exprs": tparsed.offsets, "used": used})
    from ..families import BinomialKernel, kernel_class

    binomial = kernel_class(family) is BinomialKernel
    spec = _response_spec(dask, tparsed, skeleton, binomial, raws, ctx)
    ctx.value["response"] = spec
    fixed_formula = (f"{RESPONSE_COLUMN} ~ {tparsed.fixed_rhs}" if spec is not None
                     else tparsed.fixed_formula)
    termlists = _termlists(fixed_formula, tparsed)
    ctx.value["na_infos"] = _builders(dask, termlists, fp.prepared, raws, ctx, eval_env,
                                      na_action, parsed.formula)
    return _complete_part(dask, raws, ctx, meta, termlists, eval_env, tparsed, dict(
        family=copy.deepcopy(family), formula=formula, estimate_alpha=estimate_alpha,
        n_out=max(1, int(npartitions or data.npartitions))))


def _complete_part(dask, raws, ctx, meta, termlists, eval_env, tparsed, model):
    """partition_frame from the complete-cases pass on."""
    c = ctx.value
    for bar in tparsed.bars:
        for name in bar.factors:
            if name not in meta.columns:
                raise PatsyError(f"grouping factor {name!r} in {bar} is not a "
                                 "column of the data")
    c["group_columns"] = sorted({name for bar in tparsed.bars for name in bar.factors})
    stats = _compute(dask, [dask.delayed(fp.summarize_complete)(raw, ctx) for raw in raws])
    c["labels"] = _complete_facts(stats, c, meta)
    infos = _builders(dask, termlists, fp.complete_frame, raws, ctx, eval_env, "raise",
                      tparsed.formula)
    c["infos"], cnames = _final_infos(infos, tparsed)
    levels = _term_levels(dask, raws, ctx)
    n_levels = [len(lev) for lev in levels]
    c["n_levels"] = n_levels
    c["order"] = sorted(range(len(levels)), key=lambda j: -n_levels[j])
    names = list(c["infos"]["rhs"].column_names)
    kept, level_part, local, c["by"] = _design_decisions(dask, raws, ctx, names,
                                                         model["n_out"])
    c["kept"] = None if len(kept) == len(names) else kept
    c["level_part"] = level_part
    c["n_out"] = model["n_out"]
    terms = [TermInfo(tparsed.bars[j].group_name, cnames[j], tparsed.bars[j].expr,
                      levels[j], loc, tuple(tparsed.bars[j].factors))
             for j, loc in zip(c["order"], local)]
    first_rows = np.concatenate([[0], np.cumsum([s["n_complete"] for s in stats])])
    nobs = int(first_rows[-1])
    design = PartitionedDesign(model["family"], terms, [names[i] for i in kept],
                               tparsed.lhs, nobs, bool(model["estimate_alpha"]),
                               model["formula"],
                               [n for i, n in enumerate(names) if i not in set(kept)])
    k = model["n_out"]
    pieces = [dask.delayed(fp.partition_pieces, nout=k)(raw, ctx, int(first))
              for raw, first in zip(raws, first_rows[:-1])]
    parts = [dask.delayed(fp.concat_pieces)([piece[j] for piece in pieces])
             for j in range(k)]
    return design, parts
