"""``generate_mbo`` under a ``.gz`` name writes a gzip stream, as ``itch.generate`` does: a
``.dbn.gz`` file holding plain bytes is refused by gunzip and every other tool."""
from __future__ import annotations

import gzip

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from matchcore.feeds.dbn import replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


@pytest.mark.parametrize("name", ["m.dbn.gz", "M.DBN.GZ"])
def test_dbn_gen_gz_suffix_writes_gzip_of_the_same_stream(tmp_path, name):
    path = generate_mbo(tmp_path / name, records=300, instruments=2, seed=6)
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    data = generate_mbo(None, records=300, instruments=2, seed=6)
    assert gzip.decompress(raw) == data
    plain = tmp_path / "m.dbn"
    plain.write_bytes(data)
    assert replay_dbn(path).stats == replay_dbn(plain).stats
    # written again, the same bytes (no time in the gzip header)
    assert generate_mbo(tmp_path / name, records=300, instruments=2, seed=6).read_bytes() == raw


def test_dbn_gen_gz_suffix_compress_false_stays_plain(tmp_path):
    path = generate_mbo(tmp_path / "m.dbn.gz", records=50, compress=False)
    assert path.read_bytes() == generate_mbo(None, records=50)
