"""The model frame: response expressions, nullable and odd dtypes, missing values."""

import numpy as np
import pandas as pd
from patsy import PatsyError
import pytest
from statsmodels.tools.sm_exceptions import ValueWarning

from statsmodels_glmm import glmer

FORMULA = "y ~ x + (1 | g)"


@pytest.mark.parametrize("column, lhs", [
    (lambda y: y.astype(bool), 'Q("my y")'),
    (lambda y: pd.Categorical(np.where(y == 1, "yes", "no")), 'Q("my y")'),
    (lambda y: np.where(y == 1, "yes", "no"), 'Q("my y")'),
    (lambda y: np.where(y == 1, "Yes", "no"), 'Q("my y")'),  # R's order: "no" < "Yes"
    (lambda y: pd.array(y.astype(bool), dtype="boolean"), 'Q("my y")'),
    (lambda y: y, 'I(Q("my y") > 0)'),
    (lambda y: np.where(y == 1, "yes", "no"), '(Q("my y") == "yes")'),
])
def test_two_level_response_through_any_expression(binary_data, binary_fit, column, lhs):
    data = binary_data.assign(**{"my y": column(binary_data["y"].to_numpy())})
    res = glmer(f"{lhs} ~ x + (1 | g)", data)
    np.testing.assert_allclose(res.params, binary_fit.params, rtol=1e-6)
    assert res.neg2llf == pytest.approx(binary_fit.neg2llf, abs=1e-8)


def test_bar_in_response_refused(binary_data):
    data = binary_data.assign(gi=binary_data["g"] % 3)
    with pytest.raises(PatsyError, match="response 'y \\| gi'.*contains '\\|'"):
        glmer("y | gi ~ x + (1 | g)", data)


def test_multi_level_response(binary_data, count_data):
    """R's binomial: the first level is failure, all others success (with a warning)."""
    data = binary_data.assign(y3=np.where(binary_data["y"] == 0, "a",
                                          np.tile(["b", "c"], 150)))
    with pytest.warns(ValueWarning, match="'y3' has 3 levels.*'a'.*failure"):
        res = glmer("y3 ~ x + (1 | g)", data)
    assert res.neg2llf == pytest.approx(glmer("y ~ x + (1 | g)", binary_data).neg2llf,
                                        abs=1e-8)
    with pytest.raises(ValueError, match="'y3' has 3 levels"):
        glmer("y3 ~ x + (1 | g)", data, family="poisson")
    stamp = count_data.assign(y=pd.to_datetime(count_data["y"], unit="D"))
    with pytest.raises(ValueError, match="response 'y' is a datetime64"):
        glmer("y ~ x + (1 | g)", stamp, family="poisson")


def _with_missing(data, every):
    rows = np.arange(len(data))
    return np.where(rows % every == 0, None, data)


def test_nullable_columns_with_pd_na_drop_rows(binary_data):
    n = len(binary_data)
    data = binary_data.assign(
        yb=pd.array(_with_missing(binary_data["y"].astype(bool), 23), dtype="boolean"),
        xn=pd.array(_with_missing(binary_data["x"], 17), dtype="Float64"),
        gn=pd.array(_with_missing(binary_data["g"], 19), dtype="Int64"),
        fs=pd.array(_with_missing(pd.Series(np.tile(["a", "b"], n // 2)), 29), dtype="string"))
    res = glmer("yb ~ xn + fs + (1 | gn)", data)
    keep = np.all([np.arange(n) % k != 0 for k in (23, 17, 19, 29)], axis=0)
    ref = glmer("y ~ x + fs + (1 | g)", binary_data.assign(fs=np.tile(["a", "b"], n // 2))[keep])
    assert res.nobs == keep.sum()
    assert res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-8)
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-6)
    pred = res.predict(data)  # the same dtypes in new data
    np.testing.assert_allclose(pred[keep], res.fittedvalues, rtol=1e-10)


def test_unused_categories_and_categorical_newdata(binary_data):
    f = pd.Categorical(np.where(binary_data["x"] > 0, "hi", "lo"), categories=["zz", "lo", "hi"])
    data = binary_data.assign(f=f)
    res = glmer("y ~ f + (1 | g)", data)
    assert list(res.params.index) == ["Intercept", "f[T.hi]"]  # baseline: first used level
    other = data.assign(f=pd.Categorical(data["f"].astype(str), categories=["hi", "lo"]))
    np.testing.assert_allclose(res.predict(other), res.fittedvalues, rtol=1e-12)


def test_date_covariate_needs_an_explicit_choice(binary_data):
    data = binary_data.assign(day=pd.Timestamp("2020-01-01")
                              + pd.to_timedelta(binary_data["g"] % 3, unit="D"))
    with pytest.raises(ValueError, match="column 'day' in the fixed effects is a datetime"):
        glmer("y ~ day + (1 | g)", data)
    res = glmer("y ~ C(day) + (1 | g)", data)
    assert len(res.params) == 3


def test_input_not_mutated(binary_data):
    data = binary_data.assign(**{"my y": binary_data["y"].astype(bool)},
                              xn=pd.array(binary_data["x"], dtype="Float64"))
    before = data.copy(deep=True)
    glmer('Q("my y") ~ xn + (1 | g)', data, subset="x > -2")
    pd.testing.assert_frame_equal(data, before)


def test_endog_names_is_the_response_as_written(binary_data):
    data = binary_data.assign(**{"my y": binary_data["y"].astype(bool)})
    assert glmer('Q("my y") ~ x + (1 | g)', data).model.endog_names == 'Q("my y")'
    assert glmer("y ~ x + (1 | g)", binary_data).model.endog_names == "y"


def test_duplicated_index_labels(binary_data):
    """A concat leaves repeated labels: complete rows are chosen by position."""
    data = binary_data.copy()
    data.index = list(range(150)) * 2
    x = data["x"].to_numpy().copy()
    x[5] = np.nan
    data["x"] = x
    res = glmer(FORMULA, data)
    ref = glmer(FORMULA, binary_data.drop(index=[5]))
    assert res.nobs == 299 and res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-10)
    assert list(res.fittedvalues.index[:6]) == [0, 1, 2, 3, 4, 6]
