import numpy as np
import pandas as pd

from statsmodels_glmm.formula_parser import parse_formula
from statsmodels_glmm.re_terms import build_random_effects, group_codes


def make_data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.integers(0, 12, n), "b": rng.integers(0, 3, n),
                         "c": rng.choice(list("xyz"), n), "x": rng.normal(size=n)})


def random_effects(formula, data):
    return build_random_effects(parse_formula(formula).bars, data)


def test_theta_layout_and_bounds():
    re = random_effects("y ~ (1 + x | a)", make_data())
    (term,) = re.terms
    assert term.cnames == ["(Intercept)", "x"]
    assert term.theta_rows_cols == [(0, 0), (1, 0), (1, 1)]
    np.testing.assert_array_equal(re.theta_start(), [1, 0, 1])
    np.testing.assert_array_equal(re.theta_lower(), [0, -np.inf, 0])
    T = term.factor(np.array([2.0, 0.5, 3.0]))
    np.testing.assert_array_equal(T, [[2, 0], [0.5, 3]])


def test_terms_sorted_by_levels_and_nesting_detected():
    re = random_effects("y ~ (1 | c) + (1 | a) + (1 | a:b)", make_data())
    assert [t.group_name for t in re.terms] == ["a:b", "a", "c"]
    assert re.nested == [True, True, False]


def test_z_and_lambda():
    data = make_data()
    re = random_effects("y ~ (1 + x | a) + (1 | c)", data)
    theta = np.array([1.5, 0.2, 0.7, 0.4])
    Z = re.sparse_z().toarray()
    Lam = re.relative_factor(theta).toarray()
    u = np.random.default_rng(1).normal(size=re.n_re)
    eta = re.linear_predictor(re.scaled_covariates(theta), u)
    np.testing.assert_allclose(eta, Z @ Lam @ u)
    b = re.conditional_modes(theta, u)
    np.testing.assert_allclose(np.concatenate([bi.ravel() for bi in b]), Lam @ u)


def test_group_codes_follow_r_level_order():
    frame = pd.DataFrame({"g": pd.Categorical(["b", "a", "b"], categories=["b", "a", "c"]),
                          "h": [2, 10, 1]})
    codes, labels = group_codes(frame, ("g",))
    assert list(labels) == ["b", "a"]  # unused level "c" dropped
    codes, labels = group_codes(frame, ("h",))
    assert list(labels) == ["1", "2", "10"]  # numeric order, not string order
    codes, labels = group_codes(frame, ("g", "h"))
    assert list(labels) == ["b:1", "b:2", "a:10"]
