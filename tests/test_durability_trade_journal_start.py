"""A trade journal whose first segments are gone (deleted, lost) while the command journal still
holds the commands those fills were of: recovery says how many fills of the commands it replays
the trade journal lacks before its first segment, rather than "no fills to rewrite"."""
from __future__ import annotations

import os

import pytest

import matchcore as mc
from matchcore.durability import read_trades
from matchcore.durability.journal import KIND_COMMANDS, KIND_TRADES, segment_files
from durability_checks import journaled


def _fills(eng, first_id, pairs):
    # every second submit fills the one before it: one fill record each pair
    for k in range(pairs):
        eng.submit(1, first_id + 2 * k, mc.Side.BUY, 100, 5)
        eng.submit(1, first_id + 2 * k + 1, mc.Side.SELL, 100, 5)


def _snapshot_between_fills(tmp_path):
    # 20 fills, a snapshot (its trade seq 20), 180 fills, over several small trade segments
    eng, d = journaled(tmp_path, segment_bytes=8256)
    eng.add_symbol(1)
    _fills(eng, 1, 20)
    eng.snapshot()
    _fills(eng, 1000, 180)
    eng.close()
    return d


@pytest.mark.parametrize("snapshot", [True, False])
def test_recovery_reports_fills_lost_before_the_trade_journals_first_segment(tmp_path,
                                                                              snapshot):
    eng, d = journaled(tmp_path, segment_bytes=8256)
    eng.add_symbol(1)
    _fills(eng, 1, 20)
    before = 0
    if snapshot:
        eng.snapshot()                          # its trade seq: 20
        before = 20
    _fills(eng, 1000, 180)
    live = eng.state_hash()
    eng.close()
    trades = segment_files(d, KIND_TRADES)
    assert len(trades) >= 2 and trades[1][0] - 1 > before
    os.unlink(trades[0][1])
    lost = trades[1][0] - 1 - before             # fills of commands the replay goes over
    for readonly in (True, False):
        rec = mc.Engine.recover(d, readonly=readonly)
        rep = rec.recovery_report
        assert rec.state_hash() == live
        assert rep.trades_lost_at_start == lost, rep.summary()
        assert (f"WARNING: {lost} fill record(s) of commands the journal replays" in
                rep.summary()), rep.summary()
        if not readonly:
            rec.close()
    assert read_trades(d)["seq"][0] == trades[1][0]


def test_recovery_of_a_whole_or_restored_trade_journal_reports_none_lost(tmp_path):
    d = _snapshot_between_fills(tmp_path)
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert rep.trades_lost_at_start == 0 and "WARNING" not in rep.summary()
    # a backup's snapshot restored alone: its trade journal starts after the snapshot's trade
    # seq, which holds the fills before it (reported lost once, as trades_missing)
    for _, f in segment_files(d, KIND_COMMANDS) + segment_files(d, KIND_TRADES):
        os.unlink(f)
    first = mc.Engine.recover(d)
    _fills(first, 5000, 3)
    first.close()
    again = mc.Engine.recover(d, readonly=True).recovery_report
    assert again.trades_lost_at_start == 0 and "WARNING" not in again.summary(), \
        again.summary()


def test_inspect_reports_the_fills_lost_before_the_trade_journals_first_segment(tmp_path,
                                                                                  capsys):
    from matchcore.__main__ import main
    from matchcore.durability import inspect
    d = _snapshot_between_fills(tmp_path)
    assert inspect(d)["journals"]["trades"]["fills_lost_at_start"] == 0
    trades = segment_files(d, KIND_TRADES)
    os.unlink(trades[0][1])
    lost = mc.Engine.recover(d, readonly=True).recovery_report.trades_lost_at_start
    assert lost == trades[1][0] - 1 - 20
    assert inspect(d)["journals"]["trades"]["fills_lost_at_start"] == lost
    assert main(["journal", "inspect", str(d)]) == 0
    out = capsys.readouterr().out
    assert (f"recovery cannot write again {lost} fill record(s) of commands it replays, "
            f"missing before {os.path.basename(trades[1][1])}") in out, out
