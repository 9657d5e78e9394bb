"""The summary of a GLMM fit, laid out like lme4's ``summary(glmer)``, from
statsmodels' ``Summary`` and ``SimpleTable``."""

import numpy as np
import pandas as pd
from statsmodels.iolib.summary import Summary
from statsmodels.iolib.table import SimpleTable

from .families import family_name, link_name
from .optimizer_choice import OPTIMIZERS

__all__ = ["summary_tables"]


def _method_line(res):
    if res.model.is_lmm:
        crit = "REML" if res.reml else "maximum likelihood"
        return f"Linear mixed model fit by {crit}"
    if res.nAGQ == 1:
        approx = "Laplace Approximation"
    elif res.nAGQ == 0:
        approx = "nAGQ = 0: fixed effects by PIRLS, Laplace Approximation"
    else:
        approx = f"Adaptive Gauss-Hermite Quadrature, nAGQ = {res.nAGQ}"
    return f"Generalized linear mixed model fit by maximum likelihood ({approx})"


def _random_effects_table(res):
    vc = res.varcorr()
    rows = []
    show_corr = vc["var2"].notna().any()
    for grp, sub in vc.groupby("grp", sort=False):
        variances = sub[sub["var2"].isna()]
        corr = sub[sub["var2"].notna()]
        for k, (_, row) in enumerate(variances.iterrows()):
            name = "" if pd.isna(row["var1"]) else row["var1"]  # None, or NaN in a str column
            cells = [grp if k == 0 else "", name, f"{row['vcov']:.4g}", f"{row['sdcor']:.4g}"]
            if show_corr:
                cors = [f"{c:.2f}" for c in corr.loc[corr["var2"] == name, "sdcor"]]
                cells.append(" ".join(cors))
            rows.append(cells)
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if show_corr else [])
    return SimpleTable(rows, header, title="Random effects")


def _optimizer_name(res):
    options = res.fit_record.options
    name = "bobyqa" if options is None else options.optimizer
    return "BOBYQA" if name == "bobyqa" else OPTIMIZERS[name]


def _header(res, title):
    model = res.model
    fam = "gaussian" if model.is_lmm else family_name(model.family)
    formula = model.formula_full or "(array input)"
    groups = ", ".join(f"{g}, {n}" for g, n in res.ngroups().items())
    header = [["Family:", f"{fam} ({link_name(model.family.link)})"],
              ["Formula:", formula],
              ["No. Observations:", f"{int(res.nobs)}"],
              ["Groups:", groups],
              ["Optimizer:", f"{_optimizer_name(res)}, {res.optimizer.nfev} evaluations, "
                             f"{'converged' if res.converged else 'NOT converged'}"]]
    return SimpleTable(header, title=title or _method_line(res),
                       txt_fmt={"data_aligns": "l", "colsep": " "})


def _statistics_tables(res):
    crit = "REML crit." if res.reml else "-2logLik"
    stat_header = ["AIC", "BIC", "logLik", crit, "df.resid"]
    stat_row = [f"{res.aic:.1f}", f"{res.bic:.1f}", f"{res.llf:.1f}",
                f"{res.neg2llf:.1f}", f"{int(res.df_resid)}"]
    quant = res.summary_statistics()["scaled_residual_quantiles"]
    return [SimpleTable([stat_row], stat_header, title="Fit statistics"),
            SimpleTable([[f"{v:.4f}" for v in quant]], ["Min", "1Q", "Median", "3Q", "Max"],
                        title="Scaled residuals")]


def _dispersion_line(res):
    model = res.model
    if res.nb_theta is not None:
        se = "" if res.nb_theta_se is None else f" (SE {res.nb_theta_se:.4g})"
        how = "ML" if model.has_dispersion else "fixed"
        if np.isinf(res.nb_theta):
            se = " (boundary: no overdispersion, the Poisson limit; no SE)"
        return (f"Negative binomial shape theta = 1/alpha ({how}): "
                f"{res.nb_theta:.4g}{se}.")
    if model.is_lmm:
        return None
    return model.kernel.summary_line(res.fit_record.dispersion)


def _correlation_lines(res):
    """lme4's "Correlation of Fixed Effects" (for 2 to 12 fixed effects)."""
    p = len(res.fe_params)
    if not 1 < p <= 12:
        return []
    cov = res.cov_fe
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    names = [str(n)[:10] for n in res.model.fe_names]
    lines = ["Correlation of Fixed Effects:", " " * 12 + " ".join(
        f"{n:>10}" for n in names[:-1])]
    for i in range(1, p):
        lines.append(f"{names[i]:<12}" + " ".join(f"{corr[i, j]:>10.3f}" for j in range(i)))
    return lines


def summary_tables(res, alpha=0.05, title=None):
    """A statsmodels ``Summary`` of ``res`` laid out like lme4's ``summary(glmer)``."""
    model = res.model
    smry = Summary()
    smry.tables.append(_header(res, title))
    smry.tables.extend(_statistics_tables(res))
    smry.tables.append(_random_effects_table(res))
    smry.add_table_params(res, yname=model.endog_label, xname=list(model.exog_names),
                          alpha=alpha, use_t=res.use_t)
    smry.tables[-1].title = "Fixed effects"
    cov = res.cov_kwds["description"] if res.cov_type == "cluster" else res.cov_type
    extra = [f"Fixed-effects covariance: {cov}."]
    if res.use_t:
        df = getattr(res, "df_resid_inference", res.df_resid)
        extra.append(f"t statistics with {df:g} degrees of freedom (lme4 reports z).")
    if res.fit_record.hessian_skipped:
        extra.append("The finite-difference Hessian was skipped for this large model "
                     "(fit(calc_hessian=True) computes it).")
    line = _dispersion_line(res)
    if line:
        extra.append(line)
    if model.dropped_columns:
        extra.append("Dropped for collinearity (NaN above): "
                     + ", ".join(model.dropped_columns) + ".")
    extra.extend(_correlation_lines(res))
    if res.is_singular():
        extra.append("boundary (singular) fit: a variance component is estimated as 0.")
    if not res.converged:
        extra.append(f"The optimizer did not converge: {res.optimizer.message}.")
    smry.add_extra_txt(extra)
    return smry
