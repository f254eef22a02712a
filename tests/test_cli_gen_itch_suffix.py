"""``gen-itch OUT``: the suffix that chooses compression (``.gz``) is matched without regard to
case, as the library's ``itch.generate`` matches it."""
from __future__ import annotations

import gzip

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
