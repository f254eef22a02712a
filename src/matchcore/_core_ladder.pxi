# Part of matchcore._core (included by _core.pyx, one C unit): the price ladder of each side, a
# sorted array of levels with gaps, and the level pool.

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


# A walk from the touch (depth and the checks before it) that passes at least this many emptied
# levels packs what it walked (_ladder_pack_top). Fewer cost a walk less than the Python call
# around it (about 2 ns each), and are left for orders coming back to their prices to take
# without a new level: a pack frees each level it drops (a hash-map erase; 20,000 took 0.4 to
# 1.4 ms here) and a price that comes back then makes a new one, so a market maker pulling a
# few dozen quotes, reading depth and requoting would pay both every time. Gaps are not
# counted: spreading keeps them to about one entry in three, so alone they never make a walk
# more than a few times as long as what it returns, and they are the room far inserts need.
cdef enum:
    MC_WALK_PACK_MIN = 256


cdef void _ladder_pack_top(mc_book* b, mc_ladder* L, int32_t a) noexcept nogil:
    # The levels with orders in [a, n) to [a, a + m), the emptied ones among the rest freed and the
    # gaps dropped: after a mass cancel just below the touch, every later walk from the touch read
    # the same thousands of hidden entries again (bench_ladder.py, 20,000 emptied: depth(2) 35 us
    # where 0.5 us is due), since the ladder compacts only when its emptied levels outnumber the
    # live ones. Each level is freed once, as a compaction would free it: the cost is charged to
    # the cancels that emptied them. `a` holds a level with orders, or is 0: a gap below it keeps
    # the key of the entry above it (the ladder's order).
    cdef int32_t i, j = a, lv
    for i in range(a, L.n):
        lv = L.lv[i]
        if b.levels[lv].count > 0:
            L.keys[j] = L.keys[i]
            L.lv[j] = lv
            j += 1
        elif lv == MC_GAP:
            L.gaps -= 1
        else:
            L.empties -= 1
            _level_free(b, L, lv)
    L.n = j


cdef inline void _ladder_walked(mc_book* b, int side, int64_t passed, int32_t a) noexcept nogil:
    # After a walk from the touch down to entry `a` that passed `passed` emptied levels.
    if passed >= MC_WALK_PACK_MIN:
        _ladder_pack_top(b, &b.side[side], a)


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
