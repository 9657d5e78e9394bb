"""Results of a GLMM fit: statsmodels inference on β plus lme4's accessors."""

import numpy as np
import pandas as pd
from scipy import stats
import scipy.linalg as sla
import statsmodels.base.model as base
import statsmodels.base.wrapper as wrap
from statsmodels.iolib.summary import Summary
from statsmodels.iolib.table import SimpleTable
from statsmodels.tools._decorators import cache_readonly

from .response import family_name, link_name

__all__ = ["GLMMResults", "GLMMResultsWrapper"]


class GLMMResults(base.LikelihoodModelResults):
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
        params[model.kept_columns] = fit["beta"]
        vcov = np.full((k, k), np.nan)
        vcov[np.ix_(model.kept_columns, model.kept_columns)] = fit["vcov"]
        super().__init__(model, params, normalized_cov_params=vcov, scale=1.0)
        self._beta = np.asarray(fit["beta"])
        self._vcov = np.asarray(fit["vcov"])
        self._fit = fit
        self.nAGQ = fit["nAGQ"]
        self.reml = fit["reml"]
        self.cov_type = fit["cov_type"]
        self.use_t = False
        self.dispersion = float(fit["phi"])
        self.optimizer = fit["optimizer"]
        self.converged = bool(self.optimizer.converged)
        self.mle_retvals = {"converged": self.converged, "nfev": self.optimizer.nfev,
                            "message": self.optimizer.message, **fit["history"]}
        self.u = fit["modes"].u
        self.hessian = fit["hessian"]
        self.convergence = fit.get("convergence")
        self.nobs = model.nobs
        self.df_modelwc = model.k_fe + model.k_theta + int(
            model.has_dispersion or model.is_lmm)
        self.df_resid = self.nobs - self.df_modelwc
        self.df_model = model.df_model

    # -- likelihood summaries ---------------------------------------------------------
    @cache_readonly
    def llf(self):
        return -0.5 * float(self._fit["deviance"])

    @cache_readonly
    def neg2llf(self):
        """−2 × log-likelihood (lme4 ≥ 1.1-37 prints it as ``-2*log(L)``)."""
        return float(self._fit["deviance"])

    @cache_readonly
    def aic(self):
        return -2.0 * self.llf + 2.0 * self.df_modelwc

    @cache_readonly
    def bic(self):
        return -2.0 * self.llf + np.log(self.nobs) * self.df_modelwc

    @cache_readonly
    def deviance(self):
        """Sum of unit deviances at the conditional modes (lme4's ``deviance``)."""
        return float(self.model.response.unit_deviance(self.fittedvalues_array,
                                                       self.dispersion).sum())

    @cache_readonly
    def fittedvalues_array(self):
        return np.asarray(self._fit["modes"].mu)

    @cache_readonly
    def fittedvalues(self):
        """Conditional means μ at the conditional modes of the random effects."""
        return self.fittedvalues_array

    @cache_readonly
    def resid_pearson(self):
        """(y − μ) √(w / V(μ)), the Pearson residuals (not divided by σ)."""
        resp = self.model.response
        mu = self.fittedvalues_array
        return (resp.y - mu) * np.sqrt(resp.weights / resp.variance(mu, self.dispersion))

    @cache_readonly
    def sigma(self):
        """lme4's ``sigma()``: √φ (1 for binomial, Poisson and negative binomial)."""
        if self.model.response.name == "negative.binomial":
            return 1.0
        return float(np.sqrt(self.dispersion))

    @cache_readonly
    def nb_theta(self):
        """Negative binomial shape θ = 1/α (glmmTMB's nbinom2 dispersion), or None."""
        resp = self.model.response
        if resp.name != "negative.binomial":
            return None
        alpha = resp.alpha(self.dispersion)
        return np.inf if alpha == 0 else 1.0 / alpha

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
        return pd.Series(np.asarray(self._fit["theta"], dtype=float), index=names,
                         name="theta")

    def _re_scale(self):
        return self.dispersion if self.model.is_lmm else 1.0

    @cache_readonly
    def cov_re(self):
        """Dict {term label: covariance DataFrame} of the random effects."""
        re = self.model.random_effects
        covs = re.covariances(self.theta.to_numpy(), self._re_scale())
        return {label: pd.DataFrame(cov, index=term.cnames, columns=term.cnames)
                for label, term, cov in zip(self._term_labels(), re.terms, covs)}

    def _term_labels(self):
        """Grouping-factor names, repeated ones numbered ``g``, ``g.1`` ... as R does."""
        seen = {}
        labels = []
        for term in self.model.random_effects.terms:
            count = seen.get(term.group_name, 0)
            seen[term.group_name] = count + 1
            labels.append(term.group_name if count == 0 else f"{term.group_name}.{count}")
        return labels

    def varcorr(self):
        """Variance components as R's ``as.data.frame(VarCorr(m))``.

        Returns
        -------
        pandas.DataFrame
            Columns ``grp, var1, var2, vcov, sdcor``: variances (``var2`` None,
            ``sdcor`` the standard deviation) then covariances (``sdcor`` the
            correlation) for each term, and a ``Residual`` row for the LMM and
            the families with a dispersion parameter.
        """
        rows = []
        re = self.model.random_effects
        covs = re.covariances(self.theta.to_numpy(), self._re_scale())
        for label, term, cov in zip(self._term_labels(), re.terms, covs):
            sd = np.sqrt(np.diag(cov))
            for i, name in enumerate(term.cnames):
                rows.append((label, name, None, cov[i, i], sd[i]))
            for j in range(len(term.cnames)):
                for i in range(j + 1, len(term.cnames)):
                    corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                    rows.append((label, term.cnames[j], term.cnames[i], cov[i, j], corr))
        if self.model.is_lmm or (self.model.has_dispersion
                                 and self.model.response.name != "negative.binomial"):
            rows.append(("Residual", None, None, self.dispersion, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

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
        re = self.model.random_effects
        cond = self.conditional_variances() if condVar else [None] * len(re.terms)
        out = {}
        for term, b, var in zip(re.terms, re.conditional_modes(self.theta.to_numpy(), self.u),
                                cond):
            frame = pd.DataFrame(b, index=term.levels, columns=term.cnames)
            frame.index.name = term.group_name
            if var is not None:
                sd = np.sqrt(np.diagonal(var, axis1=1, axis2=2))
                for i, name in enumerate(term.cnames):
                    frame[f"condsd({name})"] = sd[:, i]
            if term.group_name in out:
                prev = out[term.group_name]
                merged = prev.join(frame, rsuffix="'")
                if var is not None:
                    merged.attrs["condVar"] = _block_stack(prev.attrs["condVar"], var)
                out[term.group_name] = merged
            else:
                if var is not None:
                    frame.attrs["condVar"] = var
                out[term.group_name] = frame
        if condVar:  # modes first, then their conditional standard deviations
            for name, frame in out.items():
                modes = [c for c in frame.columns if not str(c).startswith("condsd(")]
                sds = [c for c in frame.columns if str(c).startswith("condsd(")]
                attrs = frame.attrs
                out[name] = frame[modes + sds]
                out[name].attrs.update(attrs)
        return out

    def conditional_variances(self):
        """Per term, the conditional covariance of b at each level, (levels, S, S).

        Λ_j [(L L')⁻¹]_jj Λ_j' (times σ² for the linear mixed model), with L the
        factor at the modes: conditional on θ and β, as lme4's ``postVar``.
        """
        re = self.model.random_effects
        factor = self._fit["modes"].factor.leading(len(re.terms))
        if len(re.terms) == 1:
            inv = factor.diag[0].inverse
            blocks = [np.einsum("lki,lkj->lij", inv, inv)]
        else:
            Linv = np.linalg.inv(factor.to_dense())
            full = Linv.T @ Linv
            blocks = []
            for term, lo in zip(re.terms, re.re_offsets):
                s = term.n_cov
                sub = full[lo:lo + term.n_re, lo:lo + term.n_re]
                idx = np.arange(term.n_levels)[:, None] * s + np.arange(s)
                blocks.append(sub[idx[:, :, None], idx[:, None, :]])
        scale = self._re_scale()
        return [scale * np.einsum("ij,ljk,mk->lim", T, blk, T)
                for T, blk in zip(re.factors(self.theta.to_numpy()), blocks)]

    def coef(self):
        """Fixed plus random effects per level (lme4's ``coef``).

        Returns
        -------
        dict
            {grouping factor: DataFrame indexed by level with a column per fixed
            effect}; random-effect covariates add to the fixed effect of the same
            name (``(Intercept)`` to ``Intercept``).
        """
        out = {}
        params = pd.Series(self._beta, index=self.model.fe_names)
        for group, frame in self.ranef().items():
            table = pd.DataFrame(np.tile(params.to_numpy(), (len(frame), 1)),
                                 index=frame.index, columns=params.index)
            for col in frame.columns:
                name = "Intercept" if col == "(Intercept)" else str(col).rstrip("'")
                if name not in table.columns:
                    table[name] = 0.0
                table[name] += frame[col].to_numpy()
            out[group] = table
        return out
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
    def predict(self, newdata=None, re_form=None, which="mean", allow_new_levels=False,
                offset=None, exog=None):
        """Predictions, conditional on the random effects (lme4's ``predict``).

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            New rows; default the fitted data. ``exog`` is accepted as an alias.
        re_form : str or None
            ``None``: every random-effects term; ``"~0"`` or ``"NA"``: none
            (population level); a formula such as ``"~(1 | herd)"``: the terms of
            the grouping factors it names.
        which : {"mean", "linear"}
            Conditional mean g⁻¹(η) or the linear predictor η.
        allow_new_levels : bool
            Predict unseen levels (and missing grouping values) at the population
            level instead of raising an error that names them.
        offset : array_like, optional
            Offset for ``newdata``, added to its ``offset(...)`` terms.

        Returns
        -------
        pandas.Series (index of ``newdata``) or ndarray
            NaN where a covariate or grouping value is missing.
        """
        from .prediction import linear_predictor

        if which not in ("mean", "linear"):
            raise ValueError("which must be 'mean' or 'linear'")
        newdata = exog if newdata is None else newdata
        eta, index = linear_predictor(self, newdata, re_form, allow_new_levels, offset)
        out = eta if which == "linear" else self.model.response.mu(eta)
        if index is not None:
            return pd.Series(out, index=index, name="predicted")
        return out

    def get_prediction(self, newdata=None, which="mean", offset=None):
        """Population-level prediction (random effects 0) with delta-method
        standard errors from ``cov_params()``, as statsmodels GLM offers.

        Returns
        -------
        prediction.PredictionResults
            ``predicted``, ``se``, ``conf_int(alpha)``, ``summary_frame(alpha)``.
        """
        from .prediction import PredictionResults

        model = self.model
        if newdata is None:
            X, offs, index = model.exog, model.offset, getattr(model, "row_labels", None)
        else:
            from .frame import prepare_newdata
            from .prediction import fixed_design

            newdata = prepare_newdata(newdata)
            X, offs = fixed_design(self, newdata, offset)
            index = newdata.index
        eta = X @ self._beta + offs
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, self._vcov, X))
        return PredictionResults(eta, se, model.response.mu, model.response.mu_eta,
                                 which=which, index=index)

    def simulate(self, nsim=1, seed=None, use_u=False, newdata=None, re_form=None,
                 allow_new_levels=False):
        """Simulate responses from the fitted model (lme4's ``simulate``).

        Parameters
        ----------
        nsim : int
        seed : int, numpy Generator or None
        use_u : bool
            Condition on the fitted random effects; otherwise draw new ones,
            u ~ N(0, I) (and b = Λ u).
        newdata : pandas.DataFrame, optional
            Simulate at new rows (with ``use_u`` the fitted effects of their levels).

        Returns
        -------
        pandas.DataFrame
            One column per simulation (``sim_1`` ...), the response on the model's
            scale: 0/1 or proportions for the binomial (trials as in the fit),
            counts for the Poisson.
        """
        from .prediction import linear_predictor, simulate_response

        rng = np.random.default_rng(seed)
        model = self.model
        re = model.random_effects
        resp = model.response
        if newdata is not None and not use_u:
            raise ValueError("simulating new random effects at newdata is not supported; "
                             "use use_u=True")
        sims = {}
        for k in range(nsim):
            if use_u:
                eta, index = linear_predictor(self, newdata, re_form, allow_new_levels)
            else:
                u = rng.standard_normal(re.n_re)
                scaled = re.scaled_covariates(self.theta.to_numpy())
                eta = (model.exog @ self._beta + model.offset
                       + re.linear_predictor(scaled, u))
                index = getattr(model, "row_labels", None)
            sims[f"sim_{k + 1}"] = simulate_response(resp, resp.mu(eta), self.dispersion, rng)
        return pd.DataFrame(sims, index=index)

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
        return self.resid_response / self.model.response.mu_eta(self._fit["modes"].eta)

    def resid(self, type="deviance", scaled=False):
        """Residuals of one type (lme4's ``residuals``; default deviance).

        Parameters
        ----------
        type : {"deviance", "pearson", "working", "response"}
        scaled : bool
            Divide by σ = √φ.
        """
        values = {"deviance": "resid_deviance", "pearson": "resid_pearson",
                  "working": "resid_working", "response": "resid_response"}
        if type not in values:
            raise ValueError(f"type must be one of {sorted(values)}")
        out = np.asarray(getattr(self, values[type]))
        return out / self.sigma if scaled else out

    def hat_matrix_diag(self):
        """Leverages: the diagonal of the penalized weighted least squares hat
        matrix at the optimum (lme4's ``hatvalues``; for GLMMs only indicative)."""
        model = self.model
        re = model.random_effects
        theta = self.theta.to_numpy()
        modes = self._fit["modes"]
        scaled = re.scaled_covariates(theta)
        w = model.response.working_weights(modes.eta, modes.mu, 1.0 if model.is_lmm
                                           else self.dispersion)
        n, q = len(w), re.n_re
        if n * (q + model.k_fe) > 5e7:
            raise ValueError("the hat matrix diagonal needs an n x (q + p) dense solve; "
                             "this model is too large")
        factor = model.system.factor(scaled, w, model.exog)
        A = np.column_stack([re.sparse_z().toarray() @ re.relative_factor(theta).toarray(),
                             model.exog]) * np.sqrt(w)[:, None]
        V = sla.solve_triangular(factor.to_dense(), A.T, lower=True)
        return np.sum(V * V, axis=0)

    # -- refitting -------------------------------------------------------------------------
    def refit(self, new_endog, **fit_kwargs):
        """Refit the same model to a new response (lme4's ``refit``).

        Reuses the random-effects structure, design and family, and starts from
        the current estimates in a single optimizer stage.

        Parameters
        ----------
        new_endog : array_like
            Same representation as :meth:`simulate` returns (proportions for a
            binomial with trials), or a two-column [successes, failures] array.
        **fit_kwargs
            Passed to :meth:`GLMM.fit` (defaults: the original ``nAGQ``, no
            nAGQ=0 stage, starting at the current θ, β, φ).
        """
        import copy

        from .response import Response

        model = copy.copy(self.model)
        resp = self.model.response
        y = np.asarray(new_endog, dtype=float)
        if y.shape[0] != resp.nobs:
            raise ValueError(f"new_endog has {y.shape[0]} rows, the model {resp.nobs}")
        weights = resp.weights if y.ndim == 1 else resp.prior_weights
        model.response = Response(model.family, y, weights, resp.offset, model.endog_label)
        model.endog = y
        model._glm_start_cache = None
        start = {"theta": self.theta.to_numpy(), "beta": self._beta}
        if model.has_dispersion and self.dispersion > 0:
            start["phi"] = self.dispersion
        kwargs = {"nAGQ": self.nAGQ, "start": start, "nAGQ0_init": False,
                  "information": self._fit.get("information", "observed")}
        if model.is_lmm:
            kwargs = {"reml": self.reml, "start": {"theta": start["theta"]}}
        kwargs.update(fit_kwargs)
        return model.fit(**kwargs)

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
        from .model import glmer
        from .r_formula import update_formula

        model = self.model
        if not hasattr(model, "formula_full"):
            raise ValueError("update needs a model created from a formula")
        new_formula = model.formula_full
        if formula is not None:
            new_formula = update_formula(model.formula_full, formula) if "." in formula \
                else formula
        source = getattr(model, "source", None)
        if source is None and "data" not in kwargs:
            raise ValueError("update needs the data the model was fitted to, which were "
                             "removed (remove_data): pass data=")
        args = {"family": model.family, "nAGQ": self.nAGQ, **(source or {})}
        if "data" in kwargs and "subset" not in kwargs:
            args["subset"] = None  # a new data set: the old row selection does not apply
        if model.is_lmm:
            args["reml"] = self.reml
        args.update(kwargs)
        data = args.pop("data")
        return glmer(new_formula, data, **args)

    def get_me(self, name):
        """Components of the fit by lme4's ``getME`` names.

        ``X``, ``Z`` (sparse), ``Lambda`` (sparse), ``Lambdat``, ``u``, ``b``,
        ``L`` (dense factor of Λ'Z'WZΛ + I), ``theta``, ``beta``, ``lower``,
        ``mu``, ``eta``, ``y``, ``offset``, ``weights``, ``flist``, ``cnms``,
        ``n``, ``p``, ``q``.
        """
        model = self.model
        re = model.random_effects
        theta = self.theta.to_numpy()
        getters = {
            "X": lambda: model.exog,
            "Z": re.sparse_z,
            "Lambda": lambda: re.relative_factor(theta),
            "Lambdat": lambda: re.relative_factor(theta).T.tocsr(),
            "u": lambda: self.u,
            "b": lambda: re.relative_factor(theta) @ self.u,
            "L": lambda: self._fit["modes"].factor.leading(len(re.terms)).to_dense(),
            "theta": lambda: self.theta,
            "beta": lambda: pd.Series(self._beta, index=model.fe_names),
            "lower": re.theta_lower,
            "mu": lambda: self._fit["modes"].mu,
            "eta": lambda: self._fit["modes"].eta,
            "y": lambda: model.response.y,
            "offset": lambda: model.offset,
            "weights": lambda: model.response.prior_weights,
            "flist": lambda: {t.group_name: pd.Categorical.from_codes(t.refs, t.levels)
                              for t in re.terms},
            "cnms": lambda: {t.group_name: t.cnames for t in re.terms},
            "n": lambda: int(self.nobs),
            "p": lambda: model.k_fe,
            "q": lambda: re.n_re,
        }
        if name not in getters:
            raise ValueError(f"unknown component {name!r}; one of {sorted(getters)}")
        return getters[name]()

    # -- inference ---------------------------------------------------------------------------
    def anova(self, *others, names=None, boundary=False):
        """Likelihood-ratio table of this and other fits (see :func:`inference.anova`)."""
        from .inference import anova

        return anova(self, *others, names=names, boundary=boundary)

    def drop1(self, test="Chisq", **fit_kwargs):
        """Refit without each droppable fixed term (see :func:`inference.drop1`)."""
        from .inference import drop1

        return drop1(self, test=test, **fit_kwargs)

    def profile(self, which=None, alphamax=0.01, maxpts=40):
        """Likelihood profiles of the sd/corr parameters and β (see
        :func:`inference.profile`)."""
        from .inference import profile

        return profile(self, which=which, alphamax=alphamax, maxpts=maxpts)

    def confint(self, method="Wald", level=0.95, **kwargs):
        """Intervals for sd/corr and β: ``"Wald"``, ``"profile"`` or ``"boot"``
        (see :func:`inference.confint`)."""
        from .inference import confint

        return confint(self, method=method, level=level, **kwargs)

    def bootstrap(self, nsim=100, func=None, seed=None, n_jobs=1, progress=False):
        """Parametric bootstrap (see :func:`inference.bootstrap`)."""
        from .inference import bootstrap

        return bootstrap(self, nsim=nsim, func=func, seed=seed, n_jobs=n_jobs,
                         progress=progress)

    def is_singular(self, tol=1e-4):
        """True if a diagonal element of a relative covariance factor is below ``tol``
        (lme4's ``isSingular``), θ taken in the units of the covariates (a random
        slope on ``x * 1e6`` is not singular because its θ is ~1e-6)."""
        re = self.model.random_effects
        theta = self.theta.to_numpy() * re.theta_scale()
        return bool(np.any(theta[re.theta_lower() == 0] < tol))

    def ngroups(self):
        """Number of levels of each grouping factor."""
        out = {}
        for term in self.model.random_effects.terms:
            out.setdefault(term.group_name, term.n_levels)
        return out

    # -- summary ---------------------------------------------------------------------
    def _method_line(self):
        if self.model.is_lmm:
            crit = "REML" if self.reml else "maximum likelihood"
            return f"Linear mixed model fit by {crit}"
        if self.nAGQ == 1:
            approx = "Laplace Approximation"
        elif self.nAGQ == 0:
            approx = "nAGQ = 0: fixed effects by PIRLS, Laplace Approximation"
        else:
            approx = f"Adaptive Gauss-Hermite Quadrature, nAGQ = {self.nAGQ}"
        return f"Generalized linear mixed model fit by maximum likelihood ({approx})"

    def _random_effects_table(self):
        vc = self.varcorr()
        rows = []
        show_corr = vc["var2"].notna().any()
        for grp, sub in vc.groupby("grp", sort=False):
            variances = sub[sub["var2"].isna()]
            corr = sub[sub["var2"].notna()]
            for k, (_, row) in enumerate(variances.iterrows()):
                name = "" if row["var1"] is None else row["var1"]
                cells = [grp if k == 0 else "", name, f"{row['vcov']:.4g}", f"{row['sdcor']:.4g}"]
                if show_corr:
                    cors = [f"{c:.2f}" for c in corr.loc[corr["var2"] == name, "sdcor"]]
                    cells.append(" ".join(cors))
                rows.append(cells)
        header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if show_corr else [])
        return SimpleTable(rows, header, title="Random effects")

    def summary(self, alpha=0.05, title=None):
        """A statsmodels ``Summary`` laid out like lme4's ``summary(glmer)``."""
        model = self.model
        resp = model.response
        smry = Summary()
        fam = "gaussian" if model.is_lmm else family_name(model.family)
        formula = getattr(model, "formula_full", None) or "(array input)"
        groups = ", ".join(f"{g}, {n}" for g, n in self.ngroups().items())
        header = [["Family:", f"{fam} ({link_name(model.family.link)})"],
                  ["Formula:", formula],
                  ["No. Observations:", f"{int(self.nobs)}"],
                  ["Groups:", groups],
                  ["Optimizer:", f"BOBYQA, {self.optimizer.nfev} evaluations, "
                                 f"{'converged' if self.converged else 'NOT converged'}"]]
        smry.tables.append(SimpleTable(header, title=title or self._method_line(),
                                       txt_fmt={"data_aligns": "l", "colsep": " "}))
        crit = "REML crit." if self.reml else "-2logLik"
        stat_header = ["AIC", "BIC", "logLik", crit, "df.resid"]
        stat_row = [f"{self.aic:.1f}", f"{self.bic:.1f}", f"{self.llf:.1f}",
                    f"{self.neg2llf:.1f}", f"{int(self.df_resid)}"]
        smry.tables.append(SimpleTable([stat_row], stat_header, title="Fit statistics"))
        scaled = self.resid_pearson / self.sigma
        quant = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1.0])
        smry.tables.append(SimpleTable([[f"{v:.4f}" for v in quant]],
                                       ["Min", "1Q", "Median", "3Q", "Max"],
                                       title="Scaled residuals"))
        smry.tables.append(self._random_effects_table())
        smry.add_table_params(self, yname=model.endog_label, xname=list(model.exog_names),
                              alpha=alpha, use_t=False)
        smry.tables[-1].title = "Fixed effects"
        extra = [f"Fixed-effects covariance: {self.cov_type}."]
        if self._fit.get("hessian_skipped"):
            extra.append("The finite-difference Hessian was skipped for this large model "
                         "(fit(calc_hessian=True) computes it).")
        if resp.name == "negative.binomial":
            se = "" if self.nb_theta_se is None else f" (SE {self.nb_theta_se:.4g})"
            how = "ML" if model.has_dispersion else "fixed"
            if np.isinf(self.nb_theta):
                se = " (boundary: no overdispersion, the Poisson limit; no SE)"
            extra.append(f"Negative binomial shape theta = 1/alpha ({how}): "
                         f"{self.nb_theta:.4g}{se}.")
        elif resp.name != "binomial" and resp.name != "poisson" and not model.is_lmm:
            extra.append(f"Dispersion parameter (ML): {self.dispersion:.4g}.")
        if model.dropped_columns:
            extra.append("Dropped for collinearity (NaN above): "
                         + ", ".join(model.dropped_columns) + ".")
        p = len(self._beta)
        if 1 < p <= 12:
            cov = self._vcov
            sd = np.sqrt(np.diag(cov))
            corr = cov / np.outer(sd, sd)
            names = [str(n)[:10] for n in model.fe_names]
            lines = ["Correlation of Fixed Effects:", " " * 12 + " ".join(
                f"{n:>10}" for n in names[:-1])]
            for i in range(1, p):
                lines.append(f"{names[i]:<12}" + " ".join(
                    f"{corr[i, j]:>10.3f}" for j in range(i)))
            extra.extend(lines)
        if self.is_singular():
            extra.append("boundary (singular) fit: a variance component is estimated as 0.")
        if not self.converged:
            extra.append(f"The optimizer did not converge: {self.optimizer.message}.")
        smry.add_extra_txt(extra)
        return smry

    # statsmodels hooks ----------------------------------------------------------------
    def wald_test(self, r_matrix, cov_p=None, invcov=None, use_f=None, df_constraints=None,
                  scalar=None):
        """statsmodels' Wald test of linear hypotheses on the fixed effects.

        Columns dropped for collinearity (NaN in ``params``) are not estimable:
        constraint rows that involve only them are left out (``wald_test_terms``
        then tests what remains of a term, or reports NaN for a term that was
        dropped whole); a row that mixes them with estimated columns is an error.
        """
        model = self.model
        if not model.dropped_columns or cov_p is not None or invcov is not None:
            return super().wald_test(r_matrix, cov_p=cov_p, invcov=invcov, use_f=use_f,
                                     df_constraints=df_constraints, scalar=scalar)
        from patsy import DesignInfo
        from statsmodels.stats.contrast import ContrastResults

        names = list(model.exog_names)
        if isinstance(r_matrix, str):
            constraint = DesignInfo(names).linear_constraint(r_matrix)
            R, q = constraint.coefs, constraint.constants.ravel()
        elif isinstance(r_matrix, tuple):
            R, q = np.atleast_2d(np.asarray(r_matrix[0], float)), np.asarray(r_matrix[1], float)
        else:
            R = np.atleast_2d(np.asarray(r_matrix, dtype=float))
            q = np.zeros(R.shape[0])
        q = np.broadcast_to(np.ravel(q), (R.shape[0],))
        dropped = np.ones(len(names), dtype=bool)
        dropped[model.kept_columns] = False
        on_dropped = np.any(R[:, dropped] != 0, axis=1)
        on_kept = np.any(R[:, ~dropped] != 0, axis=1)
        mixed = on_dropped & on_kept
        if mixed.any():
            bad = [n for n, d in zip(names, dropped) if d and np.any(R[mixed][:, names.index(n)])]
            raise ValueError(f"the hypothesis involves {', '.join(bad)}, dropped from the "
                             "model for collinearity (not estimable)")
        rows = on_kept
        if not rows.any():
            nan = np.nan
            return ContrastResults(chi2=nan, df_denom=0, statistic=nan, distribution="chi2",
                                   distargs=(0,))
        Rk, diff = R[rows][:, ~dropped], R[rows][:, ~dropped] @ self._beta - q[rows]
        cov = Rk @ self._vcov @ Rk.T
        stat = float(diff @ np.linalg.pinv(cov) @ diff)
        J = df_constraints or int(np.linalg.matrix_rank(cov))
        if use_f or (use_f is None and self.use_t):
            return ContrastResults(F=stat / J, df_denom=self.df_resid, df_num=J)
        return ContrastResults(chi2=stat, df_denom=J, statistic=stat, distribution="chi2",
                               distargs=(J,))

    @cache_readonly
    def pvalues(self):
        return 2 * stats.norm.sf(np.abs(self.tvalues))


def _block_stack(a, b):
    """Combine per-level covariance blocks of two terms of one grouping factor."""
    sa, sb = a.shape[1], b.shape[1]
    out = np.zeros((a.shape[0], sa + sb, sa + sb))
    out[:, :sa, :sa] = a
    out[:, sa:, sa:] = b
    return out


class GLMMResultsWrapper(base.LikelihoodResultsWrapper):
    _attrs = {"fittedvalues": "rows", "resid_pearson": "rows", "resid_deviance": "rows",
              "resid_response": "rows", "resid_working": "rows"}
    # ``resid`` is a method here (lme4's residuals(type=...)), not an array
    _wrap_attrs = {k: v for k, v in wrap.union_dicts(
        base.LikelihoodResultsWrapper._wrap_attrs, _attrs).items() if k != "resid"}
    _methods = {}
    _wrap_methods = wrap.union_dicts(base.LikelihoodResultsWrapper._wrap_methods, _methods)


wrap.populate_wrapper(GLMMResultsWrapper, GLMMResults)
