# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled LOBSTER replay: message rows through the book in replay mode, and the two checks
against the orderbook file. Driven by matchcore.lobster (which reads the CSV files)."""

from libc.stdint cimport int64_t, uint64_t, int32_t, int8_t, uint8_t
from libc.stdlib cimport malloc, free
cimport numpy as cnp
import numpy as np

from matchcore._core cimport (OrderBook, mc_book, mc_rest, mc_reduce, mc_cancel, mc_get,
                              mc_depth, MC_BUY, MC_SELL, mc_busy_enter, mc_busy_leave,
                              MC_BUSY_REPLAY)

cnp.import_array()

# Synthetic seed orders: one per (side, price) level, id = SEED_BASE + side * 2**48 + price, far
# above LOBSTER order ids (< 2**40 in practice) and found again from a message's side and price.
cdef uint64_t _SEED_BASE = (<uint64_t>1) << 63
SEED_BASE = _SEED_BASE

# Counter slots of replay().
cdef enum:
    C_UNKNOWN_REFS = 0     # cancel/delete/execute of an id never added
    C_SEED_HITS = 1        # ... resolved against the synthetic seed order of that level
    C_UNRESOLVED = 2       # ... with no seed liquidity left at that price (skipped)
    C_SEED_SHORT = 3       # ... that took more than the seed level still held (clamped)
    C_CLAMPED = 4          # cancel/execution larger than a known order's open qty (clamped)
    C_DELETE_MISMATCH = 5  # delete whose size differs from the known order's open qty
    C_ATTR_MISMATCH = 6    # message price/side differs from the known order's
    C_REJECTED = 7         # submits the book refused (duplicate id, size/price <= 0)
    C_UNKNOWN_TYPE = 8     # event types outside 1..7
    C_HALT_EVENTS = 9
    N_COUNTERS = 10

COUNTER_NAMES = ("unknown_refs", "seed_hits", "unresolved", "seed_short", "clamped",
                 "delete_mismatch", "attr_mismatch", "rejected", "unknown_types", "halt_events")

# LOBSTER fills missing levels with these prices and size 0.
cdef int64_t _ASK_DUMMY = 9999999999
cdef int64_t _BID_DUMMY = -9999999999


cdef inline uint64_t _seed_id(int side, int64_t price) noexcept nogil:
    return <uint64_t>_SEED_BASE + (<uint64_t>side << 48) + <uint64_t>price


def seed_id(int side, int64_t price):
    """The id of the synthetic seed order at (side, price): side 0 buy, 1 sell; price in
    1..2**48-1, the prices of the levels a replay seeds. ValueError outside them, where the id
    is another level's (``seed_id(0, 2**48) == seed_id(1, 0)``) or a real order's. O(1)."""
    if side != MC_BUY and side != MC_SELL:
        raise ValueError(f"side must be 0 (buy) or 1 (sell), got {side}")
    if not 0 < price < ((<int64_t>1) << 48):
        raise ValueError(f"price must be in 1..2**48-1 (a seed level's), got {price}")
    return _seed_id(side, price)


cdef inline bint _is_level(int64_t price, int64_t size) noexcept nogil:
    return size > 0 and price != _ASK_DUMMY and price != _BID_DUMMY


cdef int64_t _row_side(const int64_t* row, int side, int64_t L, int64_t* out) noexcept nogil:
    """Visible levels of one side of an orderbook row into out as (price, size) pairs, best
    first; stops at the first dummy level. Columns per level: ask p, ask s, bid p, bid s."""
    cdef int64_t i, n = 0, p, s
    cdef int64_t col = 0 if side == MC_SELL else 2
    for i in range(L):
        p = row[4 * i + col]
        s = row[4 * i + col + 1]
        if not _is_level(p, s):
            break
        out[2 * n] = p
        out[2 * n + 1] = s
        n += 1
    return n


cdef int64_t _compare(const int64_t* a, int64_t na, const int64_t* b, int64_t nb) noexcept nogil:
    """Number of leading (price, size) pairs that agree."""
    cdef int64_t i = 0
    cdef int64_t n = na if na < nb else nb
    while i < n and a[2 * i] == b[2 * i] and a[2 * i + 1] == b[2 * i + 1]:
        i += 1
    return i


def replay(OrderBook book, const int8_t[::1] kind, const int64_t[::1] ts_ns,
           const int64_t[::1] oid, const int64_t[::1] size, const int64_t[::1] price,
           const int8_t[::1] side, ob, int64_t levels):
    """Apply message rows to ``book`` (already seeded) in replay mode; no events are written.

    Returns (counters int64[N_COUNTERS], halt_rows int64 array, verify) where verify is None or
    (agree_levels int32[n], first) with agree_levels[k] = leading levels of both sides agreeing
    with orderbook row k (``levels`` means full agreement) and first = (k, side, level, book
    price, book size, file price, file size) of the first disagreement or None. O(n * levels).
    """
    cdef Py_ssize_t n = kind.shape[0], k
    cdef mc_book* b = book._b
    cdef int64_t[N_COUNTERS] c
    cdef int i
    # the loop reads every column at row k without bounds checks: a shorter column was read
    # past its end (order ids, sizes from beyond the buffer) into the book
    if not (ts_ns.shape[0] == oid.shape[0] == size.shape[0] == price.shape[0]
            == side.shape[0] == n):
        raise ValueError(f"message columns of different lengths: type {n}, ts_ns "
                         f"{ts_ns.shape[0]}, order_id {oid.shape[0]}, size {size.shape[0]}, "
                         f"price {price.shape[0]}, direction {side.shape[0]}")
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    for i in range(N_COUNTERS):
        c[i] = 0
    cdef bint verify = ob is not None
    cdef const int64_t[:, ::1] obv
    cdef int64_t L = levels
    # int32: an int16 count wrapped past 32767 levels (an orderbook array may be that deep),
    # and a row that agreed whole read as a negative count, agreement 0; a row of 2**31
    # levels would take 64 GiB, so int32 holds every count
    cdef cnp.ndarray agree_arr = np.zeros(n if verify else 0, dtype=np.int32)
    cdef int32_t* agree = <int32_t*>cnp.PyArray_DATA(agree_arr)
    cdef cnp.ndarray halt_arr = np.empty(n, dtype=np.int64)
    cdef int64_t* halts = <int64_t*>cnp.PyArray_DATA(halt_arr)
    cdef int64_t n_halts = 0
    if verify:
        obv = ob
        if obv.shape[0] < n or obv.shape[1] < 4 * L:
            raise ValueError("orderbook array smaller than the message array / levels")
    # the book is busy while the rows are applied without the GIL (another thread's call
    # raises); left in the finally below
    mc_busy_enter(b, MC_BUSY_REPLAY)
    cdef int64_t* tmp = <int64_t*>malloc(8 * (L + 1) * sizeof(int64_t))
    if tmp == NULL:
        mc_busy_leave(b)
        raise MemoryError()
    cdef int64_t* mine = tmp
    cdef int64_t* theirs = tmp + 2 * (L + 1)
    cdef int64_t first_k = -1, first_side = 0, first_level = 0
    cdef int64_t fb_p = 0, fb_s = 0, ff_p = 0, ff_s = 0
    cdef int64_t nm, nt, same, worst, t, take
    cdef int s, oside, ty
    cdef int64_t p, q
    cdef uint64_t id_, sid
    cdef uint8_t old_emit = b.emit
    b.emit = 0
    try:
        with nogil:
            for k in range(n):
                ty = kind[k]
                s = MC_BUY if side[k] > 0 else MC_SELL
                p = price[k]
                q = size[k]
                id_ = <uint64_t>oid[k]
                b.now_ns = ts_ns[k]
                if ty == 1:
                    if mc_rest(b, id_, s, p, q, 0) < 0:
                        c[C_REJECTED] += 1
                elif ty == 2 or ty == 3 or ty == 4:
                    if mc_get(b, id_, &oside, &t, &take):
                        if oside != s or t != p:
                            c[C_ATTR_MISMATCH] += 1
                        if ty == 3:
                            if take != q:
                                c[C_DELETE_MISMATCH] += 1
                            mc_cancel(b, id_)
                        else:
                            if q > take:
                                c[C_CLAMPED] += 1
                            mc_reduce(b, id_, q, ty == 4)
                    else:
                        c[C_UNKNOWN_REFS] += 1
                        sid = _seed_id(s, p)
                        if p > 0 and mc_get(b, sid, &oside, &t, &take):
                            c[C_SEED_HITS] += 1
                            if q > take:
                                c[C_SEED_SHORT] += 1
                            mc_reduce(b, sid, q, ty == 4)
                        else:
                            c[C_UNRESOLVED] += 1
                elif ty == 5 or ty == 6:
                    pass  # hidden / cross trades: reported as trades, the visible book is unchanged
                elif ty == 7:
                    c[C_HALT_EVENTS] += 1
                    halts[n_halts] = k
                    n_halts += 1
                else:
                    c[C_UNKNOWN_TYPE] += 1
                if verify:
                    worst = L
                    for oside in range(2):
                        nm = mc_depth(b, oside, L, mine)
                        nt = _row_side(&obv[k, 0], oside, L, theirs)
                        same = _compare(mine, nm, theirs, nt)
                        if same == nm and nm == nt:
                            same = L
                        if same < worst:
                            worst = same
                        if same < L and first_k < 0:
                            first_k = k
                            first_side = oside
                            first_level = same + 1
                            fb_p = mine[2 * same] if same < nm else 0
                            fb_s = mine[2 * same + 1] if same < nm else 0
                            ff_p = theirs[2 * same] if same < nt else 0
                            ff_s = theirs[2 * same + 1] if same < nt else 0
                    agree[k] = <int32_t>worst
    finally:
        b.emit = old_emit
        mc_busy_leave(b)
        free(tmp)
    counters = np.array([c[i] for i in range(N_COUNTERS)], dtype=np.int64)
    first = None
    if first_k >= 0:
        first = (first_k, first_side, first_level, fb_p, fb_s, ff_p, ff_s)
    return counters, halt_arr[:n_halts].copy(), (agree_arr, first) if verify else None


cdef int64_t _apply_level(int64_t* lv, int64_t n, int side, int64_t p, int64_t delta,
                          int64_t cap, bint complete, bint* bad) noexcept nogil:
    """Add delta at price p to a best-first (price, size) list of n levels; inserts or removes
    levels; returns the new count. Sets bad when a level would go negative or a reduction names
    a price that is not there."""
    cdef int64_t i = 0, j
    # best first: bids descending, asks ascending
    while i < n and ((side == MC_BUY and lv[2 * i] > p) or (side == MC_SELL and lv[2 * i] < p)):
        i += 1
    if i < n and lv[2 * i] == p:
        lv[2 * i + 1] += delta
        if lv[2 * i + 1] < 0:
            bad[0] = True
        if lv[2 * i + 1] <= 0:
            for j in range(i, n - 1):
                lv[2 * j] = lv[2 * j + 2]
                lv[2 * j + 1] = lv[2 * j + 3]
            return n - 1
        return n
    if delta < 0:
        # A reduction at a price the row does not show: fine only beyond the visible levels of
        # a side that has more levels than the file shows.
        if i < n or complete:
            bad[0] = True
        return n
    if n >= cap:
        return n
    j = n
    while j > i:
        lv[2 * j] = lv[2 * j - 2]
        lv[2 * j + 1] = lv[2 * j - 1]
        j -= 1
    lv[2 * i] = p
    lv[2 * i + 1] = delta
    return n + 1


def transitions(const int64_t[:, ::1] ob, const int8_t[::1] kind, const int64_t[::1] size,
                const int64_t[::1] price, const int8_t[::1] side, int64_t levels):
    """Per-transition check: orderbook row k-1 with message k applied at level granularity gives
    row k, on every level both rows can know. Returns int8[n]: 1 agrees, 0 disagrees, -1 for
    row 0 (no previous row). O(n * levels).

    Known levels: on the message's side, a row with all ``levels`` levels filled knows prices only
    down to its last level, so levels the message pushes beyond it, and the level that moves up
    from beyond the file's depth when one is removed, are not compared. A side with fewer levels
    is complete and compared whole. The other side must be unchanged.
    """
    cdef Py_ssize_t n = kind.shape[0], k
    cdef int64_t L = levels
    if not (size.shape[0] == price.shape[0] == side.shape[0] == n):
        raise ValueError(f"message columns of different lengths: type {n}, size "
                         f"{size.shape[0]}, price {price.shape[0]}, direction {side.shape[0]}")
    if L < 1:
        raise ValueError(f"levels must be >= 1, got {L}")
    cdef cnp.ndarray out_arr = np.empty(n, dtype=np.int8)
    cdef int8_t* out = <int8_t*>cnp.PyArray_DATA(out_arr)
    if n == 0:
        return out_arr
    if ob.shape[0] < n or ob.shape[1] < 4 * L:
        raise ValueError("orderbook array smaller than the message array / levels")
    cdef int64_t* tmp = <int64_t*>malloc(6 * (L + 2) * sizeof(int64_t))
    if tmp == NULL:
        raise MemoryError()
    cdef int64_t* prev = tmp
    cdef int64_t* cur = tmp + 2 * (L + 2)
    cdef int64_t* other = tmp + 4 * (L + 2)
    cdef int64_t np_, nc, no, nk, ncmp, worst, i
    cdef int s, ty
    cdef int64_t delta
    cdef bint bad, full
    out[0] = -1
    try:
        with nogil:
            for k in range(1, n):
                ty = kind[k]
                s = MC_BUY if side[k] > 0 else MC_SELL
                bad = False
                # The side the message does not touch: identical in both rows.
                np_ = _row_side(&ob[k - 1, 0], s ^ 1, L, prev)
                no = _row_side(&ob[k, 0], s ^ 1, L, other)
                if np_ != no or _compare(prev, np_, other, no) != np_:
                    out[k] = 0
                    continue
                np_ = _row_side(&ob[k - 1, 0], s, L, prev)
                full = np_ == L
                worst = prev[2 * (np_ - 1)] if np_ > 0 else 0
                if ty == 1:
                    delta = size[k]
                elif ty == 2 or ty == 3 or ty == 4:
                    delta = -size[k]
                else:
                    delta = 0
                if delta != 0:
                    np_ = _apply_level(prev, np_, s, price[k], delta, L + 1, not full, &bad)
                nc = _row_side(&ob[k, 0], s, L, cur)
                if full:
                    # levels of the derived side still within the known price range
                    nk = 0
                    while nk < np_ and ((s == MC_BUY and prev[2 * nk] >= worst) or
                                        (s == MC_SELL and prev[2 * nk] <= worst)):
                        nk += 1
                    ncmp = nk if nk < L else L
                    out[k] = 0 if bad or nc < ncmp or _compare(prev, ncmp, cur, nc) != ncmp else 1
                else:
                    ncmp = np_ if np_ < L else L
                    out[k] = 0 if bad or nc != ncmp or _compare(prev, ncmp, cur, nc) != ncmp else 1
    finally:
        free(tmp)
    return out_arr
