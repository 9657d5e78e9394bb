"""partition_frame on a Dask DataFrame builds the in-memory model: the same
design and, row for row, the same arrays as split_model(GLMM.from_formula(...))."""

import pickle
import tracemalloc
import warnings

import numpy as np
import pandas as pd
from patsy import PatsyError
import pytest
import statsmodels.api as sm

dd = pytest.importorskip("dask.dataframe")
dask = pytest.importorskip("dask")

from statsmodels_glmm import GLMM, datasets  # noqa: E402
from statsmodels_glmm.partitioned.dask_frame import partition_frame  # noqa: E402
from statsmodels_glmm.partitioned.data import split_model  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ValueWarning")


def _gather(parts):
    """The partitions' rows in the model's order."""
    rows = np.concatenate([p.rows for p in parts])
    order = np.argsort(rows)
    assert np.array_equal(rows[order], np.arange(len(rows)))

    def cat(get):
        return np.concatenate([get(p) for p in parts])[order]

    return {"endog": cat(lambda p: p.endog), "exog": cat(lambda p: p.exog),
            "offset": cat(lambda p: p.offset),
            "weights": None if parts[0].weights is None else cat(lambda p: p.weights),
            "refs": [cat(lambda p, j=j: p.refs[j]) for j in range(len(parts[0].refs))],
            "z": [cat(lambda p, j=j: p.z[j]) for j in range(len(parts[0].z))]}


def check_same(formula, df, family=None, n_in=(1, 2, 7), k=3, **kwargs):
    """partition_frame on dd.from_pandas(df, n) for each n reproduces the model."""
    family = family or sm.families.Binomial()
    model = GLMM.from_formula(formula, df, family=family, **kwargs)
    design0, _ = split_model(model, k)
    for n in n_in:
        ddf = dd.from_pandas(df, npartitions=n, sort=False)
        design, lazy = partition_frame(formula, ddf, family=family, npartitions=k, **kwargs)
        parts = dask.compute(*lazy)
        assert len(parts) == k
        assert design.exog_names == design0.exog_names
        assert design.dropped_columns == design0.dropped_columns
        assert design.endog_label == design0.endog_label
        assert design.nobs == design0.nobs
        for t, t0 in zip(design.terms, design0.terms, strict=True):
            assert (t.group_name, t.cnames, t.expr, t.factors, t.local) == \
                (t0.group_name, t0.cnames, t0.expr, t0.factors, t0.local)
            assert t.levels.tolist() == t0.levels.tolist()
        got = _gather(parts)
        np.testing.assert_array_equal(got["endog"], np.asarray(model.endog, dtype=float))
        np.testing.assert_array_equal(got["exog"], model.exog)
        np.testing.assert_array_equal(got["offset"], model.offset)
        if model.weights is None:
            assert got["weights"] is None
        else:
            np.testing.assert_array_equal(got["weights"], model.weights)
        for j, term in enumerate(model.random_effects.terms):
            np.testing.assert_array_equal(got["refs"][j], term.refs)
            np.testing.assert_allclose(got["z"][j], term.z, rtol=1e-15, atol=1e-15)
        # every level of the partitioning factor in exactly one partition
        owners = [set(np.unique(p.refs[0]).tolist()) for p in parts]
        assert sum(len(o) for o in owners) == design.terms[0].n_levels
    return design


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(3)
    n = 300
    df = pd.DataFrame({
        "a": rng.integers(0, 12, n), "x": rng.normal(2, 3, n),
        "f": rng.choice(["lo", "mid", "Hi"], n), "t": rng.uniform(0.5, 3, n),
        "w": rng.integers(1, 4, n).astype(float),
    })
    df["b"] = df["a"].astype(str) + "_" + rng.integers(0, 3, n).astype(str)  # nested in a
    df["c"] = rng.choice(list("PQRSTU"), n)  # crossed with a
    df["y"] = rng.poisson(np.exp(0.2 * df["x"] / 3) * df["t"])
    df["ok"] = np.where(rng.uniform(size=n) < 0.4, "no", "Yes")
    df.loc[[5, 77, 150], "x"] = np.nan  # incomplete rows are dropped
    return df


def test_cbpp_cbind():
    design = check_same("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                        datasets.load_cbpp())
    assert design.terms[0].local


def test_poisson_offset_weights(frame):
    check_same("y ~ x + f + offset(log(t)) + (1 | a)", frame, sm.families.Poisson(),
               weights="w")


def test_transforms_contrasts_interaction(frame):
    design = check_same("y ~ scale(x) + C(f, Treatment('mid')) + f:x + (1 + x | a)", frame,
                        sm.families.Poisson())
    assert any("scale(x)" in name for name in design.exog_names)


def test_nested_and_crossed_local_flags(frame):
    # a/b: the partitioning factor is the outermost, a, in which b:a is nested
    nested = check_same("y ~ x + (1 | a/b)", frame, sm.families.Poisson(), n_in=(2,))
    assert [t.group_name for t in nested.terms] == ["b:a", "a"]
    assert [t.local for t in nested.terms] == [True, True]
    same = check_same("y ~ x + (1 | a) + (0 + x | a)", frame, sm.families.Poisson(),
                      n_in=(2,))
    assert [t.local for t in same.terms] == [True, True]
    crossed = check_same("y ~ x + (1 | a) + (1 | c)", frame, sm.families.Poisson(),
                         n_in=(3,))
    assert [t.local for t in crossed.terms] == [True, False]


def test_level_in_one_input_partition(frame):
    df = frame.copy()
    df["g"] = pd.Categorical(np.where(np.arange(len(df)) < 40, "zz", df["f"]),
                             categories=["unused", "lo", "mid", "Hi", "zz"])
    df.loc[df.index >= 40, "a"] = df.loc[df.index >= 40, "a"].clip(upper=10)
    df.loc[5, "a"] = 11  # a level of the grouping factor in one row
    check_same("y ~ g + x + (1 | a)", df, sm.families.Poisson())


def test_text_response_and_permuted_rows(frame):
    df = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    check_same("ok ~ x + f + (1 | c)", df)


def test_aliased_column_dropped_identically(frame):
    df = frame.copy()
    df["x2"] = 2.0 * df["x"] - 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = check_same("y ~ x + x2 + f + (1 | a)", df, sm.families.Poisson(),
                            n_in=(1, 7))
    assert design.dropped_columns == ["x2"]
    assert any("rank deficient" in str(w.message) for w in caught)


def test_errors(frame):
    ddf = dd.from_pandas(frame, npartitions=2)
    with pytest.raises(TypeError, match="dask.dataframe.DataFrame"):
        partition_frame("y ~ x + (1 | a)", frame)
    with pytest.raises(PatsyError, match="no random-effects term"):
        partition_frame("y ~ x", ddf)
    with pytest.raises(PatsyError, match="'nope' in formula"):
        partition_frame("y ~ nope + (1 | a)", ddf, family=sm.families.Poisson())
    with pytest.raises(PatsyError, match="grouping factor 'gg'"):
        partition_frame("y ~ x + (1 | gg)", ddf, family=sm.families.Poisson())
    with pytest.raises(ValueError, match="weights column 'ww'"):
        partition_frame("y ~ x + (1 | a)", ddf, family=sm.families.Poisson(), weights="ww")


def test_partitions_pickle(frame):
    """The task graph travels to worker processes (patsy's designs included)."""
    design, lazy = partition_frame("y ~ scale(x) + f + (1 | a)",
                                   dd.from_pandas(frame, npartitions=2),
                                   family=sm.families.Poisson(), npartitions=2)
    import cloudpickle

    graph = cloudpickle.loads(cloudpickle.dumps(lazy))
    got = dask.compute(*graph, scheduler="sync")
    want = dask.compute(*lazy, scheduler="sync")
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.exog, b.exog)
    pickle.dumps(design)


def _driver_peak(n, npartitions):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": rng.integers(0, 50, n), "x": rng.normal(size=n),
                       "f": rng.choice(list("abc"), n)})
    df["y"] = rng.integers(0, 2, n)
    ddf = dd.from_pandas(df, npartitions=npartitions).persist(scheduler="sync")
    del df
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    partition_frame("y ~ x + f + (1 | g)", ddf, npartitions=2)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def test_driver_memory_does_not_grow_with_n():
    """Twice the rows in twice the partitions of the same size: the driver holds
    one partition at a time (patsy's memorize passes) and O(levels) facts, but
    also one small summary per input partition (about 25 kB here: distinct
    values, counts), gathered rather than tree-reduced on the workers; so the
    peak grows with the number of partitions, well below the data."""
    small = _driver_peak(8_000, 2)
    large = _driver_peak(16_000, 4)
    assert large < 1.7 * small, (small, large)
