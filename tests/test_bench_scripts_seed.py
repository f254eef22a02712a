"""The benchmark scripts that generate ITCH days take a ``--seed`` in the generator's range,
[0, 2**64), as ``matchcore bench --seed`` does: one beyond it is a usage error before any
work, not the generator's traceback."""
from __future__ import annotations

import pytest

from bench_checks import refused_before_work


@pytest.mark.parametrize("script", ["bench_replay", "bench_many_books", "bench_ecosystem",
                                    "bench_dask"])
def test_bench_script_seed_beyond_64_bits_usage_error_before_work(monkeypatch, capsys, script):
    # --seed 18446744073709551616 ended in the ITCH generator's ValueError traceback
    err = refused_before_work(monkeypatch, capsys, script, "itch.generate",
                              ["--seed", str(2**64)])
    assert f"argument --seed: must be < 2**64, got {2**64}" in err


@pytest.mark.parametrize("script, extra", [("bench_replay", []), ("bench_dask", ["--files", "1"])])
def test_bench_script_seed_at_64_bit_limit_taken(monkeypatch, capsys, script, extra):
    from bench_checks import load_script

    mod = load_script(script)
    seen = []

    def generate(*args, **kwargs):
        seen.append(kwargs["seed"])
        raise KeyboardInterrupt     # the first piece of work reached: stop there

    monkeypatch.setattr(mod.itch, "generate", generate)
    with pytest.raises(KeyboardInterrupt):
        mod.main(["--seed", str(2**64 - 1), "--messages", "1000", "--symbols", "2", *extra])
    assert seen == [2**64 - 1]


def test_bench_dask_script_seeds_of_its_files_past_64_bits_usage_error(monkeypatch, capsys):
    # file i takes seed S + i: --seed 2**64 - 1 with 2 files failed on the second file, in the
    # generator's traceback, after the first had been generated
    err = refused_before_work(monkeypatch, capsys, "bench_dask", "itch.generate",
                              ["--seed", str(2**64 - 1), "--files", "2"])
    assert (f"argument --seed: {2**64 - 1} with --files 2: the files take seeds "
            f"{2**64 - 1}..{2**64}, past 2**64 - 1") in err
