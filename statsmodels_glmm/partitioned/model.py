"""A GLMM whose rows live in partitions: the in-memory stages over rounds.

:class:`PartitionedModel` answers the questions the fitting stages
(:mod:`stages`) ask of a model, the deviance function, the GLM start, the
conditional covariance of β and the reach of a β step, with rounds over its
partitions (:mod:`.executors`), so the fit follows the in-memory model's stages
and optimizer path evaluation for evaluation. The driver holds the global
design, O(p²) and O(q_crossed²) arrays, never a row; the local conditional modes
are gathered once, after the fit, for ``ranef()``.
"""

import numpy as np
import scipy.linalg as sla
from statsmodels.base.data import PandasData

from ..blas import SMALL_DENSE, blas_limits
from ..design import DesignBasis
from ..diagnostics import warn_diverging_sums, warn_separation_count, warn_singular
from ..params import ParameterLayout
from ..re_terms import RandomEffects, RandomEffectsTerm, theta_scale_from_rms
from ..response import Response
from ..results import GLMMFit
from ..stages import checked_start_dispersion, fit_glmm, start_beta
from ..validation import check_nagq, fit_options
from .devfun import PartitionedDevianceFunction, PartitionedModes
from .executors import LocalExecutor, make_executor
from .lmm_pass import BlockAccumulator, fit_lmm_blocks
from .results import PartitionedResults

__all__ = ["PartitionedModel"]

_QUANTILE_GRID = np.linspace(0.0, 1.0, 2001)


def _metadata_terms(design):
    """Random-effects terms without rows (names, covariate names, levels)."""
    return [RandomEffectsTerm(t.group_name, list(t.cnames), t.expr, np.empty(0, np.intp),
                              t.levels, np.empty((0, t.n_cov)), tuple(t.factors))
            for t in design.terms]


class PartitionedModel:
    """A GLMM evaluated partition by partition.

    Parameters
    ----------
    design : data.PartitionedDesign
    parts : list of data.PartitionData or dask objects
    client : distributed.Client, optional
        Run on this Dask cluster (default: the running client if ``parts`` are
        dask objects, else this process).
    n_jobs : int
        Threads for in-process partitions.
    """

    def __init__(self, design, parts, client=None, n_jobs=1):
        self.design = design
        self.executor = make_executor(parts, design, client=client, n_jobs=n_jobs)
        self.family = design.family
        self.estimate_alpha = design.estimate_alpha
        self.kernel = self._driver_kernel()
        self.kernel_canonical = self.kernel.canonical
        self.is_lmm = self.kernel.is_linear_mixed_model
        self.random_effects = RandomEffects(_metadata_terms(design), sort=False)
        self.random_effects._theta_scale = self._theta_scale()
        self.fe_names = list(design.exog_names)
        self.exog_names = self.fe_names
        self.kept_columns = list(range(design.k_fe))
        self.dropped_columns = list(design.dropped_columns)
        self.endog_label = design.endog_label
        self.formula_full = design.formula
        self.source = None
        self.k_fe = design.k_fe
        self.k_theta = self.random_effects.n_theta
        self.has_dispersion = self.kernel.n_dispersion > 0
        self.parameters = ParameterLayout(self.random_effects, self.kernel, self.k_fe,
                                          self.fe_names)
        self.design_basis = DesignBasis(np.zeros((0, self.k_fe)), R=np.eye(self.k_fe))
        self.nobs = float(design.nobs)
        self.k_extra = self.k_theta + self.kernel.n_dispersion
        self.df_model = self.k_fe - 1
        self.df_resid = self.nobs - self.k_fe - self.k_extra
        self.data = _names_only(self.fe_names, self.endog_label)
        self._start_cache = None

    # -- global facts, each one round -------------------------------------------------
    def _driver_kernel(self):
        """The family kernel (parameter layout, labels), built from one row."""
        sample = next(s for s in self.executor.map("sample_row") if s is not None)
        return Response(self.family, sample[0], sample[1], None, self.design.endog_label,
                        estimate_alpha=self.estimate_alpha).kernel

    def _theta_scale(self):
        """θ's optimizer scale from the covariates' global RMS (as in memory)."""
        pieces = self.executor.map("covariate_squares")
        n = max(sum(p[1] for p in pieces), 1)
        return theta_scale_from_rms([np.sqrt(sum(p[0][j] for p in pieces) / n)
                                     for j in range(len(self.design.terms))])

    def glm_start(self):
        """One weighted least-squares step from R's mustart, and the moment
        estimate of the dispersion there (as :func:`stages.glm_start_values`)."""
        if self._start_cache is not None:
            return self._start_cache
        pieces = self.executor.map("glm_pieces")
        beta = start_beta(sum(p[0] for p in pieces), sum(p[1] for p in pieces))
        disp = None
        if self.kernel.n_dispersion:
            shares = [np.ravel(s) for s in self.executor.map("pearson_sum", beta)]
            first = sum(s[0] for s in shares) / max(self.nobs - self.k_fe, 1)
            disp = first if shares[0].size == 1 else (first, *shares[0][1:])
        disp = checked_start_dispersion(self.kernel, disp)
        self._start_cache = (beta, disp)
        return self._start_cache

    def theta_start(self, start):
        theta = start.get("theta")
        if theta is None:
            return self.random_effects.theta_start()
        return np.asarray(theta, dtype=float) * self.random_effects.theta_scale()

    # -- what the stages ask --------------------------------------------------------------
    def deviance_function(self, nAGQ=1, information="observed", u0=None, beta0=None,
                          observer=None):
        """The deviance over the packed parameters (see :class:`devfun.DevianceFunction`)."""
        return PartitionedDevianceFunction(self, check_nagq(nAGQ, self.random_effects),
                                           information, u0=u0, beta0=beta0,
                                           observer=observer)

    def pirls(self, theta, beta=None, phi=None, u0=None, information="observed"):
        """The modes at (θ, β); β estimated jointly when None."""
        phi = self.kernel.default_dispersion() if phi is None else phi
        devfun = self.deviance_function(0 if beta is None else 1, information, u0=u0)
        return devfun.modes(np.asarray(theta, float), phi, beta)

    def _modes_at(self, theta, beta, disp, u):
        """Put the partitions' local modes at (θ, β); the crossed modes, returned."""
        devfun = self.deviance_function(1, u0=u)
        modes = devfun.modes(theta, disp, beta)
        devfun.approximation(modes, theta, disp, beta)
        return modes.u

    def conditional_vcov(self, theta, beta, disp, u, internal=False, damped=True):
        """Covariance of β̂ conditional on θ, from the Schur pieces onto
        (u_crossed, β) at the modes (one round after the modes)."""
        u_c = self._modes_at(theta, beta, disp, u)
        v = np.concatenate([u_c, beta])
        pieces = self.executor.map("central_start", theta, disp, None, v, True, "expected")
        S = sum(p.schur for p in pieces)
        q_c = u_c.size
        S[np.arange(q_c), np.arange(q_c)] += 1.0
        try:
            inv = sla.inv(S)
        except (np.linalg.LinAlgError, ValueError):
            if not damped:
                raise np.linalg.LinAlgError("X'WX is singular") from None
            inv = np.linalg.pinv(S)
        return inv[q_c:, q_c:]

    def linear_predictor_reach(self, C):
        return np.max(np.vstack(self.executor.map("reach", C)), axis=0, initial=0.0)

    # -- fitting --------------------------------------------------------------------------
    def fit(self, nAGQ=1, start=None, reml=False, maxfun=10000, nAGQ0_init=True,
            boundary_tol=1e-5, calc_hessian="auto", information="observed",
            optimizer="bobyqa", blas_threads="auto", **kwargs):
        """Fit by maximum likelihood, by the in-memory model's stages (see
        :meth:`GLMM.fit`); the linear mixed model (ML or REML) from one pass of
        cross-products (:mod:`.lmm_pass`). Returns :class:`results.PartitionedResults`."""
        if blas_threads == "auto" and self._interleaved_blas():
            blas_threads = 1
        options, blas_threads = fit_options(
            self, kwargs, nAGQ=nAGQ, start=start, reml=reml, cov_type=None, maxfun=maxfun,
            nAGQ0_init=nAGQ0_init, boundary_tol=boundary_tol, calc_hessian=calc_hessian,
            information=information, blas_threads=blas_threads, optimizer=optimizer)
        if options.observer is not None:
            options.observer.rounds = lambda: self.executor.rounds
        # (in-process partitions; Dask workers keep their own BLAS settings)
        with blas_limits(blas_threads), options.feedback():
            fit = self._fit_lmm(options) if self.is_lmm else fit_glmm(self, options)
        fit.options = options
        if self.is_lmm:
            u_c = self._central_part(fit.modes.u)
        else:
            # the stages end with the conditional covariance at the optimum, which
            # leaves the partitions' local modes there: no further round is needed
            u_c = np.asarray(fit.modes.u, dtype=float)
            fit.modes.u = self._gather_modes(u_c)
        return PartitionedResults(self, fit, self._fitted_statistics(fit, u_c))

    def _interleaved_blas(self):
        """Whether one BLAS thread serves best: partitions in this process and a
        central system below 2 x SMALL_DENSE. Each round then alternates the
        driver's factorization with the partitions' passes and compiled kernels
        in the same process, and OpenBLAS's threads spin between calls, taking
        the cores those need (C1, 1002 central unknowns on 2 cores: 0.78 s of
        CPU per round with 2 BLAS threads, 0.24 s with one)."""
        order = self.executor.n_central_re + self.k_fe
        return isinstance(self.executor, LocalExecutor) and order < 2 * SMALL_DENSE

    def _fit_lmm(self, options):
        """The linear mixed model from the partitions' cross-products (one round)."""
        sizes = [(t.n_cov, t.n_levels) for t in self.design.terms]
        acc = BlockAccumulator()
        for blocks in self.executor.map("lmm_blocks", sizes):
            if blocks is not None:
                acc.add(blocks)
        lfit = fit_lmm_blocks(acc.result(), reml=options.reml, optimizer=options.optimizer,
                              start=options.start.get("theta"), maxfun=options.maxfun,
                              boundary_tol=options.boundary_tol,
                              observer=options.observer_for("lmm"))
        self.executor.map("set_local_modes", lfit.u, self.random_effects.re_offsets)
        modes = PartitionedModes(lfit.u, lfit.beta, np.nan, np.nan, 0)
        return GLMMFit(theta=lfit.theta, beta=lfit.beta, dispersion=lfit.sigma2, modes=modes,
                       neg2ll=lfit.neg2ll, nAGQ=1, optimizer=lfit.optimizer,
                       nfev={"stage1_nfev": lfit.nfev, "stage2_nfev": 0}, vcov=lfit.vcov,
                       vcov_conditional=lfit.vcov, cov_type="conditional",
                       information=options.information, reml=options.reml)

    def _central_part(self, u):
        """The crossed terms' modes out of all the modes (model order)."""
        offsets = self.random_effects.re_offsets
        parts = [u[offsets[j]:offsets[j + 1]] for j in self.design.central_terms]
        return np.concatenate(parts) if parts else np.empty(0)

    def _gather_modes(self, u_central):
        """All the modes in the model's order (the local ones gathered once)."""
        terms = self.design.terms
        out = [np.zeros(t.n_re) for t in terms]
        for levels, u in self.executor.map("local_modes"):
            start = 0
            for j, codes in zip(self.design.local_terms, levels):
                s = terms[j].n_cov
                idx = (codes[:, None] * s + np.arange(s)).ravel()
                out[j][idx] = u[start:start + idx.size]
                start += idx.size
        start = 0
        for j in self.design.central_terms:
            out[j] = u_central[start:start + terms[j].n_re]
            start += terms[j].n_re
        return np.concatenate(out)

    def _fitted_statistics(self, fit, u_central):
        """Residual quantiles (merged from per-partition quantile grids: exact at
        the extremes, within 1/2000 in probability otherwise) and the deviance."""
        pieces = [p for p in self.executor.map("fitted_summary", fit.theta, fit.dispersion,
                                              fit.beta, u_central, _QUANTILE_GRID)
                  if p[2]]
        self._warn_fit(fit, pieces)
        values = np.concatenate([p[0] for p in pieces])
        weights = np.concatenate([np.full(_QUANTILE_GRID.size, p[2] / _QUANTILE_GRID.size)
                                  for p in pieces])
        order = np.argsort(values)
        cum = np.cumsum(weights[order]) / weights.sum()
        probs = [0.25, 0.5, 0.75]
        mid = values[order][np.minimum(np.searchsorted(cum, probs), values.size - 1)]
        quantiles = np.concatenate([[values.min()], mid, [values.max()]])
        sigma = self.kernel.sigma(fit.dispersion)
        return {"scaled_residual_quantiles": quantiles / sigma,
                "deviance": sum(p[1] for p in pieces)}

    def _warn_fit(self, fit, pieces):
        """The in-memory fit's warnings (separation, singular and diverging
        covariances) from the partitions' counts and per-level sums."""
        kind = self.kernel.separation
        warn_separation_count(kind, sum(p[3] for p in pieces), stacklevel=5)
        warn_singular(self.random_effects, fit.theta, stacklevel=5)
        if kind is None:
            return
        sums = []
        for j in range(len(self.design.terms)):
            parts = [p[4][j] for p in pieces]
            if self.design.terms[j].local:  # each level in one partition: stack them
                sums.append(tuple(np.concatenate(a) for a in zip(*parts)))
            else:
                sums.append(tuple(np.sum(a, axis=0) for a in zip(*parts)))
        warn_diverging_sums(kind, self.kernel.link, self.random_effects, fit.theta, sums,
                            stacklevel=5)

    @property
    def rounds(self):
        """Rounds over the partitions so far."""
        return self.executor.rounds


def _names_only(names, endog_label):
    """statsmodels' data object with names and no rows (for the results wrapper)."""
    data = object.__new__(PandasData)
    data._cache = {"xnames": list(names), "ynames": endog_label,
                   "param_names": list(names), "cov_names": list(names),
                   "row_labels": None}
    data.k_constant = int(any(n in ("Intercept", "(Intercept)") for n in names))
    return data
