"""Large-data benchmarks (issue 14): wall time, CPU time and peak memory of one fit.

    python benchmarks/scale.py                        # every workload at its default size
    python benchmarks/scale.py --workloads S1 --rows 3e6
    python benchmarks/scale.py --workloads S1 --repeats 3 --out benchmarks/scale_S1.json

Each workload runs in a fresh Python process, so its peak resident memory
(``ru_maxrss``, which includes the data it simulates) is its own and no other
workload's allocations are counted. The process simulates its data first (the
RSS at that point is reported as ``rss_data_MB``), then times the fit and reports
wall and CPU time, the peak RSS of the process, −2 log L and the number of deviance
evaluations. The results are printed as JSON lines and written to ``--out``
(default ``benchmarks/scale_results.json``).

Workloads are entries of :data:`WORKLOADS`: a name mapped to a :class:`Workload`
with a default number of rows, a function making the data and a function fitting
it. To add one, write those two functions and register them.

S1
    Bernoulli ``y ~ x0 + ... + x9 + (1 | g)``, 1e7 rows, 1e5 levels (one level per
    100 rows), from a pandas DataFrame through ``glmer`` (in memory).
S2
    S1's data from Parquet files through a 2-worker ``LocalCluster`` (worker
    processes; their peak RSS is ``peak_rss_children_MB``).
C1
    Crossed Poisson ``y ~ x + (1 | a) + (1 | b)``, 1e6 rows, 10 000 x 1 000 levels,
    a Dask DataFrame fitted partition by partition in this process.
L1
    Crossed linear ``y ~ x1 + ... + x4 + (1 | a) + (1 | b)``, 1e7 rows, 1e5 x 1e4
    levels, from one streaming pass over a Parquet file (``scale_lmm.py``; the
    file is simulated by a child process and cached in ``$TMPDIR``).
"""

import argparse
from dataclasses import dataclass
import json
from pathlib import Path
import platform
import resource
import subprocess
import sys
import time

import numpy as np

HERE = Path(__file__).parent


@dataclass
class Workload:
    """One benchmark: ``make(rows)`` returns the data, ``fit(data)`` the fitted
    results (anything with ``neg2llf`` and ``mle_retvals``)."""

    description: str
    rows: int
    make: object
    fit: object


def simulate_s1(rows, n_fixed=10, rows_per_level=100, seed=14):
    """y ~ Bern(plogis(-0.5 + 0.8 x0 + b_g)), b_g ~ N(0, 0.7²), x0..x9 ~ N(0, 1).

    Built column by column into one float block (a DataFrame over a 2-D array
    does not copy it), so the simulation's own peak stays near the data's size.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    levels = max(rows // rows_per_level, 10)
    g = rng.integers(0, levels, rows).astype(np.int32)
    # one row per column: each column contiguous, as pandas' own block layout
    values = np.empty((n_fixed + 1, rows))
    for j in range(n_fixed):
        values[j] = rng.standard_normal(rows)
    eta = rng.normal(0.0, 0.7, levels)[g]
    eta += values[0] * 0.8 - 0.5
    # y = 1{U < plogis(eta)}, with the uniform drawn into the response's row
    values[n_fixed] = rng.random(rows)
    values[n_fixed] = values[n_fixed] < 1.0 / (1.0 + np.exp(-eta))
    del eta
    frame = pd.DataFrame(values.T, columns=[f"x{j}" for j in range(n_fixed)] + ["y"],
                         copy=False)
    names = np.array([f"g{v:06d}" for v in range(levels)], dtype=object)
    frame["g"] = pd.Categorical.from_codes(g, categories=names)
    return frame


def fit_s1(data):
    import statsmodels.api as sm

    from statsmodels_glmm import glmer

    rhs = " + ".join(c for c in data.columns if c.startswith("x"))
    return glmer(f"y ~ {rhs} + (1 | g)", data, family=sm.families.Binomial())


def make_s2(rows):
    """S1's data written to Parquet (one file per 1e6 rows); the frame is dropped."""
    import tempfile

    frame = simulate_s1(rows)
    path = Path(tempfile.mkdtemp(prefix="glmm_s2_"))
    step = 1_000_000
    for i, start in enumerate(range(0, len(frame), step)):
        frame.iloc[start:start + step].to_parquet(path / f"part-{i:04d}.parquet")
    del frame
    return path


def fit_s2(path, n_workers=2):
    """S1's model read from Parquet by a LocalCluster of worker processes."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    import statsmodels.api as sm

    from statsmodels_glmm import glmer

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        data = dd.read_parquet(path)
        rhs = " + ".join(c for c in data.columns if c.startswith("x"))
        return glmer(f"y ~ {rhs} + (1 | g)", data, family=sm.families.Binomial(),
                     npartitions=n_workers)


def simulate_c1(rows, levels=(10_000, 1_000), seed=15):
    """Crossed Poisson y ~ x + (1 | a) + (1 | b): log μ = 0.2 + 0.3 x + a_i + b_j."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    a = rng.integers(0, levels[0], rows)
    b = rng.integers(0, levels[1], rows)
    x = rng.standard_normal(rows)
    eta = 0.2 + 0.3 * x + rng.normal(0, 0.5, levels[0])[a] + rng.normal(0, 0.4, levels[1])[b]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "a": a, "b": b})


def fit_c1(data):
    """C1 partitioned in this process (Dask's default scheduler, no cluster)."""
    import dask.dataframe as dd
    import statsmodels.api as sm

    from statsmodels_glmm import glmer

    return glmer("y ~ x + (1 | a) + (1 | b)", dd.from_pandas(data, npartitions=2),
                 family=sm.families.Poisson())


def _lmm_workloads():
    """The one-pass linear mixed model workloads of ``scale_lmm.py`` (this
    directory is first on ``sys.path`` when the script runs)."""
    import scale_lmm

    return scale_lmm.WORKLOADS


WORKLOADS = {
    "S1": Workload("Bernoulli y ~ x0 + ... + x9 + (1 | g), pandas, in memory",
                   10_000_000, simulate_s1, fit_s1),
    "S2": Workload("S1 from Parquet through a 2-worker LocalCluster (Dask)",
                   10_000_000, make_s2, fit_s2),
    "C1": Workload("crossed Poisson y ~ x + (1 | a) + (1 | b), 10 000 x 1 000 levels, "
                   "partitioned in this process", 1_000_000, simulate_c1, fit_c1),
} | _lmm_workloads()


def _peak_rss_mb(who=resource.RUSAGE_SELF):
    """Peak resident set size of this process (or of its largest finished child)
    so far (ru_maxrss is in KiB on Linux)."""
    peak = resource.getrusage(who).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def run_one(name, rows):
    """Simulate and fit one workload in this process; a dict of the measurements."""
    work = WORKLOADS[name]
    data = work.make(rows)
    rss_data = _peak_rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    res = work.fit(data)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    retvals = res.mle_retvals
    return {"workload": name, "rows": rows, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "peak_rss_MB": round(_peak_rss_mb()), "rss_data_MB": round(rss_data),
            "peak_rss_children_MB": round(_peak_rss_mb(resource.RUSAGE_CHILDREN)),
            "rounds": int(retvals.get("rounds", 0)),
            "neg2ll": float(res.neg2llf),
            "nfev": int(retvals.get("nfev", retvals.get("stage1_nfev", 0)
                                    + retvals.get("stage2_nfev", 0))),
            "params": [float(v) for v in np.asarray(res.params)]} | _phases(res)


def _phases(res):
    """The data pass and optimization times of a workload reporting them (L1)."""
    if not isinstance(res, dict):
        return {}
    return {k: round(v, 3) for k, v in res.items() if k.startswith(("pass_", "opt_"))}


def run_in_subprocess(name, rows):
    """:func:`run_one` in a fresh interpreter (its own peak RSS)."""
    out = subprocess.run([sys.executable, __file__, "--child", name, str(rows)],
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"workload {name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS),
                        choices=list(WORKLOADS))
    parser.add_argument("--rows", type=float, default=None,
                        help="number of rows (default: each workload's own)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "scale_results.json")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child[0], int(float(args.child[1])))), flush=True)
        return 0
    results = []
    for name in args.workloads:
        rows = int(args.rows) if args.rows else WORKLOADS[name].rows
        for _ in range(args.repeats):
            results.append(run_in_subprocess(name, rows))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "params"}),
                  flush=True)
    args.out.write_text(json.dumps({"machine": platform.node(), "python": sys.version,
                                    "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
