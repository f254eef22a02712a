"""Command-line options go by their full names: an abbreviation (argparse's default prefix
matching) is an unrecognized argument, in every command."""
from __future__ import annotations

import pytest

from matchcore.__main__ import main


@pytest.mark.parametrize("argv, given", [(["demo", "--no-prog"], "--no-prog"),
                                          (["demo", "--mess", "10"], "--mess"),
                                          (["bench", "standard", "--quic"], "--quic"),
                                          (["gen-itch", "OUT", "--sym", "2"], "--sym")])
def test_cli_abbreviated_option_usage_error_exit_2(capsys, tmp_path, argv, given):
    # argparse took a prefix of an option's name for the option (--no-prog for --no-progress)
    argv = [str(tmp_path / "out.itch") if a == "OUT" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert f"unrecognized arguments: {given}" in capsys.readouterr().err
    assert not (tmp_path / "out.itch").exists()
