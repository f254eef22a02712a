"""A metrics snapshot is the caller's own: changing it does not change what is exported."""
from __future__ import annotations

import pytest

import matchcore as mc
import matchcore.itch as itch

prom = pytest.importorskip("prometheus_client",
                           reason="prometheus-client not installed (pip install -e '.[metrics]')")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from matchcore.io.metrics import EngineMetrics, ReplayMetrics  # noqa: E402


def _samples(registry) -> dict:
    text = prom.generate_latest(registry).decode()
    return {(x.name, tuple(sorted(x.labels.items()))): x.value
            for fam in text_string_to_metric_families(text) for x in fam.samples}


def test_engine_metrics_snapshot_nested_values_are_copies():
    book = mc.OrderBook()
    m = EngineMetrics(book, symbols={0: "SIM"})
    book.submit(1, mc.Side.SELL, 101, 5)
    book.submit(2, mc.Side.BUY, 101, 3)
    m.observe(book.events())
    before = _samples(m.registry)
    snap = m.snapshot()
    snap["fills"]["SIM"] = (99, 99)
    snap["events"].clear()
    with pytest.raises(ValueError):
        snap["hist"][:] = 7                  # read-only: it is the exported histogram
    assert _samples(m.registry) == before
    again = m.snapshot()
    assert again["fills"] == {"SIM": (1, 3)} and again["events"]


def test_replay_metrics_snapshot_nested_values_are_copies(tmp_path):
    day = tmp_path / "day.itch"
    itch.generate(day, messages=20_000, symbols=3, seed=11)
    m = ReplayMetrics()
    r = itch.replay_file(day, chunk_size=128 << 10, on_chunk=m.update)
    m.update(r, final=True)
    before = _samples(m.registry)
    snap = m.snapshot()
    assert snap["per_symbol"]
    snap["per_symbol"].clear()
    for v in snap.values():
        if isinstance(v, dict):
            v.clear()
    assert _samples(m.registry) == before
    assert m.snapshot()["per_symbol"]
