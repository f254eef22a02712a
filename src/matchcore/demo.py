"""``matchcore demo``: a generated order flow through the compiled book, with fills and latency."""
from __future__ import annotations

import sys
import time

from matchcore import EventKind, OrderBook, Side
from matchcore._cliutil import int64, integer, refuse_unnumbered_messages
from matchcore._timing import clock_overhead_ns, process_timed
from matchcore.bench.harness import PCT_NAMES, PERCENTILES, percentiles
from matchcore.bench.report import _count
from matchcore.workloads import standard_mix


def add_parser(p, name):
    p.add_argument("--messages", type=int64, default=1_000_000, help="commands in the flow (default 1,000,000)")
    p.add_argument("--seed", type=integer, default=1, help="random seed (default 1)")
    p.add_argument("--fills", type=int64, default=8, help="how many fills to print (default 8)")
    p.add_argument("--no-progress", action="store_true",
                   help="no effect: demo draws no progress bar (taken, as every command takes it)")


def run(args) -> int:
    try:
        _check(args)
        # the workload's own limits (ids counted in int64) are checked before anything runs
        t0 = time.perf_counter()
        setup, flow = standard_mix(args.messages, seed=args.seed)
        gen_s = time.perf_counter() - t0
    except ValueError as e:
        print(f"matchcore demo: error: {e}", file=sys.stderr)
        return 1
    return _demo(args, setup, flow, gen_s)


def _check(args) -> None:
    if args.messages <= 0:
        raise ValueError(f"--messages must be > 0, got {args.messages}")
    refuse_unnumbered_messages(args.messages, ["standard"])
    from matchcore.cli_bench import BYTES_PER_COMMAND, _check_generated_memory

    # (MemoryError, exit status 1) the flow and the events it writes are held at once, as a
    # bench workload's, and with them the latency of each command (8 bytes): a count the
    # system lends lazily but cannot back was generated and processed until the machine ran
    # out of memory
    _check_generated_memory(args.messages, "--messages", "the generated flow",
                            BYTES_PER_COMMAND + 8,
                            "each command, the event it writes and its latency")
    if not 0 <= args.seed < 2**64:
        raise ValueError(f"--seed must be in [0, 2**64), got {args.seed}")
    if args.fills < 0:
        raise ValueError(f"--fills must be >= 0, got {args.fills}")


def _demo(args, setup, flow, gen_s: float) -> int:
    print(f"generated {_count(len(flow), 'command')} (standard mix, seed {args.seed}) in "
          f"{gen_s:.1f} s; {_count(len(setup), 'resting order')} to start")

    # One warm-up pass first: the first large batch in a process pays the kernel's page faults for
    # the event buffer and the output array, which is not the engine's cost.
    book = OrderBook(capacity=len(setup) * 4)
    book.process(setup)
    book.process(flow)
    book = OrderBook(capacity=len(setup) * 4)
    book.process(setup)
    t0 = time.perf_counter()
    events = book.process(flow)
    dt = time.perf_counter() - t0
    fills = events[events["kind"] == EventKind.FILL]
    print(f"\nprocess(): {_count(len(flow), 'command')} in {dt * 1e3:.1f} ms = "
          f"{len(flow) / dt / 1e6:.1f} M msg/s, {_count(len(events), 'event')}, "
          f"{_count(len(fills), 'fill')}, {_count(int(fills['qty'].sum()), 'lot')} traded")
    shown = min(args.fills, len(fills))
    if shown:
        # (--fills 0 printed a "first 0 fills" header over nothing)
        print(f"\nfirst {_count(shown, 'fill')} (aggressor <- maker @ maker's price):")
    for f in fills[:shown]:
        side = Side(int(f["side"])).name
        print(f"  {side:4s} {int(f['order_id']):>9d} <- {int(f['maker_id']):>9d}  "
              f"{int(f['qty']):>5d} @ {int(f['price'])}")

    bids, asks = book.depth(5)
    print(f"\nbook: {_count(len(book), 'resting order')}, {book.level_count(0):,} bid / "
          f"{book.level_count(1):,} ask levels")
    print(f"  {'bid qty':>10s} {'bid':>9s} | {'ask':<9s} {'ask qty':<10s}")
    for i in range(max(len(bids), len(asks))):
        b = f"{bids[i][1]:>10d} {bids[i][0]:>9d}" if i < len(bids) else " " * 20
        a = f"{asks[i][0]:<9d} {asks[i][1]:<10d}" if i < len(asks) else ""
        print(f"  {b} | {a}")

    book = OrderBook(capacity=len(setup) * 4)
    book.process(setup)
    lat = process_timed(book, flow)
    overhead = clock_overhead_ns()
    # nearest rank, as bench reports them: each one a time a message took
    pct = percentiles(lat, PERCENTILES)
    print(f"\nper-message service time, measured inside the compiled loop "
          f"(clock pair overhead {overhead:.0f} ns, included):")
    print("  " + "  ".join(f"{name} {v:,.0f} ns" for name, v in zip(PCT_NAMES, pct))
          + f"  max {lat.max():,} ns")
    book.check_invariants()
    print("\ninvariants hold.")
    return 0
