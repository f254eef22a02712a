"""``benchmarks/results_row.py``: a result file it cannot read is one error line, exit 1."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "results_row.py"


@pytest.mark.parametrize("given, words", [
    ("MISSING", "No such file or directory"), ("DIR", "Is a directory"),
    ("BAD", "not JSON")])
def test_results_row_unreadable_result_one_error_line_exit_1(tmp_path, given, words):
    # a missing file or a directory ended in a traceback, as did a file that is not JSON
    (tmp_path / "bad.json").write_text("{not json")
    path = {"MISSING": tmp_path / "no.json", "DIR": tmp_path,
            "BAD": tmp_path / "bad.json"}[given]
    r = subprocess.run([sys.executable, str(SCRIPT), str(path), "x"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"results_row: {path}: ") and words in r.stderr
    assert r.stderr.count("\n") == 1


def test_results_row_no_argument_usage_exit_2():
    # an IndexError traceback
    r = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("usage: ") and "results_row.py" in r.stderr


def test_results_row_says_when_the_run_is_not_the_one_its_columns_describe():
    # RESULTS.md's columns are a full-size run (1M messages, seed 1, the TSC); a --quick run's
    # row (100,000 messages, the reference model on 5,000) read exactly as a full run's
    from bench_checks import load_script

    from matchcore.cli_bench import run_bench

    rr = load_script("results_row")
    res = run_bench(["standard"], messages=2_000, seed=3, quick=True, clock="monotonic",
                    progress=False)
    line = rr.row(res, "what changed")
    assert ("| what changed (run with --quick, 2,000 messages, seed 3, monotonic clock) |"
            in line)
    assert "| (run with --quick, 2,000 messages, seed 3, monotonic clock) |" in rr.row(res, "")
    # the run the columns describe: the change as given, nothing added
    res["command"].update(quick=False, messages=1_000_000, seed=1)
    res["clock"]["clock"] = "tsc"
    assert "| what changed |" in rr.row(res, "what changed")
