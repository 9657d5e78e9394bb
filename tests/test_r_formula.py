"""R's formula language translated for patsy, checked against R.

The reference numbers come from tests/results/make_r_formula_reference.R
(poly / scale / ns / bs / cut / factor / relevel, fitted and predicted, and
model.matrix of R formulas on a small data frame stored in the JSON).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from patsy import EvalEnvironment, PatsyError, build_design_matrices, dmatrix
import pytest

from statsmodels_glmm.formula_parser import parse_formula
from statsmodels_glmm.r_formula import (
    R_NAMESPACE,
    character_levels,
    expand_dot,
    r_sort_key,
    translate,
    update_formula,
)

REF = json.loads((Path(__file__).parent / "results" / "r_formula_reference.json").read_text())
ENV = EvalEnvironment([R_NAMESPACE])


def _frame(records):
    return pd.DataFrame.from_records(records)


DATA = _frame(REF["data"])
NEWX = np.array(REF["newx"], dtype=float)


def _r_matrix(entry):
    return np.array(entry["values"], dtype=float).reshape(len(entry["values"]), -1)


def _design(rhs, data):
    return dmatrix(translate(rhs, data, r_column_order=True), data, eval_env=ENV,
                   NA_action="raise")


def _assert_matrix(actual, entry, rtol=1e-9, atol=1e-10):
    expected = _r_matrix(entry)
    actual = np.asarray(actual, dtype=float)
    assert actual.shape == expected.shape, (actual.shape, entry["colnames"])
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------
# transforms, fitted and on new data
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("expr", sorted(REF["transforms"]))
def test_transform_matches_r(expr):
    ref = REF["transforms"][expr]
    frame = DATA[["x"]]
    design = dmatrix(translate("0 + " + expr, frame), frame, eval_env=ENV)
    _assert_matrix(design, ref["fit"])
    new = build_design_matrices([design.design_info], {"x": NEWX})[0]
    _assert_matrix(new, ref["predict"])


def test_transforms_are_stateful_for_patsy():
    for name in ["factor", "as_factor", "relevel", "scale", "poly", "ns", "bs", "cut", "dummy"]:
        assert hasattr(R_NAMESPACE[name], "__patsy_stateful_transform__"), name


def test_poly_degree_too_high_and_polym_refused():
    with pytest.raises(PatsyError, match="less than number of unique"):
        R_NAMESPACE["poly"](np.array([1.0, 2.0, 1.0]), 2)
    with pytest.raises(PatsyError, match="polym"):
        R_NAMESPACE["poly"](np.arange(5.0), np.arange(5.0), degree=2)


def test_scale_and_splines_keep_missing_rows():
    x = np.array([0.1, np.nan, 0.5, 0.9, 0.3])
    assert np.isnan(R_NAMESPACE["scale"](x)[1])
    np.testing.assert_allclose(np.nanmean(R_NAMESPACE["scale"](x)), 0, atol=1e-15)
    basis = R_NAMESPACE["ns"](x, df=2)
    assert basis.shape == (5, 2) and np.isnan(basis[1]).all() and not np.isnan(basis[0]).any()


# ---------------------------------------------------------------------------
# cut, factor, relevel, level orders
# ---------------------------------------------------------------------------


def _code(expr, columns):
    """Python code of one R variable (the term translate() writes)."""
    return translate("0 + " + expr, columns).split(" + ", 1)[1]


@pytest.mark.parametrize("expr", sorted(REF["cuts"]))
def test_cut_matches_r(expr):
    ref = REF["cuts"][expr]
    value = ENV.eval(_code(expr, ["x"]), inner_namespace={"x": DATA["x"].to_numpy()})
    assert list(value.categories) == ref["levels"]
    assert list(value.astype(object)) == ref["values"]


def test_cut_labels_false_gives_codes():
    codes = R_NAMESPACE["cut"](np.array([0.1, 0.5, 0.9, 2.0]), [0, 0.4, 1], labels=False)
    np.testing.assert_array_equal(codes, [1, 2, 2, np.nan])


def test_character_levels_follow_r_collation():
    words = REF["words"]
    assert character_levels(words) == REF["factors"]["factor(words)"]
    assert sorted(words, key=r_sort_key) == REF["factors"]["factor(words)"]
    assert character_levels(["WT", "mutant"]) == ["mutant", "WT"]
    assert character_levels(["b", "B", "a", None, np.nan]) == ["a", "b", "B"]


def test_character_levels_numbers_booleans_categoricals():
    assert character_levels([10, 9, 100, 9.5]) == [9, 9.5, 10, 100]
    assert character_levels([True, False, True]) == [False, True]
    cat = pd.Series(pd.Categorical(["z", "a"], categories=["z", "q", "a"]))
    assert character_levels(cat) == ["z", "a"]


@pytest.mark.parametrize("key, code, namespace", [
    ("factor(words)", "factor(words)", {}),
    ("factor(c(10, 9, 100, 9.5))", "factor(c(10, 9, 100, 9.5))", {}),
    ("factor(c(TRUE, FALSE, TRUE))", "factor(c(True, False, True))", {}),
    ('relevel(factor(words), "WT")', 'relevel(factor(words), "WT")', {}),
    ("relevel(factor(d$yr), 3)", "relevel(factor(yr), 3)", {"yr": DATA["yr"]}),
    ("as.character(c(10, 9, 100))", "as_character(c(10, 9, 100))", {}),
    ("factor(d$geno)", "factor(geno)", {"geno": DATA["geno"]}),
    ("factor(d$f)", "factor(f)", {"f": DATA["f"]}),
])
def test_factor_levels_match_r(key, code, namespace):
    value = ENV.eval(code, inner_namespace={"words": np.array(REF["words"], dtype=object),
                                            **namespace})
    assert list(value.categories) == REF["factors"][key]


def test_factor_refuses_new_levels_on_new_data():
    design = dmatrix("factor(g)", {"g": ["a", "b", "a"]}, eval_env=ENV)
    with pytest.raises(PatsyError, match="new level"):
        build_design_matrices([design.design_info], {"g": ["a", "c"]})


def test_factor_explicit_levels_and_labels():
    f = R_NAMESPACE["factor"](np.array(["x", "y", "z"], dtype=object), levels=["y", "x"],
                              labels=["Y", "X"])
    assert list(f.categories) == ["Y", "X"]
    assert list(f.astype(object)[:2]) == ["X", "Y"] and pd.isna(f[2])


def test_dummy():
    f = np.array(["a", "b", None, "c"], dtype=object)
    np.testing.assert_array_equal(R_NAMESPACE["dummy"](f, "b"), [0, 1, np.nan, 0])
    both = R_NAMESPACE["dummy"](f, R_NAMESPACE["c"]("a", "c"))
    assert both.shape == (4, 2)
    assert R_NAMESPACE["dummy"](f).shape == (4, 3)


# ---------------------------------------------------------------------------
# model.matrix of whole formulas
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("formula", list(REF["matrices"]))
def test_design_matches_model_matrix(formula):
    rhs = formula.split("~", 1)[1]
    _assert_matrix(_design(rhs, DATA), REF["matrices"][formula])


@pytest.mark.parametrize("formula", list(REF["matrices"]))
def test_patsy_order_has_r_columns(formula):
    """The default translation: R's columns (values and coding) in patsy's order."""
    rhs = formula.split("~", 1)[1]
    actual = np.asarray(dmatrix(translate(rhs, DATA), DATA, eval_env=ENV, NA_action="raise"))
    expected = _r_matrix(REF["matrices"][formula])
    assert actual.shape == expected.shape
    unmatched = list(range(actual.shape[1]))
    for col in expected.T:
        hit = next(j for j in unmatched if np.allclose(actual[:, j], col, atol=1e-10))
        unmatched.remove(hit)


def test_default_keeps_factors_whole(binary_terms=("x + geno", "x * geno")):
    for rhs in binary_terms:
        names = dmatrix(translate(rhs, DATA), DATA, eval_env=ENV).design_info.term_names
        assert "geno" in names or any(n.startswith("factor(geno)") for n in names), names


def test_design_names_follow_patsy():
    names = _design("relevel(factor(f), 'b') * x", DATA).design_info.column_names
    assert names[:4] == ["Intercept", 'relevel(factor(f), "b")[T.a]',
                         'relevel(factor(f), "b")[T.B]', "x"]
    # patsy alone would put the factor first; written as indicators it stays in R's place
    assert _design("x + geno", DATA).design_info.column_names == [
        "Intercept", "x", 'dummy(geno, "WT")']


@pytest.mark.parametrize("formula", list(REF["predictions"]))
def test_prediction_matches_r(formula):
    rhs = formula.split("~", 1)[1]
    design = _design(rhs, DATA)
    newdata = _frame(REF["newdata"])
    _assert_matrix(build_design_matrices([design.design_info], newdata)[0],
                   REF["predictions"][formula])


@pytest.mark.parametrize("formula", list(REF["names_matrices"]))
def test_columns_named_like_functions(formula):
    data = _frame(REF["d_names"])
    rhs = formula.split("~", 1)[1]
    text = translate(rhs, data)
    assert 'Q("I")' in text or 'Q("scale")' in text
    _assert_matrix(_design(rhs, data), REF["names_matrices"][formula])


@pytest.mark.parametrize("formula", list(REF["dot_matrices"]))
def test_dot_expansion_matches_r(formula):
    data = DATA[["y", "x", "z", "geno", "silly name"]]
    rhs = expand_dot(formula.split("~", 1)[1], data, exclude=["y"])
    _assert_matrix(_design(rhs, data), REF["dot_matrices"][formula])


def test_expand_dot_leaves_calls_and_bars():
    out = expand_dot(". + log(.) + (1 | g)", ["y", "a b", "x"], exclude=["y"])
    assert out == "(`a b` + x) + log(.) + (1 | g)"


# ---------------------------------------------------------------------------
# translate(): text
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("rhs, expected", [
    ("x + z", "1 + x + z"),
    ("`silly period` + site.index", '1 + Q("silly period") + Q("site.index")'),
    ("I(x^2) + log(z + 1)", "1 + I(x ** 2) + log(z + 1)"),
    ("(x + z + w)^2", "1 + x + z + w + x:z + x:w + z:w"),
    ("x^2", "1 + x"),
    ("x %in% z", "1 + x:z"),
    ("x*z - x", "1 + z + x:z"),
    ("x/z", "1 + x + x:z"),
    ("-1 + x", "0 + x"),
    ("x + 0", "0 + x"),
    ("as.factor(z) + as.numeric(x)", "1 + as_factor(z) + as_numeric(x)"),
    ("I(x == TRUE) + I(z > F)", "1 + I(x == True) + I(z > False)"),
    ("I(!(x > 1) & z < 2)", "1 + I(~(x > 1) & (z < 2))"),
    ("splines::ns(x, df = 3, Boundary.knots = c(0, 1))",
     "1 + ns(x, df=3, Boundary_knots=c(0, 1))"),
    ("I(-x^2) + I((-x)^2)", "1 + I(-x ** 2) + I((-x) ** 2)"),
    ("1", "1"),
    ("0", "0"),
])
def test_translate_text(rhs, expected):
    assert translate(rhs, ["x", "z", "w", "silly period", "site.index"]) == expected


def test_formula_level_power_is_interaction_in_patsy_too():
    frame = DATA[["x"]]
    assert dmatrix("x**2", frame).design_info.column_names == ["Intercept", "x"]


def test_names_only_treat_columns_as_numeric():
    assert translate("f * x", ["f", "x"]) == "1 + f + x + f:x"


@pytest.mark.parametrize("rhs, message", [
    ("x + site.idx", "'site.idx' is neither a column"),
    ("as.whatever(x)", "'as.whatever' is not a known function"),
    ("x + (1 | g)", "random-effects term"),
    ("x + .", "expand_dot"),
    ("ordered(f)", "ordered factors"),
    ("x + 2", "not a valid term"),
    ("x + d$x", "indexing"),
    ("x + offset(log(z))", "offset"),
    ("(x + z)^w", "invalid power"),
    ("x %o% z", "%o%"),
    ("I(x:z)", "sequence operator"),
])
def test_translate_errors(rhs, message):
    with pytest.raises(PatsyError, match=message.replace("$", r"\$").replace("(", r"\(")):
        translate(rhs, ["x", "z", "f", "g", "site.index", "d"])


def test_reordering_needs_levels():
    with pytest.raises(PatsyError, match="pass the data frame"):
        translate("x + factor(f)", ["x", "f"], r_column_order=True)
    assert translate("x + factor(f)", ["x", "f"]) == "1 + x + factor(f)"  # patsy's order


def test_non_treatment_contrasts_out_of_place_refused():
    with pytest.raises(PatsyError, match="non-treatment"):
        translate("x + C(factor(f), contr.helmert)", DATA, r_column_order=True)


# ---------------------------------------------------------------------------
# update()
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("new", list(REF["updates"]))
def test_update_matches_r(new):
    out = update_formula("y ~ x + z + (1 | g)", new)
    assert out == REF["updates"][new]
    parse_formula(out)


def test_update_removing_a_bar_leaves_parse_formula_happy():
    out = update_formula("y ~ x + (1 | g) + (x || h)", ". ~ . - (1 | g)")
    assert out == "y ~ x + (x || h)"
    parsed = parse_formula(out)
    assert parsed.fixed_rhs == "x" and len(parsed.bars) == 2
