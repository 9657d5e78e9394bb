"""The deviance function of a partitioned model (the seam of :mod:`devfun`, with the
O(n) passes run partition by partition).

One evaluation at (θ, dispersion, β):

- only local terms (one grouping factor, or factors nested in the partitioning
  one) and β fixed: every partition runs its own PIRLS and Laplace or adaptive
  quadrature and returns its share: **one round**;
- crossed terms, or β estimated jointly (nAGQ=0): PIRLS over the central
  unknowns v = (u_crossed, β), one round per iteration. The partitions send their
  Schur pieces and reduced right-hand sides (exact sums), the driver solves the
  small dense system and broadcasts v; a rejected step is halved in the next
  round, as the in-memory PIRLS does.

The driver holds only the central unknowns; the local modes stay in the
partitions (their warm start), and :meth:`PartitionedModel.ranef` gathers them
once at the end.
"""

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from ..devfun import DevianceFunction
from ..pirls import PirlsError, converged, step_accepted
from ..re_terms import theta_slices
from .extrapolation import ModeTrail, mode_scale, rescaled_start, scalar_terms

__all__ = ["PartitionedModes", "PartitionedDevianceFunction", "central_pirls"]


@dataclass
class PartitionedModes:
    """The conditional modes of a partitioned evaluation, as the stages see them.

    ``u`` is the central part only (crossed random effects); the local modes live
    in the partitions. ``beta`` is β (estimated in the joint iteration).
    """

    u: np.ndarray
    beta: np.ndarray
    pdev: float
    logdet: float
    iterations: int
    schur: np.ndarray = None
    theta: np.ndarray = None

    @property
    def penalized_deviance(self):
        return self.pdev

    def laplace(self):
        return self.pdev + self.logdet


def _assemble(pieces, penalty):
    S = sum(p.schur for p in pieces)
    S[np.diag_indices_from(S)] += penalty
    return S, sum(p.rhs for p in pieces)


def _total(pieces, v, n_central_re):
    vc = v[:n_central_re]
    return sum(p.pdev for p in pieces) + float(vc @ vc)


def _newton_point(pieces, penalty):
    """The central unknowns at the Newton point of the assembled system, and
    the system."""
    S, r = _assemble(pieces, penalty)
    try:
        return sla.cho_solve(sla.cho_factor(S, lower=True), r), S
    except np.linalg.LinAlgError:
        raise PirlsError("PIRLS: the crossed / fixed-effects block is singular") from None


def _newton_converged(pieces, S, dv, pdev, tol, step_tol):
    """Whether the Newton step from here, central part ``dv``, is provably one
    after which :func:`pirls.converged` would stop: every unknown moves by at most
    ``step_tol`` (the local modes by the partitions' bound gap + coupling |dv|∞)
    and the predicted decrease of the penalized deviance, the Newton decrement
    λ² = |L₁₁⁻¹ g_local|² + dvᵀ S dv, is below half the flatness threshold (the
    quadratic model is exact up to O(|step|³), far below it at such steps).

    Stopping here instead of after that step returns a point within
    ``step_tol`` of it and saves its round.
    """
    central = _max_abs(dv)
    if max([central] + [p.gap + p.coupling * central for p in pieces]) > step_tol:
        return False
    decrement = sum(p.decrement for p in pieces) + float(dv @ (S @ dv))
    return decrement <= 0.5 * tol * (abs(pdev) + 1)


def _max_abs(x):
    return float(np.max(np.abs(x), initial=0.0))


def central_pirls(executor, theta, disp, beta, v0, joint, information, canonical,
                  warm="last", trail=None, tol=1e-12, step_tol=1e-10, maxit=200,
                  max_halvings=30):
    """PIRLS over the central unknowns v = (u_crossed, β if ``joint``), the local
    modes solved in the partitions. Convergence and step-halving as
    :func:`pirls.pirls`, and one round earlier where the next Newton step is
    provably one after which that rule would stop (:func:`_newton_converged`).

    ``warm``, ``trail``: the partitions' starting local modes (see
    :meth:`kernels.PartitionState.central_start`).

    Returns
    -------
    PartitionedModes
    """
    q_c = executor.n_central_re
    penalty = np.concatenate([np.ones(q_c), np.zeros(v0.size - q_c)])
    pieces = executor.map("central_start", theta, disp, beta, v0, joint, information, warm,
                          trail)
    v, pdev = v0, _total(pieces, v0, q_c)
    if not np.isfinite(pdev):
        raise PirlsError("PIRLS: non-finite objective at the starting values")
    stalls, iterations = 0, 0
    for _ in range(maxit):
        v_new, S = _newton_point(pieces, penalty)
        if _newton_converged(pieces, S, v_new - v, pdev, tol, step_tol):
            break
        iterations += 1
        trial = executor.map("central_step", v_new)
        pdev_new = _total(trial, v_new, q_c)
        for _ in range(max_halvings):
            if step_accepted(pdev_new, pdev, tol):
                break
            v_new = 0.5 * (v + v_new)
            trial = executor.map("central_halve", v_new)
            pdev_new = _total(trial, v_new, q_c)
        else:
            raise PirlsError("PIRLS step-halvings failed to reduce the penalized deviance")
        change = pdev - pdev_new
        step = max(max(p.step for p in trial), _max_abs(v_new - v))
        v, pdev, pieces = v_new, pdev_new, trial
        done, stalls = converged(change, pdev, step, stalls, tol, step_tol)
        if done:
            break
    else:
        raise PirlsError(f"PIRLS did not converge in {maxit} iterations")
    final = pieces if canonical else executor.map("central_finish")
    S, _ = _assemble(final, penalty)
    logdet = sum(p.logdet for p in final)
    if q_c:
        try:
            Lc = np.linalg.cholesky(S[:q_c, :q_c])
        except np.linalg.LinAlgError:
            raise PirlsError(f"the {information} information at the conditional modes is "
                             "not positive definite") from None
        logdet += 2.0 * float(np.sum(np.log(np.diagonal(Lc))))
    return PartitionedModes(v[:q_c], v[q_c:] if joint else beta, pdev, logdet, iterations,
                            S, np.array(theta, dtype=float))


class PartitionedDevianceFunction(DevianceFunction):
    """−2 × the approximate marginal log-likelihood of a partitioned model, a
    callable over the packed parameters (the interface of
    :class:`devfun.DevianceFunction`).

    Parameters
    ----------
    model : PartitionedModel
    nAGQ : int
    information : {"observed", "expected"}
    u0 : ndarray, optional
        Warm start of the central (crossed) modes; the local ones are kept by
        the partitions.
    beta0 : ndarray, optional
        Joint stage: the starting β (default the GLM start).
    observer : callable, optional
    """

    def __init__(self, model, nAGQ=1, information="observed", u0=None, beta0=None,
                 observer=None):  # (DevianceFunction.__init__ reads the rows)
        self.model = model
        self.executor = model.executor
        self.nAGQ = int(nAGQ)
        self.information = information
        self.observer = observer
        self.layout = model.parameters
        self.joint = self.nAGQ == 0
        q_c = self.executor.n_central_re
        self.warm_u = np.zeros(q_c) if u0 is None or np.size(u0) != q_c else np.asarray(
            u0, dtype=float)
        if self.joint:
            self.warm_beta = np.asarray(model.glm_start()[0] if beta0 is None else beta0,
                                        dtype=float)
        self.best = np.inf
        self._promote = True
        self.nfev = 0
        self._trail = ModeTrail()
        terms = model.design.terms
        slices = theta_slices([t.n_theta for t in terms])
        central = model.design.central_terms
        self._terms = scalar_terms([slices[j] for j in central],
                                   [terms[j].n_re for j in central],
                                   [terms[j].n_cov for j in central])
        self._warm_at = (None, None)  # (θ, diagonal of the precision) at warm_u

    def update_warm_start(self, modes, value):
        # the partitions learn in the next round whether their last modes are the best
        self._promote = super().update_warm_start(modes, value)
        if self.warm_u is modes.u and getattr(modes, "schur", None) is not None:
            q_c = self.executor.n_central_re
            self._warm_at = (modes.theta, np.diagonal(modes.schur)[:q_c].copy())
        return self._promote

    def modes(self, theta, disp, beta=None, u0=None):
        """The conditional modes at (θ, disp, β); β estimated in the joint stage.

        Without ``u0``, the start is extrapolated from the last evaluations'
        modes where they support it (:mod:`.extrapolation`)."""
        ex = self.executor
        if not self.joint and ex.n_central_re == 0:
            return _LocalModes(theta, disp, np.asarray(beta, dtype=float))
        trail, v_trail = None, None
        if u0 is None or np.size(u0) != ex.n_central_re:
            u0 = self.warm_u
            point = [theta, [] if disp is None else np.ravel(disp),
                     [] if self.joint else beta]
            trail, v_trail = self._trail.plan(np.concatenate(point))
            if v_trail is None:  # the warm start carried to θ, as the partitions do
                u0 = rescaled_start(u0, theta, *self._warm_at, self._terms)
            else:  # the trail combines θ u (see extrapolation)
                v_trail = v_trail / mode_scale(theta, self._terms, v_trail.size)
        if self.joint:
            # the local modes start, as u and β here, from the best evaluation so far
            warm = "promote" if self._promote else "best"
            v0 = np.concatenate([u0, self.warm_beta]) if v_trail is None else v_trail
            modes = central_pirls(ex, theta, disp, None, v0, True, self.information,
                                  self.model.kernel_canonical, warm=warm, trail=trail)
        else:
            v0 = u0 if v_trail is None else v_trail
            modes = central_pirls(ex, theta, disp, np.asarray(beta, dtype=float), v0, False,
                                  self.information, self.model.kernel_canonical, trail=trail)
        if trail is not None:
            v = np.concatenate([modes.u, modes.beta]) if self.joint else modes.u
            self._trail.record(v * mode_scale(theta, self._terms, v.size))
        return modes

    def approximation(self, modes, theta, disp, beta=None):
        """Laplace or adaptive Gauss-Hermite value at the modes."""
        if isinstance(modes, _LocalModes):
            shares = self.executor.map("deviance", theta, disp, modes.beta,
                                       max(self.nAGQ, 1), self.information)
            return float(sum(shares))
        if self.nAGQ > 1:
            raise NotImplementedError("adaptive quadrature needs a single grouping factor")
        return modes.laplace()

    def external_beta(self, modes):
        return modes.beta


@dataclass
class _LocalModes:
    """Regime S: the modes are found inside the partitions during the evaluation
    itself (one round), so this only carries the point."""

    theta: np.ndarray
    disp: object
    beta: np.ndarray
    u: np.ndarray = None

    def __post_init__(self):
        self.u = np.empty(0)
