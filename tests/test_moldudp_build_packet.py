"""matchcore.moldudp's packet builders: what build_packet accepts and how a receiver reads it."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from matchcore.moldudp import (
    MoldUDP64Error,
    MoldUDP64Receiver,
    build_framed_packet,
    build_packet,
    heartbeat,
    parse_packet,
)


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


@pytest.mark.parametrize("messages", [b"ab", bytearray(b"ab"), memoryview(b"ab"), "ab"])
def test_moldudp_build_packet_one_bytes_object_for_the_list_refused(messages):
    # b"ab" given for [b"ab"] was iterated as the numbers 97 and 98: a packet of two messages
    # of 97 and 98 NUL bytes, built without a word
    with pytest.raises(TypeError, match="a list of messages"):
        build_packet("S", 1, messages)


@pytest.mark.parametrize("message", [5, np.int64(5), True])
def test_moldudp_build_packet_number_for_a_message_refused(message):
    # bytes(5) is five NUL bytes: the number 5 was sent as a message of 5 bytes
    with pytest.raises(TypeError, match="a message is bytes"):
        build_packet("S", 1, [b"a", message])


@pytest.mark.parametrize("blocks", [4, np.int64(4)])
def test_moldudp_build_framed_packet_number_for_the_blocks_refused(blocks):
    # bytes(4) is four NUL bytes: two empty message blocks, a packet of count=2 built from 4
    with pytest.raises(TypeError, match="blocks are bytes"):
        build_framed_packet("S", 1, 2, blocks)


def test_moldudp_build_packet_bytes_like_messages_accepted():
    pkt = build_packet("S", 1, [bytearray(b"ab"), memoryview(b"c"), np.frombuffer(b"de", "u1")])
    assert parse_packet(pkt).messages() == [b"ab", b"c", b"de"]
    assert build_framed_packet("S", 1, 1, bytearray(b"\x00\x01a"))[20:] == b"\x00\x01a"


def test_moldudp_packet_next_seq_past_u64_refused_when_built_malformed_when_received():
    # a packet whose next sequence number is 2**64 or more was built and taken: the receiver's
    # next expected number became one that no header (a heartbeat, the end of session) can
    # carry, as the publisher's own check says (the next sequence number stays below 2**64)
    last = 2**64 - 1
    for seq, msgs in ((last, [b"a"]), (last - 1, [b"a", b"b"]), (last - 2, [b"a", b"", b"c"])):
        with pytest.raises(ValueError, match="next sequence number"):
            build_packet("S", seq, msgs)
        blocks = b"".join(struct.pack(">H", len(m)) + m for m in msgs)
        with pytest.raises(ValueError, match="next sequence number"):
            build_framed_packet("S", seq, len(msgs), blocks)
        raw = struct.pack(">10sQH", b"S" * 10, seq, len(msgs)) + blocks
        with pytest.raises(MoldUDP64Error, match="next sequence number"):
            parse_packet(raw)
        rx = MoldUDP64Receiver(0, first_seq=None, max_gap=None)
        try:
            rx.handle_packet(raw)
            rx.flush()
            st = rx.stats
            assert (st.malformed, st.messages, st.next_seq, st.data_packets) == (1, 0, None, 0)
            assert bytes(rx.data) == b""
        finally:
            rx.close()
    # the last packet that fits: its next sequence number is 2**64-1, as a heartbeat carries
    p = parse_packet(build_packet("S", last - 2, [b"a", b"b"]))
    assert (p.seq, p.count) == (last - 2, 2)
    assert parse_packet(heartbeat("S", last)).seq == last
    for count in (1, np.uint16(1), np.uint64(1)):
        assert parse_packet(build_framed_packet("S", last - 1, count, b"\x00\x01a")).seq == \
            last - 1
        with pytest.raises(ValueError, match="next sequence number"):
            build_framed_packet("S", np.uint64(last), count, b"\x00\x01a")
