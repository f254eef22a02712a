"""Journal directories: segment files of the command journal and of the trade capture journal.

A directory holds ``journal-<first seq>.mcj`` segments (every inbound command and config change,
accepted or rejected, one sequence), ``trades-<first seq>.mct`` segments (every fill) and
``snapshot-<seq>.mcs`` files. The byte layouts live in :mod:`matchcore.durability._journal`;
this module lists and scans segments and classifies damage:

* a bad record (length, CRC, truncation) with nothing well formed after it, in this segment or a
  later one, is a **torn tail**: reported, and cut by recovery;
* a bad record followed by a well-formed one, a sequence gap or overlap, or a bad header on a
  segment that is not a torn last one is **corruption**: :class:`JournalError` naming segment
  and offset. A torn header is one whose CRC does not hold: a whole header that this version
  cannot read (a newer version, another kind of segment) is corruption, never cut.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

import numpy as np

from matchcore._core import COMMAND_DTYPE, STP, _flag_arg
from matchcore.durability import _journal as _j
from matchcore.durability.errors import JournalError

KIND_COMMANDS = _j.KIND_COMMANDS
KIND_TRADES = _j.KIND_TRADES
_MAX_STP = max(int(m) for m in STP)
_SEGMENT_MAGIC = b"MCJOURNL"          # every segment header's first bytes


@dataclass
class Segment:
    """One segment file as scanned."""
    path: str
    kind: int
    first_seq: int
    size: int                      # bytes on file
    stp: int | None = None
    records: int = 0
    last_seq: int | None = None    # None: no valid record
    end: int = 0                   # offset past the last valid record
    damage: str | None = None      # why the valid records stop before `size`
    valid_after: bool = False      # a well-formed record lies after the damage
    index: np.ndarray | None = field(default=None, repr=False)
    data: bytes | np.ndarray | None = field(default=None, repr=False)   # see ReadBuffer
    types: dict = field(default_factory=dict, repr=False)   # record type -> count
    # the state hash its header records for the engine before first_seq (None: not recorded)
    base_hash: int | None = None
    # its writer's segment_bytes, as its header records it (None: an earlier version's file)
    segment_bytes: int | None = None
    # its writer's fsync policy, as a command segment's header records it (None: a trade
    # segment, or an earlier version's file)
    fsync: str | None = None
    # whether its engine captured trades, as a command segment's header records it (None: a
    # trade segment, or an earlier version's file)
    trades: bool | None = None

    def load(self, into: ReadBuffer | None = None) -> Segment:
        """This segment with its bytes and record index: itself when the scan kept them, else
        read and scanned again, checked to hold the same records (a file that lost or changed
        them meanwhile, or is gone, raises :class:`SegmentChanged`, a :class:`JournalError`;
        records appended since are left out).
        With ``into``, the bytes are read into that buffer, or taken from it when its last read
        was of this file (recovery's scan reads the last segment last; a snapshot's tail is
        usually there): the segment returned is good until the buffer's next read.
        O(segment bytes)."""
        into = _into_arg(into)
        if self.data is not None and self.index is not None:
            return self
        data = into.holds(self.path) if into is not None else None
        if data is None:
            try:
                data = _read_segment(self.path, into)
            except JournalError:
                if _gone(self.path):
                    # dropped since the scan (a writing recovery drops the trade segments
                    # wholly after its cut): the directory changed under the reader, whose
                    # scan no longer holds; not a segment that cannot be read
                    raise SegmentChanged(f"{self.path} was removed after it was scanned",
                                         self.path, 0) from None
                raise
        seg = scan_segment_bytes(data, self.kind, self.path, self.first_seq)
        index = seg.index[:self.records]
        end = (int(index["offset"][-1]) + int(index["length"][-1]) if self.records
               else _j.SEG_HEADER)
        if (seg.records < self.records or end != self.end
                or (self.records and int(index["seq"][-1]) != self.last_seq)):
            raise SegmentChanged(f"{self.path} changed while it was read: its records differ "
                                 f"from those scanned", self.path, 0)
        return Segment(self.path, self.kind, self.first_seq, self.size, self.stp, self.records,
                       self.last_seq, self.end, self.damage, self.valid_after, index, data,
                       self.types, self.base_hash, self.segment_bytes, self.fsync,
                       self.trades)


class SegmentChanged(JournalError):
    """A segment lost or changed records, or was removed, between its scan and a later read of
    it (:meth:`Segment.load`), or a snapshot listed was gone when read (``inspect``): a
    writing recovery cut, dropped or set it aside meanwhile (the readers take no lock)."""


@dataclass
class JournalScan:
    """A whole journal (one kind) as scanned: its segments in order and the damage found."""
    path: str
    kind: int
    segments: list[Segment]
    stp: int | None
    tail: tuple[str, int, str] | None = None      # torn tail: (segment, offset, reason)
    corrupt: tuple[str, int, str] | None = None   # corruption: (segment, offset, reason)
    drop: list[str] = field(default_factory=list)  # trailing segment files with nothing valid
    # the corruption is a segment file that cannot be read (or whose whole header this version
    # cannot read)
    unreadable: bool = False
    _loaded: Segment | None = field(default=None, repr=False)   # the last load_seq() gave
    # the ReadBuffer the scan read into (scan_journal's ``into``): load_seq loads into it too
    _buffer: ReadBuffer | None = field(default=None, repr=False)

    def load_seq(self, seq: int) -> Segment | None:
        """The segment holding record ``seq``, loaded (:meth:`Segment.load`), or None. The last
        one loaded is kept, so a run of lookups in seq order reads each segment once. A scan
        made with ``into`` loads into that buffer: the segment returned is good until its next
        read."""
        for seg in self.segments:
            if seg.records and seg.first_seq <= seq <= seg.last_seq:
                if self._loaded is None or self._loaded.path != seg.path:
                    self._loaded = None
                    self._loaded = seg.load(self._buffer)
                return self._loaded
        return None

    @property
    def records(self) -> int:
        return sum(s.records for s in self.segments)

    @property
    def last_seq(self) -> int:
        """Seq of the last valid record (first_seq - 1 of the first segment if none)."""
        for s in reversed(self.segments):
            if s.last_seq is not None:
                return s.last_seq
        return self.segments[0].first_seq - 1 if self.segments else 0

    def raise_if_corrupt(self) -> None:
        if self.corrupt is not None:
            seg, off, why = self.corrupt
            if self.unreadable:
                raise JournalError(f"journal segment unreadable: {why} (what it holds is "
                                   f"unknown; refusing to go past it)", seg, off)
            raise JournalError(f"journal corrupt in {seg} at offset {off}: {why} "
                               f"(valid records follow; refusing to skip them)", seg, off)


def _kind_arg(kind) -> int:
    # a journal kind as read_journal and scan_journal take it: anything else raised a bare
    # KeyError from the segment name table, and True or 1.0 passed for the command journal
    if isinstance(kind, bool) or not isinstance(kind, (int, np.integer)):
        raise TypeError(f"kind must be KIND_COMMANDS ({KIND_COMMANDS}) or KIND_TRADES "
                        f"({KIND_TRADES}), got {kind!r}")
    if kind not in (KIND_COMMANDS, KIND_TRADES):
        raise ValueError(f"kind must be KIND_COMMANDS ({KIND_COMMANDS}) or KIND_TRADES "
                         f"({KIND_TRADES}), got {kind!r}")
    return int(kind)


def segment_files(path, kind: int) -> list[tuple[int, str]]:
    """(first seq, file path) of a directory's segments of one kind, in seq order."""
    prefix, suffix = _j.SEGMENT_PREFIX[kind] + "-", _j.SEGMENT_SUFFIX[kind]
    out = []
    for name in os.listdir(path):
        if name.startswith(prefix) and name.endswith(suffix):
            digits = name[len(prefix):-len(suffix)]
            # ASCII digits only: isdigit() accepts '²' (int() then raised ValueError) and '٣'
            if digits.isascii() and digits.isdigit():
                out.append((int(digits), os.path.join(path, name)))
    return sorted(out)


def own_file_name(name: str) -> str | None:
    """What a file named ``name`` in a journal directory is taken for by recovery and the
    engine (``"a command segment"``, ``"a trade segment"``, ``"a snapshot"``, ``"a segment
    temporary"``: recovery deletes it, ``"the LOCK"``), whether or not it exists; None for any
    other name. The names :func:`segment_files`, ``list_snapshots``,
    :func:`segment_temporaries` and :func:`lock_directory` read. O(len(name))."""
    def seq_digits(pre, suf, width=None):
        digits = name[len(pre):len(name) - len(suf)]
        return (name.startswith(pre) and name.endswith(suf) and len(name) > len(pre + suf)
                and digits.isascii() and digits.isdigit()
                and (width is None or len(digits) == width))
    if name == "LOCK":
        return "the LOCK"
    for kind, what in ((KIND_COMMANDS, "a command segment"), (KIND_TRADES, "a trade segment")):
        pre, suf = _j.SEGMENT_PREFIX[kind] + "-", _j.SEGMENT_SUFFIX[kind]
        if seq_digits(pre, suf):
            return what
        if seq_digits(pre, suf + ".new", 20):
            return "a segment temporary"
    if seq_digits("snapshot-", ".mcs"):
        return "a snapshot"
    return None


def scan_segment_bytes(data: bytes, kind: int, name: str = "<bytes>",
                       first_seq: int | None = None) -> Segment:
    """Scan one segment's bytes: header checked (:class:`JournalError` if bad), records
    indexed, damage described. Never raises for damaged records. O(bytes)."""
    try:
        hkind, stp, hfirst, _ = _j.read_segment_header(data)
    except JournalError as exc:
        raise JournalError(f"{name}: {exc}", name, 0) from None
    if hkind != kind:
        raise JournalError(f"{name}: segment of kind {hkind}, expected {kind}", name, 0)
    if stp > _MAX_STP:
        # the header decides the recovered engine's mode: an unknown one is damage, refused
        # here rather than by Engine() (a ValueError) deep inside recovery
        raise JournalError(f"{name}: unknown STP mode {stp} in the segment header", name, 0)
    if first_seq is not None and hfirst != first_seq:
        raise JournalError(f"{name}: header says first seq {hfirst}, file name says {first_seq}",
                           name, 0)
    index, end, why, after = _j.scan_segment(data, kind, hfirst)
    return Segment(name, kind, hfirst, len(data), stp, len(index),
                   int(index["seq"][-1]) if len(index) else None, end,
                   _j.DAMAGE.get(why) if why else None, bool(after), index, data,
                   base_hash=_j.segment_base_hash(data), segment_bytes=_j.segment_limit(data),
                   fsync=_j.segment_policy(data), trades=_j.segment_trades(data))


def _header_intact(data) -> bool:
    """Whether ``data`` starts with a whole segment header, as a writer wrote it (magic and
    CRC hold), whatever its fields say: a crash cannot have torn it."""
    head = bytes(memoryview(data).cast("B")[:_j.SEG_HEADER])
    return (len(head) == _j.SEG_HEADER and head[:8] == _SEGMENT_MAGIC
            and _j.crc32c(head[:60]) == int.from_bytes(head[60:64], "little"))


def scan_journal(path, kind: int = KIND_COMMANDS, *, keep_data: bool = True,
                 keep_index: bool = True, into: ReadBuffer | None = None) -> JournalScan:
    """Scan every segment of one kind in a directory and classify the damage (see the module
    docstring). Does not raise on corruption: check :attr:`JournalScan.corrupt` or call
    :meth:`JournalScan.raise_if_corrupt`. ``keep_data=False`` keeps no segment's bytes,
    ``keep_index=False`` no bytes and no record index either (each segment's summary and record
    counts by type only; :meth:`Segment.load` reads one again): memory for one segment at a
    time, not the whole journal. Such a scan reads into ``into`` when given (a
    :class:`ReadBuffer`, which then holds the last segment's bytes for :meth:`Segment.load`).
    A missing directory raises ``FileNotFoundError`` naming it as ``list_snapshots`` does
    ("no journal directory X"), a file that is no directory ``NotADirectoryError`` ("X is not
    a directory"). A segment listed that is gone when read (a writing recovery dropped it
    meanwhile) makes it list the directory again. O(journal bytes)."""
    # (None listed the current directory, an int was taken for a file descriptor)
    refuse_bytes_dir(path)
    kind = _kind_arg(kind)
    keep_data = _flag_arg(keep_data, "keep_data")
    keep_index = _flag_arg(keep_index, "keep_index")
    keep_data = keep_data and keep_index
    into = _into_arg(into)
    relists = _RELISTS
    while True:
        try:
            files = segment_files(path, kind)
        except (FileNotFoundError, NotADirectoryError) as exc:
            # named as list_snapshots names it (a bare "[Errno 2] No such file or directory")
            raise listing_error(path, exc) from None
        if files:
            # A directory listed while a live writer makes segments in it (inspect and
            # read-only readers take no lock) may leave out one made during the listing and
            # hold a later one (readdir's order is the file system's, not the names'): a
            # "sequence gap" of the listing's. Every segment made during the first listing is
            # there for the whole second one, which therefore holds it: those up to the newest
            # first listed are taken from both (later ones, made since, are left out as if
            # made after the scan).
            newest = files[-1][0]
            files = sorted(set(files) | {f for f in segment_files(path, kind)
                                         if f[0] <= newest})
        try:
            return _scan_listed(path, kind, files, keep_data, keep_index, into,
                                relist=relists > 0)
        except _ListedFileGone:
            # A segment listed was gone when read: a writing recovery (which holds the LOCK
            # the readers do not take) dropped it meanwhile, a trailing one with nothing
            # valid. Read as a segment that cannot be read, it was reported as corruption
            # ("what it holds is unknown; recovery refuses") of a directory being repaired.
            # The directory is listed again; a segment that is really missing then shows as
            # what it is (a sequence gap), one that stays listed and cannot be read as before.
            relists -= 1


# How many times a scan lists the directory again after a segment it listed vanished before
# it was read (see scan_journal): one recovery drops a few files once; a directory whose files
# keep vanishing is scanned as it is found after that, each vanished file reported unreadable.
_RELISTS = 100


class _ListedFileGone(Exception):
    """A segment file listed by the scan no longer exists (internal to scan_journal)."""


def _gone(fpath) -> bool:
    # no directory entry at all: a dangling symbolic link is there (and unreadable)
    return not os.path.lexists(fpath)


def _into_arg(into):
    # checked before any file is read: anything else failed on the first segment's read with
    # an AttributeError about ReadBuffer's insides
    if into is not None and not isinstance(into, ReadBuffer):
        raise TypeError(f"into must be a ReadBuffer or None, got {type(into).__name__} "
                        f"{into!r:.80}")
    return into


def listing_error(path, exc: OSError) -> OSError:
    """The error of a journal directory's listing (``scan_journal``, ``list_snapshots``) that
    failed with ``exc``, of the same type, in the words recovery and ``journal inspect`` use:
    "no journal directory X" (``FileNotFoundError``), "X is not a directory"
    (``NotADirectoryError``: a regular file, or a link to one). A path under a regular file
    (``file/journal``, which the system calls "not a directory" too) is nothing there, as
    :func:`require_directory` says it. O(1)."""
    if isinstance(exc, NotADirectoryError) and os.path.exists(path):
        return NotADirectoryError(errno.ENOTDIR, f"{path} is not a directory", str(path))
    shown = str(path) or "'' (an empty path)"
    return FileNotFoundError(errno.ENOENT, f"no journal directory {shown}", str(path))


def _scan_listed(path, kind, files, keep_data, keep_index, into,
                 relist: bool = False) -> JournalScan:
    # scan_journal of the segment files listed: files. relist: a listed file found gone
    # raises _ListedFileGone (the caller lists again) instead of being reported unreadable
    scan = JournalScan(str(path), kind, [], None)
    n = len(files)
    buf = None if keep_data else (into if into is not None else ReadBuffer())
    scan._buffer = into if buf is into else None
    for i, (first, fpath) in enumerate(files):
        try:
            data = _read_segment(fpath, buf)
        except JournalError as exc:
            if relist and _gone(fpath):
                raise _ListedFileGone(fpath) from None
            # what it holds is unknown: neither skipped nor taken for a torn tail
            scan.corrupt, scan.unreadable = (fpath, 0, str(exc)), True
            return scan
        try:
            seg = scan_segment_bytes(data, kind, fpath, first)
        except JournalError as exc:
            # A header torn by a crash while a segment was being created can only be on the
            # last segment, with nothing valid in it. A whole header (its CRC holds) was
            # written as it is: one this version cannot read (a newer version, another kind)
            # is not torn, and its records are not nothing.
            intact = _header_intact(data)
            if i == n - 1 and not intact and not _j.segment_has_valid_record(data, kind):
                scan.drop.append(fpath)
                if scan.tail is None:
                    scan.tail = (fpath, 0, "torn segment header")
                continue
            # (behind a whole header this version cannot read, what the file holds is unknown)
            scan.corrupt, scan.unreadable = (fpath, exc.offset or 0, str(exc)), intact
            return scan
        if scan.stp is None:
            scan.stp = seg.stp
        elif seg.stp != scan.stp:
            scan.corrupt = (fpath, 0, f"STP mode {seg.stp} differs from earlier segments "
                                      f"({scan.stp})")
            return scan
        prev = scan.segments[-1] if scan.segments else None
        if prev is not None and prev.damage is None:
            expect = (prev.last_seq + 1) if prev.last_seq is not None else prev.first_seq
            if seg.first_seq > expect:
                scan.corrupt = (fpath, 0, f"sequence gap: segment starts at {seg.first_seq}, "
                                          f"previous ends before {expect}")
                return scan
            if seg.first_seq < expect:
                # records held twice (a segment copied or restored under another name), not
                # missing ones
                scan.corrupt = (fpath, 0, f"sequence overlap: segment starts at "
                                          f"{seg.first_seq}, but {os.path.basename(prev.path)} "
                                          f"already holds seqs up to {expect - 1}")
                return scan
        if prev is not None and prev.damage is not None:
            # the previous segment's damage was judged a tail only if nothing valid follows;
            # getting here means this segment holds nothing valid: it is dropped.
            scan.drop.append(fpath)
            continue
        counts = np.bincount(seg.index["type"]) if seg.records else ()
        seg.types = {t: int(c) for t, c in enumerate(counts) if c}
        if not keep_data:
            seg.data = None
        if not keep_index:
            seg.index = None
        scan.segments.append(seg)
        if seg.damage is not None:
            try:
                later = any(_later_has_records(f, kind) for _, f in files[i + 1:])
            except JournalError as exc:
                if relist and _gone(exc.segment):
                    raise _ListedFileGone(exc.segment) from None
                scan.corrupt, scan.unreadable = (exc.segment, 0, str(exc)), True
                return scan
            if seg.valid_after or later:
                scan.corrupt = (fpath, seg.end, seg.damage)
                return scan
            scan.tail = (fpath, seg.end, seg.damage)
    return scan


class ReadBuffer:
    """One growing byte buffer for reads whose bytes are not kept: a scan that keeps no data,
    recovery's replay of one segment after another. What :meth:`read` returns is a view of the
    buffer, valid until the next read into it.

    A 64 MiB segment read into a new ``bytes`` object also pays the faults and zeroing of 16k
    fresh pages: 90-134 ms on the benchmark VM, against 58-84 ms into a buffer already faulted
    (the copy out of the page cache, which no read avoids). Reused, the pages are faulted once
    per scan or recovery, not once per segment read."""

    def __init__(self):
        self._buf = np.empty(0, dtype=np.uint8)
        # (path, st_dev, st_ino) of the file whose bytes the buffer holds, and those bytes
        self.source = None
        self.last = None

    def read(self, fh, size_hint: int) -> np.ndarray:
        """Everything left in ``fh`` (to its end, as ``fh.read()``; the file may have grown or
        shrunk since ``size_hint`` was taken) as a uint8 view of the buffer."""
        buf = self._buf
        if len(buf) < size_hint + 1:
            buf = self._buf = np.empty(size_hint + 1, dtype=np.uint8)
        got = 0
        while True:
            if got == len(buf):        # it grew while being read: double, keep what came
                bigger = np.empty(2 * len(buf), dtype=np.uint8)
                bigger[:got] = buf
                buf = self._buf = bigger
            k = fh.readinto(memoryview(buf)[got:])
            if not k:
                self.last = buf[:got]
                return self.last
            got += k

    def holds(self, path) -> np.ndarray | None:
        """The bytes of the last read if it was of ``path``, and ``path`` is still that file
        (not replaced since); else None."""
        if self.source is None or self.source[0] != os.fspath(path):
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return self.last if (st.st_dev, st.st_ino) == self.source[1:] else None


def read_regular_file(fpath, into: ReadBuffer | None = None):
    """The bytes of the regular file ``fpath`` (with ``into``, a uint8 view of that buffer,
    valid until its next read); OSError for anything else. A FIFO, socket or device under a
    segment's or snapshot's name is refused (EINVAL) instead of read: opened as a file, a FIFO
    with no writer blocked recovery, ``inspect`` and the readers forever."""
    fd = os.open(fpath, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(fpath))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device)",
                          str(fpath))
        with open(fd, "rb", buffering=0, closefd=False) as fh:
            if into is None:
                return fh.read()
            into.source = None
            data = into.read(fh, st.st_size)
            into.source = (os.fspath(fpath), st.st_dev, st.st_ino)
            return data
    finally:
        os.close(fd)


def _read_segment(fpath: str, into: ReadBuffer | None = None):
    # A segment that cannot be read (no permission, a directory or a dangling link under a
    # segment's name) is the readers' one exception, naming it, not an OSError from deep inside
    # recovery or inspect: the OSError is its __cause__.
    try:
        return read_regular_file(fpath, into)
    except OSError as exc:
        raise JournalError(f"{fpath}: cannot be read: {exc.strerror or exc}", fpath,
                           0) from exc


def _later_has_records(fpath: str, kind: int) -> bool:
    return _j.segment_has_valid_record(_read_segment(fpath), kind)


def read_journal(source, kind: int = KIND_COMMANDS) -> dict:
    """Every valid record of a journal, from a directory or from one segment's bytes: the
    entry point for tools and fuzzers. Returns ``{"index": RECORD_INDEX_DTYPE array (offsets
    within their segment), "commands": COMMAND_DTYPE array, "seqs", "results", "configs":
    [(seq, type name, fields)], "tail": None or (segment, offset, reason)}``. A torn tail is
    reported, not raised; anything else wrong raises :class:`JournalError` (only that).
    O(bytes)."""
    kind = _kind_arg(kind)
    if isinstance(source, (bytes, bytearray, memoryview)):
        seg = scan_segment_bytes(bytes(source), kind)
        if seg.damage is not None and seg.valid_after:
            raise JournalError(f"journal corrupt at offset {seg.end}: {seg.damage}",
                               "<bytes>", seg.end)
        segs = [seg]
        tail = ("<bytes>", seg.end, seg.damage) if seg.damage else None
    else:
        refuse_bytes_dir(source)
        require_directory(source)
        scan = scan_journal(source, kind)
        scan.raise_if_corrupt()
        segs, tail = scan.segments, scan.tail
    index_parts, cmd_parts, seq_parts, res_parts, configs = [], [], [], [], []
    for seg in segs:
        index_parts.append(seg.index)
        if kind == KIND_COMMANDS:
            is_cmd = seg.index["type"] == _j.REC_COMMAND
            c, s, r = _j.extract_commands(seg.data, np.ascontiguousarray(
                seg.index["offset"][is_cmd]))
            cmd_parts.append(c), seq_parts.append(s), res_parts.append(r)
            for off in seg.index["offset"][~is_cmd].tolist():
                name, seq, fields = _j.decode_config(seg.data, off)
                configs.append((seq, name, fields))
    return {
        "index": np.concatenate(index_parts) if index_parts else
        np.zeros(0, _j.RECORD_INDEX_DTYPE),
        "commands": np.concatenate(cmd_parts) if cmd_parts else np.zeros(0, COMMAND_DTYPE),
        "seqs": np.concatenate(seq_parts) if seq_parts else np.zeros(0, np.uint64),
        "results": np.concatenate(res_parts) if res_parts else np.zeros(0, np.int64),
        "configs": configs,
        "tail": tail,
    }


def refuse_bytes_dir(path, what: str = "journal directory"):
    """``path`` unchanged, or ``TypeError`` for a bytes path (or an ``os.PathLike`` giving
    bytes): a journal's and a snapshot's file names are str, and such a directory was made
    (or, to recovery, not found) before the mix of bytes and str failed; and for anything
    else that is not a str or an ``os.PathLike`` of str (None, a number: recovery looked for
    the directory of its ``str()``, an int was taken for a file descriptor). Checked before
    anything is made or read. O(1)."""
    raw = os.fspath(path) if isinstance(path, os.PathLike) else path
    if isinstance(raw, (bytes, bytearray, memoryview)):
        # a segment's bytes given for its directory: named by size, not by a repr about four
        # times the data (250 MB for a 64 MiB segment)
        n = memoryview(raw).nbytes
        # a path holds no NUL and is at most PATH_MAX long: shown; data is named by its size
        looks_path = n <= 4096 and b"\0" not in bytes(raw)
        shown = f"{bytes(raw)!r}" if looks_path else f"of {n:,} bytes"
        raise TypeError(f"{what} must be a str or os.PathLike of str, got {type(raw).__name__} "
                        f"{shown} (a bytes path: decode it with os.fsdecode; read_journal() "
                        f"reads a segment's bytes)")
    if not isinstance(raw, str):
        raise TypeError(f"{what} must be a str or os.PathLike of str, got {type(raw).__name__} "
                        f"{raw!r}")
    return path


def require_directory(path) -> None:
    """Raise :class:`JournalError` unless ``path`` is a directory: "no journal directory X"
    when nothing is there, or a symlink to nothing (a mistyped name was reported "is not a
    directory", as if a file stood there), "X is not a directory" when something else is,
    and "X cannot be read" for a directory whose files cannot be listed (no read permission:
    the ``OSError`` is its ``__cause__``). O(1)."""
    if not os.path.isdir(path):
        if os.path.exists(path):
            raise JournalError(f"{path} is not a directory", str(path))
        shown = str(path) or "'' (an empty path)"
        raise JournalError(f"no journal directory {shown}", str(path))
    try:
        with os.scandir(path):
            pass
    except OSError as exc:
        # the readers' one exception, as for a segment that cannot be read: a bare
        # PermissionError came from deep inside the scan (read_journal, read_trades, inspect,
        # recovery, read-only too)
        raise JournalError(f"{path} cannot be read: {exc.strerror or exc} (its files cannot "
                           f"be listed)", str(path)) from exc


def lock_directory(path) -> int:
    """Take the directory's ``LOCK`` file (an exclusive ``flock``) for one writing engine; the
    fd, to be handed to the engine's writers, each of which keeps a copy (the lock is released
    once every copy is closed). A second engine, in this process or another, gets
    :class:`JournalError`; so does one that finds the directory's ``LOCK`` removed or replaced
    right after it locked it, a hundred times in a row (it takes the directory's file again
    each time)."""
    from matchcore.durability.snapshot import makedirs_durable
    # the journal's segments are only as durable as its name; made only in a directory that
    # exists (a mistyped parent put the journal somewhere new)
    makedirs_durable(path, parents=False)
    lock = os.path.join(path, "LOCK")
    for _ in range(100):
        fd = _lock_file(path, lock)
        # A start that gave up removes the LOCK it made (a refused recovery, a journal that
        # could not start): taken after that removal, this lock was of a file no longer in
        # the directory, and the next writer made a new LOCK and took it too (two writers
        # of one journal). Held only if the directory's LOCK is still the file locked.
        st = os.fstat(fd)
        try:
            now = os.lstat(lock)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            return fd
        os.close(fd)
    raise JournalError(f"{lock} was removed or replaced each time it was locked: another "
                       f"process keeps making and removing it", str(path))


def _lock_file(path, lock) -> int:
    # lock_directory's open and flock of the LOCK file (not checked to be the directory's);
    # never through a symbolic link (the lock file was made, and locked, outside the
    # directory), and only a regular file: a directory or a dangling link under the name gave
    # a bare OSError, a FIFO or a device was opened
    import fcntl
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK,
                     0o644)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.EISDIR):
            raise
        what = "a symbolic link" if exc.errno == errno.ELOOP else "a directory"
        raise JournalError(_lock_refused(lock, what), str(path)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise JournalError(_lock_refused(lock, "a FIFO, socket or device"), str(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalError(f"{path} is in use by another engine (its LOCK is held)",
                           str(path)) from None
    except BaseException:
        # any other failure (EIO, ENOLCK, an interrupt) left the descriptor open
        os.close(fd)
        raise
    return fd


def _lock_refused(lock, what) -> str:
    return (f"{lock} is not a regular file ({what}): the directory's lock is only taken on a "
            f"regular file named LOCK")


def lock_refusal(path) -> str | None:
    """Why a writing engine (:func:`lock_directory`: ``Engine(journal=...)``,
    ``Engine.recover``, ``matchcore recover --repair``) refuses the directory's ``LOCK``, its
    :class:`JournalError` message, or None: a ``LOCK`` that is not a regular file (a symbolic
    link, a directory, a FIFO, socket or device). Looked at, never opened or made: what
    ``journal inspect`` and a read-only recovery report. O(1)."""
    lock = os.path.join(path, "LOCK")
    try:
        mode = os.lstat(lock).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return None
    return _lock_refused(lock, "a symbolic link" if stat.S_ISLNK(mode) else
                         "a directory" if stat.S_ISDIR(mode) else "a FIFO, socket or device")


def lock_held(path) -> bool | None:
    """Whether a writer alive now holds the directory's ``LOCK`` (:func:`lock_directory`: an
    engine journaling there, a writing recovery), as the kernel's table of ``flock`` locks
    (``/proc/locks``) lists it: the lock is neither taken nor waited for, so a writer starting
    meanwhile is never refused because of this look. False without a ``LOCK`` (or with one that
    is no regular file, which no writer takes) or where the table does not list it (a writer
    in another PID namespace may be left out of it); None where the table cannot be read (not
    Linux). O(locks held on the system)."""
    try:
        st = os.lstat(os.path.join(path, "LOCK"))
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            table = fh.read()
    except OSError:
        return None
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    # "1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF"; a waiter's line has
    # "->" after the number and holds nothing
    return any(f[1:2] == ["FLOCK"] and f[5:6] == [key] for f in map(str.split,
                                                                     table.splitlines()))


# Writer options: (lowest, highest) allowed value; all integers.
_WRITER_OPTIONS = {
    "segment_bytes": (_j.SEG_HEADER + _j.MAX_RECORD, None),
    "batch_records": (1, None),
    "batch_us": (1, 10**9),
    "buffer_bytes": (_j.MAX_RECORD, None),
}


def writer_takes(name: str, value) -> bool:
    """Whether a writer takes ``value`` for its integer option ``name`` (the range
    :func:`check_journal_options` enforces). O(1)."""
    lo, hi = _WRITER_OPTIONS[name]
    return lo <= value <= (2**63 - 1 if hi is None else hi)


def check_journal_option_names(options) -> None:
    """Raise ``TypeError`` for a name among ``options`` that is no journal option (those of
    ``Engine(journal=...)`` and ``Engine.recover``, ``fsync`` aside)."""
    unknown = sorted(set(options) - set(_WRITER_OPTIONS) - {"trades"})
    if unknown:
        raise TypeError(f"unknown journal option(s) {unknown}; known: "
                        f"{sorted(_WRITER_OPTIONS) + ['fsync', 'trades']}")


def check_journal_options(fsync: str = "batch", trades: bool = True, *, writers: bool = True,
                          **options) -> None:
    """Raise ``ValueError``/``TypeError`` for a bad writer option, or ``MemoryError`` for a
    ``buffer_bytes`` that cannot be allocated, before any file or directory is made: a refused
    call must leave the disk as it found it. ``writers=False`` (a read-only recovery, which
    makes no writer) checks the values without trying the allocation."""
    # (a str first: the lookup of an unhashable value raised "unhashable type: 'list'")
    if not isinstance(fsync, str) or fsync not in _j.POLICIES:
        raise ValueError(f"fsync must be one of {sorted(_j.POLICIES)}, got {fsync!r}")
    _flag_arg(trades, "trades")
    check_journal_option_names(options)
    for name, value in options.items():
        lo, hi = _WRITER_OPTIONS[name]
        # bool is an int subclass and a float would be truncated silently by the C writer
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        # the writer takes int64s: a larger value failed there, after the directory and its
        # LOCK file were made, with an error that did not name the option
        if not -2**63 <= value < 2**63:
            raise OverflowError(f"{name}={value} is outside the int64 range")
        if value < lo or (hi is not None and value > hi):
            raise ValueError(f"{name} must be >= {lo}" + (f" and <= {hi}" if hi else "") +
                             f", got {value}")
    if writers and "buffer_bytes" in options:
        # the writers allocate their buffers (commands, and trades unless off) after making the
        # directory and its LOCK file, so a size no allocation satisfies is tried here first
        _j.check_buffer_bytes(int(options["buffer_bytes"]), 2 if trades else 1)


def segment_temporaries(path, *, remove: bool = False) -> list[str]:
    """The ``<segment>.new`` files of directory ``path`` that a recovered writer left when it
    died between creating one (to replace an empty last segment whose header records other
    options) and renaming it over the segment: exactly the names that writer makes
    (``journal-<20 digits>.mcj.new``, ``trades-<20 digits>.mct.new``), and only what it can
    have left there: a regular file (not followed through a symlink), empty or starting with
    a segment header's magic or a part of it. ``remove`` deletes them (recovery, under the
    directory's LOCK: no writer of this journal is alive). Returns their paths, sorted.
    O(entries in the directory)."""
    from matchcore import _tempfiles
    found = []
    for name in sorted(os.listdir(path)):
        for kind in (KIND_COMMANDS, KIND_TRADES):
            pre, suf = _j.SEGMENT_PREFIX[kind] + "-", _j.SEGMENT_SUFFIX[kind] + ".new"
            digits = name[len(pre):len(name) - len(suf)]
            if (name.startswith(pre) and name.endswith(suf) and len(digits) == 20
                    and digits.isascii() and digits.isdigit()):
                f = os.path.join(path, name)
                # A directory under that name made a writing recovery fail (a bare
                # IsADirectoryError) after its repairs, and a user's file or a symlink was
                # deleted as the writer's: the writer makes a regular file and writes a
                # segment header into it, nothing else
                if _tempfiles._remove_if_dead(f, _SEGMENT_MAGIC, remove=remove):
                    found.append(f)
    return found


def creation_leftovers(path) -> list[str]:
    """The segment files of an ``Engine(journal=path)`` whose creation was cut short (a crash
    between creating the first segment file and writing its header; a power loss under
    ``fsync="never"``): one command segment for seq 1 whose header is torn and that holds no
    record, and at most an empty trade segment. They hold nothing that was ever acknowledged.
    ``[]`` when the directory holds anything else (snapshots are not looked at here)."""
    cfiles = segment_files(path, KIND_COMMANDS)
    tfiles = segment_files(path, KIND_TRADES)
    if [f for f, _ in cfiles] != [1] or [f for f, _ in tfiles] not in ([], [1]):
        return []
    scan = scan_journal(path, KIND_COMMANDS, keep_data=False)
    if scan.segments or scan.corrupt is not None:
        return []
    if tfiles:
        tscan = scan_journal(path, KIND_TRADES, keep_data=False)
        if tscan.records or tscan.corrupt is not None:
            return []
    return [p for _, p in cfiles + tfiles]


def _recovery_refusal(path) -> str | None:
    # why Engine.recover refuses the directory for where its journal starts (recovery's own
    # check, recovery.check_start; corruption aside, which it names itself), without the
    # path it begins with; None where it would go on
    from matchcore.durability.recovery import check_start
    try:
        check_start(path)
    except JournalError as exc:
        msg, prefix = str(exc), f"{path}: "
        return msg[len(prefix):] if msg.startswith(prefix) else msg
    return None


def _refuse_used_directory(path) -> list[str]:
    # Raises for a directory that holds a journal or snapshots; returns the leftovers of a
    # cut-short creation (see creation_leftovers), which the new engine replaces.
    from matchcore.durability.snapshot import list_snapshots
    leftovers = creation_leftovers(path)
    if leftovers and not list_snapshots(path):
        return leftovers
    if segment_files(path, KIND_TRADES) and not (segment_files(path, KIND_COMMANDS)
                                                 or list_snapshots(path)):
        # Engine.recover refuses such a directory too ("nothing to recover"): not a remedy
        raise ValueError(f"{path} holds only trade segments, no command journal and no "
                         f"snapshot: nothing Engine.recover can continue, and a new journal "
                         f"would start its trade journal over them; move them away, or give "
                         f"a directory without journal segments or snapshots")
    snaps = list_snapshots(path)
    refused = (_recovery_refusal(path) if snaps or segment_files(path, KIND_COMMANDS)
               else None)
    if refused:
        # "use Engine.recover" was a dead end: recovery's own reason instead
        raise ValueError(f"{path} cannot be continued by Engine.recover ({refused}); move "
                         f"its files away, or give a directory without journal segments or "
                         f"snapshots")
    if segment_files(path, KIND_COMMANDS) or segment_files(path, KIND_TRADES):
        raise ValueError(f"{path} already holds a journal: use "
                         f"Engine.recover({str(path)!r}) to continue it, or give a directory "
                         f"without journal segments or snapshots")
    if snaps:
        # A new journal starts again at seq 1: an earlier engine's snapshot would look like a
        # state of this one once the new journal passed its seq.
        raise ValueError(f"{path} holds snapshot files but no journal (newest "
                         f"{os.path.basename(snaps[-1][1])}): continue it with "
                         f"Engine.recover({str(path)!r}), or move the snapshots away, or give "
                         f"a directory without journal segments or snapshots")
    return []


def open_writers(path, stp: int, fsync: str = "batch", *, new: bool = True,
                 segment_bytes: int = 64 << 20, batch_records: int = 4096, batch_us: int = 2000,
                 buffer_bytes: int = 1 << 20, trades: bool = True, next_seq: int = 1,
                 next_trade_seq: int = 1, append_size: int = -1, trade_append_size: int = -1,
                 lock_fd: int | None = None, last_crc: int = -1,
                 base_hash: int | None = None, replace: bool = False,
                 trade_replace: bool = False):
    """The command journal writer and the trade capture writer of an engine (``trades=False``:
    no trade capture, recorded in every command segment header). ``new``: the directory
    (created if missing) must hold no segments and no snapshots. ``last_crc``: CRC of the record before ``next_seq`` (recovery), -1 if none.
    ``base_hash``: the engine's state hash before ``next_seq``, recorded in the header of the
    command segment a writer that starts a new segment (``append_size=-1``) begins with, so that
    recovery can tell the snapshot (or the empty engine) the journal continues from any other.
    ``replace``/``trade_replace`` (recovery): the command/trade segment the writer starts
    takes the place of the empty one of the same name (its header records other options).

    The trade journal is fsynced at :meth:`Engine.sync`, at snapshots, when a segment rolls and
    at close, never per call: it is derived from the command journal, and recovery rewrites
    whatever fills the command journal proves are missing."""
    refuse_bytes_dir(path)
    # both flags are converted before the directory is made or locked (a truth test took
    # new=None for False and skipped the check for a used directory)
    new = _flag_arg(new, "new")
    trades = _flag_arg(trades, "trades")
    check_journal_options(fsync, trades, segment_bytes=segment_bytes,
                          batch_records=batch_records, batch_us=batch_us,
                          buffer_bytes=buffer_bytes)
    # a directory whose path the writers cannot take: refused before it or its LOCK is made
    _j.check_dir_length(path)
    if new and os.path.isdir(path) and not os.path.exists(os.path.join(path, "LOCK")):
        # refused before a LOCK file is made; with one there, a running engine's 'in use' is
        # the error that matters, and the check under the lock below gives the rest
        _refuse_used_directory(path)
    own = lock_fd is None
    # what a new journal that fails to start takes away again (see _undo_start)
    made_dir = new and own and not os.path.isdir(path)
    made_lock = new and own and not os.path.lexists(os.path.join(path, "LOCK"))
    if own:
        try:
            lock_fd = lock_directory(path)
        except BaseException:
            # (no descriptor left for the LOCK, say) the directory this start made, still
            # empty, is not left behind; a LOCK it may have made is not taken away unlocked
            if made_dir:
                _undo_start(path, False, made_dir, segments=False)
            raise
    try:
        if new:
            try:
                # again under the lock: another engine may have begun. The leftovers of a
                # creation cut short hold no record: removed, or neither this nor recover()
                # could go on
                leftovers = _refuse_used_directory(path)
                for f in leftovers:
                    os.unlink(f)
                if leftovers:
                    from matchcore.durability.snapshot import fsync_dir
                    fsync_dir(path)
            except BaseException:
                # no segment is made yet: the LOCK and the directory this start made go
                # (a listing that failed here, no descriptor left, left them, and the LOCK
                # made the next Engine(journal=DIR) skip its check before locking)
                _undo_start(path, made_lock, made_dir, segments=False)
                raise
        try:
            jc, jt = _make_writers(path, stp, fsync, trades, lock_fd, next_seq=next_seq,
                                   next_trade_seq=next_trade_seq, append_size=append_size,
                                   trade_append_size=trade_append_size, last_crc=last_crc,
                                   base_hash=base_hash, replace=replace,
                                   trade_replace=trade_replace, segment_bytes=segment_bytes,
                                   batch_records=batch_records, batch_us=batch_us,
                                   buffer_bytes=buffer_bytes)
        except BaseException:
            if new:
                _undo_start(path, made_lock, made_dir)
            raise
    finally:
        if own:
            os.close(lock_fd)
    return jc, jt


def unlink_quietly(files) -> bool:
    """Remove those of ``files`` that can be removed, errors ignored (a failed start's
    leftovers: the failure being raised is the one that matters); whether any was."""
    gone = False
    for f in files:
        try:
            os.unlink(f)
            gone = True
        except OSError:
            pass
    return gone


def _undo_start(path, made_lock: bool, made_dir: bool, segments: bool = True) -> None:
    # A new journal whose writers could not be made (a full disk, no descriptor left): the
    # segments they made (none was there: _refuse_used_directory, under the LOCK still held)
    # hold no record and are removed, with the LOCK and the directory if this start made them.
    # Left, they were a journal no engine wrote: the retry was refused ("already holds a
    # journal: use Engine.recover"). segments=False: a start that failed before making any
    # (the segments there, if any, are not its own).
    import contextlib
    made = ([f for kind in (KIND_COMMANDS, KIND_TRADES) for _, f in segment_files(path, kind)]
            if segments else [])
    if made_lock:
        made.append(os.path.join(path, "LOCK"))
    unlink_quietly(made)
    with contextlib.suppress(OSError):
        if made_dir:
            os.rmdir(path)
        else:
            from matchcore.durability.snapshot import fsync_dir
            fsync_dir(path)


def _make_writers(path, stp, fsync, trades, lock_fd, *, next_seq, next_trade_seq, append_size,
                  trade_append_size, last_crc, base_hash, replace, trade_replace,
                  **options):
    # open_writers' two writers, in the directory it has locked (lock_fd).
    # Each writer keeps its own copy of the lock's descriptor: the directory stays locked
    # until both are closed. Held by the command writer alone, the lock went with it
    # (eng.journal.close(), or that writer collected first) while the trade writer was
    # still open: another engine recovered the directory and appended fills, and the old
    # trade writer's close cut the segment back to its own end (fills lost, then a
    # sequence break that recovery refuses as corruption)
    jc = _j.JournalWriter(path, KIND_COMMANDS, stp, fsync, next_seq=next_seq,
                          append_size=append_size, lock_fd=lock_fd, last_crc=last_crc,
                          base_hash=base_hash, trades=trades, replace=replace, **options)
    if not trades:
        return jc, None
    try:
        return jc, _j.JournalWriter(path, KIND_TRADES, stp,
                                    "never" if fsync == "never" else "on_sync",
                                    segment_bytes=options["segment_bytes"],
                                    buffer_bytes=options["buffer_bytes"],
                                    next_seq=next_trade_seq, append_size=trade_append_size,
                                    lock_fd=lock_fd, replace=trade_replace)
    except BaseException:
        # the command writer holds the directory's LOCK: left to the traceback, it kept the
        # directory locked for as long as the error was kept
        try:
            jc.close()
        except Exception:
            pass
        raise


def _inspect_alone(fpath, kind, first, after):
    entry = {"file": os.path.basename(fpath), "first_seq": first, "last_seq": None, "records": 0,
             "bytes": 0, "valid_bytes": 0, "damage": None, "after_corruption": after,
             "start_state_hash": None, "fsync": None, "trades": None}
    try:
        data = _read_segment(fpath)
    except JournalError as exc:
        entry["damage"] = str(exc)
        return entry
    entry["bytes"] = len(data)
    try:
        seg = scan_segment_bytes(data, kind, fpath, first)
    except JournalError as exc:
        entry["damage"] = f"bad segment header: {exc}"
        return entry
    entry.update(first_seq=seg.first_seq, last_seq=seg.last_seq, records=seg.records,
                 valid_bytes=seg.end, damage=seg.damage, start_state_hash=seg.base_hash,
                 fsync=seg.fsync, trades=seg.trades)
    return entry


def inspect(path) -> dict:
    """A journal directory's summary for people and tools: per kind, the segments (records,
    first/last seq, bytes, damage, and ``start_state_hash``: the state hash of the engine the
    segment's records continue when its header records it, else None; ``fsync``: the policy
    of the writer that made a command segment, as its header records it, else None;
    ``trades``: whether the engine that made a command segment captured trades, likewise), the
    last
    seq, the damage found
    (``dropped_segments``: the trailing files recovery drops; none for a journal whose creation
    was cut short, which recovery refuses), and the snapshots (``valid``: it loads as recovery
    loads it, books and state hash checked; else ``error``, the reason recovery skips it).
    Never
    raises for damage (it is reported). With corruption, ``last_seq`` and the record counts
    stop at it; every segment file is still listed, those from the corrupt one on scanned on
    their own (``after_corruption``). What recovery does that the files alone do not show,
    from recovery's own checks: each valid snapshot's ``unusable`` (why recovery does not use
    it with this journal, or None) and ``set_aside`` (it renames it ``.unused``: one that
    can never be a state of this journal and is newer than the snapshot recovery uses, which
    looks at none older but the seed snapshot-0 of a replay that writes fills the trade journal
    lacks; ``snapshot=False`` sets aside every such one); the trade
    journal's ``kept_through``, ``fills_to_cut`` and ``segments_to_drop`` (what it cuts after
    the last complete command the command journal holds; None where a journal is corrupt or
    nothing starts it) and ``commands_lacking_fills`` (``{"count", "first", "last"}`` of the
    commands the command journal holds as filled whose fills recovery writes again, the trade
    journal lacking them; None: none) and ``fills_lost_at_start`` (the fill records of
    commands recovery replays that the trade journal lacks before its first segment, deleted
    or lost, which it cannot write again: its ``trades_lost_at_start``); ``temporaries_to_remove`` (snapshot and segment writers' leftovers it
    deletes);
    ``lock_refused`` (why a recovery that may write refuses the directory's ``LOCK``, not a
    regular file, else None); ``trade_capture`` (whether recovery without ``trades=``
    captures trades, as the newest command segment records it: without, it leaves a corrupt
    trade journal as it is rather than refuse the directory); ``start_refused`` (recovery's error where it refuses the
    directory for where its journal starts, else None: it then changes nothing, and no file is
    listed as one it drops, cuts, removes or sets aside, as where the command journal is
    corrupt); ``live_writer`` (a writer alive now holds the directory's ``LOCK``, as
    :func:`lock_held` tells without taking it; None: cannot be told): each journal's end is
    then its ``in_flight`` (what ``torn_tail`` would say, which is None), and, as no
    recovery may repair anything meanwhile, nothing is listed as one it drops, cuts, removes
    or sets aside (a first segment whose header it is writing is no creation cut short,
    nor is a directory where it has written nothing yet: ``start_refused`` None). A
    ``path`` that is no directory raises :class:`JournalError`, as recovery does. A
    segment that a writing recovery cuts while it is read (the fills of commands not kept)
    makes it read the directory again. O(journal bytes)."""
    for _ in range(_RELISTS):
        try:
            return _inspect(path)
        except SegmentChanged:
            # A writing recovery (it holds the LOCK, which inspect does not take) cut a
            # segment between its scan and a later read of it: raised, a report of damage
            # ended in "changed while it was read" (journal inspect: error, exit 1). Read
            # again, the directory is as the recovery left it.
            continue
    return _inspect(path)


def _inspect(path) -> dict:
    # inspect(), one reading of the directory (SegmentChanged: a segment was cut meanwhile)
    from matchcore.durability.errors import SnapshotFileError
    from matchcore.durability.snapshot import list_snapshots, remove_stale_temporaries
    refuse_bytes_dir(path)
    require_directory(path)
    from matchcore.durability.recovery import (journal_refuses, load_listed_snapshot,
                                               looks_at_seed, trade_cut_of)
    out = {"path": str(path), "journals": {}, "snapshots": []}
    # looked at before the files are read as well as after (see live_writer below)
    live_at_start = lock_held(path)
    # Listed before the journal is scanned: a live writer's snapshot names a seq its journal
    # holds once the snapshot is there, so the scan that follows holds it too. Listed after
    # the scan, a snapshot the writer took meanwhile was "NOT USABLE: ahead of the journal
    # (recovery skips it)", which no recovery would say of it.
    snapshots = list_snapshots(path)
    cscan = None
    for kind, label in ((KIND_COMMANDS, "commands"), (KIND_TRADES, "trades")):
        scan = scan_journal(path, kind, keep_index=False)
        if kind == KIND_COMMANDS:
            cscan = scan
        else:
            tscan = scan
        types = {}
        for seg in scan.segments:
            for t, c in seg.types.items():
                name = _j.RECORD_TYPES.get(t, str(t))
                types[name] = types.get(name, 0) + c
        segments = [{"file": os.path.basename(s.path), "first_seq": s.first_seq,
                     "last_seq": s.last_seq, "records": s.records, "bytes": s.size,
                     "valid_bytes": s.end, "damage": s.damage, "after_corruption": False,
                     "start_state_hash": s.base_hash, "fsync": s.fsync, "trades": s.trades}
                    for s in scan.segments]
        if scan.corrupt is not None:
            # The scan stops at corruption; the files after it are still listed, each on its
            # own, so that a person sees what a repair would give up.
            listed = {s.path for s in scan.segments} | set(scan.drop)
            for first, fpath in segment_files(path, kind):
                if fpath in listed:
                    continue
                segments.append(_inspect_alone(fpath, kind, first,
                                               after=fpath != scan.corrupt[0]))
        out["journals"][label] = {
            "segments": segments,
            "records": scan.records, "record_types": types, "last_seq": scan.last_seq,
            "stp": scan.stp,
            "torn_tail": None if scan.tail is None else
            {"file": os.path.basename(scan.tail[0]), "offset": scan.tail[1],
             "reason": scan.tail[2]},
            "corrupt": None if scan.corrupt is None else
            {"file": os.path.basename(scan.corrupt[0]), "offset": scan.corrupt[1],
             "reason": scan.corrupt[2], "unreadable": scan.unreadable},
            "dropped_segments": [os.path.basename(f) for f in scan.drop],
        }
        if kind == KIND_TRADES:
            # recovery keeps the fills of complete commands the command journal holds; None
            # where it refuses the directory before cutting
            kept = trade_cut_of(path, cscan, scan)
            out["journals"][label]["kept_through"] = None if kept is None else kept[0]
            out["journals"][label]["fills_to_cut"] = None if kept is None else kept[1]
            out["journals"][label]["segments_to_drop"] = (
                [] if kept is None else [os.path.basename(f) for f in kept[2]])
    for seq, fpath in snapshots:
        try:
            # loaded and checked as recovery loads it (books, state hash, the seq its name
            # says): one judged by its header and CRC alone was listed as valid, though
            # recovery skips it
            head = load_listed_snapshot(fpath, seq)[1]
            # what recovery says of it against this journal (none when it refuses the journal
            # as corrupt): skipped, and set aside when it can never be one of its states
            refused = (journal_refuses(cscan, head)
                       if cscan.segments and cscan.corrupt is None else None)
            out["snapshots"].append({"file": os.path.basename(fpath), "seq": seq,
                                     "valid": True, **head,
                                     "unusable": refused[0] if refused else None,
                                     "set_aside": bool(refused and refused[1])})
        except (SnapshotFileError, OSError) as exc:  # reported: inspect describes damage
            if _gone(fpath):
                # renamed (set aside as .unused) or removed by a writing recovery since the
                # listing: not a snapshot that cannot be read, which was reported as damage
                raise SegmentChanged(f"{fpath} was renamed or removed after it was listed",
                                     fpath, 0) from None
            out["snapshots"].append({"file": os.path.basename(fpath), "seq": seq,
                                     "valid": False, "error": str(exc)})
    # recovery (snapshot=True) takes the newest usable snapshot and looks at none older: it
    # sets aside only those newer than the one it uses (snapshot=False: every one), and the
    # seed snapshot-0 it looks at to write fills the trade journal lacks
    used = [s for s in out["snapshots"] if s["valid"] and s["unusable"] is None]
    seed = False
    if used and cscan.segments:
        seed = looks_at_seed(cscan, tscan, used[-1])
        for s in out["snapshots"]:
            if s["valid"] and s["seq"] < used[-1]["seq"] and not (seed and s["seq"] == 0):
                s["set_aside"] = False
    # the snapshot writers' and segment writers' temporaries recovery removes (read-only
    # recovery's check)
    out["temporaries_to_remove"] = [os.path.basename(f) for f in remove_stale_temporaries(
        path, legacy=True, remove=False) + segment_temporaries(path)]
    # a LOCK that a writing recovery refuses (as a read-only one reports it)
    out["lock_refused"] = lock_refusal(path)
    # whether recovery without options reads the trade journal: without capture (the
    # journal's newest command segment records it off) it leaves a corrupt one as it is
    from matchcore.durability.recovery import filled_commands, recovers_with_capture
    out["trade_capture"] = recovers_with_capture(path, cscan)
    # the commands whose fills recovery writes again, which the trade journal lacks (a crash
    # between the two journals' writes): those the command journal holds as filled after the
    # last one whose fills the trade journal holds completely, and after the snapshot it
    # starts from unless it replays the whole journal for them (the others it reports lost).
    # Only the fills it cuts were said: a trade journal that lost whole commands' fills
    # looked complete.
    lacking = None
    kept_cmd = out["journals"]["trades"]["kept_through"]
    if out["trade_capture"] and cscan.segments and kept_cmd is not None:
        after = kept_cmd
        if used and not seed:
            after = max(after, used[-1]["seq"])
        seqs = filled_commands(cscan, after, cscan.last_seq)
        if len(seqs):
            lacking = {"count": len(seqs), "first": int(seqs[0]), "last": int(seqs[-1])}
    out["journals"]["trades"]["commands_lacking_fills"] = lacking
    # the fills of commands recovery replays that the trade journal lacks before its first
    # segment (deleted, lost), which it cannot write again: its trades_lost_at_start, from the
    # trade seq of the snapshot it starts from (0 for a whole replay)
    lost = 0
    if out["trade_capture"] and kept_cmd and tscan.corrupt is None and tscan.segments:
        head = used[-1] if used else None
        base = 0 if head is None else head["trade_seq"] if head["trades"] is True else None
        if base is not None and tscan.segments[0].first_seq - 1 > base:
            lost = tscan.segments[0].first_seq - 1 - base
    out["journals"]["trades"]["fills_lost_at_start"] = lost
    cut_short = not out["snapshots"] and bool(creation_leftovers(path))
    if cut_short:
        # a creation cut short: recovery refuses the directory, it drops no file
        for j in out["journals"].values():
            j["dropped_segments"] = []
        out["temporaries_to_remove"] = []
    # a directory recovery refuses for where its journal starts (its own check), or for a
    # corrupt command journal (whatever its options): it cuts, drops, removes and renames
    # nothing there
    from matchcore.durability.recovery import check_start_of
    try:
        check_start_of(path, cscan)
        out["start_refused"] = None
    except JournalError as exc:
        out["start_refused"] = str(exc)
    # A writer alive in the directory appends while it is read: the end of each journal is
    # its record (or segment header) in flight, not a torn tail; and no recovery may repair
    # anything while it holds the LOCK.
    out["live_writer"] = lock_held(path)
    if live_at_start and not out["live_writer"]:
        # The writer closed while the files were read: its last calls were read in one journal
        # and not in the other (their fills as fills of commands the command journal does not
        # hold, "recovery cuts"), and with the LOCK free by then, as a crashed directory's
        # repairs. Read again, as the writer left it.
        raise SegmentChanged(f"the writer of {path} closed while it was read", str(path), 0)
    nothing = not (out["snapshots"] or any(j["segments"] for j in out["journals"].values()))
    if out["live_writer"] and (cut_short or nothing):
        # not cut short: an Engine(journal=) holding the LOCK is writing its first segment's
        # header (in flight), which recovery does not refuse once it is written; likewise
        # before it has made that segment (it takes the LOCK first)
        out["start_refused"] = None
    for j in out["journals"].values():
        j["in_flight"] = j["torn_tail"] if out["live_writer"] else None
        if out["live_writer"]:
            j["torn_tail"] = None
    if out["start_refused"] is not None or cscan.corrupt is not None or out["live_writer"]:
        for j in out["journals"].values():
            j["dropped_segments"] = []
        trades = out["journals"]["trades"]
        trades.update(kept_through=None, fills_to_cut=None, segments_to_drop=[],
                      commands_lacking_fills=None, fills_lost_at_start=None)
        for s in out["snapshots"]:
            if s["valid"]:
                s["set_aside"] = False
        out["temporaries_to_remove"] = []
    return out
