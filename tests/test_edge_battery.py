"""Edge-case battery: dtypes, missing and non-finite values, degenerate designs, extreme
scales, bad arguments, the array API, prediction on re-typed groups and BLAS limits.

Every case carries its expected verdict ("fit", "error" or "warn"), checked by the shared
helpers at the top. Nothing is xfail: a failing case is a finding (BATTERY_REPORT.md).
The verdicts follow lme4: where R fits a model the verdict is "fit" or "warn".
"""

import copy
import os
import threading
import traceback
import warnings

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
import numpy as np
import pandas as pd
from patsy import PatsyError
import pytest
from scipy.special import expit
import statsmodels.api as sm
import statsmodels.tools.sm_exceptions as sm_exc
from threadpoolctl import threadpool_info

import statsmodels_glmm
from statsmodels_glmm import GLMM, glmer

# -- the contract ---------------------------------------------------------------------------
PKG_DIR = os.path.dirname(os.path.abspath(statsmodels_glmm.__file__)) + os.sep
# statsmodels' own warning classes: the only warnings a "warn" verdict accepts
SM_WARNINGS = tuple(c for c in vars(sm_exc).values() if isinstance(c, type)
                    and issubclass(c, Warning) and c.__module__ == sm_exc.__name__)
ALLOWED_ERRORS = (ValueError, TypeError, PatsyError)
# small problems: skip the finite-difference Hessian, bound the optimizer (no hangs)
FAST = {"calc_hessian": False, "maxfun": 3000}

try:  # pyarrow-backed strings only when pyarrow is installed
    import pyarrow  # noqa: F401
    HAS_PYARROW = True
except ImportError:
    HAS_PYARROW = False
needs_pyarrow = pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")


def _snapshot(obj):
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        return obj.copy(deep=True)
    return copy.deepcopy(obj)


def assert_unchanged(obj, snap):
    """The caller's inputs must come back untouched (values, dtypes, index)."""
    if isinstance(obj, pd.DataFrame):
        pd.testing.assert_frame_equal(obj, snap)
    elif isinstance(obj, pd.Series):
        pd.testing.assert_series_equal(obj, snap)
    elif isinstance(obj, np.ndarray):
        assert obj.dtype == snap.dtype and obj.shape == snap.shape, "array was modified"
        if obj.dtype.kind in "fc":
            assert np.array_equal(obj, snap, equal_nan=True), "array was modified"
        else:
            assert repr(obj.tolist()) == repr(snap.tolist()), "array was modified"
    else:
        assert repr(obj) == repr(snap), f"{type(obj).__name__} argument was modified"


def _record(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    return out, list(caught)


def _fmt(caught):
    return [f"{w.category.__name__}: {str(w.message)[:150]}" for w in caught]


def _sm_kinds(caught):
    return sorted({w.category.__name__ for w in caught if issubclass(w.category, SM_WARNINGS)})


def _names_culprit(message, match):
    options = (match,) if isinstance(match, str) else tuple(match)
    return any(m in message for m in options)


def check_error(call, match):
    """A ValueError/TypeError/PatsyError raised inside the package that names the culprit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except ALLOWED_ERRORS as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            desc = f"{type(exc).__name__}: {str(exc)[:300]} (raised at {where.filename}:" \
                   f"{where.lineno})"
            assert not isinstance(exc, np.linalg.LinAlgError), desc
            assert where.filename.startswith(PKG_DIR), f"raised outside the package: {desc}"
            assert _names_culprit(str(exc), match), f"message does not name {match!r}: {desc}"
            return
        except Exception as exc:  # any other type is the finding
            where = traceback.extract_tb(exc.__traceback__)[-1]
            pytest.fail(f"wrong exception type {type(exc).__name__}: {str(exc)[:300]} "
                        f"(raised at {where.filename}:{where.lineno})")
    pytest.fail(f"no error raised (expected one naming {match!r})")


def _reference(ref):
    try:
        return _record(ref)
    except Exception as exc:  # a broken reference is a battery bug
        raise AssertionError(f"the reference fit itself failed: {exc!r}") from exc


def check_fit(call, ref=None, cmp=None):
    """Succeeds, leaks no numerical RuntimeWarning, matches the clean equivalent (numbers
    and the kinds of statsmodels warnings)."""
    res, caught = _record(call)
    noisy = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not noisy, f"numerical warnings leaked: {_fmt(noisy)}"
    if hasattr(res, "neg2llf"):
        assert np.isfinite(res.neg2llf), f"-2logLik is {res.neg2llf}"
    expected, ref_caught = _reference(ref) if ref is not None else (None, [])
    if cmp is not None:
        cmp(res, expected)
    if ref is not None:
        assert _sm_kinds(caught) == _sm_kinds(ref_caught), (
            f"warnings differ from the clean input's: {_fmt(caught)} vs {_fmt(ref_caught)}")
    return res


def check_warn(call, match=None, ref=None, cmp=None):
    """Returns a result and emits a statsmodels warning (naming the culprit if given)."""
    res, caught = _record(call)
    sm_caught = [w for w in caught if issubclass(w.category, SM_WARNINGS)]
    assert sm_caught, f"no statsmodels warning; got {_fmt(caught)}"
    if match is not None:
        assert any(_names_culprit(str(w.message), match) for w in sm_caught), (
            f"no warning names {match!r}: {_fmt(sm_caught)}")
    if ref is not None and cmp is not None:
        cmp(res, _reference(ref)[0])
    return res


def run_case(verdict, call, inputs=(), ref=None, match=None, cmp=None):
    snaps = [_snapshot(obj) for obj in inputs]
    if verdict == "error":
        check_error(call, match)
    elif verdict == "warn":
        check_warn(call, match, ref, cmp)
    else:
        assert verdict == "fit"
        check_fit(call, ref, cmp)
    for obj, snap in zip(inputs, snaps):
        assert_unchanged(obj, snap)


# -- comparisons with the clean equivalent ----------------------------------------------------
def _vec(res, what="params"):
    return np.asarray(getattr(res, what), dtype=float)


def same_llf(res, ref):
    assert res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-6), (
        f"-2logLik {res.neg2llf!r} vs clean {ref.neg2llf!r}")
    assert not np.any(np.isnan(_vec(res))), f"a column was dropped: {dict(res.params)}"


def same_fit(res, ref, nobs=True):
    """~1e-6 in -2logLik, 1e-4 relative in params (positionally: names may differ)."""
    same_llf(res, ref)
    p, q = _vec(res), _vec(ref)
    assert p.shape == q.shape, f"params {list(res.params.index)} vs {list(ref.params.index)}"
    np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5, err_msg="params")
    np.testing.assert_allclose(_vec(res, "theta"), _vec(ref, "theta"), rtol=1e-3, atol=1e-4,
                               err_msg="theta")
    if nobs:
        assert res.nobs == ref.nobs, f"nobs {res.nobs} vs clean {ref.nobs}"


def same_fit_any_nobs(res, ref):
    same_fit(res, ref, nobs=False)


def scaled_slope(scale, shift=0.0):
    """x -> scale * x + shift: same likelihood, slope / scale, intercept adjusted."""
    def cmp(res, ref):
        same_llf(res, ref)
        p, q = _vec(res), _vec(ref)
        assert p.shape == q.shape
        np.testing.assert_allclose(p[1] * scale, q[1], rtol=1e-4, atol=1e-6, err_msg="slope")
        np.testing.assert_allclose(p[0] + shift * p[1], q[0], rtol=1e-4, atol=1e-5,
                                   err_msg="intercept")
    return cmp


def kept_columns(dropped):
    """A rank-deficient design: the named columns dropped (NaN), the rest the clean fit."""
    def cmp(res, ref):
        assert list(res.model.dropped_columns) == dropped, res.model.dropped_columns
        assert res.neg2llf == pytest.approx(ref.neg2llf, abs=1e-6)
        np.testing.assert_allclose(res.params.dropna().to_numpy(), _vec(ref), rtol=1e-4,
                                   atol=1e-5)
    return cmp


def no_dropped_column(res, _ref):
    assert not np.any(np.isnan(_vec(res))), f"a column was dropped: {dict(res.params)}"


# -- shared data (built once) -----------------------------------------------------------------
N, N_GROUPS = 120, 15
NA_ROWS = [3, 50]  # rows in groups 0 and 6: every group keeps observations
PERM = np.random.default_rng(7).permutation(N)
POIS, BINOM = sm.families.Poisson(), sm.families.Binomial()
GAMMA = sm.families.Gamma(link=sm.families.links.Log())


def _make_base(seed=20240611):
    rng = np.random.default_rng(seed)
    gi = np.repeat(np.arange(N_GROUPS), N // N_GROUPS)
    xcov = rng.normal(size=N)
    zcov = rng.uniform(-1, 1, N)
    expo = rng.uniform(0.5, 2.0, N)
    eta = 0.3 + 0.5 * xcov - 0.4 * zcov + rng.normal(0, 0.6, N_GROUPS)[gi]
    size = rng.integers(1, 7, N)
    return pd.DataFrame({
        "cnt": rng.poisson(expo * np.exp(eta)).astype(float),
        "succ": (rng.uniform(size=N) < expit(eta)).astype(float),
        "k": rng.binomial(size, expit(eta)).astype(float), "size": size.astype(float),
        "pos": rng.gamma(4.0, np.exp(eta) / 4.0),
        "xcov": xcov, "zcov": zcov, "xint": rng.integers(0, 6, N),
        "fac": np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, N)],
        "wts": rng.integers(1, 4, N).astype(float), "offs": rng.normal(0, 0.1, N),
        "expo": expo, "grp": np.array([f"g{v:02d}" for v in gi], dtype=object), "gi": gi,
    })


BASE = _make_base()
PF = "cnt ~ xcov + (1 | grp)"      # Poisson
BF = "succ ~ xcov + (1 | grp)"     # Bernoulli
CF = "cbind(k, size - k) ~ xcov + (1 | grp)"
MF = "cnt ~ xcov + offset(log(expo)) + (1 | grp)"  # every kind of model variable
_POS_F = "pos ~ xcov + (1 | grp)"  # Gamma
MISS_KW = {"weights": "wts", "offset": "offs"}
DATES = pd.Timestamp("2021-03-01") + pd.to_timedelta(BASE["gi"] * 7, unit="D")


def fit_of(formula, data, family=POIS, **kw):
    """A (reference) glmer call, with the battery's fast settings."""
    kw = {**FAST, **kw}
    return lambda: glmer(formula, data, family=family, **kw)


def perm_ref(formula, data, family=POIS, **kw):
    """The same input with its rows permuted: the reference where no cleaner input exists."""
    order = np.random.default_rng(7).permutation(len(data))
    return fit_of(formula, data.iloc[order], family, **kw)


def case(cid, verdict, call, inputs=(), ref=None, match=None, cmp=None, marks=()):
    if verdict in ("fit", "warn") and ref is not None and cmp is None:
        cmp = same_fit
    return pytest.param(verdict, call, tuple(inputs), ref, match, cmp, id=cid, marks=marks)


def g_case(cid, verdict, formula, data, family=POIS, ref=None, match=None, cmp=None,
           marks=(), **kw):
    """A glmer case; data and array-like arguments are checked for mutation."""
    inputs = [data] + [v for v in kw.values()
                       if isinstance(v, (np.ndarray, pd.Series, pd.DataFrame, list, dict))]
    return case(cid, verdict, fit_of(formula, data, family, **kw), inputs, ref, match, cmp,
                marks)


def variant(cid, verdict, formula, changes, family=POIS, ref_changes=None, ref_drop=None,
            ref_formula=None, match=None, cmp=None, marks=(), **kw):
    """BASE with some columns replaced; the reference is BASE with ``ref_changes`` and
    without the rows ``ref_drop``."""
    data = BASE.assign(**changes)
    ref = None
    if verdict != "error":
        ref_data = BASE.assign(**(ref_changes or {}))
        if ref_drop is not None:
            ref_data = ref_data.drop(index=ref_drop)
        ref = fit_of(ref_formula or formula, ref_data, family, **kw)
    return g_case(cid, verdict, formula, data, family, ref, match, cmp, marks, **kw)


def with_na(col, dtype, value, rows=NA_ROWS, source=None):
    s = (BASE[col] if source is None else source).astype(dtype)
    s.iloc[rows] = value
    return s


PARAMS = "verdict, call, inputs, ref, match, cmp"

# -- 1. response dtypes ---------------------------------------------------------------------
_cnt, _succ = BASE["cnt"], BASE["succ"]
_yes_no = np.where(_succ == 1, "yes", "no")
_abc = np.where(_succ == 0, "a", np.where(BASE["xcov"] > 0, "b", "c"))
_mixed_cnt = _cnt.astype(int).astype(object)
_mixed_cnt[_mixed_cnt == 1] = "1"  # 1 and "1" in one object column

RESPONSE_CASES = [
    *[variant(f"y_{dt}", "fit", PF, {"cnt": _cnt.astype(dt)})
      for dt in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float32", "Int64", "UInt8", "Float64")],
    variant("y_Int64_NA", "fit", PF, {"cnt": with_na("cnt", "Int64", pd.NA)},
            ref_drop=NA_ROWS),
    variant("y_Float64_NA", "fit", PF, {"cnt": with_na("cnt", "Float64", pd.NA)},
            ref_drop=NA_ROWS),
    # an object column of Python ints is numeric data, not a factor
    variant("y_object_ints", "fit", PF, {"cnt": _cnt.astype(int).astype(object)}),
    variant("y_object_None", "fit", PF, {"cnt": with_na("cnt", object, None)},
            ref_drop=NA_ROWS),
    variant("y_object_mixed_1_and_str1", "error", PF, {"cnt": _mixed_cnt}, match="cnt"),
    variant("y_str_digits_poisson", "error", PF, {"cnt": _cnt.astype(int).astype(str)},
            match="cnt"),
    # R: a logical response is 0/1
    variant("y_bool_poisson", "fit", PF, {"cnt": _cnt > 0},
            ref_changes={"cnt": (_cnt > 0).astype(float)}),
    variant("y_category_poisson", "error", PF, {"cnt": _cnt.astype(int).astype("category")},
            match="cnt"),
    variant("y_datetime_poisson", "error", PF, {"cnt": pd.to_datetime(_cnt, unit="D")},
            match="cnt"),
    variant("y_timedelta_poisson", "error", PF, {"cnt": pd.to_timedelta(_cnt, unit="D")},
            match="cnt"),
    variant("y_Float64_with_inf", "error", PF,
            {"cnt": with_na("cnt", "Float64", np.inf, rows=[5])}, match="cnt"),
    # binomial 0/1 responses
    *[variant(f"yb_{dt}", "fit", BF, {"succ": _succ.astype(dt)}, family=BINOM)
      for dt in ("int8", "uint8", "float32", "boolean", "Int64")],
    variant("yb_boolean_NA", "fit", BF, {"succ": with_na("succ", "boolean", pd.NA)},
            family=BINOM, ref_drop=NA_ROWS),
    variant("yb_Int64_NA", "fit", BF, {"succ": with_na("succ", "Int64", pd.NA)},
            family=BINOM, ref_drop=NA_ROWS),
    variant("yb_object_01_ints", "fit", BF, {"succ": _succ.astype(int).astype(object)},
            family=BINOM),
    variant("yb_object_yes_no", "fit", BF, {"succ": _yes_no.astype(object)}, family=BINOM),
    variant("yb_string_yes_no", "fit", BF, {"succ": pd.array(_yes_no, dtype="string")},
            family=BINOM),
    variant("yb_string_NA", "fit", BF,
            {"succ": with_na("succ", "string", pd.NA, source=pd.Series(_yes_no))},
            family=BINOM, ref_drop=NA_ROWS),
    variant("yb_pyarrow_string", "fit", BF,
            {"succ": pd.array(_yes_no, dtype="string[pyarrow]") if HAS_PYARROW else _succ},
            family=BINOM, marks=needs_pyarrow),
    variant("yb_object_None", "fit", BF,
            {"succ": with_na("succ", object, None, source=pd.Series(_yes_no))},
            family=BINOM, ref_drop=NA_ROWS),
    variant("yb_category_unused_level", "fit", BF,
            {"succ": pd.Categorical(_yes_no, categories=["no", "yes", "maybe"])},
            family=BINOM),
    variant("yb_category_ordered", "fit", BF,
            {"succ": pd.Categorical(_yes_no, categories=["no", "yes"], ordered=True)},
            family=BINOM),
    # the first level is the failure: reversed levels flip the response
    variant("yb_category_yes_first", "fit", BF,
            {"succ": pd.Categorical(_yes_no, categories=["yes", "no"])}, family=BINOM,
            ref_changes={"succ": 1 - _succ}),
    # R: a factor with more levels: the first is failure, all others success
    # R's binomial: the first level is failure, all others success; we say so
    variant("yb_category_three_levels", "warn", BF, {"succ": pd.Categorical(_abc)},
            family=BINOM, match="3 levels"),
    variant("yb_values_0_and_2", "error", BF, {"succ": 2 * _succ}, family=BINOM,
            match="succ"),
    variant("yb_str_0_1", "fit", BF, {"succ": _succ.astype(int).astype(str)}, family=BINOM),
    # cbind forms
    variant("cbind_int8", "fit", CF,
            {"k": BASE["k"].astype("int8"), "size": BASE["size"].astype("int8")},
            family=BINOM),
    variant("cbind_Int64_NA", "fit", CF, {"k": with_na("k", "Int64", pd.NA)}, family=BINOM,
            ref_drop=NA_ROWS),
    # uint8 arithmetic wraps k - size around to large positive failures
    variant("cbind_uint8_negative_failures", "error", "cbind(k, k - size) ~ xcov + (1 | grp)",
            {"k": BASE["k"].astype("uint8"), "size": BASE["size"].astype("uint8")},
            family=BINOM, match="k - size"),
    g_case("prop_weights_int16", "fit", "prop ~ xcov + (1 | grp)",
           BASE.assign(prop=BASE["k"] / BASE["size"], size=BASE["size"].astype("int16")),
           family=BINOM, weights="size", ref=fit_of(CF, BASE, BINOM)),
]


@pytest.mark.parametrize(PARAMS, RESPONSE_CASES)
def test_response_dtypes(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 2. fixed-effect covariate dtypes and names -------------------------------------------
_xint, _xcov = BASE["xint"], BASE["xcov"]
_xf32 = _xcov.astype("float32").astype(float)
_fac = BASE["fac"]
_fac_mixed = _fac.map({"a": 1, "b": "1", "c": "c"}).astype(object)
XF = "cnt ~ xint + (1 | grp)"
FF = "cnt ~ fac + (1 | grp)"

COVARIATE_CASES = [
    *[variant(f"x_{dt}", "fit", XF, {"xint": _xint.astype(dt)})
      for dt in ("int8", "int16", "int32", "uint8", "uint32", "uint64", "Int64", "UInt8")],
    variant("x_float32", "fit", PF, {"xcov": _xcov.astype("float32")},
            ref_changes={"xcov": _xf32}),
    variant("x_Int64_NA", "fit", XF, {"xint": with_na("xint", "Int64", pd.NA)},
            ref_drop=NA_ROWS),
    variant("x_Float64_NA", "fit", PF, {"xcov": with_na("xcov", "Float64", pd.NA)},
            ref_drop=NA_ROWS),
    variant("x_bool", "fit", "cnt ~ xb + (1 | grp)", {"xb": _xcov > 0},
            ref_changes={"xb": (_xcov > 0).astype(float)}),
    variant("x_boolean_NA", "fit", "cnt ~ xb + (1 | grp)",
            {"xb": with_na("xcov", "boolean", pd.NA, source=_xcov > 0)},
            ref_changes={"xb": (_xcov > 0).astype(float)}, ref_drop=NA_ROWS),
    variant("fac_str_default", "fit", FF, {"fac": _fac.astype(str)}),
    variant("fac_string", "fit", FF, {"fac": _fac.astype("string")}),
    variant("fac_pyarrow_string", "fit", FF,
            {"fac": _fac.astype("string[pyarrow]") if HAS_PYARROW else _fac},
            marks=needs_pyarrow),
    variant("fac_category", "fit", FF, {"fac": _fac.astype("category")}),
    # lme4 drops unused levels (model.frame(drop.unused.levels = TRUE))
    variant("fac_category_unused_level", "fit", FF,
            {"fac": pd.Categorical(_fac, categories=["a", "b", "c", "zz"])}),
    variant("fac_category_unused_first_level", "fit", FF,
            {"fac": pd.Categorical(_fac, categories=["aa", "a", "b", "c"])}),
    variant("fac_category_ordered", "fit", FF,
            {"fac": pd.Categorical(_fac, categories=["a", "b", "c"], ordered=True)},
            cmp=same_llf),
    variant("fac_category_reordered", "fit", FF,
            {"fac": pd.Categorical(_fac, categories=["c", "b", "a"])}, cmp=same_llf),
    variant("fac_category_NaN", "fit", FF,
            {"fac": with_na("fac", "category", np.nan)}, ref_drop=NA_ROWS),
    variant("fac_string_NA", "fit", FF, {"fac": with_na("fac", "string", pd.NA)},
            ref_drop=NA_ROWS),
    variant("fac_object_None", "fit", FF, {"fac": with_na("fac", object, None)},
            ref_drop=NA_ROWS),
    # R coerces c(1, "1") to one character level
    variant("fac_object_mixed_1_and_str1", "fit", FF, {"fac": _fac_mixed},
            ref_changes={"fac": _fac_mixed.astype(str).astype(object)}),
    # R: dates and time differences enter the design as numbers
    # R enters a Date as days and a POSIXct as seconds since 1970; pandas has one dtype
    # for both, so the user is asked to choose (C(xd) or a number), naming the column
    variant("x_datetime", "error", "cnt ~ xd + (1 | grp)",
            {"xd": pd.Timestamp("2024-01-01") + pd.to_timedelta(_xcov * 10, unit="D")},
            match="xd"),
    variant("x_timedelta", "error", "cnt ~ xd + (1 | grp)",
            {"xd": pd.to_timedelta(_xcov, unit="h")}, match="xd"),
    # names with spaces and dots
    variant("x_name_space_Q", "fit", 'cnt ~ Q("x cov") + (1 | grp)', {"x cov": _xcov},
            ref_formula=PF),
    variant("x_name_dot_Q", "fit", 'cnt ~ Q("x.cov") + (1 | grp)', {"x.cov": _xcov},
            ref_formula=PF),
    variant("x_name_dot_bare", "fit", "cnt ~ x.cov + (1 | grp)", {"x.cov": _xcov},
            ref_formula=PF),
    variant("y_name_space_Q", "fit", 'Q("n cnt") ~ xcov + (1 | grp)', {"n cnt": _cnt},
            ref_formula=PF),
    variant("y_name_dot_Q", "fit", 'Q("n.cnt") ~ xcov + (1 | grp)', {"n.cnt": _cnt},
            ref_formula=PF),
    variant("g_name_dot_bare", "fit", "cnt ~ xcov + (1 | g.rp)", {"g.rp": BASE["grp"]},
            ref_formula=PF),
    variant("g_name_space_Q", "fit", 'cnt ~ xcov + (1 | Q("g rp"))', {"g rp": BASE["grp"]},
            ref_formula=PF),
    variant("re_slope_name_space_Q", "fit", 'cnt ~ xcov + (1 + Q("x cov") | grp)',
            {"x cov": _xcov}, ref_formula="cnt ~ xcov + (1 + xcov | grp)"),
    variant("offset_name_space_Q", "fit", 'cnt ~ xcov + offset(Q("o ffs")) + (1 | grp)',
            {"o ffs": BASE["offs"]}, ref_formula="cnt ~ xcov + offset(offs) + (1 | grp)"),
]


@pytest.mark.parametrize(PARAMS, COVARIATE_CASES)
def test_covariate_dtypes(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 3. grouping-factor dtypes (same partition as "grp") ------------------------------------
_gi = BASE["gi"]
_grp = BASE["grp"]
GF = "cnt ~ xcov + (1 | gg)"
_g_mixed = _gi.astype(object).where(_gi % 2 == 0, _gi.astype(str))  # 0, "1", 2, "3" ...
_g_one = _gi.astype(object)
_g_one.iloc[np.flatnonzero(_gi == 1)[::2]] = "1"  # 1 and "1" in one column: one level in R


def gvariant(cid, verdict, values, ref_values=_grp, ref_drop=None, match=None, marks=(),
             **kw):
    return variant(cid, verdict, GF, {"gg": values}, ref_changes={"gg": ref_values},
                   ref_drop=ref_drop, match=match, marks=marks, **kw)


GROUP_CASES = [
    *[gvariant(f"g_{dt}", "fit", _gi.astype(dt))
      for dt in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint64", "float64",
                 "float32", "Int64", "UInt8")],
    gvariant("g_Int64_NA", "fit", with_na("gi", "Int64", pd.NA), ref_drop=NA_ROWS),
    gvariant("g_Float64_NA", "fit", with_na("gi", "Float64", pd.NA), ref_drop=NA_ROWS),
    gvariant("g_negative_ints", "fit", -_gi - 5),
    gvariant("g_large_int64", "fit", _gi + 2 ** 62),
    gvariant("g_large_uint64", "fit", _gi.astype("uint64") + np.uint64(2 ** 63)),
    gvariant("g_float_fractions", "fit", _gi / 4.0),
    gvariant("g_object", "fit", _grp.astype(object)),
    gvariant("g_str_default", "fit", _grp.astype(str)),
    gvariant("g_string", "fit", _grp.astype("string")),
    gvariant("g_pyarrow_string", "fit",
             _grp.astype("string[pyarrow]") if HAS_PYARROW else _grp, marks=needs_pyarrow),
    gvariant("g_string_NA", "fit", with_na("grp", "string", pd.NA), ref_drop=NA_ROWS),
    gvariant("g_str_NaN", "fit", with_na("grp", str, np.nan), ref_drop=NA_ROWS),
    gvariant("g_object_None", "fit", with_na("grp", object, None), ref_drop=NA_ROWS),
    gvariant("g_object_NaN", "fit", with_na("grp", object, np.nan), ref_drop=NA_ROWS),
    gvariant("g_object_NA", "fit", with_na("grp", object, pd.NA), ref_drop=NA_ROWS),
    gvariant("g_category", "fit", _grp.astype("category")),
    gvariant("g_category_unused_levels", "fit",
             pd.Categorical(_grp, categories=["zz0", *sorted(_grp.unique()), "zz1"])),
    gvariant("g_category_ordered", "fit", pd.Categorical(_grp, ordered=True)),
    gvariant("g_category_reversed", "fit",
             pd.Categorical(_grp, categories=sorted(_grp.unique(), reverse=True))),
    gvariant("g_category_NaN", "fit", with_na("grp", "category", np.nan), ref_drop=NA_ROWS),
    gvariant("g_category_int_categories", "fit", _gi.astype("category")),
    gvariant("g_datetime", "fit", DATES, ref_values=_gi),
    gvariant("g_datetime_NaT", "fit", with_na("gi", "datetime64[ns]", pd.NaT, source=DATES),
             ref_values=_gi, ref_drop=NA_ROWS),
    gvariant("g_datetime_tz", "fit", DATES.dt.tz_localize("Europe/Berlin"), ref_values=_gi),
    gvariant("g_timedelta", "fit", pd.to_timedelta(_gi, unit="h"), ref_values=_gi),
    gvariant("g_period", "fit", DATES.dt.to_period("D"), ref_values=_gi),
    gvariant("g_object_mixed_int_and_str", "fit", _g_mixed,
             ref_values=_g_mixed.astype(str).astype(object)),
    gvariant("g_object_mixed_1_and_str1", "fit", _g_one,
             ref_values=_g_one.astype(str).astype(object)),
    gvariant("g_bool_two_levels", "fit", _gi < 7, ref_values=np.where(_gi < 7, "T", "F")),
    gvariant("g_boolean_NA", "fit", with_na("gi", "boolean", pd.NA, source=_gi < 7),
             ref_values=np.where(_gi < 7, "T", "F"), ref_drop=NA_ROWS),
    variant("g_interaction_category_by_object", "fit", "cnt ~ xcov + (1 | grp:fac)",
            {"fac": _fac.astype("category")}),
    variant("g_interaction_int8_by_string", "fit", "cnt ~ xcov + (1 | gi:fac)",
            {"gi": _gi.astype("int8"), "fac": _fac.astype("string")}),
    variant("g_nested_datetime", "fit", "cnt ~ xcov + (1 | gd/fac)", {"gd": DATES},
            ref_formula="cnt ~ xcov + (1 | gi/fac)"),
]


@pytest.mark.parametrize(PARAMS, GROUP_CASES)
def test_grouping_dtypes(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 4. weights and offset dtypes -------------------------------------------------------------
_w, _o = BASE["wts"], BASE["offs"]
_wo = _w.astype(object)
W_BAD = ("wts", "weights")
O_BAD = ("offs", "offset")


def wvariant(cid, verdict, values, ref_values=_w, ref_drop=None, match=None, cmp=None):
    return variant(cid, verdict, PF, {"wts": values}, ref_changes={"wts": ref_values},
                   ref_drop=ref_drop, match=match, cmp=cmp, weights="wts")


def ovariant(cid, verdict, values, ref_values=_o, ref_drop=None, match=None):
    return variant(cid, verdict, PF, {"offs": values}, ref_changes={"offs": ref_values},
                   ref_drop=ref_drop, match=match, offset="offs")


WEIGHT_OFFSET_CASES = [
    *[wvariant(f"w_{dt}", "fit", _w.astype(dt))
      for dt in ("int8", "uint8", "int64", "float32", "Int64", "Float64")],
    wvariant("w_Int64_NA", "fit", with_na("wts", "Int64", pd.NA), ref_drop=NA_ROWS),
    wvariant("w_Float64_NA", "fit", with_na("wts", "Float64", pd.NA), ref_drop=NA_ROWS),
    wvariant("w_object_floats", "fit", _wo),
    # zero-weight rows do not contribute: the fit of the remaining rows
    g_case("w_bool", "fit", PF, BASE.assign(wb=_xcov > -1), weights="wb",
           ref=fit_of(PF, BASE[_xcov > -1]), cmp=same_fit_any_nobs),
    g_case("w_list", "fit", PF, BASE, weights=_w.tolist(), ref=fit_of(PF, BASE, weights="wts")),
    g_case("w_series", "fit", PF, BASE, weights=_w.copy(), ref=fit_of(PF, BASE, weights="wts")),
    # a Series argument follows pandas: aligned on the index of data, or refused
    g_case("w_series_permuted_index", "fit", PF, BASE, weights=_w.iloc[PERM],
           ref=fit_of(PF, BASE, weights="wts")),
    g_case("w_series_disjoint_index", "error", PF, BASE,
           weights=pd.Series(_w.to_numpy(), index=np.arange(N) + 1000), match="weights"),
    g_case("off_series_permuted_index", "fit", PF, BASE, offset=_o.iloc[PERM],
           ref=fit_of(PF, BASE, offset="offs")),
    g_case("gamma_zero_weights_like_dropped", "fit", _POS_F, BASE, family=GAMMA,
           weights=np.where(_xcov > 1, 0.0, 1.0), ref=fit_of(_POS_F, BASE[_xcov <= 1], GAMMA),
           cmp=same_fit_any_nobs),
    wvariant("w_numeric_strings", "error", _w.astype(str), match=W_BAD),
    wvariant("w_letters", "error", np.where(_w > 1, "a", "b"), match=W_BAD),
    wvariant("w_category", "error", _w.astype("category"), match=W_BAD),
    wvariant("w_timedelta", "error", pd.to_timedelta(_w, unit="D"), match=W_BAD),
    wvariant("w_datetime", "error", pd.to_datetime(_w, unit="D"), match=W_BAD),
    *[ovariant(f"off_{dt}", "fit", _o.round().astype(dt), ref_values=_o.round())
      for dt in ("int8", "Int64")],
    ovariant("off_float32", "fit", _o.astype("float32"),
             ref_values=_o.astype("float32").astype(float)),
    ovariant("off_Float64_NA", "fit", with_na("offs", "Float64", pd.NA), ref_drop=NA_ROWS),
    ovariant("off_object_floats", "fit", _o.astype(object)),
    g_case("off_list", "fit", PF, BASE, offset=_o.tolist(), ref=fit_of(PF, BASE, offset="offs")),
    ovariant("off_numeric_strings", "error", _o.astype(str), match=O_BAD),
    ovariant("off_category", "error", _o.round(1).astype("category"), match=O_BAD),
    ovariant("off_datetime", "error", pd.to_datetime(_w, unit="D"), match=O_BAD),
]


@pytest.mark.parametrize(PARAMS, WEIGHT_OFFSET_CASES)
def test_weight_offset_dtypes(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 5. missing and non-finite values in every model variable --------------------------------
# var -> (column, dtype per kind of missing value); "grp" uses the numeric "gi" for ±inf
_MISSING_VALUE = {"nan": np.nan, "None": None, "NA": pd.NA, "inf": np.inf, "-inf": -np.inf}
_MISSING_DTYPE = {
    "cnt": {"nan": float, "None": object, "NA": "Float64"},
    "xcov": {"nan": float, "None": float, "NA": "Float64"},
    "grp": {"nan": object, "None": object, "NA": "string"},
    "wts": {"nan": float, "None": object, "NA": "Float64"},
    "offs": {"nan": float, "None": object, "NA": "Float64"},
    "expo": {"nan": float, "None": float, "NA": "Float64"},
}


def missing_case(var, kind, mode):
    col, formula = var, MF
    if var == "grp" and kind in ("inf", "-inf"):
        col, formula = "gi", MF.replace("grp", "gi")
    values = with_na(col, _MISSING_DTYPE[var].get(kind, float), _MISSING_VALUE[kind])
    data = BASE.assign(**{col: values})
    kw = {**MISS_KW, "missing": mode}
    cid = f"{var}_{kind}_{mode}"
    if var == "grp" and kind in ("inf", "-inf"):
        # R would make Inf a level of factor(); an infinite value in a numeric column is
        # a data error far more often: refused, naming the column
        return g_case(cid, "error", formula, data, match="gi", **kw)
    # naming the column or the argument (weights=, offset=) both point at the culprit
    match = {"wts": ("wts", "weights"), "offs": ("offs", "offset")}.get(var, var)
    if kind in ("inf", "-inf") or mode == "raise":
        return g_case(cid, "error", formula, data, match=match, **kw)
    return g_case(cid, "fit", formula, data, ref=fit_of(formula, BASE.drop(index=NA_ROWS),
                                                        **MISS_KW), **kw)


MISSING_CASES = [missing_case(var, kind, mode) for var in _MISSING_DTYPE
                 for kind in _MISSING_VALUE for mode in ("drop", "raise")]


@pytest.mark.parametrize(PARAMS, MISSING_CASES)
def test_missing_and_nonfinite(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 6. degenerate designs ----------------------------------------------------------------------
def _degenerate_data():
    d = {}
    two = np.where(_gi < 7, "a", "b")
    d["two"] = BASE.assign(g2=two)
    sing = _grp.copy()
    sing.iloc[:40] = [f"s{i}" for i in range(40)]  # five groups broken into singletons
    d["sing"] = BASE.assign(gs=sing)
    d["obs"] = BASE.assign(obs=[f"o{i}" for i in range(N)])
    lop = np.array(["a"] * N, dtype=object)
    lop[17] = "b"
    d["lopsided"] = BASE.assign(g2=lop)
    allone = _succ.copy()
    allone[_gi == 0] = 1.0
    d["group_all_success"] = BASE.assign(succ=allone)
    zero = _cnt.copy()
    zero[_gi == 0] = 0.0
    d["group_all_zero"] = BASE.assign(cnt=zero)
    # quasi-complete: xq = 1 always succeeds, xq = -1 always fails, xq = 0 mixed
    xq = np.sign(_xcov.round())
    d["quasi"] = BASE.assign(xq=xq, succ=np.where(xq == 0, _succ, (xq > 0).astype(float)))
    d["complete"] = BASE.assign(succ=(_xcov > 0).astype(float))
    sep = _succ.copy()
    sep[_fac == "c"] = 1.0
    d["sep_factor"] = BASE.assign(succ=sep)
    rng = np.random.default_rng(3)
    d["zero_var"] = BASE.assign(succ=(rng.uniform(size=N) < expit(0.2 + 0.8 * _xcov))
                                .astype(float))
    d["extra_cols"] = BASE.assign(c5=5.0, x2=2 * _xcov + 1, xdup=_xcov.copy(),
                                  xbig=_xcov * 1e8, xsmall=_xcov * 1e-8,
                                  xshift=_xcov + 1e4)
    one_succ = np.zeros(N)
    one_succ[17] = 1.0
    d["all_but_one"] = BASE.assign(succ=one_succ, cnt=one_succ)
    d["pairs"] = BASE.assign(gp=[f"p{i // 2}" for i in range(N)])
    single_level = _fac.copy()
    single_level.iloc[9] = "d"
    d["single_level"] = BASE.assign(fac=single_level, cnt=_cnt.where(_cnt.index != 9, 3.0))
    # a level whose only count is 0: its estimate diverges (Poisson separation)
    d["zero_level"] = BASE.assign(fac=single_level, cnt=_cnt.where(_cnt.index != 9, 0.0))
    return d


DEG = _degenerate_data()
_X = DEG["extra_cols"]


def glm_equivalent(res, _ref):
    """θ = 0 at the optimum: -2logLik is the GLM's."""
    data = DEG["zero_var"]
    glm = sm.GLM(data["succ"], sm.add_constant(data["xcov"]), family=BINOM).fit()
    assert res.theta.iloc[0] < 0.05
    assert res.neg2llf == pytest.approx(-2 * glm.llf, abs=1e-5)
    np.testing.assert_allclose(_vec(res), glm.params.to_numpy(), rtol=1e-3, atol=1e-4)


DEGENERATE_CASES = [
    g_case("one_group_via_subset", "error", PF, BASE, subset=(_gi == 0).to_numpy(),
           match="grp"),
    g_case("two_groups_poisson", "fit", "cnt ~ xcov + (1 | g2)", DEG["two"],
           ref=perm_ref("cnt ~ xcov + (1 | g2)", DEG["two"])),
    g_case("two_groups_binomial", "fit", "succ ~ xcov + (1 | g2)", DEG["two"], family=BINOM,
           ref=perm_ref("succ ~ xcov + (1 | g2)", DEG["two"], BINOM)),
    g_case("singleton_groups_mixed", "fit", "cnt ~ xcov + (1 | gs)", DEG["sing"],
           ref=perm_ref("cnt ~ xcov + (1 | gs)", DEG["sing"])),
    g_case("singleton_groups_binomial_trials", "fit", "cbind(k, size - k) ~ xcov + (1 | gs)",
           DEG["sing"], family=BINOM,
           ref=perm_ref("cbind(k, size - k) ~ xcov + (1 | gs)", DEG["sing"], BINOM)),
    g_case("observation_level_poisson", "fit", "cnt ~ xcov + (1 | obs)", DEG["obs"],
           ref=perm_ref("cnt ~ xcov + (1 | obs)", DEG["obs"])),
    g_case("all_rows_in_one_group_but_one", "fit", "cnt ~ xcov + (1 | g2)", DEG["lopsided"],
           ref=perm_ref("cnt ~ xcov + (1 | g2)", DEG["lopsided"])),
    g_case("all_in_one_group_but_one_binomial", "fit", "succ ~ xcov + (1 | g2)",
           DEG["lopsided"], family=BINOM,
           ref=perm_ref("succ ~ xcov + (1 | g2)", DEG["lopsided"], BINOM)),
    g_case("groups_of_two_binomial", "fit", "succ ~ xcov + (1 | gp)", DEG["pairs"],
           family=BINOM, ref=perm_ref("succ ~ xcov + (1 | gp)", DEG["pairs"], BINOM)),
    # a group that always succeeds is absorbed by its random effect: no separation
    g_case("group_all_success", "fit", BF, DEG["group_all_success"], family=BINOM,
           ref=perm_ref(BF, DEG["group_all_success"], BINOM)),
    g_case("group_all_zero_counts", "fit", PF, DEG["group_all_zero"],
           ref=perm_ref(PF, DEG["group_all_zero"])),
    g_case("factor_level_single_row", "fit", FF, DEG["single_level"],
           ref=perm_ref(FF, DEG["single_level"])),
    g_case("quasi_separation", "warn", "succ ~ xq + (1 | grp)", DEG["quasi"], family=BINOM),
    g_case("poisson_level_only_zero", "warn", FF, DEG["zero_level"]),
    g_case("complete_separation_continuous", "warn", BF, DEG["complete"], family=BINOM),
    g_case("separation_by_factor_level", "warn", "succ ~ fac + (1 | grp)", DEG["sep_factor"],
           family=BINOM),
    g_case("zero_variance_binomial", "fit", BF, DEG["zero_var"], family=BINOM,
           cmp=glm_equivalent),
    g_case("constant_covariate", "warn", "cnt ~ xcov + c5 + (1 | grp)", _X, match="c5",
           ref=fit_of(PF, BASE), cmp=kept_columns(["c5"])),
    g_case("collinear_combination", "warn", "cnt ~ xcov + x2 + (1 | grp)", _X, match="x2",
           ref=fit_of(PF, BASE), cmp=kept_columns(["x2"])),
    g_case("duplicate_column_later_dropped", "warn", "cnt ~ xcov + xdup + (1 | grp)", _X,
           match="xdup", ref=fit_of(PF, BASE), cmp=kept_columns(["xdup"])),
    g_case("duplicate_column_first_kept", "warn", "cnt ~ xdup + xcov + (1 | grp)", _X,
           match="xcov", ref=fit_of(PF, BASE), cmp=kept_columns(["xcov"])),
    g_case("collinear_times_1e8", "warn", "cnt ~ xcov + xbig + (1 | grp)", _X, match="xbig",
           ref=fit_of(PF, BASE), cmp=kept_columns(["xbig"])),
    g_case("collinear_times_1e-8", "warn", "cnt ~ xcov + xsmall + (1 | grp)", _X,
           match="xsmall", ref=fit_of(PF, BASE), cmp=kept_columns(["xsmall"])),
    g_case("collinear_plus_1e4", "warn", "cnt ~ xcov + xshift + (1 | grp)", _X,
           match="xshift", ref=fit_of(PF, BASE), cmp=kept_columns(["xshift"])),
    # badly scaled but full rank: nothing may be dropped (R's qr is scale-invariant)
    g_case("alone_times_1e8", "fit", "cnt ~ xbig + (1 | grp)", _X, ref=fit_of(PF, BASE),
           cmp=scaled_slope(1e8)),
    g_case("alone_times_1e-8", "fit", "cnt ~ xsmall + (1 | grp)", _X, ref=fit_of(PF, BASE),
           cmp=scaled_slope(1e-8)),
    g_case("alone_plus_1e4", "fit", "cnt ~ xshift + (1 | grp)", _X, ref=fit_of(PF, BASE),
           cmp=scaled_slope(1.0, 1e4)),
    g_case("two_scaled_covariates_1e8_1e-8", "fit", "cnt ~ xbig + zs + (1 | grp)",
           _X.assign(zs=BASE["zcov"] * 1e-8), cmp=no_dropped_column),
    g_case("response_all_zero_binomial", "error", BF, BASE.assign(succ=0.0), family=BINOM,
           match="succ"),
    g_case("response_all_one_binomial", "error", BF, BASE.assign(succ=1.0), family=BINOM,
           match="succ"),
    g_case("response_all_zero_poisson_int", "error", PF, BASE.assign(cnt=0), match="cnt"),
    g_case("cbind_no_successes", "error", "cbind(kz, size - kz) ~ xcov + (1 | grp)",
           BASE.assign(kz=0.0), family=BINOM, match="kz"),
    g_case("response_all_but_one_zero_binomial", "fit", BF, DEG["all_but_one"], family=BINOM,
           ref=perm_ref(BF, DEG["all_but_one"], BINOM)),
    g_case("response_all_but_one_zero_poisson", "fit", PF, DEG["all_but_one"],
           ref=perm_ref(PF, DEG["all_but_one"])),
    g_case("subset_selects_nothing", "error", PF, BASE, subset=np.zeros(N, dtype=bool),
           match="subset"),
]


@pytest.mark.parametrize(PARAMS, DEGENERATE_CASES)
def test_degenerate_designs(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 7. extreme scales ---------------------------------------------------------------------
def gamma_scaled(scale):
    """y -> scale * y with a log link: -2logLik + 2 n log(scale), intercept + log(scale)."""
    def cmp(res, ref):
        shift = 2 * N * np.log(scale)
        assert res.neg2llf == pytest.approx(ref.neg2llf + shift, abs=1e-5)
        p, q = _vec(res), _vec(ref)
        np.testing.assert_allclose(p[0], q[0] + np.log(scale), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(p[1:], q[1:], rtol=1e-4, atol=1e-5)
    return cmp


def intercept_shift(shift):
    def cmp(res, ref):
        same_llf(res, ref)
        p, q = _vec(res), _vec(ref)
        np.testing.assert_allclose(p[0], q[0] - shift, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(p[1:], q[1:], rtol=1e-4, atol=1e-5)
    return cmp


_big = BASE.assign(cnt=_cnt * 1000, k=BASE["k"] * 1e5, size=BASE["size"] * 1e5)
SCALE_CASES = [
    *[variant(f"x_times_{s:g}", "fit", PF, {"xcov": _xcov * s}, ref_changes={"xcov": _xcov},
              cmp=scaled_slope(s)) for s in (1e-8, 1e-6, 1e-4, 1e4, 1e6, 1e8)],
    *[variant(f"x_times_{s:g}_binomial", "fit", BF, {"xcov": _xcov * s}, family=BINOM,
              ref_changes={"xcov": _xcov}, cmp=scaled_slope(s)) for s in (1e-8, 1e8)],
    *[variant(f"x_plus_{s:g}", "fit", PF, {"xcov": _xcov + s}, ref_changes={"xcov": _xcov},
              cmp=scaled_slope(1.0, s)) for s in (1e4, 1e6)],
    variant("re_slope_x_times_1e6", "fit", "cnt ~ xcov + (1 + xcov | grp)",
            {"xcov": _xcov * 1e6}, ref_changes={"xcov": _xcov}, cmp=same_llf),
    *[variant(f"offset_plus_{s:g}", "fit", PF, {"offs": _o + s}, ref_changes={"offs": _o},
              cmp=intercept_shift(s), offset="offs") for s in (np.log(1e8), -30.0)],
    g_case("counts_times_1000", "fit", PF, _big, ref=perm_ref(PF, _big)),
    g_case("counts_plus_1e6", "fit", PF, BASE.assign(cnt=_cnt + 1e6),
           ref=perm_ref(PF, BASE.assign(cnt=_cnt + 1e6))),
    g_case("binomial_trials_1e5", "fit", CF, _big, family=BINOM,
           ref=perm_ref(CF, _big, BINOM)),
    *[variant(f"gamma_y_times_{s:g}", "fit", _POS_F, {"pos": BASE["pos"] * s}, family=GAMMA,
              ref_changes={"pos": BASE["pos"]}, cmp=gamma_scaled(s)) for s in (1e-6, 1e6)],
]


@pytest.mark.parametrize(PARAMS, SCALE_CASES)
def test_extreme_scales(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 8. bad (and R-style) arguments --------------------------------------------------------
L = sm.families.links
# statsmodels refuses most of these at construction; check_link=False is how they get through
BAD_LINKS = [
    ("binomial_inverse_power", sm.families.Binomial(L.InversePower(), check_link=False), BF,
     ("InversePower", "inverse")),
    ("binomial_logc", sm.families.Binomial(L.LogC(), check_link=False), BF, ("LogC", "logc")),
    ("poisson_logit", sm.families.Poisson(L.Logit(), check_link=False), PF, ("Logit", "logit")),
    ("poisson_probit", sm.families.Poisson(L.Probit(), check_link=False), PF,
     ("Probit", "probit")),
    ("gamma_logit", sm.families.Gamma(L.Logit(), check_link=False), _POS_F, ("Logit", "logit")),
]
GOOD_LINKS = [
    ("binomial_probit", sm.families.Binomial(L.Probit()), BF),
    ("binomial_cloglog", sm.families.Binomial(L.CLogLog()), BF),
    ("binomial_cauchy", sm.families.Binomial(L.Cauchy()), BF),
    ("poisson_sqrt", sm.families.Poisson(L.Sqrt(), check_link=False), PF),
]


class MyPoisson(sm.families.Poisson):
    """A user subclass: still the Poisson family."""


def arg(cid, verdict, formula=PF, data=BASE, family=POIS, match=None, ref=None, cmp=None,
        **kw):
    return g_case(cid, verdict, formula, data, family, ref=ref, match=match, cmp=cmp, **kw)


_nested = BASE.assign(sub=_fac)
_mask_na = pd.array(_xcov > 0, dtype="boolean")
_mask_na[[1, 2]] = pd.NA
_labels = [0, 5, 7, 11, *range(20, 100)]
ARGUMENT_CASES = [
    # family: lme4 takes a family function or its name
    arg("family_class", "fit", family=sm.families.Poisson, ref=fit_of(PF, BASE)),
    arg("family_string_poisson", "fit", family="poisson", ref=fit_of(PF, BASE)),
    arg("family_string_binomial", "fit", BF, family="binomial", ref=fit_of(BF, BASE, BINOM)),
    arg("family_None_is_binomial", "fit", BF, family=None, ref=fit_of(BF, BASE, BINOM)),
    # a subclass is fitted by the generic kernel, from its own loglike_obs
    arg("family_subclass", "fit", family=MyPoisson(), ref=fit_of(PF, BASE)),
    arg("family_unknown_string", "error", family="nosuchfamily", match="nosuchfamily"),
    arg("family_int", "error", family=3, match="family"),
    *[arg(f"link_{cid}", "error", formula, family=fam, match=m)
      for cid, fam, formula, m in BAD_LINKS],
    *[arg(f"link_{cid}", "fit", formula, family=fam, ref=perm_ref(formula, BASE, fam))
      for cid, fam, formula in GOOD_LINKS],
    # nAGQ: R's numbers are doubles, 1 and 2.0 are fine
    arg("nAGQ_True", "error", nAGQ=True, match="nAGQ"),
    arg("nAGQ_False", "error", nAGQ=False, match="nAGQ"),
    arg("nAGQ_float_1", "fit", nAGQ=1.0, ref=fit_of(PF, BASE)),
    arg("nAGQ_float_2", "fit", nAGQ=2.0, ref=fit_of(PF, BASE, nAGQ=2)),
    arg("nAGQ_numpy_int", "fit", nAGQ=np.int64(3), ref=fit_of(PF, BASE, nAGQ=3)),
    arg("nAGQ_numpy_float", "fit", nAGQ=np.float64(1.0), ref=fit_of(PF, BASE)),
    arg("nAGQ_string", "error", nAGQ="1", match="nAGQ"),
    arg("nAGQ_None", "error", nAGQ=None, match="nAGQ"),
    arg("nAGQ_2_nested_terms", "error", "cnt ~ xcov + (1 | grp/sub)", _nested, nAGQ=2,
        match="nAGQ"),
    # weights
    arg("weights_too_long", "error", weights=np.ones(N + 1), match="weights"),
    arg("weights_scalar", "error", weights=2.0, match="weights"),
    arg("weights_all_zero", "error", weights=np.zeros(N), match="weights"),
    arg("weights_all_nan", "error", weights=np.full(N, np.nan), match="weights"),
    arg("weights_dict", "error", weights={"a": 1}, match="weights"),
    arg("weights_2d", "error", weights=np.ones((N, 2)), match="weights"),
    # offset
    arg("offset_too_short_list", "error", offset=[0.0] * (N - 1), match="offset"),
    arg("offset_missing_column", "error", offset="nosuch", match="nosuch"),
    arg("offset_scalar", "error", offset=1.0, match="offset"),
    arg("offset_dict", "error", offset={"a": 1}, match="offset"),
    arg("offset_2d", "error", offset=np.zeros((N, 2)), match="offset"),
    arg("offset_all_nan", "error", offset=np.full(N, np.nan), match="offset"),
    # subset: R evaluates an expression; NA in a mask means "not selected"
    arg("subset_expression_string", "fit", subset="xcov > 0", ref=fit_of(PF, BASE[_xcov > 0])),
    arg("subset_short_mask", "error", subset=np.ones(N - 5, dtype=bool), match="subset"),
    arg("subset_misaligned_series", "error",
        subset=pd.Series(np.ones(N, dtype=bool), index=np.arange(N) + 1000), match="subset"),
    arg("subset_mask_with_NA", "error", subset=_mask_na, match="missing"),
    arg("subset_labels_not_in_index", "error", subset=[0, 5, 99999], match="subset"),
    arg("subset_label_list", "fit", subset=_labels, ref=fit_of(PF, BASE.loc[_labels])),
    arg("subset_shuffled_series", "fit", subset=(_xcov > -0.5).iloc[PERM],
        ref=fit_of(PF, BASE[_xcov > -0.5])),
    # start: lme4 takes a numeric vector as theta
    arg("start_list_is_theta", "fit", start=[1.0], ref=fit_of(PF, BASE)),
    arg("start_array_is_theta", "fit", start=np.array([0.5]), ref=fit_of(PF, BASE)),
    arg("start_theta_scalar", "fit", start={"theta": 0.7}, ref=fit_of(PF, BASE)),
    arg("start_empty_dict", "fit", start={}, ref=fit_of(PF, BASE)),
    arg("start_string", "error", start="abc", match="start"),
    arg("start_unknown_key", "error", start={"foo": 1}, match="foo"),
    arg("start_beta_wrong_length", "error", start={"beta": [0.1]}, match="beta"),
    arg("start_theta_nan", "error", start={"theta": [np.nan]}, match="theta"),
    arg("start_theta_inf", "error", start={"theta": [np.inf]}, match="theta"),
    arg("start_theta_string", "error", start={"theta": "a"}, match="theta"),
    arg("start_beta_nan", "error", start={"beta": [np.nan, 0.0]}, match="beta"),
    arg("start_beta_inf", "error", start={"beta": [np.inf, 0.0]}, match="beta"),
    arg("start_phi_zero", "error", _POS_F, family=GAMMA, start={"phi": 0.0}, match="phi"),
    arg("start_phi_negative", "error", _POS_F, family=GAMMA, start={"phi": -1.0},
        match="phi"),
    arg("start_phi_nan", "error", _POS_F, family=GAMMA, start={"phi": np.nan}, match="phi"),
    # maxfun
    *[arg(f"maxfun_{cid}", "error", maxfun=v, match="maxfun")
      for cid, v in [("0", 0), ("minus1", -1), ("2.5", 2.5), ("str", "100"), ("None", None)]],
    arg("maxfun_tiny_warns", "warn", maxfun=5),
    arg("maxfun_float_integer", "fit", maxfun=3000.0, ref=fit_of(PF, BASE)),
    arg("maxfun_numpy_int", "fit", maxfun=np.int64(3000), ref=fit_of(PF, BASE)),
    # blas_threads
    *[arg(f"blas_threads_{cid}", "error", blas_threads=v, match="blas_threads")
      for cid, v in [("str", "x"), ("minus1", -1), ("1.5", 1.5), ("0", 0)]],
    *[arg(f"blas_threads_{v}", "fit", blas_threads=v, ref=fit_of(PF, BASE))
      for v in (None, 1, 2)],
    # the other fit arguments
    *[arg(f"cov_type_{cid}", "error", cov_type=v, match="cov_type")
      for cid, v in [("robust", "robust"), ("HC0", "HC0"), ("int", 1)]],
    arg("calc_hessian_string", "error", calc_hessian="yes", match="calc_hessian"),
    arg("information_unknown", "error", information="bogus", match="information"),
    arg("unknown_fit_kwarg", "error", foo=1, match="foo"),
    arg("missing_unknown", "error", missing="omit", match="missing"),
    arg("missing_None", "error", missing=None, match="missing"),
    arg("missing_none_with_nan", "error", data=BASE.assign(xcov=with_na("xcov", float, np.nan)),
        missing="none", match="xcov"),
    arg("missing_raise_clean_data", "fit", missing="raise", ref=fit_of(PF, BASE)),
    # data
    arg("data_None", "error", data=None, match="data"),
    arg("data_ndarray", "error", data=BASE[["cnt", "xcov"]].to_numpy(), match="data"),
    arg("data_series", "error", data=BASE["cnt"], match="data"),
    arg("data_empty", "error", data=BASE.iloc[:0], match=("data", "observations")),
    arg("data_string_index_with_NA", "fit",
        data=BASE.assign(xcov=with_na("xcov", float, np.nan)).set_index(
            pd.Index([f"r{i}" for i in range(N)])),
        ref=fit_of(PF, BASE.drop(index=NA_ROWS))),
    arg("data_duplicate_index_with_mask", "fit", data=BASE.set_index(np.arange(N) // 2),
        subset=(_xcov > -1).to_numpy(), ref=fit_of(PF, BASE[_xcov > -1])),
    arg("data_dict_of_lists", "fit", data={c: BASE[c].tolist() for c in ("cnt", "xcov", "grp")},
        ref=fit_of(PF, BASE)),
    # formula
    *[arg(f"formula_{cid}", "error", formula=v, match="formula")
      for cid, v in [("int", 123), ("None", None), ("bytes", b"cnt ~ xcov + (1 | grp)"),
                     ("empty", "")]],
    arg("formula_bar_in_response", "error", "cnt | grp ~ xcov + (1 | grp)",
        match="cnt | grp"),
    arg("formula_no_response", "error", "~ xcov + (1 | grp)", match="response"),
    arg("formula_no_tilde", "error", "cnt xcov + (1 | grp)", match="~"),
    arg("formula_two_tildes", "error", "cnt ~ xcov ~ zcov + (1 | grp)", match="~"),
    arg("formula_unknown_re_covariate", "error", "cnt ~ xcov + (1 + nosuch | grp)",
        match="nosuch"),
    arg("formula_unknown_in_cbind", "error", "cbind(nosuch, size - k) ~ xcov + (1 | grp)",
        family=BINOM, match="nosuch"),
    arg("formula_unknown_function_in_offset", "error",
        "cnt ~ xcov + offset(nosuchfn(expo)) + (1 | grp)", match="nosuchfn"),
    arg("formula_extra_closing_paren", "error", "cnt ~ xcov + (1 | grp))", match="parenthes"),
    arg("formula_plus_in_grouping", "error", "cnt ~ xcov + (1 | grp + fac)",
        match="grp + fac"),
    arg("formula_factor_call_in_grouping", "fit", "cnt ~ xcov + (1 | factor(grp))",
        ref=fit_of(PF, BASE)),
    arg("formula_no_spaces", "fit", "cnt~xcov+(1|grp)", ref=fit_of(PF, BASE)),
    arg("formula_implicit_re_intercept", "fit", "cnt ~ xcov + (xcov | grp)",
        ref=fit_of("cnt ~ xcov + (1 + xcov | grp)", BASE)),
    arg("formula_nested_equals_expanded", "fit", "cnt ~ xcov + (1 | grp/fac)",
        ref=fit_of("cnt ~ xcov + (1 | grp) + (1 | grp:fac)", BASE)),
]


@pytest.mark.parametrize(PARAMS, ARGUMENT_CASES)
def test_arguments(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 9. the array API ----------------------------------------------------------------------
_Y = BASE["cnt"].to_numpy()
_EX = np.column_stack([np.ones(N), _xcov.to_numpy()])
_G = _grp.to_numpy()
_KEEP = np.setdiff1d(np.arange(N), NA_ROWS)


def glmm_call(endog, exog, groups, missing="none", **kw):
    return lambda: GLMM(endog, exog, groups=groups, family=POIS, missing=missing,
                        **kw).fit(**FAST)


def glmm_case(cid, verdict, endog=_Y, exog=_EX, groups=_G, match=None, ref=None, **kw):
    inputs = [v for v in (endog, exog, groups, *kw.values()) if isinstance(v, np.ndarray)]
    return case(cid, verdict, glmm_call(endog, exog, groups, **kw), inputs, ref, match)


def _with(arr, value, rows=NA_ROWS, dtype=None):
    out = np.array(arr, dtype=dtype, copy=True)
    out[rows] = value
    return out


CLEAN_ARRAYS = glmm_call(_Y[_KEEP], _EX[_KEEP], _G[_KEEP])
ARRAY_CASES = [
    glmm_case("groups_None_missing_none", "error", groups=_with(_G, None), match="groups"),
    glmm_case("groups_nan_missing_none", "error", groups=_with(_gi, np.nan, dtype=float),
              match="groups"),
    glmm_case("groups_nan_missing_raise", "error", groups=_with(_gi, np.nan, dtype=float),
              missing="raise", match="groups"),
    glmm_case("groups_nan_missing_drop", "fit", groups=_with(_G, np.nan), missing="drop",
              ref=CLEAN_ARRAYS),
    glmm_case("groups_None_missing_drop", "fit", groups=_with(_G, None), missing="drop",
              ref=CLEAN_ARRAYS),
    glmm_case("endog_nan_missing_drop", "fit", endog=_with(_Y, np.nan), missing="drop",
              ref=CLEAN_ARRAYS),
    glmm_case("exog_nan_missing_drop", "fit", exog=_with(_EX, np.nan), missing="drop",
              ref=CLEAN_ARRAYS),
    glmm_case("offset_nan_missing_drop", "fit", offset=_with(np.zeros(N), np.nan),
              missing="drop", ref=CLEAN_ARRAYS),
    glmm_case("weights_nan_missing_drop", "fit", weights=_with(np.ones(N), np.nan),
              missing="drop", ref=CLEAN_ARRAYS),
    glmm_case("exog_re_nan_missing_drop", "fit",
              exog_re=_with(np.ones((N, 1)), np.nan), missing="drop", ref=CLEAN_ARRAYS),
    glmm_case("endog_nan_missing_raise", "error", endog=_with(_Y, np.nan), missing="raise",
              match="endog"),
    glmm_case("exog_nan_missing_raise", "error", exog=_with(_EX, np.nan), missing="raise",
              match="exog"),
    glmm_case("endog_nan_missing_none", "error", endog=_with(_Y, np.nan), match="endog"),
    glmm_case("exog_inf", "error", exog=_with(_EX, np.inf), match="exog"),
    glmm_case("groups_short", "error", groups=_G[:-3], match="groups"),
    glmm_case("groups_2d_two_columns", "error", groups=np.column_stack([_G, _G]),
              match="groups"),
    glmm_case("groups_2d_one_column", "error", groups=_G[:, None], match="groups"),
    glmm_case("exog_re_wrong_length", "error", exog_re=np.ones(N - 1), match="exog_re"),
    glmm_case("endog_exog_length_mismatch", "error", exog=_EX[:-1], match="exog"),
    glmm_case("exog_object_strings", "error", exog=np.column_stack([_EX[:, 0], _G]),
              match="exog"),
    glmm_case("groups_datetime", "fit", groups=DATES.to_numpy(),
              ref=glmm_call(_Y, _EX, _gi.to_numpy())),
    glmm_case("groups_categorical", "fit", groups=pd.Categorical(_G),
              ref=glmm_call(_Y, _EX, _G)),
    glmm_case("groups_list", "fit", groups=list(_G), ref=glmm_call(_Y, _EX, _G)),
    glmm_case("endog_list", "fit", endog=list(_Y), ref=glmm_call(_Y, _EX, _G)),
]


@pytest.mark.parametrize(PARAMS, ARRAY_CASES)
def test_array_api(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 10. prediction on the fitted rows with re-typed grouping columns --------------------------
def predicts_fitted(res, _ref):
    pred, fitted = res
    np.testing.assert_allclose(np.asarray(pred, float), np.asarray(fitted, float), rtol=1e-8,
                               err_msg="predict(newdata=fitted rows) != fittedvalues")


def pred_case(cid, fit_values, new_values, allow_new_levels=False, fit_data=BASE):
    """Fit with column gg = fit_values, predict on the same rows with gg = new_values."""
    data = fit_data.assign(gg=fit_values)
    newdata = fit_data.assign(gg=new_values)

    def call():
        res = glmer(GF, data, family=POIS, **FAST)
        return res.predict(newdata, allow_new_levels=allow_new_levels), res.fittedvalues

    return case(cid, "fit", call, (data, newdata), cmp=predicts_fitted)


_cat = pd.Categorical(_grp)
PREDICT_CASES = [
    pred_case("int_as_float", _gi, _gi.astype(float)),
    pred_case("int_as_float_allow_new", _gi, _gi.astype(float), allow_new_levels=True),
    pred_case("int_as_Int64", _gi, _gi.astype("Int64")),
    pred_case("int_as_int8", _gi, _gi.astype("int8")),
    pred_case("int_as_str", _gi, _gi.astype(str)),
    pred_case("int_as_category", _gi, _gi.astype("category")),
    pred_case("float_as_int", _gi.astype(float), _gi),
    pred_case("datetime_as_datetime", DATES, DATES),
    pred_case("datetime_allow_new", DATES, DATES, allow_new_levels=True),
    pred_case("datetime_as_string", DATES, DATES.astype(str)),
    pred_case("category_other_order", _cat,
              pd.Categorical(_grp, categories=sorted(_grp.unique(), reverse=True))),
    pred_case("category_other_order_allow_new", _cat,
              pd.Categorical(_grp, categories=sorted(_grp.unique(), reverse=True)),
              allow_new_levels=True),
    pred_case("object_as_string_dtype", _grp, _grp.astype("string")),
    pred_case("object_as_category", _grp, _grp.astype("category")),
    pred_case("bool_as_bool", _gi < 7, _gi < 7),
    pred_case("timedelta_as_timedelta", pd.to_timedelta(_gi, unit="h"),
              pd.to_timedelta(_gi, unit="h")),
    pred_case("mixed_1_and_str1", _g_one, _g_one),
]


@pytest.mark.parametrize(PARAMS, PREDICT_CASES)
def test_predict_on_fitted_rows(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 11. BLAS thread limits survive concurrent fits --------------------------------------------
def _blas_state():
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info()
                  if i["user_api"] == "blas")


def two_threads(blas_threads, repeats=4):
    def call():
        before = _blas_state()
        barrier = threading.Barrier(2)
        errors = []

        def work(limit):
            try:
                barrier.wait()
                for _ in range(repeats):
                    glmer(PF, BASE, family=POIS, blas_threads=limit, **FAST)
            except Exception as exc:  # reported below
                errors.append(exc)

        # a tuple gives each thread its own limit
        limits = blas_threads if isinstance(blas_threads, tuple) else (blas_threads,) * 2
        threads = [threading.Thread(target=work, args=(limit,)) for limit in limits]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        after = _blas_state()
        assert after == before, f"BLAS limits changed: {before} -> {after}"
        return None
    name = "_".join(map(str, blas_threads)) if isinstance(blas_threads, tuple) else blas_threads
    return case(f"threads_blas_{name}", "fit", call, (BASE,))


THREAD_CASES = [two_threads(v) for v in (1, 2, "auto", None, (1, 2))]


@pytest.mark.parametrize(PARAMS, THREAD_CASES)
def test_blas_limits_two_threads(verdict, call, inputs, ref, match, cmp):
    run_case(verdict, call, inputs, ref, match, cmp)


# -- 12. property-based: missing rows, group dtypes and order, subsets ------------------------
# no shrinking: a failure is reported as found (shrinking refits hundreds of times)
HYP = settings(max_examples=12, deadline=None, derandomize=True, database=None,
               phases=[Phase.explicit, Phase.generate],
               suppress_health_check=[HealthCheck.too_slow])
_HYP_GROUP_DTYPES = {
    "int8": lambda: _gi.astype("int8"), "float": lambda: _gi.astype(float),
    "string": lambda: _grp.astype("string"), "category": lambda: _grp.astype("category"),
    "datetime": lambda: DATES, "object": lambda: _grp.astype(object),
}


@HYP
@given(var=st.sampled_from(["cnt", "xcov", "grp", "wts", "offs", "expo"]),
       kind=st.sampled_from(["nan", "None", "NA"]),
       rows=st.sets(st.integers(0, N - 1), min_size=1, max_size=6))
def test_hyp_missing_rows_are_dropped(var, kind, rows):
    rows = sorted(rows)
    data = BASE.assign(**{var: with_na(var, _MISSING_DTYPE[var][kind], _MISSING_VALUE[kind],
                                       rows=rows)})
    run_case("fit", fit_of(MF, data, **MISS_KW), (data,),
             ref=fit_of(MF, BASE.drop(index=rows), **MISS_KW), cmp=same_fit)


@HYP
@given(dtype=st.sampled_from(sorted(_HYP_GROUP_DTYPES)), order=st.permutations(range(N)))
def test_hyp_group_dtype_and_row_order(dtype, order):
    data = BASE.assign(gg=_HYP_GROUP_DTYPES[dtype]()).iloc[list(order)]
    run_case("fit", fit_of(GF, data), (data,), ref=fit_of(PF, BASE), cmp=same_fit)


@HYP
@given(drop=st.sets(st.integers(0, N - 1), max_size=30))
def test_hyp_subset_mask_equals_subset_frame(drop):
    mask = np.ones(N, dtype=bool)
    mask[sorted(drop)] = False
    run_case("fit", fit_of(PF, BASE, subset=mask), (BASE, mask),
             ref=fit_of(PF, BASE[mask]), cmp=same_fit)
