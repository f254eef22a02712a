"""The benchmark scripts that generate the standard mix take no more flow commands than it can
number with 63-bit order ids, as ``matchcore bench --messages`` refuses them: a larger count is a
usage error before any work, not the generator's traceback (naming its ``first_id``) after the
clock, the per-call figures or the C library had been measured or built."""
from __future__ import annotations

import pytest

from bench_checks import load_script, refused_before_work
from matchcore.workloads import max_messages

TOO_MANY = str(max_messages("standard") + 1)


@pytest.mark.parametrize("script, option, first_work", [
    ("bench_durability", "--messages", "run"),
    ("bench_embed", "--n", "build_c_library")])
def test_bench_script_standard_mix_count_beyond_ids_usage_error_before_work(
        monkeypatch, capsys, script, option, first_work):
    err = refused_before_work(monkeypatch, capsys, script, first_work, [option, TOO_MANY])
    assert (f"argument {option}: {int(TOO_MANY):,}: more commands than the generated "
            f"workloads number with 63-bit order ids: at most "
            f"{max_messages('standard'):,}") in err


def test_bench_core_script_standard_mix_count_beyond_ids_usage_error_before_work(monkeypatch,
                                                                                 capsys):
    import matchcore.bench.core as core
    import matchcore.bench.harness as harness

    def work(*args, **kwargs):
        raise AssertionError("the work started")

    monkeypatch.setattr(harness, "clock_info", work)
    monkeypatch.setattr(core, "run_core", work)
    with pytest.raises(SystemExit) as exc:
        load_script("bench_core").main(["--messages", TOO_MANY])
    assert exc.value.code == 2
    assert (f"argument --messages: {int(TOO_MANY):,}: more commands than the generated "
            f"workloads number") in capsys.readouterr().err


def test_bench_script_standard_mix_count_at_the_limit_taken(monkeypatch, capsys):
    mod = load_script("bench_durability")
    seen = []

    def run(messages, *args, **kwargs):
        seen.append(messages)
        raise KeyboardInterrupt         # the first piece of work reached: stop there

    monkeypatch.setattr(mod, "run", run)
    with pytest.raises(KeyboardInterrupt):
        mod.main(["--messages", str(max_messages("standard"))])
    assert seen == [max_messages("standard")]
