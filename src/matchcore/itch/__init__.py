"""NASDAQ TotalView-ITCH 5.0: decoding, market-by-order replay through the compiled book, and a
realistic generator.

* :func:`decode` -- every message of a buffer or file into one numpy structured array per type.
* :class:`Replayer` -- the compiled replay loop: ``feed(bytes)`` builds one book per stock locate
  and fills the sinks (top of book, trades, depth snapshots).
* :func:`replay_file` -- a plain or gzip'd file streamed through a :class:`Replayer` in chunks.
* :func:`generate` -- a seeded, realistic ITCH 5.0 day (standard framing).

>>> import matchcore.itch as itch
>>> data = itch.generate(None, messages=5000, symbols=4, seed=3)
>>> msgs = itch.decode(data)
>>> msgs.stats["messages"], msgs["S"]["event_code"][:3].tolist()
(5000, [b'O', b'S', b'Q'])
"""
from __future__ import annotations

import io
import operator
import os
import re
import stat
import sys
import zlib

import numpy as np

from matchcore._args import check_callable
from matchcore._core import _flag_arg
from matchcore._gzip import Inflater as _Inflater
from matchcore._magic import (GZIP_MAGIC, HEAD_SIZE, TEXT_LOOK, ZSTD_MAGIC, refuse_foreign,
                              refuse_foreign_buffer, zstd_frame_start)
from matchcore._magic import foreign_format as _foreign_format
from matchcore._magic import Closing as _Closing
from matchcore._magic import open_head as _open_head
from matchcore._magic import open_input as _open_input
from matchcore._magic import read_head as _read_head
from matchcore._magic import readinto_live as _readinto_live
from matchcore.itch._buffer import byte_view as _byte_view
from matchcore.itch._decode import decode_chunk as _decode_chunk
from matchcore.itch._replay import (
    L2_DTYPE,
    SYMBOL_STATS_DTYPE,
    SYSTEM_EVENT_DTYPE,
    TOB_DTYPE,
    TRADE_DTYPE,
    Replayer,
    snapshot_dtype,
)
from matchcore.itch.generator import generate, symbol_names
from matchcore.itch.layouts import DTYPES, LAYOUTS, LENGTHS

__all__ = [
    "DTYPES", "L2_DTYPE", "LAYOUTS", "LENGTHS", "SYMBOL_STATS_DTYPE", "SYSTEM_EVENT_DTYPE", "TOB_DTYPE", "TRADE_DTYPE", "Decoded",
    "Replayer", "decode", "generate", "open_stream", "parse_time", "replay_file", "snapshot_dtype",
    "execution_mask", "symbol_names", "volume_mask",
]

CHUNK_SIZE = 4 << 20          # bytes read per compiled chunk when streaming a file


def _refuse_zstd(raw, path, head: bytes | None = None) -> None:
    # A zstd frame's magic can never start an ITCH stream (its length prefix would be 10,421
    # bytes, longer than any message): read as ITCH it was "replayed" as one unknown message
    # and a bad length prefix, exit status 0. `head`: the first bytes, when already read.
    if zstd_frame_start(raw.peek(4)[:4] if head is None else head[:4]):
        raw.close()
        raise ValueError(f"{path}: a zstd-compressed file: the ITCH replay reads plain or gzip'd "
                         "files (decompress it with zstd -d; a DBN file cut short inside its "
                         "first zstd block cannot be recognised as DBN)")


def volume_mask(trades: np.ndarray) -> np.ndarray:
    """Which ``TRADE_DTYPE`` records count towards traded volume: all but executions with price
    (C) marked non-printable. The specification leaves those out of volume calculations: they
    are part of a cross, whose shares its Q message reports. ``Replayer.symbol_stats()``'s
    ``volume``, the ``volume_shares_total`` metric and the trade totals a NATS subscriber
    rebuilds all count this way.

    >>> import numpy as np, matchcore.itch as itch
    >>> t = np.zeros(3, itch.TRADE_DTYPE); t["kind"] = [b"E", b"C", b"C"]; t["flag"] = [b" ", b"N", b"Y"]
    >>> itch.volume_mask(t).tolist()
    [True, False, True]
    """
    return ~((trades["kind"] == b"C") & (trades["flag"] == b"N"))


def execution_mask(trades: np.ndarray) -> np.ndarray:
    """Which ``TRADE_DTYPE`` records are executions counted once: all but the F records of a
    book (locate) that has T records. Databento reports a DBN execution as a T record (the
    aggressor's side, what its trades schema holds) and one F record per resting order filled,
    so a T counts, and an F only where a venue reports fills alone; every other record (ITCH E,
    C, P, Q) is an execution of its own. Trade counts (``matchcore.cluster.dask.trade_count``)
    and the ``--plot`` ranking and volume count this way. O(records).

    >>> import numpy as np, matchcore.itch as itch
    >>> t = np.zeros(3, itch.TRADE_DTYPE); t["kind"] = [b"T", b"F", b"F"]
    >>> itch.execution_mask(t).tolist(), itch.execution_mask(t[1:]).tolist()
    ([True, False, False], [True, True])
    """
    kinds = trades["kind"]
    fills = kinds == b"F"
    if not fills.any():
        return np.ones(len(trades), bool)
    with_t = np.unique(trades["locate"][kinds == b"T"])
    return ~(fills & np.isin(trades["locate"], with_t))


class Decoded(dict):
    """``{type: numpy structured array}`` of the decoded messages, with ``.stats`` (counts per
    type, unknown types, bad length prefixes with offsets, bytes skipped, truncation)."""

    stats: dict


def open_stream(path) -> io.BufferedIOBase:
    """Open an ITCH file for binary reading; gzip'd files (recognised by their magic bytes, not
    the name) are decompressed on the fly. The caller closes it. A gzip stream cut short hands
    over every byte it holds, whatever the size of the reads, then raises ``EOFError`` (a read
    of the whole, ``read()``, raises it in place of the bytes); bytes after the stream that start no
    gzip member raise ``ValueError`` ("trailing data after the gzip stream", as
    :func:`replay_file` says) after every byte before them."""
    # the first bytes read whole: from a FIFO, one read may give only part of the gzip magic
    raw, head, src, live = _open_head(path, HEAD_SIZE)
    try:
        _refuse_zstd(raw, path, head)
        gz = head[:2] == GZIP_MAGIC
        if gz:
            # the DBN reader's end check: every byte before a cut or trailing data, then the
            # error in the replay's words (gzip.GzipFile said "Not a gzipped file")
            from matchcore.feeds.dbn import _CheckedEnd, _CheckedReader
            f = _CheckedReader(_CheckedEnd(_Inflater(src, live=live), path), raw)
        else:
            f = raw if src is raw else _Closing(src, raw)
        first = f.peek(TEXT_LOOK)[:TEXT_LOOK]
        # a plain regular file's peek is short only at its end
        refuse_foreign(first, path, "open_stream", "gzip'd" if gz else "",
                       whole=not (gz or live) and len(first) < TEXT_LOOK)
    except BaseException:
        raw.close()
        raise
    return f


def _check_hooks(progress, on_chunk) -> None:
    # a file replay's hooks (the ITCH and DBN replays take the same two)
    check_callable(progress, "progress", "bytes_read")
    check_callable(on_chunk, "on_chunk", "replayer")


def _check_chunk_size(chunk_size: int) -> None:
    try:
        operator.index(chunk_size)
    except TypeError:
        # a float passed the size check and failed at the buffer ("cannot convert 'float'
        # object to bytearray"): on a Dask cluster, on every worker after the client's check
        raise TypeError(f"chunk_size must be a whole number of bytes, not "
                        f"{chunk_size!r}") from None
    if chunk_size < (1 << 17):
        raise ValueError("chunk_size must be at least 128 KiB (an ITCH frame can be 64 KiB)")
    if chunk_size > sys.maxsize:
        # no buffer is that large: the buffer refused it after the file was opened, in words
        # that named nothing ("cannot fit 'int' into an index-sized integer")
        raise ValueError(f"chunk_size must be at most {sys.maxsize:,} bytes, got {chunk_size}")


def _read_buffer(chunk_size: int) -> bytearray:
    """The read buffer of ``chunk_size`` bytes (a checked size) for a file replay. A size
    beyond the memory raised a bare MemoryError(), naming neither the argument nor the size."""
    try:
        return bytearray(chunk_size)
    except MemoryError:
        raise MemoryError(f"chunk_size={chunk_size:,}: not enough memory for a read buffer of "
                          f"that many bytes (the default is {CHUNK_SIZE:,})") from None


class _ChunkReader:
    """A fixed buffer refilled from a stream; the unconsumed tail moves to the front, so memory
    stays at one chunk whatever the file size. From a regular file a fill reads a whole chunk;
    from a pipe, FIFO or socket it returns what one read gives, so that a live stream's
    messages are replayed as they arrive (a fill waited for a whole chunk or the end of the
    stream, so a slow writer's messages waited until 4 MiB of them had come)."""

    def __init__(self, path, chunk_size: int):
        _check_chunk_size(chunk_size)
        self.raw = _open_input(path)
        try:
            self.live = not stat.S_ISREG(os.fstat(self.raw.fileno()).st_mode)
        except BaseException:
            self.raw.close()
            raise
        self.path = path
        self.buf = _read_buffer(chunk_size)
        self.view = memoryview(self.buf)
        self.n = 0
        self.eof = False
        self.total = 0               # decompressed bytes read so far
        self.stream_error = None     # why a compressed stream ended early, else None
        self.trailing = None         # offset of bytes after the gzip stream, else None
        try:
            head = _read_head(self.raw, max(len(ZSTD_MAGIC), HEAD_SIZE))
            _refuse_zstd(self.raw, path, head)
            if head[:2] == GZIP_MAGIC:
                self.f = _Inflater(self.raw, head, self.live)
                self._fill_head(HEAD_SIZE)
                if _foreign_format(bytes(self.buf[:self.n])) == "unframed":
                    self._fill_head(TEXT_LOOK)      # refused: text, or ITCH bytes cut mid-message
                # (fewer than TEXT_LOOK bytes: the whole stream)
                refuse_foreign(bytes(self.buf[:self.n]), path, "the ITCH reader", "gzip'd",
                               self.n < TEXT_LOOK)
            else:
                self.f = self.raw
                if _foreign_format(head) == "unframed":
                    # refused either way: the bytes that tell text from ITCH cut mid-message
                    head += _read_head(self.raw, TEXT_LOOK - len(head))
                self.buf[:len(head)] = head
                self.n = self.total = len(head)
                refuse_foreign(head, path, "the ITCH reader", whole=len(head) < TEXT_LOOK)
            self._unfed = self.n > 0
        except BaseException:
            self.raw.close()
            raise

    def _fill_head(self, k: int) -> None:
        # the first k decompressed bytes, for the check of what the stream holds (a gzip'd DBN
        # or native file read as ITCH gave zero messages and bad length prefixes, exit 0)
        while self.n < k:
            try:
                # only the head: a whole chunk read here would make the first fill take the
                # buffer for one nothing could be consumed from, and double it
                got = self.f.readinto(self.view[self.n:k])
            except zlib.error as e:
                raise ValueError(f"{self.path}: damaged gzip stream after "
                                 f"{self.f.compressed:,} compressed bytes: {e}") from None
            if not got:
                break
            self.n += got
            self.total += got

    def fill(self) -> memoryview:
        if self.n == len(self.buf) and not self.eof:
            # A full buffer of which nothing was consumed: the framing needs to see further
            # to decide (a message of an unknown type is taken once up to 16 such frames of up
            # to 64 KiB lead on; a bad prefix's resync candidate likewise), and refilling the
            # same bytes spun forever with a chunk under about 1 MiB. The buffer grows (at
            # most to about twice that lookahead; the default 4 MiB never does).
            grown = bytearray(2 * len(self.buf))
            grown[: self.n] = self.buf[: self.n]
            self.buf, self.view = grown, memoryview(grown)
        if self.live and self._unfed:
            # the bytes the format check read: replayed before the next read, which waits for
            # the writer's next write
            self._unfed = False
            return self.view[: self.n]
        while not self.eof and self.n < len(self.buf):
            try:
                if self.live and self.f is self.raw:
                    k = _readinto_live(self.raw, self.view[self.n:])
                else:
                    k = self.f.readinto(self.view[self.n:])
            except zlib.error as e:
                raise ValueError(f"{self.path}: damaged gzip stream after "
                                 f"{self.f.compressed:,} compressed bytes: {e}") from None
            if not k:
                self.eof = True
                if self.f is not self.raw and self.f.cut:
                    # A gzip file cut short: what it holds is replayed, the cut is reported.
                    self.stream_error = ("gzip stream ended before its end marker "
                                         f"({self.f.compressed:,} compressed bytes)")
                if self.f is not self.raw:
                    self.trailing = self.f.trailing
            else:
                self.n += k
                self.total += k
                if self.live:
                    break
        return self.view[: self.n]

    def check_end(self, done: int, what: str) -> None:
        # after the messages are read: bytes after the gzip stream that start no member
        if self.trailing is not None:
            raise ValueError(f"{self.path}: trailing data after the gzip stream (at compressed "
                             f"byte {self.trailing:,}; {done:,} messages {what})")

    def consume(self, k: int) -> None:
        if k:
            self.buf[: self.n - k] = self.buf[k: self.n]
            self.n -= k

    def raw_position(self) -> int:
        try:
            return self.raw.tell()
        except OSError:
            # a pipe or FIFO cannot tell: the bytes read from it so far (a gzip stream's
            # compressed bytes, as a file's position is; the decompressed ones were reported)
            return self.f.compressed if self.f is not self.raw else self.total

    def close(self) -> None:
        self.view.release()
        self.raw.close()


def _truncation(tail: bytes, offset: int, infer: bool, stream_error=None):
    if not tail:
        return None if stream_error is None else \
            {"offset": offset, "bytes": 0, "expected": None, "stream": stream_error}
    expected = None
    if len(tail) >= 3:
        n = LENGTHS.get(chr(tail[2]))
        expected = (2 + n if n else None) if infer else 2 + int.from_bytes(tail[:2], "big")
    out = {"offset": offset, "bytes": len(tail), "expected": expected}
    if stream_error is not None:
        out["stream"] = stream_error
    return out


def decode(source, infer_lengths: bool = False, *, chunk_size: int = CHUNK_SIZE) -> Decoded:
    """Decode ITCH 5.0 messages into one numpy structured array per message type.

    ``source``: a bytes-like buffer (standard framing: a 2-byte big-endian length before each
    message) or a path to a plain or gzip'd file (streamed in chunks). What cannot start an
    ITCH stream (DBN, a native command file, text, compressed bytes in a buffer, a file
    compressed twice, bytes from inside a message) raises ``ValueError`` naming it, from a
    buffer as from a file. ``infer_lengths=True``
    takes each length from the type byte instead of the prefix (files written with zero
    prefixes). Field names are the specification's in snake_case; prices are the raw integers
    (4 implied decimals, MWCB levels 8), timestamps nanoseconds since midnight.
    Unknown types are skipped by their length and counted; a bad length prefix is reported with
    its offset and decoding resumes at the next plausible message; an incomplete last message
    is reported in ``stats["truncated"]``, and a gzip file cut short is decoded as far as it
    goes, with ``stats["truncated"]["stream"]`` saying so. The buffer is read twice without
    the GIL (count, then decode): one another thread writes into meanwhile raises
    ``BufferError``. O(bytes); memory O(decoded messages).

    >>> from matchcore.itch import decode, generate
    >>> d = decode(generate(None, messages=200, symbols=2, seed=1))
    >>> int(d["R"]["round_lot_size"][0]), bytes(d["R"]["stock"][0])
    (100, b'AAPL    ')
    """
    infer_lengths = _flag_arg(infer_lengths, "infer_lengths")
    _check_chunk_size(chunk_size)        # unused by a buffer, and refused alike
    if isinstance(source, (str, os.PathLike)):
        # the name as given, as replay_file opens it: through Path, "day.itch/" (a directory)
        # decoded the file day.itch and "" was the current directory
        return _decode_file(source, infer_lengths, chunk_size)
    mv = _byte_view(source)         # what Replayer.feed takes, with the same errors
    _refuse_foreign_buffer(mv)
    return _decode_buffer(mv, infer_lengths)


def _decode_buffer(mv, infer_lengths: bool) -> Decoded:
    # decode() of a buffer past the check of its first bytes
    arrays, report, consumed = _decode_chunk(mv, infer_lengths, 0)
    out = Decoded(arrays)
    del report["resync"]
    report["truncated"] = _truncation(bytes(mv[consumed:]), consumed, infer_lengths)
    out.stats = report
    return out


def _refuse_foreign_buffer(mv) -> None:
    # The bytes a file would be refused for (DBN, native, text, ITCH cut inside a message)
    # are refused in a buffer too, with the same words: framed as ITCH they gave zero messages
    # and a bad length prefix.
    refuse_foreign_buffer(mv, "the buffer", "the ITCH reader", "a buffer is decoded as it is "
                          "(a path to a gzip'd file is decompressed)")


def _decode_file(path, infer: bool, chunk_size: int) -> Decoded:
    reader = _ChunkReader(path, chunk_size)
    parts: dict[str, list] = {}
    total = {"messages": 0, "counts": {}, "unknown_types": {}, "bad_lengths": 0,
             "bad_length_offsets": [], "bytes_skipped": 0}
    offset = 0
    resync = False
    try:
        while True:
            view = reader.fill()
            if not len(view):
                break
            arrays, rep, consumed = _decode_chunk(view, infer, offset, resync, reader.eof)
            resync = rep["resync"]
            for t, a in arrays.items():
                parts.setdefault(t, []).append(a)
            total["messages"] += rep["messages"]
            total["bad_lengths"] += rep["bad_lengths"]
            total["bytes_skipped"] += rep["bytes_skipped"]
            total["bad_length_offsets"] = (total["bad_length_offsets"]
                                           + rep["bad_length_offsets"])[:64]
            for key in ("counts", "unknown_types"):
                for t, c in rep[key].items():
                    total[key][t] = total[key].get(t, 0) + c
            offset += consumed
            reader.consume(consumed)
            if reader.eof and consumed == 0:
                break
        tail = bytes(reader.fill())
        reader.check_end(total["messages"], "decoded")
    finally:
        reader.close()
    total["counts"] = dict(sorted(total["counts"].items()))
    total["truncated"] = _truncation(tail, offset, infer, reader.stream_error)
    # joined as bytes: numpy's record copies leave the padding of the new array uninitialised
    out = Decoded({t: np.concatenate([a.view(np.uint8) for a in p]).view(DTYPES[t])
                   for t, p in sorted(parts.items())})
    out.stats = total
    return out


_TIME = re.compile(r"([0-9]+):([0-9]+):([0-9]+)(?:\.([0-9]{1,9}))?")


def parse_time(text: str) -> int:
    """'HH:MM:SS[.fraction]' (1 to 9 fraction digits) -> nanoseconds since midnight (the ITCH
    timestamp unit).

    >>> parse_time("09:30:00.5")
    34200500000000
    """
    # ASCII digits only, the fraction 1 to 9 of them (int() also takes "1_0", "+1" and other
    # scripts' digits; a 10th fraction digit, below the nanosecond, was cut off unseen); the
    # text exactly as given, no padding
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"time {text!r} is not HH:MM:SS[.fraction]")
    h, m, s = (int(x) for x in match.group(1, 2, 3))
    if not (h < 24 and m < 60 and s < 60):
        raise ValueError(f"time {text!r} is not HH:MM:SS[.fraction]")
    ns = int((match.group(4) or "").ljust(9, "0"))
    return ((h * 60 + m) * 60 + s) * 1_000_000_000 + ns


def _check_file(path) -> None:
    # The refusals replay_file makes of a file's first bytes (a foreign format, text, bytes
    # from inside a message, a damaged gzip start), made before whatever a caller sets up for
    # the replay: a regular file only, as a pipe's bytes would be consumed.
    _ChunkReader(path, 1 << 17).close()


def _file_replayer(*, chunk_size: int = CHUNK_SIZE, progress=None, on_chunk=None,
                   **options) -> Replayer:
    # The Replayer of replay_file(path, **same keywords), after every check replay_file makes of
    # its options before it opens the file: matchcore.cluster.dask calls it on the client, so
    # that a bad option raises there, as it would on a worker, before a cluster starts.
    r = Replayer(**options)
    _check_chunk_size(chunk_size)
    return r


def replay_file(path, *, chunk_size: int = CHUNK_SIZE, progress=None, on_chunk=None,
                **options) -> Replayer:
    """Stream a plain or gzip'd ITCH 5.0 file through a new :class:`Replayer`.

    ``options`` are the :class:`Replayer` arguments (symbols, snapshot_every, infer_lengths,
    callback, until_ns, ...). The file is read in chunks of ``chunk_size`` bytes into one
    reused buffer, so memory does not grow with the file (the sinks grow with what they
    record). ``progress(bytes_read)`` is called after every chunk with the position in the file
    on disk (compressed bytes for gzip). A gzip file cut short is replayed as far as it goes
    and reported in ``stats["truncated"]["stream"]``. ``on_chunk(replayer)`` is called after
    every chunk and once more after :meth:`Replayer.finish`: the place for per-chunk consumers
    of the counters and sinks (metrics, publishers), which then cost nothing per message.
    O(bytes). Returns the finished Replayer.

    >>> import tempfile, os
    >>> from matchcore.itch import generate, replay_file
    >>> path = generate(os.path.join(tempfile.mkdtemp(), "day.itch"), messages=3000, symbols=2)
    >>> r = replay_file(path)
    >>> r.stats["messages"], r.stats["truncated"]
    (3000, None)
    """
    _check_hooks(progress, on_chunk)
    r = _file_replayer(chunk_size=chunk_size, **options)
    reader = _ChunkReader(path, chunk_size)
    try:
        while True:
            view = reader.fill()
            if not len(view):
                break
            consumed = r.feed(view)
            reader.consume(consumed)
            if progress is not None:
                progress(reader.raw_position())
            if on_chunk is not None:
                on_chunk(r)
            if r.done or (reader.eof and consumed == 0):
                break
        tail = b"" if r.done else bytes(reader.fill())
        if not r.done:
            reader.check_end(r.stats["messages"], "replayed")
    finally:
        reader.close()
    r.finish(tail, stream_error=None if r.done else reader.stream_error)
    if on_chunk is not None:
        on_chunk(r)
    return r
