# cython: language_level=3
# The multi-symbol engine in C: books keyed by symbol id, one order-id space, per-symbol limits.
# The books are ordinary mc_book (matching happens in matchcore._core only); the engine routes,
# checks limits and collects every book's events in one buffer.

from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint8_t
from matchcore._core cimport mc_book, mc_event, mc_command, mc_deep
from matchcore._map cimport mc_map

# Per-symbol order limits; 0 disables a limit. Prices in ticks of the book (integers).
cdef struct mc_symbol_cfg:
    int64_t tick            # prices must be multiples of this (1 = any price)
    int64_t min_price       # lowest accepted limit price
    int64_t max_price       # highest accepted limit price
    int64_t ref_price       # centre of the band ...
    int64_t band            # ... prices outside [ref_price - band, ref_price + band] are refused
    int64_t max_qty         # largest order qty
    int64_t max_notional    # largest price * qty of a limit order
    uint8_t on              # 1 if any of the above is set (_cfg_on), so that a modify with
                            # nothing to check need not read the order first

cdef struct mc_engine:
    mc_book** books          # slot -> book (owned by the Python Engine's OrderBook objects)
    mc_symbol_cfg* cfg       # slot -> limits
    uint32_t* symbols        # slot -> symbol id
    int32_t n_books
    int32_t cap
    mc_map sym_index         # symbol id -> slot
    mc_map oid_index         # order id -> slot of the book it rests in (entries may be stale)
    mc_event* ev
    int64_t n_ev
    int64_t ev_cap
    int64_t now_ns
    uint64_t names_hash      # order-independent hash of the symbol names (set from Python)
    uint8_t emit             # 0: no events are written (record_events=False), as for a book
    # MC_BUSY_* while a call that releases the GIL runs on the engine or one of its books
    # (| MC_BUSY_VIA_BOOK for the latter); the Python face refuses every other call meanwhile,
    # the books' included (their host_busy points here)
    uint8_t busy
    uint64_t handle          # registry handle (matchcore._handles) of the Python Engine
    # Engine.process(out=...): `ev` is the caller's array (ev_borrowed = 1) while the engine's
    # own buffer waits in ev_home (its events up to ev_home_n are pending per-call events).
    # When an operation needs more room than the caller's array has left, _reserve switches
    # back to the own buffer for the rest of the block (ev_borrowed = 2, ev_dst_n: events in
    # the caller's array); the block's events are then moved over if they fit. A borrowed
    # array is never grown or freed: only the own buffer is.
    mc_event* ev_home
    int64_t ev_home_n
    int64_t ev_home_cap
    int64_t ev_dst_n
    uint8_t ev_borrowed
    # the last symbol the batch loop looked up and its slot (-1: unknown): always a true pair
    # (set when a symbol is added; symbols are never removed)
    uint32_t last_symbol
    int32_t last_slot
    # The book that holds the engine's event buffer (its ev, n_ev and ev_cap swapped with the
    # engine's), or NULL. Outside a batch a book holds it for one operation; inside one
    # (lazy = 1, _engine_run) it keeps it until another book or the engine itself needs it,
    # and gives it back before the batch returns.
    mc_book* lent
    uint8_t lazy
    # process() with DEEP_ORDERS resting orders or more across the books: which of its two
    # loops runs (see mc_deep_mode)
    mc_deep deep

cdef mc_engine* mc_engine_new() noexcept nogil
cdef int mc_engine_reindex(mc_engine* e) noexcept nogil
cdef void mc_engine_free(mc_engine* e) noexcept nogil
cdef int32_t mc_engine_add_book(mc_engine* e, uint32_t symbol, mc_book* b,
                                bint route=*) noexcept nogil
cdef mc_book* mc_engine_book(const mc_engine* e, uint32_t symbol) noexcept nogil
cdef int32_t mc_engine_slot(const mc_engine* e, uint32_t symbol) noexcept nogil
cdef void mc_engine_set_emit(mc_engine* e, uint8_t emit) noexcept nogil

cdef void mc_engine_set_time(mc_engine* e, int64_t ts_ns) noexcept nogil
cdef int64_t mc_engine_submit(mc_engine* e, uint32_t symbol, uint64_t oid, int side, int64_t price,
                              int64_t qty, int tif, uint64_t owner, int post_only) noexcept nogil
cdef int64_t mc_engine_market(mc_engine* e, uint32_t symbol, uint64_t oid, int side, int64_t qty,
                              uint64_t owner) noexcept nogil
cdef int64_t mc_engine_cancel(mc_engine* e, uint32_t symbol, uint64_t oid) noexcept nogil
cdef int64_t mc_engine_modify(mc_engine* e, uint32_t symbol, uint64_t oid, int64_t qty,
                              int64_t price) noexcept nogil
cdef int64_t mc_engine_cancel_by(mc_engine* e, uint32_t symbol, uint64_t oid,
                                 uint64_t owner) noexcept nogil
cdef int64_t mc_engine_modify_by(mc_engine* e, uint32_t symbol, uint64_t oid, int64_t qty,
                                 int64_t price, uint64_t owner) noexcept nogil
cdef int64_t mc_engine_apply(mc_engine* e, const mc_command* c) noexcept nogil
cdef int64_t mc_engine_process(mc_engine* e, const mc_command* cmds, int64_t n) noexcept nogil

cdef int mc_engine_get(const mc_engine* e, uint64_t oid, uint32_t* symbol, int* side,
                       int64_t* price, int64_t* qty) noexcept nogil
cdef int64_t mc_engine_count(const mc_engine* e) noexcept nogil
cdef uint64_t mc_engine_state_hash(const mc_engine* e) noexcept nogil
cdef int64_t mc_engine_pending_events(const mc_engine* e) noexcept nogil
cdef int64_t mc_engine_drain_events(mc_engine* e, mc_event* out, int64_t cap) noexcept nogil
cdef int64_t mc_engine_drain_events_owner(mc_engine* e, uint64_t owner, mc_event* out,
                                          int64_t cap) noexcept nogil

# One thread at a time (the Python face, see matchcore.BusyError): raise BusyError if the engine
# is busy, else mark it busy with `what` (MC_BUSY_*); its books see that through their host byte.
# With the GIL, paired with mc_engine_busy_leave.
cdef int mc_engine_busy_enter(mc_engine* e, uint8_t what) except -1
cdef void mc_engine_busy_leave(mc_engine* e) noexcept
