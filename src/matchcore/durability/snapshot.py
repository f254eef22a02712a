"""Engine snapshot files: every symbol's book, limits, name and capacity, and the journal position.

Layout (little-endian), ``snapshot-<seq>.mcs``::

    header   64 bytes  magic b"MCENGSNP", version, header size, seq (last journaled command the
                       state includes), trade seq (last trade record), STP mode, symbol count,
                       flags (bit 0: taken from a journaled engine; bit 1: anchored; bit 2:
                       trade capture on, so trade seq counts every fill), anchor
                       (CRC-32C of the command journal's record at seq, when bit 1 is set),
                       created (wall ns), engine state hash
    symbol   80 bytes  symbol id, name length (0xFFFFFFFF: none), capacity, 7 limits,
                       book snapshot length; then the UTF-8 name and the book's own snapshot
                       (:meth:`OrderBook.snapshot`, checksummed itself), each padded to 8 bytes
    trailer   8 bytes  CRC-32 of everything before it, b"MCSE"

The order-id routing is not stored: it is a function of the books (every resting order routes
to the book it rests in) and is rebuilt on load, so there is no second copy to disagree.
A loaded engine must reproduce the stored state hash, or the file is refused.

The anchor ties a snapshot to the journal it was taken from: recovery uses it only with a journal
whose record at ``seq`` has that CRC (the record's seq, wall-clock time and content), so a
snapshot of an earlier journal in the same directory, or one left ahead of a journal that was
cut and then written again, is never taken for this journal's state. Files without the anchor
(bit 1 clear: written before it existed, or at seq 0) are read as before.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import struct
import time
import zlib
from typing import TYPE_CHECKING

from matchcore.durability.errors import SnapshotFileError

if TYPE_CHECKING:
    from matchcore._engine import Engine

MAGIC = b"MCENGSNP"
VERSION = 1
_HEADER = struct.Struct("<8sIIQQIIIIqQ")        # 64 bytes
_SYMBOL = struct.Struct("<IIq7qQ")              # 80 bytes
_TRAILER = struct.Struct("<I4s")
_LIMITS = ("tick", "min_price", "max_price", "ref_price", "band", "max_qty", "max_notional")
assert _HEADER.size == 64 and _SYMBOL.size == 80
FLAG_JOURNALED = 1
FLAG_ANCHORED = 2
FLAG_TRADES = 4          # trade capture was on: trade seq counts every fill up to seq
_NO_NEXT_SEQ = 2**64 - 1  # a seq (or trade seq) from which no journal can go on


def _pad(n: int) -> int:
    return (n + 7) & ~7


def snapshot_bytes(engine) -> tuple[bytes, int]:
    """The engine's snapshot as bytes, and the seq it stands at. Syncs the journals first.
    The engine is held meanwhile (a call from another thread raises BusyError): the journal
    position and every book are read as one state."""
    with engine._holding():
        return _snapshot_bytes(engine)


def engine_state_hash(engine) -> int:
    """``Engine.state_hash`` of ``engine``, never a subclass's override of it: what snapshots
    store and what a journal's first segment records as its start state, whichever class wrote
    or reads them (an override that also hashed the subclass's own fields made a subclass's
    journal unrecoverable: its segment recorded the engine's hash, recovery compared the
    override's). O(orders + levels)."""
    from matchcore._engine import Engine
    return Engine.state_hash(engine)


def _snapshot_bytes(engine) -> tuple[bytes, int]:
    journaled = engine.journal is not None
    if journaled and not engine.journal.closed:
        engine.sync()
    elif journaled:
        # closed: nothing more was journaled after close(), whose records are durable (checked
        # in write_snapshot), and the books still hold the state at journal_seq
        _refuse_closed_journal(engine)
    seq = engine.journal_seq
    trade_seq = (engine.trade_journal.next_seq - 1) if engine.trade_journal is not None else 0
    anchor = engine.journal.last_crc if journaled else None
    flags = ((FLAG_JOURNALED if journaled else 0) | (FLAG_ANCHORED if anchor is not None else 0)
             | (FLAG_TRADES if engine.trade_journal is not None else 0))
    parts = []
    # the engine's own state, as engine_state_hash reads it: a subclass may present its
    # symbols, books or limits its own way (another type, other units), but the file holds
    # what the engine matches against and recovery rebuilds
    from matchcore._engine import Engine
    symbols = Engine.symbols.__get__(engine)
    for sym, name in symbols.items():
        nb = b"" if name is None else name.encode("utf-8")
        book = Engine.book(engine, sym).snapshot()
        lim = Engine.limits(engine, sym)
        parts.append(_SYMBOL.pack(sym, 0xFFFFFFFF if name is None else len(nb),
                                  engine._capacity_of(sym), *[lim[k] for k in _LIMITS],
                                  len(book)))
        parts.append(nb + b"\0" * (_pad(len(nb)) - len(nb)))
        parts.append(book + b"\0" * (_pad(len(book)) - len(book)))
    head = _HEADER.pack(MAGIC, VERSION, _HEADER.size, seq, trade_seq, int(engine.stp),
                        len(symbols), flags, anchor or 0, time.time_ns(),
                        engine_state_hash(engine))
    body = head + b"".join(parts)
    return body + _TRAILER.pack(zlib.crc32(body), b"MCSE"), seq


def write_snapshot(engine, path) -> str:
    """Write ``engine``'s snapshot into directory ``path`` as ``snapshot-<seq>.mcs``, atomically
    (temporary file, fsync, rename, directory fsync); returns the file's path. The journals are
    synced first (an engine after ``close()``: its journal ended durably, else JournalError;
    into its own directory under the LOCK, see :meth:`Engine.snapshot`). The temporary file
    (``snapshot-<seq>.mcs.tmp<pid>.<hex>``) is this call's own and locked until its rename;
    those of writers that died before theirs are removed first
    (:func:`remove_stale_temporaries`). A directory holding a journal other than the engine's
    own raises ValueError. ``path`` is made if missing, but only in a directory that exists:
    a missing parent raises ``FileNotFoundError`` ("no directory <parent>"), as
    ``Engine(journal=...)`` does, before anything is made. O(orders + levels).

    >>> import tempfile, matchcore as mc
    >>> d = tempfile.mkdtemp(); eng = mc.Engine(journal=d); _ = eng.add_symbol(1)
    >>> os.path.basename(eng.snapshot())
    'snapshot-00000000000000000001.mcs'
    """
    from matchcore._core import OrderBook
    from matchcore._engine import Engine
    from matchcore.durability.errors import JournalError
    from matchcore.durability.journal import lock_directory, refuse_bytes_dir
    if not isinstance(engine, Engine):
        # anything else failed on a missing attribute ("'OrderBook' object has no attribute
        # 'journal'"), which did not say what the call takes
        hint = (": a book's own snapshot is book.snapshot(), bytes"
                if isinstance(engine, OrderBook) else "")
        raise TypeError(f"write_snapshot() needs an Engine, got {type(engine).__name__}{hint}")
    refuse_bytes_dir(path, "snapshot directory")
    lock_fd = None
    try:
        # Whether the journal is closed is read under the engine's hold, with the bytes: a
        # segment roll in another thread's call leaves the writer without an open segment for
        # a moment, which read unguarded as a closed journal (JournalError for a busy engine),
        # and a close() between that reading and the bytes wrote into the directory without
        # its LOCK.
        with engine._holding():
            if engine.journal is not None and engine.journal.closed:
                # a closed engine keeps its state (queries answer, it does not pickle):
                # written from there, if its journal ended cleanly and durably; into its own
                # directory only under the LOCK close() released, which a writer that took
                # the directory over holds
                _refuse_closed_journal(engine)
                if os.path.isdir(path) and _same_dir(path, engine.journal.path):
                    trades = engine.trade_journal
                    if trades is not None and not trades.closed:
                        # eng.journal closed alone: the engine's own trade journal holds the
                        # LOCK, which lock_directory() reported as "in use by another engine"
                        raise JournalError(f"{path}: the engine's trade journal is still open "
                                           f"(its command journal was closed alone) and "
                                           f"holds the directory's LOCK: close() the engine, "
                                           f"then snapshot()", str(path))
                    lock_fd = lock_directory(path)
            _refuse_journal_dir(engine, path)
            data, seq = _snapshot_bytes(engine)
        return _write_snapshot(data, seq, path)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def _refuse_closed_journal(engine) -> None:
    from matchcore.durability.errors import JournalError
    for j in (engine.journal, engine.trade_journal):
        if j is not None and j.failed:
            j.check()       # the failure's own JournalError: the state may be ahead of the disk
    seq, durable = engine.journal_seq, engine.durable_seq
    if durable < seq:
        raise JournalError(f"journal {engine.journal.path} was closed under "
                           f"fsync={engine.journal.policy!r}: its records after seq {durable} "
                           f"(to seq {seq}) are not known to be on stable storage, and a "
                           f"snapshot names a durable journal position only; recover the "
                           f"journal (Engine.recover) and snapshot the recovered engine",
                           str(engine.journal.path))


def _refuse_journal_dir(engine, path) -> None:
    if os.path.isdir(path):
        from matchcore.durability.journal import KIND_COMMANDS, KIND_TRADES, segment_files
        own = engine.journal is not None and _same_dir(path, engine.journal.path)
        if not own and segment_files(path, KIND_TRADES) and not segment_files(path,
                                                                             KIND_COMMANDS):
            # another engine's trade journal without its commands (Engine(journal=DIR)
            # refuses such a directory): recovery from this snapshot started a journal over
            # it, and cut that engine's fills as those of commands not kept, or took them for
            # this engine's own
            raise ValueError(f"{path} holds a trade journal (trade segments, no command "
                             f"journal): recovery from this snapshot would start a journal "
                             f"over it and cut those fills or take them for this engine's; "
                             f"give another directory")
        if segment_files(path, KIND_COMMANDS):
            if engine.journal is None:
                # its file would be snapshot-0, unanchored: recovery took it for the journal's
                # state before its first record, books and all, a state never journaled
                raise ValueError(f"{path} holds a journal: the snapshot of an engine without "
                                 f"one would be taken for that journal's state at seq 0; give "
                                 f"another directory")
            if not _same_dir(path, engine.journal.path):
                # another engine's journal directory: its own snapshot of the same seq was
                # replaced (and recovery set the foreign one aside), the state lost with it
                raise ValueError(f"{path} holds another engine's journal (this engine journals "
                                 f"into {engine.journal.path}): the snapshot would replace that "
                                 f"journal's own snapshot of seq {engine.journal_seq}, if any, "
                                 f"and recovery there would not use it; give another directory")


def _write_snapshot(data: bytes, seq: int, path) -> str:
    from matchcore import _tempfiles

    # made only in a directory that exists, as Engine(journal=DIR) is: a mistyped parent put
    # the snapshot somewhere new
    makedirs_durable(path, parents=False)
    final = os.path.join(path, f"snapshot-{seq:020d}.mcs")
    # a writer killed before its rename left its temporary file there for good
    remove_stale_temporaries(path)
    # its own name, locked until renamed: two writers of one seq (two threads, or two engines
    # writing into one directory) shared "<final>.tmp", each truncating the other's half-written
    # file, and one of them renamed a torn snapshot into place
    try:
        fd, tmp = _tempfiles.new_locked(final, exclusive=True, mode=0o644)
    except OSError as exc:
        # (no permission, no inode or descriptor left): said of the temporary file, a name
        # the caller never gave, and not that the snapshot was not written. OSError() keeps
        # the errno's subclass (PermissionError, ...)
        raise OSError(exc.errno, f"{exc.strerror}: the snapshot could not be written "
                                 f"(nothing was left in its place)", final) from exc
    renamed = False
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            # os.write and os.fsync name no file: a full disk said only "[Errno 28] No space
            # left on device", not which snapshot (nor which directory) could not be written
            raise OSError(exc.errno, f"{exc.strerror}: the snapshot could not be written "
                                     f"(nothing was left in its place)", final) from exc
        os.replace(tmp, final)
        renamed = True
    finally:
        os.close(fd)
        if not renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    fsync_dir(path)
    return final


# exactly the names _tempfiles.new_locked gives (no other writer made these)
_TEMP = re.compile(r"snapshot-[0-9]+\.mcs\.tmp([0-9]+)\.[0-9a-f]{8}")
_LEGACY_TEMP = re.compile(r"snapshot-[0-9]+\.mcs\.tmp")


def remove_stale_temporaries(path, *, legacy: bool = False, remove: bool = True) -> list[str]:
    """Remove the temporary files of snapshot writers that died before their rename from
    directory ``path`` (``snapshot-<seq>.mcs.tmp<pid>.<hex>``); returns their paths. Only files
    whose process is gone, that hold a snapshot's first bytes (or none) and whose lock can be
    taken are removed: never a live writer's (see :mod:`matchcore._tempfiles`). ``legacy``:
    also ``snapshot-<seq>.mcs.tmp`` of earlier versions (no pid, no lock; recovery removes them
    under the directory's LOCK). ``remove=False`` (read-only recovery) removes nothing and
    returns the paths it would remove. O(entries in the directory)."""
    from matchcore import _tempfiles

    removed = [os.path.join(path, n) for n in _tempfiles.remove_dead(path, _TEMP, MAGIC,
                                                                      remove=remove)]
    if legacy:
        for name in sorted(os.listdir(path)):
            if _LEGACY_TEMP.fullmatch(name) and _tempfiles._remove_if_dead(
                    os.path.join(path, name), MAGIC, remove=remove):
                removed.append(os.path.join(path, name))
    return removed


def _same_dir(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def makedirs_durable(path, *, parents: bool = True) -> None:
    """``os.makedirs(path, exist_ok=True)``, with the entry of every directory it creates made
    durable in its parent (fsync of the parent): a file fsynced in a new directory survives a
    power loss only if the directory's own name does, which nothing else syncs. A path that
    exists and is not a directory raises ``NotADirectoryError`` (not makedirs' "File exists"),
    so does a symbolic link to nothing on the way, and an empty path ``FileNotFoundError``
    ("no directory '' (an empty path)"):
    made absolute it named the current directory, and the caller's files, joined to "", went
    there. ``parents=False``: only ``path`` itself may be made; a missing parent raises
    ``FileNotFoundError`` ("no directory <parent>") before anything is made."""
    if not os.fspath(path):
        # worded as recovery and list_snapshots word it: a bare "No such file or directory:
        # ''" read as a file the library had looked for
        raise FileNotFoundError(errno.ENOENT, "no directory '' (an empty path)", path)
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    missing = []
    p = path
    while not os.path.isdir(p):
        if os.path.islink(p):
            # a symlink to nothing: makedirs raised "File exists", as if existing were the fault.
            # One in a loop of links leads nowhere either, and one on the way to a file leads
            # to no directory, but their targets exist: "which does not exist" sent the user
            # to look for a file they could list
            try:
                os.stat(p)
                why = "which is not a directory"
            except OSError as exc:
                why = ("which leads into a loop of symbolic links" if exc.errno == errno.ELOOP
                       else "which does not exist")
            raise NotADirectoryError(errno.ENOTDIR, f"{os.strerror(errno.ENOTDIR)} (a symbolic "
                                     f"link to {os.readlink(p)}, {why})", p)
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    if not parents and not os.path.lexists(os.path.dirname(path)):
        # a mistyped parent made a new tree, and the files went there
        raise FileNotFoundError(errno.ENOENT, f"no directory {os.path.dirname(path)}", path)
    os.makedirs(path, exist_ok=True)
    for made in reversed(missing):
        try:
            fsync_dir(os.path.dirname(made))
        except PermissionError:
            # a parent this process may write but not read (mode 0733) cannot be opened to be
            # synced: the directory is made as before rather than refused
            pass


def fsync_dir(path) -> None:
    """Make the renames in directory ``path`` durable (the snapshot's, recovery's set-asides)."""
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    except OSError as exc:
        # os.fsync names no file: a failure (EIO) said "Input/output error" alone
        raise OSError(exc.errno, f"{exc.strerror}: the directory could not be synced to stable "
                                 f"storage (the names just made or renamed in it may not "
                                 f"survive a power loss)", str(path)) from exc
    finally:
        os.close(dfd)


def list_snapshots(path) -> list[tuple[int, str]]:
    """(seq, file path) of a directory's snapshot files, oldest first. A missing directory
    raises ``FileNotFoundError`` naming it as recovery and ``journal inspect`` do ("no journal
    directory X"), a file that is no directory ``NotADirectoryError`` ("X is not a
    directory"); anything but a str or an ``os.PathLike`` of str raises ``TypeError``:
    ``None`` listed the current directory, an int was taken for a file descriptor."""
    from matchcore.durability.journal import listing_error, refuse_bytes_dir
    refuse_bytes_dir(path, "snapshot directory")
    try:
        names = os.listdir(path)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise listing_error(path, exc) from None
    out = []
    for name in names:
        if name.startswith("snapshot-") and name.endswith(".mcs"):
            digits = name[len("snapshot-"):-len(".mcs")]
            # ASCII digits only: isdigit() accepts '²' (int() then raised ValueError) and '٣'
            if digits.isascii() and digits.isdigit():
                out.append((int(digits), os.path.join(path, name)))
    return sorted(out)


def _parse(data: bytes, name: str) -> tuple[dict, list]:
    """Header fields and per-symbol entries of a snapshot; SnapshotFileError on any defect."""
    if len(data) < _HEADER.size + _TRAILER.size:
        raise SnapshotFileError(f"{name}: truncated ({len(data)} bytes)", name, len(data))
    if data[:8] != MAGIC:
        from matchcore._magic import own_file_hint

        raise SnapshotFileError(f"{name}: not an engine snapshot (bad magic)"
                                f"{own_file_hint(data[:8], 'engine_snapshot')}", name, 0)
    crc, end_magic = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    if end_magic != b"MCSE":
        whole = _whole_before(data)
        if whole is not None:
            extra = len(data) - whole
            raise SnapshotFileError(f"{name}: {extra} byte{'s' if extra != 1 else ''} after the "
                                    f"snapshot's content (it ends at offset {whole})", name,
                                    whole)
        raise SnapshotFileError(f"{name}: truncated or damaged (no trailer)", name,
                                len(data) - _TRAILER.size)
    if zlib.crc32(memoryview(data)[:len(data) - _TRAILER.size]) != crc:
        raise SnapshotFileError(f"{name}: CRC mismatch", name, len(data) - _TRAILER.size)
    (_, version, hsize, seq, trade_seq, stp, n_symbols, flags, anchor, created_ns,
     state_hash) = _HEADER.unpack_from(data, 0)
    if version != VERSION or hsize != _HEADER.size:
        raise SnapshotFileError(f"{name}: unsupported version {version}", name, 8)
    for field, value, at in (("seq", seq, 16), ("trade seq", trade_seq, 24)):
        # the journals' seqs are u64 and a journal continued from the snapshot starts at the
        # next one: a value without one made a recovery fail creating its writer (an
        # OverflowError naming neither the file nor the field)
        if value >= _NO_NEXT_SEQ:
            raise SnapshotFileError(f"{name}: {field} {value} leaves no next seq (at most "
                                    f"{_NO_NEXT_SEQ - 1})", name, at)
    head = {"seq": seq, "trade_seq": trade_seq, "stp": stp, "symbols": n_symbols,
            "journaled": bool(flags & FLAG_JOURNALED),
            "anchor": anchor if flags & FLAG_ANCHORED else None,
            # files from before FLAG_TRADES existed (no anchor either) do not say: None
            "trades": True if flags & FLAG_TRADES else
            (False if flags & FLAG_ANCHORED else None),
            "created_ns": created_ns,
            "state_hash": state_hash}
    off, end = _HEADER.size, len(data) - _TRAILER.size
    entries = []
    for _ in range(n_symbols):
        if off + _SYMBOL.size > end:
            raise SnapshotFileError(f"{name}: symbol table truncated", name, off)
        sym, name_len, capacity, *limits, book_len = _SYMBOL.unpack_from(data, off)
        off += _SYMBOL.size
        nl = 0 if name_len == 0xFFFFFFFF else name_len
        if off + _pad(nl) + _pad(book_len) > end:
            raise SnapshotFileError(f"{name}: symbol {sym} runs past the end", name, off)
        try:
            sym_name = None if name_len == 0xFFFFFFFF else data[off:off + nl].decode("utf-8")
        except UnicodeDecodeError:
            raise SnapshotFileError(f"{name}: symbol {sym}: name is not UTF-8", name, off) from None
        off += _pad(nl)
        book = data[off:off + book_len]
        off += _pad(book_len)
        entries.append((sym, sym_name, capacity, dict(zip(_LIMITS, limits)), book))
    if off != end:
        raise SnapshotFileError(f"{name}: {end - off} unexpected bytes after the symbols", name,
                                off)
    return head, entries


def _whole_before(data: bytes) -> int | None:
    """The size of a whole snapshot (its trailer and CRC hold) that ``data`` starts with and
    runs past, found through its symbol table; None if there is none."""
    n_symbols = _HEADER.unpack_from(data, 0)[6]
    off = _HEADER.size
    for _ in range(n_symbols):
        if off + _SYMBOL.size > len(data):
            return None
        _, name_len, *_, book_len = _SYMBOL.unpack_from(data, off)
        off += _SYMBOL.size + _pad(0 if name_len == 0xFFFFFFFF else name_len) + _pad(book_len)
    if off + _TRAILER.size >= len(data):
        return None
    crc, end_magic = _TRAILER.unpack_from(data, off)
    if end_magic != b"MCSE" or zlib.crc32(memoryview(data)[:off]) != crc:
        return None
    return off + _TRAILER.size


def _read_file(fpath) -> bytes:
    # a path that cannot be read is one more way for a snapshot to be unusable: the readers'
    # single exception, so recovery skips and reports it like a damaged one
    from matchcore.durability.journal import read_regular_file
    try:
        return read_regular_file(fpath)
    except OSError as exc:
        # an empty path's message started with its colon, naming nothing
        shown = str(fpath) or "'' (an empty path)"
        raise SnapshotFileError(f"{shown}: cannot be read: {exc.strerror or exc}",
                                str(fpath)) from exc


def read_snapshot_header(fpath) -> dict:
    """The header fields of a snapshot file, after checking its CRC and layout."""
    return _parse(_read_file(fpath), str(fpath))[0]


def load_snapshot(source, *, name: str | None = None) -> tuple[Engine, dict]:
    """An :class:`~matchcore.Engine` (no journal attached) rebuilt from a snapshot given as a
    file path or bytes, and the header fields ``{"seq", "trade_seq", "stp", ...}``. Raises
    :class:`SnapshotFileError` (only that) for any damaged, truncated, foreign or inconsistent
    snapshot, and for a path that cannot be read (missing, a directory, no permission: the
    ``OSError`` is its ``__cause__``). ``name``, the file's name in error messages, must be a
    str (or None: the path, or ``"<bytes>"``); else, as for a ``source`` neither bytes nor a
    path, :class:`TypeError` before any file is read. O(orders + levels).
    """
    from matchcore._engine import Engine
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {type(name).__name__}")
    if not isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike)):
        raise TypeError(f"source must be a snapshot's bytes or a path (str or os.PathLike), "
                        f"got {type(source).__name__}")
    return _load_snapshot(source, name=name, cls=Engine)


def _load_snapshot(source, *, name=None, cls):
    # load_snapshot, the engine made of class cls (recovery through a subclass), as unpickling
    # makes one: cls.__new__ without __init__
    from matchcore._core import SnapshotError
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), name or "<bytes>"
    else:
        data = _read_file(source)
        name = name or str(source)
    head, entries = _parse(data, name)
    if head["stp"] > 3:
        raise SnapshotFileError(f"{name}: unknown STP mode {head['stp']}", name, 8)
    from matchcore._engine import _engine_of_class
    eng = _engine_of_class(cls, head["stp"])
    for sym, sym_name, capacity, limits, book in entries:
        if len(book) < 64 or int.from_bytes(book[56:60], "little") != sym or book[60] != head["stp"]:
            raise SnapshotFileError(f"{name}: book of symbol {sym} does not belong to it "
                                    f"(symbol or STP mode differs)", name)
        try:
            # as written, also limits that accept no order (see recovery's _apply_config)
            eng._add_symbol(sym, sym_name, 0, limits, False)
            eng._restore_book(sym, book)
        except SnapshotError as exc:
            raise SnapshotFileError(f"{name}: book of symbol {sym}: {exc}", name) from None
        except (ValueError, TypeError, OverflowError) as exc:
            raise SnapshotFileError(f"{name}: symbol {sym}: {exc}", name) from None
        eng._set_capacity(sym, max(0, capacity))
    try:
        eng._reindex()
    except ValueError as exc:
        raise SnapshotFileError(f"{name}: inconsistent books: {exc}", name) from None
    own = engine_state_hash(eng)
    if own != head["state_hash"]:
        # a file of an earlier version, written by a subclass overriding state_hash(), holds
        # the override's value: still that subclass's state
        if eng.state_hash() != head["state_hash"]:
            raise SnapshotFileError(f"{name}: state hash of the loaded engine differs from the "
                                    f"stored one", name)
        head["state_hash"] = own
    return eng, head
