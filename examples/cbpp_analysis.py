"""The cbpp analysis of the lme4 GLMM paper (section 4.1), in Python.

The paper uses an extended ``cbpp2`` (treatment, average herd size) that lme4
does not ship; this script follows the same steps on lme4's ``cbpp``: a binomial
GLMM with the proportion as response and ``weights=size``, an observation-level
random effect added with ``update``, model comparison, drop1, Wald and profile
confidence intervals, and the Laplace diagnostics of the paper's Figures 1-2.

    python examples/cbpp_analysis.py
"""

import numpy as np
import pandas as pd
import statsmodels.api as sm

from statsmodels_glmm import anova, datasets, glmer, plots

cbpp = datasets.load_cbpp()
cbpp["prop"] = cbpp["incidence"] / cbpp["size"]
cbpp["obs"] = [str(i) for i in range(len(cbpp))]

gm1 = glmer("prop ~ period + (1 | herd)", cbpp, family=sm.families.Binomial(),
            weights="size")
print(gm1.summary())

# herd- and observation-level random effects, and observation-level only
gm2 = gm1.update("prop ~ period + (1 | herd) + (1 | obs)")
gm3 = gm1.update("prop ~ period + (1 | obs)")
print("\nVariance components with both random effects:")
print(gm2.varcorr())
print("gm2 singular:", gm2.is_singular())

print("\nLikelihood-ratio comparison (boundary-corrected p-values):")
with pd.option_context("display.width", 160, "display.max_columns", None):
    print(anova(gm1, gm2, gm3, names=["gm1", "gm2", "gm3"], boundary=True).round(4))

print("\nSingle term deletions (gm1):")
print(gm1.drop1().round(4))

print("\nWald intervals:")
print(gm1.confint("Wald").round(4))
print("\nProfile intervals:")
print(gm1.confint("profile").round(4))

# The Laplace diagnostics (paper Figures 1 and 2): with one scalar term, each
# herd's integrand against the standard normal, and t(z) against z.
z, t, _ = plots.laplace_integrands(gm1)
worst = np.max(np.abs(t - z), axis=1)
print(f"\nLaplace diagnostic: max |t(z) - z| over |z| <= 3 per herd: "
      f"median {np.median(worst):.3f}, max {worst.max():.3f}")
