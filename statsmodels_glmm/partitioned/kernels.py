"""What runs inside one partition: pure numpy kernels over a :class:`PartitionState`.

A partition holds all rows of its levels of the *local* terms (the partitioning
factor and the factors nested in it), so the blocks of L for those terms are
partition-owned (L₁₁ is block diagonal by level). Everything else, the crossed
(*central*) random effects and, in the joint nAGQ=0 iteration, β, couples the
partitions only through sums:

- the local PIRLS and adaptive quadrature (no central unknowns) run entirely
  here and return one number, the partition's share of the deviance;
- otherwise the partition returns its Schur-complement piece
  ``A_cc − L_c1 L_c1ᵀ`` and reduced right-hand side onto the central unknowns
  (exact sums over partitions, scale.md §2.1), and solves for its local modes
  once the driver has broadcast the central step.

The in-memory numerics are reused: the local system is a
:class:`~statsmodels_glmm.blocked_cholesky.PenalizedSystem` over the local terms,
with the partition's levels renumbered, and the local PIRLS is
:func:`~statsmodels_glmm.pirls.pirls` itself.
"""

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.linalg import blas as sla_blas
import scipy.sparse as sp

from .. import compiled, fused_pirls
from ..blocked_cholesky import PenalizedSystem, x_border
from ..chunked import weighted_gram
from ..diagnostics import count_at_bound, level_weight_sums
from ..nested_blocks import matmul, matmul_t, product_t, subtract
from ..pirls import pirls
from ..quadrature import agq_deviance
from ..re_terms import RandomEffects, RandomEffectsTerm, factor_from_theta, theta_slices
from ..response import Response
from ..stages import start_working_response
from . import sparse_schur
from .extrapolation import combine_stored, mode_scale, rescaled_start, scalar_terms

__all__ = ["PartitionState", "call"]


def call(state, method, *args):
    """Run ``state.method(*args)`` (the one task shape an executor submits)."""
    return getattr(state, method)(*args)


@dataclass
class Pieces:
    """A partition's contribution at one point of the central iteration."""

    pdev: float          # −2 log p(y | u) over its rows + ‖u_local‖²
    logdet: float        # log|L₁₁|² of its local blocks
    schur: np.ndarray    # A_cc − L_c1 L_c1ᵀ (central x central)
    rhs: np.ndarray      # reduced right-hand side onto the central unknowns
    step: float          # largest change of its local modes in this step
    # the next Newton step, without taking it (devfun._newton_converged): its local
    # part |Δu|∞ ≤ gap + coupling |Δv|∞, and the local part of its decrement;
    # inf where no bound is at hand
    gap: float = np.inf
    coupling: float = np.inf
    decrement: float = np.inf


class PartitionState:
    """One partition's arrays, its local model and its warm starts.

    Parameters
    ----------
    data : data.PartitionData
    design : data.PartitionedDesign
    """

    def __init__(self, data, design):
        # numpy's column passes (X'WZ by bincount per column) want X column-major,
        # the compiled row passes row-major
        order = "C" if compiled.available() else "F"
        self.data = replace(data, exog=np.asarray(data.exog, dtype=float, order=order))
        self.nobs = data.nobs
        self.k_fe = design.k_fe
        self.slices = theta_slices([t.n_theta for t in design.terms])
        self.local = design.local_terms
        self.central = design.central_terms
        self.central_sizes = [design.terms[j].n_re for j in self.central]
        self._term_sizes = [(t.n_re, t.n_cov) for t in design.terms]
        self.response = Response(design.family, data.endog, data.weights, data.offset,
                                 design.endog_label, estimate_alpha=design.estimate_alpha)
        terms, self.local_levels = [], []
        for j in self.local:
            info = design.terms[j]
            levels, refs = np.unique(data.refs[j], return_inverse=True)
            self.local_levels.append(levels)
            terms.append(RandomEffectsTerm(info.group_name, list(info.cnames), info.expr,
                                           refs.astype(np.intp),
                                           pd.RangeIndex(len(levels)), data.z[j]))
        self.re = RandomEffects(terms, sort=False) if terms else None
        self.system = PenalizedSystem(self.re) if terms else None
        self.n_local = self.re.n_re if terms else 0
        self._terms = scalar_terms([self.slices[j] for j in self.local],
                                   [t.n_re for t in terms], [t.n_cov for t in terms])
        self.warm_u = np.zeros(self.n_local)
        self.best_u = None
        # (θ, diagonal of the precision) at warm_u and best_u (rescaled_start)
        self._warm_at = self._best_at = (None, None)
        self._base = self._trial = self._fused = None
        self._fast = {}  # sparse_schur.ScalarLocalSchur by "X among the central columns"
        # local modes of the driver's last evaluations by trail tag (extrapolation)
        self._owner, self._stored, self._tag = None, {}, None

    # -- θ and the linear predictor -------------------------------------------------------
    def _local_theta(self, theta):
        return np.concatenate([theta[self.slices[j]] for j in self.local] or [np.empty(0)])

    def _scaled_local(self, theta):
        return self.re.scaled_covariates(self._local_theta(theta)) if self.re else []

    def _central_design(self, theta, joint):
        """The central columns: Z_c Λ_c (sparse, global crossed levels) and, in the
        joint iteration, X (dense), as a :class:`CentralDesign`."""
        terms = []
        for j, size in zip(self.central, self.central_sizes):
            s = self.data.z[j].shape[1]
            zt = self.data.z[j] @ factor_from_theta(theta[self.slices[j]], s)
            terms.append((self.data.refs[j], zt, size))
        return CentralDesign(terms, self.data.exog if joint else None)

    # -- regime S: the whole PIRLS inside the partition ----------------------------------------
    def deviance(self, theta, disp, beta, nAGQ, information):
        """This partition's share of −2ℓ at (θ, dispersion, β): local PIRLS from the
        warm start, then Laplace (nAGQ ≤ 1) or adaptive quadrature."""
        if self.nobs == 0:
            return 0.0
        self._settle()
        fixed = self.data.offset + self.data.exog @ beta
        scaled = self._scaled_local(theta)
        modes = pirls(self.response, self.re, self.system, scaled, fixed, self.warm_u, disp,
                      beta=beta, information=information)
        self.warm_u, self._warm_at = modes.u, (None, None)
        if nAGQ <= 1:
            return modes.laplace()
        return agq_deviance(self.response, self.re, scaled, fixed, modes, nAGQ, disp)

    # -- the central iteration (crossed terms, or β in the joint stage) -----------------------
    def central_start(self, theta, disp, beta, v, joint, information, warm="last",
                      trail=None):
        """Begin a central iteration: pieces at (u_local, v) from the warm start.

        ``warm``: ``"last"``, the modes of the last iteration; ``"best"``, those
        of the best evaluation so far (the joint stage, as
        :class:`devfun.DevianceFunction`), ``"promote"``, the last ones, which
        the driver found to be the best so far. ``trail``: the message of
        :meth:`extrapolation.ModeTrail.plan`, whose weights (when given) replace
        the warm start by the extrapolation of the stored modes."""
        self._settle()
        if warm == "promote" or self.best_u is None:
            self.best_u, self._best_at = self.warm_u, self._warm_at
        start, at = (self.best_u, self._best_at) if warm != "last" else (
            self.warm_u, self._warm_at)
        combined = self._from_trail(trail, theta)
        start = rescaled_start(start, theta, *at, self._terms) if combined is None \
            else combined
        self._setup = (theta, disp, beta, joint, information)
        self._scaled = self._scaled_local(theta)
        self._C = self._central_design(theta, joint)
        # offset (+ X β when β is fixed): the same in every round of the iteration
        self._fixed = self.data.offset if joint else self.data.offset + self.data.exog @ beta
        self._fused = None
        if joint and not self.central and self.re is not None and fused_pirls.applies(
                self.response, self.re, joint=True):
            self._fused = fused_pirls.JointPass(self.response, self.re, self._scaled,
                                                self._fixed, self.data.exog)
        self._base = None
        self._trial = self._evaluate(start.copy(), v, step=0.0)
        return self._trial[0]

    def central_step(self, v):
        """Accept the last trial, then evaluate the Newton point for central ``v``
        (the driver computes a step only from an accepted point)."""
        self._base = self._trial
        pieces, u, cache = self._base
        u_new = self._back_solve(cache, v)
        self._trial = self._evaluate(u_new, v, step=_max_abs(u_new - u))
        return self._trial[0]

    def central_halve(self, v):
        """Step-halving: the midpoint of the accepted and the trial local modes."""
        u_half = 0.5 * (self._base[1] + self._trial[1])
        self._trial = self._evaluate(u_half, v, step=_max_abs(u_half - self._base[1]))
        return self._trial[0]

    def _settle(self):
        """After a central iteration the driver has accepted the last trial: its
        local modes become the warm start (folded into the next task, which saves
        a round per evaluation), and are stored under the evaluation's trail tag."""
        if self._trial is not None:
            self.warm_u = self._trial[1]
            self._warm_at = (self._setup[0], self._precision(self._trial[2]))
            self._trial = self._base = None
            if self._tag is not None:
                self._stored[self._tag] = self.warm_u * mode_scale(
                    self._setup[0], self._terms, self.n_local)
        self._tag = None

    def _from_trail(self, trail, theta):
        """The start at ``theta`` extrapolated from the stored modes (see
        :mod:`.extrapolation`), else None; keeps only the modes the driver may
        still combine."""
        if trail is None:
            return None
        owner, self._tag, keep, weights = trail
        if owner != self._owner:
            self._owner, self._stored = owner, {}
        self._stored = {t: self._stored[t] for t in keep if t in self._stored}
        combined = combine_stored(self._stored, weights)
        return None if combined is None else combined / mode_scale(theta, self._terms,
                                                                  self.n_local)

    def _precision(self, cache):
        """Diagonal of the local precision Λ'Z'WZΛ + I at an evaluation, where it
        is diagonal (one scalar local term), else None."""
        if cache is None or cache[0] is None:
            return None
        if cache[0] == "fused":
            return cache[3]
        if len(self.re.terms) != 1 or self.re.terms[0].n_cov != 1:
            return None
        return cache[0].diag[0].L[:, 0, 0] ** 2

    def central_finish(self):
        """Pieces at the modes with the information the Laplace approximation
        uses (a non-canonical link; for a canonical one the last trial's pieces
        are those already)."""
        self._settle()
        information = self._setup[4]
        return self._evaluate(self.warm_u, self._v, step=0.0, information=information)[0]

    def _evaluate(self, u, v, step, information=None):
        """Objective and pieces at (u_local, v); ``information`` None: the working
        (Fisher) weights of the iteration."""
        self._v = v
        if self._fused is not None:
            return self._fused_evaluate(u, v, step)
        disp = self._setup[1]
        resp = self.response
        eta = self._fixed + self._C.matvec(v)
        if self.re is not None:
            eta = eta + self.re.linear_predictor(self._scaled, u)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            mu, neg2ll = resp.mu_and_neg2ll(eta, disp)
        pdev = float(neg2ll.sum() + u @ u)
        if not np.isfinite(pdev):
            return Pieces(pdev, np.nan, None, None, step), u, None
        w, dmu = resp.irls_quantities(eta, mu, disp)
        if information == "observed":
            w = resp.observed_weights(eta, mu, disp)
        resid = np.divide(resp.y - mu, dmu, out=np.zeros_like(mu), where=dmu != 0)
        # the working response on the scale solved for: Z_l Λ u + C v (+ resid)
        lin = eta - self._fixed
        weighted = w * (lin + resid)
        pieces, cache = self._schur(w, weighted)
        return Pieces(pdev, *pieces, step, *self._next_step(cache, u, v)), u, cache

    def _next_step(self, cache, u, v):
        """(gap, coupling, decrement) of the local part of the next Newton step.

        The back-solve is linear in v, so the local step is ``u⁺ − u = δ −
        L⁻ᵀ L_c1ᵀ Δv`` with δ = L⁻ᵀ(y − L_c1ᵀ v) − u: ``|u⁺ − u|∞ ≤ gap + coupling
        |Δv|∞`` with gap = |δ|∞ and coupling the ∞-norm of L⁻ᵀ L_c1ᵀ; the local
        part of the Newton decrement is |L₁₁⁻¹ g_local|² = |L₁₁ᵀ δ|². Both cheap
        for a diagonal L₁₁ (the fast path); inf otherwise (no early end).
        """
        factor, _, X = cache
        if factor is None:
            return 0.0, 0.0, 0.0
        if self._sparse_schur(self._C) is None:
            return np.inf, np.inf, np.inf
        diag = factor.diag[0]
        delta = self._back_solve(cache, v) - u
        decrement = float(np.sum((diag.L[:, 0, 0] * delta) ** 2))
        return _max_abs(delta), sparse_schur.coupling_norm(X[0], diag), decrement

    def _fused_evaluate(self, u, beta, step):
        """:meth:`_evaluate` by the compiled joint pass (one scalar local term, β
        the only central unknowns): the local block is diagonal, so the Schur
        piece onto β is X'WX − (Z'WX)ᵀ D⁻¹ Z'WX with D = Λ'Z'WZΛ + I."""
        pdev = self._fused.evaluate(u, self.data.exog @ beta)
        if not np.isfinite(pdev):
            return Pieces(pdev, np.nan, None, None, step), u, None
        d, r, zwx, xwx, rx = self._fused.system()
        scaled = zwx / d[:, None]
        schur = xwx - zwx.T @ scaled
        # the next step's local part (see _next_step): δ = D⁻¹(r − Z'WX β) − u, the
        # coupling ‖D⁻¹ Z'WX‖∞ and the decrement |D^½ δ|²
        delta = (r - zwx @ beta) / d - u
        coupling = float(np.max(np.abs(scaled).sum(axis=1), initial=0.0))
        pieces = Pieces(pdev, float(np.sum(np.log(d))), schur, rx - scaled.T @ r, step,
                        _max_abs(delta), coupling, float(np.sum(d * delta ** 2)))
        return pieces, u, ("fused", r, zwx, d)

    def _schur(self, w, weighted):
        """(log|L₁₁|², Schur piece, reduced rhs) and what the back-solve needs."""
        C = self._C
        A_cc, r_c = C.gram(w), C.rmatvec(weighted)
        if self.re is None:
            return (0.0, A_cc, r_c), (None, None, None)
        factor = self.system.factor(self._scaled, w)
        r_local = self.system.rhs(self._scaled, weighted)
        fast = self._sparse_schur(C)
        if fast is not None:
            y = [factor.diag[0].solve(r_local[0])]
            X = [fast.l_c1(w, C, self._scaled[0], factor.diag[0])]
            schur = fast.minus_gram(A_cc, X[0])
        else:
            y, X = self._forward(C, w, factor, r_local)
            schur = A_cc
            for Xj in X:
                schur = schur - _gram(Xj)
        rhs = r_c.copy()
        for Xj, yj in zip(X, y):
            rhs = rhs - Xj @ yj
        return (factor.logdet2(), schur, rhs), (factor, y, X)

    def _sparse_schur(self, C):
        """The fixed-pattern Schur products of one scalar local term
        (:mod:`.sparse_schur`), built once per layout of the central columns;
        None where the general path applies."""
        if not sparse_schur.applies(self.re.terms):
            return None
        key = C.X is not None
        if key not in self._fast:
            term = self.re.terms[0]
            self._fast[key] = sparse_schur.ScalarLocalSchur(C, term.refs, term.n_levels)
        return self._fast[key]

    def _forward(self, C, w, factor, r_local):
        """Forward solve of the local blocks: y_j and X_j = A_cj L_jj⁻ᵀ (after the
        earlier blocks' parts are taken out)."""
        k = len(self.re.terms)
        y, X = [], []
        for j in range(k):
            v = r_local[j]
            for l in range(j):
                v = v - matmul(factor.lower[j, l], y[l])
            y.append(factor.diag[j].solve(v))
            A_cj = C.cross(w, self.system, self._scaled, j)
            if k == 1:
                # one local term: A_c1 stays sparse (a level of the partitioning
                # factor meets few crossed levels), so L_c1 L_c1ᵀ costs Σ nnz² per
                # column instead of q_c² q_1
                X.append(_sparse_rdiv_t(A_cj, factor.diag[0]))
                continue
            A_cj = A_cj.toarray()
            for l in range(j):
                A_cj = subtract(A_cj, product_t(X[l], factor.lower[j, l]))
            X.append(np.asarray(factor.diag[j].rdiv_t(A_cj)))
        return y, X

    def _back_solve(self, cache, v):
        """Local modes given the central solution v (back-substitution)."""
        if cache[0] == "fused":  # D u = r − Z'WX β
            _, r, zwx, d = cache
            return (r - zwx @ v) / d
        factor, y, X = cache
        if factor is None:
            return np.empty(0)
        k = len(y)
        x = [None] * k
        for j in reversed(range(k)):
            t = y[j] - X[j].T @ v
            for i in range(j + 1, k):
                t = t - matmul_t(factor.lower[i, j], x[i])
            x[j] = factor.diag[j].solve_t(t)
        return np.concatenate(x)

    # -- one-pass statistics -------------------------------------------------------------------
    def glm_pieces(self):
        """X'WX and X'Wz of one weighted least-squares step from R's mustart."""
        if self.nobs == 0:
            return np.zeros((self.k_fe, self.k_fe)), np.zeros(self.k_fe)
        X = self.data.exog
        with np.errstate(all="ignore"):
            w, z, ok = start_working_response(self.response.kernel, self.response.y,
                                              self.data.offset)
            w, z = np.where(ok, w, 0.0), np.where(ok, z, 0.0)
        return weighted_gram(X, w), X.T @ (w * z)

    def pearson_sum(self, beta):
        """Σ Pearson χ² contributions at the GLM fit (the dispersion's start)."""
        if self.nobs == 0:
            return 0.0
        kernel = self.response.kernel
        with np.errstate(all="ignore"):
            mu = kernel.mu(self.data.exog @ beta + self.data.offset)
            return kernel.start_dispersion(mu, 1.0)

    def reach(self, C):
        """max |X C| per column (how far a unit step of each column moves η)."""
        if self.nobs == 0:
            return np.zeros(C.shape[1])
        return np.max(np.abs(self.data.exog @ C), axis=0)

    def sample_row(self):
        """The first row (endog, weights), None if empty: the driver builds its
        family kernel from it without holding data."""
        if self.nobs == 0:
            return None
        w = None if self.data.weights is None else self.data.weights[:1]
        return self.data.endog[:1], w

    def covariate_squares(self):
        """Per term, Σ z² per covariate column, and the number of rows (the θ scale)."""
        return [np.sum(z * z, axis=0) for z in self.data.z], self.nobs

    def fitted_summary(self, theta, disp, beta, u_central, probs):
        """At the modes (the warm start, after an evaluation at this point): the
        Pearson residuals' quantiles at ``probs``, Σ unit deviances, the number of
        rows, the fitted means at their bound (separation), and per term the
        weight sums by level of :func:`diagnostics.level_weight_sums` (local
        levels for a local term, all levels for a crossed one)."""
        if self.nobs == 0:
            return None, 0.0, 0, 0, None
        self._settle()
        resp = self.response
        eta = self.data.offset + self.data.exog @ beta
        if self.re is not None:
            eta = eta + self.re.linear_predictor(self._scaled_local(theta), self.warm_u)
        if u_central.size:
            eta = eta + self._central_design(theta, False).matvec(u_central)
        mu = resp.mu(eta)
        pearson = (resp.y - mu) * np.sqrt(resp.weights / resp.variance(mu, disp))
        deviance = float(resp.unit_deviance(mu, disp).sum())
        kind = resp.kernel.separation
        at_bound = count_at_bound(kind, resp.y, resp.weights, mu)
        sums = None
        if kind is not None:
            local = dict(zip(self.local, self.re.terms if self.re is not None else []))
            sums = [level_weight_sums(kind, resp.y, resp.weights, local[j].refs,
                                      local[j].n_levels) if j in local else
                    level_weight_sums(kind, resp.y, resp.weights, self.data.refs[j], n_re // s)
                    for j, (n_re, s) in enumerate(self._term_sizes)]
        return np.quantile(pearson, probs), deviance, self.nobs, at_bound, sums

    def lmm_blocks(self, sizes):
        """The partition's cross-products for the one-pass linear mixed model."""
        from .lmm_pass import partition_blocks

        return partition_blocks(self.data, sizes) if self.nobs else None

    def set_local_modes(self, u, offsets):
        """Take this partition's local modes from all the modes ``u`` (model order,
        term j at ``offsets[j]``), after a fit that solved for them centrally."""
        pieces = []
        for j, codes in zip(self.local, self.local_levels):
            s = self.data.z[j].shape[1]
            idx = (codes[:, None] * s + np.arange(s)).ravel()
            pieces.append(u[offsets[j]:offsets[j + 1]][idx])
        self._trial = self._base = None
        self.warm_u = np.concatenate(pieces) if pieces else np.empty(0)
        self._warm_at = (None, None)

    def local_modes(self):
        """(global level codes per local term, the local modes) for ranef()."""
        self._settle()
        return self.local_levels, self.warm_u


@dataclass
class CentralDesign:
    """The columns of the central unknowns v = (u_crossed, β): per crossed term its
    rows' level codes, their Z Λ values and its number of random effects, and X
    (dense, or None when β is fixed). Products are accumulated with ``bincount``
    on level codes, as :class:`blocked_cholesky.PenalizedSystem` does."""

    terms: list
    X: object

    @property
    def n_re(self):
        return sum(size for _, _, size in self.terms)

    def _columns(self, refs, zt, a):
        return refs * zt.shape[1] + a

    def matvec(self, v):
        out, start = 0.0, 0
        for refs, zt, size in self.terms:
            u = v[start:start + size].reshape(-1, zt.shape[1])
            out = out + np.einsum("ij,ij->i", zt, u[refs])
            start += size
        if self.X is not None:
            out = out + self.X @ v[start:]
        return out

    def rmatvec(self, r):
        parts = []
        for refs, zt, size in self.terms:
            s = zt.shape[1]
            cols = [np.bincount(refs, weights=r * zt[:, a], minlength=size // s)
                    for a in range(s)]
            parts.append(np.column_stack(cols).ravel())
        if self.X is not None:
            parts.append(self.X.T @ r)
        return np.concatenate(parts) if parts else np.empty(0)

    def _pair(self, w, left, right):
        """Dense block Σ_i w_i (Z_k Λ_k)_i' (Z_l Λ_l)_i of two crossed terms."""
        (rk, zk, qk), (rl, zl, ql) = left, right
        if left is right:  # block diagonal: per level S x S
            s = zk.shape[1]
            out = np.zeros((qk, qk))
            for a in range(s):
                for b in range(s):
                    idx = np.arange(qk // s) * s
                    out[idx + a, idx + b] = np.bincount(rk, weights=w * zk[:, a] * zk[:, b],
                                                        minlength=qk // s)
            return out
        out = np.zeros(qk * ql)
        for a in range(zk.shape[1]):
            wa = w * zk[:, a]
            for b in range(zl.shape[1]):
                flat = self._columns(rk, zk, a).astype(np.int64) * ql + self._columns(rl, zl, b)
                out += np.bincount(flat, weights=wa * zl[:, b], minlength=qk * ql)
        return out.reshape(qk, ql)

    def _with_x(self, w, term):
        """Σ_i w_i (Z_k Λ_k)_i' x_i, dense (q_k, p)."""
        refs, zt, size = term
        return x_border(refs, zt, size // zt.shape[1], w, self.X).T

    def gram(self, w):
        """Cᵀ W C, dense."""
        rows = [[self._pair(w, tk, tl) for tl in self.terms] for tk in self.terms]
        if self.X is not None:
            border = [self._with_x(w, tk) for tk in self.terms]
            for row, b in zip(rows, border):
                row.append(b)
            rows.append([b.T for b in border] + [self.X.T @ (w[:, None] * self.X)])
        return np.block(rows) if rows else np.zeros((0, 0))

    def cross(self, w, system, scaled, j):
        """Cᵀ W Z_j Λ_j for local term j, sparse (m_c, q_j) (the X rows dense)."""
        term = system.re.terms[j]
        zj, sj = scaled[j], scaled[j].shape[1]
        parts = []
        for refs, zt, size in self.terms:
            rows, cols, vals = [], [], []
            for a in range(zt.shape[1]):
                for b in range(sj):
                    rows.append(self._columns(refs, zt, a))
                    cols.append(term.refs * sj + b)
                    vals.append(w * zt[:, a] * zj[:, b])
            parts.append(sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                        np.concatenate(cols))), shape=(size, term.n_re)))
        if self.X is not None:
            parts.append(sp.csr_matrix(x_border(term.refs, zj, term.n_levels, w, self.X)))
        return sp.vstack(parts, format="csr")


def _gram(X, dense_above=0.01):
    """X Xᵀ as a dense matrix: a sparse product while X is very sparse (cost
    Σ nnz² per column), else BLAS's syrk on X made dense (a sparse product's
    bookkeeping costs more than the flops once columns hold many entries)."""
    if sp.issparse(X):
        if X.nnz <= dense_above * X.shape[0] * X.shape[1]:
            return (X @ X.T).toarray()
        X = X.toarray()
    if X.size == 0:
        return np.zeros((X.shape[0], X.shape[0]))
    upper = sla_blas.dsyrk(1.0, np.asfortranarray(X))
    return np.triu(upper) + np.triu(upper, 1).T


def _sparse_rdiv_t(A, diag):
    """A L⁻ᵀ for a sparse A and a block-diagonal factor L (per-level S x S blocks)."""
    inv_t = np.transpose(diag.inverse, (0, 2, 1))
    ell, s = inv_t.shape[0], inv_t.shape[1]
    if s == 1:  # scalar term: a column scaling
        return (A @ sp.diags(inv_t[:, 0, 0])).tocsr()
    rows = np.repeat(np.arange(ell * s).reshape(ell, s), s, axis=1).ravel()
    cols = np.tile(np.arange(ell * s).reshape(ell, s), (1, s)).ravel()
    # block l maps column l*S + a of A to column l*S + b with weight inv_t[l, a, b]
    block = sp.csr_matrix((inv_t.ravel(), (rows, cols)), shape=(ell * s, ell * s))
    return (A @ block).tocsr()


def _max_abs(x):
    return float(np.max(np.abs(x), initial=0.0))
