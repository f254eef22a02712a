"""Bytes after the last frame of a zstd'd DBN stream that start no zstd frame: every record is
replayed, then the trailing data is reported as such, for a small file (read ahead with the
metadata header) as for a large one, as for a gzip'd file."""
from __future__ import annotations

import struct

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")
zstandard = pytest.importorskip("zstandard")

from cli_replay_checks import run_cli  # noqa: E402

from matchcore.feeds.dbn import replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


@pytest.mark.parametrize("records", [40, 6000])
@pytest.mark.parametrize("junk", [b"garbage!", b"\0\0\0\0", b"\x28\xb5"])
def test_dbn_replay_zstd_trailing_data_reported_after_every_record(tmp_path, capsys, records,
                                                                   junk):
    plain = generate_mbo(tmp_path / "t.dbn", records=records, instruments=2, seed=5)
    frame = zstandard.ZstdCompressor().compress(plain.read_bytes())
    zst = tmp_path / "t.dbn.zst"
    zst.write_bytes(frame + junk)
    seen = []
    with pytest.raises(ValueError) as e:
        replay_dbn(zst, chunk_size=4096, on_chunk=lambda r: seen.append(r.stats["messages"]))
    assert str(e.value) == (f"{zst}: trailing data after the zstd stream (at compressed byte "
                            f"{len(frame):,}; {records:,} records replayed)")
    assert seen and seen[-1] == records
    code, _, err = run_cli(capsys, "replay", str(zst), "--no-progress")
    assert code == 1 and f"error: {e.value}" in err and "Traceback" not in err
    # a second frame, and a skippable frame, are no trailing data
    data = plain.read_bytes()
    half = len(data) // 2
    skippable = struct.pack("<II", 0x184D2A50, 3) + b"abc"
    zst.write_bytes(zstandard.ZstdCompressor().compress(data[:half]) + skippable
                    + zstandard.ZstdCompressor().compress(data[half:]))
    assert replay_dbn(zst).stats == replay_dbn(plain).stats
