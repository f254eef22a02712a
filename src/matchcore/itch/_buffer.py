"""The bytes of a buffer given to the ITCH decoder and replay loop, checked in one place so that
:func:`matchcore.itch.decode`, ``Replayer.feed`` and ``Replayer.finish`` accept and refuse the
same inputs with the same messages."""
from __future__ import annotations


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
    # (a memoryview of such an array keeps the array as its exporter, mv.obj)
    dtype = getattr(mv.obj, "dtype", None)
    if getattr(dtype, "hasobject", False):
        # its memory holds pointers to the objects: their addresses were read as the stream
        mv.release()
        raise TypeError(f"a bytes-like object is required, not a numpy array of Python objects "
                        f"(dtype {dtype}): its memory holds pointers to them, not their bytes; "
                        f"join the bytes first (b''.join(...))")
    if not mv.c_contiguous:
        raise ValueError("the buffer is not C-contiguous: its bytes are not one run (a strided "
                         "slice); pass a contiguous copy (bytes(buf) or "
                         "numpy.ascontiguousarray(buf))")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv
