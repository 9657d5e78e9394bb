"""The deviance function: the one seam every evaluation goes through."""

import numpy as np
import pytest

from statsmodels_glmm.devfun import DevianceFunction


def test_deviance_function_at_the_optimum_is_the_fit(cbpp_fit):
    model, fit = cbpp_fit.model, cbpp_fit.fit_record
    devfun = model.deviance_function(nAGQ=1)
    params = model.parameters.pack(fit.theta, fit.dispersion, fit.beta)
    assert devfun(params) == pytest.approx(cbpp_fit.neg2llf, abs=1e-8)
    assert devfun.nfev == 1
    # the model's public deviance is the same function
    assert model.deviance(fit.theta, fit.beta) == pytest.approx(cbpp_fit.neg2llf, abs=1e-8)


def test_quadrature_and_laplace_through_one_class(cbpp_fit):
    model, fit = cbpp_fit.model, cbpp_fit.fit_record
    params = model.parameters.pack(fit.theta, fit.dispersion, fit.beta)
    laplace = DevianceFunction(model, 1)(params)
    agq = DevianceFunction(model, 9)(params)
    assert agq != laplace and abs(agq - laplace) < 1.0
    assert model.deviance(fit.theta, fit.beta, nAGQ=9) == pytest.approx(agq, abs=1e-8)


def test_joint_stage_keeps_the_best_modes(cbpp_fit):
    model = cbpp_fit.model
    devfun = model.deviance_function(nAGQ=0)
    good = devfun(np.array([0.64]))
    u_good = devfun.warm_u.copy()
    bad = devfun(np.array([3.0]))  # a distant trial point: worse, warm start kept
    assert bad > good
    np.testing.assert_array_equal(devfun.warm_u, u_good)
    assert devfun.best == good
    # β from PIRLS, in the user's coordinates
    modes = devfun.modes(np.array([0.64]), 1.0)
    np.testing.assert_allclose(devfun.external_beta(modes), cbpp_fit.fe_params, atol=0.05)


def test_full_stage_warm_starts_from_the_last_evaluation(cbpp_fit):
    model, fit = cbpp_fit.model, cbpp_fit.fit_record
    devfun = model.deviance_function(nAGQ=1)
    params = model.parameters.pack(fit.theta, fit.dispersion, fit.beta)
    devfun(params + 0.5)
    u_far = devfun.warm_u.copy()
    assert not np.allclose(u_far, cbpp_fit.u)
    assert devfun(params) == pytest.approx(cbpp_fit.neg2llf, abs=1e-8)
