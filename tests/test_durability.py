"""Engine durability: the command journal, trade capture, snapshots, recovery and damage.

Proof (a): the live engine, a full journal replay and snapshot + tail give one state hash at many
random points. Proof (c): truncating or flipping bytes anywhere never crashes recovery and never
yields a state the undamaged prefix would not give. (Proof (b), kill -9, is test_durability_kill.)
"""
from __future__ import annotations

import os
import shutil
import struct
import time
import zlib

import numpy as np
import pytest

import matchcore as mc
from matchcore.durability import (
    JournalError, SnapshotFileError, inspect, load_snapshot, read_journal, read_trades,
)
from matchcore.durability import _journal as _j
from matchcore.durability.snapshot import snapshot_bytes
from matchcore.durability.journal import segment_files, KIND_COMMANDS, KIND_TRADES
from conftest import assert_events_equal
from durability_flow import PrefixHashes, apply_steps, make_flow

K = mc.EventKind


def journaled(tmp_path, name="j", **kw):
    d = tmp_path / name
    kw.setdefault("fsync", "never")
    return mc.Engine(journal=d, **kw), d


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


def _crc32c_py(data: bytes) -> int:
    # bit-by-bit CRC-32C (reflected 0x82F63B78): an independent, obviously correct reference
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


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


def _files_and_sizes(d):
    return {n: os.path.getsize(os.path.join(d, n)) for n in os.listdir(d)}


@pytest.mark.parametrize("bad", BAD_JOURNAL_OPTIONS + [{"bogus": 1}, {"fsync": "sometimes"}],
                         ids=str)
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


def test_engine_closed_journal_refuses_commands(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.close()
    with pytest.raises(JournalError, match="closed"):
        eng.submit(1, 1, 0, 100, 1)
    assert len(eng) == 0


# ---- proof (a): live == full replay == snapshot + tail ----

@pytest.mark.parametrize("seed,per_call", [(3, False), (4, True)])
def test_recovery_three_routes_one_hash_at_random_points(tmp_path, seed, per_call):
    steps, cmds = make_flow(seed, 1500)
    rng = np.random.default_rng(seed)
    eng, d = journaled(tmp_path, fsync="batch", segment_bytes=32768)
    pos, checked = 0, 0
    while pos < len(steps):
        step = int(rng.integers(1, 120))
        apply_steps(eng, steps[pos:pos + step], cmds, per_call=per_call,
                    batch=int(rng.integers(1, 40)))
        pos += step
        if rng.random() < 0.3:
            eng.snapshot()
        eng.sync()
        live = eng.state_hash()
        full = mc.Engine.recover(d, snapshot=False, readonly=True)
        tail = mc.Engine.recover(d, readonly=True)
        assert full.state_hash() == live == tail.state_hash(), pos
        assert full.recovery_report.last_seq == min(pos, len(steps)) == eng.journal_seq
        checked += 1
    assert checked >= 15
    assert tail.recovery_report.snapshot is not None
    tail.check_invariants()


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_recovery_replay_in_reused_chunks_same_hash_configs_between(tmp_path, monkeypatch,
                                                                   chunk):
    # Recovery extracts a segment's commands into arrays reused from chunk to chunk and reads
    # segments into one reused buffer: chunk edges falling anywhere among the config records,
    # and segments of unequal sizes read into the same buffer, must give the live state.
    from matchcore.durability import recovery
    monkeypatch.setattr(recovery, "_REPLAY_CHUNK", chunk)
    steps, cmds = make_flow(11, 700)
    eng, d = journaled(tmp_path, segment_bytes=16384)
    apply_steps(eng, steps, cmds, batch=33)
    live = eng.state_hash()
    eng.close()
    assert len(segment_files(d, KIND_COMMANDS)) > 3
    rec = mc.Engine.recover(d, readonly=True)
    assert rec.state_hash() == live
    assert rec.recovery_report.replayed_commands == 700
    assert rec.recovery_report.replayed_configs == sum(s[0] != "cmd" for s in steps)


def test_recovery_divergence_past_first_chunk_names_its_seq_and_offset(tmp_path, monkeypatch):
    # The divergence message names the diverging record: with replays in chunks, the seq and
    # offset must be those of the record in its chunk, not of the chunk's first entry.
    from matchcore.durability import recovery
    monkeypatch.setattr(recovery, "_REPLAY_CHUNK", 4)
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    for oid in range(1, 12):
        eng.submit(1, oid, 0, 100, 5)
    eng.close()
    seg = segment_files(d, KIND_COMMANDS)[0][1]
    data = bytearray(open(seg, "rb").read())
    idx = _j.scan_segment(bytes(data), KIND_COMMANDS, 1)[0]
    k = 10                                    # record 10: the 10th submit, in the third chunk
    off, length = int(idx["offset"][k]), int(idx["length"][k])
    struct.pack_into("<q", data, off + length - 8, 77)        # the recorded result
    struct.pack_into("<I", data, off + 4, _crc32c_py(bytes(data[off + 8:off + length])))
    open(seg, "wb").write(bytes(data))
    with pytest.raises(JournalError, match=rf"replay diverged at seq {int(idx['seq'][k])} "
                                           rf"\(.*, offset {off}\): recorded outcome 77"):
        mc.Engine.recover(d, readonly=True)


def test_read_buffer_reads_to_end_of_file_grown_or_shrunk_reused(tmp_path):
    # ReadBuffer reads as read() does, to the end of the file, whatever size it was told: a
    # segment may grow while it is read (a live writer); a shorter file read after a longer
    # one must not show the longer one's tail.
    from matchcore.durability.journal import ReadBuffer, read_regular_file
    big, small = os.urandom(100_000), os.urandom(3_000)
    f = tmp_path / "f"
    f.write_bytes(big)
    rb = ReadBuffer()
    with open(f, "rb", buffering=0) as fh:
        assert rb.read(fh, 10).tobytes() == big           # grew past the size told
    f.write_bytes(small)
    with open(f, "rb", buffering=0) as fh:
        assert rb.read(fh, 100_000).tobytes() == small    # shrank: no stale tail
    assert read_regular_file(f, rb).tobytes() == small
    f.write_bytes(b"")
    assert read_regular_file(f, rb).tobytes() == b"" == read_regular_file(f)


def test_extract_commands_into_out_equals_fresh_refuses_short_out(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    for oid in range(1, 9):
        eng.submit(1, oid, oid % 2, 100 + oid, 5)
    eng.close()
    data = open(segment_files(d, KIND_COMMANDS)[0][1], "rb").read()
    idx = _j.scan_segment(data, KIND_COMMANDS, 1)[0]
    offs = np.ascontiguousarray(idx["offset"][idx["type"] == _j.REC_COMMAND])
    want = _j.extract_commands(data, offs)
    out = (np.zeros(20, mc.COMMAND_DTYPE), np.zeros(20, np.uint64), np.zeros(20, np.int64))
    got = _j.extract_commands(data, offs, out)
    for w, g, o in zip(want, got, out):
        assert np.array_equal(w, g) and len(g) == 8 and np.shares_memory(g, o)
    short = (np.zeros(7, mc.COMMAND_DTYPE), np.zeros(20, np.uint64), np.zeros(20, np.int64))
    with pytest.raises(ValueError, match="at least len"):
        _j.extract_commands(data, offs, short)
    with pytest.raises(ValueError, match="as long as offsets"):
        _j.extract_commands(data, offs, (out[0], np.zeros(3, np.uint64), out[2]))


def test_recovery_stray_segment_like_names_ignored_appends_to_last_segment(tmp_path):
    # The writer found the segment to continue by sorting every name with the segment prefix and
    # suffix as text: a "journal-backup.mcj" (which the readers ignore) came last, and recovery
    # failed with ValueError from int("backup") after cutting the torn tail.
    eng, d = journaled(tmp_path, segment_bytes=_j.SEG_HEADER + _j.MAX_RECORD)
    eng.add_symbol(1)
    for k in range(300):
        eng.submit(1, k + 1, k % 2, 100 + k % 7, 3)
    eng.close()
    first, last = segment_files(d, KIND_COMMANDS)[0][1], _last_segment(d)
    shutil.copy(first, d / "journal-backup.mcj")
    shutil.copy(_last_segment(d, KIND_TRADES), d / "trades-old.mct")
    with open(last, "ab") as fh:
        fh.write(b"\x58\0\0\0torn")                   # a torn tail to cut
    rec = mc.Engine.recover(d, fsync="never")
    assert rec.recovery_report.last_seq == 301 and rec.recovery_report.cut_bytes == 8
    rec.submit(1, 1000, 0, 120, 5)                   # appended to the real last segment
    live = rec.state_hash()
    rec.close()
    assert _last_segment(d) == last
    again = mc.Engine.recover(d, readonly=True)
    assert again.recovery_report.last_seq == 302 and again.state_hash() == live
    t = read_trades(d)
    assert len(t) > 0 and np.array_equal(t["seq"], np.arange(1, len(t) + 1))
    assert (d / "journal-backup.mcj").read_bytes() == open(first, "rb").read()

def test_recovered_engine_keeps_journaling_into_dir(tmp_path):
    steps, cmds = make_flow(5, 800)
    eng, d = journaled(tmp_path, fsync="batch")
    apply_steps(eng, steps[:400], cmds)
    eng.snapshot()
    eng.close()
    rec = mc.Engine.recover(d, fsync="batch")
    apply_steps(rec, steps[400:], cmds)
    live = rec.state_hash()
    rec.close()
    again = mc.Engine.recover(d, snapshot=False, readonly=True)
    assert again.state_hash() == live == PrefixHashes(steps, cmds)[len(steps)]
    assert again.recovery_report.last_seq == len(steps)


def _journal_bytes(d):
    return {f.name: f.read_bytes() for f in sorted(d.iterdir()) if f.is_file()}


BAD_CONFIG_CALLS = [
    ("add_symbol", (6, "SIX"), dict(tick="5")),
    ("add_symbol", (6, "SIX"), dict(tick=5, max_qty=2.5)),
    ("add_symbol", (6, "SIX"), dict(max_notional=b"9")),
    ("add_symbol", (6, "SIX"), dict(tick=5, band=-1)),
    ("add_symbol", (6, "SIX"), dict(tick=5, max_qty=2**63)),
    ("add_symbol", (6, "SIX"), dict(capacity=8.5)),
    ("add_symbol", (6, "SIX"), dict(capacity=2**64)),
    ("add_symbol", (6, "SIX"), dict(capacity=2**31)),
    ("add_symbol", (6.0, "SIX"), {}),
    ("add_symbol", (b"6", "SIX"), {}),
    ("add_symbol", (1, "SIX"), {}),
    ("set_limits", (1,), dict(tick=5, max_qty="10")),
    ("set_limits", (1,), dict(tick=5, max_qty=10.0)),
    ("set_limits", (1,), dict(tick=5, min_price=-3)),
    ("set_limits", (1,), dict(tick=5, ticks=3)),
    ("set_limits", (1.0,), dict(tick=5)),
    ("set_reference_price", (1, 100.5), {}),
    ("set_reference_price", (1, "100"), {}),
    ("set_reference_price", (1, 2**63), {}),
    ("set_reference_price", (1, -1), {}),
    # limits that together accept no order (symbol 1 has max_qty=50 and nothing else)
    ("add_symbol", (6, "SIX"), dict(min_price=200, max_price=100)),
    ("add_symbol", (6, "SIX"), dict(tick=10, ref_price=15, band=4)),
    ("set_limits", (1,), dict(tick=10, min_price=11, max_price=19)),
    ("set_limits", (1,), dict(min_price=100, max_notional=99)),
    ("set_limits", (1,), dict(ref_price=100, band=5, max_price=50)),
]


@pytest.mark.parametrize("method,args,kwargs", BAD_CONFIG_CALLS,
                         ids=[f"{m}-{a}-{k}" for m, a, k in BAD_CONFIG_CALLS])
def test_engine_bad_config_call_changes_nothing_and_recovery_still_agrees(tmp_path, method, args,
                                                                          kwargs):
    # A config call that raises must leave the engine and the journal as they were: a half-made
    # change is in the engine but not in the journal, and recovery then diverges.
    eng, d = journaled(tmp_path, fsync="always")
    eng.add_symbol(1, "AAA", max_qty=50)
    eng.submit(1, 1, 0, 100, 5)
    before = (eng.state_hash(), eng.symbols, eng.limits(1), _journal_bytes(d))
    with pytest.raises((TypeError, ValueError, OverflowError)):
        getattr(eng, method)(*args, **kwargs)
    assert (eng.state_hash(), eng.symbols, eng.limits(1), _journal_bytes(d)) == before
    eng.add_symbol(6, "SIX", tick=5)                  # the corrected call goes through
    eng.submit(6, 2, 0, 105, 1)
    live = eng.state_hash()
    eng.close()
    assert mc.Engine.recover(d, readonly=True).state_hash() == live


@pytest.mark.parametrize("snapshot", [False, True])
def test_recover_journal_with_limits_accepting_no_order_replays_them_as_written(tmp_path,
                                                                                snapshot):
    # Journals written before such limits were refused hold them; recovery (and a snapshot
    # holding them) restores them as they were, not refusing the journal. The replay form of
    # the config methods (consistent=False) journals them as an older engine did.
    eng, d = journaled(tmp_path, fsync="always")
    eng.add_symbol(1, "AAA", min_price=90)
    eng.submit(1, 1, 0, 100, 5)
    eng._add_symbol(2, "BBB", 64, dict(tick=10, min_price=11, max_price=19), False)
    eng._set_limits(1, dict(max_price=80), False)
    eng._set_limits(2, dict(ref_price=500, band=5), False)
    eng._set_reference_price(2, 600, False)
    with pytest.raises(mc.OrderRejected):
        eng.submit(1, 2, 0, 85, 1)
    if snapshot:
        eng.snapshot()
    live = (eng.state_hash(), eng.limits(1), eng.limits(2), eng.symbols)
    eng.close()
    again = mc.Engine.recover(d, snapshot=snapshot)
    assert (again.state_hash(), again.limits(1), again.limits(2), again.symbols) == live
    assert again.limits(1)["min_price"] > again.limits(1)["max_price"] > 0
    assert (again.recovery_report.snapshot is not None) == snapshot
    # the recovered engine still refuses new contradictions, and journals nothing for them
    before = _journal_bytes(d)
    with pytest.raises(ValueError, match="min_price 90 > max_price 70"):
        again.set_limits(1, max_price=70)
    again.sync()
    assert _journal_bytes(d) == before
    # a change that leaves the contradiction as it is goes through and is journaled:
    # max_qty, or a reference price on a symbol without a band
    again.set_limits(1, max_qty=50)
    again.set_reference_price(1, 95)
    assert again.limits(1)["max_qty"] == 50 and again.limits(1)["ref_price"] == 95
    with pytest.raises(ValueError, match="no multiple of tick 10"):
        again.set_reference_price(2, 15)       # the band back in range: tick is the reason now
    assert again.limits(2)["ref_price"] == 600
    again.set_limits(1, max_price=0)
    assert again.submit(1, 3, 0, 100, 1) == 0
    changed = (again.state_hash(), again.limits(1), again.limits(2))
    again.close()
    assert mc.Engine.recover(d, readonly=True).limits(1) == changed[1]


class AuditedEngine(mc.Engine):
    """A subclass whose __init__ takes a required argument: recovery makes it without it."""

    def __init__(self, desk, *args, **kwargs):
        self.desk = desk


@pytest.mark.parametrize("snapshot", [False, True])
@pytest.mark.parametrize("readonly", [False, True])
def test_engine_recover_on_subclass_returns_subclass_instance(tmp_path, snapshot, readonly):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1, "AAA", tick=5)
    eng.submit(1, 1, 0, 100, 5)
    if snapshot:
        eng.snapshot()
    eng.submit(1, 2, 1, 105, 3)
    live = eng.state_hash()
    eng.close()
    again = AuditedEngine.recover(d, snapshot=snapshot, readonly=readonly)
    assert type(again) is AuditedEngine and not hasattr(again, "desk")   # no __init__ call
    assert again.state_hash() == live and again.recovery_report.last_seq == 3
    assert (again.recovery_report.snapshot is not None) == snapshot
    again.desk = "rates"                              # a plain subclass instance
    if not readonly:
        again.submit(1, 3, 1, 100, 5)
        again.close()
    # the function and the base class still give a plain Engine
    assert type(mc.durability.recover(d, readonly=True)) is mc.Engine
    assert type(mc.Engine.recover(d, readonly=True)) is mc.Engine


def test_state_hash_covers_limits_and_names():
    a, b, c = mc.Engine(), mc.Engine(), mc.Engine()
    a.add_symbol(1, "X", max_qty=5)
    b.add_symbol(1, "X", max_qty=6)
    c.add_symbol(1, "Y", max_qty=5)
    assert len({a.state_hash(), b.state_hash(), c.state_hash()}) == 3
    b.set_limits(1, max_qty=5)
    assert a.state_hash() == b.state_hash()


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


# ---- torn tails and corruption ----

def _last_segment(d, kind=KIND_COMMANDS):
    return segment_files(d, kind)[-1][1]


def test_recovery_torn_last_record_cut_reported_and_appends_continue(tmp_path):
    steps, cmds = make_flow(9, 400)
    eng, d = journaled(tmp_path)
    apply_steps(eng, steps, cmds)
    eng.close()
    seg = _last_segment(d)
    size = os.path.getsize(seg)
    os.truncate(seg, size - 30)                      # the last record loses its end
    rec = mc.Engine.recover(d)
    rep = rec.recovery_report
    assert rep.torn_tail is not None and rep.torn_tail[2] == "truncated record"
    assert rep.last_seq == len(steps) - 1 and os.path.getsize(seg) == size - 88
    assert rec.state_hash() == PrefixHashes(steps, cmds)[len(steps) - 1]
    # the journal continues cleanly after the cut
    apply_steps(rec, steps[-1:], cmds)
    rec.close()
    again = mc.Engine.recover(d, snapshot=False, readonly=True)
    assert again.recovery_report.torn_tail is None
    assert again.state_hash() == eng.state_hash()


def test_recovery_corrupt_middle_record_raises_with_segment_and_offset(tmp_path):
    steps, cmds = make_flow(10, 400)
    eng, d = journaled(tmp_path)
    apply_steps(eng, steps, cmds)
    eng.close()
    seg = _last_segment(d)
    rec = read_journal(d)
    off = int(rec["index"]["offset"][100])
    with open(seg, "r+b") as fh:
        fh.seek(off + 40)
        fh.write(b"\xff")
    with pytest.raises(JournalError) as exc:
        mc.Engine.recover(d)
    assert exc.value.segment == seg and exc.value.offset == off
    assert f"offset {off}" in str(exc.value) and "CRC" in str(exc.value)
    with pytest.raises(JournalError):
        read_journal(d)
    info = inspect(d)["journals"]["commands"]
    assert info["corrupt"]["offset"] == off


def test_recovery_corrupt_earlier_segment_raises(tmp_path):
    steps, cmds = make_flow(11, 600)
    eng, d = journaled(tmp_path, segment_bytes=16384)
    apply_steps(eng, steps, cmds)
    eng.close()
    first = segment_files(d, KIND_COMMANDS)[0][1]
    os.truncate(first, os.path.getsize(first) - 8)   # a torn tail, but valid data follows
    with pytest.raises(JournalError, match="journal-0+1.mcj"):
        mc.Engine.recover(d)


def _damage_cases(rng, files, n):
    for _ in range(n):
        path = files[int(rng.integers(len(files)))]
        size = os.path.getsize(path)
        if rng.random() < 0.4:
            yield path, ("truncate", int(rng.integers(0, size + 1)))
        else:
            flips = [(int(rng.integers(size)), 1 << int(rng.integers(8)))
                     for _ in range(int(rng.integers(1, 4)))]
            yield path, ("flip", flips)


@pytest.mark.parametrize("seed", [12, 13])
def test_recovery_random_damage_never_crashes_never_beyond_prefix(tmp_path, seed):
    n_cases = 1000 if os.environ.get("MATCHCORE_SOAK") == "1" else 150
    steps, cmds = make_flow(seed, 700)
    prefix = PrefixHashes(steps, cmds)
    eng, d = journaled(tmp_path, "orig", segment_bytes=20000)
    apply_steps(eng, steps[:300], cmds)
    eng.snapshot()
    apply_steps(eng, steps[300:], cmds)
    eng.close()
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f != "LOCK")
    segs = segment_files(d, KIND_COMMANDS)
    last_seg = segs[-1][1]
    last_index = read_journal(open(last_seg, "rb").read())["index"]
    seg_index = {f: read_journal(open(f, "rb").read())["index"] for _, f in segs}
    rng = np.random.default_rng(seed)
    outcomes = {"recovered": 0, "error": 0}
    for k, (path, (how, arg)) in enumerate(_damage_cases(rng, files, n_cases)):
        work = tmp_path / f"w{k}"
        shutil.copytree(d, work)
        target = os.path.join(work, os.path.basename(path))
        if how == "truncate":
            os.truncate(target, arg)
        else:
            with open(target, "r+b") as fh:
                for off, bit in arg:
                    fh.seek(off)
                    b = fh.read(1)
                    fh.seek(off)
                    fh.write(bytes([b[0] ^ bit]))
        expect_n = None
        if how == "truncate" and path == last_seg:
            # a torn tail of the last segment: always recovered, exactly the whole records
            ends = last_index["offset"] + last_index["length"]
            expect_n = int(last_index["seq"][ends <= arg][-1]) if (ends <= arg).any() else \
                segs[-1][0] - 1
        elif how == "truncate" and path in {f for _, f in segs[:-1]} and arg < os.path.getsize(path):
            expect_n = -1                       # valid data follows: an error
        first_bad = None                        # seq of the first record a flip touched
        if how == "flip" and path in seg_index:
            idx = seg_index[path]
            ends = idx["offset"] + idx["length"]
            hit = [int(idx["seq"][np.searchsorted(ends, off, side="right")])
                   for off, _ in arg if off >= _j.SEG_HEADER and off < ends[-1]]
            first_bad = min(hit) if hit else None
        try:
            rec = mc.Engine.recover(work, readonly=bool(k % 2))
        except JournalError as exc:
            assert expect_n in (None, -1), (how, arg, path, str(exc))
            outcomes["error"] += 1
            assert exc.segment is not None, (how, arg, path)
        else:
            outcomes["recovered"] += 1
            n = rec.recovery_report.last_seq
            assert n <= len(steps) and expect_n != -1, (how, arg, path)
            if expect_n is not None:
                assert n == expect_n, (how, arg, n, expect_n)
            if first_bad is not None:
                assert n < first_bad, (how, arg, n, first_bad)   # nothing from the damage on
            assert rec.state_hash() == prefix[n], (how, arg, path)
            if not os.path.basename(path).startswith("journal-"):
                assert n == len(steps)          # only the command journal decides the state
            if not k % 2:
                t = read_trades(work)           # trades rewritten to match the commands
                assert np.array_equal(t["seq"], np.arange(1, len(t) + 1))
        shutil.rmtree(work)
    assert outcomes["recovered"] > 0 and outcomes["error"] > 0


def test_read_journal_random_bytes_return_or_raise_journalerror():
    rng = np.random.default_rng(14)
    eng_dir = None
    for _ in range(300):
        data = rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
        if rng.random() < 0.5 and len(data) >= 64:
            head = bytearray(data[:64])
            head[:8] = b"MCJOURNL"
            head[8:24] = struct.pack("<IIII", 1, 64, 1, 1)
            head[24:32] = struct.pack("<Q", 1)
            head[60:64] = struct.pack("<I", _j.crc32c(bytes(head[:60])))
            data = bytes(head) + data[64:]
        try:
            out = read_journal(data)
        except JournalError:
            continue
        assert out["commands"].shape[0] <= len(data) // 88
    assert eng_dir is None


def test_recovery_and_inspect_hold_one_segment_not_the_whole_journal_in_memory(tmp_path):
    # Recovery read every segment into memory and kept it (its record index too) although a
    # snapshot at the end needs none of them: a journal larger than the memory left could not
    # be recovered. Segments are now scanned one at a time and read again when needed.
    import tracemalloc
    eng, d = journaled(tmp_path, segment_bytes=1 << 20)
    eng.add_symbol(1)
    n = 100_000
    cmds = np.zeros(2 * n, dtype=mc.COMMAND_DTYPE)
    cmds["symbol"] = 1
    cmds["order_id"] = np.repeat(np.arange(1, n + 1), 2)
    cmds["kind"][1::2] = mc.CommandKind.CANCEL
    cmds["price"][0::2], cmds["qty"][0::2] = 100, 1
    for rep in range(3):                             # ~50 MiB of command records
        cmds["order_id"] += n
        eng.process(cmds)
    eng.submit(1, 1, 0, 99, 5)
    eng.snapshot()
    live = eng.state_hash()
    eng.close()
    size = sum(os.path.getsize(f) for _, f in segment_files(d, KIND_COMMANDS))
    assert size > 48 << 20
    for run in (lambda: mc.Engine.recover(d, readonly=True),
                lambda: mc.Engine.recover(d, readonly=True, snapshot=False), lambda: inspect(d)):
        tracemalloc.start()
        try:
            out = run()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 << 20, (peak, size)
        if isinstance(out, mc.Engine):
            assert out.state_hash() == live and out.recovery_report.last_seq == 6 * n + 2
        else:
            assert out["journals"]["commands"]["record_types"] == {"command": 6 * n + 1,
                                                                   "add_symbol": 1}

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
    from test_engine import big_book_commands
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


def _assert_recovers_with_trades(d, state_hash, trades):
    """Recover d: the state hash must be state_hash, and the trade journal afterwards the
    records of ``trades`` (fields the capture writes). Returns the recovery report."""
    rec = mc.Engine.recover(d)
    report = rec.recovery_report
    assert rec.state_hash() == state_hash
    rec.check_invariants()
    rec.close()
    again = read_trades(d)
    for f in ("seq", "cmd_seq", "taker_id", "maker_id", "price", "qty", "last"):
        assert np.array_equal(again[f], trades[f]), f
    return report


def test_read_trades_path_not_a_directory_raises_journalerror(tmp_path):
    # read_journal said so with JournalError; read_trades raised FileNotFoundError or
    # NotADirectoryError from inside its scan
    (tmp_path / "file").write_bytes(b"")
    for path in (tmp_path / "missing", tmp_path / "file"):
        for read in (read_trades, read_journal):
            with pytest.raises(JournalError, match="is not a journal directory"):
                read(path)

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
        with pytest.raises(JournalError, match="I/O failure"):
            eng.close()
        assert eng.journal.closed and eng.trade_journal.closed
        rec = mc.Engine.recover(d)                    # the remedy: the LOCK is free
        assert rec.recovery_report.last_seq == eng.journal_seq
        rec.close()
        return 0

    assert _exit_code_of_child(child) == 0


def test_engine_close_after_failed_segment_roll_releases_lock(tmp_path):
    eng, d = journaled(tmp_path, segment_bytes=_j.SEG_HEADER + _j.MAX_RECORD)
    eng.add_symbol(1)                                 # 104 bytes; commands 88 each
    roll_seq = 2 + (_j.MAX_RECORD - 104) // 88
    (d / f"journal-{roll_seq:020d}.mcj").write_bytes(b"")   # the roll's O_EXCL create fails
    with pytest.raises(JournalError, match="I/O failure"):
        for i in range(1, roll_seq + 1):
            eng.submit(1, i, 0, 100 - i % 50, 1)
    assert eng.journal_seq == roll_seq - 1
    eng.close()
    assert eng.journal.closed
    rec = mc.Engine.recover(d)
    assert rec.recovery_report.last_seq == roll_seq - 1
    rec.close()


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
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.snapshot == snap and ro.trades_missing == 1 and "WARNING" in ro.summary()
    rec = mc.Engine.recover(d)
    rep = rec.recovery_report
    assert rep.snapshot is None and rep.trades_missing == 0 and rep.trades_rewritten == 2
    assert rec.state_hash() == eng.state_hash()
    rec.close()
    assert read_trades(d)["cmd_seq"].tolist() == [3, 4, 5]


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
    rep = mc.Engine.recover(d, readonly=True).recovery_report
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
    with pytest.raises(ValueError, match="already holds a journal"):
        mc.Engine(journal=d)
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
    top = os.path.realpath(tmp_path)
    j, b = os.path.join(top, "new", "journal"), os.path.join(top, "snaps", "day1")
    synced = _fsynced_dirs(tmp_path, f"import matchcore as mc\n"
                                     f"e = mc.Engine(journal={j!r}, fsync='always')\n"
                                     f"e.add_symbol(1)\ne.snapshot({b!r})\ne.close()\n")
    for made in (j, b):
        parent = os.path.dirname(made)
        assert parent in synced and os.path.dirname(parent) in synced, (made, sorted(synced))


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
