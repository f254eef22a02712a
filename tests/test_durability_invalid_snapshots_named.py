"""A directory holding no journal and only snapshots that cannot be loaded is refused by
recovery with an error that names the newest of them and why it was skipped (it said "no
journal and no valid snapshot (1 invalid)", naming no file), as ``journal inspect`` lists it;
nothing is changed."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import matchcore as mc
from matchcore.durability import JournalError


def test_durability_only_invalid_snapshots_error_names_newest_and_reason(tmp_path):
    d = str(tmp_path / "s")
    os.makedirs(d)
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    path = eng.snapshot(d)
    data = bytearray(open(path, "rb").read())
    data[70] ^= 0xFF                                    # inside the symbol table: CRC fails
    with open(path, "wb") as fh:
        fh.write(data)
    before = sorted(os.listdir(d))
    for readonly in (False, True):
        with pytest.raises(JournalError) as exc:
            mc.Engine.recover(d, readonly=readonly)
        msg = str(exc.value)
        assert "no journal and no valid snapshot (1 invalid" in msg
        assert "snapshot-00000000000000000000.mcs: CRC mismatch" in msg, msg
        assert msg.count(d) == 1                        # the directory once, then the file name
    assert sorted(os.listdir(d)) == before
    out = subprocess.run([sys.executable, "-m", "matchcore", "recover", d], capture_output=True,
                         text=True)
    assert out.returncode == 1 and "snapshot-00000000000000000000.mcs: CRC mismatch" in out.stderr


def test_durability_journal_after_deleted_segments_names_damaged_snapshot(tmp_path):
    # Segments wholly before the newest snapshot may be deleted; if that snapshot is then
    # damaged, recovery refused "journal starts at seq N and no valid snapshot holds the state
    # before it" without a word about the snapshot it skipped, or why
    d = str(tmp_path / "j")
    eng = mc.Engine(journal=d, fsync="never", segment_bytes=8256)
    eng.add_symbol(1)
    for i in range(300):
        eng.submit(1, i + 1, i % 2, 100 + i % 5, 3)
    snap = eng.snapshot()
    seq = eng.journal_seq
    for i in range(300, 320):
        eng.submit(1, i + 1, i % 2, 100, 1)
    eng.close()
    segs = sorted(f for f in os.listdir(d) if f.startswith("journal-"))
    firsts = [int(f[8:28]) for f in segs]
    for f, nxt in zip(segs, firsts[1:]):
        if nxt - 1 <= seq:
            os.unlink(os.path.join(d, f))
    data = bytearray(open(snap, "rb").read())
    data[70] ^= 0xFF
    with open(snap, "wb") as fh:
        fh.write(data)
    with pytest.raises(JournalError, match="no valid snapshot holds the state") as exc:
        mc.Engine.recover(d, readonly=True)
    assert f"snapshots skipped: {os.path.basename(snap)}: CRC mismatch" in str(exc.value)
