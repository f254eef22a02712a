"""Files whose CRCs hold but whose fields no writer of this version writes (a foreign writer's,
or a fuzzer's).

A record whose fields do not fit its length (an ``add_symbol`` whose name runs past the
record) is damage the scan finds, as a record of the wrong size for its type is: reported by
``journal inspect`` and refused by recovery with the segment and offset, not an error naming no
file, raised only when the record was decoded (while ``inspect`` called the journal clean).

A segment header recording a ``segment_bytes`` no writer takes (>= 2**63) is not kept by a
recovery given none: it raised ``OverflowError`` for an option the caller never gave, after it
had cut the torn tail.

A snapshot whose seq or trade seq leaves no next seq (2**64 - 1) is refused by the snapshot
reader, naming the file and the field, so recovery skips it as it skips a damaged one."""
from __future__ import annotations

import os
import shutil
import struct

import pytest

import matchcore as mc
from matchcore.durability import _journal as _j


def _crafted(tmp_path):
    d = str(tmp_path / "j")
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1, "AB")
    eng.submit(1, 1, 0, 100, 5)
    eng.close()
    seg = os.path.join(d, "journal-00000000000000000001.mcj")
    data = bytearray(open(seg, "rb").read())
    off = _j.SEG_HEADER
    length, _, rtype = struct.unpack_from("<IIH", data, off)
    assert rtype == _j.REC_ADD_SYMBOL
    # name_len (after the 32-byte record header and the u32 symbol id) past the record's end,
    # the CRC made to hold again
    struct.pack_into("<I", data, off + _j.REC_HEADER + 4, 1000)
    struct.pack_into("<I", data, off + 4, _j.crc32c(bytes(data[off + 8:off + length])))
    with open(seg, "wb") as fh:
        fh.write(data)
    return d, seg, off, bytes(data)


def test_durability_crafted_name_length_is_damage_named_by_segment(tmp_path):
    d, seg, off, data = _crafted(tmp_path)
    before = {f: open(os.path.join(d, f), "rb").read() for f in os.listdir(d)}
    with pytest.raises(mc.durability.JournalError) as exc:
        mc.durability.read_journal(d)
    assert exc.value.segment == seg and exc.value.offset == off
    assert "journal-00000000000000000001.mcj" in str(exc.value)
    with pytest.raises(mc.durability.JournalError) as exc:
        mc.durability.read_journal(data)
    assert exc.value.offset == off
    info = mc.durability.inspect(d)
    corrupt = info["journals"]["commands"]["corrupt"]
    assert corrupt is not None
    assert (corrupt["file"], corrupt["offset"]) == (os.path.basename(seg), off)
    for readonly in (True, False):
        with pytest.raises(mc.durability.JournalError) as exc:
            mc.Engine.recover(d, readonly=readonly)
        assert exc.value.segment == seg and exc.value.offset == off
    after = {f: open(os.path.join(d, f), "rb").read() for f in os.listdir(d)}
    assert after == before


def test_durability_crafted_segment_bytes_not_kept_by_recovery(tmp_path):
    d = str(tmp_path / "j")
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.sync()
    crashed = str(tmp_path / "crashed")
    shutil.copytree(d, crashed)
    eng.close()
    seg = os.path.join(crashed, "journal-00000000000000000001.mcj")
    data = bytearray(open(seg, "rb").read())
    # the header's seg_limit (bytes 52..59; its flag is set), the header CRC made to hold
    struct.pack_into("<Q", data, 52, 2**64 - 1)
    struct.pack_into("<I", data, 60, _j.crc32c(bytes(data[:60])))
    whole = len(data)
    with open(seg, "wb") as fh:
        fh.write(data + b"\x01\x02\x03")          # and a torn tail to cut
    ro = mc.Engine.recover(crashed, readonly=True)
    assert ro.recovery_report.bytes_to_cut == 3
    rec = mc.Engine.recover(crashed)
    assert rec.recovery_report.cut_bytes == 3 and os.path.getsize(seg) == whole
    assert rec.journal.segment_bytes == 64 << 20        # the default, not the header's
    rec.submit(1, 2, 1, 100, 2)
    rec.close()
    again = mc.Engine.recover(crashed, readonly=True)
    assert again.recovery_report.last_seq == 3 and again.get(1) == (1, 0, 100, 3)


def test_durability_crafted_snapshot_seq_without_successor_refused(tmp_path):
    # A snapshot header whose trade seq (or seq) leaves no next seq in the u64 journals: a
    # recovery from it failed making the trade writer, "OverflowError: Python int too large to
    # convert to C unsigned long", naming neither the file nor the field.
    import zlib
    d = str(tmp_path / "s")
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    os.makedirs(d)
    path = eng.snapshot(d)
    data = bytearray(open(path, "rb").read())
    struct.pack_into("<Q", data, 24, 2**64 - 1)              # the header's trade seq
    data[-8:-4] = struct.pack("<I", zlib.crc32(bytes(data[:-8])))
    with open(path, "wb") as fh:
        fh.write(data)
    with pytest.raises(mc.durability.SnapshotFileError, match="trade seq") as exc:
        mc.durability.load_snapshot(path)
    assert exc.value.path == path and path in str(exc.value)
    before = sorted(os.listdir(d))
    with pytest.raises(mc.durability.JournalError, match="no valid snapshot"):
        mc.Engine.recover(d)
    assert sorted(os.listdir(d)) == before
