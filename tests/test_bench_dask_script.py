"""benchmarks/bench_dask.py's printed sizes (its DBN part run small, without a cluster)."""
from __future__ import annotations

import argparse

import pytest

from bench_checks import load_script

pytest.importorskip("zstandard")
pytest.importorskip("databento_dbn")


def test_bench_dask_small_dbn_file_sizes_read_in_kb_not_0_0_mb(tmp_path, capsys):
    # a small run's files read "0.1 MB plain, 0.0 MB zstd", the second as if it held nothing
    mod = load_script("bench_dask")
    args = argparse.Namespace(dbn_records=300, symbols=2, seed=1, repeat=1)
    mod._bench_dbn(tmp_path, args)
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "DBN MBO file" in ln)
    assert " 0.0 MB" not in line and " KB zstd" in line, line
