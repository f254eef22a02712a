"""The trade journal's fsync policy follows the engine's: fsynced at sync(), snapshot(), segment
roll and close() under "always" and "batch", and under "never" only at sync() and snapshot(),
as the command journal; the README and the writer's docstring say so."""
from __future__ import annotations

from pathlib import Path

import pytest

import matchcore as mc
from matchcore.durability import JournalWriter

README = Path(__file__).resolve().parents[1] / "README.md"


def _crossing_session(d, fsync):
    eng = mc.Engine(journal=d, fsync=fsync, segment_bytes=8256)
    eng.add_symbol(1)
    for i in range(200):                        # 200 fills: the trade journal rolls twice
        eng.submit(1, 2 * i + 1, mc.Side.BUY, 100, 5)
        eng.submit(1, 2 * i + 2, mc.Side.SELL, 100, 5)
    return eng


@pytest.mark.parametrize("fsync", ["always", "batch"])
def test_trade_journal_fsynced_at_roll_and_close(tmp_path, fsync):
    eng = _crossing_session(tmp_path / "j", fsync)
    tj = eng.trade_journal
    assert tj.policy == "on_sync" and tj.segments_created >= 3
    rolled = tj.fsyncs
    assert rolled >= tj.segments_created - 1
    eng.close()
    assert tj.fsyncs == rolled + 1


def test_trade_journal_under_never_fsynced_only_at_sync_and_snapshot(tmp_path):
    eng = _crossing_session(tmp_path / "j", "never")
    tj = eng.trade_journal
    assert tj.policy == "never" and tj.segments_created >= 3 and tj.fsyncs == 0
    eng.sync()
    synced = tj.fsyncs
    assert synced >= 1
    eng.submit(1, 1001, mc.Side.BUY, 100, 5)
    eng.submit(1, 1002, mc.Side.SELL, 100, 5)  # a fill after the sync
    eng.snapshot()
    assert tj.fsyncs > synced
    after_snapshot = tj.fsyncs
    eng.close()
    assert tj.fsyncs == after_snapshot


def test_trade_journal_policy_documented_with_never():
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert ("fsynced only at `sync()`, `snapshot()`, segment roll and `close()` (under "
            "`\"never\"`, as the command journal, only at `sync()` and `snapshot()`)") in text
    doc = " ".join((JournalWriter.__doc__ or "").split())
    assert "the trade capture's policy, but under an engine's ``\"never\"`` its trade" in doc, doc
