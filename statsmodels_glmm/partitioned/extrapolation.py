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
"""

import itertools

import numpy as np

__all__ = ["ModeTrail", "combine_stored"]

# beyond this Σ|c_k| the new point lies far outside the last points, where the
# linear model of the modes has no support
MAX_WEIGHT = 4.0

_OWNERS = itertools.count()


class ModeTrail:
    """The points and central modes of a deviance function's last d + 1
    evaluations (d parameters, the size of the first point)."""

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
        del self.tags[:-self.size], self.points[:-self.size], self.central[:-self.size]

    def _weights(self, point):
        """The affine weights reproducing ``point`` from the last points, over
        the parameters that move (a fixed one, e.g. θ at its bound, must equal
        theirs); None when the trail is too short or the system degenerate."""
        if not self.points:
            return None
        P = np.array(self.points)
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

def combine_stored(stored, weights):
    """Σ c_k u_k over a partition's stored local modes; None when one is missing
    (stored by another deviance function, or never)."""
    if weights is None or any(tag not in stored for tag in weights):
        return None
    return sum(c * stored[tag] for tag, c in weights.items())
