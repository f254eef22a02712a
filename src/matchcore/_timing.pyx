# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Per-message latency measured inside compiled code (no Python in the timed region)."""

from libc.stdint cimport int64_t
cimport numpy as cnp
import numpy as np

from matchcore._core cimport OrderBook, mc_book, mc_command, mc_apply
from matchcore._core import COMMAND_DTYPE as _COMMAND_DTYPE

cnp.import_array()

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec* ts)
    int CLOCK_MONOTONIC


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


def clock_overhead_ns(Py_ssize_t n=100000):
    """Median cost of one back-to-back pair of clock reads (ns): what every sample includes."""
    cdef cnp.ndarray[int64_t] d = np.empty(n, dtype=np.int64)
    cdef Py_ssize_t i
    cdef int64_t t0, t1
    with nogil:
        for i in range(n):
            t0 = now_ns()
            t1 = now_ns()
            d[i] = t1 - t0
    return float(np.median(d))


def process_timed(OrderBook book, commands):
    """Apply commands one by one, timing each inside the compiled loop.

    Returns an int64 array of per-message service times in ns (clock read before and after each
    message). Events are produced as usual and discarded afterwards.
    """
    cdef cnp.ndarray arr = np.ascontiguousarray(commands)
    if arr.dtype != _COMMAND_DTYPE:
        raise TypeError("process_timed() needs a COMMAND_DTYPE array")
    cdef Py_ssize_t n = arr.shape[0], i
    cdef cnp.ndarray[int64_t] lat = np.empty(n, dtype=np.int64)
    cdef int64_t* out = <int64_t*>cnp.PyArray_DATA(lat)
    cdef const mc_command* cmds = <const mc_command*>cnp.PyArray_DATA(arr)
    cdef mc_book* b = book._b
    cdef int64_t start = b.n_ev, t0, t1
    with nogil:
        for i in range(n):
            t0 = now_ns()
            mc_apply(b, &cmds[i])
            t1 = now_ns()
            out[i] = t1 - t0
            b.n_ev = start
    return lat
