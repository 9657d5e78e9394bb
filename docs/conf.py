"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``.

The example gallery (``docs/auto_examples``, generated, not in git) is built by
sphinx-gallery from ``examples/``: every script is executed and its printed output and
matplotlib figures are shown under its code.
"""

from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "statsmodels_glmm"
author = "statsmodels_glmm developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "glmm_docs",
]
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
autodoc_default_options = {"members": True, "undoc-members": False}
exclude_patterns = ["_build"]
suppress_warnings = ["autodoc.import_object"]
nitpicky = False

# -- the example gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py$",           # execute every example, not only plot_*.py
    "within_subsection_order": "glmm_docs.ExampleOrder",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "abort_on_example_error": True,
    # each example gets a time budget: a warning (an error under -W) past 60 s, and
    # stopped past 180 s; see docs/_ext/glmm_docs.py
    "reset_modules": ("matplotlib", "glmm_docs.example_time_budget"),
    "reset_modules_order": "both",
    "capture_repr": (),                        # examples print() what a user sees
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_signature": False,
    "min_reported_time": 1,
}

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "statsmodels_glmm"
html_static_path = ["_static"]
html_css_files = ["glmm.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "header_links_before_dropdown": 4,
    "show_toc_level": 2,
}
html_sidebars = {"auto_examples/index": []}
html_show_sourcelink = False
