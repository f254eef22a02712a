"""Damage near the end of a DBN record stream: the records after it are replayed, fed whole, in
pieces or from a file, as they are after the same damage mid-stream."""
from __future__ import annotations

import io
import re

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from matchcore.feeds.dbn import DbnReplayer, read_metadata, replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


def _fed(data: bytes, piece: int | None) -> dict:
    meta = read_metadata(io.BytesIO(data))
    r = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
    body, tail = data[meta.header_bytes:], b""
    for k in range(0, len(body), piece or len(body)):
        buf = tail + body[k:k + (piece or len(body))]
        tail = buf[r.feed(buf):]
    return r.finish(tail)


@pytest.mark.parametrize("system", [False, True])
def test_dbn_replay_other_rtype_whose_length_runs_past_the_end_is_a_bad_record(tmp_path,
                                                                               system):
    # Bytes read out of step that look like a known non-MBO header whose "length" runs past
    # the end of the data: the good records after them (up to 18) were reported as one record
    # cut short; mid-stream the same damage is a bad record and only its bytes are lost. A real
    # record of another rtype before such damage goes as it does mid-stream (its length leads
    # to no MBO header).
    data = generate_mbo(None, records=400, instruments=3, seed=4)
    h = read_metadata(io.BytesIO(data)).header_bytes
    sysrec = bytes([6, 0x17]) + b"\x00" * 22 if system else b""
    for junk in (bytes([0xFF, 0x15]) + b"\x00" * 5, bytes([0x41, 0x17]) + bytes(range(30))):
        for i in (385, 399):
            at = h + 56 * i
            bad = data[:at] + sysrec + junk + data[at:]
            path = tmp_path / "damaged.dbn"
            path.write_bytes(bad)
            for s in (_fed(bad, None), _fed(bad, 7), _fed(bad, 1000), replay_dbn(path).stats):
                assert (s["messages"], s["truncated"], s["other_rtypes"]) == (400, None, {})
                assert (s["bad_records"], s["bytes_skipped"], s["first_bad_offset"]) == \
                    (1, len(sysrec) + len(junk), 56 * i), (junk, i)


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_dbn_replay_damaged_compressed_stream_said_alike_in_a_small_file_and_a_large_one(
        tmp_path, capsys, codec):
    # damage within the first bytes read (with the metadata header) was "decompression failed
    # in the metadata header", the same damage further on "decompression failed after N bytes
    # on disk (M records replayed)"
    import gzip

    from cli_replay_checks import run_cli

    said = {}
    for records in (300, 20_000):
        plain = generate_mbo(None, records=records, instruments=2, seed=3)
        if codec == "zstd":
            zstandard = pytest.importorskip("zstandard")
            data = bytearray(zstandard.ZstdCompressor(level=3).compress(plain))
        else:
            data = bytearray(gzip.compress(plain))
        at = len(data) * 3 // 4
        data[at:at + 8] = bytes(b ^ 0xFF for b in data[at:at + 8])
        path = tmp_path / f"{records}.dbn.{'zst' if codec == 'zstd' else 'gz'}"
        path.write_bytes(data)
        with pytest.raises(ValueError) as e:
            replay_dbn(path, chunk_size=4096)
        msg = str(e.value)
        m = re.match(rf"{re.escape(str(path))}: {codec} decompression failed after ([0-9,]+) "
                     r"bytes on disk \(([0-9,]+) records replayed\): ", msg)
        assert m is not None, msg
        assert 0 < int(m.group(1).replace(",", "")) <= len(data)
        said[records] = int(m.group(2).replace(",", ""))
        code, _, err = run_cli(capsys, "replay", str(path), "--no-progress")
        assert code == 1 and f"error: {path}: {codec} decompression failed after " in err
    assert said[300] == 0 and said[20_000] > 0


@pytest.mark.parametrize("version", [1, 3])
def test_dbn_replay_metadata_version_0_refused_naming_the_version(tmp_path, version):
    # DBN versions start at 1. A header whose version byte reads 0 (damage) was parsed by the
    # package in another version's layout: a version 3 header passed and its replay was
    # printed as "mbo v0", a version 1 header failed on a field it read out of step
    # ("couldn't convert 255 to dbn::enums::SType"), naming nothing of the version
    data = generate_mbo(None, records=50, instruments=2, seed=3, version=version)
    bad = data[:3] + b"\x00" + data[4:]
    with pytest.raises(ValueError, match=r"^DBN version 0 is no DBN version \(they start at "
                                         r"1; this replay reads 1 to 3\)"):
        read_metadata(io.BytesIO(bad))
    path = tmp_path / "v0.dbn"
    path.write_bytes(bad)
    with pytest.raises(ValueError, match=re.escape(f"{path}: DBN version 0 is no DBN version")):
        replay_dbn(path)
    # the same header with its version byte whole is read
    assert read_metadata(io.BytesIO(data)).version == version
