"""End-to-end fits against lme4 1.1-31 / glmmTMB reference values.

The values come from tests/results/make_reference.R (never typed by hand).
Tolerances (issue "glmer end to end"): −2 log-likelihood within 1e-3 of the
better of lme4 (its deviance re-evaluated with tolPwrss=1e-14) and glmmTMB, and
no worse than it by more than 1e-4; β within 2% of a standard error; standard
errors within 3%; random-effect standard deviations within 2%.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from reference import CASES, REFERENCE, RESULTS, family, load_data
from statsmodels_glmm import glmer

GLMM_CASES = [name for name, case in CASES.items() if "lme4" in case and "formula" in case]
NON_CANONICAL = {"cbpp_probit", "cbpp_cloglog", "gamma_log"}


def r_name(name):
    """statsmodels column name → R's coefficient name."""
    if name == "Intercept":
        return "(Intercept)"
    name = re.sub(r"\[T\.([^\]]*)\]", r"\1", name)
    return name.replace(" ** ", "^").replace("**", "^")


def by_r_name(series):
    return pd.Series(series.to_numpy(), index=[r_name(n) for n in series.index])


def fit_case(name, **kwargs):
    case = CASES[name]
    data = load_data(case["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return glmer(case["formula"], data, family=family(case), nAGQ=case["nAGQ"],
                     weights=case["weights"], **kwargs)


@pytest.fixture(scope="module")
def fits():
    cache = {}

    def get(name, **kwargs):
        key = (name, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = fit_case(name, **kwargs)
        return cache[key]

    return get


def reference_neg2ll(case):
    """The exact-as-possible −2 log-likelihood to compare with."""
    lme4 = case["lme4"]
    if case["nAGQ"] > 1:
        # lme4 drops the binomial constant (lme4 #161); integrate() is exact
        return lme4.get("neg2ll_integrate") or lme4["neg2ll_with_constant"]
    if case["name"] in NON_CANONICAL:
        # lme4 uses the expected information in the Laplace factor, and a
        # plug-in dispersion for Gamma: only glmmTMB computes this objective
        return case["glmmTMB"]["neg2ll"]
    values = [lme4["neg2ll_refined"]]
    if "glmmTMB" in case:
        values.append(case["glmmTMB"]["neg2ll"])
    return min(values)


def reference_estimates(case):
    """(fixef, se) from glmmTMB where it fits the same objective, else lme4."""
    source = case.get("glmmTMB") or case["lme4"]
    return pd.Series(source["fixef"]), np.asarray(source["se"])


def test_reference_metadata():
    assert REFERENCE["meta"]["lme4"] == "1.1.31"
    assert REFERENCE["meta"]["generated_by"] == "tests/results/make_reference.R"
    assert (RESULTS / "make_reference.R").exists()


@pytest.mark.parametrize("name", GLMM_CASES)
def test_neg2loglik(fits, name):
    res = fits(name)
    ref = reference_neg2ll(CASES[name])
    assert abs(res.neg2llf - ref) < 1e-3
    assert res.neg2llf < ref + 1e-4
    assert res.converged


@pytest.mark.parametrize("name", GLMM_CASES)
def test_fixed_effects(fits, name):
    res = fits(name)
    fixef, se = reference_estimates(CASES[name])
    ours = by_r_name(res.params).reindex(fixef.index)
    assert not ours.isna().any(), "coefficient names differ from R's"
    np.testing.assert_array_less(np.abs(ours - fixef) / se, 0.02)


@pytest.mark.parametrize("name", GLMM_CASES)
def test_standard_errors(fits, name):
    res = fits(name)
    fixef, se = reference_estimates(CASES[name])
    ours = by_r_name(res.bse).reindex(fixef.index).to_numpy()
    np.testing.assert_allclose(ours, se, rtol=0.03)


@pytest.mark.parametrize("name", GLMM_CASES)
def test_random_effect_sds(fits, name):
    res = fits(name)
    case = CASES[name]
    if "glmmTMB" in case:
        ours = res.varcorr()
        ours = ours[ours["var2"].isna() & (ours["grp"] != "Residual")]["sdcor"].to_numpy()
        np.testing.assert_allclose(np.sort(ours), np.sort(case["glmmTMB"]["sd"]), rtol=0.02)
    ref = pd.DataFrame(case["lme4"]["varcorr"])
    ours = res.varcorr()
    assert list(ours["grp"]) == list(ref["grp"])
    if name == "gamma_log":
        return  # lme4's Gamma variance components are not ML estimates
    np.testing.assert_allclose(ours["sdcor"], ref["sdcor"], rtol=0.02, atol=0.005)


@pytest.mark.parametrize("name", ["cbpp_probit", "cbpp_cloglog"])
def test_expected_information_reproduces_lme4(fits, name):
    res = fits(name, information="expected")
    lme4 = CASES[name]["lme4"]
    assert abs(res.neg2llf - lme4["neg2ll_refined"]) < 1e-3
    assert res.neg2llf < lme4["neg2ll_refined"] + 1e-4
    np.testing.assert_allclose(res.theta, lme4["theta"], rtol=0.02)


def test_observed_information_is_closer_to_the_integral(fits):
    """The true Laplace approximation beats lme4's Fisher version (probit)."""
    res_obs = fits("cbpp_probit")
    res_exp = fits("cbpp_probit", information="expected")
    for res in (res_obs, res_exp):
        exact = res.model.deviance(res.theta.to_numpy(), res.params.to_numpy(), nAGQ=50)
        res._exact = exact
    assert abs(res_obs.neg2llf - res_obs._exact) < abs(res_exp.neg2llf - res_exp._exact)


@pytest.mark.parametrize("name", GLMM_CASES)
def test_fit_statistics(fits, name):
    res = fits(name)
    lme4 = CASES[name]["lme4"]
    assert res.nobs == lme4["nobs"]
    assert res.df_resid == lme4["df_resid"]
    assert res.aic == pytest.approx(res.neg2llf + 2 * (res.nobs - res.df_resid))
    if name not in NON_CANONICAL and CASES[name]["nAGQ"] <= 1:
        # lme4's deviance() = Σ unit deviances at the modes
        assert res.deviance == pytest.approx(lme4["deviance"], rel=1e-3)


def test_theta_names_follow_lme4_order(fits):
    res = fits("grouseticks_crossed")
    ref = CASES["grouseticks_crossed"]["lme4"]["theta_names"]
    assert [n.split(".")[0] for n in res.theta.index] == [n.split(".")[0] for n in ref]


def test_agq_converges_to_the_integral(fits):
    """nAGQ=9 and 25 agree with the numerically integrated likelihood."""
    res9 = fits("cbpp_logit_nAGQ9")
    res25 = fits("cbpp_logit_nAGQ25")
    exact = CASES["cbpp_logit_nAGQ25"]["lme4"]["neg2ll_integrate"]
    assert abs(res25.neg2llf - exact) < 1e-6
    assert abs(res9.neg2llf - exact) < 1e-4


def test_laplace_and_agq_are_on_one_scale(fits):
    """Unlike lme4, nAGQ=1 and nAGQ=25 log-likelihoods are comparable."""
    lap = fits("cbpp_logit_nAGQ1")
    agq = fits("cbpp_logit_nAGQ25")
    assert abs(lap.llf - agq.llf) < 0.1


@pytest.mark.parametrize("reml", [False, True])
def test_linear_mixed_model_matches_lmer(reml):
    data = pd.read_csv(RESULTS / "data" / "sleepstudy.csv")
    data["Subject"] = data["Subject"].astype(str)
    ref = CASES["sleepstudy"]["lmer"]["reml" if reml else "ml"]
    res = glmer("Reaction ~ Days + (Days | Subject)", data, family=sm.families.Gaussian(),
                reml=reml)
    assert abs(res.neg2llf - ref["neg2ll"]) < 1e-3
    np.testing.assert_allclose(res.params, list(ref["fixef"].values()), rtol=1e-6)
    np.testing.assert_allclose(res.bse, ref["se"], rtol=1e-3)
    np.testing.assert_allclose(res.varcorr()["sdcor"], ref["sdcor"], rtol=2e-3)
    assert res.sigma == pytest.approx(ref["sigma"], rel=1e-4)


@pytest.mark.parametrize("reml", [False, True])
def test_linear_mixed_model_matches_mixedlm(reml):
    import statsmodels.formula.api as smf

    data = pd.read_csv(RESULTS / "data" / "sleepstudy.csv")
    data["Subject"] = data["Subject"].astype(str)
    res = glmer("Reaction ~ Days + (Days | Subject)", data, family=sm.families.Gaussian(),
                reml=reml)
    ref = smf.mixedlm("Reaction ~ Days", data, groups="Subject",
                      re_formula="~Days").fit(reml=reml)
    assert res.llf == pytest.approx(ref.llf, abs=1e-4)
    np.testing.assert_allclose(res.params, ref.fe_params, rtol=1e-6)
