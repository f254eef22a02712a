# cython: language_level=3
# The sink machinery of the compiled replay loops (ITCH 5.0 in itch/_replay.pyx, Databento DBN in
# feeds/_dbn.pyx), defined once: the fixed records both loops write (top of book, trades, depth
# snapshots), the growable record buffer they are written into, the per-book top-of-book tracking
# and the writers of one record each. The writers are inline and `noexcept nogil` so that the
# loops compile them in place (no call per message); an allocation failure drops the record and
# adds one to the caller's out-of-memory counter (``nomem``).
# The numpy dtypes mirroring the records, and the copy-out to numpy, live in _sinks.pyx.

from libc.stdint cimport int64_t, uint64_t, int32_t, uint16_t
from libc.stdlib cimport realloc
from libc.string cimport memset

from matchcore._core cimport OrderBook, mc_book, mc_best, mc_depth_orders, MC_BUY, MC_SELL

cdef struct tob_rec:
    int64_t ts
    int64_t bid
    int64_t bid_qty
    int64_t ask
    int64_t ask_qty
    uint16_t locate

cdef struct trade_rec:
    int64_t ts
    uint64_t ref
    uint64_t match_number
    int64_t price
    int64_t shares
    uint16_t locate
    char kind          # ITCH: E, C, P or Q; DBN: T (aggressor trade) or F (fill)
    char side          # B / S (space: DBN side N)
    char flag          # ITCH C: printable Y/N; ITCH Q: cross type; else space

# Growable record buffer: amortised doubling, so the loops never allocate per message otherwise.
cdef struct rbuf:
    char* data
    int64_t n
    int64_t cap
    int64_t item       # bytes of one record
    int64_t limit      # bytes it may grow to (0: no limit); a record beyond them is dropped

# The options both replay loops take, checked by sk_replay_options.
cdef struct sk_options:
    int64_t every          # snapshot_every (messages or records)
    int64_t every_ns       # snapshot_every_ns
    int64_t depth          # snapshot_depth
    int64_t capacity       # book_capacity
    int64_t until_ns       # until_ns, -1 for None (no stop time)
    int64_t snap_limit     # bytes the snapshot sink may grow to (_snapshot_memory_limit)

cdef int sk_replay_options(sk_options* o, object snapshot_every, object snapshot_every_ns,
                           object snapshot_depth, object book_capacity, object until_ns,
                           str unit) except -1

# From this many books on, a feed replay runs in its many-books mode (sk_many_books).
cdef enum:
    SK_MANY_BOOKS = 400

cdef bint sk_many_books(dict books, OrderBook ob) except -1

# The top of book a book had when it was last read (0 for an empty side).
cdef struct tob_last:
    int64_t bid
    int64_t bid_qty
    int64_t ask
    int64_t ask_qty


cdef inline char* rb_push(rbuf* b) noexcept nogil:
    """Room for one more record at the end of b; NULL (b unchanged) when memory runs out."""
    cdef int64_t cap
    cdef char* p
    if b.n == b.cap:
        # the first growth: 1024 records, or fewer when they are large (1 MiB of them, at
        # least one): a depth snapshot of 1,000,000 levels is a 48 MB record, and 1024 of
        # them at once could never be allocated, so every snapshot was dropped as if memory
        # had run out
        cap = b.cap * 2 if b.cap > 0 else (1024 if b.item <= 1024 else
                                           (1 << 20) // b.item if b.item <= (1 << 20) else 1)
        if b.limit and cap * b.item > b.limit:
            # deep snapshot records grew the sink by gigabytes a doubling: memory the kernel
            # grants (overcommit) and then kills the process for touching
            cap = b.limit // b.item
            if cap <= b.cap:
                return NULL
        p = <char*>realloc(b.data, cap * b.item)
        if p == NULL:
            return NULL
        # Zeroed once per growth, never per record: the writers set every field but not the
        # structs' padding, which would otherwise carry heap garbage into the saved arrays.
        memset(p + b.cap * b.item, 0, (cap - b.cap) * b.item)
        b.data = p
        b.cap = cap
    p = b.data + b.n * b.item
    b.n += 1
    return p


cdef inline bint sk_tob(rbuf* out, tob_last* last, const mc_book* book, int64_t ts,
                        uint16_t locate, bint record, uint64_t* nomem) noexcept nogil:
    """Read the top of book; if it differs from ``last``, keep it there and (with ``record``)
    append a tob_rec. Returns whether it changed."""
    cdef int64_t bp = 0, bq = 0, ap = 0, aq = 0
    cdef tob_rec* r
    mc_best(book, MC_BUY, &bp, &bq)
    mc_best(book, MC_SELL, &ap, &aq)
    if bp == last.bid and bq == last.bid_qty and ap == last.ask and aq == last.ask_qty:
        return False
    last.bid = bp
    last.bid_qty = bq
    last.ask = ap
    last.ask_qty = aq
    if record:
        r = <tob_rec*>rb_push(out)
        if r == NULL:
            nomem[0] += 1
        else:
            r.ts = ts
            r.bid = bp
            r.bid_qty = bq
            r.ask = ap
            r.ask_qty = aq
            r.locate = locate
    return True


cdef inline void sk_trade(rbuf* out, int64_t ts, uint16_t locate, char kind, char side,
                          char flag, uint64_t ref, uint64_t match, int64_t price, int64_t shares,
                          uint64_t* nomem) noexcept nogil:
    """Append one trade_rec."""
    cdef trade_rec* r = <trade_rec*>rb_push(out)
    if r == NULL:
        nomem[0] += 1
        return
    r.ts = ts
    r.ref = ref
    r.match_number = match
    r.price = price
    r.shares = shares
    r.locate = locate
    r.kind = kind
    r.side = side
    r.flag = flag


cdef inline int sk_snapshot(rbuf* out, int64_t ts, int32_t locate, mc_book* book,
                            int64_t depth, int64_t* tmp) noexcept nogil:
    """Append one depth record (``snapshot_dtype(depth)``: ts, locate, then per side price, qty
    and order-count columns of ``depth`` entries, best first, zero beyond the last level).
    ``tmp`` holds 3 * depth int64. -1 when memory runs out."""
    cdef int64_t k, s, j
    cdef int64_t* rec = <int64_t*>rb_push(out)
    if rec == NULL:
        return -1
    memset(rec, 0, out.item)
    rec[0] = ts
    rec[1] = locate
    for s in range(2):
        k = mc_depth_orders(book, s, depth, tmp)
        for j in range(k):
            rec[2 + (3 * s + 0) * depth + j] = tmp[3 * j]
            rec[2 + (3 * s + 1) * depth + j] = tmp[3 * j + 1]
            rec[2 + (3 * s + 2) * depth + j] = tmp[3 * j + 2]
    return 0


cdef object sk_records(rbuf* b, dtype, bint clear)
