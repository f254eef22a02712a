"""Replay speed against the number of books: ITCH 5.0 and DBN MBO days of the same length spread
over 8, 500 and 5,000 symbols, books only (no sinks).

A script, not a test (speed is reported, never asserted):

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_many_books.py
        [--symbols 8,500,5000] [--messages 2000000] [--records 1000000] [--repeat 3]

A day of few symbols keeps every book in cache; with thousands, each message's book lines
(its locate's entry, the book's header, an index slot, an order, a level) have been pushed out
by the other books' messages since that book's last one, so the rate falls with the number of
books whatever the code does. What the code decides is how much of that latency it overlaps
(the replay loops' lookahead). Each rate is the median and best of ``--repeat`` runs after a
warm-up, CPU time of the thread; the DBN rate includes reading the file (page cache).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import matchcore.itch as itch  # noqa: E402
from matchcore.bench.script_args import at_least_one, check_itch_days, seed  # noqa: E402
from bench_replay import machine, rate_line, timed  # noqa: E402


def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _size(n_bytes: float) -> str:
    """A memory size in decimal units: MB from 1 MB up, else KB (a small run's books read
    "0 MB resident" in whole MB)."""
    if abs(n_bytes) >= 1e6:
        return f"{n_bytes / 1e6:,.1f} MB"
    return f"{n_bytes / 1e3:,.1f} KB"


def _counts(text: str) -> list[int]:
    # a count of 0 or not a number was a traceback, at its turn in the run
    try:
        counts = [at_least_one(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of counts >= 1, got "
                                         f"{text!r}") from None
    # a count given twice generated and replayed its days twice
    twice = sorted({k for k in counts if counts.count(k) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(map(str, twice))} given twice in {text!r}")
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--symbols", type=_counts, default="8,500,5000",
                    help="symbol counts to compare, comma-separated (default 8,500,5000)")
    # --records 0 ran the whole ITCH part, then divided by zero on the DBN line
    ap.add_argument("--messages", type=at_least_one, default=2_000_000,
                    help="messages of each ITCH day (default 2,000,000)")
    ap.add_argument("--records", type=at_least_one, default=1_000_000,
                    help="records of each DBN MBO file (default 1,000,000)")
    ap.add_argument("--repeat", type=at_least_one, default=3,
                    help="timed runs of each after a warm-up (default 3)")
    ap.add_argument("--seed", type=seed, default=1, help="seed of the generated inputs (default 1)")
    ap.add_argument("--skip-dbn", action="store_true", help="replay the ITCH days only")
    a = ap.parse_args(argv)
    check_itch_days(ap, a.messages, a.symbols)
    sizes = a.symbols
    print(f"machine: {machine()}")

    print(f"\nITCH 5.0, {a.messages:,} generated messages, books only:")
    for k in sizes:
        data = itch.generate(None, messages=a.messages, symbols=k, seed=a.seed)

        def replay():
            r = itch.Replayer(record_tob=False, record_trades=False)
            r.feed(data)
            r.finish()
            return r

        before = resident()
        r = replay()
        grown = resident() - before if sys.platform.startswith("linux") else 0
        rate_line(f"{k:,} symbols", a.messages, *timed(replay, a.repeat))
        print(f"    {r.stats['open_orders']:,} resting orders at the end; "
              f"{_size(grown)} resident for the books ({_size(grown / max(1, len(r.books)))}"
              f" a book)")
        del r

    if a.skip_dbn:
        return 0
    from matchcore.feeds.dbn import replay_dbn
    from matchcore.feeds.dbn_gen import generate_mbo

    print(f"\nDBN MBO, {a.records:,} generated records, books only:")
    with tempfile.TemporaryDirectory() as tmp:
        for k in sizes:
            path = generate_mbo(Path(tmp) / f"m{k}.dbn", records=a.records, instruments=k,
                                seed=a.seed)
            rate_line(f"{k:,} instruments", a.records,
                      *timed(lambda: replay_dbn(path, record_tob=False, record_trades=False),
                             a.repeat))
            path.unlink()
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    rc = main()
    print(f"({time.perf_counter() - t0:.0f} s)")
    sys.exit(rc)
