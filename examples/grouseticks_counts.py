"""
Counts: Poisson and negative binomial GLMMs
===========================================

The number of ticks on 403 red grouse chicks (Elston et al., 2001; lme4's
``grouseticks``), in 118 broods at 63 locations over three years, with the altitude
``HEIGHT`` of the location. Count data are often overdispersed relative to the
Poisson; two remedies are an observation-level random effect ``(1 | INDEX)`` and the
negative binomial, fitted by ``glmer_nb`` with its shape θ estimated by maximum
likelihood (as ``lme4::glmer.nb``, with a standard error that lme4 does not give).
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm

from statsmodels_glmm import datasets, glmer, glmer_nb

grouse = datasets.load_grouseticks()
grouse["sHEIGHT"] = (grouse["HEIGHT"] - grouse["HEIGHT"].mean()) / grouse["HEIGHT"].std()
print(grouse.head())
print(f"mean {grouse['TICKS'].mean():.2f}, variance {grouse['TICKS'].var():.1f}, "
      f"zeros {np.mean(grouse['TICKS'] == 0):.1%}")

# %%
# Tick counts against altitude (log scale), by year:

fig, ax = plt.subplots(figsize=(6, 3.5))
for k, (year, sub) in enumerate(grouse.groupby("YEAR", observed=True)):
    ax.scatter(sub["HEIGHT"], sub["TICKS"] + 1, s=10, alpha=0.6, color=f"C{k}",
               label=f"19{year}")
ax.set_yscale("log")
ax.set_xlabel("altitude HEIGHT (m)")
ax.set_ylabel("TICKS + 1")
ax.legend(title="year")
fig.tight_layout()

# %%
# A Poisson GLMM
# --------------
# Random intercepts for brood and location. The sum of squared Pearson residuals over
# the residual degrees of freedom is well above 1: the counts vary more than the
# Poisson allows.

pois = glmer("TICKS ~ YEAR + sHEIGHT + (1 | BROOD) + (1 | LOCATION)", grouse,
             family=sm.families.Poisson())
print(pois.summary())


def dispersion(res):
    return np.sum(np.asarray(res.resid_pearson) ** 2) / res.df_resid


print(f"Pearson dispersion: {dispersion(pois):.2f}")

# %%
# An observation-level random effect
# ----------------------------------
# ``(1 | INDEX)`` gives each chick its own effect: a lognormal-Poisson mixture. This is
# the model of lme4's ``?grouseticks`` example.

olre = glmer("TICKS ~ YEAR + sHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)", grouse,
             family=sm.families.Poisson())
print(olre.varcorr())

# %%
# The negative binomial
# ---------------------
# ``glmer_nb`` estimates the shape θ (variance μ + μ²/θ) jointly with the other
# parameters; the summary reports it with its standard error.

nb = glmer_nb("TICKS ~ YEAR + sHEIGHT + (1 | BROOD) + (1 | LOCATION)", grouse)
print(nb.summary())
print(f"theta = {nb.nb_theta:.3f} (SE {nb.nb_theta_se:.3f})")

# %%
# Comparing the three fits by their information criteria (the Poisson and the
# negative binomial are not nested in the sense of ``anova``, but their
# log-likelihoods are on the same scale):

table = pd.DataFrame({
    name: {"npar": round((res.aic - res.neg2llf) / 2),
           "AIC": res.aic, "BIC": res.bic, "-2logLik": res.neg2llf,
           "Pearson dispersion": dispersion(res)}
    for name, res in [("Poisson", pois), ("Poisson + (1|INDEX)", olre),
                      ("negative binomial", nb)]}).T
table["npar"] = table["npar"].astype(int)
print(table.round(2))

# %%
# A simulation check
# ------------------
# ``simulate(use_u=True)`` draws new responses given the fitted brood and location
# effects. Under the Poisson model the simulated data have too few zeros; under the
# negative binomial the observed share of zeros is typical. (Conditioning on an
# observation-level effect would reproduce each count, so that model is left out
# here.)

observed = np.mean(grouse["TICKS"] == 0)
zeros = {}
for name, res in [("Poisson", pois), ("negative binomial", nb)]:
    sims = res.simulate(nsim=300, seed=1, use_u=True)
    zeros[name] = (sims == 0).mean()
    print(f"{name}: share of zeros {zeros[name].median():.3f} (90 % of simulations in "
          f"{zeros[name].quantile(0.05):.3f}-{zeros[name].quantile(0.95):.3f}); "
          f"observed {observed:.3f}")

# %%
# The simulated shares of zeros, and the observed one:

fig, ax = plt.subplots(figsize=(6, 3.5))
bins = np.linspace(0.2, 0.38, 28)
for k, (name, share) in enumerate(zeros.items()):
    ax.hist(share, bins=bins, alpha=0.5, color=f"C{k}", label=name)
ax.axvline(observed, color="k", lw=2, label="observed")
ax.set_xlabel("share of zero counts")
ax.set_ylabel("simulations")
ax.legend()
fig.tight_layout()

plt.show()
