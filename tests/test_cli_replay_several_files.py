"""``matchcore replay`` of several files: each file's line says what its replay skipped, as the
summary of one file does."""
from __future__ import annotations

import pytest

from cli_replay_checks import day, run_cli  # noqa: F401  (pytest fixture)


def _line(out: str, name: str) -> str:
    return next(x for x in out.splitlines() if x.strip().startswith(name))


def test_cli_replay_several_files_line_says_unknown_message_types_skipped(capsys, tmp_path, day):
    # one file's summary says "unknown message types: 'Z' 1"; among several files the line of
    # that file said nothing of the message it skipped
    data = day.read_bytes()
    odd = tmp_path / "odd.itch"
    odd.write_bytes(data + b"\x00\x05Zabcd" + data[:14])
    code, one, _ = run_cli(capsys, "replay", str(odd), "--no-progress")
    assert code == 0 and "unknown message types: 'Z' 1;" in one
    code, out, _ = run_cli(capsys, "replay", str(odd), str(day), "--no-progress")
    assert code == 0
    assert "unknown message types 'Z' 1" in _line(out, odd.name)
    assert "unknown message types" not in _line(out, day.name)


def test_cli_replay_several_files_line_says_unknown_dbn_actions_and_sides(capsys, tmp_path):
    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn import read_metadata, replay_dbn
    from matchcore.feeds.dbn_gen import generate_mbo

    good = generate_mbo(tmp_path / "good.dbn", records=500, instruments=2, seed=3)
    with open(good, "rb") as f:
        start = read_metadata(f).header_bytes
    data = bytearray(good.read_bytes())
    data[start + 56 * 10 + 38] = ord("Z")          # record 10's action
    data[start + 56 * 20 + 39] = ord("Q")          # record 20's side
    bad = tmp_path / "bad.dbn"
    bad.write_bytes(bytes(data))
    s = replay_dbn(bad).stats
    assert (s["bad_actions"], s["bad_sides"]) == (1, 1)
    code, one, _ = run_cli(capsys, "replay", str(bad), "--no-progress")
    assert code == 0 and "unknown actions: 1; unknown sides: 1" in one
    code, out, _ = run_cli(capsys, "replay", str(bad), str(good), "--no-progress")
    assert code == 0
    assert "unknown actions 1, unknown sides 1" in _line(out, bad.name)
    assert "unknown actions" not in _line(out, good.name)
