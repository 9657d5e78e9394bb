"""Results of a GLMM fit: statsmodels inference on β plus lme4's accessors.

The fit hands its results a :class:`GLMMFit` record (MixedModels.jl's
``OptSummary``), filled completely by both producers (:mod:`stages` for the
GLMM, :mod:`lmm` for the linear mixed model).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.base.model as base
import statsmodels.base.wrapper as wrap
from statsmodels.tools._decorators import cache_readonly

from . import getme as _getme
from . import inference as _inference
from . import ranef as _ranef
from .diagnostics import singular_terms
from .families import NegativeBinomialKernel, TweedieKernel
from .postfit import PostFitMixin
from .r_formula import update_formula
from .summary import summary_tables
from .wald import wald_test_estimable

__all__ = ["GLMMFit", "GLMMResults", "GLMMResultsWrapper"]


@dataclass
class GLMMFit:
    """Everything a fit produces, handed from the model to its results.

    Attributes
    ----------
    theta : ndarray
        lme4's θ at the optimum.
    beta : ndarray
        Fixed effects (the columns kept after the rank check).
    dispersion : float or tuple
        The family kernel's dispersion value (see :mod:`families`): 1 for
        binomial and Poisson, φ (σ² for the LMM), α for the negative binomial,
        (φ, p) for Tweedie.
    modes : pirls.PirlsResult or lmm.LmmModes
        Conditional modes û and everything evaluated there (η, μ, the factor).
    neg2ll : float
        −2 log-likelihood at the optimum (the REML criterion for a REML fit).
    nAGQ : int
    optimizer : optimizer.OptimizeResult
        The last optimizer stage.
    nfev : dict
        Evaluations per stage: ``stage1_nfev`` (nAGQ=0 stage), ``stage2_nfev``.
    vcov, vcov_conditional : ndarray
        The covariance of β̂ reported, and the one conditional on θ (R_X⁻¹R_X⁻ᵀ).
    cov_type : {"hessian", "conditional", "cluster"}
    information : {"observed", "expected"}
    reml : bool
    hessian : ndarray or None
        Finite-difference Hessian of the deviance over the packed parameters
        (θ, packed dispersion, β).
    convergence : dict or None
        The checks of :func:`convergence.check_convergence`.
    hessian_skipped : bool
        The Hessian was skipped for a large model (``calc_hessian="auto"``).
    options : validation.FitOptions or None
        The options of the fit (set by :meth:`GLMM.fit`).
    """

    theta: np.ndarray
    beta: np.ndarray
    dispersion: object
    modes: object
    neg2ll: float
    nAGQ: int
    optimizer: object
    nfev: dict
    vcov: np.ndarray
    vcov_conditional: np.ndarray
    cov_type: str
    information: str = "observed"
    reml: bool = False
    hessian: object = None
    convergence: object = None
    hessian_skipped: bool = False
    options: object = None


class GLMMResults(PostFitMixin, base.LikelihoodModelResults):
    """Results of :meth:`GLMM.fit`.

    ``params``, ``bse``, ``tvalues``, ``pvalues``, ``conf_int()`` and
    ``cov_params()`` refer to the fixed effects β only (Wald z inference), so
    statsmodels' ``t_test``, ``wald_test`` and ``wald_test_terms`` work on them.

    Attributes
    ----------
    theta : pandas.Series
        lme4's θ: per random-effects term (sorted by decreasing number of
        levels), the lower-triangular relative covariance factor by columns.
    dispersion : float
        φ: 1 for binomial and Poisson, the ML dispersion for Gamma, inverse
        Gaussian and Gaussian with a non-identity link, σ² for the LMM.
    llf : float
        The maximised log-likelihood (Laplace or AGQ approximation) with every
        normalizing constant, comparable across nAGQ. For a REML fit, minus
        half the REML criterion.
    deviance : float
        Σ of the unit deviances at the conditional modes (lme4's
        ``deviance()``); −2 llf is ``neg2llf``.
    nAGQ : int
    converged : bool
    cov_type : str
        ``"hessian"`` or ``"conditional"`` (see :meth:`GLMM.fit`).
    """

    def __init__(self, model, fit):
        # columns dropped for collinearity are NaN in params, bse and cov_params
        k = len(model.exog_names) if model.exog_names is not None else model.k_fe
        params = np.full(k, np.nan)
        params[model.kept_columns] = fit.beta
        vcov = np.full((k, k), np.nan)
        vcov[np.ix_(model.kept_columns, model.kept_columns)] = fit.vcov
        super().__init__(model, params, normalized_cov_params=vcov, scale=1.0)
        self.fit_record = fit
        self.nAGQ = fit.nAGQ
        self.reml = fit.reml
        self.cov_type = fit.cov_type
        self.use_t = False
        self.dispersion = model.kernel.phi(fit.dispersion)
        self.optimizer = fit.optimizer
        self.converged = bool(self.optimizer.converged)
        self.mle_retvals = {"converged": self.converged, "nfev": self.optimizer.nfev,
                            "message": self.optimizer.message, **fit.nfev}
        self.u = fit.modes.u
        self.hessian = fit.hessian
        self.convergence = fit.convergence
        self.nobs = model.nobs
        self.df_modelwc = model.k_fe + model.k_theta + model.kernel.n_dispersion
        self.df_resid = self.nobs - self.df_modelwc
        self.df_model = model.df_model

    # -- public accessors of the fit ---------------------------------------------------
    @cache_readonly
    def fe_params(self):
        """The estimated fixed effects β (without the NaN of columns dropped for
        collinearity), as an array in the order of ``model.fe_names``."""
        return np.asarray(self.fit_record.beta, dtype=float)

    @cache_readonly
    def cov_fe(self):
        """Covariance of :attr:`fe_params` (``cov_params()`` without the NaN rows)."""
        return np.asarray(self.fit_record.vcov, dtype=float)

    @cache_readonly
    def linear_predictor(self):
        """η = offset + X β + Z b at the conditional modes."""
        return np.asarray(self.fit_record.modes.eta)

    @cache_readonly
    def modes(self):
        """The conditional modes and what was evaluated there (``u``, ``eta``,
        ``mu``, the ``factor`` L), a :class:`pirls.PirlsResult`."""
        return self.fit_record.modes

    # -- likelihood summaries ---------------------------------------------------------
    @cache_readonly
    def llf(self):
        return -0.5 * float(self.fit_record.neg2ll)

    @cache_readonly
    def neg2llf(self):
        """−2 × log-likelihood (lme4 ≥ 1.1-37 prints it as ``-2*log(L)``)."""
        return float(self.fit_record.neg2ll)

    @cache_readonly
    def aic(self):
        return -2.0 * self.llf + 2.0 * self.df_modelwc

    @cache_readonly
    def bic(self):
        return -2.0 * self.llf + np.log(self.nobs) * self.df_modelwc

    @cache_readonly
    def deviance(self):
        """Sum of unit deviances at the conditional modes (lme4's ``deviance``)."""
        return self.summary_statistics()["deviance"]

    @cache_readonly
    def fittedvalues_array(self):
        return np.asarray(self.fit_record.modes.mu)

    @cache_readonly
    def resid_pearson(self):
        """(y − μ) √(w / V(μ)), the Pearson residuals (not divided by σ)."""
        resp = self.model.response
        mu = self.fittedvalues_array
        return (resp.y - mu) * np.sqrt(
            resp.weights / resp.variance(mu, self.fit_record.dispersion))

    @cache_readonly
    def sigma(self):
        """lme4's ``sigma()``: √φ (1 for binomial, Poisson and negative binomial)."""
        return self.model.kernel.sigma(self.fit_record.dispersion)

    @cache_readonly
    def nb_theta(self):
        """Negative binomial shape θ = 1/α (glmmTMB's nbinom2 dispersion), or None."""
        kernel = self.model.kernel
        if not isinstance(kernel, NegativeBinomialKernel):
            return None
        return kernel.shape(self.fit_record.dispersion)

    @cache_readonly
    def tweedie_power(self):
        """The Tweedie power p (estimated by maximum likelihood), or None."""
        kernel = self.model.kernel
        return kernel.power(self.fit_record.dispersion) if isinstance(
            kernel, TweedieKernel) else None

    @cache_readonly
    def nb_theta_se(self):
        """Standard error of θ = 1/α by the delta method from the Hessian, or None."""
        if self.nb_theta is None or not self.model.has_dispersion:
            return None
        if np.isinf(self.nb_theta):  # at the boundary α = 0: no standard error
            return np.nan
        if self.hessian is None:
            return None
        k = self.model.k_theta
        try:
            var_log_alpha = 2.0 * np.linalg.inv(self.hessian)[k, k]
        except np.linalg.LinAlgError:
            return np.nan
        return float(self.nb_theta * np.sqrt(var_log_alpha))

    # -- random effects ---------------------------------------------------------------
    @cache_readonly
    def theta(self):
        names = self.model.random_effects.theta_names()
        return pd.Series(np.asarray(self.fit_record.theta, dtype=float), index=names,
                         name="theta")

    @cache_readonly
    def cov_re(self):
        """Dict {term label: covariance DataFrame} of the random effects."""
        re = self.model.random_effects
        covs = re.covariances(self.theta.to_numpy(), _ranef.re_scale(self))
        return {label: pd.DataFrame(cov, index=term.cnames, columns=term.cnames)
                for label, term, cov in zip(re.term_labels(), re.terms, covs)}

    def varcorr(self):
        """Variance components as R's ``as.data.frame(VarCorr(m))``.

        Returns
        -------
        pandas.DataFrame
            Columns ``grp, var1, var2, vcov, sdcor``: variances (``var2`` None,
            ``sdcor`` the standard deviation) then covariances (``sdcor`` the
            correlation, NaN where a standard deviation is 0) for each term, and a
            ``Residual`` row for the LMM and the families with a dispersion φ.
        """
        return _ranef.varcorr(self)

    def ranef(self, condVar=False):
        """Conditional modes of the random effects, b = Λ û.

        Parameters
        ----------
        condVar : bool
            Also return the conditional variances (lme4's ``postVar``).

        Returns
        -------
        dict
            {grouping factor name: DataFrame indexed by level, one column per
            random effect}; terms sharing a grouping factor are combined, as in
            lme4. With ``condVar=True`` each DataFrame carries
            ``frame.attrs["condVar"]``, an array (levels, S, S) of conditional
            covariance matrices, and columns ``condsd(<name>)`` with their
            square-rooted diagonals.
        """
        return _ranef.ranef(self, condVar)

    def conditional_variances(self):
        """Per term, the conditional covariance of b at each level, (levels, S, S).

        Λ_j [(L L')⁻¹]_jj Λ_j' (times σ² for the linear mixed model), with L the
        factor at the modes: conditional on θ and β, as lme4's ``postVar``.
        """
        return _ranef.conditional_variances(self)

    def coef(self):
        """Fixed plus random effects per level (lme4's ``coef``).

        Returns
        -------
        dict
            {grouping factor: DataFrame indexed by level with a column per fixed
            effect}; random-effect covariates add to the fixed effect of the same
            name (``(Intercept)`` to ``Intercept``).
        """
        return _ranef.coef(self)

    @cache_readonly
    def random_effects(self):
        """Conditional modes as statsmodels MixedLM: {level: Series}.

        With several grouping factors the keys are ``(factor, level)``.
        """
        frames = self.ranef()
        if len(frames) == 1:
            (frame,) = frames.values()
            return {lev: row for lev, row in frame.iterrows()}
        return {(g, lev): row for g, frame in frames.items() for lev, row in frame.iterrows()}

    # -- prediction, simulation, residuals -----------------------------------------------
    def fixed_exog(self, newdata):
        """The fixed-effects design of ``newdata`` from the model's formula (every
        column of ``exog_names``, NaN rows where a covariate is missing)."""
        return self._transform_predict_exog(newdata)[0]

    @cache_readonly
    def resid_response(self):
        """y − μ (y a proportion for the binomial)."""
        return self.model.response.y - self.fittedvalues_array

    @cache_readonly
    def resid_deviance(self):
        """sign(y − μ) √d_i, the signed square roots of the unit deviances."""
        resp = self.model.response
        d = resp.unit_deviance(self.fittedvalues_array)
        return np.sign(self.resid_response) * np.sqrt(np.maximum(d, 0))

    @cache_readonly
    def resid_working(self):
        """(y − μ) / (dμ/dη)."""
        return self.resid_response / self.model.response.mu_eta(self.fit_record.modes.eta)

    def hat_matrix_diag(self):
        """Leverages: the diagonal of the penalized weighted least squares hat
        matrix at the optimum (lme4's ``hatvalues``; for GLMMs only indicative)."""
        return _getme.hat_matrix_diag(self)

    # -- refitting -------------------------------------------------------------------------
    def update(self, formula=None, **kwargs):
        """Refit with a changed formula or arguments (lme4's ``update``).

        Parameters
        ----------
        formula : str, optional
            The new formula, where ``.`` stands for the current left- or
            right-hand side as in R's ``update.formula``: ``". ~ . - x"``,
            ``". ~ . + (1 | h)"``, ``"~ . + x:z"``, ``". ~ . - (1 | g)"``.
        **kwargs
            ``data``, ``subset``, ``family``, ``weights``, ``offset``, ``nAGQ``,
            ``reml`` ... replace the current values; the rest are kept.
        """
        model = self.model
        if model.formula_full is None:
            raise ValueError("update needs a model created from a formula")
        new_formula = model.formula_full
        if formula is not None:
            new_formula = update_formula(model.formula_full, formula) if "." in formula \
                else formula
        source = model.source
        if source is None and "data" not in kwargs:
            raise ValueError("update needs the data the model was fitted to, which were "
                             "removed (remove_data): pass data=")
        args = {"family": model.family, "estimate_alpha": model.estimate_alpha,
                **(source or {})}
        if "data" in kwargs and "subset" not in kwargs:
            args["subset"] = None  # a new data set: the old row selection does not apply
        fit_args = {"nAGQ": self.nAGQ}
        if self.fit_record.options is not None:  # the same optimizer, as lme4's control
            fit_args["optimizer"] = self.fit_record.options.optimizer
        if model.is_lmm:
            fit_args["reml"] = self.reml
        model_keys = {"data", "family", "estimate_alpha", "subset", "weights", "offset",
                      "missing", "eval_env", "exposure", "var_weights", "freq_weights"}
        for key, value in kwargs.items():
            (args if key in model_keys else fit_args)[key] = value
        data = args.pop("data")
        new_model = type(model).from_formula(new_formula, data, **args)
        return new_model.fit(**fit_args)

    def get_me(self, name):
        """Components of the fit by lme4's ``getME`` names.

        ``X``, ``Z`` (sparse), ``Lambda`` (sparse), ``Lambdat``, ``u``, ``b``,
        ``L`` (dense factor of Λ'Z'WZΛ + I), ``theta``, ``beta``, ``lower``,
        ``mu``, ``eta``, ``y``, ``offset``, ``weights``, ``flist``, ``cnms``,
        ``n``, ``p``, ``q``.
        """
        return _getme.get_me(self, name)

    # -- inference ---------------------------------------------------------------------------
    def anova(self, *others, names=None, boundary=False):
        """Likelihood-ratio table of this and other fits (see :func:`inference.anova`)."""
        return _inference.anova(self, *others, names=names, boundary=boundary)

    def drop1(self, test="Chisq", **fit_kwargs):
        """Refit without each droppable fixed term (see :func:`inference.drop1`)."""
        return _inference.drop1(self, test=test, **fit_kwargs)

    def profile(self, which=None, alphamax=0.01, maxpts=40, progress=False):
        """Likelihood profiles of the sd/corr parameters and β (see
        :func:`inference.profile`)."""
        return _inference.profile(self, which, alphamax, maxpts, progress=progress)

    def confint(self, method="Wald", level=0.95, **kwargs):
        """Intervals for sd/corr and β: ``"Wald"``, ``"profile"`` or ``"boot"``
        (see :func:`inference.confint`)."""
        return _inference.confint(self, method=method, level=level, **kwargs)

    def bootstrap(self, nsim=100, func=None, seed=None, n_jobs=1, progress=False):
        """Parametric bootstrap (see :func:`inference.bootstrap`)."""
        return _inference.bootstrap(self, nsim=nsim, func=func, seed=seed, n_jobs=n_jobs,
                         progress=progress)

    def is_singular(self, tol=1e-4):
        """True if a diagonal element of a relative covariance factor is below ``tol``
        (lme4's ``isSingular``), θ taken in the units of the covariates (a random
        slope on ``x * 1e6`` is not singular because its θ is ~1e-6)."""
        return bool(singular_terms(self.model.random_effects, self.theta.to_numpy(), tol))

    def ngroups(self):
        """Number of levels of each grouping factor."""
        out = {}
        for term in self.model.random_effects.terms:
            out.setdefault(term.group_name, term.n_levels)
        return out

    # -- summary ---------------------------------------------------------------------
    def summary(self, alpha=0.05, title=None):
        """A statsmodels ``Summary`` laid out like lme4's ``summary(glmer)``."""
        return summary_tables(self, alpha=alpha, title=title)

    # statsmodels hooks ----------------------------------------------------------------
    def wald_test(self, r_matrix, cov_p=None, invcov=None, use_f=None, df_constraints=None,
                  scalar=None):
        """statsmodels' Wald test of linear hypotheses on the fixed effects.

        Columns dropped for collinearity (NaN in ``params``) are not estimable:
        constraint rows that involve only them are left out (``wald_test_terms``
        then tests what remains of a term, or reports NaN for a term that was
        dropped whole); a row that mixes them with estimated columns is an error.
        """
        if not self.model.dropped_columns or cov_p is not None or invcov is not None:
            return super().wald_test(r_matrix, cov_p=cov_p, invcov=invcov, use_f=use_f,
                                     df_constraints=df_constraints, scalar=scalar)
        return wald_test_estimable(self, r_matrix, use_f=use_f,
                                   df_constraints=df_constraints)


class GLMMResultsWrapper(base.LikelihoodResultsWrapper):
    # fittedvalues labels its rows itself (padded for missing="exclude")
    _attrs = {"resid_pearson": "rows", "resid_deviance": "rows",
              "resid_response": "rows", "resid_working": "rows"}
    # ``resid`` is a method here (lme4's residuals(type=...)), not an array
    _wrap_attrs = {k: v for k, v in wrap.union_dicts(
        base.LikelihoodResultsWrapper._wrap_attrs, _attrs).items()
        if k not in ("resid", "fittedvalues")}
    _methods = {}
    _wrap_methods = wrap.union_dicts(base.LikelihoodResultsWrapper._wrap_methods, _methods)


wrap.populate_wrapper(GLMMResultsWrapper, GLMMResults)
