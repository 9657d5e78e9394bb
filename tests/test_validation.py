"""One validation layer: every bad argument gets a specific error from our code,
never a numpy/scipy/pandas/nlopt traceback."""

import traceback

import numpy as np
import pandas as pd
from patsy import PatsyError
import pytest
import statsmodels.api as sm
from statsmodels.genmod.families import links

from statsmodels_glmm import GLMM, glmer

FORMULA = "y ~ x + (1 | g)"


def raised_in_package(excinfo):
    """The exception was raised by statsmodels_glmm itself (a clear message)."""
    last = traceback.extract_tb(excinfo.value.__traceback__)[-1]
    return "statsmodels_glmm" in last.filename


def check_error(call, match, error=(ValueError, TypeError, PatsyError)):
    with pytest.raises(error, match=match) as excinfo:
        call()
    assert raised_in_package(excinfo), excinfo.traceback[-1]


# -- family and link --------------------------------------------------------------------
@pytest.mark.parametrize("family, match", [
    (sm.families.Binomial(links.LogC()), "logc link does not fit the Binomial"),
    (3, "statsmodels family"),
    ("poison", "unknown family 'poison'"),
    (sm.families.Tweedie(), "Tweedie family needs 1 < var_power < 2"),
    (sm.families.Tweedie(var_power=2.5), "Tweedie family needs 1 < var_power < 2"),
])
def test_family_refused(binary_data, family, match):
    check_error(lambda: glmer(FORMULA, binary_data, family=family), match)


def test_links_outside_the_family_refused(count_data):
    # statsmodels >= 0.15 refuses these at construction, older versions only warn:
    # set the link behind its check, as an older statsmodels would have let through
    for fam, link in [(sm.families.Poisson, links.Logit), (sm.families.Binomial,
                                                          links.InversePower)]:
        family = fam()
        family._link = link()
        check_error(lambda f=family: glmer(FORMULA, count_data, family=f),
                    "link does not fit the")


def test_family_by_class_or_r_name(count_data):
    ref = glmer(FORMULA, count_data, family=sm.families.Poisson())
    for family in (sm.families.Poisson, "poisson"):
        res = glmer(FORMULA, count_data, family=family)
        assert res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-10)


# -- data and subset ----------------------------------------------------------------------
class _ToPandas:  # polars and pyarrow frames offer to_pandas()
    def __init__(self, frame):
        self.frame = frame

    def to_pandas(self):
        return self.frame.copy()


def test_foreign_frames_converted_or_refused(binary_data, binary_fit):
    res = glmer(FORMULA, _ToPandas(binary_data))
    assert res.neg2llf == pytest.approx(binary_fit.neg2llf, abs=1e-10)
    check_error(lambda: glmer(FORMULA, [1, 2, 3]), "pass a pandas DataFrame")


@pytest.mark.parametrize("subset, match", [
    (np.ones(10, dtype=bool), "subset has 10 values"),
    (pd.Series([True] * 299 + [None]), "missing value"),
    (pd.Series(True, index=range(5, 305)), "index does not match"),
    ([1, 2, 1000], "not in the index"),
    ("nosuch > 1", "not an expression over the columns"),
    ("x + 1", "True/False per row"),
])
def test_bad_subset(binary_data, subset, match):
    check_error(lambda: glmer(FORMULA, binary_data, subset=subset), match)


def test_subset_expression_as_r(binary_data):
    res = glmer(FORMULA, binary_data, subset="x > -1 & g < 25")
    mask = (binary_data["x"] > -1) & (binary_data["g"] < 25)
    ref = glmer(FORMULA, binary_data[mask])
    assert res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-10)


# -- weights and offset ---------------------------------------------------------------------
@pytest.mark.parametrize("what", ["weights", "offset"])
def test_weights_offset_values(count_data, what):
    n = len(count_data)
    bad = np.ones(n)
    bad[3] = np.inf
    check_error(lambda: glmer(FORMULA, count_data, family="poisson", **{what: bad}),
                f"{what} has infinite values")
    check_error(lambda: glmer(FORMULA, count_data, family="poisson",
                              **{what: np.array(["a"] * n)}), f"{what} must be numeric")
    check_error(lambda: glmer(FORMULA, count_data, family="poisson",
                              **{what: count_data.assign(t="a")["t"].to_numpy()}),
                "must be numeric")
    check_error(lambda: glmer(FORMULA, count_data, family="poisson", **{what: np.ones(4)}),
                "length 4")


def test_all_zero_weights(count_data):
    check_error(lambda: glmer(FORMULA, count_data, family="poisson",
                              weights=np.zeros(len(count_data))), "all zero")


def test_nullable_weights_drop_rows(count_data):
    w = pd.array(np.where(np.arange(len(count_data)) % 9 == 0, None, 1.0), dtype="Float64")
    res = glmer(FORMULA, count_data.assign(w=w), family="poisson", weights="w")
    ref = glmer(FORMULA, count_data[np.arange(len(count_data)) % 9 != 0], family="poisson")
    assert res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-8)


# -- fit options -----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"start": [1, 2]}, "start\\['theta'\\] must have 1 elements"),
    ({"start": "theta"}, "start must be a dict"),
    ({"start": {"theta": [np.nan]}}, "non-finite"),
    ({"start": {"theta": [-1.0]}}, "below their lower bound"),
    ({"start": {"beta": [1.0]}}, "must have 2 elements"),
    ({"start": {"sigma": 1}}, "unknown start values"),
    ({"start": {"phi": 2.0}}, "only for families with a dispersion"),
    ({"maxfun": "100"}, "maxfun must be a positive integer"),
    ({"maxfun": 0}, "maxfun must be a positive integer"),
    ({"maxfun": 2.5}, "maxfun must be a positive integer"),
    ({"blas_threads": "x"}, "blas_threads"),
    ({"blas_threads": -1}, "blas_threads"),
    ({"calc_hessian": "yes"}, "calc_hessian"),
    ({"boundary_tol": -1}, "boundary_tol"),
    ({"cov_type": "robust"}, "cov_type"),
    ({"nAGQ": True}, "nAGQ"),
    ({"missing": "skip"}, "missing must be"),
])
def test_bad_fit_arguments(binary_data, kwargs, match):
    check_error(lambda: glmer(FORMULA, binary_data, **kwargs), match)


def test_bad_dispersion_start():
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"y": rng.gamma(2, 1, 100), "g": np.repeat(np.arange(10), 10)})
    check_error(lambda: glmer("y ~ 1 + (1 | g)", data,
                              family=sm.families.Gamma(links.Log()), start={"phi": -1}),
                "start\\['phi'\\] must be a positive number")


# -- array input ------------------------------------------------------------------------------
def test_array_input_missing_values(binary_data):
    y = binary_data["y"].to_numpy(dtype=float)
    X = sm.add_constant(binary_data["x"].to_numpy())
    g = binary_data["g"].to_numpy(dtype=float)
    y[3], X[10, 1], g[20] = np.nan, np.nan, np.nan
    check_error(lambda: GLMM(y, X, groups=g), "missing values in endog .* groups")
    res = GLMM(y, X, groups=g, missing="drop").fit()
    keep = np.ones(len(y), dtype=bool)
    keep[[3, 10, 20]] = False
    ref = GLMM(y[keep], X[keep], groups=g[keep]).fit()
    assert res.nobs == keep.sum()
    assert res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-10)
    groups = binary_data["g"].to_numpy().astype(object)
    groups[5] = None
    check_error(lambda: GLMM(binary_data["y"], X, groups=groups), "groups")


def test_array_input_shapes(binary_data):
    y = binary_data["y"].to_numpy()
    X = sm.add_constant(binary_data["x"].to_numpy())
    check_error(lambda: GLMM(y, X, groups=binary_data["g"].to_numpy()[:-3]),
                "groups has length 297")
    check_error(lambda: GLMM(y, X, groups=np.ones((len(y), 2))), "one-dimensional")
    check_error(lambda: GLMM(y, X), "pass random_effects or groups")
