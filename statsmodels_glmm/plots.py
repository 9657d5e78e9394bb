"""Diagnostic plots for GLMM fits (matplotlib, an optional dependency).

Every function takes a fitted result (or a profile) and an optional ``ax`` (or
``fig``), and returns the matplotlib ``Figure``.

- :func:`plot_residuals`: Pearson residuals against the linear predictor;
- :func:`plot_scale_location`: √|scaled Pearson residual| against the linear predictor;
- :func:`plot_qq`: normal QQ plot of the deviance residuals;
- :func:`plot_caterpillar`: conditional modes with conditional-variance intervals;
- :func:`plot_ranef_qq`: normal QQ plot of the conditional modes;
- :func:`plot_profile`: likelihood profiles ζ(p);
- :func:`plot_laplace_integrands` and :func:`plot_laplace_t`: the Laplace diagnostics of
  the lme4 GLMM paper, for a model with one scalar random-effects term — each level's
  integrand on the standardized scale z = (u − ũ)/s against the standard normal density
  (Figure 1), and t(z) = sign(z)·√(d(z) − d(0)) against z (Figure 2), which is the
  identity when the integrand is exactly Gaussian.
"""

import numpy as np
from scipy import stats

__all__ = ["plot_residuals", "plot_scale_location", "plot_qq", "plot_caterpillar",
           "plot_ranef_qq", "plot_profile", "plot_laplace_integrands", "plot_laplace_t",
           "laplace_integrands"]


def _axes(ax):
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - optional dependency
        raise ImportError("plots need matplotlib: pip install statsmodels-glmm[plots]") from None
    if ax is None:
        fig, ax = plt.subplots()
        return fig, ax
    return ax.figure, ax


def plot_residuals(res, ax=None):
    """Pearson residuals against the (conditional) linear predictor."""
    fig, ax = _axes(ax)
    ax.scatter(res.linear_predictor, np.asarray(res.resid_pearson), s=12, alpha=0.7)
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xlabel("linear predictor")
    ax.set_ylabel("Pearson residual")
    ax.set_title("Residuals vs fitted")
    return fig


def plot_scale_location(res, ax=None):
    """√|Pearson residual / σ| against the linear predictor."""
    fig, ax = _axes(ax)
    y = np.sqrt(np.abs(np.asarray(res.resid_pearson) / res.sigma))
    ax.scatter(res.linear_predictor, y, s=12, alpha=0.7)
    ax.set_xlabel("linear predictor")
    ax.set_ylabel(r"$\sqrt{|\mathrm{scaled\ Pearson\ residual}|}$")
    ax.set_title("Scale-location")
    return fig


def _qq(ax, values, title):
    values = np.sort(np.asarray(values))
    n = values.size
    theo = stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n)
    ax.scatter(theo, values, s=12)
    q = np.quantile(values, [0.25, 0.75])
    slope = (q[1] - q[0]) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
    ax.plot(theo, q[0] + slope * (theo - stats.norm.ppf(0.25)), color="grey", lw=1)
    ax.set_xlabel("standard normal quantiles")
    ax.set_ylabel("sample quantiles")
    ax.set_title(title)


def plot_qq(res, ax=None):
    """Normal QQ plot of the deviance residuals."""
    fig, ax = _axes(ax)
    _qq(ax, res.resid_deviance, "Normal QQ: deviance residuals")
    return fig


def plot_caterpillar(res, group=None, column=None, level=0.95, ax=None):
    """Conditional modes of one random effect, sorted, with ±z·condsd intervals."""
    frames = res.ranef(condVar=True)
    group = group or next(iter(frames))
    frame = frames[group]
    column = column or frame.columns[0]
    sd = frame[f"condsd({column})"].to_numpy()
    modes = frame[column].to_numpy()
    order = np.argsort(modes)
    z = stats.norm.ppf(0.5 + level / 2)
    fig, ax = _axes(ax)
    pos = np.arange(len(modes))
    ax.errorbar(modes[order], pos, xerr=z * sd[order], fmt="o", ms=3, lw=1)
    ax.set_yticks(pos)
    ax.set_yticklabels(np.asarray(frame.index)[order], fontsize=7)
    ax.axvline(0.0, color="grey", lw=1)
    ax.set_xlabel(f"{column} | {group}")
    ax.set_title("Conditional modes")
    return fig


def plot_ranef_qq(res, group=None, column=None, ax=None):
    """Normal QQ plot of the conditional modes of one random effect."""
    frames = res.ranef()
    group = group or next(iter(frames))
    column = column or frames[group].columns[0]
    fig, ax = _axes(ax)
    _qq(ax, frames[group][column], f"Normal QQ: {column} | {group}")
    return fig


def plot_profile(prof, fig=None):
    """ζ against each profiled parameter, with the ±1.96 reference lines."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise ImportError("plots need matplotlib") from None
    names = prof.names
    if fig is None:
        fig = plt.figure(figsize=(3 * len(names), 3))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name, label in zip(axes, names, prof.readable):
        values, zeta = prof.zeta(name)
        ax.plot(values, zeta, "o-", ms=3)
        for q in (-1.96, 0.0, 1.96):
            ax.axhline(q, color="grey", lw=0.8, ls=":")
        ax.set_xlabel(label)
        ax.set_ylabel("ζ")
    fig.tight_layout()
    return fig


def laplace_integrands(res, z=None):
    """Each level's integrand on the standardized scale (one scalar term).

    Returns
    -------
    z : ndarray
        Grid of standardized values z = (u − ũ_j) / s_j.
    t : ndarray, (levels, len(z))
        sign(z) √(d_j(z) − d_j(0)), with d_j = −2 log p(y_j | u) + u²: equal to z
        when the integrand is exactly Gaussian (the Laplace approximation exact).
    density : ndarray, (levels, len(z))
        The integrand scaled to the normal density at z = 0: φ(0)·exp(−(d_j(z) − d_j(0))/2).
    """
    model = res.model
    re = model.random_effects
    if len(re.terms) != 1 or re.terms[0].n_cov != 1:
        raise ValueError("the Laplace diagnostics need a single scalar random-effects term")
    z = np.linspace(-3, 3, 61) if z is None else np.asarray(z, dtype=float)
    modes = res.modes
    term = re.terms[0]
    scaled = re.scaled_covariates(res.theta.to_numpy())[0][:, 0]
    sd = 1.0 / modes.factor.block(0).diagonal()
    offset = model.offset + model.exog @ res.fe_params
    resp = model.response

    def devc(u):
        mu = resp.mu(offset + scaled * u[term.refs])
        return np.bincount(term.refs, weights=resp.neg2loglik_obs(mu, res.fit_record.dispersion),
                           minlength=term.n_levels) + u * u

    d0 = devc(modes.u)
    diffs = np.column_stack([devc(modes.u + zk * sd) - d0 for zk in z])
    t = np.sign(z) * np.sqrt(np.maximum(diffs, 0.0))
    density = stats.norm.pdf(0.0) * np.exp(-0.5 * diffs)
    return z, t, density


def plot_laplace_integrands(res, ax=None):
    """Figure 1 of the lme4 GLMM paper: integrands against the N(0, 1) density."""
    z, _, density = laplace_integrands(res)
    fig, ax = _axes(ax)
    for row in density:
        ax.plot(z, row, color="C0", lw=0.8, alpha=0.6)
    ax.plot(z, stats.norm.pdf(z), color="k", lw=2, ls="--", label="N(0, 1)")
    ax.set_xlabel("z")
    ax.set_ylabel("scaled integrand")
    ax.legend()
    ax.set_title("Laplace diagnostic: integrands")
    return fig


def plot_laplace_t(res, ax=None):
    """Figure 2 of the lme4 GLMM paper: t(z) per level against the identity."""
    z, t, _ = laplace_integrands(res)
    fig, ax = _axes(ax)
    for row in t:
        ax.plot(z, row, color="C0", lw=0.8, alpha=0.6)
    ax.plot(z, z, color="k", lw=2, ls="--", label="t(z) = z")
    ax.set_xlabel("z")
    ax.set_ylabel("t(z)")
    ax.legend()
    ax.set_title("Laplace diagnostic: t(z)")
    return fig
