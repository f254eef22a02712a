# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled order book: C structs, one matching loop for both sides, events in a buffer.

Everything below the ``OrderBook`` class is plain C (``noexcept nogil``): no Python objects, no
exceptions, no allocation per order in steady state. Growth (order pool, level pool, ladders,
id index, event buffer) happens in ``_ensure`` before an operation touches the book, so an
allocation failure leaves the book unchanged and is reported as ``-MC_ERR_NOMEM``.
"""

cimport cython
from libc.stdint cimport int64_t, uint64_t, int32_t, uint32_t, uint8_t, INT64_MIN, INT64_MAX
from libc.stdlib cimport calloc, malloc, realloc, free
from libc.string cimport memcpy, memmove, memset, memcmp

import weakref

import numpy as np
cimport numpy as cnp
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.list cimport PyList_GET_ITEM
from cpython.ref cimport PyObject
from cpython.pythread cimport PyThread_get_thread_ident
from matchcore._handles cimport mc_handle_new, mc_handle_release, mc_handle_set, MC_H_BOOK
from matchcore._map cimport (
    GOLDEN, _alloc_aligned, _home, _map_init, _map_find, _map_probe,
    _map_probe_from, _map_put, _map_fill, _map_erase, _map_erase_at, _map_clear, _map_grow, _map_dup,
    _map_prefetch, _prefetch, _check_map,
)
from enum import IntEnum

from matchcore._args import refuse_masked

cnp.import_array()

cdef extern from "mc_clock.h" nogil:
    int64_t mc_tsc()

# The module is one C unit so that gcc can inline the order path into the batch loops and the
# per-call methods (across extension modules every call would stay a call); its concepts live in
# the parts below, read in this order (module-level statements run in it).
include "_core_memory.pxi"
include "_core_ladder.pxi"
include "_core_orders.pxi"
include "_core_queries.pxi"
include "_core_python.pxi"
include "_core_book.pxi"
