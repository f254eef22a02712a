"""Integer options that are not counts (seeds, ports, sizes of the benchmark scripts) take plain
ASCII decimal digits, as the count options do: Python's ``int()`` also took ``1_000``, ``+5``,
padding and other scripts' digits. A bad value is a usage error (exit 2) before any work."""
from __future__ import annotations

import pytest

from bench_checks import refused_before_work
from matchcore.__main__ import main

NOT_PLAIN = ["1_000", "+5", " 5", "5 ", "\u0665"]


@pytest.mark.parametrize("value", NOT_PLAIN)
@pytest.mark.parametrize("argv, option", [
    (["demo", "--messages", "10", "--seed"], "--seed"),
    (["gen-itch", "OUT", "--messages", "100", "--seed"], "--seed"),
    (["bench", "standard", "--messages", "2000", "--quick", "--seed"], "--seed"),
    (["replay", "DAY", "--metrics-port"], "--metrics-port"),
])
def test_cli_integer_option_not_plain_digits_usage_error_exit_2(capsys, tmp_path, argv, option,
                                                                 value):
    day = tmp_path / "day.itch"
    day.write_bytes(b"")
    argv = [{"DAY": str(day), "OUT": str(tmp_path / "out.itch")}.get(a, a) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv + [value, "--no-progress"])
    out = capsys.readouterr()
    assert exc.value.code == 2 and out.out == "" and "Traceback" not in out.err
    assert f"argument {option}: invalid " in out.err and f" value: {value!r}" in out.err
    assert not (tmp_path / "out.itch").exists()


@pytest.mark.parametrize("argv, words", [
    (["demo", "--messages", "10", "--seed", "-1"], "--seed must be in [0, 2**64), got -1"),
    (["replay", "DAY", "--metrics-port", "-1"], "--metrics-port must be in 0..65535, got -1"),
])
def test_cli_integer_option_negative_refused_by_its_range(capsys, tmp_path, argv, words):
    # a leading '-' is left to the option's own range, which words the refusal
    from matchcore import itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=1000, symbols=2, seed=1)
    argv = [str(day) if a == "DAY" else a for a in argv]
    rc = main(argv + ["--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and words in err


@pytest.mark.parametrize("value", NOT_PLAIN)
@pytest.mark.parametrize("script, first_work, option", [
    ("bench_replay", "itch.generate", "--seed"),
    ("bench_many_books", "itch.generate", "--seed"),
    ("bench_ecosystem", "itch.generate", "--seed"),
    ("bench_ecosystem", "itch.generate", "--callgrind"),
    ("bench_dask", "itch.generate", "--seed"),
    ("bench_durability", "run", "--seed"),
    ("bench_durability", "run", "--batch-records"),
    ("bench_durability", "run", "--batch-us"),
    ("bench_first_batch", "one_run", "--resting"),
    ("bench_first_batch", "one_run", "--buffer"),
    ("bench_ladder", "build_cost", "--max-random"),
])
def test_bench_script_integer_option_not_plain_digits_usage_error_before_work(
        monkeypatch, capsys, script, first_work, option, value):
    err = refused_before_work(monkeypatch, capsys, script, first_work, [option, value])
    assert f"argument {option}: invalid " in err and f" value: {value!r}" in err


@pytest.mark.parametrize("script, first_work, option", [
    ("bench_replay", "itch.generate", "--seed"),
    ("bench_first_batch", "one_run", "--buffer"),
    ("bench_ladder", "build_cost", "--max-random"),
])
def test_bench_script_integer_option_negative_usage_error_before_work(monkeypatch, capsys,
                                                                      script, first_work,
                                                                      option):
    # a negative seed was numpy's traceback once the workload was generated
    err = refused_before_work(monkeypatch, capsys, script, first_work, [option, "-3"])
    assert f"argument {option}: must be >= 0, got -3" in err


@pytest.mark.parametrize("value, words", [("1_000", "invalid "), ("-3", "must be >= 0, got -3")])
def test_bench_core_script_seed_not_plain_digits_or_negative_usage_error_before_work(
        monkeypatch, capsys, value, words):
    import matchcore.bench.core as core
    from bench_checks import load_script

    def run_core(**kw):
        raise AssertionError("run_core ran: the work started")

    monkeypatch.setattr(core, "run_core", run_core)
    with pytest.raises(SystemExit) as exc:
        load_script("bench_core").main(["--seed", value])
    assert exc.value.code == 2 and f"argument --seed: {words}" in capsys.readouterr().err
