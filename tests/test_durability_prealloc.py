"""A journal segment's preallocation is best effort, and never holds the file system full: a
``segment_bytes`` larger than the free space reserves nothing (ext4 keeps the blocks a failing
``fallocate`` took, so the segment held every free block, and the next file made, the trade
segment, failed on a full disk)."""
from __future__ import annotations

import os

import matchcore as mc


def _free_bytes(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_journal_segment_larger_than_free_space_starts_and_reserves_nothing(tmp_path):
    free = _free_bytes(tmp_path)
    size = max(4 * free, 1 << 30)
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, segment_bytes=size)
    assert eng.journal.segment_bytes == size
    held = {f.name: f.stat().st_blocks * 512 for f in d.iterdir()}
    assert set(held) == {"LOCK", "journal-00000000000000000001.mcj",
                         "trades-00000000000000000001.mct"}
    # a few blocks each (the header), not the file system's free space
    assert all(n < 1 << 20 for n in held.values()), held
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.SELL, 100, 5)
    assert eng.submit(1, 2, mc.Side.BUY, 100, 3) == 3
    want = eng.state_hash()
    eng.close()
    assert mc.Engine.recover(d, readonly=True).state_hash() == want
    assert len(mc.durability.read_trades(d)) == 1
