"""lme4's convergence checks and the choice of the covariance of β̂."""

import numpy as np
import pytest
from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning

from statsmodels_glmm.convergence import check_convergence, choose_vcov, try_boundary


def test_converged_fit_passes():
    H = np.diag([4.0, 2.0, 1.0])
    out = check_convergence(np.array([0.5]), np.array([0.0]), H, np.full(3, 1e-6))
    assert out["messages"] == [] and out["max_scaled_grad"] < 1e-5


def test_large_scaled_gradient_warns():
    H = np.eye(2)
    with pytest.warns(ConvergenceWarning, match="scaled gradient"):
        out = check_convergence(np.array([0.5]), np.array([0.0]), H, np.array([0.1, 0.0]))
    assert out["max_scaled_grad"] == pytest.approx(0.1)


def test_parameters_at_the_bound_are_left_out():
    # θ at 0 with a large gradient pointing out of the feasible region: not a failure
    H = np.eye(2)
    out = check_convergence(np.array([0.0]), np.array([0.0]), H, np.array([5.0, 0.0]))
    assert out["singular"] and out["messages"] == []


def test_indefinite_hessian_warns():
    H = np.array([[1.0, 0.0], [0.0, -1.0]])
    with pytest.warns(ConvergenceWarning, match="not positive definite"):
        check_convergence(np.array([0.5]), np.array([0.0]), H, np.zeros(2))


def test_vcov_from_the_hessian_or_the_conditional_fallback():
    H = np.diag([10.0, 4.0, 2.0])  # (θ, β1, β2)
    cond = np.eye(2)
    vcov, kind = choose_vcov(H, cond, 2)
    np.testing.assert_allclose(vcov, np.diag([0.5, 1.0]))
    assert kind == "hessian"
    assert choose_vcov(None, cond, 2) == (cond, "conditional")
    with pytest.warns(HessianInversionWarning):
        vcov, kind = choose_vcov(np.diag([1.0, -1.0, 1.0]), cond, 2)
    assert kind == "conditional"


def test_boundary_is_tried_and_kept_only_if_no_worse():
    lower = np.array([0.0, -np.inf])
    theta = np.array([1e-6, 0.5])
    assert try_boundary(theta, lower, lambda t: t[0], 1e-5)[0] == 0.0
    assert try_boundary(theta, lower, lambda t: -t[0], 1e-5)[0] == 1e-6
    assert try_boundary(np.array([0.1, 0.5]), lower, lambda t: 0.0, 1e-5)[0] == 0.1
