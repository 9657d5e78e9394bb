"""Feedback on long work: progress bars, a trace of the optimizer and callbacks.

- :func:`progress_bar`: a tqdm bar, or a silent stand-in when feedback is off;
- :func:`run_tasks`: a loop over independent tasks (refits), in worker processes
  when ``n_jobs > 1``, that advances a bar as each task finishes;
- :class:`FitMonitor`: the observer of the deviance evaluations of a fit
  (``GLMM.fit(verbose=..., callback=..., progress=...)``). It is attached to each
  :class:`devfun.DevianceFunction` the fit creates, so the optimizer, its stopping
  rules and the numbers it produces are untouched: without an observer an
  evaluation does exactly what it did before.
"""

from concurrent.futures import ProcessPoolExecutor, as_completed
import contextlib
import numbers
import sys

import numpy as np
from tqdm import tqdm

__all__ = ["progress_bar", "run_tasks", "FitMonitor", "make_monitor", "feedback",
           "check_n_jobs", "check_progress"]

# a fit's counter appears only once the fit has run this long (seconds): short fits
# stay silent
FIT_DELAY = 2.0


class _NoBar:
    """What :func:`progress_bar` returns when feedback is off."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, text, refresh=True):
        pass

    def write(self, text):
        print(text, file=sys.stdout)

    def close(self):
        pass


def progress_bar(total=None, enabled=True, desc=None, unit="it", delay=0.0):
    """A tqdm progress bar (``total=None``: a counter), or a silent stand-in.

    Parameters
    ----------
    total : int, optional
    enabled : bool
        False returns an object with the same methods that shows nothing.
    desc, unit : str, optional
        tqdm's label and unit.
    delay : float
        Seconds before the bar is first shown (tqdm's ``delay``).
    """
    if not enabled:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit, delay=delay, dynamic_ncols=True)


def check_progress(progress):
    """``progress`` must be True or False (or 1, 0); an error names the argument."""
    if not isinstance(progress, (bool, np.bool_)) and not (
            isinstance(progress, numbers.Integral) and progress in (0, 1)):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    return bool(progress)


def check_n_jobs(n_jobs):
    """``n_jobs`` as a positive int; -1 means one worker per CPU."""
    if isinstance(n_jobs, numbers.Integral) and not isinstance(n_jobs, (bool, np.bool_)):
        if n_jobs == -1:
            import os

            return max(1, os.cpu_count() or 1)
        if n_jobs >= 1:
            return int(n_jobs)
    raise ValueError(f"n_jobs must be a positive integer or -1 (all CPUs), got {n_jobs!r}")


# -- independent tasks, in worker processes ---------------------------------------------------
_SHARED = None


def _set_shared(shared):
    global _SHARED
    _SHARED = shared


def _run_shared(func, task):
    return func(_SHARED, task)


def run_tasks(func, shared, tasks, n_jobs=1, bar=None):
    """``[func(shared, task) for task in tasks]``, in ``n_jobs`` worker processes.

    ``shared`` (a fitted result, say) reaches each worker once, when it starts; the
    tasks are small (indices, seeds). Results come back in the order of ``tasks``
    whatever the order in which the workers finish; ``bar`` (see
    :func:`progress_bar`) advances by one as each task finishes.
    """
    bar = _NoBar() if bar is None else bar
    tasks = list(tasks)
    if n_jobs <= 1 or len(tasks) <= 1:
        out = []
        for task in tasks:
            out.append(func(shared, task))
            bar.update(1)
        return out
    out = [None] * len(tasks)
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(tasks)), initializer=_set_shared,
                             initargs=(shared,)) as pool:
        futures = {pool.submit(_run_shared, func, task): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            out[futures[future]] = future.result()
            bar.update(1)
    return out


# -- the deviance evaluations of a fit ------------------------------------------------------------
class FitMonitor:
    """Observer of a fit's deviance evaluations.

    Parameters
    ----------
    verbose : int
        Print every ``verbose``-th evaluation of each stage (and its first): the
        stage, the evaluation number, −2ℓ and the packed parameters (θ, packed
        dispersion, β; (θ, dispersion) in the nAGQ=0 stage). 0: nothing.
    callback : callable, optional
        ``callback(stage, nfev, params, value)`` after each evaluation, with
        ``stage`` one of ``"stage1"`` (the nAGQ=0 stage), ``"stage2"`` (the final
        stage), ``"derivatives"`` (the finite-difference Hessian or gradient) and
        ``"lmm"`` (the linear mixed model's profiled criterion over θ), ``nfev``
        the evaluation's number within its stage, ``params`` a copy of the packed
        parameters and ``value`` −2ℓ.
    progress : bool
        A tqdm counter of the evaluations with the current stage and −2ℓ, shown
        once the fit has run for :data:`FIT_DELAY` seconds.
    """

    def __init__(self, verbose=0, callback=None, progress=False):
        self.every = int(verbose)
        self.callback = callback
        self.progress = bool(progress)
        self.bar = None
        self.nfev = 0
        # a partitioned fit sets this to its executor's round counter, shown beside
        # the evaluations (round trips are what a fit on a cluster waits for)
        self.rounds = None

    def stage(self, name):
        """The observer of one stage's deviance function: ``observer(nfev, params,
        value)``, as :class:`devfun.DevianceFunction` calls it."""

        def observe(nfev, params, value):
            self.notify(name, nfev, params, value)

        return observe

    def notify(self, stage, nfev, params, value):
        """One evaluation: print, call back, count."""
        self.nfev += 1
        if self.progress:
            if self.bar is None:
                self.bar = progress_bar(None, True, desc="fit", unit="eval", delay=FIT_DELAY)
            self.bar.update(1)
            rounds = "" if self.rounds is None else f" rounds={self.rounds()}"
            self.bar.set_postfix_str(f"{stage} -2logL={value:.6f}{rounds}", refresh=False)
        if self.every and (nfev == 1 or nfev % self.every == 0):
            values = np.array2string(np.asarray(params, dtype=float), precision=6,
                                     max_line_width=10_000, separator=", ")
            rounds = "" if self.rounds is None else f"  rounds = {self.rounds()}"
            line = (f"{stage:<11} {nfev:>5}  -2logL = {value:.8f}{rounds}  "
                    f"params = {values}")
            (self.bar if self.bar is not None else _NoBar()).write(line)
        if self.callback is not None:
            self.callback(stage, nfev, np.array(params, dtype=float, copy=True), float(value))

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def feedback(monitor):
    """Context that closes ``monitor``'s bar at the end of a fit (nothing for None)."""
    return contextlib.nullcontext() if monitor is None else monitor


def make_monitor(verbose=0, callback=None, progress=False):
    """Validated fit feedback options as a :class:`FitMonitor`, or None when all are
    off (so that a default fit evaluates exactly as without this module)."""
    if isinstance(verbose, (bool, np.bool_)):
        verbose = int(verbose)
    if not isinstance(verbose, numbers.Integral) or verbose < 0:
        raise ValueError(f"verbose must be True, False or a non-negative integer (print "
                         f"every verbose-th evaluation), got {verbose!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(stage, nfev, params, value), "
                        f"got {type(callback).__name__}")
    progress = check_progress(progress)
    if not verbose and callback is None and not progress:
        return None
    return FitMonitor(int(verbose), callback, progress)
