"""Temporary files renamed into place, and the removal of those their writer died with.

A writer that makes a file appear complete or not at all writes it under a temporary name beside
its final one and renames it over. Killed in between (``kill -9``, a power loss), it leaves the
temporary file behind for good. So every such writer in matchcore names its temporary file
``<final name>.tmp<pid>.<hex>`` and holds a ``flock`` on it from its creation to its rename; a
later writer of the same kind removes the ones whose writer is gone (:func:`remove_dead`), and
never a live writer's: the pid in the name is checked first (a live process keeps its files), the
lock next (a writer in another PID namespace, whose pid means nothing here, holds it), and the
content last (a file the writer could not have written, a user's, is never touched).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import stat
from pathlib import Path


def names(path, st) -> bool:
    """Whether ``path`` (still) names the file of stat result ``st``."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def pid_gone(pid: int) -> bool:
    """True only when no process of this number exists (as this process sees them)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError, ValueError):    # another user's (EPERM), or not a pid
        return False
    return False


def temp_pattern(name: str) -> re.Pattern:
    """The names :func:`new_locked` gives the temporary files of ``name`` (group 1: the pid);
    also ``<name>.tmp<pid>`` without the random part (write_commands of earlier versions)."""
    return re.compile(re.escape(name) + r"\.tmp([0-9]+)(?:\.[0-9a-f]+)?")


def new_locked(path, *, exclusive: bool = False, mode: int = 0o666) -> tuple[int, Path]:
    """A new, empty file beside ``path`` named ``<name>.tmp<pid>.<hex>``, locked (``flock``,
    shared or ``exclusive``) from before anyone can take it for a dead writer's: (descriptor,
    its path). Created exclusively (never a planted symlink, never another writer's file) with
    ``mode`` less the umask; close-on-exec. The caller renames it into place or unlinks it."""
    path = Path(path)
    while True:
        # unique per call: two threads writing one path each write their own file
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}.{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except FileExistsError:
            continue
        try:
            # blocking: only a cleaner that cannot see this process holds it, for a moment
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if names(tmp, os.fstat(fd)):
                return fd, tmp
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        # removed between its creation and the lock (by a cleaner that could not see this
        # process): another name
        os.close(fd)


def remove_dead(directory, pattern: re.Pattern, magic: bytes, *,
                whole=None, remove: bool = True) -> list[str]:
    """Remove the entries of ``directory`` whose name matches ``pattern`` (group 1: the pid of
    the writer that made them) and whose writer is gone; returns the names removed.

    A file is removed only when all of these hold: no process of that pid exists (as this
    process sees them; this process's own are kept); it is a regular file (not followed through
    a symlink), empty or starting with ``magic`` or a part of it (``whole``, if given, is
    called with the file's descriptor and size and must return True too); and its ``flock`` can
    be taken, so no live writer holds it. Anything that cannot be opened, checked or removed is
    left alone. ``remove=False`` removes nothing and returns the names it would remove.
    O(entries in the directory)."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for entry in entries:
        m = pattern.fullmatch(entry)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or not pid_gone(pid):
            continue
        tmp = os.path.join(directory, entry)
        if _remove_if_dead(tmp, magic, whole, remove):
            removed.append(entry)
    return removed


def _remove_if_dead(tmp, magic, whole=None, remove=True) -> bool:
    try:
        fd = os.open(tmp, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not magic.startswith(os.pread(fd, len(magic), 0)):
            return False
        if whole is not None and not whole(fd, st.st_size):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # refused: a live writer's
        if names(tmp, st):
            if remove:
                os.unlink(tmp)
            return True
    except OSError:
        pass
    finally:
        os.close(fd)
    return False
