"""Benchmark statsmodels_glmm side by side with lme4, glmmTMB and mixedlm.

    python benchmarks/run.py                 # all models, 3 repeats, every peer present
    python benchmarks/run.py --models M1 M3 --repeats 5
    python benchmarks/run.py --no-r          # without lme4 and glmmTMB
    python benchmarks/run.py --no-mixedlm    # without mixedlm
    python benchmarks/run.py --scaling       # Bernoulli n = 1e4 .. 1e6, time and memory
    python benchmarks/run.py --profile       # profile confint on cbpp vs lme4

Models (as in the project's peer measurements): M1 cbpp; M2 Contraception
``(urban | district)``; M3 grouseticks, three scalar terms; M4 VerbAgg crossed
``(1|id) + (1|item)``; M5 simulated Bernoulli n=200 000, 2000 groups; M6 simulated
crossed Poisson n=50 000, 500 x 100 levels. Simulated data are generated here
with fixed seeds and handed to R as CSV, so every implementation fits the same rows.

For every repeat the runner fits our model, then (when ``Rscript`` is on the PATH)
runs one R process that times lme4's and glmmTMB's fits of the same model
(timed inside R, after a warm-up fit), then (when the optional ``mixedlm`` package,
the ``bench`` extra, is installed) one Python process that times mixedlm's
``glmer`` on the same rows after a warm-up fit of cbpp, alternating. It prints per
model the median times, our time divided by each peer's and by the fastest peer's,
−2 log-likelihood differences (ours minus theirs: negative means a better optimum;
``d2ll_best`` against the best peer must stay below 1e-6), our number of deviance
evaluations and our peak memory (tracemalloc, numpy allocations included, measured
in a separate untimed run). A peer that is absent, or cannot fit a model, shows "-"
(the reason is printed).
"""

import argparse
import importlib.util
import json
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import statsmodels.api as sm

from statsmodels_glmm import datasets, glmer

HERE = Path(__file__).parent


def _contraception():
    data = datasets.load_contraception()
    data["ch"] = pd.Categorical(np.where(data["livch"] != "0", "Y", "N"), categories=["N", "Y"])
    return data


def _grouseticks():
    data = datasets.load_grouseticks()
    data["sHEIGHT"] = (data["HEIGHT"] - data["HEIGHT"].mean()) / data["HEIGHT"].std()
    return data


def _verbagg():
    return datasets.load_verbagg()


def simulate_bernoulli(n=200_000, groups=2000, n_fixed=1, seed=1):
    """M5: y ~ Bern(plogis(-0.5 + 0.8 x + b_g)), b_g ~ N(0, 0.7²)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    X = rng.normal(size=(n, n_fixed))
    b = rng.normal(0, 0.7, groups)
    beta = np.r_[0.8, np.zeros(n_fixed - 1)] if n_fixed > 1 else np.array([0.8])
    eta = -0.5 + X @ beta + b[g]
    frame = pd.DataFrame(X, columns=[f"x{i}" if i else "x" for i in range(n_fixed)])
    frame["g"] = pd.Categorical([f"g{v:05d}" for v in g])
    frame["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    return frame


def simulate_crossed_poisson(n=50_000, na=500, nb=100, seed=2):
    """M6: y ~ Pois(exp(0.3 + 0.5 x + a_i + b_j)), SDs 0.5 and 0.3."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, na, n)
    b = rng.integers(0, nb, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.5, na)[a] + rng.normal(0, 0.3, nb)[b]
    return pd.DataFrame({"x": x, "a": pd.Categorical([f"a{v:03d}" for v in a]),
                         "b": pd.Categorical([f"b{v:03d}" for v in b]),
                         "y": rng.poisson(np.exp(eta)).astype(float)})


MODELS = {
    "M1": ("cbind(incidence, size - incidence) ~ period + (1 | herd)",
           "cbind(incidence, size - incidence) ~ period + (1 | herd)",
           datasets.load_cbpp, "binomial"),
    "M2": ("use ~ age * ch + I(age**2) + urban + (urban | district)",
           "use ~ age * ch + I(age^2) + urban + (urban | district)", _contraception, "binomial"),
    "M3": ("TICKS ~ YEAR + sHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
           "TICKS ~ YEAR + sHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
           _grouseticks, "poisson"),
    "M4": ("r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
           "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", _verbagg, "binomial"),
    "M5": ("y ~ x + (1 | g)", "y ~ x + (1 | g)", simulate_bernoulli, "binomial"),
    "M6": ("y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 | a) + (1 | b)",
           simulate_crossed_poisson, "poisson"),
}

_FAMILY = {"binomial": sm.families.Binomial, "poisson": sm.families.Poisson}

# mixedlm's formula parser knows neither cbind() nor "^": M1 is the proportion with
# the trials as prior weights (the same binomial likelihood, normalizing constant
# included), M2 spells the square as our formula does.
MIXEDLM_MODELS = {
    "M1": ("prop ~ period + (1 | herd)", "size"),
    "M2": (MODELS["M2"][0], None),
    "M3": (MODELS["M3"][0], None),
    "M4": (MODELS["M4"][0], None),
    "M5": (MODELS["M5"][0], None),
    "M6": (MODELS["M6"][0], None),
}
PEERS = ("lme4", "glmmTMB", "mixedlm")

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(glmmTMB); library(jsonlite)})
args <- commandArgs(TRUE)
data <- read.csv(args[1], stringsAsFactors = TRUE)
factors <- fromJSON(args[4])
for (nm in names(factors)) data[[nm]] <- factor(as.character(data[[nm]]), levels = factors[[nm]])
form <- as.formula(args[2]); fam <- get(args[3])()
data(cbpp, package = "lme4")
invisible(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial))
t0 <- proc.time()[["elapsed"]]; m <- glmer(form, data, family = fam)
t_lme4 <- proc.time()[["elapsed"]] - t0
t0 <- proc.time()[["elapsed"]]; tm <- glmmTMB(form, data, family = fam)
t_tmb <- proc.time()[["elapsed"]] - t0
cat(toJSON(list(lme4 = t_lme4, glmmTMB = t_tmb, lme4_neg2ll = -2 * as.numeric(logLik(m)),
                glmmTMB_neg2ll = -2 * as.numeric(logLik(tm)),
                lme4_fevals = m@optinfo$feval), auto_unbox = TRUE, digits = NA))
"""


def fit_ours(formula, data, family):
    start = time.perf_counter()
    res = glmer(formula, data, family=_FAMILY[family]())
    elapsed = time.perf_counter() - start
    nfev = res.mle_retvals["stage1_nfev"] + res.mle_retvals["stage2_nfev"]
    return elapsed, res.neg2llf, nfev


def peak_memory_mb(name, n=None):
    """Peak memory allocated during one fit (tracemalloc, numpy included), in a fresh
    process and untimed: tracemalloc slows numpy allocations several-fold."""
    out = subprocess.run([sys.executable, __file__, "--memory-probe", name, str(n or 0)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _memory_probe(name, n):
    import tracemalloc

    if n:
        data = simulate_bernoulli(n, max(n // 100, 10), n_fixed=10, seed=3)
        formula = "y ~ x + " + " + ".join(f"x{i}" for i in range(1, 10)) + " + (1 | g)"
        family = "binomial"
    else:
        formula, _, load, family = MODELS[name]
        data = load()
    tracemalloc.start()
    fit_ours(formula, data, family)
    print(tracemalloc.get_traced_memory()[1] / 2**20)


def fit_r(workdir, formula, data, family):
    csv = workdir / "data.csv"
    if not csv.exists():
        data.to_csv(csv, index=False)
    factors = {c: [str(v) for v in data[c].cat.categories] for c in data.columns
               if isinstance(data[c].dtype, pd.CategoricalDtype)}
    script = workdir / "fit.R"
    script.write_text(R_SCRIPT)
    out = subprocess.run(["Rscript", str(script), str(csv), formula, family,
                          json.dumps(factors)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def have_mixedlm():
    """Whether the optional peer ``mixedlm`` (the ``bench`` extra) is installed."""
    return importlib.util.find_spec("mixedlm") is not None


def _mixedlm_fit(name):
    import mixedlm

    formula, weights = MIXEDLM_MODELS[name]
    family = {"binomial": mixedlm.families.Binomial,
              "poisson": mixedlm.families.Poisson}[MODELS[name][3]]()
    data = MODELS[name][2]()
    if name == "M1":
        data["prop"] = data["incidence"] / data["size"]
    w = None if weights is None else data[weights].to_numpy(float)
    start = time.perf_counter()
    res = mixedlm.glmer(formula, data, family=family, weights=w)
    return time.perf_counter() - start, -2 * float(res.logLik().value)


def _mixedlm_probe(name):
    """Time mixedlm's fit of one model in this (fresh) process, after a warm-up fit
    of cbpp as the R script does, and print the result as JSON."""
    try:
        _mixedlm_fit("M1")
        elapsed, neg2ll = _mixedlm_fit(name)
        out = {"mixedlm": elapsed, "mixedlm_neg2ll": neg2ll}
    except Exception as exc:  # noqa: BLE001 - a peer's failure is a result to report
        out = {"mixedlm_error": f"{type(exc).__name__}: {exc}"[:200]}
    print(json.dumps(out))


def fit_mixedlm(name):
    """mixedlm's time and −2 log L for one model, from a separate process so that
    its native thread pools and imports do not touch our timings."""
    out = subprocess.run([sys.executable, __file__, "--mixedlm-probe", name],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peer_columns(row, t, neg2ll, peers):
    """Add each peer's median time, our ratio to it and the −2 log L differences."""
    best_t, best_ll = {}, []
    for peer in PEERS:
        runs = [p for p in peers if peer in p]
        if not runs:
            row[f"{peer}_s"] = row[f"ratio_{peer}"] = row[f"d2ll_{peer}"] = np.nan
            continue
        tp = float(np.median([p[peer] for p in runs]))
        row[f"{peer}_s"], row[f"ratio_{peer}"] = tp, t / tp
        row[f"d2ll_{peer}"] = neg2ll - runs[-1][f"{peer}_neg2ll"]
        best_t[peer] = tp
        best_ll.append(runs[-1][f"{peer}_neg2ll"])
    if best_t:
        fastest = min(best_t, key=best_t.get)
        row["fastest"], row["ratio_fastest"] = fastest, t / best_t[fastest]
        row["d2ll_best"] = neg2ll - min(best_ll)
    errors = {p["mixedlm_error"] for p in peers if "mixedlm_error" in p}
    if errors:
        row["mixedlm_error"] = "; ".join(sorted(errors))


def run_model(name, repeats, with_r, with_mixedlm):
    formula, r_formula, load, family = MODELS[name]
    data = load()
    fit_ours(formula, data, family)  # warm-up (imports, caches)
    ours, peers = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            ours.append(fit_ours(formula, data, family))
            peer = fit_r(Path(tmp), r_formula, data, family) if with_r else {}
            if with_mixedlm:
                peer.update(fit_mixedlm(name))
            peers.append(peer)
    t = float(np.median([o[0] for o in ours]))
    row = {"model": name, "ours_s": t, "neg2ll": ours[-1][1], "nfev": ours[-1][2],
           "peak_MB": peak_memory_mb(name)}
    _peer_columns(row, t, ours[-1][1], peers)
    if with_r:
        row["lme4_fevals"] = peers[-1]["lme4_fevals"]
    return row


R_PROFILE = r"""
suppressPackageStartupMessages(library(lme4))
data(cbpp)
m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
invisible(confint(m, method = "Wald"))
t0 <- proc.time()[["elapsed"]]; ci <- confint(m, method = "profile")
cat(proc.time()[["elapsed"]] - t0, "\n")
"""


def profile_timing(repeats=3, with_r=True):
    """Profile confidence intervals on cbpp: ours vs lme4's ``confint(m)``."""
    formula = MODELS["M1"][0]
    res = glmer(formula, datasets.load_cbpp())
    res.confint("profile")  # warm-up
    ours, theirs = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        res.confint("profile")
        ours.append(time.perf_counter() - start)
        if with_r:
            with tempfile.TemporaryDirectory() as tmp:
                script = Path(tmp) / "profile.R"
                script.write_text(R_PROFILE)
                out = subprocess.run(["Rscript", str(script)], capture_output=True, text=True,
                                     check=True)
                theirs.append(float(out.stdout.split()[-1]))
    row = {"task": "cbpp profile confint", "ours_s": float(np.median(ours))}
    if theirs:
        row["lme4_s"] = float(np.median(theirs))
        row["ratio_lme4"] = row["ours_s"] / row["lme4_s"]
    return row


def scaling(sizes=(10_000, 100_000, 1_000_000)):
    rows = []
    for n in sizes:
        groups = max(n // 100, 10)
        data = simulate_bernoulli(n, groups, n_fixed=10, seed=3)
        rhs = " + ".join(["x"] + [f"x{i}" for i in range(1, 10)])
        t, neg2ll, nfev = fit_ours(f"y ~ {rhs} + (1 | g)", data, "binomial")
        rows.append({"n": n, "groups": groups, "p": 11, "seconds": t,
                     "peak_MB": peak_memory_mb("scaling", n), "nfev": nfev, "neg2ll": neg2ll})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-r", action="store_true", help="skip lme4 and glmmTMB")
    parser.add_argument("--no-mixedlm", action="store_true", help="skip mixedlm")
    parser.add_argument("--scaling", action="store_true", help="Bernoulli n = 1e4 .. 1e6")
    parser.add_argument("--profile", action="store_true",
                        help="time profile confidence intervals (cbpp) against lme4")
    parser.add_argument("--memory-probe", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--mixedlm-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mixedlm_probe:
        _mixedlm_probe(args.mixedlm_probe)
        return 0
    if args.memory_probe:
        _memory_probe(args.memory_probe[0], int(args.memory_probe[1]))
        return 0
    if args.scaling:
        print(scaling().to_string(index=False))
        return 0
    with_r = not args.no_r and shutil.which("Rscript") is not None
    if not with_r and not args.no_r:
        print("Rscript not found: timing ours only", file=sys.stderr)
    if args.profile:
        print(json.dumps(profile_timing(args.repeats, with_r)))
        return 0
    with_mixedlm = not args.no_mixedlm and have_mixedlm()
    if not with_mixedlm and not args.no_mixedlm:
        print("mixedlm not installed (pip install statsmodels-glmm[bench]): its column "
              "shows -", file=sys.stderr)
    rows = []
    for name in args.models:
        rows.append(run_model(name, args.repeats, with_r, with_mixedlm))
        # NaN (an absent peer) is not JSON: leave it out of the line
        print(json.dumps({k: v for k, v in rows[-1].items() if v == v}), flush=True)
    print_table(rows)
    return 0


def print_table(rows):
    """The summary table: times, ratios and −2 log L differences, "-" where a peer is
    absent or failed (the failures are listed below the table)."""
    table = pd.DataFrame(rows)
    errors = table.pop("mixedlm_error") if "mixedlm_error" in table else None
    cols = ["model", "ours_s"] + [f"{p}_s" for p in PEERS] + [f"ratio_{p}" for p in PEERS]
    cols += ["fastest", "ratio_fastest"] + [f"d2ll_{p}" for p in PEERS] + ["d2ll_best"]
    cols += ["nfev", "lme4_fevals", "peak_MB"]
    table = table.reindex(columns=[c for c in cols if c in table])
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(index=False, na_rep="-", float_format="{:.4g}".format))
    if errors is not None:
        for model, error in zip(table["model"], errors):
            if isinstance(error, str):
                print(f"mixedlm could not fit {model}: {error}")


if __name__ == "__main__":
    sys.exit(main())
