"""Prometheus metrics: a replay's and an embedded engine's, scraped over loopback and checked
against the replay's own counters and the engine's own events; the compiled histogram recorder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

import matchcore as mc
import matchcore.itch as itch
from matchcore._timing import process_histogram

prom = pytest.importorskip("prometheus_client",
                           reason="prometheus_client not installed: pip install 'matchcore[metrics]'")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from matchcore.io.metrics import EngineMetrics, ReplayMetrics, serve_metrics  # noqa: E402

BOUNDS = np.array([100, 200, 500, 1e3, 2e3, 5e3, 1e4, 1e5, 1e6, 1e7])


def scrape(url: str) -> dict:
    """{(sample name, frozenset(labels)): value} of one scrape."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _finish_and_read(m, r) -> dict:
    """Finish replayer ``r``, give it to ``m`` (update, then final) and read ``m``'s registry:
    {(sample name, its symbol label or None): value}."""
    r.finish()
    m.update(r)
    m.update(r, final=True)
    text = prom.generate_latest(m.registry).decode()
    return {(x.name, x.labels.get("symbol")): x.value
            for fam in text_string_to_metric_families(text) for x in fam.samples}


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    path = tmp_path_factory.mktemp("itch") / "day.itch"
    itch.generate(path, messages=40_000, symbols=4, seed=11)
    return path


def random_commands(n, seed, symbols=(1, 2)):
    rng = np.random.default_rng(seed)
    c = np.zeros(n, mc.COMMAND_DTYPE)
    c["order_id"] = np.arange(1, n + 1)
    c["side"] = rng.integers(0, 2, n)
    c["price"] = rng.integers(95, 106, n)
    c["qty"] = rng.integers(1, 20, n)
    c["qty"][::37] = 0                       # INVALID_QTY rejects
    c["price"][5::41] = 103                  # some on a tick-5 grid break, for the engine
    c["symbol"] = rng.choice(symbols, n)
    c["ts_ns"] = np.arange(n) * 1000
    return c


def test_replay_metrics_scrape_over_loopback_equals_replay_counters(day):
    m = ReplayMetrics()
    r = itch.replay_file(day, chunk_size=128 << 10, on_chunk=m.update)
    m.update(r, final=True)
    s = r.stats
    trades = r.trades()
    with serve_metrics(0, registry=m.registry) as srv:
        got = scrape(srv.url)
    assert val(got, "matchcore_replay_done") == 1
    assert val(got, "matchcore_replay_chunks_total") >= 4     # counters came in per chunk
    for t, n in s["counts"].items():
        assert val(got, "matchcore_messages_total", type=t) == n
    assert sum(v for (name, _), v in got.items() if name == "matchcore_messages_total") == s["messages"]
    assert val(got, "matchcore_unknown_refs_total") == s["unknown_refs"]
    assert val(got, "matchcore_rejects_total", reason="duplicate_ref") == s["duplicate_refs"]
    assert val(got, "matchcore_bytes_total") == s["bytes_consumed"]
    assert val(got, "matchcore_books") == len(r.books)
    for loc, book in r.books.items():
        sym = r.symbols[loc]
        mine = trades[trades["locate"] == loc]
        assert val(got, "matchcore_trades_total", symbol=sym) == len(mine) > 0
        assert val(got, "matchcore_volume_shares_total", symbol=sym) == int(mine["shares"][itch.volume_mask(mine)].sum())
        assert val(got, "matchcore_open_orders", symbol=sym) == len(book)


def test_replay_metrics_before_first_update_exports_families_at_zero():
    # a scrape before the first update got an empty page: no family, no HELP/TYPE, no counter
    # at 0, as a Prometheus client library exports its metrics without labels from the start
    from matchcore.io.metrics import _REPLAY_FAMILIES

    m = ReplayMetrics()
    before = prom.generate_latest(m.registry).decode()
    names = {fam.name for fam in text_string_to_metric_families(before)}
    assert names == {f"matchcore_{name}" for _, name in _REPLAY_FAMILIES}
    assert m.snapshot() is None
    fresh = ReplayMetrics()
    fresh.update(itch.Replayer())
    assert before == prom.generate_latest(fresh.registry).decode()
    assert "matchcore_messages_total 0.0" not in before    # per-type series appear with types
    assert "matchcore_bytes_total 0.0" in before and "matchcore_replay_done 0.0" in before


def test_replay_metrics_invalid_replaces_and_zero_share_reductions_exported():
    import struct

    def msg(t, body, ts=1):
        m = struct.pack(">cHH", t, 1, 0) + ts.to_bytes(6, "big") + body
        return len(m).to_bytes(2, "big") + m

    data = b"".join([
        msg(b"A", struct.pack(">QcI8sI", 1, b"B", 100, b"TEST    ", 1000)),
        msg(b"A", struct.pack(">QcI8sI", 2, b"S", 50, b"TEST    ", 1010)),
        msg(b"U", struct.pack(">QQII", 1, 3, 0, 1005)),       # zero shares: invalid replace
        msg(b"U", struct.pack(">QQII", 1, 4, 70, 0)),         # zero price: invalid replace
        msg(b"E", struct.pack(">QIQ", 2, 0, 1)),              # zero-share execution
    ])
    m = ReplayMetrics()
    r = itch.Replayer()
    r.feed(data)
    r.finish()
    m.update(r, final=True)
    s = r.stats
    assert s["invalid_replaces"] == 2 and s["invalid_reductions"] == 1
    got = {(mf.name, smp.labels.get("reason")): smp.value
           for mf in text_string_to_metric_families(prom.generate_latest(m.registry).decode())
           for smp in mf.samples if smp.name == "matchcore_rejects_total"}
    assert got[("matchcore_rejects", "invalid_replace")] == 2
    assert got[("matchcore_rejects", "invalid_reduction")] == 1
    assert got[("matchcore_rejects", "invalid_add")] == 0


def test_replay_metrics_feed_stats_sequence_gaps_exported(day):
    from matchcore.moldudp import ReceiverStats

    fs = ReceiverStats()
    fs.gaps = [(10, 12), (20, 20)]
    fs.missing = 4
    fs.implausible = 1
    r = itch.Replayer()
    r.feed(itch.generate(None, messages=2000, symbols=2, seed=1))
    m = ReplayMetrics()
    m.update(r, feed_stats=fs)
    got = {(x.name, frozenset(x.labels.items())): x.value
           for fam in m.registry.collect() for x in fam.samples}
    assert val(got, "matchcore_sequence_gaps_total") == 2
    assert val(got, "matchcore_messages_missing_total") == 4
    assert val(got, "matchcore_sequence_implausible_total") == 1


def _replay_serving_metrics(day, hold, *extra):
    """`matchcore replay day --metrics-port 0 --metrics-hold hold *extra` in a subprocess;
    returns (process, metrics URL as its first line gives it). Port 0: a port picked here
    and bound by the child later could be taken by another process meanwhile."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "matchcore", "replay", str(day), "--metrics-port", "0",
         "--metrics-hold", hold, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = proc.stdout.readline()          # "metrics: URL", printed once it serves
    if not first.startswith("metrics: http://"):
        proc.kill()
        pytest.fail(f"no metrics URL first: {first!r} {proc.communicate()}")
    return proc, first.split()[1]


def _scrape_until_done(proc, url, also=lambda: True):
    """Scrape until the replay says it is done (and ``also()``), the process still up; returns
    that scrape."""
    deadline = time.monotonic() + 60
    got = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"replay exited early: {proc.communicate()}")
        try:
            got = scrape(url)
            if val(got, "matchcore_replay_done") == 1 and also():
                break
        except OSError:
            pass
        time.sleep(0.1)
    assert got is not None and val(got, "matchcore_replay_done") == 1
    return got


def test_cli_replay_metrics_port_scrape_equals_summary(day, tmp_path):
    out = tmp_path / "out"
    proc, url = _replay_serving_metrics(day, "60", "--out", str(out))
    try:
        got = _scrape_until_done(proc, url, lambda: (out / "summary.json").exists())
        summary = json.loads((out / "summary.json").read_text())
        stats = summary["stats"]
        for t, n in stats["counts"].items():
            assert val(got, "matchcore_messages_total", type=t) == n
        assert val(got, "matchcore_unknown_refs_total") == stats["unknown_refs"]
        assert val(got, "matchcore_books") == stats["books"]
        trades = np.load(out / "trades.npy")
        names = summary["symbols"]
        for loc in np.unique(trades["locate"]).tolist():
            mine = trades[trades["locate"] == loc]
            assert val(got, "matchcore_volume_shares_total", symbol=names[str(loc)]) == \
                int(mine["shares"][itch.volume_mask(mine)].sum())
        assert sum(v for (name, _), v in got.items() if name == "matchcore_open_orders") == \
            stats["open_orders"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_engine_metrics_process_same_events_and_scrape_counts():
    cmds = random_commands(5000, seed=3)
    plain, measured = mc.Engine(), mc.Engine()
    for e in (plain, measured):
        e.add_symbol(1, "AAA", tick=5)
        e.add_symbol(2, "BBB")
    expected = plain.process(cmds)
    m = EngineMetrics(measured, latency_bounds_ns=BOUNDS)
    events = np.concatenate([m.process(cmds[:2000]), m.process(cmds[2000:])])
    assert np.array_equal(events, expected)
    assert measured.state_hash() == plain.state_hash()
    with serve_metrics(0, registry=m.registry) as srv:
        got = scrape(srv.url)
    fills = expected[expected["kind"] == mc.EventKind.FILL]
    for sym_id, name in ((1, "AAA"), (2, "BBB")):
        mine = fills[fills["symbol"] == sym_id]
        assert val(got, "matchcore_fills_total", symbol=name) == len(mine) > 0
        assert val(got, "matchcore_volume_lots_total", symbol=name) == int(mine["qty"].sum())
    rej = expected[expected["kind"] == mc.EventKind.REJECTED]
    for reason in np.unique(rej["reason"]).tolist():
        assert val(got, "matchcore_rejects_total", reason=mc.Reason(reason).name.lower()) == \
            int((rej["reason"] == reason).sum())
    assert val(got, "matchcore_rejects_total", reason="price_not_on_tick") > 0
    assert val(got, "matchcore_service_time_seconds_count") == len(cmds)
    assert val(got, "matchcore_service_time_seconds_bucket", le="+Inf") == len(cmds)
    assert 0 < val(got, "matchcore_service_time_seconds_sum") < 5
    assert val(got, "matchcore_open_orders") == len(measured)
    assert val(got, "matchcore_events_total", kind="fill") == len(fills)


def test_engine_metrics_symbols_sharing_a_label_counted_together_not_overwritten():
    # symbol 1 is unnamed (label "1"), symbol 2 is named "1": one series, both counted
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.add_symbol(2, "1")
    eng.add_symbol(3, "C")
    m = EngineMetrics(eng)
    cmds = np.zeros(6, dtype=mc.COMMAND_DTYPE)
    cmds["symbol"] = [1, 1, 2, 2, 3, 3]
    cmds["order_id"] = np.arange(1, 7)
    cmds["side"] = [mc.Side.SELL, mc.Side.BUY] * 3
    cmds["price"] = 100
    cmds["qty"] = [5, 5, 7, 7, 2, 2]
    m.process(cmds)
    assert m.snapshot()["fills"] == {"1": (2, 12), "C": (1, 2)}
    with serve_metrics(0, registry=m.registry) as srv:
        got = scrape(srv.url)
    assert val(got, "matchcore_fills_total", symbol="1") == 2
    assert val(got, "matchcore_volume_lots_total", symbol="1") == 12
    # a symbols= mapping that groups ids adds them up
    book_metrics = EngineMetrics(mc.Engine(), symbols={1: "ALL", 2: "ALL"})
    ev = np.zeros(2, dtype=mc.EVENT_DTYPE)
    ev["kind"] = mc.EventKind.FILL
    ev["symbol"] = [1, 2]
    ev["qty"] = [3, 4]
    book_metrics.observe(ev)
    assert book_metrics.snapshot()["fills"] == {"ALL": (2, 7)}


def test_engine_metrics_symbols_none_name_labelled_by_id_as_an_unnamed_symbol():
    # symbols={1: None} labelled symbol 1 "None", where an engine's unnamed symbol is labelled
    # by its id
    ev = np.zeros(3, dtype=mc.EVENT_DTYPE)
    ev["kind"] = mc.EventKind.FILL
    ev["symbol"] = [1, 2, 2]
    ev["qty"] = [3, 4, 5]
    m = EngineMetrics(mc.Engine(), symbols={1: None, 2: "B"})
    m.observe(ev)
    assert m.snapshot()["fills"] == {"1": (1, 3), "B": (2, 9)}
    eng = mc.Engine()
    eng.add_symbol(1)
    unnamed = EngineMetrics(eng)
    unnamed.observe(ev)
    assert unnamed.snapshot()["fills"]["1"] == m.snapshot()["fills"]["1"]


def test_engine_metrics_volume_beyond_int64_counted_exactly():
    # two fills of 2**62 lots in one batch: the batch's int64 sum wrapped to -2**63, and the
    # volume counted was negative
    eng = mc.Engine()
    eng.add_symbol(1, "A")
    eng.add_symbol(2, "B")
    m = EngineMetrics(eng)
    cmds = np.zeros(6, dtype=mc.COMMAND_DTYPE)
    cmds["symbol"] = [1, 1, 1, 1, 2, 2]
    cmds["order_id"] = np.arange(1, 7)
    cmds["side"] = [mc.Side.SELL, mc.Side.SELL, mc.Side.BUY, mc.Side.BUY, mc.Side.SELL,
                    mc.Side.BUY]
    cmds["price"] = 100
    cmds["qty"] = [2**62, 2**62, 2**62, 2**62, 3, 3]
    events = m.process(cmds)
    assert m.snapshot()["fills"] == {"A": (2, 2**63), "B": (1, 3)}
    m.observe(events)
    assert m.snapshot()["fills"] == {"A": (4, 2**64), "B": (2, 6)}

def test_engine_metrics_process_journaled_engine_refused_observe_counts(tmp_path):
    eng = mc.Engine(journal=tmp_path / "j")
    eng.add_symbol(1, "A")
    m = EngineMetrics(eng)
    cmds = np.zeros(2, dtype=mc.COMMAND_DTYPE)
    cmds["symbol"] = 1
    cmds["order_id"] = [1, 2]
    cmds["side"] = [mc.Side.SELL, mc.Side.BUY]
    cmds["price"] = 100
    cmds["qty"] = 3
    with pytest.raises(ValueError, match="metrics.observe"):
        m.process(cmds)
    assert eng.journal_seq == 1 and len(eng) == 0       # nothing applied, nothing journaled
    m.observe(eng.process(cmds))
    assert m.snapshot()["fills"] == {"A": (1, 3)} and eng.journal_seq == 3
    eng.close()



def test_engine_metrics_process_recorded_book_refused_observe_counts(tmp_path):
    # the book of an open native.Recorder was refused by the timed loop in the words of
    # process_histogram(), which the caller never called, advising to time a copy: its events
    # would be counted instead of the live book's. Refused here as a journaled engine is, with
    # the way that counts the live book's events.
    from matchcore.native import Recorder, read_header

    rec = Recorder(mc.OrderBook(), tmp_path / "s.mccmd")
    m = EngineMetrics(rec.book)
    cmds = np.zeros(2, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = [1, 2]
    cmds["side"] = [mc.Side.SELL, mc.Side.BUY]
    cmds["price"] = 100
    cmds["qty"] = 3
    with pytest.raises(ValueError, match=r"^EngineMetrics\.process\(\) .*native\.Recorder.*"
                                         r"metrics\.observe\(events\)") as e:
        m.process(cmds)
    assert "process_histogram" not in str(e.value) and "copy" not in str(e.value)
    assert len(rec.book) == 0 and rec.count == 0 and m.snapshot()["commands"] == 0
    m.observe(rec.process(cmds))
    assert m.snapshot()["fills"] == {"0": (1, 3)}
    rec.close()
    assert read_header(tmp_path / "s.mccmd").count == 2      # the refused batch: no record
    m.process(cmds[:0])                 # closed: the book is the caller's again


def test_engine_metrics_given_a_recorder_refused_naming_its_book(tmp_path):
    from matchcore.native import Recorder

    # "got Recorder": the session object a simulator holds, with no word of its book
    with Recorder(mc.OrderBook(), tmp_path / "s.mccmd") as rec:
        with pytest.raises(TypeError, match=r"native\.Recorder.*EngineMetrics\(rec\.book\)"):
            EngineMetrics(rec)
        EngineMetrics(rec.book)


@pytest.mark.parametrize("journaled", [False, True])
@pytest.mark.parametrize("commands, error, words", [
    (np.zeros(3, dtype=np.int64), TypeError,
     "EngineMetrics.process() needs commands as an array of matchcore.COMMAND_DTYPE, got int64"),
    ([1, 2], TypeError, "EngineMetrics.process() needs commands as an array of "
                        "matchcore.COMMAND_DTYPE, got int64"),
    (np.zeros((2, 2), dtype=mc.COMMAND_DTYPE), ValueError,
     "EngineMetrics.process() needs commands as a 1-D array, got shape (2, 2)")])
def test_engine_metrics_process_wrong_array_refused_naming_process_nothing_counted(
        tmp_path, journaled, commands, error, words):
    # refused by the private process_histogram() it calls, which the caller never named (and,
    # on a journaled engine, as bypassing the journal, whatever the array)
    eng = mc.Engine(journal=tmp_path / "j") if journaled else mc.Engine()
    eng.add_symbol(1, "A")
    m = EngineMetrics(eng)
    before = m.snapshot()
    with pytest.raises(error) as exc:
        m.process(commands)
    assert str(exc.value) == words
    assert m.snapshot() == before and len(eng) == 0
    eng.close()


def test_engine_metrics_observe_orderbook_events_per_call_api():
    book = mc.OrderBook()
    m = EngineMetrics(book, symbols={0: "SIM"})
    book.submit(1, mc.Side.SELL, 101, 5)
    book.submit(2, mc.Side.BUY, 101, 3)
    with pytest.raises(mc.OrderRejected):
        book.submit(1, mc.Side.BUY, 99, 1)            # id 1 still rests: duplicate
    m.observe(book.events())
    snap = m.snapshot()
    assert snap["fills"] == {"SIM": (1, 3)}
    assert snap["rejects"] == {"duplicate_order_id": 1}
    assert snap["open_orders"] == 1


def test_process_histogram_orderbook_same_events_every_command_counted():
    cmds = random_commands(3000, seed=5, symbols=(0,))
    a, b = mc.OrderBook(), mc.OrderBook()
    counts = np.zeros(len(BOUNDS) + 2, dtype=np.int64)
    ev = process_histogram(b, cmds, BOUNDS, counts, "monotonic")
    assert np.array_equal(ev, a.process(cmds))
    assert a.state_hash() == b.state_hash()
    assert counts[:-1].sum() == len(cmds)
    assert counts[-1] > 0                               # the sum in ns


def test_process_histogram_record_events_false_returns_batch_events_as_process(tmp_path):
    cmds = random_commands(2000, seed=7, symbols=(1,))
    quiet, plain = mc.Engine(record_events=False), mc.Engine()
    for e in (quiet, plain):
        e.add_symbol(1)
    counts = np.zeros(len(BOUNDS) + 2, dtype=np.int64)
    assert np.array_equal(process_histogram(quiet, cmds, BOUNDS, counts, "monotonic"),
                          plain.process(cmds))
    assert len(quiet.events()) == 0                     # nothing left pending
    journaled = mc.Engine(journal=tmp_path / "j", fsync="never")
    with pytest.raises(ValueError, match="journal"):    # would bypass the journal
        process_histogram(journaled, cmds, BOUNDS, counts, "monotonic")
    journaled.close()


def test_process_histogram_every_k_times_one_command_in_k_same_events():
    cmds = random_commands(3001, seed=6, symbols=(1, 2))
    plain, sampled = mc.Engine(), mc.Engine()
    for e in (plain, sampled):
        e.add_symbol(1)
        e.add_symbol(2)
    counts = np.zeros(len(BOUNDS) + 2, dtype=np.int64)
    ev = process_histogram(sampled, cmds, BOUNDS, counts, "monotonic", 4)
    assert np.array_equal(ev, plain.process(cmds))
    assert counts[:-1].sum() == 751                     # commands 0, 4, 8, ..., 3000
    m = EngineMetrics(mc.Engine(), sample_every=10)
    with pytest.raises(ValueError, match="sample_every"):
        EngineMetrics(mc.Engine(), sample_every=0)
    assert m.sample_every == 10


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_engine_metrics_sample_every_one_command_in_k_across_process_calls(batch):
    # each process() call timed its first command: batches smaller than sample_every timed
    # every command (a simulator's step of one command: all of them, whatever k)
    cmds = random_commands(60, seed=5)
    eng = mc.Engine()
    eng.add_symbol(1, "AAA", tick=5)
    eng.add_symbol(2, "BBB")
    m = EngineMetrics(eng, latency_bounds_ns=BOUNDS, sample_every=4)
    for i in range(0, len(cmds), batch):
        m.process(cmds[i:i + batch])
    with serve_metrics(0, registry=m.registry) as srv:
        got = scrape(srv.url)
    assert val(got, "matchcore_commands_total") == 60
    assert val(got, "matchcore_service_time_seconds_count") == 15

def test_process_histogram_bad_arguments_raise_and_change_nothing():
    cmds = random_commands(10, seed=1, symbols=(0,))
    book = mc.OrderBook()
    book.submit(99, mc.Side.BUY, 50, 1)
    h = book.state_hash()
    ok = np.zeros(len(BOUNDS) + 2, dtype=np.int64)
    with pytest.raises(ValueError, match="ascending"):
        process_histogram(book, cmds, BOUNDS[::-1], ok)
    with pytest.raises(ValueError, match="len\\(bounds_ns\\) \\+ 2"):
        process_histogram(book, cmds, BOUNDS, np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="int64"):
        process_histogram(book, cmds, BOUNDS, ok.astype(np.float64))
    with pytest.raises(TypeError, match="OrderBook or an Engine"):
        process_histogram(object(), cmds, BOUNDS, ok)
    with pytest.raises(TypeError, match="COMMAND_DTYPE"):
        process_histogram(book, np.zeros(3), BOUNDS, ok)
    with pytest.raises(ValueError, match="1-D array of commands"):
        process_histogram(book, np.stack([cmds, cmds]), BOUNDS, ok)
    with pytest.raises(ValueError, match="every must be >= 1"):
        process_histogram(book, cmds, BOUNDS, ok, "auto", 0)
    for skip in (-1, 4):
        with pytest.raises(ValueError, match="skip must be in"):
            process_histogram(book, cmds, BOUNDS, ok, "auto", 4, skip)
    assert book.state_hash() == h and not ok.any()


def test_engine_metrics_bad_target_and_bounds_raise():
    with pytest.raises(TypeError, match="OrderBook or an Engine"):
        EngineMetrics(object())
    with pytest.raises(ValueError, match="ascending"):
        EngineMetrics(mc.OrderBook(), latency_bounds_ns=[5, 1])
    with pytest.raises(TypeError, match="EVENT_DTYPE"):
        EngineMetrics(mc.OrderBook()).observe(np.zeros(3))


@pytest.mark.parametrize("bounds", [[100, float("nan")], [float("nan")], [100, float("inf")],
                                    [float("inf")], [100, 10**400]])
def test_engine_metrics_bound_not_finite_refused_at_construction_nothing_registered(bounds):
    # NaN was accepted and registered: every process() then failed (the compiled recorder
    # refuses it) and scrapes carried a bucket le="nan"; inf gave a bucket le="inf" beside the
    # +Inf one, the same bound twice; an int beyond any float raised numpy's OverflowError
    # ("int too large to convert to float"), which named no argument
    reg = prom.CollectorRegistry()
    with pytest.raises(ValueError, match="finite"):
        EngineMetrics(mc.OrderBook(), reg, latency_bounds_ns=bounds)
    m = EngineMetrics(mc.OrderBook(), reg)        # the registry holds no half-made collector
    cmds = random_commands(50, seed=3, symbols=(0,))
    assert len(m.process(cmds)) > 0 and m.snapshot()["commands"] == 50

@pytest.mark.parametrize("kw, error, words", [
    (dict(symbols=5), TypeError, "symbols must map symbol ids to label names"),
    (dict(symbols=["AAPL"]), TypeError, "symbols must map symbol ids to label names"),
    (dict(latency_bounds_ns="100"), ValueError, "latency_bounds_ns must be finite"),
    (dict(latency_bounds_ns=[100, "x"]), ValueError, "latency_bounds_ns must be finite"),
])
def test_engine_metrics_bad_symbols_or_bounds_refused_naming_them_nothing_registered(kw, error,
                                                                                   words):
    # symbols=5 raised "'int' object is not iterable", a list of names "dictionary update
    # sequence element #0 has length 4", bounds "could not convert string to float": none said
    # which argument, nor what it takes
    reg = prom.CollectorRegistry()
    with pytest.raises(error, match=words):
        EngineMetrics(mc.OrderBook(), reg, **kw)
    m = EngineMetrics(mc.OrderBook(), reg, symbols=[(0, "SIM")])   # pairs, as dict() takes
    assert len(m.process(random_commands(50, seed=3, symbols=(0,)))) > 0
    assert set(m.snapshot()["fills"]) <= {"SIM"}


@pytest.mark.parametrize("symbols", [{"0": "SIM"}, {0.0: "SIM"}, {True: "SIM"}])
def test_engine_metrics_symbols_key_not_an_integer_id_refused_nothing_registered(symbols):
    # {"0": "SIM"} (a mapping read from JSON) was taken and never matched an event's symbol
    # id: the fills went on under "0", the name given silently unused
    reg = prom.CollectorRegistry()
    with pytest.raises(TypeError, match="symbols must map integer symbol ids to label names"):
        EngineMetrics(mc.OrderBook(), reg, symbols=symbols)
    m = EngineMetrics(mc.OrderBook(), reg, symbols={np.int64(0): "SIM"})
    m.process(random_commands(200, seed=3, symbols=(0,)))
    assert set(m.snapshot()["fills"]) == {"SIM"}


def test_serve_metrics_bad_or_taken_port_raises():
    with pytest.raises(ValueError, match="0..65535"):
        serve_metrics(70000)
    with serve_metrics(0) as srv:
        with pytest.raises(OSError):
            serve_metrics(srv.port)


@pytest.mark.parametrize("addr", [5, None, b"127.0.0.1"])
def test_serve_metrics_address_not_a_string_refused_naming_addr(addr):
    # 5 was refused in getaddrinfo()'s words and None served on every interface
    with pytest.raises(TypeError) as exc:
        serve_metrics(0, addr=addr)
    assert str(exc.value) == (f"metrics addr must be a str (a host name or IP address), got "
                              f"{type(addr).__name__} {addr!r}")


def test_metrics_prometheus_client_missing_error_names_the_extra(monkeypatch, day, capsys):
    from matchcore.__main__ import main

    for name in ("prometheus_client", "prometheus_client.core"):
        monkeypatch.setitem(sys.modules, name, None)       # import now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'matchcore\[metrics\]'"):
        ReplayMetrics()
    assert main(["replay", str(day), "--metrics-port", "0"]) == 2     # as every missing extra
    assert "matchcore[metrics]" in capsys.readouterr().err


def test_cli_publish_nats_missing_exit_status_2_names_the_extra(monkeypatch, day, capsys):
    from matchcore.__main__ import main

    monkeypatch.setitem(sys.modules, "nats", None)          # import now raises ImportError
    assert main(["replay", str(day), "--publish", "nats://127.0.0.1:1"]) == 2
    assert "matchcore[nats]" in capsys.readouterr().err


def test_replay_metrics_chunks_total_counts_buffers_not_updates(day):
    data = memoryview(day.read_bytes())
    r = itch.Replayer()
    m = ReplayMetrics()
    pos = feeds = 0
    while pos < len(data):
        pos += r.feed(data[pos:pos + 50_000])
        feeds += 1
        m.update(r)
    r.finish()
    m.update(r)                     # what replay_file's on_chunk does after finish()
    m.update(r, final=True)         # the caller's closing update
    assert feeds > 1 and m.snapshot()["chunks"] == feeds
    m2 = ReplayMetrics()            # replay_file: one 4 MiB buffer holds the whole file
    r2 = itch.replay_file(day, on_chunk=m2.update)
    m2.update(r2, final=True)
    got = {(x.name, frozenset(x.labels.items())): x.value
           for fam in m2.registry.collect() for x in fam.samples}
    assert day.stat().st_size < 4 << 20 and val(got, "matchcore_replay_chunks_total") == 1


def test_replay_metrics_chunks_total_bytes_finish_consumed_not_a_chunk(day, tmp_path):
    # A bad length prefix before the last message: feed() keeps that message back (its framing
    # depends on what follows), finish() consumes it, and the update after finish() saw new
    # bytes: replay_chunks_total said 2 for a file read in one buffer.
    data = bytearray(day.read_bytes())
    offs, pos = [], 0
    while pos < len(data):
        offs.append(pos)
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    data[offs[-2]:offs[-2] + 2] = b"\0\0"
    path = tmp_path / "bad_end.itch"
    path.write_bytes(bytes(data))
    m = ReplayMetrics()
    r = itch.replay_file(path, on_chunk=m.update)
    assert r.finished and r.stats["bad_lengths"] == 1
    m.update(r, final=True)
    with serve_metrics(0, registry=m.registry) as srv:
        got = scrape(srv.url)
    assert len(data) < 4 << 20 and val(got, "matchcore_replay_chunks_total") == 1
    assert val(got, "matchcore_bytes_total") == len(data) == r.stats["bytes_consumed"]
    # fed by hand: one chunk per buffer whose bytes feed() consumed, none for finish()'s
    r2 = itch.Replayer()
    m2 = ReplayMetrics()
    view, pos, feeds = memoryview(bytes(data)), 0, 0
    while True:
        k = r2.feed(view[pos:pos + 200_000])
        if not k:
            break
        pos, feeds = pos + k, feeds + 1
        m2.update(r2)
    assert not r2.finished and 0 < len(data) - pos < 64   # kept back for finish()
    r2.finish(view[pos:])
    m2.update(r2)
    m2.update(r2, final=True)
    assert r2.finished and r2.stats["bytes_consumed"] == len(data)
    with serve_metrics(0, registry=m2.registry) as srv:
        got = scrape(srv.url)
    assert feeds > 1 and val(got, "matchcore_replay_chunks_total") == feeds
    assert val(got, "matchcore_bytes_total") == len(data)


def test_replay_and_engine_metrics_one_registry_refused_at_construction():
    import prometheus_client

    reg = prometheus_client.CollectorRegistry()
    rm = ReplayMetrics(registry=reg)
    with pytest.raises(ValueError, match=r"EngineMetrics\(prefix='matchcore'\) exports metric "
                                         r"names.*open_orders"):
        EngineMetrics(mc.OrderBook(), registry=reg)
    # nothing of the refused collector reached the registry: one TYPE line per family
    r = itch.Replayer()
    r.feed(itch.generate(None, messages=2000, symbols=2, seed=1))
    rm.update(r)
    types = [ln for ln in prometheus_client.generate_latest(reg).decode().splitlines()
             if ln.startswith("# TYPE")]
    assert len(types) == len(set(types)) and "# TYPE matchcore_commands_total counter" not in types
    # another prefix on the same registry is fine
    em = EngineMetrics(mc.OrderBook(), registry=reg, prefix="sim")
    assert em.registry is reg


def test_metrics_describe_names_the_families_collect_yields(day):
    m = ReplayMetrics()
    r = itch.replay_file(day, on_chunk=m.update)
    m.update(r, final=True)
    assert sorted(f.name for f in m.describe()) == sorted(f.name for f in m.collect())
    em = EngineMetrics(mc.OrderBook())
    em.process(random_commands(200, 3))
    assert sorted(f.name for f in em.describe()) == sorted(f.name for f in em.collect())


def test_replay_metrics_update_not_an_itch_replayer_type_error_nothing_recorded():
    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn import DbnReplayer

    m = ReplayMetrics()
    for bad in (DbnReplayer(), object(), None):
        with pytest.raises(TypeError, match="needs an itch.Replayer"):
            m.update(bad)
    assert m.snapshot() is None


@pytest.mark.parametrize("hold", ["inf", "1e12"])
def test_cli_replay_metrics_hold_inf_or_huge_serves_until_sigterm_no_traceback(day, hold):
    # time.sleep(inf) raised OverflowError after the replay: a traceback, the endpoint gone
    import signal

    proc, url = _replay_serving_metrics(day, hold)
    try:
        _scrape_until_done(proc, url)
        time.sleep(0.5)
        assert proc.poll() is None                 # still holding, not crashed
        assert val(scrape(url), "matchcore_replay_done") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "OverflowError" not in err
    assert "until interrupted" in out if hold == "inf" else "1e+12 s more" in out


def test_replay_metrics_books_sharing_a_name_labelled_by_locate_each_its_own():
    import struct

    def msg(t, loc, body, ts=1):
        m = struct.pack(">cHH", t, loc, 0) + ts.to_bytes(6, "big") + body
        return len(m).to_bytes(2, "big") + m

    # two locates carrying one name: each book has its orders and a trade
    data = b"".join([
        msg(b"A", 1, struct.pack(">QcI8sI", 1, b"B", 100, b"TEST    ", 1000)),
        msg(b"A", 1, struct.pack(">QcI8sI", 2, b"B", 40, b"TEST    ", 990)),
        msg(b"A", 2, struct.pack(">QcI8sI", 3, b"S", 50, b"TEST    ", 1010)),
        msg(b"A", 2, struct.pack(">QcI8sI", 4, b"S", 60, b"TEST    ", 1020)),
        msg(b"A", 2, struct.pack(">QcI8sI", 5, b"S", 70, b"TEST    ", 1030)),
        msg(b"A", 3, struct.pack(">QcI8sI", 6, b"S", 70, b"OTHER   ", 1030)),
        msg(b"E", 1, struct.pack(">QIQ", 1, 30, 1)),
        msg(b"E", 2, struct.pack(">QIQ", 3, 20, 2)),
        msg(b"E", 2, struct.pack(">QIQ", 4, 5, 3)),
    ])
    m = ReplayMetrics()
    r = itch.Replayer()
    r.feed(data)
    r.finish()
    m.update(r, final=True)
    assert r.symbols == {1: "TEST", 2: "TEST", 3: "OTHER"}
    got = {}
    for mf in text_string_to_metric_families(prom.generate_latest(m.registry).decode()):
        for smp in mf.samples:
            got[(smp.name, smp.labels.get("symbol"))] = smp.value
    # one series per book, named as the replay summary and a NATS subscriber name them
    assert got[("matchcore_trades_total", "TEST@locate1")] == 1
    assert got[("matchcore_trades_total", "TEST@locate2")] == 2
    assert got[("matchcore_volume_shares_total", "TEST@locate1")] == 30
    assert got[("matchcore_volume_shares_total", "TEST@locate2")] == 25
    assert got[("matchcore_open_orders", "TEST@locate1")] == 2
    assert got[("matchcore_open_orders", "TEST@locate2")] == 3
    assert got[("matchcore_open_orders", "OTHER")] == 1
    assert ("matchcore_open_orders", "TEST") not in got
    assert sum(v for (n, _), v in got.items() if n == "matchcore_open_orders") \
        == r.stats["open_orders"] == 6


def test_replay_metrics_final_update_without_feed_stats_keeps_receiver_counts():
    # a MoldUDP64 receiver's counts given per batch, then the final update after finish()
    # without them: the gap counters went back to 0 (a counter reset to Prometheus)
    from matchcore.moldudp import MoldUDP64Publisher, MoldUDP64Receiver

    src = itch.generate(None, messages=3000, symbols=2, seed=4)
    r = itch.Replayer()
    m = ReplayMetrics()
    with MoldUDP64Receiver(0, "127.0.0.1", r) as rx:
        with MoldUDP64Publisher(src, rx.port, max_messages=20, drop={3, 40}, gap_s=0) as pub:
            ps = pub.run()
        while not rx.stats.end_of_session:
            rx.run(timeout=10, max_packets=25)
            m.update(r, feed_stats=rx.stats)
    r.finish(rx.unconsumed)
    m.update(r)
    m.update(r, final=True)
    text = prom.generate_latest(m.registry).decode()
    got = {(x.name, frozenset(x.labels.items())): x.value
           for fam in text_string_to_metric_families(text) for x in fam.samples}
    assert rx.stats.gaps == ps.dropped and len(ps.dropped) == 2
    assert val(got, "matchcore_sequence_gaps_total") == 2
    assert val(got, "matchcore_messages_missing_total") == rx.stats.missing > 0
    assert val(got, "matchcore_sequence_implausible_total") == 0
    assert val(got, "matchcore_replay_done") == 1


def test_replay_metrics_second_replay_labels_its_own_symbols_no_key_error():
    # one ReplayMetrics on one endpoint, a file a day: the names of the first replay's locates
    # were kept (day 2's MSFT at locate 1 exported as AAPL) and a locate day 1 lacked with as
    # many books raised KeyError
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from nats_checks import itch_a

    def day(loc, sym, n):
        data = b"".join(itch_a(loc, i + 1, b"B", 100, sym, 1_000_000 - 100 * i, i)
                        for i in range(n))
        r = itch.Replayer()
        pos = 0
        while pos < len(data):                   # several buffers fed
            pos += r.feed(data[pos:pos + 80])
            m.update(r)
        return _finish_and_read(m, r)

    m = ReplayMetrics()
    got = day(1, "AAPL", 5)
    assert got[("matchcore_open_orders", "AAPL")] == 5
    chunks1 = got[("matchcore_replay_chunks_total", None)]
    got = day(1, "MSFT", 3)
    assert got[("matchcore_open_orders", "MSFT")] == 3
    assert ("matchcore_open_orders", "AAPL") not in got
    assert got[("matchcore_replay_chunks_total", None)] < chunks1
    got = day(7, "TSLA", 2)
    assert got[("matchcore_open_orders", "TSLA")] == 2 and got[("matchcore_books", None)] == 1


def test_cli_replay_metrics_locate_renamed_mid_replay_labels_follow_rename(tmp_path):
    # a stock directory message renaming locate 1 after the first 4 MiB chunk, no book
    # appearing after it: its series stayed under the old name (the names were only looked
    # up again when the number of books changed), where the summary names it NEWNAME
    sys.path.insert(0, os.path.dirname(__file__))
    from nats_checks import renamed_after_first_chunk

    path = renamed_after_first_chunk(tmp_path, {1: "NEWNAME", 2: "NEWNAME"})
    r = itch.replay_file(path)
    assert r.symbols == {1: "NEWNAME", 2: "NEWNAME"}
    out = tmp_path / "out"
    proc, url = _replay_serving_metrics(path, "60", "--out", str(out))
    try:
        got = _scrape_until_done(proc, url, lambda: (out / "summary.json").exists())
    finally:
        proc.terminate()
        stdout, _ = proc.communicate(timeout=10)
    # both locates now carry one name: one series per book, labelled as the summary has them
    assert "books: 2: NEWNAME@locate1, NEWNAME@locate2;" in stdout
    labels = {dict(k[1]).get("symbol") for k in got if k[0] == "matchcore_open_orders"}
    assert labels == {"NEWNAME@locate1", "NEWNAME@locate2"}
    trades = r.trades()
    for loc, book in r.books.items():
        mine = trades[trades["locate"] == loc]
        assert val(got, "matchcore_open_orders", symbol=f"NEWNAME@locate{loc}") == len(book)
        assert val(got, "matchcore_volume_shares_total", symbol=f"NEWNAME@locate{loc}") == \
            int(mine["shares"][itch.volume_mask(mine)].sum()) > 0


def test_cli_replay_metrics_port_taken_error_names_option_and_address_nothing_replayed(
        day, capsys):
    # the message was "[Errno 98] Address already in use": which address, for what?
    from matchcore.__main__ import main

    with serve_metrics(0) as srv:
        assert main(["replay", str(day), "--metrics-port", str(srv.port)]) == 1
    cap = capsys.readouterr()
    assert f"--metrics-port {srv.port}" in cap.err and f"127.0.0.1:{srv.port}" in cap.err
    assert "in use" in cap.err and "replayed" not in cap.out
    with serve_metrics(0) as srv:
        with pytest.raises(OSError, match=rf"127\.0\.0\.1:{srv.port}") as e:
            serve_metrics(srv.port)
        assert e.value.errno is not None


def test_serve_metrics_ipv6_address_url_bracketed_and_scrapable():
    import socket
    import urllib.parse

    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = serve_metrics(0, addr="::1", registry=ReplayMetrics().registry)
    except OSError as e:
        pytest.skip(f"no IPv6 loopback: {e}")
    with srv:
        # "http://::1:PORT/metrics" is no URL: its port could not be read back
        assert srv.url == f"http://[::1]:{srv.port}/metrics"
        assert urllib.parse.urlsplit(srv.url).port == srv.port
        assert urllib.request.urlopen(srv.url, timeout=5).status == 200


@pytest.mark.parametrize("prefix", ["my-app", "1abc", "", "a b", "mc.x", None, 7])
def test_metrics_prefix_not_a_metric_name_refused_nothing_registered(prefix):
    # prometheus_client rewrote such a prefix at scrape time (my-app -> my_app_*): the names
    # exported were not the ones asked for, and prefixes "a-b" and "a_b" on one registry
    # exported every family twice, past the duplicate check
    reg = prom.CollectorRegistry()
    for make in (lambda: ReplayMetrics(registry=reg, prefix=prefix),
                 lambda: EngineMetrics(mc.Engine(), registry=reg, prefix=prefix)):
        with pytest.raises((ValueError, TypeError), match="metric name"):
            make()
    assert prom.generate_latest(reg) == b""
    ok = ReplayMetrics(registry=reg, prefix="a_b:c")
    assert ok.prefix == "a_b:c"


def test_replay_metrics_next_replay_at_a_freed_replayers_address_labels_its_own_symbols():
    # a new replay was told from the last by id(replayer): a replayer made after the last one
    # was freed often has its address, and with as many bytes by its first update the next
    # day's MSFT was exported as the day before's AAPL and replay_chunks_total ran on
    import gc
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from nats_checks import itch_a

    m = ReplayMetrics()
    ids = []

    def day(sym, n):
        data = b"".join(itch_a(1, i + 1, b"B", 100, sym, 1_000_000 - 100 * i, i)
                        for i in range(n))
        r = itch.Replayer()
        ids.append(id(r))
        r.feed(data)
        m.update(r)
        return _finish_and_read(m, r)

    assert day("AAPL", 5)[("matchcore_open_orders", "AAPL")] == 5
    for sym, n in (("MSFT", 5), ("TSLA", 6)):
        gc.collect()
        got = day(sym, n)
        assert got[("matchcore_open_orders", sym)] == n
        assert ("matchcore_open_orders", "AAPL") not in got
        assert got[("matchcore_replay_chunks_total", None)] == 1
    if len(set(ids)) == len(ids):
        pytest.skip("no replayer was made at a freed one's address: the case did not arise")


def test_metrics_integer_arguments_take_numpy_integers_as_the_library_does():
    # serve_metrics(port=np.int64(0)) and EngineMetrics(sample_every=np.int64(10)) were refused
    # as "must be an int", where every integer argument of the book, the engine and the Dask
    # replay takes a numpy integer; bools, floats and strs are still refused
    from matchcore.io.metrics import EngineMetrics, serve_metrics

    m = EngineMetrics(mc.Engine(), sample_every=np.int64(10))
    assert m.sample_every == 10 and type(m.sample_every) is int
    with serve_metrics(np.int64(0), registry=m.registry) as srv:
        assert srv.port > 0
    for bad in (True, 1.0, "1"):
        with pytest.raises(ValueError, match="sample_every"):
            EngineMetrics(mc.Engine(), sample_every=bad)
        with pytest.raises(ValueError, match="metrics port"):
            serve_metrics(bad)


@pytest.mark.parametrize("shape", [(2, 2), ()])
def test_engine_metrics_observe_not_1d_refused_naming_observe_nothing_counted(shape):
    # numpy's "object too deep for desired array" (2-D) or "len() of unsized object" (0-d)
    # named neither observe() nor its argument
    m = EngineMetrics(mc.OrderBook())
    before = m.snapshot()
    with pytest.raises(ValueError) as exc:
        m.observe(np.zeros(shape, dtype=mc.EVENT_DTYPE))
    assert str(exc.value) == f"observe() needs a 1-D array of events, got shape {shape}"
    assert m.snapshot() == before


@pytest.mark.parametrize("every", [2**63, 2**64 + 1])
def test_engine_metrics_sample_every_beyond_int64_refused_at_construction(every):
    # taken, every process() then failed with "Python int too large to convert to C ssize_t",
    # naming nothing, the book untouched each time
    with pytest.raises(ValueError) as exc:
        EngineMetrics(mc.OrderBook(), sample_every=every)
    assert str(exc.value) == f"sample_every must be an int in [1, 2**63), got {every}"
    m = EngineMetrics(mc.OrderBook(), sample_every=2**63 - 1)
    cmds = np.zeros(3, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = [1, 2, 3]
    cmds["qty"] = 1
    cmds["price"] = 100
    m.process(cmds)
    assert m.snapshot()["commands"] == 3 and int(m.snapshot()["hist"][:-1].sum()) == 1


_METRICS_OOM_SCRIPT = r"""
import resource, sys
import numpy as np
import matchcore as mc
from matchcore._engine import Engine
from matchcore.io.metrics import EngineMetrics


def make():
    if sys.argv[1] == "engine":
        e = Engine()
        e.add_symbol(0)
        return e
    return mc.OrderBook()


n = 3_000_000
flow = np.zeros(n, dtype=mc.COMMAND_DTYPE)
flow["order_id"] = np.arange(1, n + 1)
flow["qty"] = 1
flow["price"] = 1000 + np.arange(n) % 50
flow["side"][:2000:2] = 1                 # crossing pairs first: fills in the applied part
flow["price"][:2000] = 1000
m = EngineMetrics(make(), sample_every=3)
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + int(sys.argv[2]) * 2**20, resource.RLIM_INFINITY))
try:
    m.process(flow)
    print("returned")
    sys.exit(0)
except MemoryError as ex:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
    err = ex
msg = str(err)
done = err.applied
assert msg.startswith(f"matchcore: out of memory after {done} of {n} commands"), msg
lost = "which are lost" in msg or "are not counted" in msg
ref = EngineMetrics(make(), sample_every=3)
ref.process(flow[:done])
got, want = m.snapshot(), ref.snapshot()
# the commands, their service times and the open-order gauge whether or not the events' copy
# found memory (and memory to count them); the events too when it did
for key in ("commands", "open_orders") + (() if lost else ("events", "rejects", "fills")):
    assert got[key] == want[key], (key, got[key], want[key])
if lost:
    assert got["events"] == got["rejects"] == got["fills"] == {}, got
else:
    assert got["fills"]["0"][0] == 1000, got
assert got["commands"] == done
# the timed commands of the applied part, one in 3
assert int(got["hist"][:-1].sum()) == int(want["hist"][:-1].sum()) == -(-done // 3)
print("lost" if lost else "counted", done)
"""


@pytest.mark.parametrize("what", ["book", "engine"])
def test_engine_metrics_process_out_of_memory_counts_the_applied_part(what):
    # A batch that ran out of memory part way left its applied commands and their events
    # (fills, volume) uncounted: the scrape said no command had run, while the book held them.
    # Where the memory runs out decides whether any is left for the copy of the applied part's
    # events (lost otherwise, as documented): each run checks the outcome it reports, and
    # address-space limits are tried until one leaves room for the events, which must then
    # be counted.
    outcomes = []
    for room_mib in (180, 120, 240, 90, 150):
        r = subprocess.run([sys.executable, "-c", _METRICS_OOM_SCRIPT, what, str(room_mib)],
                           capture_output=True, text=True, env=dict(os.environ), timeout=300)
        assert r.returncode == 0, r.stderr
        word, done = r.stdout.split()
        assert word in ("counted", "lost") and 0 < int(done) < 3_000_000, r.stdout
        outcomes.append(word)
        if word == "counted":
            break
    assert outcomes[-1] == "counted", outcomes


@pytest.mark.parametrize("final", [False, True])
def test_replay_metrics_update_after_the_final_one_refused_done_stays(day, final):
    # a non-final update after the final one set replay_done back to 0: a dashboard saw a
    # finished replay running again
    m = ReplayMetrics()
    r = itch.replay_file(day, on_chunk=m.update)
    m.update(r, final=True)
    before = m.snapshot()
    with pytest.raises(ValueError, match="after its final update"):
        m.update(r, final=final)
    assert m.snapshot() == before and before["done"] == 1
    got = {(x.name, frozenset(x.labels.items())): x.value
           for fam in m.registry.collect() for x in fam.samples}
    assert val(got, "matchcore_replay_done") == 1
    # another replay starts the counts again, as documented
    r2 = itch.Replayer()
    m.update(r2)
    assert m.snapshot()["done"] == 0 and m.snapshot()["messages"] == 0


def test_cli_replay_metrics_port_taken_error_line_leads_with_the_option(day, capsys):
    # "error: [Errno 98] --metrics-port N: cannot serve ...: Address already in use": the errno
    # went first, and the error's own words were not those of every other error line
    import errno
    from matchcore.__main__ import main

    with serve_metrics(0) as srv:
        assert main(["replay", str(day), "--metrics-port", str(srv.port)]) == 1
        with pytest.raises(OSError) as e:
            serve_metrics(srv.port)
    url = f"http://127.0.0.1:{srv.port}/metrics"
    why = f"[Errno {errno.EADDRINUSE}] {os.strerror(errno.EADDRINUSE)}"
    assert capsys.readouterr().err == (f"matchcore replay: error: --metrics-port {srv.port}: "
                                       f"cannot serve metrics at {url}: {why}\n")
    assert str(e.value) == f"cannot serve metrics at {url}: {why}"
    assert e.value.errno == errno.EADDRINUSE


def test_engine_metrics_observe_reads_the_symbol_names_once_not_per_symbol():
    # every observe() labelled each symbol with fills through engine.symbols, a new dict of
    # all symbols each time: O(symbols**2) per call, 1.5 s for an empty batch at 3,000
    # symbols with fills. The labels are read once per call.
    class CountingEngine(mc.Engine):
        reads = 0

        @property
        def symbols(self):
            CountingEngine.reads += 1
            return super().symbols

    n = 50
    eng = CountingEngine()
    for s in range(1, n + 1):
        eng.add_symbol(s, f"S{s}")
    m = EngineMetrics(eng)
    cmds = np.zeros(2 * n, mc.COMMAND_DTYPE)
    cmds["kind"] = int(mc.CommandKind.SUBMIT)
    cmds["order_id"] = np.arange(1, 2 * n + 1)
    cmds["symbol"] = np.repeat(np.arange(1, n + 1), 2)
    cmds["side"] = np.tile([0, 1], n)
    cmds["price"] = 100
    cmds["qty"] = 1
    m.process(cmds)
    assert m.snapshot()["fills"] == {f"S{s}": (1, 1) for s in range(1, n + 1)}
    CountingEngine.reads = 0
    m.observe(np.zeros(0, mc.EVENT_DTYPE))
    assert CountingEngine.reads <= 1
    assert m.snapshot()["fills"] == {f"S{s}": (1, 1) for s in range(1, n + 1)}


@pytest.mark.parametrize("feed_stats", [{"gaps": []}, 5])
def test_replay_metrics_update_feed_stats_not_receiver_stats_refused_naming_it(day, feed_stats):
    # "'dict' object has no attribute 'gaps'" named neither update() nor feed_stats
    m = ReplayMetrics()
    r = itch.replay_file(day)
    with pytest.raises(TypeError) as exc:
        m.update(r, feed_stats=feed_stats)
    assert str(exc.value) == (f"ReplayMetrics.update() needs feed_stats as a MoldUDP64 "
                              f"ReceiverStats or None, got {type(feed_stats).__name__}")
    assert m.snapshot() is None


def test_engine_metrics_process_out_of_memory_events_lost_counts_commands_not_events(monkeypatch):
    # as the README says: when no memory was left for the applied part's events, its commands
    # and the open-order gauge are counted, its events are not
    import matchcore._timing as timing

    book = mc.OrderBook()
    cmds = np.zeros(10, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = np.arange(1, 11)
    cmds["qty"] = 1
    cmds["price"] = 1000 + np.arange(10)
    real = timing.process_histogram

    def runs_out(target, arr, *args):
        real(target, arr[:4], *args)
        exc = MemoryError("matchcore: out of memory after 4 of 10 commands (applied; no memory "
                          "was left for their events, which are lost)")
        exc.applied = 4
        raise exc

    monkeypatch.setattr(timing, "process_histogram", runs_out)
    m = EngineMetrics(book)
    with pytest.raises(MemoryError):
        m.process(cmds)
    got = m.snapshot()
    assert got["commands"] == 4 and got["open_orders"] == len(book) == 4
    assert got["events"] == {} and got["fills"] == {}


def test_replay_metrics_unknown_refs_total_never_decreases_when_a_locate_is_renamed():
    # References to a locate before its first order are unknown only if the locate is kept,
    # which its name at that first order decides: stats["unknown_refs"] counts them while the
    # name selects it, and a rename drops them again. Exported as a counter, that count went
    # down between two scrapes (2 -> 0), which Prometheus reads as a restart.
    import struct

    from matchcore.itch.layouts import LAYOUTS

    def msg(t, body, locate=2, ts=1):
        m = struct.pack(">cHH", t, locate, 0) + ts.to_bytes(6, "big") + body
        return len(m).to_bytes(2, "big") + m

    def directory(name):
        return msg(b"R", name.ljust(8) + bytes(LAYOUTS["R"].length - 19))

    def scrape_now(m):
        text = prom.generate_latest(m.registry).decode()
        return {(x.name, frozenset(x.labels.items())): x.value
                for fam in text_string_to_metric_families(text) for x in fam.samples}

    m = ReplayMetrics()
    r = itch.Replayer(["AAPL"])
    r.feed(directory(b"AAPL") + msg(b"D", struct.pack(">Q", 7)) + msg(b"D", struct.pack(">Q", 8)))
    m.update(r)
    before = val(scrape_now(m), "matchcore_unknown_refs_total")
    r.feed(directory(b"MSFT"))                  # renamed: no longer selected
    m.update(r)
    after = val(scrape_now(m), "matchcore_unknown_refs_total")
    assert after >= before, (before, after)
    # the references not yet decided are exported beside the counter, as a gauge that may fall
    assert val(scrape_now(m), "matchcore_unknown_refs_undecided") == 0
    r.feed(directory(b"AAPL"))
    m.update(r)
    got = scrape_now(m)
    assert val(got, "matchcore_unknown_refs_undecided") == 2
    assert val(got, "matchcore_unknown_refs_total") == after
    # once the stream has ended nothing is undecided: the counter takes them, the gauge is 0
    r.finish()
    m.update(r, final=True)
    got = scrape_now(m)
    assert val(got, "matchcore_unknown_refs_total") == r.stats["unknown_refs"] == 2
    assert val(got, "matchcore_unknown_refs_undecided") == 0
