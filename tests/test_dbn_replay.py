"""The compiled DBN market-by-order replay against the pure-Python reference builder, on DBN
files written with the databento-dbn package's own encoder (single and multi-instrument, plain
and zstd, ts_out), and malformed records (counted, reported, never a crash)."""
from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from conftest import outcome, slow_fifo_writer  # noqa: E402
from dbn_reference import MBO, TOB_OID_BASE, UNDEF_PRICE, RefReplay  # noqa: E402

from matchcore.feeds.dbn import DbnReplayer, is_dbn, read_metadata, replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo, mbo_record  # noqa: E402
from matchcore.itch import TOB_DTYPE, TRADE_DTYPE  # noqa: E402

RL = 56


def records_of(data: bytes, header: int, rec_len: int = RL) -> list[bytes]:
    body = data[header:]
    return [body[i:i + RL] for i in range(0, len(body), rec_len)]


def header_len(data: bytes) -> int:
    return 8 + int.from_bytes(data[4:8], "little")


def assert_books_equal(r, ref: RefReplay):
    assert set(r.books) == set(ref.books)
    for L, book in r.books.items():
        rb = ref.books[L]
        assert len(book) == len(rb.orders), f"book {L}"
        bids, asks = book.depth_orders(1 << 30)
        assert [tuple(x) for x in bids.tolist()] == rb.depth(0), f"book {L} bids"
        assert [tuple(x) for x in asks.tolist()] == rb.depth(1), f"book {L} asks"
        for side in (0, 1):
            for price, level in rb.sides[side].items():
                ahead = 0
                for oid, size in level.items():
                    assert book.get(oid) == (side, price, size)
                    assert book.queue_position(oid) == ahead
                    ahead += size


def assert_sinks_equal(r, ref: RefReplay):
    tob = r.tob()
    assert tob.dtype == TOB_DTYPE
    assert [tuple(int(v) for v in row) for row in tob.tolist()] == ref.tob
    tr = r.trades()
    assert tr.dtype == TRADE_DTYPE
    got = [(int(t["ts"]), int(t["ref"]), int(t["match_number"]), int(t["price"]),
            int(t["shares"]), int(t["locate"]), bytes(t["kind"]), bytes(t["side"])) for t in tr]
    assert got == ref.trades


def assert_counters_equal(r, ref: RefReplay):
    s = r.stats
    for k, v in ref.c.items():
        assert s[k] == v, k
    assert s["messages"] == ref.messages


def replay_bytes(data: bytes, **kw) -> DbnReplayer:
    import io

    meta = read_metadata(io.BytesIO(data))
    r = DbnReplayer(names=meta.names, ts_out=meta.ts_out, **kw)
    body = data[meta.header_bytes:]
    n = r.feed(body)
    r.finish(body[n:])
    return r


# ---- hand-written records: each rule on its own ----

def _stream(recs, names=None):
    from matchcore.feeds.dbn_gen import _metadata

    return _metadata(names or {7: "X"}, False, 0, 10) + b"".join(recs)


def test_dbn_replay_modify_rules_match_guide():
    R = lambda *a, **k: mbo_record(7, *a, **k)  # noqa: E731
    recs = [
        R(1, 1, 100, 5, "A", "B"), R(2, 2, 100, 5, "A", "B"), R(3, 3, 100, 5, "A", "B"),
        R(4, 1, 100, 3, "M", "B"),      # smaller size: keeps its place
        R(5, 2, 100, 9, "M", "B"),      # larger size: to the back
        R(6, 3, 101, 5, "M", "B"),      # new price: back of the new level
        R(7, 9, 99, 4, "M", "B"),       # unknown id: added
        R(8, 1, 100, 0, "M", "B"),      # size 0: removed
        R(9, 9, 99, 4, "M", "A"),       # other side: removed and re-added there
        R(10, 2, 100, 20, "C", "B"),    # cancel more than open: clamped, removed
        R(11, 5, 100, 1, "C", "B"),     # unknown id
        R(12, 3, 0, 1, "M", "B"),       # invalid price
    ]
    r = replay_bytes(_stream(recs))
    ref = RefReplay().feed_records(recs)
    assert_books_equal(r, ref)
    assert_counters_equal(r, ref)
    assert_sinks_equal(r, ref)
    s = r.stats
    assert (s["modifies_as_adds"], s["side_changes"], s["cancels_clamped"], s["unknown_refs"],
            s["invalid_modifies"]) == (1, 1, 1, 1, 1)
    book = r.book("X")
    assert book.get(3) == (0, 101, 5) and book.get(9) == (1, 99, 4) and len(book) == 2


def test_dbn_replay_queue_priority_after_modify_follows_size_rule():
    R = lambda *a, **k: mbo_record(7, *a, **k)  # noqa: E731
    recs = [R(1, 1, 100, 5, "A", "A"), R(2, 2, 100, 5, "A", "A"),
            R(3, 1, 100, 4, "M", "A"), R(4, 2, 100, 6, "M", "A")]
    r = replay_bytes(_stream(recs))
    book = r.book(7)
    assert book.queue_position(1) == 0 and book.queue_position(2) == 4


def test_dbn_replay_trade_and_fill_leave_book_and_fill_sink():
    R = lambda *a, **k: mbo_record(7, *a, **k)  # noqa: E731
    recs = [R(1, 1, 100, 5, "A", "B"), R(2, 0, 100, 2, "T", "A", flags=0, sequence=9),
            R(2, 1, 100, 2, "F", "B", flags=0, sequence=9), R(2, 1, 100, 2, "C", "B")]
    r = replay_bytes(_stream(recs))
    tr = r.trades()
    assert tr["kind"].tolist() == [b"T", b"F"] and tr["side"].tolist() == [b"S", b"B"]
    assert tr["shares"].tolist() == [2, 2] and tr["match_number"].tolist() == [9, 9]
    assert r.book("X").get(1) == (0, 100, 3)
    # one top-of-book record per F_LAST event that changed it: the add, then the cancel
    assert r.tob()["bid_qty"].tolist() == [5, 3]


def test_dbn_replay_tob_read_only_after_f_last():
    R = lambda *a, **k: mbo_record(7, *a, **k)  # noqa: E731
    recs = [R(1, 1, 100, 5, "A", "B", flags=0), R(1, 2, 101, 5, "A", "B", flags=0),
            R(1, 3, 105, 5, "A", "A")]
    r = replay_bytes(_stream(recs))
    assert [tuple(x)[1:5] for x in r.tob().tolist()] == [(101, 5, 105, 5)]
    r2 = replay_bytes(_stream(recs), tob_on_last=False)
    assert len(r2.tob()) == 3


def test_dbn_replay_clear_and_tob_flag_replace_levels():
    R = lambda *a, **k: mbo_record(7, *a, **k)  # noqa: E731
    recs = [R(1, 1, 100, 5, "A", "B"), R(2, 2, 99, 5, "A", "B"), R(3, 0, 0, 0, "R", "N"),
            R(4, 0, 100, 7, "A", "B", flags=0xC0), R(5, 0, 101, 8, "A", "B", flags=0xC0),
            R(6, 0, 103, 2, "A", "A", flags=0xC0), R(7, 0, UNDEF_PRICE, 0, "A", "A", flags=0xC0)]
    r = replay_bytes(_stream(recs))
    ref = RefReplay().feed_records(recs)
    assert_books_equal(r, ref)
    assert_counters_equal(r, ref)
    book = r.book("X")
    assert book.get(TOB_OID_BASE) == (0, 101, 8) and len(book) == 1
    assert r.stats["clears"] == 1 and r.stats["tob_adds"] == 4


def test_dbn_replay_invalid_values_counted_and_skipped():
    R = lambda *a, **k: mbo_record(7, *a, **k)  # noqa: E731
    recs = [R(1, 1, 100, 0, "A", "B"), R(2, 2, -5, 3, "A", "B"), R(3, 3, 100, 3, "A", "N"),
            R(4, 4, 100, 3, "A", "B"), R(5, 4, 100, 3, "A", "A")]
    r = replay_bytes(_stream(recs))
    s = r.stats
    assert (s["invalid_adds"], s["bad_sides"], s["duplicate_refs"], s["open_orders"]) == (3, 0, 1, 1)


# ---- generated files: multi-instrument, zstd, ts_out, against the reference ----

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dbn_replay_generated_multi_instrument_matches_reference(seed):
    data = generate_mbo(None, records=6000, instruments=4, seed=seed, clear_rate=0.002)
    r = replay_bytes(data)
    ref = RefReplay().feed_records(records_of(data, header_len(data)))
    assert r.stats["books"] == 4 and r.stats["messages"] == 6000
    assert_books_equal(r, ref)
    assert_counters_equal(r, ref)
    assert_sinks_equal(r, ref)
    assert sorted(r.symbols.values()) == ["SYM0", "SYM1", "SYM2", "SYM3"]
    assert sorted(r.instruments.values()) == [1001, 1002, 1003, 1004]
    s = r.stats
    assert s["counts"]["T"] and s["counts"]["F"] and s["counts"]["M"] and s["counts"]["R"]


def test_dbn_replay_file_zst_and_plain_identical(tmp_path):
    plain = generate_mbo(tmp_path / "a.dbn", records=5000, instruments=3, seed=4)
    zst = generate_mbo(tmp_path / "a.dbn.zst", records=5000, instruments=3, seed=4)
    assert zst.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    assert is_dbn(plain) and is_dbn(zst)
    a = replay_dbn(plain, chunk_size=4096)
    b = replay_dbn(zst, chunk_size=8192)
    assert a.stats == b.stats
    assert a.stats["truncated"] is None and a.stats["bad_records"] == 0
    assert np.array_equal(a.trades(), b.trades()) and np.array_equal(a.tob(), b.tob())
    assert {k: v.state_hash() for k, v in a.books.items()} == \
        {k: v.state_hash() for k, v in b.books.items()}
    assert a.metadata.dataset == "GLBX.MDP3" and a.metadata.schema == "mbo"


def test_dbn_replay_chunk_boundaries_do_not_change_results(tmp_path):
    path = generate_mbo(tmp_path / "c.dbn", records=3000, instruments=2, seed=8)
    a = replay_dbn(path)
    b = replay_dbn(path, chunk_size=4099)     # records straddle every chunk boundary
    assert a.stats == b.stats and np.array_equal(a.tob(), b.tob())


def test_dbn_replay_ts_out_records_decoded():
    data = generate_mbo(None, records=2000, instruments=2, seed=5, ts_out=True)
    assert read_metadata(__import__("io").BytesIO(data)).ts_out
    r = replay_bytes(data)
    ref = RefReplay().feed_records(records_of(data, header_len(data), 64))
    assert r.stats["bad_records"] == 0
    assert_books_equal(r, ref)


def test_dbn_replay_symbols_filter_keeps_only_named_books():
    data = generate_mbo(None, records=4000, instruments=3, seed=6)
    full = replay_bytes(data)
    r = replay_bytes(data, symbols=["SYM1"])
    assert list(r.symbols.values()).count("SYM1") == 1 and len(r.books) == 1
    L = next(iter(r.books))
    Lf = next(k for k, v in full.symbols.items() if v == "SYM1")
    assert r.books[L].state_hash() == full.books[Lf].state_hash()


def test_dbn_replay_names_without_mappings_are_instrument_ids():
    data = generate_mbo(None, records=500, instruments=2, seed=7, with_names=False)
    r = replay_bytes(data)
    assert sorted(r.symbols.values()) == ["1001", "1002"]


def test_dbn_metadata_reused_instrument_id_named_by_its_latest_interval_every_read():
    import datetime as dt
    import io
    from types import SimpleNamespace as NS

    import databento_dbn as d

    # id 100 is ESZ4 on the first day and NQZ4 on the second (and ESZ4 moves to id 300)
    d1 = dt.date(2023, 11, 14)
    d2, d3 = d1 + dt.timedelta(days=1), d1 + dt.timedelta(days=2)
    intervals = {"ESZ4": [NS(start_date=d1, end_date=d2, symbol="100"),
                          NS(start_date=d2, end_date=d3, symbol="300")],
                 "NQZ4": [NS(start_date=d1, end_date=d2, symbol="200"),
                          NS(start_date=d2, end_date=d3, symbol="100")]}
    for order in (["ESZ4", "NQZ4"], ["NQZ4", "ESZ4"]):
        meta = d.Metadata(dataset="GLBX.MDP3", start=0, end=10, stype_in=d.SType.RAW_SYMBOL,
                          stype_out=d.SType.INSTRUMENT_ID, schema=d.Schema.MBO, symbols=order,
                          mappings=[NS(raw_symbol=s, intervals=intervals[s]) for s in order],
                          ts_out=False)
        head = bytes(meta.encode())
        # the package hands the mappings over in an order that changes from read to read
        for _ in range(20):
            names = read_metadata(io.BytesIO(head)).names
            assert names == {100: "NQZ4", 200: "NQZ4", 300: "ESZ4"}


def test_dbn_replay_snapshots_hold_depth_of_changed_books():
    data = generate_mbo(None, records=3000, instruments=2, seed=9)
    r = replay_bytes(data, snapshot_every=500, snapshot_depth=5)
    snaps = r.snapshots()
    assert len(snaps) >= 2 * (3000 // 500) - 2
    # the last snapshot of each book, taken after the last record, is its final depth
    for L, book in r.books.items():
        last = snaps[snaps["locate"] == L][-1]
        bids, _ = book.depth_orders(5)
        assert last["bid_price"][: len(bids)].tolist() == bids[:, 0].tolist()


def test_dbn_replay_until_stops_before_later_record():
    data = generate_mbo(None, records=2000, instruments=2, seed=3)
    recs = records_of(data, header_len(data))
    stop = MBO.unpack(recs[999])[12]
    r = replay_bytes(data, until_ns=stop)
    assert r.done and r.stats["last_ts"] <= stop < MBO.unpack(recs[r.stats["messages"]])[12]


def test_dbn_replay_until_ns_takes_the_time_snapshots_up_to_the_stop_time():
    # As the ITCH replay: adds at 1 s and 5 s, the next record at 12 s, snapshots every 10 s.
    # Replayed to 11 s, the boundary at 10 s lies inside the replay, but its snapshot waited
    # for a record at or after 10 s, which the stop time left out: none was taken.
    second = 1_000_000_000
    recs = [mbo_record(7, ts * second, oid, 100 * 10**9, 5, "A", "B")
            for oid, ts in ((1, 1), (2, 5), (3, 12), (4, 25))]
    data = _stream(recs)
    whole = replay_bytes(data, snapshot_every_ns=10 * second)
    assert whole.snapshots()["ts"].tolist() == [10 * second, 20 * second]
    for until, stamps in ((11, [10]), (20, [10, 20]), (9, []), (10, [10])):
        r = replay_bytes(data, snapshot_every_ns=10 * second, until_ns=until * second)
        assert r.done
        got = r.snapshots()
        assert got["ts"].tolist() == [t * second for t in stamps], until
        # the same records as a replay that goes on past the stop time
        assert (got == whole.snapshots()[:len(got)]).all(), until


# ---- malformed input: counted, reported, never a crash ----

def test_dbn_replay_malformed_records_counted_and_skipped():
    R = lambda *a, **k: mbo_record(7, *a, **k)  # noqa: E731
    good = [R(1, 1, 100, 5, "A", "B"), R(2, 2, 101, 5, "A", "A"), R(3, 1, 100, 2, "C", "B"),
            R(4, 10, 99, 1, "A", "B")]
    bad_action = bytearray(R(4, 3, 100, 5, "A", "B"))
    bad_action[38] = ord("X")
    bad_side = bytearray(R(5, 4, 100, 5, "A", "B"))
    bad_side[39] = ord("Q")
    zero_len = b"\x00" * 12                          # a zero-length header and junk
    wrong_len = bytearray(R(6, 5, 100, 5, "A", "B"))
    wrong_len[0] = 20                                 # an MBO record claiming 80 bytes
    unknown_rtype = bytes([4, 0x77]) + b"\x00" * 14   # an rtype outside the specification
    system = bytes([6, 0x17]) + b"\x00" * 22          # a known non-MBO rtype: skipped by length
    stream = (good[0] + bytes(bad_action) + zero_len + good[1] + system + bytes(bad_side)
              + bytes(wrong_len) + good[2] + unknown_rtype + good[3])
    data = _stream([stream])
    r = replay_bytes(data)
    ref = RefReplay().feed_records(good)
    assert_books_equal(r, ref)
    s = r.stats
    assert s["bad_actions"] == 1 and s["bad_sides"] == 1
    assert s["bad_records"] == 3 and s["bytes_skipped"] == 12 + 56 + 16
    assert s["other_rtypes"] == {"0x17": 1}
    assert s["first_bad_offset"] == 2 * 56


def test_dbn_replay_damage_read_as_other_rtype_loses_only_the_damaged_bytes():
    # Bytes read out of step after damage look like the header of a known non-MBO record about
    # one time in ten; skipping that by its "length" (up to 1,020 bytes) lost up to 18 good
    # records, against the rule that damage loses only the damaged bytes and their record.
    data = generate_mbo(None, records=400, instruments=3, seed=4)
    h = header_len(data)
    recs = records_of(data, h)
    whole = replay_bytes(data)
    for junk in (bytes([0xFF, 0x15]) + b"\x00" * 5, bytes([200, 0xC1, 1, 2, 3]),
                 bytes([0x41, 0x17]) + bytes(range(30))):
        for i in (0, 50, 300):
            bad = data[:h] + b"".join(recs[:i]) + junk + b"".join(recs[i:])
            for piece in (None, 7, 1000):
                if piece is None:
                    r = replay_bytes(bad)
                else:
                    import io
                    meta = read_metadata(io.BytesIO(bad))
                    r = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
                    body, tail = bad[meta.header_bytes:], b""
                    for k in range(0, len(body), piece):
                        buf = tail + body[k:k + piece]
                        tail = buf[r.feed(buf):]
                    r.finish(tail)
                s = r.stats
                assert s["messages"] == 400 and s["other_rtypes"] == {}, (junk, i, piece)
                assert (s["bad_records"], s["bytes_skipped"]) == (1, len(junk)), (junk, i, piece)
                assert s["truncated"] is None
                assert {k: b.state_hash() for k, b in r.books.items()} == \
                    {k: b.state_hash() for k, b in whole.books.items()}
    # a real record of another rtype is still skipped by its length and counted: between
    # records, in runs, and as the very last bytes of the stream (fed whole or in pieces)
    system = bytes([6, 0x17]) + b"\x00" * 22
    body = recs[0] + system + recs[1] + system * 20 + b"".join(recs[2:]) + system
    for piece in (None, 5, 333):
        if piece is None:
            r = replay_bytes(data[:h] + body)
        else:
            import io
            meta = read_metadata(io.BytesIO(data))
            r = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
            tail = b""
            for k in range(0, len(body), piece):
                buf = tail + body[k:k + piece]
                tail = buf[r.feed(buf):]
            r.finish(tail)
        s = r.stats
        assert (s["messages"], s["other_rtypes"], s["bad_records"], s["truncated"]) == \
            (400, {"0x17": 22}, 0, None), piece


def test_dbn_replay_truncated_last_record_reported(tmp_path):
    data = generate_mbo(None, records=100, instruments=1, seed=2)
    path = tmp_path / "t.dbn"
    path.write_bytes(data[:-20])
    r = replay_dbn(path)
    t = r.stats["truncated"]
    assert t == {"offset": 99 * 56, "bytes": 36, "expected": 56}
    assert r.stats["messages"] == 99


def test_dbn_replay_not_dbn_raises_clear_error(tmp_path):
    p = tmp_path / "x.dbn"
    p.write_bytes(b"ITCH....")
    with pytest.raises(ValueError, match="not a DBN stream"):
        replay_dbn(p)
    p.write_bytes(b"DBN\x03\xff\x00\x00\x00abc")
    with pytest.raises(ValueError, match="truncated"):
        replay_dbn(p)
    with pytest.raises(ValueError, match="snapshot_depth"):
        DbnReplayer(snapshot_depth=0)


def test_dbn_replayer_options_after_names_symbols_positional_raise_type_error():
    with pytest.raises(TypeError):
        DbnReplayer(None, None, True)
    assert DbnReplayer(None, None, ts_out=True).done is False


@pytest.mark.parametrize("names, exc, message", [
    # an AttributeError ('list' object has no attribute 'items') and int()'s own words, naming
    # neither the argument nor the key
    ([(1001, "ESZ4")], TypeError, "names is a mapping {instrument_id: symbol}, not list"),
    ({"ESZ4": 1001}, ValueError, "names: instrument id 'ESZ4' is not a whole number"),
    ({None: "ESZ4"}, TypeError, "names: instrument id None is not a whole number"),
])
def test_dbn_replayer_bad_names_refused_naming_the_argument(names, exc, message):
    with pytest.raises(exc) as e:
        DbnReplayer(names)
    assert str(e.value) == message


@pytest.mark.parametrize("partition, exc", [
    # bools were taken for 1 and 0; counts beyond int64 raised OverflowError ("Python int too
    # large to convert to C long", naming no argument); a non-pair failed in the unpacking
    ((True, 2), TypeError), ((0, True), TypeError), ((0, 2**63), ValueError),
    ((2**64, 2**65), ValueError), (5, ValueError), ((0, 1, 2), ValueError),
    ((0.0, 2), TypeError), ("01", TypeError),
])
def test_dbn_replayer_bad_partition_refused_naming_the_argument(partition, exc):
    want = (r"^partition must be \(k, n\) with 0 <= k < n < 2\*\*63" if exc is ValueError
            else r"^partition must be \(k, n\) of integers")
    with pytest.raises(exc, match=want):
        DbnReplayer(partition=partition)
    assert DbnReplayer(partition=(3, 2**63 - 1)).stats["books"] == 0


def test_dbn_replay_random_corruption_never_crashes():
    data = generate_mbo(None, records=1500, instruments=3, seed=11)
    h = header_len(data)
    rng = random.Random(5)
    for _ in range(60):
        body = bytearray(data[h:])
        for _ in range(rng.randint(1, 40)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        if rng.random() < 0.3:
            i = rng.randrange(len(body))
            del body[i:i + rng.randint(1, 7)]
        r = DbnReplayer(names={})
        n = r.feed(bytes(body))
        s = r.finish(bytes(body[n:]))
        assert n + (s["truncated"] or {"bytes": 0})["bytes"] == len(body)
        for book in r.books.values():
            book.check_invariants(allow_crossed=True)
        assert s["open_orders"] == sum(len(b) for b in r.books.values())


def test_dbn_replay_instruments_beyond_max_books_counted_and_skipped():
    recs = [mbo_record(100 + i, i + 1, i + 1, 100, 5, "A", "B") for i in range(5)]
    recs += [mbo_record(104, 9, 50, 101, 5, "A", "B"), mbo_record(100, 10, 51, 101, 5, "A", "B")]
    r = replay_bytes(_stream(recs, {100: "X"}), max_books=3)
    s = r.stats
    assert s["books"] == 3 and s["instruments_dropped"] == 2 and s["messages"] == 7
    assert sorted(r.instruments.values()) == [100, 101, 102] and s["open_orders"] == 4
    with pytest.raises(ValueError, match="max_books"):
        DbnReplayer(max_books=0)


def test_dbn_reference_layout_matches_package_decoder():
    import databento_dbn

    data = generate_mbo(None, records=500, instruments=3, seed=13)
    dec = databento_dbn.DBNDecoder()
    dec.write(data)
    pkg = [m for m in dec.decode() if isinstance(m, databento_dbn.MBOMsg)]
    ours = [MBO.unpack(rec) for rec in records_of(data, header_len(data))]
    assert len(pkg) == len(ours) == 500
    for m, u in zip(pkg, ours):
        assert (u[3], u[5], u[6], u[7], u[8], u[10].decode(), u[11].decode(), u[12], u[14]) == \
            (m.instrument_id, m.order_id, m.price, m.size, int(m.flags), str(m.action),
             str(m.side), m.ts_recv, m.sequence)


def _chaos_record(rng: random.Random) -> bytes:
    action = rng.choice("AAAACCCMMMRTFN") if rng.random() > 0.01 else "X"
    side = rng.choice("ABN" if action in "RTFN" else "AAABBBN") if rng.random() > 0.01 else "Q"
    flags = rng.choice((0x80, 0x80, 0x80, 0, 0xC0, 0x40)) if action == "A" else \
        rng.choice((0x80, 0x80, 0))
    price = rng.choice((98, 99, 100, 100, 101, 102, 0, -1, UNDEF_PRICE))
    return MBO.pack(14, 0xA0, 1, rng.randint(1, 3), 0, rng.randint(1, 30), price,
                    rng.randint(0, 6), flags, 0, action.encode(), side.encode(),
                    rng.randint(1, 10**9), 0, rng.randint(0, 99))


@pytest.mark.parametrize("seed", range(12))
def test_dbn_replay_chaotic_records_match_reference(seed):
    """Small id and price domains, every action, invalid values and flags mixed: duplicate adds,
    cancels and modifies of unknown ids, side changes, F_TOB, clears, bad actions and sides."""
    rng = random.Random(seed)
    recs = [_chaos_record(rng) for _ in range(3000)]
    r = replay_bytes(_stream(recs, {1: "ONE", 2: "TWO"}))
    ref = RefReplay().feed_records(recs)
    assert_books_equal(r, ref)
    assert_counters_equal(r, ref)
    assert_sinks_equal(r, ref)
    for book in r.books.values():
        book.check_invariants(allow_crossed=True)
    s = r.stats
    assert s["duplicate_refs"] and s["unknown_refs"] and s["modifies_as_adds"] and s["tob_adds"]


def test_dbn_replay_many_instruments_match_reference_whole_and_chunked(tmp_path):
    # from 400 books on, the replay loads the next records' lines ahead (lookahead)
    path = generate_mbo(tmp_path / "many.dbn", records=40_000, instruments=450, seed=5,
                        clear_rate=0.002)
    data = path.read_bytes()
    r = replay_bytes(data)
    assert r.stats["books"] == 450
    ref = RefReplay().feed_records(records_of(data, header_len(data)))
    assert_books_equal(r, ref)
    assert_counters_equal(r, ref)
    assert_sinks_equal(r, ref)
    c = replay_dbn(path, chunk_size=4099)     # records straddle every chunk boundary
    assert c.stats == replay_dbn(path).stats and np.array_equal(c.tob(), r.tob())
    assert {k: v.state_hash() for k, v in c.books.items()} == \
        {k: v.state_hash() for k, v in r.books.items()}


@pytest.mark.parametrize("seed", range(3))
def test_dbn_replay_chaotic_records_of_many_instruments_match_reference(seed):
    # the chaotic mix (unknown ids, side changes, F_TOB, clears, bad values) over 480 books
    rng = random.Random(100 + seed)
    recs = []
    for _ in range(20_000):
        rec = bytearray(_chaos_record(rng))
        rec[4:8] = rng.randint(1, 480).to_bytes(4, "little")      # instrument_id
        recs.append(bytes(rec))
    r = replay_bytes(_stream(recs))
    assert r.stats["books"] == 480
    ref = RefReplay().feed_records(recs)
    assert_books_equal(r, ref)
    assert_counters_equal(r, ref)
    assert_sinks_equal(r, ref)


def test_dbn_replay_zst_cut_short_reports_truncation_and_damage_raises(tmp_path):
    path = generate_mbo(tmp_path / "c.dbn.zst", records=6000, instruments=2, seed=1)
    data = path.read_bytes()
    cut = tmp_path / "cut.dbn.zst"
    cut.write_bytes(data[: len(data) // 2])
    r = replay_dbn(cut)
    assert 0 < r.stats["messages"] < 6000
    t = r.stats["truncated"]
    assert t is None or (t["offset"] == r.stats["messages"] * 56 and 0 < t["bytes"] < 56)
    bad = tmp_path / "bad.dbn.zst"
    bad.write_bytes(data[:12] + bytes(b ^ 0xFF for b in data[12:40]) + data[40:])
    with pytest.raises(ValueError, match="zstd decompression failed|not a DBN|metadata"):
        replay_dbn(bad)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_dbn_replay_metadata_versions_same_books(version):
    data = generate_mbo(None, records=1500, instruments=2, seed=17, version=version)
    assert data[3] == version
    r = replay_bytes(data)
    ref = RefReplay().feed_records(records_of(data, header_len(data)))
    assert r.stats["bad_records"] == 0 and sorted(r.symbols.values()) == ["SYM0", "SYM1"]
    assert_books_equal(r, ref)


# ---- damage in the middle of a file loses only the damaged bytes ----

@pytest.mark.parametrize("garbage", [1, 4, 13, 56 * 2 + 3])
def test_dbn_replay_garbage_between_records_only_garbage_skipped(garbage):
    data = generate_mbo(None, records=5000, instruments=2, seed=9)
    hdr = header_len(data)
    cut = hdr + 56 * 100
    bad = data[:cut] + bytes([0xA5]) * garbage + data[cut:]
    r = replay_bytes(bad)
    s = r.stats
    assert (s["messages"], s["bad_records"], s["bytes_skipped"], s["truncated"]) == \
        (5000, 1, garbage, None)
    assert s["first_bad_offset"] == 56 * 100
    clean = replay_bytes(data)
    assert {L: b.state_hash() for L, b in r.books.items()} == \
        {L: b.state_hash() for L, b in clean.books.items()}


def test_dbn_replay_misaligned_loss_inside_a_record_loses_one_record():
    data = generate_mbo(None, records=3000, instruments=2, seed=5)
    hdr = header_len(data)
    cut = hdr + 56 * 700 + 9                 # 9 bytes into record 700: 5 bytes of it vanish
    bad = data[:cut] + data[cut + 5:]
    s = replay_bytes(bad).stats
    assert s["bad_records"] == 1 and s["truncated"] is None
    assert s["messages"] == 2999 and s["bytes_skipped"] == 56 - 5


# ---- schemas other than MBO are refused, not replayed as empty books ----

def _schema_file(tmp_path, schema, rec):
    import datetime as dt
    from types import SimpleNamespace

    import databento_dbn as d

    t0, day = 1_700_000_000_000_000_000, dt.date(2023, 11, 14)
    mappings = [SimpleNamespace(raw_symbol="AAA", intervals=[SimpleNamespace(
        start_date=day, end_date=day + dt.timedelta(days=1), symbol="1")])]
    meta = d.Metadata(dataset="XNAS.ITCH", start=t0, end=t0 + 10**9, stype_in=d.SType.RAW_SYMBOL,
                      stype_out=d.SType.INSTRUMENT_ID, schema=schema, symbols=["AAA"],
                      mappings=mappings, ts_out=False)
    path = tmp_path / f"{schema.name.lower()}.dbn"
    path.write_bytes(bytes(meta.encode()) + b"".join(rec(t0 + i) for i in range(50)))
    return path


def _non_mbo_files(tmp_path):
    import databento_dbn as d

    px = 100 * 10**9
    return [
        (_schema_file(tmp_path, d.Schema.TRADES, lambda t: bytes(d.TradeMsg(
            2, 1, t, px, 10, d.Action("T"), d.Side("B"), 0, t))), "trades"),
        (_schema_file(tmp_path, d.Schema.MBP_1, lambda t: bytes(d.MBP1Msg(
            2, 1, t, px, 10, d.Action("A"), d.Side("B"), 0, t))), "mbp-1"),
    ]


def test_dbn_replay_non_mbo_schema_raises_naming_it(tmp_path):
    for path, schema in _non_mbo_files(tmp_path):
        with pytest.raises(ValueError, match=f"schema '{schema}' is not supported"):
            replay_dbn(path)


def test_cli_replay_dbn_non_mbo_schema_exit_1(tmp_path, capsys):
    from matchcore.__main__ import main

    for path, schema in _non_mbo_files(tmp_path):
        rc = main(["replay", str(path), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 1 and f"schema '{schema}'" in err and "Traceback" not in err


# ---- a zstd stream cut short says so ----

def test_dbn_replay_zst_cut_inside_frame_reports_stream_end(tmp_path):
    path = generate_mbo(tmp_path / "c.dbn.zst", records=6000, instruments=2, seed=1)
    data = path.read_bytes()
    for keep in (len(data) // 2, len(data) - 1):
        cut = tmp_path / "cut.dbn.zst"
        cut.write_bytes(data[:keep])
        s = replay_dbn(cut).stats
        t = s["truncated"]
        assert t is not None and t["stream"].startswith("zstd stream ended inside a frame")
        assert t["offset"] == s["messages"] * 56 and 0 <= t["bytes"] < 56
    whole = replay_dbn(path).stats
    assert whole["truncated"] is None and whole["messages"] == 6000


def test_dbn_replay_zst_cut_inside_first_block_detected_and_reported_as_cut(tmp_path):
    # One zstd block holds up to 128 KiB: a file cut inside its first one decompresses to
    # nothing. It was taken for ITCH (is_dbn False, even named .dbn.zst) and replay_dbn said
    # "not a DBN stream (starts with b'')".
    path = generate_mbo(tmp_path / "c.dbn.zst", records=1500, instruments=2, seed=3)
    data = path.read_bytes()
    for keep in (4, 100, len(data) // 2):
        cut = tmp_path / "cut.dbn.zst"
        cut.write_bytes(data[:keep])
        assert is_dbn(cut)
        with pytest.raises(ValueError, match="truncated zstd data: the compressed stream is"):
            replay_dbn(cut)
        other = tmp_path / "cut.zst"            # nothing to go by: not taken for DBN
        other.write_bytes(data[:keep])
        assert not is_dbn(other)


def test_dbn_replayer_feed_after_finish_refused_books_and_stats_unchanged():
    import io

    data = generate_mbo(None, records=3000, instruments=2, seed=8)
    meta = read_metadata(io.BytesIO(data))
    body = data[meta.header_bytes:]
    cut = len(body) - 7
    r = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
    n = r.feed(body[:cut])
    stats = r.finish(body[n:cut])
    assert stats["truncated"] is not None
    hashes = {k: b.state_hash() for k, b in r.books.items()}
    for call in (lambda: r.feed(body[cut:]), lambda: r.finish(body[cut:])):
        with pytest.raises(ValueError, match=r"after finish\(\): the stream has ended"):
            call()
    assert r.stats == stats
    assert {k: b.state_hash() for k, b in r.books.items()} == hashes


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
def test_dbn_replayer_finish_tail_of_wider_items_truncation_in_bytes(dtype):
    # finish() took len() of the tail: the items of a uint16 array, half of its bytes, were
    # reported as the bytes of the record cut short
    import io

    data = generate_mbo(None, records=50, instruments=1, seed=1)
    body = data[read_metadata(io.BytesIO(data)).header_bytes:]
    cut = body[:RL * 10 + 28]
    want = DbnReplayer()
    want.finish(cut[want.feed(cut):])
    r = DbnReplayer()
    tail = cut[r.feed(cut):]
    assert len(tail) == 28
    stats = r.finish(np.frombuffer(tail, dtype=dtype))
    assert stats["truncated"] == want.stats["truncated"]
    assert stats["truncated"]["bytes"] == 28


def test_dbn_replay_symbols_given_as_one_string_type_error():
    # iterated as letters, "SYM1" matched no instrument: an empty replay, no error
    with pytest.raises(TypeError, match="not a single str"):
        DbnReplayer(symbols="SYM1")


def test_dbn_replay_symbols_instrument_id_with_leading_zeros_matches():
    data = generate_mbo(None, records=2000, instruments=3, seed=6)
    r = replay_bytes(data, symbols=["0001002"])
    assert sorted(r.books) == sorted(replay_bytes(data, symbols=[1002]).books) and len(r.books) == 1


def test_dbn_replay_zstd_damage_without_checksum_replayed_and_counted(tmp_path):
    # what the README says of a damaged frame that zstd cannot tell is damaged
    good = generate_mbo(tmp_path / "a.dbn.zst", records=8000, instruments=5, seed=4)
    raw = bytearray(good.read_bytes())
    assert not raw[4] & 0x04                     # no content checksum in the frame
    for i in range(3000, 3100):
        raw[i] ^= 0x55
    bad = tmp_path / "b.dbn.zst"
    bad.write_bytes(bytes(raw))
    r = replay_dbn(bad)
    s, w = r.stats, replay_dbn(good).stats
    assert s["records"] == w["records"]
    assert s["bad_actions"] + s["bad_sides"] + s["unknown_refs"] + s["bad_records"] > 0
    assert w["bad_actions"] + w["bad_sides"] + w["unknown_refs"] + w["bad_records"] == 0


# ---- gzip'd DBN files ----

def test_dbn_replay_gzip_file_same_as_plain_cut_and_damage_reported(tmp_path):
    # A gzip'd DBN file was not DBN to is_dbn and "not a DBN stream" to replay_dbn; the command
    # line replayed it as gzip'd ITCH (0 messages, a bad length prefix, exit status 0).
    import gzip

    plain = generate_mbo(tmp_path / "g.dbn", records=6000, instruments=3, seed=6)
    gz = tmp_path / "g.dbn.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert is_dbn(gz)
    a = replay_dbn(plain)
    b = replay_dbn(gz, chunk_size=4096)
    assert a.stats == b.stats and b.stats["truncated"] is None and b.stats["messages"] == 6000
    assert np.array_equal(a.trades(), b.trades()) and np.array_equal(a.tob(), b.tob())
    assert {k: v.state_hash() for k, v in a.books.items()} == \
        {k: v.state_hash() for k, v in b.books.items()}
    assert b.metadata == a.metadata
    data = gz.read_bytes()
    cut = tmp_path / "cut.dbn.gz"
    cut.write_bytes(data[:len(data) // 2])
    s = replay_dbn(cut).stats
    assert s["truncated"]["stream"].startswith("gzip stream ended before its end marker")
    assert 0 < s["messages"] < 6000 and s["truncated"]["offset"] == s["messages"] * 56
    cut.write_bytes(data[:10])                 # nothing decompressed yet: DBN by its name
    assert is_dbn(cut)
    with pytest.raises(ValueError, match=f"{cut}: truncated gzip data: the compressed "
                                         "stream is cut short"):
        replay_dbn(cut)
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF                  # the CRC at the end tells, if inflate did not
    cut.write_bytes(bytes(bad))
    with pytest.raises(ValueError, match=f"{cut}: gzip decompression failed"):
        replay_dbn(cut)


def _slow_writer(fifo, data: bytes, first: int):
    # a writer whose first write holds only `first` bytes, the rest a moment later: the
    # reader's first read of the FIFO gets part of the magic
    import threading
    import time

    def write():
        with open(fifo, "wb") as f:
            f.write(data[:first])
            f.flush()
            time.sleep(0.3)
            f.write(data[first:])

    t = threading.Thread(target=write)
    t.start()
    return t


@pytest.mark.parametrize("codec", ["gzip", "zstd", "plain"])
def test_replay_dbn_fifo_magic_split_across_reads_replays_every_record(tmp_path, codec):
    # replay_dbn told the compression by peek(4), one read of the FIFO: a gzip'd file whose
    # first read gave one byte was read as plain DBN, "not a DBN stream (starts with
    # b'\x1f\x8b...')"; a zstd'd one the same
    import gzip
    import os

    plain = generate_mbo(None, records=3000, instruments=3, seed=8)
    want = replay_bytes(plain)
    data = {"gzip": lambda d: gzip.compress(d),
            "zstd": lambda d: pytest.importorskip("zstandard").ZstdCompressor().compress(d),
            "plain": lambda d: d}[codec](plain)
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    for first in (1, 2, 3):
        w = _slow_writer(fifo, data, first)
        try:
            r = replay_dbn(fifo)
        finally:
            w.join()
        assert r.stats["messages"] == 3000 and r.stats["truncated"] is None, (codec, first)
        assert {k: b.state_hash() for k, b in r.books.items()} == \
            {k: b.state_hash() for k, b in want.books.items()}
    from matchcore.feeds.dbn import open_dbn

    w = _slow_writer(fifo, data, 1)
    try:
        with open_dbn(fifo) as f:
            meta = read_metadata(f)
            body = f.read()
    finally:
        w.join()
    assert meta.header_bytes + len(body) == len(plain)


def test_is_dbn_fifo_told_by_name_without_reading_it(tmp_path):
    # is_dbn opened a FIFO and read its first 4 bytes: they were lost to the replay that
    # followed (and with no writer yet, it waited for one)
    import os

    for name, want in (("feed.dbn", True), ("feed.dbn.gz", True), ("feed.itch", False)):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        assert is_dbn(fifo) is want


def test_dbn_replay_symbols_empty_refused_naming_the_argument(tmp_path, capsys):
    # an empty selection kept no book, where a NATS consumer took it for every symbol
    data = generate_mbo(None, records=500, instruments=2, seed=6)
    with pytest.raises(ValueError, match="symbols is empty"):
        DbnReplayer(symbols=[])
    with pytest.raises(ValueError, match="symbols is empty"):
        replay_bytes(data, symbols=())
    path = generate_mbo(tmp_path / "m.dbn", records=500, instruments=2, seed=6)
    from matchcore.__main__ import main

    assert main(["replay", str(path), "--symbols", "", "--no-progress"]) == 1
    assert "--symbols '' names nothing" in capsys.readouterr().err


def _live_parts(codec: str, first: bytes, rest: bytes) -> tuple[bytes, bytes]:
    # as a live writer compresses: the first part flushed whole to a block boundary, so that
    # it decompresses before the rest has come
    import zlib

    if codec == "gzip":
        c = zlib.compressobj(wbits=31)
        return c.compress(first) + c.flush(zlib.Z_SYNC_FLUSH), c.compress(rest) + c.flush()
    if codec == "zstd":
        zstandard = pytest.importorskip("zstandard")
        c = zstandard.ZstdCompressor().compressobj()
        return (c.compress(first) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK),
                c.compress(rest) + c.flush())
    return first, rest


@pytest.mark.parametrize("at", [20, 1000])
@pytest.mark.parametrize("codec", ["plain", "gzip", "zstd"])
def test_replay_dbn_fifo_slow_writer_records_replayed_before_it_closes(tmp_path, codec, at):
    # From a pipe or FIFO a fill waited for a whole 4 MiB chunk or the end of the stream: a
    # slow writer's records reached the books only when it closed. Here the replay stops at
    # until_ns on a record the writer's first part holds, while the writer keeps the FIFO open.
    # (A buffered reader's readinto1 copies the bytes at hand and then reads the FIFO again.)
    plain = generate_mbo(None, records=3000, instruments=3, seed=9)
    hdr = header_len(plain)
    recs = records_of(plain, hdr)
    ts = [int.from_bytes(r[40:48], "little") for r in recs]
    until = ts[at]
    later = next(i for i, t in enumerate(ts) if t > until)       # the record that stops it
    first, rest = _live_parts(codec, plain[:hdr] + b"".join(recs[:later + 1]),
                              b"".join(recs[later + 1:]))
    fifo = tmp_path / "live.dbn"
    with slow_fifo_writer(fifo, first, rest) as (replayed, early):
        r = replay_dbn(fifo, until_ns=until)
        replayed.set()
    assert early == [True]                        # the replay ended before the rest came
    want = replay_bytes(plain, until_ns=until)
    assert r.done and r.stats["messages"] == want.stats["messages"] == later
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in want.books.items()}


def test_dbn_book_name_two_instruments_carry_refused_naming_their_ids_id_taken():
    # the metadata maps one symbol to two instrument ids (an id that changed between the days
    # of a file): book(name) returned the first instrument's book, the other's orders unseen
    recs = [mbo_record(7, 1, 1, 100, 5, "A", "B"), mbo_record(8, 2, 2, 200, 3, "A", "A"),
            mbo_record(9, 3, 3, 300, 4, "A", "B")]
    r = DbnReplayer(names={7: "X", 8: "X", 9: "Y"})
    body = b"".join(recs)
    assert r.feed(body) == len(body)
    r.finish()
    assert r.symbols == {0: "X", 1: "X", 2: "Y"}
    with pytest.raises(ValueError, match=r"'X' is carried by instruments 7, 8: ask for one"):
        r.book("X")
    books = r.books
    for sym, L in ((7, 0), ("8", 1), ("0008", 1), ("Y", 2), ("9", 2)):
        assert r.book(sym) is books[L], sym
    for sym in ("Z", 5, "5"):
        with pytest.raises(KeyError):
            r.book(sym)


def test_dbn_replay_run_of_other_rtypes_longer_than_chunk_replayed_not_hung(tmp_path):
    # 20 system records (320 bytes each) fill a 4 KiB chunk before the run of other rtypes
    # reaches an MBO header: the replayer waits for more, and the chunk was fed unchanged for
    # ever. on_chunk turns such a loop into a failure instead of a hung test.
    import databento_dbn

    data = generate_mbo(None, records=300, instruments=2, seed=3)
    h = header_len(data)
    system = bytes(databento_dbn.SystemMsg(1_700_000_000_000_000_000, "heartbeat"))
    assert len(system) == 320
    path = tmp_path / "heartbeats.dbn"
    path.write_bytes(data[:h] + system * 20 + data[h:])
    calls = []

    def on_chunk(r):
        calls.append(r.stats["bytes_consumed"])
        assert len(calls) < 1000, "the same chunk is fed again and again"

    r = replay_dbn(path, chunk_size=4096, on_chunk=on_chunk)
    whole = replay_dbn(path)
    assert r.stats == whole.stats
    assert r.stats["other_rtypes"] == {"0x17": 20} and r.stats["messages"] == 300
    assert r.stats["bad_records"] == 0 and r.stats["truncated"] is None
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in whole.books.items()}


@pytest.mark.parametrize("kw, what", [
    ({"instruments": 0}, "instruments must be an integer in 1..4,294,966,295, got 0"),
    ({"instruments": True}, "instruments must be an integer in 1..4,294,966,295, got True"),
    ({"records": -5}, "records must be an integer >= 0, got -5"),
    ({"records": 10.5}, "records must be an integer >= 0, got 10.5"),
    ({"clear_rate": 0.5}, "clear_rate must be in [0, 0.03], got 0.5"),
    ({"clear_rate": -0.1}, "clear_rate must be in [0, 0.03], got -0.1"),
])
def test_dbn_gen_bad_counts_and_rates_refused_naming_the_argument(tmp_path, kw, what):
    # instruments=0 raised IndexError from random.choice deep in the flow, records=-5 wrote a
    # file of no records, clear_rate=0.5 gave 3% of clears: each is now refused, nothing written
    path = tmp_path / "x.dbn"
    with pytest.raises(ValueError) as e:
        generate_mbo(path, **{"records": 100, "instruments": 2, **kw})
    assert str(e.value) == what
    assert not path.exists()
    assert len(generate_mbo(None, records=0, instruments=1)) > 0       # the bounds themselves
    assert generate_mbo(None, records=10, instruments=1, clear_rate=0.03)


@pytest.mark.parametrize("seed, exc", [(1.5, TypeError), ("7", TypeError), (True, TypeError),
                                       (-1, ValueError)])
def test_dbn_gen_seed_not_a_whole_number_refused(tmp_path, seed, exc):
    # any hashable was taken as a seed (random.Random), so seed=1.5 and seed="7" wrote a file
    # no integer seed reproduces, and seed=-1 the same flow as seed=1
    path = tmp_path / "x.dbn"
    with pytest.raises(exc, match="seed"):
        generate_mbo(path, records=100, instruments=2, seed=seed)
    assert not path.exists()
    assert generate_mbo(None, records=100, instruments=2, seed=np.int64(3)) == \
        generate_mbo(None, records=100, instruments=2, seed=3)


@pytest.mark.parametrize("garbage", [b"\xff" * 40, b"\x00" * 3, b"trailing text\n"])
def test_dbn_replay_garbage_at_the_end_skipped_not_reported_truncated(tmp_path, garbage):
    # As damage between records: only the garbage is skipped. Its last byte was left over and
    # reported as a record cut short ("truncated: 1 of 1,020 bytes"), of a file that was whole.
    data = generate_mbo(None, records=2000, instruments=2, seed=9)
    path = tmp_path / "trailing.dbn"
    path.write_bytes(data + garbage)
    s = replay_dbn(path).stats
    assert (s["messages"], s["bad_records"], s["bytes_skipped"], s["truncated"]) == \
        (2000, 1, len(garbage), None)
    assert s["bytes_consumed"] == len(data) - header_len(data) + len(garbage)
    r = DbnReplayer(names={})                       # fed by hand, finish() gets the last byte
    body = data[header_len(data):] + garbage
    n = r.feed(body)
    assert n == len(body) - 1
    assert r.finish(body[n:])["truncated"] is None
    # a last byte that can start an MBO header is still a record cut short
    s = replay_bytes(data + b"\xff" * 5 + b"\x0e").stats
    assert s["truncated"] == {"offset": (len(data) - header_len(data)) + 5, "bytes": 1,
                              "expected": 56}


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_open_dbn_compressed_file_cut_short_raises_eof_after_its_bytes(tmp_path, codec):
    # open_dbn of a .dbn.zst cut short ended as if the file were whole (zstandard's
    # stream_reader stops silently inside a frame), and a cut .dbn.gz likewise: a reader lost
    # the rest of the day without a word, where replay_dbn and itch.open_stream say it is cut
    import gzip

    from matchcore.feeds.dbn import open_dbn

    plain = generate_mbo(None, records=3000, instruments=3, seed=8)
    packed = gzip.compress(plain) if codec == "gzip" else \
        pytest.importorskip("zstandard").ZstdCompressor().compress(plain)
    ext = ".dbn.gz" if codec == "gzip" else ".dbn.zst"
    whole, cut = tmp_path / f"whole{ext}", tmp_path / f"cut{ext}"
    whole.write_bytes(packed)
    cut.write_bytes(packed[:len(packed) * 2 // 3])
    with open_dbn(whole) as f:
        assert f.read() == plain
    got = bytearray()
    with open_dbn(cut) as f, pytest.raises(EOFError, match="cut short"):
        while chunk := f.read(4096):
            got += chunk
    assert len(got) < len(plain) and plain.startswith(bytes(got))
    assert is_dbn(cut)


def _dbn_body() -> bytes:
    import io

    data = generate_mbo(None, records=300, instruments=2, seed=8)
    body = data[read_metadata(io.BytesIO(data)).header_bytes:]
    return body[: len(body) // 8 * 8]


_BODY = _dbn_body()


@pytest.mark.parametrize("make", [
    lambda: np.frombuffer(_BODY, np.uint8),
    lambda: np.frombuffer(_BODY, np.uint16),
    lambda: np.frombuffer(_BODY, ">u4"),
    lambda: np.frombuffer(_BODY, np.float64),
    lambda: np.frombuffer(_BODY, np.uint8).reshape(8, -1),
    lambda: memoryview(np.frombuffer(_BODY, np.int32)),
    lambda: np.zeros(0, np.uint16),
    lambda: np.frombuffer(_BODY, np.uint8)[::2],
    lambda: memoryview(_BODY)[::2],
    lambda: [1, 2, 3],
    lambda: None,
], ids=["u8", "u16", "be_u4", "f8", "2d", "mv_i4", "empty_u16", "strided_u8", "strided_mv",
        "list", "none"])
def test_dbn_replayer_feed_and_finish_same_inputs_taken_and_refused(make):
    # feed() refused every numpy array but uint8 ("Buffer dtype mismatch") and a strided
    # slice with memoryview's BufferError, where finish() took both (as itch.Replayer's
    # feed and finish do, any C-contiguous buffer read as its bytes)
    buf = make()
    r = DbnReplayer()
    fed = outcome(lambda: r.feed(buf))
    r2 = DbnReplayer()
    fin = outcome(lambda: r2.finish(buf)["messages"])
    assert fed[0] == fin[0], (fed, fin)
    if fed[0] == "ok":
        raw = memoryview(buf).tobytes()
        ref = DbnReplayer()
        assert fed[1] == ref.feed(raw)
        assert r.stats["messages"] == ref.stats["messages"]
        assert fin[1] == DbnReplayer().finish(raw)["messages"]
    else:
        assert fed[1] == fin[1]
        assert r.stats["messages"] == 0


def test_dbn_replay_publishers_keep_books_apart_and_match_reference():
    # Three venues trade the same instruments with order ids of their own: one book per
    # instrument id mixed them (a venue's add of an id another venue has resting was counted
    # duplicate, its clear emptied the other venues' orders). A book per (publisher, id).
    data = generate_mbo(None, records=6000, instruments=2, seed=4, clear_rate=0.002,
                        publishers=3)
    r = replay_bytes(data)
    ref = RefReplay().feed_records(records_of(data, header_len(data)))
    assert r.stats["books"] == 6 and r.stats["duplicate_refs"] == 0
    assert_books_equal(r, ref)
    assert_counters_equal(r, ref)
    assert_sinks_equal(r, ref)
    assert sorted(zip(r.publishers.values(), r.instruments.values())) == [
        (p, i) for p in (1, 2, 3) for i in (1001, 1002)]
    with pytest.raises(ValueError, match=r"'SYM0' is carried by books of several publishers "
                                         r"\(instrument 1001 of publisher \d"):
        r.book("SYM0")
    with pytest.raises(ValueError, match="publisher="):
        r.book(1001)
    for L, ob in r.books.items():
        assert r.book(r.symbols[L], publisher=r.publishers[L]) is ob
        assert r.book(r.instruments[L], publisher=r.publishers[L]) is ob
    with pytest.raises(KeyError, match="of publisher 4"):
        r.book("SYM0", publisher=4)
    # a name selects that instrument's books of every publisher
    f = replay_bytes(data, symbols=["SYM1"])
    assert sorted((f.publishers[L], f.instruments[L]) for L in f.books) == [
        (1, 1002), (2, 1002), (3, 1002)]


@pytest.mark.parametrize("last", [b"\x00", b"\x03"])
def test_dbn_replay_last_byte_of_a_length_under_16_is_a_bad_header_not_truncated(last):
    # A last byte giving a record length under 16 (0 or 12 bytes) starts no record: it was
    # reported as a record cut short, where the same byte before another is a bad header
    data = generate_mbo(None, records=100, instruments=1, seed=2)
    s = replay_bytes(data + last).stats
    assert (s["messages"], s["bad_records"], s["bytes_skipped"], s["truncated"]) == \
        (100, 1, 1, None)
    assert s["first_bad_offset"] == len(data) - header_len(data)


def test_dbn_replayer_fed_a_metadata_header_refused_nothing_consumed():
    # The records come after the metadata: a whole file fed to feed() was one bad record, and
    # with ts_out every record after it was skipped as damage (0 records, no error).
    data = generate_mbo(None, records=50, instruments=2, seed=4, ts_out=True)
    for call in ("feed", "finish"):
        r = DbnReplayer(ts_out=True)
        with pytest.raises(ValueError, match="starts with a DBN metadata header"):
            getattr(r, call)(data)
        assert r.stats["bytes_consumed"] == 0 and r.stats["bad_records"] == 0
    import io

    r = DbnReplayer(ts_out=True)
    h = read_metadata(io.BytesIO(data)).header_bytes
    assert r.feed(data[h:]) == len(data) - h and r.stats["messages"] == 50
