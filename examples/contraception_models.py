"""The Contraception models cm1-cm6 of the lme4 GLMM paper (section 4.2) and
their likelihood-ratio table.

    python examples/contraception_models.py
"""

import numpy as np
import pandas as pd

from statsmodels_glmm import anova, datasets, glmer

data = datasets.load_contraception()
data["ch"] = pd.Categorical(np.where(data["livch"] != "0", "Y", "N"), categories=["N", "Y"])

formulas = {
    "cm1": "use ~ age + I(age**2) + urban + livch + (1 | district)",
    "cm2": "use ~ age + I(age**2) + urban + ch + (1 | district)",
    "cm3": "use ~ age * ch + I(age**2) + urban + (1 | district)",
    "cm4": "use ~ age * ch + I(age**2) + urban + (urban | district)",
    "cm5": "use ~ age * ch + I(age**2) + urban + (1 | urban:district) + (1 | district)",
    "cm6": "use ~ age * ch + I(age**2) + urban + (1 | urban:district)",
}
fits = {name: glmer(f, data) for name, f in formulas.items()}
print(fits["cm4"].summary())
for name, f in formulas.items():
    print(f"{name}: {f}")
table = anova(*fits.values(), names=list(fits))
with pd.option_context("display.width", 160, "display.max_columns", None):
    print(table.round(4))
