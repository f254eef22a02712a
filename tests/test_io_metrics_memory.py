"""``EngineMetrics`` when memory runs out while it counts a batch's events: its figures stay
those of whole batches, and ``process()``'s ``MemoryError`` still says what was applied."""
from __future__ import annotations

import numpy as np
import pytest

import matchcore as mc

pytest.importorskip("prometheus_client", reason="needs the metrics extra")
from matchcore.io.metrics import EngineMetrics  # noqa: E402


def _batch(n=40):
    # crossing pairs (fills), then a cancel of an unknown id (a reject), then resting orders
    cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = np.arange(1, n + 1)
    cmds["qty"] = 1
    cmds["price"] = 100 + np.arange(n) % 5
    cmds["side"][:10:2] = 1
    cmds["price"][:10] = 100
    cmds["kind"][10] = int(mc.CommandKind.CANCEL)
    cmds["order_id"][10] = 10**9
    return cmds


def _fail_second_bincount(monkeypatch):
    real, calls = np.bincount, []

    def bincount(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError
        return real(*a, **k)

    monkeypatch.setattr(np, "bincount", bincount)
    return calls


def test_engine_metrics_observe_out_of_memory_part_way_counts_nothing(monkeypatch):
    # the event kinds were counted and the fills then not: a scrape gave fill events with no
    # fills behind them
    book = mc.OrderBook()
    events = book.process(_batch())
    assert (events["kind"] == int(mc.EventKind.FILL)).any()
    m = EngineMetrics(book)
    before = m.snapshot()
    _fail_second_bincount(monkeypatch)
    with pytest.raises(MemoryError):
        m.observe(events)
    monkeypatch.undo()
    after = m.snapshot()
    for key in ("events", "rejects", "fills", "commands"):
        assert after[key] == before[key], key
    m.observe(events)       # counted whole once memory is there
    ref = EngineMetrics(mc.OrderBook())
    ref.observe(events)
    for key in ("events", "rejects", "fills"):
        assert m.snapshot()[key] == ref.snapshot()[key], key


def test_engine_metrics_process_out_of_memory_counting_says_what_was_applied(monkeypatch):
    # the batch was applied and its commands counted, then counting its events ran out of
    # memory: the MemoryError had no `applied` and no events, and the scrape still showed the
    # figures from before the batch (the commands it counted were not in it)
    cmds = _batch()
    m = EngineMetrics(mc.OrderBook())
    want = mc.OrderBook().process(cmds)
    calls = _fail_second_bincount(monkeypatch)
    with pytest.raises(MemoryError) as exc:
        m.process(cmds)
    monkeypatch.undo()
    assert len(calls) >= 2
    assert exc.value.applied == len(cmds)
    assert np.array_equal(exc.value.events, want)
    assert "not counted" in str(exc.value)
    got = m.snapshot()
    # the commands, their service times and the open-order gauge; none of the events, as when
    # the events are lost with the memory
    assert got["commands"] == len(cmds) and int(got["hist"][:-1].sum()) == len(cmds)
    assert got["open_orders"] == len(m.target) > 0
    assert got["events"] == got["rejects"] == got["fills"] == {}


def test_engine_metrics_process_out_of_memory_part_way_and_counting_says_not_counted(
        monkeypatch):
    # a batch that ran out of memory part way, whose events then could not be counted either:
    # the original error went on without `applied` (a MemoryError of the counting replaced it)
    import matchcore._timing as timing

    cmds = _batch()
    book = mc.OrderBook()
    m = EngineMetrics(book)
    real = timing.process_histogram

    def partial(target, arr, *a):
        events = real(target, arr[:25], *a)
        e = MemoryError(f"matchcore: out of memory after 25 of {len(arr)} commands")
        e.applied, e.events = 25, events
        raise e

    monkeypatch.setattr(timing, "process_histogram", partial)
    _fail_second_bincount(monkeypatch)
    with pytest.raises(MemoryError) as exc:
        m.process(cmds)
    monkeypatch.undo()
    assert exc.value.applied == 25 and len(exc.value.events) > 0
    assert str(exc.value) == (f"matchcore: out of memory after 25 of {len(cmds)} commands "
                              f"(their events are not counted: no memory was left to count "
                              f"them)")
    got = m.snapshot()
    assert got["commands"] == 25 and got["open_orders"] == len(book)
    assert got["events"] == got["rejects"] == got["fills"] == {}
