"""The benchmark harness on tiny workloads: shapes, monotone percentiles, open loop never below
service time, the timed loops apply exactly what process() applies, and the JSON fields."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import matchcore as mc
from matchcore import _timing
from matchcore import workloads as W
from matchcore.bench import harness
from matchcore.bench.harness import PCT_NAMES
from bench_checks import load_script as _load_script
from bench_checks import refused_before_work as _refused_before_work


@pytest.fixture(scope="module")
def tiny():
    return W.standard_mix(3_000, seed=11)


def _monotone(s):
    vals = [s[k] for k in PCT_NAMES] + [s["max"]]
    return all(a <= b for a, b in zip(vals, vals[1:]))


@pytest.mark.parametrize("clock", ["monotonic", "auto"])
def test_process_timed_one_nonnegative_sample_per_message(tiny, clock):
    setup, flow = tiny
    lat = _timing.process_timed(harness.build_book(setup, flow), flow, clock)
    assert lat.shape == (len(flow),) and lat.dtype == np.int64
    assert (lat >= 0).all()


def test_timed_loops_leave_the_same_book_as_process(tiny):
    setup, flow = tiny
    ref = harness.build_book(setup, flow)
    ref.process(flow)
    timed = harness.build_book(setup, flow)
    _timing.process_timed(timed, flow)
    opened = harness.build_book(setup, flow)
    _timing.process_open_loop(opened, flow, rate=50e6)
    batch = harness.build_book(setup, flow)
    _timing.process_batch_ns(batch, flow, emit=False)
    for b in (timed, opened, batch):
        assert b.state_hash() == ref.state_hash()
        assert len(b.events()) == 0  # the timed loops leave no events behind


def test_summarize_percentiles_monotone_and_net_subtracts_overhead(tiny):
    setup, flow = tiny
    lat = harness.closed_loop(harness.build_book(setup, flow), flow)
    s = harness.summarize(lat, overhead_ns=15.0)
    assert s["n"] == len(flow)
    assert _monotone(s)
    assert s["min"] <= s["p50"] <= s["max"]
    assert s["net"]["p50"] == max(s["p50"] - 15.0, 0.0)


def test_percentiles_are_real_samples():
    a = np.array([5, 1, 9, 3, 7])
    assert harness.percentiles(a, (0.1, 50, 100)) == [1.0, 5.0, 9.0]


def test_open_loop_latency_never_below_service_time(tiny):
    setup, flow = tiny
    base = harness.build_book(setup, flow)
    for rate in (1e6, 1e9):
        lat, svc = harness.open_loop(base, flow, rate, warmup=False)
        assert lat.shape == svc.shape == (len(flow),)
        assert (lat >= svc).all()
        assert (svc >= 0).all()


def test_open_loop_above_capacity_queues_every_message(tiny):
    # every message is due at once: each waits for all before it (no coordinated omission)
    setup, flow = tiny
    lat, svc = harness.open_loop(harness.build_book(setup, flow), flow, rate=1e15, warmup=False)
    assert (np.diff(lat) >= 0).all()
    assert lat[-1] >= svc.sum() * 0.99


def test_open_loop_explicit_arrivals_and_bad_arguments(tiny):
    setup, flow = tiny
    book = harness.build_book(setup, flow)
    lat, svc = _timing.process_open_loop(book, flow[:10], arrivals_ns=np.arange(10) * 1000.0)
    assert (lat >= svc).all()
    with pytest.raises(ValueError, match="rate"):
        _timing.process_open_loop(book, flow[:10])
    with pytest.raises(ValueError, match="non-decreasing"):
        _timing.process_open_loop(book, flow[:3], arrivals_ns=[0.0, 2.0, 1.0])
    with pytest.raises(TypeError):
        _timing.process_timed(book, np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="unknown clock"):
        _timing.process_timed(book, flow[:1], "sundial")


def test_open_loop_schedule_beyond_the_clock_or_not_finite_refused_not_negative(tiny):
    # a rate of 1e-300/s made the schedule inf, cast to garbage: negative latencies came back
    setup, flow = tiny
    book = harness.build_book(setup, flow)
    h = book.state_hash()
    for rate in (1e-300, 1e-12):
        with pytest.raises(ValueError, match="raise the rate"):
            _timing.process_open_loop(book, flow[:3], rate=rate)
    for arrivals in ([0.0, float("nan"), 5.0], [0.0, 1.0, float("inf")], [-5.0, 0.0, 1.0],
                     [0.0, 1.0, 1e30]):
        with pytest.raises(ValueError, match="finite ns offsets|raise the rate"):
            _timing.process_open_loop(book, flow[:3], arrivals_ns=arrivals)
    assert book.state_hash() == h and not book.busy
    # one message is due at once, whatever the rate; an empty flow runs
    lat, svc = _timing.process_open_loop(book, flow[:1], rate=1e-300)
    assert lat.shape == (1,) and 0 <= svc[0] <= lat[0]
    assert _timing.process_open_loop(book, flow[:0], rate=1e-300)[0].shape == (0,)


def test_clock_info_reports_overhead_and_resolution():
    info = harness.clock_info("auto")
    assert info["clock"] in ("tsc", "monotonic")
    assert info["overhead_ns"] >= 0 and info["resolution_ns"] > 0
    assert info["overhead_min_ns"] <= info["overhead_ns"] <= info["overhead_p99_ns"]


def test_hdr_curve_increasing_to_the_max():
    a = np.random.default_rng(1).integers(1, 10_000, 5_000)
    c = harness.hdr_curve(a)
    assert c["percentile"][0] == 0.0 and c["value_ns"][-1] == a.max()
    assert all(x <= y for x, y in zip(c["value_ns"], c["value_ns"][1:]))


def test_throughput_and_scaling_point_fields(tiny):
    setup, flow = tiny
    t = harness.throughput(harness.build_book(setup, flow), flow, reps=1)
    for k in ("emit", "no_emit", "process"):
        assert t[k]["msgs_per_s"] > 0 and t[k]["ns_per_msg"] > 0
    p = harness.scaling_point(setup, flow)
    assert p["resting"] == len(setup) and p["p50"] <= p["p99"] <= p["max"]


def test_cli_bench_tiny_run_writes_json_with_every_field(tmp_path, capsys):
    from matchcore.__main__ import main

    out = tmp_path / "out.json"
    rc = main(["bench", "standard", "market_maker", "rates", "baselines", "--messages", "3000",
               "--quick", "--json", str(out), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "closed loop" in printed and "rate sweep" in printed
    res = json.loads(out.read_text())
    m = res["machine"]
    for k in ("cpu", "cores_logical", "cores_usable", "python", "build_flags", "git", "compiler"):
        assert k in m
    assert res["clock"]["overhead_ns"] >= 0
    for name in ("standard", "market_maker"):
        r = res["workloads"][name]
        assert r["params"]["n"] == 3000 and r["params"]["seed"] == 1
        for section in (r["closed"], r["open"]["latency"], r["open"]["service"]):
            assert all(k in section for k in PCT_NAMES + ("max", "mean", "n"))
            assert _monotone(section)
        assert r["throughput"]["emit"]["msgs_per_s"] > 0
        assert r["open"]["rate_per_s"] > 0
    pts = res["rate_sweep"]["points"]
    assert len(pts) == 9 and all(_monotone(p["latency"]) for p in pts)
    assert res["baselines"]["results"]["reference"]["slower_than_matchcore"] > 0


def test_cli_bench_unknown_workload_exits_with_message(capsys):
    from matchcore.__main__ import main

    assert main(["bench", "everything", "--quick", "--no-progress"]) == 1
    assert "unknown workload" in capsys.readouterr().err


def test_core_benchmarks_small_sizes_report_every_target():
    from matchcore.bench.core import run_core
    from matchcore.bench.report import format_core

    core = run_core(messages=3_000, quick=True, sizes=(1_000, 5_000), depth_sizes=(1_000, 5_000),
                    scaling_passes=2)
    for op in ("noop", "noop4", "submit", "cancel", "modify", "marketable", "best_bid", "depth10"):
        assert core["per_call"][op]["ns_per_call"] > 0
    assert set(core["met"]) == {"per_call_vs_floor", "process_msgs_per_s", "deep_vs_small",
                                "touch_process_msgs_per_s", "vs_reference"}
    assert core["vs_targets"]["deep_vs_small"] > 0
    for point in core["resting"].values():     # each size: the best of its passes
        assert len(point["ns_per_msg_passes"]) == 2
        assert point["ns_per_msg"] == min(point["ns_per_msg_passes"]) > 0
    for name in ("wide_book", "stale_cancel", "market_heavy"):
        assert core["vs_targets"]["touch_deep_vs_small"][name] > 0
        assert core["vs_targets"]["touch_process_msgs_per_s"][name] > 0
    for op in ("submit", "cancel", "modify"):
        assert core["per_call"][op]["vs_same_signature"] > 0
    for op in ("submit", "cancel", "modify", "marketable"):
        pc = core["per_call"][op]
        assert pc["compiled_ns_per_cmd"] > 0
        assert pc["vs_empty_plus_compiled"] == pytest.approx(
            pc["ns_per_call"] / (core["per_call"][
                "noop_cancel" if op == "cancel" else
                "noop_modify" if op == "modify" else "noop_submit"]["ns_per_call"]
                + pc["compiled_ns_per_cmd"]))
    # the compiled figures come from the same commands: both books end alike
    assert core["per_call"]["same_final_book"] is True
    assert set(core["engine"]["workloads"]) == {"standard", "wide_book", "stale_cancel",
                                                "market_heavy"}
    for w in core["engine"]["workloads"].values():
        assert w["engine_ns_per_msg"] > 0 and w["book_ns_per_msg"] > 0
    table = format_core(core)
    assert "targets met" in table
    assert "process() ns/cmd" in table


def test_engine_vs_book_same_flows_same_events():
    # The engine's figures are only comparable if it does the same work: with the book as its
    # symbol (alone, or beside one the flow never names), every flow the comparison times gives
    # the engine exactly the book's events.
    import numpy as np
    from matchcore import workloads
    from matchcore._engine import Engine
    from matchcore.bench import harness
    from matchcore.bench.core import engine_vs_book
    from matchcore.bench.report import format_engine

    res = engine_vs_book(messages=3_000, reps=1, chunk=1024)
    assert set(res["workloads"]) == {"standard", "wide_book", "stale_cancel", "market_heavy"}
    for w in res["workloads"].values():
        assert w["book_ns_per_msg"] > 0 and w["engine_ns_per_msg"] > 0
        assert w["engine_vs_book"] == w["engine_ns_per_msg"] / w["book_ns_per_msg"]
        assert w["routed_vs_book"] == w["routed_ns_per_msg"] / w["book_ns_per_msg"]
    assert "Engine / OrderBook" in format_engine(res)
    assert "2 symbols / OrderBook" in format_engine(res)
    for name in ("standard", "market_heavy"):
        if name == "standard":
            setup, flow = workloads.standard_mix(3_000, seed=1)
        else:
            w = workloads.generate(name, 3_000, seed=1, resting=1000)
            setup, flow = w.setup, w.flow
        book = harness.build_book(setup, flow)
        done = book.copy()
        want = done.process(flow)
        for symbols in (1, 2):                      # with two, ids are routed across books
            eng = Engine()
            for s in range(symbols):
                eng.add_symbol(s, capacity=harness._capacity(setup, flow))
            eng.process(setup)
            assert np.array_equal(eng.process(flow), want), (name, symbols)
            assert eng.book(0).state_hash() == done.state_hash()


def test_plots_written_from_a_result(tmp_path):
    pytest.importorskip("matplotlib")
    from matchcore.cli_bench import run_bench
    from matchcore.bench.plots import plot_all

    res = run_bench(["standard", "rates"], messages=2_000, quick=True, progress=False)
    paths = plot_all(res, tmp_path)
    assert {p.name for p in paths} == {"latency_percentiles.png", "rate_sweep.png"}
    assert all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.parametrize("n_events", [2**58, 2**62 + 1, 2**63 - 1])
def test_reserve_events_beyond_any_memory_raises_book_unchanged(n_events):
    # 2**58 events asked realloc for 0 bytes (the byte count wrapped) and reported success: the
    # next events were written past the block (SIGSEGV); past 2**62 the doubling looped forever
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    with pytest.raises(MemoryError):
        _timing.reserve_events(book, n_events)
    for i in range(2, 3000):
        book.submit(i, i % 2, 100 + 10 * (i % 2) + i % 7, 1)
    assert len(book.events()) >= 2999
    book.check_invariants()


def test_process_histogram_read_only_counts_or_nan_bound_refused_huge_bounds_clipped(tiny):
    setup, flow = tiny
    book = harness.build_book(setup, flow)
    h = book.state_hash()
    raw = bytes(4 * 8)
    # counts were updated in place through the array's pointer: here a bytes object changed
    with pytest.raises(ValueError, match="writeable"):
        _timing.process_histogram(book, flow[:10], np.array([1e3, 1e6]),
                                  np.frombuffer(raw, np.int64))
    assert raw == bytes(32)
    with pytest.raises(ValueError, match="NaN"):
        _timing.process_histogram(book, flow[:10], np.array([1e3, np.nan]),
                                  np.zeros(4, np.int64))
    assert book.state_hash() == h
    # a bound beyond int64 ticks (1e300, inf) was cast to garbage: every sample went to the
    # overflow bucket although each is below the bound
    for bounds in ([1e300], [np.inf], [-np.inf, np.inf]):
        counts = np.zeros(len(bounds) + 2, np.int64)
        _timing.process_histogram(book.copy(), flow[:10], np.array(bounds), counts, "monotonic")
        assert counts[len(bounds) - 1] == 10 and counts[:-1].sum() == 10


_OOM_SCRIPT = r"""
import resource, sys
import numpy as np
import matchcore as mc
from matchcore import _timing
n = 3_000_000
flow = np.zeros(n, dtype=mc.COMMAND_DTYPE)
flow["order_id"] = np.arange(1, n + 1)
flow["qty"] = 1
flow["price"] = 1000 + np.arange(n) % 50
book = mc.OrderBook()
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
# room for the loops' own arrays, not for 3M resting orders
resource.setrlimit(resource.RLIMIT_AS, (vm + 180 * 2**20, resource.RLIM_INFINITY))
try:
    if sys.argv[1] == "timed":
        _timing.process_timed(book, flow, "monotonic")
    else:
        _timing.process_open_loop(book, flow, rate=1e12, clock="monotonic")
    print("returned", len(book))
except MemoryError as e:
    done = int(str(e).split(" after ")[1].split()[0])
    assert len(book) == done and not book.busy, (len(book), done)
    book.check_invariants()
    print("MemoryError", done)
"""


@pytest.mark.parametrize("loop", ["timed", "open"])
def test_timed_loop_out_of_memory_raises_not_timing_unapplied_commands(loop):
    # An order the book had no memory for was skipped and the loop went on: 3M samples came
    # back for a book holding 524,288 of the 3M orders, every later one timed as if applied.
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _OOM_SCRIPT, loop], capture_output=True, text=True,
                       env=dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stderr
    word, done = r.stdout.split()
    assert word == "MemoryError" and 0 < int(done) < 3_000_000


def test_tsc_calibration_bad_duration_refused_cache_untouched():
    # tsc_ticks_per_ns(0) cached 1.16 ticks/ns on a 2.6 GHz TSC: every later TSC figure of the
    # process came out 2.2x too large
    saved = _timing._tsc_per_ns
    try:
        _timing._tsc_per_ns = None
        for d in (0.0, -1.0, float("nan"), float("inf"), 1e10, 1e-6):
            with pytest.raises(ValueError, match="duration_s"):
                _timing.tsc_ticks_per_ns(d)
            assert _timing._tsc_per_ns is None
        assert _timing.tsc_ticks_per_ns(0.002) > 0
    finally:
        _timing._tsc_per_ns = saved


def test_percentiles_nearest_rank_exact_where_floating_point_rounds_up():
    # p99.9 of 1..1000 is the 999th sample; it was the 1000th (the max), and p99.9 of the
    # default 1M-sample run was the 999,001st sample instead of the 999,000th
    from fractions import Fraction
    import math

    for n in (1000, 2000, 10_000, 100_000, 1_000_000, 7, 1, 12345):
        a = np.random.default_rng(n).permutation(np.arange(1, n + 1))
        got = harness.percentiles(a)
        want = [float(max(math.ceil(Fraction(str(q)) * n / 100), 1)) for q in harness.PERCENTILES]
        assert got == want, n
    s = harness.summarize(np.arange(1, 1001))
    assert s["p99.9"] == 999.0 and s["max"] == 1000.0
    with pytest.raises(ValueError):
        harness.percentiles(np.arange(10), (101,))
    assert harness.percentiles(np.arange(10), ()) == []
    assert harness.percentiles([5.5, 1.25], (50, 100)) == [1.25, 5.5]


def test_cli_demo_latency_percentiles_are_the_harness_nearest_rank_samples(capsys, monkeypatch):
    # demo took np.percentile's interpolation between two samples: of 999 messages at 10 ns and
    # one at 5,000 ns it printed p99.9 15 ns and p99.99 4,501 ns, times no message took, where
    # bench (the same timed loop) gives the nearest-rank samples 10 and 5,000 ns
    import re

    import matchcore.demo as demo
    from matchcore.__main__ import main

    samples = np.array([10] * 999 + [5000], dtype=np.int64)
    np.random.default_rng(3).shuffle(samples)
    monkeypatch.setattr(demo, "process_timed", lambda book, flow: samples.copy())
    assert main(["demo", "--messages", "1000", "--fills", "0"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("  p50 "))
    shown = dict(re.findall(r"(p[0-9.]+|max) ([0-9,]+) ns", line))
    want = harness.percentiles(samples)
    assert [shown[k] for k in PCT_NAMES] == [f"{v:,.0f}" for v in want]
    assert shown["p99.9"] == "10" and shown["p99.99"] == shown["max"] == "5,000"


def test_process_out_rate_flow_under_half_a_call_timed_not_nan(tiny):
    # a flow under 512 messages timed no call: process_out was NaN (null in the JSON) while the
    # compiled loop's median chunk timed the flow as one chunk
    setup, flow = tiny
    base = harness.build_book(setup, flow)
    r = harness.process_out_rate(base, flow[:300])
    assert r["calls"] == 1 and r["ns_per_msg"] > 0
    t = harness.throughput(base, flow[:300], reps=1)
    assert t["process_out"]["ns_per_msg"] > 0 and t["median_chunk"]["ns_per_msg"] > 0


def test_open_loop_poisson_arrivals_empty_flow_and_bad_rate(tiny):
    setup, flow = tiny
    base = harness.build_book(setup, flow)
    lat, svc = harness.open_loop(base, flow[:0], 1e6, poisson_seed=3, warmup=False)
    assert lat.shape == svc.shape == (0,)
    lat, svc = harness.open_loop(base, flow[:50], 1e6, poisson_seed=3, warmup=False)
    assert lat.shape == (50,) and (lat >= svc).all()
    for rate in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            harness.open_loop(base, flow[:5], rate, poisson_seed=3, warmup=False)


def test_report_labels_each_throughput_with_the_call_size_it_was_measured_in():
    # the out= figure of the core table was labelled with the 64k calls of the new-array
    # figure; the depth table and the closed-loop header named chunks the run did not use
    from matchcore.bench.core import run_depth
    from matchcore.bench.report import format_depth, format_report
    from matchcore.cli_bench import run_bench

    d = run_depth(messages=3_000, sizes=(1_000, 2_000), names=("stale_cancel",), reps=1)
    assert d["chunk"] == harness.call_chunk(3_000, 8192) == 1024
    assert "median 1,024-message chunk" in format_depth(d)
    res = run_bench(["standard"], messages=20_000, quick=True, progress=False)
    c = res["workloads"]["standard"]["throughput"]["median_chunk"]["chunk"]
    assert c == harness.call_chunk(20_000, 32_768) == 2500
    assert "median 2,500-message chunk" in format_report(res)
    from matchcore.bench.core import run_core
    from matchcore.bench.report import format_core

    core = run_core(messages=20_000, quick=True, sizes=(1_000, 2_000), depth=d,
                    reference={"skipped": "not timed here"}, scaling_passes=1)
    po = core["process"]["process_out"]
    assert po["chunk"] == harness.call_chunk(20_000, 8192) == 2500
    text = format_core(core)
    assert "M msg/s in 2,500-message calls with out=" in text
    # a 20,000-message flow is one call of all of it, not a 65,536-message call
    assert core["process"]["process_chunked"]["chunk"] == 20_000
    assert "making a new array per call in 20,000-message calls" in text
    assert "65,536" not in text


def test_flow_shorter_than_a_chunk_labelled_with_the_one_call_it_was_timed_in(tiny):
    # a flow under 1,024 messages was timed as one call of all of it, and the JSON and the
    # report called that a 1,024-message chunk ("median 1,024-message chunk" for 300 messages)
    from matchcore.bench.core import run_depth
    from matchcore.bench.report import format_depth, format_report
    from matchcore.cli_bench import run_bench

    setup, flow = tiny
    base = harness.build_book(setup, flow)
    assert harness.call_chunk(300, 8192) == 300
    assert harness.call_chunk(3_000, 8192) == 1024
    med = harness.chunked_rate(base, flow[:300])
    assert (med["chunk"], med["chunks"]) == (300, 1)
    po = harness.process_out_rate(base, flow[:300])
    assert (po["chunk"], po["calls"]) == (300, 1)
    assert harness.throughput(base, flow[:300], reps=1)["process_out"]["chunk"] == 300
    d = run_depth(messages=300, sizes=(1_000, 2_000), names=("stale_cancel",), reps=1)
    assert d["chunk"] == 300 and "median 300-message chunk" in format_depth(d)
    res = run_bench(["standard"], messages=300, quick=True, progress=False)
    assert res["workloads"]["standard"]["throughput"]["median_chunk"]["chunk"] == 300
    assert "median 300-message chunk" in format_report(res)


def _load_copy(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("machine_copy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_git_commit_installed_copy_inside_another_repository_reports_none(tmp_path):
    # matchcore installed into a virtualenv inside another project's repository reported that
    # project's commit (and dirtiness) as the commit the benchmark ran at
    import shutil
    import subprocess

    from matchcore.bench import machine

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / ".gitignore").write_text(".venv/\n")
    tracked = tmp_path / "src" / "matchcore" / "bench" / "machine.py"
    installed = tmp_path / ".venv" / "lib" / "site-packages" / "matchcore" / "bench" / "machine.py"
    for p in (tracked, installed):
        p.parent.mkdir(parents=True)
        shutil.copy(machine.__file__, p)
    git("add", ".gitignore", "src")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x")
    head = git("rev-parse", "HEAD")
    assert _load_copy(installed).git_commit() == {"commit": None, "dirty": None}
    assert _load_copy(tracked).git_commit() == {"commit": head, "dirty": False}


@pytest.mark.parametrize("module", ["matchcore._timing", "matchcore.bench.harness",
                                    "matchcore.bench.machine", "matchcore.workloads"])
def test_bench_module_docstring_examples_give_the_output_they_show(module):
    # machine_info's example showed keys it does not return first (compiler sorts before cores)
    import doctest
    import importlib

    res = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0


@pytest.mark.parametrize("n", [1, 2, 1000, 3000, 5000, 100_000, 1_000_000])
def test_hdr_curve_ends_at_the_max_for_any_sample_count(n):
    # the last point, percentile 100 * (1 - 1/n), took the second largest sample for 92% of
    # sample counts (1M included): the worst sample never reached the latency chart
    a = np.random.default_rng(n).permutation(np.arange(n)) * 3 + 7
    c = harness.hdr_curve(a)
    assert c["percentile"][-1] == 100.0 and c["value_ns"][-1] == a.max()
    assert c["value_ns"][0] == a.min()
    assert all(x <= y for x, y in zip(c["value_ns"], c["value_ns"][1:]))
    assert all(p <= q for p, q in zip(c["percentile"], c["percentile"][1:]))



@pytest.mark.parametrize("n", [10, 999, 1000, 3000, 12_345, 100_000, 1_000_000])
def test_hdr_curve_points_are_nearest_rank_where_floating_point_rounds_up(n):
    # 99.9 / 100 * 1000 is 999.0000000000001 in floating point: the curve's 99.9% point of
    # 1,000 samples was the max (the 1,000th), where the report's p99.9 is the 999th
    a = np.arange(1, n + 1)
    c = harness.hdr_curve(a)
    for q, v in zip(c["percentile"][:-1], c["value_ns"][:-1]):
        r = int(v)                 # the rank of the sample taken (a holds 1..n)
        # the smallest rank covering q: r / n >= q, (r - 1) / n < q (up to the float in q)
        assert r / n >= q / 100 - 1e-12 and (r == 1 or (r - 1) / n < q / 100 - 1e-12), (q, r)
    if n == 1000:
        assert c["percentile"][-2] == 99.9
        assert c["value_ns"][-2] == harness.percentiles(a, (99.9,))[0] == 999.0

def test_clock_info_reports_the_step_readings_advance_in_not_only_the_tick():
    # on a VM whose TSC ticks at 0.39 ns but advances 26 ticks (10 ns) at a time, the report
    # said "resolution 0.39 ns" of samples that are all multiples of 10 ns
    assert harness.reading_step_ns(np.array([20, 10, 30, 20, 341, 351])) == 10.0
    assert harness.reading_step_ns(np.array([20, 21, 30, 31])) == 1.0
    assert harness.reading_step_ns(np.array([7, 7])) is None
    # two readings stretched by interrupts, a nanosecond apart, are not the clock's step
    loaded = np.array([20] * 15_000 + [30] * 4_800 + [10] * 150 + [1182, 1183, 3827, 3828])
    assert harness.reading_step_ns(loaded) == 10.0
    from matchcore.bench.report import format_report
    from matchcore.bench.machine import machine_info

    for clock in ("monotonic", "auto"):
        info = harness.clock_info(clock)
        d = _timing.clock_overhead_samples(20_000, info["clock"])
        assert info["step_ns"] >= 1.0 and info["step_ns"] >= info["resolution_ns"] * 0.999
        # the samples lie a whole number of steps above the smallest, give or take the rounding
        # of ticks to whole ns. Only those within 4 steps of it: a step measured as 10 ns can be
        # 10.25, so the grid drifts a nanosecond every 4 steps, and a sample stretched by an
        # interrupt (more than 1% of them on a loaded machine) lands anywhere. At least 20 ns
        # of them, though: with a 1 ns step, 4 steps held only the fastest ~11% of readings,
        # fewer than 10% when the machine was loaded.
        near = d[d <= d.min() + max(4 * info["step_ns"], 20.0)]
        assert len(near) >= 0.1 * len(d)
        r = (near - d.min()) % info["step_ns"]
        assert np.mean((r <= 1) | (r >= info["step_ns"] - 1)) >= 0.99
        text = format_report({"machine": machine_info(), "clock": info})
        assert f"readings advance in steps of {info['step_ns']:.0f} ns" in text


class _Count:
    """A progress sink that counts its updates (what a tqdm bar is given)."""

    def __init__(self):
        self.n = 0

    def update(self, k=1):
        self.n += k


def test_run_core_progress_updates_as_many_as_the_bar_plans():
    # the bench planned 4 steps for core where run_core makes 6 (the bar ended at 15/13)
    from matchcore.bench.core import core_progress_steps, run_core, run_depth

    depth = run_depth(messages=2_000, sizes=(1_000, 2_000), reps=1)
    for kw in ({"depth": depth}, {"depth_sizes": (1_000, 2_000)}):
        c = _Count()
        run_core(messages=2_000, quick=True, sizes=(1_000, 2_000, 3_000), scaling_passes=1,
                 reference={"skipped": "not timed here"}, progress=c, **kw)
        assert c.n == core_progress_steps(sizes=(1_000, 2_000, 3_000), **kw)
    assert core_progress_steps() == 6 + 9 and core_progress_steps(depth=depth) == 6


def _results_row_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results_row.py"
    spec = importlib.util.spec_from_file_location("results_row", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_results_row_small_max_keeps_a_decimal_and_core_only_json_is_refused():
    from matchcore.bench.core import run_core
    from matchcore.cli_bench import run_bench

    rr = _results_row_module()
    res = run_bench(["standard"], messages=20_000, quick=True, progress=False)
    res["workloads"]["standard"]["closed"]["max"] = 420      # a max under 500 ns printed "0us"
    line = rr.row(res, "change")
    assert line.startswith("| ") and " / 0.4us |" in line
    # (and "monotonic clock" where the machine has no invariant TSC)
    assert "| change (run with --quick, 20,000 messages" in line
    with pytest.raises(ValueError, match="not a `matchcore bench --json` result"):
        rr.row(run_core(messages=5_000, quick=True), "change")   # bench_core.py's JSON


def test_clock_overhead_ns_no_samples_refused_not_nan():
    for n in (0, -5):
        with pytest.raises(ValueError, match="n must be >= 1"):
            _timing.clock_overhead_ns(n)
    assert _timing.clock_overhead_ns(10) >= 0


def test_report_subtract_overhead_applies_to_scaling_and_core_resting_tables(tiny):
    # --subtract-overhead left the percentiles of the scaling table and of the core table by
    # resting orders raw: scaling_point computed the net figures and dropped them
    from matchcore.bench.core import run_core, run_depth
    from matchcore.bench.report import _ns, format_report
    from matchcore.cli_bench import run_bench

    setup, flow = tiny
    big = 1e12          # larger than any sample: every net figure is 0
    pt = harness.scaling_point(setup, flow, "monotonic", overhead_ns=big)
    assert pt["p50"] > 0
    assert pt["net"] == {k: 0.0 for k in ("p50", "p90", "p99", "p99.9", "max")}
    res = run_bench(["standard"], messages=2000, quick=True, progress=False)
    res["scaling"] = {"messages": len(flow), "levels": [],
                      "resting": [{"variant": "touch", "param": 1000, **pt}]}
    d = run_depth(messages=3_000, sizes=(1_000, 2_000), names=("stale_cancel",), reps=1)
    res["core"] = run_core(messages=3_000, quick=True, sizes=(1_000, 2_000), depth=d,
                           reference={"skipped": "not timed here"}, scaling_passes=1,
                           overhead_ns=big)
    low = res["core"]["resting"]["1000"]

    def row(text, title):
        lines = text.splitlines()
        head = next(i for i, s in enumerate(lines) if s.startswith(title))
        return lines[head + 3].split()

    raw, net = format_report(res), format_report(res, net=True)
    assert row(raw, "scaling with resting")[-3:] == [_ns(pt["p50"]), _ns(pt["p99"]),
                                                     _ns(pt["p99.9"])]
    assert row(net, "scaling with resting")[-3:] == ["0", "0", "0"]
    assert row(raw, "standard mix by resting")[-2:] == [_ns(low["p50"]), _ns(low["p99"])]
    assert row(net, "standard mix by resting")[-2:] == ["0", "0"]


@pytest.mark.parametrize("extra", [["--rate", "1e6"], ["--save-workloads", "saved"],
                                   ["--rate", "1e6", "--save-workloads", "saved"]])
@pytest.mark.parametrize("targets", [["itch"], ["rates"], ["core", "depth"]])
def test_cli_bench_rate_or_save_workloads_without_a_workload_refused_before_running(
        tmp_path, monkeypatch, capsys, extra, targets):
    # only the generated workloads' open loop takes --rate and only they are saved: with
    # none of them chosen both were accepted and ignored (the rate sweep runs at fractions of
    # the capacity), --save-workloads leaving an empty directory behind
    import matchcore.cli_bench as cli_bench
    from matchcore.__main__ import main

    monkeypatch.chdir(tmp_path)

    def no_run(*a, **k):
        raise AssertionError("measured")

    monkeypatch.setattr(cli_bench, "_run_bench", no_run)
    rc = main(["bench", *targets, "--messages", "20000", "--quick", "--no-progress", *extra])
    err = capsys.readouterr().err
    given = [o for o in extra if o.startswith("--")]
    assert rc == 1 and all(o in err for o in given) and "standard" in err
    assert not (tmp_path / "saved").exists()


def test_run_bench_rate_without_a_workload_refused_workload_with_section_taken(tmp_path):
    from matchcore.cli_bench import run_bench

    with pytest.raises(ValueError, match="^rate applies"):
        run_bench(["itch"], messages=20_000, rate=1e6, quick=True, progress=False)
    with pytest.raises(ValueError, match="^save_dir applies"):
        run_bench(["itch"], messages=20_000, save_dir=tmp_path / "w", quick=True,
                  progress=False)
    assert not (tmp_path / "w").exists()
    res = run_bench(["standard", "itch"], messages=20_000, rate=1e6, save_dir=tmp_path / "w",
                    quick=True, progress=False)
    assert res["workloads"]["standard"]["open"]["rate_per_s"] == 1e6
    assert (tmp_path / "w" / "standard_20000_1.npz").exists()


@pytest.mark.parametrize("targets", ["standard", "core"])
def test_run_bench_single_name_not_in_a_list_refused_by_name(targets):
    # iterated, "standard" was the targets "s", "t", "a", ...: "unknown workload(s) s, t, a,
    # n, d, r", naming letters, not the mistake
    from matchcore.cli_bench import run_bench

    with pytest.raises(TypeError,
                       match=rf"not a single name \('{targets}'\): write \['{targets}'\]"):
        run_bench(targets, messages=2000, quick=True, progress=False)


@pytest.mark.parametrize("given, expected", [
    ([], dict(messages=60_000, reps=1, per_call_n=10_000, per_call_always_n=1_000)),
    (["--messages", "3000", "--reps", "2", "--per-call", "500", "--per-call-always", "20"],
     dict(messages=3000, reps=2, per_call_n=500, per_call_always_n=20)),
])
def test_bench_durability_script_quick_keeps_sizes_given(monkeypatch, capsys, given, expected):
    # --quick replaced --messages, --reps, --per-call and --per-call-always by its own sizes,
    # whatever was given: the options were accepted and ignored
    import importlib.util

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    spec = importlib.util.spec_from_file_location("bench_durability",
                                                  root / "bench_durability.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    seen = {}

    def run(messages, seed, batch, reps, per_call_n, per_call_always_n, root, jopts):
        seen.update(messages=messages, reps=reps, per_call_n=per_call_n,
                    per_call_always_n=per_call_always_n)
        raise KeyboardInterrupt        # the sizes are all this test is about

    monkeypatch.setattr(mod, "run", run)
    with pytest.raises(KeyboardInterrupt):
        mod.main(["--quick", *given])
    assert seen == expected


@pytest.mark.parametrize("kw, said", [
    (dict(reps=0), "reps must be >= 1, got 0"),
    (dict(slice_bytes=0), "slice_bytes must be >= 1, got 0"),
    (dict(slice_bytes=-5), "slice_bytes must be >= 1, got -5"),
])
def test_run_itch_bad_reps_or_slice_refused_before_generating(kw, said, monkeypatch):
    # reps=0 generated the day and then failed with "'NoneType' object has no attribute
    # 'stats'"; slice_bytes=0 timed no slice (NaN percentiles) and -5 sliced from the end
    pytest.importorskip("matchcore.itch")
    import matchcore.itch as itch
    from matchcore.bench import itch_workload

    def generate(*a, **k):
        raise AssertionError("a day was generated")

    monkeypatch.setattr(itch, "generate", generate)
    with pytest.raises(ValueError, match=f"^{said}$"):
        itch_workload.run_itch(1000, **kw)


@pytest.mark.parametrize("call", ["throughput", "run_depth", "per_call", "engine_vs_book"])
def test_bench_reps_below_one_refused_naming_reps(call):
    # reps=0 measured nothing and then failed in words about something else: "unsupported
    # operand type(s) for /: 'NoneType' and 'int'", "min() arg is an empty sequence", "list
    # index out of range"
    from matchcore.bench import core

    setup, flow = W.standard_mix(2000, seed=1)
    calls = {
        "throughput": lambda: harness.throughput(harness.build_book(setup, flow), flow, reps=0),
        "run_depth": lambda: core.run_depth(messages=2000, sizes=(1000, 2000), reps=0),
        "per_call": lambda: core.per_call(n=1000, reps=0),
        "engine_vs_book": lambda: core.engine_vs_book(messages=2000, reps=0,
                                                      names=("standard",)),
    }
    with pytest.raises(ValueError, match=r"^reps must be >= 1, got 0$"):
        calls[call]()


@pytest.mark.parametrize("name", ["bench_durability", "bench_core"])
def test_bench_script_docstring_names_only_options_it_accepts(name, capsys):
    # bench_durability.py's docstring told of a --warmup option the script refused
    import re

    mod = _load_script(name)
    named = set(re.findall(r"``(--[a-z][a-z-]*)``|\[(--[a-z][a-z-]*)", mod.__doc__))
    named = {a or b for a, b in named}
    with pytest.raises(SystemExit):
        mod.main(["--help"])
    helptext = capsys.readouterr().out
    assert named and all(o in helptext for o in named), named


@pytest.mark.parametrize("given, expected", [([], 1_000_000), (["--quick"], 100_000),
                                             (["--quick", "--messages", "3000"], 3000)])
def test_bench_core_script_quick_measures_what_the_command_does(monkeypatch, given, expected):
    # `matchcore bench core --quick` measures 100,000 messages; the script's --quick kept
    # 1,000,000
    import matchcore.bench.core as core

    mod = _load_script("bench_core")
    seen = {}

    def run_core(*, messages, **kw):
        seen["messages"] = messages
        raise KeyboardInterrupt        # the size is all this test is about

    monkeypatch.setattr(core, "run_core", run_core)
    with pytest.raises(KeyboardInterrupt):
        mod.main(given)
    assert seen == {"messages": expected}


@pytest.mark.parametrize("name, given", [("bench_replay", ["--repeat", "0"]),
                                         ("bench_many_books", ["--repeat", "0"]),
                                         ("bench_embed", ["--reps", "0"])])
def test_bench_script_zero_repetitions_usage_error_before_work(name, given, capsys):
    # --repeat 0 / --reps 0 ran the whole workload and then failed with a traceback
    # (statistics.StatisticsError: no median for empty data)
    mod = _load_script(name)
    with pytest.raises(SystemExit) as exc:
        mod.main(given)
    assert exc.value.code == 2 and f"argument {given[0]}: must be >= 1, got 0" in \
        capsys.readouterr().err


def test_report_open_loop_rate_below_a_million_shown_not_rounded_to_zero():
    # --rate 2500 was shown as "0.00M/s": the rate the open loop ran at, which the user gave,
    # read as zero
    from matchcore.bench.report import format_report
    from matchcore.cli_bench import run_bench

    res = run_bench(["standard"], messages=500, rate=2500, quick=True, progress=False)
    assert res["workloads"]["standard"]["open"]["rate_per_s"] == 2500
    lines = format_report(res).splitlines()
    head = next(i for i, s in enumerate(lines) if s.startswith("open loop"))
    row = lines[head + 3].split()
    assert row[:2] == ["standard", "2,500/s"]


@pytest.mark.parametrize("quick", [False, True])
def test_core_below_the_readme_table_size_says_ratios_not_comparable(monkeypatch, quick):
    # `bench core --messages 10` printed the deep-vs-small and reference ratios beside their
    # targets from a handful of messages, with nothing saying they are not the table's figures
    import matchcore.bench.core as core
    from matchcore.bench.report import format_core, json_text

    d = core.run_depth(messages=3_000, sizes=(1_000, 2_000), names=("stale_cancel",), reps=1)
    kw = dict(messages=3_000, quick=quick, sizes=(1_000, 2_000), depth=d,
              reference={"skipped": "not timed here"}, scaling_passes=1)
    small = core.run_core(**kw)
    assert small["comparable_with_targets"] is False
    assert json.loads(json_text(small))["comparable_with_targets"] is False
    text = format_core(small)
    note = next(x for x in text.splitlines() if x.startswith("note: "))
    assert "not comparable with the table's targets" in note
    assert ("--quick" in note) if quick else ("3,000 messages" in note)
    assert text.index(note) < text.index("targets met: ")
    # at the table's size (here made 3,000) and without --quick: no note
    monkeypatch.setattr(core, "TABLE_MESSAGES", 3_000)
    full = core.run_core(**kw)
    assert full["comparable_with_targets"] is (not quick)
    assert ("note: " in format_core(full)) is quick


@pytest.mark.parametrize("given", [["--reference-messages", "0"], ["--messages", "0"],
                                   ["--symbols", "-1"]])
def test_bench_replay_script_count_below_one_usage_error_before_work(monkeypatch, capsys,
                                                                     given):
    # --reference-messages 0 ran every compiled rate (minutes at the default 5M messages) and
    # then failed with a ZeroDivisionError traceback; --messages 0 and --symbols -1 were a
    # traceback from the generator
    err = _refused_before_work(monkeypatch, capsys, "bench_replay", "itch.generate", given)
    assert f"argument {given[0]}: must be >= 1, got " in err


@pytest.mark.parametrize("given", [["--repeat", "0"], ["--messages", "0"], ["--symbols", "0"]])
def test_bench_ecosystem_script_count_below_one_usage_error_before_work(monkeypatch, capsys,
                                                                        given):
    # --repeat 0 generated the day, ran the warm-up replays and then failed with a
    # StatisticsError traceback (no median of no runs)
    err = _refused_before_work(monkeypatch, capsys, "bench_ecosystem", "itch.generate", given)
    assert f"argument {given[0]}: must be >= 1, got 0" in err


@pytest.mark.parametrize("name, first_work", [("bench_ecosystem", "itch.generate"),
                                              ("bench_durability", "run")])
@pytest.mark.parametrize("where", ["missing/out.json", "."])
def test_bench_script_json_nowhere_to_write_usage_error_before_work(monkeypatch, capsys,
                                                                    tmp_path, name, first_work,
                                                                    where):
    # --json in a directory that does not exist (or naming a directory) was found when the
    # figures were written, after the whole run: a FileNotFoundError traceback, figures lost
    out = str(tmp_path / where)
    err = _refused_before_work(monkeypatch, capsys, name, first_work, ["--json", out])
    assert f"argument --json: {out}: " in err


@pytest.mark.parametrize("given", [["--records", "0"], ["--messages", "0"],
                                   ["--symbols", "8,0"], ["--symbols", "8,x"],
                                   ["--symbols", "8,500,8"]])
def test_bench_many_books_script_bad_count_usage_error_before_work(monkeypatch, capsys, given):
    # --records 0 ran the whole ITCH part (minutes at the default sizes) and then failed with a
    # ZeroDivisionError traceback on the DBN line; a symbol count of 0 or not a number was a
    # traceback; a count given twice generated and replayed its days twice, two lines of one
    # measurement
    err = _refused_before_work(monkeypatch, capsys, "bench_many_books", "itch.generate", given)
    assert f"argument {given[0]}: " in err


@pytest.mark.parametrize("given", [["--reps", "0"], ["--messages", "0"], ["--batch", "0"],
                                   ["--per-call", "0"], ["--per-call-always", "-1"]])
def test_bench_durability_script_count_below_one_usage_error_before_work(monkeypatch, capsys,
                                                                         given):
    # --per-call 0 (or --reps 0, --batch 0, ...) ran the journaled batches and then failed with
    # a traceback (max() of an empty sequence, no median, range() step 0, a division by zero)
    err = _refused_before_work(monkeypatch, capsys, "bench_durability", "run", given)
    assert f"argument {given[0]}: must be >= 1, got " in err


@pytest.mark.parametrize("given", [["--runs", "0"], ["--batch", "0"], ["--later", "0"]])
def test_bench_first_batch_script_count_below_one_usage_error_before_work(monkeypatch, capsys,
                                                                          given):
    # --later 0 ran every child and then failed formatting None, --batch 0 failed in each
    # child (a CalledProcessError hiding why), --runs 0 on min() of nothing: tracebacks
    err = _refused_before_work(monkeypatch, capsys, "bench_first_batch", "subprocess.run", given)
    assert f"argument {given[0]}: must be >= 1, got 0" in err


@pytest.mark.parametrize("given", [["--n", "0"], ["--steps", "0"], ["--churn-n", "0"]])
def test_bench_embed_script_count_below_one_usage_error_before_work(monkeypatch, capsys, given):
    # --steps 0 ran the per-operation part (the C library built, minutes of timing at the
    # default sizes) and then failed with a ZeroDivisionError traceback; --n 0 likewise
    err = _refused_before_work(monkeypatch, capsys, "bench_embed", "build_c_library", given)
    assert f"argument {given[0]}: must be >= 1, got 0" in err


@pytest.mark.parametrize("script, first_work, given", [
    ("bench_replay", "itch.generate", ["--mess", "1000"]),
    ("bench_ecosystem", "itch.generate", ["--rep", "1"]),
    ("bench_many_books", "itch.generate", ["--rec", "10"]),
    ("bench_durability", "run", ["--qui"]),
    ("bench_first_batch", "subprocess.run", ["--ru", "1"]),
    ("bench_embed", "build_c_library", ["--ste", "10"])])
def test_bench_script_abbreviated_option_usage_error_before_work(monkeypatch, capsys, script,
                                                                  first_work, given):
    # argparse took a prefix of an option's name for the option (--mess for --messages)
    err = _refused_before_work(monkeypatch, capsys, script, first_work, given)
    assert f"unrecognized arguments: {' '.join(given)}" in err


def test_report_write_json_missing_directory_refused_nothing_made(tmp_path):
    # the library made the missing directories (with their parents), where the command
    # line's --json refuses them: a mistyped path wrote the figures somewhere new
    from matchcore.bench.report import write_json

    target = tmp_path / "new" / "deeper" / "b.json"
    with pytest.raises(FileNotFoundError, match=f"no directory {target.parent}"):
        write_json({"schema": 1}, target)
    assert not (tmp_path / "new").exists()
    assert write_json({"schema": 1}, tmp_path / "b.json") == tmp_path / "b.json"
    assert json.loads((tmp_path / "b.json").read_text()) == {"schema": 1}


def test_report_write_json_name_ending_with_separator_refused_nothing_written(tmp_path):
    # Path("res/") is Path("res"): the slash was dropped and a file "res" written, where
    # open() and the command line's --json refuse a name that ends with one
    from matchcore.bench.report import write_json

    with pytest.raises(IsADirectoryError):
        write_json({"schema": 1}, f"{tmp_path}/res/")
    assert list(tmp_path.iterdir()) == []


def test_cli_bench_json_in_the_directory_plot_makes_written(tmp_path, capsys):
    # --json D/b.json with --plot D: D is made by the command (the README's example), also
    # now that the library's write_json refuses a missing directory
    pytest.importorskip("matplotlib")
    from matchcore.__main__ import main

    d = tmp_path / "new"
    rc = main(["bench", "standard", "--messages", "2000", "--quick", "--no-progress",
               "--plot", str(d), "--json", str(d / "b.json")])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((d / "b.json").read_text())["command"]["messages"] == 2000
    assert (d / "latency_percentiles.png").is_file()


def test_report_one_message_said_in_the_singular():
    # --messages 1 was reported as "1 messages" (and "best of 1 passes")
    import re

    import matchcore.bench.core as core
    from matchcore.bench.report import format_core, format_report
    from matchcore.cli_bench import run_bench

    res = run_bench(["rates", "baselines"], messages=1, quick=True, progress=False)
    d = core.run_depth(messages=1, sizes=(1_000, 2_000), names=("stale_cancel",), reps=1)
    c = core.run_core(messages=1, quick=True, sizes=(1_000, 2_000), depth=d,
                      reference={"skipped": "not timed here"}, scaling_passes=1)
    text = format_report(res) + "\n" + format_core(c)
    assert "1 message " in text or "1 message," in text or "1 message;" in text
    assert not re.search(r"(?<![\d,])1 (messages|passes|standard-mix messages)\b", text), text


@pytest.mark.parametrize("given, words", [
    (["--messages", "0"], "argument --messages: must be >= 1, got 0"),
    (["--messages", "-5"], "argument --messages: must be >= 1, got -5"),
    (["--json", "MISSING/core.json"], "argument --json: "),
    (["--json", "."], "argument --json: ")])
def test_bench_core_script_bad_count_or_json_usage_error_before_work(monkeypatch, capsys,
                                                                     tmp_path, given, words):
    # --messages 0 measured and reported nothing ("0 messages"), -5 ended in a ValueError
    # traceback, and a --json in no directory was found after the whole run (a traceback,
    # the figures lost)
    import matchcore.bench.core as core

    def run_core(**kw):
        raise AssertionError("run_core ran: the work started")

    monkeypatch.setattr(core, "run_core", run_core)
    mod = _load_script("bench_core")
    given = [str(tmp_path / g) if g.startswith(("MISSING", ".")) else g for g in given]
    with pytest.raises(SystemExit) as exc:
        mod.main(given)
    assert exc.value.code == 2 and words in capsys.readouterr().err


@pytest.mark.parametrize("value", ["1_000", "+5", " 5", "\u0665"])
def test_bench_script_count_not_plain_digits_usage_error_before_work(monkeypatch, capsys,
                                                                     value):
    # Python's int() took "1_000", "+5", padding and non-ASCII digits as counts, where the
    # matchcore commands refuse them
    err = _refused_before_work(monkeypatch, capsys, "bench_replay", "itch.generate",
                               ["--messages", value])
    assert f"argument --messages: invalid at_least_one value: {value!r}" in err


@pytest.mark.parametrize("kw, words", [
    ({"messages": 2000.5}, "messages must be an integer, got float 2000.5"),
    ({"rate": "5"}, "rate must be a number of messages/s, got str '5'"),
    ({"rate": b"5"}, "rate must be a number of messages/s, got bytes b'5'")])
def test_run_bench_wrong_type_refused_naming_its_keyword(kw, words):
    # messages=2000.5 was refused as "n must be an integer" (the generator's parameter) and
    # rate="5" as "must be real number, not str", naming nothing
    from matchcore.cli_bench import run_bench

    args = {"messages": 2000, **kw}
    with pytest.raises(TypeError) as exc:
        run_bench(["standard"], quick=True, progress=False, **args)
    assert str(exc.value) == words


def test_results_row_change_with_a_pipe_or_newline_stays_one_row_of_the_table():
    # "what changed" holding '|' split the RESULTS.md row into an extra column, and a newline
    # broke the table in two
    from matchcore.cli_bench import run_bench

    rr = _results_row_module()
    res = run_bench(["standard"], messages=2_000, quick=True, progress=False)
    plain = rr.row(res, "x")
    line = rr.row(res, "ladder a|b\nsplit")
    assert "\n" not in line
    cells = [c for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    assert len(cells) == len(plain.split("|")[1:-1])
    assert cells[3].strip().startswith("ladder a\\|b split (run with --quick, 2,000 messages")


def test_cli_demo_one_command_said_in_the_singular(capsys):
    # demo --messages 1 printed "generated 1 commands" and "1 commands ... 1 events"
    from matchcore.__main__ import main

    assert main(["demo", "--messages", "1"]) == 0
    out = capsys.readouterr().out
    assert "generated 1 command " in out and "process(): 1 command in" in out
    assert not re.search(r"(?<![\d,])1 (commands|events|fills|lots)\b", out), out


@pytest.mark.parametrize("given", [["--batch-records", "0"], ["--batch-us", "-5"],
                                   ["--batch-us", str(10**10)]])
def test_bench_durability_script_group_commit_option_usage_error_before_work(monkeypatch,
                                                                              capsys, given):
    # --batch-records 0 or --batch-us -5 ended in the journal's ValueError traceback, once the
    # first journaled engine was made
    err = _refused_before_work(monkeypatch, capsys, "bench_durability", "run", given)
    option = given[0][2:].replace("-", "_")
    assert f"argument {given[0]}: {option} must be >= " in err and given[1] in err


@pytest.mark.parametrize("given, words", [
    (["--buffer", "10"], "--buffer is too small for one batch's events"),
    (["--resting", "-1"], "need resting >= 2")])
def test_bench_first_batch_script_child_failure_says_why(capsys, given, words):
    # a run that failed in its child process ended in a CalledProcessError traceback naming
    # only the command line: the child's own error was captured and dropped
    mod = _load_script("bench_first_batch")
    with pytest.raises(SystemExit) as exc:
        mod.main(["--runs", "1", "--batch", "1000", *given])
    assert exc.value.code not in (0, None)
    assert str(exc.value).startswith("bench_first_batch.py: a fresh run failed: ")
    assert words in str(exc.value)


@pytest.mark.parametrize("script, given, words", [
    ("bench_many_books", ["--messages", "10000", "--symbols", "8,5000"],
     "argument --messages: 10000 is too few for --symbols 5000: the day needs at least 20006"),
    ("bench_many_books", ["--symbols", "8,70000"], "argument --symbols: must be in 1..65535"),
    ("bench_replay", ["--messages", "10"], "argument --messages: 10 is too few for --symbols "
     "100"),
    ("bench_dask", ["--messages", "10"], "argument --messages: 10 is too few for --symbols 8"),
    ("bench_dask", ["--files", "1_000"], "argument --files: invalid")])
def test_bench_script_itch_day_it_cannot_generate_usage_error_before_work(monkeypatch, capsys,
                                                                          script, given, words):
    # bench_many_books generated and replayed its first days (minutes at the default sizes)
    # before the one with too few messages for its symbols failed as a traceback; the other
    # scripts failed in the generator with a traceback; bench_dask took 1_000 as a count
    err = _refused_before_work(monkeypatch, capsys, script, "itch.generate", given)
    assert words in err


def test_bench_embed_every_per_operation_row_timed_the_runs_the_header_names(monkeypatch):
    # the header reads "median (best) of {--reps} runs", but the Python per-call row was timed
    # in reps // 2 runs (3 of the default 7; 1 of 2), its median and best of fewer runs
    mod = _load_script("bench_embed")
    timed = mod._timed
    runs = {}

    def counting(fn, reps):
        calls = []

        def counted():
            calls.append(1)
            return fn()

        out = timed(counted, reps)
        runs[len(runs)] = len(calls)
        return out

    monkeypatch.setattr(mod, "_timed", counting)
    # without Numba (its rows are skipped): compiled with cache=True in a module loaded from
    # its file, the loops were cached under no importable module name, and the script itself
    # then failed to load them from benchmarks/__pycache__ ("No module named '<dynamic>'")
    monkeypatch.setitem(sys.modules, "numba", None)
    rows = mod.bench_per_operation(2_000, 4, None, churn_n=1_000)
    timed_rows = [name for name, med, _ in rows if med is not None]
    assert "Python per-call methods" in timed_rows
    assert len(runs) == len(timed_rows) and set(runs.values()) == {4}


def test_throughput_new_array_calls_labelled_with_the_size_of_the_calls_made(tiny):
    # process_chunked's "chunk" was the 65,536 asked for whatever the flow's length, so a
    # shorter flow, timed as one call of all of it, was reported as 65,536-message calls
    setup, flow = tiny
    base = harness.build_book(setup, flow)
    assert harness.throughput(base, flow, reps=1)["process_chunked"]["chunk"] == len(flow)
    thr = harness.throughput(base, flow, reps=1, process_chunk=1_000)
    assert thr["process_chunked"]["chunk"] == 1_000


@pytest.mark.parametrize("call", [
    "process_timed(None, cmds)",
    "process_open_loop(None, cmds, 1e6)",
    "process_batch_ns(None, cmds)",
    "reserve_events(None, 10)",
])
def test_timed_loop_book_none_refused_with_typeerror_not_a_crash(call):
    # the loops read the book's C struct through the argument: None passed the OrderBook type
    # check and the process died of a segmentation fault (run apart, so that it cannot take
    # the test session with it)
    import subprocess

    code = ("import numpy as np, matchcore as mc\n"
            "from matchcore._timing import *\n"
            "cmds = np.zeros(3, dtype=mc.COMMAND_DTYPE)\n"
            "try:\n"
            f"    {call}\n"
            "except TypeError as e:\n"
            "    print('TypeError', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("TypeError") and "NoneType" in out.stdout


@pytest.mark.parametrize("loop", ["timed", "open", "batch", "histogram"])
def test_timed_loop_on_a_recorders_book_refused_nothing_applied_journal_whole(tmp_path, loop):
    # the loops apply commands to the C book directly, as the C table does: on the book of an
    # open Recorder they changed the live book while no record held those commands, so the
    # command file replayed to another book (the C table refuses such entry since 2db0830)
    from matchcore.native import Recorder, replay_commands

    cmds = np.zeros(3, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"], cmds["side"], cmds["price"], cmds["qty"] = [1, 2, 3], 1, 100, 1
    run = {
        "timed": lambda b: _timing.process_timed(b, cmds),
        "open": lambda b: _timing.process_open_loop(b, cmds, 1e6),
        "batch": lambda b: _timing.process_batch_ns(b, cmds),
        "histogram": lambda b: _timing.process_histogram(b, cmds, np.array([1e3, 1e6]),
                                                         np.zeros(4, np.int64)),
    }[loop]
    p = tmp_path / "r.mccmd"
    with Recorder(mc.OrderBook(), p) as rec:
        rec.submit(10, 0, 99, 5)
        before = rec.book.state_hash()
        with pytest.raises(mc.ReadOnlyBookError, match="journaled by an open native.Recorder"):
            run(rec.book)
        assert rec.book.state_hash() == before and len(rec.book) == 1
        # a copy is no Recorder's: it is timed as any book
        run(rec.book.copy())
    again = mc.OrderBook()
    replay_commands(p, again)
    assert again.state_hash() == rec.book.state_hash()
    run(rec.book)           # closed: the book takes the loop again
    assert len(rec.book) == 4


@pytest.mark.parametrize("qs", [(150.0,), (50.0, -3.0), (float("nan"),)])
def test_percentiles_outside_0_100_refused_also_of_no_samples(qs):
    # of one sample or more such a percentile raised; of none it gave NaN, as if it were valid
    for samples in (np.arange(10), np.array([], dtype=np.int64)):
        with pytest.raises(ValueError, match=r"percentiles must lie in \[0, 100\]"):
            harness.percentiles(samples, qs)
    # valid percentiles of no samples are still NaN, one per percentile
    got = harness.percentiles(np.array([], dtype=np.int64), (50.0, 99.9))
    assert len(got) == 2 and all(v != v for v in got)


@pytest.mark.parametrize("slice_bytes", [1, 40])
def test_run_itch_slices_shorter_than_a_message_cover_the_whole_day(slice_bytes):
    # a slice that held no whole message (slice_bytes below the message it started at) ended
    # the slicing loop: the per-slice figures covered the slices before it, 1 slice of the
    # day for slice_bytes=40 and none (NaN) for 1, and said nothing
    pytest.importorskip("matchcore.itch")
    from matchcore.bench import itch_workload

    r = itch_workload.run_itch(4_000, reps=1, slice_bytes=slice_bytes)
    s = r["slice_ns_per_msg"]
    # every slice holds one message or a few: at least a quarter as many slices as messages
    assert r["messages"] == 4_000 and s["n"] >= r["messages"] // 4
    assert s["p50"] == s["p50"] and s["p50"] > 0


@pytest.mark.parametrize("call", ["run_baselines", "run_depth", "engine_vs_book"])
def test_bench_single_name_refused_by_name_not_taken_as_its_letters(call, monkeypatch):
    # names="reference" was iterated as "r", "e", "f", ...: "unknown baseline(s) r, e, f, e,
    # r, e, n, c, e", and run_depth / engine_vs_book said "unknown workload 'w'" for wide_book
    from matchcore.bench import baselines, core

    setup, flow = W.standard_mix(100, seed=1)
    run = {"run_baselines": lambda names: baselines.run_baselines(setup, flow, 30.0,
                                                                 names=names),
           "run_depth": lambda names: core.run_depth(messages=100, names=names, reps=1,
                                                    sizes=(1_000, 2_000)),
           "engine_vs_book": lambda names: core.engine_vs_book(messages=100, names=names,
                                                              reps=1)}[call]
    name = "reference" if call == "run_baselines" else "wide_book"
    with pytest.raises(TypeError, match=f"not a single name .*write \\['{name}'\\]"):
        run(name)


@pytest.mark.parametrize("call", ["run_depth", "engine_vs_book"])
@pytest.mark.parametrize("bad, error", [("nope", ValueError), ("market_maker", TypeError)])
def test_bench_depth_names_it_cannot_measure_refused_before_any_is_generated(call, bad, error,
                                                                            monkeypatch):
    # a name that is no workload with a resting count failed once the names before it had
    # been generated and measured (minutes at full size)
    from matchcore.bench import core

    def generate(*a, **k):
        raise AssertionError("a workload was generated")

    monkeypatch.setattr(W, "generate", generate)
    monkeypatch.setattr(W, "standard_mix", generate)
    run = getattr(core, call)
    with pytest.raises(error, match=bad):
        run(messages=100, names=("wide_book", bad), reps=1)


@pytest.mark.parametrize("rate", [0.0, -5.0, float("nan"), float("inf")])
def test_measure_workload_and_rate_sweep_bad_rate_refused_before_measuring(tiny, rate,
                                                                         monkeypatch):
    # the open loop refused such a rate only after the closed loop and the throughput runs
    # (minutes at full size), or after the sweep's points before it; inf ran every message
    # at once and reported it as an open loop at an infinite rate
    setup, flow = tiny
    base = harness.build_book(setup, flow)

    def measured(*a, **k):
        raise AssertionError("measured before the rate was checked")

    for name in ("closed_loop", "throughput", "open_loop"):
        monkeypatch.setattr(harness, name, measured)
    with pytest.raises(ValueError, match="rate must be a finite number of messages/s > 0"):
        harness.measure_workload(setup, flow, rate=rate)
    with pytest.raises(ValueError, match=r"capacity_per_s \* fraction .* must be a finite"):
        harness.rate_sweep(base, flow, 1e7, fractions=(0.5, rate))


def test_report_sizes_below_their_unit_said_in_bytes_not_rounded_to_zero():
    # a small run's sizes were divided down to a unit they did not fill: "600 bytes" slices
    # read "0 KiB slices", a few thousand events "its fresh 0 MiB event array", one byte
    # would have read "1 bytes"
    pytest.importorskip("matchcore.itch")
    import matchcore.bench.core as core
    from matchcore.bench import itch_workload
    from matchcore.bench.report import format_core, format_report
    from matchcore.cli_bench import run_bench

    res = run_bench(["rates"], messages=2_000, quick=True, progress=False)
    for slice_bytes, said in ((1, "1 byte slices"), (600, "600 bytes slices"),
                              (1536, "1.5 KiB slices"), (1 << 16, "64 KiB slices")):
        res["itch"] = itch_workload.run_itch(4_000, reps=1, slice_bytes=slice_bytes)
        text = format_report(res)
        assert said in text, text
        assert "0 KiB" not in text
    d = core.run_depth(messages=300, sizes=(1_000, 2_000), names=("stale_cancel",), reps=1)
    c = core.run_core(messages=300, quick=True, sizes=(1_000, 2_000), depth=d,
                      reference={"skipped": "not timed here"}, scaling_passes=1)
    events = c["process"]["events"]
    assert 0 < events * 64 < 2**20
    text = format_core(c)
    assert "0 MiB" not in text
    size = f"{events * 64 / 1024:,.1f} KiB"
    assert f"its fresh {size.replace('.0 KiB', ' KiB')} event array" in text, text


def test_rate_sweep_each_point_measured_after_a_warm_up_on_another_copy(tiny, monkeypatch):
    # every measured run starts after a warm-up pass of the flow on another copy of the book
    # (the module's contract), but the rate sweep's points were timed cold: the first pass
    # over a fresh copy's pages landed in each point's percentiles
    setup, flow = tiny
    base = harness.build_book(setup, flow)
    calls = []
    timed, opened = _timing.process_timed, _timing.process_open_loop

    def spy_timed(book, commands, *a, **kw):
        calls.append(("warm-up", len(commands)))
        return timed(book, commands, *a, **kw)

    def spy_open(book, commands, *a, **kw):
        calls.append(("measured", len(commands)))
        return opened(book, commands, *a, **kw)

    monkeypatch.setattr(_timing, "process_timed", spy_timed)
    monkeypatch.setattr(_timing, "process_open_loop", spy_open)
    pts = harness.rate_sweep(base, flow, 2e6, fractions=(0.1, 0.5))
    assert len(pts) == 2
    kinds = [c[0] for c in calls]
    assert kinds == ["warm-up", "measured", "warm-up", "measured"], calls
    for warm, measured in (calls[0:2], calls[2:4]):
        assert warm[1] == measured[1] == len(flow)


@pytest.mark.parametrize("resting", [1, 100, 1000, 2500])
def test_per_call_makes_n_calls_of_each_op_whatever_the_resting_orders(monkeypatch, resting):
    # the reprices, empty calls and queries of a block went round the resting orders once:
    # on a book of fewer resting orders than a block (resting=100, block=1,000) a block made
    # 200 calls of each and their time was divided by 1,000 calls: a fifth of the true cost
    import matchcore.bench.core as core

    counts = {}

    class Counting(mc.OrderBook):
        def _count(self, name):
            counts[name] = counts.get(name, 0) + 1

        def modify(self, *a, **kw):
            self._count("modify")
            return super().modify(*a, **kw)

        def _noop_modify(self, *a, **kw):
            self._count("noop_modify")
            return super()._noop_modify(*a, **kw)

        def best_bid(self, *a, **kw):
            self._count("best_bid")
            return super().best_bid(*a, **kw)

        def depth(self, *a, **kw):
            self._count("depth10")
            return super().depth(*a, **kw)

    monkeypatch.setattr(core, "OrderBook", Counting)
    out = core.per_call(n=2000, reps=1, resting=resting, block=1000)
    assert out["n"] == 2000
    assert counts == {"modify": 2000, "noop_modify": 2000, "best_bid": 2000, "depth10": 2000}


@pytest.mark.parametrize("kw, said", [(dict(resting=0), "resting must be >= 1, got 0"),
                                      (dict(block=0), "block must be >= 1, got 0")])
def test_per_call_no_resting_order_or_empty_block_refused(kw, said):
    # both failed with a bare ZeroDivisionError ("integer modulo by zero") naming neither
    import matchcore.bench.core as core

    with pytest.raises(ValueError, match=re.escape(said)):
        core.per_call(n=1000, reps=1, **kw)


def test_report_scaling_tables_name_each_column_once():
    # the parameter and the book it built were both headed "resting" (and "levels"): the
    # levels table read "levels 10,000 ... levels 8,604" for 10,000 levels asked, 8,604
    # occupied at the start
    from matchcore.bench.report import format_report

    pt = {"ns_per_msg": 30.0, "p50": 50.0, "p99": 90.0, "p99.9": 180.0}
    res = {"machine": {"cpu": "cpu", "cores_usable": 2, "python": "3.11", "git": {}},
           "clock": {"clock": "monotonic", "resolution_ns": 1.0, "overhead_ns": 20.0,
                     "overhead_p99_ns": 30.0},
           "scaling": {"messages": 50_000,
                       "resting": [{"variant": "touch", "param": 1_000, "resting": 1_000,
                                    "levels": 569, **pt}],
                       "levels": [{"variant": "20,000 resting", "param": 10_000,
                                   "resting": 20_000, "levels": 8_604, **pt}]}}
    lines = format_report(res).splitlines()
    for title, asked in (("scaling with resting orders", "resting"),
                         ("scaling with price levels", "levels")):
        i = next(k for k, s in enumerate(lines) if s.startswith(title))
        head = re.split(r"\s{2,}", lines[i + 1].strip())
        assert len(head) == len(set(head)), head
        assert head[:4] == ["variant", asked, "resting at start", "levels at start"], head
    row = re.split(r"\s{2,}", lines[-1].strip())
    assert row[:4] == ["20,000 resting", "10,000", "20,000", "8,604"]


def test_bench_many_books_script_small_book_memory_not_rounded_to_0_mb(monkeypatch, capsys):
    # the books' memory was printed in whole MB: a small run's 221 KB read "0 MB resident for
    # the books (22.1 KB a book)"
    mod = _load_script("bench_many_books")
    readings = iter([1_000_000, 1_221_000])
    monkeypatch.setattr(mod, "resident", lambda: next(readings))
    monkeypatch.setattr(mod.sys, "platform", "linux")
    assert mod.main(["--symbols", "10", "--messages", "20000", "--repeat", "1",
                     "--skip-dbn"]) == 0
    out = capsys.readouterr().out
    assert "221.0 KB resident for the books (22.1 KB a book)" in out, out
    assert " 0 MB" not in out


def _durability_result(reps, max_ns):
    row = {"throughput_cmd_s": 1e7, "vs_none": 1.0, "cpu_ns_per_cmd": 60.0, "cpu_vs_none": 1.0,
           "batch_call": {"p50_ns": 37_000.0, "p99_ns": 124_700.0},
           "per_call": {"p50_ns": 100.0, "p99_ns": 300.0, "max_ns": max_ns},
           "writer_preempted": 0}
    return {"timed": 4_500, "batch": 1024, "reps": reps, "modes": {"none": row}}


def test_bench_durability_table_one_pass_said_in_the_singular():
    # --reps 1 (the --quick default) read "median of 1 passes"
    mod = _load_script("bench_durability")
    assert "median of 1 pass;" in mod.format_result(_durability_result(1, 400.0))
    assert "median of 3 passes;" in mod.format_result(_durability_result(3, 400.0))


def test_bench_durability_table_sub_microsecond_max_not_printed_as_0_us():
    # the per-call max alone was printed in whole microseconds: 400 ns read "0 us", beside
    # a p99 of "0.3 us"
    mod = _load_script("bench_durability")
    line = mod.format_result(_durability_result(1, 400.0)).splitlines()[-1]
    assert line.split("us")[-2].strip() == "0.4", line


@pytest.mark.parametrize("script, argv, said", [
    ("bench_replay", ["--messages", "20000", "--symbols", "4", "--repeat", "1",
                      "--reference-messages", "1000", "--skip-memory"],
     "rates (median and best of 1 run after a warm-up):"),
    ("bench_embed", ["--n", "2000", "--steps", "2000", "--churn-n", "2000", "--reps", "1"],
     "median (best) of 1 run:")])
def test_bench_script_one_run_said_in_the_singular(capsys, monkeypatch, tmp_path, script, argv,
                                                  said):
    # --repeat 1 / --reps 1 read "median and best of 1 runs"
    # bench_embed's Numba loops (cache=True), compiled in a module loaded from its file, were
    # cached in benchmarks/__pycache__ under a module name nothing can import: from the second
    # run on, loading them back failed ("No module named '<dynamic>'" or 'bench_embed') unless
    # an earlier test had put benchmarks/ on the path. Each run compiles into a cache of its own.
    try:
        from numba.core import config as numba_config
    except ImportError:
        pass
    else:
        monkeypatch.setattr(numba_config, "CACHE_DIR", str(tmp_path / "numba-cache"))
    mod = _load_script(script)
    assert mod.main(argv) == 0
    out = capsys.readouterr().out
    assert said in out, out
    assert "of 1 runs" not in out


@pytest.mark.parametrize("chunk", [0, -1])
def test_throughput_and_calls_rate_chunk_below_one_refused_not_timed_as_nothing(tiny, chunk):
    # a negative chunk made no call at all: throughput() reported its process_chunked figure
    # as the time of an empty loop (1.6 G msg/s) and calls_rate() NaN; 0 failed in range()'s
    # words ("arg 3 must not be zero")
    setup, flow = tiny
    base = harness.build_book(setup, flow)
    with pytest.raises(ValueError, match=f"process_chunk must be >= 1, got {chunk}"):
        harness.throughput(base, flow, reps=1, process_chunk=chunk)
    book = base.copy()
    with pytest.raises(ValueError, match=f"chunk must be >= 1, got {chunk}"):
        harness.calls_rate(book.process, flow, chunk, harness.touched_events(1024))
    assert book.state_hash() == base.state_hash()


def test_per_message_figures_of_an_empty_flow_refused_not_made_up(tiny, monkeypatch):
    # a flow of no command was "measured": the time of an empty call counted as the cost of
    # one message (throughput 20 ns/msg, 50 M msg/s; measure_workload then ran an open loop
    # at a quarter of that; scaling_point reported 20 ns/msg)
    setup, flow = tiny
    base = harness.build_book(setup, flow)
    for call in (lambda: harness.throughput(base, flow[:0], reps=1),
                 lambda: harness.chunked_rate(base, flow[:0])):
        with pytest.raises(ValueError, match="no command"):
            call()

    def never(*a, **kw):
        raise AssertionError("timed an empty flow")

    monkeypatch.setattr(_timing, "process_timed", never)
    monkeypatch.setattr(_timing, "process_batch_ns", never)
    for call in (lambda: harness.measure_workload(setup, flow[:0]),
                 lambda: harness.scaling_point(setup, flow[:0])):
        with pytest.raises(ValueError, match="no command"):
            call()


@pytest.mark.parametrize("call", ["run_depth", "engine_vs_book"])
@pytest.mark.parametrize("names", [(), [], iter(())])
def test_bench_depth_empty_workload_selection_refused_before_any_work(call, names, monkeypatch):
    # names=() measured nothing and returned a result its formatter could not read
    # (format_engine: KeyError 'chunk'); the refusal comes before any workload is generated
    from matchcore.bench import core

    def generate(*a, **k):
        raise AssertionError("a workload was generated")

    monkeypatch.setattr(W, "generate", generate)
    monkeypatch.setattr(W, "standard_mix", generate)
    with pytest.raises(ValueError, match="names must name at least one workload"):
        getattr(core, call)(messages=100, names=names, reps=1)


@pytest.mark.parametrize("call", ["run_depth", "engine_vs_book"])
def test_bench_depth_workload_named_twice_refused_before_any_is_generated(call, monkeypatch):
    # a name given twice was generated and measured twice (minutes at full size), and the
    # result, a dict by name, kept only the second figures; book sizes given twice are refused
    from matchcore.bench import core

    def generate(*a, **k):
        raise AssertionError("a workload was generated")

    monkeypatch.setattr(W, "generate", generate)
    monkeypatch.setattr(W, "standard_mix", generate)
    with pytest.raises(ValueError, match="names 'wide_book' twice"):
        getattr(core, call)(messages=100, names=("wide_book", "market_heavy", "wide_book"),
                            reps=1)


@pytest.mark.parametrize("chunk", [0, -7])
def test_chunked_timings_chunk_below_one_refused_not_taken_as_1024(tiny, chunk, monkeypatch):
    # process_out_rate(chunk=), chunked_rate(chunk=), throughput(out_chunk=) and
    # engine_vs_book(chunk=) took a chunk below 1 as 1,024 messages a call without a word
    # (the lower bound call_chunk gives a short chunk); engine_vs_book only once its first
    # workload had been generated
    from matchcore.bench import core

    setup, flow = tiny
    base = harness.build_book(setup, flow)
    for call, name in ((lambda: harness.process_out_rate(base, flow, chunk=chunk), "chunk"),
                       (lambda: harness.chunked_rate(base, flow, chunk=chunk), "chunk"),
                       (lambda: harness.throughput(base, flow, reps=1, out_chunk=chunk),
                        "out_chunk")):
        with pytest.raises(ValueError, match=f"^{name} must be >= 1, got {chunk}$"):
            call()

    def generate(*a, **k):
        raise AssertionError("a workload was generated")

    monkeypatch.setattr(W, "generate", generate)
    monkeypatch.setattr(W, "standard_mix", generate)
    with pytest.raises(ValueError, match=f"^chunk must be >= 1, got {chunk}$"):
        core.engine_vs_book(messages=100, reps=1, chunk=chunk)


@pytest.mark.parametrize("n", [0, -5])
def test_per_call_no_call_asked_for_refused_not_run_as_a_block(n, monkeypatch):
    # n=0 (or below) ran one whole block of 1,000 calls per method and reported n 1,000
    import matchcore.bench.core as core

    def book(*a, **k):
        raise AssertionError("a book was built: the timing started")

    monkeypatch.setattr(core, "OrderBook", book)
    with pytest.raises(ValueError, match=re.escape(f"n must be >= 1, got {n}")):
        core.per_call(n=n, reps=1)


@pytest.fixture(scope="module")
def deep_modifies():
    # A book of 100k orders built as build_book builds it (process(): the batch's events go to
    # the result array, the book's own buffer stays small), and a flow of reprices: a modify
    # asks for event room for every resting order before it runs.
    setup, flow = W.deep_book(400, seed=3, resting=100_000)
    return harness.build_book(setup, flow), flow[flow["kind"] == int(mc.CommandKind.MODIFY)][:50]


def _faults_inside(monkeypatch, name):
    # minor page faults taken inside each call of the timed loop _timing.<name>: the memory a
    # growth of the book's event buffer allocates is first written there
    import resource

    real = getattr(_timing, name)
    seen = []

    def counted(book, flow, *args):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        try:
            return real(book, flow, *args)
        finally:
            seen.append((args, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))

    monkeypatch.setattr(_timing, name, counted)
    return seen


def test_closed_and_open_loop_grow_no_event_buffer_inside_the_timed_loop(deep_modifies,
                                                                         monkeypatch):
    base, flow = deep_modifies
    timed = _faults_inside(monkeypatch, "process_timed")
    opened = _faults_inside(monkeypatch, "process_open_loop")
    for _ in range(3):
        harness.closed_loop(base, flow, "monotonic")
        harness.open_loop(base, flow, 1e6, "monotonic")
    # the best of several calls: another allocation of the interpreter's may fault once, but
    # every copy whose buffer grew in the loop faulted there (3 pages here, one a huge page)
    assert min(f for _, f in timed) == 0, timed
    assert min(f for _, f in opened) == 0, opened


def test_throughput_emit_run_grows_no_event_buffer_inside_the_timed_call(deep_modifies,
                                                                        monkeypatch):
    base, flow = deep_modifies
    batches = _faults_inside(monkeypatch, "process_batch_ns")
    harness.throughput(base, flow, reps=3)
    emitted = [f for args, f in batches if not args or args[0]]
    assert emitted and min(emitted) == 0, batches


@pytest.mark.parametrize("value", [1.5, 2.0, "3"])
@pytest.mark.parametrize("call", ["run_depth", "engine_vs_book", "per_call", "throughput",
                                  "run_baselines", "run_core", "run_itch"])
def test_bench_reps_not_an_integer_refused_naming_it_before_any_work(call, value, tiny,
                                                                    monkeypatch):
    # 1.5 passed the ">= 1" check and failed in range()'s words ("'float' object cannot be
    # interpreted as an integer") once the workloads had been generated and measured, or, in
    # run_baselines, was reported as every baseline having failed
    from matchcore.bench import baselines, core, itch_workload

    setup, flow = tiny
    base = harness.build_book(setup, flow)

    def work(*a, **k):
        raise AssertionError("the work started")

    for owner, attr in ((W, "generate"), (W, "standard_mix"), (W, "deep_book"),
                        (core, "per_call"), (_timing, "process_batch_ns"),
                        (_timing, "process_timed"), (baselines, "_best_ns")):
        if not (owner is core and call == "per_call"):
            monkeypatch.setattr(owner, attr, work)
    name = "scaling_passes" if call == "run_core" else "reps"
    calls = {
        "run_depth": lambda: core.run_depth(messages=100, reps=value),
        "engine_vs_book": lambda: core.engine_vs_book(messages=100, reps=value),
        "per_call": lambda: core.per_call(n=100, reps=value),
        "throughput": lambda: harness.throughput(base, flow, reps=value),
        "run_baselines": lambda: baselines.run_baselines(setup, flow, 30.0,
                                                         names=["reference"], reps=value),
        "run_core": lambda: core.run_core(messages=100, quick=True, scaling_passes=value),
        "run_itch": lambda: itch_workload.run_itch(2_000, reps=value),
    }
    if call == "run_itch":
        import matchcore.itch as itch

        monkeypatch.setattr(itch, "generate", work)
    with pytest.raises(TypeError, match=f"^{name} must be an integer, got "):
        calls[call]()


@pytest.mark.parametrize("chunk", [1.5, "8"])
def test_chunk_not_an_integer_refused_naming_it_before_any_timing(tiny, chunk, monkeypatch):
    # throughput(process_chunk=1.5) passed the ">= 1" check and failed in range()'s words after
    # its whole-run figures had been measured
    setup, flow = tiny
    base = harness.build_book(setup, flow)

    def never(*a, **k):
        raise AssertionError("timed")

    monkeypatch.setattr(_timing, "process_batch_ns", never)
    with pytest.raises(TypeError, match="^process_chunk must be an integer, got "):
        harness.throughput(base, flow, reps=1, process_chunk=chunk)
    with pytest.raises(TypeError, match="^out_chunk must be an integer, got "):
        harness.throughput(base, flow, reps=1, out_chunk=chunk)
    book = base.copy()
    with pytest.raises(TypeError, match="^chunk must be an integer, got "):
        harness.calls_rate(book.process, flow, chunk, harness.touched_events(1024))
    with pytest.raises(TypeError, match="^chunk must be an integer, got "):
        harness.chunked_rate(base, flow, chunk=chunk)
    assert book.state_hash() == base.state_hash()


def test_bench_embed_one_command_step_and_op_said_in_the_singular(monkeypatch, capsys, tmp_path):
    # --n 1 --steps 1 --churn-n 1 printed "flow of 1 commands", "1 steps" and "(1 ops)"
    pytest.importorskip("numba")                # the churn row is a Numba loop's
    from numba.core import config as numba_config

    # (a cache of its own: see test_bench_script_one_run_said_in_the_singular)
    monkeypatch.setattr(numba_config, "CACHE_DIR", str(tmp_path / "numba-cache"))
    mod = _load_script("bench_embed")
    monkeypatch.setattr(mod, "build_c_library", lambda tmp: (None, "not built (test)"))
    assert mod.main(["--n", "1", "--steps", "1", "--churn-n", "1", "--reps", "1"]) in (0, None)
    out = capsys.readouterr().out
    assert "standard_mix flow of 1 command on a copy" in out
    assert "strategy loop, 1 step, seed 42" in out
    assert "Numba churn flow (1 op)" in out
    assert not re.search(r"(?<![\d,])1 (commands|steps|ops)\b", out), out
