"""
Tweedie: continuous responses with exact zeros
==============================================

Rainfall, insurance claims, biomass: non-negative amounts with a spike at zero. The
Tweedie distribution with power 1 < p < 2 is a compound Poisson-gamma: a Poisson
number of gamma-distributed pieces, zero when there are none. Its variance is
Var(y) = φ μ^p. ``glmer`` fits it with ``family=sm.families.Tweedie(var_power=1.5)``
and estimates **both** the power p (1.5 is only the starting value) and the
dispersion φ by maximum likelihood, as glmmTMB's ``tweedie()`` does.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm

from statsmodels_glmm import glmer

# %%
# Simulated data
# --------------
# 60 sites with 15 measurements each; log μ = 0.5 + 0.4 x + b_site, b ~ N(0, 0.5²),
# and a Tweedie response with p = 1.6, φ = 1.2, drawn as a compound Poisson-gamma:
# N ~ Poisson(μ^(2−p) / (φ (2−p))) pieces, each gamma with shape (2−p)/(p−1) and scale
# φ (p−1) μ^(p−1).

rng = np.random.default_rng(42)
n_sites, per_site = 60, 15
site = np.repeat(np.arange(n_sites), per_site)
x = rng.normal(size=site.size)
mu = np.exp(0.5 + 0.4 * x + rng.normal(0, 0.5, n_sites)[site])
p_true, phi_true = 1.6, 1.2
pieces = rng.poisson(mu ** (2 - p_true) / (phi_true * (2 - p_true)))
shape = (2 - p_true) / (p_true - 1)
scale = phi_true * (p_true - 1) * mu ** (p_true - 1)
y = np.array([rng.gamma(shape, s, k).sum() for k, s in zip(pieces, scale)])
data = pd.DataFrame({"y": y, "x": x, "site": [f"s{i:02d}" for i in site]})
print(data.head())
print(f"{np.mean(y == 0):.1%} exact zeros; mean {y.mean():.2f}, max {y.max():.1f}")

# %%
# A spike at zero and a long right tail:

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.hist(y[y > 0], bins=50, color="C0", alpha=0.8, label="y > 0")
ax.bar(0, np.sum(y == 0), width=0.25, color="C3", label="y = 0")
ax.set_xlabel("y")
ax.set_ylabel("count")
ax.legend()
fig.tight_layout()

# %%
# The fit
# -------
# The summary reports the estimated power and dispersion under the fixed effects; the
# dispersion also appears in the random-effects table as ``Residual``.

res = glmer("y ~ x + (1 | site)", data, family=sm.families.Tweedie(var_power=1.5))
print(res.summary())
print(f"power p: {res.tweedie_power:.3f} (simulated with {p_true}); "
      f"dispersion φ: {res.dispersion:.3f} (simulated with {phi_true})")

# %%
# The mean-variance relation
# --------------------------
# Binning the observations by their fitted (conditional) mean, the log variance of y
# in a bin against the log of its mean follows a line of slope p: the variance
# function that the fit estimated, φ μ^p, drawn in black.

fitted = np.asarray(res.fittedvalues)
bins = pd.qcut(fitted, 15)
frame = pd.DataFrame({"y": y, "fitted": fitted, "bin": bins})
groups = frame.groupby("bin", observed=True).agg(mean=("fitted", "mean"), var=("y", "var"))
grid = np.linspace(groups["mean"].min(), groups["mean"].max(), 50)
fig, ax = plt.subplots(figsize=(5.5, 4))
ax.loglog(groups["mean"], groups["var"], "o", label="binned data")
ax.loglog(grid, res.dispersion * grid ** res.tweedie_power, "k-",
          label=rf"$\phi\,\mu^p$, p = {res.tweedie_power:.2f}")
ax.set_xlabel("fitted mean μ")
ax.set_ylabel("variance of y")
ax.legend()
fig.tight_layout()

plt.show()
