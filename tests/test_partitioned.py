"""The partitioned evaluation equals the in-memory one: deviance, fits, rounds.

The partitions here come from :func:`partitioned.data.split_model` (an in-memory
model split by its largest factor), run in this process; the Dask executor is
checked in ``test_partitioned_dask.py``.
"""

from conftest import CBPP_FORMULA
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from statsmodels_glmm import GLMM, datasets
from statsmodels_glmm.partitioned.data import split_model
from statsmodels_glmm.partitioned.model import PartitionedModel
from statsmodels_glmm.partitioned.results import wrap

REL = 1e-10


def _crossed_counts(seed=1, n=1500):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 40, n), rng.integers(0, 12, n)
    x = rng.normal(size=n)
    f = rng.choice(["lo", "mid", "hi"], n)
    eta = 0.3 + 0.5 * x + rng.normal(0, .5, 40)[a] + rng.normal(0, .7, 12)[b]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "f": f,
                         "a": a.astype(str), "b": "b" + pd.Series(b).astype(str)})


def _nested_binary(seed=2):
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(12), 40)
    klass = school * 4 + rng.integers(0, 4, school.size)
    x = rng.normal(size=school.size)
    eta = -0.2 + 0.8 * x + rng.normal(0, .6, 12)[school] + rng.normal(0, .4, 48)[klass]
    y = (rng.uniform(size=school.size) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "school": school, "klass": klass % 4})


@pytest.fixture(scope="module")
def models():
    cbpp = datasets.load_cbpp()
    crossed = _crossed_counts()
    nested = _nested_binary()
    rng = np.random.default_rng(3)
    gauss = crossed.assign(y=crossed["x"] * 0.4 + rng.normal(size=len(crossed))
                           + crossed["a"].astype(int) * 0.05)
    return {
        "one factor": GLMM.from_formula(CBPP_FORMULA, cbpp, family=sm.families.Binomial()),
        "slope": GLMM.from_formula("y ~ x + f + (1 + x | a)", crossed,
                                   family=sm.families.Poisson()),
        "nested": GLMM.from_formula("y ~ x + (1 | school/klass)", nested,
                                    family=sm.families.Binomial()),
        "crossed": GLMM.from_formula("y ~ x + f + (1 | a) + (1 | b)", crossed,
                                     family=sm.families.Poisson()),
        "lmm": GLMM.from_formula("y ~ x + (1 | a)", gauss, family=sm.families.Gaussian()),
        "gamma": GLMM.from_formula("y ~ x + (1 | a)", crossed.assign(y=crossed["y"] + 0.5),
                                   family=sm.families.Gamma(sm.families.links.Log())),
    }


def _points(model):
    """Two parameter points near the start (θ, dispersion, β)."""
    beta, disp = model.glm_start()
    layout = model.parameters
    theta = np.where(np.isfinite(model.random_effects.theta_lower()), 0.6, 0.1)
    base = np.concatenate([theta,
                           layout.kernel.pack_dispersion(disp) if layout.k_dispersion else [],
                           beta])
    return [base, base * 1.05]


def _partitioned(model, k, order=None):
    design, parts = split_model(model, k, order=order)
    return PartitionedModel(design, parts)


@pytest.mark.parametrize("name", ["one factor", "slope", "nested", "crossed", "lmm", "gamma"])
@pytest.mark.parametrize("k", [1, 2, 7])
def test_deviance_equals_in_memory(models, name, k):
    model = models[name]
    pm = _partitioned(model, k)
    ours, theirs = pm.deviance_function(1), model.deviance_function(1)
    for params in _points(model):
        assert ours(params) == pytest.approx(theirs(params), rel=REL)


@pytest.mark.parametrize("name", ["one factor", "crossed", "nested"])
def test_joint_stage_equals_in_memory(models, name):
    model = models[name]
    pm = _partitioned(model, 3)
    point = _points(model)[0][:model.k_theta]
    assert pm.deviance_function(0)(point) == pytest.approx(
        model.deviance_function(0)(point), rel=REL)


def test_adaptive_quadrature_equals_in_memory(models):
    model = models["one factor"]
    pm = _partitioned(model, 4)
    for params in _points(model):
        assert pm.deviance_function(7)(params) == pytest.approx(
            model.deviance_function(7)(params), rel=REL)


def test_row_order_does_not_matter(models):
    model = models["crossed"]
    order = np.random.default_rng(0).permutation(int(model.nobs))
    params = _points(model)[0]
    values = [_partitioned(model, k, order).deviance_function(1)(params) for k in (1, 5)]
    assert values[0] == pytest.approx(values[1], rel=REL)
    assert values[0] == pytest.approx(model.deviance_function(1)(params), rel=REL)


def test_one_round_per_evaluation_for_local_terms(models):
    pm = _partitioned(models["nested"], 3)
    devfun = pm.deviance_function(1)
    params = _points(models["nested"])[0]
    before = pm.rounds
    for i in range(4):
        devfun(params * (1 + 0.01 * i))
    assert pm.rounds - before == 4


@pytest.mark.parametrize("name,k", [("one factor", 2), ("crossed", 3), ("nested", 7),
                                    ("slope", 2), ("lmm", 3)])
def test_fit_equals_in_memory(models, name, k):
    model = models[name]
    ours, theirs = wrap(_partitioned(model, k).fit()), model.fit()
    assert ours.llf == pytest.approx(theirs.llf, abs=1e-6)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=1e-5)
    # (θ of the linear mixed model is relative to σ; compare the variances)
    np.testing.assert_allclose(ours.varcorr()["sdcor"], theirs.varcorr()["sdcor"],
                               rtol=1e-5, atol=1e-7)
    for group, frame in theirs.ranef().items():
        np.testing.assert_allclose(ours.ranef()[group].to_numpy(), frame.to_numpy(),
                                   rtol=1e-5, atol=1e-7)
    assert list(ours.params.index) == list(theirs.params.index)


def test_summary_matches_in_memory(models):
    model = models["one factor"]
    ours, theirs = wrap(_partitioned(model, 3).fit()), model.fit()
    assert ours.deviance == pytest.approx(theirs.deviance, rel=1e-8)
    q_ours = ours.summary_statistics()["scaled_residual_quantiles"]
    q_theirs = theirs.summary_statistics()["scaled_residual_quantiles"]
    np.testing.assert_allclose(q_ours[[0, -1]], q_theirs[[0, -1]], rtol=1e-6)
    np.testing.assert_allclose(q_ours, q_theirs, atol=0.05)
    text = str(ours.summary())
    assert "herd" in text and "period[T.2]" in text
    assert ours.mle_retvals["rounds"] > 0


def test_row_arrays_are_refused(models):
    res = wrap(_partitioned(models["one factor"], 2).fit())
    with pytest.raises(AttributeError, match="partitions"):
        _ = res.resid_pearson


@pytest.mark.parametrize("reml", [False, True])
def test_linear_mixed_model_from_one_pass(models, reml):
    model = models["lmm"]
    pm = _partitioned(model, 3)
    ours, theirs = wrap(pm.fit(reml=reml)), model.fit(reml=reml)
    assert pm.rounds <= 12  # setup, one pass of cross-products, the summary
    assert ours.llf == pytest.approx(theirs.llf, abs=1e-8)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-7)
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=1e-6)
    np.testing.assert_allclose(ours.varcorr()["sdcor"], theirs.varcorr()["sdcor"], rtol=1e-6)
    np.testing.assert_allclose(ours.ranef()["a"], theirs.ranef()["a"], rtol=1e-5, atol=1e-8)
    assert ours.deviance == pytest.approx(theirs.deviance, rel=1e-8)
    assert ("REML" in str(ours.summary())) == reml


def test_verbose_fit_reports_round_trips(models, capsys):
    pm = _partitioned(models["one factor"], 2)
    pm.fit(verbose=10)
    lines = [line for line in capsys.readouterr().out.splitlines() if "rounds =" in line]
    assert lines and lines[-1].split("rounds = ")[1].split()[0].isdigit()


@pytest.mark.parametrize("name,nAGQ", [("one factor", 0), ("one factor", 7), ("crossed", 0)])
def test_fit_equals_in_memory_nagq(models, name, nAGQ):
    model = models[name]
    ours, theirs = wrap(_partitioned(model, 3).fit(nAGQ=nAGQ)), model.fit(nAGQ=nAGQ)
    assert ours.llf == pytest.approx(theirs.llf, abs=1e-6)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-6, atol=1e-7)
    for group, frame in theirs.ranef().items():
        np.testing.assert_allclose(ours.ranef()[group].to_numpy(), frame.to_numpy(),
                                   rtol=1e-5, atol=1e-6)


def _warning_kinds(fit):
    import warnings

    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    from statsmodels_glmm import BoundaryWarning, SingularFitWarning

    kinds = (SingularFitWarning, PerfectSeparationWarning, BoundaryWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit()
    return sorted({k.__name__ for w in caught for k in kinds if issubclass(w.category, k)})


def _troubled_data(kind, seed=4):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(12), 20)
    x = rng.normal(size=g.size)
    if kind == "singular":  # no group variation at all
        y = (rng.uniform(size=g.size) < 1 / (1 + np.exp(-0.5 * x))).astype(int)
    elif kind == "separation":  # x separates the responses
        y = (x > 0).astype(int)
    else:  # every group all-0 or all-1: the variance diverges
        y = (g % 2).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": g})


@pytest.mark.parametrize("kind", ["singular", "separation", "diverging"])
def test_partitioned_fit_warns_as_in_memory(kind):
    model = GLMM.from_formula("y ~ x + (1 | g)", _troubled_data(kind),
                              family=sm.families.Binomial())
    theirs = _warning_kinds(model.fit)
    ours = _warning_kinds(lambda: _partitioned(model, 3).fit())
    assert theirs  # the data do produce the warning in memory
    assert ours == theirs
