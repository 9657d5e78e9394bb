"""Prediction and simulation from a fitted GLMM.

``re_form`` follows lme4: ``None`` uses every random-effects term, ``"~0"`` or
``"NA"`` none (population level), and a formula such as ``"~(1 | herd)"`` the
terms it lists. New levels of a grouping factor get the population value (b = 0)
when ``allow_new_levels=True`` and raise an error naming the level otherwise.
"""

import numpy as np
import pandas as pd
from patsy import EvalEnvironment, PatsyError, dmatrix
from scipy import stats

from .formula_parser import parse_formula
from .frame import prepare_newdata, referenced_columns
from .r_formula import R_NAMESPACE
from .ranef import re_scale

__all__ = ["select_terms", "fixed_design", "newdata_level_codes", "linear_predictor", "simulate",
           "PredictionResults"]



def select_terms(random_effects, re_form):
    """Which random-effects terms ``re_form`` keeps (list of bool)."""
    if re_form is None:
        return [True] * len(random_effects.terms)
    text = str(re_form).strip()
    if text in ("~0", "~ 0", "NA", "0", "~-1"):
        return [False] * len(random_effects.terms)
    rhs = text.lstrip("~").strip()
    bars = parse_formula(f"y ~ 0 + {rhs}").bars
    if not bars:
        raise ValueError(f"re_form {re_form!r} has no random-effects term like (1 | g)")
    groups = {b.group_name for b in bars}
    unknown = groups - {t.group_name for t in random_effects.terms}
    if unknown:
        raise ValueError(f"re_form names grouping factors not in the model: {sorted(unknown)}")
    # terms are selected by grouping factor, all of their covariates included
    return [term.group_name in groups for term in random_effects.terms]


def _offset_for(model, frame, offset):
    total = np.zeros(len(frame))
    if offset is not None:
        total += np.asarray(offset, dtype=float)
    env = EvalEnvironment([R_NAMESPACE])
    for expr in model.offset_exprs:
        try:
            mat = dmatrix(f"0 + r_I({expr})", frame, eval_env=env, NA_action="drop",
                          return_type="dataframe")
        except PatsyError as exc:
            raise ValueError(f"cannot evaluate the offset {expr!r} on newdata: "
                             f"{str(exc).splitlines()[0]}") from None
        total += mat.reindex(frame.index).to_numpy(dtype=float).ravel()
    return total


def fixed_design(results, newdata, offset=None):
    """Fixed-effects design (kept columns) and total offset for new data.

    Rows with a missing covariate come back as NaN (statsmodels reindexes them).
    """
    model = results.model
    if model.formula_full is None:
        raise ValueError("newdata needs a model created from a formula (glmer/from_formula)")
    rhs = str(model.formula).split("~", 1)[-1]
    needed = referenced_columns(rhs, model.data.frame.columns)
    absent = [name for name in needed if name not in newdata.columns]
    if absent:
        raise ValueError(f"newdata lacks the column(s) {absent} of the fixed effects")
    try:
        X = results.fixed_exog(newdata)
    except PatsyError as exc:
        # statsmodels re-raises the formula engine's error with a generic text: show
        # the original (e.g. a factor level that was not in the fitted data)
        cause = exc.__cause__ or exc.__context__ or exc
        raise ValueError(f"cannot build the fixed-effects design for newdata: "
                         f"{str(cause).splitlines()[0]}") from None
    if offset is not None and np.shape(offset) != (len(newdata),):
        raise ValueError(f"offset has length {np.size(offset)}, expected {len(newdata)}")
    return X[:, model.kept_columns], _offset_for(model, newdata, offset)


def newdata_level_codes(term, newdata, allow_new_levels,
                        remedy="predict them at the population level (random effect 0)"):
    """Codes of the levels of ``term`` at the rows of ``newdata`` (−1 for a new level
    or a missing value), their labels and the missing mask; an error naming the new
    levels unless ``allow_new_levels`` (``remedy`` says what that option does)."""
    codes, labels, missing = term.level_codes_for(newdata)
    new = (codes < 0) & ~missing
    if new.any() and not allow_new_levels:
        examples = ", ".join(repr(v) for v in pd.unique(labels[new])[:5])
        raise ValueError(
            f"newdata has levels of {term.group_name!r} that are not in the fit: "
            f"{examples}; pass allow_new_levels=True to {remedy}")
    return codes, labels, missing


def linear_predictor(results, newdata=None, re_form=None, allow_new_levels=False,
                     offset=None):
    """η = X β + offset + Z b for the fitted or new data.

    Returns
    -------
    eta : ndarray
        NaN for rows with a missing covariate or grouping value.
    index : pandas.Index or None
    """
    model = results.model
    re = model.random_effects
    keep = select_terms(re, re_form)
    theta = results.theta.to_numpy()
    b_terms = re.conditional_modes(theta, results.u)
    if newdata is None:
        eta = model.exog @ results.fe_params + model.offset
        for term, b, use in zip(re.terms, b_terms, keep):
            if use:
                eta = eta + np.einsum("ij,ij->i", term.z, b[term.refs])
        return eta, model.row_labels
    newdata = prepare_newdata(newdata)
    X, offs = fixed_design(results, newdata, offset)
    eta = X @ results.fe_params + offs
    for term, b, use in zip(re.terms, b_terms, keep):
        if not use:
            continue
        z = term.covariates_for(newdata)
        codes, _, missing = newdata_level_codes(term, newdata, allow_new_levels)
        contrib = np.einsum("ij,ij->i", z, b[np.where(codes >= 0, codes, 0)])
        contrib[codes < 0] = 0.0
        if not allow_new_levels:  # a missing grouping value: like a new level (lme4)
            contrib[missing] = np.nan
        eta = eta + contrib
    return eta, newdata.index


class PredictionResults:
    """Population-level predictions with delta-method standard errors.

    Attributes
    ----------
    linpred, se_linpred : ndarray
        Linear predictor X β + offset and its standard error from the
        covariance of β̂ (θ held fixed).
    mean, se_mean : ndarray
        g⁻¹(η) and |dμ/dη| times the standard error of η.
    which : {"mean", "linear"}
        Which of the two ``predicted`` and ``se`` return.
    """

    def __init__(self, linpred, se_linpred, inverse_link, mu_eta, which="mean", index=None):
        self.linpred, self.se_linpred = linpred, se_linpred
        self._inverse = inverse_link
        self.mean = inverse_link(linpred)
        self.se_mean = np.abs(mu_eta(linpred)) * se_linpred
        self.which = which
        self.index = index

    @property
    def predicted(self):
        return self.mean if self.which == "mean" else self.linpred

    @property
    def se(self):
        return self.se_mean if self.which == "mean" else self.se_linpred

    def conf_int(self, alpha=0.05):
        """Wald interval on the linear-predictor scale, mapped through the link."""
        q = stats.norm.ppf(1 - alpha / 2)
        lo, hi = self.linpred - q * self.se_linpred, self.linpred + q * self.se_linpred
        if self.which == "mean":
            lo, hi = self._inverse(lo), self._inverse(hi)
            lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        return np.column_stack([lo, hi])

    def summary_frame(self, alpha=0.05):
        ci = self.conf_int(alpha)
        return pd.DataFrame({"mean": self.predicted, "mean_se": self.se,
                             "mean_ci_lower": ci[:, 0], "mean_ci_upper": ci[:, 1]},
                            index=self.index)


def simulate(res, nsim=1, seed=None, use_u=False, newdata=None, re_form=None,
             allow_new_levels=False):
    """Simulated responses from a fit (see :meth:`GLMMResults.simulate`)."""
    rng = np.random.default_rng(seed)
    model = res.model
    re = model.random_effects
    resp = model.response
    if newdata is not None and not use_u:
        raise ValueError("simulating new random effects at newdata is not supported; "
                         "use use_u=True")
    sims = {}
    for k in range(nsim):
        if use_u:
            eta, index = linear_predictor(res, newdata, re_form, allow_new_levels)
        else:  # u ~ N(0, I); N(0, σ² I) for the LMM, whose Λ is relative to σ
            u = rng.standard_normal(re.n_re) * np.sqrt(re_scale(res))
            scaled = re.scaled_covariates(res.theta.to_numpy())
            eta = (model.exog @ res.fe_params + model.offset
                   + re.linear_predictor(scaled, u))
            index = model.row_labels
        sims[f"sim_{k + 1}"] = model.kernel.simulate(resp.mu(eta), res.fit_record.dispersion,
                                                     rng)
    return pd.DataFrame(sims, index=index)
