"""Inputs the fuzz targets (tests/fuzz/targets.py) failed on, kept as named regression tests.

Each test replays the saved input through its target's full contract and also checks the fixed
behaviour through the public API directly, so it does not depend on the target's internals.
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

import matchcore as mc
from matchcore import SnapshotError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fuzz import targets  # noqa: E402

# snapshot target, structure-aware mode (0x04) restoring in place (0x02): one edit writing
# 2**64 - 1 at offset 40, the header's next arrival sequence number. Restored, the next two
# arrivals got sequence numbers 2**64 - 1 and 0: a new order queued behind a later one by number.
SNAPSHOT_SEQ_WRAP = b"\x06\x28\x00" + b"\xff" * 8


def _with_seq(book: mc.OrderBook, seq: int) -> bytes:
    snap = bytearray(book.snapshot())
    struct.pack_into("<Q", snap, 40, seq)
    return targets.reseal(bytes(snap))


def test_snapshot_seq_wrap_fuzz_input_passes_contract():
    targets.fuzz_snapshot(SNAPSHOT_SEQ_WRAP)


@pytest.mark.parametrize("seq", [2**63, 2**64 - 2, 2**64 - 1])
def test_snapshot_next_sequence_beyond_int64_raises_corrupt_and_book_unchanged(seq):
    src = mc.OrderBook()
    src.submit(1, mc.Side.BUY, 100, 5)
    victim = mc.OrderBook()
    victim.submit(7, mc.Side.SELL, 105, 2)
    h = victim.state_hash()
    with pytest.raises(SnapshotError, match="inconsistent"):
        victim.restore(_with_seq(src, seq))
    assert victim.state_hash() == h and len(victim) == 1
    with pytest.raises(SnapshotError, match="inconsistent"):
        mc.OrderBook.from_snapshot(_with_seq(src, seq))


def test_snapshot_next_sequence_at_int64_max_restores_and_keeps_fifo():
    src = mc.OrderBook()
    src.submit(1, mc.Side.BUY, 100, 5)
    book = mc.OrderBook.from_snapshot(_with_seq(src, 2**63 - 1))
    book.submit(2, mc.Side.BUY, 100, 1)
    book.submit(3, mc.Side.BUY, 100, 1)
    book.check_invariants()
    assert [oid for oid, _ in book.level(mc.Side.BUY, 100)] == [1, 2, 3]
