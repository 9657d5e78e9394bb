"""The fixed-pattern Schur products of one scalar local term (partitioned.sparse_schur)
equal the general path, with the compiled kernel and with its numpy fallback."""

from conftest import simulate_crossed
import numpy as np
import pytest
import statsmodels.api as sm

from statsmodels_glmm import GLMM, compiled
from statsmodels_glmm.partitioned import devfun, kernels, sparse_schur
from statsmodels_glmm.partitioned.data import split_model
from statsmodels_glmm.partitioned.model import PartitionedModel

REL = 1e-10


FORMULAS = ["y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 | a) + (1 | b) + (0 + x | c)",
            "y ~ x + (1 | a) + (1 + x | b)"]


@pytest.fixture(scope="module", params=FORMULAS)
def model(request):
    return GLMM.from_formula(request.param, simulate_crossed(), family=sm.families.Poisson())


@pytest.fixture(params=["compiled", "numpy", "general"])
def path(request, monkeypatch):
    """The fast path with the compiled Gram kernel, with its numpy fallback, or
    the general path (compiled kernels disabled)."""
    if request.param == "compiled" and not compiled.HAVE_NUMBA:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(compiled, "ENABLED", request.param != "general")
    monkeypatch.setattr(compiled, "MIN_WORK", 0 if request.param == "compiled" else 10**18)
    return request.param


def _point(model):
    beta, _ = model.glm_start()
    theta = np.full(model.k_theta, 0.6)
    return theta, beta


def test_deviance_equals_in_memory(model, path):
    pm = PartitionedModel(*split_model(model, 3))
    assert sparse_schur.applies(pm.executor.states[0].re.terms) == (path != "general")
    theta, beta = _point(model)
    params = np.concatenate([theta, beta])
    assert pm.deviance_function(1)(params) == pytest.approx(
        model.deviance_function(1)(params), rel=REL)
    assert pm.deviance_function(0)(theta) == pytest.approx(
        model.deviance_function(0)(theta), rel=REL)


@pytest.mark.parametrize("joint", [False, True])
def test_pieces_equal_general_path(model, path, joint, monkeypatch):
    theta, beta = _point(model)
    states = PartitionedModel(*split_model(model, 2)).executor.states
    rng = np.random.default_rng(0)
    for state in states:
        q_c = sum(state.central_sizes)
        v = 0.1 * rng.standard_normal(q_c + (state.k_fe if joint else 0))
        u = 0.1 * rng.standard_normal(state.n_local)
        state.central_start(theta, None, beta, v, joint, "observed")
        ours, _, cache = state._evaluate(u, v, step=0.0)
        back = state._back_solve(cache, v)
        with monkeypatch.context() as m:
            m.setattr(compiled, "ENABLED", False)
            theirs, _, cache = state._evaluate(u, v, step=0.0)
            expected_back = state._back_solve(cache, v)
        scale = np.max(np.abs(theirs.schur))
        np.testing.assert_allclose(ours.schur, theirs.schur, rtol=0, atol=1e-12 * scale)
        if path != "general":
            np.testing.assert_array_equal(ours.schur, ours.schur.T)
        np.testing.assert_allclose(ours.rhs, theirs.rhs, rtol=1e-11,
                                   atol=1e-12 * np.max(np.abs(theirs.rhs)))
        np.testing.assert_allclose(back, expected_back, rtol=1e-10, atol=1e-13)
        assert ours.logdet == pytest.approx(theirs.logdet, rel=1e-13)


def test_next_step_bound(model, path):
    """gap + coupling |Δv|∞ bounds the local modes' change for any central step
    (finite only on the fast path)."""
    theta, beta = _point(model)
    state = PartitionedModel(*split_model(model, 2)).executor.states[0]
    rng = np.random.default_rng(1)
    v = 0.1 * rng.standard_normal(sum(state.central_sizes))
    u = 0.1 * rng.standard_normal(state.n_local)
    state.central_start(theta, None, beta, v, False, "observed")
    pieces, _, cache = state._evaluate(u, v, step=0.0)
    if path == "general":
        assert pieces.coupling == np.inf
        return
    for scale in (1e-8, 1e-2, 1.0):
        dv = scale * rng.standard_normal(v.size)
        actual = np.max(np.abs(state._back_solve(cache, v + dv) - u))
        bound = pieces.gap + pieces.coupling * np.max(np.abs(dv))
        assert actual <= bound * (1 + 1e-12)


def _rounds_of_second_evaluation(model, params):
    pm = PartitionedModel(*split_model(model, 2))
    f = pm.deviance_function(0 if params.size == model.k_theta else 1)
    f(params)
    before = pm.rounds
    value = f(params * 1.001)  # from a warm start, as inside a fit
    return value, pm.rounds - before


@pytest.mark.parametrize("nAGQ", [0, 1])
def test_early_end_saves_rounds(nAGQ, monkeypatch):
    """The Newton-step bound ends PIRLS a round early; the deviance is unchanged."""
    # the same warm start on both paths (the rescaled one can spare the general
    # path a round itself, which is not what is measured here)
    for module in (kernels, devfun):
        monkeypatch.setattr(module, "rescaled_start", lambda u, *args: u)
    model = GLMM.from_formula(FORMULAS[0], simulate_crossed(), family=sm.families.Poisson())
    theta, beta = _point(model)
    params = theta if nAGQ == 0 else np.concatenate([theta, beta])
    expected = model.deviance_function(nAGQ)(params * 1.001)
    monkeypatch.setattr(compiled, "ENABLED", False)
    general, general_rounds = _rounds_of_second_evaluation(model, params)
    monkeypatch.setattr(compiled, "ENABLED", True)
    monkeypatch.setattr(compiled, "MIN_WORK", 10**18)  # the numpy Gram suffices here
    fast, fast_rounds = _rounds_of_second_evaluation(model, params)
    assert general == pytest.approx(expected, rel=REL)
    assert fast == pytest.approx(expected, rel=REL)
    assert fast_rounds < general_rounds


def test_decrement_predicts_the_decrease(monkeypatch):
    """Near the modes, the Newton decrement (partitions' local parts + dvᵀ S dv)
    is the decrease of the penalized deviance the step achieves."""
    monkeypatch.setattr(compiled, "MIN_WORK", 10**18)
    model = GLMM.from_formula(FORMULAS[0], simulate_crossed(), family=sm.families.Poisson())
    theta, beta = _point(model)
    pm = PartitionedModel(*split_model(model, 2))
    ex = pm.executor
    modes = pm.deviance_function(1).modes(theta, None, beta)
    v = modes.u + 1e-3 * np.random.default_rng(2).standard_normal(modes.u.size)
    penalty = np.ones(v.size)
    pieces = ex.map("central_start", theta, None, beta, v, False, "observed")
    v_new, S = devfun._newton_point(pieces, penalty)
    dv = v_new - v
    decrement = sum(p.decrement for p in pieces) + dv @ S @ dv
    before = devfun._total(pieces, v, v.size)
    after = devfun._total(ex.map("central_step", v_new), v_new, v.size)
    assert before - after == pytest.approx(decrement, rel=1e-3)


def test_partitions_side_by_side_with_single_threaded_kernels():
    """n_jobs=2: the partitions in two threads, each kernel on one thread, the
    same deviance as one after the other."""
    model = GLMM.from_formula(FORMULAS[0], simulate_crossed(), family=sm.families.Poisson())
    theta, beta = _point(model)
    params = np.concatenate([theta, beta])
    threaded = PartitionedModel(*split_model(model, 2), n_jobs=2)
    value = threaded.deviance_function(1)(params)
    assert value == pytest.approx(model.deviance_function(1)(params), rel=REL)
    if compiled.available():
        import numba

        pool = threaded.executor._pool
        assert all(pool.submit(numba.get_num_threads).result() == 1 for _ in range(4))
