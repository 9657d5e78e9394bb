"""Issue 7: bad input gets specific errors; numerical trouble gets honest results;
invariances hold (property-based, hypothesis)."""

import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import numpy as np
import pandas as pd
from patsy import PatsyError
import pytest
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning, ValueWarning

from reference import load_data
from statsmodels_glmm import glmer

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture
def cbpp():
    return load_data("cbpp")


def poisson_data(seed=0, n_groups=12, per=10):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    y = rng.poisson(np.exp(0.5 + 0.4 * x + rng.normal(0, 0.5, n_groups)[g]))
    return pd.DataFrame({"y": y.astype(float), "x": x, "g": [f"g{v:02d}" for v in g]})


# -- bad input: one specific message each -------------------------------------------------
@pytest.mark.parametrize("formula, family, error, message", [
    ("incidence ~ period + (1 | herd)", sm.families.Binomial(), ValueError, r"\[0, 1\]"),
    ("cbind(incidence, incidence - size) ~ period + (1 | herd)", sm.families.Binomial(),
     ValueError, "non-negative"),
    ("I(-incidence) ~ period + (1 | herd)", sm.families.Poisson(), ValueError, "negative"),
    ("I(incidence - 1) ~ period + (1 | herd)", sm.families.Gamma(), ValueError, "positive"),
    ("incidence ~ nosuch + (1 | herd)", sm.families.Poisson(), PatsyError, "'nosuch'"),
    ("incidence ~ nosuchfun(period) + (1 | herd)", sm.families.Poisson(), PatsyError,
     "'nosuchfun'"),
    ("incidence ~ period", sm.families.Poisson(), PatsyError, "no random-effects term"),
    ("incidence ~ period + (1 | herd", sm.families.Poisson(), PatsyError, "unbalanced"),
    ("incidence ~ period + (1 | )", sm.families.Poisson(), PatsyError, "no grouping factor"),
    ("incidence ~ period + (1 ||| herd)", sm.families.Poisson(), PatsyError, "malformed"),
    ("I(0 * size + 3) ~ period + (1 | herd)", sm.families.Poisson(), ValueError, "constant"),
])
def test_bad_input_messages(cbpp, formula, family, error, message):
    with pytest.raises(error, match=message):
        glmer(formula, cbpp, family=family)


def test_weights_and_offset_errors(cbpp):
    with pytest.raises(ValueError, match="non-negative"):
        glmer("prop ~ period + (1 | herd)", cbpp, weights=-cbpp["size"].to_numpy())
    with pytest.raises(ValueError, match="length 3"):
        glmer("prop ~ period + (1 | herd)", cbpp, weights=np.ones(3))
    with pytest.raises(ValueError, match="offset has length"):
        glmer(CBPP, cbpp, offset=np.ones(5))
    with pytest.raises(ValueError, match="column 'nosuch'"):
        glmer(CBPP, cbpp, weights="nosuch")


def test_grouping_factor_errors(cbpp):
    cbpp = cbpp.assign(one="a", obs=[str(i) for i in range(len(cbpp))])
    with pytest.raises(ValueError, match="at least two"):
        glmer(CBPP.replace("herd", "one"), cbpp)
    toy = load_data("toy").assign(obs=[str(i) for i in range(15)])
    with pytest.raises(ValueError, match="not identifiable in a 0/1"):
        glmer("y ~ x1 + (1 | obs)", toy)
    # observation-level effects are fine with binomial trials (overdispersion)
    res = glmer(CBPP.replace("(1 | herd)", "(1 | herd) + (1 | obs)"), cbpp)
    assert res.converged


def test_nagq_errors(cbpp):
    with pytest.raises(ValueError, match="at most 100"):
        glmer(CBPP, cbpp, nAGQ=101)
    with pytest.raises(ValueError, match="non-negative integer"):
        glmer(CBPP, cbpp, nAGQ=1.5)
    contra = load_data("Contraception")
    with pytest.raises(ValueError, match="single random-effects term"):
        glmer("use ~ age + (1 | district) + (1 | urban)", contra, nAGQ=3)


def test_non_integer_counts_warn(cbpp):
    cbpp = cbpp.assign(half=cbpp["incidence"] + 0.5)
    with pytest.warns(ValueWarning, match="non-integer counts"):
        glmer("half ~ period + (1 | herd)", cbpp, family=sm.families.Poisson())
    with pytest.warns(ValueWarning, match="non-integer numbers of successes"):
        glmer("cbind(half, size - half) ~ period + (1 | herd)", cbpp)


def test_empty_after_missing(cbpp):
    cbpp = cbpp.assign(incidence=np.nan)
    with pytest.raises(ValueError, match="no observations"):
        glmer(CBPP, cbpp)


def test_missing_raise_names_problem(cbpp):
    cbpp = cbpp.copy()
    cbpp.loc[3, "size"] = np.nan
    with pytest.raises(ValueError, match="missing"):
        glmer(CBPP, cbpp, missing="raise")


# -- numerical trouble ---------------------------------------------------------------------
def test_rank_deficient_columns_dropped_as_nan(cbpp):
    cbpp = cbpp.assign(p2=(cbpp["period"] == "2").astype(float))
    with pytest.warns(ValueWarning, match="rank deficient so dropping 1 column"):
        res = glmer("cbind(incidence, size - incidence) ~ period + p2 + (1 | herd)", cbpp)
    ref = glmer(CBPP, cbpp)
    assert np.isnan(res.params["p2"]) and np.isnan(res.bse["p2"])
    np.testing.assert_allclose(res.params.drop("p2"), ref.params, atol=1e-6)
    assert res.llf == pytest.approx(ref.llf, abs=1e-8)
    assert "Dropped for collinearity" in str(res.summary())
    np.testing.assert_allclose(res.predict(cbpp), ref.predict(cbpp), rtol=1e-8)


def test_complete_separation_warns():
    rng = np.random.default_rng(4)
    n = 400
    data = pd.DataFrame({"g": rng.integers(0, 20, n).astype(str), "x": rng.normal(size=n),
                         "z": np.r_[np.ones(8), np.zeros(n - 8)]})
    data["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-0.3 * data["x"]))).astype(float)
    data.loc[data["z"] == 1, "y"] = 1.0  # z = 1 always succeeds
    with pytest.warns(PerfectSeparationWarning):
        res = glmer("y ~ x + z + (1 | g)", data)
    assert res.params["z"] > 5 and res.bse["z"] > res.params["z"] / 5


def test_huge_linear_predictor_does_not_overflow():
    data = poisson_data(1)
    data["x"] = data["x"] * 1e3
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = glmer("y ~ x + (1 | g)", data, family=sm.families.Poisson())
    assert np.isfinite(res.llf)


def test_zero_variance_component_reported_not_crashed():
    rng = np.random.default_rng(6)
    data = pd.DataFrame({"g": np.repeat(np.arange(10), 30).astype(str),
                         "x": rng.normal(size=300)})
    data["y"] = rng.poisson(np.exp(1 + 0.3 * data["x"])).astype(float)
    res = glmer("y ~ x + (1 | g)", data, family=sm.families.Poisson())
    assert res.theta.iloc[0] < 0.1
    glm = sm.GLM(data["y"], sm.add_constant(data["x"]), family=sm.families.Poisson()).fit()
    assert res.llf >= glm.llf - 1e-6


# -- invariances (property-based) ------------------------------------------------------------
SLOW = settings(max_examples=6, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def base_fit():
    data = poisson_data(0)
    return data, glmer("y ~ x + (1 | g)", data, family=sm.families.Poisson())


@SLOW
@given(st.permutations(range(120)))
def test_row_permutation_invariance(base_fit, order):
    data, ref = base_fit
    res = glmer("y ~ x + (1 | g)", data.iloc[list(order)], family=sm.families.Poisson())
    assert res.llf == pytest.approx(ref.llf, abs=1e-6)
    np.testing.assert_allclose(res.params, ref.params, atol=1e-5)


@SLOW
@given(st.permutations(range(12)), st.sampled_from(["lab", "zz", "A"]))
def test_level_relabeling_invariance(base_fit, perm, prefix):
    data, ref = base_fit
    mapping = {f"g{i:02d}": f"{prefix}{perm[i]}" for i in range(12)}
    res = glmer("y ~ x + (1 | g)", data.assign(g=data["g"].map(mapping)),
                family=sm.families.Poisson())
    assert res.llf == pytest.approx(ref.llf, abs=1e-6)
    relabeled = ref.ranef()["g"].rename(index=mapping).sort_index()
    np.testing.assert_allclose(res.ranef()["g"].sort_index(), relabeled, atol=1e-4)


@SLOW
@given(st.floats(0.01, 100))
def test_covariate_scaling(base_fit, scale):
    data, ref = base_fit
    res = glmer("y ~ x + (1 | g)", data.assign(x=data["x"] * scale),
                family=sm.families.Poisson())
    assert res.llf == pytest.approx(ref.llf, abs=1e-5)
    assert res.params["x"] * scale == pytest.approx(ref.params["x"], rel=1e-4, abs=1e-6)


def test_term_order_invariance():
    data = load_data("grouseticks")
    a = glmer("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", data, family=sm.families.Poisson())
    b = glmer("TICKS ~ YEAR + (1 | LOCATION) + (1 | BROOD)", data, family=sm.families.Poisson())
    assert a.llf == pytest.approx(b.llf, abs=1e-8)
    np.testing.assert_allclose(a.theta, b.theta, atol=1e-6)


def test_zero_variance_matches_glm(cbpp):
    """θ = 0: the GLMM deviance is the GLM's −2 log-likelihood, β the GLM's."""
    res = glmer(CBPP, cbpp)
    glm = sm.GLM(np.column_stack([cbpp["incidence"], cbpp["size"] - cbpp["incidence"]]),
                 res.model.exog, family=sm.families.Binomial()).fit()
    model = res.model
    joint = model.pirls(np.array([0.0]))
    np.testing.assert_allclose(joint.beta, glm.params, atol=1e-6)
    assert model.deviance(np.array([0.0]), glm.params) == pytest.approx(-2 * glm.llf,
                                                                       abs=1e-8)


def test_laplace_equals_agq_for_gaussian_like_integrands():
    """Large Poisson counts: the integrands are nearly Gaussian, nAGQ=1 ≈ nAGQ=25."""
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(15), 20)
    y = rng.poisson(np.exp(8 + rng.normal(0, 0.3, 15)[g])).astype(float)
    data = pd.DataFrame({"y": y, "g": g.astype(str)})
    res = glmer("y ~ 1 + (1 | g)", data, family=sm.families.Poisson())
    theta, beta = res.theta.to_numpy(), np.asarray(res.params)
    lap = res.model.deviance(theta, beta, nAGQ=1)
    agq = res.model.deviance(theta, beta, nAGQ=25)
    assert abs(lap - agq) < 1e-3
