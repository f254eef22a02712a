"""Measurements: closed loop, open loop, rate sweep, throughput and scaling.

Every per-message time comes from the compiled loops in :mod:`matchcore._timing` (clock read
before and after each message, stored into a preallocated array); Python only builds books and
summarises arrays. Each measured run starts from a copy of a book built once from the workload's
setup, after a warm-up run of the same flow on another copy, so that page faults and cold caches
of the first pass do not land in the figures; each timed copy's event buffer is grown and written
beforehand (:func:`timed_copy`), so that no growth of it lands there either.
"""
from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np

from matchcore import EVENT_DTYPE, EventKind, OrderBook, Reason
from matchcore import _timing
from matchcore._core import _flag_arg

#: The percentiles every report shows.
PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)
PCT_NAMES = ("p50", "p90", "p99", "p99.9", "p99.99")


def percentiles(samples_ns, qs=PERCENTILES) -> list[float]:
    """Nearest-rank percentiles (each one a real sample) of an array of ns: percentile ``q`` of
    ``n`` samples is the ``ceil(q / 100 * n)``-th smallest (at least the first), with ``q``
    taken as the decimal it is written as. O(n log k) for k percentiles.

    >>> percentiles(np.arange(1, 101), (50, 99))
    [50.0, 99.0]
    >>> percentiles(np.arange(1, 1001), (99.9,))
    [999.0]
    """
    a = np.asarray(samples_ns).ravel()
    n = a.size
    # every percentile checked first: of no samples, 150 or -3 gave NaN where the same
    # percentile of one sample raised
    qs = [float(q) for q in qs]
    for q in qs:
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentiles must lie in [0, 100], got {q}")
    if n == 0:
        return [float("nan")] * len(qs)
    ranks = []
    for q in qs:
        # the exact rank: in floating point 99.9 / 100 * 1000 is 999.0000000000001, whose
        # ceiling (numpy's inverted_cdf too) named the 1000th sample, the max, as p99.9 of 1,000
        ranks.append(max(math.ceil(Fraction(repr(q)) * n / 100), 1))
    if not ranks:
        return []
    part = np.partition(a, sorted(set(r - 1 for r in ranks)))
    return [float(part[r - 1]) for r in ranks]


def hdr_curve(samples_ns, points: int = 48) -> dict:
    """The percentile distribution for an HDR-style plot: percentiles ``100 * (1 - 10**-x)`` for
    x from 0 to log10(n), evenly spaced, and the values there (ns, nearest rank), then the max
    at percentile 100. O(n log n).

    >>> c = hdr_curve(np.arange(1000)); c["percentile"][-1], c["value_ns"][-1]
    (100.0, 999.0)
    """
    a = np.sort(np.asarray(samples_ns).ravel())
    n = a.size
    if n == 0:
        return {"percentile": [], "value_ns": []}
    xs = np.linspace(0.0, np.log10(n), points)
    qs = 100.0 * (1.0 - 10.0 ** -xs)
    # rank ceil(n * (1 - 10**-x)) = n - floor(n * 10**-x), with the samples above it counted
    # as the whole number they are meant to be: ceil(qs / 100 * n) took 99.9% of 1,000
    # samples as 999.0000000000001, the max, where the nearest rank is the 999th
    above = n * 10.0 ** -xs
    whole = np.round(above)
    above = np.where(np.abs(above - whole) <= 1e-9 * np.maximum(whole, 1.0), whole, above)
    idx = np.minimum(n - np.floor(above).astype(np.int64) - 1, n - 1).clip(0)
    # The last point, 100 * (1 - 1/n), is the second largest sample for most n (its rank is
    # n - 1, up to rounding): the worst sample, the one a tail plot is for, was left off
    return {"percentile": [float(q) for q in qs] + [100.0],
            "value_ns": [float(a[i]) for i in idx] + [float(a[-1])]}


def summarize(samples_ns, overhead_ns: float = 0.0) -> dict:
    """Count, percentiles (raw and with the clock overhead subtracted), max, mean (ns).

    >>> s = summarize(np.array([10, 20, 30, 40]), overhead_ns=5)
    >>> s["p50"], s["max"], s["net"]["p50"]
    (20.0, 40.0, 15.0)
    """
    a = np.asarray(samples_ns)
    ps = percentiles(a)
    out = {"n": int(a.size)}
    out.update({name: v for name, v in zip(PCT_NAMES, ps)})
    out["max"] = float(a.max()) if a.size else float("nan")
    out["min"] = float(a.min()) if a.size else float("nan")
    out["mean"] = float(a.mean()) if a.size else float("nan")
    out["net"] = {name: max(v - overhead_ns, 0.0) for name, v in zip(PCT_NAMES, ps)}
    out["net"]["max"] = max(out["max"] - overhead_ns, 0.0)
    out["net"]["mean"] = max(out["mean"] - overhead_ns, 0.0)
    return out


def reading_step_ns(samples_ns) -> float | None:
    """The finest step the samples show: the smallest difference between two distinct values,
    of those seen in at least 0.1% of the samples (``None`` when fewer than two are). Of many
    back-to-back clock pairs, the step in which the clock advances as read, which can be far
    coarser than its tick. A pair stretched by an interrupt reads anything: two such at 1182
    and 1183 ns among 200,000 samples on a 10 ns step are not a 1 ns step. O(n log n).

    >>> reading_step_ns(np.array([20, 10, 30, 20, 341, 351]))
    10.0
    >>> reading_step_ns(np.array([20] * 1400 + [30] * 580 + [1182, 1183] + [10] * 18))
    10.0
    """
    samples = np.asarray(samples_ns)
    v, counts = np.unique(samples, return_counts=True)
    v = v[counts >= max(1, -(-samples.size // 1000))]
    return float(np.diff(v).min()) if v.size > 1 else None


def clock_info(clock: str = "auto") -> dict:
    """The clock a run uses: name, resolution (ns per tick), the step its readings advance in
    (``step_ns``, :func:`reading_step_ns` of the overhead samples: a virtual machine's TSC can
    tick at 0.39 ns and advance 26 ticks at a time) and the measured overhead of one back-to-back
    pair of reads (median, p99, in ns; every sample includes it)."""
    name = _timing.resolve_clock(clock)
    d = _timing.clock_overhead_samples(200_000, name)
    res = 1.0 / _timing.tsc_ticks_per_ns() if name == "tsc" else 1.0
    step = reading_step_ns(d)
    info = {"clock": name, "resolution_ns": res,
            # samples are whole ns, so never finer than 1 ns whatever the tick
            "step_ns": max(step if step is not None else res, 1.0),
            "overhead_ns": float(np.median(d)), "overhead_p99_ns": percentiles(d, (99,))[0],
            "overhead_min_ns": float(d.min())}
    if name == "tsc":
        info["tsc_ghz"] = _timing.tsc_ticks_per_ns()
    return info


def _capacity(setup, flow) -> int:
    # room for every order the flow can add, so that no pool grows inside a timed region
    adds = int(np.count_nonzero(flow["kind"] <= 1)) if len(flow) else 0
    return len(setup) + adds + 1024


def build_book(setup, flow=None, **kwargs) -> OrderBook:
    """A book with ``setup`` applied, sized for ``flow`` (no growth while it is timed)."""
    flow = setup[:0] if flow is None else flow
    book = OrderBook(capacity=_capacity(setup, flow), **kwargs)
    if len(setup):
        book.process(setup)
    return book


def _event_room(book: OrderBook, flow) -> int:
    # The events every book operation asks room for before it runs: one per order the book can
    # hold (those resting and each new one of the flow) and a few more. A book built by
    # process() has a small buffer of its own (the batch's events go into the result array),
    # so on a deep book the first operation that asks for that room (a modify, or any call
    # once a pool is full) grew it inside the timed loop: 64 MiB allocated and its first huge
    # page faulted in, about 200 us in one sample of every 1M-order run, and the open loop's
    # queue behind it.
    adds = int(np.count_nonzero(flow["kind"] <= 1)) if len(flow) else 0
    return len(book) + adds + 1024


def timed_copy(base: OrderBook, flow) -> OrderBook:
    """A copy of ``base`` for a timed run of ``flow``: its event buffer already holds the room
    a book operation asks for (one event per order the book can hold during the run, plus a
    few), with every page of it written once, so that neither its growth nor a first-touch page
    fault lands inside the timed loop. O(len(base) + len(flow)).

    >>> from matchcore.workloads import standard_mix
    >>> setup, flow = standard_mix(100, seed=1)
    >>> len(timed_copy(build_book(setup, flow), flow)) == len(setup)
    True
    """
    book = base.copy()
    _timing.reserve_events(book, _event_room(book, flow))
    return book


def count_not_found(setup, flow) -> int:
    """REJECTED(ORDER_NOT_FOUND) events when ``flow`` runs after ``setup``: 0 for a valid
    workload (every cancel and reprice names a resting order)."""
    book = build_book(setup, flow)
    ev = book.process(flow)
    return int(np.count_nonzero((ev["kind"] == EventKind.REJECTED)
                                & (ev["reason"] == Reason.ORDER_NOT_FOUND)))


def closed_loop(base: OrderBook, flow, clock: str = "auto", warmup: bool = True) -> np.ndarray:
    """Service time (ns) of each message of ``flow`` applied as fast as possible to a copy of
    ``base`` (after a warm-up pass on another copy)."""
    if _flag_arg(warmup, "warmup"):
        warm = flow[: min(len(flow), 200_000)]
        _timing.process_timed(timed_copy(base, warm), warm, clock)
    return _timing.process_timed(timed_copy(base, flow), flow, clock)


def open_loop(base: OrderBook, flow, rate: float, clock: str = "auto", poisson_seed=None,
              warmup: bool = True):
    """(latency_ns, service_ns) of each message of ``flow`` arriving at ``rate`` messages/s
    (evenly spaced, or Poisson arrivals when ``poisson_seed`` is given); latency counts from
    the scheduled arrival, so a stall delays every message behind it."""
    warmup = _flag_arg(warmup, "warmup")
    arrivals = None
    if poisson_seed is not None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"Poisson arrivals need a finite rate > 0 (messages/s), got {rate}")
        gaps = np.random.default_rng(poisson_seed).exponential(1e9 / rate, len(flow))
        # the first message at 0, then the gaps (an empty flow has no arrival at all)
        arrivals = np.concatenate(([0.0], np.cumsum(gaps[:-1])))[:len(flow)]
    if warmup:
        warm = flow[: min(len(flow), 100_000)]
        _timing.process_timed(timed_copy(base, warm), warm, clock)
    return _timing.process_open_loop(timed_copy(base, flow), flow, rate, arrivals, clock)


def touched_events(n: int) -> np.ndarray:
    """An EVENT_DTYPE buffer of ``n`` records with every page written once (``np.zeros`` may hand
    back untouched pages whose first-touch faults would land in the timed calls)."""
    buf = np.empty(n, dtype=EVENT_DTYPE)
    buf.view(np.uint8).fill(0)
    return buf


def call_chunk(n: int, chunk: int, name: str = "chunk") -> int:
    """The call size the chunked timings use for a flow of ``n`` messages: at most ``chunk``,
    at least 8 calls where the flow allows, never under 1,024, except for a flow shorter than
    that, which is timed as one call of all of it (``n``, at least 1). A ``chunk`` below 1
    raises ValueError naming it as ``name``."""
    # (a flow under 1,024 messages ran as one call of n, and was reported as 1,024-message ones)
    # (a chunk of 0 or below was raised to the 1,024 floor without a word)
    _check_chunk(chunk, name)
    return min(max(min(chunk, n // 8), 1024), max(n, 1))


def out_buffer_for(base: OrderBook, flow, chunk: int) -> np.ndarray:
    """A touched event buffer with room for the most events any ``chunk``-message call of the
    flow writes on a copy of ``base`` (found by running the flow once on a copy)."""
    warm = base.copy()
    most = max((len(warm.process(flow[i:i + chunk])) for i in range(0, len(flow), chunk)),
               default=0)
    del warm
    return touched_events(most + 1024)


def process_out_rate(base: OrderBook, flow, chunk: int = 8192, buf=None) -> dict:
    """``process(part, out=buf)`` over the flow in calls of ``chunk`` messages on a fresh copy of
    ``base``, one caller-owned event buffer reused by every call, each call timed: the median
    call's ns/msg (a lost time slice lands in one call and leaves the median alone)."""
    chunk = call_chunk(len(flow), chunk)
    if buf is None:
        buf = out_buffer_for(base, flow, chunk)
    book = base.copy()
    return calls_rate(book.process, flow, chunk, buf)


def calls_rate(process, flow, chunk: int, buf) -> dict:
    """``process(part, out=buf)`` (a book's or an engine's) over the flow in calls of ``chunk``
    messages, each call timed (a short last call is left out, unless it is the only one: a flow
    under half a call is timed as one call): the median call's ns/msg."""
    _check_chunk(chunk, "chunk")
    perf = time.perf_counter_ns
    calls = []
    for i in range(0, len(flow), chunk):
        part = flow[i:i + chunk]
        # (a flow under half a call timed no call at all: NaN, null in the JSON)
        if len(part) < chunk // 2 and calls:
            break
        t0 = perf()
        process(part, out=buf)
        calls.append((perf() - t0) / len(part))
    med = float(np.median(calls)) if calls else float("nan")
    return {"ns_per_msg": med, "msgs_per_s": 1e9 / med if med else float("inf"), "chunk": chunk,
            "calls": len(calls)}


def _check_count(value, name: str) -> None:
    # an integer >= 1, else TypeError / ValueError naming it
    import operator

    try:
        operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} "
                        f"{value!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_chunk(chunk, name: str) -> None:
    # messages per timed call: a negative one made no call at all, and the figure was the time
    # of an empty loop (throughput: 1.6 G msg/s) or NaN; 0 failed in range()'s words, and so
    # did 1.5, in throughput() once the whole-run figures had been measured
    _check_count(chunk, name)


def _check_flow(flow, who: str) -> None:
    # per-message figures of no message: the time of an empty call was taken as the cost of
    # one (throughput 20 ns/msg, 50 M msg/s, and an open loop run at a quarter of that)
    if len(flow) == 0:
        raise ValueError(f"{who}: the flow holds no command, so there is no cost per message "
                         f"to measure")


def check_reps(reps, name: str = "reps") -> None:
    """``reps`` (passes taken the best of, given as ``name``) checked before anything is
    measured: TypeError unless it is an integer, ValueError unless it is at least 1. With none,
    a measurement had nothing to take the best of, and failed in words about something else; a
    float such as 1.5 passed the range check and failed in range()'s words ("'float' object
    cannot be interpreted as an integer") once the workloads had been generated and measured,
    and run_baselines reported each baseline as failed with it."""
    _check_count(reps, name)


def throughput(base: OrderBook, flow, reps: int = 3, process_chunk: int = 65_536,
               out_chunk: int = 8192) -> dict:
    """Messages/s of the whole flow without per-message clocks, best of ``reps`` after a warm-up,
    each rep on a fresh copy of ``base``:

    - ``emit``: one compiled ``mc_process`` call (what ``process()`` runs), events written into
      a buffer grown and touched beforehand (no realloc or page fault in the timed region);
    - ``no_emit``: the same without events (replay speed);
    - ``process``: the Python ``process()`` call on the whole flow, which also copies the events
      out into a new numpy array (for a large batch, that array's first-touch page faults are
      part of the figure);
    - ``process_chunked``: ``process()`` called on chunks of ``process_chunk`` messages in a
      Python loop (the output arrays are then reused heap memory); its ``chunk`` is the size of
      the calls made (the whole flow when it is shorter);
    - ``process_out``: ``process(chunk, out=buf)`` with one caller-owned event buffer reused by
      every call (no array made per call), each call timed: the median call's ns/msg (robust
      to a lost time slice, like ``median_chunk``) over calls of ``out_chunk`` messages;
    - ``median_chunk``: see :func:`chunked_rate`."""
    check_reps(reps)
    _check_chunk(process_chunk, "process_chunk")
    _check_flow(flow, "throughput()")
    n = len(flow)
    out_chunk = call_chunk(n, out_chunk, "out_chunk")
    warm = base.copy()
    n_events = 0
    chunk_events = 0
    for i in range(0, n, out_chunk):
        k = len(warm.process(flow[i:i + out_chunk]))
        n_events += k
        chunk_events = max(chunk_events, k)
    n_events += 1024
    del warm
    buf = touched_events(chunk_events + 1024)
    best = {"emit": None, "no_emit": None, "process": None, "process_chunked": None}
    out_calls = []

    def keep(key, ns):
        best[key] = ns if best[key] is None else min(best[key], ns)

    for _ in range(reps):
        book = base.copy()
        # the events the run writes, and beside them the room each operation asks for
        _timing.reserve_events(book, n_events + _event_room(book, flow))
        keep("emit", _timing.process_batch_ns(book, flow, True))
        keep("no_emit", _timing.process_batch_ns(base.copy(), flow, False))
        book = base.copy()
        t0 = time.perf_counter_ns()
        book.process(flow)
        keep("process", time.perf_counter_ns() - t0)
        book = base.copy()
        proc = book.process
        t0 = time.perf_counter_ns()
        for i in range(0, n, process_chunk):
            proc(flow[i:i + process_chunk])
        keep("process_chunked", time.perf_counter_ns() - t0)
        out_calls.append(process_out_rate(base, flow, out_chunk, buf)["ns_per_msg"])
    out = {}
    for k, ns in best.items():
        out[k] = {"ns_per_msg": ns / max(n, 1), "msgs_per_s": n / ns * 1e9 if ns else float("inf")}
    # the size of the calls made: a flow shorter than process_chunk is one call of all of it
    # (a 20,000-message flow was reported as timed "in 65,536-message calls")
    out["process_chunked"]["chunk"] = min(process_chunk, max(n, 1))
    po = min(out_calls)
    out["process_out"] = {"ns_per_msg": po, "msgs_per_s": 1e9 / po if po else float("inf"),
                          "chunk": out_chunk, "reps": len(out_calls)}
    out["n"] = n
    out["events"] = n_events - 1024
    out["median_chunk"] = chunked_rate(base, flow)
    return out


def chunked_rate(base: OrderBook, flow, chunk: int = 32_768) -> dict:
    """The flow applied chunk by chunk to one copy of ``base`` (events written), each chunk
    timed in compiled code; the median chunk's ns/msg. On a shared machine a time slice lost to
    another process lands in one chunk and leaves the median alone, so this is the figure to use
    for the book's own capacity (the whole-run figures above keep such stalls)."""
    _check_flow(flow, "chunked_rate()")
    n = len(flow)
    chunk = call_chunk(n, chunk)
    book = timed_copy(base, flow)
    per = []
    for i in range(0, n, chunk):
        part = flow[i:i + chunk]
        if len(part) < chunk // 2:
            break
        per.append(_timing.process_batch_ns(book, part) / len(part))
    if not per:
        per.append(_timing.process_batch_ns(book, flow) / max(n, 1))
    med = float(np.median(per))
    return {"ns_per_msg": med, "msgs_per_s": 1e9 / med if med else float("inf"),
            "chunks": len(per), "chunk": chunk, "worst_chunk_ns_per_msg": float(max(per))}


def _check_rate(rate, name: str) -> None:
    # an open-loop rate: messages/s, finite and above 0
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"{name} must be a finite number of messages/s > 0, got {rate}")


def rate_sweep(base: OrderBook, flow, capacity_per_s: float, fractions=None,
               clock: str = "auto", overhead_ns: float = 0.0, progress=None) -> list[dict]:
    """Open-loop latency percentiles at rates that are ``fractions`` of ``capacity_per_s``.

    Shows where the latency curve bends: flat while the book keeps up, then queueing as the
    offered rate nears capacity and latencies growing without bound above it. Each point runs
    on a fresh copy of ``base`` after a warm-up pass on another, as :func:`open_loop` does."""
    if fractions is None:
        fractions = (0.1, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1)
    # every rate checked before the first point (a fraction of 0 was refused by the open loop
    # once the points before it had been measured)
    fractions = tuple(fractions)
    for f in fractions:
        _check_rate(capacity_per_s * f, f"capacity_per_s * fraction ({capacity_per_s} * {f})")
    out = []
    for f in fractions:
        rate = capacity_per_s * f
        lat, svc = open_loop(base, flow, rate, clock)
        row = {"fraction": f, "rate_per_s": rate, "latency": summarize(lat, overhead_ns),
               "service": summarize(svc, overhead_ns)}
        out.append(row)
        if progress is not None:
            progress.update(1)
    return out


def measure_workload(setup, flow, *, clock: str = "auto", overhead_ns: float = 0.0,
                     rate: float | None = None, keep_samples: bool = False) -> dict:
    """Closed-loop service times, throughput and one open-loop run for one workload.

    ``rate`` (messages/s) for the open loop; default a quarter of the capacity (median chunk):
    on a shared machine the book gets only part of a core, and a lost time slice takes as long
    to drain as the spare capacity allows (the rate sweep shows the whole curve)."""
    keep_samples = _flag_arg(keep_samples, "keep_samples")    # before minutes of measuring
    if rate is not None:
        # (0, a negative rate or NaN was refused by the open loop after the closed loop and
        # the throughput runs, minutes at full size)
        _check_rate(rate, "rate")
    _check_flow(flow, "measure_workload()")
    base = build_book(setup, flow)
    svc = closed_loop(base, flow, clock)
    closed = summarize(svc, overhead_ns)
    closed["hdr"] = hdr_curve(svc)
    thr = throughput(base, flow)
    capacity = thr["median_chunk"]["msgs_per_s"]
    if rate is None:
        rate = 0.25 * capacity
    lat, osvc = open_loop(base, flow, rate, clock)
    opened = {"rate_per_s": rate, "fraction_of_capacity": rate / capacity if capacity else None,
              "latency": summarize(lat, overhead_ns), "service": summarize(osvc, overhead_ns)}
    opened["latency"]["hdr"] = hdr_curve(lat)
    out = {"resting_start": len(base), "closed": closed, "throughput": thr, "open": opened}
    if keep_samples:
        out["_samples"] = {"closed": svc, "open_latency": lat, "open_service": osvc}
    return out


def scaling_point(setup, flow, clock: str = "auto", overhead_ns: float = 0.0,
                  base: OrderBook | None = None) -> dict:
    """Per-message cost for one book shape: batch ns/msg (with events; median chunk and whole
    run) and the timed loop's percentiles (``net``: the same with ``overhead_ns`` subtracted).
    ``base``: the book ``build_book(setup, flow)`` gives, when the caller already holds it."""
    _check_flow(flow, "scaling_point()")
    if base is None:
        base = build_book(setup, flow)
    thr = throughput(base, flow, reps=2)
    svc = closed_loop(base, flow, clock)
    s = summarize(svc, overhead_ns)
    # ns_per_msg: the median 32k-message chunk (robust to a lost time slice on a shared machine);
    # the whole-run figures are kept beside it
    return {"resting": len(base), "levels": base.level_count(0) + base.level_count(1),
            "ns_per_msg": thr["median_chunk"]["ns_per_msg"],
            "run_ns_per_msg": thr["emit"]["ns_per_msg"],
            "process_ns_per_msg": thr["process"]["ns_per_msg"],
            "process_chunked_ns_per_msg": thr["process_chunked"]["ns_per_msg"],
            "process_out_ns_per_msg": thr["process_out"]["ns_per_msg"],
            "p50": s["p50"], "p90": s["p90"], "p99": s["p99"], "p99.9": s["p99.9"],
            "max": s["max"],
            "net": {k: s["net"][k] for k in ("p50", "p90", "p99", "p99.9", "max")}}
