"""The compiled single-term PIRLS equals the general one."""

import pickle

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from statsmodels_glmm import GLMM, compiled, fused_pirls, glmer
from statsmodels_glmm.devfun import DevianceFunction

pytestmark = pytest.mark.skipif(not compiled.HAVE_NUMBA, reason="numba is not installed")


def _bernoulli(n=40_000, levels=400, seed=3, slope=0.8):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, levels, n)
    x = rng.standard_normal(n)
    eta = -0.4 + slope * x + rng.normal(0, 0.7, levels)[g]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": g})


@pytest.fixture(scope="module")
def bernoulli():
    return _bernoulli()


def _modes(model, theta, beta, enabled, monkeypatch):
    monkeypatch.setattr(compiled, "ENABLED", enabled)
    devfun = DevianceFunction(model, nAGQ=1)
    return devfun.modes(np.array(theta), 1.0, np.array(beta))


def test_fused_path_applies_only_where_it_should(bernoulli):
    model = GLMM.from_formula("y ~ x + (1 | g)", bernoulli, family=sm.families.Binomial())
    assert fused_pirls.applies(model.response, model.random_effects, joint=False)
    assert fused_pirls.applies(model.response, model.random_effects, joint=True)
    small = GLMM.from_formula("y ~ x + (1 | g)", bernoulli.iloc[:2000],
                              family=sm.families.Binomial())
    assert not fused_pirls.applies(small.response, small.random_effects, joint=False)
    slope = GLMM.from_formula("y ~ x + (x | g)", bernoulli, family=sm.families.Binomial())
    assert not fused_pirls.applies(slope.response, slope.random_effects, joint=False)


@pytest.mark.parametrize("theta,beta", [([0.7], [-0.4, 0.8]), ([2.5], [1.0, -2.0]),
                                        ([0.0], [0.0, 0.0])])
def test_same_modes_and_laplace_as_general_pirls(bernoulli, monkeypatch, theta, beta):
    model = GLMM.from_formula("y ~ x + (1 | g)", bernoulli, family=sm.families.Binomial())
    general = _modes(model, theta, beta, False, monkeypatch)
    fused = _modes(model, theta, beta, True, monkeypatch)
    assert isinstance(fused, fused_pirls.FusedPirlsResult)
    assert fused.laplace() == pytest.approx(general.laplace(), rel=1e-12)
    np.testing.assert_allclose(fused.u, general.u, atol=1e-9)
    for name in ("eta", "mu", "neg2ll"):
        np.testing.assert_allclose(getattr(fused, name), getattr(general, name),
                                   rtol=1e-9, atol=1e-12)


def test_large_linear_predictor_falls_back_to_general_pirls(bernoulli, monkeypatch):
    model = GLMM.from_formula("y ~ x + (1 | g)", bernoulli, family=sm.families.Binomial())
    fused = _modes(model, [0.7], [0.0, 20.0], True, monkeypatch)  # |η| > 15
    general = _modes(model, [0.7], [0.0, 20.0], False, monkeypatch)
    assert not isinstance(fused, fused_pirls.FusedPirlsResult)
    assert fused.laplace() == general.laplace()


def test_fit_and_pickle_equal_general_path(bernoulli, monkeypatch):
    fits = {}
    for enabled in (False, True):
        monkeypatch.setattr(compiled, "ENABLED", enabled)
        fits[enabled] = glmer("y ~ x + (1 | g)", bernoulli, family=sm.families.Binomial())
    assert isinstance(fits[True].fit_record.modes, fused_pirls.FusedPirlsResult)
    assert fits[True].llf == pytest.approx(fits[False].llf, abs=1e-6)
    np.testing.assert_allclose(fits[True].params, fits[False].params, atol=1e-6)
    np.testing.assert_allclose(fits[True].bse, fits[False].bse, rtol=1e-5)
    np.testing.assert_allclose(fits[True].fittedvalues, fits[False].fittedvalues, atol=1e-6)
    again = pickle.loads(pickle.dumps(fits[True]))
    np.testing.assert_array_equal(again.fittedvalues, fits[True].fittedvalues)
    assert again.llf == fits[True].llf


def test_joint_stage_equals_general_pirls(bernoulli, monkeypatch):
    model = GLMM.from_formula("y ~ x + (1 | g)", bernoulli, family=sm.families.Binomial())
    out = {}
    for enabled in (False, True):
        monkeypatch.setattr(compiled, "ENABLED", enabled)
        devfun = DevianceFunction(model, nAGQ=0)
        out[enabled] = devfun.modes(np.array([0.9]), 1.0)
    assert isinstance(out[True], fused_pirls.FusedPirlsResult)
    assert out[True].laplace() == pytest.approx(out[False].laplace(), rel=1e-12)
    np.testing.assert_allclose(out[True].beta, out[False].beta, atol=1e-9)
    np.testing.assert_allclose(out[True].u, out[False].u, atol=1e-9)
    np.testing.assert_allclose(out[True].eta, out[False].eta, atol=1e-9)


def test_nagq0_fit_equals_general_path(bernoulli, monkeypatch):
    fits = {}
    for enabled in (False, True):
        monkeypatch.setattr(compiled, "ENABLED", enabled)
        fits[enabled] = glmer("y ~ x + (1 | g)", bernoulli, family=sm.families.Binomial(),
                              nAGQ=0)
    assert fits[True].llf == pytest.approx(fits[False].llf, abs=1e-6)
    np.testing.assert_allclose(fits[True].params, fits[False].params, atol=1e-6)


def test_conditional_vcov_equals_general_path(bernoulli, monkeypatch):
    from statsmodels_glmm import stages

    model = GLMM.from_formula("y ~ x + (1 | g)", bernoulli, family=sm.families.Binomial())
    u = np.random.default_rng(0).normal(size=model.random_effects.n_re) * 0.3
    out = {}
    for enabled in (False, True):
        monkeypatch.setattr(compiled, "ENABLED", enabled)
        out[enabled] = stages.conditional_vcov(model, np.array([0.8]), np.array([-0.4, 0.8]),
                                               1.0, u)
    np.testing.assert_allclose(out[True], out[False], rtol=1e-10)


@pytest.mark.parametrize("enabled", [True, False])
def test_partitioned_joint_stage_on_the_fused_pass(bernoulli, monkeypatch, enabled):
    from statsmodels_glmm.partitioned.data import split_model
    from statsmodels_glmm.partitioned.model import PartitionedModel

    monkeypatch.setattr(compiled, "ENABLED", enabled)
    model = GLMM.from_formula("y ~ x + (1 | g)", bernoulli, family=sm.families.Binomial())
    design, parts = split_model(model, 2)  # 20 000 rows each: the fused form applies
    partitioned = PartitionedModel(design, parts)
    for theta in ([0.9], [0.4]):
        assert partitioned.deviance_function(0)(np.array(theta)) == pytest.approx(
            model.deviance_function(0)(np.array(theta)), rel=1e-10)


@pytest.mark.parametrize("formula", ["y ~ x + offset(np.log(t)) + (1 | g)", "yb ~ x + (1 | g)",
                                     "yi ~ x + (1 | g)"])
def test_offsets_and_response_dtypes_equal_general_path(bernoulli, monkeypatch, formula):
    data = bernoulli.assign(t=np.exp(np.random.default_rng(1).normal(0, .3, len(bernoulli))),
                            yb=bernoulli["y"].astype(bool), yi=bernoulli["y"].astype(np.int8))
    fits = {}
    for enabled in (False, True):
        monkeypatch.setattr(compiled, "ENABLED", enabled)
        fits[enabled] = glmer(formula, data, family=sm.families.Binomial())
    assert isinstance(fits[True].fit_record.modes, fused_pirls.FusedPirlsResult)
    assert fits[True].llf == pytest.approx(fits[False].llf, abs=1e-6)
    np.testing.assert_allclose(fits[True].params, fits[False].params, atol=1e-6)
