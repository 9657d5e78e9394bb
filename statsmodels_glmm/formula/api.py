"""Formula API: ``from statsmodels_glmm.formula.api import glmer``."""

from ..model import GLMM, glmer, glmer_nb

__all__ = ["glmer", "glmer_nb", "GLMM"]
