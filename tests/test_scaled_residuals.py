"""Issue 16: DHARMa-style simulation-based scaled residuals and their tests.

DHARMa (0.5.0) is not packaged for Debian; tests/results/make_reference.R runs its
own code (sourced) on lme4 fits and stores the simulations, the residuals and the
test results, which are replayed here on the same simulations.
"""

import warnings

from conftest import simulate_counts
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from reference import CASES, load_data
from statsmodels_glmm import glmer, glmer_nb
from statsmodels_glmm.scaled_residuals import (
    ResidualTestResult,
    ScaledResiduals,
    pit_residuals,
    simulation_pvalue,
    traditional_residuals,
)

DHARMA = CASES["dharma"]
FAMILIES = {"binomial": sm.families.Binomial(), "poisson": sm.families.Poisson()}


@pytest.fixture(scope="module")
def poisson_fit():
    return glmer("y ~ x + (1 | g)", simulate_counts(seed=2), family=sm.families.Poisson())


@pytest.mark.parametrize("name", ["cbpp", "poisson"])
def test_replays_dharma_on_its_simulations(name):
    case = DHARMA[name]
    assert case["simulate_res"] == "conditional" and case["integer_response"]
    res = glmer(case["formula"], load_data(case["data"]), family=FAMILIES[case["family"]])
    observed, simulated = np.array(case["observed"]), np.array(case["simulated"], dtype=float)
    # what DHARMa compares: successes for the binomial, population-level means
    np.testing.assert_array_equal(res.model.kernel.count_scale(res.model.response.y), observed)
    fitted = res.model.response.mu(res.model.exog @ res.fe_params + res.model.offset)
    np.testing.assert_allclose(fitted, case["fitted"], atol=2e-3)
    # DHARMa's randomized residuals follow the PIT rule
    r = np.asarray(case["scaled_residuals"])
    lower = np.mean(simulated < observed[:, None], axis=1)
    upper = np.mean(simulated <= observed[:, None], axis=1)
    tied = lower != upper
    np.testing.assert_array_equal(r[~tied], lower[~tied])
    assert np.all((r[tied] >= lower[tied]) & (r[tied] <= upper[tied]))
    # its tests, on its residuals and simulations, to rounding
    sr = ScaledResiduals(res, observed, simulated, np.asarray(case["fitted"]), r, True, True,
                         "PIT")
    for key, test in [("uniformity", sr.test_uniformity()),
                      ("uniformity_less", sr.test_uniformity("less")),
                      ("dispersion", sr.test_dispersion()),
                      ("dispersion_greater", sr.test_dispersion("greater")),
                      ("zero_inflation", sr.test_zero_inflation())]:
        np.testing.assert_allclose([test.statistic, test.pvalue],
                                   [case[key]["statistic"], case[key]["p_value"]], rtol=1e-10)
    # the Pearson chi-square test differs by the fits (lme4 stops short of the optimum)
    pearson = sr.test_dispersion("greater", type="PearsonChisq")
    assert pearson.df == case["df_resid"]
    np.testing.assert_allclose([pearson.statistic, pearson.pvalue],
                               [case["pearson_chisq"]["statistic"],
                                case["pearson_chisq"]["p_value"]], rtol=2e-3)


def test_pit_rule_by_hand():
    observed = np.array([2.0, 0.0, 5.0, 1.5])
    simulated = np.array([[0, 1, 2, 2, 3], [0, 0, 1, 2, 3], [1, 1, 1, 1, 1],
                          [1, 2, 1, 2, 3]], dtype=float)
    out = pit_residuals(observed, simulated, np.random.default_rng(0))
    # ties: uniform on (#below/n, #below-or-equal/n), drawn in row order
    ties = np.random.default_rng(0).uniform([0.4, 0.0], [0.8, 0.4])
    np.testing.assert_array_equal(out, [ties[0], ties[1], 1.0, 0.4])


def test_traditional_rule_by_hand():
    # DHARMa.ecdf: counts <= each distinct value over n + 1, linear in between
    # (a repeated non-integer value keeps the response continuous)
    out = traditional_residuals(np.array([3.5, 1.0, 5.0, 2.5]),
                                np.array([[1.5, 2.5, 2.5, 4.5]] * 4),
                                np.random.default_rng(0), integer_response=False)
    np.testing.assert_allclose(out, [0.7, 0.0, 1.0, 0.6])
    sims = np.array([[1.0, 2.0, 2.0, 4.0]])
    # integer responses: ±0.5 noise on the observation and on each simulation
    rng = np.random.default_rng(1)
    expect_sims = sims[0] + rng.uniform(-0.5, 0.5, 4)
    x = 3.0 + rng.uniform(-0.5, 0.5)
    values, counts = np.unique(expect_sims, return_counts=True)
    expected = np.interp(x, values, np.cumsum(counts) / 5.0, left=0.0, right=1.0)
    got = traditional_residuals(np.array([3.0]), sims, np.random.default_rng(1), True)
    np.testing.assert_allclose(got, [expected])
    # declared continuous, but repeated integers in the simulations: as DHARMa, integer
    with pytest.warns(UserWarning, match="repeat integer values"):
        again = traditional_residuals(np.array([3.0]), sims, np.random.default_rng(1), False)
    np.testing.assert_allclose(again, [expected])


def test_simulation_pvalue_as_dharma():
    sims = np.arange(10.0)
    assert simulation_pvalue(sims, 7.5, "greater") == 0.2
    assert simulation_pvalue(sims, 7.5, "less") == 0.8
    assert simulation_pvalue(sims, 7.5) == 0.4
    assert simulation_pvalue(sims, 4.5, "two.sided") == 1.0


@pytest.mark.parametrize("use_u", [True, False])
def test_uniform_for_data_simulated_from_the_model(poisson_fit, use_u):
    y = poisson_fit.simulate(1, seed=11)["sim_1"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = poisson_fit.refit(y)
    sr = refit.simulate_residuals(n=200, seed=12, use_u=use_u)
    assert sr.residuals.shape == (200,) and sr.use_u is use_u
    assert np.all((sr.residuals >= 0) & (sr.residuals <= 1))
    assert sr.test_uniformity().pvalue > 0.05
    share = np.histogram(sr.residuals, bins=5, range=(0, 1))[0] / 200
    assert np.all(np.abs(share - 0.2) < 0.08)
    assert sr.test_dispersion().pvalue > 0.05
    assert sr.test_zero_inflation().pvalue > 0.05


def test_uniform_for_binomial_proportions_and_cbind(cbpp):
    """Every binomial form compares successes: same observations, same draws."""
    a = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    b = glmer("prop ~ period + (1 | herd)", cbpp, weights="size")
    ra, rb = a.simulate_residuals(n=100, seed=3), b.simulate_residuals(n=100, seed=3)
    np.testing.assert_array_equal(ra.observed, cbpp["incidence"])
    np.testing.assert_array_equal(ra.observed, rb.observed)
    assert np.mean(ra.simulated == rb.simulated) > 0.99
    assert ra.test_uniformity().pvalue > 0.05


def test_dispersion_test_detects_negative_binomial_data():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(30), 10)
    x = rng.normal(size=g.size)
    mu = np.exp(1 + 0.3 * x + rng.normal(0, 0.4, 30)[g])
    data = pd.DataFrame({"y": rng.negative_binomial(2, 2 / (2 + mu)), "x": x, "g": g})
    poisson = glmer("y ~ x + (1 | g)", data, family=sm.families.Poisson())
    test = poisson.simulate_residuals(n=100, seed=4).test_dispersion()
    assert test.statistic > 1.5 and test.pvalue < 0.02
    assert poisson.simulate_residuals(n=100, seed=4).test_uniformity().pvalue < 0.01
    nb = glmer_nb("y ~ x + (1 | g)", data)
    assert nb.simulate_residuals(n=100, seed=4).test_dispersion().pvalue > 0.1


def test_zero_inflation_detected(poisson_fit):
    rng = np.random.default_rng(6)
    data = simulate_counts(seed=6, intercept=1.0)
    data.loc[rng.uniform(size=len(data)) < 0.25, "y"] = 0
    fit = glmer("y ~ x + (1 | g)", data, family=sm.families.Poisson())
    test = fit.simulate_residuals(n=100, seed=7).test_zero_inflation()
    assert isinstance(test, ResidualTestResult) and test.simulated.shape == (100,)
    assert test.statistic > 1.5 and test.pvalue < 0.02
    assert test.observed == np.sum(data["y"] == 0)


def test_linear_mixed_model_unconditional_simulations():
    """New random effects of the LMM have variance σ² ΛΛ' (Λ is relative to σ)."""
    res = glmer("Reaction ~ Days + (Days | Subject)", load_data("sleepstudy"),
                family=sm.families.Gaussian(), reml=False)
    sims = res.simulate(400, seed=1).to_numpy()
    cov = res.cov_re["Subject"].to_numpy()
    days = load_data("sleepstudy")["Days"].to_numpy()
    z = np.column_stack([np.ones_like(days), days])
    marginal = res.sigma ** 2 + np.einsum("ij,jk,ik->i", z, cov, z)
    np.testing.assert_allclose(sims.var(axis=1).mean(), marginal.mean(), rtol=0.1)
    sr = res.simulate_residuals(n=100, seed=2, use_u=False)
    assert not sr.integer_response and sr.test_uniformity().pvalue > 0.05


def test_arguments_are_checked(poisson_fit):
    with pytest.raises(ValueError, match="n must be"):
        poisson_fit.simulate_residuals(n=1)
    with pytest.raises(ValueError, match="method"):
        poisson_fit.simulate_residuals(n=10, method="exact")
    with pytest.raises(ValueError, match="integer_response"):
        poisson_fit.simulate_residuals(n=10, integer_response="yes")
    with pytest.raises(ValueError, match="use_u"):
        poisson_fit.simulate_residuals(n=10, use_u=None)
    sr = poisson_fit.simulate_residuals(n=10, seed=1)
    with pytest.raises(ValueError, match="alternative"):
        sr.test_uniformity("both")
    with pytest.raises(ValueError, match="type"):
        sr.test_dispersion(type="Pearson")


def test_reproducible_and_traditional(poisson_fit):
    a = poisson_fit.simulate_residuals(n=50, seed=5)
    b = poisson_fit.simulate_residuals(n=50, seed=5)
    np.testing.assert_array_equal(a.residuals, b.residuals)
    t = poisson_fit.simulate_residuals(n=50, seed=5, method="traditional")
    assert t.integer_response and t.method == "traditional"
    assert np.all((t.residuals >= 0) & (t.residuals <= 1))
    assert "ScaledResiduals" in repr(t)


def test_plot(poisson_fit):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    sr = poisson_fit.simulate_residuals(n=50, seed=5)
    fig = sr.plot()
    qq, resid = fig.axes
    np.testing.assert_allclose(qq.lines[0].get_ydata(), np.sort(sr.residuals))
    assert len(resid.lines) >= 3 + 3  # the data, three reference lines, three curves
