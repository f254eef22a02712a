# Part of matchcore._engine (included by _engine.pyx, one C unit): the engine's books. Creation,
# the symbol table, the order-id routing index and its growth, the event buffer lent to the books,
# the per-symbol limits, and one command's routing (submit, market, cancel, modify).

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


cdef int32_t mc_engine_add_book(mc_engine* e, uint32_t symbol, mc_book* b,
                                bint route=1) noexcept nogil:
    """Register a book under a new symbol id; returns its slot, -1 if the id exists, -2 on
    memory exhaustion. Limits start disabled (tick 1). route=0: the second book does not route
    the first one's resting orders, for a caller that rebuilds the routing of every book once
    they are all in (mc_engine_reindex: unpickling, copies)."""
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
    if e.n_books == 1 and route and _route_all(e) < 0:
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
    cdef int64_t r, was_ns
    if k < 0:
        if _reserve(e, 1) < 0:
            return -MC_ERR_NOMEM
        _reject(e, symbol, oid, mc_side_byte(side), price, qty, owner, MC_R_UNKNOWN_SYMBOL)
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
    was_ns = b.now_ns
    b.now_ns = e.now_ns
    _lend(e, b)
    r = mc_submit(b, oid, side, price, qty, tif, owner, post_only)
    _take_back(e, b)
    if r < 0:
        # refused by the book itself (a bad field, its own duplicate, post-only crossing):
        # its clock stays, as for a refusal of the engine's (limits, unknown symbol)
        b.now_ns = was_ns
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
    cdef int64_t r, was_ns
    if k < 0:
        if _reserve(e, 1) < 0:
            return -MC_ERR_NOMEM
        _reject(e, symbol, oid, mc_side_byte(side), 0, qty, owner, MC_R_UNKNOWN_SYMBOL)
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
    was_ns = b.now_ns
    b.now_ns = e.now_ns
    _lend(e, b)
    r = mc_market(b, oid, side, qty, owner)
    _take_back(e, b)
    if r < 0:
        b.now_ns = was_ns       # refused by the book: its clock stays (as in a submit)
    return r


cdef int64_t mc_engine_cancel(mc_engine* e, uint32_t symbol, uint64_t oid) noexcept nogil:
    """Cancel by order id in whichever book it rests. `symbol` is only echoed in the REJECTED
    event when the id rests nowhere. Returns the open qty removed, or -reason."""
    return _engine_cancel(e, symbol, oid, 0)


cdef int64_t mc_engine_cancel_by(mc_engine* e, uint32_t symbol, uint64_t oid,
                                 uint64_t owner) noexcept nogil:
    """mc_engine_cancel with the sender's `owner` for the REJECTED event of an id that rests
    nowhere."""
    return _engine_cancel(e, symbol, oid, owner)


cdef inline int64_t _engine_cancel(mc_engine* e, uint32_t symbol, uint64_t oid,
                                   uint64_t owner) noexcept nogil:
    # owner: the command's sender (0: none), put into the REJECTED event of an id that rests
    # nowhere, which has no order to take an owner from
    # mc_engine_cancel's body, inlined into the batch loop (a call and its register saves less)
    if _reserve(e, 1) < 0:             # first: it may rebuild the index probed below
        return -MC_ERR_NOMEM
    cdef bint routed = _routed(e)
    cdef uint64_t pos = 0
    cdef int32_t k
    cdef mc_book* b
    cdef int64_t r, was_ns
    if routed:
        pos = _map_probe(&e.oid_index, oid)
        k = e.oid_index.tab[pos].val
    else:
        k = 0 if e.n_books == 1 else -1
    if k < 0:
        _reject(e, symbol, oid, 0, 0, 0, owner, MC_R_ORDER_NOT_FOUND)
        return -MC_R_ORDER_NOT_FOUND
    # The book is asked straight away, without checking first that the entry is not stale:
    # its own lookup answers both, and the entry goes either way (the order has left the book
    # now, or had left it before).
    b = e.books[k]
    was_ns = b.now_ns
    b.now_ns = e.now_ns
    _lend(e, b)
    r = mc_cancel_by(b, oid, owner)
    _take_back(e, b)
    if r == -MC_ERR_NOMEM:
        return r
    if r < 0:
        # Refused: no book's clock moves. For a stale entry (the id rests nowhere) as for an id
        # the index does not hold (a copy of the engine, whose index has no stale entries,
        # kept the book's clock, and its snapshot differed).
        b.now_ns = was_ns
    if routed:
        _map_erase_at(&e.oid_index, pos)
    if r == -MC_R_ORDER_NOT_FOUND:
        if e.emit:
            # the book wrote the engine's reject but with its own symbol: an id that rests
            # nowhere is echoed with the command's
            _ev_last(e).symbol = symbol
    return r


cdef int64_t mc_engine_modify(mc_engine* e, uint32_t symbol, uint64_t oid, int64_t qty,
                              int64_t price) noexcept nogil:
    """Modify by order id (price 0 keeps it). A modify that re-enters the order (new price or a
    larger qty) must pass the symbol's limits; shrinking in place always passes. `symbol` is
    only echoed when the id rests nowhere. Returns the qty executed on re-entry, or -reason."""
    return _engine_modify(e, symbol, oid, qty, price, 0)


cdef int64_t mc_engine_modify_by(mc_engine* e, uint32_t symbol, uint64_t oid, int64_t qty,
                                 int64_t price, uint64_t owner) noexcept nogil:
    """mc_engine_modify with the sender's `owner` for the REJECTED event of an id that rests
    nowhere (a resting order's carries its own owner)."""
    return _engine_modify(e, symbol, oid, qty, price, owner)


cdef inline int64_t _engine_modify(mc_engine* e, uint32_t symbol, uint64_t oid, int64_t qty,
                                   int64_t price, uint64_t owner) noexcept nogil:
    # mc_engine_modify's body, inlined into the batch loop (a call and its register saves less
    # per modify); what the engine checks itself is out of line
    cdef int32_t k = _route(e, oid)
    cdef mc_book* b
    cdef int64_t r, was_ns
    if k >= 0 and qty > 0 and price >= 0 and not e.cfg[k].on:
        # Nothing for the engine to check: the book looks the order up itself. An entry that
        # is stale (the order has left) makes the book reject it, as the engine would, but
        # with the book's symbol: an id that rests nowhere is echoed with the command's.
        b = e.books[k]
        # (the order's owner is not read here: room for any owner's)
        if _reserve_order(e, b, qty, 1) < 0:
            return -MC_ERR_NOMEM
        was_ns = b.now_ns
        b.now_ns = e.now_ns
        _lend(e, b)
        r = mc_modify_by(b, oid, qty, price, owner)
        _take_back(e, b)
        if r < 0:
            b.now_ns = was_ns       # refused (a stale entry, a post-only cross): as in a cancel
            if r == -MC_R_ORDER_NOT_FOUND and e.emit:
                _ev_last(e).symbol = symbol
        return r
    return _engine_modify_checked(e, k, symbol, oid, qty, price, owner)


cdef int64_t _engine_modify_checked(mc_engine* e, int32_t k, uint32_t symbol, uint64_t oid,
                                    int64_t qty, int64_t price, uint64_t owner) noexcept nogil:
    # _engine_modify for a symbol with limits, an id the engine does not route or bad fields;
    # k: the id's routing entry (-1: none)
    cdef int32_t idx
    cdef mc_book* b
    cdef const mc_order* o
    cdef int reason = MC_R_NONE
    cdef int64_t new_price, r, was_ns
    # The order's slot in its book, found once: its price, qty and owner are read from it.
    idx = mc_find(e.books[k], oid) if k >= 0 else -1
    if idx < 0:
        if _reserve(e, 1) < 0:
            return -MC_ERR_NOMEM
        # The book's own order of checks: qty, then price, then existence.
        reason = (MC_R_INVALID_QTY if qty <= 0 else
                  MC_R_INVALID_PRICE if price < 0 else MC_R_ORDER_NOT_FOUND)
        _reject(e, symbol, oid, 0, price, qty, owner, reason)
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
    was_ns = b.now_ns
    b.now_ns = e.now_ns
    _lend(e, b)
    r = mc_modify(b, oid, qty, price)
    _take_back(e, b)
    if r < 0:
        b.now_ns = was_ns       # refused by the book: its clock stays (as in a submit)
    return r


cdef int64_t mc_engine_apply(mc_engine* e, const mc_command* c) noexcept nogil:
    """One command record (its `symbol` picks the book for SUBMIT and MARKET)."""
    return _engine_apply(e, c, _map_find(&e.sym_index, c.symbol)
                         if c.kind == MC_CMD_SUBMIT or c.kind == MC_CMD_MARKET else -1)


cdef inline int64_t _engine_apply(mc_engine* e, const mc_command* c, int32_t k) noexcept nogil:
    # mc_engine_apply with the slot k of the command's symbol already looked up (used by SUBMIT
    # and MARKET only)
    cdef int64_t was_ns = e.now_ns
    cdef int64_t r
    e.now_ns = c.ts_ns
    if c.kind == MC_CMD_SUBMIT:
        r = _engine_submit(e, k, c.symbol, c.order_id, c.side, c.price, c.qty, c.tif, c.owner,
                           c.post_only)
    elif c.kind == MC_CMD_MARKET:
        r = _engine_market(e, k, c.symbol, c.order_id, c.side, c.qty, c.owner)
    elif c.kind == MC_CMD_CANCEL:
        r = _engine_cancel(e, c.symbol, c.order_id, c.owner)
    elif c.kind == MC_CMD_MODIFY:
        r = _engine_modify(e, c.symbol, c.order_id, c.qty, c.price, c.owner)
    elif _reserve(e, 1) < 0:
        r = -MC_ERR_NOMEM
    else:
        _reject(e, c.symbol, c.order_id, c.side, c.price, c.qty, c.owner, MC_R_INVALID_COMMAND)
        r = -MC_R_INVALID_COMMAND
    if r < 0:
        # a refused command moves no clock, the engine's as its books' (its REJECTED event
        # carries the command's time all the same)
        e.now_ns = was_ns
    return r
