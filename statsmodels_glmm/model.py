"""Generalized linear mixed models fitted by maximum likelihood.

The model is

    y | u ~ family(μ),  g(μ) = offset + X β + Z Λ_θ u,  u ~ N(0, I_q),

so the random effects b = Λ_θ u have covariance Λ_θ Λ_θ' (times σ² for the
linear mixed model). The marginal likelihood is approximated, at the conditional
modes û found by PIRLS, by

- ``nAGQ=1``: the Laplace approximation,
  −2ℓ ≈ −2 log p(y | û) + ‖û‖² + log|L|², with L L' = Λ'Z'WZΛ + I;
- ``nAGQ>1``: adaptive Gauss-Hermite quadrature (one random-effects term);
- ``nAGQ=0``: the same Laplace expression with β estimated jointly with u by
  PIRLS, so the optimizer only sees θ (lme4's shortcut).

This module holds the model: its construction from data (:mod:`frame` builds
the model frame from a formula), the parameter layout, and ``fit`` as a short
sequence of stages (:mod:`stages`, :mod:`lmm`) over the deviance function
(:mod:`devfun`), ending in warnings (:mod:`diagnostics`) and results.
"""

import copy
import sys

import numpy as np
from patsy import PatsyError
import statsmodels.base.model as base

from .blas import blas_limits
from .blocked_cholesky import PenalizedSystem
from .design import drop_collinear_columns
from .devfun import DevianceFunction
from .diagnostics import warn_diverging, warn_separation, warn_singular
from .families import BinomialKernel, NegativeBinomialKernel, kernel_class
from .formula_parser import parse_formula
from .frame import RESPONSE_COLUMN, check_proportion, formula_model, model_frame
from .lmm import fit_lmm
from .params import ParameterLayout
from .pickling import RFormulaPickling
from .pirls import pirls
from .r_formula import R_NAMESPACE
from .re_terms import RandomEffects, single_term
from .refit import model_with_response
from .response import Response
from .results import GLMMResults, GLMMResultsWrapper
from .robust import fit_covariance
from .stages import InMemoryOperations, fit_glmm, fit_negative_binomial, glm_start_values
from .statsmodels_compat import statsmodels_arguments
from .validation import (
    as_data_frame,
    check_design_rows,
    check_family,
    check_identifiable,
    check_nagq,
    complete_arrays,
    fit_options,
)

__all__ = ["GLMM"]


def _caller_namespace(depth):
    """The variables visible ``depth`` frames up, as a formula evaluation env."""
    frame = sys._getframe(depth + 1)
    namespace = dict(frame.f_globals)
    namespace.update(frame.f_locals)
    return namespace


class GLMM(RFormulaPickling, InMemoryOperations, base.LikelihoodModel):
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
        Default ``Binomial()``. Never modified; a copy is kept. Besides
        statsmodels' families (Tweedie with 1 < p < 2 included), any
        ``Family`` subclass with its own variance, link and ``loglike_obs``
        is fitted (see :mod:`families`).
    offset, weights : array_like, optional
        Offset on the linear-predictor scale; prior weights (as lme4's
        ``weights``: binomial trials for proportions, precision weights
        otherwise). statsmodels' ``exposure`` and ``var_weights`` are accepted
        (see :func:`statsmodels_compat.statsmodels_arguments`).
    groups : array_like, optional
        Grouping factor of a single random-effects term.
    exog_re : array_like, optional
        Covariates of that term (default: a random intercept).
    missing : {"none", "drop", "raise"}
        Array input: ``"drop"`` removes the rows with a missing value (NaN,
        None) in endog, exog, groups, exog_re, offset or weights, all of them
        consistently; ``"none"`` and ``"raise"`` refuse them. Formula input
        drops incomplete rows by default (see :meth:`from_formula`).
    estimate_alpha : bool
        Negative binomial: estimate α by maximum likelihood (:func:`glmer_nb`)
        instead of keeping the family's ``alpha``.

    Notes
    -----
    Use :func:`statsmodels_glmm.glmer` or :meth:`from_formula` for lme4's formula
    syntax. The parameters are θ (relative covariance factors, lme4's order and
    parameterization), β, and the family's dispersion parameters (φ for Gamma,
    inverse Gaussian and Gaussian with a non-identity link; α for the negative
    binomial; φ and the power p for Tweedie), estimated by maximum likelihood.
    """

    _formula_max_endog = 2

    def __init__(self, endog, exog, random_effects=None, family=None, offset=None,
                 weights=None, groups=None, exog_re=None, missing="none",
                 estimate_alpha=False, **kwargs):
        formula_info = {key: kwargs.pop(key, None) for key in (
            "parsed_formula", "endog_label", "formula_full", "source", "row_labels",
            "explicit_offset")}
        family = check_family(family)
        _, offset, weights = statsmodels_arguments(kwargs, family, offset, weights)
        if random_effects is not None and not isinstance(random_effects, RandomEffects):
            raise TypeError("random_effects must be a RandomEffects instance")
        if formula_info["parsed_formula"] is None:
            endog, exog, groups, exog_re, offset, weights = complete_arrays(
                endog, exog, groups, exog_re, offset, weights, missing,
                has_terms=random_effects is not None)
        super().__init__(endog, exog, missing="none", **kwargs)
        self._set_formula_info(formula_info)
        if random_effects is None:
            random_effects = single_term(groups, exog_re)
        self.family = copy.deepcopy(family)
        self.estimate_alpha = bool(estimate_alpha)
        self.random_effects = random_effects
        self.response = Response(self.family, self.endog, weights, offset, self.endog_label,
                                 estimate_alpha=self.estimate_alpha)
        self.kernel = self.response.kernel
        self.offset = self.response.offset
        self.weights = None if weights is None else self.response.prior_weights
        self.exog = np.asarray(self.exog, dtype=float)
        self.is_lmm = self.kernel.is_linear_mixed_model
        check_design_rows(self.exog, self.response.nobs)
        names = list(self.exog_names) if self.exog_names is not None else [
            f"x{i}" for i in range(self.exog.shape[1])]
        self.exog, self.kept_columns, self.design_basis = drop_collinear_columns(
            self.exog, names)
        self.fe_names = [names[i] for i in self.kept_columns]
        self.dropped_columns = [n for i, n in enumerate(names) if i not in self.kept_columns]
        check_identifiable(self.response, self.random_effects, self.endog_label, self.is_lmm)
        self.system = PenalizedSystem(random_effects)
        self.k_fe = self.exog.shape[1]
        self.k_theta = random_effects.n_theta
        self.has_dispersion = self.kernel.n_dispersion > 0
        self.parameters = ParameterLayout(random_effects, self.kernel, self.k_fe, self.fe_names)
        self.nobs = float(self.response.nobs)
        self.k_extra = self.k_theta + self.kernel.n_dispersion
        self.df_model = self.k_fe - 1
        self.df_resid = self.nobs - self.k_fe - self.k_extra
        self._start_cache = None
        self._init_keys.extend(["random_effects", "family", "offset", "weights",
                                "estimate_alpha"])

    def _set_formula_info(self, info):
        """What a formula model knows beyond the arrays (None for array input)."""
        self.parsed_formula = info["parsed_formula"]
        self.formula_full = info["formula_full"]
        self.row_labels = info["row_labels"]
        self.offset_exprs = list(self.parsed_formula.offsets) if self.parsed_formula else []
        self.explicit_offset = info["explicit_offset"]
        self.source = info["source"]
        if self.source is not None:
            self._data_attr.append("source")  # remove_data() drops it
        self.endog_label = info["endog_label"] or (
            self.endog_names if isinstance(self.endog_names, str) else "y")
        if self.data.ynames == RESPONSE_COLUMN:  # the response as the user wrote it
            self.data.ynames = self.endog_label

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
        missing : {"drop", "exclude", "raise"}
            Rows with a missing value (NaN, None, pd.NA) in any variable of the
            model (response, fixed or random covariates, grouping factors,
            weights, offset) are dropped, or an error is raised. Infinite
            values are always an error. ``"exclude"`` (R's ``na.exclude``) drops
            them from the fit, and fitted values, residuals and predictions put
            them back as NaN rows.
        eval_env : dict, optional
            Namespace for functions in the formula (default: the caller's).
        **kwargs
            Passed to the constructor (``estimate_alpha``); statsmodels'
            ``exposure`` (a column, expression or array; log exposure becomes an
            ``offset(log(...))`` term) and ``var_weights`` (= ``weights``).

        Returns
        -------
        GLMM
        """
        if missing not in ("drop", "raise", "none", "exclude"):
            raise ValueError(f"missing must be 'drop', 'exclude' or 'raise', got {missing!r}")
        if missing == "none":  # statsmodels' "no checks" cannot mean NaN in the fit
            missing = "raise"
        data = as_data_frame(data)
        family = check_family(family)
        formula, offset, weights = statsmodels_arguments(kwargs, family, offset, weights,
                                                         formula, data)
        if eval_env is None:
            eval_env = _caller_namespace(1)
        eval_env = {**eval_env, **R_NAMESPACE}  # the formula is in R's language
        parsed = parse_formula(formula)
        if not parsed.bars:
            raise PatsyError(
                f"formula {formula!r} has no random-effects term like (1 | g); "
                "for a model without random effects use statsmodels GLM"
            )
        check_proportion(parsed, family, weights)
        mf = model_frame(formula, data, parsed, kernel_class(family) is BinomialKernel,
                         subset, weights, offset, missing.replace("exclude", "drop"),
                         eval_env)
        # the fixed part as statsmodels' from_formula makes it, so the model gets
        # formula names, model_spec (predict, wald_test_terms) and pickling support.
        # What update() needs to refit as lme4 does is the data as given, not the
        # rows this model kept (another formula may use other columns).
        source = {"data": data, "subset": subset, "weights": weights, "offset": offset,
                  "missing": missing}
        model = formula_model(
            cls, mf.fixed_formula, mf.frame, eval_env, family=family,
            random_effects=mf.random_effects, offset=mf.offset, weights=mf.weights,
            parsed_formula=mf.parsed, endog_label=mf.parsed.lhs, formula_full=formula,
            source=source, row_labels=mf.frame.index, explicit_offset=mf.explicit_offset,
            **kwargs)
        model.na_action = "exclude" if missing == "exclude" else "omit"
        return model

    def with_response(self, endog):
        """The same model (design, random effects, family) with a new response, in
        the representation :meth:`GLMMResults.simulate` returns (see
        :func:`refit.new_response_values`)."""
        return model_with_response(self, endog)

    # -- parameters and the deviance -------------------------------------------------
    def pirls(self, theta, beta=None, phi=None, u0=None, tol=1e-12, information="observed"):
        """Conditional modes at (θ, β): PIRLS with β fixed, or jointly if β is None.

        Parameters
        ----------
        theta : array_like
            Relative covariance parameters (lme4's θ, see ``theta_names``).
        beta : array_like, optional
            Fixed effects; when omitted they are estimated jointly with u
            (the nAGQ=0 iteration), starting from a GLM fit.
        phi : float or tuple, optional
            The family's dispersion (1 for binomial and Poisson, φ, α for the
            negative binomial, (φ, p) for Tweedie); default the family's default.
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
        phi = self.kernel.default_dispersion() if phi is None else phi
        scaled = self.random_effects.scaled_covariates(theta)
        u0 = np.zeros(self.random_effects.n_re) if u0 is None else np.asarray(u0, float)
        if beta is None:
            basis = self.design_basis
            modes = pirls(self.response, self.random_effects, self.system, scaled,
                          self.offset, u0, phi, X=basis.X,
                          beta0=basis.to_internal(self.glm_start()[0]), tol=tol,
                          information=information)
            modes.beta = basis.to_external(modes.beta)
            return modes
        beta = np.asarray(beta, dtype=float)
        return pirls(self.response, self.random_effects, self.system, scaled,
                     self.offset + self.exog @ beta, u0, phi, beta=beta, tol=tol,
                     information=information)

    def deviance(self, theta, beta=None, nAGQ=1, phi=None, u0=None, information="observed"):
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

        See Also
        --------
        devfun.DevianceFunction : the same function over the packed parameters.
        """
        nAGQ = check_nagq(nAGQ, self.random_effects)
        phi = self.kernel.default_dispersion() if phi is None else phi
        modes = self.pirls(theta, None if nAGQ == 0 else beta, phi, u0, information=information)
        return DevianceFunction(self, nAGQ, information, u0=u0).approximation(
            modes, np.asarray(theta, float), phi, modes.beta)

    def deviance_function(self, nAGQ=1, information="observed", u0=None, beta0=None,
                          observer=None):
        """The deviance as a :class:`devfun.DevianceFunction` of the packed
        parameters (θ, dispersion, β) of :attr:`parameters` (of (θ, dispersion)
        for ``nAGQ=0``)."""
        return DevianceFunction(self, check_nagq(nAGQ, self.random_effects), information,
                                u0=u0, beta0=beta0, observer=observer)

    def glm_start(self):
        """Starting β and dispersion: one weighted least-squares step from R's
        ``mustart`` (as lme4, whose first PIRLS starts at η = g(mustart)).

        Cheap (O(n p²)) and good enough: PIRLS and the first stage refine it.
        """
        if self._start_cache is None:
            self._start_cache = glm_start_values(self)
        return self._start_cache

    def theta_start(self, start):
        """Starting θ in the optimizer's coordinates θ · scale (see
        ``RandomEffects.theta_scale``): the user's θ, or lme4's identity factors
        on the scale of the covariates."""
        theta = start.get("theta")
        if theta is None:
            return self.random_effects.theta_start()
        return np.asarray(theta, dtype=float) * self.random_effects.theta_scale()

    # -- fitting -----------------------------------------------------------------------
    def fit(self, nAGQ=1, start=None, reml=False, cov_type=None, maxfun=10000,
            nAGQ0_init=True, boundary_tol=1e-5, calc_hessian="auto", information="observed",
            blas_threads="auto", optimizer="bobyqa", **kwargs):
        """Fit by maximum likelihood (or REML for the linear mixed model).

        Parameters
        ----------
        nAGQ : int
            0 (β by PIRLS, optimizer over θ only), 1 (Laplace, default) or the
            number of adaptive Gauss-Hermite points (one term only).
        start : dict, optional
            ``{"theta": ..., "beta": ..., "phi": ...}`` starting values.
        reml : bool
            REML instead of ML; only for the linear mixed model (Gaussian, identity link).
        cov_type : {"hessian", "conditional", "cluster"}, optional
            Covariance of β̂: ``"hessian"`` (lme4's default for nAGQ ≥ 1: the β
            block of 2 H⁻¹ from a finite-difference Hessian of the deviance over
            all parameters) or ``"conditional"`` (from the PIRLS factor at the
            optimum, conditional on θ; the default for nAGQ=0 and for the LMM);
            ``"cluster"``: cluster-robust, with statsmodels' ``cov_kwds`` the
            arguments of :meth:`GLMMResults.get_robustcov_results`. statsmodels'
            ``use_t=True`` gives t inference with ``df_resid`` (lme4 uses z).
        maxfun : int
            Maximum number of deviance evaluations per optimizer stage.
        nAGQ0_init : bool
            Start the nAGQ ≥ 1 fit from an nAGQ=0 fit, as lme4 does.
        boundary_tol : float
            θ diagonal elements within this distance of 0 are tried at 0.
        calc_hessian : bool or "auto"
            Compute the finite-difference Hessian (needed for ``cov_type="hessian"``). ``"auto"``
            does so unless nobs·k² > 2e7 (k optimizer parameters; ~k² evaluations of O(n) each),
            then uses the conditional covariance and checks convergence with the gradient only.
        information : {"observed", "expected"}
            The curvature used in the Laplace approximation (log|L|²) and to scale the quadrature:
            ``"observed"`` (default) is the true Laplace approximation, as glmmTMB; ``"expected"``
            uses the Fisher information, as lme4. They are identical for canonical links
            (binomial-logit, Poisson-log); for others (probit, cloglog, Gamma-log ...)
            ``"expected"`` reproduces lme4's numbers.
        blas_threads : int, None or "auto"
            BLAS threads during the fit. ``"auto"`` uses one thread when every
            dense block is smaller than 1000 (faster for such blocks), and leaves
            the BLAS setting alone otherwise; ``None`` never changes it.
        verbose, callback, progress
            Print every ``verbose``-th deviance evaluation, call ``callback(stage, nfev, params,
            value)`` after each, show a tqdm counter: see :class:`progress.FitMonitor`.
        optimizer : str
            ``"bobyqa"`` (default), ``"nelder_mead"``, ``"sbplx"``, ``"lbfgsb"`` or
            ``"trust_constr"``, in every stage (see :mod:`optimizer_choice`;
            :meth:`GLMMResults.allfit` compares them).

        Returns
        -------
        GLMMResultsWrapper
        """
        options, blas_threads = fit_options(
            self, kwargs, nAGQ=nAGQ, start=start, reml=reml, cov_type=cov_type, maxfun=maxfun,
            nAGQ0_init=nAGQ0_init, boundary_tol=boundary_tol, calc_hessian=calc_hessian,
            information=information, blas_threads=blas_threads, optimizer=optimizer)
        with blas_limits(blas_threads), options.feedback():
            if self.is_lmm:
                fit = fit_lmm(self, options)
            elif isinstance(self.kernel, NegativeBinomialKernel) and self.estimate_alpha:
                fit = fit_negative_binomial(self, options)
            else:
                fit = fit_glmm(self, options)
        fit.options = options  # how to fit it again (allfit, refit)
        warn_separation(self.response, fit.modes.mu)
        warn_singular(self.random_effects, fit.theta)
        warn_diverging(self.response, self.random_effects, fit.theta)
        return GLMMResultsWrapper(fit_covariance(GLMMResults(self, fit), options))
