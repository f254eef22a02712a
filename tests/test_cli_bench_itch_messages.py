"""``bench itch`` holds its generated day in memory: a --messages count beyond what the machine
holds is refused naming the option, the value and about the memory it would need."""
from __future__ import annotations

import re

import pytest

from cli_replay_checks import run_cli


def test_cli_bench_itch_messages_beyond_memory_named_with_the_memory_needed(capsys):
    # bench itch --messages 10**14 ended in a bare "error: out of memory"
    rc, out, err = run_cli(capsys, "bench", "itch", "--no-progress", "--messages", str(10**14))
    assert rc == 1 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"matchcore bench: error: out of memory: --messages {10**14:,}: ")
    assert re.search(r"about [0-9.]+ PiB of memory", err), err


def test_bench_itch_generator_out_of_memory_names_messages_and_memory(monkeypatch):
    # a MemoryError of the day's generation or reading said neither the count nor the size
    import matchcore.itch as itch
    from matchcore.bench import itch_workload

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(itch, "generate", no_memory)
    # a library function names its keyword (it named the command's --messages)
    with pytest.raises(MemoryError, match=r"^messages 5,000: .*about [0-9.]+ KiB of memory"):
        itch_workload.run_itch(5_000)


def test_bench_itch_out_of_memory_named_as_each_caller_names_the_count(monkeypatch, capsys):
    # run_bench and run_itch named the command's --messages; the command keeps its option
    import matchcore.itch as itch
    from matchcore.cli_bench import run_bench

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(itch, "generate", no_memory)
    with pytest.raises(MemoryError, match=r"^messages 5,000: .*about [0-9.]+ KiB of memory"):
        run_bench(["itch"], messages=5_000, progress=False)
    rc, out, err = run_cli(capsys, "bench", "itch", "--no-progress", "--messages", "5000")
    assert rc == 1 and "Traceback" not in err
    assert err.startswith("matchcore bench: error: out of memory: --messages 5,000: "), err


@pytest.mark.parametrize("messages", [2**63 - 1 - 1000, 10**12])
def test_cli_bench_generated_workload_messages_beyond_memory_named_before_any_work(
        messages, capsys, monkeypatch):
    # the largest count the order ids take failed in numpy's words ("array is too big") once
    # the machine and the clock had been measured; a count the system lends lazily but cannot
    # back was generated until the machine ran out of memory
    from matchcore import workloads
    from matchcore.bench import harness

    def work(*a, **k):
        raise AssertionError("the work started")

    monkeypatch.setattr(workloads, "generate", work)
    monkeypatch.setattr(harness, "clock_info", work)
    rc, out, err = run_cli(capsys, "bench", "standard", "--no-progress", "--messages",
                           str(messages))
    assert rc == 1 and "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"matchcore bench: error: out of memory: --messages {messages:,}: "
                          f"the generated workloads would need at least "), err
    assert re.search(r"[0-9.]+ [PT]iB of memory .*more than this machine's", err), err


def test_bench_generated_workloads_beyond_this_machines_memory_refused_naming_the_count(
        monkeypatch):
    from matchcore import workloads
    from matchcore.bench import itch_workload
    from matchcore.cli_bench import run_bench

    def work(*a, **k):
        raise AssertionError("the work started")

    monkeypatch.setattr(workloads, "generate", work)
    monkeypatch.setattr(itch_workload, "_physical_memory", lambda: 1 << 30)
    with pytest.raises(MemoryError, match=r"^messages 20,000,000: .* at least 2\.1 GiB of "
                                          r"memory .* this machine's 1\.0 GiB"):
        run_bench(["standard", "rates"], messages=20_000_000, progress=False)
    # a count that fits is not refused by it (its first work is the generation)
    with pytest.raises(AssertionError, match="the work started"):
        run_bench(["standard"], messages=1_000_000, progress=False, clock="monotonic")
