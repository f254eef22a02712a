"""A ``--json`` or ``--csv`` path that names the file stdout writes to (``/dev/stdout``, or
``--json X > X``) is stdout, as ``-`` is and as ``replay --dump-book`` takes such a path: the
output alone on stdout, the report on stderr. Opened again by its name, the output was
written at the start of the file and the report then over it (recover's JSON began with the
report), or the output truncated the file and the report was lost (bench), exit status 0."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

import matchcore as mc


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    d = tmp_path_factory.mktemp("j") / "jd"
    eng = mc.Engine(journal=str(d))
    eng.add_symbol(1, "AAPL")
    eng.submit(1, 1, mc.Side.SELL, 100, 10)
    eng.submit(1, 2, mc.Side.BUY, 100, 4)
    eng.close()
    return d


def _run(argv, stdout_path, cwd):
    with open(stdout_path, "wb") as stdout:
        return subprocess.run([sys.executable, "-m", "matchcore", *argv], stdout=stdout,
                              stderr=subprocess.PIPE, timeout=300, cwd=cwd)


@pytest.mark.parametrize("argv, option", [
    (["recover", "JD", "--json", "OUT"], "json"),
    (["journal", "inspect", "JD", "--json", "OUT"], "json"),
    (["journal", "trades", "JD", "--csv", "OUT"], "csv"),
    (["bench", "standard", "--messages", "20000", "--no-progress", "--json", "OUT"], "json")])
@pytest.mark.parametrize("as_device", [False, True])
def test_cli_output_naming_stdouts_file_is_stdout_alone(tmp_path, journal, argv, option,
                                                        as_device):
    out = tmp_path / "out.txt"
    argv = [str(journal) if a == "JD" else ("/dev/stdout" if as_device else str(out))
            if a == "OUT" else a for a in argv]
    p = _run(argv, out, tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    text = out.read_text()
    if option == "json":
        json.loads(text)            # the whole file is the JSON, nothing before or after it
    else:
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:2] == ["seq", "cmd_seq"] and len(rows) == 2     # one fill
    if argv[0] == "bench":
        assert "standard" in p.stderr.decode()      # the report, not lost
    assert not [f for f in tmp_path.iterdir() if f.name != "out.txt"]


def test_cli_output_elsewhere_written_and_report_on_stdout(tmp_path, journal):
    p = _run(["recover", str(journal), "--json", str(tmp_path / "r.json")], tmp_path / "log",
             tmp_path)
    assert p.returncode == 0 and p.stderr == b""
    json.loads((tmp_path / "r.json").read_text())
    assert "state hash" in (tmp_path / "log").read_text()
