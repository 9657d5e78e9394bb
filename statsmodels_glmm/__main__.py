"""``python -m statsmodels_glmm``: see :mod:`statsmodels_glmm.cli`."""

import sys

from .cli import main

sys.exit(main())
