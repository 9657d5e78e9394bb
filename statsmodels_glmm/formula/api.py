"""Formula API: ``from statsmodels_glmm.formula.api import glmer``."""

from ..model import GLMM, glmer

__all__ = ["glmer", "GLMM"]
