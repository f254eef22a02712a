"""EngineMetrics.observe() on an engine another thread holds: refused before anything is
counted, so that the call can be made again."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import matchcore as mc

prom = pytest.importorskip("prometheus_client",
                           reason="prometheus_client not installed: pip install 'matchcore[metrics]'")

from matchcore.io.metrics import EngineMetrics  # noqa: E402


def exported(m) -> bytes:
    return prom.generate_latest(m.registry)


def _bid_and_crossing_ask(symbol: int = 0) -> np.ndarray:
    """A bid of 5 at 100, then an ask of 2 at 100 that trades with it: 2 ACCEPTED, 1 FILL."""
    cmds = np.zeros(2, mc.COMMAND_DTYPE)
    cmds["symbol"] = symbol
    cmds["order_id"] = [1, 2]
    cmds["side"] = [0, 1]
    cmds["price"] = 100
    cmds["qty"] = [5, 2]
    return cmds


def counts(m) -> dict:
    """``m.snapshot()`` without its histogram array (compared apart)."""
    snap = m.snapshot()
    return {k: v for k, v in snap.items() if k != "hist"}


def test_engine_metrics_observe_busy_engine_refused_nothing_counted_retry_counts_once():
    # observe() added the batch's counts, then read the open-order gauge from the engine,
    # which another thread held: BusyError after the counts were in, and the caller's retry
    # counted the batch twice
    eng = mc.Engine()
    eng.add_symbol(1, "A")
    m = EngineMetrics(eng)
    eng.submit(1, 1, 0, 100, 5)
    eng.submit(1, 2, 1, 100, 2)
    events = eng.events()
    before, scrape = counts(m), exported(m)
    held, release = threading.Event(), threading.Event()

    def hold():
        with eng._holding():
            held.set()
            release.wait()

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(10)
        with pytest.raises(mc.BusyError):
            m.observe(events)
        assert counts(m) == before
        assert exported(m) == scrape
    finally:
        release.set()
        t.join()
    m.observe(events)
    snap = counts(m)
    assert snap["events"] == {"accepted": 2, "fill": 1}
    assert snap["fills"] == {"A": (1, 2)}
    assert snap["open_orders"] == 1
    # and the internal totals a later batch adds to hold this batch once
    m.observe(np.zeros(0, mc.EVENT_DTYPE))
    assert counts(m) == snap


def test_engine_metrics_process_engine_taken_after_the_batch_ran_counts_and_returns_it(
        monkeypatch):
    # process() applied the batch, then read the engine for the gauge: another thread's hold
    # taken in between (a pickle, a snapshot file) made it raise BusyError for a batch that
    # had run, its events neither returned nor counted. The engine is held from the batch to
    # its counting, so that other thread is the one refused, as with any call on a busy engine.
    import matchcore._timing as timing

    eng = mc.Engine()
    eng.add_symbol(1, "A")
    twin = mc.Engine()
    twin.add_symbol(1, "A")
    m = EngineMetrics(eng)
    cmds = _bid_and_crossing_ask(symbol=1)
    tried, release = threading.Event(), threading.Event()
    other = {}

    def take():
        try:
            with eng._holding():
                other["held"] = True
                tried.set()
                release.wait(10)
        except mc.BusyError:
            other["refused"] = True
            tried.set()

    real = timing.process_histogram

    def then_another_thread(*args, **kwargs):
        events = real(*args, **kwargs)
        t = threading.Thread(target=take)
        t.start()
        assert tried.wait(10)
        other["thread"] = t
        return events

    monkeypatch.setattr(timing, "process_histogram", then_another_thread)
    try:
        events = m.process(cmds)
    finally:
        release.set()
        if "thread" in other:
            other["thread"].join()
    assert other.get("refused") and not other.get("held")
    assert events.tobytes() == twin.process(cmds).tobytes()
    snap = counts(m)
    assert snap["events"] == {"accepted": 2, "fill": 1}
    assert snap["fills"] == {"A": (1, 2)}
    assert snap["commands"] == 2 and snap["open_orders"] == 1


def test_engine_metrics_process_book_taken_after_the_batch_ran_counts_and_returns_it(
        monkeypatch):
    # An OrderBook target, unlike an Engine, is not held from the batch to its counting: a
    # call from another thread starting in between (here an open-loop run that keeps the book
    # busy while it waits) made the open-order read raise BusyError after the batch had run
    # and its commands were counted. The events were lost to the caller, and a retry applied
    # and counted the batch twice. The batch is now counted and returned; the gauge keeps its
    # last reading, since the book cannot be read while the other call runs.
    import time

    import matchcore._timing as timing

    book = mc.OrderBook()
    twin = mc.OrderBook()
    m = EngineMetrics(book)
    cmds = _bid_and_crossing_ask()
    hold = np.zeros(2, mc.COMMAND_DTYPE)
    hold["order_id"] = [900, 901]
    hold["price"] = 10
    hold["qty"] = 1
    other = {}
    real = timing.process_histogram

    def then_another_thread(*args, **kwargs):
        events = real(*args, **kwargs)
        # the second command is due 0.4 s after the first: the loop waits with the book busy
        t = threading.Thread(target=lambda: timing.process_open_loop(
            book, hold, arrivals_ns=np.array([0, 4e8])))
        t.start()
        deadline = time.monotonic() + 10
        while not book.busy:
            assert t.is_alive() and time.monotonic() < deadline
            time.sleep(0)
        other["thread"] = t
        return events

    monkeypatch.setattr(timing, "process_histogram", then_another_thread)
    try:
        events = m.process(cmds)
        still_busy = book.busy
    finally:
        if "thread" in other:
            other["thread"].join()
    assert still_busy
    assert events.tobytes() == twin.process(cmds).tobytes()
    snap = counts(m)
    assert snap["events"] == {"accepted": 2, "fill": 1}
    assert snap["fills"] == {"0": (1, 2)}
    assert snap["commands"] == 2 and snap["open_orders"] == 0
    # the next call reads the gauge again, the batch counted once
    m.observe(np.zeros(0, mc.EVENT_DTYPE))
    snap = counts(m)
    assert snap["commands"] == 2 and snap["fills"] == {"0": (1, 2)}
    assert snap["open_orders"] == len(book) == 3


def test_engine_metrics_process_service_times_counted_with_their_commands(monkeypatch):
    # A batch's service times went into the exported histogram as the batch ran, its commands
    # and events only once it was counted: another thread's observe() in between (a book is
    # not held there) exported a view whose histogram held commands that commands_total did
    # not, service_time_seconds_count above commands_total with sample_every=1.
    import matchcore._timing as timing

    book = mc.OrderBook()
    m = EngineMetrics(book)
    cmds = _bid_and_crossing_ask()
    seen = {}
    real = timing.process_histogram

    def then_another_threads_observe(*args, **kwargs):
        events = real(*args, **kwargs)
        t = threading.Thread(target=m.observe, args=(np.zeros(0, mc.EVENT_DTYPE),))
        t.start()
        t.join()
        seen["view"] = m.snapshot()
        return events

    monkeypatch.setattr(timing, "process_histogram", then_another_threads_observe)
    m.process(cmds)
    view = seen["view"]
    assert (int(view["hist"][:-1].sum()), view["commands"], view["events"]) == (0, 0, {})
    snap = m.snapshot()
    assert (int(snap["hist"][:-1].sum()), snap["commands"]) == (2, 2)
    assert b"matchcore_service_time_seconds_count 2.0" in exported(m)
