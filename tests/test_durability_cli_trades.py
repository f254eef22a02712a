"""``matchcore journal trades``: what it says of the fills it lists, against what recovery does."""
from __future__ import annotations

import os

import pytest

import matchcore as mc
from matchcore.durability.errors import JournalError
from matchcore.durability.journal import KIND_COMMANDS, segment_files
from cli_replay_checks import run_cli
from durability_checks import journal_of_segments


def test_cli_journal_trades_claims_no_cut_in_a_directory_recovery_refuses(capsys, tmp_path):
    # a journal that starts after seq 1 with no snapshot, its command tail lost: recovery
    # refuses the directory and cuts nothing, yet journal trades said of the fills of commands
    # after the last seq "(recovery cuts them)"
    d = journal_of_segments(tmp_path)
    segs = segment_files(d, KIND_COMMANDS)
    assert len(segs) > 2
    os.unlink(segs[0][1])
    os.truncate(segs[-1][1], 256)                 # commands lost, their fills still journaled
    with pytest.raises(JournalError, match="no valid snapshot holds the state"):
        mc.Engine.recover(d, readonly=True)
    code, out, err = run_cli(capsys, "journal", "trades", str(d), "--limit", "1")
    assert code == 0 and err == ""
    assert out.startswith("150 trades, 750 lots\n")
    assert "recovery cuts" not in out


def test_cli_journal_trades_of_a_journal_without_trade_capture_says_so(capsys, tmp_path):
    # a journal made with trades=False records no fill: journal trades said "0 trades, 0 lots"
    # of a session that traded, as of one that never did; inspect marks its segments "no
    # trade capture". Likewise after recover --no-trades --repair: the fills of the commands
    # journaled since then are missing from what it lists
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never", trades=False)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 2)
    eng.submit(1, 2, 1, 100, 2)                  # a fill the trade journal does not hold
    eng.close()
    code, out, err = run_cli(capsys, "journal", "trades", str(d))
    assert code == 0 and err == ""
    assert out.startswith("0 trades, 0 lots; trade capture is off")
    code, out, err = run_cli(capsys, "journal", "trades", str(d), "--csv", "-")
    assert code == 0 and out.count("\n") == 1 and "trade capture is off" in err
    # capture on: every fill listed, nothing said of capture
    d2 = tmp_path / "k"
    eng = mc.Engine(journal=d2, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 2)
    eng.submit(1, 2, 1, 100, 2)
    eng.close()
    code, out, err = run_cli(capsys, "journal", "trades", str(d2))
    assert code == 0 and out.startswith("1 trades, 2 lots\n") and "capture" not in out
    # turned off by a repairing recovery: the fill before is listed, the note says the rest
    # are not recorded
    code, _, _ = run_cli(capsys, "recover", str(d2), "--no-trades", "--repair")
    assert code == 0
    eng = mc.Engine.recover(d2)
    eng.submit(1, 3, 0, 100, 1)
    eng.submit(1, 4, 1, 100, 1)
    eng.close()
    code, out, err = run_cli(capsys, "journal", "trades", str(d2))
    assert code == 0 and out.startswith("1 trades, 2 lots; trade capture is off")
    # no command segment left, only a snapshot made without capture: recovery keeps its
    # capture, and so the note does not name a segment
    eng = mc.Engine.recover(d2)
    eng.snapshot()
    eng.close()
    for _, f in segment_files(d2, KIND_COMMANDS):
        os.unlink(f)
    code, out, err = run_cli(capsys, "journal", "trades", str(d2))
    assert code == 0 and "trade capture is off in this journal (trades=False, as recovery " \
        "keeps it)" in out


def _last_command_fills_torn(tmp_path, trades):
    # a command of three fills whose last fill (and flag) never reached the trade journal: a
    # crash between the two journals' writes, the command itself journaled
    from matchcore.durability import _journal as _j
    from matchcore.durability.journal import KIND_TRADES
    d = tmp_path / ("capture" if trades else "off")
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    for oid in (1, 2, 3):
        eng.submit(1, oid, 0, 100, 2)
    eng.submit(1, 9, 1, 100, 6)                  # fills 1, 2 and 3: seq 5
    eng.close()
    if not trades:
        # capture turned off since (its newest command segment records it): recovery cuts
        # the two fills and writes none again
        mc.Engine.recover(d, trades=False).close()
    tseg = segment_files(d, KIND_TRADES)[0][1]
    os.truncate(tseg, os.path.getsize(tseg) - _j.TRADE_RECORD_DTYPE.itemsize)
    return str(d)


@pytest.mark.parametrize("trades", [True, False])
def test_cli_journal_trades_says_which_fills_are_of_a_command_not_complete(
        capsys, tmp_path, trades):
    # the first fills of a command whose last fill the trade journal lacks were listed like
    # any other, without a word, though recovery cuts them (inspect: "recovery cuts 2 fill
    # record(s)"): "2 trades, 4 lots" read as the command's whole execution
    from matchcore.durability import inspect
    d = _last_command_fills_torn(tmp_path, trades)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.trades_to_cut == 2 == inspect(d)["journals"]["trades"]["fills_to_cut"]
    again = " and writes that command's fills again" if trades else ""
    note = (f"2 of them of command 5, whose last fill the trade journal lacks (recovery cuts "
            f"them{again})")
    code, out, err = run_cli(capsys, "journal", "trades", d)
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith(f"2 trades, 4 lots; {note}")
    code, out, err = run_cli(capsys, "journal", "trades", d, "--csv", "-")
    assert code == 0 and err.startswith(f"matchcore journal: 2 trades; {note}")
    # --symbol: only the fills listed are counted
    code, out, _ = run_cli(capsys, "journal", "trades", d, "--symbol", "2")
    assert code == 0 and out.splitlines()[0].startswith("0 trades, 0 lots")
    assert "lacks" not in out
    # recovery cuts them (and, capturing trades, writes all three again): nothing to say
    mc.Engine.recover(d).close()
    code, out, _ = run_cli(capsys, "journal", "trades", d)
    assert code == 0 and "lacks" not in out
    assert out.startswith("3 trades, 6 lots" if trades else "0 trades, 0 lots")


def test_cli_journal_trades_says_fills_before_the_trade_journal_are_not_listed(capsys,
                                                                             tmp_path):
    # a backup's snapshot restored without its journals: recovery warns that the fills before
    # the snapshot are lost, and starts the trade journal after the snapshot's trade seq;
    # journal trades said "0 trades, 0 lots" there, and after the restart listed the new fills
    # alone, as if the session had made no earlier one
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    for i in range(3):
        eng.submit(1, 10 * i + 1, 0, 100, 2)
        eng.submit(1, 10 * i + 2, 1, 100, 2)
    eng.snapshot()
    eng.close()
    for f in os.listdir(d):
        if f.endswith((".mcj", ".mct")):
            os.unlink(d / f)
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert rep.trades_missing == 3
    code, out, err = run_cli(capsys, "journal", "trades", str(d))
    assert code == 0 and err == ""
    assert out.startswith("0 trades, 0 lots; the 3 fill(s) before trade seq 4 are not in the "
                          "trade journal")
    code, out, err = run_cli(capsys, "journal", "trades", str(d), "--csv", "-")
    assert code == 0 and out.count("\n") == 1 and "the 3 fill(s) before trade seq 4" in err
    eng = mc.Engine.recover(d)
    eng.submit(1, 41, 0, 100, 1)
    eng.submit(1, 42, 1, 100, 1)
    eng.close()
    code, out, err = run_cli(capsys, "journal", "trades", str(d))
    assert code == 0 and out.startswith("1 trades, 1 lots; the 3 fill(s) before trade seq 4 "
                                        "are not in the trade journal")
    assert mc.durability.read_trades(d)["seq"].tolist() == [4]
    # a trade journal that starts at seq 1 holds them all: nothing said
    d2 = tmp_path / "k"
    eng = mc.Engine(journal=d2, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 2)
    eng.submit(1, 2, 1, 100, 2)
    eng.snapshot()
    eng.close()
    code, out, err = run_cli(capsys, "journal", "trades", str(d2))
    assert code == 0 and out.startswith("1 trades, 2 lots\n")


def test_cli_journal_trades_of_one_symbol_says_the_fills_not_in_the_journal_are_of_any(
        capsys, tmp_path):
    # the fills before the trade journal's start are counted over every symbol (their
    # symbols are unknown): with --symbol the note read as that symbol's own count
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    for s in (1, 2):
        eng.add_symbol(s)
        eng.submit(s, 10 * s + 1, 0, 100, 2)
        eng.submit(s, 10 * s + 2, 1, 100, 2)
    eng.snapshot()
    eng.close()
    for f in os.listdir(d):
        if f.endswith((".mcj", ".mct")):
            os.unlink(d / f)
    code, out, err = run_cli(capsys, "journal", "trades", str(d), "--symbol", "1")
    assert code == 0 and out.startswith("0 trades, 0 lots; the 2 fill(s) of any symbol before "
                                        "trade seq 3 are not in the trade journal")
    code, out, err = run_cli(capsys, "journal", "trades", str(d))
    assert code == 0 and out.startswith("0 trades, 0 lots; the 2 fill(s) before trade seq 3")


def test_cli_journal_trades_says_the_fills_of_whole_commands_it_lacks(capsys, tmp_path):
    # a kill between the two journals' writes (or a power loss under fsync="batch", the trade
    # journal being fsynced only at sync()) leaves the command journal holding commands that
    # filled and the trade journal none of their fills: journal trades listed "2 trades,
    # 4 lots" without a word, as the session's whole execution, while the command journal
    # proves two more commands filled (recovery writes their fills again)
    from matchcore.durability import _journal as _j
    from matchcore.durability.journal import KIND_TRADES
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.add_symbol(2)
    for oid in range(1, 5):
        eng.submit(1 + oid % 2, oid, 0, 100, 2)          # seqs 3..6
    for oid in range(11, 15):
        eng.submit(1 + oid % 2, oid, 1, 100, 2)          # seqs 7..10: one fill each
    eng.cancel(11)                                       # seq 11: nothing to cancel
    eng.close()
    tseg = segment_files(d, KIND_TRADES)[0][1]
    os.truncate(tseg, _j.SEG_HEADER + 2 * _j.TRADE_RECORD_DTYPE.itemsize)
    note = ("; the fills of 2 command(s) after command 8 that the command journal holds as "
            "filled (seqs 9..10) are not in the trade journal")
    code, out, err = run_cli(capsys, "journal", "trades", str(d))
    assert code == 0 and err == ""
    assert out.startswith(f"2 trades, 4 lots{note}")
    code, out, err = run_cli(capsys, "journal", "trades", str(d), "--csv", "-")
    assert code == 0 and out.count("\n") == 3 and f"matchcore journal: 2 trades{note}" in err
    code, out, err = run_cli(capsys, "journal", "trades", str(d), "--symbol", "1")
    assert code == 0 and "the fills of 2 command(s) of any symbol after command 8" in out
    assert mc.Engine.recover(d, readonly=True).recovery_report.trades_to_rewrite == 2
    mc.Engine.recover(d).close()                         # writes them again: nothing to say
    code, out, err = run_cli(capsys, "journal", "trades", str(d))
    assert code == 0 and out.startswith("4 trades, 8 lots\n")


def test_cli_journal_inspect_says_the_fills_of_whole_commands_the_trade_journal_lacks(
        capsys, tmp_path):
    # as journal trades: inspect reported the fills recovery cuts, never those it writes
    # again, so a trade journal that lost whole commands' fills (a kill between the two
    # journals' writes) looked complete
    from matchcore.durability import _journal as _j
    from matchcore.durability import inspect
    from matchcore.durability.journal import KIND_TRADES
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    for oid in range(1, 4):
        eng.submit(1, oid, 0, 100, 2)                    # seqs 2..4
    for oid in range(11, 14):
        eng.submit(1, oid, 1, 100, 2)                    # seqs 5..7: one fill each
    eng.close()
    tseg = segment_files(d, KIND_TRADES)[0][1]
    os.truncate(tseg, _j.SEG_HEADER + _j.TRADE_RECORD_DTYPE.itemsize)
    info = inspect(d)["journals"]["trades"]
    assert info["kept_through"] == 5 and info["fills_to_cut"] == 0
    assert info["commands_lacking_fills"] == {"count": 2, "first": 6, "last": 7}
    code, out, err = run_cli(capsys, "journal", "inspect", str(d))
    assert code == 0
    assert ("recovery writes again the fills of 2 command(s) that the command journal holds "
            "as filled (seqs 6..7), which the trade journal lacks") in out
    mc.Engine.recover(d).close()
    assert inspect(d)["journals"]["trades"]["commands_lacking_fills"] is None
    code, out, err = run_cli(capsys, "journal", "inspect", str(d))
    assert code == 0 and "writes again" not in out


def test_cli_journal_trades_table_columns_stay_under_their_headers(capsys, tmp_path):
    # every column was 12 characters wide: a wall-clock ts_ns (19 digits), a 64-bit order id
    # or owner pushed the rest of its row to the right, off its headers
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 7, 1, 4_338_900, 1_000, ts_ns=1_796_643_765_394_324_412, owner=2**64 - 1)
    eng.submit(1, 2**63, 0, 4_338_900, 5, ts_ns=1_796_643_765_394_324_413, owner=9)
    eng.submit(1, 8, 0, 4_338_900, 3, ts_ns=1_796_643_765_394_324_414, owner=3)
    eng.close()
    code, out, err = run_cli(capsys, "journal", "trades", str(d))
    assert code == 0 and err == ""
    header, *rows = out.splitlines()[1:]
    assert len(rows) == 2
    # a right-aligned column ends where its header ends
    ends = [i + 1 for i, ch in enumerate(header) if ch != " " and header[i + 1:i + 2] in ("", " ")]
    names = header.split()
    assert len(ends) == len(names)
    for row in rows:
        row_ends = [i + 1 for i, ch in enumerate(row) if ch != " " and row[i + 1:i + 2] in ("", " ")]
        assert row_ends == ends, (header, row)
    first = dict(zip(names, rows[0].split()))
    assert first["ts_ns"] == "1796643765394324413" and first["taker_id"] == str(2**63)
    assert first["maker_owner"] == str(2**64 - 1)
