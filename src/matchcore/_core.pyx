# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled order book: C structs, one matching loop for both sides, events in a buffer.

Everything below the ``OrderBook`` class is plain C (``noexcept nogil``): no Python objects, no
exceptions, no allocation per order in steady state. Growth (order pool, level pool, ladders,
id index, event buffer) happens in ``_ensure`` before an operation touches the book, so an
allocation failure leaves the book unchanged and is reported as ``-MC_ERR_NOMEM``.
"""

cimport cython
from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint8_t, INT64_MIN, INT64_MAX
from libc.stdlib cimport calloc, malloc, realloc, free
from libc.string cimport memcpy, memmove, memset, memcmp

import weakref

import numpy as np
cimport numpy as cnp
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.list cimport PyList_GET_ITEM
from cpython.ref cimport PyObject
from cpython.pythread cimport PyThread_get_thread_ident
from matchcore._handles cimport mc_handle_new, mc_handle_release, mc_handle_set, MC_H_BOOK
from matchcore._map cimport (
    GOLDEN, _alloc_aligned, _home, _map_init, _map_find, _map_probe,
    _map_probe_from, _map_put, _map_fill, _map_erase, _map_erase_at, _map_clear, _map_grow, _map_dup,
    _map_prefetch, _prefetch,
)
from enum import IntEnum

cnp.import_array()

cdef extern from "mc_clock.h" nogil:
    int64_t mc_tsc()

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
    """An independent deep copy of the whole book state; its event buffer starts empty."""
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
    c.ev_borrowed = 0
    c.ev_home = NULL
    c.handle = 0          # a copy is a new object: its owner registers it
    c.guard = b.guard & MC_GUARD_NO_EVENTS
    c.host_busy = NULL    # and belongs to no engine or replayer,
    c.engine_owned = 0    # so it takes orders of its own
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


# ----------------------------------------------------------------------------------------------
# price ladder
# ----------------------------------------------------------------------------------------------

cdef inline int64_t _sat64(mc_i128 v) noexcept nogil:
    # A level total for an int64 output: exact up to 2**63-1, saturated beyond.
    return <int64_t>v if v <= <mc_i128>0x7FFFFFFFFFFFFFFF else <int64_t>0x7FFFFFFFFFFFFFFF


cdef inline int64_t _key(int side, int64_t price) noexcept nogil:
    return price if side == MC_BUY else -price


cdef inline int32_t _ladder_pos(const mc_ladder* L, int64_t key) noexcept nogil:
    # Index of the first key >= `key`. New levels are nearly always created near the touch,
    # which is the end of the array, so the search gallops down from the end (1, 2, 4... levels
    # below the top) and then bisects the bracket: O(log distance from the touch), and on a
    # ladder of 200k levels it reads a few hot lines instead of 18 scattered ones. The bisection
    # is branch-free: its comparisons over prices are unpredictable, and mispredictions cost
    # more than the extra iterations.
    cdef int32_t n = L.n
    cdef int32_t hi = n, step = 1, lo
    cdef const int64_t* base
    cdef int32_t half
    # invariant: keys[hi..n) >= key
    while hi > 0 and L.keys[hi - 1] >= key:
        lo = hi - step
        if lo <= 0 or L.keys[lo] < key:
            break
        hi = lo
        step <<= 1
    else:
        return hi
    # the answer lies in [max(hi - step, 0), hi): keys below it are < key
    lo = hi - step
    if lo < 0:
        lo = 0
    base = L.keys + lo
    n = hi - lo
    while n > 1:
        half = n >> 1
        base = base + half if base[half - 1] < key else base
        n -= half
    return <int32_t>(base - L.keys) + (base[0] < key)


cdef inline int32_t _level_find(const mc_book* b, int side, int64_t price) noexcept nogil:
    return _map_find(&b.side[side].map, <uint64_t>price)


cdef inline int32_t _level_get_or_add(mc_book* b, int side, int64_t price) noexcept nogil:
    cdef mc_ladder* L = &b.side[side]
    cdef int32_t lv = _map_find(&L.map, <uint64_t>price)
    if lv >= 0:
        # a level kept empty in the ladder comes back into use (no branch: unpredictable)
        L.empties -= b.levels[lv].count == 0
        return lv
    return _level_add(b, L, side, price)


cdef inline void _ladder_open(mc_ladder* L, int32_t pos) noexcept nogil:
    # Room for a new entry at pos (< n): the fewer of the entries below it move down one, or
    # those from pos on move up one; the caller writes the entry and counts it.
    if pos < L.n - pos:
        if L.head == 0:
            _ladder_recenter(L)
        memmove(L.keys - 1, L.keys, pos * sizeof(int64_t))
        memmove(L.lv - 1, L.lv, pos * sizeof(int32_t))
        L.keys -= 1
        L.lv -= 1
        L.head -= 1
    else:
        if L.head + L.n == L.cap:
            _ladder_recenter(L)
        memmove(&L.keys[pos + 1], &L.keys[pos], (L.n - pos) * sizeof(int64_t))
        memmove(&L.lv[pos + 1], &L.lv[pos], (L.n - pos) * sizeof(int32_t))


cdef void _ladder_spread(mc_ladder* L, int32_t a, int32_t m, int32_t w) noexcept nogil:
    # The m entries (no gaps) at [a, a + m) spread evenly over [a, a + w), the last one at
    # a + w - 1, gaps between them holding the key of the entry above. From the top down, each
    # entry lands at or above where it was read, so nothing is overwritten before it is read.
    cdef int32_t k, g, dst, above = a + w
    cdef int64_t key
    for k in range(m - 1, -1, -1):
        dst = a + <int32_t>((<int64_t>(k + 1) * w) // m) - 1
        key = L.keys[a + k]
        L.lv[dst] = L.lv[a + k]
        L.keys[dst] = key
        for g in range(dst + 1, above):
            L.keys[g] = L.keys[above]
            L.lv[g] = MC_GAP
        above = dst
    for g in range(a, above):
        L.keys[g] = L.keys[above]
        L.lv[g] = MC_GAP


cdef int32_t _ladder_pack(mc_ladder* L, int32_t a, int32_t b) noexcept nogil:
    # The entries of [a, b) that are not gaps to [a, a + m), in order; returns m.
    cdef int32_t i, j = a
    for i in range(a, b):
        if L.lv[i] != MC_GAP:
            L.keys[j] = L.keys[i]
            L.lv[j] = L.lv[i]
            j += 1
    return j - a


cdef bint _ladder_respread(mc_ladder* L, int32_t pos) noexcept nogil:
    # No gap near pos: the smallest aligned window around it (128, 256, ... entries) that holds
    # enough gaps is spread evenly, so that a gap lies within 32 entries of every entry of it.
    # "Enough" rises from 1/32 of a window of 128 to 1/8 of the whole ladder: a spread window's
    # halves then hold more gaps than they need, and absorb that many inserts before either is
    # spread again (a packed-memory array's thresholds: O(log^2 n) amortised moves per insert).
    # When the whole ladder holds too few, it gets a gap for every 2 levels (new allocation).
    # False only when that allocation fails; the caller then moves entries as before.
    cdef int32_t n = L.n, w = 128, a, b, g, i, m, depth = 0, top = 1
    while (<int64_t>128 << top) < n:
        top += 1
    while True:
        if w >= n:
            a = 0
            b = n
        else:
            a = (pos // w) * w
            b = a + w
            if b > n:
                b = n
                a = n - w
        g = 0
        for i in range(a, b):
            g += L.lv[i] == MC_GAP
        # g / (b - a) >= 1/32 + (1/8 - 1/32) * depth / top
        if <int64_t>g * 32 * top >= <int64_t>(b - a) * (top + 3 * depth) and g > 0:
            m = _ladder_pack(L, a, b)
            _ladder_spread(L, a, m, b - a)
            return True
        if w >= n:
            break
        w <<= 1
        depth += 1
    return _ladder_regap(L)


cdef bint _ladder_regap(mc_ladder* L) noexcept nogil:
    # The whole ladder into a new allocation with a gap for every 2 levels, in the middle of it:
    # after it a third of the entries are gaps, and the next time comes after about n/4 inserts.
    cdef int32_t m = L.n - L.gaps
    cdef int64_t n2 = <int64_t>m + m // 2 + 1
    cdef int64_t cap = L.cap
    while cap < 2 * <int64_t>m + 64:     # as without gaps (>= 2 x levels): room on both ends
        cap *= 2
    if cap > 0x7FFFFFF0:
        return False
    cdef int64_t* k = <int64_t*>malloc(cap * sizeof(int64_t))
    cdef int32_t* v = <int32_t*>malloc(cap * sizeof(int32_t))
    if k == NULL or v == NULL:
        free(k)
        free(v)
        return False
    cdef int32_t head = <int32_t>((cap - n2) >> 1)
    cdef int32_t i, j = head
    for i in range(L.n):
        if L.lv[i] != MC_GAP:
            k[j] = L.keys[i]
            v[j] = L.lv[i]
            j += 1
    _ladder_free(L)
    L.keys = k + head
    L.lv = v + head
    L.head = head
    L.cap = <int32_t>cap
    L.n = <int32_t>n2
    L.gaps = <int32_t>(n2 - m)
    _ladder_spread(L, 0, m, <int32_t>n2)
    return True


cdef void _ladder_insert_far(mc_ladder* L, int32_t pos, int64_t key, int32_t lv) noexcept nogil:
    # A new level at pos, more than MC_LADDER_NEAR entries from both ends: it takes the gap at
    # pos or the nearest one within 32 entries, the entries between moving one place towards it.
    cdef int32_t j, lo, hi, d
    cdef bint spread = False
    if L.lv[pos] == MC_GAP:
        # the first entry >= key is a gap (it holds its next level's key): the level takes it
        L.keys[pos] = key
        L.lv[pos] = lv
        L.gaps -= 1
        return
    while True:
        lo = pos - 32 if pos > 32 else 0
        hi = pos + 32 if pos + 32 < L.n - 1 else L.n - 1
        j = -1
        for d in range(1, 33):
            if pos - d >= lo and L.lv[pos - d] == MC_GAP:
                j = pos - d
                break
            if pos + d <= hi and L.lv[pos + d] == MC_GAP:
                j = pos + d
                break
        if j >= 0 or spread:
            break
        if not _ladder_respread(L, pos):
            break
        spread = True
        pos = _ladder_pos(L, key)
        if L.lv[pos] == MC_GAP:
            L.keys[pos] = key
            L.lv[pos] = lv
            L.gaps -= 1
            return
    if j < 0:
        # no gap (the new allocation failed): move the fewer entries, as near the ends
        _ladder_open(L, pos)
        L.keys[pos] = key
        L.lv[pos] = lv
        L.n += 1
        return
    if j > pos:
        memmove(&L.keys[pos + 1], &L.keys[pos], (j - pos) * sizeof(int64_t))
        memmove(&L.lv[pos + 1], &L.lv[pos], (j - pos) * sizeof(int32_t))
    else:
        # the gap is below: the entries between move down and the level goes just below pos
        pos -= 1
        memmove(&L.keys[j], &L.keys[j + 1], (pos - j) * sizeof(int64_t))
        memmove(&L.lv[j], &L.lv[j + 1], (pos - j) * sizeof(int32_t))
    L.keys[pos] = key
    L.lv[pos] = lv
    L.gaps -= 1


# Called through this pointer (set at import): gcc then cannot inline the far insert, with the
# spreading it calls, into _level_add and from there into the queue link, which would make the
# order paths too big for gcc to inline into process() and the per-call methods.
cdef void (*_ladder_far)(mc_ladder*, int32_t, int64_t, int32_t) noexcept nogil
_ladder_far = _ladder_insert_far


cdef int32_t _level_add(mc_book* b, mc_ladder* L, int side, int64_t price) noexcept nogil:
    # Out of line: a new level costs a ladder insert anyway, and inlined this made the queue
    # link too big for gcc to inline into the order paths that call it.
    cdef int32_t lv = b.free_level
    b.free_level = b.levels[lv].next_free
    cdef mc_level* l = &b.levels[lv]
    l.price = price
    l.qty = 0
    l.count = 0
    l.head = -1
    l.tail = -1
    l.next_free = -1
    cdef int64_t key = _key(side, price)
    cdef int32_t pos
    if L.n == 0 or L.keys[L.n - 1] < key:
        pos = L.n
        if L.head + L.n == L.cap:
            _ladder_recenter(L)
    else:
        pos = _ladder_pos(L, key)
        # (a gap at pos near an end moves up with the entries above it: it holds the key of
        # the level above it, greater than this one's)
        if pos > MC_LADDER_NEAR and L.n - pos > MC_LADDER_NEAR:
            _ladder_far(L, pos, key, lv)
            _map_put(&L.map, <uint64_t>price, lv)
            return lv
        _ladder_open(L, pos)
    L.keys[pos] = key
    L.lv[pos] = lv
    L.n += 1
    _map_put(&L.map, <uint64_t>price, lv)
    return lv


cdef inline void _level_free(mc_book* b, mc_ladder* L, int32_t lv) noexcept nogil:
    _map_erase(&L.map, <uint64_t>b.levels[lv].price)
    b.levels[lv].count = -1
    b.levels[lv].next_free = b.free_level
    b.free_level = lv


cdef void _ladder_compact(mc_book* b, mc_ladder* L) noexcept nogil:
    # Empty levels and gaps out of the ladder.
    cdef int32_t i, j = 0
    for i in range(L.n):
        if b.levels[L.lv[i]].count > 0:
            L.keys[j] = L.keys[i]
            L.lv[j] = L.lv[i]
            j += 1
        elif L.lv[i] != MC_GAP:
            _level_free(b, L, L.lv[i])
    L.n = j
    L.empties = 0
    L.gaps = 0


cdef inline void _ladder_pop_top(mc_book* b, mc_ladder* L, int32_t lv) noexcept nogil:
    # The emptied level `lv` is the touch: it comes off the end, with any emptied levels
    # just beneath it (the touch is never an empty level).
    L.n -= 1
    _level_free(b, L, lv)
    while L.n > 0 and b.levels[L.lv[L.n - 1]].count == 0:
        L.n -= 1
        if L.lv[L.n] == MC_GAP:
            L.gaps -= 1
        else:
            L.empties -= 1
            _level_free(b, L, L.lv[L.n])


cdef void _level_emptied(mc_book* b, int side, int32_t lv) noexcept nogil:
    # Out of line: it runs once per emptied level, and inlined it made every caller of
    # _order_unlink too big to inline that in turn.
    cdef mc_ladder* L = &b.side[side]
    if L.lv[L.n - 1] == lv:
        _ladder_pop_top(b, L, lv)
    else:
        L.empties += 1
        if L.empties > L.n - L.empties - L.gaps + 64:
            _ladder_compact(b, L)


# ----------------------------------------------------------------------------------------------
# orders
# ----------------------------------------------------------------------------------------------

cdef extern from *:
    """
    #include <stdint.h>
    /* c ? x : y for pointers, as arithmetic: the compiler keeps it free of branches (a
       ternary on its own is often compiled to one, which mispredicts on random queues). */
    static inline int32_t* mc_pick_link(int c, int32_t* x, int32_t* y) {
        uintptr_t m = (uintptr_t)0 - (uintptr_t)(c != 0);
        return (int32_t*)(((uintptr_t)x & m) | ((uintptr_t)y & ~m));
    }
    """
    int32_t* _pick "mc_pick_link"(int c, int32_t* x, int32_t* y) noexcept nogil


cdef inline void _order_link(mc_book* b, int32_t idx, int64_t price, int64_t qty) noexcept nogil:
    """Queue order slot `idx` (side already set) at the back of its price level."""
    cdef mc_order* o = &b.orders[idx]
    cdef int32_t lv = _level_get_or_add(b, o.side, price)
    cdef mc_level* l = &b.levels[lv]
    o.price = price
    o.qty = qty
    o.seq = b.seq
    b.seq += 1
    o.level = lv
    o.next = -1
    cdef int32_t t = l.tail
    o.prev = t
    # whether the level was empty is a coin toss on thin books: the link to write is picked
    # by a conditional move instead of a branch that mispredicts
    _pick(t >= 0, &b.orders[t if t >= 0 else 0].next, &l.head)[0] = idx
    l.tail = idx
    l.count += 1
    l.qty += qty


cdef inline void _order_unlink(mc_book* b, int32_t idx) noexcept nogil:
    """Take an order out of its level's queue (dropping the level if it empties); the slot and
    its id-index entry stay, so the order can be re-queued without rehashing its id."""
    cdef mc_order* o = &b.orders[idx]
    cdef int32_t lv = o.level
    cdef mc_level* l = &b.levels[lv]
    cdef int32_t prv = o.prev, nxt = o.next
    # An order's place in its queue is unpredictable (first, last, middle, alone), so the two
    # links to rewrite are picked by conditional moves, not branches that mispredict.
    _pick(prv >= 0, &b.orders[prv if prv >= 0 else 0].next, &l.head)[0] = nxt
    _pick(nxt >= 0, &b.orders[nxt if nxt >= 0 else 0].prev, &l.tail)[0] = prv
    l.count -= 1
    l.qty -= o.qty
    if l.count == 0:
        _level_emptied(b, o.side, lv)


cdef inline void _order_free(mc_book* b, int32_t idx) noexcept nogil:
    # Return the slot of an order already out of its queue and the id index to the free list.
    cdef mc_order* o = &b.orders[idx]
    o.live = 0
    o.next = b.free_order
    b.free_order = idx
    b.n_orders -= 1


cdef inline void _order_release(mc_book* b, int32_t idx) noexcept nogil:
    """Drop an unlinked order from the id index and return its slot to the free list."""
    _map_erase(&b.index, b.orders[idx].oid)
    _order_free(b, idx)


cdef inline int32_t _order_new_at(mc_book* b, uint64_t oid, int side, uint64_t owner,
                                  int post_only, uint64_t pos, uint64_t h) noexcept nogil:
    # _order_new with the id's empty index slot already found by a probe from its home h.
    cdef int32_t idx = b.free_order
    cdef mc_order* o = &b.orders[idx]
    b.free_order = o.next
    o.oid = oid
    o.owner = owner
    o.side = <uint8_t>side
    o.post_only = <uint8_t>(post_only != 0)
    o.live = 1
    _map_fill(&b.index, pos, h, oid, idx)
    b.n_orders += 1
    return idx


cdef inline int32_t _order_new(mc_book* b, uint64_t oid, int side, uint64_t owner,
                               int post_only) noexcept nogil:
    cdef int32_t idx = b.free_order
    cdef mc_order* o = &b.orders[idx]
    b.free_order = o.next
    o.oid = oid
    o.owner = owner
    o.side = <uint8_t>side
    o.post_only = <uint8_t>(post_only != 0)
    o.live = 1
    _map_put(&b.index, oid, idx)
    b.n_orders += 1
    return idx


cdef inline void _order_remove(mc_book* b, int32_t idx) noexcept nogil:
    _order_unlink(b, idx)
    _order_release(b, idx)


# ----------------------------------------------------------------------------------------------
# matching: one loop for both sides
# ----------------------------------------------------------------------------------------------

# "no index slot known" for _enter's `pos`
cdef extern from *:
    """
    #define MC_NO_POS ((uint64_t)-1)
    """
    uint64_t NO_POS "MC_NO_POS"

cdef inline int64_t _limit_key(int side, int64_t price) noexcept nogil:
    # The aggressor crosses an opposite level whose ladder key is >= this value.
    if price == 0:
        return INT64_MIN
    return -price if side == MC_BUY else price


cdef bint _fok_fillable(const mc_book* b, int side, int64_t lim, int64_t want,
                        uint64_t owner) noexcept nogil:
    cdef const mc_ladder* L = &b.side[side ^ 1]
    cdef int32_t i = L.n - 1
    cdef int32_t idx
    cdef const mc_level* l
    cdef const mc_order* o
    cdef bint stp = owner != 0 and b.stp != MC_STP_NONE
    cdef mc_i128 qty = want
    while i >= 0 and L.keys[i] >= lim:
        l = &b.levels[L.lv[i]]
        if not stp:
            qty -= l.qty
        else:
            idx = l.head
            while idx >= 0:
                o = &b.orders[idx]
                if o.owner == owner:
                    if b.stp != MC_STP_CANCEL_RESTING:
                        return False
                else:
                    qty -= o.qty
                    if qty <= 0:
                        return True
                idx = o.next
        if qty <= 0:
            return True
        i -= 1
    return qty <= 0


cdef int64_t _match(mc_book* b, uint64_t oid, int side, int64_t price, int64_t qty,
                    uint64_t owner, bint* stopped) noexcept nogil:
    """Trade `qty` against the opposite side; returns the remainder. `price` 0 = market."""
    cdef mc_ladder* L = &b.side[side ^ 1]
    cdef int64_t lim = _limit_key(side, price)
    cdef int32_t lv, idx
    cdef mc_level* l
    cdef mc_order* o
    cdef int64_t f
    cdef bint stp = owner != 0 and b.stp != MC_STP_NONE
    stopped[0] = False
    while qty > 0 and L.n > 0 and L.keys[L.n - 1] >= lim:
        lv = L.lv[L.n - 1]
        l = &b.levels[lv]
        idx = l.head
        o = &b.orders[idx]
        if stp and o.owner == owner:
            if b.stp != MC_STP_CANCEL_TAKER:
                _emit(b, MC_EV_CANCELLED, o.oid, 0, o.side, o.price, o.qty, o.owner, 0,
                      MC_R_SELF_TRADE)
                _order_remove(b, idx)
            if b.stp != MC_STP_CANCEL_RESTING:
                _emit(b, MC_EV_EXPIRED, oid, 0, side, price, qty, owner, 0, MC_R_SELF_TRADE)
                stopped[0] = True
                return qty
            continue
        f = o.qty if o.qty < qty else qty
        _emit(b, MC_EV_FILL, oid, o.oid, side, o.price, f, owner, o.owner, MC_R_NONE)
        qty -= f
        if f == o.qty:
            _pop_head(b, L, l, lv, idx)
        else:
            o.qty -= f
            l.qty -= f
    return qty


cdef inline void _pop_head(mc_book* b, mc_ladder* L, mc_level* l, int32_t lv,
                           int32_t idx) noexcept nogil:
    # _order_remove for the head order of the top level, the only removal a fill makes: no
    # previous order to relink, and an emptied level is the touch, so it comes off the end of
    # the ladder without the check _level_emptied makes.
    cdef mc_order* o = &b.orders[idx]
    cdef int32_t nxt = o.next
    l.head = nxt
    # whether the maker was alone in its level decides which link is cleared (no branch)
    _pick(nxt >= 0, &b.orders[nxt if nxt >= 0 else 0].prev, &l.tail)[0] = -1
    l.count -= 1
    l.qty -= o.qty
    if l.count == 0:
        _ladder_pop_top(b, L, lv)
    _order_release(b, idx)


cdef inline bint _would_cross(const mc_book* b, int side, int64_t price) noexcept nogil:
    cdef const mc_ladder* L = &b.side[side ^ 1]
    return L.n > 0 and L.keys[L.n - 1] >= _limit_key(side, price)


cdef inline bint _limit_crosses(const mc_book* b, int side, int64_t price) noexcept nogil:
    # _would_cross for a limit price (> 0), without the market-order case: asked on every
    # submit and reprice
    cdef const mc_ladder* L = &b.side[side ^ 1]
    cdef int64_t lim = price if side == MC_SELL else -price
    return L.n > 0 and L.keys[L.n - 1] >= lim


cdef int64_t _enter(mc_book* b, uint64_t oid, int side, int64_t price, int64_t qty, int tif,
                    uint64_t owner, int post_only, int32_t idx, uint64_t pos) noexcept nogil:
    """An accepted order meets the book: match, then rest or expire the remainder.

    `idx` is the order's own (unlinked) slot when a modify re-enters it, else -1. `pos` is the
    empty id-index slot a new id's duplicate check ended on (NO_POS if unknown): the id goes
    there unless matching removed an order (a removal shifts index entries back)."""
    cdef bint stopped = False
    cdef int64_t rem = qty
    cdef int64_t n_index = b.index.n
    if tif == MC_FOK and not _fok_fillable(b, side, _limit_key(side, price), qty, owner):
        _emit(b, MC_EV_EXPIRED, oid, 0, side, price, qty, owner, 0, MC_R_FOK_NOT_FILLABLE)
        return 0
    if _would_cross(b, side, price):
        rem = _match(b, oid, side, price, qty, owner, &stopped)
    if rem > 0 and not stopped and tif == MC_GTC and price != 0:
        if idx < 0:
            if pos != NO_POS and b.index.n == n_index:
                idx = _order_new_at(b, oid, side, owner, post_only, pos, _home(&b.index, oid))
            else:
                idx = _order_new(b, oid, side, owner, post_only)
        _order_link(b, idx, price, rem)
        return qty - rem
    if rem > 0 and not stopped:
        _emit(b, MC_EV_EXPIRED, oid, 0, side, price, rem, owner, 0,
              MC_R_MARKET_REMAINDER if price == 0 else MC_R_IOC_REMAINDER)
    if idx >= 0:
        _order_release(b, idx)
    return qty - rem


# ----------------------------------------------------------------------------------------------
# order entry
# ----------------------------------------------------------------------------------------------

cdef int64_t mc_submit(mc_book* b, uint64_t oid, int side, int64_t price, int64_t qty, int tif,
                       uint64_t owner, int post_only) noexcept nogil:
    """Limit order. Returns the qty executed now (>= 0), or -reason if rejected."""
    return _submit(b, oid, side, price, qty, tif, owner, post_only)


# _submit, _cancel, _modify: the bodies of mc_submit, mc_cancel, mc_modify, inlined into the
# per-call methods (one call and its register saves less per call); the mc_ functions are the
# entry points for the command loop, other modules and the C table.
cdef inline int64_t _submit(mc_book* b, uint64_t oid, int side, int64_t price, int64_t qty, int tif,
                            uint64_t owner, int post_only) noexcept nogil:
    cdef int reason = MC_R_NONE
    cdef uint64_t pos = NO_POS, h = 0
    if _ensure(b, qty, owner) < 0:
        return -MC_ERR_NOMEM
    if qty <= 0:
        reason = MC_R_INVALID_QTY
    elif price <= 0:
        reason = MC_R_INVALID_PRICE
    elif side != MC_BUY and side != MC_SELL:
        reason = MC_R_INVALID_SIDE
    elif tif != MC_GTC and tif != MC_IOC and tif != MC_FOK:
        reason = MC_R_INVALID_TIF
    else:
        # one probe: a duplicate, or the empty slot the id will be stored in if it rests
        h = _home(&b.index, oid)
        pos = _map_probe_from(&b.index, oid, h)
        if b.index.tab[pos].val >= 0:
            reason = MC_R_DUPLICATE_ORDER_ID
        elif post_only and _limit_crosses(b, side, price):
            reason = MC_R_POST_ONLY_WOULD_CROSS
    if reason != MC_R_NONE:
        _emit(b, MC_EV_REJECTED, oid, 0, side & 0xFF, price, qty, owner, 0, reason)
        return -reason
    _emit(b, MC_EV_ACCEPTED, oid, 0, side, price, qty, owner, 0, MC_R_NONE)
    if tif == MC_GTC and not _limit_crosses(b, side, price):
        # a passive GTC order rests at once (what _enter does for it, without its call); the
        # id goes into the empty index slot the duplicate check found
        _order_link(b, _order_new_at(b, oid, side, owner, post_only, pos, h), price, qty)
        return 0
    return _enter(b, oid, side, price, qty, tif, owner, post_only, -1, pos)


cdef int64_t mc_market(mc_book* b, uint64_t oid, int side, int64_t qty, uint64_t owner) noexcept nogil:
    """Market order: trades at any price, never rests. Returns qty executed, or -reason."""
    cdef int reason = MC_R_NONE
    if _ensure(b, qty, owner) < 0:
        return -MC_ERR_NOMEM
    if qty <= 0:
        reason = MC_R_INVALID_QTY
    elif side != MC_BUY and side != MC_SELL:
        reason = MC_R_INVALID_SIDE
    elif _map_find(&b.index, oid) >= 0:
        reason = MC_R_DUPLICATE_ORDER_ID
    if reason != MC_R_NONE:
        _emit(b, MC_EV_REJECTED, oid, 0, side & 0xFF, 0, qty, owner, 0, reason)
        return -reason
    _emit(b, MC_EV_ACCEPTED, oid, 0, side, 0, qty, owner, 0, MC_R_NONE)
    return _enter(b, oid, side, 0, qty, MC_IOC, owner, 0, -1, NO_POS)


cdef int64_t mc_cancel(mc_book* b, uint64_t oid) noexcept nogil:
    """Cancel a resting order. Returns the open qty removed, or -MC_R_ORDER_NOT_FOUND."""
    return _cancel(b, oid)


cdef inline int64_t _cancel(mc_book* b, uint64_t oid) noexcept nogil:
    # A cancel takes no order slot, level or index entry and writes one event: that event's
    # room is all it needs (the full _ensure is for orders that may trade).
    if b.emit and b.n_ev >= b.ev_cap and mc_reserve_events(b, 1) < 0:
        return -MC_ERR_NOMEM
    cdef uint64_t pos = _map_probe(&b.index, oid)
    cdef int32_t idx = b.index.tab[pos].val
    if idx < 0:
        _emit(b, MC_EV_REJECTED, oid, 0, 0, 0, 0, 0, 0, MC_R_ORDER_NOT_FOUND)
        return -MC_R_ORDER_NOT_FOUND
    return _cancel_found(b, oid, idx, pos)


cdef inline int64_t _cancel_at(mc_book* b, int32_t idx) noexcept nogil:
    cdef uint64_t oid = b.orders[idx].oid
    return _cancel_found(b, oid, idx, _map_probe(&b.index, oid))


cdef inline int64_t _cancel_found(mc_book* b, uint64_t oid, int32_t idx, uint64_t pos) noexcept nogil:
    # Cancel the resting order oid in slot idx, whose id-index entry is at pos.
    cdef mc_order* o = &b.orders[idx]
    cdef int64_t q = o.qty
    _emit(b, MC_EV_CANCELLED, oid, 0, o.side, o.price, q, o.owner, 0, MC_R_CANCEL_REQUESTED)
    _order_unlink(b, idx)
    _map_erase_at(&b.index, pos)      # unlinking touches only the price maps: pos still holds
    _order_free(b, idx)
    return q


cdef int64_t mc_modify(mc_book* b, uint64_t oid, int64_t qty, int64_t price) noexcept nogil:
    """Change a resting order's open qty and/or price (price 0 keeps it).

    Same price and qty <= open qty keeps the queue place; otherwise the order re-enters as a new
    GTC order that may match. Returns the qty executed on re-entry (>= 0), or -reason.
    """
    return _modify(b, oid, qty, price)


cdef inline int64_t _modify(mc_book* b, uint64_t oid, int64_t qty, int64_t price) noexcept nogil:
    cdef int reason = MC_R_NONE
    cdef int32_t idx = -1
    if not _room_ok(b):
        # _ensure, with the owner that decides how many events the re-entry can write
        # (mc_ev_bound): the lookup changes nothing. Spelled out so that the common case stays
        # as small as it was (the compiler then still inlines the queue link below).
        idx = _map_find(&b.index, oid)
        if _ensure_slow(b, qty, b.orders[idx].owner if idx >= 0 else 0) < 0:
            return -MC_ERR_NOMEM
    if qty <= 0:
        reason = MC_R_INVALID_QTY
    elif price < 0:
        reason = MC_R_INVALID_PRICE
    else:
        idx = _map_find(&b.index, oid)
        if idx < 0:
            reason = MC_R_ORDER_NOT_FOUND
    if reason != MC_R_NONE:
        _emit(b, MC_EV_REJECTED, oid, 0, 0, price, qty, 0, 0, reason)
        return -reason
    cdef mc_order* o = &b.orders[idx]
    cdef int side = o.side
    cdef uint64_t owner = o.owner
    cdef int post_only = o.post_only
    cdef int64_t new_price = price if price != 0 else o.price
    if new_price == o.price and qty <= o.qty:
        b.levels[o.level].qty -= o.qty - qty
        o.qty = qty
        _emit(b, MC_EV_MODIFIED, oid, 0, side, new_price, qty, owner, 0, MC_R_NONE)
        return 0
    if post_only and new_price != o.price and _limit_crosses(b, side, new_price):
        _emit(b, MC_EV_REJECTED, oid, 0, side, new_price, qty, owner, 0, MC_R_POST_ONLY_WOULD_CROSS)
        return -MC_R_POST_ONLY_WOULD_CROSS
    _order_unlink(b, idx)
    _emit(b, MC_EV_MODIFIED, oid, 0, side, new_price, qty, owner, 0, MC_R_NONE)
    if not _limit_crosses(b, side, new_price):
        # the common reprice: the order just goes to the back of its new level (what _enter
        # does for a GTC order that cannot trade, without its call)
        _order_link(b, idx, new_price, qty)
        return 0
    return _enter(b, oid, side, new_price, qty, MC_GTC, owner, post_only, idx, NO_POS)


cdef int64_t mc_apply(mc_book* b, const mc_command* c) noexcept nogil:
    """One command record through the same functions as the per-call API."""
    return _apply(b, c)


cdef inline int64_t _apply(mc_book* b, const mc_command* c) noexcept nogil:
    # mc_apply's body, inlined into mc_process's loop (one call less per command)
    b.now_ns = c.ts_ns
    if c.kind == MC_CMD_SUBMIT:
        return mc_submit(b, c.order_id, c.side, c.price, c.qty, c.tif, c.owner, c.post_only)
    elif c.kind == MC_CMD_MARKET:
        return mc_market(b, c.order_id, c.side, c.qty, c.owner)
    elif c.kind == MC_CMD_CANCEL:
        return mc_cancel(b, c.order_id)
    elif c.kind == MC_CMD_MODIFY:
        return mc_modify(b, c.order_id, c.qty, c.price)
    if _ensure(b, 0, 0) < 0:
        return -MC_ERR_NOMEM
    _emit(b, MC_EV_REJECTED, c.order_id, 0, c.side, c.price, c.qty, c.owner, 0, MC_R_INVALID_COMMAND)
    return -MC_R_INVALID_COMMAND


# How many commands ahead mc_process asks for the id-index line of a command. Every command
# probes the index with its id, and a new id's line (or a stale id's, on a deep book) is
# seldom cached: with a book sized for many more orders than rest at once, each fresh block of
# ids lands on a line not touched since the table was made. A few commands of work hide most
# of that miss: at 4 (a hundred-odd ns of work on the touch flows) the 1M-order touch flows
# still waited, and 8 measured 10% faster on `wide_book` and `stale_cancel` at 1M orders
# (CPU time, three alternating runs; 1k orders unchanged), 16 no better than 8.
cdef enum:
    PREFETCH_AHEAD = 8

cdef int64_t _process_deep(mc_book* b, const mc_command* cmds, int64_t m, int64_t n,
                           int32_t* found) noexcept nogil:
    # The first m of the n commands at cmds, on a book too big for the cache: a command's
    # lines are each found through the one before (index slot, order, its level and queue
    # neighbours; price-map slot, level), so their loads are pipelined over DEEP_AHEAD_INDEX
    # commands, each found slot kept in found[DEEP_RING] for the later stages (across the
    # chunks of a batch). Reads only: a command in between that changes the book makes a
    # guess wrong, which costs time, never results.
    cdef int64_t i
    for i in range(m):
        if i + DEEP_AHEAD_INDEX < n:
            _map_prefetch(&b.index, cmds[i + DEEP_AHEAD_INDEX].order_id)
        if i + DEEP_AHEAD_ORDER < n:
            found[(i + DEEP_AHEAD_ORDER) & (DEEP_RING - 1)] = mc_ahead_order(
                b, &cmds[i + DEEP_AHEAD_ORDER])
        if i + DEEP_AHEAD_LEVEL < n:
            mc_ahead_level(b, &cmds[i + DEEP_AHEAD_LEVEL],
                           found[(i + DEEP_AHEAD_LEVEL) & (DEEP_RING - 1)])
        # mc_apply, not its inlined body (see _process_near); here a call is nothing beside
        # the misses this loop is for
        if mc_apply(b, &cmds[i]) == -MC_ERR_NOMEM:
            return i
    return m


cdef int64_t _process_near(mc_book* b, const mc_command* cmds, int64_t m,
                           int64_t n) noexcept nogil:
    # The first m of the n commands at cmds, asking for each command's index line
    # PREFETCH_AHEAD commands before it (the line of the last command for the last few). The
    # one copy of the order paths' inlined body in the batch loops: with more, gcc stopped
    # inlining them (callgrind: +3% on the standard mix at 1k orders).
    cdef int64_t i
    cdef const mc_command* last = cmds + (n - 1)
    cdef const mc_command* ahead = cmds + (PREFETCH_AHEAD if PREFETCH_AHEAD < n else n - 1)
    for i in range(m):
        _map_prefetch(&b.index, ahead.order_id)
        ahead += ahead < last
        if _apply(b, &cmds[i]) == -MC_ERR_NOMEM:
            return i
    return m


cdef int64_t _process_big(mc_book* b, const mc_command* cmds, int64_t n) noexcept nogil:
    # mc_process in chunks, each in the loop mc_deep_mode chooses.
    cdef int64_t done = 0, m, r, t0
    cdef int mode
    cdef int32_t found[DEEP_RING]
    for mode in range(DEEP_RING):
        found[mode] = -1
    while done < n:
        m = n - done if n - done < DEEP_CHUNK else DEEP_CHUNK
        mode = mc_deep_mode(&b.deep)
        t0 = mc_tsc() if mode & 2 else 0
        if mode & 1:
            r = _process_deep(b, cmds + done, m, n - done, found)
        else:
            r = _process_near(b, cmds + done, m, n - done)
        if mode & 2:
            mc_deep_timed(&b.deep, mode, mc_tsc() - t0)
        done += r
        if r < m:
            break
    return done


cdef int64_t mc_process(mc_book* b, const mc_command* cmds, int64_t n) noexcept nogil:
    """Apply n commands in order; returns how many were applied (n unless memory ran out)."""
    if n <= 0:
        return 0
    if b.n_orders >= DEEP_ORDERS and n >= DEEP_MIN_BATCH:
        # (a batch of a few commands has nothing to read ahead: it would pay the trials' clock
        # reads, and time them on one or two commands)
        return _process_big(b, cmds, n)
    return _process_near(b, cmds, n, n)


# ----------------------------------------------------------------------------------------------
# replay mode
# ----------------------------------------------------------------------------------------------

cdef int64_t mc_rest(mc_book* b, uint64_t oid, int side, int64_t price, int64_t qty,
                     uint64_t owner) noexcept nogil:
    """Place an order at the back of its level without matching (the exchange already did)."""
    cdef int reason = MC_R_NONE
    cdef uint64_t pos = 0, h = 0
    if _ensure(b, 0, 0) < 0:
        return -MC_ERR_NOMEM
    if qty <= 0:
        reason = MC_R_INVALID_QTY
    elif price <= 0:
        reason = MC_R_INVALID_PRICE
    elif side != MC_BUY and side != MC_SELL:
        reason = MC_R_INVALID_SIDE
    if reason == MC_R_NONE:
        # One probe finds a duplicate or the empty slot the new id goes into (nothing below
        # touches the index before the id is stored there).
        h = _home(&b.index, oid)
        pos = _map_probe_from(&b.index, oid, h)
        if b.index.tab[pos].val >= 0:
            reason = MC_R_DUPLICATE_ORDER_ID
    if reason != MC_R_NONE:
        _emit(b, MC_EV_REJECTED, oid, 0, side & 0xFF, price, qty, owner, 0, reason)
        return -reason
    _emit(b, MC_EV_ACCEPTED, oid, 0, side, price, qty, owner, 0, MC_R_NONE)
    _order_link(b, _order_new_at(b, oid, side, owner, 0, pos, h), price, qty)
    return 0


cdef int64_t mc_reduce(mc_book* b, uint64_t oid, int64_t qty, int is_execution) noexcept nogil:
    """Take up to `qty` off a resting order (an execution or a partial cancel reported by the
    exchange); the order leaves at zero. Returns the qty taken (clamped to the open qty)."""
    if _ensure(b, 0, 0) < 0:
        return -MC_ERR_NOMEM
    if qty <= 0:
        _emit(b, MC_EV_REJECTED, oid, 0, 0, 0, qty, 0, 0, MC_R_INVALID_QTY)
        return -MC_R_INVALID_QTY
    cdef int32_t idx = _map_find(&b.index, oid)
    if idx < 0:
        _emit(b, MC_EV_REJECTED, oid, 0, 0, 0, qty, 0, 0, MC_R_ORDER_NOT_FOUND)
        return -MC_R_ORDER_NOT_FOUND
    return _reduce_at(b, idx, qty, is_execution)


cdef inline int64_t _reduce_at(mc_book* b, int32_t idx, int64_t qty, int is_execution) noexcept nogil:
    cdef mc_order* o = &b.orders[idx]
    cdef int64_t take = qty if qty < o.qty else o.qty
    if is_execution:
        _emit(b, MC_EV_FILL, 0, o.oid, o.side ^ 1, o.price, take, 0, o.owner, MC_R_NONE)
    else:
        _emit(b, MC_EV_CANCELLED, o.oid, 0, o.side, o.price, take, o.owner, 0,
              MC_R_CANCEL_REQUESTED)
    if take == o.qty:
        _order_remove(b, idx)
    else:
        o.qty -= take
        b.levels[o.level].qty -= take
    return take


# Slot-based replay operations: a replay loop that has looked an order up with mc_find (and not
# changed the book since) acts on the slot directly instead of probing the id index again. The
# slot's mc_order fields are the caller's to read, never to write.

cdef int32_t mc_find(const mc_book* b, uint64_t oid) noexcept nogil:
    """Slot of a resting order in b.orders, or -1 (one id-index probe, O(1) expected)."""
    return _map_find(&b.index, oid)


cdef int64_t mc_reduce_slot(mc_book* b, int32_t idx, int64_t qty, int is_execution) noexcept nogil:
    """mc_reduce for the resting order in slot idx: same events, same result."""
    if b.emit and mc_reserve_events(b, 1) < 0:
        return -MC_ERR_NOMEM
    if qty <= 0:
        _emit(b, MC_EV_REJECTED, b.orders[idx].oid, 0, 0, 0, qty, 0, 0, MC_R_INVALID_QTY)
        return -MC_R_INVALID_QTY
    return _reduce_at(b, idx, qty, is_execution)


cdef int64_t mc_cancel_slot(mc_book* b, int32_t idx) noexcept nogil:
    """mc_cancel for the resting order in slot idx: same event; returns the open qty removed."""
    if b.emit and mc_reserve_events(b, 1) < 0:
        return -MC_ERR_NOMEM
    return _cancel_at(b, idx)


# ----------------------------------------------------------------------------------------------
# queries
# ----------------------------------------------------------------------------------------------

cdef int mc_best(const mc_book* b, int side, int64_t* price, int64_t* qty) noexcept nogil:
    """Best level of a side: 1 and (price, aggregated qty), or 0 when the side is empty."""
    cdef const mc_ladder* L = &b.side[side]
    if L.n == 0:
        return 0
    cdef const mc_level* l = &b.levels[L.lv[L.n - 1]]
    price[0] = l.price
    qty[0] = _sat64(l.qty)
    return 1


cdef inline int64_t _depth(const mc_book* b, int side, int64_t n, int64_t* out,
                           bint with_orders) noexcept nogil:
    # Visible levels best first, as rows of (price, qty[, orders]); empty levels are skipped.
    cdef const mc_ladder* L = &b.side[side]
    cdef int64_t k = 0
    cdef int32_t i = L.n - 1
    cdef int cols = 3 if with_orders else 2
    cdef const mc_level* l
    while k < n and i >= 0:
        l = &b.levels[L.lv[i]]
        i -= 1
        if l.count == 0:
            continue
        out[cols * k] = l.price
        out[cols * k + 1] = _sat64(l.qty)
        if with_orders:
            out[cols * k + 2] = l.count
        k += 1
    return k


cdef int64_t mc_depth(const mc_book* b, int side, int64_t n, int64_t* out) noexcept nogil:
    """Write up to n levels, best first, as (price, qty) pairs; returns the count written."""
    return _depth(b, side, n, out, False)


cdef int64_t mc_depth_orders(const mc_book* b, int side, int64_t n, int64_t* out) noexcept nogil:
    """Like mc_depth with a third column: the number of orders at the level."""
    return _depth(b, side, n, out, True)


cdef int mc_get(const mc_book* b, uint64_t oid, int* side, int64_t* price, int64_t* qty) noexcept nogil:
    cdef int32_t idx = _map_find(&b.index, oid)
    if idx < 0:
        return 0
    cdef const mc_order* o = &b.orders[idx]
    side[0] = o.side
    price[0] = o.price
    qty[0] = o.qty
    return 1


cdef mc_i128 _queue_ahead(const mc_book* b, uint64_t oid) noexcept nogil:
    cdef int32_t idx = _map_find(&b.index, oid)
    if idx < 0:
        return -1
    cdef mc_i128 ahead = 0
    cdef int32_t j = b.levels[b.orders[idx].level].head
    while j != idx:
        ahead += b.orders[j].qty
        j = b.orders[j].next
    return ahead


cdef int64_t mc_queue_position(const mc_book* b, uint64_t oid) noexcept nogil:
    """Open qty ahead of the order at its level (O(orders ahead)); -1 if not resting.
    Saturates at 2**63-1 (the Python method is exact)."""
    return _sat64(_queue_ahead(b, oid))


cdef int64_t mc_count(const mc_book* b) noexcept nogil:
    return b.n_orders


cdef int64_t mc_level_count(const mc_book* b, int side) noexcept nogil:
    return b.side[side].n - b.side[side].empties - b.side[side].gaps


cdef inline uint64_t _mix(uint64_t h, uint64_t v) noexcept nogil:
    h ^= v + GOLDEN + (h << 6) + (h >> 2)
    h *= <uint64_t>0xff51afd7ed558ccd
    return h ^ (h >> 33)


cdef uint64_t mc_state_hash(const mc_book* b) noexcept nogil:
    """A hash of everything that decides future behaviour: every level in ladder order and every
    order in queue order with its id, open qty, owner and post-only flag, plus the STP mode."""
    cdef uint64_t h = <uint64_t>1469598103934665603
    cdef int s
    cdef int32_t i, idx
    cdef const mc_level* l
    cdef const mc_order* o
    h = _mix(h, b.stp)
    for s in range(2):
        h = _mix(h, 0xA5A5 + s)
        for i in range(b.side[s].n):
            l = &b.levels[b.side[s].lv[i]]
            if l.count == 0:
                continue
            h = _mix(h, <uint64_t>l.price)
            h = _mix(h, <uint64_t>l.qty)
            h = _mix(h, <uint64_t>(l.qty >> 64))
            idx = l.head
            while idx >= 0:
                o = &b.orders[idx]
                h = _mix(h, o.oid)
                h = _mix(h, <uint64_t>o.qty)
                h = _mix(h, o.owner)
                h = _mix(h, o.post_only)
                idx = o.next
    return h


# ----------------------------------------------------------------------------------------------
# embedding support: clock, event draining (all or one owner's), snapshots
# ----------------------------------------------------------------------------------------------

cdef void mc_set_time(mc_book* b, int64_t ts_ns) noexcept nogil:
    """Set the timestamp (ns) stamped into the events of the following operations."""
    b.now_ns = ts_ns


cdef int64_t mc_pending_events(const mc_book* b) noexcept nogil:
    return b.n_ev


cdef void mc_clear_events(mc_book* b) noexcept nogil:
    b.n_ev = 0


cdef int64_t mc_filter_events_owner(const mc_event* src, int64_t n, uint64_t owner,
                                    mc_event* out) noexcept nogil:
    """Copy the events of `owner` (as order owner or as maker) from src[0:n] to out; returns the
    count. `out` needs room for n events (or NULL to count only)."""
    cdef int64_t i, k = 0
    for i in range(n):
        if _ev_of(&src[i], owner):
            if out != NULL:
                out[k] = src[i]
            k += 1
    return k


cdef int64_t mc_drain_events(mc_book* b, mc_event* out, int64_t cap) noexcept nogil:
    """Move up to `cap` pending events (oldest first) into out; the rest stay pending."""
    cdef int64_t k = b.n_ev if b.n_ev < cap else cap
    if k <= 0:
        return 0
    memcpy(out, b.ev, k * sizeof(mc_event))
    if k < b.n_ev:
        memmove(b.ev, &b.ev[k], (b.n_ev - k) * sizeof(mc_event))
    b.n_ev -= k
    return k


cdef int64_t mc_drain_events_owner(mc_book* b, uint64_t owner, mc_event* out,
                                   int64_t cap) noexcept nogil:
    """Move up to `cap` of `owner`'s pending events into out and drop the other events before
    the first of `owner`'s left pending (every other event when none is left; with cap 0, those
    before `owner`'s first). Returns the count written."""
    cdef int64_t i = 0, k = 0
    while i < b.n_ev:
        if _ev_of(&b.ev[i], owner):
            if k == cap:
                break
            out[k] = b.ev[i]
            k += 1
        i += 1
    if i < b.n_ev:
        memmove(b.ev, &b.ev[i], (b.n_ev - i) * sizeof(mc_event))
    b.n_ev -= i
    return k


# Snapshot format, version 1 (little-endian), every field fixed-size:
#   header  80 bytes: magic "MCSNAPSH", u32 version, u32 header size, u64 total size,
#           u64 orders, u32 bid levels, u32 ask levels, u64 next arrival seq, i64 now_ns,
#           u32 symbol, u8 stp, 3 pad, u64 state hash, u64 reserved
#   levels  per side (bids then asks), worst to best: i64 price, i64 order count, then the
#           level's orders in queue order, 40 bytes each: u64 id, i64 open qty, u64 owner,
#           u64 arrival seq, u8 post_only, 7 pad
#   trailer u64 FNV-1a checksum of every byte before it
# Levels go worst to best so that restoring appends each level at the ladder's end (no memmove).
cdef enum:
    SNAP_HEADER = 80
    SNAP_LEVEL = 16
    SNAP_ORDER = 40

cdef inline void _put64(uint8_t* p, uint64_t v) noexcept nogil:
    memcpy(p, &v, 8)

cdef inline void _put32(uint8_t* p, uint32_t v) noexcept nogil:
    memcpy(p, &v, 4)

cdef inline uint64_t _get64(const uint8_t* p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v

cdef inline uint32_t _get32(const uint8_t* p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef uint64_t _fnv1a(const uint8_t* p, int64_t n) noexcept nogil:
    cdef uint64_t h = <uint64_t>14695981039346656037ULL
    cdef int64_t i
    for i in range(n):
        h = (h ^ p[i]) * <uint64_t>1099511628211ULL
    return h


cdef int64_t _live_levels(const mc_book* b, int side) noexcept nogil:
    return b.side[side].n - b.side[side].empties - b.side[side].gaps


cdef int64_t mc_snapshot_size(const mc_book* b) noexcept nogil:
    """Bytes needed by mc_snapshot_write for the book's current state."""
    return (SNAP_HEADER + SNAP_LEVEL * (_live_levels(b, 0) + _live_levels(b, 1))
            + SNAP_ORDER * b.n_orders + 8)


cdef int64_t mc_snapshot_write(const mc_book* b, uint8_t* out, int64_t cap) noexcept nogil:
    """Write the book's full state to out; returns the bytes written, or -1 if cap is short."""
    cdef int64_t size = mc_snapshot_size(b)
    if cap < size:
        return -1
    memset(out, 0, SNAP_HEADER)
    memcpy(out, b"MCSNAPSH", 8)
    _put32(out + 8, MC_SNAP_VERSION)
    _put32(out + 12, SNAP_HEADER)
    _put64(out + 16, <uint64_t>size)
    _put64(out + 24, <uint64_t>b.n_orders)
    _put32(out + 32, <uint32_t>_live_levels(b, 0))
    _put32(out + 36, <uint32_t>_live_levels(b, 1))
    _put64(out + 40, b.seq)
    _put64(out + 48, <uint64_t>b.now_ns)
    _put32(out + 56, b.symbol)
    out[60] = b.stp
    _put64(out + 64, mc_state_hash(b))
    cdef uint8_t* p = out + SNAP_HEADER
    cdef int s
    cdef int32_t i, idx
    cdef const mc_level* l
    cdef const mc_order* o
    for s in range(2):
        for i in range(b.side[s].n):
            l = &b.levels[b.side[s].lv[i]]
            if l.count == 0:
                continue
            _put64(p, <uint64_t>l.price)
            _put64(p + 8, <uint64_t>l.count)
            p += SNAP_LEVEL
            idx = l.head
            while idx >= 0:
                o = &b.orders[idx]
                memset(p, 0, SNAP_ORDER)
                _put64(p, o.oid)
                _put64(p + 8, <uint64_t>o.qty)
                _put64(p + 16, o.owner)
                _put64(p + 24, o.seq)
                p[32] = o.post_only
                p += SNAP_ORDER
                idx = o.next
    _put64(p, _fnv1a(out, size - 8))
    return size


cdef int _snapshot_build(const uint8_t* data, int64_t n, mc_book** result) noexcept nogil:
    """Validate a snapshot and build a new book from it; -MC_SNAP_E_* on any defect."""
    if n < 8:
        return -MC_SNAP_E_TRUNCATED
    if memcmp(data, b"MCSNAPSH", 8) != 0:
        return -MC_SNAP_E_MAGIC
    if n < SNAP_HEADER + 8:
        return -MC_SNAP_E_TRUNCATED
    if _get32(data + 8) != MC_SNAP_VERSION:
        return -MC_SNAP_E_VERSION
    cdef uint64_t size = _get64(data + 16)
    if _get32(data + 12) != SNAP_HEADER:
        return -MC_SNAP_E_CORRUPT
    if <uint64_t>n < size:
        return -MC_SNAP_E_TRUNCATED
    if <uint64_t>n > size:
        return -MC_SNAP_E_CORRUPT
    if _get64(data + n - 8) != _fnv1a(data, n - 8):
        return -MC_SNAP_E_CHECKSUM
    cdef uint64_t n_orders = _get64(data + 24)
    cdef uint64_t n_lv[2]
    n_lv[0] = _get32(data + 32)
    n_lv[1] = _get32(data + 36)
    cdef uint64_t seq = _get64(data + 40)
    cdef int stp = data[60]
    # seq is the next arrival number. A live book counts arrivals up from 0 and cannot get near
    # 2**63; beyond it the counter would wrap within a few arrivals and queue new orders with
    # smaller numbers than the ones they wait behind.
    if (stp > MC_STP_CANCEL_BOTH or seq > <uint64_t>INT64_MAX
            or n_orders > <uint64_t>(n // SNAP_ORDER)
            or n_orders > 0x7FFFFFF0 or n_lv[0] + n_lv[1] > n_orders
            or size != SNAP_HEADER + SNAP_LEVEL * (n_lv[0] + n_lv[1]) + SNAP_ORDER * n_orders + 8):
        return -MC_SNAP_E_CORRUPT
    cdef mc_book* b = mc_book_new(stp, <int64_t>n_orders)
    if b == NULL:
        return -MC_SNAP_E_NOMEM
    b.emit = 0
    cdef const uint8_t* p = data + SNAP_HEADER
    cdef int s
    cdef uint64_t i, j, cnt, oseq, last_seq
    cdef int64_t price, qty, key, last_key
    cdef uint64_t oid, total = 0
    cdef int32_t idx
    cdef int rc = 0
    for s in range(2):
        last_key = INT64_MIN
        for i in range(n_lv[s]):
            price = <int64_t>_get64(p)
            cnt = _get64(p + 8)
            p += SNAP_LEVEL
            key = _key(s, price)
            # cnt is compared with what is left rather than added first: a count near 2**64
            # would wrap the sum below n_orders and walk the order loop off the end of the data
            if price <= 0 or cnt == 0 or cnt > n_orders - total or key <= last_key:
                rc = -MC_SNAP_E_CORRUPT
                break
            total += cnt
            last_key = key
            last_seq = 0
            for j in range(cnt):
                oid = _get64(p)
                qty = <int64_t>_get64(p + 8)
                oseq = _get64(p + 24)
                if (qty <= 0 or p[32] > 1 or oseq >= seq or (j > 0 and oseq <= last_seq)
                        or _map_find(&b.index, oid) >= 0):
                    rc = -MC_SNAP_E_CORRUPT
                    break
                if _ensure(b, 0, 0) < 0:
                    rc = -MC_SNAP_E_NOMEM
                    break
                idx = _order_new(b, oid, s, _get64(p + 16), p[32])
                _order_link(b, idx, price, qty)
                b.orders[idx].seq = oseq
                last_seq = oseq
                p += SNAP_ORDER
            if rc < 0:
                break
        if rc < 0:
            break
    # A crossed or locked book is not refused: a book rebuilt from exchange data with
    # mc_rest can be either, and its snapshot must restore. The checksum and the state hash
    # below guard the content.
    if rc == 0 and total != n_orders:
        rc = -MC_SNAP_E_CORRUPT
    if rc == 0:
        b.seq = seq
        b.now_ns = <int64_t>_get64(data + 48)
        b.symbol = _get32(data + 56)
        if mc_state_hash(b) != _get64(data + 64):
            rc = -MC_SNAP_E_CORRUPT
    if rc < 0:
        mc_book_free(b)
        return rc
    b.emit = 1
    result[0] = b
    return 0


cdef int mc_snapshot_restore(mc_book* b, const uint8_t* data, int64_t n) noexcept nogil:
    """Replace the book's whole state with a snapshot's, in place (the mc_book* stays valid;
    pending events are dropped). Returns 0, or -MC_SNAP_E_* with the book unchanged."""
    cdef mc_book* nb = NULL
    cdef int rc = _snapshot_build(data, n, &nb)
    if rc < 0:
        return rc
    cdef uint8_t emit = b.emit, guard = b.guard
    cdef uint64_t handle = b.handle
    cdef uint8_t* host_busy = b.host_busy
    cdef mc_book tmp = b[0]
    b[0] = nb[0]
    nb[0] = tmp
    b.emit = emit
    b.handle = handle
    b.guard = guard
    b.host_busy = host_busy
    mc_book_free(nb)
    return 0


cdef mc_book* mc_snapshot_load(const uint8_t* data, int64_t n, int* err) noexcept nogil:
    """A new book from a snapshot, or NULL with err[0] = -MC_SNAP_E_*."""
    cdef mc_book* nb = NULL
    cdef int rc = _snapshot_build(data, n, &nb)
    if err != NULL:
        err[0] = rc
    return nb


# ==============================================================================================
# Python face
# ==============================================================================================

class Side(IntEnum):
    BUY = MC_BUY
    SELL = MC_SELL


class TIF(IntEnum):
    GTC = MC_GTC
    IOC = MC_IOC
    FOK = MC_FOK


class STP(IntEnum):
    NONE = MC_STP_NONE
    CANCEL_RESTING = MC_STP_CANCEL_RESTING
    CANCEL_TAKER = MC_STP_CANCEL_TAKER
    CANCEL_BOTH = MC_STP_CANCEL_BOTH


class EventKind(IntEnum):
    ACCEPTED = MC_EV_ACCEPTED
    FILL = MC_EV_FILL
    CANCELLED = MC_EV_CANCELLED
    EXPIRED = MC_EV_EXPIRED
    REJECTED = MC_EV_REJECTED
    MODIFIED = MC_EV_MODIFIED


class CommandKind(IntEnum):
    SUBMIT = MC_CMD_SUBMIT
    MARKET = MC_CMD_MARKET
    CANCEL = MC_CMD_CANCEL
    MODIFY = MC_CMD_MODIFY


class Reason(IntEnum):
    """Why an order was rejected (REJECTED) or ended (CANCELLED / EXPIRED)."""
    NONE = MC_R_NONE
    INVALID_QTY = MC_R_INVALID_QTY
    INVALID_PRICE = MC_R_INVALID_PRICE
    INVALID_SIDE = MC_R_INVALID_SIDE
    INVALID_TIF = MC_R_INVALID_TIF
    DUPLICATE_ORDER_ID = MC_R_DUPLICATE_ORDER_ID
    ORDER_NOT_FOUND = MC_R_ORDER_NOT_FOUND
    POST_ONLY_WOULD_CROSS = MC_R_POST_ONLY_WOULD_CROSS
    INVALID_COMMAND = MC_R_INVALID_COMMAND
    UNKNOWN_SYMBOL = MC_R_UNKNOWN_SYMBOL
    PRICE_NOT_ON_TICK = MC_R_PRICE_NOT_ON_TICK
    PRICE_OUTSIDE_BAND = MC_R_PRICE_OUTSIDE_BAND
    QTY_ABOVE_MAX = MC_R_QTY_ABOVE_MAX
    NOTIONAL_ABOVE_MAX = MC_R_NOTIONAL_ABOVE_MAX
    CANCEL_REQUESTED = MC_R_CANCEL_REQUESTED
    SELF_TRADE = MC_R_SELF_TRADE
    IOC_REMAINDER = MC_R_IOC_REMAINDER
    MARKET_REMAINDER = MC_R_MARKET_REMAINDER
    FOK_NOT_FILLABLE = MC_R_FOK_NOT_FILLABLE


Reject = Reason


class OrderRejected(ValueError):
    """An order or request the book refused; nothing in the book changed.

    ``reason`` is a :class:`Reason`, ``order_id`` the id that was refused.
    """

    def __init__(self, reason, order_id=None, message=None):
        self.reason = Reason(reason)
        self.order_id = order_id
        if message is None:
            message = f"order {order_id} rejected: {self.reason.name}"
        super().__init__(message)

    def __reduce__(self):
        # args holds only the message: rebuilt from it, __init__ would read it as the reason.
        # An exception raised in a worker process crosses back pickled.
        return (type(self), (self.reason, self.order_id, self.args[0] if self.args else None),
                self.__dict__ or None)


cdef mc_event _ev0
cdef mc_command _cmd0

def _layout_dtype(fields, size_t itemsize):
    return np.dtype({"names": [f[0] for f in fields], "formats": [f[1] for f in fields],
                     "offsets": [f[2] for f in fields], "itemsize": itemsize})

# Derived from the C structs (offsets taken from the compiler), so the layouts are defined once.
EVENT_DTYPE = _layout_dtype([
    ("ts_ns", "<i8", <size_t>&_ev0.ts_ns - <size_t>&_ev0),
    ("order_id", "<u8", <size_t>&_ev0.order_id - <size_t>&_ev0),
    ("maker_id", "<u8", <size_t>&_ev0.maker_id - <size_t>&_ev0),
    ("price", "<i8", <size_t>&_ev0.price - <size_t>&_ev0),
    ("qty", "<i8", <size_t>&_ev0.qty - <size_t>&_ev0),
    ("owner", "<u8", <size_t>&_ev0.owner - <size_t>&_ev0),
    ("maker_owner", "<u8", <size_t>&_ev0.maker_owner - <size_t>&_ev0),
    ("symbol", "<u4", <size_t>&_ev0.symbol - <size_t>&_ev0),
    ("kind", "u1", <size_t>&_ev0.kind - <size_t>&_ev0),
    ("side", "u1", <size_t>&_ev0.side - <size_t>&_ev0),
    ("reason", "u1", <size_t>&_ev0.reason - <size_t>&_ev0),
    ("_pad", "u1", <size_t>&_ev0._pad - <size_t>&_ev0),
], sizeof(mc_event))

COMMAND_DTYPE = _layout_dtype([
    ("ts_ns", "<i8", <size_t>&_cmd0.ts_ns - <size_t>&_cmd0),
    ("order_id", "<u8", <size_t>&_cmd0.order_id - <size_t>&_cmd0),
    ("price", "<i8", <size_t>&_cmd0.price - <size_t>&_cmd0),
    ("qty", "<i8", <size_t>&_cmd0.qty - <size_t>&_cmd0),
    ("owner", "<u8", <size_t>&_cmd0.owner - <size_t>&_cmd0),
    ("symbol", "<u4", <size_t>&_cmd0.symbol - <size_t>&_cmd0),
    ("kind", "u1", <size_t>&_cmd0.kind - <size_t>&_cmd0),
    ("side", "u1", <size_t>&_cmd0.side - <size_t>&_cmd0),
    ("tif", "u1", <size_t>&_cmd0.tif - <size_t>&_cmd0),
    ("post_only", "u1", <size_t>&_cmd0.post_only - <size_t>&_cmd0),
], sizeof(mc_command))

STRUCT_SIZES = {"event": sizeof(mc_event), "command": sizeof(mc_command),
                "order": sizeof(mc_order), "level": sizeof(mc_level)}


# The general paths of _i64_of/_u64_of/_cint_of (_core.pxd), out of line: any object with
# __index__ (an int beyond two digits, an IntEnum member, a numpy integer); a float or a str
# raises TypeError and an out-of-range value OverflowError, before the book is touched. Each
# names its argument in its errors (the message the reference model gives): one per argument of
# the per-call methods. Only the general path, so the common small int costs nothing more; an
# exact int beyond two digits (a ts_ns since the epoch) is converted without raising and
# re-raising.
cdef extern from "Python.h":
    long long _as_ll_ovf "PyLong_AsLongLongAndOverflow"(object o, int* overflow)
    unsigned long long _as_ull "PyLong_AsUnsignedLongLong"(object o)
    void* _err_occurred "PyErr_Occurred"()
    void _err_clear "PyErr_Clear"()


cdef int64_t _i64_named(object x, str name) except? -1:
    cdef int ovf = 0
    cdef long long v
    if PyLong_CheckExact(x):
        v = _as_ll_ovf(x, &ovf)
        if ovf != 0:
            raise OverflowError(f"{name}={x} is outside the int64 range")
        return v
    if _int_sub_small(x):
        return _int_value(x)
    return _i64_named(mc_int_arg(x, name), name)     # __index__ gives an exact int


cdef uint64_t _u64_named(object x, str name) except? 0xFFFFFFFFFFFFFFFF:
    cdef unsigned long long v
    if PyLong_CheckExact(x):
        v = _as_ull(x)
        if v == <unsigned long long>-1 and _err_occurred() != NULL:
            _err_clear()
            raise OverflowError(f"{name}={x} is outside the uint64 range [0, 2**64)")
        return v
    if _int_sub_small(x) and _int_value(x) >= 0:
        return <uint64_t>_int_value(x)
    return _u64_named(mc_int_arg(x, name), name)


cdef int _cint_named(object x, str name) except? -1:
    cdef int ovf = 0
    cdef long long v
    if not PyLong_CheckExact(x):
        if _int_sub_small(x):
            v = _int_value(x)
        else:
            return _cint_named(mc_int_arg(x, name), name)
    else:
        v = _as_ll_ovf(x, &ovf)
    if ovf != 0 or v < -2147483648 or v > 2147483647:
        raise OverflowError(f"{name}={x} is outside the C int range")
    return <int>v


cdef uint64_t _u64_order_id(object x) except? 0xFFFFFFFFFFFFFFFF:
    return _u64_named(x, "order_id")


cdef uint64_t _u64_owner(object x) except? 0xFFFFFFFFFFFFFFFF:
    return _u64_named(x, "owner")


cdef int64_t _i64_price(object x) except? -1:
    return _i64_named(x, "price")


cdef int64_t _i64_qty(object x) except? -1:
    return _i64_named(x, "qty")


cdef int64_t _i64_ts_ns(object x) except? -1:
    return _i64_named(x, "ts_ns")


cdef int _cint_side(object x) except? -1:
    return _cint_named(x, "side")


cdef int _cint_tif(object x) except? -1:
    return _cint_named(x, "tif")


cdef object mc_int_arg(object x, str name):
    # The integer arguments outside the per-call paths (a mode, a capacity, a limit, a symbol
    # id, a reference price) take the carriers the order methods take (anything with
    # __index__); int() would truncate a float and parse a str or bytes.
    try:
        return PyNumber_Index(x)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(x).__name__} {x!r}") from None


cdef int64_t mc_i64_arg(object x, str name) except? -1:
    return _i64_named(x, name)


# The most orders a book holds: its pools double from 64 slots while they stay within int32
# indices (0x7FFFFFF0), so 64 << 24 = 2**30 is the last size they reach.
_MAX_CAPACITY = 1 << 30


cdef int64_t mc_capacity_arg(object capacity, str name) except? -1:
    # A capacity (orders preallocated): an integer in [0, 2**30]. Above that no book can hold
    # the orders, and the allocation failed with a bare MemoryError after trying.
    cdef int64_t cap = mc_i64_arg(capacity, name)
    if cap < 0 or cap > _MAX_CAPACITY:
        raise ValueError(f"{name} must be in [0, 2**30] (a book holds at most 2**30 orders), "
                         f"got {cap}")
    return cap


cdef int mc_bool_arg(object x, str name) except -1:
    # A flag (post_only, record_events, clear, ...): True or False, a numpy bool, or an integer
    # (anything with __index__) equal to 0 or 1. Anything else, another integer included,
    # raises TypeError naming the flag. A bint parameter took any object through a truth test,
    # so post_only="no" placed a post-only order and None or [] quietly chose for the caller.
    if x is True:
        return 1
    if x is False:
        return 0
    return _bool_arg_slow(x, name)


cdef object _NP_BOOL = np.bool_     # final: no subclass, so a type compare finds it


cdef int _bool_arg_slow(object x, str name) except -1:
    # the common carriers first and without a lookup (a plain int 0/1, as tolist() gives from a
    # post_only column; a numpy bool), then anything with __index__
    cdef object v = x
    if type(x) is not int:
        if type(x) is _NP_BOOL:
            return 1 if x else 0
        try:
            v = PyNumber_Index(x)
        except TypeError:
            v = None
    if v is not None:
        if v == 0:
            return 0
        if v == 1:
            return 1
    raise TypeError(f"{name} must be True or False, got {x!r}")


def _flag_arg(x, str name):
    """``x`` as a bool under the rule of every flag of the API (see ``mc_bool_arg``), else the
    same TypeError: for the pure-Python functions that take a flag."""
    return mc_bool_arg(x, name) == 1


cdef int mc_stp_arg(object stp) except -1:
    cdef object mode = mc_int_arg(stp, "stp")
    if mode < MC_STP_NONE or mode > MC_STP_CANCEL_BOTH:
        raise ValueError(f"unknown self-trade prevention mode {stp!r}")
    return <int>mode


cdef object _py_i128(mc_i128 v):
    if v >= <mc_i128>INT64_MIN and v <= <mc_i128>0x7FFFFFFFFFFFFFFF:
        return <int64_t>v
    return (int(<int64_t>(v >> 64)) << 64) + int(<uint64_t>v)


cdef int _check_side_exact(const mc_book* b, int s, Py_ssize_t n) except -1:
    # The top n levels of side s fit int64 arrays: a level total beyond int64 is refused, never
    # written saturated (the C function table documents its saturation; Python refuses).
    cdef int32_t i = b.side[s].n - 1
    cdef Py_ssize_t k = 0
    cdef const mc_level* l
    while i >= 0 and k < n:
        l = &b.levels[b.side[s].lv[i]]
        i -= 1
        if l.count == 0:
            continue
        k += 1
        if l.qty > <mc_i128>0x7FFFFFFFFFFFFFFF:
            raise OverflowError(f"level {l.price} holds {_py_i128(l.qty)} lots, beyond int64: "
                                f"use best_bid()/best_ask()/level() for exact totals")
    return 0


cdef int _check_depth_exact(const mc_book* b, Py_ssize_t n) except -1:
    # depth() hands out int64 arrays: a level total beyond int64 is refused, never wrapped.
    _check_side_exact(b, MC_BUY, n)
    _check_side_exact(b, MC_SELL, n)
    return 0


cdef object _raise(int64_t code, uint64_t oid):
    if code == -MC_ERR_NOMEM:
        raise MemoryError("matchcore: out of memory; the book is unchanged")
    raise OrderRejected(-code, oid)


class SnapshotError(ValueError):
    """A snapshot that cannot be restored (wrong magic, unknown version, truncated, checksum
    mismatch or inconsistent content); the target book is unchanged. ``code`` is the C error."""

    def __init__(self, code, message):
        self.code = code
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.code, self.args[0] if self.args else ""), self.__dict__ or None)


_SNAPSHOT_ERRORS = {
    MC_SNAP_E_MAGIC: "not a matchcore book snapshot (bad magic)",
    MC_SNAP_E_VERSION: "unsupported snapshot format version",
    MC_SNAP_E_TRUNCATED: "snapshot is truncated",
    MC_SNAP_E_CHECKSUM: "snapshot checksum mismatch (corrupted data)",
    MC_SNAP_E_CORRUPT: "snapshot content is inconsistent",
    MC_SNAP_E_NOMEM: "out of memory while restoring a snapshot",
}


class BusyError(RuntimeError):
    """A call on an :class:`OrderBook` or :class:`Engine` that another thread is using right now.

    The calls that run long in compiled code (``process()``, ``restore()``, a feed replay, a
    timed loop) release the GIL, so that other threads and other books go on meanwhile; the book
    (and its engine) is busy until the call returns, and any call on it from another thread
    raises this, having changed nothing. One book (or engine) is used by one thread at a time.
    """


class ReadOnlyBookError(RuntimeError):
    """Order entry on an :class:`OrderBook` that belongs to an :class:`Engine` (``eng.book(s)``).

    The engine routes every order id to its book, checks the symbol's limits and journals the
    command; an order entered on the book itself would skip all three (a later id could then
    rest twice across books, and recovery would not see it). So the book's ``submit``,
    ``submit_market``, ``cancel``, ``modify``, ``place``, ``reduce``, ``process``, ``clear`` and
    ``restore`` raise this, having changed nothing; its queries work as on any book. Enter the
    order through the engine (``eng.submit(symbol, ...)``). A book the engine no longer holds
    (the engine is gone, the book still referenced) takes orders again.
    """


_BUSY_CALLS = {
    MC_BUSY_PROCESS: "process()",
    MC_BUSY_RESTORE: "restore()",
    MC_BUSY_ENGINE: "Engine.process()",
    MC_BUSY_REPLAY: "a feed replay",
    MC_BUSY_TIMED: "a timed loop (matchcore._timing)",
    MC_BUSY_JOURNAL: "a journal write",
    MC_BUSY_QUERY: "a query (events(), depth(), level(), ...)",
    MC_BUSY_HELD: "a read in several steps (a pickle, copy, snapshot file or invariants check)",
}


cdef int mc_raise_busy(str who, uint8_t what) except -1:
    # Out of line: the methods only test a byte and branch here.
    call = _BUSY_CALLS.get(what & MC_BUSY_MASK, "a call")
    if what & MC_BUSY_VIA_BOOK:
        where = "one of its books"
    else:
        where = "it"
        if what == MC_BUSY_ENGINE:
            call = "process()"
    one = "book" if who == "OrderBook" else "engine" if who == "Engine" else "replayer"
    raise BusyError(f"{who} is busy: {call} is running on {where} in another thread; one "
                    f"{one} is used by one thread at a time")


cdef int mc_raise_engine_book(const mc_book* b) except -1:
    raise ReadOnlyBookError(
        f"this OrderBook (symbol {b.symbol}) belongs to an Engine: enter orders through the "
        f"engine (eng.submit({b.symbol}, ...), eng.cancel(...), eng.process(...)), which routes, "
        f"checks limits and journals them; the book itself answers queries only")


cdef int mc_entry_slow(mc_book* b) except -1:
    if b.engine_owned:
        return mc_raise_engine_book(b)
    return mc_guard_slow(b)


cdef int mc_raise_finished(str who, str what) except -1:
    # finish() framed the last bytes knowing that nothing follows them and reported the cut:
    # bytes fed after it would be applied behind that report
    raise ValueError(f"{who}.{what}() after finish(): the stream has ended (its truncation, "
                     f"if any, is reported in stats); replay another stream with a new {who}")


cdef int mc_raise_feed_stopped(str who, Py_ssize_t pos) except -1:
    raise BusyError(f"{who} is busy: a call runs on one of its books in another thread; "
                    f"feed() stopped after {pos} bytes of this buffer (stats"
                    f"['bytes_consumed'] counts them); one replayer and its books are used "
                    f"by one thread at a time")


cdef int mc_busy_slow(const mc_book* b) except -1:
    if b.guard & MC_BUSY_MASK:
        return mc_raise_busy("OrderBook", b.guard & MC_BUSY_MASK)
    cdef uint8_t host = b.host_busy[0] if b.host_busy != NULL else 0
    if host:
        if host == MC_BUSY_HELD and mc_held_by_me(b.host_busy):
            return 1
        # busy as a part of its Engine (or replayer): name what runs there
        call = _BUSY_CALLS.get(host & MC_BUSY_MASK, "a call")
        # (only a feed replayer sets MC_BUSY_REPLAY on its own; the other codes are an Engine's)
        where = ("another book of its Engine or replayer" if host & MC_BUSY_VIA_BOOK
                 else "its replayer" if host == MC_BUSY_REPLAY else "its Engine")
        if host == MC_BUSY_ENGINE:
            call = "process()"
        raise BusyError(f"OrderBook is busy: {call} is running on {where} in another thread; "
                        f"one book is used by one thread at a time")
    return 0


cdef int mc_guard_slow(mc_book* b) except -1:
    if b.guard & (MC_BUSY_MASK | MC_GUARD_HOSTED):
        mc_busy_slow(b)
    if b.guard & MC_GUARD_NO_EVENTS:
        b.n_ev = 0
    return 0


cdef int mc_busy_enter(mc_book* b, uint8_t what) except -1:
    if b.guard & (MC_BUSY_MASK | MC_GUARD_HOSTED):
        # (an Engine's book is hosted: a standalone book tests one byte, as before)
        if b.engine_owned and what != MC_BUSY_QUERY and what != MC_BUSY_HELD:
            # a call that changes the book (process, restore, a replay or timed loop of its own)
            mc_raise_engine_book(b)
        if mc_busy_slow(b) == 1:
            return 0            # inside this thread's hold: it covers the call
    if b.host_busy != NULL:
        b.host_busy[0] = what | MC_BUSY_VIA_BOOK
    b.guard |= what
    return 0


cdef void mc_busy_leave(mc_book* b) noexcept:
    if b.host_busy != NULL and b.host_busy[0] == MC_BUSY_HELD:
        return                  # mc_busy_enter marked nothing; the hold's owner releases it
    b.guard &= MC_GUARD_HOSTED | MC_GUARD_NO_EVENTS
    if b.host_busy != NULL:
        b.host_busy[0] = 0


# The threads holding an engine (MC_BUSY_HELD, matchcore._engine's mc_engine_hold), by the
# address of its busy byte: looked up only when a call finds the byte set, never on the
# per-call path.
cdef dict _HOLDERS = {}


cdef int mc_hold_register(const uint8_t* busy) except -1:
    _HOLDERS[<size_t>busy] = PyThread_get_thread_ident()
    return 0


cdef void mc_hold_unregister(const uint8_t* busy) noexcept:
    _HOLDERS.pop(<size_t>busy, None)


cdef int mc_held_by_me(const uint8_t* busy) except -1:
    return _HOLDERS.get(<size_t>busy) == PyThread_get_thread_ident()


cdef void mc_book_host(mc_book* b, uint8_t* host_busy) noexcept:
    b.host_busy = host_busy
    if host_busy != NULL:
        b.guard |= MC_GUARD_HOSTED
    else:
        b.guard &= ~MC_GUARD_HOSTED
        b.engine_owned = 0


cdef tuple mc_book_pickle_args(OrderBook book):
    # one step in compiled code: no other thread's call can come between the parts
    cdef mc_book* b = book._b
    cdef int64_t size = mc_snapshot_size(b)
    cdef int64_t n_ev = b.n_ev if book.record_events else 0
    snap = PyBytes_FromStringAndSize(NULL, size)
    mc_snapshot_write(b, <uint8_t*>PyBytes_AS_STRING(snap), size)
    events = PyBytes_FromStringAndSize(<char*>b.ev, n_ev * sizeof(mc_event))
    return (_PICKLE_FORMAT, snap, book.record_events, b.orders_cap, events, None)


cdef class _HeldState:
    """The state an Engine's pickle read for one of its books (``_book_from_pickle``'s
    arguments). It pickles as that tuple; the book refers to it weakly, so the state lives only
    as long as the engine's pickle arguments do."""
    cdef readonly tuple args
    cdef object __weakref__

    def __reduce__(self):
        return tuple, (self.args,)


cdef object mc_book_held_state(OrderBook book, tuple args):
    cdef _HeldState held = _HeldState.__new__(_HeldState)
    held.args = args
    book._pickled = weakref.ref(held)
    return held


cdef int mc_book_copy_into(OrderBook dst, OrderBook src) except -1:
    if dst._b.guard & (MC_BUSY_MASK | MC_GUARD_HOSTED):
        # an engine's or replayer's slot (or a running call) points at dst's struct
        raise ValueError("the OrderBook to copy into already belongs to an engine or replayer, "
                         "or is in use")
    cdef mc_book* nb = mc_book_copy(src._b)
    if nb == NULL:
        raise MemoryError()
    nb.handle = dst._b.handle
    mc_handle_set(nb.handle, nb)
    mc_book_free(dst._b)
    dst._b = nb
    # a plain book writes events when it records them: a feed replayer's books record
    # none whatever record_events says (emit = 0), their copy (as their pickle) is plain
    nb.emit = 1 if src.record_events else 0
    # mc_book_copy (also the C table's book_copy) starts with an empty event buffer, of the
    # original's capacity: a Python copy keeps the events the caller has not read yet
    if src.record_events and src._b.n_ev > 0:
        memcpy(nb.ev, src._b.ev, src._b.n_ev * sizeof(mc_event))
        nb.n_ev = src._b.n_ev
    return 0


cdef object _raise_snapshot(int rc):
    if -rc == MC_SNAP_E_NOMEM:
        raise MemoryError(_SNAPSHOT_ERRORS[MC_SNAP_E_NOMEM])
    raise SnapshotError(-rc, _SNAPSHOT_ERRORS.get(-rc, f"snapshot error {-rc}"))


cdef object _snapshot_view(data):
    if isinstance(data, str):
        raise TypeError("a snapshot is bytes, not str")
    return memoryview(data).cast("B")


cdef object _owner_events_array(const mc_event* src, int64_t n, uint64_t owner):
    cdef int64_t k = mc_filter_events_owner(src, n, owner, NULL)
    cdef cnp.ndarray out = np.empty(k, dtype=EVENT_DTYPE)
    if k > 0:
        mc_filter_events_owner(src, n, owner, <mc_event*>cnp.PyArray_DATA(out))
    return out


cdef object _commands_array(object commands, str what):
    # A batch of commands checked before any runs (OrderBook, Engine, the timed loops): a 1-D
    # COMMAND_DTYPE array. The loops read shape[0] records from its buffer, so an array of
    # another shape would run only that many of its records (and ascontiguousarray would make a
    # 0-d array or a np.void scalar 1-D: the shape is checked before any conversion). A strided
    # or unaligned array is copied into an aligned contiguous one, which the C loops can read.
    # an exact ndarray of the exact dtype (the common case) is checked by pointer, not by calls
    cdef cnp.ndarray arr = commands if type(commands) is cnp.ndarray else np.asarray(commands)
    if <object>cnp.PyArray_DESCR(arr) is not COMMAND_DTYPE and arr.dtype != COMMAND_DTYPE:
        raise TypeError(f"{what} needs an array of matchcore.COMMAND_DTYPE, got {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{what} needs a 1-D array of commands, got shape {(<object>arr).shape}")
    # numpy calls a COMMAND_DTYPE array aligned at any address (the dtype is not an aligned
    # struct), so the data pointer is checked against the 8 bytes of the int64 fields.
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or (<size_t>cnp.PyArray_DATA(arr)) & 7:
        arr = np.array(arr, order="C", copy=True)
    return arr


cdef object _out_buffer(object out, object commands):
    # process(out=...)'s buffer checked before any command runs (OrderBook and Engine): the
    # array itself, or None without one.
    if out is None:
        return None
    if not isinstance(out, cnp.ndarray) or (
            <object>cnp.PyArray_DESCR(<cnp.ndarray>out) is not EVENT_DTYPE
            and (<cnp.ndarray>out).dtype != EVENT_DTYPE):
        raise TypeError("process(out=...) needs a numpy array of matchcore.EVENT_DTYPE")
    cdef cnp.ndarray dst = <cnp.ndarray>out
    if dst.ndim != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(dst) or (<size_t>cnp.PyArray_DATA(dst)) & 7:
        raise ValueError("process(out=...) needs a 1-D C-contiguous array at an 8-byte aligned "
                         "address")
    if not cnp.PyArray_ISWRITEABLE(dst):
        raise ValueError("process(out=...) needs a writeable array")
    # Events written into the commands' own memory would overwrite commands not yet run. Both
    # are contiguous, so overlapping byte ranges are shared memory (compared here rather than
    # with np.may_share_memory, a few hundred ns per batch).
    cdef cnp.ndarray cmds = <cnp.ndarray>commands
    cdef size_t d0 = <size_t>cnp.PyArray_DATA(dst), c0 = <size_t>cnp.PyArray_DATA(cmds)
    cdef size_t dn = <size_t>cnp.PyArray_NBYTES(dst), cn = <size_t>cnp.PyArray_NBYTES(cmds)
    if dn > 0 and cn > 0 and d0 < c0 + cn and c0 < d0 + dn:
        raise ValueError("process(out=...) must not share memory with the commands")
    return dst


# A large batch without out= writes its events straight into the array it returns, which is
# therefore made before the batch. A new array's pages are faulted in as the events land, and
# the kernel zeroes each one: about 10 ns an event on this machine, and a first call can stall
# for tens of ms while the kernel compacts memory for numpy's huge-page request. The last few
# such arrays are kept here; one whose results are all gone (only this list refers to it) is
# written again by the next batch it fits, so a loop of process() calls runs on mapped pages.
# Bounded: at most _RESULT_KEEP arrays and _RESULT_KEEP_BYTES bytes are held for reuse.
cdef list _RESULTS = []
cdef int _RESULT_KEEP = 2
cdef int64_t _RESULT_KEEP_BYTES = 128 << 20


cdef object mc_result_block(int64_t n):
    """An EVENT_DTYPE array of n events or more (at most 2n), contents undefined, for a batch's
    events; the result handed out is a view of its first k (see _RESULTS)."""
    cdef Py_ssize_t i, best = -1, spare = -1, count = len(_RESULTS)
    cdef int64_t size, best_size = 0, held = 0
    cdef PyObject* p
    cdef bint in_use
    cdef cnp.ndarray arr
    for i in range(count):
        p = PyList_GET_ITEM(_RESULTS, i)
        in_use = p.ob_refcnt != 1      # a result still refers to it (read before a reference here)
        arr = <cnp.ndarray><object>p
        size = arr.shape[0]
        arr = None
        held += size * <int64_t>sizeof(mc_event)
        if in_use:
            continue
        spare = i
        if n <= size <= 2 * n and (best < 0 or size < best_size):
            best, best_size = i, size
    if best >= 0:
        return _RESULTS[best]
    blk = np.empty(n, dtype=EVENT_DTYPE)
    cdef int64_t nbytes = n * <int64_t>sizeof(mc_event)
    if spare >= 0:
        # a free array that does not fit: this one takes its place
        arr = <cnp.ndarray>_RESULTS[spare]
        held -= arr.shape[0] * <int64_t>sizeof(mc_event)
        arr = None
        if held + nbytes <= _RESULT_KEEP_BYTES:
            _RESULTS[spare] = blk
    elif count < _RESULT_KEEP and held + nbytes <= _RESULT_KEEP_BYTES:
        _RESULTS.append(blk)
    return blk


def _result_blocks():
    """The arrays kept for reuse by process() (for tests)."""
    return list(_RESULTS)


cdef object _events_array(const mc_event* src, int64_t n):
    cdef cnp.ndarray out = np.empty(n, dtype=EVENT_DTYPE)
    if n > 0:
        memcpy(cnp.PyArray_DATA(out), src, n * sizeof(mc_event))
    return out


# The ints 0..1023 made once: a per-call method returns executed or cancelled lots, nearly always
# small, and handing out one of these is a few instructions where PyLong_FromLong is a call.
cdef tuple _SMALL_INTS = tuple(range(1024))


# The defaults of tif, owner and ts_ns (and an explicit 0) are the interpreter's cached 0: a
# pointer compare reads them.
cdef object _ZERO = 0


cdef inline object _lots(int64_t r):
    if <uint64_t>r < 1024:
        return <object>PyTuple_GET_ITEM(_SMALL_INTS, r)
    return r


cdef object mc_small_int(int64_t r):
    """_lots for other modules (the Engine's per-call methods)."""
    return _lots(r)


cdef class OrderBook:
    """A price-time-priority limit order book and matching engine for one instrument.

    Prices are positive integer ticks, quantities positive integer lots, order ids integers in
    [0, 2**64). Every operation is O(1) in the number of resting orders apart from the levels
    and orders it trades with, and a new price level: a search of O(log levels between it and
    the touch), plus a move of the levels between it and the nearer end of its side's ladder
    (none at the touch or beyond the deepest level, at most 1,024 near either end; further in,
    at most 32 to a gap, the gaps made by spreading, O(log² levels) amortized).

    >>> book = OrderBook()
    >>> book.submit(1, Side.SELL, 101, 5)
    0
    >>> book.submit(2, Side.BUY, 101, 3)
    3
    >>> book.best_ask()
    (101, 2)
    """

    def __cinit__(self, stp=MC_STP_CANCEL_RESTING, *, record_events=True, capacity=1024):
        cdef int mode = mc_stp_arg(stp)
        cdef bint recording = mc_bool_arg(record_events, "record_events")
        cdef int64_t cap = mc_capacity_arg(capacity, "capacity")
        self._b = mc_book_new(mode, cap)
        if self._b == NULL:
            raise MemoryError()
        self._b.handle = mc_handle_new(self._b, MC_H_BOOK, 0)
        if self._b.handle == 0:
            mc_book_free(self._b)
            self._b = NULL
            raise MemoryError("matchcore: no handle left for a new book")
        self.record_events = recording
        # A book that records no events writes none, whoever calls it (Python, C, Numba).
        self._b.emit = 1 if recording else 0
        self._b.guard = 0 if recording else MC_GUARD_NO_EVENTS

    def __dealloc__(self):
        if self._b != NULL:
            # The handle dies first: from here on every C/Numba call with it is refused.
            mc_handle_release(self._b.handle)
        mc_book_free(self._b)
        self._b = NULL

    @property
    def stp(self):
        """The self-trade prevention mode (:class:`STP`)."""
        mc_check_busy(self._b)
        return STP(self._b.stp)

    @property
    def busy(self):
        """True while a call that releases the GIL (:meth:`process`, :meth:`restore`, a feed
        replay, a timed loop) or a read in several steps (pickling or copying its Engine, an
        engine snapshot) runs on this book, or on its Engine or replayer, in some thread: any
        other thread's call on it meanwhile raises :class:`BusyError`. O(1).

        >>> OrderBook().busy
        False
        """
        return (self._b.guard & MC_BUSY_MASK) != 0 or (
            self._b.host_busy != NULL and self._b.host_busy[0] != 0)

    def __len__(self):
        mc_check_busy(self._b)
        return self._b.n_orders

    def __repr__(self):
        mc_check_busy(self._b)
        return (f"<OrderBook orders={self._b.n_orders} bid_levels={mc_level_count(self._b, 0)} "
                f"ask_levels={mc_level_count(self._b, 1)} stp={STP(self._b.stp).name}>")

    # ---- order entry ----

    def submit(self, order_id, side, price, qty, tif=MC_GTC, *, owner=0, post_only=False,
               ts_ns=0):
        """Submit a limit order; returns the qty executed immediately (lots).

        GTC rests its remainder, IOC expires it, FOK trades completely or not at all. A post-only
        order that would cross is not placed (returns 0, REJECTED event). Raises
        :class:`OrderRejected` for qty <= 0, price <= 0, an unknown side or TIF, or the id of a
        resting order; the book is then unchanged. O(1) + O(fills).

        >>> book = OrderBook(); book.submit(7, 0, 100, 10)
        0
        """
        cdef mc_book* b = self._b
        # the flag first, where a bint parameter was converted (the order of the errors)
        cdef int c_post = mc_flag_of(post_only, "post_only")
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int c_side = _cint_of(side, _cint_side)
        cdef int64_t c_price = _i64_of(price, _i64_price)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef int c_tif = 0 if tif is _ZERO else _cint_of(tif, _cint_tif)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        mc_guard_entry(b)
        b.now_ns = c_ts
        mc_prefetch_next_ids(b, oid)
        cdef int64_t r = _submit(b, oid, c_side, c_price, c_qty, c_tif, c_owner, c_post)
        if r >= 0:
            return _lots(r)
        if r == -MC_R_POST_ONLY_WOULD_CROSS:
            return 0
        _raise(r, oid)

    def submit_market(self, order_id, side, qty, *, owner=0, ts_ns=0):
        """Submit a market order; returns the qty executed. The remainder expires, never rests.

        >>> book = OrderBook(); book.submit(1, 1, 100, 5); book.submit_market(2, 0, 8)
        0
        5
        """
        cdef mc_book* b = self._b
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int c_side = _cint_of(side, _cint_side)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef uint64_t c_owner = 0 if owner is _ZERO else _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        mc_guard_entry(b)
        b.now_ns = c_ts
        mc_prefetch_next_ids(b, oid)
        cdef int64_t r = mc_market(b, oid, c_side, c_qty, c_owner)
        if r >= 0:
            return _lots(r)
        _raise(r, oid)

    def cancel(self, order_id, *, ts_ns=0):
        """Cancel a resting order; returns its open qty, or 0 if it is not resting. O(1).

        >>> book = OrderBook(); book.submit(1, 0, 100, 5); book.cancel(1); book.cancel(1)
        0
        5
        0
        """
        cdef mc_book* b = self._b
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        mc_guard_entry(b)
        b.now_ns = c_ts
        cdef int64_t r = _cancel(b, oid)
        if r >= 0:
            return _lots(r)
        if r == -MC_R_ORDER_NOT_FOUND:
            return 0
        _raise(r, oid)

    def modify(self, order_id, qty, price=None, *, ts_ns=0):
        """Set a resting order's open qty (and price); returns False if it is not resting.

        Same price and a qty not above the open qty keeps the queue place; a larger qty or a new
        price re-enters the order at the back of its level, and it may trade (at the makers'
        prices). ``price=None`` (or 0) keeps the price. A post-only order whose new price would
        cross is left unchanged (False). O(1) + O(fills).

        >>> book = OrderBook(); book.submit(1, 0, 100, 5); book.modify(1, 3)
        0
        True
        """
        cdef mc_book* b = self._b
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef int64_t p = 0 if price is None else _i64_of(price, _i64_price)
        cdef int64_t c_ts = 0 if ts_ns is _ZERO else _i64_of(ts_ns, _i64_ts_ns)
        mc_guard_entry(b)
        b.now_ns = c_ts
        cdef int64_t r = _modify(b, oid, c_qty, p)
        if r >= 0:
            return True
        if r == -MC_R_ORDER_NOT_FOUND or r == -MC_R_POST_ONLY_WOULD_CROSS:
            return False
        _raise(r, oid)

    # ---- replay mode: apply an exchange's own events, without matching ----

    def place(self, order_id, side, price, qty, *, owner=0, ts_ns=0):
        """Rest an order at the back of its level WITHOUT matching (replay mode: the exchange
        already matched). The book may become crossed or locked, as exchange data can be.
        Raises :class:`OrderRejected` for qty <= 0, price <= 0, an unknown side or a resting id.
        O(1).

        >>> book = OrderBook(); book.place(1, 0, 101, 5); book.place(2, 1, 100, 5); len(book)
        2
        """
        cdef mc_book* b = self._b
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int c_side = _cint_of(side, _cint_side)
        cdef int64_t c_price = _i64_of(price, _i64_price)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef uint64_t c_owner = _u64_of(owner, _u64_owner)
        cdef int64_t c_ts = _i64_of(ts_ns, _i64_ts_ns)
        mc_guard_entry(b)
        b.now_ns = c_ts
        cdef int64_t r = mc_rest(b, oid, c_side, c_price, c_qty, c_owner)
        if r < 0:
            _raise(r, oid)

    def reduce(self, order_id, qty, *, execution=False, ts_ns=0):
        """Take up to ``qty`` off a resting order (an exchange-reported execution when
        ``execution`` is true, else a partial cancel); the order leaves at zero. Returns the qty
        taken (clamped to the open qty), or 0 if the order is not resting. O(1).

        >>> book = OrderBook(); book.place(1, 0, 100, 5); book.reduce(1, 7, execution=True)
        5
        """
        cdef mc_book* b = self._b
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int64_t c_qty = _i64_of(qty, _i64_qty)
        cdef int c_exec = mc_flag_of(execution, "execution")
        cdef int64_t c_ts = _i64_of(ts_ns, _i64_ts_ns)
        mc_guard_entry(b)
        b.now_ns = c_ts
        cdef int64_t r = mc_reduce(b, oid, c_qty, c_exec)
        if r >= 0:
            return _lots(r)
        if r == -MC_R_ORDER_NOT_FOUND:
            return 0
        _raise(r, oid)

    def process(self, commands, out=None):
        """Apply a batch of :data:`COMMAND_DTYPE` records in compiled code; returns its events.

        Exactly the events the same commands give through the per-call methods, in order; bad
        commands give REJECTED events and the batch goes on. Pending :meth:`events` are kept.
        Runs without the GIL. O(n + fills).

        ``out``: a caller-owned, writeable, 1-D C-contiguous aligned :data:`EVENT_DTYPE` array
        that shares no memory with ``commands``, reused across calls so that no new array (and
        none of its first-touch page faults) is paid per batch. When the batch's k events fit
        (k <= len(out)) they are written to ``out[:k]`` and that view is returned; when they do
        not, a new array with all k events is returned (and what ``out`` then holds is
        unspecified), so no event is ever lost: ``len(result) > len(out)`` tells the caller to
        grow its buffer. A bad ``out`` raises before any command
        is applied. Either way the events are written in place as the commands run, without a
        copy afterwards (after a shortfall, only the rest is copied).

        >>> import numpy as np
        >>> cmds = np.zeros(2, dtype=COMMAND_DTYPE); cmds["qty"] = 5; cmds["price"] = 100
        >>> cmds["order_id"] = [1, 2]; cmds["side"] = [0, 1]
        >>> buf = np.empty(1024, dtype=EVENT_DTYPE)
        >>> ev = OrderBook().process(cmds, out=buf); len(ev), np.shares_memory(ev, buf)
        (3, True)
        """
        cdef cnp.ndarray arr = _commands_array(commands, "process()")
        cdef cnp.ndarray dst = _out_buffer(out, arr)
        cdef int64_t dst_cap = -1 if dst is None else dst.shape[0]
        cdef mc_book* b = self._b
        cdef int64_t n = arr.shape[0]
        cdef const mc_command* cmds = <const mc_command*>cnp.PyArray_DATA(arr)
        cdef int64_t start = -1, k, m, tail, done
        cdef uint8_t emit
        cdef mc_event* dp
        cdef bint fresh = dst is None
        cdef bint lost = False
        # Lend the result array (or out=) to the book as its event buffer, so that the events
        # are written where the caller reads them. Not for a small batch: its events go to the
        # book's own buffer and are copied into an array of their exact size. An order needs
        # room for its worst case (mc_ev_bound: one event per lot, at most one per resting order)
        # before it starts; one that finds too little sends the rest of the batch to the book's
        # own buffer, and the two parts are joined at the end.
        cdef bint lend = not fresh or n >= 2048
        if fresh and lend:
            # made first (or reused, see mc_result_block); the result is a view of its events
            dst = mc_result_block(2 * n + 64)
            dst_cap = dst.shape[0]
        # Busy from here until the event buffer is the book's own again: the batch runs without
        # the GIL, and a call from another thread meanwhile raises BusyError.
        mc_busy_enter(b, MC_BUSY_PROCESS)
        try:
            start = b.n_ev
            emit = b.emit
            b.emit = 1        # the batch's events are returned even when the book records none
            if lend:
                # pending per-call events stay in the book's own buffer
                dp = <mc_event*>cnp.PyArray_DATA(dst)
                b.ev_home = b.ev
                b.ev_home_n = start
                b.ev_home_cap = b.ev_cap
                b.ev_spill = 0
                b.ev = dp
                b.n_ev = 0
                b.ev_cap = dst_cap
                b.ev_borrowed = 1
            # one call site: a second one made the compiler stop inlining the command dispatch
            with nogil:
                done = mc_process(b, cmds, n)
            b.emit = emit
            try:
                if not lend:
                    res = _events_array(&b.ev[start], b.n_ev - start)
                else:
                    if b.ev_borrowed:
                        m = b.n_ev
                        tail = 0
                        b.ev = b.ev_home
                        b.ev_cap = b.ev_home_cap
                        b.ev_borrowed = 0
                    else:
                        # dst ran short: its first ev_spill events, then the rest in the own buffer
                        m = b.ev_spill
                        tail = b.n_ev - start
                    b.ev_home = NULL
                    k = m + tail
                    if k <= dst_cap:
                        if tail > 0:
                            memcpy(&dp[m], &b.ev[start], tail * sizeof(mc_event))
                        res = dst[:k]
                    else:
                        res = np.empty(k, dtype=EVENT_DTYPE)
                        if m > 0:
                            memcpy(cnp.PyArray_DATA(res), dp, m * sizeof(mc_event))
                        if tail > 0:
                            memcpy(<mc_event*>cnp.PyArray_DATA(res) + m, &b.ev[start],
                                   tail * sizeof(mc_event))
            except MemoryError:
                # the commands ran but no memory is left for the array of their events: the
                # exception says how many ran, and none of their events stays pending
                lost = True
        finally:
            if start >= 0:
                b.n_ev = start
            mc_busy_leave(b)
        if lost:
            raise MemoryError(f"matchcore: out of memory after {done} of {n} commands (applied; "
                              "no memory was left for their events, which are lost)")
        if done < n:
            raise MemoryError(f"matchcore: out of memory after {done} of {n} commands")
        return res

    def events(self, owner=None):
        """Every event since the previous call (per-call API), as a :data:`EVENT_DTYPE` array.

        With ``owner=w``, only the events of participant w: those of its own orders (including
        fills where it was the aggressor) and the fills where one of its orders was the maker
        (``maker_owner == w``); the filter runs in compiled code and every other pending event
        is dropped too. Always empty when the book was made with ``record_events=False``.
        O(pending events).

        >>> book = OrderBook(); book.submit(1, 1, 100, 5, owner=7); book.submit(2, 0, 100, 2, owner=8)
        0
        2
        >>> book.events(owner=7)["kind"].tolist()  # ACCEPTED of order 1, then its FILL as maker
        [0, 1]
        """
        cdef uint64_t w = 0 if owner is None else _u64_of(owner, _u64_owner)
        cdef mc_book* b = self._b
        mc_guard_per_call(b)
        # held while the result array is made (its allocation may run other threads' code)
        mc_busy_enter(b, MC_BUSY_QUERY)
        try:
            if owner is None:
                out = _events_array(b.ev, b.n_ev)
            else:
                out = _owner_events_array(b.ev, b.n_ev, w)
            b.n_ev = 0
        finally:
            mc_busy_leave(b)
        return out

    # ---- queries ----

    def best_bid(self):
        """(price, aggregated qty) of the best bid, or None. O(1)."""
        mc_check_busy(self._b)
        cdef const mc_ladder* L = &self._b.side[MC_BUY]
        if L.n == 0:
            return None
        cdef const mc_level* l = &self._b.levels[L.lv[L.n - 1]]
        return (l.price, _py_i128(l.qty))

    def best_ask(self):
        """(price, aggregated qty) of the best ask, or None. O(1)."""
        mc_check_busy(self._b)
        cdef const mc_ladder* L = &self._b.side[MC_SELL]
        if L.n == 0:
            return None
        cdef const mc_level* l = &self._b.levels[L.lv[L.n - 1]]
        return (l.price, _py_i128(l.qty))

    def depth(self, n=10):
        """Top n levels per side as int64 arrays of shape (k, 2): price, qty; best first. O(n)."""
        # n named in its errors, in the reference model's words (a bare Py_ssize_t parameter
        # said "'float' object cannot be interpreted as an integer")
        cdef int64_t k = mc_i64_arg(n, "n")
        if k < 0:
            raise ValueError(f"depth(n) needs n >= 0, got {k}")
        cdef cnp.ndarray bids, asks
        mc_busy_enter(self._b, MC_BUSY_QUERY)     # held while the arrays are made
        try:
            bids = np.empty((min(k, mc_level_count(self._b, MC_BUY)), 2), dtype=np.int64)
            asks = np.empty((min(k, mc_level_count(self._b, MC_SELL)), 2), dtype=np.int64)
            mc_depth(self._b, MC_BUY, k, <int64_t*>cnp.PyArray_DATA(bids))
            mc_depth(self._b, MC_SELL, k, <int64_t*>cnp.PyArray_DATA(asks))
            _check_depth_exact(self._b, k)
        finally:
            mc_busy_leave(self._b)
        return bids, asks

    def depth_orders(self, n=10):
        """Like :meth:`depth` with a third column: the number of orders at each level."""
        # n named in its errors, in the reference model's words (a bare Py_ssize_t parameter
        # said "'float' object cannot be interpreted as an integer")
        cdef int64_t k = mc_i64_arg(n, "n")
        if k < 0:
            raise ValueError(f"depth_orders(n) needs n >= 0, got {k}")
        cdef cnp.ndarray bids, asks
        mc_busy_enter(self._b, MC_BUSY_QUERY)     # held while the arrays are made
        try:
            bids = np.empty((min(k, mc_level_count(self._b, MC_BUY)), 3), dtype=np.int64)
            asks = np.empty((min(k, mc_level_count(self._b, MC_SELL)), 3), dtype=np.int64)
            mc_depth_orders(self._b, MC_BUY, k, <int64_t*>cnp.PyArray_DATA(bids))
            mc_depth_orders(self._b, MC_SELL, k, <int64_t*>cnp.PyArray_DATA(asks))
            _check_depth_exact(self._b, k)
        finally:
            mc_busy_leave(self._b)
        return bids, asks

    def _depth_exact(self, Py_ssize_t n=10):
        """Like :meth:`depth_orders`, as two lists of (price, qty, orders) tuples whose qty is
        the exact level total, also beyond int64 where depth() raises: for the library's own
        whole-book walks (an engine's invariants, a CLI book dump). O(n)."""
        cdef int s
        cdef int32_t i
        cdef Py_ssize_t k
        cdef const mc_level* l
        out = ([], [])
        mc_busy_enter(self._b, MC_BUSY_QUERY)     # held while the tuples are made
        try:
            for s in range(2):
                rows = out[s]
                k = 0
                i = self._b.side[s].n - 1
                while i >= 0 and k < n:
                    l = &self._b.levels[self._b.side[s].lv[i]]
                    i -= 1
                    if l.count == 0:
                        continue
                    rows.append((l.price, _py_i128(l.qty), l.count))
                    k += 1
        finally:
            mc_busy_leave(self._b)
        return out

    def get(self, order_id):
        """(side, price, open_qty) of a resting order, or None. O(1)."""
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        cdef int s
        cdef int64_t p, q
        mc_check_busy(self._b)      # after the argument's conversion (it may run Python code)
        if mc_get(self._b, oid, &s, &p, &q):
            return (s, p, q)
        return None

    def queue_position(self, order_id):
        """Open qty ahead of a resting order at its price level. Raises KeyError if not resting.
        O(orders ahead)."""
        cdef uint64_t oid = _u64_of(order_id, _u64_order_id)
        mc_check_busy(self._b)
        cdef mc_i128 r = _queue_ahead(self._b, oid)
        if r < 0:
            raise KeyError(order_id)
        return _py_i128(r)

    def level(self, side, price):
        """The orders at one price level in time priority: a list of (order_id, open_qty)."""
        # the side first, in the reference model's words and order (a bad side and a bad price
        # together are refused for the side, as ReferenceBook.level does)
        cdef int s = _cint_of(side, _cint_side)
        if s != MC_BUY and s != MC_SELL:
            raise ValueError(f"side must be 0 (BUY) or 1 (SELL), got {s}")
        cdef int64_t p = _i64_of(price, _i64_price)
        out = []
        cdef int32_t lv, idx
        mc_busy_enter(self._b, MC_BUSY_QUERY)     # held while the tuples are made
        try:
            lv = _level_find(self._b, s, p)
            idx = self._b.levels[lv].head if lv >= 0 else -1
            while idx >= 0:
                out.append((self._b.orders[idx].oid, self._b.orders[idx].qty))
                idx = self._b.orders[idx].next
        finally:
            mc_busy_leave(self._b)
        return out

    def level_count(self, side):
        """Number of price levels on a side. O(1)."""
        cdef int s = _cint_of(side, _cint_side)
        if s != MC_BUY and s != MC_SELL:
            raise ValueError(f"side must be 0 (BUY) or 1 (SELL), got {s}")
        mc_check_busy(self._b)
        return mc_level_count(self._b, s)

    def state_hash(self):
        """A 64-bit hash of the book's full state (levels, queues, ids, qtys, owners, flags)."""
        mc_check_busy(self._b)
        return mc_state_hash(self._b)

    def clear(self):
        """Remove every order and pending event (no events are written)."""
        mc_guard_entry(self._b)
        mc_book_clear(self._b)

    def copy(self):
        """An independent deep copy: same state, capacity and STP mode, the same pending
        (not yet read) events, the same future behaviour; a new :attr:`handle`. Also what
        ``copy.copy`` and ``copy.deepcopy`` do. O(book + pending events).

        >>> book = OrderBook(); book.submit(1, 0, 100, 5); twin = book.copy()
        0
        >>> twin.state_hash() == book.state_hash(), len(twin.events()) == len(book.events()) == 1
        (True, True)
        """
        mc_check_busy(self._b)
        cls = type(self)
        cdef OrderBook c = cls.__new__(cls, self._b.stp, record_events=self.record_events,
                                       capacity=0)
        mc_check_busy(self._b)      # again: making c may have run other threads' code
        mc_book_copy_into(c, self)
        if cls is not OrderBook:
            # a Python subclass's own attributes, as copy.copy would take them
            _set_subclass_state(c, _subclass_state(self))
        return c

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        # the book itself holds no Python objects: copy(), then a subclass's attributes deeply
        cdef OrderBook c = self.copy()
        memo[id(self)] = c
        if type(self) is not OrderBook:
            import copy
            _set_subclass_state(c, copy.deepcopy(_subclass_state(self), memo))
        return c

    def __reduce__(self):
        """Pickle support (protocol 2+): the book travels as its :meth:`snapshot` plus what a
        snapshot leaves out (``record_events``, the order capacity, the pending events; a
        subclass and its attributes), so the unpickled book is :meth:`copy`'s twin in another
        process. See ``_book_from_pickle``."""
        cdef tuple args
        # the state and the pending events are read as one (a count of events read before the
        # orders and records after them would mix two moments)
        mc_busy_enter(self._b, MC_BUSY_QUERY)
        try:
            args = mc_book_pickle_args(self)
            # the very objects an Engine's pickle took for this book, if it is still in that
            # state: the pickler then stores them once for both
            if self._pickled is not None:
                held = self._pickled()
                self._pickled = None
                if held is not None and (<_HeldState>held).args[1:5] == args[1:5]:
                    args = (<_HeldState>held).args
        finally:
            mc_busy_leave(self._b)
        cls = type(self)
        if cls is OrderBook:
            return _book_from_pickle, args
        return _book_from_pickle, args[:5] + (cls,), _subclass_state(self)

    # ---- embedding: raw handle, allocation-free depth, snapshots ----

    @property
    def handle(self):
        """The book's checked handle (a positive int) for the C function table and Numba.

        Every table call validates it against the process-wide registry before touching the
        book: once this OrderBook is gone, calls with the handle return ``-MC_ERR_HANDLE``
        (state_hash: 0) and never touch freed memory. The handle is constant for the book's
        life (also across :meth:`clear` and :meth:`restore`) and never reissued. Do not use one
        book from two threads at once. O(1).

        >>> book = OrderBook(); book.handle > 0
        True
        """
        mc_check_busy(self._b)
        return self._b.handle

    @property
    def address(self):
        """Same as :attr:`handle` (the name older code passes to the C table and Numba)."""
        mc_check_busy(self._b)
        return self._b.handle

    def _handle(self):
        """Same as :attr:`handle`."""
        mc_check_busy(self._b)
        return self._b.handle

    @property
    def raw_address(self):
        """The ``mc_book*`` itself as an int: a borrowed pointer that owns nothing and is checked
        by nothing. It is valid exactly while this OrderBook is alive (constant across
        :meth:`clear` and :meth:`restore`); no table function accepts it (they take
        :attr:`handle`). For code compiled against the core's own structs (Cython
        ``cimport matchcore._core``), ctypes views in tests, and debugging. O(1).

        >>> book = OrderBook(); book.raw_address != book.handle
        True
        """
        return <size_t>self._b

    def depth_into(self, int64_t[:, ::1] bids_out, int64_t[:, ::1] asks_out):
        """Write the top levels into caller-owned int64 arrays of shape (k, 2) [price, qty],
        best first, without allocating; returns (bid levels written, ask levels written).
        Rows past the returned counts are left as they were. A level total beyond int64 raises
        OverflowError, as in :meth:`depth`, and nothing is written. O(k).

        >>> import numpy as np
        >>> book = OrderBook(); book.submit(1, 0, 100, 5); bids = np.zeros((4, 2), np.int64)
        0
        >>> book.depth_into(bids, np.zeros((4, 2), np.int64))
        (1, 0)
        """
        mc_check_busy(self._b)
        if bids_out.shape[1] != 2 or asks_out.shape[1] != 2:
            raise ValueError("depth_into() needs int64 arrays of shape (k, 2)")
        cdef int64_t nb = 0, na = 0
        cdef const int64_t* b0
        cdef const int64_t* a0
        if bids_out.shape[0] > 0 and asks_out.shape[0] > 0:
            # one array (or two views of one) for both sides: the asks overwrote the bids
            b0 = &bids_out[0, 0]
            a0 = &asks_out[0, 0]
            if b0 < a0 + 2 * asks_out.shape[0] and a0 < b0 + 2 * bids_out.shape[0]:
                raise ValueError("depth_into() needs two separate arrays: bids_out and "
                                 "asks_out share memory, so the asks would overwrite the bids")
        # as depth(): a level total beyond int64 raises OverflowError, before anything is
        # written (it was written as 2**63 - 1, a wrong total that looked like a real one)
        _check_side_exact(self._b, MC_BUY, bids_out.shape[0])
        _check_side_exact(self._b, MC_SELL, asks_out.shape[0])
        if bids_out.shape[0] > 0:
            nb = mc_depth(self._b, MC_BUY, bids_out.shape[0], &bids_out[0, 0])
        if asks_out.shape[0] > 0:
            na = mc_depth(self._b, MC_SELL, asks_out.shape[0], &asks_out[0, 0])
        return nb, na

    def snapshot(self):
        """The book's full state as bytes (versioned format with a checksum).

        Holds every resting order in queue order with its id, open qty, owner, post-only flag
        and arrival sequence number, plus the STP mode, symbol, clock and next sequence number,
        so a restored book has the same :meth:`state_hash` and gives the same future events.
        Pending events are not included. O(orders + levels).

        >>> book = OrderBook(); book.submit(1, 0, 100, 5)
        0
        >>> OrderBook.from_snapshot(book.snapshot()).state_hash() == book.state_hash()
        True
        """
        cdef int64_t size
        mc_busy_enter(self._b, MC_BUSY_QUERY)     # held while the bytes are made
        try:
            size = mc_snapshot_size(self._b)
            out = PyBytes_FromStringAndSize(NULL, size)
            mc_snapshot_write(self._b, <uint8_t*>PyBytes_AS_STRING(out), size)
        finally:
            mc_busy_leave(self._b)
        return out

    def restore(self, data):
        """Replace this book's whole state with a :meth:`snapshot`'s, in place.

        The handle (:attr:`address`) stays the same; pending events are dropped. A damaged,
        truncated or foreign snapshot raises :class:`SnapshotError` and leaves the book
        unchanged. O(orders + levels).
        """
        cdef const uint8_t[::1] view = _snapshot_view(data)
        cdef int rc
        mc_busy_enter(self._b, MC_BUSY_RESTORE)
        try:
            with nogil:
                rc = mc_snapshot_restore(self._b, &view[0] if view.shape[0] > 0 else NULL,
                                         view.shape[0])
        finally:
            mc_busy_leave(self._b)
        if rc < 0:
            _raise_snapshot(rc)

    @classmethod
    def from_snapshot(cls, data, *, record_events=True):
        """A new book holding a :meth:`snapshot`'s state (see :meth:`restore`)."""
        cdef OrderBook book = cls(record_events=record_events, capacity=0)
        book.restore(data)
        return book

    # Empty calls into this extension: the floor a per-call benchmark compares against.
    def _noop(self):
        pass

    def _noop4(self, uint64_t order_id, int side, int64_t price, int64_t qty):
        return 0

    # submit()'s exact signature and nothing else: the floor for "one Python call per order".
    def _noop_submit(self, order_id, side, price, qty, tif=MC_GTC, *, owner=0,
                     post_only=False, ts_ns=0):
        return 0

    def _noop_cancel(self, order_id, *, ts_ns=0):
        return 0

    def _noop_modify(self, order_id, qty, price=None, *, ts_ns=0):
        return True

    # ---- invariants ----

    def check_invariants(self, *, allow_crossed=False):
        """Verify every structural invariant; raise AssertionError naming the first violation.

        Not crossed (unless ``allow_crossed``: a book rebuilt from exchange data with
        :meth:`place` may be locked or crossed); each ladder strictly sorted with no empty
        (phantom) level on top, its gaps holding their next level's key and pointing at the
        always-empty level; each level's qty and count equal the sum over its queue; queues are
        FIFO (arrival sequence increasing) with consistent links; the id index holds exactly the
        resting orders; all quantities positive; free lists and counters agree.
        O(orders + levels + index size).
        """
        cdef bint crossed_ok = mc_bool_arg(allow_crossed, "allow_crossed")
        mc_check_busy(self._b)
        cdef mc_book* b = self._b
        cdef int s
        cdef int32_t i, idx, prev, lv
        cdef int64_t cnt, empties, gaps, seen = 0
        cdef int64_t prev_key
        cdef int32_t j
        cdef mc_i128 total
        cdef uint64_t last_seq = 0, dist, pslot
        cdef mc_level* l
        cdef mc_order* o
        cdef int64_t bp, bq, ap, aq
        if not crossed_ok and mc_best(b, MC_BUY, &bp, &bq) and mc_best(b, MC_SELL, &ap, &aq):
            if bp >= ap:
                raise AssertionError(f"book is crossed: best bid {bp} >= best ask {ap}")
        # levels[MC_GAP], the level every gap points at: readers skip a gap only because this
        # level is empty (a count or qty here showed each gap as a level of price 0)
        l = &b.levels[MC_GAP]
        if l.count != 0 or l.qty != 0 or l.head != -1 or l.tail != -1:
            raise AssertionError(f"the gaps' level (levels[-1]) is not empty: count {l.count}, "
                                 f"qty {_py_i128(l.qty)}, head {l.head}, tail {l.tail}")
        for s in range(2):
            empties = 0
            gaps = 0
            prev_key = INT64_MIN
            for i in range(b.side[s].n):
                lv = b.side[s].lv[i]
                if lv == MC_GAP:
                    # a gap holds the key of the next entry that is not a gap
                    j = i + 1
                    while j < b.side[s].n and b.side[s].lv[j] == MC_GAP:
                        j += 1
                    if j == b.side[s].n:
                        raise AssertionError(f"side {s} ladder ends in a gap")
                    if b.side[s].keys[i] != b.side[s].keys[j]:
                        raise AssertionError(f"side {s} gap at position {i} holds key "
                                             f"{b.side[s].keys[i]}, its next level {b.side[s].keys[j]}")
                    gaps += 1
                    continue
                if lv < 0 or lv >= b.levels_cap:
                    raise AssertionError(f"side {s} ladder entry {i} points at level {lv}, outside "
                                         f"the pool of {b.levels_cap}")
                l = &b.levels[lv]
                if i > 0 and prev_key >= b.side[s].keys[i]:
                    raise AssertionError(f"side {s} ladder not strictly sorted at position {i}")
                prev_key = b.side[s].keys[i]
                if b.side[s].keys[i] != _key(s, l.price):
                    raise AssertionError(f"side {s} ladder key does not match level price {l.price}")
                if _level_find(b, s, l.price) != lv:
                    raise AssertionError(f"side {s} price map does not lead to level {l.price}")
                if l.count < 0:
                    raise AssertionError(f"side {s} ladder holds freed level {lv}")
                if l.count == 0:
                    if i == b.side[s].n - 1:
                        raise AssertionError(f"phantom level: side {s} best price {l.price} "
                                             f"has no orders")
                    if l.head >= 0 or l.tail >= 0 or l.qty != 0:
                        raise AssertionError(f"side {s} empty level {l.price} still holds orders")
                    empties += 1
                    continue
                if l.head < 0:
                    raise AssertionError(f"side {s} level {l.price} counts {l.count} orders "
                                         f"but its queue is empty")
                total = 0
                cnt = 0
                prev = -1
                idx = l.head
                while idx >= 0:
                    o = &b.orders[idx]
                    if not o.live:
                        raise AssertionError(f"dead order slot {idx} linked at side {s} price {l.price}")
                    if o.prev != prev:
                        raise AssertionError(f"broken back link at order {o.oid}")
                    if o.side != s or o.price != l.price or o.level != lv:
                        raise AssertionError(f"order {o.oid} is queued at side {s} price {l.price} "
                                             f"but says side {o.side} price {o.price}")
                    if o.qty <= 0:
                        raise AssertionError(f"order {o.oid} has non-positive open qty {o.qty}")
                    if cnt > 0 and o.seq <= last_seq:
                        raise AssertionError(f"FIFO violated at side {s} price {l.price}: "
                                             f"order {o.oid} queued behind a later arrival")
                    if _map_find(&b.index, o.oid) != idx:
                        raise AssertionError(f"id index does not map order {o.oid} to its slot")
                    last_seq = o.seq
                    total += o.qty
                    cnt += 1
                    prev = idx
                    idx = o.next
                if prev != l.tail:
                    raise AssertionError(f"level side {s} price {l.price}: tail is not the last order")
                if total != l.qty:
                    raise AssertionError(f"level side {s} price {l.price}: qty {_py_i128(l.qty)} != sum of "
                                         f"orders {_py_i128(total)}")
                if cnt != l.count:
                    raise AssertionError(f"level side {s} price {l.price}: count {l.count} != "
                                         f"orders in queue {cnt}")
                seen += cnt
            if empties != b.side[s].empties:
                raise AssertionError(f"side {s}: {empties} empty levels, counter says "
                                     f"{b.side[s].empties}")
            if gaps != b.side[s].gaps:
                raise AssertionError(f"side {s}: {gaps} gaps, counter says {b.side[s].gaps}")
            if b.side[s].map.n != b.side[s].n - gaps:
                raise AssertionError(f"side {s}: price map holds {b.side[s].map.n} levels, "
                                     f"ladder {b.side[s].n - gaps}")
        if seen != b.n_orders:
            raise AssertionError(f"{b.n_orders} orders counted but {seen} queued")
        if b.index.n != b.n_orders:
            raise AssertionError(f"id index holds {b.index.n} ids for {b.n_orders} resting orders")
        cnt = 0
        for i in range(<int32_t>(b.index.mask + 1)):
            if b.index.tab[i].val >= 0:
                cnt += 1
                o = &b.orders[b.index.tab[i].val]
                if not o.live or o.oid != b.index.tab[i].key:
                    raise AssertionError(f"id index entry {b.index.tab[i].key} points at a "
                                         f"slot that does not hold it")
                if b.index.tab[i].home != _home(&b.index, b.index.tab[i].key):
                    raise AssertionError(f"id index entry {b.index.tab[i].key} records a wrong "
                                         f"home slot")
                # Robin Hood order (mc_map_make_room), which deletions rely on to stop early:
                # an entry away from its home follows an entry at most one slot nearer its own
                dist = (<uint64_t>i - b.index.tab[i].home) & b.index.mask
                pslot = (<uint64_t>i - 1) & b.index.mask
                if dist > 0 and (b.index.tab[pslot].val < 0 or dist > (
                        ((pslot - b.index.tab[pslot].home) & b.index.mask) + 1)):
                    raise AssertionError(f"id index entry {b.index.tab[i].key} is out of "
                                         f"Robin Hood order")
        if cnt != b.index.n:
            raise AssertionError(f"id index counter {b.index.n} != occupied entries {cnt}")
        cnt = 0
        idx = b.free_order
        while idx >= 0:
            if b.orders[idx].live:
                raise AssertionError(f"live order slot {idx} on the free list")
            cnt += 1
            idx = b.orders[idx].next
        if cnt + b.n_orders != b.orders_cap:
            raise AssertionError(f"order pool leak: {cnt} free + {b.n_orders} live != {b.orders_cap}")
        # the capacity invariants _ensure relies on (see _grow_orders)
        if 2 * <int64_t>b.orders_cap > <int64_t>(b.index.mask + 1):
            raise AssertionError(f"id index ({b.index.mask + 1} entries) too small for "
                                 f"{b.orders_cap} order slots")
        for s in range(2):
            if (b.side[s].cap < 2 * <int64_t>b.levels_cap
                    or b.side[s].head < 0 or b.side[s].head + b.side[s].n > b.side[s].cap
                    or 2 * <int64_t>b.levels_cap > <int64_t>(b.side[s].map.mask + 1)):
                raise AssertionError(f"side {s}: ladder or price map too small for "
                                     f"{b.levels_cap} level slots")


# ---- pickling ----

def _subclass_state(obj):
    """A Python subclass's attributes as pickle's default takes them: its ``__dict__``, or
    ``(__dict__, {slot: value})`` when it has ``__slots__`` set; None when there are none."""
    import copyreg
    d = getattr(obj, "__dict__", None) or None
    slots = {}
    for name in copyreg._slotnames(type(obj)):
        if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
            slots[name] = getattr(obj, name)
    return (d, slots) if slots else d


def _set_subclass_state(obj, state):
    # what pickle (and copy) do with _subclass_state's value when there is no __setstate__
    if isinstance(state, tuple):
        state, slots = state
        for name, value in slots.items():
            setattr(obj, name, value)
    if state:
        obj.__dict__.update(state)

# The pickle of an OrderBook (and, in matchcore._engine, of an Engine) is versioned on its own:
# bump _PICKLE_FORMAT whenever the snapshot format (MC_SNAP_VERSION), the event record or the
# arguments of the reconstructors change, so that a pickle written by another version is refused
# with a message saying so instead of being misread. Format 2: an Engine's symbols carry their
# book's state as read under the engine's hold (format 1's, without it, are read as well).
_PICKLE_FORMAT = 2


def _check_pickle_format(fmt, str what):
    if fmt not in (1, _PICKLE_FORMAT):
        raise SnapshotError(MC_SNAP_E_VERSION,
                            f"this {what} was pickled by a matchcore with pickle format {fmt!r}; "
                            f"this matchcore reads formats 1 and {_PICKLE_FORMAT} only: unpickle "
                            f"it with the matchcore version that wrote it")


def _book_from_pickle(fmt, snapshot, bint record_events, capacity, events, cls=None):
    """Rebuild a pickled :class:`OrderBook` (``OrderBook.__reduce__``): the snapshot's state,
    grown to the original's order capacity, with its pending events; of class ``cls`` (a
    subclass, made without calling its ``__init__``, as pickle does) when given."""
    _check_pickle_format(fmt, "OrderBook")
    if len(snapshot) >= 12 and snapshot[:8] == b"MCSNAPSH":
        version = int.from_bytes(snapshot[8:12], "little")
        if version != MC_SNAP_VERSION:
            raise SnapshotError(MC_SNAP_E_VERSION,
                                f"this OrderBook was pickled with snapshot format {version}; "
                                f"this matchcore reads format {MC_SNAP_VERSION} only")
    if cls is None:
        cls = OrderBook
    elif not (isinstance(cls, type) and issubclass(cls, OrderBook)):
        raise TypeError(f"pickled OrderBook: {cls!r} is not an OrderBook class")
    cdef OrderBook book = cls.__new__(cls, record_events=record_events, capacity=0)
    book.restore(snapshot)
    book._unpickled_from = id(snapshot)
    cdef mc_book* b = book._b
    cdef int64_t cap = mc_i64_arg(capacity, "capacity")
    cdef const uint8_t[::1] ev = _snapshot_view(events)
    cdef int64_t n_ev = ev.shape[0] // <int64_t>sizeof(mc_event)
    if ev.shape[0] % <int64_t>sizeof(mc_event) != 0:
        raise SnapshotError(MC_SNAP_E_CORRUPT, "pickled OrderBook: pending events are truncated")
    # the pools double from 64, so growing by doubling reaches the original's capacity exactly
    while b.orders_cap < cap and b.orders_cap < 0x7FFFFFF0:
        if _grow_orders(b) < 0:
            raise MemoryError()
    if n_ev > 0:
        if mc_reserve_events(b, n_ev) < 0:
            raise MemoryError()
        memcpy(b.ev, &ev[0], n_ev * sizeof(mc_event))
        b.n_ev = n_ev
    return book
