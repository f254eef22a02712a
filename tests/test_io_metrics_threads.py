"""EngineMetrics counted from several threads at once: every batch counted once, none lost,
and no call fails on another's counting."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import matchcore as mc

pytest.importorskip("prometheus_client",
                    reason="prometheus_client not installed: pip install 'matchcore[metrics]'")

from matchcore.io.metrics import EngineMetrics  # noqa: E402


def fills_batch(symbols) -> np.ndarray:
    ev = np.zeros(len(symbols), dtype=mc.EVENT_DTYPE)
    ev["kind"] = mc.EventKind.FILL
    ev["symbol"] = symbols
    ev["qty"] = 2
    return ev


def test_engine_metrics_observe_from_several_threads_counts_every_batch_once():
    # Each observe() added its counts to shared totals and then rebuilt the per-symbol view by
    # iterating them: another thread's observe() adding a symbol meanwhile raised
    # "RuntimeError: dictionary changed size during iteration" (after that call's counts were
    # in, so a retry counted them twice), and read-add-write of the totals lost counts.
    m = EngineMetrics(mc.OrderBook())
    threads, per_thread, batches, width = 4, 60, [], 64
    for t in range(threads):
        # every batch brings symbols not seen before
        batches.append([fills_batch(t * 10**6 + i * width + np.arange(width))
                        for i in range(per_thread)])
    errors = []
    start = threading.Barrier(threads)

    def work(mine):
        try:
            start.wait()
            for ev in mine:
                m.observe(ev)
        except BaseException as exc:       # noqa: BLE001 (reported by the assertion below)
            errors.append(repr(exc))

    was = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)     # switch threads as often as the interpreter can
    try:
        ts = [threading.Thread(target=work, args=(b,)) for b in batches]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        sys.setswitchinterval(was)
    assert errors == []
    snap = m.snapshot()
    total = threads * per_thread * width
    assert snap["events"] == {"fill": total}
    assert len(snap["fills"]) == total
    assert set(snap["fills"].values()) == {(1, 2)}


def test_replay_metrics_update_refused_busy_keeps_the_symbol_names_to_read(tmp_path):
    # An update found books it had no labels for (their names not yet read) and noted that
    # before reading the names: when the replayer was busy feeding in another thread by then,
    # the update raised BusyError with the note kept and no names, and every later update of
    # that replay took the names as read: its symbols were labelled by locate number.
    import matchcore.itch as itch
    from matchcore import BusyError
    from matchcore.io.metrics import ReplayMetrics

    path = tmp_path / "day.itch"
    itch.generate(path, messages=400_000, symbols=4, seed=11)
    data = memoryview(path.read_bytes())

    class FedMeanwhile(itch.Replayer):
        # a feed from another thread starts as the names are read, and runs on
        rest = None
        thread = None

        @property
        def symbols(self):
            rest, self.rest = self.rest, None
            if rest is not None:
                self.thread = threading.Thread(target=self.feed, args=(rest,))
                self.thread.start()
                while self.thread.is_alive():
                    try:
                        itch.Replayer.stats.__get__(self)
                    except BusyError:
                        break
            return itch.Replayer.symbols.__get__(self)

    r = FedMeanwhile()
    m = ReplayMetrics()
    done = r.feed(data[:200])
    m.update(r)
    assert r.stats["books"] == 0
    done += r.feed(data[done:300_000])
    assert r.stats["books"] == 4
    r.rest = data[done:]
    with pytest.raises(BusyError):
        m.update(r)
    r.thread.join()
    r.finish()
    m.update(r, final=True)
    assert sorted(m.snapshot()["per_symbol"]) == sorted(r.symbols.values())


def test_engine_metrics_process_refusal_in_another_thread_names_it_not_a_read():
    # EngineMetrics.process() holds its Engine from the batch to its counting, with the hold
    # of a read in several steps: another thread's call was refused as if "a pickle, copy,
    # snapshot file or invariants check" were running, which sent its author looking for one.
    eng = mc.Engine()
    eng.add_symbol(1)
    m = EngineMetrics(eng)
    n = 1_000_000
    cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    rng = np.random.default_rng(5)
    cmds["order_id"] = np.arange(1, n + 1)
    cmds["symbol"] = 1
    cmds["side"] = rng.integers(0, 2, n)
    cmds["price"] = 1000 + rng.integers(-50, 50, n)
    cmds["qty"] = rng.integers(1, 9, n)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("events", m.process(cmds)))
    t.start()
    while not eng.busy:
        assert t.is_alive(), "the batch ended before the engine was seen busy"
    refusals = []
    for call in (lambda: eng.submit(1, 10**12, 0, 1000, 1), lambda: eng.book(1).best_bid(),
                 lambda: m.observe(np.zeros(0, dtype=mc.EVENT_DTYPE))):
        with pytest.raises(mc.BusyError) as exc:
            call()
        refusals.append(str(exc.value))
    t.join()
    assert len(box["events"]) > 0
    for msg in refusals:
        assert "EngineMetrics.process() is running on" in msg, msg
        assert "pickle" not in msg, msg
    assert eng.get(10**12) is None
    assert m.snapshot()["commands"] == n
