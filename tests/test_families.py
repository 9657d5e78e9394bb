"""Family kernels: the generic kernel for a user's statsmodels Family, and Tweedie."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special
import statsmodels.api as sm
from statsmodels.genmod.families import Family, varfuncs
from statsmodels.genmod.families import links as L

from reference import CASES, load_data
from statsmodels_glmm import GLMM, glmer
from statsmodels_glmm.families import (
    GenericKernel,
    TweedieKernel,
    family_name,
    has_dispersion,
    kernel_class,
)
from statsmodels_glmm.families.tweedie_density import tweedie_logpdf
from statsmodels_glmm.response import Response

TWEEDIE = CASES["tweedie"]


class MyGamma(Family):
    """The Gamma family written by a user: variance μ², log link, its density."""

    links = [L.Log]
    safe_links = [L.Log]

    def __init__(self):
        super().__init__(L.Log(), varfuncs.Power(power=2.0))

    def loglike_obs(self, endog, mu, var_weights=1.0, scale=1.0):
        shape = var_weights / scale
        return (shape * np.log(shape * endog / mu) - shape * endog / mu - np.log(endog)
                - special.gammaln(shape))


class MyPoisson(Family):
    """The Poisson family written by a user (no dispersion, no deviance residuals)."""

    links = [L.Log]
    safe_links = [L.Log]

    def __init__(self):
        super().__init__(L.Log(), varfuncs.mu)

    def loglike_obs(self, endog, mu, var_weights=1.0, scale=1.0):
        return var_weights * (endog * np.log(mu) - mu - special.gammaln(endog + 1))


def test_user_family_fits_as_the_family_written_the_long_way(positive_data):
    ours = glmer("y ~ x + (1 | g)", positive_data, family=sm.families.Gamma(L.Log()))
    user = glmer("y ~ x + (1 | g)", positive_data, family=MyGamma())
    assert isinstance(user.model.kernel, GenericKernel)
    assert user.model.has_dispersion
    assert user.neg2llf == pytest.approx(ours.neg2llf, abs=1e-6)
    np.testing.assert_allclose(user.params, ours.params, atol=1e-5)
    np.testing.assert_allclose(user.bse, ours.bse, rtol=1e-3)
    np.testing.assert_allclose(user.theta, ours.theta, atol=1e-5)
    assert user.dispersion == pytest.approx(ours.dispersion, rel=1e-5)
    assert user.deviance == pytest.approx(ours.deviance, rel=1e-8)


def test_user_family_without_dispersion(positive_data):
    ours = glmer("c ~ x + (1 | g)", positive_data, family=sm.families.Poisson())
    user = glmer("c ~ x + (1 | g)", positive_data, family=MyPoisson())
    assert not user.model.has_dispersion
    assert user.neg2llf == pytest.approx(ours.neg2llf, abs=1e-6)
    np.testing.assert_allclose(user.params, ours.params, atol=1e-5)
    # the deviance from the log-likelihood when the family has no residuals
    assert user.deviance == pytest.approx(ours.deviance, rel=1e-8)
    assert "MyPoisson (log)" in str(user.summary())
    with pytest.raises(NotImplementedError, match="cannot simulate"):
        user.simulate(1, seed=0)


def test_subclass_of_a_statsmodels_family_keeps_its_scale_convention(positive_data):
    class Counted(sm.families.Poisson):
        pass

    assert kernel_class(Counted()) is GenericKernel
    assert not has_dispersion(Counted())
    res = glmer("c ~ x + (1 | g)", positive_data, family=Counted())
    ref = glmer("c ~ x + (1 | g)", positive_data, family=sm.families.Poisson())
    assert res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-6)


def test_family_names():
    assert family_name(sm.families.Binomial()) == "binomial"
    assert family_name(sm.families.Tweedie(var_power=1.5)) == "tweedie"
    assert family_name(MyGamma()) == "MyGamma"


# -- Tweedie --------------------------------------------------------------------------------
def _tweedie_kernel(y, power=1.5):
    return Response(sm.families.Tweedie(var_power=power), np.asarray(y, float)).kernel


def test_tweedie_packs_power_and_dispersion():
    kernel = _tweedie_kernel([0.0, 1.0, 2.5])
    assert isinstance(kernel, TweedieKernel)
    packed = kernel.pack_dispersion((0.7, 1.35))
    phi, p = kernel.unpack_dispersion(packed)
    assert (phi, p) == pytest.approx((0.7, 1.35), rel=1e-12)
    assert kernel.report_dispersion(1, packed[1]) == pytest.approx(1.35)


@pytest.mark.parametrize("power, phi, mu", [(1.2, 0.5, 0.3), (1.5, 1.3, 2.0),
                                            (1.8, 2.0, 10.0)])
def test_tweedie_density_integrates_to_one(power, phi, mu):
    kernel = _tweedie_kernel([0.0], power)

    def density(y):
        kernel.y = np.array([y])
        kernel.weights = np.ones(1)
        return np.exp(-0.5 * kernel.neg2loglik_obs(np.array([mu]), (phi, power))[0])

    p0 = density(0.0)  # P(Y = 0) = exp(−λ)
    lam = mu ** (2 - power) / (phi * (2 - power))
    assert p0 == pytest.approx(np.exp(-lam), rel=1e-10)
    mass, _ = integrate.quad(lambda y: density(y), 1e-12, 50 * mu + 50 * phi, limit=400)
    assert p0 + mass == pytest.approx(1.0, abs=1e-6)


def test_tweedie_simulation_moments():
    rng = np.random.default_rng(3)
    mu = np.full(200_000, 2.0)
    kernel = _tweedie_kernel(mu)
    y = kernel.simulate(mu, (1.5, 1.4), rng)
    assert np.mean(y == 0) == pytest.approx(np.exp(-2 ** 0.6 / (1.5 * 0.6)), abs=0.005)
    assert y.mean() == pytest.approx(2.0, rel=0.01)
    assert y.var() == pytest.approx(1.5 * 2.0 ** 1.4, rel=0.03)


def test_tweedie_fit_recovers_the_simulation():
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(40), 25)
    x = rng.normal(size=g.size)
    mu = np.exp(0.3 + 0.5 * x + rng.normal(0, 0.4, 40)[g])
    y = _tweedie_kernel(mu).simulate(mu, (1.2, 1.6), rng)
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = glmer("y ~ x + (1 | g)", data, family=sm.families.Tweedie(var_power=1.5))
    assert res.tweedie_power == pytest.approx(1.6, abs=0.05)
    assert res.dispersion == pytest.approx(1.2, rel=0.15)
    assert res.params["x"] == pytest.approx(0.5, abs=3 * res.bse["x"])
    assert "power p (ML)" in str(res.summary())
    # the reported optimum is a maximum in the power too
    fit = res.fit_record
    devfun = res.model.deviance_function(u0=res.u)
    for p in (fit.dispersion[1] - 0.01, fit.dispersion[1] + 0.01):
        params = res.model.parameters.pack(fit.theta, (fit.dispersion[0], p), fit.beta)
        assert devfun(params) > res.neg2llf


def test_tweedie_density_against_glmmtmb_grid():
    """glmmTMB's dtweedie on a grid of y, μ, φ and p (p from 1.01 to 1.99, φ from
    0.01 to 100, y up to 1000), where statsmodels' density overflows or loses digits."""
    grid = TWEEDIE["density_grid"]
    ours = tweedie_logpdf(grid["y"], grid["mu"], grid["phi"], grid["p"])
    theirs = np.asarray(grid["logf"])
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-8)


def _tweedie_model(name):
    case = TWEEDIE[name]
    family = sm.families.Tweedie(var_power=1.5, link=L.Log())
    return case, GLMM.from_formula(case["formula"], load_data(case["data"]), family=family)


@pytest.mark.parametrize("name", ["a", "b"])
def test_tweedie_deviance_at_fixed_parameters_is_glmmtmb_laplace(name):
    """The same Laplace approximation (observed information) as glmmTMB's, at
    parameters away from the optimum: the likelihood, not only the optimum, agrees."""
    case, model = _tweedie_model(name)
    for point in case["at_fixed"].values():
        params = model.parameters.pack(point["theta_lme4"], (point["phi"], point["p"]),
                                       point["fixef"])
        assert model.deviance_function()(params) == pytest.approx(point["neg2ll"], abs=1e-6)


@pytest.mark.parametrize("name", ["a", "b"])
def test_tweedie_fit_matches_glmmtmb(name):
    case, model = _tweedie_model(name)
    ref = case["glmmTMB"]
    res = model.fit()
    # never worse than glmmTMB's optimum (refined by a Newton step)
    assert res.neg2llf <= ref["neg2ll_refined"] + 1e-6
    assert res.neg2llf == pytest.approx(ref["neg2ll"], abs=1e-3)
    fixef = np.array(list(ref["fixef"].values()))
    se = np.array(ref["se"])
    np.testing.assert_allclose(res.params, fixef, atol=0.01 * se.min())
    np.testing.assert_allclose(res.bse, se, rtol=2e-3)
    np.testing.assert_allclose(res.theta, ref["theta_lme4"], atol=2e-3)
    assert res.tweedie_power == pytest.approx(ref["p"], abs=5 * 0.01 * ref["p_se"] + 1e-4)
    assert res.dispersion == pytest.approx(ref["phi"], rel=2e-3)


@pytest.mark.parametrize("family, disp, estimate_alpha, y", [
    (sm.families.Poisson(), 1.0, False, [0.0, 3.0]),
    (sm.families.NegativeBinomial(alpha=0.5), 1.0, False, [0.0, 3.0]),
    (sm.families.NegativeBinomial(alpha=1.0), 0.8, True, [0.0, 3.0]),
    (sm.families.NegativeBinomial(alpha=1.0), 0.0, True, [0.0, 3.0]),  # Poisson limit
    (sm.families.Gamma(L.Log()), 0.3, False, [1.0, 2.0]),
    (sm.families.InverseGaussian(L.Log()), 0.2, False, [1.0, 2.0]),
    (sm.families.Gaussian(L.Log()), 1.7, False, [1.0, 2.0]),
    (sm.families.Tweedie(var_power=1.5), (1.3, 1.7), False, [0.0, 2.0]),
])
def test_simulation_has_the_kernels_mean_and_variance(family, disp, estimate_alpha, y):
    """Every kernel simulates from its own distribution: mean μ and variance
    φ V(μ) (the NB kernel once drew Poisson counts whatever its α)."""
    rng = np.random.default_rng(7)
    n = 200_000
    kernel = Response(family, np.resize(np.asarray(y, float), n),
                      estimate_alpha=estimate_alpha).kernel
    mu = np.full(n, 2.5)
    draws = kernel.simulate(mu, disp, rng)
    expected = kernel.weight_scale(disp) * kernel.variance(mu[:1], disp)[0]
    assert draws.mean() == pytest.approx(2.5, rel=0.01)
    assert draws.var() == pytest.approx(expected, rel=0.03)
