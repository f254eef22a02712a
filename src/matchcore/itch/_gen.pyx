# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled core of the ITCH 5.0 generator (see generator.py for the public function).

The order flow is driven through the compiled book in replay mode, one book per symbol, so the
generator always knows the touch, the queue heads and every open quantity: adds land near the
touch without crossing it, executions take the oldest order of the best level, cancels and
replaces pick random live orders, and no message ever refers to an order that is not open.
"""

from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint16_t, uint8_t
from libc.stdlib cimport malloc, calloc, free, realloc
from libc.string cimport memcpy, memset

from matchcore._core cimport (mc_book, mc_book_new, mc_book_free, mc_rest, mc_reduce, mc_cancel,
                              mc_best, mc_get, mc_find, MC_BUY, MC_SELL)

cdef extern from "mc_endian.h" nogil:
    void mc_put_be16(uint8_t* p, uint16_t v)
    void mc_put_be32(uint8_t* p, uint32_t v)
    void mc_put_be48(uint8_t* p, uint64_t v)
    void mc_put_be64(uint8_t* p, uint64_t v)

cdef enum:
    TICK = 100                     # one cent in ITCH price units (1/10000 dollar)
    MAX_FRAME = 52                 # longest ITCH message (50) + 2-byte prefix
    RECENT = 1024                  # recent trades a broken trade message may break

cdef int64_t NS = 1000000000
cdef int64_t T_START = 4 * 3600 * NS
cdef int64_t T_DIRECTORY = 7 * 3600 * NS
cdef int64_t T_OPEN = 34200 * NS           # 09:30
cdef int64_t T_CLOSE = 57600 * NS          # 16:00

_TICKERS = [b"AAPL", b"MSFT", b"AMZN", b"NVDA", b"GOOGL", b"META", b"TSLA", b"AVGO", b"COST",
            b"NFLX", b"ADBE", b"PEP", b"CSCO", b"INTC", b"QCOM", b"TXN", b"AMD", b"SBUX",
            b"AMGN", b"INTU", b"BKNG", b"MDLZ", b"GILD", b"ADP"]
_MPIDS = [b"GSCO", b"MSCO", b"UBSS", b"CDRG", b"VIRT", b"NITE", b"JPMS", b"SUSQ"]


def symbol_names(int k):
    """K distinct ticker names: well-known ones first, then generated ones (ZA.., ZB..)."""
    out = list(_TICKERS[:k])
    i = 0
    while len(out) < k:
        j, s = i, b""
        while True:
            s = bytes([65 + j % 26]) + s
            j = j // 26 - 1
            if j < 0:
                break
        out.append(b"Z" + s)
        i += 1
    return out


def min_messages(int symbols):
    """The fewest messages a day of ``symbols`` symbols holds whatever its length: the system
    events, and each symbol's directory entry, trading action and opening and closing crosses.

    >>> min_messages(8)
    38
    """
    if symbols < 1 or symbols > 65535:
        raise ValueError("symbols must be in 1..65535")
    return 6 + 4 * <int64_t>symbols


cdef inline uint64_t rnd(uint64_t* s) noexcept nogil:
    # splitmix64: tiny, fast, and good enough for a workload
    s[0] += <uint64_t>0x9E3779B97F4A7C15
    cdef uint64_t z = s[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)

cdef inline uint64_t below(uint64_t* s, uint64_t n) noexcept nogil:
    return (rnd(s) >> 11) % n

cdef inline double unif(uint64_t* s) noexcept nogil:
    return (rnd(s) >> 11) * (1.0 / 9007199254740992.0)


cdef class Generator:
    """Stateful generator: ``chunk(n)`` returns the next n messages (standard framing)."""

    cdef uint64_t rng
    cdef int K
    cdef int64_t total, emitted, flow_total, flow_done
    cdef mc_book** books
    cdef char* names            # K * 8, space padded
    cdef int64_t* last_px
    cdef double* cdf
    cdef uint64_t* pool         # live order refs
    cdef uint16_t* pool_loc     # their locates, moved with them
    # A ref's index in pool is its resting order's owner field in its book: arrays indexed by
    # ref held 6 bytes for every order of the day, so memory grew with --messages
    cdef int64_t n_pool, pool_cap, next_ref, match, ts
    # Trades not broken yet, a bounded set of recent ones (memory does not grow with the
    # day): a broken trade message names one of them and its stock's locate.
    cdef uint64_t recent_match[RECENT]
    cdef uint16_t recent_loc[RECENT]
    cdef int64_t n_recent
    cdef int64_t gap_ns
    cdef int64_t target_live
    cdef int phase
    cdef int phase_i
    cdef uint8_t* out
    cdef int64_t n_out

    def __cinit__(self, int64_t messages, int symbols, uint64_t seed):
        cdef int64_t fixed = min_messages(symbols)      # (refuses symbols out of range)
        if messages < fixed:
            raise ValueError(f"{symbols} symbols need at least {fixed} messages "
                             f"(directory, trading actions, crosses, system events)")
        self.K = symbols
        self.total = messages
        self.flow_total = messages - fixed
        self.rng = seed * <uint64_t>0x2545F4914F6CDD1D + 0x1234567
        self.books = <mc_book**>calloc(symbols + 1, sizeof(mc_book*))
        self.names = <char*>malloc((symbols + 1) * 8)
        self.last_px = <int64_t*>calloc(symbols + 1, sizeof(int64_t))
        self.cdf = <double*>malloc((symbols + 1) * sizeof(double))
        # live orders only; grown before each chunk by as many as it can add (see chunk)
        self.pool_cap = 1024
        self.pool = <uint64_t*>malloc(self.pool_cap * sizeof(uint64_t))
        self.pool_loc = <uint16_t*>malloc(self.pool_cap * sizeof(uint16_t))
        if (self.books == NULL or self.names == NULL or self.last_px == NULL or self.cdf == NULL
                or self.pool == NULL or self.pool_loc == NULL):
            raise MemoryError()
        names = symbol_names(symbols)
        cdef int i
        cdef double acc = 0.0
        cdef bytes nm
        for i in range(1, symbols + 1):
            # room for few orders, grown as a book fills (most symbols of a day are quiet):
            # room for 256 took 41 KB a symbol, 2.7 GB for 65,535 symbols
            self.books[i] = mc_book_new(0, 64)
            if self.books[i] == NULL:
                raise MemoryError()
            self.books[i].emit = 0
            nm = names[i - 1].ljust(8)
            memcpy(self.names + 8 * i, <char*>nm, 8)
            # prices 10..500 dollars, on the cent
            self.last_px[i] = (1000 + <int64_t>below(&self.rng, 49000)) * TICK
            acc += 1.0 / (i ** 0.8)      # Zipf-like activity: a few symbols dominate
            self.cdf[i] = acc
        for i in range(1, symbols + 1):
            self.cdf[i] /= acc
        self.next_ref = 1
        self.match = 0
        self.n_recent = 0
        self.ts = T_START
        self.gap_ns = (T_CLOSE - T_OPEN) // (self.flow_total + 1)
        if self.gap_ns < 1:
            self.gap_ns = 1
        self.target_live = 120 * <int64_t>symbols
        self.phase = 0
        self.phase_i = 0
        self.out = NULL

    def __dealloc__(self):
        cdef int i
        if self.books != NULL:
            for i in range(1, self.K + 1):
                mc_book_free(self.books[i])
        free(self.books)
        free(self.names)
        free(self.last_px)
        free(self.cdf)
        free(self.pool)
        free(self.pool_loc)

    def __reduce__(self):
        from matchcore._nocopy import refuse_copy
        refuse_copy("matchcore.itch generator",
                    "its random state and live order pool are C arrays that are not copied",
                    "Make a new one with the same messages, symbols and seed: it generates the "
                    "same bytes")

    @property
    def remaining(self):
        return self.total - self.emitted

    # ---- message writers: each returns the frame start so fields can be filled ----

    cdef inline uint8_t* _frame(self, char t, int length, int locate) noexcept nogil:
        cdef uint8_t* p = self.out + self.n_out
        mc_put_be16(p, <uint16_t>length)
        p[2] = <uint8_t>t
        mc_put_be16(p + 3, <uint16_t>locate)
        mc_put_be16(p + 5, <uint16_t>(self.emitted & 0xFFFF))
        mc_put_be48(p + 7, <uint64_t>self.ts)
        self.n_out += 2 + length
        self.emitted += 1
        return p + 2          # message start (type byte): field offsets as in the spec

    cdef inline void _system(self, char code) noexcept nogil:
        cdef uint8_t* m = self._frame(b'S', 12, 0)
        m[11] = <uint8_t>code

    cdef void _directory(self, int s) noexcept nogil:
        cdef uint8_t* m = self._frame(b'R', 39, s)
        memcpy(m + 11, self.names + 8 * s, 8)
        memcpy(m + 19, b"QN", 2)               # market category, financial status
        mc_put_be32(m + 21, 100)               # round lot size
        memcpy(m + 25, b"NCZ PNN1N", 9)        # round lots only .. ETP flag
        mc_put_be32(m + 34, 0)
        m[38] = b'N'

    cdef void _action(self, int s, char state) noexcept nogil:
        cdef uint8_t* m = self._frame(b'H', 25, s)
        memcpy(m + 11, self.names + 8 * s, 8)
        m[19] = <uint8_t>state
        m[20] = b' '
        memcpy(m + 21, b"    ", 4)

    cdef void _cross(self, int s, char kind) noexcept nogil:
        cdef uint8_t* m = self._frame(b'Q', 40, s)
        self._new_match(s)
        mc_put_be64(m + 11, 100 * (1 + below(&self.rng, 200)))
        memcpy(m + 19, self.names + 8 * s, 8)
        mc_put_be32(m + 27, <uint32_t>self.last_px[s])
        mc_put_be64(m + 31, <uint64_t>self.match)
        m[39] = <uint8_t>kind

    cdef void _noii(self, int s) noexcept nogil:
        cdef uint8_t* m = self._frame(b'I', 50, s)
        cdef int64_t px = self.last_px[s]
        mc_put_be64(m + 11, 100 * below(&self.rng, 500))
        cdef uint64_t imbalance = 100 * (1 + below(&self.rng, 99))
        m[27] = b"BSNO"[below(&self.rng, 4)]
        # the shares follow the direction: a buy or sell imbalance has some, "no imbalance"
        # (N) and "insufficient orders to calculate" (O) none
        mc_put_be64(m + 19, imbalance if m[27] == b'B' or m[27] == b'S' else 0)
        memcpy(m + 28, self.names + 8 * s, 8)
        mc_put_be32(m + 36, <uint32_t>(px + TICK * <int64_t>below(&self.rng, 5)))
        mc_put_be32(m + 40, <uint32_t>(px - TICK * <int64_t>below(&self.rng, 5)))
        mc_put_be32(m + 44, <uint32_t>px)
        m[48] = b'C' if self.ts > T_CLOSE - 600 * NS else b'O'
        m[49] = b'L'

    # ---- order flow ----

    cdef inline int _pick_symbol(self) noexcept nogil:
        cdef double u = unif(&self.rng)
        cdef int lo = 1, hi = self.K, mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.cdf[mid] < u:
                lo = mid + 1
            else:
                hi = mid
        return lo

    cdef inline int64_t _shares(self) noexcept nogil:
        if below(&self.rng, 10) == 0:
            return 1 + <int64_t>below(&self.rng, 99)          # odd lot
        return 100 * (1 + <int64_t>below(&self.rng, 5))

    cdef inline void _pool_add(self, uint64_t ref, int s) noexcept nogil:
        # (the order rests already, with its index as owner: see _add)
        self.pool[self.n_pool] = ref
        self.pool_loc[self.n_pool] = <uint16_t>s
        self.n_pool += 1

    cdef inline void _pool_remove(self, int64_t i) noexcept nogil:
        """Take pool entry ``i`` out: the last entry moves into its place, and its order's
        owner field follows."""
        cdef int64_t j = self.n_pool - 1
        cdef uint64_t last = self.pool[j]
        cdef int last_s = self.pool_loc[j]
        cdef int32_t idx
        self.pool[i] = last
        self.pool_loc[i] = <uint16_t>last_s
        self.n_pool = j
        if i != j:
            idx = mc_find(self.books[last_s], last)
            self.books[last_s].orders[idx].owner = <uint64_t>i

    cdef int64_t _add_price(self, int s, int side) noexcept nogil:
        """A price near the touch on `side` that does not cross the other side."""
        cdef mc_book* b = self.books[s]
        cdef int64_t bp = 0, bq = 0, ap = 0, aq = 0, ref, px, k = 0
        cdef bint hb = mc_best(b, MC_BUY, &bp, &bq), ha = mc_best(b, MC_SELL, &ap, &aq)
        cdef double u = unif(&self.rng)
        while unif(&self.rng) < 0.55 and k < 30:
            k += 1                             # geometric distance from the touch
        if side == MC_BUY:
            ref = bp if hb else ((ap - TICK) if ha else self.last_px[s])
            px = ref - k * TICK
            if u < 0.12 and ha and ap - ref > TICK:
                px = ref + TICK                # improve the bid inside the spread
            if ha and px >= ap:
                px = ap - TICK
        else:
            ref = ap if ha else ((bp + TICK) if hb else self.last_px[s] + TICK)
            px = ref + k * TICK
            if u < 0.12 and hb and ref - bp > TICK:
                px = ref - TICK
            if hb and px <= bp:
                px = bp + TICK
        if px < TICK:
            px = TICK
        return px

    cdef void _add(self) noexcept nogil:
        cdef int s = self._pick_symbol()
        cdef int side = <int>below(&self.rng, 2)
        cdef int64_t px = self._add_price(s, side)
        if side == MC_BUY and px < TICK + 0:
            px = TICK
        cdef int64_t qty = self._shares()
        cdef uint64_t ref = <uint64_t>self.next_ref
        self.next_ref += 1
        cdef bint attributed = below(&self.rng, 20) == 0
        cdef uint8_t* m = self._frame(b'F' if attributed else b'A', 40 if attributed else 36, s)
        mc_put_be64(m + 11, ref)
        m[19] = b'B' if side == MC_BUY else b'S'
        mc_put_be32(m + 20, <uint32_t>qty)
        memcpy(m + 24, self.names + 8 * s, 8)
        mc_put_be32(m + 32, <uint32_t>px)
        if attributed:
            memcpy(m + 36, <char*>(b"GSCOMSCOUBSSCDRGVIRTNITEJPMSSUSQ") + 4 * below(&self.rng, 8), 4)
        mc_rest(self.books[s], ref, side, px, qty, <uint64_t>self.n_pool)
        self._pool_add(ref, s)

    cdef void _delete(self) noexcept nogil:
        cdef int64_t i = <int64_t>below(&self.rng, self.n_pool)
        self._delete_ref(self.pool[i], self.pool_loc[i], i)

    cdef void _cancel(self) noexcept nogil:
        cdef int64_t i = <int64_t>below(&self.rng, self.n_pool)
        cdef uint64_t ref = self.pool[i]
        cdef int s = self.pool_loc[i]
        cdef int side = 0
        cdef int64_t px = 0, qty = 0
        mc_get(self.books[s], ref, &side, &px, &qty)
        if qty < 2:
            self._delete_ref(ref, s, i)
            return
        cdef int64_t c = 1 + <int64_t>below(&self.rng, <uint64_t>(qty - 1))
        cdef uint8_t* m = self._frame(b'X', 23, s)
        mc_put_be64(m + 11, ref)
        mc_put_be32(m + 19, <uint32_t>c)
        mc_reduce(self.books[s], ref, c, 0)

    cdef void _delete_ref(self, uint64_t ref, int s, int64_t i) noexcept nogil:
        cdef uint8_t* m = self._frame(b'D', 19, s)
        mc_put_be64(m + 11, ref)
        mc_cancel(self.books[s], ref)
        self._pool_remove(i)

    cdef void _replace(self) noexcept nogil:
        cdef int64_t i = <int64_t>below(&self.rng, self.n_pool)
        cdef uint64_t ref = self.pool[i]
        cdef int s = self.pool_loc[i]
        cdef int side = 0
        cdef int64_t px = 0, qty = 0, bp = 0, bq = 0, ap = 0, aq = 0
        mc_get(self.books[s], ref, &side, &px, &qty)
        mc_cancel(self.books[s], ref)           # out first, so its own level does not bound it
        cdef int64_t npx = px + TICK * (<int64_t>below(&self.rng, 5) - 2)
        if side == MC_BUY and mc_best(self.books[s], MC_SELL, &ap, &aq) and npx >= ap:
            npx = ap - TICK
        if side == MC_SELL and mc_best(self.books[s], MC_BUY, &bp, &bq) and npx <= bp:
            npx = bp + TICK
        if npx < TICK:
            npx = TICK
        cdef int64_t nqty = self._shares()
        cdef uint64_t nref = <uint64_t>self.next_ref
        self.next_ref += 1
        cdef uint8_t* m = self._frame(b'U', 35, s)
        mc_put_be64(m + 11, ref)
        mc_put_be64(m + 19, nref)
        mc_put_be32(m + 27, <uint32_t>nqty)
        mc_put_be32(m + 31, <uint32_t>npx)
        mc_rest(self.books[s], nref, side, npx, nqty, <uint64_t>i)
        self.pool[i] = nref

    cdef bint _execute(self, bint with_price) noexcept nogil:
        """Execute against the oldest order at the best level of a random side."""
        cdef int s = self._pick_symbol()
        cdef int side = <int>below(&self.rng, 2)
        cdef mc_book* b = self.books[s]
        if b.side[side].n == 0:
            side ^= 1
            if b.side[side].n == 0:
                return False
        # the top level of a ladder is never empty (core invariant), its head is the oldest order
        cdef int32_t lv = b.side[side].lv[b.side[side].n - 1]
        cdef int32_t idx = b.levels[lv].head
        cdef uint64_t ref = b.orders[idx].oid
        cdef int64_t open_qty = b.orders[idx].qty, px = b.orders[idx].price
        cdef int64_t q = open_qty
        if open_qty > 1 and below(&self.rng, 5) < 2:
            q = 1 + <int64_t>below(&self.rng, <uint64_t>(open_qty - 1))
        self._new_match(s)
        cdef uint8_t* m
        if with_price:
            m = self._frame(b'C', 36, s)
        else:
            m = self._frame(b'E', 31, s)
        mc_put_be64(m + 11, ref)
        mc_put_be32(m + 19, <uint32_t>q)
        mc_put_be64(m + 23, <uint64_t>self.match)
        if with_price:
            if below(&self.rng, 4) == 0:
                m[31] = b'N'                   # non-printable, e.g. part of a cross
                mc_put_be32(m + 32, <uint32_t>(px + TICK))
            else:
                m[31] = b'Y'
                mc_put_be32(m + 32, <uint32_t>px)
        cdef int64_t i = <int64_t>b.orders[idx].owner
        mc_reduce(b, ref, q, 1)
        if q == open_qty:
            self._pool_remove(i)
        self.last_px[s] = px
        return True

    cdef void _hidden_trade(self) noexcept nogil:
        cdef int s = self._pick_symbol()
        cdef int64_t bp = 0, bq = 0, ap = 0, aq = 0, px = self.last_px[s]
        if mc_best(self.books[s], MC_BUY, &bp, &bq) and mc_best(self.books[s], MC_SELL, &ap, &aq):
            px = (bp + ap) // 2
        self._new_match(s)
        cdef uint8_t* m = self._frame(b'P', 44, s)
        mc_put_be64(m + 11, 0)                  # NASDAQ zeroes the reference of hidden orders
        # "B" whatever the hidden order's side, as NASDAQ has sent it since July 2014; the
        # draw that picked the side is still made, so that a seed keeps the rest of its day
        below(&self.rng, 2)
        m[19] = b'B'
        mc_put_be32(m + 20, <uint32_t>self._shares())
        memcpy(m + 24, self.names + 8 * s, 8)
        mc_put_be32(m + 32, <uint32_t>px)
        mc_put_be64(m + 36, <uint64_t>self.match)

    cdef inline void _new_match(self, int s) noexcept nogil:
        """The match number of a new trade of symbol ``s``, kept among the recent trades."""
        self.match += 1
        cdef int64_t i = self.n_recent
        if i < RECENT:
            self.n_recent += 1
        else:
            i = self.match % RECENT          # full: an older trade makes room
        self.recent_match[i] = <uint64_t>self.match
        self.recent_loc[i] = <uint16_t>s

    cdef void _broken(self) noexcept nogil:
        # One of the recent trades, not broken before, under its own stock's locate (a random
        # symbol's locate and any match number of the day broke other stocks' trades, some
        # twice). The draw that picked that symbol is still made: every other message of a
        # seeded day stays the same bytes.
        unif(&self.rng)
        cdef int64_t i = <int64_t>below(&self.rng, <uint64_t>self.n_recent)
        cdef uint8_t* m = self._frame(b'B', 19, self.recent_loc[i])
        mc_put_be64(m + 11, self.recent_match[i])
        self.n_recent -= 1
        self.recent_match[i] = self.recent_match[self.n_recent]
        self.recent_loc[i] = self.recent_loc[self.n_recent]

    cdef void _flow_one(self) noexcept nogil:
        cdef double u = unif(&self.rng)
        # mean-reverting book size: above the target, removals outpace adds
        cdef double p_add = 0.52 if self.n_pool < self.target_live else 0.36
        self.ts += 1 + <int64_t>below(&self.rng, <uint64_t>(2 * self.gap_ns))
        if self.n_pool == 0 or u < p_add:
            self._add()
            return
        u = unif(&self.rng)
        if u < 0.55:
            self._delete()
        elif u < 0.68:
            self._replace()
        elif u < 0.77:
            self._cancel()
        elif u < 0.93:
            if not self._execute(False):
                self._add()
        elif u < 0.945:
            if not self._execute(True):
                self._add()
        elif u < 0.99:
            self._hidden_trade()
        elif u < 0.998 or self.n_recent == 0:
            self._noii(self._pick_symbol())
        else:
            self._broken()

    cdef int64_t _fill(self, int64_t n) noexcept nogil:
        """Write up to n messages into self.out; phases: header, open crosses, flow, trailer."""
        cdef int64_t start = self.emitted
        while self.emitted - start < n and self.emitted < self.total:
            if self.phase == 0:                  # system start, directory, trading actions
                if self.phase_i == 0:
                    self.ts = T_START
                    self._system(b'O')
                elif self.phase_i == 1:
                    self.ts = T_START + 1000
                    self._system(b'S')
                elif self.phase_i < 2 + self.K:
                    self.ts = T_DIRECTORY + self.phase_i * 1000
                    self._directory(self.phase_i - 1)
                elif self.phase_i < 2 + 2 * self.K:
                    self.ts = T_DIRECTORY + self.phase_i * 1000
                    self._action(self.phase_i - 1 - self.K, b'T')
                else:
                    self.ts = T_OPEN
                    self._system(b'Q')
                    self.phase = 1
                    self.phase_i = 0
                    continue
                self.phase_i += 1
            elif self.phase == 1:                # opening crosses
                self.ts += 1000
                self._cross(self.phase_i + 1, b'O')
                self.phase_i += 1
                if self.phase_i == self.K:
                    self.phase = 2
                    self.phase_i = 0
            elif self.phase == 2:
                if self.flow_done == self.flow_total:
                    self.phase = 3
                    self.phase_i = 0
                    if self.ts < T_CLOSE:
                        self.ts = T_CLOSE
                    continue
                self._flow_one()
                self.flow_done += 1
            else:                                # closing crosses, end of market/system/messages
                self.ts += 1000
                if self.phase_i < self.K:
                    self._cross(self.phase_i + 1, b'C')
                else:
                    self._system(b"MEC"[self.phase_i - self.K])
                self.phase_i += 1
        return self.emitted - start

    cdef int _reserve(self, int64_t cap) except -1:
        """Room in the pool for ``cap`` live orders: a chunk of n messages adds at most n."""
        if cap <= self.pool_cap:
            return 0
        cap = max(cap, 2 * self.pool_cap)
        cdef uint64_t* pool = <uint64_t*>realloc(self.pool, cap * sizeof(uint64_t))
        if pool == NULL:
            raise MemoryError()
        self.pool = pool
        cdef uint16_t* loc = <uint16_t*>realloc(self.pool_loc, cap * sizeof(uint16_t))
        if loc == NULL:
            raise MemoryError()
        self.pool_loc = loc
        self.pool_cap = cap
        return 0

    def chunk(self, int64_t n):
        """The next (up to) n messages as bytes in standard framing; b'' when done."""
        if n <= 0 or self.emitted >= self.total:
            return b""
        n = min(n, self.total - self.emitted)
        self._reserve(self.n_pool + n)
        cdef bytearray buf = bytearray(n * MAX_FRAME)
        self.out = <uint8_t*>(<char*>buf)
        self.n_out = 0
        with nogil:
            self._fill(n)
        self.out = NULL
        del buf[self.n_out:]
        return bytes(buf)
