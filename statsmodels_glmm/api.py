"""Public API: models, results and datasets."""

from . import datasets
from .model import GLMM, glmer
from .results import GLMMResults

__all__ = ["GLMM", "GLMMResults", "datasets", "glmer"]
