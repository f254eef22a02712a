"""DbnReplayer.finished: the end of the stream told apart from a stop time, as itch.Replayer's."""
from __future__ import annotations

import io

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from matchcore import itch  # noqa: E402
from matchcore.feeds.dbn import DbnReplayer, read_metadata, replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


def _body(records=400):
    data = generate_mbo(None, records=records, instruments=2, seed=5)
    meta = read_metadata(io.BytesIO(data))
    return data, meta, data[meta.header_bytes:]


def test_dbn_replayer_finished_false_until_finish_then_true():
    _, meta, body = _body()
    r = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
    assert r.finished is False
    n = r.feed(body[:1000])
    assert r.finished is False and n > 0
    r.finish(body[n:1000])
    assert r.finished is True
    with pytest.raises(ValueError):
        r.feed(body[1000:])
    assert r.finished is True


def test_dbn_replayer_finished_is_not_done_at_the_stop_time():
    # until_ns ends the replay (done) but not the stream: finish() still has to be called, as
    # with an ITCH Replayer; code written for one replayer reads the same attributes on both
    _, meta, body = _body()
    r = DbnReplayer(names=meta.names, ts_out=meta.ts_out, until_ns=0)
    ir = itch.Replayer(until_ns=0)
    data = itch.generate(None, messages=500, symbols=2, seed=5)
    for rep, buf in ((r, body), (ir, data)):
        rep.feed(buf)
        assert rep.done and not rep.finished
        rep.finish()
        assert rep.done and rep.finished


def test_dbn_replayer_finished_read_only():
    r = DbnReplayer()
    with pytest.raises(AttributeError):
        r.finished = True
    assert r.finished is False


def test_dbn_replay_dbn_returns_a_finished_replayer(tmp_path):
    data, _, _ = _body(200)
    p = tmp_path / "mbo.dbn"
    p.write_bytes(data)
    assert replay_dbn(str(p)).finished is True
