"""``matchcore.bench.machine``: what a benchmark result says about its checkout."""
from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

import matchcore.bench.machine as machine


def _tracked_copy(tmp_path):
    """A copy of machine.py committed in a new repository at ``tmp_path``, loaded."""
    src = tmp_path / "machine.py"
    src.write_text(Path(machine.__file__).read_text())
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "machine.py"], check=True)
    subprocess.run(git + ["commit", "-qm", "m"], check=True)
    spec = importlib.util.spec_from_file_location("machine_copy", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    head = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    return mod, head


def test_git_commit_status_fails_dirty_unknown_not_clean(tmp_path, monkeypatch):
    # a `git status` that failed (a damaged index, a lock) printed nothing, read as a clean
    # checkout: the result claimed a commit it may not have been measured at
    mod, head = _tracked_copy(tmp_path)
    run = subprocess.run

    def failing_status(cmd, *a, **kw):
        if "status" in cmd:
            return subprocess.CompletedProcess(cmd, 128, "", "fatal: index file corrupt\n")
        return run(cmd, *a, **kw)

    monkeypatch.setattr(mod.subprocess, "run", failing_status)
    assert mod.git_commit() == {"commit": head, "dirty": None}


def test_git_commit_status_clean_and_dirty(tmp_path):
    mod, head = _tracked_copy(tmp_path)
    assert mod.git_commit() == {"commit": head, "dirty": False}
    (tmp_path / "machine.py").write_text("changed\n")
    assert mod.git_commit() == {"commit": head, "dirty": True}


@pytest.mark.parametrize("dirty, shown", [(True, "commit 0123456789 (dirty)"),
                                          (None, "commit 0123456789 (dirty: unknown)"),
                                          (False, "commit 0123456789\n")])
def test_format_report_dirty_unknown_said_not_clean(dirty, shown):
    from matchcore.bench.report import format_report

    res = {"machine": {"cpu": "c", "cores_usable": 1, "python": "3", "load_average": [0.5],
                       "git": {"commit": "0123456789abcdef", "dirty": dirty}},
           "clock": {"clock": "monotonic", "resolution_ns": 1.0, "overhead_ns": 20.0,
                     "overhead_p99_ns": 30.0}}
    assert shown in format_report(res) + "\n"


@pytest.mark.parametrize("dirty, shown", [(True, "| 0123456+ |"), (None, "| 0123456? |"),
                                          (False, "| 0123456 |")])
def test_results_row_dirty_unknown_marked(dirty, shown):
    from bench_checks import load_script

    res = {"date": "2026-01-01T00:00:00", "machine": {
        "cpu": "c", "cores_usable": 1, "load_average": [0.5],
        "git": {"commit": "0123456789abcdef", "dirty": dirty}}}
    assert shown in load_script("results_row").row(res, "x")


@pytest.mark.parametrize("load", [None, []])
def test_bench_machine_line_load_unknown_said_unknown_not_zero(load):
    # machine_info() records None when the load average cannot be read: the results row said
    # "load 0.0", a quiet machine, and the report's machine line "load ;"
    from bench_checks import load_script

    from matchcore.bench.report import format_report

    m = {"cpu": "c", "cores_usable": 1, "python": "3", "load_average": load,
         "git": {"commit": "0123456789abcdef", "dirty": False}}
    row = load_script("results_row").row({"date": "2026-01-01T00:00:00", "machine": m}, "x")
    assert "| c, 1 cores, load ? |" in row
    res = {"machine": m, "clock": {"clock": "monotonic", "resolution_ns": 1.0,
                                   "overhead_ns": 20.0, "overhead_p99_ns": 30.0}}
    assert "Python 3, load ?; commit 0123456789" in format_report(res)


def test_bench_git_commit_leaves_the_repository_index_alone(tmp_path):
    # machine_info's `git status` refreshed and rewrote the checkout's index under its lock:
    # a git command of the user's at the same moment failed on index.lock, and a bench killed
    # meanwhile (a file size limit) left the lock behind
    import os

    mod, _ = _tracked_copy(tmp_path)
    src = tmp_path / "machine.py"
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))   # stale stat info
    index = tmp_path / ".git" / "index"
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    got = mod.git_commit()
    assert got["commit"] and got["dirty"] is False
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
