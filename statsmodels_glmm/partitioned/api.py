"""``glmer`` on data that does not sit in one pandas DataFrame.

:func:`glmer` hands a ``dask.dataframe.DataFrame`` here: one O(n) preprocessing
pass (:mod:`.dask_frame`) codes the partitions against a global design, then a
:class:`PartitionedModel` is fitted on the running ``dask.distributed`` client
(or, without one, in this process with dask's default scheduler).
"""

from ..validation import check_family
from .model import PartitionedModel
from .results import wrap

__all__ = ["is_partitioned_data", "glmer_partitioned"]


def is_partitioned_data(data):
    """Whether ``data`` is a Dask DataFrame (without importing dask)."""
    module = type(data).__module__
    return module.startswith("dask") and hasattr(data, "npartitions")


def glmer_partitioned(formula, data, family=None, nAGQ=1, weights=None, offset=None,
                      subset=None, missing="drop", start=None, eval_env=None, client=None,
                      npartitions=None, n_jobs=1, **fit_kwargs):
    """Fit a GLMM to a Dask DataFrame (see :func:`statsmodels_glmm.glmer`).

    Parameters
    ----------
    client : distributed.Client, optional
        Default: the running client, if any; otherwise the partitions are
        computed and fitted in this process.
    npartitions : int, optional
        Partitions of the fit (default: the input's).
    n_jobs : int
        Threads over the partitions when they are in this process.

    Returns
    -------
    GLMMResultsWrapper
        A :class:`~statsmodels_glmm.partitioned.results.PartitionedResults`.
    """
    from .dask_frame import partition_frame
    from .executors import running_client

    estimate_alpha = fit_kwargs.pop("estimate_alpha", False)
    cluster = client if client is not None else running_client()
    if cluster is not None:
        # the preprocessing passes (levels, transforms, complete cases, the
        # collinearity check, the deal to partitions) then read the source once;
        # the copy on the workers is released with the graph that builds the fit's
        # partitions
        data = cluster.persist(data)
    design, parts = partition_frame(formula, data, family=check_family(family),
                                    weights=weights, offset=offset, missing=missing,
                                    eval_env=eval_env, npartitions=npartitions,
                                    estimate_alpha=estimate_alpha, subset=subset)
    model = PartitionedModel(design, parts, client=client, n_jobs=n_jobs)
    del data, parts  # the persisted source: no longer needed once the states exist
    return wrap(model.fit(nAGQ=nAGQ, start=start, **fit_kwargs))
