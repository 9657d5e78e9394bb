from patsy import PatsyError
import pytest

from statsmodels_glmm.formula_parser import parse_formula, split_top_level


def bars(formula):
    return [(b.expr, b.factors, b.group_name) for b in parse_formula(formula).bars]


def test_fixed_and_random_parts():
    p = parse_formula("y ~ x + I(x**2) + (1 + x | g)")
    assert p.fixed_formula == "y ~ x + I(x**2)"
    assert bars("y ~ x + (1 + x | g)") == [("1 + x", ("g",), "g")]


def test_cbind_response():
    p = parse_formula("cbind(incidence, size - incidence) ~ period + (1 | herd)")
    assert p.cbind == ("incidence", "size - incidence")
    assert p.fixed_formula == "r_I(incidence) + r_I(size - incidence) ~ period"


def test_double_bar_expands_to_independent_terms():
    assert bars("y ~ x + (x || g)") == [("1", ("g",), "g"), ("0 + x", ("g",), "g")]
    assert bars("y ~ (0 + x + z || g)") == [("0 + x", ("g",), "g"), ("0 + z", ("g",), "g")]


def test_nesting_follows_lme4():
    assert bars("y ~ (1 | a/b)") == [("1", ("b", "a"), "b:a"), ("1", ("a",), "a")]
    assert [b[2] for b in bars("y ~ (1 | a/b/c)")] == ["c:(b:a)", "b:a", "a"]


def test_interaction_grouping():
    assert bars("y ~ (1 | a:b)") == [("1", ("a", "b"), "a:b")]


def test_offsets_and_intercept_only():
    p = parse_formula("y ~ (1 | g) + offset(log(t))")
    assert p.offsets == ["log(t)"]
    assert p.fixed_rhs == "1"
    assert parse_formula("y ~ 0 + x + (1|g)").fixed_rhs == "0 + x"
    assert parse_formula("y ~ -1 + x + (1|g)").fixed_rhs == "1 - 1 + x"


def test_split_ignores_nested_parentheses():
    assert [p for _, p in split_top_level("a + f(b + c) + (d | e)", "+")] == [
        "a", "f(b + c)", "(d | e)"]


@pytest.mark.parametrize("formula, message", [
    ("y ~ x + (1 | )", "no grouping factor"),
    ("y ~ x + ( | g)", "no covariates"),
    ("y ~ x + (1 | g", "unbalanced"),
    ("~ x + (1|g)", "no response"),
    ("y x (1|g)", "response ~ terms"),
    ("cbind(a) ~ x + (1|g)", "exactly two"),
    ("y ~ (1 | log(g))", "column name"),
    ("y ~ x - (1|g)", "subtract"),
])
def test_malformed_formulas(formula, message):
    with pytest.raises(PatsyError, match=message):
        parse_formula(formula)
