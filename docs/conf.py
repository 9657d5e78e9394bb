"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``."""

project = "statsmodels_glmm"
author = "statsmodels_glmm developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
autodoc_default_options = {"members": True, "undoc-members": False}
exclude_patterns = ["_build"]
html_theme = "alabaster"
suppress_warnings = ["autodoc.import_object"]
nitpicky = False
