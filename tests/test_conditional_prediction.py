"""Issue 16: predictions conditional on the random effects with lme4's se.fit,
random_only, and R's na.exclude padding of fitted values, residuals and predict().

lme4 1.1-31 (the reference installation) predates ``predict(se.fit = TRUE)``
(lme4 ≥ 1.1-35): tests/results/make_reference.R evaluates lme4's own vcov_full()
code on its fits; here the same quantity is computed at lme4's θ and β, and
against a dense brute-force inverse at our optimum.
"""

import dataclasses

from conftest import CBPP_FORMULA, simulate_binary
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from reference import CASES, RESULTS, load_data
from statsmodels_glmm import GLMM, GLMMResults, glmer

TOOLBOX = CASES["toolbox"]
# lme4's names of the fixed effects → ours
R_NAMES = {"(Intercept)": "Intercept", "chY": "ch[T.Y]", "urbanY": "urban[T.Y]",
           "I(age^2)": "I(age ** 2)", "age:chY": "age:ch[T.Y]", "period2": "period[T.2]",
           "period3": "period[T.3]", "period4": "period[T.4]"}


def brute_force_se(res, random_only=False):
    """sqrt(diag(B C B')) with C = diag(Λ, I) (A'WA + diag(I, 0))⁻¹ diag(Λ', I)
    (times σ² for the LMM), from dense matrices."""
    model = res.model
    re = model.random_effects
    Z = re.sparse_z().toarray()
    Lam = re.relative_factor(res.theta.to_numpy()).toarray()
    X = model.exog
    modes = res.modes
    if model.is_lmm:
        w, scale = model.response.weights, res.dispersion
    else:
        w = model.kernel.working_weights(modes.eta, modes.mu, res.fit_record.dispersion)
        scale = 1.0
    A = np.column_stack([Z @ Lam, X])
    P = np.diag(np.r_[np.ones(Z.shape[1]), np.zeros(X.shape[1])])
    D = np.block([[Lam, np.zeros((Lam.shape[0], X.shape[1]))],
                  [np.zeros((X.shape[1], Lam.shape[1])), np.eye(X.shape[1])]])
    C = scale * D @ np.linalg.inv(A.T @ (w[:, None] * A) + P) @ D.T
    B = np.column_stack([Z, 0 * X if random_only else X])
    return np.sqrt(np.einsum("ij,jk,ik->i", B, C, B))


def results_at(model, theta, beta):
    """Results of ``model`` at given θ and β (the modes by PIRLS there)."""
    theta, beta = np.asarray(theta, float), np.asarray(beta, float)
    modes = model.pirls(theta, beta)
    k = len(beta)
    fit = dataclasses.make_dataclass("Opt", ["converged", "nfev", "message"])(True, 0, "")
    from statsmodels_glmm.results import GLMMFit

    record = GLMMFit(theta=theta, beta=beta, dispersion=1.0, modes=modes,
                     neg2ll=modes.laplace(), nAGQ=1, optimizer=fit, nfev={},
                     vcov=np.eye(k), vcov_conditional=np.eye(k), cov_type="conditional")
    return GLMMResults(model, record)


@pytest.fixture(scope="module")
def crossed_fit():
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 12, 240), rng.integers(0, 5, 240)
    x = rng.normal(size=240)
    y = rng.poisson(np.exp(0.3 + 0.4 * x + rng.normal(0, 0.5, 12)[a] + rng.normal(0, 0.3, 5)[b]))
    data = pd.DataFrame({"y": y, "x": x, "a": a, "b": b})
    return glmer("y ~ x + (1 | a) + (1 | b)", data, family=sm.families.Poisson())


@pytest.fixture(scope="module")
def slope_fit():
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(25), 12)
    x = rng.normal(size=g.size)
    b = rng.multivariate_normal([0, 0], [[0.3, 0.1], [0.1, 0.2]], 25)
    y = rng.poisson(np.exp(0.5 + 0.3 * x + b[g, 0] + b[g, 1] * x))
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    return glmer("y ~ x + (x | g)", data, family=sm.families.Poisson())


@pytest.fixture(scope="module")
def lmm_fit():
    data = pd.read_csv(RESULTS / "data" / "sleepstudy.csv")
    return glmer("Reaction ~ Days + (Days | Subject)", data, family=sm.families.Gaussian(),
                 reml=True)


@pytest.mark.parametrize("name", ["cbpp", "crossed", "slope", "lmm", "probit"])
def test_conditional_se_is_the_joint_covariance(name, cbpp_fit, crossed_fit, slope_fit,
                                                lmm_fit, cbpp):
    if name == "probit":  # non-canonical: fitted with lme4's expected information
        res = glmer(CBPP_FORMULA, cbpp, family=sm.families.Binomial(sm.families.links.Probit()),
                    information="expected")
    else:
        res = {"cbpp": cbpp_fit, "crossed": crossed_fit, "slope": slope_fit,
               "lmm": lmm_fit}[name]
    pred = res.get_prediction(which="linear")
    np.testing.assert_allclose(pred.se_linpred, brute_force_se(res), rtol=1e-10)
    random = res.get_prediction(which="linear", random_only=True)
    np.testing.assert_allclose(random.se_linpred, brute_force_se(res, True), rtol=1e-10)


@pytest.mark.parametrize("case, formula, data_name", [
    ("cbpp", CBPP_FORMULA, "cbpp"),
    ("contraception", "use ~ age * ch + I(age**2) + urban + (urban | district)",
     "Contraception"),
])
def test_se_fit_matches_lme4_vcov_full(case, formula, data_name):
    """At lme4's θ and β, lme4's se.fit (conditional, population level through
    the joint covariance, random part only) for the reference rows.

    lme4's factor L comes from its last PIRLS iteration, with the weights of the
    iterate before its converged modes, hence the agreement to ~3e-5 relative
    (against the dense brute force above, 1e-10)."""
    ref = TOOLBOX[case]
    model = GLMM.from_formula(formula, load_data(data_name))
    beta = dict(zip([R_NAMES.get(n, n) for n in ref["beta_names"]], ref["beta"]))
    res = results_at(model, ref["theta"], [beta[n] for n in model.fe_names])
    rows = np.asarray(ref["rows"]) - 1
    pred = res.get_prediction(which="linear")
    np.testing.assert_allclose(pred.linpred[rows], ref["fit_link"], rtol=1e-6)
    np.testing.assert_allclose(pred.se_linpred[rows], ref["se_conditional"], rtol=1e-4)
    random = res.get_prediction(which="linear", random_only=True)
    np.testing.assert_allclose(random.se_linpred[rows], ref["se_random_only"], rtol=1e-4)
    if case == "cbpp":
        newdata = pd.DataFrame({"period": ref["newdata_period"], "herd": ref["newdata_herd"]})
        new = res.get_prediction(newdata, which="linear", allow_new_levels=True)
        np.testing.assert_allclose(new.se_linpred, ref["se_newdata"], rtol=1e-4)
        # the new herd "99": the fixed-effects part of the joint covariance (lme4's RX)
        np.testing.assert_allclose(new.se_linpred[2], ref["se_population"][3], rtol=1e-4)


def test_get_prediction_defaults_agree_with_predict(cbpp_fit, cbpp):
    for kwargs in ({}, {"re_form": "~0"}, {"re_form": "~(1 | herd)"}, {"random_only": True}):
        pred = cbpp_fit.get_prediction(**kwargs)
        np.testing.assert_allclose(pred.predicted, cbpp_fit.predict(**kwargs), rtol=1e-14)
        rows = cbpp_fit.get_prediction(cbpp.iloc[:7], which="linear", **kwargs)
        np.testing.assert_allclose(rows.predicted, cbpp_fit.predict(
            cbpp.iloc[:7], which="linear", **kwargs), rtol=1e-14)
        assert list(rows.summary_frame().index) == list(cbpp.index[:7])
    np.testing.assert_allclose(cbpp_fit.get_prediction().predicted, cbpp_fit.fittedvalues)
    cond = cbpp_fit.get_prediction(which="linear").se_linpred
    pop = cbpp_fit.get_prediction(which="linear", re_form="~0").se_linpred
    assert np.all(cond > pop)  # the uncertainty of the modes adds to that of β


def test_random_only_is_z_b(cbpp_fit):
    eta = cbpp_fit.predict(random_only=True, which="linear")
    b = cbpp_fit.get_me("b")
    np.testing.assert_allclose(eta, cbpp_fit.get_me("Z") @ b, rtol=1e-14)
    np.testing.assert_allclose(
        cbpp_fit.predict(which="linear") - cbpp_fit.predict(re_form="~0", which="linear"),
        eta, atol=1e-14)
    # as lme4, which="mean" maps the random part through the inverse link
    np.testing.assert_allclose(cbpp_fit.predict(random_only=True),
                               1 / (1 + np.exp(-np.asarray(eta))))


def test_conditional_se_for_new_levels_and_missing_groups(cbpp_fit):
    newd = pd.DataFrame({"period": ["1", "1", "2"], "herd": ["1", "new", None]})
    with pytest.raises(ValueError, match="'new'"):
        cbpp_fit.get_prediction(newd)
    pred = cbpp_fit.get_prediction(newd, allow_new_levels=True, which="linear")
    x = cbpp_fit.model.exog[0]
    se_fixed = np.sqrt(x @ cbpp_fit.fit_record.vcov_conditional @ x)
    assert pred.se_linpred[1] == pytest.approx(se_fixed, rel=1e-10)
    assert pred.se_linpred[0] > pred.se_linpred[1]
    assert np.isfinite(pred.se_linpred[2])
    strict = cbpp_fit.get_prediction(newd.iloc[[0, 2]], which="linear")
    assert np.isnan(strict.linpred[1]) and np.isnan(strict.se_linpred[1])


@pytest.fixture(scope="module")
def incomplete():
    data = simulate_binary()
    data.index = [f"r{i}" for i in range(len(data))]
    data.loc[["r3", "r10"], "x"] = np.nan
    data["g"] = data["g"].astype(object)
    data.loc["r20", "g"] = None
    return data


def test_na_exclude_pads_fitted_resid_predict(incomplete):
    res = glmer("y ~ x + (1 | g)", incomplete, missing="exclude")
    dropped = ["r3", "r10", "r20"]
    for values in (res.fittedvalues, res.predict(), res.resid(), res.resid("pearson"),
                   res.fitted(), res.predict(which="linear", random_only=True)):
        assert isinstance(values, pd.Series)
        assert list(values.index) == list(incomplete.index)
        assert values[dropped].isna().all() and values.drop(dropped).notna().all()
    omit = glmer("y ~ x + (1 | g)", incomplete)
    np.testing.assert_allclose(res.fittedvalues.dropna(), omit.fittedvalues)
    assert len(omit.fittedvalues) == 297 and isinstance(omit.resid(), np.ndarray)
    assert list(omit.predict(na_action="exclude").index) == list(incomplete.index)
    assert len(res.resid(na_action="omit")) == 297
    assert res.update(". ~ . - x").model.na_action == "exclude"
    with pytest.raises(ValueError, match="na_action must be"):
        res.resid(na_action="pass")


def test_na_exclude_needs_the_data(incomplete):
    with pytest.raises(ValueError, match="missing must be 'drop', 'exclude' or 'raise'"):
        glmer("y ~ x + (1 | g)", incomplete, missing="omit")
    dup = incomplete.set_axis(np.zeros(len(incomplete), dtype=int), axis=0)
    res = glmer("y ~ x + (1 | g)", dup, missing="exclude")
    with pytest.raises(ValueError, match="unique row labels"):
        res.fitted()
