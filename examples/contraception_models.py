"""
The Contraception models cm1-cm6
================================

Section 4.2 of the draft paper on lme4's GLMM machinery: contraceptive use of 1934
women in 60 districts of Bangladesh (Steele, Diamond and Amin, 1996), with their
centred age, number of living children, and whether they live in an urban or rural
area. Six models ``cm1``-``cm6`` build up from a random intercept per district to a
random urban effect per district, and are compared by likelihood-ratio tests as
``anova(cm1, ..., cm6)``.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm

from statsmodels_glmm import anova, datasets, glmer, plots

data = datasets.load_contraception()
data["ch"] = pd.Categorical(np.where(data["livch"] != "0", "Y", "N"), categories=["N", "Y"])
print(data.head())
print("women per district: from", data.groupby("district", observed=True).size().min(),
      "to", data.groupby("district", observed=True).size().max())

# %%
# The data
# --------
# Smoothed proportions of contraceptive use against centred age, by number of living
# children, in rural and urban areas (the paper's first figure of this section). Use
# rises then falls with age, and women without children use contraception much less:
# the paper's motivation for the quadratic in age and the children indicator ``ch``.

lowess = sm.nonparametric.lowess
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
for ax, (urban, label) in zip(axes, [("N", "Rural"), ("Y", "Urban")]):
    for k, livch in enumerate(data["livch"].cat.categories):
        sub = data[(data["urban"] == urban) & (data["livch"] == livch)]
        fit = lowess((sub["use"] == "Y").astype(float), sub["age"], frac=0.8)
        ax.plot(fit[:, 0], fit[:, 1], color=f"C{k}", label=livch)
    ax.set_title(label)
    ax.set_xlabel("centred age")
    ax.set_ylim(0, 1)
axes[0].set_ylabel("proportion using contraception")
axes[1].legend(title="living children", fontsize=8)
fig.tight_layout()

# %%
# Six models
# ----------
# ``cm1`` has all four levels of ``livch``; ``cm2`` replaces them by ``ch``; ``cm3``
# adds the age-by-children interaction; ``cm4`` lets the urban effect vary by district
# (a correlated random slope); ``cm5`` and ``cm6`` write the urban/rural split of each
# district as a nested grouping ``urban:district`` instead.

formulas = {
    "cm1": "use ~ age + I(age**2) + urban + livch + (1 | district)",
    "cm2": "use ~ age + I(age**2) + urban + ch + (1 | district)",
    "cm3": "use ~ age * ch + I(age**2) + urban + (1 | district)",
    "cm4": "use ~ age * ch + I(age**2) + urban + (urban | district)",
    "cm5": "use ~ age * ch + I(age**2) + urban + (1 | urban:district) + (1 | district)",
    "cm6": "use ~ age * ch + I(age**2) + urban + (1 | urban:district)",
}
fits = {name: glmer(f, data) for name, f in formulas.items()}
print(fits["cm1"].summary())

# %%
# The model the comparison favours, with the correlated random urban effect:

print(fits["cm4"].summary())

# %%
# The fixed effects of all six models side by side:

coefs = pd.DataFrame({name: res.params for name, res in fits.items()})
order = list(dict.fromkeys(name for res in fits.values() for name in res.params.index))
print(coefs.loc[order].round(4).to_string(na_rep=""))

# %%
# Likelihood-ratio tests
# ----------------------
# As in R, ``anova`` sorts the models by their number of parameters and tests each
# against the previous one; models with as many parameters as the previous one get
# no test (Df 0).

for name, f in formulas.items():
    print(f"{name}: {f}")
table = anova(*fits.values(), names=list(fits))
with pd.option_context("display.width", 120, "display.max_columns", None):
    print(table.round(4))

# %%
# The district effects of cm4
# ---------------------------
# Conditional modes of the intercept and of the urban effect per district, with ±1.96
# conditional standard deviations. The strong negative correlation (−0.79) shows: where
# rural use is high, the urban excess is small.

cm4 = fits["cm4"]
fig, axes = plt.subplots(1, 2, figsize=(9, 9), sharey=False)
plots.plot_caterpillar(cm4, group="district", column="(Intercept)", ax=axes[0])
plots.plot_caterpillar(cm4, group="district", column="urban[T.Y]", ax=axes[1])
fig.tight_layout()

plt.show()
