"""Embedding benchmark: what one book operation costs from each entry point, in one run.

1. Per-operation cost of the same seeded order flow (matchcore.workloads.standard_mix, applied
   to a copy of the same starting book every repetition):
   batch ``process()``, a Numba ``@njit`` per-call loop, a C per-call loop through the
   ``mc_api_v2`` table (examples/c_market_maker.c built as a library), and the Python per-call
   methods. In the same run, the churn flow (:func:`churn_flow`: 70% submits on a 20-tick band,
   30% cancels of ids up to 1,000 back, many already gone) from the Numba per-call loop on a
   fresh ``record_events=False`` book that is never drained, and its ratio to the standard
   Numba figure (target: within 1.3x).
2. The market-maker strategy loop of examples/ (quotes around the mid, reacts to its fills) in
   Numba and in C, same seed, same result: ns per step and per book call, and the Numba/C ratio
   (target: within 2x).

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_embed.py [--n 200000] [--steps 200000]
Reported, never asserted. Needs numba and a C compiler (cc); each part is skipped with a
message when its tool is missing.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "examples"))

import matchcore as mc  # noqa: E402
from matchcore import _capi  # noqa: E402
from matchcore.workloads import standard_mix  # noqa: E402
from matchcore.bench.script_args import at_least_one, check_workload_size, counted  # noqa: E402


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    return (f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
            f"numpy {np.__version__}, commit {commit or '?'}")


def build_c_library(tmp: Path):
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None, "no C compiler on PATH"
    lib = tmp / "libmm.so"
    cmd = [cc, "-O2", "-shared", "-fPIC", "-DMC_MM_LIBRARY", "-I", _capi.get_include(),
           str(ROOT / "examples" / "c_market_maker.c"), "-o", str(lib)]
    subprocess.run(cmd, check=True)
    so = ctypes.CDLL(str(lib))
    i64, p, u64 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_uint64
    so.mm_run.restype = i64
    so.mm_run.argtypes = [p, u64, i64, u64, i64, i64, i64, p]   # u64: a book handle
    so.mm_apply_calls.restype = i64
    so.mm_apply_calls.argtypes = [p, u64, p, i64]
    return so, f"{cc} -O2"


def churn_flow(n: int, seed: int = 1) -> np.ndarray:
    """n commands: 70% GTC submits (random side, qty 1-10) at prices uniform on a 20-tick band,
    30% cancels of an id drawn uniformly from the last 1,000 submitted (many already filled or
    cancelled). Seeded; ids from 1 in sequence. O(n) numpy."""
    rng = np.random.default_rng(seed)
    cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    is_sub = rng.random(n) < 0.7
    is_sub[0] = True
    submitted = np.cumsum(is_sub)                       # ids submitted so far, 1-based
    back = rng.integers(0, 1000, n)
    cmds["ts_ns"] = np.arange(n, dtype=np.int64) * 100
    cmds["kind"] = np.where(is_sub, 0, 2)
    cmds["order_id"] = np.where(is_sub, submitted, np.maximum(1, submitted - back))
    cmds["side"] = np.where(is_sub, rng.integers(0, 2, n), 0)
    cmds["price"] = np.where(is_sub, 1_000_000 + rng.integers(-10, 10, n), 0)
    cmds["qty"] = np.where(is_sub, rng.integers(1, 11, n), 0)
    return cmds


def _timed(fn, reps):
    """Median and best wall time (ns) of reps runs of fn(), each on fresh state."""
    times = []
    for _ in range(reps):
        t = fn()
        times.append(t)
    return statistics.median(times), min(times)


def bench_per_operation(n, reps, so, churn_n=300_000):
    setup, flow = standard_mix(n, seed=1)
    base = mc.OrderBook(record_events=False)
    base.process(setup)
    rows = []

    def fresh():
        return base.copy()

    def run_process():
        b = fresh()
        t0 = time.perf_counter_ns()
        b.process(flow)
        return time.perf_counter_ns() - t0

    rows.append(("batch process(), one call", *_timed(run_process, reps)))

    chunks = [flow[i:i + 1024] for i in range(0, len(flow), 1024)]

    def run_process_chunks():
        b = fresh()
        t0 = time.perf_counter_ns()
        for c in chunks:
            b.process(c)
        return time.perf_counter_ns() - t0

    rows.append(("batch process(), 1,024 at a time", *_timed(run_process_chunks, reps)))

    try:
        import numba  # noqa: F401
        from matchcore import numba_ext as mcn
    except ImportError:
        mcn = None
        rows.append(("Numba per-call loop", None, None))
    if mcn is not None:
        import numba

        @numba.njit(cache=True)
        def numba_calls(book, cmds):
            for i in range(cmds.shape[0]):
                c = cmds[i]
                mcn.set_time(book, c.ts_ns)
                if c.kind == 0:
                    mcn.submit(book, c.order_id, c.side, c.price, c.qty, c.tif, c.owner,
                               c.post_only)
                elif c.kind == 1:
                    mcn.market(book, c.order_id, c.side, c.qty, c.owner)
                elif c.kind == 2:
                    mcn.cancel(book, c.order_id)
                else:
                    mcn.modify(book, c.order_id, c.qty, c.price)
                mcn.clear_events(book)

        numba_calls(fresh(), flow[:100])  # compile / load from cache (the book is the argument)

        def run_numba():
            b = fresh()
            t0 = time.perf_counter_ns()
            numba_calls(b, flow)
            return time.perf_counter_ns() - t0

        rows.append(("Numba per-call loop", *_timed(run_numba, reps)))

        @numba.njit(cache=True)
        def numba_churn(book, cmds):
            # the natural loop on a book that records no events: nothing drained, nothing kept
            for i in range(cmds.shape[0]):
                c = cmds[i]
                if c.kind == 0:
                    mcn.submit(book, c.order_id, c.side, c.price, c.qty, c.tif, c.owner,
                               c.post_only)
                else:
                    mcn.cancel(book, c.order_id)

        churn = churn_flow(churn_n, seed=1)
        numba_churn(mc.OrderBook(record_events=False), churn[:100])

        def run_churn():
            b = mc.OrderBook(record_events=False)
            t0 = time.perf_counter_ns()
            numba_churn(b, churn)
            dt = time.perf_counter_ns() - t0
            assert b.events().shape[0] == 0
            return dt * n / churn_n   # scaled so that the row divides by n like the others

        rows.append((f"Numba churn flow ({counted(churn_n, 'op')})", *_timed(run_churn, reps)))

    if so is not None:
        table = _capi.c_api_table_address()

        def run_c():
            b = fresh()
            t0 = time.perf_counter_ns()
            so.mm_apply_calls(table, b.address, flow.ctypes.data, len(flow))
            return time.perf_counter_ns() - t0

        rows.append(("C per-call loop (mc_api_v2)", *_timed(run_c, reps)))
    else:
        rows.append(("C per-call loop (mc_api_v2)", None, None))

    cols = [flow[name].tolist() for name in COLS]

    def run_python():
        b = fresh()
        submit, market, cancel, modify = b.submit, b.submit_market, b.cancel, b.modify
        t0 = time.perf_counter_ns()
        for ts, oid, price, qty, owner, kind, side, tif, post in zip(*cols):
            try:
                if kind == 0:
                    submit(oid, side, price, qty, tif, owner=owner, post_only=post, ts_ns=ts)
                elif kind == 1:
                    market(oid, side, qty, owner=owner, ts_ns=ts)
                elif kind == 2:
                    cancel(oid, ts_ns=ts)
                else:
                    modify(oid, qty, price or None, ts_ns=ts)
            except mc.OrderRejected:
                pass
        return time.perf_counter_ns() - t0

    # as many runs as every other row: the header names one count for all of them (this row
    # took reps // 2, its median and best of 3 runs where the others had 7)
    rows.append(("Python per-call methods", *_timed(run_python, reps)))
    return [(name, None if med is None else med / n, None if best is None else best / n)
            for name, med, best in rows]


COLS = ("ts_ns", "order_id", "price", "qty", "owner", "kind", "side", "tif", "post_only")


def bench_strategy(steps, reps, so):
    out = []
    stats_c = np.zeros(8, np.int64)
    try:
        import numba_market_maker as nmm
    except ImportError as exc:
        return [], f"Numba strategy skipped: {exc}"
    nmm.simulate(200, 42)  # compile / load from cache
    res = {}

    def run_numba():
        s, book, dt = nmm.simulate(steps, 42)
        res["numba"] = (s, book.state_hash())
        return dt * 1e9

    med, best = _timed(run_numba, reps)
    calls = res["numba"][0]["book_calls"]
    out.append(("Numba strategy loop", med, best, calls))
    if so is not None:
        table = _capi.c_api_table_address()

        def run_c():
            book = mc.OrderBook()
            t0 = time.perf_counter_ns()
            so.mm_run(table, book.address, steps, 42, 2, 5, 50, stats_c.ctypes.data)
            dt = time.perf_counter_ns() - t0
            res["c"] = (dict(zip(nmm.STAT_NAMES, stats_c.tolist())), book.state_hash())
            return dt

        med_c, best_c = _timed(run_c, reps)
        out.append(("C strategy loop", med_c, best_c, int(stats_c[7])))
        same = (res["c"][1] == res["numba"][1]
                and all(res["c"][0][k] == res["numba"][0][k] for k in nmm.STAT_NAMES))
        note = f"Numba and C ended in the same state: {'yes' if same else 'NO'}"
    else:
        note = "C strategy skipped: no C compiler"
    return out, note


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--n", type=at_least_one, default=200_000,
                    help="flow commands per repetition (default 200,000)")
    ap.add_argument("--steps", type=at_least_one, default=200_000,
                    help="strategy steps per repetition (default 200,000)")
    ap.add_argument("--churn-n", type=at_least_one, default=300_000,
                    help="churn flow commands (default 300,000)")
    ap.add_argument("--reps", type=at_least_one, default=7,
                    help="repetitions, median and best reported (default 7)")
    args = ap.parse_args(argv)
    check_workload_size(ap, "--n", args.n)
    print(f"machine: {_machine()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            so, how = build_c_library(Path(tmp))
        except subprocess.CalledProcessError as exc:
            so, how = None, f"C build failed: {exc}"
        print(f"C library: {how}")
        print(f"\n1. per-operation cost, standard_mix flow of {counted(args.n, 'command')} on a "
              f"copy of the same ~1,000-order book, median (best) of {counted(args.reps, 'run')}:")
        per_op = bench_per_operation(args.n, args.reps, so, args.churn_n)
        for name, med, best in per_op:
            if med is None:
                print(f"   {name:34s}  skipped")
            else:
                print(f"   {name:34s} {med:8.1f} ns/op  ({best:.1f})")
        got = {name.split(" (")[0]: (med, best) for name, med, best in per_op}
        std, churn = got.get("Numba per-call loop"), got.get("Numba churn flow")
        if std and churn and std[0]:
            print(f"   churn flow / standard Numba per-op: {churn[0] / std[0]:.2f} (median), "
                  f"{churn[1] / std[1]:.2f} (best); target <= 1.3")
        rows, note = bench_strategy(args.steps, args.reps, so)
        print(f"\n2. market-maker strategy loop, {counted(args.steps, 'step')}, seed 42, median "
              f"(best) of {counted(args.reps, 'run')}:")
        for name, med, best, calls in rows:
            print(f"   {name:30s} {med / args.steps:8.1f} ns/step ({best / args.steps:.1f})  "
                  f"{med / calls:6.1f} ns/book call  ({calls:,} calls)")
        if len(rows) == 2:
            print(f"   Numba / C time ratio: {rows[0][1] / rows[1][1]:.2f} (median), "
                  f"{rows[0][2] / rows[1][2]:.2f} (best)")
        print(f"   {note}")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
