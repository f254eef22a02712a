"""The bytes of a buffer given to the ITCH decoder and replay loop, checked in one place so that
:func:`matchcore.itch.decode`, ``Replayer.feed`` and ``Replayer.finish`` accept and refuse the
same inputs with the same messages."""
from __future__ import annotations


def byte_view(buf) -> memoryview:
    """``buf``'s bytes as a 1-D unsigned-byte memoryview, without a copy: any C-contiguous
    bytes-like object (``bytes``, ``bytearray``, ``memoryview``, ``mmap``, a numpy array of any
    dtype and shape, read as its bytes in memory order). Raises ``TypeError`` for an object
    without the buffer protocol and ``ValueError`` for a non-contiguous one (a strided slice:
    its bytes are not one run). O(1).

    >>> byte_view(bytearray(b"ab")).tolist()
    [97, 98]
    """
    try:
        mv = memoryview(buf)
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not {type(buf).__name__!r}") from None
    if not mv.c_contiguous:
        raise ValueError("the buffer is not C-contiguous: its bytes are not one run (a strided "
                         "slice); pass a contiguous copy (bytes(buf) or "
                         "numpy.ascontiguousarray(buf))")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv
