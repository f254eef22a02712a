"""``journal inspect`` of a directory recovery refuses: it names no repair recovery would make."""
from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

import matchcore as mc
from matchcore.durability import inspect
from matchcore.durability.errors import JournalError
from matchcore.durability.journal import KIND_COMMANDS, KIND_TRADES, segment_files
from cli_replay_checks import run_cli
from durability_checks import journal_of_segments, journaled


def test_journal_inspect_corrupt_command_journal_names_no_repair(capsys, tmp_path):
    # a corrupt command journal is refused by every recovery (with or without snapshot or
    # trade capture), yet inspect said of a torn trade tail "recovery cuts it" and listed the
    # snapshot temporaries "recovery removes"
    d = journal_of_segments(tmp_path)
    with open(segment_files(d, KIND_COMMANDS)[1][1], "r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff\xff\xff")                        # damage with valid records after it
    trade_seg = segment_files(d, KIND_TRADES)[-1][1]
    os.truncate(trade_seg, os.path.getsize(trade_seg) - 30)
    (d / "snapshot-00000000000000000009.mcs.tmp").write_bytes(b"")
    for kw in ({}, {"trades": False}, {"snapshot": False}):
        with pytest.raises(JournalError, match="journal corrupt"):
            mc.Engine.recover(d, readonly=True, **kw)
    info = inspect(d)
    assert info["journals"]["commands"]["corrupt"] is not None
    assert info["journals"]["trades"]["torn_tail"] is not None
    assert info["temporaries_to_remove"] == []
    assert all(j["dropped_segments"] == [] for j in info["journals"].values())
    code, out, err = run_cli(capsys, "journal", "inspect", str(d))
    assert code == 1 and "recovery refuses" in err
    assert "recovery refuses the directory and leaves it as it is" in out
    assert "recovery cuts" not in out and "recovery removes" not in out


def _live_writer_writing_a_record(tmp_path):
    # a journaled engine, still open (its LOCK held), caught writing a command record: the
    # first 40 bytes of the next record are at the end of its last segment, which held `size`
    # bytes before them. Returns (engine, directory, that segment, size).
    if not os.access("/proc/locks", os.R_OK):
        pytest.skip("no kernel lock table (/proc/locks) to tell a live writer by")
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 2)
    last = segment_files(d, KIND_COMMANDS)[-1][1]
    size = os.path.getsize(last)
    with open(last, "rb") as fh:
        record = fh.read()[-88:]                     # the last command record, whole
    with open(last, "ab") as fh:
        fh.write(record[:40])                        # the next one, half written
    return eng, d, last, size


def test_journal_inspect_live_writer_tail_in_flight_not_cut(capsys, tmp_path):
    # a writer alive in the directory (its LOCK held) appends as inspect reads: the first
    # bytes of the record it is writing were shown as a torn tail "recovery cuts", which no
    # recovery can do while it holds the LOCK
    eng, d, last, size = _live_writer_writing_a_record(tmp_path)
    with pytest.raises(JournalError, match="in use"):
        mc.Engine.recover(d)
    info = inspect(d)
    assert info["live_writer"] is True
    cmds = info["journals"]["commands"]
    assert cmds["torn_tail"] is None
    assert cmds["in_flight"] == {"file": os.path.basename(last), "offset": size,
                                 "reason": mc.durability.scan_journal(d).tail[2]}
    assert info["journals"]["trades"]["in_flight"] is None
    code, out, err = run_cli(capsys, "journal", "inspect", str(d))
    assert code == 0 and err == ""
    assert "live writer" in out and "in flight" in out
    assert "torn tail" not in out and "recovery cuts" not in out
    with pytest.raises(JournalError, match="in use"):  # the lock was neither taken nor broken
        mc.Engine.recover(d)
    os.truncate(last, size)                          # (the writer's own bytes: no test's)
    eng.submit(1, 3, mc.Side.SELL, 100, 1)
    eng.close()
    info = inspect(d)
    assert info["live_writer"] is False and info["journals"]["commands"]["in_flight"] is None
    assert info["journals"]["commands"]["torn_tail"] is None


def test_journal_inspect_corrupt_trade_journal_of_a_journal_without_capture_not_refused(
        capsys, tmp_path):
    # recover --no-trades --repair records capture off in the segment it starts: recovery
    # without options then leaves the corrupt trade journal as it is and goes on (exit 0),
    # yet inspect still said "recovery refuses" and exited 1
    d = journal_of_segments(tmp_path)
    with open(segment_files(d, KIND_TRADES)[0][1], "r+b") as fh:
        fh.seek(300)
        fh.write(b"\xff\xff\xff")                        # damage with valid records after it
    assert run_cli(capsys, "journal", "inspect", str(d))[0] == 1
    assert run_cli(capsys, "recover", str(d), "--no-trades", "--repair")[0] == 0
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert not rep.trade_capture and rep.trades_corrupt is not None
    assert run_cli(capsys, "recover", str(d))[0] == 0
    info = inspect(d)
    assert info["trade_capture"] is False
    assert info["journals"]["trades"]["corrupt"] is not None
    code, out, err = run_cli(capsys, "journal", "inspect", str(d))
    assert code == 0 and err == ""
    assert "CORRUPT" in out and "recovery refuses" not in out
    assert "leaves it as it is" in out
    # with trade capture asked for, recovery refuses it, as inspect said before
    with pytest.raises(JournalError, match="journal corrupt"):
        mc.Engine.recover(d, readonly=True, trades=True)


def test_scan_of_a_listing_that_missed_a_segment_made_meanwhile_lists_again(tmp_path,
                                                                           monkeypatch):
    # a directory listed while a live writer makes segments (readdir in hash order returns a
    # file made during the listing, or not): one made early was left out while a later one
    # was listed, and inspect reported a healthy live journal as corrupt ("sequence gap",
    # "recovery refuses", exit 1)
    from matchcore.durability import journal
    d = journal_of_segments(tmp_path)
    listed = journal.segment_files
    whole = listed(d, KIND_COMMANDS)
    assert len(whole) > 2
    calls = []

    def racing(path, kind):
        calls.append(kind)
        files = listed(path, kind)
        # the first listing of the command journal misses its second segment
        return files[:1] + files[2:] if calls == [KIND_COMMANDS] else files

    monkeypatch.setattr(journal, "segment_files", racing)
    scan = journal.scan_journal(d, KIND_COMMANDS, keep_index=False)
    assert scan.corrupt is None
    assert [s.path for s in scan.segments] == [f for _, f in whole]
    # a real gap (the segment is gone) is still corruption
    calls.clear()
    os.unlink(whole[1][1])
    monkeypatch.setattr(journal, "segment_files", listed)
    assert "sequence gap" in journal.scan_journal(d, KIND_COMMANDS).corrupt[2]


def test_readonly_recovery_of_a_live_writer_says_in_flight_as_inspect(capsys, tmp_path):
    # recover(readonly=True) and matchcore recover without --repair reported the live
    # writer's record being written as a torn tail and its bytes as "would cut", where
    # journal inspect says "in flight" and lists nothing a recovery would repair
    eng, d, last, size = _live_writer_writing_a_record(tmp_path)
    (d / "snapshot-00000000000000000009.mcs.tmp").write_bytes(b"")
    info = inspect(d)
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert rep.live_writer is info["live_writer"] is True
    assert rep.torn_tail is None and rep.trades_torn_tail is None
    in_flight = info["journals"]["commands"]["in_flight"]
    assert rep.in_flight == (last, in_flight["offset"], in_flight["reason"])
    assert rep.trades_in_flight is None
    assert rep.bytes_to_cut == 0 and rep.files_to_drop == [] and rep.trades_to_cut == 0
    assert rep.temporaries_to_remove == [] == info["temporaries_to_remove"]
    assert rep.snapshots_to_set_aside == []
    text = rep.summary()
    assert "live writer" in text and "in flight" in text
    assert "would cut" not in text and "torn tail" not in text and "would remove" not in text
    code, out, err = run_cli(capsys, "recover", str(d), "--no-progress")
    assert code == 0 and out.startswith(text)
    os.truncate(last, size)                          # (the writer's own bytes: no test's)
    eng.close()
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert rep.live_writer is False and rep.in_flight is None
    assert rep.temporaries_to_remove != []


@contextlib.contextmanager
def _live_writer_writing_its_first_header(tmp_path, d, begun=True):
    # Engine(journal=d) as seen from outside while it writes its first segment's header: the
    # LOCK held (by this process) and the header begun (with begun=False: not yet, no segment
    # file made); yields the segment's file name. The writer is gone when the block ends.
    import fcntl
    if not os.access("/proc/locks", os.R_OK):
        pytest.skip("no kernel lock table (/proc/locks) to tell a live writer by")
    ref = tmp_path / "ref"
    mc.Engine(journal=ref).close()
    first = segment_files(ref, KIND_COMMANDS)[0][1]
    with open(first, "rb") as fh:
        header = fh.read(40)
    d.mkdir()
    fd = os.open(d / "LOCK", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)                 # the writer, alive
        if begun:
            (d / os.path.basename(first)).write_bytes(header[:10])   # its header, begun
        yield os.path.basename(first)
    finally:
        os.close(fd)


def test_journal_inspect_live_writer_writing_its_first_header_in_flight_not_refused(
        capsys, tmp_path):
    # Engine(journal=DIR) holds the LOCK, then makes its first segment and writes its header:
    # inspected meanwhile, the torn header was "creation cut short" and the directory refused
    # (start_refused, exit 1), though the writer was alive and about to finish it
    d = tmp_path / "j"
    with _live_writer_writing_its_first_header(tmp_path, d) as first:
        info = inspect(d)
        assert info["live_writer"] is True and info["start_refused"] is None
        assert info["journals"]["commands"]["in_flight"]["file"] == first
        code, out, err = run_cli(capsys, "journal", "inspect", str(d))
        assert code == 0 and err == ""
        assert "in flight" in out and "cut short" not in out
        code, out, err = run_cli(capsys, "journal", "inspect", str(d), "--json", "-")
        assert code == 0 and err == ""
    # the writer gone, the same files are a creation cut short: refused
    info = inspect(d)
    assert info["live_writer"] is False and "cut short" in info["start_refused"]
    code, out, err = run_cli(capsys, "journal", "inspect", str(d))
    assert code == 1 and "cut short" in err


def test_journal_inspect_live_writer_before_its_first_segment_reported_not_refused(
        capsys, tmp_path):
    # Engine(journal=DIR) takes the LOCK before it makes its first segment: inspected in
    # between, the directory "holds no engine journal" (exit 1, as a mistyped one), though
    # the live writer is reported once its first header is begun
    d = tmp_path / "j"
    with _live_writer_writing_its_first_header(tmp_path, d, begun=False):
        assert sorted(os.listdir(d)) == ["LOCK"]
        info = inspect(d)
        assert info["live_writer"] is True and info["start_refused"] is None
        code, out, err = run_cli(capsys, "journal", "inspect", str(d))
        assert code == 0 and err == ""
        assert "live writer" in out and "nothing written yet" in out
        code, out, err = run_cli(capsys, "journal", "inspect", str(d), "--json", "-")
        assert code == 0 and err == "" and '"live_writer": true' in out
        assert sorted(os.listdir(d)) == ["LOCK"]
    # the writer gone, a LOCK alone is no journal
    code, out, err = run_cli(capsys, "journal", "inspect", str(d))
    assert code == 1 and "holds no engine journal" in err


def test_journal_trades_live_writer_before_its_first_segment_no_trades_not_refused(
        capsys, tmp_path):
    # journal inspect reports a live writer that has made no segment yet (exit 0); journal
    # trades on the same directory said it "holds no engine journal" (exit 1), as of a
    # mistyped one, so a script polling a starting engine's trades failed
    d = tmp_path / "j"
    out_csv = tmp_path / "t.csv"
    with _live_writer_writing_its_first_header(tmp_path, d, begun=False):
        code, out, err = run_cli(capsys, "journal", "trades", str(d))
        assert code == 0 and err == ""
        assert out.startswith("0 trades, 0 lots") and "live writer" in out
        assert "nothing written yet" in out
        code, out, err = run_cli(capsys, "journal", "trades", str(d), "--csv", str(out_csv))
        assert code == 0 and "wrote 0 trades" in out and "nothing written yet" in out
        assert out_csv.read_text().count("\n") == 1            # the header row alone
        code, out, err = run_cli(capsys, "journal", "trades", str(d), "--csv", "-")
        assert code == 0 and out.count("\n") == 1 and "nothing written yet" in err
        assert sorted(os.listdir(d)) == ["LOCK"]
    # the writer gone, a LOCK alone is no journal, for trades as for inspect
    code, out, err = run_cli(capsys, "journal", "trades", str(d))
    assert code == 1 and "holds no engine journal" in err


def test_readonly_recovery_of_a_live_writer_before_its_first_segment_names_it(capsys, tmp_path):
    # read-only recovery said "nothing to recover (no journal, no snapshot)" of a directory
    # whose live Engine(journal=DIR) had not yet made its first segment, as of an abandoned
    # one; once its header is begun it names the live writer
    d = tmp_path / "j"
    with _live_writer_writing_its_first_header(tmp_path, d, begun=False):
        with pytest.raises(JournalError, match=r"nothing to recover yet: a live writer holds "
                                               r"its LOCK and has made no segment"):
            mc.Engine.recover(d, readonly=True)
        code, out, err = run_cli(capsys, "recover", str(d))
        assert code == 1 and "live writer" in err
        assert sorted(os.listdir(d)) == ["LOCK"]
    with pytest.raises(JournalError, match=r"nothing to recover \(no journal, no snapshot\)"):
        mc.Engine.recover(d, readonly=True)


def test_readonly_recovery_of_a_live_writer_writing_its_first_header_not_cut_short(
        capsys, tmp_path):
    # matchcore recover (read-only) said of a live Engine(journal=DIR) writing its first
    # header "its creation was cut short; Engine(journal=DIR) starts a new journal there",
    # where journal inspect says the header is in flight
    d = tmp_path / "j"
    with _live_writer_writing_its_first_header(tmp_path, d):
        with pytest.raises(JournalError, match="live writer") as err:
            mc.Engine.recover(d, readonly=True)
        assert "cut short" not in str(err.value) and "in flight" in str(err.value)
        code, out, err = run_cli(capsys, "recover", str(d))
        assert code == 1 and "in flight" in err and "cut short" not in err
    for readonly in (True, False):                     # the writer gone: cut short
        with pytest.raises(JournalError, match="cut short"):
            mc.Engine.recover(d, readonly=readonly)


def test_scan_of_a_listing_whose_segment_was_dropped_meanwhile_lists_again(tmp_path,
                                                                          monkeypatch):
    # a directory listed while a writing recovery (recover --repair, Engine.recover) drops a
    # trailing segment with nothing valid (a torn header left by a crash during a roll): the
    # file listed was gone when read, and inspect took it for a segment that cannot be read
    # ("CORRUPT ... what it holds is unknown; recovery refuses", exit 1), read_trades and a
    # read-only recovery raised JournalError, for a directory recovery was repairing
    from matchcore.durability import journal
    d = journal_of_segments(tmp_path)
    for kind in (KIND_COMMANDS, KIND_TRADES):
        first = segment_files(d, kind)[-1][0] + 10**6
        prefix = "journal" if kind == KIND_COMMANDS else "trades"
        suffix = "mcj" if kind == KIND_COMMANDS else "mct"
        (d / f"{prefix}-{first:020d}.{suffix}").write_bytes(b"MCJ")    # torn header
    state = mc.Engine.recover(d, readonly=True).state_hash()
    trades = mc.durability.read_trades(d)
    real_read = journal.read_regular_file
    dropped = []

    def dropped_after_listing(fpath, into=None):
        # the recovery's unlink lands between the reader's listing and its read
        first = int(os.path.basename(fpath).split("-")[1].split(".")[0])
        if first > 10**6 and os.path.lexists(fpath):
            os.unlink(fpath)
            dropped.append(fpath)
        return real_read(fpath, into)

    monkeypatch.setattr(journal, "read_regular_file", dropped_after_listing)
    info = inspect(d)
    assert len(dropped) == 2
    for label in ("commands", "trades"):
        assert info["journals"][label]["corrupt"] is None, info["journals"][label]["corrupt"]
        assert info["journals"][label]["torn_tail"] is None
    assert mc.Engine.recover(d, readonly=True).state_hash() == state
    assert (mc.durability.read_trades(d) == trades).all()
    # a segment listed that is there and cannot be read is still what it was: unreadable
    monkeypatch.setattr(journal, "read_regular_file", real_read)
    (d / f"journal-{10**7:020d}.mcj").symlink_to(d / "nowhere")
    info = inspect(d)
    assert info["journals"]["commands"]["corrupt"]["unreadable"] is True


def test_inspect_while_a_recovery_cuts_fills_reads_the_directory_again(tmp_path,
                                                                      monkeypatch):
    # a writing recovery cuts the fills of commands the command journal does not hold (valid
    # records) while inspect reads the directory: the trade segment inspect had scanned was
    # shorter when it read it again, and inspect raised JournalError ("... changed while it
    # was read"; `journal inspect` exited 1 with that error) where it reports, never raises
    from matchcore.durability import journal
    from durability_checks import cut_trade_fill_after_scan, journal_last_command_lost
    d = journal_last_command_lost(tmp_path / "j")
    before = inspect(d)
    assert before["journals"]["trades"]["fills_to_cut"] == 1
    cut = cut_trade_fill_after_scan(monkeypatch, journal, d)
    info = inspect(d)
    assert cut
    trades = info["journals"]["trades"]
    assert trades["records"] == before["journals"]["trades"]["records"] - 1
    assert trades["fills_to_cut"] == 0 and trades["corrupt"] is None


def test_inspect_while_a_recovery_drops_a_trade_segment_reads_the_directory_again(
        tmp_path, monkeypatch):
    # a writing recovery drops the trade segments wholly after its cut (fills of commands the
    # command journal lost) while inspect reads the directory: the segment inspect had
    # scanned was gone when it read it again for the cut, and inspect raised JournalError
    # ("... cannot be read"), which it reports as the damage of no file
    from matchcore.durability import journal, read_journal
    d = journal_of_segments(tmp_path)
    tsegs = segment_files(d, KIND_TRADES)
    assert len(tsegs) > 1
    first_fill = mc.durability.read_trades(d)
    lost_from = int(first_fill["cmd_seq"][first_fill["seq"] == tsegs[-1][0]][0])
    # the command journal lost its tail from that fill's command on
    rec = read_journal(d)
    at = int(np.flatnonzero(rec["index"]["seq"] == lost_from)[0])
    csegs = segment_files(d, KIND_COMMANDS)
    os.truncate([f for first, f in csegs if first <= lost_from][-1],
                int(rec["index"]["offset"][at]))
    for f in [f for first, f in csegs if first > lost_from]:
        os.unlink(f)
    before = inspect(d)
    assert before["journals"]["trades"]["segments_to_drop"] == [os.path.basename(tsegs[-1][1])]
    real_scan = journal.scan_journal
    dropped = []

    def drop_after_scan(path, kind=KIND_COMMANDS, **kw):
        scan = real_scan(path, kind, **kw)
        if kind == KIND_TRADES and not dropped:
            os.unlink(tsegs[-1][1])             # the recovery's drop lands here
            dropped.append(tsegs[-1][1])
        return scan

    monkeypatch.setattr(journal, "scan_journal", drop_after_scan)
    info = inspect(d)
    assert dropped
    trades = info["journals"]["trades"]
    assert trades["corrupt"] is None and trades["segments_to_drop"] == []
    assert [s["file"] for s in trades["segments"]] == [os.path.basename(f) for _, f in tsegs[:-1]]


def test_inspect_while_a_recovery_sets_a_snapshot_aside_reads_the_directory_again(
        tmp_path, monkeypatch):
    # a writing recovery renames a snapshot that can never be a state of the journal (here
    # ahead of it, the journal's tail lost) to .unused while inspect reads the directory:
    # inspect listed it as "INVALID: ... cannot be read: No such file or directory", a
    # damaged snapshot, where recovery had only set a valid one aside
    from matchcore.durability import recovery
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    for k in range(1, 6):
        eng.submit(1, k, mc.Side.BUY, 100 - k, 5)
    snap = eng.snapshot()
    eng.submit(1, 9, mc.Side.BUY, 90, 5)
    eng.close()
    seg = segment_files(d, KIND_COMMANDS)[-1][1]
    os.truncate(seg, os.path.getsize(seg) - 2 * 88)        # the journal ends before it
    before = inspect(d)
    assert [s["set_aside"] for s in before["snapshots"]] == [True]
    real_load = recovery.load_listed_snapshot
    renamed = []

    def set_aside_after_listing(fpath, seq, cls=None):
        if not renamed:
            os.rename(snap, snap + ".unused")               # the recovery's rename lands here
            renamed.append(snap)
        return real_load(fpath, seq, cls)

    monkeypatch.setattr(recovery, "load_listed_snapshot", set_aside_after_listing)
    info = inspect(d)
    assert renamed
    assert info["snapshots"] == []
