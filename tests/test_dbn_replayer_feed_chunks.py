"""DbnReplayer.feed() in small chunks: the stream's first bytes judged as they are fed whole."""
from __future__ import annotations

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from matchcore.feeds.dbn import DbnReplayer  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


@pytest.mark.parametrize("chunk", [1, 2])
def test_dbn_replayer_metadata_header_fed_in_small_chunks_refused_nothing_consumed(chunk):
    # fed one or two bytes at a time, the "DBN" of a metadata header never stood in one
    # buffer at offset 0: its bytes were consumed as damage (a bad record, 584 bytes
    # skipped) and the records after it replayed, where fed whole it is refused
    data = generate_mbo(None, records=60, instruments=2, seed=4)
    r = DbnReplayer()
    held = b""
    with pytest.raises(ValueError, match="starts with a DBN metadata header"):
        for i in range(0, len(data), chunk):
            held += data[i:i + chunk]
            held = held[r.feed(held):]
    assert r.stats["bytes_consumed"] == 0 and r.stats["bad_records"] == 0
    # a stream that is only a part of the magic is taken at its end, as fed whole
    for part in (b"D", b"DB"):
        fed = DbnReplayer()
        assert fed.feed(part) == 0
        assert fed.finish(part) == DbnReplayer().finish(part)
