"""A gzip'd DBN file cut short before anything of it decompresses: said to be cut short
(truncated gzip data), as a zstd one is, not to hold an incomplete metadata header."""
from __future__ import annotations

import gzip
import zlib

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from cli_replay_checks import run_cli  # noqa: E402

from matchcore.feeds.dbn import replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


def test_dbn_replay_gz_cut_before_anything_decompresses_said_truncated_gzip(tmp_path, capsys):
    # the error said the gzip stream "ended short of its end marker before the DBN metadata
    # header was complete", as if the metadata were what was missing, where zstd says
    # "truncated zstd data"
    plain = generate_mbo(tmp_path / "c.dbn", records=1500, instruments=2, seed=3).read_bytes()
    data = gzip.compress(plain)
    cut = tmp_path / "cut.dbn.gz"
    for keep in (2, 4, 10, 20):
        assert zlib.decompressobj(31).decompress(data[:keep]) == b""
        cut.write_bytes(data[:keep])
        with pytest.raises(ValueError) as e:
            replay_dbn(cut)
        msg = str(e.value)
        assert msg.startswith(f"{cut}: truncated gzip data: the compressed stream is cut short")
        assert f"({keep:,} compressed bytes" in msg and "metadata" not in msg
        code, _, err = run_cli(capsys, "replay", str(cut), "--no-progress")
        assert code == 1 and f"error: {msg}" in err and "Traceback" not in err
    # a stream that gives some bytes, short of the metadata header's end, still says that
    head = gzip.compress(plain[:20])[:-8]
    cut.write_bytes(head)
    with pytest.raises(ValueError, match="before the DBN metadata header was complete"):
        replay_dbn(cut)
