"""Case-deletion influence on the fixed effects (lme4's ``influence.merMod``).

For each observation (or each level of a grouping factor) the model is refitted
without it, from the full fit's θ, β and dispersion in a single optimizer stage
(no nAGQ=0 stage), and the fixed effects are compared with the full fit's:

- ``dfbeta``: β̂₍₋ᵢ₎ − β̂ (lme4's sign: deleted minus full);
- ``dfbetas``: dfbeta divided by the standard errors of the deleted fit;
- Cook's distance of the fixed effects, as lme4's ``cooks.distance`` of an
  ``influence.merMod`` object: Dᵢ = (n − p)/(n p) · dᵢ' V⁻¹ dᵢ with dᵢ the
  dfbeta row, V the full fit's covariance of β̂, p the number of fixed effects
  and n the number of deleted units (the classical dᵢ' V⁻¹ dᵢ / p times
  (n − p)/n).

The deleted model is the same model on the remaining rows: the design, offset
and weights are subset, each grouping factor keeps the levels that remain (a
level deleted whole disappears, as with lme4's ``update(subset = ...)``), and a
fixed-effects column left without information is dropped (NaN).
"""

import dataclasses
import warnings

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from .exceptions import BoundaryWarning
from .progress import check_n_jobs, check_progress, progress_bar, run_tasks
from .re_terms import RandomEffects

__all__ = ["InfluenceResults", "InfluenceMixin", "influence", "deleted_model"]


# -- the model without some rows ----------------------------------------------------------------
def deleted_model(model, keep):
    """The model on the rows ``keep`` (a boolean mask), and the order of its terms.

    Returns
    -------
    submodel : GLMM
    order : list of int
        ``submodel.random_effects.terms[j]`` is the subset of the model's term
        ``order[j]`` (terms are sorted by their number of levels, which deletion
        can change).
    """
    keep = np.asarray(keep, dtype=bool)
    re = model.random_effects
    terms = []
    for term in re.terms:
        used, refs = np.unique(term.refs[keep], return_inverse=True)
        terms.append(dataclasses.replace(term, refs=refs.astype(np.intp),
                                         levels=term.levels[used], z=term.z[keep]))
    sub_re = RandomEffects(terms)
    order = [next(i for i, t in enumerate(terms) if t is s) for s in sub_re.terms]
    resp = model.response
    sub = type(model)(resp.y[keep], model.exog[keep], random_effects=sub_re,
                      family=model.family, offset=resp.offset[keep],
                      weights=resp.weights[keep], estimate_alpha=model.estimate_alpha)
    return sub, order


def _theta_to_sub(re, theta, order):
    return np.concatenate([theta[re.theta_slices[i]] for i in order])


def _theta_from_sub(re, sub_re, theta_sub, order):
    out = np.empty(re.n_theta)
    for j, i in enumerate(order):
        out[re.theta_slices[i]] = theta_sub[sub_re.theta_slices[j]]
    return out


def _refit_without(res, keep, fit_kwargs):
    """Refit without the rows outside ``keep``; a dict of what influence needs."""
    model = res.model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sub, order = deleted_model(model, keep)
        kept = np.asarray(sub.kept_columns)
        theta = _theta_to_sub(model.random_effects, res.theta.to_numpy(), order)
        if model.is_lmm:
            kwargs = {"reml": res.reml, "start": {"theta": theta}}
        else:
            start = {"theta": theta, "beta": res.fe_params[kept]}
            if model.has_dispersion and res.dispersion > 0:
                start["phi"] = res.fit_record.dispersion
            kwargs = {"nAGQ": res.nAGQ, "start": start, "nAGQ0_init": False,
                      "information": res.fit_record.information}
        kwargs.update(fit_kwargs)
        fit = sub.fit(**kwargs)
    p = model.k_fe
    beta = np.full(p, np.nan)
    beta[kept] = fit.fe_params
    vcov = np.full((p, p), np.nan)
    vcov[np.ix_(kept, kept)] = fit.cov_fe
    # lme4's converged: the optimizer's code and no warning (a singular fit or a
    # parameter on its boundary is an answer, not a failure)
    warned = any(issubclass(w.category, ConvergenceWarning)
                 and not issubclass(w.category, BoundaryWarning) for w in caught)
    return {"beta": beta, "vcov": vcov, "neg2ll": fit.neg2llf, "sigma": fit.sigma,
            "theta": _theta_from_sub(model.random_effects, sub.random_effects,
                                     fit.theta.to_numpy(), order),
            "converged": bool(fit.converged) and not warned,
            "nfev": int(sum(v for k, v in fit.mle_retvals.items() if k.endswith("_nfev")))}


def _delete_unit(shared, k):
    res, codes, fit_kwargs = shared
    try:
        return _refit_without(res, codes != k, fit_kwargs)
    except Exception as exc:  # a deletion that cannot be fitted is reported, not fatal
        return f"{type(exc).__name__}: {exc}"


# -- which rows go together -----------------------------------------------------------------
def _first_appearance(values):
    """Integer codes and labels of ``values`` in order of first appearance (R's unique)."""
    codes, labels = pd.factorize(pd.Series(values), sort=False)
    if np.any(codes < 0):
        raise ValueError("groups has missing values; every observation needs a group")
    return codes, pd.Index(labels)


def deletion_units(res, groups=None):
    """(codes, labels, name): the deletion unit of each observation.

    ``groups`` is None (each observation, labelled by the data's row labels), the
    name of a grouping factor of the model (``"herd"``, ``"a:b"``), a column of
    the data the model was created from, or one label per observation.
    """
    model = res.model
    n = model.response.nobs
    if groups is None:
        labels = model.row_labels if model.row_labels is not None else pd.RangeIndex(n)
        return np.arange(n), pd.Index(labels), "case"
    if isinstance(groups, str):
        for term in model.random_effects.terms:
            if term.group_name == groups:
                codes, labels = _first_appearance(term.refs)
                return codes, pd.Index(term.levels[np.asarray(labels, dtype=np.intp)]), groups
        data = (model.source or {}).get("data")
        if data is not None and groups in data.columns and model.row_labels is not None:
            values = data[groups].loc[model.row_labels].to_numpy()
            if values.size != n:
                raise ValueError(f"groups {groups!r}: the data's row labels are not unique; "
                                 "pass one label per observation instead")
            codes, labels = _first_appearance(values)
            return codes, labels, groups
        names = sorted({t.group_name for t in model.random_effects.terms})
        raise ValueError(f"groups {groups!r} is neither a grouping factor of the model "
                         f"({', '.join(names)}) nor a column of its data; pass one label "
                         "per observation instead")
    values = np.asarray(groups, dtype=object)
    if values.ndim != 1 or values.size != n:
        raise ValueError(f"groups must be a name or one label per observation ({n}), got "
                         f"shape {values.shape}")
    codes, labels = _first_appearance(values)
    return codes, labels, "groups"


# -- results --------------------------------------------------------------------------------------
class InfluenceResults:
    """Fixed effects with each observation (or group) deleted, from :func:`influence`.

    Attributes
    ----------
    fe_params : pandas.Series
        β̂ of the full fit.
    fe_params_deleted : pandas.DataFrame
        One row per deleted unit (index: the row labels or the group levels):
        β̂₍₋ᵢ₎ (lme4's ``fixed.effects[-case]``). NaN where a refit failed.
    dfbeta, dfbetas : pandas.DataFrame
        β̂₍₋ᵢ₎ − β̂, and that divided by the standard errors of the deleted fit.
    cooks_distance : pandas.Series
        Cook's distance of the fixed effects (lme4's scaling, see :mod:`influence`).
    bse_deleted : pandas.DataFrame
        Standard errors of the deleted fits.
    theta_deleted : pandas.DataFrame
        θ of the deleted fits (the full model's order and names).
    sigma_deleted, neg2llf_deleted : pandas.Series
        σ (lme4's ``sigma()``) and −2 log-likelihood of the deleted fits.
    converged : pandas.Series of bool
        The refit's optimizer converged with no convergence warning (warnings of a
        singular fit or of a parameter on its boundary aside), as lme4's
        ``converged``.
    nfev : pandas.Series
        Deviance evaluations of each refit.
    vcov : pandas.DataFrame
        The full fit's covariance of β̂ (V of Cook's distance).
    vcov_deleted : dict
        {unit: covariance of β̂₍₋ᵢ₎}.
    failures : dict
        {unit: message} for the refits that raised an error.
    groups : str
        ``"case"`` or the name of the grouping.
    """

    def __init__(self, res, labels, name, outcomes):
        names = list(res.model.fe_names)
        p = len(names)
        self.groups = name
        self.fe_params = pd.Series(res.fe_params, index=names, name="fe_params")
        self.vcov = pd.DataFrame(res.cov_fe, index=names, columns=names)
        self.failures = {lab: out for lab, out in zip(labels, outcomes) if isinstance(out, str)}
        ok = [out if isinstance(out, dict) else None for out in outcomes]

        def stack(key, width, fill=np.nan):
            return np.array([o[key] if o is not None else np.full(width, fill) for o in ok])

        beta = stack("beta", p).reshape(len(labels), p)
        vcovs = [o["vcov"] if o is not None else np.full((p, p), np.nan) for o in ok]
        se = np.sqrt(np.array([np.diag(v) for v in vcovs])).reshape(len(labels), p)
        self.fe_params_deleted = pd.DataFrame(beta, index=labels, columns=names)
        self.dfbeta = self.fe_params_deleted - self.fe_params.to_numpy()
        self.bse_deleted = pd.DataFrame(se, index=labels, columns=names)
        self.dfbetas = self.dfbeta / se
        self.vcov_deleted = dict(zip(labels, vcovs))
        theta_names = list(res.theta.index)
        self.theta_deleted = pd.DataFrame(
            stack("theta", len(theta_names)).reshape(len(labels), -1), index=labels,
            columns=theta_names)
        self.sigma_deleted = pd.Series(stack("sigma", 1).ravel(), index=labels, name="sigma")
        self.neg2llf_deleted = pd.Series(stack("neg2ll", 1).ravel(), index=labels,
                                         name="neg2llf")
        self.converged = pd.Series([o is not None and o["converged"] for o in ok],
                                   index=labels, name="converged")
        self.nfev = pd.Series([o["nfev"] if o is not None else 0 for o in ok], index=labels,
                              name="nfev")
        self.cooks_distance = self._cooks(res.cov_fe)

    def _cooks(self, vcov):
        d = self.dfbeta.to_numpy()
        n, p = d.shape
        try:
            vinv = np.linalg.inv(vcov)
        except np.linalg.LinAlgError:
            vinv = np.linalg.pinv(vcov)
        values = (n - p) / (n * p) * np.einsum("ij,jk,ik->i", d, vinv, d)
        return pd.Series(values, index=self.dfbeta.index, name="cooks_d")

    def summary_frame(self):
        """One row per deleted unit: ``dfb_<name>`` (dfbetas), ``cooks_d``,
        ``converged``, sorted as the units."""
        frame = self.dfbetas.add_prefix("dfb_")
        frame["cooks_d"] = self.cooks_distance
        frame["converged"] = self.converged
        return frame

    def plot(self, ax=None, threshold=None):
        """Cook's distance of each deleted unit (matplotlib), with an optional
        horizontal line at ``threshold`` (e.g. 4 / n); returns the Figure."""
        from .plots import _axes

        fig, ax = _axes(ax)
        values = self.cooks_distance.to_numpy()
        pos = np.arange(values.size)
        ax.vlines(pos, 0.0, values, lw=1.5)
        ax.plot(pos, values, "o", ms=3)
        if threshold is not None:
            ax.axhline(threshold, color="grey", lw=1, ls="--")
        if values.size <= 40:
            ax.set_xticks(pos)
            ax.set_xticklabels([str(v) for v in self.cooks_distance.index], rotation=90,
                               fontsize=7)
        ax.set_xlabel(self.groups)
        ax.set_ylabel("Cook's distance")
        ax.set_title("Influence on the fixed effects")
        return fig

    def __repr__(self):
        top = self.cooks_distance.sort_values(ascending=False).head(3)
        shown = ", ".join(f"{k}: {v:.3g}" for k, v in top.items())
        return (f"<InfluenceResults: {len(self.cooks_distance)} deletions of {self.groups}, "
                f"{int((~self.converged).sum())} not converged; largest Cook's D {shown}>")


def influence(res, groups=None, progress=False, n_jobs=1, **fit_kwargs):
    """Refit without each observation or group (lme4's ``influence.merMod``).

    Parameters
    ----------
    res : GLMMResults
    groups : str or array_like, optional
        None: delete each observation in turn (lme4's default, ``case``). A
        grouping factor of the model or a column of the data: delete each level
        in turn (lme4's ``groups=``); or one label per observation.
    progress : bool
        A tqdm bar over the deletions.
    n_jobs : int
        Worker processes (-1: one per CPU); each worker receives the fit once. Pays
        when a refit takes longer than ~0.1 s.
    **fit_kwargs
        Passed to :meth:`GLMM.fit` of each refit (default: the full fit's nAGQ and
        information, started at its θ, β and dispersion, no nAGQ=0 stage).

    Returns
    -------
    InfluenceResults
    """
    progress = check_progress(progress)
    n_jobs = check_n_jobs(n_jobs)
    codes, labels, name = deletion_units(res, groups)
    if len(labels) < 2:
        raise ValueError(f"groups {name!r} has a single level: deleting it leaves no data")
    bar = progress_bar(len(labels), progress, desc="influence", unit="refit")
    try:
        outcomes = run_tasks(_delete_unit, (res, codes, dict(fit_kwargs)),
                             range(len(labels)), n_jobs, bar)
    finally:
        bar.close()
    return InfluenceResults(res, labels, name, outcomes)


class InfluenceMixin:
    """:meth:`influence` for :class:`results.GLMMResults`."""

    def influence(self, groups=None, progress=False, n_jobs=1, **fit_kwargs):
        """Case-deletion influence on the fixed effects (lme4's ``influence``):
        refit without each observation, or each level of ``groups``; dfbeta,
        dfbetas and Cook's distance (see :func:`influence.influence`)."""
        return influence(self, groups=groups, progress=progress, n_jobs=n_jobs,
                         **fit_kwargs)
