"""lme4's entry points: :func:`glmer` and :func:`glmer_nb` (``glmer.nb``).

A pandas (or polars/pyarrow) frame builds a :class:`model.GLMM`; a Dask
DataFrame is fitted partition by partition (:mod:`partitioned`).
"""

import warnings

import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ValueWarning

from .model import GLMM, _caller_namespace
from .partitioned.api import glmer_partitioned, is_partitioned_data
from .statsmodels_compat import model_arguments

__all__ = ["glmer", "glmer_nb"]


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
    model = GLMM.from_formula(formula, data, family=family, subset=subset, weights=weights,
                              offset=offset, missing=missing, eval_env=_caller_namespace(1),
                              estimate_alpha=True, **model_arguments(fit_kwargs))
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
    missing : {"drop", "exclude", "raise"}
        See :meth:`GLMM.from_formula`.
    start : dict, optional
        Starting values ``{"theta": ..., "beta": ..., "phi": ...}``.
    **fit_kwargs
        Passed to :meth:`GLMM.fit` (``reml``, ``cov_type``, ``maxfun`` ...), except
        statsmodels' ``exposure`` and ``var_weights``, passed to the model.

    Returns
    -------
    GLMMResultsWrapper
    """
    if is_partitioned_data(data):
        return glmer_partitioned(formula, data, family, nAGQ, weights, offset, subset, missing,
                                 start, eval_env=_caller_namespace(1), **fit_kwargs)
    model = GLMM.from_formula(formula, data, family=family, subset=subset, weights=weights,
                              offset=offset, missing=missing,
                              eval_env=_caller_namespace(1), **model_arguments(fit_kwargs))
    if model.is_lmm and "reml" not in fit_kwargs:
        # a verbatim port of glmer(family = gaussian) would get lmer's REML in R
        warnings.warn("family Gaussian with the identity link is the linear mixed model, "
                      "fitted here by maximum likelihood; lme4's glmer() hands it to lmer(), "
                      "which uses REML: pass reml=True for lmer's fit (reml=False to "
                      "confirm ML and silence this)", ValueWarning, stacklevel=2)
    return model.fit(nAGQ=nAGQ, start=start, **fit_kwargs)
