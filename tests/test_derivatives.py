"""Finite-difference derivatives (model-free)."""

import numpy as np
import pytest

from statsmodels_glmm.derivatives import curvature_steps, gradient_and_curvature, numerical_hessian

A = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 3.0]])
b = np.array([1.0, -2.0, 0.5])


def quadratic(x):
    return 0.5 * x @ A @ x - b @ x


def test_hessian_and_gradient_of_a_quadratic_are_exact():
    x = np.array([0.3, -0.2, 1.0])
    H, g = numerical_hessian(quadratic, x, 1e-3)
    np.testing.assert_allclose(H, A, atol=1e-8)
    np.testing.assert_allclose(g, A @ x - b, atol=1e-8)


def test_gradient_and_diagonal_curvature():
    x = np.array([0.3, -0.2, 1.0])
    H, g = gradient_and_curvature(quadratic, x, np.full(3, 1e-3))
    np.testing.assert_allclose(np.diag(H), np.diag(A), atol=1e-8)
    assert np.count_nonzero(H - np.diag(np.diag(H))) == 0
    np.testing.assert_allclose(g, A @ x - b, atol=1e-8)


def test_curvature_steps_are_half_a_standard_error():
    # f = x'Ax/2 ⇒ a "deviance" with curvature A: SE of coordinate i ≈ sqrt(2 / A_ii)
    steps = curvature_steps(lambda x: 1e4 * quadratic(x), np.zeros(3), np.full(3, -np.inf))
    np.testing.assert_allclose(steps, 0.5 * np.sqrt(2.0 / (1e4 * np.diag(A))), rtol=1e-4)
    # at a bound, or when the objective fails, the default step
    assert curvature_steps(quadratic, np.zeros(3), np.zeros(3))[0] == 0.1

    def failing(x):
        raise ArithmeticError

    assert curvature_steps(failing, np.zeros(2), np.full(2, -np.inf)).tolist() == [0.1, 0.1]


@pytest.mark.parametrize("step", [1e-2, 1e-4])
def test_hessian_step_sizes_per_coordinate(step):
    H, _ = numerical_hessian(quadratic, np.zeros(3), np.array([step, 1e-3, 1e-3]))
    np.testing.assert_allclose(H, A, atol=1e-6)
