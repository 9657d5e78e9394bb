"""Warm starts extrapolated along the optimizer's path (partitioned.extrapolation):
the weights, the partitions' combination, and the deviance they lead to."""

from conftest import simulate_crossed
import numpy as np
import pytest
import statsmodels.api as sm

from statsmodels_glmm import GLMM
from statsmodels_glmm.partitioned import devfun, extrapolation, kernels
from statsmodels_glmm.partitioned.data import split_model
from statsmodels_glmm.partitioned.extrapolation import (
    ModeTrail,
    combine_stored,
    mode_scale,
    rescaled_start,
    scalar_terms,
)
from statsmodels_glmm.partitioned.model import PartitionedModel


def test_weights_reproduce_the_point():
    trail = ModeTrail()
    rng = np.random.default_rng(0)
    points = rng.standard_normal((3, 2))
    for p in points:
        message, v0 = trail.plan(p)
        assert message[3] is None and v0 is None  # too few points yet
        trail.record(np.array([p @ [1.0, 2.0], 3.0]))  # modes affine in the point
    target = points.mean(axis=0) + 0.1
    (owner, tag, keep, weights), v0 = trail.plan(target)
    assert keep == [0, 1, 2] and tag == 3
    c = np.array([weights[t] for t in keep])
    assert c.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(c @ points, target, atol=1e-12)
    # affine modes are reproduced exactly
    np.testing.assert_allclose(v0, [target @ [1.0, 2.0], 3.0], atol=1e-12)


def test_far_points_keep_the_usual_start():
    trail = ModeTrail()
    for p in ([0.0, 0.0], [1.0, 0.0], [0.0, 1.0]):
        trail.plan(np.array(p))
        trail.record(np.zeros(2))
    assert trail.plan(np.array([0.2, 0.3]))[1] is not None
    trail.record(np.zeros(2))  # the trail is now the last three points
    assert trail.plan(np.array([50.0, 50.0]))[1] is None


def test_finite_difference_points_are_reached():
    """A finite-difference Hessian's diagonal moves leave the span of the last
    d + 1 points; the older points kept reach them, exactly for affine modes."""
    from statsmodels_glmm.derivatives import numerical_hessian

    trail = ModeTrail()
    M = np.random.default_rng(1).standard_normal((3, 4))
    found = []

    def evaluate(x):
        message, v0 = trail.plan(x)
        if v0 is not None:
            np.testing.assert_allclose(v0, M @ x, atol=1e-10)
            assert sum(abs(c) for c in message[3].values()) <= extrapolation.MAX_WEIGHT
        found.append(v0 is not None)
        trail.record(M @ x)
        return float(x @ x)

    numerical_hessian(evaluate, np.array([0.5, 0.4, 0.2, 0.3]))
    assert all(found[5:])  # all but the first d + 1 points


def test_combine_stored():
    stored = {1: np.ones(3), 2: np.arange(3.0)}
    np.testing.assert_allclose(combine_stored(stored, {1: 2.0, 2: -1.0}), [2.0, 1.0, 0.0])
    assert combine_stored(stored, {1: 0.5, 3: 0.5}) is None
    assert combine_stored(stored, None) is None


def _path(pm, nAGQ, points):
    f = pm.deviance_function(nAGQ)
    rounds, values = [], []
    for p in points:
        before = pm.rounds
        values.append(f(p))
        rounds.append(pm.rounds - before)
    return np.array(values), rounds


@pytest.mark.parametrize("nAGQ", [0, 1])
def test_extrapolated_starts_save_rounds(nAGQ, monkeypatch):
    model = GLMM.from_formula("y ~ x + (1 | a) + (1 | b)", simulate_crossed(),
                              family=sm.families.Poisson())
    beta, _ = model.glm_start()
    base = np.array([0.6, 0.5]) if nAGQ == 0 else np.concatenate([[0.6, 0.5], beta])
    rng = np.random.default_rng(3)
    # an optimizer's path: closing in on a point
    points = [base * (1 + 0.05 * 0.7 ** k * rng.standard_normal(base.size)) for k in range(12)]
    values, rounds = _path(PartitionedModel(*split_model(model, 2)), nAGQ, points)
    monkeypatch.setattr(extrapolation, "MAX_WEIGHT", 0.0)  # never extrapolate
    plain, plain_rounds = _path(PartitionedModel(*split_model(model, 2)), nAGQ, points)
    expected = [model.deviance_function(nAGQ)(p) for p in points]
    np.testing.assert_allclose(values, expected, rtol=1e-10)
    np.testing.assert_allclose(plain, expected, rtol=1e-10)
    assert sum(rounds) < sum(plain_rounds)


def test_rescaled_start():
    # a scalar term (θ[0], 2 modes), a vector one (θ[1:4], 2 modes), a scalar one
    terms = scalar_terms([slice(0, 1), slice(1, 4), slice(4, 5)], [2, 2, 1], [1, 2, 1])
    u = np.array([1.0, -2.0, 3.0, 4.0, 5.0])
    precision = np.array([1e12, 3.0, 7.0, 7.0, 2.0])
    old = np.array([0.5, 1.0, 0.0, 1.0, 0.0])
    new = np.array([1.0, 2.0, 0.0, 1.0, 0.3])
    moved = rescaled_start(u, new, old, precision, terms)
    # data-dominated level: θ u kept; d = 3 at ρ = 2: u ρ d / (1 + ρ² (d − 1)) = u 6/9
    np.testing.assert_allclose(moved[:2], [0.5, -4.0 / 3.0], rtol=1e-10)
    # the vector term and the term whose old θ is 0 keep their modes
    np.testing.assert_array_equal(moved[2:], u[2:])
    # θ unchanged, or nothing known of the modes: the modes themselves
    np.testing.assert_array_equal(rescaled_start(u, old, old, precision, terms), u)
    assert rescaled_start(u, new, None, None, terms) is u
    # θ towards 0: the modes towards 0
    tiny = rescaled_start(u, [1e-9] + list(new[1:]), old, np.full(5, 10.0), terms)
    assert np.all(np.abs(tiny[:2]) < 1e-6)
    # the trail's scale: θ of a scalar term where positive, else 1 (β after the terms)
    np.testing.assert_array_equal(mode_scale(new, terms, 7), [1, 1, 1, 1, 0.3, 1, 1])
    np.testing.assert_array_equal(mode_scale(old, terms, 5), [0.5, 0.5, 1, 1, 1])


@pytest.mark.parametrize("nAGQ", [0, 1])
def test_rescaled_starts_save_rounds(nAGQ, monkeypatch):
    """An optimizer's first, wide moves of θ (no extrapolation): the warm start
    carried to the new θ takes fewer rounds, to the same deviance."""
    model = GLMM.from_formula("y ~ x + (1 | a) + (1 | b)", simulate_crossed(),
                              family=sm.families.Poisson())
    beta, _ = model.glm_start()
    thetas = [[1.0, 1.0], [1.5, 1.0], [1.0, 1.5], [0.5, 1.0], [1.0, 0.5], [0.6, 0.4]]
    points = [np.asarray(t) if nAGQ == 0 else np.concatenate([t, beta]) for t in thetas]
    monkeypatch.setattr(extrapolation, "MAX_WEIGHT", 0.0)  # never extrapolate
    values, rounds = _path(PartitionedModel(*split_model(model, 2)), nAGQ, points)
    for module in (kernels, devfun):
        monkeypatch.setattr(module, "rescaled_start", lambda u, *args: u)
    plain, plain_rounds = _path(PartitionedModel(*split_model(model, 2)), nAGQ, points)
    expected = [model.deviance_function(nAGQ)(p) for p in points]
    np.testing.assert_allclose(values, expected, rtol=1e-10)
    np.testing.assert_allclose(plain, expected, rtol=1e-10)
    assert sum(rounds) < sum(plain_rounds)
