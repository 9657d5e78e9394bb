"""BLAS threads during a fit.

Dense blocks below ~1000 rows are factored faster by single-threaded BLAS
(thread synchronisation costs more than it saves: 2.2x on a 500 x 100 crossed
Poisson), so a fit of such a model limits BLAS to one thread while it runs.
"""

import contextlib
import threading

from threadpoolctl import ThreadpoolController

__all__ = ["blas_limits", "SMALL_DENSE"]

SMALL_DENSE = 1000
_CONTROLLER = None
_LOCK = threading.Lock()
_STATE = {"active": 0, "limiter": None}


@contextlib.contextmanager
def blas_limits(threads):
    """Limit BLAS threads for the duration of a fit (``None``: leave them alone).

    Fits may run in several threads at once: the first one to enter saves the
    process setting and the last one to leave restores it, so concurrent fits
    never leave the process with another thread count than it had.
    """
    global _CONTROLLER
    if threads is None:
        yield
        return
    with _LOCK:
        if _CONTROLLER is None:
            _CONTROLLER = ThreadpoolController()
        if _STATE["active"] == 0:
            _STATE["limiter"] = _CONTROLLER.limit(limits=threads, user_api="blas")
        _STATE["active"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["active"] -= 1
            if _STATE["active"] == 0:
                _STATE["limiter"].restore_original_limits()
                _STATE["limiter"] = None
