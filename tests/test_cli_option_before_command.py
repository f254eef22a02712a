"""An option given before the command (``matchcore --no-progress replay ...``) is a usage
error that names the option, not a missing command: the command was given."""
from __future__ import annotations

import pytest

from matchcore.__main__ import main


@pytest.mark.parametrize("argv, given, command", [
    (["--no-progress", "gen-itch", "OUT"], "--no-progress", "gen-itch"),
    (["--bogus", "demo"], "--bogus", "demo"),
    (["--messages", "10", "demo"], "--messages", "demo"),
])
def test_cli_option_before_the_command_usage_error_names_it_exit_2(capsys, tmp_path, argv,
                                                                     given, command):
    argv = [str(tmp_path / "out.itch") if a == "OUT" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "the following arguments are required" not in err
    assert f"unrecognized arguments: {given}" in err
    assert f"matchcore {command} {given}" in err        # where it goes instead
    assert not (tmp_path / "out.itch").exists()


def test_cli_option_alone_usage_error_names_it_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --version" in err
    assert "the following arguments are required" not in err


@pytest.mark.parametrize("argv", [[], ["-"]])
def test_cli_no_command_keeps_its_usage_errors(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert ("the following arguments are required: COMMAND" in err if not argv
            else "invalid choice: '-'" in err)


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_cli_help_before_a_command_shows_the_top_level_help(capsys, flag):
    with pytest.raises(SystemExit) as exc:
        main([flag, "replay"])
    assert exc.value.code == 0
    assert "COMMAND" in capsys.readouterr().out


def test_cli_end_of_options_before_the_command_runs_it(capsys, tmp_path):
    out = tmp_path / "d.itch"
    assert main(["--", "gen-itch", str(out), "--messages", "2000", "--symbols", "1"]) == 0
    assert out.stat().st_size > 0


@pytest.mark.parametrize("argv, said", [(["--"], "the following arguments are required: COMMAND"),
                                        (["--", "-x"], "invalid choice: '-x'")])
def test_cli_end_of_options_without_a_command_usage_error(capsys, argv, said):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert said in capsys.readouterr().err
