"""L1 of issue 14: a crossed linear mixed model from one streaming pass over Parquet.

``y ~ x1 + ... + xp + (1 | a) + (1 | b)`` with 1e7 rows and 1e5 x 1e4 levels by
default. The data are simulated by a child process into a Parquet file (so the
fitting process never holds them), then read once in row batches with pyarrow:
each batch becomes a :class:`~statsmodels_glmm.partitioned.data.PartitionData`
whose cross-products are added to the blocks
(:func:`~statsmodels_glmm.partitioned.lmm_pass.accumulate_blocks`); the
profiled ML criterion is then optimized from the blocks alone
(:func:`~statsmodels_glmm.partitioned.lmm_pass.fit_lmm_blocks`).

Printed: wall and CPU time of the data pass and of the optimization, peak RSS
(``resource.getrusage``), −2ℓ, the number of evaluations and the estimates.

    python benchmarks/scale_lmm.py                       # L1 (1e7 rows, 1e5 x 1e4)
    python benchmarks/scale_lmm.py --rows 1e6 --levels 10000 1000

``WORKLOADS`` has the shape of ``benchmarks/scale.py``'s registry (name →
Workload(description, rows, make, fit)), where L1 is registered:
``python benchmarks/scale.py --workloads L1``.
"""

import argparse
from dataclasses import dataclass
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


@dataclass
class Workload:
    description: str
    rows: int
    make: object
    fit: object


def _path(rows, levels, p):
    return os.path.join(os.environ.get("TMPDIR", "/tmp"),
                        f"scale_lmm_{rows}_{levels[0]}_{levels[1]}_{p}.parquet")


def make(rows=10_000_000, levels=(100_000, 10_000), p=4, seed=1, chunk=1_000_000):
    """Write the simulated data to Parquet in chunks (a child process calls this)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _path(rows, levels, p)
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(seed)
    ua = rng.normal(0.0, 0.8, levels[0])
    ub = rng.normal(0.0, 0.5, levels[1])
    beta = np.linspace(-0.5, 0.5, p)
    tmp = path + ".part"
    writer = None
    for start in range(0, rows, chunk):
        m = min(chunk, rows - start)
        a = rng.integers(0, levels[0], m).astype(np.int32)
        b = rng.integers(0, levels[1], m).astype(np.int32)
        x = rng.normal(size=(m, p))
        y = 1.0 + x @ beta + ua[a] + ub[b] + rng.normal(size=m)
        cols = {"y": y, "a": a, "b": b} | {f"x{c + 1}": x[:, c] for c in range(p)}
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema, compression="none")
        writer.write_table(table, row_group_size=chunk)
    writer.close()
    os.replace(tmp, path)
    return path


def parquet_parts(path, p, batch_size):
    """The rows of the Parquet file as PartitionData, one row batch at a time
    (the level codes are the stored integers: a's levels are 0..q_a-1)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from statsmodels_glmm.partitioned.data import PartitionData

    names = [f"x{c + 1}" for c in range(p)]
    # pre_buffer=False: otherwise pyarrow buffers the whole file (0.5 GB at 1e7 rows)
    source = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 22)
    for batch in source.iter_batches(batch_size, columns=["y", "a", "b", *names]):
        y = batch.column("y").to_numpy()
        n = y.size
        X = np.empty((n, p + 1))
        X[:, 0] = 1.0
        for c, name in enumerate(names):
            X[:, c + 1] = batch.column(name).to_numpy()
        ones = np.ones((n, 1))
        yield PartitionData(endog=y, exog=X, offset=np.zeros(n), weights=None,
                            refs=[batch.column("a").to_numpy().astype(np.intp),
                                  batch.column("b").to_numpy().astype(np.intp)],
                            z=[ones, ones])
    # Arrow's allocator keeps the batches' freed pages (~0.2 GB at 1e7 rows),
    # which would stay resident under the fit's dense block
    pa.default_memory_pool().release_unused()


def fit(path, levels, p, batch_size=1_000_000, reml=False, verbose=True):
    """One pass over the file, then the central fit; returns a dict of figures."""
    from statsmodels_glmm.partitioned.lmm_pass import accumulate_blocks, fit_lmm_blocks

    w0, c0 = time.perf_counter(), time.process_time()
    sizes = [(1, int(levels[0])), (1, int(levels[1]))]
    blocks = accumulate_blocks(parquet_parts(path, p, batch_size), sizes)
    w1, c1 = time.perf_counter(), time.process_time()
    if verbose:
        print(f"pass: {w1 - w0:.1f} s wall, {c1 - c0:.1f} s CPU, {blocks.nobs} rows, "
              f"{blocks.pairs[1, 0].keys.size} level pairs, "
              f"peak RSS {_peak_gb():.2f} GB", flush=True)

    def observer(k, theta, value):
        if verbose:
            print(f"  eval {k}: theta={np.round(theta, 6)} value={value:.6f} "
                  f"({time.perf_counter() - w1:.0f} s)", flush=True)

    res = fit_lmm_blocks(blocks, reml=reml, observer=observer)
    w2, c2 = time.perf_counter(), time.process_time()
    return {"rows": blocks.nobs, "levels": list(levels), "p": p,
            "pass_wall": w1 - w0, "pass_cpu": c1 - c0,
            "opt_wall": w2 - w1, "opt_cpu": c2 - c1,
            "wall": w2 - w0, "cpu": c2 - c0, "peak_rss_gb": _peak_gb(),
            "neg2ll": res.neg2ll, "nfev": res.nfev, "theta": res.theta.tolist(),
            "beta": res.beta.tolist(), "sigma": float(np.sqrt(res.sigma2))}


def _peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


L1_LEVELS = (100_000, 10_000)


def make_in_child(rows, levels=L1_LEVELS, p=4):
    """The Parquet file of :func:`make`, simulated by a child process (so the
    fitting process never holds the data); returns its path."""
    path = _path(rows, tuple(levels), p)
    if not os.path.exists(path):
        subprocess.run([sys.executable, __file__, "--make", "--rows", str(rows), "--levels",
                        *map(str, levels), "--p", str(p)], check=True)
    return path


class Figures(dict):
    """:func:`fit`'s figures, with the attributes ``benchmarks/scale.py`` reads
    from a fit (−2ℓ, the evaluations, the parameters)."""

    @property
    def neg2llf(self):
        return self["neg2ll"]

    @property
    def mle_retvals(self):
        return {"nfev": self["nfev"]}

    @property
    def params(self):
        return self["beta"] + self["theta"]


WORKLOADS = {
    "L1": Workload("crossed LMM y ~ x1..x4 + (1|a) + (1|b), 1e7 rows, 1e5 x 1e4 levels, "
                   "one streaming pass over Parquet", 10_000_000, make_in_child,
                   lambda path: Figures(fit(path, L1_LEVELS, 4, verbose=False))),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, default=1e7)
    ap.add_argument("--levels", type=int, nargs=2, default=(100_000, 10_000))
    ap.add_argument("--p", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--reml", action="store_true")
    ap.add_argument("--make", action="store_true", help="only write the Parquet file")
    ap.add_argument("--json", help="append the figures to this file")
    args = ap.parse_args(argv)
    rows = int(args.rows)
    if args.make:
        print(make(rows, tuple(args.levels), args.p))
        return
    out = fit(make_in_child(rows, args.levels, args.p), args.levels, args.p, args.batch,
              args.reml)
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
