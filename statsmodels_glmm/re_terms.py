"""Random-effects terms: grouping factors, covariates, and the θ ↔ Λ mapping.

A term ``(expr | g)`` has ``S`` covariates (columns of the model matrix of
``expr``) and ``ell`` levels of ``g``; it contributes ``q = S * ell`` random
effects, ordered level-major (all ``S`` effects of level 1, then level 2 ...),
as in lme4. Its relative covariance factor is a lower-triangular ``S x S``
matrix ``T`` whose free elements are stored in θ column by column (the
diagonal element first in each column); Λ is block diagonal with ``ell``
copies of ``T``. Diagonal elements of ``T`` are bounded below by 0.

Terms are sorted by decreasing number of levels (stable, as lme4 does), so θ
follows that order, not the formula's.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from patsy import EvalEnvironment, PatsyError, build_design_matrices, dmatrix
import scipy.sparse as sp

from .compact_state import compact_term_state, restore_term
from .levels import factor_codes, lookup_codes
from .r_formula import R_NAMESPACE, referenced_columns

__all__ = ["RandomEffectsTerm", "RandomEffects", "build_random_effects", "group_codes"]


def group_codes(frame, factors):
    """Integer codes and labels for the (interaction of) grouping columns.

    Levels are ordered as R orders ``factor(a:b)``: by the first factor's
    levels, then the second's; levels that do not occur are dropped. Values are
    matched by their canonical labels (:mod:`levels`), as R's ``as.character``.

    Returns
    -------
    codes : ndarray of intp
    labels : pandas.Index of str
    """
    parts_codes = []
    parts_labels = []
    for name in factors:
        if name not in frame.columns:
            raise PatsyError(f"grouping factor {name!r} is not a column of the data")
        codes, labels = factor_codes(frame[name])
        if np.any(codes < 0):
            raise ValueError(f"grouping factor {name!r} has missing values")
        parts_codes.append(codes)
        parts_labels.append(labels)
    combined = np.zeros(len(frame), dtype=np.int64)
    for codes, labels in zip(parts_codes, parts_labels):
        combined = combined * len(labels) + codes
    used, codes = np.unique(combined, return_inverse=True)
    labels = []
    for key in used:
        names = []
        for part in reversed(parts_labels):
            key, idx = divmod(key, len(part))
            names.append(part[idx])
        labels.append(":".join(reversed(names)))
    return codes.astype(np.intp), pd.Index(labels)


def theta_rows_cols(s):
    """(row, col) of each θ element inside an S x S factor T: the lower triangle
    column by column, the diagonal element first in each column (lme4's order)."""
    return [(r, c) for c in range(s) for r in range(c, s)]


def factor_from_theta(theta, s):
    """The lower-triangular S x S relative covariance factor T holding ``theta``."""
    T = np.zeros((s, s))
    rows, cols = zip(*theta_rows_cols(s))
    T[rows, cols] = theta
    return T


def theta_slices(n_thetas):
    """Slices of θ per term, given each term's number of θ elements."""
    bounds = np.concatenate([[0], np.cumsum(n_thetas)]).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def theta_scale_from_rms(rms_per_term):
    """Per θ element, the RMS of its row's covariate rounded to a power of 2 (1
    where it is 0 or not finite); ``rms_per_term`` holds one array of S per term."""
    out = []
    for rms in rms_per_term:
        rms = np.asarray(rms, dtype=float)
        ok = np.isfinite(rms) & (rms > 0)
        scale = np.where(ok, 2.0 ** np.round(np.log2(np.where(ok, rms, 1.0))), 1.0)
        out.extend(scale[r] for r, _ in theta_rows_cols(rms.size))
    return np.asarray(out, dtype=float)


class TermSizes:
    """Sizes of a random-effects term from its ``n_cov`` and ``levels``."""

    @property
    def n_levels(self):
        return len(self.levels)

    @property
    def n_re(self):
        """q = S * ell."""
        return self.n_cov * self.n_levels

    @property
    def n_theta(self):
        s = self.n_cov
        return s * (s + 1) // 2


@dataclass
class RandomEffectsTerm(TermSizes):
    """One random-effects term after evaluation on the data.

    Attributes
    ----------
    group_name : str
        Name of the grouping factor (``"herd"``, ``"a:b"``).
    cnames : list of str
        Names of the covariates, ``"(Intercept)"`` for the intercept as lme4.
    expr : str
        The covariate formula.
    refs : ndarray of intp, shape (n,)
        Level index of each observation.
    levels : pandas.Index
        Level labels.
    z : ndarray, shape (n, S)
        Covariate values.
    """

    group_name: str
    cnames: list
    expr: str
    refs: np.ndarray
    levels: pd.Index
    z: np.ndarray
    factors: tuple = ()
    design_info: object = None
    template: object = None

    @property
    def n_cov(self):
        """S, the number of covariates (random effects per level)."""
        return self.z.shape[1]

    @property
    def theta_rows_cols(self):
        """(row, col) of each θ element inside T, column-major lower triangle."""
        return theta_rows_cols(self.n_cov)

    def theta_start(self):
        return np.array([1.0 if r == c else 0.0 for r, c in self.theta_rows_cols])

    def theta_lower(self):
        return np.array([0.0 if r == c else -np.inf for r, c in self.theta_rows_cols])

    def factor(self, theta):
        """The lower-triangular relative covariance factor T."""
        return factor_from_theta(theta, self.n_cov)

    def sparse_z(self):
        """Z for this term as an n x q CSR matrix (row i: level refs[i])."""
        n, s = self.z.shape
        indptr = np.arange(0, n * s + 1, s)
        indices = (self.refs[:, None] * s + np.arange(s)).ravel()
        return sp.csr_matrix((self.z.ravel(), indices, indptr), shape=(n, self.n_re))

    def __getstate__(self):
        # patsy's DesignInfo cannot be pickled: keep the columns it was built
        # from (none for an intercept-only term) and rebuild it on demand
        state = self.__dict__.copy()
        state["design_info"] = None
        return compact_term_state(state)

    def __setstate__(self, state):
        self.__dict__.update(state)
        restore_term(self)

    def _design(self):
        if self.design_info is None and getattr(self, "template", None) is not None:
            self.design_info = dmatrix(self.expr, self.template, NA_action="raise",
                                       eval_env=EvalEnvironment([R_NAMESPACE])).design_info
        return self.design_info

    def covariates_for(self, frame):
        """Covariates of this term evaluated on new data, coded as in the fit.

        Rows with missing values come back as NaN.
        """
        design = self._design()
        if design is None:
            raise ValueError(f"term ({self.expr} | {self.group_name}) was built from arrays; "
                             "new data needs a model created from a formula")
        absent = [c for c in getattr(self.template, "columns", []) if c not in frame.columns]
        if absent:
            raise ValueError(f"newdata lacks the column(s) {absent} of the random-effects "
                             f"term ({self.expr} | {self.group_name})")
        try:
            (mat,) = build_design_matrices([design], frame, NA_action="drop",
                                           return_type="dataframe")
        except PatsyError as exc:
            raise ValueError(f"cannot evaluate the random-effects term ({self.expr} | "
                             f"{self.group_name}) on newdata: {str(exc).splitlines()[0]}"
                             ) from None
        return mat.reindex(frame.index).to_numpy(dtype=float)

    def level_codes_for(self, frame):
        """Index of each row's level in ``levels``; -1 for a level not in the fit
        and for a missing grouping value."""
        for name in self.factors:
            if name not in frame.columns:
                raise ValueError(f"grouping factor {name!r} is not a column of newdata")
        if len(self.factors) == 1:
            return lookup_codes(frame[self.factors[0]], self.levels)
        missing = np.zeros(len(frame), dtype=bool)
        parts = []
        for name in self.factors:
            _, text, absent = lookup_codes(frame[name], [])
            missing |= absent
            parts.append(text)
        labels = np.array([":".join(v) for v in zip(*parts)], dtype=object)
        lookup = {lab: i for i, lab in enumerate(self.levels)}
        codes = np.array([lookup.get(lab, -1) for lab in labels], dtype=np.intp)
        codes[missing] = -1
        return codes, labels, missing

    def is_nested_in(self, other):
        """True if each level of ``self`` lies within one level of ``other``."""
        first = np.full(self.n_levels, -1, dtype=np.intp)
        first[self.refs] = other.refs
        return bool(np.all(first[self.refs] == other.refs))


class RandomEffects:
    """The sorted random-effects terms of a model and their θ layout.

    Parameters
    ----------
    terms : list of RandomEffectsTerm
        In formula order; they are sorted here by decreasing number of levels.
    sort : bool, default True
        False keeps the given order (a partition's local terms, already in the
        global model's order, whose level counts within the partition may tie).
    """

    def __init__(self, terms, sort=True):
        order = range(len(terms))
        if sort:
            order = sorted(order, key=lambda i: -terms[i].n_levels)
        self.terms = [terms[i] for i in order]
        self.theta_slices = theta_slices([t.n_theta for t in self.terms])
        self.n_theta = sum(t.n_theta for t in self.terms)
        q_sizes = [t.n_re for t in self.terms]
        self.re_offsets = np.concatenate([[0], np.cumsum(q_sizes)]).astype(np.intp)
        self.n_re = int(self.re_offsets[-1])
        # nested[j]: every earlier (larger) term's factor is nested in term j's,
        # so block (j, j) of L stays block diagonal.
        self.nested = [
            all(self.terms[i].is_nested_in(self.terms[j]) for i in range(j))
            for j in range(len(self.terms))
        ]

    def __len__(self):
        return len(self.terms)

    def __iter__(self):
        return iter(self.terms)

    def theta_start(self):
        return np.concatenate([t.theta_start() for t in self.terms])

    def theta_lower(self):
        return np.concatenate([t.theta_lower() for t in self.terms])

    def theta_scale(self):
        """Per θ element, the scale of its row's covariate (RMS rounded to a power
        of 2, so exact in floating point): the optimizer works with θ · scale, which
        does not depend on the units of the random-effect covariates (a slope on
        x · 1e6 has θ ~ 1e-6). 1 for intercepts and unit-scale covariates.
        Computed once (it survives ``remove_data()``)."""
        if getattr(self, "_theta_scale", None) is not None:
            return self._theta_scale.copy()
        self._theta_scale = theta_scale_from_rms(
            [np.sqrt(np.mean(term.z * term.z, axis=0)) for term in self.terms])
        return self._theta_scale.copy()

    def factors(self, theta):
        """List of T matrices, one per term."""
        return [t.factor(theta[s]) for t, s in zip(self.terms, self.theta_slices)]

    def scaled_covariates(self, theta):
        """Per term, the n x S array z @ T: the nonzeros of the rows of Z Λ (a
        read-only broadcast row for an intercept-only term, whose z is one)."""
        return [np.broadcast_to(t.z[:1] @ T, t.z.shape) if t.z.strides[0] == 0 else t.z @ T
                for t, T in zip(self.terms, self.factors(theta))]

    def linear_predictor(self, scaled, u):
        """Z Λ u, given :meth:`scaled_covariates` and the spherical u."""
        eta = np.zeros(len(self.terms[0].refs))
        for term, zt, lo in zip(self.terms, scaled, self.re_offsets):
            s = term.n_cov
            u_term = u[lo:lo + term.n_re]
            # one 1-d gather per covariate: ~4x faster than gathering (n, S) rows
            # for an einsum (this runs at every PIRLS step)
            for a in range(s):
                eta += zt[:, a] * u_term[a::s][term.refs]
        return eta

    def relative_factor(self, theta):
        """Λ as a sparse q x q matrix."""
        blocks = []
        for term, T in zip(self.terms, self.factors(theta)):
            blocks.append(sp.kron(sp.identity(term.n_levels), sp.csr_matrix(T)))
        return sp.block_diag(blocks, format="csr")

    def sparse_z(self):
        """Z, n x q, columns in the sorted term order."""
        return sp.hstack([t.sparse_z() for t in self.terms], format="csr")

    def term_labels(self):
        """Grouping-factor names, repeated ones numbered ``g``, ``g.1`` ... as R does."""
        seen = {}
        labels = []
        for term in self.terms:
            count = seen.get(term.group_name, 0)
            seen[term.group_name] = count + 1
            labels.append(term.group_name if count == 0 else f"{term.group_name}.{count}")
        return labels

    def theta_names(self):
        """Readable names of the θ elements, e.g. ``herd:(Intercept)``."""
        names = []
        for term in self.terms:
            for r, c in term.theta_rows_cols:
                if r == c:
                    names.append(f"{term.group_name}.{term.cnames[r]}")
                else:
                    names.append(f"{term.group_name}.{term.cnames[r]}.{term.cnames[c]}")
        return names

    def covariances(self, theta, scale=1.0):
        """Per term, the covariance matrix scale * T T' of its random effects."""
        return [scale * T @ T.T for T in self.factors(theta)]

    def conditional_modes(self, theta, u):
        """b = Λ u split per term into (ell x S) arrays."""
        out = []
        for term, T, lo in zip(self.terms, self.factors(theta), self.re_offsets):
            u_term = u[lo:lo + term.n_re].reshape(term.n_levels, term.n_cov)
            out.append(u_term @ T.T)
        return out


def _covariate_matrix(bar, frame, eval_env=None):
    env = EvalEnvironment([eval_env]) if eval_env is not None else 0
    try:
        mat = dmatrix(bar.expr, frame, NA_action="raise", return_type="dataframe",
                      eval_env=env)
    except PatsyError as exc:
        raise PatsyError(f"in random-effects term {bar}: {exc}") from None
    names = ["(Intercept)" if c == "Intercept" else c for c in mat.columns]
    if mat.shape[1] == 0:
        raise PatsyError(f"random-effects term {bar} has no covariates")
    if names == ["(Intercept)"]:  # read-only ones that take no memory per row
        return np.broadcast_to(1.0, mat.shape), names, mat.design_info
    return np.asarray(mat, dtype=float), names, mat.design_info


def build_random_effects(bars, frame, eval_env=None):
    """Evaluate the bar terms on a complete-case data frame.

    Parameters
    ----------
    bars : list of formula_parser.BarTerm
    frame : pandas.DataFrame
        Rows already restricted to the observations used in the fit.

    Returns
    -------
    RandomEffects
    """
    terms = []
    for bar in bars:
        z, cnames, design_info = _covariate_matrix(bar, frame, eval_env)
        refs, levels = group_codes(frame, bar.factors)
        template = frame[referenced_columns(bar.expr, frame.columns)].copy()
        terms.append(RandomEffectsTerm(bar.group_name, cnames, bar.expr, refs, levels, z,
                                       bar.factors, design_info, template))
    return RandomEffects(terms)


def single_term(groups, exog_re=None):
    """One random-effects term from arrays (the array interface of :class:`GLMM`):
    a grouping factor and its covariates (default a random intercept)."""
    groups = pd.Series(np.asarray(groups, dtype=object))
    n = len(groups)
    if exog_re is None:
        z, cnames = np.ones((n, 1)), ["(Intercept)"]
    else:
        z = np.asarray(exog_re, dtype=float).reshape(n, -1)
        cnames = list(getattr(exog_re, "columns", [f"z{i}" for i in range(z.shape[1])]))
        if not np.all(np.isfinite(z)):
            raise ValueError("exog_re has non-finite values")
    refs, levels = group_codes(pd.DataFrame({"group": groups}), ("group",))
    term = RandomEffectsTerm("group", cnames, "custom", refs, levels, z, ("group",))
    return RandomEffects([term])
