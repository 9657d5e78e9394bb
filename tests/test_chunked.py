"""Row-block reductions equal their plain formulas."""

import numpy as np

from statsmodels_glmm import chunked


def test_triangular_factor_over_blocks_is_an_r_of_x():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((2 * 8 * chunked.CHUNK_ROWS + 1003, 5))  # blocks + a short one
    R = chunked.triangular_factor(X)
    assert R.shape == (5, 5)
    np.testing.assert_allclose(np.triu(R), R)
    np.testing.assert_allclose(R.T @ R, X.T @ X, rtol=1e-10)


def test_weighted_gram_and_max_abs_product():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3 * chunked.CHUNK_ROWS + 7, 4))
    w = rng.random(X.shape[0]) - 0.2
    np.testing.assert_allclose(chunked.weighted_gram(X, w), X.T @ (w[:, None] * X),
                               rtol=1e-10)
    C = rng.standard_normal((4, 2))
    np.testing.assert_allclose(chunked.max_abs_product(X, C), np.abs(X @ C).max(axis=0))
