"""``matchcore replay FILE --format itch`` with ``--metrics-port`` or ``--publish``: a file the
ITCH reader refuses is refused before the metrics server or the NATS stream is set up."""
from __future__ import annotations

import gzip

import pytest

import matchcore.itch as itch
from cli_replay_checks import run_cli
from nats_checks import names, server  # noqa: F401  (fixtures)

_TEXT = b"time,type,order id,size,price,direction\n" + b"34200.1,1,7,100,5850000,1\n" * 4


def _inputs(tmp_path):
    text = tmp_path / "orders.csv"
    text.write_bytes(_TEXT)
    gz_text = tmp_path / "orders.csv.gz"
    gz_text.write_bytes(gzip.compress(_TEXT))
    # ITCH bytes from inside a message (cut with tail -c): at the stock name of the first
    # stock directory message, after the 14-byte system events
    day = itch.generate(None, messages=2000, symbols=2, seed=1)
    at = day.index(b"\x00\x27R") + 13
    assert day[at:at + 4] == b"AAPL"
    cut = tmp_path / "cut.itch"
    cut.write_bytes(day[at:])
    return [text, gz_text, cut]


def test_cli_replay_forced_itch_refused_before_metrics_server_starts(capsys, tmp_path):
    pytest.importorskip("prometheus_client")
    for path in _inputs(tmp_path):
        code, out, err = run_cli(capsys, "replay", str(path), "--format", "itch",
                                 "--metrics-port", "0", "--no-progress")
        # the server was started and its address printed, then the file was refused
        assert code == 1 and str(path) in err and "not ITCH 5.0" in err
        assert out == ""


def test_cli_replay_forced_itch_refused_before_nats_stream_made(capsys, tmp_path, server,  # noqa: F811
                                                                names):  # noqa: F811
    import asyncio

    import nats
    from nats.js.errors import NotFoundError

    stream, prefix = names
    path = _inputs(tmp_path)[0]
    code, out, err = run_cli(capsys, "replay", str(path), "--format", "itch", "--publish",
                             server.url, "--stream", stream, "--subject-prefix", prefix,
                             "--no-progress")
    assert code == 1 and "not ITCH 5.0" in err
    # the stream was made on the broker (and "publishing ..." printed) before the refusal
    assert out == ""

    async def info():
        nc = await nats.connect(server.url)
        try:
            return await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()

    with pytest.raises(NotFoundError):
        asyncio.run(info())
