"""Prometheus metrics for a replay and for an embedded ``OrderBook`` / ``Engine``.

Nothing here runs per message. The replay loop keeps its counters in C (messages by type,
unknown references, rejects, trades and volume per book); :class:`ReplayMetrics` copies them
once per ``feed()`` buffer (``replay_file(..., on_chunk=metrics.update)``). For an embedded book
or engine, :class:`EngineMetrics` runs ``process()`` through the compiled latency recorder
(per-command service time added to a histogram inside the loop) and counts the batch's events
with numpy. Scrapes read a snapshot taken in the caller's thread, never the live book.

Needs ``prometheus_client``: ``pip install 'matchcore[metrics]'``.

>>> from matchcore.io.metrics import ReplayMetrics, serve_metrics   # doctest: +SKIP
>>> m = ReplayMetrics()                                              # doctest: +SKIP
>>> server = serve_metrics(9108, registry=m.registry)                # doctest: +SKIP
>>> r = itch.replay_file("day.itch", on_chunk=m.update)              # doctest: +SKIP
"""
from __future__ import annotations

import re
import sys
import threading
import weakref

import numpy as np

from matchcore._nocopy import NoCopy

# Upper bucket bounds of the service-time histogram (ns): from a cache-hot add (~100 ns) to a
# stall; Prometheus gets them in seconds.
DEFAULT_LATENCY_BOUNDS_NS = (100, 200, 300, 500, 750, 1_000, 2_000, 5_000, 10_000, 20_000,
                             50_000, 100_000, 1_000_000, 10_000_000)


def _prom():
    try:
        import prometheus_client
        import prometheus_client.core  # noqa: F401  (the *MetricFamily classes of collectors)
    except ImportError:
        raise ImportError("matchcore.io.metrics needs prometheus_client: "
                          "pip install 'matchcore[metrics]'") from None
    return prometheus_client


class MetricsServer(NoCopy):
    """A running ``/metrics`` HTTP endpoint (prometheus_client's server in a daemon thread).

    ``port`` is the bound port (useful when 0 was asked for); ``url`` the scrape address;
    ``close()`` stops it and frees the port.
    """

    _no_copy = ("it is a running HTTP server (a listening socket and its thread)",
                "Start one per process with matchcore.io.metrics.serve_metrics()")

    def __init__(self, server, thread):
        self._server = server
        self._thread = thread
        self.host, self.port = server.server_address[:2]

    @property
    def url(self) -> str:
        # an IPv6 address goes in brackets: http://::1:9108/metrics is no URL
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port. O(1)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _int_or_none(value):
    # an integer argument as the rest of the library takes it: int or a numpy integer (what
    # arithmetic on arrays gives), not a bool, float or str
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    return int(value)


def _label_name(symbol, name):
    """A name of ``EngineMetrics(symbols=)`` as its label takes it: None, or the text of a str
    (as ``Engine.add_symbol`` takes a name). Anything else was labelled by its ``str()``:
    ``b"AAPL"`` (an ITCH stock field) as "b'AAPL'", and a (str, Enum) member as "Cls.MEMBER",
    a label no Engine symbol of that name has."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"symbols: the name of symbol {int(symbol)} must be a str or None, got "
                        f"{type(name).__name__} {name!r}")
    name = str.__str__(name)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        # a lone surrogate (bytes decoded with errors="surrogateescape"): every scrape of the
        # registry failed encoding the page (HTTP 500), the other collectors' metrics with it
        raise ValueError(f"symbols: the name of symbol {int(symbol)}, {name!r}, cannot be "
                         f"encoded as UTF-8 ({exc.reason} at index {exc.start}), as a "
                         f"Prometheus label must be") from None
    return name


def _check_registry(registry, need: tuple = ("collect",)):
    """``registry`` when it has the methods ``need`` (a CollectorRegistry has them all), else
    ``TypeError`` naming it: taken, a wrong one failed in every scrape (HTTP 500) or in
    prometheus_client's words."""
    if registry is not None and not all(callable(getattr(registry, m, None)) for m in need):
        raise TypeError(f"registry must be a prometheus_client CollectorRegistry, got "
                        f"{type(registry).__name__} {registry!r}")
    return registry


def _bind_host(addr: str) -> str:
    """The host to bind for ``addr``: a host name or IP address, an IPv6 one also in the
    brackets of a URL (``[::1]``, as :attr:`MetricsServer.url` writes it). ``ValueError``
    naming ``addr`` for anything else: a port, scheme or path in it, or blanks around it went
    to the name lookup and came back as "Name or service not known" beside a URL made of it
    (``http://[127.0.0.1:9108]:0/metrics``)."""
    import ipaddress

    bracketed = addr.startswith("[") and addr.endswith("]")
    host = addr[1:-1] if bracketed else addr
    # brackets hold an IPv6 address only; a colon outside them is a port
    ok = host == host.strip() and not any(c in host for c in "/[]") and (
        ":" in host if bracketed else True)
    if ok and ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"metrics addr {addr!r} is not a host name or IP address: give the "
                         f"host alone (the port as port=, no scheme or path; an IPv6 address "
                         f"as ::1 or [::1])")
    return host


def serve_metrics(port: int = 0, addr: str = "127.0.0.1", registry=None) -> MetricsServer:
    """Serve ``registry`` (default: prometheus_client's global one) at
    ``http://addr:port/metrics`` from a background thread; ``port=0`` picks a free port.

    ``addr`` is a host name or IP address (an IPv6 one also in brackets, ``"[::1]"``, as
    ``url`` writes it). Raises ``ValueError`` for a port outside 0..65535, an empty ``addr``
    (``"0.0.0.0"`` or ``"::"`` serve on every interface) or one with a port, scheme, path or
    blanks in it (``"127.0.0.1:9108"``), ``TypeError`` for an ``addr`` that is not a str or a
    ``registry`` that is not one, and ``OSError`` when the port is taken.

    >>> from matchcore.io.metrics import EngineMetrics, serve_metrics    # doctest: +SKIP
    >>> m = EngineMetrics(engine)                                         # doctest: +SKIP
    >>> with serve_metrics(9108, registry=m.registry) as srv:             # doctest: +SKIP
    ...     events = m.process(commands)
    """
    prom = _prom()
    if _int_or_none(port) is None or not 0 <= port <= 65535:
        raise ValueError(f"metrics port must be an int in 0..65535, got {port!r}")
    port = int(port)
    if not isinstance(addr, str):
        # 5 was refused in getaddrinfo()'s words, None served on every interface
        raise TypeError(f"metrics addr must be a str (a host name or IP address), got "
                        f"{type(addr).__name__} {addr!r}")
    if not addr.strip():
        # the name lookup refused it ("Name or service not known", at http://:0/metrics),
        # where Python's own servers take "" for every interface
        raise ValueError(f"metrics addr {addr!r} names no host: give a host name or IP address "
                         f"('0.0.0.0' or '::' to serve on every interface)")
    addr = _bind_host(addr)
    if _check_registry(registry) is None:
        registry = prom.REGISTRY
    try:
        server, thread = prom.start_http_server(port, addr=addr, registry=registry)
    except OSError as e:
        # the socket's own words ("Address already in use") named neither address nor port
        where = f"[{addr}]" if ":" in addr else addr
        why = f"[Errno {e.errno}] {e.strerror}" if e.errno and e.strerror else str(e)
        # errno kept for callers; the message leads with what failed, the errno after it
        err = OSError(f"cannot serve metrics at http://{where}:{port}/metrics: {why}")
        err.errno = e.errno
        raise err from None
    return MetricsServer(server, thread)


def _family(prom, kind, name, doc, labels=(), unit=""):
    cls = {"counter": prom.core.CounterMetricFamily, "gauge": prom.core.GaugeMetricFamily}[kind]
    return cls(name, doc, labels=list(labels), unit=unit)


# The families each collector exports (kind, name without prefix), for describe(): without
# it prometheus_client cannot see that two collectors on one registry export the same names,
# and a scrape then carries each duplicated family twice.
_REPLAY_FAMILIES = (
    ("counter", "messages"), ("counter", "unknown_message_types"),
    ("counter", "bad_length_prefixes"), ("counter", "bytes"), ("counter", "unknown_refs"),
    ("gauge", "unknown_refs_undecided"),
    ("counter", "sequence_gaps"), ("counter", "messages_missing"),
    ("counter", "sequence_implausible"), ("counter", "replay_chunks"),
    ("counter", "rejects"), ("counter", "clamped"), ("counter", "trades"),
    ("counter", "volume_shares"), ("gauge", "open_orders"), ("gauge", "books"),
    ("gauge", "replay_done"), ("gauge", "truncated"), ("gauge", "last_exchange_time_seconds"))
_ENGINE_FAMILIES = (
    ("counter", "events"), ("counter", "rejects"), ("counter", "fills"),
    ("counter", "volume_lots"), ("counter", "commands"), ("gauge", "open_orders"),
    ("histogram", "service_time_seconds"))


def _own(snap: dict) -> dict:
    # A snapshot for the caller: its nested dicts copied (their values are ints and tuples), so
    # that editing it cannot change what the next scrape exports; arrays in it are read-only.
    return {k: dict(v) if isinstance(v, dict) else v for k, v in snap.items()}


def _read_only(a):
    a.flags.writeable = False
    return a


# What ReplayMetrics exports before its first update: the counts of a replay not yet started.
_NO_REPLAY = {
    "messages": 0, "counts": {}, "unknown_types": {}, "bad_lengths": 0, "bytes": 0,
    "unknown_refs": 0, "unknown_refs_undecided": 0,
    "rejects": {"invalid_add": 0, "duplicate_ref": 0, "invalid_replace": 0,
                "invalid_reduction": 0, "invalid_trade": 0, "out_of_memory": 0},
    "clamped": {"execution": 0, "cancel": 0}, "books": 0, "truncated": 0, "last_ts": 0,
    "done": 0, "gaps": 0, "missing": 0, "implausible": 0, "per_symbol": {}, "chunks": 0}


def _describe(prom, prefix, families):
    for kind, name in families:
        if kind == "histogram":
            yield prom.core.HistogramMetricFamily(f"{prefix}_{name}", "")
        else:
            yield _family(prom, kind, f"{prefix}_{name}", "")


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _check_prefix(prefix) -> str:
    # prometheus_client rewrites an invalid name at scrape time (my-app -> my_app): the
    # families exported were not those asked for, and two prefixes rewritten alike ("a-b",
    # "a_b") passed the duplicate check at registration and exported every family twice
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str (the start of every metric name), got "
                        f"{type(prefix).__name__}")
    if not _METRIC_NAME.fullmatch(prefix):
        raise ValueError(f"prefix {prefix!r} does not start a Prometheus metric name: "
                         f"letters, digits, '_' and ':', not starting with a digit")
    return prefix


def _register(collector) -> None:
    try:
        collector.registry.register(collector)
    except ValueError as e:         # prometheus_client: "Duplicated timeseries in ..."
        raise ValueError(
            f"{type(collector).__name__}(prefix={collector.prefix!r}) exports metric names "
            f"another collector of this registry already exports ({e}); give it its own "
            f"registry or another prefix") from None


class ReplayMetrics(NoCopy):
    """Prometheus metrics of an ITCH replay, copied from the replay's own C counters once per
    chunk (``update``); the values are exactly those of ``Replayer.stats`` and
    ``Replayer.symbol_stats()`` at the last update (``stats["unknown_refs"]`` split in two
    while part of it is undecided, below).

    Exported (prefix ``matchcore_``): ``messages_total{type}``, ``unknown_message_types_total
    {type}``, ``bad_length_prefixes_total``, ``bytes_total``, ``unknown_refs_total``,
    ``unknown_refs_undecided``,
    ``rejects_total{reason}`` (invalid_add, duplicate_ref, invalid_replace,
    invalid_reduction, invalid_trade, out_of_memory), ``clamped_total{kind}``
    (execution, cancel), ``sequence_gaps_total``, ``messages_missing_total`` and
    ``sequence_implausible_total`` (from a MoldUDP64 receiver's stats when given),
    ``trades_total{symbol}``, ``volume_shares_total{symbol}``,
    ``open_orders{symbol}``, ``books``, ``truncated``, ``last_exchange_time_seconds``,
    ``replay_chunks_total``, ``replay_done`` (1 after the final update). Before the first
    update every family is exported at 0; the series labelled by symbol or message type
    appear as those do.

    ``replay_chunks_total`` counts the updates that saw new bytes consumed by ``feed()``, i.e.
    the buffers fed; an update of a finished replayer (after ``finish()``, which may consume
    bytes ``feed()`` kept back) and the ``final`` one do not count.
    ``last_exchange_time_seconds`` is the ITCH timestamp: seconds since midnight of the trading
    day, not a Unix time.

    ``unknown_refs_total`` counts the unknown references that stay counted; references to a
    locate before its first order count only if that order keeps the locate, which a stock
    directory message renaming it can still change: until then they are the gauge
    ``unknown_refs_undecided``, which may fall, and once the stream has ended (or stopped at
    ``until_ns``) the counter takes those still undecided. The two add up to
    ``stats["unknown_refs"]``.

    One ``ReplayMetrics`` can follow several replays one after another (a file a day on one
    endpoint): an update with another replayer starts its counts again, labelled with that
    replay's symbol names.

    ``registry``: a ``prometheus_client.CollectorRegistry`` (a new one by default, so several
    replays in one process do not collide). ``prefix`` starts every name: letters, digits,
    ``_`` and ``:``, not a digit first (``ValueError`` otherwise). A registry that already
    holds a collector exporting the same names (an :class:`EngineMetrics` or another
    ``ReplayMetrics`` with the same ``prefix``) is refused with ``ValueError``. O(books) per
    update.

    >>> import matchcore.itch as itch                                     # doctest: +SKIP
    >>> m = ReplayMetrics()                                               # doctest: +SKIP
    >>> r = itch.replay_file("day.itch", on_chunk=m.update)               # doctest: +SKIP
    >>> m.snapshot()["messages"] == r.stats["messages"]                   # doctest: +SKIP
    True
    """

    _no_copy = ("its collectors are registered in a prometheus_client CollectorRegistry of this "
                "process, which a copy would not be exported by",
                "Make one per process; pickle m.snapshot() to carry the values")

    def __init__(self, registry=None, prefix: str = "matchcore"):
        prom = _prom()
        self._prom = prom
        self.prefix = _check_prefix(prefix)
        _check_registry(registry, ("register", "collect"))
        self.registry = prom.CollectorRegistry() if registry is None else registry
        self._lock = threading.Lock()
        self._snap = None
        self._names: dict[int, str] = {}
        self._names_key = None      # (books, stock directory messages) when _names was made
        self._chunks = 0
        self._bytes_seen = 0
        # the replayer followed, weakly: its id() alone told a replayer made at a freed one's
        # address for the same replay (the day before's labels and chunk count went on), and
        # a strong reference would keep a finished replay's books alive until the next one
        self._replayer_ref = None
        _register(self)

    def update(self, replayer, feed_stats=None, final: bool = False) -> None:
        """Copy the counters of ``replayer`` (an ``itch.Replayer``) and, optionally, of a MoldUDP64
        receiver's ``ReceiverStats`` (sequence gaps; an update without ``feed_stats`` keeps
        the last ones given). Call it per chunk (it is the ``on_chunk`` of ``replay_file``),
        not per message; ``final=True`` once at the end sets ``matchcore_replay_done`` to 1,
        for good: a later update of that replay raises ``ValueError`` (an update with another
        replayer starts a new replay). O(books)."""
        from matchcore._core import _flag_arg
        from matchcore.itch import Replayer
        final = _flag_arg(final, "final")   # before any state changes
        if not isinstance(replayer, Replayer):
            # a DbnReplayer (its counters are others) failed with an AttributeError on a
            # method it lacks
            raise TypeError(f"ReplayMetrics.update() needs an itch.Replayer, got "
                            f"{type(replayer).__name__} (the metrics are those of ITCH replays)")
        if feed_stats is not None and not all(hasattr(feed_stats, a)
                                              for a in ("gaps", "missing", "implausible")):
            # ("'dict' object has no attribute 'gaps'" named neither update() nor feed_stats)
            raise TypeError(f"ReplayMetrics.update() needs feed_stats as a MoldUDP64 "
                            f"ReceiverStats or None, got {type(feed_stats).__name__}")
        s = replayer.stats
        per = replayer.symbol_stats()
        # Another replay (a replayer of its own, or fewer bytes than seen: the next file read
        # with the same metrics) starts the counts again; its locates name other symbols.
        last = self._replayer_ref() if self._replayer_ref is not None else None
        new_replay = last is not replayer or s["bytes_consumed"] < self._bytes_seen
        with self._lock:
            done = self._snap is not None and self._snap["done"]
        if done and not new_replay:
            # a later update set replay_done back to 0: a finished replay seen running again
            raise ValueError("ReplayMetrics.update(): this replay is done (after its final "
                             "update); another replayer starts a new one")
        # names are only looked up when books appear, a stock directory message arrives (it
        # may rename a locate mid-replay, whose trades went on under its old name) or another
        # replay starts: the labels of the first replay's locates were kept, a second day's
        # AAPL counted under the first day's name of its locate, and a locate the first did not
        # have was a KeyError
        names_key = (len(per), s["counts"].get("R", 0))
        if new_replay or names_key != self._names_key:
            from matchcore.io import book_labels

            # a name several books carry labels each NAME@locateN, as the replay summary and
            # a NATS subscriber name them; the key noted only once they are read (a replayer
            # feeding in another thread meanwhile raises BusyError here, and the key noted
            # first left the names unread for the rest of the replay)
            names = book_labels(replayer.symbols, per["locate"].tolist())
            self._names_key = names_key
            self._names = names
        # A counter must never fall: the references of locates with no first order yet count
        # only if that order keeps the locate, and a rename before it took them out of
        # stats["unknown_refs"] again (a scrape read that as a restart). They are a gauge until
        # nothing can change them any more: the stream has ended or stopped.
        undecided = 0 if (final or replayer.finished or replayer.done) else \
            s["unknown_refs_undecided"]
        snap = {
            "messages": s["messages"], "counts": dict(s["counts"]),
            "unknown_types": dict(s["unknown_types"]), "bad_lengths": s["bad_lengths"],
            "bytes": s["bytes_consumed"], "unknown_refs": s["unknown_refs"] - undecided,
            "unknown_refs_undecided": undecided,
            "rejects": {"invalid_add": s["invalid_adds"], "duplicate_ref": s["duplicate_refs"],
                        "invalid_replace": s["invalid_replaces"],
                        "invalid_reduction": s["invalid_reductions"],
                        "invalid_trade": s.get("invalid_trades", 0),
                        "out_of_memory": s["out_of_memory"]},
            "clamped": {"execution": s["executions_clamped"], "cancel": s["cancels_clamped"]},
            "books": s["books"], "truncated": 1 if s["truncated"] else 0,
            "last_ts": s["last_ts"], "done": 1 if final else 0,
            "gaps": len(feed_stats.gaps) if feed_stats is not None else None,
            "missing": int(feed_stats.missing) if feed_stats is not None else None,
            "implausible": int(feed_stats.implausible) if feed_stats is not None else None,
            "per_symbol": {},
        }
        per_symbol = snap["per_symbol"]
        for row in per:
            loc = int(row["locate"])
            per_symbol[self._names.get(loc, str(loc))] = (
                int(row["trades"]), int(row["volume"]), int(row["open_orders"]))
        with self._lock:
            if new_replay:
                self._replayer_ref = weakref.ref(replayer)
                self._chunks = self._bytes_seen = 0
            # an update without feed_stats (the final one after finish(), say) keeps the
            # receiver's last counts of this replay: they are counters, and went back to 0
            for key in ("gaps", "missing", "implausible"):
                if snap[key] is None:
                    snap[key] = self._snap[key] if self._snap is not None and not new_replay \
                        else 0
            # replay_file calls on_chunk once more after finish() and the caller adds a final
            # update: only an update that saw new bytes consumed by feed() stands for a buffer
            # fed. finish() consumes what feed() kept back (the messages after a bad length
            # prefix at the end of the stream), which counted one chunk too many.
            if not final and not replayer.finished and s["bytes_consumed"] > self._bytes_seen:
                self._chunks += 1
            self._bytes_seen = max(self._bytes_seen, s["bytes_consumed"])
            snap["chunks"] = self._chunks
            self._snap = snap

    def snapshot(self) -> dict | None:
        """The values as of the last :meth:`update` (None before the first): the caller's own
        copy, nested dicts included (changing it changes nothing exported)."""
        with self._lock:
            return None if self._snap is None else _own(self._snap)

    def collect(self):
        """prometheus_client collector protocol: yields the metric families (scrape thread)."""
        with self._lock:
            s = self._snap
        if s is None:
            # before the first update: every family at 0, as a Prometheus client exports its
            # metrics without labels from the start (a scrape then got an empty page)
            s = _NO_REPLAY
        p, prom = self.prefix, self._prom
        fam = _family(prom, "counter", f"{p}_messages", "ITCH messages replayed, by type", ["type"])
        for t, n in sorted(s["counts"].items()):
            fam.add_metric([t], n)
        yield fam
        fam = _family(prom, "counter", f"{p}_unknown_message_types",
                      "messages of an unknown type, skipped by length", ["type"])
        for t, n in sorted(s["unknown_types"].items()):
            fam.add_metric([t if isinstance(t, str) else repr(t)], n)
        yield fam
        for name, doc, key in (
                ("bad_length_prefixes", "length prefixes that disagree with the type", "bad_lengths"),
                ("bytes", "bytes consumed by the replay loop", "bytes"),
                ("unknown_refs", "order messages whose reference no book holds", "unknown_refs"),
                ("sequence_gaps", "sequence gaps seen by the MoldUDP64 receiver", "gaps"),
                ("messages_missing", "messages in those gaps", "missing"),
                ("sequence_implausible", "MoldUDP64 packets more than max_gap ahead, held until "
                 "confirmed", "implausible"),
                ("replay_chunks", "buffers fed to the replay loop", "chunks")):
            yield prom.core.CounterMetricFamily(f"{p}_{name}", doc, value=s[key])
        yield prom.core.GaugeMetricFamily(
            f"{p}_unknown_refs_undecided", "references to locates before their first order, "
            "counted in unknown_refs_total once that order keeps the locate",
            value=s["unknown_refs_undecided"])
        fam = _family(prom, "counter", f"{p}_rejects", "order messages the books refused, by "
                      "reason", ["reason"])
        for reason, n in s["rejects"].items():
            fam.add_metric([reason], n)
        yield fam
        fam = _family(prom, "counter", f"{p}_clamped", "executions / cancels larger than the "
                      "open qty (clamped)", ["kind"])
        for kind, n in s["clamped"].items():
            fam.add_metric([kind], n)
        yield fam
        trades = _family(prom, "counter", f"{p}_trades", "trade records (E, C, P, Q) per symbol",
                         ["symbol"])
        volume = _family(prom, "counter", f"{p}_volume_shares", "shares traded per symbol",
                         ["symbol"])
        orders = _family(prom, "gauge", f"{p}_open_orders", "orders resting per symbol", ["symbol"])
        for sym, (n, v, o) in sorted(s["per_symbol"].items()):
            trades.add_metric([sym], n)
            volume.add_metric([sym], v)
            orders.add_metric([sym], o)
        yield trades
        yield volume
        yield orders
        yield prom.core.GaugeMetricFamily(f"{p}_books", "books being built", value=s["books"])
        yield prom.core.GaugeMetricFamily(f"{p}_replay_done", "1 once the replay has finished",
                                          value=s["done"])
        yield prom.core.GaugeMetricFamily(f"{p}_truncated", "1 when the stream ended mid-message",
                                          value=s["truncated"])
        yield prom.core.GaugeMetricFamily(f"{p}_last_exchange_time_seconds",
                                          "exchange timestamp of the last message, in seconds "
                                          "since midnight of the trading day (not a Unix time)",
                                          value=s["last_ts"] / 1e9)

    def describe(self):
        """The metric families :meth:`collect` yields, without values: the registry checks
        them against its other collectors at registration."""
        return _describe(self._prom, self.prefix, _REPLAY_FAMILIES)


class EngineMetrics(NoCopy):
    """Prometheus metrics of an embedded ``OrderBook`` or ``Engine`` (a simulator with Grafana
    on it).

    ``process(commands)`` applies a ``COMMAND_DTYPE`` batch through the compiled latency
    recorder (each command's service time goes into a histogram inside the loop, no Python per
    command) and then counts its events; ``observe(events)`` counts events you obtained
    yourself (``process()`` / ``events()``). Counting is vectorised over the batch.

    Exported (prefix ``matchcore_``): ``events_total{kind}``, ``rejects_total{reason}``,
    ``fills_total{symbol}``, ``volume_lots_total{symbol}`` (fill qty), ``commands_total``,
    ``service_time_seconds`` (histogram, buckets ``latency_bounds_ns``; with
    ``sample_every=k`` one command in k is timed), ``open_orders``. From its creation every
    kind of ``EventKind``, every reason of ``Reason`` and the fills and volume of every symbol
    known then (the ids of ``symbols``, an Engine's symbols) are exported, at 0 until counted;
    a symbol added later appears with its first fill. ``open_orders`` is the target's count of
    resting orders, read at creation and after every call (a book that another thread's call
    took as a ``process()`` batch ended keeps the last reading: the batch is counted and
    returned). ``snapshot()`` holds the nonzero counts.
    ``symbols`` maps event symbol ids (integers in [0, 2**32): another key raises ``TypeError``,
    one outside ``ValueError``) to label names (a ``str``, taken as its text, or None; another
    name raises ``TypeError``, one that cannot be encoded as UTF-8 ``ValueError``, as
    ``Engine.add_symbol`` refuses them) (for an Engine, its symbol names are used by default; an unnamed symbol's label is its id, as is
    a None or empty name in ``symbols``); symbols that share a label are added together. A ``registry`` that
    already holds a collector exporting the same names (a :class:`ReplayMetrics` with the same
    ``prefix``: both export ``rejects_total`` and ``open_orders``) is refused with ``ValueError``.
    O(batch) per call.

    >>> import numpy as np, matchcore as mc                               # doctest: +SKIP
    >>> m = EngineMetrics(mc.Engine())                                    # doctest: +SKIP
    >>> events = m.process(commands)      # same events as engine.process # doctest: +SKIP
    """

    _no_copy = ("its collectors are registered in a prometheus_client CollectorRegistry of this "
                "process and it drives a live book or engine",
                "Make one per process around that process's book or engine")

    def __init__(self, target, registry=None, *, prefix: str = "matchcore", symbols=None,
                 latency_bounds_ns=DEFAULT_LATENCY_BOUNDS_NS, clock: str = "auto",
                 sample_every: int = 1):
        from matchcore import Engine, EventKind, OrderBook, Reason
        from matchcore._timing import resolve_clock

        prom = _prom()
        if not isinstance(target, (OrderBook, Engine)):
            recorder = sys.modules.get("matchcore.native")
            if recorder is not None and isinstance(target, recorder.Recorder):
                # the session object of a recorded book, which it is not: say which is
                raise TypeError("EngineMetrics needs an OrderBook or an Engine, got a "
                                "native.Recorder: give it the book, EngineMetrics(rec.book), "
                                "and count the calls through the Recorder with "
                                "metrics.observe(rec.process(commands))")
            raise TypeError(f"EngineMetrics needs an OrderBook or an Engine, got "
                            f"{type(target).__name__}")
        try:
            bounds = np.asarray(latency_bounds_ns, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            # not numbers, or an int beyond any float (no finite bound): refused below in the
            # words of every other case
            bounds = None
        # finite: NaN passed the ascending check and failed every process(); inf was a bucket
        # le="inf" beside the +Inf one that every histogram has
        if bounds is None or bounds.ndim != 1 or len(bounds) == 0 \
                or not np.isfinite(bounds).all() or (np.diff(bounds) <= 0).any() \
                or bounds[0] <= 0:
            raise ValueError("latency_bounds_ns must be finite, positive and strictly ascending "
                             "(the +Inf bucket is always there)")
        _check_prefix(prefix)
        _check_registry(registry, ("register", "collect"))
        try:
            symbols = dict(symbols) if symbols is not None else None
        except (TypeError, ValueError):
            raise TypeError(f"symbols must map symbol ids to label names ({{id: name}}, or "
                            f"(id, name) pairs), got {type(symbols).__name__} "
                            f"{symbols!r}") from None
        bad = next((k for k in symbols or () if _int_or_none(k) is None), None)
        if bad is not None:
            # a key such as "1" (a mapping read from JSON) never matched an event's symbol id:
            # the name given went unused, the fills counted under the id
            raise TypeError(f"symbols must map integer symbol ids to label names, got the key "
                            f"{bad!r} ({type(bad).__name__})")
        bad = next((k for k in symbols or () if not 0 <= k < 2**32), None)
        if bad is not None:
            # no event carries it (their symbol is uint32): its name labelled nothing, and its
            # series was exported at 0 for good
            raise ValueError(f"symbols: symbol id {int(bad)} is outside [0, 2**32) (the ids "
                             f"events carry)")
        if symbols:
            # ids as the plain ints events carry: an unnamed symbol is labelled by its id, and
            # str() of an (int, Enum) member given as one is "Cls.MEMBER", a series at 0 for
            # good beside the one its fills were counted under
            symbols = {int(k): _label_name(k, v) for k, v in symbols.items()}
        # (beyond int64 it was taken, and every process() failed converting it to C)
        if _int_or_none(sample_every) is None or not 1 <= sample_every < 2**63:
            raise ValueError(f"sample_every must be an int in [1, 2**63), got {sample_every!r}")
        self.sample_every = int(sample_every)
        self._skip = 0                  # commands before the next timed one
        self.clock = resolve_clock(clock)
        self._prom = prom
        self.target = target
        self.prefix = prefix
        self.registry = prom.CollectorRegistry() if registry is None else registry
        self.bounds_ns = bounds
        self._kinds = {int(k): k.name.lower() for k in EventKind}
        self._reasons = {int(r): r.name.lower() for r in Reason}
        self._fill = int(EventKind.FILL)
        self._rejected = int(EventKind.REJECTED)
        self._symbols = symbols
        # every kind, reason and symbol known now is exported from the start, at 0 until
        # counted: a series that appeared with its first count had rate() miss that count
        names = target.symbols if isinstance(target, Engine) else None
        known = dict.fromkeys(symbols or ())
        known.update(dict.fromkeys(names or ()))
        self._zero_labels = tuple(dict.fromkeys(self._label(s, names) for s in known))
        self._lock = threading.Lock()          # the view a scrape reads
        # the counts, updated by one process()/observe() at a time (their callers may be
        # several threads); reentrant: process() counts through observe()
        self._counting = threading.RLock()
        self._hist = np.zeros(len(bounds) + 2, dtype=np.int64)
        self._events = np.zeros(256, dtype=np.int64)
        self._rejects = np.zeros(256, dtype=np.int64)
        self._fills: dict[int, list[int]] = {}
        self._commands = 0
        # the gauge is a reading of the target, which may hold orders already (a recovered
        # engine, a seeded book): it read 0 until the first process() or observe()
        self._open = len(target)
        self._view = self._state()
        _register(self)

    def _label(self, symbol: int, names) -> str:
        # names: the target's symbols (Engine: {id: name or None}), read once per call by the
        # caller: Engine.symbols makes a dict of every symbol, and read here per symbol it made
        # each observe() O(symbols**2)
        if self._symbols is not None and symbol in self._symbols:
            # a None or empty name is an unnamed symbol's, as an Engine's: labelled by its id,
            # not "None" nor "" (an empty label value is no label to Prometheus)
            name = self._symbols[symbol]
            return str(symbol) if name is None or not str(name) else str(name)
        if isinstance(names, dict) and names.get(symbol):
            return str(names[symbol])
        return str(symbol)

    def process(self, commands) -> np.ndarray:
        """Apply ``commands`` (``COMMAND_DTYPE``) to the book or engine, timing every command in
        compiled code into the service-time histogram; returns the events, exactly those of
        ``target.process(commands)``, after counting them. Memory running out part way raises
        MemoryError (``applied``: the commands that stay applied) after counting those
        commands and their events (not the events when they were lost with the memory, or
        when no memory was left to count them: the commands and the open-order gauge are still
        counted). A whole batch whose events cannot be counted raises MemoryError too
        (``applied``: all of it; ``events``: its events). An ``Engine`` is held from the batch
        to its counting: another thread's call on it meanwhile raises
        :class:`~matchcore.BusyError`, as during ``engine.process()``. O(n + fills).

        >>> events = m.process(commands)                                   # doctest: +SKIP
        """
        from matchcore import COMMAND_DTYPE
        from matchcore._timing import process_histogram

        # the array checked here, before any work: process_histogram()'s own refusal named
        # that private function, which the caller never called
        arr = np.asarray(commands)
        if arr.dtype is not COMMAND_DTYPE and arr.dtype != COMMAND_DTYPE:
            raise TypeError(f"EngineMetrics.process() needs commands as an array of "
                            f"matchcore.COMMAND_DTYPE, got {arr.dtype}")
        if arr.ndim != 1:
            raise ValueError(f"EngineMetrics.process() needs commands as a 1-D array, got "
                             f"shape {arr.shape}")
        if getattr(self.target, "journal", None) is not None:
            # the timed loop calls the C apply directly: it would bypass the journal (refused
            # further down with a message about the C table and Numba, which names no way out)
            raise ValueError("EngineMetrics.process() times commands in a compiled loop that "
                             "would bypass the engine's journal: for a journaled engine call "
                             "events = engine.process(commands) and metrics.observe(events) "
                             "(no service-time histogram)")
        recorder = sys.modules.get("matchcore.native")      # no Recorder without it
        if recorder is not None and recorder._recording(self.target):
            # refused further down in the words of a private function, advising to time a
            # copy, whose events would have been counted instead of the live book's
            raise ValueError("EngineMetrics.process() times commands in a compiled loop that "
                             "would bypass the native.Recorder journaling this book: call "
                             "events = rec.process(commands) and metrics.observe(events) (no "
                             "service-time histogram)")
        from contextlib import nullcontext

        from matchcore import Engine

        # An engine is held from its batch to the batch's counting, which reads it (the
        # open-order gauge, the symbol names): another thread's call in between (a pickle, a
        # snapshot file) made that read raise BusyError for a batch that had run, its events
        # neither returned nor counted. That other call is now the one refused, as any call
        # on a busy engine is.
        with self.target._holding("EngineMetrics.process()") if isinstance(self.target, Engine) \
                else nullcontext():
            # The batch's service times go into a histogram of its own, added to the totals
            # with its commands and events: written into the totals as the batch ran, they
            # were exported by another thread's observe() in between (a book is not held
            # there) before the commands they timed were counted.
            hist = np.zeros_like(self._hist)
            # one command in sample_every across calls: each call timed its first command, so
            # batches smaller than sample_every had every command timed
            try:
                events = process_histogram(self.target, arr, self.bounds_ns, hist,
                                           self.clock, self.sample_every, self._skip)
            except MemoryError as e:
                # out of memory part way: the commands before it stay applied, and are counted
                # with their service times and their events, as a whole batch's
                applied = getattr(e, "applied", None)
                if applied is not None and not self._count_applied(
                        applied, getattr(e, "events", None), hist):
                    e.args = (f"{e} (their events are not counted: no memory was left to count "
                              f"them)",)
                raise
            n = int(arr.size)
            if not self._count_applied(n, events, hist):
                # the batch is applied and its events made, but there was no memory left to count
                # them: raised as a batch that ran out of memory is, with what the caller needs
                exc = MemoryError(f"matchcore: out of memory counting the events of {n} commands "
                                  f"(applied; their events are in .events, not counted)")
                exc.applied = n
                exc.events = events
                raise exc
            return events

    def _count_applied(self, n: int, events, hist) -> bool:
        """Count ``n`` applied commands, their service times (``hist``, laid out as the totals)
        and their ``events`` (None: lost with the memory, not counted). False when there were
        events and no memory was left to count them: none is counted then (the commands,
        their service times and the open-order gauge still are)."""
        from matchcore import EVENT_DTYPE

        with self._counting:
            self._skip = (self._skip - n) % self.sample_every
            self._commands += n
            self._hist += hist
            if events is not None:
                try:
                    self._observe(events, ran=True)
                    return True
                except MemoryError:
                    pass        # observe() counts all of a batch or none of it
            self._observe(np.empty(0, EVENT_DTYPE), ran=True)   # the gauge and the scrape's view
            return events is None

    def observe(self, events) -> None:
        """Count a batch of ``EVENT_DTYPE`` events (by kind, rejects by reason, fills and volume
        per symbol) and refresh the open-order gauge. An engine busy in another thread raises
        :class:`~matchcore.BusyError` before anything is counted. Calls from several threads
        count one after the other. O(len(events))."""
        self._observe(events, ran=False)

    def _observe(self, events, ran: bool) -> None:
        # ran: the events of a batch process() has applied, which are counted whatever happens
        # to the target next
        from matchcore import EVENT_DTYPE, BusyError

        ev = np.asarray(events)
        if ev.dtype != EVENT_DTYPE:
            raise TypeError(f"observe() needs an EVENT_DTYPE array, got {ev.dtype}")
        if ev.ndim != 1:
            # numpy's "object too deep for desired array" named neither observe() nor events
            raise ValueError(f"observe() needs a 1-D array of events, got shape {ev.shape}")
        # every figure of the batch first, then all added at once: memory running out part way
        # counted the event kinds and not the fills behind them
        add_events = add_rejects = None
        add_fills = []
        if len(ev):
            # column views and masks only: boolean indexing of whole 64-byte records costs
            # ~10x more
            kinds = ev["kind"]
            add_events = np.bincount(kinds, minlength=256)[:256]
            rej = ev["reason"][kinds == self._rejected]
            if len(rej):
                add_rejects = np.bincount(rej, minlength=256)[:256]
            is_fill = kinds == self._fill
            sym = ev["symbol"][is_fill]
            if len(sym):
                qty = ev["qty"][is_fill]
                if int(sym.max()) < (1 << 20):        # small ids: one bincount, no sort
                    keys, inv = None, sym
                else:
                    keys, inv = np.unique(sym, return_inverse=True)
                counts = np.bincount(inv)
                # bounded without summing: an int64 sum of the batch wraps beyond 2**63 - 1
                if len(qty) * int(qty.max()) < (1 << 53):   # float64 sums of these are exact
                    vol = np.bincount(inv, weights=qty).astype(np.int64)
                else:                                       # Python ints: exact at any size
                    vol = np.zeros(len(counts), dtype=object)
                    np.add.at(vol, inv, qty.astype(object))
                add_fills = [(i if keys is None else int(keys[i]), int(counts[i]), int(vol[i]))
                             for i in np.flatnonzero(counts).tolist()]   # one per symbol
        # One thread's counts at a time, up to the view they make: another thread's observe()
        # adding a symbol while this one built the view from the totals raised RuntimeError
        # (the dict changed size during iteration) after this batch was counted, and the
        # read-add-write of a total lost the other's counts.
        with self._counting:
            # the target read before anything is counted: an engine another thread holds
            # raises BusyError here, and a refusal after the counts were added counted a retry
            # twice
            try:
                open_orders = len(self.target)
            except BusyError:
                if not ran:
                    raise
                # A book (an Engine is held until here) that another thread's call took after
                # the batch: raising now lost an applied batch's events, and a retry applied it
                # twice. The gauge keeps its last reading until a call can read the book.
                open_orders = self._open
            names = getattr(self.target, "symbols", None) if self._fills or add_fills else None
            if add_events is not None:
                self._events += add_events
            if add_rejects is not None:
                self._rejects += add_rejects
            for key, n, v in add_fills:
                acc = self._fills.setdefault(key, [0, 0])
                acc[0] += n
                acc[1] += v
            self._open = open_orders
            view = self._state(names)
            with self._lock:
                self._view = view

    def _state(self, names=None) -> dict:
        # Symbols that share a label (a symbols= mapping that groups ids, or an unnamed symbol
        # whose id is another's name) are added together: one series per label set, and no
        # symbol's fills overwritten by another's. names: the target's symbols, read by the
        # caller before it counted anything.
        fills: dict[str, tuple[int, int]] = {}
        for s, (n, v) in self._fills.items():
            label = self._label(s, names)
            n0, v0 = fills.get(label, (0, 0))
            fills[label] = (n0 + n, v0 + v)
        return {
            "events": {self._kinds.get(k, str(k)): int(n)
                       for k, n in enumerate(self._events.tolist()) if n},
            "rejects": {self._reasons.get(r, str(r)): int(n)
                        for r, n in enumerate(self._rejects.tolist()) if n},
            "fills": fills,
            "hist": _read_only(self._hist.copy()),
            "commands": self._commands,
            "open_orders": self._open,
        }

    def snapshot(self) -> dict:
        """The values as of the last ``process`` / ``observe`` call: the caller's own copy,
        nested dicts included; the histogram array is read-only (changing the snapshot changes
        nothing exported)."""
        with self._lock:
            return _own(self._view)

    def collect(self):
        """prometheus_client collector protocol: yields the metric families (scrape thread)."""
        with self._lock:
            s = self._view
        p, prom = self.prefix, self._prom
        # the snapshot holds the nonzero counts; the rest are exported at 0
        events = dict.fromkeys(self._kinds.values(), 0)
        events.update(s["events"])
        rejects = dict.fromkeys(self._reasons.values(), 0)
        rejects.update(s["rejects"])
        per_symbol = dict.fromkeys(self._zero_labels, (0, 0))
        per_symbol.update(s["fills"])
        fam = _family(prom, "counter", f"{p}_events", "book events by kind", ["kind"])
        for k, n in sorted(events.items()):
            fam.add_metric([k], n)
        yield fam
        fam = _family(prom, "counter", f"{p}_rejects", "rejected orders by reason", ["reason"])
        for r, n in sorted(rejects.items()):
            fam.add_metric([r], n)
        yield fam
        fills = _family(prom, "counter", f"{p}_fills", "fills per symbol", ["symbol"])
        volume = _family(prom, "counter", f"{p}_volume_lots", "filled qty per symbol", ["symbol"])
        for sym, (n, v) in sorted(per_symbol.items()):
            fills.add_metric([sym], n)
            volume.add_metric([sym], v)
        yield fills
        yield volume
        yield prom.core.CounterMetricFamily(f"{p}_commands", "commands processed",
                                            value=s["commands"])
        yield prom.core.GaugeMetricFamily(f"{p}_open_orders", "orders resting",
                                          value=s["open_orders"])
        h = s["hist"]
        nb = len(self.bounds_ns)
        cum = np.cumsum(h[: nb + 1])
        buckets = [(repr(float(b) / 1e9), int(cum[i])) for i, b in enumerate(self.bounds_ns)]
        buckets.append(("+Inf", int(cum[nb])))
        yield prom.core.HistogramMetricFamily(
            f"{p}_service_time_seconds", "per-command service time measured in compiled code "
            f"(clock: {self.clock})", buckets=buckets, sum_value=int(h[nb + 1]) / 1e9)

    def describe(self):
        """The metric families :meth:`collect` yields, without values: the registry checks
        them against its other collectors at registration."""
        return _describe(self._prom, self.prefix, _ENGINE_FAMILIES)
