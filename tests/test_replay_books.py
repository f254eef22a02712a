"""The compiled ITCH replay against the pure-Python reference builder, and its sinks."""
from __future__ import annotations

import gzip
import random
import re
import struct
from pathlib import Path

import numpy as np
import pytest

import matchcore.itch as itch
from matchcore.itch.reference import ReferenceReplay

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "itch"
AAPL = DATA / "aapl-20191230-0935.itch50"
RITCH = DATA / "ritch-ex20101224-zero-prefix.itch50"
HEAD = DATA / "nasdaq-head-4096B-truncated.itch50"
MEATPY = DATA / "meatpy-synthetic.itch50"


def shared_file(path: Path) -> bytes:
    if not path.exists():
        pytest.skip(f"shared market data not found at {path} (expected ../shared/data beside the repo)")
    return path.read_bytes()


# ---- message builders (struct, from the specification) ----

def _hdr(t, locate, ts):
    return struct.pack(">cHH", t, locate, 0) + ts.to_bytes(6, "big")


def framed(*msgs):
    return b"".join(len(m).to_bytes(2, "big") + m for m in msgs)


def add(ref, side, shares, price, locate=1, ts=1, stock=b"TEST", mpid=None):
    body = struct.pack(">QcI8sI", ref, side, shares, stock.ljust(8), price)
    return _hdr(b"F" if mpid else b"A", locate, ts) + body + (mpid or b"")


def execute(ref, shares, match=1, locate=1, ts=2):
    return _hdr(b"E", locate, ts) + struct.pack(">QIQ", ref, shares, match)


def execute_price(ref, shares, price, printable=b"Y", match=1, locate=1, ts=2):
    return _hdr(b"C", locate, ts) + struct.pack(">QIQcI", ref, shares, match, printable, price)


def cancel(ref, shares, locate=1, ts=2):
    return _hdr(b"X", locate, ts) + struct.pack(">QI", ref, shares)


def delete(ref, locate=1, ts=2):
    return _hdr(b"D", locate, ts) + struct.pack(">Q", ref)


def replace(old, new, shares, price, locate=1, ts=2):
    return _hdr(b"U", locate, ts) + struct.pack(">QQII", old, new, shares, price)


def trade(side, shares, price, locate=1, ts=3, match=9, stock=b"TEST"):
    return _hdr(b"P", locate, ts) + struct.pack(">QcI8sIQ", 0, side, shares, stock.ljust(8), price, match)


def cross(shares, price, kind=b"O", locate=1, ts=4, match=10, stock=b"TEST"):
    return _hdr(b"Q", locate, ts) + struct.pack(">Q8sIQc", shares, stock.ljust(8), price, match, kind)


def frames(data: bytes):
    """Messages of a well-formed, standard-framed buffer, in order (test-side framing)."""
    pos = 0
    while pos + 3 <= len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        yield data[pos + 2:pos + 2 + n]
        pos += 2 + n


def replay(data: bytes, **kw) -> itch.Replayer:
    r = itch.Replayer(**kw)
    n = r.feed(data)
    r.finish(data[n:])
    return r


def reference(data: bytes, infer: bool = False) -> ReferenceReplay:
    ref = ReferenceReplay(infer_lengths=infer)
    ref.feed(data)
    return ref


def check_all(r):
    for book in r.books.values():
        book.check_invariants(allow_crossed=True)


# ---- shared real files ----

def test_replay_aapl_matches_provenance_and_reference_books():
    data = shared_file(AAPL)
    r = replay(data)
    s = r.stats
    assert s["messages"] == 49_947
    assert s["counts"] == {"A": 22_121, "D": 24_150, "E": 2_162, "U": 1_130, "P": 281, "X": 98,
                           "C": 4, "F": 1}
    assert s["unknown_refs"] == 3_970
    assert s["truncated"] is None and s["bad_lengths"] == 0
    book = r.books[13]
    assert book.level_count(0) + book.level_count(1) == 177
    assert r.symbols == {13: "AAPL"}
    ref = reference(data)
    assert ref.unknown_refs == 3_970
    assert (s["executions_clamped"], s["cancels_clamped"]) == (ref.executions_clamped, ref.cancels_clamped)
    assert ref.diff(r) is None
    check_all(r)


def test_replay_ritch_zero_prefix_with_infer_lengths_117_unknown_refs_books_equal():
    data = shared_file(RITCH)
    r = replay(data, infer_lengths=True)
    assert r.stats["messages"] == 12_012
    assert r.stats["unknown_refs"] == 117
    assert r.stats["truncated"] is None
    assert sorted(r.symbols.values()) == ["ALC", "BOB", "CHAR"]
    ref = reference(data, infer=True)
    assert ref.unknown_refs == 117
    assert ref.diff(r) is None
    check_all(r)


def test_replay_ritch_without_infer_lengths_reports_zero_prefix_at_offset_0():
    r = replay(shared_file(RITCH))
    assert r.stats["bad_length_offsets"][0] == (0, "zero length prefix")
    check_all(r)


def test_replay_truncated_head_101_messages_truncation_at_4081():
    r = replay(shared_file(HEAD))
    assert r.stats["messages"] == 101
    assert r.stats["truncated"] == {"offset": 4_081, "bytes": 15, "expected": 41}
    assert r.trading_state == {1: ("T", "", 11_314_237_599_076)}
    assert r.system_events["code"].tolist() == [b"O"]
    assert len(r.symbols) == 98 and r.symbols[1] == "A" and r.symbols[3] == "AAAU"


def test_replay_meatpy_synthetic_books_equal_reference():
    data = shared_file(MEATPY)
    r = replay(data)
    assert r.stats["messages"] == 20
    assert r.symbols == {1: "MEAT", 2: "PYTH"}
    assert r.system_events["code"].tolist() == [b"O", b"S", b"Q", b"M", b"E", b"C"]
    assert reference(data).diff(r) is None


# ---- generated files ----

# 450 symbols: from 400 books on the replay looks further ahead (lookahead_deep)
@pytest.mark.parametrize("seed,symbols", [(1, 1), (2, 7), (3, 40), (4, 450)])
def test_replay_generated_books_equal_reference_symbol_by_symbol(seed, symbols):
    data = itch.generate(None, messages=40_000, symbols=symbols, seed=seed)
    r = replay(data)
    ref = reference(data)
    assert r.stats["unknown_refs"] == ref.unknown_refs == 0
    assert r.stats["executions_clamped"] == 0 and r.stats["duplicate_refs"] == 0
    assert len(r.books) == symbols
    assert ref.diff(r) is None
    for book in r.books.values():
        book.check_invariants()          # the generator never crosses a book


def test_generate_same_seed_same_bytes_other_seed_differs():
    a = itch.generate(None, messages=20_000, symbols=5, seed=9)
    assert a == itch.generate(None, messages=20_000, symbols=5, seed=9)
    assert a != itch.generate(None, messages=20_000, symbols=5, seed=10)
    d = itch.decode(a)
    assert d.stats["messages"] == 20_000 and d.stats["truncated"] is None
    assert set(d.stats["counts"]) >= set("SRHAFEXDUCPQIB")


def test_generate_file_equals_bytes(tmp_path):
    path = itch.generate(tmp_path / "g.itch", messages=30_000, symbols=3, seed=4)
    assert path.read_bytes() == itch.generate(None, messages=30_000, symbols=3, seed=4)


def test_generate_too_few_messages_for_the_symbols_raises():
    with pytest.raises(ValueError, match="at least"):
        itch.generate(None, messages=10, symbols=5)


def test_symbol_names_are_the_names_generate_gives_that_many_symbols():
    data = itch.generate(None, messages=2_000, symbols=30, seed=2)
    names = [bytes(s).decode().strip() for s in itch.decode(data)["R"]["stock"]]
    assert itch.symbol_names(30) == names


@pytest.mark.parametrize("k, error", [(-1, ValueError), (0, ValueError), (65536, ValueError),
                                      (1.5, TypeError), ("3", TypeError)])
def test_symbol_names_count_generate_refuses_refused_alike(k, error):
    # -1 gave 23 names (a slice of the well-known tickers), 1.5 the names of 1 symbol, 65536
    # names of locates no day has: counts generate refuses
    with pytest.raises(error, match="symbols"):
        itch.generate(None, messages=1_000_000, symbols=k)
    with pytest.raises(error, match="symbols"):
        itch.symbol_names(k)


@pytest.mark.parametrize("symbols", [6, 450])
def test_replay_chunked_feeds_equal_one_feed(symbols):
    data = itch.generate(None, messages=30_000, symbols=symbols, seed=5)
    whole = replay(data, snapshot_every=1000)
    rng = random.Random(1)
    r = itch.Replayer(snapshot_every=1000)
    tail, pos = b"", 0
    while pos < len(data):
        k = rng.randrange(1, 4000)
        buf = tail + data[pos:pos + k]
        pos += k
        tail = buf[r.feed(buf):]
    r.finish(tail)
    assert r.stats == whole.stats
    for name in ("tob", "trades", "snapshots"):
        assert np.array_equal(getattr(r, name)(), getattr(whole, name)()), name
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in whole.books.items()}


def test_replay_file_gzip_equals_plain(tmp_path):
    data = itch.generate(None, messages=50_000, symbols=4, seed=6)
    plain = tmp_path / "d.itch"
    plain.write_bytes(data)
    gz = tmp_path / "d.itch.gz"
    with gzip.open(gz, "wb") as f:
        f.write(data)
    a = itch.replay_file(plain, chunk_size=1 << 17)
    b = itch.replay_file(gz, chunk_size=1 << 17)
    assert a.stats == b.stats and a.stats["messages"] == 50_000
    assert np.array_equal(a.tob(), b.tob())
    assert reference(data).diff(b) is None


def test_replay_file_truncated_reports_offset(tmp_path):
    data = itch.generate(None, messages=1000, symbols=2, seed=1)
    p = tmp_path / "cut.itch"
    p.write_bytes(data[:-7])
    r = itch.replay_file(p)
    assert r.stats["messages"] == 999
    assert r.stats["truncated"]["offset"] == len(data) - 12 - 2
    assert r.stats["truncated"]["bytes"] == 7


# ---- replay rules on hand-built messages ----

def test_replay_ref_looked_up_in_message_locate_wrong_locate_unknown_book_unchanged():
    data = framed(add(1, b"B", 100, 1000000, locate=5, stock=b"FIVE"),
                  add(3, b"S", 10, 1000200, locate=6, stock=b"SIX"),
                  execute(1, 30, locate=0), cancel(1, 20, locate=7), replace(1, 2, 40, 1000100, locate=9),
                  delete(1, locate=6), execute(3, 5, locate=5))
    r = replay(data)
    assert r.stats["unknown_refs"] == 5
    assert r.books[5].get(1) == (0, 1000000, 100) and r.books[5].get(2) is None
    assert r.books[6].get(3) == (1, 1000200, 10)
    assert sorted(r.books) == [5, 6] and len(r.trades()) == 0
    assert r.symbols == {5: "FIVE", 6: "SIX"}
    ref = reference(data)
    assert ref.unknown_refs == 5
    assert ref.depth(5) == ([(1000000, 100, 1)], []) and ref.depth(6) == ([], [(1000200, 10, 1)])


def test_replay_unknown_refs_counted_and_skipped():
    data = framed(add(1, b"S", 100, 5000), execute(77, 10), cancel(78, 1), delete(79),
                  replace(80, 81, 10, 5000), execute_price(82, 1, 5000))
    r = replay(data)
    assert r.stats["unknown_refs"] == 5
    assert len(r.books[1]) == 1 and len(r.trades()) == 0


def test_replay_execution_larger_than_open_clamped_and_counted():
    data = framed(add(1, b"S", 100, 5000), execute(1, 60), execute(1, 60), cancel(2, 5),
                  add(2, b"B", 10, 4000), cancel(2, 15))
    r = replay(data)
    assert r.stats["executions_clamped"] == 1 and r.stats["cancels_clamped"] == 1
    assert r.stats["unknown_refs"] == 1
    assert len(r.books[1]) == 0
    assert r.trades()["shares"].tolist() == [60, 40]


def test_replay_trades_prices_kinds_and_flags():
    data = framed(add(1, b"S", 100, 5000), add(2, b"B", 100, 4900),
                  execute(1, 10, match=11, ts=10), execute_price(2, 5, 4950, b"N", match=12, ts=11),
                  trade(b"B", 300, 4990, match=13, ts=12), cross(1000, 4980, b"C", match=14, ts=13))
    t = replay(data).trades()
    assert t["kind"].tolist() == [b"E", b"C", b"P", b"Q"]
    assert t["price"].tolist() == [5000, 4950, 4990, 4980]       # E at the resting order's price
    assert t["shares"].tolist() == [10, 5, 300, 1000]
    assert t["side"].tolist() == [b"S", b"B", b"B", b" "]          # side of the resting order
    assert t["flag"].tolist() == [b" ", b"N", b" ", b"C"]
    assert t["match_number"].tolist() == [11, 12, 13, 14]
    assert t["ref"].tolist() == [1, 2, 0, 0]
    assert t["ts"].tolist() == [10, 11, 12, 13]


def test_symbol_stats_volume_leaves_out_non_printable_executions():
    # a non-printable C is part of a cross whose shares the Q message reports: counted in
    # volume it was counted twice
    data = framed(add(1, b"S", 100, 5000), add(2, b"B", 100, 4900),
                  execute(1, 10, match=11, ts=10), execute_price(2, 5, 4950, b"N", match=12, ts=11),
                  execute_price(2, 7, 4950, b"Y", match=15, ts=11),
                  trade(b"B", 300, 4990, match=13, ts=12), cross(1000, 4980, b"C", match=14, ts=13))
    r = replay(data)
    t = r.trades()
    st = r.symbol_stats()
    assert st["trades"].tolist() == [len(t)] == [5]
    assert st["volume"].tolist() == [10 + 7 + 300 + 1000]
    assert itch.volume_mask(t).tolist() == [True, False, True, True, True]


def test_symbol_stats_volume_equals_volume_mask_on_a_generated_day():
    r = replay(itch.generate(None, messages=40_000, symbols=3, seed=5))
    t = r.trades()
    nonprint = (t["kind"] == b"C") & (t["flag"] == b"N")
    assert nonprint.any(), "the generated day has no non-printable execution to leave out"
    for row in r.symbol_stats():
        mine = t[t["locate"] == row["locate"]]
        assert row["trades"] == len(mine)
        assert row["volume"] == int(mine["shares"][itch.volume_mask(mine)].sum())


def test_replay_replace_new_ref_at_back_same_side_old_gone():
    data = framed(add(1, b"B", 100, 5000), add(2, b"B", 50, 5000), add(3, b"B", 70, 4900),
                  replace(1, 9, 30, 5000), replace(3, 10, 20, 5000))
    b = replay(data).books[1]
    assert b.level(0, 5000) == [(2, 50), (9, 30), (10, 20)]
    assert b.get(1) is None and b.get(3) is None and b.level(0, 4900) == []


def test_replay_invalid_and_duplicate_adds_counted_book_unchanged():
    data = framed(add(1, b"B", 100, 5000), add(1, b"S", 10, 6000), add(2, b"X", 10, 5000),
                  add(3, b"B", 0, 5000), add(4, b"S", 10, 0))
    r = replay(data)
    assert r.stats["duplicate_refs"] == 1 and r.stats["invalid_adds"] == 3
    assert len(r.books[1]) == 1 and r.books[1].get(1) == (0, 5000, 100)


def test_replay_crossed_book_from_exchange_data_kept_as_is():
    data = framed(add(1, b"B", 100, 5100), add(2, b"S", 100, 5000))
    b = replay(data).books[1]
    assert b.best_bid() == (5100, 100) and b.best_ask() == (5000, 100)
    b.check_invariants(allow_crossed=True)


def test_replay_tob_records_every_change_and_only_changes():
    data = framed(add(1, b"B", 100, 5000, ts=1), add(2, b"B", 100, 4900, ts=2),
                  add(3, b"S", 50, 5100, ts=3), execute(1, 100, ts=4), delete(2, ts=5))
    tob = replay(data).tob()
    rows = [tuple(int(x) for x in (r["ts"], r["bid"], r["bid_qty"], r["ask"], r["ask_qty"], r["locate"]))
            for r in tob]
    assert rows == [(1, 5000, 100, 0, 0, 1), (3, 5000, 100, 5100, 50, 1),
                    (4, 4900, 100, 5100, 50, 1), (5, 0, 0, 5100, 50, 1)]


def test_replay_tob_sink_equals_reference_recomputation():
    data = itch.generate(None, messages=15_000, symbols=3, seed=8)
    r = replay(data)
    ref, last, want = ReferenceReplay(), {}, []
    for msg in frames(data):
        loc = ref.apply(msg)
        if loc is not None:
            best = ref.best(loc)
            if last.get(loc, (0, 0, 0, 0)) != best:
                last[loc] = best
                want.append((ref.last_ts, *best, loc))
    got = [tuple(int(x) for x in (t["ts"], t["bid"], t["bid_qty"], t["ask"], t["ask_qty"], t["locate"]))
           for t in r.tob()]
    assert got == want


def _depth_record(ref, loc, depth):
    bids, asks = ref.depth(loc)
    rec = {}
    for side, rows in (("bid", bids), ("ask", asks)):
        rows = rows[:depth] + [(0, 0, 0)] * (depth - len(rows[:depth]))
        rec[side + "_price"] = [p for p, _, _ in rows]
        rec[side + "_qty"] = [q for _, q, _ in rows]
        rec[side + "_orders"] = [c for _, _, c in rows]
    return rec


@pytest.mark.parametrize("mode", ["messages", "time"])
def test_replay_snapshots_equal_reference_depth_at_trigger(mode):
    data = itch.generate(None, messages=12_000, symbols=3, seed=12)
    depth, every, every_ns = 5, 700, 900_000_000_000
    kw = {"snapshot_every": every} if mode == "messages" else {"snapshot_every_ns": every_ns}
    got = replay(data, snapshot_depth=depth, **kw).snapshots()
    ref, dirty, want, i, next_ts = ReferenceReplay(), {}, [], 0, None
    for msg in frames(data):
        ts = int.from_bytes(msg[5:11], "big")
        if mode == "time":
            if next_ts is None:
                next_ts = (ts // every_ns + 1) * every_ns
            elif ts >= next_ts:
                want += [(next_ts, loc, _depth_record(ref, loc, depth)) for loc in dirty]
                dirty = {}
                next_ts = (ts // every_ns + 1) * every_ns
        loc = ref.apply(msg)
        if loc is not None:
            dirty.setdefault(loc, None)
        i += 1
        if mode == "messages" and i % every == 0:
            want += [(ts, loc, _depth_record(ref, loc, depth)) for loc in dirty]
            dirty = {}
    assert len(got) == len(want) > 3
    for rec, (ts, loc, exp) in zip(got, want):
        assert (int(rec["ts"]), int(rec["locate"])) == (ts, loc)
        for k, v in exp.items():
            assert rec[k].tolist() == v, (ts, loc, k)


def test_replay_snapshot_after_unknown_type_first_in_feed_stamped_last_exchange_time():
    # a snapshot triggered by an unknown-type message (which has no timestamp the loop reads)
    # carries the exchange time of the message before it, also when that message ended the
    # previous feed() call: the stamp does not depend on where the pieces end
    unknown = b"Z" + struct.pack(">HH", 1, 0) + (6000).to_bytes(6, "big") + b"xxxx"
    data = framed(add(1, b"B", 100, 1000, ts=5000), unknown, add(2, b"B", 100, 1001, ts=7000))
    whole = replay(data, snapshot_every=2)
    r = itch.Replayer(snapshot_every=2)
    cut = len(framed(add(1, b"B", 100, 1000, ts=5000)))
    assert r.feed(data[:cut]) == cut
    n = r.feed(data[cut:])
    r.finish(data[cut + n:])
    assert r.stats["unknown_types"] == whole.stats["unknown_types"] == {"Z": 1}
    assert whole.snapshots()["ts"].tolist() == [5000]
    assert r.snapshots().tobytes() == whole.snapshots().tobytes()


def test_replay_callback_sees_book_at_every_nth_touch_of_selected_symbol():
    data = itch.generate(None, messages=20_000, symbols=4, seed=13)
    seen = []

    def cb(symbol, book, ts_ns):
        bids, asks = book.depth_orders(3)
        seen.append((symbol, ts_ns, bids.tolist(), asks.tolist()))

    r = replay(data, callback=cb, callback_symbols=["MSFT"], callback_every=250)
    ref, touches, want = ReferenceReplay(), 0, []
    loc_msft = [k for k, v in r.symbols.items() if v == "MSFT"][0]
    for msg in frames(data):
        loc = ref.apply(msg)
        hidden = msg[:1] in (b"P", b"Q") and int.from_bytes(msg[1:3], "big") == loc_msft
        if loc == loc_msft or hidden:
            touches += 1
            if touches % 250 == 0:
                bids, asks = ref.depth(loc_msft)
                want.append(("MSFT", ref.last_ts, [list(x) for x in bids[:3]], [list(x) for x in asks[:3]]))
    assert len(seen) == len(want) > 5
    assert seen == want


def test_replay_callback_books_of_one_name_get_their_labels_each_its_own():
    # two locates carrying one name (locate 2 named AAPL, locate 1's name, mid-day): the
    # callback got "AAPL" for both books, which the caller could not tell apart
    from cli_replay_checks import stock_directory

    data = itch.generate(None, messages=20_000, symbols=3, seed=8)
    pos = 0
    while pos < len(data) // 2:
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    data = data[:pos] + stock_directory(2, "AAPL") + data[pos:]
    seen = []
    r = replay(data, callback=lambda s, b, ts: seen.append((s, b, ts)), callback_every=50)
    by_symbol = {}
    for s, b, ts in seen:
        by_symbol.setdefault(s, set()).add(id(b))
    # before the rename: each book under its own name; after it: the two AAPL books labelled
    assert {s: len(ids) for s, ids in by_symbol.items()} == {
        "AAPL": 1, "MSFT": 1, "AMZN": 1, "AAPL@locate1": 1, "AAPL@locate2": 1}
    books = r.books
    assert by_symbol["AAPL@locate1"] == by_symbol["AAPL"] == {id(books[1])}
    assert by_symbol["AAPL@locate2"] == by_symbol["MSFT"] == {id(books[2])}
    # the labels are the ones the replayer's book() takes, and the names before them come first
    assert r.book("AAPL@locate2") is books[2]
    ts_rename = max(ts for s, _, ts in seen if s == "MSFT")
    assert all(ts >= ts_rename for s, _, ts in seen if "@" in s)
    # with one of the two books selected, the name is its own: no label
    seen.clear()
    replay(data, symbols=["AAPL@locate2"], callback=lambda s, b, ts: seen.append(s),
           callback_every=50)
    assert seen and set(seen) == {"MSFT", "AAPL"}


def test_replay_callback_on_tob_change():
    data = framed(add(1, b"B", 100, 5000), add(2, b"B", 100, 4900), add(3, b"B", 100, 5000))
    calls = []
    replay(data, callback=lambda s, b, ts: calls.append(b.best_bid()), callback_every=0,
           callback_on_tob=True)
    assert calls == [(5000, 100), (5000, 200)]


def test_replay_callback_on_tob_without_tob_sink_still_called_on_each_change():
    # with the TOB sink off, the loop still follows the top of book for the callback
    data = framed(add(1, b"B", 100, 5000), add(2, b"B", 100, 4900), add(3, b"B", 100, 5000),
                  delete(1), delete(3))
    calls = []
    r = replay(data, callback=lambda s, b, ts: calls.append(b.best_bid()), callback_every=0,
               callback_on_tob=True, record_tob=False)
    assert calls == [(5000, 100), (5000, 200), (5000, 100), (4900, 100)]
    assert len(r.tob()) == 0


def test_replay_until_ns_stops_before_later_messages():
    data = itch.generate(None, messages=20_000, symbols=3, seed=14)
    until = itch.parse_time("12:00:00")
    r = itch.Replayer(until_ns=until)
    n = r.feed(data)
    assert r.done and 0 < n < len(data)
    assert r.feed(data[n:]) == 0
    ref = ReferenceReplay()
    ref.feed(data, until_ns=until)
    assert r.stats["messages"] == ref.messages
    assert r.stats["last_ts"] <= until
    assert ref.diff(r) is None


def test_replay_until_ns_takes_the_time_snapshots_up_to_the_stop_time():
    # Adds at 1 s and 5 s, the next message at 12 s, snapshots every 10 s: replayed to 11 s,
    # the boundary at 10 s lies inside the replay and the book changed before it, but its
    # snapshot waited for a message at or after 10 s, which the stop time left out: none was
    # taken. Replayed to 20 s, the 10 s one came (the 12 s message) and the 20 s one did not.
    second = 1_000_000_000

    def at(ref, ts):
        return framed(add(ref, b"B", 10, 1000 + ref, ts=ts * second))

    data = at(1, 1) + at(2, 5) + at(3, 12) + at(4, 25)
    whole = replay(data, snapshot_every_ns=10 * second)
    assert whole.snapshots()["ts"].tolist() == [10 * second, 20 * second]
    for until, stamps in ((11, [10]), (20, [10, 20]), (9, []), (10, [10])):
        r = itch.Replayer(snapshot_every_ns=10 * second, until_ns=until * second)
        r.finish(data)
        assert r.done
        got = r.snapshots()
        assert got["ts"].tolist() == [t * second for t in stamps], until
        # the same records as a replay that goes on past the stop time
        assert (got == whole.snapshots()[:len(got)]).all(), until


def test_replay_symbols_filter_only_selected_books_and_records():
    data = itch.generate(None, messages=20_000, symbols=5, seed=15)
    r = replay(data, symbols=["MSFT", "3"])
    assert sorted(r.books) == [2, 3]
    assert set(r.tob()["locate"].tolist()) == {2, 3}
    assert set(r.trades()["locate"].tolist()) <= {2, 3}
    full = reference(data)
    for loc in (2, 3):
        assert [tuple(map(int, x)) for x in r.books[loc].depth_orders(1 << 20)[0]] == full.depth(loc)[0]
    # only the selected books hold orders; the other locates' order messages are skipped unseen
    assert r.stats["open_orders"] == sum(1 for o in full.orders.values() if o[0] in (2, 3))
    assert r.stats["unknown_refs"] == 0
    assert r.book("MSFT") is r.books[2]
    with pytest.raises(KeyError):
        r.book("AAPL")


def test_replay_symbols_filter_mid_day_counts_only_selected_locates():
    # A file that starts mid-day refers to orders added before it, in locates whose first add
    # comes later: those references were counted unknown whatever the filter kept, and an
    # invalid add of a locate left out was counted too (the counters cover the kept books).
    data = framed(delete(5, locate=2), execute(6, 10, locate=2), delete(7, locate=3),
                  add(1, b"B", 100, 5000, locate=1, stock=b"AAPL"),
                  add(2, b"S", 100, 5100, locate=2, stock=b"MSFT"),
                  add(3, b"X", 100, 5100, locate=2, stock=b"MSFT"),
                  delete(8, locate=1), delete(9, locate=4))
    want = {None: (5, 1), ("AAPL",): (1, 0), ("MSFT",): (2, 1), ("3",): (1, 0), ("004",): (1, 0),
            ("AAPL", "MSFT"): (3, 1), ("NOPE",): (0, 0)}
    for sel, (unknown, invalid) in want.items():
        for r in (replay(data, symbols=None if sel is None else list(sel)),
                  _replay_pieces(data, 7) if sel is None else replay(data, symbols=list(sel))):
            assert (r.stats["unknown_refs"], r.stats["invalid_adds"]) == (unknown, invalid), sel


def test_replay_split_shares_of_mid_day_file_add_up_to_whole(tmp_path):
    from matchcore.cluster.dask import merge_parts, replay_one

    data = framed(delete(5, locate=2), execute(6, 10, locate=2), delete(7, locate=3),
                  add(1, b"B", 100, 5000, locate=1, stock=b"AAPL"),
                  add(2, b"S", 100, 5100, locate=2, stock=b"MSFT"),
                  add(3, b"X", 100, 5100, locate=2, stock=b"MSFT"), delete(9, locate=4))
    path = tmp_path / "mid.itch"
    path.write_bytes(data)
    whole = replay_one(path)
    for n in (2, 3):
        merged = merge_parts([replay_one(path, partition=(k, n)) for k in range(n)])
        assert merged.stats == whole.stats, n
    assert (whole.stats["unknown_refs"], whole.stats["invalid_adds"]) == (4, 1)


def test_replay_system_events_and_trading_state_kept():
    data = itch.generate(None, messages=5_000, symbols=3, seed=16)
    r = replay(data)
    assert r.system_events["code"].tolist() == [b"O", b"S", b"Q", b"M", b"E", b"C"]
    assert {k: v[0] for k, v in r.trading_state.items()} == {1: "T", 2: "T", 3: "T"}


def test_replayer_bad_arguments_raise():
    with pytest.raises(ValueError):
        itch.Replayer(snapshot_every=-1)
    with pytest.raises(ValueError):
        itch.Replayer(snapshot_every=5, snapshot_every_ns=5)
    with pytest.raises(ValueError):
        itch.Replayer(snapshot_depth=0)
    with pytest.raises(TypeError):
        itch.Replayer(callback=5)


@pytest.mark.parametrize("make", [
    pytest.param(lambda **kw: itch.Replayer(**kw), id="Replayer"),
    pytest.param(lambda **kw: __import__("matchcore.feeds.dbn", fromlist=["DbnReplayer"])
                 .DbnReplayer(**kw), id="DbnReplayer"),
])
def test_replayer_snapshot_depth_beyond_record_limit_raises_value_error_naming_it(make,
                                                                                 monkeypatch):
    # A snapshot record is 16 + 48 * depth bytes and numpy describes none beyond 2**31 - 1: a
    # deeper snapshot_depth failed with numpy's unnamed ValueError, a bare MemoryError (its
    # scratch buffer) or an OverflowError not naming the option, even with snapshots off.
    from matchcore._sinks import MAX_SNAPSHOT_DEPTH, snapshot_dtype
    for bad in (MAX_SNAPSHOT_DEPTH + 1, 10**9, 2**31, 2**61, 2**63 - 1):
        with pytest.raises(ValueError, match=rf"snapshot_depth must be at most .*got {bad}$"):
            make(snapshot_depth=bad)
        with pytest.raises(ValueError, match="snapshot_depth"):
            make(snapshot_depth=bad, snapshot_every=100)
    assert snapshot_dtype(MAX_SNAPSHOT_DEPTH).itemsize <= 2**31 - 1
    # the deepest record numpy describes is 2 GiB: taken where memory allows one (a machine
    # of less than 8 GiB refuses it by the memory rule, tested on its own)
    from matchcore import _sinks
    monkeypatch.setattr(_sinks, "_snapshot_memory_limit", lambda: 0)
    make(snapshot_depth=MAX_SNAPSHOT_DEPTH, snapshot_every=100)
    assert make(snapshot_depth=3, snapshot_every=10).snapshots().dtype == snapshot_dtype(3)


@pytest.mark.parametrize("bad, error, words", [
    (0, ValueError, "depth must be in 1..44,739,242"),
    (-1, ValueError, "depth must be in 1..44,739,242"),
    (44_739_243, ValueError, "depth must be in 1..44,739,242"),
    (50_000_000, ValueError, "depth must be in 1..44,739,242"),
    (2**40, ValueError, "depth must be in 1..44,739,242"),
    (5.0, TypeError, "depth"),
    ("5", TypeError, "depth"),
])
def test_snapshot_dtype_depth_outside_a_record_refused_naming_it(bad, error, words):
    # itch.snapshot_dtype(50_000_000) gave a dtype of itemsize -1,894,967,280 (numpy wraps a
    # record past 2**31 - 1 bytes round), whose arrays failed to "allocate -3.53 GiB"; -1 said
    # "dimension smaller then zero", 2**40 "value too large to convert to int", and 5.0 was
    # taken as 5
    with pytest.raises(error, match=re.escape(words)):
        itch.snapshot_dtype(bad)
    assert itch.snapshot_dtype(1).itemsize == 64
    assert itch.snapshot_dtype(44_739_242).itemsize == 16 + 48 * 44_739_242


@pytest.mark.parametrize("make", [
    pytest.param(lambda **kw: itch.Replayer(**kw), id="Replayer"),
    pytest.param(lambda **kw: __import__("matchcore.feeds.dbn", fromlist=["DbnReplayer"])
                 .DbnReplayer(**kw), id="DbnReplayer"),
])
def test_replayer_negative_until_ns_raises_value_error_naming_it(make):
    # The loops read a negative stop time as none: until_ns=-5, before every message, replayed
    # them all (and -1 was None), where it stops before the first message later than it.
    for bad in (-1, -5, -2**63):
        with pytest.raises(ValueError, match=rf"until_ns must be >= 0 .*got {bad}$"):
            make(until_ns=bad)
    assert make(until_ns=0).done is False and make(until_ns=None).done is False


def test_replayer_until_ns_zero_replays_nothing_later():
    data = itch.generate(None, messages=2_000, symbols=2, seed=1)
    r = itch.Replayer(until_ns=0)
    r.feed(data)
    assert r.done and r.stats["messages"] == 0


def test_replayer_options_after_symbols_positional_raise_type_error():
    # 13 options of similar types: a positional slip (a depth where a count was meant) must not
    # configure a replay silently
    with pytest.raises(TypeError):
        itch.Replayer(None, 100)
    r = itch.Replayer(["AAPL"], snapshot_every=100)
    data = itch.generate(None, messages=2_000, symbols=3, seed=1)
    assert r.feed(data) == len(data)
    assert {r.symbols[k] for k in r.books} == {"AAPL"}


def test_replay_sink_records_padding_zero_saved_arrays_deterministic():
    # Every field is written by the loop; the structs' padding must be zero too, or the arrays
    # a replay saves (--out) differ from run to run by heap garbage.
    data = itch.generate(None, messages=60_000, symbols=4, seed=11)
    r = replay(data)
    for arr in (r.tob(), r.trades()):
        assert len(arr) > 1000
        clean = np.zeros(len(arr), dtype=arr.dtype)     # calloc: padding zero too
        for name in arr.dtype.names:
            clean[name] = arr[name]
        assert arr.tobytes() == clean.tobytes()


# ---- resynchronisation after a bad length prefix ----

def _split_frames(data: bytes) -> list[bytes]:
    return [len(m).to_bytes(2, "big") + m for m in frames(data)]


def _spoil_prefix(fr: list[bytes], i: int, prefix: bytes) -> bytes:
    """The frames with message i's length prefix replaced."""
    return b"".join(fr[:i]) + prefix + fr[i][2:] + b"".join(fr[i + 1:])


def _replay_pieces(data: bytes, piece: int) -> itch.Replayer:
    r = itch.Replayer()
    tail = b""
    for k in range(0, len(data), piece):
        buf = tail + data[k:k + piece]
        tail = buf[r.feed(buf):]
    r.finish(tail)
    return r


_FRAMING = ("messages", "counts", "unknown_types", "bad_lengths", "bad_length_offsets",
            "bytes_skipped", "truncated")


def test_replay_zero_prefix_fake_frame_in_body_only_that_message_lost():
    # Message 39 of this day holds, inside its body, a fake frame followed by an unknown type
    # with a 16 KiB "length": the resync must not stop there (the rest was reported truncated)
    # nor skip it as an unknown message (3 frames swallowed, more when fed in pieces).
    fr = _split_frames(itch.generate(None, messages=400, symbols=3, seed=11)) + \
        _split_frames(itch.generate(None, messages=3000, symbols=3, seed=12))
    bad = _spoil_prefix(fr, 39, b"\x00\x00")
    good = b"".join(fr[:39] + fr[40:])
    want = reference(good)
    d = itch.decode(bad)
    assert d.stats["messages"] == len(fr) - 1 and d.stats["truncated"] is None
    assert d.stats["bad_length_offsets"] == [(sum(map(len, fr[:39])), "zero length prefix")]
    assert d.stats["bytes_skipped"] == len(fr[39]) and d.stats["unknown_types"] == {}
    for r in [replay(bad)] + [_replay_pieces(bad, k) for k in (1, 7, 1400, 4096)]:
        assert {k: r.stats[k] for k in _FRAMING} == {k: d.stats[k] for k in _FRAMING}
        assert want.diff(r) is None
        check_all(r)


def test_replay_bad_prefix_anywhere_in_real_file_loses_one_message_whole_or_in_pieces():
    fr = _split_frames(shared_file(AAPL))
    rng = random.Random(3)
    for _ in range(40):
        i = rng.randrange(len(fr) - 1)
        prefix = rng.choice([b"\x00\x00", (len(fr[i]) - 2 + rng.choice([-3, 1, 9])).to_bytes(2, "big")])
        bad = _spoil_prefix(fr, i, prefix)
        d = itch.decode(bad)
        assert d.stats["messages"] == len(fr) - 1, i
        assert (d.stats["bad_lengths"], d.stats["bytes_skipped"]) == (1, len(fr[i])), i
        r = _replay_pieces(bad, rng.randrange(20, 5000))
        assert {k: r.stats[k] for k in _FRAMING} == {k: d.stats[k] for k in _FRAMING}, i


def test_replay_message_cut_short_loses_at_most_its_neighbour_whole_or_in_pieces():
    # A message missing its last bytes puts the framing out of step: the next two bytes read
    # as a prefix mostly have an unknown type, and skipping that by its "length" swallowed up
    # to 64 KiB of good messages of every symbol (or the rest of the file, as "truncated").
    fr = _split_frames(itch.generate(None, messages=6000, symbols=6, seed=1))
    rng = random.Random(8)
    for _ in range(60):
        i = rng.randrange(len(fr) - 2)
        cut = rng.randrange(1, len(fr[i]) - 2)
        bad = b"".join(fr[:i]) + fr[i][:-cut] + b"".join(fr[i + 1:])
        # read at its prefix's length, message i takes in the head of the messages after it:
        # those that start within its length are lost, and so is message i
        j, start = i + 1, len(fr[i]) - cut
        while j < len(fr) and start < len(fr[i]):
            start += len(fr[j])
            j += 1
        d = itch.decode(bad)
        assert d.stats["messages"] >= len(fr) - (j - i), (i, cut)
        assert d.stats["truncated"] is None, (i, cut)
        r = _replay_pieces(bad, rng.randrange(20, 5000))
        assert {k: r.stats[k] for k in _FRAMING} == {k: d.stats[k] for k in _FRAMING}, (i, cut)
        # the books of the symbols none of these messages belongs to are the clean replay's
        lost = {int.from_bytes(fr[k][3:5], "big") for k in range(i, j)}
        want = reference(b"".join(fr[:i] + fr[j:]))
        for loc, book in r.books.items():
            if loc not in lost:
                assert [tuple(map(int, x)) for x in book.depth_orders(1 << 20)[0]] == \
                    want.depth(loc)[0], (i, cut, loc)
                assert [tuple(map(int, x)) for x in book.depth_orders(1 << 20)[1]] == \
                    want.depth(loc)[1], (i, cut, loc)


def test_replay_resync_candidate_at_end_of_stream_accepted_at_finish():
    # After a bad prefix the last message can only be told from garbage by the end of the
    # stream: feed() keeps it back, finish() applies it, as decode() does on the whole buffer.
    data = framed(add(1, b"B", 100, 5000), add(2, b"S", 10, 6000), delete(1))
    fr = _split_frames(data)
    bad = _spoil_prefix(fr, 1, b"\x00\x00")
    r = itch.Replayer()
    n = r.feed(bad)
    assert n == len(bad) - len(fr[2])
    s = r.finish(bad[n:])
    d = itch.decode(bad)
    assert s["messages"] == d.stats["messages"] == 2 and s["truncated"] is None
    assert s["bytes_consumed"] == len(bad) and len(r.books[1]) == 0


# ---- invalid replaces and zero-share reductions change nothing and are counted ----

_BASE = (add(1, b"B", 100, 1000), add(2, b"S", 50, 1010))


@pytest.mark.parametrize("bad, counter", [
    (replace(1, 2, 70, 1005), "duplicate_refs"),        # the new reference is already open
    (replace(1, 3, 0, 1005), "invalid_replaces"),       # zero shares
    (replace(1, 3, 70, 0), "invalid_replaces"),         # zero price
    (execute(1, 0), "invalid_reductions"),
    (cancel(1, 0), "invalid_reductions"),
    (execute_price(1, 0, 1000), "invalid_reductions"),
], ids=["U-new-ref-open", "U-zero-shares", "U-zero-price", "E-zero", "X-zero", "C-zero"])
def test_replay_invalid_replace_or_zero_share_reduction_counted_book_unchanged(bad, counter):
    data = framed(*_BASE, bad)
    r = replay(data)
    assert r.stats[counter] == 1
    assert r.books[1].get(1) == (0, 1000, 100) and r.books[1].get(2) == (1, 1010, 50)
    assert r.books[1].get(3) is None and len(r.trades()) == 0
    assert sum(r.stats[k] for k in ("unknown_refs", "duplicate_refs", "invalid_adds",
                                    "invalid_replaces", "invalid_reductions")) == 1
    ref = reference(data)
    assert getattr(ref, counter) == 1 and ref.invalid_adds == 0
    assert ref.diff(r) is None
    # the book is the one built from the valid messages alone
    assert reference(framed(*_BASE)).diff(r) is None


def test_replay_replace_to_own_reference_is_valid():
    data = framed(*_BASE, replace(1, 1, 30, 995))
    r = replay(data)
    assert r.books[1].get(1) == (0, 995, 30) and r.stats["duplicate_refs"] == 0
    assert reference(data).diff(r) is None


# ---- a gzip file cut short is replayed as far as it goes, and reported ----

def test_replay_file_gzip_cut_short_replays_prefix_reports_stream_end(tmp_path):
    raw = shared_file(AAPL)
    gz = gzip.compress(raw)
    cut = tmp_path / "cut.itch.gz"
    cut.write_bytes(gz[: len(gz) // 2])
    for chunk in (1 << 17, itch.CHUNK_SIZE):
        r = itch.replay_file(cut, chunk_size=chunk)
        s = r.stats
        t = s["truncated"]
        assert t["stream"].startswith("gzip stream ended before its end marker")
        got = t["offset"] + t["bytes"]               # the decompressed bytes the file held
        assert 0 < s["messages"] < 49_947 and got < len(raw)
        # the messages before the cut, exactly as a plain file cut there would give them
        want = replay(raw[:got])
        assert {k: s[k] for k in ("messages", "counts", "unknown_refs", "open_orders")} == \
            {k: want.stats[k] for k in ("messages", "counts", "unknown_refs", "open_orders")}
        assert (t["offset"], t["bytes"]) == (want.stats["truncated"]["offset"],
                                             want.stats["truncated"]["bytes"])
        d = itch.decode(cut, chunk_size=chunk)
        assert d.stats["messages"] == s["messages"] and d.stats["truncated"] == t


def _through_pipe(data: bytes, run):
    """``run(path)`` on a path that reads ``data`` from a pipe (a thread writes it), as
    ``... | matchcore replay /dev/stdin`` gives: no seeking, no second open."""
    import os
    import threading

    r, w = os.pipe()

    def write():
        with os.fdopen(w, "wb") as f:
            try:
                f.write(data)
            except BrokenPipeError:
                pass

    t = threading.Thread(target=write, daemon=True)
    t.start()
    try:
        return run(f"/dev/fd/{r}")
    finally:
        os.close(r)
        t.join(10)


def test_replay_file_gzip_cut_short_from_pipe_replays_all_it_holds_like_file(tmp_path):
    import zlib

    raw = shared_file(AAPL)
    gz = gzip.compress(raw)
    data = gz[: len(gz) * 2 // 3]
    cut = tmp_path / "cut.itch.gz"
    cut.write_bytes(data)
    held = len(zlib.decompressobj(31).decompress(data))    # every byte the cut stream holds
    from_file = itch.replay_file(cut, chunk_size=1 << 17)
    for chunk in (1 << 17, itch.CHUNK_SIZE):
        r = _through_pipe(data, lambda path: itch.replay_file(path, chunk_size=chunk))
        t = r.stats["truncated"]
        assert t["stream"].startswith("gzip stream ended before its end marker")
        assert t["offset"] + t["bytes"] == held
        assert t == from_file.stats["truncated"]
        assert {k: r.stats[k] for k in ("messages", "counts", "unknown_refs", "open_orders")} == \
            {k: from_file.stats[k] for k in ("messages", "counts", "unknown_refs", "open_orders")}
        assert r.book(13).state_hash() == from_file.book(13).state_hash()
        d = _through_pipe(data, lambda path: itch.decode(path, chunk_size=chunk))
        assert d.stats["messages"] == r.stats["messages"] and d.stats["truncated"] == t
    # a whole gzip stream and a plain one through a pipe: as from the file
    for whole in (gz, raw):
        r = _through_pipe(whole, itch.replay_file)
        assert r.stats["messages"] == 49_947 and r.stats["truncated"] is None
        assert r.stats["unknown_refs"] == 3_970


def test_replay_file_gzip_concatenated_members_and_zero_padding_read_whole(tmp_path):
    raw = shared_file(AAPL)
    cut = 0
    while cut < len(raw) // 2:                  # a message boundary near the middle
        cut += 2 + struct.unpack_from(">H", raw, cut)[0]
    p = tmp_path / "members.itch.gz"
    p.write_bytes(gzip.compress(raw[:cut]) + bytes(64) + gzip.compress(b"")
                  + gzip.compress(raw[cut:]) + bytes(5))
    r = itch.replay_file(p)
    assert r.stats["messages"] == 49_947 and r.stats["truncated"] is None
    assert r.book(13).state_hash() == replay(raw).book(13).state_hash()
    p.write_bytes(gzip.compress(raw) + b"not gzip")
    with pytest.raises(ValueError, match=r"trailing data after the gzip stream \(at compressed "
                                         r"byte [0-9,]+; 49,947 messages replayed\)"):
        itch.replay_file(p)


def test_replay_file_gzip_magic_only_reports_stream_end(tmp_path):
    p = tmp_path / "magic.itch.gz"
    p.write_bytes(b"\x1f\x8b")
    s = itch.replay_file(p).stats
    assert s["messages"] == 0
    assert s["truncated"]["bytes"] == 0 and "gzip stream ended" in s["truncated"]["stream"]
    assert itch.decode(p).stats["truncated"] == s["truncated"]


def test_replay_file_gzip_damaged_body_raises_clear_error(tmp_path):
    gz = bytearray(gzip.compress(itch.generate(None, messages=3000, symbols=2, seed=4)))
    gz[40:80] = bytes(40)
    p = tmp_path / "bad.itch.gz"
    p.write_bytes(bytes(gz))
    with pytest.raises((ValueError, OSError), match="gzip"):
        itch.replay_file(p)


def test_replayer_feed_after_finish_refused_books_and_stats_unchanged():
    # finish() frames the last bytes as the end of the stream and reports a cut there; bytes
    # fed after it used to be applied behind that report, and the tail it had called
    # truncated was silently dropped
    data = itch.generate(None, messages=4_000, symbols=2, seed=3)
    cut = len(data) - 5
    r = itch.Replayer()
    n = r.feed(data[:cut])
    stats = r.finish(data[n:cut])
    assert stats["truncated"] is not None
    hashes = {k: b.state_hash() for k, b in r.books.items()}
    for call in (lambda: r.feed(data[cut:]), lambda: r.finish(data[cut:]), lambda: r.finish()):
        with pytest.raises(ValueError, match=r"after finish\(\): the stream has ended"):
            call()
    assert r.stats == stats
    assert {k: b.state_hash() for k, b in r.books.items()} == hashes


@pytest.mark.parametrize("symbols", ["AAPL", b"AAPL"])
def test_replayer_symbols_given_as_one_string_type_error(symbols):
    # iterated as letters, "AAPL" matched no symbol: a replay with no books, no error
    with pytest.raises(TypeError, match="not a single"):
        itch.Replayer(symbols)
    with pytest.raises(TypeError, match="not a single"):
        itch.Replayer(callback=lambda *a: None, callback_symbols=symbols)


@pytest.mark.parametrize("symbols", [[""], ["AAPL", "  "], [" "]])
def test_replayer_symbols_with_an_empty_name_value_error(symbols):
    # a blank entry matched no book: a replay of nothing (or less than asked), no error
    with pytest.raises(ValueError, match="empty name"):
        itch.Replayer(symbols)
    with pytest.raises(ValueError, match="empty name"):
        itch.Replayer(callback=lambda *a: None, callback_symbols=symbols)


@pytest.mark.parametrize("entry", [b"AAPL", 1.0, None, True])
def test_replayer_symbols_entry_neither_name_nor_number_type_error(entry):
    # str() of it ("b'AAPL'", "1.0", "None", "True") matched no book: a replay of nothing
    with pytest.raises(TypeError, match=r"symbols holds .*: a name is a str, a number an int"):
        itch.Replayer(["AAPL", entry])
    r = itch.Replayer([np.int64(2), "1"])             # a numpy integer is a number
    r.feed(itch.generate(None, messages=3000, symbols=3, seed=4))
    assert sorted(r.books) == [1, 2]


def test_replayer_symbols_locate_with_leading_zeros_matches_the_locate():
    data = itch.generate(None, messages=3000, symbols=3, seed=4)
    plain, padded = itch.Replayer(["2"]), itch.Replayer(["002", " 0002 "])
    plain.feed(data)
    padded.feed(data)
    assert sorted(padded.books) == sorted(plain.books) == [2]
    assert padded.books[2].state_hash() == plain.books[2].state_hash()


def _replay_resident(data, locates):
    """Replay ``data`` (books only); returns the replayer and the resident bytes it grew by,
    after checking the books of ``locates`` against the reference."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/statm")

    def resident():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    r = itch.Replayer(record_tob=False, record_trades=False)
    before = resident()
    r.feed(data)
    r.finish()
    grown = resident() - before
    want = ReferenceReplay()
    want.feed(data)
    for loc in locates:                         # and the books are the same books
        got = r.book(loc).depth_orders(1 << 20)
        assert [[tuple(map(int, lv)) for lv in side] for side in got] == \
            [[tuple(map(int, lv)) for lv in side] for side in want.depth(loc)]
    return r, grown


def test_replayer_many_quiet_symbols_small_books_by_default():
    # Each book was made with room for 1,024 orders, about 132 KB resident whatever it held: a
    # day of 10,000 mostly quiet symbols took 1.3 GB before its first busy book grew
    data = itch.generate(None, messages=30_000, symbols=2_000, seed=3)
    r, grown = _replay_resident(data, (1, 777, 2_000))
    assert len(r.books) == 2_000
    assert grown < 2_000 * 40_000, grown        # about 22 KB a book; 264 MB before


def test_replayer_growing_books_of_many_symbols_keep_a_lean_id_index():
    # A replay book that outgrew its pool got the per-call path's roomy id index (8 entries a
    # slot): 50 KB a book of ~120 orders, and 500 books no longer fit in cache. From 400 books
    # on (sk_many_books) the index grows at load <= 1/2: 35 KB a book.
    data = itch.generate(None, messages=300_000, symbols=500, seed=3)
    r, grown = _replay_resident(data, (1, 250, 500))
    assert len(r.books) == 500 and r.stats["open_orders"] > 500 * 64   # they did grow
    assert grown < 500 * 43_000, grown


def test_replayer_cross_trade_shares_beyond_int64_counted_not_a_negative_trade():
    # a Q's share count is 8 bytes: 2**64 - 1 was stored as a trade of -1 shares
    def frame(m):
        return len(m).to_bytes(2, "big") + m

    def hdr(t, loc, ts):
        return struct.pack(">cHH", t, loc, 0) + ts.to_bytes(6, "big")

    add = hdr(b"A", 1, 1) + struct.pack(">QcI8sI", 1, b"B", 100, b"X".ljust(8), 5000)

    def cross(shares, ts):
        return hdr(b"Q", 1, ts) + struct.pack(">Q8sIQc", shares, b"X".ljust(8), 5000, 7, b"O")

    r = itch.Replayer()
    r.feed(frame(add) + frame(cross(2**64 - 1, 2)) + frame(cross(2**63, 3))
           + frame(cross(2**63 - 1, 4)))
    r.finish()
    assert r.stats["invalid_trades"] == 2
    assert r.trades()["shares"].tolist() == [2**63 - 1]
    st = r.symbol_stats()
    assert st["trades"].tolist() == [1] and st["volume"].tolist() == [2**63 - 1]


def test_replayer_book_name_two_locates_carry_value_error_label_or_locate_gives_each():
    r = replay(framed(add(1, b"B", 100, 1000, locate=1, stock=b"TEST"),
                      add(2, b"S", 50, 1010, locate=2, stock=b"TEST"),
                      add(3, b"S", 70, 1020, locate=2, stock=b"TEST"),
                      add(4, b"B", 10, 900, locate=3, stock=b"OTHER")))
    assert r.symbols == {1: "TEST", 2: "TEST", 3: "OTHER"}
    # it returned locate 1's book for the name: the other book's two orders were not there
    with pytest.raises(ValueError, match="carried by locates 1, 2: ask for one of "
                                         "TEST@locate1, TEST@locate2"):
        r.book("TEST")
    assert r.book("TEST@locate2") is r.books[2] and len(r.book("TEST@locate2")) == 2
    assert r.book("TEST@locate01") is r.books[1] and r.book(2) is r.books[2]
    assert r.book("OTHER") is r.books[3] and r.book("3") is r.books[3]
    for bad in ("TEST@locate3", "OTHER@locate1", "TEST@locate"):
        with pytest.raises(KeyError):
            r.book(bad)


@pytest.mark.parametrize("empty", [[], (), set(), iter([])])
def test_replayer_symbols_empty_refused_naming_the_argument(empty, tmp_path):
    # it kept no book while a NATS consumer took symbols=[] for every symbol
    with pytest.raises(ValueError, match="symbols is empty"):
        itch.Replayer(empty)
    with pytest.raises(ValueError, match="callback_symbols is empty"):
        itch.Replayer(callback=lambda *a: None, callback_symbols=empty)
    with pytest.raises(ValueError, match="symbols is empty"):
        itch.replay_file(itch.generate(tmp_path / "d.itch", messages=500, symbols=2, seed=1),
                         symbols=empty)


@pytest.mark.timeout(120)
def test_replay_file_unknown_frames_beyond_small_chunk_replayed_not_hung(tmp_path):
    # An unknown-type message is taken once up to 16 such frames lead on, and a resync
    # candidate after a bad prefix likewise: the framing may need about 1 MiB beyond a
    # frame. With a chunk under that, replay_file and decode refilled the same full buffer
    # for ever (chunk_size=128 KiB is allowed).
    data = itch.generate(None, messages=2000, symbols=2, seed=3)
    k = len(data) // 2
    while k < len(data):                      # a message boundary in the middle
        d = itch.decode(data[:k])
        if d.stats["truncated"] is None:
            break
        k += 1
    unknown = b"".join(struct.pack(">H", 65_000) + b"Z" + bytes(64_999) for _ in range(5))
    bad = b"\x00\x05\x01abcd"              # a type byte that is no letter: a bad prefix
    add = struct.pack(">HcHH6sQcI8sI", 36, b"A", 1, 0, bytes(6), 1 << 40, b"B", 100,
                      b"AAPL    ", 1000)       # then the resync candidate, unknown frames after
    for body in (data[:k] + unknown + data[k:],
                 data[:k] + bad + add + unknown + data[k:]):
        path = tmp_path / "day.itch"
        path.write_bytes(body)
        whole = replay(body)
        for chunk in (1 << 17, itch.CHUNK_SIZE):
            r = itch.replay_file(path, chunk_size=chunk)
            assert r.stats["counts"] == whole.stats["counts"] and r.stats["counts"]["Z"] == 5
            assert r.stats["bad_lengths"] == whole.stats["bad_lengths"]
            assert r.stats["open_orders"] == whole.stats["open_orders"]
            d = itch.decode(path, chunk_size=chunk)
            assert d.stats == itch.decode(body).stats


def test_replay_deep_snapshot_depth_snapshots_recorded_not_dropped():
    # The snapshot sink's first growth made room for 1024 records whatever their size: at
    # snapshot_depth=1,000,000 (48 MB a record, within the documented bound) that was 48 GB,
    # never allocated, so every snapshot was dropped into out_of_memory (at 100,000 levels,
    # 4.9 GB were allocated and zeroed for a few records).
    data = itch.generate(None, messages=3000, symbols=1, seed=5)
    shallow = replay(data, snapshot_every=3000, snapshot_depth=10)
    deep = replay(data, snapshot_every=3000, snapshot_depth=1_000_000)
    assert deep.stats["out_of_memory"] == 0
    a, b = shallow.snapshots(), deep.snapshots()
    assert len(a) == len(b) == 1
    for col in ("bid_price", "bid_qty", "bid_orders", "ask_price", "ask_qty", "ask_orders"):
        assert b[col][0][:10].tolist() == a[col][0].tolist()
        assert not b[col][0][10:].any()


@pytest.mark.parametrize("hook", ["progress", "on_chunk"])
@pytest.mark.parametrize("fmt", ["itch", "dbn"])
def test_replay_file_hook_not_callable_refused_before_reading(tmp_path, fmt, hook):
    # progress=5 replayed the first chunk and then raised "'int' object is not callable",
    # naming neither the argument nor what it should be
    if fmt == "dbn":
        pytest.importorskip("databento_dbn")
        from matchcore.feeds.dbn import replay_dbn as replay
        from matchcore.feeds.dbn_gen import generate_mbo

        path = generate_mbo(tmp_path / "mbo.dbn", records=2000, instruments=2, seed=2)
    else:
        replay = itch.replay_file
        path = itch.generate(tmp_path / "day.itch", messages=2000, symbols=2, seed=2)
    with pytest.raises(TypeError, match=rf"^{hook} must be callable\(.+\) or None, got int 5$"):
        replay(path, **{hook: 5})


def test_replayer_quiet_book_memory_is_what_the_readme_says():
    # The README's sizing of book_capacity said a quiet book takes about 7 KB at 64: a book
    # made with room for 64 orders is about 22 KB resident (its pools, price maps, ladders and
    # id index), 220 MB for 10,000 quiet symbols, not 70 MB. Measured in a process of its own,
    # which no earlier test's freed memory serves.
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/statm")
    said = re.search(r"a quiet book takes about (\d+) KB at 64",
                     (Path(__file__).resolve().parents[1] / "README.md").read_text())
    assert said, "the README no longer sizes a quiet book"
    script = ("import matchcore.itch as itch\n"
              "data = itch.generate(None, messages=30_000, symbols=2_000, seed=3)\n"
              "def resident():\n"
              "    return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
              "r = itch.Replayer(record_tob=False, record_trades=False)\n"
              "before = resident()\n"
              "r.feed(data)\n"
              "r.finish()\n"
              "print((resident() - before) / len(r.books) / 1024)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    kib = float(out)
    assert 0.7 * int(said.group(1)) <= kib <= 1.4 * int(said.group(1)), kib


def _trading_action(stock, locate=1, ts=1, state=b"T", reason=b"    "):
    return _hdr(b"H", locate, ts) + struct.pack(">8scc4s", stock.ljust(8), state, b" ", reason)


def test_replayer_trading_state_reason_drops_nul_padding_like_stock_names():
    # the reason field is alpha, space padded by the specification; feeds that pad it with
    # NULs (as they pad stock names, which were already cut at NULs) showed "T (\x00\x00)"
    data = framed(_trading_action(b"AAA", locate=1, state=b"H", reason=b"LU\x00\x00"),
                  _trading_action(b"BBB", locate=2, ts=2, reason=b"\x00\x00\x00\x00"),
                  _trading_action(b"CCC", locate=3, ts=3, state=b"P", reason=b"IPO1"))
    assert replay(data).trading_state == {1: ("H", "LU", 1), 2: ("T", "", 2),
                                          3: ("P", "IPO1", 3)}


def test_replayer_symbols_names_as_its_docstring_says_trading_action_before_first_order():
    # Replayer.symbols's docstring named books from stock directory messages, else the first
    # order's stock field: a locate named by a trading action message before its first order
    # keeps that name (the README's rule), which the docstring left out
    data = framed(_trading_action(b"HNAME", locate=1), add(1, b"B", 100, 5000, locate=1,
                                                            stock=b"ANAME"),
                  add(2, b"B", 100, 5000, locate=2, stock=b"ANAME2"),
                  _trading_action(b"HNAME2", locate=2, ts=2))
    r = replay(data)
    assert r.symbols == {1: "HNAME", 2: "ANAME2"}
    doc = " ".join(itch.Replayer.symbols.__doc__.split())
    assert "else from the first stock trading action message of that locate, else the stock " \
           "field of its first order/trade message" in doc
    assert "a trading action message that comes after that first order does not rename it" in doc
