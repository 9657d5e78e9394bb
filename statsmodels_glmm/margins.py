"""Marginal means, contrasts and marginal effects after a GLMM fit.

:class:`MarginsMixin` gives :class:`~statsmodels_glmm.results.GLMMResults` two
methods: :meth:`~MarginsMixin.emmeans` (R's emmeans: estimated marginal means on
the reference grid and their contrasts, see :mod:`emmeans` and
:mod:`contrasts`) and :meth:`~MarginsMixin.get_margeff` (statsmodels'
``get_margeff``: average or at-the-mean derivatives of the mean with respect
to each column of the fixed-effects design).

Marginal effects are conditional on the random effects at 0 by default. With
``integrate=True`` the mean is averaged over the random-effects distribution
(population-averaged margins, as GLMMadaptive's marginal coefficients): at row
i the random part of the linear predictor, Σ_t z_it' b_t, is normal with
variance v_i = Σ_t z_it' Σ_t z_it, so the marginal mean is the one-dimensional
integral E g⁻¹(η_i + √v_i Z), Z ~ N(0, 1), evaluated by Gauss-Hermite
quadrature for every random-effects structure (scalar, vector-valued, crossed
or nested terms).
"""

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.iolib.summary import Summary, summary_params
from statsmodels.tools.numdiff import approx_fprime

from . import emmeans as _emmeans
from . import ranef as _ranef
from .quadrature import gauss_hermite_normal

__all__ = ["MarginsMixin", "GLMMMargins"]

_TRANSFORM_NAMES = {"dydx": "dy/dx", "eyex": "d(lny)/d(lnx)", "dyex": "dy/d(lnx)",
                    "eydx": "d(lny)/dx"}
_AT = ("overall", "mean", "median", "zero")


def _dummy_columns(X):
    """statsmodels' rule: columns whose values are all 0 or 1 (both present)."""
    integer = np.all(X % 1.0 == 0, axis=0)
    return np.where(integer & (X.min(axis=0) == 0) & (X.max(axis=0) == 1))[0]


def _count_columns(X):
    """statsmodels' rule: non-negative integer, non-constant, not 0/1 columns."""
    ok = np.all(X % 1.0 == 0, axis=0) & (X.var(axis=0) != 0) & np.all(X >= 0, axis=0)
    return np.setdiff1d(np.where(ok)[0], _dummy_columns(X))


def random_effects_variance(results, rows=None):
    """Variance of the random part of the linear predictor at each fitted row,
    v_i = Σ_t z_it' Σ_t z_it, or at the given rows of z per term."""
    re = results.model.random_effects
    covs = re.covariances(results.theta.to_numpy(), _ranef.re_scale(results))
    zs = [term.z for term in re.terms] if rows is None else rows
    return sum(np.einsum("ij,jk,ik->i", z, cov, z) for z, cov in zip(zs, covs))


class _MeanFunction:
    """g⁻¹ and dμ/dη, at the random effects 0 or integrated over N(0, v)."""

    def __init__(self, kernel, variance=None, n_quad=31):
        self.kernel = kernel
        self.variance = variance
        if variance is not None:
            nodes, weights = gauss_hermite_normal(n_quad)
            self.shift = np.sqrt(np.asarray(variance))[:, None] * nodes[None, :]
            self.weights = weights

    def _integrate(self, fun, eta):
        if self.variance is None:
            return fun(eta)
        return fun(eta[:, None] + self.shift) @ self.weights

    def mean(self, eta):
        return self._integrate(self.kernel.mu, eta)

    def derivative(self, eta):
        return self._integrate(self.kernel.mu_eta, eta)


class GLMMMargins:
    """Marginal effects of a GLMM (see :meth:`MarginsMixin.get_margeff`).

    Attributes
    ----------
    margeff, margeff_se : ndarray
        The effects and their delta-method standard errors.
    margeff_cov : ndarray
        Their covariance J V Jᵀ, with J the numerical derivative of the effects
        with respect to the fixed effects (central differences) and V ``cov_fe``.
    margeff_options : dict
        ``method``, ``at``, ``integrate``.
    names : list of str
        The fixed-effects columns the effects refer to (constant columns are
        left out).
    dummy_idx, count_idx : ndarray or None
        Columns treated as 0/1 changes and as counts (unit changes).
    """

    def __init__(self, results, at="overall", method="dydx", atexog=None, dummy=False,
                 count=False, integrate=False, n_quad=31):
        method, at = str(method).lower(), str(at).lower()
        if at not in _AT:
            raise ValueError(f"at must be one of {_AT}, got {at!r}")
        if method not in _TRANSFORM_NAMES:
            raise ValueError(f"method must be one of {tuple(_TRANSFORM_NAMES)}, "
                             f"got {method!r}")
        if (dummy or count) and (method in ("dyex", "eyex") or at in ("median", "zero")):
            raise ValueError(f"method={method!r} with at={at!r} is not defined for "
                             "discrete changes (dummy=True or count=True)")
        self.results = results
        self.margeff_options = {"method": method, "at": at, "integrate": bool(integrate)}
        model = results.model
        X = np.array(model.exog, dtype=float)
        self._effects = np.where(X.var(axis=0) != 0)[0]
        self.names = [model.fe_names[i] for i in self._effects]
        self.dummy_idx = _dummy_columns(X) if dummy else None
        self.count_idx = _count_columns(X) if count else None
        self._X, self._offset, variance = self._evaluation_rows(X, at, atexog, integrate)
        self._mean = _MeanFunction(model.kernel, variance, n_quad)
        beta = results.fe_params
        self.margeff = self._margins(beta)
        jac = np.reshape(approx_fprime(beta, self._margins, centered=True),
                         (len(self.margeff), len(beta)))
        self.margeff_cov = jac @ results.cov_fe @ jac.T
        self.margeff_se = np.sqrt(np.diag(self.margeff_cov))

    def _evaluation_rows(self, X, at, atexog, integrate):
        model, results = self.results.model, self.results
        offset = np.asarray(model.offset, dtype=float)
        zs = [term.z for term in model.random_effects.terms]
        for column, value in (atexog or {}).items():
            index = model.fe_names.index(column) if isinstance(column, str) else column
            X[:, index] = value
        if at == "mean":
            X, offset = X.mean(axis=0, keepdims=True), offset.mean(keepdims=True)
            zs = [z.mean(axis=0, keepdims=True) for z in zs]
        elif at == "median":
            X, offset = np.median(X, axis=0, keepdims=True), np.median(offset, keepdims=True)
            zs = [np.median(z, axis=0, keepdims=True) for z in zs]
        elif at == "zero":
            X = np.where(X.var(axis=0) != 0, 0.0, X[:1])
            offset, zs = offset[:1] * 0, [z[:1] for z in zs]
        variance = random_effects_variance(results, zs) if integrate else None
        return X, offset, variance

    def _effects_rows(self, beta):
        """Per evaluation row, the effect of each non-constant column."""
        X, method = self._X, self.margeff_options["method"]
        eta = X @ beta + self._offset
        effects = self._mean.derivative(eta)[:, None] * beta[None, :]
        if "ex" in method:
            effects = effects * X
        if "ey" in method:
            effects = effects / self._mean.mean(eta)[:, None]
        for idx, low, high, scale in self._discrete_changes():
            for j in idx:
                x0, x1 = X.copy(), X.copy()
                x0[:, j], x1[:, j] = low(X[:, j]), high(X[:, j])
                m0 = self._mean.mean(x0 @ beta + self._offset)
                m1 = self._mean.mean(x1 @ beta + self._offset)
                if "ey" in method:
                    m0, m1 = np.log(m0), np.log(m1)
                effects[:, j] = (m1 - m0) * scale
        return effects[:, self._effects]

    def _discrete_changes(self):
        if self.dummy_idx is not None:
            yield self.dummy_idx, np.zeros_like, np.ones_like, 1.0
        if self.count_idx is not None:
            yield self.count_idx, (lambda x: x - 1), (lambda x: x + 1), 0.5

    def _margins(self, beta):
        return self._effects_rows(np.asarray(beta, dtype=float)).mean(axis=0)

    @property
    def tvalues(self):
        return self.margeff / self.margeff_se

    @property
    def pvalues(self):
        return 2 * stats.norm.sf(np.abs(self.tvalues))

    def conf_int(self, alpha=0.05):
        """Wald (z) intervals, an array (k, 2)."""
        q = stats.norm.ppf(1 - alpha / 2)
        return np.column_stack([self.margeff - q * self.margeff_se,
                                self.margeff + q * self.margeff_se])

    def summary_frame(self, alpha=0.05):
        """The effects as statsmodels' ``DiscreteMargins.summary_frame`` (same
        column names, including its ``Cont. Int. Hi.``)."""
        ci = self.conf_int(alpha)
        columns = [_TRANSFORM_NAMES[self.margeff_options["method"]], "Std. Err.", "z",
                   "Pr(>|z|)", "Conf. Int. Low", "Cont. Int. Hi."]
        table = np.column_stack([self.margeff, self.margeff_se, self.tvalues,
                                 self.pvalues, ci])
        return pd.DataFrame(table, columns=columns, index=self.names)

    def summary(self, alpha=0.05):
        """A statsmodels ``Summary`` table of the effects."""
        opts = self.margeff_options
        model = self.results.model
        scale = "integrated over the random effects" if opts["integrate"] else \
            "random effects at 0"
        yname = str(getattr(model, "endog_label", None) or model.endog_names)
        smry = Summary()
        smry.add_table_2cols(self, gleft=[("Dep. Variable:", [yname]),
                                          ("Method:", [opts["method"]]),
                                          ("At:", [opts["at"]])],
                             gright=[("Conditional on:", [scale])],
                             yname=yname, xname=self.names,
                             title="GLMM Marginal Effects")
        table = summary_params((self.results, self.margeff, self.margeff_se, self.tvalues,
                                self.pvalues, self.conf_int(alpha)), yname=yname,
                               xname=self.names, alpha=alpha, use_t=False,
                               skip_header=True)
        table.insert_header_row(0, ["", _TRANSFORM_NAMES[opts["method"]], "std err", "z",
                                    "P>|z|", f"[{alpha / 2}", f"{1 - alpha / 2}]"])
        smry.tables.append(table)
        return smry


class MarginsMixin:
    """Marginal means, contrasts and marginal effects for GLMM results."""

    def emmeans(self, specs, by=None, type="link", at=None, weights="equal", offset=None):
        """Estimated marginal means (R's emmeans) at the random effects 0.

        Parameters
        ----------
        specs : str or list of str
            The factor(s) whose levels are tabulated: ``"period"``,
            ``["livch", "urban"]`` or emmeans' formula ``"~ livch | urban"``.
        by : str or list of str, optional
            Factor(s) whose levels split the table (and the families of contrasts).
        type : {"link", "response"}
            The linear-predictor scale, or the mean g⁻¹(η) with the standard
            error ``|dμ/dη| SE(η)`` and the interval back-transformed from the link
            scale (emmeans' ``type="response"``).
        at : dict, optional
            ``{variable: value(s)}``: the levels of a factor to keep, or the
            value(s) of a numeric covariate (default its mean).
        weights : {"equal", "proportional", "outer", "cells", "flat"}
            How the cells of the other factors are averaged (emmeans'
            ``weights``; frequencies count fitted rows).
        offset : float, optional
            The offset on the grid (default: the mean of the fitted offsets).

        Returns
        -------
        emmeans.EMMeansResults
            ``summary_frame(alpha)``, ``conf_int(alpha)`` and
            ``contrasts(method, adjust)``.

        Notes
        -----
        Standard errors come from ``cov_fe`` by the delta method and intervals
        are z-based (emmeans' asymptotic df = Inf for ``glmer``).
        """
        return _emmeans.emmeans(self, specs, by=by, type=type, at=at, weights=weights,
                                offset=offset)

    def get_margeff(self, at="overall", method="dydx", atexog=None, dummy=False,
                    count=False, integrate=False, n_quad=31):
        """Marginal effects in the style of statsmodels' ``get_margeff``.

        Parameters
        ----------
        at : {"overall", "mean", "median", "zero"}
            Average of the effects over the fitted rows, or the effect at the
            mean (median, zero) of each fixed-effects column.
        method : {"dydx", "eyex", "dyex", "eydx"}
            dμ/dx, elasticity d ln μ / d ln x, dμ / d ln x, or d ln μ / dx.
        atexog : dict, optional
            ``{column index or name: value}`` set before ``at`` is applied.
        dummy : bool
            Columns of 0/1 values as a change from 0 to 1.
        count : bool
            Non-negative integer columns as a unit change (x − 1 to x + 1, halved).
        integrate : bool
            Average the mean over the random effects (population-averaged
            margins) instead of setting them to 0.
        n_quad : int
            Gauss-Hermite points for ``integrate=True``.

        Returns
        -------
        GLMMMargins
            ``summary_frame(alpha)``, ``summary(alpha)``, ``conf_int(alpha)``.

        Notes
        -----
        As in statsmodels the effects refer to the columns of the fixed-effects
        design (``I(age**2)`` is a column of its own) and the rows are
        averaged without weights; the offset is included. With random slopes
        and ``integrate=True`` the random-effects covariates keep their observed
        values when a column changes.
        """
        return GLMMMargins(self, at=at, method=method, atexog=atexog, dummy=dummy,
                           count=count, integrate=integrate, n_quad=n_quad)
