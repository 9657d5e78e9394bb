"""Cluster-robust (sandwich) covariance of the fixed effects.

For clusters c = 1..G that contain every random effect they touch (each level of
each grouping factor lies within one cluster), the marginal log-likelihood is a
sum over the clusters, ℓ(β, θ) = Σ_c ℓ_c(β, θ), and the cluster-robust covariance
of β̂ is the sandwich

    V = B (Σ_c s_c s_cᵀ) B · adjustment,   s_c = ∂ℓ_c/∂β at the estimates,

with B the model-based covariance of β̂ (``cov_fe``: the β block of the inverse
Hessian, or the covariance conditional on θ; for the linear mixed model
(X'V⁻¹X)⁻¹, so that CR0 and CR2 are clubSandwich's ``vcovCR`` of an ``lmer``
fit). The scores s_c are those of the likelihood the fit maximised:

- Laplace (nAGQ = 1): ℓ_c = −½ [Σ_{i∈c} −2 log p(y_i | û) + ‖û_c‖² + log|M_c|],
  M_c = Λ'Z_c'W_cZ_cΛ + I. By the envelope theorem (û minimises the penalized
  deviance) only the explicit β-dependence and that of log|M_c| through W
  remain:

      s_c = Σ_{i∈c} x_i r_i − ½ h_i w'_i (x_i + a_i ∂û/∂β),

  with r_i = ∂ log p_i/∂η_i, a_i the row of ZΛ, h_i = a_i M⁻¹ a_iᵀ (M with the
  weights of the Laplace factor), w'_i = ∂w_i/∂η_i and ∂û/∂β = −H_uu⁻¹ Λ'Z'W°X
  (W° the observed information). These are exact per cluster, computed from
  the quantities at the conditional modes (w'_i by a central difference in η);
- nAGQ = 0: β solves the penalized score equations Σ_i x_i r_i = 0, whose
  terms are the scores;
- the linear mixed model: s_c = X_c'V_c⁻¹(y_c − X_cβ) = Σ_{i∈c} x_i w_i (y_i − μ_i)/σ²
  (μ at the conditional modes), the log-determinant not depending on β;
- nAGQ > 1 (one grouping factor): per level, central differences in β of the
  level's quadrature value (2p PIRLS runs over all levels at once).

Adjustments: ``"CR0"`` none; ``"CR1"`` G/(G − 1) (Stata's for ML estimators,
clubSandwich's CR1); ``"CR1S"`` G(N − 1)/((G − 1)(N − p)) (statsmodels'
``use_correction=True``, clubSandwich's CR1S); ``"CR2"`` (linear mixed model
only) the bias-reduced linearization of Bell and McCaffrey with the model's
marginal covariance as working covariance, as clubSandwich.
"""

import dataclasses

import numpy as np
import pandas as pd

from .quadrature import agq_level_deviances

__all__ = ["ADJUSTMENTS", "Clusters", "RobustCovarianceMixin", "cluster_codes",
           "outermost_term", "score_obs_fe", "model_covariance", "cluster_scores",
           "robust_covariance", "check_cluster_options", "fit_covariance"]

ADJUSTMENTS = ("CR0", "CR1", "CR1S", "CR2")
_COV_KWDS = ("groups", "adjust", "use_correction", "df_correction")


@dataclasses.dataclass(frozen=True)
class Clusters:
    """Cluster membership of the observations.

    Attributes
    ----------
    codes : ndarray of intp
        Cluster index (0..G−1) of each observation.
    n_clusters : int
    label : str
        What the clusters are (a grouping factor or column name, or ``"groups"``).
    """

    codes: np.ndarray
    n_clusters: int
    label: str


# -- clusters ------------------------------------------------------------------------------
def outermost_term(random_effects):
    """The term of the grouping factor with the fewest levels among those that
    nest every other grouping factor; the first term (most levels) if none does
    (crossed factors)."""
    terms = random_effects.terms
    nesting = [t for t in terms if all(o.is_nested_in(t) for o in terms)]
    return min(nesting, key=lambda t: t.n_levels) if nesting else terms[0]


def _factorize(values, what, n):
    values = values.to_numpy() if isinstance(values, pd.Series) else values
    if np.ndim(values) != 1 or len(values) != n:
        raise ValueError(f"groups must have one value per observation ({n}), got shape "
                         f"{np.shape(values)}")
    codes, uniques = pd.factorize(pd.Series(values), sort=True)
    if (codes < 0).any():
        raise ValueError(f"groups ({what}) has {int((codes < 0).sum())} missing value(s)")
    return codes.astype(np.intp), len(uniques)


def cluster_codes(model, groups=None):
    """The clusters of ``groups`` for ``model``, checked to nest the random effects.

    Parameters
    ----------
    model : GLMM
    groups : None, str or array_like
        None: the outermost grouping factor (:func:`outermost_term`); a name:
        a grouping factor of the model (``"herd"``, ``"class:school"``) or a
        column of the data the model was fitted to; an array: one cluster label
        per observation (rows of the fit, after dropping incomplete ones).

    Returns
    -------
    Clusters
    """
    re = model.random_effects
    n = int(model.nobs)
    by_name = {t.group_name: t for t in re.terms}
    if groups is None:
        term = outermost_term(re)
        clusters = Clusters(term.refs, term.n_levels, term.group_name)
    elif isinstance(groups, str) and groups in by_name:
        term = by_name[groups]
        clusters = Clusters(term.refs, term.n_levels, groups)
    elif isinstance(groups, str):
        frame = getattr(model.data, "frame", None)
        if frame is None or groups not in frame.columns:
            raise ValueError(f"groups {groups!r} is neither a grouping factor of the model "
                             f"({', '.join(by_name)}) nor a column of its data")
        clusters = Clusters(*_factorize(frame[groups], groups, n), groups)
    else:
        clusters = Clusters(*_factorize(groups, "array", n), "groups")
    if clusters.n_clusters < 2:
        raise ValueError(f"groups ({clusters.label}) has a single cluster; a cluster-robust "
                         "covariance needs at least two")
    _check_nested(re, clusters)
    return clusters


def _check_nested(random_effects, clusters):
    """Every level of every grouping factor lies within one cluster."""
    for term in random_effects.terms:
        first = np.full(term.n_levels, -1, dtype=np.intp)
        first[term.refs] = clusters.codes
        if not np.all(first[term.refs] == clusters.codes):
            raise ValueError(
                f"groups ({clusters.label}) does not nest the grouping factor "
                f"{term.group_name!r}: some of its levels span several clusters, so the "
                "likelihood is not a sum over the clusters (crossed random effects); "
                "cluster on a factor that contains every grouping factor of the model")


# -- scores --------------------------------------------------------------------------------
def _eta_scores(model, fit):
    """r_i = ∂ log p(y_i | η_i)/∂η_i at the conditional modes."""
    resp = model.response
    eta, mu = fit.modes.eta, fit.modes.mu
    w, dmu = resp.irls_quantities(eta, mu, fit.dispersion)
    resid = np.divide(resp.y - mu, dmu, out=np.zeros_like(mu), where=dmu != 0)
    return w * resid


def _weights_and_slope(model, fit):
    """Weights of the Laplace factor, their derivative in η, and the observed
    information (the curvature of the penalized deviance in u)."""
    resp = model.response
    disp, eta = fit.dispersion, fit.modes.eta
    factor_weights = resp.observed_weights if fit.information == "observed" \
        else resp.working_weights
    h = 1e-5 * np.maximum(1.0, np.abs(eta))
    with np.errstate(all="ignore"):
        up = factor_weights(eta + h, resp.mu(eta + h), disp)
        down = factor_weights(eta - h, resp.mu(eta - h), disp)
    slope = np.where(np.isfinite(up) & np.isfinite(down), (up - down) / (2 * h), 0.0)
    w_fac = factor_weights(eta, fit.modes.mu, disp)
    return w_fac, slope, resp.observed_weights(eta, fit.modes.mu, disp)


def _level_sums(refs, n_levels, left, right):
    """Per level, Σ_i left_i ⊗ right_i: shape (levels, a, b)."""
    out = np.empty((n_levels, left.shape[1], right.shape[1]))
    for a in range(left.shape[1]):
        for b in range(right.shape[1]):
            out[:, a, b] = np.bincount(refs, weights=left[:, a] * right[:, b],
                                       minlength=n_levels)
    return out


def _logdet_terms_one_factor(model, fit, w_fac, slope, w_obs):
    """h_i w'_i (x_i + a_i ∂û/∂β) for one random-effects term (vectorized)."""
    term = model.random_effects.terms[0]
    zt = model.random_effects.scaled_covariates(fit.theta)[0]
    X = model.exog
    eye = np.eye(term.n_cov)
    m_fac = _level_sums(term.refs, term.n_levels, zt * w_fac[:, None], zt) + eye
    m_obs = _level_sums(term.refs, term.n_levels, zt * w_obs[:, None], zt) + eye
    h = np.einsum("ia,iab,ib->i", zt, np.linalg.inv(m_fac)[term.refs], zt)
    du = -np.linalg.solve(m_obs, _level_sums(term.refs, term.n_levels,
                                             zt * w_obs[:, None], X))
    return (h * slope)[:, None] * (X + np.einsum("ia,iap->ip", zt, du[term.refs]))


def _cluster_slices(codes, n_clusters):
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_clusters))])
    return [order[bounds[c]:bounds[c + 1]] for c in range(n_clusters)]


def _cluster_blocks(model, theta, clusters):
    """Per cluster: its rows and the dense rows of ZΛ over the cluster's columns."""
    re = model.random_effects
    A = (re.sparse_z() @ re.relative_factor(theta)).tocsr()
    for rows in _cluster_slices(clusters.codes, clusters.n_clusters):
        sub = A[rows]
        cols = np.unique(sub.indices)
        yield rows, sub[:, cols].toarray()


def _logdet_terms_by_cluster(model, fit, clusters, w_fac, slope, w_obs):
    """h_i w'_i (x_i + a_i ∂û/∂β) cluster by cluster (M is block diagonal over
    clusters that nest the random effects)."""
    X = model.exog
    out = np.zeros_like(X)
    for rows, Ad in _cluster_blocks(model, fit.theta, clusters):
        eye = np.eye(Ad.shape[1])
        m_fac = Ad.T @ (w_fac[rows, None] * Ad) + eye
        m_obs = Ad.T @ (w_obs[rows, None] * Ad) + eye
        h = np.einsum("ij,ji->i", Ad, np.linalg.solve(m_fac, Ad.T))
        du = -np.linalg.solve(m_obs, Ad.T @ (w_obs[rows, None] * X[rows]))
        out[rows] = (h * slope[rows])[:, None] * (X[rows] + Ad @ du)
    return out


def score_obs_fe(results, clusters=None):
    """Per-observation contributions to the score of β, ∂ℓ/∂β (n × p).

    Their sum over a cluster that nests the random effects is that cluster's
    score (see the module notes); for a model with several random-effects
    terms ``clusters`` (default: the outermost grouping factor) is needed to
    split the log-determinant. Not available for nAGQ > 1 (see
    :func:`cluster_scores`).
    """
    model, fit = results.model, results.fit_record
    if fit.nAGQ > 1:
        raise ValueError("per-observation scores do not exist for nAGQ > 1 (the quadrature "
                         "value of a level does not split over its observations); use "
                         "cluster_scores")
    scores = model.exog * _eta_scores(model, fit)[:, None]
    if fit.nAGQ == 0 or model.is_lmm:
        return scores
    w_fac, slope, w_obs = _weights_and_slope(model, fit)
    if len(model.random_effects.terms) == 1:
        return scores - 0.5 * _logdet_terms_one_factor(model, fit, w_fac, slope, w_obs)
    clusters = cluster_codes(model) if clusters is None else clusters
    return scores - 0.5 * _logdet_terms_by_cluster(model, fit, clusters, w_fac, slope, w_obs)


def _level_deviances(model, fit, beta, u0):
    """Per level of the single grouping factor, −2 × its AGQ log-likelihood at β."""
    re = model.random_effects
    modes = model.pirls(fit.theta, beta, fit.dispersion, u0=u0, information=fit.information)
    return agq_level_deviances(model.response, re, re.scaled_covariates(fit.theta),
                               model.offset + model.exog @ beta, modes, fit.nAGQ,
                               fit.dispersion)


def _agq_level_scores(results):
    """Scores per level for nAGQ > 1, by central differences in β (steps of
    1e-3 standard errors)."""
    model, fit = results.model, results.fit_record
    beta = np.asarray(fit.beta, dtype=float)
    steps = 1e-3 * np.sqrt(np.maximum(np.diag(model_covariance(results)), 1e-16))
    out = np.empty((model.random_effects.terms[0].n_levels, beta.size))
    for k, h in enumerate(steps):
        e = np.zeros(beta.size)
        e[k] = h
        up = _level_deviances(model, fit, beta + e, fit.modes.u)
        down = _level_deviances(model, fit, beta - e, fit.modes.u)
        out[:, k] = -0.5 * (up - down) / (2 * h)
    return out


def cluster_scores(results, clusters):
    """The scores s_c = ∂ℓ_c/∂β of the clusters (G × p)."""
    if results.fit_record.nAGQ > 1:
        term = results.model.random_effects.terms[0]
        level_cluster = np.empty(term.n_levels, dtype=np.intp)
        level_cluster[term.refs] = clusters.codes
        per_level = _agq_level_scores(results)
        return np.column_stack([np.bincount(level_cluster, weights=col,
                                            minlength=clusters.n_clusters)
                                for col in per_level.T])
    scores = score_obs_fe(results, clusters)
    return np.column_stack([np.bincount(clusters.codes, weights=col,
                                        minlength=clusters.n_clusters)
                            for col in scores.T])


def model_covariance(results):
    """The model-based covariance of ``fe_params`` (the bread), also of a
    cluster-robust copy."""
    cov = getattr(results, "cov_model", None)
    return results.cov_fe if cov is None else cov


# -- the sandwich --------------------------------------------------------------------------
def _lmm_cr2_meat(results, clusters):
    """The LMM's bread (X'V⁻¹X)⁻¹ and the CR2-adjusted meat, in units of σ²
    (V = ZΛΛ'Z' + W⁻¹; the sandwich does not depend on σ²)."""
    model, fit = results.model, results.fit_record
    X = model.exog
    resp = model.response
    resid = resp.y - model.offset - X @ fit.beta
    pieces = []
    for rows, Ad in _cluster_blocks(model, fit.theta, clusters):
        keep = resp.weights[rows] > 0  # a zero weight: no information, infinite variance
        rows, Ad = rows[keep], Ad[keep]
        V = Ad @ Ad.T + np.diag(1.0 / resp.weights[rows])
        L = np.linalg.cholesky(V)
        Vinv_X = np.linalg.solve(V, X[rows])
        pieces.append((rows, V, L, Vinv_X))
    bread = np.linalg.inv(sum(X[rows].T @ vx for rows, _, _, vx in pieces))
    meat = np.zeros_like(bread)
    for rows, V, L, Vinv_X in pieces:
        G = L.T @ (V - X[rows] @ bread @ X[rows].T) @ L
        vals, vecs = np.linalg.eigh(G)
        root = vecs @ np.diag(1.0 / np.sqrt(np.maximum(vals, 1e-14 * vals.max()))) @ vecs.T
        comp = Vinv_X.T @ (L @ root @ L.T) @ resid[rows]
        meat += np.outer(comp, comp)
    return bread, meat


def robust_covariance(results, clusters, adjust="CR1"):
    """The cluster-robust covariance of ``fe_params`` (p × p).

    Parameters
    ----------
    results : GLMMResults
    clusters : Clusters
        From :func:`cluster_codes`.
    adjust : {"CR0", "CR1", "CR1S", "CR2"}
        Small-sample adjustment (see the module notes); ``"CR2"`` only for the
        linear mixed model.
    """
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {', '.join(ADJUSTMENTS)}, got {adjust!r}")
    model = results.model
    if adjust == "CR2":
        if not model.is_lmm:
            raise ValueError("adjust='CR2' (Bell-McCaffrey) needs the linear mixed model's "
                             "marginal covariance; use 'CR0', 'CR1' or 'CR1S' for a GLMM")
        bread, meat = _lmm_cr2_meat(results, clusters)
        return bread @ meat @ bread
    scores = cluster_scores(results, clusters)
    bread = model_covariance(results)
    cov = bread @ (scores.T @ scores) @ bread
    g, n, p = clusters.n_clusters, model.nobs, model.k_fe
    factor = {"CR0": 1.0, "CR1": g / (g - 1.0),
              "CR1S": g / (g - 1.0) * (n - 1.0) / (n - p)}[adjust]
    return factor * cov


def check_cluster_options(model, cov_kwds):
    """Validated ``cov_kwds`` of ``fit(cov_type="cluster")`` (see
    :meth:`RobustCovarianceMixin.get_robustcov_results`): a dict with the
    clusters (a :class:`Clusters`), ``adjust`` and ``df_correction``."""
    cov_kwds = {} if cov_kwds is None else cov_kwds
    if not isinstance(cov_kwds, dict):
        raise TypeError(f"cov_kwds must be a dict, got {type(cov_kwds).__name__}")
    unknown = sorted(set(cov_kwds) - set(_COV_KWDS))
    if unknown:
        raise ValueError(f"cov_kwds: unknown key(s) {unknown}; accepted: {list(_COV_KWDS)}")
    adjust = _adjust_from(cov_kwds.get("adjust"), cov_kwds.get("use_correction"))
    return {"clusters": cluster_codes(model, cov_kwds.get("groups")), "adjust": adjust,
            "df_correction": bool(cov_kwds.get("df_correction", True))}


def _adjust_from(adjust, use_correction):
    """``adjust``, or statsmodels' ``use_correction`` (True: CR1S, False: CR0)."""
    if use_correction is not None and adjust is not None:
        raise ValueError("give adjust or statsmodels' use_correction, not both")
    if use_correction is not None:
        return "CR1S" if use_correction else "CR0"
    adjust = "CR1" if adjust is None else adjust
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {', '.join(ADJUSTMENTS)}, got {adjust!r}")
    return adjust


def _robust_results(results, options, use_t):
    """A copy of ``results`` whose covariance of β̂ is the cluster-robust one."""
    from .results import GLMMResults

    clusters, adjust = options["clusters"], options["adjust"]
    cov = robust_covariance(results, clusters, adjust)
    fit = dataclasses.replace(results.fit_record, vcov=cov, cov_type="cluster")
    new = GLMMResults(results.model, fit)
    new.use_t = results.use_t if use_t is None else bool(use_t)
    new.cov_model = model_covariance(results)
    new.n_groups = clusters.n_clusters
    new.cov_kwds = {"groups": clusters.label, "adjust": adjust, "n_groups": new.n_groups,
                    "df_correction": options["df_correction"],
                    "description": f"cluster-robust ({adjust}, {clusters.n_clusters} "
                                   f"clusters of {clusters.label})"}
    if options["df_correction"]:
        new.df_resid_inference = clusters.n_clusters - 1
    return new


def fit_covariance(results, options):
    """``GLMM.fit``'s last step: the robust covariance for ``cov_type="cluster"``
    and statsmodels' ``use_t``; ``options`` is the fit's :class:`FitOptions`."""
    if options.cov_type == "cluster":
        return _robust_results(results, options.cov_kwds, options.use_t)
    results.use_t = options.use_t
    return results


class RobustCovarianceMixin:
    """:meth:`get_robustcov_results` for :class:`GLMMResults`."""

    def get_robustcov_results(self, cov_type="cluster", groups=None, adjust=None,
                              use_t=None, use_correction=None, df_correction=True):
        """Results with the cluster-robust (sandwich) covariance of β̂.

        Parameters
        ----------
        cov_type : {"cluster"}
            Only clustered sandwiches are defined here (heteroscedasticity-only
            HC types ignore the dependence the random effects model).
        groups : None, str or array_like
            The clusters: default the outermost grouping factor (the one with
            the fewest levels among those that nest all others). A grouping
            factor's name, a column of the data, or one label per observation.
            The clusters must nest every grouping factor (crossed random
            effects have no cluster decomposition of the likelihood).
        adjust : {"CR1", "CR0", "CR1S", "CR2"}, optional
            Small-sample adjustment, default ``"CR1"`` = G/(G−1); ``"CR2"``
            (Bell-McCaffrey, clubSandwich's) only for the linear mixed model.
        use_t : bool, optional
            t inference (default: as the fit). With ``df_correction`` the
            degrees of freedom are G − 1, as statsmodels.
        use_correction : bool, optional
            statsmodels' flag: True is ``"CR1S"``, False ``"CR0"``.
        df_correction : bool
            Use G − 1 degrees of freedom for t and F inference.

        Returns
        -------
        GLMMResultsWrapper
            ``cov_type == "cluster"``, ``cov_kwds`` (``groups``, ``adjust``,
            ``n_groups``), ``cov_model`` (the model-based covariance of
            ``fe_params``); ``bse``, ``pvalues``, ``conf_int()``, ``t_test``,
            ``wald_test`` and ``summary()`` use the robust covariance.

        Notes
        -----
        See :mod:`statsmodels_glmm.robust` for the scores (of the Laplace or
        quadrature likelihood) and the adjustments.
        """
        from .results import GLMMResultsWrapper

        if cov_type != "cluster":
            raise ValueError(f"cov_type must be 'cluster', got {cov_type!r}")
        options = check_cluster_options(self.model, {"groups": groups, "adjust": adjust,
                                                     "use_correction": use_correction,
                                                     "df_correction": df_correction})
        return GLMMResultsWrapper(_robust_results(self, options, use_t))
