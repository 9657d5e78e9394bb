"""The post-fit toolboxes of :class:`results.GLMMResults`, one mixin per module.

Each toolbox lives in its own module and reaches the results as a mixin listed
here, before statsmodels' base class in the results' bases: marginal means and
effects (:mod:`margins`), cluster-robust covariance (:mod:`robust`), statsmodels'
tables and tests (:mod:`statsmodels_compat`), case-deletion influence
(:mod:`influence`), simulation-based scaled residuals (:mod:`scaled_residuals`),
lme4's ``allFit`` (:mod:`allfit`), conditional prediction (:mod:`conditional_prediction`),
simulation (:mod:`simulation`), ``refit`` (:mod:`refit`), ``remove_data``
(:mod:`data_removal`) and compact pickles (:mod:`compact_state`).
"""

from .allfit import AllFitMixin
from .compact_state import CompactPicklingMixin
from .conditional_prediction import PredictionMixin
from .data_removal import DataRemovalMixin
from .influence import InfluenceMixin
from .margins import MarginsMixin
from .refit import RefitMixin
from .robust import RobustCovarianceMixin
from .scaled_residuals import ScaledResidualsMixin
from .simulation import SimulationMixin
from .statsmodels_compat import StatsmodelsCompatMixin

__all__ = ["PostFitMixin"]


class PostFitMixin(
    AllFitMixin,
    CompactPicklingMixin,
    DataRemovalMixin,
    PredictionMixin,
    SimulationMixin,
    RefitMixin,
    MarginsMixin,
    RobustCovarianceMixin,
    StatsmodelsCompatMixin,
    InfluenceMixin,
    ScaledResidualsMixin,
):
    """Every post-fit toolbox (see the module docstring)."""
