"""ITCH replay benchmark: decode-only, decode + book building, the pure-Python reference builder,
and memory while a gzip'd file streams.

A script, not a test (speed is reported, never asserted):

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_replay.py [--messages 5000000]
        [--symbols 100] [--seed 1] [--repeat 5] [--reference-messages 200000]

Input: a generated multi-symbol ITCH 5.0 day (matchcore.itch.generate, seeded). Each rate is the
median and best of ``--repeat`` runs after a warm-up run, wall clock and CPU time of the thread
(CPU time is what the code costs when other processes share the machine).
"""
from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import matchcore.itch as itch  # noqa: E402
from matchcore.itch._decode import decode_chunk  # noqa: E402
from matchcore.itch.reference import ReferenceReplay  # noqa: E402
from matchcore.bench.script_args import (at_least_one, check_itch_days, counted,  # noqa: E402
                                          decimal_size, seed)


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{model}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
            f"commit {commit or '?'}, load average {load:.2f} at start")


def timed(fn, repeat: int):
    fn()                                   # warm-up: page faults, allocator, caches
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - t0)
    return wall, cpu


def rate_line(name, n, wall, cpu):
    mw, bw = statistics.median(wall), min(wall)
    mc, bc = statistics.median(cpu), min(cpu)
    print(f"  {name:<38s} {n / mw / 1e6:7.2f} M msg/s median, {n / bw / 1e6:7.2f} best "
          f"(wall) | {n / mc / 1e6:7.2f} median, {n / bc / 1e6:7.2f} best (CPU) | "
          f"{mc / n * 1e9:6.1f} ns/msg")
    return n / mc


# The child reports its own high-water mark from /proc (ru_maxrss would include the parent's
# memory at fork time on Linux).
_HWM = ("print(next(int(l.split()[1]) for l in open('/proc/self/status') "
        "if l.startswith('VmHWM')))")


def peak_rss_kib(code: str) -> int:
    out = subprocess.run([sys.executable, "-c", code + "; " + _HWM], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--messages", type=at_least_one, default=5_000_000,
                    help="messages of the generated ITCH day (default 5,000,000)")
    ap.add_argument("--symbols", type=at_least_one, default=100,
                    help="symbols of the generated ITCH day (default 100)")
    ap.add_argument("--seed", type=seed, default=1, help="seed of the ITCH day (default 1)")
    ap.add_argument("--repeat", type=at_least_one, default=5,
                    help="timed runs of each after a warm-up (default 5)")
    ap.add_argument("--reference-messages", type=at_least_one, default=200_000,
                    help="messages the pure-Python reference replays (default 200,000)")
    ap.add_argument("--skip-memory", action="store_true",
                    help="leave out the peak-memory runs of a gzip'd file")
    a = ap.parse_args(argv)
    check_itch_days(ap, a.messages, [a.symbols])

    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    data = itch.generate(None, messages=a.messages, symbols=a.symbols, seed=a.seed)
    gen_s = time.perf_counter() - t0
    n = a.messages
    print(f"input: {n:,} generated ITCH 5.0 messages, {a.symbols} symbols, seed {a.seed}, "
          f"{decimal_size(len(data))} (generated in {gen_s:.2f} s = {n / gen_s / 1e6:.1f} M msg/s)")
    counts = itch.decode(data).stats["counts"]
    print("mix: " + ", ".join(f"{t} {c / n:.1%}" for t, c in sorted(counts.items(), key=lambda kv: -kv[1])
                              if c / n >= 0.001))

    print(f"\nrates (median and best of {counted(a.repeat, 'run')} after a warm-up):")
    rate_line("decode only (numpy arrays per type)", n, *timed(lambda: decode_chunk(data), a.repeat))

    def replay(**kw):
        r = itch.Replayer(**kw)
        r.feed(data)
        return r

    # Without sinks the loop builds the books only (the top of book is not followed).
    rate_line("decode + books (no sinks)", n,
              *timed(lambda: replay(record_tob=False, record_trades=False), a.repeat))
    rate_line("decode + books + TOB/trade sinks", n, *timed(lambda: replay(), a.repeat))
    rate_line("... + snapshots every 10,000 msgs", n,
              *timed(lambda: replay(snapshot_every=10_000), a.repeat))
    r = replay()
    print(f"  (final state: {sum(len(b) for b in r.books.values()):,} resting orders in "
          f"{len(r.books)} books; {len(r.tob()):,} TOB records, {len(r.trades()):,} trades)")

    # The pure-Python reference builder on a slice (same messages from the start of the day).
    m = min(a.reference_messages, n)
    pos = 0
    for _ in range(m):
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    head = data[:pos]

    def ref():
        ReferenceReplay().feed(head)

    wall, cpu = timed(ref, max(1, a.repeat // 2))
    py = rate_line(f"pure-Python reference ({m:,} msgs)", m, wall, cpu)
    wall, cpu = timed(lambda: itch.Replayer(record_tob=False, record_trades=False).feed(head),
                      a.repeat)
    comp = rate_line(f"compiled, same {m:,} msgs (no sinks)", m, wall, cpu)
    ratio = comp / py
    # whole numbers only where the decimals no longer matter: on a few reference messages
    # the compiled replay's set-up can make it the slower, and 0.37 read "0x"
    print(f"  compiled / pure Python (CPU time): "
          f"{f'{ratio:,.0f}' if ratio >= 10 else f'{ratio:.2f}'}x")

    if not a.skip_memory:
        print("\nmemory while a gzip'd file streams (peak RSS of a fresh process, sinks off):")
        base = peak_rss_kib("import matchcore.itch")
        print(f"  after import only: {base / 1024:8.1f} MiB")
        with tempfile.TemporaryDirectory() as tmp:
            for k in (5, 1):
                part = data if k == 1 else head_bytes(data, n // k)
                gz = Path(tmp) / f"day{k}.itch.gz"
                with gzip.open(gz, "wb", compresslevel=1) as f:
                    f.write(part)
                code = ("import matchcore.itch as itch; "
                        f"r = itch.replay_file({str(gz)!r}, record_tob=False, record_trades=False); "
                        "print(r.stats['open_orders'])")
                rss = peak_rss_kib(code)
                print(f"  {len(part) / 1e6:8.1f} MB uncompressed ({gz.stat().st_size / 1e6:6.1f} MB "
                      f"gzip): peak RSS {rss / 1024:8.1f} MiB (+{(rss - base) / 1024:.1f} MiB over "
                      f"import: {itch.CHUNK_SIZE >> 20} MiB read buffer, the books, the replay state)")
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


def head_bytes(data: bytes, messages: int) -> bytes:
    pos = 0
    for _ in range(messages):
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    return data[:pos]


if __name__ == "__main__":
    sys.exit(main())
