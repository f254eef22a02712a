# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""ITCH 5.0 decoding of whole buffers into one numpy structured array per message type.

Two passes over the buffer in compiled code: the first frames and counts the messages, the
second decodes each one with its type's decoder straight into its slot of a preallocated array
(the numpy dtypes are laid out like the C structs, see layouts.py). No Python object is made per
message.
"""

from libc.stdint cimport int64_t, uint64_t, int32_t, uint8_t
from libc.string cimport memcmp, memset
cimport numpy as cnp
import numpy as np

from matchcore.itch._messages cimport itch_length, itch_struct_size, itch_decode_any
from matchcore._core cimport mc_bool_arg
from matchcore.itch.layouts import DTYPES as _DTYPES

cnp.import_array()

_BAD_KIND = {ITCH_BAD_ZERO: "zero length prefix",
             ITCH_BAD_MISMATCH: "length prefix does not match the message type",
             ITCH_BAD_UNKNOWN_INFER: "unknown message type: length cannot be inferred",
             ITCH_BAD_NOT_A_TYPE: "type byte is not a letter",
             ITCH_BAD_UNKNOWN_LOST: "unknown message type whose length leads to no message"}


cdef object itch_scan_report(const itch_scan* s):
    """The framing counters as plain Python values (called once per report, not per message)."""
    cdef int t
    counts = {}
    unknown = {}
    for t in range(256):
        if s.counts[t]:
            counts[chr(t)] = int(s.counts[t])
            if itch_length(<uint8_t>t) == 0:
                unknown[chr(t)] = int(s.counts[t])
    return {
        "messages": int(s.messages),
        "counts": counts,
        "unknown_types": unknown,
        "bad_lengths": int(s.bad_lengths),
        "bad_length_offsets": [(int(s.bad_offset[i]), _BAD_KIND[s.bad_kind[i]])
                               for i in range(s.n_bad_kept)],
        "bytes_skipped": int(s.bytes_skipped),
    }


def struct_sizes():
    """{type: sizeof(C struct)} for every ITCH type (the dtypes must have the same itemsize)."""
    return {t: int(itch_struct_size(ord(t))) for t in _DTYPES}


cdef int64_t _walk(itch_scan* s, const uint8_t* buf, int64_t n, char** outs,
                   char* const* ends, const int64_t* size, int final) noexcept nogil:
    # With outs: each message is decoded into its type's array, which ends at ends[t]; -1 when
    # a message does not fit there or in the buffer (the buffer is not what the counting pass
    # read: see decode_chunk)
    cdef int64_t pos = 0, f
    cdef uint8_t t
    while True:
        f = itch_next(s, buf, &pos, n, final)
        if f == 0:
            break
        t = buf[pos + 2]
        s.messages += 1
        s.counts[t] += 1
        if outs != NULL and size[t] != 0:
            if size[t] > ends[t] - outs[t] or itch_length(t) > n - pos - 2:
                return -1
            itch_decode_any(t, buf + pos + 2, outs[t])
            outs[t] += size[t]
        pos += 2 + f
    return pos


def decode_chunk(const uint8_t[::1] buf not None, infer_lengths=False, int64_t base=0,
                 resync=False, final=True):
    """Decode every complete message of ``buf``.

    ``resync``: the previous chunk ended while searching for the next frame after a bad prefix
    (its ``report["resync"]``); ``final``: no bytes follow ``buf`` (a resync candidate right
    before the end is then accepted). Returns ``(arrays, report, consumed)``: ``arrays`` maps each type present to its numpy
    structured array (dtype ``layouts.DTYPES[type]``), ``report`` holds the framing counters
    (bad prefix offsets are absolute: ``base`` + position in ``buf``), ``consumed`` is the
    number of bytes of complete messages (the rest is an incomplete tail). O(len(buf)).
    """
    cdef bint c_infer = mc_bool_arg(infer_lengths, "infer_lengths")
    cdef bint c_resync = mc_bool_arg(resync, "resync")
    cdef bint c_final = mc_bool_arg(final, "final")
    cdef int64_t n = buf.shape[0]
    cdef const uint8_t* p = &buf[0] if n > 0 else NULL
    cdef itch_scan s1, s2
    memset(&s1, 0, sizeof(itch_scan))
    memset(&s2, 0, sizeof(itch_scan))
    s1.infer = s2.infer = c_infer
    s1.resync = s2.resync = c_resync
    s1.base = s2.base = base
    cdef int64_t consumed = 0, again = 0
    if n > 0:
        with nogil:
            consumed = _walk(&s1, p, n, NULL, NULL, NULL, c_final)
    cdef char* outs[256]
    cdef char* ends[256]
    cdef int64_t size[256]
    cdef int t
    cdef cnp.ndarray arr
    arrays = {}
    for t in range(256):
        outs[t] = NULL
        ends[t] = NULL
        size[t] = 0
        if s1.counts[t] and itch_length(<uint8_t>t) != 0:
            # zeroed: the decoders write the fields, not the padding between them (heap
            # garbage there made two decodes of one stream save different bytes)
            arr = np.zeros(s1.counts[t], dtype=_DTYPES[chr(t)])
            arrays[chr(t)] = arr
            outs[t] = <char*>cnp.PyArray_DATA(arr)
            size[t] = <int64_t>itch_struct_size(<uint8_t>t)
            ends[t] = outs[t] + s1.counts[t] * size[t]
            if size[t] != arr.dtype.itemsize:
                raise AssertionError(f"ITCH {chr(t)!r}: C struct {size[t]} bytes, "
                                     f"numpy dtype {arr.dtype.itemsize}")
    if arrays:
        with nogil:
            again = _walk(&s2, p, n, outs, ends, size, c_final)
        # Both passes run without the GIL: a thread writing into the buffer meanwhile (a
        # socket's recv_into, a reused read buffer) made the decoding pass find more messages
        # of a type than the counting pass had sized its array for, and they were written past
        # the array's end (the heap corrupted, the process aborted).
        if again != consumed or s2.messages != s1.messages or memcmp(
                s1.counts, s2.counts, sizeof(s1.counts)) != 0:
            raise BufferError("the buffer changed while it was being decoded (another thread "
                              "wrote into it): decode a copy, or a buffer no thread writes to "
                              "meanwhile")
    report = itch_scan_report(&s1)
    report["resync"] = bool(s1.resync)
    return arrays, report, int(consumed)
