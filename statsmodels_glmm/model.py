"""Generalized linear mixed models fitted by maximum likelihood.

The model is

    y | u ~ family(μ),  g(μ) = offset + X β + Z Λ_θ u,  u ~ N(0, I_q),

so the random effects b = Λ_θ u have covariance Λ_θ Λ_θ' (times σ² for the
linear mixed model). The marginal likelihood is approximated, at the conditional
modes û found by PIRLS, by

- ``nAGQ=1``: the Laplace approximation,
  −2ℓ ≈ −2 log p(y | û) + ‖û‖² + log|L|², with L L' = Λ'Z'WZΛ + I;
- ``nAGQ>1``: adaptive Gauss-Hermite quadrature (one scalar random-effects term);
- ``nAGQ=0``: the same Laplace expression with β estimated jointly with u by
  PIRLS, so the optimizer only sees θ (lme4's shortcut).

The default fit is lme4's: a first stage over θ with nAGQ=0, then the final
stage over (θ, β) started from it. Gaussian with the identity link is the
linear mixed model, fitted exactly by the profiled (RE)ML criterion of ``lmer``.
"""

import contextlib
import copy
import dataclasses
from re import search as re_search
import sys
import threading
import warnings

import numpy as np
import pandas as pd
from patsy import EvalEnvironment, PatsyError, dmatrices, dmatrix
import scipy.linalg as sla
import statsmodels.api as sm
import statsmodels.base.model as base
from statsmodels.tools.sm_exceptions import (
    ConvergenceWarning,
    HessianInversionWarning,
    PerfectSeparationWarning,
    ValueWarning,
)
from threadpoolctl import ThreadpoolController

from .blocked_cholesky import PenalizedSystem
from .design import analyse_design
from .exceptions import BoundaryWarning, SingularFitWarning
from .formula_parser import parse_formula, split_top_level
from .frame import (
    RESPONSE_COLUMN,
    binary_response,
    check_covariate_dtypes,
    check_design_finite,
    check_values,
    count_expression_missing,
    evaluate_response,
    normalize_columns,
    referenced_columns,
)
from .optimizer import bobyqa
from .pirls import PirlsError, damped_factor, pirls
from .quadrature import agq_deviance
from .r_formula import R_NAMESPACE, has_formula_dot, translate_expression, translate_formula
from .re_terms import RandomEffects, RandomEffectsTerm, build_random_effects, group_codes
from .response import Response, family_name, has_dispersion
from .validation import (
    as_data_frame,
    check_family,
    check_fit_arguments,
    check_start,
    complete_arrays,
    numeric_vector,
    select_rows,
)

__all__ = ["GLMM", "glmer", "glmer_nb"]

_MAX_NAGQ = 100
_MAX_AGQ_NODES = 10_000  # product grid nAGQ**S for S correlated random effects
# Dense blocks below this size are factored faster by single-threaded BLAS: thread
# synchronisation costs more than it saves (2.2x on a 500 x 100 crossed Poisson).
_SMALL_DENSE = 1000
# The finite-difference Hessian costs ~k² deviance evaluations of O(n) each; above
# this n·k² it is skipped by default (lme4 ≥ 1.1-38 skips it for every n ≥ 1e4).
_HESSIAN_BUDGET = 2e7
# A random-effect SD above this on a logit/probit/log scale (odds or rates varying by
# e^20 between levels one SD apart) only arises when the variance diverges.
_SD_LIMIT = 10.0
_BLAS_CONTROLLER = None
_BLAS_LOCK = threading.Lock()
_BLAS_STATE = {"active": 0, "limiter": None}


@contextlib.contextmanager
def _blas_limits(threads):
    """Limit BLAS threads for the duration of a fit (``None``: leave them alone).

    Fits may run in several threads at once: the first one to enter saves the
    process setting and the last one to leave restores it, so concurrent fits
    never leave the process with another thread count than it had.
    """
    global _BLAS_CONTROLLER
    if threads is None:
        yield
        return
    with _BLAS_LOCK:
        if _BLAS_CONTROLLER is None:
            _BLAS_CONTROLLER = ThreadpoolController()
        if _BLAS_STATE["active"] == 0:
            _BLAS_STATE["limiter"] = _BLAS_CONTROLLER.limit(limits=threads, user_api="blas")
        _BLAS_STATE["active"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE["active"] -= 1
            if _BLAS_STATE["active"] == 0:
                _BLAS_STATE["limiter"].restore_original_limits()
                _BLAS_STATE["limiter"] = None


def _caller_namespace(depth):
    """The variables visible ``depth`` frames up, as a formula evaluation env."""
    frame = sys._getframe(depth + 1)
    namespace = dict(frame.f_globals)
    namespace.update(frame.f_locals)
    return namespace


def _expression_values(value, frame, eval_env, what):
    """``weights=``/``offset=`` given as an R expression (``offset="log(Area)"``, as
    an R script writes ``offset = log(Area)``): its values; a column name or an
    array is returned as it is."""
    if not isinstance(value, str) or value in frame.columns:
        return value
    if not re_search(r"[^\w.]", value):  # a plain name that is not a column
        return value  # numeric_vector names it
    code = translate_expression(value, frame)
    return evaluate_response(code, frame, eval_env, what=f"{what}=").to_numpy()


def _check_proportion(parsed, family, weights):
    """lme4's proportion response ``y/n`` needs ``weights=n`` (the trials)."""
    if parsed.cbind is not None or weights is not None:
        return
    if family_name(family) == "binomial" and len(split_top_level(parsed.lhs, "/")) == 2:
        trials = split_top_level(parsed.lhs, "/")[1][1]
        raise ValueError(f"the proportion response {parsed.lhs!r} needs weights={trials} "
                         "(the number of trials), as in lme4; or write "
                         f"cbind(successes, failures)")


class GLMM(base.LikelihoodModel):
    """Generalized linear mixed model (lme4's ``glmer``).

    Parameters
    ----------
    endog : array_like
        Response: 0/1 or proportions, a two-column ``[successes, failures]``
        array (binomial), counts (Poisson) or positive values.
    exog : array_like
        Fixed-effects design matrix X.
    random_effects : re_terms.RandomEffects, optional
        The random-effects terms. Alternatively give ``groups`` (and
        ``exog_re``) for a single term.
    family : statsmodels family, optional
        Default ``Binomial()``. Never modified; a copy is kept.
    offset, weights : array_like, optional
        Offset on the linear-predictor scale; prior weights (as lme4's
        ``weights``: binomial trials for proportions, precision weights
        otherwise).
    groups : array_like, optional
        Grouping factor of a single random-effects term.
    exog_re : array_like, optional
        Covariates of that term (default: a random intercept).
    missing : {"none", "drop", "raise"}
        Array input: ``"drop"`` removes the rows with a missing value (NaN,
        None) in endog, exog, groups, exog_re, offset or weights, all of them
        consistently; ``"none"`` and ``"raise"`` refuse them. Formula input
        drops incomplete rows by default (see :meth:`from_formula`).

    Notes
    -----
    Use :func:`statsmodels_glmm.glmer` or :meth:`from_formula` for lme4's formula
    syntax. The parameters are θ (relative covariance factors, lme4's order and
    parameterization), β, and for Gamma, inverse Gaussian and Gaussian with a
    non-identity link the dispersion φ, estimated by maximum likelihood.
    """

    _formula_max_endog = 2

    def __init__(self, endog, exog, random_effects=None, family=None, offset=None,
                 weights=None, groups=None, exog_re=None, missing="none", **kwargs):
        self.parsed_formula = kwargs.pop("parsed_formula", None)
        endog_label = kwargs.pop("endog_label", None)
        family = check_family(family)
        if random_effects is not None and not isinstance(random_effects, RandomEffects):
            raise TypeError("random_effects must be a RandomEffects instance")
        if self.parsed_formula is None:
            endog, exog, groups, exog_re, offset, weights = complete_arrays(
                endog, exog, groups, exog_re, offset, weights, missing,
                has_terms=random_effects is not None)
        super().__init__(endog, exog, missing="none", **kwargs)
        if random_effects is None:
            random_effects = self._single_term(groups, exog_re)
        self.family = copy.deepcopy(family)
        self.random_effects = random_effects
        self.endog_label = endog_label or (
            self.endog_names if isinstance(self.endog_names, str) else "y")
        self.response = Response(self.family, self.endog, weights, offset, self.endog_label)
        self.offset = self.response.offset
        self.weights = None if weights is None else self.response.prior_weights
        self.exog = np.asarray(self.exog, dtype=float)
        self.is_lmm = (family_name(self.family) == "gaussian"
                       and type(self.family.link).__name__ == "Identity")
        self._check_design()
        self.system = PenalizedSystem(random_effects)
        self.k_fe = self.exog.shape[1]
        self.k_theta = random_effects.n_theta
        self.has_dispersion = has_dispersion(self.family)
        self.nobs = float(self.response.nobs)
        self.k_extra = self.k_theta + int(self.has_dispersion)
        self.df_model = self.k_fe - 1
        self.df_resid = self.nobs - self.k_fe - self.k_extra
        self._init_keys.extend(["random_effects", "family", "offset", "weights"])

    # -- pickling --------------------------------------------------------------------
    def __getstate__(self):
        """statsmodels rebuilds a formula model's design on unpickling by evaluating
        the formula in guessed stack frames, where R's functions of the translated
        formula (factor, poly, scale ...) are not found; the design is rebuilt
        here instead, in R_NAMESPACE."""
        state = self.__dict__.copy()
        data = state.get("data")
        specs = ("model_spec", "design_info")  # statsmodels >= 0.15, 0.14
        if data is not None and any(k in vars(data) for k in specs):
            # a shallow copy without statsmodels' own (get/set)state round trip
            fields = {k: v for k, v in vars(data).items() if k not in specs}
            data = object.__new__(type(data))
            data.__dict__.update(fields, restore_r_model_spec=True)
            state["data"] = data
        return state

    def __setstate__(self, state):
        data = state.get("data")
        if data is not None and vars(data).pop("restore_r_model_spec", False):
            try:
                from statsmodels.formula._manager import FormulaManager
            except ImportError:  # statsmodels 0.14: patsy's design_info
                _, design = dmatrices(data.formula, data.frame, return_type="dataframe",
                                      eval_env=EvalEnvironment([R_NAMESPACE]))
                data.design_info = design.design_info
            else:
                manager = FormulaManager()
                manager.get_matrices(data.formula, data.frame, eval_env=dict(R_NAMESPACE),
                                     pandas=True)
                data.model_spec = manager.spec
        self.__dict__.update(state)

    # -- construction -----------------------------------------------------------
    def _single_term(self, groups, exog_re):
        groups = pd.Series(np.asarray(groups, dtype=object))
        n = len(groups)
        if exog_re is None:
            z, cnames = np.ones((n, 1)), ["(Intercept)"]
        else:
            z = np.asarray(exog_re, dtype=float).reshape(n, -1)
            cnames = list(getattr(exog_re, "columns", [f"z{i}" for i in range(z.shape[1])]))
            if not np.all(np.isfinite(z)):
                raise ValueError("exog_re has non-finite values")
        refs, levels = group_codes(pd.DataFrame({"group": groups}), ("group",))
        term = RandomEffectsTerm("group", cnames, "custom", refs, levels, z, ("group",))
        return RandomEffects([term])

    def _check_design(self):
        X = self.exog
        n = self.response.nobs
        if X.ndim != 2 or X.shape[0] != n:
            raise ValueError(f"exog must have {n} rows")
        if not np.all(np.isfinite(X)):
            raise ValueError("the fixed-effects design has non-finite values")
        self._drop_collinear_columns()
        self._check_response()
        for term in self.random_effects.terms:
            if term.n_levels < 2:
                raise ValueError(
                    f"grouping factor {term.group_name!r} has {term.n_levels} level; "
                    "a random effect needs at least two"
                )
            if term.n_re > n:
                raise ValueError(
                    f"term ({term.expr} | {term.group_name}) has {term.n_re} random "
                    f"effects for {n} observations; the model is not identifiable"
                )

    def _drop_collinear_columns(self, tol=1e-7):
        """Drop columns of X that are linear combinations of earlier ones, as lme4
        (R's scale-invariant QR rank rule, tolerance 1e-7); they are reported and
        kept as NaN in ``params``."""
        names = list(self.exog_names) if self.exog_names is not None else [
            f"x{i}" for i in range(self.exog.shape[1])]
        X = self.exog
        kept, self.design_basis = analyse_design(X, tol)
        kept = kept.tolist()
        if len(kept) < X.shape[1]:
            dropped = [names[i] for i in range(X.shape[1]) if i not in kept]
            warnings.warn(
                f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
                f"column(s): {', '.join(dropped)} (linear combinations of earlier columns; "
                "reported as NaN in params)", ValueWarning, stacklevel=4)
            self.exog = X[:, kept]
        self.kept_columns = np.asarray(kept, dtype=np.intp)
        self.fe_names = [names[i] for i in kept]
        self.dropped_columns = [n for i, n in enumerate(names) if i not in kept]

    def _check_response(self):
        """Errors and warnings about the response that lme4/R give."""
        resp = self.response
        y = resp.y[resp.weights > 0]
        if y.size and np.ptp(y) == 0:
            raise ValueError(f"response {self.endog_label!r} is constant ({y[0]:g}): there is "
                             "nothing to model")
        if resp.name == "binomial":
            counts = resp.m * resp.y  # rounded to ~1e-16 relative: with 1e9 trials, ~1e-7
            if np.any(np.abs(counts - np.round(counts)) > 1e-8 * np.maximum(counts, 1.0)):
                warnings.warn(f"non-integer numbers of successes in binomial response "
                              f"{self.endog_label!r}", ValueWarning, stacklevel=4)
        if resp.name == "poisson" and np.any(np.abs(resp.y - np.round(resp.y)) > 1e-8):
            warnings.warn(f"non-integer counts in Poisson response {self.endog_label!r}",
                          ValueWarning, stacklevel=4)
        bernoulli = resp.name == "binomial" and np.all(resp.trials == 1) and \
            np.all(resp.weights <= 1)
        for term in self.random_effects.terms:
            if term.n_levels == resp.nobs and (bernoulli or self.is_lmm):
                kind = "0/1 (Bernoulli) response" if bernoulli else "linear mixed model"
                raise ValueError(
                    f"grouping factor {term.group_name!r} has one level per observation: "
                    f"its random effect is not identifiable in a {kind}")

    @classmethod
    def from_formula(cls, formula, data, family=None, subset=None, weights=None,
                     offset=None, missing="drop", eval_env=None, **kwargs):
        """Create a GLMM from an lme4-style formula.

        Parameters
        ----------
        formula : str
            ``"y ~ x + (1 + x | g)"``; see :mod:`statsmodels_glmm.formula_parser`
            for the random-effects syntax, and ``cbind(successes, failures)``
            for a binomial response. A boolean, two-level categorical or text
            response (any expression, e.g. ``Q("my y")``) is recoded to 0/1, the
            first level being 0.
        data : pandas.DataFrame
            Not modified. polars/pyarrow frames are converted.
        family : statsmodels family, optional
        subset : array_like or str, optional
            Boolean mask, index labels, or an expression over the columns such
            as ``"urban == 'Y'"``.
        weights, offset : str or array_like, optional
            Column names or arrays (one value per row of ``data``).
            ``offset(...)`` terms in the formula are added to ``offset``.
        missing : {"drop", "raise"}
            Rows with a missing value (NaN, None, pd.NA) in any variable of the
            model (response, fixed or random covariates, grouping factors,
            weights, offset) are dropped, or an error is raised. Infinite
            values are always an error.
        eval_env : dict, optional
            Namespace for functions in the formula (default: the caller's).

        Returns
        -------
        GLMM
        """
        if missing not in ("drop", "raise", "none"):
            raise ValueError(f"missing must be 'drop' or 'raise', got {missing!r}")
        if missing == "none":  # statsmodels' "no checks" cannot mean NaN in the fit
            missing = "raise"
        data = as_data_frame(data)
        family = check_family(family)
        if eval_env is None:
            eval_env = _caller_namespace(1)
        eval_env = {**eval_env, **R_NAMESPACE}  # the formula is in R's language
        parsed = parse_formula(formula)
        if not parsed.bars:
            raise PatsyError(
                f"formula {formula!r} has no random-effects term like (1 | g); "
                "for a model without random effects use statsmodels GLM"
            )
        frame = select_rows(data, subset)
        if len(frame) == 0:
            raise ValueError("subset selects no rows of data")
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
        duplicated = frame.columns[frame.columns.duplicated()]
        if len(duplicated):
            raise ValueError(f"data has duplicated column names: {sorted(set(duplicated))}")
        used = (list(frame.columns) if has_formula_dot(parsed.fixed_rhs)
                else referenced_columns(formula, frame.columns))
        frame = normalize_columns(frame, used)
        check_values(frame, used, missing)
        check_covariate_dtypes(frame, parsed.fixed_rhs, "the fixed effects")
        for bar in parsed.bars:
            check_covariate_dtypes(frame, bar.expr, f"random-effects term {bar}")
        _check_proportion(parsed, family, weights)
        parsed = translate_formula(parsed, frame)
        fixed_formula = parsed.fixed_formula
        if parsed.cbind is None and len(split_top_level(parsed.lhs, "+")) == 1:
            response = evaluate_response(parsed.lhs, frame, eval_env)
            binomial = family_name(family) == "binomial"
            # assign, never set an item: frame may share columns with the user's data
            frame = frame.assign(**{RESPONSE_COLUMN: binary_response(
                response, parsed.lhs, binomial).to_numpy()})
            fixed_formula = f"{RESPONSE_COLUMN} ~ {parsed.fixed_rhs}"
        extra = {what: numeric_vector(_expression_values(value, frame, eval_env, what),
                                      frame, what)
                 for what, value in (("weights", weights), ("offset", offset))}
        for what, values in extra.items():
            if values is not None and np.isnan(values).all():
                raise ValueError(f"{what} has only missing values")
        # rows by position from here on: the data's index may repeat labels (after a
        # concat), which label-based selection of complete rows would confuse
        labels = frame.index
        frame = frame.set_axis(pd.RangeIndex(len(frame)), axis=0)
        complete = cls._complete_cases(frame, fixed_formula, parsed, extra, missing, eval_env)
        produced = 0 if len(complete) == len(frame) else count_expression_missing(
            frame, used, extra.values(), frame.index.isin(complete.index))
        if produced:
            warnings.warn(f"{produced} row(s) with every variable observed are dropped "
                          "because an expression of the formula is missing or undefined "
                          "there (e.g. the log of a negative number)", ValueWarning,
                          stacklevel=3)
        frame = complete
        if len(frame) == 0:
            raise ValueError("no observations left after removing rows with missing values")
        keep = labels[frame.index]
        env = EvalEnvironment([eval_env])
        re = build_random_effects(parsed.bars, frame, eval_env)
        total_offset = np.zeros(len(frame))
        frame_rows = frame["__row__"].to_numpy()
        if extra["offset"] is not None:
            total_offset += extra["offset"][frame_rows]
        for expr in parsed.offsets:
            values = np.asarray(
                dmatrix(f"0 + r_I({expr})", frame, eval_env=env, NA_action="raise")
            ).ravel()
            if not np.all(np.isfinite(values)):
                raise ValueError(f"offset({expr}) has infinite values in "
                                 f"{int(np.sum(~np.isfinite(values)))} row(s)")
            total_offset += values
        prior = None if extra["weights"] is None else extra["weights"][frame_rows]
        frame = frame.drop(columns="__row__").set_axis(keep, axis=0)  # the user's labels
        # statsmodels evaluates the fixed part, so the model gets formula names,
        # model_spec (predict, wald_test_terms) and pickling support.
        mod = super().from_formula(
            fixed_formula, frame, family=family, random_effects=re,
            offset=total_offset, weights=prior, missing="none",
            parsed_formula=parsed, endog_label=parsed.lhs,
            eval_env=eval_env, **kwargs)
        mod.formula_full = formula
        if mod.data.ynames == RESPONSE_COLUMN:  # the response as the user wrote it
            mod.data.ynames = parsed.lhs
        # what update() needs to refit as lme4 does: the data as given, not the rows
        # this model kept (another formula may use other columns)
        mod.source = {"data": data, "subset": subset, "weights": weights, "offset": offset,
                      "missing": missing}
        mod._data_attr.append("source")  # remove_data() drops it
        mod.row_labels = keep
        mod.offset_exprs = list(parsed.offsets)
        mod.explicit_offset = (None if extra["offset"] is None
                               else extra["offset"][frame_rows])
        return mod

    @staticmethod
    def _complete_cases(frame, fixed_formula, parsed, extra, missing, eval_env):
        """Restrict to rows where every variable of the model is observed."""
        na_action = "raise" if missing == "raise" else "drop"
        env = EvalEnvironment([eval_env])
        frame = frame.assign(__row__=np.arange(len(frame)))
        ok = pd.Series(True, index=frame.index)
        pieces = [fixed_formula] + [f"0 + r_I({e})" for e in parsed.offsets]
        try:
            with np.errstate(all="ignore"):
                for i, piece in enumerate(pieces):
                    if i == 0:
                        _, design = dmatrices(piece, frame, eval_env=env,
                                              NA_action=na_action, return_type="dataframe")
                        check_design_finite(design, "the fixed effects")
                    else:
                        design = dmatrix(piece, frame, eval_env=env, NA_action=na_action,
                                         return_type="dataframe")
                        check_design_finite(design, "the offset")
                    ok &= frame.index.isin(design.index)
                for bar in parsed.bars:
                    design = dmatrix(bar.expr, frame, eval_env=env, NA_action=na_action,
                                     return_type="dataframe")
                    check_design_finite(design, f"random-effects term {bar}")
                    ok &= frame.index.isin(design.index)
                    for name in bar.factors:
                        if name not in frame.columns:
                            raise PatsyError(f"grouping factor {name!r} in {bar} is not a "
                                             "column of the data")
                        ok &= frame[name].notna()
        except PatsyError as exc:
            if missing == "raise" and "missing values" in str(exc):
                raise ValueError(f"missing values in the model variables: {exc}") from None
            unknown = re_search(r"NameError: name '([^']+)' is not defined", str(exc))
            if unknown:
                raise PatsyError(
                    f"{unknown.group(1)!r} in formula {parsed.formula!r} is neither a column "
                    "of the data nor a known function") from None
            raise
        for what, arr in extra.items():
            if arr is not None:
                observed = ~np.isnan(arr)
                if missing == "raise" and not observed.all():
                    raise ValueError(f"{what} has {int((~observed).sum())} missing value(s)")
                ok &= observed
        if missing == "raise" and not ok.all():
            raise ValueError("missing values in the grouping factors")
        return frame[ok.to_numpy()]

    # -- the deviance ---------------------------------------------------------------
    def _theta_layout(self):
        k = self.k_theta
        d = int(self.has_dispersion)
        return slice(0, k), (slice(k, k + d) if d else None), slice(k + d, None)

    def _split(self, params):
        """Optimizer vector → (θ, φ, β); φ enters as log φ."""
        t, d, b = self._theta_layout()
        phi = float(np.exp(params[d][0])) if d is not None else 1.0
        return params[t], phi, params[b]

    def _check_nagq(self, nAGQ):
        """The number of quadrature points as an int (1.0 is 1, as in R), checked."""
        if isinstance(nAGQ, (float, np.floating)) and float(nAGQ).is_integer():
            nAGQ = int(nAGQ)
        if not isinstance(nAGQ, (int, np.integer)) or isinstance(nAGQ, bool) or nAGQ < 0:
            raise ValueError(f"nAGQ must be a non-negative integer, got {nAGQ!r}")
        nAGQ = int(nAGQ)
        if nAGQ > _MAX_NAGQ:
            raise ValueError(f"nAGQ must be at most {_MAX_NAGQ}, got {nAGQ}")
        if nAGQ > 1:
            terms = self.random_effects.terms
            if len(terms) != 1:
                raise ValueError(
                    "nAGQ > 1 needs a single random-effects term such as (1 | g) or "
                    "(1 + x | g); this model has "
                    f"{', '.join(f'({t.expr} | {t.group_name})' for t in terms)}"
                )
            nodes = nAGQ ** terms[0].n_cov
            if nodes > _MAX_AGQ_NODES:
                raise ValueError(
                    f"nAGQ = {nAGQ} for {terms[0].n_cov} correlated random effects needs "
                    f"{nodes} quadrature nodes per level (at most {_MAX_AGQ_NODES}); use "
                    "fewer points")
        return nAGQ

    def pirls(self, theta, beta=None, phi=1.0, u0=None, tol=1e-12, information="observed"):
        """Conditional modes at (θ, β): PIRLS with β fixed, or jointly if β is None.

        Parameters
        ----------
        theta : array_like
            Relative covariance parameters (lme4's θ, see ``theta_names``).
        beta : array_like, optional
            Fixed effects; when omitted they are estimated jointly with u
            (the nAGQ=0 iteration), starting from a GLM fit.
        phi : float
            Dispersion (1 for binomial and Poisson).
        u0 : array_like, optional
            Starting value of the spherical random effects (default 0).
        information : {"observed", "expected"}
            Weights of the returned factor L: the observed information (the
            true Laplace approximation) or lme4's expected (Fisher) information.

        Returns
        -------
        pirls.PirlsResult
            ``u``, ``beta``, ``eta``, ``mu``, the factor ``L`` and ``laplace()``.
        """
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.k_theta,):
            raise ValueError(f"theta must have {self.k_theta} elements")
        scaled = self.random_effects.scaled_covariates(theta)
        u0 = np.zeros(self.random_effects.n_re) if u0 is None else np.asarray(u0, float)
        if beta is None:
            return self._joint_pirls(scaled, phi, u0, self._glm_start()[0], tol=tol,
                                     information=information)
        beta = np.asarray(beta, dtype=float)
        return pirls(self.response, self.random_effects, self.system, scaled,
                     self.offset + self.exog @ beta, u0, phi, beta=beta, tol=tol,
                     information=information)

    def _joint_pirls(self, scaled, phi, u0, beta0, tol=1e-12, information="observed",
                     internal=False):
        """PIRLS over (u, β) jointly (nAGQ=0) on the well-conditioned basis of X.

        ``beta0`` and the returned ``beta`` are in the user's coordinates unless
        ``internal`` (then both are β̃ of :class:`design.DesignBasis`).
        """
        basis = self.design_basis
        start = beta0 if internal else basis.to_internal(beta0)
        modes = pirls(self.response, self.random_effects, self.system, scaled, self.offset,
                      u0, phi, X=basis.X, beta0=start, tol=tol, information=information)
        if not internal:
            modes.beta = basis.to_external(modes.beta)
        return modes

    def deviance(self, theta, beta=None, nAGQ=1, phi=1.0, u0=None, information="observed"):
        """−2 × the approximate marginal log-likelihood at the given parameters.

        Parameters
        ----------
        theta, beta, phi, u0
            As in :meth:`pirls`. With ``nAGQ=0`` (or ``beta=None``) β is
            estimated jointly with u.
        nAGQ : int
            0 or 1 (Laplace) or the number of adaptive Gauss-Hermite points.
        information : {"observed", "expected"}
            See :meth:`fit`.

        Returns
        -------
        float
            The exact value with every normalizing constant, comparable
            across nAGQ and with a GLM's −2 log-likelihood.
        """
        nAGQ = self._check_nagq(nAGQ)
        modes = self.pirls(theta, None if nAGQ == 0 else beta, phi, u0,
                           information=information)
        return self._approximation(modes, theta, nAGQ, phi)

    def _approximation(self, modes, theta, nAGQ, phi):
        if nAGQ <= 1:
            return modes.laplace()
        scaled = self.random_effects.scaled_covariates(theta)
        return agq_deviance(self.response, self.random_effects, scaled,
                            self.offset + self.exog @ modes.beta, modes, nAGQ, phi)

    def _glm_start(self):
        """Starting β and dispersion: one weighted least-squares step from R's
        ``mustart`` (as lme4, whose first PIRLS starts at η = g(mustart)).

        Cheap (O(n p²)) and good enough: PIRLS and the first stage refine it.
        """
        if getattr(self, "_glm_start_cache", None) is None:
            resp = self.response
            with np.errstate(all="ignore"):
                eta = resp.start_eta()
                mu = resp.mu(eta)
                w, dmu = resp.irls_quantities(eta, mu)
                z = eta - self.offset + (resp.y - mu) / dmu
                ok = np.isfinite(z) & np.isfinite(w) & (w > 0)
                basis = self.design_basis
                Xw = basis.X[ok] * w[ok, None]
                try:
                    beta = basis.to_external(np.linalg.solve(Xw.T @ basis.X[ok],
                                                             Xw.T @ z[ok]))
                except np.linalg.LinAlgError:
                    beta = np.zeros(self.k_fe)
                if not np.all(np.isfinite(beta)):
                    beta = np.zeros(self.k_fe)
                mu = resp.mu(self.exog @ beta + self.offset)
                if resp.name == "negative.binomial":
                    # moment estimate of α from Var(y) = μ + α μ²
                    excess = np.sum(resp.weights * ((resp.y - mu) ** 2 - mu))
                    scale = max(excess / np.sum(resp.weights * mu ** 2), 0.01)
                else:
                    pearson = resp.weights * (resp.y - mu) ** 2 / resp.variance(mu)
                    scale = float(np.sum(pearson) / max(resp.nobs - self.k_fe, 1))
            self._glm_start_cache = (beta, scale if np.isfinite(scale) and scale > 0 else 1.0)
        return self._glm_start_cache

    # -- fitting -----------------------------------------------------------------------
    def fit(self, nAGQ=1, start=None, reml=False, cov_type=None, maxfun=10000,
            nAGQ0_init=True, boundary_tol=1e-5, calc_hessian="auto", information="observed",
            blas_threads="auto", **kwargs):
        """Fit by maximum likelihood (or REML for the linear mixed model).

        Parameters
        ----------
        nAGQ : int
            0 (β by PIRLS, optimizer over θ only), 1 (Laplace, default) or the
            number of adaptive Gauss-Hermite points (one scalar term only).
        start : dict, optional
            ``{"theta": ..., "beta": ..., "phi": ...}`` starting values.
        reml : bool
            REML instead of ML; only for the linear mixed model (Gaussian,
            identity link).
        cov_type : {"hessian", "conditional"}, optional
            Covariance of β̂: ``"hessian"`` (lme4's default for nAGQ ≥ 1: the β
            block of 2 H⁻¹ from a finite-difference Hessian of the deviance over
            all parameters) or ``"conditional"`` (from the PIRLS factor at the
            optimum, conditional on θ; the default for nAGQ=0 and for the LMM).
        maxfun : int
            Maximum number of deviance evaluations per optimizer stage.
        nAGQ0_init : bool
            Start the nAGQ ≥ 1 fit from an nAGQ=0 fit, as lme4 does.
        boundary_tol : float
            θ diagonal elements within this distance of 0 are tried at 0.
        calc_hessian : bool or "auto"
            Compute the finite-difference Hessian (needed for
            ``cov_type="hessian"``). ``"auto"`` does so unless nobs·k² > 2e7 (k
            optimizer parameters; ~k² evaluations of O(n) each), then uses the
            conditional covariance and checks convergence with the gradient only.
        information : {"observed", "expected"}
            The curvature used in the Laplace approximation (log|L|²) and to
            scale the quadrature: ``"observed"`` (default) is the true Laplace
            approximation, as glmmTMB; ``"expected"`` uses the Fisher
            information, as lme4. They are identical for canonical links
            (binomial-logit, Poisson-log); for others (probit, cloglog,
            Gamma-log ...) ``"expected"`` reproduces lme4's numbers.
        blas_threads : int, None or "auto"
            BLAS threads during the fit. ``"auto"`` uses one thread when every
            dense block is smaller than 1000 (faster for such blocks), and leaves
            the BLAS setting alone otherwise; ``None`` never changes it.

        Returns
        -------
        GLMMResultsWrapper
        """
        from .results import GLMMResults, GLMMResultsWrapper

        if kwargs:
            raise TypeError(f"unexpected keyword arguments: {', '.join(kwargs)}")
        nAGQ = self._check_nagq(nAGQ)
        if reml and not self.is_lmm:
            raise ValueError("reml=True needs the Gaussian family with the identity link")
        if information not in ("observed", "expected"):
            raise ValueError("information must be 'observed' or 'expected'")
        if cov_type not in (None, "hessian", "conditional"):
            raise ValueError("cov_type must be 'hessian' or 'conditional'")
        maxfun, blas_threads = check_fit_arguments(maxfun, blas_threads, boundary_tol,
                                                   calc_hessian, nAGQ0_init)
        start = check_start(start, self.k_theta, self.k_fe,
                            self.random_effects.theta_lower(), self.has_dispersion)
        if blas_threads == "auto":
            blas_threads = 1 if self._largest_dense_block() < _SMALL_DENSE else None
        with _blas_limits(blas_threads):
            if self.is_lmm:
                fit = self._fit_lmm(reml, start, maxfun, boundary_tol)
            else:
                args = (nAGQ, start, maxfun, nAGQ0_init, boundary_tol, cov_type,
                        calc_hessian, information)
                if self.response.estimate_alpha:
                    fit = self._fit_negative_binomial(args)
                else:
                    fit = self._fit_glmm(*args)
        fit["information"] = information
        fit["reml"] = reml
        self._warn_separation(fit["modes"].mu)
        self._warn_singular(fit["theta"])
        self._warn_diverging(fit["theta"])
        results = GLMMResults(self, fit)
        return GLMMResultsWrapper(results)

    def _largest_dense_block(self):
        """Order of the largest dense block of the factor (crossed terms, X)."""
        re = self.random_effects
        crossed = [t.n_re for j, t in enumerate(re.terms) if j > 0 and not re.nested[j]]
        return max(crossed + [self.k_fe])

    def _fit_negative_binomial(self, fit_args):
        """Fit with the NB shape θ = 1/α estimated, detecting its boundary θ = ∞.

        When the counts show no overdispersion beyond the random effects the
        likelihood increases monotonically towards α = 0 (the Poisson GLMM), and
        the optimizer stops somewhere on the flat tail (θ ~ 1e5) with a
        meaningless "SE" and spurious curvature warnings. If the fitted α is
        negligible, the Poisson GLMM (the exact limit) is fitted; when it is at
        least as good, it is the ML fit and is reported with α = 0, θ = ∞, no SE
        for θ, and a warning. Only the warnings of the fit reported are shown.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = self._fit_glmm(*fit_args)
        boundary = None
        alpha = fit["phi"]
        if alpha * float(np.max(fit["modes"].mu)) <= 1e-2:
            with warnings.catch_warnings(record=True) as caught_boundary:
                warnings.simplefilter("always")
                boundary = self._poisson_limit(fit, fit_args)
        if boundary is None:
            self._reemit(caught)
            return fit
        self._reemit(caught_boundary)
        warnings.warn(
            f"the negative binomial shape theta = 1/alpha diverges (the optimizer stopped at "
            f"{1 / alpha:.3g} on a flat likelihood): the counts show no overdispersion "
            "beyond the random effects, so the maximum likelihood fit is the Poisson GLMM "
            "(alpha = 0, theta = inf), reported here; theta has no standard error",
            BoundaryWarning, stacklevel=5)
        return boundary

    def _poisson_limit(self, fit, fit_args):
        """The Poisson GLMM fit (NB with α = 0) if it is as good as ``fit``, else None."""
        poisson = GLMM(self.endog, self.exog, random_effects=self.random_effects,
                       family=sm.families.Poisson(link=copy.deepcopy(self.family.link)),
                       offset=self.offset, weights=self.weights)
        nAGQ, _, maxfun, _, *rest = fit_args
        start = {"theta": fit["theta"], "beta": fit["beta"]}
        boundary = poisson._fit_glmm(nAGQ, start, maxfun, False, *rest)
        if boundary["deviance"] > fit["deviance"] + 1e-6:
            return None
        k = self.k_theta
        boundary["phi"] = 0.0
        boundary["params_full"] = np.concatenate(
            [boundary["params_full"][:k], [-np.inf], boundary["params_full"][k:]])
        boundary["hessian"] = None  # its layout lacks log α
        return boundary

    @staticmethod
    def _reemit(caught):
        for item in caught:
            warnings.warn(item.message, item.category, stacklevel=5)

    def _warn_diverging(self, theta, limit=_SD_LIMIT):
        """A random-effect SD beyond any plausible size on a logit/probit/log scale.

        When every level of a grouping factor has all-0 or all-1 responses (or
        all-zero counts) the likelihood keeps increasing as the variance grows;
        the optimizer then stops at an arbitrary, huge SD (lme4 reports such fits
        as converged). Counts the levels whose responses sit at a bound.
        """
        resp = self.response
        if resp.name not in ("binomial", "poisson", "negative.binomial"):
            return
        re = self.random_effects
        # SDs of the effect of one unit of scale of each covariate (θ · scale)
        for term, T in zip(re.terms, re.factors(np.asarray(theta) * re.theta_scale())):
            sd = np.sqrt(np.diag(T @ T.T))
            y = resp.y if resp.name == "binomial" else np.minimum(resp.y, 1.0)
            low = np.bincount(term.refs, weights=(y > 0) * resp.weights,
                              minlength=term.n_levels) == 0
            high = np.bincount(term.refs, weights=(y < 1) * resp.weights,
                               minlength=term.n_levels) == 0
            if resp.name != "binomial":  # counts have no upper bound
                high[:] = False
            # every level all-0 or all-1 (one with two or more trials), with an
            # intercept in the term: the likelihood rises without bound in its SD
            # whatever SD the approximation stopped at (8.4 with two observations
            # per level), so this is exact where the SD limit is a heuristic
            trials = np.bincount(term.refs, weights=resp.weights, minlength=term.n_levels)
            separated = (resp.name == "binomial" and "(Intercept)" in term.cnames
                         and np.all((low | high)[trials > 0]) and np.any(trials > 1))
            if not (separated or np.any(sd > limit)):
                continue
            bound = "all-0 or all-1 responses" if resp.name == "binomial" else "only zeros"
            warnings.warn(
                f"the random-effect standard deviation of ({term.expr} | {term.group_name}) "
                f"is estimated as {sd.max():.3g} on the {resp.link} scale: the variance is "
                f"diverging ({int(np.sum(low | high))} of {term.n_levels} levels have "
                f"{bound}, so the likelihood keeps increasing with it); the estimates and "
                "standard errors are not meaningful", BoundaryWarning, stacklevel=4)

    def _warn_singular(self, theta, tol=1e-4):
        """lme4's "boundary (singular) fit" (its ``isSingular`` rule on θ in the units
        of the covariates, see ``RandomEffects.theta_scale``), naming the terms."""
        re = self.random_effects
        scaled = np.asarray(theta) * re.theta_scale()
        singular = []
        for term, sl in zip(re.terms, re.theta_slices):
            lower = term.theta_lower()
            if np.any(scaled[sl][lower == 0] < tol):
                singular.append(f"({term.expr} | {term.group_name})")
        if singular:
            warnings.warn(
                f"boundary (singular) fit: the random-effects covariance of "
                f"{', '.join(singular)} is singular (a standard deviation estimated as 0 "
                "or a correlation of ±1); see is_singular()", SingularFitWarning,
                stacklevel=4)

    def _warn_separation(self, mu):
        """Fitted means at the boundary of their range, (quasi-)complete separation:
        probabilities of 0 or 1 (binomial), or means of 0 for zero counts (Poisson,
        negative binomial: a cell of the design with only zeros, as R's "fitted
        rates numerically 0"). Some estimates then diverge."""
        resp = self.response
        if resp.name == "binomial":
            at_bound = (mu < 1e-8) | (mu > 1 - 1e-8)
            what = "fitted probabilities of 0 or 1"
        elif resp.name in ("poisson", "negative.binomial"):
            at_bound = (mu < 1e-8) & (resp.y == 0) & (resp.weights > 0)
            what = "fitted means of 0 for zero counts"
        else:
            return
        if np.any(at_bound):
            warnings.warn(
                f"{what} for {int(at_bound.sum())} observation(s): "
                "(quasi-)complete separation; the estimates of the separating effects "
                "diverge and their standard errors are not meaningful",
                PerfectSeparationWarning, stacklevel=4)

    def _theta_start(self, start):
        """Starting θ in the optimizer's coordinates θ · scale (see
        ``RandomEffects.theta_scale``): the user's θ, or lme4's identity factors
        on the scale of the covariates."""
        theta = start.get("theta")
        if theta is None:
            return self.random_effects.theta_start()
        return np.asarray(theta, dtype=float) * self.random_effects.theta_scale()

    def _fit_glmm(self, nAGQ, start, maxfun, nAGQ0_init, boundary_tol, cov_type,
                  calc_hessian, information):
        re = self.random_effects
        lower_theta = re.theta_lower()
        beta_glm, scale_glm = self._glm_start()
        beta0 = np.asarray(start.get("beta", beta_glm), dtype=float)
        if beta0.shape != (self.k_fe,):
            raise ValueError(f"start['beta'] must have {self.k_fe} elements")
        log_phi0 = np.log(start.get("phi", scale_glm)) if self.has_dispersion else None
        theta0 = self._theta_start(start)
        extra = [] if log_phi0 is None else [log_phi0]
        extra_lower = [-np.inf] * len(extra)
        u_zero = np.zeros(re.n_re)
        history = {"stage1_nfev": 0, "stage2_nfev": 0}
        # PIRLS warm-starts from the modes of the best evaluation so far (BOBYQA's
        # incumbent, around which it samples): with u converged to 1e-10 the
        # objective's dependence on the path is negligible. Not from the last
        # evaluation: u is on the spherical scale, so modes from a distant θ (a
        # trial step to θ ≈ 0 makes u huge) start PIRLS far away, and with a
        # non-convex likelihood (e.g. Gaussian with the inverse link) it can end
        # in another basin, which the warm start would then carry to every later
        # evaluation and to stage 2. (β in the internal coordinates of the design
        # basis)
        warm = {"u": u_zero, "beta": self.design_basis.to_internal(beta0), "f": np.inf}
        # the optimizer sees θ · scale (units of the random-effect covariates removed)
        k, ts = self.k_theta, re.theta_scale()

        def stage1_objective(p):
            theta, phi, _ = self._split(np.concatenate([p[:k] / ts, p[k:], beta0]))
            scaled = re.scaled_covariates(theta)
            modes = self._joint_pirls(scaled, phi, warm["u"], warm["beta"],
                                      information=information, internal=True)
            value = modes.laplace()
            if value <= warm["f"]:
                warm.update(u=modes.u, beta=modes.beta, f=value)
            return value

        p1 = np.concatenate([theta0, extra])
        opt1 = None
        if nAGQ == 0 or nAGQ0_init:
            # only a starting point unless nAGQ=0: no need to polish it
            tols = {} if nAGQ == 0 else {"ftol_abs": 1e-6, "xtol_abs": 1e-5}
            opt1 = bobyqa(stage1_objective, p1, np.concatenate([lower_theta, extra_lower]),
                          np.full(p1.size, 0.5), maxeval=maxfun, **tols)
            history["stage1_nfev"] = opt1.nfev
            p1 = opt1.x
        theta1, phi1, _ = self._split(np.concatenate([p1[:k] / ts, p1[k:], beta0]))
        if nAGQ == 0:
            theta1 = self._boundary(theta1 * ts, lambda t: stage1_objective(
                np.concatenate([t, p1[k:]])), boundary_tol) / ts
            p1 = np.concatenate([theta1, p1[k:]])
            modes = self.pirls(theta1, None, phi1, information=information)
            params = np.concatenate([p1, modes.beta])
            opt = opt1
            deviance = modes.laplace()
        else:
            if opt1 is not None:
                modes1 = self._joint_pirls(re.scaled_covariates(theta1), phi1, warm["u"],
                                           warm["beta"], internal=True)
                beta1, u_store = self.design_basis.to_external(modes1.beta), modes1.u
            else:
                beta1, u_store = beta0, u_zero
            # β is optimised in whitened coordinates z, β = β₁ + C z with C C' the
            # conditional covariance at the stage-1 solution: the fixed effects are
            # often strongly correlated (age, age², age:ch), which BOBYQA's
            # 2n+1-point quadratic model learns only slowly.
            whiten = self._beta_whitening(theta1, beta1, phi1, u_store)
            m = p1.size
            stage2 = self._stage2_objective(nAGQ, u_store, information)

            def to_params(pz):
                return np.concatenate([pz[:k] / ts, pz[k:m], beta1 + whiten @ pz[m:]])

            def objective_z(pz):
                return stage2(to_params(pz))

            pz0 = np.concatenate([p1, np.zeros(self.k_fe)])
            lower2 = np.concatenate([lower_theta, extra_lower, np.full(self.k_fe, -np.inf)])
            # stage-1 β is often more than one standard error from the Laplace β:
            # a radius of 0.5 SE halves the evaluations on large data (M5, p = 11)
            theta_steps = np.full(m, 0.1)
            if opt1 is not None:
                theta_steps = self._curvature_steps(stage1_objective, p1, lower2[:m])
            steps = np.concatenate([theta_steps, np.full(self.k_fe, 0.5)])
            # ftol 1e-8 on −2ℓ (and 1e-7 SE in β): ~1e-6 from the optimum at worst
            opt = bobyqa(objective_z, pz0, lower2, steps, ftol_abs=1e-8, xtol_abs=1e-7,
                         maxeval=maxfun)
            opt = self._restart_edge(objective_z, opt, lower2, steps, maxfun)
            history["stage2_nfev"] = opt.nfev
            pz = opt.x.copy()
            pz[:k] = self._boundary(pz[:k], lambda t: objective_z(
                np.concatenate([t, pz[k:]])), boundary_tol)
            params = to_params(pz)
            theta, phi, beta = self._split(params)
            modes = self.pirls(theta, beta, phi, u_store, information=information)
            deviance = self._approximation(modes, theta, nAGQ, phi)
        theta, phi, beta = self._split(params)
        if not opt.converged:
            warnings.warn(f"the optimizer did not converge: {opt.message} after "
                          f"{opt.nfev} evaluations", ConvergenceWarning, stacklevel=3)
        fit = {
            "theta": theta, "beta": beta, "phi": phi, "modes": modes, "deviance": deviance,
            "nAGQ": nAGQ, "optimizer": opt, "history": history, "params_full": params,
            "hessian": None,
        }
        use_hessian = False
        if nAGQ >= 1:
            # derivatives in the optimizer's coordinates (θ, log φ, z), where the
            # problem is well scaled, then mapped back to (θ, log φ, β)
            objective = self._stage2_objective(nAGQ, modes.u, information)

            def objective_at(q):
                return objective(to_params(q))

            # β steps of 0.01 conditional SE: the deviance has rounding noise of
            # ~1e-10 (more with huge counts, whose per-observation scores are large)
            # and noise / h² must stay well below the unit curvature of z
            h = np.concatenate([np.full(m, 1e-4), np.full(self.k_fe, 1e-2)])
            if calc_hessian == "auto":
                calc_hessian = self.nobs * pz.size ** 2 <= _HESSIAN_BUDGET
            use_hessian = bool(calc_hessian) and cov_type != "conditional"
            fit["hessian_skipped"] = not calc_hessian and cov_type != "conditional"
            try:
                with np.errstate(all="ignore"):
                    derivatives = (self._numerical_hessian if use_hessian
                                   else self._gradient_and_curvature)
                    H_z, grad_z = derivatives(objective_at, pz, h)
                if not (np.all(np.isfinite(H_z)) and np.all(np.isfinite(grad_z))):
                    raise ArithmeticError("non-finite deviance next to the optimum")
                if use_hessian:
                    T = sla.block_diag(np.diag(ts), np.eye(m - k), np.linalg.inv(whiten))
                    fit["hessian"] = T.T @ H_z @ T
            except (PirlsError, np.linalg.LinAlgError, ArithmeticError) as exc:
                # a neighbour of the optimum where PIRLS fails: estimates diverging
                # (separation) or an ill-posed problem; say so instead of crashing
                use_hessian = False
                warnings.warn(f"the deviance could not be evaluated next to the optimum "
                              f"({exc}): no Hessian and no convergence check; standard "
                              "errors are conditional on the covariance parameters",
                              ConvergenceWarning, stacklevel=4)
            else:
                fit["convergence"] = self._check_convergence(pz[:self.k_theta], H_z, grad_z)
        fit["vcov_conditional"] = self._conditional_vcov(theta, beta, phi, modes.u)
        fit["vcov"], fit["cov_type"] = self._choose_vcov(fit, use_hessian)
        return fit

    def _restart_edge(self, objective, opt, lower, steps, maxfun, edge=1e-4):
        """Restart once from off the boundary when the optimum has a θ diagonal
        element at 0 (a singular covariance), keeping the better optimum.

        With several random effects per level the deviance surface has ridges
        along the boundary: started from the nAGQ=0 solution the optimizer can
        settle with one variance at 0 when another configuration (a different
        element at 0, or none) is better (cf. lme4's ``restart_edge``). The restart
        is from lme4's starting θ (identity factors, in the covariates' units; an
        element at 0 leaves the sign of its column's correlations arbitrary, so
        restarting nearby stays in the same basin), the other parameters where
        they are.
        """
        k = self.k_theta
        at_edge = (lower[:k] == 0) & (opt.x[:k] < edge)
        if not at_edge.any():
            return opt
        start = opt.x.copy()
        start[:k] = self.random_effects.theta_start()
        second = bobyqa(objective, start, lower, steps, ftol_abs=1e-8, xtol_abs=1e-7,
                        maxeval=maxfun)
        best = second if second.fun < opt.fun - 1e-8 else opt
        return dataclasses.replace(best, nfev=opt.nfev + second.nfev)

    @staticmethod
    def _gradient_and_curvature(fun, x, step):
        """Central-difference gradient and diagonal curvature (2k + 1 evaluations)."""
        f0 = fun(x)
        eye = np.diag(step)
        fp = np.array([fun(x + e) for e in eye])
        fm = np.array([fun(x - e) for e in eye])
        curv = (fp - 2 * f0 + fm) / step ** 2
        return np.diag(np.where(curv > 0, curv, np.abs(curv) + 1e-8)), (fp - fm) / (2 * step)

    @staticmethod
    def _curvature_steps(objective, p, lower, default=0.1):
        """Initial BOBYQA steps for θ (and log φ): half a standard error, from the
        curvature of the first-stage objective (2 evaluations per parameter).

        On large data θ is known to ±0.01 while β is whitened to unit scale; without
        this the problem looks badly conditioned to BOBYQA and it stops early.
        """
        steps = np.full(p.size, default)
        try:
            f0 = objective(p)
            for i in range(p.size):
                h = 1e-3 * max(abs(p[i]), 0.1)
                if p[i] - h < lower[i]:
                    continue
                e = np.zeros(p.size)
                e[i] = h
                curv = (objective(p + e) - 2 * f0 + objective(p - e)) / h ** 2
                if np.isfinite(curv) and curv > 0:
                    steps[i] = float(np.clip(0.5 * np.sqrt(2.0 / curv), 1e-4, default))
        except (ArithmeticError, RuntimeError, np.linalg.LinAlgError):
            pass
        return steps

    def _check_convergence(self, theta, H, grad, tol=2e-3):
        """Gradient and Hessian checks at the optimum, lme4's rules.

        Both are taken in the optimizer's coordinates (θ, log φ and whitened β),
        where the problem is well scaled, so badly scaled covariates do not
        produce lme4's false "failed to converge" / "very large eigenvalue"
        warnings; a genuinely unconverged fit still fails the gradient test.
        """
        lower = self.random_effects.theta_lower()
        singular = bool(np.any(theta[lower == 0] < 1e-4))
        out = {"singular": singular, "max_abs_grad": float(np.max(np.abs(grad))),
               "hessian_eigenvalues": np.linalg.eigvalsh(H), "messages": []}
        active = np.ones(grad.size, dtype=bool)
        active[:theta.size] = ~((lower == 0) & (theta < 1e-4))  # at the bound: skip
        g, Ha = grad[active], H[np.ix_(active, active)]
        try:
            scaled = sla.solve_triangular(np.linalg.cholesky(Ha), g, lower=True)
            out["max_scaled_grad"] = float(np.max(np.minimum(np.abs(scaled), np.abs(g)),
                                                  initial=0.0))
        except np.linalg.LinAlgError:
            out["max_scaled_grad"] = np.nan
            out["messages"].append("the Hessian is not positive definite at the optimum")
        if out["max_scaled_grad"] > tol:
            out["messages"].append(
                f"the fit may not have converged: scaled gradient {out['max_scaled_grad']:.2g} "
                f"> {tol}")
        eig = np.linalg.eigvalsh(Ha) if Ha.size else np.array([1.0])
        if np.any(eig < -1e-6):
            out["messages"].append(
                f"degenerate Hessian with {int(np.sum(eig < -1e-6))} negative eigenvalues")
        for msg in out["messages"]:
            warnings.warn(msg, ConvergenceWarning, stacklevel=4)
        return out

    def _stage2_objective(self, nAGQ, u_start, information):
        """Deviance over (θ, log φ, β); PIRLS warm-starts from the last modes."""
        re = self.random_effects
        warm = {"u": u_start}

        def objective(p):
            theta, phi, beta = self._split(p)
            scaled = re.scaled_covariates(theta)
            offset = self.offset + self.exog @ beta
            modes = pirls(self.response, re, self.system, scaled, offset, warm["u"], phi,
                          beta=beta, information=information)
            warm["u"] = modes.u
            if nAGQ <= 1:
                return modes.laplace()
            return agq_deviance(self.response, re, scaled, offset, modes, nAGQ, phi)

        return objective

    def _boundary(self, theta, objective, tol):
        """Set θ diagonal elements within ``tol`` of 0 to 0 when that is no worse."""
        lower = self.random_effects.theta_lower()
        near = np.flatnonzero((lower == 0) & (theta > 0) & (theta < tol))
        if near.size == 0:
            return theta
        trial = theta.copy()
        trial[near] = 0.0
        try:
            if objective(trial) <= objective(theta):
                return trial
        except (ArithmeticError, RuntimeError):
            pass
        return theta

    def _joint_factor(self, theta, phi, u, beta, damped=False):
        """Blocked factor including the X border, at the given modes.

        ``damped``: if X'WX is numerically singular (separation), factor it with
        PIRLS's Levenberg-Marquardt damping instead of raising LinAlgError.
        """
        scaled = self.random_effects.scaled_covariates(theta)
        eta = self.offset + self.exog @ beta + self.random_effects.linear_predictor(scaled, u)
        mu = self.response.mu(eta)
        w = self.response.working_weights(eta, mu, phi)
        try:
            return self.system.factor(scaled, w, self.design_basis.X)
        except np.linalg.LinAlgError:
            if not damped:
                raise
            return damped_factor(self.system, scaled, w, self.design_basis.X)[0]

    def _conditional_vcov(self, theta, beta, phi, u, internal=False, damped=True):
        """(R_X' R_X)⁻¹: the covariance of β̂ conditional on θ (lme4's RX vcov);
        of β̃ if ``internal``.

        Under separation X'WX is singular and the damped factor is used: the
        variances of the diverging combinations are then huge (as lme4's) rather
        than an error."""
        factor = self._joint_factor(theta, phi, u, beta, damped=damped)
        RX = factor.diag[-1].L
        inv = sla.solve_triangular(RX, np.eye(RX.shape[0]), lower=True)
        vcov = inv.T @ inv
        return vcov if internal else self.design_basis.cov_to_external(vcov)

    def _beta_whitening(self, theta, beta, phi, u, max_reach=10.0):
        """Cholesky factor C of the conditional covariance of β (identity if singular),
        taken in the well-conditioned basis and mapped back.

        A column of C whose unit step would move some linear predictor by more than
        ``max_reach`` (a nearly unidentified combination, e.g. under separation) is
        shrunk to that reach, so that the optimizer's and the Hessian's steps stay
        on the scale where the deviance can be evaluated.
        """
        try:
            root = np.linalg.cholesky(self._conditional_vcov(theta, beta, phi, u,
                                                             internal=True, damped=False))
        except np.linalg.LinAlgError:
            return np.eye(self.k_fe)
        C = self.design_basis.external_cholesky(root)
        reach = np.max(np.abs(self.exog @ C), axis=0, initial=0.0)
        with np.errstate(divide="ignore"):
            return C * np.minimum(1.0, max_reach / reach)

    @staticmethod
    def _numerical_hessian(fun, x, step=1e-4):
        """Symmetric finite-difference Hessian, second-order accurate.

        Diagonal: (f(x+h) − 2 f(x) + f(x−h)) / h². Off-diagonal from the two
        diagonal moves f(x ± h e_i ± h e_j) and the axis values already computed:
        [f(++) + f(−−) − f(+i) − f(−i) − f(+j) − f(−j) + 2 f(x)] / (2h²). That is
        1 + 2k + k(k−1) evaluations, half of lme4's 4-point rule off the diagonal,
        with the same O(h²) error. The central-difference gradient comes with it.

        Returns
        -------
        H, gradient : ndarray
        """
        k = x.size
        h = np.broadcast_to(np.asarray(step, dtype=float), (k,))
        f0 = fun(x)
        eye = np.diag(h)
        fp = np.array([fun(x + eye[i]) for i in range(k)])
        fm = np.array([fun(x - eye[i]) for i in range(k)])
        H = np.diag((fp - 2 * f0 + fm) / h ** 2)
        for i in range(k):
            for j in range(i):
                fpp = fun(x + eye[i] + eye[j])
                fmm = fun(x - eye[i] - eye[j])
                val = (fpp + fmm - fp[i] - fm[i] - fp[j] - fm[j] + 2 * f0) / (2 * h[i] * h[j])
                H[i, j] = H[j, i] = val
        return H, (fp - fm) / (2 * h)

    def _choose_vcov(self, fit, use_hessian):
        if not use_hessian:
            return fit["vcov_conditional"], "conditional"
        H = fit["hessian"]
        k = self.k_fe
        try:
            inv = np.linalg.inv(H)
            vcov = 2.0 * inv[-k:, -k:]
            vcov = 0.5 * (vcov + vcov.T)
            np.linalg.cholesky(vcov)
            return vcov, "hessian"
        except np.linalg.LinAlgError:
            warnings.warn("the finite-difference Hessian is not positive definite; "
                          "using the conditional covariance of the fixed effects",
                          HessianInversionWarning, stacklevel=4)
            return fit["vcov_conditional"], "conditional"

    # -- linear mixed model ----------------------------------------------------------
    def _lmm_solve(self, theta):
        """Profiled pieces of the linear mixed model at θ (exact, no iteration)."""
        re = self.random_effects
        resp = self.response
        scaled = re.scaled_covariates(theta)
        w = resp.weights
        basis = self.design_basis
        factor = self.system.factor(scaled, w, basis.X)
        y = resp.y - self.offset
        sol = factor.solve(self.system.rhs(scaled, w * y, basis.X))
        u = np.concatenate(sol[:-1])
        resid = y - basis.X @ sol[-1] - re.linear_predictor(scaled, u)
        pwrss = float(np.sum(w * resid ** 2) + u @ u)
        k = len(re.terms)
        # log|R_X|² of the user's X (the REML criterion depends on it): X = X̃ T
        ld_RX = factor.diag[k].logdet2() + 2.0 * basis.log_abs_det()
        return factor, u, basis.to_external(sol[-1]), pwrss, factor.logdet2(range(k)), ld_RX

    def _lmm_criterion(self, theta, reml):
        _, _, _, pwrss, ld_L, ld_RX = self._lmm_solve(theta)
        n = self.nobs
        p = self.k_fe
        log_w = float(np.sum(np.log(self.response.weights[self.response.weights > 0])))
        if reml:
            dof = n - p
            return ld_L + ld_RX + dof * (1 + np.log(2 * np.pi * pwrss / dof)) - log_w
        return ld_L + n * (1 + np.log(2 * np.pi * pwrss / n)) - log_w

    def _fit_lmm(self, reml, start, maxfun, boundary_tol):
        theta0 = self._theta_start(start)
        lower = self.random_effects.theta_lower()
        ts = self.random_effects.theta_scale()  # the optimizer sees θ · scale

        def criterion(t):
            return self._lmm_criterion(t / ts, reml)

        opt = bobyqa(criterion, theta0, lower, np.full(theta0.size, 0.2), maxeval=maxfun)
        theta = self._boundary(opt.x, criterion, boundary_tol) / ts
        factor, u, beta, pwrss, _, _ = self._lmm_solve(theta)
        sigma2 = pwrss / (self.nobs - self.k_fe if reml else self.nobs)
        RXinv = np.linalg.inv(factor.diag[-1].L)
        vcov = sigma2 * self.design_basis.cov_to_external(RXinv.T @ RXinv)
        scaled = self.random_effects.scaled_covariates(theta)
        eta = self.offset + self.exog @ beta + self.random_effects.linear_predictor(scaled, u)
        mu = eta
        modes = _LmmModes(u, beta, eta, mu, factor,
                          self.response.neg2loglik_obs(mu, sigma2))
        if not opt.converged:
            warnings.warn(f"the optimizer did not converge: {opt.message}",
                          ConvergenceWarning, stacklevel=3)
        return {
            "theta": theta, "beta": beta, "phi": sigma2, "modes": modes,
            "deviance": self._lmm_criterion(theta, reml), "nAGQ": 1, "optimizer": opt,
            "history": {"stage1_nfev": opt.nfev, "stage2_nfev": 0},
            "params_full": theta, "hessian": None, "vcov": vcov,
            "vcov_conditional": vcov, "cov_type": "conditional",
        }


class _LmmModes:
    """The LMM counterpart of a PIRLS result (same attributes)."""

    def __init__(self, u, beta, eta, mu, factor, neg2ll):
        self.u, self.beta, self.eta, self.mu = u, beta, eta, mu
        self.factor, self.neg2ll, self.iterations = factor, neg2ll, 1


def glmer_nb(formula, data, link=None, nAGQ=1, weights=None, offset=None, subset=None,
             missing="drop", start=None, **fit_kwargs):
    """Negative binomial (NB2) GLMM with its α estimated jointly by maximum likelihood.

    Var(y | u) = μ + α μ²; the shape θ = 1/α is lme4's ``glmer.nb`` θ and glmmTMB's
    ``nbinom2`` dispersion. Unlike ``glmer.nb`` (an outer 1-D search over refits),
    α is a parameter of the likelihood optimised with θ and β, so it gets a standard
    error (``res.nb_theta_se``) and a profile interval (``res.confint("profile")``,
    row ``.nbtheta``). For a fixed α use ``glmer(..., family=NegativeBinomial(alpha=a))``.

    Parameters are as in :func:`glmer`; ``link`` defaults to the log link.
    """
    family = sm.families.NegativeBinomial(link=link or sm.families.links.Log(), alpha=1.0)
    family.estimate_alpha = True
    model = GLMM.from_formula(formula, data, family=family, subset=subset, weights=weights,
                              offset=offset, missing=missing, eval_env=_caller_namespace(1))
    return model.fit(nAGQ=nAGQ, start=start, **fit_kwargs)


def glmer(formula, data, family=None, nAGQ=1, weights=None, offset=None, subset=None,
          missing="drop", start=None, **fit_kwargs):
    """Fit a GLMM from an lme4-style formula (lme4's ``glmer``).

    Equivalent to ``GLMM.from_formula(formula, data, ...).fit(nAGQ=nAGQ, ...)``.

    Parameters
    ----------
    formula : str
        E.g. ``"cbind(incidence, size - incidence) ~ period + (1 | herd)"``.
    data : pandas.DataFrame
    family : statsmodels family, optional
        Default ``sm.families.Binomial()``. Gaussian with the identity link fits
        the linear mixed model (ML; ``reml=True`` for REML), as lme4's
        ``glmer`` hands such calls to ``lmer``.
    nAGQ : int
        0, 1 (Laplace) or the number of adaptive Gauss-Hermite points.
    weights, offset : str or array_like, optional
        Prior weights and offset (column names or arrays).
    subset : array_like, optional
    missing : {"drop", "raise"}
    start : dict, optional
        Starting values ``{"theta": ..., "beta": ..., "phi": ...}``.
    **fit_kwargs
        Passed to :meth:`GLMM.fit` (``reml``, ``cov_type``, ``maxfun`` ...).

    Returns
    -------
    GLMMResultsWrapper
    """
    model = GLMM.from_formula(formula, data, family=family, subset=subset, weights=weights,
                              offset=offset, missing=missing,
                              eval_env=_caller_namespace(1))
    if model.is_lmm and "reml" not in fit_kwargs:
        # a verbatim port of glmer(family = gaussian) would get lmer's REML in R
        warnings.warn("family Gaussian with the identity link is the linear mixed model, "
                      "fitted here by maximum likelihood; lme4's glmer() hands it to lmer(), "
                      "which uses REML: pass reml=True for lmer's fit (reml=False to "
                      "confirm ML and silence this)", ValueWarning, stacklevel=2)
    return model.fit(nAGQ=nAGQ, start=start, **fit_kwargs)
