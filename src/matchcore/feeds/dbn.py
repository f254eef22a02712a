"""Databento DBN market-by-order replay: ``.dbn`` and ``.dbn.zst`` files through the compiled
market-by-order books, with the ITCH replay's sinks.

* :func:`replay_dbn` -- a file (plain or zstd-compressed) streamed through a
  :class:`~matchcore.feeds._dbn.DbnReplayer` in chunks.
* :func:`read_metadata` -- the file's metadata header (dataset, schema, version, symbol
  mappings), parsed by the ``databento-dbn`` package.
* :func:`is_dbn` -- whether a path holds a DBN stream (by its magic bytes, or its name).

The records themselves are decoded by the compiled loop straight from the read buffer (one
56-byte little-endian struct per MBO record), not by the package: a package decoder builds one
Python object per record, which would cost more than the book update it feeds. The package is
used for what it is the authority on: the metadata header and its symbol mappings. The
``dbn`` extra installs it and ``zstandard`` (``pip install 'matchcore[dbn]'``).

Prices stay DBN's fixed-point int64 (1 unit = 1e-9 of the currency unit; divide by 1e9 to
print), sizes are lots, timestamps are ``ts_recv`` in ns since the UNIX epoch.
"""
from __future__ import annotations

import io
import operator
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from matchcore._gzip import Inflater
from matchcore._magic import DBN_MAGIC, DBN_SUFFIXES, GZIP_MAGIC, ZSTD_MAGIC, named
from matchcore._magic import Closing as _Closing
from matchcore._magic import open_head, readinto_live, zstd_frame_start
from matchcore.feeds._dbn import DbnReplayer
from matchcore.itch import _check_hooks, _read_buffer

__all__ = ["DbnMetadata", "DbnReplayer", "PRICE_SCALE", "is_dbn", "open_dbn", "read_metadata",
           "replay_dbn"]

CHUNK_SIZE = 4 << 20          # bytes read per compiled chunk when streaming a file
PRICE_SCALE = 1_000_000_000   # DBN fixed-point prices: units per currency unit
_EXTRA = "pip install 'matchcore[dbn]'"


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"DBN replay needs the {module!r} package: {_EXTRA}") from e


@dataclass
class DbnMetadata:
    """The parts of a DBN metadata header the replay uses."""

    version: int
    dataset: str
    schema: str | None
    stype_out: str | None
    ts_out: bool
    start: int
    end: int | None
    names: dict[int, str] = field(default_factory=dict)   # instrument id -> symbol
    header_bytes: int = 0                                   # bytes before the first record


def open_dbn(path) -> io.BufferedIOBase:
    """Open a DBN file for binary reading; a zstd- or gzip-compressed one (recognised by its
    magic bytes, not its name) is decompressed on the fly (zstd needs ``zstandard``). The
    caller closes it. A compressed stream cut short hands over every byte it holds, whatever
    the size of the reads, then raises ``EOFError`` where it ends (``read()`` of the whole
    raises it in place of the bytes) (as ``gzip`` and :func:`matchcore.itch.open_stream` do)
    instead of ending as if whole; bytes after the stream that start no gzip member or zstd
    frame raise ``ValueError`` ("trailing data after the ... stream", as :func:`replay_dbn`
    says) after every byte before them. O(1); reading is O(bytes).

    >>> with open_dbn("mbo.dbn.zst") as f:          # doctest: +SKIP
    ...     read_metadata(f).dataset
    'GLBX.MDP3'
    """
    raw, head, src, live = open_head(path, 4)
    if zstd_frame_start(head):
        try:
            zstd = _require("zstandard")
        except ImportError:
            raw.close()
            raise
        return _CheckedReader(_CheckedEnd(_ZstdFrames(zstd, src, live=live), path), raw)
    if head[:2] == GZIP_MAGIC:
        return _CheckedReader(_CheckedEnd(Inflater(src, live=live), path), raw)
    return raw if src is raw else _Closing(src, raw)


class _CheckedEnd(io.RawIOBase):
    """The decompressed bytes of ``frames`` (:class:`_ZstdFrames` or an ``Inflater``), read
    through a :class:`_CheckedReader`, which raises ``EOFError`` at their end when the
    compressed data stopped before its end marker (``ValueError`` for trailing data): a reader
    of a cut file learns it at the end, after every byte it holds. This raw stream ends there
    as any other (``end`` holds the error): the buffered reader's ``read(n)`` dropped the bytes
    it had gathered when a read under it raised (up to ``n`` bytes of the stream were lost)."""

    def __init__(self, frames, path):
        self._frames = frames
        self._path = path
        self.end = None           # (exception type, message) once the end has been met

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        k = self._frames.readinto(b)
        if k == 0 and len(b) and self.end is None:
            if self._frames.trailing is not None:
                # ValueError, as replay_dbn and itch.open_stream raise it (the codec's own
                # error told a reader of a .gz apart from one of a .zst, and from the replay)
                zstd = isinstance(self._frames, _ZstdFrames)
                self.end = (ValueError, f"{self._path}: trailing data after the "
                                        f"{'zstd' if zstd else 'gzip'} stream (at compressed "
                                        f"byte {self._frames.trailing:,})")
            elif _ended_early(self._frames):
                self.end = (EOFError, f"{self._path}: the compressed stream ends before its "
                                      f"end marker (the file is cut short)")
        return k


class _CheckedReader(_Closing):
    """The buffered reader of a :class:`_CheckedEnd` stream (closing ``raw`` too): a read that
    finds no byte left raises the error of the stream's end, if it has one, once every byte
    before it has been handed over; a read of the whole (``read()``) raises it in place of the
    bytes, as ``gzip`` does, so that it never passes for the whole stream."""

    def _check(self, got: int) -> None:
        end = self.raw.end
        if not got and end is not None:
            raise end[0](end[1])

    def read(self, size=-1):
        data = super().read(size)
        if size is None or size < 0:
            self._check(0)
        elif size:
            self._check(len(data))
        return data

    def read1(self, size=-1):
        data = super().read1(size)
        if size:
            self._check(len(data))
        return data

    def readinto(self, b):
        k = super().readinto(b)
        if len(memoryview(b)):
            self._check(k)
        return k

    def readinto1(self, b):
        k = super().readinto1(b)
        if len(memoryview(b)):
            self._check(k)
        return k

    def readline(self, size=-1):
        line = super().readline(size)
        if size:
            self._check(len(line))
        return line


class _ZstdFrames(io.RawIOBase):
    """The zstd frames of a raw stream, decompressed; ``ended_early`` tells, once read to the
    end, whether the data stopped inside a frame (zstandard's stream_reader ends silently
    there, so a cut file would look whole). ``live`` (a pipe, FIFO or socket): a read returns
    what the input at hand decompresses to instead of waiting for ``read_size`` bytes of a
    stream that may be slow. Bytes after a frame that start no frame (neither the zstd magic
    nor a skippable frame's) end the stream there, after every byte before them is handed
    over; ``trailing`` is then their offset in the compressed input (else None), as an
    ``Inflater``'s. Does not close ``raw``."""

    def __init__(self, zstd, raw, read_size: int = 1 << 16, live: bool = False):
        self._z = zstd.ZstdDecompressor()
        self.error = zstd.ZstdError
        self.trailing = None
        self._held = b""         # the first bytes after a frame, too few to tell a magic
        self._raw = raw
        self._read_size = read_size
        self._live = live
        self._d = None           # the decompressor of the current frame
        self.frame_head = b""    # the first bytes of the current frame (its header)
        self._out = memoryview(b"")
        self._pos = 0
        self.ended_early = False
        self.compressed = 0      # bytes read from raw (a pipe has no position to tell)
        self.decompressed = 0    # bytes the frames gave

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while self._pos >= len(self._out):
            if self.trailing is not None:
                return 0
            chunk = self._raw.read1(self._read_size) if self._live else \
                self._raw.read(self._read_size)
            self.compressed += len(chunk)
            if not chunk:
                if self._held:
                    # a part of a magic and nothing after it: no frame
                    self.trailing, self._held = self.compressed - len(self._held), b""
                    return 0
                self.ended_early = self._d is not None and not self._d.eof
                return 0
            chunk, self._held = self._held + chunk, b""
            parts = []
            while chunk:
                if self._d is not None and self._d.eof and not zstd_frame_start(chunk[:4]):
                    if len(chunk) < 4 and zstd_frame_start(chunk, prefix=True):
                        self._held = chunk       # a magic split between two reads
                    else:
                        self.trailing = self.compressed - len(chunk)
                    break
                if self._d is None or self._d.eof:
                    self._d = self._z.decompressobj()
                    # the frame's header, for what a refusal of it says (window_refusal)
                    self.frame_head = bytes(chunk[:18])
                parts.append(self._d.decompress(chunk))
                chunk = self._d.unused_data if self._d.eof else b""
            self._out, self._pos = memoryview(b"".join(parts)), 0
            self.decompressed += len(self._out)
        k = min(len(b), len(self._out) - self._pos)
        b[:k] = self._out[self._pos:self._pos + k]
        self._pos += k
        return k


# the largest window zstd decodes with unless told otherwise (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 27),
# as zstandard's ZstdDecompressor() and the zstd command take it
_ZSTD_DEFAULT_WINDOW = 1 << 27


def _window_refusal(zstd, frames) -> str | None:
    """Why zstd refused the current frame of ``frames`` (:class:`_ZstdFrames`) when its header
    asks for a window above the default limit (a file written with ``zstd --long``, refused
    as "Frame requires too much memory for decoding"), with the command that reads it; None
    otherwise."""
    from matchcore.bench.report import _bytes

    try:
        window = zstd.get_frame_parameters(frames.frame_head).window_size
    except Exception:            # a header cut short, or none to read
        return None
    if window <= _ZSTD_DEFAULT_WINDOW:
        return None
    return (f"its zstd frame needs a {_bytes(window)} window, above the "
            f"{_bytes(_ZSTD_DEFAULT_WINDOW)} zstd decodes with by default (a file written with "
            f"zstd --long): decompress it first, zstd -d --long={(window - 1).bit_length()}")


def is_dbn(path) -> bool:
    """True when ``path`` is a DBN stream: it starts with ``DBN`` (after zstd or gzip
    decompression when compressed), or, when that cannot be checked, its name ends in .dbn,
    .dbn.zst or .dbn.gz (in any case). Reads at most a few bytes. O(1).

    >>> is_dbn("day.itch")                            # doctest: +SKIP
    False
    """
    from matchcore._cliutil import path_arg

    # a bytes path as replay_dbn takes it (pathlib refused it), another object named
    p = Path(path_arg(path, "path"))
    try:
        if not (p.is_file() or p.is_dir()):
            # a pipe or FIFO: the bytes read here would be lost to its replay; by the name
            return named(p.name, DBN_SUFFIXES)
        with open(p, "rb") as f:
            head = f.read(4)
        if head[:3] == DBN_MAGIC:
            return True
        if zstd_frame_start(head):
            try:
                with open_dbn(p) as s:
                    start = s.read(3)
                if len(start) == 3:
                    return start == DBN_MAGIC
                # the stream ends inside its first block (a file cut short): not checkable
                return named(p.name, ".dbn.zst")
            except Exception:
                # no zstandard, or a frame (its magic read above) damaged before its first
                # bytes: not checkable (a damaged .dbn.zst was refused by the ITCH reader as
                # "a zstd-compressed file", where a larger one's damage is reported as DBN)
                return named(p.name, ".dbn.zst")
        if head[:2] == GZIP_MAGIC:
            from matchcore._magic import _head

            _, start, broken = _head(p, len(DBN_MAGIC))
            if len(start) == len(DBN_MAGIC) or not broken:
                return start == DBN_MAGIC
            # damaged or cut short before its first 3 bytes: not checkable
            return named(p.name, ".dbn.gz")
        if len(head) >= len(DBN_MAGIC) and not (len(head) < len(ZSTD_MAGIC)
                                                and ZSTD_MAGIC.startswith(head)):
            # plain bytes, there to be read, that are not DBN's: an ITCH file named day.dbn
            # was said to hold DBN by its name (a file that ends inside a zstd magic cannot
            # be checked)
            return False
    except OSError:
        pass
    return named(p.name, DBN_SUFFIXES)


def _names_from_mappings(meta) -> dict[int, str]:
    """{instrument id: raw symbol} from the metadata's symbol mappings (stype_out instrument
    id); when an id was reused, the symbol of its latest interval (by start date) wins."""
    latest: dict[int, tuple] = {}
    mappings = getattr(meta, "mappings", None) or {}
    for raw_symbol, intervals in mappings.items():
        for iv in intervals:
            get = iv.get if isinstance(iv, dict) else lambda k: getattr(iv, k, None)
            try:
                iid = int(get("symbol"))
            except (TypeError, ValueError):
                continue
            # the package hands the mappings over in an order that changes from one read to
            # the next: the latest interval is found by its date, not by that order
            key = (str(get("start_date") or ""), str(raw_symbol))
            if iid not in latest or key > latest[iid]:
                latest[iid] = key
    return {iid: key[1] for iid, key in latest.items()}


def read_metadata(stream) -> DbnMetadata:
    """Read and parse the metadata header at the start of a DBN stream (left positioned at the
    first record). Raises ValueError for a stream that is not DBN or whose header is cut short.

    >>> import io
    >>> read_metadata(io.BytesIO(b"ITCH"))
    Traceback (most recent call last):
    ...
    ValueError: not a DBN stream (starts with b'ITCH', expected b'DBN')
    """
    prefix = stream.read(8)
    if not prefix:
        # (not "starts with b''")
        raise ValueError("an empty stream: nothing to replay (a DBN stream starts with its "
                         "metadata header, b'DBN')")
    if prefix[:3] != DBN_MAGIC and not (len(prefix) < 3 and DBN_MAGIC.startswith(prefix)):
        raise ValueError(f"not a DBN stream (starts with {bytes(prefix[:4])!r}, expected b'DBN')")
    if len(prefix) < 8:
        # "D" and "DB" too: a stream that ends inside its magic is cut short, as one that
        # ends inside the header after it
        raise ValueError("DBN metadata header truncated (under 8 bytes)")
    version = prefix[3]
    if version == 0:
        # damage: the package read such a header in another version's layout, passing a
        # version 3 one (replayed as "v0") and failing a version 1 one on a field read out of
        # step ("couldn't convert 255 to dbn::enums::SType"); later versions it refuses itself
        raise ValueError("DBN version 0 is no DBN version (they start at 1; this replay reads "
                         "1 to 3): the metadata header is damaged")
    (length,) = struct.unpack("<I", prefix[4:8])
    # read in pieces: the length is the file's word, and read(length) allocated all of it
    # first (a damaged 4-byte length asked for up to 4 GiB and ran out of memory)
    body = bytearray()
    while len(body) < length:
        piece = stream.read(min(length - len(body), 1 << 20))
        if not piece:
            break
        body += piece
    body = bytes(body)
    if len(body) < length:
        raise ValueError(f"DBN metadata header truncated ({len(body)} of {length} bytes)")
    dbn = _require("databento_dbn")
    dec = dbn.DBNDecoder(upgrade_policy=dbn.VersionUpgradePolicy.AS_IS) \
        if hasattr(dbn, "VersionUpgradePolicy") else dbn.DBNDecoder()
    dec.write(prefix + body)
    try:
        recs = dec.decode()
    except Exception as e:     # the package's own message says what is wrong with the header
        raise ValueError(f"DBN metadata header could not be parsed: {e}") from None
    if not recs:
        raise ValueError("DBN metadata header could not be parsed")
    meta = recs[0]

    def _s(x):
        return None if x is None else str(getattr(x, "value", x))

    return DbnMetadata(version=int(version), dataset=str(meta.dataset), schema=_s(meta.schema),
                       stype_out=_s(meta.stype_out), ts_out=bool(meta.ts_out),
                       start=int(meta.start), end=None if meta.end is None else int(meta.end),
                       names=_names_from_mappings(meta), header_bytes=8 + length)


def _check_chunk_size(chunk_size: int) -> None:
    try:
        operator.index(chunk_size)
    except TypeError:
        # a float passed the size check and failed at the buffer ("cannot convert 'float'
        # object to bytearray"): on a Dask cluster, on every worker after the client's check
        raise TypeError(f"chunk_size must be a whole number of bytes, not "
                        f"{chunk_size!r}") from None
    if chunk_size < 4096:
        raise ValueError("chunk_size must be at least 4 KiB")
    if chunk_size > sys.maxsize:
        # no buffer is that large: the buffer refused it after the file was opened, in words
        # that named nothing ("cannot fit 'int' into an index-sized integer")
        raise ValueError(f"chunk_size must be at most {sys.maxsize:,} bytes, got {chunk_size}")


def _new_replayer(meta: DbnMetadata | None, names, options: dict) -> DbnReplayer:
    # without metadata (meta None): the checks alone, with the metadata's defaults
    if "ts_out" in options:
        # given once, it failed as "DbnReplayer() got multiple values for keyword argument"
        raise TypeError("replay_dbn() takes no ts_out: it is read from the file's metadata")
    r = DbnReplayer(names=names, ts_out=meta.ts_out if meta else False, **options)
    if names is None and meta is not None:
        r._file_names(meta.names)        # the file's own: an empty raw symbol stays a name
    return r


def _file_replayer(*, chunk_size: int = CHUNK_SIZE, progress=None, on_chunk=None, names=None,
                   **options) -> DbnReplayer:
    # Every check replay_dbn(path, **same keywords) makes of its options, without a file (the
    # replayer it returns has no metadata): matchcore.cluster.dask calls it on the client, so
    # that a bad option raises there, as it would on a worker, before a cluster starts.
    _check_chunk_size(chunk_size)
    return _new_replayer(None, names, options)


def _on_disk(raw, read: int) -> int:
    """The position in the file on disk; from a pipe or FIFO, which has none, ``read`` (the
    bytes read from it so far)."""
    try:
        return raw.tell()
    except OSError:
        return read


def _ended_early(frames) -> bool:
    # _ZstdFrames: the data stopped inside a frame; Inflater: before the gzip end marker
    return frames.ended_early if isinstance(frames, _ZstdFrames) else frames.cut


def replay_dbn(path, *, chunk_size: int = CHUNK_SIZE, progress=None, on_chunk=None, names=None,
               **options) -> DbnReplayer:
    """Stream a ``.dbn``, ``.dbn.zst`` or ``.dbn.gz`` MBO file through a new
    :class:`DbnReplayer` (the compression is told by the magic bytes, not the name).

    ``options`` are the :class:`DbnReplayer` arguments (symbols, snapshot_every,
    snapshot_every_ns, snapshot_depth, until_ns, record_tob, record_trades, tob_on_last;
    ``ts_out`` is the metadata's, and given raises TypeError);
    instrument names come from the metadata's symbol mappings unless ``names``
    (``{instrument_id: symbol}``) is given. The records are read in chunks of ``chunk_size``
    bytes into one reused buffer, so memory does not grow with the file (the sinks grow with
    what they record; a buffer under 16 KiB doubles when a run of other rtypes' records fills
    it before it leads to an MBO record); from a pipe, FIFO or socket a chunk is what one read
    gives (a compressed stream: what it decompresses to), so that a live stream's records are
    replayed as they arrive. ``progress(bytes_read)`` is called after every chunk with the position
    in the file on disk (compressed bytes for .zst and .gz); ``on_chunk(replayer)`` after
    every chunk and once more after :meth:`DbnReplayer.finish`, as in
    :func:`matchcore.itch.replay_file` (the replayer's counters and books so far, also of a
    replay that is then interrupted). O(bytes). Returns the finished
    replayer; its ``metadata`` attribute holds the parsed :class:`DbnMetadata`. A file cut
    short reports its incomplete last record in ``stats["truncated"]``, and a zstd stream that
    ends inside a frame (a gzip stream before its end marker) says so in
    ``stats["truncated"]["stream"]``; a damaged zstd frame or gzip stream raises ValueError (a
    compressed stream cannot be resynchronised), and so does a schema other than MBO, and
    trailing data after a gzip or zstd stream (bytes that start no gzip member, no zstd
    frame), once every record before it is replayed.

    >>> r = replay_dbn("glbx-mdp3-mbo.dbn.zst", symbols=["ESM4"])     # doctest: +SKIP
    >>> r.book("ESM4").best_bid()                                      # doctest: +SKIP
    (5290250000000, 31)
    """
    _check_hooks(progress, on_chunk)
    if "symbols" in options:
        # two replayers take it (the check below, the file's): a generator served only one
        from matchcore._symfilter import once_listed

        options["symbols"] = once_listed(options["symbols"])
    # every option checked before the file is opened, as itch.replay_file does: a bad one
    # was reported as the path's FileNotFoundError or IsADirectoryError
    _file_replayer(chunk_size=chunk_size, names=names, **options)
    raw, head, src, live = open_head(path, 4)
    stream = None
    try:
        zstd_error: type | tuple = ()
        codec = "zstd" if zstd_frame_start(head) else "gzip" if head[:2] == GZIP_MAGIC else None
        compressed = codec is not None
        if codec == "zstd":
            zstd = _require("zstandard")
            zstd_error = zstd.ZstdError
            frames = _ZstdFrames(zstd, src, live=live)
            stream = io.BufferedReader(frames, buffer_size=1 << 16)
        elif codec == "gzip":
            # gzip'd DBN files occur as downloads re-compressed by other tools; read as ITCH
            # they gave zero messages and bad length prefixes, exit status 0
            zstd_error = zlib.error            # a damaged stream: raised as ValueError below
            frames = Inflater(src, live=live)
            stream = io.BufferedReader(frames, buffer_size=1 << 16)
        else:
            stream = raw if src is raw else io.BufferedReader(src, buffer_size=1 << 16)

        def damaged(e, records: int) -> ValueError:
            # A damaged compressed frame cannot be skipped over. Said in the same words
            # wherever it is found: a small file's damage is met in the bytes read ahead with
            # the metadata header, and was said to be "in the metadata header"
            # a frame that asks for more window than zstd's default limit is no damage:
            # zstd's own words for it ("Frame requires too much memory for decoding") said
            # neither why nor how to read it
            why = _window_refusal(zstd, frames) if codec == "zstd" else None
            return ValueError(f"{path}: {codec} decompression failed after "
                              f"{_on_disk(raw, frames.compressed):,} bytes on disk "
                              f"({records:,} records replayed): "
                              # (a pipe has no name to give the command)
                              + (f"{why}{'' if live else f' {path}'}" if why else f"{e}"))

        try:
            meta = read_metadata(stream)
        except zstd_error as e:
            raise damaged(e, 0) from None
        except ValueError as e:
            if codec == "zstd" and frames.ended_early and not frames.decompressed:
                # cut inside its first block (up to 128 KiB), which decompresses only whole:
                # nothing came out, so nothing is known of the metadata
                raise ValueError(f"{path}: truncated zstd data: the compressed stream is cut "
                                 f"short ({frames.compressed:,} compressed bytes, inside its "
                                 "first block: nothing of it decompresses)") from None
            if codec == "gzip" and frames.cut and not frames.decompressed:
                # cut inside its gzip header or before its first block gives a byte: as zstd
                raise ValueError(f"{path}: truncated gzip data: the compressed stream is cut "
                                 f"short ({frames.compressed:,} compressed bytes: nothing of it "
                                 "decompresses)") from None
            if compressed and frames.trailing is not None:
                raise ValueError(f"{path}: trailing data after the {codec} stream (at compressed "
                                 f"byte {frames.trailing:,}) before the DBN metadata header "
                                 "was complete") from None
            if codec is None and 0 < len(head) < len(ZSTD_MAGIC) and (
                    ZSTD_MAGIC.startswith(head) or GZIP_MAGIC.startswith(head)):
                # (head is short only where the stream ends) the file ends inside the magic
                # of a compressed stream: "not a DBN stream (starts with b'(\xb5/')" said of
                # a .dbn.zst one byte short of where it is said to be cut short
                kind = "zstd" if ZSTD_MAGIC.startswith(head) else "gzip"
                raise ValueError(f"{path}: truncated {kind} data: the compressed stream is cut "
                                 f"short ({len(head)} compressed byte"
                                 f"{'' if len(head) == 1 else 's'}, inside the {kind} magic "
                                 "that starts it: nothing of it decompresses)") from None
            if compressed and _ended_early(frames):
                # said as what it is, not as "not a DBN stream (starts with b'')"
                where = "inside a frame" if codec == "zstd" else "short of its end marker"
                raise ValueError(f"{path}: {codec} stream ended {where} before the DBN "
                                 f"metadata header was complete ({frames.compressed:,} "
                                 "compressed bytes): the file is cut short") from None
            # named, as every other refusal here: among several files (a Dask run) the
            # message alone did not say which one is not DBN
            raise ValueError(f"{path}: {e}") from None
        if meta.schema is not None and meta.schema != "mbo":
            # Other schemas' records are skipped by rtype, so the replay would "succeed"
            # with empty books.
            raise ValueError(f"{path}: DBN schema {meta.schema!r} is not supported: the replay "
                             "builds market-by-order books from schema 'mbo' records")
        r = _new_replayer(meta, names, options)
        r.metadata = meta
        buf = _read_buffer(chunk_size)
        view = memoryview(buf)
        n = 0
        eof = False
        read = meta.header_bytes          # bytes read from a plain stream (see _on_disk)

        def on_disk() -> int:
            return _on_disk(raw, frames.compressed if compressed else read)

        try:
            while True:
                while not eof and n < len(buf):
                    try:
                        # from a pipe, FIFO or socket what one read gives: a slow writer's
                        # records are replayed as they arrive, not once 4 MiB have come
                        k = readinto_live(stream, view[n:]) if live else \
                            stream.readinto(view[n:])
                    except zstd_error as e:
                        raise damaged(e, r.stats["messages"]) from None
                    if not k:
                        eof = True
                    else:
                        n += k
                        read += k
                        if live:
                            break
                if not n:
                    break
                consumed = r.feed(view[:n])
                if consumed:
                    buf[: n - consumed] = buf[consumed:n]
                    n -= consumed
                if progress is not None:
                    progress(on_disk())
                if on_chunk is not None:
                    on_chunk(r)
                if r.done or (eof and consumed == 0):
                    break
                if not consumed and n == len(buf):
                    # A record of another rtype is taken only once the replayer has seen
                    # where the records after it lead (up to 16 of them, 16 KiB): a small
                    # buffer full of such records was fed again and again, for ever. Doubled
                    # until the run can be judged: the buffer stays bounded by that need.
                    view.release()
                    buf.extend(bytes(len(buf)))
                    view = memoryview(buf)
            tail = b"" if r.done else bytes(view[:n])
        finally:
            view.release()
        if compressed and frames.trailing is not None and not r.done:
            # reported once every record before it is replayed, however far the read-ahead
            # of the metadata header went
            raise ValueError(f"{path}: trailing data after the {codec} stream (at compressed byte "
                             f"{frames.trailing:,}; {r.stats['messages']:,} records replayed)")
        ended_early = compressed and not r.done and _ended_early(frames)
        where = "inside a frame" if codec == "zstd" else "before its end marker"
        r.finish(tail, stream_error=(f"{codec} stream ended {where} ({on_disk():,} "
                                     "compressed bytes)") if ended_early else None)
        if on_chunk is not None:
            on_chunk(r)
        return r
    finally:
        # (no stream yet when the zstandard package is missing: the ImportError goes on)
        if compressed and stream is not None:
            stream.close()
        raw.close()
