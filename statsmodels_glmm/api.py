"""Public API: models, results and datasets."""

from . import datasets
from .exceptions import BoundaryWarning, SingularFitWarning
from .inference import anova, bootstrap, drop1, profile
from .lme4_api import glmer, glmer_nb
from .model import GLMM
from .results import GLMMResults
from .simulation import simulate_formula

__all__ = [
    "GLMM",
    "GLMMResults",
    "BoundaryWarning",
    "SingularFitWarning",
    "anova",
    "bootstrap",
    "datasets",
    "drop1",
    "glmer",
    "glmer_nb",
    "profile",
    "simulate_formula",
]
