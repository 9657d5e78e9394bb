"""What a statsmodels user expects of a results object and a model's arguments.

Results (through :class:`StatsmodelsCompatMixin`): ``summary2()`` in the style of
statsmodels' ``Summary2`` (a model-information block, the fixed-effects table
and a random-effects table), ``default_model_infos`` so that
``statsmodels.iolib.summary2.summary_col([...])`` shows the number of
observations, groups, log-likelihood, AIC and the random-effect standard
deviations under the coefficients, ``compare_lr_test``, ``llnull`` and
``aicc``.

Model arguments (:func:`statsmodels_arguments`): statsmodels GLM's ``exposure``
(log exposure added to the offset, log link only), ``var_weights`` (our
``weights``: precision weights, or the trials of a binomial proportion, which is
what statsmodels' binomial ``var_weights`` mean) and a clear refusal of
``freq_weights``.
"""

import datetime
import re
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats
import statsmodels.api as sm
from statsmodels.iolib import summary2
from statsmodels.tools._decorators import cache_readonly
from statsmodels.tools.eval_measures import aicc as _aicc

from .families import family_name, link_name
from .inference import anova

__all__ = ["StatsmodelsCompatMixin", "statsmodels_arguments", "model_arguments",
           "null_loglikelihood"]

_MODEL_KEYS = ("exposure", "var_weights", "freq_weights")
_NAME = re.compile(r"[A-Za-z_.][\w.]*")


# -- model arguments -----------------------------------------------------------------------
def model_arguments(fit_kwargs):
    """Pop the model's statsmodels arguments (``exposure``, ``var_weights``,
    ``freq_weights``) from the keyword arguments of :func:`glmer`."""
    return {key: fit_kwargs.pop(key) for key in _MODEL_KEYS if key in fit_kwargs}


def _log_exposure(exposure):
    values = np.asarray(exposure, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"exposure must be one value per observation, got shape "
                         f"{values.shape}")
    bad = ~np.isnan(values) & ~(values > 0)
    if bad.any():
        raise ValueError(f"exposure must be positive; {int(bad.sum())} value(s) are not "
                         f"(positions {np.flatnonzero(bad)[:5].tolist()})")
    return np.log(values)


def _exposure_offset(exposure, offset, formula, data):
    """(formula, offset) with log(exposure) added: an ``offset(log(...))`` term
    for a column name or an R expression (so that ``predict(newdata)`` evaluates
    it on the new rows), else added to the offset array."""
    if isinstance(exposure, str):
        if formula is None:
            raise ValueError("exposure as a column name needs a formula model; pass an "
                             "array of exposures")
        expr = exposure
        if data is not None and exposure in data.columns and not _NAME.fullmatch(exposure):
            expr = f"`{exposure}`"
        return f"{formula} + offset(log({expr}))", offset
    log_exposure = _log_exposure(exposure)
    if offset is None:
        return formula, log_exposure
    if isinstance(offset, str):
        raise ValueError("exposure as an array cannot be added to offset given as a column "
                         "name or expression: give both as arrays, or exposure as a column")
    offset = np.asarray(offset, dtype=float)
    if offset.shape != log_exposure.shape:
        raise ValueError(f"exposure has {log_exposure.size} values, offset {offset.size}")
    return formula, offset + log_exposure


def statsmodels_arguments(kwargs, family, offset, weights, formula=None, data=None):
    """statsmodels GLM's ``exposure``, ``var_weights`` and ``freq_weights``,
    popped from a model's keyword arguments.

    Parameters
    ----------
    kwargs : dict
        The model's extra keyword arguments (modified).
    family : statsmodels family
    offset, weights
        The model's ``offset`` and ``weights`` arguments.
    formula : str, optional
        The model's formula (formula input).
    data : pandas.DataFrame, optional

    Returns
    -------
    formula, offset, weights
        ``exposure`` as log exposure added to the offset (a formula term
        ``offset(log(<exposure>))`` when given as a column name or expression);
        ``var_weights`` as ``weights``.

    Raises
    ------
    ValueError
        ``freq_weights`` (not implemented: a frequency weight replicates a row,
        which the model's ``weights`` do not); ``exposure`` with a link other
        than log (as statsmodels GLM); ``var_weights`` and ``weights`` both.
    """
    if kwargs.get("freq_weights") is not None:
        raise ValueError(
            "freq_weights is not supported: statsmodels' frequency weights replicate rows, "
            "which the GLMM's weights do not do; replicate the rows instead "
            "(data.loc[data.index.repeat(f)]), or pass weights= (statsmodels' var_weights) "
            "for precision weights or binomial trials")
    kwargs.pop("freq_weights", None)
    var_weights = kwargs.pop("var_weights", None)
    if var_weights is not None:
        if weights is not None:
            raise ValueError("give weights or var_weights (the same: precision weights, or "
                             "the trials of a binomial proportion), not both")
        weights = var_weights
    exposure = kwargs.pop("exposure", None)
    if exposure is not None:
        if not isinstance(family.link, sm.families.links.Log):
            raise ValueError(f"exposure needs the log link (log exposure is added to the "
                             f"offset); the family's link is {link_name(family.link)}: "
                             "pass offset= instead")
        formula, offset = _exposure_offset(exposure, offset, formula, data)
    return formula, offset, weights


# -- the intercept-only GLM ----------------------------------------------------------------
def null_loglikelihood(model):
    """Log-likelihood of the intercept-only GLM with the model's offset and weights.

    The intercept and the family's dispersion parameters (if any) are at their
    maximum-likelihood values under the same kernel as the GLMM, so ``llnull``
    and ``llf`` are on one scale (statsmodels GLM's ``llnull`` uses the Pearson
    estimate of the scale for Gamma and the like).
    """
    resp, kernel = model.response, model.kernel
    offset = model.offset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            glm = sm.GLM(resp.y, np.ones(resp.nobs), family=model.family, offset=offset,
                         var_weights=resp.weights).fit()
            beta0 = float(np.asarray(glm.params)[0])
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            beta0 = float(np.average(kernel.start_eta(), weights=resp.weights))
    disp0 = kernel.pack_dispersion(model.glm_start()[1]) if kernel.n_dispersion else []
    x0 = np.concatenate([[beta0], disp0])

    def neg2ll(x):
        disp = kernel.unpack_dispersion(x[1:]) if kernel.n_dispersion else \
            kernel.default_dispersion()
        with np.errstate(all="ignore"):
            value = float(np.sum(resp.neg2loglik_obs(resp.mu(offset + x[0]), disp)))
        return value if np.isfinite(value) else np.inf

    best = optimize.minimize(neg2ll, x0, method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    return -0.5 * float(min(best.fun, neg2ll(x0)))


# -- summaries -----------------------------------------------------------------------------
def _method(res):
    if res.model.is_lmm:
        return "REML" if res.reml else "ML"
    return {0: "nAGQ = 0", 1: "Laplace"}.get(res.nAGQ, f"AGQ (nAGQ = {res.nAGQ})")


def _groups_text(res):
    return ", ".join(f"{g} ({n})" for g, n in res.ngroups().items())


def _random_effects_frame(res):
    """lme4's VarCorr as a table: variances and SDs, then covariances and
    correlations."""
    vc = res.varcorr()
    names = [("" if v1 is None else str(v1)) + ("" if v2 is None else f" : {v2}")
             for v1, v2 in zip(vc["var1"], vc["var2"])]
    return pd.DataFrame({"Group": vc["grp"].to_numpy(), "Name": names,
                         "Var./Cov.": vc["vcov"].to_numpy(), "SD/Corr.": vc["sdcor"].to_numpy()})


def _info(res):
    model = res.model
    family = "gaussian" if model.is_lmm else family_name(model.family)
    return {
        "Model:": type(model).__name__, "Method:": _method(res),
        "Family:": family, "Link:": link_name(model.family.link),
        "Dependent Variable:": str(model.endog_label),
        "Date:": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "No. Observations:": f"{int(res.nobs)}", "Groups:": _groups_text(res),
        "Df Model:": f"{int(res.df_model)}", "Df Residuals:": f"{int(res.df_resid)}",
        "Converged:": "Yes" if res.converged else "No",
        "No. Evaluations:": f"{res.optimizer.nfev}", "Cov. Type:": res.cov_type,
        "Scale:": f"{res.dispersion:#.5g}", "Log-Likelihood:": f"{res.llf:#.5g}",
        "LL-Null:": f"{res.llnull:#.5g}", "AIC:": f"{res.aic:.4f}", "BIC:": f"{res.bic:.4f}",
        "AICc:": f"{res.aicc:.4f}", "Deviance:": f"{res.deviance:#.5g}",
    }


class StatsmodelsCompatMixin:
    """statsmodels' results conveniences for :class:`GLMMResults`."""

    @cache_readonly
    def llnull(self):
        """Log-likelihood of the intercept-only GLM (no random effects) with the
        same offset (and exposure) and weights, as statsmodels GLM's ``llnull``;
        dispersion parameters at their maximum-likelihood values (see
        :func:`null_loglikelihood`). For a REML fit it is still the ML value."""
        return null_loglikelihood(self.model)

    @cache_readonly
    def aicc(self):
        """AIC with the small-sample correction, AIC + 2k(k+1)/(n − k − 1), with k
        every estimated parameter (β, θ, dispersion) and n = ``nobs``."""
        return float(_aicc(self.llf, self.nobs, self.df_modelwc))

    def compare_lr_test(self, restricted, large_sample=False):
        """Likelihood-ratio test against a nested, restricted fit.

        Parameters
        ----------
        restricted : GLMMResults or statsmodels GLM results
            A fit of a sub-model (fewer parameters) to the same observations;
            a GLM without random effects tests them all at once.
        large_sample : bool
            Accepted for statsmodels' signature; the test is always the
            asymptotic χ² test.

        Returns
        -------
        lr_stat : float
            2 (llf − restricted.llf).
        p_value : float
            From χ² with ``df_diff`` degrees of freedom. When the restriction
            sets a variance to 0 (on the boundary) this p-value is conservative;
            ``anova(..., boundary=True)`` uses the χ² mixture.
        df_diff : float
            The difference in the number of parameters.
        """
        del large_sample
        if self.reml or getattr(restricted, "reml", False):
            same = getattr(restricted, "reml", False) and self.reml and list(
                restricted.model.fe_names) == list(self.model.fe_names)
            if not same:
                raise ValueError("restricted: REML likelihoods are comparable only between "
                                 "REML fits with the same fixed effects; refit both with "
                                 "reml=False")
        table = anova(self, restricted, names=["full", "restricted"])
        npar = table["npar"]
        df_diff = float(npar["full"] - npar["restricted"])
        if df_diff <= 0:
            raise ValueError(f"restricted must have fewer parameters than this fit "
                             f"({int(npar['restricted'])} vs {int(npar['full'])})")
        lr = 2.0 * (float(self.llf) - float(restricted.llf))
        return lr, float(stats.chi2.sf(lr, df_diff)), df_diff

    @property
    def default_model_infos(self):
        """Rows that ``summary_col`` shows under the coefficients: observations,
        groups, log-likelihood, AIC, covariance type and the random-effect
        standard deviations."""
        info = {"No. Observations": lambda r: f"{int(r.nobs)}",
                "Groups": lambda r: _groups_text(r),
                "Log-Likelihood": lambda r: f"{r.llf:.2f}",
                "AIC": lambda r: f"{r.aic:.2f}",
                "Cov. Type": lambda r: r.cov_type}
        vc = self.varcorr()
        for i, row in vc[vc["var2"].isna()].iterrows():
            name = row["grp"] if row["var1"] is None else f"{row['grp']} {row['var1']}"
            info[f"SD {name}"] = lambda r, i=i: f"{r.varcorr()['sdcor'][i]:.4f}"
        return info

    def summary2(self, alpha=0.05, float_format="%.4f", title=None):
        """statsmodels' ``Summary2``: model information, the fixed effects
        (z, or t with ``use_t``) and the random effects (lme4's VarCorr).

        Parameters
        ----------
        alpha : float
            Level of the confidence intervals.
        float_format : str
        title : str, optional

        Returns
        -------
        statsmodels.iolib.summary2.Summary
        """
        smry = summary2.Summary()
        smry.add_title(title or f"Results: generalized linear mixed model ({_method(self)})")
        smry.add_dict(_info(self))
        params = summary2.summary_params(self, alpha=alpha, use_t=self.use_t)
        smry.add_df(params, float_format=float_format)
        smry.add_df(_random_effects_frame(self), index=False, float_format=float_format)
        if self.cov_type == "cluster":
            smry.add_text(f"Fixed-effects covariance: {self.cov_kwds['description']}.")
        if self.use_t:
            df = getattr(self, "df_resid_inference", self.df_resid)
            smry.add_text(f"t statistics with {df:g} degrees of freedom (lme4 reports z).")
        return smry
