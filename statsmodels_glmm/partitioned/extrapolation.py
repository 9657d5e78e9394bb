"""Warm starts of the central iteration extrapolated along the optimizer's path.

PIRLS converges quadratically, so the rounds an evaluation takes depend on how
far its start lies from the modes. The modes are a smooth function of the
parameters p (θ, dispersion, β): from the modes x_k at the last d + 1 points
p_k (d parameters), the affine combination ``Σ c_k x_k`` with ``Σ c_k p_k = p``
and ``Σ c_k = 1`` is exact to first order in the distance to those points,
where the last modes alone are exact only to zeroth order. The weights are
computed by the driver from the points alone; each partition combines its own
stored local modes with them, so nothing but the weights travels.

The start only decides how many iterations PIRLS takes, never where it ends
(its convergence rule is unchanged); far outside the points (large weights)
the linear model is not trusted and the usual warm start is used.

A spherical mode u of a scalar term moves η by θ u, and where the data
dominate the penalty it is θ u that stays put as θ changes, u ∝ 1/θ being far
from affine in θ: the trail combines θ u (:func:`mode_scale`) and divides by
the new θ. The usual warm start, the modes at another θ, is carried to the new
θ alike (:func:`rescaled_start`); keeping u where θ changes by half would move η
by half the random effects, many PIRLS iterations from the new modes (the
optimizer's first, wide moves).
"""

import itertools

import numpy as np

__all__ = ["ModeTrail", "combine_stored", "mode_scale", "rescaled_start",
           "scalar_terms"]

# beyond this Σ|c_k| the new point lies far outside the last points, where the
# linear model of the modes has no support
MAX_WEIGHT = 4.0
# points kept, in multiples of d + 1: where the last d + 1 do not support the
# new point (a finite-difference Hessian moves along other axes), older ones may
HISTORY = 3
# ... those within this distance (relative to the point's size): a cluster of
# small moves (the Hessian's), not the optimizer's path, along which the warm
# start carried to θ does better (C1: 3 rounds against 4-5)
NEAR = 1e-2

_OWNERS = itertools.count()


class ModeTrail:
    """The points and central modes of a deviance function's last evaluations:
    the last d + 1 (d parameters, the size of the first point) interpolate, and
    ``HISTORY`` times as many serve where those do not support a point."""

    def __init__(self):
        self.owner = next(_OWNERS)  # the partitions keep one owner's modes
        self.size = None
        self.tags, self.points, self.central = [], [], []
        self._count = 0
        self._pending = None

    def plan(self, point):
        """The message for the partitions' ``central_start`` and the central
        start (None: the usual warm start) for an evaluation at ``point``.

        The message is (owner, tag of this evaluation, tags to keep, weights by
        tag or None).
        """
        point = np.asarray(point, dtype=float)
        if self.size != point.size + 1:
            self.size, self.tags, self.points, self.central = point.size + 1, [], [], []
        tag, self._count = self._count, self._count + 1
        self._pending = (tag, point)
        weights = self._weights(point)
        if weights is None:
            return (self.owner, tag, list(self.tags), None), None
        used = self.central[-weights.size:]
        v0 = sum(c * v for c, v in zip(weights, used))
        return (self.owner, tag, list(self.tags),
                dict(zip(self.tags[-weights.size:], weights))), v0

    def record(self, central):
        """The evaluation planned last converged, to central modes ``central``."""
        tag, point = self._pending
        self.tags.append(tag)
        self.points.append(point)
        self.central.append(np.asarray(central, dtype=float))
        keep = self.size * HISTORY
        del self.tags[:-keep], self.points[:-keep], self.central[:-keep]

    def _weights(self, point):
        """The affine weights reproducing ``point`` from the last d + 1 points
        (:meth:`_interpolate`), else from all kept ones (:meth:`_nearest`); for
        the last ``weights.size`` points. None where neither applies."""
        if not self.points:
            return None
        P = np.array(self.points)
        weights = self._interpolate(P[-self.size:], point)
        if weights is None and len(P) > self.size:
            weights = self._nearest(P, point)
        return weights

    @staticmethod
    def _interpolate(P, point):
        """The affine weights reproducing ``point`` from the last points ``P``,
        over the parameters that move (a fixed one, e.g. θ at its bound, must
        equal theirs); None when too few or the system degenerate."""
        moving = np.ptp(P, axis=0) > 0
        if np.any(point[~moving] != P[-1, ~moving]):
            return None
        m = int(moving.sum()) + 1
        if len(P) < m:
            return None
        P, point = P[-m:, moving], point[moving]
        # centred and scaled by the points' spread, for a meaningful condition
        spread = np.ptp(P, axis=0)
        if np.any(spread == 0):
            return None
        A = np.vstack([((P - P[-1]) / spread).T, np.ones(m)])
        b = np.append((point - P[-1]) / spread, 1.0)
        try:
            weights = np.linalg.solve(A, b)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(weights)) or np.sum(np.abs(weights)) > MAX_WEIGHT:
            return None
        return weights

    @staticmethod
    def _nearest(P, point):
        """Affine weights over the points ``P`` within ``NEAR`` (0 for the
        others) reproducing ``point``, least
        Σ d_k² c_k² (d_k the scaled distance of point k: the first-order error
        grows with it), from the moving parameters; None where they do not
        reach ``point`` or are large."""
        moving = np.ptp(P, axis=0) > 0
        if np.any(point[~moving] != P[-1, ~moving]) or not np.any(moving):
            return None
        offsets = (P[:, moving] - point[moving]) / np.ptp(P[:, moving], axis=0)
        dist2 = np.sum(offsets ** 2, axis=1)
        if np.any(dist2 == 0):
            return None  # a point evaluated before: its modes are the usual warm start
        near = np.max(np.abs(P - point), axis=1) <= NEAR * max(np.max(np.abs(point)), 1.0)
        dist2 = np.where(near, dist2, np.inf)
        A = np.vstack([offsets.T, np.ones(len(P))])
        b = np.append(np.zeros(offsets.shape[1]), 1.0)
        try:
            weights = (A / dist2).T @ np.linalg.solve((A / dist2) @ A.T, b)
        except np.linalg.LinAlgError:
            return None
        if (not np.all(np.isfinite(weights)) or np.sum(np.abs(weights)) > MAX_WEIGHT
                or not np.allclose(A @ weights, b, rtol=0.0, atol=1e-8)):
            return None
        return weights

def combine_stored(stored, weights):
    """Σ c_k u_k over a partition's stored local modes; None when one is missing
    (stored by another deviance function, or never)."""
    if weights is None or any(tag not in stored for tag in weights):
        return None
    return sum(c * stored[tag] for tag, c in weights.items())


def scalar_terms(slices, sizes, n_covs):
    """The (θ slice, number of modes, whether scalar) of each term, in mode order,
    as :func:`rescaled_start` reads them."""
    return [(sl, n_re, n_cov == 1) for sl, n_re, n_cov in zip(slices, sizes, n_covs)]


def rescaled_start(u, theta, theta_old, precision, terms):
    """Modes ``u`` found at ``theta_old`` carried to ``theta``, per level of a
    scalar term with θ and θ_old positive (other modes are kept).

    A level's mode, with the working weights and the other modes held, is
    u = θ r / (θ² s + 1) (r, s its weighted sums): with ρ = θ / θ_old and the
    old diagonal of the precision d = θ_old² s + 1,
    ``u' = u ρ d / (1 + ρ² (d − 1))``. It keeps θ u (so η) where the data
    dominate the penalty (d large) and tends to 0 with θ.

    Parameters
    ----------
    u : ndarray
    theta, theta_old : ndarray
        The new and the modes' θ (all terms).
    precision : ndarray or None
        d per mode, the diagonal of the precision at the modes (None: ``u`` is
        returned).
    terms : list
        :func:`scalar_terms` of the modes' terms.
    """
    if theta_old is None or precision is None:
        return u
    with np.errstate(all="ignore"):
        ratio = _term_theta(theta, terms, u.size) / _term_theta(theta_old, terms, u.size)
        moved = u * ratio * precision / (1.0 + ratio ** 2 * (precision - 1.0))
    return np.where((ratio == 1.0) | ~np.isfinite(moved), u, moved)


def mode_scale(theta, terms, size):
    """Per mode, θ of its term where the term is scalar and θ positive, else 1
    (also for the modes after the terms', β): the trail stores modes times it
    and divides its combination by it at the new θ."""
    scale = _term_theta(theta, terms, size)
    return np.where(np.isnan(scale), 1.0, scale)


def _term_theta(theta, terms, size):
    """θ of each mode's scalar term (NaN where θ ≤ 0), 1 for the other modes."""
    out, start = np.ones(size), 0
    for sl, n_re, scalar in terms:
        if scalar:
            t = np.ravel(theta)[sl][0]
            out[start:start + n_re] = t if t > 0 else np.nan
        start += n_re
    return out
