"""What the first ``process(commands, out=buf)`` batch costs into a fresh buffer.

A buffer the caller has just made is not yet backed by memory: the kernel maps each page on its
first write, inside the batch that writes it. Each run is a fresh process (so the page state of
an earlier run cannot help) that builds a ``market_heavy`` touch-flow book
(:func:`matchcore.workloads.touch_flow`) of ``--resting`` orders, then times one batch through
``process(batch, out=buf)``, with the buffer either fresh (``np.zeros``) or written once
beforehand (``buf.fill(0)``), and then the same batch on copies of the same starting book into
the now used buffer. The two kinds of run alternate. Reported per run: ns/msg of the first
batch, its minor page faults and kernel time, and the median ns/msg of the repeats.

Run:  python benchmarks/bench_first_batch.py [--runs 6] [--batch 30000] [--buffer 300000]
Reported, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(resting: int, batch: int, buffer: int, later: int, prefault: bool) -> dict:
    import numpy as np
    import matchcore as mc
    from matchcore.workloads import touch_flow

    setup, flow = touch_flow(batch, "market_heavy", resting=resting, seed=7)
    base = mc.OrderBook(capacity=resting + 4096)
    base.process(setup)
    base.events()
    book = base.copy()
    buf = np.zeros(buffer, dtype=mc.EVENT_DTYPE)
    if prefault:
        buf.fill(0)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter_ns()
    first = book.process(flow[:batch], out=buf)
    t1 = time.perf_counter_ns()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    if len(first) > len(buf):
        raise SystemExit("--buffer is too small for one batch's events")
    rest = []
    for _ in range(later):
        again = base.copy()            # the same batch on the same book, into the used buffer
        t2 = time.perf_counter_ns()
        again.process(flow, out=buf)
        rest.append((time.perf_counter_ns() - t2) / batch)
    return {"prefault": prefault, "first_ns_per_msg": (t1 - t0) / batch,
            "first_minor_faults": r1.ru_minflt - r0.ru_minflt,
            "first_sys_ms": (r1.ru_stime - r0.ru_stime) * 1e3,
            "again_ns_per_msg": statistics.median(rest) if rest else None}


def main(argv=None) -> int:
    from matchcore.bench.script_args import at_least_one, at_least_zero, integer
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--runs", type=at_least_one, default=6,
                    help="runs of each kind (fresh / written; default 6)")
    ap.add_argument("--resting", type=integer, default=1000,
                    help="orders resting on the book before the batch (default 1,000)")
    ap.add_argument("--batch", type=at_least_one, default=30_000,
                    help="commands of the timed batch (default 30,000)")
    ap.add_argument("--buffer", type=at_least_zero, default=300_000,
                    help="events the buffer holds (default 300,000)")
    ap.add_argument("--later", type=at_least_one, default=5,
                    help="repeats of the batch into the used buffer (default 5)")
    ap.add_argument("--one", choices=("fresh", "written"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one_run(a.resting, a.batch, a.buffer, a.later, a.one == "written")))
        return 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    rows = []
    for i in range(2 * a.runs):
        kind = ("fresh", "written")[i % 2]
        out = subprocess.run([sys.executable, __file__, "--one", kind, "--resting", str(a.resting),
                              "--batch", str(a.batch), "--buffer", str(a.buffer),
                              "--later", str(a.later)],
                             env=env, capture_output=True, text=True)
        if out.returncode != 0:
            # the child's own error (a buffer too small, a bad size): check=True raised a
            # CalledProcessError that named only the command line, its stderr dropped
            why = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
            sys.exit(f"bench_first_batch.py: a {kind} run failed: {why}")
        rows.append(json.loads(out.stdout))
        r = rows[-1]
        print(f"{kind:>7}: first batch {r['first_ns_per_msg']:8.1f} ns/msg, "
              f"{r['first_minor_faults']:4d} page faults, {r['first_sys_ms']:6.2f} ms in the kernel; "
              f"same batch again {r['again_ns_per_msg']:.1f} ns/msg", flush=True)
    for kind in ("fresh", "written"):
        f = [r["first_ns_per_msg"] for r in rows if r["prefault"] == (kind == "written")]
        later = [r["again_ns_per_msg"] for r in rows if r["prefault"] == (kind == "written")]
        print(f"{kind:>7} buffer: first batch {min(f):.1f}-{max(f):.1f} ns/msg "
              f"(median {statistics.median(f):.1f}); the same batch again "
              f"{min(later):.1f}-{max(later):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
