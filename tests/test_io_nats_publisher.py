"""The NATS publisher's limits and counts against a real ``nats-server -js``: the broker's
``max_payload`` followed across reconnections, and every queued batch and record accounted for
when the publisher closes."""
from __future__ import annotations

import re
import subprocess
import time

import numpy as np
import pytest

from matchcore.io.nats import KIND_L2, KIND_TOB, WIRE_L2, WIRE_TOB, encode_batch
from nats_checks import need_nats, stream_messages
from nats_checks import names, server  # noqa: F401  (fixtures)


def _wait(cond, seconds=20.0):
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)


def test_publisher_reconnect_to_broker_with_smaller_max_payload_reads_it_again(names, tmp_path):
    # max_payload was read on the first connection only: after a reconnect to a broker taking
    # 64 kB, a 100 kB batch was still sent, and the broker closed the connection on it
    need_nats()
    from matchcore.io.nats import NatsPublisher, NatsServer

    stream, prefix = names
    conf = tmp_path / "small.conf"
    conf.write_text("max_payload: 65536\n")
    with NatsServer() as srv:
        pub = NatsPublisher(srv.url, stream=stream, prefix=prefix, reconnect_wait=0.05)
        try:
            assert pub.max_payload == 1 << 20
            srv.stop()
            small = subprocess.Popen([srv.binary, "-js", "-sd", srv.store_dir, "-a", "127.0.0.1",
                                      "-p", str(srv.port), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                _wait(lambda: pub.stats["reconnects"] >= 1)
                assert pub.stats["reconnects"] >= 1, pub.stats
                assert pub.max_payload == 65536 and pub.max_message == 65536
                assert not pub.publish(f"{prefix}.tob.X", b"x" * 100_000, records=3)
                assert "max_payload of 65,536" in pub.stats["last_error"]
                assert pub.publish(f"{prefix}.tob.X",
                                   encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB)), 3)
                st = pub.close()
            finally:
                small.terminate()
                small.wait(10)
        finally:
            pub.close()
    assert st["published"] == 1 and st["undelivered"] == 1 and st["records_undelivered"] == 3
    assert st["disconnects"] >= 1


def test_publisher_broker_down_batches_within_its_queue_sent_when_back(names):
    # while the broker was away the client took only 64 MiB of messages: 100 batches of 1 MiB
    # had room in the publisher's queue (256 MiB) and were to be sent when it was back, but
    # those past 64 MiB were refused by the client and counted undelivered
    need_nats()
    from matchcore.io.nats import NatsPublisher, NatsServer, consume

    stream, prefix = names
    n = 100
    with NatsServer() as srv:
        pub = NatsPublisher(srv.url, stream=stream, prefix=prefix, reconnect_wait=0.05)
        try:
            size = (pub.max_message - 16) // WIRE_TOB.itemsize
            assert n * (16 + size * WIRE_TOB.itemsize) < pub.max_queue_bytes
            rec = np.zeros(size, WIRE_TOB)
            srv.stop()
            _wait(lambda: pub.stats["disconnects"] >= 1)
            for i in range(n):
                assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, i * size, rec),
                                   size)
            srv.start()
            st = pub.close(60)
        finally:
            pub.close()
        assert st["undelivered"] == 0 and st["dropped"] == 0, st
        assert st["published"] == n and st["records_published"] == n * size
        c = consume(srv.url, stream=stream, prefix=prefix, timeout=120)
        assert c.batches == n and not c.missing


def test_publisher_close_batches_never_settled_counted_with_their_records(names):
    # close() counted the batches left unsettled (a loop thread that did not finish them) as
    # unconfirmed, but not their records: records_queued no longer added up
    import asyncio

    need_nats()
    from matchcore.io.nats import NatsPublisher, NatsServer

    stream, prefix = names
    with NatsServer() as srv:
        pub = NatsPublisher(srv.url, stream=stream, prefix=prefix, ack_timeout=0.2)

        async def never_answered(item, sem, n):    # a send that neither ends nor settles
            await asyncio.Event().wait()

        pub._send = never_answered
        for i in range(4):
            assert pub.publish(f"{prefix}.tob.X",
                               encode_batch(KIND_TOB, 1, 3 * i, np.zeros(3, WIRE_TOB)), 3)
        st = pub.close(timeout=0.2)
    assert st["queued"] == 4 and st["records_queued"] == 12
    assert st["unconfirmed"] == 4 and st["records_unconfirmed"] == 12
    for k in ("queued", "records_queued"):
        part = k.replace("queued", "")
        assert st[k] == sum(st[f"{part}{o}"] for o in ("published", "undelivered",
                                                       "unconfirmed"))


@pytest.mark.parametrize("payload, records, exc", [
    (b"abc", -5, ValueError), (b"abc", 1.5, TypeError), (b"abc", "2", TypeError),
    (b"abc", True, TypeError), ("text", 1, TypeError)])
def test_publisher_bad_records_or_payload_refused_before_anything_counted(server, names,
                                                                          payload, records,
                                                                          exc):
    # records=-5 or 1.5 went into the records_* totals; records="2" failed half way, after the
    # batch was counted as queued and outstanding but never queued: flush() then waited its
    # whole timeout and close() counted it unconfirmed; a str payload was queued and failed
    # in the loop thread
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        before = dict(pub.stats)
        with pytest.raises(exc, match="records" if isinstance(payload, bytes) else "payload"):
            pub.publish_many([(f"{prefix}.tob.X", good, 3),
                              (f"{prefix}.tob.X", payload, records)])
        assert pub.stats == before and pub.pending == 0
        assert pub.publish(f"{prefix}.tob.X", good, 3)
    st = pub.stats
    assert st["queued"] == st["published"] == 1 and st["records_published"] == 3
    assert st["unconfirmed"] == st["undelivered"] == 0 and st["last_error"] is None


@pytest.mark.parametrize("timeout", [float("nan"), -1, "5", None,
                                     pytest.param(10**400, id="int-1e400")])
def test_publisher_flush_or_close_bad_timeout_refused_nothing_given_up(server, names, timeout):
    # close(timeout=nan) or -1 took the flush as timed out at once and gave up every batch
    # still queued; a str failed in the arithmetic, naming neither the setting nor its rule,
    # and an int past the float range (10**400) failed there with OverflowError
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish(f"{prefix}.tob.X", good, 3)
        with pytest.raises(ValueError, match="timeout must be"):
            pub.flush(timeout)
        with pytest.raises(ValueError, match="timeout must be"):
            pub.close(timeout)
        assert pub.flush(30)
    st = pub.stats
    assert st["published"] == 1 and st["undelivered"] == st["unconfirmed"] == 0


def _publisher_held_past_close(srv, stream, prefix):
    """A publisher whose loop thread sends nothing until the returned Event is set: held up
    past close()'s wait, as a thread stuck on a slow broker is."""
    import threading

    from matchcore.io.nats import NatsPublisher

    pub = NatsPublisher(srv.url, stream=stream, prefix=prefix)
    release = threading.Event()
    send = pub._send

    async def late(item, sem, n):
        release.wait(30)
        await send(item, sem, n)

    pub._send = late
    return pub, release


def test_publisher_close_totals_final_when_thread_settles_batches_later(names):
    # close() counted the batches its thread had not settled in time as unconfirmed; when the
    # thread settled them later (published), they were counted a second time and the
    # outstanding count went negative
    import threading

    need_nats()
    from matchcore.io.nats import NatsServer

    stream, prefix = names
    with NatsServer() as srv:
        pub, release = _publisher_held_past_close(srv, stream, prefix)
        thread = pub._thread
        thread.join = lambda timeout=None: threading.Thread.join(thread, 0.2)
        for i in range(2):
            assert pub.publish(f"{prefix}.tob.X",
                               encode_batch(KIND_TOB, 1, 3 * i, np.zeros(3, WIRE_TOB)), 3)
        st = pub.close(timeout=0.2)
        final = dict(st)
        assert thread.is_alive()
        release.set()
        threading.Thread.join(thread, 30)
        assert not thread.is_alive()
    assert final["queued"] == 2 and final["unconfirmed"] == 2 and final["published"] == 0
    assert final["records_unconfirmed"] == 6
    assert pub.stats == final and st == final
    assert pub.pending == 0


@pytest.mark.parametrize("name", ["ack_timeout", "connect_timeout", "reconnect_wait"])
def test_publisher_time_setting_given_as_bool_refused_naming_it_before_connecting(name):
    # ack_timeout=True was taken as 1 s (a bool is a number to numbers.Real), where flush()
    # and the whole-number settings refuse a bool
    pytest.importorskip("nats")
    from matchcore.io.nats import NatsPublisher
    from matchcore.io.nats.server import free_port

    port = free_port()                        # nothing listens: it must not get that far
    with pytest.raises(ValueError, match=f"{name} must be .*, got True"):
        NatsPublisher(f"nats://127.0.0.1:{port}", **{name: True})


@pytest.mark.parametrize("value", [0, 0.0, -0.0, -1, float("inf"), float("-inf")])
def test_publisher_reconnect_wait_not_above_zero_refused_naming_it_before_connecting(value):
    # reconnect_wait=0 was taken: while the broker was down the client tried again in a tight
    # loop, a core busy for nothing; a wait is a finite number of seconds > 0, as the timeouts
    pytest.importorskip("nats")
    from matchcore.io.nats import NatsPublisher
    from matchcore.io.nats.server import free_port

    port = free_port()                        # nothing listens: it must not get that far
    with pytest.raises(ValueError, match=re.escape(
            f"reconnect_wait must be a finite number of seconds > 0, got {value!r}")):
        NatsPublisher(f"nats://127.0.0.1:{port}", reconnect_wait=value)


def test_publisher_long_timeouts_taken_connect_publish_and_close(names):
    # connect_timeout=1e300 (a finite number > 0, as the rule says) failed with "OverflowError:
    # timestamp out of range for platform time_t" once connected, its loop thread left running
    # with the connection; ack_timeout=1e300 so in close(), after the batches were published
    need_nats()
    import threading

    from matchcore.io.nats import NatsPublisher, NatsServer

    stream, prefix = names
    with NatsServer() as srv:
        # the threads themselves, not their count: one of an earlier test ending meanwhile
        # took the count down
        before = set(threading.enumerate())
        pub = NatsPublisher(srv.url, stream=stream, prefix=prefix, connect_timeout=1e300,
                            ack_timeout=1e300)
        assert pub.publish(f"{prefix}.tob.X", b"x" * 10)
        assert pub.close(timeout=30)["published"] == 1
        assert set(threading.enumerate()) - before == set()


def test_publisher_close_again_after_final_totals_returns_them_without_waiting_again(names):
    # a second close() (replay --publish closes its publisher once more on the way out) waited
    # for the thread again, ack_timeout + 15 s more, with nothing left to count
    import threading

    need_nats()
    from matchcore.io.nats import NatsServer

    stream, prefix = names
    with NatsServer() as srv:
        pub, release = _publisher_held_past_close(srv, stream, prefix)
        thread = pub._thread
        waits = []

        def join(timeout=None):
            waits.append(timeout)
            threading.Thread.join(thread, 0.2)

        thread.join = join
        assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB)),
                           3)
        first = dict(pub.close(timeout=0.2))
        assert len(waits) == 1 and thread.is_alive()
        assert pub.close(timeout=5) == first
        assert len(waits) == 1
        release.set()
        threading.Thread.join(thread, 30)
    assert first["unconfirmed"] == 1 and pub.stats == first


def test_publisher_memoryview_payload_of_wider_items_sent_whole_connection_kept(server, names):
    # a memoryview of 8-byte items was announced to the broker by its len() (items, not
    # bytes) and written whole: the broker read a garbled protocol and dropped the
    # connection, losing that batch and the ones in flight with it
    from matchcore.io.nats import NatsPublisher, consume

    stream, prefix = names
    rec = np.zeros(2, WIRE_TOB)
    rec["bid"] = [100, 101]
    wide = memoryview(np.frombuffer(encode_batch(KIND_TOB, 1, 0, rec), dtype="<u8"))
    with NatsPublisher(server.url, stream=stream, prefix=prefix, ack_timeout=2) as pub:
        assert pub.publish(f"{prefix}.tob.X", wide, 2)
        assert pub.publish(f"{prefix}.tob.Y", encode_batch(KIND_TOB, 2, 0, rec), 2)
    st = pub.stats
    assert st["published"] == 2 and st["disconnects"] == 0
    assert st["bytes_published"] == 2 * wide.nbytes
    c = consume(server.url, stream=stream, prefix=prefix, timeout=20)
    assert c.bad == 0 and c.tob["X"] == c.tob["Y"] == (0, 101, 0, 0, 0)


@pytest.mark.parametrize("headers", [[("Matchcore-Session", "a")], "a", {"k": 1}, {1: "v"}])
def test_publisher_bad_headers_refused_before_anything_counted(server, names, headers):
    # headers that are not a dict of str failed half way through publish_many(): the batches
    # before them were counted as queued and outstanding but never queued, so close() waited
    # its whole flush and counted them as unconfirmed, never sent
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        before = dict(pub.stats)
        with pytest.raises(TypeError, match="headers must be a dict of str to str"):
            pub.publish_many([(f"{prefix}.tob.X", good, 3),
                              (f"{prefix}.tob.X", good, 3, headers)])
        assert pub.stats == before and pub.pending == 0
        assert pub.publish(f"{prefix}.tob.X", good, 3, headers={"Matchcore-Session": "a"})
    st = pub.stats
    assert st["queued"] == st["published"] == 1 and st["unconfirmed"] == 0


def test_publisher_never_closed_flushes_its_queue_at_interpreter_exit(server, names):
    # its thread is a daemon: a script that published and ended without close() lost every
    # batch still queued, and said nothing of it
    import sys

    from matchcore.io.nats import consume

    stream, prefix = names
    script = f"""
import numpy as np
from matchcore.io.nats import KIND_TOB, WIRE_TOB, NatsPublisher, encode_batch
pub = NatsPublisher({server.url!r}, stream={stream!r}, prefix={prefix!r}, max_inflight=1)
rec = np.zeros(3, WIRE_TOB)
for i in range(2000):
    rec["bid"] = i
    assert pub.publish({prefix!r} + ".tob.X", encode_batch(KIND_TOB, 1, 3 * i, rec), 3)
print(pub.pending > 0)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True"]        # batches were still queued at its end
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.records["tob"] == 6000 and not c.missing and c.tob["X"][1] == 1999


@pytest.mark.parametrize("subject, exc", [
    ("{p}.tob.*", ValueError), ("{p}.tob.>", ValueError), ("{p}.tob.A B", ValueError),
    ("{p}.tob.", ValueError), ("{p}..X", ValueError), ("{p}.tob.X\r\n", ValueError),
    (None, TypeError), (b"{p}.tob.X", TypeError)])
def test_publisher_subject_not_one_to_publish_to_refused_before_anything_counted(
        server, names, subject, exc):
    # "mc.tob.*" was stored under that literal subject, and every subscriber read a book
    # named "*"; a space, an empty token or a subject that is not a str was queued, and
    # counted undelivered by the loop thread after the broker or the client refused it
    from matchcore.io.nats import NatsPublisher, consume

    stream, prefix = names
    if subject is not None:
        subject = subject.replace("{p}", prefix) if isinstance(subject, str) else \
            subject.replace(b"{p}", prefix.encode())
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        before = dict(pub.stats)
        with pytest.raises(exc, match="subject"):
            pub.publish_many([(f"{prefix}.tob.X", good, 3), (subject, good, 3)])
        assert pub.stats == before and pub.pending == 0
        assert pub.publish(f"{prefix}.tob.X", good, 3)
    st = pub.stats
    assert st["queued"] == st["published"] == 1 and st["undelivered"] == 0
    assert consume(server.url, stream=stream, prefix=prefix, timeout=60).symbols() == ["X"]


@pytest.mark.parametrize("subject", ["other{p}.tob.X", "{p}x.tob.X", "x.{p}.tob.X", "{p}"])
def test_publisher_subject_outside_its_prefix_refused_before_anything_counted(server, names,
                                                                              subject):
    # a subject outside the publisher's prefix (which its stream takes, as <prefix>.>) was
    # queued and counted, then undelivered by the loop thread after a round trip to the broker
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    subject = subject.replace("{p}", prefix)
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        before = dict(pub.stats)
        with pytest.raises(ValueError, match=re.escape(
                f"subject {subject!r} is not under the publisher's subject prefix {prefix!r}")):
            pub.publish_many([(f"{prefix}.tob.X", good, 3), (subject, good, 3)])
        with pytest.raises(ValueError, match="subject prefix"):
            pub.publish(subject, good, 3)
        assert pub.stats == before and pub.pending == 0
        assert pub.publish(f"{prefix}.tob.X", good, 3)
    st = pub.stats
    assert st["queued"] == st["published"] == 1 and st["undelivered"] == 0


@pytest.mark.parametrize("item", [("{p}.tob.X", b"abc"), ("{p}.tob.X",),
                                  ("{p}.tob.X", b"abc", 1, None, "extra"), "{p}.tob.X"])
def test_publish_many_item_not_three_or_four_fields_refused_naming_them(server, names, item):
    # (subject, payload) failed with "tuple index out of range", a fifth field was ignored
    # and a str item was taken apart character by character
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    item = item.replace("{p}", prefix) if isinstance(item, str) else \
        (item[0].replace("{p}", prefix), *item[1:])
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        before = dict(pub.stats)
        with pytest.raises(TypeError, match=r"\(subject, payload, records\) or \(subject, "
                                            r"payload, records, headers\)"):
            pub.publish_many([(f"{prefix}.tob.X", good, 3), item])
        assert pub.stats == before and pub.pending == 0


def _on_stream(url, stream, then=None):
    # the stream's message count after deleting it (then=None), or after deleting it and
    # adding one of the same name with the subjects ``then``
    import asyncio

    import nats

    async def go():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await js.delete_stream(stream)
            if then is not None:
                await js.add_stream(name=stream, subjects=then)
        finally:
            await nc.close()

    asyncio.run(go())


def test_publisher_stream_deleted_while_connected_made_again_batch_sent_again(server, names):
    # the stream was made again on reconnection only: deleted while the publisher stayed
    # connected, every later batch was refused (no stream answered) and counted undelivered
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    batch = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish(f"{prefix}.tob.X", batch, 3) and pub.flush(20)
        _on_stream(server.url, stream)
        assert pub.publish(f"{prefix}.tob.X", batch, 3) and pub.flush(20)
        assert pub.publish(f"{prefix}.tob.X", batch, 3) and pub.flush(20)
    st = pub.stats
    assert st["published"] == 3 and st["undelivered"] == 0 and st["records_published"] == 9
    assert st["streams_made_again"] == 1 and st["resent"] == 1 and st["records_resent"] == 3
    assert stream_messages(server.url, stream) == 2


def _stream_config(url, stream, make=None):
    # the stream's configuration, after adding it with the StreamConfig ``make`` if given
    import asyncio

    import nats

    async def go():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            if make is not None:
                await js.add_stream(config=make)
            return (await js.stream_info(stream)).config
        finally:
            await nc.close()

    return asyncio.run(go())


@pytest.mark.parametrize("ours", [False, True])
def test_publisher_stream_deleted_made_again_with_its_limits(server, names, ours):
    # made again with its name and subjects alone: the limits the stream had (age, bytes,
    # messages, duplicate window, storage) were lost with it, and the broker's defaults kept
    # every message for ever in a file store
    from nats.js.api import DiscardPolicy, StorageType, StreamConfig

    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    if not ours:            # an operator's stream with its own limits, found by the publisher
        _stream_config(server.url, stream, StreamConfig(
            name=stream, subjects=[f"{prefix}.>"], max_age=3600.0, max_bytes=50 << 20,
            max_msgs=100_000, max_msgs_per_subject=1000, duplicate_window=30.0,
            storage=StorageType.MEMORY, discard=DiscardPolicy.NEW, description="kept"))
    batch = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish(f"{prefix}.tob.X", batch, 3) and pub.flush(20)
        before = _stream_config(server.url, stream)
        _on_stream(server.url, stream)
        assert pub.publish(f"{prefix}.tob.X", batch, 3) and pub.flush(20)
    st = pub.stats
    assert st["published"] == 2 and st["streams_made_again"] == 1
    assert _stream_config(server.url, stream) == before
    assert ours or (before.max_age, before.storage) == (3600.0, StorageType.MEMORY)


def test_publisher_stream_deleted_and_made_again_without_its_subjects_batch_undelivered(
        server, names):
    # the stream of that name back, but with other subjects: not made again, the batch is
    # undelivered as before, saying why
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    batch = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish(f"{prefix}.tob.X", batch, 3) and pub.flush(20)
        _on_stream(server.url, stream, then=[f"other{prefix}.>"])
        assert pub.publish(f"{prefix}.tob.X", batch, 3) and pub.flush(20)
    st = pub.stats
    assert st["published"] == 1 and st["undelivered"] == 1 and st["records_undelivered"] == 3
    assert st["streams_made_again"] == 0 and st["resent"] == 0
    assert f"exists with subjects ['other{prefix}.>']" in st["last_error"]


@pytest.mark.parametrize("kinds, subject", [
    (["tob"], "{p}.l2.X"), (["tob"], "{p}.trade.X"), (["tob", "l2"], "{p}.quote.X"),
    (["trade", "tob", "l2"], "{p}.foo.X"), (["trade", "tob", "l2"], "{p}.tob"),
    (["trade", "tob", "l2"], "{p}.tob.X.Y")])
def test_publisher_subject_of_a_kind_it_does_not_publish_refused_before_anything_counted(
        server, names, kinds, subject):
    # a subject under the prefix but not <prefix>.<kind>.<symbol> of one of the publisher's
    # kinds (the subjects its stream was checked for) was queued and counted, then
    # undelivered by the loop thread when the stream (made by another with the top-of-book
    # subjects alone) did not take it, or stored where no subscriber reads it
    import asyncio

    import nats

    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    subject = subject.replace("{p}", prefix)

    async def make():
        nc = await nats.connect(server.url)
        try:
            await nc.jetstream().add_stream(name=stream, subjects=[f"{prefix}.{k}.*"
                                                                   for k in kinds])
        finally:
            await nc.close()

    asyncio.run(make())
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix, kinds=kinds) as pub:
        before = dict(pub.stats)
        with pytest.raises(ValueError, match=re.escape(
                f"subject {subject!r} is not a subject of the publisher's kinds {kinds}")):
            pub.publish_many([(f"{prefix}.tob.X", good, 3), (subject, good, 3)])
        with pytest.raises(ValueError, match="publisher's kinds"):
            pub.publish(subject, good, 3)
        assert pub.stats == before and pub.pending == 0
        assert pub.publish(f"{prefix}.tob.X", good, 3)
    st = pub.stats
    assert st["queued"] == st["published"] == 1 and st["undelivered"] == 0
    assert stream_messages(server.url, stream) == 1


@pytest.mark.parametrize("headers,why", [
    ({"A:B": "v"}, "name 'A:B'"), ({"A B": "v"}, "name 'A B'"), ({"": "v"}, "name ''"),
    ({"Matchcore-Session": "a\r\nX: y"}, "value 'a\\r\\nX: y'"),
])
def test_publisher_header_the_client_refuses_or_rewrites_refused_before_anything_counted(
        server, names, headers, why):
    # a name the client refuses was queued and counted, then undelivered in the loop thread;
    # an empty name was dropped and a line break in a value replaced by a space: the batch
    # went out without the header given
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        before = dict(pub.stats)
        with pytest.raises(ValueError, match=re.escape(f"headers hold the {why}")):
            pub.publish_many([(f"{prefix}.tob.X", good, 3),
                              (f"{prefix}.tob.X", good, 3, headers)])
        assert pub.stats == before and pub.pending == 0
        assert pub.publish(f"{prefix}.tob.X", good, 3, headers={" Matchcore-Session": "a"})
    st = pub.stats
    assert st["queued"] == st["published"] == 1 and st["undelivered"] == 0


@pytest.mark.parametrize("session", [" day1", "day1 ", " ", "day1\t"])
def test_replay_publisher_session_the_header_would_strip_refused(server, names, session):
    # the NATS client strips a header value: " day1" went out as "day1", another session than
    # the one ReplayPublisher.session named, and " " as an empty one
    import matchcore.itch as itch
    from matchcore.io.nats import NatsPublisher, ReplayPublisher, consume

    stream, prefix = names
    with NatsPublisher(server.url, stream=stream, prefix=prefix, kinds=["tob"]) as pub:
        with pytest.raises(ValueError, match="session"):
            ReplayPublisher(pub, kinds=["tob"], session=session)
        rp = ReplayPublisher(pub, kinds=["tob"], session="day1")
        r = itch.Replayer()
        r.feed(itch.generate(None, messages=2000, symbols=2, seed=3))
        r.finish()
        rp(r)
    assert pub.stats["published"] == rp.batches > 0
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert set(c.sessions.values()) == {rp.session}


@pytest.mark.parametrize("url", [None, 4222, b"nats://127.0.0.1:4222"])
def test_publisher_and_consume_url_not_a_str_refused_naming_it_before_connecting(url):
    # ConnectionError "cannot connect to NATS at None: argument of type 'NoneType' is not
    # iterable" (a TypeError of the client's, in consume), which named neither the setting
    # nor what it takes
    need_nats()
    from matchcore.io.nats import NatsPublisher, consume

    with pytest.raises(TypeError, match=r"url must be a str \(nats://HOST:PORT\), got "):
        NatsPublisher(url, connect_timeout=1)
    with pytest.raises(TypeError, match=r"url must be a str \(nats://HOST:PORT\), got "):
        consume(url, timeout=1)


@pytest.mark.parametrize("url, shown", [
    ("http://127.0.0.1:{port}", "http://127.0.0.1:{port}"),
    ("https://u:secret@127.0.0.1:{port}", "https://u:***@127.0.0.1:{port}"),
    ("NATS://127.0.0.1:{port}", "NATS://127.0.0.1:{port}"),
    ("nat://127.0.0.1:{port}", "nat://127.0.0.1:{port}"),
    ("http://\x1b[2J127.0.0.1:{port}", "http://\x1b[2J127.0.0.1:{port}")])
def test_publisher_and_consume_url_of_another_scheme_refused_naming_it_before_connecting(
        url, shown, tmp_path, capsys):
    # http://HOST:PORT failed once connecting, as "cannot connect to NATS at http://...: Name
    # or service not known" (the client read it as nats://http:...), which named neither the
    # scheme nor the ones the client takes
    need_nats()
    from matchcore.__main__ import main
    from matchcore.io.nats import NatsPublisher, consume, free_port

    port = free_port()
    url, shown = url.format(port=port), shown.format(port=port)
    want = re.escape(f"url {shown!r} is not a NATS URL: ") + r".*nats://, tls://, ws:// or wss://"
    with pytest.raises(ValueError, match=want):
        NatsPublisher(url, connect_timeout=1)
    with pytest.raises(ValueError, match=want):
        consume(url, timeout=1)
    assert main(["subscribe", url, "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert re.search(want, err) and "cannot" not in err and "secret" not in err
    assert "\x1b" not in err
    path = tmp_path / "day.itch"
    import matchcore.itch as itch

    itch.generate(path, messages=1000, symbols=2, seed=5)
    assert main(["replay", str(path), "--publish", url]) == 1
    captured = capsys.readouterr()
    assert re.search(want, captured.err) and "cannot" not in captured.err
    assert "secret" not in captured.err + captured.out and "\x1b" not in captured.err
    assert "replayed" not in captured.out


@pytest.mark.parametrize("url", ["tls://127.0.0.1:{port}", "ws://127.0.0.1:{port}",
                                 "wss://127.0.0.1:{port}", "127.0.0.1:{port}"])
def test_publisher_url_of_a_scheme_the_client_takes_tried(url):
    # the schemes the client takes (and HOST:PORT, which it reads as nats://) go on to the
    # connection: nobody listens there
    need_nats()
    from matchcore.io.nats import NatsPublisher, free_port

    with pytest.raises(ConnectionError, match="cannot connect to NATS at"):
        NatsPublisher(url.format(port=free_port()), connect_timeout=1)


@pytest.mark.parametrize("records", [np.int64(3), np.uint16(3), np.int8(3)])
def test_publisher_numpy_int_records_counted_as_python_ints(server, names, records):
    # records=np.int64(3) put numpy ints in stats (records_queued, records_published, ...),
    # which json.dumps refuses: "Object of type int64 is not JSON serializable"
    import json

    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish_many([(f"{prefix}.tob.X", good, records)]) == 1
        assert pub.publish(f"{prefix}.tob.X", good, records)
        assert all(type(v) is int for k, v in pub.stats.items() if k != "last_error")
    st = pub.stats
    assert st["records_queued"] == st["records_published"] == 6
    assert all(type(v) is int for k, v in st.items() if k != "last_error")
    assert json.loads(json.dumps(st))["records_published"] == 6


def test_publisher_payload_buffer_reused_after_publish_sends_what_was_published(server, names):
    # a bytearray or a memoryview was queued as it is and read when the loop thread sent it:
    # a caller reusing its buffer after publish() returned had the new contents (or nothing)
    # stored instead, counted as published, and the queue's byte count kept the difference
    from matchcore.io.nats import NatsPublisher, consume

    stream, prefix = names
    rec = np.zeros(1, WIRE_TOB)
    rec[0] = (5, 100, 10, 101, 20)
    first = encode_batch(KIND_TOB, 1, 0, rec)
    buf = bytearray(first)
    arr = np.frombuffer(encode_batch(KIND_TOB, 2, 0, rec), np.uint8).copy()
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        assert pub.publish(f"{prefix}.tob.X", buf, 1)
        assert pub.publish_many([(f"{prefix}.tob.Y", memoryview(arr), 1)]) == 1
        buf.clear()                     # reused at once
        arr[:] = 0
        assert pub.flush(20)
    st = pub.stats
    assert st["published"] == 2 and st["bytes_published"] == 2 * len(first)
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert c.bad == 0 and c.tob["X"] == c.tob["Y"] == (5, 100, 10, 101, 20)


def test_publisher_publish_after_close_refused_final_totals_unchanged(server, names):
    # publish() after close() counted the batch as dropped in the dict close() had returned
    # as the final totals
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    pub = NatsPublisher(server.url, stream=stream, prefix=prefix)
    assert pub.publish(f"{prefix}.tob.X", good, 3)
    final = pub.close()
    totals = dict(final)
    with pytest.raises(RuntimeError, match="publisher is closed"):
        pub.publish(f"{prefix}.tob.X", good, 3)
    with pytest.raises(RuntimeError, match="publisher is closed"):
        pub.publish_many([(f"{prefix}.tob.X", good, 3)])
    assert final == totals and pub.stats == totals
    assert totals["published"] == 1 and totals["dropped"] == 0


def test_replay_publisher_of_a_closed_publisher_refused_sinks_left_undrained(server, names):
    # a chunk handed to a ReplayPublisher whose publisher was closed drained the replay's
    # sinks and counted their records and batches as handed over before publish_many()
    # refused them: the records were gone from the replayer, and sent nowhere
    import matchcore.itch as itch
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    stream, prefix = names
    pub = NatsPublisher(server.url, stream=stream, prefix=prefix)
    pub.close()
    bridge = ReplayPublisher(pub)
    r = itch.Replayer(record_l2=True)
    r.feed(itch.generate(None, messages=2_000, symbols=2, seed=1))
    held = [len(r.tob()), len(r.trades()), len(r.l2())]
    assert all(held)
    with pytest.raises(RuntimeError, match="publisher is closed"):
        bridge(r)
    assert [len(r.tob()), len(r.trades()), len(r.l2())] == held
    assert bridge.batches == 0 and not any(bridge.records.values())


def _stored_seqs(url, stream, subjects):
    # the batch seq of every message the stream holds, in the order it stored them
    import asyncio

    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    from matchcore.io.nats import decode_batch

    async def go():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            left = (await js.stream_info(stream)).state.messages
            sub = await js.pull_subscribe(subjects, stream=stream, config=ConsumerConfig(
                ack_policy=AckPolicy.NONE))
            seqs = []
            while left:
                for m in await sub.fetch(min(left, 1000), timeout=20):
                    seqs.append(int(decode_batch(m.data)[2]))
                    left -= 1
            return seqs
        finally:
            await nc.close()

    return asyncio.run(go())


@pytest.mark.parametrize("run", range(3))
def test_publisher_stream_deleted_mid_burst_later_batches_stored_after_those_resent(
        server, names, run):
    # batches sent once the stream was made again were stored before the batches sent
    # earlier that found it gone and were being resent: a consumer saw a gap the publisher
    # had not made (and `subscribe` exited 1)
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    rec = np.zeros(1, WIRE_TOB)
    with NatsPublisher(server.url, stream=stream, prefix=prefix, ack_timeout=20) as pub:
        for i in range(5000):
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, i, rec), 1)
        _on_stream(server.url, stream)
        for i in range(5000, 10000):
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, i, rec), 1)
        assert pub.flush(120)
    st = pub.stats
    # (a batch the broker took as the stream went away may have no answer: unconfirmed)
    assert st["published"] + st["unconfirmed"] == 10000 and st["undelivered"] == 0
    assert st["streams_made_again"] == 1 and st["resent"] > 0
    seqs = _stored_seqs(server.url, stream, f"{prefix}.>")
    # what the stream lost went with it; from there on, every batch in publish order
    assert seqs and seqs == list(range(seqs[0], 10000))


class _Silent:
    # a plain NATS subscriber to ``subject`` that never answers: a batch sent there while no
    # stream takes it has a responder, and no acknowledgement ever comes (``got``: the
    # messages it received)
    def __init__(self, url, subject):
        import asyncio
        import threading

        self.got = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        async def start():
            import nats

            self._nc = await nats.connect(url)

            async def keep(msg):
                self.got.append(msg.subject)

            await self._nc.subscribe(subject, cb=keep)
            await self._nc.flush()

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(20)

    def close(self):
        import asyncio

        asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop).result(20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(20)


def test_publisher_batch_never_answered_holds_later_ones_until_ack_timeout_order_kept(
        server, names):
    # the README's word: a batch in flight that never gets an answer when the stream is made
    # again holds the batches after it back (resends and new ones) until its ack_timeout, then
    # counts as unconfirmed; what follows is stored in publish order
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    rec = np.zeros(1, WIRE_TOB)
    unanswered = encode_batch(KIND_TOB, 2, 0, rec)
    with NatsPublisher(server.url, stream=stream, prefix=prefix, ack_timeout=2) as pub:
        assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 0, rec), 1)
        assert pub.flush(20)
        _on_stream(server.url, stream)
        silent = _Silent(server.url, f"{prefix}.tob.A")
        try:
            # the batch of A goes to the silent subscriber alone; the next one finds the
            # stream gone, makes it again and waits behind the unanswered one
            assert pub.publish_many([(f"{prefix}.tob.A", unanswered, 1),
                                     (f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 1, rec), 1)])
            _wait(lambda: pub.stats["streams_made_again"] == 1)
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 2, rec), 1)
            assert pub.flush(60)
        finally:
            silent.close()
    st = pub.stats
    assert silent.got == [f"{prefix}.tob.A"]
    assert st["streams_made_again"] == 1 and st["resent"] == 1
    assert st["unconfirmed"] == 1 and st["records_unconfirmed"] == 1
    assert st["published"] == 3 and st["undelivered"] == 0
    assert "no acknowledgement within 2 s" in st["last_error"]
    assert _stored_seqs(server.url, stream, f"{prefix}.>") == [1, 2]


def test_cli_replay_publish_stream_made_again_noted_with_what_was_resent(server, names,
                                                                          tmp_path, capsys,
                                                                          monkeypatch):
    # the stream deleted once the publisher had connected: the first batch made it again
    # (what it held before gone), and the summary said "published: N of N batches" alone
    import matchcore.io.nats as mnats
    from matchcore.__main__ import main
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    path = tmp_path / "day.itch"
    import matchcore.itch as itch

    itch.generate(path, messages=3000, symbols=2, seed=4)
    args = ["replay", str(path), "--publish", server.url, "--stream", stream,
            "--subject-prefix", prefix]
    assert main(args) == 0
    capsys.readouterr()
    held = stream_messages(server.url, stream)
    made = []

    class Deleting(NatsPublisher):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            _on_stream(server.url, stream)
            made.append(self)

    monkeypatch.setattr(mnats, "NatsPublisher", Deleting)
    assert main(args) == 0
    out = capsys.readouterr().out
    st = made[0].stats
    assert st["streams_made_again"] == 1 and st["resent"] >= 1
    assert stream_messages(server.url, stream) == held        # the second day alone
    assert (f"note: stream {stream} was made again 1 time during the replay (deleted, or lost "
            f"by a broker restarted without its store): what it held before is gone; "
            f"{st['resent']:,} batches / {st['records_resent']:,} records sent again") in out


def test_publisher_batches_the_broker_refuses_its_user_counted_undelivered_not_unconfirmed(
        tmp_path):
    # a subject the broker does not let this user publish to: its refusal ("permissions
    # violation for publish to ...") went to the client's error callback, the batch waited out
    # its ack_timeout and was counted unconfirmed, "may have been stored", though the broker
    # had dropped it, with "TimeoutError" as the last error
    need_nats()
    from matchcore.io.nats import NatsPublisher, free_port, nats_server_path

    port = free_port()
    conf = tmp_path / "users.conf"
    conf.write_text(f'listen: 127.0.0.1:{port}\njetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
                    'authorization { users = [\n'
                    '  { user: "u", password: "p", permissions: { publish: { deny: '
                    '["mc.tob.>"] } } }\n]}\n')
    proc = subprocess.Popen([nats_server_path(), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"nats://u:p@127.0.0.1:{port}"
        _wait(lambda: _listening(port), 10)
        batch = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
        with NatsPublisher(url, ack_timeout=1) as pub:
            assert pub.publish("mc.tob.X", batch, 3)
            assert pub.publish("mc.l2.X", encode_batch(KIND_L2, 1, 0, np.zeros(0, WIRE_L2)), 0)
        st = pub.stats
        assert st["published"] == 1 and st["undelivered"] == 1 and st["unconfirmed"] == 0, st
        assert st["records_undelivered"] == 3 and st["records_unconfirmed"] == 0
        assert re.search(r'permissions violation for publish to "mc\.tob\.x"',
                         st["last_error"]), st["last_error"]
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(port) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_replay_publisher_dbn_replayer_refused_before_its_sinks_are_drained(server, names,
                                                                          tmp_path):
    # a DBN replay's DbnReplayer (no L2 sink) failed with AttributeError once its top-of-book
    # and trade sinks were drained, sent nowhere, and the bridge stayed bound to it: the ITCH
    # replay it was meant for was then refused as "another replay"
    pytest.importorskip("databento_dbn", reason="needs the 'dbn' extra")
    import matchcore.itch as itch
    from matchcore.feeds.dbn import replay_dbn
    from matchcore.feeds.dbn_gen import generate_mbo
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    stream, prefix = names
    generate_mbo(tmp_path / "day.dbn", records=3000)
    dbn = replay_dbn(tmp_path / "day.dbn")
    tob, trades = len(dbn.tob()), len(dbn.trades())
    assert tob and trades
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        rp = ReplayPublisher(pub, kinds=("trade", "tob"))
        with pytest.raises(TypeError, match=r"matchcore\.itch\.Replayer.*DbnReplayer"):
            rp(dbn)
        assert (len(dbn.tob()), len(dbn.trades())) == (tob, trades)
        assert rp.batches == 0 and not any(rp.records.values())
        r = itch.Replayer()
        r.feed(itch.generate(None, messages=2000, symbols=2, seed=1))
        rp(r)                                  # the replay it publishes is still to come
    assert pub.stats["published"] == rp.batches > 0


def test_publisher_close_gives_up_the_batch_waiting_for_a_slot_never_sends_it(names):
    # close() after a flush that timed out gives up the batches still queued (undelivered:
    # never sent), but the one the loop was waiting to send, for a slot among max_inflight,
    # was sent once a slot freed, then waited out its own ack_timeout and was counted as
    # unconfirmed: close() took that much longer, and said the broker may have stored it
    need_nats()
    from matchcore.io.nats import NatsPublisher, NatsServer

    stream, prefix = names
    rec = np.zeros(10, WIRE_TOB)
    with NatsServer() as srv:
        pub = NatsPublisher(srv.url, stream=stream, prefix=prefix, ack_timeout=1.0,
                            max_inflight=1)
        srv.stop()
        for i in range(3):
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 10 * i, rec), 10)
        st = pub.close(timeout=0.2)
    # the first one in flight, the two others never sent
    assert (st["unconfirmed"], st["undelivered"], st["published"]) == (1, 2, 0)
    assert (st["records_unconfirmed"], st["records_undelivered"]) == (10, 20)


def test_publisher_batch_counted_as_another_thread_closes_given_up_not_left_behind(server, names):
    # publish_many() counted a batch (queued, outstanding) under its lock and put it on the
    # queue after releasing it: a close() from another thread in between told the loop to stop,
    # the loop ended on an empty queue, and the batch was never sent yet counted as
    # unconfirmed ("the broker may have stored it"); the publish then woke the closed loop and
    # raised RuntimeError("Event loop is closed"). The other thread's close() is run at that
    # point (the queue's put), so the overlap is certain.
    import threading

    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    good = encode_batch(KIND_TOB, 1, 0, np.zeros(3, WIRE_TOB))
    pub = NatsPublisher(server.url, stream=stream, prefix=prefix)
    real = pub._q
    box = {}

    class CloseOnFirstPut:
        def __init__(self):
            self.first = True

        def put(self, item):
            if self.first:
                self.first = False
                closer = threading.Thread(target=lambda: box.setdefault(
                    "final", dict(pub.close(timeout=0.2))))
                closer.start()
                box["closer"] = closer
                closer.join(2)          # its course run, or waiting for this publish
            real.put(item)

        def __getattr__(self, name):
            return getattr(real, name)

    pub._q = CloseOnFirstPut()
    try:
        assert pub.publish(f"{prefix}.tob.X", good, 3)
        box["closer"].join(30)
        assert not box["closer"].is_alive()
    finally:
        pub._q = real
        pub.close()
    final = box["final"]
    # sent and acknowledged before close() gave up waiting, or given up unsent: either way
    # known, never "may have been stored" for a batch that was never sent
    assert final["queued"] == 1 and final["unconfirmed"] == 0, final
    assert final["published"] + final["undelivered"] == 1, final
    assert final["records_published"] + final["records_undelivered"] == 3, final
    assert pub.stats == final
    assert stream_messages(server.url, stream) == final["published"]


def test_publisher_close_broker_gone_gives_up_batches_in_flight_after_its_timeout(names):
    # close() after a flush that timed out with the broker gone waited for the batches in
    # flight until their own ack_timeout ran out (counted from their sending, which went on
    # during the flush): `replay --publish` interrupted with the broker away took ~10 s, where
    # the README says the close flushes for at most 5 s. Nothing answers them on a connection
    # that is down: they are counted as unconfirmed (sent or waiting to be: maybe stored) at
    # once.
    need_nats()
    from matchcore.io.nats import NatsPublisher, NatsServer

    stream, prefix = names
    rec = np.zeros(10, WIRE_TOB)
    with NatsServer() as srv:
        pub = NatsPublisher(srv.url, stream=stream, prefix=prefix, ack_timeout=60.0)
        srv.stop()
        _wait(lambda: pub.stats["disconnects"] >= 1)
        for i in range(5):
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 10 * i, rec), 10)
        _wait(lambda: pub._q.empty())               # every batch taken into flight
        t0 = time.monotonic()
        st = pub.close(timeout=0.5)
        waited = time.monotonic() - t0
        alive = pub._thread.is_alive()
    # not a speed check: before, close() returned after ack_timeout (60 s) plus one second
    assert waited < 30 and not alive
    assert (st["unconfirmed"], st["undelivered"], st["published"]) == (5, 0, 0)
    assert st["records_unconfirmed"] == 50 and pub.pending == 0


def test_publisher_headers_dict_reused_by_the_caller_each_batch_keeps_its_own(server, names):
    # publish() queued the caller's headers dict itself, read by the loop thread when it sent
    # the batch: a caller that reuses one dict, setting its message id before each publish
    # (the usual way to have the broker drop resent duplicates), had every batch still queued
    # go out with the last id, and the broker stored one of them and dropped the rest as
    # duplicates
    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    rec = np.zeros(1, WIRE_TOB)
    headers = {}
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        for i in range(20):
            headers["Nats-Msg-Id"] = f"batch-{i}"
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, i, rec), 1,
                               headers=headers)
        headers["Nats-Msg-Id"] = "a:b\r\nX: y"       # after the last publish: sends nothing
    assert pub.stats["published"] == 20 and pub.stats["undelivered"] == 0, pub.stats
    assert _stored_seqs(server.url, stream, f"{prefix}.>") == list(range(20))


@pytest.mark.parametrize("name", ["ack_timeout", "connect_timeout", "reconnect_wait"])
def test_publisher_time_setting_beyond_float_range_refused_naming_it_before_connecting(name):
    # an int past the float range (10**400) passed the finite check (an int compares below
    # inf) and failed in float() with OverflowError, naming neither the setting nor its rule
    pytest.importorskip("nats")
    from matchcore.io.nats import NatsPublisher
    from matchcore.io.nats.server import free_port

    port = free_port()                        # nothing listens: it must not get that far
    with pytest.raises(ValueError, match=f"{name} must be a finite number of seconds > 0, "
                                         f"got 1000.*: beyond the float range"):
        NatsPublisher(f"nats://127.0.0.1:{port}", **{name: 10**400})


def test_publisher_close_from_two_threads_at_once_both_return_the_final_totals(server, names):
    # A close() that came while another thread's close() was ending the publisher's loop (the
    # loop closed, its thread not yet gone) raised a bare RuntimeError("Event loop is
    # closed"); one a moment later returned totals the first close() was still adding to. It
    # now waits for the first one and returns the same final totals.
    import threading

    from matchcore.io.nats import NatsPublisher

    stream, prefix = names
    pub = NatsPublisher(server.url, stream=stream, prefix=prefix)
    for _ in range(20):
        assert pub.publish(f"{prefix}.trade.X", b"x" * 100)
    loop_closed = threading.Event()
    go = threading.Event()
    real_close = pub._loop.close

    def close_loop_then_wait():
        # the loop thread, parked between closing its loop and ending, until released
        real_close()
        loop_closed.set()
        go.wait(60)

    pub._loop.close = close_loop_then_wait
    box = {}

    def first():
        try:
            box["stats"] = dict(pub.close(timeout=20))
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=first, daemon=True)
    t.start()
    assert loop_closed.wait(60)
    # released later whatever happens: the second close() below may wait for the first one
    releaser = threading.Timer(0.2, go.set)
    releaser.start()
    try:
        second = dict(pub.close(timeout=20))
    finally:
        go.set()
        releaser.cancel()
        t.join(60)
    assert not t.is_alive() and "error" not in box, box
    assert second == box["stats"]
    assert second["published"] == 20 and second["unconfirmed"] == 0
