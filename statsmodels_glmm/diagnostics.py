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


def count_at_bound(kind, y, weights, mu):
    """Observations whose fitted mean is at the boundary of its range: a
    probability of 0 or 1 (``kind`` "probability"), or a mean of 0 for a zero
    count ("count"); 0 for other families."""
    if kind == "probability":
        return int(np.sum((mu < 1e-8) | (mu > 1 - 1e-8)))
    if kind == "count":
        return int(np.sum((mu < 1e-8) & (y == 0) & (weights > 0)))
    return 0


def warn_separation(response, mu, stacklevel=4):
    """Fitted means at the boundary of their range, (quasi-)complete separation:
    probabilities of 0 or 1 (binomial), or means of 0 for zero counts (counts: a
    cell of the design with only zeros, as R's "fitted rates numerically 0").
    Some estimates then diverge."""
    kind = response.kernel.separation
    warn_separation_count(kind, count_at_bound(kind, response.y, response.weights, mu),
                          stacklevel + 1)


def warn_separation_count(kind, count, stacklevel=4):
    """The warning of :func:`warn_separation`, given :func:`count_at_bound`."""
    if not count:
        return
    what = ("fitted probabilities of 0 or 1" if kind == "probability"
            else "fitted means of 0 for zero counts")
    warnings.warn(
        f"{what} for {count} observation(s): "
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


def level_weight_sums(kind, y, w, refs, n_levels):
    """Per level: the weight of responses above the lower bound, below the upper
    bound, and in all (sums, so they add over partitions of the rows)."""
    y = y if kind == "probability" else np.minimum(y, 1.0)
    return (np.bincount(refs, weights=(y > 0) * w, minlength=n_levels),
            np.bincount(refs, weights=(y < 1) * w, minlength=n_levels),
            np.bincount(refs, weights=w, minlength=n_levels))


def _levels_at_bound(kind, sums):
    """Per level: all responses at the lower bound, at the upper bound
    (probabilities only), and the total weight."""
    above, below, trials = sums
    high = below == 0 if kind == "probability" else np.zeros(trials.shape, dtype=bool)
    return above == 0, high, trials


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
    sums = [level_weight_sums(kind, response.y, response.weights, term.refs, term.n_levels)
            for term in random_effects.terms]
    warn_diverging_sums(kind, response.link, random_effects, theta, sums, limit,
                        stacklevel + 1)


def warn_diverging_sums(kind, link, random_effects, theta, sums, limit=SD_LIMIT,
                        stacklevel=4):
    """The warning of :func:`warn_diverging`, given each term's
    :func:`level_weight_sums` (``kind`` the family's ``separation``)."""
    re = random_effects
    # SDs of the effect of one unit of scale of each covariate (θ · scale)
    for term, T, term_sums in zip(re.terms, re.factors(np.asarray(theta) * re.theta_scale()),
                                  sums):
        sd = np.sqrt(np.diag(T @ T.T))
        low, high, trials = _levels_at_bound(kind, term_sums)
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
            f"is estimated as {sd.max():.3g} on the {link} scale: the variance is "
            f"diverging ({int(np.sum(low | high))} of {term.n_levels} levels have "
            f"{bound}, so the likelihood keeps increasing with it); the estimates and "
            "standard errors are not meaningful", BoundaryWarning, stacklevel=stacklevel)
