"""Cost of creating price levels by where they land in the ladder (ns per level created).

A one-sided book of N bid levels (one order each) is built through ``process()`` in three
orders: ``inwards`` (each new level nearer the touch than all others), ``outwards`` (each deeper
than all others, as a quoting loop fills a deep book from the touch) and ``random`` (each between
existing levels). The ladder keeps room at both of its ends, so the first two cost O(1) a level
whatever N; a level created between others moves the fewer of the entries below or above it when
that end is within 1,024 entries, else takes a gap in the ladder (O(log^2 N) amortised moves).

Then ``depth(2)`` after a mass cancel: a best bid, ``E`` levels just below it emptied by cancels
(the farthest first, so the ladder keeps each as it empties), then 40,000 live levels. The first
call walks past the E emptied levels and, from 256 of them, packs them away; the table gives that
call, the median of the 2,000 calls after it, and the median on a ladder with no emptied level.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_ladder.py [--max-random N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


def build_cost(n: int, order: str, seed: int = 1) -> float:
    """ns per level for building a book of ``n`` bid levels in ``order``; best of 3."""
    import numpy as np

    import matchcore as mc

    px = np.arange(1_000_000, 1_000_000 - n, -1, dtype=np.int64)    # touch first: outwards
    if order == "random":
        px = np.random.default_rng(seed).permutation(px)
    elif order == "inwards":
        px = px[::-1].copy()
    cmds = np.zeros(n, mc.COMMAND_DTYPE)
    cmds["kind"] = int(mc.CommandKind.SUBMIT)
    cmds["order_id"] = np.arange(1, n + 1)
    cmds["side"] = int(mc.Side.BUY)
    cmds["price"] = px
    cmds["qty"] = 5
    out = np.zeros(2 * n, mc.EVENT_DTYPE)
    best = float("inf")
    for _ in range(3):
        book = mc.OrderBook(capacity=n)
        t = time.perf_counter_ns()
        book.process(cmds, out=out)
        best = min(best, (time.perf_counter_ns() - t) / n)
        assert book.level_count(int(mc.Side.BUY)) == n
    return best


def _bid_ladder(levels: int):
    import numpy as np

    import matchcore as mc

    cmds = np.zeros(levels + 1, mc.COMMAND_DTYPE)
    cmds["kind"] = int(mc.CommandKind.SUBMIT)
    cmds["order_id"] = np.arange(1, levels + 2)
    cmds["side"] = int(mc.Side.BUY)
    cmds["price"] = np.arange(1, levels + 2)       # order id = price
    cmds["qty"] = 1
    cmds["side"][-1] = int(mc.Side.SELL)
    cmds["price"][-1] = 10 * levels
    book = mc.OrderBook(capacity=levels + 1)
    book.process(cmds)
    return book


def _median_us(call, calls: int) -> float:
    import numpy as np

    ts = np.empty(calls)
    for i in range(calls):
        t = time.perf_counter_ns()
        call(2)
        ts[i] = time.perf_counter_ns() - t
    return float(np.median(ts)) / 1e3


def depth_after_mass_cancel(emptied: int, live: int = 40_000, calls: int = 2_000) -> tuple:
    """(first call, median after it, median on a clean ladder) of depth(2), in us."""
    import numpy as np

    import matchcore as mc

    book = _bid_ladder(live + emptied + 1)
    cancels = np.zeros(emptied, mc.COMMAND_DTYPE)
    cancels["kind"] = int(mc.CommandKind.CANCEL)
    cancels["order_id"] = np.arange(live + 1, live + emptied + 1)   # the farthest first
    book.process(cancels)
    assert book.level_count(int(mc.Side.BUY)) == live + 1
    t = time.perf_counter_ns()
    bids = book.depth(2)[0]
    first = (time.perf_counter_ns() - t) / 1e3
    assert bids.tolist() == [[live + emptied + 1, 1], [live, 1]]
    then = _median_us(book.depth, calls)
    clean = _median_us(_bid_ladder(live + 1).depth, calls)
    return first, then, clean


def main(argv=None) -> int:
    from matchcore.bench.script_args import at_least_zero

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--max-random", type=at_least_zero, default=1_000_000,
                   help="largest book built in random order (default 1,000,000)")
    a = p.parse_args(argv)
    sizes = (1_000, 10_000, 100_000, 200_000, 1_000_000)
    print(f"{'levels':>9}  {'inwards':>9}  {'outwards':>9}  {'random':>9}   (ns per level created)")
    skipped = False
    for n in sizes:
        row = [f"{build_cost(n, 'inwards'):>9.0f}", f"{build_cost(n, 'outwards'):>9.0f}"]
        # a size not built in random order says so: "nan" read as a measurement that failed
        if n <= a.max_random:
            row.append(f"{build_cost(n, 'random'):>9.0f}")
        else:
            row.append(f"{'skipped':>9}")
            skipped = True
        print(f"{n:>9,}  " + "  ".join(row))
    if skipped:
        print(f"(random: skipped above --max-random {a.max_random:,} levels)")
    print()
    print(f"{'emptied':>9}  {'first':>9}  {'then':>9}  {'clean':>9}   (us per depth(2); "
          f"40,000 live levels below)")
    for e in (100, 1_000, 20_000, 100_000):
        first, then, clean = depth_after_mass_cancel(e)
        print(f"{e:>9,}  {first:>9.1f}  {then:>9.2f}  {clean:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
