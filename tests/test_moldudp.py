"""matchcore.moldudp: packet layout, the receiver's sequence logic, and publisher -> receiver over
loopback (127.0.0.1 only; every run is bounded in packets and seconds and ends by itself)."""
from __future__ import annotations

import gzip
import random
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchcore._moldudp import frame_offsets, plan_packets
from matchcore.moldudp import (
    END_OF_SESSION,
    MoldUDP64Error,
    MoldUDP64Publisher,
    MoldUDP64Receiver,
    build_framed_packet,
    build_packet,
    end_of_session,
    heartbeat,
    parse_packet,
    publish,
    receive,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
AAPL = DATA / "itch" / "aapl-20191230-0935.itch50"
LOOP_TIMEOUT_S = 20.0


def _framed(n=5000, seed=7) -> bytes:
    """A standard-framed stream of n messages of ITCH types and their lengths (the publisher
    frames a source as the replay does), with random bodies."""
    from matchcore.itch.layouts import LENGTHS

    rng = random.Random(seed)
    out = bytearray()
    for i in range(n):
        t = rng.choice("ADEXUPC")
        body = t.encode() + rng.randbytes(LENGTHS[t] - 1)
        out += struct.pack(">H", len(body)) + body
    return bytes(out)


def _aapl() -> bytes:
    if not AAPL.exists():
        pytest.skip(f"shared ITCH sample not found at {AAPL} (../shared/data is absent)")
    return AAPL.read_bytes()


def _loopback(source, *, rate=400_000, receiver_kwargs=None, **pub_kwargs):
    """Publish `source` to a receiver on 127.0.0.1 in a thread; returns (receiver, pub stats)."""
    rx = MoldUDP64Receiver(0, **(receiver_kwargs or {}))
    th = threading.Thread(target=rx.run, kwargs={"timeout": LOOP_TIMEOUT_S}, daemon=True)
    th.start()
    try:
        with MoldUDP64Publisher(source, rx.port, rate=rate, **pub_kwargs) as pub:
            ps = pub.run()
    finally:
        th.join(LOOP_TIMEOUT_S + 5)
        rx.close()
    assert not th.is_alive(), "receiver thread did not stop"
    assert rx.stats.end_of_session, f"no end of session: {rx.stats.summary()}"
    return rx, ps


# ---- packet layout ----

def test_moldudp_build_packet_layout_matches_spec():
    pkt = build_packet("ABC", 0x0102030405060708, [b"hi", b"xyz"])
    assert pkt[:10] == b"ABC       "
    assert pkt[10:18] == bytes(range(1, 9))
    assert pkt[18:20] == b"\x00\x02"
    assert pkt[20:] == b"\x00\x02hi\x00\x03xyz"
    p = parse_packet(pkt)
    assert (p.session, p.seq, p.count, p.messages()) == (b"ABC       ", 0x0102030405060708, 2,
                                                         [b"hi", b"xyz"])
    assert bytes(p.blocks) == pkt[20:]


def test_moldudp_heartbeat_and_end_of_session_parse_with_next_seq():
    hb = parse_packet(heartbeat("S", 42))
    eos = parse_packet(end_of_session("S", 43))
    assert (hb.is_heartbeat, hb.seq, hb.count, len(hb.blocks)) == (True, 42, 0, 0)
    assert (eos.is_end_of_session, eos.seq, eos.count) == (True, 43, END_OF_SESSION)
    assert hb.messages() == [] and eos.messages() == []


@pytest.mark.parametrize("raw, message", [
    (b"short", "shorter than the 20-byte header"),
    (build_packet("S", 1, [b"abc"])[:-1], "do not fit"),
    (build_packet("S", 1, [b"abc"]) + b"\x00", "1 bytes after the last"),
    (heartbeat("S", 1) + b"\x00\x01x", "heartbeat packet carries 3 payload bytes"),
    (end_of_session("S", 1) + b"z", "end-of-session packet carries 1"),
    (struct.pack(">10sQH", b"S" * 10, 1, 2) + b"\x00\x00", "2 message blocks do not fit"),
])
def test_moldudp_malformed_packet_raises_precise_error(raw, message):
    with pytest.raises(MoldUDP64Error, match=message):
        parse_packet(raw)


def test_moldudp_receiver_zero_length_message_fed_as_empty_packet_kept():
    # MoldUDP64 messages are 0 to 64 KB long: a packet holding an empty one was dropped
    # whole as malformed ("message blocks do not fit"), its other messages reported missing
    import matchcore.itch as itch

    empty = struct.pack(">10sQH", b"S" * 10, 1, 3) + b"\x00\x01a\x00\x00\x00\x01b"
    assert parse_packet(empty).messages() == [b"a", b"", b"b"]
    rx = MoldUDP64Receiver(0)
    try:
        rx.handle_packet(empty)
        # a copy overlapping the next number: its head, the empty message included, skipped
        rx.handle_packet(build_framed_packet("S" * 10, 2, 3, b"\x00\x00\x00\x01b\x00\x01c"))
        rx.flush()
        st = rx.stats
        assert (st.malformed, st.gaps, st.messages, st.duplicate_messages) == (0, [], 4, 2)
        assert bytes(rx.data) == b"\x00\x01a\x00\x00\x00\x01b\x00\x01c"
    finally:
        rx.close()
    # with a replayer: the messages around it reach the books, the empty one is counted by
    # the replay as it counts a zero length prefix in a file
    data = itch.generate(None, messages=300, symbols=2, seed=4)
    off, _, _ = frame_offsets(data)
    k = int(off[150])
    want = itch.decode(data[:k] + b"\x00\x00" + data[k:]).stats
    r = itch.Replayer()
    rx = MoldUDP64Receiver(0, replayer=r)
    try:
        rx.handle_packet(build_framed_packet("S", 1, 151, data[:k] + b"\x00\x00"))
        rx.handle_packet(build_framed_packet("S", 152, 150, data[k:]))
        rx.flush()
        r.finish(rx.unconsumed)
    finally:
        rx.close()
    assert (rx.stats.malformed, rx.stats.gaps, rx.stats.messages) == (0, [], 301)
    assert (r.stats["messages"], r.stats["bytes_skipped"]) == (want["messages"], 2) == (300, 2)
    assert r.stats["bad_length_offsets"] == [(k, "zero length prefix")]


def test_moldudp_build_invalid_arguments_raise_value_error():
    with pytest.raises(ValueError, match="at most 10 bytes"):
        build_packet("ELEVENCHARS", 1, [b"a"])
    with pytest.raises(ValueError, match="at least one message"):
        build_packet("S", 1, [])
    with pytest.raises(ValueError, match="0..65535"):
        build_packet("S", 1, [bytes(0x10000)])
    with pytest.raises(ValueError, match="count must be"):
        build_framed_packet("S", 1, 0xFFFF, b"")
    # blocks their count contradicts made a packet every receiver drops as malformed; a
    # fractional count failed in the header's packing, True was a count of 1
    for count, blocks in ((2, b"\x00\x01a"), (1, b"\x00\x01ab"), (1, b"\x00\x02a"),
                          (1.5, b"\x00\x01a"), (True, b"\x00\x01a")):
        with pytest.raises(ValueError, match="count must be|do not hold"):
            build_framed_packet("S", 1, count, blocks)


# ---- receiver sequence logic (no socket traffic) ----

def _pkt(seq, msgs, session="S"):
    return build_packet(session, seq, msgs)


def _msgs(first, last):
    return [f"m{i}".encode() for i in range(first, last + 1)]


def _blocks(first, last):
    return b"".join(struct.pack(">H", len(m)) + m for m in _msgs(first, last))


@pytest.fixture
def rx():
    r = MoldUDP64Receiver(0)
    yield r
    r.close()


def test_moldudp_receiver_in_sequence_packets_fed_byte_exact(rx):
    for seq, (a, b) in ((1, (1, 3)), (4, (4, 4)), (5, (5, 9))):
        rx.handle_packet(_pkt(seq, _msgs(a, b)))
    rx.flush()
    assert bytes(rx.data) == _blocks(1, 9)
    st = rx.stats
    assert (st.messages, st.data_packets, st.gaps, st.missing, st.next_seq) == (9, 3, [], 0, 10)


def test_moldudp_receiver_gap_recorded_with_missing_range_and_stream_goes_on(rx):
    seen = []
    rx.on_gap = lambda a, b: seen.append((a, b))
    rx.handle_packet(_pkt(1, _msgs(1, 2)))
    rx.handle_packet(_pkt(6, _msgs(6, 7)))      # 3..5 lost
    rx.handle_packet(_pkt(8, _msgs(8, 8)))
    rx.handle_packet(_pkt(12, _msgs(12, 13)))   # 9..11 lost
    rx.flush()
    st = rx.stats
    assert st.gaps == [(3, 5), (9, 11)] == seen
    assert st.missing == 6 and st.messages == 7 and st.next_seq == 14
    assert bytes(rx.data) == _blocks(1, 2) + _blocks(6, 8) + _blocks(12, 13)


def test_moldudp_receiver_first_packet_lost_is_a_gap_from_first_seq(rx):
    rx.handle_packet(_pkt(4, _msgs(4, 5)))
    assert rx.stats.gaps == [(1, 3)]


def test_moldudp_receiver_join_midstream_takes_first_seq_seen():
    with MoldUDP64Receiver(0, first_seq=None) as r:
        r.handle_packet(_pkt(1000, _msgs(1000, 1001)))
        r.handle_packet(_pkt(1002, _msgs(1002, 1002)))
        assert r.stats.gaps == [] and r.stats.next_seq == 1003 and r.stats.messages == 3


def test_moldudp_receiver_duplicates_and_overlap_ignored_and_counted(rx):
    rx.handle_packet(_pkt(1, _msgs(1, 4)))
    rx.handle_packet(_pkt(1, _msgs(1, 4)))       # exact duplicate
    rx.handle_packet(_pkt(2, _msgs(2, 3)))       # old
    rx.handle_packet(_pkt(3, _msgs(3, 6)))       # overlaps: 3, 4 seen, 5, 6 new
    rx.flush()
    st = rx.stats
    assert st.duplicate_packets == 2
    assert st.duplicate_messages == 4 + 2 + 2
    assert st.messages == 6 and st.gaps == []
    assert bytes(rx.data) == _blocks(1, 6)


def test_moldudp_receiver_heartbeat_reveals_gap_and_end_of_session_stops(rx):
    rx.handle_packet(_pkt(1, _msgs(1, 2)))
    rx.handle_packet(heartbeat("S", 3))          # nothing missing
    rx.handle_packet(heartbeat("S", 5))          # 3, 4 were sent and lost
    rx.handle_packet(heartbeat("S", 4))          # stale
    assert rx.stats.gaps == [(3, 4)] and rx.stats.heartbeats == 3
    assert rx.stats.stale_heartbeats == 1
    rx.handle_packet(end_of_session("S", 7))     # 5, 6 lost too
    assert rx.stats.end_of_session and rx.stats.gaps == [(3, 4), (5, 6)]
    assert rx.stats.missing == 4


def test_moldudp_receiver_other_session_and_malformed_counted_not_fed(rx):
    rx.handle_packet(_pkt(1, _msgs(1, 1), session="A"))
    rx.handle_packet(_pkt(2, _msgs(2, 2), session="B"))
    rx.handle_packet(b"\x00" * 7)
    rx.handle_packet(_pkt(2, _msgs(2, 3), session="A")[:-1])
    rx.handle_packet(_pkt(2, _msgs(2, 3), session="A"))
    rx.flush()
    st = rx.stats
    assert st.other_session == 1 and st.malformed == 2
    assert "shorter than" in st.last_malformed or "do not fit" in st.last_malformed
    assert st.session == b"A         " and st.gaps == []
    assert bytes(rx.data) == _blocks(1, 3)


@pytest.mark.parametrize("corrupt", [b"\xff", b"\x00", b"\x1f", b"\x7f", b"\x80"], ids=repr)
def test_moldudp_receiver_unprintable_first_session_malformed_not_adopted(rx, corrupt):
    bad = bytearray(_pkt(1, _msgs(1, 2), session="SESSION001"))
    bad[3:4] = corrupt                                  # a corrupted session byte
    rx.handle_packet(bytes(bad))
    assert rx.stats.session is None and rx.stats.malformed == 1
    assert "not printable ASCII" in rx.stats.last_malformed
    rx.handle_packet(_pkt(3, _msgs(3, 4), session="SESSION001"))
    rx.handle_packet(_pkt(5, _msgs(5, 5), session="SESSION001"))
    rx.flush()
    st = rx.stats
    assert st.session == b"SESSION001" and st.other_session == 0 and st.malformed == 1
    assert st.gaps == [(1, 2)] and st.messages == 3        # the dropped packet shows as a gap
    assert bytes(rx.data) == _blocks(3, 5)
    # once a session is adopted, a corrupted name is another session, as before
    rx.handle_packet(bytes(bad))
    assert st.other_session == 1 and st.malformed == 1


def test_moldudp_receiver_printable_first_session_adopted_given_session_kept(rx):
    rx.handle_packet(_pkt(1, _msgs(1, 1), session="  a~ Z 09 "))      # printable, odd but valid
    assert rx.stats.session == b"  a~ Z 09 " and rx.stats.malformed == 0
    with MoldUDP64Receiver(0, session=b"\x01BINARY") as given:     # an explicit name is not judged
        given.handle_packet(_pkt(1, _msgs(1, 1), session=b"\x01BINARY"))
        assert given.stats.messages == 1 and given.stats.malformed == 0


def test_moldudp_receiver_partial_feed_keeps_unconsumed_bytes():
    fed = []

    class HalfEater:
        def feed(self, buf):
            fed.append(bytes(buf))
            return len(buf) // 2

    with MoldUDP64Receiver(0, replayer=HalfEater()) as r:
        r.handle_packet(_pkt(1, _msgs(1, 2)))
        r.flush()
        first = fed[0]
        r.handle_packet(_pkt(3, _msgs(3, 3)))
        r.flush()
        assert fed[1] == first[len(first) // 2:] + _blocks(3, 3)
        assert r.unconsumed == fed[1][len(fed[1]) // 2:]


def test_moldudp_receiver_replayer_at_its_stop_time_not_fed_the_growing_rest_again():
    # A Replayer with until_ns consumes nothing once the stop time is reached (done). Every
    # flush after it handed the replayer all the bytes received since, the kept ones again
    # with the new ones, and kept them again: work that grew with the square of the rest of
    # the session, so a receiver stopped at 10:00 fell behind the stream it only keeps.
    import matchcore.itch as itch

    data = itch.generate(None, messages=3000, symbols=2, seed=3)
    msgs = itch.decode(data)
    stop = int(msgs["A"]["timestamp"][len(msgs["A"]) // 3])
    fed = []

    class Stopping:
        def __init__(self):
            self.r = itch.Replayer(until_ns=stop)

        @property
        def done(self):
            return self.r.done

        def feed(self, buf):
            fed.append(len(buf))
            return self.r.feed(buf)

    offsets, _, _ = frame_offsets(data)
    whole = Stopping()
    consumed = whole.r.feed(data)
    with MoldUDP64Receiver(0, replayer=Stopping()) as r:
        for k in range(0, len(offsets) - 1, 20):      # packets of 20 messages
            end = min(k + 20, len(offsets) - 1)
            r.handle_packet(build_packet("S", k + 1, [data[offsets[j] + 2:offsets[j + 1]]
                                                      for j in range(k, end)]))
            r.flush()
        assert r.replayer.done and r.replayer.r.stats == whole.r.stats
        # what the replayer did not consume is kept, as before
        assert r.unconsumed == data[consumed:]
    assert sum(fed) <= len(data), f"{sum(fed):,} bytes fed for a stream of {len(data):,}"


def test_moldudp_receiver_idle_timeout_stops_without_end_of_session():
    with MoldUDP64Receiver(0) as r:
        st = r.run(timeout=2.0, idle_timeout=0.05)
    assert st.timed_out and not st.end_of_session and st.packets == 0


def test_moldudp_receiver_bad_replayer_raises_type_error():
    with pytest.raises(TypeError, match="feed"):
        MoldUDP64Receiver(0, replayer=42)


# ---- corrupted headers (MoldUDP64 carries no checksum), sent over 127.0.0.1 ----

def _flip(datagram, bit, field="seq"):
    """The datagram with one bit of its sequence number (0-63) or message count (0-15) flipped."""
    session, seq, count = struct.unpack_from(">10sQH", datagram)
    if field == "seq":
        seq ^= 1 << bit
    else:
        count ^= 1 << bit
    return struct.pack(">10sQH", session, seq, count) + bytes(datagram[20:])


def _session_packets(first, sizes):
    """Data packets of `sizes` messages each (see _msgs) from `first`; and the next seq."""
    out, seq = [], first
    for n in sizes:
        out.append(_pkt(seq, _msgs(seq, seq + n - 1)))
        seq += n
    return out, seq


def _udp(rx, datagrams):
    """Send `datagrams` to `rx` over 127.0.0.1 (they wait in its socket), then run it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for d in datagrams:
            tx.sendto(d, (rx.host, rx.port))
    return rx.run(LOOP_TIMEOUT_S, idle_timeout=2.0)


@pytest.mark.parametrize("bit", [20, 40, 63])
def test_moldudp_receiver_bit_flipped_seq_mid_session_loses_nothing_else_and_is_counted(rx, bit):
    pkts, end = _session_packets(1, [3, 4, 2, 5, 3])
    sent = pkts[:2] + [_flip(pkts[2], bit)] + pkts[3:] + [heartbeat("S", end),
                                                          end_of_session("S", end)]
    st = _udp(rx, sent)
    assert st.end_of_session and not st.timed_out
    assert st.gaps == [(8, 9)] and st.missing == 2      # only the corrupted packet's messages
    assert (st.implausible, st.confirmed_jumps, st.duplicate_packets) == (1, 0, 0)
    assert st.messages == 15 and st.next_seq == end == 18
    assert bytes(rx.data) == _blocks(1, 7) + _blocks(10, 17)
    assert "1 implausible (0 confirmed jumps)" in st.summary()


def test_moldudp_receiver_far_behind_corrupted_seq_is_duplicate_counted():
    first = 2**40 + 1
    with MoldUDP64Receiver(0, first_seq=first) as r:
        pkts, end = _session_packets(first, [3, 4, 2])
        st = _udp(r, [pkts[0], _flip(pkts[1], 40), pkts[2], end_of_session("S", end)])
        assert (st.duplicate_packets, st.duplicate_messages, st.implausible) == (1, 4, 0)
        assert st.gaps == [(first + 3, first + 6)] and st.next_seq == end
        assert bytes(r.data) == _blocks(first, first + 2) + _blocks(first + 7, first + 8)


def test_moldudp_receiver_genuine_far_jump_confirmed_by_next_packet_accepted_with_exact_gap(rx):
    jump = 5_000_001                              # the sender really moved on, e.g. a restart
    before, _ = _session_packets(1, [3])
    after, end = _session_packets(jump, [2, 4, 1])
    seen = []
    rx.on_gap = lambda a, b: seen.append((a, b))
    st = _udp(rx, before + after + [end_of_session("S", end)])
    assert st.gaps == seen == [(4, jump - 1)] and st.missing == jump - 4
    assert (st.implausible, st.confirmed_jumps) == (1, 1)
    assert st.messages == 10 and st.next_seq == end
    assert bytes(rx.data) == _blocks(1, 3) + _blocks(jump, end - 1)


def test_moldudp_receiver_far_jump_packets_out_of_order_all_fed_not_reported_missing(rx):
    # The first packets after a real jump arrive out of order (the second before the first):
    # the one held first was confirmed and fed, the other was dropped and its messages, which
    # had arrived, were reported as a gap.
    jump = 5_000_001
    before, _ = _session_packets(1, [3])
    after, end = _session_packets(jump, [2, 4, 1, 3])
    sent = before + [after[1], after[0], after[2], after[3], end_of_session("S", end)]
    st = _udp(rx, sent)
    assert st.gaps == [(4, jump - 1)] and st.missing == jump - 4
    assert (st.implausible, st.confirmed_jumps, st.duplicate_packets) == (2, 1, 0)
    assert st.messages == 3 + 10 and st.next_seq == end
    assert bytes(rx.data) == _blocks(1, 3) + _blocks(jump, end - 1)


def test_moldudp_receiver_join_first_packet_copy_counted_duplicate_not_implausible():
    # Joining, the first packet arrives twice (a copy): the copy is a duplicate, not a
    # corrupted sequence number.
    with MoldUDP64Receiver(0, first_seq=None) as r:
        pkts, end = _session_packets(100, [3, 4])
        st = _udp(r, [pkts[0], pkts[0], pkts[1], end_of_session("S", end)])
        assert (st.implausible, st.duplicate_packets, st.duplicate_messages) == (0, 1, 3)
        assert st.gaps == [] and st.messages == 7 and bytes(r.data) == _blocks(100, end - 1)


def test_moldudp_receiver_far_jump_with_next_packet_lost_confirmed_by_the_one_after(rx):
    jump = 5_000_001
    before, _ = _session_packets(1, [3])
    after, end = _session_packets(jump, [2, 4, 1])
    st = _udp(rx, before + [after[0], after[2], end_of_session("S", end)])
    assert st.gaps == [(4, jump - 1), (jump + 2, jump + 5)]
    assert (st.implausible, st.confirmed_jumps, st.next_seq) == (1, 1, end)
    assert bytes(rx.data) == _blocks(1, 3) + _blocks(jump, jump + 1) + _blocks(jump + 6, jump + 6)


def test_moldudp_receiver_far_jump_announced_by_heartbeats_confirmed_by_the_second(rx):
    jump = 2**33
    before, _ = _session_packets(1, [3])
    after, end = _session_packets(jump, [2])
    st = _udp(rx, before + [heartbeat("S", jump), heartbeat("S", jump)] + after
              + [end_of_session("S", end)])
    assert st.gaps == [(4, jump - 1)] and (st.implausible, st.confirmed_jumps) == (1, 1)
    assert bytes(rx.data) == _blocks(1, 3) + _blocks(jump, jump + 1) and st.heartbeats == 2


def test_moldudp_receiver_jump_of_max_gap_trusted_one_more_held():
    with MoldUDP64Receiver(0, max_gap=10) as r:
        st = _udp(r, [_pkt(1, _msgs(1, 2)), _pkt(13, _msgs(13, 13)),   # 3..12 lost: 10, trusted
                      _pkt(25, _msgs(25, 25)),                            # 14..24: 11, held
                      end_of_session("S", 14)])
        assert st.gaps == [(3, 12)] and (st.implausible, st.confirmed_jumps) == (1, 0)
        assert bytes(r.data) == _blocks(1, 2) + _blocks(13, 13) and st.next_seq == 14


def test_moldudp_receiver_max_gap_none_trusts_a_flipped_seq_as_before():
    with MoldUDP64Receiver(0, max_gap=None) as r:
        pkts, end = _session_packets(1, [3, 4, 2, 5])
        st = _udp(r, [pkts[0], _flip(pkts[1], 40)] + pkts[2:] + [end_of_session("S", end)])
        assert st.gaps == [(4, 2**40 + 3)] and st.implausible == 0
        assert st.duplicate_packets == 2 and st.next_seq == 2**40 + 8
        assert bytes(r.data) == _blocks(1, 3) + _blocks(4, 7)


def test_moldudp_receiver_negative_max_gap_raises_value_error():
    with pytest.raises(ValueError, match="max_gap"):
        MoldUDP64Receiver(0, max_gap=-1)


@pytest.mark.parametrize("max_gap", [1.5, "10", True, float("inf")])
def test_moldudp_receiver_max_gap_not_a_whole_number_raises(max_gap):
    # a message count: 1.5 or "10" were taken (a str failed later, on the first packet)
    with pytest.raises(ValueError, match="max_gap"):
        MoldUDP64Receiver(0, max_gap=max_gap)


def test_moldudp_receiver_corrupted_heartbeat_and_end_of_session_next_seq_no_gap(rx):
    pkts, end = _session_packets(1, [3, 4, 2])
    st = _udp(rx, [pkts[0], _flip(heartbeat("S", 4), 40)] + pkts[1:]
              + [heartbeat("S", end), _flip(end_of_session("S", end), 41),
                 end_of_session("S", end)])
    assert st.end_of_session and st.heartbeats == 2
    assert st.gaps == [] and st.missing == 0 and st.implausible == 2
    assert bytes(rx.data) == _blocks(1, end - 1) and st.next_seq == end


@pytest.mark.parametrize("bit", [0, 2, 15])    # 4 messages -> 5, 0 (a heartbeat with payload), ...
def test_moldudp_receiver_corrupted_count_malformed_and_rest_fed(rx, bit):
    pkts, end = _session_packets(1, [3, 4, 2])
    st = _udp(rx, [pkts[0], _flip(pkts[1], bit, "count"), pkts[2], end_of_session("S", end)])
    assert st.malformed == 1 and st.gaps == [(4, 7)] and st.implausible == 0
    assert bytes(rx.data) == _blocks(1, 3) + _blocks(8, 9) and st.next_seq == end


@pytest.mark.parametrize("k", [0, 1])
def test_moldudp_receiver_join_with_flipped_seq_in_first_packets_loses_nothing_else(k):
    with MoldUDP64Receiver(0, first_seq=None) as r:
        pkts, end = _session_packets(1000, [3, 4, 2, 5])
        sent = list(pkts)
        sent[k] = _flip(sent[k], 40)
        st = _udp(r, sent + [end_of_session("S", end)])
        assert st.implausible == 1 and st.next_seq == end
        assert st.gaps == ([] if k == 0 else [(1003, 1006)])
        assert bytes(r.data) == b"".join(parse_packet(p).blocks for i, p in enumerate(pkts)
                                         if i != k)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(30, 300), per=st.integers(3, 12),
       first=st.sampled_from([1, 977, 2**40 + 3, 2**62 + 5]), join=st.booleans(),
       data=st.data())
def test_moldudp_receiver_one_corrupted_header_other_packets_reach_book_exactly_once(
        seed, n, per, first, join, data):
    itch = _itch()
    src = bytes(itch.generate(None, messages=n, symbols=3, seed=seed))
    offsets, _, _ = frame_offsets(src)
    bounds = [int(b) for b in plan_packets(offsets, 1380, per)]
    spans = list(zip(bounds[:-1], bounds[1:]))
    packets = [build_framed_packet("S", first + i, j - i, src[offsets[i]:offsets[j]])
               for i, j in spans]
    end = first + len(offsets) - 1
    sent = packets + [heartbeat("S", end), end_of_session("S", end), end_of_session("S", end)]
    k = data.draw(st.integers(0, len(sent) - 1), label="corrupted packet")
    field = data.draw(st.sampled_from(["seq", "count"]), label="field")
    # seq: a flip of bit 20 or above moves it by more than max_gap (lower ones look like loss)
    bit = data.draw(st.integers(20, 63) if field == "seq" else st.integers(0, 15), label="bit")
    sent[k] = _flip(sent[k], bit, field)
    net = itch.Replayer()
    with MoldUDP64Receiver(0, replayer=net, first_seq=None if join else first) as r:
        stats = _udp(r, sent)
    net.finish(r.unconsumed)
    ref = _file_replay(itch, b"".join(src[offsets[i]:offsets[j]] for x, (i, j) in enumerate(spans)
                                      if x != k))
    assert stats.end_of_session and stats.next_seq == end
    lost = spans[k][1] - spans[k][0] if k < len(spans) else 0
    assert stats.messages == len(offsets) - 1 - lost
    if k < len(spans) and not (join and k == 0):
        assert stats.gaps == [(first + spans[k][0], first + spans[k][1] - 1)]
    else:
        assert stats.gaps == []
    if not join and k < len(sent) - 1:     # (the last end of session is never read)
        assert stats.malformed + stats.implausible + stats.duplicate_packets \
            + stats.stale_heartbeats == 1
    _assert_same_replay(net, ref, some_trades=False)  # a short session may trade nothing


# ---- publisher ----

def test_moldudp_publisher_packs_within_limits_and_covers_stream():
    src = _framed(3000)
    with MoldUDP64Publisher(src, 9, max_packet=300, max_messages=7) as pub:
        b, off = pub.bounds, pub.offsets
        sizes = off[b[1:]] - off[b[:-1]] + 20
        counts = np.diff(b)
        assert sizes.max() <= 300 and counts.max() <= 7 and counts.min() >= 1
        assert b[0] == 0 and b[-1] == 3000 and pub.stats.messages == 3000


@pytest.mark.parametrize("where", ["middle", "end"])
def test_moldudp_publisher_zero_length_prefix_skipped_and_counted_as_the_replay(where):
    # A zero length prefix raised (and, as the source's last two bytes, had once been a cut
    # tail), where the replay skips it, counts it and goes on: framed the same way, the
    # messages around it are sent and the bytes jumped over counted in stats.bytes_skipped.
    import matchcore.itch as itch

    data = itch.generate(None, messages=400, symbols=2, seed=4)
    off, _, _ = frame_offsets(data)
    k = int(off[200]) if where == "middle" else len(data)
    src = data[:k] + b"\x00\x00" + data[k:]
    want = itch.decode(src).stats
    assert want["bad_length_offsets"] == [(k, "zero length prefix")]
    rx, ps = _loopback(src)
    assert (ps.messages, ps.tail_bytes, ps.bytes_skipped) == \
        (want["messages"], 0, want["bytes_skipped"]) == (400, 0, 2)
    assert bytes(rx.data) == data


def test_moldudp_publisher_truncated_tail_reported_not_sent():
    full = _framed(10)
    with MoldUDP64Publisher(full[:-5], 9) as pub:
        assert pub.stats.messages == 9
        last = len(full) - int(pub.offsets[-1])
        assert pub.stats.tail_bytes == last - 5


def test_moldudp_publisher_bad_drop_index_raises():
    with pytest.raises(ValueError, match="drop indices"):
        MoldUDP64Publisher(_framed(10), 9, drop={5})


# ---- loopback ----

def test_moldudp_loopback_no_drops_stream_byte_exact():
    src = _framed(6000)
    rx, ps = _loopback(src, max_packet=400)
    st = rx.stats
    assert ps.dropped == [] and ps.sent_messages == 6000
    assert st.gaps == [] and st.missing == 0 and st.malformed == 0
    assert st.messages == 6000 and st.next_seq == 6001 and st.heartbeats == 1
    assert bytes(rx.data) == src


def test_moldudp_loopback_dropped_packets_reported_as_exact_gaps():
    src = _framed(4000)
    with MoldUDP64Publisher(src, 9, max_messages=10) as probe:
        last = probe.n_packets - 1
    drop = {0, 3, 4, 50, last}
    rx, ps = _loopback(src, max_messages=10, drop=drop)
    st = rx.stats
    # packet k holds messages 10k+1 .. 10k+10; 3 and 4 are adjacent (one gap); the last packet's
    # loss shows only through the heartbeat's next sequence number.
    expected = [(1, 10), (31, 50), (501, 510), (10 * last + 1, 4000)]
    assert ps.dropped == expected
    assert st.gaps == expected and st.missing == sum(b - a + 1 for a, b in expected)
    assert st.messages == 4000 - st.missing
    kept = [m for m in range(1, 4001) if not any(a <= m <= b for a, b in expected)]
    offsets = _offsets(src)
    assert bytes(rx.data) == b"".join(src[offsets[m - 1]:offsets[m]] for m in kept)


def _offsets(src):
    out, pos = [0], 0
    while pos < len(src):
        pos += 2 + struct.unpack_from(">H", src, pos)[0]
        out.append(pos)
    return out


def test_moldudp_loopback_random_drops_gaps_equal_publisher_drops():
    rx, ps = _loopback(_framed(5000), drop=0.1, seed=5, max_messages=8)
    assert len(ps.dropped) > 5
    assert rx.stats.gaps == ps.dropped
    assert rx.stats.messages + rx.stats.missing == 5000


def test_moldudp_loopback_real_itch_file_from_gzip_byte_exact(tmp_path):
    src = _aapl()
    gz = tmp_path / "aapl.itch50.gz"
    with gzip.open(gz, "wb", compresslevel=1) as f:
        f.write(src)
    rx, ps = _loopback(gz, rate=1_000_000)
    assert ps.messages == 49_947 and rx.stats.messages == 49_947 and rx.stats.gaps == []
    assert bytes(rx.data) == src


def _receive_published(monkeypatch, src, sink, **publish_options):
    """receive(0, replayer=sink) in a thread while publish(src, port) sends to it; returns
    (the receiver's stats, the publisher's)."""
    import matchcore.moldudp as moldudp

    # publish() starts once receive() has bound its socket, on the port it bound: datagrams
    # sent before the bind were lost (a fixed wait was too short for a loaded machine or a
    # cold first import), and a port picked, freed and bound again could be taken meanwhile
    box = {}
    bound = threading.Event()

    class Receiver(moldudp.MoldUDP64Receiver):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            box["port"] = self.port
            bound.set()

    monkeypatch.setattr(moldudp, "MoldUDP64Receiver", Receiver)

    def listen():
        try:
            box["stats"] = receive(0, replayer=sink, timeout=LOOP_TIMEOUT_S)
        finally:
            bound.set()

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    assert bound.wait(LOOP_TIMEOUT_S) and "port" in box, "receive() did not bind"
    ps = publish(src, box["port"], rate=200_000, **publish_options)
    th.join(LOOP_TIMEOUT_S + 5)
    return box["stats"], ps


def test_moldudp_receive_and_publish_functions_with_callable_sink(monkeypatch):
    src = _framed(2000)
    chunks = []
    st, ps = _receive_published(monkeypatch, src, chunks.append, session="TEST")
    assert st.end_of_session and st.session == b"TEST      "
    assert ps.sent_messages == st.messages == 2000
    assert b"".join(chunks) == src and st.data is None


def test_moldudp_receive_into_replayer_bytes_it_kept_back_handed_over_for_finish(monkeypatch):
    # a replayer keeps back a message whose framing depends on what follows (an unknown
    # type, a candidate after a bad prefix); receive() closed its receiver with those bytes,
    # so the stream's last message could never be replayed: 3 received, 2 replayed
    itch = _itch()
    unknown = b"Z" + struct.pack(">HH", 1, 0) + (6000).to_bytes(6, "big") + b"xxxx"
    add = [b"A" + struct.pack(">HH", 1, 0) + (5000 + i).to_bytes(6, "big")
           + struct.pack(">QcI8sI", i + 1, b"B", 100, b"TEST    ", 1000 + i) for i in range(2)]
    src = b"".join(struct.pack(">H", len(m)) + m for m in add + [unknown])
    replayer = itch.Replayer()
    st, _ = _receive_published(monkeypatch, src, replayer)
    assert st.end_of_session and st.messages == 3
    assert st.unconsumed == src[-(2 + len(unknown)):]
    replayer.finish(st.unconsumed)
    ref = _file_replay(itch, src)
    assert replayer.stats["messages"] == ref.stats["messages"] == 3
    assert replayer.stats["unknown_types"] == ref.stats["unknown_types"] == {"Z": 1}


def _itch():
    itch = pytest.importorskip("matchcore.itch")
    if not hasattr(itch, "Replayer"):
        pytest.skip("matchcore.itch has no Replayer yet")
    return itch


def _file_replay(itch, src):
    ref = itch.Replayer()
    used = ref.feed(src)
    ref.finish(src[used:])
    return ref


def _assert_same_replay(net, ref, some_trades=True):
    assert _books_state(net) == _books_state(ref)
    for key in ("messages", "unknown_refs", "executions_clamped", "cancels_clamped"):
        assert net.stats[key] == ref.stats[key], key
    for name in ("trades", "tob"):
        a, b = getattr(net, name)(), getattr(ref, name)()
        assert len(a) == len(b) and (len(a) > 0 or not some_trades), name
        for field in a.dtype.names:  # field by field: the records carry padding bytes
            assert np.array_equal(a[field], b[field]), (name, field)


def test_moldudp_loopback_real_itch_into_replayer_equals_file_replay():
    itch = _itch()
    src = _aapl()
    net = itch.Replayer()
    rx, ps = _loopback(src, rate=1_000_000, receiver_kwargs={"replayer": net})
    assert rx.stats.gaps == [] and rx.stats.messages == 49_947
    assert rx.unconsumed == b""
    net.finish(rx.unconsumed)
    ref = _file_replay(itch, src)
    _assert_same_replay(net, ref)
    assert len(_books_state(ref)) == 1 and ref.stats["unknown_refs"] > 0


def test_moldudp_loopback_generated_itch_into_replayer_equals_file_replay():
    itch = _itch()
    src = bytes(itch.generate(None, messages=20_000, symbols=8, seed=4))
    net = itch.Replayer()
    rx, ps = _loopback(src, rate=1_000_000, receiver_kwargs={"replayer": net})
    assert rx.stats.gaps == [] and rx.stats.messages == 20_000
    net.finish(rx.unconsumed)
    ref = _file_replay(itch, src)
    _assert_same_replay(net, ref)
    assert len(_books_state(ref)) == 8


def _books_state(replayer):
    out = {}
    for key, book in replayer.books.items():
        bids, asks = book.depth(100_000)
        out[key] = (len(book), bids.tolist(), asks.tolist())
    return out


def test_moldudp_loopback_drops_into_replayer_reported_and_replay_goes_on():
    itch = _itch()
    src = bytes(itch.generate(None, messages=20_000, symbols=8, seed=4))
    net = itch.Replayer()
    rx, ps = _loopback(src, rate=1_000_000, drop={10, 11, 200},
                       receiver_kwargs={"replayer": net})
    assert rx.stats.gaps == ps.dropped and len(ps.dropped) == 2
    net.finish(rx.unconsumed)
    ref = _file_replay(itch, src)
    assert net.stats["messages"] == ref.stats["messages"] - rx.stats.missing
    assert net.stats["truncated"] is None


@pytest.mark.parametrize("session, exc", [
    (b"\x01BINARY", ValueError), (b"A\x00", ValueError), ("caf\u00e9", ValueError),
    (b"\x7f", ValueError), ("ELEVEN_CHARS", ValueError), (5, TypeError), (None, TypeError),
], ids=repr)
def test_moldudp_publisher_refuses_a_session_no_receiver_adopts(session, exc):
    # A publisher sends only names a receiver adopts without being told them (printable
    # ASCII); the raw packet builders and a receiver's explicit filter still take any 10 bytes.
    from matchcore.moldudp import MoldUDP64Publisher
    with pytest.raises(exc, match="session"):
        MoldUDP64Publisher(b"", 9, session=session)
    if isinstance(session, bytes) and len(session) <= 10:
        assert _pkt(1, _msgs(1, 1), session=session)[:len(session)] == session


def test_moldudp_publisher_printable_session_accepted_and_padded():
    from matchcore.moldudp import MoldUDP64Publisher
    for name in ("  a~ Z 09 ", "SESSION001", b"X"):
        pub = MoldUDP64Publisher(b"", 9, session=name)
        assert len(pub.session) == 10 and pub.session.rstrip(b" ") == (
            name.encode() if isinstance(name, str) else name).rstrip(b" ")
        pub.close()


# ---- argument checks: refused at construction, before any packet is sent ----

@pytest.mark.parametrize("rate", [float("nan"), True, "5"])
def test_moldudp_publisher_nan_bool_or_str_rate_raises_value_error(rate):
    # NaN passed "rate <= 0" and the stream went out unpaced; True was 1 message/s; a str
    # failed in the comparison, naming neither the setting nor the rule
    with pytest.raises(ValueError, match="rate must be"):
        MoldUDP64Publisher(_framed(10), 9, rate=rate)


def test_moldudp_publisher_sequence_past_u64_refused_before_sending():
    # the header packing failed only partway through run(), after packets had gone out
    with pytest.raises(ValueError, match="2\\*\\*64"):
        MoldUDP64Publisher(_framed(10), 9, first_seq=2**64 - 5)
    with pytest.raises(ValueError, match="2\\*\\*64"):
        MoldUDP64Publisher(_framed(10), 9, first_seq=2**64)


@pytest.mark.parametrize("drop, dropped", [(0, []), (1, [(1, 3000)])])
def test_moldudp_loopback_whole_number_drop_probability_accepted(drop, dropped):
    # drop=0 / drop=1 raised "TypeError: 'int' object is not iterable"
    rx, ps = _loopback(_framed(3000), drop=drop)
    assert ps.dropped == dropped and rx.stats.gaps == dropped
    assert rx.stats.missing == (3000 if drop else 0)


@pytest.mark.parametrize("kwargs", [{"max_gap": float("nan")}, {"batch": float("nan")},
                                    {"batch": 2.5}, {"first_seq": -5}, {"first_seq": 2**64},
                                    {"first_seq": 0}])
def test_moldudp_receiver_nonsense_number_raises_value_error(kwargs):
    # a NaN max_gap held every packet as implausible (nothing fed); a NaN batch failed in run();
    # a negative first_seq opened a gap before sequence number 0; first_seq=0 was taken while
    # sequence numbers start at 1 (the publisher refuses 0): a session starting at 1 opened a
    # gap of one message that never existed
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MoldUDP64Receiver(0, **kwargs)


def test_moldudp_receiver_float_max_gap_still_accepted():
    with MoldUDP64Receiver(0, max_gap=1e6) as rx:
        rx.handle_packet(build_packet("S1", 1, [b"A" * 12]))
        rx.flush()
        assert rx.stats.messages == 1 and rx.stats.next_seq == 2


@pytest.mark.parametrize("kwargs", [{"gap_s": -0.1}, {"gap_s": float("nan")},
                                    {"gap_s": float("inf")}, {"gap_s": True},
                                    {"gap_s": "0.1"}, {"heartbeats": 1.5},
                                    {"end_packets": -1}])
def test_moldudp_publisher_bad_trailer_setting_raises_before_sending(kwargs):
    # gap_s < 0 or NaN, and a float heartbeats, raised in run() after every data packet had
    # been sent, so no end of session went out
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MoldUDP64Publisher(_framed(10), 9, **kwargs)


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"max_messages": 2.5}, ValueError, "max_messages must be a whole number"),
    ({"max_messages": True}, ValueError, "max_messages must be a whole number"),
    ({"max_packet": 100.5}, ValueError, "max_packet must be a whole number"),
    ({"drop": "01"}, TypeError, "drop is a probability or a collection"),
    ({"drop": [1.7]}, TypeError, "drop indices are whole numbers"),
    ({"drop": [True]}, TypeError, "drop indices are whole numbers"),
    ({"port": 70000}, ValueError, "port must be a whole number in 0..65535"),
    ({"port": -1}, ValueError, "port must be a whole number in 0..65535"),
])
def test_moldudp_publisher_fractional_sizes_str_drop_bad_port_refused_at_construction(
        kwargs, exc, msg):
    # they were accepted: 2.5 messages cut to 2, "01" dropped packets 0 and 1, 1.7 dropped
    # packet 1, a bad port failed only in run()
    kwargs = dict(kwargs)
    port = kwargs.pop("port", 9)
    with pytest.raises(exc, match=msg):
        MoldUDP64Publisher(_framed(100), port, **kwargs)


def test_moldudp_publisher_numpy_drop_indices_accepted():
    pub = MoldUDP64Publisher(_framed(100), 9, max_messages=10, drop=np.array([0, 2]))
    assert pub._drop.nonzero()[0].tolist() == [0, 2]


@pytest.mark.parametrize("build", [
    lambda seq: build_packet("S1", seq, [b"a"]),
    lambda seq: build_framed_packet("S1", seq, 1, b"\x00\x01a"),
    lambda seq: heartbeat("S1", seq),
    lambda seq: end_of_session("S1", seq),
])
@pytest.mark.parametrize("seq", [-1, 2**64, 1.5, True])
def test_moldudp_packet_builders_bad_sequence_number_value_error(build, seq):
    # struct.error ("int too large to convert", for -1 too) is not a ValueError, and True
    # was packed as 1
    with pytest.raises(ValueError, match="sequence number"):
        build(seq)


def test_moldudp_packet_builders_numpy_sequence_number_accepted():
    assert parse_packet(heartbeat("S1", np.uint64(2**64 - 1))).seq == 2**64 - 1
    assert parse_packet(build_packet("S1", np.int64(7), [b"a"])).seq == 7


@pytest.mark.parametrize("kwargs, msg", [({"port": 70000}, "port must be"),
                                         ({"port": -1}, "port must be"),
                                         ({"port": 1.5}, "port must be"),
                                         ({"rcvbuf": -1}, "rcvbuf must be"),
                                         ({"rcvbuf": 2.5}, "rcvbuf must be")])
def test_moldudp_receiver_bad_port_or_rcvbuf_value_error_before_binding(kwargs, msg):
    # a port out of range was bind()'s OverflowError, a negative rcvbuf accepted
    kwargs = dict(kwargs)
    port = kwargs.pop("port", 0)
    with pytest.raises(ValueError, match=msg):
        MoldUDP64Receiver(port, **kwargs)


@pytest.mark.parametrize("kwargs, msg", [({"timeout": float("nan")}, "timeout must be"),
                                         ({"timeout": -1}, "timeout must be"),
                                         ({"idle_timeout": float("nan")}, "idle_timeout must be"),
                                         ({"timeout": True}, "timeout must be"),
                                         ({"idle_timeout": True}, "idle_timeout must be"),
                                         ({"timeout": "1"}, "timeout must be"),
                                         ({"max_packets": -1, "timeout": 0.5},
                                          "max_packets must be"),
                                         ({"max_packets": 1.5, "timeout": 0.5},
                                          "max_packets must be")])
def test_moldudp_receiver_run_bad_limits_value_error_naming_them(kwargs, msg):
    # max_packets=-1 returned at once as if the run were over; NaN was select()'s error
    with MoldUDP64Receiver(0) as rx:
        with pytest.raises(ValueError, match=msg):
            rx.run(**kwargs)
        assert rx.stats.packets == 0 and rx.stats.elapsed_s == 0


def test_moldudp_publisher_source_not_itch_refused_naming_its_format(tmp_path):
    # A native command file was "published" as no message at all (its bytes a cut tail), a
    # DBN, zstd or LOBSTER file as garbage frames or a framing error that did not say why.
    import matchcore.native as native
    from matchcore import COMMAND_DTYPE
    from matchcore.feeds.dbn_gen import generate_mbo

    cmds = tmp_path / "flow.mccmd"
    c = np.zeros(10, COMMAND_DTYPE)
    c["order_id"], c["price"], c["qty"] = np.arange(1, 11), 100, 1
    native.write_commands(cmds, c)
    dbn = generate_mbo(tmp_path / "mbo.dbn", records=500, seed=3)
    dbn_gz = tmp_path / "mbo.dbn.gz"
    dbn_gz.write_bytes(gzip.compress(dbn.read_bytes()))
    csv = tmp_path / "msg.csv"
    csv.write_bytes(b"34200.004241176,1,16113575,18,5853300,1\n")
    cases = [(cmds, "a native command file"), (dbn, "a DBN file"),
             (dbn_gz, "a gzip'd DBN file"), (csv, "a text file"),
             (cmds.read_bytes(), "a native command file")]
    for source, what in cases:
        with pytest.raises(ValueError, match=f"{what}.*, not ITCH 5.0: MoldUDP64Publisher"):
            MoldUDP64Publisher(source, 9)
    zst = generate_mbo(tmp_path / "mbo.dbn.zst", records=500, seed=3)
    with pytest.raises(ValueError, match="a zstd-compressed file"):
        MoldUDP64Publisher(zst, 9)
    itch_gz = tmp_path / "aapl.itch.gz"              # ITCH, plain or gzip'd, is still taken
    # (a generated day where ../shared is absent: the test ran into FileNotFoundError there)
    day = AAPL.read_bytes()[:200_000] if AAPL.exists() else \
        __import__("matchcore.itch", fromlist=["generate"]).generate(None, messages=3000)
    itch_gz.write_bytes(gzip.compress(day))
    assert MoldUDP64Publisher(itch_gz, 9).stats.messages > 0


def test_moldudp_publisher_fifo_source_publishes_every_message(tmp_path):
    # The publisher read a FIFO's first bytes to tell gzip from plain, then saw a size of 0
    # and published nothing (a gzip'd stream: reopened, it waited for another writer)
    import os

    data = AAPL.read_bytes()[:120_000] if AAPL.exists() else \
        __import__("matchcore.itch", fromlist=["generate"]).generate(None, messages=3000)
    want = MoldUDP64Publisher(data, 9).stats.messages
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    for payload in (data, gzip.compress(data)):
        writer = threading.Thread(target=lambda p=payload: fifo.write_bytes(p))
        writer.start()
        try:
            pub = MoldUDP64Publisher(fifo, 9)
        finally:
            writer.join()
        assert want > 0 and pub.stats.messages == want
    writer = threading.Thread(target=lambda: fifo.write_bytes(b"DBN\x03" + bytes(60)))
    writer.start()
    try:
        with pytest.raises(ValueError, match="a DBN file, not ITCH 5.0"):
            MoldUDP64Publisher(fifo, 9)
    finally:
        writer.join()


def test_moldudp_publisher_cut_or_damaged_gzip_value_error_naming_file(tmp_path):
    # a gzip'd source cut short raised EOFError, a damaged one BadGzipFile, neither naming
    # the file; a padded or multi-member stream is still taken whole
    data = AAPL.read_bytes()[:200_000] if AAPL.exists() else \
        __import__("matchcore.itch", fromlist=["generate"]).generate(None, messages=5000)
    gz = gzip.compress(data)
    cut = tmp_path / "cut.itch.gz"
    cut.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(ValueError, match=f"{cut}: the gzip stream ends before its end marker"):
        MoldUDP64Publisher(cut, 9)
    bad = bytearray(gz)
    bad[-6] ^= 0xFF                                   # the CRC
    damaged = tmp_path / "damaged.itch.gz"
    damaged.write_bytes(bytes(bad))
    with pytest.raises(ValueError, match=f"{damaged}: damaged gzip stream"):
        MoldUDP64Publisher(damaged, 9)
    whole = tmp_path / "whole.itch.gz"
    whole.write_bytes(gzip.compress(b"") + gzip.compress(data[:1000]) + b"\0" * 4
                      + gzip.compress(data[1000:]) + b"\0" * 7)
    assert MoldUDP64Publisher(whole, 9).stats.messages == MoldUDP64Publisher(data, 9).stats.messages


@pytest.mark.parametrize("on_gap", [5, "print"])
def test_receiver_on_gap_not_callable_refused_when_made(on_gap):
    # it was taken, and the first gap of the session then raised "'int' object is not
    # callable" out of run(), part way through the stream
    with pytest.raises(TypeError, match=r"on_gap must be callable\(first, last\) or None"):
        MoldUDP64Receiver(0, "127.0.0.1", None, on_gap=on_gap)
    with pytest.raises(TypeError, match=r"on_gap must be callable\(first, last\) or None"):
        receive(0, on_gap=on_gap, timeout=0.1)


def test_publisher_compressed_buffer_refused_saying_a_buffer_is_read_plain():
    # a gzip'd buffer was refused with "MoldUDP64Publisher reads ITCH 5.0 (plain or gzip'd
    # once)": it was gzip'd once, and a buffer is read plain only (a .gz file is decompressed)
    from matchcore.itch import generate

    data = generate(None, messages=500, symbols=2, seed=4)
    with pytest.raises(ValueError) as e:
        MoldUDP64Publisher(gzip.compress(data), 9)
    assert str(e.value) == ("the source buffer: a gzip-compressed stream, not ITCH 5.0: "
                            "MoldUDP64Publisher reads a buffer of plain ITCH 5.0 (a file may be "
                            "gzip'd); decompress it first")
    assert MoldUDP64Publisher(data, 9).stats.messages == 500        # plain: taken


@pytest.mark.parametrize("make", [
    pytest.param(lambda s: MoldUDP64Publisher(s, 26400), id="MoldUDP64Publisher"),
    pytest.param(lambda s: publish(s, 26400), id="publish"),
])
@pytest.mark.parametrize("bad", ["slash", "empty"])
def test_moldudp_publisher_source_with_trailing_separator_or_empty_refused(tmp_path, make,
                                                                           bad):
    # "day.itch/" names a directory: through Path the separator was dropped and the file
    # day.itch published; "" is "." to Path: "Is a directory: '.'", of a directory nobody named
    import re

    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=1000, symbols=2, seed=1)
    given = str(day) + "/" if bad == "slash" else ""
    expect = (f"source: {given} names a directory (it ends with /), not a file"
              if bad == "slash" else "source: an empty path")
    with pytest.raises(ValueError, match=re.escape(expect)):
        make(given)


def test_moldudp_publisher_damaged_prefix_mid_file_resyncs_as_the_replay_and_sends_the_rest():
    # A damaged length prefix mid-file made everything after it one "incomplete last message":
    # counted in tail_bytes and never sent. Framed as the replay frames it, the messages after
    # the damage go out and the bytes skipped are counted.
    import matchcore.itch as itch

    data = itch.generate(None, messages=3000, symbols=2, seed=4)
    off, _, _ = frame_offsets(data)
    k = int(off[1500])
    bad = data[:k] + b"\xff\xf0" + data[k + 2:]          # message 1500's prefix damaged
    want = itch.decode(bad).stats
    assert want["bad_lengths"] == 1 and want["truncated"] is None
    rx, ps = _loopback(bad)
    assert (ps.messages, ps.tail_bytes, ps.bytes_skipped) == \
        (want["messages"], 0, want["bytes_skipped"])
    assert bytes(rx.data) == data[:k] + data[int(off[1501]):]
    with MoldUDP64Publisher(data[:-5], 9) as pub:       # a cut last message is still the tail
        assert pub.stats.tail_bytes == int(off[-1] - off[-2]) - 5
        assert pub.stats.bytes_skipped == 0


@pytest.mark.parametrize("drop", [None, {1, 2}])
def test_moldudp_publisher_seed_without_a_drop_probability_refused(drop):
    # seed= draws a drop probability's packets: without one it was accepted and ignored
    with pytest.raises(ValueError, match="seed applies to a drop probability"):
        MoldUDP64Publisher(_framed(100), 9, drop=drop, seed=5)
    with MoldUDP64Publisher(_framed(300), 9, drop=0.5) as a, \
            MoldUDP64Publisher(_framed(300), 9, drop=0.5, seed=0) as b:
        assert a._drop.any() and (a._drop == b._drop).all()   # the default seed is still 0


def test_moldudp_receiver_summary_counts_one_in_the_singular():
    # an end-of-session heartbeat alone read "1 heartbeats"; one gap "1 gaps"
    from matchcore.moldudp import ReceiverStats
    st = ReceiverStats(session=b"S", next_seq=3, messages=1, data_packets=1, heartbeats=1,
                       gaps=[(2, 2)], missing=1, duplicate_packets=1, confirmed_jumps=1,
                       end_of_session=True)
    assert st.summary() == (
        "MoldUDP64 session b'S': 1 message in 1 packet, 1 heartbeat, end of session; 1 gap, "
        "1 message missing: [2, 2]; 1 duplicate packet, 0 malformed, 0 implausible "
        "(1 confirmed jump), 0 from another session; next seq 3")
    st = ReceiverStats(session=b"S", next_seq=1, messages=2000, data_packets=2, heartbeats=2)
    assert st.summary().startswith(
        "MoldUDP64 session b'S': 2,000 messages in 2 packets, 2 heartbeats, open; 0 gaps, "
        "0 messages missing; 0 duplicate packets")
