"""matchcore.native: the command file format, its validation, the Recorder journal and replay."""
from __future__ import annotations

import os
import random
import re
import resource
import signal
import struct

import numpy as np
import pytest

from conftest import assert_events_equal, watch_fsync_and_replace
from matchcore import (COMMAND_DTYPE, EVENT_DTYPE, STP, Engine, OrderBook, OrderRejected,
                       ReferenceBook, Side, TIF)
from matchcore.native import (
    FLAG_JOURNAL,
    HEADER_SIZE,
    NativeFormatError,
    Recorder,
    read_commands,
    read_header,
    record,
    replay_commands,
    write_commands,
)
from matchcore.workloads import standard_mix
from test_durability_kill import _child_says, _fork, _read_acks


def _flow(n=3000, seed=3):
    setup, flow = standard_mix(n, seed=seed, resting=200, levels=100)
    return np.concatenate([setup, flow])


def test_native_header_layout_matches_documented_bytes(tmp_path):
    cmds = _flow(50)
    p = tmp_path / "a.mccmd"
    write_commands(p, cmds, stp=STP.CANCEL_TAKER)
    raw = p.read_bytes()
    assert raw[0:5] == b"MCCMD" and raw[5] == 0
    assert struct.unpack_from("<HHHIQ", raw, 6) == (1, 48, 32, 0, len(cmds))
    assert raw[24] == int(STP.CANCEL_TAKER) and raw[25:32] == b"\0" * 7
    assert len(raw) == 32 + 48 * len(cmds)
    assert raw[32:32 + 48] == cmds[:1].tobytes()


def test_native_round_trip_records_identical(tmp_path):
    cmds = _flow()
    p = tmp_path / "flow.mccmd"
    assert write_commands(p, cmds) == len(cmds)
    back = read_commands(p)
    assert back.dtype == COMMAND_DTYPE
    assert isinstance(back, np.memmap)
    assert back.tobytes() == cmds.tobytes()
    hdr = read_header(p)
    assert (hdr.count, hdr.stp, hdr.is_journal) == (len(cmds), None, False)


def test_native_empty_file_round_trip_gives_empty_array(tmp_path):
    p = tmp_path / "empty.mccmd"
    write_commands(p, np.empty(0, dtype=COMMAND_DTYPE))
    back = read_commands(p)
    assert back.dtype == COMMAND_DTYPE and len(back) == 0
    assert len(replay_commands(p)) == 0


def test_native_replay_file_equals_direct_process(tmp_path):
    cmds = _flow()
    p = tmp_path / "flow.mccmd"
    write_commands(p, cmds)
    direct = OrderBook()
    expected = direct.process(cmds)
    replayed_book = OrderBook()
    events = replay_commands(p, replayed_book, chunk=777)
    assert events.dtype == EVENT_DTYPE
    assert_events_equal(events, expected, labels=("file replay", "direct process"))
    assert replayed_book.state_hash() == direct.state_hash()


def test_native_write_wrong_dtype_raises_type_error(tmp_path):
    with pytest.raises(TypeError, match="COMMAND_DTYPE"):
        write_commands(tmp_path / "x.mccmd", np.zeros(3, dtype=np.int64))
    assert not (tmp_path / "x.mccmd").exists()


def test_native_write_same_names_other_field_types_refused_not_cast(tmp_path):
    # a float price has the names and the size of COMMAND_DTYPE: it was cast into the file
    # (100.7 written as 100) where process() refuses the same array
    fields = [(n, "<f8" if n == "price" else COMMAND_DTYPE.fields[n][0].str)
              for n in COMMAND_DTYPE.names]
    a = np.zeros(2, dtype=fields)
    a["price"], a["qty"], a["order_id"] = [100.7, 99.5], 5, [1, 2]
    with pytest.raises(TypeError, match="COMMAND_DTYPE"):
        OrderBook().process(a)
    with pytest.raises(TypeError, match="COMMAND_DTYPE"):
        write_commands(tmp_path / "f.mccmd", a)
    assert not (tmp_path / "f.mccmd").exists()
    # the same layout in the other byte order holds the same values: written as they are
    flow = _flow()[:20]
    be = flow.astype(COMMAND_DTYPE.newbyteorder(">"))
    assert write_commands(tmp_path / "be.mccmd", be) == 20
    assert np.array_equal(read_commands(tmp_path / "be.mccmd"), flow)


def _valid_file(tmp_path, n=10):
    p = tmp_path / "v.mccmd"
    write_commands(p, _flow(n)[:n])
    return p, bytearray(p.read_bytes())


@pytest.mark.parametrize("case, message", [
    ("magic", "not a matchcore command file"),
    ("newer_version", "version 2 is not supported.*newer"),
    ("version_zero", "version 0 is not supported"),
    ("record_size", "record size 40 bytes, expected 48"),
    ("header_size", "header size 64, expected 32"),
    ("flags", "unknown flag bits 0x4"),
    ("truncated", r"file truncated: header says 10 records .* \(9 whole records\)"),
    ("trailing", "trailing bytes"),
    ("count_too_big", "file truncated: header says 11 records"),
    ("short_header", "truncated header"),
    ("stp", "unknown STP mode 9"),
])
def test_native_malformed_file_raises_precise_error(tmp_path, case, message):
    p, raw = _valid_file(tmp_path)
    if case == "magic":
        raw[0:5] = b"MCCMX"
    elif case == "newer_version":
        struct.pack_into("<H", raw, 6, 2)
    elif case == "version_zero":
        struct.pack_into("<H", raw, 6, 0)
    elif case == "record_size":
        struct.pack_into("<H", raw, 8, 40)
    elif case == "header_size":
        struct.pack_into("<H", raw, 10, 64)
    elif case == "flags":
        struct.pack_into("<I", raw, 12, 4)
    elif case == "truncated":
        raw = raw[:-1]
    elif case == "trailing":
        raw += b"\0"
    elif case == "count_too_big":
        struct.pack_into("<Q", raw, 16, 11)
    elif case == "short_header":
        raw = raw[:20]
    elif case == "stp":
        raw[24] = 9
    p.write_bytes(bytes(raw))
    with pytest.raises(NativeFormatError, match=message):
        read_commands(p)
    book = OrderBook()
    with pytest.raises(NativeFormatError):
        replay_commands(p, book)
    assert len(book) == 0


def test_native_not_a_file_of_ours_raises_format_error(tmp_path):
    p = tmp_path / "other.bin"
    p.write_bytes(b"\x00\x2eSsome ITCH bytes")
    with pytest.raises(NativeFormatError, match="magic"):
        read_header(p)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(NativeFormatError, match="magic b''"):
        read_commands(tmp_path / "empty.bin")


def test_native_pipe_or_fifo_refused_as_not_regular_file_not_truncated(tmp_path):
    # a pipe's size is 0: it was called "truncated" (or, with 0 records, rejected as such);
    # a FIFO's open waited for a writer. Refused up front, with what to do.
    import os
    import threading

    p = tmp_path / "f.mccmd"
    write_commands(p, standard_mix(300, seed=2)[1])
    r, w = os.pipe()
    t = threading.Thread(target=lambda: os.write(w, p.read_bytes()[:4096]), daemon=True)
    t.start()
    try:
        for call in (read_header, read_commands, replay_commands):
            with pytest.raises(NativeFormatError, match="not a regular file"):
                call(f"/dev/fd/{r}")
    finally:
        t.join(10)
        os.close(r)
        os.close(w)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)                       # no writer: an open for reading would block
    with pytest.raises(NativeFormatError, match="not a regular file"):
        read_commands(fifo)


def test_native_directory_named_as_directory_nothing_written(tmp_path):
    # a directory was called "a pipe, FIFO or device" by the readers, and write_commands wrote
    # its temporary file beside it and then failed with "Is a directory: 4" (a descriptor's
    # number for the path)
    d = tmp_path / "flows"
    d.mkdir()
    for call in (read_header, read_commands, replay_commands):
        with pytest.raises(NativeFormatError, match="is a directory, not a command file"):
            call(d)
    with pytest.raises(IsADirectoryError) as err:
        write_commands(d, _flow(5))
    assert err.value.filename == str(d)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flows"]
    assert list(d.iterdir()) == []


@pytest.mark.parametrize("where", ["missing/flow.mccmd", "afile/flow.mccmd"])
def test_native_write_commands_in_no_directory_error_names_the_path_given(tmp_path, where):
    # the error named the temporary file ("No such file or directory:
    # '.../missing/flow.mccmd.tmp4242.9f3a01c2'"), a name the caller never gave
    (tmp_path / "afile").write_text("keep")
    path = str(tmp_path / where)
    with pytest.raises(OSError) as err:
        write_commands(path, _flow(5))
    assert err.value.filename == path and ".tmp" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def _drive(book, n=4000, seed=11):
    """A random session through the per-call API, rejections and misses included; returns the
    events it produced (drained after every call)."""
    rng = random.Random(seed)
    live: list[int] = []
    out = []
    next_id = 1
    for _ in range(n):
        r = rng.random()
        ts = next_id * 10
        try:
            if r < 0.45 or not live:
                oid = next_id if rng.random() > 0.02 else (live[0] if live else next_id)
                next_id += 1
                side = rng.choice((Side.BUY, Side.SELL))
                price = 1000 + rng.randint(-20, 20) if rng.random() > 0.01 else 0
                tif = rng.choice((TIF.GTC, TIF.GTC, TIF.GTC, TIF.IOC, TIF.FOK))
                book.submit(oid, side, price, rng.randint(1, 50), tif, owner=rng.randint(0, 5),
                            post_only=rng.random() < 0.1, ts_ns=ts)
                if book.get(oid) is not None and oid not in live:
                    live.append(oid)
            elif r < 0.55:
                book.submit_market(next_id, rng.choice((0, 1)), rng.randint(1, 80),
                                   owner=rng.randint(0, 5), ts_ns=ts)
                next_id += 1
            elif r < 0.75:
                oid = live.pop(rng.randrange(len(live))) if rng.random() > 0.05 else 10**9
                book.cancel(oid, ts_ns=ts)
            else:
                oid = rng.choice(live)
                price = None if rng.random() < 0.5 else 1000 + rng.randint(-20, 20)
                book.modify(oid, rng.randint(1, 60) if rng.random() > 0.02 else 0, price, ts_ns=ts)
        except OrderRejected:
            pass
        live = [o for o in live if book.get(o) is not None]
        out.append(book.events())
    return np.concatenate(out)


def test_native_recorder_journal_replays_to_identical_events_and_state(tmp_path):
    p = tmp_path / "journal.mccmd"
    live_book = OrderBook(stp=STP.CANCEL_BOTH)
    with Recorder(live_book, p, flush_every=500) as rec:
        live_events = _drive(rec)
        calls = rec.count + rec._pending
    hdr = read_header(p)
    assert hdr.is_journal and hdr.flags == FLAG_JOURNAL and hdr.stp == STP.CANCEL_BOTH
    assert hdr.count == calls == 4000
    kinds = np.bincount(live_events["kind"], minlength=6)
    assert kinds[4] > 0, "the session should include rejections"
    replay_book = OrderBook(stp=STP.CANCEL_BOTH)
    events = replay_commands(p, replay_book)
    assert_events_equal(events, live_events, labels=("journal replay", "live session"))
    assert replay_book.state_hash() == live_book.state_hash()
    assert replay_commands(p).tobytes() == live_events.tobytes()  # book built from header STP


def test_native_recorder_file_valid_after_each_flush(tmp_path):
    p = tmp_path / "j.mccmd"
    rec = record(OrderBook(), p, flush_every=3)
    for i in range(1, 8):
        rec.submit(i, Side.BUY, 100 + i, 1)
    assert read_header(p).count == 6  # the 7th waits in the buffer
    assert len(read_commands(p)) == 6
    rec.close()
    rec.close()
    back = read_commands(p)
    assert back["order_id"].tolist() == list(range(1, 8))
    assert back["price"].tolist() == [100 + i for i in range(1, 8)]
    with pytest.raises(ValueError, match="closed"):
        rec.submit(9, Side.BUY, 100, 1)


def test_native_recorder_forwards_results_and_exceptions(tmp_path):
    with Recorder(OrderBook(), tmp_path / "j.mccmd") as book:
        assert book.submit(1, Side.SELL, 101, 5) == 0
        assert book.submit(2, Side.BUY, 101, 3) == 3
        assert book.best_ask() == (101, 2) and len(book) == 1
        with pytest.raises(OrderRejected):
            book.submit(3, Side.BUY, 100, 0)
        assert book.modify(99, 4) is False
        assert book.cancel(1) == 2
        with pytest.raises(OverflowError):
            book.cancel(-1)
        with pytest.raises(ValueError, match="cannot be journaled"):
            book.submit(4, 256, 100, 1)
    cmds = read_commands(tmp_path / "j.mccmd")
    assert cmds["kind"].tolist() == [0, 0, 0, 3, 2]
    assert cmds["qty"].tolist() == [5, 3, 0, 4, 0]


def test_native_recorder_nonempty_book_refused_unless_allowed(tmp_path):
    book = OrderBook()
    book.submit(1, Side.BUY, 100, 1)
    with pytest.raises(ValueError, match="empty book"):
        Recorder(book, tmp_path / "j.mccmd")
    with Recorder(book, tmp_path / "j2.mccmd", require_empty=False) as rec:
        rec.cancel(1)
    assert len(read_commands(tmp_path / "j2.mccmd")) == 1


@pytest.mark.parametrize("args, kw", [
    ((1, "x", 100, 5), {}),
    ((1, 0, 100, 5, "x"), {}),
    ((1, 2.0, 100, 5), {}),
    ((1, 0, 100, 5), {"post_only": "no"}),
    ((1, 300, 100, 5), {"post_only": None}),
    ((1, 0, 100, 5, 300), {"post_only": 2}),
])
def test_native_recorder_bad_submit_arguments_same_error_as_book_nothing_recorded(tmp_path, args,
                                                                                   kw):
    with pytest.raises(Exception) as direct:
        OrderBook().submit(*args, **kw)
    with Recorder(OrderBook(), tmp_path / "j.mccmd") as rec:
        with pytest.raises(type(direct.value)) as recorded:
            rec.submit(*args, **kw)
        assert str(recorded.value) == str(direct.value)
        assert len(rec.book) == 0 and len(rec.book.events()) == 0
    assert len(read_commands(tmp_path / "j.mccmd")) == 0


def test_native_recorder_market_non_integer_side_book_error_nothing_recorded(tmp_path):
    with Recorder(OrderBook(), tmp_path / "j.mccmd") as rec:
        with pytest.raises(TypeError, match="side must be an integer"):
            rec.submit_market(1, "buy", 5)
        with pytest.raises(ValueError, match="cannot be journaled"):
            rec.submit_market(1, 256, 5)
    assert len(read_commands(tmp_path / "j.mccmd")) == 0


@pytest.mark.parametrize("method, args, kw", [
    ("submit", (1.5, 300, 100, 5), {}),
    ("submit", (2**64, 300, 100, 5), {}),
    ("submit", (1, 0, 1.5, 5, 300), {}),
    ("submit", (1, 0, 100, "x", 300), {}),
    ("submit_market", (-1, 300, 5), {}),
])
def test_native_recorder_side_or_tif_beyond_u8_with_earlier_bad_argument_book_error(
        tmp_path, method, args, kw):
    # The side/tif byte check ran before the book converted anything: with an argument the
    # book converts first also bad, the recorder named side or tif where the book names that
    # argument (the order the flag check already keeps)
    with pytest.raises(Exception) as direct:
        getattr(OrderBook(), method)(*args, **kw)
    with Recorder(OrderBook(), tmp_path / "j.mccmd") as rec:
        with pytest.raises(type(direct.value)) as recorded:
            getattr(rec, method)(*args, **kw)
        assert str(recorded.value) == str(direct.value)
    assert len(read_commands(tmp_path / "j.mccmd")) == 0


@pytest.mark.parametrize("method, args, message", [
    ("submit", (1, 300, 100, 5), "side=300 cannot be journaled"),
    ("submit", (1, 0, 100, 5, 256), "tif=256 cannot be journaled"),
    ("submit", (1, 256, 100, 5, TIF.IOC + 300), "side=256, tif=301 cannot be journaled"),
    ("submit_market", (1, 300, 5), "side=300 cannot be journaled"),
])
def test_native_recorder_side_or_tif_beyond_u8_message_names_only_those(tmp_path, method, args,
                                                                      message):
    # the message named a tif for a market order (which has none) and a tif that fitted, as
    # "tif=<TIF.GTC: 0>"
    with Recorder(OrderBook(), tmp_path / "j.mccmd") as rec:
        with pytest.raises(ValueError) as err:
            getattr(rec, method)(*args)
        assert str(err.value).startswith(message + " (a record holds 0..255"), str(err.value)
        assert len(rec.book) == 0 and len(rec.book.events()) == 0


def test_native_recorder_process_batches_journaled_replay_same_state(tmp_path):
    # process() went through to the book unrecorded, so the journal silently replayed to
    # another book; place/reduce/clear/restore did the same and are refused now
    p = tmp_path / "j.mccmd"
    setup, flow = standard_mix(3_000, seed=5)
    live_book = OrderBook(stp=STP.CANCEL_TAKER)
    live = []
    with record(live_book, p, symbol=3, flush_every=1_000) as rec:
        live.append(rec.process(setup))
        rec.submit(10**9, Side.BUY, 1, 5)
        live.append(live_book.events())
        strided = flow[::2]                     # strided, and a batch written into out=
        live.append(rec.process(strided).copy())
        live.append(rec.process(flow[1::2], out=np.zeros(8_000, EVENT_DTYPE)).copy())
        with pytest.raises(TypeError):
            rec.process(flow.astype(object))     # refused by the book: nothing journaled
        before = (live_book.state_hash(), rec.count + rec._pending)
        for name, args in (("place", (10**9 + 1, 0, 50, 1)), ("reduce", (10**9, 1)),
                           ("clear", ()), ("restore", (OrderBook().snapshot(),))):
            with pytest.raises(TypeError, match=rf"Recorder\.{name}\(\) cannot be journaled"):
                getattr(rec, name)(*args)
        assert (live_book.state_hash(), rec.count + rec._pending) == before
    live_events = np.concatenate(live)
    recs = read_commands(p)
    assert len(recs) == len(setup) + 1 + len(flow)
    assert (recs["symbol"] == 3).all()
    replay_book = OrderBook(stp=STP.CANCEL_TAKER)
    events = replay_commands(p, replay_book)
    assert_events_equal(events, live_events, labels=("journal replay", "live session"))
    assert replay_book.state_hash() == live_book.state_hash()


@pytest.mark.parametrize("symbol, exc", [(2**32, ValueError), (-1, ValueError),
                                         (1.5, TypeError), ("1", TypeError)])
def test_native_recorder_symbol_outside_u32_refused_before_any_call(tmp_path, symbol, exc):
    # the symbol was packed only with the first record, after the book had applied the call:
    # the order rested in the book, the journal stayed empty
    book = OrderBook()
    with pytest.raises(exc, match="symbol"):
        Recorder(book, tmp_path / "s.mccmd", symbol=symbol)
    assert not (tmp_path / "s.mccmd").exists()
    with Recorder(book, tmp_path / "s.mccmd", symbol=2**32 - 1) as rec:
        rec.submit(1, Side.BUY, 100, 5)
    assert read_commands(tmp_path / "s.mccmd")["symbol"].tolist() == [2**32 - 1]


@pytest.mark.parametrize("flush_every", [float("nan"), 1.5, "3", None])
def test_native_recorder_flush_every_not_an_integer_refused_before_the_file(tmp_path,
                                                                           flush_every):
    # nan passed the "> 0" check and no flush ever came (every record stayed in memory until
    # close(), lost with the process); a str or None failed with a bare comparison error
    with pytest.raises(TypeError, match="flush_every must be an integer"):
        Recorder(OrderBook(), tmp_path / "f.mccmd", flush_every=flush_every)
    assert not (tmp_path / "f.mccmd").exists()
    with pytest.raises(ValueError, match="flush_every must be > 0"):
        Recorder(OrderBook(), tmp_path / "f.mccmd", flush_every=0)
    with Recorder(OrderBook(), tmp_path / "f.mccmd", flush_every=np.int64(2)) as rec:
        rec.submit(1, Side.BUY, 100, 5)
        rec.submit(2, Side.BUY, 100, 5)
        assert read_header(tmp_path / "f.mccmd").count == 2


@pytest.mark.parametrize("chunk", [2.0, "2", float("nan")])
def test_native_replay_chunk_not_an_integer_refused_naming_it(tmp_path, chunk):
    p = tmp_path / "c.mccmd"
    write_commands(p, _flow(50))
    with pytest.raises(TypeError, match="chunk must be an integer"):
        replay_commands(p, chunk=chunk)
    with pytest.raises(ValueError, match="chunk must be > 0"):
        replay_commands(p, chunk=0)
    assert_events_equal(replay_commands(p, chunk=np.int64(7)), replay_commands(p))


@pytest.mark.parametrize("symbol, exc, match", [
    ("3", TypeError, "symbol must be an integer, got str '3'"),
    (b"3", TypeError, "symbol must be an integer, got bytes"),
    (2**32 + 3, ValueError, "does not fit a record's u32 symbol field"),
])
def test_native_resume_symbol_not_an_integer_refused_as_by_recorder(tmp_path, symbol, exc,
                                                                    match):
    # compared with the records' symbol before its type was checked: symbol="3" was refused
    # with "symbol='3', but the journal's records have symbol 3"
    p = tmp_path / "s.mccmd"
    with Recorder(OrderBook(), p, symbol=3) as rec:
        rec.submit(1, Side.BUY, 100, 5)
    with pytest.raises(exc, match=match):
        Recorder.resume(p, symbol=symbol)
    with Recorder.resume(p, symbol=np.uint32(3)) as rec:
        assert rec.symbol == 3 and len(rec.book) == 1


@pytest.mark.parametrize("stp", [7, 255, -1, 2.7, "x"])
def test_native_write_unknown_stp_refused_before_writing(tmp_path, stp):
    # 7 was written and the file then refused by read_header; 2.7 was stored as 2
    with pytest.raises(ValueError, match="stp must be"):
        write_commands(tmp_path / "s.mccmd", _flow()[:5], stp=stp)
    assert list(tmp_path.iterdir()) == []
    for mode in (*STP, None):
        write_commands(tmp_path / "s.mccmd", _flow()[:5], stp=mode)
        assert read_header(tmp_path / "s.mccmd").stp == mode


def test_native_recorder_book_attribute_assignment_refused_as_by_book(tmp_path):
    # assignment made a Recorder attribute that hid the book's: rec.record_events read False
    # while the book went on recording events
    import inspect

    book = OrderBook()
    read_only = [n for n, a in vars(OrderBook).items()
                 if inspect.isdatadescriptor(a) and not n.startswith("_")]
    assert "record_events" in read_only
    with Recorder(book, tmp_path / "r.mccmd") as rec:
        for name in read_only:
            with pytest.raises(AttributeError):
                setattr(book, name, getattr(book, name))
            with pytest.raises(AttributeError):
                setattr(rec, name, getattr(book, name))
            if name in ("handle", "address"):     # refused: a way around the journal
                continue
            assert getattr(rec, name) == getattr(book, name)
        rec.submit(1, Side.BUY, 100, 5)
        assert rec.record_events is True and len(rec.events()) == 1


def test_native_recorder_failed_write_retried_in_place_file_valid(tmp_path):
    # A flush whose write fails part way (here the file size limit, EFBIG, as a full disk gives
    # ENOSPC): retried, its records went after the part already written, so the count then
    # covered records shifted by that part (and the file held trailing bytes). Now they go to
    # their place again.
    p = tmp_path / "j.mccmd"
    cmds = _flow()[:1000]
    REC = COMMAND_DTYPE.itemsize

    def child(w):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        rec = Recorder(OrderBook(), p, flush_every=1 << 20)
        rec.process(cmds[:10])
        rec.flush()
        # a flush of 490 records (23,520 bytes, beyond any write buffer) stopped after 300.4
        resource.setrlimit(resource.RLIMIT_FSIZE, (HEADER_SIZE + 300 * REC + 20, hard))
        rec.process(cmds[10:500])
        try:
            rec.flush()
        except OSError:
            os.write(w, b"E" + struct.pack("<Q", os.path.getsize(p)))
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        rec.process(cmds[500:])
        rec.close()

    pid, r = _fork(child)
    got = _read_acks(r, 2)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert got == b"E" + struct.pack("<Q", HEADER_SIZE + 300 * REC + 20)   # it did fail part way
    assert read_commands(p).tobytes() == cmds.tobytes()



def test_native_recorder_flush_failing_names_the_journal_and_keeps_its_records(tmp_path):
    # a flush on a full disk (here the file size limit: EFBIG; a full disk gives ENOSPC)
    # raised OSError(28, 'No space left on device') from the call that filled the buffer,
    # naming no file: which journal had stopped being written was not said
    p = tmp_path / "j.mccmd"
    cmds = _flow()[:200]

    def child(w):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        rec = Recorder(OrderBook(), p, flush_every=100)
        rec.process(cmds[:50])
        rec.flush()
        resource.setrlimit(resource.RLIMIT_FSIZE, (HEADER_SIZE + 60 * COMMAND_DTYPE.itemsize,
                                                   hard))
        try:
            rec.process(cmds[50:150])                # its flush (100 calls) fails
        except OSError as exc:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            ok = (exc.errno == errno.EFBIG and exc.filename == str(p)
                  and "could not be flushed" in str(exc) and "100 buffered records" in str(exc))
            os.write(w, b"E" if ok else str(exc).encode()[:200])
        rec.process(cmds[150:])
        rec.close()

    import errno
    got = _child_says(child)
    assert got == b"E", got
    assert read_commands(p).tobytes() == cmds.tobytes()     # flushed again in place



def test_native_recorder_close_failing_says_the_buffered_records_are_lost(tmp_path):
    # close() closes the file whatever its flush gives: the flush's words ("kept: flush()
    # again") promised a retry that a closed Recorder no longer makes
    p = tmp_path / "j.mccmd"
    cmds = _flow()[:100]

    def child(w):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        rec = Recorder(OrderBook(), p, flush_every=1 << 20)
        rec.process(cmds[:10])
        rec.flush()
        rec.process(cmds[10:])
        resource.setrlimit(resource.RLIMIT_FSIZE, (HEADER_SIZE + 20 * COMMAND_DTYPE.itemsize,
                                                   hard))
        try:
            rec.close()
        except OSError as exc:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            ok = (exc.filename == str(p) and "90 buffered records lost" in str(exc)
                  and "10 committed records on file" in str(exc)
                  and "flush() again" not in str(exc))
            os.write(w, b"E" if ok else str(exc).encode()[:200])

    got = _child_says(child)
    assert got == b"E", got
    assert read_header(p, committed=True).count == 10

def test_native_recorder_failing_to_start_leaves_no_file_and_names_it(tmp_path):
    # a Recorder whose header could not be written (a full disk: ENOSPC; here the file size
    # limit, EFBIG) raised "[Errno 27] File too large" naming no file, and left an empty file
    # at the path, which the readers refuse as truncated
    p = tmp_path / "j.mccmd"

    def child(w):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16, hard))
        try:
            Recorder(OrderBook(), p)
        except OSError as exc:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            ok = (exc.errno == errno.EFBIG and exc.filename == str(p)
                  and "could not be started" in str(exc) and not os.path.lexists(p))
            os.write(w, b"E" if ok else f"{exc} {os.path.lexists(p)}".encode()[:200])
            with Recorder(OrderBook(), p) as rec:     # the retry starts it
                rec.submit(1, Side.BUY, 100, 5)

    import errno
    got = _child_says(child)
    assert got == b"E", got
    assert len(read_commands(p)) == 1

def test_native_recorder_closed_in_forked_child_parent_journal_intact(tmp_path):
    # A child forked inside a `with Recorder` block leaves it (or exits) and so closed the
    # inherited recorder: it wrote the parent's pending records and its own, then the parent
    # wrote its records again after them, and the count covered the child's records.
    p = tmp_path / "j.mccmd"
    cmds = _flow()[:30]
    with Recorder(OrderBook(), p, flush_every=1 << 20) as rec:
        rec.process(cmds[:10])
        rec.flush()
        rec.process(cmds[10:15])                               # pending in both processes

        def child(w):
            rec.process(_flow(seed=4)[:3])                    # the child's own calls
            with pytest.raises(ValueError, match="belongs to process"):
                rec.flush()
            rec.close()
            os.write(w, b"C")

        pid, r = _fork(child)
        assert _read_acks(r, 1) == b"C"
        os.close(r)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        rec.process(cmds[15:])
    assert read_commands(p).tobytes() == cmds.tobytes()


def test_native_write_commands_fsyncs_file_before_rename_and_directory_after(tmp_path,
                                                                             monkeypatch):
    # The file was renamed over the target without an fsync: after a power loss the final name
    # could hold an empty or partial file; nor was the directory fsynced after the rename.
    # (os.fsync and os.replace are watched, and still do their work.)
    calls = watch_fsync_and_replace(monkeypatch)

    cmds = _flow(500)
    p = tmp_path / "f.mccmd"
    assert write_commands(p, cmds) == len(cmds)
    monkeypatch.undo()
    ino, size = p.stat().st_ino, p.stat().st_size
    assert size == HEADER_SIZE + 48 * len(cmds)
    renamed = calls.index(("replace", ino))
    assert ("fsync", ino, False, size) in calls[:renamed]           # the whole file, before
    assert ("fsync", tmp_path.stat().st_ino, True) in [c[:3] for c in calls[renamed:]]
    assert read_commands(p).tobytes() == cmds.astype(read_commands(p).dtype).tobytes()



@pytest.mark.parametrize("limit", [16, 4096])
def test_native_write_commands_failing_on_a_full_disk_leaves_no_temporary(tmp_path, limit):
    # a write that failed (a full disk: ENOSPC; here the file size limit, EFBIG) in its header
    # left its temporary file beside the path: the finally that removes it closed the file
    # first, and that close's flush raised the same error again, so the removal never ran;
    # one that failed in the records raised "1000 requested and 84 written" (ndarray.tofile),
    # without an errno or the file
    p = tmp_path / "flow.mccmd"
    cmds = _flow()[:1000]

    def child(w):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            write_commands(p, cmds)
        except OSError as exc:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            ok = exc.errno == errno.EFBIG and exc.filename == str(p)
            os.write(w, b"E" if ok else repr(exc).encode()[:200])

    import errno
    got = _child_says(child)
    assert os.listdir(tmp_path) == []
    assert got == b"E", got

def test_native_write_commands_two_threads_one_path_each_whole_file(tmp_path):
    # Both threads wrote <name>.tmp<pid>, one file: the second open truncated the first's
    # records, and the rename that came second found no file (FileNotFoundError); and each
    # held the target's exclusive lock across its rename, so the other was refused as if a
    # Recorder were writing the path (BlockingIOError)
    import threading

    p = tmp_path / "f.mccmd"
    flows = [_flow(20_000, seed=s) for s in (1, 2)]
    for _ in range(5):
        errors = []
        start = threading.Barrier(2)

        def write(cmds):
            start.wait()
            try:
                write_commands(p, cmds)
            except Exception as e:       # noqa: BLE001 - reported below
                errors.append(e)

        ts = [threading.Thread(target=write, args=(f,)) for f in flows]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == []
        got = read_commands(p).tobytes()
        assert got in [f.astype(read_commands(p).dtype).tobytes() for f in flows]
        assert not list(tmp_path.glob("*.tmp*"))


def test_native_write_commands_replaced_file_keeps_its_permission_bits(tmp_path):
    # the new file took the umask's bits: a command file kept from other users (0600) became
    # readable by them when it was written again (a Recorder replacing a file keeps them)
    p = tmp_path / "f.mccmd"
    cmds = _flow(200)
    write_commands(p, cmds)
    for mode in (0o600, 0o640, 0o604):
        os.chmod(p, mode)
        write_commands(p, cmds[:10])
        assert p.stat().st_mode & 0o7777 == mode
        assert len(read_commands(p)) == 10
    new = tmp_path / "new.mccmd"
    old_mask = os.umask(0o027)
    try:
        write_commands(new, cmds)
    finally:
        os.umask(old_mask)
    assert new.stat().st_mode & 0o777 == 0o640           # a new file: as open() makes it


def test_native_write_commands_through_symlink_replaces_target_keeps_link(tmp_path):
    # the link itself was replaced by the new file: the file it named kept the old records
    # (a Recorder, and the command line's outputs, write through a link)
    real = tmp_path / "data"
    real.mkdir()
    target = real / "day.mccmd"
    link = tmp_path / "latest.mccmd"
    cmds = _flow(200)
    write_commands(target, cmds)
    link.symlink_to(target)
    assert write_commands(link, cmds[:7]) == 7
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert read_commands(target).tobytes() == read_commands(link).tobytes()
    assert len(read_commands(target)) == 7
    assert sorted(os.listdir(real)) == ["day.mccmd"] and sorted(os.listdir(tmp_path)) == \
        ["data", "latest.mccmd"]
    dangling = tmp_path / "next.mccmd"
    dangling.symlink_to(real / "next-day.mccmd")              # its file made where it points
    write_commands(dangling, cmds[:3])
    assert dangling.is_symlink() and len(read_commands(real / "next-day.mccmd")) == 3


@pytest.mark.parametrize("make", [lambda: Engine(), lambda: ReferenceBook(), lambda: []])
def test_native_recorder_of_anything_but_an_order_book_refused_before_the_file(tmp_path, make):
    # an Engine was taken: its submit(symbol, order_id, side, price, qty) returned normally and
    # the records held its arguments in the book's fields, so the journal replayed another session
    with pytest.raises(TypeError, match="Recorder records an OrderBook's calls, got"):
        Recorder(make(), tmp_path / "r.mccmd")
    assert not (tmp_path / "r.mccmd").exists()
    with Recorder(OrderBook(), tmp_path / "ok.mccmd"):
        pass
    with pytest.raises(TypeError, match="Recorder records an OrderBook's calls, got"):
        Recorder.resume(tmp_path / "ok.mccmd", make())


def test_native_recorder_handle_refused_as_a_journaled_engine_refuses_it(tmp_path):
    # the handle passed through to the book's: orders the C table or Numba entered through it
    # changed the live book and were never recorded, so the journal replayed to another state
    p = tmp_path / "h.mccmd"
    with Recorder(OrderBook(), p) as rec:
        rec.submit(1, Side.BUY, 100, 5)
        for name in ("handle", "address"):
            with pytest.raises(ValueError, match="bypass its journal"):
                getattr(rec, name)
        assert rec.book.handle > 0 and rec.best_bid() == (100, 5)
    again = OrderBook()
    replay_commands(p, again)
    assert again.state_hash() == rec.book.state_hash()



def test_native_recorder_book_handle_order_entry_refused_queries_answer_until_close(tmp_path):
    # rec.book.handle is handed out for reads, but the C table and Numba took orders through it:
    # they changed the live book and no record held them, so the journal (and Recorder.resume)
    # gave a book without those orders. Entry is refused as on an Engine's book; reads answer.
    import ctypes
    from test_capi import CTable
    api = CTable()
    p = tmp_path / "c.mccmd"
    snap = np.frombuffer(OrderBook().snapshot(), np.uint8).copy()
    cmd = np.zeros(1, COMMAND_DTYPE)
    cmd["order_id"], cmd["side"], cmd["price"], cmd["qty"] = 9, 1, 100, 1

    def refused_then_read(rec):
        h = rec.book.handle
        before = rec.book.state_hash()
        for name, call in {
            "set_time": lambda: api.set_time(h, 77),
            "submit": lambda: api.submit(h, 9, 1, 100, 1, 0, 0, 0),
            "market": lambda: api.market(h, 9, 1, 1, 0),
            "cancel": lambda: api.cancel(h, 1),
            "modify": lambda: api.modify(h, 1, 2, 0),
            "apply": lambda: api.apply(h, cmd.ctypes.data),
            "process": lambda: api.process(h, cmd.ctypes.data, 1),
            "book_clear": lambda: api.book_clear(h),
            "snapshot_restore": lambda: api.snapshot_restore(h, snap.ctypes.data, len(snap)),
        }.items():
            assert call() == -103, name
        assert rec.book.state_hash() == before and api.state_hash(h) == before
        price, qty = ctypes.c_int64(), ctypes.c_int64()
        assert api.best(h, 0, ctypes.byref(price), ctypes.byref(qty)) == 1
        assert api.count(h) == len(rec) == 1 and (price.value, qty.value) == (100, 5)

    with Recorder(OrderBook(), p) as rec:
        rec.submit(1, Side.BUY, 100, 5)
        refused_then_read(rec)
        # a copy of the book is no Recorder's: it takes orders from C
        other = rec.book.copy()
        assert api.submit(other.handle, 2, 0, 99, 1, 0, 0, 0) == 0 and len(other) == 2
    # closed: the book is a plain book again
    assert api.submit(rec.book.handle, 3, 0, 98, 1, 0, 0, 0) == 0 and len(rec.book) == 2
    with Recorder.resume(p) as again:
        assert again.book.state_hash() != rec.book.state_hash() and len(again) == 1
        refused_then_read(again)


def test_native_recorder_of_a_feed_replayers_book_refuses_c_order_entry(tmp_path):
    # A feed replayer's book is hosted (its busy byte is the replayer's), and the table checked
    # a hosted book for its engine and its host's busy byte only, never for a Recorder: orders
    # entered through its handle went into the live book and into no record.
    import matchcore.itch as itch
    from test_capi import CTable
    api = CTable()
    data = itch.generate(None, messages=3000, symbols=1, seed=1)
    r = itch.Replayer()
    r.finish(data[r.feed(data):])
    book = next(iter(r.books.values()))
    cmd = np.zeros(1, COMMAND_DTYPE)
    cmd["order_id"], cmd["price"], cmd["qty"] = 10**15, 1, 1
    start = book.copy()
    with Recorder(book, tmp_path / "r.mccmd", require_empty=False) as rec:
        h = book.handle
        before = book.state_hash()
        for name, call in {
            "set_time": lambda: api.set_time(h, 77),
            "submit": lambda: api.submit(h, 10**15, 0, 1, 1, 0, 0, 0),
            "market": lambda: api.market(h, 10**15, 1, 1, 0),
            "cancel": lambda: api.cancel(h, 10**15),
            "apply": lambda: api.apply(h, cmd.ctypes.data),
            "process": lambda: api.process(h, cmd.ctypes.data, 1),
            "book_clear": lambda: api.book_clear(h),
        }.items():
            assert call() == -103, name
        assert book.state_hash() == before and api.state_hash(h) == before
        assert api.count(h) == len(book) > 0
        rec.submit(10**15, 0, 1, 1)
    replay_commands(tmp_path / "r.mccmd", start)
    assert start.state_hash() == book.state_hash() and book.get(10**15) == (0, 1, 1)
    # closed: the book takes orders from C again, as the replayer's book it still is
    assert api.submit(h, 10**15 + 1, 0, 1, 1, 0, 0, 0) == 0 and book.get(10**15 + 1)


def test_native_recorder_of_an_engine_book_refused_before_the_file_is_touched(tmp_path):
    # an Engine's book refuses order entry (its orders enter through the engine, which journals
    # them): a Recorder of it replaced the file at path with an empty journal, then forwarded
    # every call into ReadOnlyBookError, recording nothing
    import matchcore as mc
    eng = Engine()
    eng.add_symbol(1)
    p = tmp_path / "kept.mccmd"
    p.write_bytes(b"someone's data")
    with pytest.raises(mc.ReadOnlyBookError, match="belongs to an Engine"):
        Recorder(eng.book(1), p)
    assert p.read_bytes() == b"someone's data"
    j = tmp_path / "j.mccmd"
    with Recorder(OrderBook(), j) as rec:
        rec.submit(1, Side.BUY, 100, 5)
    before = j.read_bytes()
    with pytest.raises(mc.ReadOnlyBookError, match="belongs to an Engine"):
        Recorder.resume(j, eng.book(1))
    assert j.read_bytes() == before
    # the engine gone, a book Python still holds is a standalone book: recorded as any
    book = eng.book(1)
    del eng
    import gc
    gc.collect()
    with Recorder(book, tmp_path / "b.mccmd") as rec:
        rec.submit(2, Side.SELL, 101, 1)
    assert len(read_commands(tmp_path / "b.mccmd")) == 1



def test_native_recorder_of_a_book_another_open_recorder_holds_refused_file_untouched(tmp_path):
    # two open Recorders on one book: each journaled only the calls made through it, so
    # neither journal replayed to the book's state (and resume of either lost the other's)
    book = OrderBook()
    first = tmp_path / "first.mccmd"
    second = tmp_path / "second.mccmd"
    second.write_bytes(b"someone's data")
    with Recorder(book, first) as rec:
        rec.submit(1, Side.BUY, 100, 5)
        with pytest.raises(ValueError, match="journaled by an open Recorder already"):
            Recorder(book, second, require_empty=False)
        assert second.read_bytes() == b"someone's data"
        with pytest.raises(ValueError, match="journaled by an open Recorder already"):
            Recorder.resume(first, book)
        rec.submit(2, Side.SELL, 101, 5)
    again = OrderBook()
    replay_commands(first, again)
    assert again.state_hash() == book.state_hash()
    # closed, the book is free to be recorded again
    with Recorder(book, second, require_empty=False) as rec:
        rec.cancel(1)
    assert len(read_commands(second)) == 1


_RECORDER_OOM_SCRIPT = r"""
import resource, sys
import numpy as np
import matchcore as mc
from matchcore.native import Recorder, replay_commands

n = 3_000_000
flow = np.zeros(n, mc.COMMAND_DTYPE)
flow["order_id"] = np.arange(1, n + 1)
flow["side"] = np.arange(n) % 2
flow["price"] = np.where(flow["side"] == 0, 1 + np.arange(n) % 40, 101 + np.arange(n) % 40)
flow["qty"] = 1
path = sys.argv[1]
rec = Recorder(mc.OrderBook(), path, flush_every=1 << 30)
out = np.zeros(1000, mc.EVENT_DTYPE)
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
# (and room for the journal records the Recorder makes of the batch before it runs)
resource.setrlimit(resource.RLIMIT_AS, (vm + 150 * 2**20 + n * 48, resource.RLIM_INFINITY))
try:
    rec.process(flow, out=out)
    print("returned")
    sys.exit(0)
except MemoryError as ex:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
    applied, msg = ex.applied, str(ex)
assert f"after {applied} of" in msg, (applied, msg)
rec.close()
again = mc.OrderBook()
replay_commands(path, again)
assert again.state_hash() == rec.book.state_hash(), applied
print("MemoryError", applied, len(rec.book))
"""


def test_native_recorder_process_out_of_memory_part_way_journals_what_the_book_applied(tmp_path):
    # the book applied the commands before the point where memory ran out and raised; the
    # Recorder journaled none of them, so the journal replayed to another state than the live
    # book (an empty one where the live book held hundreds of thousands of orders)
    import os
    import subprocess
    import sys

    p = tmp_path / "oom.mccmd"
    r = subprocess.run([sys.executable, "-c", _RECORDER_OOM_SCRIPT, str(p)], capture_output=True,
                       text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stderr
    word, applied, resting = r.stdout.split()
    assert word == "MemoryError" and 0 < int(applied) < 3_000_000 and int(resting) > 0
    assert read_header(p).count == int(applied)


_RECORDER_BUFFER_OOM_SCRIPT = r"""
import resource, sys
import numpy as np
import matchcore as mc
from matchcore.native import Recorder, read_header, replay_commands

n, batches = 200_000, 10
# the book's pools and index made whole now: under the limit only the Recorder allocates
book = mc.OrderBook(record_events=False, capacity=n * batches)
rec = Recorder(book, sys.argv[1], flush_every=1 << 30)
flow = np.zeros(n, mc.COMMAND_DTYPE)
flow["qty"] = 1
flow["price"] = 100
out = np.zeros(n + 64, mc.EVENT_DTYPE)
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
# room for a batch's records (9.6 MB) and a few more, not for the buffer of all ten (96 MB)
resource.setrlimit(resource.RLIMIT_AS, (vm + 64 * 2**20, resource.RLIM_INFINITY))
for k in range(batches):
    flow["order_id"] = np.arange(1, n + 1) + k * n
    rec.process(flow, out=out)
rec.flush()
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
rec.close()
again = mc.OrderBook(record_events=False)
replay_commands(sys.argv[1], again)
assert again.state_hash() == book.state_hash()
print(len(book), read_header(sys.argv[1]).count)
"""


def test_native_recorder_buffer_out_of_memory_after_a_batch_journals_it(tmp_path):
    # with a large flush_every, the buffer's growth for a batch's records found no memory once
    # the book had applied the batch: a bare MemoryError, the batch in the book and not in the
    # journal; the flush that could have made room copied the whole buffer and ran out too
    import subprocess
    import sys

    p = tmp_path / "buffer.mccmd"
    r = subprocess.run([sys.executable, "-c", _RECORDER_BUFFER_OOM_SCRIPT, str(p)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split() == ["2000000", "2000000"]


@pytest.mark.parametrize("how", ["write_commands", "Recorder"])
def test_native_path_with_trailing_slash_refused_as_a_directory_nothing_written(tmp_path, how):
    # "out/" names a directory, which open() refuses to write as a file; through Path the
    # slash was dropped, and a command file named "out" was written in its place
    target = str(tmp_path / "out") + "/"
    with pytest.raises(IsADirectoryError):
        if how == "write_commands":
            write_commands(target, np.zeros(3, dtype=COMMAND_DTYPE))
        else:
            Recorder(OrderBook(), target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("given", [False, True])
def test_native_replay_several_symbols_into_one_book_refused_naming_them(tmp_path, given):
    # every record went into one book: the second symbol's orders, sharing ids with the first's,
    # came back DUPLICATE_ORDER_ID and the rest traded with the other symbol's orders, while
    # `matchcore replay --format native` keeps one book per symbol
    a, b = _flow(300, seed=1), _flow(300, seed=2)
    a["symbol"], b["symbol"] = 3, 7
    p = tmp_path / "two.mccmd"
    write_commands(p, np.concatenate([a, b]))
    book = OrderBook() if given else None
    before = book.state_hash() if given else None
    with pytest.raises(ValueError, match=r"symbols 3, 7: .*one book per symbol"):
        replay_commands(p, book)
    if given:
        assert book.state_hash() == before and len(book) == 0
    # one symbol's records replay as they did
    p1 = tmp_path / "one.mccmd"
    write_commands(p1, b)
    assert_events_equal(replay_commands(p1), OrderBook().process(b))


@pytest.mark.parametrize("how", ["write_commands", "Recorder", "resume", "repair_journal"])
def test_native_empty_path_refused_by_name_not_taken_for_the_current_directory(tmp_path,
                                                                              monkeypatch, how):
    # Path("") is ".": each said "Is a directory: '.'", of a directory nobody had named
    from matchcore.native import repair_journal
    monkeypatch.chdir(tmp_path)
    call = {"write_commands": lambda: write_commands("", np.zeros(3, dtype=COMMAND_DTYPE)),
            "Recorder": lambda: Recorder(OrderBook(), ""),
            "resume": lambda: Recorder.resume(""),
            "repair_journal": lambda: repair_journal("")}[how]
    with pytest.raises(ValueError, match="^path: an empty path$"):
        call()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("read", [read_commands, read_header, replay_commands],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", ["slash", "empty"])
def test_native_read_path_with_trailing_separator_or_empty_refused(tmp_path, read, bad):
    # "x.mccmd/" names a directory: through Path the separator was dropped and the file
    # x.mccmd read; "" is "." to Path, a directory nobody had named
    p, _ = _valid_file(tmp_path)
    given = str(p) + "/" if bad == "slash" else ""
    expect = (f"path: {given} names a directory (it ends with /), not a file"
              if bad == "slash" else "path: an empty path")
    with pytest.raises(ValueError, match=re.escape(expect)):
        read(given)


@pytest.mark.parametrize("bad", ["slash", "empty"])
def test_native_remove_stale_temp_files_trailing_separator_or_empty_refused(tmp_path,
                                                                             monkeypatch, bad):
    # "x.mccmd/" names a directory: through realpath the separator was dropped and x.mccmd's
    # temporary files looked for; "" is the current directory, whose name's temporary files
    # were looked for in the directory above it
    from matchcore.native import remove_stale_temp_files

    p, _ = _valid_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    given = str(p) + "/" if bad == "slash" else ""
    expect = (f"path: {given} names a directory (it ends with /), not a file"
              if bad == "slash" else "path: an empty path")
    with pytest.raises(ValueError, match=re.escape(expect)):
        remove_stale_temp_files(given)


@pytest.mark.parametrize("bad, error, said", [
    ({"flush_every": 0}, ValueError, "flush_every must be > 0"),
    ({"fsync": "x"}, TypeError, "fsync must be True or False, got 'x'"),
    ({"symbol": 2**32}, ValueError, "symbol=4294967296 does not fit")], ids=str)
def test_recorder_resume_bad_option_refused_before_the_file_is_read(tmp_path, bad, error, said):
    # Recorder() names them first; resume() read the file first (FileNotFoundError, or
    # NativeFormatError for a file that is no journal) and removed stale temporaries
    plain = tmp_path / "plain.mccmd"
    write_commands(plain, np.zeros(0, dtype=COMMAND_DTYPE))
    for path in (tmp_path / "missing.mccmd", plain):
        with pytest.raises(error, match=re.escape(said)):
            Recorder.resume(path, **bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.mccmd"]


@pytest.mark.parametrize("case", ["stp", "holding", "begun_nonempty"])
def test_native_replay_into_a_book_of_another_start_refused_unchanged(tmp_path, case):
    # replay_commands(path, book) replayed into whatever book it was given: one of another STP
    # mode than the journal's, or holding orders the journal did not start from (or empty where
    # it did), gave another state than the recorded session's without a word, where
    # Recorder.resume refuses both; refused now as resume refuses them, before any record
    p = tmp_path / "j.mccmd"
    live = OrderBook(stp=STP.CANCEL_BOTH)
    if case == "begun_nonempty":
        live.submit(1, Side.BUY, 100, 5, owner=7)
    with Recorder(live, p, require_empty=case != "begun_nonempty") as rec:
        rec.submit(2, Side.SELL, 100, 3, owner=7)       # a self-trade: the mode decides
        rec.submit(3, Side.BUY, 99, 4)
    book = OrderBook(stp=STP.CANCEL_BOTH)
    if case == "stp":
        book = OrderBook(stp=STP.CANCEL_TAKER)
        message = "STP mode is .*CANCEL_TAKER.*recorded with .*CANCEL_BOTH"
    elif case == "holding":
        book.submit(9, Side.BUY, 90, 1)
        message = "holds 1 order, but the journal was begun on an empty book"
    else:
        message = "begun on a book holding orders"
    before = book.snapshot()
    for kwargs in ({}, {"chunk": 1}, {"committed": True}):
        with pytest.raises(ValueError, match=message):
            replay_commands(p, book, **kwargs)
        assert book.snapshot() == before
    # the book it was recorded from replays to the live state
    start = OrderBook(stp=STP.CANCEL_BOTH)
    if case == "begun_nonempty":
        start.submit(1, Side.BUY, 100, 5, owner=7)
    replay_commands(p, start)
    assert start.state_hash() == live.state_hash()


@pytest.mark.parametrize("n", [1, 3, 4])
def test_native_file_cut_inside_its_magic_called_truncated(tmp_path, capsys, n):
    # A command file cut inside its 5 magic bytes was "not a matchcore command file (magic
    # b'MCC', expected b'MCCMD')", and `matchcore replay` called it "a text file that is not a
    # LOBSTER message CSV"; from the sixth byte on it was "truncated header (6 of 32 bytes)".
    from matchcore.__main__ import main

    p = tmp_path / "cut.mccmd"
    write_commands(p, _flow(5))
    p.write_bytes(p.read_bytes()[:n])
    for call in (read_header, read_commands, replay_commands):
        with pytest.raises(NativeFormatError, match=re.escape(
                f"{p}: truncated header ({n} of {HEADER_SIZE} bytes)")):
            call(p)
    assert main(["replay", str(p), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"truncated header ({n} of {HEADER_SIZE} bytes)" in err, err


def test_native_readme_example_replays_its_flow_into_the_book_it_was_made_for(tmp_path,
                                                                              monkeypatch):
    # The README's example wrote standard_mix's flow without the setup it starts from (1,000
    # resting orders its cancels and reprices name): replayed into an empty book, 5,757 of its
    # 10,373 events were refusals, ORDER_NOT_FOUND, in a file the example calls the order flow.
    import pathlib

    from matchcore import EventKind

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Native order-flow files (`.mccmd`)"):]
    block = section[section.index("```python\n") + len("```python\n"):]
    block = block[:block.index("```")]
    first = block[:block.index("events = OrderBook().process(cmds)\n")
                  + len("events = OrderBook().process(cmds)\n")]
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(first, "README.md", "exec"), scope)
    events = scope["events"]
    assert not (events["kind"] == EventKind.REJECTED).any()
