"""Issue 16: simulate at new data (new levels drawn), conditioning by re_form,
newparams, simulate_formula (lme4's simulate(formula, newdata, newparams)), and
refit(simulate(1)) for every family and response form."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ValueWarning

from reference import load_data
from statsmodels_glmm import glmer, glmer_nb, simulate_formula
from statsmodels_glmm import prediction as _prediction

LOG = sm.families.links.Log()


def test_default_simulation_is_unchanged(cbpp_fit):
    """Drawing every effect anew at the fitted rows is the historical stream."""
    pd.testing.assert_frame_equal(cbpp_fit.simulate(3, seed=11),
                                  _prediction.simulate(cbpp_fit, 3, seed=11))


def test_simulate_newdata_draws_new_levels(cbpp_fit):
    newd = pd.DataFrame({"period": ["1"] * 4, "herd": ["1", "1", "new", "new2"]})
    with pytest.raises(ValueError, match="'new', 'new2'.*allow_new_levels=True"):
        cbpp_fit.simulate(2, newdata=newd, use_u=True)
    sims = cbpp_fit.simulate(2000, seed=1, newdata=newd, use_u=True, allow_new_levels=True,
                             weights=np.full(4, 50))
    assert list(sims.index) == list(newd.index) and sims.shape == (4, 2000)
    counts = sims.to_numpy() * 50
    np.testing.assert_allclose(counts, np.round(counts))
    mu_fit = cbpp_fit.predict(newd.iloc[:1]).iloc[0]
    # a fitted herd: binomial spread around its conditional mean only
    assert sims.iloc[0].mean() == pytest.approx(mu_fit, abs=4 * np.sqrt(
        mu_fit * (1 - mu_fit) / 50 / 2000))
    assert sims.iloc[0].var() == pytest.approx(mu_fit * (1 - mu_fit) / 50, rel=0.1)
    # new herds: a new effect per draw (herd-to-herd spread on top), independent
    assert sims.iloc[2].var() > 2 * sims.iloc[0].var()
    assert abs(np.corrcoef(sims.iloc[2], sims.iloc[3])[0, 1]) < 0.09


def test_simulate_conditioning_follows_lme4(cbpp_fit, cbpp):
    rows = cbpp.iloc[:4]
    fixed = cbpp_fit.simulate(300, seed=2, newdata=rows, use_u=True, weights=rows["size"])
    marginal = cbpp_fit.simulate(300, seed=2, newdata=rows, weights=rows["size"])
    by_form = cbpp_fit.simulate(300, seed=2, newdata=rows, re_form="~(1 | herd)",
                                weights=rows["size"])
    pd.testing.assert_frame_equal(fixed, by_form)
    # rows of one herd share its new draw: the marginal spread is larger
    assert marginal.var(axis=1).mean() > fixed.var(axis=1).mean()
    same_herd = np.corrcoef(marginal.iloc[0], marginal.iloc[1])[0, 1]
    assert same_herd > 0.2
    with pytest.warns(ValueWarning, match="1 trial per row"):
        cbpp_fit.simulate(1, newdata=rows, seed=1)
    with pytest.raises(ValueError, match="weights are for the rows of newdata"):
        cbpp_fit.simulate(1, weights=np.ones(56))


def test_simulate_newparams(cbpp_fit):
    flat = cbpp_fit.simulate(2, seed=3, newparams={"theta": [0.0], "beta": [-30, 0, 0, 0]})
    assert (flat.to_numpy() == 0).all()
    with pytest.raises(ValueError, match="newparams\\['beta'\\] has 2 values"):
        cbpp_fit.simulate(1, newparams={"beta": [1, 2]})
    with pytest.raises(ValueError, match="unknown keys"):
        cbpp_fit.simulate(1, newparams={"fixef": [1, 2, 3, 4]})


@pytest.fixture(scope="module")
def design():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=60).round(3), "g": np.repeat(np.arange(15), 4)})


def test_simulate_formula_is_the_seeded_brute_force(design):
    """The same draws as a plain numpy simulation with the same seed: per draw, the
    level effects b = θ z (levels in sorted order), then y ~ Bernoulli(expit(η))."""
    theta, beta = 0.9, np.array([-0.4, 1.2])
    sims = simulate_formula("~ x + (1 | g)", design, {"theta": [theta], "beta": beta},
                            nsim=3, seed=7)
    rng = np.random.default_rng(7)
    X = np.column_stack([np.ones(len(design)), design["x"]])
    for k in range(3):
        b = rng.standard_normal((15, 1)) @ np.array([[theta]])
        mu = np.clip(special.expit(X @ beta + b[design["g"], 0]), 2.2e-16, 1 - 2.2e-16)
        y = rng.binomial(np.ones(len(design), dtype=np.int64), mu).astype(float)
        np.testing.assert_array_equal(sims[f"sim_{k + 1}"], y)
    assert list(sims.index) == list(design.index)


def test_simulate_formula_distribution(design):
    """Moments of many draws against the model's marginal moments by quadrature."""
    theta, beta = 0.9, np.array([-0.4, 1.2])
    sims = simulate_formula("y ~ x + (1 | g)", design, {"theta": [theta],
                                                        "beta": {"x": 1.2, "Intercept": -0.4}},
                            nsim=1000, seed=8).to_numpy()
    z, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    eta = beta[0] + beta[1] * design["x"].to_numpy()
    p = special.expit(eta[:, None] + theta * z[None, :])  # rows x nodes
    mean = p @ w
    zscores = (sims.mean(axis=1) - mean) / np.sqrt(mean * (1 - mean) / 1000)
    assert abs(zscores.mean()) < 0.4 and 0.6 < zscores.std() < 1.4
    # two rows of a group share b: their covariance E[p_i p_j] − p̄_i p̄_j
    cov = (p[0] * p[1]) @ w - mean[0] * mean[1]
    assert np.cov(sims[0], sims[1])[0, 1] == pytest.approx(cov, abs=4 / np.sqrt(1000) * 0.25)


def test_simulate_formula_families_and_errors(design):
    gamma = sm.families.Gamma(LOG)
    big = pd.concat([design] * 20, ignore_index=True).assign(
        g=lambda d: d.index // 10)
    y = simulate_formula("~ x + (1 | g)", big, {"theta": [0.5], "beta": [1.0, 0.3],
                                                "sigma": 0.5}, family=gamma, seed=1)["sim_1"]
    res = glmer("y ~ x + (1 | g)", big.assign(y=y), family=gamma)
    assert res.dispersion == pytest.approx(0.25, rel=0.15)
    assert res.params["x"] == pytest.approx(0.3, abs=4 * res.bse["x"])
    lmm = simulate_formula("~ x + (1 | g)", big, {"theta": [1.0], "beta": [0, 0],
                                                  "sigma": 2.0}, family=sm.families.Gaussian(),
                           seed=2)["sim_1"]
    assert lmm.var() == pytest.approx(8.0, rel=0.2)  # σ²(θ² + 1): b = σ θ u
    with pytest.raises(ValueError, match="dispersion parameter: give newparams\\['sigma'\\]"):
        simulate_formula("~ x + (1 | g)", design, {"theta": [1], "beta": [0, 0]}, family=gamma)
    with pytest.raises(ValueError, match="newparams lacks \\['beta'\\]"):
        simulate_formula("~ x + (1 | g)", design, {"theta": [1]})
    missing = design.assign(x=design["x"].where(design.index != 5))
    out = simulate_formula("~ x + (1 | g)", missing, {"theta": [1], "beta": [0, 1]}, seed=1)
    assert np.isnan(out.loc[5, "sim_1"]) and out.drop(5)["sim_1"].notna().all()


# -- refit(simulate(1)) ---------------------------------------------------------------------------
def _tweedie_fit():
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"x": rng.normal(size=120), "g": np.repeat(np.arange(12), 10)})
    family = sm.families.Tweedie(var_power=1.5, link=LOG)
    data["y"] = simulate_formula("~ x + (1 | g)", data, {"theta": [0.5], "beta": [0.3, 0.5],
                                                         "phi": (1.5, 1.5)}, family=family,
                                 seed=2)["sim_1"]
    return glmer("y ~ x + (1 | g)", data, family=family)


def _nb_fit():
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"x": rng.normal(size=200), "g": np.repeat(np.arange(20), 10)})
    data["y"] = simulate_formula("~ x + (1 | g)", data, {"theta": [0.5], "beta": [1, 0.5]},
                                 family=sm.families.NegativeBinomial(alpha=0.5),
                                 seed=2)["sim_1"]
    return glmer_nb("y ~ x + (1 | g)", data)


@pytest.mark.parametrize("form", ["bernoulli", "proportion", "cbind", "poisson", "nb",
                                  "gamma", "tweedie"])
def test_refit_of_a_simulation_every_family(form, binary_fit, cbpp_fit, positive_fit, cbpp,
                                            count_data):
    if form == "bernoulli":
        res = binary_fit
    elif form == "proportion":
        res = glmer("prop ~ period + (1 | herd)", cbpp, weights="size")
    elif form == "cbind":
        res = cbpp_fit
    elif form == "poisson":
        res = glmer("y ~ x + (1 | g)", count_data, family=sm.families.Poisson())
    elif form == "nb":
        res = _nb_fit()
    elif form == "gamma":
        res = positive_fit
    else:
        res = _tweedie_fit()
    sims = res.simulate(1, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a singular refit
        forms = (sims, sims["sim_1"], sims["sim_1"].to_numpy()[:, None])
        for new_endog in forms[:1] if form == "tweedie" else forms:  # (a slow family)
            new = res.refit(new_endog)
            assert np.isfinite(new.llf)
            np.testing.assert_array_equal(new.model.response.y, sims["sim_1"])
    assert new.model.kernel.n_dispersion == res.model.kernel.n_dispersion
    assert new.fit_record.options.optimizer == res.fit_record.options.optimizer
    with pytest.raises(ValueError, match="new_endog has 2 columns \\(sim_1, sim_2"):
        res.refit(res.simulate(2, seed=1))


def test_refit_two_columns(cbpp_fit, cbpp, binary_fit):
    trials = cbpp["size"].to_numpy()
    props = cbpp_fit.simulate(1, seed=4)["sim_1"].to_numpy()
    successes = np.round(props * trials)
    counts = pd.DataFrame({"s": successes, "f": trials - successes})
    a = cbpp_fit.refit(counts)
    b = cbpp_fit.refit(props)
    assert a.llf == pytest.approx(b.llf, abs=1e-8)
    with pytest.raises(ValueError, match="two columns .* binomial family only"):
        glmer("c ~ x + (1 | g)", cbpp.assign(c=cbpp["incidence"], x=np.arange(56.0),
                                             g=cbpp["herd"]).iloc[:40],
              family=sm.families.Poisson()).refit(counts.iloc[:40])
    with pytest.raises(ValueError, match="shape \\(3,\\), the model has 300"):
        binary_fit.refit([0, 1, 0])


def test_refit_of_simulated_contraception_keeps_stats():
    """A quick end-to-end check of refit on a vector-valued term (used by bootstrap)."""
    data = load_data("poisson_offset")
    res = glmer("y ~ x + (x || g) + offset(log(t))", data, family=sm.families.Poisson())
    new = res.refit(res.simulate(1, seed=9))
    assert new.converged
    assert stats.chi2.sf(abs(new.neg2llf - res.neg2llf), 1) < 1  # a different response
