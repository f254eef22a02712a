"""``workers=`` of the LocalCluster that :mod:`matchcore.cluster.dask` starts itself: at most
:data:`MAX_LOCAL_WORKERS`, refused before any cluster or file is touched; the Dask benchmark
script's ``--workers`` likewise, as a usage error."""
from __future__ import annotations

import pytest

import matchcore.cluster.dask as cdask
from bench_checks import refused_before_work
from matchcore.cluster.dask import MAX_LOCAL_WORKERS, connect, replay_files


def _no_cluster(monkeypatch):
    def started(*args, **kwargs):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(cdask, "_require_dask", started)


@pytest.mark.parametrize("workers", [257, 10**6, 2**70])
def test_dask_local_cluster_workers_beyond_limit_refused_before_starting(monkeypatch, tmp_path,
                                                                        workers):
    # workers=10**6 set out to start a million worker processes on this machine
    _no_cluster(monkeypatch)
    words = (f"workers must be at most {MAX_LOCAL_WORKERS} for the LocalCluster started "
             f"here, not {workers}")
    with pytest.raises(ValueError) as exc:
        replay_files([tmp_path / "no-such.itch"], "local", workers=workers)
    assert str(exc.value).startswith(words)
    with pytest.raises(ValueError) as exc:
        connect("local", workers=workers)
    assert str(exc.value).startswith(words)


def test_dask_local_cluster_workers_at_limit_taken():
    assert MAX_LOCAL_WORKERS == 256
    assert cdask._local_cluster_options("local", 256, None) == (256, True)


def test_bench_dask_script_workers_beyond_limit_usage_error(monkeypatch, capsys):
    # --workers 1000000 generated every file, then set out to start that many processes
    err = refused_before_work(monkeypatch, capsys, "bench_dask", "itch.generate",
                              ["--workers", "1000000"])
    assert f"argument --workers: must be at most {MAX_LOCAL_WORKERS}, got 1000000" in err


@pytest.mark.timeout(120)       # before, the replay waited for a worker for ever
def test_dask_replay_cluster_losing_its_only_worker_mid_run_fails_naming_the_files(
        monkeypatch, tmp_path):
    # a task whose only worker died (one without a nanny killed, its machine gone) goes back
    # to the scheduler and waits for another worker: with none joining, the replay hung
    import errno
    import os
    import subprocess
    import sys
    import threading
    import time

    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(cdask, "WORKER_WAIT_S", 1.0)
    fifo = tmp_path / "day.itch"
    os.mkfifo(fifo)                 # the task waits in it, on the worker, for a writer
    cluster = distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp://",
                                       host="127.0.0.1", dashboard_address="127.0.0.1:0")
    address = cluster.scheduler_address
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                               "--nthreads", "1", "--no-nanny"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    writer = []

    def kill_the_worker_once_the_task_runs():
        while worker.poll() is None:
            try:
                writer.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as e:
                if e.errno != errno.ENXIO:      # ENXIO: no reader yet
                    raise
                time.sleep(0.05)
                continue
            worker.kill()

    killer = threading.Thread(target=kill_the_worker_once_the_task_runs, daemon=True)
    try:
        client = distributed.Client(address)
        try:
            client.wait_for_workers(1, timeout=60)
            killer.start()
            with pytest.raises(TimeoutError) as exc:
                replay_files([fifo], client, fmt="itch")
            assert str(exc.value) == (
                f"the Dask cluster at {address} has had no workers for 1 s while the replays "
                f"of {fifo} waited (its workers died or left), so no results are returned; "
                f"start one with `dask worker {address}`")
        finally:
            client.close()
    finally:
        worker.kill()
        worker.wait()
        killer.join(timeout=10)
        for fd in writer:
            os.close(fd)
        cluster.close()
