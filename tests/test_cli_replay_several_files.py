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


def test_cli_replay_several_files_plot_names_of_two_files_each_its_own_png(capsys, tmp_path):
    # a.itch's symbol 2-X and a-2.itch's symbol X were both drawn to a-2-X.png: the second
    # file's plot replaced the first's, and both were listed
    pytest.importorskip("matplotlib")
    import struct

    def day_of(name: bytes) -> bytes:
        out = b""
        for i in range(4):
            m = struct.pack(">cHH", b"A", 1, 0) + (i + 1).to_bytes(6, "big") + struct.pack(
                ">QcI8sI", 10 + i, b"BS"[i % 2:i % 2 + 1], 100, name.ljust(8), 1000 + 10 * i)
            out += len(m).to_bytes(2, "big") + m
        return out

    first, second = tmp_path / "a.itch", tmp_path / "a-2.itch"
    first.write_bytes(day_of(b"2-X"))
    second.write_bytes(day_of(b"X"))
    plots = tmp_path / "plots"
    code, out, err = run_cli(capsys, "replay", str(first), str(second), "--no-progress",
                             "--plot", str(plots))
    assert code == 0, out + err
    listed = [line.split(": ", 1)[1].split(" -> ")[0] for line in out.splitlines()
              if line.startswith("plots: ")]
    assert len(listed) == 2 and listed[0] != listed[1]
    assert sorted(x.name for x in plots.iterdir()) == sorted(listed)


def test_cli_replay_several_files_of_one_name_told_apart_in_their_lines(capsys, tmp_path, day):
    # x/day.itch and y/day.itch were both listed as "day.itch (itch): ...": which line was
    # which file could not be told
    data = day.read_bytes()
    paths = []
    for sub, extra in (("x", b""), ("y", b"\x00\x05Zabcd")):
        (tmp_path / sub).mkdir()
        p = tmp_path / sub / "day.itch"
        p.write_bytes(data + extra)
        paths.append(str(p))
    other = tmp_path / "other.itch"
    other.write_bytes(data)
    code, out, _ = run_cli(capsys, "replay", *paths, str(other), "--no-progress")
    assert code == 0
    assert "unknown message types" not in _line(out, f"{paths[0]} (itch)")
    assert "unknown message types 'Z' 1" in _line(out, f"{paths[1]} (itch)")
    assert _line(out, "other.itch (itch)")          # a name no other file has: as before


def test_cli_replay_several_files_counts_of_one_in_the_singular(capsys):
    # the AAPL file's line said "1 books"; so said the header of one file on --dask, "replayed
    # 1 files", as the demo's "1 commands" once did
    from cli_replay_checks import AAPL, HEAD, shared

    aapl, head = shared(AAPL), shared(HEAD)
    code, out, _ = run_cli(capsys, "replay", str(aapl), str(head), "--no-progress")
    assert code == 0
    line = _line(out, aapl.name)
    assert " 1 book, " in line and "books" not in line
    assert " 0 books, " in _line(out, head.name)


@pytest.mark.parametrize("flag, name, kind", [
    ("--verify", "X_message_1.csv", "LOBSTER"),
    ("--committed", "flow.mccmd", "native command"),
])
def test_cli_replay_one_file_with_dask_and_a_single_file_option_says_dask_takes_none(
        capsys, tmp_path, flag, name, kind):
    # one LOBSTER file given with --dask --verify was told "--verify applies to one LOBSTER
    # file": it was one, and the words said nothing of --dask, which is what rules it out
    one = tmp_path / name
    one.write_bytes(b"34200.1,1,5,100,5853300,1\n")
    code, out, err = run_cli(capsys, "replay", str(one), "--dask", "local", flag,
                             "--no-progress")
    assert code == 1 and out == ""
    assert f"{flag} applies to one {kind} file" in err
    assert "replayed by itself, not with several files or --dask" in err


def test_cli_replay_several_files_plot_nothing_to_draw_names_its_file(capsys, tmp_path, day):
    # each file with nothing to draw printed "plots: nothing to draw (...)", the same line
    # once per such file, naming none of them
    pytest.importorskip("matplotlib")
    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn_gen import generate_mbo

    empty = [generate_mbo(tmp_path / "e.dbn", records=0),
             generate_mbo(tmp_path / "e2.dbn.zst", records=0)]
    code, out, err = run_cli(capsys, "replay", *map(str, empty), str(day), "--no-progress",
                             "--plot", str(tmp_path / "plots"))
    assert code == 0, out + err
    nothing = [line for line in out.splitlines() if "nothing to draw" in line]
    assert nothing == [f"plots: nothing to draw for {p} (no top-of-book changes or trades "
                       f"recorded)" for p in empty]


def _itch(*messages: bytes) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in messages)


def test_cli_replay_several_files_line_says_the_book_rules_counters(capsys, tmp_path, day):
    # one file's summary gives executions clamped, duplicate references, invalid adds ...; among
    # several files that file's line said "unknown refs 0, truncated no" and nothing of them
    import struct

    def msg(kind: bytes, fmt: str, *fields) -> bytes:
        return struct.pack(">cHH", kind, 1, 0) + (58_000 * 10**9).to_bytes(6, "big") + \
            struct.pack(fmt, *fields)

    def add(ref, side=b"B"):
        return msg(b"A", ">QcI8sI", ref, side, 100, b"AAPL    ", 1_000_000)

    ref = 1 << 60                          # no order of the day has it
    odd = tmp_path / "odd.itch"
    odd.write_bytes(day.read_bytes() + _itch(
        add(ref), add(ref),                                       # duplicate reference
        add(ref + 1, b"Z"),                                       # invalid add
        msg(b"E", ">QIQ", ref, 500, 1),                           # execution clamped
        add(ref + 2), msg(b"X", ">QI", ref + 2, 500),             # cancel clamped
        add(ref + 3), msg(b"E", ">QIQ", ref + 3, 0, 2),           # zero-share execution
        msg(b"U", ">QQII", ref + 3, ref + 4, 0, 1_000_000),       # invalid replace
        msg(b"P", ">QcI8sIQ", 0, b"Z", 5, b"AAPL    ", 1_000_000, 3)))   # invalid trade
    code, one, _ = run_cli(capsys, "replay", str(odd), "--no-progress")
    assert code == 0
    assert ("executions clamped: 1; cancels clamped: 1; duplicate references: 1; invalid adds: "
            "1; invalid replaces: 1; zero-share executions/cancels: 1; invalid trades: 1") in one
    code, out, _ = run_cli(capsys, "replay", str(odd), str(day), "--no-progress")
    assert code == 0
    assert (", executions clamped 1, cancels clamped 1, duplicate references 1, invalid adds 1, "
            "invalid replaces 1, zero-share executions/cancels 1, invalid trades 1") \
        in _line(out, odd.name)
    clean = _line(out, day.name)
    assert "clamped" not in clean and "invalid" not in clean and "duplicate" not in clean


def test_cli_replay_several_files_line_says_the_dbn_book_rules_counters(capsys, tmp_path):
    # as for ITCH: the DBN file's line hid its duplicate adds, invalid adds and modifies, clamped
    # cancels and modifies of unknown orders, which its one-file summary gives
    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn_gen import _metadata, generate_mbo, mbo_record

    def rec(*args):
        return mbo_record(7, *args)

    bad = tmp_path / "bad.dbn"
    bad.write_bytes(_metadata({7: "X"}, False, 0, 10) + b"".join([
        rec(1, 1, 100, 5, "A", "B"), rec(2, 1, 100, 5, "A", "B"),     # duplicate add
        rec(3, 2, 100, 0, "A", "B"),                                  # invalid add
        rec(4, 1, 100, 20, "C", "B"),                                 # cancel clamped
        rec(5, 9, 99, 4, "M", "B"),                                   # modify of an unknown order
        rec(6, 9, 0, 1, "M", "B")]))                                  # invalid modify
    good = generate_mbo(tmp_path / "good.dbn", records=500, instruments=2, seed=3)
    code, one, _ = run_cli(capsys, "replay", str(bad), "--no-progress")
    assert code == 0
    assert ("cancels clamped: 1; duplicate adds: 1; invalid adds: 1; invalid modifies: 1; "
            "modifies of unknown orders: 1;") in one
    code, out, _ = run_cli(capsys, "replay", str(bad), str(good), "--no-progress")
    assert code == 0
    assert (", cancels clamped 1, duplicate adds 1, invalid adds 1, invalid modifies 1, modifies "
            "of unknown orders 1") in _line(out, bad.name)
    clean = _line(out, good.name)
    assert "clamped" not in clean and "invalid" not in clean and "duplicate" not in clean
