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
from matchcore._magic import TEXT_LOOK
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
        snapshot_every=5 if flags & ITCH_SNAPSHOTS else 0,
        snapshot_depth=3 if flags & ITCH_SNAPSHOTS else None,
        callback=callback if flags & ITCH_CALLBACK else None,
        callback_every=3 if flags & ITCH_CALLBACK else None,
        symbols=["AAPL", "1"] if flags & ITCH_FILTER else None)
    n = r.feed(buf)
    assert 0 <= n <= len(buf), f"feed consumed {n} of {len(buf)} bytes"
    stats = r.finish(buf[n:])
    # finish() frames what feed() kept back for lack of following bytes (a resync candidate)
    assert (stats["truncated"] is None) == (stats["bytes_consumed"] == len(buf)), \
        (n, len(buf), stats["truncated"])
    assert n <= stats["bytes_consumed"] <= len(buf), (stats["bytes_consumed"], n)
    return r, stats


# a system event message (start of messages): a start every reader takes
_SYSTEM_EVENT = b"\x00\x0cS" + bytes(10) + b"O"


def fuzz_itch(data: bytes) -> None:
    flags, buf = _flags(data)
    infer = bool(flags & ITCH_INFER)

    # --- the array decoder: never raises on bytes but a refused head, accounts for every byte ---
    try:
        d = itch.decode(buf, infer_lengths=infer)
    except ValueError as e:
        # first bytes that cannot start an ITCH stream (DBN, text, bytes from inside a
        # message), refused as from a file, and by the replayers' first feed in the same words:
        # the framing under the check is fuzzed all the same, behind a system event message
        assert str(e).startswith("the buffer: "), e
        first = itch.Replayer(infer_lengths=infer)
        try:
            n = first.feed(buf)
            # a first chunk too short to be judged as the whole stream is kept back, nothing
            # consumed, and judged when the stream ends
            if n != 0 or len(buf) >= TEXT_LOOK:
                raise AssertionError(f"decode refused the start ({e}) but Replayer.feed took "
                                     f"{n} of {len(buf)} bytes")
            first.finish(buf)
        except ValueError as e2:
            assert str(e2) == str(e), (str(e2), str(e))
        else:
            raise AssertionError(f"decode refused the start ({e}) but Replayer.feed took it")
        buf = _SYSTEM_EVENT + buf
        d = itch._decode_buffer(memoryview(buf), infer)
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
    # Framing, the resync after a bad prefix included, waits for the bytes it needs, so the
    # split points cannot matter: the same messages reach the same books in the same order.
    for key in ("messages", "counts", "bad_lengths", "bad_length_offsets", "bytes_skipped",
                "unknown_refs", "executions_clamped", "cancels_clamped", "duplicate_refs",
                "invalid_adds", "open_orders", "last_ts", "truncated"):
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
    pieces: no exception at all (but decode's ValueError for first bytes that cannot start an
    ITCH stream, as from a file); decode and the replay loop frame the bytes identically; every
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


def _process_pieces(path: Path, book, chunk=None):
    cmds = native.read_commands(path)
    step = chunk or max(len(cmds), 1)
    return np.concatenate([book.process(cmds[i:i + step]) for i in range(0, len(cmds), step)]
                          or [np.empty(0, EVENT_DTYPE)])


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
        _fuzz_native_committed(path, data)
        return
    assert native.read_header(path, committed=True) == hdr      # nothing left out
    assert hdr.count == (len(data) - native.HEADER_SIZE) // COMMAND_DTYPE.itemsize
    assert len(data) == native.HEADER_SIZE + COMMAND_DTYPE.itemsize * hdr.count
    cmds = native.read_commands(path)
    assert cmds.dtype == COMMAND_DTYPE and len(cmds) == hdr.count
    assert cmds.tobytes() == data[native.HEADER_SIZE:]
    several = len(cmds) > 0 and bool((cmds["symbol"] != cmds["symbol"][0]).any())
    del cmds
    stp = hdr.stp if hdr.stp is not None else STP.CANCEL_RESTING
    book = mc.OrderBook(stp)
    if several:
        # one book holds one symbol: refused before any record is replayed
        before = book.state_hash()
        try:
            native.replay_commands(path, book)
        except ValueError as e:
            assert "one book holds one symbol" in str(e), str(e)
        else:
            raise AssertionError("replay_commands replayed several symbols into one book")
        assert book.state_hash() == before and len(book) == 0
    elif hdr.started_nonempty:
        _refused_empty_start(path, book)
    # (records of several symbols, or of a journal begun on a book holding orders: the same
    # checks on the records through process() itself)
    replay = _process_pieces if several or hdr.started_nonempty else native.replay_commands
    events = replay(path, book)
    assert events.dtype == EVENT_DTYPE
    book.check_invariants()
    # the same file replayed in pieces of 3 records, into a book the reader builds itself
    book2 = mc.OrderBook(stp)
    events2 = replay(path, book2, chunk=3)
    assert events2.tobytes() == events.tobytes()
    assert book2.state_hash() == book.state_hash()
    if hdr.count:
        assert len(events) >= hdr.count      # at least one event per command


def _fuzz_native_committed(path: Path, data: bytes) -> None:
    # a file the plain readers refuse: committed=True refuses it too (same message from all
    # three), unless it is a journal with bytes after its counted records, which are left out
    try:
        hdr = native.read_header(path, committed=True)
    except native.NativeFormatError as e:
        for fn in (native.read_commands, native.replay_commands):
            try:
                fn(path, committed=True)
            except native.NativeFormatError as e2:
                assert str(e2) == str(e), (str(e2), str(e))
            else:
                raise AssertionError(f"read_header(committed=True) refused the file ({e}) but "
                                     f"{fn.__name__} accepted it")
        return
    assert hdr.is_journal and hdr.uncommitted_bytes > 0
    end = native.HEADER_SIZE + COMMAND_DTYPE.itemsize * hdr.count
    assert len(data) == end + hdr.uncommitted_bytes
    cmds = native.read_commands(path, committed=True)
    assert cmds.tobytes() == data[native.HEADER_SIZE:end]
    several = len(cmds) > 0 and bool((cmds["symbol"] != cmds["symbol"][0]).any())
    del cmds
    book = mc.OrderBook(hdr.stp if hdr.stp is not None else STP.CANCEL_RESTING)
    if several:
        # records of several symbols: refused before any is replayed, as without committed=True
        before = book.state_hash()
        try:
            native.replay_commands(path, book, committed=True)
        except ValueError as e:
            assert "one book holds one symbol" in str(e), str(e)
        else:
            raise AssertionError("replay_commands replayed several symbols into one book")
        assert book.state_hash() == before and len(book) == 0
        return
    if hdr.started_nonempty:
        _refused_empty_start(path, book, committed=True)
        return
    native.replay_commands(path, book, committed=True)
    book.check_invariants()


def _refused_empty_start(path: Path, book, **kwargs) -> None:
    # a journal begun on a book holding orders replays from that state only: into an empty
    # book it is refused (as Recorder.resume refuses it), before any record is replayed
    before = book.snapshot()
    try:
        native.replay_commands(path, book, **kwargs)
    except ValueError as e:
        assert "begun on a book holding orders" in str(e), str(e)
    else:
        raise AssertionError("replay_commands replayed a journal begun on a book holding "
                             "orders into an empty book")
    assert book.snapshot() == before


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
    with native.Recorder(mc.OrderBook(), p, overwrite=True) as book:
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
    # the same journal as a Recorder killed inside its last flush leaves it: the count before
    # that flush's records, one of them torn
    cut = bytearray(p.read_bytes()[:-20])
    cut[16:24] = (4).to_bytes(8, "little")
    seeds.append(bytes(cut))
    # a journal of two symbols whose last flush left one torn byte: with committed=True its
    # records are read, and replay_commands refuses them for one book
    whole = p.read_bytes()
    recs = np.frombuffer(whole[native.HEADER_SIZE:], COMMAND_DTYPE).copy()
    recs["symbol"][-1] = 5
    seeds.append(whole[:native.HEADER_SIZE] + recs.tobytes() + b"\0")
    return seeds


register("native", fuzz_native, seeds_native, max_len=4096, contract="""
    read_header / read_commands / replay_commands on a file of the fuzzed bytes: either
    NativeFormatError (all three refuse, with the same message) or a header whose count matches
    the file size exactly, records equal to the file bytes, a replay whose book passes
    check_invariants() and that gives identical events and state in pieces of 3 records. With
    committed=True: the same, except that a journal with bytes after its counted records gives
    those records (the file's bytes) and a replay that passes check_invariants().""")


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
    assert len(msgs) == p.count
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
    # malformed: the packets that do not parse and, until a session is adopted, those whose
    # session name is not printable ASCII (never adopted)
    adopted, unadoptable = (mold.DEFAULT_SESSION if flags & MOLD_SESSION else None), 0
    for p in parsed:
        if p is not None and adopted is None:
            if all(0x20 <= b <= 0x7E for b in p.session):
                adopted = p.session
            else:
                unadoptable += 1
    assert st.session == adopted
    assert st.malformed == sum(p is None for p in parsed) + unadoptable
    assert st.missing == sum(b - a + 1 for a, b in st.gaps)
    assert all(1 <= b - a + 1 for a, b in st.gaps)
    # a gap longer than max_gap only ever comes from a jump a second packet confirmed
    assert sum(b - a + 1 > mold.DEFAULT_MAX_GAP for a, b in st.gaps) == st.confirmed_jumps
    assert st.confirmed_jumps <= st.implausible
    good = [p for p in parsed if p is not None and (st.session is None or p.session == st.session)]
    data_msgs = sum(p.count for p in good if p.count not in (mold.HEARTBEAT, mold.END_OF_SESSION))
    assert st.messages + st.duplicate_messages <= data_msgs
    if replayer is None:
        # exactly the in-sequence messages were handed on, each once, with their framing intact
        # (an empty message, a zero prefix, is one of them)
        data = bytes(rx.data)
        assert mold.block_end(data, 0, st.messages) == len(data), (st.messages, len(data))
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
    # sequence numbers far ahead: a flipped bit 40 (held, then dropped) and a real jump (held,
    # then confirmed by the packet after it)
    far = [pkt(0), bytearray(pkt(1)), pkt(2), mold.build_packet(s, 2**40, [b"ab"]),
           mold.build_packet(s, 2**40 + 1, [b"cd"]), mold.end_of_session(s, 2**40 + 2)]
    far[1][12] ^= 1
    # a first packet whose session name is corrupted: malformed, the next one's is adopted
    garbled = [bytearray(pkt(0)), pkt(1), pkt(2), mold.end_of_session(s, n + 1)]
    garbled[0][4] = 0x00
    return [bytes([0x02]) + _join_packets(clean), bytes([0x00]) + _join_packets(clean),
            bytes([0x0B]) + _join_packets(lossy), bytes([0x04]) + _join_packets(other),
            bytes([0x06]) + _join_packets(lossy), bytes([0x02]) + _join_packets(far),
            bytes([0x01]) + _join_packets(far), bytes([0x00]) + _join_packets(garbled)]


register("moldudp", fuzz_moldudp, seeds_moldudp, max_len=4096, contract="""
    parse_packet on each datagram: a Packet that rebuilds to the same bytes, or MoldUDP64Error;
    MoldUDP64Receiver.handle_packet/flush on the sequence: never raises, counts every malformed
    datagram, gaps add up to the missing count, a gap longer than max_gap is always a jump a
    later packet confirmed, and the bytes handed on are exactly the in-sequence messages with
    intact framing (into a Replayer: books pass check_invariants(allow_crossed=True)).""")


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


# ================================================================================================
# engine journals: read_journal / inspect / read_trades / recover(readonly=True)
# ================================================================================================

JRN_TRADES = 0x01        # the payload is a trade segment (trades-*.mct), else a command segment
JRN_EDITS = 0x02         # structure-aware: field edits to a valid segment, every CRC recomputed
JRN_RESEAL = 0x04        # raw bytes, but every CRC recomputed (reach the decoders)
JRN_PAIR = 0x08          # a valid segment of the other kind lies next to the fuzzed one
# bits 4..7: which base flow the edits apply to (modulo the number of flows)
_JEDIT = struct.Struct("<HQ")   # u16: bits 0..13 offset (modulo size), bits 14..15 width 1/2/4/8


def _durability():
    from matchcore import durability
    from matchcore.durability import _journal as _j
    return durability, _j


def reseal_journal(seg: bytes) -> bytes:
    """``seg`` (a segment file) with the header CRC and the CRC of every record whose length
    walks cleanly recomputed: a mutation then reaches the decoders instead of the CRC check."""
    _, _j = _durability()
    buf = bytearray(seg)
    n = len(buf)
    if n >= _j.SEG_HEADER:
        struct.pack_into("<I", buf, 60, _j.crc32c(bytes(buf[:60])))
    off = _j.SEG_HEADER
    while off + _j.REC_HEADER <= n:
        ln = struct.unpack_from("<I", buf, off)[0]
        if ln < _j.REC_HEADER or ln > _j.MAX_RECORD or ln & 7 or off + ln > n:
            break
        struct.pack_into("<I", buf, off + 4, _j.crc32c(bytes(buf[off + 8:off + ln])))
        off += ln
    return bytes(buf)


_JFLOWS = None


def _journal_flows() -> list[dict]:
    """Small journals of seeded engine flows, written by the engine itself: config records
    (named and unnamed symbols, limits, reference prices), accepted and rejected commands of
    every kind, fills; engine snapshots taken along the way. Each: {"commands", "trades"
    (segment bytes), "hash" (engine state hash at the end), "last_seq", "snapshots": [bytes]}."""
    global _JFLOWS
    if _JFLOWS is not None:
        return _JFLOWS
    flows = []
    for seed, stp, n in ((21, STP.CANCEL_RESTING, 22), (22, STP.CANCEL_BOTH, 14),
                         (23, STP.CANCEL_TAKER, 6)):
        rng = np.random.default_rng(seed)
        d = Path(tempfile.mkdtemp(prefix="flow-", dir=_tmpdir()))
        eng = mc.Engine(stp, journal=str(d), fsync="never")
        eng.add_symbol(1, capacity=16)
        eng.add_symbol(2, "XY", capacity=8, tick=1, min_price=90, max_price=110, max_qty=50)
        snaps = []
        for i in range(n):
            sym = 1 + int(rng.integers(2))
            oid = int(rng.integers(1, n // 2 + 2))
            r = rng.random()
            try:
                if r < 0.6:
                    eng.submit(sym, oid, int(rng.integers(2)), int(rng.integers(97, 104)),
                               int(rng.integers(1, 9)), owner=int(rng.integers(3)))
                elif r < 0.7:
                    eng.submit_market(sym, oid, int(rng.integers(2)), int(rng.integers(1, 9)))
                elif r < 0.85:
                    eng.cancel(oid, symbol=sym)
                else:
                    eng.modify(oid, int(rng.integers(1, 9)), symbol=sym)
            except (OrderRejected, KeyError, ValueError):
                pass                      # journaled as rejected: a seed needs those too
            if i == n // 2:
                eng.set_limits(1, band=20, ref_price=100)
                eng.set_reference_price(2, 101)
                snaps.append(Path(eng.snapshot()).read_bytes())
        snaps.append(Path(eng.snapshot()).read_bytes())
        flow = {"hash": eng.state_hash(), "last_seq": eng.journal_seq, "stp": int(stp),
                "snapshots": snaps}
        eng.close()
        for kind, glob in (("commands", "journal-*.mcj"), ("trades", "trades-*.mct")):
            files = sorted(d.glob(glob))
            assert len(files) == 1, files
            flow[kind] = files[0].read_bytes()
        flows.append(flow)
    _JFLOWS = flows
    return flows


def _edit_bytes(base: bytes, edits: bytes, step: struct.Struct) -> bytearray:
    buf = bytearray(base)
    for k in range(0, len(edits) - step.size + 1, step.size):
        off, value = step.unpack_from(edits, k)
        width = 1 << (off >> 14)
        off = (off & 0x3FFF) % len(buf)
        w = min(width, len(buf) - off)
        buf[off:off + w] = value.to_bytes(8, "little")[:w]
    return buf


def _scratch() -> Path:
    """An empty directory for one input (a new one each time: nothing of the last input left)."""
    d = _tmpdir() / "dur"
    if d.exists():
        for f in d.iterdir():
            f.unlink()
    else:
        d.mkdir()
    return d


def _segment_name(kind: int, seg: bytes) -> str:
    _, _j = _durability()
    first = struct.unpack_from("<Q", seg, 24)[0] if len(seg) >= 32 else 1
    return f"{_j.SEGMENT_PREFIX[kind]}-{first:020d}{_j.SEGMENT_SUFFIX[kind]}"


def _files(d: Path) -> dict:
    return {f.name: f.read_bytes() for f in sorted(d.iterdir())}


def _replay_oracle(res: dict, stp: int):
    """A fresh engine fed what read_journal returned, through the API (configs through the
    Engine's methods in their replay form, commands through process()), in seq order; None when
    a config record is refused by the API (then recovery must refuse it too)."""
    _, _j = _durability()
    eng = mc.Engine(stp)
    idx, cmds = res["index"], res["commands"]
    configs = {seq: (name, f) for seq, name, f in res["configs"]}
    is_cmd = idx["type"] == _j.REC_COMMAND
    ci = 0
    k = 0
    while k < len(idx):
        if is_cmd[k]:
            j = k
            while j < len(idx) and is_cmd[j]:
                j += 1
            eng.process(cmds[ci:ci + (j - k)])
            ci += j - k
            k = j
            continue
        name, f = configs[int(idx["seq"][k])]
        # Through the methods' replay form (consistent=False), as recovery applies them: the
        # argument checks of the API, without refusing limits that together accept no order,
        # which an older engine journaled.
        try:
            if name == "add_symbol":
                # capacity is a preallocation, not state: only its validity matters here
                cap = f["capacity"]
                eng._add_symbol(f["symbol"], f["name"], 0 if cap >= 0 else cap, f["limits"],
                                False)
            elif name == "set_limits":
                eng._set_limits(f["symbol"], f["limits"], False)
            else:
                eng._set_reference_price(f["symbol"], f["price"], False)
        except (ValueError, KeyError, TypeError, OverflowError):
            return None
        k += 1
    return eng


def _check_recover(d: Path, oracle_res: dict | None, kind: int):
    """recover(readonly=True) on directory d: an engine or a DurabilityError; changes no file;
    the engine passes check_invariants and holds exactly the valid prefix."""
    durability, _j = _durability()
    before = _files(d)
    try:
        eng = durability.recover(d, readonly=True)
    except durability.DurabilityError:
        assert _files(d) == before, "a refused read-only recovery changed files"
        return None
    assert _files(d) == before, "read-only recovery changed files"
    eng.check_invariants()
    rep = eng.recovery_report
    assert rep.readonly and not rep.modified and eng.journal is None
    if oracle_res is not None and rep.snapshot is None:
        # never more than the valid prefix: the last seq and the state of a fresh engine fed
        # exactly the records read_journal returned
        seqs = oracle_res["index"]["seq"]
        assert rep.last_seq == (int(seqs[-1]) if len(seqs) else rep.last_seq), \
            (rep.last_seq, seqs[-1:])
        stp = eng.stp
        ref = _replay_oracle(oracle_res, int(stp))
        assert ref is not None, "recovery accepted a config record the Engine API refuses"
        assert ref.state_hash() == eng.state_hash(), "recovered state differs from the prefix"
    return eng


def fuzz_journal(data: bytes) -> None:
    durability, _j = _durability()
    flags, payload = _flags(data)
    kind = _j.KIND_TRADES if flags & JRN_TRADES else _j.KIND_COMMANDS
    other = _j.KIND_COMMANDS if kind == _j.KIND_TRADES else _j.KIND_TRADES
    flows = _journal_flows()
    flow = flows[(flags >> 4) % len(flows)]
    label = {_j.KIND_COMMANDS: "commands", _j.KIND_TRADES: "trades"}
    if flags & JRN_EDITS:
        seg = reseal_journal(bytes(_edit_bytes(flow[label[kind]], payload, _JEDIT)))
    elif flags & JRN_RESEAL:
        seg = reseal_journal(payload)
    else:
        seg = payload

    # --- one segment's bytes ---
    try:
        r1 = durability.read_journal(seg, kind)
    except durability.JournalError:
        r1 = None
    if r1 is not None:
        idx = r1["index"]
        assert len(r1["commands"]) == len(r1["seqs"]) == len(r1["results"])
        assert len(r1["commands"]) + len(r1["configs"]) == len(idx) or kind == _j.KIND_TRADES
        if len(idx):
            assert bool(np.all(np.diff(idx["seq"]) == 1)), "seqs not consecutive"
            assert int(idx["offset"][-1]) + int(idx["length"][-1]) <= len(seg)
        if r1["tail"] is None:
            end = int(idx["offset"][-1]) + int(idx["length"][-1]) if len(idx) else _j.SEG_HEADER
            assert end == len(seg), (end, len(seg))

    # --- the same bytes as a segment file in a journal directory ---
    d = _scratch()
    (d / _segment_name(kind, seg)).write_bytes(seg)
    if flags & JRN_PAIR:
        (d / _segment_name(other, flow[label[other]])).write_bytes(flow[label[other]])
    try:
        r2 = durability.read_journal(str(d), kind)
    except durability.JournalError:
        r2 = None
    if r1 is not None:
        assert r2 is not None, "the segment's bytes read, the same file in a directory did not"
        for key in ("index", "commands", "seqs", "results"):
            assert r1[key].tobytes() == r2[key].tobytes(), key
        assert r1["configs"] == r2["configs"]

    info = durability.inspect(str(d))          # never raises: damage is reported
    assert isinstance(info, dict) and label[kind] in info["journals"]

    if kind == _j.KIND_TRADES:
        try:
            t = durability.read_trades(str(d))
        except durability.JournalError:
            t = None
        if r2 is not None:
            assert t is not None and len(t) == len(r2["index"]), "read_trades disagrees"
            assert t["seq"].tobytes() == r2["index"]["seq"].tobytes()

    # --- read-only recovery: the valid prefix, nothing more ---
    oracle = r2 if kind == _j.KIND_COMMANDS else None
    eng = _check_recover(d, oracle, kind)
    if eng is not None and kind == _j.KIND_TRADES:
        # the command journal (valid, from the flow) decides the state, whatever the trades hold
        assert eng.state_hash() == flow["hash"], "fuzzed trades changed the recovered state"


def seeds_journal() -> list[bytes]:
    seeds = []
    for i, flow in enumerate(_journal_flows()):
        hi = i << 4
        seeds += [bytes([hi]) + flow["commands"], bytes([hi | JRN_PAIR]) + flow["commands"],
                  bytes([hi | JRN_TRADES | JRN_PAIR]) + flow["trades"],
                  bytes([hi | JRN_RESEAL | JRN_PAIR]) + flow["commands"],
                  bytes([hi | JRN_EDITS | JRN_PAIR]),
                  bytes([hi | JRN_EDITS | JRN_TRADES | JRN_PAIR])]
    _, _j = _durability()
    base = _journal_flows()[0]["commands"]
    # one edit per field of the segment header and of the first records (writing the value
    # already there: mutations then move it): kind, stp, first seq, lengths, types, seqs,
    # command fields, config fields
    # (record header 32 bytes: length, crc, type, seq at 16; add_symbol: symbol at 32, name
    # length at 36, capacity at 40, limits from 48)
    for off, width in ((16, 4), (20, 4), (24, 8), (64, 4), (72, 2), (80, 8), (100, 4), (104, 8),
                       (120, 8), (136, 8)):
        if off + width <= len(base):
            value = int.from_bytes(base[off:off + width], "little")
            code = {1: 0, 2: 1, 4: 2, 8: 3}[width]
            seeds.append(bytes([JRN_EDITS | JRN_PAIR]) + _JEDIT.pack(off | code << 14, value))
    return seeds


register("journal", fuzz_journal, seeds_journal, max_len=8192, contract="""
    read_journal (segment bytes and the same file in a directory), inspect, read_trades and
    recover(readonly=True) on a command or trade segment of the fuzzed bytes (raw; with every CRC
    recomputed; or as field edits of a valid journal with CRCs recomputed), alone or next to a
    valid segment of the other kind: results or JournalError/DurabilityError only (inspect
    never raises); bytes and directory readers agree; read-only recovery changes no file, gives
    an engine that passes check_invariants, whose last seq and state hash are those of a fresh
    engine fed exactly the records read_journal returned (fuzzed trades never change it).""")


# ================================================================================================
# engine snapshots: load_snapshot / recover with snapshot + journal
# ================================================================================================

ESNAP_RESEAL = 0x01      # recompute the file's CRC-32 trailer (reach the layout checks)
ESNAP_EDITS = 0x02       # structure-aware: field edits to a valid engine snapshot
ESNAP_BOOKS = 0x04       # with edits/reseal: also recompute each embedded book's checksum
ESNAP_RECOVER = 0x08     # also recover(readonly=True) with it next to the flow's journal
# bits 4..7: which flow and snapshot the edits apply to


def reseal_engine_snapshot(snap: bytes, books: bool = False) -> bytes:
    """``snap`` with its CRC-32 trailer recomputed (and, ``books``: every embedded book
    snapshot's FNV checksum, where the symbol table walks cleanly)."""
    import zlib
    from matchcore.durability import snapshot as s
    if len(snap) < s._HEADER.size + s._TRAILER.size:
        return snap
    buf = bytearray(snap)
    end = len(buf) - s._TRAILER.size
    if books:
        n_symbols = struct.unpack_from("<I", buf, 36)[0]
        off = s._HEADER.size
        for _ in range(min(n_symbols, 64)):
            if off + s._SYMBOL.size > end:
                break
            _, name_len, _, *_, book_len = s._SYMBOL.unpack_from(buf, off)
            off += s._SYMBOL.size + s._pad(0 if name_len == 0xFFFFFFFF else name_len)
            if off + book_len > end or book_len < 8:
                break
            book = reseal(bytes(buf[off:off + book_len]))
            buf[off:off + book_len] = book
            off += s._pad(book_len)
    struct.pack_into("<I4s", buf, end, zlib.crc32(bytes(buf[:end])), b"MCSE")
    return bytes(buf)


def _engine_snapshots() -> list[tuple[dict, bytes]]:
    return [(flow, snap) for flow in _journal_flows() for snap in flow["snapshots"]]


def fuzz_engine_snapshot(data: bytes) -> None:
    durability, _j = _durability()
    from matchcore.durability import snapshot as s
    flags, payload = _flags(data)
    bases = _engine_snapshots()
    flow, base = bases[(flags >> 4) % len(bases)]
    if flags & ESNAP_EDITS:
        snap = reseal_engine_snapshot(bytes(_edit_bytes(base, payload, _JEDIT)),
                                      bool(flags & ESNAP_BOOKS))
    elif flags & ESNAP_RESEAL:
        snap = reseal_engine_snapshot(payload, bool(flags & ESNAP_BOOKS))
    else:
        snap = payload
    try:
        eng, head = durability.load_snapshot(snap)
    except durability.SnapshotFileError:
        eng = head = None
    loaded_hash = None
    if eng is not None:
        eng.check_invariants()
        loaded_hash = eng.state_hash()
        assert loaded_hash == head["state_hash"]
        assert len(eng.symbols) == head["symbols"] and int(eng.stp) == head["stp"]
        assert eng.journal is None
        # canonical: the loaded engine's own snapshot loads to the same state
        again, _ = s.snapshot_bytes(eng)
        eng2, head2 = durability.load_snapshot(again)
        assert eng2.state_hash() == eng.state_hash() and head2["symbols"] == head["symbols"]
        # usable: sweeps and cancels on every symbol keep every invariant
        for sym in list(eng.symbols)[:4]:
            for oid, side in ((2**64 - 1, mc.Side.BUY), (2**64 - 2, mc.Side.SELL)):
                try:
                    eng.submit_market(sym, oid, side, 2**40)
                except (OrderRejected, ValueError):
                    pass
            eng.check_invariants()

    if flags & ESNAP_RECOVER:
        d = _scratch()
        for key in ("commands", "trades"):
            kind = _j.KIND_COMMANDS if key == "commands" else _j.KIND_TRADES
            (d / _segment_name(kind, flow[key])).write_bytes(flow[key])
        seq = struct.unpack_from("<Q", snap, 16)[0] if len(snap) >= 24 else 0
        (d / f"snapshot-{seq:020d}.mcs").write_bytes(snap)
        before = _files(d)
        try:
            rec = durability.recover(d, readonly=True)
        except durability.DurabilityError:
            rec = None                 # e.g. replay after a foreign snapshot diverged
        assert _files(d) == before, "read-only recovery changed files"
        if rec is not None:
            rec.check_invariants()
            rep = rec.recovery_report
            if rep.snapshot is None:
                assert rec.state_hash() == flow["hash"], "full replay differs from the flow"
            else:
                assert eng is not None, "recovery used a snapshot load_snapshot refuses"
                assert rep.last_seq == flow["last_seq"]
                if head["seq"] == flow["last_seq"]:
                    assert rec.state_hash() == loaded_hash


def seeds_engine_snapshot() -> list[bytes]:
    seeds = []
    for i, (_, snap) in enumerate(_engine_snapshots()):
        hi = (i % 16) << 4
        seeds += [bytes([hi]) + snap, bytes([hi | ESNAP_RECOVER]) + snap,
                  bytes([hi | ESNAP_RESEAL | ESNAP_BOOKS]) + snap,
                  bytes([hi | ESNAP_EDITS | ESNAP_BOOKS | ESNAP_RECOVER])]
    _, base = _engine_snapshots()[0]
    # one edit per header field and per field of the first symbol entry and its book header
    for off, width in ((8, 4), (12, 4), (16, 8), (24, 8), (32, 4), (36, 4), (56, 8), (64, 4),
                       (68, 4), (72, 8), (80, 8), (96, 8), (136, 8), (144 + 24, 8),
                       (144 + 40, 8)):
        if off + width <= len(base):
            value = int.from_bytes(base[off:off + width], "little")
            code = {1: 0, 2: 1, 4: 2, 8: 3}[width]
            seeds.append(bytes([ESNAP_EDITS | ESNAP_BOOKS | (ESNAP_RECOVER if off < 64 else 0)])
                         + _JEDIT.pack(off | code << 14, value))
    return seeds


register("engine_snapshot", fuzz_engine_snapshot, seeds_engine_snapshot, max_len=8192,
         contract="""
    load_snapshot on engine snapshot files of the fuzzed bytes (raw; with the CRC-32 trailer,
    and optionally every embedded book checksum, recomputed; or as field edits of valid
    snapshots written by Engine.snapshot): either SnapshotFileError or an engine that passes
    check_invariants, reproduces the header's state hash, snapshots canonically and stays
    consistent through sweeps; recover(readonly=True) with the file next to a valid journal:
    an engine or DurabilityError, no file changed, a full replay equal to the flow when the
    snapshot is skipped, never a snapshot that load_snapshot refuses.""")
