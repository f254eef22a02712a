"""Helpers shared by the NATS test files: a real ``nats-server -js`` per module (skipping when the
extra is missing), a stream and prefix per test, generated days, ITCH messages made by hand,
publishing a day, and the check that a consumer rebuilt a replay's books."""
from __future__ import annotations

import itertools
import os
import time

import pytest

import matchcore.itch as itch
from matchcore.__main__ import main
from cli_replay_checks import with_names

_ids = itertools.count()


def need_nats():
    pytest.importorskip("nats", reason="nats-py not installed: pip install 'matchcore[nats]'")
    from matchcore.io.nats import nats_server_path

    try:
        nats_server_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def server():
    need_nats()
    from matchcore.io.nats import NatsServer

    srv = NatsServer().start()
    yield srv
    srv.close()


@pytest.fixture
def names():
    """A stream name and subject prefix of its own per test (streams may not share subjects)."""
    i = next(_ids)
    return f"T{i}", f"t{i}"


@pytest.fixture(scope="module")
def day():
    return itch.generate(None, messages=40_000, symbols=4, seed=21)


def feed_chunks(r, data, on_chunk, chunk=100_000):
    mv = memoryview(data)
    pos = 0
    while pos < len(data):
        pos += r.feed(mv[pos:pos + chunk])
        on_chunk(r)
    r.finish()
    on_chunk(r)


def book_levels(book):
    bids, asks = book.depth_orders(1 << 30)
    return [tuple(map(int, x)) for x in bids], [tuple(map(int, x)) for x in asks]


def itch_r(loc, sym):
    from cli_replay_checks import stock_directory

    return stock_directory(loc, sym)


def itch_a(loc, ref, side, shares, sym, price, ts):
    import struct

    body = (b"A" + struct.pack(">HH", loc, 0) + ts.to_bytes(6, "big") + struct.pack(">Q", ref)
            + side + struct.pack(">I", shares) + sym.ljust(8).encode() + struct.pack(">I", price))
    return struct.pack(">H", len(body)) + body


def publish_day(url, stream, prefix, data):
    from matchcore.io.nats import NatsPublisher, ReplayPublisher

    r = itch.Replayer(record_l2=True)
    with NatsPublisher(url, stream=stream, prefix=prefix) as pub:
        bridge = ReplayPublisher(pub, keep=True)
        feed_chunks(r, data, bridge)
    assert pub.stats["published"] == bridge.batches
    return r, bridge.kept()["trades"]


def cli_publish_day(server, stream, prefix, path, *, messages, seed, symbols=2):
    # a generated day published with `matchcore replay --publish`, as a user does
    itch.generate(path, messages=messages, symbols=symbols, seed=seed)
    assert main(["replay", str(path), "--publish", server.url, "--stream", stream,
                 "--subject-prefix", prefix]) == 0


def subscribe_symbols_of_day(server, stream, prefix, tmp_path, capsys, symbols):
    """A generated three-symbol day published as a user does, then `matchcore subscribe
    --symbols SYMBOLS` of it: what the subscribe printed (its exit status 0 checked)."""
    cli_publish_day(server, stream, prefix, tmp_path / "day.itch", messages=5_000, seed=4,
                    symbols=3)
    capsys.readouterr()
    code = main(["subscribe", server.url, "--stream", stream, "--subject-prefix", prefix,
                 "--symbols", symbols])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def assert_consumer_is_replay(c, r, trades):
    from matchcore.io import book_labels

    labels = book_labels(r.symbols, r.books)     # the name, NAME@locateN when several carry it
    assert sorted(c.symbols()) == sorted(labels.values())
    for loc, book in r.books.items():
        sym = labels[loc]
        bb, ba = book.best_bid(), book.best_ask()
        assert c.tob[sym][1:] == (bb[0], bb[1], ba[0], ba[1])
        assert c.depth(sym) == book_levels(book)
        mine = trades[trades["locate"] == loc]
        assert c.trades[sym] == [len(mine), int(mine["shares"][itch.volume_mask(mine)].sum())]


@pytest.fixture(scope="module")
def shared_day():
    """A generated day whose locate 2 carries locate 1's name, and whose locate 3 is announced
    again half way through (same locate, same name: a repeated directory message)."""
    data = itch.generate(None, messages=40_000, symbols=4, seed=21)
    first, _, third, _ = itch.symbol_names(4)
    data = with_names(data, {2: first})
    half = len(data) // 2
    pos = 0
    while pos < half:                        # a message boundary near the middle
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    return data[:pos] + itch_r(3, third) + data[pos:]


def itch_e(loc, ref, shares, match, ts):
    import struct

    body = (b"E" + struct.pack(">HH", loc, 0) + ts.to_bytes(6, "big")
            + struct.pack(">QIQ", ref, shares, match))
    return struct.pack(">H", len(body)) + body


def renamed_after_first_chunk(tmp_path, renames):
    """A generated 2-symbol day of more than 5 MiB with stock directory messages renaming
    ``renames`` ({locate: name}) inserted after its first 4 MiB (the replay's first chunk),
    written to ``tmp_path / "renamed.itch"``; returns the path."""
    data = itch.generate(None, messages=200_000, symbols=2, seed=3)
    assert len(data) > 5 << 20
    pos = 0
    while pos < len(data) - (1 << 20):
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    path = tmp_path / "renamed.itch"
    path.write_bytes(data[:pos] + b"".join(itch_r(loc, name) for loc, name in renames.items())
                     + data[pos:])
    return path


def wait_stopped(pid: int, within: float = 10.0) -> None:
    """Until every thread of process ``pid`` has stopped (after a SIGSTOP)."""
    # kill() returns once SIGSTOP is sent, not once every thread has stopped: a server thread
    # on a CPU the VM had not yet run went on, and acknowledged two of the batches sent next
    # (a CI run, while builds loaded the machine)
    end = time.monotonic() + within
    while time.monotonic() < end:
        states = []
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:          # a thread that has just ended
                pass
        if states and all(st in "Tt" for st in states):
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} not stopped {within:g} s after SIGSTOP")


def stream_messages(url, stream):
    """How many messages the broker at ``url`` holds in ``stream``."""
    import asyncio

    import nats

    async def go():
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info(stream)).state.messages
        finally:
            await nc.close()

    return asyncio.run(go())
