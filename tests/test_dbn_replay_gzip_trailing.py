"""Bytes after the end of a gzip'd DBN stream that start no gzip member: every record is
replayed, then the trailing data is reported as such, whether the file is small (the whole
stream read ahead with the metadata header) or large (met after many chunks)."""
from __future__ import annotations

import gzip

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from cli_replay_checks import run_cli  # noqa: E402

from matchcore.feeds.dbn import replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


@pytest.mark.parametrize("records", [40, 6000])
@pytest.mark.parametrize("garbage", [b"not gzip", b"\x1f", b"\x00\x00PK\x03\x04"])
def test_dbn_replay_gzip_trailing_data_reported_after_every_record(tmp_path, capsys, records,
                                                                   garbage):
    plain = generate_mbo(tmp_path / "t.dbn", records=records, instruments=2, seed=5)
    member = gzip.compress(plain.read_bytes())
    gz = tmp_path / "t.dbn.gz"
    gz.write_bytes(member + garbage)
    seen = []
    with pytest.raises(ValueError) as e:
        replay_dbn(gz, chunk_size=4096, on_chunk=lambda r: seen.append(r.stats["messages"]))
    at = len(member) + len(garbage) - len(garbage.lstrip(b"\0"))
    assert str(e.value) == (f"{gz}: trailing data after the gzip stream (at compressed byte "
                            f"{at:,}; {records:,} records replayed)")
    assert seen and seen[-1] == records
    code, _, err = run_cli(capsys, "replay", str(gz), "--no-progress")
    assert code == 1 and f"error: {e.value}" in err and "Traceback" not in err
    # zero padding alone after the stream is no trailing data, as between members
    gz.write_bytes(member + bytes(7))
    assert replay_dbn(gz).stats == replay_dbn(plain).stats


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_open_dbn_trailing_data_raises_value_error_as_the_replay_does(tmp_path, codec):
    # open_dbn raised the codec's own error (zlib.error, zstandard.ZstdError) for trailing
    # data, where replay_dbn and itch.open_stream raise ValueError in the same words
    from matchcore.feeds.dbn import open_dbn

    plain = generate_mbo(None, records=300, instruments=2, seed=5)
    packed = gzip.compress(plain) if codec == "gzip" else \
        pytest.importorskip("zstandard").ZstdCompressor().compress(plain)
    path = tmp_path / f"t.dbn.{'gz' if codec == 'gzip' else 'zst'}"
    path.write_bytes(packed + b"garbage!")
    with pytest.raises(ValueError) as replayed:
        replay_dbn(path)
    got = bytearray()
    with open_dbn(path) as f, pytest.raises(ValueError) as e:
        while chunk := f.read1(4096):
            got += chunk
    assert bytes(got) == plain
    assert str(e.value) == (f"{path}: trailing data after the {codec} stream (at compressed "
                            f"byte {len(packed):,})")
    assert str(replayed.value).startswith(str(e.value)[:-1] + ";")
