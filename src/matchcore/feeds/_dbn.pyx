# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled Databento DBN market-by-order replay loop: record bytes -> MBO decoder -> books ->
sinks.

The loop reads the records of a DBN stream (everything after the metadata header) straight from
the buffer: a 16-byte record header (length in 4-byte words, rtype, publisher, instrument id,
ts_event) and, for rtype 0xA0, the MBO body (order id, price in 1e-9 units, size, flags,
channel, action, side, ts_recv, ts_in_delta, sequence), all little-endian. Each instrument id of
each publisher (venue) gets one market-by-order book, as Databento builds books: the venues of a
dataset that carries several (publisher_id) number their orders and clear their books apart
(in replay mode: ``mc_rest`` / ``mc_reduce_slot`` / ``mc_cancel_slot``, no matching) and a
dense book number, which is the ``locate`` of the shared sink records, so the
top-of-book, trade and snapshot sinks have the ITCH replay's dtypes.

Actions follow Databento's MBO book-building rules: A adds (with F_TOB: replaces that side with
one level), C takes its size off the order, M changes price and/or size (a price change or a size
increase sends the order to the back of its level; a decrease keeps its place; an unknown order is
added), R clears the book, T (aggressor trade) and F (fill of a resting order) are recorded as
trades and leave the book alone (the exchange's cancel/modify records do that), N changes nothing.
A symbol-mapping record (rtype 0x16, a live stream's) pauses the loop so that Python names its
instrument before the records after it. The top of book is read after records that carry F_LAST
(the end of an exchange event), as the guide says; a file without F_LAST flags can switch that
off (``tob_on_last=False``).

Bad records never stop the loop: an MBO record with an unknown action or side is counted and
skipped; a header with an impossible length (under 16 bytes, or not the stream's MBO length),
an rtype outside the specification, or another known rtype whose length does not lead to an MBO
header (see other_ok) is counted and the loop resynchronises on the next byte offset that holds
a plausible MBO header, counting the bytes skipped.
"""

cimport cython
from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint16_t, uint8_t
from libc.stdlib cimport malloc, calloc, free, qsort
cimport numpy as cnp
import numpy as np

from matchcore._core cimport (OrderBook, mc_book, mc_order, mc_level, mc_rest, mc_find,
                              mc_reduce_slot, mc_cancel_slot, mc_best, mc_book_clear, MC_BUY,
                              MC_SELL, MC_R_DUPLICATE_ORDER_ID, mc_book_host, mc_raise_busy,
                              mc_raise_feed_stopped, mc_raise_finished, MC_BUSY_REPLAY, mc_i64_arg, mc_bool_arg,
                              MC_INIT_TAKEN, MC_INIT_BARE)
from matchcore._map cimport (mc_map, _map_init, _map_find, _map_put, _map_grow, _map_prefetch,
                             _prefetch)
from matchcore._sinks cimport (rbuf, tob_rec, trade_rec, tob_last, sk_tob, sk_trade, sk_snapshot,
                               sk_records, sk_options, sk_replay_options, sk_many_books)
from matchcore._sinks import TOB_DTYPE, TRADE_DTYPE, snapshot_dtype
from matchcore._core import BusyError, _Params
from matchcore._symfilter import (DBN_INSTRUMENTS as _DBN_INSTRUMENTS, book_symbol,
                                  partition_arg, plain_number, symbol_filter, whole_number)
from matchcore.itch._buffer import byte_view as _byte_view

cnp.import_array()

cdef extern from "mc_endian.h" nogil:
    uint16_t mc_le16(const uint8_t* p)
    uint32_t mc_le32(const uint8_t* p)
    uint64_t mc_le64(const uint8_t* p)

cdef enum:
    ST_MORE = 0        # buffer exhausted (possibly an incomplete record left)
    ST_INSTRUMENT = 1  # first record of an instrument id: Python decides whether to keep a book
    ST_UNTIL = 2       # the next record is later than the stop time
    ST_MAPPING = 3     # a symbol-mapping record was consumed: Python renames its instrument

    TRACK_BOOK = 1
    TRACK_IGNORED = 2

    RTYPE_MBO = 0xA0
    RTYPE_SYMBOL_MAPPING = 0x16
    MBO_WORDS = 14           # 56 bytes
    MAX_BOOKS = 65536        # book numbers are the uint16 `locate` of the shared sink records;
                             # the last one is the shared entry of instruments beyond the limit

    F_LAST = 0x80
    F_TOB = 0x40

cdef extern from *:
    """
    /* Databento's null price (i64::MAX): "no price" (an F_TOB add for an empty side, say). */
    #define DBN_UNDEF_PRICE ((int64_t)0x7FFFFFFFFFFFFFFFLL)
    /* Order ids the F_TOB levels rest under, one per side (an F_TOB venue sends no order ids). */
    #define DBN_TOB_OID_BASE ((uint64_t)0xFFFFFFFFFFFFFFF0ULL)
    """
    int64_t UNDEF_PRICE "DBN_UNDEF_PRICE"
    uint64_t TOB_OID_BASE "DBN_TOB_OID_BASE"

# The sink records (tob_rec, trade_rec, depth snapshots), their buffers and writers are the ITCH
# replay's, from matchcore._sinks: both feeds' sinks have the same dtypes.

# ----------------------------------------------------------------------------------------------
# replay state
# ----------------------------------------------------------------------------------------------

cdef struct instinfo:
    mc_book* book
    tob_last top           # the top of book last read (what tob records are compared with)
    uint32_t instrument_id
    uint16_t publisher_id
    uint8_t track
    uint8_t dirty          # changed since its last depth snapshot
    uint8_t pending        # changed since its top of book was last read (F_LAST mode)

cdef struct dbn_state:
    mc_map ids             # book_key(publisher, instrument id) -> book number
    instinfo* inst         # MAX_BOOKS entries
    int32_t n_inst
    rbuf tob
    rbuf trades
    rbuf snaps
    uint16_t* dirty
    int32_t n_dirty
    int64_t* depth_tmp
    int64_t* action_counts # 256 entries, by action byte
    int64_t* rtype_counts  # 256 entries, records of other rtypes by rtype
    uint8_t rec_tob
    uint8_t rec_trades
    uint8_t tob_on_last
    uint8_t ts_out
    int64_t rec_len        # bytes of one MBO record in this stream (56, or 64 with ts_out)
    int64_t snap_every
    int64_t snap_every_ns
    int64_t snap_depth
    int64_t next_snap_ts
    int64_t since_snap
    int64_t until_ns
    uint64_t records
    uint64_t mbo
    uint64_t base          # absolute offset of the current buffer's first byte
    uint64_t bad_records   # headers with an impossible length or rtype
    uint8_t resync
    uint64_t bytes_skipped
    uint64_t first_bad_offset
    uint64_t bad_actions
    uint64_t bad_sides
    uint64_t unknown_refs
    uint64_t cancels_clamped
    uint64_t dup_refs
    uint64_t invalid_adds
    uint64_t invalid_modifies
    uint64_t modifies_as_adds
    uint64_t side_changes
    uint64_t tob_adds
    uint64_t clears
    uint64_t too_many
    uint64_t nomem
    int64_t last_ts
    uint64_t pause_key     # the book key of the record that paused the loop (ST_INSTRUMENT)
    int64_t pause_len      # bytes of the symbol-mapping record that paused it (ST_MAPPING)
    uint8_t deep_ahead     # many books (sk_many_books): lookahead


cdef void st_free(dbn_state* S) noexcept nogil:
    if S == NULL:
        return
    free(S.ids.tab)
    free(S.inst)
    free(S.tob.data)
    free(S.trades.data)
    free(S.snaps.data)
    free(S.dirty)
    free(S.depth_tmp)
    free(S.action_counts)
    free(S.rtype_counts)
    free(S)


cdef int _cmp_u16(const void* a, const void* b) noexcept nogil:
    return (<const uint16_t*>a)[0] - (<const uint16_t*>b)[0]


cdef void take_snapshots(dbn_state* S, int64_t ts) noexcept nogil:
    """One depth record per book changed since its previous snapshot, in book-number order (so
    that the records of a boundary do not depend on which book changed first: the shares of a
    split replay merge into the whole replay's order)."""
    cdef int32_t i, L
    qsort(S.dirty, S.n_dirty, sizeof(uint16_t), _cmp_u16)
    for i in range(S.n_dirty):
        L = S.dirty[i]
        S.inst[L].dirty = 0
        if sk_snapshot(&S.snaps, ts, L, S.inst[L].book, S.snap_depth, S.depth_tmp) < 0:
            S.nomem += 1
    S.n_dirty = 0


cdef inline void read_tob(dbn_state* S, int32_t L, int64_t ts) noexcept nogil:
    """Record the top of book of book L if it changed since it was last read."""
    cdef instinfo* li = &S.inst[L]
    li.pending = 0
    sk_tob(&S.tob, &li.top, li.book, ts, <uint16_t>L, True, &S.nomem)


cdef inline void changed(dbn_state* S, int32_t L) noexcept nogil:
    cdef instinfo* li = &S.inst[L]
    if S.snap_depth > 0 and not li.dirty:
        li.dirty = 1
        S.dirty[S.n_dirty] = <uint16_t>L
        S.n_dirty += 1
    li.pending = 1


cdef inline uint64_t book_key(const uint8_t* m) noexcept nogil:
    """The key of the book of the record at m: its publisher id (bytes 2-3) above its
    instrument id (bytes 4-7)."""
    return (<uint64_t>mc_le16(m + 2) << 32) | mc_le32(m + 4)


cdef inline int side_of(uint8_t c) noexcept nogil:
    if c == 66:      # 'B' bid
        return MC_BUY
    if c == 65:      # 'A' ask
        return MC_SELL
    return -1


cdef inline int rest(dbn_state* S, mc_book* b, uint64_t oid, int side, int64_t price,
                     int64_t size) noexcept nogil:
    """Rest an order at the back of its level; 1 if the book changed."""
    cdef int64_t r
    if size <= 0 or price <= 0 or price == UNDEF_PRICE:
        S.invalid_adds += 1
        return 0
    r = mc_rest(b, oid, side, price, size, 0)
    if r == 0:
        return 1
    if r == -MC_R_DUPLICATE_ORDER_ID:
        S.dup_refs += 1
    else:                    # the values were checked above: only memory can fail
        S.nomem += 1
    return 0


cdef inline int clear_side(mc_book* b, int side) noexcept nogil:
    """Remove every order of one side (best level first); 1 if anything was removed."""
    cdef int64_t p, q
    cdef int any = 0
    while mc_best(b, side, &p, &q):
        # The top level of a ladder is never empty, so its head is a resting order.
        mc_cancel_slot(b, b.levels[b.side[side].lv[b.side[side].n - 1]].head)
        any = 1
    return any


cdef inline int apply_mbo(dbn_state* S, mc_book* b, int32_t L, uint8_t action, uint8_t side_ch,
                          uint8_t flags, uint64_t oid, int64_t price, int64_t size, int64_t ts,
                          uint32_t sequence) noexcept nogil:
    """One MBO record on book L; returns 1 if the book changed."""
    cdef int side = side_of(side_ch)
    cdef int32_t idx
    cdef const mc_order* o
    cdef int64_t take
    cdef int ch
    if action == 65:                                  # A: add
        if side < 0:
            S.invalid_adds += 1
            return 0
        if flags & F_TOB:
            # Top-of-book venues: the add is the side's new best level and replaces the side.
            S.tob_adds += 1
            ch = clear_side(b, side)
            if price != UNDEF_PRICE and size > 0:
                ch |= rest(S, b, TOB_OID_BASE + <uint64_t>side, side, price, size)
            return ch
        return rest(S, b, oid, side, price, size)
    if action == 67:                                  # C: cancel (partial or full)
        idx = mc_find(b, oid)
        if idx < 0:
            S.unknown_refs += 1
            return 0
        o = &b.orders[idx]
        take = size
        if take > o.qty:
            take = o.qty
            S.cancels_clamped += 1
        if take <= 0:
            return 0
        mc_reduce_slot(b, idx, take, 0)
        return 1
    if action == 77:                                  # M: modify
        if side < 0 or price <= 0 or price == UNDEF_PRICE:
            S.invalid_modifies += 1
            return 0
        idx = mc_find(b, oid)
        if idx < 0:
            # The guide treats a modify of an order it does not hold as an add.
            S.modifies_as_adds += 1
            return rest(S, b, oid, side, price, size)
        o = &b.orders[idx]
        if size <= 0:
            mc_cancel_slot(b, idx)
            return 1
        if o.side != side:
            S.side_changes += 1
            mc_cancel_slot(b, idx)
            rest(S, b, oid, side, price, size)
            return 1
        if o.price != price or size > o.qty:
            # Loses its place: to the back of the (new) level.
            mc_cancel_slot(b, idx)
            rest(S, b, oid, side, price, size)
            return 1
        if size < o.qty:
            mc_reduce_slot(b, idx, o.qty - size, 0)
            return 1
        return 0
    if action == 82:                                  # R: clear the book
        S.clears += 1
        if b.n_orders:
            mc_book_clear(b)
            return 1
        return 0
    if action == 84 or action == 70:                  # T: trade, F: fill (no book change)
        if S.rec_trades:
            sk_trade(&S.trades, ts, <uint16_t>L, <char>action,
                     66 if side == MC_BUY else (83 if side == MC_SELL else 32), 32, oid, sequence,
                     price, size, &S.nomem)
        return 0
    return 0                                          # N: nothing


cdef inline bint known_rtype(uint8_t t) noexcept nogil:
    """Record types of the DBN specification (MBP-0/1/10, OHLCV, status, definition, imbalance,
    error, symbol mapping, system, statistics, MBO, CMBP-1, BBO/CBBO/TBBO/TCBBO): records of
    these are skipped by their length; any other rtype means the bytes are not a record header."""
    return (t <= 0x01 or t == 0x0A or (0x11 <= t and t <= 0x18) or (0x20 <= t and t <= 0x24)
            or t == 0xA0 or t == 0xB1 or (0xC0 <= t and t <= 0xC5))


cdef inline int other_ok(dbn_state* S, const uint8_t* buf, int64_t nxt, int64_t n,
                         int final) noexcept nogil:
    """A record of another known rtype ends at nxt: 1 when that leads to a plausible MBO header
    (directly or after other known-rtype headers; 16 of those in a row are a run, not chance)
    or to the end of the data when ``final``; -1 when it leads elsewhere, past the end of the
    data included (bytes read out of step after damage look like a known rtype about one time
    in ten, and skipping their "length" lost up to 18 good records); 0 when more bytes are
    needed to tell."""
    cdef int64_t rl
    cdef int run_ = 0
    while True:
        if nxt > n:
            # a record of the run runs past the end of the data
            return -1 if final else 0
        if nxt + 2 > n:
            return 1 if final else 0
        rl = <int64_t>buf[nxt] * 4
        if buf[nxt + 1] == RTYPE_MBO:
            return 1 if rl == S.rec_len else -1
        if rl < 16 or not known_rtype(buf[nxt + 1]):
            return -1
        run_ += 1
        if run_ >= 16:
            return 1
        nxt += rl


cdef inline const uint8_t* mbo_ahead(dbn_state* S, const uint8_t* buf, int64_t pos, int64_t k,
                                     int64_t n) noexcept nogil:
    # the MBO record k records after the one at pos, or NULL (other rtypes, the buffer's end)
    cdef int64_t p = pos + k * S.rec_len
    if p + S.rec_len > n or <int64_t>buf[p] * 4 != S.rec_len or buf[p + 1] != RTYPE_MBO:
        return NULL
    return buf + p


cdef inline void lookahead(dbn_state* S, const uint8_t* buf, int64_t pos, int64_t n) noexcept nogil:
    """Hide the cache misses of the next records behind the current one, on a replay of many
    books (sk_many_books). A record of a thousand-instrument file finds its instrument's map
    slot, its entry, its book's header, an id-index slot and an order (or for an add a
    price-map slot, the free order and level slots and a level) in lines the other books'
    records have long since pushed out of cache, each found through the one before. So the
    loads are pipelined over five records: five ahead the instrument map slot, four ahead the
    instrument's entry, three ahead its book's header, two ahead the index slot (and the add's
    price-map and free slots), one ahead the order or the add's level. ``pos`` is the record
    after the current one. Reads only: a wrong guess costs time, not results."""
    cdef const uint8_t* m
    cdef int32_t L, idx
    cdef mc_book* b
    cdef const char* h
    cdef int side
    m = mbo_ahead(S, buf, pos, 0, n)
    if m != NULL:
        L = _map_find(&S.ids, book_key(m))
        if L >= 0 and S.inst[L].book != NULL:
            b = S.inst[L].book
            side = side_of(m[39])
            if m[38] == 65 and side >= 0:
                idx = _map_find(&b.side[side].map, mc_le64(m + 24))
                if idx >= 0:
                    _prefetch(&b.levels[idx])
            elif m[38] == 67 or m[38] == 77:
                idx = mc_find(b, mc_le64(m + 16))
                if idx >= 0:
                    _prefetch(&b.orders[idx])
    m = mbo_ahead(S, buf, pos, 1, n)
    if m != NULL:
        L = _map_find(&S.ids, book_key(m))
        if L >= 0 and S.inst[L].book != NULL:
            b = S.inst[L].book
            _map_prefetch(&b.index, mc_le64(m + 16))
            side = side_of(m[39])
            if (m[38] == 65 or m[38] == 77) and side >= 0:
                _map_prefetch(&b.side[side].map, mc_le64(m + 24))
                if b.free_order >= 0:
                    _prefetch(&b.orders[b.free_order])
                if b.free_level >= 0:       # taken if the price has no level yet
                    _prefetch(&b.levels[b.free_level])
    m = mbo_ahead(S, buf, pos, 2, n)
    if m != NULL:
        L = _map_find(&S.ids, book_key(m))
        if L >= 0 and S.inst[L].book != NULL:
            h = <const char*>S.inst[L].book     # the header's lines: pools, ladders, index
            _prefetch(h)
            _prefetch(h + 64)
            _prefetch(h + 128)
            _prefetch(h + 192)
    m = mbo_ahead(S, buf, pos, 3, n)
    if m != NULL:
        L = _map_find(&S.ids, book_key(m))
        if L >= 0:
            _prefetch(&S.inst[L])
    m = mbo_ahead(S, buf, pos, 4, n)
    if m != NULL:
        _map_prefetch(&S.ids, book_key(m))


cdef int64_t run(dbn_state* S, const uint8_t* buf, int64_t n, int* status,
                 int final) noexcept nogil:
    """Consume complete records of buf; returns the bytes consumed and why it stopped.
    ``final``: no bytes follow buf (a record of another rtype right before the end is taken)."""
    cdef int64_t pos = 0, rl, ts, price, size
    cdef int ok
    cdef const uint8_t* m
    cdef uint8_t rtype, action, side_ch, flags
    cdef int32_t L
    cdef instinfo* li
    status[0] = ST_MORE
    while n - pos >= 2:
        m = buf + pos
        rl = <int64_t>m[0] * 4
        if S.resync:
            # Looking for the next plausible MBO header after a bad one, a byte at a time:
            # damage need not be a whole number of words, and a word-aligned search never
            # finds the records again after a misaligned insertion or loss.
            if rl == S.rec_len and m[1] == RTYPE_MBO:
                S.resync = 0
            else:
                S.bytes_skipped += 1
                pos += 1
                continue
        if rl < 16 or not known_rtype(m[1]) or (m[1] == RTYPE_MBO and rl != S.rec_len):
            if S.bad_records == 0:
                S.first_bad_offset = S.base + <uint64_t>pos
            S.bad_records += 1
            S.resync = 1
            continue
        if pos + rl > n:
            if final and m[1] != RTYPE_MBO:
                # a record of another rtype that runs past the end of the data leads to no MBO
                # header (other_ok): a bad header, as mid-stream (as bytes out of step, it
                # reported the good records after it as one record cut short)
                if S.bad_records == 0:
                    S.first_bad_offset = S.base + <uint64_t>pos
                S.bad_records += 1
                S.resync = 1
                continue
            break
        rtype = m[1]
        if rtype != RTYPE_MBO:
            ok = other_ok(S, buf, pos + rl, n, final)
            if ok == 0:
                break
            if ok < 0:
                if S.bad_records == 0:
                    S.first_bad_offset = S.base + <uint64_t>pos
                S.bad_records += 1
                S.resync = 1
                continue
            S.rtype_counts[rtype] += 1
            S.records += 1
            pos += rl
            if rtype == RTYPE_SYMBOL_MAPPING:
                # a live stream's symbol mapping: applied before the records after it
                S.pause_len = rl
                status[0] = ST_MAPPING
                break
            continue
        ts = <int64_t>mc_le64(m + 40)                  # ts_recv: the order Databento sorts by
        if S.until_ns >= 0 and ts > S.until_ns:
            if S.snap_every_ns > 0 and 0 <= S.next_snap_ts <= S.until_ns:
                # a boundary inside the replayed time waited for a record at or after it,
                # which the stop time leaves out; no record came between it and the stop, so
                # the books are as of it (the ITCH replay's rule)
                take_snapshots(S, S.next_snap_ts)
                S.next_snap_ts = (S.until_ns // S.snap_every_ns + 1) * S.snap_every_ns
            status[0] = ST_UNTIL
            break
        L = _map_find(&S.ids, book_key(m))
        if L < 0:
            S.pause_key = book_key(m)
            status[0] = ST_INSTRUMENT
            break
        if S.snap_every_ns > 0:
            if S.next_snap_ts < 0:
                S.next_snap_ts = (ts // S.snap_every_ns + 1) * S.snap_every_ns
            elif ts >= S.next_snap_ts:
                take_snapshots(S, S.next_snap_ts)
                S.next_snap_ts = (ts // S.snap_every_ns + 1) * S.snap_every_ns
        S.records += 1
        S.mbo += 1
        S.last_ts = ts
        pos += rl
        if S.deep_ahead:
            lookahead(S, buf, pos, n)
        action = m[38]
        side_ch = m[39]
        flags = m[36]
        S.action_counts[action] += 1
        if not (action == 65 or action == 67 or action == 77 or action == 82 or action == 84
                or action == 70 or action == 78):
            S.bad_actions += 1
            continue
        if not (side_ch == 65 or side_ch == 66 or side_ch == 78):
            S.bad_sides += 1
            continue
        li = &S.inst[L]
        if li.track != TRACK_BOOK:
            continue
        price = <int64_t>mc_le64(m + 24)
        size = <int64_t>mc_le32(m + 32)
        if apply_mbo(S, li.book, L, action, side_ch, flags, mc_le64(m + 16), price, size, ts,
                     mc_le32(m + 52)):
            changed(S, L)
        if S.rec_tob and li.pending and (flags & F_LAST or not S.tob_on_last):
            read_tob(S, L, ts)
        if S.snap_every > 0:
            S.since_snap += 1
            if S.since_snap >= S.snap_every:
                take_snapshots(S, ts)
                S.since_snap = 0
    if final and S.resync and n - pos == 1 and <int64_t>buf[pos] * 4 != S.rec_len:
        # The stream ends inside damage: its last byte cannot start an MBO header, so it is
        # skipped as the damage before it was, not reported as a record cut short (trailing
        # garbage read as "truncated: 1 of 1,020 bytes").
        S.bytes_skipped += 1
        pos += 1
    elif final and not S.resync and n - pos == 1 and buf[pos] < 4:
        # A last byte giving a record length under 16 starts no record: a bad header, as the
        # same byte before another one is, not a record cut short.
        if S.bad_records == 0:
            S.first_bad_offset = S.base + <uint64_t>pos
        S.bad_records += 1
        S.bytes_skipped += 1
        pos += 1
    return pos


_ACTION_NAMES = "ACMRTFN"


def _of(publisher):
    return "" if publisher is None else f" of publisher {publisher}"


def _several(symbol, numbers, ids, pubs):
    """Refuse a book() query several books answer: by their instrument ids when they are of
    one publisher, else by instrument and publisher."""
    if len({pubs[L] for L in numbers}) == 1:
        raise ValueError(f"symbol {symbol!r} is carried by instruments "
                         f"{', '.join(str(ids[L]) for L in numbers)}: ask for one of them "
                         f"by its instrument id")
    raise ValueError(f"symbol {symbol!r} is carried by books of several publishers ("
                     + ", ".join(f"instrument {ids[L]} of publisher {pubs[L]}" for L in numbers)
                     + "): ask for one of them by its instrument id and publisher=")


# Bound by matchcore._core._Params so that a wrong argument names DbnReplayer, not __cinit__;
# the docstring's first lines are the same list, for inspect.signature and help().
_DBN_PARAMS = _Params("DbnReplayer", (("names", None), ("symbols", None)), (
    ("ts_out", False), ("snapshot_every", 0), ("snapshot_every_ns", 0), ("snapshot_depth", None),
    ("until_ns", None), ("record_tob", True), ("record_trades", True), ("tob_on_last", True),
    ("partition", None), ("max_books", MAX_BOOKS - 1), ("book_capacity", 64)))


# no tp_clear: __dealloc__ needs self._books to unhook the books from the busy byte
@cython.no_gc_clear
cdef class DbnReplayer:
    """DbnReplayer(names=None, symbols=None, *, ts_out=False, snapshot_every=0,
        snapshot_every_ns=0, snapshot_depth=None, until_ns=None, record_tob=True,
        record_trades=True, tob_on_last=True, partition=None, max_books=65535,
        book_capacity=64)
--

    Replay the records of a Databento DBN MBO stream into one market-by-order book per
    instrument id and publisher (a dataset of several venues has a book per venue, as
    Databento's own book example keeps them).

    ``feed(buf)`` consumes the complete records of a bytes-like buffer (the stream AFTER its
    metadata header: :func:`matchcore.feeds.dbn.replay_dbn` splits a file; a stream that starts
    with the header raises ValueError, nothing consumed) in compiled code and returns the bytes
    consumed; keep the rest and pass it again in front of the next bytes.
    ``finish(tail)`` reports an incomplete last record.

    Books are numbered 0, 1, 2... in order of first appearance: that number is the ``locate``
    of the sink records (the ITCH replay's ``TOB_DTYPE``, ``TRADE_DTYPE``, ``snapshot_dtype``);
    :attr:`instruments` maps it to the instrument id, :attr:`publishers` to the publisher id
    and :attr:`symbols` to a name (``names``,
    ``{instrument_id: symbol}`` from the metadata's symbol mappings, else the id; a symbol-mapping
    record in the stream renames its instrument from there on; an id that is not a whole
    number, or a symbol that is not a str, raises TypeError; an id outside the uint32 range, or
    an empty symbol, ValueError). Prices stay
    DBN's raw int64 fixed-point (1 unit = 1e-9); timestamps are ``ts_recv`` (ns since the UNIX
    epoch); sizes are lots.

    Parameters (all but ``names`` and ``symbols`` keyword-only): ``names``, ``symbols`` (names
    or instrument ids to keep; None = all; an id outside 0..4294967295, the uint32 range,
    ValueError),
    ``ts_out`` (records carry an 8-byte send timestamp: from the metadata), ``snapshot_every``
    (records) / ``snapshot_every_ns`` and ``snapshot_depth`` (levels; default 10, which None
    stands for; given without either cadence, ValueError: no snapshot would be taken),
    ``until_ns`` (stop before
    the first record received later; ``done`` is then True and later ``feed()`` calls consume
    nothing: it does not mean that the input ended), ``record_tob`` / ``record_trades``, ``tob_on_last``
    (read the top of book only after F_LAST records; default True; False with
    ``record_tob=False`` raises ValueError: no top of book is recorded), ``partition=(k, n)``
    (keep only instruments with ``instrument_id % n == k``: n replayers with k = 0..n-1 split a
    file's instruments between them; every counter is either counted before the filter, so equal
    in all n, or only for kept books, so the n sum to the whole replay's), ``max_books`` (book
    numbers handed out, at most 65,535: the books, instrument and publisher pairs, seen after
    that are counted in ``instruments_dropped`` and their records skipped).

    Cost: O(1) per record (one probe of the instrument map, one of the book's id index);
    memory O(resting orders + records).

    >>> r = DbnReplayer()
    >>> r.feed(b"") , r.stats["records"]
    (0, 0)
    """

    cdef dbn_state* S
    cdef dict _books
    cdef dict _names
    cdef dict _first_names   # {book number: name when its first record arrived}
    cdef object _filter
    cdef object _truncated
    cdef object _snap_dtype
    cdef readonly bint done
    cdef int64_t _capacity
    cdef public object metadata      # the parsed metadata header, when read from a file
    cdef int64_t _part_k, _part_n, _max_books
    # MC_BUSY_REPLAY while records are applied without the GIL: the books' host byte, so that a
    # call on one of them (or on this replayer) from another thread raises BusyError meanwhile
    cdef uint8_t _busy
    cdef bint _finished     # finish() ran: the stream has ended, nothing more is fed
    cdef bint _feeding      # feed() is under way (between two runs it makes books, with the GIL)
    # DbnReplayer(...) itself: set by __cinit__ for the __init__ call of the same construction
    # (as OrderBook._init_due: MC_INIT_TAKEN or MC_INIT_BARE); a later call sets it up anew or
    # refuses it in use, as a subclass's does. 0: no call is due.
    cdef uint8_t _init_due

    def __cinit__(self, *args, **kwargs):
        # A subclass's arguments are its own __init__'s (which may take others): it is made
        # here with DbnReplayer's defaults and set up by DbnReplayer.__init__ with the
        # arguments the subclass passes on (or that it is called with, if it is inherited).
        if type(self) is DbnReplayer:
            self._setup(_DBN_PARAMS.bind(args, kwargs))
            self._init_due = MC_INIT_TAKEN if args or kwargs else MC_INIT_BARE
        else:
            self._setup(_DBN_PARAMS.bind((), {}))

    # (no signature embedded: the class's docstring starts with the constructor's own)
    @cython.embedsignature(False)
    def __init__(self, *args, **kwargs):
        # DbnReplayer(...) itself took its arguments in __cinit__: the call of the same
        # construction has nothing left to do (unless __cinit__ took none: a bare
        # DbnReplayer.__new__(DbnReplayer) then __init__(...)). A later call was ignored, bad arguments
        # and all, and a replayer in use was not refused: it is set up anew as a subclass's is.
        cdef uint8_t due = self._init_due
        if due:
            self._init_due = 0
            if due == MC_INIT_TAKEN or not (args or kwargs):
                return
        self._setup(_DBN_PARAMS.bind(args, kwargs))

    cdef int _setup(self, list params) except -1:
        # The constructor's arguments checked, then applied: to the replayer made here, or (a
        # subclass's DbnReplayer.__init__) in place of the default one its __cinit__ made, if
        # nothing has been fed to it yet.
        (names, symbols, ts_out, snapshot_every, snapshot_every_ns, snapshot_depth, until_ns,
         record_tob, record_trades, tob_on_last, partition, max_books,
         book_capacity) = params
        cdef bint c_ts_out = mc_bool_arg(ts_out, "ts_out")
        cdef bint c_rec_tob = mc_bool_arg(record_tob, "record_tob")
        cdef bint c_rec_trades = mc_bool_arg(record_trades, "record_trades")
        cdef bint c_tob_on_last = mc_bool_arg(tob_on_last, "tob_on_last")
        if not c_tob_on_last and not c_rec_tob:
            # when the top of book is recorded: with none recorded, accepted and ignored
            raise ValueError("tob_on_last=False needs record_tob=True: it says when the top of "
                             "book is recorded, and record_tob=False records none")
        cdef sk_options o
        sk_replay_options(&o, snapshot_every, snapshot_every_ns, snapshot_depth, book_capacity,
                          until_ns, "records")
        cdef int64_t n_books = mc_i64_arg(max_books, "max_books")
        if not 1 <= n_books <= MAX_BOOKS - 1:
            raise ValueError(f"max_books must be in 1..{MAX_BOOKS - 1}")
        # whole numbers that fit the int64 fields: a bool was taken for 1 or 0, and a count
        # beyond int64 raised OverflowError naming no argument
        cdef int64_t part_k, part_n
        part_k, part_n = partition_arg(partition)
        if names is not None and not hasattr(names, "items"):
            raise TypeError(f"names is a mapping {{instrument_id: symbol}}, not "
                            f"{type(names).__name__}")
        cdef dict c_names = {}
        for k, v in (names or {}).items():
            if isinstance(k, str):
                # plain ASCII digits, as symbols= reads a number: int() took "1_001", " 1001",
                # "+1001" and other scripts' digits for instrument 1001
                if not (k.isascii() and k.isdigit()):
                    raise ValueError(f"names: instrument id {k!r} is not a whole number")
                iid = int(k)
            else:
                # int() cut 1001.7 to instrument 1001 and took True for 1
                iid = whole_number(k)
                if iid is None:
                    raise TypeError(f"names: instrument id {k!r} is not a whole number")
            if not 0 <= iid <= 0xFFFFFFFF:
                # no record carries it: kept without a word, a typo went unnoticed
                raise ValueError(f"names: instrument id {k!r} is outside 0..4294967295 (a DBN "
                                 "instrument id is a uint32)")
            if not isinstance(v, str):
                # str() named the book by a repr: "b'ES'", "None"
                raise TypeError(f"names: the symbol of instrument {iid} is not a str: {v!r}")
            if not v:
                raise ValueError(f"names: the symbol of instrument {iid} is empty (no symbols= "
                                 "selection could pick its book)")
            c_names[iid] = v
        filt = symbol_filter(symbols, "symbols", _DBN_INSTRUMENTS)
        if self.S != NULL:
            if self._busy:
                mc_raise_busy("DbnReplayer", self._busy)
            if (self._feeding or self._finished or self.done or self._books
                    or self.S.base != 0):
                raise ValueError(f"{type(self).__name__}.__init__(): the replayer is already in "
                                 f"use (records were fed to it, or it was finished): setting it "
                                 f"up anew would drop its books and records")
        cdef dbn_state* S = <dbn_state*>calloc(1, sizeof(dbn_state))
        if S == NULL:
            raise MemoryError()
        S.inst = <instinfo*>calloc(MAX_BOOKS, sizeof(instinfo))
        S.dirty = <uint16_t*>malloc(MAX_BOOKS * sizeof(uint16_t))
        S.depth_tmp = <int64_t*>malloc(3 * o.depth * sizeof(int64_t))
        S.action_counts = <int64_t*>calloc(256, sizeof(int64_t))
        S.rtype_counts = <int64_t*>calloc(256, sizeof(int64_t))
        if (S.inst == NULL or S.dirty == NULL or S.depth_tmp == NULL or S.action_counts == NULL
                or S.rtype_counts == NULL or _map_init(&S.ids, 64) < 0):
            st_free(S)
            raise MemoryError()
        st_free(self.S)
        self.S = S
        S.tob.item = sizeof(tob_rec)
        S.trades.item = sizeof(trade_rec)
        self._snap_dtype = snapshot_dtype(o.depth)
        S.snaps.item = self._snap_dtype.itemsize
        S.snaps.limit = o.snap_limit
        S.rec_tob = c_rec_tob
        S.rec_trades = c_rec_trades
        S.tob_on_last = c_tob_on_last
        S.ts_out = c_ts_out
        S.rec_len = MBO_WORDS * 4 + (8 if c_ts_out else 0)
        S.snap_every = o.every
        S.snap_every_ns = o.every_ns
        S.snap_depth = o.depth if (o.every or o.every_ns) else 0
        S.next_snap_ts = -1
        S.until_ns = o.until_ns
        self._max_books = n_books
        self._part_k, self._part_n = part_k, part_n
        self._books = {}
        self._names = c_names
        self._first_names = {}
        self._filter = filt
        self._truncated = None
        self._capacity = o.capacity
        self.done = False
        return 0

    def __dealloc__(self):
        # a book still referenced elsewhere lives on, standalone
        if self._books is not None:
            for ob in self._books.values():
                mc_book_host((<OrderBook>ob)._b, NULL)
        st_free(self.S)

    def __reduce__(self):
        from matchcore._nocopy import refuse_copy
        refuse_copy("matchcore.feeds.dbn.DbnReplayer",
                    "its decoder state (a record cut at a buffer's end, the orders of every "
                    "instrument, the sinks) lives in C structures that are not copied",
                    "Pickle what you need from it instead: r.books (OrderBooks pickle), r.stats, "
                    "r.symbols, r.tob(), r.trades(), r.snapshots(); or replay the file in the "
                    "other process (matchcore.cluster.dask.replay_one returns a picklable "
                    "FileResult)")

    def _file_names(self, dict names):
        # a file's own metadata names, taken as they are (an empty raw symbol included), which
        # the names= checks of a caller's map would refuse; before any record
        self._names = dict(names)

    def feed(self, buf):
        """Consume every complete record in ``buf``; returns the bytes consumed (O(len(buf))).
        ``buf``: any C-contiguous bytes-like object, a numpy array of any dtype read as its
        bytes, as :meth:`finish` (and ``itch.Replayer.feed``) takes it. Returns 0 once the stop
        time (``until_ns``) has been reached. A record of another rtype is kept back until the
        header after it has arrived (see :meth:`finish`)."""
        cdef const uint8_t[::1] view
        try:
            if buf is None:
                raise TypeError
            view = buf          # bytes, bytearray, a uint8 array: no Python-level view
        except (TypeError, ValueError, BufferError):
            # other dtypes, shapes or objects: taken or refused as finish() does (a uint16
            # array was refused with a Cython dtype error, a strided slice with a BufferError)
            view = _byte_view(buf)
        return self._feed(view, 0)

    cdef object _feed(self, const uint8_t[::1] buf, int final):
        cdef int64_t n = buf.shape[0], pos = 0, k
        cdef int status = ST_MORE
        cdef dbn_state* S = self.S
        if self._busy:
            mc_raise_busy("DbnReplayer", self._busy)
        if self._feeding:
            raise BusyError("DbnReplayer is busy: feed() is under way in another thread; one "
                            "replayer is used by one thread at a time")
        if self._finished:
            mc_raise_finished("DbnReplayer", "feed")
        if self.done or n == 0:
            return 0
        if S.base == 0 and n < 3 and not final and buf[0] == 68 and (n == 1 or buf[1] == 66):
            # "D" or "DB": the start of a metadata header that the next feed may complete
            # (consumed as damage, the header went unrefused when fed a byte or two at a time)
            return 0
        if S.base == 0 and n >= 3 and buf[0] == 68 and buf[1] == 66 and buf[2] == 78:
            # "DBN", which opens no record (length 272, rtype 0x42 is none): the metadata was
            # read as damage, and with ts_out the 64-byte records after it too
            raise ValueError("the stream starts with a DBN metadata header: feed the records "
                             "after it (read_metadata(f).header_bytes; replay_dbn splits a "
                             "file)")
        cdef const uint8_t* p = &buf[0]
        self._feeding = True
        try:
            while True:
                if self._busy:
                    # Between two runs (a new instrument) the GIL was held but other threads ran: one
                    # of them started a call that releases the GIL on one of the books (the
                    # books are not busy meanwhile). Applying messages now would race it.
                    mc_raise_feed_stopped("DbnReplayer", pos)
                self._busy = MC_BUSY_REPLAY
                try:
                    with nogil:
                        k = run(S, p + pos, n - pos, &status, final)
                finally:
                    self._busy = 0
                pos += k
                S.base += <uint64_t>k
                if status == ST_MORE:
                    break
                elif status == ST_INSTRUMENT:
                    self._decide(S.pause_key)
                elif status == ST_MAPPING:
                    self._map_symbol(buf[pos - S.pause_len:pos])
                else:
                    self.done = True
                    break
        finally:
            self._feeding = False
        return int(pos)

    def finish(self, tail=b"", stream_error=None):
        """End of the stream: an incomplete last record (``tail``) is reported as truncated
        with its offset (from the first record); ``stream_error`` (why a compressed stream
        ended early) is reported there too, as ``truncated["stream"]``. Returns :attr:`stats`.
        While ``feed()`` is under way in another thread it raises BusyError, as ``feed()``
        does there."""
        # the arguments first: their conversion runs Python code (and other threads, which may
        # start a feed()), and a refusal after it had ended the stream left it ended
        # the tail's bytes: len() of a uint16 array counted its items, half of its bytes
        tail = bytes(_byte_view(tail))
        why = None if stream_error is None else str(stream_error)
        if self._busy:
            mc_raise_busy("DbnReplayer", self._busy)
        if self._feeding:
            # another thread's feed() between two runs (making a book, with the GIL): the stream
            # ended there, stats and all, and that feed() went on applying the rest of its
            # buffer to a finished replayer
            raise BusyError("DbnReplayer is busy: feed() is under way in another thread; one "
                            "replayer is used by one thread at a time")
        if self._finished:
            mc_raise_finished("DbnReplayer", "finish")
        cdef const uint8_t[::1] view
        cdef int64_t n = len(tail), k
        if n and not self.done:
            # the records of the tail that only the end of the stream lets through
            view = tail
            k = self._feed(view, 1)
            tail = bytes(view[k:])
            n -= k
        self._finished = True
        if self.done:
            return self.stats
        if n:
            self._truncated = {"offset": int(self.S.base), "bytes": int(n),
                               "expected": int(tail[0]) * 4 if int(tail[0]) >= 4 else None}
        if why is not None:
            if self._truncated is None:
                self._truncated = {"offset": int(self.S.base), "bytes": 0, "expected": None}
            self._truncated["stream"] = why
        return self.stats

    @property
    def finished(self):
        """True once :meth:`finish` has run: the stream has ended, and ``feed()`` and
        ``finish()`` are refused (``itch.Replayer.finished``). Not :attr:`done`, which the
        stop time (``until_ns``) sets while the stream goes on; ``finish()`` may have consumed
        records that ``feed()`` kept back, so a per-chunk consumer can tell its last call
        apart. O(1)."""
        return bool(self._finished)

    @property
    def bytes_consumed(self):
        """Bytes of the record stream consumed so far (``stats["bytes_consumed"]``), also
        while a call runs on one of the books in another thread (when :attr:`stats`, which
        reads the books, raises BusyError), as ``itch.Replayer.bytes_consumed``. O(1)."""
        return int(self.S.base)

    cdef _map_symbol(self, const uint8_t[::1] rec):
        """A symbol-mapping record (rtype 0x16, Databento's live SymbolMappingMsg): its
        instrument is named by its output (raw) symbol from here on, as Databento's
        point-in-time symbol map applies it, over ``names``. The layout is told by the length:
        176 bytes (DBN 2 and 3: output symbol at 89, 71 bytes) or 80 (DBN 1: at 38, 22 bytes),
        8 more with ts_out; a record of another length names nothing."""
        cdef int64_t n = rec.shape[0] - (8 if self.S.ts_out else 0), at, width
        if n == 176:
            at, width = 89, 71
        elif n == 80:
            at, width = 38, 22
        else:
            return
        raw = bytes(rec[at:at + width]).split(b"\0", 1)[0]
        if raw:
            iid = int(rec[4]) | int(rec[5]) << 8 | int(rec[6]) << 16 | int(rec[7]) << 24
            self._names[iid] = raw.decode("utf-8", "replace")

    cdef _decide(self, uint64_t key):
        cdef dbn_state* S = self.S
        cdef uint32_t iid = <uint32_t>(key & 0xFFFFFFFFu)
        cdef int32_t L
        cdef instinfo* li
        cdef OrderBook ob
        if S.ids.n * 2 >= <int64_t>S.ids.mask and _map_grow(&S.ids) < 0:
            raise MemoryError()
        if S.n_inst >= self._max_books:
            # No book number left: the instrument shares the last entry, which never holds a
            # book, so its records are counted and skipped without pausing again.
            S.too_many += 1
            _map_put(&S.ids, key, MAX_BOOKS - 1)
            S.inst[MAX_BOOKS - 1].track = TRACK_IGNORED
            return
        L = S.n_inst
        _map_put(&S.ids, key, L)
        S.n_inst += 1
        li = &S.inst[L]
        li.instrument_id = iid
        li.publisher_id = <uint16_t>(key >> 32)
        name = self._names.get(int(iid), str(iid))
        # the name symbols= judges the book by: a symbol-mapping record may rename it later
        self._first_names[L] = name
        keep = ((self._filter is None or name in self._filter or str(iid) in self._filter)
                and iid % self._part_n == self._part_k)
        if keep:
            ob = OrderBook(capacity=self._capacity)
            ob._b.emit = 0
            mc_book_host(ob._b, &self._busy)
            li.book = ob._b
            self._books[L] = ob
            li.track = TRACK_BOOK
            S.deep_ahead = sk_many_books(self._books, ob)
        else:
            li.track = TRACK_IGNORED

    # ---- results ----

    @property
    def books(self):
        """{book number: OrderBook}: the live books (replay mode; do not trade on them)."""
        return dict(self._books)

    @property
    def instruments(self):
        """{book number: instrument id}, every instrument seen (kept or filtered out)."""
        if self._busy:
            mc_raise_busy("DbnReplayer", self._busy)
        cdef int32_t L
        return {L: int(self.S.inst[L].instrument_id) for L in range(self.S.n_inst)}

    @property
    def publishers(self):
        """{book number: publisher id}, every book seen (kept or filtered out): the venue whose
        records the book holds (a file of several publishers has a book per instrument and
        publisher)."""
        if self._busy:
            mc_raise_busy("DbnReplayer", self._busy)
        cdef int32_t L
        return {L: int(self.S.inst[L].publisher_id) for L in range(self.S.n_inst)}

    @property
    def symbols(self):
        """{book number: name}: the instrument's latest symbol (from the stream's symbol-mapping
        records, else the metadata's), else its id (the
        books of one instrument on several publishers carry the same name: see
        :attr:`publishers`)."""
        if self._busy:
            mc_raise_busy("DbnReplayer", self._busy)
        return {L: self._names.get(iid, str(iid)) for L, iid in self.instruments.items()}

    @property
    def first_names(self):
        """{book number: name}: the name each book's instrument had when its first record
        arrived, kept or not: the name ``symbols`` judged it by (a symbol-mapping record may
        rename it later; :attr:`symbols` has the latest name), as ``itch.Replayer.first_names``.
        O(books seen)."""
        if self._busy:
            mc_raise_busy("DbnReplayer", self._busy)
        return dict(self._first_names)

    def book(self, symbol, publisher=None):
        """The book of a symbol name or instrument id; KeyError if it has none, ValueError for
        a name several books carry (the metadata maps one symbol to several instrument ids,
        e.g. over several days), naming their ids, which it takes. A string is a name first, an
        instrument id only when no book carries it as a name (written with leading zeros, the
        id it writes, as in ``symbols``; so with spaces around a name or an id); an int is an
        instrument id; anything else (a float,
        a bool, bytes) raises TypeError. ``publisher``: the
        publisher id of the book, which a file of several publishers needs where an instrument
        has a book on more than one (without it: ValueError naming them). O(instruments)."""
        if self._busy:
            mc_raise_busy("DbnReplayer", self._busy)
        if publisher is not None:
            # an integer as the symbol's (a numpy integer too), never a bool
            pub = whole_number(publisher)
            if pub is None:
                raise TypeError(f"publisher must be a publisher id (int) or None, not "
                                f"{type(publisher).__name__}")
            publisher = pub
        symbol = book_symbol(symbol, "instrument id")
        names, ids, pubs = self.symbols, self.instruments, self.publishers

        def kept(numbers):
            return [L for L in numbers
                    if L in self._books and (publisher is None or pubs[L] == publisher)]

        want = symbol
        if not isinstance(symbol, int):
            # the name as given, then without spaces around it, as symbols= selects it:
            # symbols=[" SYM1"] kept SYM1's book, which book(" SYM1") did not find
            for name in dict.fromkeys((symbol, symbol.strip())):
                more = kept(L for L, n in names.items() if n == name)
                if len(more) > 1:
                    # the first of them was returned: another instrument's orders under the name
                    _several(symbol, more, ids, pubs)
                if more:
                    return self._books[more[0]]
            number = plain_number(symbol.strip())
            if not (number.isascii() and number.isdigit()):
                raise KeyError(f"no book for symbol {symbol!r}" + _of(publisher))
            want = int(number)
        more = kept(L for L, iid in ids.items() if iid == want)
        if len(more) > 1:
            # one instrument on several publishers: the first venue's book was returned
            _several(symbol, more, ids, pubs)
        if more:
            return self._books[more[0]]
        raise KeyError(f"no book for symbol {symbol!r}" + _of(publisher))

    @property
    def stats(self):
        """Counters: records (all rtypes), MBO records, counts by action, records of other
        rtypes, bad record headers (impossible length or rtype; first offset) and bytes skipped while
        resynchronising, unknown actions and sides,
        truncation, unknown order ids (cancels of orders not held), clamped cancels, duplicate
        adds, invalid adds (size 0, price <= 0 or undefined, side N), invalid modifies, modifies of
        unknown orders (added), modifies that changed side, F_TOB adds, clears, books
        (instrument and publisher pairs) seen after the max_books book numbers were taken
        (instruments_dropped), open orders,
        books, last ts_recv."""
        if self._busy:
            mc_raise_busy("DbnReplayer", self._busy)
        cdef dbn_state* S = self.S
        cdef int i
        counts = {}
        for i in range(256):
            if S.action_counts[i]:
                counts[chr(i)] = int(S.action_counts[i])
        other = {}
        for i in range(256):
            if S.rtype_counts[i]:
                other[f"0x{i:02X}"] = int(S.rtype_counts[i])
        return {
            "records": int(S.records),
            "messages": int(S.mbo),
            "counts": dict(sorted(counts.items())),
            "other_rtypes": other,
            "bad_records": int(S.bad_records),
            "first_bad_offset": int(S.first_bad_offset) if S.bad_records else None,
            "bytes_skipped": int(S.bytes_skipped),
            "bad_actions": int(S.bad_actions),
            "bad_sides": int(S.bad_sides),
            "truncated": self._truncated,
            "unknown_refs": int(S.unknown_refs),
            "cancels_clamped": int(S.cancels_clamped),
            "duplicate_refs": int(S.dup_refs),
            "invalid_adds": int(S.invalid_adds),
            "invalid_modifies": int(S.invalid_modifies),
            "modifies_as_adds": int(S.modifies_as_adds),
            "side_changes": int(S.side_changes),
            "tob_adds": int(S.tob_adds),
            "clears": int(S.clears),
            "instruments_dropped": int(S.too_many),
            "out_of_memory": int(S.nomem),
            "open_orders": sum(len(b) for b in self._books.values()),
            "books": len(self._books),
            "bytes_consumed": int(S.base),
            "last_ts": int(S.last_ts),
        }

    cdef object _records(self, rbuf* sink, dtype, clear):
        # the flag first: its conversion may run Python code, and another thread a feed()
        # meanwhile, which appends to the sink without the GIL
        cdef bint c_clear = mc_bool_arg(clear, "clear")
        if self._busy:
            mc_raise_busy("DbnReplayer", self._busy)
        return sk_records(sink, dtype, c_clear)

    def tob(self, clear=False):
        """Top-of-book changes (``TOB_DTYPE``; locate = book number; 0 for an empty side), read
        after each F_LAST record of a changed book. ``clear`` empties the sink after copying."""
        return self._records(&self.S.tob, TOB_DTYPE, clear)

    def trades(self, clear=False):
        """Trades (``TRADE_DTYPE``): kind T (an aggressor traded: side = aggressor's) and F (a
        resting order was filled: side = the resting order's); ref = order id, match_number =
        the record's sequence, price in 1e-9 units, shares = size."""
        return self._records(&self.S.trades, TRADE_DTYPE, clear)

    def snapshots(self, clear=False):
        """Depth snapshots (``snapshot_dtype(snapshot_depth)``; locate = book number), one per
        book changed since its previous snapshot, every ``snapshot_every`` MBO records of the
        books kept (a record of an instrument left out, or with an unknown action or side, is
        not counted) or at each ``snapshot_every_ns`` boundary of ts_recv (the books of one
        snapshot in book-number order)."""
        return self._records(&self.S.snaps, self._snap_dtype, clear)
