"""copy() and snapshot()/restore() are exact (same state hash, same future events), the snapshot
format is validated (damage -> SnapshotError, target unchanged), plus the simulator
conveniences on the book: owner-filtered events and depth into caller arrays."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import matchcore as mc
from matchcore._core import SnapshotError
from conftest import assert_events_equal
from test_capi import random_commands, run_python_calls
from test_pickle import orders_capacity

HEADER = 80
LEVEL = 16
ORDER = 40


def _fnv1a(data: bytes) -> int:
    h = 14695981039346656037
    for byte in data:
        h = ((h ^ byte) * 1099511628211) & ((1 << 64) - 1)
    return h


def _reseal(data: bytearray) -> bytes:
    """Recompute the trailer checksum so that only the content checks can catch an edit."""
    data[-8:] = struct.pack("<Q", _fnv1a(bytes(data[:-8])))
    return bytes(data)


def _session_book(seed=3, n=1500, stp=mc.STP.CANCEL_RESTING):
    book = mc.OrderBook(stp)
    book.process(random_commands(n, seed))
    return book


# ---- from_snapshot on a subclass ----

class _VenueBook(mc.OrderBook):
    """A subclass whose __init__ requires an argument and has a side effect."""
    opened = []

    def __init__(self, stp, *, record_events=True, capacity=1024):
        super().__init__(stp, record_events=record_events, capacity=capacity)
        _VenueBook.opened.append(stp)
        self.venue = "XNAS"


@pytest.mark.parametrize("record_events", [True, False])
def test_snapshot_from_snapshot_on_subclass_made_without_its_init(record_events):
    # from_snapshot called the subclass's __init__ with (record_events=, capacity=): one that
    # takes other arguments raised TypeError, one with side effects ran them; pickle and copy
    # make the instance without it
    book = _VenueBook(mc.STP.CANCEL_BOTH)
    book.submit(1, 0, 100, 5, owner=3)
    book.submit(2, 1, 105, 7)
    _VenueBook.opened.clear()
    twin = _VenueBook.from_snapshot(book.snapshot(), record_events=record_events)
    assert _VenueBook.opened == []
    assert type(twin) is _VenueBook and not hasattr(twin, "venue")
    assert twin.state_hash() == book.state_hash() and twin.stp == mc.STP.CANCEL_BOTH
    assert twin.record_events is record_events
    twin.check_invariants()
    assert twin.submit(3, 0, 105, 2) == book.submit(3, 0, 105, 2) == 2
    assert twin.state_hash() == book.state_hash()
    with pytest.raises(SnapshotError):                     # still checked: nothing made
        _VenueBook.from_snapshot(b"not a snapshot")
    assert _VenueBook.opened == []


# ---- exact round trips ----

@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("how", ["copy", "snapshot"])
def test_snapshot_roundtrip_same_hash_and_same_future_events(seed, how):
    cmds = random_commands(3000, seed)
    book = mc.OrderBook()
    book.process(cmds[:1500])
    h = book.state_hash()
    branch = book.copy() if how == "copy" else mc.OrderBook.from_snapshot(book.snapshot())
    assert branch.state_hash() == h
    branch.check_invariants()
    # the future is the same: events (incl. FIFO order among equal prices) and final state
    assert_events_equal(branch.process(cmds[1500:]), book.process(cmds[1500:]),
                        labels=(how, "original"))
    assert branch.state_hash() == book.state_hash()


def test_snapshot_preserves_fifo_and_sequence_numbers():
    book = mc.OrderBook()
    for oid in (5, 3, 9, 1):
        book.submit(oid, mc.Side.BUY, 100, 2)
    book.modify(3, 5)  # larger qty: goes to the back
    restored = mc.OrderBook.from_snapshot(book.snapshot())
    assert restored.level(0, 100) == book.level(0, 100) == [(5, 2), (9, 2), (1, 2), (3, 5)]
    # new arrivals queue behind the restored ones, and invariants (seq increasing) hold
    restored.submit(2, mc.Side.BUY, 100, 1)
    restored.check_invariants()
    assert restored.level(0, 100)[-1] == (2, 1)
    # the next arrival number (header offset 40) and every order's own number survive
    again = mc.OrderBook.from_snapshot(book.snapshot()).snapshot()
    assert again == book.snapshot()
    assert struct.unpack_from("<Q", again, 40)[0] == 5


def test_snapshot_keeps_stp_mode_and_owner_and_post_only():
    book = mc.OrderBook(mc.STP.CANCEL_BOTH)
    book.submit(1, mc.Side.SELL, 101, 4, owner=9, post_only=True)
    r = mc.OrderBook.from_snapshot(book.snapshot())
    assert r.stp == mc.STP.CANCEL_BOTH
    r.submit(2, mc.Side.BUY, 101, 1, owner=9)  # self-trade, CANCEL_BOTH
    assert [int(k) for k in r.events()["kind"]][-2:] == [int(mc.EventKind.CANCELLED),
                                                         int(mc.EventKind.EXPIRED)]
    assert r.get(1) is None
    p = mc.OrderBook.from_snapshot(book.snapshot())
    p.submit(3, mc.Side.BUY, 100, 1)
    assert not p.modify(1, 4, 100)  # post-only survived: the reprice would cross


def test_snapshot_restore_in_place_keeps_handle_and_drops_pending_events():
    book = _session_book()
    snap = book.snapshot()
    other = mc.OrderBook()
    other.submit(77, 0, 50, 1)
    addr = other.address
    other.restore(snap)
    assert other.address == addr
    assert other.state_hash() == book.state_hash()
    assert len(other.events()) == 0
    assert other.get(77) is None


def test_snapshot_restore_keeps_the_capacity_the_book_was_made_with():
    # A book sized for the day (capacity=) and restored from a small snapshot keeps its pools:
    # restore() made them as small as the snapshot's orders, and the day's orders then grew
    # them again, doubling by doubling, on the order path.
    book = mc.OrderBook(capacity=100_000)
    sized = orders_capacity(book)
    src = _session_book()
    book.restore(src.snapshot())
    assert orders_capacity(book) == sized
    assert book.state_hash() == src.state_hash() and book.snapshot() == src.snapshot()
    book.check_invariants()
    # a snapshot of more orders than the book holds still restores whole, in bigger pools
    small = mc.OrderBook(capacity=0)
    small.restore(book.snapshot())
    assert small.state_hash() == src.state_hash()
    assert orders_capacity(small) >= len(src)
    small.check_invariants()


def test_snapshot_empty_book_round_trips():
    snap = mc.OrderBook().snapshot()
    assert len(snap) == HEADER + 8
    assert mc.OrderBook.from_snapshot(snap).state_hash() == mc.OrderBook().state_hash()


def test_snapshot_copy_is_independent():
    book = _session_book()
    h = book.state_hash()
    c = book.copy()
    c.submit(10**9, mc.Side.BUY, 1, 1)
    assert book.state_hash() == h != c.state_hash()



def _feed_replayer(feed):
    """A feed replayer of ``feed`` ("itch" or "dbn") and a generated stream for it."""
    if feed == "itch":
        from matchcore import itch
        return itch.Replayer(), itch.generate(None, messages=4000, symbols=2, seed=5)
    pytest.importorskip("databento_dbn", reason="needs the 'dbn' extra")
    import io
    from matchcore.feeds.dbn import DbnReplayer, read_metadata
    from matchcore.feeds.dbn_gen import generate_mbo
    data = generate_mbo(None, records=3000, instruments=2, seed=5)
    meta = read_metadata(io.BytesIO(data))
    return DbnReplayer(names=meta.names, ts_out=meta.ts_out), data[meta.header_bytes:]


def _replay_to_end(rep, data):
    n = rep.feed(data)
    rep.finish(data[n:])
    return {k: b.snapshot() for k, b in rep.books.items()}


@pytest.mark.parametrize("feed", ["itch", "dbn"])
def test_snapshot_restore_into_feed_replayer_book_refused_book_and_replay_unchanged(feed):
    # A feed replayer's book is its view of one instrument: restore() replaced the whole
    # struct, taking the snapshot's symbol id and dropping the replayer's lean id index, and the
    # replay went on applying the feed's orders to a foreign state. It is refused, from Python
    # and from C, before anything changes; a standalone book takes the snapshot.
    from test_capi import CTable
    api = CTable()
    rep, data = _feed_replayer(feed)
    half = rep.feed(data[:len(data) // 2])
    book = next(b for b in rep.books.values() if len(b))
    state = book.snapshot()
    snap = _session_book().snapshot()
    with pytest.raises(mc.ReadOnlyBookError,
                       match=r"belongs to a feed replayer: .*standalone OrderBook"):
        book.restore(snap)
    raw = np.frombuffer(snap, np.uint8).copy()
    assert api.snapshot_restore(book.handle, raw.ctypes.data, len(raw)) == -103
    assert book.snapshot() == state
    got = _replay_to_end(rep, data[half:])
    whole, _ = _feed_replayer(feed)
    assert got == _replay_to_end(whole, data)
    # once the replayer is gone the book is standalone and restores as any book
    del rep
    import gc
    gc.collect()
    book.restore(snap)
    assert book.snapshot() == snap

# ---- validation ----

@pytest.mark.parametrize("cut", [0, 7, 8, 50, HEADER + 7, -1, -9])
def test_snapshot_truncated_raises_and_leaves_book_unchanged(cut):
    snap = _session_book().snapshot()
    target = _session_book(seed=9)
    h = target.state_hash()
    data = snap[:cut] if cut >= 0 else snap[:len(snap) + cut]
    with pytest.raises(SnapshotError, match="truncated"):
        target.restore(data)
    assert target.state_hash() == h


@pytest.mark.parametrize("cut", [-1, -9, -(ORDER + LEVEL)])
def test_snapshot_cut_short_names_the_size_its_header_gives_and_the_bytes_given(cut):
    # "snapshot is truncated" told neither how much was given nor how much the snapshot is:
    # a file cut by a full disk and one cut by a short read look alike (bytes after a
    # snapshot were already refused with both sizes)
    snap = _session_book().snapshot()
    data = snap[:len(snap) + cut]
    target = _session_book(seed=9)
    before = target.snapshot()
    with pytest.raises(SnapshotError, match=rf"snapshot is truncated: its header says "
                                            rf"{len(snap)} bytes, {len(data)} given") as info:
        target.restore(data)
    assert info.value.code == 3 and target.snapshot() == before


@pytest.mark.parametrize("n", [0, 1, 7, 8, HEADER, HEADER + 7])
def test_snapshot_shorter_than_a_header_names_the_bytes_given(n):
    # fewer bytes than the smallest snapshot (an empty book's header and checksum): there is
    # no header to read a size from, so the refusal says how many bytes came and how many an
    # empty book's snapshot has
    data = _session_book().snapshot()[:n]
    assert len(mc.OrderBook().snapshot()) == HEADER + 8
    many = "byte" if n == 1 else "bytes"
    with pytest.raises(SnapshotError, match=rf"snapshot is truncated: {n} {many}, fewer than "
                                            rf"the {HEADER + 8} of its header and checksum"):
        mc.OrderBook.from_snapshot(data)


@pytest.mark.parametrize("data", [b"hello", b"PK\x03\x04", b"\x80\x04\x95", b"X"])
def test_snapshot_short_bytes_of_something_else_raise_bad_magic_book_unchanged(data):
    # fewer than 8 bytes that do not begin the magic (a few bytes of another file) were called
    # a truncated snapshot, which sends the reader looking for the rest of a file that never
    # was one; a prefix of the magic stays "truncated"
    target = _session_book(seed=9)
    before = target.snapshot()
    with pytest.raises(SnapshotError, match="bad magic") as info:
        target.restore(data)
    assert info.value.code == 1 and target.snapshot() == before
    with pytest.raises(SnapshotError, match="bad magic"):
        mc.OrderBook.from_snapshot(data)
    with pytest.raises(SnapshotError, match="truncated"):
        mc.OrderBook.from_snapshot(b"MCSNAP")


def test_snapshot_bad_magic_raises():
    snap = bytearray(_session_book().snapshot())
    snap[0:8] = b"NOTASNAP"
    with pytest.raises(SnapshotError, match="magic"):
        mc.OrderBook.from_snapshot(bytes(snap))


def test_snapshot_unknown_version_raises():
    snap = bytearray(_session_book().snapshot())
    struct.pack_into("<I", snap, 8, 2)
    with pytest.raises(SnapshotError, match="version") as info:
        mc.OrderBook.from_snapshot(_reseal(snap))
    assert info.value.code == 2


@pytest.mark.parametrize("version", [0, 2, 7, 2**32 - 1])
def test_snapshot_unknown_version_names_the_version_found_and_the_one_read(version):
    # "unsupported snapshot format version" named neither: a snapshot written by a newer
    # matchcore and a damaged version field looked alike (a pickle's refusal names both)
    snap = bytearray(_session_book().snapshot())
    struct.pack_into("<I", snap, 8, version)
    target = _session_book(seed=9)
    before = target.snapshot()
    with pytest.raises(SnapshotError, match=rf"format version {version} \(this matchcore "
                                            rf"reads version 1\)") as info:
        target.restore(_reseal(snap))
    assert info.value.code == 2 and target.snapshot() == before


@pytest.mark.parametrize("pos", [41, 30, HEADER + 3, HEADER + LEVEL + 5, -20])
def test_snapshot_flipped_byte_fails_checksum(pos):
    snap = bytearray(_session_book().snapshot())
    snap[pos] ^= 0x40
    with pytest.raises(SnapshotError, match="checksum"):
        mc.OrderBook.from_snapshot(bytes(snap))


def _refused_as_checksum_mismatch(pos, bit):
    """A whole snapshot with bit ``bit`` of byte ``pos`` flipped, checked refused by restore()
    as a checksum mismatch (code 4) that leaves the target as it was; returns it."""
    snap = bytearray(_session_book().snapshot())
    snap[pos] ^= bit
    target = _session_book(seed=9)
    before = target.snapshot()
    with pytest.raises(SnapshotError, match="checksum") as info:
        target.restore(bytes(snap))
    assert info.value.code == 4 and target.snapshot() == before
    return snap


@pytest.mark.parametrize("pos,bit", [(16, 0x01), (16, 0x40), (17, 0x01), (19, 0x80)])
def test_snapshot_damaged_size_field_is_a_checksum_mismatch_not_a_cut_or_extra_bytes(pos, bit):
    # A flipped bit in the header's total size made a whole snapshot read as truncated or as
    # "N bytes after the snapshot's content": advice to look for missing bytes or to cut bytes
    # that belong to it. Its checksum tells: the bytes given are damaged.
    _refused_as_checksum_mismatch(pos, bit)
    # a snapshot cut short is still truncated, and one with bytes after it says how many
    whole = _session_book().snapshot()
    with pytest.raises(SnapshotError, match="truncated"):
        mc.OrderBook.from_snapshot(whole[:-1])
    with pytest.raises(SnapshotError, match="2 bytes after"):
        mc.OrderBook.from_snapshot(whole + b"\n\n")


@pytest.mark.parametrize("pos,bit", [(12, 0x01), (13, 0x02), (15, 0x80)])
def test_snapshot_damaged_header_size_field_is_a_checksum_mismatch(pos, bit):
    # The header's own size (80) was checked before the checksum: a flipped bit there made a
    # whole snapshot "inconsistent content", as if a writer had put wrong values in it
    snap = _refused_as_checksum_mismatch(pos, bit)
    # with the checksum sealed over it, the header size is wrong content
    with pytest.raises(SnapshotError, match="inconsistent") as info:
        mc.OrderBook.from_snapshot(_reseal(snap))
    assert info.value.code == 5


def _one_level_snapshot():
    book = mc.OrderBook()
    book.submit(1, mc.Side.BUY, 100, 5)
    book.submit(2, mc.Side.BUY, 100, 6)
    book.submit(3, mc.Side.SELL, 105, 7)
    return bytearray(book.snapshot())


@pytest.mark.parametrize("edit", ["zero_qty", "dup_id", "seq_order", "crossed", "count",
                                  "bad_stp", "hash"])
def test_snapshot_inconsistent_content_with_valid_checksum_raises_corrupt(edit):
    s = _one_level_snapshot()
    o1 = HEADER + LEVEL            # first bid order record
    o2 = o1 + ORDER                # second bid order record
    if edit == "zero_qty":
        struct.pack_into("<q", s, o1 + 8, 0)
    elif edit == "dup_id":
        struct.pack_into("<Q", s, o2, 1)
    elif edit == "seq_order":
        seq1 = struct.unpack_from("<Q", s, o1 + 24)[0]
        struct.pack_into("<Q", s, o2 + 24, seq1)
    elif edit == "crossed":
        struct.pack_into("<q", s, o2 + ORDER, 99)  # ask level price below the bid
    elif edit == "count":
        struct.pack_into("<Q", s, 24, 4)
    elif edit == "bad_stp":
        s[60] = 9
    elif edit == "hash":
        struct.pack_into("<Q", s, 64, 12345)
    with pytest.raises(SnapshotError, match="inconsistent"):
        mc.OrderBook.from_snapshot(_reseal(s))


@pytest.mark.parametrize("extra,how", [(1, "appended"), (9, "appended"), (1, "resealed")])
def test_snapshot_bytes_after_content_raises_saying_how_many_book_unchanged(extra, how):
    # A snapshot read back with bytes after it (a file written twice, a newline added) was
    # refused as "snapshot content is inconsistent", which says nothing of what is wrong.
    s = _one_level_snapshot()
    size = len(s)
    data = (bytes(s) + b"\n" * extra if how == "appended"
            else _reseal(s[:-8] + b"\0" * extra + s[-8:]))
    target = _session_book(seed=9)
    h = target.state_hash()
    with pytest.raises(SnapshotError, match=f"{extra} bytes? after the snapshot's content") \
            as info:
        target.restore(data)
    assert info.value.code == 5 and str(size) in str(info.value)
    assert target.state_hash() == h
    with pytest.raises(SnapshotError, match="after the snapshot's content"):
        mc.OrderBook.from_snapshot(data)


def test_snapshot_of_crossed_replay_book_round_trips_exactly():
    # Exchange data can leave a rebuilt book locked or crossed; its snapshot must restore.
    book = mc.OrderBook()
    book.place(1, mc.Side.BUY, 101, 5)
    book.place(2, mc.Side.SELL, 100, 3)
    book.place(3, mc.Side.SELL, 101, 4)
    restored = mc.OrderBook.from_snapshot(book.snapshot())
    assert restored.state_hash() == book.state_hash()
    assert restored.best_bid() == (101, 5) and restored.best_ask() == (100, 3)
    restored.check_invariants(allow_crossed=True)


def test_snapshot_rejects_str_input():
    with pytest.raises(TypeError):
        mc.OrderBook().restore("MCSNAPSH")


@pytest.mark.parametrize("bad", [None, [1, 2], 5])
def test_snapshot_restore_of_not_bytes_says_a_snapshot_is_bytes(bad):
    # None or a list raised memoryview's own "a bytes-like object is required", naming neither
    # the snapshot nor the argument; a str was already told apart
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    before = book.state_hash()
    for call in (book.restore, mc.OrderBook.from_snapshot):
        with pytest.raises(TypeError) as err:
            call(bad)
        assert str(err.value) == f"a snapshot is bytes, not {type(bad).__name__}"
    assert book.state_hash() == before


def test_snapshot_restore_of_a_strided_view_says_to_copy_it():
    # a snapshot in every other byte of an array (a strided view) was refused with memoryview's
    # "casts are restricted to C-contiguous views", naming neither the snapshot nor the remedy
    import numpy as np

    src = mc.OrderBook()
    src.submit(1, 0, 100, 5)
    snap = src.snapshot()
    spread = np.zeros(2 * len(snap), dtype=np.uint8)
    spread[::2] = np.frombuffer(snap, dtype=np.uint8)
    book = mc.OrderBook()
    book.submit(2, 1, 101, 3)
    before = book.state_hash()
    for bad in (spread[::2], memoryview(spread)[::2]):
        for call in (book.restore, mc.OrderBook.from_snapshot):
            with pytest.raises(TypeError, match=r"a snapshot is contiguous bytes: this "
                               rf"{type(bad).__name__} is a strided view \(copy it first"):
                call(bad)
    assert book.state_hash() == before
    book.restore(bytes(spread[::2]))           # the copy the message asks for is taken
    assert book.state_hash() == src.state_hash()


# ---- owner-filtered events, depth into caller arrays ----

def test_snapshot_events_owner_sees_own_orders_and_maker_fills_only():
    book = mc.OrderBook()
    book.submit(1, mc.Side.SELL, 100, 5, owner=7)
    book.submit(2, mc.Side.SELL, 100, 5, owner=8)
    book.submit(3, mc.Side.BUY, 100, 7, owner=9)     # fills 7's order 1 (maker) and 8's
    book.submit(4, mc.Side.BUY, 99, 1, owner=7)
    book.submit_market(5, mc.Side.SELL, 1, owner=7)  # meets its own bid 4: STP cancels it
    ev = book.events(owner=7)
    pairs = [(int(k), int(o)) for k, o in zip(ev["kind"], ev["order_id"])]
    F, A = int(mc.EventKind.FILL), int(mc.EventKind.ACCEPTED)
    assert pairs[:2] == [(A, 1), (F, 3)]
    assert (A, 4) in pairs and (A, 5) in pairs
    assert all(o == 7 or m == 7 for o, m in zip(ev["owner"], ev["maker_owner"]))
    assert len(book.events()) == 0  # the other events were consumed too


def test_snapshot_events_owner_equals_python_filter_on_random_session():
    cmds = random_commands(2000, 4)
    all_events = run_python_calls(mc.OrderBook(), cmds)
    for w in range(4):
        # maker_owner names a participant only in fills (it is 0 elsewhere, as is owner 0)
        fill = all_events["kind"] == mc.EventKind.FILL
        expected = all_events[(all_events["owner"] == w) | (fill & (all_events["maker_owner"] == w))]
        book = mc.OrderBook()
        chunks = []
        for i in range(0, len(cmds), 97):
            run_python_calls(book, cmds[i:i + 97], drain=False)
            chunks.append(book.events(owner=w))
        assert_events_equal(np.concatenate(chunks), expected, context=f"owner {w}: ")


def test_snapshot_events_owner_with_record_events_false_is_empty():
    book = mc.OrderBook(record_events=False)
    book.submit(1, 0, 100, 1, owner=3)
    assert len(book.events(owner=3)) == 0


def test_snapshot_depth_into_matches_depth_and_does_not_allocate():
    book = _session_book(seed=6)
    bids_out = np.full((4, 2), -1, np.int64)
    asks_out = np.full((50, 2), -1, np.int64)
    nb, na = book.depth_into(bids_out, asks_out)
    bids, asks = book.depth(50)
    assert nb == min(4, len(bids)) and na == len(asks)
    assert bids_out[:nb].tolist() == bids[:nb].tolist()
    assert asks_out[:na].tolist() == asks.tolist()
    assert (asks_out[na:] == -1).all()  # rows past the count untouched
    ptr = bids_out.ctypes.data
    book.depth_into(bids_out, asks_out)
    assert bids_out.ctypes.data == ptr


@pytest.mark.parametrize("bad", [np.zeros((3, 3), np.int64), np.zeros((3, 2), np.int32),
                                 np.zeros((3, 2), np.int64)[::2], np.zeros(6, np.int64)])
def test_snapshot_depth_into_wrong_array_raises(bad):
    with pytest.raises((ValueError, TypeError)):
        mc.OrderBook().depth_into(bad, np.zeros((2, 2), np.int64))


def test_snapshot_depth_into_level_beyond_int64_raises_as_depth_nothing_written():
    # depth() refuses a level total beyond int64; depth_into wrote it as 2**63 - 1, a wrong
    # total indistinguishable from a real one
    top = 2**63 - 1
    eng = mc.Engine()
    eng.add_symbol(1)
    book = mc.OrderBook()
    for target, submit in ((book, book.submit), (eng, lambda *a: eng.submit(1, *a))):
        submit(1, 0, 99, 5)
        submit(2, 1, 101, top)
        submit(3, 1, 101, top)
        submit(4, 1, 102, 7)
        into = book.depth_into if target is book else (lambda b, a: eng.depth_into(1, b, a))
        bids_out, asks_out = np.full((3, 2), -1, np.int64), np.full((3, 2), -1, np.int64)
        with pytest.raises(OverflowError, match=rf"level 101 holds {2 * top} lots, beyond int64"):
            into(bids_out, asks_out)
        assert (bids_out == -1).all() and (asks_out == -1).all()
        # a side whose rows stop before the wide level, and the other side, are written
        assert into(bids_out, np.full((0, 2), -1, np.int64)) == (1, 0)
        assert bids_out[0].tolist() == [99, 5]
        with pytest.raises(OverflowError):
            book.depth(1) if target is book else eng.depth(1, 1)


def _ro():
    a = np.zeros((3, 2), np.int64)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("bad,exc,words", [
    ([[0, 0]], TypeError, "got list"),
    (np.zeros((3, 2), np.int32), TypeError, "got dtype int32"),
    (np.zeros((3, 2), np.float64), TypeError, "got dtype float64"),
    (np.zeros((3, 3), np.int64), ValueError, "got shape (3, 3)"),
    (np.zeros(6, np.int64), ValueError, "got shape (6,)"),
    (np.zeros((6, 2), np.int64)[::2], ValueError, "C-contiguous"),
    (_ro(), ValueError, "writeable"),
])
@pytest.mark.parametrize("which", ["bids_out", "asks_out"])
@pytest.mark.parametrize("on", ["book", "engine"])
def test_snapshot_depth_into_bad_array_precise_error_names_argument_nothing_written(
        bad, exc, words, which, on):
    # Cython's typed memoryviews answered "a bytes-like object is required" or "Buffer dtype
    # mismatch" (a ValueError for a wrong dtype), without naming the argument
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.submit(1, 2, 1, 101, 5)
    into = eng.book(1).depth_into if on == "book" else (lambda b, a: eng.depth_into(1, b, a))
    good = np.full((3, 2), -1, np.int64)
    args = (bad, good) if which == "bids_out" else (good, bad)
    with pytest.raises(exc) as err:
        into(*args)
    msg = str(err.value)
    assert msg.startswith(f"depth_into() needs {which}") and words in msg, msg
    assert (good == -1).all()


def _book_refusals():
    # (name, call): every kind of refusal of a lone book, each at ts_ns=999 on _clocked_book
    from refusal_makers import batch, call

    K = mc.CommandKind
    return [
        ("submit qty 0", call("submit", 50, 0, 100, 0)),
        ("submit price 0", call("submit", 50, 0, 0, 5)),
        ("submit side 7", call("submit", 50, 7, 100, 5)),
        ("submit tif 9", call("submit", 50, 0, 100, 5, 9)),
        ("submit duplicate", call("submit", 1, 0, 90, 5)),
        ("submit post-only crossing", call("submit", 50, 0, 101, 5, post_only=True)),
        ("market qty 0", call("submit_market", 50, 0, 0)),
        ("market duplicate", call("submit_market", 2, 0, 5)),
        ("cancel unknown id", call("cancel", 77)),
        ("modify unknown id", call("modify", 77, 3)),
        ("modify qty 0", call("modify", 1, 0)),
        ("modify post-only crossing", call("modify", 3, 5, 101)),
        ("place price 0", call("place", 50, 0, 0, 5)),
        ("place duplicate", call("place", 1, 0, 90, 5)),
        ("reduce qty 0", call("reduce", 1, 0)),
        ("reduce unknown id", call("reduce", 77, 1)),
        ("process submit qty 0", batch(kind=K.SUBMIT, order_id=50, price=100)),
        ("process duplicate", batch(kind=K.SUBMIT, order_id=1, price=90, qty=5)),
        ("process cancel unknown id", batch(kind=K.CANCEL, order_id=77)),
        ("process modify qty 0", batch(kind=K.MODIFY, order_id=1)),
        ("process unknown kind", batch(kind=9, order_id=50)),
    ]


@pytest.mark.parametrize("name,refuse", _book_refusals(), ids=[n for n, _ in _book_refusals()])
def test_book_refused_call_leaves_its_snapshot_and_pickle_unchanged(name, refuse):
    # "Bad input ... changes nothing" (README, Semantics), but a lone book set its clock (in
    # its snapshot and pickle) from the refused call's ts_ns before refusing it, while an
    # engine's book keeps its clock on a refusal: the same commands left the two different
    import pickle

    book = mc.OrderBook()
    book.submit(1, 0, 100, 5, ts_ns=10)
    book.submit(2, 1, 101, 5, ts_ns=10)
    book.submit(3, 0, 99, 5, post_only=True, ts_ns=10)
    book.events()
    before = (book.snapshot(), pickle.dumps(book))
    try:
        got = refuse(book)
    except mc.OrderRejected:
        got = None
    events = got if name.startswith("process") else book.events()
    assert events["kind"].tolist() == [mc.EventKind.REJECTED]
    assert events["ts_ns"].tolist() == [999]
    assert (book.snapshot(), pickle.dumps(book)) == before
    # as an engine's book given the same commands
    eng = mc.Engine()
    eng.add_symbol(0)
    for oid, side, price, po in ((1, 0, 100, False), (2, 1, 101, False), (3, 0, 99, True)):
        eng.submit(0, oid, side, price, 5, post_only=po, ts_ns=10)
    assert eng.book(0).snapshot() == book.snapshot()
