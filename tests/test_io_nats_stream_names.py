"""JetStream stream names (``stream=``, ``--stream``) checked before anything connects, in
the library's words, as the subject prefix is."""
from __future__ import annotations

import re

import pytest

import matchcore.itch as itch
from matchcore.__main__ import main
from nats_checks import need_nats

BAD_NAMES = ["a.b", "", "a b", "*", ">", "mc.>", "a\tb", "a/b", "a\\b", "a\x7fb", "a\x00b",
             "x" * 256, "é" * 128]


def _nowhere() -> str:
    # a broker address nobody listens at: a name refused there was refused before connecting
    from matchcore.io.nats import free_port

    return f"nats://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_nats_publisher_bad_stream_name_refused_before_connecting(name):
    # refused only once connected, by the client's own words ("nats: invalid stream name")
    # wrapped as a StreamSetupError, or by the broker's ("stream name is too long"); without a
    # broker, as a ConnectionError
    need_nats()
    from matchcore.io.nats import NatsPublisher

    with pytest.raises(ValueError, match=re.escape(f"stream name {name!r} is not a JetStream "
                                                   f"stream name")):
        NatsPublisher(_nowhere(), stream=name, connect_timeout=2)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_nats_consume_bad_stream_name_refused_before_connecting(name):
    need_nats()
    from matchcore.io.nats import consume

    with pytest.raises(ValueError, match=re.escape(f"stream name {name!r} is not a JetStream "
                                                   f"stream name")):
        consume(_nowhere(), stream=name, timeout=2)


@pytest.mark.parametrize("name", [None, b"MATCHCORE", 7])
def test_nats_stream_name_not_a_str_refused_naming_its_type(name):
    need_nats()
    from matchcore.io.nats import NatsPublisher, consume

    with pytest.raises(TypeError, match="stream name must be a str"):
        NatsPublisher(_nowhere(), stream=name, connect_timeout=2)
    with pytest.raises(TypeError, match="stream name must be a str"):
        consume(_nowhere(), stream=name, timeout=2)


def test_nats_stream_name_at_the_broker_limit_and_not_ascii_taken(tmp_path):
    # the rule refuses no name the broker takes: 255 bytes of UTF-8, letters of any script
    need_nats()
    from matchcore.io.nats import NatsPublisher, NatsServer, consume

    with NatsServer() as srv:
        for i, name in enumerate(["é" * 127 + "x", "MC-1_é~!"]):
            with NatsPublisher(srv.url, stream=name, prefix=f"p{i}") as pub:
                pass
            assert pub.stats["undelivered"] == 0
            c = consume(srv.url, stream=name, prefix=f"p{i}", timeout=20)
            assert c.symbols() == []


def test_cli_subscribe_and_replay_bad_stream_refused_exit_1_before_connecting(tmp_path, capsys):
    need_nats()
    url = _nowhere()
    assert main(["subscribe", url, "--stream", "a.b", "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert "stream name 'a.b' is not a JetStream stream name" in err
    assert "cannot connect" not in err
    path = tmp_path / "day.itch"
    itch.generate(path, messages=1000, symbols=2, seed=5)
    assert main(["replay", str(path), "--publish", url, "--stream", "a b"]) == 1
    err = capsys.readouterr().err
    assert "stream name 'a b' is not a JetStream stream name" in err
    assert "cannot connect" not in err


def test_cli_subscribe_cannot_read_stream_names_it_escaped(tmp_path, capsys):
    # a stream name JetStream takes may hold characters that are not printable (a
    # right-to-left override, a zero-width space): "cannot read STREAM" printed them as they
    # are, to turn the rest of the line around on the terminal
    need_nats()
    from matchcore._cliutil import shown_name
    from matchcore.io.nats import NatsServer

    name = "MC\u202eX\u200bY"
    with NatsServer() as srv:
        assert main(["subscribe", srv.url, "--stream", name, "--timeout", "20"]) == 1
    err = capsys.readouterr().err
    assert f"cannot read {shown_name(name)} at " in err
    assert "\u202e" not in err and "\u200b" not in err


@pytest.mark.parametrize("args", [["--stream", "a.b"], ["--stream", ""], ["--url", "http"]])
def test_cli_subscribe_bad_stream_or_url_refused_without_a_summary(args, capsys):
    # refused before anything was read, as a bad --subject-prefix or --kinds is, but followed
    # by "received 0 batches: ..." on stdout, the summary of a read that never began
    need_nats()
    url = _nowhere()
    if args[0] == "--url":
        url, args = url.replace("nats://", "http://"), []
    assert main(["subscribe", url, *args, "--timeout", "2"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "is not a JetStream stream name" in err or "is not a NATS URL" in err


@pytest.mark.parametrize("kw", [{"stream": "a.b"}, {"symbols": []}, {"kinds": ["foo"]},
                                {"prefix": "a.*"}, {"url": "http://127.0.0.1:1"}])
def test_nats_consume_refused_leaves_the_consumer_as_it_was(kw):
    # a read refused before connecting set consumer.timed_out to False first: the last read's
    # "not the stream's last state" was forgotten by a call that read nothing
    need_nats()
    from matchcore.io.nats import MarketDataConsumer, consume

    c = MarketDataConsumer()
    c.timed_out = True                  # as a read cut short by its timeout leaves it
    kw = {"url": _nowhere(), **kw}
    with pytest.raises(ValueError):
        consume(kw.pop("url"), consumer=c, timeout=2, **kw)
    assert c.timed_out is True


def test_cli_replay_publish_line_shows_stream_name_escaped(tmp_path, capsys):
    # "publishing ... (stream NAME, ...)" printed a stream name JetStream takes with
    # characters that are not printable as it is, as "cannot read NAME" did
    need_nats()
    from matchcore._cliutil import shown_name
    from matchcore.io.nats import NatsServer

    name = "MC\u202eX"
    path = tmp_path / "day.itch"
    itch.generate(path, messages=1000, symbols=2, seed=5)
    with NatsServer() as srv:
        assert main(["replay", str(path), "--publish", srv.url, "--stream", name,
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"(stream {shown_name(name)}, subjects mc.KIND.SYMBOL)" in out
    assert "\u202e" not in out


def test_nats_stream_setup_errors_show_stream_names_escaped():
    # StreamSetupError printed our stream name and the broker's names of other streams as
    # they are: a right-to-left override in one turned the rest of the message around
    need_nats()
    from matchcore._cliutil import shown_name
    from matchcore.io.nats import NatsPublisher, NatsServer, StreamSetupError, consume

    ours, theirs = "MC\u202eA", "MC\u202eB"
    with NatsServer() as srv:
        with NatsPublisher(srv.url, stream=theirs, prefix="p1"):
            pass
        with pytest.raises(StreamSetupError) as e:            # exists with other subjects
            NatsPublisher(srv.url, stream=theirs, prefix="p2")
        assert f"stream {shown_name(theirs)} at " in str(e.value)
        with pytest.raises(StreamSetupError) as e:            # another stream takes them
            NatsPublisher(srv.url, stream=ours, prefix="p1")
        assert f"stream {shown_name(ours)} at " in str(e.value)
        assert f"stream {shown_name(theirs)} (subjects" in str(e.value)
        with pytest.raises(StreamSetupError) as e:            # holds none of the subjects
            consume(srv.url, stream=theirs, prefix="p2", timeout=20)
        assert f"stream {shown_name(theirs)} at " in str(e.value)


def test_nats_cannot_connect_shows_the_url_escaped():
    # "cannot connect to NATS at URL" printed the URL as given, control characters and all
    need_nats()
    from matchcore.io.nats import NatsPublisher, consume, display_url

    url = _nowhere().replace("nats://", "nats://u\x1bx@")
    assert display_url(url) == url.replace("u\x1bx@", "***@")
    url = url.replace("u\x1bx@", "u\x1bx:pw@")
    shown = url.replace("u\x1bx:pw@", "u\\x1bx:***@")
    assert display_url(url) == shown
    with pytest.raises(ConnectionError) as e:
        NatsPublisher(url, connect_timeout=2)
    assert f"cannot connect to NATS at {shown}: " in str(e.value)
    with pytest.raises(ConnectionError) as e:
        consume(url, timeout=2)
    assert f"cannot connect to NATS at {shown} " in str(e.value)
    assert "\x1b" not in str(e.value)


def test_subject_prefix_not_printable_shown_escaped_by_replay_subscribe_and_errors(tmp_path,
                                                                                   capsys):
    # a subject prefix JetStream takes with a character that is not printable (a right-to-left
    # override) was printed as it is: in "publishing ... subjects PREFIX.KIND.SYMBOL", in
    # every subject of subscribe --print and in the stream errors naming the subjects, where
    # stream names are shown escaped
    need_nats()
    from matchcore._cliutil import shown_name
    from matchcore.io.nats import NatsPublisher, NatsServer, StreamSetupError, consume

    prefix, stream = "p\u202eq", "OWN"
    path = tmp_path / "day.itch"
    itch.generate(path, messages=1000, symbols=2, seed=5)
    with NatsServer() as srv:
        assert main(["replay", str(path), "--publish", srv.url, "--stream", stream,
                     "--subject-prefix", prefix, "--no-progress"]) == 0
        assert main(["subscribe", srv.url, "--stream", stream, "--subject-prefix", prefix,
                     "--symbols", "AAPL", "--kinds", "tob", "--print", "--timeout", "20"]) == 0
        out = capsys.readouterr().out
        assert f"subjects {shown_name(prefix)}.KIND.SYMBOL)" in out
        assert f"{shown_name(prefix)}.tob.AAPL tob locate " in out
        for make in (lambda: NatsPublisher(srv.url, stream=stream, prefix="other"),
                     lambda: NatsPublisher(srv.url, stream="NEW", prefix=prefix),
                     lambda: consume(srv.url, stream=stream, prefix="other", timeout=20)):
            with pytest.raises(StreamSetupError) as e:
                make()
            assert "\u202e" not in str(e.value)
        with NatsPublisher(srv.url, stream="MINE", prefix="m"):
            pass
        with pytest.raises(StreamSetupError) as e:
            consume(srv.url, stream="MINE", prefix=prefix, timeout=20)
        assert f"{shown_name(prefix)}.*.*" in str(e.value) and "\u202e" not in str(e.value)
    assert "\u202e" not in out
