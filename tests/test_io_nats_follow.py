"""Following a NATS stream against a real ``nats-server -js``: sessions and their restarts, a second
replay into the same stream, broker restarts, lost consumers, and stopping a follower."""
from __future__ import annotations

import re
import threading
import time

import pytest

import matchcore.itch as itch
from matchcore.__main__ import main
from nats_checks import assert_consumer_is_replay, cli_publish_day, need_nats, publish_day
from nats_checks import day, names, server  # noqa: F401  (fixtures)


def _restart_with_empty_store(srv, tmp_path):
    """The same port, an empty store: the stream and every consumer on it are gone."""
    from matchcore.io.nats import NatsServer

    srv.stop()
    srv = NatsServer(port=srv.port, store_dir=tmp_path / "js2").start()
    time.sleep(1.0)
    return srv


def _follow_in_thread(url, stream, prefix, **options):
    """consume(follow=True) in a thread; returns (stop event, thread, box): box["c"] holds the
    result, box["error"] what it raised (checked by the caller), box["live"] the consumer
    while it reads."""
    from matchcore.io.nats import MarketDataConsumer, consume

    stop = threading.Event()
    box = {"live": options.pop("consumer", None) or MarketDataConsumer()}

    def follow():
        try:
            box["c"] = consume(url, stream=stream, prefix=prefix, follow=True, stop=stop,
                               timeout=120, consumer=box["live"], **options)
        except BaseException as e:       # reported by the caller's assertion
            box["error"] = e

    t = threading.Thread(target=follow)
    t.start()
    return stop, t, box


def _wait_holds_replay(c, r, trades, t, within=60):
    """Until the consumer ``c`` of the follower ``t`` holds replay ``r``'s books and trades
    (checked again by the caller once the follower has stopped). A fixed wait for the follower
    to get there was too short on a loaded machine."""
    deadline = time.monotonic() + within
    while t.is_alive() and time.monotonic() < deadline:
        try:
            assert_consumer_is_replay(c, r, trades)
            return
        except Exception:           # not there yet, or read while the follower updates it
            time.sleep(0.05)


def _follower_after_resubscribe(stop, t, box, r, trades):
    # stop a following consumer once it has read a new replay, and check it resubscribed and
    # rebuilt exactly that replay. Its resubscription and its read are waited for, not assumed
    # within a fixed time: on a loaded machine either took longer than a fixed wait allowed.
    # (The new replay is the stream's last: anything read twice was read before it.)
    deadline = time.monotonic() + 60
    while box["live"].resubscribes < 1 and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    _wait_holds_replay(box["live"], r, trades, t)
    stop.set()
    t.join(timeout=60)
    assert "error" not in box, box.get("error")
    c = box["c"]
    assert c.resubscribes >= 1 and c.last_error
    assert_consumer_is_replay(c, r, trades)
    return c


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
    r, trades = publish_day(server.url, stream, prefix, day)
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
    assert_consumer_is_replay(box["c"], r, trades)


def test_second_replay_into_same_stream_subscriber_ends_with_second_books(server, names):
    from matchcore.io.nats import consume

    stream, prefix = names
    day1 = itch.generate(None, messages=20_000, symbols=2, seed=1)
    day2 = itch.generate(None, messages=20_000, symbols=2, seed=2)
    r1, _ = publish_day(server.url, stream, prefix, day1)
    r2, trades2 = publish_day(server.url, stream, prefix, day2)
    assert {L: b.state_hash() for L, b in r1.books.items()} != \
        {L: b.state_hash() for L, b in r2.books.items()}
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert_consumer_is_replay(c, r2, trades2)
    assert c.session_changes == 3 * len(r2.books) and not c.missing and c.bad == 0


def test_stream_of_two_replays_read_again_into_same_consumer_changes_nothing(server, names):
    # consume(consumer=) reads from the stream's first message: the first replay's batches
    # came again and were taken for a newer session, each subject restarted once more (its
    # books the first replay's until the second one's came again) and every batch counted
    # twice
    from matchcore.io.nats import consume

    stream, prefix = names
    publish_day(server.url, stream, prefix, itch.generate(None, messages=5_000, symbols=2,
                                                           seed=5))
    r2, trades2 = publish_day(server.url, stream, prefix,
                               itch.generate(None, messages=5_000, symbols=2, seed=6))
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    first = (c.session_changes, c.batches, dict(c.records))
    assert first[0] == 3 * len(r2.books)
    seen = []
    consume(server.url, stream=stream, prefix=prefix, timeout=60, consumer=c,
            on_batch=lambda subject, payload: seen.append(
                {k: dict.get(c.tob, k) for k in c.symbols()}))
    assert len(seen) == first[1] and not c.timed_out
    # at no point did the books go back to the first replay's top of book
    assert all(tobs == seen[-1] for tobs in seen)
    assert (c.session_changes, c.batches, c.records) == first
    assert_consumer_is_replay(c, r2, trades2)
    assert not c.missing and c.bad == 0 and c.out_of_sequence == 0


def test_live_subscriber_sees_second_replay_and_ends_with_its_books(server, names):
    from matchcore.io.nats import MarketDataConsumer, consume

    stream, prefix = names
    publish_day(server.url, stream, prefix, itch.generate(None, messages=20_000, symbols=2,
                                                           seed=3))
    stop = threading.Event()
    box = {}
    live = MarketDataConsumer()
    t = threading.Thread(target=lambda: box.setdefault(
        "c", consume(server.url, stream=stream, prefix=prefix, follow=True, stop=stop,
                     timeout=120, consumer=live)))
    t.start()
    deadline = time.monotonic() + 30
    r2, trades2 = publish_day(server.url, stream, prefix,
                               itch.generate(None, messages=20_000, symbols=2, seed=4))
    _wait_holds_replay(live, r2, trades2, t)         # the follower reads up to the end
    stop.set()
    t.join(timeout=60)
    assert time.monotonic() < deadline + 60 and "c" in box
    assert_consumer_is_replay(box["c"], r2, trades2)
    assert box["c"].session_changes == 3 * len(r2.books)


def test_cli_subscribe_reports_session_restarts(server, names, tmp_path, capsys):
    stream, prefix = names
    for seed in (5, 6):
        path = tmp_path / f"d{seed}.itch"
        cli_publish_day(server, stream, prefix, path, messages=5000, seed=seed)
    capsys.readouterr()
    assert main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix]) == 0
    out = capsys.readouterr().out
    r = itch.replay_file(path)
    assert "6 subjects restarted by a newer publishing session" in out
    bb = r.book("AAPL").best_bid()
    assert f"AAPL     bid {bb[0] / 1e4:.4f} x {bb[1]:,}" in out


def test_follow_survives_broker_restart_without_store_ends_with_new_books(names, tmp_path):
    from matchcore.io.nats import NatsServer

    need_nats()
    stream, prefix = names
    srv = NatsServer(store_dir=tmp_path / "js1").start()
    try:
        r1, trades1 = publish_day(srv.url, stream, prefix,
                                  itch.generate(None, messages=10_000, symbols=2, seed=7))
        stop, t, box = _follow_in_thread(srv.url, stream, prefix)
        _wait_holds_replay(box["live"], r1, trades1, t)    # the follower has read the first
        srv = _restart_with_empty_store(srv, tmp_path)
        r2, trades2 = publish_day(srv.url, stream, prefix,
                                   itch.generate(None, messages=10_000, symbols=2, seed=8))
        _follower_after_resubscribe(stop, t, box, r2, trades2)
    finally:
        srv.close()


def _day_then_broker_gone_at_first_batch(srv, stream, prefix):
    # a day published, then a consumer whose on_batch stops the broker at the first batch it
    # is given: gone in the middle of the read, never back
    from matchcore.io.nats import MarketDataConsumer

    publish_day(srv.url, stream, prefix, itch.generate(None, messages=10_000, symbols=2,
                                                        seed=9))
    seen = []

    def on_batch(subject, payload):
        seen.append(subject)
        if len(seen) == 1:
            srv.stop()

    return MarketDataConsumer(), seen, on_batch


def test_consume_broker_gone_for_good_raises_keeps_what_was_received(names, tmp_path):
    from matchcore.io.nats import NatsServer, consume

    need_nats()
    stream, prefix = names
    with NatsServer() as srv:
        c, seen, on_batch = _day_then_broker_gone_at_first_batch(srv, stream, prefix)
        t0 = time.monotonic()
        with pytest.raises(Exception) as info:
            consume(srv.url, stream=stream, prefix=prefix, consumer=c, on_batch=on_batch)
        assert not isinstance(info.value, AssertionError)
        assert time.monotonic() - t0 < 60
        assert c.batches == len(seen) > 0 and c.last_error


def test_consume_broker_gone_mid_read_error_says_the_connection_was_lost(names):
    # a read without follow whose broker went away and stayed away gave up with the bare
    # "TimeoutError: nats: timeout" of a request sent to a connection that was down, naming
    # neither the lost connection nor why it could not be made again
    from matchcore.io.nats import NatsServer, consume

    need_nats()
    stream, prefix = names
    with NatsServer() as srv:
        c, seen, on_batch = _day_then_broker_gone_at_first_batch(srv, stream, prefix)
        with pytest.raises(ConnectionError) as info:
            consume(srv.url, stream=stream, prefix=prefix, consumer=c, on_batch=on_batch)
        msg = str(info.value)
        assert msg.startswith(f"lost the connection to NATS at {srv.url} and could not connect "
                              f"again within 10 s")
        assert "Connect call failed" in msg and "timeout" not in msg
        assert c.batches == len(seen) > 0


@pytest.mark.parametrize("follow", [True, False])
def test_consume_broker_back_without_jetstream_error_says_so(names, follow):
    # the broker back mid-read without JetStream (one restarting, not up yet, or started
    # without -js): every JetStream request had no responders, and the read reported it in the
    # client's words, "ServiceUnavailableError: nats: ServiceUnavailableError: code=None
    # err_code=None description='None'", in last_error (the summary's "broker errors") and,
    # without follow, in the error it gave up with; at the start the same broker is named as
    # having no JetStream
    import subprocess

    from matchcore.io.nats import (MarketDataConsumer, NatsServer, StreamSetupError, consume,
                                   nats_server_path)

    need_nats()
    stream, prefix = names
    with NatsServer() as srv:
        plain = []

        def on_batch(subject, payload):
            if not plain:
                srv.stop()
                plain.append(subprocess.Popen(
                    [nats_server_path(), "-a", "127.0.0.1", "-p", str(srv.port)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        publish_day(srv.url, stream, prefix, itch.generate(None, messages=2_000, symbols=1,
                                                           seed=9))
        c = MarketDataConsumer()
        try:
            if follow:
                # (long enough for the client to connect to the new broker on a loaded machine)
                consume(srv.url, stream=stream, prefix=prefix, consumer=c,
                        on_batch=on_batch, follow=True, timeout=8)
            else:
                with pytest.raises(StreamSetupError) as info:
                    consume(srv.url, stream=stream, prefix=prefix, consumer=c,
                            on_batch=on_batch)
                assert str(info.value).startswith(f"the broker at {srv.url} has no JetStream")
        finally:
            for p in plain:
                p.terminate()
                p.wait()
    assert plain and c.batches > 0
    assert c.last_error == (f"ServiceUnavailableError: no JetStream answered at {srv.url} (a "
                            f"broker restarting, or one without it)")


def test_consume_pull_consumer_gone_mid_read_error_names_it_not_jetstream(server, names, day):
    # a fetch on a pull consumer that is gone (deleted, or expired after a minute without a
    # fetch: a subscriber paused that long) gets no responders too: the read subscribes again
    # and reads on, and its last_error names the consumer, not a broker without JetStream
    import asyncio

    import nats

    from matchcore.io.nats import MarketDataConsumer, consume

    stream, prefix = names
    r, trades = publish_day(server.url, stream, prefix, day)

    async def delete_consumers():
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            for ci in await js.consumers_info(stream):
                await js.delete_consumer(stream, ci.name)
        finally:
            await nc.close()

    deleted = []

    def on_batch(subject, payload):
        if not deleted:
            # from a thread of its own: this one runs the read's event loop
            t = threading.Thread(target=lambda: deleted.append(asyncio.run(delete_consumers())))
            t.start()
            t.join()

    c = consume(server.url, stream=stream, prefix=prefix, consumer=MarketDataConsumer(),
                on_batch=on_batch, timeout=60)
    assert deleted and c.resubscribes == 1 and not c.timed_out
    assert c.last_error == (f"ServiceUnavailableError: nothing answered the read's fetch at "
                            f"{server.url}: JetStream down (a broker restarting, or one without "
                            f"it), or its pull consumer gone (deleted, or expired after a minute "
                            f"without a fetch)")
    assert_consumer_is_replay(c, r, trades)


@pytest.mark.parametrize("end", [{"timeout": 3}, {"idle": 2, "timeout": 60}])
def test_consume_follow_broker_gone_ends_at_its_time_with_what_was_received(names, end):
    # a follow read whose broker went away and stayed away: its timeout (or idle time) ended
    # it, then closing the connection raised ConnectionResetError ("Connection lost", the
    # client flushing its requests to the dead connection) in place of returning what was
    # received; subscribe printed "cannot read ... ConnectionResetError", exit 1
    from matchcore.io.nats import NatsServer, consume

    need_nats()
    stream, prefix = names
    with NatsServer() as srv:
        c, seen, on_batch = _day_then_broker_gone_at_first_batch(srv, stream, prefix)
        assert consume(srv.url, stream=stream, prefix=prefix, consumer=c, on_batch=on_batch,
                       follow=True, **end) is c
        assert c.batches == len(seen) > 0 and not c.timed_out


def test_consume_follow_broker_away_consumer_not_asked_while_disconnected(names, monkeypatch):
    # a follow read asks its consumer what it delivered (at its timeout, its idle time, after
    # a quiet second): asked while the client was reconnecting, each request waited out the
    # client's 5 s API timeout, and the read ended that long after its timeout
    from nats.js.client import JetStreamContext

    from matchcore.io.nats import MarketDataConsumer, NatsServer, consume

    need_nats()
    asked = []
    info = JetStreamContext.PullSubscription.consumer_info

    async def counted(self, *args, **kwargs):
        asked.append(self._nc.is_connected)
        return await info(self, *args, **kwargs)

    monkeypatch.setattr(JetStreamContext.PullSubscription, "consumer_info", counted)
    stream, prefix = names
    with NatsServer() as srv:
        publish_day(srv.url, stream, prefix, itch.generate(None, messages=10_000, symbols=2,
                                                            seed=9))
        c = MarketDataConsumer()

        def on_batch(subject, payload):
            if c.batches == 1:
                srv.stop()

        consume(srv.url, stream=stream, prefix=prefix, consumer=c, on_batch=on_batch,
                follow=True, idle=2, timeout=4)
        assert c.batches > 0 and False not in asked


def _wait_all_acknowledged(url, stream, proc, within=60):
    """Until a consumer of ``stream`` has acknowledged the stream's last message, ``proc``
    (the subscriber) still running. A reader acknowledges each fetched batch once it has
    applied it (AckPolicy.ALL): then it has applied every message. A fixed wait for a new
    process to start, connect and read was too short on a loaded machine."""
    import asyncio

    import nats

    async def read_all():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            last = (await js.stream_info(stream)).state.last_seq
            return any(ci.ack_floor is not None and ci.ack_floor.stream_seq >= last
                       for ci in await js.consumers_info(stream))
        finally:
            await nc.close()

    deadline = time.monotonic() + within
    while not asyncio.run(read_all()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the subscriber never read the whole stream"
        time.sleep(0.1)


def test_cli_subscribe_follow_interrupted_prints_what_it_received(server, names, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    stream, prefix = names
    path = tmp_path / "d.itch"
    cli_publish_day(server, stream, prefix, path, messages=5000, seed=5)
    proc = subprocess.Popen([sys.executable, "-m", "matchcore", "subscribe", server.url,
                             "--stream", stream, "--subject-prefix", prefix, "--follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_all_acknowledged(server.url, stream, proc)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err == "matchcore subscribe: interrupted by SIGINT\n"
    r = itch.replay_file(path)
    bb = r.book("AAPL").best_bid()
    assert "received " in out and "missing (sequence gaps) 0 records" in out
    assert f"AAPL     bid {bb[0] / 1e4:.4f} x {bb[1]:,}" in out



def _subscribe_follow_print(url, stream, prefix, stdout):
    """``matchcore subscribe --follow --print`` writing to ``stdout``, a pipe (as into ``| grep``
    or ``| head``), in the environment of a user's shell: without PYTHONUNBUFFERED, which a
    test run's environment may set and which made every print reach the pipe at once."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.Popen([sys.executable, "-m", "matchcore", "subscribe", url,
                             "--stream", stream, "--subject-prefix", prefix, "--follow",
                             "--print"], stdout=stdout, stderr=subprocess.PIPE, text=True,
                            env=env)


def test_cli_subscribe_follow_sigterm_summary_one_line_status_143(server, names):
    # --print's lines stayed in the subscriber's stdout buffer (8 KiB) when stdout was a pipe:
    # a stream of a few hundred batches never showed one while it was followed, and the
    # readline() here waited for good
    import os
    import select
    import signal
    import subprocess

    stream, prefix = names
    publish_day(server.url, stream, prefix, itch.generate(None, messages=5000, symbols=2,
                                                           seed=6))
    proc = _subscribe_follow_print(server.url, stream, prefix, subprocess.PIPE)
    try:
        shown, _, _ = select.select([proc.stdout], [], [], 60)
        assert shown, "no --print line within 60 s while the stream was followed"
        first = proc.stdout.readline()          # reading: the connection is up
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    assert first.startswith(f"{prefix}."), first
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and err == "matchcore subscribe: interrupted by SIGTERM\n"
    assert "received " in out and "Traceback" not in out


def test_cli_subscribe_print_reader_gone_quiet_status_141(server, names):
    # with its lines held in the stdout buffer, the subscriber never wrote to the pipe whose
    # reader had gone, and followed the stream for good
    import os
    import subprocess

    stream, prefix = names
    publish_day(server.url, stream, prefix, itch.generate(None, messages=5000, symbols=2,
                                                           seed=7))
    r, w = os.pipe()
    os.close(r)                                  # `matchcore subscribe --print | head`, head gone
    proc = _subscribe_follow_print(server.url, stream, prefix, w)
    os.close(w)
    try:
        _, err = proc.communicate(timeout=30)   # --follow: ends only because stdout is gone
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the subscriber still followed the stream 30 s after its reader had gone")
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
        r1, trades1 = publish_day(server.url, stream, prefix,
                                  itch.generate(None, messages=10_000, symbols=2, seed=seed))
    stop, t, box = _follow_in_thread(server.url, stream, prefix)
    _wait_holds_replay(box["live"], r1, trades1, t)    # both read
    # what an expired consumer looks like: the stream is there, the follower's consumer not
    assert _delete_consumers(server.url, stream) == 1
    r2, trades2 = publish_day(server.url, stream, prefix,
                               itch.generate(None, messages=10_000, symbols=2, seed=12))
    c = _follower_after_resubscribe(stop, t, box, r2, trades2)
    # one restart per subject and new replay: what was read before was not read again
    assert c.session_changes == 2 * 3 * len(r2.books)


def test_follow_two_subjects_broker_restart_without_store_each_reads_new_stream_from_start(
        names, tmp_path):
    # Each subject is subscribed on its own (--symbols A,B): the first one to subscribe again
    # after the stream was made anew must not make the second one take the new stream for the
    # old one and start it after the old stream's last sequence number (skipping its head).
    from matchcore.io.nats import NatsServer

    need_nats()
    stream, prefix = names
    srv = NatsServer(store_dir=tmp_path / "js1").start()
    try:
        # a long first day: the old stream's sequence numbers run past the new one's head
        r1, trades1 = publish_day(srv.url, stream, prefix,
                                  itch.generate(None, messages=40_000, symbols=2, seed=17))
        day2 = itch.generate(None, messages=10_000, symbols=2, seed=18)
        r2 = itch.Replayer()
        r2.feed(day2)
        r2.finish()
        syms = sorted(r2.symbols[L] for L in r2.books)
        stop, t, box = _follow_in_thread(srv.url, stream, prefix, symbols=syms)
        _wait_holds_replay(box["live"], r1, trades1, t)    # the follower has read the first
        srv = _restart_with_empty_store(srv, tmp_path)
        r2, trades2 = publish_day(srv.url, stream, prefix, day2)
        c = _follower_after_resubscribe(stop, t, box, r2, trades2)
        assert not c.missing
    finally:
        srv.close()


def test_consume_connection_bounded_by_its_timeout(tmp_path):
    import socket

    from matchcore.io.nats import consume

    need_nats()
    # a listener that never answers: the client waits for the broker's INFO line
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        url = f"nats://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(ConnectionError, match=r"cannot connect to NATS at .* before the "
                                                  r"timeout \(0\.5 s\)"):
            consume(url, timeout=0.5)


@pytest.mark.parametrize("kw, what", [(dict(on_batch="print"), "on_batch"),
                                      (dict(stop=True, follow=True), "stop"),
                                      (dict(consumer={}), "consumer")])
def test_consume_on_batch_or_stop_of_the_wrong_kind_refused_before_connecting(kw, what):
    # on_batch="print" failed at the first batch with "'str' object is not callable", after
    # that batch had gone into the books; stop=True at the first loop, after connecting;
    # consumer={} with "'dict' object has no attribute 'timed_out'"
    from matchcore.io.nats import consume, free_port

    need_nats()
    url = f"nats://127.0.0.1:{free_port()}"          # nothing listens: raised before connecting
    with pytest.raises(TypeError, match=rf"^{what} must be"):
        consume(url, timeout=30, **kw)


def test_cli_replay_publish_interrupted_time_is_the_replays_not_the_publishers_close(
        server, names, tmp_path, capsys, monkeypatch):
    # "interrupted after N ITCH 5.0 messages in T s" counted in T the publisher's close after
    # the interruption (its flush, up to 5 s, and the batches in flight, with a broker gone):
    # 15 s for a replay stopped after 0.6 s. The clock here moves only in that close.
    import matchcore.cli_replay as cli_replay
    from matchcore.io.replay_hooks import ReplayHooks

    stream, prefix = names
    path = tmp_path / "day.itch"
    itch.generate(path, messages=5_000, symbols=2, seed=4)
    clock = [0.0]
    monkeypatch.setattr(cli_replay.time, "perf_counter", lambda: clock[0])
    close = ReplayHooks.close

    def interrupted(self, r):
        raise KeyboardInterrupt

    def closing(self):
        clock[0] += 100.0
        close(self)

    monkeypatch.setattr(ReplayHooks, "on_chunk", interrupted)
    monkeypatch.setattr(ReplayHooks, "close", closing)
    assert main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--no-progress"]) == 130
    out = capsys.readouterr().out
    assert re.search(r"interrupted after [\d,]+ ITCH 5\.0 messages in 0\.000 s", out), out


def test_cli_replay_publish_interrupted_says_what_it_published(server, names, tmp_path, capsys,
                                                               monkeypatch):
    # Ctrl-C during `replay --publish` flushed the batches handed over (at most 5 s) and said
    # nothing of them: the stream held part of the day, the batches the flush gave up were
    # lost without a word, and the subscriber, seeing no gap at a tail, could not tell either
    from matchcore.io.replay_hooks import ReplayHooks
    from nats_checks import stream_messages

    stream, prefix = names
    path = tmp_path / "day.itch"
    itch.generate(path, messages=200_000, symbols=2, seed=4)
    assert path.stat().st_size > 5 << 20                 # two 4 MiB chunks
    on_chunk = ReplayHooks.on_chunk
    calls = []

    def interrupted_after_first(self, r):
        calls.append(self)
        if len(calls) > 1:
            raise KeyboardInterrupt
        on_chunk(self, r)

    monkeypatch.setattr(ReplayHooks, "on_chunk", interrupted_after_first)
    assert main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--no-progress"]) == 130
    out = capsys.readouterr().out
    sent = calls[0].bridge.batches
    assert sent > 0 and stream_messages(server.url, stream) == sent
    lines = out.splitlines()
    assert lines[-2].startswith("interrupted after "), out
    assert lines[-1].startswith(f"published: {sent:,} of {sent:,} batches ("), out
    assert "dropped (queue full) 0 batches" in lines[-1]



def test_cli_replay_publish_second_ctrl_c_in_the_close_still_says_what_it_published(
        server, names, tmp_path, capsys, monkeypatch):
    # Ctrl-C twice on `replay --publish`: the second landed in the publisher's close after the
    # first (its flush takes up to 5 s), which it cut short. The "published: ..." line was
    # never printed, and the publisher's exit hook closed it again, where a third Ctrl-C ended
    # in an "Exception ignored in atexit callback" traceback. The close now runs to its
    # end and reports; the signal held meanwhile then ends the command as the first did.
    import os
    import signal

    from matchcore.io.nats import NatsPublisher
    from matchcore.io.replay_hooks import ReplayHooks
    from nats_checks import stream_messages

    stream, prefix = names
    path = tmp_path / "day.itch"
    itch.generate(path, messages=200_000, symbols=2, seed=4)
    on_chunk, close = ReplayHooks.on_chunk, NatsPublisher.close
    calls, sent = [], []

    def interrupted_after_first(self, r):
        calls.append(self)
        if len(calls) > 1:
            raise KeyboardInterrupt
        on_chunk(self, r)

    def second_ctrl_c(self, *args, **kwargs):
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        return close(self, *args, **kwargs)

    monkeypatch.setattr(ReplayHooks, "on_chunk", interrupted_after_first)
    monkeypatch.setattr(NatsPublisher, "close", second_ctrl_c)
    assert main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix, "--no-progress"]) == 130
    out, err = capsys.readouterr()
    batches = calls[0].bridge.batches
    assert sent and batches > 0 and stream_messages(server.url, stream) == batches
    assert out.splitlines()[-1].startswith(f"published: {batches:,} of {batches:,} batches ("), out
    assert err == "matchcore replay: interrupted by SIGINT\n"
