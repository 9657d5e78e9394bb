"""Results of a GLMM fit: statsmodels inference on β plus lme4's accessors."""

import numpy as np
import pandas as pd
from scipy import stats
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
        super().__init__(model, fit["beta"], normalized_cov_params=fit["vcov"], scale=1.0)
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
        return float(self.model.response.unit_deviance(self.fittedvalues_array).sum())

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
        return (resp.y - mu) * np.sqrt(resp.weights / resp.variance(mu))

    @cache_readonly
    def sigma(self):
        """lme4's ``sigma()``: √φ (1 for binomial and Poisson)."""
        return float(np.sqrt(self.dispersion))

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
        if self.model.is_lmm or self.model.has_dispersion:
            rows.append(("Residual", None, None, self.dispersion, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    def ranef(self):
        """Conditional modes of the random effects, b = Λ û.

        Returns
        -------
        dict
            {grouping factor name: DataFrame indexed by level, one column per
            random effect}; terms sharing a grouping factor are combined, as in
            lme4.
        """
        re = self.model.random_effects
        out = {}
        for term, b in zip(re.terms, re.conditional_modes(self.theta.to_numpy(), self.u)):
            frame = pd.DataFrame(b, index=term.levels, columns=term.cnames)
            frame.index.name = term.group_name
            if term.group_name in out:
                out[term.group_name] = out[term.group_name].join(frame, rsuffix="'")
            else:
                out[term.group_name] = frame
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

    def is_singular(self, tol=1e-4):
        """True if a diagonal element of a relative covariance factor is below ``tol``."""
        lower = self.model.random_effects.theta_lower()
        return bool(np.any(self.theta.to_numpy()[lower == 0] < tol))

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
        if resp.name != "binomial" and resp.name != "poisson" and not model.is_lmm:
            extra.append(f"Dispersion parameter (ML): {self.dispersion:.4g}.")
        p = len(self.params)
        if 1 < p <= 12:
            cov = self.cov_params()
            cov = np.asarray(cov)
            sd = np.sqrt(np.diag(cov))
            corr = cov / np.outer(sd, sd)
            names = [str(n)[:10] for n in model.exog_names]
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
    @cache_readonly
    def pvalues(self):
        return 2 * stats.norm.sf(np.abs(self.tvalues))


class GLMMResultsWrapper(base.LikelihoodResultsWrapper):
    _attrs = {"fittedvalues": "rows", "resid_pearson": "rows"}
    _wrap_attrs = wrap.union_dicts(base.LikelihoodResultsWrapper._wrap_attrs, _attrs)
    _methods = {}
    _wrap_methods = wrap.union_dicts(base.LikelihoodResultsWrapper._wrap_methods, _methods)


wrap.populate_wrapper(GLMMResultsWrapper, GLMMResults)
