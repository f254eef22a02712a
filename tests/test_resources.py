"""Long use leaks nothing: books, engines, journals, replays and the metrics server give back
their memory, file descriptors, threads and handles, also on error paths.

A simulator runs for hours and makes and drops many books and engines; each cycle here uses
the real components. The default run does a few hundred cycles per resource (a few seconds);
MATCHCORE_SOAK=1 (or ``-m soak``) runs the long versions, which measure resident memory over
hundreds of thousands of cycles after a warm-up (a leak grows linearly, an allocator's cache
does not).
"""
from __future__ import annotations

import gc
import gzip
import os
import threading

import numpy as np
import pytest

import matchcore as mc
import matchcore.itch as itch
from matchcore import _handles
from matchcore.durability.errors import JournalError

SOAK = os.environ.get("MATCHCORE_SOAK") == "1"
LINUX = os.path.isdir("/proc/self/fd")
needs_proc = pytest.mark.skipif(not LINUX, reason="counts descriptors in /proc/self/fd (Linux)")


def _fds() -> set:
    """This process's open descriptors, each with what it is open on. Compared as "nothing
    new is left" (``not _fds() - before``): a descriptor that something else (an earlier
    test's thread winding down, the collector freeing its file) closes meanwhile is no leak."""
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds.add((int(fd), os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:         # the listing's own descriptor, closed by now
            pass
    return fds


def _tasks() -> set:
    return set(os.listdir("/proc/self/task"))


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _resources():
    gc.collect()
    return {"fds": _fds(), "threads": set(threading.enumerate()), "tasks": _tasks(),
            "handles": _handles.live_handles()}


def _cycles_leave_nothing(fn, n):
    fn(0)                   # first use: lazy imports, caches
    before = _resources()
    for i in range(n):
        fn(i)
    after = _resources()
    # what the cycles left: threads, tasks or descriptors that were not there before (one
    # of an earlier test ending meanwhile took a count down and failed a comparison of counts)
    assert {k: after[k] - before[k] for k in ("fds", "threads", "tasks")} == \
        {"fds": set(), "threads": set(), "tasks": set()}
    assert after["handles"] == before["handles"]


@pytest.fixture(scope="module")
def itch_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("itch")
    day = itch.generate(str(d / "day.itch"), messages=3000, symbols=2)
    data = open(day, "rb").read()
    gz = d / "day.itch.gz"
    with gzip.open(gz, "wb") as f:
        f.write(data)
    packed = gz.read_bytes()
    cut = d / "cut.itch.gz"
    cut.write_bytes(packed[:-40])
    damaged = bytearray(packed)
    damaged[200:260] = b"\xff" * 60
    bad = d / "bad.itch.gz"
    bad.write_bytes(bytes(damaged))
    trunc = d / "trunc.itch"
    trunc.write_bytes(data[:-7])
    return {"plain": day, "gz": str(gz), "cut": str(cut), "bad": str(bad),
            "trunc": str(trunc), "missing": str(d / "missing.itch")}


@needs_proc
def test_journal_engine_closed_but_kept_holds_no_descriptor(tmp_path):
    # a finished session kept in a list must not pin a descriptor per journal until it dies
    before = _fds()
    kept = []
    for i in range(20):
        eng = mc.Engine(journal=str(tmp_path / f"s{i}"), fsync="batch")
        eng.add_symbol(1, "AAPL")
        eng.submit(1, 1, mc.Side.BUY, 100, 5)
        eng.close()
        kept.append(eng)
    assert not _fds() - before
    eng.close()                                  # a second close stays harmless
    with pytest.raises(JournalError):
        eng.submit(1, 2, mc.Side.BUY, 100, 5)
    del kept, eng
    assert not _fds() - before


@needs_proc
def test_journal_engine_open_snapshot_recover_close_cycles_leave_nothing(tmp_path):
    made = iter(range(10**6))

    def cycle(i):
        d = str(tmp_path / f"j{next(made)}")
        eng = mc.Engine(journal=d, fsync="batch")
        eng.add_symbol(1, "AAPL")
        eng.submit(1, 1, mc.Side.SELL, 100, 5)
        eng.submit(1, 2, mc.Side.BUY, 100, 3)
        eng.snapshot()
        eng.close()
        again = mc.Engine.recover(d)
        assert again.get(1) == (1, mc.Side.SELL, 100, 2)
        again.close()

    _cycles_leave_nothing(cycle, 30)


@needs_proc
def test_journal_engine_refused_open_leaves_nothing(tmp_path):
    held = str(tmp_path / "held")
    holder = mc.Engine(journal=held)
    calls = [
        lambda i: mc.Engine(journal=held),                       # LOCK held
        lambda i: mc.Engine.recover(held),                       # LOCK held
        lambda i: mc.Engine(journal=str(tmp_path / "o"), fsync="sometimes"),
        lambda i: mc.Engine(journal=str(tmp_path / "o"), segment_bytes=10),
        lambda i: mc.Engine.recover(str(tmp_path / "none")),
    ]
    for call in calls:
        def cycle(i, call=call):
            with pytest.raises((JournalError, ValueError, TypeError)):
                call(i)
        _cycles_leave_nothing(cycle, 20)
    holder.close()


@needs_proc
def test_journal_lock_flock_failing_otherwise_than_held_leaves_no_descriptor(tmp_path,
                                                                              monkeypatch):
    # flock failing with anything but "already locked" (EIO, ENOLCK on a network file system)
    # raised with the LOCK's descriptor left open, one more for every attempt
    import errno
    import fcntl

    def flock(fd, op):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    made = str(tmp_path / "made")
    mc.Engine(journal=made).close()
    monkeypatch.setattr(fcntl, "flock", flock)
    new = str(tmp_path / "new")
    before = _fds()
    for call in (lambda: mc.Engine(journal=new), lambda: mc.Engine.recover(made)):
        for _ in range(3):
            with pytest.raises(OSError) as info:
                call()
            assert info.value.errno == errno.EIO
            del info
    assert not _fds() - before


@needs_proc
@pytest.mark.parametrize("kwargs", [{"drop": [10**6]}, {"first_seq": 2**64 - 2},
                                    {"max_packet": 30}])
def test_moldudp_publisher_refused_settings_hold_no_descriptor_while_error_kept(itch_files,
                                                                                 kwargs):
    # a setting refused after the file was mapped left the map (and its descriptor) open
    # for as long as the error, whose traceback holds the half-made publisher, was kept
    from matchcore.moldudp import MoldUDP64Publisher

    before = _fds()
    kept = []
    for i in range(10):
        try:
            MoldUDP64Publisher(itch_files["plain"], 9, **kwargs)
        except ValueError as e:
            kept.append(e)
    assert len(kept) == 10 and not _fds() - before


@needs_proc
@pytest.mark.parametrize("kind", ["plain", "gz", "cut", "trunc", "bad", "missing"])
def test_itch_replay_and_decode_cycles_leave_nothing(itch_files, kind):
    path = itch_files[kind]

    def cycle(i):
        for fn in (itch.replay_file, itch.decode):
            try:
                fn(path)
            except (ValueError, OSError):
                assert kind in ("bad", "missing")

    _cycles_leave_nothing(cycle, 20)


@needs_proc
def test_metrics_server_start_stop_cycles_leave_nothing(itch_files):
    pytest.importorskip("prometheus_client",
                        reason="prometheus_client not installed (pip install 'matchcore[metrics]')")
    import urllib.request

    from matchcore.io.metrics import ReplayMetrics, serve_metrics

    def cycle(i):
        m = ReplayMetrics()
        with serve_metrics(0, registry=m.registry) as srv:
            r = itch.replay_file(itch_files["plain"], on_chunk=m.update)
            m.update(r, final=True)
            with urllib.request.urlopen(srv.url, timeout=10) as resp:
                assert b"matchcore_replay_done 1.0" in resp.read()

    _cycles_leave_nothing(cycle, 4)       # each close waits for the server's 0.5 s poll


def _book_cycle(cmds, out):
    b = mc.OrderBook(capacity=64)
    b.submit(1_000_001, mc.Side.SELL, 110, 5)
    b.submit(1_000_002, mc.Side.BUY, 90, 5, owner=3)
    b.process(cmds)
    b.process(cmds[:0], out=out)
    b.events()
    b.events(owner=3)
    s = b.snapshot()
    c = mc.OrderBook.from_snapshot(s)
    c.restore(s)
    d = c.copy()
    b.depth_orders(5)
    b.modify(1_000_001, 3)
    b.cancel(1_000_002)
    b.clear()
    d.clear()


def _engine_cycle(cmds, out):
    e = mc.Engine()
    e.add_symbol(1, "AAPL")
    e.add_symbol(2, "MSFT", tick=1)
    e.process(cmds)
    e.process(cmds[:0], out=out)
    e.events(owner=3)
    e.book(1).depth(3)
    e.close()


def _commands(n=64):
    rng = np.random.default_rng(1)
    cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = np.arange(1, n + 1)
    cmds["symbol"] = 1 + np.arange(n) % 2
    cmds["side"] = rng.integers(0, 2, n)
    cmds["price"] = rng.integers(95, 106, n)
    cmds["qty"] = rng.integers(1, 20, n)
    cmds["kind"][::7] = mc.CommandKind.CANCEL
    return cmds


@pytest.mark.parametrize("cycle", [_book_cycle, _engine_cycle], ids=["book", "engine"])
def test_book_and_engine_cycles_release_every_handle(cycle):
    cmds, out = _commands(), np.empty(4096, dtype=mc.EVENT_DTYPE)
    gc.collect()            # books earlier tests left in reference cycles are not counted
    before = _handles.live_handles()
    for _ in range(500):
        cycle(cmds, out)
    gc.collect()
    assert _handles.live_handles() == before


@pytest.mark.soak
@needs_proc
@pytest.mark.parametrize("cycle", [_book_cycle, _engine_cycle], ids=["book", "engine"])
def test_soak_book_and_engine_cycles_rss_plateaus(cycle, request):
    if not SOAK and "soak" not in (request.config.option.markexpr or ""):
        pytest.skip("long soak runs are opt-in: MATCHCORE_SOAK=1 or -m soak")
    cmds, out = _commands(), np.empty(4096, dtype=mc.EVENT_DTYPE)
    for _ in range(50_000):                      # warm-up: allocator caches fill
        cycle(cmds, out)
    gc.collect()
    start = _rss_kib()
    n = 200_000
    for _ in range(n):
        cycle(cmds, out)
    gc.collect()
    grown = _rss_kib() - start
    # a leak of even 16 bytes per cycle would show as 3 MiB
    assert grown * 1024 / n < 16, f"RSS grew {grown} KiB over {n} cycles"


@needs_proc
def test_nats_publisher_and_consumer_cycles_leave_nothing(itch_files):
    pytest.importorskip("nats", reason="nats-py not installed (pip install 'matchcore[nats]')")
    from matchcore.io.nats import (NatsPublisher, NatsServer, ReplayPublisher, consume,
                                   nats_server_path)

    try:
        nats_server_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with NatsServer() as srv:
        def cycle(i):
            with NatsPublisher(srv.url, stream="LEAK", prefix="leak") as pub:
                itch.replay_file(itch_files["plain"], record_l2=True,
                                 on_chunk=ReplayPublisher(pub))
            consume(srv.url, stream="LEAK", prefix="leak")
            with pytest.raises(ConnectionError):       # nothing listens on port 1
                NatsPublisher("nats://127.0.0.1:1", connect_timeout=0.5)

        _cycles_leave_nothing(cycle, 3)
