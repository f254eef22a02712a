"""The arguments of the feed replayers (itch.Replayer, feeds.dbn.DbnReplayer): options that
depend on one another, and the arguments of their methods."""
from __future__ import annotations

import re
import sys

import pytest

import matchcore.itch as itch


def _cb(symbol, book, ts_ns):
    pass


@pytest.mark.parametrize("kwargs, missing", [
    ({"callback_symbols": ["AAPL"]}, r"callback_symbols=\['AAPL'\] needs a callback"),
    ({"callback_on_tob": True}, r"callback_on_tob=True needs a callback"),
    ({"callback": _cb, "callback_every": 0}, r"callback_every=0 needs callback_on_tob=True"),
    ({"callback_every": 0}, r"callback_every=0 needs callback_on_tob=True"),
    ({"callback_every": 500}, r"callback_every=500 needs a callback"),
    ({"callback_every": 1000}, r"callback_every=1000 needs a callback"),
])
def test_replayer_callback_option_without_what_it_needs_refused(kwargs, missing):
    # accepted and ignored: no callback was ever called, and the caller was not told why
    with pytest.raises(ValueError, match=missing):
        itch.Replayer(**kwargs)


def test_replayer_callback_options_with_what_they_need_still_called():
    data = itch.generate(None, messages=2000, symbols=3, seed=1)
    seen = []
    r = itch.Replayer(callback=lambda s, b, ts: seen.append(s), callback_every=0,
                      callback_on_tob=True, callback_symbols=["AAPL"])
    assert r.feed(data) == len(data)
    assert seen and set(seen) == {"AAPL"}
    # without a callback, the default callback_every is no callback option at all
    assert itch.Replayer().feed(data) == len(data)


def test_replayer_callback_every_default_is_every_1000_messages():
    # the default (None) is the documented 1000: the same calls as callback_every=1000
    data = itch.generate(None, messages=20_000, symbols=3, seed=1)
    calls = {}
    for every in (None, 1000):
        seen = calls[every] = []
        kw = {} if every is None else {"callback_every": every}
        r = itch.Replayer(callback=lambda s, b, ts: seen.append((s, ts)), **kw)
        assert r.feed(data) == len(data)
    assert calls[None] and calls[None] == calls[1000]


def test_replayer_callback_raising_propagates_and_bytes_consumed_tells_where_to_resume():
    # feed() raises the callback's exception without returning how many bytes it consumed:
    # stats["bytes_consumed"] (counted from the stream's start) says, and feeding on from
    # there replays the rest as one uninterrupted feed would
    data = itch.generate(None, messages=20_000, symbols=3, seed=4)
    whole = itch.Replayer()
    assert whole.feed(data) == len(data)
    calls = []

    def cb(symbol, book, ts_ns):
        calls.append(ts_ns)
        if len(calls) % 3 == 0:
            raise KeyError(f"stop {len(calls)}")

    r = itch.Replayer(callback=cb, callback_every=500)
    pos, raised = 0, 0
    while pos < len(data):
        try:
            pos += r.feed(data[pos:pos + 50_000])
        except KeyError:
            raised += 1
            assert r.stats["bytes_consumed"] > pos     # the triggering message is applied
            pos = r.stats["bytes_consumed"]
        else:
            assert r.stats["bytes_consumed"] == pos
    assert raised >= 2 and len(calls) >= 6
    assert r.stats["messages"] == whole.stats["messages"] == 20_000
    assert {L: b.state_hash() for L, b in r.books.items()} == \
        {L: b.state_hash() for L, b in whole.books.items()}
    assert (r.trades() == whole.trades()).all() and (r.tob() == whole.tob()).all()


def _dbn_replayer():
    from matchcore.feeds.dbn import DbnReplayer
    return DbnReplayer()


@pytest.mark.parametrize("make, number", [(itch.Replayer, "a locate number"),
                                          (_dbn_replayer, "an instrument id")], ids=["itch", "dbn"])
@pytest.mark.parametrize("bad", [1.5, True, None, b"AAPL", ["AAPL"]])
def test_replayer_book_of_not_a_name_or_number_raises_type_error(make, number, bad):
    # a float, a bool, bytes... were looked up as names and raised KeyError "no book for
    # symbol 1.5", as if the replay had no such book; the message names what the number is
    # (it said "or a None (int)")
    r = make()
    with pytest.raises(TypeError) as err:
        r.book(bad)
    assert str(err.value) == (f"book() takes a symbol name (str) or {number} (int), not "
                              f"{type(bad).__name__} {bad!r}")


def test_dbn_replayer_book_publisher_numpy_integer_taken_as_the_symbol_is():
    # book() takes a numpy integer for the instrument id, as every integer argument; its
    # publisher= (read, say, from a record array's publisher_id column) raised TypeError
    pytest.importorskip("databento_dbn", reason="needs the 'dbn' extra")
    import io

    import numpy as np

    from matchcore.feeds.dbn import DbnReplayer, read_metadata
    from matchcore.feeds.dbn_gen import generate_mbo
    data = generate_mbo(None, records=600, instruments=2, seed=4, publishers=2)
    meta = read_metadata(io.BytesIO(data))
    r = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
    body = data[meta.header_bytes:]
    r.finish(body[r.feed(body):])
    assert len(r.books) == 4
    for L, ob in r.books.items():
        iid, pub = r.instruments[L], r.publishers[L]
        assert r.book(np.int64(iid), publisher=np.uint16(pub)) is ob
        assert r.book(iid, publisher=pub) is ob
    for bad in (True, 1.0, "1"):
        with pytest.raises(TypeError, match=r"publisher must be a publisher id \(int\) or None"):
            r.book(iid, publisher=bad)


def test_replayer_book_numpy_integer_still_a_locate_number():
    import numpy as np
    data = itch.generate(None, messages=2000, symbols=3, seed=1)
    r = itch.Replayer()
    r.feed(data)
    L = min(r.books)
    assert r.book(np.int64(L)) is r.book(L) is r.book(str(L))
    with pytest.raises(KeyError):
        r.book(99999)


def test_replayer_book_number_with_spaces_is_the_locate_symbols_selects():
    # symbols=[" 3 "] keeps locate 3 and book(" AAPL") is AAPL's book (names without
    # surrounding spaces), but book(" 3") raised KeyError "no book for symbol ' 3'"
    data = itch.generate(None, messages=2000, symbols=3, seed=1)
    r = itch.Replayer(symbols=[" 3 "])
    r.finish(data[r.feed(data):])
    assert list(r.books) == [3]
    for given in (" 3", "3 ", " 003 ", "\t3"):
        assert r.book(given) is r.books[3]
    assert r.book(" AMZN ") is r.books[3]
    with pytest.raises(KeyError):
        r.book(" 2 ")


@pytest.mark.parametrize("head", [
    b"DBN\x02" + bytes(60),                          # a DBN stream
    b"MCCMD\x00\x01\x00" + bytes(56),                # a native command file
    b"\x28\xb5\x2f\xfd" + bytes(60),                 # zstd
    b"\x1f\x8b\x08\x00" + bytes(60),                 # gzip
    b"1.0,1,5,100,2238200,1\n" * 4,                  # LOBSTER text
])
def test_replayer_first_feed_refuses_a_foreign_start_as_decode_does(head):
    # fed to Replayer.feed such bytes gave bad length prefixes and no word of why, while
    # itch.decode refused them naming the format
    with pytest.raises(ValueError) as want:
        itch.decode(head)
    r = itch.Replayer()
    with pytest.raises(ValueError) as got:
        r.feed(head)
    assert str(got.value) == str(want.value)
    assert r.stats["bytes_consumed"] == 0 and r.stats["bad_lengths"] == 0
    # so does finish() when it is given the first bytes
    with pytest.raises(ValueError, match=str(want.value)[:20]):
        itch.Replayer().finish(head)


def test_replayer_later_feed_is_data_whatever_its_bytes():
    data = itch.generate(None, messages=500, symbols=2, seed=1)
    r = itch.Replayer()
    assert r.feed(data) == len(data)
    # past the start, bytes are the stream's: framed (a bad length prefix), never refused
    r.feed(b"DBN\x02" + bytes(60))
    assert r.stats["bad_lengths"] >= 1


def _dbn(**kw):
    from matchcore.feeds.dbn import DbnReplayer
    return DbnReplayer(**kw)


@pytest.mark.parametrize("make", [itch.Replayer, _dbn], ids=["itch", "dbn"])
@pytest.mark.parametrize("depth", [3, 10])
def test_replayer_snapshot_depth_without_a_cadence_refused(make, depth):
    # accepted and ignored: no snapshot was ever taken, while the command refuses --depth alone
    with pytest.raises(ValueError, match=re.escape(
            f"snapshot_depth={depth} needs snapshot_every or snapshot_every_ns")):
        make(snapshot_depth=depth)
    with pytest.raises(ValueError, match=re.escape(
            f"snapshot_depth={depth} needs snapshot_every or snapshot_every_ns")):
        make(snapshot_depth=depth, snapshot_every=0, snapshot_every_ns=0)


@pytest.mark.parametrize("make", [itch.Replayer, _dbn], ids=["itch", "dbn"])
def test_replayer_snapshot_depth_default_is_10_levels(make):
    from matchcore._sinks import snapshot_dtype
    assert make().snapshots().dtype == snapshot_dtype(10)
    assert make(snapshot_every=5).snapshots().dtype == snapshot_dtype(10)
    assert make(snapshot_every_ns=5, snapshot_depth=3).snapshots().dtype == snapshot_dtype(3)


@pytest.mark.parametrize("make", [itch.Replayer, _dbn], ids=["itch", "dbn"])
def test_replayer_snapshot_depth_beyond_the_memory_for_snapshots_refused(make, monkeypatch):
    # a depth numpy can describe but whose records the machine cannot hold: the sink's first
    # doublings were granted by the kernel (overcommit) and the process killed when it
    # touched them. A machine of 40 KB memory stands for it: 10,000 bytes for snapshots.
    from matchcore import _sinks

    monkeypatch.setattr(_sinks, "_snapshot_memory_limit", lambda: 10_000)
    with pytest.raises(ValueError, match=re.escape(
            "snapshot_depth=1,000 needs 48,016 bytes a snapshot record (16 + 48 a level), "
            "more than the 10,000 bytes snapshots may take on this machine")):
        make(snapshot_every=1, snapshot_depth=1000)
    make(snapshot_every=1, snapshot_depth=200)          # 9,616 bytes a record: taken


def test_replayer_snapshots_beyond_the_memory_for_them_dropped_and_counted(monkeypatch):
    # records past that memory are dropped and counted as memory running out (the command
    # then says so, exit 1), never grown into until the kernel kills the replay
    from matchcore import _sinks
    from matchcore._sinks import snapshot_record_bytes

    monkeypatch.setattr(_sinks, "_snapshot_memory_limit", lambda: 10_000)
    data = itch.generate(None, messages=3000, symbols=3, seed=1)
    r = itch.Replayer(snapshot_every=1, snapshot_depth=10)
    assert r.feed(data) == len(data)
    kept = len(r.snapshots())
    assert kept == 10_000 // snapshot_record_bytes(10) == 20
    assert r.stats["out_of_memory"] > 0
    monkeypatch.undo()
    whole = itch.Replayer(snapshot_every=1, snapshot_depth=10)
    whole.feed(data)
    assert whole.stats["out_of_memory"] == 0
    assert len(whole.snapshots()) == kept + r.stats["out_of_memory"]
    assert (whole.snapshots()[:kept] == r.snapshots()).all()


def test_dbn_replayer_tob_on_last_false_without_record_tob_refused():
    # tob_on_last says when the top of book is recorded: with record_tob=False nothing is,
    # and tob_on_last=False was accepted and ignored
    with pytest.raises(ValueError, match=re.escape(
            "tob_on_last=False needs record_tob=True")):
        _dbn(record_tob=False, tob_on_last=False)
    assert len(_dbn(record_tob=False).tob()) == 0
    assert len(_dbn(record_tob=False, tob_on_last=True).tob()) == 0
    assert len(_dbn(tob_on_last=False).tob()) == 0


@pytest.mark.parametrize("ts_out", [True, False])
def test_replay_dbn_ts_out_refused_as_read_from_the_metadata(tmp_path, ts_out):
    # the file's metadata says whether records carry a send timestamp: the keyword failed as
    # "DbnReplayer() got multiple values for keyword argument 'ts_out'", given once, to
    # another function
    from matchcore.feeds.dbn import replay_dbn
    from matchcore.feeds.dbn_gen import generate_mbo

    path = generate_mbo(tmp_path / "a.dbn", records=200, instruments=2, seed=1)
    with pytest.raises(TypeError, match=re.escape(
            "replay_dbn() takes no ts_out: it is read from the file's metadata")):
        replay_dbn(path, ts_out=ts_out)
    assert replay_dbn(path).stats["records"] > 0


def _replayers():
    from matchcore.feeds.dbn import DbnReplayer
    return (itch.Replayer, DbnReplayer)


@pytest.mark.parametrize("partition", [(-1, 2), (2, 2), (0, 0), (0, 2**63), (-3, -2)])
def test_replayers_partition_out_of_range_refused_alike(partition):
    # itch.Replayer took k = -1 (a share of no book at all) where DbnReplayer refused it, with
    # another range in its message: one split of a day meant two rules
    for make in _replayers():
        with pytest.raises(ValueError, match=re.escape(
                f"partition must be (k, n) with 0 <= k < n < 2**63, not {partition!r}")):
            make(partition=partition)


@pytest.mark.parametrize("partition", [(0.0, 2), (0, 2.0), (True, 2), (0, False), ("0", "2")])
def test_replayers_partition_not_integers_raises_type_error(partition):
    # a float (or a bool, a string) in the pair was a ValueError, as if its value were wrong
    for make in _replayers():
        with pytest.raises(TypeError, match=re.escape(
                f"partition must be (k, n) of integers, not {partition!r}")):
            make(partition=partition)


def test_replayers_partition_in_range_taken_alike(tmp_path):
    # each share keeps the books whose number (ITCH locate, DBN instrument id) is k modulo n,
    # also for an n beyond 32 bits (the check only made the replayers)
    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn import replay_dbn
    from matchcore.feeds.dbn_gen import generate_mbo

    data = itch.generate(None, messages=3000, symbols=7, seed=2)
    dbn = generate_mbo(tmp_path / "m.dbn", records=3000, instruments=7, seed=2)
    whole = replay_dbn(dbn)
    ids = {whole.instruments[b] for b in whole.books}
    assert len(ids) == 7
    for k, n in [(0, 3), (1, 3), (2, 3), (2**63 - 2, 2**63 - 1), (5, 2**40), (1003, 2**40)]:
        r = itch.Replayer(partition=(k, n))
        r.finish(data)
        assert set(r.books) == {L for L in range(1, 8) if L % n == k}
        d = replay_dbn(dbn, partition=(k, n))
        assert {d.instruments[b] for b in d.books} == {i for i in ids if i % n == k}


@pytest.mark.parametrize("given", [65536, "70000", -1, 2**64])
def test_replayer_symbols_number_outside_locates_refused_before_input(tmp_path, given):
    # a stock locate is a uint16: symbols=[70000] kept no book and the replay said nothing
    for kwargs in ({"symbols": [given]},
                   {"callback": _cb, "callback_symbols": ["AAPL", given]}):
        what = "symbols" if "symbols" in kwargs else "callback_symbols"
        with pytest.raises(ValueError, match=re.escape(
                f"{what} holds {given!r}, outside 0..65535 (an ITCH stock locate is a uint16)")):
            itch.Replayer(**kwargs)
        with pytest.raises(ValueError, match="outside 0..65535"):
            itch.replay_file(tmp_path / "not-read.itch", **kwargs)


def test_replayer_symbols_number_at_the_ends_of_the_locates_taken():
    data = itch.generate(None, messages=2000, symbols=3, seed=1)
    r = itch.Replayer(symbols=[0, "65535", 1])
    r.feed(data)
    assert list(r.books) == [1]


@pytest.mark.parametrize("given", [2**32, 2**40, str(2**32), -1])
def test_dbn_replayer_symbols_number_outside_instrument_ids_refused_before_input(tmp_path,
                                                                               given):
    # an instrument id is a uint32: symbols=[2**40] kept no book and the replay said nothing
    from matchcore.feeds.dbn import DbnReplayer, replay_dbn

    msg = re.escape(f"symbols holds {given!r}, outside 0..4294967295 (a DBN instrument id is "
                    "a uint32)")
    with pytest.raises(ValueError, match=msg):
        DbnReplayer(symbols=[given])
    with pytest.raises(ValueError, match=msg):
        replay_dbn(tmp_path / "not-read.dbn", symbols=["ES", given])
    DbnReplayer(symbols=[2**32 - 1, str(2**32 - 1), "0"])


def test_replayer_book_label_of_a_locate_outside_the_locates_refused_before_input(tmp_path):
    # AAPL@locate70000 kept no book and the replay said nothing (the command line refused it
    # only after the whole replay, as a locate that "does not occur")
    for kwargs in ({"symbols": ["AAPL@locate70000"]},
                   {"callback": _cb, "callback_symbols": [" AAPL @locate0070000"]}):
        with pytest.raises(ValueError, match=re.escape(
                "a book label of locate 70000, outside 0..65535 (an ITCH stock locate is a "
                "uint16)")):
            itch.replay_file(tmp_path / "not-read.itch", **kwargs)
    itch.Replayer(symbols=["AAPL@locate65535"])


@pytest.mark.parametrize("size", [2**63, 2**70])
def test_replay_chunk_size_beyond_an_index_refused_naming_it_before_the_file(tmp_path, size):
    # passed the check and failed at the buffer, after the file was opened (on a Dask cluster,
    # on every worker), with "cannot fit 'int' into an index-sized integer", naming nothing
    from matchcore.feeds.dbn import replay_dbn

    missing = tmp_path / "missing"
    for replay in (itch.replay_file, replay_dbn):
        with pytest.raises(ValueError, match=rf"^chunk_size must be at most {sys.maxsize:,} "
                                             rf"bytes, got {size}$"):
            replay(missing, chunk_size=size)


_CHUNK_OOM_SCRIPT = r"""
import resource, sys
import matchcore.itch as itch
from matchcore.feeds.dbn import replay_dbn

vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 64 * 2**20, resource.RLIM_INFINITY))
for replay, path in ((itch.replay_file, sys.argv[1]), (itch.decode, sys.argv[1]),
                     (replay_dbn, sys.argv[2])):
    try:
        replay(path, chunk_size=1 << 30)
    except MemoryError as ex:
        print(ex)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS, /proc (Linux)")
def test_replay_chunk_size_beyond_memory_names_it(tmp_path):
    # a read buffer larger than the memory left raised a bare MemoryError(), naming neither
    # the argument nor the size
    import subprocess

    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn_gen import generate_mbo

    day = itch.generate(str(tmp_path / "day.itch"), messages=2000, symbols=2)
    mbo = generate_mbo(str(tmp_path / "day.dbn"), records=500)
    r = subprocess.run([sys.executable, "-c", _CHUNK_OOM_SCRIPT, day, mbo], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "chunk_size=1,073,741,824: not enough memory for a read buffer of that many bytes "
        "(the default is 4,194,304)"] * 3


@pytest.mark.parametrize("pages, size", [(-1, 4096), (1 << 20, -1), (0, 4096)])
def test_snapshot_memory_limit_unknown_memory_is_no_limit(monkeypatch, pages, size):
    # sysconf answers -1 for what the system does not know (some containers): the limit was
    # negative, which refused every snapshot_depth and dropped every snapshot record
    import os

    from matchcore import _sinks

    values = {"SC_PHYS_PAGES": pages, "SC_PAGE_SIZE": size}
    monkeypatch.setattr(os, "sysconf", lambda name: values[name])
    assert _sinks._snapshot_memory_limit() == 0
    data = itch.generate(None, messages=2000, symbols=2, seed=1)
    r = itch.Replayer(snapshot_every=10, snapshot_depth=5)
    r.feed(data)
    assert len(r.snapshots()) > 0 and r.stats["out_of_memory"] == 0
