"""matchcore.moldudp's publisher: its life (one run, then closed) and the sources it refuses."""
from __future__ import annotations

import dataclasses
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from cli_replay_checks import RITCH, shared

import matchcore.itch as itch
from matchcore._moldudp import frame_itch
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


def test_moldudp_publisher_source_without_one_message_refused_naming_it(tmp_path):
    # a source whose every length prefix is zero (the RITCH sample frames messages by their type
    # alone) was published as 0 messages, all its bytes counted skipped, without an error
    ritch = shared(RITCH)
    with pytest.raises(ValueError, match=r"ritch-ex20101224-zero-prefix\.itch50: no message in "
                                         r"465,048 bytes \(465,048 bytes skipped") as e:
        MoldUDP64Publisher(ritch, 9)
    assert "does not look length-prefixed" in str(e.value)
    body = itch.generate(None, messages=50, symbols=2, seed=6)
    # type-framed messages: every prefix zero, as RITCH's
    zero = b"".join(b"\x00\x00" + body[int(o) + 2:int(e)]
                    for o, e in zip(*frame_itch(body)[:2]))
    for source, name in ((zero, "the source buffer"), (tmp_path / "zero.itch", "zero.itch")):
        if isinstance(source, Path):
            source.write_bytes(zero)
        with pytest.raises(ValueError, match=f"{name}: no message in {len(zero):,} bytes") as e:
            MoldUDP64Publisher(source, 9)
        assert f"{len(zero):,} bytes skipped" in str(e.value)
        assert "does not look length-prefixed" in str(e.value)
    # a stream cut inside its first message is said to be cut short
    first = 2 + int.from_bytes(body[:2], "big")
    for cut in (1, 2, first - 1):
        with pytest.raises(ValueError, match=f"the source buffer: no message in {cut} bytes: "
                                             f"they are an incomplete first message"):
            MoldUDP64Publisher(body[:cut], 9)
    # an empty source and one with messages around skipped bytes are published as they were
    with MoldUDP64Publisher(b"", 9) as pub:
        assert (pub.stats.messages, pub.n_packets) == (0, 0)
    with MoldUDP64Publisher(b"\x00\x00" + body, 9) as pub:
        assert (pub.stats.messages, pub.stats.bytes_skipped) == (50, 2)


def test_moldudp_publisher_numpy_first_seq_near_u64_end_refused_not_wrapped():
    # first_seq=np.uint64(2**64 - 5) wrapped in the room check (uint64 arithmetic): 50 messages
    # were accepted, and sent numbered 2**64 - 5, ... then 0, 1, ...
    data = itch.generate(None, messages=50, symbols=2, seed=3)
    for first_seq in (2**64 - 5, np.uint64(2**64 - 5)):
        with pytest.raises(ValueError, match="leaves no room"):
            MoldUDP64Publisher(data, 9, first_seq=first_seq)
    with MoldUDP64Publisher(data, 9, first_seq=np.uint64(2**64 - 51)) as pub:
        assert pub.stats.next_seq == 2**64 - 51 and type(pub.first_seq) is int


def test_moldudp_publisher_message_over_max_packet_refused_in_its_terms():
    # max_packet=40 was refused as "message 2 (offset 28) is 41 bytes with its prefix; a packet
    # holds at most 20": the 20 the user never gave (max_packet less the header), no way out said
    data = itch.generate(None, messages=50, symbols=2, seed=3)
    offsets, ends = frame_itch(data)[:2]
    sizes = ends - offsets[:-1]
    first = int(np.flatnonzero(sizes + 20 > 40)[0])
    with pytest.raises(ValueError) as e:
        MoldUDP64Publisher(data, 9, max_packet=40)
    msg = str(e.value)
    assert msg.startswith(f"message {first} (offset {int(offsets[first]):,}) is "
                          f"{int(sizes[first])} bytes with its length prefix")
    assert "max_packet=40" in msg and f"at least {int(sizes.max()) + 20}" in msg
    with MoldUDP64Publisher(data, 9, max_packet=int(sizes.max()) + 20) as pub:
        assert pub.stats.messages == 50


def test_moldudp_publisher_bad_host_refused_at_construction_naming_host():
    # host=None, host=5 and host="" were taken, and failed only inside run() at the first send
    data = itch.generate(None, messages=50, symbols=2, seed=3)
    for host in (None, 5, 1.5):
        with pytest.raises(TypeError, match="host"):
            MoldUDP64Publisher(data, 9, host)
    for host in ("", b""):
        with pytest.raises(ValueError, match="host"):
            MoldUDP64Publisher(data, 9, host)
    with MoldUDP64Publisher(data, 9, "localhost") as pub:
        assert pub.addr == ("localhost", 9)


def test_moldudp_publisher_run_failed_before_sending_may_run_again(monkeypatch):
    # a run() whose first send failed (nothing sent) counted as run: the publisher refused every
    # later run() as "already run" though no receiver had seen a packet of its session
    import matchcore.moldudp as moldudp
    data = itch.generate(None, messages=400, symbols=2, seed=3)
    fail = {"sends": 1}

    class FlakySocket(socket.socket):
        def sendmsg(self, *args):
            if fail["sends"] > 0:
                fail["sends"] -= 1
                raise OSError("network is unreachable")
            return super().sendmsg(*args)

    monkeypatch.setattr(moldudp.socket, "socket", FlakySocket)
    sink = _sink()
    try:
        with MoldUDP64Publisher(data, sink.getsockname()[1], drop={0}, gap_s=0) as pub:
            fresh = dataclasses.asdict(pub.stats)
            with pytest.raises(OSError, match="unreachable"):
                pub.run()
            assert _drain(sink) == 0
            assert dataclasses.asdict(pub.stats) == fresh
            stats = dataclasses.asdict(pub.run())
            assert _drain(sink) == stats["sent_packets"] + 1 + 3
            assert stats["dropped_packets"] == [0] and len(stats["dropped"]) == 1
            assert stats["sent_packets"] == pub.n_packets - 1
        # one that sent something before failing may not run again
        fail["sends"] = 0
        calls = {"n": 0}

        class LaterFail(socket.socket):
            def sendmsg(self, *args):
                calls["n"] += 1
                if calls["n"] == 2:
                    raise OSError("network is unreachable")
                return super().sendmsg(*args)

        monkeypatch.setattr(moldudp.socket, "socket", LaterFail)
        with MoldUDP64Publisher(data, sink.getsockname()[1], gap_s=0) as pub:
            assert pub.n_packets > 2
            with pytest.raises(OSError, match="unreachable"):
                pub.run()
            assert _drain(sink) == 1
            with pytest.raises(RuntimeError, match="already run"):
                pub.run()
            assert _drain(sink) == 0
    finally:
        sink.close()


def test_moldudp_publisher_and_receiver_host_types_said_as_taken():
    # both take a host as str, bytes or bytearray (as the socket layer does), but the TypeError
    # said "host must be a str", and neither docstring nor the README said bytes were taken
    import threading

    from matchcore.moldudp import MoldUDP64Receiver, publish, receive

    data = itch.generate(None, messages=300, symbols=2, seed=3)
    for make in (lambda h: MoldUDP64Publisher(data, 9, h), lambda h: MoldUDP64Receiver(0, h)):
        with pytest.raises(TypeError) as e:
            make(5)
        assert str(e.value) == ("host must be a str, bytes or bytearray (a name or an address), "
                                "got int 5")
    for host in (b"127.0.0.1", bytearray(b"localhost")):
        with MoldUDP64Receiver(0, host) as rx:
            t = threading.Thread(target=publish, args=(data, rx.port, host))
            t.start()
            st = rx.run(timeout=10)
            t.join()
            assert st.end_of_session and bytes(rx.data) == data
    for doc in (MoldUDP64Publisher.__doc__, MoldUDP64Receiver.__doc__, publish.__doc__,
                receive.__doc__):
        assert "``host``: a name or an address, a str, bytes or bytearray" in \
            " ".join(doc.split())
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "`host` is a name or an address, a `str`, `bytes` or `bytearray`" in readme


def test_moldudp_publisher_gzip_trailing_data_refused_as_trailing_data(tmp_path):
    # junk after the gzip stream was "damaged gzip stream: Not a gzipped file (b'ga')", and
    # junk starting with the gzip magic "the file is cut short", where the replay of the same
    # file says "trailing data after the gzip stream"
    import gzip

    data = itch.generate(None, messages=400, symbols=2, seed=3)
    member = gzip.compress(data)
    src = tmp_path / "t.itch.gz"
    for junk, want in ((b"garbage!", f"{src}: trailing data after the gzip stream (at "
                                     f"compressed byte {len(member):,}"),
                       (b"\0\0\x01", f"{src}: trailing data after the gzip stream (at "
                                     f"compressed byte {len(member) + 2:,}"),
                       (b"\x1f\x8bXYZ", f"{src}: damaged gzip stream")):
        src.write_bytes(member + junk)
        with pytest.raises(ValueError) as e:
            MoldUDP64Publisher(src, 9)
        assert str(e.value).startswith(want), str(e.value)
        with pytest.raises(ValueError) as r:
            itch.replay_file(src)
        assert str(r.value).startswith(want)


def test_moldudp_publisher_strided_buffer_refused_as_the_itch_reader_refuses_it():
    # a strided memoryview raised memoryview's own words ("casts are restricted to
    # C-contiguous views"), where decode() and Replayer.feed() of the same buffer say what it
    # is and what to pass instead
    data = itch.generate(None, messages=200, symbols=2, seed=1)
    doubled = bytes(b for c in data for b in (c, 0))
    strided = memoryview(doubled)[::2]
    assert bytes(strided) == data
    with pytest.raises(ValueError) as decoded:
        itch.decode(strided)
    with pytest.raises(ValueError) as e:
        MoldUDP64Publisher(strided, port=9)
    assert str(e.value) == str(decoded.value)
    MoldUDP64Publisher(bytes(strided), port=9).close()


def test_moldudp_publisher_numpy_array_or_mmap_source_sent_as_its_bytes(tmp_path):
    # a numpy array or an mmap (bytes-like, as decode() and Replayer.feed() take them) was
    # taken for a path: "expected str, bytes or os.PathLike object, not ndarray"
    import mmap

    data = itch.generate(None, messages=300, symbols=2, seed=1)
    path = tmp_path / "day.itch"
    path.write_bytes(data)
    cut = data[:len(data) // 4 * 4]

    def sent(src):
        with MoldUDP64Publisher(src, 9) as pub:
            return pub.n_packets, pub.stats.messages, pub.stats.tail_bytes

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert sent(mm) == sent(np.frombuffer(data, np.uint8)) == sent(data)
    assert sent(np.frombuffer(cut, np.uint32)) == sent(cut)
    with pytest.raises(TypeError, match="source is a path or a bytes-like object, not int"):
        MoldUDP64Publisher(5, 9)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True, np.float64(2.0)])
def test_moldudp_publisher_bad_seed_refused_naming_seed_before_the_source_is_read(seed,
                                                                                    tmp_path):
    # numpy's own words named no setting ("expected non-negative integer", "SeedSequence
    # expects int or sequence of ints for entropy not 1.5"), and True was taken for seed 1
    path = tmp_path / "day.itch"
    path.write_bytes(itch.generate(None, messages=300, symbols=1, seed=1))
    with pytest.raises(ValueError, match=rf"^seed must be a whole number >= 0 \(or None\), "
                                         rf"got {re.escape(repr(seed))}$"):
        MoldUDP64Publisher(path, 9, drop=0.5, seed=seed)
    with pytest.raises(ValueError, match="^seed must be"):     # before the source is opened
        MoldUDP64Publisher(tmp_path / "missing.itch", 9, drop=0.5, seed=seed)
    # a whole number of any size, numpy's included, draws as before
    for good in (0, 7, np.uint64(7), 2**70):
        p = MoldUDP64Publisher(path, 9, drop=0.5, seed=good)
        want = np.random.default_rng(int(good)).random(p.n_packets) < 0.5
        assert np.array_equal(p._drop, want)
        p.close()


@pytest.mark.parametrize("host, said", [("::1", "is an IPv6 address"),
                                        (b"fe80::1%lo", "is an IPv6 address"),
                                        ("127.0.0.1:26400", "holds a ':'")])
def test_moldudp_host_ipv6_or_with_a_port_refused_at_construction_naming_it(host, said):
    # the sockets are IPv4: "::1" failed in the socket layer's words ("[Errno -9] Address
    # family for hostname not supported"), naming no argument, the publisher's only at run()
    from matchcore.moldudp import MoldUDP64Receiver, receive

    data = itch.generate(None, messages=50, symbols=1, seed=3)
    for make in (lambda: MoldUDP64Publisher(data, 9, host), lambda: MoldUDP64Receiver(0, host),
                 lambda: receive(0, host, timeout=0)):
        with pytest.raises(ValueError) as e:
            make()
        assert str(e.value).startswith(f"host {host!r} {said}") and "IPv4" in str(e.value)


def test_moldudp_publisher_port_0_refused_at_construction_naming_it(tmp_path):
    # port 0 picks a free port for a receiver; a publisher sends to it, which no datagram can
    # reach: accepted, the source mapped and framed, and run() failed with "[Errno 22] Invalid
    # argument", naming neither the port nor the setting
    from matchcore.moldudp import publish

    data = itch.generate(None, messages=50, symbols=1, seed=1)
    want = r"^port must be a whole number in 1\.\.65535 to send to, got 0 \(port 0 picks a " \
           r"free port for a receiver: send to its rx\.port\)"
    with pytest.raises(ValueError, match=want):
        MoldUDP64Publisher(data, 0)
    with pytest.raises(ValueError, match=want):
        publish(data, np.uint16(0))
    MoldUDP64Publisher(data, 1).close()


@pytest.mark.parametrize("kwargs, want", [
    ({"gap_s": 1e10}, "gap_s must be a finite number of seconds >= 0 and at most "
                      "9,223,372,036 (the longest time.sleep() takes), got 10000000000.0"),
    ({"gap_s": 10**400}, "gap_s must be a finite number of seconds >= 0 and at most "
                         "9,223,372,036 (the longest time.sleep() takes), got "
                         "10000000000000000000..."),
    ({"rate": 1e-9}, "rate=1e-09 paces the last packet of this source "),
])
def test_moldudp_publisher_wait_beyond_what_sleep_takes_refused_before_sending(kwargs, want):
    # a gap between the end packets beyond time.sleep()'s range passed the check and failed
    # in run() with a bare OverflowError after every data packet had gone out (the receivers
    # never got their end of session); a rate so slow that a packet's pacing wait was beyond
    # it, after the first packet
    data = itch.generate(None, messages=300, symbols=2, seed=3)
    sink = _sink()
    try:
        with pytest.raises(ValueError) as e:
            MoldUDP64Publisher(data, sink.getsockname()[1], **kwargs)
        assert str(e.value).startswith(want)
        assert _drain(sink) == 0
        # the longest wait time.sleep() takes is taken (nothing is run here)
        ok = {"gap_s": 9_223_372_036} if "gap_s" in kwargs else {"rate": 1e-6}
        with MoldUDP64Publisher(data, sink.getsockname()[1], **ok) as pub:
            assert pub.stats.messages == 300
    finally:
        sink.close()


def test_moldudp_publisher_close_from_another_thread_stops_its_run(tmp_path):
    # close() while run() sent from another thread released the file's map under it: the run
    # ended in "operation forbidden on released memoryview object", or close() itself raised
    # BufferError ("cannot close exported pointers exist") and left the map open. A paced run
    # also slept out its wait for the next packet (here 1,000 s) before it noticed anything.
    import threading

    import matchcore as mc

    path = tmp_path / "day.itch"
    path.write_bytes(itch.generate(None, messages=50, symbols=2, seed=5))
    sink = _sink()
    box = {}
    try:
        pub = MoldUDP64Publisher(path, sink.getsockname()[1], rate=0.001, max_messages=1)

        def run():
            try:
                box["stats"] = pub.run()
            except BaseException as exc:
                box["error"] = exc

        t = threading.Thread(target=run, daemon=True)
        t.start()
        sink.setblocking(True)
        sink.settimeout(60)
        sink.recv(65536)                # the first packet: the run waits for the second now
        # (it said "has already run: its session was sent once", while still sending it)
        with pytest.raises(mc.BusyError, match="sending its session in another thread"):
            pub.run()
        pub.close()
        t.join(60)
        assert not t.is_alive(), "run() went on after close()"
        assert "error" not in box, box
        st = box["stats"]
        assert st is pub.stats
        assert st.sent_packets == 1 and st.end_of_session == 0 and st.heartbeats == 0
        assert st.next_seq == 2
        assert pub._mm is None
        with pytest.raises(RuntimeError, match="closed"):
            pub.run()
        pub.close()
    finally:
        sink.close()
