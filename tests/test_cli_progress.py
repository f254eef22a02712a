"""Progress bars of ``matchcore replay`` / ``gen-itch``: messages per second on a terminal,
nothing at all when stderr is not one."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios

import pytest
from tqdm import tqdm

import matchcore.itch as itch
from matchcore.io.replay_hooks import ReplayHooks


def run_with_tty_stderr(argv, timeout=60):
    """Run ``argv`` with stderr on a pseudo-terminal; returns (exit code, what the terminal got)."""
    master, slave = pty.openpty()
    # a real terminal has a size (a fresh pty has 0 columns, where tqdm draws nothing)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    try:
        while True:
            r, _, _ = select.select([master], [], [], timeout)
            if not r:
                break
            try:
                data = os.read(master, 65536)
            except OSError:          # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return proc.wait(timeout=timeout), b"".join(chunks).decode(errors="replace")


def test_cli_gen_itch_and_replay_stderr_not_a_terminal_no_progress_output(tmp_path):
    path = tmp_path / "day.itch"
    for argv in (["gen-itch", str(path), "--messages", "50000", "--symbols", "3"],
                 ["replay", str(path)]):
        p = subprocess.run([sys.executable, "-m", "matchcore", *argv], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert p.stderr == ""                     # no bar, no control characters


def test_cli_gen_itch_on_a_terminal_shows_messages_per_second(tmp_path):
    code, shown = run_with_tty_stderr([sys.executable, "-m", "matchcore", "gen-itch",
                                       str(tmp_path / "d.itch"), "--messages", "400000",
                                       "--symbols", "3"])
    assert code == 0
    assert "msg/s" in shown


def test_cli_gen_itch_no_progress_flag_on_a_terminal_shows_nothing(tmp_path):
    code, shown = run_with_tty_stderr([sys.executable, "-m", "matchcore", "gen-itch",
                                       str(tmp_path / "d.itch"), "--messages", "50000",
                                       "--no-progress"])
    assert code == 0 and shown == ""


def test_replay_hooks_progress_bar_postfix_messages_per_second(monkeypatch):
    # The hooks' clock is set: 20,000 messages 10 ms after the start. Read from the real clock,
    # the rate was in millions only while the feed took under 0.2 s, which a loaded machine
    # did not always give ("53,648 msg/s").
    import types

    import matchcore.io.replay_hooks as replay_hooks

    ticks = iter([100.0, 100.01])
    monkeypatch.setattr(replay_hooks, "time",
                        types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    data = itch.generate(None, messages=20_000, symbols=2, seed=3)
    bar = tqdm(total=len(data), file=io.StringIO(), disable=False)
    hooks = ReplayHooks(bar=bar, out=io.StringIO())
    r = itch.Replayer()
    r.feed(data)
    hooks.on_chunk(r)
    bar.close()
    assert bar.postfix == "20,000 msgs, 2.00 M msg/s"


@pytest.mark.parametrize("kwargs, msg", [({"metrics_hold": -1}, "metrics-hold"),
                                         ({"metrics_hold": float("nan")}, "metrics-hold"),
                                         ({"metrics_port": 70000}, "0..65535")])
def test_replay_hooks_bad_options_raise_value_error(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        ReplayHooks(out=io.StringIO(), **kwargs)


def test_cli_bench_progress_only_on_a_terminal():
    # the bench's bar once drew into pipes and files (318 bytes of redraws in a log)
    argv = [sys.executable, "-m", "matchcore", "bench", "--quick", "standard",
            "--messages", "20000"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "" and "standard" in p.stdout
    code, shown = run_with_tty_stderr(argv, timeout=300)
    assert code == 0 and "step" in shown


def test_cli_bench_core_progress_bar_never_passes_its_total():
    # the bar planned 4 steps for core where it takes 6: it was drawn at 14/13 and 15/13
    import re

    argv = [sys.executable, "-m", "matchcore", "bench", "--quick", "core", "--messages", "3000"]
    code, shown = run_with_tty_stderr(argv, timeout=300)
    assert code == 0
    counts = [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+) \[", shown)]
    assert counts and {b for _, b in counts} == {15}
    assert max(a for a, _ in counts) >= 14 and all(a <= b for a, b in counts)
