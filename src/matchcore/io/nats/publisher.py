"""Publishing market data to NATS JetStream: :class:`NatsPublisher`, a non-blocking queue
drained by an asyncio client in a background thread, and :class:`ReplayPublisher`, the bridge
that batches a replay's sink records per (kind, symbol)."""
from __future__ import annotations

import asyncio
import atexit
import collections
import functools
import numbers
import os
import queue
import re
import threading
import time
import weakref

import numpy as np

from matchcore._nocopy import NoCopy
from matchcore.io.nats.streams import (StreamSetupError, _check_stream_name, _check_url,
                                       _covers, _nats, _no_jetstream, _not_permitted,
                                       _huge_shown, _overlaps, _refused, _shown,
                                       display_url)
from matchcore.io.nats.wire import (DEFAULT_PREFIX, DEFAULT_STREAM, DEFAULT_URL, HEADER_DTYPE,
                                    KIND_L2, KIND_NAMES, KIND_TOB, KIND_TRADE, KINDS,
                                    SESSION_HEADER, WIRE, check_prefix, check_subject,
                                    _unknown_kinds, encode_batch,
                                    subject_token, symbol_from_token)


class NatsPublisher(NoCopy):
    """Publish batches to NATS JetStream from any thread without ever blocking it.

    ``publish(subject, payload, records=1)`` returns at once: True when the batch was queued,
    False when the queue (``max_queue_bytes``) was full and the batch dropped. A background
    thread runs an asyncio loop with the nats-py client: it creates the stream (``stream``,
    subjects ``<prefix>.>``) if missing, publishes with up to ``max_inflight`` acknowledgements
    outstanding (one connection, so the broker stores each subject's batches in order) and
    counts a batch without an acknowledgement within ``ack_timeout`` s as unconfirmed (sent,
    but not known to be stored: the broker may have stored it), apart from the undelivered
    ones (refused by the broker or the client, or never sent). While
    the broker is down the client reconnects every ``reconnect_wait`` s, forever, and batches
    keep being queued, sent when it is back, or dropped when the queue is full.
    ``ack_timeout``, ``connect_timeout`` and ``reconnect_wait`` are finite numbers of seconds
    > 0 (``ValueError`` otherwise, before anything connects).

    A ``stream`` that is not a JetStream stream name (empty, more than 255 bytes of UTF-8, with
    whitespace, control characters, ``.``, ``*``, ``>``, ``/`` or ``\\``) raises ``ValueError``
    (``TypeError``: not a str) before anything connects, as a bad ``prefix`` does, and a ``url``
    that is not a str ``TypeError``, one of a scheme the NATS client does not take (it takes
    ``nats://``, ``tls://``, ``ws://``, ``wss://``, and ``HOST:PORT`` as ``nats://``) or
    that it cannot read (empty, without a host, a port that is not a number) ``ValueError``.
    The constructor raises ``ConnectionError`` when the first connection fails within
    ``connect_timeout`` s, and :class:`StreamSetupError` when the broker
    answers but the stream cannot be used (its lookup and creation are bounded by
    ``connect_timeout`` too, not by ``ack_timeout``): it exists with subjects that do not take those
    of the ``kinds`` it publishes (``<prefix>.<kind>.*``; by default every kind, i.e.
    ``<prefix>.>``), or its creation was refused. ``max_payload`` is the largest message the broker
    takes, in bytes (its ``max_payload``, 1 MiB by default), known once connected and read again on
    each reconnection, ``max_msg_size`` the stream's own limit (its ``max_msg_size``; None when it
    has none) and ``max_message`` the smaller of the two: a larger batch, headers included, is never
    delivered. ``flush(timeout)`` waits for the queue to drain, ``close()`` flushes and disconnects;
    ``stats`` holds the counts (batches and records: ``queued``, ``published`` (acknowledged),
    ``dropped``, ``undelivered``, ``unconfirmed``; ``disconnects``, ``reconnects``, ``last_error``).
    A stream deleted while the publisher is connected is made again (with the configuration
    it had when the publisher first found or made it: subjects, limits, duplicate window,
    storage, replicas) by the first batch that finds it gone, and each such batch is sent once more
    (``streams_made_again``, and ``resent`` / ``records_resent``; a batch that fails again,
    or whose stream cannot be made again, is undelivered); so is a stream a restarted broker
    lost, on reconnection. The batches resent keep their publish order, and no later batch is
    sent before them. A batch sent before them that gets no answer at all (a subscriber that
    never replies took it, or a broker restarted without its store) holds them, and every new
    batch, back until its own ``ack_timeout`` runs out (counted from its sending; it is then
    unconfirmed): it may yet be stored, and no later batch may overtake it. So for at most
    ``ack_timeout`` s after the stream is made again nothing new is sent, and the batches
    published meanwhile wait in the queue (dropped when it is full).
    A publisher still open at interpreter exit is closed then (an ``atexit`` hook registered
    while it is open), so its queued batches are flushed rather than lost.

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
                 connect_timeout: float = 5.0, kinds=("trade", "tob", "l2")):
        _nats()
        _check_url(url)
        check_prefix(prefix)
        _check_stream_name(stream)
        kinds = _check_kinds(kinds)
        for name, value in (("max_queue_bytes", max_queue_bytes), ("max_inflight", max_inflight)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a whole number > 0, got {value!r}")
        # (a NaN compares false with everything: connect_timeout=nan reported the broker
        # unreachable, ack_timeout=nan failed in the client with its own words; a str failed
        # in the comparison, naming neither the setting nor the rule)
        # (a bool is a numbers.Real: True was taken as 1 s)
        # (reconnect_wait=0 retried in a tight loop while the broker was down)
        for name, value in (("ack_timeout", ack_timeout), ("connect_timeout", connect_timeout),
                            ("reconnect_wait", reconnect_wait)):
            if isinstance(value, bool) or not (isinstance(value, numbers.Real)
                                               and 0 < value < float("inf")):
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
            try:
                float(value)
            except OverflowError:
                # an int past the float range compares below inf, and float() below failed
                # with "int too large to convert to float", naming neither setting nor rule
                raise ValueError(f"{name} must be a finite number of seconds > 0, got "
                                 f"{_huge_shown(value)}: "
                                 f"beyond the float range") from None
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self.kinds = kinds
        self.max_queue_bytes = int(max_queue_bytes)
        self.max_inflight = int(max_inflight)
        self.ack_timeout = float(ack_timeout)
        self.reconnect_wait = float(reconnect_wait)
        self.connect_timeout = float(connect_timeout)
        self.max_payload = None         # the broker's, once connected
        self.max_msg_size = None        # the stream's, when it has one
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        # one close() at a time: another one, made while the first was ending the loop, called
        # into the closed loop (RuntimeError "Event loop is closed") or returned totals the
        # first one was still adding to (reentrant: a signal handler's close() in the thread
        # already closing goes on as before)
        self._close_lock = threading.RLock()
        self._queued_bytes = 0
        self._outstanding = 0          # queued or in flight, not yet settled
        self._outstanding_records = 0  # their records
        self._closing = False
        self._abandon = False
        self._final = False            # close() has given its totals: nothing changes them
        self._signalled = False
        self.stats = {"queued": 0, "published": 0, "dropped": 0, "undelivered": 0,
                      "unconfirmed": 0, "records_queued": 0, "records_published": 0,
                      "records_dropped": 0, "records_undelivered": 0,
                      "records_unconfirmed": 0, "bytes_published": 0, "disconnects": 0,
                      "reconnects": 0, "streams_made_again": 0, "resent": 0,
                      "records_resent": 0, "last_error": None}
        # subject (in lower case, as the client reports it) -> the broker's refusal to let
        # this user publish to it: such a batch is never answered, and never stored
        self._refusals: dict[str, str] = {}
        self._stream_made = 0          # the stream's creations by this publisher after the first
        self._stream_config = None     # the stream's as first found or made (_ensure_stream)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._connect_error = None
        self._thread = threading.Thread(target=self._run, name="matchcore-nats-publisher",
                                        daemon=True)
        self._thread.start()
        # (at most the longest wait a lock takes: connect_timeout=1e300 failed with an
        # OverflowError once connected, leaving the loop thread and its connection running)
        if not self._ready.wait(min(connect_timeout + 5, threading.TIMEOUT_MAX)):
            self._connect_error = TimeoutError("no answer")
        if self._connect_error is not None:
            self._stop_loop()
            if isinstance(self._connect_error, StreamSetupError):
                raise self._connect_error
            raise ConnectionError(f"cannot connect to NATS at {display_url(url)}: "
                                  f"{self._connect_error}")
        # closed at exit while open: its thread is a daemon, and a script that ended without
        # close() lost every batch still queued without a word
        self._at_exit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._at_exit)

    # ---- caller side (any thread, never blocks) ----

    def publish(self, subject: str, payload: bytes, records: int = 1, headers=None) -> bool:
        """Queue one batch for ``subject`` (with NATS ``headers``, a dict, if given); False
        (and counted as dropped) when the queue is full or the publisher is closing, and (counted
        as undelivered, ``last_error`` says why) when it is larger, headers included, than the
        broker's ``max_payload`` or the stream's ``max_msg_size`` (``max_message``). A subject
        or an argument :meth:`publish_many` refuses raises as there, and so does a call after
        :meth:`close` (``RuntimeError``). O(1), never blocks.

        >>> pub.publish("mc.trade.AAPL", payload, records=3)              # doctest: +SKIP
        True
        """
        return self.publish_many([(subject, payload, records, headers)]) == 1

    def publish_many(self, items) -> int:
        """Queue several ``(subject, payload, records)`` or ``(subject, payload, records, headers)``
        batches at once (one lock, one wake-up: what the replay bridge does once per chunk;
        ``headers`` a dict of str to str, or None: names the NATS client takes, letters, digits and
        ``!#$%&'*+-.^_`|~``, values without a line break); each that does not fit in the queue is
        dropped and counted. Returns how many were queued. A payload that is not bytes (``bytes``,
        ``bytearray`` or a ``memoryview``, sent as its bytes whatever its format or shape, as they
        are when this is called: the caller may reuse the buffer, and the ``headers`` dict, once
        it returns), a
        ``records`` that is not an int >= 0 or other ``headers`` raise ``TypeError`` /
        ``ValueError`` before any item is queued or counted, and so does a subject that is not one
        to publish to (not a str, an empty token, whitespace, control characters, ``*`` or ``>``),
        that is not under the publisher's ``prefix`` (``<prefix>.``, the subjects its stream takes)
        or that is not ``<prefix>.<kind>.<symbol>`` of one of its ``kinds`` (the subjects its
        stream was checked for). After :meth:`close` returned its final totals, a call raises
        ``RuntimeError`` and changes no count. O(len(items)) (and the bytes of a payload that is not
        ``bytes``, copied), never blocks.
        """
        items = list(items)
        under = f"{self.prefix}."
        for i, item in enumerate(items):
            # every item before any is counted: records="2" failed half way, the batch counted
            # as queued and outstanding but never queued (flush() then waited its whole
            # timeout); records=-5 or 1.5 went into the records totals; a str payload failed
            # in the loop thread
            if not isinstance(item, (tuple, list)) or len(item) not in (3, 4):
                # (subject, payload) failed with "tuple index out of range", a fifth field
                # was ignored
                raise TypeError(f"each item must be (subject, payload, records) or (subject, "
                                f"payload, records, headers), got {item!r:.80}")
            payload, records = item[1], item[2]
            # "mc.tob.*" was stored under that literal subject (a book named "*" for every
            # subscriber); a space or an empty token was refused later, in the loop thread
            check_subject(item[0])
            if not item[0].startswith(under):
                # its stream takes <prefix>.> alone: the batch was queued and counted, then
                # undelivered by the loop thread after a round trip to the broker
                raise ValueError(f"subject {item[0]!r} is not under the publisher's subject "
                                 f"prefix {self.prefix!r} (its stream {_shown(self.stream)} takes "
                                 f"{_shown(under)}>)")
            kind, dot, token = item[0][len(under):].partition(".")
            if kind not in self.kinds or not dot or "." in token:
                # <prefix>.<kind>.<symbol> of a kind it publishes, the subjects its stream
                # was checked for: another was queued and counted, then undelivered by a
                # stream without it (or stored where a consumer, reading the kind from the
                # token before the last, counts it malformed)
                raise ValueError(f"subject {item[0]!r} is not a subject of the publisher's kinds "
                                 f"{list(self.kinds)} ({_shown(under)}KIND.SYMBOL: its stream "
                                 f"{_shown(self.stream)} was checked for "
                                 f"{', '.join(_shown(f'{under}{k}.*') for k in self.kinds)})")
            if not isinstance(payload, (bytes, bytearray, memoryview)):
                raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
            if isinstance(records, bool) or not isinstance(records, (int, np.integer)):
                raise TypeError(f"records must be an int, got {type(records).__name__} "
                                f"{records!r}")
            if records < 0:
                raise ValueError(f"records must be >= 0, got {records}")
            headers = item[3] if len(item) > 3 else None
            if isinstance(headers, dict):
                # a copy, checked and queued: the caller's dict was read by the loop thread
                # when it sent the batch, so one reused for the next publish (a message id
                # set before each) sent every batch still queued with the last one's headers
                # (the broker dropped them as duplicates), or with headers never checked
                headers = dict(headers)
            # a list failed half way (the batches before it counted, never queued); a value
            # or name that is not a str failed in the loop thread
            if headers is not None and not (isinstance(headers, dict) and all(
                    isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
                raise TypeError(f"headers must be a dict of str to str, got {headers!r}")
            why = _bad_header(headers) if headers else None
            if why is not None:
                raise ValueError(f"headers hold the {why}")
            if not isinstance(payload, bytes):
                # its bytes now: a bytearray or memoryview was read when the loop thread sent
                # it, so a caller reusing its buffer after publish() had other bytes (or none)
                # stored, and the queue's byte count kept the difference. (A memoryview of
                # wider items: its len() counts items, not bytes; the client announced that
                # many bytes and wrote them all, and the broker dropped the garbled connection.)
                payload = payload.tobytes() if isinstance(payload, memoryview) \
                    else bytes(payload)
            # records as a Python int: a numpy one went into stats, which json.dumps refuses
            items[i] = (item[0], payload, int(records)) if len(item) == 3 else \
                (item[0], payload, int(records), headers)
        kept = []
        limit = self.max_message
        with self._lock:
            # counted as dropped, in the dict close() returned as the final totals
            self._check_open()
            for item in items:
                n = len(item[1])
                if limit is not None and _message_size(item) > limit:
                    # the broker closes the connection on a message beyond its max_payload
                    # (headers included): every batch in flight behind it was lost too; the
                    # stream refuses one beyond its max_msg_size
                    what = (f"the broker's max_payload of {limit:,}" if limit == self.max_payload
                            else f"the stream's max_msg_size of {limit:,}")
                    self.stats["undelivered"] += 1
                    self.stats["records_undelivered"] += item[2]
                    self.stats["last_error"] = (
                        f"a batch of {_message_size(item):,} bytes (with its headers) for "
                        f"{item[0]} exceeds {what}: not sent")
                    continue
                if self._closing or self._queued_bytes + n > self.max_queue_bytes:
                    self.stats["dropped"] += 1
                    self.stats["records_dropped"] += item[2]
                    continue
                self._queued_bytes += n
                self._outstanding += 1
                self._outstanding_records += item[2]
                self.stats["queued"] += 1
                self.stats["records_queued"] += item[2]
                kept.append(item)
            wake = False
            if kept:
                # queued under the lock that counted them, as close() sets _closing under it:
                # the loop, once it sees closing, finds them queued. (Put after the lock, a
                # close() from another thread in between had the loop end on an empty queue:
                # batches never sent, counted by close() as unconfirmed.)
                self._q.put(kept)
                # Wake the loop only when it is not already due to drain the queue: a wake-up
                # is a write to its self-pipe.
                wake = not self._signalled
                self._signalled = True
        if wake:
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:
                # the loop has ended since (a close() in another thread): it drained these
                # batches before it did, as it ends on an empty queue only
                pass
        return len(kept)

    def _check_open(self) -> None:
        # RuntimeError once close() has given its final totals: nothing can be published
        if self._final:
            raise RuntimeError("publisher is closed: its totals are final")

    @property
    def max_message(self) -> int | None:
        """The largest batch, headers included, that can be delivered, in bytes: the broker's
        ``max_payload`` or the stream's ``max_msg_size``, whichever is smaller (None before
        the connection)."""
        limits = [x for x in (self.max_payload, self.max_msg_size) if x is not None]
        return min(limits) if limits else None

    @property
    def pending(self) -> int:
        """Batches queued or in flight (not yet acknowledged or given up)."""
        with self._lock:
            return self._outstanding

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued batch is acknowledged, refused or given up, at most
        ``timeout`` s (a number >= 0, inf to wait for good; ``ValueError`` otherwise); False on
        timeout."""
        # NaN or a negative time was a flush timed out at once: close() then gave up every
        # batch still queued; a str failed in the arithmetic, naming neither setting nor rule
        if isinstance(timeout, bool) or not (isinstance(timeout, numbers.Real)
                                             and timeout >= 0):
            raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        try:
            end = time.monotonic() + timeout
        except OverflowError:
            # an int past the float range (10**400): "int too large to convert to float"
            # named neither the setting nor its rule
            raise ValueError(f"timeout must be a number of seconds >= 0, got "
                             f"{_huge_shown(timeout)}: beyond "
                             f"the float range (inf waits for good)") from None
        while self.pending and time.monotonic() < end:
            time.sleep(0.005)
        return self.pending == 0

    def close(self, timeout: float = 30.0) -> dict:
        """Flush (up to ``timeout`` s, as :meth:`flush` takes it), disconnect and stop the
        thread; returns ``stats``.
        When the flush times out (a broker still away), the batches still queued are given up
        at once (counted as undelivered: never sent) and the ones in flight within
        ``ack_timeout``, or at once when the connection is down (counted as unconfirmed: the
        broker may have stored them). Batches
        still unsettled when the thread has not stopped in time are counted as unconfirmed too,
        with their records. The totals it returns are final: a batch the thread settles after
        ``close()`` returned changes no count. A close() from another thread meanwhile waits
        for this one and returns the same totals.
        """
        with self._close_lock:
            return self._close(timeout)

    def _close(self, timeout) -> dict:
        # closed already, its totals final: the thread was told to stop and waited for once
        # (a second close() waited ack_timeout + 15 s more for nothing to count)
        if self._final or not self._thread.is_alive():
            atexit.unregister(self._at_exit)
            return self.stats
        if not self.flush(timeout):
            self._abandon = True
        with self._lock:
            self._closing = True
        self._loop.call_soon_threadsafe(self._wake.set)
        self._thread.join(timeout=min(self.ack_timeout + 15, threading.TIMEOUT_MAX))
        with self._lock:
            if self._outstanding:      # never settled: say so rather than lose the count
                left = self._outstanding
                # sent or not, nobody knows: not known to be stored
                self.stats["unconfirmed"] += left
                self.stats["records_unconfirmed"] += self._outstanding_records
                self._outstanding = 0
                self._outstanding_records = 0
            # a thread still alive settles those batches later: they were counted above, and
            # were counted again (outstanding counts going negative)
            self._final = True
        atexit.unregister(self._at_exit)
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
            # the broker reconnected to may take other message sizes (a restart with another
            # configuration): batches are sized and checked for its limit, not the first one's
            self.max_payload = int(self._nc.max_payload)
            self.stats["reconnects"] += 1
            # a broker restarted without its store has lost the stream: create it again
            try:
                await self._stream_again(None)
            except Exception as e:          # reported, publishing goes on
                self.stats["last_error"] = f"stream after reconnect: {e}"

        async def on_error(e):
            self.stats["last_error"] = str(e) or type(e).__name__
            m = _REFUSED_PUBLISH.search(str(e))
            if m:
                self._refusals[m.group(1)] = str(e)

        connected = False
        try:
            # Reconnects are retried forever, and so would the first connection be: bound it.
            self._nc = await asyncio.wait_for(nats.connect(
                servers=[self.url], allow_reconnect=True, max_reconnect_attempts=-1,
                reconnect_time_wait=self.reconnect_wait, connect_timeout=2,
                disconnected_cb=on_disconnect, reconnected_cb=on_reconnect, error_cb=on_error,
                pending_size=self._client_buffer()), self.connect_timeout)
            connected = True
            self.max_payload = int(self._nc.max_payload)
            # the stream's lookup and creation are bounded by connect_timeout: ack_timeout is
            # each publish's own (a tight one left the publisher unable to start)
            self._js = self._nc.jetstream(timeout=self.connect_timeout)
            self._stream_lock = asyncio.Lock()
            # Publish order kept across a stream made again: batches sent, by order number,
            # whose place in the stream is not settled yet (neither acknowledged nor given up,
            # nor resent); while the stream is looked up after a loss, or made again with
            # some of them unsettled, no new batch is sent (_sending), and each batch to be
            # resent waits for its turn (_turns: the first unsettled one goes)
            self._unsettled = collections.OrderedDict()
            self._turns = {}
            self._order = 0
            self._checking = 0
            self._remade = False
            self._sending = asyncio.Event()
            self._sending.set()
            await self._ensure_stream()
        except Exception as e:
            refusal = (_refused([self.stats["last_error"]])
                       if connected and isinstance(e, asyncio.TimeoutError) else None)
            if refusal is not None:
                # no answer because the broker refused this user the request, and said so
                e = _not_permitted(self.stream, self.url, refusal)
            elif connected and not isinstance(e, StreamSetupError):
                # the broker answered: not a connection problem, whatever went wrong
                e = StreamSetupError(f"stream {_shown(self.stream)} at {display_url(self.url)}: "
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
                        self._settle(item, "undelivered")
                        continue
                    await sem.acquire()
                    # not while the stream is checked or made again: the batches sent before
                    # go first, resent in their order (a batch sent once the stream was back
                    # was stored before the batches being resent, a gap for a consumer)
                    while not self._sending.is_set():
                        await self._sending.wait()
                    if self._abandon:
                        # given up while it waited for a slot (or its turn): still queued,
                        # never sent. (It was sent then, and close() waited out its
                        # ack_timeout too, to count it as unconfirmed.)
                        sem.release()
                        self._settle(item, "undelivered")
                        continue
                    n = self._order
                    self._order += 1
                    self._unsettled[n] = None
                    t = asyncio.ensure_future(self._send(item, sem, n))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
            with self._lock:
                closing = self._closing
            if closing and self._q.empty():
                break
        if tasks and self._abandon and not self._nc.is_connected:
            # the flush gave up with the broker away: no acknowledgement comes on a connection
            # that is down, and waiting out ack_timeout (counted from each batch's sending,
            # which went on during the flush) made close(timeout) take that much longer. A
            # cancelled send settles as unconfirmed, as a timed-out one would.
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=self.ack_timeout + 1)
        try:
            if self._abandon or not self._nc.is_connected:
                await self._nc.close()
            else:
                await asyncio.wait_for(self._nc.drain(), timeout=5)
        except Exception:
            await self._nc.close()

    def _client_buffer(self) -> int:
        # What the client holds while the broker is away (its pending_size): every batch the
        # queue may hold, with room for each in flight's command line and headers. At a
        # fixed 64 MiB it refused the batches past it (undelivered) while the queue
        # (max_queue_bytes) had room for them to be sent once the broker was back.
        return self.max_queue_bytes + self.max_inflight * _SEND_OVERHEAD + (1 << 20)

    async def _overlap_message(self, err) -> str:
        want = f"{self.prefix}.>"
        owners = []
        try:
            for info in await self._js.streams_info():
                have = list(info.config.subjects or [])
                hit = [p for p in have if _overlaps(p, want)]
                if hit and info.config.name != self.stream:
                    owners.append(f"stream {_shown(info.config.name)} (subjects {hit})")
        except Exception:          # the list is a courtesy: keep the server's own words then
            pass
        head = f"stream {_shown(self.stream)} at {display_url(self.url)} cannot be created with " \
               f"subjects {_shown(want)}: "
        if not owners:
            return head + f"{err.description or err}"
        return head + (f"{', '.join(owners)} already take{'s' if len(owners) == 1 else ''} "
                       f"some of them: use that stream (--stream), another subject prefix "
                       f"(--subject-prefix), or remove them from it")

    async def _ensure_stream(self):
        from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

        try:
            info = await self._js.stream_info(self.stream)
        except ServiceUnavailableError:
            raise _no_jetstream(self.url) from None
        except NotFoundError:
            try:
                if self._stream_config is None:
                    made = await self._js.add_stream(name=self.stream,
                                                     subjects=[f"{self.prefix}.>"])
                    self._stream_config = made.config
                else:
                    # made again as it was when first found or made: its name and subjects
                    # alone lost its limits (age, bytes, messages, duplicate window,
                    # storage, replicas), which the broker's defaults do not have
                    await self._js.add_stream(config=self._stream_config)
            except BadRequestError as e:
                # 10065: the server says "subjects overlap with an existing stream" without
                # naming it, and that name is what the user has to act on
                if getattr(e, "err_code", None) != 10065:
                    raise
                raise StreamSetupError(await self._overlap_message(e)) from e
            limit = getattr(self._stream_config, "max_msg_size", None)
            self.max_msg_size = int(limit) if limit is not None and limit > 0 else None
            return True
        # A stream that does not take our subjects stores nothing and every publish times out;
        # adding the subject to someone else's stream is not ours to decide.
        # Only the subjects of the kinds published: a stream of top of book alone serves a
        # publisher of top of book.
        have = list(info.config.subjects or [])
        need = [f"{self.prefix}.{k}.*" for k in self.kinds]
        lacking = [n for n in need if not any(_covers(p, n) for p in have)]
        if lacking:
            want = _shown(f"{self.prefix}.>" if set(self.kinds) == set(KINDS)
                          else ", ".join(lacking))
            raise StreamSetupError(
                f"stream {_shown(self.stream)} at {display_url(self.url)} exists with subjects "
                f"{have}, which do not "
                f"take {want}: choose another stream (--stream) or a subject prefix it "
                f"takes (--subject-prefix), or add {want} to its subjects")
        # the stream refuses a message beyond its own limit (headers included): batches are
        # sized for it as for the broker's max_payload
        limit = getattr(info.config, "max_msg_size", None)
        self.max_msg_size = int(limit) if limit is not None and limit > 0 else None
        if self._stream_config is None:      # the configuration it is made again with
            self._stream_config = info.config
        return False

    async def _stream_again(self, made) -> None:
        # The stream made again when missing (its configured name and subjects), once for
        # all the batches that found it gone: ``made`` is the count of creations when the
        # caller's batch was sent, and a creation since then is the one it needs (None: look
        # anyway, as on reconnection).
        # No new batch is sent from now until the stream is known (and, made again, until
        # every batch sent before is settled or resent): the lookup's round trip puts every
        # batch sent before it ahead of the stream's creation, where it fails and is resent.
        self._checking += 1
        self._sending.clear()
        try:
            async with self._stream_lock:
                if made is not None and made != self._stream_made:
                    return
                if await self._ensure_stream():
                    self._stream_made += 1
                    self._remade = True
                    with self._lock:
                        self.stats["streams_made_again"] += 1
        finally:
            self._checking -= 1
            self._advance()

    def _placed(self, n: int) -> None:
        # batch n's place in the stream is settled (acknowledged, given up, or its resend
        # written: the client writes a publish to the connection before its first wait)
        self._unsettled.pop(n, None)
        if not self._sending.is_set():
            self._advance()

    def _advance(self) -> None:
        # the first unsettled batch, when it waits to be resent, goes; once none is left
        # unsettled and the stream is not being checked, new batches are sent again
        if self._unsettled:
            turn = self._turns.get(next(iter(self._unsettled)))
            if turn is not None and not turn.done():
                turn.set_result(None)
        else:
            self._remade = False
        if not self._checking and not self._remade:
            self._sending.set()

    async def _turn(self, n: int) -> None:
        # until every batch sent before batch n is settled or resent
        if next(iter(self._unsettled)) == n:
            return
        turn = self._turns[n] = asyncio.get_running_loop().create_future()
        try:
            await turn
        finally:
            del self._turns[n]

    async def _send(self, item, sem, n):
        subject, payload = item[0], item[1]
        headers = item[3] if len(item) > 3 else None
        # no answer (a timeout, or the loop ending while waiting) leaves the batch sent, or
        # waiting to be sent on reconnection: the broker may have stored it
        from nats.js.errors import NoStreamResponseError

        outcome = "unconfirmed"
        error = None
        try:
            made = self._stream_made
            try:
                await self._js.publish(subject, payload, timeout=self.ack_timeout,
                                       headers=headers)
            except NoStreamResponseError:
                # no stream took the subject: deleted while we stayed connected (a broker
                # that lost it is seen on reconnection). Made again, the batch is sent once
                # more; a second failure counts it as the first would have been.
                await self._stream_again(made)
                if self._stream_made == made:
                    # the stream is there: it does not take this subject (one of a kind
                    # the stream, made by another, has no subjects for), and sending it
                    # again changes nothing
                    raise
                # in publish order: after every batch sent before it, and before any sent
                # after the stream was found missing
                await self._turn(n)
                with self._lock:
                    self.stats["resent"] += 1
                    self.stats["records_resent"] += item[2]
                self._placed(n)
                await self._js.publish(subject, payload, timeout=self.ack_timeout,
                                       headers=headers)
            outcome = "published"
        except asyncio.TimeoutError as e:       # nats.errors.TimeoutError too
            refusal = self._refusals.get(subject.lower())
            if refusal is not None:
                # no acknowledgement because the broker refused the subject to this user (and
                # said so): dropped there, not "may have been stored"
                outcome = "undelivered"
                error = f"the broker refused {subject} to this user ({refusal})"
            else:
                error = f"{type(e).__name__}: {e or 'no answer'} (no acknowledgement within " \
                        f"{self.ack_timeout:g} s)"
        except Exception as e:                  # refused by the broker, or not sent
            outcome = "undelivered"
            error = f"{type(e).__name__}: {e}"
        finally:
            self._placed(n)
            sem.release()
            self._settle(item, outcome, error)

    def _settle(self, item, outcome: str, error: str | None = None) -> None:
        # outcome: "published" (acknowledged), "undelivered" (refused, or never sent) or
        # "unconfirmed" (sent without an acknowledgement: not known to be stored)
        payload, records = item[1], item[2]
        with self._lock:
            if self._final:        # close() counted it as unconfirmed: its totals stand
                return
            if error is not None:
                self.stats["last_error"] = error
            self._queued_bytes -= len(payload)
            self._outstanding -= 1
            self._outstanding_records -= records
            self.stats[outcome] += 1
            self.stats[f"records_{outcome}"] += records
            if outcome == "published":
                self.stats["bytes_published"] += len(payload)


# The broker's refusal of a publish to this connection's user, as nats-py passes it to the
# error callback (in lower case: a subject differing only in case from a refused one is taken
# for it)
_REFUSED_PUBLISH = re.compile(r'permissions violation for publish to "([^"]*)"')

# The bytes a batch in flight may take in the client's buffer beyond its payload: the HPUB
# line (subject, reply inbox, sizes) and its NATS headers
_SEND_OVERHEAD = 64 << 10


def _check_replayer(replayer) -> None:
    # An ITCH replay's Replayer alone has the three sinks and the locate names the subjects are
    # made of: a DBN replay's DbnReplayer (no L2 sink) failed with AttributeError once its
    # top-of-book and trade sinks were drained, sent nowhere, and the bridge kept it as its
    # replay, refusing the ITCH one that followed as another replay
    from matchcore.itch import Replayer

    if not isinstance(replayer, Replayer):
        kind = type(replayer)
        raise TypeError(f"a ReplayPublisher publishes an ITCH replay: it takes a "
                        f"matchcore.itch.Replayer (what itch.replay_file passes to on_chunk), "
                        f"got {kind.__module__}.{kind.__qualname__}; nothing was drained")


def _close_at_exit(ref) -> None:
    # the atexit hook of a publisher still open: close() flushes its queue (within close()'s
    # default timeout) before the interpreter stops its thread
    pub = ref()
    if pub is not None:
        pub.close()


def _check_kinds(kinds) -> tuple:
    # a str is iterable: kinds="tob" was refused as the unknown kinds b, o and t; in the words
    # of consume(), which refuses it so
    if isinstance(kinds, (str, bytes)):
        raise TypeError(f"kinds must be a list of names, not {type(kinds).__name__} "
                        f"{kinds!r} (write [{kinds!r}])")
    # once: a generator was used up by the check, and nothing was published
    kinds = tuple(kinds)
    if not kinds:               # it published nothing
        raise ValueError(f"kinds is empty: choose from {sorted(KINDS)}")
    # (a kind that is not a str failed in sorted() or set(), in words naming neither)
    bad = _unknown_kinds(kinds)
    if bad:
        raise ValueError(f"unknown kinds {bad}: choose from {sorted(KINDS)}")
    # a kind given twice is one kind
    return tuple(dict.fromkeys(kinds))


# A header name as the NATS client takes it (an HTTP token, around surrounding spaces)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _bad_header(headers: dict) -> str | None:
    # Why the client would not send ``headers`` as given, else None: a name it refuses
    # (the batch was queued and counted, then undelivered in the loop thread) or drops (an
    # empty one), or a value with a line break, which it replaces by a space
    for k, v in headers.items():
        if not _HEADER_NAME.fullmatch(k.strip()):
            return (f"name {k!r}, which the NATS client refuses (a header name is made of "
                    f"letters, digits and !#$%&'*+-.^_`|~)")
        if "\r" in v or "\n" in v:
            return f"value {v!r} for {k!r}: a header value holds no line break"
    return None


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
    that many would not fit in the broker's ``max_payload`` or the stream's ``max_msg_size``
    (``NatsPublisher.max_message``; NATS refuses a larger message: 65,535 L2 records are 2 MiB,
    1,500 trades 66 kB, beyond a 64 kB limit). Vectorised:
    O(records) numpy work and O(symbols) Python work per chunk.

    The replay needs ``record_l2=True`` for the ``l2`` kind (and its default top-of-book and
    trade sinks for the others). ``keep=True`` keeps what was drained (``kept()``) for callers
    that also want the sinks. ``records`` counts the records handed to the publisher per kind.
    A call once the publisher is closed raises ``RuntimeError`` before anything is drained
    (the sinks keep their records), and so does (``TypeError``) a first call with anything but
    a :class:`matchcore.itch.Replayer` (a DBN replay's ``DbnReplayer`` too: no L2 sink, and
    its ids are not ITCH locates).

    Subjects are named by symbol name; locates that carry one name (``shared()``) publish to
    the same subjects with one ``seq`` sequence per subject, each batch holding the records of
    one locate (its header's ``locate``).

    Each ``ReplayPublisher`` publishes one replay: called with another replayer it raises
    ``ValueError`` (make a new one, with the same :class:`NatsPublisher` if you like). Each
    ``ReplayPublisher`` is one publishing session: its batches carry the NATS header
    ``Matchcore-Session`` with ``session`` (a new time-ordered id unless given) and their
    ``seq`` counts from 0 (a ``session`` given, printable ASCII without leading or trailing
    spaces, which the header would not carry, must not be reused by another run: a consumer
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
        if session != session.strip():
            # the client strips a header value: " day1" went out as "day1", and " " as ""
            raise ValueError(f"session must not start or end with a space (the NATS header "
                             f"carries it stripped), got {session!r}")
        kinds = _check_kinds(kinds)
        # the stream was checked for the publisher's kinds only: another kind's batches would
        # find no stream to store them
        other = [k for k in kinds if k not in getattr(publisher, "kinds", KINDS)]
        if other:
            raise ValueError(f"kinds {other} are not among the publisher's kinds "
                             f"{list(publisher.kinds)} (NatsPublisher(kinds=...)), whose "
                             f"subjects its stream was checked for")
        # a whole number: 1.5 and True were taken as 1 record per batch, and a str failed in
        # the comparison naming neither the setting nor its range
        if isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer)) \
                or not 1 <= max_batch <= 0xFFFF:
            raise ValueError(f"max_batch must be an int in 1..65535, got {max_batch!r}")
        self.publisher = publisher
        # a kind given twice is one kind: its announcements were queued twice per book
        self.kinds = kinds
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
        # before the sinks are drained: refused by publish_many() after it, the chunk's
        # records were gone from the replayer, sent nowhere, and counted as handed over
        self.publisher._check_open()
        if self._replayer is None:
            _check_replayer(replayer)
            self._check_sinks(replayer)
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
        records = {}
        for name, kind, src in (("trade", KIND_TRADE, trades), ("tob", KIND_TOB, tob),
                                ("l2", KIND_L2, l2)):
            if name in self.kinds and len(src):
                first = len(out)
                self._encode(replayer, kind, src, out)
                records[KIND_NAMES[kind]] = sum(item[2] for item in out[first:])
        if out:
            self.publisher.publish_many(out)
        # counted once handed over: counted as they were encoded, a Ctrl-C (or a refusal)
        # before publish_many() took them left batches "handed over" that no count of the
        # publisher's held. The subjects' seq went on all the same, so a subscriber of what
        # follows sees the loss as a gap.
        self.batches += len(out)
        for k, n in records.items():
            self.records[k] += n

    def _check_sinks(self, replayer) -> None:
        # a kind whose sink the replay does not fill published nothing, with no word: the
        # subscriber saw no L2 level at all and took the books for empty
        sinks = replayer.sinks          # an itch.Replayer's (_check_replayer)
        missing = [(k, opt) for k, sink, opt in (("trade", "trades", "record_trades"),
                                                 ("tob", "tob", "record_tob"),
                                                 ("l2", "l2", "record_l2"))
                   if k in self.kinds and not sinks[sink]]
        if missing:
            raise ValueError(
                "the replay does not record what these kinds publish: "
                + ", ".join(f"{k} needs the replayer's {opt}=True" for k, opt in missing))

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
        limit = getattr(self.publisher, "max_message", None) or getattr(self.publisher,
                                                                         "max_payload", None)
        if limit:
            # a batch the broker's max_payload does not take was never delivered: refused by
            # the client (MaxPayloadError), or, within the limit but not with its NATS headers,
            # by the broker, which closes the connection; nor was one beyond the stream's
            # max_msg_size. The headers count: NATS/1.0, ours, and a margin for the client's
            # own.
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

    def kept(self) -> dict:
        """What was drained from the sinks (``keep=True``): ``{"tob", "trades", "l2"}`` arrays."""
        from matchcore.itch import L2_DTYPE, TOB_DTYPE, TRADE_DTYPE

        dt = {"tob": TOB_DTYPE, "trades": TRADE_DTYPE, "l2": L2_DTYPE}
        from matchcore._padding import zero_padding

        # np.concatenate leaves the records' padding uninitialised (see zero_padding)
        return {k: zero_padding(np.concatenate(v)) if v else np.empty(0, dt[k])
                for k, v in self._kept.items()}
