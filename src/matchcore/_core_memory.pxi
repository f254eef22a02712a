# Part of matchcore._core (included by _core.pyx, one C unit): a book's memory. Creation,
# growth of its pools, ladders, id index and event buffer before an operation touches it, freeing,
# and the event record writer.

# ----------------------------------------------------------------------------------------------
# lifecycle and growth
# ----------------------------------------------------------------------------------------------

# Capacity invariants that let _ensure check only three counters: the id index always has room
# for every order slot of the pool (2 x orders_cap entries, load <= 1/2), and each side's ladder
# and price map for every level slot (ladder cap >= levels_cap, map 2 x levels_cap entries).
# The pools grow only after the structures that must hold them, so a failed growth leaves the
# invariants true.

cdef inline int _map_fit(mc_map* m, int64_t n) noexcept nogil:
    # room for n keys at load <= 1/2
    while n * 2 > <int64_t>(m.mask + 1):
        if _map_grow(m) < 0:
            return -1
    return 0


cdef void* _realloc_aligned(void* old, size_t old_bytes, size_t nbytes) noexcept nogil:
    # realloc that keeps the block aligned as _alloc_aligned does: the pools' 64-byte slots
    # then each sit in one cache line. Pools grow by doubling, so the copy is amortised as
    # realloc's is.
    cdef void* p = _alloc_aligned(nbytes)
    if p == NULL:
        return NULL
    if old != NULL:
        memcpy(p, old, old_bytes if old_bytes < nbytes else nbytes)
        free(old)
    return p


# A book whose live orders outgrow its pool gets an id index of at least 8 entries per order
# slot (load <= 1/8), up to this many entries (512 KiB); beyond, and for a pool sized at
# creation, 2 (the invariant above). At a quarter to half full, the index's probes branch
# unpredictably: a new id's home slot is taken by another block of ids about as often as not,
# and callgrind counted one more mispredicted branch per command of stale_cancel at 1-3k resting
# orders (2.77 against 1.79 at a load near 1/16): 23 ns/msg against 17 on a default-capacity
# book. Only a growing book pays for it. The books of a feed replay of many symbols skip it
# (lean_index, see sk_many_books): the extra entries would spread thousands of books over more
# memory than the cache holds.
cdef enum:
    _INDEX_ROOMY = 32768


cdef int _grow_orders(mc_book* b) noexcept nogil:
    cdef int32_t old = b.orders_cap
    cdef int64_t cap = <int64_t>old * 2 if old > 0 else 64
    if cap > 0x7FFFFFF0:
        return -1
    cdef int64_t keys = cap
    if old > 0 and b.n_orders == old and cap * 8 <= _INDEX_ROOMY and not b.lean_index:
        keys = cap * 4              # room for 4 x cap keys at load <= 1/2: 8 entries a slot
    if _map_fit(&b.index, keys) < 0:
        return -1
    cdef mc_order* p = <mc_order*>_realloc_aligned(b.orders, <size_t>old * sizeof(mc_order),
                                                   cap * sizeof(mc_order))
    if p == NULL:
        return -1
    b.orders = p
    cdef int32_t i
    for i in range(old, <int32_t>cap):
        p[i].live = 0
        p[i].next = i + 1 if i + 1 < cap else b.free_order
    b.free_order = old
    b.orders_cap = <int32_t>cap
    return 0


cdef int _grow_levels(mc_book* b) noexcept nogil:
    cdef int32_t old = b.levels_cap
    cdef int64_t cap = <int64_t>old * 2 if old > 0 else 64
    if cap > 0x7FFFFFF0:
        return -1
    cdef int s
    for s in range(2):
        while b.side[s].cap < 2 * cap:      # room to spare on both ends (_ladder_recenter)
            if _grow_ladder(&b.side[s]) < 0:
                return -1
        if _map_fit(&b.side[s].map, cap) < 0:
            return -1
    # one level more, before levels[0]: levels[MC_GAP], the always-empty level of the ladders'
    # gaps (64 bytes: the pool stays aligned to its lines)
    cdef mc_level* p = <mc_level*>_realloc_aligned(
        b.levels - 1 if b.levels != NULL else NULL, (<size_t>old + 1) * sizeof(mc_level),
        (cap + 1) * sizeof(mc_level))
    if p == NULL:
        return -1
    memset(p, 0, sizeof(mc_level))
    p[0].head = -1
    p[0].tail = -1
    p[0].next_free = -1
    p += 1
    b.levels = p
    cdef int32_t i
    for i in range(old, <int32_t>cap):
        p[i].count = -1
        p[i].next_free = i + 1 if i + 1 < cap else b.free_level
    b.free_level = old
    b.levels_cap = <int32_t>cap
    return 0


cdef int _grow_ladder(mc_ladder* L) noexcept nogil:
    # A new allocation of twice the slots, the entries in its middle (room on both ends).
    cdef int64_t cap = <int64_t>L.cap * 2 if L.cap > 0 else 64
    cdef int64_t* k = <int64_t*>malloc(cap * sizeof(int64_t))
    cdef int32_t* v = <int32_t*>malloc(cap * sizeof(int32_t))
    if k == NULL or v == NULL:
        free(k)
        free(v)
        return -1
    cdef int32_t head = <int32_t>((cap - L.n) >> 1)
    if L.n > 0:
        memcpy(k + head, L.keys, L.n * sizeof(int64_t))
        memcpy(v + head, L.lv, L.n * sizeof(int32_t))
    _ladder_free(L)
    L.keys = k + head
    L.lv = v + head
    L.head = head
    L.cap = <int32_t>cap
    return 0


cdef void _ladder_free(mc_ladder* L) noexcept nogil:
    if L.keys != NULL:
        free(L.keys - L.head)
    if L.lv != NULL:
        free(L.lv - L.head)
    L.keys = NULL
    L.lv = NULL


cdef void _ladder_recenter(mc_ladder* L) noexcept nogil:
    # The entries to the middle of their allocation: an insert found no room on the end it
    # moves towards. The ladder has at least twice as many slots as the book has levels
    # (_grow_levels), so this leaves room for n / 2 more inserts on either end: O(1) amortised.
    if L.keys == NULL:
        return
    cdef int32_t head = (L.cap - L.n) >> 1
    cdef int64_t* k = L.keys - L.head + head
    cdef int32_t* v = L.lv - L.head + head
    memmove(k, L.keys, L.n * sizeof(int64_t))
    memmove(v, L.lv, L.n * sizeof(int32_t))
    L.keys = k
    L.lv = v
    L.head = head


cdef int mc_reserve_events(mc_book* b, int64_t extra) noexcept nogil:
    """Make room for `extra` more events; 0 on success, -1 when memory is exhausted."""
    # More than 2**56 events (2**62 bytes) is more than any memory: refused before the
    # doubling below could overflow (it looped forever past 2**62 events) or the byte count
    # wrap (2**58 events asked for 0 bytes and the book then wrote past them).
    if extra < 0 or extra > ((<int64_t>1) << 56) - b.n_ev:
        return -1
    cdef int64_t need = b.n_ev + extra
    if need <= b.ev_cap:
        return 0
    if b.ev_borrowed:
        # the caller's array is full: the rest of the batch goes to the book's own buffer
        b.ev_spill = b.n_ev
        b.ev = b.ev_home
        b.n_ev = b.ev_home_n
        b.ev_cap = b.ev_home_cap
        b.ev_borrowed = 0
        need = b.n_ev + extra
        if need <= b.ev_cap:
            return 0
    cdef int64_t cap = b.ev_cap if b.ev_cap > 0 else 256
    while cap < need:
        cap *= 2
    # aligned: a 64-byte event is then written to one cache line, not two
    cdef mc_event* p = <mc_event*>_realloc_aligned(b.ev, <size_t>b.n_ev * sizeof(mc_event),
                                                   cap * sizeof(mc_event))
    if p == NULL:
        return -1
    b.ev = p
    b.ev_cap = cap
    return 0


cdef int _ensure_slow(mc_book* b, int64_t qty, uint64_t owner) noexcept nogil:
    # Grow whatever _ensure found short; out of line so that the common case stays a few
    # compares in the caller. Event room is made for what this order can write (mc_ev_bound).
    if b.free_order < 0 and _grow_orders(b) < 0:
        return -1
    if b.free_level < 0 and _grow_levels(b) < 0:
        return -1
    cdef int s
    for s in range(2):
        if b.side[s].n >= b.side[s].cap and _grow_ladder(&b.side[s]) < 0:
            return -1
        if ((b.side[s].map.n + 1) * 2 > <int64_t>(b.side[s].map.mask + 1)
                and _map_grow(&b.side[s].map) < 0):
            return -1
    if (b.index.n + 1) * 2 > <int64_t>(b.index.mask + 1) and _map_grow(&b.index) < 0:
        return -1
    cdef int64_t ev = mc_ev_bound(b, qty, owner)
    if b.emit:
        # The book's own buffer grows to room for one event per resting order, so that the
        # inlined test in _ensure passes again for the calls that follow (grown only to this
        # order's bound, every later call came here). A caller's array lent by process() is
        # only asked for this order's room: it cannot grow, and when it runs short the rest
        # of the batch goes to the book's own buffer.
        if not b.ev_borrowed and ev < b.n_orders + 4:
            ev = b.n_orders + 4
        if b.n_ev + ev > b.ev_cap and mc_reserve_events(b, ev) < 0:
            return -1
    return 0


cdef inline int _ensure(mc_book* b, int64_t qty, uint64_t owner) noexcept nogil:
    # Everything a single operation can consume: one order slot, one level, one ladder slot per
    # side, one index entry, and the events an order of `qty` lots from `owner` can write
    # (mc_ev_bound). After this, nothing in the operation can fail. The check is inlined into
    # every entry point (it runs once per message); growth is not. A free order slot and a free
    # level slot imply room in the id index, the ladders and the price maps (the capacity
    # invariants above _grow_orders). Room for one event per resting order covers any order
    # and is tested first; a buffer shorter than that (a deep book, or a caller's array lent by
    # process()) is then held against the order's own bound. _modify spells this out with its
    # second test out of line: inline there, it made _modify too big for the compiler to
    # inline the queue link into it (+28 instructions per command on the standard mix).
    if _likely(_room_ok(b)):
        return 0
    if (b.free_order >= 0 and b.free_level >= 0
            and b.n_ev + mc_ev_bound(b, qty, owner) <= b.ev_cap):
        return 0
    return _ensure_slow(b, qty, owner)


cdef extern from *:
    """
    #define mc_likely(x) __builtin_expect(!!(x), 1)
    """
    bint _likely "mc_likely"(bint c) noexcept nogil


cdef inline bint _room_ok(const mc_book* b) noexcept nogil:
    # _ensure's inlined test
    return (b.free_order >= 0 and b.free_level >= 0
            and (not b.emit or b.n_ev + b.n_orders + 4 <= b.ev_cap))


cdef mc_book* mc_book_new(int stp, int64_t capacity) noexcept nogil:
    """Allocate an empty book; NULL when memory is exhausted."""
    cdef mc_book* b = <mc_book*>calloc(1, sizeof(mc_book))
    if b == NULL:
        return NULL
    b.free_order = -1
    b.free_level = -1
    b.stp = <uint8_t>stp
    b.emit = 1
    if capacity < 64:
        capacity = 64
    b.orders_cap = 0
    if (_map_init(&b.side[0].map, 64) < 0 or _map_init(&b.side[1].map, 64) < 0
            or _map_init(&b.index, capacity) < 0):
        mc_book_free(b)
        return NULL
    while b.orders_cap < capacity:
        if _grow_orders(b) < 0:
            mc_book_free(b)
            return NULL
    if _grow_levels(b) < 0 or mc_reserve_events(b, 1024) < 0:
        mc_book_free(b)
        return NULL
    return b


cdef void mc_book_free(mc_book* b) noexcept nogil:
    if b == NULL:
        return
    free(b.orders)
    if b.levels != NULL:
        free(b.levels - 1)
    cdef int s
    for s in range(2):
        _ladder_free(&b.side[s])
        free(b.side[s].map.tab)
    free(b.index.tab)
    free(b.ev)
    free(b)


cdef void* _dup(const void* src, size_t nbytes) noexcept nogil:
    # aligned as the pools it copies are; the hugepage hint comes before the copy touches pages
    cdef void* p = _alloc_aligned(nbytes)
    if p != NULL and nbytes > 0:
        memcpy(p, src, nbytes)
    return p


cdef mc_book* mc_book_copy(const mc_book* b) noexcept nogil:
    """An independent deep copy of the whole book state, with the events not read yet (a book
    that records events: one that records none has none)."""
    cdef mc_book* c = <mc_book*>calloc(1, sizeof(mc_book))
    if c == NULL:
        return NULL
    c[0] = b[0]
    c.orders = <mc_order*>_dup(b.orders, b.orders_cap * sizeof(mc_order))
    c.levels = <mc_level*>_dup(b.levels - 1, (<size_t>b.levels_cap + 1) * sizeof(mc_level))
    if c.levels != NULL:
        c.levels += 1
    cdef int s
    cdef bint ok = c.orders != NULL and c.levels != NULL
    cdef int64_t* k
    cdef int32_t* v
    for s in range(2):
        # the whole allocation, so that the copy keeps the room on both ends
        k = <int64_t*>_dup(b.side[s].keys - b.side[s].head, b.side[s].cap * sizeof(int64_t))
        v = <int32_t*>_dup(b.side[s].lv - b.side[s].head, b.side[s].cap * sizeof(int32_t))
        c.side[s].keys = k + b.side[s].head if k != NULL else NULL
        c.side[s].lv = v + b.side[s].head if v != NULL else NULL
        c.side[s].map.tab = _map_dup(&b.side[s].map)
        ok = ok and k != NULL and v != NULL and c.side[s].map.tab != NULL
    c.index.tab = _map_dup(&b.index)
    c.ev = <mc_event*>_alloc_aligned(b.ev_cap * sizeof(mc_event))
    c.n_ev = 0
    if c.ev != NULL and not (b.guard & MC_GUARD_NO_EVENTS) and b.n_ev > 0:
        # the caller's pending events, as copy() and pickle keep them
        memcpy(c.ev, b.ev, b.n_ev * sizeof(mc_event))
        c.n_ev = b.n_ev
    c.ev_borrowed = 0
    c.ev_home = NULL
    c.handle = 0          # a copy is a new object: its owner registers it
    c.guard = b.guard & MC_GUARD_NO_EVENTS
    c.host_busy = NULL    # and belongs to no engine or replayer,
    c.engine_owned = 0    # so it takes orders of its own,
    c.journaled = 0       # from C too: no Recorder journals the copy
    # and writes events unless the book records none (a feed replayer's books write none
    # while they are its own, whatever record_events says: the copy is a plain book)
    c.emit = 0 if b.guard & MC_GUARD_NO_EVENTS else 1
    # and its id index grows as any standalone book's (as its pickle's): the lean growth is for
    # a replay's thousands of books sharing the cache (see _grow_orders)
    c.lean_index = 0
    if not ok or c.index.tab == NULL or c.ev == NULL:
        mc_book_free(c)
        return NULL
    return c


cdef int mc_book_clear(mc_book* b) noexcept nogil:
    """Remove every order (no events); keeps the allocated capacity."""
    cdef int32_t i
    b.free_order = -1
    for i in range(b.orders_cap - 1, -1, -1):
        b.orders[i].live = 0
        b.orders[i].next = b.free_order
        b.free_order = i
    b.free_level = -1
    for i in range(b.levels_cap - 1, -1, -1):
        b.levels[i].count = -1
        b.levels[i].next_free = b.free_level
        b.free_level = i
    cdef int s
    for s in range(2):
        b.side[s].n = 0
        b.side[s].empties = 0
        b.side[s].gaps = 0
        _ladder_recenter(&b.side[s])
        _map_clear(&b.side[s].map)
    _map_clear(&b.index)
    b.n_orders = 0
    b.n_ev = 0
    return 0


# ----------------------------------------------------------------------------------------------
# events
# ----------------------------------------------------------------------------------------------

cdef inline void _emit(mc_book* b, int kind, uint64_t oid, uint64_t maker, int side, int64_t price,
                       int64_t qty, uint64_t owner, uint64_t maker_owner, int reason) noexcept nogil:
    if not b.emit:
        return
    cdef mc_event* e = &b.ev[b.n_ev]
    b.n_ev += 1
    e.ts_ns = b.now_ns
    e.order_id = oid
    e.maker_id = maker
    e.price = price
    e.qty = qty
    e.owner = owner
    e.maker_owner = maker_owner
    e.symbol = b.symbol
    e.kind = <uint8_t>kind
    e.side = <uint8_t>side
    e.reason = <uint8_t>reason
    e._pad = 0
