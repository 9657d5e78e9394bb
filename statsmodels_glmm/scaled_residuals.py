"""Simulation-based scaled (quantile) residuals, as DHARMa's ``simulateResiduals``.

For each observation the response is simulated ``n`` times from the fitted model
and the observed value is placed in the distribution of its simulations: its
scaled residual is the share of simulations below it. Under a correctly
specified model the residuals are uniform on (0, 1), whatever the family, so one
QQ plot against the uniform and one plot against the predictions read the same
way for 0/1 data, counts and continuous responses (Dunn & Smyth 1996; Hartig's
DHARMa).

This follows DHARMa 0.5.0 (``simulateResiduals(fittedModel, n = 250)`` for an
lme4 fit):

- **simulations** conditional on the fitted random effects (``use_u=True``,
  DHARMa's ``simulateREs = "conditional"``, its default since 0.5.0: lme4's
  ``re.form = NULL``); ``use_u=False`` draws new random effects, the default of
  DHARMa ≤ 0.4.7 (lme4's ``simulate`` default, ``re.form = NA``);
- **PIT residuals** (DHARMa's default ``method = "PIT"``): with
  l = #{sims < y}/n and u = #{sims ≤ y}/n the residual is l where l = u and a
  uniform draw on (l, u) where simulations tie with the observation — integer
  responses need no flag. ``method="traditional"`` is DHARMa's rule before 0.3.1
  (±0.5 noise on observation and simulations for integer responses, then a
  linearly interpolated ECDF over the n + 1 gaps);
- the scale of the comparison is each observation's own distribution (binomial:
  the number of successes, :meth:`families.FamilyKernel.count_scale`);
- :meth:`ScaledResiduals.test_dispersion` is DHARMa's default test
  (``type = "DHARMa"``): the variance of the observed raw residuals y − μ̂
  against the variances of the simulated ones, μ̂ the population-level
  prediction (DHARMa's ``fittedPredictedResponse``, lme4's
  ``predict(re.form = ~0, type = "response")``: a probability for the binomial);
  ``type="PearsonChisq"`` is the χ² test of the Pearson residuals;
- the simulation tests report DHARMa's ratio observed / mean(simulated) and its
  p-value: two-sided 2 · min(P(sim ≤ obs), P(sim ≥ obs)), capped at 1.

Unlike DHARMa, ``seed=None`` (numpy's fresh entropy) is the default: pass a seed
for reproducible residuals (DHARMa fixes 123).
"""

from dataclasses import dataclass
import numbers
import warnings

import numpy as np
from scipy import stats
from statsmodels.tools.sm_exceptions import ValueWarning

__all__ = ["ScaledResiduals", "ScaledResidualsMixin", "ResidualTestResult", "simulate_residuals",
           "pit_residuals", "traditional_residuals", "simulation_pvalue",
           "plot_scaled_residuals"]

_ALTERNATIVES = {"two-sided": "two-sided", "two.sided": "two-sided", "greater": "greater",
                 "less": "less"}


def _alternative(alternative):
    try:
        return _ALTERNATIVES[alternative]
    except (KeyError, TypeError):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got "
                         f"{alternative!r}") from None


@dataclass
class ResidualTestResult:
    """A test on the scaled residuals (R's ``htest``).

    Attributes
    ----------
    statistic : float
    pvalue : float
    alternative : {"two-sided", "greater", "less"}
    method : str
    observed : float, optional
        Simulation tests: the statistic of the data ...
    simulated : ndarray, optional
        ... and of each simulation (the null distribution).
    df : float, optional
        Degrees of freedom of a χ² test.
    """

    statistic: float
    pvalue: float
    alternative: str
    method: str
    observed: float = None
    simulated: np.ndarray = None
    df: float = None

    def __repr__(self):
        return (f"<ResidualTestResult {self.method}: statistic = {self.statistic:.6g}, "
                f"p = {self.pvalue:.4g} ({self.alternative})>")


# -- the residuals ------------------------------------------------------------------------------
def pit_residuals(observed, simulated, rng):
    """DHARMa's PIT residuals: #{sims < y}/n, or uniform on (#{sims < y}/n,
    #{sims ≤ y}/n) where simulations tie with y.

    Parameters
    ----------
    observed : ndarray, (nobs,)
    simulated : ndarray, (nobs, nsim)
    rng : numpy.random.Generator
    """
    observed = np.asarray(observed, dtype=float)[:, None]
    simulated = np.asarray(simulated, dtype=float)
    lower = np.mean(simulated < observed, axis=1)
    upper = np.mean(simulated <= observed, axis=1)
    out = lower.copy()
    ties = lower != upper
    if ties.any():
        out[ties] = rng.uniform(lower[ties], upper[ties])
    return out


def _dharma_ecdf(sample, x):
    """DHARMa.ecdf(sample)(x): the counts ≤ each distinct value over n + 1,
    linearly interpolated between the distinct values, 0 below and 1 above."""
    values, counts = np.unique(sample, return_counts=True)
    heights = np.cumsum(counts) / (sample.size + 1.0)
    return np.interp(x, values, heights, left=0.0, right=1.0)


def traditional_residuals(observed, simulated, rng, integer_response):
    """DHARMa's residuals before 0.3.1 (``method = "traditional"``).

    Integer responses get U(−0.5, 0.5) noise on the observation and on every
    simulation; the residual is DHARMa's interpolated ECDF of the simulations at
    the observation. A response declared continuous whose simulations repeat only
    integer values is treated as integer (with a warning, as DHARMa's message).
    """
    observed = np.asarray(observed, dtype=float)
    simulated = np.asarray(simulated, dtype=float)
    if not integer_response:
        flat = np.sort(simulated.ravel())
        repeated = flat[1:][flat[1:] == flat[:-1]]
        if repeated.size and np.all(repeated % 1 == 0):
            warnings.warn("the response was declared continuous, but the simulations "
                          "repeat integer values: randomizing as for an integer response",
                          ValueWarning, stacklevel=4)
            integer_response = True
    out = np.empty(observed.size)
    nsim = simulated.shape[1]
    for i in range(observed.size):
        if integer_response:
            sample = simulated[i] + rng.uniform(-0.5, 0.5, nsim)
            out[i] = _dharma_ecdf(sample, observed[i] + rng.uniform(-0.5, 0.5))
        else:
            out[i] = _dharma_ecdf(simulated[i], observed[i])
    return out


def simulation_pvalue(simulated, observed, alternative="two-sided"):
    """DHARMa's ``getP``: the share of simulated statistics at least as extreme."""
    simulated = np.asarray(simulated, dtype=float)
    alternative = _alternative(alternative)
    if alternative == "greater":
        return float(np.mean(simulated >= observed))
    if alternative == "less":
        return float(np.mean(simulated <= observed))
    return float(min(2 * min(np.mean(simulated <= observed), np.mean(simulated >= observed)),
                     1.0))


# -- the results object ----------------------------------------------------------------------------
class ScaledResiduals:
    """Simulation-based scaled residuals of a fit (see :mod:`scaled_residuals`).

    Attributes
    ----------
    residuals : ndarray
        One per observation, uniform on (0, 1) under the fitted model.
    observed : ndarray
        The response on the scale of the comparison (binomial: successes).
    simulated : ndarray, (nobs, n)
        The simulated responses on that scale.
    fitted : ndarray
        Population-level predictions μ̂ = g⁻¹(offset + X β̂) (DHARMa's
        ``fittedPredictedResponse``).
    n : int
    use_u : bool
    integer_response : bool
    method : {"PIT", "traditional"}
    """

    def __init__(self, res, observed, simulated, fitted, residuals, use_u, integer_response,
                 method):
        self._res = res
        self.observed, self.simulated, self.fitted = observed, simulated, fitted
        self.residuals = residuals
        self.n = simulated.shape[1]
        self.use_u, self.integer_response, self.method = use_u, integer_response, method

    def test_uniformity(self, alternative="two-sided"):
        """Kolmogorov-Smirnov test of the residuals against U(0, 1) (DHARMa's
        ``testUniformity``).

        Returns
        -------
        ResidualTestResult
            ``statistic`` (D), ``pvalue``, ``alternative``, ``method``.
        """
        alternative = _alternative(alternative)
        test = stats.kstest(self.residuals, "uniform", alternative=alternative)
        return ResidualTestResult(statistic=float(test.statistic), pvalue=float(test.pvalue),
                           alternative=alternative,
                           method="Kolmogorov-Smirnov test of the scaled residuals against "
                                  "U(0, 1)")

    def test_generic(self, summary, alternative="two-sided", method="simulation test"):
        """``summary`` of the observed response against its simulated distribution
        (DHARMa's ``testGeneric``).

        Returns
        -------
        ResidualTestResult
            ``statistic`` (observed / mean of simulated), ``pvalue``, ``observed``,
            ``simulated`` (one value per simulation), ``alternative``, ``method``.
        """
        observed = float(summary(self.observed))
        simulated = np.array([summary(self.simulated[:, k]) for k in range(self.n)],
                             dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = observed / np.mean(simulated)
        return ResidualTestResult(statistic=float(ratio),
                           pvalue=simulation_pvalue(simulated, observed, alternative),
                           observed=observed, simulated=simulated,
                           alternative=_alternative(alternative), method=method)

    def test_dispersion(self, alternative="two-sided", type="DHARMa"):
        """Over- or underdispersion (DHARMa's ``testDispersion``).

        Parameters
        ----------
        alternative : {"two-sided", "greater", "less"}
            ``"greater"`` tests for overdispersion only.
        type : {"DHARMa", "PearsonChisq"}
            ``"DHARMa"`` (default, as DHARMa): var(y − μ̂) of the observations
            against the same of each simulation (μ̂ population-level), the
            statistic their ratio to the mean simulated one. ``"PearsonChisq"``:
            Σ Pearson² / residual df against χ²(df), biased towards underdispersion
            for mixed models (DHARMa's advice: use it with ``"greater"``).

        Returns
        -------
        ResidualTestResult
            ``statistic`` (the dispersion ratio), ``pvalue``, ``alternative``,
            ``method`` (and ``df`` for ``"PearsonChisq"``).
        """
        alternative = _alternative(alternative)
        if type == "PearsonChisq":
            return _pearson_chisq(self._res, alternative)
        if type != "DHARMa":
            raise ValueError(f"type must be 'DHARMa' or 'PearsonChisq', got {type!r}")
        expected = np.var(self.simulated, ddof=1)
        fitted = self.fitted

        def spread(x):
            return np.var(x - fitted, ddof=1) / expected

        out = self.test_generic(spread, alternative, "DHARMa nonparametric dispersion test "
                                "via sd of residuals fitted vs. simulated")
        return out

    def test_zero_inflation(self, alternative="two-sided"):
        """Observed zeros against the zeros of the simulations (DHARMa's
        ``testZeroInflation``); the statistic is observed / mean simulated zeros."""
        return self.test_generic(lambda x: np.sum(x == 0), alternative,
                                 "DHARMa zero-inflation test via comparison to expected "
                                 "zeros with simulation under H0 = fitted model")

    def plot(self, fig=None, quantiles=(0.25, 0.5, 0.75)):
        """QQ plot of the residuals against U(0, 1) (with the uniformity test), and
        the residuals against the rank-transformed predictions with fitted
        quantile curves (DHARMa's ``plot``). Needs matplotlib; returns the Figure."""
        return plot_scaled_residuals(self, fig=fig, quantiles=quantiles)

    def __repr__(self):
        u = self.test_uniformity()
        kind = "conditional" if self.use_u else "unconditional"
        return (f"<ScaledResiduals: {self.residuals.size} observations, {self.n} "
                f"{kind} simulations ({self.method}); KS uniformity D = {u.statistic:.4f}, "
                f"p = {u.pvalue:.4g}>")


def _pearson_chisq(res, alternative):
    """DHARMa's ``type = "PearsonChisq"``: Σ Pearson² against χ²(residual df)."""
    pearson = np.asarray(res.resid_pearson, dtype=float)
    df = float(res.df_resid)
    chisq = float(np.sum(pearson ** 2))
    lower, upper = stats.chi2.cdf(chisq, df), stats.chi2.sf(chisq, df)
    p = {"greater": upper, "less": lower, "two-sided": min(2 * min(lower, upper), 1.0)}
    return ResidualTestResult(statistic=chisq / df, pvalue=float(p[alternative]), df=df,
                       alternative=alternative,
                       method="Parametric dispersion test via mean Pearson-chisq statistic")


def simulate_residuals(res, n=250, seed=None, integer_response=None, use_u=True,
                       method="PIT"):
    """Scaled residuals from ``n`` simulations of the fitted model (DHARMa's
    ``simulateResiduals``; see :mod:`scaled_residuals`).

    Parameters
    ----------
    res : GLMMResults
    n : int
        Number of simulations (at least 2; DHARMa's default 250).
    seed : int, numpy Generator or None
        For the simulations and the randomization of ties.
    integer_response : bool, optional
        Only for ``method="traditional"``: randomize as for integer responses.
        Default: whether the family's responses are integers (the kernel's
        ``integer_valued``).
    use_u : bool
        Simulate conditional on the fitted random effects (DHARMa ≥ 0.5.0's
        default); False draws new random effects (DHARMa ≤ 0.4.7).
    method : {"PIT", "traditional"}

    Returns
    -------
    ScaledResiduals
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ValueError(f"n must be an integer of at least 2 (simulations), got {n!r}")
    if method not in ("PIT", "traditional"):
        raise ValueError(f"method must be 'PIT' or 'traditional', got {method!r}")
    if integer_response is not None and not isinstance(integer_response, (bool, np.bool_)):
        raise ValueError(f"integer_response must be True, False or None, got "
                         f"{integer_response!r}")
    if not isinstance(use_u, (bool, np.bool_)):
        raise ValueError(f"use_u must be True or False, got {use_u!r}")
    model = res.model
    kernel = model.kernel
    rng = np.random.default_rng(seed)
    simulated = kernel.count_scale(res.simulate(int(n), seed=rng, use_u=bool(use_u))
                                   .to_numpy(dtype=float))
    observed = kernel.count_scale(model.response.y)
    fitted = model.response.mu(model.exog @ res.fe_params + model.offset)
    integer = kernel.integer_valued if integer_response is None else bool(integer_response)
    if method == "PIT":
        residuals = pit_residuals(observed, simulated, rng)
    else:
        residuals = traditional_residuals(observed, simulated, rng, integer)
    return ScaledResiduals(res, observed, simulated, fitted, residuals, bool(use_u), integer,
                           method)


# -- the plot ------------------------------------------------------------------------------------
def _quantile_curves(x, y, quantiles, grid):
    """Quantile regression of y on a cubic B-spline of x (DHARMa fits qgam
    smooths), evaluated on ``grid``; None when x has too few distinct values."""
    import patsy
    from statsmodels.regression.quantile_regression import QuantReg

    if np.unique(x).size < 8:
        return None
    design = patsy.dmatrix("bs(x, df=4)", {"x": x})
    (at,) = patsy.build_design_matrices([design.design_info], {"x": grid})
    curves = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for q in quantiles:
            params = QuantReg(y, np.asarray(design)).fit(q=q, max_iter=2000).params
            curves.append(np.asarray(at) @ params)
    return curves


def plot_scaled_residuals(sr, fig=None, quantiles=(0.25, 0.5, 0.75)):
    """The two panels of DHARMa's ``plot`` for :class:`ScaledResiduals` ``sr``."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - optional dependency
        raise ImportError("plots need matplotlib: pip install statsmodels-glmm[plots]") from None
    if fig is None:
        fig = plt.figure(figsize=(10, 4.5))
    ax_qq, ax_res = fig.subplots(1, 2)
    resid = np.sort(sr.residuals)
    expected = (np.arange(resid.size) + 0.5) / resid.size  # R's ppoints
    ax_qq.plot(expected, resid, "o", ms=3, alpha=0.7)
    ax_qq.plot([0, 1], [0, 1], color="red", lw=1)
    uniformity, dispersion = sr.test_uniformity(), sr.test_dispersion()
    ax_qq.text(0.03, 0.97, f"KS test: p = {uniformity.pvalue:.3g}\n"
               f"dispersion test: p = {dispersion.pvalue:.3g}", transform=ax_qq.transAxes,
               va="top", fontsize=8)
    ax_qq.set_xlabel("expected")
    ax_qq.set_ylabel("observed")
    ax_qq.set_title("QQ plot of the scaled residuals")
    x = stats.rankdata(sr.fitted, method="average")
    x = x / x.max()
    ax_res.plot(x, sr.residuals, "o", ms=3, alpha=0.6)
    grid = np.linspace(x.min(), x.max(), 101)
    curves = _quantile_curves(x, sr.residuals, quantiles, grid)
    for k, q in enumerate(quantiles):
        ax_res.axhline(q, color="grey", lw=0.8, ls="--")
        if curves is not None:
            ax_res.plot(grid, curves[k], color="C3", lw=1.5)
    ax_res.set_ylim(0, 1)
    ax_res.set_xlabel("population-level prediction (rank transformed)")
    ax_res.set_ylabel("scaled residual")
    ax_res.set_title("Residuals vs predicted")
    fig.tight_layout()
    return fig


class ScaledResidualsMixin:
    """:meth:`simulate_residuals` for :class:`results.GLMMResults`."""

    def simulate_residuals(self, n=250, seed=None, integer_response=None, use_u=True,
                           method="PIT"):
        """Simulation-based scaled (quantile) residuals, uniform under the model
        (DHARMa's ``simulateResiduals``; see :func:`scaled_residuals.simulate_residuals`).

        Returns
        -------
        scaled_residuals.ScaledResiduals
            ``residuals``, ``test_uniformity()``, ``test_dispersion()``,
            ``test_zero_inflation()``, ``test_generic()``, ``plot()``.
        """
        return simulate_residuals(self, n=n, seed=seed, integer_response=integer_response,
                                  use_u=use_u, method=method)
