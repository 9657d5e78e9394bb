"""patsy's design descriptions carried to Dask workers.

patsy refuses to pickle its ``DesignInfo``, factors and evaluation
environments (``__getstate__ = no_pickling``), but a partition task on a
worker process needs the design learned on the driver (levels, the state of
``scale()``/``poly()``) to evaluate its rows. :class:`Portable` wraps any value
holding such objects and pickles it with a private pickler that stores those
objects by their ``__dict__``; patsy's own classes and every other pickler are
left untouched.
"""

import io
import pickle
import uuid

__all__ = ["Portable"]


def _rebuild(cls, state):
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


def _pickler_class():
    # cloudpickle (a dask dependency) pickles the functions of the formula's
    # namespace by value when they are not importable (a user's lambda)
    import cloudpickle

    class _Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj):
            cls = type(obj)
            # patsy's classes refuse pickling (no_pickling, or Origin's own
            # __getstate__); they are plain objects, rebuilt from __dict__
            if (getattr(cls, "__module__", "").startswith("patsy.")
                    and not isinstance(obj, type) and hasattr(obj, "__dict__")):
                return _rebuild, (cls, obj.__dict__)
            return super().reducer_override(obj)

    return _Pickler


def _load(data, token):
    out = Portable(pickle.loads(data))
    out._token = token
    return out


class Portable:
    """A value (usually a dict) that may hold patsy objects, picklable.

    Parameters
    ----------
    value : object
        Available as ``.value``.
    """

    def __init__(self, value):
        self.value = value
        self._token = uuid.uuid4().hex

    def __dask_tokenize__(self):
        # one name in the task graph however often the tasks refer to it
        return self._token

    def __reduce__(self):
        buffer = io.BytesIO()
        _pickler_class()(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(self.value)
        return _load, (buffer.getvalue(), self._token)
