"""A scheduler address that names no port a scheduler can listen on (``tcp://HOST:x``,
``:-1``, ``:70000``, none at all) is refused as such, naming the address, before any connection
is tried: it was Python's "invalid literal for int()", a 20 s wait ending in "Timed out", or a
connection to another port (70000 taken modulo 65536). So is, at once, a host name that has no
address."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("distributed")

from matchcore.__main__ import main  # noqa: E402
from matchcore.cluster.dask import connect, replay_files  # noqa: E402


def _no_connection(monkeypatch):
    import distributed

    def connecting(*args, **kwargs):
        raise AssertionError("a connection was tried")

    monkeypatch.setattr(distributed.Client, "__init__", connecting)
    monkeypatch.setattr("socket.create_connection", connecting)


@pytest.mark.parametrize("address, why", [
    ("tcp://127.0.0.1:notaport", "port 'notaport' is not a number in 1..65535"),
    ("tcp://127.0.0.1:-1", "port '-1' is not a number in 1..65535"),
    ("tcp://127.0.0.1:70000", "port '70000' is not a number in 1..65535"),
    ("tcp://127.0.0.1:0", "port '0' is not a number in 1..65535"),
    ("tls://127.0.0.1:x", "port 'x' is not a number in 1..65535"),
    ("foo", "no port (tcp://HOST:PORT)"),
    ("tcp://127.0.0.1", "no port (tcp://HOST:PORT)"),
    # Dask's ws:// and wss:// transports take HOST:PORT as tcp:// does, but only tcp and tls
    # were checked: ws://HOST:x waited 20 s to say "Timed out trying to connect"
    ("ws://127.0.0.1:notaport", "port 'notaport' is not a number in 1..65535"),
    ("wss://127.0.0.1:70000", "port '70000' is not a number in 1..65535"),
    ("ws://127.0.0.1", "no port (ws://HOST:PORT)")])
def test_dask_connect_scheduler_address_without_usable_port_refused_naming_it(monkeypatch,
                                                                             address, why):
    _no_connection(monkeypatch)
    with pytest.raises(ValueError) as exc:
        connect(address)
    assert str(exc.value) == f"scheduler {address!r} is not a Dask scheduler address: {why}"


def test_cli_replay_dask_address_without_usable_port_refused_exit_1(monkeypatch, capsys,
                                                                    tmp_path):
    _no_connection(monkeypatch)
    import matchcore.itch as itch

    day = itch.generate(tmp_path / "d.itch", messages=2000, symbols=2)
    rc = main(["replay", str(day), "--dask", "tcp://127.0.0.1:notaport", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1 and "replayed" not in out
    assert ("matchcore replay: error: scheduler 'tcp://127.0.0.1:notaport' is not a Dask "
            "scheduler address: port 'notaport' is not a number in 1..65535") in err
    with pytest.raises(ValueError, match="port '-1' is not a number"):
        replay_files([day], "tcp://127.0.0.1:-1")


def test_dask_connect_scheduler_host_without_address_fails_at_once_naming_it(monkeypatch):
    # a host name that resolves to nothing (a typo) was left to the client: it retried for
    # 20 s and said "Timed out trying to connect", as for a scheduler that does not answer
    import socket

    import distributed

    def unknown(address, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def connecting(*args, **kwargs):
        raise AssertionError("the client was left to time out")

    monkeypatch.setattr(socket, "create_connection", unknown)
    monkeypatch.setattr(distributed.Client, "__init__", connecting)
    with pytest.raises(OSError) as exc:
        connect("tcp://no-such-host.invalid:8786")
    assert str(exc.value) == ("cannot connect to the Dask scheduler at "
                              "tcp://no-such-host.invalid:8786: no address for the host "
                              "'no-such-host.invalid' (Name or service not known)")


def test_dask_connect_scheduler_host_lookup_failing_for_now_left_to_the_client(monkeypatch):
    # a temporary failure of the name service may pass: the client's own retries stay
    import socket

    import distributed

    def again(address, *args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    def connecting(*args, **kwargs):
        raise RuntimeError("left to the client")

    monkeypatch.setattr(socket, "create_connection", again)
    monkeypatch.setattr(distributed.Client, "__init__", connecting)
    with pytest.raises(RuntimeError, match="left to the client"):
        connect("tcp://slow-name.invalid:8786")


def test_dask_replay_closed_client_given_refused_naming_it(tmp_path):
    # a Client closed before the call failed in Tornado's words, "IOLoop is closed" (one
    # that started its own cluster, distributed.Client() as is usual), or "Can't send
    # update-graph message" after waiting for its workers
    import distributed

    import matchcore.itch as itch

    path = itch.generate(tmp_path / "day.itch", messages=1000, symbols=2, seed=1)
    own = distributed.Client(n_workers=1, threads_per_worker=1, processes=False,
                             dashboard_address="127.0.0.1:0")
    own.close()
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address="127.0.0.1:0")
    try:
        given = distributed.Client(cluster)
        given.close()
        for client in (own, given):
            with pytest.raises(ValueError) as exc:
                replay_files([path], client)
            assert str(exc.value) == ("scheduler: the distributed.Client given is closed: "
                                      "give an open one, or the scheduler's address")
    finally:
        cluster.close()


def test_dask_connect_websocket_address_refused_fails_at_once_naming_the_refusal():
    from matchcore.io.nats import free_port

    addr = f"ws://127.0.0.1:{free_port()}"
    with pytest.raises(OSError, match=rf"cannot connect to the Dask scheduler at {addr}: "
                                      rf"connection refused"):
        connect(addr)


@pytest.mark.timeout(120)       # before, the client's handshake waited for an answer for ever
def test_dask_connect_scheduler_taking_the_connection_never_answering_fails_naming_it(
        monkeypatch, tmp_path, capsys):
    # a scheduler stopped or hung (SIGSTOP, a paused VM) or a port forward whose far end is
    # gone: the kernel takes the connection and nothing answers. The client's timeout bounds
    # only the connection, so the replay waited for ever before its first task.
    import socket

    import matchcore.cluster.dask as cluster_dask
    import matchcore.itch as itch

    monkeypatch.setattr(cluster_dask, "CONNECT_WAIT_S", 1.0, raising=False)
    day = itch.generate(tmp_path / "d.itch", messages=2000, symbols=2)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)               # connections taken by the kernel, never accepted
        addr = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(TimeoutError) as exc:
            connect(addr)
        assert str(exc.value) == (f"cannot connect to the Dask scheduler at {addr}: no answer "
                                  f"within 1 s (a scheduler stopped or hung, a network "
                                  f"dropping the connection, or another service on that port)")
        with pytest.raises(TimeoutError, match="no answer within 1 s"):
            replay_files([day], addr)
        rc = main(["replay", str(day), "--dask", addr, "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1 and "replayed" not in out
    assert err == f"matchcore replay: error: {exc.value}\n"


@pytest.mark.timeout(120)
def test_dask_replay_client_whose_scheduler_went_away_raises_connection_error_naming_it(
        tmp_path):
    # a client of the caller's whose scheduler was gone (killed, restarted) before the call:
    # after Dask's reconnection attempts the replay raised Dask's internals, "ConnectionPool
    # is closed" (RuntimeError) or "ConnectionPool closing." (CommClosedError)
    import time

    import distributed

    import matchcore.itch as itch

    path = itch.generate(tmp_path / "day.itch", messages=1000, symbols=2, seed=1)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address="127.0.0.1:0")
    address = cluster.scheduler_address
    client = distributed.Client(address, timeout="2s")     # reconnection attempts: 2 s
    try:
        cluster.close()
        while client.status == "running":   # until the client sees its scheduler gone
            time.sleep(0.05)
        with pytest.raises(ConnectionError) as exc:
            replay_files([path], client)
        assert re.fullmatch(rf"the connection to the Dask scheduler at {re.escape(address)} is "
                            rf"lost \(the client is (connecting|closing|closed)\): no task was "
                            rf"sent; connect a new client, or give the scheduler's address",
                            str(exc.value)), exc.value
    finally:
        client.close()


@pytest.mark.parametrize("address, scheme", [("http://127.0.0.1:8786", "http"),
                                             ("htp://sched:8786", "htp")])
def test_dask_connect_scheduler_address_of_unknown_scheme_refused_naming_it(monkeypatch,
                                                                           address, scheme):
    # the client said "unknown address scheme 'http' (known schemes: [...])": neither the
    # address nor, on the command line, the option it came from
    _no_connection(monkeypatch)
    with pytest.raises(ValueError) as exc:
        connect(address)
    assert str(exc.value).startswith(f"scheduler {address!r} is not a Dask scheduler address: "
                                     f"unknown scheme {scheme!r} (Dask's: ")
    assert "tcp" in str(exc.value)


def test_cli_replay_dask_address_of_unknown_scheme_refused_naming_it_exit_1(monkeypatch, capsys,
                                                                            tmp_path):
    _no_connection(monkeypatch)
    import matchcore.itch as itch

    day = itch.generate(tmp_path / "d.itch", messages=2000, symbols=2)
    rc = main(["replay", str(day), "--dask", "http://127.0.0.1:8786", "--no-progress",
               "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc == 1 and "replayed" not in out
    assert ("matchcore replay: error: scheduler 'http://127.0.0.1:8786' is not a Dask "
            "scheduler address: unknown scheme 'http'") in err
    assert not (tmp_path / "out").exists()


class _Unusable:
    """A transport registered with Dask that cannot make a connector here, as ucx:// of
    recent distributed versions (a stub whose connector class is abstract)."""

    def get_connector(self):
        raise TypeError("Can't instantiate abstract class Connector with abstract method connect")


def test_dask_connect_scheduler_address_of_unusable_transport_refused_naming_it(monkeypatch):
    from distributed.comm import registry

    _no_connection(monkeypatch)
    monkeypatch.setitem(registry.backends, "broken", _Unusable())
    with pytest.raises(ValueError) as exc:
        connect("broken://127.0.0.1:8786")
    assert str(exc.value) == (
        "scheduler 'broken://127.0.0.1:8786' is not a Dask scheduler address: Dask's 'broken' "
        "transport cannot connect from here (TypeError: Can't instantiate abstract class "
        "Connector with abstract method connect)")


@pytest.mark.parametrize("address", ["inproc://x", "inproc://"])
def test_dask_connect_malformed_inproc_address_refused_naming_it(monkeypatch, address):
    # the client said "not enough values to unpack (expected 3, got 1)"
    _no_connection(monkeypatch)
    with pytest.raises(ValueError) as exc:
        connect(address)
    assert str(exc.value) == (f"scheduler {address!r} is not a Dask scheduler address: an "
                              f"inproc address is inproc://HOST/PID/N, a scheduler in this "
                              f"process")


def test_cli_replay_dask_ucx_without_its_transport_one_line_error_no_traceback(capsys, tmp_path):
    from distributed.comm import registry

    try:
        registry.get_backend("ucx").get_connector()
    except Exception:
        pass
    else:
        pytest.skip("Dask's ucx transport works here")
    import matchcore.itch as itch

    day = itch.generate(tmp_path / "d.itch", messages=2000, symbols=2)
    rc = main(["replay", str(day), "--dask", "ucx://127.0.0.1:8786", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1 and "replayed" not in out
    assert err.startswith("matchcore replay: error: scheduler 'ucx://127.0.0.1:8786' is not a "
                          "Dask scheduler address: Dask's 'ucx' transport cannot connect from "
                          "here") and err.count("\n") == 1


class _OtherService:
    """A TCP service that is no Dask scheduler on a loopback port: each connection gets
    ``banner`` (bytes a server sends first, as NATS and SSH do) and is then held open, or
    closed at once with ``close=True``."""

    def __init__(self, banner: bytes, close: bool = False):
        import socket
        import threading

        self.banner, self.close_at_once = banner, close
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return                          # closed by close()
            self.conns.append(conn)
            try:
                conn.sendall(self.banner)
                if self.close_at_once:
                    conn.close()
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


_SERVICES = {
    # a NATS broker (`matchcore replay --publish`'s, port 4222) speaks first: Dask read its
    # "INFO {" as a frame length and raised MemoryError ("Unable to allocate 7.20 EiB"), which
    # the command reported as "error: out of memory"
    "nats": (b'INFO {"server_id":"NDX","version":"2.10.0","proto":1,"max_payload":1048576}'
             b"\r\n", False),
    "ssh": (b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n", False),
    # a frame count of 2 and then bytes that are no frame lengths: struct.error
    # ("unpack_from requires a buffer of at least 8 bytes")
    "garbage": (b"\x02\x00\x00\x00\x00\x00\x00\x00" + b"garbage!" * 3, False),
    # taken and closed: CommClosedError ("Stream is closed"), naming neither
    "closing": (b"", True),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("service", sorted(_SERVICES))
def test_dask_connect_other_service_on_the_port_raises_connection_error_naming_it(
        service, tmp_path, capsys):
    import matchcore.itch as itch

    banner, close = _SERVICES[service]
    other = _OtherService(banner, close)
    addr = other.address
    try:
        with pytest.raises(ConnectionError) as exc:
            connect(addr)
        msg = str(exc.value)
        assert msg.startswith(f"cannot connect to the Dask scheduler at {addr}: what answers on "
                              f"that port is not a Dask scheduler"), msg
        assert "another service" in msg and "MemoryError" not in type(exc.value).__name__
        day = itch.generate(tmp_path / "d.itch", messages=2000, symbols=2)
        with pytest.raises(ConnectionError, match="is not a Dask scheduler"):
            replay_files([day], addr)
        rc = main(["replay", str(day), "--dask", addr, "--no-progress"])
    finally:
        other.close()
    out, err = capsys.readouterr()
    assert rc == 1 and "replayed" not in out
    assert err.startswith(f"matchcore replay: error: cannot connect to the Dask scheduler at "
                          f"{addr}: what answers on that port is not a Dask scheduler"), err
    assert "out of memory" not in err and err.count("\n") == 1, err


@pytest.mark.timeout(180)
def test_dask_connect_worker_or_nanny_address_refused_naming_the_scheduler(tmp_path, capsys):
    # a worker's log prints "Start worker at: tcp://HOST:PORT" (and its nanny's "Start Nanny
    # at: ..."): given as the scheduler, the client's first request failed in the worker
    # ("TypeError: Worker.identity() got an unexpected keyword argument 'n_workers'") and the
    # command ended in a traceback
    import distributed

    import matchcore.itch as itch

    day = itch.generate(tmp_path / "d.itch", messages=2000, symbols=2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        nanny = next(iter(cluster.workers.values()))
        scheduler = cluster.scheduler_address
        cases = ((nanny.worker_address, f"a Dask worker's, not its scheduler's (the worker's "
                                        f"scheduler is {scheduler})"),
                 (nanny.address, "a Dask nanny's (a worker's process manager), not the "
                                 "scheduler's"))
        for addr, what in cases:
            with pytest.raises(ConnectionError) as exc:
                connect(addr)
            assert str(exc.value) == (f"cannot connect to the Dask scheduler at {addr}: that "
                                      f"address is {what}: give the scheduler's address "
                                      f"(tcp://HOST:8786 by default)")
            with pytest.raises(ConnectionError, match="that address is a Dask"):
                replay_files([day], addr)
            rc = main(["replay", str(day), "--dask", addr, "--no-progress"])
            out, err = capsys.readouterr()
            assert rc == 1 and "replayed" not in out
            assert err == f"matchcore replay: error: {exc.value}\n", err
        # the scheduler itself is still taken
        res = replay_files([day], scheduler)
        assert res.files[0].stats["messages"] == 2000
