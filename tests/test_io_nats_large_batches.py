"""Batches as large as the broker takes, read back by the consumer against a real
``nats-server -js``."""
from __future__ import annotations

import numpy as np

from nats_checks import names, server  # noqa: F401  (fixtures)


def test_consume_batches_of_max_payload_all_read_none_dropped_by_the_client(server, names):
    # one fetch asked for 512 batches: of 1 MiB each (the broker's max_payload) that is past
    # the client's 256 MiB of pending bytes per subscription, and the client dropped every
    # batch past it (a slow consumer); the read counted them as sequence gaps, records the
    # stream lacked, while the stream held every one
    from matchcore.io.nats import KIND_TOB, WIRE_TOB, NatsPublisher, consume, encode_batch

    stream, prefix = names
    n = 300
    with NatsPublisher(server.url, stream=stream, prefix=prefix) as pub:
        size = (pub.max_message - 16) // WIRE_TOB.itemsize      # a batch of max_payload
        rec = np.zeros(size, WIRE_TOB)
        rec["bid"] = np.arange(size) + 1
        for i in range(n):
            assert pub.publish(f"{prefix}.tob.X", encode_batch(KIND_TOB, 1, i * size, rec), size)
            if i % 50 == 49:
                assert pub.flush(60)
    assert pub.stats["published"] == n and pub.max_payload == 1 << 20
    c = consume(server.url, stream=stream, prefix=prefix, timeout=300)
    assert not c.timed_out and not c.missing and not c.gaps
    assert c.batches == n and c.records["tob"] == n * size
    assert c.tob["X"][1] == size
