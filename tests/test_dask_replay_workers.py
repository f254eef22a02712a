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
