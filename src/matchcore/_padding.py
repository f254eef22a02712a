"""Padding bytes of structured record arrays.

The sink dtypes (``TOB_DTYPE``, ``TRADE_DTYPE``, ``L2_DTYPE``) mirror C structs, so they carry
padding bytes that no field covers. The replay loops write them as zero, but numpy's own copies
of such arrays (``np.concatenate``, fancy indexing, ``copy()``) copy field by field and leave
the padding of the new array uninitialised: heap garbage that made two merges of the same
records save different ``.npy`` bytes. Whoever builds sink arrays with numpy calls
:func:`zero_padding` on the result.
"""
from __future__ import annotations

import numpy as np

_UNCOVERED: dict = {}


def _uncovered(dt: np.dtype) -> np.ndarray | None:
    # byte columns of one record that no field covers (None: every byte is a field's)
    try:
        return _UNCOVERED[dt]
    except KeyError:
        pass
    covered = np.zeros(dt.itemsize, dtype=bool)
    for name in dt.names:
        field, offset = dt.fields[name][:2]
        covered[offset:offset + field.itemsize] = True
    cols = None if covered.all() else np.flatnonzero(~covered)
    _UNCOVERED[dt] = cols
    return cols


def zero_padding(a: np.ndarray) -> np.ndarray:
    """Set the padding bytes of a structured array's records to zero, in place, and return it
    (fields are not touched). A non-contiguous or read-only array is copied first. O(records).

    >>> dt = np.dtype([("a", "i8"), ("b", "u2")], align=True)
    >>> x = zero_padding(np.concatenate([np.zeros(2, dt)]))
    >>> x.tobytes() == bytes(2 * dt.itemsize)
    True
    """
    if a.dtype.names is None or a.size == 0:
        return a
    cols = _uncovered(a.dtype)
    if cols is None:
        return a
    if not (a.flags.c_contiguous and a.flags.writeable):
        a = np.ascontiguousarray(a).copy()
    raw = a.reshape(-1).view(np.uint8).reshape(a.size, a.dtype.itemsize)
    raw[:, cols] = 0
    return a
