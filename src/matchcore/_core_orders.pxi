# Part of matchcore._core (included by _core.pyx, one C unit): the order path. Orders in their
# level queues, the one matching loop for both sides, order entry (submit, market, cancel, modify),
# the batch loops, and the slot-based operations of replays.

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
        _emit(b, MC_EV_REJECTED, oid, 0, mc_side_byte(side), price, qty, owner, 0, reason)
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
        _emit(b, MC_EV_REJECTED, oid, 0, mc_side_byte(side), 0, qty, owner, 0, reason)
        return -reason
    _emit(b, MC_EV_ACCEPTED, oid, 0, side, 0, qty, owner, 0, MC_R_NONE)
    return _enter(b, oid, side, 0, qty, MC_IOC, owner, 0, -1, NO_POS)


cdef int64_t mc_cancel(mc_book* b, uint64_t oid) noexcept nogil:
    """Cancel a resting order. Returns the open qty removed, or -MC_R_ORDER_NOT_FOUND."""
    return _cancel(b, oid, 0)


cdef int64_t mc_cancel_by(mc_book* b, uint64_t oid, uint64_t owner) noexcept nogil:
    """mc_cancel for a command that names its sender: `owner` goes into the REJECTED event of
    an id that is not resting (there is no order to take an owner from)."""
    return _cancel(b, oid, owner)


cdef inline int64_t _cancel(mc_book* b, uint64_t oid, uint64_t owner) noexcept nogil:
    # A cancel takes no order slot, level or index entry and writes one event: that event's
    # room is all it needs (the full _ensure is for orders that may trade).
    if b.emit and b.n_ev >= b.ev_cap and mc_reserve_events(b, 1) < 0:
        return -MC_ERR_NOMEM
    cdef uint64_t pos = _map_probe(&b.index, oid)
    cdef int32_t idx = b.index.tab[pos].val
    if idx < 0:
        _emit(b, MC_EV_REJECTED, oid, 0, 0, 0, 0, owner, 0, MC_R_ORDER_NOT_FOUND)
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
    return _modify(b, oid, qty, price, 0)


cdef int64_t mc_modify_by(mc_book* b, uint64_t oid, int64_t qty, int64_t price,
                          uint64_t owner) noexcept nogil:
    """mc_modify for a command that names its sender: `owner` goes into the REJECTED event of
    an id that is not resting (a resting order's reject carries the order's owner and side)."""
    return _modify(b, oid, qty, price, owner)


cdef inline int64_t _modify(mc_book* b, uint64_t oid, int64_t qty, int64_t price,
                            uint64_t owner) noexcept nogil:
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
        _modify_reject(b, oid, qty, price, owner, reason)
        return -reason
    cdef mc_order* o = &b.orders[idx]
    cdef int side = o.side
    owner = o.owner
    cdef int post_only = o.post_only
    cdef int64_t new_price = price if price != 0 else o.price
    if new_price == o.price and qty <= o.qty:
        b.levels[o.level].qty -= o.qty - qty
        o.qty = qty
        _emit(b, MC_EV_MODIFIED, oid, 0, side, new_price, qty, owner, 0, MC_R_NONE)
        return 0
    # a re-entry at a crossing price would take liquidity: a new price, or a larger qty at
    # its own price in a book that place() left crossed
    if post_only and _limit_crosses(b, side, new_price):
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


cdef void _modify_reject(mc_book* b, uint64_t oid, int64_t qty, int64_t price, uint64_t owner,
                         int reason) noexcept nogil:
    # A refused modify of a resting order is still about that order: its event carries the
    # order's owner and side, so events(owner=) shows it to the order's participant. Out of
    # line: only refusals pay for the second lookup.
    cdef int32_t idx = _map_find(&b.index, oid)
    cdef int side = 0
    if idx >= 0:
        side = b.orders[idx].side
        owner = b.orders[idx].owner
    _emit(b, MC_EV_REJECTED, oid, 0, side, price, qty, owner, 0, reason)


cdef int64_t mc_apply(mc_book* b, const mc_command* c) noexcept nogil:
    """One command record through the same functions as the per-call API."""
    return _apply(b, c)


cdef inline int64_t _apply(mc_book* b, const mc_command* c) noexcept nogil:
    # mc_apply's body, inlined into mc_process's loop (one call less per command)
    cdef int64_t was_ns = b.now_ns
    cdef int64_t r
    b.now_ns = c.ts_ns
    if c.kind == MC_CMD_SUBMIT:
        r = mc_submit(b, c.order_id, c.side, c.price, c.qty, c.tif, c.owner, c.post_only)
    elif c.kind == MC_CMD_MARKET:
        r = mc_market(b, c.order_id, c.side, c.qty, c.owner)
    elif c.kind == MC_CMD_CANCEL:
        r = mc_cancel_by(b, c.order_id, c.owner)
    elif c.kind == MC_CMD_MODIFY:
        r = mc_modify_by(b, c.order_id, c.qty, c.price, c.owner)
    elif _ensure(b, 0, 0) < 0:
        r = -MC_ERR_NOMEM
    else:
        _emit(b, MC_EV_REJECTED, c.order_id, 0, c.side, c.price, c.qty, c.owner, 0,
              MC_R_INVALID_COMMAND)
        r = -MC_R_INVALID_COMMAND
    if r < 0:
        # A refused command changes nothing, the clock included (its REJECTED event carries
        # the command's time all the same), as in an engine's books
        b.now_ns = was_ns
    return r


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
        _emit(b, MC_EV_REJECTED, oid, 0, mc_side_byte(side), price, qty, owner, 0, reason)
        return -reason
    _emit(b, MC_EV_ACCEPTED, oid, 0, side, price, qty, owner, 0, MC_R_NONE)
    _order_link(b, _order_new_at(b, oid, side, owner, 0, pos, h), price, qty)
    return 0


cdef int64_t mc_reduce(mc_book* b, uint64_t oid, int64_t qty, int is_execution) noexcept nogil:
    """Take up to `qty` off a resting order (an execution or a partial cancel reported by the
    exchange); the order leaves at zero. Returns the qty taken (clamped to the open qty)."""
    if _ensure(b, 0, 0) < 0:
        return -MC_ERR_NOMEM
    cdef int32_t idx = _map_find(&b.index, oid)
    if qty <= 0:
        # a refused reduce of a resting order is about that order, as a refused modify is:
        # its event carries the order's owner and side
        _emit(b, MC_EV_REJECTED, oid, 0, b.orders[idx].side if idx >= 0 else 0, 0, qty,
              b.orders[idx].owner if idx >= 0 else 0, 0, MC_R_INVALID_QTY)
        return -MC_R_INVALID_QTY
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
        _emit(b, MC_EV_REJECTED, b.orders[idx].oid, 0, b.orders[idx].side, 0, qty,
              b.orders[idx].owner, 0, MC_R_INVALID_QTY)
        return -MC_R_INVALID_QTY
    return _reduce_at(b, idx, qty, is_execution)


cdef int64_t mc_cancel_slot(mc_book* b, int32_t idx) noexcept nogil:
    """mc_cancel for the resting order in slot idx: same event; returns the open qty removed."""
    if b.emit and mc_reserve_events(b, 1) < 0:
        return -MC_ERR_NOMEM
    return _cancel_at(b, idx)
