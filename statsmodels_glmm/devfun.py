"""The deviance function: −2 log-likelihood of a GLMM over its packed parameters.

This is the seam of the package (lme4's ``mkGlmerDevfun``/``updateGlmerDevfun``,
MixedModels.jl's ``objective!``): the optimizer, the finite-difference Hessian,
the likelihood profiles and :meth:`GLMM.deviance` all evaluate the likelihood
through a :class:`DevianceFunction`, so that another evaluation backend (data
partitioned over workers, compiled kernels) plugs in here. One evaluation is

    (θ, dispersion, β) → fixed η = offset + X β → PIRLS for û at θ
      → Laplace: −2 log p(y | û) + ‖û‖² + log|L|²,  or adaptive Gauss-Hermite.

With β fixed PIRLS does not touch X: ``X β + offset`` enters once.

Two stages, as lme4:

- ``nAGQ=0`` ("joint"): the parameters are (θ, dispersion) and β is found by
  PIRLS jointly with u; the warm start is the modes of the *best* evaluation so
  far (BOBYQA's incumbent, around which it samples);
- ``nAGQ ≥ 1``: the parameters are (θ, dispersion, β); the warm start is the
  modes of the *last* evaluation (the optimizer's neighbouring points).
"""

import numpy as np

from .pirls import pirls
from .quadrature import agq_deviance

__all__ = ["DevianceFunction"]


class DevianceFunction:
    """−2 × the approximate marginal log-likelihood, a callable over the packed
    parameters of :class:`params.ParameterLayout`.

    Parameters
    ----------
    model : GLMM
    nAGQ : int
        0: the joint stage (parameters θ and dispersion, β by PIRLS); 1: the
        Laplace approximation; more: adaptive Gauss-Hermite quadrature.
    information : {"observed", "expected"}
        Curvature of the Laplace approximation (see :meth:`GLMM.fit`).
    u0 : array_like, optional
        Initial warm start of the spherical random effects (default 0).
    beta0 : array_like, optional
        Joint stage only: the starting β of PIRLS (default the GLM start).
    observer : callable, optional
        ``observer(nfev, params, value)`` after each evaluation (see
        :class:`progress.FitMonitor`); it sees the evaluations, never changes them.

    Attributes
    ----------
    warm_u : ndarray
        The modes the next PIRLS starts from.
    nfev : int
        Number of evaluations so far.
    """

    def __init__(self, model, nAGQ=1, information="observed", u0=None, beta0=None,
                 observer=None):
        self.model = model
        self.observer = observer
        self.nAGQ = int(nAGQ)
        self.information = information
        self.layout = model.parameters
        self.joint = self.nAGQ == 0
        self.warm_u = np.zeros(model.random_effects.n_re) if u0 is None else np.asarray(
            u0, dtype=float)
        if self.joint:
            start = model.glm_start()[0] if beta0 is None else np.asarray(beta0, float)
            self.warm_beta = model.design_basis.to_internal(start)  # internal coordinates
        self.best = np.inf
        self.nfev = 0

    def __call__(self, params):
        """The deviance at ``params`` (updating the warm start)."""
        self.nfev += 1
        theta, disp, beta = self.layout.unpack(params)
        modes = self.modes(theta, disp, beta)
        value = self.approximation(modes, theta, disp, beta)
        self.update_warm_start(modes, value)
        if self.observer is not None:
            self.observer(self.nfev, params, value)
        return value

    def update_warm_start(self, modes, value):
        """The next evaluation starts from the best modes so far (joint stage),
        else from these; returns whether these became the best."""
        if not self.joint:
            self.warm_u = modes.u
            return False
        best = value <= self.best
        if best:
            self.warm_u, self.warm_beta, self.best = modes.u, modes.beta, value
        return best

    def modes(self, theta, disp, beta=None, u0=None):
        """PIRLS at (θ, disp, β) from the warm start (or ``u0``).

        In the joint stage β is estimated and returned as ``modes.beta`` in the
        internal coordinates of the design basis (see :meth:`external_beta`).
        """
        model = self.model
        scaled = model.random_effects.scaled_covariates(theta)
        u0 = self.warm_u if u0 is None else u0
        if self.joint:
            return pirls(model.response, model.random_effects, model.system, scaled,
                         model.offset, u0, disp, X=model.design_basis.X,
                         beta0=self.warm_beta, information=self.information)
        return pirls(model.response, model.random_effects, model.system, scaled,
                     self.fixed_eta(beta), u0, disp, beta=beta,
                     information=self.information)

    def fixed_eta(self, beta):
        """offset + X β, with one n-vector (not two) alive on large data."""
        fixed = self.model.exog @ beta
        fixed += self.model.offset
        return fixed

    def approximation(self, modes, theta, disp, beta=None):
        """Laplace (nAGQ ≤ 1) or adaptive Gauss-Hermite value at the modes."""
        if self.nAGQ <= 1:
            return modes.laplace()
        model = self.model
        scaled = model.random_effects.scaled_covariates(theta)
        return agq_deviance(model.response, model.random_effects, scaled,
                            self.fixed_eta(beta), modes, self.nAGQ, disp)

    def external_beta(self, modes):
        """β of joint-stage modes in the user's coordinates."""
        return self.model.design_basis.to_external(modes.beta)
