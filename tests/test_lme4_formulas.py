"""Issue "Paste the formula from your R script": R formula strings given verbatim to
glmer() fit lme4's model. References from tests/results/make_reference.R (section
"issue 12"): −2ℓ, the population-level linear predictor (the same model and
coefficients whatever the column names), the number of fixed effects, the RE SDs.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from reference import CASES, RESULTS
from statsmodels_glmm import glmer

FORMULAS = {k: v for k, v in CASES["formulas"].items() if "linpred" in v}
UPDATES = {k: v for k, v in CASES["formulas"].items() if "update" in v}
FAMILY = {"binomial": sm.families.Binomial, "poisson": sm.families.Poisson}


def load(name):
    # as a user would read the CSV R wrote: text stays text, TRUE/FALSE are booleans;
    # R's ordered factor becomes an ordered categorical (coded by contr.poly as in R)
    data = pd.read_csv(RESULTS / "data" / f"{name}.csv")
    if "ord" in data:
        data["ord"] = pd.Categorical(data["ord"], categories=["c", "a", "b"], ordered=True)
    return data


@pytest.fixture(scope="module")
def fits():
    cache = {}

    def get(name):
        if name not in cache:
            case = FORMULAS[name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache[name] = glmer(case.get("python", case["formula"]), load(case["data"]),
                                    family=FAMILY[case["family"]](), weights=case["weights"])
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_same_model_as_lme4(fits, name):
    case = FORMULAS[name]
    res = fits(name)
    assert res.neg2llf == pytest.approx(case["neg2ll"], abs=2e-3)
    assert np.sum(np.isfinite(res.params)) == case["n_fixef"]
    linpred = res.predict(re_form="~0", which="linear")
    np.testing.assert_allclose(linpred, case["linpred"], rtol=2e-3, atol=2e-3)
    sd = np.sort(res.varcorr().query("var2.isna()")["sdcor"].to_numpy())
    np.testing.assert_allclose(sd, np.sort(case["sdcor"]), rtol=0.02, atol=2e-3)


def test_predict_on_new_data_uses_the_fitted_transforms(fits):
    """scale/poly/ns/factor remember the fitted data: predicting the fitted rows
    through newdata reproduces the fit."""
    for name in ("scale_default", "poly_orthogonal", "natural_spline", "relevel",
                 "cut_breaks", "dotted_name", "backtick", "column_named_I", "re_poly"):
        res = fits(name)
        data = load(FORMULAS[name]["data"])
        np.testing.assert_allclose(res.predict(data.iloc[:50], which="linear"),
                                   res.predict(which="linear")[:50], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_update_with_dot_formulas(name):
    case = UPDATES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = glmer(case["base"], load(case["data"]))
        res = base.update(case["update"])
    assert res.neg2llf == pytest.approx(case["neg2ll"], abs=2e-3)


def test_proportion_without_weights_is_an_error():
    with pytest.raises(ValueError, match="needs weights=n"):
        glmer("k/n ~ x + (1 | g)", load("formulas"))


def test_update_data_subset_family():
    data = load("formulas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = glmer("y ~ x + (1 | g)", data)
        half = base.update(data=data.iloc[:120])
        sub = base.update(subset="x > 0")
        probit = base.update(family=sm.families.Binomial(sm.families.links.Probit()))
    assert half.nobs == 120 and sub.nobs == (data["x"] > 0).sum()
    assert probit.model.family.link.__class__.__name__ == "Probit"


def test_pickled_fit_with_r_transforms_predicts(fits):
    import pickle

    res = fits("poly_orthogonal")
    data = load("formulas")
    clone = pickle.loads(pickle.dumps(res))
    np.testing.assert_allclose(clone.predict(data.iloc[:20]), res.predict(data.iloc[:20]),
                               rtol=1e-12)


def test_python_style_formulas_keep_working():
    data = load("formulas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r_style = glmer("y ~ scale(z, center = TRUE, scale = FALSE) + I(x^2) + (1 | g)", data)
        py_style = glmer("y ~ scale(z, center=True, scale=False) + I(x**2) + (1 | g)", data)
    assert py_style.neg2llf == pytest.approx(r_style.neg2llf, abs=1e-10)


def test_gaussian_identity_says_ml_not_lmer_reml():
    from statsmodels.tools.sm_exceptions import ValueWarning

    data = load("formulas")
    with pytest.warns(ValueWarning, match="reml=True for lmer's fit"):
        glmer("x ~ z + (1 | g)", data, family=sm.families.Gaussian())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ValueWarning)
        glmer("x ~ z + (1 | g)", data, family=sm.families.Gaussian(), reml=False)


def test_r_idioms_for_family_offset_and_weights():
    """family='binomial(link = "probit")', offset="log(z)" as an R script writes them."""
    data = load("formulas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = glmer("count ~ x + (1 | g)", data, family="poisson", offset="log(z)")
        b = glmer("count ~ x + offset(log(z)) + (1 | g)", data, family="poisson")
        probit = glmer("k/n ~ x + (1 | g)", data, family='binomial(link = "probit")',
                       weights="n")
    assert a.neg2llf == pytest.approx(b.neg2llf, abs=1e-10)
    assert type(probit.model.family.link).__name__ == "Probit"
    with pytest.raises(ValueError, match="unknown link 'foo'"):
        glmer("y ~ x + (1 | g)", data, family='binomial(link = "foo")')
