# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The multi-symbol engine: one book per integer symbol id, one order-id space, per-symbol limits.

Matching happens in the books (``matchcore._core``); this module only routes commands by symbol
or by order id, applies the per-symbol limits before a book sees an order, and gathers every
book's events in one buffer. The books write straight into that buffer: around each operation
the engine lends its buffer to the book (three fields swapped), so no event is copied twice. In
Engine.process(out=...) that buffer is the caller's array, as long as it has room.
"""

from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint8_t, INT64_MAX
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memmove
cimport cython

import numpy as np
cimport numpy as cnp

from matchcore._core cimport (
    OrderBook, mc_book, mc_event, mc_command, mc_submit, mc_market, mc_cancel, mc_modify,
    mc_cancel_by, mc_modify_by,
    mc_get, mc_find, mc_count, mc_state_hash, mc_small_int, mc_filter_events_owner, mc_depth,
    MC_BUY, MC_SELL, MC_GTC, MC_IOC, MC_FOK, MC_EV_FILL, MC_EV_REJECTED, MC_CMD_SUBMIT,
    MC_CMD_MARKET,
    MC_CMD_CANCEL, MC_CMD_MODIFY, MC_ERR_NOMEM, MC_R_NONE, MC_R_INVALID_QTY, MC_R_INVALID_PRICE,
    MC_R_DUPLICATE_ORDER_ID, MC_R_ORDER_NOT_FOUND, MC_R_POST_ONLY_WOULD_CROSS,
    MC_R_INVALID_COMMAND, MC_R_UNKNOWN_SYMBOL, MC_R_PRICE_NOT_ON_TICK, MC_R_PRICE_OUTSIDE_BAND,
    MC_R_QTY_ABOVE_MAX, MC_R_NOTIONAL_ABOVE_MAX, MC_SNAP_E_CORRUPT,
    _i64_of, _u64_of, _cint_of, _u64_order_id, _u64_owner, _i64_price, _i64_qty, _i64_ts_ns,
    _cint_side, _cint_tif, _out_buffer, _commands_array, mc_result_block,
    mc_oom_before,
    _int_small, _int_value, mc_int_arg, mc_i64_arg, mc_stp_arg, mc_capacity_arg,
    mc_bool_arg, mc_flag_of, _ev_of, MC_INIT_TAKEN, MC_INIT_BARE,
)
from matchcore._map cimport (
    mc_map, _map_init, _map_find, _map_upsert, _map_probe, _map_erase_at, _map_prefetch,
    _check_map,
)
from matchcore._core cimport mc_level, mc_order
from matchcore._core cimport (
    mc_raise_busy, mc_book_host, MC_BUSY_ENGINE, MC_BUSY_JOURNAL, MC_BUSY_QUERY,
    MC_GUARD_HOSTED, MC_GUARD_NO_EVENTS, MC_BUSY_HELD, mc_hold_register, mc_hold_unregister,
    mc_held_by_me,
    mc_book_pickle_args, mc_book_held_state, mc_book_copy_into, mc_book_restore, mc_ev_bound,
    mc_side_byte,
    mc_deep_mode, mc_deep_timed, mc_ahead_order, mc_ahead_level,
    DEEP_ORDERS, DEEP_MIN_BATCH, DEEP_CHUNK, DEEP_EPOCH,
    DEEP_AHEAD_INDEX, DEEP_AHEAD_ORDER, DEEP_AHEAD_LEVEL, DEEP_RING,
)

cdef extern from "mc_clock.h" nogil:
    int64_t mc_tsc()
from matchcore.durability._journal cimport (
    JournalWriter, mc_journal, mc_journal_command, mc_journal_fills, mc_journal_commit,
    mc_journal_commit_call,
)
from matchcore._handles cimport mc_handle_new, mc_handle_release, MC_H_ENGINE
from matchcore._core import (
    COMMAND_DTYPE, EVENT_DTYPE, OrderRejected, Reason, STP, OrderBook as _OrderBook,
    SnapshotError, _PICKLE_FORMAT, _check_pickle_format, _subclass_state, _set_subclass_state,
    _subclass_new_args, _subclass_new,
    _book_from_pickle, _HeldState, _Params, _MAX_CAPACITY,
)
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF

cnp.import_array()

# One C unit, so that gcc inlines the routing into the batch loops; its concepts live in the parts
# below, read in this order (module-level statements run in it).
include "_engine_books.pxi"
include "_engine_loops.pxi"
include "_engine_class.pxi"
include "_engine_limits.pxi"
include "_engine_copy.pxi"
