"""What a ``native.Recorder`` adds to each call: submit and cancel through it and on the bare book.

Each round makes a fresh book (``record_events=False``: nobody reads the events) and, for the
Recorder, a fresh command file in a temporary directory, then times ``--calls`` submits (resting,
never crossing, over 50 prices a side) and then cancels of the same ids, by the calling thread's
CPU time (a shared machine's other jobs do not count). The bare book and the Recorder alternate
round by round; reported per method: the best and the median round in ns per call, and the
Recorder's extra cost over the bare book's (medians, same run). The Recorder's flush is left to
``close()`` outside the timed loop (``flush_every`` above ``--calls``): what is timed is the
per-call path, the call and its record.

Run:  python benchmarks/bench_recorder.py [--calls 200000] [--rounds 7] [--json OUT]
Reported, never asserted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def one_round(calls: int, recorded: bool) -> dict:
    import matchcore as mc
    from matchcore.native import Recorder

    book = mc.OrderBook(capacity=calls + 16, record_events=False)
    with tempfile.TemporaryDirectory() as d:
        target = (Recorder(book, os.path.join(d, "s.mccmd"), flush_every=calls + 1)
                  if recorded else book)
        sub, can = target.submit, target.cancel
        t0 = time.thread_time_ns()
        for i in range(calls):
            # buys at 915..964, sells at 975..1024: every order rests
            sub(i + 1, i & 1, 975 + i % 50 - (60 if i & 1 == 0 else 0), 1)
        t1 = time.thread_time_ns()
        for i in range(calls):
            can(i + 1)
        t2 = time.thread_time_ns()
        if recorded:
            target.close()
    return {"submit": (t1 - t0) / calls, "cancel": (t2 - t1) / calls}


def main(argv=None) -> int:
    from matchcore.bench.script_args import at_least_one, check_json_output
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--calls", type=at_least_one, default=200_000,
                    help="calls per method per round (default 200,000)")
    ap.add_argument("--rounds", type=at_least_one, default=7,
                    help="rounds of each kind (default 7)")
    ap.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    a = ap.parse_args(argv)
    # an output that cannot be written is refused before the rounds, not after them
    check_json_output(ap, a.json)
    rows = {"book": [], "recorder": []}
    for _ in range(a.rounds):
        rows["book"].append(one_round(a.calls, False))
        rows["recorder"].append(one_round(a.calls, True))
    out = {}
    for method in ("submit", "cancel"):
        fig = {}
        for kind in ("book", "recorder"):
            ns = [r[method] for r in rows[kind]]
            fig[kind] = {"best_ns": min(ns), "median_ns": statistics.median(ns)}
        fig["recorder_adds_ns"] = fig["recorder"]["median_ns"] - fig["book"]["median_ns"]
        out[method] = fig
        print(f"{method:>6}: bare book {fig['book']['best_ns']:7.1f} ns best, "
              f"{fig['book']['median_ns']:7.1f} median; through the Recorder "
              f"{fig['recorder']['best_ns']:7.1f} best, {fig['recorder']['median_ns']:7.1f} "
              f"median: {fig['recorder_adds_ns']:.0f} ns more per call", flush=True)
    if a.json:
        # whole or not at all (a temporary renamed over the old file), as the other scripts
        from matchcore._cliutil import write_json
        write_json(a.json, {"calls": a.calls, "rounds": a.rounds, **out}, "--json", indent=1)
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
