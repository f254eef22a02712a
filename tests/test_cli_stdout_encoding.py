"""Text the command line prints to a stdout whose encoding cannot hold it (an ASCII locale, a
strict UTF-8 one and a file name of undecodable bytes): the reports print it escaped, as
stderr does, and the outputs are written; the CSV sent to stdout is refused naming itself."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from cli_replay_checks import run_cli
from cli_replay_checks import day  # noqa: F401  (module fixture)

# an ASCII stdout, strict, as Python sets it up under LC_ALL=C without its UTF-8 mode
ASCII = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
         "PYTHONIOENCODING": "ascii"}


def _eclair(day, tmp_path):
    path = tmp_path / "eclair.itch"
    # "AAPL    " -> "ÉCLAIR  " in every message of locate 1 (ITCH names are 8 latin-1 bytes)
    path.write_bytes(day.read_bytes().replace(b"AAPL    ", "ÉCLAIR  ".encode("latin-1")))
    return path


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "matchcore", *argv], env=ASCII,
                          capture_output=True, timeout=120)


def test_cli_replay_ascii_stdout_name_escaped_and_outputs_written(day, tmp_path):
    # "'ascii' codec can't encode character '\xc9'" after the whole replay, on the summary's
    # books line: exit status 1, neither --dump-book nor --out written
    path = _eclair(day, tmp_path)
    dump, out = tmp_path / "dump.csv", tmp_path / "o"
    p = _cli("replay", str(path), "--dump-book", str(dump), "--out", str(out), "--no-progress")
    assert p.returncode == 0, p.stderr
    assert b"books: 6: \\xc9CLAIR, " in p.stdout and p.stderr == b""
    with open(dump, newline="", encoding="utf-8") as f:
        assert "ÉCLAIR" in {row["symbol"] for row in csv.DictReader(f)}
    assert "ÉCLAIR" in json.loads((out / "summary.json").read_text())["symbols"].values()


def test_cli_book_ascii_stdout_name_escaped(day, tmp_path):
    p = _cli("book", str(_eclair(day, tmp_path)), "--symbol", "1", "--depth", "2")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"\\xc9CLAIR (locate 1) at end of file")


def test_cli_replay_dump_book_stdout_cannot_encode_a_name_refused_naming_it(day, tmp_path):
    # the CSV is data: a name escaped there would be another name, so it is refused, before
    # any row, naming the output and the encoding (it failed in the codec's words alone)
    p = _cli("replay", str(_eclair(day, tmp_path)), "--dump-book", "-", "--no-progress")
    assert p.returncode == 1
    assert p.stdout == b""
    err = p.stderr.decode("ascii").splitlines()
    assert err[-1] == ("matchcore replay: error: --dump-book - (stdout): the symbol 'ÉCLAIR' "
                       "cannot be written in stdout's encoding (ascii); a --dump-book file is "
                       "UTF-8").encode("ascii", "backslashreplace").decode("ascii")


def test_cli_gen_itch_and_replay_file_name_of_undecodable_bytes_on_strict_stdout(capsys,
                                                                                 tmp_path):
    # a strict UTF-8 stdout (pytest's, as a UTF-8 locale's without Python's UTF-8 mode) and a
    # file name holding a byte that is no UTF-8 (read as the surrogate U+DCFF): gen-itch wrote
    # the file and exited 1, replay wrote --dump-book and then failed before --out
    name = os.fsdecode(b"day\xff.itch")
    path = tmp_path / name
    code, out, err = run_cli(capsys, "gen-itch", str(path), "--messages", "2000",
                             "--no-progress")
    assert code == 0, err
    assert "day\\udcff.itch" in out and path.exists()
    dump = tmp_path / os.fsdecode(b"book\xfe.csv")
    code, out, err = run_cli(capsys, "replay", str(path), "--dump-book", str(dump), "--out",
                             str(tmp_path / "o"), "--no-progress")
    assert code == 0, err
    assert "book dump: " in out and "book\\udcfe.csv" in out
    assert dump.exists() and (tmp_path / "o" / "summary.json").exists()


def test_cli_replay_several_files_dump_book_stdout_cannot_encode_a_name_refused(day, tmp_path):
    path = _eclair(day, tmp_path)
    p = _cli("replay", str(path), str(day), "--dump-book", "-", "--no-progress")
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode("ascii").splitlines()[-1].startswith(
        "matchcore replay: error: --dump-book - (stdout): the symbol '\\xc9CLAIR' cannot be "
        "written in stdout's encoding (ascii)")


def test_cli_replay_several_files_dump_book_file_name_of_undecodable_bytes_kept_exact(
        capsys, day, tmp_path):
    # the file column holds the path as given: a name of bytes that are no UTF-8 failed the
    # UTF-8 CSV ("'utf-8' codec can't encode character '\udcff'") after the whole replay,
    # exit 1 and no CSV; it is written as those bytes, as the file system names the file
    odd = tmp_path / os.fsdecode(b"day\xff.itch")
    odd.write_bytes(day.read_bytes())
    dump = tmp_path / "dump.csv"
    code, out, err = run_cli(capsys, "replay", str(odd), str(day), "--dump-book", str(dump),
                             "--no-progress")
    assert code == 0, err
    rows = dump.read_bytes().splitlines()
    assert rows[1].startswith(os.fsencode(str(odd)) + b",1,")
    # on a stdout that writes such a name back as its bytes (surrogateescape: Python's under
    # the C locale or in its UTF-8 mode) the CSV is exact too, not refused
    p = subprocess.run([sys.executable, "-m", "matchcore", "replay", str(odd), str(day),
                        "--dump-book", "-", "--no-progress"],
                       env={**os.environ, "PYTHONIOENCODING": "utf-8:surrogateescape"},
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout == dump.read_bytes()
