"""A .dbn.zst written with a long window (``zstd --long``, a window above the 128 MiB zstd
decodes with by default): refused saying so and what to do, not as a bare decoder error."""
from __future__ import annotations

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")
zstd = pytest.importorskip("zstandard")

from cli_replay_checks import run_cli  # noqa: E402

from matchcore.feeds.dbn import replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


def _long_window(raw: bytes, window_log: int) -> bytes:
    # streamed (no content size in the frame header), as `cat f | zstd --long=28` writes it:
    # the frame then asks for the whole window
    params = zstd.ZstdCompressionParameters.from_level(3, window_log=window_log,
                                                       enable_ldm=True)
    c = zstd.ZstdCompressor(compression_params=params).compressobj()
    return c.compress(raw) + c.flush()


def test_dbn_zst_with_a_window_above_the_default_limit_refused_naming_it(tmp_path, capsys):
    # the error was "zstd decompression failed after 65,536 bytes on disk (0 records
    # replayed): zstd decompressor error: Frame requires too much memory for decoding", as if
    # the file were damaged; zstd itself reads it given --long=28 (or --memory=256MB)
    raw = generate_mbo(None, records=500, instruments=1)
    path = tmp_path / "long.dbn.zst"
    path.write_bytes(_long_window(raw, 28))
    with pytest.raises(ValueError) as e:
        replay_dbn(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: zstd decompression failed after "), msg
    assert "its zstd frame needs a 256 MiB window" in msg, msg
    assert "above the 128 MiB zstd decodes with by default" in msg, msg
    assert f"zstd -d --long=28 {path}" in msg, msg
    code, _, err = run_cli(capsys, "replay", str(path), "--no-progress")
    assert code == 1 and f"error: {msg}" in err and "Traceback" not in err, err


def test_dbn_zst_with_a_window_within_the_default_limit_replays(tmp_path):
    raw = generate_mbo(None, records=500, instruments=1)
    path = tmp_path / "ok.dbn.zst"
    path.write_bytes(_long_window(raw, 27))
    assert replay_dbn(path).stats["messages"] == 500
