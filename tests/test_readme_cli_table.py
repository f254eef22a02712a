"""The README's Command line table names every option of the commands it lists."""
from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

MODULES = {"gen-itch": "matchcore.cli_replay", "book": "matchcore.cli_replay",
           "replay": "matchcore.cli_replay", "bench": "matchcore.cli_bench",
           "demo": "matchcore.demo", "journal": "matchcore.cli_durability",
           "recover": "matchcore.cli_durability", "subscribe": "matchcore.cli_subscribe"}


def _table_rows(command: str) -> str:
    text = README.read_text()
    table = text[text.index("## Command line"):]
    table = table[:table.index("\n\n", table.index("| command |"))]
    rows = [ln for ln in table.splitlines() if ln.startswith(f"| `matchcore {command} ")
            or ln.startswith(f"| `matchcore {command}`")]
    assert rows, f"no row for matchcore {command}"
    return "\n".join(rows)


def _options(command: str) -> list:
    p = argparse.ArgumentParser()
    importlib.import_module(MODULES[command]).add_parser(p, command)
    return [s for a in p._actions for s in a.option_strings if s.startswith("--") and s != "--help"]


@pytest.mark.parametrize("command", sorted(MODULES))
def test_readme_command_line_table_names_every_option(command):
    rows = _table_rows(command)
    # --no-progress is said once for every command, above the table
    missing = [o for o in _options(command) if o not in rows and o != "--no-progress"]
    assert missing == []


def test_readme_command_line_table_replay_names_every_format():
    p = argparse.ArgumentParser()
    importlib.import_module("matchcore.cli_replay").add_parser(p, "replay")
    formats = next(a.choices for a in p._actions if "--format" in a.option_strings)
    row = next(r for r in _table_rows("replay").splitlines() if "--format" in r)
    assert re.search(r"--format ([a-z\\|]+)", row).group(1).split("\\|") == list(formats)


def test_readme_bench_how_to_run_names_every_section():
    from matchcore.cli_bench import SECTIONS

    text = README.read_text()
    para = text[text.index("`matchcore bench [WORKLOAD ...]"):]
    para = para[:para.index("\n\n")]
    assert [s for s in SECTIONS if f"`{s}`" not in para] == []


def test_readme_exit_status_examples_exit_as_the_table_says(tmp_path):
    # the commands the Exit status table gives as examples, run as written there
    import subprocess
    import sys

    text = README.read_text()
    table = text[text.index("### Exit status"):]
    table = table[:table.index("\n\n", table.index("| status |"))]
    memory = re.search(r"memory running out \(`([^`]+)`", table).group(1)
    wide = re.search(r"a whole number beyond int64, e\.g\. `([^`]+)`", table).group(1)
    for example, status, said in ((memory, 1, "error: out of memory: "),
                                  ("book x.itch --symbol A " + wide, 2, "outside the int64")):
        p = subprocess.run([sys.executable, "-m", "matchcore", *example.split(), "--no-progress"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert (p.returncode, said in p.stderr) == (status, True), (example, p.stderr)


def test_cli_top_level_help_plain_text_names_the_commands(capsys):
    # the description was the module docstring's first line, reST markup and all:
    # "Command line: ``matchcore SUBCOMMAND …`` (also ``python -m matchcore``)."
    from matchcore.__main__ import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    shown = capsys.readouterr().out
    assert done.value.code == 0
    assert "``" not in shown
    assert all(c in shown for c in MODULES)


def test_cli_no_command_usage_error_on_stderr_exit_2(capsys):
    # the whole help went to stdout with exit status 2: a usage error's words belong on stderr,
    # as argparse writes every other one (an unknown command, a bad option)
    from matchcore.__main__ import main

    with pytest.raises(SystemExit) as done:
        main([])
    cap = capsys.readouterr()
    assert done.value.code == 2 and cap.out == ""
    assert cap.err.startswith("usage: matchcore ")
    assert cap.err.rstrip().splitlines()[-1].startswith("matchcore: error: ")
    assert "COMMAND" in cap.err.rstrip().splitlines()[-1]


def _output_files_paragraph() -> str:
    text = README.read_text()
    start = text.index("- **Output files**")
    return " ".join(text[start:text.index("\n- **", start + 1)].split())


def test_readme_output_files_names_every_temporary_a_command_leaves(tmp_path):
    # the paragraph named only atomic_output's ".<name>.<pid>.<hex>.part", while the .mccmd
    # files of bench --save-workloads are written through "<name>.tmp<pid>.<hex>"
    import os

    from matchcore import _tempfiles
    from matchcore._cliutil import _create_temporary

    said = _output_files_paragraph()
    made = [_create_temporary(tmp_path / "w.npz", []),
            _tempfiles.new_locked(tmp_path / "w.mccmd")]
    for (fd, tmp), name in zip(made, ["w.npz", "w.mccmd"]):
        os.close(fd)
        pid = str(os.getpid())
        shape = tmp.name.replace(name, "<name>").replace(pid, "<pid>", 1)
        shape = re.sub(r"(?<=\.)[0-9a-f]{8}(?=\.part$|$)", "<hex>", shape)
        assert f"`{shape}`" in said, shape


def test_readme_output_files_says_a_symlink_loop_is_refused(tmp_path, capsys):
    from matchcore.__main__ import main

    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    day = tmp_path / "day.itch"
    main(["gen-itch", str(day), "--messages", "100", "--symbols", "1", "--no-progress"])
    capsys.readouterr()
    assert main(["replay", str(day), "--dump-book", str(tmp_path / "a"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.endswith(": a symlink loop\n"), err
    assert "a symlink loop" in _output_files_paragraph()
