"""``gen-itch OUT > OUT``: OUT is the file stdout writes to. The day is written to OUT and the
summary goes to stderr, as for ``gen-itch /dev/stdout`` and ``replay --dump-book X > X``; it
was printed to stdout, the file OUT had been before its new content was renamed over it, and
was lost with exit status 0."""
from __future__ import annotations

import gzip
import subprocess
import sys

import pytest

import matchcore.itch as itch

ARGS = ["--messages", "3000", "--symbols", "2", "--seed", "9", "--no-progress"]


@pytest.mark.parametrize("name, redirect", [("day.itch", "wb"), ("day.itch", "ab"),
                                            ("day.itch.gz", "wb")])
def test_cli_gen_itch_out_named_as_stdouts_file_summary_on_stderr(tmp_path, name, redirect):
    out = tmp_path / name
    out.write_bytes(b"")
    with open(out, redirect) as stdout:
        p = subprocess.run([sys.executable, "-m", "matchcore", "gen-itch", str(out), *ARGS],
                           stdout=stdout, stderr=subprocess.PIPE, timeout=120)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert f"wrote 3,000 ITCH 5.0 messages for 2 symbols (seed 9) to {out}" in err
    data = out.read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    assert data == itch.generate(None, messages=3000, symbols=2, seed=9)


def test_cli_gen_itch_other_out_summary_on_stdout(tmp_path):
    # stdout elsewhere: the summary stays on stdout
    with open(tmp_path / "log", "wb") as stdout:
        p = subprocess.run([sys.executable, "-m", "matchcore", "gen-itch",
                            str(tmp_path / "d.itch"), *ARGS],
                           stdout=stdout, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0 and p.stderr == b""
    assert (tmp_path / "log").read_text().startswith("wrote 3,000 ITCH 5.0 messages")
