"""Warnings of this package, subclasses of statsmodels' warning classes so that
``warnings.simplefilter("ignore", ConvergenceWarning)`` also covers them."""

from statsmodels.tools.sm_exceptions import ConvergenceWarning

__all__ = ["SingularFitWarning", "BoundaryWarning"]


class BoundaryWarning(ConvergenceWarning):
    """The maximum likelihood estimate lies on the boundary of the parameter space
    (a variance that is 0 or diverges, a negative binomial shape that is infinite)."""


class SingularFitWarning(BoundaryWarning):
    """lme4's "boundary (singular) fit": a random-effects covariance matrix is
    singular (a standard deviation estimated as 0, or a correlation of ±1)."""
