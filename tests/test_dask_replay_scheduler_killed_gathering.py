"""A scheduler killed while a finished replay's results are being fetched from it: the
connection carrying them closes under the client, and ``fut.result()`` raised Dask's own
``CommClosedError`` ("in <TCP (closed) ConnectionPool.gather local=... remote=...>: Stream is
closed"), which named neither the file nor the scheduler and went through the command as its
error line. It is the ``ConnectionError`` naming the file that a scheduler lost before the
replay finished gives. Real processes: a ``dask scheduler`` and a ``dask worker``, the
scheduler stopped once the task is done and killed while the client waits for the result."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

import matchcore.itch as itch  # noqa: E402
from matchcore.cluster.dask import replay_files  # noqa: E402

BIN = Path(sys.executable).parent


@pytest.fixture
def cluster(tmp_path):
    if not (BIN / "dask").exists():
        pytest.skip("the dask command is not installed beside this interpreter")
    # port 0 and the scheduler file: the scheduler writes its address there once it listens,
    # on the port it bound. A port picked here, freed and given to it could be taken by
    # another process meanwhile, whose answer to a connection passed for the scheduler's.
    info = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--no-dashboard", "--scheduler-file",
                                  str(info)], **quiet)
    deadline = time.monotonic() + 60
    while True:                                        # the scheduler listening
        try:
            address = json.loads(info.read_text())["address"]
            break
        except (OSError, ValueError, KeyError):        # not yet written, or half written
            if time.monotonic() > deadline or scheduler.poll() is not None:
                scheduler.kill()
                pytest.fail("the dask scheduler did not start")
            time.sleep(0.1)
    worker = subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1",
                               "--no-dashboard", "--no-nanny"], **quiet)
    try:
        yield address, scheduler
    finally:
        for p in (worker, scheduler):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
            p.wait(timeout=30)


def test_dask_replay_scheduler_killed_while_results_are_fetched_connection_error_naming_file(
        cluster, tmp_path, monkeypatch):
    address, scheduler = cluster
    path = itch.generate(tmp_path / "day.itch", messages=2000, symbols=2, seed=3)
    result = distributed.Future.result

    def fetched_as_the_scheduler_dies(self, timeout=None):
        distributed.wait([self])                       # the replay has run
        os.kill(scheduler.pid, signal.SIGSTOP)         # it takes the gather, answers nothing
        threading.Timer(0.5, os.kill, (scheduler.pid, signal.SIGKILL)).start()
        return result(self, timeout)

    monkeypatch.setattr(distributed.Future, "result", fetched_as_the_scheduler_dies)
    t0 = time.monotonic()
    with pytest.raises(ConnectionError) as exc:
        replay_files([path], address)
    assert re.fullmatch(rf"{re.escape(str(path))}: the connection to the Dask scheduler was "
                        rf"lost while its replay's results were fetched, so no results are "
                        rf"returned \(.+\)", str(exc.value)), exc.value
    assert time.monotonic() - t0 < 120
