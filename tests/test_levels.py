"""Grouping levels: one canonical rule (R's as.character) for fitting and predicting."""

import numpy as np
import pandas as pd
import pytest

from statsmodels_glmm import glmer
from statsmodels_glmm.levels import factor_codes, level_label, lookup_codes


@pytest.mark.parametrize("value, label", [
    (1, "1"), (np.int8(1), "1"), (1.0, "1"), (np.float32(2.0), "2"), ("1", "1"),
    (2.5, "2.5"), (True, "TRUE"), (np.bool_(False), "FALSE"),
    (pd.Timestamp("2020-01-02"), "2020-01-02"), (np.datetime64("2020-01-02T00:00", "s"),
                                                 "2020-01-02"),
    (pd.Timestamp("2020-01-02 03:04:05"), "2020-01-02 03:04:05"),
])
def test_level_label(value, label):
    assert level_label(value) == label


def test_values_equal_for_r_are_one_level():
    codes, labels = factor_codes(pd.Series([1, "1", 1.0, 2, "b", None], dtype=object))
    assert labels == ["1", "2", "b"]
    np.testing.assert_array_equal(codes, [0, 0, 0, 1, 2, -1])


def test_level_order_numeric_datetime_categorical():
    assert factor_codes(pd.Series([10, 2, 33]))[1] == ["2", "10", "33"]
    dates = pd.Series(pd.to_datetime(["2021-01-01", "2020-05-01"]))
    assert factor_codes(dates)[1] == ["2020-05-01", "2021-01-01"]
    cat = pd.Series(pd.Categorical(["b", "a", "b"], categories=["z", "b", "a"]))
    assert factor_codes(cat)[1] == ["b", "a"]  # its own order, unused level dropped


def test_lookup_codes_matches_across_dtypes():
    labels = ["1", "2", "3"]
    for values in (pd.Series([1.0, 3.0, np.nan, 4.0]), pd.Series(["1", "3", None, "4"]),
                   pd.Series(pd.array([1, 3, None, 4], dtype="Int64"))):
        codes, _, missing = lookup_codes(values, labels)
        np.testing.assert_array_equal(codes, [0, 2, -1, -1])
        np.testing.assert_array_equal(missing, [False, False, True, False])


@pytest.mark.parametrize("convert", [
    lambda g: g.astype(float),
    lambda g: g.astype(str),
    lambda g: g.astype(object).where(g % 3 > 0, g.astype(str)),
    lambda g: pd.Series(pd.array(g, dtype="Int64"), index=g.index),
    lambda g: pd.Series(pd.Categorical(g, categories=sorted(set(g), reverse=True)),
                        index=g.index),
])
def test_predict_on_fitted_rows_whatever_the_group_dtype(binary_data, binary_fit, convert):
    new = binary_data.assign(g=convert(binary_data["g"]))
    for allow in (False, True):
        pred = binary_fit.predict(new, allow_new_levels=allow)
        np.testing.assert_allclose(pred, binary_fit.fittedvalues, rtol=1e-12)


def test_datetime_grouping_factor(binary_data):
    data = binary_data.assign(day=pd.Timestamp("2020-01-01")
                              + pd.to_timedelta(binary_data["g"], unit="D"))
    res = glmer("y ~ x + (1 | day)", data)
    ref = glmer("y ~ x + (1 | g)", binary_data)
    assert res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-8)
    # new data with another resolution, or the dates as text, finds every level
    for day in (data["day"].astype("datetime64[s]"), data["day"].dt.strftime("%Y-%m-%d")):
        pred = res.predict(data.assign(day=day), allow_new_levels=True)
        np.testing.assert_allclose(pred, res.fittedvalues, rtol=1e-12)


def test_mixed_object_group_is_one_level_per_r_label(binary_data):
    g = binary_data["g"].astype(object)
    g[::7] = g[::7].map(str)
    res = glmer("y ~ x + (1 | g)", binary_data.assign(g=g))
    assert res.model.random_effects.terms[0].n_levels == 30
    ref = glmer("y ~ x + (1 | g)", binary_data)
    assert res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-8)
