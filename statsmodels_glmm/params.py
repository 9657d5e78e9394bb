"""The GLMM parameter vector: one home for its layout and its coordinates.

The packed vector is ``(θ, dispersion, β)``:

- θ: lme4's relative covariance factors (per term, the lower triangle by
  columns), bounded below by 0 on the diagonal;
- the family's dispersion parameters in their unconstrained form (log φ,
  log α, logit(p − 1): see :mod:`families`), none for binomial and Poisson;
- β: the fixed effects (the columns kept after the rank check).

The optimizer works in other coordinates, where the problem is well scaled
(:class:`OptimizerMap`): θ · scale (the units of the random-effect covariates
removed, see ``RandomEffects.theta_scale``) and β = β₁ + C z, whitened by the
Cholesky factor C of its conditional covariance.

The sd/correlation parameterization of the random effects (lme4's ``.sig01``
...) is here too, with one convention for a correlation that involves a zero
standard deviation: undefined, NaN (as R's ``cov2cor``).
"""

import numpy as np
import scipy.linalg as sla

__all__ = ["ParameterLayout", "OptimizerMap", "theta_to_sdcor", "sdcor_to_theta",
           "sdcor_from_covariance", "sdcor_bounds"]


class ParameterLayout:
    """Pack and unpack the parameter vector (θ, dispersion, β) of a model.

    Parameters
    ----------
    random_effects : re_terms.RandomEffects
    kernel : families.FamilyKernel
    k_fe : int
    fe_names : list of str, optional
    """

    def __init__(self, random_effects, kernel, k_fe, fe_names=None):
        self.random_effects = random_effects
        self.kernel = kernel
        self.k_theta = random_effects.n_theta
        self.k_dispersion = kernel.n_dispersion
        self.k_fe = k_fe
        self.fe_names = list(fe_names) if fe_names is not None else [
            f"x{i}" for i in range(k_fe)]

    @property
    def size(self):
        return self.k_theta + self.k_dispersion + self.k_fe

    @property
    def theta_slice(self):
        return slice(0, self.k_theta)

    @property
    def dispersion_slice(self):
        return slice(self.k_theta, self.k_theta + self.k_dispersion)

    @property
    def beta_slice(self):
        return slice(self.k_theta + self.k_dispersion, None)

    def pack(self, theta, disp, beta=()):
        """(θ, disp, β) → the packed vector (β may be omitted: the nAGQ=0 stage)."""
        return np.concatenate([np.asarray(theta, dtype=float),
                               self.kernel.pack_dispersion(disp),
                               np.asarray(beta, dtype=float)])

    def unpack(self, params):
        """The packed vector → (θ, disp, β) (β empty if the vector has none)."""
        params = np.asarray(params, dtype=float)
        disp = (self.kernel.unpack_dispersion(params[self.dispersion_slice])
                if self.k_dispersion else self.kernel.default_dispersion())
        return params[self.theta_slice], disp, params[self.beta_slice]

    def lower(self, with_beta=True):
        """Lower bounds: 0 for θ diagonal elements, −∞ otherwise."""
        parts = [self.random_effects.theta_lower(), np.full(self.k_dispersion, -np.inf)]
        if with_beta:
            parts.append(np.full(self.k_fe, -np.inf))
        return np.concatenate(parts)

    def names(self):
        """θ names (lme4's ``theta`` labels), dispersion names, fixed-effect names."""
        return (list(self.random_effects.theta_names())
                + [f"log_{n}" if n != "power" else "logit_power"
                   for n in self.kernel.dispersion_names]
                + self.fe_names)


class OptimizerMap:
    """The optimizer's coordinates x = (θ · scale, packed dispersion, z) and the
    packed parameters, with β = β₁ + C z (no z part when β is profiled out).

    Parameters
    ----------
    layout : ParameterLayout
    beta_center : array_like, optional
        β₁; omitted for the nAGQ=0 stage, whose vector has no β.
    whitening : ndarray, optional
        C (default the identity).
    """

    def __init__(self, layout, beta_center=None, whitening=None):
        self.layout = layout
        self.scale = layout.random_effects.theta_scale()
        self.beta_center = None if beta_center is None else np.asarray(beta_center, float)
        if whitening is None and beta_center is not None:
            whitening = np.eye(layout.k_fe)
        self.whitening = whitening

    @property
    def k_head(self):
        """Number of covariance parameters (θ and dispersion)."""
        return self.layout.k_theta + self.layout.k_dispersion

    def to_packed(self, x):
        """Optimizer coordinates → packed parameters."""
        k, m = self.layout.k_theta, self.k_head
        parts = [x[:k] / self.scale, x[k:m]]
        if self.beta_center is not None:
            parts.append(self.beta_center + self.whitening @ x[m:])
        return np.concatenate(parts)

    def from_packed(self, params):
        """Packed parameters → optimizer coordinates."""
        k, m = self.layout.k_theta, self.k_head
        parts = [params[:k] * self.scale, params[k:m]]
        if self.beta_center is not None:
            parts.append(np.linalg.solve(self.whitening, params[m:] - self.beta_center))
        return np.concatenate(parts)

    def lower(self):
        return self.layout.lower(with_beta=self.beta_center is not None)

    def jacobian(self):
        """dx/d(packed): maps a Hessian in x to the packed coordinates, J' H J."""
        blocks = [np.diag(self.scale), np.eye(self.layout.k_dispersion)]
        if self.beta_center is not None:
            blocks.append(np.linalg.inv(self.whitening))
        return sla.block_diag(*blocks)

    def wrap(self, function):
        """``function`` of packed parameters as a function of x."""
        def in_optimizer_coordinates(x):
            return function(self.to_packed(x))
        return in_optimizer_coordinates


# -- the sd/correlation parameterization -----------------------------------------------------
def sdcor_from_covariance(cov):
    """Standard deviations and the correlations below the diagonal by columns
    (lme4's order); a correlation with a zero standard deviation is NaN."""
    sd = np.sqrt(np.diag(cov))
    corr = []
    for j in range(len(sd)):
        for i in range(j + 1, len(sd)):
            corr.append(cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan)
    return sd, np.array(corr)


def theta_to_sdcor(random_effects, theta):
    """θ → (sd, corr) of every term, in lme4's ``.sig`` order (relative to σ for
    the linear mixed model)."""
    out = []
    for T in random_effects.factors(np.asarray(theta, dtype=float)):
        sd, corr = sdcor_from_covariance(T @ T.T)
        out.extend(sd)
        out.extend(corr)
    return np.array(out)


def sdcor_to_theta(random_effects, values):
    """(sd, corr) → θ; raises ValueError when the correlations are not valid.

    A NaN correlation (undefined: a zero standard deviation) is taken as 0.
    """
    theta = []
    pos = 0
    for term in random_effects.terms:
        s = term.n_cov
        sd = np.asarray(values[pos:pos + s])
        pos += s
        R = np.eye(s)
        for j in range(s):
            for i in range(j + 1, s):
                R[i, j] = R[j, i] = 0.0 if np.isnan(values[pos]) else values[pos]
                pos += 1
        cov = R * np.outer(sd, sd)
        if s == 1:
            T = np.sqrt(cov)
        else:
            try:
                T = np.linalg.cholesky(cov + 1e-300 * np.eye(s))
            except np.linalg.LinAlgError:
                raise ValueError("correlation matrix not positive definite") from None
        theta.extend(T[r, c] for r, c in term.theta_rows_cols)
    return np.array(theta)


def sdcor_bounds(random_effects):
    """Bounds of the sd/corr parameters: sd ≥ 0, −1 ≤ corr ≤ 1."""
    lower, upper = [], []
    for term in random_effects.terms:
        s = term.n_cov
        lower += [0.0] * s + [-1.0] * (s * (s - 1) // 2)
        upper += [np.inf] * s + [1.0] * (s * (s - 1) // 2)
    return np.array(lower), np.array(upper)
