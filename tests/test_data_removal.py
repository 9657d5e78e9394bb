"""Issue 16: remove_data() and small pickles.

After remove_data() what needs no data keeps working and what needs it raises an
error naming what was removed; a pickled fit stores only what cannot be derived
and reproduces every number bit for bit.
"""

import pickle
import warnings

from conftest import CBPP_FORMULA, simulate_binary
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from reference import load_data
from statsmodels_glmm import GLMM, datasets, glmer, glmer_nb
from statsmodels_glmm.data_removal import DataRemovedError


@pytest.fixture
def fresh_fit():
    """A fit nothing has touched yet (statsmodels' remove_data used to fail on it)."""
    return glmer(CBPP_FORMULA, datasets.load_cbpp())


def test_remove_data_on_a_fresh_fit(fresh_fit, cbpp):
    reference = glmer(CBPP_FORMULA, datasets.load_cbpp())
    summary = str(reference.summary())
    newd = cbpp.iloc[:6]
    fresh_fit.remove_data()
    assert str(fresh_fit.summary()) == summary
    assert fresh_fit.deviance == reference.deviance
    np.testing.assert_array_equal(fresh_fit.predict(newd), reference.predict(newd))
    np.testing.assert_allclose(fresh_fit.get_prediction(newd).se,
                               reference.get_prediction(newd).se, rtol=1e-14)
    pd.testing.assert_frame_equal(fresh_fit.ranef()["herd"], reference.ranef()["herd"])
    assert fresh_fit.varcorr().equals(reference.varcorr())
    assert fresh_fit.simulate(2, newdata=newd, seed=1, weights=newd["size"]).shape == (6, 2)
    fresh_fit.remove_data()  # twice is fine


@pytest.mark.parametrize("what, call, match", [
    ("bootstrap", lambda r: r.bootstrap(3), "bootstrap needs the data"),
    ("profile", lambda r: r.profile(), "profile needs the data"),
    ("confint", lambda r: r.confint("boot", nsim=2), "bootstrap needs the data"),
    ("refit", lambda r: r.refit(np.zeros(56)), "refit needs the data"),
    ("allfit", lambda r: r.allfit(), "allfit needs the data"),
    ("simulate", lambda r: r.simulate(1), "simulate without newdata needs the data"),
    ("predict", lambda r: r.predict(), r"prediction at the fitted rows \(newdata=None\)"),
    ("fitted", lambda r: r.fittedvalues, "the modes' mu was removed by remove_data"),
    ("resid", lambda r: r.resid("pearson"), "was removed by remove_data"),
    ("get_me", lambda r: r.get_me("y"), "model.response.y was removed"),
    ("Z", lambda r: r.get_me("Z"), r"the random-effects term \(1 \| herd\).(z|refs) was removed"),
    ("hat", lambda r: r.hat_matrix_diag(), "was removed by remove_data"),
])
def test_what_needs_the_data_says_so(fresh_fit, what, call, match):
    fresh_fit.remove_data()
    with pytest.raises(DataRemovedError, match=match):
        call(fresh_fit)
    with pytest.raises(ValueError, match="update needs the data .* pass data="):
        fresh_fit.update(". ~ . - period")


def test_bootstrap_raises_instead_of_returning_nothing(fresh_fit, cbpp):
    fresh_fit.remove_data()
    with pytest.raises(DataRemovedError, match="model.response"):
        fresh_fit.bootstrap(2, seed=1)
    assert fresh_fit.update(data=cbpp).converged  # with the data given again


def test_pickle_after_remove_data(fresh_fit, cbpp):
    fresh_fit.remove_data()
    clone = pickle.loads(pickle.dumps(fresh_fit))
    np.testing.assert_array_equal(clone.predict(cbpp.iloc[:5]), fresh_fit.predict(cbpp.iloc[:5]))
    assert str(clone.summary()) == str(fresh_fit.summary())
    with pytest.raises(DataRemovedError):
        clone.refit(np.zeros(56))


def _fits():
    cbpp = load_data("cbpp")
    binary = simulate_binary()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {
            "cbind": glmer(CBPP_FORMULA, cbpp),
            "proportion": glmer("prop ~ period + (1 | herd)", cbpp, weights="size"),
            "offset": glmer("y ~ x + (x || g) + offset(log(t))", load_data("poisson_offset"),
                            family=sm.families.Poisson()),
            "nb": glmer_nb("y ~ x + (1 | g)", load_data("negbin")),
            "lmm": glmer("Reaction ~ Days + (Days | Subject)", load_data("sleepstudy"),
                         family=sm.families.Gaussian(), reml=True),
            "transforms": glmer("y ~ scale(x) + poly(x, 2) + (1 | g)", binary),
            "subset_missing": glmer("y ~ x + (1 | g)", binary.assign(
                x=binary["x"].where(binary.index % 7 != 0)), subset="x > -1"),
            "nAGQ0": glmer("y ~ x + (1 | g)", binary, nAGQ=0),
            "arrays": GLMM(binary["y"].to_numpy(), np.column_stack(
                [np.ones(300), binary["x"]]), groups=binary["g"].to_numpy()).fit(),
        }
    fits["refit"] = fits["cbind"].refit(fits["cbind"].simulate(1, seed=3))
    return fits


@pytest.mark.parametrize("name", ["cbind", "proportion", "offset", "nb", "lmm", "transforms",
                                  "subset_missing", "nAGQ0", "arrays", "refit"])
def test_pickle_round_trip_is_bit_identical(name, fits):
    res = fits[name]
    clone = pickle.loads(pickle.dumps(res))
    m0, m1 = res.model, clone.model
    for a, b in [(res.fittedvalues, clone.fittedvalues), (res.modes.eta, clone.modes.eta),
                 (res.modes.neg2ll, clone.modes.neg2ll), (m0.exog, m1.exog),
                 (m0.endog, m1.endog), (m0.response.y, m1.response.y),
                 (m0.response.weights, m1.response.weights), (m0.offset, m1.offset),
                 (res.resid("deviance"), clone.resid("deviance"))]:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert clone.deviance == res.deviance and str(clone.summary()) == str(res.summary())
    if not m0.is_lmm:
        theta, beta = res.theta.to_numpy(), res.fe_params
        assert m1.deviance(theta, beta) == m0.deviance(theta, beta)
    if m0.formula_full is not None:
        assert m0.data.frame.equals(m1.data.frame)
        assert (m0.data.frame.dtypes == m1.data.frame.dtypes).all()
        pd.testing.assert_frame_equal(m0.data.orig_exog, m1.data.orig_exog)
        newd = m0.data.frame.iloc[:5]
        np.testing.assert_array_equal(res.predict(newd), clone.predict(newd))


@pytest.fixture(scope="module")
def fits():
    return _fits()


def test_pickle_stores_little_beyond_the_data():
    """A 10 000-row Bernoulli fit with ten covariates: the pickle is the user's
    data plus at most 25% (it was ~5.5 times the data before)."""
    rng = np.random.default_rng(3)
    n = 10_000
    X = rng.normal(size=(n, 10))
    data = pd.DataFrame(X, columns=["x"] + [f"x{i}" for i in range(1, 10)])
    data["g"] = pd.Categorical([f"g{v:04d}" for v in rng.integers(0, 100, n)])
    eta = -0.5 + 0.8 * X[:, 0] + rng.normal(0, 0.7, 100)[data["g"].cat.codes]
    data["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    rhs = " + ".join(["x"] + [f"x{i}" for i in range(1, 10)])
    res = glmer(f"y ~ {rhs} + (1 | g)", data)
    size = len(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL))
    data_size = data.memory_usage(deep=True).sum()
    assert size < 1.25 * data_size
    res.remove_data()
    assert len(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL)) < 1.25 * data_size


def test_remove_data_leaves_fits_sharing_the_model_intact(fresh_fit):
    second = fresh_fit.model.fit()
    refit = fresh_fit.refit(fresh_fit.simulate(1, seed=1))
    fitted = np.asarray(fresh_fit.fittedvalues)
    refit.remove_data()
    second.remove_data()
    np.testing.assert_array_equal(fresh_fit.fittedvalues, fitted)
    assert fresh_fit.refit(fresh_fit.simulate(1, seed=2)).converged
    assert not getattr(fresh_fit.model, "removed_data", None)
    with pytest.raises(DataRemovedError):
        second.refit(np.zeros(56))
