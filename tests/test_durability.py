"""Engine durability: the command journal holds every command, trade capture, and I/O failures.

Recovery is in test_durability_recovery, snapshots in test_durability_snapshots, a journal's seed
snapshot in test_durability_seed; kill -9 (proof (b)) in test_durability_kill.
"""
from __future__ import annotations

import errno
import os
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest

import matchcore as mc
from matchcore.durability import JournalError, read_journal, read_trades
from matchcore.durability import _journal as _j
from matchcore.durability.snapshot import snapshot_bytes
from matchcore.durability.journal import segment_files, KIND_COMMANDS, KIND_TRADES
from conftest import assert_events_equal
from durability_flow import apply_steps, make_flow
from durability_checks import (
    _assert_recovers_with_trades, _crc32c_py, _files_and_sizes, _last_segment, journaled,
)

K = mc.EventKind


# ---- the journal holds every command ----

def test_journal_commands_and_configs_read_back_identical(tmp_path):
    steps, cmds = make_flow(1, 600)
    eng, d = journaled(tmp_path, segment_bytes=16384)
    apply_steps(eng, steps, cmds, batch=50)
    eng.close()
    rec = read_journal(d)
    n_cfg = sum(1 for s in steps if s[0] != "cmd")
    assert len(rec["configs"]) == n_cfg
    assert rec["commands"].tobytes() == cmds.tobytes()
    assert rec["seqs"].tolist() == [i + 1 for i, s in enumerate(steps) if s[0] == "cmd"]
    assert rec["tail"] is None
    assert len(segment_files(d, KIND_COMMANDS)) > 3          # segments rolled
    # outcomes recorded: rejects are there (negative), executions too
    assert (rec["results"] < 0).any() and (rec["results"] > 0).any()


def test_journal_per_call_and_process_write_identical_commands(tmp_path):
    steps, cmds = make_flow(2, 300)
    a, da = journaled(tmp_path, "a")
    b, db = journaled(tmp_path, "b")
    apply_steps(a, steps, cmds, per_call=True)
    apply_steps(b, steps, cmds, batch=37)
    a.close(), b.close()
    ra, rb = read_journal(da), read_journal(db)
    assert ra["commands"].tobytes() == rb["commands"].tobytes()
    assert ra["results"].tolist() == rb["results"].tolist()
    assert a.state_hash() == b.state_hash()


@pytest.mark.parametrize("room", ["fits", "short"])
def test_journal_process_out_same_events_and_journal_as_without(tmp_path, room):
    # a journaled engine's process(out=): the same events as an unjournaled one's (a view of out
    # when they fit, a new array when not), the same journal as without out=, and recovery
    # reaches the same state
    steps, cmds = make_flow(3, 400)
    plain = mc.Engine()
    a, da = journaled(tmp_path, "a")
    b, db = journaled(tmp_path, "b")
    for eng in (plain, a, b):
        eng.add_symbol(0, "S0")
        eng.add_symbol(1, "S1")
    cmds = cmds.copy()
    cmds["symbol"] %= 2
    expected = plain.process(cmds)
    without = a.process(cmds)
    buf = np.zeros(len(expected) + 5 if room == "fits" else len(expected) // 3, mc.EVENT_DTYPE)
    got = b.process(cmds, out=buf)
    assert np.shares_memory(got, buf) == (room == "fits")
    assert got.tobytes() == expected.tobytes() == without.tobytes()
    a.close(), b.close()
    ra, rb = read_journal(da), read_journal(db)
    assert ra["commands"].tobytes() == rb["commands"].tobytes()
    assert ra["results"].tolist() == rb["results"].tolist()
    assert mc.Engine.recover(db, readonly=True).state_hash() == plain.state_hash()


def test_crc32c_check_value_and_both_implementations_agree():
    assert _j.crc32c(b"123456789") == 0xE3069283 == _crc32c_py(b"123456789")
    rng = np.random.default_rng(0)
    blobs = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (0, 1, 7, 8, 9, 80, 1000)]
    fast = [_j.crc32c(b) for b in blobs]
    _j._crc32c_force_table(True)
    try:
        table = [_j.crc32c(b) for b in blobs]
    finally:
        _j._crc32c_force_table(False)
    assert fast == table == [_crc32c_py(b) for b in blobs]


def test_journal_record_crc_matches_reference_crc32c(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 5, 0, 100, 3)
    eng.close()
    data = open(segment_files(d, KIND_COMMANDS)[0][1], "rb").read()
    assert struct.unpack_from("<I", data, 60)[0] == _crc32c_py(data[:60])
    off = _j.SEG_HEADER
    while off < len(data):
        length, crc = struct.unpack_from("<II", data, off)
        assert _crc32c_py(data[off + 8:off + length]) == crc
        off += length
    assert off == len(data)


def test_engine_journal_dir_with_journal_refused(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.close()
    with pytest.raises(ValueError, match="recover"):
        mc.Engine(journal=d)


def test_engine_journal_or_snapshot_dir_that_is_a_file_said_not_a_directory(tmp_path):
    # A file where the directory should be was "[Errno 17] File exists", as if existing were
    # the fault; the journal and snapshot readers say "is not a directory"
    afile = tmp_path / "file"
    afile.write_bytes(b"data")
    with pytest.raises(NotADirectoryError, match=f"Not a directory: '{afile}'"):
        mc.Engine(journal=afile)
    eng = mc.Engine()
    eng.add_symbol(1)
    with pytest.raises(NotADirectoryError, match=f"Not a directory: '{afile}'"):
        eng.snapshot(afile)
    assert afile.read_bytes() == b"data" and os.listdir(tmp_path) == ["file"]


def test_engine_journal_or_snapshot_dir_that_is_a_dangling_symlink_refused(tmp_path):
    # a symlink to nothing raised makedirs' "[Errno 17] File exists", as if existing were the
    # fault; it is refused as a file there is, naming the link and where it points
    link = tmp_path / "link"
    os.symlink(tmp_path / "nowhere", link)
    want = f"Not a directory \\(a symbolic link to {tmp_path / 'nowhere'}, which does not exist\\)"
    for call in (lambda: mc.Engine(journal=link), lambda: mc.Engine(journal=link / "sub"),
                 lambda: mc.Engine().snapshot(link)):
        with pytest.raises(NotADirectoryError, match=want):
            call()
    assert os.listdir(tmp_path) == ["link"] and os.path.islink(link)


def test_engine_journal_or_snapshot_dir_in_a_symlink_loop_not_said_missing(tmp_path):
    # a link in a loop of links was said to point at something "which does not exist",
    # naming the other link of the loop, which is there to be listed
    a, b = tmp_path / "a", tmp_path / "b"
    os.symlink(b, a)
    os.symlink(a, b)
    want = (f"Not a directory \\(a symbolic link to {b}, which leads into a loop of symbolic "
            f"links\\)")
    for call in (lambda: mc.Engine(journal=a), lambda: mc.Engine(journal=a / "sub"),
                 lambda: mc.Engine().snapshot(a)):
        with pytest.raises(NotADirectoryError, match=want) as err:
            call()
        assert err.value.filename == str(a)
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_engine_journal_under_a_symlink_to_a_file_not_said_missing(tmp_path):
    # a journal directory under a link to a file: the link was said to point at something
    # "which does not exist", naming the file that is there
    afile, link = tmp_path / "file", tmp_path / "link"
    afile.write_bytes(b"data")
    os.symlink(afile, link)
    want = f"Not a directory \\(a symbolic link to {afile}, which is not a directory\\)"
    for call in (lambda: mc.Engine(journal=link / "j"), lambda: mc.Engine().snapshot(link / "s")):
        with pytest.raises(NotADirectoryError, match=want) as err:
            call()
        assert err.value.filename == str(link)
    assert sorted(os.listdir(tmp_path)) == ["file", "link"] and afile.read_bytes() == b"data"


def test_engine_journal_in_a_missing_directory_refused_before_anything_is_made(tmp_path):
    # Engine(journal=DIR) made every missing level above DIR: a mistyped parent put the journal
    # somewhere new. DIR itself is made; a missing parent is refused, as the CLI's outputs are
    missing = tmp_path / "typo"
    with pytest.raises(FileNotFoundError, match=f"no directory {missing}") as err:
        mc.Engine(journal=missing / "j")
    assert err.value.filename == str(missing / "j")
    assert os.listdir(tmp_path) == []
    eng = mc.Engine(journal=tmp_path / "j")
    eng.add_symbol(1)
    eng.close()
    assert mc.Engine.recover(tmp_path / "j", readonly=True).symbols == {1: None}


def test_empty_journal_or_snapshot_path_refused_before_writing_into_the_cwd(tmp_path,
                                                                           monkeypatch):
    # "" was taken for the current directory by makedirs (abspath) and by the file names
    # joined to it: snapshot("") wrote snapshot-0.mcs there, Engine(journal="") its LOCK,
    # and only then failed with FileNotFoundError on fsyncing directory ""
    monkeypatch.chdir(tmp_path)
    eng = mc.Engine()
    eng.add_symbol(1)
    # and the refusal says the path was empty (a bare "No such file or directory: ''" named
    # no directory the caller had given)
    empty = "^\\[Errno 2\\] no directory '' \\(an empty path\\): ''$"
    with pytest.raises(FileNotFoundError, match=empty):
        eng.snapshot("")
    with pytest.raises(FileNotFoundError, match=empty):
        mc.Engine(journal="")
    assert os.listdir(tmp_path) == []
    with pytest.raises(JournalError, match="^no journal directory '' \\(an empty path\\)$"):
        mc.Engine.recover("")


def test_load_snapshot_empty_path_says_the_path_was_empty(tmp_path, monkeypatch):
    # load_snapshot("") said ": cannot be read: No such file or directory", its message
    # starting with a colon where the file's name goes, naming nothing
    from matchcore.durability import SnapshotFileError, load_snapshot
    from matchcore.durability.snapshot import read_snapshot_header

    monkeypatch.chdir(tmp_path)
    for read in (load_snapshot, read_snapshot_header):
        with pytest.raises(SnapshotFileError,
                           match="^'' \\(an empty path\\): cannot be read: ") as err:
            read("")
        assert isinstance(err.value.__cause__, OSError)


def test_engine_journal_options_without_journal_raise_typeerror():
    with pytest.raises(TypeError, match="journal=DIR"):
        mc.Engine(segment_bytes=1 << 20)


def test_engine_bad_fsync_policy_raises_valueerror(tmp_path):
    with pytest.raises(ValueError, match="fsync"):
        mc.Engine(journal=tmp_path / "x", fsync="sometimes")


BAD_JOURNAL_OPTIONS = [{"batch_us": 0}, {"batch_records": 0}, {"segment_bytes": 100},
                       {"buffer_bytes": 10}, {"batch_us": "2000"}, {"batch_us": 2.5},
                       {"batch_records": True}, {"trades": 2}, {"trades": None},
                       {"segment_bytes": 2**63}, {"batch_records": 2**70},
                       {"buffer_bytes": np.uint64(2**63)}, {"buffer_bytes": 2**62}]
# an int64 buffer_bytes no allocation can satisfy raises MemoryError
BAD_OPTION_ERRORS = (ValueError, TypeError, OverflowError, MemoryError)


@pytest.mark.parametrize("bad", BAD_JOURNAL_OPTIONS, ids=str)
def test_engine_bad_journal_option_raises_and_creates_nothing(tmp_path, bad):
    d = tmp_path / "new"
    name = next(iter(bad))
    with pytest.raises(BAD_OPTION_ERRORS, match=name):
        mc.Engine(journal=d, **bad)
    assert not d.exists()
    d.mkdir()
    with pytest.raises(BAD_OPTION_ERRORS, match=name):
        mc.Engine(journal=d, **bad)
    assert os.listdir(d) == []


@pytest.mark.parametrize("bad", [{"bogus": 1}, {"next_seq": 100}, {"new": False},
                                 {"base_hash": 5}, {"append_size": 0}], ids=str)
def test_engine_unknown_journal_option_raises_typeerror_and_creates_nothing(tmp_path, bad):
    # the writer's own parameters (next_seq, ...) are not options: Engine(next_seq=100) wrote a
    # journal starting at seq 100 that recovery then refused, losing every command in it
    d = tmp_path / "new"
    with pytest.raises(TypeError, match=r"unknown journal option\(s\) \['%s'\]" % next(iter(bad))):
        mc.Engine(journal=d, **bad)
    assert not d.exists()
    with pytest.raises(TypeError, match="unknown journal option"):
        mc.Engine(**bad)


def test_engine_journal_buffer_bytes_unallocatable_raises_memoryerror_before_disk(tmp_path):
    d = tmp_path / "new"
    with pytest.raises(MemoryError, match="buffer_bytes=4611686018427387904"):
        mc.Engine(journal=d, buffer_bytes=2**62)
    assert not d.exists()
    with pytest.raises(MemoryError, match="buffer_bytes"):
        mc.Engine(journal=d, buffer_bytes=2**62, trades=False)
    assert not d.exists()
    eng = mc.Engine(journal=d, buffer_bytes=1 << 16)      # a plausible size still works
    eng.add_symbol(1)
    eng.close()


def test_journal_directory_given_as_bytes_refused_before_disk(tmp_path):
    # A bytes path made the directory, then failed joining it with str names ("Can't mix
    # strings and bytes"): Engine(journal=...) and snapshot(DIR) left a directory behind, and
    # recover() said the existing journal directory "is not a directory"
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    new = tmp_path / "new"
    with pytest.raises(TypeError, match="journal directory.*bytes"):
        mc.Engine(journal=os.fsencode(new))
    with pytest.raises(TypeError, match="snapshot directory.*bytes"):
        eng.snapshot(os.fsencode(new))
    assert not new.exists()
    eng.close()
    before = _files_and_sizes(d)
    with pytest.raises(TypeError, match="journal directory.*bytes"):
        mc.Engine.recover(os.fsencode(d))
    with pytest.raises(TypeError, match="journal directory.*bytes"):
        mc.Engine.recover(os.fsencode(d), readonly=True)
    assert _files_and_sizes(d) == before
    assert mc.Engine.recover(d, readonly=True).get(1) == (1, 0, 100, 5)

# (trades=None is recover's default: the journal's own trade capture)
@pytest.mark.parametrize("bad", [b for b in BAD_JOURNAL_OPTIONS if b != {"trades": None}]
                         + [{"bogus": 1}, {"fsync": "sometimes"}], ids=str)
def test_recovery_bad_option_raises_before_changing_any_file(tmp_path, bad):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.close()
    with open(_last_segment(d), "ab") as fh:
        fh.write(b"\x58\x00\x00\x00torn record")             # a torn tail recovery would cut
    (d / "snapshot-00000000000000000002.mcs.tmp").write_bytes(b"x")
    before = _files_and_sizes(d)
    with pytest.raises(BAD_OPTION_ERRORS):
        mc.Engine.recover(d, **bad)
    assert _files_and_sizes(d) == before
    assert mc.Engine.recover(d).recovery_report.cut_bytes == 15    # the valid call still cuts


@pytest.mark.parametrize("bad", [b for b in BAD_JOURNAL_OPTIONS if b != {"trades": None}]
                         + [{"bogus": 1}, {"fsync": "sometimes"}, {"readonly": "no"},
                            {"snapshot": 2}, {"record_events": None}], ids=str)
def test_recovery_bad_option_named_before_a_missing_directory(tmp_path, bad):
    # as Engine(journal=), read_journal, scan_journal and read_trades do: the argument is
    # refused in its own words, not hidden behind "no journal directory"
    name = next(iter(bad))
    # a buffer_bytes no allocation satisfies is refused only where writers are made
    for readonly in (False,) if bad == {"buffer_bytes": 2**62} else (False, True):
        opts = {"readonly": readonly, **bad}
        with pytest.raises(BAD_OPTION_ERRORS, match=name):
            mc.Engine.recover(tmp_path / "missing", **opts)
    assert list(tmp_path.iterdir()) == []


def test_recovery_stale_snapshot_temporary_removed_reported_as_such(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.close()
    tmp = d / "snapshot-00000000000000000001.mcs.tmp"
    # what an earlier version's snapshot writer left when killed mid-write: a snapshot's start
    tmp.write_bytes(snapshot_bytes(mc.Engine())[0][:40])
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert tmp.exists() and not ro.modified and ro.removed_temporaries == []
    rep = mc.Engine.recover(d).recovery_report
    assert not tmp.exists()
    assert rep.modified and rep.removed_temporaries == [str(tmp)] and rep.dropped_files == []
    assert "stale snapshot temporary" in rep.summary()
    assert "nothing valid" not in rep.summary()


def test_recovery_readonly_reports_the_stale_snapshot_temporaries_repair_would_remove(
        tmp_path):
    # read-only recovery said nothing of the temporaries a repair removes: an operator checking
    # the directory before --repair was not told that files would be deleted
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.close()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)                               # a pid whose process is gone
    start = snapshot_bytes(mc.Engine())[0][:40]
    legacy = d / "snapshot-00000000000000000001.mcs.tmp"
    dead = d / f"snapshot-00000000000000000001.mcs.tmp{pid}.0123abcd"
    live = d / f"snapshot-00000000000000000001.mcs.tmp{os.getpid()}.0123abcd"
    for f in (legacy, dead, live):
        f.write_bytes(start)
    before = _files_and_sizes(d)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert _files_and_sizes(d) == before and ro.removed_temporaries == []
    assert sorted(ro.temporaries_to_remove) == sorted([str(legacy), str(dead)])
    assert ("would remove 2 stale snapshot temporary file(s) (read-only: Engine.recover, "
            "matchcore recover --repair remove them)") in ro.summary()
    rep = mc.Engine.recover(d).recovery_report
    assert sorted(rep.removed_temporaries) == sorted(ro.temporaries_to_remove)
    assert rep.temporaries_to_remove == [] and live.exists()


def test_recovery_empty_dir_raises_and_creates_no_lock(tmp_path):
    with pytest.raises(JournalError, match="nothing to recover"):
        mc.Engine.recover(tmp_path)
    assert os.listdir(tmp_path) == []


def test_engine_fsync_always_durable_after_every_call(tmp_path):
    eng, d = journaled(tmp_path, fsync="always")
    eng.add_symbol(1)
    for i in range(5):
        eng.submit(1, i + 1, i % 2, 100, 2)
        assert eng.durable_seq == eng.journal_seq == i + 2


def test_engine_fsync_never_durable_only_after_sync(tmp_path):
    eng, d = journaled(tmp_path, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 2)
    assert eng.journal_seq == 2 and eng.durable_seq == 0
    assert eng.journal.written_seq == 2          # handed to the OS: survives a process crash
    assert eng.sync() == 2 and eng.durable_seq == 2


def _wait_durable(eng, seq, timeout_s=5.0):
    t0 = time.monotonic()
    while eng.durable_seq < seq and time.monotonic() - t0 < timeout_s:
        time.sleep(0.001)
    return eng.durable_seq


def test_engine_fsync_batch_syncer_thread_makes_records_durable_within_t(tmp_path):
    eng, d = journaled(tmp_path, fsync="batch", batch_records=10**6, batch_us=2000)
    eng.add_symbol(1)
    for i in range(10):
        eng.submit(1, i + 1, 0, 100 - i, 1)
    assert eng.journal.written_seq == 11           # every call hands its records to the OS
    assert _wait_durable(eng, 11) == 11            # the syncer thread fsyncs without a call
    assert eng.journal.fsyncs >= 1


def test_engine_fsync_batch_syncer_kicked_every_n_records(tmp_path):
    eng, d = journaled(tmp_path, fsync="batch", batch_records=5, batch_us=10**9)
    eng.add_symbol(1)
    for i in range(6):                              # 7 records written: one kick
        eng.submit(1, i + 1, 0, 100 - i, 1)
    assert _wait_durable(eng, 5) >= 5               # not the 1000 s timer: the record count
    assert eng.sync() == eng.journal_seq == 7 == eng.durable_seq


def _link(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs /proc (Linux)")
def test_engine_close_raises_fsync_failure_seen_only_by_syncer_thread(tmp_path):
    # The syncer thread keeps its fdatasync error for the next call to raise. close() stopped
    # the thread first and then no longer looked at that error: it fsynced again, which
    # succeeded (Linux reports a writeback error once per open file), and returned as if every
    # record were durable. Here the syncer's fdatasync fails (the segment's descriptor is a
    # pipe for a moment, which takes the write and refuses the fsync) and the record is lost.
    # The syncer runs on its timer only (no record count kicks it): kicked by the submit's own
    # write, it raced the submit's check after that write, which then saw the failure first
    # and raised (the test failed in about one run of four on a loaded machine); a timer
    # firing in the few microseconds of the call is that much rarer.
    before = set(os.listdir("/proc/self/task"))
    eng, d = journaled(tmp_path, fsync="batch", batch_records=10**9, batch_us=100_000,
                       trades=False)
    (tid,) = set(os.listdir("/proc/self/task")) - before          # the syncer thread

    def waiting_for_next_batch():
        # in pthread_cond_timedwait: a futex wait with a timeout (a mutex wait has none)
        with open(f"/proc/self/task/{tid}/syscall") as fh:
            f = fh.read().split()
        return f[0] == "202" and int(f[4], 16) != 0

    def switches():
        with open(f"/proc/self/task/{tid}/status") as fh:
            return next(int(line.split()[1]) for line in fh
                        if line.startswith("voluntary_ctxt_switches"))

    def wait_until(done):
        deadline = time.monotonic() + 60           # a guard against a hang, not a timing
        while not done():
            assert time.monotonic() < deadline
            time.sleep(0.001)

    eng.add_symbol(1)
    wait_until(lambda: eng.durable_seq == 1 and waiting_for_next_batch())
    (fd,) = [int(f) for f in os.listdir("/proc/self/fd") if _link(f).endswith(".mcj")]
    saved = os.dup(fd)
    r, w = os.pipe()
    try:
        os.dup2(w, fd)
        eng.submit(1, 1, 0, 100, 5)                # into the pipe; the syncer's fsync fails
        # its next round, which finds the record unsynced (nothing here may look at the
        # failure it keeps: eng.journal.failed would take it over for close())
        since = switches()
        wait_until(lambda: switches() > since and waiting_for_next_batch())
        os.dup2(saved, fd)
        assert eng.durable_seq == 1 < eng.journal_seq == 2
        with pytest.raises(JournalError, match="I/O failure"):
            eng.close()
    finally:
        for f in (saved, r, w):
            os.close(f)
    assert mc.Engine.recover(d, readonly=True).recovery_report.last_seq == 1


def _in_other_thread(fn):
    import threading
    out = []

    def run():
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out[0]


def test_engine_journal_writers_busy_while_the_engine_is_in_another_thread(tmp_path):
    # eng.journal and eng.trade_journal are the engine's writers: their sync(), commit() and
    # close() wrote the shared buffer without the engine's busy guard, so one called from a
    # thread while another's process() appended to it (without the GIL) interleaved their
    # writes: a journal recovery refused ("sequence break"), without an error at write time.
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    writers = (eng.journal, eng.trade_journal)
    with eng._holding():                              # this thread's read in several steps
        for w in writers:
            for call in (w.sync, w.commit, w.close):
                assert isinstance(_in_other_thread(call), mc.BusyError)
            w.sync()                                  # the holding thread's own calls go on
        assert eng.busy
    assert not eng.busy and not eng.journal.closed and eng.journal_seq == 2
    n = 4000
    cmds = np.zeros(n, mc.COMMAND_DTYPE)
    cmds["symbol"], cmds["side"], cmds["price"], cmds["qty"] = 1, np.arange(n) % 2, 100, 1
    stop = []

    def sync_meanwhile():
        refused = 0
        while not stop:
            try:
                eng.journal.sync()
            except mc.BusyError:
                refused += 1
            time.sleep(0.0002)       # with the engine free: the batches get their turn too
        return refused

    import threading
    results = []
    t = threading.Thread(target=lambda: results.append(sync_meanwhile()))
    t.start()
    try:
        for k in range(100):
            cmds["order_id"] = np.arange(10 + k * n, 10 + (k + 1) * n)
            while True:
                try:
                    eng.process(cmds)
                    break
                except mc.BusyError:              # the other thread's sync: nothing changed
                    pass
    finally:
        stop.append(True)
        t.join()
    live = eng.state_hash()
    eng.close()
    rec = mc.Engine.recover(d, readonly=True)         # (refused: "sequence break")
    assert rec.state_hash() == live and rec.recovery_report.last_seq == 2 + 100 * n


def test_engine_closed_journal_refuses_commands(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.close()
    with pytest.raises(JournalError, match="closed"):
        eng.submit(1, 1, 0, 100, 1)
    assert len(eng) == 0


# ---- trade capture ----

def test_trades_equal_fill_events_of_unjournaled_engine(tmp_path):
    steps, cmds = make_flow(15, 1500)
    eng, d = journaled(tmp_path, segment_bytes=16384)
    plain = mc.Engine()
    apply_steps(eng, steps, cmds, batch=1 << 30)
    evs = []
    apply_steps(plain, steps, cmds, batch=1 << 30, on_call=None)
    plain2 = mc.Engine()
    for st in steps:
        if st[0] == "cmd":
            evs.append(plain2.process(cmds[st[1]:st[1] + 1]))
        else:
            from durability_flow import apply_config
            apply_config(plain2, st)
    ev = np.concatenate(evs)
    fills = ev[ev["kind"] == K.FILL]
    eng.close()
    t = read_trades(d)
    assert len(t) == len(fills) > 100
    for a, b in (("taker_id", "order_id"), ("maker_id", "maker_id"), ("price", "price"),
                 ("qty", "qty"), ("taker_side", "side"), ("taker_owner", "owner"),
                 ("maker_owner", "maker_owner"), ("symbol", "symbol"), ("ts_ns", "ts_ns")):
        assert np.array_equal(t[a], fills[b]), a
    assert np.array_equal(t["seq"], np.arange(1, len(t) + 1))
    # cmd_seq names the taker's command; the last flag closes each command's fills
    rec = read_journal(d)
    by_seq = {int(s): c for s, c in zip(rec["seqs"], rec["commands"])}
    assert all(int(by_seq[int(cs)]["order_id"]) == int(tk)
               for cs, tk in zip(t["cmd_seq"], t["taker_id"]))
    ends = np.flatnonzero(np.diff(t["cmd_seq"].astype(np.int64)) != 0)
    assert t["last"][ends].all() and t["last"][-1] == 1


@pytest.mark.parametrize("n_symbols,seed", [(1, 31), (2, 32)])
def test_journaled_engine_on_big_books_equals_unjournaled_and_recovers(tmp_path, n_symbols,
                                                                       seed):
    # From 32,768 resting orders a journaled engine's batches, and recovery's replay of a
    # journal, run in chunks timed in two loops (one reads ahead through the books): the
    # events, the journals and the recovered state must not depend on the loop. Batches of 32
    # run the simple loop only.
    from engine_checks import big_book_commands
    cmds = big_book_commands(n_symbols, seed)
    plain = mc.Engine()
    eng, d = journaled(tmp_path)
    for s in range(n_symbols):
        plain.add_symbol(s)
        eng.add_symbol(s)
    want = np.concatenate([plain.process(cmds[i:i + 32]) for i in range(0, len(cmds), 32)])
    got = np.concatenate([eng.process(cmds[i:i + 4000]) for i in range(0, len(cmds), 4000)])
    assert sum(len(eng.book(s)) for s in range(n_symbols)) > 32_768
    assert_events_equal(got, want, labels=("journaled, big batches", "batches of 32"))
    assert eng.state_hash() == plain.state_hash()
    eng.close()
    full = read_trades(d)
    fills = want[want["kind"] == K.FILL]
    assert len(full) == len(fills) > 100
    assert np.array_equal(full["maker_id"], fills["maker_id"])
    # recovery replays the whole journal in one call, its books growing big on the way, and
    # writes every fill again into an emptied trade journal
    os.truncate(_last_segment(d, KIND_TRADES), _j.SEG_HEADER)
    report = _assert_recovers_with_trades(d, plain.state_hash(), full)
    assert report.trades_rewritten == len(full)


def test_read_trades_path_not_a_directory_raises_journalerror(tmp_path):
    # read_journal said so with JournalError; read_trades raised FileNotFoundError or
    # NotADirectoryError from inside its scan. A missing path is "no journal directory X", as
    # recovery, inspect and the CLI say it (both readers said "X is not a journal directory",
    # as if something else stood there)
    (tmp_path / "file").write_bytes(b"")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    for path, want in ((tmp_path / "missing", f"^no journal directory {tmp_path / 'missing'}$"),
                       (tmp_path / "dangling", f"^no journal directory {tmp_path / 'dangling'}$"),
                       (tmp_path / "file", f"^{tmp_path / 'file'} is not a directory$")):
        for read in (read_trades, read_journal):
            with pytest.raises(JournalError, match=want) as err:
                read(path)
            assert err.value.segment == str(path)


def test_directory_readers_given_segment_bytes_short_type_error(tmp_path):
    # read_journal takes a segment's bytes; read_trades and recover given them put the bytes'
    # whole repr in the message (about 4x the segment: 250 MB for a 64 MiB one), and
    # read_trades given a bytes path raised TypeError from inside its scan, naming nothing
    eng = mc.Engine(journal=tmp_path / "j", fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.SELL, 100, 5)
    eng.close()
    data = open(_last_segment(tmp_path / "j", KIND_COMMANDS), "rb").read()
    readers = (read_trades, lambda d: mc.Engine.recover(d, readonly=True),
               lambda d: mc.durability.recover(d, readonly=True))
    for source in (data, bytearray(data), memoryview(data), os.fsencode(tmp_path / "j")):
        for read in readers:
            with pytest.raises(TypeError, match="journal directory must be a str") as exc:
                read(source)
            assert len(str(exc.value)) < 400
            assert f"{len(source):,} bytes" in str(exc.value) or b"\0" not in bytes(source)

def test_trades_captured_with_record_events_false_per_call_and_batch(tmp_path):
    # record_events=False means nobody reads the events; trade capture still sees every fill.
    eng = mc.Engine(record_events=False, journal=tmp_path / "j", fsync="never")
    eng.add_symbol(1, "A")
    eng.submit(1, 1, mc.Side.SELL, 100, 5)
    eng.submit(1, 2, mc.Side.BUY, 100, 3)
    cmds = np.zeros(1, dtype=mc.COMMAND_DTYPE)
    cmds[0] = (7, 3, 100, 2, 0, 1, mc.CommandKind.SUBMIT, mc.Side.BUY, mc.TIF.GTC, 0)
    assert len(eng.process(cmds)) == 2           # a batch still returns its events (ACCEPTED, FILL)
    assert len(eng.events()) == 0                # the per-call ones are not kept
    eng.close()
    t = read_trades(tmp_path / "j")
    assert t["taker_id"].tolist() == [2, 3] and t["maker_id"].tolist() == [1, 1]
    assert t["qty"].tolist() == [3, 2] and t["price"].tolist() == [100, 100]


def test_trades_lost_tail_rewritten_by_recovery(tmp_path):
    steps, cmds = make_flow(16, 900)
    eng, d = journaled(tmp_path)
    apply_steps(eng, steps, cmds)
    eng.close()
    full = read_trades(d)
    seg = _last_segment(d, KIND_TRADES)
    os.truncate(seg, _j.SEG_HEADER + 104 * (len(full) // 2) + 50)  # torn, mid-command maybe
    rec = mc.Engine.recover(d)
    rep = rec.recovery_report
    assert rep.trades_rewritten > 0 and rep.trades_torn_tail is not None
    rec.close()
    again = read_trades(d)
    assert len(again) == len(full)
    for c in again.dtype.names:
        if c != "journal_ts_ns":                 # wall clock of the rewrite differs
            assert np.array_equal(again[c], full[c]), c


# ---- I/O failure ----

def test_engine_journal_write_failure_raises_and_refuses_further_commands(tmp_path):
    import resource
    import signal
    pid = os.fork()
    if pid == 0:  # child: a file size limit makes write(2) fail with EFBIG
        code = 1
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            eng = mc.Engine(journal=tmp_path / "j", fsync="never")
            eng.add_symbol(1)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
            try:
                for i in range(200):
                    eng.submit(1, i + 1, 0, 100, 1)
            except JournalError as exc:
                n = len(eng)
                try:
                    eng.submit(1, 10**6, 0, 100, 1)
                except JournalError:
                    code = 0 if "I/O failure" in str(exc) and len(eng) == n else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0



def test_engine_journal_io_failure_names_the_journal_and_segment(tmp_path):
    # "journal DIR: I/O failure: File too large" named the directory only: not whether the
    # command or the trade journal failed, nor which segment
    import resource
    import signal
    d = tmp_path / "j"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            eng = mc.Engine(journal=d, fsync="never")
            eng.add_symbol(1)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
            try:
                for i in range(200):                  # no fill: the command journal fails
                    eng.submit(1, i + 1, 0, 100, 1)
            except JournalError as exc:
                seg = str(d / "journal-00000000000000000001.mcj")
                code = 0 if (f"journal {d}: I/O failure in the command journal "
                             f"(journal-00000000000000000001.mcj): File too large"
                             in str(exc) and exc.path == seg) else 2
                if code:
                    print(exc, exc.path)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

def _exit_code_of_child(fn):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = fn()
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_engine_close_after_trade_journal_failure_releases_lock(tmp_path):
    import resource
    import signal
    d = tmp_path / "j"

    def child():  # a file size limit: the trade journal, growing fastest, fails first
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        eng = mc.Engine(journal=d, fsync="never")
        eng.add_symbol(1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
        oid = 1
        try:
            while True:
                for _ in range(20):
                    eng.submit(1, oid, mc.Side.SELL, 100, 1)
                    oid += 1
                eng.submit_market(1, oid, mc.Side.BUY, 20)
                oid += 1
        except JournalError:
            pass
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        eng.journal.check()                           # the command journal still works
        with pytest.raises(JournalError):
            eng.trade_journal.check()
        with pytest.raises(JournalError, match=r"I/O failure in the trade journal "
                                               r"\(trades-0+1\.mct\) on close"):
            eng.close()
        assert eng.journal.closed and eng.trade_journal.closed
        rec = mc.Engine.recover(d)                    # the remedy: the LOCK is free
        assert rec.recovery_report.last_seq == eng.journal_seq
        rec.close()
        return 0

    assert _exit_code_of_child(child) == 0


def test_engine_io_failure_names_its_segment_on_close_and_after(tmp_path):
    # close() after a failed write said "journal DIR: I/O failure on close: File too large",
    # naming neither the journal nor the segment (path None); and once closed, every later
    # call named a segment after the last record, journal-<next seq>.mcj, which no file was
    # ever called (the closed writer was taken for one whose segment roll had failed)
    import resource
    import signal
    d = tmp_path / "j"

    def child():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        eng = mc.Engine(journal=d, fsync="never")
        eng.add_symbol(1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        with pytest.raises(JournalError, match="I/O failure"):
            for i in range(200):                      # no fill: the command journal fails
                eng.submit(1, i + 1, 0, 100, 1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        seg = str(d / "journal-00000000000000000001.mcj")
        with pytest.raises(JournalError) as closing:
            eng.close()
        assert ("I/O failure in the command journal (journal-00000000000000000001.mcj) on "
                "close: File too large") in str(closing.value)
        assert closing.value.path == seg
        for call in (lambda: eng.submit(1, 10**6, 0, 100, 1), eng.journal.check,
                     lambda: eng.snapshot(tmp_path / "elsewhere")):
            with pytest.raises(JournalError, match="I/O failure") as later:
                call()
            assert "(journal-00000000000000000001.mcj)" in str(later.value), later.value
            assert later.value.path == seg
        return 0

    assert _exit_code_of_child(child) == 0


def test_engine_journal_creation_failing_leaves_the_directory_as_it_was(tmp_path):
    # Engine(journal=DIR) whose trade segment could not be created (here no descriptor is
    # left for it; a full disk fails it likewise) raised, and left LOCK and a command segment
    # with a whole header behind: the retry, once the cause was gone, was refused ("already
    # holds a journal: use Engine.recover"), for a journal no engine ever wrote. The retry is
    # made while the error is alive: the command writer, and its copy of the LOCK, in its
    # traceback kept the directory locked for as long as the error was kept
    import resource
    d = tmp_path / "j"
    d.mkdir()
    (d / "notes.txt").write_text("mine")

    def child():
        # descriptors for the LOCK and the command writer, none for the trade writer's segment
        probe = [os.dup(0) for _ in range(4)]
        limit = max(probe) + 1
        for fd in probe:
            os.close(fd)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        try:
            mc.Engine(journal=d, fsync="never")
        except OSError as exc:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            assert exc.errno == errno.EMFILE
            assert sorted(os.listdir(d)) == ["notes.txt"]
            eng = mc.Engine(journal=d)
            assert eng.journal_seq == 0
            eng.add_symbol(1)
            eng.close()
            return 0
        return 3

    assert _exit_code_of_child(child) == 0


def test_engine_journal_creation_out_of_descriptors_leaves_the_directory_as_found(tmp_path):
    # with no descriptor left at each step of Engine(journal=DIR) in turn, the directory is
    # left as it was found: a failure after the LOCK was taken and before any segment was made
    # (listing the directory again under the lock) left the LOCK this start had made, and the
    # directory it had made, with it
    import resource

    def child():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        free = os.dup(0)                    # the lowest descriptor free: nothing opens below
        os.close(free)
        for made in (False, True):          # DIR there already, or made by the engine
            failures = 0
            for limit in range(free, free + 16):
                d = tmp_path / f"j{int(made)}-{limit}"
                if not made:
                    d.mkdir()
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
                try:
                    eng = mc.Engine(journal=d, fsync="batch")
                except OSError as exc:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                    assert exc.errno == errno.EMFILE, exc
                    # named: the writers' copies of the LOCK descriptor failed with a bare
                    # "[Errno 24] Too many open files"
                    # (the parent, for the directory's name made durable in it)
                    assert exc.filename is not None and (
                        str(d) in str(exc.filename) or str(exc.filename) == str(tmp_path)), (
                            limit, exc, exc.filename)
                    left = sorted(os.listdir(d)) if d.exists() else None
                    assert left == ([] if not made else None), (limit, left, exc)
                    failures += 1
                    continue
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                eng.close()
                break
            else:
                return 3
            if failures < 3:
                return 4
        return 0

    assert _exit_code_of_child(child) == 0


def test_engine_journal_creation_failing_on_its_first_header_leaves_nothing(tmp_path):
    # the command segment's header cut short by the file size limit (a full disk: ENOSPC):
    # the directory the constructor made, its LOCK and the torn segment were left behind
    import resource
    import signal
    d = tmp_path / "new"

    def child():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (32, hard))
        try:
            mc.Engine(journal=d)
        except OSError as exc:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            assert exc.errno == errno.EFBIG
            assert exc.filename == str(d / "journal-00000000000000000001.mcj"), exc
            assert not d.exists()
            return 0
        return 3

    assert _exit_code_of_child(child) == 0

def _roll_that_fails(tmp_path):
    """A journaled engine of one symbol whose next segment cannot be created (its file is
    already there: the roll's O_EXCL create fails); returns (engine, directory, the seq of
    the first command that needs that segment)."""
    eng, d = journaled(tmp_path, segment_bytes=_j.SEG_HEADER + _j.MAX_RECORD)
    eng.add_symbol(1)                                 # 104 bytes; commands 88 each
    roll_seq = 2 + (_j.MAX_RECORD - 104) // 88
    (d / f"journal-{roll_seq:020d}.mcj").write_bytes(b"")
    return eng, d, roll_seq


def test_engine_close_after_failed_segment_roll_releases_lock(tmp_path):
    eng, d, roll_seq = _roll_that_fails(tmp_path)
    with pytest.raises(JournalError, match="I/O failure") as err:
        for i in range(1, roll_seq + 1):
            eng.submit(1, i, 0, 100 - i % 50, 1)
    # the segment the roll could not create, not the last one written
    name = f"journal-{roll_seq:020d}.mcj"
    assert f"I/O failure in the command journal ({name}): File exists" in str(err.value)
    assert err.value.path == str(d / name)
    assert eng.journal_seq == roll_seq - 1
    eng.close()
    assert eng.journal.closed
    rec = mc.Engine.recover(d)
    assert rec.recovery_report.last_seq == roll_seq - 1
    rec.close()



def test_engine_command_writer_closed_alone_keeps_the_lock_while_the_trade_writer_is_open(
        tmp_path):
    # eng.journal.close() released the directory's LOCK with the trade writer still open: a
    # second engine recovered the directory and captured fills, then the first engine's trade
    # writer, collected, cut the trade segment back to its own end (the fills gone, and the
    # next ones after a sequence break that recovery refuses as corruption)
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 1)
    eng.submit(1, 2, mc.Side.SELL, 100, 1)
    eng.journal.close()
    with pytest.raises(JournalError, match="in use"):
        mc.Engine.recover(d)
    assert len(read_trades(d)) == 1
    eng.close()                                       # the trade writer too: the lock is free
    rec = mc.Engine.recover(d)
    rec.submit(1, 3, mc.Side.BUY, 100, 1)
    rec.submit(1, 4, mc.Side.SELL, 100, 1)
    del eng
    rec.close()
    assert read_trades(d)["seq"].tolist() == [1, 2]
    mc.Engine.recover(d).close()


def test_engine_trade_writer_kept_after_its_engine_keeps_the_lock(tmp_path):
    # the command writer collected with its engine released the lock while the trade writer,
    # kept by the caller, still held its segment open
    import gc
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 1)
    eng.submit(1, 2, mc.Side.SELL, 100, 1)
    trades = eng.trade_journal
    del eng
    gc.collect()
    with pytest.raises(JournalError, match="in use"):
        mc.Engine.recover(d)
    trades.close()
    rec = mc.Engine.recover(d)
    assert rec.recovery_report.last_seq == 3
    rec.close()


def _fills_beyond_command_journal(d):
    """cmd_seqs of the trade records whose command the command journal does not hold."""
    last = read_journal(d)["index"]["seq"]
    last = int(last[-1]) if len(last) else 0
    return sorted({int(s) for s in read_trades(d)["cmd_seq"] if s > last})


def test_failed_segment_roll_writes_no_fill_of_the_unjournaled_command(tmp_path):
    # The command whose record the failed roll could not append had its fills appended to the
    # trade journal all the same, and written there at the end of the call: read_trades(DIR)
    # listed a trade of a command that no journal holds.
    eng, d, roll_seq = _roll_that_fails(tmp_path)
    with pytest.raises(JournalError, match="I/O failure"):
        for i in range(1, roll_seq + 1):
            eng.submit(1, i, i % 2, 100, 1)           # every second one fills
    assert eng.journal_seq == roll_seq - 1 and roll_seq % 2 == 1
    (d / f"journal-{roll_seq:020d}.mcj").unlink()
    assert _fills_beyond_command_journal(d) == []
    eng.close()                                       # (the trade journal's buffer too)
    assert _fills_beyond_command_journal(d) == []



def test_recovery_failing_to_rewrite_fills_names_the_trade_segment(tmp_path):
    # a recovery whose rewrite of lost fills failed (a full disk; here the file size limit)
    # raised the trade writer's own error: "the engine refuses further commands; recover from
    # the journal on disk", of an engine recovery had not returned, naming no segment
    import resource
    import signal
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    for i in range(1, 201):                            # every sell fills the buy before it
        eng.submit(1, i, mc.Side.BUY if i % 2 else mc.Side.SELL, 100, 1)
    eng.close()
    full = read_trades(d)
    seg = _last_segment(d, KIND_TRADES)
    os.truncate(seg, _j.SEG_HEADER)                    # every fill lost

    def child():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (_j.SEG_HEADER + 10 * 104, hard))
        with pytest.raises(JournalError) as err:
            mc.Engine.recover(d, buffer_bytes=_j.MAX_RECORD)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        msg = str(err.value)
        assert msg.startswith(f"{d}: recovery could not write the fills it rewrites into the "
                              f"trade journal ({os.path.basename(seg)}): File too large"), msg
        assert "recover again" in msg and "the engine refuses" not in msg
        assert err.value.path == str(seg)
        return 0

    assert _exit_code_of_child(child) == 0
    rec = mc.Engine.recover(d)                         # the next one goes on from them
    rec.close()
    again = read_trades(d)
    for c in again.dtype.names:
        if c != "journal_ts_ns":
            assert np.array_equal(again[c], full[c]), c

def test_failed_command_write_writes_no_fill_of_commands_not_on_file(tmp_path):
    import resource
    import signal
    d = tmp_path / "j"

    def child():
        # a file size limit: the command segment (88 bytes a command, 104 a fill, one fill
        # every fourth command) reaches it first; that call's fills were still written
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        eng = mc.Engine(journal=d, fsync="never")
        eng.add_symbol(1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, resource.RLIM_INFINITY))
        cmds = np.zeros(64, mc.COMMAND_DTYPE)
        cmds["symbol"] = 1
        cmds["side"] = np.arange(64) % 4 == 3
        cmds["price"] = 100
        cmds["qty"] = 1
        oid = 1
        with pytest.raises(JournalError, match="I/O failure"):
            for _ in range(1000):
                cmds["order_id"] = np.arange(oid, oid + 64)
                oid += 64
                eng.process(cmds)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        assert _fills_beyond_command_journal(d) == []
        with pytest.raises(JournalError):
            eng.close()
        assert _fills_beyond_command_journal(d) == []
        rec = mc.Engine.recover(d)                    # recovery holds them all the same
        assert rec.recovery_report.last_seq == len(read_journal(d)["index"])
        rec.close()
        return 0

    assert _exit_code_of_child(child) == 0


def test_recovery_record_events_given_to_recover_trades_still_rewritten(tmp_path):
    eng, d = journaled(tmp_path, record_events=False)
    eng.add_symbol(1)
    for i in range(1, 201):                            # every sell fills the buy before it
        eng.submit(1, i, mc.Side.BUY if i % 2 else mc.Side.SELL, 100, 1)
    eng.close()
    full = read_trades(d)
    assert len(full) == 100
    os.truncate(_last_segment(d, KIND_TRADES), _j.SEG_HEADER)       # every fill lost
    rec = mc.Engine.recover(d, record_events=False)
    assert rec.record_events is False and rec.recovery_report.trades_rewritten == 100
    rec.submit(1, 1000, mc.Side.BUY, 100, 1)
    rec.submit(1, 1001, mc.Side.SELL, 100, 1)
    assert len(rec.events()) == 0                      # none pile up on the per-call path
    rec.close()
    again = read_trades(d)
    assert len(again) == 101 and np.array_equal(again["maker_id"][:100], full["maker_id"])
    default = mc.Engine.recover(d, readonly=True)
    assert default.record_events is True
    with pytest.raises(TypeError, match="record_events"):
        mc.Engine.recover(d, record_events=None)


@pytest.mark.parametrize("snapshot", [False, True])
@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize("trades", [True, False])
@pytest.mark.parametrize("record_events", [True, False])
def test_recovery_books_record_events_as_fresh_engine_books(tmp_path, record_events, trades,
                                                            readonly, snapshot):
    # The books of a recovered engine are those a fresh engine with the same arguments makes:
    # they record events when the engine does (record_events, or trade capture attached). A
    # recovery with record_events=False gave books that said record_events=True, so a copy of
    # one, or the book once the engine was gone, wrote events.
    import copy
    eng, d = journaled(tmp_path, trades=trades)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    if snapshot:
        eng.snapshot()
    eng.add_symbol(2, "X")
    eng.close()
    fresh = (mc.Engine(record_events=record_events) if readonly else
             mc.Engine(journal=tmp_path / "fresh", fsync="never", record_events=record_events,
                       trades=trades))
    fresh.add_symbol(1)
    want = fresh.book(1).record_events
    fresh.close()
    rec = mc.Engine.recover(d, record_events=record_events, trades=trades, readonly=readonly)
    assert rec.recovery_report.snapshot_seq == (2 if snapshot else 0)
    assert [rec.book(s).record_events for s in (1, 2)] == [want, want]
    twin = copy.copy(rec.book(1))
    twin.submit(2, mc.Side.SELL, 100, 2)
    assert len(twin.events()) == (2 if want else 0)
    book = rec.book(2)
    rec.close()
    del rec
    book.submit(1, mc.Side.BUY, 100, 5)
    assert len(book.events()) == (1 if want else 0)


def test_recovery_old_segments_deleted_after_snapshot_still_recovers(tmp_path):
    steps, cmds = make_flow(17, 900)
    eng, d = journaled(tmp_path, segment_bytes=16384)
    apply_steps(eng, steps[:600], cmds)
    snap = eng.snapshot()
    apply_steps(eng, steps[600:], cmds)
    eng.close()
    seq = int(os.path.basename(snap)[9:29])
    segs = segment_files(d, KIND_COMMANDS)
    old = [f for (first, f), (nxt, _) in zip(segs, segs[1:]) if nxt - 1 <= seq]
    assert old
    for f in old:
        os.unlink(f)
    rec = mc.Engine.recover(d, readonly=True)
    assert rec.state_hash() == eng.state_hash() and rec.recovery_report.snapshot == snap
    with pytest.raises(JournalError, match="journal starts at seq"):
        mc.Engine.recover(d, snapshot=False, readonly=True)


@pytest.mark.parametrize("lock", ["directory", "dangling symlink", "symlink out", "fifo"])
@pytest.mark.parametrize("route", ["new", "recover"])
def test_journal_lock_not_regular_file_refused_nothing_changed(tmp_path, lock, route):
    # The LOCK file is opened without following a symbolic link: one pointing elsewhere made
    # (and locked) a file outside the journal directory; a directory or a dangling link under
    # the name raised a bare IsADirectoryError / FileNotFoundError.
    d = tmp_path / "j"
    outside = tmp_path / "elsewhere" / "LOCK"
    if route == "recover":
        eng, d = journaled(tmp_path)
        eng.add_symbol(1)
        eng.close()
        os.unlink(d / "LOCK")
    else:
        d.mkdir()
    if lock == "directory":
        (d / "LOCK").mkdir()
    elif lock == "dangling symlink":
        os.symlink(tmp_path / "nowhere" / "LOCK", d / "LOCK")
    elif lock == "fifo":
        os.mkfifo(d / "LOCK")
    else:
        outside.parent.mkdir()
        os.symlink(outside, d / "LOCK")

    def listing():
        return {n: os.lstat(d / n).st_size for n in os.listdir(d)}

    before = listing()
    with pytest.raises(JournalError, match="LOCK is not a regular file") as info:
        if route == "new":
            mc.Engine(journal=d, fsync="never")
        else:
            mc.Engine.recover(d)
    assert str(d / "LOCK") in str(info.value)
    assert listing() == before
    assert os.path.lexists(d / "LOCK") and not os.path.exists(outside)


@pytest.mark.parametrize("lock", ["directory", "dangling symlink", "fifo"])
def test_journal_lock_not_regular_file_shown_by_inspect_and_readonly_recovery(tmp_path, capsys,
                                                                            lock):
    # journal inspect and the read-only recovery (recover without --repair) said nothing of a
    # LOCK that the writing recovery then refused: the preview looked clean
    import json

    from matchcore.__main__ import main
    from matchcore.durability import inspect
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.close()
    os.unlink(d / "LOCK")
    if lock == "directory":
        (d / "LOCK").mkdir()
    elif lock == "dangling symlink":
        os.symlink(tmp_path / "nowhere" / "LOCK", d / "LOCK")
    else:
        os.mkfifo(d / "LOCK")
    before = {n: os.lstat(d / n).st_size for n in os.listdir(d)}
    with pytest.raises(JournalError, match="LOCK is not a regular file") as info:
        mc.Engine.recover(d)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.lock_refused == str(info.value)
    assert f"  REFUSED: {info.value}" in ro.summary().splitlines()
    assert inspect(d)["lock_refused"] == str(info.value)
    assert main(["journal", "inspect", str(d)]) == 0
    assert f"LOCK: {info.value}" in capsys.readouterr().out
    assert main(["journal", "inspect", str(d), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["lock_refused"] == str(info.value)
    assert main(["recover", str(d)]) == 0
    assert f"  REFUSED: {info.value}" in capsys.readouterr().out.splitlines()
    assert {n: os.lstat(d / n).st_size for n in os.listdir(d)} == before
    # a regular LOCK (or none) is nothing to report
    os.rmdir(d / "LOCK") if lock == "directory" else os.unlink(d / "LOCK")
    assert mc.Engine.recover(d, readonly=True).recovery_report.lock_refused is None
    assert inspect(d)["lock_refused"] is None


@pytest.mark.parametrize("kind,exc", [(0, ValueError), (7, ValueError), (-1, ValueError),
                                      (True, TypeError), (1.0, TypeError), ("x", TypeError)])
def test_read_journal_bad_kind_refused_naming_it(tmp_path, kind, exc):
    # read_journal(DIR, kind) and scan_journal raised a bare KeyError for a kind that is
    # neither journal (KeyError: 0), and took True and 1.0 for the command journal
    from matchcore.durability import scan_journal
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.close()
    seg = open(_last_segment(d), "rb").read()
    for call in (lambda: read_journal(d, kind), lambda: read_journal(seg, kind),
                 lambda: scan_journal(d, kind)):
        with pytest.raises(exc, match="kind must be KIND_COMMANDS"):
            call()
    assert len(read_journal(d, np.int64(KIND_COMMANDS))["configs"]) == 1


def test_recovery_segment_replacement_leftover_removed_and_reported(tmp_path):
    # a crash between creating a segment's ".new" (a recovered writer replacing an empty last
    # segment whose header records other options) and its rename left it there for good
    from matchcore.durability import inspect
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.close()
    seg = Path(_last_segment(d))
    left = d / (seg.name + ".new")
    left.write_bytes(seg.read_bytes()[:64])
    other = d / "journal-notes.mcj.new"                  # not a name the writer makes
    other.write_bytes(b"x")
    before = _files_and_sizes(d)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert _files_and_sizes(d) == before and ro.removed_temporaries == []
    assert ro.temporaries_to_remove == [str(left)]
    assert "would remove 1 stale segment temporary file(s)" in ro.summary()
    assert inspect(d)["temporaries_to_remove"] == [left.name]
    rep = mc.Engine.recover(d).recovery_report
    assert not left.exists() and other.exists()
    assert rep.modified and rep.removed_temporaries == [str(left)]
    assert "removed 1 stale segment temporary file(s)" in rep.summary()
    assert "snapshot temporary" not in rep.summary()
    assert inspect(d)["temporaries_to_remove"] == []


@pytest.mark.parametrize("what", ["directory", "foreign file", "symlink"])
def test_recovery_segment_temporary_name_not_a_writers_file_left_alone_nothing_cut(tmp_path,
                                                                                  what):
    # a directory under a segment temporary's name made a writing recovery fail with a bare
    # IsADirectoryError after it had cut the torn tail, and inspect said recovery removes it;
    # a file the writer could not have written (not a segment header's bytes), or a symlink,
    # was deleted as the writer's
    from matchcore.durability import inspect
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    seg = Path(_last_segment(d))
    with open(seg, "ab") as f:
        f.write(b"\x58\0\0\0torn")                      # a torn tail recovery cuts
    h = mc.Engine.recover(d, readonly=True).state_hash()
    name = d / f"journal-{9:020d}.mcj.new"
    if what == "directory":
        name.mkdir()
    elif what == "foreign file":
        name.write_bytes(b"a user's notes")
    else:
        name.symlink_to(seg)
    assert mc.Engine.recover(d, readonly=True).recovery_report.temporaries_to_remove == []
    assert inspect(d)["temporaries_to_remove"] == []
    rec = mc.Engine.recover(d)
    assert rec.state_hash() == h and rec.recovery_report.removed_temporaries == []
    rec.close()
    assert os.path.lexists(name)
    assert not mc.Engine.recover(d, readonly=True).recovery_report.torn_tail


@pytest.mark.parametrize("what", ["symlink", "foreign file", "directory"])
def test_recovery_replacing_empty_segment_foreign_entry_at_its_new_name_refused_nothing_changed(
        tmp_path, what):
    # a recovery given other options than an empty last segment records writes the new one as
    # "<segment>.new" and renames it over: through a symbolic link there it overwrote the
    # link's target with a segment header and renamed the link over the segment; a user's file
    # there was truncated into the segment, a directory failed the start after the repairs
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    mc.Engine.recover(d, fsync="always").close()           # an empty last segment: "always"
    seg = Path(_last_segment(d))
    assert seg.stat().st_size == 64
    user = tmp_path / "precious.txt"
    user.write_text("keep me\n")
    aside = Path(str(seg) + ".new")
    if what == "symlink":
        aside.symlink_to(user)
    elif what == "foreign file":
        aside.write_text("keep me too\n")
    else:
        aside.mkdir()
    with open(seg, "ab") as f:
        f.write(b"\x58\0\0\0torn")                       # a torn tail recovery would cut
    before = {n: (os.path.islink(d / n), os.path.isdir(d / n),
                  None if (d / n).is_dir() else (d / n).read_bytes()) for n in os.listdir(d)}
    with pytest.raises(FileExistsError, match=re.escape(aside.name)) as info:
        mc.Engine.recover(d, fsync="never")
    assert info.value.filename == str(aside)
    assert user.read_text() == "keep me\n"
    assert {n: (os.path.islink(d / n), os.path.isdir(d / n),
                None if (d / n).is_dir() else (d / n).read_bytes())
            for n in os.listdir(d)} == before
    if what != "directory":
        aside.unlink()
    else:
        aside.rmdir()
    rec = mc.Engine.recover(d, fsync="never")
    assert rec.recovery_report.replaced_files == [str(seg)] and not seg.is_symlink()
    rec.close()


@pytest.mark.parametrize("bad", [None, 5, 1.5])
def test_journal_directory_not_a_path_type_error_not_a_directory_of_its_str(tmp_path,
                                                                           monkeypatch, bad):
    # recover(None) looked for the directory str(None): a journal in ./None was recovered (and
    # with it locked and written), recover(5) read ./5, and read_trades(5) took 5 for a file
    # descriptor; read_journal(None), inspect(None) raised os.stat's own message
    from matchcore.durability import inspect
    monkeypatch.chdir(tmp_path)
    eng = mc.Engine(journal=str(bad), fsync="never")
    eng.add_symbol(1)
    eng.close()
    before = _files_and_sizes(tmp_path / str(bad))
    calls = (lambda: mc.Engine.recover(bad), lambda: mc.Engine.recover(bad, readonly=True),
             lambda: mc.durability.recover(bad, readonly=True), lambda: read_trades(bad),
             lambda: read_journal(bad), lambda: inspect(bad))
    if bad is not None:         # None there: no journal, the journal's own directory
        calls += (lambda: mc.Engine(journal=bad), lambda: mc.Engine().snapshot(bad))
    for call in calls:
        with pytest.raises(TypeError, match=re.escape(
                f"directory must be a str or os.PathLike of str, got {type(bad).__name__} "
                f"{bad!r}")):
            call()
    assert _files_and_sizes(tmp_path / str(bad)) == before


def test_recovery_readonly_attaches_no_journal_its_position_is_the_reports_last_seq(tmp_path):
    # read-only, no journal is attached: journal_seq and durable_seq are 0 (as for any engine
    # without a journal), and the position recovered is the report's last_seq, which a
    # writing recovery's engine then holds as both
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.snapshot()
    eng.submit(1, 2, mc.Side.SELL, 100, 2)
    n = eng.journal_seq
    eng.close()
    ro = mc.Engine.recover(d, readonly=True)
    assert ro.journal is None and ro.trade_journal is None
    assert ro.journal_seq == 0 and ro.durable_seq == 0
    assert ro.recovery_report.last_seq == n and ro.recovery_report.snapshot_seq == n - 1
    rec = mc.Engine.recover(d)
    assert rec.journal_seq == rec.durable_seq == rec.recovery_report.last_seq == n
    rec.close()


def test_lock_taken_on_a_lock_file_removed_meanwhile_is_taken_again(tmp_path, monkeypatch):
    # A start that gives up removes the LOCK it made (a refused recovery, a journal that
    # could not start). Another one that had opened that file and took its flock after the
    # removal held the lock of a file no longer in the directory: it went on as the writer,
    # and the next engine made a new LOCK, took it too, and wrote into the same journal
    # (and journal inspect, looking for the directory's LOCK in the lock table, said no
    # writer was alive). The lock is taken again on the file the directory holds.
    import fcntl

    from matchcore.durability.journal import lock_directory, lock_held
    d = tmp_path / "j"
    d.mkdir()
    lock = d / "LOCK"
    real = fcntl.flock
    removed = []

    def flock_after_removal(fd, op):
        if not removed:                      # the other start gives up between open and flock
            os.unlink(lock)
            removed.append(True)
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock_after_removal)
    fd = lock_directory(d)
    monkeypatch.setattr(fcntl, "flock", real)
    try:
        assert removed
        st = os.fstat(fd)
        assert os.path.exists(lock) and os.stat(lock).st_ino == st.st_ino
        assert lock_held(d)
        with pytest.raises(JournalError, match="in use by another engine"):
            lock_directory(d)                # a second writer is refused by that lock
    finally:
        os.close(fd)


def test_sync_failures_of_recovery_and_snapshots_name_the_file(tmp_path, monkeypatch):
    # an fsync that fails (EIO: a disk error, a full thin volume) said "[Errno 5] Input/output
    # error" alone: not which segment recovery was syncing, nor which directory a snapshot's
    # rename was being made durable in
    import errno as _errno
    import stat as _stat
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.close()
    real_fdatasync, real_fsync = os.fdatasync, os.fsync

    def failing(fd):
        raise OSError(_errno.EIO, os.strerror(_errno.EIO))

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(OSError) as err:
        mc.Engine.recover(d)
    assert err.value.errno == _errno.EIO
    assert err.value.filename == str(d / "journal-00000000000000000001.mcj"), err.value
    assert "journal-00000000000000000001.mcj" in str(err.value)
    monkeypatch.setattr(os, "fdatasync", real_fdatasync)

    def failing_on_directories(fd):
        if _stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(_errno.EIO, os.strerror(_errno.EIO))
        return real_fsync(fd)

    plain = mc.Engine()
    plain.add_symbol(1)
    (tmp_path / "snaps").mkdir()
    monkeypatch.setattr(os, "fsync", failing_on_directories)
    with pytest.raises(OSError) as err:
        plain.snapshot(tmp_path / "snaps")
    assert err.value.errno == _errno.EIO
    assert err.value.filename == str(tmp_path / "snaps"), err.value
    assert str(tmp_path / "snaps") in str(err.value)
