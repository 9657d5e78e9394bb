"""statsmodels_glmm: generalized linear mixed models by maximum likelihood.

lme4's ``glmer`` for Python: PIRLS for the conditional modes, then the Laplace
approximation (nAGQ=1), adaptive Gauss-Hermite quadrature (nAGQ>1) or the
nAGQ=0 shortcut, hosted in statsmodels' model and results classes.
"""

from . import datasets
from .exceptions import BoundaryWarning, SingularFitWarning
from .inference import anova
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
    "datasets",
    "glmer",
    "glmer_nb",
    "simulate_formula",
]
__version__ = "0.1.0"
