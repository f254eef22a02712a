"""Helpers shared by the command-line modules: output files that appear complete or not at all."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
from pathlib import Path

from matchcore import _tempfiles

INT64_MAX = 2**63 - 1

# The book rules' counters of a replay's summary beside its unknown references, per format, in
# the summary's words (a DBN replay counts into some of the same keys under other names): the
# one-file summaries print them all, and each file's line among several files those not 0
RULE_COUNTERS = {
    "itch": (("executions_clamped", "executions clamped"),
             ("cancels_clamped", "cancels clamped"),
             ("duplicate_refs", "duplicate references"), ("invalid_adds", "invalid adds"),
             ("invalid_replaces", "invalid replaces"),
             ("invalid_reductions", "zero-share executions/cancels"),
             ("invalid_trades", "invalid trades")),
    "dbn": (("cancels_clamped", "cancels clamped"), ("duplicate_refs", "duplicate adds"),
            ("invalid_adds", "invalid adds"), ("invalid_modifies", "invalid modifies"),
            ("modifies_as_adds", "modifies of unknown orders")),
}


def int64(text: str) -> int:
    """argparse ``type=`` for a count, size or time option held in the compiled code's int64:
    a value beyond int64 is the command line's error (argparse's usage message, exit status 2),
    never an ``OverflowError`` traceback from deep in a command. Plain ASCII decimal digits
    (a leading ``-`` left to the command's own range check): ``int()`` also took ``1_000``,
    ``+5``, padding and other scripts' digits."""
    value = integer(text)   # ValueError: argparse says "invalid int64 value: '1_000'"
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        import argparse

        raise argparse.ArgumentTypeError(f"{text} is outside the int64 range "
                                         f"[-2**63, 2**63 - 1]")
    return value


def integer(text: str) -> int:
    """argparse ``type=`` for an integer option whose range the command checks itself (a
    seed): plain ASCII decimal digits, a leading ``-`` left to that check, as :func:`int64`
    takes them (``int()`` also took ``1_000``, ``+5``, padding and other scripts' digits)."""
    if not re.fullmatch(r"-?[0-9]+", text):
        raise ValueError(text)  # argparse says "invalid integer value: '1_000'"
    return int(text)


def decimal(text: str) -> float:
    """argparse ``type=`` for an option of seconds or a rate: plain ASCII decimal syntax
    (``5``, ``0.5``, ``.5``, ``1e3``; a leading ``-`` left to the command's own range check), as
    :func:`int64` takes plain digits (``float()`` also took ``1_0``, ``+5``, padding, other
    scripts' digits, ``inf`` and ``nan``)."""
    if not re.fullmatch(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", text):
        raise ValueError(text)  # argparse says "invalid decimal value: '1_0'"
    value = float(text)
    if value in (float("inf"), float("-inf")):     # 1e400: float() made it inf
        import argparse

        raise argparse.ArgumentTypeError(f"{text} is outside the float range")
    return value


def decimal_or_inf(text: str) -> float:
    """:func:`decimal`, or exactly ``inf`` (a time without end, where the option says so)."""
    return float("inf") if text == "inf" else decimal(text)


# argparse names a type by its __name__ in "invalid <name> value: 'x'": the function's name,
# an identifier of this module, said nothing of what the option takes
decimal_or_inf.__name__ = "decimal (or inf)"


def refuse_unnumbered_messages(n: int, workloads, name: str = "--messages") -> None:
    """``ValueError`` naming ``name`` (the option, or a function's keyword) when ``n`` flow
    commands are more than one of the generated ``workloads`` (names, with their default
    parameters) can number, with the largest count they all take: the generator's own refusal
    named its keyword first_id, which the commands do not have. O(len(workloads))."""
    if not workloads:
        return
    from matchcore.workloads import max_messages

    largest = min(max_messages(w) for w in workloads)
    if n > largest:
        raise ValueError(f"{name} {n:,}: more commands than the generated workloads number "
                         f"with 63-bit order ids: at most {largest:,}")


# what a directory says where it takes no new file, but may let the user write one that is
# there (written in place then, as open() writes it)
_DIRECTORY_REFUSES = frozenset(getattr(errno, n) for n in ("EACCES", "EPERM", "EROFS",
                                                           "ENAMETOOLONG")
                               if hasattr(errno, n))


def _create_temporary(path: Path, made: list):
    """A new, empty temporary file beside ``path`` (same directory, so same file system: the
    rename cannot fail for crossing one): ``(descriptor, its path)``, or ``None`` where the
    directory refuses it (no write permission there, a read-only mount; a name too long for
    the decorations is shortened, see :func:`_part_stem`). Any other error (no room: a full
    disk, a quota, no descriptor left) is raised, the old file kept: written in place, it was
    truncated and then failed for the same lack of room.
    Created exclusively under a random name, so it never follows a planted symlink nor collides
    with another writer of the same path, and with mode 0666 less the umask, as ``open()``.

    The name goes into ``made`` before the file exists: a signal's exception (SIGTERM, Ctrl-C)
    can be raised as ``os.open`` returns, before its result reaches anyone, and the caller
    still has to find the file to remove it."""
    stem = _part_stem(path)
    for _ in range(100):
        tmp = path.with_name(f".{stem}.{os.getpid()}.{secrets.token_hex(4)}.part")
        made.append(tmp)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            made.pop()                                  # somebody else's
            continue
        except OSError as e:
            made.pop()
            if e.errno in _DIRECTORY_REFUSES:
                return None
            # no room (a full disk, a quota, no descriptor left): written in place instead,
            # the old file was truncated and the write failed the same way, the file lost.
            # Raised naming the file asked for, as open() would (a missing directory named
            # the temporary, a name the caller never gave); OSError() makes the errno's
            # subclass (FileNotFoundError, ...)
            raise OSError(e.errno, e.strerror, str(path)) from None
        # locked until renamed (see _tempfiles): a later command's cleanup of dead writers'
        # temporaries leaves it alone, also from another PID namespace, where the pid in its
        # name means nothing (it may have removed it before the lock: another name then)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _tempfiles.names(tmp, os.fstat(fd)):
            return fd, tmp
        os.close(fd)
        made.pop()
    return None


# the bytes a temporary's name adds to its stem: "." + "." pid (at most 10 digits) + "." 8 hex
# digits + ".part"
_PART_EXTRA = 1 + 11 + 9 + 5


def _part_stem(path: Path) -> str:
    """The part of ``path``'s temporary names that stands for its name: the name itself, or,
    where the name leaves no room for the rest within the directory's longest name (255
    bytes, and the name may take them all), its first bytes and a hash of the whole name (the
    temporary could not be made, and the file was written in place: an interrupted command
    left it truncated under its final name). O(len(name))."""
    name = path.name
    try:
        most = os.pathconf(path.parent if str(path.parent) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        most = 255
    raw = os.fsencode(name)
    if len(raw) + _PART_EXTRA <= most:
        return name
    digest = hashlib.blake2b(raw, digest_size=8).hexdigest()
    # (bytes cut inside a character decode to surrogates, which encode back to those bytes)
    head = os.fsdecode(raw[:max(most - _PART_EXTRA - 1 - len(digest), 0)])
    return f"{head}~{digest}"


def _part_pattern(path: Path):
    return re.compile(r"\." + re.escape(_part_stem(path)) + r"\.([0-9]+)\.[0-9a-f]{8}\.part")


def remove_stale_parts(path) -> list[str]:
    """Remove the ``.<name>.<pid>.<hex>.part`` temporaries of :func:`atomic_output` calls on
    ``path`` whose process died before the rename (``kill -9``): only when that process is gone
    and no writer holds the file's lock (see :mod:`matchcore._tempfiles`). Returns the names
    removed. O(entries in the directory)."""
    path = Path(path)
    return _tempfiles.remove_dead(path.parent if str(path.parent) else Path("."),
                                  _part_pattern(path), b"")


@contextlib.contextmanager
def atomic_output(path, mode: str = "w", **open_kw):
    """Open ``path`` for writing through a temporary file beside it, renamed over ``path`` only
    when the ``with`` block completes: a command interrupted (Ctrl-C, SIGTERM, a full disk)
    while writing leaves the old file or none, never a half-written one presented as complete.
    The file is fsynced before the rename and its directory after it, so a power loss leaves
    the old file or the whole new one, and the new one once the ``with`` block has returned.
    A file that is replaced keeps its permission bits (and, where allowed, its owner), as when
    ``open(path, "w")`` truncates it.

    ``path`` is written in place, as by ``open()``, where a rename would change what the user
    has: a path that exists and is not a plain file (``/dev/stdout``, a FIFO), a symlink (the
    link would be replaced, not its target), a file with other hard links (they would keep the
    old content), a file the user may not write (``chmod a-w``: ``open()`` refuses it with
    ``PermissionError`` and leaves it as it is, where the rename replaced it), another user's
    file in a sticky directory such as /tmp (writable, but no rename may replace it); and
    where the directory refuses a temporary file (a file the user may write in a directory
    they may not). ``mode`` is ``"w"`` or ``"wb"``: a temporary file cannot append to or
    update the old one."""
    if mode not in ("w", "wt", "wb"):
        raise ValueError(f"atomic_output writes a whole new file: mode 'w' or 'wb', not {mode!r}")
    if names_a_directory(path):
        # as open() refuses it: through Path the slash was dropped, and a file named without
        # it written in its place
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if isinstance(path, str) and not path:
        # as open() refuses it: through Path it was ".", "Is a directory: '.'"
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    path = Path(path)
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    made: list = []         # the temporary file's name, from before it exists
    renamed = False
    fd = lock = None
    try:
        created = None
        if not (path.is_symlink()
                or (st is not None and (not stat.S_ISREG(st.st_mode) or st.st_nlink > 1
                                        or not may_write(path)
                                        or _replace_refused(path, st)))):
            # a command killed before its rename left its .part beside the target for good
            remove_stale_parts(path)
            created = _create_temporary(path, made)
        if created is None:
            with open(path, mode, **open_kw) as f:
                yield f
            return
        fd, tmp = created
        lock = os.dup(fd)                   # the lock held across the close, to the rename
        if st is not None:
            with contextlib.suppress(OSError):           # a file system without modes
                os.chmod(fd, stat.S_IMODE(st.st_mode))
            if hasattr(os, "getuid") and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(OSError):       # only root may give a file away
                    os.chown(fd, st.st_uid, st.st_gid)
        f = open(fd, mode, **open_kw)
        fd = None                                       # the file object owns it now
        with f:
            yield f
            f.flush()
            # the data on disk before the name points at it: renamed first, a power loss could
            # leave an empty or short file under the final name (as write_commands does)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        renamed = True
        # the rename itself on disk: without it the old file (or none) may come back
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        if fd is not None:
            os.close(fd)
        if lock is not None:
            os.close(lock)
        if not renamed:
            for t in made:
                with contextlib.suppress(OSError):
                    os.unlink(t)


def _replace_refused(path: Path, st) -> bool:
    """Whether a rename over ``path`` (its stat result ``st``) is refused for its directory's
    sticky bit (/tmp): only the file's owner, the directory's or root may replace a file there
    (EPERM), found after the whole work, where ``open()`` writes a file its owner lets others
    write. O(1)."""
    euid = os.geteuid() if hasattr(os, "geteuid") else None
    if euid is None or euid == 0:
        return False
    try:
        dst = os.stat(path.parent if str(path.parent) else ".")
    except OSError:
        return False
    return bool(dst.st_mode & stat.S_ISVTX) and euid not in (st.st_uid, dst.st_uid)


def may_write(path) -> bool:
    """Whether this process may open the existing ``path`` for writing, as ``open()`` decides
    it (by its effective ids: root may write a file without write permission). O(1)."""
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK, effective_ids=True)
    return os.access(path, os.W_OK)


def write_refusal(path) -> str | None:
    """Why ``open()`` would refuse to write the existing ``path``, as its error says it
    (``[Errno 13] Permission denied``; ``[Errno 30] Read-only file system`` on a read-only
    mount, where root is refused too), or None where it may (:func:`may_write`). O(1)."""
    if may_write(path):
        return None
    code = errno.EACCES
    with contextlib.suppress(OSError):
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            code = errno.EROFS
    return f"[Errno {code}] {os.strerror(code)}"


def write_all(stream, data) -> None:
    """Write every byte of ``data`` to the binary ``stream``. A write to a pipe can take part
    of the bytes and return how many, without an error (its reader gone while the write
    waited for room, a signal): the rest was dropped, and the next write is the one that
    raises (BrokenPipeError). A stream whose ``write`` returns None took them all. O(len)."""
    view = memoryview(data).cast("B")
    while view:
        n = stream.write(view)
        if n is None:
            return
        if n == 0:
            # (asked again it would say the same: a loop without end)
            raise OSError(errno.EIO, f"a write took none of the {len(view):,} bytes left")
        view = view[n:]


def write_text(stream, text: str) -> None:
    """Write all of ``text`` to the text ``stream`` (stdout). A text stream hands a large write
    to its binary buffer in one call and ignores the count that comes back: the part a pipe did
    not take (see :func:`write_all`) was dropped without an error. O(len)."""
    buf = getattr(stream, "buffer", None)
    if buf is None:
        stream.write(text)
        return
    stream.flush()              # what it holds goes first
    write_all(buf, text.encode(stream.encoding or "utf-8", stream.errors or "strict"))


def same_file(a, b) -> bool:
    """Whether the paths ``a`` and ``b`` name one file (False when either does not exist)."""
    try:
        return os.path.samefile(a, b)
    except OSError:          # either does not exist (yet)
        return False


# The options that name an output, per command, and what each writes: a file ('-' is stdout),
# a directory or an image (neither can go to stdout).
OUTPUTS = {"replay": {"dump_book": "file", "out": "dir", "plot": "dir"},
           "book": {"plot": "image"},
           "bench": {"json": "file", "plot": "dir", "save_workloads": "dir"},
           "journal": {"json": "file", "csv": "file"},
           "recover": {"json": "file"}}


def is_stdout(path, *, null: bool = True) -> bool:
    """Whether ``path`` names the file this process's stdout writes to (``/dev/stdout``,
    ``/dev/fd/1``, or the file stdout is redirected to). ``null=False``: not when that file
    is the null device, where nothing written can be mixed up or lost. O(1)."""
    import sys

    try:
        st = os.stat(path)
        if not os.path.samestat(st, os.fstat(sys.stdout.fileno())):
            return False
        return null or not os.path.samestat(st, os.stat(os.devnull))
    except (OSError, ValueError, AttributeError):
        return False


def stdout_refused(command: str, args) -> str | None:
    """Why an output of ``command`` given as '-' cannot be written, else None: a directory or
    an image cannot go to stdout (it was made, or written, under the name "-"). An image is
    refused as well at a path naming the file stdout writes to (``/dev/stdout``): it was
    written into the command's text output."""
    for option, kind in OUTPUTS.get(command, {}).items():
        value = getattr(args, option, None)
        if value == "-" and kind != "file":
            what = "a directory" if kind == "dir" else "an image"
            return (f"--{option.replace('_', '-')} -: writes {what}, which cannot go to stdout "
                    f"('-' is stdout)")
        if value and kind == "image" and is_stdout(value, null=False):
            return (f"--{option.replace('_', '-')} {value}: writes an image, which cannot go to "
                    f"stdout (it names the file stdout writes to)")
    return None


def stdout_file_outputs(command: str, args) -> None:
    """Set to '-' (stdout) each file output of ``command`` given as a path that names the file
    stdout writes to (``--json /dev/stdout``, ``--json X > X``), as replay's --dump-book takes
    one (it keeps its own name, see ``cli_replay.run``). Opened again by that name, the output
    was written at the start of the file under the report, which then wrote over it (a
    recover JSON whose first lines were the report), or was truncated by it and lost (bench's
    report); in a pipe the two were mixed. As '-', the output holds stdout alone and the
    report goes to stderr. O(outputs)."""
    for option, kind in OUTPUTS.get(command, {}).items():
        if command == "replay" or kind != "file":
            continue
        value = getattr(args, option, None)
        if value and value != "-" and is_stdout(value, null=False):
            setattr(args, option, "-")


def shared_output(command: str, args) -> str | None:
    """Why two outputs of ``command`` cannot both be written, else None: two of its options
    naming one path ('-', stdout, included), of which at least one is a file (one would
    overwrite the other, or fail on the directory the other made; two directories, such as
    replay's --out and --plot, hold files of different names), or one of them at a path a
    directory output writes (see :func:`_writes`). O(outputs**2)."""
    given = [(o, getattr(args, o, None), kind == "dir")
             for o, kind in OUTPUTS.get(command, {}).items()]
    given = [(o, v, d) for o, v, d in given if v]
    for i, (a, va, da) in enumerate(given):
        for b, vb, db in given[i + 1:]:
            # an output at a path a directory output writes (also a directory inside it:
            # --out D --plot D/summary.json found a directory there, after the run)
            for (d, vd, dd), (f, vf) in (((a, va, da), (b, vb)), ((b, vb, db), (a, va))):
                if dd and "-" not in (va, vb) and _writes(command, d, vd, vf, args):
                    return (f"--{f.replace('_', '-')} {vf}: is a file --{d.replace('_', '-')} "
                            f"{vd} writes: one would overwrite the other")
            if da and db:
                continue
            same = va == vb == "-" if "-" in (va, vb) else \
                os.path.abspath(va) == os.path.abspath(vb) or same_file(va, vb)
            if same:
                names = " and ".join("--" + o.replace("_", "-") for o in (a, b))
                return f"{names} name the same path {vb}: one would overwrite the other"
    return None


# The files a directory output writes: its sinks and summary (replay --out, of one file), its
# images (--plot: named after symbols or charts) and workloads (bench --save-workloads: .npz,
# and the native .setup.mccmd and .flow.mccmd files).
_OUT_FILES = ("tob.npy", "trades.npy", "snapshots.npy", "system_events.npy", "events.npy",
              "summary.json")
# The files replay --out writes for one file, by its format (several files: summary.json, and
# each file's sinks, those of its format but summary.json, in a directory of its own).
OUT_FILES = {"itch": ("tob.npy", "trades.npy", "snapshots.npy", "system_events.npy",
                      "summary.json"),
             "dbn": ("tob.npy", "trades.npy", "snapshots.npy", "summary.json"),
             "lobster": ("trades.npy", "summary.json"),
             "native": ("events.npy", "summary.json")}


def refuse_directory_at(option: str, directory: str, names) -> None:
    """``ValueError`` naming ``option`` when a directory is already at one of the ``names``
    (relative paths) the directory output ``option`` (given as ``directory``) writes files at:
    found only when the file was written, after the whole run, its report printed and the
    files before it written. So is a symlink there to a file in a directory that does not
    exist (written through the link, it failed there too), and a file there that this process
    may not write (``chmod a-w``). O(len(names))."""
    for name in names:
        p = Path(directory) / name
        if p.is_dir():
            raise ValueError(f"{option} {directory}: {p} is a directory, where it writes a file")
        why = write_refusal(p) if p.exists() else None
        if why is not None:
            # (chmod a-w) refused by open() after the run, as a file output is before it
            raise ValueError(f"{option} {directory}: {p} cannot be written: {why}")
        if p.is_symlink() and not p.exists():
            where = Path(os.path.realpath(p)).parent
            if not where.is_dir():
                raise ValueError(f"{option} {directory}: {p}: no directory {where} (a symlink "
                                 f"to {os.readlink(p)})")


_DIR_PATTERNS = {("replay", "plot"): ("*.png",), ("bench", "plot"): ("*.png",),
                 ("bench", "save_workloads"): ("*.npz", "*.mccmd")}


def _writes(command: str, option: str, directory: str, path: str, args) -> bool:
    """Whether the directory output ``option`` (given as ``directory``) of ``command`` writes a
    file, or makes a directory, at ``path``: a file output there would be overwritten by it, or
    overwrite it. ``path`` is found in the directory by its absolute path, or through a
    symlinked directory by its parent. O(input files)."""
    import fnmatch

    d, p = os.path.abspath(directory), os.path.abspath(path)
    if p.startswith(d.rstrip(os.sep) + os.sep):
        rel = tuple(p[len(d.rstrip(os.sep)) + 1:].split(os.sep))
    elif same_file(os.path.dirname(p), d):
        rel = (os.path.basename(p),)
    else:
        return False
    if (command, option) != ("replay", "out"):
        patterns = _DIR_PATTERNS.get((command, option), ())
        return len(rel) == 1 and any(fnmatch.fnmatch(rel[0], p) for p in patterns)
    files = getattr(args, "file", None)
    if not (isinstance(files, list) and len(files) > 1 or getattr(args, "dask", None)):
        return len(rel) == 1 and rel[0] in _OUT_FILES
    # several files (or --dask): summary.json, and each file's sinks in a directory of its own
    from matchcore.cli_replay_dask import _stems

    return rel == ("summary.json",) or (rel[0] in _stems(files)
                                        and (len(rel) == 1 or len(rel) == 2
                                             and rel[1] in _OUT_FILES))


def repeated_input(command: str, args) -> str | None:
    """Why the input files of ``command`` (a list, as replay's) cannot be read, else None: one
    file given twice, also through another path or a symlink, would be replayed twice and
    counted twice in the totals. '-' (stdin) is left to the command. O(files**2)."""
    files = getattr(args, "file", None)
    if not isinstance(files, list):
        return None
    repeat = first_repeat([f for f in files if f != "-"])
    if repeat is None:
        return None
    a, b = repeat
    again = "" if a == b else f" (the same file as {a})"
    return f"{b}: given twice{again}: it would be replayed and counted twice in the totals"


def first_repeat(files) -> tuple | None:
    """The first of the paths ``files`` that names a file named before it, also through
    another path or a symlink, and that earlier path: ``(earlier, later)``, else None.
    Shared by the command line and the library (each words its own refusal). O(files**2)."""
    for i, b in enumerate(files):
        for a in files[:i]:
            # made absolute without folding "..": os.path.abspath took link/../day.itch (the
            # day.itch beside the link's target, to the kernel) for ./day.itch, another file
            if Path(a).absolute() == Path(b).absolute() or same_file(a, b):
                return a, b
    return None


def refuse_unwritable_directory(option: str, shown: str, directory) -> None:
    """``ValueError`` naming ``option`` (given as ``shown``) when no file can be made in the
    existing ``directory`` (a read-only mount, /proc, no permission), before the work that
    would write there. ``access()`` says yes to root on a read-only file system: only a real
    file proves it."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise ValueError(f"{option} {shown}: cannot write there ({e.strerror or e})") from None


def refuse_dangling_link(option: str, value: str) -> None:
    """``ValueError`` naming ``option`` for a directory output that is a symlink to nothing:
    the directory cannot be made there (``mkdir`` says "File exists"), found only when the
    output was written, after the run, and a symlink loop. So is one under such a symlink: its
    parents are made with it."""
    if os.path.islink(value) and not os.path.exists(value):
        if os.path.islink(os.path.realpath(value)):
            # resolved as far as it goes: a loop, whose next link does exist
            raise ValueError(f"{option} {value}: a symlink loop")
        raise ValueError(f"{option} {value}: a symlink to {os.readlink(value)}, which does not "
                         f"exist")
    for parent in Path(value).parents:
        if os.path.islink(parent) and not os.path.exists(parent):
            if os.path.islink(os.path.realpath(parent)):
                raise ValueError(f"{option} {value}: {parent} is a symlink loop")
            raise ValueError(f"{option} {value}: {parent} is a symlink to "
                             f"{os.readlink(parent)}, which does not exist")


def names_a_directory(path) -> bool:
    """Whether the path string ``path`` ends with a separator (``out/``): a directory's name,
    which ``open()`` refuses to write as a file and :class:`~pathlib.Path` drops."""
    return isinstance(path, str) and path.endswith((os.sep, os.altsep or os.sep))


def path_arg(path, name: str):
    """A file path as the replays take it: a bytes path (``itch.replay_file`` and
    ``replay_dbn`` take one) decoded with the file system's encoding, a str or os.PathLike one
    as it is; anything else raises TypeError naming ``name``. pathlib refused bytes ("argument
    should be a str object ..."), and another object in words that named no argument. O(1)."""
    if isinstance(path, (str, bytes, os.PathLike)):
        raw = os.fspath(path)
        return os.fsdecode(raw) if isinstance(raw, bytes) else path
    raise TypeError(f"{name}: a file is a path (str, bytes or os.PathLike), not "
                    f"{type(path).__name__} {path!r:.80}")


def refuse_unusable_name(path, where: str) -> None:
    """``ValueError`` (its message led by ``where``, e.g. ``"path: "``) for an input file named
    ``""`` or ``day.itch/``: "" is "." to :class:`~pathlib.Path` ("Is a directory: '.'", of a
    directory nobody named), and through it the separator was dropped and the file of that
    name read. O(1)."""
    if isinstance(path, str) and not path:
        raise ValueError(f"{where}an empty path")
    if names_a_directory(path):
        raise ValueError(f"{where}{path} names a directory (it ends with {os.sep}), not a file")


def refuse_directory_name(option: str, value: str) -> None:
    """``ValueError`` naming ``option`` for an output file given as ``out/``: written as the
    file ``out``, it was not where the command said it was."""
    if names_a_directory(value):
        raise ValueError(f"{option} {value}: names a directory (it ends with {os.sep}), not a "
                         f"file")


def made_by(directory, made) -> bool:
    """Whether ``directory`` is one of the directory outputs ``made`` or one of the parents
    that making them makes (``--out run/sinks`` makes ``run`` too, with its parents), so that
    a file output may be named in it before it exists. O(len(made))."""
    d = os.path.abspath(directory)
    for m in made:
        m = os.path.abspath(m)
        if m == d or m.startswith(d.rstrip(os.sep) + os.sep):
            return True
    return False


def check_output_file(option: str, value: str, inputs=(), describe=None, made=(),
                      stream: bool = False) -> None:
    """Refuse, before any work, an output file that can never be written or would replace
    what the command reads: a directory, one of ``inputs`` (written beside it and renamed over
    it, the input was gone with exit status 0; ``describe(input)`` words it, default "the
    input file ..."), a missing directory or a file as its directory (each found only after
    the work, its report printed), a new file where no file can be made (a read-only mount).
    Its directory is not made, but may be one of ``made``: the
    directories other outputs of the command make (replay's --out and --plot), checked as
    those outputs. ``"-"`` is stdout, and passes. ``stream``: the command writes ``value``
    through a descriptor it holds already (replay --dump-book /dev/stdout: stdout's), not
    opened by name, so whether its name may be opened for writing does not matter (a
    terminal another user owns, after ``su``).
    ``ValueError`` naming ``option``. O(len(inputs))."""
    if value == "-":
        # stdout: not the path "-" (a directory of that name here refused it)
        return
    path = Path(value)
    if path.is_dir():
        raise ValueError(f"{option} {value}: is a directory, not a file")
    refuse_directory_name(option, value)
    src = next((f for f in inputs if same_file(path, f)), None)
    if src is not None:
        what = describe(src) if describe is not None else f"the input file {src}"
        raise ValueError(f"{option} {value}: is {what}, which it would replace")
    if not path.parent.exists():
        if made_by(path.parent, made):
            return
        raise ValueError(f"{option} {value}: no directory {path.parent}")
    if not path.parent.is_dir():
        raise ValueError(f"{option} {value}: {path.parent} is not a directory")
    why = write_refusal(path) if path.exists() and not stream else None
    if why is not None:
        # a file its user may not write (chmod a-w): found only when it was written, after
        # the work (and replaced, renamed over, where open() refuses it)
        raise ValueError(f"{option} {value}: cannot be written: {why}")
    if not path.exists():
        # a new file where none can be made (one that exists may be written in place where
        # its directory takes no new file)
        where = path.parent
        if path.is_symlink():
            # a symlink to nothing: open() makes its target, whose directory was found
            # missing only when the file was written, after the work
            target = Path(os.path.realpath(value))
            if target.is_symlink():
                # resolved as far as it goes: a loop ("Too many levels of symbolic links")
                raise ValueError(f"{option} {value}: a symlink loop")
            where = target.parent
            if not where.is_dir():
                raise ValueError(f"{option} {value}: no directory {where} (a symlink to "
                                 f"{os.readlink(value)})")
        refuse_unwritable_directory(option, value, where)


@contextlib.contextmanager
def naming_output(option: str, path=None):
    """An ``OSError`` of writing the output ``option`` (``path``) inside the block, a full disk
    or a file size limit, re-raised naming them: "[Errno 28] No space left on device" said
    neither (its file name, if any, is the temporary's). ``path`` None: ``option`` alone names
    the output (``"stdout"``, for a command's plain summary). A broken pipe stays a
    ``BrokenPipeError``, for ``matchcore.__main__``, named so in its ``filename``."""
    try:
        yield
    except OSError as e:
        raise output_error(option, path, e)


def output_error(option: str, path, e: OSError) -> OSError:
    """The error :func:`naming_output` raises for ``e``, raised writing the output ``option``
    (``path``): ``e`` itself when it passes unchanged (a broken pipe of stdout, an error that
    names its output already), a ``BrokenPipeError`` whose ``filename`` names the output for
    another broken pipe, else one naming the output, caused by the system's error. O(1)."""
    if isinstance(e, BrokenPipeError):
        # still a BrokenPipeError, for matchcore.__main__ (141 when stdout's reader is gone,
        # else an error line): a file output's carries the output's name in its filename,
        # which that line names (it said "broken pipe" of no output, among replay's several)
        if path is None or path == "- (stdout)" or getattr(e, "output_named", False):
            return e
        err = BrokenPipeError(e.errno, e.strerror, f"{option} {path}")
        err.output_named = True
        err.__cause__ = e
        return err
    named = getattr(e, "output_named", False)
    # stdout's own writes name stdout (see matchcore.__main__); an output sent to '-'
    # names its option
    if named and not (named == "stdout" and path == "- (stdout)"):
        return e
    cause = e.__cause__ if named else e
    why = (f"[Errno {cause.errno}] {cause.strerror}" if cause.errno and cause.strerror
           else str(cause))
    name = option if path is None else f"{option} {path}"
    err = OSError(f"{name}: cannot be written: {why}")
    err.output_named = option if path is None else True
    err.__cause__ = cause
    return err


class _Writes:
    """A file's ``write`` alone: ``np.save`` then writes through it, and a short write raises
    the file's own ``OSError`` (its errno), not numpy's "N requested and M written"."""

    def __init__(self, f):
        self.write = f.write


def save_npy(path, array, option: str = "--out") -> None:
    """``np.save(path, array)`` through :func:`atomic_output`; a write error names ``option``
    and ``path``."""
    import numpy as np

    with naming_output(option, path), atomic_output(path, "wb") as f:
        np.save(_Writes(f), array)


def write_json(path, obj, option: str = "--out", **dumps_kw) -> None:
    """``obj`` as JSON to ``path`` through :func:`atomic_output`; a write error names
    ``option`` and ``path``."""
    text = json.dumps(obj, **dumps_kw)
    with naming_output(option, path), atomic_output(path) as f:
        f.write(text)


def shown_name(name: str) -> str:
    """A name taken from an input file as a text output prints it: a character that is not
    printable (a control character, an escape sequence's ESC, C1 controls of latin-1) and the
    backslash are escaped as Python's ``repr`` does inside the name, so that a damaged file's
    names cannot drive the terminal or pass for other text. JSON and CSV values stay exact.

    >>> shown_name("AAPL"), shown_name("\\x1b[2JX\\t")
    ('AAPL', '\\\\x1b[2JX\\\\t')
    """
    if name.isprintable() and "\\" not in name:
        return name
    return "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in name)


def size_text(n_bytes: int) -> str:
    """A size for a summary line: MB with one decimal, or below what that shows (50 kB), kB
    or bytes. In MB alone a small file read "0.0 MB on disk"."""
    if n_bytes >= 50_000:
        return f"{n_bytes / 1e6:,.1f} MB"
    if n_bytes >= 1_000:
        return f"{n_bytes / 1e3:,.1f} kB"
    return f"{n_bytes:,} byte{'' if n_bytes == 1 else 's'}"


def name_within(stem: str, most: int = 255, suffix: str = "") -> str:
    """``stem + suffix``, or where that is longer than ``most`` bytes (a file name's limit: an
    output named after a long input name failed after the whole replay), the stem's first
    bytes, ``~`` and a hash of the whole stem, then ``suffix``. Cut between whole characters
    only (bytes cut inside one would decode to surrogates). O(len(stem))."""
    import hashlib

    raw = os.fsencode(stem)
    tail = os.fsencode(suffix)
    if len(raw) + len(tail) <= most:
        return stem + suffix
    digest = hashlib.blake2b(raw, digest_size=8).hexdigest()
    keep = most - len(tail) - 1 - len(digest)
    head = raw[:keep].decode("utf-8", "ignore") if keep > 0 else ""
    return f"{head}~{digest}{suffix}"


def plural(n: int, noun: str) -> str:
    """``n`` and its noun, singular for 1, the number as it is: "1 fill", "1200 fills" (the
    journal's reports; ``bench.report._count`` writes thousands separators). O(1)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def rate_text(per_s: float, unit: str = "msg") -> str:
    """A rate for a summary line or a progress bar: in millions with two decimals from a tenth
    of a million a second up (an infinite one too: a replay quicker than the clock), else as
    it is. In millions alone a small replay (20 messages in a few milliseconds, thousands a
    second) read "0.00 M msg/s", as if nothing had been replayed; ``bench`` shows its rates
    by the same rule."""
    if per_s >= 1e5:
        return f"{per_s / 1e6:.2f} M {unit}/s"
    return f"{per_s:,.0f} {unit}/s" if per_s >= 10 or per_s == 0 else f"{per_s:.3g} {unit}/s"


def size_on_disk(path, consumed: int) -> str:
    """The input's size for a replay summary: ``N MB on disk`` for a regular file; for a pipe,
    FIFO or socket (whose size on disk is 0) the ``consumed`` bytes the replay read."""
    try:
        # a Path, or stdin ('-', matchcore._magic.Stdin): their own stat()
        st = path.stat() if hasattr(path, "stat") else os.stat(path)
        regular = stat.S_ISREG(st.st_mode)
    except OSError:
        regular = False
    if regular:
        return f"{size_text(st.st_size)} on disk"
    return f"{size_text(consumed)} read from a pipe"


def extra_missing(command: str, why) -> int:
    """An optional extra (or module) a command needs is missing: one line on stderr, as every
    other error of the command line (``matchcore CMD: error: ...``, naming what to install),
    and the exit status 2 the README's table gives it."""
    import sys

    print(f"matchcore {command}: error: {why}", file=sys.stderr)
    return 2


def report_dropped(command: str, dropped: int, what: str = "records or orders",
                   why: str = "sinks or books that could not grow",
                   where: str = "", incomplete: str = "the summary and the outputs are incomplete") -> bool:
    """After a replay's summary and outputs: one error line on stderr when ``dropped`` (its
    ``stats["out_of_memory"]``) is non-zero, and whether it was. The caller then exits 1, as
    the exit-status table has memory running out: the summary and the outputs look whole, and
    an exit status 0 let a script take them for a complete replay."""
    if not dropped:
        return False
    import sys

    print(f"matchcore {command}: error: out of memory: {dropped:,} {what} dropped ({why})"
          f"{where}; {incomplete}", file=sys.stderr)
    return True
