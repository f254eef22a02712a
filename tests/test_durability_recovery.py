"""Engine recovery. Proof (a): the live engine, a full journal replay and snapshot + tail give one
state hash at many random points. Proof (c): truncating or flipping bytes anywhere never crashes
recovery and never yields a state the undamaged prefix would not give.
"""
from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pytest

import matchcore as mc
from matchcore.durability import JournalError, inspect, read_journal, read_trades
from matchcore.durability import _journal as _j
from matchcore.durability.journal import segment_files, KIND_COMMANDS, KIND_TRADES
from durability_flow import PrefixHashes, apply_steps, make_flow
from durability_checks import _crc32c_py, _files_and_sizes, _last_segment, journaled


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



@pytest.mark.parametrize("readonly", [False, True])
def test_recovery_reads_each_segment_once_when_snapshot_tail_in_last(tmp_path, monkeypatch,
                                                                     readonly):
    # The scan reads every segment; then recovery read the snapshot's segment again for the
    # CRC its anchor names, once more for the last record's CRC, and again to replay the tail.
    # The scan's buffer still holds the last segment, where a recent snapshot's tail lies: it
    # is read once in all, and the recovered state is the live one.
    from matchcore.durability import journal as J
    reads = []
    real = J._read_segment
    monkeypatch.setattr(J, "_read_segment", lambda p, into=None: reads.append(p) or real(p, into))
    steps, cmds = make_flow(21, 900)
    eng, d = journaled(tmp_path, segment_bytes=16384)
    apply_steps(eng, steps[:850], cmds, batch=50)
    eng.snapshot()
    apply_steps(eng, steps[850:], cmds, batch=7)
    live = eng.state_hash()
    eng.close()
    segs = [f for _, f in segment_files(d, KIND_COMMANDS)]
    assert len(segs) > 4
    rec = mc.Engine.recover(d, readonly=readonly, trades=False)
    assert rec.state_hash() == live and rec.recovery_report.snapshot is not None
    assert rec.recovery_report.replayed_commands > 0
    assert sorted(r for r in reads if r in segs) == sorted(segs)

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


# ---- torn tails and corruption ----


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


@pytest.mark.parametrize("kind", [KIND_COMMANDS, KIND_TRADES])
def test_recovery_segment_copied_under_another_name_named_an_overlap_not_a_gap(tmp_path, kind):
    # a segment restored from a copy beside the original (journal-1.mcj next to
    # journal-00000000000000000001.mcj): its records are there twice, but the error said
    # "sequence gap", sending the user to look for records that are not missing
    steps, cmds = make_flow(11, 600)
    eng, d = journaled(tmp_path, segment_bytes=16384)
    apply_steps(eng, steps, cmds)
    eng.close()
    first, seg = segment_files(d, kind)[0]
    copy = d / os.path.basename(seg).replace(f"{first:020d}", str(first))
    shutil.copy(seg, copy)
    with pytest.raises(JournalError) as err:
        mc.Engine.recover(d, readonly=True)
    assert err.value.path == str(copy)
    assert "gap" not in str(err.value) and "overlap" in str(err.value)
    label = "commands" if kind == KIND_COMMANDS else "trades"
    corrupt = inspect(d)["journals"][label]["corrupt"]
    assert corrupt["file"] == copy.name and "overlap" in corrupt["reason"]

def _reseal_header(data: bytearray) -> None:
    data[60:64] = struct.pack("<I", _crc32c_py(bytes(data[:60])))


@pytest.mark.parametrize("case", ["newer_version", "other_kind"])
def test_recovery_last_segment_with_intact_foreign_header_refused_not_dropped(tmp_path, case):
    # A last segment whose header is whole (its CRC holds) but that this version cannot read
    # (a newer journal version whose records it does not know; a command segment under a
    # trade segment's name) was taken for a header torn by a crash: "recovery cuts it", and
    # Engine.recover deleted the file with every record in it
    steps, cmds = make_flow(11, 600)
    eng, d = journaled(tmp_path, segment_bytes=16384)
    apply_steps(eng, steps, cmds)
    eng.close()
    if case == "newer_version":
        kind, label, last = KIND_COMMANDS, "commands", _last_segment(d)
        data = bytearray(open(last, "rb").read())
        data[8:12] = struct.pack("<I", 2)
        _reseal_header(data)
        off = _j.SEG_HEADER
        while off + 8 <= len(data):                  # records of a layout v1 does not know
            length = struct.unpack_from("<I", data, off)[0]
            if length == 0:
                break
            data[off + 8:off + 10] = struct.pack("<H", 0x7F00)
            crc = _crc32c_py(bytes(data[off + 8:off + length]))
            data[off + 4:off + 8] = struct.pack("<I", crc)
            off += length
        open(last, "wb").write(bytes(data))
        why = "unsupported journal version 2"
    else:
        kind, label = KIND_TRADES, "trades"
        first, last = segment_files(d, KIND_TRADES)[-1]
        cmd_first, cmd_seg = segment_files(d, KIND_COMMANDS)[0]
        data = bytearray(open(cmd_seg, "rb").read())
        data[24:32] = struct.pack("<Q", first)       # named as the trade segment it replaced
        _reseal_header(data)
        open(last, "wb").write(bytes(data))
        why = "expected 2"
    sizes = {f: os.path.getsize(f) for _, f in segment_files(d, kind)}
    info = inspect(d)["journals"][label]
    assert info["torn_tail"] is None and info["dropped_segments"] == []
    assert info["corrupt"]["file"] == os.path.basename(last) and why in info["corrupt"]["reason"]
    assert info["corrupt"]["unreadable"]             # not "valid records follow"
    for readonly in (True, False):
        with pytest.raises(JournalError, match=why) as err:
            mc.Engine.recover(d, readonly=readonly)
        assert err.value.path == str(last) and "what it holds is unknown" in str(err.value)
    assert {f: os.path.getsize(f) for _, f in segment_files(d, kind)} == sizes


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


def _fds_into(d):
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target == str(d) or target.startswith(str(d) + os.sep):
            out.append(target)
    return sorted(out)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_recovery_failed_replay_releases_lock_and_files_while_error_is_held(tmp_path):
    # A recovery that fails in its replay (a diverging record here; memory running out, whose
    # remedy is to recover again, takes the same path) had already opened its writers: they
    # stayed alive with the exception's traceback, holding the directory's LOCK and their
    # segment files, so that a second recover() in the except block, under pytest.raises or
    # in an interactive session (sys.last_traceback) was told the directory is in use.
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.submit(1, 2, 1, 100, 3)
    eng.close()
    seg = segment_files(d, KIND_COMMANDS)[0][1]
    data = bytearray(open(seg, "rb").read())
    off = len(data) - 88                                       # the last command record
    struct.pack_into("<q", data, off + 80, 2)                  # its recorded result
    struct.pack_into("<I", data, off + 4, _crc32c_py(bytes(data[off + 8:off + 88])))
    open(seg, "wb").write(bytes(data))
    with pytest.raises(JournalError, match="replay diverged at seq 3") as first:
        mc.Engine.recover(d)
    assert first.value is not None and _fds_into(d) == []
    with pytest.raises(JournalError, match="replay diverged at seq 3"):
        mc.Engine.recover(d)
    assert _fds_into(d) == []


def test_recover_readonly_refuses_a_buffer_it_would_not_use_a_writing_one_tries_it(tmp_path):
    # a read-only recovery (a monitor reading a live engine's journal) tried to allocate the
    # writer buffers it never makes: buffer_bytes=1 TiB failed it with MemoryError. It makes
    # no writer, so the option is refused; a recovery that takes over still tries it first.
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.close()
    ro = mc.Engine.recover(d, readonly=True)
    assert ro.get(1) == (1, 0, 100, 5)
    with pytest.raises(ValueError, match="buffer_bytes does not apply to a read-only"):
        mc.Engine.recover(d, readonly=True, buffer_bytes=1 << 40)
    with pytest.raises(MemoryError, match="buffer_bytes"):
        mc.Engine.recover(d, buffer_bytes=1 << 40)
    assert mc.Engine.recover(d).get(1) == (1, 0, 100, 5)


@pytest.mark.parametrize("readonly", [False, True])
def test_recover_missing_directory_said_missing_a_file_not_a_directory(tmp_path, readonly):
    # "X is not a directory" for a directory that does not exist sent the user looking for a
    # file standing where the journal should be
    missing = tmp_path / "nope"
    with pytest.raises(JournalError, match=f"^no journal directory {missing}$"):
        mc.Engine.recover(missing, readonly=readonly)
    assert not missing.exists()
    dangling = tmp_path / "link"
    dangling.symlink_to(missing)
    with pytest.raises(JournalError, match=f"^no journal directory {dangling}$"):
        mc.Engine.recover(dangling, readonly=readonly)
    missing.write_bytes(b"")
    with pytest.raises(JournalError, match=f"^{missing} is not a directory$"):
        mc.Engine.recover(missing, readonly=readonly)


def test_inspect_missing_or_file_path_raises_journalerror_as_recovery(tmp_path):
    # the durability readers raise only DurabilityError on bad input; inspect() raised
    # FileNotFoundError for a missing directory and NotADirectoryError for a file
    missing = tmp_path / "nope"
    with pytest.raises(JournalError, match=f"^no journal directory {missing}$"):
        inspect(missing)
    missing.write_bytes(b"")
    with pytest.raises(JournalError, match=f"^{missing} is not a directory$"):
        inspect(missing)


@pytest.mark.parametrize("readonly", [False, True])
def test_recover_trade_segments_alone_said_without_command_journal_not_without_journal(
        tmp_path, readonly):
    # a directory holding only its trade journal was "nothing to recover (no journal, no
    # snapshot)", as if it held none, while inspect lists that journal's records
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 5)
    eng.close()
    for _, f in segment_files(d, KIND_COMMANDS):
        os.unlink(f)
    with pytest.raises(JournalError, match=f"^{d}: nothing to recover \\(no command journal, "
                                           f"only the trade journal; no snapshot\\)$"):
        mc.Engine.recover(d, readonly=readonly)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(JournalError, match=f"^{empty}: nothing to recover \\(no journal, no "
                                           f"snapshot\\)$"):
        mc.Engine.recover(empty, readonly=readonly)


def _command_flow(eng, first_id, n):
    cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    cmds["symbol"] = 1
    cmds["order_id"] = np.arange(first_id, first_id + n)
    cmds["side"] = np.arange(n) % 2
    cmds["price"] = np.where(cmds["side"] == 0, 99, 101)
    cmds["qty"] = 1
    eng.process(cmds)


def test_recovered_engine_keeps_the_journals_segment_size(tmp_path):
    # A recovered engine took the default 64 MiB segments unless segment_bytes was given again:
    # a journal made with small segments went on with one huge, preallocated one. Each segment
    # header now records its writer's segment_bytes, and recovery keeps it when none is given.
    seg = 16384
    eng, d = journaled(tmp_path, segment_bytes=seg)
    eng.add_symbol(1)
    _command_flow(eng, 1, 600)                # 600 commands of 88 bytes: about 4 segments
    eng.close()
    before = len(segment_files(d, KIND_COMMANDS))
    assert before >= 3
    for _, f in segment_files(d, KIND_COMMANDS) + segment_files(d, KIND_TRADES):
        assert _j.segment_limit(open(f, "rb").read()) == seg
    eng = mc.Engine.recover(d)
    assert eng.journal.segment_bytes == seg
    _command_flow(eng, 10_000, 600)
    eng.close()
    files = segment_files(d, KIND_COMMANDS)
    assert len(files) >= 2 * before - 1
    assert all(os.path.getsize(f) <= seg for _, f in files)
    assert all(_j.segment_limit(open(f, "rb").read()) == seg for _, f in files)
    # given again, the option wins, and the segments it makes say so
    eng = mc.Engine.recover(d, segment_bytes=2 * seg)
    assert eng.journal.segment_bytes == 2 * seg
    _command_flow(eng, 20_000, 600)
    eng.close()
    newest = segment_files(d, KIND_COMMANDS)[-1][1]
    assert _j.segment_limit(open(newest, "rb").read()) == 2 * seg
    assert os.path.getsize(newest) > seg


def test_recovery_of_segments_without_a_recorded_size_takes_the_default(tmp_path):
    # segments of earlier versions: the flag clear and the field zero, the header's CRC good
    eng, d = journaled(tmp_path, segment_bytes=16384)
    eng.add_symbol(1)
    _command_flow(eng, 1, 50)
    live = eng.state_hash()
    eng.close()
    for _, f in segment_files(d, KIND_COMMANDS) + segment_files(d, KIND_TRADES):
        data = bytearray(open(f, "rb").read())
        flags = struct.unpack_from("<I", data, 40)[0]
        struct.pack_into("<I", data, 40, flags & ~_j.SEG_LIMIT)
        data[52:60] = bytes(8)
        struct.pack_into("<I", data, 60, _j.crc32c(bytes(data[:60])))
        open(f, "wb").write(bytes(data))
        assert _j.segment_limit(bytes(data)) is None
    eng = mc.Engine.recover(d)
    assert eng.state_hash() == live
    assert eng.journal.segment_bytes == 64 << 20
    eng.close()


def test_inspect_snapshot_whose_name_and_content_differ_reported_invalid_as_recovery_skips(
        tmp_path):
    # a snapshot renamed to another seq: recovery skips it ("file name says seq 3, content
    # 2"), but inspect listed it as valid, under its content's seq, the name's seq lost
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    snap = eng.snapshot()
    eng.submit(1, 2, mc.Side.BUY, 101, 5)
    eng.close()
    renamed = os.path.join(d, "snapshot-00000000000000000003.mcs")
    os.rename(snap, renamed)
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert rep.skipped_snapshots == [(renamed, "file name says seq 3, content 2")]
    info = inspect(d)["snapshots"]
    assert info == [{"file": os.path.basename(renamed), "seq": 3, "valid": False,
                     "error": "file name says seq 3, content 2"}]


def _corrupt_trade_journal(tmp_path):
    # three fills; the first fill record's CRC broken, valid records after it: corruption
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 9)
    for k in range(3):
        eng.submit(1, 10 + k, mc.Side.SELL, 100, 1)
    eng.close()
    seg = segment_files(d, KIND_TRADES)[0][1]
    with open(seg, "r+b") as fh:
        fh.seek(_j.SEG_HEADER + 20)
        b = fh.read(1)
        fh.seek(_j.SEG_HEADER + 20)
        fh.write(bytes([b[0] ^ 0xFF]))
    return d, seg


def test_recovery_without_trades_says_it_left_a_corrupt_trade_journal_as_it_is(tmp_path):
    # a writing recovery with trades=False scans the trade journal (to cut fills of commands
    # it cuts away) and, finding it corrupt, leaves it as it is: its summary said "trade
    # journal not read", as if nothing had looked at it
    d, seg = _corrupt_trade_journal(tmp_path)
    before = open(seg, "rb").read()
    with pytest.raises(JournalError):
        mc.Engine.recover(d, readonly=True)
    rec = mc.Engine.recover(d, trades=False)
    rec.close()
    rep = rec.recovery_report
    assert open(seg, "rb").read() == before
    assert rep.trades_kept_through is None and rep.last_trade_seq is None
    assert rep.trades_corrupt is not None and rep.trades_corrupt[0] == seg
    assert rep.trades_corrupt[1] == _j.SEG_HEADER
    line = [ln for ln in rep.summary().splitlines() if ln.startswith("  trades:")][0]
    assert "not read" not in line
    assert line.startswith(f"  trades: capture off (trades=False); trade journal scanned and "
                           f"left as it is: corrupt in {os.path.basename(seg)} at offset "
                           f"{_j.SEG_HEADER} (")
    # read-only with trades=False reports what the writing one did
    ro = mc.Engine.recover(d, trades=False, readonly=True).recovery_report
    assert ro.trades_corrupt == rep.trades_corrupt
    assert line in ro.summary().splitlines()


def test_recovery_summary_says_how_many_bytes_it_cut_and_files_it_synced(tmp_path):
    # cut_bytes and synced_files were in the report (and recover's JSON) only: the summary
    # said "cut" of a torn tail without how much, and nothing of the files made durable
    steps, cmds = make_flow(9, 200)
    eng, d = journaled(tmp_path)
    apply_steps(eng, steps, cmds)
    eng.close()
    seg = _last_segment(d)
    os.truncate(seg, os.path.getsize(seg) - 30)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.bytes_to_cut > 0 and ro.synced_files == 0
    what = "off the ends of journal segments (torn tails, fills of commands not kept)"
    assert (f"  would cut {ro.bytes_to_cut} byte(s) {what}; read-only: Engine.recover, "
            f"matchcore recover --repair cut them") in ro.summary()
    assert "synced" not in ro.summary()
    rec = mc.Engine.recover(d)
    rec.close()
    rep = rec.recovery_report
    assert rep.cut_bytes == ro.bytes_to_cut and rep.synced_files > 0
    text = rep.summary()
    assert f"  cut {rep.cut_bytes} byte(s) {what}" in text
    assert (f"  synced {rep.synced_files} journal file(s) to stable storage before journaling "
            f"on") in text
    again = mc.Engine.recover(d)
    again.close()
    assert again.recovery_report.cut_bytes == 0 and "byte(s)" not in again.recovery_report.summary()


def test_readonly_recovery_does_not_say_it_rewrote_fills(tmp_path):
    # a read-only recovery, which writes nothing, said "rewrote 0 fills" when the trade journal
    # lacked none
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 2)
    eng.close()
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.trades_to_rewrite == 0 and ro.trades_rewritten == 0
    line = [ln for ln in ro.summary().splitlines() if ln.startswith("  trades:")][0]
    assert line == "  trades: kept through command 3, no fills to rewrite, last trade seq 1"
    rw = mc.Engine.recover(d)
    rw.close()
    assert "rewrote 0 fills" in rw.recovery_report.summary()


def test_recovery_and_inspect_count_one_fill_one_symbol_in_the_singular(tmp_path):
    # "1 fills to rewrite", "rewrote 1 fills", "(1 resting orders, 1 symbols)" and a snapshot
    # of "1 symbols": the counts of a one-symbol, one-fill journal read as plurals
    from matchcore.__main__ import main
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.snapshot()
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 2)
    eng.close()
    seg = _last_segment(d, KIND_TRADES)
    with open(seg, "r+b") as fh:                  # the one fill lost, a torn tail left
        fh.truncate(_j.SEG_HEADER + 10)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.trades_to_rewrite == 1 and ", 1 fill to rewrite (read-only" in ro.summary()
    out = capsys_text(main, ["journal", "inspect", str(d)])
    assert " 1 symbol  state hash " in out, out
    rw = mc.Engine.recover(d)
    rw.close()
    assert rw.recovery_report.trades_rewritten == 1
    assert "rewrote 1 fill, last trade seq 1" in rw.recovery_report.summary()
    out = capsys_text(main, ["recover", str(d)])
    assert "(1 resting order, 1 symbol)" in out, out


def capsys_text(main, argv):
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return buf.getvalue()


def test_failed_recovery_leaves_no_lock_file_it_made(tmp_path):
    # README: on JournalError nothing was changed; a directory without LOCK (a copy of a
    # journal) was left with a new LOCK file by the recovery that refused it
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    for k in range(5):
        eng.submit(1, 1 + k, mc.Side.BUY, 100 - k, 5)
    eng.close()
    os.unlink(d / "LOCK")
    off = int(read_journal(d)["index"]["offset"][2])
    seg = segment_files(d, KIND_COMMANDS)[0][1]
    with open(seg, "r+b") as fh:
        fh.seek(off + 10)
        b = fh.read(1)
        fh.seek(off + 10)
        fh.write(bytes([b[0] ^ 0xFF]))
    before = _files_and_sizes(d)
    with pytest.raises(JournalError, match="CRC mismatch"):
        mc.Engine.recover(d)
    assert _files_and_sizes(d) == before
    # a LOCK that was there stays
    (d / "LOCK").write_bytes(b"")
    with pytest.raises(JournalError):
        mc.Engine.recover(d)
    assert (d / "LOCK").exists()


@pytest.mark.parametrize("policy", ["always", "never"])
def test_recovered_engine_keeps_the_journals_fsync_policy(tmp_path, policy):
    # Engine.recover(DIR) without fsync= journaled on under "batch": an engine made with
    # fsync="always" came back from a crash with weaker durability, without a word. Each
    # command segment header now records its writer's policy, and recovery keeps it.
    eng, d = journaled(tmp_path, fsync=policy, segment_bytes=16384)
    eng.add_symbol(1)
    _command_flow(eng, 1, 600)                # several segments
    eng.close()
    eng = mc.Engine.recover(d)
    assert eng.journal.policy == policy
    for _, f in segment_files(d, KIND_COMMANDS):
        assert _j.segment_policy(open(f, "rb").read()) == policy
    for _, f in segment_files(d, KIND_TRADES):
        # the trade capture's own schedule is no user policy: not recorded
        assert _j.segment_policy(open(f, "rb").read()) is None
    _command_flow(eng, 10_000, 600)           # segments it starts record the same policy
    eng.close()
    assert all(_j.segment_policy(open(f, "rb").read()) == policy
               for _, f in segment_files(d, KIND_COMMANDS))
    eng = mc.durability.recover(d)
    assert eng.journal.policy == policy
    eng.close()
    # given, the argument wins, and the segments it makes say so
    other = "batch"
    eng = mc.Engine.recover(d, fsync=other)
    assert eng.journal.policy == other
    _command_flow(eng, 20_000, 600)
    eng.close()
    newest = segment_files(d, KIND_COMMANDS)[-1][1]
    assert _j.segment_policy(open(newest, "rb").read()) == other
    eng = mc.Engine.recover(d, fsync=None)
    assert eng.journal.policy == other
    eng.close()


def test_recovery_of_segments_without_a_recorded_policy_takes_batch(tmp_path):
    # segments of earlier versions: the flag clear and the bits zero, the header's CRC good
    eng, d = journaled(tmp_path, fsync="always", segment_bytes=16384)
    eng.add_symbol(1)
    _command_flow(eng, 1, 50)
    live = eng.state_hash()
    eng.close()
    for _, f in segment_files(d, KIND_COMMANDS):
        data = bytearray(open(f, "rb").read())
        flags = struct.unpack_from("<I", data, 40)[0]
        struct.pack_into("<I", data, 40, flags & (_j.SEG_LIMIT | 1))
        struct.pack_into("<I", data, 60, _j.crc32c(bytes(data[:60])))
        open(f, "wb").write(bytes(data))
        assert _j.segment_policy(bytes(data)) is None
    eng = mc.Engine.recover(d)
    assert eng.state_hash() == live
    assert eng.journal.policy == "batch"
    eng.close()


def test_recover_refuses_an_unknown_fsync_before_touching_files(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.close()
    before = _files_and_sizes(d)
    with pytest.raises(ValueError, match="fsync must be one of"):
        mc.Engine.recover(d, fsync="sometimes")
    assert _files_and_sizes(d) == before


@pytest.mark.parametrize("trades", [True, False])
def test_readonly_recovery_reports_the_trade_cuts_and_drops_repair_makes(tmp_path, trades):
    # read-only with trades=False read no trade journal: it showed no trade bytes to cut and
    # no trade segment to drop, and the writing recovery with the same options then cut and
    # deleted them
    eng, d = journaled(tmp_path, segment_bytes=_j.SEG_HEADER + _j.MAX_RECORD)
    eng.add_symbol(1)
    for i in range(100):
        eng.submit(1, 1 + i, mc.Side.SELL, 100, 1)
    eng.submit(1, 200, mc.Side.BUY, 100, 50)         # 50 fills, kept
    eng.submit(1, 201, mc.Side.BUY, 100, 50)         # 50 fills (the next segment), lost below
    eng.close()
    assert len(segment_files(d, KIND_TRADES)) == 2
    os.truncate(_last_segment(d), int(read_journal(d)["index"]["offset"][-1]))
    ro = mc.Engine.recover(d, readonly=True, trades=trades).recovery_report
    before = _files_and_sizes(d)
    assert ro.trades_to_cut == 50 and ro.files_to_drop == [segment_files(d, KIND_TRADES)[-1][1]]
    rec = mc.Engine.recover(d, trades=trades)
    rec.close()
    rw = rec.recovery_report
    assert (ro.trades_to_cut, ro.bytes_to_cut, ro.files_to_drop) == (
        rw.trades_cut, rw.cut_bytes, rw.dropped_files)
    assert ro.trades_kept_through == rw.trades_kept_through == 102
    assert sum(before.values()) - sum(_files_and_sizes(d).values()) >= rw.cut_bytes


def _trading_flow(eng, first_id, n):
    # buys and sells at one price, alternating: every sell fills the buy before it
    cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    cmds["symbol"] = 1
    cmds["order_id"] = np.arange(first_id, first_id + n)
    cmds["side"] = np.arange(n) % 2
    cmds["price"] = 100
    cmds["qty"] = 1
    eng.process(cmds)


def test_recovered_engine_keeps_the_journals_trade_capture(tmp_path):
    # A journal made with trades=False recovered with trade capture on: recovery rewrote
    # every fill of the whole journal into a trade journal the engine never had, and went on
    # capturing. Each command segment header now records its writer's choice, and
    # recover(trades=None), the default, keeps it.
    eng, d = journaled(tmp_path, trades=False, segment_bytes=16384)
    eng.add_symbol(1)
    _trading_flow(eng, 1, 600)                # several segments, 300 fills
    live = eng.state_hash()
    eng.close()
    assert segment_files(d, KIND_TRADES) == []
    assert len(segment_files(d, KIND_COMMANDS)) > 2
    for _, f in segment_files(d, KIND_COMMANDS):
        assert _j.segment_trades(open(f, "rb").read()) is False
    assert all(s["trades"] is False for s in inspect(d)["journals"]["commands"]["segments"])
    rec = mc.Engine.recover(d)
    assert rec.state_hash() == live and rec.trade_journal is None
    assert rec.recovery_report.trade_capture is False
    assert rec.recovery_report.trades_rewritten == 0
    _trading_flow(rec, 10_000, 600)
    rec.close()
    assert segment_files(d, KIND_TRADES) == []
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.trade_capture is False and ro.trades_to_rewrite == 0
    # given, the argument wins: the fills are written, and capture goes on
    rec = mc.Engine.recover(d, trades=True)
    assert rec.trade_journal is not None and rec.recovery_report.trades_rewritten == 600
    rec.close()
    assert len(read_trades(d)) == 600


def test_recovery_of_segments_without_a_recorded_trade_capture_captures_trades(tmp_path):
    # segments of earlier versions: no flag, the header's CRC good; recovered as before
    eng, d = journaled(tmp_path, trades=False)
    eng.add_symbol(1)
    _trading_flow(eng, 1, 10)
    eng.close()
    for _, f in segment_files(d, KIND_COMMANDS):
        data = bytearray(open(f, "rb").read())
        flags = struct.unpack_from("<I", data, 40)[0]
        struct.pack_into("<I", data, 40, flags & ~(_j.SEG_TRADES | _j.SEG_TRADES_ON))
        struct.pack_into("<I", data, 60, _j.crc32c(bytes(data[:60])))
        open(f, "wb").write(bytes(data))
        assert _j.segment_trades(bytes(data)) is None
    rec = mc.Engine.recover(d)
    assert rec.trade_journal is not None and rec.recovery_report.trade_capture is True
    rec.close()
    assert len(read_trades(d)) == 5


def _recorded(d):
    # (fsync, segment_bytes, trades) the newest command segment's header records
    seg = segment_files(d, KIND_COMMANDS)[-1][1]
    data = open(seg, "rb").read()
    return _j.segment_policy(data), _j.segment_limit(data), _j.segment_trades(data)


@pytest.mark.parametrize("made,given", [
    ({"fsync": "always"}, {"fsync": "never"}),
    ({"fsync": "never"}, {"fsync": "always"}),
    ({"trades": True}, {"trades": False}),
    ({"trades": False}, {"trades": True}),
    ({"segment_bytes": 1 << 20}, {"segment_bytes": 16384}),
], ids=str)
def test_recovery_with_other_options_starts_a_segment_that_records_them(tmp_path, made, given):
    # Recovered with an option the last segment's header records otherwise, the writer
    # appended to that segment: the next default recovery read the old value back (an
    # explicit fsync="never" came back "always") until a segment rolled.
    made = {"fsync": "never", **made}
    eng, d = journaled(tmp_path, **made)
    eng.add_symbol(1)
    _trading_flow(eng, 1, 10)
    live = eng.state_hash()
    eng.close()
    old = _recorded(d)
    first = segment_files(d, KIND_COMMANDS)[-1][1]
    name = os.path.join(d, f"journal-{12:020d}.mcj")
    # (read-only, only trades= is taken: the writer options are refused there)
    ro = (mc.Engine.recover(d, readonly=True, **given).recovery_report
          if "trades" in given else None)
    assert ro is None or name in ro.files_to_create
    rec = mc.Engine.recover(d, **given)
    assert rec.state_hash() == live and name in rec.recovery_report.created_files
    assert rec.recovery_report.options_changed != []
    if ro is not None:
        assert ro.files_to_create == rec.recovery_report.created_files
        assert ro.options_changed == rec.recovery_report.options_changed
    _trading_flow(rec, 100, 10)
    live = rec.state_hash()
    rec.close()
    assert [f for _, f in segment_files(d, KIND_COMMANDS)] == [first, name]
    assert _recorded(d) != old
    assert _j.segment_policy(open(first, "rb").read()) == old[0]   # left as it was
    rec = mc.Engine.recover(d)                  # the next default recovery keeps the option
    key, value = next(iter(given.items()))
    assert {"fsync": rec.journal.policy, "segment_bytes": rec.journal.segment_bytes,
            "trades": rec.trade_journal is not None}[key] == value
    assert rec.state_hash() == live
    rec.close()


def test_recovery_with_other_options_replaces_an_empty_last_segment(tmp_path):
    # a segment holding no record, started with other options, is replaced, not appended to
    eng, d = journaled(tmp_path, fsync="always")
    eng.add_symbol(1)
    _trading_flow(eng, 1, 10)
    live = eng.state_hash()
    eng.close()
    mc.Engine.recover(d, fsync="never").close()           # starts journal-12, empty
    name = segment_files(d, KIND_COMMANDS)[-1][1]
    assert _recorded(d)[0] == "never" and os.path.getsize(name) == _j.SEG_HEADER
    rec = mc.Engine.recover(d, fsync="batch")
    assert rec.recovery_report.replaced_files == [name]
    rec.close()
    assert _recorded(d)[0] == "batch" and len(segment_files(d, KIND_COMMANDS)) == 2
    assert not [n for n in os.listdir(d) if n.endswith(".new")]
    rec = mc.Engine.recover(d)
    assert rec.journal.policy == "batch" and rec.state_hash() == live
    rec.close()
