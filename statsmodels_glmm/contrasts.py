"""Contrasts of estimated marginal means and emmeans' multiplicity adjustments.

With asymptotic (z) inference, as emmeans reports for ``glmer``:

* ``tukey``: the studentized range with df = ∞ for a family of pairwise
  comparisons of k means, p = P(Q_k > √2 |z|) and the interval half-width
  q_k(1 − α) / √2 (emmeans changes ``tukey`` to ``sidak`` for other contrasts);
* ``dunnettx``: emmeans' approximation to Dunnett's many-to-one test, a mix of
  the Tukey and Šidák probabilities;
* ``sidak``, ``bonferroni``; and R's ``p.adjust`` methods ``holm``,
  ``hochberg``, ``BH``, ``BY`` (their intervals use Bonferroni's critical value,
  as emmeans' do).

A family is one ``by`` group; with a single contrast there is nothing to adjust.
"""

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.sm_exceptions import ValueWarning

__all__ = ["ContrastResults", "contrast_matrix", "adjust_pvalues", "critical_value",
           "ADJUSTMENTS"]

_PADJUST = {"bonferroni": "bonferroni", "holm": "holm", "hochberg": "simes-hochberg",
            "BH": "fdr_bh", "fdr": "fdr_bh", "BY": "fdr_by"}
ADJUSTMENTS = ("tukey", "sidak", "dunnettx", "none", *_PADJUST)


def contrast_matrix(method, labels, ref=0, raw_labels=None):
    """Coefficients of emmeans' contrast methods over k means.

    ``ref`` (for ``trt.vs.ctrl``) is a position, a label or a raw level
    (``raw_labels``, the levels without emmeans' decoration).

    Returns
    -------
    C : ndarray (m, k)
    names : list of str
    kind : {"pairs", "other"}
        ``pairs`` for the families Tukey's method applies to.
    default_adjust : str
    """
    k = len(labels)
    if isinstance(method, dict):
        rows, names = [], []
        for name, weights in method.items():
            w = np.asarray(weights, dtype=float).ravel()
            if w.size != k:
                raise ValueError(f"contrast {name!r} has {w.size} weights; expected {k}, "
                                 f"one per mean: {labels}")
            rows.append(w)
            names.append(str(name))
        if not rows:
            raise ValueError("method is an empty dict: give at least one contrast")
        return np.vstack(rows), names, "other", "none"
    pairs = {"pairwise": [(i, j) for i in range(k) for j in range(i + 1, k)],
             "revpairwise": [(j, i) for j in range(1, k) for i in range(j)]}
    if method in pairs:
        C = np.zeros((len(pairs[method]), k))
        for row, (i, j) in enumerate(pairs[method]):
            C[row, i], C[row, j] = 1.0, -1.0
        names = [f"{labels[i]} - {labels[j]}" for i, j in pairs[method]]
        return C, names, "pairs", "tukey"
    if method == "trt.vs.ctrl":
        if not isinstance(ref, (int, np.integer)):
            raw = list(raw_labels or labels)
            if ref not in labels and str(ref) not in raw:
                raise ValueError(f"ref {ref!r} is not one of the means: {raw}")
            ref = labels.index(ref) if ref in labels else raw.index(str(ref))
        if not 0 <= ref < k:
            raise ValueError(f"ref={ref} is out of range for {k} means")
        others = [i for i in range(k) if i != ref]
        C = np.zeros((len(others), k))
        C[np.arange(len(others)), others] = 1.0
        C[:, ref] = -1.0
        return C, [f"{labels[i]} - {labels[ref]}" for i in others], "other", "dunnettx"
    raise ValueError(f"method must be 'pairwise', 'revpairwise', 'trt.vs.ctrl' or a dict "
                     f"of weight vectors, got {method!r}")


def _pdunnx(x, k):
    """emmeans' ``.pdunnx`` with df = ∞: P(max |Z| < x) for k comparisons."""
    twt = (k - 1) / k
    tukey = stats.studentized_range.cdf(np.sqrt(2) * x, (1 + np.sqrt(1 + 8 * k)) / 2, np.inf)
    sidak = stats.chi2.cdf(np.square(x), 1) ** k
    return twt * tukey + (1 - twt) * sidak


def _check_adjust(adjust, kind, n_contr):
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {ADJUSTMENTS}, got {adjust!r}")
    if n_contr == 1:
        return "none"
    if adjust == "tukey" and kind != "pairs":
        warnings.warn("adjust='tukey' is only appropriate for one set of pairwise "
                      "comparisons; using 'sidak' (as emmeans)", ValueWarning, stacklevel=4)
        return "sidak"
    return adjust


def adjust_pvalues(z, adjust, family_size):
    """Two-sided p-values of one family of z statistics, adjusted by ``adjust``."""
    z = np.abs(np.asarray(z, dtype=float))
    raw = 2 * stats.norm.sf(z)
    n = len(z)
    if adjust == "none":
        return raw
    if adjust == "sidak":
        return -np.expm1(n * np.log1p(-raw))
    if adjust == "tukey":
        return stats.studentized_range.sf(np.sqrt(2) * z, family_size, np.inf)
    if adjust == "dunnettx":
        return 1 - _pdunnx(z, n)
    out = np.full(n, np.nan)
    ok = ~np.isnan(raw)
    if ok.any():
        out[ok] = multipletests(raw[ok], method=_PADJUST[adjust])[1]
    return out


def critical_value(alpha, adjust, n_contr, family_size):
    """Half-width of a (simultaneous) interval in standard errors."""
    level = 1 - alpha
    if adjust == "none":
        return stats.norm.ppf(1 - alpha / 2)
    if adjust == "sidak":
        return stats.norm.ppf(0.5 + 0.5 * level ** (1 / n_contr))
    if adjust == "tukey":
        return stats.studentized_range.ppf(level, family_size, np.inf) / np.sqrt(2)
    if adjust == "dunnettx":
        lo = stats.studentized_range.ppf(level, (1 + np.sqrt(1 + 8 * n_contr)) / 2,
                                         np.inf) / np.sqrt(2)
        hi = np.sqrt(stats.chi2.ppf(level ** (1 / n_contr), 1))
        if abs(hi - lo) < 5e-4:
            return lo
        return optimize.brentq(lambda x: _pdunnx(x, n_contr) - level, min(lo, hi),
                               max(lo, hi), xtol=1e-10)
    return stats.norm.ppf(1 - alpha / (2 * n_contr))  # Bonferroni (and p.adjust's)


class ContrastResults:
    """Contrasts of estimated marginal means (see :meth:`EMMeansResults.contrasts`).

    Attributes
    ----------
    coefficients : ndarray
        Contrast weights over the means (block-diagonal over ``by`` groups).
    linfct : ndarray
        The contrasts as linear functions of the fixed effects.
    estimate_link, se_link : ndarray
        Contrasts and standard errors on the link scale.
    names : list of str
    adjust : str
        The adjustment applied (emmeans' rules: none for a single contrast,
        ``sidak`` instead of ``tukey`` for contrasts that are not pairwise).
    estimate_name : {"estimate", "odds.ratio", "ratio"}
    """

    def __init__(self, coefficients, emm, names, by_frame, kind, adjust, family_size,
                 ratio_name=None):
        est = np.nan_to_num(emm.estimate_link)
        cov = np.nan_to_num(emm.cov_link)
        missing = np.isnan(emm.estimate_link)
        touched = (np.abs(coefficients[:, missing]) > 0).any(axis=1)
        self.coefficients = coefficients
        self.linfct = coefficients @ np.nan_to_num(emm.linfct)
        self.estimate_link = np.where(touched, np.nan, coefficients @ est)
        self.se_link = np.where(touched, np.nan, np.sqrt(np.einsum(
            "ij,jk,ik->i", coefficients, cov, coefficients)))
        n_groups = max(len(by_frame), 1)
        self.n_contr = len(names)
        self.family_size = family_size
        self.adjust = _check_adjust(adjust, kind, self.n_contr)
        self.names = list(names) * n_groups
        self.by_frame = by_frame
        self.ratio_name = ratio_name
        self.estimate_name = ratio_name or "estimate"

    @property
    def zvalues(self):
        return self.estimate_link / self.se_link

    @property
    def pvalues(self):
        """Adjusted two-sided p-values, family by family (``by`` group)."""
        z = self.zvalues.reshape(-1, self.n_contr)
        return np.concatenate([adjust_pvalues(row, self.adjust, self.family_size)
                               for row in z])

    @property
    def estimate(self):
        return np.exp(self.estimate_link) if self.ratio_name else self.estimate_link

    @property
    def se(self):
        return self.estimate * self.se_link if self.ratio_name else self.se_link

    def conf_int(self, alpha=0.05):
        """Simultaneous intervals for the family (the adjustment's critical value;
        Bonferroni's for the p.adjust methods), as ratios for ratio contrasts."""
        q = critical_value(alpha, self.adjust, self.n_contr, self.family_size)
        ci = np.column_stack([self.estimate_link - q * self.se_link,
                              self.estimate_link + q * self.se_link])
        return np.exp(ci) if self.ratio_name else ci

    def summary_frame(self, alpha=0.05):
        """``contrast``, the ``by`` columns, the estimate (``estimate``,
        ``odds.ratio`` or ``ratio``), ``SE``, ``z``, ``p_value``, ``lower``,
        ``upper``; z and p are those of the link scale (H0: difference 0,
        ratio 1)."""
        out = pd.DataFrame({"contrast": self.names})
        for name in self.by_frame.columns:
            out[name] = np.repeat(self.by_frame[name].to_numpy(), self.n_contr)
        ci = self.conf_int(alpha)
        out[self.estimate_name] = self.estimate
        out["SE"] = self.se
        out["z"] = self.zvalues
        out["p_value"] = self.pvalues
        out["lower"], out["upper"] = ci[:, 0], ci[:, 1]
        return out

    def __repr__(self):
        note = f"p-value adjustment: {self.adjust}"
        if self.adjust == "tukey":
            note += f" method for comparing a family of {self.family_size} estimates"
        if self.ratio_name:
            note += "; tests are performed on the log scale"
        return f"{self.summary_frame().to_string(index=False)}\n{note}"
