"""Dask replay benchmark: N generated ITCH files replayed serially in this process vs as tasks
on a 2-worker LocalCluster, and DBN MBO replay throughput (plain and zstd) against decoding
the same file with the databento-dbn package.

A script, not a test (speed is reported, never asserted):

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_dask.py [--files 8]
        [--messages 500000] [--symbols 8] [--workers 2] [--repeat 5] [--dbn-records 1000000]

Inputs are seeded (matchcore.itch.generate, matchcore.feeds.dbn_gen.generate_mbo). Every timing
is taken after a warm-up run (for Dask: after the workers have imported matchcore and replayed
once); the runs' wall times are reported as p50 / min / max. The cluster's start-up time is
reported apart. The Dask results are checked equal to the serial ones (stats, every trade
record and book state hashes of every file) before any figure is printed. Needs the dask and
dbn extras.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import matchcore.itch as itch  # noqa: E402
from bench_replay import machine  # noqa: E402
from matchcore.cluster.dask import connect, replay_files, replay_serial  # noqa: E402
from matchcore.bench.script_args import decimal_size  # noqa: E402


def runs(fn, repeat: int) -> list[float]:
    fn()                                   # warm-up: imports, page cache, allocator
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def line(name: str, n: int, unit: str, wall: list[float]) -> str:
    p50 = statistics.median(wall)
    return (f"{name:<44} p50 {p50 * 1e3:9.1f} ms  min {min(wall) * 1e3:9.1f}  "
            f"max {max(wall) * 1e3:9.1f}   {n / p50 / 1e6:7.2f} M {unit}/s (p50)")


def same(a, b) -> bool:
    # zip() alone stopped at the shorter list: a run that lost files still read "identical"
    # every trade record, not only their count: the report says the trades are identical
    return len(a.files) == len(b.files) and all(
        x.stats == y.stats and x.hashes == y.hashes and x.trades.dtype == y.trades.dtype
        and np.array_equal(x.trades, y.trades) for x, y in zip(a.files, b.files))


def _count(text: str) -> int:
    # a count below 1 was found only after every file had been generated, as a traceback
    from matchcore.bench.script_args import at_least_one

    return at_least_one(text)


def _workers(text: str) -> int:
    # the LocalCluster's worker processes: at most what matchcore.cluster.dask starts
    from matchcore.cluster.dask import MAX_LOCAL_WORKERS

    value = _count(text)
    if value > MAX_LOCAL_WORKERS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_LOCAL_WORKERS}, got {value}")
    return value


def main(argv=None) -> int:
    from matchcore.bench.script_args import seed

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--files", type=_count, default=8,
                    help="ITCH files generated and replayed (default 8)")
    ap.add_argument("--messages", type=_count, default=500_000,
                    help="ITCH messages per file (default 500,000)")
    ap.add_argument("--symbols", type=_count, default=8, help="symbols per ITCH file (default 8)")
    ap.add_argument("--workers", type=_workers, default=2,
                    help="worker processes of the LocalCluster (default 2)")
    ap.add_argument("--seed", type=seed, default=1,
                    help="seed of the first file; file i takes seed + i (default 1)")
    ap.add_argument("--repeat", type=_count, default=5,
                    help="timed runs of each kind after a warm-up (default 5)")
    ap.add_argument("--dbn-records", type=_count, default=1_000_000,
                    help="records of the generated DBN MBO file (default 1,000,000)")
    args = ap.parse_args(argv)
    from matchcore.bench.script_args import check_itch_days

    check_itch_days(ap, args.messages, [args.symbols])
    if args.seed + args.files - 1 >= 2**64:
        # file i takes seed S + i: the generator refused the first past 2**64 - 1 with a
        # traceback, after the files before it had been generated
        ap.error(f"argument --seed: {args.seed} with --files {args.files}: the files take "
                 f"seeds {args.seed}..{args.seed + args.files - 1}, past 2**64 - 1")
    # the generated ITCH days and DBN files (hundreds of MB at the default sizes) go with it
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        return _run(args, Path(tmp))


def _run(args, tmp: Path) -> int:
    from matchcore.bench.script_args import counted

    print(machine())
    paths = [itch.generate(tmp / f"day{i}.itch", messages=args.messages, symbols=args.symbols,
                           seed=args.seed + i) for i in range(args.files)]
    total = args.files * args.messages
    size = sum(p.stat().st_size for p in paths)
    print(f"\n{counted(args.files, 'ITCH file')} x {args.messages:,} messages ({args.symbols} "
          f"symbols, seed {args.seed}..): {decimal_size(size)}; "
          f"{counted(args.repeat, 'run')} after a warm-up")
    t0 = time.perf_counter()
    client = connect("local", workers=args.workers, processes=True)
    print(f"LocalCluster start-up ({counted(args.workers, 'worker process', 'worker processes')}, "
          f"1 thread each): "
          f"{time.perf_counter() - t0:.2f} s (not in the figures below)")
    try:
        for label, kw in (("sinks on (top of book + trades)", {}),
                          ("books only (no sinks)", {"record_tob": False,
                                                      "record_trades": False})):
            serial = replay_serial(paths, **kw)
            dask = replay_files(paths, client, **kw)
            if not same(serial, dask):
                print("ERROR: the Dask results differ from the serial ones", file=sys.stderr)
                return 1
            ws = runs(lambda: replay_serial(paths, **kw), args.repeat)
            wd = runs(lambda: replay_files(paths, client, **kw), args.repeat)
            print(f"[{label}] results identical (stats, trades, book hashes of every file)")
            print(line("  serial, this process", total, "msg", ws))
            print(line(f"  Dask LocalCluster, {counted(args.workers, 'worker')}", total, "msg",
                       wd))
            print(f"  speed-up (serial p50 / Dask p50): "
                  f"{statistics.median(ws) / statistics.median(wd):.2f}x")
            # Where the time goes: the replays' own time inside the tasks (summed over files)
            # against the wall time; a worker slower than the serial process means no free core.
            a = replay_serial(paths, **kw)
            b = replay_files(paths, client, **kw)
            print(f"  replay time inside the tasks, summed over files: serial "
                  f"{sum(f.elapsed_s for f in a.files) * 1e3:.0f} ms, Dask "
                  f"{sum(f.elapsed_s for f in b.files) * 1e3:.0f} ms (wall {b.elapsed_s * 1e3:.0f} ms)")
    finally:
        _close(client)
    _bench_dbn(tmp, args)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average {load:.2f} at the end")
    return 0


def _close(client) -> None:
    # Workers that lose the scheduler mid-heartbeat log a traceback; it says nothing here.
    import logging

    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    cluster = client.cluster
    client.close()
    cluster.close()


def _bench_dbn(tmp: Path, args) -> None:
    from matchcore.feeds.dbn import replay_dbn
    from matchcore.feeds.dbn_gen import generate_mbo

    n = args.dbn_records
    t0 = time.perf_counter()
    plain = generate_mbo(tmp / "mbo.dbn", records=n, instruments=args.symbols, seed=args.seed)
    zst = tmp / "mbo.dbn.zst"
    import zstandard

    zst.write_bytes(zstandard.ZstdCompressor(level=3).compress(plain.read_bytes()))
    print(f"\nDBN MBO file: {n:,} records, {args.symbols} instruments (seed {args.seed}), "
          f"{decimal_size(plain.stat().st_size)} plain, {decimal_size(zst.stat().st_size)} zstd "
          f"(written in {time.perf_counter() - t0:.1f} s by the package's encoder)")
    print(line("  replay .dbn (decode + books + sinks)", n, "rec", runs(lambda: replay_dbn(plain),
                                                                      args.repeat)))
    print(line("  replay .dbn (books only)", n, "rec", runs(
        lambda: replay_dbn(plain, record_tob=False, record_trades=False), args.repeat)))
    print(line("  replay .dbn.zst (decode + books + sinks)", n, "rec",
               runs(lambda: replay_dbn(zst), args.repeat)))
    import databento_dbn

    data = plain.read_bytes()
    blob = zst.read_bytes()

    def decompress():
        zstandard.ZstdDecompressor().decompressobj().decompress(blob)

    print(line("  for reference: zstd decompression alone", n, "rec",
               runs(decompress, args.repeat)))

    def package_decode():
        dec = databento_dbn.DBNDecoder()
        dec.write(data)
        dec.decode()

    print(line("  baseline: databento_dbn.DBNDecoder, decode only", n, "rec",
               runs(package_decode, args.repeat)))


if __name__ == "__main__":
    sys.exit(main())
