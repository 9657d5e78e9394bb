import numpy as np
import pytest

from statsmodels_glmm.blocked_cholesky import PenalizedSystem
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
