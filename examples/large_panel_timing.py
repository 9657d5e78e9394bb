"""
A large panel: 200 000 rows, with timings
=========================================

A simulated Bernoulli panel of the size that makes R users wait: 200 000 binary
responses from 2 000 groups of 100, y ~ Bernoulli(logit⁻¹(−0.5 + 0.8 x + b_g)),
b_g ~ N(0, 0.7²) (the benchmark model M5 of ``benchmarks/run.py``). The random-effects
design is sparse and PIRLS works on its blocks, so a fit takes seconds; the timings
below are wall-clock times on the machine that built this page.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from statsmodels_glmm import glmer

# %%
# The data
# --------

rng = np.random.default_rng(1)
n, n_groups = 200_000, 2_000
g = np.repeat(np.arange(n_groups), n // n_groups)
x = rng.normal(size=n)
b_true = rng.normal(0, 0.7, n_groups)
eta = -0.5 + 0.8 * x + b_true[g]
panel = pd.DataFrame({
    "y": (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float),
    "x": x,
    "g": pd.Categorical([f"g{v:04d}" for v in g]),
})
print(panel.shape)
print(panel.head())

# %%
# Laplace (nAGQ = 1) and the nAGQ = 0 shortcut
# --------------------------------------------
# ``nAGQ=0`` optimizes over θ only, with β from PIRLS; the default Laplace fit starts
# from it, as lme4 does.

timings = {}
fits = {}
for nagq in (0, 1):
    start = time.perf_counter()
    fits[nagq] = glmer("y ~ x + (1 | g)", panel, nAGQ=nagq)
    timings[f"nAGQ={nagq}"] = time.perf_counter() - start
res = fits[1]
print(res.summary())
for label, seconds in timings.items():
    print(f"{label}: {seconds:.1f} s")

# %%
# With this much data per group the two fits agree closely:

comparison = pd.DataFrame({
    "nAGQ=0": pd.concat([fits[0].params, fits[0].theta]),
    "nAGQ=1": pd.concat([res.params, res.theta]),
    "simulated": [-0.5, 0.8, 0.7],
})
print(comparison.round(4))

# %%
# Conditional modes against the simulated effects
# -----------------------------------------------
# Each of the 2 000 groups has 100 binary responses: the modes track the true effects
# closely, shrunk slightly towards zero.

modes = res.ranef()["g"]["(Intercept)"].to_numpy()
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.plot(b_true, modes, ".", ms=2, alpha=0.5)
lims = [b_true.min(), b_true.max()]
ax.plot(lims, lims, color="k", lw=1, label="identity")
ax.set_xlabel("simulated b_g")
ax.set_ylabel("conditional mode")
ax.set_title(f"2 000 groups, correlation {np.corrcoef(b_true, modes)[0, 1]:.3f}")
ax.legend()
fig.tight_layout()

plt.show()
