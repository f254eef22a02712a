# Part of matchcore._core (included by _core.pyx, one C unit): reading a book. Best prices, depth,
# order lookup, the state hash, the clock, event draining and snapshots.

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


cdef inline int64_t _depth(mc_book* b, int side, int64_t n, int64_t* out,
                           bint with_orders) noexcept nogil:
    # Visible levels best first, as rows of (price, qty[, orders]); empty levels are skipped, and
    # packed away when there were many (_ladder_walked): the book's contents stay as they are.
    cdef const mc_ladder* L = &b.side[side]
    cdef int64_t k = 0, passed = 0
    cdef int32_t i = L.n - 1
    cdef int cols = 3 if with_orders else 2
    cdef const mc_level* l
    while k < n and i >= 0:
        l = &b.levels[L.lv[i]]
        i -= 1
        if l.count == 0:
            passed += l != &b.levels[MC_GAP]
            continue
        out[cols * k] = l.price
        out[cols * k + 1] = _sat64(l.qty)
        if with_orders:
            out[cols * k + 2] = l.count
        k += 1
    # with n levels found, the walk stopped just below the last of them
    _ladder_walked(b, side, passed, i + 1 if k == n else 0)
    return k


cdef int64_t mc_depth(mc_book* b, int side, int64_t n, int64_t* out) noexcept nogil:
    """Write up to n levels, best first, as (price, qty) pairs; returns the count written."""
    return _depth(b, side, n, out, False)


cdef int64_t mc_depth_orders(mc_book* b, int side, int64_t n, int64_t* out) noexcept nogil:
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


cdef bint _size_field_damaged(const uint8_t* data, int64_t n, uint64_t size) noexcept nogil:
    # The header's total size disagrees with the bytes given (n >= header + 8): a cut, bytes
    # after the snapshot, or damage to the size field itself. A cut leaves the counts' size
    # above n; bytes after it leave a checksum that holds, over the snapshot's own bytes
    # (appended) or over all of them (resealed). Damage to the size field leaves neither.
    cdef uint64_t n_orders = _get64(data + 24)
    cdef uint64_t levels = <uint64_t>_get32(data + 32) + _get32(data + 36)
    if <uint64_t>n < size:
        return (n_orders <= <uint64_t>n // SNAP_ORDER and levels <= <uint64_t>n // SNAP_LEVEL
                and SNAP_HEADER + SNAP_LEVEL * levels + SNAP_ORDER * n_orders + 8 == <uint64_t>n
                and _get64(data + n - 8) != _fnv1a(data, n - 8))
    if _get64(data + n - 8) == _fnv1a(data, n - 8):
        return False
    return size < SNAP_HEADER + 8 or _get64(data + size - 8) != _fnv1a(data, <int64_t>size - 8)


cdef int _snapshot_build(const uint8_t* data, int64_t n, int64_t min_orders,
                         mc_book** result) noexcept nogil:
    """Validate a snapshot and build a new book from it, with room for at least `min_orders`
    orders; -MC_SNAP_E_* on any defect."""
    if n < 8:
        # a few bytes that do not begin the magic are something else, not a snapshot cut short
        if n > 0 and memcmp(data, b"MCSNAPSH", n) != 0:
            return -MC_SNAP_E_MAGIC
        return -MC_SNAP_E_TRUNCATED
    if memcmp(data, b"MCSNAPSH", 8) != 0:
        return -MC_SNAP_E_MAGIC
    if n < SNAP_HEADER + 8:
        return -MC_SNAP_E_TRUNCATED
    if _get32(data + 8) != MC_SNAP_VERSION:
        return -MC_SNAP_E_VERSION
    cdef uint64_t size = _get64(data + 16)
    if _get32(data + 12) != SNAP_HEADER:
        # another layout's header, or this one's damaged: the checksum (over every byte before
        # the last 8, where a whole snapshot keeps it) tells damage from content
        if _get64(data + n - 8) != _fnv1a(data, n - 8):
            return -MC_SNAP_E_CHECKSUM
        return -MC_SNAP_E_CORRUPT
    if <uint64_t>n != size and _size_field_damaged(data, n, size):
        return -MC_SNAP_E_CHECKSUM
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
    cdef mc_book* b = NULL
    if <int64_t>n_orders < min_orders:
        b = mc_book_new(stp, min_orders)
    if b == NULL:
        # (without the room asked for, as much as the snapshot needs: it restores wherever it
        # did before)
        b = mc_book_new(stp, <int64_t>n_orders)
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
    pending events are dropped; the order capacity stays, grown if the snapshot holds more
    orders: a book sized for a session keeps its pools). Returns 0, or -MC_SNAP_E_* with the
    book unchanged."""
    cdef mc_book* nb = NULL
    cdef int rc = _snapshot_build(data, n, b.orders_cap, &nb)
    if rc < 0:
        return rc
    cdef uint8_t emit = b.emit, guard = b.guard
    cdef uint64_t handle = b.handle
    cdef uint8_t* host_busy = b.host_busy
    cdef uint32_t journaled = b.journaled
    cdef mc_book tmp = b[0]
    b[0] = nb[0]
    nb[0] = tmp
    b.emit = emit
    b.handle = handle
    b.journaled = journaled     # a Recorder still journals the book (the C table stays shut)
    b.guard = guard
    b.host_busy = host_busy
    mc_book_free(nb)
    return 0


cdef mc_book* mc_snapshot_load(const uint8_t* data, int64_t n, int* err) noexcept nogil:
    """A new book from a snapshot, or NULL with err[0] = -MC_SNAP_E_*."""
    cdef mc_book* nb = NULL
    cdef int rc = _snapshot_build(data, n, 0, &nb)
    if err != NULL:
        err[0] = rc
    return nb
