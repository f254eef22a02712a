# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The single-threaded ITCH replay loop: bytes -> framing -> per-type decoders -> books -> sinks.

One compiled loop consumes whole buffers. Each message is decoded by its type's decoder into a
fixed struct and applied to the market-by-order book of its stock locate in replay mode
(``mc_rest`` for adds, ``mc_reduce`` for executions and partial cancels, ``mc_cancel`` for
deletes, delete + rest for replaces; no matching). Sinks are growable C arrays of fixed records
(top-of-book changes, trades, depth snapshots, system events) copied out as numpy arrays on
request. The loop leaves compiled code only at rare, explicit pause points (first sight of a
stock locate, a due Python callback, the stop time), never per message.

Every order message (A/F/E/C/X/D/U) carries its stock locate, so an order reference is looked up
in that locate's book and nowhere else: the book's own id index is the only order map, one probe
per message (the open shares, price and side are read from the order it finds). A reference the
book does not hold (an order added before the file starts, or a message whose locate differs
from its add's) is counted in ``unknown_refs`` and skipped. Locates filtered out by ``symbols``
have no book and their order messages are skipped without any bookkeeping.
"""

cimport cython
from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint16_t, uint8_t, INT64_MAX
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy
from cpython.pythread cimport PyThread_get_thread_ident
cimport numpy as cnp
import numpy as np

from matchcore._core cimport (OrderBook, mc_book, mc_order, mc_rest, mc_find, mc_reduce_slot,
                              mc_cancel_slot, mc_count,
                              mc_level_count, MC_BUY, MC_SELL,
                              MC_R_DUPLICATE_ORDER_ID, mc_book_host, mc_raise_busy,
                              mc_raise_feed_stopped, mc_raise_finished, MC_BUSY_REPLAY, mc_i64_arg, mc_bool_arg,
                              MC_INIT_TAKEN, MC_INIT_BARE)
from matchcore.itch._messages cimport *
from matchcore.itch._decode cimport (itch_scan, itch_next,
                                     itch_scan_report)

from matchcore._map cimport _map_find, _map_prefetch, _prefetch
from matchcore._sinks cimport (rbuf, rb_push, tob_rec, trade_rec, tob_last, sk_tob, sk_trade,
                               sk_snapshot, sk_records, sk_options, sk_replay_options,
                               sk_many_books)
from matchcore._sinks import TOB_DTYPE, TRADE_DTYPE, snapshot_dtype
from matchcore._core import BusyError, _Params
from matchcore.itch._buffer import byte_view as _byte_view
from matchcore._symfilter import (LABEL as _LABEL, book_symbol, label_locates, partition_arg,
                                 plain_number, symbol_filter, ITCH_LOCATES as _ITCH_LOCATES)

cnp.import_array()

cdef enum:
    ST_MORE = 0        # buffer exhausted (possibly an incomplete message left)
    ST_LOCATE = 1      # first A/F/P/Q of a stock locate: Python decides whether to keep a book
    ST_CALLBACK = 2    # a Python callback is due (after the message that triggered it)
    ST_UNTIL = 3       # the next message is later than the stop time

    TRACK_UNDECIDED = 0
    TRACK_BOOK = 1
    TRACK_IGNORED = 2

# ----------------------------------------------------------------------------------------------
# records of the sinks (the numpy dtypes below mirror them; checked at import)
# ----------------------------------------------------------------------------------------------

# tob_rec, trade_rec and their dtypes are the shared sink records of matchcore._sinks.

cdef struct sys_rec:
    int64_t ts
    char code

cdef struct l2_rec:        # one price level after a change: its new total qty and order count
    int64_t ts
    int64_t price
    int64_t qty            # 0 (and orders 0) when the level is gone
    int32_t orders
    uint16_t locate
    char side              # B or S

SYSTEM_EVENT_DTYPE = np.dtype([("ts", "i8"), ("code", "S1")], align=True)
L2_DTYPE = np.dtype([("ts", "i8"), ("price", "i8"), ("qty", "i8"), ("orders", "i4"),
                     ("locate", "u2"), ("side", "S1")], align=True)
SYMBOL_STATS_DTYPE = np.dtype([("locate", "u2"), ("trades", "i8"), ("volume", "i8"),
                               ("open_orders", "i8"), ("bid_levels", "i8"), ("ask_levels", "i8")])
if SYSTEM_EVENT_DTYPE.itemsize != sizeof(sys_rec) or L2_DTYPE.itemsize != sizeof(l2_rec):
    raise ImportError("matchcore.itch._replay: sink record dtypes do not match the C structs")


# ----------------------------------------------------------------------------------------------
# replay state
# ----------------------------------------------------------------------------------------------

cdef struct locinfo:
    mc_book* book
    tob_last top           # the top of book last read (what tob records are compared with)
    int64_t cb_count
    int64_t state_ts
    int64_t n_trades       # trade records of this locate (E, C, P, Q), counted with or without the sink
    int64_t volume         # their shares, non-printable executions left out
    uint64_t early_refs    # E/C/X/D/U before the locate's first A/F/P/Q (whether it is kept
                           # is not known yet): unknown references, counted once it is
    char name[8]
    char reason[4]
    uint8_t has_name       # 0 none, 1 from a stock directory message, 2 from an order's stock field
    uint8_t track
    uint8_t cb
    uint8_t dirty
    char trading_state     # 0 until a trading action message arrives

cdef struct rp_state:
    itch_scan scan
    locinfo* loc           # 65536 entries, one per stock locate
    rbuf tob
    rbuf trades
    rbuf snaps
    rbuf sysev
    rbuf l2
    uint16_t* dirty
    int32_t n_dirty
    int64_t* depth_tmp
    uint8_t rec_tob
    uint8_t rec_trades
    uint8_t cb_on_tob
    uint8_t track_tob      # rec_tob or cb_on_tob
    uint8_t rec_l2
    int64_t snap_every
    int64_t snap_every_ns
    int64_t snap_depth
    int64_t next_snap_ts
    int64_t since_snap
    int64_t until_ns
    int64_t cb_every
    uint64_t unknown_refs
    uint64_t exec_clamped
    uint64_t cancel_clamped
    uint64_t dup_refs
    uint64_t invalid_adds
    uint64_t invalid_replaces      # U with zero shares or a zero price
    uint64_t invalid_reductions    # E/C/X of zero shares
    uint64_t invalid_trades        # P of a side not B/S, zero shares or price, Q of shares
                                   # beyond int64 (no record)
    uint64_t early_total           # sum of the undecided locates' early_refs (0: stats skips
                                   # the scan of every locate for them)
    uint64_t nomem
    int64_t last_ts
    int32_t pause_locate
    int64_t pause_ts
    uint8_t deep_ahead     # many books (sk_many_books): lookahead_deep


cdef void rp_free(rp_state* S) noexcept nogil:
    if S == NULL:
        return
    free(S.loc)
    free(S.tob.data)
    free(S.trades.data)
    free(S.snaps.data)
    free(S.sysev.data)
    free(S.l2.data)
    free(S.dirty)
    free(S.depth_tmp)
    free(S)


cdef void take_snapshots(rp_state* S, int64_t ts) noexcept nogil:
    """One depth record per book changed since its previous snapshot."""
    cdef int32_t i, L
    for i in range(S.n_dirty):
        L = S.dirty[i]
        S.loc[L].dirty = 0
        if sk_snapshot(&S.snaps, ts, L, S.loc[L].book, S.snap_depth, S.depth_tmp) < 0:
            S.nomem += 1
    S.n_dirty = 0


cdef inline bint touch(rp_state* S, uint16_t L, int64_t ts) noexcept nogil:
    """After a book change: record a top-of-book change and mark the book for snapshots.
    Returns whether the top of book changed."""
    cdef locinfo* li = &S.loc[L]
    cdef int ch
    if S.snap_depth > 0 and not li.dirty:
        li.dirty = 1
        S.dirty[S.n_dirty] = L
        S.n_dirty += 1
    if not S.track_tob:
        return False        # nobody reads the top of book: do not compute it
    return sk_tob(&S.tob, &li.top, li.book, ts, L, S.rec_tob, &S.nomem)


cdef inline void add_trade(rp_state* S, int64_t ts, uint16_t L, char kind, char side, char flag,
                           uint64_t ref, uint64_t match, int64_t price, int64_t shares) noexcept nogil:
    S.loc[L].n_trades += 1
    # a non-printable execution is part of a cross whose Q message reports its shares: the
    # specification leaves it out of volume calculations
    if kind != 67 or flag != 78:
        # held at the top: two crosses (Q) of a damaged 8-byte share count near 2**62 wrapped
        # the sum negative, and the volume counter fell (shares is never negative here)
        if shares > INT64_MAX - S.loc[L].volume:
            S.loc[L].volume = INT64_MAX
        else:
            S.loc[L].volume += shares
    if S.rec_trades:
        sk_trade(&S.trades, ts, L, kind, side, flag, ref, match, price, shares, &S.nomem)


cdef void note_level(rp_state* S, uint16_t L, int side, int64_t price, int64_t ts) noexcept nogil:
    """L2 sink: the level (side, price) of locate L as it is now, after a change (qty 0 and no
    orders when it is gone). Read from the book itself (one probe of its price map), so the
    record is the book's state, not a delta computed beside it."""
    cdef mc_book* b = S.loc[L].book
    cdef int32_t lv = _map_find(&b.side[side].map, <uint64_t>price)
    cdef l2_rec* r = <l2_rec*>rb_push(&S.l2)
    if r == NULL:
        S.nomem += 1
        return
    r.ts = ts
    r.price = price
    if lv >= 0 and b.levels[lv].count > 0:
        r.qty = <int64_t>b.levels[lv].qty
        r.orders = b.levels[lv].count
    else:
        r.qty = 0
        r.orders = 0
    r.locate = L
    r.side = 66 if side == MC_BUY else 83


cdef inline int add_order(rp_state* S, uint64_t ref, uint16_t L, uint8_t side_ch, uint32_t shares,
                          uint32_t price, int64_t ts) noexcept nogil:
    """Rest a new order in the book of locate L; returns L, or -1 if nothing changed."""
    cdef int side
    cdef int64_t r
    if S.loc[L].track != TRACK_BOOK:     # a locate left out: no bookkeeping at all
        return -1
    if side_ch == 66:        # 'B'
        side = MC_BUY
    elif side_ch == 83:      # 'S'
        side = MC_SELL
    else:
        S.invalid_adds += 1
        return -1
    if shares == 0 or price == 0:
        S.invalid_adds += 1
        return -1
    r = mc_rest(S.loc[L].book, ref, side, price, shares, 0)
    if r == 0:
        if S.rec_l2:
            note_level(S, L, side, price, ts)
        return L
    if r == -MC_R_DUPLICATE_ORDER_ID:
        S.dup_refs += 1
    else:                    # the values were checked above: only memory can fail
        S.nomem += 1
    return -1


cdef inline mc_book* ref_book(rp_state* S, uint16_t L) noexcept nogil:
    """The book order messages of locate L act on; NULL (and the reference counted as unknown
    when the locate has not been seen: no order can have been added there) when there is none."""
    cdef locinfo* li = &S.loc[L]
    if li.track == TRACK_BOOK:
        return li.book
    if li.track == TRACK_UNDECIDED:
        li.early_refs += 1
        S.early_total += 1
    return NULL


cdef inline int reduce_order(rp_state* S, uint64_t ref, uint16_t L, uint32_t shares,
                             int is_exec, int64_t ts, char kind, uint64_t match, int64_t price,
                             char flag) noexcept nogil:
    """E, C (is_exec) and X: take shares off an order; the order leaves at zero."""
    cdef mc_book* b = ref_book(S, L)
    if b == NULL:
        return -1
    cdef int32_t idx = mc_find(b, ref)
    if idx < 0:
        S.unknown_refs += 1
        return -1
    cdef const mc_order* o = &b.orders[idx]
    cdef int64_t take = shares
    if take > o.qty:
        take = o.qty
        if is_exec:
            S.exec_clamped += 1
        else:
            S.cancel_clamped += 1
    if take == 0:             # zero shares: a malformed message, the order stays
        S.invalid_reductions += 1
        return -1
    cdef int side = o.side
    cdef int64_t level_price = o.price
    if price < 0:
        price = o.price
    mc_reduce_slot(b, idx, take, is_exec)
    if S.rec_l2:
        note_level(S, L, side, level_price, ts)
    if is_exec:
        add_trade(S, ts, L, kind, 66 if side == MC_BUY else 83, flag, ref, match, price, take)
    return L


cdef inline int delete_order(rp_state* S, uint64_t ref, uint16_t L, int64_t ts) noexcept nogil:
    cdef mc_book* b = ref_book(S, L)
    if b == NULL:
        return -1
    cdef int32_t idx = mc_find(b, ref)
    if idx < 0:
        S.unknown_refs += 1
        return -1
    cdef int side
    cdef int64_t price
    if S.rec_l2:             # the level is only looked at for the L2 sink
        side = b.orders[idx].side
        price = b.orders[idx].price
        mc_cancel_slot(b, idx)
        note_level(S, L, side, price, ts)
    else:
        mc_cancel_slot(b, idx)
    return L


cdef inline int replace_order(rp_state* S, uint64_t old_ref, uint64_t new_ref, uint16_t L,
                              uint32_t shares, uint32_t price, int64_t ts) noexcept nogil:
    """U: the old order leaves, the new one rests at the back of its level on the same side.
    The new order is checked before the old one leaves: an invalid U changes nothing."""
    cdef mc_book* b = ref_book(S, L)
    if b == NULL:
        return -1
    cdef int32_t idx = mc_find(b, old_ref)
    if idx < 0:
        S.unknown_refs += 1
        return -1
    if shares == 0 or price == 0:
        S.invalid_replaces += 1
        return -1
    if new_ref != old_ref and mc_find(b, new_ref) >= 0:
        S.dup_refs += 1
        return -1
    cdef int side = b.orders[idx].side
    cdef int64_t old_price = b.orders[idx].price
    mc_cancel_slot(b, idx)
    # A replace at the same price leaves and re-enters one level: a record between the two
    # steps gave a state the book never had after any message (the level gone, or short of
    # the order), which an L2 consumer took as a real change; the add's record says it all.
    if S.rec_l2 and old_price != price:
        note_level(S, L, side, old_price, ts)
    if add_order(S, new_ref, L, 66 if side == MC_BUY else 83, shares, price, ts) < 0 \
            and S.rec_l2 and old_price == price:
        # the new order found no memory: the level is left without the old one
        note_level(S, L, side, old_price, ts)
    return L


cdef inline bint is_ref_type(uint8_t t) noexcept nogil:
    return t == 68 or t == 69 or t == 88 or t == 85 or t == 67       # D E X U C


cdef inline bint is_order_type(uint8_t t) noexcept nogil:
    return t == 65 or t == 70 or is_ref_type(t)


cdef inline int add_side(uint8_t c) noexcept nogil:
    return MC_BUY if c == 66 else (MC_SELL if c == 83 else -1)


cdef inline int64_t next_pos(rp_state* S, const uint8_t* buf, int64_t p, int64_t n) noexcept nogil:
    # where the message after the one at p starts if it holds an order message's first 21
    # bytes, else -1 (a guess: the framing is checked when the loop gets there)
    p += 2 + (itch_length(buf[p + 2]) if S.scan.infer else mc_be16(buf + p))
    return p if p + 21 <= n else -1


cdef inline void ahead_order(rp_state* S, const uint8_t* buf, int64_t p) noexcept nogil:
    # the order of the E/C/X/D/U at p (its index slot was asked for a message earlier)
    cdef mc_book* b = S.loc[mc_be16(buf + p + 3)].book
    cdef int32_t idx
    if b != NULL:
        idx = mc_find(b, mc_be64(buf + p + 13))
        if idx >= 0:
            _prefetch(&b.orders[idx])


cdef inline void lookahead(rp_state* S, const uint8_t* buf, int64_t pos, int64_t n) noexcept nogil:
    """Hide the cache misses of the next messages behind the current one: every order message
    starts with a random access into its book's id index, and an E/C/X/D/U then with one into
    the order pool. Two messages ahead, load the index slot; one message ahead, find the order
    (its index slot is cached by now) and load it. Reads only: a wrong guess costs time, not
    results. (Walking further ahead, to the level and the queue neighbours, measured slower
    while the books fit in cache: the extra lookups cost more than the misses they hide; with
    many books, see lookahead_deep.)"""
    cdef int64_t p2
    cdef uint8_t t1
    cdef mc_book* b
    if pos + 21 > n:
        return
    t1 = buf[pos + 2]
    if is_ref_type(t1):
        ahead_order(S, buf, pos)
    p2 = pos + 2 + (itch_length(t1) if S.scan.infer else mc_be16(buf + pos))
    if p2 + 21 <= n and is_order_type(buf[p2 + 2]):
        b = S.loc[mc_be16(buf + p2 + 3)].book
        if b != NULL:
            _map_prefetch(&b.index, mc_be64(buf + p2 + 13))


cdef inline void lookahead_deep(rp_state* S, const uint8_t* buf, int64_t pos,
                                int64_t n) noexcept nogil:
    """lookahead for a replay of many books (sk_many_books). A message of a thousand-symbol
    day finds its locate's entry, its book's header, an id-index slot, an order or a price-map
    slot and a level in lines the other books' messages have long since pushed out of cache,
    each found through the one before. So the loads are pipelined over four messages: four
    ahead the locate's entry, three ahead its book's header, two ahead the index slot (for an
    add also its side's price-map slot and the free order and level slots it may take), one
    ahead the order (for an add its level). Reads only, as in lookahead. (A fifth stage, one
    ahead the order's level and queue neighbours for the cancel's unlink, measured no
    faster.)"""
    cdef int64_t p2, p3, p4
    cdef uint8_t t
    cdef mc_book* b
    cdef int32_t idx
    cdef int s
    cdef locinfo* li
    cdef const char* h
    if pos + 21 > n:
        return
    t = buf[pos + 2]
    if is_ref_type(t):
        ahead_order(S, buf, pos)
    elif (t == 65 or t == 70) and pos + 38 <= n:
        b = S.loc[mc_be16(buf + pos + 3)].book
        s = add_side(buf[pos + 21])
        if b != NULL and s >= 0:
            idx = _map_find(&b.side[s].map, <uint64_t>mc_be32(buf + pos + 34))
            if idx >= 0:
                _prefetch(&b.levels[idx])
    p2 = next_pos(S, buf, pos, n)
    if p2 < 0:
        return
    t = buf[p2 + 2]
    if is_order_type(t):
        b = S.loc[mc_be16(buf + p2 + 3)].book
        if b != NULL:
            _map_prefetch(&b.index, mc_be64(buf + p2 + 13))
            if (t == 65 or t == 70) and p2 + 38 <= n:
                s = add_side(buf[p2 + 21])
                if s >= 0:
                    _map_prefetch(&b.side[s].map, <uint64_t>mc_be32(buf + p2 + 34))
                if b.free_order >= 0:
                    _prefetch(&b.orders[b.free_order])
                if b.free_level >= 0:       # taken if the price has no level yet
                    _prefetch(&b.levels[b.free_level])
    p3 = next_pos(S, buf, p2, n)
    if p3 < 0:
        return
    t = buf[p3 + 2]
    if is_order_type(t):
        b = S.loc[mc_be16(buf + p3 + 3)].book
        if b != NULL:
            h = <const char*>b          # the header's four lines: pools, ladders, index, counters
            _prefetch(h)
            _prefetch(h + 64)
            _prefetch(h + 128)
            _prefetch(h + 192)
    p4 = next_pos(S, buf, p3, n)
    if p4 < 0:
        return
    t = buf[p4 + 2]
    if is_order_type(t):
        li = &S.loc[mc_be16(buf + p4 + 3)]
        _prefetch(li)
        _prefetch(&li.track)


cdef int64_t rp_run(rp_state* S, const uint8_t* buf, int64_t n, int* status,
                    int final) noexcept nogil:
    """Consume complete messages of buf; returns the bytes consumed and why it stopped.
    ``final``: no bytes follow buf (see itch_resync)."""
    cdef int64_t pos = 0, f, ts
    cdef int touched, t
    cdef uint16_t L
    cdef bint tob_changed
    cdef const uint8_t* m
    cdef locinfo* li
    cdef itch_add_order a
    cdef itch_add_order_mpid af
    cdef itch_order_executed ex
    cdef itch_order_executed_with_price ec
    cdef itch_order_cancel xc
    cdef itch_order_delete dl
    cdef itch_order_replace rp
    cdef itch_trade tr
    cdef itch_cross_trade ct
    cdef itch_system_event se
    cdef itch_stock_directory sd
    cdef itch_stock_trading_action ta
    cdef sys_rec* sr
    # an unknown-type message has no timestamp the loop reads: what it triggers (a snapshot)
    # carries the last exchange time, also when that came in an earlier call
    ts = S.last_ts
    status[0] = ST_MORE
    while True:
        f = itch_next(&S.scan, buf, &pos, n, final)
        if f == 0:
            break
        m = buf + pos + 2
        t = m[0]
        touched = -1
        tob_changed = False
        if itch_length(<uint8_t>t) != 0:          # known types are all >= 12 bytes long
            ts = <int64_t>mc_be48(m + 5)
            if S.until_ns >= 0 and ts > S.until_ns:
                if S.snap_every_ns > 0 and 0 <= S.next_snap_ts <= S.until_ns:
                    # a boundary inside the replayed time: no message came between it and the
                    # stop time, so the books are as of it. It waited for a message at or
                    # after it, which the stop time leaves out: its snapshot was never taken.
                    take_snapshots(S, S.next_snap_ts)
                    S.next_snap_ts = (S.until_ns // S.snap_every_ns + 1) * S.snap_every_ns
                status[0] = ST_UNTIL
                break
            if S.snap_every_ns > 0:
                if S.next_snap_ts < 0:
                    S.next_snap_ts = (ts // S.snap_every_ns + 1) * S.snap_every_ns
                elif ts >= S.next_snap_ts:
                    take_snapshots(S, S.next_snap_ts)
                    S.next_snap_ts = (ts // S.snap_every_ns + 1) * S.snap_every_ns
            if t == 65 or t == 70 or t == 80 or t == 81:      # A F P Q name the stock
                L = mc_be16(m + 1)
                li = &S.loc[L]
                if li.track == TRACK_UNDECIDED:
                    if not li.has_name:
                        memcpy(li.name, m + (19 if t == 81 else 24), 8)
                        li.has_name = 2
                    S.pause_locate = L
                    status[0] = ST_LOCATE
                    break
            S.last_ts = ts
        S.scan.messages += 1
        S.scan.counts[t] += 1
        pos += 2 + f
        if S.deep_ahead:
            lookahead_deep(S, buf, pos, n)
        else:
            lookahead(S, buf, pos, n)
        if t == 65:      # 'A'
            itch_decode_add_order(m, &a)
            touched = add_order(S, a.order_reference_number, a.stock_locate,
                                <uint8_t>a.buy_sell_indicator, a.shares, a.price, ts)
        elif t == 68:    # 'D'
            itch_decode_order_delete(m, &dl)
            touched = delete_order(S, dl.order_reference_number, dl.stock_locate, ts)
        elif t == 85:    # 'U'
            itch_decode_order_replace(m, &rp)
            touched = replace_order(S, rp.original_order_reference_number,
                                    rp.new_order_reference_number, rp.stock_locate, rp.shares,
                                    rp.price, ts)
        elif t == 69:    # 'E'
            itch_decode_order_executed(m, &ex)
            touched = reduce_order(S, ex.order_reference_number, ex.stock_locate,
                                   ex.executed_shares, 1, ts, 69, ex.match_number, -1, 32)
        elif t == 88:    # 'X'
            itch_decode_order_cancel(m, &xc)
            touched = reduce_order(S, xc.order_reference_number, xc.stock_locate,
                                   xc.cancelled_shares, 0, ts, 88, 0, -1, 32)
        elif t == 70:    # 'F'
            itch_decode_add_order_mpid(m, &af)
            touched = add_order(S, af.order_reference_number, af.stock_locate,
                                <uint8_t>af.buy_sell_indicator, af.shares, af.price, ts)
        elif t == 67:    # 'C'
            itch_decode_order_executed_with_price(m, &ec)
            touched = reduce_order(S, ec.order_reference_number, ec.stock_locate,
                                   ec.executed_shares, 1, ts, 67, ec.match_number,
                                   ec.execution_price, ec.printable)
        elif t == 80:    # 'P'
            itch_decode_trade(m, &tr)
            if S.loc[tr.stock_locate].track == TRACK_BOOK:
                if (tr.buy_sell_indicator != 66 and tr.buy_sell_indicator != 83) or \
                        tr.shares == 0 or tr.price == 0:
                    # the indicator is B or S: a record with another side is one no reader
                    # of trade records takes (the NATS wire refuses it), so it is counted; so
                    # is a trade of no shares or at no price (as an add of either is invalid),
                    # which was summed up as a trade
                    S.invalid_trades += 1
                else:
                    add_trade(S, ts, tr.stock_locate, 80, tr.buy_sell_indicator, 32,
                              tr.order_reference_number, tr.match_number, tr.price, tr.shares)
                    touched = tr.stock_locate
        elif t == 81:    # 'Q'
            itch_decode_cross_trade(m, &ct)
            if S.loc[ct.stock_locate].track == TRACK_BOOK:
                if ct.shares > <uint64_t>INT64_MAX:
                    # no real cross has as many shares; as int64 it read as a negative trade
                    S.invalid_trades += 1
                else:
                    add_trade(S, ts, ct.stock_locate, 81, 32, ct.cross_type, 0,
                              ct.match_number, ct.cross_price, <int64_t>ct.shares)
                    touched = ct.stock_locate
        elif t == 83:    # 'S'
            itch_decode_system_event(m, &se)
            sr = <sys_rec*>rb_push(&S.sysev)
            if sr == NULL:
                S.nomem += 1
            else:
                sr.ts = ts
                sr.code = se.event_code
        elif t == 82:    # 'R'
            itch_decode_stock_directory(m, &sd)
            li = &S.loc[sd.stock_locate]
            memcpy(li.name, sd.stock, 8)
            li.has_name = 1
        elif t == 72:    # 'H'
            itch_decode_stock_trading_action(m, &ta)
            li = &S.loc[ta.stock_locate]
            li.trading_state = ta.trading_state
            memcpy(li.reason, ta.reason, 4)
            li.state_ts = ts
            if not li.has_name:
                memcpy(li.name, ta.stock, 8)
                li.has_name = 2
        if touched >= 0 and t != 80 and t != 81:
            tob_changed = touch(S, <uint16_t>touched, ts)
        if S.snap_every > 0:
            S.since_snap += 1
            if S.since_snap >= S.snap_every:
                take_snapshots(S, ts)
                S.since_snap = 0
        if touched >= 0 and S.loc[touched].cb:
            li = &S.loc[touched]
            li.cb_count += 1
            if (S.cb_every > 0 and li.cb_count >= S.cb_every) or (S.cb_on_tob and tob_changed):
                li.cb_count = 0
                S.pause_locate = touched
                S.pause_ts = ts
                status[0] = ST_CALLBACK
                break
    return pos


cdef bint _selects(object filt, object labelled, str name, int L) except -1:
    # a symbol_filter() set (None: every locate) keeps a locate by its name (the one it has when
    # its book is decided), its number, or a book label NAME@locateN of it (``labelled``: the
    # locates N of the labels). A label is the name of a locate's book as the summary gives it,
    # at the end of the replay: a stock directory message may give locate N the name NAME only
    # after its first order, so the label keeps locate N whatever it is named then; the name is
    # checked against the replay's names (Replayer.book, label_errors), as book --symbol does.
    # Names without surrounding spaces (matchcore.io.symbol_name): " AAPL" is a book of AAPL.
    return filt is None or name.strip() in filt or str(L) in filt or L in labelled


cdef str _name(const locinfo* li, int L):
    if li.has_name:
        return li.name[:8].decode("latin-1").rstrip(" \x00") or str(L)
    return str(L)


# Bound by matchcore._core._Params so that a wrong argument names Replayer, not __cinit__;
# the docstring's first lines are the same list, for inspect.signature and help().
_REPLAYER_PARAMS = _Params("Replayer", (("symbols", None),), (
    ("snapshot_every", 0), ("snapshot_every_ns", 0), ("snapshot_depth", None),
    ("infer_lengths", False), ("callback", None), ("callback_symbols", None),
    ("callback_every", None), ("callback_on_tob", False), ("until_ns", None),
    ("record_tob", True), ("record_trades", True), ("book_capacity", 64), ("record_l2", False),
    ("partition", None)))


# no tp_clear: __dealloc__ needs self._books to unhook the books from the busy byte
@cython.no_gc_clear
cdef class Replayer:
    """Replayer(symbols=None, *, snapshot_every=0, snapshot_every_ns=0, snapshot_depth=None,
        infer_lengths=False, callback=None, callback_symbols=None, callback_every=None,
        callback_on_tob=False, until_ns=None, record_tob=True, record_trades=True,
        book_capacity=64, record_l2=False, partition=None)
--

    Replay ITCH 5.0 bytes into one market-by-order book per stock locate.

    ``feed(buf)`` consumes the complete messages of a bytes-like buffer in compiled code and
    returns how many bytes it consumed: keep the rest (an incomplete message) and pass it again
    in front of the next bytes. ``finish(tail)`` reports an incomplete last message.

    Parameters (all but ``symbols`` keyword-only): ``symbols`` (iterable of names, locate
    numbers or book labels ``NAME@locateN``: only these get books and sink records; None = all;
    empty, or a number outside 0..65535 (a locate is a uint16): ``ValueError``; a name keeps
    a locate named so when its first order arrives, a label
    keeps locate N whatever it is named then, as a stock directory message may name it NAME
    later, and :meth:`book` takes the label while locate N is named NAME),
    ``snapshot_every`` (messages) / ``snapshot_every_ns`` (exchange time) and
    ``snapshot_depth`` (levels; default 10, which None stands for; given without either
    cadence, ValueError: no snapshot would be taken) for depth snapshots, ``infer_lengths`` (take each length from
    the type byte, for files written with zero prefixes), ``callback(symbol, book, ts_ns)``
    called between compiled chunks for ``callback_symbols`` every ``callback_every`` messages
    touching that symbol (default 1000, which None stands for) and, with ``callback_on_tob``,
    whenever its top of book changes (``callback_symbols``, ``callback_every`` and
    ``callback_on_tob=True`` without a callback, and ``callback_every=0`` without
    ``callback_on_tob=True``, raise ValueError: nothing would call it)
    (``symbol`` is the book's name as it is then, or its label ``NAME@locateN`` while another
    book carries that name too, as the replay summary names them);
    ``until_ns`` stops before the first message later than that exchange time (then ``done``
    is True and later ``feed()`` calls consume nothing; ``done`` does not mean that the input
    ended: :meth:`finish` says that);
    ``record_tob`` / ``record_trades`` switch those sinks off for pure book building;
    ``record_l2`` switches on the L2 sink (every changed price level with its new qty and order
    count, see :meth:`l2`); ``partition=(k, n)`` keeps only the locates L with ``L % n == k``
    (by number, whatever the stock's name; ``0 <= k < n < 2**63``), one share of a file's books,
    whose counters of kept books add up over the n shares to the whole replay's.

    Cost: O(1) per message (one probe of the book's id index, then the book operation);
    memory O(resting orders + records).

    >>> import matchcore.itch as itch
    >>> r = itch.Replayer()
    >>> data = itch.generate(None, messages=2000, symbols=3, seed=1)
    >>> r.feed(data) == len(data)
    True
    >>> sorted(r.symbols.values())[:1]
    ['AAPL']
    """

    cdef rp_state* S
    cdef dict _books
    cdef object _filter
    cdef object _labelled           # the locates N of the book labels NAME@locateN in symbols
    cdef object _cb_labelled        # ... in callback_symbols
    cdef dict _first_names          # {locate: name when its first order arrived}
    cdef dict _bk_name              # {locate: name} of the books as of _bk_r stock directory
    cdef dict _bk_count             # messages, and {name: books carrying it}: the callback's
    cdef uint64_t _bk_r             # symbol, a label NAME@locateN for a name two books carry
    cdef int64_t _part_k, _part_n   # partition: keep the locates L with L % n == k
    cdef object _callback
    cdef object _cb_filter
    cdef object _truncated
    cdef object _snap_dtype
    cdef readonly bint done
    cdef int64_t _capacity
    # MC_BUSY_REPLAY while messages are applied without the GIL: the books' host byte, so that
    # a call on one of them (or on this replayer) from another thread raises BusyError meanwhile
    cdef uint8_t _busy
    cdef bint _finished     # finish() ran: the stream has ended, nothing more is fed
    cdef bint _feeding      # feed() is under way (its callback may not feed again)
    cdef unsigned long _feeder      # the thread feed() runs in, while _feeding
    cdef bint _started      # bytes have been fed: the start of the stream was checked
    # Replayer(...) itself: set by __cinit__ for the __init__ call of the same construction (as
    # OrderBook._init_due: MC_INIT_TAKEN or MC_INIT_BARE); a later call sets it up anew or
    # refuses it in use, as a subclass's does. 0: no call is due.
    cdef uint8_t _init_due
    # lets a follower of replays (matchcore.io.metrics) tell the next replay from the last
    # without keeping the last alive: id() of a freed replayer is often the next one's
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        # A subclass's arguments are its own __init__'s (which may take others): it is made
        # here with Replayer's defaults and set up by Replayer.__init__ with the arguments the
        # subclass passes on (or that it is called with, if it is inherited).
        if type(self) is Replayer:
            self._setup(_REPLAYER_PARAMS.bind(args, kwargs))
            self._init_due = MC_INIT_TAKEN if args or kwargs else MC_INIT_BARE
        else:
            self._setup(_REPLAYER_PARAMS.bind((), {}))

    # (no signature embedded: the class's docstring starts with the constructor's own)
    @cython.embedsignature(False)
    def __init__(self, *args, **kwargs):
        # Replayer(...) itself took its arguments in __cinit__: the call of the same
        # construction has nothing left to do (unless __cinit__ took none: a bare
        # Replayer.__new__(Replayer) then __init__(...)). A later call was ignored, bad arguments
        # and all, and a replayer in use was not refused: it is set up anew as a subclass's is.
        cdef uint8_t due = self._init_due
        if due:
            self._init_due = 0
            if due == MC_INIT_TAKEN or not (args or kwargs):
                return
        self._setup(_REPLAYER_PARAMS.bind(args, kwargs))

    cdef int _setup(self, list params) except -1:
        # The constructor's arguments checked, then applied: to the replayer made here, or (a
        # subclass's Replayer.__init__) in place of the default one its __cinit__ made, if
        # nothing has been fed to it yet.
        (symbols, snapshot_every, snapshot_every_ns, snapshot_depth, infer_lengths, callback,
         callback_symbols, callback_every, callback_on_tob, until_ns, record_tob, record_trades,
         book_capacity, record_l2, partition) = params
        cdef bint c_infer = mc_bool_arg(infer_lengths, "infer_lengths")
        cdef bint c_cb_on_tob = mc_bool_arg(callback_on_tob, "callback_on_tob")
        cdef bint c_rec_tob = mc_bool_arg(record_tob, "record_tob")
        cdef bint c_rec_trades = mc_bool_arg(record_trades, "record_trades")
        cdef bint c_rec_l2 = mc_bool_arg(record_l2, "record_l2")
        cdef sk_options o
        sk_replay_options(&o, snapshot_every, snapshot_every_ns, snapshot_depth, book_capacity,
                          until_ns, "messages")
        # None: the default, 1000 (told apart from a value given, which needs a callback)
        cdef int64_t cb_every = (1000 if callback_every is None else
                                 mc_i64_arg(callback_every, "callback_every"))
        # by locate number only: a share given as locate numbers in ``symbols`` also kept
        # a stock whose name is another share's number (a stock named "2" at locate 1)
        cdef int64_t part_k, part_n
        part_k, part_n = partition_arg(partition)
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable(symbol, book, ts_ns)")
        if cb_every < 0:
            raise ValueError("callback_every must be >= 0")
        # options that shape the callback, without it (or without the one that calls it), were
        # accepted and no callback was ever called
        if callback is None and callback_symbols is not None:
            raise ValueError(f"callback_symbols={callback_symbols!r} needs a callback "
                             f"(callback(symbol, book, ts_ns)): without one nothing is called")
        if callback is None and c_cb_on_tob:
            raise ValueError("callback_on_tob=True needs a callback (callback(symbol, book, "
                             "ts_ns)): without one nothing is called")
        if cb_every == 0 and not c_cb_on_tob:
            raise ValueError("callback_every=0 needs callback_on_tob=True: with neither a "
                             "message count nor top-of-book changes the callback is never "
                             "called")
        if callback is None and callback_every is not None:
            raise ValueError(f"callback_every={callback_every!r} needs a callback "
                             f"(callback(symbol, book, ts_ns)): without one nothing is called")
        filt = symbol_filter(symbols, "symbols", _ITCH_LOCATES)
        cb_filt = symbol_filter(callback_symbols, "callback_symbols", _ITCH_LOCATES)
        if self.S != NULL:
            if self._busy:
                mc_raise_busy("Replayer", self._busy)
            if (self._feeding or self._started or self._finished or self.done or self._books
                    or self.S.scan.base != 0):
                raise ValueError(f"{type(self).__name__}.__init__(): the replayer is already in "
                                 f"use (bytes were fed to it, or it was finished): setting it "
                                 f"up anew would drop its books and records")
        cdef rp_state* S = <rp_state*>calloc(1, sizeof(rp_state))
        if S == NULL:
            raise MemoryError()
        S.loc = <locinfo*>calloc(65536, sizeof(locinfo))
        S.dirty = <uint16_t*>malloc(65536 * sizeof(uint16_t))
        S.depth_tmp = <int64_t*>malloc(3 * o.depth * sizeof(int64_t))
        if S.loc == NULL or S.dirty == NULL or S.depth_tmp == NULL:
            rp_free(S)
            raise MemoryError()
        rp_free(self.S)
        self.S = S
        self._part_k, self._part_n = part_k, part_n
        S.tob.item = sizeof(tob_rec)
        S.trades.item = sizeof(trade_rec)
        S.sysev.item = sizeof(sys_rec)
        S.l2.item = sizeof(l2_rec)
        S.rec_l2 = c_rec_l2
        self._snap_dtype = snapshot_dtype(o.depth)
        S.snaps.item = self._snap_dtype.itemsize
        S.snaps.limit = o.snap_limit
        S.scan.infer = c_infer
        S.rec_tob = c_rec_tob
        S.rec_trades = c_rec_trades
        S.snap_every = o.every
        S.snap_every_ns = o.every_ns
        S.snap_depth = o.depth if (o.every or o.every_ns) else 0
        S.next_snap_ts = -1
        S.until_ns = o.until_ns
        S.cb_every = cb_every if callback is not None else 0
        S.cb_on_tob = c_cb_on_tob and callback is not None
        S.track_tob = S.rec_tob or S.cb_on_tob
        self._books = {}
        self._filter = filt
        self._labelled = label_locates(filt)
        self._callback = callback
        self._cb_filter = cb_filt
        self._cb_labelled = label_locates(cb_filt)
        self._first_names = {}
        self._bk_name = {}
        self._bk_count = {}
        self._bk_r = 0
        self._truncated = None
        self._capacity = o.capacity
        self.done = False
        return 0

    def __dealloc__(self):
        # a book still referenced elsewhere lives on, standalone
        if self._books is not None:
            for ob in self._books.values():
                mc_book_host((<OrderBook>ob)._b, NULL)
        rp_free(self.S)

    def __reduce__(self):
        from matchcore._nocopy import refuse_copy
        refuse_copy("matchcore.itch.Replayer",
                    "its decoder state (a message cut at a buffer's end, the order references of "
                    "every stock, the sinks) lives in C structures that are not copied",
                    "Pickle what you need from it instead: r.books (OrderBooks pickle), r.stats, "
                    "r.symbols, r.tob(), r.trades(); or replay the file in the other process "
                    "(matchcore.cluster.dask.replay_one returns a picklable FileResult)")

    # ---- feeding ----

    def feed(self, buf):
        """Consume every complete message in ``buf``; returns the bytes consumed (O(len(buf))).
        ``buf``: any C-contiguous bytes-like object, a numpy array of any dtype read as its
        bytes, as :func:`matchcore.itch.decode` takes it. After a bad length prefix, bytes
        whose framing depends on what follows are left unconsumed too, like an incomplete
        message. Returns 0 once the stop time (``until_ns``) has been reached. The first bytes
        fed (here or to :meth:`finish`) are the start of the stream: one that cannot start ITCH
        5.0 (DBN, a native command file, text, gzip or zstd bytes) raises ValueError as
        :func:`matchcore.itch.decode` does, and nothing is consumed; later bytes are data.
        An exception raised by the ``callback`` propagates out of ``feed()``, which then
        returns no count: the messages up to and including the one that triggered the call are
        applied, and ``stats["bytes_consumed"]`` (counted from the start of the stream) tells
        where to resume feeding."""
        cdef const uint8_t[::1] view
        try:
            if buf is None:
                raise TypeError
            view = buf          # bytes, bytearray, a uint8 array: no Python-level view
        except (TypeError, ValueError, BufferError):
            # other dtypes, shapes or objects: taken or refused as decode() does (a uint16
            # array was refused here with a Cython dtype error that decode() accepted, a
            # strided memoryview with a BufferError where decode() raised ValueError)
            view = _byte_view(buf)
        return self._run(view, 0)

    cdef int64_t _run(self, const uint8_t[::1] buf, int final) except -1:
        cdef int64_t n = buf.shape[0], pos = 0, k
        cdef int status = ST_MORE
        cdef rp_state* S = self.S
        if self._busy:
            mc_raise_busy("Replayer", self._busy)
        if self._feeding:
            self._raise_feeding("feed it")
        if self._finished:
            mc_raise_finished("Replayer", "feed")
        if self.done or n == 0:
            return 0
        if not self._started:
            # the first bytes of the stream: what cannot start ITCH 5.0 (DBN, a native file,
            # text, compressed bytes) is refused as itch.decode refuses it (framed, it gave bad
            # length prefixes and nothing else); later bytes are the stream's data
            from matchcore._magic import TEXT_LOOK
            from matchcore.itch import _refuse_foreign_buffer
            if not final and buf[0] != 0 and n < TEXT_LOOK:
                # too few to judge as the whole stream would be (ITCH starts with a 0 byte,
                # decided at once): a magic split over two feeds was taken, a printable first
                # byte refused as text. Kept back until more arrive or the stream ends.
                return 0
            _refuse_foreign_buffer(buf)
            self._started = True
        cdef const uint8_t* p = &buf[0]
        self._feeding = True
        self._feeder = PyThread_get_thread_ident()
        try:
            while True:
                if self._busy:
                    # Between two runs (a callback) the GIL was held but other threads ran: one
                    # of them started a call that releases the GIL on one of the books (the
                    # books are not busy meanwhile). Applying messages now would race it.
                    mc_raise_feed_stopped("Replayer", pos)
                self._busy = MC_BUSY_REPLAY
                try:
                    with nogil:
                        k = rp_run(S, p + pos, n - pos, &status, final)
                finally:
                    self._busy = 0
                pos += k
                S.scan.base += k
                if status == ST_MORE:
                    break
                elif status == ST_LOCATE:
                    self._decide(S.pause_locate)
                elif status == ST_CALLBACK:
                    # between two messages: the book is whole, and not busy for the callback
                    L = S.pause_locate
                    self._callback(self._cb_symbol(L), self._books[L], int(S.pause_ts))
                else:
                    self.done = True
                    break
        finally:
            self._feeding = False
        return pos

    cdef int _raise_feeding(self, str what) except -1:
        # a call made while feed() is under way: from its callback, or from another thread
        # while feed() is between two runs (the callback, or a new locate's book being made)
        if PyThread_get_thread_ident() == self._feeder:
            raise BusyError(f"Replayer is busy: feed() is under way (its callback may read the "
                            f"books and the replayer, not {what})")
        raise BusyError("Replayer is busy: feed() is under way in another thread; one replayer "
                        "and its books are used by one thread at a time")

    @property
    def finished(self):
        """True once :meth:`finish` has run: the stream has ended, and ``feed()`` and
        ``finish()`` are refused. (``finish()`` may have consumed bytes that ``feed()`` kept
        back, so a per-chunk consumer can tell its last call apart.) O(1)."""
        return bool(self._finished)

    @property
    def bytes_consumed(self):
        """Bytes of the stream consumed so far, counted from its start:
        ``stats["bytes_consumed"]``, also while a call runs on one of the books in another
        thread (when :attr:`stats`, which reads the books, raises BusyError). A ``feed()``
        that raised (BusyError, its callback's exception) tells here where to resume, at
        once. O(1)."""
        return int(self.S.scan.base)

    def finish(self, tail=b"", stream_error=None):
        """End of the stream: the bytes left over (``tail``) are framed knowing that nothing
        follows them (a message found after a bad prefix may end the stream), and an
        incomplete last message is reported as truncated with its absolute offset;
        ``stream_error`` (why a compressed stream ended early) is reported there too, as
        ``truncated["stream"]``. Returns :attr:`stats`. Called from the ``callback`` (while
        ``feed()`` is under way) it raises BusyError, as ``feed()`` does there."""
        # the arguments first: their conversion runs Python code (and other threads, which may
        # start a feed()), and a refusal after it had ended the stream left it ended
        # the bytes of any buffer feed() takes: len() of a uint16 array counted its items,
        # half of its bytes
        tail = bytes(_byte_view(tail))
        why = None if stream_error is None else str(stream_error)
        if self._busy:
            mc_raise_busy("Replayer", self._busy)
        if self._feeding:
            # from the callback (or another thread): the stream ended there, and feed() went
            # on applying the rest of its buffer to a finished replayer
            self._raise_feeding("finish the stream")
        if self._finished:
            mc_raise_finished("Replayer", "finish")
        cdef const uint8_t[::1] view
        cdef int64_t n = len(tail), k
        if n and not self.done:
            view = tail
            k = self._run(view, 1)
            tail = bytes(view[k:])
            n -= k
        if n and not self.done:
            expected = None
            if n >= 3:
                length = itch_length(<uint8_t>tail[2])
                if self.S.scan.infer:
                    expected = 2 + length if length else None
                else:
                    expected = 2 + ((tail[0] << 8) | tail[1])
            self._truncated = {"offset": int(self.S.scan.base), "bytes": int(n),
                               "expected": expected}
        if why is not None and not self.done:
            if self._truncated is None:
                self._truncated = {"offset": int(self.S.scan.base), "bytes": 0, "expected": None}
            self._truncated["stream"] = why
        self._finished = True
        return self.stats

    cdef object _early_refs(self):
        # references of locates still undecided (no A/F/P/Q yet): unknown, in the count when
        # the filter keeps the locate by its name or number as they stand
        cdef int L
        cdef uint64_t n = 0
        if self.S.early_total == 0:     # the common case: no locate holds any
            return 0
        for L in range(65536):
            if self.S.loc[L].early_refs and L % self._part_n == self._part_k and (
                    _selects(self._filter, self._labelled, _name(&self.S.loc[L], L), L)):
                n += self.S.loc[L].early_refs
        return int(n)

    cdef _decide(self, int L):
        cdef locinfo* li = &self.S.loc[L]
        name = _name(li, L)
        self._first_names[L] = name
        keep = (L % self._part_n == self._part_k
                and _selects(self._filter, self._labelled, name, L))
        cdef OrderBook ob
        if keep:
            ob = OrderBook(capacity=self._capacity)
            ob._b.emit = 0
            mc_book_host(ob._b, &self._busy)
            li.book = ob._b
            self._books[L] = ob
            li.track = TRACK_BOOK
            self.S.deep_ahead = sk_many_books(self._books, ob)
            self.S.unknown_refs += li.early_refs
            self.S.early_total -= li.early_refs
            li.early_refs = 0
            li.cb = self._callback is not None and (
                _selects(self._cb_filter, self._cb_labelled, name, L))
            if self._callback is not None and self._bk_r == self.S.scan.counts[82]:
                # no stock directory message since the callback's names were taken: add this one
                key = name.strip()                    # as book_labels names it
                self._bk_name[L] = key
                self._bk_count[key] = self._bk_count.get(key, 0) + 1
        else:
            li.track = TRACK_IGNORED
            self.S.early_total -= li.early_refs
            li.early_refs = 0

    cdef str _cb_symbol(self, int L):
        # The callback's symbol for the book of locate L: its name, or its label NAME@locateN
        # while another book carries the name too (the replay summary's rule, book_labels), so
        # that two books of one name are told apart. Names change only by stock directory
        # messages once a locate has a book: taken again when one has arrived, O(books) then.
        cdef uint64_t n_r = self.S.scan.counts[82]
        cdef int K
        if n_r != self._bk_r:
            self._bk_name = {K: _name(&self.S.loc[K], K).strip() for K in self._books}
            self._bk_count = {}
            for n in self._bk_name.values():
                self._bk_count[n] = self._bk_count.get(n, 0) + 1
            self._bk_r = n_r
        name = self._bk_name[L]
        return name if self._bk_count[name] == 1 else f"{name}@locate{L}"

    # ---- results ----

    @property
    def sinks(self):
        """``{"tob": bool, "trades": bool, "l2": bool}``: which record sinks this replayer
        fills (``record_tob``, ``record_trades``, ``record_l2``), for a consumer such as a NATS
        publisher that needs one of them. O(1)."""
        return {"tob": bool(self.S.rec_tob), "trades": bool(self.S.rec_trades),
                "l2": bool(self.S.rec_l2)}

    @property
    def first_names(self):
        """{locate: name}: the name each locate had when its first order (A/F/P/Q) arrived,
        kept or not: the name ``symbols`` judged it by. A stock directory message may rename
        it later (:attr:`symbols` has the latest name). O(locates seen)."""
        if self._busy:
            mc_raise_busy("Replayer", self._busy)
        return dict(self._first_names)

    @property
    def books(self):
        """{locate: OrderBook}: the live books (replay mode; do not trade on them)."""
        return dict(self._books)

    @property
    def symbols(self):
        """{locate: name}: from stock directory messages (the latest), else from the first
        stock trading action message of that locate, else the stock field of its first
        order/trade message (A/F/P/Q), else the locate number; a trading action message that
        comes after that first order does not rename it. O(65,536 locates)."""
        if self._busy:
            mc_raise_busy("Replayer", self._busy)
        cdef int L
        out = {}
        for L in range(65536):
            if self.S.loc[L].has_name or self.S.loc[L].track:
                out[L] = _name(&self.S.loc[L], L)
        return out

    def book(self, symbol):
        """The book of a symbol name (or locate number, or ``NAME@locateN``, the label of one
        of the books of a name several locates carry); KeyError if it has none, ValueError for
        a name several books carry (naming their labels). A string is a name first: a number
        only when no book carries it as a name (with numeric stock codes, ``"5"`` is the stock
        named 5, whatever its locate; ``NAME@locate5`` is locate 5's book); written with
        leading zeros (``"007"``) or spaces around it (``" 7"``) it is the number it writes,
        as in ``symbols``; an int is a
        locate number; anything else (a float, a bool, bytes) raises TypeError. O(1) for a
        locate number; a name or label reads :attr:`symbols`, a pass over the 65,536 locates."""
        if self._busy:
            mc_raise_busy("Replayer", self._busy)
        symbol = book_symbol(symbol, "locate number")
        if isinstance(symbol, int):
            if symbol in self._books:
                return self._books[symbol]
            raise KeyError(f"no book for symbol {symbol!r}")
        names = self.symbols
        label = _LABEL.fullmatch(str(symbol))
        if label is not None:
            L = int(label.group(2))
            # the summary's labels take names without surrounding spaces (book_labels)
            if str(names.get(L)).strip() == label.group(1) and L in self._books:
                return self._books[L]
            raise KeyError(f"no book for symbol {symbol!r}")
        # by name first: the locate order decided before, so "5" was locate 5's book when its
        # number was lower than the locate of the stock named 5, and that stock's otherwise
        # (without surrounding spaces: " AAPL" and "AAPL" are two books of AAPL, as labelled)
        more = [K for K, n in names.items() if n.strip() == str(symbol).strip()
                and K in self._books]
        if len(more) > 1:
            # the first of them was returned: another book's orders under the name
            raise ValueError(
                f"symbol {symbol!r} is carried by locates {', '.join(map(str, more))}: ask "
                f"for one of {', '.join(f'{str(symbol).strip()}@locate{K}' for K in more)} "
                f"(or its locate number)")
        if more:
            return self._books[more[0]]
        # a number as symbols= reads one: with spaces around it too (" 7" kept locate 7, and
        # was no book here, where " AAPL" is AAPL's)
        number = plain_number(str(symbol).strip())
        if number.isascii() and number.isdigit() and int(number) in self._books:
            return self._books[int(number)]
        raise KeyError(f"no book for symbol {symbol!r}")

    @property
    def stats(self):
        """Counters: messages, counts by type, unknown types, bad length prefixes (offsets),
        bytes skipped, truncation, unknown order references (``unknown_refs_undecided`` of
        them in locates with no first order yet, which a rename can still leave out),
        clamped executions/cancels, duplicate references, invalid adds, invalid replaces (U
        with zero shares or price), invalid reductions (E/C/X of zero shares), invalid trades
        (P of a side other than B/S, of zero shares or at a zero price, Q of more shares than
        int64 holds: no trade record), open
        orders in the books, last exchange timestamp."""
        if self._busy:
            mc_raise_busy("Replayer", self._busy)
        cdef rp_state* S = self.S
        d = itch_scan_report(&S.scan)
        early = self._early_refs()
        d.update({
            "truncated": self._truncated,
            "unknown_refs": int(S.unknown_refs) + early,
            # the part of unknown_refs in locates with no first order yet: whether they are
            # kept is not known, and a rename can still leave them out of the count
            "unknown_refs_undecided": early,
            "executions_clamped": int(S.exec_clamped),
            "cancels_clamped": int(S.cancel_clamped),
            "duplicate_refs": int(S.dup_refs),
            "invalid_adds": int(S.invalid_adds),
            "invalid_replaces": int(S.invalid_replaces),
            "invalid_reductions": int(S.invalid_reductions),
            "invalid_trades": int(S.invalid_trades),
            "out_of_memory": int(S.nomem),
            "open_orders": sum(len(b) for b in self._books.values()),
            "books": len(self._books),
            "bytes_consumed": int(S.scan.base),
            "last_ts": int(S.last_ts),
        })
        return d

    @property
    def trading_state(self):
        """{locate: (state, reason, ts_ns)} from the latest stock trading action of each locate."""
        if self._busy:
            mc_raise_busy("Replayer", self._busy)
        cdef int L
        out = {}
        for L in range(65536):
            if self.S.loc[L].trading_state:
                # NUL padding, as stock names get from some feeds, is padding too
                out[L] = (chr(<uint8_t>self.S.loc[L].trading_state),
                          self.S.loc[L].reason[:4].decode("latin-1").replace("\x00", " ").strip(),
                          int(self.S.loc[L].state_ts))
        return out

    @property
    def system_events(self):
        """System event messages as an array of (ts, code)."""
        if self._busy:
            mc_raise_busy("Replayer", self._busy)
        return sk_records(&self.S.sysev, SYSTEM_EVENT_DTYPE, False)

    cdef object _records(self, rbuf* sink, dtype, clear):
        # the flag first: its conversion may run Python code, and another thread a feed()
        # meanwhile, which appends to the sink without the GIL
        cdef bint c_clear = mc_bool_arg(clear, "clear")
        if self._busy:
            mc_raise_busy("Replayer", self._busy)
        return sk_records(sink, dtype, c_clear)

    def tob(self, clear=False):
        """Top-of-book changes (``TOB_DTYPE``: ts, bid, bid_qty, ask, ask_qty, locate; 0 for an
        empty side), one record whenever a book's best price or qty changed. ``clear`` empties
        the sink after copying (for long streams)."""
        return self._records(&self.S.tob, TOB_DTYPE, clear)

    def trades(self, clear=False):
        """Trades (``TRADE_DTYPE``): kind E (execution at the resting order's price), C (execution
        at its own price; flag = printable), P (non-cross trade, hidden liquidity), Q (cross;
        flag = cross type). Shares are the executed (clamped) quantity."""
        return self._records(&self.S.trades, TRADE_DTYPE, clear)

    def l2(self, clear=False):
        """L2 changes (``L2_DTYPE``: ts, price, qty, orders, locate, side B/S), recorded with
        ``record_l2=True``: after every book change, one record per price level it touched with
        that level's new total qty and order count (0 and 0: the level is gone). A replace to
        another price gives two (the old level, then the new one), at the same price one (the
        level as the replace leaves it); an add, execution, cancel or delete one. Applying
        the records in order to an empty ``{(side, price): (qty, orders)}`` map (dropping qty 0)
        rebuilds every level of the book. ``clear`` empties the sink after copying."""
        return self._records(&self.S.l2, L2_DTYPE, clear)

    def symbol_stats(self):
        """Per-book counters as a ``SYMBOL_STATS_DTYPE`` array, one row per locate with a book
        (ascending): trade records (E, C, P, Q; counted whether or not the trade sink records
        them), traded volume (their shares, without executions marked non-printable, as the
        specification says: :func:`matchcore.itch.volume_mask`; held at 2**63 - 1, which only
        crosses of damaged share counts reach, rather than wrapping), open orders and visible levels
        per side. O(books).

        >>> import matchcore.itch as itch
        >>> r = itch.Replayer(); _ = r.feed(itch.generate(None, messages=3000, symbols=2, seed=1))
        >>> int(r.symbol_stats()["trades"].sum()) == len(r.trades())
        True
        """
        if self._busy:
            mc_raise_busy("Replayer", self._busy)
        cdef int64_t i = 0
        cdef locinfo* li
        cdef OrderBook ob
        out = np.zeros(len(self._books), dtype=SYMBOL_STATS_DTYPE)
        for L in sorted(self._books):
            li = &self.S.loc[<int>L]
            ob = self._books[L]
            out[i] = (L, li.n_trades, li.volume, mc_count(ob._b), mc_level_count(ob._b, MC_BUY),
                      mc_level_count(ob._b, MC_SELL))
            i += 1
        return out

    def snapshots(self, clear=False):
        """Depth snapshots (``snapshot_dtype(snapshot_depth)``): one record per book changed
        since its previous snapshot, every ``snapshot_every`` messages or at each
        ``snapshot_every_ns`` boundary of exchange time (stamped with the boundary)."""
        return self._records(&self.S.snaps, self._snap_dtype, clear)
