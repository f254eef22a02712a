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


def _renamed_file(tmp_path):
    # SYM0 (1001) and SYM1 (1002) in the metadata; a live mapping renames 1001 NEW mid-stream
    import io

    from matchcore.feeds.dbn import read_metadata
    from matchcore.feeds.dbn_gen import generate_mbo

    data = generate_mbo(None, records=400, instruments=2, seed=5)
    head = read_metadata(io.BytesIO(data)).header_bytes
    cut = head + 56 * 200
    path = tmp_path / "renamed.dbn"
    path.write_bytes(data[:cut] + _mapping(1001, "NEW") + data[cut:])
    return path


def test_dbn_replay_symbols_name_renamed_by_mapping_noted_as_kept_or_left_out(tmp_path, capsys):
    # a name selects a book by its instrument's name at its first record: --symbols SYM0 kept
    # 1001's book (named NEW in the end) and said "no symbol named SYM0 in this file", and
    # --symbols NEW kept no book without a word
    from cli_replay_checks import run_cli

    from matchcore.cluster.dask import replay_serial
    from matchcore.feeds.dbn import replay_dbn

    path = _renamed_file(tmp_path)
    r = replay_dbn(path, symbols=["SYM0"])
    assert list(r.books) == [1] and r.symbols == {0: "SYM1", 1: "NEW"}
    assert r.first_names == {0: "SYM1", 1: "SYM0"}
    assert replay_serial([path], symbols=["SYM0"]).files[0].first_names == r.first_names
    code, out, _ = run_cli(capsys, "replay", str(path), "--symbols", "SYM0", "--no-progress")
    assert code == 0 and "books: 1: NEW;" in out and "no symbol named" not in out
    assert ("note: book 1 (instrument 1001) was kept as 'SYM0', its name at its first record, "
            "and is named 'NEW' in the end") in out
    code, out, _ = run_cli(capsys, "replay", str(path), "--symbols", "NEW", "--no-progress")
    assert code == 0 and "books: 0;" in out
    assert ("note: book 1 (instrument 1001) is named 'NEW' only after its first record (then "
            "'SYM0'): no book kept; its instrument id 1001 keeps it") in out
    # the same notes, naming the file, among several files
    other = tmp_path / "other.dbn"
    other.write_bytes(path.read_bytes())
    code, out, _ = run_cli(capsys, "replay", str(path), str(other), "--symbols", "SYM0",
                           "--no-progress")
    assert code == 0 and "no symbol named" not in out
    assert (f"note: book 1 of {other} (instrument 1001) was kept as 'SYM0', its name at its "
            "first record, and is named 'NEW' in the end") in out
