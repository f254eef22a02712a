"""``demo`` holds its generated flow and the events it writes at once, as ``bench`` holds a
generated workload: a --messages count beyond the machine's memory is refused before the flow
is generated, naming the option and the memory it would need."""
from __future__ import annotations

import re

import pytest

from cli_replay_checks import run_cli


def _no_work(*args, **kwargs):
    raise AssertionError("the work started")


def test_cli_demo_messages_beyond_this_machines_memory_refused_before_the_flow(monkeypatch,
                                                                             capsys):
    # a count whose arrays the system lends lazily but cannot back was generated and pushed
    # through the book until the machine ran out of memory (bench refused it, demo did not)
    import matchcore.demo as demo
    from matchcore.bench import itch_workload

    monkeypatch.setattr(demo, "standard_mix", _no_work)
    monkeypatch.setattr(itch_workload, "_physical_memory", lambda: 1 << 30)
    rc, out, err = run_cli(capsys, "demo", "--messages", "20000000")
    assert (rc, out) == (1, "") and "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("matchcore demo: error: out of memory: --messages 20,000,000: "), err
    # 120 bytes a command: the command, its event and its latency sample
    assert re.search(r"at least 2\.2 GiB of memory \(each command, the event it writes and "
                     r"its latency are held at once\), more than this machine's 1\.0 GiB",
                     err), err


def test_cli_demo_messages_within_this_machines_memory_not_refused(monkeypatch, capsys):
    import matchcore.demo as demo
    from matchcore.bench import itch_workload

    monkeypatch.setattr(demo, "standard_mix", _no_work)
    monkeypatch.setattr(itch_workload, "_physical_memory", lambda: 1 << 30)
    with pytest.raises(AssertionError, match="the work started"):
        run_cli(capsys, "demo", "--messages", "1000000")
