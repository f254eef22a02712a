"""``matchcore --help`` and every ``COMMAND --help`` print under a stdout that encodes ASCII
only (``LC_ALL=C`` where Python does not coerce the locale, ``PYTHONIOENCODING=ascii``): the
program's own text is ASCII, so the help never depends on the locale."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMMANDS = ["demo", "replay", "gen-itch", "book", "bench", "journal", "recover", "subscribe"]


def _help(*argv):
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "PYTHONUTF8": "0"}
    return subprocess.run([sys.executable, "-m", "matchcore", *argv], env=env,
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_cli_main_help_ascii_stdout_prints_usage(flag):
    # the description's "…" ended the help in a UnicodeEncodeError traceback, exit status 1
    p = _help(flag)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    out = p.stdout.decode("ascii")
    assert out.startswith("usage: matchcore")
    assert "python -m matchcore COMMAND ..." in out
    assert all(name in out for name in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_cli_command_help_ascii_stdout_prints_usage(command):
    p = _help(command, "--help")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode("ascii").startswith(f"usage: matchcore {command}")
