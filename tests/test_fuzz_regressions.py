"""Inputs the fuzz targets (tests/fuzz/targets.py) failed on, kept as named regression tests.

Each test replays the saved input through its target's full contract and also checks the fixed
behaviour through the public API directly, so it does not depend on the target's internals.
"""
from __future__ import annotations

import copy
import pickle
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


# snapshot target, structure-aware mode in place (0x56: edits 0x04 | in place 0x02): edits that
# set the order count of the last ask level to 2**64 - 1. The running total of level counts
# wrapped below the header's order count, so the order loop read past the end of the snapshot
# (AddressSanitizer: heap-buffer-overflow in _snapshot_build, found by the --native run).
SNAPSHOT_LEVEL_COUNT_WRAP = (
    b"V\xa0\x90\x90\x90\x90\x90\x90\x90\x90\x90\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\x90\x90\x90\x90\xa0\xa0\x90\xb0\x90\x90\x90\x90\x90\x90\x90\x90\x90\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x90\x90\x90\x90\xa0\xa0\xa0\xa0\xa0\xa0\xa0"
    b"\xa0\xa0")


def test_snapshot_level_count_wrap_fuzz_input_passes_contract():
    targets.fuzz_snapshot(SNAPSHOT_LEVEL_COUNT_WRAP)


def _last_level_count_offset(snap: bytes) -> int:
    n_bids, n_asks = struct.unpack_from("<II", snap, 32)
    p = 80
    for _ in range(n_bids + n_asks - 1):
        p += 16 + 40 * struct.unpack_from("<Q", snap, p + 8)[0]
    return p + 8


@pytest.mark.parametrize("count", [2**64 - 1, 2**64 - 2, 2**63])
def test_snapshot_level_order_count_near_2_64_raises_corrupt_and_book_unchanged(count):
    src = mc.OrderBook()
    for oid, side, price in ((1, mc.Side.BUY, 99), (2, mc.Side.BUY, 100), (3, mc.Side.SELL, 101),
                             (4, mc.Side.SELL, 102)):
        src.submit(oid, side, price, 5)
    snap = bytearray(src.snapshot())
    struct.pack_into("<Q", snap, _last_level_count_offset(bytes(snap)), count)
    snap = targets.reseal(bytes(snap))
    victim = mc.OrderBook()
    victim.submit(7, mc.Side.SELL, 105, 2)
    h = victim.state_hash()
    with pytest.raises(SnapshotError, match="inconsistent"):
        victim.restore(snap)
    assert victim.state_hash() == h and len(victim) == 1


# journal target, structure-aware mode next to a valid trade segment (0x0a: edits 0x02 | pair
# 0x08): one 4-byte edit at offset 20, the segment header's STP mode, to 983041, header CRC
# recomputed. read_journal accepted the segment and recover() raised ValueError from Engine()
# instead of JournalError.
JOURNAL_STP_UNKNOWN = bytes.fromhex("0a148001000f0000000000")


def test_journal_unknown_stp_fuzz_input_passes_contract():
    targets.fuzz_journal(JOURNAL_STP_UNKNOWN)


@pytest.mark.parametrize("stp", [4, 983041, 2**32 - 1])
def test_journal_segment_header_unknown_stp_raises_journal_error(stp, tmp_path):
    from matchcore import durability

    eng = mc.Engine(journal=str(tmp_path), fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    seg_path = next(tmp_path.glob("journal-*.mcj"))
    seg = bytearray(seg_path.read_bytes())
    struct.pack_into("<I", seg, 20, stp)
    seg_path.write_bytes(targets.reseal_journal(bytes(seg)))
    with pytest.raises(durability.JournalError, match="unknown STP mode"):
        durability.read_journal(seg_path.read_bytes())
    with pytest.raises(durability.JournalError, match="unknown STP mode"):
        durability.read_journal(str(tmp_path))
    before = seg_path.read_bytes()
    with pytest.raises(durability.JournalError, match="unknown STP mode"):
        durability.recover(tmp_path, readonly=True)
    assert seg_path.read_bytes() == before


# journal target, raw mode with CRCs recomputed next to a valid trade segment (0x2c: reseal 0x04
# | pair 0x08, flow 2): a command segment whose add_symbol record carries a capacity of about
# 2**60 orders. Recovery replayed it as add_symbol(capacity=...), whose allocation failed with
# MemoryError (a smaller damaged figure would have allocated gigabytes instead).
JOURNAL_HUGE_CAPACITY = bytes.fromhex(
    "2c4d434a4f55524e4c010000004000000001000000020000000100000000000000aced46b35bb4ed"
    "180000000000000000000000000000000000000000ed3b224e68000000b634f46902000000000000"
    "000100000000000000d5829eba5bb4ed1801000000ffffffff100000000000000001000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000070000000902c85ce02000000000000000200000000000000801c9fba5bb4ed"
    "18020100000000000002000000080000000000000001000000000000005a000000000000006e0000"
    "00000000000000000000000000000000000000000032000000000000000000000000000000585900"
    "0000000000580000006501000000000000200000000300000000000000a2a8a0ba5bb4ed18000000"
    "00000000000300000000000000000000000000000002000000000000000000000000000000010000"
    "00010000000000000000000000580000001da523fe01000000000000000400000000000000a0e3a0"
    "ba5bb4ed180000000000000000000100000000000000020000000000000000000000000000006000"
    "00002ad0d7aa03000000000000000700000000000000e18da1ba5bb4ed1801000000180000000000"
    "00000000000000000000000000000000000000000000640000000000000014000000000000000000"
    "000000000000000000000000000030000000e8c3def5040000000000fb0008000000000000003999"
    "a1ba5bb4ed18020000000000000065000000000000005800000061d86b3301000000000000000900"
    "0000000000001065a7ba5bb4ed180000000000000000020000000000000064000000000000000300"
    "00000000000002000000000000000100000000000000fbffffffffffffff5800000090c036700100"
    "0000000000000a0000000000000077eaa7ba5bb4ed18000000000000000003000000000000000000"
    "00000000000000000000000000000000270000000000000100000002000000faffffffffffffff")


def test_journal_huge_capacity_fuzz_input_passes_contract():
    targets.fuzz_journal(JOURNAL_HUGE_CAPACITY)


@pytest.mark.parametrize("capacity", [2**40, 2**62, 2**63 - 1])
def test_recover_add_symbol_capacity_beyond_journal_preallocates_bounded_and_keeps_figure(
        capacity, tmp_path):
    from matchcore import durability

    eng = mc.Engine(journal=str(tmp_path), fsync="never")
    eng.add_symbol(1, "AB", capacity=16)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 2)
    h = eng.state_hash()
    eng.close()
    seg_path = next(tmp_path.glob("journal-*.mcj"))
    seg = bytearray(seg_path.read_bytes())
    # the first record is the add_symbol: header 32 bytes, symbol u32, name length u32, capacity
    assert struct.unpack_from("<q", seg, 64 + 40)[0] == 16
    struct.pack_into("<q", seg, 64 + 40, capacity)
    seg_path.write_bytes(targets.reseal_journal(bytes(seg)))
    rec = durability.recover(tmp_path, readonly=True)
    rec.check_invariants()
    assert rec.state_hash() == h and rec.recovery_report.last_seq == 3
    assert rec._capacity_of(1) == capacity        # recorded for the next snapshot
    eng2, _ = durability.load_snapshot(durability.snapshot.snapshot_bytes(rec)[0])
    assert eng2._capacity_of(1) == capacity


@pytest.mark.parametrize("capacity", [2**40, 2**63 - 1])
def test_recovered_engine_keeping_a_capacity_figure_beyond_2_30_pickles_back(capacity, tmp_path):
    # the figure kept above (and by load_snapshot) made the engine's pickle unreadable:
    # "capacity must be in [0, 2**30]" when read back, while copy.copy took it
    from matchcore import durability

    eng = mc.Engine(journal=str(tmp_path), fsync="never")
    eng.add_symbol(1, "AB", capacity=16)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    seg_path = next(tmp_path.glob("journal-*.mcj"))
    seg = bytearray(seg_path.read_bytes())
    struct.pack_into("<q", seg, 64 + 40, capacity)
    seg_path.write_bytes(targets.reseal_journal(bytes(seg)))
    rec = durability.recover(tmp_path, readonly=True)
    loaded, _ = durability.load_snapshot(durability.snapshot.snapshot_bytes(rec)[0])
    for engine in (rec, loaded):
        twin = pickle.loads(pickle.dumps(engine))
        assert twin.state_hash() == engine.state_hash() and twin._capacity_of(1) == capacity
        assert copy.copy(engine)._capacity_of(1) == capacity
        twin.submit(1, 2, mc.Side.SELL, 100, 2)
        twin.check_invariants()
