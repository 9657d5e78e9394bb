"""The linear mixed model from one pass over the data (MixedModels.jl's way).

A Gaussian model with the identity link needs the rows only through the
cross-products A = [Z X y]ᵀ W [Z X y]. They are accumulated once, partition by
partition (:func:`accumulate_blocks` over any iterable of
:class:`~.data.PartitionData`: :func:`~.data.split_model`'s parts, a Dask
DataFrame's partitions computed one at a time, row batches streamed from a
Parquet file), and the profiled (RE)ML criterion is then optimized centrally
(:func:`fit_lmm_blocks`) without touching the rows again.

Blocks, the random-effects terms in the model's order (decreasing levels):

- ``Z_jᵀWZ_j`` per level, (ell, S, S): a row belongs to one level of a term;
- ``Z_iᵀWZ_j`` (i after j) as a list of the level pairs that occur, with their
  S_i x S_j values (nnz = distinct pairs, however many rows);
- ``Z_jᵀW[X y]`` dense (q_j, p + 1), ``[X y]ᵀW[X y]`` dense.

One evaluation at θ factors the scaled matrix bordered by [X y] block by block
(:class:`LmmFactor`): L₁₁ block diagonal; L_i1 sparse; a later diagonal block
block diagonal when every earlier factor nests in it, else dense (LAPACK, in
place, :mod:`.lmm_factor`); the last diagonal element of the [X y] block is r,
the square root of the penalized residual sum of squares. The criterion is :mod:`lmm`'s:

    ML:    log|L|² + n (1 + log(2π r² / n)) − Σ log w,
    REML:  log|L|² + log|R_X|² + (n − p)(1 + log(2π r² / (n − p))) − Σ log w.
"""

from dataclasses import dataclass, field

import numpy as np

from ..convergence import try_boundary
from ..optimizer_choice import minimize
from ..re_terms import theta_scale_from_rms
from .lmm_factor import LmmFactor

__all__ = ["LmmBlocks", "BlockAccumulator", "partition_blocks", "accumulate_blocks",
           "LmmFactor", "LmmBlocksFit", "lmm_blocks_criterion", "fit_lmm_blocks",
           "moment_start"]


@dataclass
class PairBlock:
    """Z_iᵀWZ_j over the level pairs (r of term i, c of term j) that occur.

    ``keys`` = r · ell_j + c, sorted and unique; ``vals`` (m, S_i, S_j)."""

    keys: np.ndarray
    vals: np.ndarray
    ell_j: int

    @property
    def rows(self):
        return self.keys // self.ell_j

    @property
    def cols(self):
        return self.keys % self.ell_j


@dataclass
class LmmBlocks:
    """The cross-products of one partition, or of all rows.

    Attributes
    ----------
    sizes : list of (S, ell)
        Per random-effects term: covariates and levels.
    diag : list of ndarray
        Per term, Z_jᵀWZ_j per level, (ell, S, S).
    pairs : dict
        ``pairs[i, j]`` (i > j): a :class:`PairBlock`.
    zxy : list of ndarray
        Per term, Z_jᵀW[X y], (ell · S, p + 1).
    xy : ndarray
        [X y]ᵀW[X y], (p + 1, p + 1).
    nobs : int
    sum_log_w : float
        Σ log w over the rows with w > 0 (0 without prior weights).
    z_squares : list of ndarray
        Per term, Σ z² per covariate (the θ scale of the optimizer).
    """

    sizes: list
    diag: list
    pairs: dict
    zxy: list
    xy: np.ndarray
    nobs: int
    sum_log_w: float
    z_squares: list

    @property
    def k_fe(self):
        return self.xy.shape[0] - 1


def _term_sizes(design):
    return [(t.n_cov, t.n_levels) for t in design.terms]


def partition_blocks(part, sizes):
    """The cross-products of one partition's rows.

    Parameters
    ----------
    part : data.PartitionData
        Gaussian rows: ``endog`` one column.
    sizes : list of (S, ell)
        Per term (model order), covariates and global levels.

    Returns
    -------
    LmmBlocks
    """
    y = np.asarray(part.endog, dtype=float)
    if y.ndim != 1:
        raise ValueError("the one-pass linear mixed model needs a one-column response")
    w = np.ones(y.size) if part.weights is None else np.asarray(part.weights, dtype=float)
    xy = np.column_stack([np.asarray(part.exog, dtype=float), y - part.offset])
    wxy = w[:, None] * xy
    diag, zxy, squares = [], [], []
    for (s, ell), refs, z in zip(sizes, part.refs, part.z):
        blocks = np.empty((ell, s, s))
        for a in range(s):
            for b in range(a + 1):
                blocks[:, a, b] = blocks[:, b, a] = np.bincount(
                    refs, weights=w * z[:, a] * z[:, b], minlength=ell)
        diag.append(blocks)
        cross = np.empty((ell, s, xy.shape[1]))
        for a in range(s):
            for c in range(xy.shape[1]):
                cross[:, a, c] = np.bincount(refs, weights=z[:, a] * wxy[:, c], minlength=ell)
        zxy.append(cross.reshape(ell * s, -1))
        squares.append(np.sum(z * z, axis=0))
    pairs = {}
    for i in range(len(sizes)):
        for j in range(i):
            keys = part.refs[i].astype(np.int64) * sizes[j][1] + part.refs[j]
            uniq, inv = np.unique(keys, return_inverse=True)
            vals = np.empty((uniq.size, sizes[i][0], sizes[j][0]))
            for a in range(sizes[i][0]):
                for b in range(sizes[j][0]):
                    vals[:, a, b] = np.bincount(inv, weights=w * part.z[i][:, a]
                                                * part.z[j][:, b], minlength=uniq.size)
            pairs[i, j] = PairBlock(uniq, vals, sizes[j][1])
    sum_log_w = 0.0 if part.weights is None else float(np.sum(np.log(w[w > 0])))
    return LmmBlocks(list(sizes), diag, pairs, zxy, xy.T @ wxy, int(y.size), sum_log_w,
                     squares)


def _merge_range(blocks, lo, hi):
    """The merged pairs with keys in [lo, hi) (each block's keys are sorted)."""
    cuts = [np.searchsorted(b.keys, [lo, hi]) for b in blocks]
    keys = np.concatenate([b.keys[c0:c1] for b, (c0, c1) in zip(blocks, cuts)])
    vals = np.concatenate([b.vals[c0:c1] for b, (c0, c1) in zip(blocks, cuts)])
    uniq, inv = np.unique(keys, return_inverse=True)
    del keys
    out = np.empty((uniq.size,) + vals.shape[1:])
    for a in range(vals.shape[1]):
        for b in range(vals.shape[2]):
            out[:, a, b] = np.bincount(inv, weights=vals[:, a, b], minlength=uniq.size)
    return uniq, out


def _merge_pairs(blocks, pieces=16):
    """One :class:`PairBlock` from several (the sums of the shared pairs), merged
    in ``pieces`` key ranges so that the sort's temporaries stay a fraction of
    the lists (a 1e7-pair merge would otherwise need ~1 GB)."""
    if len(blocks) == 1:
        return blocks[0]
    top = max(int(b.keys[-1]) for b in blocks if b.keys.size) + 1 if any(
        b.keys.size for b in blocks) else 1
    bounds = np.linspace(0, top, pieces + 1).astype(np.int64)
    bounds[-1] = top
    merged = [_merge_range(blocks, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    keys = np.concatenate([k for k, _ in merged])
    vals = np.concatenate([v for _, v in merged])
    return PairBlock(keys, vals, blocks[0].ell_j)


class BlockAccumulator:
    """Sums :class:`LmmBlocks` of partitions. The dense blocks are added at once;
    the pair lists are kept and merged when they have doubled since the last
    merge (so a stream of many small batches costs O(total log total))."""

    def __init__(self):
        self.total = None
        self._pending = {}
        self._merged = {}

    def add(self, blocks):
        if self.total is None:
            self.total = LmmBlocks(blocks.sizes, [d.copy() for d in blocks.diag], {},
                                   [z.copy() for z in blocks.zxy], blocks.xy.copy(), 0,
                                   0.0, [s.copy() for s in blocks.z_squares])
        t = self.total
        if blocks.sizes != t.sizes:
            raise ValueError("partitions coded against different designs")
        if t.nobs:
            for mine, theirs in zip(t.diag, blocks.diag):
                mine += theirs
            for mine, theirs in zip(t.zxy, blocks.zxy):
                mine += theirs
            for mine, theirs in zip(t.z_squares, blocks.z_squares):
                mine += theirs
            t.xy += blocks.xy
        t.nobs += blocks.nobs
        t.sum_log_w += blocks.sum_log_w
        for key, pb in blocks.pairs.items():
            pending = self._pending.setdefault(key, [])
            pending.append(pb)
            size = sum(p.keys.size for p in pending)
            if size > 2 * self._merged.get(key, 0) + 1_000_000:
                self._pending[key] = [_merge_pairs(pending)]
                self._merged[key] = self._pending[key][0].keys.size

    def result(self):
        """The :class:`LmmBlocks` of all rows added."""
        if self.total is None:
            raise ValueError("no partitions")
        self.total.pairs = {key: _merge_pairs(p) for key, p in self._pending.items()}
        self._pending = {key: [p] for key, p in self.total.pairs.items()}
        return self.total


def accumulate_blocks(parts, design):
    """A = [Z X y]ᵀW[Z X y] in blocks, from one pass over ``parts``.

    Parameters
    ----------
    parts : iterable of data.PartitionData
        Consumed once, one at a time (a generator keeps one partition in memory).
    design : data.PartitionedDesign or list of (S, ell)

    Returns
    -------
    LmmBlocks
    """
    sizes = design if isinstance(design, list) else _term_sizes(design)
    acc = BlockAccumulator()
    for part in parts:
        if part.nobs:
            acc.add(partition_blocks(part, sizes))
    return acc.result()


def lmm_blocks_criterion(factor, theta, reml=False):
    """The profiled −2 log-likelihood (ML) or REML criterion at θ (as
    :func:`lmm.lmm_criterion`)."""
    ld_L, ld_RX, pwrss = factor.update(theta)
    b = factor.blocks
    n, p = b.nobs, b.k_fe
    if reml:
        dof = n - p
        return ld_L + ld_RX + dof * (1 + np.log(2 * np.pi * pwrss / dof)) - b.sum_log_w
    return ld_L + n * (1 + np.log(2 * np.pi * pwrss / n)) - b.sum_log_w


def theta_scale(blocks):
    """Per θ element, its covariate's RMS rounded to a power of 2
    (``RandomEffects.theta_scale``, from the accumulated Σ z²)."""
    return theta_scale_from_rms([np.sqrt(sq / max(blocks.nobs, 1))
                                 for sq in blocks.z_squares])


def moment_start(blocks):
    """θ by the method of moments from the blocks (scalar terms), else None.

    With e the weighted least-squares residuals of y on X alone, the residual
    sum of squares and, per term j, Q_j = Σ_l v_l² / d_l (v_l = Σ w z e and
    d_l = Σ w z² over the rows of level l) have expectations linear in σ² and
    the σ_k² (Henderson's method III without the share of β̂, O(p) of n):

        E Σ w e² ≈ n σ² + Σ_k σ_k² Σ_l d_l,
        E Q_j    ≈ ell_j σ² + σ_j² Σ_l d_l + Σ_{k≠j} σ_k² Σ_{l,m} P_lm² / d_l,

    P the pair block of terms j and k. Solved, θ_j = σ_j / σ: on large data
    within a few per cent of the optimum, where lme4's identity start can be
    far (each of the optimizer's steps is a dense Cholesky factorization).
    """
    if any(s != 1 for s, _ in blocks.sizes):
        return None
    p, k = blocks.k_fe, len(blocks.sizes)
    xy = blocks.xy
    try:
        coef = np.append(-np.linalg.solve(xy[:p, :p], xy[:p, p]), 1.0)
    except np.linalg.LinAlgError:
        return None
    d = [np.ravel(dg) for dg in blocks.diag]
    inv = [np.divide(1.0, dj, out=np.zeros_like(dj), where=dj > 0) for dj in d]
    A = np.zeros((k + 1, k + 1))
    rhs = np.empty(k + 1)
    A[0] = [blocks.nobs] + [dj.sum() for dj in d]
    rhs[0] = coef @ xy @ coef
    for j in range(k):
        v = blocks.zxy[j] @ coef
        A[j + 1, 0] = np.count_nonzero(d[j] > 0)
        A[j + 1, j + 1] = d[j].sum()
        rhs[j + 1] = v * v @ inv[j]
    for (i, j), pb in blocks.pairs.items():
        sq = pb.vals.reshape(-1) ** 2
        A[i + 1, j + 1] = sq @ inv[i][pb.rows]
        A[j + 1, i + 1] = sq @ inv[j][pb.cols]
    try:
        sol = np.linalg.solve(A, rhs)
    except np.linalg.LinAlgError:
        return None
    if not (np.all(np.isfinite(sol)) and sol[0] > 0):
        return None
    # a zero estimate starts just inside the bound (the optimizer's steps)
    return np.sqrt(np.maximum(sol[1:] / sol[0], 1e-4))


@dataclass
class LmmBlocksFit:
    """A linear mixed model fitted from its cross-product blocks.

    Attributes
    ----------
    theta, beta : ndarray
    sigma2 : float
    neg2ll : float
        −2ℓ (ML) or the REML criterion at the optimum.
    vcov : ndarray
        Covariance of β̂ (conditional on θ, as lmer's).
    u : ndarray
        Spherical conditional modes (model order); b = Λ u.
    reml : bool
    optimizer : optimizer.OptimizeResult
    nfev : int
        Criterion evaluations (the boundary check and the final one included).
    seconds : float
        Wall time of the evaluations.
    """

    theta: np.ndarray
    beta: np.ndarray
    sigma2: float
    neg2ll: float
    vcov: np.ndarray
    u: np.ndarray
    reml: bool
    optimizer: object
    nfev: int
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def _start_and_step(blocks, factor, ts, start):
    """The optimizer's start and first steps (its scale: θ times ``ts``)."""
    if isinstance(start, str) and start not in ("moments", "identity"):
        raise ValueError(f"start must be 'moments', 'identity' or θ, not {start!r}")
    step = np.full(ts.size, 0.2)
    if isinstance(start, str) or start is None:
        start = moment_start(blocks) if start in (None, "moments") else None
        if start is None:
            return factor.theta_start, step
        # half the estimate's standard error (about θ_j / sqrt(2 ell_j)):
        # BOBYQA's first steps then span the distance to the optimum, which
        # lme4's 0.2 overshoots when the start is close (each step a dense
        # factorization at 1e4 crossed levels). At 1e6-2e6 rows (1e4 x 1e3,
        # 5e3 x 2e3, 2e4 x 2e3 levels; ftol 3e-5): 9-11 evaluations; 11-13 at
        # the whole error, 11-12 at a quarter, 30-44 from lme4's start.
        ell = np.array([e for _, e in blocks.sizes], dtype=float)
        step = np.clip(start * ts / np.sqrt(8.0 * ell), 0.001, 0.2)
    return np.asarray(start, float) * ts, step


def _same_point(a, b):
    return np.allclose(a, b, rtol=1e-13, atol=0.0)


def fit_lmm_blocks(blocks, reml=False, optimizer="bobyqa", start=None, maxfun=10000,
                   boundary_tol=1e-5, observer=None):
    """Optimize the profiled criterion over θ, as :func:`lmm.fit_lmm` does
    (same scale, bounds, optimizer and boundary check), from the blocks.

    Parameters
    ----------
    blocks : LmmBlocks
    reml : bool
    optimizer : str
        See :func:`optimizer_choice.minimize`.
    start : array_like or {"moments", "identity"}, optional
        Starting θ (lme4's scale). "moments" (the default): :func:`moment_start`
        when all terms are scalar, with first steps of half its standard
        error; else, or with "identity", lme4's identity factors (the start of
        :func:`lmm.fit_lmm`).
    maxfun : int
    boundary_tol : float
    observer : callable, optional
        ``observer(nfev, theta, value)`` after each evaluation.

    Returns
    -------
    LmmBlocksFit
    """
    import time

    factor = LmmFactor(blocks)
    ts = theta_scale(blocks)
    theta0, step = _start_and_step(blocks, factor, ts, start)
    lower = factor.theta_lower
    nfev = [0]
    t0 = time.perf_counter()

    last = [None, None]

    def criterion(t):
        # the optimizer asks for its start twice (BOBYQA's rescaling moves it by
        # an ulp); at 1e4 crossed levels an evaluation costs seconds, so the
        # last one is kept and answers for the same point up to rounding
        if last[0] is not None and _same_point(t, last[0]):
            return last[1]
        value = lmm_blocks_criterion(factor, t / ts, reml)
        last[0], last[1] = np.array(t, dtype=float), value
        nfev[0] += 1
        if observer is not None:
            observer(nfev[0], t / ts, value)
        return value

    opt = minimize(optimizer, criterion, theta0, lower, step, maxeval=maxfun)
    theta = try_boundary(opt.x, lower, criterion, boundary_tol) / ts
    if _same_point(theta, factor.theta):
        theta, value = factor.theta.copy(), last[1]
    else:  # the factor at θ̂ for the solve
        value = lmm_blocks_criterion(factor, theta, reml)
        nfev[0] += 1
    beta, u = factor.solve()
    pwrss = float(np.diagonal(factor.LXX)[-1] ** 2)
    sigma2 = pwrss / (blocks.nobs - blocks.k_fe if reml else blocks.nobs)
    RXinv = factor.rx_inverse()
    return LmmBlocksFit(theta, beta, sigma2, float(value), sigma2 * (RXinv.T @ RXinv), u,
                        reml, opt, nfev[0], time.perf_counter() - t0)
