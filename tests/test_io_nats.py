"""Market data over NATS JetStream against a real ``nats-server -js`` started here: the consumer
rebuilds the replay's books, subscribers filter, the publisher survives a broker restart and
never blocks, refuses settings and streams it cannot use, and the replay and subscribe commands
report what was published and read."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import matchcore.itch as itch
from matchcore.__main__ import main
from matchcore.io.nats import (KIND_TOB, KIND_TRADE, WIRE_TOB, encode_batch, filter_subjects,
                               free_port)
from nats_checks import (assert_consumer_is_replay, cli_publish_day, feed_chunks,
                         need_nats, publish_day, stream_messages, subscribe_symbols_of_day,
                         wait_stopped)
from nats_checks import day, names, server, shared_day  # noqa: F401  (fixtures)


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
    assert_consumer_is_replay(c, r, bridge.kept()["trades"])


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


def test_consume_inside_a_running_event_loop_reads_the_stream(server, names, day):
    # from a coroutine, as in a notebook (its kernel runs an event loop): consume() failed with
    # asyncio.run()'s "cannot be called from a running event loop", having read nothing,
    # while NatsPublisher, on a thread of its own, worked there
    import asyncio
    import threading

    from nats.js.errors import NotFoundError

    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub, keep=True)
        feed_chunks(r, day, bridge)
    before = set(threading.enumerate())

    async def inside():
        c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
        with pytest.raises(NotFoundError):          # the read's errors, as without a loop
            consume(server.url, stream=stream + "X", prefix=prefix, timeout=10)
        stop = threading.Event()
        stop.set()
        quiet = consume(server.url, stream=stream, prefix=prefix, follow=True, stop=stop)
        return c, quiet

    c, quiet = asyncio.run(inside())
    assert c.bad == 0 and not c.missing and not c.timed_out and c.records == bridge.records
    assert_consumer_is_replay(c, r, bridge.kept()["trades"])
    assert quiet.batches == 0
    assert set(threading.enumerate()) <= before     # no reading thread left behind


def test_publisher_broker_restart_mid_run_reconnects_reports_never_blocks(names, day):
    from matchcore.io.nats import NatsPublisher, NatsServer, ReplayPublisher, consume

    need_nats()
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
        assert st["published"] + st["undelivered"] + st["unconfirmed"] == st["queued"]
        # the outage reported: the batches sent while the broker was away got no
        # acknowledgement within ack_timeout (unconfirmed: 252 to 256 of 768 in six runs
        # beside two busy loops). Once, with two test processes on two cores, none was
        # unconfirmed: no batch then waited ack_timeout while the broker was away (the
        # publisher's thread slow to send them), and every one must have been published.
        assert st["unconfirmed"] > 0 or st["published"] == st["queued"]
        assert st["records_published"] + st["records_undelivered"] + st["records_dropped"] \
            + st["records_unconfirmed"] == sum(bridge.records.values())
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
    trades = np.zeros(10, np.dtype(
        [("ts", "<i8"), ("price", "<i8"), ("shares", "<i8"), ("match_number", "<u8"),
         ("ref", "<u8"), ("kind", "S1"), ("side", "S1"), ("flag", "S1"), ("_pad", "V1")]))
    trades["kind"], trades["side"] = b"E", b"B"
    payload = encode_batch(KIND_TRADE, 1, 0, trades)
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
    need_nats()
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
    assert "dropped (queue full) 0 batches" in out and "undelivered (refused or not sent) 0 / 0" \
        in out and "unconfirmed (no ack in 5 s, may be stored) 0 / 0" in out
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
    out = subscribe_symbols_of_day(server, stream, prefix, tmp_path, capsys,
                                   "AAPL,NOPE,MSFT@locate2,MSFT@locate3,AAPL")
    assert "AAPL     bid" in out and "MSFT@locate2 " in out
    assert out.rstrip().endswith("note: no records received for NOPE, MSFT@locate3")
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", "AAPL,MSFT"])
    out = capsys.readouterr().out
    assert code == 0 and "note:" not in out, out


def test_cli_replay_publish_broker_down_exit_1_clear_message(tmp_path, capsys):
    need_nats()
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
    need_nats()
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
    # queued ones given up were never sent; those in flight may have been stored
    assert st["published"] + st["undelivered"] + st["unconfirmed"] == 200
    assert st["undelivered"] > 0 and st["unconfirmed"] > 0
    assert st["records_published"] + st["records_undelivered"] + st["records_unconfirmed"] \
        == 200 * 100
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


def test_publisher_existing_stream_other_subjects_raises_stream_setup_error(server, names):
    from matchcore.io.nats import NatsPublisher, StreamSetupError

    stream, prefix = names
    _add_stream(server.url, name=stream, subjects=[f"other{prefix}.>"])
    with pytest.raises(StreamSetupError, match=rf"stream {stream} .*\['other{prefix}\.>'\], "
                                               rf"which do not take {prefix}\.>"):
        NatsPublisher(server.url, stream=stream, prefix=prefix)
    assert stream_messages(server.url, stream) == 0


def test_publisher_subjects_taken_by_another_stream_error_names_that_stream(server, names):
    from matchcore.io.nats import NatsPublisher, StreamSetupError

    stream, prefix = names
    _add_stream(server.url, name=f"{stream}OWNER", subjects=[f"{prefix}.tob.*"])
    with pytest.raises(StreamSetupError, match=rf"stream {stream}OWNER .*{prefix}\.tob\.\*"):
        NatsPublisher(server.url, stream=stream, prefix=prefix)
    assert stream_messages(server.url, f"{stream}OWNER") == 0


def test_publisher_existing_stream_wildcards_covering_prefix_accepted(server, names):
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    _add_stream(server.url, name=stream, subjects=[f"{prefix}.*.*"])
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 0, np.zeros(1, WIRE_TOB)))
    assert pub.stats["published"] == 1 and stream_messages(server.url, stream) == 1


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
    assert stream_messages(server.url, stream) == 0


def test_cli_replay_publish_bad_stream_name_refused_not_connect_error(server, tmp_path,
                                                                      capsys):
    path = tmp_path / "day.itch"
    itch.generate(path, messages=1000, symbols=2, seed=4)
    code = main(["replay", str(path), "--publish", server.url, "--stream", "BAD.NAME"])
    err = capsys.readouterr().err
    assert code == 1 and "stream name 'BAD.NAME' is not a JetStream stream name" in err
    assert "cannot connect" not in err


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
    # refused by the broker: known not stored
    assert "undelivered (refused or not sent) 0 " not in cap.out
    assert "unconfirmed (no ack in 5 s, may be stored) 0 / 0" in cap.out


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


# (nan is not a decimal: a usage error, exit 2, in test_cli_options_plain_decimals.py)
@pytest.mark.parametrize("opt,value", [("--timeout", "-1"), ("--timeout", "0"), ("--idle", "-2")])
def test_cli_subscribe_nonpositive_timeout_or_idle_exit_1_before_connecting(server, names,
                                                                             tmp_path, capsys,
                                                                             opt, value):
    # with a stream that holds data, a negative --timeout read nothing and exited 0
    stream, prefix = names
    path = tmp_path / "d.itch"
    cli_publish_day(server, stream, prefix, path, messages=2000, seed=3)
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
    cli_publish_day(server, stream, prefix, path, messages=2000, seed=3)
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "matchcore", "subscribe", server.url,
                               "--stream", stream, "--subject-prefix", prefix],
                              stdout=full, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == ("matchcore subscribe: error: stdout: cannot be written: "
                           "[Errno 28] No space left on device\n")


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
        stream_messages(server.url, stream)


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
        stream_messages(server.url, stream)
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", f"{prefix}.>"])
    cap = capsys.readouterr()
    assert code == 1 and "is not a NATS subject to publish to" in cap.err


def test_consume_symbols_as_one_str_raises_type_error_before_connecting():
    # a str is iterable: symbols="AAPL" read the symbols A, P and L (A exists in real data)
    from matchcore.io.nats import consume

    need_nats()
    url = f"nats://127.0.0.1:{free_port()}"          # nothing listens: raised before connecting
    with pytest.raises(TypeError, match=r"symbols must be a list of names.*\['AAPL'\]"):
        consume(url, symbols="AAPL")
    with pytest.raises(TypeError, match="kinds must be a list of names"):
        filter_subjects("mc", ["AAPL"], "tob")



@pytest.mark.parametrize("kw", [dict(timeout=-1), dict(timeout=0), dict(timeout=float("nan")),
                                dict(idle=-1, follow=True), dict(idle=float("nan"),
                                                                 follow=True),
                                dict(timeout="1"), dict(idle="1", follow=True)])
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


def test_consume_prefix_reads_only_its_own_subjects_not_a_longer_prefix_in_same_stream(
        server, names):
    # a stream taking <prefix>.> also takes a publisher under <prefix>.eu: reading <prefix>
    # with no filter must not take <prefix>.eu.tob.AAPL for <prefix>.tob.AAPL
    from matchcore.io.nats import consume

    stream, prefix = names
    r1, trades1 = publish_day(server.url, stream, prefix,
                               itch.generate(None, messages=10_000, symbols=2, seed=31))
    r2, trades2 = publish_day(server.url, stream, f"{prefix}.eu",
                               itch.generate(None, messages=10_000, symbols=2, seed=32))
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert_consumer_is_replay(c, r1, trades1)
    assert c.session_changes == 0 and not c.missing
    eu = consume(server.url, stream=stream, prefix=f"{prefix}.eu", timeout=60)
    assert_consumer_is_replay(eu, r2, trades2)
    assert eu.session_changes == 0


@pytest.mark.parametrize("kw", [{"ack_timeout": float("nan")}, {"ack_timeout": 0},
                                {"connect_timeout": float("nan")},
                                {"connect_timeout": float("inf")},
                                {"reconnect_wait": float("nan")}, {"reconnect_wait": -1},
                                {"max_inflight": 2.5}, {"max_inflight": 0},
                                {"max_queue_bytes": float("inf")}, {"max_queue_bytes": True},
                                {"ack_timeout": "5"}, {"connect_timeout": "1"},
                                {"reconnect_wait": "1"}])
def test_publisher_nan_or_fractional_settings_value_error_naming_them_before_connecting(kw):
    # connect_timeout=nan said "cannot connect to NATS ... no answer" of a broker that was
    # never tried; max_queue_bytes=inf an OverflowError; max_inflight=2.5 was accepted
    pytest.importorskip("nats")
    from matchcore.io.nats import NatsPublisher

    port = free_port()                        # nothing listens: it must not get that far
    with pytest.raises(ValueError, match=next(iter(kw))):
        NatsPublisher(f"nats://127.0.0.1:{port}", **kw)


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
    publish_day(server.url, stream, prefix, itch.generate(None, messages=3000, symbols=2,
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
    assert_consumer_is_replay(c, r, bridge.kept()["trades"])


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
    # the stream of another prefix: it does not take mc.>
    assert main(["replay", str(path), "--publish", url, "--stream", stream]) == 1
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
    assert stream_messages(server.url, stream) == 21


def test_cli_subscribe_timeout_before_stream_end_noted_books_not_final(server, names, day,
                                                                      capsys, monkeypatch):
    # --timeout without --follow cut the read short and printed the books read so far as if
    # they were the stream's, without a word
    from matchcore.io.nats import MarketDataConsumer, consume

    stream, prefix = names
    publish_day(server.url, stream, prefix, day)
    # the first batch outlasts the timeout (which bounds the connection too: it cannot be
    # made too short to connect)
    c = MarketDataConsumer()
    consume(server.url, stream=stream, prefix=prefix, timeout=2, consumer=c,
            on_batch=lambda *_: time.sleep(2.1) if c.batches == 1 else None)
    assert c.timed_out
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60, consumer=c)
    assert not c.timed_out and not c.missing
    base = ["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix]
    apply = MarketDataConsumer.apply

    def slow_first(self, *a):
        if not self.batches:
            time.sleep(2.1)
        return apply(self, *a)

    monkeypatch.setattr(MarketDataConsumer, "apply", slow_first)
    assert main(base + ["--timeout", "2"]) == 0
    assert "note: --timeout 2 s ended the read before the end of the stream" in \
        capsys.readouterr().out
    monkeypatch.undo()
    assert main(base + ["--timeout", "60"]) == 0
    assert "ended the read" not in capsys.readouterr().out


def test_consume_idle_without_follow_refused_before_connecting():
    # subscribe refuses --idle without --follow (the read stops at the stream's end, the idle
    # time never counts); consume() took idle= without follow and ignored it
    need_nats()
    from matchcore.io.nats import consume

    with pytest.raises(ValueError, match="idle needs follow"):
        consume(f"nats://127.0.0.1:{free_port()}", idle=1.0)


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


def test_nats_server_started_again_while_running_keeps_one_process_close_stops_it():
    # `with NatsServer().start() as srv:` started a second nats-server on the same port (it
    # failed to bind, unnoticed: the first one answered) and kept only that one: close()
    # stopped the dead second process and the first ran on, its store deleted under it
    need_nats()
    from matchcore.io.nats import NatsServer

    srv = NatsServer().start()
    first = srv.proc
    try:
        with srv.start() as again:
            assert again is srv and srv.proc is first
        assert first.poll() is not None
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_nats_server_port_taken_by_another_server_start_raises_naming_port(server):
    # start() connected to whatever listened on the port: the other server's, while its own
    # process failed to bind and exited; the caller then used a server it does not own
    from matchcore.io.nats import NatsServer

    other = NatsServer(port=server.port)
    try:
        with pytest.raises(RuntimeError, match=f"port {server.port}"):
            other.start()
        assert other.proc is None
    finally:
        other.close()


def _publisher_threads() -> set:
    """The publisher loop threads running now. Compared as "none new is left": one of an
    earlier test's publisher still ending (a close() that gave up waiting, a publisher not yet
    collected) is not this test's."""
    import threading

    return {t for t in threading.enumerate() if t.name == "matchcore-nats-publisher"}


def test_replay_hooks_bad_publish_kinds_frees_metrics_port_and_publisher(server, names):
    # the bridge refused the kinds after the metrics server and the publisher had started:
    # the port stayed bound and the publisher's thread and connection ran on
    import io
    import socket

    from matchcore.io.replay_hooks import ReplayHooks

    pytest.importorskip("prometheus_client")
    stream, prefix = names
    port = free_port()
    before = _publisher_threads()
    with pytest.raises(ValueError, match="bogus"):
        ReplayHooks(metrics_port=port, publish=server.url, publish_kinds=("tob", "bogus"),
                    stream=stream, prefix=prefix, out=io.StringIO())
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    assert _publisher_threads() <= before


@pytest.mark.parametrize("ch", ["\x7f", "\x00", "\x1b", "\x85"])
def test_publisher_prefix_with_control_character_refused_nothing_created(server, names, ch):
    # a prefix with DEL was published to (acknowledged, stored) and no subscriber with that
    # prefix could read it: consume() and `subscribe` found nothing and ended as from an
    # empty stream
    from nats.js.errors import NotFoundError

    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    bad = f"{prefix}{ch}x"
    with pytest.raises(ValueError, match="is not a NATS subject to publish to"):
        NatsPublisher(server.url, stream=stream, prefix=bad)
    with pytest.raises(ValueError, match="control characters"):
        filter_subjects(bad, ["X"], ["tob"])
    with pytest.raises(NotFoundError):
        stream_messages(server.url, stream)


def test_cli_replay_publish_url_password_with_at_sign_never_printed(tmp_path, capsys):
    # the mask ended at the first '@': "p@ss" (the password the client takes, up to the last
    # '@' of the address) was printed as "user:***@ss@host", half of it in clear
    from matchcore.io.nats import display_url

    assert display_url("nats://user:p@ss@h:4222") == "nats://user:***@h:4222"
    assert display_url("nats://to@ken@h:4222") == "nats://***@h:4222"
    assert display_url("u:p@s@s@h:4222") == "u:***@h:4222"
    need_nats()
    path = tmp_path / "day.itch"
    itch.generate(path, messages=200, symbols=1, seed=4)
    down = f"nats://trader:hun@ter2@127.0.0.1:{free_port()}"
    assert main(["replay", str(path), "--publish", down]) == 1
    cap = capsys.readouterr()
    assert "trader:***@127.0.0.1" in cap.err and "ter2" not in cap.out + cap.err


@pytest.mark.parametrize("bad", [1.5, True, "100", 0, 65536, None])
def test_replay_publisher_max_batch_not_a_whole_number_in_range_refused_naming_it(server, names,
                                                                                  bad):
    # 1.5 was taken as 1 (one record per batch), True as 1, and "100" failed in a comparison
    # naming neither the setting nor its range
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    stream, prefix = names
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        with pytest.raises(ValueError, match=r"max_batch must be an int in 1\.\.65535"):
            ReplayPublisher(pub, max_batch=bad)


@pytest.mark.parametrize("kinds, option", [(("l2",), "record_l2"),
                                            (("trade", "tob"), "record_tob")])
def test_replay_publisher_kind_whose_sink_the_replay_lacks_refused_nothing_sent(server, names,
                                                                              kinds, option):
    # l2 on a replay without record_l2=True published nothing, without a word: a subscriber
    # saw no level at all and took every book for empty
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    stream, prefix = names
    data = itch.generate(None, messages=3000, symbols=2, seed=1)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        rp = ReplayPublisher(pub, kinds=kinds)
        r = itch.Replayer(record_tob=option != "record_tob")
        r.feed(data)
        with pytest.raises(ValueError, match=f"needs the replayer's {option}=True"):
            rp(r)
        assert rp.batches == 0 and not any(rp.records.values())
        ok = itch.Replayer(record_l2=True)
        ok.feed(data)
        ReplayPublisher(pub, kinds=kinds)(ok)


def test_nats_server_with_block_failing_to_start_removes_its_temporary_store(server):
    # __enter__ raised from start() and __exit__ never ran: the temporary store directory was
    # left behind
    from matchcore.io.nats import NatsServer

    srv = NatsServer(port=server.port)           # taken: start() raises
    with pytest.raises(RuntimeError, match=f"port {server.port}"):
        with srv:
            pass
    assert not os.path.exists(srv.store_dir)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a full disk)")
def test_cli_replay_publish_output_failing_after_replay_flushes_reports_frees_port(
        server, names, tmp_path, capsys):
    # --dump-book on a full disk raised after the replay, past the publisher's flush and
    # report: the command exited 1 naming the disk while the process's end cut the batches
    # still queued (the stream simply ended early, no gap to see), no "published:" line said
    # so, and in-process the metrics port and the publisher's thread stayed
    import socket

    pytest.importorskip("prometheus_client")
    stream, prefix = names
    path = itch.generate(tmp_path / "d.itch", messages=20_000, symbols=2, seed=8)
    port = free_port()
    before = _publisher_threads()
    code = main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--metrics-port", str(port), "--no-progress",
                 "--dump-book", "/dev/full"])
    cap = capsys.readouterr()
    assert code == 1 and "No space left on device" in cap.err
    assert "published: " in cap.out and "dropped (queue full) 0 batches" in cap.out
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    assert _publisher_threads() <= before


def test_replay_hooks_publish_kinds_as_generator_record_l2_and_say_them(server, names):
    # the kinds were read once by the bridge and then again, used up, for the replay's
    # record_l2 switch and the "publishing ..." line: no L2 was recorded or published and
    # the line named no kind
    import io

    from matchcore.io.replay_hooks import ReplayHooks

    stream, prefix = names
    out = io.StringIO()
    hooks = ReplayHooks(publish=server.url, publish_kinds=(k for k in ("tob", "l2")),
                        stream=stream, prefix=prefix, out=out)
    try:
        assert hooks.bridge.kinds == ("tob", "l2")
        assert hooks.replay_options == {"record_l2": True}
        assert "publishing tob,l2 to " in out.getvalue()
    finally:
        hooks.close()


def test_publisher_ack_timeout_counts_unconfirmed_not_undelivered_stored_batches_read(names):
    # A batch without an acknowledgement within ack_timeout was counted as undelivered, though
    # the broker may have stored it: here it stored all 50, which a subscriber read back.
    import signal

    need_nats()
    from matchcore.io.nats import NatsPublisher, NatsServer, consume

    stream, prefix = names
    with NatsServer() as srv:
        pub = NatsPublisher(srv.url, stream=stream, prefix=prefix, ack_timeout=0.5)
        os.kill(srv.proc.pid, signal.SIGSTOP)        # the broker answers nothing for a while
        try:
            wait_stopped(srv.proc.pid)
            for i in range(50):
                assert pub.publish(f"{prefix}.tob.X",
                                   encode_batch(KIND_TOB, 1, 3 * i, np.zeros(3, WIRE_TOB)), 3)
            assert pub.flush(30)
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        st = pub.close()
        c = consume(srv.url, stream=stream, prefix=prefix, timeout=60)
    assert c.batches == 50 and c.records["tob"] == 150 and not c.missing
    assert st["unconfirmed"] == 50 and st["records_unconfirmed"] == 150
    assert st["undelivered"] == st["records_undelivered"] == st["published"] == 0


def test_cli_subscribe_sequence_gaps_exit_1_error_line_after_summary(server, names, capsys):
    # a subscriber that saw batches missing from the stream exited 0, as after a whole read
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        for seq in (0, 10, 13, 30):                  # 3 records each: gaps of 7 and 14
            assert pub.publish(f"{prefix}.tob.X",
                               encode_batch(KIND_TOB, 1, seq, np.zeros(3, WIRE_TOB)), 3)
        assert pub.publish(f"{prefix}.tob.Y",
                           encode_batch(KIND_TOB, 2, 0, np.zeros(3, WIRE_TOB)), 3)
    assert pub.stats["published"] == 5
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix])
    cap = capsys.readouterr()
    assert code == 1
    assert "missing (sequence gaps) 21 records" in cap.out and "X " in cap.out
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("matchcore subscribe: error: ")
    assert "2 sequence gaps" in err[0] and "21 records" in err[0]
    # a whole stream still exits 0
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", "Y"])
    cap = capsys.readouterr()
    assert code == 0 and cap.err == ""


def test_replay_publisher_stream_max_msg_size_below_max_payload_batches_fit_all_delivered(
        server, names, day):
    # a stream made with max_msg_size below the broker's max_payload refused the batches sized
    # for max_payload (1,500 L2 records are 48 kB): most of the replay was never stored
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    _add_stream(server.url, name=stream, subjects=[f"{prefix}.>"], max_msg_size=4096)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub, keep=True)
        r = itch.Replayer(record_l2=True)
        feed_chunks(r, day, bridge)
    st = pub.stats
    assert st["undelivered"] == st["unconfirmed"] == st["dropped"] == 0, st["last_error"]
    assert st["published"] == bridge.batches
    assert st["records_published"] == sum(bridge.records.values())
    assert_consumer_is_replay(consume(server.url, stream=stream, prefix=prefix, timeout=60), r,
                              bridge.kept()["trades"])
    # a batch beyond the stream's limit is refused by the publisher, naming that limit
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert not pub.publish(f"{prefix}.tob.A", b"x" * 5000, records=3)
    assert pub.stats["undelivered"] == 1 and "max_msg_size of 4,096" in pub.stats["last_error"]


def test_publisher_stream_taking_only_published_kinds_accepted_others_refused(server, names,
                                                                              tmp_path, capsys):
    # a stream taking the top-of-book subjects only was refused for a publisher of top of book
    # alone, because it did not take the trade and L2 subjects too
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, StreamSetupError, consume

    stream, prefix = names
    _add_stream(server.url, name=stream, subjects=[f"{prefix}.tob.*"])
    with pytest.raises(StreamSetupError, match=rf"\['{prefix}\.tob\.\*'\], which do not take "
                                               rf"{prefix}\.l2\.\*"):
        NatsPublisher(server.url, stream=stream, prefix=prefix, kinds=["tob", "l2"])
    with NatsPublisher(server.url, stream=stream, prefix=prefix, kinds=["tob"]) as pub:
        # a bridge publishing a kind its publisher was not set up for is refused
        with pytest.raises(ValueError, match="l2"):
            ReplayPublisher(pub, kinds=("tob", "l2"))
        bridge = ReplayPublisher(pub, kinds=("tob",))
        r = itch.Replayer()
        feed_chunks(r, itch.generate(None, messages=5000, symbols=2, seed=4), bridge)
    assert pub.stats["published"] == bridge.batches > 0
    c = consume(server.url, stream=stream, prefix=prefix, kinds=["tob"], timeout=60)
    assert c.records["tob"] == bridge.records["tob"] > 0
    path = tmp_path / "day.itch"
    itch.generate(path, messages=5000, symbols=2, seed=5)
    capsys.readouterr()
    assert main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--publish-kinds", "tob"]) == 0
    assert "publishing tob to " in capsys.readouterr().out
    assert main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--publish-kinds", "tob,trade"]) == 1
    assert f"which do not take {prefix}.trade.*" in capsys.readouterr().err


def test_publisher_short_ack_timeout_stream_setup_not_bounded_by_it(server, names):
    # the stream's lookup and creation were bounded by ack_timeout: a publisher asking for
    # acknowledgements within 0.1 ms could not start, "stream ...: TimeoutError: nats: timeout"
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    with NatsPublisher(server.url, stream=stream, prefix=prefix, ack_timeout=0.0001) as pub:
        assert pub.max_payload == 1 << 20
    assert pub.stats["last_error"] is None
    with NatsPublisher(server.url, stream=stream, prefix=prefix, ack_timeout=0.0001) as pub:
        pass                                        # the stream exists now: looked up
    assert stream_messages(server.url, stream) == 0


@pytest.mark.parametrize("kw", [dict(timeout=True), dict(idle=True, follow=True)])
def test_consume_timeout_or_idle_given_as_bool_refused_before_connecting(kw):
    # consume(timeout=True) read for 1 s (a bool is a number to numbers.Real)
    pytest.importorskip("nats")
    from matchcore.io.nats import consume

    with pytest.raises(ValueError, match=f"{next(iter(kw))} must be > 0 seconds or None, got "
                                         f"True"):
        consume("nats://127.0.0.1:1", **kw)


def test_replay_publisher_counts_a_chunk_only_once_handed_over(server, names, day):
    # ReplayPublisher counted a chunk's batches and records as it encoded them, before
    # publish_many() took them: a Ctrl-C (or any refusal) in between left them counted as
    # handed over but never queued, and `replay --publish` printed "published: 2,486 of 2,572
    # batches" with nothing dropped, undelivered or unconfirmed. The interruption comes here
    # at the hand-over of the third chunk.
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    stream, prefix = names
    r = itch.Replayer(record_l2=True)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub)
        real, calls = pub.publish_many, []

        def interrupted_third(items):
            calls.append(len(items))
            if len(calls) == 3:
                raise KeyboardInterrupt
            return real(items)

        pub.publish_many = interrupted_third
        with pytest.raises(KeyboardInterrupt):
            feed_chunks(r, day, bridge)
        st = pub.close()
    assert len(calls) == 3
    assert bridge.batches == sum(calls[:2]) == st["queued"] + st["dropped"]
    assert sum(bridge.records.values()) == st["records_queued"] + st["records_dropped"]


def test_consume_timeout_beyond_float_range_refused_naming_it_consumer_unchanged():
    # consume(timeout=10**400) raised OverflowError "int too large to convert to float",
    # naming neither the option nor the rule, after it had reset the consumer's timed_out
    # (the record of its last read cut short)
    pytest.importorskip("nats")
    from matchcore.io.nats import MarketDataConsumer, consume

    c = MarketDataConsumer()
    c.timed_out = True
    with pytest.raises(ValueError, match=r"timeout must be > 0 seconds or None, got 1000.*: "
                                         r"beyond the float range"):
        consume("nats://127.0.0.1:1", timeout=10**400, consumer=c)
    assert c.timed_out
