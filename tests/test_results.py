"""The results contract: statsmodels inference on β plus lme4's accessors."""

import pickle

import numpy as np
import pandas as pd
import pytest

from statsmodels_glmm import datasets, glmer


@pytest.fixture(scope="module")
def contraception_fit():
    data = datasets.load_contraception()
    data["ch"] = pd.Categorical(np.where(data["livch"] != "0", "Y", "N"))
    return glmer("use ~ age * ch + I(age**2) + urban + (urban | district)", data)


def test_labelled_fixed_effects(cbpp_fit):
    names = ["Intercept", "period[T.2]", "period[T.3]", "period[T.4]"]
    for attr in ("params", "bse", "tvalues", "pvalues"):
        assert list(getattr(cbpp_fit, attr).index) == names
    assert list(cbpp_fit.conf_int().index) == names
    assert list(cbpp_fit.cov_params().columns) == names
    z = cbpp_fit.params / cbpp_fit.bse
    np.testing.assert_allclose(cbpp_fit.tvalues, z)


def test_string_wald_and_t_tests(cbpp_fit):
    wald = cbpp_fit.wald_test("period[T.2] = period[T.3], period[T.4] = 0", scalar=True)
    assert wald.df_denom is None or np.isfinite(wald.statistic)
    t = cbpp_fit.t_test("period[T.2] - period[T.4] = 0")
    assert t.effect[0] == pytest.approx(cbpp_fit.params["period[T.2]"]
                                        - cbpp_fit.params["period[T.4]"])
    terms = cbpp_fit.wald_test_terms(scalar=True)
    assert "period" in terms.table.index


def test_varcorr_layout(contraception_fit):
    vc = contraception_fit.varcorr()
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert list(vc["var1"]) == ["(Intercept)", "urban[T.Y]", "(Intercept)"]
    assert vc["var2"].iloc[2] == "urban[T.Y]"
    assert -1 < vc["sdcor"].iloc[2] < 0
    assert vc["sdcor"].iloc[0] == pytest.approx(np.sqrt(vc["vcov"].iloc[0]))


def test_ranef_and_random_effects(cbpp_fit, contraception_fit):
    re = cbpp_fit.ranef()
    assert list(re) == ["herd"]
    assert re["herd"].shape == (15, 1)
    assert list(re["herd"].index[:3]) == ["1", "2", "3"]
    assert cbpp_fit.random_effects["1"].iloc[0] == re["herd"].iloc[0, 0]
    frame = contraception_fit.ranef()["district"]
    assert list(frame.columns) == ["(Intercept)", "urban[T.Y]"]


def test_theta_and_covariances(contraception_fit):
    theta = contraception_fit.theta
    assert theta.size == 3
    cov = contraception_fit.cov_re["district"].to_numpy()
    T = np.array([[theta.iloc[0], 0], [theta.iloc[1], theta.iloc[2]]])
    np.testing.assert_allclose(cov, T @ T.T)


def test_summary_content(cbpp_fit):
    text = str(cbpp_fit.summary())
    for piece in ["Laplace Approximation", "binomial (logit)", "cbind(incidence",
                  "AIC", "BIC", "logLik", "-2logLik", "df.resid", "Scaled residuals",
                  "Random effects", "Std.Dev.", "herd", "No. Observations", "Correlation",
                  "period[T.2]", f"{cbpp_fit.aic:.1f}"]:
        assert piece in text, piece
    html = cbpp_fit.summary().as_html()
    assert "Random effects" in html


def test_summary_scaled_residual_range(cbpp_fit):
    """Pearson residual range = lme4's (its optimum differs by ~5e-4)."""
    from reference import CASES

    ref = CASES["extras"]["cbpp"]["resid_range"]["pearson"]
    q = np.quantile(cbpp_fit.resid_pearson, [0, 1])
    np.testing.assert_allclose(q, ref, atol=2e-3)
    assert f"{q[0]:.4f}" in str(cbpp_fit.summary())


def test_information_criteria(cbpp_fit):
    k = 5
    assert cbpp_fit.aic == pytest.approx(-2 * cbpp_fit.llf + 2 * k)
    assert cbpp_fit.bic == pytest.approx(-2 * cbpp_fit.llf + np.log(56) * k)
    assert cbpp_fit.df_resid == 51
    assert cbpp_fit.nobs == 56
    assert not cbpp_fit.is_singular()


def test_singular_fit_detected():
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"g": np.repeat(np.arange(10), 20), "x": rng.normal(size=200)})
    data["y"] = rng.poisson(np.exp(0.5 + 0.2 * data["x"]))
    import statsmodels.api as sm

    res = glmer("y ~ x + (1 | g)", data, family=sm.families.Poisson())
    assert res.theta.iloc[0] < 0.2
    if res.theta.iloc[0] == 0:
        assert res.is_singular()
        assert "singular" in str(res.summary())


def test_pickle_round_trip(cbpp_fit):
    clone = pickle.loads(pickle.dumps(cbpp_fit))
    assert clone.llf == cbpp_fit.llf
    pd.testing.assert_series_equal(clone.params, cbpp_fit.params)


def test_summary_residual_row_has_no_name(positive_fit):
    """The dispersion row of the random-effects table is ``Residual`` with an empty
    Name (pandas 3 turns the None of varcorr's var1 into NaN: not printed as "nan")."""
    table = str(positive_fit.summary())
    residual = next(line for line in table.splitlines() if line.strip().startswith("Residual"))
    assert "nan" not in residual
