"""matchcore.moldudp's receiver: its life (a closed receiver receives nothing more)."""
from __future__ import annotations

import dataclasses

import pytest

from matchcore.moldudp import MoldUDP64Receiver, build_packet


def test_moldudp_receiver_run_after_close_refused_saying_closed_stats_kept():
    # run() after close() failed in select() with "file descriptor cannot be a negative integer
    # (-1)", which said nothing of the receiver, after adding to its elapsed time
    rx = MoldUDP64Receiver(0)
    rx.handle_packet(build_packet("S", 1, [b"a", b"b"]))
    rx.flush()
    rx.close()
    before = dataclasses.asdict(rx.stats)
    with pytest.raises(RuntimeError, match="closed"):
        rx.run(timeout=0.01)
    assert dataclasses.asdict(rx.stats) == before
    rx.close()                  # closing twice is harmless
