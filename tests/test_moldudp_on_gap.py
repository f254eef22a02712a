"""MoldUDP64Receiver's on_gap callback: the receiver's state is whole whatever it does."""
from __future__ import annotations

import struct

import pytest

from matchcore.moldudp import MoldUDP64Receiver, build_packet


def _pkt(seq, n):
    return build_packet("S", seq, [f"m{i}".encode() for i in range(seq, seq + n)])


def _blocks(first, last):
    return b"".join(struct.pack(">H", len(m)) + m
                    for m in (f"m{i}".encode() for i in range(first, last + 1)))


def test_moldudp_receiver_on_gap_raising_leaves_packet_applied_gap_counted_once():
    # a callback that raised (to stop, or by mistake) left the gap counted but the packet
    # after it unapplied: the expected number stayed, its messages were lost, and the next
    # packet reported the same gap again, its missing messages counted twice
    class Stop(Exception):
        pass

    def on_gap(first, last):
        raise Stop(first, last)

    with MoldUDP64Receiver(0, on_gap=on_gap) as rx:
        rx.handle_packet(_pkt(1, 2))
        with pytest.raises(Stop):
            rx.handle_packet(_pkt(5, 2))
        rx.handle_packet(_pkt(7, 1))
        rx.flush()
        st = rx.stats
        assert (st.gaps, st.missing, st.messages, st.next_seq) == ([(3, 4)], 2, 5, 8)
        assert bytes(rx.data) == _blocks(1, 2) + _blocks(5, 7)
