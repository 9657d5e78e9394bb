"""Estimated marginal means (R's emmeans) of a fitted GLMM.

The reference grid is emmeans' default: every level of each factor of the fixed
effects, each numeric covariate at its mean over the fitted rows, the offset at
the mean of the fitted offsets. An estimated marginal mean is the linear
predictor at the random effects 0 (population level, as emmeans on a
``merMod``) averaged over the grid cells of the factors that are not in
``specs``/``by``; standard errors by the delta method from ``cov_fe`` and
asymptotic (z) intervals, as emmeans reports for ``glmer`` (df = Inf).
Contrasts and their multiplicity adjustments are in :mod:`contrasts`.
"""

import itertools

import numpy as np
import pandas as pd
from patsy import PatsyError
from scipy import stats

from .contrasts import ContrastResults, contrast_matrix
from .families import BinomialKernel, NegativeBinomialKernel, PoissonKernel
from .frame import prepare_newdata
from .r_formula import referenced_columns

__all__ = ["ReferenceGrid", "EMMeansResults", "emmeans"]

WEIGHTS = ("equal", "proportional", "outer", "cells", "flat")
_RATIO_LINKS = {"logit": "odds.ratio", "log": "ratio"}


def _factor_levels(values):
    """Levels of a factor column in the order the formula engine codes them."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    if pd.api.types.is_bool_dtype(values.dtype):
        return [False, True]
    return sorted(pd.unique(values.dropna()))


def _numeric_as_factor(design_info, name, columns):
    """A numeric column that enters the formula only inside factor-making calls
    (``factor(year)``, ``C(x)``) is a factor of the grid, as in emmeans."""
    kinds = [info.type for factor, info in design_info.factor_infos.items()
             if name in referenced_columns(factor.name(), columns)]
    return bool(kinds) and all(kind == "categorical" for kind in kinds)


class ReferenceGrid:
    """emmeans' reference grid of a fitted GLMM.

    Parameters
    ----------
    results : GLMMResults
    at : dict, optional
        ``{variable: value or list of values}``: factor levels to keep, or the
        values of a numeric covariate (several values make it a dimension of
        the grid, averaged over unless named in ``specs``).
    offset : float, optional
        The offset of every grid cell (default: the mean of the fitted offsets).

    Attributes
    ----------
    levels : dict
        ``{variable: list}`` for the dimensions of the grid (factors and
        covariates given several values in ``at``), in the data's column order.
    covariates : dict
        ``{variable: value}`` for the numeric covariates held at one value.
    frame : pandas.DataFrame
        One row per grid cell (the first dimension varies fastest, as R's
        ``expand.grid``).
    counts : ndarray
        Number of fitted rows in each cell's combination of factor levels.
    linfct, offset : ndarray
        The fixed-effects design row (kept columns) and the offset of each cell.
    """

    def __init__(self, results, at=None, offset=None):
        model = results.model
        if model.formula_full is None or getattr(model.data, "frame", None) is None:
            raise ValueError("emmeans needs a model created from a formula with its data "
                             "(glmer / GLMM.from_formula, not removed by remove_data)")
        data = model.data.frame
        rhs = str(model.formula).split("~", 1)[-1]
        names = referenced_columns(rhs, data.columns)
        at = dict(at or {})
        unknown = [key for key in at if key not in names]
        if unknown:
            raise ValueError(f"at names variable(s) {unknown} that are not in the fixed "
                             f"effects; the grid's variables are {names}")
        self.factors, self.levels, self.covariates = [], {}, {}
        for name in names:
            self._add_variable(model, data, name, at)
        self.frame = self._expand()
        self.counts = self._counts(data)
        self.linfct, self.full_linfct = self._design(results, self.frame)
        mean_offset = float(np.mean(model.offset)) if len(model.offset) else 0.0
        self.offset = np.full(len(self.frame), mean_offset if offset is None else
                              float(offset))

    def _add_variable(self, model, data, name, at):
        values = data[name]
        numeric = pd.api.types.is_numeric_dtype(values.dtype) and not \
            pd.api.types.is_bool_dtype(values.dtype)
        if numeric and not _numeric_as_factor(model.data.model_spec, name, data.columns):
            chosen = np.atleast_1d(np.asarray(at.get(name, values.mean()), dtype=float))
            if chosen.size == 1:
                self.covariates[name] = float(chosen[0])
            else:
                self.levels[name] = list(chosen)
            return
        levels = _factor_levels(values)
        if name in at:
            wanted = {str(v) for v in np.atleast_1d(np.asarray(at[name], dtype=object))}
            bad = sorted(wanted - {str(lev) for lev in levels})
            if bad:
                raise ValueError(f"at[{name!r}] has value(s) {bad} that are not levels "
                                 f"of {name!r}: {levels}")
            levels = [lev for lev in levels if str(lev) in wanted]
        self.factors.append(name)
        self.levels[name] = levels

    def _expand(self):
        dims = list(self.levels)
        combos = itertools.product(*[self.levels[d] for d in reversed(dims)])
        frame = pd.DataFrame([tuple(reversed(c)) for c in combos], columns=dims)
        for name, value in self.covariates.items():
            frame[name] = value
        return frame

    def _counts(self, data):
        if not self.factors:
            return np.full(len(self.frame), float(len(data)))
        keys = data[self.factors].astype(object)
        table = keys.groupby(self.factors, observed=True, dropna=True).size()
        index = pd.MultiIndex.from_frame(self.frame[self.factors].astype(object))
        return table.reindex(index, fill_value=0).to_numpy(dtype=float)

    @staticmethod
    def _design(results, frame):
        model = results.model
        try:
            full = results.fixed_exog(prepare_newdata(frame))
        except PatsyError as exc:
            cause = exc.__cause__ or exc.__context__ or exc
            raise ValueError("cannot build the fixed-effects design of the reference "
                             f"grid: {str(cause).splitlines()[0]}") from None
        return full[:, model.kept_columns], full

    @property
    def dims(self):
        """The dimensions of the grid: ``levels``' keys."""
        return list(self.levels)


def _null_basis(model):
    """Columns spanning the null space of the full fixed-effects design (one per
    column dropped for collinearity), or None when no column was dropped."""
    dropped = [i for i in range(len(model.exog_names)) if i not in model.kept_columns]
    exog = getattr(model.data, "exog", None)
    if not dropped or exog is None:
        return None
    full = np.asarray(exog, dtype=float)
    kept = full[:, model.kept_columns]
    coef = np.linalg.lstsq(kept, full[:, dropped], rcond=None)[0]
    basis = np.zeros((full.shape[1], len(dropped)))
    basis[model.kept_columns] = -coef
    basis[dropped, np.arange(len(dropped))] = 1.0
    return basis / np.linalg.norm(basis, axis=0)


def _parse_specs(specs, by):
    """``specs`` as a name, a list of names or emmeans' ``"~ a + b | c"``."""
    by = [] if by is None else [by] if isinstance(by, str) else list(by)
    if isinstance(specs, str):
        text = specs.strip()
        if "~" in text:
            lhs, text = text.split("~", 1)
            if lhs.strip():
                raise ValueError(f"specs {specs!r}: a left-hand side (emmeans' "
                                 "'pairwise ~ x') is not supported; call .contrasts() "
                                 "on the result")
        if "|" in text:
            text, by_text = text.split("|", 1)
            by += [b.strip() for b in by_text.replace("*", "+").split("+") if b.strip()]
        names = [n.strip() for n in text.replace("*", "+").replace(":", "+").split("+")]
        names = [n for n in names if n]
    else:
        names = list(specs)
    if not names:
        raise ValueError(f"specs {specs!r} names no variable")
    both = [n for n in names if n in by]
    if both:
        raise ValueError(f"variable(s) {both} are in both specs and by")
    return names, by


def _check_specs(grid, names):
    for name in names:
        if name in grid.levels:
            continue
        if name in grid.covariates:
            raise ValueError(
                f"{name!r} is a numeric covariate, held at {grid.covariates[name]:.6g} on "
                f"the reference grid; give it values to tabulate, e.g. "
                f"at={{{name!r}: [..]}}, or use get_margeff for its slope")
        raise ValueError(f"{name!r} is not a variable of the fixed effects; the reference "
                         f"grid's factors are {grid.factors}")


def _cell_weights(grid, weights, primary, averaged):
    """Weight of each grid cell within its combination of the ``primary`` levels."""
    counts = grid.counts
    if weights == "equal":
        return np.ones(len(grid.frame))
    if weights == "cells":
        return counts.copy()
    if weights == "flat":
        return (counts > 0).astype(float)
    if not averaged:
        return np.ones(len(grid.frame))
    frame = grid.frame.assign(_n=counts)
    if weights == "proportional":
        margin = frame.groupby(averaged, sort=False)["_n"].transform("sum")
        return margin.to_numpy(dtype=float)
    out = np.ones(len(frame))  # "outer": product of each factor's marginal counts
    for name in averaged:
        out *= frame.groupby(name, sort=False)["_n"].transform("sum").to_numpy(dtype=float)
    return out


def _averaging_matrix(grid, primary, weights):
    """Rows: the combinations of the ``primary`` dimensions (first fastest);
    columns: grid cells; entries: normalised weights."""
    averaged = [d for d in grid.dims if d not in primary]
    w = _cell_weights(grid, weights, primary, averaged)
    combos = list(itertools.product(*[grid.levels[d] for d in reversed(primary)]))
    table = pd.DataFrame([tuple(reversed(c)) for c in combos], columns=primary)
    key_cells = pd.MultiIndex.from_frame(grid.frame[primary].astype(object))
    codes = pd.MultiIndex.from_frame(table.astype(object)).get_indexer(key_cells)
    A = np.zeros((len(table), len(grid.frame)))
    A[codes, np.arange(len(grid.frame))] = w
    total = A.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        A = np.where(total > 0, A / total, np.nan)
    return A, table


def response_label(kernel):
    """emmeans' name of the back-transformed mean (``.std.link.labels``)."""
    if isinstance(kernel, BinomialKernel):
        return "prob"
    if isinstance(kernel, PoissonKernel) and not isinstance(kernel, NegativeBinomialKernel):
        return "rate"
    return "response"


class EMMeansResults:
    """Estimated marginal means (see :meth:`GLMMResults.emmeans`).

    Attributes
    ----------
    grid : pandas.DataFrame
        The levels of ``specs`` and ``by`` of each mean (``by`` varies slowest).
    linfct : ndarray
        Each mean's linear function of the fixed effects (kept columns).
    offset : ndarray
    estimate_link, se_link : ndarray
        Mean and standard error on the linear-predictor scale.
    type : {"link", "response"}
    specs, by : list of str
    estimate_name : str
        ``emmean`` on the link scale; ``prob``, ``rate`` or ``response`` for the
        back-transformed means.
    """

    def __init__(self, grid, linfct, offset, beta, cov, kernel, type, specs, by):
        self.grid, self.linfct, self.offset = grid, linfct, offset
        self.cov = cov
        self.kernel = kernel
        self.specs, self.by = specs, by
        self.estimate_link = linfct @ beta + offset
        self.cov_link = linfct @ cov @ linfct.T
        self.se_link = np.sqrt(np.diag(self.cov_link))
        self.transformed = type == "response" and kernel.link != "identity"
        self.type = type
        self.estimate_name = response_label(kernel) if self.transformed else "emmean"

    @property
    def estimate(self):
        """The means on the scale of ``type``."""
        if self.transformed:
            return self.kernel.mu(self.estimate_link)
        return self.estimate_link

    @property
    def se(self):
        """Standard errors on the scale of ``type`` (delta method: ``|dμ/dη| SE``)."""
        if self.transformed:
            return np.abs(self.kernel.mu_eta(self.estimate_link)) * self.se_link
        return self.se_link

    def conf_int(self, alpha=0.05):
        """Wald (z) intervals, back-transformed from the link scale for
        ``type="response"``; an array (n, 2)."""
        q = stats.norm.ppf(1 - alpha / 2)
        lo = self.estimate_link - q * self.se_link
        hi = self.estimate_link + q * self.se_link
        if self.transformed:
            lo, hi = self.kernel.mu(lo), self.kernel.mu(hi)
            lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        return np.column_stack([lo, hi])

    def summary_frame(self, alpha=0.05):
        """The table emmeans prints: the grid columns, the mean (``emmean``,
        ``prob``, ``rate`` or ``response``), ``SE``, ``lower``, ``upper``."""
        ci = self.conf_int(alpha)
        out = self.grid.copy()
        out[self.estimate_name] = self.estimate
        out["SE"] = self.se
        out["lower"], out["upper"] = ci[:, 0], ci[:, 1]
        return out

    def __repr__(self):
        scale = "link" if not self.transformed else f"response ({self.kernel.link}⁻¹)"
        return (f"Estimated marginal means on the {scale} scale (random effects at 0, "
                f"z intervals)\n{self.summary_frame().to_string(index=False)}")

    def contrasts(self, method="pairwise", adjust=None, ref=0, ratio=True):
        """Contrasts of the means within each ``by`` group (emmeans' ``contrast``).

        Parameters
        ----------
        method : {"pairwise", "revpairwise", "trt.vs.ctrl"} or dict
            A dict maps contrast names to weight vectors over the means of one
            ``by`` group (in the order of :attr:`grid`).
        adjust : str, optional
            ``"tukey"``, ``"sidak"``, ``"bonferroni"``, ``"holm"``, ``"hochberg"``,
            ``"BH"``, ``"BY"``, ``"dunnettx"`` or ``"none"``: the multiplicity
            adjustment of p-values and intervals within each ``by`` group;
            default emmeans': ``"tukey"`` for pairwise, ``"dunnettx"`` for
            ``trt.vs.ctrl``, ``"none"`` for a dict.
        ref : int or level label
            The control of ``trt.vs.ctrl`` (default the first level).
        ratio : bool
            With ``type="response"`` and a log or logit link, report the
            back-transformed contrasts as ratios (odds ratios) as emmeans does;
            tests and p-values are those of the link scale.

        Returns
        -------
        contrasts.ContrastResults
        """
        primary = list(self.specs)
        n_groups = int(np.prod([self.grid[b].nunique() for b in self.by])) if self.by else 1
        per_group = len(self.grid) // n_groups
        first = self.grid.iloc[:per_group]
        raw = [" ".join(map(str, row)) for row in first[primary].itertuples(index=False)]
        C, names, kind, default_adjust = contrast_matrix(
            method, _level_labels(first, primary), ref, raw)
        true_contrast = np.allclose(C.sum(axis=1) / (1e-6 + np.abs(C).max(axis=1)), 0,
                                    atol=1e-6)
        use_ratio = (ratio and self.transformed and true_contrast
                     and self.kernel.link in _RATIO_LINKS)
        if use_ratio:
            names = [n.replace(" - ", " / ") for n in names]
        by_frame = self.grid[self.by].iloc[::per_group].reset_index(drop=True)
        return ContrastResults(
            np.kron(np.eye(n_groups), C), self, names, by_frame, kind,
            default_adjust if adjust is None else adjust, family_size=per_group,
            ratio_name=_RATIO_LINKS[self.kernel.link] if use_ratio else None)


def _level_labels(grid, names):
    """emmeans' labels of the means in a contrast: variables whose levels are all
    numbers are prefixed with their name; labels with - + / * in parentheses."""
    parts = []
    for name in names:
        values = grid[name].astype(str)
        numeric = pd.to_numeric(values, errors="coerce").notna().all()
        parts.append((name + values) if numeric else values)
    labels = [" ".join(p) for p in zip(*[list(v) for v in parts])]
    return [f"({lab})" if any(c in lab for c in "-+/*") else lab for lab in labels]


def emmeans(results, specs, by=None, type="link", at=None, weights="equal", offset=None,
            beta=None, cov=None):
    """Estimated marginal means of a fit (see :meth:`GLMMResults.emmeans`).

    ``beta`` and ``cov`` replace the fit's fixed effects and their covariance
    (kept columns, ``model.fe_names`` order), e.g. to evaluate another
    program's estimates on the same reference grid.
    """
    if type not in ("link", "response"):
        raise ValueError(f"type must be 'link' or 'response', got {type!r}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    names, by = _parse_specs(specs, by)
    grid = ReferenceGrid(results, at=at, offset=offset)
    _check_specs(grid, names + by)
    primary = names + by
    A, table = _averaging_matrix(grid, primary, weights)
    linfct = A @ grid.linfct
    offs = A @ grid.offset
    basis = _null_basis(results.model)
    if basis is not None:  # means that are not estimable (collinear columns) are NaN
        full = A @ grid.full_linfct
        scale = np.maximum(1.0, np.abs(full).max(axis=1))
        bad = np.abs(full @ basis).max(axis=1) > 1e-6 * scale
        linfct[bad] = np.nan
    beta = results.fe_params if beta is None else np.asarray(beta, dtype=float)
    cov = results.cov_fe if cov is None else np.asarray(cov, dtype=float)
    return EMMeansResults(table, linfct, offs, beta, cov, results.model.kernel, type,
                          names, by)
