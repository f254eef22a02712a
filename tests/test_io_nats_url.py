"""NATS URLs as messages print them: the user information (a password, a token) masked, the
rest as given."""
from __future__ import annotations

import matchcore.itch as itch
from matchcore.__main__ import main
from matchcore.io.nats import free_port
from nats_checks import need_nats


def test_display_url_masks_user_information_with_a_slash_in_it():
    # the mask stopped at the first '/': "nats://u:p/w@h:4222" was printed as it is, password
    # and all. NATS URLs have no path: up to the last '@' before '?' or '#' is user information
    from matchcore.io.nats import display_url

    assert display_url("nats://u:p/w@h:4222") == "nats://u:***@h:4222"
    assert display_url("nats://to/ken@h:4222") == "nats://***@h:4222"
    assert display_url("u:p/w@h:4222") == "u:***@h:4222"
    assert display_url("nats://u:pw@h:4222/x@y") == "nats://u:***@y"
    assert display_url("nats://u:pw@h:4222?a=b@c") == "nats://u:***@h:4222?a=b@c"
    assert display_url("nats://u:pw@h:4222#x@y") == "nats://u:***@h:4222#x@y"
    assert display_url("nats://h:4222?a=b@c") == "nats://h:4222?a=b@c"
    assert display_url("nats://h:4222/x") == "nats://h:4222/x"


def test_cli_replay_and_subscribe_url_password_with_a_slash_never_printed(tmp_path, capsys):
    need_nats()
    path = tmp_path / "day.itch"
    itch.generate(path, messages=200, symbols=1, seed=4)
    down = f"nats://trader:hun/ter2@127.0.0.1:{free_port()}"
    assert main(["replay", str(path), "--publish", down]) == 1
    cap = capsys.readouterr()
    assert "trader:***@127.0.0.1" in cap.err and "ter2" not in cap.out + cap.err
    assert main(["subscribe", down, "--timeout", "2"]) == 1
    cap = capsys.readouterr()
    assert "trader:***@127.0.0.1" in cap.err and "ter2" not in cap.out + cap.err
