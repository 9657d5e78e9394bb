"""Coverage of Wald and profile intervals for a random-intercept logit (simulation).

    python benchmarks/interval_coverage.py --nsim 300 --groups 30 --per-group 10 --seed 1

Data: y ~ Bernoulli(plogis(β0 + β1 x + b_g)), b_g ~ N(0, σ²), with β0 = −0.5,
β1 = 1, σ = 0.8 and x ~ N(0, 1). For each simulated data set the model
``y ~ x + (1 | g)`` is fitted by Laplace, and the 95% Wald and profile intervals
of β0, β1 (and the profile interval of σ) are checked against the truth. Prints
the coverage with its Monte Carlo standard error, the mean interval widths and
the number of failed fits.
"""

import argparse
import warnings

import numpy as np
import pandas as pd

from statsmodels_glmm import glmer

TRUTH = {"Intercept": -0.5, "x": 1.0, ".sig01": 0.8}


def simulate(rng, groups, per_group):
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    b = rng.normal(0, TRUTH[".sig01"], groups)
    eta = TRUTH["Intercept"] + TRUTH["x"] * x + b[g]
    y = (rng.uniform(size=g.size) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{v:03d}" for v in g]})


def one_replicate(rng, groups, per_group):
    data = simulate(rng, groups, per_group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = glmer("y ~ x + (1 | g)", data)
        wald = res.confint("Wald")
        prof = res.confint("profile")
    out = {}
    for name, truth in TRUTH.items():
        for method, ci in (("Wald", wald), ("profile", prof)):
            lo, hi = ci.loc[name].iloc[0], ci.loc[name].iloc[1]
            if np.isnan(lo) and np.isnan(hi):
                continue
            lo = -np.inf if np.isnan(lo) else lo
            hi = np.inf if np.isnan(hi) else hi
            out[(name, method, "covered")] = float(lo <= truth <= hi)
            out[(name, method, "width")] = hi - lo
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nsim", type=int, default=300)
    parser.add_argument("--groups", type=int, default=30)
    parser.add_argument("--per-group", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows, failures = [], 0
    for _ in range(args.nsim):
        try:
            rows.append(one_replicate(rng, args.groups, args.per_group))
        except Exception:  # counted, not hidden
            failures += 1
    frame = pd.DataFrame(rows)
    table = []
    for name in TRUTH:
        for method in ("Wald", "profile"):
            key = (name, method, "covered")
            if key not in frame:
                continue
            cov = frame[key].mean()
            n = frame[key].notna().sum()
            table.append({"parameter": name, "method": method, "coverage": cov,
                          "mc_se": np.sqrt(cov * (1 - cov) / n),
                          "mean_width": frame[(name, method, "width")].replace(
                              np.inf, np.nan).mean(), "n": n})
    print(f"{args.nsim} data sets, {args.groups} groups x {args.per_group}, "
          f"{failures} failed fits")
    print(pd.DataFrame(table).to_string(index=False, float_format="{:.3f}".format))


if __name__ == "__main__":
    main()
