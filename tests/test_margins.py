"""Issue 16: estimated marginal means, contrasts and marginal effects.

emmeans 1.8.4 on lme4 1.1-31 fits is the reference (tests/results/make_reference.R,
section "issue 16: emmeans"). Two comparisons for every table:

* our emmeans evaluated at lme4's β̂ and vcov (stored with the tables) must
  reproduce emmeans to rounding (rtol 1e-8; 1e-4 for the Dunnett-type interval,
  which emmeans finds by root finding to 5e-4);
* our emmeans at our own fit agree within the fit's agreement with lme4
  (test_model_reference: β within 2% of a standard error, standard errors within
  3%): estimates within 0.02 SE, standard errors within 2% (the largest
  difference, cbpp, is 1.2%: lme4's finite-difference Hessian).

Marginal effects are checked against statsmodels' GLM ``get_margeff`` on fits
whose random-effect variance is exactly 0 (singular), and against brute-force
finite differences of predictions (with and without integration over the
random effects).
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
import statsmodels.api as sm
from statsmodels.base.model import LikelihoodModelResults
import statsmodels.formula.api as smf
from statsmodels.tools.sm_exceptions import ValueWarning

from reference import CASES, load_data
from statsmodels_glmm import GLMMResults, glmer
from statsmodels_glmm.contrasts import adjust_pvalues, critical_value
from statsmodels_glmm.emmeans import emmeans as emmeans_at
from statsmodels_glmm.margins import MarginsMixin, random_effects_variance

REF = CASES["emmeans"]
CM1 = "use ~ age + I(age**2) + urban + livch + (1 | district)"

# (case, table) -> arguments of emmeans
EMM_SPECS = {
    ("cbpp", "link"): {"specs": "period"},
    ("cbpp", "response"): {"specs": "period", "type": "response"},
    ("cbpp", "level90"): {"specs": "period"},
    ("contraception", "urban_link"): {"specs": "urban"},
    ("contraception", "urban_response"): {"specs": "urban", "type": "response"},
    ("contraception", "urban_proportional"): {"specs": "urban", "weights": "proportional"},
    ("contraception", "urban_outer"): {"specs": "urban", "weights": "outer"},
    ("contraception", "urban_cells"): {"specs": "urban", "weights": "cells"},
    ("contraception", "urban_at_age"): {"specs": "urban", "at": {"age": [-5, 10]}},
    ("contraception", "livch_urban"): {"specs": ["livch", "urban"]},
    ("contraception", "livch_by_urban"): {"specs": "livch", "by": "urban"},
    ("grouseticks", "response"): {"specs": "YEAR", "type": "response"},
    ("offset", "link"): {"specs": "f"},
    ("offset", "offset0"): {"specs": "f", "offset": 0},
}
PAIRWISE = {"specs": "period"}
# (case, table) -> (arguments of emmeans, arguments of contrasts)
CONTRASTS = {
    ("cbpp", "pairs_tukey"): (PAIRWISE, {}),
    ("cbpp", "revpairs_tukey"): (PAIRWISE, {"method": "revpairwise"}),
    ("cbpp", "pairs_bonferroni"): (PAIRWISE, {"adjust": "bonferroni"}),
    ("cbpp", "pairs_holm"): (PAIRWISE, {"adjust": "holm"}),
    ("cbpp", "pairs_none"): (PAIRWISE, {"adjust": "none"}),
    ("cbpp", "pairs_odds_ratio"): ({"specs": "period", "type": "response"}, {}),
    ("cbpp", "trt_vs_ctrl"): (PAIRWISE, {"method": "trt.vs.ctrl"}),
    ("cbpp", "trt_vs_ctrl_sidak"): (PAIRWISE, {"method": "trt.vs.ctrl", "adjust": "sidak"}),
    ("cbpp", "custom"): (PAIRWISE, {"method": {"first_vs_rest": [1, -1 / 3, -1 / 3, -1 / 3],
                                               "late": [0, 0, 1, -1]}}),
    ("contraception", "livch_by_urban_pairs"): ({"specs": "livch", "by": "urban"}, {}),
    ("contraception", "urban_odds_ratio"): ({"specs": "urban", "type": "response"}, {}),
    ("grouseticks", "rate_ratio"): ({"specs": "YEAR", "type": "response"}, {}),
}


@pytest.fixture(scope="module")
def fits(cbpp_fit):
    offset_data = load_data("poisson_offset")
    offset_data["f"] = np.resize(["a", "b", "c"], len(offset_data))
    return {
        "cbpp": cbpp_fit,
        "contraception": glmer(CM1, load_data("Contraception")),
        "grouseticks": glmer(REF["grouseticks"]["formula"], load_data("grouseticks"),
                             family=sm.families.Poisson()),
        "offset": glmer(REF["offset"]["formula"], offset_data, family=sm.families.Poisson()),
    }


def r_name(name):
    if name == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[T\.([^\]]*)\]", r"\1", name).replace(" ** ", "^")


def lme4_estimates(res, case):
    """lme4's β̂ and vcov in our column order."""
    fit = REF[case]["fit"]
    names = list(fit["fixef"])
    cov = np.reshape(fit["vcov"], (len(names), len(names)), order="F")
    idx = [names.index(r_name(n)) for n in res.model.fe_names]
    return np.array(list(fit["fixef"].values()))[idx], cov[np.ix_(idx, idx)]


def test_mixin_reaches_results(cbpp_fit):
    assert issubclass(GLMMResults, MarginsMixin)
    mro = GLMMResults.__mro__
    assert mro.index(MarginsMixin) < mro.index(LikelihoodModelResults)
    assert hasattr(cbpp_fit, "emmeans") and hasattr(cbpp_fit, "get_margeff")


@pytest.mark.parametrize("key", list(EMM_SPECS), ids=lambda k: "-".join(k))
def test_emmeans_at_lme4_estimates_reproduce_emmeans(fits, key):
    case, table = key
    res, ref = fits[case], REF[case][table]
    beta, cov = lme4_estimates(res, case)
    alpha = 0.10 if table == "level90" else 0.05
    frame = emmeans_at(res, beta=beta, cov=cov, **EMM_SPECS[key]).summary_frame(alpha)
    assert list(frame.columns[:len(ref["grid"])]) == list(ref["grid"])
    for name, levels in ref["grid"].items():
        assert frame[name].astype(str).tolist() == levels
    assert ref["estimate_name"] in frame.columns
    np.testing.assert_allclose(frame[ref["estimate_name"]], ref["estimate"], rtol=1e-8)
    for column in ("SE", "lower", "upper"):
        np.testing.assert_allclose(frame[column], ref[column], rtol=1e-8)


@pytest.mark.parametrize("key", list(EMM_SPECS), ids=lambda k: "-".join(k))
def test_emmeans_at_our_fit(fits, key):
    case, table = key
    res, ref = fits[case], REF[case][table]
    frame = res.emmeans(**EMM_SPECS[key]).summary_frame()
    se = np.asarray(ref["SE"])
    assert np.max(np.abs(frame[ref["estimate_name"]] - ref["estimate"]) / se) < 0.02
    np.testing.assert_allclose(frame["SE"], se, rtol=0.02)


@pytest.mark.parametrize("key", list(CONTRASTS), ids=lambda k: "-".join(k))
def test_contrasts_at_lme4_estimates_reproduce_emmeans(fits, key):
    case, table = key
    res, ref = fits[case], REF[case][table]
    emm_args, con_args = CONTRASTS[key]
    beta, cov = lme4_estimates(res, case)
    con = emmeans_at(res, beta=beta, cov=cov, **emm_args).contrasts(**con_args)
    frame = con.summary_frame()
    assert frame["contrast"].tolist() == ref["contrast"]
    assert con.adjust == (ref["adjust"] if len(ref["contrast"]) > 1 else "none")
    for name, levels in (ref.get("by") or {}).items():
        assert frame[name].astype(str).tolist() == levels
    np.testing.assert_allclose(frame[ref["estimate_name"]], ref["estimate"], rtol=1e-8)
    np.testing.assert_allclose(frame["SE"], ref["SE"], rtol=1e-8)
    np.testing.assert_allclose(frame["z"], ref["z"], rtol=1e-8)
    np.testing.assert_allclose(frame["p_value"], ref["p"], rtol=1e-6, atol=1e-12)
    ci_tol = 1e-4 if con.adjust == "dunnettx" else 1e-7
    np.testing.assert_allclose(frame["lower"], ref["lower"], rtol=ci_tol)
    np.testing.assert_allclose(frame["upper"], ref["upper"], rtol=ci_tol)


@pytest.mark.parametrize("key", [("cbpp", "pairs_tukey"), ("cbpp", "pairs_odds_ratio"),
                                 ("contraception", "livch_by_urban_pairs")],
                         ids=lambda k: "-".join(k))
def test_contrasts_at_our_fit(fits, key):
    case, table = key
    res, ref = fits[case], REF[case][table]
    emm_args, con_args = CONTRASTS[key]
    frame = res.emmeans(**emm_args).contrasts(**con_args).summary_frame()
    link = np.log(frame[ref["estimate_name"]]) if "ratio" in ref["estimate_name"] else \
        frame[ref["estimate_name"]]
    ref_link = np.log(ref["estimate"]) if "ratio" in ref["estimate_name"] else \
        np.asarray(ref["estimate"])
    ref_se_link = np.abs(ref_link / np.asarray(ref["z"]))
    assert np.max(np.abs(link - ref_link) / ref_se_link) < 0.02
    # z = estimate / SE: 0.02 SE in the estimate, 2% in the standard error
    np.testing.assert_allclose(frame["z"], ref["z"], rtol=0.02, atol=0.02)
    np.testing.assert_allclose(frame["p_value"], ref["p"], atol=0.02)


def test_adjustments_against_closed_forms():
    z = np.array([0.5, 2.2, 3.1])
    raw = 2 * stats.norm.sf(z)
    np.testing.assert_allclose(adjust_pvalues(z, "none", 3), raw)
    np.testing.assert_allclose(adjust_pvalues(z, "bonferroni", 3), np.minimum(1, 3 * raw))
    np.testing.assert_allclose(adjust_pvalues(z, "sidak", 3), 1 - (1 - raw) ** 3)
    # two means: Tukey's studentized range reduces to the normal
    np.testing.assert_allclose(adjust_pvalues(z, "tukey", 2), raw, rtol=1e-6)
    assert critical_value(0.05, "tukey", 1, 2) == pytest.approx(stats.norm.ppf(0.975),
                                                                rel=1e-6)
    assert critical_value(0.05, "bonferroni", 4, 4) == pytest.approx(stats.norm.ppf(
        1 - 0.05 / 8))


def test_emmeans_response_scale_is_the_delta_method(cbpp_fit):
    link = cbpp_fit.emmeans("period")
    resp = cbpp_fit.emmeans("period", type="response").summary_frame()
    mu = 1 / (1 + np.exp(-link.estimate))
    np.testing.assert_allclose(resp["prob"], mu, rtol=1e-12)
    np.testing.assert_allclose(resp["SE"], mu * (1 - mu) * link.se, rtol=1e-9)
    lo, hi = link.conf_int().T
    np.testing.assert_allclose(resp[["lower", "upper"]],
                               np.column_stack([1 / (1 + np.exp(-lo)),
                                                1 / (1 + np.exp(-hi))]), rtol=1e-12)
    # the population-level prediction at each period is the same number
    pred = cbpp_fit.get_prediction(pd.DataFrame({"period": ["1", "2", "3", "4"]}), re_form="~0")
    np.testing.assert_allclose(pred.mean, mu, rtol=1e-12)
    np.testing.assert_allclose(pred.se_mean, resp["SE"], rtol=1e-9)
    assert "random effects at 0" in repr(link)


def test_emmeans_numeric_with_values_and_response_label(positive_fit):
    frame = positive_fit.emmeans("x", at={"x": [0.25, 0.75]}, type="response")
    table = frame.summary_frame()
    assert list(table.columns) == ["x", "response", "SE", "lower", "upper"]
    eta = positive_fit.fe_params[0] + positive_fit.fe_params[1] * np.array([0.25, 0.75])
    np.testing.assert_allclose(table["response"], np.exp(eta), rtol=1e-12)


def test_contrasts_follow_emmeans_rules(cbpp_fit):
    emm = cbpp_fit.emmeans("period")
    with pytest.warns(ValueWarning, match="sidak"):
        con = emm.contrasts("trt.vs.ctrl", adjust="tukey")
    assert con.adjust == "sidak"
    con = emm.contrasts("trt.vs.ctrl", ref="3")
    assert con.names == ["period1 - period3", "period2 - period3", "period4 - period3"]
    # contrasts of the back-transformed probit scale stay on the link scale
    probit = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   load_data("cbpp"), family=sm.families.Binomial(sm.families.links.Probit()))
    frame = probit.emmeans("period", type="response").contrasts().summary_frame()
    assert "estimate" in frame.columns and frame["contrast"][0] == "period1 - period2"


def test_emmeans_not_estimable_is_nan():
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"g": np.repeat(np.arange(10), 12), "f": np.tile(list("abc"), 40)})
    data["f2"] = data["f"].map({"a": "x", "b": "y", "c": "z"})  # the same factor again
    data["x"] = rng.normal(size=len(data))
    data["x2"] = 2 * data["x"]  # a collinear covariate: estimable at its mean
    data["y"] = rng.poisson(np.exp(0.3 + 0.2 * data["x"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = glmer("y ~ f + x + x2 + (1 | g)", data, family=sm.families.Poisson())
        aliased = glmer("y ~ f + f2 + (1 | g)", data, family=sm.families.Poisson())
    assert np.isfinite(res.emmeans("f").estimate).all()
    assert np.isnan(aliased.emmeans("f").estimate).all()
    assert np.isnan(aliased.emmeans("f").contrasts().estimate).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"specs": "herd"}, "not a variable of the fixed effects"),
    ({"specs": "nope"}, "not a variable of the fixed effects"),
    ({"specs": "period", "type": "mean"}, "type must be"),
    ({"specs": "period", "weights": "odd"}, "weights must be"),
    ({"specs": "period", "at": {"size": 3}}, "not in the fixed effects"),
    ({"specs": "period", "at": {"period": ["9"]}}, "not levels of 'period'"),
    ({"specs": "pairwise ~ period"}, "left-hand side"),
    ({"specs": "period", "by": "period"}, "both specs and by"),
])
def test_emmeans_errors_name_the_argument(cbpp_fit, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cbpp_fit.emmeans(**kwargs)


def test_emmeans_numeric_in_specs_is_an_error(fits):
    with pytest.raises(ValueError, match="'age' is a numeric covariate"):
        fits["contraception"].emmeans("age")
    emm = fits["contraception"].emmeans("~ livch | urban")
    assert emm.by == ["urban"] and len(emm.grid) == 8
    emm = fits["cbpp"].emmeans("period", at={"period": [1, "3"]})  # levels by label
    assert emm.grid["period"].tolist() == ["1", "3"]


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "consec"}, "method must be"),
    ({"adjust": "scheffe"}, "adjust must be one of"),
    ({"method": {"bad": [1, -1]}}, "contrast 'bad' has 2 weights; expected 4"),
    ({"method": "trt.vs.ctrl", "ref": "7"}, "ref '7' is not one of the means"),
])
def test_contrast_errors_name_the_argument(cbpp_fit, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cbpp_fit.emmeans("period").contrasts(**kwargs)


# -- marginal effects ----------------------------------------------------------------------
def singular_data(seed):
    """A data set whose random-intercept variance is estimated as exactly 0."""
    rng = np.random.default_rng(seed)
    n = 300
    data = pd.DataFrame({"g": np.repeat(np.arange(15), 20), "x": rng.normal(size=n),
                         "d": rng.integers(0, 2, n), "n": rng.poisson(1.5, n)})
    eta = -0.3 + 0.8 * data.x + 0.5 * data.d - 0.2 * data.n
    data["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    data["k"] = rng.poisson(np.exp(0.2 + 0.3 * data.x + 0.2 * data.d + 0.1 * data.n))
    return data


MARGEFF_OPTIONS = [{}, {"at": "mean"}, {"dummy": True}, {"count": True}, {"method": "eyex"},
                   {"method": "eydx", "dummy": True}, {"method": "dyex"}, {"at": "median"},
                   {"at": "zero"}]


@pytest.mark.parametrize("family, response, seed", [
    (sm.families.Binomial(), "y", 3), (sm.families.Poisson(), "k", 0)])
def test_margeff_equals_glm_when_the_variance_is_zero(family, response, seed):
    data = singular_data(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = glmer(f"{response} ~ x + d + n + (1 | g)", data, family=family)
    assert res.theta.iloc[0] == 0
    glm = smf.glm(f"{response} ~ x + d + n", data, family=family).fit()
    for options in MARGEFF_OPTIONS:
        ours = res.get_margeff(**options).summary_frame()
        theirs = glm.get_margeff(**options).summary_frame()
        assert list(ours.columns) == list(theirs.columns)
        assert list(ours.index) == list(theirs.index)
        np.testing.assert_allclose(ours.iloc[:, 0], theirs.iloc[:, 0], rtol=1e-10,
                                   err_msg=str(options))
        compare_margins(ours, theirs, str(options))
    compare_margins(res.get_margeff(integrate=True).summary_frame(),
                    glm.get_margeff().summary_frame(), "integrate")


def compare_margins(ours, theirs, message):
    """Standard errors agree to 1e-6 (our cov_fe is the inverse Hessian of the
    deviance by finite differences, the GLM's the inverse information)."""
    np.testing.assert_allclose(ours.iloc[:, 1:3], theirs.iloc[:, 1:3], rtol=1e-6,
                               err_msg=message)
    np.testing.assert_allclose(ours.iloc[:, 3], theirs.iloc[:, 3], rtol=1e-4, atol=1e-12,
                               err_msg=message)
    np.testing.assert_allclose(ours.iloc[:, 4:], theirs.iloc[:, 4:],
                               atol=1e-6 * theirs.iloc[:, 1].max(), err_msg=message)


def test_margeff_overall_is_the_finite_difference_of_predictions(binary_fit, binary_data):
    h = 1e-5
    up, down = binary_data.assign(x=binary_data.x + h), binary_data.assign(x=binary_data.x - h)
    brute = np.mean((binary_fit.predict(up, re_form="~0")
                     - binary_fit.predict(down, re_form="~0")) / (2 * h))
    mfx = binary_fit.get_margeff()
    assert mfx.margeff[0] == pytest.approx(brute, rel=1e-7)
    # its standard error: the analytic Jacobian of mean_i μ'(η_i) β
    eta = binary_fit.model.exog @ binary_fit.fe_params
    kernel, beta, X = binary_fit.model.kernel, binary_fit.fe_params, binary_fit.model.exog
    jac = (kernel.mu_eta2(eta)[:, None] * X).mean(axis=0) * beta[1]
    jac[1] += kernel.mu_eta(eta).mean()
    se = np.sqrt(jac @ binary_fit.cov_fe @ jac)
    assert mfx.margeff_se[0] == pytest.approx(se, rel=1e-6)


def test_margeff_integrated_is_the_finite_difference_of_marginal_means(binary_fit,
                                                                       binary_data):
    sd = np.sqrt(binary_fit.cov_re["g"].iloc[0, 0])
    b = np.linspace(-12 * sd, 12 * sd, 4001)
    density = stats.norm.pdf(b, scale=sd)

    def marginal_mean(frame):  # the trapezoid rule on a fine grid, not Gauss-Hermite
        eta = binary_fit.predict(frame, re_form="~0", which="linear").to_numpy()
        return np.trapezoid(1 / (1 + np.exp(-(eta[:, None] + b))) * density, b, axis=1)

    h = 1e-5
    brute = np.mean((marginal_mean(binary_data.assign(x=binary_data.x + h))
                     - marginal_mean(binary_data.assign(x=binary_data.x - h))) / (2 * h))
    integrated = binary_fit.get_margeff(integrate=True)
    assert integrated.margeff[0] == pytest.approx(brute, rel=1e-6)
    # averaging over the random effects attenuates the logistic slope
    assert abs(integrated.margeff[0]) < abs(binary_fit.get_margeff().margeff[0])
    assert "integrated over the random effects" in str(integrated.summary())


def test_random_effects_variance_with_random_slopes():
    res = glmer("y ~ x + (x | g) + offset(log(t))", load_data("poisson_offset"),
                family=sm.families.Poisson())
    ZL = (res.get_me("Z") @ res.get_me("Lambda")).toarray()
    np.testing.assert_allclose(random_effects_variance(res), (ZL ** 2).sum(axis=1),
                               rtol=1e-10)
    # log link: E exp(η + Zb) = exp(η + v/2) exactly, so the integrated average slope
    # is mean_i exp(η_i + v_i / 2) β_x
    eta = res.model.exog @ res.fe_params + res.model.offset
    expected = np.mean(np.exp(eta + random_effects_variance(res) / 2)) * res.fe_params[1]
    mfx = res.get_margeff(integrate=True)
    assert mfx.names == ["x"]
    assert mfx.margeff[0] == pytest.approx(expected, rel=1e-9)


def test_margeff_summary_and_errors(cbpp_fit):
    mfx = cbpp_fit.get_margeff(dummy=True)
    text = str(mfx.summary())
    assert "GLMM Marginal Effects" in text and "period[T.2]" in text
    assert mfx.summary_frame().index.tolist() == ["period[T.2]", "period[T.3]",
                                                  "period[T.4]"]
    with pytest.raises(ValueError, match="at must be one of"):
        cbpp_fit.get_margeff(at="all")
    with pytest.raises(ValueError, match="method must be one of"):
        cbpp_fit.get_margeff(method="dy")
    with pytest.raises(ValueError, match="not defined for discrete changes"):
        cbpp_fit.get_margeff(method="eyex", dummy=True)
