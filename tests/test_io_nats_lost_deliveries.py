"""Deliveries of a read's pull consumer that never reach the consumer (dropped by the client as
a slow consumer, or with a connection the server closed), against a real ``nats-server -js``:
the read gets them again rather than giving them up."""
from __future__ import annotations

import numpy as np
import pytest

from nats_checks import names, server  # noqa: F401  (fixtures)


def _publish(server, stream, prefix, n):
    from matchcore.io.nats import KIND_TOB, WIRE_TOB, NatsPublisher, encode_batch

    rec = np.zeros(2, WIRE_TOB)
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        for i in range(n):
            rec["bid"] = i + 1
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, 2 * i, rec), 2)
    assert pub.stats["published"] == n


def _lose_once(monkeypatch, lose, delay=0.0, fetched=None, whole=False):
    """Make the pull subscription's fetch drop the deliveries of stream sequences `lose` (with
    `whole`, every delivery of that fetch), the first time one fetch holds them all (as an
    overflowing buffer or a dropped connection loses them on the way), and return the rest
    `delay` s later (the stream sequences of all it held added to the list `fetched`);
    returns the list that then holds the dropped ones."""
    import asyncio

    from nats.js.client import JetStreamContext

    fetch = JetStreamContext.PullSubscription.fetch
    dropped = []

    async def lossy(self, *args, **kwargs):
        msgs = await fetch(self, *args, **kwargs)
        seqs = [m.metadata.sequence.stream for m in msgs]
        if not dropped and all(s in seqs for s in lose):
            dropped.extend(seqs if whole else lose)
            if fetched is not None:
                fetched.extend(seqs)
            await asyncio.sleep(delay)
            return [m for m in msgs if m.metadata.sequence.stream not in dropped]
        return msgs

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", lossy)
    return dropped


def _assert_all_read_once_lost_read_again(c, n):
    # every one of the n batches applied (two top-of-book records each, the last one's count
    # n), no gap, after one new subscription that read the lost ones again
    assert c.batches == n and not c.missing and c.records["tob"] == 2 * n
    assert c.tob["X"][1] == n
    assert c.resubscribes == 1 and "never arrived" in c.last_error


@pytest.mark.parametrize("where", ["middle", "end"])
def test_consume_deliveries_lost_on_the_way_read_again(server, names, monkeypatch, where):
    # deliveries lost on the way (the client's or the server's buffer for the connection
    # overflowing): in the middle of the stream the read acknowledged the later ones, giving
    # the lost ones up (sequence gaps); at its end the read stopped without them, and the
    # books lacked the last batches without a word
    from matchcore.io.nats import consume

    stream, prefix = names
    n = 40
    _publish(server, stream, prefix, n)
    dropped = _lose_once(monkeypatch, (20, 21, 22) if where == "middle" else (n - 2, n - 1, n))
    c = consume(server.url, stream=stream, prefix=prefix, timeout=60)
    assert dropped and not c.timed_out
    _assert_all_read_once_lost_read_again(c, n)


def test_consume_follow_deliveries_lost_before_idle_read_again(server, names, monkeypatch):
    # the last deliveries lost on the way in a follow read: with nothing published after them
    # no later delivery showed the jump, --idle ended the read, and the books lacked the last
    # batches without a word (a read without follow asks its consumer at the end)
    from matchcore.io.nats import consume

    stream, prefix = names
    n = 40
    _publish(server, stream, prefix, n)
    dropped = _lose_once(monkeypatch, (n - 2, n - 1, n))
    c = consume(server.url, stream=stream, prefix=prefix, follow=True, idle=1, timeout=60)
    assert dropped
    _assert_all_read_once_lost_read_again(c, n)


def test_consume_follow_deliveries_lost_before_timeout_read_again(server, names, monkeypatch):
    # the last deliveries lost on the way in a follow read that its timeout ends: the idle
    # check asks the consumer what it delivered, the timeout did not, and the books lacked
    # the last batches with no gap counted
    from matchcore.io.nats import consume

    stream, prefix = names
    n = 40
    _publish(server, stream, prefix, n)
    dropped = _lose_once(monkeypatch, (n - 2, n - 1, n))
    c = consume(server.url, stream=stream, prefix=prefix, follow=True, timeout=2)
    assert dropped
    _assert_all_read_once_lost_read_again(c, n)
    assert not c.timed_out


def test_consume_follow_deliveries_lost_as_its_timeout_passes_read_again(server, names,
                                                                        monkeypatch):
    # deliveries lost in the middle of the fetch the timeout passed during: the jump was seen
    # and the read was to subscribe again after the last batch applied, but the timeout ended
    # it first, without the lost batches and the ones delivered after them, and last_error
    # said they were being read again
    from matchcore.io.nats import consume

    stream, prefix = names
    n = 40
    _publish(server, stream, prefix, n)
    fetched = []
    dropped = _lose_once(monkeypatch, (20, 21, 22), delay=2.5, fetched=fetched)
    c = consume(server.url, stream=stream, prefix=prefix, follow=True, timeout=2)
    assert dropped and max(fetched) > 22
    # every batch delivered before the timeout (those of the fetch it passed during)
    assert max(fetched) <= c.batches <= n and not c.missing
    assert c.records["tob"] == 2 * c.batches and c.tob["X"][1] == c.batches
    assert c.resubscribes == 1 and "never arrived" in c.last_error
    assert not c.timed_out


def test_consume_follow_whole_fetch_lost_read_again_while_following(server, names,
                                                                    monkeypatch):
    # every delivery of one fetch lost (a connection dropped with them in flight): the
    # consumer had as many unacknowledged as it may have and delivered nothing more, so no
    # later delivery showed the jump, and a follow read without --idle waited for the
    # broker's redelivery (its ack wait, 30 s) with the rest of the stream unread
    from matchcore.io.nats import consume

    stream, prefix = names
    n = 40
    _publish(server, stream, prefix, n)
    dropped = _lose_once(monkeypatch, (17,), whole=True)
    c = consume(server.url, stream=stream, prefix=prefix, follow=True, timeout=10)
    assert 17 in dropped and max(dropped) < n
    _assert_all_read_once_lost_read_again(c, n)


def _lose_first_ack(monkeypatch):
    """Make the first acknowledgement the read sends get lost on the way (as with a broker
    restarting or a connection dropping as it goes out); returns the list that then holds the
    stream sequence it acknowledged."""
    from nats.aio.msg import Msg

    ack = Msg.ack
    lost = []

    async def lossy(self):
        if not lost:
            lost.append(self.metadata.sequence.stream)
            self._ackd = True           # sent, as far as the client knows
            return
        await ack(self)

    monkeypatch.setattr(Msg, "ack", lossy)
    return lost


@pytest.mark.parametrize("follow", [False, True])
def test_consume_acknowledgement_lost_on_the_way_rest_of_stream_read(server, names,
                                                                     monkeypatch, follow):
    # the acknowledgement of a full fetch lost (a broker restarted with its store as the read
    # sent it): every delivery had arrived, but the consumer, at its limit of unacknowledged
    # deliveries, delivered nothing more until its ack wait (30 s) ran out; a read with a
    # shorter timeout ended with the first fetch's batches alone, timed out, and a follow read
    # ended by its idle time (or timeout) as if it had read everything
    from matchcore.io.nats import consume

    stream, prefix = names
    n = 40
    _publish(server, stream, prefix, n)
    lost = _lose_first_ack(monkeypatch)
    c = consume(server.url, stream=stream, prefix=prefix, follow=follow, timeout=10,
                **({"idle": 0.5} if follow else {}))
    assert lost and lost[0] < n
    assert c.batches == n and not c.missing and c.records["tob"] == 2 * n
    assert c.tob["X"][1] == n and not c.timed_out


def _read_state(url, stream):
    """(deliveries made, deliveries unacknowledged) of the one consumer of ``stream``, None
    while it has none."""
    import asyncio

    import nats

    async def go():
        nc = await nats.connect(url)
        try:
            infos = await nc.jetstream().consumers_info(stream)
            return (infos[0].delivered.consumer_seq, infos[0].num_ack_pending) if infos else None
        finally:
            await nc.close()

    return asyncio.run(go())


def _wait_read_state(url, stream, want, proc, within):
    # polls the broker until the subscriber's consumer is in state `want`; False after
    # `within` s. (`proc` may be stopped, never ended.)
    import time

    deadline = time.monotonic() + within
    while _read_state(url, stream) != want:
        assert proc.poll() is None, proc.communicate()
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_cli_subscribe_follow_paused_past_its_fetch_not_taken_for_lost_deliveries(server,
                                                                                  names):
    # A follower paused longer than its fetch's wait (Ctrl-Z then fg, or a starved process)
    # while the broker delivered to it: the deliveries waited in its subscription for the next
    # fetch, but the consumer, asked as the empty fetch came back, said they had been made,
    # and the read took them for lost: it subscribed again and its summary said "broker
    # errors: resubscribed 1x, last deliveries 11 to 15 of the pull consumer never arrived
    # (the connection dropped)", of a connection that never dropped
    import os
    import signal
    import subprocess
    import sys
    import time

    from matchcore.io.nats import KIND_TOB, WIRE_TOB, NatsPublisher, encode_batch
    from nats_checks import wait_stopped

    stream, prefix = names
    n = 10
    _publish(server, stream, prefix, n)
    proc = subprocess.Popen([sys.executable, "-m", "matchcore", "subscribe", server.url,
                             "--stream", stream, "--subject-prefix", prefix, "--follow",
                             "--idle", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rec = np.zeros(2, WIRE_TOB)
    paused_delivery = False
    try:
        with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
            # a few tries: the batches reach the paused follower only when its last fetch
            # request is still waiting at the broker (its wait of 0.2 s not run out yet)
            for _ in range(5):
                assert _wait_read_state(server.url, stream, (n, 0), proc, within=60)
                os.kill(proc.pid, signal.SIGSTOP)
                try:
                    wait_stopped(proc.pid)
                    stopped = time.monotonic()
                    for i in range(n, n + 5):
                        rec["bid"] = i + 1
                        assert pub.publish(f"{prefix}.tob.X",
                                           encode_batch(KIND_TOB, 1, 2 * i, rec), 2)
                    n += 5
                    paused_delivery = _wait_read_state(server.url, stream, (n, 5), proc,
                                                       within=5)
                    if paused_delivery:
                        # paused past its fetch's wait and its quiet second, after which an
                        # empty fetch asks the consumer what it delivered
                        time.sleep(max(0.0, stopped + 1.5 - time.monotonic()))
                finally:
                    os.kill(proc.pid, signal.SIGCONT)
                if paused_delivery:
                    break
        out, err = proc.communicate(timeout=60)
    except BaseException:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.communicate()
        raise
    assert paused_delivery
    assert proc.returncode == 0, (out, err)
    assert f"received {n} batches: trade 0, tob {2 * n}, l2 0 records" in out
    assert "missing (sequence gaps) 0 records" in out
    assert "broker errors" not in out, out
    assert out.splitlines()[1].startswith(f"X        bid {n / 1e4:.4f} x 0"), out
