"""Refit with every optimizer and compare (lme4's ``allFit``).

A fit is trustworthy when other optimizers, started from the same values with
the same options, reach the same optimum: −2ℓ within ~1e-6 and the parameters
within their optimization tolerance. A spread much larger than that points to a
flat or multimodal likelihood (a variance near 0, a nearly unidentified fixed
effect), where the reported estimates depend on the optimizer.
"""

import dataclasses
import time
import warnings

import numpy as np
import pandas as pd

from .data_removal import require_data
from .optimizer_choice import OPTIMIZERS, check_optimizer

__all__ = ["AllFitMixin", "AllFitResults", "AllFitSummary", "allfit"]


def _fit_arguments(res, optimizer):
    """The keyword arguments of ``model.fit`` that reproduce ``res`` with another
    optimizer (the same start, nAGQ, tolerances and options)."""
    options = res.fit_record.options
    if options is None:
        raise ValueError("allfit needs a fit made by GLMM.fit (its options are unknown)")
    # the monitor of the original fit (verbose, callback, progress) is not repeated
    kwargs = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
              if f.name != "observer"}
    kwargs["optimizer"] = optimizer
    return kwargs


def _one_fit(model, kwargs):
    """(results or None, warnings, seconds, error message or None)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            fit = model.fit(**kwargs)
            error = None
        except Exception as exc:  # an optimizer that fails is reported, never hidden
            fit, error = None, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
    messages = tuple(f"{w.category.__name__}: {w.message}" for w in caught)
    return fit, messages, seconds, error


def _row(res, fit, messages, seconds, error):
    """One optimizer's line of the table."""
    model = res.model
    theta_names = list(res.theta.index)
    row = {"neg2ll": np.nan, "converged": False, "nfev": np.nan, "time": seconds,
           "warnings": messages, "error": error}
    row.update(dict.fromkeys(theta_names + list(model.fe_names), np.nan))
    names = _dispersion_names(model)
    row.update(dict.fromkeys(names, np.nan))
    if fit is None:
        return row
    record = fit.fit_record
    row.update(zip(theta_names, np.asarray(record.theta, dtype=float)))
    row.update(zip(model.fe_names, np.asarray(record.beta, dtype=float)))
    row.update(zip(names, np.ravel(record.dispersion)[:len(names)]))
    row.update(neg2ll=float(record.neg2ll), converged=bool(fit.converged),
               nfev=int(sum(record.nfev.values())))
    return row


def _dispersion_names(model):
    """Column names of the dispersion values (φ, α, (φ, p) ...); none without one."""
    kernel = model.kernel
    if model.is_lmm:
        return ["sigma2"]
    return list(kernel.dispersion_names)[:kernel.n_dispersion]


def allfit(res, optimizers=None, progress=False):
    """Refit ``res`` with each optimizer (see :meth:`AllFitMixin.allfit`)."""
    require_data(res, "allfit")
    names = list(OPTIMIZERS) if optimizers is None else [
        check_optimizer(name) for name in ([optimizers] if isinstance(optimizers, str)
                                           else optimizers)]
    if not names:
        raise ValueError("optimizers is empty: give at least one of "
                         f"{', '.join(map(repr, OPTIMIZERS))}")
    bar = _progress_bar(len(names)) if progress else None
    fits, rows = {}, {}
    for name in names:
        fit, messages, seconds, error = _one_fit(res.model, _fit_arguments(res, name))
        fits[name] = fit if fit is not None else error
        rows[name] = _row(res, fit, messages, seconds, error)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "optimizer"
    best = table["neg2ll"].min()
    table.insert(1, "d_neg2ll", table["neg2ll"] - best)
    return AllFitResults(fits, table, _parameter_columns(res))


def _progress_bar(total):
    try:
        from tqdm import tqdm
    except ImportError:
        warnings.warn("progress=True needs tqdm; continuing without a progress bar",
                      stacklevel=4)
        return None
    return tqdm(total=total)


def _parameter_columns(res):
    return (list(res.theta.index) + list(res.model.fe_names)
            + _dispersion_names(res.model))


class AllFitResults:
    """The fits of :meth:`AllFitMixin.allfit`, one per optimizer.

    Attributes
    ----------
    fits : dict
        {optimizer: results}, or the error message where the fit failed.
    table : pandas.DataFrame
        One row per optimizer: ``neg2ll`` (−2 log-likelihood), ``d_neg2ll``
        (its excess over the best), ``converged``, ``nfev`` (evaluations over
        both stages), ``time`` (seconds), ``warnings`` (tuple of
        ``"Category: message"``), ``error``, then θ, β and the dispersion.
    parameters : list of str
        The parameter columns of ``table``.
    """

    def __init__(self, fits, table, parameters):
        self.fits = fits
        self.table = table
        self.parameters = parameters

    def __repr__(self):
        cols = ["neg2ll", "d_neg2ll", "converged", "nfev", "time"]
        return f"AllFitResults\n{self.table[cols].to_string()}"

    @property
    def ok(self):
        """The optimizers that converged without an error."""
        table = self.table
        return list(table.index[table["converged"].astype(bool) & table["error"].isna()])

    def spread(self, only_ok=True):
        """Per parameter (and −2ℓ): min, max, range and range relative to the
        largest absolute value, over the optimizers (the converged ones only
        unless ``only_ok=False``).

        Returns
        -------
        pandas.DataFrame
        """
        table = self.table.loc[self.ok] if only_ok else self.table
        values = table[["neg2ll"] + self.parameters].astype(float)
        low, high = values.min(), values.max()
        scale = np.maximum(values.abs().max(), np.finfo(float).tiny)
        return pd.DataFrame({"min": low, "max": high, "range": high - low,
                             "rel_range": (high - low) / scale})

    def summary(self):
        """lme4's ``summary(allFit(m))``: per optimizer −2ℓ, its excess over the
        best, evaluations, time, convergence and the number of warnings; then the
        spread of every estimate over the optimizers that converged.

        Returns
        -------
        AllFitSummary
            Printable; its ``fits`` and ``spread`` are DataFrames.
        """
        table = self.table
        fits = pd.DataFrame({
            "-2logLik": table["neg2ll"], "excess": table["d_neg2ll"],
            "nfev": table["nfev"], "seconds": table["time"],
            "converged": table["converged"], "warnings": table["warnings"].map(len)})
        notes = [f"{name}: {message}" for name, row in table.iterrows()
                 for message in (row["warnings"] + ((row["error"],) if row["error"] else ()))]
        return AllFitSummary(fits, self.spread(), notes)


class AllFitSummary:
    """The printable summary of :class:`AllFitResults` (``fits``, ``spread``, ``notes``)."""

    def __init__(self, fits, spread, notes):
        self.fits, self.spread, self.notes = fits, spread, notes

    def __str__(self):
        fits = self.fits.to_string(formatters={
            "-2logLik": "{:.6f}".format, "excess": "{:.2e}".format,
            "nfev": lambda v: "" if np.isnan(v) else f"{int(v)}",
            "seconds": "{:.2f}".format})
        spread = self.spread.to_string(float_format="{:.7g}".format)
        width = max(len(line) for line in (fits + "\n" + spread).splitlines())
        parts = ["Fits by optimizer, from the same start", "=" * width, fits, "-" * width,
                 "Spread of the estimates over the converged optimizers", "=" * width,
                 spread, "=" * width]
        if self.notes:
            parts += ["Warnings and errors:"] + self.notes
        return "\n".join(parts)

    def __repr__(self):
        return str(self)


class AllFitMixin:
    """lme4's ``allFit`` for :class:`results.GLMMResults`."""

    def allfit(self, optimizers=None, progress=False):
        """Refit with each optimizer from the same start and compare (lme4's
        ``allFit``).

        Parameters
        ----------
        optimizers : str or list of str, optional
            Default every optimizer of :data:`optimizer_choice.OPTIMIZERS`
            (``"bobyqa"``, ``"nelder_mead"``, ``"sbplx"``, ``"lbfgsb"``,
            ``"trust_constr"``).
        progress : bool
            Show a progress bar (needs ``tqdm``).

        Returns
        -------
        AllFitResults
            ``table`` (one row per optimizer), ``fits``, ``spread()`` and
            ``summary()``.
        """
        return allfit(self, optimizers=optimizers, progress=progress)
