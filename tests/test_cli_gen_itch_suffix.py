"""``gen-itch OUT``: the suffix that chooses compression (``.gz``) is matched without regard to
case, as the library's ``itch.generate`` matches it."""
from __future__ import annotations

import gzip
import zlib

import pytest

import matchcore.itch as itch
from cli_replay_checks import run_cli


@pytest.mark.parametrize("name", ["day.itch.GZ", "day.itch.Gz", "DAY.ITCH.gZ"])
def test_cli_gen_itch_gz_suffix_any_case_writes_gzip(capsys, tmp_path, name):
    # day.itch.GZ held plain ITCH bytes: the suffix was matched as ".gz" only
    path = tmp_path / name
    code, out, _ = run_cli(capsys, "gen-itch", str(path), "--messages", "5000", "--symbols",
                           "2", "--seed", "3", "--no-progress")
    assert code == 0 and f"to {path}" in out
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == itch.generate(None, messages=5000, symbols=2, seed=3)


def test_itch_generate_gz_suffix_any_case_writes_gzip(tmp_path):
    upper = itch.generate(tmp_path / "a.itch.GZ", messages=3000, symbols=2, seed=4)
    lower = itch.generate(tmp_path / "a.itch.gz", messages=3000, symbols=2, seed=4)
    assert upper.read_bytes() == lower.read_bytes()
    # a name that only contains gz elsewhere stays plain
    plain = itch.generate(tmp_path / "gz.itch", messages=3000, symbols=2, seed=4)
    assert plain.read_bytes() == itch.generate(None, messages=3000, symbols=2, seed=4)


@pytest.mark.parametrize("kind", ["hard link", "symlink"])
def test_cli_gen_itch_gz_written_in_place_same_bytes_as_a_new_file(capsys, tmp_path, kind):
    # a .gz written in place (a file with another hard link, a symlink) carried its own name in
    # the gzip header, which the temporary file written and renamed for a new one does not:
    # the same arguments gave another file
    args = ["--messages", "4000", "--symbols", "2", "--seed", "5", "--no-progress"]
    fresh = tmp_path / "fresh.itch.gz"
    assert run_cli(capsys, "gen-itch", str(fresh), *args)[0] == 0
    target = tmp_path / "day.itch.gz"
    target.write_bytes(b"old")
    if kind == "hard link":
        (tmp_path / "other.gz").hardlink_to(target)
        out = target
    else:
        out = tmp_path / "link.itch.gz"
        out.symlink_to(target)
    assert run_cli(capsys, "gen-itch", str(out), *args)[0] == 0
    assert target.read_bytes() == fresh.read_bytes()


def test_itch_generate_gz_header_names_no_file(tmp_path):
    target = tmp_path / "x.itch.gz"
    target.write_bytes(b"")
    (tmp_path / "y.gz").hardlink_to(target)
    itch.generate(target, messages=2000, symbols=1, seed=2)
    assert target.read_bytes()[3] & 0x08 == 0         # FNAME flag unset


def test_itch_generate_gz_written_at_gzip_default_level(tmp_path):
    # a .gz day was deflated at zlib's slowest level (9, GzipFile's default): about ten times
    # the time of gzip's own default (6) for some 1.5% less size, tens of thousands of
    # messages a second where plain days are written at millions
    data = itch.generate(None, messages=3000, symbols=2, seed=4)
    raw = itch.generate(tmp_path / "d.itch.gz", messages=3000, symbols=2, seed=4).read_bytes()
    assert raw[8] == 0                  # XFL: neither "slowest" (2) nor "fastest" (4)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert raw[10:-8] == deflate.compress(data) + deflate.flush()
    assert gzip.decompress(raw) == data
