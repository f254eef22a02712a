"""The trade capture choice of a journaled engine (``trades=``) across recoveries: recorded in
the command segment headers, and kept by ``Engine.recover(DIR)`` when none is given."""
from __future__ import annotations

import os

import matchcore as mc
from matchcore.durability import read_trades
from matchcore.durability.journal import KIND_COMMANDS, KIND_TRADES, segment_files
from durability_checks import journaled


def test_recovery_from_a_snapshot_alone_keeps_its_engines_trade_capture(tmp_path):
    # With every segment wholly before the newest snapshot deleted (as the README allows), no
    # segment header told the engine's choice: an engine made with trades=False came back
    # capturing trades, and warned that fills nothing captured could not be checked. The
    # snapshot records the choice (its trade capture flag): recovery keeps it.
    eng, d = journaled(tmp_path, trades=False)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 1)
    eng.submit(1, 2, mc.Side.SELL, 100, 1)
    eng.snapshot()
    live = eng.state_hash()
    eng.close()
    for _, f in segment_files(d, KIND_COMMANDS):
        os.unlink(f)
    rec = mc.Engine.recover(d)
    rep = rec.recovery_report
    assert rec.state_hash() == live and rec.trade_journal is None
    assert rep.trade_capture is False and "WARNING" not in rep.summary()
    rec.submit(1, 3, mc.Side.BUY, 100, 1)
    rec.submit(1, 4, mc.Side.SELL, 100, 1)
    rec.close()
    assert segment_files(d, KIND_TRADES) == []
    rec = mc.Engine.recover(d)                  # its first segment records the choice now
    assert rec.trade_journal is None
    rec.close()
    # given, the argument wins
    rec = mc.Engine.recover(d, trades=True)
    assert rec.trade_journal is not None
    rec.close()


def test_recovery_from_a_snapshot_alone_of_an_engine_with_capture_captures(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 1)
    eng.submit(1, 2, mc.Side.SELL, 100, 1)
    eng.snapshot()
    eng.close()
    for _, f in segment_files(d, KIND_COMMANDS):
        os.unlink(f)
    rec = mc.Engine.recover(d)
    assert rec.trade_journal is not None and rec.recovery_report.trade_capture is True
    rec.submit(1, 3, mc.Side.BUY, 100, 1)
    rec.submit(1, 4, mc.Side.SELL, 100, 1)
    rec.close()
    assert read_trades(d)["cmd_seq"].tolist() == [3, 5]


def test_cli_recover_keeps_the_journals_trade_capture_unless_no_trades(capsys, tmp_path):
    # The command line passed trades=True whenever --no-trades was absent: its preview of a
    # journal made with trades=False listed every fill as one to rewrite, which
    # Engine.recover(DIR) does not do, and `recover --repair` turned capture on for good.
    # Without --no-trades it now asks for the journal's own choice, as Engine.recover does.
    import json

    from cli_replay_checks import run_cli

    eng, d = journaled(tmp_path, trades=False)
    eng.add_symbol(1)
    for k in range(5):
        eng.submit(1, 2 * k + 1, mc.Side.BUY, 100, 1)
        eng.submit(1, 2 * k + 2, mc.Side.SELL, 100, 1)
    live = eng.state_hash()
    eng.close()
    code, out, _ = run_cli(capsys, "recover", str(d), "--json", "-")
    rep = json.loads(out)["report"]
    assert code == 0 and rep["trade_capture"] is False and rep["trades_to_rewrite"] == 0
    code, out, _ = run_cli(capsys, "recover", str(d), "--repair")
    assert code == 0 and f"state hash {live:#018x}" in out
    assert segment_files(d, KIND_TRADES) == []
    rec = mc.Engine.recover(d)
    assert rec.trade_journal is None and rec.state_hash() == live
    rec.close()
