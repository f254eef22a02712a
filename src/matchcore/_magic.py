"""The first bytes by which an input is recognised, defined once for every reader, and the one
format detection every replay entry point (the command line, several files, Dask) uses."""
from __future__ import annotations

import io
import os
import re
import stat
import zlib
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"   # a zstd frame; as an ITCH length prefix it would be 10,421
DBN_MAGIC = b"DBN"                 # then the metadata version byte
NATIVE_MAGIC = b"MCCMD"            # a matchcore command file (matchcore.native)
# the project's state files, which hold no market data: an engine journal's segments (command
# and trade journals), an engine snapshot, a book snapshot (OrderBook.snapshot() bytes)
STATE_MAGICS = {b"MCJOURNL": "journal", b"MCENGSNP": "engine_snapshot",
                b"MCSNAPSH": "book_snapshot"}
HEAD_SIZE = 8                      # bytes foreign_format() looks at for a magic
# bytes foreign_format() needs to call a stream text: more than the longest ITCH 5.0 message
# with its prefix (52 bytes), so that ITCH bytes from any offset hold a 0 byte (a prefix's high
# byte) in them
TEXT_LOOK = 64
_LOOK = 4096                       # bytes detect_format() reads (a LOBSTER row or two)

# What a text file may hold in its first bytes (a LOBSTER CSV, a header line): printable ASCII
_TEXT = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}
_BOM = b"\xef\xbb\xbf"
_NAMES = {"dbn": "DBN", "native": "native command", "lobster": "LOBSTER message CSV",
          "text": "text"}
# what a state file is, and how it is read (it replays nothing: no reader of market data takes it)
_STATE = {
    "journal": ("a matchcore journal segment (an engine's command or trade journal)",
                "read its directory with matchcore journal inspect DIR, rebuild the engine with "
                "matchcore recover DIR (mc.Engine.recover)"),
    "engine_snapshot": ("a matchcore engine snapshot",
                        "load it with mc.durability.load_snapshot, or recover its directory "
                        "with matchcore recover DIR (mc.Engine.recover)"),
    "book_snapshot": ("a matchcore book snapshot (OrderBook.snapshot() bytes)",
                      "load it with mc.OrderBook.from_snapshot"),
}
# Compressions no reader here decompresses, by their magic (bzip2's with its block magic, so
# that text starting "BZh" stays text): read as ITCH such a file was "replayed" as zero
# messages and a bad length prefix, exit status 0
OTHER_COMPRESSIONS = ((b"\xfd7zXZ\x00", "xz"), (b"\x04\x22\x4d\x18", "lz4"))
_BZIP2 = re.compile(rb"BZh[1-9]1AY&")
_ARTICLE = {"xz": "an", "lz4": "an", "bzip2": "a"}
# every compression foreign_format tells (what the refusals name as a compressed stream)
_COMPRESSIONS = ("gzip", "zstd", "bzip2") + tuple(k for _, k in OTHER_COMPRESSIONS)


def compressed_stream(kind: str) -> str:
    """``kind`` (a compression) as the messages name a stream of it: ``'an xz-compressed
    stream'``."""
    return f"{_ARTICLE.get(kind, 'a')} {kind}-compressed stream"


# the names of DBN files, by which one is told where its bytes cannot be read
DBN_SUFFIXES = (".dbn", ".dbn.zst", ".dbn.gz")


def zstd_frame_start(head: bytes, prefix: bool = False) -> bool:
    """Whether ``head`` (4 bytes) starts a zstd frame: the zstd magic, or a skippable frame's
    (0x184D2A50..0x184D2A5F, little-endian), which zstd reads past and a zstd stream may start
    with (``pzstd`` writes one before every frame). With ``prefix``, whether ``head`` (under 4
    bytes) may be the start of one. O(1).

    >>> zstd_frame_start(ZSTD_MAGIC), zstd_frame_start(b"\\x5f\\x2a\\x4d\\x18")
    (True, True)
    """
    head = bytes(head[:4])
    if prefix:
        return ZSTD_MAGIC.startswith(head) or (
            head[0] & 0xF0 == 0x50 and b"\x2a\x4d\x18".startswith(head[1:]))
    return head == ZSTD_MAGIC or (len(head) == 4 and head[0] & 0xF0 == 0x50
                                  and head[1:] == b"\x2a\x4d\x18")


def named(name: str, suffixes) -> bool:
    """Whether the file name ``name`` ends in one of ``suffixes`` (lower case), in any case:
    ``DAY.DBN.ZST`` is a ``.dbn.zst`` file, as output names are matched. O(len(name))."""
    return name.lower().endswith(suffixes)


def read_head(raw, k: int) -> bytes:
    """The first ``k`` bytes of ``raw`` (fewer only at its end): a pipe or FIFO may hand out
    less per read (and a buffered reader's ``peek`` gives what one read gave), and one byte of a
    magic must not make a compressed stream look plain. Consumes them: see :class:`Prefixed`."""
    head = b""
    while len(head) < k:
        b = raw.read(k - len(head))
        if not b:
            break
        head += b
    return head


_LIVE_READ = 1 << 16                # at most a pipe's buffer: read1(n) allocates n bytes


def readinto_live(stream, view) -> int:
    """Read into ``view`` what ``stream`` (a buffered reader) has at hand, waiting only when it
    has nothing: the bytes it holds buffered if any, else one read of the file under it. (Its
    ``readinto1`` copies the buffered bytes and then, for a ``view`` larger than its buffer,
    reads the file once more: from a pipe or FIFO that read waits for a slow writer's next
    write while the bytes at hand wait with it.) 0 at the end of the stream."""
    data = stream.read1(min(len(view), _LIVE_READ))
    view[:len(data)] = data
    return len(data)


class Prefixed(io.RawIOBase):
    """``head`` (the first bytes, already read from ``raw``), then the rest of ``raw``: a
    stream that cannot seek back (a pipe, a FIFO) keeps every byte its format detection read.
    Does not close ``raw``."""

    def __init__(self, head: bytes, raw):
        super().__init__()
        self._head = memoryview(bytes(head))
        self.raw = raw

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.raw.fileno()

    def readinto(self, view) -> int:
        if len(self._head):
            k = min(len(view), len(self._head))
            view[:k] = self._head[:k]
            self._head = self._head[k:]
            return k
        # one read, as a raw stream's readinto is (raw's own readinto waits to fill ``view``)
        return readinto_live(self.raw, view)

    def read1(self, size: int = -1) -> bytes:
        if len(self._head):
            k = len(self._head) if size is None or size < 0 else min(size, len(self._head))
            out = bytes(self._head[:k])
            self._head = self._head[k:]
            return out
        return self.raw.read1(size)


class Closing(io.BufferedReader):
    """A buffered reader of a (decompressing or prefixed) raw stream that also closes the file
    under it."""

    def __init__(self, stream, raw):
        super().__init__(stream, buffer_size=1 << 16)
        self._file = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._file.close()


class Stdin:
    """The process's stdin as a replay input ('-' on the command line), read once. Its format
    is detected from its first bytes (:meth:`read_head`, kept here), which the reader that then
    opens it gets back in front of the rest (:meth:`open`), so ``zcat day.itch.gz | matchcore
    replay -`` loses none. ``str()`` is ``<stdin>``, the name messages give it. Raises
    ValueError for a stdin that is closed or a terminal (nothing was piped in)."""

    name = "<stdin>"

    def __init__(self, fd: int = 0):
        try:
            st = os.fstat(fd)
        except OSError:
            raise ValueError("-: stdin is closed: nothing to read") from None
        if os.isatty(fd):
            raise ValueError("-: stdin is a terminal: '-' reads a stream piped or redirected "
                             "in (zcat day.itch.gz | matchcore replay -)")
        self.fd = fd
        self.live = not stat.S_ISREG(st.st_mode)
        self._file = open(fd, "rb", closefd=False)
        self._head = b""
        self._opened = False

    def __str__(self) -> str:
        return self.name

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def read_head(self, k: int) -> bytes:
        """The first ``k`` bytes (fewer only at the end of the stream), kept for :meth:`open`."""
        if len(self._head) < k and not self._opened:
            self._head += read_head(self._file, k - len(self._head))
        return self._head[:k]

    def open(self):
        """A buffered binary stream of stdin from its first byte (the bytes :meth:`read_head`
        took, then the rest). Once only: what a reader consumed is gone. Closing it leaves the
        descriptor open."""
        if self._opened:
            raise ValueError("<stdin>: already read once (a stream cannot be read twice)")
        self._opened = True
        if not self._head:
            return self._file
        return Closing(Prefixed(self._head, self._file), self._file)


def open_input(path):
    """``open(path, "rb")``, or for a :class:`Stdin` its stream from the first byte. What
    ``open()`` would take for something else than a file's path is refused (TypeError): an
    integer (a bool, a numpy integer too), which it opens as a file descriptor that the
    reader then closes, and
    bytes holding a NUL, which no path holds (ITCH data always does: "embedded null byte")."""
    if isinstance(path, Stdin):
        return path.open()
    if not isinstance(path, (str, bytes, os.PathLike)) and hasattr(type(path), "__index__"):
        raise TypeError(f"expected a file's path (str or os.PathLike), not "
                        f"{type(path).__name__} {path!r}: a file descriptor is not taken (the "
                        f"reader closes the file it opens)")
    if isinstance(path, bytes) and b"\0" in path:
        raise TypeError(f"expected a file's path, not {len(path):,} bytes of data (a path holds "
                        f"no NUL byte): feed bytes in memory to a replayer (itch.Replayer, "
                        f"DbnReplayer: feed() then finish()), or give them to itch.decode")
    return open(path, "rb")


def open_head(path, k: int):
    """Open ``path`` for reading its format from its first ``k`` bytes: (the opened file, its
    first ``k`` bytes (fewer only at its end), the stream to read from its start, whether it is
    live: a pipe, FIFO or socket). A regular file's bytes are peeked; a live stream's first read
    may give fewer (a gzip or zstd magic cut after one byte then read as plain), so they are
    read and handed back in front of the rest (:class:`Prefixed`). The caller closes the file."""
    raw = open_input(path)
    try:
        live = not stat.S_ISREG(os.fstat(raw.fileno()).st_mode)
        head = raw.peek(k)[:k]
        src = raw
        if live and len(head) < k:
            head = read_head(raw, k)
            src = Prefixed(head, raw)
    except BaseException:
        raw.close()
        raise
    return raw, head, src, live


def foreign_format(head: bytes, whole: bool = False) -> str | None:
    """The format named by the first bytes of a (decompressed) stream that cannot start an
    ITCH 5.0 stream: 'dbn' (``DBN``), 'native' (``MCCMD``), 'journal', 'engine_snapshot' or
    'book_snapshot' (the project's state files, :data:`STATE_MAGICS`), 'gzip', 'zstd', 'xz',
    'lz4' or 'bzip2' (a compressed stream), 'text' (printable ASCII, or UTF-8 text, over its first
    ``TEXT_LOOK`` bytes, or over all of them when ``whole``, ``head`` being the whole stream: a
    CSV such as LOBSTER's; see :func:`_is_text`) or 'unframed'
    (printable first bytes, but too few of them given, or a byte further on that is not text:
    ITCH bytes read from inside a message, such as a file cut with ``tail -c``, whose stock
    names and flags are ASCII); None for anything else. An ITCH stream always starts with a 0
    byte (a message is shorter than 256 bytes, so the high byte of its length prefix is 0).
    O(1).

    >>> foreign_format(b"DBN\\x02\\x10\\x00\\x00\\x00"), foreign_format(b"\\x00\\x0cS\\x00\\x00")
    ('dbn', None)
    """
    if head[:len(DBN_MAGIC)] == DBN_MAGIC:
        return "dbn"
    if head[:len(NATIVE_MAGIC)] == NATIVE_MAGIC:
        return "native"
    # printable magics, then binary header fields: "not ITCH 5.0 framing" named none of them
    state = STATE_MAGICS.get(bytes(head[:HEAD_SIZE]))
    if state is not None:
        return state
    # compressed (again, inside a gzip stream: a .zst.gz or .gz.gz file read as ITCH gave zero
    # messages and a bad length prefix, exit status 0)
    if head[:len(GZIP_MAGIC)] == GZIP_MAGIC:
        return "gzip"
    if zstd_frame_start(head):
        return "zstd"
    for magic, kind in OTHER_COMPRESSIONS:
        if head[:len(magic)] == magic:
            return kind
    if _BZIP2.match(head[:HEAD_SIZE]):
        return "bzip2"
    text = head[len(_BOM):] if head.startswith(_BOM) else head
    if text[:1] not in (b"", b"\0") and _is_text(text[:HEAD_SIZE]):
        if (whole or len(text) >= TEXT_LOOK) and _is_text(text[:TEXT_LOOK]):
            return "text"
        return "unframed"
    return None


def _is_text(data: bytes) -> bool:
    """Whether the first bytes of a stream read as text: printable ASCII, tabs and line ends,
    or UTF-8 whose other characters are printable or spaces (a comment or a column name in
    another language, "# AAPL – 10 levels": told by ASCII alone, such a LOBSTER file was
    replayed as 0 ITCH messages, exit status 0). A character cut by the end of ``data`` is
    text. ITCH bytes hold control bytes (a length prefix's 0 among them) in any 64, so they
    never read as text. O(len(data))."""
    if all(b in _TEXT for b in data):
        return True
    import codecs
    import unicodedata

    try:
        chars = codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return all(ord(c) in _TEXT if c < "\x80" else
               (c.isprintable() or unicodedata.category(c) == "Zs") for c in chars)


def refuse_foreign(head: bytes, path, reader: str, compression: str = "",
                   whole: bool = False) -> None:
    """Raise ValueError when ``head`` (the first decompressed bytes) names a format that is not
    ITCH 5.0: read as ITCH such a file gave zero messages and bad length prefixes, exit status
    0. ``reader``: what was asked to read it (for the message). Text is told from ITCH bytes
    read from inside a message by the first ``TEXT_LOOK`` bytes: with fewer (unless ``whole``:
    ``head`` is the whole stream), such a stream is refused as not starting with ITCH framing,
    never called text."""
    kind = foreign_format(bytes(head[:TEXT_LOOK]), whole)
    head = bytes(head[:HEAD_SIZE])
    if kind is None:
        return
    if kind in _STATE:
        raise ValueError(state_refusal(kind, path, f"{reader} reads ITCH 5.0", compression))
    if kind == "unframed":
        it = "its decompressed bytes start" if compression else "it starts"
        raise ValueError(f"{path}: not ITCH 5.0 framing: {it} with {head!r}, not with a "
                         f"length prefix (every ITCH 5.0 message is framed by a 2-byte "
                         f"big-endian length whose first byte is 0): {reader} reads ITCH 5.0 "
                         f"from a message boundary")
    if kind in _COMPRESSIONS:
        what = (f"a {compression} file holding {compressed_stream(kind)} (compressed twice)"
                if compression else compressed_stream(kind))
        raise ValueError(f"{path}: {what}, not ITCH 5.0: {reader} reads ITCH 5.0 (plain or "
                         f"gzip'd once); decompress it first")
    what = f"a {compression + ' ' if compression else ''}{_NAMES[kind]} file" if kind != "text" \
        else f"a {compression + ' ' if compression else ''}text file (it starts with {head!r})"
    way = {"dbn": "replay it with matchcore.feeds.dbn.replay_dbn (matchcore replay --format dbn)",
           # the command line's way too: the CLI user has no use for the function's name
           "native": "replay it with matchcore.native.replay_commands (matchcore replay "
                     "--format native)"
                     + (" after decompressing it (command files are memory-mapped)"
                        if compression else ""),
           "text": "a LOBSTER message CSV is replayed with matchcore.lobster.replay_lobster "
                   "(matchcore replay --format lobster)"
                   + (" after decompressing it" if compression else "")}[kind]
    raise ValueError(f"{path}: {what}, not ITCH 5.0: {reader} reads ITCH 5.0 (plain or gzip'd); "
                     f"{way}")


def state_refusal(kind: str, path, reads: str, compression: str = "") -> str:
    """The refusal of a state file (``kind`` of :data:`STATE_MAGICS`) given to a reader of
    market data, ``reads`` saying what that reader takes."""
    what, way = _STATE[kind]
    held = f"a {compression} file holding " if compression else ""
    return f"{path}: {held}{what}, not market data: {reads}; {way}"


# the project's own files as the readers of the others name them: an engine's snapshot-*.mcs
# handed to OrderBook.from_snapshot, or a journal segment (a "command journal" too) to
# native.read_commands, was refused as bad magic alone
_OWN_FILES = {**_STATE, "native": (
    "a matchcore command file (matchcore.native)",
    "read it with matchcore.native.read_commands, replay it with "
    "matchcore.native.replay_commands (matchcore replay --format native)")}


def own_file_hint(head, reader_kind: str) -> str:
    """``': it is WHAT; HOW TO READ IT'`` when ``head`` (a file's first bytes) starts one of the
    project's own files other than ``reader_kind`` (a key of :data:`STATE_MAGICS`' values, or
    ``'native'``), for the bad-magic refusal of the reader it was given to; ``''`` otherwise.
    O(1).

    >>> own_file_hint(b"MCENGSNP", "book_snapshot").startswith(": it is a matchcore engine")
    True
    """
    head = bytes(head[:HEAD_SIZE])
    kind = "native" if head[:len(NATIVE_MAGIC)] == NATIVE_MAGIC else STATE_MAGICS.get(head)
    if kind is None or kind == reader_kind:
        return ""
    what, way = _OWN_FILES[kind]
    return f": it is {what}; {way}"


def refuse_foreign_buffer(view, name: str, reader: str, reads: str) -> None:
    """:func:`refuse_foreign` for a buffer (``view``, the whole stream), which is read as it
    is: compressed bytes are refused too, ``reads`` saying what the reader takes instead
    ("a buffer is decoded as it is (...)"). ``name``: the buffer in the message."""
    head = bytes(view[:TEXT_LOOK])
    kind = foreign_format(head[:HEAD_SIZE])
    if kind in _COMPRESSIONS:
        raise ValueError(f"{name}: {compressed_stream(kind)}, not ITCH 5.0: {reads}; "
                         f"decompress it first")
    refuse_foreign(head, name, reader, whole=True)


def _lobster_row(line: bytes) -> bool:
    # time, event type 1..7, order id, size, price, direction -1/1 (matchcore.lobster's rules
    # check every row; this only tells a LOBSTER message row from other text)
    f = [x.strip() for x in line.split(b",")]
    if len(f) != 6:
        return False
    try:
        float(f[0])
        float(f[4])
        # the type and the direction as the reader takes them: "1.0" (a float column's
        # export) is the whole number it spells, and such a file was refused as other text
        kind, direction, oid = float(f[1]), float(f[5]), float(f[2])
        # a cross trade (type 6) carries a negative pseudo order id (-1 the opening cross); an
        # id written "16113575.0" too is the whole number it spells
        return kind in range(1, 8) and oid.is_integer() and (oid >= 0 or kind == 6) \
            and float(f[3]) >= 0 and direction in (-1, 1)
    except ValueError:
        return False


def _is_lobster(text: bytes, whole: bool) -> bool:
    """Whether the first row of ``text`` (past a byte-order mark, blank lines, comment lines
    and one header line whose first field is not a number, as matchcore.lobster reads them) is
    a LOBSTER message row. ``whole``: ``text`` is the whole file (else its last line may be
    cut)."""
    if text.startswith(_BOM):
        text = text[len(_BOM):]
    lines = text.splitlines()
    # a comment line (one that starts with '#') is no row and no header to the reader: taken
    # for the header, a second one (or the line of column names after it) was judged as the
    # first row, and a file the reader replays was refused as text that is no LOBSTER CSV
    lines = [ln for ln in (lines if whole else lines[:-1])
             if ln.strip() and not ln.startswith(b"#")]
    if not lines:
        return False
    try:
        float(lines[0].split(b",")[0])
    except ValueError:
        lines = lines[1:]                 # a header line
    return bool(lines) and _lobster_row(lines[0])


def _inflate_head(f, k: int) -> tuple[bytes, bool]:
    # the first k bytes the gzip stream read from f inflates to, and whether it is damaged or
    # cut short in them
    head, damaged, cut = _inflate(f, k)
    return head, damaged or cut


def _inflate(f, k: int) -> tuple[bytes, bool, bool]:
    # _inflate_head, telling damage (zlib's error: no more input helps) from a cut
    from matchcore._gzip import Inflater

    buf = bytearray(k)
    n = 0
    try:
        inf = Inflater(f)
        while n < k:
            got = inf.readinto(memoryview(buf)[n:])
            if not got:
                break
            n += got
    except zlib.error:
        return bytes(buf[:n]), True, False
    return bytes(buf[:n]), inf.trailing is not None, inf.cut


def _stdin_head(src: Stdin, k: int) -> tuple[str, bytes, bool]:
    # _head of stdin: its compressed bytes are read (and kept) until they inflate to k bytes
    raw = src.read_head(k)
    if raw[:len(GZIP_MAGIC)] != GZIP_MAGIC:
        return ("zstd" if zstd_frame_start(raw) else ""), raw, False
    n = max(k, 1 << 16)
    while True:
        raw = src.read_head(n)
        head, damaged, cut = _inflate(io.BytesIO(raw), k)
        # enough, the whole stream, or damage that no more of it inflates past (read on, a
        # stream damaged near its start was read whole into memory, and from a pipe only once
        # its writer ended)
        if len(head) >= k or len(raw) < n or damaged:
            return "gzip", head, damaged or cut
        n *= 2


def _stdin_is_dbn(src: Stdin) -> bool:
    # whether stdin's zstd stream starts with the DBN magic (False without zstandard: the ITCH
    # reader then refuses it as zstd, as a file not named .dbn.zst)
    try:
        import zstandard
    except ImportError:
        return False
    from matchcore.feeds.dbn import _ZstdFrames

    n = 1 << 16
    while True:
        raw = src.read_head(n)
        # through the replay's own frame reader: one decompressor stopped at the end of a
        # skippable frame (pzstd starts every file with one), having decompressed nothing
        frames = _ZstdFrames(zstandard, io.BytesIO(raw))
        out = bytearray(len(DBN_MAGIC))
        got = 0
        try:
            while got < len(out):
                k = frames.readinto(memoryview(out)[got:])
                if not k:
                    break
                got += k
        except zstandard.ZstdError:
            return False
        # bytes after a frame that start no frame end it for good; fewer than a magic's 4 at
        # the end of the look may be the start of the next frame's
        junk = frames.trailing is not None and frames.trailing + 4 <= len(raw)
        if got >= len(DBN_MAGIC) or len(raw) < n or junk:
            return bytes(out[:got]) == DBN_MAGIC
        n *= 2


def _head(path: Path, k: int) -> tuple[str, bytes, bool]:
    """(compression '' / 'gzip' / 'zstd', the first ``k`` bytes of the decompressed stream
    (zstd: not decompressed), whether the gzip stream is damaged or cut short in them)."""
    if isinstance(path, Stdin):
        return _stdin_head(path, k)
    with open(path, "rb") as f:
        raw = f.read(k)
        if raw[:len(GZIP_MAGIC)] == GZIP_MAGIC:
            f.seek(0)
            return ("gzip", *_inflate_head(f, k))
    return ("zstd" if zstd_frame_start(raw) else ""), raw, False


def detect_format(path, replay: bool = True) -> str:
    """The format of a replay file by its first bytes (after gzip decompression): 'dbn' (plain,
    zstd or gzip'd), 'native' (``MCCMD``), 'lobster' (a text file whose first row is a LOBSTER
    message row), else 'itch' (ITCH 5.0 has no magic of its own; plain or gzip'd). A file no
    reader takes is refused with ValueError naming what it is: an empty file (or a gzip stream
    of no bytes), a gzip'd native command file or LOBSTER CSV (their readers do not
    decompress), other text, one of the project's state files (:data:`STATE_MAGICS`: a journal
    segment, an engine or book snapshot). Reads a few KiB at most; the
    caller refuses a pipe or FIFO first (the bytes read here would be lost to its replay), but
    for a :class:`Stdin`, which keeps them for its reader.

    ``replay=False`` (a reader of ITCH alone, such as ``book``, that refuses every other
    format by name): a gzip'd native or LOBSTER file is 'native' or 'lobster' and other text
    'text', not refused here in replay's words.

    >>> detect_format("mbo.dbn.gz")                   # doctest: +SKIP
    'dbn'
    """
    p = path if isinstance(path, Stdin) else Path(path)
    gunzip = "" if isinstance(p, Stdin) else f" (gunzip -k {p})"
    gzipped = "gzip'd "
    comp, head, broken = _head(p, _LOOK)
    gz = comp == "gzip"
    if comp == "zstd" or (gz and broken and len(head) < len(DBN_MAGIC)
                          and named(p.name, ".dbn.gz")):
        # zstd: DBN, or refused by the ITCH reader; a damaged or cut gzip'd DBN file: by name,
        # so that its replay reports the damage as DBN
        from matchcore.feeds.dbn import is_dbn

        fmt = "dbn" if (_stdin_is_dbn(p) if isinstance(p, Stdin) else is_dbn(p)) else "itch"
    elif not head and broken:
        fmt = "itch"          # the ITCH reader reports the damaged or cut gzip stream
    elif (head and not comp and len(head) < len(ZSTD_MAGIC) and named(p.name, DBN_SUFFIXES)
          and any(magic.startswith(head) for magic in (ZSTD_MAGIC, GZIP_MAGIC, DBN_MAGIC))):
        # a file named DBN that ends inside the magic of its compression or its own (cut
        # short): the DBN replay says so, where "(" or "DB" was refused as other text
        fmt = "dbn"
    elif (head and not comp and len(head) < len(NATIVE_MAGIC) and named(p.name, ".mccmd")
          and NATIVE_MAGIC.startswith(head)):
        # a command file cut inside its magic: the native reader says so, where "MCC" was
        # refused as text that is no LOBSTER CSV
        fmt = "native"
    elif not head:
        empty = "an empty stream" if isinstance(p, Stdin) else "an empty file"
        raise ValueError(f"{p}: {'a gzip stream of no bytes' if gz else empty}: "
                         "nothing to replay, and no format to detect")
    else:
        kind = foreign_format(head, len(head) < _LOOK and not broken)
        others = ("bzip2",) + tuple(k for _, k in OTHER_COMPRESSIONS)
        if kind in ("gzip", "zstd") or (gz and kind in others):
            # a .dbn.zst.gz or .itch.gz.gz: no reader decompresses twice
            raise ValueError(f"{p}: a gzip'd file holding {compressed_stream(kind)} "
                             f"(compressed twice): decompress it first{gunzip}")
        if kind in _STATE:
            reads = ("replay reads ITCH 5.0, DBN, LOBSTER message CSV and native command files"
                     if replay else "the ITCH reader reads ITCH 5.0")
            raise ValueError(state_refusal(kind, p, reads, "gzip'd" if gz else ""))
        if kind in others:
            if not replay:
                # an ITCH reader's refusal, in its words (book read no replay formats)
                refuse_foreign(head, p, "the ITCH reader")
            # an .itch.xz or .dbn.xz was replayed as ITCH: zero messages, exit status 0
            raise ValueError(f"{p}: {compressed_stream(kind)}: replay reads ITCH 5.0 files "
                             f"plain or gzip'd and DBN files plain, gzip'd or zstd; "
                             f"decompress it first")
        if kind == "text":
            if not replay and not _is_lobster(head, len(head) < _LOOK):
                return "text"
            if not _is_lobster(head, len(head) < _LOOK):
                line = head.split(b"\n", 1)[0][:60]
                raise ValueError(f"{p}: a {gzipped if gz else ''}text file that "
                                 f"is not a LOBSTER message CSV (its first line starts "
                                 f"{line!r}): replay reads ITCH 5.0, DBN, LOBSTER message CSV "
                                 "and native command files")
            kind = "lobster"
        if kind == "unframed" and not named(p.name, DBN_SUFFIXES):
            # ITCH bytes from inside a message: refused here in the ITCH reader's words, so
            # that several files are refused before any of them is replayed
            refuse_foreign(head, p, "the ITCH reader", "gzip'd" if gz else "")
        fmt = "itch" if kind in (None, "unframed") else kind
        if fmt == "itch" and named(p.name, DBN_SUFFIXES):
            fmt = "dbn"       # named DBN, holding no DBN magic: refused by the DBN replay
        if gz and fmt in ("native", "lobster") and replay:
            raise ValueError(f"{p}: a gzip'd {_NAMES[fmt]} file: {_NAMES[fmt]} files are read "
                             f"uncompressed; decompress it first{gunzip}")
    return fmt
