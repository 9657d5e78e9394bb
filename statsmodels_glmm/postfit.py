"""The post-fit toolboxes of :class:`results.GLMMResults`, one mixin per module.

Each toolbox lives in its own module and reaches the results as a mixin listed
here, before statsmodels' base class in the results' bases: marginal means and
effects (:mod:`margins`), cluster-robust covariance (:mod:`robust`), statsmodels'
tables and tests (:mod:`statsmodels_compat`), case-deletion influence
(:mod:`influence`) and simulation-based scaled residuals (:mod:`scaled_residuals`).
"""

from .influence import InfluenceMixin
from .margins import MarginsMixin
from .robust import RobustCovarianceMixin
from .scaled_residuals import ScaledResidualsMixin
from .statsmodels_compat import StatsmodelsCompatMixin

__all__ = ["PostFitMixin"]


class PostFitMixin(
    MarginsMixin,
    RobustCovarianceMixin,
    StatsmodelsCompatMixin,
    InfluenceMixin,
    ScaledResidualsMixin,
):
    """Every post-fit toolbox (see the module docstring)."""
