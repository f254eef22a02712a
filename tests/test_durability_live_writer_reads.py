"""Reading a directory whose writer is alive: ``inspect`` and a read-only recovery take no lock,
and tell a live writer's in-flight ends from damage by whether the directory's LOCK is held.

They looked at the LOCK only after reading the files. A writer that went on journaling and
closed while they read (a clean close, nothing lost) left them holding a command journal read
before its last calls and a trade journal read after them: the fills of those calls, of
commands "the command journal does not hold", were reported as fills recovery cuts, and, the
LOCK being free by then, as the repairs of a crashed directory. A reading that began with the
LOCK held and ends with it free is now read again: the directory as the closed writer left it.
"""
from __future__ import annotations

import os

import pytest

import matchcore as mc
from matchcore.durability import inspect
from matchcore.durability import journal as journal_mod
from matchcore.durability import recovery as recovery_mod
from matchcore.durability.journal import KIND_COMMANDS

pytestmark = pytest.mark.skipif(not os.access("/proc/locks", os.R_OK),
                                reason="no kernel lock table (/proc/locks) to tell a live "
                                       "writer by")


def _crossing(eng, first, pairs):
    for i in range(first, first + 2 * pairs, 2):
        eng.submit(1, i, mc.Side.BUY, 100, 5)
        eng.submit(1, i + 1, mc.Side.SELL, 100, 5)


def _live_engine(d):
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    _crossing(eng, 1, 10)
    return eng


def _on_the_command_scan(monkeypatch, module, act, *, before=False):
    # act() once, right after the reader's scan of the command journal (before it, with
    # before=True): the writer's last calls, a close() or a snapshot falling between the
    # reader's steps. Returns a list that holds True once act() has run.
    real = module.scan_journal
    fired = []

    def scan(path, kind=KIND_COMMANDS, **options):
        if before and kind == KIND_COMMANDS and not fired:
            fired.append(True)
            act()
        got = real(path, kind, **options)
        if not before and kind == KIND_COMMANDS and not fired:
            fired.append(True)
            act()
        return got

    monkeypatch.setattr(module, "scan_journal", scan)
    return fired


def _close_after_the_command_scan(monkeypatch, module, eng):
    # the writer's last calls and its close() fall between the reader's scan of the command
    # journal and its scan of the trade journal
    return _on_the_command_scan(monkeypatch, module,
                                lambda: (_crossing(eng, 1001, 5), eng.close()))


def test_inspect_writer_closing_while_read_reads_the_closed_directory(tmp_path, monkeypatch):
    d = tmp_path / "j"
    eng = _live_engine(d)
    fired = _close_after_the_command_scan(monkeypatch, journal_mod, eng)
    info = inspect(d)
    assert fired
    trades = info["journals"]["trades"]
    assert info["live_writer"] is False
    assert info["journals"]["commands"]["last_seq"] == eng.journal_seq == 31
    # (was: 5 fill records "recovery cuts", of commands the command journal holds)
    assert trades["fills_to_cut"] == 0 and trades["kept_through"] == 31
    assert trades["segments_to_drop"] == [] and trades["commands_lacking_fills"] is None


def test_readonly_recovery_writer_closing_while_read_reads_the_closed_directory(
        tmp_path, monkeypatch):
    d = tmp_path / "j"
    eng = _live_engine(d)
    fired = _close_after_the_command_scan(monkeypatch, recovery_mod, eng)
    ro = mc.Engine.recover(d, readonly=True)
    assert fired
    rep = ro.recovery_report
    assert rep.live_writer is False and rep.last_seq == eng.journal_seq == 31
    assert ro.state_hash() == eng.state_hash()
    # (was: "would cut 520 byte(s)" of fill records of commands "not kept")
    assert rep.trades_to_cut == 0 and rep.bytes_to_cut == 0 and rep.files_to_drop == []
    assert rep.trades_kept_through == 31 and rep.last_trade_seq == 15
    assert "would cut" not in rep.summary()


def test_inspect_snapshot_a_live_writer_takes_while_read_not_said_unusable(tmp_path,
                                                                          monkeypatch):
    # inspect listed the snapshots after scanning the journal: one the live writer took in
    # between named a seq past the scan's end, and was listed as "NOT USABLE: ahead of the
    # journal (recovery skips it)", a verdict no recovery would reach
    d = tmp_path / "j"
    eng = _live_engine(d)
    eng.snapshot()
    fired = _on_the_command_scan(monkeypatch, journal_mod,
                                 lambda: (_crossing(eng, 1001, 5), eng.snapshot()))
    info = inspect(d)
    assert fired and info["live_writer"] is True
    assert [s["seq"] for s in info["snapshots"]] == [21]
    assert all(s["valid"] and s["unusable"] is None and not s["set_aside"]
               for s in info["snapshots"])
    monkeypatch.undo()
    # read again, the writer still live: both snapshots, both usable
    info = inspect(d)
    assert [(s["seq"], s["unusable"]) for s in info["snapshots"]] == [(21, None), (31, None)]
    eng.close()


def test_readonly_recovery_of_a_live_writer_names_no_fills_to_rewrite(tmp_path, monkeypatch):
    # Each call writes its commands, then their fills. A reader between the two (or one that
    # listed the trade segments before a roll) holds commands whose fills it has not read: a
    # read-only recovery of the live directory said "5 fills to rewrite (read-only:
    # Engine.recover, matchcore recover --repair write them)", of fills the writer was
    # writing, while journal inspect of the same reading lists no fills recovery writes
    # again. Here the trade journal is read before the writer's last calls, the command
    # journal after them.
    d = tmp_path / "j"
    eng = _live_engine(d)
    real = recovery_mod.scan_journal
    early = {}

    def scan(path, kind=KIND_COMMANDS, **options):
        if kind == KIND_COMMANDS and not early:
            early["trades"] = real(path, journal_mod.KIND_TRADES, **options)
            _crossing(eng, 1001, 5)
        elif kind == journal_mod.KIND_TRADES and "trades" in early:
            return early.pop("trades")
        return real(path, kind, **options)

    monkeypatch.setattr(recovery_mod, "scan_journal", scan)
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert early == {} and rep.live_writer is True and rep.last_seq == 31
    assert rep.trades_kept_through == 21
    assert rep.trades_to_rewrite == 0                   # was 5
    assert "no fills to rewrite" in rep.summary() and "in flight" in rep.summary()
    eng.close()


def test_cli_journal_trades_writer_closing_while_read_reads_the_closed_directory(
        capsys, tmp_path, monkeypatch):
    # journal trades reads the trade journal, then the command journal, then looks at the
    # LOCK. A writer that journaled more and closed in between left it with commands that
    # filled after the fills it had read, and a free LOCK: it said their fills were "lost from
    # its tail" of a directory closed cleanly
    from cli_replay_checks import run_cli

    d = tmp_path / "j"
    eng = _live_engine(d)
    fired = _on_the_command_scan(monkeypatch, journal_mod,
                                 lambda: (_crossing(eng, 1001, 5), eng.close()), before=True)
    code, out, err = run_cli(capsys, "journal", "trades", str(d), "--limit", "1")
    assert fired and code == 0 and err == ""
    # (was "10 trades, 50 lots; the fills of 5 command(s) after command 21 ... are not in the
    # trade journal (lost from its tail ...)")
    assert out.splitlines()[0] == "15 trades, 75 lots"


def test_readonly_recovery_snapshot_a_live_writer_takes_while_read_not_skipped(tmp_path,
                                                                              monkeypatch):
    # as inspect: a read-only recovery listed the snapshots after scanning the journal, and
    # one the live writer took in between was "skipped snapshot ...: ahead of the journal"
    d = tmp_path / "j"
    eng = _live_engine(d)
    first = eng.snapshot()
    fired = _on_the_command_scan(monkeypatch, recovery_mod,
                                 lambda: (_crossing(eng, 1001, 5), eng.snapshot()))
    ro = mc.Engine.recover(d, readonly=True)
    rep = ro.recovery_report
    assert fired and rep.live_writer is True
    assert rep.snapshot == first and rep.last_seq == 21
    assert rep.skipped_snapshots == []          # was [(snapshot-31, "ahead of the journal")]
    assert "skipped" not in rep.summary()
    monkeypatch.undo()
    again = mc.Engine.recover(d, readonly=True).recovery_report
    assert again.snapshot_seq == again.last_seq == 31 and again.skipped_snapshots == []
    eng.close()


def test_readonly_recovery_snapshot_set_aside_after_the_listing_reads_again(tmp_path,
                                                                           monkeypatch):
    # listed before the journal is scanned, a snapshot that a writing recovery sets aside
    # meanwhile is gone when loaded: the directory is read again (as inspect reads it), not
    # "skipped snapshot ...: cannot be read"
    d = tmp_path / "j"
    eng = _live_engine(d)
    older = eng.snapshot()
    _crossing(eng, 1001, 2)
    newer = eng.snapshot()
    eng.close()
    fired = _on_the_command_scan(monkeypatch, recovery_mod,
                                 lambda: os.rename(newer, newer + ".unused"), before=True)
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert fired and rep.snapshot == older and rep.skipped_snapshots == []
    assert rep.last_seq == 25
