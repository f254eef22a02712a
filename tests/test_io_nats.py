"""Market data over NATS JetStream against a real ``nats-server -js`` started here: the consumer
rebuilds the replay's books, subscribers filter, the publisher survives a broker restart and
never blocks; the binary batch encoding; the replay's L2 sink."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import matchcore.itch as itch
from matchcore.__main__ import main
from cli_replay_checks import with_names
from matchcore.io.nats import (
    KIND_L2,
    KIND_TOB,
    KIND_TRADE,
    WIRE_L2,
    WIRE_TOB,
    BatchError,
    MarketDataConsumer,
    decode_batch,
    encode_batch,
    filter_subjects,
    free_port,
)

_ids = itertools.count()


def _need_nats():
    pytest.importorskip("nats", reason="nats-py not installed: pip install 'matchcore[nats]'")
    from matchcore.io.nats import nats_server_path

    try:
        nats_server_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def server():
    _need_nats()
    from matchcore.io.nats import NatsServer

    srv = NatsServer().start()
    yield srv
    srv.close()


@pytest.fixture
def names():
    """A stream name and subject prefix of its own per test (streams may not share subjects)."""
    i = next(_ids)
    return f"T{i}", f"t{i}"


@pytest.fixture(scope="module")
def day():
    return itch.generate(None, messages=40_000, symbols=4, seed=21)


def feed_chunks(r, data, on_chunk, chunk=100_000):
    mv = memoryview(data)
    pos = 0
    while pos < len(data):
        pos += r.feed(mv[pos:pos + chunk])
        on_chunk(r)
    r.finish()
    on_chunk(r)


def book_levels(book):
    bids, asks = book.depth_orders(1 << 30)
    return [tuple(map(int, x)) for x in bids], [tuple(map(int, x)) for x in asks]


# ---- encoding (no server) ----

def test_encode_decode_batch_round_trip_exact_bytes():
    rec = np.zeros(3, WIRE_L2)
    rec["ts"] = [1, 2, 3]
    rec["price"] = [100, 101, 102]
    rec["qty"] = [5, 0, 7]
    rec["orders"] = [1, 0, 2]
    rec["side"] = [b"B", b"S", b"B"]
    payload = encode_batch(KIND_L2, 513, 42, rec)
    assert len(payload) == 16 + 3 * 32
    assert payload[:6] == b"MC\x01\x03\x01\x02"           # magic, version, kind, locate LE
    assert payload[6:8] == b"\x03\x00" and payload[8:16] == (42).to_bytes(8, "little")
    assert payload[16:24] == (1).to_bytes(8, "little")
    kind, loc, seq, back = decode_batch(payload)
    assert (kind, loc, seq) == (KIND_L2, 513, 42)
    assert back.tobytes() == rec.tobytes()


@pytest.mark.parametrize("payload, msg", [
    (b"MC\x01", "shorter than its 16-byte header"),
    (b"XX\x01\x02" + bytes(12), "bad magic"),
    (b"MC\x01\x09" + bytes(12), "unknown record kind 9"),
    (b"MC\x01\x02\x00\x00\x02\x00" + bytes(8) + bytes(40), "should be 96 bytes"),
])
def test_decode_batch_malformed_raises_batch_error(payload, msg):
    with pytest.raises(BatchError, match=msg):
        decode_batch(payload)


def test_consumer_malformed_or_replayed_batch_changes_nothing():
    c = MarketDataConsumer()
    rec = np.zeros(1, WIRE_TOB)
    rec[0] = (5, 100, 10, 101, 20)
    c.apply("mc.tob.AAA", encode_batch(KIND_TOB, 1, 0, rec))
    c.apply("mc.tob.AAA", b"garbage")
    old = rec.copy()
    old[0] = (1, 1, 1, 1, 1)
    c.apply("mc.tob.AAA", encode_batch(KIND_TOB, 1, 0, old))      # seq already applied
    assert c.tob["AAA"] == (5, 100, 10, 101, 20) and c.bad == 1 and c.batches == 1
    c.apply("mc.tob.AAA", encode_batch(KIND_TOB, 1, 4, rec))      # seq 1..3 never came
    assert c.missing == {("tob", "AAA"): 3}


def test_filter_subjects_wildcards_and_bad_kind():
    assert filter_subjects("mc", None, ["tob"]) == ["mc.tob.*"]
    assert filter_subjects("mc", ["BRK.A"], None) == ["mc.*.BRK_2EA"]
    assert filter_subjects("mc") == ["mc.*.*"]       # not mc.>: that takes mc.eu.tob.X
    with pytest.raises(ValueError, match="unknown kinds"):
        filter_subjects("mc", None, ["quotes"])


def test_replay_l2_sink_rebuilds_every_level_of_every_book(day):
    r = itch.Replayer(record_l2=True)
    c = MarketDataConsumer()
    seqs = {}

    def chunk(rr):
        l2 = rr.l2(clear=True)
        for loc in np.unique(l2["locate"]).tolist():
            mine = l2[l2["locate"] == loc]
            w = np.zeros(len(mine), WIRE_L2)
            for f in ("ts", "price", "qty", "orders", "side"):
                w[f] = mine[f]
            c.apply(f"mc.l2.{loc}", encode_batch(KIND_L2, loc, seqs.get(loc, 0), w))
            seqs[loc] = seqs.get(loc, 0) + len(mine)

    feed_chunks(r, day, chunk, chunk=7_000)
    assert r.books
    for loc, book in r.books.items():
        bids, asks = c.depth(str(loc))
        assert (bids, asks) == book_levels(book)
    ss = r.symbol_stats()
    tr = r.trades()
    for row in ss:
        mine = tr[tr["locate"] == row["locate"]]
        assert row["trades"] == len(mine) and row["volume"] == int(mine["shares"].sum())


# ---- against a real server ----

def test_replay_published_consumer_rebuilds_tob_l2_trades_equal_to_books(server, names, day):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub, max_batch=700)
        all_trades = []

        def chunk(rr):
            bridge(rr)
            all_trades.extend(bridge.kept()["trades"] if bridge.keep else [])

        bridge.keep = True
        feed_chunks(r, day, chunk)
    st = pub.stats
    assert st["published"] == bridge.batches and st["dropped"] == st["undelivered"] == 0
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.bad == 0 and not c.missing
    assert c.records == bridge.records
    _assert_consumer_is_replay(c, r, bridge.kept()["trades"])


def test_subscribe_filters_by_symbol_and_kind(server, names, day):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        feed_chunks(r, day, ReplayPublisher(pub))
    sym = r.symbols[min(r.books)]
    c = consume(server.url, stream=stream, prefix=prefix, symbols=[sym], kinds=["tob"], timeout=60)
    assert c.symbols() == [sym] and c.records["l2"] == c.records["trade"] == 0
    assert c.records["tob"] > 0
    c2 = consume(server.url, stream=stream, prefix=prefix, kinds=["trade"], timeout=60)
    assert set(c2.trades) == {r.symbols[L] for L in r.books} and not c2.tob and not c2.levels


def test_publisher_broker_restart_mid_run_reconnects_reports_never_blocks(names, day):
    from matchcore.io.nats import NatsPublisher, NatsServer, ReplayPublisher, consume

    _need_nats()
    stream, prefix = names
    reference = itch.Replayer(record_l2=True)
    reference.feed(day)
    with NatsServer() as srv:
        pub = NatsPublisher(srv.url, stream=stream, prefix=prefix, ack_timeout=1.0,
                            reconnect_wait=0.1)
        bridge = ReplayPublisher(pub)
        r = itch.Replayer(record_l2=True)
        mv = memoryview(day)
        cut = [len(day) // 3, 2 * len(day) // 3, len(day)]
        pos = 0
        slowest = 0.0
        for i, end in enumerate(cut):
            if i == 1:
                srv.stop()                      # broker gone mid-run
            while pos < end:
                pos += r.feed(mv[pos:pos + 20_000])     # phases end at a message boundary
                t0 = time.perf_counter()
                bridge(r)                       # publishing while the broker is down
                slowest = max(slowest, time.perf_counter() - t0)
            if i == 1:
                time.sleep(1.5)                 # longer than ack_timeout: some batches time out
                srv.start()                     # same port, same store: the stream is back
                deadline = time.monotonic() + 20
                while pub.stats["reconnects"] == 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
        r.finish()
        bridge(r)
        st = pub.close(timeout=30)
        assert st["disconnects"] >= 1 and st["reconnects"] >= 1
        assert st["queued"] + st["dropped"] == bridge.batches
        assert st["published"] + st["undelivered"] == st["queued"]
        assert st["undelivered"] > 0                             # the outage was reported
        assert st["records_published"] + st["records_undelivered"] + st["records_dropped"] == \
            sum(bridge.records.values())
        assert slowest < 0.5                                     # a publish never waited on it
        # the books never noticed
        assert {L: b.state_hash() for L, b in r.books.items()} == \
            {L: b.state_hash() for L, b in reference.books.items()}
        c = consume(srv.url, stream=stream, prefix=prefix, timeout=60)
        assert c.bad == 0
        got = sum(c.records.values())
        assert st["records_published"] <= got <= sum(bridge.records.values())
        # what the consumer missed it sees as jumps in the sequence numbers: received + missing
        # is everything handed over (each subject's last batches came after the restart)
        assert got + sum(c.missing.values()) == sum(bridge.records.values())
        # batches after the restart arrived: the last top of book of each symbol is the book's
        for loc, book in r.books.items():
            sym = r.symbols[loc]
            bb, ba = book.best_bid(), book.best_ask()
            assert c.tob[sym][1:] == (bb[0], bb[1], ba[0], ba[1])


def test_publisher_full_queue_drops_and_counts_never_blocks(server, names):
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    payload = encode_batch(KIND_TRADE, 1, 0, np.zeros(10, np.dtype(
        [("ts", "<i8"), ("price", "<i8"), ("shares", "<i8"), ("match_number", "<u8"),
         ("ref", "<u8"), ("kind", "S1"), ("side", "S1"), ("flag", "S1"), ("_pad", "V1")])))
    pub = NatsPublisher(server.url, stream=stream, prefix=prefix, max_queue_bytes=4 * len(payload))
    t0 = time.perf_counter()
    results = [pub.publish(f"{prefix}.trade.X", payload, records=10) for _ in range(2000)]
    elapsed = time.perf_counter() - t0
    st = pub.close()
    assert not all(results) and st["dropped"] == results.count(False) > 0
    assert st["queued"] == results.count(True) == st["published"]
    assert st["records_dropped"] == 10 * st["dropped"]
    assert elapsed < 2.0


def test_publisher_broker_down_at_start_raises_connection_error():
    _need_nats()
    from matchcore.io.nats import NatsPublisher

    with pytest.raises(ConnectionError, match="cannot connect to NATS"):
        NatsPublisher(f"nats://127.0.0.1:{free_port()}", connect_timeout=1)


def test_cli_replay_publish_then_subscribe_prints_the_books_top(server, names, tmp_path, capsys):
    stream, prefix = names
    path = tmp_path / "day.itch"
    itch.generate(path, messages=20_000, symbols=3, seed=4)
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "dropped (queue full) 0 batches" in out and "undelivered (no ack) 0 / 0" in out
    r = itch.replay_file(path)
    tob = np.load(tmp_path / "out" / "tob.npy")
    assert np.array_equal(tob, r.tob())                  # --out still has every record
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", "AAPL", "--kinds", "tob,trade"])
    out = capsys.readouterr().out
    assert code == 0, out
    bb, ba = r.book("AAPL").best_bid(), r.book("AAPL").best_ask()
    assert f"AAPL     bid {bb[0] / 1e4:.4f} x {bb[1]:,}  ask {ba[0] / 1e4:.4f} x {ba[1]:,}" in out
    assert "missing (sequence gaps) 0 records" in out


def test_cli_subscribe_selected_symbols_never_received_noted(server, names, tmp_path, capsys):
    # subscribe --symbols with a name never published (or a label of a locate not published
    # under that name) printed nothing about it: a typo looked like a quiet symbol
    stream, prefix = names
    path = tmp_path / "day.itch"
    itch.generate(path, messages=5_000, symbols=3, seed=4)
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix])
    assert code == 0, capsys.readouterr()
    capsys.readouterr()
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", "AAPL,NOPE,MSFT@locate2,MSFT@locate3,AAPL"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "AAPL     bid" in out and "MSFT@locate2 " in out
    assert out.rstrip().endswith("note: no records received for NOPE, MSFT@locate3")
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", "AAPL,MSFT"])
    out = capsys.readouterr().out
    assert code == 0 and "note:" not in out, out


def test_cli_replay_publish_broker_down_exit_1_clear_message(tmp_path, capsys):
    _need_nats()
    path = tmp_path / "day.itch"
    itch.generate(path, messages=1000, symbols=2, seed=4)
    code = main(["replay", str(path), "--publish", f"nats://127.0.0.1:{free_port()}"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot connect to NATS" in err


def test_nats_py_missing_error_names_the_extra(monkeypatch):
    import sys

    from matchcore.io.nats import NatsPublisher, consume

    monkeypatch.setitem(sys.modules, "nats", None)
    with pytest.raises(ImportError, match=r"pip install 'matchcore\[nats\]'"):
        NatsPublisher("nats://127.0.0.1:1")
    with pytest.raises(ImportError, match=r"matchcore\[nats\]"):
        consume("nats://127.0.0.1:1")


def test_cli_subscribe_nats_py_missing_exit_status_2_names_the_extra(monkeypatch, capsys):
    import sys

    from matchcore.__main__ import main

    monkeypatch.setitem(sys.modules, "nats", None)
    assert main(["subscribe", "nats://127.0.0.1:1", "--timeout", "1"]) == 2   # as every extra
    err = capsys.readouterr().err
    assert "pip install 'matchcore[nats]'" in err and "cannot read" not in err


def test_publisher_close_broker_gone_gives_up_counts_undelivered(names):
    _need_nats()
    from matchcore.io.nats import NatsPublisher, NatsServer

    stream, prefix = names
    rec = np.zeros(100, WIRE_TOB)
    with NatsServer() as srv:
        pub = NatsPublisher(srv.url, stream=stream, prefix=prefix, ack_timeout=0.5,
                            max_inflight=4)
        srv.stop()
        for i in range(200):
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 100 * i, rec), 100)
        t0 = time.perf_counter()
        st = pub.close(timeout=1.0)
        assert time.perf_counter() - t0 < 10
    assert st["published"] + st["undelivered"] == 200 and st["undelivered"] > 0
    assert st["records_published"] + st["records_undelivered"] == 200 * 100
    assert pub.pending == 0


def _add_stream(url, **config):
    import asyncio

    import nats

    async def go():
        nc = await nats.connect(url)
        try:
            await nc.jetstream().add_stream(**config)
        finally:
            await nc.close()

    asyncio.run(go())


def _stream_msgs(url, stream):
    import asyncio

    import nats

    async def go():
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info(stream)).state.messages
        finally:
            await nc.close()

    return asyncio.run(go())


def test_publisher_existing_stream_other_subjects_raises_stream_setup_error(server, names):
    from matchcore.io.nats import NatsPublisher, StreamSetupError

    stream, prefix = names
    _add_stream(server.url, name=stream, subjects=[f"other{prefix}.>"])
    with pytest.raises(StreamSetupError, match=rf"stream {stream} .*\['other{prefix}\.>'\], "
                                               rf"which do not take {prefix}\.>"):
        NatsPublisher(server.url, stream=stream, prefix=prefix)
    assert _stream_msgs(server.url, stream) == 0


def test_publisher_subjects_taken_by_another_stream_error_names_that_stream(server, names):
    from matchcore.io.nats import NatsPublisher, StreamSetupError

    stream, prefix = names
    _add_stream(server.url, name=f"{stream}OWNER", subjects=[f"{prefix}.tob.*"])
    with pytest.raises(StreamSetupError, match=rf"stream {stream}OWNER .*{prefix}\.tob\.\*"):
        NatsPublisher(server.url, stream=stream, prefix=prefix)
    assert _stream_msgs(server.url, f"{stream}OWNER") == 0


def test_publisher_existing_stream_wildcards_covering_prefix_accepted(server, names):
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    _add_stream(server.url, name=stream, subjects=[f"{prefix}.*.*"])
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 0, np.zeros(1, WIRE_TOB)))
    assert pub.stats["published"] == 1 and _stream_msgs(server.url, stream) == 1


def test_cli_replay_publish_stream_other_subjects_exit_1_no_connect_message(server, names,
                                                                            tmp_path, capsys):
    stream, prefix = names
    _add_stream(server.url, name=stream, subjects=[f"other{prefix}.>"])
    path = tmp_path / "day.itch"
    itch.generate(path, messages=1000, symbols=2, seed=4)
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix])
    cap = capsys.readouterr()
    assert code == 1 and f"do not take {prefix}.>" in cap.err
    assert "cannot connect" not in cap.err and "replayed" not in cap.out
    assert _stream_msgs(server.url, stream) == 0


def test_cli_replay_publish_bad_stream_name_setup_error_not_connect_error(server, tmp_path,
                                                                          capsys):
    path = tmp_path / "day.itch"
    itch.generate(path, messages=1000, symbols=2, seed=4)
    code = main(["replay", str(path), "--publish", server.url, "--stream", "BAD.NAME"])
    err = capsys.readouterr().err
    assert code == 1 and "stream BAD.NAME at" in err and "cannot connect" not in err


def test_cli_replay_publish_undelivered_batches_exit_1(server, names, tmp_path, capsys):
    from nats.js.api import DiscardPolicy

    stream, prefix = names
    # the broker refuses every batch after the first: they are never acknowledged
    _add_stream(server.url, name=stream, subjects=[f"{prefix}.>"], max_msgs=1,
                discard=DiscardPolicy.NEW)
    path = tmp_path / "day.itch"
    itch.generate(path, messages=5000, symbols=2, seed=4)
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix])
    cap = capsys.readouterr()
    assert code == 1 and "batches were not delivered to NATS" in cap.err
    assert "undelivered (no ack) 0 " not in cap.out


def _itch_r(loc, sym):
    from cli_replay_checks import stock_directory

    return stock_directory(loc, sym)


def _itch_a(loc, ref, side, shares, sym, price, ts):
    import struct

    body = (b"A" + struct.pack(">HH", loc, 0) + ts.to_bytes(6, "big") + struct.pack(">Q", ref)
            + side + struct.pack(">I", shares) + sym.ljust(8).encode() + struct.pack(">I", price))
    return struct.pack(">H", len(body)) + body


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.A", "BRK_A", "BRK_2EA", "A B", "*", ">", "_",
                                    "X-Y", "ÄÖ.€", "a.b_c.d", ""])
def test_subject_token_reversible_one_token_distinct(symbol):
    from matchcore.io.nats import subject_token, symbol_from_token

    tok = subject_token(symbol)
    assert symbol_from_token(tok) == symbol
    assert tok and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in tok)


def test_subject_token_colliding_names_of_before_get_distinct_subjects():
    from matchcore.io.nats import subject_token

    names = ["BRK.A", "BRK_A", "BRK A", "BRK*A", "BRK_2EA", "brk.a"]
    assert len({subject_token(n) for n in names}) == len(names)


def test_replay_symbols_sharing_old_token_stay_apart_looked_up_by_name(server, names, tmp_path):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    msgs = [_itch_r(1, "BRK.A"), _itch_r(2, "BRK_A")]
    rng = np.random.default_rng(0)
    for i in range(3000):                  # two interleaved books at very different prices
        loc = 1 + i % 2
        side = b"B" if rng.random() < 0.5 else b"S"
        base = 600_000_000 if loc == 1 else 4_000_000
        off = int(rng.integers(1, 6)) * 100 * (-1 if side == b"B" else 1)
        msgs.append(_itch_a(loc, i + 1, side, 100, "BRK.A" if loc == 1 else "BRK_A", base + off,
                            i))
    path = tmp_path / "collide.itch"
    path.write_bytes(b"".join(msgs))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        r = itch.replay_file(path, record_l2=True, on_chunk=ReplayPublisher(pub, max_batch=100))
    assert sorted(r.symbols.values()) == ["BRK.A", "BRK_A"]
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == ["BRK.A", "BRK_A"] and not c.missing
    for name in ("BRK.A", "BRK_A"):
        book = r.book(name)
        assert c.depth(name) == book_levels(book)
        bb, ba = book.best_bid(), book.best_ask()
        assert c.tob[name][1:] == (bb[0], bb[1], ba[0], ba[1])
    one = consume(server.url, stream=stream, prefix=prefix, symbols=["BRK.A"], timeout=60)
    assert one.symbols() == ["BRK.A"] and one.depth("BRK.A") == book_levels(r.book("BRK.A"))


def test_consumer_new_session_restarts_that_subject_old_state_gone():
    from matchcore.io.nats import SESSION_HEADER

    c = MarketDataConsumer()
    l2 = np.zeros(2, WIRE_L2)
    l2["price"], l2["qty"], l2["orders"], l2["side"] = [100, 105], [5, 7], [1, 1], [b"B", b"S"]
    tob = np.zeros(1, WIRE_TOB)
    tob[0] = (1, 100, 5, 105, 7)
    a = {SESSION_HEADER: "a"}
    c.apply("mc.l2.X", encode_batch(KIND_L2, 1, 0, l2), a)
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 3, tob), a)          # a gap in session a
    l2b = np.zeros(1, WIRE_L2)
    l2b[0]["price"], l2b[0]["qty"], l2b[0]["orders"], l2b[0]["side"] = 90, 1, 1, b"B"
    c.apply("mc.l2.X", encode_batch(KIND_L2, 1, 0, l2b), {SESSION_HEADER: "b"})
    assert c.depth("X") == ([(90, 1, 1)], [])                # session a's levels are gone
    assert c.tob["X"] == (1, 100, 5, 105, 7)                 # tob subject not restarted yet
    assert c.session_changes == 1 and c.sessions[("l2", "X")] == "b"
    tob2 = np.zeros(1, WIRE_TOB)
    tob2[0] = (2, 90, 1, 0, 0)
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob2), {SESSION_HEADER: "b"})
    assert c.tob["X"] == (2, 90, 1, 0, 0) and not c.missing and c.session_changes == 2
    # without the header (an older publisher) a repeated seq is still a redelivery
    old = MarketDataConsumer()
    old.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob))
    old.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob2))
    assert old.tob["X"] == (1, 100, 5, 105, 7) and old.session_changes == 0


def _publish_day(url, stream, prefix, data):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    r = itch.Replayer(record_l2=True)
    with NatsPublisher(url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub, keep=True)
        feed_chunks(r, data, bridge)
    assert pub.stats["published"] == bridge.batches
    return r, bridge.kept()["trades"]


def _cli_publish_day(server, stream, prefix, path, *, messages, seed):
    # a generated day published with `matchcore replay --publish`, as a user does
    itch.generate(path, messages=messages, symbols=2, seed=seed)
    assert main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix]) == 0


def _restart_with_empty_store(srv, tmp_path):
    """The same port, an empty store: the stream and every consumer on it are gone."""
    from matchcore.io.nats import NatsServer

    srv.stop()
    srv = NatsServer(port=srv.port, store_dir=tmp_path / "js2").start()
    time.sleep(1.0)
    return srv


def _follow_in_thread(url, stream, prefix, **options):
    """consume(follow=True) in a thread; returns (stop event, thread, box): box["c"] holds the
    result, box["error"] what it raised (checked by the caller)."""
    from matchcore.io.nats import consume

    stop = threading.Event()
    box = {}

    def follow():
        try:
            box["c"] = consume(url, stream=stream, prefix=prefix, follow=True, stop=stop,
                               timeout=120, **options)
        except BaseException as e:       # reported by the caller's assertion
            box["error"] = e

    t = threading.Thread(target=follow)
    t.start()
    return stop, t, box


def _follower_after_resubscribe(stop, t, box, r, trades):
    # stop a following consumer once it had time to read a new replay (its backoff is at most
    # 2 s), and check it resubscribed and rebuilt exactly that replay
    time.sleep(3.0)
    stop.set()
    t.join(timeout=60)
    assert "error" not in box, box.get("error")
    c = box["c"]
    assert c.resubscribes >= 1 and c.last_error
    _assert_consumer_is_replay(c, r, trades)
    return c


def _assert_consumer_is_replay(c, r, trades):
    from matchcore.io import book_labels

    labels = book_labels(r.symbols, r.books)     # the name, NAME@locateN when several carry it
    assert sorted(c.symbols()) == sorted(labels.values())
    for loc, book in r.books.items():
        sym = labels[loc]
        bb, ba = book.best_bid(), book.best_ask()
        assert c.tob[sym][1:] == (bb[0], bb[1], ba[0], ba[1])
        assert c.depth(sym) == book_levels(book)
        mine = trades[trades["locate"] == loc]
        assert c.trades[sym] == [len(mine), int(mine["shares"].sum())]


def _consumer_count(url, stream):
    import asyncio

    import nats

    async def go():
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info(stream)).state.consumer_count
        finally:
            await nc.close()

    return asyncio.run(go())


def test_follow_many_subjects_read_through_one_consumer_books_equal_replay(server, names, day):
    # one pull consumer per subject, fetched in turn with a 0.2 s wait each, made a live
    # message wait up to (subjects x 0.2 s) and --idle stop that much late
    stream, prefix = names
    r, trades = _publish_day(server.url, stream, prefix, day)
    symbols = sorted({s.strip() for s in r.symbols.values()})
    seen = threading.Event()
    stop, t, box = _follow_in_thread(server.url, stream, prefix, symbols=symbols + symbols[:1],
                                     kinds=["trade", "tob", "l2"],
                                     on_batch=lambda subject, payload: seen.set(), idle=2.0)
    try:
        assert seen.wait(30)
        assert len(symbols) * 3 > 1 and _consumer_count(server.url, stream) == 1
    except BaseException:
        stop.set()
        raise
    finally:
        t.join(timeout=60)      # idle: ends once everything published was read
    assert "error" not in box, box.get("error")
    _assert_consumer_is_replay(box["c"], r, trades)


def test_second_replay_into_same_stream_subscriber_ends_with_second_books(server, names):
    from matchcore.io.nats import consume

    stream, prefix = names
    day1 = itch.generate(None, messages=20_000, symbols=2, seed=1)
    day2 = itch.generate(None, messages=20_000, symbols=2, seed=2)
    r1, _ = _publish_day(server.url, stream, prefix, day1)
    r2, trades2 = _publish_day(server.url, stream, prefix, day2)
    assert {L: b.state_hash() for L, b in r1.books.items()} != \
        {L: b.state_hash() for L, b in r2.books.items()}
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    _assert_consumer_is_replay(c, r2, trades2)
    assert c.session_changes == 3 * len(r2.books) and not c.missing and c.bad == 0


def test_live_subscriber_sees_second_replay_and_ends_with_its_books(server, names):
    from matchcore.io.nats import consume

    stream, prefix = names
    _publish_day(server.url, stream, prefix, itch.generate(None, messages=20_000, symbols=2,
                                                           seed=3))
    stop = threading.Event()
    box = {}
    t = threading.Thread(target=lambda: box.setdefault(
        "c", consume(server.url, stream=stream, prefix=prefix, follow=True, stop=stop,
                     timeout=120)))
    t.start()
    deadline = time.monotonic() + 30
    r2, trades2 = _publish_day(server.url, stream, prefix,
                               itch.generate(None, messages=20_000, symbols=2, seed=4))
    time.sleep(2.0)                                  # the follower reads up to the end
    stop.set()
    t.join(timeout=60)
    assert time.monotonic() < deadline + 60 and "c" in box
    _assert_consumer_is_replay(box["c"], r2, trades2)
    assert box["c"].session_changes == 3 * len(r2.books)


def test_cli_subscribe_reports_session_restarts(server, names, tmp_path, capsys):
    stream, prefix = names
    for seed in (5, 6):
        path = tmp_path / f"d{seed}.itch"
        _cli_publish_day(server, stream, prefix, path, messages=5000, seed=seed)
    capsys.readouterr()
    assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix]) == 0
    out = capsys.readouterr().out
    r = itch.replay_file(path)
    assert "6 subjects restarted by a newer publishing session" in out
    bb = r.book("AAPL").best_bid()
    assert f"AAPL     bid {bb[0] / 1e4:.4f} x {bb[1]:,}" in out


def test_follow_survives_broker_restart_without_store_ends_with_new_books(names, tmp_path):
    from matchcore.io.nats import NatsServer

    _need_nats()
    stream, prefix = names
    srv = NatsServer(store_dir=tmp_path / "js1").start()
    try:
        _publish_day(srv.url, stream, prefix, itch.generate(None, messages=10_000, symbols=2,
                                                            seed=7))
        stop, t, box = _follow_in_thread(srv.url, stream, prefix)
        time.sleep(1.5)                      # the follower has read the first replay
        srv = _restart_with_empty_store(srv, tmp_path)
        r2, trades2 = _publish_day(srv.url, stream, prefix,
                                   itch.generate(None, messages=10_000, symbols=2, seed=8))
        _follower_after_resubscribe(stop, t, box, r2, trades2)
    finally:
        srv.close()


def test_consume_broker_gone_for_good_raises_keeps_what_was_received(names, tmp_path):
    from matchcore.io.nats import MarketDataConsumer, NatsServer, consume

    _need_nats()
    stream, prefix = names
    with NatsServer() as srv:
        _publish_day(srv.url, stream, prefix, itch.generate(None, messages=10_000, symbols=2,
                                                            seed=9))
        c = MarketDataConsumer()
        seen = []

        def on_batch(subject, payload):
            seen.append(subject)
            if len(seen) == 1:
                srv.stop()                   # gone in the middle of the read, never back

        t0 = time.monotonic()
        with pytest.raises(Exception) as info:
            consume(srv.url, stream=stream, prefix=prefix, consumer=c, on_batch=on_batch)
        assert not isinstance(info.value, AssertionError)
        assert time.monotonic() - t0 < 60
        assert c.batches == len(seen) > 0 and c.last_error


def test_cli_subscribe_follow_interrupted_prints_what_it_received(server, names, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    stream, prefix = names
    path = tmp_path / "d.itch"
    _cli_publish_day(server, stream, prefix, path, messages=5000, seed=5)
    proc = subprocess.Popen([sys.executable, "-m", "matchcore", "subscribe", server.url,
                             "--stream", stream, "--subject-prefix", prefix, "--follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err == "matchcore subscribe: interrupted by SIGINT\n"
    r = itch.replay_file(path)
    bb = r.book("AAPL").best_bid()
    assert "received " in out and "missing (sequence gaps) 0 records" in out
    assert f"AAPL     bid {bb[0] / 1e4:.4f} x {bb[1]:,}" in out



def test_cli_subscribe_follow_sigterm_summary_one_line_status_143(server, names):
    import os
    import signal
    import subprocess
    import sys

    stream, prefix = names
    _publish_day(server.url, stream, prefix, itch.generate(None, messages=5000, symbols=2,
                                                           seed=6))
    proc = subprocess.Popen([sys.executable, "-m", "matchcore", "subscribe", server.url,
                             "--stream", stream, "--subject-prefix", prefix, "--follow",
                             "--print"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    first = proc.stdout.readline()              # reading: the connection is up
    assert first.startswith(f"{prefix}."), first
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and err == "matchcore subscribe: interrupted by SIGTERM\n"
    assert "received " in out and "Traceback" not in out


def test_cli_subscribe_print_reader_gone_quiet_status_141(server, names):
    import os
    import subprocess
    import sys

    stream, prefix = names
    _publish_day(server.url, stream, prefix, itch.generate(None, messages=5000, symbols=2,
                                                           seed=7))
    r, w = os.pipe()
    os.close(r)                                  # `matchcore subscribe --print | head`, head gone
    proc = subprocess.Popen([sys.executable, "-m", "matchcore", "subscribe", server.url,
                             "--stream", stream, "--subject-prefix", prefix, "--follow",
                             "--print"], stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    _, err = proc.communicate(timeout=30)       # --follow: ends only because stdout is gone
    assert (proc.returncode, err) == (141, "")


def test_cli_replay_publish_sigint_mid_replay_publisher_closed(server, names, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from test_cli_signals import _wait_blocked_reading

    stream, prefix = names
    fifo = tmp_path / "feed.itch"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "matchcore", "replay", str(fifo), "--format",
                             "itch", "--publish", server.url, "--stream", stream,
                             "--subject-prefix", prefix], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        with open(fifo, "wb") as w:
            w.write(itch.generate(None, messages=300_000, symbols=4, seed=8)[:6_000_000])
            w.flush()
            _wait_blocked_reading(proc.pid)
            os.kill(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=30)      # publisher thread closed: it exits
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and err == "matchcore replay: interrupted by SIGINT\n"
    assert "interrupted after " in out

def _delete_consumers(url, stream):
    import asyncio

    import nats

    async def go():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            names = [ci.name for ci in await js.consumers_info(stream)]
            for name in names:
                await js.delete_consumer(stream, name)
            return len(names)
        finally:
            await nc.close()

    return asyncio.run(go())


def test_follow_consumer_lost_same_stream_reads_on_not_again(server, names):
    stream, prefix = names
    for seed in (10, 11):                # two replays in the stream before the follower starts
        _publish_day(server.url, stream, prefix, itch.generate(None, messages=10_000, symbols=2,
                                                               seed=seed))
    stop, t, box = _follow_in_thread(server.url, stream, prefix)
    time.sleep(1.5)
    # what an expired consumer looks like: the stream is there, the follower's consumer not
    assert _delete_consumers(server.url, stream) == 1
    r2, trades2 = _publish_day(server.url, stream, prefix,
                               itch.generate(None, messages=10_000, symbols=2, seed=12))
    c = _follower_after_resubscribe(stop, t, box, r2, trades2)
    # one restart per subject and new replay: what was read before was not read again
    assert c.session_changes == 2 * 3 * len(r2.books)


def test_replay_publisher_kept_sinks_padding_zero_same_bytes_as_replay(server, names, day):
    # kept() concatenates the drained chunks: numpy leaves the records' padding uninitialised,
    # and `replay --publish --out` saved those bytes in tob.npy / trades.npy
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    stream, prefix = names
    plain = itch.Replayer(record_l2=True)
    feed_chunks(plain, day, lambda rr: None)
    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub, keep=True)
        junk = [b"\xff" * (1 << 16) for _ in range(64)]
        del junk
        feed_chunks(r, day, bridge, chunk=20_000)
    kept = bridge.kept()
    for name, whole in (("tob", plain.tob()), ("trades", plain.trades()), ("l2", plain.l2())):
        assert len(whole) > 0 and np.array_equal(kept[name], whole), name
        assert kept[name].tobytes() == whole.tobytes(), name


@pytest.mark.parametrize("opt,value", [("--timeout", "-1"), ("--timeout", "0"),
                                       ("--timeout", "nan"), ("--idle", "-2")])
def test_cli_subscribe_nonpositive_timeout_or_idle_exit_1_before_connecting(server, names,
                                                                             tmp_path, capsys,
                                                                             opt, value):
    # with a stream that holds data, a negative --timeout read nothing and exited 0
    stream, prefix = names
    path = tmp_path / "d.itch"
    _cli_publish_day(server, stream, prefix, path, messages=2000, seed=3)
    capsys.readouterr()
    argv = ["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix, opt, value]
    if opt == "--idle":
        argv.append("--follow")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{opt} must be > 0 seconds" in err


def test_cli_subscribe_idle_without_follow_exit_1_before_connecting(capsys):
    # ignored before (the read stops at the stream's end without --follow); port 1 is never a
    # NATS server, so reaching the connection would give a different error
    assert main(["subscribe", "nats://127.0.0.1:1", "--idle", "0.5"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "matchcore subscribe: error: --idle needs --follow"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_cli_subscribe_stdout_on_a_full_disk_one_error_line_exit_1(server, names, tmp_path):
    # the summary's print raised an OSError traceback
    stream, prefix = names
    path = tmp_path / "d.itch"
    _cli_publish_day(server, stream, prefix, path, messages=2000, seed=3)
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "matchcore", "subscribe", server.url,
                               "--stream", stream, "--subject-prefix", prefix],
                              stdout=full, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == "matchcore subscribe: error: [Errno 28] No space left on device\n"


def test_cli_replay_publish_empty_subject_prefix_not_replaced_by_the_default(server, capsys,
                                                                              tmp_path):
    # '--subject-prefix ""' is refused by the stream check (its subjects would be ".KIND.SYM"),
    # never quietly published under the default prefix "mc"
    path = tmp_path / "d.itch"
    itch.generate(path, messages=2000, symbols=2, seed=3)
    assert main(["replay", str(path), "--publish", server.url, "--subject-prefix", ""]) == 1
    out = capsys.readouterr()
    assert "published:" not in out.out and "--publish: " in out.err


@pytest.mark.parametrize("bad", ["{p}.*", "{p}.>", "{p}..x", "", "{p} x", "*"])
def test_publisher_prefix_with_wildcard_or_empty_token_raises_nothing_created(server, names,
                                                                              bad):
    # "mc.*" was taken: the stream captured mc.*.>, the batches went to the literal subject
    # mc.*.tob.X and a subscriber with the same prefix read every other prefix's batches
    from nats.js.errors import NotFoundError

    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    bad = bad.format(p=prefix)
    with pytest.raises(ValueError, match="is not a NATS subject to publish to"):
        NatsPublisher(server.url, stream=stream, prefix=bad)
    with pytest.raises(ValueError, match="is not a NATS subject to publish to"):
        filter_subjects(bad, ["X"], ["tob"])
    with pytest.raises(NotFoundError):
        _stream_msgs(server.url, stream)


def test_cli_replay_publish_and_subscribe_wildcard_prefix_exit_1(server, names, tmp_path,
                                                                 capsys):
    from nats.js.errors import NotFoundError

    stream, prefix = names
    path = tmp_path / "day.itch"
    itch.generate(path, messages=1000, symbols=2, seed=4)
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", f"{prefix}.*"])
    cap = capsys.readouterr()
    assert code == 1 and "is not a NATS subject to publish to" in cap.err
    assert "replayed" not in cap.out
    with pytest.raises(NotFoundError):
        _stream_msgs(server.url, stream)
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", f"{prefix}.>"])
    cap = capsys.readouterr()
    assert code == 1 and "is not a NATS subject to publish to" in cap.err


def test_consume_symbols_as_one_str_raises_type_error_before_connecting():
    # a str is iterable: symbols="AAPL" read the symbols A, P and L (A exists in real data)
    from matchcore.io.nats import consume

    _need_nats()
    url = f"nats://127.0.0.1:{free_port()}"          # nothing listens: raised before connecting
    with pytest.raises(TypeError, match=r"symbols must be a list of names.*\['AAPL'\]"):
        consume(url, symbols="AAPL")
    with pytest.raises(TypeError, match="kinds must be a list of names"):
        filter_subjects("mc", ["AAPL"], "tob")



@pytest.mark.parametrize("kw", [dict(timeout=-1), dict(timeout=0), dict(timeout=float("nan")),
                                dict(idle=-1, follow=True), dict(idle=float("nan"),
                                                                 follow=True)])
def test_consume_nonpositive_timeout_or_idle_raises_value_error(server, names, kw):
    # as the command line did before its own check: a negative timeout read nothing and
    # returned an empty consumer, as if the stream held nothing
    from matchcore.io.nats import NatsPublisher, consume

    stream, prefix = names
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 0, np.zeros(1, WIRE_TOB)))
    assert consume(server.url, stream=stream, prefix=prefix, timeout=20).batches == 1
    with pytest.raises(ValueError, match="must be > 0 seconds or None"):
        consume(server.url, stream=stream, prefix=prefix, **kw)


def test_follow_two_subjects_broker_restart_without_store_each_reads_new_stream_from_start(
        names, tmp_path):
    # Each subject is subscribed on its own (--symbols A,B): the first one to subscribe again
    # after the stream was made anew must not make the second one take the new stream for the
    # old one and start it after the old stream's last sequence number (skipping its head).
    from matchcore.io.nats import NatsServer

    _need_nats()
    stream, prefix = names
    srv = NatsServer(store_dir=tmp_path / "js1").start()
    try:
        # a long first day: the old stream's sequence numbers run past the new one's head
        _publish_day(srv.url, stream, prefix, itch.generate(None, messages=40_000, symbols=2,
                                                            seed=17))
        day2 = itch.generate(None, messages=10_000, symbols=2, seed=18)
        r2 = itch.Replayer()
        r2.feed(day2)
        r2.finish()
        syms = sorted(r2.symbols[L] for L in r2.books)
        stop, t, box = _follow_in_thread(srv.url, stream, prefix, symbols=syms)
        time.sleep(2.0)                      # the follower has read the first replay
        srv = _restart_with_empty_store(srv, tmp_path)
        r2, trades2 = _publish_day(srv.url, stream, prefix, day2)
        c = _follower_after_resubscribe(stop, t, box, r2, trades2)
        assert not c.missing
    finally:
        srv.close()


def test_consume_prefix_reads_only_its_own_subjects_not_a_longer_prefix_in_same_stream(
        server, names):
    # a stream taking <prefix>.> also takes a publisher under <prefix>.eu: reading <prefix>
    # with no filter must not take <prefix>.eu.tob.AAPL for <prefix>.tob.AAPL
    from matchcore.io.nats import consume

    stream, prefix = names
    r1, trades1 = _publish_day(server.url, stream, prefix,
                               itch.generate(None, messages=10_000, symbols=2, seed=31))
    r2, trades2 = _publish_day(server.url, stream, f"{prefix}.eu",
                               itch.generate(None, messages=10_000, symbols=2, seed=32))
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    _assert_consumer_is_replay(c, r1, trades1)
    assert c.session_changes == 0 and not c.missing
    eu = consume(server.url, stream=stream, prefix=f"{prefix}.eu", timeout=60)
    _assert_consumer_is_replay(eu, r2, trades2)
    assert eu.session_changes == 0


@pytest.mark.parametrize("kw", [{"ack_timeout": float("nan")}, {"ack_timeout": 0},
                                {"connect_timeout": float("nan")},
                                {"connect_timeout": float("inf")},
                                {"reconnect_wait": float("nan")}, {"reconnect_wait": -1},
                                {"max_inflight": 2.5}, {"max_inflight": 0},
                                {"max_queue_bytes": float("inf")}, {"max_queue_bytes": True}])
def test_publisher_nan_or_fractional_settings_value_error_naming_them_before_connecting(kw):
    # connect_timeout=nan said "cannot connect to NATS ... no answer" of a broker that was
    # never tried; max_queue_bytes=inf an OverflowError; max_inflight=2.5 was accepted
    pytest.importorskip("nats")
    from matchcore.io.nats import NatsPublisher

    port = free_port()                        # nothing listens: it must not get that far
    with pytest.raises(ValueError, match=next(iter(kw))):
        NatsPublisher(f"nats://127.0.0.1:{port}", **kw)


# ---- two locates carrying one symbol name ----

@pytest.fixture(scope="module")
def shared_day():
    """A generated day whose locate 2 carries locate 1's name, and whose locate 3 is announced
    again half way through (same locate, same name: a repeated directory message)."""
    data = itch.generate(None, messages=40_000, symbols=4, seed=21)
    first, _, third, _ = itch.symbol_names(4)
    data = with_names(data, {2: first})
    half = len(data) // 2
    pos = 0
    while pos < half:                        # a message boundary near the middle
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    return data[:pos] + _itch_r(3, third) + data[pos:]


def test_replay_two_locates_one_name_consumer_rebuilds_both_books_nothing_lost(
        server, names, shared_day):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    first, _, third, _ = itch.symbol_names(4)
    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub, max_batch=200, keep=True)   # many batches per subject
        feed_chunks(r, shared_day, bridge, chunk=50_000)
    assert r.symbols[1] == r.symbols[2] == first and r.symbols[3] == third
    assert len(r.books[1]) and len(r.books[2])
    assert pub.stats["published"] == bridge.batches
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    # every batch applied (the second book's were dropped as redeliveries), none missing
    assert c.batches == bridge.batches and c.records == bridge.records
    assert not c.missing and c.bad == 0
    assert bridge.shared() == {first: [1, 2]}              # the re-announced locate is one book
    assert c.locates[first] == {1, 2} and c.locates[third] == {3}
    assert f"{first}@locate1" in c.symbols() and third in c.symbols() and first not in c.tob
    _assert_consumer_is_replay(c, r, bridge.kept()["trades"])
    # the name selects every book published under it
    one = consume(server.url, stream=stream, prefix=prefix, symbols=[first], timeout=60)
    assert one.symbols() == [f"{first}@locate1", f"{first}@locate2"] and not one.missing
    assert one.depth(f"{first}@locate2") == book_levels(r.books[2])


def test_consumer_second_locate_under_a_name_moves_first_book_to_its_label():
    from matchcore.io.nats import SESSION_HEADER

    c = MarketDataConsumer()
    tob = np.zeros(1, WIRE_TOB)
    tob[0] = (1, 100, 5, 105, 7)
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 4, 0, tob), {SESSION_HEADER: "a"})
    assert c.symbols() == ["X"] and c.tob["X"] == (1, 100, 5, 105, 7)
    tob2 = np.zeros(1, WIRE_TOB)
    tob2[0] = (2, 200, 1, 210, 1)
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 9, 1, tob2), {SESSION_HEADER: "a"})
    assert c.tob == {"X@locate4": (1, 100, 5, 105, 7), "X@locate9": (2, 200, 1, 210, 1)}
    assert not c.missing and c.batches == 2
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 9, 1, tob), {SESSION_HEADER: "a"})  # redelivery
    assert c.tob["X@locate9"] == (2, 200, 1, 210, 1) and c.batches == 2
    # a new session (another replay) on the subject drops every book published under the
    # name; its own locates decide the labels: one locate, the bare name
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 4, 0, tob2), {SESSION_HEADER: "b"})
    assert c.tob == {"X": (2, 200, 1, 210, 1)} and c.session_changes == 1
    assert c.locates["X"] == {4}
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 5, 1, tob), {SESSION_HEADER: "b"})
    assert c.tob == {"X@locate4": (2, 200, 1, 210, 1), "X@locate5": (1, 100, 5, 105, 7)}


def test_cli_replay_publish_two_locates_one_name_noted_subscribe_shows_both(
        server, names, shared_day, tmp_path, capsys):
    stream, prefix = names
    first = itch.symbol_names(4)[0]
    path = tmp_path / "shared.itch"
    path.write_bytes(shared_day)
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{first}@locate1, {first}@locate2" in out          # the summary's books
    assert f"note: symbol {first} is carried by locates 1, 2" in out
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", first])
    out = capsys.readouterr().out
    assert code == 0, out
    r = itch.replay_file(path)
    for loc in (1, 2):
        bb, ba = r.books[loc].best_bid(), r.books[loc].best_ask()
        assert (f"{first}@locate{loc} bid {bb[0] / 1e4:.4f} x {bb[1]:,}  "
                f"ask {ba[0] / 1e4:.4f} x {ba[1]:,}") in out
    assert "missing (sequence gaps) 0 records" in out


def test_consume_book_label_keeps_that_book_of_a_shared_name_nothing_missing(
        server, names, shared_day, capsys):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    first = itch.symbol_names(4)[0]
    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub, max_batch=200, keep=True)
        feed_chunks(r, shared_day, bridge, chunk=50_000)
    trades = bridge.kept()["trades"]
    c = consume(server.url, stream=stream, prefix=prefix, symbols=[f"{first}@locate2"],
                timeout=60)
    assert c.symbols() == [f"{first}@locate2"] and not c.missing
    assert c.depth(f"{first}@locate2") == book_levels(r.books[2])
    mine = trades[trades["locate"] == 2]
    assert c.trades[f"{first}@locate2"] == [len(mine), int(mine["shares"].sum())]
    # a label with leading zeros in the locate, and the label of a book the name lacks
    c = consume(server.url, stream=stream, prefix=prefix,
                symbols=[f"{first}@locate01", f"{first}@locate3"], kinds=["l2"], timeout=60)
    assert c.symbols() == [f"{first}@locate1"] and not c.missing
    assert c.depth(f"{first}@locate1") == book_levels(r.books[1])
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", f"{first}@locate2", "--kinds", "tob"])
    out = capsys.readouterr().out
    bb, ba = r.books[2].best_bid(), r.books[2].best_ask()
    assert code == 0 and "missing (sequence gaps) 0 records" in out
    assert (f"{first}@locate2 bid {bb[0] / 1e4:.4f} x {bb[1]:,}  "
            f"ask {ba[0] / 1e4:.4f} x {ba[1]:,}") in out and f"{first}@locate1" not in out


def test_replay_publisher_second_replayer_refused_nothing_published_under_first_names(
        server, names):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    one = itch.generate(None, messages=10_000, symbols=3, seed=1)
    # another day whose locates 1 and 3 carry each other's names of the first day
    two = with_names(itch.generate(None, messages=10_000, symbols=3, seed=2),
                      {1: "AMZN", 3: "AAPL"})
    r1, r2 = itch.Replayer(record_l2=True), itch.Replayer(record_l2=True)
    r1.feed(one)
    r1.finish()
    r2.feed(two)
    r2.finish()
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub)
        bridge(r1)
        batches = bridge.batches
        with pytest.raises(ValueError, match="publishes one replay"):
            bridge(r2)
        assert bridge.batches == batches and len(r2.tob())     # r2's sinks not drained
        ReplayPublisher(pub)(r2)                               # the way: a new session
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert r2.symbols == {1: "AMZN", 2: "MSFT", 3: "AAPL"}
    for loc, book in r2.books.items():
        bb, ba = book.best_bid(), book.best_ask()
        assert c.tob[r2.symbols[loc]][1:] == (bb[0], bb[1], ba[0], ba[1])
        assert c.depth(r2.symbols[loc]) == book_levels(book)


def test_consumer_older_per_locate_seq_on_shared_subject_counted_out_of_sequence(capsys):
    from types import SimpleNamespace

    from matchcore.cli_subscribe import _summary

    tob = np.zeros(2, WIRE_TOB)
    tob[:] = [(1, 100, 5, 105, 7), (2, 101, 5, 105, 7)]
    c = MarketDataConsumer()
    # two locates of one name, each counting its own seq (as publishers did before)
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob))
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 2, 0, tob[:1]))
    c.apply("mc.tob.X", encode_batch(KIND_TOB, 1, 0, tob))       # a true redelivery
    assert c.out_of_sequence == 1 and c.batches == 1 and c.symbols() == ["X"]
    _summary(c, SimpleNamespace(depth=0))
    assert "1 batches out of sequence" in capsys.readouterr().out


def test_cli_replay_publish_locate_renamed_mid_day_noted_book_whole_under_first_name(
        server, names, tmp_path, capsys):
    from matchcore.io.nats import consume

    stream, prefix = names
    # past the first 4 MiB chunk: the replay's first batches are published by then
    path = renamed_after_first_chunk(tmp_path, {1: "NEWNAME"})
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix])
    out = capsys.readouterr().out
    assert code == 0, out
    # the summary names the book NEWNAME, the subscriber found it under AAPL, unexplained
    assert (f"note: locate 1 was renamed AAPL -> NEWNAME during the replay: its book was "
            f"published on the subjects of AAPL ({prefix}.*.AAPL)") in out
    r = itch.replay_file(path)
    assert r.symbols[1] == "NEWNAME"
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == ["AAPL", "MSFT"] and not c.missing
    bb, ba = r.books[1].best_bid(), r.books[1].best_ask()
    assert c.tob["AAPL"][1:] == (bb[0], bb[1], ba[0], ba[1])


def _itch_e(loc, ref, shares, match, ts):
    import struct

    body = (b"E" + struct.pack(">HH", loc, 0) + ts.to_bytes(6, "big")
            + struct.pack(">QIQ", ref, shares, match))
    return struct.pack(">H", len(body)) + body


def _publish_chunks(server, stream, prefix, chunks):
    """A replay fed ``chunks`` (whole messages each), published after every chunk and at the
    end through one ReplayPublisher; returns the replayer and the publisher."""
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub)
        for chunk in chunks:
            r.feed(chunk)
            bridge(r)
        r.finish()
        bridge(r)
    return r, bridge


def renamed_after_first_chunk(tmp_path, renames):
    """A generated 2-symbol day of more than 5 MiB with stock directory messages renaming
    ``renames`` ({locate: name}) inserted after its first 4 MiB (the replay's first chunk),
    written to ``tmp_path / "renamed.itch"``; returns the path."""
    data = itch.generate(None, messages=200_000, symbols=2, seed=3)
    assert len(data) > 5 << 20
    pos = 0
    while pos < len(data) - (1 << 20):
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    path = tmp_path / "renamed.itch"
    path.write_bytes(data[:pos] + b"".join(_itch_r(loc, name) for loc, name in renames.items())
                     + data[pos:])
    return path


def test_replay_publisher_kind_first_seen_after_rename_stays_on_first_name_book_whole(
        server, names):
    from matchcore.io.nats import consume

    stream, prefix = names
    # locate 1 publishes top of book and L2 as AAA; then it is renamed BBB and a new locate
    # appears (the publisher looks the names up again); only then does locate 1 trade
    chunks = [_itch_r(1, "AAA") + _itch_a(1, 1, b"B", 100, "AAA", 10_000, 1)
              + _itch_a(1, 2, b"S", 100, "AAA", 10_100, 2),
              _itch_r(1, "BBB") + _itch_r(2, "CCC") + _itch_a(2, 3, b"B", 100, "CCC", 5_000, 3),
              _itch_e(1, 1, 40, 7, 4)]
    r, bridge = _publish_chunks(server, stream, prefix, chunks)
    assert r.symbols == {1: "BBB", 2: "CCC"}
    assert bridge.renamed(r.symbols) == {1: ("AAA", "BBB")}
    assert bridge.locates == {"AAA": {1}, "CCC": {2}}
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    # the trade went to BBB's subject: the book split between AAA (top, L2) and BBB (trades)
    assert c.symbols() == ["AAA", "CCC"] and not c.missing
    assert c.trades["AAA"] == [1, 40]
    assert c.tob["AAA"] == (4, 10_000, 60, 10_100, 100)
    assert c.depth("AAA") == book_levels(r.books[1])


def test_cli_replay_publish_name_with_leading_space_shares_subject_noted_subscribe_both(
        server, names, tmp_path, capsys):
    stream, prefix = names
    # locate 2 is " AAPL": subjects ignore leading spaces, so it is published on AAPL's
    data = with_names(itch.generate(None, messages=10_000, symbols=3, seed=4), {2: " AAPL"})
    path = tmp_path / "space.itch"
    path.write_bytes(data)
    r = itch.replay_file(path)
    assert r.symbols[1] == "AAPL" and r.symbols[2] == " AAPL"
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix])
    out = capsys.readouterr().out
    assert code == 0, out
    # the subscriber shows two books of AAPL, and the publisher said nothing of it
    assert (f"note: symbol AAPL is carried by locates 1, 2: their books share the subjects "
            f"{prefix}.*.AAPL") in out
    assert "AAPL@locate1, AAPL@locate2" in out and "renamed" not in out
    assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", "AAPL", "--kinds", "tob"]) == 0
    out = capsys.readouterr().out
    for loc in (1, 2):
        bb, ba = r.books[loc].best_bid(), r.books[loc].best_ask()
        assert (f"AAPL@locate{loc} bid {bb[0] / 1e4:.4f} x {bb[1]:,}  "
                f"ask {ba[0] / 1e4:.4f} x {ba[1]:,}") in out


def test_filter_subjects_kinds_or_symbols_as_generators_select_those_not_all():
    # the check for unknown kinds used the generator up: no kind left selected every kind
    assert filter_subjects("mc", (s for s in ["AAPL"]), (k for k in ["tob"])) == ["mc.tob.AAPL"]
    assert filter_subjects("mc", None, iter(["l2", "trade"])) == ["mc.l2.*", "mc.trade.*"]


def test_consume_symbols_and_kinds_as_generators_read_only_those(server, names, day):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        feed_chunks(r, day, ReplayPublisher(pub))
    assert len(r.books) == 4
    # the symbols' check used the generator up, and every symbol was read
    c = consume(server.url, stream=stream, prefix=prefix, symbols=(s for s in ["AAPL", "MSFT"]),
                kinds=(k for k in ["tob"]), timeout=60)
    assert c.symbols() == ["AAPL", "MSFT"] and c.records["trade"] == c.records["l2"] == 0
    bb = r.book("MSFT").best_bid()
    assert c.tob["MSFT"][1:3] == (bb[0], bb[1])


def test_replay_publisher_kinds_as_generator_publishes_those_kinds(server, names, day):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    stream, prefix = names
    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub, kinds=(k for k in ["tob", "trade"]))
        feed_chunks(r, day, bridge)
    # the check for unknown kinds used the generator up: nothing was published
    assert bridge.kinds == ("tob", "trade")
    assert bridge.records["tob"] > 0 and bridge.records["trade"] > 0
    assert bridge.records["l2"] == 0 and pub.stats["published"] == bridge.batches > 0


def test_cli_replay_publish_and_plot_draws_the_books_the_publisher_drained(
        server, names, shared_day, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    stream, prefix = names
    first = itch.symbol_names(4)[0]
    path = tmp_path / "shared.itch"
    path.write_bytes(shared_day)
    code = main(["replay", str(path), "--no-progress", "--plot", str(tmp_path / "alone")])
    alone = capsys.readouterr().out
    code2 = main(["replay", str(path), "--no-progress", "--publish", server.url, "--stream",
                  stream, "--subject-prefix", prefix, "--plot", str(tmp_path / "pub")])
    out = capsys.readouterr().out
    assert code == code2 == 0, out
    # the publisher drained the sinks chunk by chunk: "nothing to draw"
    listed = next(x for x in alone.splitlines() if x.startswith("plots: "))
    assert f"{first}_locate1.png, {first}_locate2.png" in listed
    assert listed.replace(str(tmp_path / "alone"), str(tmp_path / "pub")) in out
    assert sorted(p.name for p in (tmp_path / "pub").iterdir()) == \
        sorted(p.name for p in (tmp_path / "alone").iterdir())


def test_consume_empty_symbols_or_kinds_refused_not_every_symbol(server, names, capsys):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    _publish_day(server.url, stream, prefix, itch.generate(None, messages=3000, symbols=2,
                                                           seed=5))
    # symbols=[] read every symbol, as None does
    for kw, what in (({"symbols": []}, "symbols"), ({"kinds": ()}, "kinds"),
                     ({"symbols": iter([])}, "symbols")):
        with pytest.raises(ValueError, match=f"{what} is empty"):
            consume(server.url, stream=stream, prefix=prefix, timeout=60, **kw)
        with pytest.raises(ValueError, match=f"{what} is empty"):
            filter_subjects(prefix, **kw)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        with pytest.raises(ValueError, match="kinds is empty"):      # it published nothing
            ReplayPublisher(pub, kinds=())
    for opt in ("--symbols", "--kinds"):
        assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                     opt, ""]) == 1
        cap = capsys.readouterr()
        assert f"{opt} '' names nothing" in cap.err and "AAPL" not in cap.out


def _two_books_one_trades(chunked: bool):
    # locates 1 and 2 carry TEST; only locate 1 trades (locate 2's book first appears in a
    # later chunk when ``chunked``)
    one = (_itch_r(1, "TEST") + _itch_r(2, "TEST") + _itch_r(3, "OTHER")
           + _itch_a(1, 1, b"B", 100, "TEST", 10_000, 1)
           + _itch_a(3, 2, b"B", 100, "OTHER", 5_000, 2) + _itch_e(1, 1, 40, 7, 3))
    two = _itch_a(2, 3, b"S", 50, "TEST", 20_000, 4)
    return [one, two] if chunked else [one + two]


@pytest.mark.parametrize("chunked", [False, True])
def test_replay_publish_trades_only_locate_without_trades_labels_agree_with_summary(
        server, names, tmp_path, capsys, chunked):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    chunks = _two_books_one_trades(chunked)
    if not chunked:
        path = tmp_path / "two.itch"
        path.write_bytes(chunks[0])
        code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                     "--subject-prefix", prefix, "--publish-kinds", "trade", "--no-progress"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "books: 3: TEST@locate1, TEST@locate2, OTHER;" in out
        assert "note: symbol TEST is carried by locates 1, 2" in out
    else:
        r = itch.Replayer()
        with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
            bridge = ReplayPublisher(pub, kinds=("trade",))
            for chunk in chunks:
                r.feed(chunk)
                bridge(r)
            r.finish()
            bridge(r)
        assert bridge.shared() == {"TEST": [1, 2]}
    # the subscriber only saw locate 1's trade under TEST, and named that book TEST
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == ["TEST@locate1"] and not c.missing and not c.out_of_sequence
    assert c.trades == {"TEST@locate1": [1, 40]}
    assert c.locates["TEST"] == {1, 2}
    assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix]) == 0
    out = capsys.readouterr().out
    assert "TEST@locate1" in out and "TEST " not in out.replace("TEST@", "")


@pytest.mark.parametrize("given", ["", ","])
def test_cli_replay_publish_kinds_naming_nothing_refused_nothing_published(
        server, names, tmp_path, capsys, given):
    from matchcore.io.nats import consume

    stream, prefix = names
    path = itch.generate(tmp_path / "d.itch", messages=2000, symbols=2, seed=3)
    # --publish-kinds "" published every kind, as if it were not given
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--publish-kinds", given, "--no-progress"])
    cap = capsys.readouterr()
    assert code == 1 and f"--publish-kinds {given!r} names nothing" in cap.err
    assert "publishing" not in cap.out and "replayed" not in cap.out
    with pytest.raises(Exception, match="not found"):        # no stream was made
        consume(server.url, stream=stream, prefix=prefix, timeout=10)


def test_replay_publisher_locate_renamed_before_its_first_batch_published_under_new_name(
        server, names):
    from matchcore.io.nats import consume

    stream, prefix = names
    # locate 2 is BBB when locate 1's first batch is published, then renamed CCC before its
    # own first order: it went to BBB's subjects, a name it never published under
    chunks = [_itch_r(1, "AAA") + _itch_r(2, "BBB") + _itch_a(1, 1, b"B", 100, "AAA", 10_000, 1),
              _itch_r(2, "CCC") + _itch_a(2, 2, b"B", 100, "CCC", 5_000, 2)]
    r, bridge = _publish_chunks(server, stream, prefix, chunks)
    assert r.symbols == {1: "AAA", 2: "CCC"} and bridge.renamed(r.symbols) == {}
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == ["AAA", "CCC"] and not c.missing
    assert c.tob["CCC"] == (2, 5_000, 100, 0, 0)
    assert c.depth("CCC") == book_levels(r.books[2])


def test_replay_publisher_max_batch_beyond_broker_max_payload_split_all_delivered(
        server, names):
    # 65,535 L2 records of one book are 2 MiB, twice the broker's default max_payload: such
    # batches were refused by the client (MaxPayloadError) and counted as undelivered
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    data = itch.generate(None, messages=200_000, symbols=1, seed=4)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.max_payload == 1 << 20
        bridge = ReplayPublisher(pub, max_batch=65535, keep=True)
        r = itch.Replayer(record_l2=True)
        feed_chunks(r, data, bridge, chunk=len(data))
    st = pub.stats
    assert st["undelivered"] == st["dropped"] == 0, st["last_error"]
    assert st["published"] == bridge.batches and st["records_published"] == sum(
        bridge.records.values())
    assert bridge.records["l2"] > 65535
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert not c.missing and c.records == bridge.records
    _assert_consumer_is_replay(c, r, bridge.kept()["trades"])


def test_consume_prefix_or_kinds_the_stream_cannot_hold_raises_naming_its_subjects(
        server, names, capsys):
    # a forgotten --subject-prefix read nothing and exited 0, as an empty stream does, from a
    # stream whose subjects can never hold what it selected
    from matchcore.io.nats import StreamSetupError, consume

    stream, prefix = names
    _add_stream(server.url, name=stream, subjects=[f"{prefix}.tob.*"])
    with pytest.raises(StreamSetupError, match=rf"stream {stream} .*\['{prefix}\.tob\.\*'\]"):
        consume(server.url, stream=stream, prefix=f"x{prefix}", timeout=30)
    with pytest.raises(StreamSetupError, match=rf"{prefix}\.l2\.\*"):
        consume(server.url, stream=stream, prefix=prefix, kinds=["l2", "trade"], timeout=30)
    # what it can hold is read as before: a kind it holds, a selection that overlaps it
    consume(server.url, stream=stream, prefix=prefix, kinds=["tob", "l2"], timeout=30)
    consume(server.url, stream=stream, prefix=prefix, timeout=30)
    code = main(["subscribe", server.url, "--stream", stream])
    cap = capsys.readouterr()
    assert code == 1 and f"['{prefix}.tob.*']" in cap.err and "mc.*.*" in cap.err


def test_cli_subscribe_kinds_not_read_not_shown_as_empty(server, names, tmp_path, capsys):
    # --kinds tob printed "trades 0 (0 shares)" and --kinds l2 "no top of book" for books with
    # trades and a top of book: what was not read is not zero
    stream, prefix = names
    path = tmp_path / "day.itch"
    itch.generate(path, messages=5_000, symbols=2, seed=4)
    assert main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix]) == 0
    capsys.readouterr()
    r = itch.replay_file(path)
    loc = {v: k for k, v in r.symbols.items()}["AAPL"]
    n = int((r.trades()["locate"] == loc).sum())
    assert n > 0
    base = ["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
            "--symbols", "AAPL"]
    assert main(base + ["--kinds", "tob"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("AAPL")][0]
    assert "bid" in line and "trades" not in line
    assert main(base + ["--kinds", "l2"]) == 0
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if x.startswith("AAPL")][0]
    assert "top of book" not in line and "trades" not in line and "L2" in out
    assert main(base + ["--kinds", "trade"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("AAPL")][0]
    assert f"trades {n:,} (" in line and "top of book" not in line
    assert main(base) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("AAPL")][0]
    assert "bid" in line and f"trades {n:,} (" in line


def test_cli_replay_publish_and_subscribe_url_password_never_printed(server, names, tmp_path,
                                                                      capsys):
    # the URL was printed as given, credentials and all, to stdout and in every error
    from matchcore.io.nats import display_url

    assert display_url("nats://u:pw@h:4222") == "nats://u:***@h:4222"
    assert display_url("nats://s3cr3t@h:4222") == "nats://***@h:4222"
    assert display_url("u:pw@h:4222") == "u:***@h:4222"
    assert display_url("nats://h:4222") == "nats://h:4222"
    stream, prefix = names
    path = tmp_path / "day.itch"
    itch.generate(path, messages=2000, symbols=2, seed=4)
    url = server.url.replace("nats://", "nats://trader:hunter2@")
    assert main(["replay", str(path), "--publish", url, "--stream", stream,
                 "--subject-prefix", prefix, "--publish-kinds", "tob"]) == 0
    cap = capsys.readouterr()
    assert "trader:***@" in cap.out and "hunter2" not in cap.out + cap.err
    down = f"nats://trader:hunter2@127.0.0.1:{free_port()}"
    assert main(["replay", str(path), "--publish", down]) == 1
    assert main(["replay", str(path), "--publish", url, "--stream", "BAD.NAME"]) == 1
    assert main(["subscribe", url, "--stream", "NOPE"]) == 1
    assert main(["subscribe", url, "--stream", stream]) == 1       # another prefix's stream
    cap = capsys.readouterr()
    assert cap.err.count("trader:***@") >= 4 and "hunter2" not in cap.out + cap.err


def test_publisher_batch_beyond_max_payload_refused_alone_others_delivered(server, names):
    # a payload within max_payload but not with its NATS headers went out, the broker closed
    # the connection ("maximum payload exceeded") and every batch behind it was lost with it
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        big = b"x" * (pub.max_payload - 10)
        assert not pub.publish(f"{prefix}.tob.A", big, records=7,
                               headers={"Matchcore-Session": "abcdefabcdef"})
        assert not pub.publish(f"{prefix}.tob.A", big + b"x" * 20, records=7)
        ok = [pub.publish(f"{prefix}.tob.B", b"y" * 100) for _ in range(20)]
        assert pub.publish(f"{prefix}.tob.A", big)      # no headers: it fits
    st = pub.stats
    assert all(ok) and st["published"] == 21 and st["disconnects"] == 0
    assert st["undelivered"] == 2 and st["records_undelivered"] == 14
    assert "max_payload" in st["last_error"]
    assert _stream_msgs(server.url, stream) == 21


@pytest.mark.parametrize("n", [-1, -5, 1.5, True])
def test_consumer_depth_negative_or_not_int_levels_refused_not_the_worst_dropped(n):
    # depth("X", -1) sliced [:-1]: every level but the worst, as if it were the whole book
    c = MarketDataConsumer()
    rec = np.zeros(3, WIRE_L2)
    rec["price"] = [100, 99, 101]
    rec["qty"] = [5, 6, 7]
    rec["orders"] = 1
    rec["side"] = [b"B", b"B", b"S"]
    c.apply("mc.l2.X", encode_batch(KIND_L2, 1, 0, rec))
    assert c.depth("X") == ([(100, 5, 1), (99, 6, 1)], [(101, 7, 1)])
    assert c.depth("X", 0) == ([], []) and c.depth("X", 1) == ([(100, 5, 1)], [(101, 7, 1)])
    with pytest.raises((ValueError, TypeError), match="n must be"):
        c.depth("X", n)


def test_cli_subscribe_timeout_before_stream_end_noted_books_not_final(server, names, day,
                                                                      capsys):
    # --timeout without --follow cut the read short and printed the books read so far as if
    # they were the stream's, without a word
    from matchcore.io.nats import consume

    stream, prefix = names
    _publish_day(server.url, stream, prefix, day)
    c = consume(server.url, stream=stream, prefix=prefix, timeout=1e-9)
    assert c.timed_out
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60, consumer=c)
    assert not c.timed_out and not c.missing
    base = ["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix]
    assert main(base + ["--timeout", "1e-9"]) == 0
    assert "note: --timeout 1e-09 s ended the read before the end of the stream" in \
        capsys.readouterr().out
    assert main(base + ["--timeout", "60"]) == 0
    assert "ended the read" not in capsys.readouterr().out


def test_consume_idle_without_follow_refused_before_connecting():
    # subscribe refuses --idle without --follow (the read stops at the stream's end, the idle
    # time never counts); consume() took idle= without follow and ignored it
    _need_nats()
    from matchcore.io.nats import consume

    with pytest.raises(ValueError, match="idle needs follow"):
        consume(f"nats://127.0.0.1:{free_port()}", idle=1.0)


def test_cli_replay_publish_label_naming_no_book_reports_what_was_published(server, names,
                                                                           tmp_path, capsys):
    # a label found after the replay to name no book: the kept locate's book had been
    # published meanwhile, and the command exited 1 without a word about it
    from matchcore.io.nats import consume

    stream, prefix = names
    path = tmp_path / "day.itch"
    itch.generate(path, messages=3000, symbols=2, seed=4)
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--symbols", "AAPL@locate2"])
    cap = capsys.readouterr()
    assert code == 1 and "no book 'AAPL@locate2'" in cap.err
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.symbols() == ["MSFT"]
    n = sum(c.records.values())
    assert f"published: {c.batches:,} of {c.batches:,} batches ({n:,} records" in cap.out


def test_cli_replay_publish_kinds_repeated_published_once_in_order(server, names, tmp_path,
                                                                   capsys):
    # "--publish-kinds tob,trade,tob" said "publishing tob,trade,tob", and the bridge kept the
    # repeated kind twice
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    path = itch.generate(tmp_path / "d.itch", messages=2000, symbols=2, seed=3)
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--publish-kinds", "tob,trade,tob", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "publishing tob,trade to " in out
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert not c.missing and not c.out_of_sequence
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert ReplayPublisher(pub, kinds=("tob", "trade", "tob")).kinds == ("tob", "trade")
