# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The multi-symbol engine: one book per integer symbol id, one order-id space, per-symbol limits.

Matching happens in the books (``matchcore._core``); this module only routes commands by symbol
or by order id, applies the per-symbol limits before a book sees an order, and gathers every
book's events in one buffer. The books write straight into that buffer: around each operation
the engine lends its buffer to the book (three fields swapped), so no event is copied twice. In
Engine.process(out=...) that buffer is the caller's array, as long as it has room.
"""

from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint8_t, INT64_MAX
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memmove
cimport cython

import numpy as np
cimport numpy as cnp

from matchcore._core cimport (
    OrderBook, mc_book, mc_event, mc_command, mc_submit, mc_market, mc_cancel, mc_modify,
    mc_get, mc_find, mc_count, mc_state_hash, mc_small_int, mc_filter_events_owner, mc_depth,
    MC_BUY, MC_SELL, MC_GTC, MC_IOC, MC_FOK, MC_EV_REJECTED, MC_CMD_SUBMIT, MC_CMD_MARKET,
    MC_CMD_CANCEL, MC_CMD_MODIFY, MC_ERR_NOMEM, MC_R_NONE, MC_R_INVALID_QTY, MC_R_INVALID_PRICE,
    MC_R_DUPLICATE_ORDER_ID, MC_R_ORDER_NOT_FOUND, MC_R_POST_ONLY_WOULD_CROSS,
    MC_R_INVALID_COMMAND, MC_R_UNKNOWN_SYMBOL, MC_R_PRICE_NOT_ON_TICK, MC_R_PRICE_OUTSIDE_BAND,
    MC_R_QTY_ABOVE_MAX, MC_R_NOTIONAL_ABOVE_MAX, MC_SNAP_E_CORRUPT,
    _i64_of, _u64_of, _cint_of, _u64_order_id, _u64_owner, _i64_price, _i64_qty, _i64_ts_ns,
    _cint_side, _cint_tif, _out_buffer, _commands_array, mc_result_block,
    _int_small, _int_value, mc_int_arg, mc_i64_arg, mc_stp_arg, mc_capacity_arg,
    mc_bool_arg, mc_flag_of, _ev_of,
)
from matchcore._map cimport (
    mc_map, _map_init, _map_find, _map_upsert, _map_probe, _map_erase_at, _map_prefetch,
)
from matchcore._core cimport mc_level, mc_order
from matchcore._core cimport (
    mc_raise_busy, mc_book_host, MC_BUSY_ENGINE, MC_BUSY_JOURNAL, MC_BUSY_QUERY,
    MC_GUARD_HOSTED, MC_BUSY_HELD, mc_hold_register, mc_hold_unregister, mc_held_by_me,
    mc_book_pickle_args, mc_book_held_state, mc_book_copy_into, mc_ev_bound,
    mc_deep_mode, mc_deep_timed, mc_ahead_order, mc_ahead_level,
    DEEP_ORDERS, DEEP_MIN_BATCH, DEEP_CHUNK, DEEP_EPOCH,
    DEEP_AHEAD_INDEX, DEEP_AHEAD_ORDER, DEEP_AHEAD_LEVEL, DEEP_RING,
)

cdef extern from "mc_clock.h" nogil:
    int64_t mc_tsc()
from matchcore.durability._journal cimport (
    JournalWriter, mc_journal, mc_journal_command, mc_journal_fills, mc_journal_commit,
)
from matchcore._handles cimport mc_handle_new, mc_handle_release, MC_H_ENGINE
from matchcore._core import (
    COMMAND_DTYPE, EVENT_DTYPE, OrderRejected, Reason, STP, OrderBook as _OrderBook,
    SnapshotError, _PICKLE_FORMAT, _check_pickle_format, _subclass_state, _set_subclass_state,
    _book_from_pickle, _HeldState,
)
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF

cnp.import_array()

# ----------------------------------------------------------------------------------------------
# engine
# ----------------------------------------------------------------------------------------------

cdef mc_engine* mc_engine_new() noexcept nogil:
    """An engine with no symbols; NULL when memory is exhausted."""
    cdef mc_engine* e = <mc_engine*>calloc(1, sizeof(mc_engine))
    if e == NULL:
        return NULL
    e.ev_cap = 1024
    e.emit = 1
    e.last_slot = -1
    e.ev = <mc_event*>malloc(e.ev_cap * sizeof(mc_event))
    if e.ev == NULL or _map_init(&e.sym_index, 8) < 0 or _map_init(&e.oid_index, 512) < 0:
        mc_engine_free(e)
        return NULL
    return e


cdef void mc_engine_free(mc_engine* e) noexcept nogil:
    """Free the engine (not its books: they belong to their owners)."""
    if e == NULL:
        return
    free(e.books)
    free(e.cfg)
    free(e.symbols)
    free(e.sym_index.tab)
    free(e.oid_index.tab)
    free(e.ev)
    free(e)


cdef int32_t mc_engine_slot(const mc_engine* e, uint32_t symbol) noexcept nogil:
    return _map_find(&e.sym_index, symbol)


cdef void mc_engine_set_emit(mc_engine* e, uint8_t emit) noexcept nogil:
    """Switch event recording of the engine and all its books (record_events)."""
    e.emit = emit
    cdef int32_t k
    for k in range(e.n_books):
        e.books[k].emit = emit


cdef mc_book* mc_engine_book(const mc_engine* e, uint32_t symbol) noexcept nogil:
    """The book of a symbol (NULL if unknown). Read it freely; enter orders only through the
    engine, or the engine's id routing will not know them."""
    cdef int32_t k = _map_find(&e.sym_index, symbol)
    return e.books[k] if k >= 0 else NULL


cdef int32_t mc_engine_add_book(mc_engine* e, uint32_t symbol, mc_book* b) noexcept nogil:
    """Register a book under a new symbol id; returns its slot, -1 if the id exists, -2 on
    memory exhaustion. Limits start disabled (tick 1)."""
    if _map_find(&e.sym_index, symbol) >= 0:
        return -1
    cdef int32_t cap
    cdef mc_book** p
    cdef mc_symbol_cfg* c
    cdef uint32_t* s
    if e.n_books == e.cap:
        cap = e.cap * 2 if e.cap > 0 else 8
        p = <mc_book**>realloc(e.books, cap * sizeof(mc_book*))
        if p == NULL:
            return -2
        e.books = p
        c = <mc_symbol_cfg*>realloc(e.cfg, cap * sizeof(mc_symbol_cfg))
        if c == NULL:
            return -2
        e.cfg = c
        s = <uint32_t*>realloc(e.symbols, cap * sizeof(uint32_t))
        if s == NULL:
            return -2
        e.symbols = s
        e.cap = cap
    if (e.sym_index.n + 1) * 2 > <int64_t>(e.sym_index.mask + 1) and _rehash(e, &e.sym_index, 0) < 0:
        return -2
    if e.n_books == 1 and _route_all(e) < 0:
        # the second book: from now on ids are routed (_routed), starting with the first
        # book's resting orders (one book holds no id twice: only memory can fail)
        return -2
    cdef int32_t k = e.n_books
    e.books[k] = b
    e.symbols[k] = symbol
    e.cfg[k].tick = 1
    e.cfg[k].min_price = 0
    e.cfg[k].max_price = 0
    e.cfg[k].ref_price = 0
    e.cfg[k].band = 0
    e.cfg[k].max_qty = 0
    e.cfg[k].max_notional = 0
    e.cfg[k].on = 0
    b.symbol = symbol
    b.emit = e.emit
    _map_upsert(&e.sym_index, symbol, k)
    e.last_symbol = symbol
    e.last_slot = k
    e.n_books += 1
    return k


# The fewest slots the order-id routing index is built with: the slots of its books' own id
# indexes together (each sized for its book's capacity), up to ROUTING_FLOOR_MAX (1 MiB of
# 16-byte slots). Sized only to the resting orders, the index runs a quarter to half full, and at
# that load its probes and deletions branch unpredictably: at 1k resting orders, with the books'
# capacity for the flow, stale_cancel ran at 30 ns/msg against 23 in a nearly empty one.
# The cap keeps an engine of many small books from paying for each book's index twice.
cdef enum:
    ROUTING_FLOOR_MAX = 1 << 16

cdef inline int64_t _routing_floor(const mc_engine* e) noexcept nogil:
    cdef int64_t n = 0
    cdef int32_t k
    for k in range(e.n_books):
        n += <int64_t>(e.books[k].index.mask + 1)
        if n >= ROUTING_FLOOR_MAX:
            return ROUTING_FLOOR_MAX
    return n


cdef inline int64_t _routing_want(const mc_engine* e, int64_t want) noexcept nogil:
    # _map_init's `want` for the routing index: `want`, or more for _routing_floor (_map_init
    # makes at least twice `want` slots)
    cdef int64_t floor = _routing_floor(e) // 2
    return want if want > floor else floor


cdef int _rehash(mc_engine* e, mc_map* m, bint live_orders_only) noexcept nogil:
    # Rebuild into a table at most a quarter full. For the order-id index, entries of orders
    # that no longer rest are dropped on the way: that is how stale entries are reclaimed, at a
    # cost amortised over the inserts that filled the table. An entry is kept only for an order
    # resting in its book, so the books' resting orders bound the entries kept: the table is
    # sized by that count instead of a first pass asking every entry's book.
    cdef mc_map old = m[0]
    cdef uint64_t i
    cdef int64_t live
    live = mc_engine_count(e) if live_orders_only else old.n
    if _map_init(m, _routing_want(e, (live + 1) * 2) if live_orders_only else (live + 1) * 2) < 0:
        m[0] = old
        return -1
    for i in range(old.mask + 1):
        if old.tab[i].val >= 0 and (not live_orders_only
                                    or mc_find(e.books[old.tab[i].val], old.tab[i].key) >= 0):
            _map_upsert(m, old.tab[i].key, old.tab[i].val)
    free(old.tab)
    return 0


cdef inline int _reserve(mc_engine* e, int64_t extra) noexcept nogil:
    # Room for every event the next operation can write, and for one more order-id entry, so
    # that nothing can fail once a book has been touched. Growth is out of line.
    if extra > _room_left(e):
        _settle(e)
        return _reserve_slow(e, extra)
    if (e.oid_index.n + 1) * 2 > <int64_t>(e.oid_index.mask + 1):
        return _rehash(e, &e.oid_index, 1)
    return 0


cdef int _reserve_slow(mc_engine* e, int64_t extra) noexcept nogil:
    cdef int64_t need, cap
    cdef mc_event* p
    if e.ev_borrowed == 1:
        # The caller's array (Engine.process) has too little room left for this operation: it
        # and the rest of its block go to the engine's own buffer (see _detour_end). The
        # caller's array is never grown.
        e.ev_dst_n = e.n_ev
        e.ev = e.ev_home
        e.n_ev = e.ev_home_n
        e.ev_cap = e.ev_home_cap
        e.ev_borrowed = 2
    need = e.n_ev + extra
    if need > e.ev_cap:
        cap = e.ev_cap * 2
        while cap < need:
            cap *= 2
        p = <mc_event*>realloc(e.ev, cap * sizeof(mc_event))
        if p == NULL:
            return -1
        e.ev = p
        e.ev_cap = cap
    if (e.oid_index.n + 1) * 2 > <int64_t>(e.oid_index.mask + 1):
        return _rehash(e, &e.oid_index, 1)
    return 0


cdef inline void _swap_events(mc_engine* e, mc_book* b) noexcept nogil:
    cdef mc_event* ev = b.ev
    cdef int64_t n = b.n_ev, cap = b.ev_cap
    b.ev = e.ev
    b.n_ev = e.n_ev
    b.ev_cap = e.ev_cap
    e.ev = ev
    e.n_ev = n
    e.ev_cap = cap


cdef inline void _give_back(mc_engine* e) noexcept nogil:
    # the book holding the engine's event buffer returns it (e.lent is set)
    _swap_events(e, e.lent)
    e.lent.ev_borrowed = 0
    e.lent = NULL


cdef inline void _settle(mc_engine* e) noexcept nogil:
    # the engine's event buffer back in the engine's own fields, wherever it was
    if e.lent != NULL:
        _give_back(e)


cdef inline void _lend(mc_engine* e, mc_book* b) noexcept nogil:
    # The book writes its events into the engine's buffer for an operation; _take_back ends
    # it. Marked borrowed, the book holds the buffer only to the room its order can use
    # (mc_ev_bound), which _reserve_order has made: it never grows or leaves the buffer. Within
    # a batch the book that last had it may still hold it: then nothing moves.
    if e.lent == b:
        return
    if e.lent != NULL:
        _give_back(e)
    _swap_events(e, b)
    b.ev_borrowed = 1
    e.lent = b


cdef inline void _take_back(mc_engine* e, mc_book* b) noexcept nogil:
    # The end of a book's operation. Outside a batch the buffer comes back now. Inside one
    # (e.lazy) it stays with the book: handing the three fields over and back around every
    # command chained each command's event count through four stores and loads of the same
    # words, and timed at 7 ns a command (a second pair around each cancel of stale_cancel
    # took it from 25.9 to 31.2 ns per command). What the engine writes itself meanwhile goes
    # through _room_left, _ev_push and _ev_last.
    if not e.lazy:
        _give_back(e)


cdef inline int64_t _room_left(const mc_engine* e) noexcept nogil:
    # free events in the engine's buffer, wherever it is
    if e.lent != NULL:
        return e.lent.ev_cap - e.lent.n_ev
    return e.ev_cap - e.n_ev


cdef inline mc_event* _ev_push(mc_engine* e) noexcept nogil:
    # the next event of the engine's buffer, wherever it is, counted (room made by _reserve)
    cdef mc_book* b = e.lent
    if b != NULL:
        b.n_ev += 1
        return &b.ev[b.n_ev - 1]
    e.n_ev += 1
    return &e.ev[e.n_ev - 1]


cdef inline mc_event* _ev_last(mc_engine* e) noexcept nogil:
    # the last event written to the engine's buffer, wherever it is
    if e.lent != NULL:
        return &e.lent.ev[e.lent.n_ev - 1]
    return &e.ev[e.n_ev - 1]


cdef inline int _reserve_order(mc_engine* e, const mc_book* b, int64_t qty,
                               uint64_t owner) noexcept nogil:
    # _reserve for an order of `qty` lots from `owner` in book b: room for the events it can
    # write, the bound the book itself holds a lent buffer to (mc_ev_bound: one per lot, at
    # most one per resting order). Room for one event per resting order, asked before, sent
    # every order on a deep book down the slow path: the engine's own buffer grew to hold an
    # event per resting order, and process(out=) wrote every block there and copied it over.
    cdef int64_t any_order = b.n_orders + 4
    if any_order <= _room_left(e):
        # room for any order in this book, the common case (as the book's own _room_ok)
        return _reserve(e, any_order)
    return _reserve(e, mc_ev_bound(b, qty, owner))


cdef inline void _reject(mc_engine* e, uint32_t symbol, uint64_t oid, int side, int64_t price,
                         int64_t qty, uint64_t owner, int reason) noexcept nogil:
    if not e.emit:
        return
    cdef mc_event* v = _ev_push(e)
    v.ts_ns = e.now_ns
    v.order_id = oid
    v.maker_id = 0
    v.price = price
    v.qty = qty
    v.owner = owner
    v.maker_owner = 0
    v.symbol = symbol
    v.kind = MC_EV_REJECTED
    v.side = <uint8_t>side
    v.reason = <uint8_t>reason
    v._pad = 0


cdef inline int _limits(const mc_symbol_cfg* c, int64_t price, int64_t qty) noexcept nogil:
    """The first per-symbol limit a (positive) price and qty break, or MC_R_NONE."""
    if c.tick > 1 and price % c.tick != 0:
        return MC_R_PRICE_NOT_ON_TICK
    if (c.min_price > 0 and price < c.min_price) or (c.max_price > 0 and price > c.max_price):
        return MC_R_PRICE_OUTSIDE_BAND
    # |price - ref_price| > band, as differences: both prices are in [1, 2**63), so these never
    # overflow, where ref_price + band can (and then refused every price)
    if c.band > 0 and c.ref_price > 0 and (c.ref_price - price > c.band
                                           or price - c.ref_price > c.band):
        return MC_R_PRICE_OUTSIDE_BAND
    if c.max_qty > 0 and qty > c.max_qty:
        return MC_R_QTY_ABOVE_MAX
    # price * qty > max_notional, without overflowing
    if c.max_notional > 0 and qty > c.max_notional // price:
        return MC_R_NOTIONAL_ABOVE_MAX
    return MC_R_NONE


cdef inline uint8_t _cfg_on(const mc_symbol_cfg* c) noexcept nogil:
    # whether _limits can refuse anything (mc_symbol_cfg.on); set after every change of c
    return (c.tick > 1 or c.min_price > 0 or c.max_price > 0 or (c.band > 0 and c.ref_price > 0)
            or c.max_qty > 0 or c.max_notional > 0)


cdef inline bint _routed(const mc_engine* e) noexcept nogil:
    # Whether the order-id routing index is kept: with two books or more. An engine of one book
    # asks that book, whose own id index answers what the routing would (where an id rests, a
    # duplicate); its index then stays empty, and is built from the book when a second symbol
    # is added (mc_engine_add_book). Symbols are never removed, so this never turns back.
    return e.n_books > 1


cdef inline int32_t _route(const mc_engine* e, uint64_t oid) noexcept nogil:
    # The slot of the book an id may rest in, to be asked (-1: none). The index may hold stale
    # entries (orders that have left); the book itself is the authority.
    if _routed(e):
        return _map_find(&e.oid_index, oid)
    return 0 if e.n_books == 1 else -1


cdef inline int32_t _resting_slot(const mc_engine* e, uint64_t oid) noexcept nogil:
    """Slot of the book the order rests in, or -1."""
    cdef int32_t k = _route(e, oid)
    if k >= 0 and mc_find(e.books[k], oid) >= 0:
        return k
    return -1


cdef void mc_engine_set_time(mc_engine* e, int64_t ts_ns) noexcept nogil:
    """Timestamp (ns) stamped into the events of the following operations."""
    e.now_ns = ts_ns


cdef int64_t mc_engine_submit(mc_engine* e, uint32_t symbol, uint64_t oid, int side, int64_t price,
                              int64_t qty, int tif, uint64_t owner, int post_only) noexcept nogil:
    """Limit order on a symbol: the book's checks and matching, with the symbol's limits checked
    after the basic field checks and before the duplicate-id check (which spans all symbols).
    Returns the qty executed now, or -reason."""
    return _engine_submit(e, _map_find(&e.sym_index, symbol), symbol, oid, side, price, qty, tif,
                          owner, post_only)


cdef inline int64_t _engine_submit(mc_engine* e, int32_t k, uint32_t symbol, uint64_t oid,
                                   int side, int64_t price, int64_t qty, int tif, uint64_t owner,
                                   int post_only) noexcept nogil:
    # mc_engine_submit with the symbol's slot k already looked up (-1: unknown symbol); inline
    # in the batch loop, as cancel and modify are
    cdef mc_book* b
    cdef int reason = MC_R_NONE
    cdef int64_t r
    if k < 0:
        if _reserve(e, 1) < 0:
            return -MC_ERR_NOMEM
        _reject(e, symbol, oid, side & 0xFF, price, qty, owner, MC_R_UNKNOWN_SYMBOL)
        return -MC_R_UNKNOWN_SYMBOL
    b = e.books[k]
    if _reserve_order(e, b, qty, owner) < 0:
        return -MC_ERR_NOMEM
    if (qty > 0 and price > 0 and (side == MC_BUY or side == MC_SELL)
            and (tif == MC_GTC or tif == MC_IOC or tif == MC_FOK)):
        if e.cfg[k].on:
            reason = _limits(&e.cfg[k], price, qty)
        if reason == MC_R_NONE and _routed(e):
            # an id resting in another book (in its own, the book's check finds it)
            r = _resting_slot(e, oid)
            if r >= 0 and r != k:
                reason = MC_R_DUPLICATE_ORDER_ID
    if reason != MC_R_NONE:
        _reject(e, symbol, oid, side, price, qty, owner, reason)
        return -reason
    b.now_ns = e.now_ns
    _lend(e, b)
    r = mc_submit(b, oid, side, price, qty, tif, owner, post_only)
    _take_back(e, b)
    if tif == MC_GTC and 0 <= r < qty and _routed(e):
        # A GTC order left with open qty rests, apart from one a self-trade stop cancelled: its
        # entry is then stale from the start, which the index allows (the book is asked before
        # an entry is believed), so the book need not be asked here.
        _map_upsert(&e.oid_index, oid, k)
    return r


cdef int64_t mc_engine_market(mc_engine* e, uint32_t symbol, uint64_t oid, int side, int64_t qty,
                              uint64_t owner) noexcept nogil:
    """Market order on a symbol (max qty applies; it has no price, so no price or notional
    limit). Returns the qty executed, or -reason."""
    return _engine_market(e, _map_find(&e.sym_index, symbol), symbol, oid, side, qty, owner)


cdef int64_t _engine_market(mc_engine* e, int32_t k, uint32_t symbol, uint64_t oid, int side,
                            int64_t qty, uint64_t owner) noexcept nogil:
    # mc_engine_market with the symbol's slot k already looked up (-1: unknown symbol)
    cdef mc_book* b
    cdef int reason = MC_R_NONE
    cdef int64_t r
    if k < 0:
        if _reserve(e, 1) < 0:
            return -MC_ERR_NOMEM
        _reject(e, symbol, oid, side & 0xFF, 0, qty, owner, MC_R_UNKNOWN_SYMBOL)
        return -MC_R_UNKNOWN_SYMBOL
    b = e.books[k]
    if _reserve_order(e, b, qty, owner) < 0:
        return -MC_ERR_NOMEM
    if qty > 0 and (side == MC_BUY or side == MC_SELL):
        if e.cfg[k].max_qty > 0 and qty > e.cfg[k].max_qty:
            reason = MC_R_QTY_ABOVE_MAX
        elif _routed(e):
            r = _resting_slot(e, oid)
            if r >= 0 and r != k:
                reason = MC_R_DUPLICATE_ORDER_ID
    if reason != MC_R_NONE:
        _reject(e, symbol, oid, side, 0, qty, owner, reason)
        return -reason
    b.now_ns = e.now_ns
    _lend(e, b)
    r = mc_market(b, oid, side, qty, owner)
    _take_back(e, b)
    return r


cdef int64_t mc_engine_cancel(mc_engine* e, uint32_t symbol, uint64_t oid) noexcept nogil:
    """Cancel by order id in whichever book it rests. `symbol` is only echoed in the REJECTED
    event when the id rests nowhere. Returns the open qty removed, or -reason."""
    return _engine_cancel(e, symbol, oid)


cdef inline int64_t _engine_cancel(mc_engine* e, uint32_t symbol, uint64_t oid) noexcept nogil:
    # mc_engine_cancel's body, inlined into the batch loop (a call and its register saves less)
    if _reserve(e, 1) < 0:             # first: it may rebuild the index probed below
        return -MC_ERR_NOMEM
    cdef bint routed = _routed(e)
    cdef uint64_t pos = 0
    cdef int32_t k
    cdef mc_book* b
    cdef int64_t r
    if routed:
        pos = _map_probe(&e.oid_index, oid)
        k = e.oid_index.tab[pos].val
    else:
        k = 0 if e.n_books == 1 else -1
    if k < 0:
        _reject(e, symbol, oid, 0, 0, 0, 0, MC_R_ORDER_NOT_FOUND)
        return -MC_R_ORDER_NOT_FOUND
    # The book is asked straight away, without checking first that the entry is not stale:
    # its own lookup answers both, and the entry goes either way (the order has left the book
    # now, or had left it before).
    b = e.books[k]
    b.now_ns = e.now_ns
    _lend(e, b)
    r = mc_cancel(b, oid)
    _take_back(e, b)
    if r == -MC_ERR_NOMEM:
        return r
    if routed:
        _map_erase_at(&e.oid_index, pos)
    if r == -MC_R_ORDER_NOT_FOUND and e.emit:
        # the book wrote the engine's reject but with its own symbol: an id that rests nowhere
        # is echoed with the command's
        _ev_last(e).symbol = symbol
    return r


cdef int64_t mc_engine_modify(mc_engine* e, uint32_t symbol, uint64_t oid, int64_t qty,
                              int64_t price) noexcept nogil:
    """Modify by order id (price 0 keeps it). A modify that re-enters the order (new price or a
    larger qty) must pass the symbol's limits; shrinking in place always passes. `symbol` is
    only echoed when the id rests nowhere. Returns the qty executed on re-entry, or -reason."""
    return _engine_modify(e, symbol, oid, qty, price)


cdef inline int64_t _engine_modify(mc_engine* e, uint32_t symbol, uint64_t oid, int64_t qty,
                                   int64_t price) noexcept nogil:
    # mc_engine_modify's body, inlined into the batch loop (a call and its register saves less
    # per modify); what the engine checks itself is out of line
    cdef int32_t k = _route(e, oid)
    cdef mc_book* b
    cdef int64_t r
    if k >= 0 and qty > 0 and price >= 0 and not e.cfg[k].on:
        # Nothing for the engine to check: the book looks the order up itself. An entry that
        # is stale (the order has left) makes the book reject it, as the engine would, but
        # with the book's symbol: an id that rests nowhere is echoed with the command's.
        b = e.books[k]
        # (the order's owner is not read here: room for any owner's)
        if _reserve_order(e, b, qty, 1) < 0:
            return -MC_ERR_NOMEM
        b.now_ns = e.now_ns
        _lend(e, b)
        r = mc_modify(b, oid, qty, price)
        _take_back(e, b)
        if r == -MC_R_ORDER_NOT_FOUND and e.emit:
            _ev_last(e).symbol = symbol
        return r
    return _engine_modify_checked(e, k, symbol, oid, qty, price)


cdef int64_t _engine_modify_checked(mc_engine* e, int32_t k, uint32_t symbol, uint64_t oid,
                                    int64_t qty, int64_t price) noexcept nogil:
    # _engine_modify for a symbol with limits, an id the engine does not route or bad fields;
    # k: the id's routing entry (-1: none)
    cdef int32_t idx
    cdef mc_book* b
    cdef const mc_order* o
    cdef int reason = MC_R_NONE
    cdef int64_t new_price, r
    # The order's slot in its book, found once: its price, qty and owner are read from it.
    idx = mc_find(e.books[k], oid) if k >= 0 else -1
    if idx < 0:
        if _reserve(e, 1) < 0:
            return -MC_ERR_NOMEM
        # The book's own order of checks: qty, then price, then existence.
        reason = (MC_R_INVALID_QTY if qty <= 0 else
                  MC_R_INVALID_PRICE if price < 0 else MC_R_ORDER_NOT_FOUND)
        _reject(e, symbol, oid, 0, price, qty, 0, reason)
        return -reason
    b = e.books[k]
    if _reserve_order(e, b, qty, b.orders[idx].owner) < 0:
        return -MC_ERR_NOMEM
    if qty > 0 and price >= 0:
        # (the reserve above may rebuild the engine's index, never a book: idx still holds)
        o = &b.orders[idx]
        new_price = price if price != 0 else o.price
        if new_price != o.price or qty > o.qty:
            reason = _limits(&e.cfg[k], new_price, qty)
        if reason != MC_R_NONE:
            _reject(e, e.symbols[k], oid, o.side, new_price, qty, o.owner, reason)
            return -reason
    b.now_ns = e.now_ns
    _lend(e, b)
    r = mc_modify(b, oid, qty, price)
    _take_back(e, b)
    return r


cdef int64_t mc_engine_apply(mc_engine* e, const mc_command* c) noexcept nogil:
    """One command record (its `symbol` picks the book for SUBMIT and MARKET)."""
    return _engine_apply(e, c, _map_find(&e.sym_index, c.symbol)
                         if c.kind == MC_CMD_SUBMIT or c.kind == MC_CMD_MARKET else -1)


cdef inline int64_t _engine_apply(mc_engine* e, const mc_command* c, int32_t k) noexcept nogil:
    # mc_engine_apply with the slot k of the command's symbol already looked up (used by SUBMIT
    # and MARKET only)
    e.now_ns = c.ts_ns
    if c.kind == MC_CMD_SUBMIT:
        return _engine_submit(e, k, c.symbol, c.order_id, c.side, c.price, c.qty, c.tif, c.owner,
                              c.post_only)
    elif c.kind == MC_CMD_MARKET:
        return _engine_market(e, k, c.symbol, c.order_id, c.side, c.qty, c.owner)
    elif c.kind == MC_CMD_CANCEL:
        return _engine_cancel(e, c.symbol, c.order_id)
    elif c.kind == MC_CMD_MODIFY:
        return _engine_modify(e, c.symbol, c.order_id, c.qty, c.price)
    if _reserve(e, 1) < 0:
        return -MC_ERR_NOMEM
    _reject(e, c.symbol, c.order_id, c.side, c.price, c.qty, c.owner, MC_R_INVALID_COMMAND)
    return -MC_R_INVALID_COMMAND


# How many commands ahead mc_engine_process asks for the id-index lines of a command (as
# mc_process does for one book): the engine's own line for the id and the line of the book its
# symbol names. A fresh block of ids lands on lines of both tables not touched since they were
# made (a book's index is sized for its capacity), and without this the engine waited on both.
# The symbol's slot found for that is kept for when the command runs (RING > AHEAD, a power of 2).
# 8 rather than 4 (as PREFETCH_AHEAD): the touch flows ran 5-10% faster at 1k and 1M orders.
cdef enum:
    ENGINE_PREFETCH_AHEAD = 8
    ENGINE_RING = DEEP_RING       # > DEEP_AHEAD_INDEX: the deep loop's stages read it too

cdef inline int32_t _engine_look_ahead(mc_engine* e, const mc_command* c) noexcept nogil:
    cdef int32_t k
    if c.symbol == e.last_symbol:
        k = e.last_slot
    else:
        k = _map_find(&e.sym_index, c.symbol)
        e.last_symbol = c.symbol
        e.last_slot = k
    if _routed(e):
        _map_prefetch(&e.oid_index, c.order_id)
    if k >= 0:
        _map_prefetch(&e.books[k].index, c.order_id)
    return k

cdef inline void _engine_prime(mc_engine* e, const mc_command* cmds, int64_t n,
                               int32_t* ring) noexcept nogil:
    # the look-ahead of a batch's first commands, before the first of them runs
    cdef int64_t i
    for i in range(ENGINE_PREFETCH_AHEAD if ENGINE_PREFETCH_AHEAD < n else n):
        ring[i] = _engine_look_ahead(e, &cmds[i])

cdef inline void _engine_deep_prime(mc_engine* e, const mc_command* cmds, int64_t lo, int64_t n,
                                    int32_t* ring, int32_t* found) noexcept nogil:
    # The start of a deep run at command lo: the books of the commands up to DEEP_AHEAD_INDEX
    # ahead (a simple loop before filled the ring only to lo + ENGINE_PREFETCH_AHEAD - 1, and
    # from here on the deep loop fills it DEEP_AHEAD_INDEX ahead instead), and no order
    # known yet (those found before belong to commands of an earlier deep run: a guess made
    # for another book could lie outside this one's pool).
    cdef int64_t j
    cdef int k
    for k in range(ENGINE_RING):
        found[k] = -1
    for j in range(lo + ENGINE_PREFETCH_AHEAD,
                   lo + DEEP_AHEAD_INDEX if lo + DEEP_AHEAD_INDEX < n else n):
        ring[j & (ENGINE_RING - 1)] = _engine_look_ahead(e, &cmds[j])

cdef inline void _engine_ahead_deep(mc_engine* e, const mc_command* cmds, int64_t i, int64_t n,
                                    int32_t* ring, int32_t* found) noexcept nogil:
    # The deep loop's stages for the commands after command i (see mc_process's deep loop):
    # DEEP_AHEAD_INDEX ahead the id's index lines (the command's book, found then, kept in
    # ring), DEEP_AHEAD_ORDER ahead the order, DEEP_AHEAD_LEVEL ahead its level, neighbours
    # and a reprice's new level.
    cdef int32_t k
    cdef int64_t j = i + DEEP_AHEAD_INDEX
    if j < n:
        ring[j & (ENGINE_RING - 1)] = _engine_look_ahead(e, &cmds[j])
    j = i + DEEP_AHEAD_ORDER
    if j < n:
        k = ring[j & (ENGINE_RING - 1)]
        found[j & (ENGINE_RING - 1)] = mc_ahead_order(e.books[k], &cmds[j]) if k >= 0 else -1
    j = i + DEEP_AHEAD_LEVEL
    if j < n:
        k = ring[j & (ENGINE_RING - 1)]
        if k >= 0:
            mc_ahead_level(e.books[k], &cmds[j], found[j & (ENGINE_RING - 1)])

cdef inline int64_t _engine_run(mc_engine* e, const mc_command* cmds, int64_t lo, int64_t hi,
                                int64_t n, int32_t* ring) noexcept nogil:
    # Apply commands lo..hi-1 of the batch cmds[0:n], looking ahead across the whole batch;
    # returns hi, or the command that ran out of memory.
    # A book keeps the engine's event buffer from one command to the next (e.lazy, see
    # _take_back) and gives it back before this returns.
    cdef int64_t i
    e.lazy = 1
    for i in range(lo, hi):
        if i + ENGINE_PREFETCH_AHEAD < n:
            ring[(i + ENGINE_PREFETCH_AHEAD) & (ENGINE_RING - 1)] = _engine_look_ahead(
                e, &cmds[i + ENGINE_PREFETCH_AHEAD])
        if _engine_apply(e, &cmds[i], ring[i & (ENGINE_RING - 1)]) == -MC_ERR_NOMEM:
            hi = i
            break
    _settle(e)
    e.lazy = 0
    return hi

cdef int64_t _engine_run_deep(mc_engine* e, const mc_command* cmds, int64_t lo, int64_t hi,
                              int64_t n, int32_t* ring, int32_t* found) noexcept nogil:
    # _engine_run that also looks ahead through the books (_engine_ahead_deep). Its own
    # function: a flag in _engine_run cost that loop about 8% on the touch workloads.
    cdef int64_t i
    _engine_deep_prime(e, cmds, lo, n, ring, found)
    e.lazy = 1
    for i in range(lo, hi):
        _engine_ahead_deep(e, cmds, i, n, ring, found)
        if _engine_apply(e, &cmds[i], ring[i & (ENGINE_RING - 1)]) == -MC_ERR_NOMEM:
            hi = i
            break
    _settle(e)
    e.lazy = 0
    return hi

cdef int64_t _engine_orders(const mc_engine* e) noexcept nogil:
    cdef int64_t t = 0
    cdef int32_t k
    for k in range(e.n_books):
        t += e.books[k].n_orders
    return t

cdef inline int64_t _engine_part(mc_engine* e, const mc_command* cmds, int64_t lo, int64_t hi,
                                 int64_t n, int32_t* ring, int32_t* found,
                                 bint big) noexcept nogil:
    # _engine_run of one part of a batch: on big books (_engine_big) in the loop mc_deep_mode
    # chooses, timed when it asks
    if not big:
        return _engine_run(e, cmds, lo, hi, n, ring)
    cdef int mode = mc_deep_mode(&e.deep)
    cdef int64_t t0 = mc_tsc() if mode & 2 else 0
    cdef int64_t r
    if mode & 1:
        r = _engine_run_deep(e, cmds, lo, hi, n, ring, found)
    else:
        r = _engine_run(e, cmds, lo, hi, n, ring)
    if mode & 2:
        mc_deep_timed(&e.deep, mode, mc_tsc() - t0)
    return r

cdef inline bint _engine_big(const mc_engine* e, int64_t n) noexcept nogil:
    return n >= DEEP_MIN_BATCH and _engine_orders(e) >= DEEP_ORDERS

cdef int64_t mc_engine_process(mc_engine* e, const mc_command* cmds, int64_t n) noexcept nogil:
    """Apply n commands in order; returns how many were applied (n unless memory ran out)."""
    cdef int32_t ring[ENGINE_RING]
    cdef int32_t found[ENGINE_RING]
    cdef int64_t i = 0, m, done
    cdef bint big = _engine_big(e, n)
    _engine_prime(e, cmds, n, ring)
    if not big:
        return _engine_run(e, cmds, 0, n, n, ring)
    while i < n:
        m = DEEP_CHUNK if n - i > DEEP_CHUNK else n - i
        done = _engine_part(e, cmds, i, i + m, n, ring, found, 1) - i
        i += done
        if done < m:
            break
    return i


# Engine.process(out=...) lends the caller's array to the engine as its event buffer, so the
# books write the events where the caller reads them. An operation that may write more events
# than the array has room left for (an order's bound is one per resting order) runs with the rest
# of its block of commands in the engine's own buffer instead; at the block's end those events
# are moved into the caller's array if they fit, and the array is written again. A block whose
# events do not fit leaves them, and all later ones, in the engine's own buffer. Blocks are short
# so that a deep book, whose bound never fits, moves its events while they are still in the
# first-level cache and the engine's own buffer stays small instead of growing with the batch.
cdef enum:
    OUT_BLOCK = 128

cdef void _detour_end(mc_engine* e, mc_event* dst, int64_t cap) noexcept nogil:
    # the end of a block that went to the engine's own buffer (ev_borrowed == 2)
    cdef int64_t k = e.n_ev - e.ev_home_n
    e.ev_home = e.ev
    e.ev_home_cap = e.ev_cap
    if e.ev_dst_n + k <= cap:
        memcpy(dst + e.ev_dst_n, e.ev + e.ev_home_n, k * sizeof(mc_event))
        e.ev_dst_n += k
        e.ev = dst
        e.n_ev = e.ev_dst_n
        e.ev_cap = cap
        e.ev_borrowed = 1
    else:
        e.ev_borrowed = 0

cdef int64_t _engine_process_into(mc_engine* e, const mc_command* cmds, int64_t n, mc_event* dst,
                                  int64_t cap, int64_t start, int64_t* copied) noexcept nogil:
    # mc_engine_process writing the events into dst[0:cap] (see above); the engine's own
    # buffer holds `start` pending events. *copied: how many are in dst; the events that did
    # not fit are in the engine's buffer from `start` on. Returns how many commands were
    # applied (n unless memory ran out).
    cdef int64_t i = 0, m, done
    cdef int32_t ring[ENGINE_RING]
    cdef int32_t found[ENGINE_RING]
    cdef bint big = _engine_big(e, n)
    e.ev_home = e.ev
    e.ev_home_n = start
    e.ev_home_cap = e.ev_cap
    e.ev_dst_n = 0
    e.ev = dst
    e.n_ev = 0
    e.ev_cap = cap
    e.ev_borrowed = 1
    _engine_prime(e, cmds, n, ring)
    while i < n:
        m = OUT_BLOCK if n - i > OUT_BLOCK else n - i
        done = _engine_part(e, cmds, i, i + m, n, ring, found, big) - i
        if e.ev_borrowed == 2:
            _detour_end(e, dst, cap)
        i += done
        if done < m:
            break
    if e.ev_borrowed == 1:
        e.ev_dst_n = e.n_ev
        e.ev = e.ev_home
        e.n_ev = start
        e.ev_cap = e.ev_home_cap
        e.ev_borrowed = 0
    e.ev_home = NULL
    copied[0] = e.ev_dst_n
    return i


cdef int mc_engine_get(const mc_engine* e, uint64_t oid, uint32_t* symbol, int* side,
                       int64_t* price, int64_t* qty) noexcept nogil:
    """1 and (symbol, side, price, open qty) of a resting order, or 0."""
    cdef int32_t k = _resting_slot(e, oid)
    if k < 0:
        return 0
    symbol[0] = e.symbols[k]
    return mc_get(e.books[k], oid, side, price, qty)


cdef int64_t mc_engine_count(const mc_engine* e) noexcept nogil:
    cdef int64_t n = 0
    cdef int32_t k
    for k in range(e.n_books):
        n += mc_count(e.books[k])
    return n


cdef inline uint64_t _hmix(uint64_t h, uint64_t v) noexcept nogil:
    h = (h ^ v) * <uint64_t>0x100000001b3
    return h ^ (h >> 29)


cdef uint64_t mc_engine_state_hash(const mc_engine* e) noexcept nogil:
    """Hash over every symbol (in the order added), its limits and its book's state hash (every
    level and order in queue order), and the symbol names."""
    cdef uint64_t h = <uint64_t>1469598103934665603
    cdef int32_t k
    cdef const mc_symbol_cfg* c
    for k in range(e.n_books):
        h = _hmix(h, e.symbols[k])
        c = &e.cfg[k]
        h = _hmix(h, <uint64_t>c.tick)
        h = _hmix(h, <uint64_t>c.min_price)
        h = _hmix(h, <uint64_t>c.max_price)
        h = _hmix(h, <uint64_t>c.ref_price)
        h = _hmix(h, <uint64_t>c.band)
        h = _hmix(h, <uint64_t>c.max_qty)
        h = _hmix(h, <uint64_t>c.max_notional)
        h = _hmix(h, mc_state_hash(e.books[k]))
    return _hmix(h, e.names_hash)


cdef int mc_engine_reindex(mc_engine* e) noexcept nogil:
    """Rebuild the order-id routing from the books (after books were restored in place from
    snapshots): every resting order maps to its book's slot. 0, or -1 on memory exhaustion
    (routing unchanged), -2 if an order id rests in two books (routing unchanged). An engine of
    one book keeps no routing (_routed): its index is emptied."""
    cdef mc_map fresh
    if not _routed(e):
        if _map_init(&fresh, 256) < 0:
            return -1
        free(e.oid_index.tab)
        e.oid_index = fresh
        return 0
    return _route_all(e)


cdef int _route_all(mc_engine* e) noexcept nogil:
    # mc_engine_reindex's rebuild, over every book (also with one: mc_engine_add_book)
    cdef int64_t total = mc_engine_count(e)
    cdef mc_map fresh
    cdef int32_t k, i, idx
    cdef int s
    cdef const mc_book* b
    if _map_init(&fresh, _routing_want(e, (total + 1) * 4)) < 0:
        return -1
    for k in range(e.n_books):
        b = e.books[k]
        for s in range(2):
            for i in range(b.side[s].n):
                idx = b.levels[b.side[s].lv[i]].head
                while idx >= 0:
                    if _map_find(&fresh, b.orders[idx].oid) >= 0:
                        free(fresh.tab)
                        return -2
                    _map_upsert(&fresh, b.orders[idx].oid, k)
                    idx = b.orders[idx].next
    free(e.oid_index.tab)
    e.oid_index = fresh
    return 0


cdef int64_t _apply_journaled(mc_engine* e, mc_journal* jc, mc_journal* jt,
                              const mc_command* c) noexcept nogil:
    # One command through the engine, then its record (with the outcome, which replay checks)
    # and its fills into the journals' buffers. A command that ran out of memory changed
    # nothing and is not journaled. An I/O failure leaves jc.err / jt.err set.
    cdef int64_t start = e.n_ev
    cdef int64_t r = mc_engine_apply(e, c)
    if r == -MC_ERR_NOMEM:
        return r
    cdef uint64_t seq = jc.next_seq
    mc_journal_command(jc, c, r)
    if jt != NULL:
        mc_journal_fills(jt, seq, &e.ev[start], e.n_ev - start, jc)
    return r


cdef inline uint64_t _writes_seen(const mc_journal* jc, const mc_journal* jt) noexcept nogil:
    # the seqs last handed to write(2) by either journal: a change means a chunk made a write
    cdef uint64_t w = 0
    if jc != NULL:
        w += jc.written_seq
    if jt != NULL:
        w += jt.written_seq
    return w


cdef int64_t _journaled_run(mc_engine* e, mc_journal* jc, mc_journal* jt,
                            const mc_command* cmds, const uint64_t* seqs, const int64_t* results,
                            int64_t lo, int64_t hi, int64_t n, uint64_t trades_from,
                            int32_t* ring, int32_t* found, bint deep,
                            int64_t* got) noexcept nogil:
    # Commands lo..hi-1 of cmds[0:n], looking ahead across the whole batch (through the books
    # too when deep, as _engine_run_deep). jc != NULL: journal each one (_apply_journaled);
    # else recovery: check each outcome against results[i], write the fills of seqs from
    # trades_from on into jt, drop the events. Returns hi, or the first command that ran out
    # of memory, failed to journal or (recovery) came out differently (its outcome in *got:
    # -MC_ERR_NOMEM, never journaled, when memory ran out). One function with a
    # flag, where the unjournaled loops have two: a journaled command costs several times an
    # unjournaled one, and the flag's branch is lost in it.
    cdef int64_t i, start, r
    if deep:
        _engine_deep_prime(e, cmds, lo, n, ring, found)
    for i in range(lo, hi):
        if deep:
            _engine_ahead_deep(e, cmds, i, n, ring, found)
        elif i + ENGINE_PREFETCH_AHEAD < n:
            ring[(i + ENGINE_PREFETCH_AHEAD) & (ENGINE_RING - 1)] = _engine_look_ahead(
                e, &cmds[i + ENGINE_PREFETCH_AHEAD])
        if jc != NULL:
            if _apply_journaled(e, jc, jt, &cmds[i]) == -MC_ERR_NOMEM or jc.err != 0:
                return i
            continue
        start = e.n_ev
        r = mc_engine_apply(e, &cmds[i])
        if r != results[i]:
            e.n_ev = start
            got[0] = r
            return i
        if jt != NULL and seqs[i] >= trades_from:
            mc_journal_fills(jt, seqs[i], &e.ev[start], e.n_ev - start, NULL)
        e.n_ev = start
    return hi


cdef int64_t _journaled_loop(mc_engine* e, mc_journal* jc, mc_journal* jt,
                             const mc_command* cmds, const uint64_t* seqs, const int64_t* results,
                             int64_t n, uint64_t trades_from, int64_t* got) noexcept nogil:
    # _journaled_run over a batch: on big books (_engine_big) in chunks, each in the loop
    # mc_deep_mode chooses, as mc_engine_process does. Whether the books are big is asked again
    # every DEEP_CHUNK * DEEP_EPOCH commands until they are: recovery replays a whole journal
    # segment in one call, starting from a snapshot's books or from none. A timed chunk in
    # which a journal handed its buffer to write(2) (a copy of up to a megabyte into the page
    # cache, worth many chunks of commands) would decide the trial for the other loop: the
    # next chunk runs in the same loop instead, up to twice before such a chunk counts.
    cdef int32_t ring[ENGINE_RING]
    cdef int32_t found[ENGINE_RING]
    cdef int64_t i = 0, m, r, t0
    cdef uint64_t w0
    cdef int mode, retimed = 0
    _engine_prime(e, cmds, n, ring)
    while i < n and not _engine_big(e, n - i):
        m = DEEP_CHUNK * DEEP_EPOCH if n - i > DEEP_CHUNK * DEEP_EPOCH else n - i
        r = _journaled_run(e, jc, jt, cmds, seqs, results, i, i + m, n, trades_from, ring,
                           found, 0, got)
        if r < i + m:
            return r
        i = r
    while i < n:
        m = DEEP_CHUNK if n - i > DEEP_CHUNK else n - i
        mode = mc_deep_mode(&e.deep)
        w0 = _writes_seen(jc, jt)
        t0 = mc_tsc() if mode & 2 else 0
        r = _journaled_run(e, jc, jt, cmds, seqs, results, i, i + m, n, trades_from, ring,
                           found, mode & 1, got)
        if mode & 2:
            t0 = mc_tsc() - t0
            if _writes_seen(jc, jt) == w0 or retimed == 2:
                mc_deep_timed(&e.deep, mode, t0)
                retimed = 0
            else:
                retimed += 1
        if r < i + m:
            return r
        i = r
    return i


cdef int64_t _process_journaled(mc_engine* e, mc_journal* jc, mc_journal* jt,
                                const mc_command* cmds, int64_t n) noexcept nogil:
    return _journaled_loop(e, jc, jt, cmds, NULL, NULL, n, 0, NULL)


cdef int64_t _replay(mc_engine* e, mc_journal* jt, const mc_command* cmds, const uint64_t* seqs,
                     const int64_t* results, int64_t n, uint64_t trades_from,
                     int64_t* got) noexcept nogil:
    # Recovery: apply journaled commands, check each outcome against the recorded one, and
    # write the fills of commands the trade journal does not hold yet. Returns how many were
    # applied; fewer than n means command n's outcome differed, the engine's in *got
    # (-MC_ERR_NOMEM: memory ran out, and that command changed nothing).
    return _journaled_loop(e, NULL, jt, cmds, seqs, results, n, trades_from, got)


cdef int64_t mc_engine_pending_events(const mc_engine* e) noexcept nogil:
    return e.n_ev


cdef int64_t mc_engine_drain_events(mc_engine* e, mc_event* out, int64_t cap) noexcept nogil:
    """Move up to `cap` pending events (oldest first) into out; the rest stay pending."""
    cdef int64_t k = e.n_ev if e.n_ev < cap else cap
    if k <= 0:
        return 0
    memcpy(out, e.ev, k * sizeof(mc_event))
    if k < e.n_ev:
        memmove(e.ev, &e.ev[k], (e.n_ev - k) * sizeof(mc_event))
    e.n_ev -= k
    return k


cdef int64_t mc_engine_drain_events_owner(mc_engine* e, uint64_t owner, mc_event* out,
                                          int64_t cap) noexcept nogil:
    """Move up to `cap` of `owner`'s pending events into out, dropping the others before them;
    events after the last one that fitted stay pending. Returns the count written."""
    cdef int64_t i = 0, k = 0
    while i < e.n_ev:
        if _ev_of(&e.ev[i], owner):
            if k == cap:
                break
            out[k] = e.ev[i]
            k += 1
        i += 1
    if i < e.n_ev:
        memmove(e.ev, &e.ev[i], (e.n_ev - i) * sizeof(mc_event))
    e.n_ev -= i
    return k


cdef int mc_engine_busy_enter(mc_engine* e, uint8_t what) except -1:
    # The books see it through their host byte (MC_GUARD_HOSTED); a book busy on its own makes
    # the engine busy too (mc_busy_enter). Inside this thread's hold: nothing to mark.
    if e.busy:
        return _engine_busy_slow(e)
    e.busy = what
    return 0


cdef void mc_engine_busy_leave(mc_engine* e) noexcept:
    if e.busy != MC_BUSY_HELD:      # a hold is released by its owner (mc_engine_unhold)
        e.busy = 0


cdef int _engine_busy_slow(const mc_engine* e) except -1:
    if e.busy == MC_BUSY_HELD and mc_held_by_me(&e.busy):
        return 1
    return mc_raise_busy("Engine", e.busy)


cdef inline int _check_busy(const mc_engine* e) except -1:
    # every Engine method that reads or writes the engine or its books, first
    if e.busy:
        return _engine_busy_slow(e)
    return 0


cdef int mc_engine_hold(mc_engine* e) except -1:
    # A read in several steps (pickle, copy, snapshot file, check_invariants) holds the engine
    # and so its books (their host byte) until mc_engine_unhold: another thread's call raises
    # BusyError, this thread's go on. 1: this thread held it already (release nothing).
    if e.busy:
        return _engine_busy_slow(e)
    e.busy = MC_BUSY_HELD
    try:
        mc_hold_register(&e.busy)
    except BaseException:
        e.busy = 0
        raise
    return 0


cdef void mc_engine_unhold(mc_engine* e, int nested) noexcept:
    if not nested:
        mc_hold_unregister(&e.busy)
        e.busy = 0


# ==============================================================================================
# Python face
# ==============================================================================================

cdef object _raise(int64_t code, uint64_t oid):
    if code == -MC_ERR_NOMEM:
        raise MemoryError("matchcore: out of memory; the engine is unchanged")
    raise OrderRejected(-code, oid)


cdef object _events_array(const mc_event* src, int64_t n):
    cdef cnp.ndarray out = np.empty(n, dtype=EVENT_DTYPE)
    if n > 0:
        memcpy(cnp.PyArray_DATA(out), src, n * sizeof(mc_event))
    return out


_LIMIT_NAMES = ("tick", "min_price", "max_price", "ref_price", "band", "max_qty", "max_notional")


# The defaults of tif, owner and ts_ns (and an explicit 0) are the interpreter's cached 0: a
# pointer compare reads them (as in _core).
cdef object _ZERO = 0


# no tp_clear: __dealloc__ needs self._books to unhook the books from the engine's busy byte
@cython.no_gc_clear
cdef class Engine:
    """Several order books, one per integer symbol id, behind one order-id space.

    Orders name their symbol; cancels and modifies find the book by order id. An id that rests
    in any book is a duplicate in every book. Each symbol has optional limits checked before
    its book sees an order (rejects: ``PRICE_NOT_ON_TICK``, ``PRICE_OUTSIDE_BAND``,
    ``QTY_ABOVE_MAX``, ``NOTIONAL_ABOVE_MAX``; an unknown symbol: ``UNKNOWN_SYMBOL``). Events
    carry the symbol. The per-call methods, :meth:`process` and the C/Numba entry points run the
    same compiled functions. O(1) routing per operation.

    Durability (:mod:`matchcore.durability`): ``Engine(journal=DIR, fsync="batch")`` appends
    every inbound command (accepted or rejected, with its seq, a wall-clock timestamp and its
    outcome) and every config change to a CRC-checked, segmented journal before the call
    returns, and every fill to a trade journal; ``fsync`` is ``"always"`` (each call returns
    after fdatasync), ``"batch"`` (group commit by a syncer thread every ``batch_us`` µs or
    ``batch_records`` records; :meth:`sync` forces it) or ``"never"`` (write(2) only: survives a
    process crash, not a power loss). Options: ``segment_bytes`` (default 64 MiB),
    ``batch_records`` (4096), ``batch_us`` (2000), ``buffer_bytes`` (1 MiB), ``trades`` (True).
    :meth:`snapshot` and :meth:`recover` complete it.

    >>> eng = Engine()
    >>> _ = eng.add_symbol(1, "AAA", tick=5)
    >>> eng.submit(1, 10, 0, 100, 3)
    0
    >>> eng.submit("AAA", 11, 1, 100, 1)
    1
    >>> eng.get(10)
    (1, 0, 100, 2)
    """
    cdef mc_engine* _e
    cdef list _books
    cdef dict _by_id
    cdef dict _by_name
    cdef dict _names
    cdef int _stp
    cdef readonly bint record_events
    cdef dict _capacity
    # durability (matchcore.durability): the command journal and the trade capture journal
    cdef JournalWriter _jc
    cdef JournalWriter _jt
    cdef mc_journal* _jcp
    cdef mc_journal* _jtp
    cdef public object recovery_report
    # A second reference to self._books that tp_traverse does not report: the cyclic GC then
    # sees the list as referenced from outside and never clears it, so that __dealloc__ still
    # finds every book to unhook (a list emptied first, when the engine is in a reference
    # cycle, left a book held elsewhere pointing at the freed engine's busy byte).
    cdef PyObject* _books_hold

    def __cinit__(self, stp=STP.CANCEL_RESTING, *, record_events=True, journal=None,
                  fsync=None, **journal_options):
        cdef int mode = mc_stp_arg(stp)
        cdef bint recording = mc_bool_arg(record_events, "record_events")
        if journal is None and (journal_options or fsync is not None):
            raise TypeError(f"journal options {sorted(journal_options) or ['fsync']} need "
                            f"journal=DIR")
        self._e = mc_engine_new()
        if self._e == NULL:
            raise MemoryError()
        self._e.handle = mc_handle_new(self._e, MC_H_ENGINE, 0)
        if self._e.handle == 0:
            mc_engine_free(self._e)
            self._e = NULL
            raise MemoryError("matchcore: no handle left for a new engine")
        # An engine that records no events writes none, whoever calls it (Python, C, Numba).
        self._e.emit = 1 if recording else 0
        self._stp = mode
        self.record_events = recording
        self._books = []
        Py_INCREF(self._books)
        self._books_hold = <PyObject*>self._books
        self._by_id = {}
        self._by_name = {}
        self._names = {}
        self._capacity = {}
        self._jcp = NULL
        self._jtp = NULL
        if journal is not None:
            from matchcore.durability.journal import open_writers
            # the journal starts from this empty engine: its first segment says so
            jc, jt = open_writers(journal, mode, "batch" if fsync is None else fsync, new=True,
                                  base_hash=mc_engine_state_hash(self._e), **journal_options)
            self._attach_journal(jc, jt)

    def __dealloc__(self):
        if self._e != NULL:
            # The handle dies first: every C/Numba call with it is refused from here on. The
            # books are the OrderBook objects in self._books: they are released with them (a
            # book still referenced elsewhere, e.g. eng.book(s), lives on as a standalone book).
            mc_handle_release(self._e.handle)
            if self._books is not None:
                for book in self._books:
                    mc_book_host((<OrderBook>book)._b, NULL)
        mc_engine_free(self._e)
        self._e = NULL
        Py_XDECREF(self._books_hold)
        self._books_hold = NULL

    # ---- symbols ----

    def add_symbol(self, symbol, name=None, *, capacity=1024, **limits):
        """Add a book for integer symbol id ``symbol`` (in [0, 2**32)), optionally named (a
        ``str``, ``TypeError`` otherwise; unique, at most 4096 bytes in UTF-8); returns
        the :class:`OrderBook`, for queries: its own order entry raises
        :class:`~matchcore.ReadOnlyBookError` (orders go through the engine). ``limits`` as in
        :meth:`set_limits`, checked the same way (merged into no limits): an ``add_symbol`` that
        raises adds no symbol. O(1).

        >>> eng = Engine(); book = eng.add_symbol(7, "XYZ", max_qty=100); len(book)
        0
        """
        return self._add_symbol(symbol, name, capacity, limits, True)

    def _add_symbol(self, symbol, name, capacity, dict limits, bint consistent):
        # add_symbol. Recovery and snapshot loading pass consistent=False: a journal or snapshot
        # holds limits the engine once accepted, perhaps contradictory ones (earlier versions
        # took them), and they are restored as written; the type and range checks still apply.
        # Everything is checked before the engine changes: a call that raises leaves no symbol
        # behind and nothing to journal, so recovery replays exactly what the engine did.
        cdef uint32_t sym = _symbol_id(symbol)
        cdef int64_t cap = mc_capacity_arg(capacity, "capacity")
        limits = _check_limits(limits)
        if consistent:
            _check_limit_set(sym, dict(_NO_LIMITS, **limits))
        if sym in self._by_id:
            raise ValueError(f"symbol {sym} already exists")
        if name is not None:
            # a name is looked up as the str it is: str(b"X") stored "b'X'" and str(1) "1",
            # names no later call could give (b"X" and 1 are refused or mean a symbol id)
            if not isinstance(name, str):
                raise TypeError(f"symbol name must be a str or None, got "
                                f"{type(name).__name__} {name!r}")
            name = str(name)
            if name in self._by_name:
                raise ValueError(f"symbol name {name!r} already exists")
        if name is not None and len(name.encode("utf-8")) > 4096:
            raise ValueError("symbol name longer than 4096 bytes (UTF-8)")
        cdef OrderBook book
        # Held (another thread's call raises BusyError) from the change to its journal record:
        # the record is appended without the GIL, and a command journaled meanwhile by another
        # thread wrote into the same buffer (a sequence break that recovery refuses), or came
        # between the change and its record (replayed against the engine before the change).
        cdef int nested = mc_engine_hold(self._e)
        try:
            self._check_journal()
            # A book writes events when its engine does (record_events, or trade capture).
            book = _OrderBook(self._stp, record_events=self._e.emit != 0, capacity=cap)
            self._register(sym, name, cap, limits, book)
            if self._jc is not None:
                lim = self.limits(sym)
                self._jc._append_config(2, sym, [lim[x] for x in _LIMIT_NAMES], capacity=cap,
                                        name=name)
        finally:
            mc_engine_unhold(self._e, nested)
        return book

    cdef _register(self, uint32_t sym, name, int64_t capacity, dict limits, OrderBook book):
        # add_symbol's and unpickling's one way of making a book the engine's: routed, named,
        # hosted (the book is busy while its engine is, and the engine while it is), limited
        cdef int32_t k = mc_engine_add_book(self._e, sym, book._b)
        if k == -2:
            raise MemoryError()
        mc_book_host(book._b, &self._e.busy)
        book._b.engine_owned = 1
        self._books.append(book)
        self._by_id[sym] = book
        self._capacity[sym] = capacity
        if name is not None:
            self._by_name[name] = sym
            self._names[sym] = name
            self._e.names_hash += _name_hash(sym, name)
        self._apply_limits(k, limits)

    cdef _apply_limits(self, int32_t k, dict limits):
        cdef mc_symbol_cfg* c = &self._e.cfg[k]
        if "tick" in limits: c.tick = limits["tick"]
        if "min_price" in limits: c.min_price = limits["min_price"]
        if "max_price" in limits: c.max_price = limits["max_price"]
        if "ref_price" in limits: c.ref_price = limits["ref_price"]
        if "band" in limits: c.band = limits["band"]
        if "max_qty" in limits: c.max_qty = limits["max_qty"]
        if "max_notional" in limits: c.max_notional = limits["max_notional"]
        c.on = _cfg_on(c)

    def set_limits(self, symbol, **limits):
        """Set a symbol's limits (only those given; 0 disables one, ``tick=1`` accepts every
        price). Prices in ticks.

        ``tick``: prices must be multiples of it; ``min_price``/``max_price``: absolute band;
        ``ref_price`` and ``band``: prices outside ``ref_price +- band`` are refused (move the
        band with :meth:`set_reference_price`; the band is inactive while either is 0);
        ``max_qty``: largest order qty; ``max_notional``: largest ``price * qty`` of a limit
        order. Checked in this order, after the basic field checks of the book (qty, price,
        side, TIF) and before the duplicate-id check. Market orders are checked against
        ``max_qty`` only. A modify is checked when it re-enters the order (new price or larger
        qty); shrinking in place always passes. O(1).

        Each value is an integer (``TypeError`` otherwise) in [0, 2**63) (``ValueError`` below,
        ``OverflowError`` above; ``tick`` >= 1). The limits that result, the given ones merged
        into the symbol's others, must accept some limit order: ``ValueError`` for
        ``min_price`` above ``max_price``, a band outside them, no multiple of ``tick`` within
        them, or a ``max_notional`` below the lowest price they accept. Limits that already
        accept no order (recovered from a journal written before this check) do not block a
        change that leaves the reason as it is (``max_qty``, say). A call that raises changes
        nothing and journals nothing.

        >>> eng = Engine(); _ = eng.add_symbol(1, min_price=90)
        >>> eng.set_limits(1, max_price=80)
        Traceback (most recent call last):
        ...
        ValueError: symbol 1: min_price 90 > max_price 80: no price is accepted
        """
        self._set_limits(symbol, limits, True)

    def _set_limits(self, symbol, dict limits, bint consistent):
        # set_limits; recovery passes consistent=False (see _add_symbol)
        cdef int32_t k = self._slot(symbol)
        limits = _check_limits(limits)      # all of them before any is applied
        if consistent:
            now = self._limits_at(k)
            _check_limit_change(self._e.symbols[k], now, dict(now, **limits))
        cdef uint32_t mask = 0
        cdef int nested = mc_engine_hold(self._e)      # see _add_symbol
        try:
            self._check_journal()
            self._apply_limits(k, limits)
            if self._jc is not None:
                for i, key in enumerate(_LIMIT_NAMES):
                    if key in limits:
                        mask |= 1u << i
                self._jc._append_config(3, self._e.symbols[k],
                                        [limits.get(x, 0) for x in _LIMIT_NAMES], mask=mask)
        finally:
            mc_engine_unhold(self._e, nested)

    def limits(self, symbol):
        """A symbol's limits as a dict (0 = disabled, ``tick`` 1 = any price). O(1).

        >>> eng = Engine(); _ = eng.add_symbol(1, tick=5); eng.limits(1)["tick"]
        5
        """
        return self._limits_at(self._slot(symbol))

    cdef dict _limits_at(self, int32_t k):
        cdef mc_symbol_cfg c = self._e.cfg[k]
        return {"tick": c.tick, "min_price": c.min_price, "max_price": c.max_price,
                "ref_price": c.ref_price, "band": c.band, "max_qty": c.max_qty,
                "max_notional": c.max_notional}

    def set_reference_price(self, symbol, price):
        """Move the centre of a symbol's price band (e.g. to the last trade); 0 makes the band
        inactive. Checked as ``set_limits(symbol, ref_price=price)`` is: a centre whose band
        accepts no price (outside ``min_price``/``max_price``, no multiple of ``tick``) raises
        ``ValueError`` and changes nothing. O(1)."""
        self._set_reference_price(symbol, price, True)

    def _set_reference_price(self, symbol, price, bint consistent):
        # set_reference_price; recovery passes consistent=False (see _add_symbol)
        cdef int64_t p = mc_i64_arg(price, "price")
        if p < 0:
            raise ValueError(f"reference price must be >= 0 (0 disables the band), got {p}")
        cdef int32_t k = self._slot(symbol)
        if consistent:
            now = self._limits_at(k)
            _check_limit_change(self._e.symbols[k], now, dict(now, ref_price=p))
        cdef int nested = mc_engine_hold(self._e)      # see _add_symbol
        try:
            self._check_journal()
            self._e.cfg[k].ref_price = p
            self._e.cfg[k].on = _cfg_on(&self._e.cfg[k])
            if self._jc is not None:
                self._jc._append_config(4, self._e.symbols[k], price=p)
        finally:
            mc_engine_unhold(self._e, nested)

    def symbol_id(self, symbol):
        """The integer id of a symbol given by name or id (KeyError if unknown)."""
        cdef uint32_t sym = self._resolve(symbol)
        if sym not in self._by_id:
            raise KeyError(symbol)
        return sym

    @property
    def symbols(self):
        """{symbol id: name or None} in the order the symbols were added."""
        _check_busy(self._e)
        return {int(self._e.symbols[k]): self._names.get(self._e.symbols[k])
                for k in range(self._e.n_books)}

    def book(self, symbol):
        """The :class:`OrderBook` of a symbol (by id or name): for queries (depth, level,
        queue_position, snapshot, ...). Enter orders through the engine only."""
        return self._by_id[self.symbol_id(symbol)]

    cdef uint32_t _resolve(self, symbol) except? 0xFFFFFFFF:
        if isinstance(symbol, str):
            try:
                return self._by_name[symbol]
            except KeyError:
                raise KeyError(f"unknown symbol name {symbol!r}") from None
        return _symbol_id(symbol)

    cdef int32_t _slot(self, symbol) except -1:
        cdef uint32_t sym = self._resolve(symbol)
        _check_busy(self._e)
        cdef int32_t k = mc_engine_slot(self._e, sym)
        if k < 0:
            raise KeyError(f"unknown symbol {symbol!r}")
        return k

    cdef uint32_t _order_symbol(self, symbol, uint64_t oid) except? 0xFFFFFFFF:
        # A name that is not registered cannot be turned into an id for the event; refuse it
        # like an unknown id, without touching the engine.
        if isinstance(symbol, str) and symbol not in self._by_name:
            raise OrderRejected(MC_R_UNKNOWN_SYMBOL, oid, f"unknown symbol name {symbol!r}")
        return self._resolve(symbol)

    # ---- order entry ----

    def submit(self, symbol, order_id, side, price, qty, tif=MC_GTC, *, owner=0,
               post_only=False, ts_ns=0):
        """Limit order on ``symbol`` (id or name); returns the qty executed now (lots).

        Same semantics and exceptions as :meth:`OrderBook.submit`, plus the symbol's limits and
        ``UNKNOWN_SYMBOL``; a duplicate is an id resting in any symbol. O(1) + O(fills).

        >>> eng = Engine(); _ = eng.add_symbol(1, max_qty=10); eng.submit(1, 5, 0, 100, 11)
        Traceback (most recent call last):
        ...
        matchcore._core.OrderRejected: order 5 rejected: QTY_ABOVE_MAX
        """
        # the flag first, where a bint parameter was converted (the order of the errors)
        cdef int c_post = mc_flag_of(post_only, "post_only")
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int c_side = _cint_of(side, _cint_side)
        cdef int64_t c_price = _i64_of(price, _i64_price)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef int c_tif = 0 if tif is _ZERO else _cint_of(tif, _cint_tif)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        cdef uint32_t sym = _entry_symbol(self, symbol, oid)
        cdef mc_engine* e = self._e
        _check_busy(e)
        if not self.record_events:
            e.n_ev = 0
        e.now_ns = c_ts
        cdef int64_t r
        if self._jcp != NULL:
            r = self._call_journaled(c_ts, oid, c_price, c_qty, c_owner, sym, MC_CMD_SUBMIT,
                                     c_side, c_tif, c_post)
        else:
            r = mc_engine_submit(e, sym, oid, c_side, c_price, c_qty, c_tif, c_owner, c_post)
        if r >= 0:
            return mc_small_int(r)
        if r == -MC_R_POST_ONLY_WOULD_CROSS:
            return 0
        _raise(r, oid)

    def submit_market(self, symbol, order_id, side, qty, *, owner=0, ts_ns=0):
        """Market order on ``symbol``; returns the qty executed, the remainder expires."""
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int c_side = _cint_of(side, _cint_side)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        cdef uint32_t sym = _entry_symbol(self, symbol, oid)
        cdef mc_engine* e = self._e
        _check_busy(e)
        if not self.record_events:
            e.n_ev = 0
        e.now_ns = c_ts
        cdef int64_t r
        if self._jcp != NULL:
            r = self._call_journaled(c_ts, oid, 0, c_qty, c_owner, sym, MC_CMD_MARKET, c_side,
                                     0, 0)
        else:
            r = mc_engine_market(e, sym, oid, c_side, c_qty, c_owner)
        if r >= 0:
            return mc_small_int(r)
        _raise(r, oid)

    def cancel(self, order_id, *, symbol=0, ts_ns=0):
        """Cancel a resting order in whichever symbol it rests; returns its open qty, 0 if it
        rests nowhere (``symbol`` is then echoed in the REJECTED event). O(1)."""
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        cdef uint32_t sym = _entry_symbol(self, symbol, oid)
        cdef mc_engine* e = self._e
        _check_busy(e)
        if not self.record_events:
            e.n_ev = 0
        e.now_ns = c_ts
        cdef int64_t r
        if self._jcp != NULL:
            r = self._call_journaled(c_ts, oid, 0, 0, 0, sym, MC_CMD_CANCEL, 0, 0, 0)
        else:
            r = mc_engine_cancel(e, sym, oid)
        if r >= 0:
            return mc_small_int(r)
        if r == -MC_R_ORDER_NOT_FOUND:
            return 0
        _raise(r, oid)

    def modify(self, order_id, qty, price=None, *, symbol=0, ts_ns=0):
        """Modify a resting order wherever it rests (see :meth:`OrderBook.modify`); returns
        False if it rests nowhere or a post-only reprice would cross; raises
        :class:`OrderRejected` for bad qty/price or a broken limit. O(1) + O(fills)."""
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef int64_t p = 0 if price is None else _i64_of(price, _i64_price)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        cdef uint32_t sym = _entry_symbol(self, symbol, oid)
        cdef mc_engine* e = self._e
        _check_busy(e)
        if not self.record_events:
            e.n_ev = 0
        e.now_ns = c_ts
        cdef int64_t r
        if self._jcp != NULL:
            r = self._call_journaled(c_ts, oid, p, c_qty, 0, sym, MC_CMD_MODIFY, 0, 0, 0)
        else:
            r = mc_engine_modify(e, sym, oid, c_qty, p)
        if r >= 0:
            return True
        if r == -MC_R_ORDER_NOT_FOUND or r == -MC_R_POST_ONLY_WOULD_CROSS:
            return False
        _raise(r, oid)

    def process(self, commands, out=None):
        """Apply :data:`COMMAND_DTYPE` records (``symbol`` field used) in compiled code, without
        the GIL; returns exactly this batch's events. Bad commands give REJECTED events.
        Pending :meth:`events` are kept. O(n + fills).

        ``out``: a caller-owned, writeable, 1-D C-contiguous aligned :data:`EVENT_DTYPE` array
        sharing no memory with ``commands``, reused across calls, as for
        :meth:`OrderBook.process`: when the batch's k events fit they are written to
        ``out[:k]`` and that view is returned; when they do not, a new array with all k events
        is returned (``len(result) > len(out)``: grow the buffer) and what ``out`` then holds is
        unspecified. A bad ``out`` raises before any command is applied."""
        cdef cnp.ndarray arr = _commands_array(commands, "process()")
        cdef cnp.ndarray dst = _out_buffer(out, arr)
        cdef mc_engine* e = self._e
        cdef int64_t n = arr.shape[0]
        cdef int64_t start = -1, done, k
        cdef bint lost = False
        cdef const mc_command* cmds = <const mc_command*>cnp.PyArray_DATA(arr)
        cdef mc_journal* jc = self._jcp
        cdef mc_journal* jt = self._jtp
        cdef uint8_t emit
        if jc != NULL:
            self._check_journal()
        cdef int64_t copied = 0, cap = -1
        cdef mc_event* dp = NULL
        cdef cnp.ndarray whole
        # A large batch without out= gets its result array made up front (or reused, see
        # mc_result_block) and written as out= is; the result is a view of its events. The
        # engine's own buffer then does not grow with the batch either. (A small batch's events
        # are copied once, at their size.)
        cdef bint fresh = dst is None and n >= 2048 and jc == NULL
        if fresh:
            dst = mc_result_block(2 * n + 64)
        if dst is not None:
            dp = <mc_event*>cnp.PyArray_DATA(dst)
            cap = dst.shape[0]
        # The engine and its books are busy until the events are out: the batch runs without
        # the GIL, and a call from another thread meanwhile raises BusyError.
        mc_engine_busy_enter(e, MC_BUSY_ENGINE)
        try:
            start = e.n_ev
            emit = e.emit
            mc_engine_set_emit(e, 1)    # the batch's events are returned even when none are recorded
            if jc == NULL and dp != NULL:
                with nogil:
                    done = _engine_process_into(e, cmds, n, dp, cap, start, &copied)
            elif jc == NULL:
                with nogil:
                    done = mc_engine_process(e, cmds, n)
            else:
                with nogil:
                    done = _process_journaled(e, jc, jt, cmds, n)
                    mc_journal_commit(jc)
                    if jt != NULL:
                        mc_journal_commit(jt)
            mc_engine_set_emit(e, emit)
            if jc != NULL and (jc.err != 0 or (jt != NULL and jt.err != 0)):
                e.n_ev = start
                self._check_journal()
            k = e.n_ev - start
            try:
                if copied > 0 or (dp != NULL and k == 0):
                    # the events were written into dst (with out=: no new array, none of its
                    # first-touch page faults); those that did not fit are still here
                    if k == 0:
                        res = dst[:copied]
                    else:
                        whole = np.empty(copied + k, dtype=EVENT_DTYPE)
                        memcpy(cnp.PyArray_DATA(whole), dp, copied * sizeof(mc_event))
                        memcpy(<mc_event*>cnp.PyArray_DATA(whole) + copied, &e.ev[start],
                               k * sizeof(mc_event))
                        res = whole
                elif dst is not None and k <= cap:
                    if k > 0:
                        memcpy(dp, &e.ev[start], k * sizeof(mc_event))
                    res = dst[:k]
                else:
                    res = _events_array(&e.ev[start], k)
            except MemoryError:
                # the commands ran but no memory is left for the array of their events: the
                # exception says how many ran, and none of their events stays pending
                lost = True
        finally:
            if start >= 0:
                e.n_ev = start
            mc_engine_busy_leave(e)
        if lost:
            raise MemoryError(f"matchcore: out of memory after {done} of {n} commands (applied; "
                              "no memory was left for their events, which are lost)")
        if done < n:
            raise MemoryError(f"matchcore: out of memory after {done} of {n} commands")
        return res

    cdef int64_t _call_journaled(self, int64_t ts, uint64_t oid, int64_t price, int64_t qty,
                                 uint64_t owner, uint32_t sym, int kind, int side, int tif,
                                 int post_only) except? -0x7FFFFFFFFFFFFFFF:
        # A per-call command as a command record, so that the journal holds exactly what
        # process() would be given. Sides and TIFs beyond a byte are invalid either way and
        # become 255 (rejected for the same reason).
        self._check_journal()
        cdef mc_command c
        c.ts_ns = ts
        c.order_id = oid
        c.price = price
        c.qty = qty
        c.owner = owner
        c.symbol = sym
        c.kind = <uint8_t>kind
        c.side = <uint8_t>side if 0 <= side <= 255 else 255
        c.tif = <uint8_t>tif if 0 <= tif <= 255 else 255
        c.post_only = 1 if post_only else 0
        cdef mc_engine* e = self._e
        cdef mc_journal* jc = self._jcp
        cdef mc_journal* jt = self._jtp
        cdef uint8_t was = e.busy   # (this thread's hold, if any, stays)
        cdef int64_t r = _apply_journaled(e, jc, jt, &c)
        if r != -MC_ERR_NOMEM:
            # the journals are written without the GIL: no other thread's call may append
            e.busy = MC_BUSY_JOURNAL
            with nogil:
                mc_journal_commit(jc)
                if jt != NULL:
                    mc_journal_commit(jt)
            e.busy = was
        self._check_journal()
        return r

    cdef int _check_journal(self) except -1:
        if self._jc is not None:
            self._jc._check()
            if self._jt is not None:
                self._jt._check()
        return 0

    # ---- durability hooks (matchcore.durability) ----

    def _attach_journal(self, JournalWriter commands, JournalWriter trades=None):
        """Journal every following command into ``commands`` (and fills into ``trades``)."""
        _check_busy(self._e)
        self._jc = commands
        self._jcp = commands._j
        self._jt = trades
        self._jtp = trades._j if trades is not None else NULL
        if trades is not None:
            # Trade capture reads the fills from the events, so the books write them even with
            # record_events=False (the per-call methods still drop them after each call).
            mc_engine_set_emit(self._e, 1)

    def _set_record_events(self, bint on):
        """Recovery: ``record_events`` is not journaled, so the caller of recover() names it."""
        _check_busy(self._e)
        self.record_events = on
        # trade capture reads fills from the events (see _attach_journal)
        mc_engine_set_emit(self._e, 1 if on or self._jt is not None else 0)

    def _restore_book(self, symbol, data):
        """Replace a symbol's book with a snapshot's state (OrderBook.restore), as loading an
        engine snapshot does: the book's own order entry is closed to everyone else (it would
        bypass the routing), and the restored orders are not routed until :meth:`_reindex`."""
        cdef OrderBook book = self._by_id[self.symbol_id(symbol)]
        book._b.engine_owned = 0
        try:
            book.restore(data)
        finally:
            book._b.engine_owned = 1

    def _reindex(self):
        """Rebuild the order-id routing from the books (after in-place book restores)."""
        _check_busy(self._e)
        cdef int rc = mc_engine_reindex(self._e)
        if rc == -2:
            raise ValueError("an order id rests in two books")
        if rc < 0:
            raise MemoryError()

    def _capacity_of(self, symbol):
        return self._capacity.get(self.symbol_id(symbol), 0)

    def _set_capacity(self, symbol, int64_t capacity):
        self._capacity[self.symbol_id(symbol)] = capacity

    def _replay(self, commands, seqs, results, uint64_t trades_from=0, JournalWriter trades=None):
        """Recovery: apply journaled commands, checking each outcome against the recorded one;
        fills of commands with seq >= ``trades_from`` go to ``trades``. Returns the count
        applied (fewer than given: that command's outcome differed). Events are dropped.
        Memory running out raises ``MemoryError`` (saying at which command): that is no
        divergence of the journal, and the commands before it stay applied."""
        cdef cnp.ndarray arr = np.ascontiguousarray(commands)
        cdef cnp.ndarray s = np.ascontiguousarray(seqs, dtype=np.uint64)
        cdef cnp.ndarray r = np.ascontiguousarray(results, dtype=np.int64)
        if arr.dtype != COMMAND_DTYPE or s.shape[0] != arr.shape[0] or r.shape[0] != arr.shape[0]:
            raise TypeError("_replay needs COMMAND_DTYPE commands and as many seqs and results")
        cdef mc_journal* jt = trades._j if trades is not None else NULL
        cdef int64_t n = arr.shape[0], done, got = 0
        mc_engine_busy_enter(self._e, MC_BUSY_ENGINE)
        try:
            with nogil:
                done = _replay(self._e, jt, <const mc_command*>cnp.PyArray_DATA(arr),
                               <const uint64_t*>cnp.PyArray_DATA(s),
                               <const int64_t*>cnp.PyArray_DATA(r), n, trades_from, &got)
                if jt != NULL:
                    mc_journal_commit(jt)
        finally:
            mc_engine_busy_leave(self._e)
        if trades is not None:
            trades._check()
        if done < n and got == -MC_ERR_NOMEM:
            # (a command that ran out of memory is never journaled: no recorded outcome is this)
            raise MemoryError(f"matchcore: out of memory replaying the journal at seq "
                              f"{int(s[done])}, after {done} of {n} commands")
        return done

    @property
    def journal(self):
        """The command :class:`~matchcore.durability.JournalWriter` (None without a journal)."""
        return self._jc

    @property
    def trade_journal(self):
        """The trade capture :class:`~matchcore.durability.JournalWriter` (or None)."""
        return self._jt

    @property
    def journal_seq(self):
        """Seq of the last journaled command (0 without a journal or before the first)."""
        return self._jcp.next_seq - 1 if self._jcp != NULL else 0

    @property
    def durable_seq(self):
        """Seq of the last command known to be on stable storage (fsynced). Under
        ``fsync="always"`` this equals :attr:`journal_seq` after every call returns."""
        return self._jcp.durable_seq if self._jcp != NULL else 0

    def sync(self):
        """Make everything journaled so far durable (write + fdatasync of the command and
        trade journals, whatever the policy); returns the durable seq. O(buffered bytes) + one
        or two fsyncs.

        >>> import tempfile; eng = Engine(journal=tempfile.mkdtemp(), fsync="never")
        >>> _ = eng.add_symbol(1); eng.sync()
        1
        """
        if self._jc is None:
            raise ValueError("this engine has no journal")
        # the journals are written and synced without the GIL: no other thread's call may append
        mc_engine_busy_enter(self._e, MC_BUSY_JOURNAL)
        try:
            if self._jt is not None:
                self._jt.sync()
            return self._jc.sync()
        finally:
            mc_engine_busy_leave(self._e)

    def close(self):
        """Write, fsync (unless ``fsync="never"``) and close the journals; the engine then
        refuses further commands that would need journaling. No-op without a journal.
        Both journals are closed and the directory's LOCK released even when one of them
        fails (the first error is raised afterwards), so ``Engine.recover(DIR)`` can follow."""
        first = None
        mc_engine_busy_enter(self._e, MC_BUSY_JOURNAL)
        try:
            for writer in (self._jt, self._jc):     # the trade journal fsyncs unless "never"
                if writer is None:
                    continue
                try:
                    writer.close()
                except BaseException as exc:
                    if first is None:
                        first = exc
        finally:
            mc_engine_busy_leave(self._e)
        if first is not None:
            raise first

    def snapshot(self, path=None):
        """Write a snapshot file of every symbol's book, limits, name and the journal position
        into directory ``path`` (default: the journal directory); returns its path. The
        journals are fsynced first, so a snapshot never names a position that is not durable.
        Atomic (written to a temporary file, fsynced, renamed). O(orders + levels).
        See :func:`matchcore.durability.write_snapshot`."""
        from matchcore.durability.snapshot import write_snapshot
        if path is None:
            if self._jc is None:
                raise ValueError("snapshot() needs a directory when the engine has no journal")
            path = self._jc.path
        return write_snapshot(self, path)

    @classmethod
    def recover(cls, path, **options):
        """The engine rebuilt from directory ``path``: the newest valid snapshot, then the
        journal tail replayed; it keeps journaling into ``path``. ``options``: ``fsync``,
        ``record_events`` (not journaled: give it again, default True) and the journal options
        of the constructor, ``snapshot=False`` to replay the whole journal.
        The report (snapshot used, records replayed, damage cut) is in
        :attr:`recovery_report`. See :func:`matchcore.durability.recover`.

        Called on a subclass, the engine is of that class, made as unpickling makes one
        (``cls.__new__(cls, stp)``, without calling ``__init__``); the journal holds no
        attributes of the subclass. O(journal bytes) to scan and check every record,
        O(journal tail + snapshot) to rebuild; memory: one segment's plus the engine's.
        """
        from matchcore.durability.recovery import _recover_as
        return _recover_as(cls, path, **options)

    # ---- copies and pickling ----

    def __reduce__(self):
        """Pickle support (protocol 2+; ``copy.deepcopy`` takes the same, in memory): the STP mode,
        ``record_events``, the clock, every symbol (id, name, capacity, limits, its
        :class:`OrderBook`, which pickles as its snapshot with its pending events) and the
        engine's pending events. The order-id routing is rebuilt from the books. The books are
        pickled as objects, so a book held beside its engine (``(eng, eng.book(1))``) comes
        back as the new engine's book. An engine with a journal is refused (TypeError).
        All of it is read at once, under the engine's hold: a call from another thread
        meanwhile raises :class:`~matchcore.BusyError`."""
        self._check_copyable()
        cdef mc_engine* e = self._e
        cdef OrderBook book
        cdef int64_t n_ev
        symbols = []
        # Everything is read under the hold, as one state: no other thread's call comes between
        # two books. The books are pickled as objects too (a book held beside its engine comes
        # back as its book); each gives the pickler the very state read here when it still holds
        # it (OrderBook._pickled, a weak reference: nothing is kept once the pickling is over),
        # which the pickle then stores once.
        cdef int nested = mc_engine_hold(e)
        try:
            for entry in self._symbol_entries():
                book = entry[4]
                symbols.append(entry + (mc_book_held_state(book, mc_book_pickle_args(book)),))
            n_ev = e.n_ev if self.record_events else 0
            events = PyBytes_FromStringAndSize(<char*>e.ev, n_ev * sizeof(mc_event))
            now_ns = e.now_ns
        finally:
            mc_engine_unhold(e, nested)
        cls = type(self)
        return (_engine_from_pickle,
                (_PICKLE_FORMAT, self._stp, self.record_events, now_ns, symbols, events,
                 self.recovery_report, None if cls is Engine else cls),
                None if cls is Engine else _subclass_state(self))

    def __copy__(self):
        # An engine owns its books: a shallow copy sharing them would route orders into books
        # that another engine also routes. copy.copy is a full copy, as for OrderBook.
        import copy
        return copy.deepcopy(self)

    def __deepcopy__(self, memo):
        # As the pickle, read under the hold as one state. A book copied earlier in the same
        # deepcopy (``copy.deepcopy((eng.book(1), eng))``) is that copy here too, brought to the
        # state read now.
        self._check_copyable()
        import copy
        cls = type(self)
        cdef Engine twin = cls.__new__(cls, self._stp, record_events=self.record_events)
        memo[id(self)] = twin
        cdef mc_engine* e = self._e
        cdef OrderBook book, dup
        cdef int nested = mc_engine_hold(e)
        try:
            for sym, name, capacity, limits, book in self._symbol_entries():
                dup = memo.get(id(book))
                if dup is None:
                    dup = _OrderBook(self._stp, record_events=book.record_events, capacity=0)
                    memo[id(book)] = dup
                mc_book_copy_into(dup, book)
                twin._adopt(sym, name, capacity, dict(zip(_LIMIT_NAMES, limits)), dup)
            twin._reindex()
            twin._e.now_ns = e.now_ns
            if self.record_events and e.n_ev > 0:
                if _reserve(twin._e, e.n_ev) < 0:
                    raise MemoryError()
                memcpy(twin._e.ev, e.ev, e.n_ev * sizeof(mc_event))
                twin._e.n_ev = e.n_ev
        finally:
            mc_engine_unhold(e, nested)
        # not the engine's state: copied once it is released
        twin.recovery_report = copy.deepcopy(self.recovery_report, memo)
        if cls is not Engine:
            _set_subclass_state(twin, copy.deepcopy(_subclass_state(self), memo))
        return twin

    def _holding(self):
        """A context manager holding the engine for a read in several steps: meanwhile a call
        from another thread raises :class:`~matchcore.BusyError`, this thread's go on. For the
        readers written in Python (``durability.snapshot``)."""
        cdef _EngineHold h = _EngineHold.__new__(_EngineHold)
        h.eng = self
        h.nested = []
        return h

    cdef list _symbol_entries(self):
        # (symbol, name, capacity, limits in _LIMIT_NAMES order, book) per slot: what a copy
        # or pickle of the engine takes of each symbol
        cdef mc_engine* e = self._e
        cdef int32_t k
        cdef uint32_t sym
        cdef mc_symbol_cfg* c
        out = []
        for k in range(e.n_books):
            sym = e.symbols[k]
            c = &e.cfg[k]
            out.append((sym, self._names.get(sym), self._capacity.get(sym, 0),
                        (c.tick, c.min_price, c.max_price, c.ref_price, c.band, c.max_qty,
                         c.max_notional),
                        self._books[k]))
        return out

    cdef int _check_copyable(self) except -1:
        _check_busy(self._e)
        if self._jc is not None:
            raise TypeError(
                f"cannot pickle or copy an Engine with a journal attached ({self._jc.path!r}): "
                f"a copy would either journal nothing while looking durable, or write into the "
                f"same journal directory, which this engine holds LOCKed, and corrupt it. For "
                f"an unjournaled copy of its state: eng.sync(), then "
                f"Engine.recover(DIR, readonly=True) (works while this engine runs); for a "
                f"durable one: eng.close(), copy the directory, Engine.recover(COPY)")
        return 0

    cdef _adopt(self, uint32_t sym, name, int64_t capacity, dict limits, OrderBook book):
        # Unpickling: register an already built book under `sym` (add_symbol without making
        # the book). No journal exists on a new engine, so nothing is journaled.
        if sym in self._by_id or (name is not None and name in self._by_name):
            raise ValueError(f"pickled Engine: symbol {sym} appears twice")
        if book._b.stp != self._stp:
            raise ValueError(f"pickled Engine: the book of symbol {sym} has another STP mode")
        if type(book) is not _OrderBook:
            # a subclass's attributes could refer back to the engine through its books, which
            # the engine holds out of the collector's sight (see _books_hold): a leak
            raise TypeError(f"pickled Engine: symbol {sym} holds {type(book).__name__}, not an "
                            f"OrderBook")
        if book._b.guard & MC_GUARD_HOSTED:
            # one book, one host: a book listed twice would be driven by two slots
            raise ValueError(f"pickled Engine: the book of symbol {sym} already belongs to an "
                             f"engine or replayer")
        self._register(sym, name, capacity, limits, book)

    def events(self, owner=None):
        """Events since the previous call (per-call API), all symbols, as :data:`EVENT_DTYPE`;
        with ``owner=w`` only w's (own orders and fills as maker; filtered in compiled code,
        the other pending events are dropped). O(pending events)."""
        cdef mc_engine* e = self._e
        cdef int64_t k
        cdef uint64_t w = 0 if owner is None else _u64_of(owner, _u64_owner)
        # held while the result array is made (its allocation may run other threads' code)
        mc_engine_busy_enter(e, MC_BUSY_QUERY)
        try:
            if not self.record_events:
                e.n_ev = 0
            if owner is None:
                out = _events_array(e.ev, e.n_ev)
            else:
                k = mc_filter_events_owner(e.ev, e.n_ev, w, NULL)
                out = np.empty(k, dtype=EVENT_DTYPE)
                mc_filter_events_owner(e.ev, e.n_ev, w, <mc_event*>cnp.PyArray_DATA(out))
            e.n_ev = 0
        finally:
            mc_engine_busy_leave(e)
        return out

    # ---- queries ----

    def get(self, order_id):
        """(symbol, side, price, open_qty) of a resting order, or None. O(1)."""
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef uint32_t sym
        cdef int side
        cdef int64_t price, qty
        _check_busy(self._e)
        if mc_engine_get(self._e, oid, &sym, &side, &price, &qty):
            return (sym, side, price, qty)
        return None

    def best_bid(self, symbol):
        """(price, qty) of a symbol's best bid, or None. O(1)."""
        return self.book(symbol).best_bid()

    def best_ask(self, symbol):
        """(price, qty) of a symbol's best ask, or None. O(1)."""
        return self.book(symbol).best_ask()

    def depth(self, symbol, n=10):
        """A symbol's top n levels per side (see :meth:`OrderBook.depth`)."""
        return self.book(symbol).depth(n)

    def depth_orders(self, symbol, n=10):
        """A symbol's top n levels per side with order counts (see :meth:`OrderBook.depth_orders`)."""
        return self.book(symbol).depth_orders(n)

    def level(self, symbol, side, price):
        """A symbol's orders at one price level in time priority (see :meth:`OrderBook.level`)."""
        return self.book(symbol).level(side, price)

    def level_count(self, symbol, side):
        """Number of price levels on one side of a symbol's book. O(1)."""
        return self.book(symbol).level_count(side)

    def depth_into(self, symbol, bids_out, asks_out):
        """A symbol's depth into caller arrays (see :meth:`OrderBook.depth_into`)."""
        return self.book(symbol).depth_into(bids_out, asks_out)

    def queue_position(self, order_id):
        """Open qty ahead of a resting order at its level (KeyError if it rests nowhere)."""
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        _check_busy(self._e)
        cdef int32_t k = _resting_slot(self._e, oid)
        if k < 0:
            raise KeyError(order_id)
        return self._books[k].queue_position(order_id)

    def __len__(self):
        _check_busy(self._e)
        return mc_engine_count(self._e)

    def __repr__(self):
        _check_busy(self._e)
        return f"<Engine symbols={self._e.n_books} orders={mc_engine_count(self._e)}>"

    @property
    def stp(self):
        """The self-trade prevention mode of every book (:class:`STP`)."""
        return STP(self._stp)

    @property
    def busy(self):
        """True while a call that releases the GIL runs on this engine or one of its books in
        some thread (:meth:`process`, a journal write or sync, ...):
        any other call on the engine meanwhile raises :class:`~matchcore.BusyError`. O(1).

        >>> Engine().busy
        False
        """
        return self._e.busy != 0

    def state_hash(self):
        """64-bit deterministic hash over every symbol (id, name, limits) and its book (every
        level and every order in queue order with id, open qty, owner, post-only; STP mode).
        Equal hashes: the engines behave the same from here on. O(orders + levels)."""
        _check_busy(self._e)
        return mc_engine_state_hash(self._e)

    @property
    def handle(self):
        """The engine's checked handle (a positive int) for the C function table and Numba.

        Validated on every table call: once this Engine is gone, calls with it return
        ``-MC_ERR_HANDLE`` and never touch freed memory. The books' handles (``engine_book``,
        ``eng.book(s).handle``) live as long as their OrderBook objects: with the engine, or
        longer if Python still holds ``eng.book(s)`` (then a standalone book). O(1).

        >>> Engine().handle > 0
        True
        """
        return self._handle()

    @property
    def address(self):
        """Same as :attr:`handle` (the name older code passes to the C table and Numba)."""
        return self._handle()

    def _handle(self):
        """Same as :attr:`handle`."""
        _check_busy(self._e)
        if self._jc is not None:
            raise ValueError("a journaled Engine is driven through its Python methods and "
                             "process() only: the C function table and Numba would bypass "
                             "the journal")
        return self._e.handle

    @property
    def raw_address(self):
        """The ``mc_engine*`` as an int: a borrowed pointer, owning nothing, checked by nothing,
        valid while this Engine is alive; no table function takes it (they take :attr:`handle`).
        O(1).

        >>> eng = Engine(); eng.raw_address != eng.handle
        True
        """
        return <size_t>self._e

    def check_invariants(self, *, allow_crossed=False):
        """Every book's invariants (:meth:`OrderBook.check_invariants`, with the same
        ``allow_crossed``: an engine holding books built with ``place`` or restored from
        exchange data may hold locked or crossed ones), plus: no id rests in two books, and the
        id routing finds every resting order in its own book. Raises ``AssertionError`` naming
        the first violation. O(orders). Holds the engine while it reads: a call from another
        thread meanwhile raises :class:`~matchcore.BusyError`.

        >>> eng = Engine(); _ = eng.add_symbol(1); eng.check_invariants(allow_crossed=True)
        """
        cdef bint crossed_ok = mc_bool_arg(allow_crossed, "allow_crossed")
        cdef int32_t k
        # the books are read one after the other: held, no other thread's call comes between
        # them (and makes an order seem to rest in two books, or in none)
        cdef int nested = mc_engine_hold(self._e)
        try:
            seen = {}
            for k in range(self._e.n_books):
                book = self._books[k]
                book.check_invariants(allow_crossed=crossed_ok)
                sym = self._e.symbols[k]
                # Exact level totals: a total beyond int64 is legal, and depth() refuses it.
                for side, rows in enumerate(book._depth_exact(1 << 62)):
                    for price, _, _ in rows:
                        for oid, _ in book.level(side, price):
                            if oid in seen:
                                raise AssertionError(f"order {oid} rests in symbols "
                                                     f"{seen[oid]} and {sym}")
                            seen[oid] = sym
                            if _resting_slot(self._e, oid) != k:
                                raise AssertionError(f"order {oid} resting in symbol {sym} is "
                                                     f"not routed to it")
        finally:
            mc_engine_unhold(self._e, nested)


cdef uint64_t _name_hash(uint32_t sym, str name) except? 0:
    # Summed over the symbols, so the total does not depend on the order names were added.
    cdef uint64_t h = <uint64_t>14695981039346656037ULL
    for byte in sym.to_bytes(4, "little") + name.encode("utf-8"):
        h = (h ^ <uint64_t>byte) * <uint64_t>1099511628211ULL
    return h ^ (h >> 31)


cdef inline uint32_t _entry_symbol(Engine eng, symbol, uint64_t oid) except? 0xFFFFFFFF:
    # The symbol of a per-call order entry. A plain int in [0, 2**32), what a simulator passes on
    # every call, is read inline; anything else (a name, a numpy integer, an IntEnum, an id out
    # of range) goes through Engine._order_symbol, whose int() and Python comparisons cost a
    # per-call submit about 45 instructions more.
    # (the bound as a shift: a literal 0xFFFFFFFF is a Python int to Cython, and the compare
    # made an int object and a Python comparison on every call)
    if _int_small(symbol) and (<uint64_t>_int_value(symbol) >> 32) == 0:
        return <uint32_t>_int_value(symbol)
    return eng._order_symbol(symbol, oid)


cdef uint32_t _symbol_id(symbol) except? 0xFFFFFFFF:
    if isinstance(symbol, str):
        raise TypeError("use add_symbol(id, name) to name a symbol")
    cdef object s = mc_int_arg(symbol, "symbol")
    if s < 0 or s > 0xFFFFFFFF:
        raise ValueError(f"symbol id must be in [0, 2**32), got {symbol!r}")
    return <uint32_t>s


cdef dict _check_limits(dict limits):
    # The limits as plain ints, every one checked: the caller applies them only after this.
    unknown = set(limits) - set(_LIMIT_NAMES)
    if unknown:
        raise TypeError(f"unknown limit(s) {sorted(unknown)}; known: {list(_LIMIT_NAMES)}")
    cdef dict out = {}
    for key, value in limits.items():
        v = mc_int_arg(value, key)
        if key == "tick" and v < 1:
            raise ValueError(f"limit tick must be >= 1 (1 accepts every price), got {v}")
        if v < 0:
            raise ValueError(f"limit {key} must be >= 0 (0 disables it), got {v}")
        if v > 0x7FFFFFFFFFFFFFFF:
            raise OverflowError(f"limit {key} must be below 2**63 (int64), got {v}")
        out[key] = v
    return out


# The limits of a new symbol: none (what mc_engine_add_book sets)
_NO_LIMITS = {"tick": 1, "min_price": 0, "max_price": 0, "ref_price": 0, "band": 0, "max_qty": 0,
              "max_notional": 0}


cdef _check_limit_set(uint32_t sym, dict lim):
    # All seven limits of a symbol (a merged set), each valid alone (_check_limits): refused,
    # naming the limits in conflict, when together they accept no limit order, which is a
    # mistake (a typo, a band moved off the market), never a way to configure anything. A limit
    # order is accepted at a multiple of tick in [1, 2**63) within [min_price, max_price] and
    # ref_price +- band (each where enabled), and qty 1 at that price within max_notional.
    cdef object lo = 1, hi = 0x7FFFFFFFFFFFFFFF
    cdef str lo_by = "the lowest price", hi_by = "the highest price"
    mn, mx, ref, band = lim["min_price"], lim["max_price"], lim["ref_price"], lim["band"]
    if mn > 0 and mx > 0 and mn > mx:
        raise ValueError(f"symbol {sym}: min_price {mn} > max_price {mx}: no price is accepted")
    if mn > 0:
        lo, lo_by = mn, "min_price"
    if mx > 0:
        hi, hi_by = mx, "max_price"
    if ref > 0 and band > 0:
        if ref - band > hi or ref + band < lo:
            edges = (max(1, ref - band), min(ref + band, 0x7FFFFFFFFFFFFFFF))
            raise ValueError(f"symbol {sym}: the band ref_price {ref} +- band {band} = "
                             f"[{edges[0]}, {edges[1]}] lies outside [{lo}, {hi}] "
                             f"({lo_by}, {hi_by}): no price is accepted")
        if ref - band > lo:
            lo, lo_by = ref - band, "ref_price - band"
        if ref + band < hi:
            hi, hi_by = ref + band, "ref_price + band"
    notional = lim["max_notional"]
    if 0 < notional < hi:
        if notional < lo:
            raise ValueError(f"symbol {sym}: max_notional {notional} < {lo}, the lowest price "
                             f"accepted ({lo_by}): every limit order (qty >= 1) is refused")
        hi, hi_by = notional, "max_notional at qty 1"
    tick = lim["tick"]
    if tick > 1 and (lo + tick - 1) // tick * tick > hi:
        raise ValueError(f"symbol {sym}: no multiple of tick {tick} in the prices accepted, "
                         f"[{lo}, {hi}] ({lo_by}, {hi_by}): no price is accepted")


cdef object _limit_set_problem(uint32_t sym, dict lim):
    # _check_limit_set's refusal as a message, or None
    try:
        _check_limit_set(sym, lim)
    except ValueError as exc:
        return str(exc)
    return None


cdef int _check_limit_change(uint32_t sym, dict now, dict merged) except -1:
    # The limits a change leaves must accept some limit order. A symbol whose limits already
    # accept none (an older engine journaled such limits, and recovery restores them as
    # written) may still change a limit that leaves that reason as it is (max_qty, say); a
    # change that causes the contradiction, or alters it, is refused as on any symbol.
    problem = _limit_set_problem(sym, merged)
    if problem is not None and problem != _limit_set_problem(sym, now):
        raise ValueError(problem)
    return 0


def _engine_from_pickle(fmt, stp, bint record_events, now_ns, symbols, events, recovery_report,
                        cls=None):
    """Rebuild a pickled :class:`Engine` (``Engine.__reduce__``), of class ``cls`` (a subclass,
    made without calling its ``__init__``, as pickle does) when given."""
    _check_pickle_format(fmt, "Engine")
    if cls is None:
        cls = Engine
    elif not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise TypeError(f"pickled Engine: {cls!r} is not an Engine class")
    cdef Engine eng = cls.__new__(cls, stp, record_events=record_events)
    cdef mc_engine* e = eng._e
    for entry in symbols:
        # (format 2: and the book's state as the engine's hold read it)
        sym, name, capacity, limits, book = entry[:5]
        state = entry[5] if len(entry) > 5 else None
        if isinstance(state, _HeldState):
            # (the arguments of a __reduce__ called in this process, not pickled)
            state = state.args
        if not isinstance(book, _OrderBook):
            raise TypeError(f"pickled Engine: symbol {sym} holds {type(book).__name__}, "
                            f"not an OrderBook")
        if state is not None and (<OrderBook>book)._unpickled_from != id(state[1]):
            # the book object was pickled at another moment than its engine (before it, or
            # another thread's call came before the pickler reached it): it takes the state
            # read with the engine's
            mc_book_copy_into(book, _book_from_pickle(*state))
        (<OrderBook>book)._unpickled_from = 0
        eng._adopt(_symbol_id(sym), None if name is None else str(name),
                   mc_i64_arg(capacity, "capacity"),
                   _check_limits(dict(zip(_LIMIT_NAMES, limits))), book)
    eng._reindex()
    e.now_ns = mc_i64_arg(now_ns, "now_ns")
    cdef const uint8_t[::1] ev = memoryview(events).cast("B")
    cdef int64_t n_ev = ev.shape[0] // <int64_t>sizeof(mc_event)
    if ev.shape[0] % <int64_t>sizeof(mc_event) != 0:
        raise SnapshotError(MC_SNAP_E_CORRUPT, "pickled Engine: pending events are truncated")
    if n_ev > 0:
        if _reserve(e, n_ev) < 0:
            raise MemoryError()
        memcpy(e.ev, &ev[0], n_ev * sizeof(mc_event))
        e.n_ev = n_ev
    eng.recovery_report = recovery_report
    return eng


cdef class _EngineHold:
    # Engine._holding(): the hold as a context manager, for the readers written in Python. One
    # object may be entered again inside itself: each exit releases what its own enter took
    # (a single flag, overwritten by the inner enter, left the engine held for good), and an
    # exit without an enter releases nothing.
    cdef Engine eng
    cdef list nested

    def __enter__(self):
        cdef int n = mc_engine_hold(self.eng._e)
        self.nested.append(n)
        return self.eng

    def __exit__(self, *exc):
        if self.nested:
            mc_engine_unhold(self.eng._e, self.nested.pop())
        return False
