# cython: language_level=3
"""The C entry to the compiled core: the `mc_api_v2` function table of include/matchcore.h.

The table's functions take checked handles (matchcore._handles), not pointers: each validates
its handle against the registry, then calls the very function the Python methods call
(cimported from matchcore._core and matchcore._engine): one implementation behind every entry
point. A freed, foreign or garbage handle is refused with -MC_ERR_HANDLE before any object
memory is read. The table is published the customary way, as the PyCapsule
``matchcore._capi._C_API`` (C/C++/Cython: ``mc_import_api()`` in the header), and as plain
addresses for ctypes, cffi and Numba.
"""

import os

from libc.stdint cimport int64_t, uint64_t, uint32_t, uint8_t
from cpython.pycapsule cimport PyCapsule_New

from matchcore._core cimport (
    mc_book,
    mc_event,
    mc_command,
    mc_book_new,
    mc_book_free,
    mc_book_copy,
    mc_book_clear,
    mc_set_time,
    mc_submit,
    mc_prefetch_next_ids,
    mc_market,
    mc_cancel,
    mc_modify,
    mc_cancel_by,
    mc_modify_by,
    mc_apply,
    mc_process,
    mc_best,
    mc_depth,
    mc_depth_orders,
    mc_get,
    mc_queue_position,
    mc_count,
    mc_level_count,
    mc_state_hash,
    mc_pending_events,
    mc_drain_events,
    mc_drain_events_owner,
    mc_clear_events,
    mc_snapshot_size,
    mc_snapshot_write,
    mc_snapshot_restore,
    mc_feed_view,
    mc_entry_events_on,
    MC_BUSY_MASK,
    MC_GUARD_HOSTED,
)
from matchcore._engine cimport (
    mc_engine,
    mc_engine_set_time,
    mc_engine_submit,
    mc_engine_market,
    mc_engine_cancel,
    mc_engine_modify,
    mc_engine_cancel_by,
    mc_engine_modify_by,
    mc_engine_process,
    mc_engine_book,
    mc_engine_get,
    mc_engine_count,
    mc_engine_state_hash,
    mc_engine_pending_events,
    mc_engine_drain_events,
    mc_engine_drain_events_owner,
)
from matchcore._handles cimport (
    mc_hslot, mc_handle_dir, mc_handle_get, mc_handle_new, mc_handle_release, mc_handle_c_owned,
    MC_H_BOOK, MC_H_ENGINE,
)

cdef enum:
    E_HANDLE = 101      # MC_ERR_HANDLE of matchcore.h (returned negated)
    E_BUSY = 102        # MC_ERR_BUSY
    E_READONLY = 103    # MC_ERR_READONLY
    E_SIDE = 3          # MC_R_INVALID_SIDE (returned negated)
    E_COMMAND = 8       # MC_R_INVALID_COMMAND

# The registry's chunk directory: a static array in matchcore._handles, so this never changes.
cdef mc_hslot** _dir = mc_handle_dir()


cdef inline mc_book* _bk(uint64_t h) noexcept nogil:
    return <mc_book*>mc_handle_get(_dir, h, MC_H_BOOK)


cdef inline mc_engine* _en(uint64_t h) noexcept nogil:
    return <mc_engine*>mc_handle_get(_dir, h, MC_H_ENGINE)


# The Python face refuses a call on a book (or engine) that a call releasing the GIL is using
# in another thread (BusyError), and order entry on an Engine's book (ReadOnlyBookError); the
# table refuses the same calls with -MC_ERR_BUSY and -MC_ERR_READONLY, the book unchanged. A
# standalone book that nobody is using has a zero guard: one byte tested.

cdef int _book_refusal(const mc_book* b, bint entry) noexcept nogil:
    if entry and b.engine_owned:
        return -E_READONLY
    if (b.guard & MC_BUSY_MASK) or (b.host_busy != NULL and b.host_busy[0] != 0):
        return -E_BUSY
    if entry and b.journaled:
        # a feed replayer's book (hosted, so not seen by _entry's own test) that a Recorder
        # journals: an order entered here would be in the live book and in no record
        return -E_READONLY
    return 0


cdef inline int _entry(const mc_book* b) noexcept nogil:
    # before a call that enters or changes orders (or replaces the book's state)
    if b.guard & (MC_BUSY_MASK | MC_GUARD_HOSTED):
        return _book_refusal(b, True)
    if b.journaled:
        # a Recorder's book: an order entered here would be in the live book and in no record
        return -E_READONLY
    return 0


cdef inline int64_t _events_off(mc_book* b, bint on, int64_t r) noexcept nogil:
    # after an order-entry call on a feed replayer's book, which writes that call's events
    # (mc_entry_events_on switched them on): off again, so the replay's messages write none
    if on:
        b.emit = 0
    return r


cdef inline int _use(const mc_book* b) noexcept nogil:
    # before any other call that reads or writes the book (queries, events, time)
    if b.guard & (MC_BUSY_MASK | MC_GUARD_HOSTED):
        return _book_refusal(b, False)
    return 0


# ---- the table's functions: validate the handle, then call the core ----

# book_new refuses what OrderBook(stp, capacity=) refuses (ValueError there): an unknown STP
# mode, and a capacity outside [0, 2**30]. Above 2**30 no book can hold the orders: the pools
# were grown towards it (gigabytes of orders written) before the growth failed.
cdef uint64_t h_book_new(int stp, int64_t capacity) noexcept nogil:
    if stp < 0 or stp > 3 or capacity < 0 or capacity > (1 << 30):
        return 0
    cdef mc_book* b = mc_book_new(stp, capacity)
    if b == NULL:
        return 0
    b.handle = mc_handle_new(b, MC_H_BOOK, 1)
    if b.handle == 0:
        mc_book_free(b)
        return 0
    return b.handle


cdef int h_book_free(uint64_t h) noexcept nogil:
    cdef mc_book* b = _bk(h)
    # A Python-owned book (OrderBook.handle, an engine's book) is refused: freeing it would
    # leave its Python object pointing at freed memory.
    if b == NULL or not mc_handle_c_owned(h):
        return -E_HANDLE
    # The release (under the registry lock) decides: of two racing frees only one gets here.
    if mc_handle_release(h) < 0:
        return -E_HANDLE
    mc_book_free(b)
    return 0


cdef uint64_t h_book_copy(uint64_t h) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL or _use(b) < 0:
        return 0
    cdef mc_book* c = mc_book_copy(b)
    if c == NULL:
        return 0
    c.handle = mc_handle_new(c, MC_H_BOOK, 1)
    if c.handle == 0:
        mc_book_free(c)
        return 0
    return c.handle


cdef int h_book_clear(uint64_t h) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _entry(b)
    return rc if rc < 0 else mc_book_clear(b)


cdef int h_book_valid(uint64_t h) noexcept nogil:
    return 1 if _bk(h) != NULL else 0


cdef int h_engine_valid(uint64_t h) noexcept nogil:
    return 1 if _en(h) != NULL else 0


cdef int h_set_time(uint64_t h, int64_t ts_ns) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    # an Engine's book takes its clock from the engine (the book's own ts_ns= is refused)
    cdef int rc = _entry(b)
    if rc < 0:
        return rc
    mc_set_time(b, ts_ns)
    return 0


cdef int64_t h_submit(uint64_t h, uint64_t oid, int side, int64_t price, int64_t qty, int tif,
                      uint64_t owner, int post_only) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _entry(b)
    if rc < 0:
        return rc
    mc_prefetch_next_ids(b, oid)
    cdef bint events_on = mc_entry_events_on(b)
    return _events_off(b, events_on, mc_submit(b, oid, side, price, qty, tif, owner, post_only))


cdef int64_t h_market(uint64_t h, uint64_t oid, int side, int64_t qty,
                      uint64_t owner) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _entry(b)
    if rc < 0:
        return rc
    mc_prefetch_next_ids(b, oid)
    cdef bint events_on = mc_entry_events_on(b)
    return _events_off(b, events_on, mc_market(b, oid, side, qty, owner))


cdef int64_t h_cancel(uint64_t h, uint64_t oid) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _entry(b)
    if rc < 0:
        return rc
    mc_prefetch_next_ids(b, oid)
    cdef bint events_on = mc_entry_events_on(b)
    return _events_off(b, events_on, mc_cancel(b, oid))


cdef int64_t h_modify(uint64_t h, uint64_t oid, int64_t qty, int64_t price) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _entry(b)
    if rc < 0:
        return rc
    mc_prefetch_next_ids(b, oid)
    cdef bint events_on = mc_entry_events_on(b)
    return _events_off(b, events_on, mc_modify(b, oid, qty, price))


cdef int64_t h_cancel_by(uint64_t h, uint64_t oid, uint64_t owner) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _entry(b)
    if rc < 0:
        return rc
    mc_prefetch_next_ids(b, oid)
    cdef bint events_on = mc_entry_events_on(b)
    return _events_off(b, events_on, mc_cancel_by(b, oid, owner))


cdef int64_t h_modify_by(uint64_t h, uint64_t oid, int64_t qty, int64_t price,
                         uint64_t owner) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _entry(b)
    if rc < 0:
        return rc
    mc_prefetch_next_ids(b, oid)
    cdef bint events_on = mc_entry_events_on(b)
    return _events_off(b, events_on, mc_modify_by(b, oid, qty, price, owner))


cdef int64_t h_apply(uint64_t h, const mc_command* c) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _entry(b)
    if rc < 0:
        return rc
    cdef bint events_on = mc_entry_events_on(b)
    return _events_off(b, events_on, mc_apply(b, c))


cdef int64_t h_process(uint64_t h, const mc_command* cmds, int64_t n) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _entry(b)
    if rc < 0:
        return rc
    cdef bint events_on = mc_entry_events_on(b)
    return _events_off(b, events_on, mc_process(b, cmds, n))


# The core's queries index the book's two ladders by side and trust their (Python or internal)
# callers to pass 0 or 1; a C caller's side is checked here, before it can index past them.
cdef inline bint _bad_side(int side) noexcept nogil:
    return side != 0 and side != 1


cdef int h_best(uint64_t h, int side, int64_t* price, int64_t* qty) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    if _bad_side(side):
        return -E_SIDE
    return mc_best(b, side, price, qty)


cdef int64_t h_depth(uint64_t h, int side, int64_t n, int64_t* out) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    if _bad_side(side):
        return -E_SIDE
    return mc_depth(b, side, n, out) if n > 0 else 0


cdef int64_t h_depth_orders(uint64_t h, int side, int64_t n, int64_t* out) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    if _bad_side(side):
        return -E_SIDE
    return mc_depth_orders(b, side, n, out) if n > 0 else 0


cdef int h_get(uint64_t h, uint64_t oid, int* side, int64_t* price, int64_t* qty) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    return mc_get(b, oid, side, price, qty)


cdef int64_t h_queue_position(uint64_t h, uint64_t oid) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    return mc_queue_position(b, oid)


cdef int64_t h_count(uint64_t h) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    return mc_count(b)


cdef int64_t h_level_count(uint64_t h, int side) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    if _bad_side(side):
        return -E_SIDE
    return mc_level_count(b, side)


cdef uint64_t h_state_hash(uint64_t h) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL or _use(b) < 0:
        return 0
    return mc_state_hash(b)


cdef int64_t h_pending_events(uint64_t h) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    return mc_pending_events(b)


cdef int64_t h_drain_events(uint64_t h, mc_event* out, int64_t cap) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    return mc_drain_events(b, out, cap) if cap > 0 else 0


cdef int64_t h_drain_events_owner(uint64_t h, uint64_t owner, mc_event* out,
                                  int64_t cap) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    # cap 0 has a meaning of its own here (drop the events before owner's first), so a
    # negative count cannot be read as 0 the way drain_events reads it: refused, nothing taken
    if cap < 0:
        return -E_COMMAND
    return mc_drain_events_owner(b, owner, out, cap)


cdef int h_clear_events(uint64_t h) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    mc_clear_events(b)
    return 0


cdef int64_t h_snapshot_size(uint64_t h) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    return mc_snapshot_size(b)


cdef int64_t h_snapshot_write(uint64_t h, uint8_t* out, int64_t cap) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    cdef int rc = _use(b)
    if rc < 0:
        return rc
    return mc_snapshot_write(b, out, cap)


cdef int h_snapshot_restore(uint64_t h, const uint8_t* data, int64_t n) noexcept nogil:
    cdef mc_book* b = _bk(h)
    if b == NULL:
        return -E_HANDLE
    if mc_feed_view(b):
        return -E_READONLY      # as restore() refuses a feed replayer's book
    cdef int rc = _entry(b)
    if rc < 0:
        return rc
    return mc_snapshot_restore(b, data, n)


cdef int h_engine_set_time(uint64_t h, int64_t ts_ns) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    mc_engine_set_time(e, ts_ns)
    return 0


cdef int64_t h_engine_submit(uint64_t h, uint32_t symbol, uint64_t oid, int side, int64_t price,
                             int64_t qty, int tif, uint64_t owner, int post_only) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_submit(e, symbol, oid, side, price, qty, tif, owner, post_only)


cdef int64_t h_engine_market(uint64_t h, uint32_t symbol, uint64_t oid, int side, int64_t qty,
                             uint64_t owner) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_market(e, symbol, oid, side, qty, owner)


cdef int64_t h_engine_cancel(uint64_t h, uint32_t symbol, uint64_t oid) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_cancel(e, symbol, oid)


cdef int64_t h_engine_modify(uint64_t h, uint32_t symbol, uint64_t oid, int64_t qty,
                             int64_t price) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_modify(e, symbol, oid, qty, price)


cdef int64_t h_engine_cancel_by(uint64_t h, uint32_t symbol, uint64_t oid,
                                uint64_t owner) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_cancel_by(e, symbol, oid, owner)


cdef int64_t h_engine_modify_by(uint64_t h, uint32_t symbol, uint64_t oid, int64_t qty,
                                int64_t price, uint64_t owner) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_modify_by(e, symbol, oid, qty, price, owner)


cdef int64_t h_engine_process(uint64_t h, const mc_command* cmds, int64_t n) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_process(e, cmds, n) if n > 0 else 0


cdef uint64_t h_engine_book(uint64_t h, uint32_t symbol) noexcept nogil:
    cdef mc_engine* e = _en(h)
    # busy: add_symbol grows the symbol index and the book array under the engine's hold (a
    # realloc), so even this lookup would read memory that is being freed
    if e == NULL or e.busy:
        return 0
    cdef mc_book* b = mc_engine_book(e, symbol)
    return b.handle if b != NULL else 0


cdef int h_engine_get(uint64_t h, uint64_t oid, uint32_t* symbol, int* side, int64_t* price,
                      int64_t* qty) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_get(e, oid, symbol, side, price, qty)


cdef int64_t h_engine_count(uint64_t h) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_count(e)


cdef uint64_t h_engine_state_hash(uint64_t h) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL or e.busy:
        return 0
    return mc_engine_state_hash(e)


cdef int64_t h_engine_pending_events(uint64_t h) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_pending_events(e)


cdef int64_t h_engine_drain_events(uint64_t h, mc_event* out, int64_t cap) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    return mc_engine_drain_events(e, out, cap) if cap > 0 else 0


cdef int64_t h_engine_drain_events_owner(uint64_t h, uint64_t owner, mc_event* out,
                                         int64_t cap) noexcept nogil:
    cdef mc_engine* e = _en(h)
    if e == NULL:
        return -E_HANDLE
    if e.busy:
        return -E_BUSY
    if cap < 0:                 # as h_drain_events_owner
        return -E_COMMAND
    return mc_engine_drain_events_owner(e, owner, out, cap)


cdef extern from "matchcore.h":
    # Declared opaque on the Cython side: the C cast in the assignments below is to the
    # header's own function-pointer types, so the C compiler checks the table layout.
    ctypedef void* mc_apply_fn
    ctypedef void* mc_valid_fn
    ctypedef void* mc_best_fn
    ctypedef void* mc_book_clear_fn
    ctypedef void* mc_book_copy_fn
    ctypedef void* mc_book_free_fn
    ctypedef void* mc_book_new_fn
    ctypedef void* mc_cancel_fn
    ctypedef void* mc_cancel_by_fn
    ctypedef void* mc_modify_by_fn
    ctypedef void* mc_engine_cancel_by_fn
    ctypedef void* mc_engine_modify_by_fn
    ctypedef void* mc_clear_events_fn
    ctypedef void* mc_count_fn
    ctypedef void* mc_depth_fn
    ctypedef void* mc_drain_events_fn
    ctypedef void* mc_drain_events_owner_fn
    ctypedef void* mc_engine_book_fn
    ctypedef void* mc_engine_cancel_fn
    ctypedef void* mc_engine_count_fn
    ctypedef void* mc_engine_drain_events_fn
    ctypedef void* mc_engine_drain_events_owner_fn
    ctypedef void* mc_engine_get_fn
    ctypedef void* mc_engine_market_fn
    ctypedef void* mc_engine_modify_fn
    ctypedef void* mc_engine_pending_events_fn
    ctypedef void* mc_engine_process_fn
    ctypedef void* mc_engine_set_time_fn
    ctypedef void* mc_engine_state_hash_fn
    ctypedef void* mc_engine_submit_fn
    ctypedef void* mc_get_fn
    ctypedef void* mc_level_count_fn
    ctypedef void* mc_market_fn
    ctypedef void* mc_modify_fn
    ctypedef void* mc_pending_events_fn
    ctypedef void* mc_process_fn
    ctypedef void* mc_queue_position_fn
    ctypedef void* mc_set_time_fn
    ctypedef void* mc_snapshot_restore_fn
    ctypedef void* mc_snapshot_size_fn
    ctypedef void* mc_snapshot_write_fn
    ctypedef void* mc_state_hash_fn
    ctypedef void* mc_submit_fn
    ctypedef struct h_event "mc_event":
        long long ts_ns
        unsigned long long order_id
        unsigned long long maker_id
        long long price
        long long qty
        unsigned long long owner
        unsigned long long maker_owner
        unsigned int symbol
        unsigned char kind
        unsigned char side
        unsigned char reason
        unsigned char _pad
    ctypedef struct h_command "mc_command":
        long long ts_ns
        unsigned long long order_id
        long long price
        long long qty
        unsigned long long owner
        unsigned int symbol
        unsigned char kind
        unsigned char side
        unsigned char tif
        unsigned char post_only
    ctypedef struct mc_api_v2:
        uint32_t version
        uint32_t size
        uint32_t event_size
        uint32_t command_size
        mc_book_new_fn book_new
        mc_book_free_fn book_free
        mc_book_copy_fn book_copy
        mc_book_clear_fn book_clear
        mc_valid_fn book_valid
        mc_valid_fn engine_valid
        mc_set_time_fn set_time
        mc_submit_fn submit
        mc_market_fn market
        mc_cancel_fn cancel
        mc_modify_fn modify
        mc_apply_fn apply
        mc_process_fn process
        mc_best_fn best
        mc_depth_fn depth
        mc_depth_fn depth_orders
        mc_get_fn get
        mc_queue_position_fn queue_position
        mc_count_fn count
        mc_level_count_fn level_count
        mc_state_hash_fn state_hash
        mc_pending_events_fn pending_events
        mc_drain_events_fn drain_events
        mc_drain_events_owner_fn drain_events_owner
        mc_clear_events_fn clear_events
        mc_snapshot_size_fn snapshot_size
        mc_snapshot_write_fn snapshot_write
        mc_snapshot_restore_fn snapshot_restore
        mc_engine_set_time_fn engine_set_time
        mc_engine_submit_fn engine_submit
        mc_engine_market_fn engine_market
        mc_engine_cancel_fn engine_cancel
        mc_engine_modify_fn engine_modify
        mc_engine_process_fn engine_process
        mc_engine_book_fn engine_book
        mc_engine_get_fn engine_get
        mc_engine_count_fn engine_count
        mc_engine_state_hash_fn engine_state_hash
        mc_engine_pending_events_fn engine_pending_events
        mc_engine_drain_events_fn engine_drain_events
        mc_engine_drain_events_owner_fn engine_drain_events_owner
        mc_cancel_by_fn cancel_by
        mc_modify_by_fn modify_by
        mc_engine_cancel_by_fn engine_cancel_by
        mc_engine_modify_by_fn engine_modify_by
    int MC_API_VERSION
    const char* MC_CAPSULE_NAME


cdef mc_api_v2 _api
_api.version = MC_API_VERSION
_api.size = sizeof(mc_api_v2)
_api.event_size = sizeof(h_event)
_api.command_size = sizeof(h_command)
_api.book_new = <mc_book_new_fn>h_book_new
_api.book_free = <mc_book_free_fn>h_book_free
_api.book_copy = <mc_book_copy_fn>h_book_copy
_api.book_clear = <mc_book_clear_fn>h_book_clear
_api.book_valid = <mc_valid_fn>h_book_valid
_api.engine_valid = <mc_valid_fn>h_engine_valid
_api.set_time = <mc_set_time_fn>h_set_time
_api.submit = <mc_submit_fn>h_submit
_api.market = <mc_market_fn>h_market
_api.cancel = <mc_cancel_fn>h_cancel
_api.modify = <mc_modify_fn>h_modify
_api.apply = <mc_apply_fn>h_apply
_api.process = <mc_process_fn>h_process
_api.best = <mc_best_fn>h_best
_api.depth = <mc_depth_fn>h_depth
_api.depth_orders = <mc_depth_fn>h_depth_orders
_api.get = <mc_get_fn>h_get
_api.queue_position = <mc_queue_position_fn>h_queue_position
_api.count = <mc_count_fn>h_count
_api.level_count = <mc_level_count_fn>h_level_count
_api.state_hash = <mc_state_hash_fn>h_state_hash
_api.pending_events = <mc_pending_events_fn>h_pending_events
_api.drain_events = <mc_drain_events_fn>h_drain_events
_api.drain_events_owner = <mc_drain_events_owner_fn>h_drain_events_owner
_api.clear_events = <mc_clear_events_fn>h_clear_events
_api.snapshot_size = <mc_snapshot_size_fn>h_snapshot_size
_api.snapshot_write = <mc_snapshot_write_fn>h_snapshot_write
_api.snapshot_restore = <mc_snapshot_restore_fn>h_snapshot_restore
_api.engine_set_time = <mc_engine_set_time_fn>h_engine_set_time
_api.engine_submit = <mc_engine_submit_fn>h_engine_submit
_api.engine_market = <mc_engine_market_fn>h_engine_market
_api.engine_cancel = <mc_engine_cancel_fn>h_engine_cancel
_api.engine_modify = <mc_engine_modify_fn>h_engine_modify
_api.engine_process = <mc_engine_process_fn>h_engine_process
_api.engine_book = <mc_engine_book_fn>h_engine_book
_api.engine_get = <mc_engine_get_fn>h_engine_get
_api.engine_count = <mc_engine_count_fn>h_engine_count
_api.engine_state_hash = <mc_engine_state_hash_fn>h_engine_state_hash
_api.engine_pending_events = <mc_engine_pending_events_fn>h_engine_pending_events
_api.engine_drain_events = <mc_engine_drain_events_fn>h_engine_drain_events
_api.engine_drain_events_owner = <mc_engine_drain_events_owner_fn>h_engine_drain_events_owner
_api.cancel_by = <mc_cancel_by_fn>h_cancel_by
_api.modify_by = <mc_modify_by_fn>h_modify_by
_api.engine_cancel_by = <mc_engine_cancel_by_fn>h_engine_cancel_by
_api.engine_modify_by = <mc_engine_modify_by_fn>h_engine_modify_by

_C_API = PyCapsule_New(<void*>&_api, MC_CAPSULE_NAME, NULL)

API_VERSION = MC_API_VERSION

_FIELDS = (
    "book_new",
    "book_free",
    "book_copy",
    "book_clear",
    "book_valid",
    "engine_valid",
    "set_time",
    "submit",
    "market",
    "cancel",
    "modify",
    "apply",
    "process",
    "best",
    "depth",
    "depth_orders",
    "get",
    "queue_position",
    "count",
    "level_count",
    "state_hash",
    "pending_events",
    "drain_events",
    "drain_events_owner",
    "clear_events",
    "snapshot_size",
    "snapshot_write",
    "snapshot_restore",
    "engine_set_time",
    "engine_submit",
    "engine_market",
    "engine_cancel",
    "engine_modify",
    "engine_process",
    "engine_book",
    "engine_get",
    "engine_count",
    "engine_state_hash",
    "engine_pending_events",
    "engine_drain_events",
    "engine_drain_events_owner",
    "cancel_by",
    "modify_by",
    "engine_cancel_by",
    "engine_modify_by",
)


def c_api_capsule():
    """The PyCapsule ``matchcore._capi._C_API`` holding a ``const mc_api_v2*``.

    >>> c_api_capsule()  # doctest: +ELLIPSIS
    <capsule object "matchcore._capi._C_API" at ...>
    """
    return _C_API


def c_api_table_address():
    """Address of the ``mc_api_v2`` table (for a C library loaded with ctypes/cffi)."""
    return <size_t>&_api


def c_api_addresses():
    """{table field name: function address as int} for ctypes, cffi and Numba (llvmlite).

    Signatures are those of include/matchcore.h; every function runs without the GIL.

    >>> import ctypes; addr = c_api_addresses()
    >>> count = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p)(addr["count"])
    """
    cdef size_t* p = <size_t*>&_api.book_new
    return {name: p[i] for i, name in enumerate(_FIELDS)}


def get_include():
    """Directory holding ``matchcore.h`` (add it to the C compiler's include path).

    >>> import os; os.path.exists(os.path.join(get_include(), "matchcore.h"))
    True
    """
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


def header_layout():
    """Sizes and field offsets of ``mc_event`` / ``mc_command`` as the C compiler laid them out
    from matchcore.h (tests compare them with EVENT_DTYPE / COMMAND_DTYPE)."""
    cdef h_event e
    cdef h_command c
    cdef size_t eb = <size_t>&e, cb = <size_t>&c
    return {
        "mc_event": (sizeof(h_event), {
            "ts_ns": <size_t>&e.ts_ns - eb, "order_id": <size_t>&e.order_id - eb,
            "maker_id": <size_t>&e.maker_id - eb, "price": <size_t>&e.price - eb,
            "qty": <size_t>&e.qty - eb, "owner": <size_t>&e.owner - eb,
            "maker_owner": <size_t>&e.maker_owner - eb, "symbol": <size_t>&e.symbol - eb,
            "kind": <size_t>&e.kind - eb, "side": <size_t>&e.side - eb,
            "reason": <size_t>&e.reason - eb, "_pad": <size_t>&e._pad - eb}),
        "mc_command": (sizeof(h_command), {
            "ts_ns": <size_t>&c.ts_ns - cb, "order_id": <size_t>&c.order_id - cb,
            "price": <size_t>&c.price - cb, "qty": <size_t>&c.qty - cb,
            "owner": <size_t>&c.owner - cb, "symbol": <size_t>&c.symbol - cb,
            "kind": <size_t>&c.kind - cb, "side": <size_t>&c.side - cb,
            "tif": <size_t>&c.tif - cb, "post_only": <size_t>&c.post_only - cb}),
    }
