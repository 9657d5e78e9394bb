"""Cluster-robust covariance of the fixed effects (issue 16).

The linear mixed model is compared with clubSandwich's ``vcovCR`` (reference.json,
section ``clubsandwich``; the weighted LMM through ``nlme::lme`` with
``varFixed(~1/w)`` because ``vcovCR.lmerMod`` refuses prior weights).
clubSandwich has no method for ``glmerMod`` (``vcovCR`` falls back to its default
method, which fails on lme4's S4 object: "$ operator not defined for this S4
class"), so the GLMM's per-cluster scores are compared with a brute-force
computation: central differences in β of each cluster's Laplace value, evaluated
densely cluster by cluster from PIRLS at the moved β.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
import statsmodels.api as sm

from reference import CASES, RESULTS, load_data
from statsmodels_glmm import glmer, robust

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _reference_fit(ref):
    if ref["data"] == "sleepstudy":
        data = pd.read_csv(RESULTS / "data" / "sleepstudy.csv")
        data["Subject"] = data["Subject"].astype(str)
    else:
        data = load_data(ref["data"])
    if "rows" in ref:
        data = data.iloc[np.asarray(ref["rows"]) - 1]
    return glmer(ref["formula"], data, family=sm.families.Gaussian(), reml=ref["reml"],
                 weights=ref["weights"])


@pytest.mark.parametrize("case", sorted(CASES["clubsandwich"]))
def test_lmm_matches_clubsandwich(case):
    ref = CASES["clubsandwich"][case]
    res = _reference_fit(ref)
    # lmer's optimum to ~1e-8 relative; lme (the weighted case) to ~1e-6
    tol = 2e-5 if ref["weights"] else 1e-6
    np.testing.assert_allclose(res.fe_params, ref["fixef"], rtol=tol)
    for adjust in robust.ADJUSTMENTS:
        cov = res.get_robustcov_results(adjust=adjust).cov_fe
        np.testing.assert_allclose(cov, np.array(ref[adjust]), rtol=10 * tol,
                                   err_msg=f"{case} {adjust}")


def _brute_force_scores(res, clusters, h=1e-5):
    """−½ ∂/∂β of each cluster's Laplace value, by central differences."""
    model, fit = res.model, res.fit_record
    re = model.random_effects
    A = (re.sparse_z() @ re.relative_factor(fit.theta)).toarray()
    resp = model.response
    weights = resp.observed_weights if fit.information == "observed" else \
        resp.working_weights

    def per_cluster(beta):
        modes = model.pirls(fit.theta, beta, fit.dispersion, u0=fit.modes.u, tol=1e-14,
                            information=fit.information)
        w = weights(modes.eta, modes.mu, fit.dispersion)
        out = np.zeros(clusters.n_clusters)
        for c in range(clusters.n_clusters):
            rows = clusters.codes == c
            cols = np.abs(A[rows]).sum(axis=0) > 0
            Ac = A[rows][:, cols]
            M = Ac.T @ (w[rows, None] * Ac) + np.eye(int(cols.sum()))
            out[c] = (modes.neg2ll[rows].sum() + np.sum(modes.u[cols] ** 2)
                      + np.linalg.slogdet(M)[1])
        return out

    beta = np.asarray(fit.beta, dtype=float)
    scores = np.empty((clusters.n_clusters, beta.size))
    for k in range(beta.size):
        e = np.zeros(beta.size)
        e[k] = h
        scores[:, k] = -0.5 * (per_cluster(beta + e) - per_cluster(beta - e)) / (2 * h)
    return scores


@pytest.fixture(scope="module")
def nested_counts():
    """Poisson counts with random intercepts of 6 regions h and 24 groups g in them."""
    rng = np.random.default_rng(16)
    g = np.repeat(np.arange(24), 8)
    h = g // 4
    x = rng.normal(size=g.size)
    eta = 0.5 + 0.3 * x + rng.normal(0, 0.5, 6)[h] + rng.normal(0, 0.4, 24)[g]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "g": g, "h": h})


@pytest.fixture(scope="module")
def nested_fit(nested_counts):
    return glmer("y ~ x + (1 | h/g)", nested_counts, family=sm.families.Poisson())


def _glmm_cases(name, cbpp_fit, nested_counts, nested_fit):
    if name == "cbpp":
        return cbpp_fit, None
    if name == "probit_expected":
        data = cbpp_fit.model.data.frame
        return glmer(CBPP, data, family=sm.families.Binomial(sm.families.links.Probit()),
                     information="expected"), None
    if name == "nested":  # two terms: the per-cluster path
        return nested_fit, None
    # one term clustered on a coarser factor
    return glmer("y ~ x + (1 | g)", nested_counts, family=sm.families.Poisson()), "h"


@pytest.mark.parametrize("name", ["cbpp", "probit_expected", "nested", "coarser"])
def test_glmm_scores_match_brute_force(name, cbpp_fit, nested_counts, nested_fit):
    res, groups = _glmm_cases(name, cbpp_fit, nested_counts, nested_fit)
    clusters = robust.cluster_codes(res.model, groups)
    scores = robust.cluster_scores(res._results, clusters)
    brute = _brute_force_scores(res, clusters)
    np.testing.assert_allclose(scores, brute, atol=1e-7 * np.abs(brute).max())
    # CR0 is the sandwich of these scores with the model-based covariance
    cr0 = res.get_robustcov_results(groups=groups, adjust="CR0").cov_fe
    np.testing.assert_allclose(cr0, res.cov_fe @ brute.T @ brute @ res.cov_fe, rtol=1e-6)


def test_default_cluster_is_outermost(nested_counts, nested_fit):
    res = nested_fit
    assert not res.is_singular()
    robust_res = res.get_robustcov_results()
    assert robust_res.cov_kwds["groups"] == "h" and robust_res.n_groups == 6
    by_name = res.get_robustcov_results(groups="h")
    by_array = res.get_robustcov_results(groups=nested_counts["h"].to_numpy())
    np.testing.assert_allclose(by_name.cov_fe, robust_res.cov_fe, rtol=1e-12)
    np.testing.assert_allclose(by_array.cov_fe, robust_res.cov_fe, rtol=1e-12)


def test_adjustments_and_statsmodels_flags(cbpp_fit):
    cr0 = cbpp_fit.get_robustcov_results(adjust="CR0")
    g, n, p = 15, cbpp_fit.nobs, 4
    np.testing.assert_allclose(cbpp_fit.get_robustcov_results().cov_fe,
                               g / (g - 1) * cr0.cov_fe, rtol=1e-12)  # CR1 by default
    cr1s = cbpp_fit.get_robustcov_results(use_correction=True)
    np.testing.assert_allclose(cr1s.cov_fe, g / (g - 1) * (n - 1) / (n - p) * cr0.cov_fe,
                               rtol=1e-12)
    assert cr1s.cov_kwds["adjust"] == "CR1S"
    np.testing.assert_allclose(cr0.cov_model, cbpp_fit.cov_fe)
    # robust copies keep the model-based bread
    again = cr0.get_robustcov_results(adjust="CR0")
    np.testing.assert_allclose(again.cov_fe, cr0.cov_fe, rtol=1e-12)


def test_fit_cov_type_cluster_and_use_t(cbpp_fit):
    data = cbpp_fit.model.data.frame
    res = glmer(CBPP, data, family=sm.families.Binomial(), cov_type="cluster",
                cov_kwds={"groups": "herd", "adjust": "CR0"}, use_t=True)
    assert res.cov_type == "cluster" and res.use_t
    np.testing.assert_allclose(
        res.bse, cbpp_fit.get_robustcov_results(adjust="CR0").bse, rtol=1e-6)
    df = res.df_resid_inference
    assert df == 14
    np.testing.assert_allclose(res.pvalues, 2 * stats.t.sf(np.abs(res.tvalues), df))
    half = res.conf_int()[1] - res.params
    np.testing.assert_allclose(half, stats.t.ppf(0.975, df) * res.bse)
    text = str(res.summary())
    assert "cluster-robust (CR0, 15 clusters of herd)" in text and "P>|t|" in text
    assert res.t_test("period[T.2] = 0").df_denom == 14


def test_nagq0_scores_solve_the_penalized_equations(cbpp_fit):
    res = glmer(CBPP, cbpp_fit.model.data.frame, family=sm.families.Binomial(), nAGQ=0)
    clusters = robust.cluster_codes(res.model)
    scores = robust.cluster_scores(res._results, clusters)
    np.testing.assert_allclose(scores.sum(axis=0), 0, atol=1e-8)
    obs = robust.score_obs_fe(res._results)
    resp = res.model.response
    w, dmu = resp.irls_quantities(res.linear_predictor, res.fittedvalues_array)
    np.testing.assert_allclose(obs, res.model.exog * (w * (resp.y - res.fittedvalues_array)
                                                      / dmu)[:, None])


def test_quadrature_scores(cbpp_fit):
    """nAGQ > 1: per-level differences; with one node they are the Laplace scores."""
    clusters = robust.cluster_codes(cbpp_fit.model)
    analytic = robust.cluster_scores(cbpp_fit._results, clusters)
    numeric = robust._agq_level_scores(cbpp_fit._results)  # nAGQ = 1: one node
    np.testing.assert_allclose(numeric, analytic, atol=1e-6)
    res = glmer(CBPP, cbpp_fit.model.data.frame, family=sm.families.Binomial(), nAGQ=9)
    scores = robust.cluster_scores(res._results, clusters)
    assert np.abs(scores.sum(axis=0)).max() < 1e-3 * np.abs(scores).max()
    with pytest.raises(ValueError, match="nAGQ > 1"):
        robust.score_obs_fe(res._results)
    assert np.all(res.get_robustcov_results().bse > 0)


def test_crossed_random_effects_refused():
    rng = np.random.default_rng(5)
    a, b = np.repeat(np.arange(12), 12), np.tile(np.arange(12), 12)
    y = rng.poisson(np.exp(0.5 + rng.normal(0, 0.3, 12)[a] + rng.normal(0, 0.3, 12)[b]))
    data = pd.DataFrame({"y": y, "a": a, "b": b})
    res = glmer("y ~ 1 + (1 | a) + (1 | b)", data, family=sm.families.Poisson())
    with pytest.raises(ValueError, match="does not nest the grouping factor"):
        res.get_robustcov_results()
    with pytest.raises(ValueError, match="groups"):
        res.get_robustcov_results(groups="a")


def test_errors_name_the_argument(cbpp_fit, count_data):
    with pytest.raises(ValueError, match="cov_type must be 'cluster'"):
        cbpp_fit.get_robustcov_results(cov_type="HC0")
    with pytest.raises(ValueError, match="CR2"):
        cbpp_fit.get_robustcov_results(adjust="CR2")
    with pytest.raises(ValueError, match="adjust must be one of"):
        cbpp_fit.get_robustcov_results(adjust="CR3")
    with pytest.raises(ValueError, match="neither a grouping factor"):
        cbpp_fit.get_robustcov_results(groups="farm")
    with pytest.raises(ValueError, match="single cluster"):
        cbpp_fit.get_robustcov_results(groups=np.zeros(56))
    with pytest.raises(ValueError, match="groups must have one value per observation"):
        cbpp_fit.get_robustcov_results(groups=np.zeros(5))
    with pytest.raises(ValueError, match="use_correction, not both"):
        cbpp_fit.get_robustcov_results(adjust="CR0", use_correction=True)
    data = cbpp_fit.model.data.frame
    with pytest.raises(ValueError, match="cov_kwds needs cov_type='cluster'"):
        glmer(CBPP, data, cov_kwds={"groups": "herd"})
    with pytest.raises(ValueError, match="cov_kwds: unknown key"):
        glmer(CBPP, data, cov_type="cluster", cov_kwds={"group": "herd"})
    with pytest.raises(TypeError, match="use_t must be True or False"):
        glmer(CBPP, data, use_t="yes")
    with pytest.raises(ValueError, match="cov_type must be"):
        glmer(CBPP, data, cov_type="robust")


def test_collinear_columns_stay_nan(count_data):
    data = count_data.assign(x2=2 * count_data["x"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = glmer("y ~ x + x2 + (1 | g)", data, family=sm.families.Poisson())
    rob = res.get_robustcov_results()
    assert np.isnan(rob.bse["x2"]) and np.all(np.isfinite(rob.bse[["Intercept", "x"]]))
