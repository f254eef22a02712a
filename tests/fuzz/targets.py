"""Fuzz targets: one function per reader of untrusted bytes, each with its contract.

A target takes one input (``bytes``) and returns ``None``. It catches exactly the exception types
its contract allows and checks, with ``assert``, what must hold afterwards; anything else that
escapes (another exception type, a failed assertion, a crash of the process) is a finding. The
same function runs under atheris (``python -m tests.fuzz``), on its seed corpus in the default
tests, and on saved crash inputs (``python -m tests.fuzz TARGET --replay FILE``).

Several targets read the first input byte as a set of option flags (decoder mode, chunking,
receiver configuration); the rest is the payload. The seed builders prepend that byte, so the
fuzzer mutates options and payload together.

Add a target with :func:`register` (see ``tests/fuzz/__init__.py``).
"""
from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import matchcore as mc
import matchcore.itch as itch
import matchcore.moldudp as mold
import matchcore.native as native
from matchcore import COMMAND_DTYPE, EVENT_DTYPE, STP, OrderRejected, SnapshotError

SHARED_ITCH = Path(__file__).resolve().parents[3] / "shared" / "data" / "itch"


@dataclass(frozen=True)
class Target:
    """A fuzz target: ``fn(data)`` checks one input; ``seeds()`` builds the seed corpus (small
    valid inputs); ``contract`` says what is allowed and what must hold; ``max_len`` bounds the
    inputs libFuzzer makes (bytes)."""

    name: str
    fn: Callable[[bytes], None]
    seeds: Callable[[], list]
    contract: str
    max_len: int = 4096


TARGETS: dict[str, Target] = {}


def register(name: str, fn, seeds, *, contract: str, max_len: int = 4096) -> Target:
    """Add a target to :data:`TARGETS` (the runner and the tests pick it up from there)."""
    if name in TARGETS:
        raise ValueError(f"fuzz target {name!r} is registered twice")
    t = Target(name, fn, seeds, " ".join(contract.split()), max_len)
    TARGETS[name] = t
    return t


def _flags(data: bytes) -> tuple[int, bytes]:
    """(option byte, payload): the first byte of an input selects options, the rest is data."""
    if not data:
        return 0, b""
    return data[0], data[1:]


# ================================================================================================
# ITCH 5.0: itch.decode and the Replayer.feed loop
# ================================================================================================

ITCH_INFER = 0x01        # infer_lengths=True (lengths from the type byte)
ITCH_SNAPSHOTS = 0x02    # depth snapshots every 5 messages
ITCH_CALLBACK = 0x04     # a Python callback every 3 messages of a book (pauses the loop)
ITCH_FILTER = 0x08       # books only for locate 1 / AAPL
# bits 4..7: piece size of the chunked feed, an index into _PIECES (bytes)
_PIECES = (1, 3, 7, 13, 29, 64, 127, 256, 509, 1024, 2048, 5, 11, 37, 100, 300)


def _replay_whole(buf: bytes, flags: int):
    calls = []

    def callback(symbol, book, ts_ns):
        # mid-stream, between compiled chunks: the book must already be consistent
        book.check_invariants(allow_crossed=True)
        calls.append(symbol)

    r = itch.Replayer(
        infer_lengths=bool(flags & ITCH_INFER),
        snapshot_every=5 if flags & ITCH_SNAPSHOTS else 0, snapshot_depth=3,
        callback=callback if flags & ITCH_CALLBACK else None, callback_every=3,
        symbols=["AAPL", "1"] if flags & ITCH_FILTER else None)
    n = r.feed(buf)
    assert 0 <= n <= len(buf), f"feed consumed {n} of {len(buf)} bytes"
    stats = r.finish(buf[n:])
    assert (stats["truncated"] is None) == (n == len(buf)), (n, len(buf), stats["truncated"])
    assert stats["bytes_consumed"] == n, (stats["bytes_consumed"], n)
    return r, stats


def fuzz_itch(data: bytes) -> None:
    flags, buf = _flags(data)
    infer = bool(flags & ITCH_INFER)

    # --- the array decoder: never raises on bytes, accounts for every byte ---
    d = itch.decode(buf, infer_lengths=infer)
    st = d.stats
    assert st["messages"] == sum(st["counts"].values())
    for t, arr in d.items():
        assert len(arr) == st["counts"][t], (t, len(arr), st["counts"])
        assert arr.dtype == itch.DTYPES[t]
    for t in st["unknown_types"]:
        assert t not in d and t not in itch.LENGTHS
    if st["truncated"] is not None:
        tr = st["truncated"]
        assert tr["offset"] + tr["bytes"] == len(buf), (tr, len(buf))
        assert 0 < tr["bytes"]

    # --- the replay loop on the whole buffer: the same framing, consistent books ---
    r, s = _replay_whole(buf, flags)
    assert (s["messages"], s["counts"], s["bad_lengths"], s["bytes_skipped"], s["truncated"]) == \
        (st["messages"], st["counts"], st["bad_lengths"], st["bytes_skipped"], st["truncated"]), \
        (s, st)
    assert s["open_orders"] == sum(len(b) for b in r.books.values())
    for book in r.books.values():
        book.check_invariants(allow_crossed=True)
    tob, trades, snaps, sysev = r.tob(), r.trades(), r.snapshots(), r.system_events
    if len(tob):
        assert set(np.unique(tob["locate"]).tolist()) <= set(r.books)
    if len(snaps):
        assert set(np.unique(snaps["locate"]).tolist()) <= set(r.books)
    assert len(sysev) == st["counts"].get("S", 0)
    execs = trades[(trades["kind"] == b"E") | (trades["kind"] == b"C")]
    # an execution takes what the order had at most, and never nothing
    assert bool(np.all(execs["shares"] > 0)) and bool(np.all(np.isin(execs["side"], [b"B", b"S"])))

    # --- the same bytes fed in pieces, the unconsumed tail carried over (replay_file's loop) ---
    piece = _PIECES[flags >> 4]
    rc = itch.Replayer(infer_lengths=infer, symbols=["AAPL", "1"] if flags & ITCH_FILTER else None)
    tail, pos = b"", 0
    while pos < len(buf):
        chunk = tail + buf[pos:pos + piece]
        pos += piece
        k = rc.feed(chunk)
        assert 0 <= k <= len(chunk)
        tail = chunk[k:]
    sc = rc.finish(tail)
    for book in rc.books.values():
        book.check_invariants(allow_crossed=True)
    if s["bad_lengths"] == 0:
        # Clean framing is decided message by message, so the split points cannot matter: the
        # same messages reach the same books in the same order. (After a bad prefix the resync
        # may decide differently with less data in view, so only consistency is required there.)
        assert sc["bad_lengths"] == 0, sc
        for key in ("messages", "counts", "unknown_refs", "executions_clamped",
                    "cancels_clamped", "duplicate_refs", "invalid_adds", "open_orders",
                    "last_ts", "truncated"):
            assert sc[key] == s[key], (key, sc[key], s[key])
        assert sorted(rc.books) == sorted(r.books)
        for loc, book in r.books.items():
            assert rc.books[loc].state_hash() == book.state_hash(), f"locate {loc} differs"


def _shared_heads(limit: int) -> list[tuple[str, bytes]]:
    out = []
    if SHARED_ITCH.is_dir():
        for path in sorted(SHARED_ITCH.glob("*.itch50")):
            with open(path, "rb") as f:      # read, never copied into the repository
                out.append((path.name, f.read(limit)))
    return out


def seeds_itch() -> list[bytes]:
    seeds = []
    for messages, symbols, seed in ((60, 2, 1), (110, 3, 2), (40, 1, 3)):
        data = itch.generate(None, messages=messages, symbols=symbols, seed=seed)
        seeds += [bytes([0x30]) + data, bytes([0x06 | 0x50]) + data, bytes([0x08 | 0xF0]) + data]
    for name, head in _shared_heads(3000):
        zero_prefix = "zero-prefix" in name
        seeds.append(bytes([ITCH_INFER if zero_prefix else 0x20]) + head)
        seeds.append(bytes([0x02 | (0 if zero_prefix else ITCH_INFER)]) + head)
    return seeds


register("itch", fuzz_itch, seeds_itch, max_len=4096, contract="""
    itch.decode(bytes) and Replayer.feed/finish, with and without infer_lengths, whole and in
    pieces: no exception at all; decode and the replay loop frame the bytes identically; every
    byte is a message, skipped, or the reported truncated tail; books pass
    check_invariants(allow_crossed=True), also mid-stream in callbacks; without bad prefixes,
    feeding in pieces gives the same books and counters as feeding the whole buffer.""")


# ================================================================================================
# native command files: read_header / read_commands / replay_commands
# ================================================================================================

_TMP = None


def fast_tmp_parent() -> str | None:
    """A memory file system where there is one (renaming a file there costs microseconds, not
    the milliseconds of a disk), else the default temporary directory."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _tmpdir() -> Path:
    global _TMP
    if _TMP is None:
        # under the runner, a directory it removes when the fuzzing process has ended (libFuzzer
        # ends the process without running Python's cleanup)
        work = os.environ.get("MATCHCORE_FUZZ_TMP")
        if work:
            path = Path(work) / "files"
            path.mkdir(exist_ok=True)
            _TMP = path
        else:
            _TMP = tempfile.TemporaryDirectory(prefix="mc-fuzz-", dir=fast_tmp_parent())
    return _TMP if isinstance(_TMP, Path) else Path(_TMP.name)


def _write_file(data: bytes) -> Path:
    # a new inode per input (replace, not overwrite): an array still mapped from the previous
    # input can never see its file change under it
    d = _tmpdir()
    tmp = d / "input.tmp"
    tmp.write_bytes(data)
    path = d / "input.mccmd"
    os.replace(tmp, path)
    return path


def fuzz_native(data: bytes) -> None:
    path = _write_file(data)
    try:
        hdr = native.read_header(path)
    except native.NativeFormatError as e:
        # every reader refuses the same file with the same reason
        for fn in (native.read_commands, native.replay_commands):
            try:
                fn(path)
            except native.NativeFormatError as e2:
                assert str(e2) == str(e), (str(e2), str(e))
            else:
                raise AssertionError(f"read_header refused the file ({e}) but {fn.__name__} "
                                     "accepted it")
        return
    assert hdr.count == (len(data) - native.HEADER_SIZE) // COMMAND_DTYPE.itemsize
    assert len(data) == native.HEADER_SIZE + COMMAND_DTYPE.itemsize * hdr.count
    cmds = native.read_commands(path)
    assert cmds.dtype == COMMAND_DTYPE and len(cmds) == hdr.count
    assert cmds.tobytes() == data[native.HEADER_SIZE:]
    del cmds
    stp = hdr.stp if hdr.stp is not None else STP.CANCEL_RESTING
    book = mc.OrderBook(stp)
    events = native.replay_commands(path, book)
    assert events.dtype == EVENT_DTYPE
    book.check_invariants()
    # the same file replayed in pieces of 3 records, into a book the reader builds itself
    book2 = mc.OrderBook(stp)
    events2 = native.replay_commands(path, book2, chunk=3)
    assert events2.tobytes() == events.tobytes()
    assert book2.state_hash() == book.state_hash()
    if hdr.count:
        assert len(events) >= hdr.count      # at least one event per command


def _command_flow(n: int, seed: int) -> np.ndarray:
    """A small seeded mix of every command kind (submits of each TIF, post-only, markets,
    cancels and modifies, some of ids that are not resting) around price 100."""
    rng = np.random.default_rng(seed)
    cmds = np.zeros(n, dtype=COMMAND_DTYPE)
    cmds["ts_ns"] = np.arange(n) * 1000
    cmds["kind"] = rng.choice(4, size=n, p=[0.6, 0.1, 0.15, 0.15])
    cmds["order_id"] = np.where(cmds["kind"] <= 1, np.arange(1, n + 1), rng.integers(1, n + 1, n))
    cmds["side"] = rng.integers(0, 2, n)
    cmds["price"] = np.where(cmds["kind"] == 1, 0, rng.integers(95, 106, n))
    cmds["qty"] = rng.integers(1, 20, n)
    cmds["owner"] = rng.integers(0, 3, n)
    cmds["tif"] = np.where(cmds["kind"] == 0, rng.choice(3, size=n, p=[0.8, 0.1, 0.1]), 0)
    cmds["post_only"] = (cmds["kind"] == 0) & (rng.random(n) < 0.1)
    return cmds


def seeds_native() -> list[bytes]:
    d = _tmpdir()
    seeds = []
    cmds = _command_flow(60, seed=5)
    for i, (sl, stp) in enumerate(((slice(0, 60), None), (slice(20, 45), STP.CANCEL_BOTH),
                                   (slice(0, 0), None), (slice(0, 8), STP.CANCEL_TAKER))):
        p = d / f"seed{i}.mccmd"
        native.write_commands(p, cmds[sl], stp=stp)
        seeds.append(p.read_bytes())
    p = d / "journal.mccmd"
    with native.Recorder(mc.OrderBook(), p) as book:
        book.submit(1, mc.Side.BUY, 100, 5)
        book.submit(2, mc.Side.SELL, 101, 3, owner=2)
        book.modify(1, 4)
        try:
            book.submit(1, mc.Side.BUY, 99, 1)          # duplicate id: journaled as rejected
        except OrderRejected:
            pass
        book.submit_market(3, mc.Side.BUY, 2)
        book.cancel(2)
    seeds.append(p.read_bytes())
    return seeds


register("native", fuzz_native, seeds_native, max_len=4096, contract="""
    read_header / read_commands / replay_commands on a file of the fuzzed bytes: either
    NativeFormatError (all three refuse, with the same message) or a header whose count matches
    the file size exactly, records equal to the file bytes, a replay whose book passes
    check_invariants() and that gives identical events and state in pieces of 3 records.""")


# ================================================================================================
# MoldUDP64: parse_packet and the receiver's packet path (no socket traffic)
# ================================================================================================

MOLD_JOIN = 0x01         # first_seq=None: join the session at the first packet
MOLD_REPLAY = 0x02       # feed a Replayer instead of collecting the bytes
MOLD_SESSION = 0x04      # accept only session b"MATCHCORE1"
MOLD_FLUSH_EACH = 0x08   # flush after every packet (one feed call per packet)


def _split_packets(buf: bytes) -> list[bytes]:
    """The payload is a list of datagrams, each a u16 big-endian length then its bytes."""
    out, pos = [], 0
    while pos + 2 <= len(buf):
        n = (buf[pos] << 8) | buf[pos + 1]
        out.append(buf[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out


def _join_packets(packets) -> bytes:
    return b"".join(struct.pack(">H", len(p)) + p for p in packets)


def _check_packet(raw: bytes):
    try:
        p = mold.parse_packet(raw)
    except mold.MoldUDP64Error:
        return None
    assert len(p.session) == 10 and 0 <= p.seq < 2**64 and 0 <= p.count <= 0xFFFF
    if p.count in (mold.HEARTBEAT, mold.END_OF_SESSION):
        assert len(raw) == mold.HEADER_SIZE and len(p.blocks) == 0
        return p
    msgs = p.messages()
    assert len(msgs) == p.count and all(msgs)
    # parsing and building are inverse: the packet is exactly its header and its blocks
    assert mold.build_framed_packet(p.session, p.seq, p.count, p.blocks) == bytes(raw)
    assert mold.build_packet(p.session, p.seq, msgs) == bytes(raw)
    return p


def fuzz_moldudp(data: bytes) -> None:
    flags, buf = _flags(data)
    packets = _split_packets(buf)
    parsed = [_check_packet(p) for p in packets]
    replayer = itch.Replayer() if flags & MOLD_REPLAY else None
    rx = mold.MoldUDP64Receiver(0, replayer=replayer,
                                first_seq=None if flags & MOLD_JOIN else 1,
                                session=mold.DEFAULT_SESSION if flags & MOLD_SESSION else None)
    try:
        for p in packets:
            rx.handle_packet(p)
            if flags & MOLD_FLUSH_EACH:
                rx.flush()
        rx.flush()
    finally:
        rx.close()
    st = rx.stats
    assert st.packets == len(packets)
    assert st.malformed == sum(p is None for p in parsed)
    assert st.missing == sum(b - a + 1 for a, b in st.gaps)
    assert all(1 <= b - a + 1 for a, b in st.gaps)
    good = [p for p in parsed if p is not None and (st.session is None or p.session == st.session)]
    data_msgs = sum(p.count for p in good if p.count not in (mold.HEARTBEAT, mold.END_OF_SESSION))
    assert st.messages + st.duplicate_messages <= data_msgs
    if replayer is None:
        # exactly the in-sequence messages were handed on, each once, with their framing intact
        offsets, status, stop = mold.frame_offsets(bytes(rx.data))
        assert status == mold.FRAMES_OK and stop == len(rx.data), (status, stop, len(rx.data))
        assert len(offsets) - 1 == st.messages, (len(offsets) - 1, st.messages)
        assert rx.unconsumed == b""
    else:
        for book in replayer.books.values():
            book.check_invariants(allow_crossed=True)
        fed = replayer.stats["bytes_consumed"] + len(rx.unconsumed)
        assert fed <= st.bytes


def seeds_moldudp() -> list[bytes]:
    stream = itch.generate(None, messages=40, symbols=2, seed=4)
    offsets, _, _ = mold.frame_offsets(stream)
    bounds = [0, 5, 9, 17, 25, 33, len(offsets) - 1]
    s = mold.DEFAULT_SESSION

    def pkt(k):
        i, j = bounds[k], bounds[k + 1]
        return mold.build_framed_packet(s, 1 + i, j - i, stream[offsets[i]:offsets[j]])

    n = len(offsets) - 1
    clean = [pkt(k) for k in range(len(bounds) - 1)] + [mold.heartbeat(s, n + 1),
                                                        mold.end_of_session(s, n + 1)]
    lossy = [pkt(0), pkt(2), pkt(1), pkt(2), pkt(4), mold.heartbeat(s, 60), pkt(5)]
    other = [mold.build_packet(b"OTHER", 1, [b"ab"]), pkt(0), b"\x00" * 7,
             mold.build_packet(s, 3, [b"x", b"yz"]), mold.end_of_session(s, 99)]
    return [bytes([0x02]) + _join_packets(clean), bytes([0x00]) + _join_packets(clean),
            bytes([0x0B]) + _join_packets(lossy), bytes([0x04]) + _join_packets(other),
            bytes([0x06]) + _join_packets(lossy)]


register("moldudp", fuzz_moldudp, seeds_moldudp, max_len=4096, contract="""
    parse_packet on each datagram: a Packet that rebuilds to the same bytes, or MoldUDP64Error;
    MoldUDP64Receiver.handle_packet/flush on the sequence: never raises, counts every malformed
    datagram, gaps add up to the missing count, and the bytes handed on are exactly the
    in-sequence messages with intact framing (into a Replayer: books pass
    check_invariants(allow_crossed=True)).""")


# ================================================================================================
# book snapshots: OrderBook.restore / from_snapshot
# ================================================================================================

SNAP_RESEAL = 0x01       # recompute the trailer checksum after mutation (reach the content checks)
SNAP_IN_PLACE = 0x02     # restore into an existing non-empty book instead of from_snapshot
SNAP_EDITS = 0x04        # structure-aware: the payload is field edits to a valid snapshot
_EDIT = struct.Struct("<HQ")


def _edited(edits: bytes) -> bytes:
    """A valid snapshot of a fixed book with 8-byte little-endian values written at the given
    offsets (each edit: u16 offset modulo the body size, u64 value), checksum recomputed. Lets
    the fuzzer set any header or record field to any value (counts, sequence numbers, prices)
    instead of hoping byte flips assemble one."""
    snap = bytearray(_base_snapshot())
    body = len(snap) - 8
    for k in range(0, len(edits) - _EDIT.size + 1, _EDIT.size):
        off, value = _EDIT.unpack_from(edits, k)
        off %= body
        snap[off:min(off + 8, body)] = struct.pack("<Q", value)[:min(8, body - off)]
    return reseal(bytes(snap))


_BASE = None


def _base_snapshot() -> bytes:
    global _BASE
    if _BASE is None:
        b = _victim()
        b.place(950, mc.Side.SELL, 99, 4, owner=3)      # a crossed book must restore too
        b.submit(951, mc.Side.BUY, 97, 2, owner=1, post_only=True)
        _BASE = b.snapshot()
    return _BASE


def fnv1a(data: bytes) -> int:
    """The snapshot trailer checksum (FNV-1a 64 over every byte before it)."""
    h = 14695981039346656037
    for byte in data:
        h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def reseal(snap: bytes) -> bytes:
    """``snap`` with its trailer checksum recomputed (so only the content checks can refuse it)."""
    if len(snap) < 8:
        return snap
    return snap[:-8] + struct.pack("<Q", fnv1a(snap[:-8]))


_VICTIM = None


def _victim() -> mc.OrderBook:
    global _VICTIM
    if _VICTIM is None:
        b = mc.OrderBook(STP.CANCEL_TAKER)
        for i in range(6):
            b.submit(900 + i, i % 2, 100 + (i % 3) * (1 if i % 2 else -1) + (2 if i % 2 else 0),
                     3 + i, owner=i)
        _VICTIM = b
    return _VICTIM.copy()


def fuzz_snapshot(data: bytes) -> None:
    flags, snap = _flags(data)
    if flags & SNAP_EDITS:
        snap = _edited(snap)
    elif flags & SNAP_RESEAL:
        snap = reseal(snap)
    if flags & SNAP_IN_PLACE:
        book = _victim()
        h0, n0 = book.state_hash(), len(book)
        try:
            book.restore(snap)
        except SnapshotError:
            assert book.state_hash() == h0 and len(book) == n0, "failed restore changed the book"
            book.check_invariants()
            return
    else:
        try:
            book = mc.OrderBook.from_snapshot(snap)
        except SnapshotError:
            return
    book.check_invariants(allow_crossed=True)
    # what the header promises is what was restored
    assert book.state_hash() == struct.unpack_from("<Q", snap, 64)[0]
    assert len(book) == struct.unpack_from("<Q", snap, 24)[0]
    # a snapshot of the restored book is canonical: it restores to itself
    again = book.snapshot()
    assert len(again) == len(snap)
    copy = mc.OrderBook.from_snapshot(again)
    assert copy.snapshot() == again and copy.state_hash() == book.state_hash()
    # the restored book is usable: new orders queue behind the restored ones (FIFO by arrival
    # sequence), sweeps and cancels keep every invariant
    for oid in (2**64 - 1, 2**64 - 2):
        try:
            book.place(oid, mc.Side.BUY, 1, 1)
        except OrderRejected:
            pass
    book.check_invariants(allow_crossed=True)
    owner = 2**64 - 1
    for oid, side, price in ((2**64 - 3, mc.Side.BUY, 2**63 - 1), (2**64 - 4, mc.Side.SELL, 1)):
        try:
            book.submit(oid, side, price, 2**62, mc.TIF.IOC, owner=owner)
        except OrderRejected:
            pass
        book.check_invariants(allow_crossed=True)
    for oid in (2**64 - 1, 2**64 - 2):
        book.cancel(oid)
    book.check_invariants(allow_crossed=True)


def seeds_snapshot() -> list[bytes]:
    rng = np.random.default_rng(11)
    seeds = []
    empty = mc.OrderBook().snapshot()
    seeds += [bytes([0]) + empty, bytes([SNAP_IN_PLACE]) + empty]
    for stp, n in ((STP.CANCEL_RESTING, 40), (STP.CANCEL_BOTH, 25), (STP.CANCEL_TAKER, 12)):
        b = mc.OrderBook(stp)
        for i in range(n):
            b.submit(1 + i, int(rng.integers(2)), int(rng.integers(95, 106)),
                     int(rng.integers(1, 20)), owner=int(rng.integers(3)),
                     post_only=bool(rng.random() < 0.2))
        for oid in rng.choice(np.arange(1, n + 1), size=n // 5, replace=False):
            b.cancel(int(oid))
        s = b.snapshot()
        seeds += [bytes([0]) + s, bytes([SNAP_RESEAL]) + s, bytes([SNAP_IN_PLACE | SNAP_RESEAL]) + s]
    crossed = mc.OrderBook()
    crossed.place(1, mc.Side.BUY, 101, 5)
    crossed.place(2, mc.Side.SELL, 100, 3)
    crossed.place(3, mc.Side.SELL, 101, 4)
    crossed.place(4, mc.Side.BUY, 101, 2, owner=7)
    seeds += [bytes([SNAP_RESEAL]) + crossed.snapshot(),
              bytes([SNAP_IN_PLACE]) + crossed.snapshot()]
    # field edits: none (the base itself), then one per header field and per field of the
    # first level and order, each writing the value already there (mutations then move it)
    base = _base_snapshot()
    seeds.append(bytes([SNAP_EDITS]))
    for off in (16, 24, 32, 36, 40, 48, 56, 60, 64, 72, 80, 88, 96, 104, 112, 120, 128):
        value = struct.unpack_from("<Q", base, off)[0]
        seeds.append(bytes([SNAP_EDITS | (SNAP_IN_PLACE if off % 16 else 0)]) +
                     _EDIT.pack(off, value))
    return seeds


register("snapshot", fuzz_snapshot, seeds_snapshot, max_len=4096, contract="""
    OrderBook.restore / from_snapshot on mutated valid snapshots (raw; with the checksum
    recomputed so that the content checks are reached; or as field edits of a valid snapshot):
    either SnapshotError, with the target
    book's state_hash unchanged, or a book that passes check_invariants(allow_crossed=True),
    holds the header's order count and state hash, snapshots canonically, and stays consistent
    through new orders, sweeps and cancels.""")
