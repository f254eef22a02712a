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
