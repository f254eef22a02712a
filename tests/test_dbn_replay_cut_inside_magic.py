"""A DBN file cut short inside its first few bytes (the zstd or gzip magic that starts a
compressed one, the ``DBN`` that starts a plain one): said to be cut short, as a cut one byte
later is, not to be some other file."""
from __future__ import annotations

import pytest

pytest.importorskip("databento_dbn", reason="DBN tests need the 'dbn' extra: "
                                            "pip install 'matchcore[dbn]'")

from cli_replay_checks import run_cli  # noqa: E402

from matchcore.feeds.dbn import is_dbn, replay_dbn  # noqa: E402
from matchcore.feeds.dbn_gen import generate_mbo  # noqa: E402


@pytest.mark.parametrize("suffix, codec, keeps", [(".dbn.zst", "zstd", (1, 2, 3)),
                                                   (".dbn.gz", "gzip", (1,))])
def test_dbn_compressed_file_cut_inside_its_magic_said_truncated(tmp_path, capsys, suffix,
                                                                codec, keeps):
    # cut at 4 bytes or more it was "truncated zstd data: the compressed stream is cut short";
    # cut inside the magic it was "not a DBN stream (starts with b'(\xb5/', expected b'DBN')",
    # of a file named and begun as a compressed DBN file
    data = generate_mbo(tmp_path / f"whole{suffix}", records=200, instruments=1).read_bytes()
    for keep in keeps:
        cut = tmp_path / f"cut{keep}{suffix}"
        cut.write_bytes(data[:keep])
        with pytest.raises(ValueError) as e:
            replay_dbn(cut)
        msg = str(e.value)
        assert msg.startswith(f"{cut}: truncated {codec} data: the compressed stream is cut "
                              f"short ({keep} compressed byte"), msg
        assert "not a DBN stream" not in msg
        # what the replay takes it for, by its name: its first bytes cannot tell
        assert is_dbn(cut)
        code, _, err = run_cli(capsys, "replay", str(cut), "--no-progress")
        assert code == 1 and f"error: {msg}" in err and "Traceback" not in err, err


def test_dbn_plain_file_cut_inside_its_magic_said_metadata_truncated(tmp_path, capsys):
    # "D" and "DB" were "not a DBN stream (starts with b'DB', expected b'DBN')" (the library)
    # and "a text file that is not a LOBSTER message CSV" (the command), where "DBN" and
    # "DBN\x03" are "DBN metadata header truncated (under 8 bytes)"
    data = generate_mbo(tmp_path / "whole.dbn", records=10, instruments=1).read_bytes()
    for keep in (1, 2, 3, 4):
        cut = tmp_path / f"cut{keep}.dbn"
        cut.write_bytes(data[:keep])
        with pytest.raises(ValueError) as e:
            replay_dbn(cut)
        assert str(e.value) == f"{cut}: DBN metadata header truncated (under 8 bytes)"
        code, _, err = run_cli(capsys, "replay", str(cut), "--no-progress")
        assert code == 1 and f"error: {e.value}" in err and "Traceback" not in err, err


def test_dbn_short_files_that_start_no_magic_still_refused_as_not_dbn(tmp_path):
    for content in (b"X", b"(x", b"\x1fx", b"DX"):
        path = tmp_path / "odd.dbn"
        path.write_bytes(content)
        with pytest.raises(ValueError, match="not a DBN stream"):
            replay_dbn(path)
