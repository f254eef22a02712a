"""Names taken from input files in the command line's text outputs: a damaged file's control
characters and escape sequences are shown escaped, never printed raw; JSON and CSV stay exact."""
from __future__ import annotations

import csv
import io
import json

import pytest

from cli_replay_checks import run_cli, with_names
from cli_replay_checks import day  # noqa: F401  (module fixture)

import matchcore as mc

EVIL = "\x1b[2J\x07\\"               # clears the screen, rings the bell, a backslash
SHOWN = "\\x1b[2J\\x07\\\\"


def _no_raw_controls(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text)


def test_cli_replay_and_book_show_a_damaged_itch_name_escaped(capsys, day, tmp_path):
    path = tmp_path / "named.itch"
    path.write_bytes(with_names(day.read_bytes(), {2: EVIL}))
    dump = tmp_path / "dump.csv"
    code, out, err = run_cli(capsys, "replay", str(path), "--no-progress", "--dump-book",
                             str(dump), "--out", str(tmp_path / "o"))
    assert code == 0
    _no_raw_controls(out + err)
    assert SHOWN in [n.strip() for n in out.split("books: ")[1].split(";")[0]
                     .split(": ", 1)[1].split(",")]
    with open(dump, newline="") as f:
        assert EVIL in {row["symbol"] for row in csv.DictReader(f)}
    assert EVIL in json.loads((tmp_path / "o" / "summary.json").read_text())["symbols"].values()
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "2", "--no-progress")
    assert code == 0
    _no_raw_controls(out + err)
    assert out.startswith(f"{SHOWN} (locate 2) at ")


def test_cli_replay_shows_a_damaged_dbn_name_escaped(capsys, tmp_path):
    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn_gen import _metadata, mbo_record

    path = tmp_path / "named.dbn"
    path.write_bytes(_metadata({7: EVIL}, False, 0, 10)
                     + mbo_record(7, 1, 1, 100, 5, "A", "B"))
    code, out, err = run_cli(capsys, "replay", str(path), "--no-progress")
    assert code == 0
    _no_raw_controls(out + err)
    assert f"books: 1: {SHOWN};" in out


def test_cli_recover_shows_a_symbol_name_escaped(capsys, tmp_path):
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1, EVIL)
    eng.submit(1, 1, 0, 100, 10)
    eng.close()
    code, out, err = run_cli(capsys, "recover", str(d), "--depth", "0")
    assert code == 0
    _no_raw_controls(out + err)
    assert ["1", SHOWN, "orders", "1"] in [ln.split() for ln in out.splitlines()]
    code, out, _ = run_cli(capsys, "recover", str(d), "--json", "-")
    assert json.load(io.StringIO(out))["books"][0]["name"] == EVIL


def test_cli_book_no_such_symbol_lists_damaged_names_escaped(capsys, day, tmp_path):
    # the error of a symbol the file lacks lists the names it saw, and names the locate a
    # stock directory message renamed: both printed the file's names raw to the terminal
    from cli_replay_checks import stock_directory

    data = with_names(day.read_bytes(), {2: EVIL})
    path = tmp_path / "named.itch"
    path.write_bytes(data)
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "NOPE", "--no-progress")
    assert code == 1 and not out
    _no_raw_controls(err)
    assert SHOWN in err.strip().split("symbols seen: ")[1].split(", ")
    pos = 0
    while pos < len(data) // 2:
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
    path.write_bytes(data[:pos] + stock_directory(1, EVIL) + data[pos:])
    code, out, err = run_cli(capsys, "book", str(path), "--symbol", "AAPL", "--no-progress")
    assert code == 1 and not out
    _no_raw_controls(err)
    assert f"(--symbol {SHOWN}@locate1)" in err


def test_cli_replay_dump_book_is_utf_8_whatever_the_locale(day, tmp_path):
    # the CSV went out in the locale's encoding: under an ASCII locale a name of latin-1
    # letters failed after the whole replay ("'ascii' codec can't encode"), no CSV written,
    # and under another its bytes were not those of a UTF-8 run
    import os
    import subprocess
    import sys

    data = bytearray(day.read_bytes())
    # "AAPL    " -> "ÉCLAIR  " in every message of locate 1 (ITCH names are 8 latin-1 bytes)
    data = bytes(data).replace(b"AAPL    ", "ÉCLAIR  ".encode("latin-1"))
    path = tmp_path / "eclair.itch"
    path.write_bytes(data)
    dump = tmp_path / "dump.csv"
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONIOENCODING": "utf-8"}
    p = subprocess.run([sys.executable, "-m", "matchcore", "replay", str(path), "--dump-book",
                        str(dump), "--no-progress"], env=env, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    with open(dump, newline="", encoding="utf-8") as f:
        assert "ÉCLAIR" in {row["symbol"] for row in csv.DictReader(f)}
