# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Per-message latency measured inside compiled code (no Python in the timed region).

Two clocks: ``"monotonic"`` (``clock_gettime(CLOCK_MONOTONIC)``, ns) and ``"tsc"`` (the CPU
time-stamp counter behind a load fence, calibrated against CLOCK_MONOTONIC). ``"auto"`` picks the
TSC when the CPU says it is invariant (``constant_tsc`` and ``nonstop_tsc``), else the monotonic
clock. Raw readings are stored in a preallocated array inside the loop and converted to ns after
it, so the timed region holds nothing but the two clock reads and the book call.
"""

from libc.stdint cimport int64_t, uint8_t
cimport numpy as cnp
import threading

import numpy as np

from libc.string cimport memset, memcpy
from cpython.exc cimport PyErr_CheckSignals
from matchcore._core cimport (OrderBook, mc_book, mc_command, mc_event, mc_apply, mc_process,
                              mc_reserve_events, MC_ERR_NOMEM, _commands_array, mc_busy_enter,
                              mc_busy_leave, mc_check_busy, MC_BUSY_TIMED, mc_bool_arg)
from matchcore._engine cimport (mc_engine, mc_engine_apply, mc_engine_set_emit,
                                mc_engine_busy_enter, mc_engine_busy_leave)
from matchcore._core import EVENT_DTYPE as _EVENT_DTYPE, ReadOnlyBookError

cnp.import_array()

cdef extern from "mc_clock.h" nogil:
    int64_t mc_mono_ns()
    int64_t mc_tsc()
    void mc_cpu_relax()
    int MC_HAVE_TSC

cdef enum:
    CLK_MONO = 0
    CLK_TSC = 1

cdef inline int64_t _read(int clk) noexcept nogil:
    if clk == CLK_TSC:
        return mc_tsc()
    return mc_mono_ns()


_tsc_per_ns = None   # calibrated once per process


def _tsc_invariant():
    if not MC_HAVE_TSC:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return "constant_tsc" in flags and "nonstop_tsc" in flags
    except OSError:
        pass
    return False


def resolve_clock(clock="auto"):
    """The clock name a run will use: ``"tsc"`` or ``"monotonic"`` (``"auto"`` resolved).

    >>> resolve_clock("monotonic")
    'monotonic'
    """
    if clock == "auto":
        return "tsc" if _tsc_invariant() else "monotonic"
    if clock == "tsc":
        if not MC_HAVE_TSC:
            raise ValueError("this CPU has no time-stamp counter; use clock='monotonic'")
        return "tsc"
    if clock == "monotonic":
        return "monotonic"
    raise ValueError(f"unknown clock {clock!r}: use 'auto', 'tsc' or 'monotonic'")


cdef int _clk(str name):
    return CLK_TSC if name == "tsc" else CLK_MONO


def tsc_ticks_per_ns(double duration_s=0.05):
    """TSC ticks per ns, calibrated against CLOCK_MONOTONIC by a busy wait of ``duration_s``.

    Calibrated once per process and cached: every later TSC reading of the process is converted
    with this figure, so ``duration_s`` must be finite and within [0.001, 60] s (ValueError):
    a shorter wait is swamped by the clock reads' own jitter (0 gave 1.16 ticks/ns on a
    2.6 GHz TSC, and every later figure 2.2x too large). O(duration).

    >>> tsc_ticks_per_ns() > 0
    True
    """
    global _tsc_per_ns
    if not 0.001 <= duration_s <= 60.0:
        raise ValueError(f"duration_s must be a finite number of seconds in [0.001, 60], "
                         f"got {duration_s!r}")
    if _tsc_per_ns is not None:
        return _tsc_per_ns
    cdef int64_t m0, m1, t0, t1, wait = <int64_t>(duration_s * 1e9)
    with nogil:
        m0 = mc_mono_ns()
        t0 = mc_tsc()
        while mc_mono_ns() - m0 < wait:
            mc_cpu_relax()
        t1 = mc_tsc()
        m1 = mc_mono_ns()
    _tsc_per_ns = (t1 - t0) / float(m1 - m0) if MC_HAVE_TSC else 1.0
    return _tsc_per_ns


cdef int _refuse_recorded(const mc_book* b, str what) except -1:
    # These loops apply commands straight to the C book, as the C table does: on the book of an
    # open native.Recorder they changed the live book while no record was written, so the
    # command file (and Recorder.resume, replay_commands) lost them.
    if b.journaled:
        raise ReadOnlyBookError(
            f"{what}: this OrderBook is journaled by an open native.Recorder, and a timed loop "
            f"would apply commands no record holds; time a copy (book.copy()) or close the "
            f"Recorder first")
    return 0


cdef int _timed_enter(mc_book* b, str what) except -1:
    # The book busy for a timed loop, refused again if a Recorder now journals it: the
    # arguments' conversion since the first check may run Python code (an object's
    # __array__), and another thread's in the meantime, which may have opened one.
    _refuse_recorded(b, what)
    return mc_busy_enter(b, MC_BUSY_TIMED)


def _ns_per_tick(str name):
    return 1.0 / tsc_ticks_per_ns() if name == "tsc" else 1.0


cdef void _to_ns(int64_t* a, Py_ssize_t n, double scale) noexcept nogil:
    cdef Py_ssize_t i
    if scale == 1.0:
        return
    for i in range(n):
        a[i] = <int64_t>(a[i] * scale + 0.5)


def clock_overhead_samples(Py_ssize_t n=100000, clock="auto"):
    """ns between back-to-back clock reads, ``n`` samples (int64 array): what every sample includes.

    >>> clock_overhead_samples(1000, "monotonic").shape
    (1000,)
    """
    name = resolve_clock(clock)
    cdef int clk = _clk(name)
    cdef double scale = _ns_per_tick(name)
    cdef cnp.ndarray[int64_t] d = np.empty(n, dtype=np.int64)
    cdef int64_t* p = <int64_t*>cnp.PyArray_DATA(d)
    cdef Py_ssize_t i
    cdef int64_t t0, t1
    with nogil:
        for i in range(n):
            t0 = _read(clk)
            t1 = _read(clk)
            p[i] = t1 - t0
        _to_ns(p, n, scale)
    return d


def clock_overhead_ns(Py_ssize_t n=100000, clock="auto"):
    """Median cost of one back-to-back pair of clock reads (ns): what every sample includes.

    >>> clock_overhead_ns(1000) >= 0
    True
    """
    if n < 1:       # the median of no samples: NaN and a numpy warning
        raise ValueError(f"n must be >= 1 (samples to take the median of), got {n}")
    return float(np.median(clock_overhead_samples(n, clock)))


def process_timed(OrderBook book not None, commands, clock="auto"):
    """Apply commands one by one, timing each inside the compiled loop (closed loop).

    Returns an int64 array of per-message service times in ns (clock read right before and right
    after each message; the clock pair's own cost is included, see :func:`clock_overhead_ns`).
    Events are written as usual and discarded after each message. A command the book has no
    memory for stops the loop with MemoryError (the commands before it stay applied, as with
    ``process()``). O(n + fills).

    >>> import matchcore as mc
    >>> cmds = np.zeros(3, dtype=mc.COMMAND_DTYPE); cmds["qty"] = 1; cmds["price"] = 100
    >>> cmds["order_id"] = [1, 2, 3]
    >>> process_timed(mc.OrderBook(), cmds).shape
    (3,)
    """
    _refuse_recorded(book._b, "process_timed()")
    cdef cnp.ndarray arr = _commands_array(commands, "process_timed()")
    name = resolve_clock(clock)
    cdef int clk = _clk(name)
    cdef double scale = _ns_per_tick(name)
    cdef Py_ssize_t n = arr.shape[0], i
    cdef cnp.ndarray[int64_t] lat = np.empty(n, dtype=np.int64)
    lat.fill(0)
    cdef int64_t* out = <int64_t*>cnp.PyArray_DATA(lat)
    cdef const mc_command* cmds = <const mc_command*>cnp.PyArray_DATA(arr)
    cdef mc_book* b = book._b
    cdef int64_t start, t0, t1, r
    cdef Py_ssize_t done = n
    # the book is busy while the loop runs without the GIL (another thread's call raises)
    _timed_enter(b, "process_timed()")
    try:
        start = b.n_ev
        with nogil:
            for i in range(n):
                t0 = _read(clk)
                r = mc_apply(b, &cmds[i])
                t1 = _read(clk)
                out[i] = t1 - t0
                b.n_ev = start
                # the command was not applied: stop, as process() does (the loop went on and
                # timed every later command against a book that lacked it)
                if r == -MC_ERR_NOMEM:
                    done = i
                    break
            _to_ns(out, n, scale)
    finally:
        mc_busy_leave(b)
    if done < n:
        raise MemoryError(f"matchcore: out of memory after {done} of {n} commands")
    return lat


# The latest arrival an open-loop schedule may name, in clock ticks (2**62: with the clock's own
# reading, itself below 2**62 for centuries of uptime, the sum fits int64).
cdef double _MAX_SCHEDULE_TICKS = 4611686018427387904.0


# How often a waiting open loop looks for signals, and how far ahead of a message's due time
# it must be to do so (the GIL's round trip takes well under this when no thread holds it).
_SIGNAL_CHECK_NS = 20_000_000
_SIGNAL_MARGIN_NS = 200_000


def process_open_loop(OrderBook book not None, commands, double rate=0.0, arrivals_ns=None, clock="auto"):
    """Apply commands at scheduled arrival times (open loop); latency counts from the schedule.

    Message ``i`` is due at ``t0 + i / rate`` (or ``t0 + arrivals_ns[i]`` when given, ns offsets,
    finite, >= 0 and non-decreasing); a schedule that ends beyond 2**62 clock ticks (decades)
    raises ValueError. The loop busy-waits until a message is due when it is ahead; when it is
    behind (a stall, or a rate above capacity), messages start late and their latency includes
    the wait: no coordinated omission. Returns ``(latency_ns, service_ns)``, int64 arrays:
    completion minus scheduled arrival, and completion minus actual start. Out of memory:
    MemoryError, as :func:`process_timed`. Run in the main thread, it looks for signals while
    it waits (at most every 20 ms, outside the timed region): a handler's exception (Ctrl-C's
    KeyboardInterrupt) is raised from the loop, the commands before it applied. O(n + fills).

    >>> import matchcore as mc
    >>> cmds = np.zeros(3, dtype=mc.COMMAND_DTYPE); cmds["qty"] = 1; cmds["price"] = 100
    >>> cmds["order_id"] = [1, 2, 3]
    >>> lat, svc = process_open_loop(mc.OrderBook(), cmds, rate=1e6)
    >>> bool((lat >= svc).all())
    True
    """
    _refuse_recorded(book._b, "process_open_loop()")
    cdef cnp.ndarray arr = _commands_array(commands, "process_open_loop()")
    name = resolve_clock(clock)
    cdef int clk = _clk(name)
    cdef double scale = _ns_per_tick(name)
    cdef double ticks_per_ns = 1.0 / scale
    cdef Py_ssize_t n = arr.shape[0], i
    cdef cnp.ndarray[int64_t] sched_a
    if arrivals_ns is None:
        if not rate > 0:
            raise ValueError("open loop needs rate > 0 (messages per second) or arrivals_ns")
        # (the first message is due at once, however long the gap: 0 * inf is no arrival)
        a = np.zeros(n, dtype=np.float64)
        if n > 1:
            a[1:] = np.round(np.arange(1, n, dtype=np.float64) * (1e9 / rate) * ticks_per_ns)
    else:
        a = np.asarray(arrivals_ns, dtype=np.float64)
        if a.shape != (n,):
            raise ValueError(f"arrivals_ns has shape {a.shape}, expected ({n},)")
        if not np.isfinite(a).all() or (n > 0 and a[0] < 0):
            raise ValueError("arrivals_ns must be finite ns offsets >= 0")
        if n > 1 and (np.diff(a) < 0).any():
            raise ValueError("arrivals_ns must be non-decreasing")
        a = np.round(a * ticks_per_ns)
    # The clock plus the schedule must stay an int64 tick count: a schedule beyond it (a rate
    # of 1e-12/s, say) was cast to garbage and reported negative latencies.
    if n > 0 and not a[n - 1] < _MAX_SCHEDULE_TICKS:
        raise ValueError(f"open loop schedule of {n} messages lasts {a[n - 1] * scale / 1e9:.3g} "
                         f"s, beyond what the clock counts: raise the rate")
    sched_a = a.astype(np.int64)
    cdef int64_t* sched = <int64_t*>cnp.PyArray_DATA(sched_a)
    # np.zeros may hand back untouched pages (calloc); fill them now so that no page fault
    # lands inside the timed loop
    cdef cnp.ndarray[int64_t] lat = np.empty(n, dtype=np.int64)
    cdef cnp.ndarray[int64_t] svc = np.empty(n, dtype=np.int64)
    lat.fill(0)
    svc.fill(0)
    cdef int64_t* lo = <int64_t*>cnp.PyArray_DATA(lat)
    cdef int64_t* so = <int64_t*>cnp.PyArray_DATA(svc)
    cdef const mc_command* cmds = <const mc_command*>cnp.PyArray_DATA(arr)
    cdef mc_book* b = book._b
    cdef int64_t start, t0, t1, due, base, r, next_check
    cdef int64_t check_every = <int64_t>(_SIGNAL_CHECK_NS * ticks_per_ns) + 1
    cdef int64_t check_margin = <int64_t>(_SIGNAL_MARGIN_NS * ticks_per_ns) + 1
    # Python runs signal handlers in the main thread only: elsewhere a check would take the GIL
    # (and wait for the threads holding it) for nothing
    cdef bint watch_signals = threading.current_thread() is threading.main_thread()
    cdef Py_ssize_t done = n
    _timed_enter(b, "process_open_loop()")
    try:
        start = b.n_ev
        with nogil:
            base = _read(clk)
            next_check = base + check_every
            for i in range(n):
                due = base + sched[i]
                t0 = _read(clk)
                while t0 < due:
                    # A slow schedule is one compiled call of minutes or days: signals are
                    # looked at while waiting, never between a message's two clock reads,
                    # and only where the GIL's round trip cannot make the message late
                    # (unless no such wait came for ten checks' time).
                    if watch_signals and t0 >= next_check and (due - t0 > check_margin
                                             or t0 - next_check > 10 * check_every):
                        with gil:
                            PyErr_CheckSignals()
                        next_check = _read(clk) + check_every
                    mc_cpu_relax()
                    t0 = _read(clk)
                r = mc_apply(b, &cmds[i])
                t1 = _read(clk)
                lo[i] = t1 - due
                so[i] = t1 - t0
                b.n_ev = start
                if r == -MC_ERR_NOMEM:      # not applied: stop, as process() does
                    done = i
                    break
            _to_ns(lo, n, scale)
            _to_ns(so, n, scale)
    finally:
        mc_busy_leave(b)
    if done < n:
        raise MemoryError(f"matchcore: out of memory after {done} of {n} commands")
    return lat, svc


def process_batch_ns(OrderBook book not None, commands, emit=True):
    """Wall time (ns, CLOCK_MONOTONIC) of one ``mc_process`` call over the whole batch.

    The throughput figure: no per-message clock reads. With ``emit=False`` the book writes no
    events (replay speed). Events are discarded. O(n + fills).

    >>> import matchcore as mc
    >>> cmds = np.zeros(2, dtype=mc.COMMAND_DTYPE); cmds["qty"] = 1; cmds["price"] = 100
    >>> cmds["order_id"] = [1, 2]
    >>> process_batch_ns(mc.OrderBook(), cmds) > 0
    True
    """
    cdef bint c_emit = mc_bool_arg(emit, "emit")
    _refuse_recorded(book._b, "process_batch_ns()")
    cdef cnp.ndarray arr = _commands_array(commands, "process_batch_ns()")
    cdef mc_book* b = book._b
    cdef int64_t n = arr.shape[0], done, t0, t1, start
    cdef int old_emit
    cdef const mc_command* cmds = <const mc_command*>cnp.PyArray_DATA(arr)
    _timed_enter(b, "process_batch_ns()")
    try:
        start = b.n_ev
        old_emit = b.emit
        b.emit = 1 if c_emit else 0
        with nogil:
            t0 = mc_mono_ns()
            done = mc_process(b, cmds, n)
            t1 = mc_mono_ns()
        b.n_ev = start
        b.emit = old_emit
    finally:
        mc_busy_leave(b)
    if done < n:
        raise MemoryError(f"matchcore: out of memory after {done} of {n} commands")
    return t1 - t0


def reserve_events(OrderBook book not None, int64_t n_events):
    """Grow the book's event buffer to hold ``n_events`` more events and touch every page of it,
    so that a timed batch that writes that many events pays no realloc or page fault. O(n).

    >>> import matchcore as mc
    >>> reserve_events(mc.OrderBook(), 1000)
    """
    if n_events < 0:
        raise ValueError("n_events must be >= 0")
    cdef mc_book* b = book._b
    mc_check_busy(b)
    if mc_reserve_events(b, n_events) < 0:
        raise MemoryError()
    memset(&b.ev[b.n_ev], 0, <size_t>n_events * sizeof(mc_event))


cdef inline void _hist_add(int64_t dt, const int64_t* bounds, Py_ssize_t nb, int64_t* counts,
                           int64_t* total) noexcept nogil:
    # Linear scan from the low end: service times sit in the first few buckets, so this beats a
    # binary search over ~20 bounds.
    cdef Py_ssize_t k = 0
    while k < nb and dt > bounds[k]:
        k += 1
    counts[k] += 1
    total[0] += dt


def process_histogram(target, commands, bounds_ns, counts, clock="auto", Py_ssize_t every=1,
                      Py_ssize_t skip=0):
    """Apply commands to an ``OrderBook`` or an ``Engine`` one by one, each timed inside the
    compiled loop, and add every service time to a histogram; returns the batch's events.

    ``bounds_ns``: ascending upper bucket bounds in ns (float64; a sample ``t`` falls in the
    first bucket with ``t <= bound``). ``counts``: int64 array of ``len(bounds_ns) + 2``
    entries, updated in place: one count per bucket, then the overflow bucket (+Inf), then the
    sum of all samples in clock ticks converted to ns. The events are exactly those of
    ``target.process(commands)``. Memory running out part way raises MemoryError with the
    count of commands applied (they stay applied, their service times counted) in its
    ``applied`` attribute and their events in its ``events`` attribute (absent when no memory
    was left for them either). ``every=k`` times only every k-th command (the others run
    without clock reads), for a histogram at a fraction of the clock cost, starting after
    ``skip`` untimed commands (``0 <= skip < every``; a caller that samples one command in k
    across batches passes ``(skip - len(commands)) % every`` to the next batch). No Python
    object and no allocation per command; O(n + fills + n / every * buckets in the worst
    case).

    >>> import matchcore as mc
    >>> cmds = np.zeros(3, dtype=mc.COMMAND_DTYPE); cmds["qty"] = 1; cmds["price"] = 100
    >>> cmds["order_id"] = [1, 2, 3]
    >>> bounds = np.array([1e3, 1e6]); counts = np.zeros(4, dtype=np.int64)
    >>> ev = process_histogram(mc.OrderBook(), cmds, bounds, counts)
    >>> int(counts[:3].sum()), len(ev)
    (3, 3)
    """
    from matchcore._engine import Engine

    if isinstance(target, OrderBook):
        _refuse_recorded((<OrderBook>target)._b, "process_histogram()")
    cdef cnp.ndarray arr = _commands_array(commands, "process_histogram()")
    cdef cnp.ndarray b_arr = np.ascontiguousarray(bounds_ns, dtype=np.float64)
    if b_arr.ndim != 1 or (b_arr.shape[0] > 1 and (np.diff(b_arr) <= 0).any()):
        raise ValueError("bounds_ns must be a 1-d array of strictly ascending bounds (ns)")
    if not isinstance(counts, np.ndarray) or counts.dtype != np.int64 or counts.ndim != 1 \
            or not counts.flags.c_contiguous or counts.shape[0] != b_arr.shape[0] + 2:
        raise ValueError(f"counts must be a contiguous int64 array of len(bounds_ns) + 2 = "
                         f"{b_arr.shape[0] + 2} entries")
    if not counts.flags.writeable:
        raise ValueError("counts must be a writeable array: it is updated in place")
    if np.isnan(b_arr).any():
        raise ValueError("bounds_ns must not hold NaN")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if not 0 <= skip < every:
        raise ValueError(f"skip must be in [0, every) = [0, {every}), got {skip}")
    name = resolve_clock(clock)
    cdef int clk = _clk(name)
    cdef double scale = _ns_per_tick(name)
    cdef Py_ssize_t left = skip     # untimed commands before the next timed one
    # bounds to clock ticks once, so the loop compares integers
    # (clipped: a bound beyond int64 ticks, inf included, was cast to garbage)
    cdef cnp.ndarray[int64_t] bt = np.clip(np.floor(b_arr / scale), -2.0**63,
                                           np.nextafter(2.0**63, 0)).astype(np.int64)
    cdef const int64_t* bounds = <const int64_t*>cnp.PyArray_DATA(bt)
    cdef Py_ssize_t nb = bt.shape[0]
    cdef cnp.ndarray cnt = counts
    cdef int64_t* c = <int64_t*>cnp.PyArray_DATA(cnt)
    cdef const mc_command* cmds = <const mc_command*>cnp.PyArray_DATA(arr)
    cdef Py_ssize_t n = arr.shape[0], i, done = n
    cdef int64_t t0, t1, total = 0, start, r
    cdef mc_book* b = NULL
    cdef mc_engine* e = NULL
    cdef mc_event* evp
    cdef int64_t n_ev
    cdef uint8_t emit = 1
    if isinstance(target, OrderBook):
        b = (<OrderBook>target)._b
        _timed_enter(b, "process_histogram()")     # left after the events are copied out
        start = b.n_ev
        emit = b.emit
        b.emit = 1      # the batch's events are returned, as process() returns them
        with nogil:
            for i in range(n):
                if left == 0:
                    left = every
                    t0 = _read(clk)
                    r = mc_apply(b, &cmds[i])
                    t1 = _read(clk)
                    if r != -MC_ERR_NOMEM:
                        _hist_add(t1 - t0, bounds, nb, c, &total)
                else:
                    r = mc_apply(b, &cmds[i])
                left -= 1
                if r == -MC_ERR_NOMEM:
                    done = i
                    break
        evp = &b.ev[start]
        n_ev = b.n_ev - start
    elif isinstance(target, Engine):
        target.handle      # refuses a journaled engine: this loop would bypass its journal
        e = <mc_engine*><size_t>target.raw_address
        mc_engine_busy_enter(e, MC_BUSY_TIMED)
        start = e.n_ev
        emit = e.emit
        mc_engine_set_emit(e, 1)
        with nogil:
            for i in range(n):
                if left == 0:
                    left = every
                    t0 = _read(clk)
                    r = mc_engine_apply(e, &cmds[i])
                    t1 = _read(clk)
                    if r != -MC_ERR_NOMEM:
                        _hist_add(t1 - t0, bounds, nb, c, &total)
                else:
                    r = mc_engine_apply(e, &cmds[i])
                left -= 1
                if r == -MC_ERR_NOMEM:
                    done = i
                    break
        evp = &e.ev[start]
        n_ev = e.n_ev - start
    else:
        raise TypeError(f"process_histogram needs an OrderBook or an Engine, got "
                        f"{type(target).__name__}")
    c[nb + 1] += <int64_t>(total * scale + 0.5)
    cdef cnp.ndarray out = None
    lost = False
    try:
        try:
            out = np.empty(n_ev, dtype=_EVENT_DTYPE)
            if n_ev:
                memcpy(cnp.PyArray_DATA(out), evp, n_ev * sizeof(mc_event))
        except MemoryError:
            # the commands ran but no memory is left for the array of their events
            lost = True
    finally:
        if b != NULL:
            b.n_ev = start
            b.emit = emit
            mc_busy_leave(b)
        else:
            e.n_ev = start
            mc_engine_set_emit(e, emit)
            mc_engine_busy_leave(e)
    # the count of commands applied (they stay applied), and their events when there was
    # memory for them, for a caller that accounts for them (EngineMetrics), as process() does
    if lost:
        exc = MemoryError(f"matchcore: out of memory after {done} of {n} commands (applied; "
                          "no memory was left for their events, which are lost)")
        exc.applied = done
        raise exc
    if done < n:
        exc = MemoryError(f"matchcore: out of memory after {done} of {n} commands")
        exc.applied = done
        exc.events = out
        raise exc
    return out
