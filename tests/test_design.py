"""The fixed-effects design: scale-invariant rank rule, well-conditioned basis."""

import warnings

import numpy as np
import pytest
from statsmodels.tools.sm_exceptions import ValueWarning

from statsmodels_glmm import glmer
from statsmodels_glmm.design import DesignBasis, analyse_design, independent_columns


def _columns(seed=1, n=300):
    rng = np.random.default_rng(seed)
    return np.ones(n), rng.normal(size=n), rng.normal(size=n)


@pytest.mark.parametrize("transform", [
    lambda x: x + 1e4, lambda x: x * 1e8, lambda x: x * 1e-8, lambda x: x + 1e6,
    lambda x: x * 1e12 + 3e12,
])
def test_rank_rule_is_scale_invariant(transform):
    one, x, w = _columns()
    np.testing.assert_array_equal(independent_columns(np.c_[one, transform(x), w]), [0, 1, 2])


def test_collinear_drops_the_later_column():
    one, x, w = _columns()
    np.testing.assert_array_equal(independent_columns(np.c_[one, x, w, 2 * x - w]), [0, 1, 2])
    np.testing.assert_array_equal(independent_columns(np.c_[one, 1e8 * x, x]), [0, 1])
    np.testing.assert_array_equal(independent_columns(np.c_[one, 0 * x, x, 3 * one]), [0, 2])
    wide = np.random.default_rng(0).normal(size=(3, 5))
    np.testing.assert_array_equal(independent_columns(wide), [0, 1, 2])


def test_basis_maps_back_exactly():
    one, x, w = _columns()
    X = np.c_[one, x + 1e5, w * 1e-6]
    kept, basis = analyse_design(X)
    assert basis.T is not None
    np.testing.assert_allclose(basis.X @ basis.T, X, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(basis.X.T @ basis.X / len(x), np.eye(3), atol=1e-9)
    beta = np.array([-1e5, 1.0, 2e6])
    np.testing.assert_allclose(basis.to_external(basis.to_internal(beta)), beta, rtol=1e-9)
    L = basis.external_cholesky(np.linalg.cholesky(np.diag([1.0, 2.0, 3.0])))
    V = np.linalg.inv(basis.T) @ np.diag([1.0, 2.0, 3.0]) @ np.linalg.inv(basis.T).T
    np.testing.assert_allclose(L @ L.T, V, rtol=1e-8)
    assert DesignBasis(np.c_[one, x]).T is None  # well conditioned: X itself


@pytest.mark.parametrize("scale, shift", [(1.0, 1e4), (1e8, 0.0), (1e-8, 0.0), (1.0, 1e6),
                                          (1e-2, 1e3)])
def test_fit_at_extreme_covariate_scales(binary_data, binary_fit, scale, shift):
    data = binary_data.assign(z=binary_data["x"] * scale + shift)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ValueWarning)  # no column may be dropped
        res = glmer("y ~ z + (1 | g)", data)
    assert res.neg2llf == pytest.approx(binary_fit.neg2llf, abs=1e-6)
    slope = binary_fit.params["x"]
    assert res.params["z"] * scale == pytest.approx(slope, rel=1e-4)
    assert res.bse["z"] * scale == pytest.approx(binary_fit.bse["x"], rel=1e-3)
    intercept = binary_fit.params["Intercept"] - slope * shift / scale
    assert res.params["Intercept"] == pytest.approx(intercept, rel=1e-4, abs=1e-4)


def test_collinear_fit_and_wald_tests(binary_data, binary_fit):
    data = binary_data.assign(x2=2 * binary_data["x"], f=np.repeat(list("abc"), 100))
    data["f2"] = data["f"]
    with pytest.warns(ValueWarning, match="dropping 1 column\\(s\\): x2"):
        res = glmer("y ~ x + x2 + (1 | g)", data)
    assert np.isnan(res.params["x2"]) and res.params["x"] == pytest.approx(
        binary_fit.params["x"], rel=1e-6)
    table = res.wald_test_terms().table
    assert table.loc["x", "statistic"] == pytest.approx(binary_fit.wald_test_terms().table.loc[
        "x", "statistic"], rel=1e-6)
    assert np.isnan(table.loc["x2", "statistic"])
    with pytest.warns(ValueWarning, match="f2\\[T.b\\], f2\\[T.c\\]"):
        res = glmer("y ~ f + f2 + x + (1 | g)", data)
    table = res.wald_test_terms().table
    assert table.loc["f", "df_constraint"] == 2 and np.isnan(table.loc["f2", "statistic"])
    with pytest.raises(ValueError, match="f2\\[T.b\\], dropped"):
        res.wald_test("f[T.b] = f2[T.b]")
