"""matchcore.moldudp: packet layout, the receiver's sequence logic, and publisher -> receiver over
loopback (127.0.0.1 only; every run is bounded in packets and seconds and ends by itself)."""
from __future__ import annotations

import gzip
import random
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

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
    """A standard-framed stream of n messages with ITCH-like lengths and random bodies."""
    rng = random.Random(seed)
    out = bytearray()
    for i in range(n):
        body = bytes([rng.choice(b"ADEXUPC")]) + rng.randbytes(rng.choice((11, 18, 19, 30, 35)))
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
    (struct.pack(">10sQH", b"S" * 10, 1, 1) + b"\x00\x00", "do not fit"),
])
def test_moldudp_malformed_packet_raises_precise_error(raw, message):
    with pytest.raises(MoldUDP64Error, match=message):
        parse_packet(raw)


def test_moldudp_build_invalid_arguments_raise_value_error():
    with pytest.raises(ValueError, match="at most 10 bytes"):
        build_packet("ELEVENCHARS", 1, [b"a"])
    with pytest.raises(ValueError, match="at least one message"):
        build_packet("S", 1, [])
    with pytest.raises(ValueError, match="1..65535"):
        build_packet("S", 1, [b""])
    with pytest.raises(ValueError, match="count must be"):
        build_framed_packet("S", 1, 0xFFFF, b"")


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


def test_moldudp_receiver_idle_timeout_stops_without_end_of_session():
    with MoldUDP64Receiver(0) as r:
        st = r.run(timeout=2.0, idle_timeout=0.05)
    assert st.timed_out and not st.end_of_session and st.packets == 0


def test_moldudp_receiver_bad_replayer_raises_type_error():
    with pytest.raises(TypeError, match="feed"):
        MoldUDP64Receiver(0, replayer=42)


# ---- publisher ----

def test_moldudp_publisher_packs_within_limits_and_covers_stream():
    src = _framed(3000)
    with MoldUDP64Publisher(src, 9, max_packet=300, max_messages=7) as pub:
        b, off = pub.bounds, pub.offsets
        sizes = off[b[1:]] - off[b[:-1]] + 20
        counts = np.diff(b)
        assert sizes.max() <= 300 and counts.max() <= 7 and counts.min() >= 1
        assert b[0] == 0 and b[-1] == 3000 and pub.stats.messages == 3000


def test_moldudp_publisher_zero_length_prefix_raises_with_offset():
    src = _framed(3) + b"\x00\x00" + _framed(2)
    with pytest.raises(ValueError, match=f"zero length prefix at byte offset {len(_framed(3))}"):
        MoldUDP64Publisher(src, 9)


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


def test_moldudp_receive_and_publish_functions_with_callable_sink():
    src = _framed(2000)
    chunks = []
    box = {}
    with MoldUDP64Receiver(0) as probe:
        port = probe.port
    # The port is free again; receive() binds it in the thread before publish() starts sending.
    started = threading.Event()

    def listen():
        started.set()
        box["stats"] = receive(port, replayer=chunks.append, timeout=LOOP_TIMEOUT_S)

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    started.wait(5)
    time.sleep(0.2)  # let receive() bind before the first datagram
    ps = publish(src, port, rate=200_000, session="TEST")
    th.join(LOOP_TIMEOUT_S + 5)
    st = box["stats"]
    assert st.end_of_session and st.session == b"TEST      "
    assert ps.sent_messages == st.messages == 2000
    assert b"".join(chunks) == src and st.data is None


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


def _assert_same_replay(net, ref):
    assert _books_state(net) == _books_state(ref)
    for key in ("messages", "unknown_refs", "executions_clamped", "cancels_clamped"):
        assert net.stats[key] == ref.stats[key], key
    for name in ("trades", "tob"):
        a, b = getattr(net, name)(), getattr(ref, name)()
        assert len(a) == len(b) > 0, name
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
