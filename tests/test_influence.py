"""Issue 16: case-deletion influence (lme4's influence.merMod) against lme4 1.1-31.

References from the "issue 16: influence" section of tests/results/make_reference.R.
lme4's refits stop short of the optimum (Nelder-Mead in its second stage): every
deleted fit here reaches a lower −2 log L, and the deleted fixed effects agree to
~1e-3. lme4's covariance of β̂ (its finite-difference Hessian) is ~1-2.5% off
glmmTMB's, which this package matches to 1e-6; Cook's distance, which uses it,
is compared both directly and with lme4's covariance.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from reference import CASES, load_data
from statsmodels_glmm import GLMM, glmer
from statsmodels_glmm.influence import InfluenceResults, deleted_model

REF = CASES["influence"]


def matrix(case, key):
    return np.column_stack([case[key][name] for name in case["fixef"]])


def cooks_with(case, dfbeta):
    """lme4's Cook's distance of ``dfbeta`` with lme4's own covariance of β̂."""
    n, p = dfbeta.shape
    vinv = np.linalg.inv(matrix(case, "vcov"))
    return (n - p) / (n * p) * np.einsum("ij,jk,ik->i", dfbeta, vinv, dfbeta)


def check_against_lme4(inf, case, beta_atol, dfbetas_atol, cooks_rtol, own_cooks_rtol):
    assert [str(k) for k in inf.fe_params_deleted.index] == case["deleted"] or \
        len(inf.fe_params_deleted) == len(case["deleted"])
    np.testing.assert_allclose(inf.fe_params_deleted, matrix(case, "fixef_deleted"),
                               atol=beta_atol)
    np.testing.assert_allclose(inf.dfbeta, matrix(case, "dfbeta"), atol=beta_atol)
    np.testing.assert_allclose(inf.dfbetas, matrix(case, "dfbetas"), atol=dfbetas_atol)
    np.testing.assert_allclose(cooks_with(case, inf.dfbeta.to_numpy()), case["cooks"],
                               rtol=cooks_rtol)
    np.testing.assert_allclose(inf.cooks_distance, case["cooks"], rtol=own_cooks_rtol)
    # every deleted fit at least as good as lme4's
    assert np.all(inf.neg2llf_deleted.to_numpy() <= np.asarray(case["neg2ll_deleted"]) + 1e-6)
    assert inf.converged.all() and all(case["converged"])


@pytest.fixture(scope="module")
def cbpp_herd():
    case = REF["cbpp_herd"]
    res = glmer(case["formula"], load_data("cbpp"))
    return res, res.influence(groups="herd")


@pytest.fixture(scope="module")
def sleepstudy():
    return glmer(REF["sleepstudy_subject"]["formula"], load_data("sleepstudy"),
                 family=sm.families.Gaussian(), reml=True)


def test_groups_match_lme4_cbpp(cbpp_herd):
    res, inf = cbpp_herd
    case = REF["cbpp_herd"]
    assert isinstance(inf, InfluenceResults) and inf.groups == "herd"
    assert list(inf.dfbeta.columns) == list(res.model.fe_names)
    check_against_lme4(inf, case, beta_atol=1.5e-3, dfbetas_atol=0.03, cooks_rtol=0.01,
                       own_cooks_rtol=0.04)
    # lme4's largest influence is ours
    assert inf.cooks_distance.idxmax() == case["deleted"][int(np.argmax(case["cooks"]))]


def test_deleted_fit_equals_a_fresh_fit(cbpp_herd):
    """Brute force: the warm-started single-stage refit is the full two-stage fit
    of the data without the herd."""
    res, inf = cbpp_herd
    data = load_data("cbpp")
    herd = inf.cooks_distance.idxmax()
    fresh = glmer(REF["cbpp_herd"]["formula"], data[data["herd"] != herd])
    np.testing.assert_allclose(inf.fe_params_deleted.loc[herd], fresh.fe_params, atol=2e-5)
    np.testing.assert_allclose(inf.bse_deleted.loc[herd], fresh.bse, rtol=1e-3)
    np.testing.assert_allclose(inf.theta_deleted.loc[herd], fresh.theta, atol=1e-4)
    assert abs(inf.neg2llf_deleted.loc[herd] - fresh.neg2llf) < 1e-6
    # the refits start where the full fit is: far fewer evaluations than a fit
    assert inf.nfev.loc[herd] < sum(fresh.mle_retvals[k] for k in ("stage1_nfev",
                                                                    "stage2_nfev")) + 60


def test_lmm_groups_match_lmer(sleepstudy):
    inf = sleepstudy.influence(groups="Subject")
    check_against_lme4(inf, REF["sleepstudy_subject"], beta_atol=1e-6, dfbetas_atol=1e-3,
                       cooks_rtol=1e-6, own_cooks_rtol=1e-3)
    np.testing.assert_allclose(inf.sigma_deleted.max(), 26.245, atol=0.01)


def test_parallel_and_label_groups_give_the_same(sleepstudy):
    serial = sleepstudy.influence(groups="Subject")
    labels = load_data("sleepstudy")["Subject"].to_numpy()
    parallel = sleepstudy.influence(groups=labels, n_jobs=2, progress=True)
    # the factor's levels are labels (text); the array's values keep their type
    assert list(serial.dfbetas.index) == [str(v) for v in parallel.dfbetas.index]
    np.testing.assert_array_equal(serial.dfbetas, parallel.dfbetas)
    np.testing.assert_array_equal(serial.cooks_distance, parallel.cooks_distance)


def test_case_deletion_matches_lme4_poisson():
    case = REF["poisson_case"]
    res = glmer(case["formula"], load_data(case["data"]), family=sm.families.Poisson())
    inf = res.influence()
    assert inf.groups == "case" and len(inf.cooks_distance) == 40
    check_against_lme4(inf, case, beta_atol=1e-3, dfbetas_atol=0.02, cooks_rtol=0.03,
                       own_cooks_rtol=0.05)
    frame = inf.summary_frame()
    assert list(frame.columns) == ["dfb_Intercept", "dfb_x", "cooks_d", "converged"]


def test_crossed_terms_reordered_by_deletion():
    """Deleting levels of the larger factor makes it the smaller one: lme4's
    term order (and θ's) changes in the deleted model and is mapped back."""
    rng = np.random.default_rng(5)
    a, b = np.repeat(np.arange(5), 8), np.tile(np.arange(4), 10)
    x = rng.normal(size=40)
    y = rng.poisson(np.exp(0.5 + 0.3 * x + rng.normal(0, 0.5, 5)[a] + rng.normal(0, 0.6, 4)[b]))
    data = pd.DataFrame({"y": y, "x": x, "a": a, "b": b})
    res = glmer("y ~ x + (1 | a) + (1 | b)", data, family=sm.families.Poisson())
    assert list(res.theta.index) == ["a.(Intercept)", "b.(Intercept)"]
    groups = np.where(data["a"] < 2, "first", data["a"].astype(str))
    inf = res.influence(groups=groups)
    sub = data[groups != "first"]  # a keeps 3 levels, b 4: b now comes first
    fresh = glmer("y ~ x + (1 | a) + (1 | b)", sub, family=sm.families.Poisson())
    assert list(fresh.theta.index) == ["b.(Intercept)", "a.(Intercept)"]
    np.testing.assert_allclose(inf.theta_deleted.loc["first"],
                               fresh.theta[["a.(Intercept)", "b.(Intercept)"]], atol=1e-4)
    # as good an optimum (−2 log L within 1e-8; β to 1e-4 of its SE of ~0.7)
    np.testing.assert_allclose(inf.fe_params_deleted.loc["first"], fresh.fe_params, atol=1e-4)
    assert inf.neg2llf_deleted.loc["first"] < fresh.neg2llf + 1e-8
    model, order = deleted_model(res.model, groups != "first")
    assert order == [1, 0] and isinstance(model, GLMM)


def test_arguments_are_checked(sleepstudy):
    with pytest.raises(ValueError, match="groups 'nope'"):
        sleepstudy.influence(groups="nope")
    with pytest.raises(ValueError, match="groups must be"):
        sleepstudy.influence(groups=[1, 2, 3])
    with pytest.raises(ValueError, match="n_jobs"):
        sleepstudy.influence(groups="Subject", n_jobs=0)
    with pytest.raises(ValueError, match="progress"):
        sleepstudy.influence(groups="Subject", progress="yes")
    with pytest.raises(ValueError, match="single level"):
        sleepstudy.influence(groups=np.zeros(180))


def test_plot(cbpp_herd):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    _, inf = cbpp_herd
    fig = inf.plot(threshold=4 / 15)
    heights = [seg[1][1] for seg in fig.axes[0].collections[0].get_segments()]
    np.testing.assert_allclose(heights, inf.cooks_distance)
    assert "largest Cook's D" in repr(inf)


def test_data_column_groups_and_dropped_columns(cbpp_herd):
    """groups may be any column of the data; deleting a period leaves its fixed
    effect (or the intercept's equivalent) without information: NaN, as lme4's
    rank-deficient refit drops the column."""
    res, _ = cbpp_herd
    inf = res.influence(groups="period")
    assert list(inf.dfbeta.index) == ["1", "2", "3", "4"]
    assert (inf.fe_params_deleted.isna().sum(axis=1) == 1).all()
    assert np.isnan(inf.fe_params_deleted.loc["2", "period[T.2]"])
    assert inf.converged.all() and not inf.failures
