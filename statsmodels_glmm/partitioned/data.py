"""What a partitioned fit is made of: per-partition arrays and the global design.

A partitioned model keeps its rows in partitions (in memory, or on Dask workers).
Each partition is a :class:`PartitionData` of plain numpy arrays, coded against
one global :class:`PartitionedDesign`: the same fixed-effects columns, the same
level dictionaries and the same stateful-transform values as the in-memory
model built from all rows at once, so that the partitioned deviance equals the
in-memory one.

Every level of a *local* term lives in one partition (the partitioning factor,
and factors nested in it); the levels of the other (*central*, crossed) terms
are shared between partitions. The random-effects terms are in the model's
order (sorted by decreasing number of levels, as :class:`re_terms.RandomEffects`).
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..re_terms import TermSizes

__all__ = ["PartitionData", "TermInfo", "PartitionedDesign", "split_model", "partitioning_term"]


@dataclass
class PartitionData:
    """The rows of one partition, as numpy arrays coded against the global design.

    Attributes
    ----------
    endog : ndarray, shape (n_p,) or (n_p, 2)
        The response as :class:`GLMM` receives it (two columns: binomial
        successes and failures).
    exog : ndarray, shape (n_p, k_fe)
        The fixed-effects columns kept by the global design (collinear columns
        dropped), float64.
    offset : ndarray, shape (n_p,)
    weights : ndarray or None
        Prior weights, or None.
    refs : list of ndarray
        Per random-effects term (model order), the *global* level code of each row.
    z : list of ndarray
        Per term, the (n_p, S) covariates.
    rows : ndarray or None
        Position of each row in the (complete-case) data, for gathering
        per-observation results in the data's order.
    """

    endog: np.ndarray
    exog: np.ndarray
    offset: np.ndarray
    weights: object
    refs: list
    z: list
    rows: object = None

    @property
    def nobs(self):
        return self.exog.shape[0]


@dataclass
class TermInfo(TermSizes):
    """A random-effects term without its rows.

    Attributes
    ----------
    group_name, expr : str
    cnames : list of str
    levels : pandas.Index
        Global level labels, in the in-memory model's order.
    local : bool
        Each level's rows lie in a single partition (the partitioning factor and
        the factors nested in it).
    """

    group_name: str
    cnames: list
    expr: str
    levels: pd.Index
    local: bool
    factors: tuple = ()

    @property
    def n_cov(self):
        return len(self.cnames)


@dataclass
class PartitionedDesign:
    """The global model description shared by all partitions.

    Attributes
    ----------
    family : statsmodels family
    terms : list of TermInfo
        Model order (decreasing number of levels).
    exog_names : list of str
        Names of the kept fixed-effects columns.
    endog_label : str
    nobs : int
    estimate_alpha : bool
    formula : str or None
    dropped_columns : list of str
    """

    family: object
    terms: list
    exog_names: list
    endog_label: str
    nobs: int
    estimate_alpha: bool = False
    formula: object = None
    dropped_columns: list = field(default_factory=list)

    @property
    def k_fe(self):
        return len(self.exog_names)

    @property
    def local_terms(self):
        return [j for j, t in enumerate(self.terms) if t.local]

    @property
    def central_terms(self):
        return [j for j, t in enumerate(self.terms) if not t.local]


def partitioning_term(terms, nested_in):
    """Index of the factor to partition by: the one the most other factors nest
    in (the outermost of a hierarchy), the one with most levels among ties (the
    first, largest, when all factors cross).

    ``nested_in(i, j)``: whether term i's factor is nested in term j's.
    """
    counts = [sum(nested_in(i, j) for i in range(len(terms))) for j in range(len(terms))]
    return max(range(len(terms)), key=lambda j: (counts[j], terms[j].n_levels, -j))


def _partition_of_rows(term, n_partitions):
    """Partition index of each row: the levels of ``term``'s factor are dealt to
    partitions in contiguous runs of about equal row counts."""
    counts = np.bincount(term.refs, minlength=term.n_levels)
    before = np.cumsum(counts) - counts
    level_part = np.minimum(before * n_partitions // max(int(counts.sum()), 1),
                            n_partitions - 1)
    return level_part[term.refs]


def split_model(model, n_partitions, order=None):
    """Split an in-memory :class:`GLMM` into partitions by its outermost factor
    (:func:`partitioning_term`).

    Parameters
    ----------
    model : GLMM
    n_partitions : int
    order : array_like, optional
        A permutation of the rows applied first (to check that the row order
        does not matter).

    Returns
    -------
    design : PartitionedDesign
    parts : list of PartitionData
    """
    re = model.random_effects
    by = partitioning_term(re.terms, lambda i, j: re.terms[i].is_nested_in(re.terms[j]))
    local = [t.is_nested_in(re.terms[by]) for t in re.terms]
    terms = [TermInfo(t.group_name, list(t.cnames), t.expr, t.levels, loc, tuple(t.factors))
             for t, loc in zip(re.terms, local)]
    design = PartitionedDesign(model.family, terms, list(model.fe_names), model.endog_label,
                               int(model.nobs), model.estimate_alpha,
                               getattr(model, "formula_full", None),
                               list(model.dropped_columns))
    rows = np.arange(int(model.nobs)) if order is None else np.asarray(order)
    part_of_row = _partition_of_rows(re.terms[by], n_partitions)[rows]
    endog = np.asarray(model.endog, dtype=float)
    parts = []
    for p in range(n_partitions):
        idx = rows[part_of_row == p]
        parts.append(PartitionData(
            endog=endog[idx], exog=model.exog[idx], offset=model.offset[idx],
            weights=None if model.weights is None else model.weights[idx],
            refs=[t.refs[idx] for t in re.terms], z=[t.z[idx] for t in re.terms],
            rows=idx))
    return design, parts
