"""The bytes of a buffer given to the ITCH decoder and replay loop, checked in one place so that
:func:`matchcore.itch.decode`, ``Replayer.feed`` and ``Replayer.finish`` accept and refuse the
same inputs with the same messages."""
from __future__ import annotations


_STRIDED = ("the buffer is not C-contiguous: its bytes are not one run (a strided slice); pass a "
            "contiguous copy (bytes(buf) or numpy.ascontiguousarray(buf))")


def byte_view(buf) -> memoryview:
    """``buf``'s bytes as a 1-D unsigned-byte memoryview, without a copy: any C-contiguous
    bytes-like object (``bytes``, ``bytearray``, ``memoryview``, ``mmap``, a numpy array of any
    dtype and shape, read as its bytes in memory order). Raises ``TypeError`` for an object
    without the buffer protocol or a numpy array of Python objects (``dtype=object``, whose
    memory holds pointers) and ``ValueError`` for a non-contiguous one (a strided slice: its
    bytes are not one run). O(1).

    >>> byte_view(bytearray(b"ab")).tolist()
    [97, 98]
    """
    try:
        mv = memoryview(buf)
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not {type(buf).__name__!r}") from None
    except ValueError:
        # numpy exports no buffer for datetime64 / timedelta64 arrays ("cannot include dtype
        # 'M' in a buffer"), which are bytes in memory like any other dtype
        mv = _numpy_bytes(buf)
        if mv is None:
            raise
    # (a memoryview of such an array keeps the array as its exporter, mv.obj)
    dtype = getattr(mv.obj, "dtype", None)
    if getattr(dtype, "hasobject", False):
        mv.release()
        _refuse_objects(dtype)
    if not mv.c_contiguous:
        raise ValueError(_STRIDED)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def _numpy_bytes(buf) -> memoryview | None:
    # the bytes of a numpy array whose dtype has no buffer format; None for anything else
    import numpy as np

    if not isinstance(buf, np.ndarray):
        return None
    if buf.dtype.hasobject:
        _refuse_objects(buf.dtype)
    if not buf.flags.c_contiguous:
        raise ValueError(_STRIDED)
    return memoryview(buf.reshape(-1).view(np.uint8))


def _refuse_objects(dtype) -> None:
    # the memory of an array of Python objects holds pointers to them: their addresses were
    # read as the stream
    raise TypeError(f"a bytes-like object is required, not a numpy array of Python objects "
                    f"(dtype {dtype}): its memory holds pointers to them, not their bytes; "
                    f"join the bytes first (b''.join(...))")
