"""Model comparison and interval estimation: anova, drop1, likelihood profiles,
confidence intervals and the parametric bootstrap.

Because every log-likelihood here carries all its normalizing constants and is
consistent across nAGQ, fits by Laplace and by quadrature, and GLMs without
random effects, can be compared in one likelihood-ratio table (lme4 refuses
some of these comparisons).
"""

from concurrent.futures import ProcessPoolExecutor
import warnings

import numpy as np
import pandas as pd
from patsy import ModelDesc
from scipy import interpolate, stats

from .data_removal import require_data
from .families import has_dispersion
from .optimizer import bobyqa
from .params import sdcor_bounds, sdcor_to_theta, theta_to_sdcor
from .progress import check_progress, progress_bar

__all__ = ["anova", "drop1", "Profile", "profile", "confint", "bootstrap", "BootstrapResults",
           "re_parameter_names"]


# -- likelihood-ratio tables ---------------------------------------------------------------
def _npar(res):
    """Number of estimated parameters (lme4's npar / logLik df)."""
    if hasattr(res, "df_modelwc") and hasattr(res.model, "random_effects"):
        return int(res.df_modelwc)
    model = res.model
    k = len(np.asarray(res.params))
    family = getattr(model, "family", None)
    if family is not None and has_dispersion(family):
        k += 1
    return k


def _response_signature(res):
    model = res.model
    if hasattr(model, "response"):
        resp = model.response
        return np.asarray(resp.y * resp.weights), resp.nobs
    endog = np.asarray(model.endog, dtype=float)
    if endog.ndim == 2:  # statsmodels' two-column binomial: successes
        return endog[:, 0], endog.shape[0]
    weights = np.asarray(getattr(model, "var_weights", np.ones(len(endog))))
    # statsmodels GLM turns a two-column binomial response into proportions
    weights = weights * np.asarray(getattr(model, "n_trials", 1.0))
    return endog * weights, len(endog)


def _label(res, i):
    model = res.model
    return getattr(model, "formula_full", None) or getattr(model, "formula", None) or \
        f"model {i + 1}"


def anova(*results, names=None, boundary=False):
    """Likelihood-ratio table for nested models fitted to the same data.

    Parameters
    ----------
    *results : fitted GLMM results (or statsmodels GLM results)
    names : list of str, optional
        Row labels (default: the formulas).
    boundary : bool
        For tests of a variance component at zero, use the χ² mixture
        ½χ²(df) + ½χ²(df−1) (Self & Liang) instead of χ²(df).

    Returns
    -------
    pandas.DataFrame
        Models sorted by number of parameters, with columns ``npar, AIC, BIC,
        logLik, -2logLik, Chisq, Df, Pr(>Chisq)`` as lme4's ``anova``.
    """
    if len(results) < 2:
        raise ValueError("anova needs at least two fitted models")
    signatures = [_response_signature(r) for r in results]
    y0, n0 = signatures[0]
    for i, (y, n) in enumerate(signatures[1:], start=2):
        if n != n0 or not np.allclose(y, y0):
            raise ValueError(f"model {i} was not fitted to the same observations as model 1 "
                             f"({n} vs {n0} rows or a different response)")
    labels = list(names) if names is not None else [_label(r, i) for i, r in enumerate(results)]
    rows = []
    for label, res in zip(labels, results):
        llf = float(res.llf)
        k = _npar(res)
        rows.append({"model": label, "npar": k, "AIC": -2 * llf + 2 * k,
                     "BIC": -2 * llf + np.log(n0) * k, "logLik": llf, "-2logLik": -2 * llf})
    table = pd.DataFrame(rows)
    table = table.iloc[np.argsort(table["npar"].to_numpy(), kind="stable")]
    chisq = np.maximum(-np.diff(table["-2logLik"].to_numpy()), 0.0)
    df = np.diff(table["npar"].to_numpy())
    table["Chisq"] = np.r_[np.nan, chisq]
    table["Df"] = np.r_[np.nan, df]
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, stats.chi2.sf(chisq, np.maximum(df, 1)), np.nan)
        if boundary:
            lower = np.where(df > 1, stats.chi2.sf(chisq, np.maximum(df - 1, 1)),
                             (chisq <= 0).astype(float))
            p = np.where(df > 0, 0.5 * p + 0.5 * lower, np.nan)
    table["Pr(>Chisq)"] = np.r_[np.nan, p]
    return table.set_index("model")


def _fixed_terms(res):
    """Fixed-effect term names of the formula, and which can be dropped
    (intercept excluded; a term is kept while a higher-order term contains it)."""
    spec = res.model.data.model_spec
    terms = [t for t in spec.terms if t.factors]
    # R's order: by degree, then as written in the formula
    written = ModelDesc.from_formula(res.model.parsed_formula.fixed_formula).rhs_termlist
    position = {term: i for i, term in enumerate(written)}
    terms.sort(key=lambda t: (len(t.factors), position.get(t, len(written))))
    names = [t.name() for t in terms]
    droppable = []
    for term, name in zip(terms, names):
        factors = set(term.factors)
        if not any(other is not term and factors < set(other.factors) for other in terms):
            droppable.append(name)
    return names, droppable


def drop1(res, test="Chisq", **fit_kwargs):
    """Refit dropping each droppable fixed-effects term (respecting marginality).

    Returns
    -------
    pandas.DataFrame
        Rows ``<none>`` and each term: ``npar`` (parameters dropped), ``AIC``,
        and with ``test="Chisq"`` the likelihood-ratio statistic ``LRT`` and
        ``Pr(Chi)``, as lme4's ``drop1``.
    """
    if test not in ("Chisq", None, "none"):
        raise ValueError("test must be 'Chisq' or None")
    model = res.model
    if getattr(model, "formula_full", None) is None:
        raise ValueError("drop1 needs a model created from a formula")
    _, droppable = _fixed_terms(res)
    rows = [{"term": "<none>", "npar": np.nan, "AIC": res.aic, "LRT": np.nan,
             "Pr(Chi)": np.nan}]
    for term in droppable:
        smaller = res.update(f"{model.formula_full} - {term}", **fit_kwargs)
        lrt = max(2 * (res.llf - smaller.llf), 0.0)
        npar = _npar(res) - _npar(smaller)
        rows.append({"term": term, "npar": npar, "AIC": smaller.aic, "LRT": lrt,
                     "Pr(Chi)": stats.chi2.sf(lrt, npar) if npar > 0 else np.nan})
    table = pd.DataFrame(rows).set_index("term")
    if test in (None, "none"):
        table = table[["npar", "AIC"]]
    return table


# -- the sd/correlation parameterization -------------------------------------------------------
def re_parameter_names(res):
    """lme4's names (``.sig01`` ...) and readable names of the sd/corr parameters,
    then of the family's dispersion parameters (``.sigma``, ``.nbtheta`` ...)."""
    short, readable = [], []
    k = 0
    re = res.model.random_effects
    for label, term in zip(re.term_labels(), re.terms):
        s = term.n_cov
        for i in range(s):
            k += 1
            short.append(f".sig{k:02d}")
            readable.append(f"sd_{term.cnames[i]}|{label}")
        for j in range(s):
            for i in range(j + 1, s):
                k += 1
                short.append(f".sig{k:02d}")
                readable.append(f"cor_{term.cnames[i]}.{term.cnames[j]}|{label}")
    for name, description in res.model.kernel.dispersion_labels():
        short.append(name)
        readable.append(description)
    return short, readable


# -- likelihood profiles ----------------------------------------------------------------------
class Profile:
    """Likelihood profiles ζ(p) = sign(p − p̂) √(dev(p) − dev(p̂)) of each parameter.

    Parameters are on the sd/correlation scale for the random effects (lme4's
    ``.sig01`` ...) and β for the fixed effects. ``table`` holds the profile
    points; ``confint(level)`` inverts interpolating splines of p against ζ.
    """

    def __init__(self, res, table, names, readable, mles):
        self.res = res
        self.table = table
        self.names = names
        self.readable = readable
        self.mles = mles

    def zeta(self, name):
        """Profile points (parameter values, ζ) of one parameter."""
        sub = self.table[self.table["param"] == name].sort_values("value")
        return sub["value"].to_numpy(), sub["zeta"].to_numpy()

    def confint(self, level=0.95):
        q = stats.norm.ppf(0.5 + level / 2)
        rows = []
        for name in self.names:
            values, zeta = self.zeta(name)
            lo = self._invert(values, zeta, -q)
            hi = self._invert(values, zeta, q)
            rows.append((lo, hi))
        pct = [f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"]
        return pd.DataFrame(rows, index=self.names, columns=pct)

    @staticmethod
    def _invert(values, zeta, target):
        order = np.argsort(zeta)
        z, v = zeta[order], values[order]
        keep = np.r_[True, np.diff(z) > 1e-12]
        z, v = z[keep], v[keep]
        if len(z) < 2 or target < z[0] or target > z[-1]:
            # the profile did not reach the level: open interval, or the boundary
            if target < 0 and len(v) and v[0] <= 0 and z[0] > target:
                return 0.0
            return np.nan
        return float(interpolate.PchipInterpolator(z, v)(target))


def _objective_for(res):
    """Deviance over (sd/corr, packed dispersion, β) and the MLE in that
    parameterization."""
    model = res.model
    re = model.random_effects
    k_sd = len(theta_to_sdcor(re, res.theta.to_numpy()))
    with np.errstate(divide="ignore"):
        packed = model.kernel.pack_dispersion(res.fit_record.dispersion)
    # a negative binomial at its boundary θ = ∞ (α = 0) keeps α there: log α = −∞
    # cannot be profiled, and the other parameters are profiled in the Poisson limit
    fixed = packed if not np.all(np.isfinite(packed)) else np.empty(0)
    disp = packed.size - fixed.size
    devfun = model.deviance_function(max(res.nAGQ, 1), res.fit_record.information, u0=res.u)

    def objective(x):
        try:
            theta = sdcor_to_theta(re, x[:k_sd])
        except ValueError:
            return np.inf
        return devfun(np.concatenate([theta, fixed, x[k_sd:]]))

    # an undefined correlation (a zero SD) is profiled from 0
    sdcor = np.nan_to_num(theta_to_sdcor(re, res.theta.to_numpy()), nan=0.0)
    mle = np.concatenate([sdcor, packed[:disp], res.fe_params])
    return objective, mle, k_sd, disp


def profile(res, which=None, alphamax=0.01, maxpts=40, delta=None, progress=False):
    """Profile the deviance of a GLMM fit (nAGQ ≥ 1).

    Parameters
    ----------
    which : list of str, optional
        Parameter names (``.sig01`` ..., or fixed-effect names); default all.
    alphamax : float
        Profile until ζ exceeds the normal quantile for this two-sided level.
    maxpts : int
        Maximum number of points per direction.
    delta : float, optional
        Target step in ζ between points (default cutoff / 8, as lme4).
    progress : bool
        A tqdm bar over the parameters profiled.

    Returns
    -------
    Profile
    """
    require_data(res, "profile")
    model = res.model
    if res.nAGQ == 0:
        raise ValueError("profiles need a fit with nAGQ >= 1 (the deviance over θ and β)")
    if model.is_lmm:
        raise ValueError("profiles of linear mixed models are not implemented yet")
    objective, mle, k_sd, disp = _objective_for(res)
    short, readable = re_parameter_names(res)
    short = short[:k_sd + disp]
    readable = readable[:k_sd + disp]
    names = short + list(model.fe_names)
    readable = readable + list(model.fe_names)
    index = {name: i for i, name in enumerate(names)}  # positions in mle
    which = names if which is None else list(which)
    unknown = set(which) - set(names)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}; choose from {names}")
    lower_sd, upper_sd = sdcor_bounds(model.random_effects)
    lower = np.concatenate([lower_sd, [-np.inf] * disp, np.full(model.k_fe, -np.inf)])
    upper = np.concatenate([upper_sd, [np.inf] * disp, np.full(model.k_fe, np.inf)])
    base = res.neg2llf
    cutoff = stats.norm.ppf(1 - alphamax / 2)
    delta = cutoff / 8 if delta is None else delta
    se = _approximate_se(res, mle, k_sd, disp)
    rows = []
    bar = progress_bar(len(which), check_progress(progress), desc="profile", unit="param")
    for name in which:
        j = index[name]
        rows.append({"param": name, "value": mle[j], "zeta": 0.0})
        first = None  # the first point of the downward profile seeds the upward one
        for direction in (-1.0, 1.0):
            points, first = _profile_direction(objective, mle, j, direction, base, cutoff,
                                               delta, se[j], lower, upper, maxpts, name,
                                               first)
            rows.extend(points)
        bar.update(1)
    bar.close()
    table = pd.DataFrame(rows)
    kernel = model.kernel
    for i in range(disp):
        # profiled on the packed scale (log φ ...); reported on the σ (or θ = 1/α,
        # power) scale, ζ signed on that scale
        rows_disp = table["param"] == short[k_sd + i]
        table.loc[rows_disp, "value"] = kernel.report_dispersion(
            i, table.loc[rows_disp, "value"].to_numpy())
        if kernel.report_is_decreasing(i):
            table.loc[rows_disp, "zeta"] = -table.loc[rows_disp, "zeta"]
    return Profile(res, table, which, [readable[names.index(n)] for n in which], mle)


def _approximate_se(res, mle, k_sd, disp):
    """Rough standard errors to size the first profile steps."""
    se = np.full(mle.size, 0.1)
    se[k_sd + disp:] = np.sqrt(np.diag(res.cov_fe))
    se[:k_sd] = np.maximum(0.25 * np.abs(mle[:k_sd]), 0.05)
    return se


def _next_start(current, previous, free, j, new_value, lower, upper):
    """Start and initial steps of the optimization at the next profile point.

    The conditional optima of the free parameters move smoothly with the profiled
    one, so they are extrapolated linearly from the last two points of the trace,
    and the extrapolation error is a small fraction of the move: steps of 5 % of
    it let BOBYQA converge in ~19 evaluations per point on cbpp (2n + 1 of them
    build its first model) instead of ~34 from the last point with steps of 10 %
    of the parameters, with the same intervals to ~1e-7. Without a previous point
    the steps are small too (the profile starts at the optimum).
    """
    start = current[free]
    if previous is None or previous[j] == current[j]:
        return start, np.maximum(0.005 * np.abs(start), 1e-3)
    slope = (current[free] - previous[free]) / (current[j] - previous[j])
    start = np.clip(start + slope * (new_value - current[j]), lower[free], upper[free])
    return start, np.maximum(0.05 * np.abs(start - current[free]), 5e-5)


def _profile_direction(objective, mle, j, direction, base, cutoff, delta, se, lower, upper,
                       maxpts, name, previous=None):
    """Profile points in one direction from the MLE.

    Returns
    -------
    rows, first : list of dict, ndarray or None
        The points, and the full parameter vector at the first one (it gives the
        slope of the trace at the MLE for the other direction, via ``previous``).
    """
    rows, first = [], None
    free = np.array([i for i in range(mle.size) if i != j])
    current = mle.copy()
    value, zeta = mle[j], 0.0
    slope = 1.0 / se  # dζ/dp near the optimum
    for _ in range(maxpts):
        step = direction * delta / max(slope, 1e-8)
        new_value = value + step
        if new_value < lower[j]:
            if value <= lower[j]:
                break
            new_value = lower[j]
        if new_value > upper[j]:
            if value >= upper[j]:
                break
            new_value = upper[j]

        def partial(x, new_value=new_value):
            full = current.copy()
            full[free] = x
            full[j] = new_value
            return objective(full)

        start, steps = _next_start(current, previous, free, j, new_value, lower, upper)
        opt = bobyqa(partial, start, lower[free], steps, ftol_abs=1e-7,
                     xtol_abs=1e-6, maxeval=2000, upper=upper[free])
        dev = max(opt.fun - base, 0.0)
        new_zeta = direction * np.sqrt(dev)
        previous = current.copy()
        current[free] = opt.x
        current[j] = new_value
        if first is None:
            first = current.copy()
        if abs(new_zeta - zeta) > 1e-8:
            slope = abs((new_zeta - zeta) / (new_value - value))
        value, zeta = new_value, new_zeta
        rows.append({"param": name, "value": value, "zeta": zeta})
        if abs(zeta) > cutoff or value in (lower[j], upper[j]):
            break
    return rows, first


def confint(res, method="Wald", level=0.95, nsim=500, seed=None, boot_type="perc",
            n_jobs=1, progress=False):
    """Confidence intervals for the random-effect sd/corr and the fixed effects.

    Parameters
    ----------
    method : {"Wald", "profile", "boot"}
        Wald: β ± z·SE (NaN for the variance parameters, as lme4); profile:
        likelihood-profile intervals; boot: parametric bootstrap.
    level : float
    nsim, seed, boot_type, n_jobs
        Bootstrap settings (``boot_type`` one of perc, basic, norm).
    progress : bool
        A tqdm bar for the profile or the bootstrap.

    Returns
    -------
    pandas.DataFrame
        Rows ``.sig01`` ... then the fixed effects; columns the two limits and
        ``description`` (readable names of the ``.sig`` rows).
    """
    short, readable = re_parameter_names(res)
    if method == "profile":
        table = profile(res, alphamax=min(1 - level, 0.05) / 2,
                        progress=progress).confint(level)
    elif method == "boot":
        boot = bootstrap(res, nsim=nsim, seed=seed, n_jobs=n_jobs, progress=progress)
        table = boot.conf_int(method=boot_type, level=level)
    elif method == "Wald":
        q = stats.norm.ppf(0.5 + level / 2)
        params, bse = np.asarray(res.params), np.asarray(res.bse)
        pct = [f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"]
        sig = pd.DataFrame(np.nan, index=short, columns=pct)
        fixed = pd.DataFrame(np.column_stack([params - q * bse, params + q * bse]),
                             index=list(res.model.exog_names), columns=pct)
        table = pd.concat([sig, fixed])
    else:
        raise ValueError("method must be 'Wald', 'profile' or 'boot'")
    describe = dict(zip(short, readable))
    table["description"] = [describe.get(i, i) for i in table.index]
    return table


# -- parametric bootstrap ---------------------------------------------------------------------
def _default_statistic(res):
    values = theta_to_sdcor(res.model.random_effects, res.theta.to_numpy())
    kernel = res.model.kernel
    with np.errstate(divide="ignore", over="ignore"):  # α = 0: θ = ∞ at the NB boundary
        packed = kernel.pack_dispersion(res.fit_record.dispersion)
        extra = [kernel.report_dispersion(i, packed[i]) for i in range(packed.size)]
    return np.concatenate([values, extra, res.fe_params])


def _bootstrap_chunk(args):
    res, seeds, func = args
    out, failures = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        try:
            y = res.simulate(1, seed=rng)["sim_1"].to_numpy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                refit = res.refit(y)
            out.append(np.asarray(func(refit), dtype=float))
            failures.append(None)
        except Exception as exc:  # count every failure, never hide it
            out.append(None)
            failures.append(f"{type(exc).__name__}: {exc}")
    return out, failures


class BootstrapResults:
    """Replicates of a statistic from :func:`bootstrap`.

    Attributes
    ----------
    t0 : pandas.Series
        The statistic on the original fit.
    t : pandas.DataFrame
        One row per successful replicate.
    n_failed : int
        Replicates whose simulation or refit failed (``failures`` has the messages).
    """

    def __init__(self, t0, t, failures):
        self.t0, self.t = t0, t
        self.failures = [f for f in failures if f is not None]
        self.n_failed = len(self.failures)

    def conf_int(self, method="perc", level=0.95):
        """Percentile, basic or normal bootstrap intervals."""
        a = (1 - level) / 2
        pct = [f"{100 * a:.1f} %", f"{100 * (1 - a):.1f} %"]
        t, t0 = self.t.to_numpy(), self.t0.to_numpy()
        if method == "perc":
            lo, hi = np.nanquantile(t, a, axis=0), np.nanquantile(t, 1 - a, axis=0)
        elif method == "basic":
            lo = 2 * t0 - np.nanquantile(t, 1 - a, axis=0)
            hi = 2 * t0 - np.nanquantile(t, a, axis=0)
        elif method == "norm":
            bias = np.nanmean(t, axis=0) - t0
            sd = np.nanstd(t, axis=0, ddof=1)
            q = stats.norm.ppf(1 - a)
            lo, hi = t0 - bias - q * sd, t0 - bias + q * sd
        else:
            raise ValueError("method must be 'perc', 'basic' or 'norm'")
        return pd.DataFrame(np.column_stack([lo, hi]), index=self.t0.index, columns=pct)


def bootstrap(res, nsim=100, func=None, seed=None, n_jobs=1, progress=False):
    """Parametric bootstrap: simulate from the fit, refit, apply ``func``.

    Parameters
    ----------
    nsim : int
    func : callable, optional
        ``func(results) -> array``; default the sd/corr parameters (and σ) and β.
    seed : int or None
        Replicate k uses its own stream from ``SeedSequence(seed)``, so results
        do not depend on ``n_jobs``.
    n_jobs : int
        Worker processes (the fit is pickled to them).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    BootstrapResults
    """
    require_data(res, "bootstrap")
    if func is None:
        func = _default_statistic
        short, _ = re_parameter_names(res)
        labels = short + list(res.model.fe_names)
    else:
        labels = None
    seeds = np.random.SeedSequence(seed).spawn(nsim)
    t0 = np.asarray(func(res), dtype=float)
    if labels is None or len(labels) != t0.size:
        labels = [f"t{i + 1}" for i in range(t0.size)]
    n_jobs = max(1, int(n_jobs))
    chunks = [seeds[i::n_jobs] for i in range(n_jobs)] if n_jobs > 1 else [seeds]
    order = [i for c in range(len(chunks)) for i in range(c, nsim, len(chunks))]
    bar = progress_bar(nsim, check_progress(progress), desc="bootstrap")
    values, failures = [None] * nsim, [None] * nsim
    if n_jobs == 1:
        pieces = [_bootstrap_chunk((res, [s], func)) for s in seeds]
        for k, (out, fail) in enumerate(pieces):
            values[k], failures[k] = out[0], fail[0]
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            results = list(pool.map(_bootstrap_chunk, [(res, c, func) for c in chunks]))
        flat_out = [v for out, _ in results for v in out]
        flat_fail = [f for _, fail in results for f in fail]
        for pos, k in enumerate(order):
            values[k], failures[k] = flat_out[pos], flat_fail[pos]
        bar.update(nsim)
    bar.close()
    ok = [v for v in values if v is not None]
    t = pd.DataFrame(np.vstack(ok) if ok else np.empty((0, t0.size)), columns=labels)
    return BootstrapResults(pd.Series(t0, index=labels), t, failures)
