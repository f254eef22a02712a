"""A zstd-compressed DBN file cut short before anything of it decompresses: said to be cut short
(truncated zstd data), not to hold an incomplete metadata header."""
from __future__ import annotations

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from cli_replay_checks import run_cli  # noqa: E402

from matchcore.feeds.dbn import replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


def test_dbn_replay_zst_cut_inside_first_block_said_truncated_zstd_not_metadata(tmp_path,
                                                                              capsys):
    # 1,500 records fit in one zstd block (up to 128 KiB): the file cut even one byte short
    # decompresses to nothing, yet the error said the stream "ended inside a frame before the
    # DBN metadata header was complete", as if the metadata were what was missing
    data = generate_mbo(tmp_path / "c.dbn.zst", records=1500, instruments=2, seed=3).read_bytes()
    cut = tmp_path / "cut.dbn.zst"
    for keep in (4, 100, len(data) // 2, len(data) - 1):
        cut.write_bytes(data[:keep])
        with pytest.raises(ValueError) as e:
            replay_dbn(cut)
        msg = str(e.value)
        assert msg.startswith(f"{cut}: truncated zstd data: the compressed stream is cut short")
        assert f"({keep:,} compressed bytes" in msg and "metadata" not in msg
        code, _, err = run_cli(capsys, "replay", str(cut), "--no-progress")
        assert code == 1 and f"error: {msg}" in err and "Traceback" not in err
