"""matchcore.moldudp's packet builders: what build_packet accepts and how a receiver reads it."""
from __future__ import annotations

import struct

import pytest

from matchcore.moldudp import MoldUDP64Receiver, build_packet, parse_packet


def test_moldudp_build_packet_empty_message_accepted_and_given_back_by_the_receiver():
    # MoldUDP64 messages are 0 to 64 KB long and the receiver takes an empty one as a message:
    # build_packet refused it ("a message is 1..65535 bytes, got 0")
    msgs = [b"a", b"", b"bc", b""]
    pkt = build_packet("S", 7, msgs)
    assert pkt[18:20] == b"\x00\x04"
    assert pkt[20:] == b"\x00\x01a\x00\x00\x00\x02bc\x00\x00"
    p = parse_packet(pkt)
    assert (p.seq, p.count, p.messages()) == (7, 4, msgs)
    rx = MoldUDP64Receiver(0, first_seq=7)
    try:
        rx.handle_packet(pkt)
        rx.handle_packet(build_packet("S", 11, [b""]))
        rx.flush()
        st = rx.stats
        assert (st.malformed, st.gaps, st.messages, st.next_seq) == (0, [], 5, 12)
        assert bytes(rx.data) == pkt[20:] + b"\x00\x00"
    finally:
        rx.close()


@pytest.mark.parametrize("size", [0x10000, 0x10001])
def test_moldudp_build_packet_message_past_u16_length_refused(size):
    with pytest.raises(ValueError, match=f"a message is 0..65535 bytes, got {size}"):
        build_packet("S", 1, [b"a", bytes(size)])


def test_moldudp_build_packet_largest_message_fits_its_length_prefix():
    pkt = build_packet("S", 1, [bytes(0xFFFF)])
    assert struct.unpack_from(">H", pkt, 20) == (0xFFFF,)
    assert parse_packet(pkt).messages() == [bytes(0xFFFF)]
