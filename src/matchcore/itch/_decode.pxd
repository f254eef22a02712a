# cython: language_level=3
# ITCH 5.0 framing shared by the decoder (_decode.pyx) and the replay loop (_replay.pyx): the
# length-prefix check, resynchronisation after a bad prefix, and the counters both report.
# Everything here is inline C (the asyncpg frb.pxd pattern): no call overhead per message.

from libc.stdint cimport int64_t, uint64_t, int32_t, uint8_t, uint16_t
from matchcore.itch._messages cimport itch_length, mc_be16, mc_be48

cdef enum:
    ITCH_MAX_BAD = 64           # bad-prefix offsets kept (all are counted)
    ITCH_BAD_ZERO = 1           # a zero length prefix
    ITCH_BAD_MISMATCH = 2       # the prefix disagrees with the length of a known type
    ITCH_BAD_UNKNOWN_INFER = 3  # infer_lengths, but the type byte is not an ITCH type
    ITCH_BAD_NOT_A_TYPE = 4     # the type byte is no letter: no ITCH message type, known or not
    ITCH_BAD_UNKNOWN_LOST = 5   # an unknown type whose length does not lead to a message
    ITCH_UNKNOWN_RUN_OK = 16    # unknown-type frames in a row taken as a run of a new type

# Counters of the framing layer. `base` is the absolute stream offset of the current buffer.
cdef struct itch_scan:
    int64_t base
    uint64_t messages
    uint64_t counts[256]
    uint64_t bad_lengths
    uint64_t bytes_skipped
    int64_t bad_offset[ITCH_MAX_BAD]
    uint8_t bad_kind[ITCH_MAX_BAD]
    int32_t n_bad_kept
    uint8_t infer
    uint8_t resync              # searching for the next frame after a bad prefix


cdef inline bint itch_letter(uint8_t c) noexcept nogil:
    # every ITCH message type, present or future, is one alphabetic character
    return (c | 0x20) >= 97 and (c | 0x20) <= 122


cdef inline int itch_unknown_ok(const uint8_t* buf, int64_t p, int64_t L, int64_t end,
                                int final) noexcept nogil:
    """The frame at p has an unknown (letter) type and body length L: 1 when its length leads
    to a message (a plausible frame of a known type, directly or after other unknown-type
    frames), to ITCH_UNKNOWN_RUN_OK well-formed unknown-type frames in a row (a run of a new
    message type: bytes out of step make one about one time in nine, so that many in a row
    are no accident), or to the end of the data when ``final``; -1 when it leads elsewhere,
    past the end of the data included (two bytes read out of step, e.g. after a message cut
    short, look like a prefix and an unknown type nine times in ten, and their "length" jumped
    over up to 64 KiB of good messages); 0 when more bytes are needed to tell. Only the
    headers are read."""
    cdef int64_t nxt = p + 2 + L, pre
    cdef int run = 0
    cdef uint8_t t
    while True:
        if nxt > end:
            # an unknown-type frame of the run runs past the end of the data
            return -1 if final else 0
        if nxt + 3 > end:
            return 1 if final else 0
        if itch_plausible(buf + nxt, 0):
            return 1
        pre = mc_be16(buf + nxt)
        t = buf[nxt + 2]
        if pre == 0 or itch_length(t) != 0 or not itch_letter(t):
            return -1
        run += 1
        if run >= ITCH_UNKNOWN_RUN_OK:
            return 1
        nxt += 2 + pre


cdef inline int64_t itch_frame(const uint8_t* p, int64_t avail, int infer, int final,
                               int* why) noexcept nogil:
    """Body length L > 0 of the frame at p (2-byte prefix, then L bytes), 0 when more bytes are
    needed to tell, or -1 for a bad prefix (its kind in why). A frame of an unknown type also
    needs its length to lead on (itch_unknown_ok; ``final``: nothing follows the data)."""
    if avail < 3:
        if final and avail == 2 and not infer and p[0] == 0 and p[1] == 0:
            # the data's last two bytes, a zero prefix: they open no message either
            why[0] = ITCH_BAD_ZERO
            return -1
        return 0
    cdef int n = itch_length(p[2])
    cdef int64_t pre = mc_be16(p)
    cdef int64_t L
    if infer:
        if n == 0:
            why[0] = ITCH_BAD_UNKNOWN_INFER
            return -1
        if pre != 0 and pre != n:
            why[0] = ITCH_BAD_MISMATCH
            return -1
        L = n
    else:
        if pre == 0:
            why[0] = ITCH_BAD_ZERO
            return -1
        if n != 0 and pre != n:
            why[0] = ITCH_BAD_MISMATCH
            return -1
        L = pre
        if n == 0:
            # an unknown type is skipped by its own length, when that length leads on: checked
            # here, off the path of the known types
            if not itch_letter(p[2]):
                why[0] = ITCH_BAD_NOT_A_TYPE
                return -1
            # (a length past the end of the data is itch_unknown_ok's to judge: more bytes
            # are needed, or, at the end, it leads to no message)
            n = itch_unknown_ok(p, 0, L, avail, final)
            if n < 0:
                why[0] = ITCH_BAD_UNKNOWN_LOST
                return -1
            return L if n > 0 else 0
    if avail < 2 + L:
        return 0
    return L


cdef inline void itch_note_bad(itch_scan* s, int64_t offset, int why) noexcept nogil:
    s.bad_lengths += 1
    if s.n_bad_kept < ITCH_MAX_BAD:
        s.bad_offset[s.n_bad_kept] = offset
        s.bad_kind[s.n_bad_kept] = <uint8_t>why
        s.n_bad_kept += 1


cdef inline bint itch_plausible(const uint8_t* p, int infer) noexcept nogil:
    """Whether the 3 bytes at p open a frame of a known type with that type's exact length."""
    cdef int n = itch_length(p[2])
    cdef int64_t pre = mc_be16(p)
    return n != 0 and (pre == n or (infer and pre == 0))


cdef inline int64_t itch_resync(const uint8_t* buf, int64_t q, int64_t end, int infer, int final,
                                int* decided) noexcept nogil:
    """Searching for the next frame after a bad prefix, from q on: the first position where a
    complete frame of a known type is followed by a plausible frame (itch_plausible), by
    unknown-type frames that lead on (itch_unknown_ok), or by the end of the data when
    ``final``. ``decided`` is 0 when the bytes run out before that can be
    told: the search resumes at the returned position once more bytes arrive, so a stream fed
    in pieces is framed exactly like the whole buffer. (Accepting a candidate whose follower is
    unknown or incomplete lets a fake frame inside the bad message swallow the stream.)"""
    cdef int64_t f, nxt
    cdef int why = 0
    decided[0] = 0
    while q + 3 <= end:
        if itch_plausible(buf + q, infer):
            f = itch_frame(buf + q, end - q, infer, final, &why)
            if f == 0:
                return q
            nxt = q + 2 + f
            if nxt + 3 > end:
                decided[0] = final
                return q
            if itch_plausible(buf + nxt, infer):
                decided[0] = 1
                return q
            if not infer and mc_be16(buf + nxt) != 0 and itch_length(buf[nxt + 2]) == 0 \
                    and itch_letter(buf[nxt + 2]):
                # followed by an unknown type: a candidate when that frame leads on
                f = itch_unknown_ok(buf, nxt, mc_be16(buf + nxt), end, final)
                if f >= 0:
                    decided[0] = <int>f
                    return q
        q += 1
    return q


cdef inline bint itch_may_open(const uint8_t* p, int64_t avail, int infer) noexcept nogil:
    """Whether the 1 or 2 bytes at p, the last of the data, can open a frame of a known type
    with that type's exact length (what a resynchronisation looks for, itch_plausible)."""
    cdef int t
    if p[0] != 0:
        return False
    if avail < 2 or (infer and p[1] == 0):
        return True
    if p[1] == 0:
        return False
    for t in range(65, 123):
        if itch_letter(<uint8_t>t) and itch_length(<uint8_t>t) == p[1]:
            return True
    return False


cdef inline int64_t itch_next(itch_scan* s, const uint8_t* buf, int64_t* pos, int64_t n,
                              int final) noexcept nogil:
    """Body length L > 0 of the next frame at or after pos[0] (moved past bad prefixes and the
    bytes skipped to resynchronise, all counted), or 0 when more bytes are needed (pos[0] is
    then where to resume). The resync state lives in ``s``, so it survives between buffers."""
    cdef int64_t p = pos[0], f, q
    cdef int why = 0, decided = 0
    while True:
        if s.resync:
            q = itch_resync(buf, p, n, s.infer, final, &decided)
            s.bytes_skipped += <uint64_t>(q - p)
            p = q
            if not decided:
                while final and 0 < n - p < 3 and not itch_may_open(buf + p, n - p, s.infer):
                    # the data end inside the damage: of its last bytes, too few to open a
                    # frame, those that start none are skipped with it, not a message cut short
                    s.bytes_skipped += 1
                    p += 1
                pos[0] = p
                return 0
            s.resync = 0
        f = itch_frame(buf + p, n - p, s.infer, final, &why)
        if f >= 0:
            pos[0] = p
            return f
        itch_note_bad(s, s.base + p, why)
        if final and n - p == 2 and why == ITCH_BAD_ZERO:
            # both bytes of a zero prefix ending the data are skipped (its second alone was
            # kept as a message cut short)
            s.bytes_skipped += 1
            p += 1
        s.bytes_skipped += 1
        p += 1
        s.resync = 1


cdef object itch_scan_report(const itch_scan* s)
