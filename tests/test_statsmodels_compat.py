"""statsmodels parity of GLMMResults and of the model's arguments (issue 16)."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
import statsmodels.api as sm
from statsmodels.iolib.summary2 import summary_col

from statsmodels_glmm import GLMM, glmer

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp_null(cbpp_fit):
    return glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)",
                 cbpp_fit.model.data.frame, family=sm.families.Binomial())


@pytest.fixture(scope="module")
def exposure_data():
    rng = np.random.default_rng(16)
    g = np.repeat(np.arange(15), 8)
    x = rng.normal(size=g.size)
    t = rng.uniform(0.5, 3.0, g.size)
    y = rng.poisson(t * np.exp(0.2 + 0.4 * x + rng.normal(0, 0.4, 15)[g]))
    return pd.DataFrame({"y": y, "x": x, "g": g, "t": t, "time at risk": t})


@pytest.fixture(scope="module")
def exposure_fit(exposure_data):
    return glmer("y ~ x + (1 | g)", exposure_data, family=sm.families.Poisson(),
                 exposure="t")


# -- summaries --------------------------------------------------------------------------------
def test_summary2(cbpp_fit):
    smry = cbpp_fit.summary2()
    text = str(smry)
    for piece in ("Results: generalized linear mixed model (Laplace)", "Method:", "Laplace",
                  "LL-Null:", "AICc:", "Groups:", "herd (15)", "P>|z|", "(Intercept)",
                  "period[T.4]"):
        assert piece in text, piece
    params, random = smry.tables[1], smry.tables[2]
    np.testing.assert_allclose(params["Coef."], cbpp_fit.params)
    np.testing.assert_allclose(params["Std.Err."], cbpp_fit.bse)
    assert list(random["Group"]) == ["herd"]
    np.testing.assert_allclose(random["Var./Cov."], cbpp_fit.varcorr()["vcov"])
    assert "<table" in smry.as_html()


def test_summary2_robust_and_t(cbpp_fit):
    rob = cbpp_fit.get_robustcov_results(use_t=True)
    smry = rob.summary2(alpha=0.1)
    text = str(smry)
    assert "P>|t|" in text and "Cov. Type:" in text and "cluster" in text
    assert "cluster-robust (CR1, 15 clusters of herd)" in text
    assert "t statistics with 14 degrees of freedom" in text
    np.testing.assert_allclose(smry.tables[1]["Std.Err."], rob.bse)


def test_summary_col(cbpp_fit, cbpp_null, binary_fit):
    table = summary_col([cbpp_fit, cbpp_null, cbpp_fit.get_robustcov_results()],
                        model_names=["period", "null", "robust"], stars=True)
    frame = table.tables[0]
    for row in ("No. Observations", "Groups", "Log-Likelihood", "AIC", "Cov. Type",
                "SD herd (Intercept)"):
        assert row in frame.index, row
    assert frame.loc["SD herd (Intercept)", "period"] == \
        f"{cbpp_fit.varcorr()['sdcor'][0]:.4f}"
    assert frame.loc["Cov. Type", "robust"] == "cluster"
    # a response with one name labels the column
    assert list(summary_col([binary_fit]).tables[0].columns) == ["y"]


# -- likelihood comparisons -----------------------------------------------------------------
def test_compare_lr_test(cbpp_fit, cbpp_null):
    lr, p, df = cbpp_fit.compare_lr_test(cbpp_null)
    table = cbpp_fit.anova(cbpp_null)
    assert df == 3.0
    np.testing.assert_allclose(lr, table["Chisq"].iloc[1], rtol=1e-12)
    np.testing.assert_allclose(p, table["Pr(>Chisq)"].iloc[1], rtol=1e-12)
    # against a GLM without random effects: the variance component (one parameter)
    frame = cbpp_fit.model.data.frame
    endog = np.column_stack([frame["incidence"], frame["size"] - frame["incidence"]])
    glm = sm.GLM(endog, cbpp_fit.model.exog, family=sm.families.Binomial()).fit()
    lr, p, df = cbpp_fit.compare_lr_test(glm)
    assert df == 1.0
    np.testing.assert_allclose(lr, 2 * (cbpp_fit.llf - glm.llf), rtol=1e-12)
    with pytest.raises(ValueError, match="restricted must have fewer parameters"):
        cbpp_null.compare_lr_test(cbpp_fit)


def test_compare_lr_test_refuses_other_data_and_reml(cbpp_fit, count_data):
    other = glmer("y ~ 1 + (1 | g)", count_data, family=sm.families.Poisson())
    with pytest.raises(ValueError, match="same observations"):
        cbpp_fit.compare_lr_test(other)
    data = count_data.assign(z=np.log1p(count_data["y"]))
    full = glmer("z ~ x + (1 | g)", data, family=sm.families.Gaussian(), reml=True)
    small = glmer("z ~ 1 + (1 | g)", data, family=sm.families.Gaussian(), reml=True)
    with pytest.raises(ValueError, match="restricted: REML"):
        full.compare_lr_test(small)


def test_llnull_is_the_intercept_only_glm(cbpp_fit, binary_fit, exposure_fit, exposure_data):
    frame = cbpp_fit.model.data.frame
    endog = np.column_stack([frame["incidence"], frame["size"] - frame["incidence"]])
    glm = sm.GLM(endog, np.ones(len(frame)), family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(cbpp_fit.llnull, glm.llf, rtol=1e-9)
    y = binary_fit.model.response.y
    glm = sm.GLM(y, np.ones_like(y), family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(binary_fit.llnull, glm.llf, rtol=1e-9)
    # exposure enters the null model as statsmodels GLM's exposure does
    glm = sm.GLM(exposure_data["y"], np.ones(len(exposure_data)), family=sm.families.Poisson(),
                 exposure=exposure_data["t"]).fit()
    np.testing.assert_allclose(exposure_fit.llnull, glm.llnull, rtol=1e-9)


def test_llnull_dispersion_at_its_maximum(positive_fit, positive_data):
    """Gamma: the dispersion at its ML value (statsmodels uses the Pearson estimate)."""
    y = positive_data["y"].to_numpy()
    family = sm.families.Gamma(sm.families.links.Log())
    glm = sm.GLM(y, np.ones_like(y), family=family).fit()
    mu = np.full_like(y, np.exp(glm.params[0]))
    best = optimize.minimize_scalar(lambda s: -family.loglike(y, mu, scale=np.exp(s)),
                                    bounds=(-10, 5), method="bounded",
                                    options={"xatol": 1e-10})
    np.testing.assert_allclose(positive_fit.llnull, -best.fun, rtol=1e-8)
    assert positive_fit.llnull >= glm.llf


def test_aicc(cbpp_fit):
    k, n = cbpp_fit.df_modelwc, cbpp_fit.nobs
    np.testing.assert_allclose(cbpp_fit.aicc, cbpp_fit.aic + 2 * k * (k + 1) / (n - k - 1))


# -- use_t ----------------------------------------------------------------------------------------
def test_use_t(cbpp_fit):
    res = glmer(CBPP, cbpp_fit.model.data.frame, family=sm.families.Binomial(), use_t=True)
    assert res.use_t and not cbpp_fit.use_t
    df = res.df_resid
    np.testing.assert_allclose(res.bse, cbpp_fit.bse, rtol=1e-6)
    np.testing.assert_allclose(res.pvalues, 2 * stats.t.sf(np.abs(res.tvalues), df))
    np.testing.assert_allclose(cbpp_fit.pvalues, 2 * stats.norm.sf(np.abs(cbpp_fit.tvalues)))
    np.testing.assert_allclose(res.conf_int()[1] - res.params,
                               stats.t.ppf(0.975, df) * res.bse)
    text = str(res.summary())
    assert "P>|t|" in text and f"t statistics with {df:g} degrees of freedom" in text
    assert "P>|z|" in str(cbpp_fit.summary())


# -- model arguments -------------------------------------------------------------------------------
def test_exposure_is_log_offset(exposure_data, exposure_fit):
    poisson = sm.families.Poisson()
    by_offset = glmer("y ~ x + (1 | g)", exposure_data, family=poisson,
                      offset=np.log(exposure_data["t"].to_numpy()))
    by_array = glmer("y ~ x + (1 | g)", exposure_data, family=poisson,
                     exposure=exposure_data["t"].to_numpy())
    by_name = glmer("y ~ x + (1 | g)", exposure_data, family=poisson,
                    exposure="time at risk")
    for res in (by_offset, by_array, by_name):
        np.testing.assert_allclose(res.llf, exposure_fit.llf, rtol=1e-10)
    assert exposure_fit.model.formula_full.endswith("+ offset(log(t))")
    # predict evaluates the exposure on new rows
    new = exposure_data.head(4).assign(t=[1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(
        exposure_fit.predict(new),
        by_offset.predict(new, offset=np.log(new["t"].to_numpy())), rtol=1e-6)
    # array input
    X = np.column_stack([np.ones(len(exposure_data)), exposure_data["x"]])
    arrays = GLMM(exposure_data["y"].to_numpy(), X, groups=exposure_data["g"].to_numpy(),
                  family=poisson, exposure=exposure_data["t"].to_numpy()).fit()
    np.testing.assert_allclose(arrays.llf, exposure_fit.llf, rtol=1e-8)


def test_exposure_errors(exposure_data):
    with pytest.raises(ValueError, match="exposure needs the log link"):
        glmer("y ~ x + (1 | g)", exposure_data,
              family=sm.families.Poisson(sm.families.links.Sqrt()), exposure="t")
    with pytest.raises(ValueError, match="exposure must be positive"):
        glmer("y ~ x + (1 | g)", exposure_data, family=sm.families.Poisson(),
              exposure=-exposure_data["t"].to_numpy())
    with pytest.raises(ValueError, match="exposure as an array cannot be added"):
        glmer("y ~ x + (1 | g)", exposure_data, family=sm.families.Poisson(),
              exposure=exposure_data["t"].to_numpy(), offset="x")


def test_var_weights_and_freq_weights(exposure_data):
    poisson = sm.families.Poisson()
    by_var = glmer("y ~ x + (1 | g)", exposure_data, family=poisson, var_weights="t")
    by_weights = glmer("y ~ x + (1 | g)", exposure_data, family=poisson, weights="t")
    np.testing.assert_allclose(by_var.llf, by_weights.llf, rtol=1e-12)
    with pytest.raises(ValueError, match="freq_weights is not supported.*weights="):
        glmer("y ~ x + (1 | g)", exposure_data, family=poisson, freq_weights="t")
    with pytest.raises(ValueError, match="give weights or var_weights"):
        glmer("y ~ x + (1 | g)", exposure_data, family=poisson, weights="t", var_weights="t")
    X = np.ones((len(exposure_data), 1))
    with pytest.raises(ValueError, match="freq_weights"):
        GLMM(exposure_data["y"], X, groups=exposure_data["g"], family=poisson,
             freq_weights=np.ones(len(exposure_data)))
