"""The numba kernels behind :mod:`compiled` and :mod:`fused_pirls`.

Imported only through ``compiled._kernels()`` (numba is an optional extra and
costs 0.3 s to import). The kernels are module-level functions so that numba's
on-disk cache (``cache=True``) holds them: compiled once per machine, loaded
in milliseconds afterwards. Every ``parallel=True`` kernel is launched through
:func:`compiled.run_parallel`.
"""

import numba
import numpy as np

_EPS = 2.220446049250313e-16


def threads():
    """numba's thread count for the calling thread."""
    return numba.get_num_threads()


# -- compiled.py -------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def group_row_sums(refs, weights, X, out):  # pragma: no cover - compiled
    """out[refs[i]] += weights[i] * X[i] over the rows."""
    n, p = X.shape
    for i in range(n):
        g = refs[i]
        f = weights[i]
        for c in range(p):
            out[g, c] += f * X[i, c]


@numba.njit(cache=True, nogil=True, parallel=True)
def sparse_gram_lower(out, indptr, indices, data, t_indptr, t_indices, t_data, scale,
                      chunks):  # pragma: no cover - compiled
    """out -= C diag(scale) Cᵀ on and below the diagonal, row by row (C in CSR
    and its transpose in CSR with sorted column indices)."""
    n_rows = out.shape[0]
    # rows interleaved over the chunks: row i costs ∝ i (the lower triangle)
    for chunk in numba.prange(chunks):
        for i in range(chunk, n_rows, chunks):
            row = out[i]
            for pp in range(indptr[i], indptr[i + 1]):
                a = indices[pp]
                f = data[pp] * scale[a]
                for qq in range(t_indptr[a], t_indptr[a + 1]):
                    j = t_indices[qq]
                    if j > i:  # column indices of the transpose are sorted
                        break
                    row[j] -= f * t_data[qq]


@numba.njit(cache=True, nogil=True, parallel=True)
def tiled_gram_lower(out, ptr, rows, vals, scale, tile_i, tile_j,
                     chunks):  # pragma: no cover - compiled
    """As ``sparse_gram_lower``, tile by tile (see compiled.TiledGramPattern)."""
    m = scale.size
    n_tiles = tile_i.size
    # tiles interleaved over the chunks: the diagonal ones cost half
    for chunk in numba.prange(chunks):
        for t in range(chunk, n_tiles, chunks):
            oi, oj = tile_i[t] * m, tile_j[t] * m
            diagonal = tile_i[t] == tile_j[t]
            for a in range(m):
                i0, i1 = ptr[oi + a], ptr[oi + a + 1]
                j0, j1 = ptr[oj + a], ptr[oj + a + 1]
                if i0 == i1 or j0 == j1:
                    continue
                s = scale[a]
                for pp in range(i0, i1):
                    row = out[rows[pp]]
                    f = s * vals[pp]
                    # a column's rows are sorted: on a diagonal tile the
                    # entries up to pp are those on and below the diagonal
                    stop = pp + 1 if diagonal else j1
                    for qq in range(j0, stop):
                        row[rows[qq]] -= f * vals[qq]


# -- fused_pirls.py: one scalar term, 0/1 data, logit link -------------------------------------
@numba.njit(cache=True, nogil=True, inline="always")
def logit_row(eta, y):  # pragma: no cover - compiled
    """(μ, −log p(y | η), w) for 0/1 y, as families.binomial._logit_bernoulli:
    e = exp(−|η|), one log; w = max(μ(1 − μ), ε)."""
    e = np.exp(-abs(eta))
    h = 1.0 if eta >= 0.0 else 0.0
    mu = max(e, h) / (1.0 + e)
    return mu, np.log(1.0 + e) + (h - y) * eta, max(mu * (1.0 - mu), _EPS)


@numba.njit(cache=True, nogil=True)
def logit_single_rows(fixed, refs, z, u, y, eta_max, d, r, lo, hi):  # pragma: no cover
    """Rows [lo, hi) at u: Σ −2 log p (NaN when some |η| ≥ eta_max), and, per
    level, d += Σ w z² and r += Σ z (w Z Λ u + y − μ)."""
    total = 0.0
    for i in range(lo, hi):
        g = refs[i]
        zi = z[i]
        lin = zi * u[g]
        eta = fixed[i] + lin
        if abs(eta) >= eta_max:
            return np.nan
        mu, nll, w = logit_row(eta, y[i])
        total += nll
        d[g] += w * zi * zi
        r[g] += zi * (w * lin + (y[i] - mu))
    return 2.0 * total


@numba.njit(cache=True, nogil=True, parallel=True)
def logit_single_pass(fixed, refs, z, u, y, eta_max, d, r):  # pragma: no cover
    """``logit_single_rows`` over all rows in d.shape[0] parallel chunks; d and
    r are (chunks, levels), summed by the caller."""
    n, chunks = fixed.shape[0], d.shape[0]
    totals = np.zeros(chunks)
    for c in numba.prange(chunks):
        d[c] = 0.0
        r[c] = 0.0
        totals[c] = logit_single_rows(fixed, refs, z, u, y, eta_max, d[c], r[c],
                                      c * n // chunks, (c + 1) * n // chunks)
    return totals.sum()


@numba.njit(cache=True, nogil=True, fastmath=True)
def block_gram(block, rows, xwx):  # pragma: no cover - compiled
    """xwx += the lower triangle of block[:, :rows] block[:, :rows]ᵀ (its rows
    contiguous: each entry one vectorised dot product; fastmath only here, for
    the reassociation a vectorised sum needs)."""
    for k in range(block.shape[0]):
        bk = block[k]
        for j in range(k + 1):
            bj = block[j]
            total = 0.0
            for t in range(rows):
                total += bk[t] * bj[t]
            xwx[k, j] += total


@numba.njit(cache=True, nogil=True)
def logit_joint_rows(offset, xb, refs, z, u, y, X, eta_max, d, r, zwx, xwx, rx, lo,
                     hi):  # pragma: no cover - compiled
    """As ``logit_single_rows`` with β: η = offset + Xβ + z u_g, and also Z'WX
    (per level), X'WX (lower triangle) and X'(w (Xβ + Z Λ u) + y − μ). X'WX is
    taken over blocks of 256 rows scaled by √w (w > 0) and stored transposed: a
    loop over its entries per row costs three times as much, BLAS on blocks
    twice."""
    p = X.shape[1]
    block = np.empty((p, 256))
    total = 0.0
    for start in range(lo, hi, 256):
        stop = min(start + 256, hi)
        for i in range(start, stop):
            g = refs[i]
            zi = z[i]
            lin = xb[i] + zi * u[g]
            eta = offset[i] + lin
            if abs(eta) >= eta_max:
                return np.nan
            mu, nll, w = logit_row(eta, y[i])
            total += nll
            work = w * lin + (y[i] - mu)
            d[g] += w * zi * zi
            r[g] += zi * work
            wz, sw = w * zi, np.sqrt(w)
            for k in range(p):
                xk = X[i, k]
                zwx[g, k] += wz * xk
                rx[k] += xk * work
                block[k, i - start] = sw * xk
        block_gram(block, stop - start, xwx)
    return 2.0 * total


@numba.njit(cache=True, nogil=True, parallel=True)
def logit_joint_pass(offset, xb, refs, z, u, y, X, eta_max, d, r, zwx, xwx,
                     rx):  # pragma: no cover - compiled
    """``logit_joint_rows`` in parallel chunks (the outputs have a leading chunk
    axis, summed by the caller)."""
    n, chunks = xb.shape[0], d.shape[0]
    totals = np.zeros(chunks)
    for c in numba.prange(chunks):
        d[c] = 0.0
        r[c] = 0.0
        zwx[c] = 0.0
        xwx[c] = 0.0
        rx[c] = 0.0
        totals[c] = logit_joint_rows(offset, xb, refs, z, u, y, X, eta_max, d[c], r[c],
                                     zwx[c], xwx[c], rx[c], c * n // chunks,
                                     (c + 1) * n // chunks)
    return totals.sum()
