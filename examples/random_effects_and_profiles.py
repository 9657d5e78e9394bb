"""
Conditional modes and likelihood profiles
=========================================

After the fit of the ``cbpp`` model: the conditional modes of the herd effects with
their conditional standard deviations (lme4's ``ranef(condVar=TRUE)``, drawn as a
caterpillar plot and a normal QQ plot, the paper's Figure 5), then likelihood profiles
ζ of every parameter and the confidence intervals they give, next to Wald and
parametric-bootstrap intervals (the paper's Figure 6).
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm

from statsmodels_glmm import datasets, glmer, plots

cbpp = datasets.load_cbpp()
m1 = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
           family=sm.families.Binomial())

# %%
# Conditional modes
# -----------------
# ``ranef(condVar=True)`` gives, per grouping factor, the modes and their conditional
# standard deviations (lme4's ``postVar``); ``coef()`` adds the fixed effects.

modes = m1.ranef(condVar=True)["herd"]
print(modes.round(4))

# %%
# The caterpillar plot orders the herds by their mode, with ±1.96 conditional
# standard deviations; the QQ plot checks the modes against the normal distribution
# the model assumes for the random effects.

fig, axes = plt.subplots(1, 2, figsize=(9, 4))
plots.plot_caterpillar(m1, ax=axes[0])
plots.plot_ranef_qq(m1, ax=axes[1])
fig.tight_layout()

# %%
# Likelihood profiles
# -------------------
# ``profile()`` fixes one parameter at a time on a grid and re-optimizes the deviance
# over the others; ζ = sign(p − p̂)·√(dev(p) − dev(p̂)) is then plotted against p. A
# straight line means the deviance is quadratic in that parameter and the Wald interval
# is adequate; curvature, as for the herd standard deviation ``.sig01``, means it is
# not. The dotted lines at ±1.96 cut the profiles at the ends of the 95 % profile
# intervals.

prof = m1.profile()
fig = plots.plot_profile(prof, fig=plt.figure(figsize=(12, 2.8)))

# %%
# Intervals by three methods
# --------------------------
# Profile intervals invert the profiles; Wald intervals are β ± 1.96·SE (none for the
# standard deviation, as lme4); the parametric bootstrap refits the model to responses
# simulated from the fit (here only 60 replicates to keep the page quick: use 500 or
# more in practice).

intervals = {
    "Wald": m1.confint("Wald"),
    "profile": prof.confint(),
    "bootstrap": m1.confint("boot", nsim=60, seed=1),
}
table = pd.concat({k: v.iloc[:, :2] for k, v in intervals.items()}, axis=1)
with pd.option_context("display.width", 120, "display.max_columns", None):
    print(table.round(3))

# %%
# The same intervals side by side, with the estimates (the sd of the herd effect for
# ``.sig01``):

estimates = np.r_[m1.varcorr()["sdcor"].iloc[0], m1.fe_params]
names = list(table.index)
fig, ax = plt.subplots(figsize=(7, 3.6))
for k, (method, ci) in enumerate(intervals.items()):
    pos = np.arange(len(names)) + 0.22 * (k - 1)
    lo, hi = ci.iloc[:, 0].to_numpy(), ci.iloc[:, 1].to_numpy()
    ax.hlines(pos, lo, hi, color=f"C{k}", lw=2, label=method)
ax.plot(estimates, np.arange(len(names)), "k|", ms=12, label="estimate")
ax.set_yticks(np.arange(len(names)), names)
ax.axvline(0.0, color="grey", lw=0.8)
ax.invert_yaxis()
ax.legend(loc="upper left", fontsize=8)
ax.set_title("95 % confidence intervals, cbpp model")
fig.tight_layout()

plt.show()
