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
