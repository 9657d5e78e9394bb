"""Predictions conditional on the random effects, with standard errors that
include the uncertainty of the conditional modes (lme4 ≥ 1.1-35's
``predict(..., se.fit = TRUE)``), and the fitted values and residuals with R's
``na.exclude`` padding.

The standard errors come from the joint covariance of (b, β) given θ, the
inverse of the penalized weighted least-squares matrix at the modes (lme4's
``vcov_full``): with F the Cholesky factor of

    [Λ'Z'WZΛ + I   Λ'Z'WX]
    [X'WZΛ         X'WX  ]  = F F',

Cov(b, β) = diag(Λ, I) (F F')⁻¹ diag(Λ', I) (times σ² for the linear mixed
model), so the standard error of η_i = z_i b + x_i β is ‖F⁻¹ a_i‖ with
a_i = (Λ' z_i, x_i). F⁻¹ a_i is a forward substitution through the blocked
factor of :mod:`blocked_cholesky`, local to the row's level in the first
(block-diagonal) term, so rows cost O(S² + Σ q_j S + p²) each, never q.

W is the information at the modes the fit used (observed for a non-canonical
link unless ``information="expected"``; lme4 always uses the Fisher weights),
and the β block is the covariance of β̂ conditional on θ (lme4's RX); the
population-level standard errors (``re_form="~0"``) keep statsmodels' delta
method with :meth:`cov_params` (the Hessian-based covariance by default).
"""

import numpy as np
import pandas as pd
import scipy.linalg as sla
from statsmodels.tools._decorators import cache_readonly

from .blocked_cholesky import BlockDiagonalFactor
from .data_removal import require_data
from .frame import prepare_newdata
from .prediction import PredictionResults, fixed_design, newdata_level_codes, select_terms
from .validation import select_rows

__all__ = ["PredictionMixin", "joint_factor", "conditional_se", "design_rows"]

_CHUNK = 2_000_000  # numbers per chunk of rows in the dense blocks


def joint_factor(res):
    """The factor F of the joint (u, β) system at the modes, and the scale of the
    covariance (σ² for the linear mixed model, 1 otherwise); computed once (it
    survives ``remove_data()``)."""
    kept = res.__dict__.setdefault("_kept_statistics", {})
    if "joint_factor" not in kept:
        kept["joint_factor"] = _joint_factor(res)
    return kept["joint_factor"]


def _joint_factor(res):
    model = res.model
    modes = res.modes
    if model.is_lmm:  # its factor carries the X border already
        return modes.factor, float(res.dispersion)
    theta = res.theta.to_numpy()
    disp = res.fit_record.dispersion
    scaled = model.random_effects.scaled_covariates(theta)
    kernel = model.kernel
    weights = [kernel.working_weights(modes.eta, modes.mu, disp)]
    if not kernel.canonical and res.fit_record.information == "observed":
        weights.insert(0, kernel.observed_weights(modes.eta, modes.mu, disp))
    for w in weights:  # the observed information may be indefinite: then Fisher's
        try:
            return model.system.factor(scaled, w, model.design_basis.X), 1.0
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError("the joint (b, beta) system at the modes is singular: "
                                "no conditional standard errors")


def design_rows(res, newdata=None, re_form=None, allow_new_levels=False, offset=None,
                random_only=False):
    """The rows to predict: fixed design, offset, random-effects parts and labels.

    Returns
    -------
    X : ndarray (m, k) or None
        Kept columns of the fixed design (None with ``random_only``).
    offs : ndarray (m,)
    parts : list of (j, codes, z)
        For each selected term j: the level of each row (−1: no contribution,
        a new level or a missing group allowed), its covariates, and NaN in z
        where a missing group is not allowed.
    index : pandas.Index or None
    """
    model = res.model
    re = model.random_effects
    keep = select_terms(re, re_form)
    if newdata is None:
        require_data(res, "prediction at the fitted rows (newdata=None)")
        X = None if random_only else model.exog
        offs = np.zeros(model.response.nobs) if random_only else model.offset
        parts = [(j, term.refs, term.z) for j, term in enumerate(re.terms) if keep[j]]
        return X, offs, parts, model.row_labels
    newdata = prepare_newdata(newdata)
    X, offs = (None, np.zeros(len(newdata))) if random_only else fixed_design(
        res, newdata, offset)
    parts = []
    for j, term in enumerate(re.terms):
        if not keep[j]:
            continue
        z = term.covariates_for(newdata)
        codes, _, missing = newdata_level_codes(term, newdata, allow_new_levels)
        if not allow_new_levels:  # a missing grouping value: like a new level (lme4)
            z = np.where(missing[:, None], np.nan, z)
        parts.append((j, np.where(codes >= 0, codes, -1), z))
    return X, offs, parts, newdata.index


def linear_predictor(res, X, offs, parts):
    """η = X β + offset + Σ z b[level] over the selected parts."""
    re = res.model.random_effects
    b_terms = re.conditional_modes(res.theta.to_numpy(), res.u)
    eta = np.asarray(offs, dtype=float).copy()
    if X is not None:
        eta += X @ res.fe_params
    for j, codes, z in parts:
        b = b_terms[j]
        contrib = np.einsum("ij,ij->i", z, b[np.maximum(codes, 0)])
        eta += np.where(codes >= 0, contrib, np.where(np.isnan(z).any(axis=1), np.nan, 0.0))
    return eta


def _scaled_rows(res, parts, m):
    """Per factor block j: (codes, Λ_j' z_i) of the rows (zeros where no contribution)."""
    re = res.model.random_effects
    factors = re.factors(res.theta.to_numpy())
    rows = {}
    for j, codes, z in parts:
        a = np.nan_to_num(z) @ factors[j]  # (Λ' z)_i = T' z_i on the row's level block
        a[codes < 0] = 0.0
        a[np.isnan(z).any(axis=1)] = np.nan
        rows[j] = (np.maximum(codes, 0), a)
    return rows


def _forward_chunk(factor, re, rows, Xt, sl):
    """Σ_blocks ‖F⁻¹ a_i‖² for the rows in slice ``sl``."""
    k = len(re.terms)
    m = sl.stop - sl.start
    total = np.zeros(m)
    y_local = None  # block 0, block diagonal: (codes, (m, S)) values on the row's level
    y_dense = {}
    for j in range(k + 1):
        is_x = j == k
        size = Xt.shape[1] if is_x else re.terms[j].n_re
        if not is_x and j in rows:
            codes, a = rows[j][0][sl], rows[j][1][sl]
        else:
            codes, a = None, None
        if j == 0 and isinstance(factor.block(0), BlockDiagonalFactor):
            s = re.terms[0].n_cov
            y0 = np.zeros((m, s)) if a is None else np.einsum(
                "mij,mj->mi", factor.block(0).inverse[codes], a)
            y_local = (np.zeros(m, dtype=np.intp) if codes is None else codes, y0)
            total += np.einsum("mi,mi->m", y0, y0)
            continue
        v = np.zeros((m, size))
        if is_x:
            v += Xt[sl]
        elif a is not None:
            s = re.terms[j].n_cov
            idx = codes[:, None] * s + np.arange(s)
            np.put_along_axis(v, idx, a, axis=1)
        for l in range(j):
            block = np.asarray(factor.lower[j, l])
            if l == 0 and y_local is not None:
                c0, y0 = y_local
                s0 = y0.shape[1]
                gathered = block.reshape(size, -1, s0)[:, c0, :]  # (size, m, S)
                v -= np.einsum("qms,ms->mq", gathered, y0)
            else:
                v -= y_dense[l] @ block.T
        y = factor.block(j).solve(v.T).T
        y_dense[j] = y
        total += np.einsum("mi,mi->m", y, y)
    return total


def conditional_se(res, X, parts, m):
    """Standard errors of η_i = x_i β + z_i b for the ``m`` rows, from the joint
    covariance of (b, β) (see the module docstring); ``X`` None: of the random
    part z_i b only."""
    model = res.model
    re = model.random_effects
    if X is None and not parts:
        return np.zeros(m)
    factor, scale = joint_factor(res)
    if X is None:  # b's variance from the joint covariance: β's uncertainty included
        X = np.zeros((m, model.k_fe))
    T = model.design_basis.T
    Xt = X if T is None else sla.solve_triangular(T, X.T, trans="T", lower=False).T
    m = X.shape[0]
    rows = _scaled_rows(res, parts, m)
    s0 = re.terms[0].n_cov if re.terms else 1
    widest = s0 * max([t.n_re for t in re.terms[1:]] + [model.k_fe, 1])
    step = max(1, _CHUNK // widest)
    out = np.empty(m)
    for start in range(0, m, step):
        sl = slice(start, min(start + step, m))
        out[sl] = _forward_chunk(factor, re, rows, Xt, sl)
    return np.sqrt(scale * out)


def _exclude_positions(model):
    """(original index, position of each fitted row in it) for na_action="exclude"."""
    source = model.source
    if source is None:
        raise ValueError("na_action='exclude' needs the data the model was fitted to, "
                         "which were removed (remove_data) or never given (array input)")
    index = select_rows(source["data"], source["subset"]).index
    if not index.is_unique:
        raise ValueError("na_action='exclude' needs unique row labels in data (the index "
                         "has duplicates): reset the index before fitting")
    return index, index.get_indexer(model.row_labels)


def pad_rows(model, values, na_action, labelled=True):
    """``values`` of the fitted rows, as a Series over the original rows with NaN
    where the fit dropped an incomplete row (``"exclude"``), or else as a Series
    over the fitted rows (an array if not ``labelled`` or without row labels)."""
    if na_action is None:
        na_action = getattr(model, "na_action", "omit")
    if na_action not in ("omit", "exclude"):
        raise ValueError(f"na_action must be 'omit' or 'exclude', got {na_action!r}")
    values = np.asarray(values)
    if na_action == "omit":
        if model.row_labels is None or not labelled:
            return values
        return pd.Series(values, index=model.row_labels)
    index, positions = _exclude_positions(model)
    out = np.full(len(index), np.nan)
    out[positions] = values
    return pd.Series(out, index=index)


class PredictionMixin:
    """lme4's ``predict``, ``fitted`` and ``residuals`` for :class:`results.GLMMResults`."""

    def predict(self, newdata=None, re_form=None, which="mean", allow_new_levels=False,
                offset=None, exog=None, random_only=False, na_action=None):
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
        random_only : bool
            Only the random-effects part Z b of the linear predictor (lme4's
            ``random.only``; no fixed effects, no offset). As lme4,
            ``which="mean"`` applies the inverse link to it.
        na_action : {None, "omit", "exclude"}
            Without ``newdata``: ``"exclude"`` returns a row for every row of the
            data the model was created from, NaN where the fit dropped an
            incomplete row (R's ``na.exclude``); default the model's
            (``missing="exclude"`` at creation).

        Returns
        -------
        pandas.Series (index of ``newdata`` or the data) or ndarray
            NaN where a covariate or grouping value is missing.
        """
        if which not in ("mean", "linear"):
            raise ValueError("which must be 'mean' or 'linear'")
        newdata = exog if newdata is None else newdata
        X, offs, parts, index = design_rows(self, newdata, re_form, allow_new_levels, offset,
                                            random_only)
        eta = linear_predictor(self, X, offs, parts)
        out = eta if which == "linear" else self.model.response.mu(eta)
        if newdata is None:
            return pad_rows(self.model, out, na_action)
        if index is not None:
            return pd.Series(out, index=index, name="predicted")
        return out

    def get_prediction(self, newdata=None, re_form=None, which="mean", offset=None,
                       allow_new_levels=False, random_only=False):
        """Predictions with standard errors and Wald intervals.

        Conditional on the fitted random effects by default, as :meth:`predict`
        (``re_form=None``), with standard errors that include the uncertainty
        of the conditional modes: lme4 ≥ 1.1-35's ``predict(..., se.fit=TRUE)``
        from the joint covariance of (b, β) given θ (see
        :mod:`conditional_prediction`). At the population level
        (``re_form="~0"``) the standard errors are statsmodels' delta method
        with :meth:`cov_params`.

        Parameters
        ----------
        newdata, re_form, which, offset, allow_new_levels, random_only
            As in :meth:`predict`. New levels (allowed) and unselected terms add
            nothing to η and to its variance.

        Returns
        -------
        prediction.PredictionResults
            ``predicted``, ``se``, ``conf_int(alpha)``, ``summary_frame(alpha)``;
            ``linpred`` and ``se_linpred`` on the linear-predictor scale.
        """
        if which not in ("mean", "linear"):
            raise ValueError("which must be 'mean' or 'linear'")
        X, offs, parts, index = design_rows(self, newdata, re_form, allow_new_levels, offset,
                                            random_only)
        eta = linear_predictor(self, X, offs, parts)
        if parts or random_only:
            se = conditional_se(self, X, parts, len(eta))
        else:
            se = np.sqrt(np.einsum("ij,jk,ik->i", X, self.cov_fe, X))
        resp = self.model.response
        return PredictionResults(eta, se, resp.mu, resp.mu_eta, which=which, index=index)

    @cache_readonly
    def fittedvalues(self):
        """Conditional means μ at the conditional modes of the random effects
        (with NaN rows for the incomplete rows of the data when the model was
        created with ``missing="exclude"``)."""
        return pad_rows(self.model, self.fittedvalues_array, None)

    def fitted(self, na_action=None):
        """The fitted values μ (lme4's ``fitted``); ``na_action`` as in :meth:`predict`."""
        return pad_rows(self.model, self.fittedvalues_array, na_action)

    def resid(self, type="deviance", scaled=False, na_action=None):
        """Residuals of one type (lme4's ``residuals``; default deviance).

        Parameters
        ----------
        type : {"deviance", "pearson", "working", "response"}
        scaled : bool
            Divide by σ = √φ.
        na_action : {None, "omit", "exclude"}
            As in :meth:`predict`.

        Returns
        -------
        ndarray, or with ``na_action="exclude"`` a pandas.Series over the rows of
        the data
        """
        values = {"deviance": "resid_deviance", "pearson": "resid_pearson",
                  "working": "resid_working", "response": "resid_response"}
        if type not in values:
            raise ValueError(f"type must be one of {sorted(values)}")
        out = np.asarray(getattr(self, values[type]))
        return pad_rows(self.model, out / self.sigma if scaled else out, na_action,
                        labelled=False)
