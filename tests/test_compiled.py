"""The compiled kernels equal their numpy paths (and the plain formulas)."""

import numpy as np
import pytest
import scipy.sparse as sp

from statsmodels_glmm import compiled


@pytest.fixture(params=[True, False], ids=["compiled", "numpy"])
def kernels(request, monkeypatch):
    if request.param and not compiled.HAVE_NUMBA:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(compiled, "ENABLED", request.param)
    monkeypatch.setattr(compiled, "MIN_WORK", 0)
    return compiled


def test_group_row_sums(kernels):
    rng = np.random.default_rng(1)
    refs = rng.integers(0, 7, 500)
    w = rng.standard_normal(500)
    X = rng.standard_normal((500, 3))
    expected = np.zeros((9, 3))
    np.add.at(expected, refs, w[:, None] * X)
    got = kernels.group_row_sums(refs, w, X, 9)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,nnz", [((40, 300), 2000), ((1, 5), 3), ((6, 4), 0)])
def test_sparse_gram_lower(kernels, shape, nnz):
    rng = np.random.default_rng(2)
    C = sp.csr_matrix((rng.standard_normal(nnz), (rng.integers(0, shape[0], nnz),
                                                  rng.integers(0, shape[1], nnz))), shape=shape)
    pattern = kernels.SparseGramPattern(C)
    scale = rng.random(shape[1])
    start = rng.standard_normal((shape[0], shape[0]))
    out = kernels.sparse_gram_lower(start.copy(), pattern, scale=scale)
    expected = start - (C @ sp.diags(scale) @ C.T).toarray()
    np.testing.assert_allclose(np.tril(out), np.tril(expected), rtol=1e-12, atol=1e-12)
    # new values on the same pattern
    data = 2.0 * pattern.data
    out = kernels.sparse_gram_lower(start.copy(), pattern, data=data)
    expected = start - 4.0 * (C @ C.T).toarray()
    np.testing.assert_allclose(np.tril(out), np.tril(expected), rtol=1e-12, atol=1e-12)


def test_parallel_kernels_from_several_threads(kernels):
    """Two threads launching the parallel kernels at once (numba's workqueue layer
    would abort the process without the serialization in run_parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    C = sp.random(30, 200, density=0.1, random_state=4, format="csr")
    pattern = kernels.SparseGramPattern(C)
    expected = -(C @ C.T).toarray()

    def one(_):
        return kernels.sparse_gram_lower(np.zeros((30, 30)), pattern)

    with ThreadPoolExecutor(4) as pool:
        for out in pool.map(one, range(16)):
            np.testing.assert_allclose(np.tril(out), np.tril(expected), atol=1e-12)


@pytest.mark.parametrize("band", [1, 3, 7, 64])
@pytest.mark.parametrize("shape,nnz", [((40, 300), 2000), ((1, 5), 3), ((6, 4), 0),
                                       ((23, 9), 150)])
def test_tiled_gram_lower(kernels, shape, nnz, band):
    rng = np.random.default_rng(3)
    C = sp.csr_matrix((rng.standard_normal(nnz), (rng.integers(0, shape[0], nnz),
                                                  rng.integers(0, shape[1], nnz))), shape=shape)
    pattern = kernels.TiledGramPattern(C, band=band)
    scale = rng.random(shape[1])
    start = rng.standard_normal((shape[0], shape[0]))
    out = kernels.tiled_gram_lower(start.copy(), pattern, scale=scale)
    expected = start - (C @ sp.diags(scale) @ C.T).toarray()
    np.testing.assert_allclose(np.tril(out), np.tril(expected), rtol=1e-12, atol=1e-12)
    # new values (CSR order) on the same pattern
    C.sum_duplicates()
    out = kernels.tiled_gram_lower(start.copy(), pattern, data=2.0 * C.data)
    expected = start - 4.0 * (C @ C.T).toarray()
    np.testing.assert_allclose(np.tril(out), np.tril(expected), rtol=1e-12, atol=1e-12)
    if kernels.ENABLED:  # the kernel never writes above the diagonal
        np.testing.assert_array_equal(np.triu(out, 1), np.triu(start, 1))
