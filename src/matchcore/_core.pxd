# cython: language_level=3
# The compiled core: C structs and the C functions every entry point (Python methods, process(),
# the feed loop, the C/Numba function table) calls. Constants are defined here once and mirrored
# to Python by matchcore._enums.

from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint8_t
from cpython.long cimport PyLong_CheckExact
from cpython.number cimport PyNumber_Index

from matchcore._map cimport mc_map, mc_map_entry, _map_prefetch, _map_find, _prefetch

cdef enum:
    MC_BUY = 0
    MC_SELL = 1

    MC_GTC = 0
    MC_IOC = 1
    MC_FOK = 2

    MC_STP_NONE = 0
    MC_STP_CANCEL_RESTING = 1
    MC_STP_CANCEL_TAKER = 2
    MC_STP_CANCEL_BOTH = 3

    MC_EV_ACCEPTED = 0
    MC_EV_FILL = 1
    MC_EV_CANCELLED = 2
    MC_EV_EXPIRED = 3
    MC_EV_REJECTED = 4
    MC_EV_MODIFIED = 5

    MC_CMD_SUBMIT = 0
    MC_CMD_MARKET = 1
    MC_CMD_CANCEL = 2
    MC_CMD_MODIFY = 3

    MC_R_NONE = 0
    MC_R_INVALID_QTY = 1
    MC_R_INVALID_PRICE = 2
    MC_R_INVALID_SIDE = 3
    MC_R_INVALID_TIF = 4
    MC_R_DUPLICATE_ORDER_ID = 5
    MC_R_ORDER_NOT_FOUND = 6
    MC_R_POST_ONLY_WOULD_CROSS = 7
    MC_R_INVALID_COMMAND = 8
    MC_R_UNKNOWN_SYMBOL = 9
    MC_R_PRICE_NOT_ON_TICK = 10
    MC_R_PRICE_OUTSIDE_BAND = 11
    MC_R_QTY_ABOVE_MAX = 12
    MC_R_NOTIONAL_ABOVE_MAX = 13
    MC_R_CANCEL_REQUESTED = 20
    MC_R_SELF_TRADE = 21
    MC_R_IOC_REMAINDER = 22
    MC_R_MARKET_REMAINDER = 23
    MC_R_FOK_NOT_FILLABLE = 24

    # Error code (negative return) for an allocation failure; the book is left unchanged.
    MC_ERR_NOMEM = 100

    # Snapshot format version and the errors of a snapshot restore (returned negated).
    MC_SNAP_VERSION = 1
    MC_SNAP_E_MAGIC = 1
    MC_SNAP_E_VERSION = 2
    MC_SNAP_E_TRUNCATED = 3
    MC_SNAP_E_CHECKSUM = 4
    MC_SNAP_E_CORRUPT = 5
    MC_SNAP_E_NOMEM = 6

    # mc_book.guard (the Python face's per-call byte): its low bits name the call that runs on
    # the book without the GIL (0: none); MC_GUARD_HOSTED: the book belongs to an Engine or a
    # feed replayer, whose busy byte (host_busy) is checked too; MC_GUARD_NO_EVENTS: the book
    # keeps no per-call events (record_events=False).
    MC_BUSY_PROCESS = 1      # OrderBook.process()
    MC_BUSY_RESTORE = 2      # OrderBook.restore()
    MC_BUSY_ENGINE = 3       # (host byte) Engine.process() or its journal recovery replay
    MC_BUSY_REPLAY = 4       # a feed replay (LOBSTER, ITCH, DBN) applying messages
    MC_BUSY_TIMED = 5        # a timed loop of matchcore._timing
    MC_BUSY_JOURNAL = 6      # (host byte) the engine's journal is written or synced
    MC_BUSY_QUERY = 7        # a query that makes Python objects as it reads (events(), depth())
    MC_BUSY_HELD = 8         # a read in several steps (pickle, copy, snapshot file, invariants
                             # check), a configuration change or EngineMetrics.process(): its
                             # own thread may go on calling (see mc_hold_register)
    MC_BUSY_MASK = 0x3F
    MC_GUARD_HOSTED = 0x40
    MC_GUARD_NO_EVENTS = 0x80
    MC_BUSY_VIA_BOOK = 0x80  # (host byte) the busy call runs on one of the host's books

    # A ladder entry that holds no level (see mc_ladder), and how far from an end of the ladder
    # a new level still simply moves the entries between it and that end.
    MC_GAP = -1
    MC_LADDER_NEAR = 1024


# 64 bytes, no padding: the numpy EVENT_DTYPE is derived from this layout.
cdef struct mc_event:
    int64_t ts_ns
    uint64_t order_id
    uint64_t maker_id
    int64_t price
    int64_t qty
    uint64_t owner
    uint64_t maker_owner
    uint32_t symbol
    uint8_t kind
    uint8_t side
    uint8_t reason
    uint8_t _pad

# 48 bytes, no padding: the numpy COMMAND_DTYPE is derived from this layout.
cdef struct mc_command:
    int64_t ts_ns
    uint64_t order_id
    int64_t price
    int64_t qty
    uint64_t owner
    uint32_t symbol
    uint8_t kind
    uint8_t side
    uint8_t tif
    uint8_t post_only

cdef struct mc_order:
    uint64_t oid
    int64_t price
    int64_t qty          # open quantity
    uint64_t owner
    uint64_t seq         # arrival sequence: strictly increasing along a level's queue
    int32_t prev         # intrusive FIFO links within the level (-1 = none)
    int32_t next         # also the free-list link when the slot is free
    int32_t level
    uint8_t side
    uint8_t post_only
    uint8_t live
    uint8_t _pad[9]      # 64 bytes: with the pool 64-byte aligned, an order is one cache line

# Level totals are 128-bit: every order's qty fits int64, but a level's sum of several may not.
cdef extern from *:
    ctypedef long long mc_i128 "__int128"

cdef struct mc_level:
    int64_t price
    mc_i128 qty          # sum of open qty of its orders (exact; C outputs saturate at 2**63-1)
    int32_t count
    int32_t head
    int32_t tail
    int32_t next_free
    int64_t _pad2[2]     # 64 bytes, one cache line each (the pool is 64-byte aligned)

# A side's ladder: keys[i] = price for bids, -price for asks, so that on both sides the ladder is
# sorted ascending with the best level at the end: inserts and removals near the touch move few
# entries and the best level is popped in O(1). lv[i] is the level index of keys[i]; `map` finds
# the level of a price in O(1), so the sorted array is only searched when a level is created or
# removed. A level that empties below the touch stays in the array (count 0, `empties` counts
# them) so that the price coming back, which is what reprices do, costs no memmove; the top level
# is never empty, empty levels are invisible to every query, and they are compacted away once they
# outnumber the live ones. The entries sit inside their allocation with room on both ends
# (`head` free slots before keys[0]): a level created deep in the book moves the entries below
# it down, one created near the touch moves those above it up, whichever are fewer; a book built
# from the touch outwards (or inwards) then costs O(1) per level, not O(levels).
# A level created far from both ends (more than MC_LADDER_NEAR entries) would move many entries;
# it takes a gap instead: an entry with lv = MC_GAP (-1; levels[-1] is a level that is always
# empty, so every reader skips a gap as it skips an empty level) and the key of the next entry
# that is not a gap. Gaps are made only where such inserts come, by spreading the entries of a
# window of the ladder evenly over it (a packed-memory array): O(log^2 levels) amortised moves
# per level, whatever the order the levels come in. The top entry is never a gap.
cdef struct mc_ladder:
    int64_t* keys        # the first entry; the allocation starts at keys - head
    int32_t* lv          # likewise, lv - head
    int32_t n            # entries, gaps included
    int32_t cap          # slots in the allocation (>= 2 x the book's level slots)
    int32_t empties      # empty levels kept in the ladder (not gaps)
    int32_t head         # free slots before the first entry
    int32_t gaps         # entries that are gaps
    mc_map map

# A batch loop's choice between its simple loop and the one that reads eight commands ahead
# (a book's process(), an engine's): `on` (1: the deep one), `left` chunks until both are timed
# again, `trial` chunks of the current trial left and their TSC cycles per loop. See
# mc_deep_mode.
cdef struct mc_deep:
    uint8_t on
    uint8_t trial
    int32_t left
    int32_t epoch        # chunks between trials (0: DEEP_EPOCH)
    int64_t cycles[2]

cdef struct mc_book:
    mc_order* orders
    int32_t orders_cap
    int32_t free_order
    int64_t n_orders
    mc_level* levels
    int32_t levels_cap
    int32_t free_level
    mc_ladder side[2]
    mc_map index
    mc_event* ev
    int64_t n_ev
    int64_t ev_cap
    uint64_t seq
    int64_t now_ns
    uint32_t symbol
    uint8_t stp
    uint8_t emit          # 0: events are not written (record_events=False, replay at full speed)
    # Read by every OrderBook method before it touches the book, never by the C functions:
    # MC_BUSY_* while a call that released the GIL runs on the book (a call from another thread
    # then raises BusyError), | MC_GUARD_HOSTED | MC_GUARD_NO_EVENTS. Zero is the common case:
    # one byte tested per call, the test the record_events check used to be.
    uint8_t guard
    uint64_t handle       # registry handle (matchcore._handles), 0 if not registered
    # OrderBook.process(): the batch's events are written straight into the caller's array
    # (`ev` is borrowed, ev_borrowed = 1) while the book's own buffer waits in ev_home. When the
    # borrowed array runs short, mc_reserve_events switches back to the own buffer and records
    # in ev_spill how many events the borrowed one holds; process() joins the two parts.
    mc_event* ev_home
    int64_t ev_home_n
    int64_t ev_home_cap
    int64_t ev_spill
    uint8_t ev_borrowed
    # The busy byte of the Engine or feed replayer this book belongs to (NULL for a standalone
    # book; set with MC_GUARD_HOSTED): busy while a call runs on the host or on any of its books.
    uint8_t* host_busy
    # 1 while the book is one of an Engine's (set by the Engine after mc_book_host, cleared by
    # mc_book_host(b, NULL)): its orders enter through the engine, which routes their ids,
    # checks their limits and journals them, so the book's own order entry (the Python methods,
    # process(), the C table) refuses them. A feed replayer's books take orders.
    uint8_t engine_owned
    # > 0 while a matchcore.native.Recorder journals the book (one count per open Recorder):
    # its orders enter through the Recorder's Python methods, which record each call, so the C
    # table's (and Numba's) order entry refuses with -MC_ERR_READONLY; queries answer. The
    # book's own Python methods are not checked: the Recorder calls them.
    uint32_t journaled
    # 1 for the books of a feed replay of many symbols: the id index grows at load <= 1/2
    # only (see _grow_orders and matchcore._sinks.sk_many_books)
    uint8_t lean_index
    # process() on a book of DEEP_ORDERS or more: which of its two loops runs (see mc_deep)
    mc_deep deep


cdef inline int mc_side_byte(int side) noexcept nogil:
    # the side a REJECTED event records (one byte): an invalid side outside 0..255 is 255,
    # invalid too, never wrapped into another value (256 would read as BUY), as a journal
    # record holds it
    return side if 0 <= side <= 255 else 255


cdef inline int64_t mc_ev_bound(const mc_book* b, int64_t qty, uint64_t owner) noexcept nogil:
    # The most events an order of `qty` lots from `owner` can write: one fill per maker it
    # trades with, plus its own few (accepted or modified; expired, rejected or a self-trade
    # stop, with the maker that stop cancels). Every fill takes at least one lot, so that is at
    # most qty makers; only cancel-resting self-trade prevention removes makers without taking
    # lots, and then every resting order may go. Bounding by qty is what lets a book of a million
    # orders write a batch's events straight into a caller's array of a few thousand.
    # An order of qty <= 0 is rejected: one event.
    cdef int64_t n = b.n_orders
    if qty <= 0:
        return 4
    if qty < n and (owner == 0 or b.stp != MC_STP_CANCEL_RESTING):
        n = qty
    return n + 4


cdef inline void mc_prefetch_next_ids(const mc_book* b, uint64_t oid) noexcept nogil:
    # For the per-call methods (the Python methods, the C table): ids are mostly issued in
    # sequence, and a caller that cancels or reprices a block of its orders mostly goes
    # through them in the same order. The next block of ids (_home: four ids to a line) lands
    # on an index line of its own, seldom cached in a table sized for more orders than rest
    # at once; asked for now, it is in by the time the next block comes. For an id out of
    # sequence it is one wasted hint. (process() reads its commands ahead.)
    _map_prefetch(&b.index, oid + 4)


# From this many resting orders, and commands in a batch, on, a book's process() and an
# engine's batch loops cut the batch into chunks of DEEP_CHUNK commands and choose between their
# simple loop and a deep one by the clock: 32,768 orders take 2 MiB, a core's whole L2 on the
# machine this was measured on (AMD EPYC, 1 MiB of L2 a core, 32 MiB of L3), with the id index
# and the levels besides. Smaller books and batches run the simple loop only.
cdef enum:
    DEEP_ORDERS = 1 << 15
    DEEP_MIN_BATCH = 64
    DEEP_CHUNK = 256
    DEEP_EPOCH = 64
    DEEP_EPOCH_MAX = 1024
    DEEP_TRIAL = 8

# The deep loops' stages, in commands ahead of the one running: the id's index line, then the
# order found through it (a submit's or a reprice's price-map lines), then the order's level
# and queue neighbours and a reprice's new level (a submit's level). Each stage's lines are
# found through the one before, and a line from memory takes several commands' work to come:
# at half these distances, with a reprice's level one command ahead, `deep_book` with 1M
# active orders ran at 72-80 ns a message against 55-59. DEEP_RING (a power of 2, more than
# DEEP_AHEAD_INDEX) holds what the stages found for the commands between.
cdef enum:
    DEEP_AHEAD_INDEX = 16
    DEEP_AHEAD_ORDER = 8
    DEEP_AHEAD_LEVEL = 3
    DEEP_RING = 32


cdef inline int mc_deep_mode(mc_deep* d) noexcept nogil:
    # The loop for the next chunk: 1 deep, 0 simple, + 2 when the chunk is timed. The deep loop
    # hides the misses of flows that reach orders and levels all over a big book (1.7-2.2x
    # faster) and costs 20-40% more instructions on flows whose few active orders stay in
    # cache; which kind a flow is shows only in the time. So now and then (mc_deep_timed),
    # DEEP_TRIAL chunks run alternately in the two loops under the TSC, and the faster one
    # runs until the next trial (the deep one when at least 5% faster). Both loops give the
    # same results.
    if d.trial == 0 and d.left <= 0:
        d.trial = DEEP_TRIAL
        d.cycles[0] = 0
        d.cycles[1] = 0
    if d.trial > 0:
        # the deep loop first: the first chunk after a pause (a book just built, a caller's
        # other work) pays for warming the cache, and that must not count against the simple
        # loop, the one a wrong choice costs least with
        return ((d.trial & 1) ^ 1) | 2
    d.left -= 1
    return d.on


cdef inline void mc_deep_timed(mc_deep* d, int mode, int64_t cycles) noexcept nogil:
    d.cycles[mode & 1] += cycles
    d.trial -= 1
    cdef uint8_t on
    if d.trial == 0:
        # the deep loop only when it is clearly faster: trial chunks are different commands,
        # and on a flow it does not help a wrong choice costs more than a right one gains
        on = d.cycles[1] * 20 < d.cycles[0] * 19
        # a trial that confirms the loop running spaces the next one twice as far (up to
        # DEEP_EPOCH_MAX chunks), so that a steady flow pays for trials less and less; a
        # change of loop brings them back to every DEEP_EPOCH chunks
        if on == d.on and d.epoch != 0:
            if d.epoch < DEEP_EPOCH_MAX:
                d.epoch *= 2
        else:
            d.epoch = DEEP_EPOCH
        d.on = on
        d.left = d.epoch


cdef inline int32_t mc_ahead_order(const mc_book* b, const mc_command* c) noexcept nogil:
    # The deep loops' stage DEEP_AHEAD_ORDER commands ahead (the id's index line was asked for
    # before): a cancel's or a modify's order, found and asked for; a submit's price-map line.
    # Returns the order's slot, or -1. Reads only, as every stage: a command in between that
    # changes the book makes a guess wrong, which costs time, never results.
    cdef int32_t idx = -1
    if c.kind == MC_CMD_CANCEL or c.kind == MC_CMD_MODIFY:
        idx = _map_find(&b.index, c.order_id)
        if idx >= 0:
            _prefetch(&b.orders[idx])
            if c.kind == MC_CMD_MODIFY and c.price > 0:
                # a reprice's new price on both sides' price maps: which side is the order's
                # is in its line, only now asked for, and the level found through the map line
                # must be asked for in time too (mc_ahead_level)
                _map_prefetch(&b.side[0].map, <uint64_t>c.price)
                _map_prefetch(&b.side[1].map, <uint64_t>c.price)
    elif c.kind == MC_CMD_SUBMIT and c.side <= 1:
        _map_prefetch(&b.side[c.side].map, <uint64_t>c.price)
    return idx


cdef inline void mc_ahead_level(const mc_book* b, const mc_command* c, int32_t idx) noexcept nogil:
    # DEEP_AHEAD_LEVEL commands ahead: the level and queue neighbours of the order found
    # before and a reprice's new level, or a submit's level.
    cdef int32_t lv
    cdef const mc_order* o
    if idx >= 0:
        o = &b.orders[idx]
        _prefetch(&b.levels[o.level])
        _prefetch(&b.orders[o.prev if o.prev >= 0 else idx])
        _prefetch(&b.orders[o.next if o.next >= 0 else idx])
        if c.kind == MC_CMD_MODIFY and c.price > 0 and c.price != o.price:
            lv = _map_find(&b.side[o.side].map, <uint64_t>c.price)
            if lv >= 0:
                _prefetch(&b.levels[lv])
    elif c.kind == MC_CMD_SUBMIT and c.side <= 1:
        lv = _map_find(&b.side[c.side].map, <uint64_t>c.price)
        if lv >= 0:
            _prefetch(&b.levels[lv])


# ---- lifecycle ----
cdef mc_book* mc_book_new(int stp, int64_t capacity) noexcept nogil
cdef void mc_book_free(mc_book* b) noexcept nogil
cdef mc_book* mc_book_copy(const mc_book* b) noexcept nogil
cdef int mc_book_clear(mc_book* b) noexcept nogil

# ---- order entry (return executed qty >= 0, or -reason / -MC_ERR_NOMEM) ----
cdef int64_t mc_submit(mc_book* b, uint64_t oid, int side, int64_t price, int64_t qty, int tif,
                       uint64_t owner, int post_only) noexcept nogil
cdef int64_t mc_market(mc_book* b, uint64_t oid, int side, int64_t qty, uint64_t owner) noexcept nogil
cdef int64_t mc_cancel(mc_book* b, uint64_t oid) noexcept nogil
cdef int64_t mc_modify(mc_book* b, uint64_t oid, int64_t qty, int64_t price) noexcept nogil
# with the sender's owner for the REJECTED event of an id that is not resting
cdef int64_t mc_cancel_by(mc_book* b, uint64_t oid, uint64_t owner) noexcept nogil
cdef int64_t mc_modify_by(mc_book* b, uint64_t oid, int64_t qty, int64_t price,
                          uint64_t owner) noexcept nogil
cdef int64_t mc_apply(mc_book* b, const mc_command* c) noexcept nogil
cdef int64_t mc_process(mc_book* b, const mc_command* cmds, int64_t n) noexcept nogil

# ---- replay mode: the exchange's own events, applied without matching ----
cdef int64_t mc_rest(mc_book* b, uint64_t oid, int side, int64_t price, int64_t qty,
                     uint64_t owner) noexcept nogil
cdef int64_t mc_reduce(mc_book* b, uint64_t oid, int64_t qty, int is_execution) noexcept nogil
# slot-based: act on the slot mc_find returned (book unchanged since) without a second index probe
cdef int32_t mc_find(const mc_book* b, uint64_t oid) noexcept nogil
cdef int64_t mc_reduce_slot(mc_book* b, int32_t idx, int64_t qty, int is_execution) noexcept nogil
cdef int64_t mc_cancel_slot(mc_book* b, int32_t idx) noexcept nogil

# ---- queries ----
cdef int mc_best(const mc_book* b, int side, int64_t* price, int64_t* qty) noexcept nogil
cdef int64_t mc_depth(mc_book* b, int side, int64_t n, int64_t* out) noexcept nogil
cdef int64_t mc_depth_orders(mc_book* b, int side, int64_t n, int64_t* out) noexcept nogil
cdef int mc_get(const mc_book* b, uint64_t oid, int* side, int64_t* price, int64_t* qty) noexcept nogil
cdef int64_t mc_queue_position(const mc_book* b, uint64_t oid) noexcept nogil
cdef int64_t mc_count(const mc_book* b) noexcept nogil
cdef int64_t mc_level_count(const mc_book* b, int side) noexcept nogil
cdef uint64_t mc_state_hash(const mc_book* b) noexcept nogil

# ---- event buffer ----
cdef int mc_reserve_events(mc_book* b, int64_t extra) noexcept nogil

# ---- embedding: clock, draining events (all or one owner's) into caller arrays, snapshots ----
cdef void mc_set_time(mc_book* b, int64_t ts_ns) noexcept nogil
cdef int64_t mc_pending_events(const mc_book* b) noexcept nogil
cdef void mc_clear_events(mc_book* b) noexcept nogil

cdef inline bint _ev_of(const mc_event* e, uint64_t owner) noexcept nogil:
    # A participant's events: its own orders' events and the fills where it was the maker.
    # maker_owner is 0 in every event but a fill, so it is read only in fills: otherwise
    # owner 0 (no owner) would take in every other participant's events. The one rule for the
    # book's and the engine's owner filters.
    return e.owner == owner or (e.kind == MC_EV_FILL and e.maker_owner == owner)

cdef int64_t mc_filter_events_owner(const mc_event* src, int64_t n, uint64_t owner,
                                    mc_event* out) noexcept nogil
cdef int64_t mc_drain_events(mc_book* b, mc_event* out, int64_t cap) noexcept nogil
cdef int64_t mc_drain_events_owner(mc_book* b, uint64_t owner, mc_event* out,
                                   int64_t cap) noexcept nogil
cdef int64_t mc_snapshot_size(const mc_book* b) noexcept nogil
cdef int64_t mc_snapshot_write(const mc_book* b, uint8_t* out, int64_t cap) noexcept nogil
cdef int mc_snapshot_restore(mc_book* b, const uint8_t* data, int64_t n) noexcept nogil
cdef mc_book* mc_snapshot_load(const uint8_t* data, int64_t n, int* err) noexcept nogil


cdef class OrderBook:
    cdef mc_book* _b
    cdef readonly bint record_events
    # what an Engine's pickle read of this book under the engine's hold (its _book_from_pickle
    # arguments), as a weak reference to the _HeldState in that pickle's arguments: the book's
    # own __reduce__, called by the pickler next, gives these very objects when the book still
    # holds that state (so the pickle stores it once). Weak: once the engine's pickling is over
    # (or its __reduce__ result dropped), the book keeps no copy of its state.
    cdef object _pickled
    # id() of the snapshot bytes _book_from_pickle last built this book from (0: none). An
    # Engine's unpickling, while those bytes are alive, knows by it that the book already holds
    # the state the engine's pickle carries for it (the same object, by the pickle's memo).
    cdef size_t _unpickled_from
    # OrderBook(...) itself (not a subclass): set by __cinit__ for the __init__ call of the same
    # construction, which has nothing left to do (MC_INIT_TAKEN: __cinit__ took its arguments;
    # MC_INIT_BARE: it took none, so arguments given to that call are applied, as after a bare
    # OrderBook.__new__(OrderBook)); any later __init__ call sets the book up anew as a
    # subclass's does (or refuses a used book). 0: no call is due.
    cdef uint8_t _init_due
    # weak references to the book (weakref.ref, WeakValueDictionary): as for Python objects
    cdef object __weakref__


# OrderBook._init_due (and Engine's): the __init__ call due after __cinit__
cdef enum:
    MC_INIT_TAKEN = 1
    MC_INIT_BARE = 2


# ---- one thread at a time (the Python face): see BusyError ----
# mc_busy_enter: raise BusyError if the book (or its host) is busy, else mark both busy with
# `what` (MC_BUSY_*); called with the GIL just before a section that releases it, and paired
# with mc_busy_leave (with the GIL, in a finally: where the section can raise). Inside this
# thread's hold of the book's engine (MC_BUSY_HELD) both do nothing: the hold stays.
cdef int mc_busy_enter(mc_book* b, uint8_t what) except -1
cdef void mc_busy_leave(mc_book* b) noexcept
# A read in several steps (pickling or copying an Engine, its snapshot file, its invariants
# check) holds the engine for its whole length (mc_engine_hold in matchcore._engine): its busy
# byte, the books' host byte, reads MC_BUSY_HELD and the holding thread is registered under the
# byte's address. Other threads' calls raise BusyError; the holder's own go on (its reads run
# through the public methods).
# (call: what holds it, as another thread's refusal names it; None: a read in several steps)
cdef int mc_hold_register(const uint8_t* busy, str call=*) except -1
cdef void mc_hold_unregister(const uint8_t* busy) noexcept
cdef int mc_held_by_me(const uint8_t* busy) except -1
cdef str mc_held_call(const uint8_t* busy)
# A book's pickle arguments (_book_from_pickle's), read in one step without the per-call
# check: the caller has checked or holds the book.
cdef tuple mc_book_pickle_args(OrderBook book)
# The state an Engine's pickle read for `book` (mc_book_pickle_args) as the object the pickle's
# arguments carry (a _HeldState, pickled as that tuple); the book refers to it weakly.
cdef object mc_book_held_state(OrderBook book, tuple args)
# dst takes a copy of src's whole state (pending events included), keeping its own handle; no
# per-call check (the caller's)
cdef int mc_book_copy_into(OrderBook dst, OrderBook src) except -1
# a book joins or leaves a host (an Engine, a feed replayer) with the host's busy byte
cdef void mc_book_host(mc_book* b, uint8_t* host_busy) noexcept
# the out-of-line raise of a busy book or host (who: "OrderBook", "Engine", a replayer's name;
# busy: the byte `what` was read from, which names the call of a hold)
cdef int mc_raise_busy(str who, uint8_t what, const uint8_t* busy=*) except -1
# a feed replayer's feed() stopping between two compiled runs because another thread started a
# call on one of its books meanwhile (pos: the bytes of the buffer consumed so far)
cdef int mc_raise_feed_stopped(str who, Py_ssize_t pos) except -1
cdef int mc_raise_finished(str who, str what) except -1
# the slow paths of the two checks below: raise if busy (the book or its host), 1 if busy with
# this thread's hold; the per-call one then drops the pending events of a book that keeps none
cdef int mc_busy_slow(const mc_book* b) except -1
cdef int mc_guard_slow(mc_book* b) except -1

cdef inline int mc_check_busy(const mc_book* b) except -1:
    # every OrderBook method that reads or writes the book, first (after converting arguments,
    # which may run Python code)
    if b.guard & (MC_BUSY_MASK | MC_GUARD_HOSTED):
        return mc_busy_slow(b)
    return 0

# Order entry on an Engine's book: ReadOnlyBookError (out of line; see mc_book.engine_owned)
cdef int mc_raise_engine_book(const mc_book* b) except -1

cdef inline bint mc_feed_view(const mc_book* b) noexcept nogil:
    # a feed replayer's book (hosted, not an Engine's): it takes orders, but the replayer keeps
    # its symbol id and index settings, so its state is never replaced (restore)
    return (b.guard & MC_GUARD_HOSTED) != 0 and not b.engine_owned

# restore() on a feed replayer's book: ReadOnlyBookError (out of line)
cdef int mc_raise_feed_view_restore(const mc_book* b) except -1
# OrderBook.restore() past that check (an Engine restoring its own book)
cdef int mc_book_restore(OrderBook book, object data) except -1
cdef int mc_entry_slow(mc_book* b) except -1

cdef inline int mc_guard_entry(mc_book* b) except -1:
    # mc_guard_per_call for the methods that enter or change orders: an Engine's book is hosted,
    # so its guard byte is never zero and the refusal costs the standalone book nothing.
    if b.guard:
        return mc_entry_slow(b)
    return 0

cdef inline bint mc_entry_events_on(mc_book* b) noexcept nogil:
    # A feed replayer builds its books writing no events (emit 0: the replay at full speed,
    # and nobody reads them), but an order entered through such a book's Python methods is the
    # caller's own: its events are written as record_events says, as on any book, or its fills
    # were lost. On for that call only (the method puts emit back to 0 after its C call), so
    # the replay's messages still write none. The first test is the one a standalone book pays.
    if (b.guard & MC_GUARD_HOSTED and not b.engine_owned and not b.emit
            and not (b.guard & MC_GUARD_NO_EVENTS)):
        b.emit = 1
        return 1
    return 0

cdef inline int mc_guard_per_call(mc_book* b) except -1:
    # The per-call methods (and events()): one byte tested and a branch, zero being the common
    # case (the test of record_events it replaces); the rest is out of line.
    if b.guard:
        return mc_guard_slow(b)
    return 0


# process(out=...)'s buffer and a batch of commands, checked (OrderBook, Engine, timed loops)
cdef object _out_buffer(object out, object commands, object given)
# process()'s result array for a large batch without out= (reused when no result refers to it)
cdef object mc_result_block(int64_t n)
# the MemoryError of a batch that ran out of memory before its first command (applied 0)
cdef object mc_oom_before(int64_t n)
cdef object _commands_array(object commands, str what)

# A returned qty as a Python int: one of the cached ints 0..1023 where it can be, the way the
# per-call methods return executed or cancelled lots without making an int object.
cdef object mc_small_int(int64_t r)

# Strict integer arguments. Cython's own conversion of a typed argument accepts a float through
# __int__ and truncates it; a price or quantity given as a float is a caller's bug (a price in
# currency units, say) and truncating it would trade at a wrong price, so only integers (int, numpy
# integers, IntEnum members: anything with __index__) are accepted. Out-of-range values raise
# OverflowError before the book is touched.

# _i64_of/_u64_of/_cint_of: an exact int of at most two digits is read inline (mc_pyint.h);
# anything else goes through the general conversion passed with it, one per argument (below), so
# that its errors name the argument.
cdef uint64_t _u64_order_id(object x) except? 0xFFFFFFFFFFFFFFFF
cdef uint64_t _u64_owner(object x) except? 0xFFFFFFFFFFFFFFFF
cdef int64_t _i64_price(object x) except? -1
cdef int64_t _i64_qty(object x) except? -1
cdef int64_t _i64_ts_ns(object x) except? -1
cdef int _cint_side(object x) except? -1
cdef int _cint_tif(object x) except? -1

# The same rule for the arguments of the calls that are not per order (modes, capacities,
# limits, symbol ids): a TypeError or OverflowError that names the argument.
cdef object mc_int_arg(object x, str name)
cdef int64_t mc_i64_arg(object x, str name) except? -1
cdef int mc_stp_arg(object stp) except -1
# A flag: True or False, a numpy bool, or an integer equal to 0 or 1; anything else raises
# TypeError naming it. mc_flag_of is the per-call form: the two bool singletons are tested
# inline (a default costs one pointer compare), the rest is out of line.
cdef int mc_bool_arg(object x, str name) except -1

cdef inline int mc_flag_of(object x, str name) except -1:
    if x is False:
        return 0
    if x is True:
        return 1
    return mc_bool_arg(x, name)

cdef int64_t mc_capacity_arg(object capacity, str name) except? -1

ctypedef int64_t (*_any_i64_t)(object) except? -1
ctypedef uint64_t (*_any_u64_t)(object) except? 0xFFFFFFFFFFFFFFFF
ctypedef int (*_any_int_t)(object) except? -1

cdef extern from "mc_pyint.h":
    bint _int_small "mc_pyint_small"(object x)
    bint _int_sub_small "mc_pyint_sub_small"(object x)
    int64_t _int_value "mc_pyint_value"(object x)
    int64_t _i64_of "MC_AS_I64"(object x, _any_i64_t) except? -1
    uint64_t _u64_of "MC_AS_U64"(object x, _any_u64_t) except? 0xFFFFFFFFFFFFFFFF
    int _cint_of "MC_AS_INT"(object x, _any_int_t) except? -1

