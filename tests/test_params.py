"""The parameter layout, the optimizer's coordinates and the sd/corr map."""

import numpy as np
import pytest

from statsmodels_glmm.params import (
    OptimizerMap,
    sdcor_bounds,
    sdcor_from_covariance,
    sdcor_to_theta,
    theta_to_sdcor,
)


@pytest.fixture(scope="module")
def gamma_model(positive_fit):
    return positive_fit.model


def test_pack_unpack_round_trip(gamma_model):
    layout = gamma_model.parameters
    theta, beta = np.array([0.3]), np.array([0.4, -1.2])
    packed = layout.pack(theta, 0.25, beta)
    assert packed.size == layout.size == 4
    assert packed[layout.dispersion_slice] == pytest.approx(np.log(0.25))
    t, d, b = layout.unpack(packed)
    np.testing.assert_array_equal(t, theta)
    assert d == pytest.approx(0.25)
    np.testing.assert_array_equal(b, beta)
    assert layout.names()[1] == "log_phi"
    np.testing.assert_array_equal(layout.lower(), [0, -np.inf, -np.inf, -np.inf])


def test_optimizer_map_is_invertible_and_its_jacobian_is_right(gamma_model):
    layout = gamma_model.parameters
    C = np.array([[0.5, 0.0], [0.2, 0.1]])
    coords = OptimizerMap(layout, beta_center=np.array([1.0, 2.0]), whitening=C)
    x = np.array([0.7, -0.3, 0.4, -1.1])
    packed = coords.to_packed(x)
    np.testing.assert_allclose(coords.from_packed(packed), x, atol=1e-14)
    # dx/dpacked by finite differences
    J = np.column_stack([(coords.from_packed(packed + 1e-6 * e)
                          - coords.from_packed(packed - 1e-6 * e)) / 2e-6
                         for e in np.eye(4)])
    np.testing.assert_allclose(coords.jacobian(), J, atol=1e-8)


def test_sdcor_round_trip(binary_fit):
    re = binary_fit.model.random_effects
    theta = np.array([1.3])
    np.testing.assert_allclose(sdcor_to_theta(re, theta_to_sdcor(re, theta)), theta)
    lower, upper = sdcor_bounds(re)
    assert lower.tolist() == [0.0] and upper.tolist() == [np.inf]


def test_correlation_with_a_zero_sd_is_undefined():
    sd, corr = sdcor_from_covariance(np.array([[4.0, 0.0], [0.0, 0.0]]))
    np.testing.assert_array_equal(sd, [2.0, 0.0])
    assert np.isnan(corr).all()
