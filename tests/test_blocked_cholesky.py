import numpy as np
import pandas as pd
import pytest

from statsmodels_glmm.blocked_cholesky import PenalizedSystem
from statsmodels_glmm.nested_blocks import (
    NestedBlock,
    gram_diagonal,
    matmul,
    matmul_t,
    product_t,
    subtract,
)
from test_re_terms import make_data, random_effects


@pytest.mark.parametrize("formula", [
    "y ~ (1 | a)",
    "y ~ (1 + x | a)",
    "y ~ (1 + x | a) + (1 | c) + (1 | a:b)",
    "y ~ (1 | a/b)",
    "y ~ (x || a) + (1 | c)",
])
@pytest.mark.parametrize("with_x", [False, True])
def test_factor_matches_dense(formula, with_x):
    rng = np.random.default_rng(3)
    data = make_data(200)
    re = random_effects(formula, data)
    theta = re.theta_start() + rng.uniform(0.1, 0.6, re.n_theta)
    scaled = re.scaled_covariates(theta)
    w = rng.uniform(0.2, 3, len(data))
    w[:5] = -0.05  # single negative weights are fine (observed information)
    X = np.column_stack([np.ones(len(data)), data["x"]]) if with_x else None
    system = PenalizedSystem(re)
    factor = system.factor(scaled, w, X)
    ZL = re.sparse_z().toarray() @ re.relative_factor(theta).toarray()
    A = ZL.T @ (w[:, None] * ZL) + np.eye(re.n_re)
    if with_x:
        WX = w[:, None] * X
        A = np.block([[A, ZL.T @ WX], [WX.T @ ZL, X.T @ WX]])
    L = factor.to_dense()
    np.testing.assert_allclose(L @ L.T, A, atol=1e-10)
    assert factor.logdet2() == pytest.approx(np.linalg.slogdet(A)[1], abs=1e-9)
    r = rng.normal(size=len(data))
    x = np.concatenate(factor.solve(system.rhs(scaled, w * r, X)))
    rhs = ZL.T @ (w * r)
    if with_x:
        rhs = np.concatenate([rhs, X.T @ (w * r)])
    np.testing.assert_allclose(A @ x, rhs, atol=1e-9)


def test_first_block_is_block_diagonal():
    re = random_effects("y ~ (1 + x | a) + (1 | c)", make_data())
    theta = re.theta_start()
    factor = PenalizedSystem(re).factor(re.scaled_covariates(theta), np.ones(120))
    assert factor.diag[0].L.shape == (re.terms[0].n_levels, 2, 2)


def _nested_data(n, seed):
    """Observation-level ``obs`` nested in ``brood`` nested in ``loc``; ``site``
    crossed with ``brood``; a covariate ``x``."""
    rng = np.random.default_rng(seed)
    loc = rng.integers(0, 7, n)
    brood = loc * 4 + rng.integers(0, 4, n)  # nested in loc
    return pd.DataFrame({"obs": np.arange(n), "brood": brood, "loc": loc,
                         "site": rng.integers(0, 5, n), "x": rng.normal(size=n)})


@pytest.mark.parametrize("formula, n_nested", [
    ("y ~ (1 | obs) + (1 | brood)", 1),
    ("y ~ (1 | obs) + (1 | brood) + (1 | loc)", 3),
    ("y ~ (1 | brood) + (1 | loc)", 1),
    # obs nests in brood and in site, which are crossed: L_site,obs L_brood,obsᵀ is dense
    ("y ~ (1 | obs) + (1 | brood) + (1 | site)", 2),
    ("y ~ (1 | obs) + (1 + x | brood) + (1 | loc)", 1),
])
@pytest.mark.parametrize("with_x", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_nested_blocks_match_dense_factor(formula, n_nested, with_x, seed):
    rng = np.random.default_rng(seed)
    data = _nested_data(150, seed)
    re = random_effects(formula, data)
    theta = re.theta_start() + rng.uniform(0.1, 2.0, re.n_theta)
    scaled = re.scaled_covariates(theta)
    w = rng.uniform(0.05, 4, len(data))
    X = np.column_stack([np.ones(len(data)), data["x"], rng.normal(size=len(data))]
                        ) if with_x else None
    sparse_system, dense_system = PenalizedSystem(re), PenalizedSystem(re, nested_blocks=False)
    sparse = sparse_system.factor(scaled, w, X)
    dense = dense_system.factor(scaled, w, X)
    nested = [key for key, blk in sparse.lower.items() if isinstance(blk, NestedBlock)]
    assert len(nested) == n_nested
    assert not any(isinstance(blk, NestedBlock) for blk in dense.lower.values())
    np.testing.assert_allclose(sparse.to_dense(), dense.to_dense(), rtol=0, atol=1e-12)
    assert sparse.logdet2() == pytest.approx(dense.logdet2(), rel=0, abs=1e-12)
    k = len(re.terms)
    assert sparse.logdet2(range(k)) == pytest.approx(dense.logdet2(range(k)), rel=0, abs=1e-12)
    r = rng.normal(size=len(data))
    rhs = sparse_system.rhs(scaled, w * r, X)
    for a, b in zip(sparse.solve(rhs), dense.solve(rhs)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    lead_s, lead_d = sparse.leading(k), dense.leading(k)
    np.testing.assert_allclose(lead_s.to_dense(), lead_d.to_dense(), rtol=0, atol=1e-12)
    for a, b in zip(lead_s.solve(rhs[:k]), lead_d.solve(rhs[:k])):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_nested_block_operations_match_dense():
    rng = np.random.default_rng(5)
    child = NestedBlock(rng.permutation(np.arange(30) % 8), rng.normal(size=30), 8)
    parent_of = rng.integers(0, 3, 8)
    coarse = NestedBlock(parent_of[child.rows], rng.normal(size=30), 3)
    crossed = NestedBlock(rng.integers(0, 4, 30), rng.normal(size=30), 4)
    D = rng.normal(size=(5, 30))
    for A in (child, coarse, crossed, D):
        dA = np.asarray(A)
        v, V = rng.normal(size=30), rng.normal(size=(30, 2))
        np.testing.assert_allclose(matmul(A, v), dA @ v, atol=1e-13)
        np.testing.assert_allclose(matmul(A, V), dA @ V, atol=1e-13)
        u, U = rng.normal(size=dA.shape[0]), rng.normal(size=(dA.shape[0], 2))
        np.testing.assert_allclose(matmul_t(A, u), dA.T @ u, atol=1e-13)
        np.testing.assert_allclose(matmul_t(A, U), dA.T @ U, atol=1e-13)
        for B in (child, coarse, crossed, D):
            np.testing.assert_allclose(np.asarray(product_t(A, B)), dA @ np.asarray(B).T,
                                       atol=1e-13)
    assert isinstance(product_t(coarse, child), NestedBlock)  # child nests in coarse
    assert not isinstance(product_t(crossed, child), NestedBlock)
    np.testing.assert_allclose(np.diag(gram_diagonal(child)),
                               np.asarray(child) @ np.asarray(child).T, atol=1e-13)
    M = NestedBlock(parent_of, rng.normal(size=8), 3)
    P = product_t(coarse, child)
    assert isinstance(subtract(M, P), NestedBlock)
    np.testing.assert_allclose(np.asarray(subtract(M, P)), np.asarray(M) - np.asarray(P))
    np.testing.assert_allclose(subtract(np.asarray(M), P), np.asarray(M) - np.asarray(P))
    Q = product_t(crossed, child)  # dense (4 x 8)
    N = NestedBlock(parent_of + 1, rng.normal(size=8), 4)
    np.testing.assert_allclose(subtract(N, Q), np.asarray(N) - Q)
    np.testing.assert_allclose(subtract(Q, N), Q - np.asarray(N))
    other = NestedBlock(crossed.rows[:8], rng.normal(size=8), 4)  # another pattern
    np.testing.assert_allclose(np.asarray(subtract(N, other)),
                               np.asarray(N) - np.asarray(other))
