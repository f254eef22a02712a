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
