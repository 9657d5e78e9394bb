"""The partitioned fit on Dask, and what the driver holds.

Skipped without dask.distributed. The cluster runs in this process (threads),
which exercises the same submit/gather path as a cluster of processes.
"""

import tracemalloc

from conftest import CBPP_FORMULA
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from statsmodels_glmm import GLMM, datasets, glmer
from statsmodels_glmm.partitioned.data import split_model
from statsmodels_glmm.partitioned.model import PartitionedModel
from statsmodels_glmm.partitioned.results import wrap

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_dask_fit_equals_in_memory(client):
    model = GLMM.from_formula(CBPP_FORMULA, datasets.load_cbpp(),
                              family=sm.families.Binomial())
    design, parts = split_model(model, 3)
    ours = wrap(PartitionedModel(design, parts, client=client).fit())
    theirs = model.fit()
    assert ours.llf == pytest.approx(theirs.llf, abs=1e-8)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-7)
    np.testing.assert_allclose(ours.ranef()["herd"], theirs.ranef()["herd"], rtol=1e-6)


def _simulated(n, seed=5):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 50, n)
    x = rng.normal(size=n)
    eta = -0.3 + 0.6 * x + rng.normal(0, 0.8, 50)[g]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    return GLMM.from_formula("y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g}),
                             family=sm.families.Binomial())


def _driver_peak(model, client):
    """Peak of the driver's traced allocations during a fit whose partitions live
    in worker processes (the rows are scattered before tracing starts)."""
    design, parts = split_model(model, 2)
    parts = client.scatter(parts)
    pm = PartitionedModel(design, parts, client=client)
    tracemalloc.start()
    try:
        pm.fit(calc_hessian=False, nAGQ0_init=False)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_driver_memory_does_not_grow_with_rows():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        small = _driver_peak(_simulated(20_000), client)
        large = _driver_peak(_simulated(80_000), client)
    # 4x the rows (the same levels): the driver holds no per-row array (80 000
    # rows of this model are 2.5 MB)
    assert large < 1.2 * small + 200_000


@pytest.mark.parametrize("with_client", [False, True])
def test_glmer_on_a_dask_dataframe(with_client, request):
    dd = pytest.importorskip("dask.dataframe")
    cbpp = datasets.load_cbpp()
    family = sm.families.Binomial()
    if with_client:
        request.getfixturevalue("client")  # the running client is used
    ours = glmer(CBPP_FORMULA, dd.from_pandas(cbpp, npartitions=4), family=family)
    theirs = glmer(CBPP_FORMULA, cbpp, family=family)
    assert ours.llf == pytest.approx(theirs.llf, abs=1e-8)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-7)
    assert list(ours.params.index) == list(theirs.params.index)
    assert ours.mle_retvals["rounds"] > 0
    assert "herd" in str(ours.summary())
