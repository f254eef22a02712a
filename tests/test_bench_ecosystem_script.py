"""``benchmarks/bench_ecosystem.py``: the sizes of its generated days (--messages, --symbols,
--callgrind) and valgrind for --callgrind are checked before any work, as usage errors."""
from __future__ import annotations

import shutil

import pytest

from bench_checks import refused_before_work


@pytest.mark.parametrize("given, words", [
    (["--callgrind", "-5"], "argument --callgrind: must be 0 (skip) or at least 206"),
    (["--callgrind", "10"], "argument --callgrind: must be 0 (skip) or at least 206"),
    (["--messages", "100"], "argument --messages: 100 is too few for --symbols 50"),
    (["--symbols", "70000"], "argument --symbols: must be in 1..65535")])
def test_bench_ecosystem_script_day_sizes_usage_error_before_work(monkeypatch, capsys, given,
                                                                  words):
    # a --callgrind day too small (or negative) failed in the generator after the whole
    # metrics comparison had run; --messages below the day's fixed messages and --symbols
    # past 65535 were the generator's traceback
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    err = refused_before_work(monkeypatch, capsys, "bench_ecosystem", "itch.generate", given)
    assert words in err


def test_bench_ecosystem_script_callgrind_without_valgrind_usage_error_before_work(
        monkeypatch, capsys):
    # without valgrind, --callgrind failed with "no instruction count" after the comparison
    monkeypatch.setattr(shutil, "which", lambda name: None)
    err = refused_before_work(monkeypatch, capsys, "bench_ecosystem", "itch.generate",
                              ["--callgrind", "1000"])
    assert "argument --callgrind: needs valgrind" in err
