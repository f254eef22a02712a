"""The core benchmarks: per-call cost from Python beside the empty-call floor, batch
``process()`` throughput on the standard mix, per-message cost against book size, and the
reference model in the same run, each compared with its target.

Targets (reported, never asserted): per-call within 1.5x the floor; ``process()`` at 20 M
messages/s or more; the cost at 1M resting orders within 2x of that at 1k; at least 50x the
reference model per message.
"""
from __future__ import annotations

import time

import numpy as np

from matchcore import OrderBook, TIF
from matchcore.bench import harness

TARGETS = {"per_call_vs_floor": 1.5, "process_msgs_per_s": 20e6, "deep_vs_small": 2.0,
           "vs_reference": 50.0}


def _best_ns(loop, reps):
    """min and median over ``reps`` of ns per iteration; ``loop()`` returns (ns, iterations)."""
    runs = []
    for _ in range(reps):
        ns, k = loop()
        runs.append(ns / k)
    return float(min(runs)), float(np.median(runs))


def per_call(n: int = 100_000, reps: int = 5, seed: int = 1) -> dict:
    """ns per call from a Python ``for`` loop: submit (passive), cancel, modify (reprice), a
    marketable IOC that fills one resting order, best_bid, depth(10), and the empty calls
    ``_noop()`` and ``_noop4(order_id, side, price, qty)`` into the same extension (the floor).
    Books are made with ``record_events=False`` (the per-call API keeps no events). Each op is
    timed over ``n`` calls; min and median over ``reps`` fresh books."""
    rng = np.random.default_rng(seed)
    ids = list(range(1, n + 1))
    bid_px = (1_000_000 - 1 - rng.integers(0, 375, n)).tolist()
    new_px = (1_000_000 - 1 - rng.integers(0, 375, n)).tolist()
    perf = time.perf_counter_ns

    def fresh():
        return OrderBook(record_events=False, capacity=2 * n + 1024)

    def filled():
        b = fresh()
        s = b.submit
        for oid, p in zip(ids, bid_px):
            s(oid, 0, p, 10)
        return b

    def loop_noop():
        f = fresh()._noop
        t0 = perf()
        for _ in ids:
            f()
        return perf() - t0, n

    def loop_noop4():
        g = fresh()._noop4
        t0 = perf()
        for oid, p in zip(ids, bid_px):
            g(oid, 0, p, 10)
        return perf() - t0, n

    def loop_noop_submit():
        g = fresh()._noop_submit
        t0 = perf()
        for oid, p in zip(ids, bid_px):
            g(oid, 0, p, 10)
        return perf() - t0, n

    def loop_noop_cancel():
        g = fresh()._noop_cancel
        t0 = perf()
        for oid in ids:
            g(oid)
        return perf() - t0, n

    def loop_submit():
        s = fresh().submit
        t0 = perf()
        for oid, p in zip(ids, bid_px):
            s(oid, 0, p, 10)
        return perf() - t0, n

    def loop_cancel():
        c = filled().cancel
        t0 = perf()
        for oid in ids:
            c(oid)
        return perf() - t0, n

    def loop_modify():
        m = filled().modify
        t0 = perf()
        for oid, p in zip(ids, new_px):
            m(oid, 7, p)
        return perf() - t0, n

    def loop_marketable():
        b = fresh()
        s = b.submit
        for oid in ids:                      # n asks of qty 1 over 100 levels
            s(oid, 1, 1_000_001 + oid % 100, 1)
        ioc = TIF.IOC
        t0 = perf()
        for oid in ids:                      # each buy IOC takes exactly one of them
            s(oid + n, 0, 1_000_200, 1, ioc)
        return perf() - t0, n

    def loop_best_bid():
        f = filled().best_bid
        t0 = perf()
        for _ in ids:
            f()
        return perf() - t0, n

    def loop_depth():
        f = filled().depth
        t0 = perf()
        for _ in ids:
            f(10)
        return perf() - t0, n

    ops = {"noop": loop_noop, "noop4": loop_noop4, "noop_submit": loop_noop_submit,
           "noop_cancel": loop_noop_cancel, "submit": loop_submit, "cancel": loop_cancel,
           "modify": loop_modify, "marketable": loop_marketable, "best_bid": loop_best_bid,
           "depth10": loop_depth}
    out = {}
    for name, fn in ops.items():
        mn, med = _best_ns(fn, reps)
        out[name] = {"ns_per_call": mn, "median_ns_per_call": med}
    floor = out["noop4"]["ns_per_call"]
    floor0 = out["noop"]["ns_per_call"]
    for name in ("submit", "cancel", "modify", "marketable", "best_bid", "depth10"):
        out[name]["vs_noop4"] = out[name]["ns_per_call"] / floor
        out[name]["vs_noop"] = out[name]["ns_per_call"] / floor0
    # The same call with nothing behind it: submit()'s signature for the order entries,
    # cancel()'s for cancel.
    for name in ("submit", "modify", "marketable"):
        out[name]["vs_same_signature"] = out[name]["ns_per_call"] / out["noop_submit"]["ns_per_call"]
    out["cancel"]["vs_same_signature"] = (out["cancel"]["ns_per_call"]
                                          / out["noop_cancel"]["ns_per_call"])
    out["n"] = n
    out["reps"] = reps
    return out


def run_core(*, messages: int = 1_000_000, seed: int = 1, quick: bool = False,
             clock: str = "auto", overhead_ns: float = 0.0, sizes=(1_000, 100_000, 1_000_000),
             progress=None) -> dict:
    """All core figures and their ratios to the targets (see the module docstring).

    ``sizes``: resting-order counts for the per-message cost; the first and last give the
    deep-vs-small ratio."""
    from matchcore import workloads

    tick = (lambda: progress.update(1)) if progress is not None else (lambda: None)
    out = {"targets": dict(TARGETS)}
    out["per_call"] = per_call(n=20_000 if quick else 100_000, reps=3 if quick else 5, seed=seed)
    tick()

    setup, flow = workloads.standard_mix(messages, seed=seed)
    base = harness.build_book(setup, flow)
    thr = harness.throughput(base, flow, reps=2 if quick else 3)
    out["process"] = {"n": len(flow), **thr}
    tick()

    n_scale = min(messages, 200_000 if quick else 1_000_000)
    sizes_in = tuple(sizes)
    sizes = {}
    for resting in sizes_in:
        s, f = workloads.deep_book(n_scale, seed=seed, resting=resting)
        sizes[str(resting)] = harness.scaling_point(s, f, clock, overhead_ns)
        tick()
    out["resting"] = sizes

    n_ref = min(messages, 5_000 if quick else 20_000)
    from matchcore.bench.baselines import run_baselines

    ref = run_baselines(setup, flow[:n_ref], thr["process_chunked"]["ns_per_msg"],
                        names=("reference",))
    out["reference"] = ref["reference"]
    tick()

    pc = out["per_call"]
    small, deep = sizes[str(sizes_in[0])]["ns_per_msg"], sizes[str(sizes_in[-1])]["ns_per_msg"]
    out["vs_targets"] = {
        "per_call_vs_floor": {op: pc[op]["vs_noop4"] for op in ("submit", "cancel", "modify",
                                                               "marketable")},
        "per_call_vs_same_signature": {op: pc[op]["vs_same_signature"]
                                       for op in ("submit", "cancel", "modify", "marketable")},
        "process_msgs_per_s": thr["process_chunked"]["msgs_per_s"],
        "process_whole_batch_msgs_per_s": thr["process"]["msgs_per_s"],
        "deep_vs_small": deep / small,
        "deep_vs_small_sizes": [sizes_in[0], sizes_in[-1]],
        "vs_reference": out["reference"].get("slower_than_matchcore"),
    }
    met = out["vs_targets"]
    out["met"] = {
        "per_call_vs_floor": all(v <= TARGETS["per_call_vs_floor"]
                                 for v in met["per_call_vs_floor"].values()),
        "process_msgs_per_s": met["process_msgs_per_s"] >= TARGETS["process_msgs_per_s"],
        "deep_vs_small": met["deep_vs_small"] <= TARGETS["deep_vs_small"],
        "vs_reference": (met["vs_reference"] or 0) >= TARGETS["vs_reference"],
    }
    return out
