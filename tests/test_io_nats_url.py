"""NATS URLs as messages print them: the user information (a password, a token) masked, the
rest as given."""
from __future__ import annotations

import re

import pytest

import matchcore.itch as itch
from matchcore.__main__ import main
from matchcore.io.nats import display_url, free_port
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


@pytest.mark.parametrize("url, why", [
    ("", "no host"), ("nats://", "no host"), ("nats://:4222", "no host"),
    ("nats://u:secret@127.0.0.1:abc", "port"), ("nats://127.0.0.1:99999", "port"),
    ("nats://127.0.0.1:4222,nats://127.0.0.1:4223", "port"),
    ("nats://[::1", "does not parse as a URL")])
def test_publisher_and_consume_url_the_client_cannot_parse_refused_before_connecting(
        url, why, tmp_path, capsys):
    # an empty URL, one without a host or with a port that is not a number were "cannot
    # connect to NATS at : nats: invalid hostname in connect url" (ConnectionError) from the
    # publisher, the client's own nats.errors.Error from consume(), and "cannot read" from
    # subscribe: no connection was ever tried, and neither named what was wrong with the URL
    need_nats()
    from matchcore.io.nats import NatsPublisher, consume

    want = re.escape(f"url {display_url(url)!r} is not a NATS URL") + f".*{why}"
    with pytest.raises(ValueError, match=want):
        NatsPublisher(url, connect_timeout=1)
    with pytest.raises(ValueError, match=want):
        consume(url, timeout=1)
    assert main(["subscribe", url, "--timeout", "1"]) == 1
    cap = capsys.readouterr()
    assert re.search(want, cap.err) and "cannot" not in cap.err and "secret" not in cap.err
    assert "received" not in cap.out
    path = tmp_path / "day.itch"
    itch.generate(path, messages=200, symbols=1, seed=4)
    assert main(["replay", str(path), "--publish", url]) == 1
    cap = capsys.readouterr()
    assert re.search(want, cap.err) and "cannot" not in cap.err and "secret" not in cap.err
    assert "replayed" not in cap.out


def test_url_port_refusal_does_not_quote_what_was_taken_for_the_port():
    # "nats://u:secret#x@h:4222" is read (by the client too) as host u, port "secret": the
    # refusal quoted urllib's "Port could not be cast to integer value as 'secret'"
    need_nats()
    from matchcore.io.nats import consume

    with pytest.raises(ValueError, match="its port is not a number in 0..65535") as e:
        consume("nats://u:secret@h:4222x", timeout=1)
    assert "4222x" not in str(e.value).split("NATS URL:")[1]
    with pytest.raises(ValueError, match="its port is not a number") as e:
        consume("nats://u:secret#x@h:4222", timeout=1)
    assert "could not be cast" not in str(e.value)


def test_consume_broker_that_never_answers_says_so(capsys):
    # a listener that accepts and never speaks NATS: "cannot connect to NATS at URL before
    # the timeout (1 s): TimeoutError: ", the client's error without words, where the
    # publisher says "no answer"
    import socket

    need_nats()
    from matchcore.io.nats import consume

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        url = f"nats://127.0.0.1:{s.getsockname()[1]}"
        # 3 s: the client's own connect attempt (2 s at most) times out first
        with pytest.raises(ConnectionError) as e:
            consume(url, timeout=3)
        assert str(e.value).endswith("(3 s): TimeoutError: no answer")
        assert main(["subscribe", url, "--timeout", "3"]) == 1
        assert capsys.readouterr().err.rstrip().endswith("(3 s): TimeoutError: no answer")
