"""The lifetime of a NatsServer the library starts: its nats-server process goes with it."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time

import pytest

from nats_checks import need_nats


def _wait_listening(port: int, within: float = 10.0) -> None:
    # until the server started on ``port`` takes connections (at most ``within`` s)
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            with contextlib.closing(socket.create_connection(("127.0.0.1", port),
                                                             timeout=0.2)):
                return
        except OSError:
            time.sleep(0.05)


def test_nats_server_never_closed_stops_with_its_object_and_with_the_interpreter():
    # a started NatsServer dropped without close() left its nats-server running, also after
    # the interpreter had exited, on a temporary store that was deleted under it
    need_nats()
    import gc
    import signal
    from matchcore.io.nats import NatsServer

    srv = NatsServer().start()
    proc = srv.proc
    del srv
    gc.collect()
    try:
        assert proc.wait(timeout=15) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    code = "from matchcore.io.nats import NatsServer; print(NatsServer().start().proc.pid)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pid = int(p.stdout)
    try:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_broker_without_jetstream_named_as_such_by_publisher_and_consume(capsys):
    # a nats-server started without -js answered the stream lookup with "no responders", and
    # both sides said "ServiceUnavailableError: code=None err_code=None description='None'"
    need_nats()

    from matchcore.__main__ import main
    from matchcore.io.nats import (NatsPublisher, StreamSetupError, consume, free_port,
                                   nats_server_path)

    port = free_port()
    proc = subprocess.Popen([nats_server_path(), "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"nats://127.0.0.1:{port}"
        _wait_listening(port)
        want = r"has no JetStream \(nats-server without -js"
        with pytest.raises(StreamSetupError, match=want):
            NatsPublisher(url, connect_timeout=5)
        with pytest.raises(StreamSetupError, match=want):
            consume(url, timeout=30)
        assert main(["subscribe", url]) == 1
        assert "has no JetStream (nats-server without -js" in capsys.readouterr().err
    finally:
        proc.terminate()
        proc.wait(10)


def test_nats_server_started_again_after_close_leaves_no_store_behind(tmp_path):
    # close() removed the temporary store, and a start() after it ran nats-server on that
    # path, which it made again: a directory no close() removed any more
    need_nats()
    from matchcore.io.nats import NatsServer

    srv = NatsServer()
    first = srv.start().store_dir
    srv.close()
    assert not os.path.exists(first)
    with srv.start() as again:
        assert os.path.isdir(again.store_dir)
        second = again.store_dir
    assert not os.path.exists(first) and not os.path.exists(second)
    # a store of the caller's is kept, and used again
    own = NatsServer(store_dir=tmp_path / "store")
    own.start()
    own.close()
    own.start()
    own.close()
    assert os.listdir(tmp_path / "store") == ["jetstream"]


def test_nats_server_exiting_at_start_says_why(tmp_path):
    # a store the server cannot use (a file): "nats-server exited with 1 (port N)", the
    # server's own reason on a stderr nobody read
    need_nats()
    from matchcore.io.nats import NatsServer

    store = tmp_path / "a-file"
    store.write_text("not a directory\n")
    srv = NatsServer(store_dir=store)
    with pytest.raises(RuntimeError, match=r"^nats-server exited with 1 \(port \d+\): .*"
                                           r"JetStream.*not a directory"):
        srv.start()
    srv.close()



@contextlib.contextmanager
def _server_with_users(tmp_path, users):
    """A nats-server -js whose users are ``users`` (the text of its users list); yields its
    port."""

    from matchcore.io.nats import free_port, nats_server_path

    port = free_port()
    conf = tmp_path / "users.conf"
    conf.write_text(f'listen: 127.0.0.1:{port}\njetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
                    f'authorization {{ users = [\n{users}\n]}}\n')
    proc = subprocess.Popen([nats_server_path(), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_broker_refusing_the_user_jetstream_named_as_such_by_publisher_and_consume(tmp_path):
    # a user the broker denies the JetStream API: its refusal ("permissions violation for
    # publish to $JS.API...") went to the client's error callback, and both sides said only
    # "TimeoutError: nats: timeout", as of a broker that never answered
    need_nats()
    from matchcore.io.nats import NatsPublisher, StreamSetupError, consume

    users = ('{ user: "ro", password: "p", permissions: { publish: { deny: ["$JS.API.>"] } } '
             '}')
    with _server_with_users(tmp_path, users) as port:
        url = f"nats://ro:p@127.0.0.1:{port}"
        want = (r"stream MATCHCORE at nats://ro:\*\*\*@127\.0\.0\.1:\d+: the broker refused "
                r"this connection's user a JetStream request.*permissions violation for "
                r"publish to .*\$js\.api\.stream\.info\.matchcore")
        with pytest.raises(StreamSetupError, match=want):
            NatsPublisher(url, connect_timeout=1)
        with pytest.raises(StreamSetupError, match=want):
            consume(url, timeout=30)


def test_broker_refusing_the_user_fetches_read_ends_naming_it(tmp_path):
    # a user the broker lets look the stream up and make a consumer, but not fetch from it:
    # every fetch went unanswered, the read took that for a stream still being delivered and
    # went on for ever (to its timeout, which said the read was cut short)
    need_nats()
    import numpy as np

    from matchcore.io.nats import (KIND_TOB, WIRE_TOB, NatsPublisher, StreamSetupError,
                                   consume, encode_batch)

    users = ('{ user: "nf", password: "p", permissions: { publish: { deny: '
             '["$JS.API.CONSUMER.MSG.NEXT.>"] } } }\n{ user: "admin", password: "p" }')
    with _server_with_users(tmp_path, users) as port:
        with NatsPublisher(f"nats://admin:p@127.0.0.1:{port}") as pub:
            assert pub.publish("mc.tob.X", encode_batch(KIND_TOB, 1, 0, np.zeros(1, WIRE_TOB)))
        assert pub.stats["published"] == 1
        with pytest.raises(StreamSetupError, match=r"permissions violation for publish to "
                                                   r"\S*\$js\.api\.consumer\.msg\.next"):
            consume(f"nats://nf:p@127.0.0.1:{port}", timeout=10)


@pytest.mark.timeout(60)
def test_consume_start_refused_ends_within_the_read_timeout_not_the_clients(tmp_path,
                                                                            monkeypatch):
    # the stream's lookup waited out the client's own JetStream timeout (5 s by default)
    # whatever the read's timeout: consume(timeout=1) of a user the broker refuses the
    # JetStream API, which says so at once, took 5 s to say it; here the client's own
    # timeout is made long, as a broker slow to answer makes the wait
    need_nats()
    import nats.aio.client

    from matchcore.io.nats import StreamSetupError, consume

    make = nats.aio.client.Client.jetstream
    monkeypatch.setattr(nats.aio.client.Client, "jetstream",
                        lambda self, **opts: make(self, **{"timeout": 3600, **opts}))
    users = ('{ user: "ro", password: "p", permissions: { publish: { deny: ["$JS.API.>"] } } '
             '}')
    with _server_with_users(tmp_path, users) as port:
        with pytest.raises(StreamSetupError, match=r"refused this connection's user a "
                                                   r"JetStream request"):
            consume(f"nats://ro:p@127.0.0.1:{port}", timeout=1)


@pytest.mark.parametrize("timeout", ["5", None, float("nan"), -1, True,
                                     pytest.param(10**400, id="int-1e400")])
def test_nats_server_start_bad_timeout_refused_before_any_process(timeout):
    # start(timeout="5") launched nats-server and then failed in the arithmetic of the wait
    # (TypeError naming neither the argument nor its rule) with the server left running, so
    # that the next start() took it as started; nan or -1 launched it and stopped it again
    # at once with "did not listen on port ... within nan s"
    need_nats()
    from matchcore.io.nats import NatsServer

    srv = NatsServer()
    try:
        with pytest.raises(ValueError, match="timeout must be a number of seconds > 0, got "):
            srv.start(timeout=timeout)
        assert srv.proc is None
    finally:
        srv.close()
