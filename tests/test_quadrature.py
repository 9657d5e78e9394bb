import numpy as np
import pytest

from statsmodels_glmm.quadrature import gauss_hermite_normal


@pytest.mark.parametrize("k", [1, 2, 3, 9, 25, 100])
def test_rule_integrates_normal_moments(k):
    z, w = gauss_hermite_normal(k)
    assert w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(z, -z[::-1])
    if k >= 2:
        assert np.sum(w * z**2) == pytest.approx(1.0)
    if k >= 3:
        assert np.sum(w * z**4) == pytest.approx(3.0)


def test_odd_rule_has_exact_zero():
    z, _ = gauss_hermite_normal(5)
    assert z[2] == 0.0


def test_invalid():
    with pytest.raises(ValueError):
        gauss_hermite_normal(0)
