"""matchcore.moldudp's receiver: its life (a closed receiver receives nothing more) and its
settings."""
from __future__ import annotations

import dataclasses
import gc
import os
import re
import warnings

import numpy as np
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


@pytest.mark.parametrize("first_seq", [10, np.uint64(10), np.int64(10)])
def test_moldudp_receiver_numpy_first_seq_duplicate_counted_not_implausible(first_seq):
    # a numpy uint64 first_seq was kept as such: a packet before it gave a negative distance
    # that wrapped to 2**64 - 5, so a duplicate was held as implausibly far ahead
    rx = MoldUDP64Receiver(0, first_seq=first_seq)
    try:
        rx.handle_packet(build_packet("S", 5, [b"a", b"b"]))
        rx.handle_packet(build_packet("S", 10, [b"c"]))
        rx.handle_packet(build_packet("S", 12, [b"d"]))
        rx.flush()
        st = rx.stats
        assert (st.duplicate_packets, st.implausible, st.messages, st.gaps, st.next_seq) == \
            (1, 0, 2, [(11, 11)], 13)
        assert type(st.next_seq) is int
    finally:
        rx.close()


def test_moldudp_receiver_bad_host_refused_naming_it_without_leaking_its_socket():
    # host=None or host=5 failed in bind() with "str, bytes or bytearray expected" (host not
    # named), and the socket made before was left open: only an OSError closed it
    before = len(os.listdir("/proc/self/fd"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for host in (None, 5):
            with pytest.raises(TypeError, match="host"):
                MoldUDP64Receiver(0, host)
        gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before


def test_moldudp_receiver_handle_packet_not_bytes_refused_before_counting_it():
    # a str or None was counted as a datagram (packets, and len(str) as bytes) before the
    # refusal, and an array of wider items added its item count to the bytes received
    rx = MoldUDP64Receiver(0)
    try:
        packet = build_packet("S", 1, [b"a", b"b"])
        rx.handle_packet(packet)
        before = dataclasses.replace(rx.stats)
        doubled = bytes(b for c in packet for b in (c, 0))
        for bad, words in (("abc", "handle_packet: data is bytes, not str"),
                           (None, "handle_packet: data is bytes, not NoneType"),
                           (memoryview(doubled)[::2],
                            "handle_packet: data is contiguous bytes: this memoryview is a "
                            "strided view (copy it first, e.g. bytes(data))")):
            with pytest.raises(TypeError) as e:
                rx.handle_packet(bad)
            assert str(e.value) == words
            assert rx.stats == before
        wide = np.frombuffer(build_packet("S", 3, [b"cd"]), np.uint16)
        rx.handle_packet(wide)
        assert rx.stats.packets == before.packets + 1
        assert rx.stats.bytes == before.bytes + wide.nbytes
    finally:
        rx.close()


def test_moldudp_receiver_replayer_callback_raising_keeps_the_rest_of_the_batch():
    # Replayer.feed() raises, with no count, when its callback raises; the receiver dropped
    # the rest of the bytes it had handed over, and the next flush fed the packets after them:
    # 47 messages lost mid-stream, with no gap reported
    import matchcore.itch as itch
    from matchcore.moldudp import build_framed_packet

    data = itch.generate(None, messages=5000, symbols=3, seed=2)
    msgs, p = [], 0
    while p < len(data):
        n = 2 + int.from_bytes(data[p:p + 2], "big")
        msgs.append(data[p:p + n])
        p += n
    packets = [build_framed_packet(b"S1", i + 1, len(msgs[i:i + 30]), b"".join(msgs[i:i + 30]))
               for i in range(0, len(msgs), 30)]
    whole = itch.Replayer()
    whole.finish(data[whole.feed(data):])
    calls = []

    def callback(symbol, book, ts_ns):
        calls.append(ts_ns)
        if len(calls) in (5, 9):
            raise RuntimeError("callback failed")

    r = itch.Replayer(callback=callback, callback_every=100)
    raised = 0
    with MoldUDP64Receiver(0, replayer=r) as rx:
        for k in range(0, len(packets), 8):
            for packet in packets[k:k + 8]:
                rx.handle_packet(packet)
            try:
                rx.flush()
            except RuntimeError:
                raised += 1
        while rx.unconsumed:
            rx.flush()
        assert rx.stats.gaps == [] and rx.stats.messages == 5000
        r.finish(rx.unconsumed)
    assert raised == 2
    assert r.stats == whole.stats
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in whole.books.items()}
    assert r.trades().tobytes() == whole.trades().tobytes()


@pytest.mark.parametrize("rcvbuf", [2**31, 2**40, np.int64(2**33)])
def test_moldudp_receiver_rcvbuf_beyond_a_c_int_refused_naming_it(rcvbuf):
    # setsockopt() took it for no int and said "a bytes-like object is required, not 'int'"
    # (a TypeError naming nothing), after the socket was made
    with pytest.raises(ValueError, match=rf"^rcvbuf must be a whole number of bytes in "
                                         rf"1\.\.2147483647, got {re.escape(repr(rcvbuf))}$"):
        MoldUDP64Receiver(0, rcvbuf=rcvbuf)
    rx = MoldUDP64Receiver(0, rcvbuf=2**31 - 1)      # the largest is taken (the kernel caps it)
    rx.close()


def _refused_at_both_entries(replayer, exc_type, want, timeout=0.01):
    """``MoldUDP64Receiver(0, replayer=)`` and ``receive(0, replayer=)`` both refuse
    ``replayer`` with ``exc_type`` matching ``want``, before any socket is left open."""
    from matchcore.moldudp import receive
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(exc_type, match=want):
        MoldUDP64Receiver(0, replayer=replayer)
    with pytest.raises(exc_type, match=want):
        receive(0, replayer=replayer, timeout=timeout)
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before


class _NotAFeed:
    feed = b"ITCH"                      # an attribute named feed, not a method


@pytest.mark.parametrize("replayer", [_NotAFeed(), type("Called", (), {
    "feed": None, "__call__": lambda self, buf: len(buf)})()])
def test_moldudp_receiver_replayer_feed_not_callable_refused_at_construction(replayer):
    # taken as a replayer: the first flush raised "'bytes' object is not callable" after the
    # packets were counted and their blocks taken from the receiver (lost with the error)
    want = rf"^replayer\.feed must be callable \(feed\(bytes\) -> bytes consumed\), got " \
           rf"{type(replayer.feed).__name__} "
    _refused_at_both_entries(replayer, TypeError, want)


@pytest.mark.parametrize("max_gap", [np.int64(1000), np.uint64(1000), 1000.0])
@pytest.mark.parametrize("jump", [2**63 + 5, 2**64 - 100])
def test_moldudp_receiver_max_gap_of_another_number_type_same_as_an_int(max_gap, jump):
    # max_gap was kept as given and added to sequence numbers: an int64 one raised
    # OverflowError from handle_packet beyond 2**63, a uint64 one wrapped beyond 2**64, and a
    # float one (1e6 is taken) rounded, so a real far jump was never confirmed
    def run(gap):
        rx = MoldUDP64Receiver(0, max_gap=gap)
        try:
            rx.handle_packet(build_packet("S", 1, [b"a"]))
            rx.handle_packet(build_packet("S", jump, [b"b"]))        # implausible: held
            rx.handle_packet(build_packet("S", jump + 1, [b"c"]))    # continues it
            rx.flush()
            return dataclasses.asdict(rx.stats), bytes(rx.data)
        finally:
            rx.close()
    want = run(1000)
    assert want[0]["confirmed_jumps"] == 1 and want[0]["gaps"] == [(2, jump - 1)]
    assert want[1] == b"\x00\x01a\x00\x01b\x00\x01c"
    assert run(max_gap) == want


@pytest.mark.parametrize("returned,error", [(-1, ValueError), (-5, ValueError),
                                            ("len+1", ValueError), (2.0, TypeError),
                                            (True, TypeError)])
def test_moldudp_receiver_feed_count_out_of_range_refused_bytes_kept(returned, error):
    # feed(bytes) returns the bytes it consumed: -1 kept the last byte and fed it again
    # (a message's tail handed over twice, no word), a count beyond the bytes moved the
    # stream position past them, and 2.0 failed slicing after that position had moved
    fed = []

    class Eater:
        stats = {"bytes_consumed": 0}            # where its stream stands: nothing consumed

        def feed(self, buf):
            fed.append(bytes(buf))
            return len(buf) + 1 if returned == "len+1" else returned

    pkt = build_packet("S", 1, [b"abc", b"de"])
    shown = re.escape(repr(len(pkt) - 20 + 1 if returned == "len+1" else returned))
    with MoldUDP64Receiver(0, replayer=Eater()) as rx:
        rx.handle_packet(pkt)
        with pytest.raises(error, match=rf"^replayer\.feed returned {shown}: it returns the "
                                        rf"number of bytes it consumed, a whole number in "
                                        rf"0\.\.{len(pkt) - 20}$"):
            rx.flush()
        # kept as after a feed that raised: from where the replayer's stream stands
        assert fed == [pkt[20:]] and rx.unconsumed == pkt[20:]


@pytest.mark.parametrize("when", ["before_flush", "mid_feed"])
def test_moldudp_receiver_replayer_busy_in_another_thread_keeps_the_batch(when):
    # Another thread's timed loop on one of the replayer's books: feed() raises BusyError (at
    # once, or after the messages before the callback that saw the loop start), and the
    # receiver read the position from replayer.stats, which refuses while the book is held:
    # no position, and every block of the batch it had not applied was dropped (in-sequence
    # messages lost, no gap reported, the books behind the stream for good)
    import threading
    import time

    import matchcore.itch as itch
    from matchcore import COMMAND_DTYPE, BusyError
    from matchcore._timing import process_open_loop
    from matchcore.moldudp import build_framed_packet

    data = itch.generate(None, messages=6000, symbols=2, seed=1)
    msgs, p = [], 0
    while p < len(data):
        n = 2 + int.from_bytes(data[p:p + 2], "big")
        msgs.append(data[p:p + n])
        p += n
    packets = [build_framed_packet(b"S1", i + 1, len(msgs[i:i + 100]), b"".join(msgs[i:i + 100]))
               for i in range(0, len(msgs), 100)]
    whole = itch.Replayer()
    whole.finish(data[whole.feed(data):])
    cmds = np.zeros(2, COMMAND_DTYPE)
    cmds["order_id"] = [10**15 + 1, 10**15 + 2]
    cmds["price"] = 1
    cmds["qty"] = 1
    held = []

    def hold(book):
        # the book busy (without the GIL) for 0.4 s in another thread; returns once it is
        t = threading.Thread(target=process_open_loop, args=(book, cmds),
                             kwargs={"arrivals_ns": np.array([0, 4e8])})
        t.start()
        while not book.busy:
            time.sleep(0)
        held.append((t, book))

    def callback(symbol, book, ts_ns):
        if armed and not held:
            hold(book)

    armed = False
    r = (itch.Replayer(callback=callback, callback_every=50) if when == "mid_feed"
         else itch.Replayer())
    half = len(packets) // 2
    with MoldUDP64Receiver(0, replayer=r) as rx:
        for packet in packets[:half]:
            rx.handle_packet(packet)
        rx.flush()
        for packet in packets[half:half + 5]:
            rx.handle_packet(packet)
        if when == "before_flush":
            hold(next(iter(r.books.values())))
        armed = True
        with pytest.raises(BusyError):
            rx.flush()
        t, book = held[0]
        t.join()
        assert book.cancel(10**15 + 1) == 1 and book.cancel(10**15 + 2) == 1
        assert rx.unconsumed        # the blocks feed() did not apply, kept for the next flush
        for packet in packets[half + 5:]:
            rx.handle_packet(packet)
        rx.flush()
        assert rx.stats.gaps == [] and rx.stats.messages == 6000
        r.finish(rx.unconsumed)
    assert r.stats == whole.stats
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in whole.books.items()}


def _dbn_replayer():
    from matchcore.feeds.dbn import DbnReplayer
    return DbnReplayer()


@pytest.mark.parametrize("bound", [False, True], ids=["replayer", "its_feed"])
def test_moldudp_receiver_dbn_replayer_refused_at_construction(bound):
    # a MoldUDP64 session carries ITCH 5.0 blocks: a DbnReplayer (which has a feed()) took them
    # as DBN records, and a whole session came out as bogus books, skipped bytes and a
    # nonsense clock, with no error
    r = _dbn_replayer()
    target = r.feed if bound else r
    want = r"^MoldUDP64 carries ITCH 5\.0 messages: the replayer must take ITCH " \
           r"\(matchcore\.itch\.Replayer\), not a DBN replay's DbnReplayer"
    _refused_at_both_entries(target, TypeError, want)
    assert r.stats["bytes_consumed"] == 0 and r.stats["bad_records"] == 0 and not r.finished


def _hooks(tmp_path):
    # what replay_file's on_chunk takes (a replayer), which a receiver would call with bytes
    from matchcore.io.metrics import ReplayMetrics
    from matchcore.io.replay_hooks import ReplayHooks
    yield "ReplayMetrics.update", ReplayMetrics().update
    yield "ReplayHooks.on_chunk", ReplayHooks().on_chunk
    try:
        from matchcore.io.nats import ReplayPublisher
    except ImportError:
        return
    # made without a publisher (no broker): its type is what is refused
    yield "ReplayPublisher", ReplayPublisher.__new__(ReplayPublisher)


def test_moldudp_receiver_on_chunk_hook_refused_at_construction(tmp_path):
    # an on_chunk hook given as replayer= took the first flush's bytes as a replayer: its
    # TypeError came after the packets were counted and their blocks taken, which were lost
    hooks = list(_hooks(tmp_path))
    assert len(hooks) >= 2
    for name, hook in hooks:
        want = rf"^replayer=: {re.escape(name)} is an on_chunk hook, which takes the replayer"
        _refused_at_both_entries(hook, TypeError, want)


def test_moldudp_receiver_hook_subclass_with_a_feed_taken_as_a_feed():
    # a hook's subclass that feeds the bytes to a replay of its own is a feed, as any other
    import matchcore.itch as itch
    from matchcore.io.metrics import ReplayMetrics

    class LiveMetrics(ReplayMetrics):
        def __init__(self):
            super().__init__()
            self.r = itch.Replayer()

        def feed(self, buf):
            n = self.r.feed(buf)
            self.update(self.r)
            return n

    live = LiveMetrics()
    with MoldUDP64Receiver(0, replayer=live) as rx:
        rx.handle_packet(build_packet("S", 1, [b"S" + bytes(11)]))
        rx.flush()
    assert live.r.stats["messages"] == 1 and live.snapshot()["messages"] == 1


@pytest.mark.parametrize("bound", [False, True], ids=["replayer", "its_feed"])
def test_moldudp_receiver_finished_replayer_refused_at_construction(bound):
    # a Replayer whose finish() has run takes nothing more: its refusal came at the first
    # flush, after the session's first datagrams were taken off the socket and counted (and
    # receive() waited for the publisher first, up to its timeout)
    import matchcore.itch as itch

    r = itch.Replayer()
    r.finish(b"")
    target = r.feed if bound else r
    want = r"^replayer: this Replayer is finished \(its finish\(\) has run\)"
    _refused_at_both_entries(target, ValueError, want, timeout=5)


@pytest.mark.parametrize("kwargs", [{"timeout": float("inf")}, {"idle_timeout": float("inf")},
                                    {"timeout": 1e10, "idle_timeout": 1e12},
                                    {"timeout": 10**12}])
def test_moldudp_receiver_run_time_limits_without_end_wait_for_the_session(kwargs):
    # inf (a time without end) or a limit of centuries failed in select() with a bare
    # "OverflowError: timestamp out of range for platform time_t" before any datagram was read
    import socket

    from matchcore.moldudp import end_of_session

    with MoldUDP64Receiver(0) as rx:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(build_packet("S", 1, [b"a", b"b"]), (rx.host, rx.port))
            tx.sendto(end_of_session("S", 3), (rx.host, rx.port))
        st = rx.run(**kwargs)
        assert st.end_of_session and not st.timed_out
        assert (st.messages, st.next_seq, bytes(rx.data)) == (2, 3, b"\x00\x01a\x00\x01b")


@pytest.mark.parametrize("kwargs", [{"timeout": 10**400}, {"idle_timeout": 10**400}])
def test_moldudp_receiver_run_time_limit_beyond_floats_refused_naming_it(kwargs):
    # an int past the float range failed in the deadline's sum with "int too large to convert
    # to float", naming neither the setting nor what it takes
    (name,) = kwargs
    with MoldUDP64Receiver(0) as rx:
        with pytest.raises(ValueError, match=rf"^{name} must be >= 0 seconds \(or None\), got "
                                             rf"10000000000000000000\.\.\.: beyond the float range "
                                             rf"\(inf is a time without end\)$"):
            rx.run(**kwargs)
        assert rx.stats.packets == 0 and rx.stats.elapsed_s == 0


def test_moldudp_receiver_run_idle_timeout_zero_reads_what_is_queued_then_stops():
    # (kept as the run's time limits were made to wait in steps: no wait, but the datagrams
    # already in the socket are read)
    import socket

    with MoldUDP64Receiver(0) as rx:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for seq in (1, 2, 3):
                tx.sendto(build_packet("S", seq, [b"x"]), (rx.host, rx.port))
        st = rx.run(idle_timeout=0)
        assert st.timed_out and (st.packets, st.messages, st.next_seq) == (3, 3, 4)


def _running_receiver(on_bytes=None):
    """A receiver whose run() goes on in a daemon thread (no time limit), returned once it has
    fed a first datagram: run() is then certainly under way. ``on_bytes(rx, data)`` is called
    with each feed, inside run()."""
    import socket
    import threading

    got = threading.Event()
    box = {}

    def feed(data):
        if on_bytes is not None:
            on_bytes(rx, data)
        got.set()

    rx = MoldUDP64Receiver(0, replayer=feed)

    def run():
        try:
            box["stats"] = rx.run()
        except BaseException as exc:
            box["error"] = exc

    # daemon: a run() that close() does not end must not keep the test process alive
    t = threading.Thread(target=run, daemon=True)
    t.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        while not got.is_set():
            assert t.is_alive(), box
            tx.sendto(build_packet("S", 1, [b"a"]), ("127.0.0.1", rx.port))
            got.wait(0.05)
    return rx, t, box


def test_moldudp_receiver_close_from_another_thread_ends_its_run():
    # A run() in another thread (the README's receiver pattern) kept waiting in select() on the
    # closed socket: without a time limit for ever (the thread, and the process, never ended),
    # with one until it ran out, then ended in a bare "[Errno 9] Bad file descriptor".
    rx, t, box = _running_receiver()
    rx.close()
    t.join(60)
    assert not t.is_alive(), "run() went on after close()"
    assert "error" not in box, box
    assert box["stats"] is rx.stats and not rx.stats.timed_out
    assert rx.stats.messages == 1
    assert rx.sock.fileno() == -1
    with pytest.raises(RuntimeError, match="closed"):
        rx.run(timeout=0.01)
    rx.close()


def test_moldudp_receiver_close_from_inside_its_run_ends_it():
    # a feed that closes the receiver (a replayer hook stopping the session): the run went on
    # to select() on the closed socket, "file descriptor cannot be a negative integer (-1)"
    rx, t, box = _running_receiver(on_bytes=lambda rx, data: rx.close())
    t.join(60)
    assert not t.is_alive(), "run() went on after close()"
    assert "error" not in box, box
    assert box["stats"] is rx.stats and not rx.stats.timed_out
    assert rx.sock.fileno() == -1


def test_moldudp_receiver_second_run_while_one_runs_refused_busy():
    # two run() loops at once took datagrams off one socket and moved one sequence state from
    # two threads; the second is refused and changes nothing
    import matchcore as mc

    rx, t, box = _running_receiver()
    # (the running loop may still count copies of the first datagram: a run of its own would
    # have timed out, adding its time)
    with pytest.raises(mc.BusyError, match=r"run\(\) is running .* in another thread"):
        rx.run(timeout=0)
    assert not rx.stats.timed_out and rx.stats.elapsed_s == 0
    rx.close()
    t.join(60)
    assert not t.is_alive() and "error" not in box, box


def test_moldudp_receiver_close_from_a_signal_handler_ends_its_run():
    # A graceful-shutdown handler (SIGTERM, here SIGUSR1) closing the receiver while run()
    # waited in select() in the same thread: the select, retried after the handler, was given
    # the closed descriptors and the run ended in "[Errno 9] Bad file descriptor".
    import signal
    import socket
    import threading

    got = threading.Event()
    done = threading.Event()
    main = threading.get_ident()
    rx = MoldUDP64Receiver(0, replayer=lambda data: got.set())

    def poke():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            while not got.wait(0.05):
                tx.sendto(build_packet("S", 1, [b"a"]), ("127.0.0.1", rx.port))
        # once the run has fed a datagram it is in its loop. Sent to the running thread itself
        # (another thread may take one sent to the process), and again until the run ends: one
        # that lands as select() is entered is handled only once the select returns.
        while not done.is_set():
            signal.pthread_kill(main, signal.SIGUSR1)
            done.wait(0.05)

    old = signal.signal(signal.SIGUSR1, lambda *a: rx.close())
    t = threading.Thread(target=poke, daemon=True)
    try:
        t.start()
        stats = rx.run(timeout=120)
    finally:
        done.set()
        t.join(60)
        signal.signal(signal.SIGUSR1, old)
        rx.close()
    # ended by the close, not by waiting out its 120 s
    assert not stats.timed_out and stats.elapsed_s < 60 and stats.messages == 1
    assert rx.sock.fileno() == -1
