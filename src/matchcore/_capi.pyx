# cython: language_level=3
"""The C entry to the compiled core: the `mc_api_v1` function table of include/matchcore.h.

The table holds pointers to the very functions the Python methods call (cimported from
matchcore._core and matchcore._engine): one implementation behind every entry point. It is
published the customary way, as the PyCapsule ``matchcore._capi._C_API`` (C/C++/Cython:
``mc_import_api()`` in the header), and as plain addresses for ctypes, cffi and Numba.
"""

import os

from libc.stdint cimport uint32_t
from cpython.pycapsule cimport PyCapsule_New

from matchcore._core cimport (
    mc_book_new,
    mc_book_free,
    mc_book_copy,
    mc_book_clear,
    mc_set_time,
    mc_submit,
    mc_market,
    mc_cancel,
    mc_modify,
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
)
from matchcore._engine cimport (
    mc_engine_set_time,
    mc_engine_submit,
    mc_engine_market,
    mc_engine_cancel,
    mc_engine_modify,
    mc_engine_process,
    mc_engine_book,
    mc_engine_get,
    mc_engine_count,
    mc_engine_state_hash,
    mc_engine_pending_events,
    mc_engine_drain_events,
    mc_engine_drain_events_owner,
)

cdef extern from "matchcore.h":
    # Declared opaque on the Cython side: the C cast in the assignments below is to the
    # header's own function-pointer types, so the C compiler checks the table layout.
    ctypedef void* mc_apply_fn
    ctypedef void* mc_best_fn
    ctypedef void* mc_book_clear_fn
    ctypedef void* mc_book_copy_fn
    ctypedef void* mc_book_free_fn
    ctypedef void* mc_book_new_fn
    ctypedef void* mc_cancel_fn
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
    ctypedef struct mc_api_v1:
        uint32_t version
        uint32_t size
        uint32_t event_size
        uint32_t command_size
        mc_book_new_fn book_new
        mc_book_free_fn book_free
        mc_book_copy_fn book_copy
        mc_book_clear_fn book_clear
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
    int MC_API_VERSION
    const char* MC_CAPSULE_NAME


cdef mc_api_v1 _api
_api.version = MC_API_VERSION
_api.size = sizeof(mc_api_v1)
_api.event_size = sizeof(h_event)
_api.command_size = sizeof(h_command)
_api.book_new = <mc_book_new_fn>mc_book_new
_api.book_free = <mc_book_free_fn>mc_book_free
_api.book_copy = <mc_book_copy_fn>mc_book_copy
_api.book_clear = <mc_book_clear_fn>mc_book_clear
_api.set_time = <mc_set_time_fn>mc_set_time
_api.submit = <mc_submit_fn>mc_submit
_api.market = <mc_market_fn>mc_market
_api.cancel = <mc_cancel_fn>mc_cancel
_api.modify = <mc_modify_fn>mc_modify
_api.apply = <mc_apply_fn>mc_apply
_api.process = <mc_process_fn>mc_process
_api.best = <mc_best_fn>mc_best
_api.depth = <mc_depth_fn>mc_depth
_api.depth_orders = <mc_depth_fn>mc_depth_orders
_api.get = <mc_get_fn>mc_get
_api.queue_position = <mc_queue_position_fn>mc_queue_position
_api.count = <mc_count_fn>mc_count
_api.level_count = <mc_level_count_fn>mc_level_count
_api.state_hash = <mc_state_hash_fn>mc_state_hash
_api.pending_events = <mc_pending_events_fn>mc_pending_events
_api.drain_events = <mc_drain_events_fn>mc_drain_events
_api.drain_events_owner = <mc_drain_events_owner_fn>mc_drain_events_owner
_api.clear_events = <mc_clear_events_fn>mc_clear_events
_api.snapshot_size = <mc_snapshot_size_fn>mc_snapshot_size
_api.snapshot_write = <mc_snapshot_write_fn>mc_snapshot_write
_api.snapshot_restore = <mc_snapshot_restore_fn>mc_snapshot_restore
_api.engine_set_time = <mc_engine_set_time_fn>mc_engine_set_time
_api.engine_submit = <mc_engine_submit_fn>mc_engine_submit
_api.engine_market = <mc_engine_market_fn>mc_engine_market
_api.engine_cancel = <mc_engine_cancel_fn>mc_engine_cancel
_api.engine_modify = <mc_engine_modify_fn>mc_engine_modify
_api.engine_process = <mc_engine_process_fn>mc_engine_process
_api.engine_book = <mc_engine_book_fn>mc_engine_book
_api.engine_get = <mc_engine_get_fn>mc_engine_get
_api.engine_count = <mc_engine_count_fn>mc_engine_count
_api.engine_state_hash = <mc_engine_state_hash_fn>mc_engine_state_hash
_api.engine_pending_events = <mc_engine_pending_events_fn>mc_engine_pending_events
_api.engine_drain_events = <mc_engine_drain_events_fn>mc_engine_drain_events
_api.engine_drain_events_owner = <mc_engine_drain_events_owner_fn>mc_engine_drain_events_owner

_C_API = PyCapsule_New(<void*>&_api, MC_CAPSULE_NAME, NULL)

API_VERSION = MC_API_VERSION

_FIELDS = (
    "book_new",
    "book_free",
    "book_copy",
    "book_clear",
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
)


def c_api_capsule():
    """The PyCapsule ``matchcore._capi._C_API`` holding a ``const mc_api_v1*``.

    >>> c_api_capsule()  # doctest: +ELLIPSIS
    <capsule object "matchcore._capi._C_API" at ...>
    """
    return _C_API


def c_api_table_address():
    """Address of the ``mc_api_v1`` table (for a C library loaded with ctypes/cffi)."""
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
