"""Warnings about the fitted model: what lme4 warns about, without its false
positives.

- :func:`warn_separation`: fitted means at the boundary of their range;
- :func:`warn_singular`: lme4's "boundary (singular) fit";
- :func:`warn_diverging`: a random-effect variance that grows without bound.

The family decides what a boundary is (its kernel's ``separation`` kind), so
no function here tests a family by name.
"""

import warnings

import numpy as np
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from .exceptions import BoundaryWarning, SingularFitWarning

__all__ = ["warn_separation", "warn_singular", "warn_diverging", "SD_LIMIT"]

# A random-effect SD above this on a logit/probit/log scale (odds or rates varying by
# e^20 between levels one SD apart) only arises when the variance diverges.
SD_LIMIT = 10.0


def warn_separation(response, mu, stacklevel=4):
    """Fitted means at the boundary of their range, (quasi-)complete separation:
    probabilities of 0 or 1 (binomial), or means of 0 for zero counts (counts: a
    cell of the design with only zeros, as R's "fitted rates numerically 0").
    Some estimates then diverge."""
    kind = response.kernel.separation
    if kind == "probability":
        at_bound = (mu < 1e-8) | (mu > 1 - 1e-8)
        what = "fitted probabilities of 0 or 1"
    elif kind == "count":
        at_bound = (mu < 1e-8) & (response.y == 0) & (response.weights > 0)
        what = "fitted means of 0 for zero counts"
    else:
        return
    if np.any(at_bound):
        warnings.warn(
            f"{what} for {int(at_bound.sum())} observation(s): "
            "(quasi-)complete separation; the estimates of the separating effects "
            "diverge and their standard errors are not meaningful",
            PerfectSeparationWarning, stacklevel=stacklevel)


def singular_terms(random_effects, theta, tol=1e-4):
    """Labels of the terms whose covariance is singular (lme4's ``isSingular`` rule
    on θ in the units of the covariates, see ``RandomEffects.theta_scale``)."""
    scaled = np.asarray(theta) * random_effects.theta_scale()
    out = []
    for term, sl in zip(random_effects.terms, random_effects.theta_slices):
        if np.any(scaled[sl][term.theta_lower() == 0] < tol):
            out.append(f"({term.expr} | {term.group_name})")
    return out


def warn_singular(random_effects, theta, tol=1e-4, stacklevel=4):
    """lme4's "boundary (singular) fit", naming the terms."""
    singular = singular_terms(random_effects, theta, tol)
    if singular:
        warnings.warn(
            f"boundary (singular) fit: the random-effects covariance of "
            f"{', '.join(singular)} is singular (a standard deviation estimated as 0 "
            "or a correlation of ±1); see is_singular()", SingularFitWarning,
            stacklevel=stacklevel)


def _levels_at_bound(response, term):
    """Per level of ``term``: all responses at the lower bound, and at the upper
    bound (probabilities only), and the total weight."""
    probability = response.kernel.separation == "probability"
    y = response.y if probability else np.minimum(response.y, 1.0)
    w = response.weights
    low = np.bincount(term.refs, weights=(y > 0) * w, minlength=term.n_levels) == 0
    high = np.bincount(term.refs, weights=(y < 1) * w, minlength=term.n_levels) == 0
    if not probability:  # counts have no upper bound
        high[:] = False
    trials = np.bincount(term.refs, weights=w, minlength=term.n_levels)
    return low, high, trials


def warn_diverging(response, random_effects, theta, limit=SD_LIMIT, stacklevel=4):
    """A random-effect SD beyond any plausible size on a logit/probit/log scale.

    When every level of a grouping factor has all-0 or all-1 responses (or
    all-zero counts) the likelihood keeps increasing as the variance grows; the
    optimizer then stops at an arbitrary, huge SD (lme4 reports such fits as
    converged). Counts the levels whose responses sit at a bound.
    """
    kind = response.kernel.separation
    if kind is None:
        return
    re = random_effects
    # SDs of the effect of one unit of scale of each covariate (θ · scale)
    for term, T in zip(re.terms, re.factors(np.asarray(theta) * re.theta_scale())):
        sd = np.sqrt(np.diag(T @ T.T))
        low, high, trials = _levels_at_bound(response, term)
        # every level all-0 or all-1 (one with two or more trials), with an
        # intercept in the term: the likelihood rises without bound in its SD
        # whatever SD the approximation stopped at (8.4 with two observations
        # per level), so this is exact where the SD limit is a heuristic
        separated = (kind == "probability" and "(Intercept)" in term.cnames
                     and np.all((low | high)[trials > 0]) and np.any(trials > 1))
        if not (separated or np.any(sd > limit)):
            continue
        bound = "all-0 or all-1 responses" if kind == "probability" else "only zeros"
        warnings.warn(
            f"the random-effect standard deviation of ({term.expr} | {term.group_name}) "
            f"is estimated as {sd.max():.3g} on the {response.link} scale: the variance is "
            f"diverging ({int(np.sum(low | high))} of {term.n_levels} levels have "
            f"{bound}, so the likelihood keeps increasing with it); the estimates and "
            "standard errors are not meaningful", BoundaryWarning, stacklevel=stacklevel)
