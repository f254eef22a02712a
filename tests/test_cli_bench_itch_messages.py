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
