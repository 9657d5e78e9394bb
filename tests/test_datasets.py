import pandas as pd
import pytest

from statsmodels_glmm import datasets


def test_available():
    assert {"cbpp", "Contraception", "grouseticks", "VerbAgg", "toy"} <= set(datasets.available())


def test_factors_keep_r_levels():
    cbpp = datasets.load_cbpp()
    assert cbpp.shape == (56, 4)
    assert isinstance(cbpp["period"].dtype, pd.CategoricalDtype)
    assert list(cbpp["period"].cat.categories) == ["1", "2", "3", "4"]
    contra = datasets.load_contraception()
    assert list(contra["livch"].cat.categories) == ["0", "1", "2", "3+"]
    assert contra.shape == (1934, 6)


def test_fresh_copies_and_case_insensitive():
    a = datasets.load("CBPP")
    a.loc[0, "size"] = -1
    assert datasets.load_cbpp().loc[0, "size"] == 14


def test_unknown():
    with pytest.raises(ValueError, match="bundled datasets are"):
        datasets.load("nope")
