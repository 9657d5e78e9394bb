"""The random effects of a fit: variance components, conditional modes and
their conditional variances, and lme4's ``coef`` (the functions behind
:meth:`GLMMResults.varcorr`, ``ranef``, ``conditional_variances`` and ``coef``)."""

import numpy as np
import pandas as pd

from .params import sdcor_from_covariance

__all__ = ["varcorr", "ranef", "conditional_variances", "coef"]


def re_scale(res):
    """σ² for the linear mixed model (its θ is relative to σ), 1 otherwise."""
    return res.dispersion if res.model.is_lmm else 1.0


def varcorr(res):
    """Variance components as R's ``as.data.frame(VarCorr(m))``."""
    rows = []
    re = res.model.random_effects
    covs = re.covariances(res.theta.to_numpy(), re_scale(res))
    for label, term, cov in zip(re.term_labels(), re.terms, covs):
        sd, corr = sdcor_from_covariance(cov)
        for i, name in enumerate(term.cnames):
            rows.append((label, name, None, cov[i, i], sd[i]))
        pairs = [(i, j) for j in range(len(sd)) for i in range(j + 1, len(sd))]
        for (i, j), r in zip(pairs, corr):
            rows.append((label, term.cnames[j], term.cnames[i], cov[i, j], r))
    residual = res.model.kernel.residual_variance(res.fit_record.dispersion)
    if residual is not None:
        rows.append(("Residual", None, None, residual, res.sigma))
    return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])


def _term_frame(term, b, var):
    frame = pd.DataFrame(b, index=term.levels, columns=term.cnames)
    frame.index.name = term.group_name
    if var is not None:
        sd = np.sqrt(np.diagonal(var, axis1=1, axis2=2))
        for i, name in enumerate(term.cnames):
            frame[f"condsd({name})"] = sd[:, i]
        frame.attrs["condVar"] = var
    return frame


def ranef(res, condVar=False):
    """Conditional modes b = Λ û per grouping factor (see :meth:`GLMMResults.ranef`)."""
    re = res.model.random_effects
    cond = conditional_variances(res) if condVar else [None] * len(re.terms)
    out = {}
    for term, b, var in zip(re.terms, re.conditional_modes(res.theta.to_numpy(), res.u),
                            cond):
        frame = _term_frame(term, b, var)
        if term.group_name in out:  # terms sharing a grouping factor are combined
            prev = out[term.group_name]
            merged = prev.join(frame, rsuffix="'")
            if var is not None:
                merged.attrs["condVar"] = _block_stack(prev.attrs["condVar"], var)
            frame = merged
        out[term.group_name] = frame
    if condVar:  # modes first, then their conditional standard deviations
        for name, frame in out.items():
            modes = [c for c in frame.columns if not str(c).startswith("condsd(")]
            sds = [c for c in frame.columns if str(c).startswith("condsd(")]
            attrs = frame.attrs
            out[name] = frame[modes + sds]
            out[name].attrs.update(attrs)
    return out


def conditional_variances(res):
    """Per term, Λ_j [(L L')⁻¹]_jj Λ_j' at each level, (levels, S, S)."""
    re = res.model.random_effects
    factor = res.modes.factor.leading(len(re.terms))
    if len(re.terms) == 1:
        inv = factor.block(0).inverse
        blocks = [np.einsum("lki,lkj->lij", inv, inv)]
    else:
        Linv = np.linalg.inv(factor.to_dense())
        full = Linv.T @ Linv
        blocks = []
        for term, lo in zip(re.terms, re.re_offsets):
            s = term.n_cov
            sub = full[lo:lo + term.n_re, lo:lo + term.n_re]
            idx = np.arange(term.n_levels)[:, None] * s + np.arange(s)
            blocks.append(sub[idx[:, :, None], idx[:, None, :]])
    scale = re_scale(res)
    return [scale * np.einsum("ij,ljk,mk->lim", T, blk, T)
            for T, blk in zip(re.factors(res.theta.to_numpy()), blocks)]


def coef(res):
    """Fixed plus random effects per level (lme4's ``coef``)."""
    out = {}
    params = pd.Series(res.fe_params, index=res.model.fe_names)
    for group, frame in ranef(res).items():
        table = pd.DataFrame(np.tile(params.to_numpy(), (len(frame), 1)),
                             index=frame.index, columns=params.index)
        for col in frame.columns:
            name = "Intercept" if col == "(Intercept)" else str(col).rstrip("'")
            if name not in table.columns:
                table[name] = 0.0
            table[name] += frame[col].to_numpy()
        out[group] = table
    return out


def _block_stack(a, b):
    """Combine per-level covariance blocks of two terms of one grouping factor."""
    sa, sb = a.shape[1], b.shape[1]
    out = np.zeros((a.shape[0], sa + sb, sa + sb))
    out[:, :sa, :sa] = a
    out[:, sa:, sa:] = b
    return out
