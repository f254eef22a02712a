"""The ``--json`` output of the benchmark scripts: written whole or not at all, as every other
output (a temporary file renamed over the old one when complete)."""
from __future__ import annotations

import contextlib
import resource

import pytest

from bench_checks import load_script

PAD = "x" * 300_000      # a result larger than the file size limit below


@contextlib.contextmanager
def _file_size_limit(nbytes):
    """Writes past ``nbytes`` fail with EFBIG (Python ignores SIGXFSZ), as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _fake_durability(monkeypatch):
    mod = load_script("bench_durability")
    monkeypatch.setattr(mod, "run", lambda *a, **kw: {"pad": PAD})
    monkeypatch.setattr(mod, "format_result", lambda res: "")
    return mod


def _fake_ecosystem(monkeypatch):
    mod = load_script("bench_ecosystem")
    runs = [1e6, 1e6]
    monkeypatch.setattr(mod.itch, "generate", lambda path, **kw: path.write_bytes(b"x"))
    monkeypatch.setattr(mod, "bench_metrics", lambda path, repeat: {
        f"{k}_{w}": runs for k in ("off", "on") for w in ("wall", "cpu")})
    monkeypatch.setattr(mod, "bench_engine", lambda repeat: {
        "commands": 10, "plain": runs, "recorder": runs, "sampled16": runs, "metrics": runs,
        "clock": "monotonic", "hist_counts": [1, 1], "hist_bounds_ns": [100.0]})
    monkeypatch.setattr(mod, "bench_nats", lambda path: {
        "records": {"trade": 1}, "messages": 10, "replay_s": 1.0, "total_s": 1.0, "batches": 1,
        "pad": PAD, "stats": {k: 1 for k in ("published", "records_published",
                                             "bytes_published", "dropped", "undelivered",
                                             "unconfirmed")}})
    return mod


@pytest.mark.parametrize("fake", [_fake_durability, _fake_ecosystem])
def test_bench_script_json_write_fails_old_file_kept_no_half_file(monkeypatch, capsys, tmp_path,
                                                                  fake):
    # the file was opened (emptied) and written in place: a run that failed while writing
    # (a full disk, Ctrl-C) left half a JSON file where the previous result had been
    mod = fake(monkeypatch)
    out = tmp_path / "res.json"
    out.write_text('{"previous": 1}\n')
    with _file_size_limit(100_000), pytest.raises(OSError) as exc:
        mod.main(["--json", str(out)])
    assert exc.value.errno == 27 or "File too large" in str(exc.value)
    assert out.read_text() == '{"previous": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res.json"]


@pytest.mark.parametrize("fake", [_fake_durability, _fake_ecosystem])
def test_bench_script_json_written_whole(monkeypatch, capsys, tmp_path, fake):
    import json

    mod = fake(monkeypatch)
    out = tmp_path / "res.json"
    mod.main(["--json", str(out)])
    assert json.loads(out.read_text())["machine"]["cpu"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res.json"]



def _core_refused(monkeypatch, capsys, argv):
    """benchmarks/bench_core.py's main(argv) with its work (the clock, the core figures) made
    to fail the test: a usage error (exit 2) before it; returns stderr."""
    import matchcore.bench.core as core
    import matchcore.bench.harness as harness

    def work(*args, **kwargs):
        raise AssertionError("the work started")

    monkeypatch.setattr(harness, "clock_info", work)
    monkeypatch.setattr(core, "run_core", work)
    with pytest.raises(SystemExit) as exc:
        load_script("bench_core").main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("script, first_work", [("bench_durability", "run"),
                                                ("bench_ecosystem", "itch.generate"),
                                                ("bench_core", None)])
def test_bench_script_json_named_as_directory_usage_error_before_work(monkeypatch, capsys,
                                                                      tmp_path, script,
                                                                      first_work):
    # --json out/ passed the check (a directory that does not exist yet is not "a
    # directory"): after the whole run bench_durability and bench_ecosystem failed writing
    # it (IsADirectoryError, a traceback, the figures lost) and bench_core wrote a file "out"
    from bench_checks import refused_before_work

    monkeypatch.chdir(tmp_path)
    argv = ["--json", "out/"]
    err = (_core_refused(monkeypatch, capsys, argv) if first_work is None
           else refused_before_work(monkeypatch, capsys, script, first_work, argv))
    assert "argument --json: out/: names a directory (it ends with /), not a file" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind, words", [("dangling", "no directory"),
                                         ("loop", "a symlink loop")])
def test_bench_script_json_symlink_that_cannot_be_written_usage_error_before_work(
        monkeypatch, capsys, tmp_path, kind, words):
    # a --json symlink to a file in a directory that does not exist (or a symlink loop) passed
    # the check: the script ran to its end and failed writing it (a traceback, the figures
    # lost), where `matchcore bench --json` refuses it before any work
    from bench_checks import refused_before_work

    link = tmp_path / "res.json"
    if kind == "dangling":
        link.symlink_to(tmp_path / "gone" / "res.json")
    else:
        link.symlink_to(tmp_path / "other.json")
        (tmp_path / "other.json").symlink_to(link)
    argv = ["--json", str(link)]
    err = refused_before_work(monkeypatch, capsys, "bench_durability", "run", argv)
    assert f"argument --json: {link}: {words}" in err
    assert f"argument --json: {link}: {words}" in _core_refused(monkeypatch, capsys, argv)
