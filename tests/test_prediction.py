"""Issue 4: ranef/condVar, coef, predict, simulate, residuals, refit, pickling, getME.

Reference values come from lme4 1.1-31 (tests/results/make_reference.R). lme4's
default optimizer stops ~5e-4 short of the optimum, so quantities that depend on
the estimates are compared with tolerances of that order.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats
import statsmodels.api as sm

from reference import CASES, load_data
from statsmodels_glmm import datasets, glmer

EXTRAS = CASES["extras"]
CBPP_FORMULA = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp():
    return load_data("cbpp")


@pytest.fixture(scope="module")
def gm1(cbpp):
    return glmer(CBPP_FORMULA, cbpp)


@pytest.fixture(scope="module")
def gm1p(cbpp):
    return glmer("prop ~ period + (1 | herd)", cbpp, weights="size")


@pytest.fixture(scope="module")
def contraception():
    data = load_data("Contraception")
    return glmer("use ~ age * ch + I(age**2) + urban + (urban | district)", data)


def test_ranef_condvar_scalar(gm1):
    ref = EXTRAS["cbpp"]
    frame = gm1.ranef(condVar=True)["herd"]
    np.testing.assert_allclose(frame["(Intercept)"], ref["ranef"], atol=3e-3)
    np.testing.assert_allclose(frame.attrs["condVar"][:, 0, 0], ref["postvar"], rtol=5e-3)
    np.testing.assert_allclose(frame["condsd((Intercept))"], np.sqrt(ref["postvar"]),
                               rtol=5e-3)


def test_ranef_condvar_vector(contraception):
    ref = EXTRAS["contraception"]
    frame = contraception.ranef(condVar=True)["district"]
    np.testing.assert_allclose(frame.iloc[0, :2], ref["ranef_first"], atol=2e-3)
    np.testing.assert_allclose(frame.attrs["condVar"][0].ravel(), ref["postvar_first"],
                               rtol=1e-2, atol=1e-4)
    sds = np.concatenate([frame["condsd((Intercept))"], frame["condsd(urban[T.Y])"]])
    np.testing.assert_allclose(sds, ref["postvar_sd"], rtol=1e-2)


def test_condvar_matches_dense_inverse(cbpp):
    """Blocked computation = Λ (L L')⁻¹ Λ' from the dense factor, crossed model."""
    data = datasets.load_grouseticks()
    res = glmer("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", data,
                family=sm.families.Poisson())
    L = res.get_me("L")
    Lam = res.get_me("Lambda").toarray()
    full = Lam @ np.linalg.inv(L @ L.T) @ Lam.T
    cond = np.concatenate([v[:, 0, 0] for v in res.conditional_variances()])
    np.testing.assert_allclose(cond, np.diag(full), rtol=1e-10)


def test_coef(gm1):
    table = gm1.coef()["herd"]
    np.testing.assert_allclose(table["Intercept"], EXTRAS["cbpp"]["coef_intercept"], atol=3e-3)
    np.testing.assert_allclose(table["period[T.2]"], gm1.params["period[T.2]"])


def test_residual_ranges_match_lme4(gm1p):
    ref = EXTRAS["cbpp"]["resid_range"]
    for kind in ("deviance", "pearson", "working", "response"):
        values = gm1p.resid(kind)
        np.testing.assert_allclose([values.min(), values.max()], ref[kind], atol=3e-3)
    np.testing.assert_allclose(gm1p.resid("pearson", scaled=True), gm1p.resid("pearson"))


def test_hat_values_are_leverages(gm1p):
    """Diagonal of the PWLS projection: in [0, 1], summing to its trace.

    (lme4's hatvalues() for GLMMs uses the prior weights instead of the working
    weights, giving values above 1; we do not copy that.)
    """
    h = gm1p.hat_matrix_diag()
    assert np.all(h >= 0) and np.all(h <= 1)
    model = gm1p.model
    theta = gm1p.theta.to_numpy()
    re = model.random_effects
    modes = gm1p.modes
    w = model.response.working_weights(modes.eta, modes.mu)
    A = np.column_stack([re.sparse_z().toarray() @ re.relative_factor(theta).toarray(),
                         model.exog]) * np.sqrt(w)[:, None]
    P = np.diag(np.r_[np.ones(re.n_re), np.zeros(model.k_fe)])
    H = A @ np.linalg.solve(A.T @ A + P, A.T)
    np.testing.assert_allclose(h, np.diag(H), atol=1e-10)


def test_fitted_and_predict_identities(gm1):
    np.testing.assert_allclose(gm1.fittedvalues, EXTRAS["cbpp"]["fitted"], atol=2e-3)
    np.testing.assert_allclose(gm1.predict(), gm1.fittedvalues)
    eta = gm1.predict(which="linear")
    np.testing.assert_allclose(gm1.model.response.mu(np.asarray(eta)), gm1.fittedvalues)
    pop = gm1.predict(re_form="~0", which="linear")
    np.testing.assert_allclose(pop, gm1.model.exog @ gm1.params.to_numpy())
    np.testing.assert_allclose(gm1.predict(re_form="~(1 | herd)"), gm1.fittedvalues)


def test_predict_newdata_and_new_levels(gm1, cbpp):
    newd = pd.DataFrame({"period": pd.Categorical(["1", "2", "4", "3"],
                                                  categories=["1", "2", "3", "4"]),
                         "herd": ["1", "7", "99", "3"], "size": [10, 20, 5, 8],
                         "incidence": [0, 0, 0, 0]})
    with pytest.raises(ValueError, match="'99'"):
        gm1.predict(newd)
    link = gm1.predict(newd, allow_new_levels=True, which="linear")
    np.testing.assert_allclose(link, EXTRAS["cbpp"]["predict_new_link"], atol=3e-3)
    pop = gm1.predict(newd, re_form="NA")
    np.testing.assert_allclose(pop, EXTRAS["cbpp"]["predict_new_pop"], atol=1e-3)
    assert list(link.index) == list(newd.index)
    # the same rows as in the fit reproduce the fitted values
    again = gm1.predict(cbpp)
    np.testing.assert_allclose(again, gm1.fittedvalues, rtol=1e-12)


def test_predict_missing_values_give_nan(gm1):
    newd = pd.DataFrame({"period": pd.Categorical(["1", None, "2"],
                                                  categories=["1", "2", "3", "4"]),
                         "herd": ["1", "2", None]})
    pred = gm1.predict(newd, allow_new_levels=True)
    assert np.isnan(pred.iloc[1])  # missing covariate
    assert np.isfinite(pred.iloc[0]) and np.isfinite(pred.iloc[2])  # missing herd: population
    assert pred.iloc[2] == pytest.approx(gm1.predict(newd.iloc[[2]], re_form="~0").iloc[0])
    strict = gm1.predict(newd.iloc[[0, 2]])
    assert np.isnan(strict.iloc[1])


def test_predict_vector_random_effects_and_offsets():
    data = load_data("poisson_offset")
    res = glmer("y ~ x + (x || g) + offset(log(t))", data, family=sm.families.Poisson())
    np.testing.assert_allclose(res.predict(data), res.fittedvalues, rtol=1e-10)
    doubled = data.assign(t=2 * data["t"])
    np.testing.assert_allclose(res.predict(doubled), 2 * res.fittedvalues, rtol=1e-10)


def test_get_prediction_delta_method(gm1, cbpp):
    # population level (the default is conditional on the random effects, as predict)
    pred = gm1.get_prediction(cbpp.iloc[:4], re_form="~0")
    X = gm1.model.exog[:4]
    se = np.sqrt(np.diag(X @ np.asarray(gm1.cov_params()) @ X.T))
    np.testing.assert_allclose(pred.se_linpred, se)
    mu = pred.mean
    np.testing.assert_allclose(pred.se_mean, mu * (1 - mu) * se)
    frame = pred.summary_frame()
    assert (frame["mean_ci_lower"] < frame["mean"]).all()
    assert (frame["mean"] < frame["mean_ci_upper"]).all()


@pytest.mark.parametrize("family, formula, data_name", [
    (sm.families.Binomial(), CBPP_FORMULA, "cbpp"),
    (sm.families.Poisson(), "y ~ x + (x || g) + offset(log(t))", "poisson_offset"),
    (sm.families.Gamma(sm.families.links.Log()), "y ~ x + (1 | block)", "gamma_log"),
])
def test_simulate_moments(family, formula, data_name):
    """Means of many simulated responses match the marginal means (u drawn anew)."""
    data = load_data(data_name)
    res = glmer(formula, data, family=family)
    sims = res.simulate(nsim=400, seed=1)
    assert sims.shape == (len(data), 400)
    cond = res.simulate(nsim=400, seed=2, use_u=True)
    resp = res.model.response
    # with use_u the mean is the conditional mean μ(û): test each row's z-score
    mu = res.fittedvalues_array
    if resp.name == "binomial":
        var = mu * (1 - mu) / resp.trials
    elif resp.name == "poisson":
        var = mu
    else:
        var = res.dispersion * mu ** 2
    z = (cond.mean(axis=1) - mu) / np.sqrt(var / 400)
    assert abs(z.mean()) < 0.3 and 0.7 < z.std() < 1.3
    # drawing u anew spreads the responses more than conditioning on û
    assert (sims.var(axis=1).mean()) > cond.var(axis=1).mean()
    if resp.name == "binomial":
        counts = sims.to_numpy() * resp.trials[:, None]
        np.testing.assert_allclose(counts, np.round(counts))


def test_simulate_is_reproducible(gm1):
    a = gm1.simulate(3, seed=42)
    b = gm1.simulate(3, seed=42)
    pd.testing.assert_frame_equal(a, b)


def test_refit_recovers_fit_and_refits_simulations(gm1):
    same = gm1.refit(gm1.model.response.y)
    assert same.llf == pytest.approx(gm1.llf, abs=1e-6)
    sim = gm1.simulate(1, seed=3)["sim_1"].to_numpy()
    new = gm1.refit(sim)
    assert new.converged and new.llf != gm1.llf
    assert new.model.random_effects is gm1.model.random_effects


def test_update_formula(gm1):
    smaller = gm1.update("cbind(incidence, size - incidence) ~ 1 + (1 | herd)")
    assert len(smaller.params) == 1
    assert smaller.llf < gm1.llf


def test_pickle_and_remove_data_keep_predict(gm1, cbpp, tmp_path):
    path = tmp_path / "fit.pickle"
    gm1.save(path)
    loaded = type(gm1).load(path)
    np.testing.assert_allclose(loaded.predict(cbpp.iloc[:5]), gm1.predict(cbpp.iloc[:5]))
    clone = pickle.loads(pickle.dumps(gm1))
    clone.remove_data()
    np.testing.assert_allclose(clone.predict(cbpp.iloc[:5]), gm1.predict(cbpp.iloc[:5]))
    assert "Random effects" in str(clone.summary())


def test_get_me(gm1):
    Z = gm1.get_me("Z")
    assert Z.shape == (56, 15) and Z.nnz == 56
    Lam = gm1.get_me("Lambda").toarray()
    np.testing.assert_allclose(Lam, gm1.theta.iloc[0] * np.eye(15))
    b = gm1.get_me("b")
    np.testing.assert_allclose(b, gm1.ranef()["herd"]["(Intercept)"])
    L = gm1.get_me("L")
    ZL = Z.toarray() @ Lam
    W = gm1.model.response.working_weights(gm1.get_me("eta"), gm1.get_me("mu"))
    np.testing.assert_allclose(L @ L.T, ZL.T @ (W[:, None] * ZL) + np.eye(15), atol=1e-6)
    assert gm1.get_me("q") == 15
    with pytest.raises(ValueError, match="unknown component"):
        gm1.get_me("nope")


def test_step_by_step_api(gm1):
    """The transparent API: PIRLS modes and the deviance at given parameters."""
    model = gm1.model
    theta, beta = gm1.theta.to_numpy(), gm1.params.to_numpy()
    modes = model.pirls(theta, beta)
    np.testing.assert_allclose(modes.u, gm1.u, atol=1e-8)
    assert modes.laplace() == pytest.approx(gm1.neg2llf, abs=1e-8)
    assert model.deviance(theta, beta, nAGQ=1) == pytest.approx(gm1.neg2llf, abs=1e-8)
    joint = model.pirls(theta)  # β jointly (nAGQ=0 iteration)
    assert joint.beta.shape == beta.shape
    assert stats.chi2.sf(max(model.deviance(theta, beta) - gm1.neg2llf, 0), 1) > 0.999


def test_newdata_errors_name_what_is_missing():
    import sys

    sys.path.insert(0, "tests")
    from conftest import simulate_binary

    data = simulate_binary().assign(f=np.tile(["a", "b", "c"], 100))
    data["z"] = data["x"] ** 2
    res = glmer("y ~ x + f + (1 + z | g)", data)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['z'\] of the random"):
        res.predict(data.drop(columns="z").head(), re_form=None)
    with_offset = glmer("y ~ x + (1 | g) + offset(log1p(z))", data)
    with pytest.raises(ValueError, match="offset 'log1p\\(z\\)' on newdata.*'z'"):
        with_offset.predict(data.drop(columns="z").head())
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['x'\] of the fixed"):
        res.predict(data.drop(columns="x").head())
    with pytest.raises(ValueError, match="'zz' does not match any of the expected levels"):
        res.predict(data.assign(f="zz").head())
