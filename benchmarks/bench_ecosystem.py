"""Cost of the integrations: replay throughput with Prometheus metrics off and on, the compiled
service-time histogram against plain ``process()``, and the publishing rate to NATS JetStream.

A script, not a test (speed is reported, never asserted):

    .venv/bin/python benchmarks/bench_ecosystem.py [--messages 2000000] [--symbols 50] [--seed 1]
        [--repeat 7] [--json OUT]

Needs the extras ``metrics`` and ``nats`` (a local ``nats-server -js`` is started on a free
port with a temporary store and stopped at the end).

* Replay, metrics off / on: the same file through ``itch.replay_file`` (4 MiB chunks, top-of-book
  and trade sinks on, as ``matchcore replay`` runs), alternating off and on after a warm-up so
  that both see the same machine load. "On" is what ``--metrics-port`` does: a
  ``ReplayMetrics.update`` per chunk and the HTTP endpoint up, scraped every 0.5 s by a thread.
  Rates per run (wall clock and CPU time of the replaying thread); the cost is the ratio of the
  medians.
* Engine: ``EngineMetrics.process`` (a clock pair per command, histogram in compiled code, events
  counted with numpy) against ``Engine.process`` on the same seeded flow, alternating.
* NATS: one replay with ``record_l2=True`` publishing trades, top of book and L2 changes through
  ``ReplayPublisher``; the replay rate while publishing, then the time until the broker has
  acknowledged every batch: NATS messages (batches) and records per second, end to end.
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import matchcore as mc  # noqa: E402
import matchcore.itch as itch  # noqa: E402
from matchcore.bench.machine import machine_info  # noqa: E402
from matchcore.bench.script_args import (at_least_one, check_itch_days,  # noqa: E402
                                         check_json_output, counted, decimal_size, integer,
                                         seed)


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def run_replay(path, on_chunk=None, **opts):
    t0, c0 = time.perf_counter(), time.thread_time()
    r = itch.replay_file(path, on_chunk=on_chunk, **opts)
    return r, time.perf_counter() - t0, time.thread_time() - c0


def bench_metrics(path, repeat):
    from matchcore.io.metrics import ReplayMetrics, serve_metrics

    def off():
        r, w, c = run_replay(path)
        return r.stats["messages"], w, c

    def on():
        m = ReplayMetrics()
        stop = threading.Event()
        with serve_metrics(0, registry=m.registry) as srv:
            def scraper():
                while not stop.wait(0.5):
                    urllib.request.urlopen(srv.url, timeout=5).read()
            t = threading.Thread(target=scraper, daemon=True)
            t.start()
            r, w, c = run_replay(path, on_chunk=m.update)
            m.update(r, final=True)
            stop.set()
            t.join()
        return r.stats["messages"], w, c

    off()                                                   # warm-up (page cache, allocator)
    on()
    res = {"off_wall": [], "on_wall": [], "off_cpu": [], "on_cpu": []}
    n = 0
    for i in range(repeat):
        # ABBA order: neither variant always runs first (after the other's frees and GC)
        for name, fn in ((("off", off), ("on", on)) if i % 2 == 0 else (("on", on), ("off", off))):
            gc.collect()
            n, w, c = fn()
            res[f"{name}_wall"].append(n / w)
            res[f"{name}_cpu"].append(n / c)
    res["messages"] = n
    return res


def callgrind_instructions(path, mode):
    """Instructions of one process that imports everything and runs one replay (mode off/on)
    or none (the baselines: imports, and imports + the endpoint started and stopped);
    valgrind's count, repeatable whatever the load."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, __file__, "--single", mode, "--path", str(path)],
                         capture_output=True, text=True)
    for line in out.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    raise RuntimeError(f"no instruction count from valgrind: {out.stderr[-500:]}")


def single(path, mode):
    from matchcore.io.metrics import ReplayMetrics, _prom, serve_metrics

    _prom()                         # every mode imports prometheus_client: not counted as cost

    if mode == "off":
        itch.replay_file(path)
    elif mode == "none-server":         # the one-off cost of the endpoint, without a replay
        m = ReplayMetrics()
        with serve_metrics(0, registry=m.registry):
            pass
    elif mode == "on":
        m = ReplayMetrics()
        with serve_metrics(0, registry=m.registry):
            r = itch.replay_file(path, on_chunk=m.update)
            m.update(r, final=True)


def flow(n, seed, symbols):
    rng = np.random.default_rng(seed)
    c = np.zeros(n, mc.COMMAND_DTYPE)
    c["order_id"] = np.arange(1, n + 1)
    c["side"] = rng.integers(0, 2, n)
    c["price"] = 1000 + rng.integers(-20, 21, n)
    c["qty"] = rng.integers(1, 100, n)
    c["symbol"] = rng.integers(1, symbols + 1, n)
    c["ts_ns"] = np.arange(n)
    return c


def bench_engine(repeat, n=500_000, symbols=8):
    from matchcore.io.metrics import EngineMetrics

    cmds = flow(n, 7, symbols)

    def engine():
        e = mc.Engine()
        for s in range(1, symbols + 1):
            e.add_symbol(s, f"S{s}")
        return e

    from matchcore._timing import process_histogram

    plain, measured, recorder, sampled = [], [], [], []
    for i in range(repeat + 1):
        e = engine()
        t0 = time.perf_counter()
        e.process(cmds)
        dt_plain = time.perf_counter() - t0
        e3 = engine()
        counts = np.zeros(16, dtype=np.int64)
        t0 = time.perf_counter()
        process_histogram(e3, cmds, np.arange(1, 15) * 100.0, counts)
        dt_rec = time.perf_counter() - t0
        e4 = engine()
        t0 = time.perf_counter()
        process_histogram(e4, cmds, np.arange(1, 15) * 100.0, counts, "auto", 16)
        dt_s = time.perf_counter() - t0
        e2 = engine()
        m = EngineMetrics(e2)
        t0 = time.perf_counter()
        m.process(cmds)
        dt_m = time.perf_counter() - t0
        if i:                                               # the first round is the warm-up
            plain.append(n / dt_plain)
            recorder.append(n / dt_rec)
            sampled.append(n / dt_s)
            measured.append(n / dt_m)
    snap = m.snapshot()
    h = snap["hist"]
    return {"commands": n, "plain": plain, "recorder": recorder, "sampled16": sampled,
            "metrics": measured,
            "clock": m.clock,
            "hist_bounds_ns": m.bounds_ns.tolist(), "hist_counts": h[:-1].tolist()}


def bench_nats(path):
    from matchcore.io.nats import NatsPublisher, NatsServer, ReplayPublisher

    with NatsServer() as srv:
        pub = NatsPublisher(srv.url)
        bridge = ReplayPublisher(pub)
        t0 = time.perf_counter()
        r, w, c = run_replay(path, on_chunk=bridge, record_l2=True)
        replay_s = time.perf_counter() - t0
        pub.flush(timeout=600)
        total_s = time.perf_counter() - t0
        st = pub.close()
    return {"messages": r.stats["messages"], "replay_s": replay_s, "replay_cpu_s": c,
            "total_s": total_s, "batches": bridge.batches, "records": dict(bridge.records),
            "stats": {k: v for k, v in st.items() if k != "last_error"},
            "last_error": st["last_error"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--messages", type=at_least_one, default=2_000_000,
                    help="messages of the generated ITCH day (default 2,000,000)")
    ap.add_argument("--symbols", type=at_least_one, default=50,
                    help="symbols of the generated ITCH day (default 50)")
    ap.add_argument("--seed", type=seed, default=1, help="seed of the ITCH day (default 1)")
    ap.add_argument("--repeat", type=at_least_one, default=7,
                    help="timed runs of each kind after a warm-up (default 7)")
    ap.add_argument("--json", default=None, metavar="OUT",
                    help="also write the figures as JSON to OUT")
    ap.add_argument("--callgrind", type=integer, default=0, metavar="N",
                    help="also count instructions of a replay of the first N messages' day "
                         "with metrics off/on under valgrind (default 0: skip)")
    ap.add_argument("--single", choices=("none", "none-server", "off", "on"), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--path", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    check_json_output(ap, a.json)
    # the days' sizes, checked before any work: a --callgrind day failed in the generator
    # only after the whole metrics comparison had run
    from matchcore.itch._gen import min_messages

    check_itch_days(ap, a.messages, [a.symbols])
    least = min_messages(a.symbols)
    if a.callgrind != 0 and a.callgrind < least:
        ap.error(f"argument --callgrind: must be 0 (skip) or at least {least}, the messages "
                 f"of a {a.symbols}-symbol day, got {a.callgrind}")
    if a.callgrind and shutil.which("valgrind") is None:
        ap.error("argument --callgrind: needs valgrind, which is not on PATH")
    if a.single:
        return single(a.path, a.single)
    info = machine_info()
    load0 = os.getloadavg()
    print(f"machine: {info.get('cpu', info)}; load average at start {load0[0]:.2f}")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "day.itch"
        itch.generate(path, messages=a.messages, symbols=a.symbols, seed=a.seed)
        print(f"day: {a.messages:,} messages, {a.symbols} symbols, seed {a.seed}, "
              f"{decimal_size(path.stat().st_size)}")
        res = {"machine": info, "load_start": load0[0], "args": vars(a)}
        m = bench_metrics(path, a.repeat)
        res["metrics"] = m
        print(f"\nreplay, metrics off vs on ({counted(a.repeat, 'alternating run')} each after a warm-up)")
        for key, label in (("wall", "wall clock"), ("cpu", "CPU time of the thread")):
            off, on = m[f"off_{key}"], m[f"on_{key}"]
            cost = 1 - statistics.median(on) / statistics.median(off)
            print(f"  {label:<24} off p50 {pct(off, 50) / 1e6:6.2f} M msg/s (min {min(off) / 1e6:.2f}, "
                  f"max {max(off) / 1e6:.2f}); on p50 {pct(on, 50) / 1e6:6.2f} M msg/s (min "
                  f"{min(on) / 1e6:.2f}, max {max(on) / 1e6:.2f}); cost {100 * cost:+.1f}%")
            m[f"cost_{key}"] = cost
        if a.callgrind:
            small = Path(d) / "small.itch"
            itch.generate(small, messages=a.callgrind, symbols=a.symbols, seed=a.seed)
            # each variant minus its own baseline (imports; imports + endpoint start and stop):
            # what remains is the replay and, for "on", the per-chunk metric updates
            ins = {"off": callgrind_instructions(small, "off") - callgrind_instructions(small, "none"),
                   "on": callgrind_instructions(small, "on")
                   - callgrind_instructions(small, "none-server")}
            res["callgrind"] = {"messages": a.callgrind, **ins}
            print(f"  instructions (callgrind, {a.callgrind:,}-message day, imports subtracted): "
                  f"off {ins['off'] / a.callgrind:.0f}/msg, on {ins['on'] / a.callgrind:.0f}/msg: "
                  f"cost {100 * (ins['on'] / ins['off'] - 1):+.2f}%")
        e = bench_engine(a.repeat)
        res["engine"] = e
        cost = 1 - statistics.median(e["metrics"]) / statistics.median(e["plain"])
        e["cost"] = cost
        rcost = 1 - statistics.median(e["recorder"]) / statistics.median(e["plain"])
        e["recorder_cost"] = rcost
        print(f"\nengine, {e['commands']:,} commands over 8 symbols: process() p50 "
              f"{pct(e['plain'], 50) / 1e6:.2f} M cmd/s; process_histogram() (clock {e['clock']}) "
              f"p50 {pct(e['recorder'], 50) / 1e6:.2f} M cmd/s, cost {100 * rcost:+.1f}%; one in "
              f"16 timed p50 {pct(e['sampled16'], 50) / 1e6:.2f} M cmd/s, cost "
              f"{100 * (1 - statistics.median(e['sampled16']) / statistics.median(e['plain'])):+.1f}%; "
              f"EngineMetrics.process() (+ counting the events) p50 "
              f"{pct(e['metrics'], 50) / 1e6:.2f} M cmd/s, cost {100 * cost:+.1f}%")
        cnt = np.asarray(e["hist_counts"])
        cum = np.cumsum(cnt) / cnt.sum()
        bounds = e["hist_bounds_ns"] + [float("inf")]
        for q in (0.5, 0.9, 0.99, 0.999):
            k = int(np.searchsorted(cum, q))
            print(f"  service time p{q * 100:g} <= {bounds[k]:g} ns (histogram bucket bound)")
        nres = bench_nats(path)
        res["nats"] = nres
        recs = sum(nres["records"].values())
        print("\nNATS JetStream publishing (trade, tob, l2), local server, one connection:")
        print(f"  replay while publishing: {nres['messages'] / nres['replay_s'] / 1e6:.2f} M msg/s "
              f"({nres['replay_s']:.2f} s wall)")
        print(f"  until every batch was acknowledged: {nres['total_s']:.2f} s -> "
              f"{nres['stats']['published'] / nres['total_s']:,.0f} NATS messages/s, "
              f"{nres['stats']['records_published'] / nres['total_s'] / 1e6:.2f} M records/s, "
              f"{nres['stats']['bytes_published'] / nres['total_s'] / 1e6:.1f} MB/s")
        print(f"  batches {nres['batches']:,}, records {recs:,} ({nres['records']}); published "
              f"{nres['stats']['published']:,}, dropped {nres['stats']['dropped']:,}, undelivered "
              f"{nres['stats']['undelivered']:,}, unconfirmed {nres['stats']['unconfirmed']:,}")
    load1 = os.getloadavg()
    res["load_end"] = load1[0]
    print(f"\nload average at end {load1[0]:.2f}")
    if a.json:
        # whole or not at all: a run failing while writing (a full disk) leaves the old file
        from matchcore._cliutil import write_json

        write_json(a.json, res, "--json", indent=2, default=str)


if __name__ == "__main__":
    main()
