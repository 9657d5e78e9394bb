"""Where the partitions live and how a round reaches them.

An executor holds one :class:`kernels.PartitionState` per partition and runs a
kernel method on all of them: one *round*. It counts rounds (a fit's
``mle_retvals`` reports them), and that is all the driver knows of placement:

- :class:`LocalExecutor`: the partitions in this process, run one after the
  other or on a thread pool (numpy releases the GIL in its O(n) passes);
- :class:`DaskExecutor`: the partitions persisted on the workers of a
  ``dask.distributed`` client; a round is one ``submit`` per partition, pinned
  to the worker that holds the partition's state, and one ``gather``. Only
  (θ, β) and the central step travel; the rows never leave the workers.
"""

from concurrent.futures import ThreadPoolExecutor

from .. import compiled
from .kernels import PartitionState, call

__all__ = ["LocalExecutor", "DaskExecutor", "make_executor"]


class _Executor:
    def _init_central(self, design):
        self.n_partitions = len(self.states)
        self.n_central_re = sum(design.terms[j].n_re for j in design.central_terms)
        self.rounds = 0


class LocalExecutor(_Executor):
    """Partitions held in this process.

    Parameters
    ----------
    parts : list of data.PartitionData
    design : data.PartitionedDesign
    n_jobs : int
        Threads running the partitions of a round (1: one after the other).
    """

    def __init__(self, parts, design, n_jobs=1):
        self.states = [PartitionState(part, design) for part in parts]
        self.n_jobs = int(n_jobs)
        # the partitions side by side, each with single-threaded kernels
        self._pool = (ThreadPoolExecutor(self.n_jobs, initializer=compiled.limit_threads,
                                         initargs=(1,)) if self.n_jobs > 1 else None)
        self._init_central(design)

    def map(self, method, *args):
        """``state.method(*args)`` on every partition (one round), in order."""
        self.rounds += 1
        if self._pool is None:
            return [call(state, method, *args) for state in self.states]
        return list(self._pool.map(lambda state: call(state, method, *args), self.states))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pool"] = None
        return state


class DaskExecutor(_Executor):
    """Partitions persisted on the workers of a ``dask.distributed`` client.

    Parameters
    ----------
    parts : list of dask.delayed or data.PartitionData
    design : data.PartitionedDesign
    client : distributed.Client
    """

    def __init__(self, parts, design, client):
        import dask

        self.client = client
        build = dask.delayed(PartitionState, pure=True)
        self.states = client.compute([build(part, design) for part in parts])
        client.wait_for_workers(1)
        self._where = None
        self._init_central(design)

    def _workers(self):
        """The worker holding each partition's state (asked once, after it exists)."""
        if self._where is None:
            from distributed import wait

            wait(self.states)
            who = self.client.who_has(self.states)
            self._where = [sorted(who[f.key])[:1] or None for f in self.states]
        return self._where

    def map(self, method, *args):
        """One round: a task per partition on the worker that holds it."""
        self.rounds += 1
        futures = [self.client.submit(_call_on_worker, state, method, *args, pure=False,
                                      workers=where, allow_other_workers=False)
                   for state, where in zip(self.states, self._workers())]
        return self.client.gather(futures)


def _call_on_worker(state, method, *args):
    """:func:`kernels.call` on a Dask worker, its compiled kernels single-threaded."""
    compiled.limit_threads(1)
    return call(state, method, *args)


def make_executor(parts, design, client=None, n_jobs=1):
    """A :class:`DaskExecutor` when a client is given (or ``parts`` are dask
    objects and a client is running), else a :class:`LocalExecutor` (dask objects
    computed here with dask's default scheduler)."""
    if client is None and parts and _is_dask(parts[0]):
        client = running_client()
        if client is None:
            import dask

            parts = list(dask.compute(*parts))
    if client is not None:
        return DaskExecutor(parts, design, client)
    return LocalExecutor(parts, design, n_jobs=n_jobs)


def _is_dask(obj):
    return type(obj).__module__.startswith(("dask", "distributed"))


def running_client():
    """The running ``dask.distributed`` client, or None."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None
