"""EngineMetrics exports its labelled counters from its creation: every event kind, every reject
reason and the fills and volume of every symbol known then, at 0 until counted (a Prometheus
rate() over a series that appears mid-run misses its first increments), as ReplayMetrics does;
snapshot() keeps the nonzero counts only."""
from __future__ import annotations

import numpy as np
import pytest

import matchcore as mc

prom = pytest.importorskip("prometheus_client",
                           reason="prometheus_client not installed: pip install 'matchcore[metrics]'")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from matchcore.io.metrics import EngineMetrics  # noqa: E402


def exposition(m) -> dict:
    """{(sample name, frozenset(labels)): value} of what ``m``'s registry exports."""
    text = prom.generate_latest(m.registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def series(samples, name, label) -> dict:
    """{label value: sample value} of the samples ``name`` labelled ``label``."""
    return {dict(labels)[label]: v for (n, labels), v in samples.items() if n == name}


KINDS = {k.name.lower() for k in mc.EventKind}
REASONS = {r.name.lower() for r in mc.Reason}


def test_engine_metrics_every_kind_reason_and_known_symbol_exported_at_zero_from_creation():
    eng = mc.Engine()
    eng.add_symbol(1, "AAA")
    eng.add_symbol(2)                       # unnamed: labelled by its id
    m = EngineMetrics(eng)
    got = exposition(m)
    assert series(got, "matchcore_events_total", "kind") == dict.fromkeys(KINDS, 0)
    assert series(got, "matchcore_rejects_total", "reason") == dict.fromkeys(REASONS, 0)
    assert series(got, "matchcore_fills_total", "symbol") == {"AAA": 0, "2": 0}
    assert series(got, "matchcore_volume_lots_total", "symbol") == {"AAA": 0, "2": 0}
    snap = m.snapshot()
    assert snap["events"] == snap["rejects"] == snap["fills"] == {}


def test_engine_metrics_zero_series_stay_beside_counted_ones_snapshot_nonzero_only():
    eng = mc.Engine()
    eng.add_symbol(1, "AAA")
    eng.add_symbol(2, "BBB")
    m = EngineMetrics(eng)
    cmds = np.zeros(3, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = [1, 2, 3]
    cmds["symbol"] = 1
    cmds["side"] = [mc.Side.SELL, mc.Side.BUY, mc.Side.BUY]
    cmds["price"] = 100
    cmds["qty"] = [5, 5, 0]                 # a fill on AAA, then an INVALID_QTY reject
    events = m.process(cmds)
    got = exposition(m)
    rejects = series(got, "matchcore_rejects_total", "reason")
    assert set(rejects) == REASONS
    assert rejects["invalid_qty"] == 1
    assert sum(rejects.values()) == 1
    kinds = series(got, "matchcore_events_total", "kind")
    assert set(kinds) == KINDS
    assert sum(kinds.values()) == len(events)
    assert series(got, "matchcore_fills_total", "symbol") == {"AAA": 1, "BBB": 0}
    assert series(got, "matchcore_volume_lots_total", "symbol") == {"AAA": 5, "BBB": 0}
    snap = m.snapshot()
    assert snap["rejects"] == {"invalid_qty": 1}
    assert snap["fills"] == {"AAA": (1, 5)}
    assert 0 not in snap["events"].values()


def test_engine_metrics_symbols_given_exported_at_zero_later_ones_with_their_first_fill():
    # a book's symbols are known when symbols= names them; an engine's symbol added after the
    # metrics were made appears with its first fill
    book = EngineMetrics(mc.OrderBook(), symbols={7: "X", 8: None})
    assert series(exposition(book), "matchcore_fills_total", "symbol") == {"X": 0, "8": 0}
    assert series(exposition(EngineMetrics(mc.OrderBook())),
                  "matchcore_fills_total", "symbol") == {}
    eng = mc.Engine()
    eng.add_symbol(1, "AAA")
    m = EngineMetrics(eng, symbols={1: "A1"})
    eng.add_symbol(2, "BBB")
    assert series(exposition(m), "matchcore_fills_total", "symbol") == {"A1": 0}
    ev = np.zeros(1, dtype=mc.EVENT_DTYPE)
    ev["kind"] = mc.EventKind.FILL
    ev["symbol"] = 2
    ev["qty"] = 4
    m.observe(ev)
    assert series(exposition(m), "matchcore_volume_lots_total", "symbol") == {"A1": 0, "BBB": 4}


@pytest.mark.parametrize("what", ["engine", "book"])
def test_engine_metrics_open_orders_gauge_from_creation_is_the_targets_not_zero(what):
    # the gauge read 0 until the first process()/observe(): metrics put around an engine that
    # already holds orders (a recovered engine, a seeded book) said it held none
    if what == "engine":
        target = mc.Engine()
        target.add_symbol(1)
        target.add_symbol(2)
        for oid in range(1, 6):
            target.submit(1 + oid % 2, oid, 0, 100 - oid, 1)
    else:
        target = mc.OrderBook()
        for oid in range(1, 6):
            target.submit(oid, 1, 100 + oid, 1)
    m = EngineMetrics(target)
    assert m.snapshot()["open_orders"] == len(target) == 5
    assert exposition(m)[("matchcore_open_orders", frozenset())] == 5
    assert m.snapshot()["commands"] == 0 and m.snapshot()["events"] == {}
