"""A zstd stream that starts with a skippable frame, as ``pzstd`` writes every file (a skippable
frame holding the next frame's size before each frame): zstd all the same, which
``zstd -d`` reads. A .dbn.zst file so compressed replays as the plain file, and an ITCH file so
compressed is refused as zstd, as one that starts with a frame is."""
from __future__ import annotations

import os
import struct

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")
zstandard = pytest.importorskip("zstandard")

from cli_replay_checks import run_cli  # noqa: E402

import matchcore.itch as itch  # noqa: E402
from matchcore._magic import Stdin, detect_format  # noqa: E402
from matchcore.feeds.dbn import is_dbn, open_dbn, replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


def pzstd_like(data: bytes, pieces: int = 3) -> bytes:
    # pzstd's layout: each frame behind a skippable frame (magic 0x184D2A50, 4-byte size) that
    # holds the frame's compressed size
    out = bytearray()
    step = -(-len(data) // pieces)
    for i in range(0, len(data), step):
        frame = zstandard.ZstdCompressor().compress(data[i:i + step])
        out += struct.pack("<II", 0x184D2A50, 4) + struct.pack("<I", len(frame)) + frame
    return bytes(out)


@pytest.mark.parametrize("records", [40, 6000])
def test_dbn_replay_zstd_stream_starting_with_a_skippable_frame_replays_as_the_plain_file(
        tmp_path, capsys, records):
    plain = generate_mbo(tmp_path / "p.dbn", records=records, instruments=2, seed=3)
    zst = tmp_path / "p.dbn.zst"
    zst.write_bytes(pzstd_like(plain.read_bytes()))
    assert zstandard.ZstdDecompressor().stream_reader(
        zst.read_bytes(), read_across_frames=True).read() == plain.read_bytes()
    want = replay_dbn(plain)
    got = replay_dbn(zst, chunk_size=4096)
    assert got.stats == want.stats
    assert got.trades().tobytes() == want.trades().tobytes()
    with open_dbn(zst) as f:
        assert f.read() == plain.read_bytes()
    assert is_dbn(zst)
    # under a name that does not tell it, by its bytes alone
    anon = tmp_path / "anon.bin"
    anon.write_bytes(zst.read_bytes())
    assert is_dbn(anon) and detect_format(anon) == "dbn"
    code, out, err = run_cli(capsys, "replay", str(anon), "--no-progress")
    assert code == 0, err
    assert f"replayed {records:,} DBN MBO records" in out


def test_dbn_replay_stdin_zstd_stream_starting_with_a_skippable_frame_is_dbn(tmp_path):
    plain = generate_mbo(None, records=200, instruments=2, seed=4)
    path = tmp_path / "in.bin"
    path.write_bytes(pzstd_like(plain))
    fd = os.open(path, os.O_RDONLY)
    try:
        stdin = Stdin(fd)
        assert detect_format(stdin) == "dbn"
        with stdin.open() as f:
            assert f.read() == path.read_bytes()      # nothing the detection read is lost
    finally:
        os.close(fd)


def test_itch_replay_refuses_a_zstd_stream_starting_with_a_skippable_frame(tmp_path, capsys):
    # it was read as ITCH: zero messages, exit status 0
    day = itch.generate(None, messages=2000, symbols=2, seed=1)
    zst = tmp_path / "day.itch.zst"
    zst.write_bytes(pzstd_like(day))
    assert detect_format(zst) == "itch"                # not DBN: the ITCH reader refuses it
    with pytest.raises(ValueError, match="a zstd-compressed file"):
        itch.replay_file(zst)
    code, _, err = run_cli(capsys, "replay", str(zst), "--no-progress")
    assert code == 1 and "a zstd-compressed file" in err and "Traceback" not in err


def test_dbn_stdin_detection_reads_on_past_a_magic_cut_by_its_look(tmp_path):
    # a first frame of 2 bytes, then the DBN frames, placed so that the detection's first look
    # (64 KiB) ends 2 bytes into the next frame's magic: read on, not taken for trailing data
    plain = generate_mbo(None, records=200, instruments=2, seed=4)
    first = zstandard.ZstdCompressor().compress(b"DB")
    pad = struct.pack("<II", 0x184D2A50, (1 << 16) - len(first) - 8 - 2) \
        + bytes((1 << 16) - len(first) - 8 - 2)
    rest = zstandard.ZstdCompressor().compress(b"N" + plain[3:])
    data = first + pad + rest
    assert data[(1 << 16) - 2:(1 << 16)] == rest[:2]
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert detect_format(Stdin(fd)) == "dbn"
    finally:
        os.close(fd)
