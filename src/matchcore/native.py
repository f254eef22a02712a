"""matchcore's own binary order-flow format: a 32-byte header and then ``COMMAND_DTYPE`` records.

A file is exactly what :meth:`OrderBook.process` eats, so a recorded session replays through the
same compiled functions that ran it live, and the records are memory-mapped, never parsed.

Byte layout (all integers little-endian)::

    offset  size  field        value
    0       5     magic        b"MCCMD"
    5       1     start        bit 0 = a Recorder journal begun on a book that was not empty
                               (require_empty=False; read in journals only); other bits
                               written as 0, ignored when read
    6       2     version      u16, 1
    8       2     record_size  u16, 48 (= COMMAND_DTYPE.itemsize)
    10      2     header_size  u16, 32 (records start here; 8-byte aligned)
    12      4     flags        u32, bit 0 = written by a Recorder (a journal); other bits 0
    16      8     count        u64, number of records
    24      1     stp          u8, STP mode of the recorded book, 0xFF = not recorded
    25      7     reserved     written as 0, ignored when read
    32      48*count records   COMMAND_DTYPE: ts_ns i8, order_id u8, price i8, qty i8, owner u8,
                               symbol u4, kind u1, side u1, tif u1, post_only u1

The file size is exactly ``32 + 48 * count``; anything else is rejected.
"""
from __future__ import annotations

import contextlib
import errno
import operator
import os
import stat
import struct
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matchcore._args import refuse_masked
from matchcore._enums import COMMAND_DTYPE, STP, CommandKind, OrderRejected, Side, TIF
from matchcore._cliutil import may_write, refuse_unusable_name
from matchcore._magic import GZIP_MAGIC, NATIVE_MAGIC, own_file_hint
from matchcore._core import BusyError, OrderBook, _flag_arg
from matchcore._nocopy import NoCopy
from matchcore import _recorded
from matchcore import _tempfiles

MAGIC = NATIVE_MAGIC
VERSION = 1
HEADER_SIZE = 32
FLAG_JOURNAL = 0x1
_KNOWN_FLAGS = FLAG_JOURNAL
STP_UNKNOWN = 0xFF

_HEADER = struct.Struct("<5sBHHHIQB7s")
assert _HEADER.size == HEADER_SIZE

# The on-disk record: COMMAND_DTYPE with every field little-endian (the same dtype on x86/ARM).
FILE_DTYPE = COMMAND_DTYPE.newbyteorder("<")
_RECORD = struct.Struct("<qQqqQIBBBB")
_FLUSH_PIECE = 1 << 20        # bytes a flush copies at a time when a copy of all does not fit
assert _RECORD.size == COMMAND_DTYPE.itemsize == 48
_pack = _RECORD.pack
_SUBMIT, _MARKET, _CANCEL, _MODIFY = (int(k) for k in (CommandKind.SUBMIT, CommandKind.MARKET,
                                                        CommandKind.CANCEL, CommandKind.MODIFY))


class NativeFormatError(ValueError):
    """A file that is not a valid matchcore command file (wrong magic, version, size, ...)."""


@dataclass(frozen=True)
class NativeHeader:
    """The decoded header of a command file."""

    version: int
    record_size: int
    header_size: int
    flags: int
    count: int
    stp: STP | None
    #: bytes after the counted records that a ``committed=True`` read left out (0 otherwise):
    #: the records of a Recorder's last flush that its header count never took in
    uncommitted_bytes: int = 0
    #: a :class:`Recorder` journal begun on a book holding orders (``require_empty=False``): its
    #: records replay to the live state only from that state, not from an empty book
    started_nonempty: bool = False

    @property
    def is_journal(self) -> bool:
        return bool(self.flags & FLAG_JOURNAL)

    @property
    def uncommitted_records(self) -> int:
        """Whole records in :attr:`uncommitted_bytes` (the rest, ``uncommitted_bytes % 48``, is a
        torn record)."""
        return self.uncommitted_bytes // self.record_size


def _pack_header(count: int, flags: int = 0, stp: int | None = None,
                 nonempty: bool = False) -> bytes:
    return _HEADER.pack(MAGIC, 1 if nonempty else 0, VERSION, COMMAND_DTYPE.itemsize, HEADER_SIZE, flags, count,
                        STP_UNKNOWN if stp is None else int(stp), b"\0" * 7)


def read_header(path, *, committed: bool = False) -> NativeHeader:
    """Read and validate the header of a command file against its size. O(1).

    Raises :class:`NativeFormatError` with the exact reason: short file, wrong magic, a version
    newer than this reader (or 0), a record size other than 48, unknown flag bits, or a file size
    that does not equal ``header_size + record_size * count`` (truncated or trailing bytes).

    ``committed=True`` reads a :class:`Recorder` journal (flag bit 0) whose last flush was cut
    short (the process died after writing records and before rewriting the count): bytes after
    the counted records are then left out and reported in
    :attr:`NativeHeader.uncommitted_bytes`. Every other check still holds, a file that is not a
    journal keeps refusing trailing bytes, and a file shorter than its count is always refused.

    >>> read_header("flow.mccmd").count  # doctest: +SKIP
    1000000
    """
    committed = _flag_arg(committed, "committed")
    refuse_unusable_name(path, "path: ")
    path = Path(path)
    with _open_read(path) as f:
        return _read_header(f, path, committed)


def _open_read(path: Path):
    # A command file for reading: its header and its records are then read from this one open
    # file. Through the path twice (header, then the map), a file renamed over it in between
    # (write_commands, a Recorder's start) gave one file's count over the other's records, or
    # a bare ValueError from mmap when the new file was shorter.
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        # checked first: its size is not the stream's (a pipe's is 0, read as "truncated"),
        # it cannot be memory-mapped, and a FIFO's open would wait for a writer
        raise _not_regular(path, st.st_mode)
    f = open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb", buffering=0)
    mode = os.fstat(f.fileno()).st_mode
    if not stat.S_ISREG(mode):       # replaced by one meanwhile
        f.close()
        raise _not_regular(path, mode)
    return f


def _not_regular(path, mode) -> NativeFormatError:
    if stat.S_ISDIR(mode):
        return NativeFormatError(f"{path}: is a directory, not a command file")
    return NativeFormatError(
        f"{path}: not a regular file (a pipe, FIFO or device): command files are "
        f"memory-mapped; write the stream to a file first")


def _read_header(f, path: Path, committed: bool) -> NativeHeader:
    raw = os.pread(f.fileno(), HEADER_SIZE, 0)
    # the size after the header: a Recorder writes records before the count that takes
    # them in, so a journal being recorded never looks shorter than its count
    size = os.fstat(f.fileno()).st_size
    if raw and len(raw) < len(MAGIC) and MAGIC.startswith(raw):
        # cut inside the magic: "not a matchcore command file (magic b'MCC')" of one
        raise NativeFormatError(
            f"{path}: truncated header ({len(raw)} of {HEADER_SIZE} bytes)")
    if len(raw) < len(MAGIC) or raw[: len(MAGIC)] != MAGIC:
        gz = (" (a gzip'd file: command files are memory-mapped, decompress it first)"
              if raw[:len(GZIP_MAGIC)] == GZIP_MAGIC else "")
        raise NativeFormatError(
            f"{path}: not a matchcore command file (magic {raw[:len(MAGIC)]!r}, expected "
            f"{MAGIC!r}){gz}{own_file_hint(raw, 'native')}")
    if len(raw) < HEADER_SIZE:
        raise NativeFormatError(
            f"{path}: truncated header ({len(raw)} of {HEADER_SIZE} bytes)")
    _, start, version, record_size, header_size, flags, count, stp, _ = _HEADER.unpack(raw)
    if version == 0 or version > VERSION:
        raise NativeFormatError(
            f"{path}: format version {version} is not supported (this reader reads version "
            f"{VERSION}{'; the file is newer' if version > VERSION else ''})")
    if record_size != COMMAND_DTYPE.itemsize:
        raise NativeFormatError(
            f"{path}: record size {record_size} bytes, expected {COMMAND_DTYPE.itemsize}")
    if header_size != HEADER_SIZE:
        raise NativeFormatError(f"{path}: header size {header_size}, expected {HEADER_SIZE}")
    if flags & ~_KNOWN_FLAGS:
        raise NativeFormatError(f"{path}: unknown flag bits 0x{flags & ~_KNOWN_FLAGS:x}")
    expected = header_size + record_size * count
    journal = bool(flags & FLAG_JOURNAL)
    if size != expected and not (committed and journal and size > expected):
        whole = (size - header_size) // record_size if size >= header_size else 0
        what = "truncated" if size < expected else "has trailing bytes"
        msg = (f"{path}: file {what}: header says {records(count)} ({expected} bytes), the file "
               f"has {size} bytes ({records(whole, 'whole ')})")
        if size > expected:
            if not journal and committed:
                msg += ("; committed=True reads past a tail only in a Recorder journal (flag "
                        "bit 0), and this file is not one")
            elif journal:
                tail = size - expected
                torn = tail % record_size
                msg += (f"; this Recorder journal's last flush did not complete ({tail} bytes "
                        f"after the counted records: {records(tail // record_size, 'whole ')}"
                        f"{f' and {torn} bytes of a torn one' if torn else ''}): read its "
                        f"{records(count, 'committed ')} with committed=True (matchcore replay "
                        f"--committed), or cut the tail with matchcore.native.repair_journal()")
        raise NativeFormatError(msg)
    stp_mode = None if stp == STP_UNKNOWN else STP(stp) if stp <= max(STP) else None
    if stp != STP_UNKNOWN and stp_mode is None:
        raise NativeFormatError(f"{path}: unknown STP mode {stp} in header")
    return NativeHeader(version, record_size, header_size, flags, count, stp_mode,
                        size - expected, journal and bool(start & 1))


def repair_journal(path) -> NativeHeader:
    """Cut a :class:`Recorder` journal back to its committed records; returns the header read
    with ``committed=True`` (``uncommitted_bytes``: the bytes cut, 0 if there was no tail).

    A journal whose recording process died between writing a flush's records and rewriting the
    count holds bytes after the counted records: whole records of that flush and possibly a
    torn one, never checked by the count. They are removed (the truncation is fsynced), so the
    file reads again without ``committed=True`` and :meth:`Recorder.resume` can continue it. A
    file that is not a journal, or that is shorter than its count, raises
    :class:`NativeFormatError` and is left as it is; a journal a :class:`Recorder` is writing
    raises BlockingIOError. O(1).

    >>> repair_journal("session.mccmd").uncommitted_records  # doctest: +SKIP
    7
    """
    _refuse_empty_path(path)
    if not read_header(path, committed=True).is_journal:  # a regular file: before opening it
        _refuse_not_journal(path, "repaired")
    remove_stale_temp_files(path)
    with _open_locked(path, os.O_RDWR) as f:
        hdr = _read_header(f, Path(path), True)
        if not hdr.is_journal:      # the path's file was replaced by another since the check
            _refuse_not_journal(path, "repaired")
        return _cut_tail(f, hdr)


def _lock(f, path, shared: bool = False) -> None:
    # One writer per journal: a Recorder holds an exclusive flock on its file while it is open
    # (released when its descriptors are closed, also at the process's death). write_commands
    # takes a shared one across its rename: refused by a Recorder's, never by another
    # write_commands' (two of them rename one after the other).
    import fcntl
    try:
        fcntl.flock(f.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BlockingIOError(f"{path} is being written by a Recorder (in this process or "
                              f"another): its lock is held") from None


_names = _tempfiles.names       # whether a path (still) names the file of a stat result


def _open_locked(path, flags):
    """The regular file ``path`` names, opened with ``flags`` and locked (see :func:`_lock`).

    A Recorder replaces an existing file by renaming a new one over it: a file opened before
    that and locked after the replacer let the old one go is no longer the one the path names,
    and its writer would record into an unlinked file; it is opened again then."""
    while True:
        f = open(os.open(path, flags | os.O_CLOEXEC | os.O_NONBLOCK, 0o666), "r+b", buffering=0)
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(f"{path}: not a regular file (a pipe, FIFO or device): a "
                                 f"Recorder rewrites the header's count after each flush, and "
                                 f"the readers memory-map the file")
            os.set_blocking(f.fileno(), True)
            _lock(f, path)
            if _names(path, st):
                return f
        except BaseException:
            f.close()
            raise
        f.close()


def _replace_locked(old, path, header: bytes, durable: bool = False):
    """A new file holding ``header``, locked, renamed over the (locked) file ``old`` that
    ``path`` names, with its permission bits; ``old`` is closed. Returns the new file.

    Never truncated in place: a reader that has the old file memory-mapped (read_commands)
    would get SIGBUS on its next access to a page that is gone. A directory this process may
    not write (the rename needs it) leaves only that: the file is then emptied in place. The
    new file is written as ``<name>.tmp<pid>.<hex>``, locked from its creation: a Recorder
    killed before the rename leaves it for :func:`remove_stale_temp_files`. ``durable``: the
    new file is fsynced before the rename, so a power loss leaves the old file or a whole new
    one under the name, never an empty one (the caller syncs the directory after)."""
    target = os.path.realpath(path)             # a symlink's target is replaced, not the link
    try:
        # nobody else knows it yet: its exclusive lock is never refused
        fd, tmp = _tempfiles.new_locked(target, exclusive=True, mode=0o600)
    except PermissionError:
        old.truncate(0)
        _pwrite_all(old.fileno(), header, 0)
        return old
    new = open(fd, "r+b", buffering=0)
    try:
        os.fchmod(fd, stat.S_IMODE(os.fstat(old.fileno()).st_mode))
        _pwrite_all(fd, header, 0)
        if durable:
            os.fsync(fd)
        os.replace(tmp, target)
    except BaseException:
        new.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    old.close()                                 # its lock goes: a late opener sees the new file
    return new


def _cut_tail(f, hdr: NativeHeader) -> NativeHeader:
    if hdr.uncommitted_bytes:
        f.truncate(hdr.header_size + hdr.record_size * hdr.count)
        os.fsync(f.fileno())
    return hdr


def remove_stale_temp_files(path) -> list[str]:
    """Remove the temporary files that :func:`write_commands` and a :class:`Recorder`
    (replacing a file) left beside ``path`` when their process died before renaming them into
    place (``kill -9``, a power loss): ``<name>.tmp<pid>`` and ``<name>.tmp<pid>.<hex>``, and
    ``<name>.<8 characters>.tmp`` of a Recorder of an earlier version. Returns the names
    removed. :func:`write_commands`, a new :class:`Recorder`, :meth:`Recorder.resume` and
    :func:`repair_journal` call it first.

    A ``.tmp<pid>`` file is removed only when all of these hold: no process ``<pid>`` exists
    (as this process sees them); it is a regular file, empty or starting with the command file
    magic (or a part of it); and its lock can be taken, so no live writer holds it (a writer
    locks its temporary file from its creation to its rename, also one in another PID
    namespace). An earlier version's ``.tmp`` file, whose name holds no pid, only when it is
    exactly what such a Recorder writes before its rename (a journal header with no record)
    and its lock can be taken: its writer locked it before writing the header, and kept the
    lock until it died. A temporary file of a live writer is never removed. Files that cannot
    be opened or removed are left alone. A ``path`` ending with a separator or empty raises
    ValueError. O(entries in the directory).

    >>> remove_stale_temp_files("flow.mccmd")          # doctest: +SKIP
    ['flow.mccmd.tmp4242.9f3a01c2']
    """
    import re

    # "x.mccmd/" (through realpath: x.mccmd's) and "" (the current directory's, looked for in
    # the directory above it)
    refuse_unusable_name(path, "path: ")
    path = Path(os.path.realpath(path))         # a symlink's target is where they are
    directory = path.parent
    removed = _tempfiles.remove_dead(directory, _tempfiles.temp_pattern(path.name), MAGIC)
    legacy = re.compile(re.escape(path.name) + r"\.[a-z0-9_]{8}\.tmp")   # tempfile.mkstemp's
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        if legacy.fullmatch(entry) and _tempfiles._remove_if_dead(
                os.path.join(directory, entry), MAGIC, _bare_journal_header):
            removed.append(entry)
    return removed


def _bare_journal_header(fd, size) -> bool:
    # a Recorder's new file before its rename: a journal header counting no record
    if size != HEADER_SIZE:
        return False
    raw = os.pread(fd, HEADER_SIZE, 0)
    return (len(raw) == HEADER_SIZE and raw[:len(MAGIC)] == MAGIC
            and bool(struct.unpack_from("<I", raw, 12)[0] & FLAG_JOURNAL)
            and struct.unpack_from("<Q", raw, 16)[0] == 0)


def _new_temp_file(path: Path):
    """A new file beside ``path`` for write_commands, locked until it is renamed into place (so
    that remove_stale_temp_files leaves it alone); (file, its path). The lock is shared: once
    the file is the target, another write_commands' shared lock on it is not refused."""
    fd, tmp = _tempfiles.new_locked(path)
    return open(fd, "wb"), tmp


def _file_records(commands, what: str = "write_commands()") -> np.ndarray:
    """``commands`` as an array :func:`write_commands` writes, or the exception it raises for
    them (``what`` names the caller): a 1-d array of ``COMMAND_DTYPE``'s fields, in either byte
    order. For a writer of several files, to check every array before any file is written."""
    refuse_masked(commands, what, "written")
    arr = np.asarray(commands)
    # every field of COMMAND_DTYPE's kind and size (either byte order): a field of another type
    # (a float price) was cast into the file, silently truncated, where process() refuses it
    if (arr.dtype.names != COMMAND_DTYPE.names or arr.dtype.itemsize != COMMAND_DTYPE.itemsize
            or any(arr.dtype.fields[n][0].kind != t.kind or arr.dtype.fields[n][0].itemsize
                   != t.itemsize for n, (t, *_) in COMMAND_DTYPE.fields.items())):
        raise TypeError(f"{what} needs an array of matchcore.COMMAND_DTYPE, got {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{what} needs a 1-d array, got shape {arr.shape}")
    return arr


def write_commands(path, commands, *, stp=None) -> int:
    """Write a ``COMMAND_DTYPE`` array as a command file; returns the record count.

    The file is written beside its final name (``<name>.tmp<pid>.<hex>``), fsynced, renamed
    into place and the directory fsynced, so a reader never sees a half-written file and,
    once it returns, the file survives a power loss. A file it replaces keeps its permission
    bits; one this process may not write (``chmod a-w``) raises ``PermissionError`` as ``open()``
    does, and is left as it was; through a symlink, the link's target is replaced and the link kept. Temporary files
    that earlier calls killed before their rename left beside it are removed first (see
    :func:`remove_stale_temp_files`). ``stp`` (optional) is stored so that
    :func:`replay_commands` can build a book with the same self-trade mode. A path a
    :class:`Recorder` is writing raises BlockingIOError and is left alone. O(n) bytes written.

    >>> write_commands("flow.mccmd", commands)  # doctest: +SKIP
    1000
    """
    arr = _file_records(commands)
    if stp is not None:
        # checked before anything is written: a mode the reader does not know (7, or 2.7 taken
        # as 2) made a file that read_header refuses or that replays with another mode
        try:
            stp = STP(operator.index(stp))
        except (TypeError, ValueError):
            raise ValueError(f"stp must be a matchcore.STP mode or None, not {stp!r}") from None
    import fcntl

    arr = np.ascontiguousarray(arr.astype(FILE_DTYPE, copy=False))
    _refuse_empty_path(path)
    _refuse_directory_name(path)
    path = Path(path)
    # through a symlink its target is replaced and the link kept, as a Recorder does (the link
    # was replaced by a file, and the file it named kept the old records)
    target = Path(os.path.realpath(path))
    if target.is_dir():
        # refused before a temporary file is written beside it (the rename would fail, and
        # the check of the file it replaces said "Is a directory" of a descriptor's number)
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if target.is_file() and not may_write(target):
        # refused as open() refuses it (a Recorder, and the command line's outputs, refuse it
        # so): renamed over, a file its user had protected with chmod a-w was replaced. The
        # error is open()'s own (EACCES, EROFS on a read-only mount), of the path given
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CLOEXEC))
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(path)) from None
    # a writer killed before its rename left its temporary file there for good
    remove_stale_temp_files(target)
    try:
        f, tmp = _new_temp_file(target)
    except OSError as e:
        # (a missing directory, a file as one, no permission): said of the temporary file,
        # a name the caller never gave
        raise OSError(e.errno, e.strerror, str(path)) from None
    renamed = False
    try:
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            # the replaced file's permission bits, before any record is in: a file kept from
            # other users (0600) came back readable by them (as the umask left a new file)
            os.fchmod(f.fileno(), stat.S_IMODE(st.st_mode))
        try:
            # written past the file object's buffer: its close() flushed a write that had
            # failed (a full disk) again, raising before the temporary file was removed
            _pwrite_all(f.fileno(), _pack_header(len(arr), 0, stp), 0)
            _pwrite_all(f.fileno(), arr.view(np.uint8), HEADER_SIZE)
            # the records on disk before the name points at them: renamed first, a power loss
            # could leave an empty or partial file under the final name
            os.fsync(f.fileno())
        except OSError as exc:
            # os.pwrite names no file (ndarray.tofile said "1000 requested and 84 written")
            raise OSError(exc.errno, f"{exc.strerror}: the command file could not be written "
                                     f"(nothing was left in its place)", str(path)) from exc
        # a live Recorder's journal: renamed over, its records went on into an unlinked file
        # (a file this process may not read cannot be checked; it is replaced as before). The
        # lock is held across the rename: a Recorder that opens the file meanwhile either finds
        # it locked or, locking it after the rename, sees that the path names another file.
        # The same check here: a file locked after a Recorder renamed its new journal over it
        # (and let it go) is no longer the one the path names.
        while True:
            try:
                held = open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb")
            except (FileNotFoundError, PermissionError):
                held = None
            try:
                if held is not None:
                    _lock(held, path, shared=True)      # (a FIFO: opened without waiting)
                    if not _names(path, os.fstat(held.fileno())):
                        continue
                os.replace(tmp, target)
                renamed = True
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)    # a Recorder may take it now
                break
            finally:
                if held is not None:
                    held.close()
        # the rename itself on disk
        _fsync_dir(target)
    finally:
        f.close()
        if not renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return len(arr)


def read_commands(path, *, committed: bool = False) -> np.ndarray:
    """Memory-map a command file as a read-only ``COMMAND_DTYPE`` array. O(1) (pages load lazily).

    The header is validated first (see :func:`read_header`): a bad file raises
    :class:`NativeFormatError` and nothing is returned. The array can go straight to
    :meth:`OrderBook.process`. ``committed=True``: the counted records of a :class:`Recorder`
    journal whose last flush was cut short (``read_header(path, committed=True)`` tells how
    many bytes were left out).

    >>> book.process(read_commands("flow.mccmd"))  # doctest: +SKIP
    """
    return _read_mapped(path, committed)[1]


def _read_mapped(path, committed: bool = False) -> tuple[NativeHeader, np.ndarray]:
    # the header and the records it counts, of one open file
    committed = _flag_arg(committed, "committed")
    refuse_unusable_name(path, "path: ")
    path = Path(path)
    with _open_read(path) as f:
        hdr = _read_header(f, path, committed)
        return hdr, _map(f, hdr)


def _map(f, hdr: NativeHeader) -> np.ndarray:
    # the records hdr counts (a journal being recorded may have more by now), of the open file
    # f whose header hdr is; the map stays valid after f is closed
    if hdr.count == 0:
        return np.empty(0, dtype=COMMAND_DTYPE)
    arr = np.memmap(f, dtype=FILE_DTYPE, mode="r", offset=hdr.header_size, shape=(hdr.count,))
    if sys.byteorder != "little":
        return arr.astype(COMMAND_DTYPE)
    return arr


def replay_commands(path, book=None, *, chunk: int | None = None,
                    committed: bool = False) -> np.ndarray:
    """Replay a command file through ``book.process()``; returns every event (``EVENT_DTYPE``).

    ``book=None`` builds a fresh :class:`OrderBook` with the STP mode stored in the file (the
    default mode if none was stored); for a journal begun on a book holding orders
    (:attr:`NativeHeader.started_nonempty`) it raises ValueError: pass a book holding that
    state. A given book must have the STP mode the file stores and hold the state it starts
    from (empty, unless :attr:`NativeHeader.started_nonempty`), as :meth:`Recorder.resume`
    requires: ValueError otherwise, before any record is replayed. The mapped records go to
    ``process()`` in one call, or in pieces of ``chunk`` records (the events are the same: one
    book, commands in order). O(n + fills). ``committed=True`` replays the counted records of a :class:`Recorder` journal
    whose last flush was cut short (see :func:`read_header`). One book holds one symbol: a file
    whose records carry several ``symbol`` values raises ValueError naming them, before any
    record is replayed (``matchcore replay --format native`` keeps one book per symbol; or
    replay ``cmds[cmds["symbol"] == s]`` of :func:`read_commands` into a book each).

    >>> events = replay_commands("session.mccmd")  # doctest: +SKIP
    """
    if chunk is not None:
        chunk = _positive_int(chunk, "chunk")
    hdr, cmds = _read_mapped(path, committed)
    _refuse_several_symbols(path, cmds)
    book = _start_book(path, hdr, book)
    if chunk is None or len(cmds) <= chunk:
        return book.process(cmds)
    return np.concatenate([book.process(cmds[i:i + chunk]) for i in range(0, len(cmds), chunk)])


def _refuse_several_symbols(path, cmds) -> None:
    # one book per symbol, as the CLI replays such a file: into one book, the symbols' orders
    # met (shared ids refused as duplicates, one symbol's orders trading with another's)
    if len(cmds) == 0:
        return
    sym = cmds["symbol"]
    if not (sym != sym[0]).any():
        return
    found = np.unique(sym).tolist()
    shown = ", ".join(map(str, found[:10])) + (f", ... ({len(found)} in all)"
                                               if len(found) > 10 else "")
    raise ValueError(f"{path}: records of symbols {shown}: one book holds one symbol, and "
                     f"replay_commands replays into one book. Replay one book per symbol: "
                     f"`matchcore replay --format native {path}`, or "
                     f"cmds = read_commands(path); book.process(cmds[cmds['symbol'] == s]) "
                     f"for each symbol s")


def _refuse_empty_path(path) -> None:
    # "" is "." to Path: "Is a directory: '.'", of a directory nobody had named
    if isinstance(path, (str, bytes)) and not path:
        raise ValueError("path: an empty path")


def _refuse_directory_name(path) -> None:
    # "out/" names a directory, which open() refuses to write as a file: through Path the
    # slash was dropped, and a command file named "out" was written in its place
    from matchcore._cliutil import names_a_directory

    if names_a_directory(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)


def _symbol_arg(symbol) -> int:
    # a Recorder's symbol: an integer that a record's u32 field holds
    try:
        symbol = operator.index(symbol)
    except TypeError:
        raise TypeError(f"symbol must be an integer, got {type(symbol).__name__} "
                        f"{symbol!r}") from None
    if not 0 <= symbol <= 0xFFFFFFFF:
        raise ValueError(f"symbol={symbol} does not fit a record's u32 symbol field "
                         f"[0, 2**32)")
    return symbol


def _positive_int(value, name: str) -> int:
    # a count (flush_every, chunk): an integer > 0. A float passed the "> 0" test (nan then
    # never reached the flush it was compared with), a str failed it with a bare TypeError.
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} "
                        f"{value!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be > 0")
    return value


def _refuse_not_journal(path, what: str = "resumed") -> None:
    raise NativeFormatError(f"{path}: not a Recorder journal (flag bit 0 is clear): only a "
                            f"journal can be {what}")


def _refuse_empty_start(path, hdr: NativeHeader) -> None:
    # a journal begun on a book holding orders replayed from an empty one gave another state
    # (and other events) than the live session, without a word
    if hdr.started_nonempty:
        raise ValueError(f"{path}: this journal was begun on a book holding orders "
                         f"(require_empty=False): pass a book holding that state (book=...), "
                         f"its records replay to the live state only from there")


def _start_book(path, hdr: NativeHeader, book):
    # The book a file's records replay into (replay_commands, Recorder.resume): None makes one
    # in the file's STP mode, for a file begun on an empty book. A given book must hold the
    # state the records start from, in the mode they were recorded with: from another, they
    # replay to another state than the live session's (other fills, other refusals) without a
    # word.
    if book is None:
        _refuse_empty_start(path, hdr)
        return OrderBook(stp=hdr.stp if hdr.stp is not None else STP.CANCEL_RESTING)
    if len(book) != 0 and not hdr.started_nonempty:
        n = len(book)
        raise ValueError(f"the book holds {n:,} order{'' if n == 1 else 's'}, but the journal was "
                         f"begun on an empty book: its records replay to the live state only from "
                         f"there (pass book=None or an empty book)")
    if len(book) == 0 and hdr.started_nonempty:
        _refuse_empty_start(path, hdr)
    if hdr.stp is not None and getattr(book, "stp", hdr.stp) != hdr.stp:
        raise ValueError(f"the book's STP mode is {book.stp!r}, the journal was recorded "
                         f"with {hdr.stp!r}")
    return book


# Values every conversion reads alike: the book's reading of them is the record's.
_READ_ALIKE = frozenset((int, bool, Side, TIF, type(None)))


def _read_once(*args):
    """A Recorder call's arguments, each read once for both the book and the record: an
    argument read through ``__index__`` (a 0-d array, a numpy-backed or computed value) was
    converted by the book and again when its record was packed, and one that read otherwise
    the second time (another thread refilling the buffer it comes from) was applied as one
    command and journaled as another. What ``operator.index`` refuses is passed on as given,
    for the book to refuse in its own words."""
    for v in args:
        if type(v) not in _READ_ALIKE:
            return tuple([_index_or_given(v) for v in args])
    return args


def _index_or_given(v):
    if type(v) in _READ_ALIKE:
        return v
    try:
        return operator.index(v)
    except TypeError:
        return v


def _fits_u8(v) -> bool:
    try:
        v = operator.index(v)
    except TypeError:
        return True     # not an integer: the book refuses it with its own precise TypeError
    return 0 <= v <= 255


def _refuse_u8(order_id, side, price, qty, tif, owner, ts_ns):
    # A record holds side and tif in one byte each; a value that does not fit could not be
    # replayed as the same command, so it is refused before the book sees it. The other
    # arguments are converted first, in the book's order and with its words (the reference
    # model's converters give them), so that an argument the book refuses is named as the book
    # names it; only then the byte (tif None: a market order, which has none).
    from matchcore.reference import _index, _int64, _uint64

    _uint64(order_id, "order_id")
    _index(side, "side")
    if price is not None:
        _int64(price, "price")
    _int64(qty, "qty")
    if tif is not None:
        _index(tif, "tif")
    _uint64(owner, "owner")
    _int64(ts_ns, "ts_ns")
    bad = ", ".join(f"{name}={operator.index(v)}" for name, v in (("side", side), ("tif", tif))
                    if v is not None and not _fits_u8(v))
    raise ValueError(f"{bad} cannot be journaled (a record holds 0..255 for each of side and "
                     f"tif); nothing was sent to the book")


def _batch_copy(commands, out):
    # Recorder.process(): the batch the book applies and the journal records, read once. The
    # book reads the caller's array without the GIL and the records were read from it again
    # afterwards: another thread writing into it meanwhile (a reused buffer being refilled)
    # left records of other commands than those applied. What the book refuses (another dtype
    # or shape, an out= sharing the commands' memory) is given to it as it came, to be refused
    # in its words before any command runs.
    arr = np.asarray(commands)
    if arr.dtype != COMMAND_DTYPE or arr.ndim != 1:
        return commands
    if out is not None and np.may_share_memory(np.asarray(out), arr):
        return commands
    try:
        return np.array(arr, order="C", copy=True)
    except MemoryError:
        raise _out_of_memory_before_any(len(arr)) from None


def _out_of_memory_before_any(n: int) -> MemoryError:
    # as the book's own copy of a batch fails: before any command, with the count applied
    exc = MemoryError(f"matchcore: out of memory after 0 of {n} commands")
    exc.applied = 0
    return exc


def _book_arg(book) -> None:
    # The records are the OrderBook's calls: an Engine (symbol first) or a reference model took
    # the same positional arguments as other fields, and the journal replayed into another
    # session than the one recorded.
    if not isinstance(book, OrderBook):
        raise TypeError(f"Recorder records an OrderBook's calls, got {type(book).__name__} "
                        f"(an Engine journals itself: Engine(journal=DIR))")


class Recorder(NoCopy):
    """Journal every command sent through a wrapped book into a command file.

    ``submit``, ``submit_market``, ``cancel`` and ``modify`` forward to the book with the same
    arguments and results (exceptions included) and append one record per call that reached the
    book, rejected ones too, and ``process`` one per command of its batch, so that
    :func:`replay_commands` on the journal gives exactly the events and the state the live
    session gave. ``place``, ``reduce``, ``clear`` and ``restore`` change the book in ways no
    record holds and raise TypeError; ``handle`` / ``address`` (the C table's and Numba's way
    in, which would change the book without a record) raise ValueError, and while the Recorder
    is open order entry through the book's own handle returns -MC_ERR_READONLY. Calls that fail argument
    conversion before the book (an order id outside [0, 2**64), ...) are not recorded; a ``side`` or ``tif`` outside
    0..255 (a record holds one byte) raises ValueError without reaching the book. Anything else
    (queries, ``events()``) is passed through. Records are buffered and written every
    ``flush_every`` commands, on :meth:`flush` and on :meth:`close` / context exit; the header
    count is rewritten at each flush, after its records, so the file is valid after every flush
    and a process killed inside one leaves the counted records intact (see :meth:`flush`).
    ``fsync=True`` makes every flush durable against a power loss as well. A Recorder belongs to
    the process that made it (see :meth:`close`). O(1) per call.

    A path that already holds a journal with records (a crashed or closed session) is refused
    with FileExistsError rather than truncated: continue it with :meth:`resume`, or pass
    ``overwrite=True``. Any other existing file is replaced: by a new file renamed over it, so a
    reader that has the old one memory-mapped keeps its records (see :func:`_replace_locked`).

    An Engine's book (which takes no order entry of its own) raises ReadOnlyBookError before
    the file is touched, and a book another open Recorder holds ValueError. By default the book must be empty when recording starts (the journal is then a complete
    history); pass ``require_empty=False`` to journal from a non-empty state, which then has to be
    recreated before replay (the header notes it: :attr:`NativeHeader.started_nonempty`).

    >>> with Recorder(OrderBook(), "session.mccmd") as book:  # doctest: +SKIP
    ...     book.submit(1, Side.BUY, 100, 5)
    """

    _no_copy = ("it appends to an open command file through its own buffer: a copy would "
                "interleave its records with this one's and break the journal",
                "flush() or close() it, then pickle the book (rec.book: an OrderBook pickles) "
                "or replay the file (matchcore.native.replay_commands)")

    book = None
    _f = None
    #: the journal's header when the Recorder came from :meth:`resume` (None otherwise)
    resumed = None

    def __init__(self, book, path, *, symbol: int = 0, flush_every: int = 65536,
                 require_empty: bool = True, fsync: bool = False, overwrite: bool = False):
        _book_arg(book)
        # before the file is opened (a truth test took require_empty=None for False)
        if _flag_arg(require_empty, "require_empty") and len(book) != 0:
            raise ValueError(f"Recorder needs an empty book ({len(book)} orders rest); "
                             "pass require_empty=False to journal from a non-empty state")
        overwrite = _flag_arg(overwrite, "overwrite")
        self._setup(book, path, symbol, flush_every, fsync)
        # held before any file is touched: an Engine's book, whose every call the Recorder
        # would forward into a refusal, is refused here (it replaced the file at path first)
        book._journal_entry(True)
        try:
            # the new file of a Recorder killed while replacing this one stayed beside it
            remove_stale_temp_files(self.path)
            made = not os.path.lexists(self.path)
            # opened without truncation: locked and checked first, replaced only then
            f = _open_locked(self.path, os.O_RDWR | os.O_CREAT)
            try:
                if not overwrite:
                    _refuse_used_journal(f, self.path)
                header = _pack_header(0, FLAG_JOURNAL, getattr(book, "stp", None),
                                      len(book) != 0)
                try:
                    if os.fstat(f.fileno()).st_size:
                        f = _replace_locked(f, self.path, header, self._fsync)
                    else:
                        _pwrite_all(f.fileno(), header, 0)
                    if self._fsync:
                        os.fsync(f.fileno())
                        _fsync_dir(self.path)
                except OSError as exc:
                    # os.pwrite and os.fsync name no file ("[Errno 28] No space left on
                    # device" of a full disk)
                    raise OSError(exc.errno, f"{exc.strerror}: the Recorder journal could not "
                                             f"be started", str(self.path)) from exc
            except BaseException:
                f.close()
                if made:
                    # a file this call made holds no journal: left, it was an empty file the
                    # readers refuse as truncated
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
                raise
        except BaseException:
            book._journal_entry(False)
            raise
        self._f = f
        _LIVE.add(self)

    def _setup(self, book, path, symbol, flush_every, fsync):
        flush_every = _positive_int(flush_every, "flush_every")
        # checked here: a record holds it as u32, and a symbol that does not fit was found only
        # when the first call's record was packed, after the book had applied that call
        symbol = _symbol_arg(symbol)
        self._fsync = _flag_arg(fsync, "fsync")
        self._pid = os.getpid()
        self.book = book
        _refuse_empty_path(path)
        _refuse_directory_name(path)
        self.path = Path(path)
        self.symbol = int(symbol)
        self._flush_every = flush_every
        self._buf = bytearray()
        self._pending = 0
        self.count = 0
        self._submit, self._market = book.submit, book.submit_market
        self._cancel, self._modify = book.cancel, book.modify
        # Held by process(), flush() and close(). process() releases the GIL for its batch: a
        # close() from another thread meanwhile closed the file under it, and the batch, applied
        # to the book, went into a closed Recorder's buffer, lost without a word.
        self._guard = threading.RLock()
        self._guard_call = None
        # Held by each order entry call from its book call to its record, by process() from its
        # batch to its records, and by close(): a call from another thread in between was
        # applied to the book after the batch (or the other call) and journaled before it, or
        # journaled into a closed Recorder, and the journal no longer replayed to the book.
        # flush() does not take it: calls go on while it writes a copy of the buffer.
        self._entry = threading.Lock()
        # taken by `with`, never split from its release by a signal (see _recorded.Gate)
        self._entry_gate = _recorded.Gate(self._entry, weakref.WeakMethod(self._refuse_entry))
        self._entry_call = None
        # the thread of the process() or close() holding _entry (the per-order calls note none:
        # they are the hot path), so that a refusal names the thread that holds the Recorder
        self._entry_thread = None

    def _hold(self, call):
        if not self._guard.acquire(False):
            raise BusyError(f"Recorder is busy: {self._guard_call} is running through it in "
                            f"another thread; one Recorder is used by one thread at a time")
        outer = self._guard_call
        if outer is None:
            self._guard_call = call
        return outer

    def _release(self, outer):
        self._guard_call = outer
        self._guard.release()

    def _refuse_entry(self):
        # A call made from inside another one of the same thread (an argument's __index__ or
        # __array__ calling back into the Recorder) is refused too: said to come from
        # "another thread", it sent its caller looking for a thread that did not exist.
        if self._entry_call is None:
            where = ("in another thread, or in this one from inside that call (an argument's "
                     "__index__ or __array__ calling back into the Recorder)")
        elif self._entry_thread == threading.get_ident():
            where = ("in this thread, which called back into the Recorder from inside it (an "
                     "argument's __index__ or __array__, say)")
        else:
            where = "in another thread"
        raise BusyError(f"Recorder is busy: {self._entry_call or 'another call'} is being applied "
                        f"and journaled through it {where}; one Recorder is used by one thread "
                        f"at a time, one call at a time")

    def _flush_due(self):
        # the flush every flush_every records: while another thread's process(), flush() or
        # close() holds the Recorder it is put off (the records stay buffered for the next
        # flush), rather than failing a call the book has applied and the buffer holds
        if self._guard.acquire(False):
            try:
                self.flush()
            finally:
                self._guard.release()

    @classmethod
    def resume(cls, path, book=None, *, symbol: int | None = None, flush_every: int = 65536,
               fsync: bool = False) -> "Recorder":
        """Continue a journal after a crash or a :meth:`close`: replay its committed records into
        ``book`` and append from there. Returns the Recorder (``rec.book`` holds the replayed
        state; ``rec.resumed`` is the journal's header, ``uncommitted_bytes`` the tail cut).

        A tail left by a flush cut short (see :func:`repair_journal`) is cut before appending.
        ``book=None`` builds an :class:`OrderBook` with the journal's STP mode; a given book must
        have that mode and hold the state the journal started from: empty (a book holding orders
        raises ValueError), unless it was begun on a book holding orders with
        ``require_empty=False``, which the header notes (:attr:`NativeHeader.started_nonempty`):
        ``book=None`` or an empty book then raises ValueError, and the given book must hold that
        state. ``symbol=None`` takes the records' symbol (0 for
        a journal without records); another symbol than theirs is refused. A file that is not
        a Recorder journal raises :class:`NativeFormatError`; nothing is then changed. O(n)
        for n committed records.

        >>> rec = Recorder.resume("session.mccmd")  # doctest: +SKIP
        """
        _refuse_empty_path(path)
        if book is not None:
            _book_arg(book)
        # the options as Recorder() checks them, before the file is read or anything removed
        _positive_int(flush_every, "flush_every")
        _flag_arg(fsync, "fsync")
        if symbol is not None:
            _symbol_arg(symbol)
        if book is not None:
            book._journal_entry(True)       # an Engine's book refused before the file is read
        try:
            if not read_header(path, committed=True).is_journal:  # a regular file: before
                _refuse_not_journal(path)                          # opening it
            remove_stale_temp_files(path)
            f = _open_locked(path, os.O_RDWR)
            try:
                self = cls.__new__(cls)
                self._resume(f, path, book, symbol, flush_every, fsync)
            except BaseException:
                f.close()
                raise
        except BaseException:
            if book is not None:
                book._journal_entry(False)
            raise
        _LIVE.add(self)
        return self

    def _resume(self, f, path, book, symbol, flush_every, fsync):
        hdr = _read_header(f, Path(path), True)        # under the lock: no writer now
        if not hdr.is_journal:      # the path's file was replaced by another since the check
            _refuse_not_journal(path)
        cmds = _map(f, hdr)
        syms = np.unique(cmds["symbol"]) if len(cmds) else ()
        if len(syms) > 1:
            raise NativeFormatError(f"{path}: records of {len(syms)} symbols; a Recorder writes "
                                    f"one, so this file cannot be continued by one")
        if symbol is None:
            symbol = int(syms[0]) if len(syms) else 0
        elif len(syms) and _symbol_arg(symbol) != int(syms[0]):
            raise ValueError(f"symbol={symbol!r}, but the journal's records have symbol "
                             f"{int(syms[0])}")
        if book is None:
            book = _start_book(path, hdr, None)
            book._journal_entry(True)   # (a given book is held by resume() already)
        else:
            _start_book(path, hdr, book)
        self._setup(book, path, symbol, flush_every, fsync)     # checks before the replay
        for i in range(0, len(cmds), 65536):                    # events in bounded pieces
            book.process(cmds[i:i + 65536])
        del cmds                                                # unmapped before the cut
        self.resumed = _cut_tail(f, hdr)
        self.count = hdr.count
        self._f = f

    # ---- forwarded order entry ----
    # Written out per method (cached bound methods, one pack per call): the journal should cost
    # little next to the call it records. The book's call and the record's append are one
    # compiled step (matchcore._recorded), which no signal handler's exception can split.

    def _closed(self):
        raise ValueError("Recorder is closed")

    def submit(self, order_id, side, price, qty, tif=TIF.GTC, *, owner=0, post_only=False, ts_ns=0):
        """Forward :meth:`OrderBook.submit` and journal a SUBMIT record."""
        with self._entry_gate:
            if self._f is None:
                self._closed()
            # the flag first, as the book converts it first: with several bad arguments both
            # name the same one. Read once, and the book given what was read: a flag read
            # through __index__ (a 0-d array another thread refills) could read otherwise for
            # the book, which then applied another order than the one journaled.
            po = 1 if _flag_arg(post_only, "post_only") else 0
            order_id, side, price, qty, tif, owner, ts_ns = _read_once(
                order_id, side, price, qty, tif, owner, ts_ns)
            if not (_fits_u8(side) and _fits_u8(tif)):
                _refuse_u8(order_id, side, price, qty, tif, owner, ts_ns)
            rejected = None
            try:
                # the call and its record in one step (see matchcore._recorded)
                out = _recorded.submit(self._submit, self._buf, _pack, self.symbol, _SUBMIT,
                                       order_id, side, price, qty, tif, owner, po, ts_ns)
            except OrderRejected as e:
                rejected = e            # journaled, and flushed as any call, then raised
            self._pending += 1
        if self._pending >= self._flush_every:
            self._flush_due()
        if rejected is not None:
            raise rejected
        return out

    def submit_market(self, order_id, side, qty, *, owner=0, ts_ns=0):
        """Forward :meth:`OrderBook.submit_market` and journal a MARKET record."""
        with self._entry_gate:
            if self._f is None:
                self._closed()
            order_id, side, qty, owner, ts_ns = _read_once(order_id, side, qty, owner, ts_ns)
            if not _fits_u8(side):
                _refuse_u8(order_id, side, None, qty, None, owner, ts_ns)
            rejected = None
            try:
                out = _recorded.market(self._market, self._buf, _pack, self.symbol, _MARKET,
                                       order_id, side, qty, owner, ts_ns)
            except OrderRejected as e:
                rejected = e
            self._pending += 1
        if self._pending >= self._flush_every:
            self._flush_due()
        if rejected is not None:
            raise rejected
        return out

    def cancel(self, order_id, *, owner=0, ts_ns=0):
        """Forward :meth:`OrderBook.cancel` and journal a CANCEL record."""
        with self._entry_gate:
            if self._f is None:
                self._closed()
            order_id, owner, ts_ns = _read_once(order_id, owner, ts_ns)
            out = _recorded.cancel(self._cancel, self._buf, _pack, self.symbol, _CANCEL,
                                   order_id, owner, ts_ns)
            self._pending += 1
        if self._pending >= self._flush_every:
            self._flush_due()
        return out

    def modify(self, order_id, qty, price=None, *, owner=0, ts_ns=0):
        """Forward :meth:`OrderBook.modify` and journal a MODIFY record (price 0 = keep)."""
        with self._entry_gate:
            if self._f is None:
                self._closed()
            order_id, qty, price, owner, ts_ns = _read_once(order_id, qty, price, owner, ts_ns)
            rejected = None
            try:
                # (price None: recorded as 0, keep)
                out = _recorded.modify(self._modify, self._buf, _pack, self.symbol, _MODIFY,
                                       order_id, qty, price, owner, ts_ns)
            except OrderRejected as e:
                rejected = e
            self._pending += 1
        if self._pending >= self._flush_every:
            self._flush_due()
        if rejected is not None:
            raise rejected
        return out

    def process(self, commands, out=None):
        """Forward :meth:`OrderBook.process` and journal every command of the batch (bad ones
        included: the batch applies them all), with this recorder's ``symbol``. An array or
        ``out`` that the book refuses raises before any command, and nothing is journaled. If
        the book runs out of memory part way, the commands it applied (the MemoryError's
        ``applied``) are journaled before the error propagates."""
        if self._f is None:
            self._closed()
        outer = self._hold("process()")
        try:
            if self._f is None:         # closed by another thread before the hold
                self._closed()
            with self._entry_gate:
                try:
                    self._entry_call = "process()"
                    self._entry_thread = threading.get_ident()
                    batch = commands
                    try:
                        batch = _batch_copy(commands, out)
                        if batch is commands:
                            # an array or out= the book refuses, in its words, before any command
                            res = self.book.process(batch, out=out)
                            data = self._file_records(batch)
                            self._buf += data
                        else:
                            # the records made first (memory running out here applies nothing),
                            # then the batch and their append in one step (see matchcore._recorded)
                            try:
                                data = self._file_records(batch)
                            except MemoryError:
                                raise _out_of_memory_before_any(len(batch)) from None
                            res, appended = _recorded.batch(self.book.process, self._buf,
                                                            batch, out, data)
                            if not appended:
                                # applied, but no memory left to buffer its records: written
                                # in pieces instead (their memory freed first)
                                del data
                                self._journal_applied(batch, len(batch))
                                return res
                    except MemoryError as exc:
                        # the book ran out of memory part way: the commands it applied are in the
                        # live state, so they go into the journal too (else it replays to another
                        # state)
                        applied = getattr(exc, "applied", 0)
                        if applied:
                            self._journal_applied(batch, applied)
                        raise
                    self._pending += len(data) // COMMAND_DTYPE.itemsize
                    if self._pending >= self._flush_every:
                        self._flush_due()
                    return res
                finally:
                    self._entry_call = self._entry_thread = None
        finally:
            self._release(outer)

    def _journal_applied(self, batch, applied: int) -> None:
        # the first `applied` commands of a batch the book applied, journaled in pieces written
        # at once: a copy of them all may not fit in what memory is left
        given = np.asarray(batch)
        self.flush()
        for i in range(0, applied, 4096):
            self._journal_batch(given[i:min(i + 4096, applied)])
            self.flush()

    def _file_records(self, commands) -> memoryview:
        recs = np.asarray(commands).astype(FILE_DTYPE)      # a copy, in the file's layout
        recs["symbol"] = self.symbol
        return memoryview(recs.view(np.uint8))              # its bytes, not copied again

    def _journal_batch(self, commands):
        data = self._file_records(commands)
        self._buf += data
        self._pending += len(data) // COMMAND_DTYPE.itemsize
        if self._pending >= self._flush_every:
            self._flush_due()

    def _unjournaled(self, name):
        raise TypeError(f"Recorder.{name}() cannot be journaled (a command file holds SUBMIT, "
                        "MARKET, CANCEL and MODIFY records): the journal would no longer replay "
                        "to the live state; close() the recorder first")

    def place(self, *args, **kwargs):
        """Refused: replay mode has no command record."""
        self._unjournaled("place")

    def reduce(self, *args, **kwargs):
        """Refused: replay mode has no command record."""
        self._unjournaled("reduce")

    def clear(self, *args, **kwargs):
        """Refused: emptying the book has no command record."""
        self._unjournaled("clear")

    def restore(self, *args, **kwargs):
        """Refused: loading a snapshot has no command record."""
        self._unjournaled("restore")

    @property
    def handle(self):
        """Refused (ValueError): the C function table and Numba, given the book's handle, would
        change the book without a record, as a journaled Engine refuses its handle. A Recorder
        is driven through its Python methods; ``rec.book.handle`` is the book's own, for reads
        (order entry through it returns -MC_ERR_READONLY until the Recorder is closed)."""
        raise ValueError("a Recorder is driven through its Python methods only: the C function "
                         "table and Numba would bypass its journal (rec.book.handle is the "
                         "book's own handle, for reads)")

    @property
    def address(self):
        """Refused (ValueError), as :attr:`handle`."""
        return self.handle

    def _handle(self):
        """Refused, as :attr:`handle`."""
        return self.handle

    def __getattr__(self, name):
        return getattr(self.book, name)

    def __len__(self):
        return len(self.book)

    # ---- file ----

    def flush(self) -> None:
        """Write buffered records, then rewrite the header count; the file is then valid.

        The records go to their place after the counted ones (a retry after a failed write
        writes them there again) and the count only after them, so a process killed in between
        leaves a file whose count covers whole, written records only (read them with
        ``committed=True``; :func:`repair_journal` cuts the bytes after them). With ``fsync=True`` the records are
        fdatasync'ed before the count is written, and the count after: the same holds after a
        power loss, and every flush that returned is on stable storage."""
        if self._f is None or not self._buf:
            return
        outer = self._hold("flush()")
        try:
            if self._f is None or not self._buf:     # closed or flushed by another thread
                return
            if os.getpid() != self._pid:
                raise ValueError(f"this Recorder belongs to process {self._pid}: a process "
                                 f"forked from it cannot write its journal (its records would "
                                 f"overwrite or outlast the owner's)")
            fd = self._f.fileno()
            # written from a copy: the writes release the GIL, and a call from another thread
            # meanwhile appends its record to the buffer (exported, it refused to grow: the
            # call, applied to the book, raised BufferError and its record was lost); what it
            # appends stays buffered for the next flush, the count from the copy's length
            try:
                data = bytes(self._buf)
            except MemoryError:
                # no memory left for a copy of the whole buffer (a large flush_every): written
                # from copies of pieces of it, as its length is now (a bare MemoryError here
                # kept the records off the file for as long as memory stayed short)
                data = None
            size = len(self._buf) if data is None else len(data)
            n = self.count + size // COMMAND_DTYPE.itemsize
            try:
                at = HEADER_SIZE + COMMAND_DTYPE.itemsize * self.count
                if data is not None:
                    _pwrite_all(fd, data, at)
                else:
                    for i in range(0, size, _FLUSH_PIECE):
                        # (the view released before the write lets the GIL go: another
                        # thread's record is then appended, not refused as BufferError)
                        with memoryview(self._buf) as view:
                            piece = view[i:min(i + _FLUSH_PIECE, size)].tobytes()
                        _pwrite_all(fd, piece, at + i)
                if self._fsync:
                    os.fdatasync(fd)
                _pwrite_all(fd, struct.pack("<Q", n), 16)
                if self._fsync:
                    os.fdatasync(fd)
            except OSError as exc:
                # os.pwrite and os.fdatasync name no file: a full disk said "[Errno 28] No
                # space left on device" from whichever call filled the buffer, not which
                # journal stopped
                raise OSError(exc.errno, f"{exc.strerror}: the Recorder journal could not be "
                                         f"flushed ({records(self._pending, 'buffered ')} kept, "
                                         f"{records(self.count, 'committed ')} on file: flush() "
                                         f"again once the cause is gone)",
                              str(self.path)) from exc
            # both at once: see _recorded.flushed
            _recorded.flushed(self, self._buf, n, size)
            self._pending = len(self._buf) // COMMAND_DTYPE.itemsize
        finally:
            self._release(outer)

    def close(self) -> None:
        """Flush and close the journal (idempotent). In a process forked from the owner (a
        ``with`` block left in the child, the child's exit) the file is closed unwritten."""
        if self._f is None:
            return
        outer = self._hold("close()")
        try:
            if self._f is None:         # closed by another thread before the hold
                return
            with self._entry_gate:
                try:
                    self._entry_call = "close()"
                    self._entry_thread = threading.get_ident()
                    self._close()
                finally:
                    self._entry_call = self._entry_thread = None
        finally:
            self._release(outer)

    def _close(self):
        # close() past its holds
        try:
            if os.getpid() == self._pid:
                try:
                    self.flush()
                except OSError as exc:
                    # the file is closed below whatever the flush gave: no retry can write the
                    # buffered records (flush()'s words offered one)
                    why = os.strerror(exc.errno) if exc.errno else exc.strerror
                    raise OSError(exc.errno, f"{why}: the Recorder journal could not be "
                                             f"flushed on close "
                                             f"({records(self._pending, 'buffered ')} lost, "
                                             f"{records(self.count, 'committed ')} on file)",
                                  str(self.path)) from exc
        finally:
            self._f.close()
            self._f = None
            self.book._journal_entry(False)     # the C table takes its orders again

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _pwrite_all(fd, data, offset) -> None:
    with memoryview(data) as view:
        done = 0
        while done < len(view):
            done += os.pwrite(fd, view[done:], offset + done)


def records(n: int, kind: str = "") -> str:
    """``"1 whole record"``, ``"3 whole records"``: a count of records for a message."""
    return f"{n:,} {kind}record{'' if n == 1 else 's'}"


def _fsync_dir(path: Path) -> None:
    # the new file's name on stable storage too (a symlink's target's directory)
    from matchcore.durability.snapshot import fsync_dir

    fsync_dir(os.path.dirname(os.path.realpath(path)))


def _refuse_used_journal(f, path: Path) -> None:
    # A journal that holds anything (committed records or a flush's tail) is what a crashed
    # session leaves: opening it for writing truncated it, losing the records the journal
    # exists to keep. A bare header (nothing recorded) or another kind of file is replaced.
    # (Read through the locked descriptor: the file that would be replaced.)
    raw = os.pread(f.fileno(), HEADER_SIZE, 0)
    size = os.fstat(f.fileno()).st_size
    if (size <= HEADER_SIZE or len(raw) < HEADER_SIZE or raw[:len(MAGIC)] != MAGIC
            or not struct.unpack_from("<I", raw, 12)[0] & FLAG_JOURNAL):
        return
    count = struct.unpack_from("<Q", raw, 16)[0]
    raise FileExistsError(
        f"{path} already holds a Recorder journal ({count} records in its header, "
        f"{size - HEADER_SIZE} bytes after it): continue it with "
        f"matchcore.native.Recorder.resume({str(path)!r}), or pass overwrite=True to replace it")


# Open Recorders of this process. A child forked from it inherits their descriptors, and with
# them the journal's lock: it outlived the owner's close() as long as the child lived (a
# multiprocessing worker), and the journal could not be resumed or repaired meanwhile. The child
# cannot write them anyway (flush() refuses), so its copies are pointed at /dev/null.
_LIVE = weakref.WeakSet()


def _recording(book) -> bool:
    """Whether an open Recorder of this process journals ``book``. O(open Recorders)."""
    return any(rec._f is not None and rec.book is book for rec in list(_LIVE))


def _drop_journals_in_child() -> None:
    for rec in list(_LIVE):
        f = rec._f
        if f is not None and not f.closed:
            nul = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.dup2(nul, f.fileno(), inheritable=False)
            finally:
                os.close(nul)


os.register_at_fork(after_in_child=_drop_journals_in_child)


def _forward(name):
    return property(lambda self: getattr(self.book, name),
                    doc=f"The book's ``{name}`` (read-only, as on the book).")


# The book's read-only attributes, read through and refused on assignment as the book refuses
# them: through __getattr__ alone, ``rec.record_events = False`` made a Recorder attribute that
# hid the book's (which went on recording events) instead of raising.
for _name in ("stp", "busy", "raw_address", "record_events"):
    setattr(Recorder, _name, _forward(_name))
del _name


def record(book, path, **kwargs) -> Recorder:
    """Start journaling ``book`` into ``path``; returns the :class:`Recorder` to use as the book.

    >>> with record(OrderBook(), "s.mccmd") as book:  # doctest: +SKIP
    ...     book.submit(1, 0, 100, 5)
    """
    return Recorder(book, path, **kwargs)


__all__ = ["FILE_DTYPE", "FLAG_JOURNAL", "HEADER_SIZE", "MAGIC", "NativeFormatError", "NativeHeader",
           "Recorder", "VERSION", "read_commands", "read_header", "record",
           "remove_stale_temp_files", "repair_journal", "replay_commands", "write_commands"]
