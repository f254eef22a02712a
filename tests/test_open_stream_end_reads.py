"""itch.open_stream and feeds.dbn.open_dbn at the end of a compressed stream that is cut short
or followed by trailing data: every byte the stream holds is handed over, whatever the size of
the reads, and the error is raised by the read after the last of them."""
from __future__ import annotations

import gzip
import zlib

import pytest

import matchcore.itch as itch
from matchcore.feeds.dbn import open_dbn


def _gathered(f, how: str, n: int) -> tuple[bytes, BaseException | None]:
    got = bytearray()
    try:
        if how == "read":
            while chunk := f.read(n):
                got += chunk
        elif how == "readinto":
            buf = bytearray(n)
            while k := f.readinto(buf):
                got += buf[:k]
        else:
            for line in f:
                got += line
    except (EOFError, ValueError) as e:
        return bytes(got), e
    return bytes(got), None


@pytest.mark.parametrize("opener", [itch.open_stream, open_dbn])
@pytest.mark.parametrize("how, n", [("read", 1), ("read", 1000), ("read", 4096),
                                    ("read", 1 << 16), ("read", 1 << 20), ("readinto", 1000),
                                    ("lines", 0)])
def test_open_stream_cut_gzip_hands_over_every_byte_then_raises(tmp_path, opener, how, n):
    # read(1000) of a cut stream gave up to 999 bytes fewer than it holds before EOFError, and
    # read(65536) of a file cut at 40 KiB of data none at all: the bytes a buffered read had
    # gathered were dropped when the read under it raised
    data = itch.generate(None, messages=3000, symbols=2, seed=1)
    packed = gzip.compress(data)
    cut = packed[:len(packed) // 2]
    holds = zlib.decompressobj(31).decompress(cut)
    path = tmp_path / "cut.itch.gz"
    path.write_bytes(cut)
    with opener(path) as f:
        got, err = _gathered(f, how, n)
        assert got == holds and isinstance(err, EOFError)
        assert str(err) == (f"{path}: the compressed stream ends before its end marker (the "
                            "file is cut short)")
        with pytest.raises(EOFError):
            f.read(10)
    with opener(path) as f, pytest.raises(EOFError):
        f.read()                    # one read of the whole: the bytes or the error, the error


@pytest.mark.parametrize("opener", [itch.open_stream, open_dbn])
@pytest.mark.parametrize("n", [1000, 1 << 16])
def test_open_stream_trailing_data_hands_over_every_byte_then_raises(tmp_path, opener, n):
    data = itch.generate(None, messages=3000, symbols=2, seed=1)
    packed = gzip.compress(data)
    path = tmp_path / "day.itch.gz"
    path.write_bytes(packed + b"garbage!")
    with opener(path) as f:
        got, err = _gathered(f, "read", n)
    assert got == data and isinstance(err, ValueError)
    assert str(err) == (f"{path}: trailing data after the gzip stream (at compressed byte "
                        f"{len(packed):,})")


def test_open_dbn_cut_zstd_hands_over_every_byte_then_raises(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    data = itch.generate(None, messages=20_000, symbols=2, seed=1)
    packed = zstandard.ZstdCompressor(level=3).compress(data)
    cut = packed[:len(packed) * 3 // 4]
    holds = zstandard.ZstdDecompressor().decompressobj().decompress(cut)
    assert 0 < len(holds) < len(data)
    path = tmp_path / "cut.dbn.zst"
    path.write_bytes(cut)
    with open_dbn(path) as f:
        got, err = _gathered(f, "read", 1 << 16)
    assert got == holds and isinstance(err, EOFError)
