"""The model API: formula forms, response forms, data handling, errors."""

import warnings

import numpy as np
import pandas as pd
from patsy import PatsyError
import pytest
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from statsmodels_glmm import GLMM, BoundaryWarning, SingularFitWarning, datasets, glmer
from statsmodels_glmm.formula.api import glmer as formula_glmer

CBPP_FORMULA = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_glmer_equals_from_formula(cbpp, cbpp_fit):
    res = GLMM.from_formula(CBPP_FORMULA, cbpp).fit(nAGQ=1)
    assert res.llf == cbpp_fit.llf
    assert formula_glmer is glmer


@pytest.mark.parametrize("formula, kwargs", [
    ("prop ~ period + (1 | herd)", {"weights": "size"}),
    ("incidence + I(size - incidence) ~ period + (1 | herd)", {}),
])
def test_binomial_response_forms_identical(cbpp, cbpp_fit, formula, kwargs):
    res = glmer(formula, cbpp, **kwargs)
    assert res.llf == pytest.approx(cbpp_fit.llf, abs=1e-9)
    np.testing.assert_allclose(res.params, cbpp_fit.params, atol=1e-7)
    np.testing.assert_allclose(res.bse, cbpp_fit.bse, rtol=1e-5)
    np.testing.assert_allclose(res.theta, cbpp_fit.theta, atol=1e-7)


def test_weights_as_array(cbpp, cbpp_fit):
    res = glmer("prop ~ period + (1 | herd)", cbpp, weights=cbpp["size"].to_numpy())
    assert res.llf == pytest.approx(cbpp_fit.llf, abs=1e-9)


def test_boolean_and_categorical_responses():
    data = datasets.load_contraception()
    data["use_bool"] = data["use"] == "Y"
    data["use01"] = (data["use"] == "Y").astype(int)
    fits = [glmer(f"{y} ~ age + urban + (1 | district)", data)
            for y in ("use", "use_bool", "use01")]
    for res in fits[1:]:
        assert res.llf == pytest.approx(fits[0].llf, abs=1e-9)


def test_user_data_and_family_are_not_modified(cbpp):
    family = sm.families.Binomial()
    before = cbpp.copy()
    family_state = vars(family).copy()
    glmer("prop ~ period + (1 | herd)", cbpp, family=family, weights="size")
    pd.testing.assert_frame_equal(cbpp, before)
    assert vars(family).keys() == family_state.keys()


def test_numeric_and_string_grouping_give_one_fit(cbpp, cbpp_fit):
    cbpp["herd_num"] = cbpp["herd"].astype(int)
    cbpp["herd_str"] = "h" + cbpp["herd"].astype(str)
    for col in ("herd_num", "herd_str"):
        res = glmer(f"cbind(incidence, size - incidence) ~ period + (1 | {col})", cbpp)
        assert res.llf == pytest.approx(cbpp_fit.llf, abs=1e-9)


def test_offset_term_column_and_array_agree():
    rng = np.random.default_rng(5)
    n, g = 200, 20
    data = pd.DataFrame({"g": np.repeat(np.arange(g), n // g), "x": rng.normal(size=n),
                         "t": rng.uniform(0.5, 2, n)})
    b = rng.normal(0, 0.4, g)[data["g"]]
    data["y"] = rng.poisson(data["t"] * np.exp(0.2 + 0.3 * data["x"] + b))
    data["logt"] = np.log(data["t"])
    fam = sm.families.Poisson()
    fits = [glmer("y ~ x + (1 | g) + offset(np.log(t))", data, family=fam),
            glmer("y ~ x + (1 | g) + offset(log(t))", data, family=fam),
            glmer("y ~ x + (1 | g)", data, family=fam, offset="logt"),
            glmer("y ~ x + (1 | g)", data, family=fam, offset=data["logt"].to_numpy())]
    for res in fits[1:]:
        assert res.llf == pytest.approx(fits[0].llf, abs=1e-9)


def test_missing_values_are_dropped_consistently(cbpp, cbpp_fit):
    data = cbpp.copy()
    extra = data.iloc[:3].copy()
    extra["incidence"] = [np.nan, 1, 1]
    extra["herd"] = [data["herd"].iloc[0], np.nan, data["herd"].iloc[0]]
    extra["period"] = [data["period"].iloc[0], data["period"].iloc[0], np.nan]
    data = pd.concat([data, extra], ignore_index=True)
    res = glmer(CBPP_FORMULA, data)
    assert res.nobs == 56
    assert res.llf == pytest.approx(cbpp_fit.llf, abs=1e-9)
    with pytest.raises(ValueError, match="missing"):
        glmer(CBPP_FORMULA, data, missing="raise")


def test_missing_weights_are_dropped(cbpp, cbpp_fit):
    data = pd.concat([cbpp, cbpp.iloc[:2]], ignore_index=True)
    weights = np.concatenate([cbpp["size"].to_numpy(), [np.nan, np.nan]])
    res = glmer("prop ~ period + (1 | herd)", data, weights=weights)
    assert res.nobs == 56
    assert res.llf == pytest.approx(cbpp_fit.llf, abs=1e-9)


def test_subset(cbpp):
    mask = cbpp["herd"].astype(int) <= 10
    res = glmer(CBPP_FORMULA, cbpp, subset=mask)
    ref = glmer(CBPP_FORMULA, cbpp[mask].reset_index(drop=True))
    assert res.nobs == mask.sum()
    assert res.llf == pytest.approx(ref.llf, abs=1e-9)


def test_nagq_validation(cbpp):
    with pytest.raises(ValueError, match="at most 100"):
        glmer(CBPP_FORMULA, cbpp, nAGQ=101)
    with pytest.raises(ValueError, match="non-negative integer"):
        glmer(CBPP_FORMULA, cbpp, nAGQ=-1)
    data = datasets.load_contraception()
    with pytest.raises(ValueError, match="single random-effects term"):
        glmer("use ~ age + (1 | district) + (1 | urban)", data, nAGQ=5)
    with pytest.raises(ValueError, match="quadrature nodes per level"):
        glmer("use ~ age + (1 + age + urban | district)", data, nAGQ=25)


def test_formula_errors(cbpp):
    with pytest.raises(PatsyError, match="no random-effects term"):
        glmer("incidence ~ period", cbpp, family=sm.families.Poisson())
    with pytest.raises(PatsyError, match="'nosuch'"):
        glmer("incidence ~ nosuch + (1 | herd)", cbpp, family=sm.families.Poisson())
    with pytest.raises(PatsyError, match="grouping factor 'nosuch'"):
        glmer("incidence ~ period + (1 | nosuch)", cbpp, family=sm.families.Poisson())


def test_unsupported_family(cbpp):
    with pytest.raises(ValueError, match="1 < var_power < 2"):
        glmer("incidence ~ period + (1 | herd)", cbpp, family=sm.families.Tweedie())


def test_reml_only_for_lmm(cbpp):
    with pytest.raises(ValueError, match="reml"):
        glmer(CBPP_FORMULA, cbpp, reml=True)


def test_conditional_vcov_and_start(cbpp, cbpp_fit):
    res = glmer(CBPP_FORMULA, cbpp, cov_type="conditional",
                start={"theta": [0.6], "beta": cbpp_fit.params.to_numpy()})
    assert res.cov_type == "conditional"
    assert res.llf == pytest.approx(cbpp_fit.llf, abs=1e-6)
    assert not np.allclose(res.bse, cbpp_fit.bse, rtol=1e-4)
    np.testing.assert_allclose(res.bse, cbpp_fit.bse, rtol=0.05)
    with pytest.raises(ValueError, match="start"):
        glmer(CBPP_FORMULA, cbpp, start={"theta": [1, 2]})


def test_nagq0_single_stage(cbpp):
    res = glmer(CBPP_FORMULA, cbpp, nAGQ=0)
    assert res.mle_retvals["stage2_nfev"] == 0
    assert res.cov_type == "conditional"


def test_without_nagq0_init_reaches_same_optimum(cbpp, cbpp_fit):
    res = glmer(CBPP_FORMULA, cbpp, nAGQ0_init=False)
    assert res.llf == pytest.approx(cbpp_fit.llf, abs=1e-5)


@pytest.mark.parametrize("family", [
    sm.families.InverseGaussian(link=sm.families.links.Log()),
    sm.families.Gaussian(link=sm.families.links.Log()),
    sm.families.Gamma(link=sm.families.links.InversePower()),
])
def test_dispersion_families_fit(family):
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(25), 8)
    x = rng.uniform(size=g.size)
    mu = np.exp(0.5 + 0.4 * x + rng.normal(0, 0.3, 25)[g])
    y = rng.gamma(4, mu / 4)
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = glmer("y ~ x + (1 | g)", data, family=family)
    assert res.converged
    assert res.dispersion > 0
    assert list(res.varcorr()["grp"]) == ["g", "Residual"]
    # the dispersion is a maximum of the likelihood
    fit = res.fit_record
    p = res.model.parameters.pack(fit.theta, fit.dispersion, fit.beta)
    f = res.model.deviance_function(1, u0=res.u)
    for h in (-0.01, 0.01):
        q = p.copy()
        q[1] += h
        assert f(q) > res.neg2llf


def test_array_interface(cbpp_fit):
    data = datasets.load_cbpp()
    X = pd.get_dummies(data["period"], drop_first=True, dtype=float)
    X.insert(0, "const", 1.0)
    endog = np.column_stack([data["incidence"], data["size"] - data["incidence"]])
    res = GLMM(endog, X, groups=data["herd"]).fit()
    assert res.llf == pytest.approx(cbpp_fit.llf, abs=1e-8)


def test_rank_deficient_design_is_named(cbpp):
    from statsmodels.tools.sm_exceptions import ValueWarning

    cbpp["p2"] = (cbpp["period"] == "2").astype(float)
    with pytest.warns(ValueWarning, match="dropping 1 column"):
        res = glmer("cbind(incidence, size - incidence) ~ period + p2 + (1 | herd)", cbpp)
    assert res.model.dropped_columns == ["p2"]


def test_one_level_grouping_factor(cbpp):
    cbpp["one"] = "a"
    with pytest.raises(ValueError, match="at least two"):
        glmer("cbind(incidence, size - incidence) ~ period + (1 | one)", cbpp)


def test_singular_fit_warns_once_naming_the_term():
    """lme4's "boundary (singular) fit", as a ConvergenceWarning subclass."""
    rng = np.random.default_rng(6)
    data = pd.DataFrame({"g": np.repeat(np.arange(10), 30).astype(str),
                         "x": rng.normal(size=300)})
    data["y"] = rng.poisson(np.exp(1 + 0.3 * data["x"])).astype(float)
    with pytest.warns(SingularFitWarning, match=r"boundary \(singular\) fit.*\(1 \| g\)") as rec:
        res = glmer("y ~ x + (1 | g)", data, family=sm.families.Poisson())
    assert res.is_singular()
    assert sum(issubclass(w.category, SingularFitWarning) for w in rec) == 1
    assert issubclass(SingularFitWarning, ConvergenceWarning)


def test_concurrent_fits_leave_blas_threads_alone(cbpp):
    import threading

    from threadpoolctl import threadpool_info

    before = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]

    def fit():
        for _ in range(2):
            glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)

    threads = [threading.Thread(target=fit) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [(i["internal_api"], i["num_threads"]) for i in threadpool_info()] == before


def test_diverging_variance_warns():
    """Every group all-0 or all-1: the variance diverges; lme4 calls it converged."""
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(20), 8)
    data = pd.DataFrame({"y": rng.integers(0, 2, 20)[g], "x": rng.normal(size=g.size),
                         "g": g})
    with pytest.warns(BoundaryWarning, match=r"\(1 \| g\).*diverging \(20 of 20 levels"):
        glmer("y ~ x + (1 | g)", data)
    mixed = data.assign(y=np.r_[rng.integers(0, 2, 40), data["y"][40:]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", BoundaryWarning)
        glmer("y ~ x + (1 | g)", mixed)  # a large but finite SD (~6): no warning
