"""The one-pass linear mixed model equals the in-memory one (ML and REML).

The fits compared with the in-memory ones start where those do (lme4's identity
factors), so that both optimizers take the same path; the default start (the
method of moments) reaches the same optimum to the optimizer's tolerance.

The blocks come from :func:`partitioned.data.split_model` (1 and 3 partitions)
and from a Parquet file read in row batches.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from statsmodels_glmm import GLMM
from statsmodels_glmm.lmm import lmm_criterion
from statsmodels_glmm.partitioned.data import PartitionData, split_model
from statsmodels_glmm.partitioned.lmm_pass import (
    LmmFactor,
    accumulate_blocks,
    fit_lmm_blocks,
    lmm_blocks_criterion,
    moment_start,
)

FORMULAS = {
    "one factor": "y ~ x + (1 | g)",
    "slope": "y ~ x + (1 + x | g)",
    "crossed": "y ~ x + f + (1 | g) + (1 | h)",
    "nested": "y ~ x + (1 | school/klass)",
}


@pytest.fixture(scope="module")
def frame():
    # sleepstudy-like: 30 subjects with their own intercept and slope, plus a
    # crossed item factor and a school/class hierarchy
    rng = np.random.default_rng(7)
    n = 900
    g = rng.integers(0, 30, n)
    h = rng.integers(0, 9, n)
    school = rng.integers(0, 10, n)
    klass = rng.integers(0, 3, n)
    x = rng.uniform(0, 9, n)
    y = (250 + 10 * x + rng.normal(0, 25, 30)[g] + rng.normal(0, 6, 30)[g] * x
         + rng.normal(0, 8, 9)[h] + rng.normal(0, 10, 10)[school]
         + rng.normal(0, 20, 30)[school * 3 + klass] + rng.normal(0, 25, n))
    return pd.DataFrame({"y": y, "x": x, "f": rng.choice(["p", "q"], n),
                         "g": "s" + pd.Series(g).astype(str), "h": h,
                         "school": school, "klass": klass,
                         "w": rng.uniform(0.5, 2.0, n)})


def _model(frame, name, **kwargs):
    return GLMM.from_formula(FORMULAS[name], frame, family=sm.families.Gaussian(), **kwargs)


def _check(fit, res):
    rec = res.fit_record
    assert fit.neg2ll == pytest.approx(rec.neg2ll, rel=1e-10, abs=1e-8)
    np.testing.assert_allclose(fit.theta, rec.theta, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fit.beta, rec.beta, rtol=1e-6, atol=1e-6)
    assert fit.sigma2 == pytest.approx(rec.dispersion, rel=1e-6)
    np.testing.assert_allclose(fit.vcov, rec.vcov, rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(fit.u, rec.modes.u, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
@pytest.mark.parametrize("name", list(FORMULAS))
def test_equals_in_memory(frame, name, reml):
    model = _model(frame, name)
    res = model.fit(reml=reml)
    design, parts = split_model(model, 3)
    blocks = accumulate_blocks(parts, design)
    theta = res.fit_record.theta
    value = lmm_blocks_criterion(LmmFactor(blocks), theta, reml)
    assert value == pytest.approx(lmm_criterion(model, theta, reml), rel=1e-12, abs=1e-8)
    _check(fit_lmm_blocks(blocks, reml=reml, start="identity"), res)


def test_weights_and_offset(frame):
    model = _model(frame, "crossed", weights=frame["w"].to_numpy(),
                   offset=0.1 * frame["x"].to_numpy())
    design, parts = split_model(model, 2)
    _check(fit_lmm_blocks(accumulate_blocks(parts, design), start="identity"), model.fit())


@pytest.mark.parametrize("name", ["crossed", "nested"])
def test_partitions_identical(frame, name):
    model = _model(frame, name)
    fits = []
    for k, order in ((1, None), (3, np.random.default_rng(0).permutation(len(frame)))):
        design, parts = split_model(model, k, order=order)
        fits.append(fit_lmm_blocks(accumulate_blocks(parts, design), start="identity"))
    # the criteria differ by rounding (1e-12), which may move the optimizer's
    # last steps: the optima agree to the optimizer's tolerance
    assert fits[0].neg2ll == pytest.approx(fits[1].neg2ll, rel=1e-12)
    np.testing.assert_allclose(fits[0].theta, fits[1].theta, rtol=1e-6)
    np.testing.assert_allclose(fits[0].beta, fits[1].beta, rtol=1e-8)


def test_parquet_row_batches(frame, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    model = _model(frame, "crossed")
    design, (part,) = split_model(model, 1)
    path = tmp_path / "rows.parquet"
    table = pa.table({"y": part.endog, "g": part.refs[0], "h": part.refs[1]}
                     | {f"x{c}": part.exog[:, c] for c in range(part.exog.shape[1])})
    pq.write_table(table, path, row_group_size=200)

    def batches():
        for batch in pq.ParquetFile(path).iter_batches(batch_size=170):
            cols = batch.to_pydict()
            n = len(cols["y"])
            X = np.column_stack([cols[f"x{c}"] for c in range(part.exog.shape[1])])
            yield PartitionData(np.asarray(cols["y"]), X, np.zeros(n), None,
                                [np.asarray(cols["g"]), np.asarray(cols["h"])],
                                [np.ones((n, 1)), np.ones((n, 1))])

    streamed = accumulate_blocks(batches(), design)
    in_memory = accumulate_blocks([part], design)
    assert streamed.nobs == in_memory.nobs
    np.testing.assert_allclose(streamed.xy, in_memory.xy, rtol=1e-12)
    for j in range(2):
        np.testing.assert_allclose(streamed.diag[j], in_memory.diag[j], rtol=1e-12)
        np.testing.assert_allclose(streamed.zxy[j], in_memory.zxy[j], rtol=1e-12)
    np.testing.assert_array_equal(streamed.pairs[1, 0].keys, in_memory.pairs[1, 0].keys)
    np.testing.assert_allclose(streamed.pairs[1, 0].vals, in_memory.pairs[1, 0].vals)
    _check(fit_lmm_blocks(streamed, start="identity"), model.fit())


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g) + (1 | h)",
                                     "y ~ x + (1 | g) + (1 | school) + (1 | h)"])
def test_tiled_gram(frame, formula, monkeypatch):
    # the crossed Schur complements by the compiled tiled Gram (forced at this
    # size), with prior weights: the criterion equals the in-memory one
    from statsmodels_glmm import compiled

    if not compiled.HAVE_NUMBA:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(compiled, "ENABLED", True)
    monkeypatch.setattr(compiled, "MIN_WORK", 0)
    model = GLMM.from_formula(formula, frame, family=sm.families.Gaussian(),
                              weights=frame["w"].to_numpy())
    design, parts = split_model(model, 2)
    factor = LmmFactor(accumulate_blocks(parts, design))
    assert sorted(factor._grams) == list(range(1, len(design.terms)))
    rng = np.random.default_rng(4)
    for theta in (np.ones(len(design.terms)), rng.uniform(0.1, 2.0, len(design.terms))):
        for reml in (False, True):
            assert lmm_blocks_criterion(factor, theta, reml) == pytest.approx(
                lmm_criterion(model, theta, reml), rel=1e-12, abs=1e-8)


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
@pytest.mark.parametrize("name", ["one factor", "crossed", "nested"])
def test_moment_start(frame, name, reml):
    model = _model(frame, name, weights=frame["w"].to_numpy())
    design, parts = split_model(model, 2)
    blocks = accumulate_blocks(parts, design)
    start = moment_start(blocks)
    assert start.shape == (len(design.terms),) and np.all(start > 0)
    fit = fit_lmm_blocks(blocks, reml=reml)
    ref = model.fit(reml=reml).fit_record
    assert fit.neg2ll == pytest.approx(ref.neg2ll, rel=1e-9)
    np.testing.assert_allclose(fit.theta, ref.theta, rtol=1e-4, atol=1e-4)


def test_moment_start_other_terms(frame):
    model = _model(frame, "slope")
    design, parts = split_model(model, 1)
    blocks = accumulate_blocks(parts, design)
    assert moment_start(blocks) is None
    assert fit_lmm_blocks(blocks).nfev == fit_lmm_blocks(blocks, start="identity").nfev
    with pytest.raises(ValueError, match="start"):
        fit_lmm_blocks(blocks, start="zeros")
