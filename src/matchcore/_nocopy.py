"""The one refusal for objects that cannot be pickled or copied (``copy.copy``,
``copy.deepcopy``, ``pickle``): they hold live resources (sockets, open files, threads, a
journal directory's lock, C decoder state) that a copy cannot hold too. Instead of Cython's
"no default __reduce__" or a half-working shallow copy sharing a socket or a file, the copy
raises a TypeError that names the class, says why and what to do instead.
"""


def refuse_copy(name: str, why: str, instead: str):
    """Raise the TypeError for pickling or copying an object of class ``name``."""
    raise TypeError(f"cannot pickle or copy a {name}: {why}. {instead}")


class NoCopy:
    """Mixin for pure-Python classes: ``_no_copy = (why, instead)`` on the class.

    ``__reduce_ex__`` is what pickle, ``copy.copy`` and ``copy.deepcopy`` end in when a class
    defines no ``__copy__`` / ``__deepcopy__``; those two are defined as well because
    ``copy.deepcopy`` looks ``__deepcopy__`` up on the instance, where a ``__getattr__`` that
    forwards to a wrapped object (``native.Recorder`` and its book) would find the wrapped
    object's and copy that instead.
    """

    __slots__ = ()
    _no_copy = ("it holds live resources", "Make a new one in the other process instead.")

    def _refuse_copy(self):
        cls = type(self)
        refuse_copy(f"{cls.__module__}.{cls.__qualname__}", *cls._no_copy)

    def __reduce_ex__(self, protocol):
        self._refuse_copy()

    def __copy__(self):
        self._refuse_copy()

    def __deepcopy__(self, memo):
        self._refuse_copy()
