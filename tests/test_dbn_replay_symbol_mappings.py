"""Symbol-mapping records (rtype 0x16) inside a DBN record stream, as Databento's live API sends
them: each names its instrument from where it stands in the stream on."""
from __future__ import annotations

import pytest

d = pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                                "pip install 'matchcore[dbn]'")

from matchcore.feeds.dbn import DbnReplayer  # noqa: E402
from matchcore.feeds.dbn_gen import mbo_record  # noqa: E402


def _mapping(iid, raw_symbol, *, v1=False, ts_out=False):
    if v1:
        rec = d.SymbolMappingMsgV1(1, iid, 5, "ES.c.0", raw_symbol, 10, 20)
    else:
        rec = d.SymbolMappingMsg(1, iid, 5, d.SType.CONTINUOUS, "ES.c.0", d.SType.RAW_SYMBOL,
                                 raw_symbol, 10, 20)
    out = bytes(rec)
    if ts_out:
        out = bytes([out[0] + 2]) + out[1:] + (7).to_bytes(8, "little")
    return out


def _replay(body, **kw):
    r = DbnReplayer(**kw)
    n = r.feed(body)
    r.finish(body[n:])
    return r


@pytest.mark.parametrize("v1", [False, True])
@pytest.mark.parametrize("ts_out", [False, True])
def test_dbn_replay_live_symbol_mapping_records_name_their_instruments(v1, ts_out):
    # A live stream names its instruments in symbol-mapping records, not in its metadata: they
    # were counted as other rtypes and skipped, the books named by their ids ("1001") and a
    # --symbols name matched none of them.
    mbo = lambda iid, oid: mbo_record(iid, oid, oid, 100 * oid, 5, "A", "B",  # noqa: E731
                                      ts_out=ts_out)
    body = b"".join([_mapping(1001, "ESZ4", v1=v1, ts_out=ts_out), mbo(1001, 1),
                     mbo(1002, 2), _mapping(1002, "NQZ4", v1=v1, ts_out=ts_out), mbo(1002, 3),
                     _mapping(1001, "ESH5", v1=v1, ts_out=ts_out), mbo(1001, 4)])
    r = _replay(body, ts_out=ts_out)
    assert r.stats["other_rtypes"] == {"0x16": 3} and r.stats["messages"] == 4
    # the latest mapping of an instrument names its book, as the metadata's latest interval
    assert r.symbols == {0: "ESH5", 1: "NQZ4"}
    assert r.book("NQZ4") is r.books[1] and len(r.books[0]) == 2
    # a name selects the books of the instruments it maps to when they first appear
    kept = _replay(body, ts_out=ts_out, symbols=["ESZ4"])
    assert list(kept.books) == [0] and kept.symbols == {0: "ESH5", 1: "NQZ4"}
    # a name given before the stream is replaced by the stream's own mapping
    named = _replay(body, ts_out=ts_out, names={1001: "OLD", 1003: "KEEP"})
    assert named.symbols == {0: "ESH5", 1: "NQZ4"}
