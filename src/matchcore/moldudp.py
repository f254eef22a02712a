"""MoldUDP64: ITCH over UDP the way NASDAQ sends it, a gap-detecting receiver and a file publisher.

A downstream packet (all integers big-endian)::

    offset  size  field
    0       10    session          ASCII, space padded
    10      8     sequence number  u64, sequence number of the first message in the packet
    18      2     message count    u16; 0 = heartbeat, 0xFFFF = end of session (both carry the
                                   next expected sequence number)
    20      ...   message blocks   each a u16 length then that many bytes of message

The message blocks are exactly the framing of a standard ITCH file (2-byte big-endian length
before each message), so a packet's blocks are one contiguous slice of the file: the publisher
sends file slices without touching messages, and the receiver hands each packet's blocks, as
they are, to the same replay loop that reads files (``matchcore.itch.Replayer.feed``).

Sequence numbers count messages, starting at 1 for a session. The receiver tracks the next
expected number: a packet beyond it reveals a gap ``[expected, seq - 1]`` (recorded and counted,
never silently skipped; the messages after the gap are still fed); a packet wholly before it is a
duplicate (counted, ignored); a packet overlapping it has its already-seen head skipped. There is
no retransmission request: the gap is reported and the stream goes on. MoldUDP64 has no checksum,
so a packet more than ``max_gap`` messages ahead is held until a later packet confirms the jump
(see :class:`MoldUDP64Receiver`): a corrupted sequence number cannot lose the rest of the session.
"""
from __future__ import annotations

import contextlib
import io
import mmap
import numbers
import os
import select
import socket
import stat
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from matchcore._args import check_callable
from matchcore._core import BusyError
from matchcore._gzip import Inflater
from matchcore._cliutil import refuse_unusable_name
from matchcore._magic import (GZIP_MAGIC, TEXT_LOOK, refuse_foreign, refuse_foreign_buffer,
                              zstd_frame_start)
from matchcore._moldudp import (
    FRAMES_OK,  # noqa: F401  (frame_offsets() status of a whole stream, re-exported)
    FRAMES_TRUNCATED,  # noqa: F401  (re-exported, as FRAMES_OK)
    FRAMES_ZERO_LENGTH,  # noqa: F401  (re-exported, as FRAMES_OK)
    block_end,
    frame_itch,
    frame_offsets,  # noqa: F401  (re-exported, as FRAMES_OK)
    plan_packets,
)
from matchcore._nocopy import NoCopy

HEADER = struct.Struct(">10sQH")
HEADER_SIZE = HEADER.size  # 20
HEARTBEAT = 0
END_OF_SESSION = 0xFFFF
MAX_MESSAGES = 0xFFFE  # 0 and 0xFFFF are reserved for heartbeat and end of session
DEFAULT_SESSION = b"MATCHCORE1"
MAX_DATAGRAM = 65507  # largest UDP payload over IPv4
# a receiver holds a sequence jump larger than this until a second packet agrees (the
# reasons for this size: MoldUDP64Receiver's docstring)
DEFAULT_MAX_GAP = 1_000_000
MAX_HELD = 4  # implausible packets held at once, each waiting for a packet that continues it
_MAX_WAIT_S = 3600.0  # the longest single select() of a receiver's run (see run)
_CLOSE_POLL_S = 0.05  # the longest a publisher's paced run sleeps before it looks for a close()
_MAX_SLEEP_S = 9_223_372_036  # seconds: the longest time.sleep() takes (int64 nanoseconds)


class MoldUDP64Error(ValueError):
    """A byte string that is not a well-formed MoldUDP64 downstream packet."""


@dataclass(frozen=True)
class Packet:
    """A parsed downstream packet. ``blocks`` is the memoryview of its message blocks (ITCH
    framing kept); ``count`` is 0 for a heartbeat and 0xFFFF for end of session."""

    session: bytes
    seq: int
    count: int
    blocks: memoryview

    @property
    def is_heartbeat(self) -> bool:
        return self.count == HEARTBEAT

    @property
    def is_end_of_session(self) -> bool:
        return self.count == END_OF_SESSION

    def messages(self) -> list[bytes]:
        """The messages without their length prefixes (a Python list: for inspection, not for
        the hot path). O(count)."""
        out, pos, b = [], 0, self.blocks
        if self.count in (HEARTBEAT, END_OF_SESSION):
            return out
        for _ in range(self.count):
            n = (b[pos] << 8) | b[pos + 1]
            out.append(bytes(b[pos + 2:pos + 2 + n]))
            pos += 2 + n
        return out

    def __reduce__(self):
        # a memoryview does not pickle (nor deep-copy): the copy holds a view of its own bytes
        return (_packet, (self.session, self.seq, self.count, self.blocks.tobytes()))


def _packet(session, seq, count, blocks) -> Packet:
    return Packet(session, seq, count, memoryview(blocks))


def _session(session, *, sending: bool = False) -> bytes:
    # Any 10 bytes to build a packet with or to filter on (a feed's own name is not judged);
    # sending=True for a publisher's name: what a receiver adopts (printable ASCII), so that
    # it never sends a session its receivers would take for a damaged header.
    if isinstance(session, str):
        try:
            s = session.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"a MoldUDP64 session is ASCII, got {session!r}") from None
    elif isinstance(session, (bytes, bytearray, memoryview)):
        s = bytes(session)
    else:
        # (bytes(5) would be five NUL bytes)
        raise TypeError(f"a MoldUDP64 session is a str or bytes, got {type(session).__name__}")
    if len(s) > 10:
        raise ValueError(f"a MoldUDP64 session is at most 10 bytes, got {s!r}")
    if sending and not _plausible_session(s):
        raise ValueError(f"a published MoldUDP64 session is printable ASCII (0x20-0x7E), "
                         f"got {s!r}")
    return s.ljust(10, b" ")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value) -> bool:
    # a number of seconds or messages/s: True was taken as 1, and a str failed in the
    # comparison, naming neither the setting nor the rule
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_port(port) -> None:
    # found at construction: the receiver's bind() raised OverflowError (no ValueError) and the
    # publisher's sendmsg() failed only once the stream was planned
    if not _is_int(port) or not 0 <= port <= 65535:
        raise ValueError(f"port must be a whole number in 0..65535, got {port!r}")


def _check_host(host) -> None:
    # found at construction, without a name lookup: the socket layer failed in its own words
    # ("str, bytes or bytearray expected"), not naming host (a str, or bytes as it takes them)
    if not isinstance(host, (str, bytes, bytearray)):
        raise TypeError(f"host must be a str, bytes or bytearray (a name or an address), got "
                        f"{type(host).__name__} {host!r}")
    text = host if isinstance(host, str) else bytes(host).decode("ascii", "replace")
    if ":" in text:
        # the sockets are IPv4 (AF_INET), and no name or IPv4 address holds a ':': an IPv6
        # address, or a port written into the host, failed in the socket layer's words
        # ("Address family for hostname not supported"), the publisher's only at run()
        import ipaddress

        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise ValueError(f"host {host!r} holds a ':': give a name or an IPv4 address, and "
                             f"the port as port=") from None
        raise ValueError(f"host {host!r} is an IPv6 address: MoldUDP64 is sent and received "
                         f"over IPv4 here (give a name or an IPv4 address)")


def _seq(seq) -> int:
    # the header's u64: struct.error ("int too large to convert", of -1 too) is no ValueError
    if not _is_int(seq) or not 0 <= seq < 2**64:
        raise ValueError(f"a MoldUDP64 sequence number is a whole number in [0, 2**64), got "
                         f"{seq!r}")
    return int(seq)


def _plausible_session(session: bytes) -> bool:
    # session names are ASCII (alphanumeric, space padded): printable bytes 0x20..0x7E
    return all(0x20 <= b <= 0x7E for b in session)


def parse_packet(data) -> Packet:
    """Parse one downstream packet; raises :class:`MoldUDP64Error` when it is malformed (shorter
    than the 20-byte header, blocks that do not fit, bytes after the last block, payload in a
    heartbeat / end-of-session packet, or messages whose next sequence number would not stay
    below 2**64). A zero-length block is an empty message (MoldUDP64 messages are 0 to 64 KB
    long). O(count) in compiled code; the blocks are not copied.

    >>> p = parse_packet(build_packet(b"S1", 5, [b"hello"]))
    >>> (p.seq, p.count, p.messages())
    (5, 1, [b'hello'])
    """
    view = _packet_view(data)
    if len(view) < HEADER_SIZE:
        raise MoldUDP64Error(f"packet of {len(view)} bytes is shorter than the 20-byte header")
    session, seq, count = HEADER.unpack_from(view)
    if count in (HEARTBEAT, END_OF_SESSION):
        if len(view) != HEADER_SIZE:
            kind = "heartbeat" if count == HEARTBEAT else "end-of-session"
            raise MoldUDP64Error(f"{kind} packet carries {len(view) - HEADER_SIZE} payload bytes")
        return Packet(session, seq, count, view[HEADER_SIZE:])
    end = block_end(view, HEADER_SIZE, count)
    if end < 0:
        raise MoldUDP64Error(f"packet seq {seq}: {count} message blocks do not fit in "
                             f"{len(view) - HEADER_SIZE} payload bytes")
    if end != len(view):
        raise MoldUDP64Error(f"packet seq {seq}: {len(view) - end} bytes after the last of "
                             f"{count} message blocks")
    if seq + count >= 2**64:
        raise MoldUDP64Error(_past_last(seq, count))
    return Packet(session, seq, count, view[HEADER_SIZE:])


def _packet_view(data, who: str = "parse_packet") -> memoryview:
    # memoryview's own words ("a bytes-like object is required, not 'str'", "casts are
    # restricted to C-contiguous views") named neither the packet nor what to do
    if isinstance(data, str):
        raise TypeError(f"{who}: data is bytes, not str")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"{who}: data is bytes, not {type(data).__name__}") from None
    if not view.c_contiguous:
        raise TypeError(f"{who}: data is contiguous bytes: this {type(data).__name__} is a "
                        f"strided view (copy it first, e.g. bytes(data))")
    return view.cast("B")


def _past_last(seq: int, count: int) -> str:
    # the rule of the publisher's first_seq: a heartbeat or end of session carries the next
    # sequence number, a u64
    return (f"packet seq {seq}: its {count} messages make the next sequence number "
            f"{seq + count}, which must stay below 2**64 (a heartbeat carries it in a u64)")


def build_packet(session, seq: int, messages) -> bytes:
    """Build a downstream packet from a list of messages (each gets its 2-byte length; a
    message is 0 to 65535 bytes, an empty one included, as MoldUDP64 allows).

    O(total bytes).

    >>> len(build_packet("S1", 1, [b"ab", b"c"]))
    27
    """
    if isinstance(messages, (str, bytes, bytearray, memoryview)):
        # iterated, b"ab" was the numbers 97 and 98: two messages of that many NUL bytes
        raise TypeError(f"messages is a list of messages, got one {type(messages).__name__} "
                        f"(build_packet(session, seq, [message]) sends one message)")
    msgs = [_message(m) for m in messages]
    if not msgs:
        raise ValueError("a data packet needs at least one message (use heartbeat())")
    if len(msgs) > MAX_MESSAGES:
        raise ValueError(f"at most {MAX_MESSAGES} messages per packet, got {len(msgs)}")
    for m in msgs:
        if len(m) > 0xFFFF:
            raise ValueError(f"a message is 0..65535 bytes, got {len(m)}")
    seq = _seq(seq)
    if seq + len(msgs) >= 2**64:
        raise ValueError(_past_last(seq, len(msgs)))
    body = b"".join(struct.pack(">H", len(m)) + m for m in msgs)
    return HEADER.pack(_session(session), seq, len(msgs)) + body


def _message(m) -> bytes:
    # bytes(5) is five NUL bytes: a number is no message
    if isinstance(m, (str, numbers.Integral)):
        raise TypeError(f"a message is bytes, got {type(m).__name__} {m!r}")
    return bytes(m)


def build_framed_packet(session, seq: int, count: int, blocks) -> bytes:
    """A downstream packet from ``count`` already framed blocks (a slice of an ITCH file):
    ``ValueError`` when ``count`` is not a whole number in 1..65534 or the blocks are not
    exactly ``count`` blocks (a packet every receiver would drop as malformed). O(count)."""
    if not _is_int(count) or not 0 < count <= MAX_MESSAGES:
        raise ValueError(f"count must be 1..{MAX_MESSAGES}, got {count!r}")
    if isinstance(blocks, numbers.Integral):
        raise TypeError(f"blocks are bytes (message blocks, each a 2-byte length and its "
                        f"message), got {type(blocks).__name__} {blocks!r}")
    blocks = bytes(blocks)
    if block_end(blocks, 0, count) != len(blocks):
        raise ValueError(f"the {len(blocks)} bytes of blocks do not hold exactly {count} "
                         f"message blocks")
    seq, count = _seq(seq), int(count)      # (numpy integers: uint64 arithmetic wraps)
    if seq + count >= 2**64:
        raise ValueError(_past_last(seq, count))
    return HEADER.pack(_session(session), seq, count) + blocks


def heartbeat(session, next_seq: int) -> bytes:
    """A heartbeat packet: no messages, the next sequence number the server will send."""
    return HEADER.pack(_session(session), _seq(next_seq), HEARTBEAT)


def end_of_session(session, next_seq: int) -> bytes:
    """An end-of-session packet (message count 0xFFFF) carrying the next sequence number."""
    return HEADER.pack(_session(session), _seq(next_seq), END_OF_SESSION)


# ------------------------------------------------------------------------------------------------
# receiver
# ------------------------------------------------------------------------------------------------

@dataclass
class ReceiverStats:
    """What a :class:`MoldUDP64Receiver` saw. ``gaps`` holds every missing range as
    ``(first_seq, last_seq)`` inclusive, in the order detected; ``missing`` is their total.
    ``implausible`` counts the packets whose sequence number jumped more than ``max_gap`` ahead
    of the expected one (held, not fed by themselves; with ``first_seq=None``, also first packets
    that later ones showed to be off: those still held when the run ends, with nothing to compare
    them with, are in no counter); ``confirmed_jumps`` how many of those a later packet confirmed
    (their gap is in ``gaps``). ``malformed`` counts the packets that do not parse and, while no
    session is adopted, those whose session name is not printable ASCII."""

    session: bytes | None = None
    next_seq: int | None = None
    packets: int = 0
    bytes: int = 0
    data_packets: int = 0
    messages: int = 0
    heartbeats: int = 0
    end_of_session: bool = False
    duplicate_packets: int = 0
    duplicate_messages: int = 0
    malformed: int = 0
    last_malformed: str = ""
    other_session: int = 0
    stale_heartbeats: int = 0
    implausible: int = 0
    confirmed_jumps: int = 0
    gaps: list = field(default_factory=list)
    missing: int = 0
    feeds: int = 0
    timed_out: bool = False
    elapsed_s: float = 0.0
    data: bytes | None = None  # the received stream, filled by receive() without a replayer
    # filled by receive() with a replayer: the bytes it kept back (MoldUDP64Receiver.unconsumed),
    # for its finish()
    unconsumed: bytes = b""

    def summary(self) -> str:
        gaps = ", ".join(f"[{a}, {b}]" for a, b in self.gaps[:10])
        more = f" (+{len(self.gaps) - 10} more)" if len(self.gaps) > 10 else ""
        end = "end of session" if self.end_of_session else ("timed out" if self.timed_out else "open")
        from matchcore.bench.report import _count as _n

        # (singular for 1: an end-of-session heartbeat alone read "1 heartbeats")
        return (f"MoldUDP64 session {self.session!r}: {_n(self.messages, 'message')} in "
                f"{_n(self.data_packets, 'packet')}, {_n(self.heartbeats, 'heartbeat')}, {end}; "
                f"{_n(len(self.gaps), 'gap')}, {_n(self.missing, 'message')} missing"
                f"{': ' + gaps if gaps else ''}{more}; "
                f"{_n(self.duplicate_packets, 'duplicate packet')}, {self.malformed} malformed, "
                f"{self.implausible} implausible ({_n(self.confirmed_jumps, 'confirmed jump')}), "
                f"{self.other_session} from another session; next seq {self.next_seq}")



class MoldUDP64Receiver(NoCopy):
    """Receive MoldUDP64 on a UDP socket and feed the messages, in sequence, to a replay loop.

    ``replayer``: an object with ``feed(bytes) -> bytes consumed`` (``matchcore.itch.Replayer``),
    or any callable taking the bytes, or None to collect the stream in :attr:`data` (a standard
    ITCH byte stream, 2-byte length before each message). A DBN replay's ``DbnReplayer`` (or its
    ``feed``) raises TypeError: the blocks are ITCH; so does an on_chunk hook of the library
    (``ReplayMetrics.update``, a ``ReplayPublisher``), which takes the replayer, not the bytes.
    A Replayer whose ``finish()`` has run (or its ``feed``) raises ValueError: it takes no
    more bytes.
    Consecutive packets waiting in the
    socket are fed in one call (up to ``batch`` packets), so under load there is one Python call
    per batch, and one per packet when the feed is idle. Bytes a ``feed`` does not consume are
    kept and passed again, first, on the next call, also when a Replayer's ``feed`` raises
    because its callback raised (the bytes after its ``stats["bytes_consumed"]``). A count
    that is no whole number in 0..len(bytes) raises from :meth:`flush` (TypeError, ValueError),
    the bytes kept as after a ``feed`` that raised.

    ``first_seq``: the sequence number the session starts at (1); a first packet above it is a
    gap. ``None`` joins a running session at whatever arrives first. ``session``: accept only this
    session (default: the first one seen whose name is printable ASCII, bytes 0x20..0x7E; a
    packet with another name before that is counted in ``stats.malformed`` and dropped, never
    adopted); packets of other sessions are counted and ignored.
    ``on_gap(first, last)`` is called for every gap as it is detected, once the packet that
    revealed it is applied (one that raises leaves the receiver's state whole).

    ``max_gap`` (messages, default 1,000,000): MoldUDP64 carries no checksum, so a corrupted
    sequence number would otherwise open a huge gap, move the expected number far ahead and turn
    every later packet into a duplicate. A packet more than ``max_gap`` ahead of the expected
    number is not trusted by itself: it is counted in ``stats.implausible`` and held, and the
    expected number stays. When a later packet continues it (its sequence number is at most
    ``max_gap`` past the held packet's end), the jump is real: its gap is recorded, the held
    messages are fed, then the new packet (``stats.confirmed_jumps``); other held packets within
    ``max_gap`` of the two (one that arrived out of order, a copy) are fed with them, in sequence
    order, not reported as missing. When the expected stream
    goes on instead, the held packet is dropped (its messages show as a gap once the next packet
    arrives, as for a lost one). An end of session still ends the run, but an implausible next
    number in it is not recorded as a gap. With ``first_seq=None`` the first packet is held the
    same way until a second continues it. ``max_gap=None``: trust every sequence number.
    Why 1,000,000 by default: one flipped bit among the upper 44 of a sequence number moves it by
    2**20 (1,048,576) or more, so that is caught; 1,000,000 ITCH messages fill about 23,000
    1400-byte packets, far more than an ordinary burst of loss (a fraction of a second only at
    the busiest peaks); and a real outage longer than that costs one packet's delay, not data,
    because a held packet is fed once confirmed. Smaller corruptions look like ordinary gaps.

    Binds ``host:port`` (port 0 picks a free port, see :attr:`port`). ``host``: a name or an
    address, a str, bytes or bytearray (as the socket layer takes it; another type raises
    TypeError); ``""`` binds every interface. The socket is IPv4: an IPv6 address, or a host
    holding a port, raises ValueError.

    >>> with MoldUDP64Receiver(0) as rx:  # doctest: +SKIP
    ...     stats = rx.run(timeout=10)
    """

    _no_copy = ("it holds a bound UDP socket and the session's sequence state",
                "Make a new receiver in the other process (rx.stats is a picklable dataclass)")

    def __init__(self, port: int = 0, host: str | bytes | bytearray = "127.0.0.1", replayer=None,
                 *, first_seq: int | None = 1, session=None, on_gap=None, batch: int = 64,
                 rcvbuf: int = 8 << 20, max_gap: int | None = DEFAULT_MAX_GAP):
        from matchcore.feeds._dbn import DbnReplayer

        # a DbnReplayer has a feed() too, and read the session's ITCH blocks as DBN records:
        # bogus books and skipped bytes, never an error (also given as its bound feed)
        if isinstance(replayer, DbnReplayer) or isinstance(getattr(replayer, "__self__", None),
                                                           DbnReplayer):
            raise TypeError("MoldUDP64 carries ITCH 5.0 messages: the replayer must take ITCH "
                            "(matchcore.itch.Replayer), not a DBN replay's DbnReplayer")
        # (one with a feed() of its own, a subclass bridging bytes to a replay, is a feed)
        hook = None if hasattr(replayer, "feed") else _on_chunk_hook(replayer)
        if hook is not None:
            # called with the first flush's bytes it raised TypeError, after the packets were
            # counted and their blocks taken: they were lost with the error
            raise TypeError(f"replayer=: {hook} is an on_chunk hook, which takes the replayer "
                            f"(itch.replay_file calls it after each chunk), not the bytes a "
                            f"receiver feeds: give a matchcore.itch.Replayer here and call the "
                            f"hook with it after rx.run() returns")
        # a Replayer whose finish() has run (or its feed) refuses every feed: found at the first
        # flush, after the session's first datagrams were taken off the socket and counted
        owner = replayer if hasattr(replayer, "feed") else getattr(replayer, "__self__", None)
        try:
            finished = owner is not None and getattr(owner, "finished", False) is True
        except Exception:
            finished = False
        if finished:
            raise ValueError(f"replayer: this {type(owner).__name__} is finished (its finish() "
                             f"has run): it takes no more bytes; give a new one")
        if replayer is None:
            self.data = bytearray()
            self._feed = self._collect
            self._returns_consumed = True
        elif hasattr(replayer, "feed"):
            # an attribute named feed that is no method was taken, and the first flush raised
            # "object is not callable" after the packets' blocks had been taken (and lost);
            # refused whether or not the object itself is callable: which it meant is unknown
            if not callable(replayer.feed):
                raise TypeError(f"replayer.feed must be callable (feed(bytes) -> bytes "
                                f"consumed), got {type(replayer.feed).__name__} "
                                f"{replayer.feed!r:.80}")
            self._feed = replayer.feed
            self._returns_consumed = True
        elif callable(replayer):
            self._feed = replayer
            self._returns_consumed = False
        else:
            raise TypeError("replayer must have a feed(bytes) method, be callable, or be None")
        check_callable(on_gap, "on_gap", "first, last")
        if not _is_int(batch) or batch <= 0:
            raise ValueError(f"batch must be a whole number > 0, got {batch!r}")
        _check_port(port)
        _check_host(host)
        # setsockopt() takes a C int: a larger one was "a bytes-like object is required"
        if not _is_int(rcvbuf) or not 0 < rcvbuf <= 2**31 - 1:
            raise ValueError(f"rcvbuf must be a whole number of bytes in 1..2147483647, got "
                             f"{rcvbuf!r}")
        # (not max_gap >= 0: a NaN compares false with every distance, so each packet would be
        # held as implausible and none fed)
        # a count of messages: a whole float such as 1e6 is one, 1.5 or "10" is not
        if max_gap is not None and not ((_is_int(max_gap) or (
                isinstance(max_gap, float) and max_gap.is_integer())) and max_gap >= 0):
            raise ValueError(f"max_gap must be a whole number >= 0 of messages (or None), "
                             f"got {max_gap!r}")
        if first_seq is not None and (not _is_int(first_seq) or not 1 <= first_seq < 2**64):
            # sequence numbers are u64 on the wire and start at 1 (as the publisher's): a
            # first_seq of 0 or below would open a gap that no packet can be in
            raise ValueError(f"first_seq must be a whole number in [1, 2**64) (sequence numbers "
                             f"start at 1), or None, got {first_seq!r}")
        self.replayer = replayer
        # where the replayer's stream stands (its stats["bytes_consumed"], counted from the
        # start of its stream), moved on by every feed's count: tells how far a feed that
        # raised got (see flush)
        self._fed = _bytes_consumed(replayer) or 0
        # a Python int: a numpy uint64 wrapped the distance of a packet before it (a duplicate
        # held as implausibly far ahead)
        self.stats = ReceiverStats(next_seq=None if first_seq is None else int(first_seq))
        self._session = _session(session) if session is not None else None
        self.stats.session = self._session
        self.on_gap = on_gap
        self._due: list[tuple[int, int]] = []  # gaps of the packet in hand, for on_gap
        # a Python int: max_gap is added to sequence numbers (u64), where a numpy int64 raised
        # OverflowError beyond 2**63, a uint64 wrapped beyond 2**64, and a float (1e6 is taken)
        # rounded, so that a real far jump was never confirmed
        self.max_gap = None if max_gap is None else int(max_gap)
        self._held: list[tuple[int, int, bytes]] = []  # (seq, count, blocks) awaiting confirmation
        self._batch = batch
        self._pending = bytearray()
        self._out = bytearray()
        self._buf = bytearray(MAX_DATAGRAM)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.bind((host, port))
            # close() from another thread wakes a run() waiting in select() through this pair:
            # closing the socket alone does not, and the run waited on for ever (or until its
            # time limit, then ended in "Bad file descriptor")
            self._wake_r, self._wake_w = socket.socketpair()
        except BaseException:
            # any failure, not only an OSError: the socket stayed open
            self.sock.close()
            raise
        self._wake_w.setblocking(False)
        self._closing = False
        # held by run() for its whole loop: close() from another thread waits on it, so the
        # socket is closed only once the run has stopped using it (reentrant: a signal
        # handler's close() in the running thread must not wait on its own run)
        self._running = threading.RLock()
        self._run_thread = None
        self.host, self.port = self.sock.getsockname()[:2]

    def _collect(self, buf) -> int:
        self.data += buf
        return len(buf)

    # ---- sequence logic, one datagram at a time ----

    def handle_packet(self, data) -> None:
        """Apply one datagram's sequence logic; its in-sequence blocks join the pending output
        (fed by :meth:`flush`, which :meth:`run` calls). Usable without a socket, e.g. on packets
        read from a capture. Never raises for malformed input: it is counted in ``stats``.
        ``on_gap`` is called for the packet's gaps once it is wholly applied: a callback that
        raises leaves the receiver's state whole."""
        try:
            self._handle_packet(data)
        finally:
            # the gaps of this packet, called once its state is whole: a callback that raised
            # mid-packet left the gap counted but the packet unapplied, and the next packet
            # reported the same gap again
            due = self._due
            if due:
                self._due = []
        for first, last in due:
            self.on_gap(first, last)

    def _handle_packet(self, data) -> None:
        # what is no packet of bytes is refused before it is counted (a str or None was
        # counted as a datagram, and an array of wider items added its item count as bytes)
        data = _packet_view(data, "handle_packet")
        st = self.stats
        st.packets += 1
        st.bytes += len(data)
        try:
            pkt = parse_packet(data)
        except MoldUDP64Error as e:
            st.malformed += 1
            st.last_malformed = str(e)
            return
        if self._session is None:
            if not _plausible_session(pkt.session):
                # no checksum: a corrupted first header would become the session, and every
                # later packet of the real one would count as another session's
                st.malformed += 1
                st.last_malformed = (f"packet seq {pkt.seq}: session {pkt.session!r} is not "
                                     f"printable ASCII (not adopted)")
                return
            self._session = st.session = pkt.session
        elif pkt.session != self._session:
            st.other_session += 1
            return
        count = pkt.count
        if count == HEARTBEAT:
            st.heartbeats += 1
        elif count == END_OF_SESSION:
            st.end_of_session = True
            count = 0
        else:
            st.data_packets += 1
        if self.max_gap is not None and not self._screen(pkt, count, self.max_gap):
            return
        self._apply(pkt.seq, count, pkt.blocks)

    def _screen(self, pkt: Packet, count: int, max_gap: int) -> bool:
        """Whether a packet's sequence number can be applied now (``count`` 0: it only carries the
        next number). A number more than ``max_gap`` ahead of the expected one is held instead,
        until a later packet continues it (then both are applied here, in sequence order with
        the held packets near them, and False returned) or the expected stream goes on without it
        (then it is dropped)."""
        st, held, seq = self.stats, self._held, pkt.seq
        if st.next_seq is not None and seq - st.next_seq <= max_gap:
            if held and (seq + count > st.next_seq if count else seq >= st.next_seq):
                held.clear()  # the expected stream goes on: the held jumps were not real
            return True
        for hseq, hcount, hblocks in held:
            if hseq + hcount <= seq <= hseq + hcount + max_gap:
                # a second packet agrees with the held one: the jump is real. The held packets
                # within max_gap of the two are part of it too (one that arrived out of order,
                # a copy): fed with this one in sequence order, not reported as a gap.
                near = [h for h in held if hseq - max_gap <= h[0] <= seq + max_gap]
                near.append((seq, count, bytes(pkt.blocks)))
                near.sort(key=lambda h: (h[0], h[1]))
                if st.next_seq is None:
                    st.implausible += len(held) - (len(near) - 1)
                else:
                    st.confirmed_jumps += 1
                held.clear()
                for h in near:
                    self._apply(*h)
                return False
        if st.next_seq is None:
            if pkt.count == END_OF_SESSION:  # joining at the end: nothing to compare it with
                st.implausible += len(held)
                held.clear()
                return True
        else:
            st.implausible += 1
            if pkt.count == END_OF_SESSION:  # the session is over whatever its next number
                held.clear()
                return False
        held.append((seq, count, bytes(pkt.blocks)))
        if len(held) > MAX_HELD:
            del held[0]
            if st.next_seq is None:
                st.implausible += 1
        return False

    def _apply(self, seq: int, count: int, blocks) -> None:
        """Move the expected sequence number on with a packet of ``count`` messages at ``seq``
        (0: a heartbeat or end of session carrying the next number): record the gap before it,
        skip what was already seen, queue the new blocks."""
        st = self.stats
        if st.next_seq is None:
            st.next_seq = seq
        if count == 0:
            if seq > st.next_seq:
                self._gap(st.next_seq, seq - 1)
                st.next_seq = seq
            elif seq < st.next_seq:
                st.stale_heartbeats += 1
            return
        end_seq = seq + count
        if end_seq <= st.next_seq:
            st.duplicate_packets += 1
            st.duplicate_messages += count
            return
        if seq > st.next_seq:
            self._gap(st.next_seq, seq - 1)
        elif seq < st.next_seq:
            skip = st.next_seq - seq
            st.duplicate_messages += skip
            blocks = blocks[block_end(blocks, 0, skip):]
        st.messages += end_seq - max(seq, st.next_seq)
        st.next_seq = end_seq
        self._out += blocks

    def _gap(self, first: int, last: int) -> None:
        self.stats.gaps.append((first, last))
        self.stats.missing += last - first + 1
        if self.on_gap is not None:
            self._due.append((first, last))

    def flush(self) -> None:
        """Feed the pending in-sequence blocks to the replayer (one call)."""
        if not self._out:
            return
        if self._returns_consumed and getattr(self.replayer, "done", False) is True:
            # a Replayer past its stop time (until_ns) consumes nothing more: the blocks join
            # the unconsumed bytes, not handed over again with every byte kept before them
            self._pending += self._out
            self._out.clear()
            return
        if self._pending:
            buf = bytes(self._pending + self._out)
            self._pending.clear()
        else:
            buf = bytes(self._out)
        self._out.clear()
        self.stats.feeds += 1
        try:
            used = self._feed(buf)
            if self._returns_consumed and used is not None:
                # the count moves the stream on: -1 kept the last byte and fed it again, a
                # count past the bytes moved the position beyond them, 2.0 failed slicing
                # after that; refused as a feed that raised (the bytes kept from where the
                # replayer's stream stands)
                if not _is_int(used):
                    raise TypeError(_bad_count(used, len(buf)))
                if not 0 <= used <= len(buf):
                    raise ValueError(_bad_count(used, len(buf)))
        except BaseException:
            # Replayer.feed() raises, with no count, when its callback raises: the messages up
            # to the one that called it are applied, and its stats["bytes_consumed"] says how
            # far it got. The rest is kept, as after a short count (it was dropped with the
            # exception, and the next flush fed the bytes after it: messages lost mid-stream,
            # with no gap reported)
            done = _bytes_consumed(self.replayer)
            if done is not None and 0 <= done - self._fed <= len(buf):
                self._pending += buf[done - self._fed:]
                self._fed = done
            raise
        if self._returns_consumed and used is not None:
            used = int(used)
            self._fed += used
            if used < len(buf):
                self._pending += buf[used:]

    @property
    def unconsumed(self) -> bytes:
        """Bytes the replayer has not consumed yet (empty when every packet held whole
        messages, which MoldUDP64 guarantees, unless the last message is of an unknown type or
        follows a bad length prefix: the replayer keeps it until the bytes after it, or its
        ``finish(unconsumed)``, tell where it ends)."""
        return bytes(self._pending)

    # ---- socket loop ----

    def run(self, timeout: float | None = None, *, idle_timeout: float | None = None,
            max_packets: int | None = None) -> ReceiverStats:
        """Receive until end of session, ``timeout`` seconds in total, ``idle_timeout`` seconds
        without a datagram, or ``max_packets`` datagrams (a limit of None or ``inf``: none;
        an int beyond the float range raises ValueError). Returns :attr:`stats` (``timed_out`` is
        set when a time limit ended the run). O(packets) Python work, O(messages) in the feed.
        After :meth:`close` it raises RuntimeError (the socket is gone; :meth:`handle_packet`
        and :meth:`flush` still work); a close() from another thread meanwhile ends it (it
        returns :attr:`stats`). A second run() while one runs raises BusyError.
        """
        self._refuse_closed()
        for name, value in (("timeout", timeout), ("idle_timeout", idle_timeout)):
            # NaN too: select()'s own words
            if value is not None and not (_is_real(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 seconds (or None), got {value!r}")
            if value is not None:
                try:
                    float(value)
                except OverflowError:
                    # it failed in the deadline's sum, naming neither the setting nor the rule
                    raise ValueError(f"{name} must be >= 0 seconds (or None), got "
                                     f"{value!r:.20}...: beyond the float range (inf is a time "
                                     f"without end)") from None
        if max_packets is not None and (not _is_int(max_packets) or max_packets < 0):
            # max_packets=-1 returned at once, having received nothing, as if done
            raise ValueError(f"max_packets must be a whole number >= 0 (or None), got "
                             f"{max_packets!r}")
        # two loops took datagrams off one socket and moved one sequence state at once
        if not self._running.acquire(False):
            raise BusyError("MoldUDP64Receiver is busy: run() is running on it in another "
                            "thread; one receiver is run by one thread at a time")
        if self._run_thread is not None:    # (the lock is reentrant: this thread's own run)
            self._running.release()
            raise BusyError("MoldUDP64Receiver is busy: run() is running on it in this thread, "
                            "which called it again from inside it; one receiver is run by one "
                            "thread at a time")
        try:
            self._refuse_closed()           # closed by another thread before the hold
            self._run_thread = threading.get_ident()
            return self._run(timeout, idle_timeout, max_packets)
        finally:
            self._run_thread = None
            if self._closing:               # a close() from inside the run left them to it
                self._close_sockets()
            self._running.release()

    def _refuse_closed(self):
        if self._closing or self.sock.fileno() < 0:
            raise RuntimeError("this MoldUDP64Receiver is closed: its socket is gone and it "
                               "receives nothing more (make a new receiver)")

    def _run(self, timeout, idle_timeout, max_packets) -> ReceiverStats:
        st = self.stats
        t0 = time.perf_counter()
        deadline = None if timeout is None else t0 + timeout
        sock, buf, wake = self.sock, self._buf, self._wake_r
        view = memoryview(buf)
        got = 0
        try:
            while not self._closing and not st.end_of_session and (
                    max_packets is None or got < max_packets):
                now = time.perf_counter()
                left = idle_timeout
                if deadline is not None:
                    if deadline <= now:
                        st.timed_out = True
                        break
                    left = deadline - now if left is None else min(left, deadline - now)
                # select() takes no wait beyond time_t's nanoseconds: inf, a time without end,
                # and a limit of centuries raised OverflowError before anything was read. A
                # longer wait is waited in steps.
                while True:
                    wait = None if left is None else \
                        min(max(left - (time.perf_counter() - now), 0.0), _MAX_WAIT_S)
                    ready, _, _ = select.select([sock, wake], [], [], wait)
                    if ready or left is None or time.perf_counter() - now >= left:
                        break
                if self._closing:
                    break
                if not ready:
                    st.timed_out = True
                    break
                # Drain what is already queued (up to `batch`) before one feed call.
                for _ in range(self._batch):
                    try:
                        n = sock.recv_into(buf, MAX_DATAGRAM, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    got += 1
                    self.handle_packet(view[:n])
                    if self._closing or st.end_of_session or (
                            max_packets is not None and got >= max_packets):
                        break
                self.flush()
        finally:
            self.flush()
            st.elapsed_s += time.perf_counter() - t0
        return st

    def close(self) -> None:
        """Close the socket (idempotent). A :meth:`run` going on in another thread stops (after
        feeding the datagrams in hand) and returns its stats; close() returns once it has, with
        the port released. Called from inside the run (a feed, or a signal handler in the
        running thread), the run returns after it and releases the port as it does."""
        self._closing = True
        with contextlib.suppress(OSError):      # already woken, or closed
            self._wake_w.send(b"\0")
        if self._run_thread == threading.get_ident():
            # left to the run, below this call: closed here, a select() that a signal handler
            # interrupted was retried on the closed descriptors ("Bad file descriptor")
            return
        with self._running:
            self._close_sockets()

    def _close_sockets(self):
        self.sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# The library's hooks that take a replayer (itch.replay_file's on_chunk), by module and class:
# looked up among the modules already imported (a hook's own module is, when one is given)
_ON_CHUNK_HOOKS = (("matchcore.io.metrics", "ReplayMetrics"),
                   ("matchcore.io.replay_hooks", "ReplayHooks"),
                   ("matchcore.io.nats.publisher", "ReplayPublisher"))


def _on_chunk_hook(replayer) -> str | None:
    """The name of the on_chunk hook ``replayer`` is (an instance of one of
    :data:`_ON_CHUNK_HOOKS`, or a bound method of one: ``ReplayMetrics.update``), None for
    anything else."""
    import sys

    owner = getattr(replayer, "__self__", replayer)
    for module, cls in _ON_CHUNK_HOOKS:
        kind = getattr(sys.modules.get(module), cls, None)
        if kind is not None and isinstance(owner, kind):
            method = getattr(replayer, "__name__", None) if owner is not replayer else None
            return f"{cls}.{method}" if method else cls
    return None


def _bad_count(used, n: int) -> str:
    return (f"replayer.feed returned {used!r}: it returns the number of bytes it consumed, a "
            f"whole number in 0..{n}")


def _bytes_consumed(replayer) -> int | None:
    """``replayer.stats["bytes_consumed"]`` (a Replayer's position in its stream), None for a
    feed that does not count so."""
    # A Replayer's own reading first: its stats refuse (BusyError) while a call runs on one of
    # its books in another thread, which is when its feed() raises BusyError, and the blocks
    # after the position read were dropped (in-sequence messages lost, no gap reported)
    try:
        done = replayer.bytes_consumed
    except Exception:
        done = None
    if isinstance(done, int):
        return done
    try:
        done = replayer.stats["bytes_consumed"]
    except Exception:
        return None
    return done if isinstance(done, int) else None


def receive(port: int, host: str | bytes | bytearray = "127.0.0.1", replayer=None, *,
            timeout: float | None = 60.0, idle_timeout: float | None = None,
            first_seq: int | None = 1, session=None, on_gap=None,
            max_gap: int | None = DEFAULT_MAX_GAP) -> ReceiverStats:
    """Listen on ``host:port`` until the MoldUDP64 session ends (or a time limit), feeding every
    in-sequence message block to ``replayer`` (see :class:`MoldUDP64Receiver`).

    Returns the :class:`ReceiverStats`: messages, gaps with their exact missing ranges,
    duplicates, heartbeats, whether end of session was seen. With ``replayer=None`` the received
    stream is in ``stats.data`` (bytes, standard ITCH framing); with a replayer, the bytes it
    kept back are in ``stats.unconsumed`` (``replayer.finish(stats.unconsumed)`` at the end of
    the stream, as :attr:`MoldUDP64Receiver.unconsumed`). ``host``: a name or an address, a
    str, bytes or bytearray, as the receiver's.

    >>> from matchcore.itch import Replayer                    # doctest: +SKIP
    >>> r = Replayer(); stats = receive(26400, replayer=r, timeout=30)  # doctest: +SKIP
    >>> r.finish(stats.unconsumed) and None                         # doctest: +SKIP
    >>> print(stats.summary()); books = r.books                   # doctest: +SKIP
    """
    with MoldUDP64Receiver(port, host, replayer, first_seq=first_seq, session=session,
                           on_gap=on_gap, max_gap=max_gap) as rx:
        stats = rx.run(timeout, idle_timeout=idle_timeout)
        if replayer is None:
            stats.data = bytes(rx.data)
        else:
            # the receiver goes with this call: what the replayer has not consumed (a message
            # whose framing depends on what follows) would be lost with it
            stats.unconsumed = rx.unconsumed
    return stats


# ------------------------------------------------------------------------------------------------
# publisher
# ------------------------------------------------------------------------------------------------

@dataclass
class PublisherStats:
    """What a :class:`MoldUDP64Publisher` sent. ``dropped`` lists the sequence ranges
    ``(first, last)`` of the packets withheld on purpose (adjacent ones merged), i.e. exactly the
    gaps a receiver should report. ``tail_bytes``: the bytes of an incomplete last message (not
    sent); ``bytes_skipped``: the bytes jumped over after bad length prefixes, as the replay's
    ``bytes_skipped``."""

    session: bytes
    messages: int = 0
    packets: int = 0
    sent_packets: int = 0
    sent_messages: int = 0
    bytes: int = 0
    heartbeats: int = 0
    end_of_session: int = 0
    dropped_packets: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    next_seq: int = 1
    tail_bytes: int = 0
    bytes_skipped: int = 0
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        """Messages per second achieved (sent or dropped), over the data phase."""
        return self.messages / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _load(source):
    """A bytes-like view of an ITCH stream: bytes/bytearray/memoryview as is, a plain file
    memory-mapped, a .gz file decompressed into memory, a pipe or FIFO read whole."""
    # What cannot start an ITCH stream (DBN, a native command file, text, zstd) is refused:
    # framed by its "length prefixes" it was sent as a few garbage messages, or as none at all.
    if not isinstance(source, (str, os.PathLike)):
        # a strided view refused as the ITCH reader refuses it (memoryview's cast said only
        # "casts are restricted to C-contiguous views"); imported here, as importing
        # matchcore.moldudp does not import the ITCH package. Any bytes-like object, as the
        # replay's feed() takes it: a numpy array or an mmap was taken for a path ("expected
        # str, bytes or os.PathLike object, not ndarray")
        from matchcore.itch._buffer import byte_view
        try:
            view = byte_view(source)
        except TypeError:
            raise TypeError(f"source is a path or a bytes-like object, not "
                            f"{type(source).__name__}") from None
        refuse_foreign_buffer(view, "the source buffer", "MoldUDP64Publisher",
                              "MoldUDP64Publisher reads a buffer of plain ITCH 5.0 (a file may "
                              "be gzip'd)")
        return view, None
    # "day.itch/" (the file day.itch was published) and "" ("Is a directory: '.'")
    refuse_unusable_name(source, "source: ")
    path = Path(source)
    with open(path, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            # a pipe or FIFO: read once, whole, through this one open (its first bytes read
            # for the checks below, then a second open to map it, published nothing at all)
            data = f.read()
            _refuse_zstd(data, path)
            gz = data[:len(GZIP_MAGIC)] == GZIP_MAGIC
            if gz:
                data = _gunzip(data, path)
            refuse_foreign(data[:TEXT_LOOK], path, "MoldUDP64Publisher", "gzip'd" if gz else "",
                           whole=True)
            return memoryview(data), None
        head = f.read(TEXT_LOOK)
    _refuse_zstd(head, path)
    if head[:len(GZIP_MAGIC)] == GZIP_MAGIC:
        data = _gunzip(path.read_bytes(), path)
        refuse_foreign(data[:TEXT_LOOK], path, "MoldUDP64Publisher", "gzip'd", whole=True)
        return memoryview(data), None
    refuse_foreign(head, path, "MoldUDP64Publisher", whole=len(head) < TEXT_LOOK)
    if path.stat().st_size == 0:
        return memoryview(b""), None
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return memoryview(mm), mm


def _gunzip(data: bytes, path) -> bytes:
    # a gzip stream cut short or damaged raised EOFError or BadGzipFile naming no file; read
    # as the replay reads it, so that trailing data is called so, as there
    inf = Inflater(io.BytesIO(data))
    try:
        out = inf.readall()
    except zlib.error as e:
        raise ValueError(f"{path}: damaged gzip stream: {e}") from None
    if inf.cut:
        raise ValueError(f"{path}: the gzip stream ends before its end marker (the file is cut "
                         "short): MoldUDP64Publisher publishes whole streams")
    if inf.trailing is not None:
        raise ValueError(f"{path}: trailing data after the gzip stream (at compressed byte "
                         f"{inf.trailing:,}): MoldUDP64Publisher publishes whole streams")
    return out


def _refuse_zstd(head: bytes, path) -> None:
    if zstd_frame_start(head):
        raise ValueError(f"{path}: a zstd-compressed file: MoldUDP64Publisher reads ITCH 5.0 "
                         "files plain or gzip'd (decompress it with zstd -d)")


class MoldUDP64Publisher(NoCopy):
    """Replay an ITCH stream (a file, a .gz file or a bytes-like buffer; standard 2-byte length
    framing) as MoldUDP64 packets to ``host:port``.

    Messages are packed greedily: at most ``max_messages`` per packet and ``max_packet`` bytes
    per datagram (header included; 1400 keeps clear of a 1500-byte Ethernet MTU). ``rate`` paces
    the stream in messages per second (None: as fast as the socket takes them). ``drop``
    withholds data packets on purpose: a set of packet indices (0-based, in send order) or a
    probability in [0, 1] drawn with ``seed`` (default 0; given without a probability it raises
    ValueError). After the data: ``heartbeats`` heartbeats, then
    ``end_packets`` end-of-session packets, ``gap_s`` seconds apart (a ``gap_s``, or a
    ``rate`` slow enough that a packet's pacing wait is, beyond the longest ``time.sleep()``
    takes, about 292 years, raises ValueError before anything is sent). The source is framed as the
    replay frames it: after a bad length prefix the stream resynchronises on the next message, the
    bytes jumped over counted in ``stats.bytes_skipped`` (a zero length prefix too); an incomplete
    last message is not sent and is reported in ``stats.tail_bytes``. ``session``: at most 10 bytes
    of printable ASCII (a str or bytes; space padded), the names a receiver adopts; another name
    raises ValueError (TypeError for another type) before any socket is made. ``host``: a name
    or an address, a str, bytes or bytearray (as the socket layer takes it; another type raises
    TypeError, an empty one ValueError, and so do an IPv6 address and a host holding a port:
    the socket is IPv4). ``port``: 1..65535 (0, a receiver's free port, raises ValueError).

    >>> MoldUDP64Publisher("day.itch", 26400, rate=100_000).run()  # doctest: +SKIP
    """

    _no_copy = ("it holds a UDP socket and the session's sequence state",
                "Make a new publisher in the other process")

    def __init__(self, source, port: int, host: str | bytes | bytearray = "127.0.0.1", *,
                 session=DEFAULT_SESSION, rate: float | None = None,
                 max_messages: int = MAX_MESSAGES,
                 max_packet: int = 1400, drop=None, seed: int | None = None, first_seq: int = 1,
                 heartbeats: int = 1, end_packets: int = 3, gap_s: float = 0.001):
        # held by run() while it sends: close() from another thread waits on it before it
        # releases the source (released under the run, the run ended in "operation forbidden
        # on released memoryview object", or close() raised BufferError and kept the map)
        self._sending = threading.Lock()
        # NaN too: it would send unpaced
        if rate is not None and not (_is_real(rate) and rate > 0):
            raise ValueError(f"rate must be > 0 messages/s (or None), got {rate!r}")
        # whole numbers: 2.5 was cut to 2 and True taken for 1, silently
        if not _is_int(max_messages) or not 0 < max_messages <= MAX_MESSAGES:
            raise ValueError(f"max_messages must be a whole number in 1..{MAX_MESSAGES}, got "
                             f"{max_messages!r}")
        if not _is_int(max_packet) or not HEADER_SIZE < max_packet <= MAX_DATAGRAM:
            raise ValueError(f"max_packet must be a whole number of bytes in "
                             f"{HEADER_SIZE + 1}..{MAX_DATAGRAM}, got {max_packet!r}")
        _check_port(port)
        if port == 0:
            # a receiver's 0 picks a free port; as a destination no datagram reaches it, and
            # run() failed with "[Errno 22] Invalid argument" after the source was framed
            raise ValueError(f"port must be a whole number in 1..65535 to send to, got "
                             f"{int(port)} (port 0 picks a free port for a receiver: send to "
                             f"its rx.port)")
        # None, 5 or "" failed only at run()'s first send
        _check_host(host)
        if not host:
            raise ValueError("host must not be empty (give a name or an address, e.g. "
                             "'127.0.0.1')")
        if not _is_int(first_seq) or not 1 <= first_seq < 2**64:
            raise ValueError(f"sequence numbers are whole numbers in [1, 2**64), got "
                             f"{first_seq!r}")
        # checked here: in run() they failed only after every data packet had gone out, so
        # the receivers never got their end of session
        for name, value in (("heartbeats", heartbeats), ("end_packets", end_packets)):
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if not (_is_real(gap_s) and 0 <= gap_s <= _MAX_SLEEP_S):       # NaN too
            # beyond it time.sleep() raised OverflowError in run(), after every data packet had
            # gone out: the receivers never got their end of session
            shown = repr(gap_s) if len(repr(gap_s)) <= 24 else f"{gap_s!r:.20}..."
            raise ValueError(f"gap_s must be a finite number of seconds >= 0 and at most "
                             f"{_MAX_SLEEP_S:,} (the longest time.sleep() takes), got {shown}")
        probability = isinstance(drop, (int, float, np.integer, np.floating)) and \
            not isinstance(drop, bool)
        if seed is not None and not (_is_int(seed) and seed >= 0):
            # numpy's words named no setting ("expected non-negative integer"), and True was
            # taken for seed 1
            raise ValueError(f"seed must be a whole number >= 0 (or None), got {seed!r}")
        if seed is not None and not probability:
            # it was accepted and ignored: no packet is drawn without a probability
            raise ValueError(f"seed applies to a drop probability, and drop={drop!r} is none")
        self.session = _session(session, sending=True)
        self.addr = (host, port)
        self.rate = rate
        # a Python int: a numpy uint64 wrapped in the room check below and in the numbering
        self.first_seq = first_seq = int(first_seq)
        self.heartbeats = heartbeats
        self.end_packets = end_packets
        self.gap_s = gap_s
        self._ran = self._closed = False
        self._view, self._mm = _load(source)
        try:
            # framed as the replay frames it: after a bad length prefix the stream is
            # resynchronised, so the messages after damage are sent (framed prefix by prefix, a
            # damaged one made the rest of the file one incomplete last message, never sent); a
            # zero prefix too is skipped and counted, as the replay does
            offsets, ends, skipped, tail, _ = frame_itch(self._view)
            if len(offsets) == 1 and len(self._view):
                # not one message: every byte skipped after bad prefixes (a file framed by
                # message type alone, every prefix zero) or one incomplete message; a session
                # of nothing would be sent as if it were the file
                where = ("the source buffer" if isinstance(source, (bytes, bytearray, memoryview))
                         else Path(source))
                if not skipped:
                    raise ValueError(f"{where}: no message in {len(self._view):,} bytes: they "
                                     f"are an incomplete first message (the stream is cut "
                                     f"short)")
                raise ValueError(
                    f"{where}: no message in {len(self._view):,} bytes ({skipped:,} bytes "
                    f"skipped after bad length prefixes, {tail:,} in an incomplete last "
                    f"message): it does not look length-prefixed (a 2-byte big-endian length "
                    f"before each ITCH 5.0 message), which MoldUDP64Publisher needs")
            sizes = ends - offsets[:-1]
            big = np.flatnonzero(sizes > max_packet - HEADER_SIZE)
            if big.size:
                # said in the setting's terms (plan_packets speaks of the payload alone)
                k = int(big[0])
                raise ValueError(
                    f"message {k} (offset {int(offsets[k]):,}) is {int(sizes[k])} bytes with "
                    f"its length prefix: a packet of max_packet={max_packet} bytes, its "
                    f"{HEADER_SIZE}-byte header included, holds at most "
                    f"{max_packet - HEADER_SIZE}; max_packet must be at least "
                    f"{int(sizes.max()) + HEADER_SIZE} for this source")
            self.offsets = offsets
            self._ends = ends
            self.bounds = plan_packets(offsets, max_packet - HEADER_SIZE, max_messages, ends)
            n_packets = len(self.bounds) - 1
            if drop is None:
                self._drop = np.zeros(n_packets, dtype=bool)
            elif probability:
                # a probability, also written as the whole number 0 or 1
                if not 0.0 <= drop <= 1.0:
                    raise ValueError("a drop probability must be in [0, 1]")
                rng = np.random.default_rng(0 if seed is None else seed)
                self._drop = rng.random(n_packets) < drop
            else:
                # a str is iterable ("01" dropped packets 0 and 1) and int() cut 1.7 to packet 1
                if isinstance(drop, (str, bytes, bool)) or not hasattr(drop, "__iter__"):
                    raise TypeError(f"drop is a probability or a collection of packet indices, "
                                    f"got {type(drop).__name__} {drop!r}")
                drop = list(drop)
                bad = [i for i in drop if not _is_int(i)]
                if bad:
                    raise TypeError(f"drop indices are whole numbers, got {bad[0]!r}")
                idx = np.array([int(i) for i in drop], dtype=np.int64)
                if idx.size and (idx.min() < 0 or idx.max() >= n_packets):
                    raise ValueError(f"drop indices must be in [0, {n_packets}) (there are "
                                     f"{n_packets} data packets)")
                self._drop = np.zeros(n_packets, dtype=bool)
                self._drop[idx] = True
            last = int(self.bounds[-2]) if n_packets else 0
            if rate is not None and last / rate > _MAX_SLEEP_S:
                # the pacing wait of the last packets raised OverflowError in time.sleep(), the
                # session sent in part and never ended
                raise ValueError(f"rate={rate!r} paces the last packet of this source "
                                 f"{last / rate:,.0f} s after the first, beyond the longest "
                                 f"time.sleep() takes ({_MAX_SLEEP_S:,} s): give a higher rate "
                                 f"(messages/s) or None")
            if first_seq + len(offsets) - 1 >= 2**64:
                # found here, not halfway through sending: the last packets' (and the end of
                # session's next) sequence numbers would not fit the header's u64
                raise ValueError(f"first_seq={first_seq} leaves no room for the stream's "
                                 f"{len(offsets) - 1:,} messages: the next sequence number must "
                                 f"stay below 2**64")
        except BaseException:
            # a setting refused once the file is mapped: the map and its descriptor
            # stayed open as long as the error's traceback held this half-made publisher
            self.close()
            raise
        self.stats = PublisherStats(session=self.session, messages=len(offsets) - 1,
                                    packets=n_packets, next_seq=first_seq,
                                    tail_bytes=tail, bytes_skipped=skipped)

    @property
    def n_packets(self) -> int:
        """Number of data packets the stream is cut into."""
        return len(self.bounds) - 1

    def run(self) -> PublisherStats:
        """Send every packet (except dropped ones), then heartbeats and end of session.
        O(packets) Python work; the messages are sent as file slices, never copied one by one.
        A publisher sends its session once: a second call, or a call after :meth:`close`,
        raises RuntimeError before anything is sent. A call that failed before sending
        anything (its first send refused) does not count: it may be called again. A
        :meth:`close` from another thread meanwhile stops it (see there); a second run() while
        one sends raises BusyError."""
        if not self._sending.acquire(False):
            raise BusyError("MoldUDP64Publisher is busy: run() is sending its session in "
                            "another thread; a publisher sends its session once")
        try:
            return self._run()
        finally:
            self._sending.release()

    def _run(self) -> PublisherStats:
        if self._closed:
            raise RuntimeError("this MoldUDP64Publisher is closed: its source is released and "
                               "it sends nothing more (make a new publisher)")
        if self._ran:
            # its stats would count the session twice, and receivers see every packet again
            raise RuntimeError("this MoldUDP64Publisher has already run: its session was sent "
                               "once, with its end (make a new publisher to send it again)")
        self._ran = True
        st = self.stats
        try:
            return self._send(st)
        except BaseException:
            if not (st.sent_packets or st.heartbeats or st.end_of_session):
                # nothing went out (the first send failed): no receiver saw the session, so
                # it may be run again, from fresh stats (dropped packets are drawn again)
                st.dropped_packets.clear()
                st.dropped.clear()
                st.elapsed_s = 0.0
                st.next_seq = self.first_seq
                self._ran = False
            raise

    def _send(self, st: PublisherStats) -> PublisherStats:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b, off, end, view = self.bounds, self.offsets, self._ends, self._view
        seq0 = self.first_seq
        rate = self.rate
        sess = self.session
        t0 = time.perf_counter()
        stopped = None      # messages before the packet a close() stopped the run at
        try:
            for k in range(len(b) - 1):
                i, j = int(b[k]), int(b[k + 1])
                if rate is not None:
                    ahead = t0 + i / rate - time.perf_counter()
                    if ahead > 0:
                        self._pause(ahead)
                if self._closed:
                    stopped = i
                    break
                seq = seq0 + i
                if self._drop[k]:
                    st.dropped_packets.append(k)
                    if st.dropped and st.dropped[-1][1] == seq - 1:
                        st.dropped[-1] = (st.dropped[-1][0], seq0 + j - 1)
                    else:
                        st.dropped.append((seq, seq0 + j - 1))
                    continue
                hdr = HEADER.pack(sess, seq, j - i)
                sent = sock.sendmsg([hdr, view[off[i]:end[j - 1]]], [], 0, self.addr)
                st.sent_packets += 1
                st.sent_messages += j - i
                st.bytes += sent
            st.elapsed_s = time.perf_counter() - t0
            st.next_seq = seq0 + (st.messages if stopped is None else stopped)
            for _ in range(self.heartbeats):
                self._pause(self.gap_s)
                if self._closed:
                    return st
                sock.sendto(heartbeat(sess, st.next_seq), self.addr)
                st.heartbeats += 1
            for _ in range(self.end_packets):
                self._pause(self.gap_s)
                if self._closed:
                    return st
                sock.sendto(end_of_session(sess, st.next_seq), self.addr)
                st.end_of_session += 1
        finally:
            sock.close()
        return st

    def _pause(self, seconds: float) -> None:
        # slept in slices: a close() from another thread stops a paced run within one of them,
        # not after the whole wait for the next packet
        end = time.perf_counter() + seconds
        while not self._closed:
            left = end - time.perf_counter()
            if left <= 0:
                return
            time.sleep(min(left, _CLOSE_POLL_S))

    def close(self) -> None:
        """Release the memory map of a file source (and the source: :meth:`run` is refused
        after it). A :meth:`run` sending in another thread stops before its next packet (no
        end of session is sent) and returns its stats; close() returns once it has."""
        self._closed = True
        with self._sending:
            self._view.release()
            if self._mm is not None:
                self._mm.close()
                self._mm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def publish(source, port: int, host: str | bytes | bytearray = "127.0.0.1", *,
            rate: float | None = None, **kwargs) -> PublisherStats:
    """Send an ITCH file or buffer as a MoldUDP64 session to ``host:port`` at ``rate`` messages
    per second (None: unpaced), ending with a heartbeat and end-of-session packets. Keyword
    arguments as :class:`MoldUDP64Publisher` (``drop=``, ``seed=``, ``max_packet=``, ...).
    ``host``: a name or an address, a str, bytes or bytearray, as the publisher's.

    >>> stats = publish("day.itch", 26400, rate=200_000)       # doctest: +SKIP
    >>> stats.sent_messages, stats.dropped                     # doctest: +SKIP
    """
    with MoldUDP64Publisher(source, port, host, rate=rate, **kwargs) as pub:
        return pub.run()


__all__ = ["DEFAULT_MAX_GAP", "END_OF_SESSION", "HEADER_SIZE", "HEARTBEAT", "MAX_MESSAGES", "MoldUDP64Error",
           "MoldUDP64Publisher", "MoldUDP64Receiver", "Packet", "PublisherStats", "ReceiverStats",
           "build_framed_packet", "build_packet", "end_of_session", "heartbeat", "parse_packet",
           "publish", "receive"]
