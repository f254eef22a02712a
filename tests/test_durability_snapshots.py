"""Engine snapshots: what they hold, and that recovery uses only the snapshots of its own
journal."""
from __future__ import annotations

import errno
import os
import shutil
import struct
import time

import numpy as np
import pytest

import matchcore as mc
from matchcore.durability import (
    JournalError, SnapshotFileError, inspect, list_snapshots, load_snapshot, read_journal,
    read_trades,
)
from matchcore.durability import _journal as _j
from matchcore.durability.journal import segment_files, KIND_COMMANDS, KIND_TRADES
from durability_flow import apply_steps, make_flow
from durability_checks import (
    _assert_recovers_with_trades, _files_and_sizes, _last_segment, journal_last_command_lost,
    journaled,
)


# ---- snapshots ----

def test_snapshot_load_equal_hash_and_routing(tmp_path):
    steps, cmds = make_flow(6, 700)
    eng = mc.Engine()
    apply_steps(eng, steps, cmds)
    path = mc.durability.write_snapshot(eng, tmp_path)
    loaded, head = load_snapshot(path)
    assert loaded.state_hash() == eng.state_hash() and head["seq"] == 0
    assert loaded.symbols == eng.symbols
    loaded.check_invariants()
    # the rebuilt id routing finds every resting order: the same future
    rest = cmds.copy()
    rest["order_id"] += 7
    assert loaded.process(rest).tobytes() == eng.process(rest).tobytes()


def test_snapshot_damaged_bytes_raise_snapshotfileerror_only(tmp_path):
    steps, cmds = make_flow(7, 300)
    eng = mc.Engine()
    apply_steps(eng, steps, cmds)
    data = open(mc.durability.write_snapshot(eng, tmp_path), "rb").read()
    rng = np.random.default_rng(7)
    for _ in range(200):
        bad = bytearray(data)
        if rng.random() < 0.5:
            bad = bad[:int(rng.integers(0, len(bad)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        with pytest.raises(SnapshotFileError):
            load_snapshot(bytes(bad))


@pytest.mark.parametrize("extra", [1, 8, 100])
def test_snapshot_file_bytes_after_content_raise_saying_how_many(tmp_path, extra):
    # A snapshot file with bytes after its trailer (written twice, a copy that appended) was
    # refused as "truncated or damaged (no trailer)": it is neither, and says so now.
    eng = mc.Engine()
    eng.add_symbol(1, "A")
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    data = open(mc.durability.write_snapshot(eng, tmp_path), "rb").read()
    with pytest.raises(SnapshotFileError,
                       match=f"{extra} bytes? after the snapshot's content") as err:
        load_snapshot(data + b"\0" * extra)
    assert err.value.offset == len(data)
    with pytest.raises(SnapshotFileError, match="truncated or damaged"):
        load_snapshot(data[:-1])


def test_snapshot_unreadable_path_raises_snapshotfileerror_and_recovery_skips_it(tmp_path):
    for bad in (tmp_path / "missing.mcs", tmp_path):
        with pytest.raises(SnapshotFileError, match="cannot be read") as err:
            load_snapshot(bad)
        assert isinstance(err.value.__cause__, OSError)
    eng, d = journaled(tmp_path, "j")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.close()
    (d / "snapshot-00000000000000000002.mcs").mkdir()       # not a file
    rec = mc.Engine.recover(d, readonly=True)
    rep = rec.recovery_report
    assert rep.snapshot is None and "cannot be read" in rep.skipped_snapshots[0][1]
    assert rec.state_hash() == eng.state_hash()
    assert inspect(d)["snapshots"][0]["valid"] is False


@pytest.mark.parametrize("kind", [KIND_COMMANDS, KIND_TRADES])
@pytest.mark.parametrize("how", ["directory", "dangling link"])
def test_journal_unreadable_segment_raises_journalerror_naming_it_changes_nothing(tmp_path,
                                                                                 kind, how):
    # A segment that cannot be read raised IsADirectoryError/FileNotFoundError from read_journal,
    # read_trades, recovery and inspect: the readers' one exception is JournalError.
    eng, d = journaled(tmp_path, "j")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.submit(1, 2, 1, 100, 2)
    eng.close()
    last = _last_segment(d, KIND_COMMANDS)
    with open(last, "ab") as fh:
        fh.write(b"\x58\0\0\0torn")                  # a torn tail recovery() would cut
    name = d / f"{_j.SEGMENT_PREFIX[kind]}-{10**6:020d}{_j.SEGMENT_SUFFIX[kind]}"
    if how == "directory":
        name.mkdir()
    else:
        name.symlink_to(tmp_path / "nowhere")
    def files():
        return {n: os.lstat(d / n).st_size for n in os.listdir(d)}
    before = files()
    readers = [lambda: mc.Engine.recover(d, readonly=True), lambda: mc.Engine.recover(d),
               (lambda: read_journal(d)) if kind == KIND_COMMANDS else (lambda: read_trades(d))]
    for read in readers:
        with pytest.raises(JournalError, match="cannot be read") as err:
            read()
        assert err.value.segment == str(name) and "valid records follow" not in str(err.value)
    assert files() == before
    info = inspect(d)["journals"]["commands" if kind == KIND_COMMANDS else "trades"]
    assert info["corrupt"]["file"] == name.name and "cannot be read" in info["corrupt"]["reason"]
    assert info["segments"][-1]["file"] == name.name

def test_recovery_invalid_newest_snapshot_skipped_and_reported(tmp_path):
    steps, cmds = make_flow(8, 600)
    eng, d = journaled(tmp_path)
    apply_steps(eng, steps[:200], cmds)
    eng.snapshot()
    apply_steps(eng, steps[200:400], cmds)
    newest = eng.snapshot()
    apply_steps(eng, steps[400:], cmds)
    eng.close()
    with open(newest, "r+b") as fh:
        fh.seek(100)
        b = fh.read(1)
        fh.seek(100)
        fh.write(bytes([b[0] ^ 0x40]))
    rec = mc.Engine.recover(d, readonly=True)
    rep = rec.recovery_report
    assert rep.snapshot_seq == 200 and len(rep.skipped_snapshots) == 1
    assert "CRC" in rep.skipped_snapshots[0][1]
    assert rec.state_hash() == eng.state_hash()


# ---- a snapshot belongs to the journal it was taken from ----

def _book_of_bids(eng, d, oids, price0=100):
    for k, oid in enumerate(oids):
        eng.submit(1, oid, mc.Side.BUY, price0 + k, 1)


def test_engine_new_journal_in_dir_with_only_snapshots_refused(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    _book_of_bids(eng, d, [1, 2])
    eng.snapshot()
    eng.close()
    for kind in (KIND_COMMANDS, KIND_TRADES):       # allowed: segments before the snapshot
        for _, f in segment_files(d, kind):
            os.unlink(f)
    before = sorted(os.listdir(d))
    with pytest.raises(ValueError, match="snapshot files but no journal"):
        mc.Engine(journal=d)
    assert sorted(os.listdir(d)) == before
    rec = mc.Engine.recover(d)                       # the documented way on
    assert rec.state_hash() == eng.state_hash()
    rec.close()


def test_snapshot_into_a_missing_parent_refused_as_engine_journal_is(tmp_path):
    # snapshot(DIR) made every missing level above DIR, where Engine(journal=DIR) and every
    # other output refuse a missing parent: a mistyped parent put the snapshot somewhere new
    missing = tmp_path / "typo"
    for eng in (mc.Engine(), journaled(tmp_path)[0]):
        eng.add_symbol(1)
        eng.submit(1, 1, 0, 100, 5)
        with pytest.raises(FileNotFoundError, match=f"no directory {missing}") as err:
            eng.snapshot(missing / "snaps")
        assert err.value.filename == str(missing / "snaps")
        assert not os.path.lexists(missing)
        # DIR itself is made, as Engine(journal=DIR) makes it
        made = eng.snapshot(tmp_path / f"snaps{int(eng.journal is not None)}")
        assert mc.durability.load_snapshot(made)[0].state_hash() == eng.state_hash()
        eng.close()
    with pytest.raises(FileNotFoundError, match=f"no directory {missing}") as journal_err:
        mc.Engine(journal=missing / "snaps")
    assert str(journal_err.value) == str(err.value)


def test_list_snapshots_of_a_missing_directory_names_it_as_recovery_does(tmp_path):
    # a bare "[Errno 2] No such file or directory" from os.listdir; the type is kept, the
    # words are recovery's and inspect's for a missing journal directory
    missing = tmp_path / "typo"
    with pytest.raises(mc.durability.JournalError) as rec_err:
        mc.Engine.recover(missing, readonly=True)
    with pytest.raises(FileNotFoundError) as err:
        mc.durability.list_snapshots(missing)
    assert str(rec_err.value) in str(err.value)
    assert err.value.filename == str(missing) and err.value.errno == errno.ENOENT
    assert not os.path.lexists(missing)


@pytest.mark.parametrize("bad", [None, 3, 1.5])
def test_list_snapshots_or_scan_journal_of_no_path_refused_not_read_as_the_cwd(
        tmp_path, monkeypatch, bad):
    # os.listdir(None) lists the current directory and an int is taken for a descriptor: []
    # (or an empty scan) came back for a directory never named, or a TypeError from deep
    # inside after reading it
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match="snapshot directory must be a str or os.PathLike"):
        mc.durability.list_snapshots(bad)
    with pytest.raises(TypeError, match="journal directory must be a str or os.PathLike"):
        mc.durability.scan_journal(bad)


def _assert_recovers_without_foreign_snapshot(d, live):
    # the snapshot in d came from another journal: recovery refuses it and replays instead
    rec = mc.Engine.recover(d, readonly=True)
    rep = rec.recovery_report
    assert rep.snapshot is None and "another journal" in rep.skipped_snapshots[0][1]
    assert rec.state_hash() == live.state_hash()


def test_snapshot_of_unjournaled_engine_into_journal_dir_refused_recovery_unchanged(tmp_path):
    # An engine without a journal writes snapshot-0 with no anchor: written into a journal's
    # directory, recovery took it for that journal's state before its first record and rebuilt
    # its books too, a state never journaled.
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.close()
    other = mc.Engine()
    other.add_symbol(2)
    other.submit(2, 50, 1, 200, 9)
    before = _files_and_sizes(d)
    with pytest.raises(ValueError, match="holds a journal"):
        other.snapshot(d)
    assert _files_and_sizes(d) == before
    rec = mc.Engine.recover(d, readonly=True)
    assert rec.state_hash() == eng.state_hash() and list(rec.symbols) == [1]
    empty = tmp_path / "seed"                        # a directory without a journal: written
    assert os.path.basename(other.snapshot(empty)) == f"snapshot-{0:020d}.mcs"


def test_recovery_no_snapshot_of_journal_started_from_seed_replays_from_the_seed(tmp_path):
    # A journal continued from a seed snapshot-0 starts from that state; snapshot=False replayed
    # it from an empty engine and failed with "replay diverged ... different matching version?"
    seed = mc.Engine()
    seed.add_symbol(2)
    seed.submit(2, 50, mc.Side.SELL, 200, 9)
    d = tmp_path / "seeded"
    seed.snapshot(d)
    eng = mc.Engine.recover(d)
    assert eng.recovery_report.snapshot_seq == 0
    assert eng.submit(2, 51, mc.Side.BUY, 200, 4) == 4      # trades against the seed's order
    eng.submit(2, 52, mc.Side.BUY, 190, 3)
    eng.close()
    full = mc.Engine.recover(d, readonly=True, snapshot=False)
    assert full.state_hash() == eng.state_hash() == mc.Engine.recover(d, readonly=True).state_hash()
    assert full.recovery_report.replayed_commands == 2
    assert full.get(50) == (2, mc.Side.SELL, 200, 5)
    from matchcore.__main__ import main
    assert main(["recover", str(d), "--no-snapshot", "--json", str(tmp_path / "r.json")]) == 0


def test_recovery_snapshot_of_another_journal_skipped(tmp_path):
    old, d_old = journaled(tmp_path, "old")
    old.add_symbol(1, "AAPL")
    _book_of_bids(old, d_old, [1, 2])
    snap = old.snapshot()                            # seq 3
    old.close()
    new, d = journaled(tmp_path, "new")
    new.add_symbol(1, "AAPL")
    for k in range(3):
        new.submit(1, 10 + k, mc.Side.SELL, 200 + k, 5)
    new.close()
    shutil.copy(snap, d)                             # e.g. restored from the wrong backup
    _assert_recovers_without_foreign_snapshot(d, new)


def test_recovery_after_manual_cut_sets_ahead_snapshot_aside(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1, "AAPL")                        # seq 1
    _book_of_bids(eng, d, range(2, 11))              # seq 2..10
    snap = eng.snapshot()
    eng.close()
    rec = read_journal(d)
    off5 = int(rec["index"]["offset"][rec["index"]["seq"] == 5][0])
    seg = _last_segment(d)
    with open(seg, "r+b") as fh:
        fh.seek(off5 + 40)
        b = fh.read(1)
        fh.seek(off5 + 40)
        fh.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(JournalError) as err:
        mc.Engine.recover(d)
    os.truncate(err.value.segment, err.value.offset)     # the README's repair: accept the loss
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert "ahead of the journal" in ro.skipped_snapshots[0][1] and os.path.exists(snap)
    eng = mc.Engine.recover(d)
    rep = eng.recovery_report
    assert rep.last_seq == 4 and rep.set_aside == [(snap, snap + ".unused")]
    assert not os.path.exists(snap) and os.path.exists(snap + ".unused") and rep.modified
    assert "renamed" in rep.summary()
    for k in range(7):                               # journals past the old snapshot's seq
        eng.submit(1, 100 + k, mc.Side.SELL, 300 + k, 1)
    eng.close()
    again = mc.Engine.recover(d, readonly=True)
    assert again.state_hash() == eng.state_hash() and again.recovery_report.snapshot is None


def _journal_cut_behind_its_snapshot(tmp_path):
    # a snapshot at seq 10, then the journal cut after seq 4 (the README's repair of a corrupt
    # record 5): the snapshot is ahead of the journal
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    _book_of_bids(eng, d, range(2, 11))
    snap = eng.snapshot()                            # seq 10
    eng.close()
    rec = read_journal(d)
    os.truncate(_last_segment(d), int(rec["index"]["offset"][rec["index"]["seq"] == 5][0]))
    return d, snap


def test_recovery_full_replay_also_sets_ahead_snapshot_aside(tmp_path):
    d, snap = _journal_cut_behind_its_snapshot(tmp_path)
    eng = mc.Engine.recover(d, snapshot=False)
    rep = eng.recovery_report
    assert rep.set_aside == [(snap, snap + ".unused")] and "ahead" in rep.skipped_snapshots[0][1]
    assert not os.path.exists(snap)
    eng.close()


def test_recovery_ahead_snapshot_restored_later_still_refused_by_anchor(tmp_path):
    d, snap = _journal_cut_behind_its_snapshot(tmp_path)
    eng = mc.Engine.recover(d)
    os.rename(snap + ".unused", snap)                 # put back by hand
    for k in range(7):
        eng.submit(1, 100 + k, mc.Side.SELL, 300 + k, 1)
    eng.close()
    _assert_recovers_without_foreign_snapshot(d, eng)


def test_recovery_snapshot_anchor_carried_and_old_unanchored_files_still_used(tmp_path):
    import zlib
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    _book_of_bids(eng, d, [1, 2])
    first = eng.snapshot()
    eng.close()
    anchor = load_snapshot(first)[1]["anchor"]
    assert anchor is not None
    rec = mc.Engine.recover(d)                       # nothing journaled after the snapshot:
    second = rec.snapshot(tmp_path / "again")        # the anchor is the journal's last record
    rec.close()
    assert load_snapshot(second)[1]["anchor"] == anchor
    keep = tmp_path / "keep"
    shutil.copytree(d, keep)
    for kind in (KIND_COMMANDS, KIND_TRADES):        # now only the snapshot holds record 3's
        for _, f in segment_files(keep, kind):       # CRC
            os.unlink(f)
    rec = mc.Engine.recover(keep)
    third = rec.snapshot(tmp_path / "third")
    rec.close()
    assert load_snapshot(third)[1]["anchor"] == anchor
    data = bytearray(open(first, "rb").read())       # as written before anchors existed
    struct.pack_into("<II", data, 40, 1, 0)           # flags: journaled only; anchor 0
    struct.pack_into("<I", data, len(data) - 8, zlib.crc32(bytes(data[:-8])))
    open(first, "wb").write(bytes(data))
    assert load_snapshot(first)[1]["anchor"] is None
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert rep.snapshot == first


def test_engine_fsync_without_journal_raises_typeerror():
    with pytest.raises(TypeError, match="journal=DIR"):
        mc.Engine(fsync="always")


def test_engine_journaled_refuses_c_table_handle(tmp_path):
    eng, d = journaled(tmp_path)
    with pytest.raises(ValueError, match="bypass the journal"):
        eng.address
    assert mc.Engine().address != 0


def test_trades_lost_before_snapshot_rewritten_by_full_replay(tmp_path):
    steps, cmds = make_flow(18, 900)
    eng, d = journaled(tmp_path)
    apply_steps(eng, steps[:600], cmds)
    eng.snapshot()
    apply_steps(eng, steps[600:], cmds)
    eng.close()
    full = read_trades(d)
    for _, f in segment_files(d, KIND_TRADES):
        os.unlink(f)                                 # the whole trade journal is gone
    ro = mc.Engine.recover(d, readonly=True)         # read-only: snapshot used, loss reported
    assert ro.recovery_report.snapshot is not None and ro.recovery_report.trades_missing > 0
    # ... as fills a writing recovery writes again, not as lost (what it said before)
    assert ro.recovery_report.trades_rewritable
    assert "write them again" in ro.recovery_report.summary()
    assert "are lost" not in ro.recovery_report.summary()
    rec = mc.Engine.recover(d)
    rep = rec.recovery_report
    assert rep.snapshot is None and "trade journal" in rep.skipped_snapshots[-1][1]
    assert rec.state_hash() == eng.state_hash() and rep.trades_missing == 0
    rec.close()
    again = read_trades(d)
    assert len(again) == len(full) > 0
    for c in again.dtype.names:
        if c != "journal_ts_ns":
            assert np.array_equal(again[c], full[c]), c


def test_recovery_cancels_after_last_fill_before_snapshot_no_fills_reported_lost(tmp_path):
    # A cancel's recorded outcome is the qty it removed, not a fill: counted as one, recovery
    # replayed the whole journal (all segments there) or warned of fills lost (old segments
    # deleted, as the README allows) after any quiet spell of cancels before a snapshot.
    S, B = mc.Side.SELL, mc.Side.BUY
    eng, d = journaled(tmp_path, segment_bytes=_j.SEG_HEADER + _j.MAX_RECORD)
    eng.add_symbol(1)
    eng.submit(1, 1, S, 100, 5)
    eng.submit(1, 2, B, 100, 5)                      # the only fill (command 3)
    for k in range(200):
        eng.submit(1, 10 + k, B, 90, 1)
        eng.cancel(10 + k)
    snap = eng.snapshot()
    eng.close()
    for readonly in (True, False):
        rec = mc.Engine.recover(d, readonly=readonly)
        rep = rec.recovery_report
        assert rep.snapshot == snap and rep.replayed_commands == 0, rep.summary()
        assert rep.trades_missing == 0 and "WARNING" not in rep.summary()
        assert rec.state_hash() == eng.state_hash()
        rec.close()
    for _, f in segment_files(d, KIND_COMMANDS)[:-1]:
        os.unlink(f)                                 # wholly before the snapshot
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert rep.snapshot == snap and rep.trades_missing == 0 and "WARNING" not in rep.summary()
    assert read_trades(d)["cmd_seq"].tolist() == [3]

def _session_without_trade_capture(tmp_path, quiet=0, **kw):
    S, B = mc.Side.SELL, mc.Side.BUY
    eng, d = journaled(tmp_path, **kw)
    eng.add_symbol(1)
    eng.submit(1, 1, S, 100, 500)
    eng.submit(1, 2, B, 100, 2)                      # fill of command 3: captured
    eng.close()
    eng = mc.Engine.recover(d, trades=False, fsync="never", **kw)
    oid = 3
    for k in range(quiet):                           # commands without fills
        eng.submit(1, 10_000 + k, B, 50, 1)
    eng.submit(1, oid, B, 100, 1)                    # fill: not captured
    snap = eng.snapshot()
    eng.submit(1, oid + 1, B, 100, 1)                # fill after the snapshot: not captured
    eng.close()
    return eng, d, snap


def test_trades_missed_while_capture_off_rewritten_or_reported(tmp_path):
    eng, d, snap = _session_without_trade_capture(tmp_path)
    assert load_snapshot(snap)[1]["trades"] is False
    # (with trade capture: without it, the journal's own choice since the session, no fill is
    # missing)
    ro = mc.Engine.recover(d, readonly=True, trades=True).recovery_report
    assert ro.snapshot == snap and ro.trades_missing == 1 and "WARNING" in ro.summary()
    rec = mc.Engine.recover(d, trades=True)
    rep = rec.recovery_report
    assert rep.snapshot is None and rep.trades_missing == 0 and rep.trades_rewritten == 2
    assert rec.state_hash() == eng.state_hash()
    rec.close()
    assert read_trades(d)["cmd_seq"].tolist() == [3, 4, 5]


def test_trades_missed_while_capture_off_counted_over_every_segment(tmp_path):
    # The fills known lost were counted per command segment and the largest count kept: with
    # the filled commands spread over six segments, a report said 51 of 300 lost fills.
    eng, d = journaled(tmp_path, trades=False, segment_bytes=_j.SEG_HEADER + _j.MAX_RECORD)
    eng.add_symbol(1)
    fills = 0
    for oid in range(1, 601):                        # every second submit fills one lot
        fills += eng.submit(1, oid, oid % 2, 100, 1) > 0
    snap = eng.snapshot()
    eng.close()
    assert len(segment_files(d, KIND_COMMANDS)) > 2 and fills == 300
    # (with trade capture: without it, the journal's own choice, no fill is missing)
    rep = mc.Engine.recover(d, readonly=True, trades=True).recovery_report
    assert rep.snapshot == snap and rep.trades_missing == fills
    assert f"WARNING: {fills} fill record(s)" in rep.summary()
    # a journal whose first segments are gone cannot be replayed whole: lost, not rewritable
    for _, f in segment_files(d, KIND_COMMANDS)[:1]:
        os.unlink(f)
    rep = mc.Engine.recover(d, readonly=True, trades=True).recovery_report
    assert rep.trades_missing > 0 and not rep.trades_rewritable and "are lost" in rep.summary()



def test_trades_lost_before_a_snapshot_without_capture_reported_as_a_lower_bound(tmp_path):
    # Each filled command made two fill records, the snapshot was taken without trade capture
    # and the journal's first segment is gone: the fills cannot be counted, only the commands
    # that filled, and the warning gave that count as the number of fill records lost
    eng, d = journaled(tmp_path, trades=False, segment_bytes=_j.SEG_HEADER + _j.MAX_RECORD)
    eng.add_symbol(1)
    filled = 0
    for oid in range(1, 301, 3):
        eng.submit(1, oid, mc.Side.BUY, 100, 1)
        eng.submit(1, oid + 1, mc.Side.BUY, 100, 1)
        filled += eng.submit(1, oid + 2, mc.Side.SELL, 100, 2) > 0
    eng.snapshot()
    eng.close()
    os.unlink(segment_files(d, KIND_COMMANDS)[0][1])
    held = {int(s) for s in read_journal(d)["seqs"]}
    lost = sum(1 for seq in held if (seq - 1) % 3 == 0)  # the sells the journal still holds
    for readonly in (True, False):
        rec = mc.Engine.recover(d, readonly=readonly, trades=True)
        rep = rec.recovery_report
        rec.close()
        assert not rep.trades_rewritable and rep.trades_missing == lost < 2 * lost
        assert rep.trades_missing_at_least
        assert f"WARNING: at least {lost} fill record(s) before the snapshot are lost" in (
            rep.summary())
    assert filled > lost


def test_trades_lost_before_a_snapshot_with_capture_counted_exactly(tmp_path):
    # the snapshot's trade seq counts every fill: no "at least"
    eng, d = journaled(tmp_path, segment_bytes=_j.SEG_HEADER + _j.MAX_RECORD)
    eng.add_symbol(1)
    for oid in range(1, 301, 3):
        eng.submit(1, oid, mc.Side.BUY, 100, 1)
        eng.submit(1, oid + 1, mc.Side.BUY, 100, 1)
        eng.submit(1, oid + 2, mc.Side.SELL, 100, 2)
    eng.snapshot()
    eng.close()
    fills = len(read_trades(d))
    os.unlink(segment_files(d, KIND_COMMANDS)[0][1])
    for _, f in segment_files(d, KIND_TRADES):
        os.unlink(f)
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert rep.trades_missing == fills and not rep.trades_missing_at_least
    assert f"WARNING: {fills} fill record(s) before the snapshot are lost" in rep.summary()


def test_recovery_without_trade_capture_cuts_fills_of_commands_it_cuts(tmp_path):
    # recover(trades=False) cut a torn command tail but left that command's fills in the trade
    # journal; the next command took its seq, and a recovery with capture then kept those
    # fills as the new command's: a trade that never happened.
    S, B = mc.Side.SELL, mc.Side.BUY
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, S, 100, 50)
    eng.submit(1, 2, B, 100, 5)                      # command 3: fill 5
    eng.submit(1, 3, B, 100, 7)                      # command 4: fill 7, its record torn below
    eng.close()
    seg = _last_segment(d)
    os.truncate(seg, os.path.getsize(seg) - 40)
    rec = mc.Engine.recover(d, trades=False, fsync="never")
    rep = rec.recovery_report
    assert rep.last_seq == 3 and rep.modified and rep.trades_kept_through == 3
    assert read_trades(d)["cmd_seq"].tolist() == [3]
    rec.submit(1, 9, S, 120, 1)                      # command 4 now: rests, fills nothing
    rec.close()
    rec = mc.Engine.recover(d)
    live = mc.Engine()
    live.add_symbol(1)
    live.submit(1, 1, S, 100, 50)
    live.submit(1, 2, B, 100, 5)
    live.submit(1, 9, S, 120, 1)
    assert rec.state_hash() == live.state_hash()
    rec.close()
    t = read_trades(d)
    assert t["cmd_seq"].tolist() == [3] and t["qty"].tolist() == [5]

def test_trades_missed_while_capture_off_unverifiable_reported(tmp_path):
    eng, d, snap = _session_without_trade_capture(
        tmp_path, segment_bytes=_j.SEG_HEADER + _j.MAX_RECORD, quiet=300)
    seq = load_snapshot(snap)[1]["seq"]
    segs = segment_files(d, KIND_COMMANDS)
    for (first, f), (nxt, _) in zip(segs, segs[1:]):
        if nxt - 1 <= seq:                           # allowed: wholly before the snapshot
            os.unlink(f)
    first = segment_files(d, KIND_COMMANDS)[0][0]
    assert first > 4
    # (with trade capture: the segments left record the session's trades=False)
    rep = mc.Engine.recover(d, readonly=True, trades=True).recovery_report
    assert rep.snapshot == snap
    assert rep.trades_unverified == (4, first - 1) and "cannot be checked" in rep.summary()
    assert rep.trades_missing == (1 if first <= seq else 0)


def test_engine_second_writer_on_same_dir_refused_until_closed(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.sync()
    with pytest.raises(JournalError, match="in use"):
        mc.Engine.recover(d)
    with pytest.raises(JournalError, match="in use"):
        mc.Engine(journal=d)
    assert mc.Engine.recover(d, readonly=True).symbols == {1: None}   # readers need no lock
    eng.close()
    rec = mc.Engine.recover(d)
    assert rec.symbols == {1: None}


@pytest.mark.parametrize("header_bytes", [0, 1, 31, 63])
def test_engine_journal_first_segment_header_torn_new_engine_takes_directory(tmp_path,
                                                                              header_bytes):
    # A crash inside Engine(journal=DIR), between creating journal-1 and writing its header,
    # leaves a segment that holds no record (and no trade segment yet). Recovery finds nothing
    # to recover, so a new engine must be able to start there: both routes refused it.
    d = tmp_path / "j"
    mc.Engine(journal=d).close()
    os.truncate(_last_segment(d), header_bytes)
    os.unlink(_last_segment(d, KIND_TRADES))
    with pytest.raises(JournalError, match="creation was cut short"):
        mc.Engine.recover(d)
    eng = mc.Engine(journal=d, stp=mc.STP.CANCEL_TAKER)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    rec = mc.Engine.recover(d, readonly=True)
    assert rec.stp == mc.STP.CANCEL_TAKER and rec.get(1) == (1, 0, 100, 5)
    assert rec.recovery_report.last_seq == 2 and rec.recovery_report.torn_tail is None


def test_engine_journal_torn_first_header_with_snapshot_or_trades_still_refused(tmp_path):
    d = tmp_path / "j"
    eng = mc.Engine(journal=d)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.SELL, 100, 5)
    eng.submit(1, 2, mc.Side.BUY, 100, 5)       # a fill: the trade journal holds a record
    eng.close()
    os.truncate(_last_segment(d), 10)
    # recovery refuses it (no record, no snapshot): "use Engine.recover" sent the user to
    # "nothing to recover (no journal, no snapshot)", of a directory holding both journals
    with pytest.raises(JournalError, match="nothing to recover") as refused:
        mc.Engine.recover(d)
    why = str(refused.value)[len(f"{d}: "):]
    assert "journal-00000000000000000001.mcj" in why and "torn segment header" in why
    with pytest.raises(ValueError) as info:
        mc.Engine(journal=d)
    assert str(info.value) == (f"{d} cannot be continued by Engine.recover ({why}); move "
                               f"its files away, or give a directory without journal "
                               f"segments or snapshots")
    assert os.path.getsize(_last_segment(d)) == 10 and read_trades(d)["qty"].tolist() == [5]
    d2 = tmp_path / "j2"
    eng = mc.Engine(journal=d2)
    eng.snapshot()
    eng.close()
    os.truncate(_last_segment(d2), 10)
    with pytest.raises(ValueError, match="already holds a journal"):
        mc.Engine(journal=d2)
    assert os.path.getsize(_last_segment(d2)) == 10


def test_recovery_syncs_every_kept_segment_before_durable_seq_counts_them(tmp_path):
    # An engine under fsync="never" is killed: its records may be in the page cache only, its
    # closed segments too (a roll under "never" does not fsync). The recovered writer counts
    # them all as durable (durable_seq), so recovery must have synced every segment it keeps.
    steps, cmds = make_flow(41, 900)
    d = tmp_path / "j"
    pid = os.fork()
    if pid == 0:
        try:
            eng = mc.Engine(journal=d, fsync="never", segment_bytes=16384)
            apply_steps(eng, steps, cmds)
            os.kill(os.getpid(), 9)
        finally:
            os._exit(1)
    os.waitpid(pid, 0)
    n_cmd, n_trd = len(segment_files(d, KIND_COMMANDS)), len(segment_files(d, KIND_TRADES))
    assert n_cmd > 3 and n_trd > 1
    ro = mc.Engine.recover(d, readonly=True)
    assert ro.recovery_report.synced_files == 0            # readonly changes nothing
    eng = mc.Engine.recover(d, fsync="always")
    rep = eng.recovery_report
    assert rep.synced_files == n_cmd + n_trd
    assert eng.durable_seq == eng.journal_seq == rep.last_seq == len(steps)
    eng.close()


def test_journal_sync_after_rolls_under_never_reaches_closed_segments(tmp_path):
    # Under fsync="never" a segment roll closes the old segment without fsync. sync() ("write
    # and fsync everything appended so far, whatever the policy") fsynced only the current
    # segment, yet set durable_seq past the records of the closed ones.
    eng = mc.Engine(journal=tmp_path / "j", fsync="never", segment_bytes=16384)
    eng.add_symbol(1)
    for i in range(700):
        eng.submit(1, i + 1, mc.Side.BUY, 100, 1)
    jc = eng.journal
    assert jc.segments_created >= 3 and jc.fsyncs == 0
    assert eng.sync() == eng.journal_seq == eng.durable_seq
    assert jc.fsyncs == 2                # the file system (closed segments), then the current
    eng.submit(1, 10_000, mc.Side.BUY, 100, 1)
    eng.sync()
    assert jc.fsyncs == 3                # no roll since: the current segment alone
    eng.close()


@pytest.mark.parametrize("config", ["add_symbol", "set_limits", "set_reference_price"])
def test_engine_config_change_while_another_thread_journals_commands_recovers_same(tmp_path,
                                                                                   config):
    # A config record was appended without the GIL and without holding the engine: a command
    # journaled meanwhile by another thread wrote into the same buffer, and recovery refused
    # the journal ("sequence break"). Each call now either runs whole or raises BusyError.
    import threading

    eng = mc.Engine(journal=tmp_path / "j", fsync="never")
    for s in range(4):
        eng.add_symbol(s, f"S{s}")
    stop = threading.Event()
    unexpected = []
    done = {"config": 0, "commands": 0}

    def commands():
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 3:
                    eng.submit(i % 4, i, i % 2, 90 + i % 20, 1 + i % 7)
                else:
                    eng.cancel(i - 2)
                done["commands"] += 1
            except (mc.BusyError, mc.OrderRejected):
                pass
            except BaseException as e:     # pragma: no cover - reported below
                unexpected.append(e)
            time.sleep(0)      # a moment with the engine idle: the other thread's calls get in

    def configs():
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if config == "add_symbol":
                    eng.add_symbol(1000 + i, f"N{i}", capacity=1)
                elif config == "set_limits":
                    eng.set_limits(i % 4, max_qty=i % 50)
                else:
                    eng.set_reference_price(i % 4, i % 200)
                done["config"] += 1
            except mc.BusyError:
                pass
            except BaseException as e:     # pragma: no cover - reported below
                unexpected.append(e)
            time.sleep(0)

    threads = [threading.Thread(target=commands), threading.Thread(target=configs)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and min(done.values()) < 2000:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert not unexpected and min(done.values()) > 0, done
    eng.check_invariants()
    state = eng.state_hash()
    eng.close()
    rec = mc.Engine.recover(tmp_path / "j", snapshot=False)
    assert rec.state_hash() == state
    rec.close()


def test_engine_journal_forked_child_cannot_write_and_does_not_hold_the_lock(tmp_path):
    # A child forked from a journaled engine's process (a multiprocessing worker) kept a copy
    # of the LOCK descriptor: after the parent's close(), recover() failed with "its LOCK is
    # held" for as long as the child lived. And the child's own calls were written into the
    # parent's journal, between the parent's records.
    from test_durability_kill import _fork

    d = str(tmp_path / "j")
    eng = mc.Engine(journal=d, fsync="always")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    go_r, go_w = os.pipe()

    def child(w):
        os.close(go_w)
        before = eng.state_hash()
        try:
            eng.submit(2, 1, 1, 101, 5)
            os.write(w, b"wrote")
        except mc.durability.JournalError as exc:
            ok = "forked from it cannot write it" in str(exc) and eng.state_hash() == before
            os.write(w, b"refused" if ok else b"bad")
        os.read(go_r, 1)                        # alive until the parent has recovered

    pid, r = _fork(child)
    os.close(go_r)
    try:
        assert os.read(r, 16) == b"refused"
        want = eng.state_hash()
        eng.close()
        rec = mc.Engine.recover(d)              # the child still lives
        assert rec.state_hash() == want
        assert mc.durability.read_journal(d)["seqs"].tolist() == [2]   # the parent's submit
        rec.close()
    finally:
        os.write(go_w, b"x")
        os.close(go_w)
        os.close(r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


_RECOVER_OOM_SCRIPT = r"""
import resource, sys
import matchcore as mc
from matchcore.durability import JournalError

d, first, step, marker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
# recovery imports some modules when first used (matchcore._tempfiles: secrets, random,
# hashlib's shared libraries); loaded under the limit they fail with ImportError, which is the
# loader's, not the engine's. A read-only recovery (it changes nothing) loads them first.
import matchcore._tempfiles
mc.Engine.recover(d, readonly=True).close()
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
ours = 0
for mib in range(first, 400, step):
    resource.setrlimit(resource.RLIMIT_AS, (vm + mib * 2**20, hard))
    try:
        mc.Engine.recover(d, fsync="never").close()
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        break
    except JournalError as ex:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        print("JournalError", mib, ex)
        sys.exit(1)
    except MemoryError as ex:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        # numpy or Python may run out first (loading a segment): only the engine's own
        # exception says where the replay stopped
        ours += marker in str(ex)
print("engine MemoryErrors", ours)
sys.exit(0 if ours else 2)
"""


def _recover_under_growing_memory_limits(d, first, step, marker):
    """Recover d in a child process under address-space limits growing from ``first`` MiB
    above its size by ``step``: each try that runs out of memory must raise MemoryError (one
    of them with ``marker`` in its message), never JournalError, until one succeeds."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _RECOVER_OOM_SCRIPT, str(d), str(first), str(step),
                        marker], capture_output=True, text=True, env=dict(os.environ),
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_recover_out_of_memory_in_replay_raises_memoryerror_not_divergence(tmp_path):
    # A command the engine ran out of memory for during recovery's replay came out as
    # -MC_ERR_NOMEM, unequal to its journaled outcome: recovery raised JournalError "replay
    # diverged ... (journal written by a different matching version?)", the error that tells
    # the user to cut the journal at that offset. It is MemoryError now, and a recovery with
    # the memory it needs rebuilds everything, the fills rewritten by the failed tries included.
    n = 200_000
    cmds = np.zeros(n, mc.COMMAND_DTYPE)
    cmds["order_id"] = np.arange(1, n + 1)
    cmds["side"] = np.arange(n) % 2
    cmds["price"] = np.where(cmds["side"] == 0, 1 + np.arange(n) % 500, 1000 + np.arange(n) % 500)
    cmds["qty"] = 3
    # takers every 97 commands: fills for the trade journal
    cmds["price"][::97] = np.where(cmds["side"][::97] == 0, 1200, 300)
    eng, d = journaled(tmp_path)
    eng.add_symbol(0)
    eng.process(cmds)
    want = eng.state_hash()
    eng.close()
    trades = read_trades(d)
    assert len(trades) > 1000
    os.truncate(_last_segment(d, KIND_TRADES), _j.SEG_HEADER)
    _recover_under_growing_memory_limits(d, 24, 8, "replaying the journal at seq")
    _assert_recovers_with_trades(d, want, trades)


def test_recover_out_of_memory_in_replayed_add_symbol_raises_memoryerror(tmp_path):
    # A replayed add_symbol preallocates its journaled capacity (at most what the journal can
    # place): running out of memory there was reported as JournalError "replay of add_symbol
    # ... failed: ", the error whose remedy is to cut the journal at that record.
    n = 400_000
    cmds = np.zeros(n, mc.COMMAND_DTYPE)
    cmds["kind"] = int(mc.CommandKind.CANCEL)
    cmds["order_id"] = np.arange(1, n + 1)
    eng, d = journaled(tmp_path)
    eng.add_symbol(0, capacity=n)
    eng.submit(0, 10**9, 0, 100, 5)
    eng.process(cmds)
    want = eng.state_hash()
    eng.close()
    _recover_under_growing_memory_limits(d, 16, 6, "replaying the journal at seq 1 (add_symbol)")
    rec = mc.Engine.recover(d)
    assert rec.state_hash() == want and rec.get(10**9) == (0, 0, 100, 5)
    rec.close()


def _trade_tail_lost(tmp_path):
    """A journal with a snapshot whose trade journal lost the fills of its last 100 commands
    (a torn tail left): (directory, the trades before, how many of them are kept)."""
    from durability_checks import _last_segment
    steps, cmds = make_flow(17, 500)
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="batch")
    apply_steps(eng, steps[:250], cmds)
    eng.snapshot()
    apply_steps(eng, steps[250:], cmds)
    eng.close()
    full = mc.durability.read_trades(d)
    seg = _last_segment(d, KIND_TRADES)
    keep = int(np.flatnonzero(full["cmd_seq"] > eng.journal_seq - 100)[0])
    cut = (len(full) - keep) * _j.TRADE_RECORD_DTYPE.itemsize
    assert 0 < keep < len(full) and cut < os.path.getsize(seg) - _j.SEG_HEADER
    with open(seg, "r+b") as fh:                        # the last records lost, a torn tail left
        fh.truncate(os.path.getsize(seg) - cut + 10)
    return d, full, keep


def test_recover_readonly_reports_the_fills_repair_would_rewrite_after_the_snapshot(tmp_path):
    # the trade journal lacks fills of commands after the snapshot (its tail lost): read-only
    # recovery said "rewrote 0 fills" where --repair rewrites them, so an operator checking
    # the directory first saw nothing missing
    d, full, keep = _trade_tail_lost(tmp_path)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.snapshot is not None and ro.trades_missing == 0
    rw = mc.Engine.recover(d)
    rw.close()
    rewritten = rw.recovery_report.trades_rewritten
    assert rewritten > 0 and ro.trades_rewritten == 0
    assert ro.trades_to_rewrite == rewritten
    assert f"{rewritten} fills to rewrite" in ro.summary()
    assert len(mc.durability.read_trades(d)) == len(full)


def test_recover_rewritten_fills_carry_their_command_journal_time(tmp_path):
    # fills written again by recovery carried the recovery's wall clock as journal_ts_ns, not
    # the time their command was journaled: a trade report by journal time put them hours or
    # days late, and nothing told them from fills made then
    d, full, keep = _trade_tail_lost(tmp_path)
    mc.Engine.recover(d).close()
    got = mc.durability.read_trades(d)
    assert len(got) == len(full) and np.array_equal(got["seq"], full["seq"])
    idx = mc.durability.read_journal(d)["index"]
    cmd_ts = dict(zip(idx["seq"].tolist(), idx["ts_ns"].tolist()))
    want = [cmd_ts[c] for c in got["cmd_seq"][keep:].tolist()]
    assert got["journal_ts_ns"][keep:].tolist() == want


def test_recover_rewritten_fills_equal_live_ones_in_every_field_but_journal_time(tmp_path):
    # what the README promises of fills recovery writes again: every field of the live run's,
    # except journal_ts_ns, which is the command record's journal time where the live fill
    # carries the trade journal's own clock reading, taken after the command was journaled
    # (both CLOCK_REALTIME, which may step: their order is not asserted)
    d, full, keep = _trade_tail_lost(tmp_path)
    mc.Engine.recover(d).close()
    got = mc.durability.read_trades(d)
    for c in got.dtype.names:
        if c != "journal_ts_ns":
            assert np.array_equal(got[c], full[c]), c
    idx = mc.durability.read_journal(d)["index"]
    cmd_ts = dict(zip(idx["seq"].tolist(), idx["ts_ns"].tolist()))
    live = [cmd_ts[c] for c in full["cmd_seq"][keep:].tolist()]
    assert got["journal_ts_ns"][keep:].tolist() == live


def _torn_trailing_segment(d, kind):
    """A trailing segment file of ``kind`` whose creation was cut short (a torn header, nothing
    valid): the file a writing recovery drops. Returns its path."""
    last = inspect(d)["journals"]["commands" if kind == KIND_COMMANDS else "trades"]["last_seq"]
    path = os.path.join(d, f"{_j.SEGMENT_PREFIX[kind]}-{last + 1:020d}{_j.SEGMENT_SUFFIX[kind]}")
    with open(path, "wb") as fh:
        fh.write(b"\0" * 10)
    return path


def test_recover_readonly_reports_files_repair_would_drop_and_snapshots_it_would_set_aside(
        tmp_path):
    # read-only recovery (matchcore recover without --repair) left dropped_files and set_aside
    # empty, and its summary named a dropped file only as a torn tail: an operator checking
    # the directory first was not told that --repair deletes one file and renames another
    d, snap = _journal_cut_behind_its_snapshot(tmp_path)
    torn = _torn_trailing_segment(d, KIND_COMMANDS)
    before = _files_and_sizes(d)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert _files_and_sizes(d) == before
    assert ro.dropped_files == [] and ro.set_aside == [] and not ro.modified
    assert ro.files_to_drop == [torn]
    assert ro.snapshots_to_set_aside == [(snap, snap + ".unused")]
    text = ro.summary()
    assert (f"would drop 1 trailing file(s) with nothing to keep (read-only: Engine.recover, "
            f"matchcore recover --repair drop them): {os.path.basename(torn)}") in text
    assert (f"would rename {os.path.basename(snap)} to {os.path.basename(snap)}.unused "
            f"(read-only: Engine.recover, matchcore recover --repair rename it)") in text
    assert "dropped 1" not in text and "renamed" not in text
    rw = mc.Engine.recover(d)
    rw.close()
    rep = rw.recovery_report
    assert rep.dropped_files == ro.files_to_drop and rep.set_aside == ro.snapshots_to_set_aside
    assert rep.cut_bytes == ro.bytes_to_cut
    assert rep.files_to_drop == [] and rep.snapshots_to_set_aside == [] and rep.bytes_to_cut == 0


def test_recover_readonly_full_replay_reports_snapshots_repair_would_set_aside(tmp_path):
    # snapshot=False read-only did not even look at the snapshots that --repair sets aside
    d, snap = _journal_cut_behind_its_snapshot(tmp_path)
    ro = mc.Engine.recover(d, snapshot=False, readonly=True).recovery_report
    assert os.path.exists(snap)
    assert ro.snapshots_to_set_aside == [(snap, snap + ".unused")]
    assert "ahead" in ro.skipped_snapshots[0][1]
    rw = mc.Engine.recover(d, snapshot=False)
    rw.close()
    assert rw.recovery_report.set_aside == ro.snapshots_to_set_aside


def test_recover_readonly_reports_the_trade_bytes_repair_would_cut(tmp_path):
    # fills of a command the command journal no longer holds: --repair cuts them from the
    # trade journal (cut_bytes), read-only said nothing of it
    d = journal_last_command_lost(tmp_path / "j")
    torn = _torn_trailing_segment(d, KIND_TRADES)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.bytes_to_cut == _j.TRADE_RECORD_DTYPE.itemsize and ro.files_to_drop == [torn]
    rw = mc.Engine.recover(d)
    rw.close()
    assert rw.recovery_report.cut_bytes == ro.bytes_to_cut
    assert rw.recovery_report.dropped_files == [torn]
    assert len(read_trades(d)) == 1


def test_recover_readonly_last_trade_seq_is_the_one_repair_reports(tmp_path):
    # the trade journal gone and the command segments before the snapshot deleted: read-only
    # said "N fills to rewrite, last trade seq 0" where --repair writes them after the
    # snapshot's trade seq and says "rewrote N fills, last trade seq <that + N>"
    steps, cmds = make_flow(3, 1500)
    eng, d = journaled(tmp_path, segment_bytes=16384)
    apply_steps(eng, steps[:1000], cmds)
    eng.snapshot()
    apply_steps(eng, steps[1000:], cmds)
    eng.close()
    segs = segment_files(d, KIND_COMMANDS)
    keep = max(i for i, (first, _) in enumerate(segs) if first <= eng.journal_seq - 500)
    assert keep > 0
    for _, f in segs[:keep] + segment_files(d, KIND_TRADES):
        os.unlink(f)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    rw = mc.Engine.recover(d)
    rw.close()
    rep = rw.recovery_report
    assert rep.trades_rewritten == ro.trades_to_rewrite > 0 and ro.trades_missing > 0
    assert ro.last_trade_seq == rep.last_trade_seq == read_trades(d)["seq"][-1]
    assert f"last trade seq {rep.last_trade_seq}" in ro.summary()


def test_recover_summary_does_not_call_dropped_trade_segments_of_cut_commands_empty(tmp_path):
    # the command journal's last segments lost: the trade segments holding only their fills
    # are dropped, and the summary said "dropped 1 trailing file(s) with nothing valid" of a
    # file full of valid fill records
    steps, cmds = make_flow(5, 3000)
    eng, d = journaled(tmp_path, segment_bytes=16384)
    apply_steps(eng, steps, cmds)
    eng.close()
    for _, f in segment_files(d, KIND_COMMANDS)[-3:]:
        os.unlink(f)
    last = segment_files(d, KIND_TRADES)[-1][1]
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    rw = mc.Engine.recover(d)
    rw.close()
    rep = rw.recovery_report
    assert ro.files_to_drop == rep.dropped_files == [last] and rep.trades_cut > 0
    for r, verb in ((ro, "would drop"), (rep, "dropped")):
        line = [ln for ln in r.summary().splitlines() if verb in ln][0]
        assert "nothing valid" not in line and "with nothing to keep" in line
        assert os.path.basename(last) in line


def test_recover_summary_says_a_torn_header_segment_was_dropped_not_cut(tmp_path):
    # a trailing segment whose header is torn is deleted, yet the summary said of it "torn
    # tail in <file> at offset 0 (torn segment header): cut", as if the file were still there
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    torn = _torn_trailing_segment(d, KIND_COMMANDS)
    rw = mc.Engine.recover(d)
    rw.close()
    rep = rw.recovery_report
    assert rep.dropped_files == [torn] and rep.cut_bytes == 0 and not os.path.exists(torn)
    line = [ln for ln in rep.summary().splitlines() if "torn tail" in ln][0]
    assert line.endswith(": dropped") and "cut" not in line


def test_engine_journal_in_directory_of_trade_segments_alone_does_not_advise_recover(tmp_path):
    # a directory holding only trade segments (the command journal moved away) was refused
    # with "use Engine.recover(DIR) to continue it", which then refuses it: nothing to recover
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.SELL, 100, 5)
    eng.submit(1, 2, mc.Side.BUY, 100, 5)
    eng.close()
    for _, f in segment_files(d, KIND_COMMANDS):
        os.unlink(f)
    before = _files_and_sizes(d)
    with pytest.raises(JournalError, match="nothing to recover"):
        mc.Engine.recover(d)
    with pytest.raises(ValueError) as err:
        mc.Engine(journal=d)
    msg = str(err.value)
    assert "use Engine.recover" not in msg and "only trade segments" in msg
    assert "no command journal" in msg and "move them away" in msg
    assert _files_and_sizes(d) == before


def test_load_snapshot_refuses_a_name_not_str_before_reading(tmp_path, monkeypatch):
    # name=5 was accepted and used in error messages as it was; refused before any file read
    from matchcore.durability import snapshot as snapshot_mod
    eng = mc.Engine()
    eng.add_symbol(1)
    path = eng.snapshot(tmp_path / "s")
    reads = []
    real = snapshot_mod._read_file
    monkeypatch.setattr(snapshot_mod, "_read_file", lambda p: reads.append(p) or real(p))
    for bad in (5, b"name", tmp_path / "n"):
        for source in (path, open(path, "rb").read()):
            with pytest.raises(TypeError, match=r"^name must be a str or None, got "):
                mc.durability.load_snapshot(source, name=bad)
    assert reads == []
    assert mc.durability.load_snapshot(path, name="given")[0].symbols == {1: None}
    assert reads == [path]


@pytest.mark.parametrize("source", [3, 5.0, None, ["s.mcs"]])
def test_load_snapshot_refuses_a_source_neither_bytes_nor_path_naming_it(source):
    # an int, None or a list raised open()'s "path should be string, bytes or os.PathLike",
    # naming neither the argument nor that bytes are a snapshot's data
    with pytest.raises(TypeError, match=r"^source must be a snapshot's bytes or a path \(str "
                                        rf"or os\.PathLike\), got {type(source).__name__}$"):
        mc.durability.load_snapshot(source)


@pytest.mark.parametrize("fsync", ["always", "batch"])
def test_snapshot_after_close_written_from_the_state_kept_lock_taken_in_own_dir(tmp_path, fsync):
    # close() ends the journal at a durable seq, and the engine keeps its books for queries;
    # snapshot() then raised "journal ... is closed" into any directory, so the one way to
    # save a closed journaled engine's state (it does not pickle) was to recover it first
    d, other = tmp_path / "j", tmp_path / "elsewhere"
    eng = mc.Engine(journal=d, fsync=fsync)
    eng.add_symbol(1)
    eng.submit(1, 5, 0, 100, 3)
    eng.submit(1, 6, 1, 100, 1)
    eng.close()
    seq, h = eng.journal_seq, eng.state_hash()
    path = eng.snapshot(other)
    assert os.path.basename(path) == f"snapshot-{seq:020d}.mcs"
    loaded, head = load_snapshot(path)
    assert loaded.state_hash() == h and head["seq"] == seq
    assert os.listdir(d).count("LOCK") == 1 and not list_snapshots(d)
    # into its own directory too, under the LOCK, which a live writer there holds
    taken = mc.Engine.recover(d)
    with pytest.raises(JournalError, match="in use by another engine"):
        eng.snapshot()
    assert not list_snapshots(d)
    taken.close()
    assert eng.snapshot() == os.path.join(d, f"snapshot-{seq:020d}.mcs")
    rec = mc.Engine.recover(d)
    assert rec.state_hash() == h and rec.recovery_report.snapshot_seq == seq
    rec.close()


def test_snapshot_after_close_under_fsync_never_refused_naming_the_durable_seq(tmp_path):
    # close() under "never" fsyncs nothing: a snapshot names only a durable position (an open
    # engine's snapshot syncs first), which a closed journal can no longer make
    eng = mc.Engine(journal=tmp_path / "j", fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 5, 0, 100, 3)
    eng.close()
    with pytest.raises(JournalError, match=r"closed under fsync='never'.*seq 2"):
        eng.snapshot(tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()


def test_snapshot_write_failing_disk_full_names_the_snapshot_file(tmp_path):
    # a snapshot whose write failed (a full disk: ENOSPC; here the file size limit, EFBIG)
    # raised OSError(28, 'No space left on device'), naming neither the file nor the directory
    import subprocess
    import sys

    d = tmp_path / "snaps"
    code = (f"import resource, signal\nimport matchcore as mc\n"
            f"signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"eng = mc.Engine(); eng.add_symbol(1)\n"
            f"for i in range(500): eng.submit(1, i + 1, 0, 100 - i % 50, 1)\n"
            f"hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))\n"
            f"try:\n    eng.snapshot({str(d)!r})\n"
            f"except OSError as exc:\n"
            f"    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))\n"
            f"    print(exc.errno, exc.filename, exc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    want = str(d / "snapshot-00000000000000000000.mcs")
    assert r.stdout.split(" ")[:2] == [str(errno.EFBIG), want], r.stdout
    assert "File too large" in r.stdout and want in r.stdout
    assert os.listdir(d) == []
