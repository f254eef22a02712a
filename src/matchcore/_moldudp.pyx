# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled scans over 2-byte-length framed message streams (ITCH files, MoldUDP64 blocks).

Python calls these once per file or once per packet; the per-message walk stays in C.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memset
cimport numpy as cnp
import numpy as np

from matchcore.itch._decode cimport itch_scan, itch_next, ITCH_BAD_ZERO

cnp.import_array()

# Status codes of frame_offsets().
cdef enum:
    _OK = 0
    _TRUNCATED = 1      # the last message is cut short (its bytes are not covered)
    _ZERO_LENGTH = 2    # a 0x0000 length prefix: the stream cannot be framed past it

FRAMES_OK = _OK
FRAMES_TRUNCATED = _TRUNCATED
FRAMES_ZERO_LENGTH = _ZERO_LENGTH


cdef inline int64_t _u16be(const uint8_t* p) noexcept nogil:
    return (<int64_t>p[0] << 8) | p[1]


def frame_offsets(const uint8_t[::1] buf):
    """Offsets of every complete length-prefixed block in ``buf``.

    Returns ``(offsets, status, stop)``: ``offsets`` is an int64 array of n+1 entries, block i
    spanning ``buf[offsets[i]:offsets[i+1]]`` (its 2-byte prefix included); ``status`` is
    FRAMES_OK (the blocks cover ``buf`` exactly), FRAMES_TRUNCATED (the bytes from ``stop`` on are
    an incomplete block) or FRAMES_ZERO_LENGTH (a zero prefix at offset ``stop``). O(n), two
    passes (count, then fill) without the GIL, no Python object per block: a buffer another
    thread writes into meanwhile raises BufferError.
    """
    cdef Py_ssize_t n = buf.shape[0]
    cdef const uint8_t* p = &buf[0] if n > 0 else NULL
    cdef Py_ssize_t pos = 0, count = 0, length
    cdef int status = _OK
    with nogil:
        while pos < n:
            if pos + 2 > n:
                status = _TRUNCATED
                break
            length = _u16be(p + pos)
            if length == 0:
                status = _ZERO_LENGTH
                break
            if pos + 2 + length > n:
                status = _TRUNCATED
                break
            pos += 2 + length
            count += 1
    cdef cnp.ndarray[int64_t] out = np.empty(count + 1, dtype=np.int64)
    cdef int64_t* o = <int64_t*>cnp.PyArray_DATA(out)
    cdef Py_ssize_t i, q = 0
    with nogil:
        for i in range(count):
            o[i] = q
            if q + 2 > n or q + 2 + _u16be(p + q) > n:
                q = -1          # fewer blocks than counted (the rest left unset): refused
                break
            q += 2 + _u16be(p + q)
        o[count] = q
    if q != pos:
        _raise_changed()
    return out, status, pos


cdef int _raise_changed() except -1:
    # Both passes run without the GIL: a thread writing into the buffer meanwhile (a socket's
    # recv_into, a reused read buffer) gave the second pass other lengths than the first had
    # counted, and it read past the buffer's end (frame_offsets) or wrote past the end of the
    # arrays sized by the count (frame_itch: the heap corrupted).
    raise BufferError("the buffer changed while it was being framed (another thread wrote "
                      "into it): frame a copy, or a buffer no thread writes to meanwhile")


cdef int64_t _frame_itch(itch_scan* s, const uint8_t* p, int64_t n, int64_t* starts,
                         int64_t* ends, int64_t cap, int64_t* zero) noexcept nogil:
    # the messages of p[:n] as the replay frames them; returns their count, s.base the tail;
    # with starts, -1 for more than the cap of messages (see _raise_changed)
    cdef int64_t pos = 0, f, count = 0
    cdef int32_t i
    while True:
        s.n_bad_kept = 0
        f = itch_next(s, p, &pos, n, 1)
        for i in range(s.n_bad_kept):
            if s.bad_kind[i] == ITCH_BAD_ZERO and zero[0] < 0:
                zero[0] = s.bad_offset[i]
        if f == 0:
            break
        if starts != NULL:
            if count == cap:
                return -1
            starts[count] = pos
            ends[count] = pos + 2 + f
        count += 1
        pos += 2 + f
    s.base = pos
    return count


def frame_itch(const uint8_t[::1] buf):
    """The messages of an ITCH stream framed as the replay frames it: a bad length prefix is
    counted and the stream resynchronised on the next plausible message, so the messages after
    damage are kept (:func:`frame_offsets` takes every prefix as it comes).

    Returns ``(offsets, ends, bytes_skipped, tail, zero)``: message i spans
    ``buf[offsets[i]:ends[i]]`` (its prefix included; ``offsets`` has one more entry, the end of
    the last message), ``bytes_skipped`` the bytes jumped over after bad prefixes, ``tail`` the
    bytes of an incomplete last message, ``zero`` the offset of the first zero length prefix
    (-1: none). O(n), two passes (count, then fill) without the GIL, no Python object per
    message: a buffer another thread writes into meanwhile raises BufferError.
    """
    cdef int64_t n = buf.shape[0], count, again = 0, zero = -1, base
    cdef uint64_t skipped
    cdef const uint8_t* p = &buf[0] if n > 0 else NULL
    cdef itch_scan s
    memset(&s, 0, sizeof(itch_scan))
    if n > 0:
        with nogil:
            count = _frame_itch(&s, p, n, NULL, NULL, 0, &zero)
    else:
        count = 0
    skipped, base = s.bytes_skipped, s.base
    cdef cnp.ndarray[int64_t] starts = np.empty(count + 1, dtype=np.int64)
    cdef cnp.ndarray[int64_t] ends = np.empty(count, dtype=np.int64)
    cdef int64_t* o = <int64_t*>cnp.PyArray_DATA(starts)
    cdef int64_t* e = <int64_t*>cnp.PyArray_DATA(ends)
    memset(&s, 0, sizeof(itch_scan))
    if n > 0:
        with nogil:
            again = _frame_itch(&s, p, n, o, e, count, &zero)
    if again != count or s.bytes_skipped != skipped or s.base != base:
        _raise_changed()
    o[count] = e[count - 1] if count else 0
    return starts, ends, int(s.bytes_skipped), int(n - s.base), int(zero)


def block_end(const uint8_t[::1] buf, Py_ssize_t start, Py_ssize_t count):
    """Offset just past ``count`` length-prefixed blocks starting at ``start``, or -1 when they
    do not fit in ``buf``. A zero prefix is an empty block (MoldUDP64 messages are 0 to 64 KB
    long). O(count)."""
    cdef Py_ssize_t n = buf.shape[0]
    cdef Py_ssize_t pos = start
    if start < 0 or start > n:
        return -1
    cdef const uint8_t* p = &buf[0] if n > 0 else NULL
    with nogil:
        pos = _block_end(p, n, start, count)
    return pos


cdef Py_ssize_t _block_end(const uint8_t* p, Py_ssize_t n, Py_ssize_t pos,
                           Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t k, length
    for k in range(count):
        if pos + 2 > n:
            return -1
        length = _u16be(p + pos)
        if pos + 2 + length > n:
            return -1
        pos += 2 + length
    return pos


def plan_packets(const int64_t[::1] offsets, int64_t max_bytes, int64_t max_messages,
                 const int64_t[::1] ends=None):
    """Greedy packing of consecutive blocks into packets of at most ``max_bytes`` payload and
    ``max_messages`` blocks. Returns an int64 array of block indices: packet k holds blocks
    ``[bounds[k], bounds[k+1])``. A block larger than ``max_bytes`` raises ValueError. O(n).
    ``ends`` (:func:`frame_itch`): block i ends there, and a packet never spans bytes between
    two blocks (skipped damage); without it block i ends where block i + 1 starts."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    cdef Py_ssize_t i = 0, j, k = 0, bad = -1
    cdef const int64_t* end = &ends[0] if ends is not None and ends.shape[0] > 0 else NULL
    if ends is not None and ends.shape[0] != n:
        raise ValueError("ends must hold one entry per block")
    if end == NULL:
        end = &offsets[1] if n > 0 else NULL
    if max_bytes <= 0 or max_messages <= 0:
        raise ValueError("max_bytes and max_messages must be > 0")
    cdef cnp.ndarray[int64_t] out = np.empty(max(n, 0) + 1, dtype=np.int64)
    cdef int64_t* o = <int64_t*>cnp.PyArray_DATA(out)
    with nogil:
        while i < n:
            if end[i] - offsets[i] > max_bytes:
                bad = i
                break
            o[k] = i
            k += 1
            j = i + 1
            while (j < n and j - i < max_messages and end[j] - offsets[i] <= max_bytes
                   and offsets[j] == end[j - 1]):
                j += 1
            i = j
        o[k] = i
    if bad >= 0:
        raise ValueError(f"message {bad} (offset {offsets[bad]}) is {end[bad] - offsets[bad]} "
                         f"bytes with its prefix; a packet holds at most {max_bytes}")
    return out[:k + 1].copy()
