"""matchcore.moldudp's publisher: its life (one run, then closed) and the sources it refuses."""
from __future__ import annotations

import dataclasses
import socket

import pytest

import matchcore.itch as itch
from matchcore.moldudp import MoldUDP64Publisher


def _sink():
    """A UDP socket on 127.0.0.1 that counts what the publisher sends."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def _drain(sock) -> int:
    n = 0
    while True:
        try:
            sock.recv(65536)
        except BlockingIOError:
            return n
        n += 1


def test_moldudp_publisher_second_run_refused_before_sending_stats_kept():
    # a second run() sent the whole session again and added it to the same stats (sent_packets
    # and bytes doubled, the dropped ranges listed twice)
    data = itch.generate(None, messages=400, symbols=2, seed=3)
    sink = _sink()
    try:
        with MoldUDP64Publisher(data, sink.getsockname()[1], drop={0}, gap_s=0) as pub:
            first = dataclasses.asdict(pub.run())
            sent = _drain(sink)
            assert sent == first["sent_packets"] + 1 + 3 and first["dropped"]
            with pytest.raises(RuntimeError, match="already run"):
                pub.run()
            assert dataclasses.asdict(pub.stats) == first
            assert _drain(sink) == 0
    finally:
        sink.close()


def test_moldudp_publisher_run_after_close_refused_saying_closed(tmp_path):
    # run() after close() failed on the released memoryview ("operation forbidden on released
    # memoryview object") after the socket was made
    path = tmp_path / "day.itch"
    path.write_bytes(itch.generate(None, messages=200, symbols=2, seed=5))
    sink = _sink()
    try:
        for source in (path, path.read_bytes()):
            pub = MoldUDP64Publisher(source, sink.getsockname()[1], gap_s=0)
            pub.close()
            with pytest.raises(RuntimeError, match="closed"):
                pub.run()
            assert (pub.stats.sent_packets, pub.stats.bytes) == (0, 0)
            pub.close()             # closing twice is harmless
        assert _drain(sink) == 0
    finally:
        sink.close()
