"""Files compressed with a codec no reader here decompresses (xz, lz4, bzip2): refused naming
the compression, before anything is replayed, instead of "replayed" as ITCH (zero messages, a
bad length prefix, exit status 0), whatever they hold, ITCH or DBN."""
from __future__ import annotations

import bz2
import gzip
import lzma

import pytest

from cli_replay_checks import run_cli

import matchcore.itch as itch
from matchcore._magic import detect_format

LZ4_FRAME = b"\x04\x22\x4d\x18"      # an lz4 frame's magic (no lz4 module needed to tell it)


def compressions(data: bytes):
    return {"xz": lzma.compress(data), "bzip2": bz2.compress(data),
            "lz4": LZ4_FRAME + b"\x64\x40\xa7" + data[:64]}


@pytest.fixture(scope="module")
def day():
    return itch.generate(None, messages=3000, symbols=2, seed=2)


@pytest.mark.parametrize("kind", ["xz", "bzip2", "lz4"])
def test_replay_other_compression_refused_naming_it(tmp_path, capsys, day, kind):
    path = tmp_path / f"day.itch.{kind}"
    path.write_bytes(compressions(day)[kind])
    with pytest.raises(ValueError, match=f"{kind}-compressed stream: replay reads ITCH"):
        detect_format(path)
    code, out, err = run_cli(capsys, "replay", str(path), "--no-progress")
    assert code == 1 and "replayed" not in out
    assert f"{kind}-compressed stream" in err and "Traceback" not in err
    with pytest.raises(ValueError, match=f"{kind}-compressed stream, not ITCH 5.0"):
        itch.replay_file(path)
    with pytest.raises(ValueError, match=f"{kind}-compressed stream, not ITCH 5.0"):
        itch.Replayer().feed(path.read_bytes())
    # gzip'd on top: compressed twice
    twice = tmp_path / f"day.itch.{kind}.gz"
    twice.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(ValueError, match=f"holding an? {kind}-compressed stream \\(compressed"):
        detect_format(twice)


def test_replay_xz_dbn_file_refused(tmp_path, capsys):
    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn_gen import generate_mbo

    path = tmp_path / "mbo.dbn.xz"
    path.write_bytes(lzma.compress(generate_mbo(None, records=200, seed=1)))
    code, out, err = run_cli(capsys, "replay", str(path), "--no-progress")
    assert code == 1 and "replayed" not in out and "an xz-compressed stream" in err


def test_replay_text_starting_like_bzip2_is_still_text(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_bytes(b"BZh is not bzip2 here\n" * 10)
    with pytest.raises(ValueError, match="a text file that is not a LOBSTER"):
        detect_format(path)


def test_book_other_compression_refused_in_the_itch_readers_words(tmp_path, capsys, day):
    # not in replay's words ("replay reads ITCH 5.0 files ... and DBN files ..."): book reads
    # ITCH alone
    path = tmp_path / "day.itch.xz"
    path.write_bytes(compressions(day)["xz"])
    code, _, err = run_cli(capsys, "book", str(path), "--symbol", "AAPL")
    assert code == 1 and "an xz-compressed stream, not ITCH 5.0: the ITCH reader" in err
    assert "replay reads" not in err and "Traceback" not in err
