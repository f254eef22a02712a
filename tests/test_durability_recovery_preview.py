"""A read-only recovery (``Engine.recover(DIR, readonly=True)``, ``matchcore recover`` without
``--repair``) reports exactly the files a writing one then makes, cuts and drops."""
from __future__ import annotations

import os

import matchcore as mc
from matchcore.durability import _journal as _j
from matchcore.durability import read_trades
from matchcore.durability.journal import KIND_TRADES, segment_files
from durability_checks import journaled


def test_readonly_names_the_trade_segment_a_full_replay_for_lost_fills_creates(tmp_path):
    # Every fill before the snapshot lost (the only trade segment's header torn): a writing
    # recovery replays the whole journal and starts the trade journal at trade seq 1, but the
    # preview named the segment after the snapshot's trade seq (trades-2), a file no recovery
    # makes
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 2)
    eng.snapshot()
    eng.submit(1, 3, mc.Side.SELL, 100, 1)
    eng.close()
    trades = read_trades(d)
    os.truncate(segment_files(d, KIND_TRADES)[0][1], 20)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.trades_rewritable and ro.trades_missing == 1
    rec = mc.Engine.recover(d)
    rec.close()
    made = rec.recovery_report
    assert made.trades_rewritten == len(trades)
    assert ro.files_to_create == made.created_files
    assert ro.files_to_drop == made.dropped_files
    assert ro.last_trade_seq == made.last_trade_seq
    assert read_trades(d)["seq"].tolist() == trades["seq"].tolist()


def test_readonly_last_trade_seq_counts_the_lost_fills_a_full_replay_writes(tmp_path):
    # The trade journal kept its first fills only (a tail before the snapshot lost): a writing
    # recovery replays the whole journal and writes every later fill after those kept, but the
    # preview's last trade seq left out the ones before the snapshot ("last trade seq 4"
    # where --repair then said 7)
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    for k in range(10):
        eng.submit(1, 1 + k, k % 2, 100, 2)
    eng.snapshot()
    for k in range(10, 14):
        eng.submit(1, 1 + k, k % 2, 100, 2)
    eng.close()
    trades = read_trades(d)
    seg = segment_files(d, KIND_TRADES)[0][1]
    os.truncate(seg, _j.SEG_HEADER + 2 * _j.TRADE_RECORD_DTYPE.itemsize)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.trades_rewritable and ro.trades_kept_through == 5 and ro.trades_missing == 3
    rec = mc.Engine.recover(d)
    rec.close()
    made = rec.recovery_report
    assert made.trades_rewritten == len(trades) - 2
    assert ro.last_trade_seq == made.last_trade_seq == trades["seq"][-1]
    assert f"last trade seq {made.last_trade_seq}" in ro.summary()
    assert read_trades(d)["seq"].tolist() == trades["seq"].tolist()


def test_readonly_lost_fills_counted_exactly_for_a_snapshot_taken_without_capture(tmp_path):
    # Trade capture off until after the snapshot, then turned on: a writing recovery replays
    # the whole journal and writes every fill, but the preview counted the commands that
    # filled (one here, in two fills), so it said 1 fill missing and "last trade seq 2" where
    # --repair then wrote 3 and said 3
    eng, d = journaled(tmp_path, trades=False)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 1)
    eng.submit(1, 2, mc.Side.BUY, 100, 1)
    eng.submit(1, 3, mc.Side.SELL, 100, 2)          # one command, two fills
    eng.snapshot()
    eng.submit(1, 4, mc.Side.BUY, 100, 1)
    eng.submit(1, 5, mc.Side.SELL, 100, 1)
    eng.close()
    ro = mc.Engine.recover(d, readonly=True, trades=True).recovery_report
    rec = mc.Engine.recover(d, trades=True)
    rec.close()
    made = rec.recovery_report
    assert made.trades_rewritten == len(read_trades(d)) == 3
    assert ro.trades_rewritable and ro.trades_missing == 2 and ro.trades_to_rewrite == 1
    assert ro.trades_missing + ro.trades_to_rewrite == made.trades_rewritten
    assert ro.last_trade_seq == made.last_trade_seq == 3
    assert "WARNING: 2 fill record(s) before the snapshot are missing" in ro.summary()


def test_readonly_recovery_while_a_recovery_cuts_fills_reads_the_directory_again(
        tmp_path, monkeypatch):
    # matchcore recover (read-only) beside a writing recovery that cuts the fills of commands
    # the command journal does not hold: the trade segment it had scanned was shorter when it
    # read it again, and it raised JournalError ("... changed while it was read") for a
    # directory being repaired
    from matchcore.durability import recovery
    from durability_checks import cut_trade_fill_after_scan, journal_last_command_lost
    d = journal_last_command_lost(tmp_path / "j")
    before = mc.Engine.recover(d, readonly=True).recovery_report
    assert before.trades_to_cut == 1
    cut = cut_trade_fill_after_scan(monkeypatch, recovery, d)
    eng = mc.Engine.recover(d, readonly=True)
    assert cut
    rep = eng.recovery_report
    assert rep.trades_to_cut == 0 and rep.bytes_to_cut == before.bytes_to_cut - 104
    assert rep.last_seq == before.last_seq and eng.state_hash() == before.state_hash
    assert rep.options_kept == before.options_kept
