"""The replay's integration options (--metrics-port, --publish) on an input they do not work
with: refused before the replay, naming the options given and the input's format."""
from __future__ import annotations

import pytest

from cli_replay_checks import run_cli


@pytest.mark.parametrize("options, named", [
    (["--metrics-port", "0"], "--metrics-port works"),
    (["--publish", "nats://127.0.0.1:1"], "--publish works"),
    (["--metrics-port", "0", "--publish", "nats://127.0.0.1:1"],
     "--publish and --metrics-port work")])
def test_cli_replay_lobster_integration_options_refused_naming_those_given_and_the_format(
        capsys, tmp_path, options, named):
    # "--metrics-port and --publish work with ITCH replays" named an option not given, and not
    # the format that the file was read as
    csv = tmp_path / "AAPL_message_1.csv"
    csv.write_text("34200.0,1,1,100,5000000,1\n")
    rc, out, err = run_cli(capsys, "replay", str(csv), "--no-progress", *options)
    assert rc == 1 and out == ""
    assert err == (f"matchcore replay: error: {named} with ITCH replays, not with a LOBSTER "
                   f"file\n")
