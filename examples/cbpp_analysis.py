"""
The cbpp analysis of the lme4 GLMM paper
========================================

Section 4.1 of the draft paper on lme4's GLMM machinery, in Python: a binomial GLMM
of contagious bovine pleuropneumonia (CBPP) incidence in 15 Ethiopian herds over four
periods, with the proportion as response and ``weights=size``; an observation-level
random effect added with ``update``; likelihood-ratio comparisons, single-term
deletions, Wald and profile confidence intervals, and the residual plots of the paper's
Figure 4.

The paper uses an extended ``cbpp2`` (treatment, average herd size) that lme4 does not
ship; this example follows the same steps on lme4's ``cbpp``. Run it as
``python examples/cbpp_analysis.py``.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm

from statsmodels_glmm import anova, datasets, glmer, plots

# %%
# The data
# --------
# One row per herd and period: ``size`` animals at risk, ``incidence`` new serological
# cases. ``prop`` is the incidence proportion and ``obs`` labels the observations, for
# an observation-level random effect below.

cbpp = datasets.load_cbpp()
cbpp["prop"] = cbpp["incidence"] / cbpp["size"]
cbpp["obs"] = [str(i) for i in range(len(cbpp))]
print(cbpp.head(8))

# %%
# Each line is a herd; the point sizes show the number of animals at risk.

fig, ax = plt.subplots(figsize=(6, 3.5))
for _, herd in cbpp.groupby("herd", observed=True):
    period = herd["period"].astype(int)
    ax.plot(period, herd["prop"], color="grey", lw=0.7, alpha=0.6)
    ax.scatter(period, herd["prop"], s=4 * herd["size"], alpha=0.6)
ax.set_xticks([1, 2, 3, 4])
ax.set_xlabel("period")
ax.set_ylabel("incidence / size")
ax.set_title("CBPP incidence by herd")
fig.tight_layout()

# %%
# The model with a random intercept per herd
# ------------------------------------------
# ``glmer`` takes lme4's formula; the proportion with ``weights=size`` is one of the
# three equivalent binomial forms (``cbind(incidence, size - incidence)`` is another),
# all giving the same fit and log-likelihood. The summary mirrors lme4's
# ``summary(glmer)``.

gm1 = glmer("prop ~ period + (1 | herd)", cbpp, family=sm.families.Binomial(),
            weights="size")
print(gm1.summary())

# %%
# Adding an observation-level random effect
# -----------------------------------------
# ``update`` refits with a new formula, as R's ``update``. With both the herd and the
# observation-level effect, the herd variance shrinks towards zero: the
# overdispersion was taken up by the herd term before.

gm2 = gm1.update("prop ~ period + (1 | herd) + (1 | obs)")
gm3 = gm1.update("prop ~ period + (1 | obs)")
print(gm2.varcorr())
print("gm2 singular:", gm2.is_singular())

# %%
# Model comparison
# ----------------
# Likelihood-ratio tests as ``anova(gm1, gm2, gm3)``. ``boundary=True`` halves the
# p-value of a variance tested at zero (a 50:50 mixture of χ²₀ and χ²₁). Models with
# the same number of parameters get no test.

with pd.option_context("display.width", 120, "display.max_columns", None):
    print(anova(gm1, gm2, gm3, names=["gm1", "gm2", "gm3"], boundary=True).round(4))

# %%
# Single-term deletions, as lme4's ``drop1(gm1, test="Chisq")``:

print(gm1.drop1().round(4))

# %%
# Confidence intervals
# --------------------
# Wald intervals (β ± 1.96·SE; none for the standard deviation, as lme4) and
# likelihood-profile intervals, which need a profile of the deviance and so take a
# few seconds. Profiles, and their plots, are the subject of
# :ref:`sphx_glr_auto_examples_random_effects_and_profiles.py`.

print("Wald intervals:")
print(gm1.confint("Wald").round(4))
print("\nProfile intervals:")
print(gm1.confint("profile").round(4))

# %%
# Residual plots (the paper's Figure 4)
# -------------------------------------
# Pearson residuals against the linear predictor, the scale-location plot, a normal QQ
# plot of the deviance residuals and the residuals by period: the functions of
# :mod:`statsmodels_glmm.plots` take an ``ax`` and return the figure.

fig, axes = plt.subplots(2, 2, figsize=(8, 6.5))
plots.plot_residuals(gm1, ax=axes[0, 0])
plots.plot_scale_location(gm1, ax=axes[0, 1])
plots.plot_qq(gm1, ax=axes[1, 0])
resid = np.asarray(gm1.resid_pearson)
periods = sorted(cbpp["period"].unique())
axes[1, 1].boxplot([resid[(cbpp["period"] == p).to_numpy()] for p in periods])
axes[1, 1].set_xticks(range(1, len(periods) + 1), [str(p) for p in periods])
axes[1, 1].set_xlabel("period")
axes[1, 1].set_ylabel("Pearson residual")
axes[1, 1].set_title("Residuals by period")
fig.tight_layout()

plt.show()
