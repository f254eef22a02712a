# The reading half of _journal.pyx (included into it, one C unit): the record check, the
# segment scanner and the decoders that recovery, read_trades and `journal inspect` share.

# ----------------------------------------------------------------------------------------------
# scanner and decoders (readers, recovery, inspect)
# ----------------------------------------------------------------------------------------------

cdef inline int _rec_ok(const uint8_t* p, int64_t avail, uint32_t kind, int* why) noexcept nogil:
    """Whether a well-formed record starts at p (avail bytes left); its length, else 0."""
    cdef mc_rec_header h
    cdef mc_rec_add_symbol a
    if avail < MC_J_REC_HEADER:
        why[0] = MC_J_E_TRUNCATED
        return 0
    memcpy(&h, p, sizeof(h))
    if h.length < MC_J_REC_HEADER or h.length > MC_J_MAX_RECORD or (h.length & 7) != 0:
        why[0] = MC_J_E_LENGTH
        return 0
    if h.length > avail:
        why[0] = MC_J_E_TRUNCATED
        return 0
    if mc_crc32(p + 8, h.length - 8) != h.crc:
        why[0] = MC_J_E_CRC
        return 0
    if kind == MC_J_KIND_TRADES:
        if h.type != MC_J_REC_TRADE:
            why[0] = MC_J_E_TYPE
            return 0
        if h.length != sizeof(mc_rec_trade):
            why[0] = MC_J_E_SIZE
            return 0
    elif h.type == MC_J_REC_COMMAND:
        if h.length != sizeof(mc_rec_command):
            why[0] = MC_J_E_SIZE
            return 0
    elif h.type == MC_J_REC_ADD_SYMBOL:
        if h.length < sizeof(mc_rec_add_symbol):
            why[0] = MC_J_E_SIZE
            return 0
        # the name must lie within the record: one running past it (its CRC holding: not a
        # torn write but a foreign writer's record) was taken for a whole record here and
        # refused only when decoded, in an error that named no segment
        memcpy(&a, p, sizeof(a))
        if a.name_len != 0xFFFFFFFFU and a.name_len > h.length - sizeof(mc_rec_add_symbol):
            why[0] = MC_J_E_SIZE
            return 0
    elif h.type == MC_J_REC_SET_LIMITS:
        if h.length != sizeof(mc_rec_set_limits):
            why[0] = MC_J_E_SIZE
            return 0
    elif h.type == MC_J_REC_SET_REF_PRICE:
        if h.length != sizeof(mc_rec_ref_price):
            why[0] = MC_J_E_SIZE
            return 0
    else:
        why[0] = MC_J_E_TYPE
        return 0
    return h.length


def read_segment_header(data):
    """(kind, stp, first_seq, created_ns) of a segment's header; :class:`JournalError` if the
    bytes do not start with a valid one."""
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef mc_seg_header hd
    if v.shape[0] < MC_J_SEG_HEADER:
        raise JournalError("segment header truncated", offset=0)
    memcpy(&hd, &v[0], MC_J_SEG_HEADER)
    if memcmp(hd.magic, b"MCJOURNL", 8) != 0:
        # read_journal(bytes) given an engine snapshot or a command file: say which
        from matchcore._magic import own_file_hint
        raise JournalError("not a journal segment (bad magic)"
                           + own_file_hint(bytes(hd.magic[:8]), "journal"), offset=0)
    if mc_crc32(<uint8_t*>&hd, 60) != hd.crc:
        raise JournalError("segment header CRC mismatch", offset=0)
    if hd.version != MC_J_VERSION or hd.header_size != MC_J_SEG_HEADER:
        raise JournalError(f"unsupported journal version {hd.version}", offset=0)
    if hd.kind not in SEGMENT_PREFIX:
        raise JournalError(f"unknown segment kind {hd.kind}", offset=0)
    return hd.kind, hd.stp, hd.first_seq, hd.created_ns


def segment_base_hash(data):
    """The state hash a segment's header records for the engine before its first record (the
    state the journal was started from: set on the first segment of a journal written by this
    version), or None (not recorded: a later segment, or a file of an earlier version). The
    header must be valid (see :func:`read_segment_header`)."""
    read_segment_header(data)
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef mc_seg_header hd
    memcpy(&hd, &v[0], MC_J_SEG_HEADER)
    return int(hd.base_hash) if hd.flags & MC_J_SEG_BASE else None


def segment_limit(data):
    """The ``segment_bytes`` of the writer that made a segment, as its header records it, or
    None (a file of an earlier version). The header must be valid (see
    :func:`read_segment_header`)."""
    read_segment_header(data)
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef mc_seg_header hd
    memcpy(&hd, &v[0], MC_J_SEG_HEADER)
    return int(hd.seg_limit) if hd.flags & MC_J_SEG_LIMIT else None


def segment_policy(data):
    """The fsync policy (``"never"``, ``"batch"`` or ``"always"``) of the writer that made a
    command segment, as its header records it, or None (a trade segment, whose schedule follows
    the command journal's, or a file of an earlier version). The header must be valid (see
    :func:`read_segment_header`)."""
    read_segment_header(data)
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef mc_seg_header hd
    memcpy(&hd, &v[0], MC_J_SEG_HEADER)
    if not hd.flags & MC_J_SEG_POLICY:
        return None
    code = (hd.flags >> MC_J_SEG_POLICY_SHIFT) & 0xFF
    for name, value in POLICIES.items():
        if value == code:
            return name
    return None


def segment_trades(data):
    """Whether the engine that made a command segment captured trades (its ``trades=``), as
    the segment's header records it, or None (a trade segment, or a file of an earlier
    version). The header must be valid (see :func:`read_segment_header`)."""
    read_segment_header(data)
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef mc_seg_header hd
    memcpy(&hd, &v[0], MC_J_SEG_HEADER)
    if not hd.flags & MC_J_SEG_TRADES:
        return None
    return bool(hd.flags & MC_J_SEG_TRADES_ON)


def scan_segment(data, uint32_t kind, uint64_t first_seq):
    """Walk a segment's records (``data``: the whole file) from its header on.

    Returns ``(index, end, damage, valid_after)``: ``index`` a :data:`RECORD_INDEX_DTYPE` array
    of every valid record in order (seqs consecutive from ``first_seq``), ``end`` the offset
    just past the last of them, ``damage`` 0 or a ``MC_J_E_*`` code (see :data:`DAMAGE`) for
    what stops the walk at ``end`` before the end of the data, ``valid_after`` whether a
    well-formed record (right length and CRC) lies anywhere after ``end``: damage followed by
    valid data is corruption in the middle, damage with nothing valid after it is a torn tail.
    Never raises on damaged records. O(bytes).
    """
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef int64_t n = v.shape[0]
    cdef const uint8_t* p = &v[0] if n > 0 else NULL
    cdef int64_t off = MC_J_SEG_HEADER, count = 0, ln
    cdef int why = MC_J_OK
    cdef uint64_t seq = first_seq, rseq
    if n < MC_J_SEG_HEADER:
        raise JournalError("segment header truncated", offset=0)
    # pass 1: count
    with nogil:
        while off < n:
            ln = _rec_ok(p + off, n - off, kind, &why)
            if ln == 0:
                break
            memcpy(&rseq, p + off + 16, 8)
            if rseq != seq:
                why = MC_J_E_SEQ
                break
            seq += 1
            count += 1
            off += ln
    cdef int64_t end = off
    if end >= n:
        why = MC_J_OK
    index = np.zeros(count, dtype=RECORD_INDEX_DTYPE)
    cdef int64_t[::1] raw = index.view(np.int64).reshape(-1)
    cdef int64_t i = 0, k
    cdef mc_rec_header h
    off = MC_J_SEG_HEADER
    with nogil:
        for i in range(count):
            memcpy(&h, p + off, sizeof(h))
            k = i * 4
            raw[k] = off
            raw[k + 1] = <int64_t>h.length | (<int64_t>h.type << 32)
            raw[k + 2] = <int64_t>h.seq
            raw[k + 3] = h.ts_ns
            off += h.length
    cdef bint after = False
    cdef int dummy
    cdef int64_t y
    if why != MC_J_OK:
        if why == MC_J_E_SEQ:
            after = True      # the out-of-sequence record is itself well formed
        else:
            y = end + 8
            with nogil:
                while y + MC_J_REC_HEADER <= n:
                    if _rec_ok(p + y, n - y, kind, &dummy) > 0:
                        after = True
                        break
                    y += 8
    return index, end, why, after


def segment_has_valid_record(data, uint32_t kind):
    """Whether any well-formed record lies after the segment header (used to tell a torn tail
    in an earlier segment from damage followed by valid data in a later one)."""
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef int64_t n = v.shape[0]
    cdef int64_t y = MC_J_SEG_HEADER
    cdef int dummy
    if n < MC_J_SEG_HEADER + MC_J_REC_HEADER:
        return False
    cdef const uint8_t* p = &v[0]
    cdef bint found = False
    with nogil:
        while y + MC_J_REC_HEADER <= n:
            if _rec_ok(p + y, n - y, kind, &dummy) > 0:
                found = True
                break
            y += 8
    return found


def extract_commands(data, const int64_t[::1] offsets, out=None):
    """The commands, seqs and recorded results of the command records at ``offsets`` (from
    :func:`scan_segment`): ``(COMMAND_DTYPE array, uint64 seqs, int64 results)``. With ``out``,
    such a triple of arrays at least as long as ``offsets``, they are written into its first
    ``len(offsets)`` entries and those views are returned (recovery reuses one triple, whose
    pages are then faulted once, not once per segment)."""
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef int64_t n = offsets.shape[0], i
    if out is None:
        cmds = np.empty(n, dtype=COMMAND_DTYPE)
        seqs = np.empty(n, dtype=np.uint64)
        results = np.empty(n, dtype=np.int64)
    else:
        cmds, seqs, results = out
        if (not isinstance(cmds, np.ndarray) or cmds.dtype != COMMAND_DTYPE
                or not cmds.flags.c_contiguous or cmds.shape[0] < n):
            raise ValueError("extract_commands: out[0] must be a contiguous COMMAND_DTYPE "
                             "array of at least len(offsets) commands")
        cmds, seqs, results = cmds[:n], seqs[:n], results[:n]
    cdef mc_command* c = <mc_command*>cnp.PyArray_DATA(cmds)
    cdef uint64_t[::1] s = seqs
    cdef int64_t[::1] r = results
    if s.shape[0] < n or r.shape[0] < n:
        raise ValueError("extract_commands: out's seqs and results must be as long as offsets")
    cdef mc_rec_command rec
    with nogil:
        for i in range(n):
            memcpy(&rec, &v[offsets[i]], sizeof(rec))
            c[i] = rec.cmd
            s[i] = rec.h.seq
            r[i] = rec.result
    return cmds, seqs, results


def decode_config(data, int64_t offset):
    """A config record at ``offset`` as ``(type name, seq, fields dict)``."""
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef mc_rec_header h
    cdef mc_rec_add_symbol a
    cdef mc_rec_set_limits s
    cdef mc_rec_ref_price r
    memcpy(&h, &v[offset], sizeof(h))
    if h.type == MC_J_REC_ADD_SYMBOL:
        memcpy(&a, &v[offset], sizeof(a))
        name = None
        if a.name_len != 0xFFFFFFFF:
            if a.name_len > h.length - sizeof(a):
                raise JournalError("add_symbol record: name longer than the record",
                                   offset=offset)
            start = offset + sizeof(a)
            name = bytes(v[start:start + a.name_len]).decode("utf-8", "replace")
        return "add_symbol", h.seq, {"symbol": a.symbol, "name": name, "capacity": a.capacity,
                                     "limits": dict(zip(LIMIT_NAMES, [a.limits[i] for i in range(7)]))}
    if h.type == MC_J_REC_SET_LIMITS:
        memcpy(&s, &v[offset], sizeof(s))
        return "set_limits", h.seq, {"symbol": s.symbol, "limits": {
            LIMIT_NAMES[i]: s.limits[i] for i in range(7) if s.mask & (1 << i)}}
    if h.type == MC_J_REC_SET_REF_PRICE:
        memcpy(&r, &v[offset], sizeof(r))
        return "set_reference_price", h.seq, {"symbol": r.symbol, "price": r.price}
    raise JournalError(f"not a config record (type {h.type})", offset=offset)


def trade_records(data, int64_t start, int64_t end):
    """The trade records of bytes ``[start, end)`` of a trade segment as
    :data:`TRADE_RECORD_DTYPE` (a copy)."""
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    return np.frombuffer(bytes(v[start:end]), dtype=TRADE_RECORD_DTYPE).copy()
