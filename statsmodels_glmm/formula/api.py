"""Formula API: ``from statsmodels_glmm.formula.api import glmer``."""

from ..lme4_api import glmer, glmer_nb
from ..model import GLMM

__all__ = ["glmer", "glmer_nb", "GLMM"]
