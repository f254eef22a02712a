"""The lifetime of a NatsServer the library starts: its nats-server process goes with it."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from nats_checks import need_nats


def test_nats_server_never_closed_stops_with_its_object_and_with_the_interpreter():
    # a started NatsServer dropped without close() left its nats-server running, also after
    # the interpreter had exited, on a temporary store that was deleted under it
    need_nats()
    import gc
    import signal
    from matchcore.io.nats import NatsServer

    srv = NatsServer().start()
    proc = srv.proc
    del srv
    gc.collect()
    try:
        assert proc.wait(timeout=15) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    code = "from matchcore.io.nats import NatsServer; print(NatsServer().start().proc.pid)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pid = int(p.stdout)
    try:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
