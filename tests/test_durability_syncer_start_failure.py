"""An fsync="batch" journal whose group-commit thread cannot be started (a thread limit: here
RLIMIT_NPROC of an unprivileged user) raised a bare OSError("cannot start the journal's
group-commit thread"): no errno, no directory, nothing said about why or what to do. The error
names the journal directory and the reason, and the start still leaves the directory as it
found it."""
from __future__ import annotations

import errno
import os
import tempfile

import pytest

import matchcore as mc
from durability_checks import as_nobody
# loaded before a child gives up root: the interpreter's own files may not be readable to
# the user it becomes
import matchcore.durability.recovery  # noqa: F401

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to run the child as another user")



def _as_nobody_one_task(body):
    # as nobody, with no thread to spare
    return as_nobody(body, nproc=1)


def _refusal(call):
    try:
        call()
    except OSError as exc:
        return type(exc).__name__, exc.errno, str(exc), exc.filename
    return None


@pytest.fixture
def shared_dir():
    # a directory user nobody may write (pytest's tmp_path is root's alone)
    d = tempfile.mkdtemp(dir="/tmp")
    os.chmod(d, 0o777)
    yield d
    import shutil
    shutil.rmtree(d)


def test_durability_batch_syncer_thread_not_started_error_names_directory_and_reason(
        shared_dir):
    d = os.path.join(shared_dir, "j")
    got = _as_nobody_one_task(lambda: _refusal(
        lambda: mc.Engine(journal=d, fsync="batch")))
    assert got is not None
    kind, code, message, filename = got
    assert kind == "BlockingIOError" and code == errno.EAGAIN
    assert filename == d and d in message
    assert os.strerror(errno.EAGAIN) in message and "group-commit thread" in message
    assert not os.path.exists(d)            # nothing left behind, as for any failed start


def test_durability_recovery_batch_syncer_thread_not_started_error_names_directory(shared_dir):
    d = os.path.join(shared_dir, "j")
    eng = mc.Engine(journal=d, fsync="batch")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    for root, dirs, files in os.walk(d):
        for n in dirs + files:
            os.chown(os.path.join(root, n), 65534, 65534)
    os.chown(d, 65534, 65534)
    before = sorted(os.listdir(d))
    got = _as_nobody_one_task(lambda: _refusal(lambda: mc.Engine.recover(d)))
    assert got is not None
    kind, code, message, filename = got
    assert code == errno.EAGAIN and filename == d and "group-commit thread" in message
    assert sorted(os.listdir(d)) == before
    rec = mc.Engine.recover(d)
    assert rec.recovery_report.last_seq == 2
    rec.close()
