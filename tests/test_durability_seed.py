"""A journal's seed snapshot (snapshot-0): recovery trusts it only when it is the state the
journal started from."""
from __future__ import annotations

import os
import shutil
import struct
import zlib

import pytest

import matchcore as mc
from matchcore.durability import (
    JournalError, SnapshotFileError, inspect, load_snapshot, read_trades,
)
from matchcore.durability import _journal as _j
from matchcore.durability.snapshot import snapshot_bytes
from matchcore.durability.journal import segment_files, KIND_COMMANDS, KIND_TRADES
from durability_checks import _files_and_sizes, _last_segment, journaled


# ---- a snapshot-0 that is not the state the journal starts from ----

def _snap0(d):
    return d / f"snapshot-{0:020d}.mcs"


def _other_engine_snapshot0(tmp_path):
    o = mc.Engine()
    o.add_symbol(99)
    o.submit(99, 7, 0, 50, 3)
    return o.snapshot(tmp_path / "other")


def _seeded_journal(tmp_path, name="seeded"):
    # a journal started from a seed snapshot: an engine without a journal writes snapshot-0,
    # Engine.recover(DIR) starts journaling from it
    d = tmp_path / name
    s = mc.Engine()
    s.add_symbol(1)
    s.submit(1, 5, 1, 100, 5)
    s.snapshot(d)
    eng = mc.Engine.recover(d, fsync="never")
    eng.add_symbol(2)
    eng.submit(2, 9, 0, 10, 1)
    return eng, d


def _one_order_journal(tmp_path):
    """A closed journal of one symbol and one resting order: (its directory, the state hash)."""
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    want = eng.state_hash()
    eng.close()
    return d, want


def test_recovery_snapshot0_copied_from_other_engine_set_aside_journal_replayed(tmp_path):
    # A snapshot-0 copied in from another engine's directory has no record to be anchored to:
    # recovery took it for the state this journal started from, and the other engine's symbol
    # and order came back in this one without a word.
    d, want = _one_order_journal(tmp_path)
    shutil.copy(_other_engine_snapshot0(tmp_path), d)
    ro = mc.Engine.recover(d, readonly=True)
    assert ro.state_hash() == want and ro.recovery_report.snapshot is None
    assert _snap0(d).exists()                            # read-only: nothing renamed
    rec = mc.Engine.recover(d)
    rep = rec.recovery_report
    assert rec.symbols == {1: None} and rec.state_hash() == want
    (f, why), = rep.skipped_snapshots
    assert f == str(_snap0(d)) and "not the state this journal starts from" in why
    assert "journal-00000000000000000001.mcj" in why
    assert rep.set_aside == [(str(_snap0(d)), str(_snap0(d)) + ".unused")]
    assert str(_snap0(d).name) in rep.summary()


def test_recovery_full_replay_foreign_snapshot0_reported_once(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    want = eng.state_hash()
    eng.close()
    shutil.copy(_other_engine_snapshot0(tmp_path), d)
    rec = mc.Engine.recover(d, snapshot=False)
    rep = rec.recovery_report
    assert rec.state_hash() == want
    assert [f for f, _ in rep.skipped_snapshots] == [str(_snap0(d))]
    assert rep.summary().count("skipped snapshot") == 1


def test_recovery_seeded_journal_seed_missing_raises_naming_segment(tmp_path):
    # without its seed, a journal started from one was replayed from an empty engine: the
    # seed's symbol and order were silently missing from the recovered engine
    eng, d = _seeded_journal(tmp_path)
    eng.close()
    os.unlink(_snap0(d))
    before = _files_and_sizes(d)
    with pytest.raises(JournalError, match="no valid snapshot at seq 0") as exc:
        mc.Engine.recover(d)
    assert exc.value.path == str(d / "journal-00000000000000000001.mcj")
    assert _files_and_sizes(d) == before
    with pytest.raises(JournalError, match="no valid snapshot at seq 0"):
        mc.Engine.recover(d, snapshot=False)


def test_recovery_seeded_journal_seed_replaced_by_other_refused_then_recovered(tmp_path):
    eng, d = _seeded_journal(tmp_path)
    want = eng.state_hash()
    eng.close()
    seed = _snap0(d).read_bytes()
    shutil.copy(_other_engine_snapshot0(tmp_path), _snap0(d))
    with pytest.raises(JournalError, match="not the state this journal starts from"):
        mc.Engine.recover(d)
    _snap0(d).write_bytes(seed)                      # the seed put back
    rec = mc.Engine.recover(d)
    assert rec.state_hash() == want and rec.get(5) == (1, 1, 100, 5)
    assert rec.recovery_report.snapshot == str(_snap0(d))


def test_recovery_seeded_journal_with_seed_and_later_snapshot_recovers(tmp_path):
    eng, d = _seeded_journal(tmp_path)
    eng.snapshot()
    eng.submit(1, 11, 0, 90, 1)
    want = eng.state_hash()
    eng.close()
    for snapshot in (True, False):
        rec = mc.Engine.recover(d, snapshot=snapshot)
        assert rec.state_hash() == want and not rec.recovery_report.skipped_snapshots
        rec.close()


def test_recovery_seeded_journal_trades_lost_replayed_from_seed(tmp_path):
    # the fills before the snapshot lost: the whole journal is replayed to write them again,
    # from the seed (from an empty engine the replay "diverged" at its first order)
    d = tmp_path / "seeded"
    s = mc.Engine()
    s.add_symbol(1)
    s.submit(1, 5, 1, 100, 5)
    s.snapshot(d)
    eng = mc.Engine.recover(d, fsync="never")
    assert eng.submit(1, 9, 0, 100, 2) == 2
    eng.snapshot()
    eng.submit(1, 10, 0, 100, 1)
    want = eng.state_hash()
    eng.close()
    for _, f in segment_files(d, KIND_TRADES):
        os.unlink(f)
    rec = mc.Engine.recover(d)
    rep = rec.recovery_report
    assert rec.state_hash() == want and rec.get(5) == (1, 1, 100, 2)
    assert rep.snapshot == str(_snap0(d)) and rep.trades_rewritten == 2
    rec.close()
    assert read_trades(d)["qty"].tolist() == [2, 1]


def test_recovery_trades_lost_foreign_snapshot0_set_aside(tmp_path):
    # the whole-journal replay that rewrites lost fills looks for a seed snapshot-0: one that is
    # not the journal's start state was reported as such but left in place, where the summary
    # and the README say it is renamed to .unused like any other snapshot of another journal
    eng, d = journaled(tmp_path, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, 1, 100, 5)
    assert eng.submit(1, 2, 0, 100, 2) == 2
    eng.snapshot()
    want = eng.state_hash()
    eng.close()
    shutil.copy(_other_engine_snapshot0(tmp_path), d)
    for _, f in segment_files(d, KIND_TRADES):
        os.unlink(f)
    rec = mc.Engine.recover(d)
    rep = rec.recovery_report
    assert rec.state_hash() == want and rep.trades_rewritten == 1
    assert [f for f, why in rep.skipped_snapshots
            if "not the state this journal starts from" in why] == [str(_snap0(d))]
    assert rep.set_aside == [(str(_snap0(d)), str(_snap0(d)) + ".unused")]
    assert not _snap0(d).exists() and rep.modified
    rec.close()


def _journal_beside_a_foreign_seed(tmp_path):
    # a journal of one fill with a snapshot after it (seq 3), and another engine's snapshot-0
    # copied in beside them
    eng, d = journaled(tmp_path, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, 1, 100, 5)
    assert eng.submit(1, 2, 0, 100, 2) == 2
    eng.snapshot()
    eng.close()
    shutil.copy(_other_engine_snapshot0(tmp_path), d)
    return d


def test_journal_inspect_trades_lost_foreign_snapshot0_set_aside_as_recovery_reports(tmp_path):
    # a foreign snapshot-0 older than the snapshot recovery uses is still looked at, and set
    # aside, when the trade journal lacks fills before that snapshot (the whole journal is
    # replayed from its seed); inspect said recovery leaves it as it is
    d = _journal_beside_a_foreign_seed(tmp_path)
    for _, f in segment_files(d, KIND_TRADES):
        os.unlink(f)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.snapshot_seq == 3 and ro.trades_rewritable
    assert ro.snapshots_to_set_aside == [(str(_snap0(d)), str(_snap0(d)) + ".unused")]
    aside = {s["file"]: s["set_aside"] for s in inspect(d)["snapshots"]}
    assert aside == {_snap0(d).name: True, f"snapshot-{3:020d}.mcs": False}


@pytest.mark.parametrize("lost", [False, True])
def test_recovery_and_inspect_decide_the_seed_look_by_one_rule(tmp_path, monkeypatch, lost):
    # inspect restated recovery's rule for when the trade journal's lost fills make recovery
    # look at the seed snapshot-0 (and set a foreign one aside): one rule now, which both
    # consult and which gives both the same verdict
    from matchcore.durability import recovery
    d = _journal_beside_a_foreign_seed(tmp_path)
    if lost:
        for _, f in segment_files(d, KIND_TRADES):
            os.unlink(f)
    verdicts = []
    rule = recovery.trades_lacking

    def recorded(*args):
        verdicts.append(rule(*args))
        return verdicts[-1]

    monkeypatch.setattr(recovery, "trades_lacking", recorded)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    info = inspect(d)
    assert len(verdicts) == 2 and verdicts[0] == verdicts[1]
    missing, unverified, from_seed = verdicts[0]
    assert from_seed is lost and ro.trades_rewritable is lost and missing == int(lost)
    assert ro.snapshots_to_set_aside == ([(str(_snap0(d)), str(_snap0(d)) + ".unused")]
                                         if lost else [])
    aside = {s["file"]: s["set_aside"] for s in info["snapshots"]}
    assert aside == {_snap0(d).name: lost, f"snapshot-{3:020d}.mcs": False}


def test_recovery_no_snapshot_seed_only_directory_starts_from_seed(tmp_path):
    # snapshot=False (recover --no-snapshot) on a directory holding only the seed snapshot-0,
    # which Engine.recover(DIR) starts a journal from: "nothing to recover (no journal, no
    # snapshot)", with the snapshot right there
    s = mc.Engine()
    s.add_symbol(1)
    s.submit(1, 5, 1, 100, 5)
    d = tmp_path / "seed"
    s.snapshot(d)
    ro = mc.Engine.recover(d, snapshot=False, readonly=True)
    assert ro.state_hash() == s.state_hash() and ro.recovery_report.snapshot == str(_snap0(d))
    rec = mc.Engine.recover(d, snapshot=False)
    assert rec.state_hash() == s.state_hash()
    rec.submit(1, 6, 0, 100, 2)
    want = rec.state_hash()
    rec.close()
    assert mc.Engine.recover(d, snapshot=False, readonly=True).state_hash() == want
    # only a later snapshot, no journal: snapshot=False has nothing to replay, and says why
    e, d2 = journaled(tmp_path, name="later")
    e.add_symbol(1)
    e.snapshot()
    e.close()
    for _, f in segment_files(d2, KIND_COMMANDS) + segment_files(d2, KIND_TRADES):
        os.unlink(f)
    with pytest.raises(JournalError, match=r"no journal to replay \(snapshot=False\).*"
                                           r"snapshot-00000000000000000001\.mcs"):
        mc.Engine.recover(d2, snapshot=False)
    assert mc.Engine.recover(d2, readonly=True).symbols == {1: None}
    # a seed beside a later snapshot, the journal between them gone: not started from the seed
    # (a new journal from it would silently drop the later state)
    shutil.copy(_snap0(d), d2)
    before = _files_and_sizes(d2)
    with pytest.raises(JournalError, match=r"no journal to replay \(snapshot=False\)"):
        mc.Engine.recover(d2, snapshot=False)
    assert _files_and_sizes(d2) == before
    assert mc.Engine.recover(d2, readonly=True).symbols == {1: None}


def _journal_started_from_later_snapshot(tmp_path):
    """A journal started by Engine.recover(DIR) from a snapshot at seq 2 (a backup restored):
    (its directory, the snapshot, the state hash after one more command)."""
    e, d = journaled(tmp_path)
    e.add_symbol(1)
    e.submit(1, 5, 1, 100, 5)
    backup = tmp_path / "backup"
    snap = e.snapshot(backup)
    e.close()
    rec = mc.Engine.recover(backup, fsync="never")
    rec.submit(1, 6, 0, 100, 2)
    want = rec.state_hash()
    rec.close()
    return backup, snap, want


def test_recovery_no_snapshot_journal_started_from_later_snapshot_replays_from_it(tmp_path):
    # snapshot=False replays the whole journal from the state it starts from: a seed
    # snapshot-0, but a journal whose first segment records a seed at a later seq was refused
    # ("journal starts at seq 3"), read-only and with repair alike, with that seed right there
    backup, snap, want = _journal_started_from_later_snapshot(tmp_path)
    assert segment_files(backup, KIND_COMMANDS)[0][0] == 3
    before = _files_and_sizes(backup)
    ro = mc.Engine.recover(backup, snapshot=False, readonly=True)
    rep = ro.recovery_report
    assert ro.state_hash() == want and rep.snapshot == snap and rep.snapshot_seq == 2
    assert rep.replayed_commands == 1 and not rep.skipped_snapshots
    assert _files_and_sizes(backup) == before
    rec = mc.Engine.recover(backup, snapshot=False)            # what --repair does: the same
    assert rec.state_hash() == want and rec.recovery_report.snapshot == snap
    assert rec.recovery_report.replayed_commands == 1
    rec.close()
    ok = mc.Engine.recover(backup, readonly=True)
    assert ok.state_hash() == want and ok.recovery_report.snapshot == snap


def test_recovery_no_snapshot_journal_started_from_later_snapshot_seed_gone_refused(tmp_path):
    # its seed gone, snapshot=False says which state it lacks, and changes nothing
    backup, snap, want = _journal_started_from_later_snapshot(tmp_path)
    start = inspect(backup)["journals"]["commands"]["segments"][0]["start_state_hash"]
    os.unlink(snap)
    before = _files_and_sizes(backup)
    for readonly in (True, False):
        with pytest.raises(JournalError) as err:
            mc.Engine.recover(backup, snapshot=False, readonly=readonly)
        msg = str(err.value)
        assert "journal starts at seq 3" in msg and "seq 2" in msg and f"{start:#018x}" in msg
        assert err.value.path == str(backup / f"journal-{3:020d}.mcj")
        assert _files_and_sizes(backup) == before


def test_recovery_no_snapshot_journal_without_recorded_start_says_why(tmp_path):
    # a journal whose first segments were deleted records no state it starts from: snapshot=False
    # has nothing to replay it from, and says so (not "no valid snapshot holds the state")
    e, d = journaled(tmp_path, segment_bytes=8256)
    e.add_symbol(1)
    for k in range(300):
        e.submit(1, k + 1, k % 2, 100 + k % 2, 5)
    e.snapshot()
    e.close()
    files = segment_files(d, KIND_COMMANDS)
    assert len(files) > 2
    os.unlink(files[0][1])
    before = _files_and_sizes(d)
    with pytest.raises(JournalError) as err:
        mc.Engine.recover(d, snapshot=False, readonly=True)
    msg = str(err.value)
    assert f"journal starts at seq {files[1][0]}" in msg and "no valid snapshot holds" not in msg
    assert "snapshot=False" in msg and "snapshot=True" in msg
    assert err.value.path == files[1][1]
    assert _files_and_sizes(d) == before
    assert mc.Engine.recover(d, readonly=True).recovery_report.snapshot is not None


def test_recovery_stray_files_with_unicode_digit_names_ignored(tmp_path):
    # str.isdigit() accepts '²' and '٣': a stray "snapshot-².mcs" or "journal-².mcj" made
    # recovery, Engine(journal=DIR) and `journal inspect` fail with int()'s ValueError, and a
    # "journal-٣.mcj" was taken for the segment starting at seq 3
    d, want = _one_order_journal(tmp_path)
    for name in ("snapshot-\u00b2.mcs", "journal-\u00b2.mcj", "trades-\u00b2.mct",
                 "journal-\u0663.mcj", "snapshot-\u0660.mcs"):
        (d / name).write_bytes(b"stray")
    assert segment_files(d, KIND_COMMANDS) == [(1, str(d / f"journal-{1:020d}.mcj"))]
    assert mc.durability.list_snapshots(d) == []
    rec = mc.Engine.recover(d)
    assert rec.state_hash() == want
    rec.submit(1, 2, 0, 101, 1)
    want = rec.state_hash()
    rec.close()
    assert mc.Engine.recover(d, readonly=True).state_hash() == want
    assert mc.durability.inspect(d)["journals"]["commands"]["last_seq"] == 3
    with pytest.raises(ValueError, match="already holds a journal"):
        mc.Engine(journal=d)


class PositionEngine(mc.Engine):
    """A subclass whose state_hash() also covers its own fields."""

    def state_hash(self):
        return super().state_hash() ^ 0x5A5A


def test_recovery_subclass_overriding_state_hash_recovers_own_journal_and_seed(tmp_path):
    # a journal's first segment records Engine.state_hash of its start state; recovery compared
    # it with the subclass's override: the subclass could not recover any journal it wrote
    # ("no valid snapshot at seq 0 holds that state"), and a seed it started from was then
    # refused by Engine.recover and `matchcore recover` (set aside, with --repair)
    eng = PositionEngine(journal=tmp_path / "j", fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    want = mc.Engine.state_hash(eng)
    eng.close()
    for kw in ({"readonly": True}, {"snapshot": False}, {}):
        rec = PositionEngine.recover(tmp_path / "j", **kw)
        assert type(rec) is PositionEngine and mc.Engine.state_hash(rec) == want
        rec.close()
    seed = PositionEngine()
    seed.add_symbol(1)
    seed.submit(1, 5, 0, 90, 1)
    d = tmp_path / "seeded"
    seed.snapshot(d)
    rec = PositionEngine.recover(d)
    rec.submit(1, 6, 1, 95, 1)
    want = mc.Engine.state_hash(rec)
    rec.close()
    for cls in (PositionEngine, mc.Engine):
        for kw in ({"readonly": True}, {"snapshot": False}, {}):
            again = cls.recover(d, **kw)
            rep = again.recovery_report
            assert mc.Engine.state_hash(again) == want and rep.snapshot == str(_snap0(d))
            assert not rep.skipped_snapshots and not rep.set_aside
            again.close()
    # a snapshot file an earlier version wrote with the override's hash still loads
    data = bytearray(snapshot_bytes(seed)[0])
    assert data[56:64] == struct.pack("<Q", mc.Engine.state_hash(seed))   # the header's last
    data[56:64] = struct.pack("<Q", seed.state_hash())
    crc_at = len(data) - 8
    data[crc_at:crc_at + 4] = struct.pack("<I", zlib.crc32(bytes(data[:crc_at])))
    from matchcore.durability.snapshot import _load_snapshot
    old, head = _load_snapshot(bytes(data), cls=PositionEngine)
    assert head["state_hash"] == mc.Engine.state_hash(seed) == mc.Engine.state_hash(old)
    with pytest.raises(SnapshotFileError, match="state hash"):
        mc.durability.load_snapshot(bytes(data))


def test_recovery_report_subclass_overriding_state_hash_reports_engine_hash(tmp_path):
    # the report's hash is the one the journal, the snapshots and `matchcore recover` name:
    # a subclass recovering a directory reported its override's value, another hash than any
    # of those and than Engine.recover's report of the same directory
    eng = PositionEngine(journal=tmp_path / "j", fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.sync()
    eng.snapshot()
    eng.submit(1, 2, 1, 105, 3)
    want = mc.Engine.state_hash(eng)
    eng.close()
    for kw in ({"readonly": True}, {"snapshot": False}, {}):
        reports = []
        for cls in (PositionEngine, mc.Engine):
            rec = cls.recover(tmp_path / "j", **kw)
            reports.append(rec.recovery_report)
            rec.close()
        for rep in reports:
            assert rep.state_hash == want
            assert rep.summary().splitlines()[0].endswith(f"state hash {want:#018x}")


def _clear_base(seg):
    # the segment header as versions before the field wrote it: reserved bytes zero
    raw = bytearray(open(seg, "rb").read())
    raw[40:60] = bytes(20)
    raw[60:64] = struct.pack("<I", _j.crc32c(bytes(raw[:60])))
    open(seg, "wb").write(raw)


def test_recovery_segments_of_earlier_versions_without_base_recovered_as_before(tmp_path):
    d, want = _one_order_journal(tmp_path)
    seg = _last_segment(d)
    assert scan_base(seg) is not None
    _clear_base(seg)
    assert scan_base(seg) is None
    assert mc.Engine.recover(d, readonly=True).state_hash() == want
    # a seeded journal of an earlier version still starts from its seed
    eng, d2 = _seeded_journal(tmp_path)
    want = eng.state_hash()
    eng.close()
    _clear_base(_last_segment(d2))
    assert mc.Engine.recover(d2).state_hash() == want


def scan_base(seg):
    return _j.segment_base_hash(open(seg, "rb").read())


def test_journal_first_segment_records_start_state_later_segments_none(tmp_path):
    eng, d = journaled(tmp_path, segment_bytes=_j.SEG_HEADER + _j.MAX_RECORD)
    empty = mc.Engine().state_hash()
    eng.add_symbol(1)
    for i in range(200):
        eng.submit(1, i + 1, i % 2, 100, 1)
    eng.close()
    files = segment_files(d, KIND_COMMANDS)
    assert len(files) > 1
    assert [scan_base(f) for _, f in files] == [empty] + [None] * (len(files) - 1)
    # recovery of a directory whose segments were all deleted starts a new journal from the
    # snapshot: its first segment records the snapshot's state
    eng, d2 = journaled(tmp_path, "k")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.snapshot()
    want = eng.state_hash()
    eng.close()
    for _, f in segment_files(d2, KIND_COMMANDS) + segment_files(d2, KIND_TRADES):
        os.unlink(f)
    rec = mc.Engine.recover(d2)
    rec.submit(1, 2, 0, 99, 1)
    rec.close()
    (first, seg), = segment_files(d2, KIND_COMMANDS)
    assert first == 3 and scan_base(seg) == want


def test_snapshot_into_other_engines_journal_directory_refused_its_snapshot_kept(tmp_path):
    # a journaled engine's snapshot(DIR) into another engine's journal directory replaced
    # that journal's own snapshot of the same seq; its segments before it pruned (as the
    # README allows), that directory could no longer be recovered
    a, da = journaled(tmp_path, "a")
    a.add_symbol(1)
    a.submit(1, 1, 0, 100, 5)
    own = a.snapshot()
    a.submit(1, 2, 0, 101, 5)
    want = a.state_hash()
    a.close()
    b, db = journaled(tmp_path, "b")
    b.add_symbol(9)
    b.submit(9, 7, 0, 5, 5)
    before = open(own, "rb").read()
    with pytest.raises(ValueError, match="holds another engine's journal"):
        b.snapshot(da)
    assert open(own, "rb").read() == before
    b.snapshot(tmp_path / "backup")                  # a directory without a journal: written
    b.snapshot(db)                                   # its own: written
    b.close()
    rec = mc.Engine.recover(da)
    assert rec.state_hash() == want and rec.recovery_report.snapshot == own


def _fsynced_dirs(tmp_path, code):
    """The paths a child running ``code`` fsyncs or fdatasyncs, as strace sees them."""
    import re
    import subprocess
    import sys

    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    trace = tmp_path / "trace.txt"
    r = subprocess.run([strace, "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync", "-o",
                        str(trace), sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0 and ("ptrace" in r.stderr or "PTRACE" in r.stderr):
        pytest.skip(f"strace cannot trace here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    return set(re.findall(r"f(?:data)?sync\(\d+<([^>]*)>\)\s*=\s*0", trace.read_text()))


def test_journal_and_snapshot_new_directories_made_durable_in_their_parents(tmp_path):
    # Engine(journal=DIR) and snapshot(DIR) created the directories they needed and fsynced
    # files in them, but never the parents holding the new directories' names: after a power
    # loss the acknowledged journal (fsync="always") could be gone with its directory's name
    # (each is made only in a directory that exists)
    top = os.path.realpath(tmp_path)
    j, b = os.path.join(top, "journal"), os.path.join(top, "snaps", "day1")
    os.mkdir(os.path.dirname(b))
    synced = _fsynced_dirs(tmp_path, f"import matchcore as mc\n"
                                     f"e = mc.Engine(journal={j!r}, fsync='always')\n"
                                     f"e.add_symbol(1)\ne.snapshot({b!r})\ne.close()\n")
    assert top in synced, sorted(synced)
    assert os.path.dirname(b) in synced and top in synced, sorted(synced)


def test_journal_sync_under_never_makes_new_segment_names_durable(tmp_path):
    # Under fsync="never" a segment is created without fsyncing the directory that holds its
    # name (the other policies fsync it at once). sync() ("everything journaled so far durable,
    # whatever the policy") then fdatasynced the segment alone and set durable_seq past its
    # records: on a file system that does not order the name with the file's data, a power
    # loss could take the file, every record sync() had acknowledged with it.
    top = os.path.realpath(tmp_path)
    j = os.path.join(top, "j")
    synced = _fsynced_dirs(tmp_path, f"import matchcore as mc\n"
                                     f"e = mc.Engine(journal={j!r}, fsync='never')\n"
                                     f"e.add_symbol(1)\ne.submit(1, 1, 0, 100, 5)\n"
                                     f"e.submit(1, 2, 1, 100, 2)\n"
                                     f"assert e.sync() == e.journal_seq == 3\n"
                                     f"import os; os._exit(0)\n")   # no close(): sync() alone
    assert os.path.join(j, "journal-00000000000000000001.mcj") in synced
    assert os.path.join(j, "trades-00000000000000000001.mct") in synced
    assert j in synced, sorted(synced)


@pytest.mark.parametrize("name", ["snapshot-00000000000000000005.mcs",
                                  "journal-00000000000000000002.mcj",
                                  "trades-00000000000000000009.mct"])
def test_recovery_fifo_under_a_journal_file_name_refused_not_hung(tmp_path, name):
    # a FIFO under a segment's or snapshot's name was opened as a file: recovery, inspect and
    # the readers blocked forever waiting for a writer
    import signal

    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    want = eng.state_hash()
    eng.close()
    os.mkfifo(d / name)

    def hung(*_):
        # not an OSError (the readers turn those into their own errors): the test fails
        pytest.fail(f"blocked on the FIFO {name}")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)                                # a hang fails the test instead
    try:
        info = inspect(d)
        if name.startswith("snapshot"):
            assert info["snapshots"][0]["valid"] is False
            with pytest.raises(SnapshotFileError, match="not a regular file"):
                load_snapshot(d / name)
            rec = mc.Engine.recover(d, readonly=True)
            assert rec.state_hash() == want
            assert "not a regular file" in rec.recovery_report.skipped_snapshots[0][1]
        else:
            label = "commands" if name.startswith("journal") else "trades"
            assert "not a regular file" in info["journals"][label]["corrupt"]["reason"]
            with pytest.raises(JournalError, match="not a regular file") as err:
                mc.Engine.recover(d, readonly=True)
            assert err.value.path == str(d / name)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_journal_in_write_only_parent_directory_still_created(request):
    # a parent the user may write but not read (0733) cannot be opened to be fsynced: the
    # journal directory is still made there, as before its name was synced
    import subprocess
    import sys
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to run the child as another user")
    top = tempfile.mkdtemp()                # pytest's tmp_path is not reachable by others
    request.addfinalizer(lambda: shutil.rmtree(top, ignore_errors=True))
    os.chmod(top, 0o755)
    drop = os.path.join(top, "drop")
    os.mkdir(drop)
    os.chmod(drop, 0o733)
    j = os.path.join(drop, "j")
    code = (f"import os\nimport matchcore as mc\n"                     # imports as root
            f"import fcntl, matchcore.durability.journal, matchcore.durability.snapshot\n"
            f"os.setgroups([]); os.setresgid(65534, 65534, 65534); "
            f"os.setresuid(65534, 65534, 65534)\n"
            f"e = mc.Engine(journal={j!r}, fsync='always'); e.add_symbol(1); e.close()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert mc.Engine.recover(j, readonly=True).symbols == {1: None}


def test_recovery_of_a_seed_alone_says_it_would_start_and_then_started_the_journal(tmp_path):
    # read-only, a directory holding only snapshot-0 was reported as if a recovery that may
    # write changed nothing there; the one that did created LOCK and the first segments
    # without a word
    d = tmp_path / "seed"
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.snapshot(d)
    before = sorted(os.listdir(d))
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert sorted(os.listdir(d)) == before
    assert ro.created_files == [] and len(ro.files_to_create) == 3
    rec = mc.Engine.recover(d)
    rec.close()
    rep = rec.recovery_report
    made = sorted(set(os.listdir(d)) - set(before))
    assert sorted(os.path.basename(f) for f in rep.created_files) == made
    assert rep.created_files == ro.files_to_create and rep.files_to_create == []
    names = ", ".join(os.path.basename(f) for f in rep.created_files)
    assert os.path.basename(rep.created_files[0]) == "LOCK"
    assert (f"  no journal segment: would start the journal here (read-only: Engine.recover, "
            f"matchcore recover --repair create {names})") in ro.summary()
    assert f"  started the journal: created {names}" in rep.summary()
    # nothing was cut, dropped, removed or renamed (README: what `modified` means)
    assert rep.modified is False
    # the directory now holds its journal: a second recovery creates nothing
    again = mc.Engine.recover(d)
    again.close()
    assert again.recovery_report.created_files == []
    assert "created" not in again.recovery_report.summary()


def test_recovery_says_it_creates_a_missing_trade_segment_and_lock(tmp_path):
    d = tmp_path / "j"
    eng = mc.Engine(journal=d)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    for _, f in segment_files(d, KIND_TRADES):
        os.unlink(f)
    os.unlink(d / "LOCK")
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert not os.path.exists(d / "LOCK")
    rec = mc.Engine.recover(d)
    rec.close()
    rep = rec.recovery_report
    assert [os.path.basename(f) for f in rep.created_files] == [
        "LOCK", os.path.basename(segment_files(d, KIND_TRADES)[0][1])]
    assert ro.files_to_create == rep.created_files
    names = ", ".join(os.path.basename(f) for f in rep.created_files)
    assert (f"  would create {names} (read-only: Engine.recover, matchcore recover --repair "
            f"create them)") in ro.summary()
    assert f"  created {names}" in rep.summary()


def test_recovery_of_a_later_snapshot_alone_starts_the_journal_after_its_seq(tmp_path, capsys):
    # A directory holding only a snapshot at seq N (its journal deleted, a backup restored):
    # the engine is the snapshot's, the journal goes on at N + 1 from its state, the trade
    # journal at the snapshot's trade seq + 1, and the fills before it that no trade journal
    # holds are reported lost; read-only, the API and `matchcore recover` say the same.
    from matchcore.__main__ import main
    e, d = journaled(tmp_path)
    e.add_symbol(1)
    e.submit(1, 1, mc.Side.BUY, 100, 5)
    e.submit(1, 2, mc.Side.SELL, 100, 2)             # one fill: trade seq 1
    e.submit(1, 3, mc.Side.BUY, 99, 4)
    snap = e.snapshot()
    n, want = e.journal_seq, e.state_hash()
    e.close()
    for _, f in segment_files(d, KIND_COMMANDS) + segment_files(d, KIND_TRADES):
        os.unlink(f)
    os.unlink(d / "LOCK")
    before = _files_and_sizes(d)
    ro = mc.Engine.recover(d, readonly=True)
    rep = ro.recovery_report
    assert _files_and_sizes(d) == before
    assert ro.state_hash() == want and rep.snapshot == snap and rep.snapshot_seq == n
    assert rep.last_seq == n and rep.replayed_commands == 0 and rep.trades_missing == 1
    first = str(d / f"journal-{n + 1:020d}.mcj")
    assert rep.files_to_create == [str(d / "LOCK"), first, str(d / f"trades-{2:020d}.mct")]
    assert main(["recover", str(d)]) == 0
    out = capsys.readouterr().out
    assert f"last seq {n}, state hash {want:#018x}" in out and "would start the journal" in out
    rec = mc.Engine.recover(d)
    assert rec.state_hash() == want and rec.journal_seq == rec.durable_seq == n
    assert rec.recovery_report.created_files == rep.files_to_create
    assert inspect(d)["journals"]["commands"]["segments"][0]["start_state_hash"] == want
    rec.submit(1, 4, mc.Side.SELL, 100, 1)
    assert rec.journal_seq == n + 1
    after = rec.state_hash()
    rec.close()
    assert [(int(t["seq"]), int(t["cmd_seq"])) for t in read_trades(d)] == [(2, n + 1)]
    again = mc.Engine.recover(d, readonly=True)
    assert again.state_hash() == after and again.recovery_report.snapshot == snap
    assert again.recovery_report.replayed_commands == 1
