"""``matchcore replay`` / ``gen-itch`` end to end through the dispatcher: formats and how they are
detected, stdin, FIFOs and compressed input, output files, and the options each format refuses."""
from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli_in_2gib, slow_fifo_writer
from cli_replay_checks import AAPL, HEAD, LOBSTER, RITCH, copies, run_cli, shared
from cli_replay_checks import day  # noqa: F401  (module fixture)

import matchcore.itch as itch
from matchcore.__main__ import main
from matchcore.itch.reference import ReferenceReplay



def test_cli_replay_aapl_summary_counts_and_unknown_refs(capsys):
    import re

    code, out, _ = run_cli(capsys, "replay", str(shared(AAPL)), "--no-progress")
    assert code == 0
    # the rate as measured: in millions only while the replay takes under half a second,
    # which a loaded machine does not always give ("in 0.631 s: 79,202 msg/s")
    assert re.search(r"^replayed 49,947 ITCH 5\.0 messages \(1\.5 MB on disk\) in [0-9.]+ s: "
                     r"([0-9.,]+|inf)( M)? msg/s$", out, re.M), out
    assert "D 24,150  A 22,121  E 2,162  U 1,130  P 281  X 98  C 4  F 1" in out
    assert "unknown order references: 3,970" in out
    assert "truncated: no" in out


def test_cli_replay_ritch_infer_lengths_and_hint_without(capsys):
    path = str(shared(RITCH))
    code, out, _ = run_cli(capsys, "replay", path, "--no-progress")
    assert code == 0 and "--infer-lengths" in out and "offset 0: zero length prefix" in out
    code, out, _ = run_cli(capsys, "replay", path, "--infer-lengths", "--no-progress")
    assert "replayed 12,012 ITCH 5.0 messages" in out
    assert "unknown order references: 117" in out


def test_cli_replay_several_files_line_of_a_file_with_bad_prefixes_says_so_and_hints(capsys,
                                                                                   day):
    # the RITCH file read without --infer-lengths: all of it skipped after a zero prefix at
    # offset 0; its line said only "0 messages ... truncated yes", as if it were cut short
    code, out, _ = run_cli(capsys, "replay", str(shared(RITCH)), str(day), "--no-progress")
    assert code == 0
    line = next(x for x in out.splitlines() if RITCH.name in x)
    assert ("bad length prefixes 1 (first at offset 0: zero length prefix; 465,048 bytes "
            "skipped)") in line
    hint = next(x for x in out.splitlines() if x.startswith("hint:"))
    assert RITCH.name in hint and "--infer-lengths" in hint
    day_line = next(x for x in out.splitlines() if x.strip().startswith(day.name))
    assert "bad length prefixes" not in day_line


def test_cli_replay_truncated_head_reports_offset(capsys):
    code, out, _ = run_cli(capsys, "replay", str(shared(HEAD)), "--no-progress")
    assert code == 0
    assert "replayed 101 ITCH 5.0 messages" in out
    assert "offset 4,081 is incomplete (15 of 41 bytes)" in out


def test_cli_replay_dump_book_header_and_rows_equal_reference(capsys, day, tmp_path):
    out_csv = tmp_path / "book.csv"
    code, out, _ = run_cli(capsys, "replay", str(day), "--dump-book", str(out_csv), "--no-progress")
    assert code == 0
    with open(out_csv, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["locate", "symbol", "side", "level", "price", "qty", "orders"]
    ref = ReferenceReplay()
    ref.feed(day.read_bytes())
    names = itch.symbol_names(6)
    want = []
    for loc in sorted(ref.books):
        bids, asks = ref.depth(loc)
        for side, levels in (("B", bids), ("S", asks)):
            want += [[str(loc), names[loc - 1], side, str(i), str(p), str(q), str(c)]
                     for i, (p, q, c) in enumerate(levels, 1)]
    assert rows[1:] == want
    assert f"book dump: {len(want):,} levels" in out


def test_cli_replay_dump_book_dash_writes_csv_alone_to_stdout(capsys, day, tmp_path):
    # '-' used to create a file named "-"; now stdout carries the CSV alone (so that it can be
    # piped) and the summary goes to stderr, as with bench --json -
    out_csv = tmp_path / "book.csv"
    code, _, _ = run_cli(capsys, "replay", str(day), "--dump-book", str(out_csv), "--no-progress")
    assert code == 0
    code, out, err = run_cli(capsys, "replay", str(day), "--dump-book", "-", "--no-progress")
    assert code == 0
    assert out.splitlines() == out_csv.read_text().splitlines()
    assert "replayed 30,000 ITCH 5.0 messages" in err and "book dump:" in err
    assert not (Path.cwd() / "-").exists()
    # several files: the merged dump (with its file column) likewise
    import shutil

    other = shutil.copyfile(day, tmp_path / "day2.itch")
    code, out, err = run_cli(capsys, "replay", str(day), str(other), "--dump-book", "-",
                             "--no-progress")
    assert code == 0
    rows = list(csv.reader(out.splitlines()))
    assert rows[0][0] == "file" and len(rows) == 1 + 2 * (len(out_csv.read_text().splitlines()) - 1)
    assert "book dump:" in err


def test_cli_replay_aapl_dump_book_177_levels(capsys, tmp_path):
    out_csv = tmp_path / "aapl.csv"
    run_cli(capsys, "replay", str(shared(AAPL)), "--dump-book", str(out_csv), "--no-progress")
    rows = list(csv.DictReader(open(out_csv, newline="")))
    assert len(rows) == 177 and {r["symbol"] for r in rows} == {"AAPL"}
    bids = [r for r in rows if r["side"] == "B"]
    assert [int(r["level"]) for r in bids] == list(range(1, len(bids) + 1))
    assert [int(r["price"]) for r in bids] == sorted((int(r["price"]) for r in bids), reverse=True)


def test_cli_replay_out_dir_writes_sinks_and_summary(capsys, day, tmp_path):
    out = tmp_path / "out"
    code, _, _ = run_cli(capsys, "replay", str(day), "--out", str(out), "--snapshot-every", "5000",
                         "--symbols", "AAPL,MSFT", "--no-progress")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stats"]["messages"] == 30_000
    r = itch.replay_file(day, snapshot_every=5000, symbols=["AAPL", "MSFT"])
    for name in ("tob", "trades", "snapshots"):
        assert np.array_equal(np.load(out / f"{name}.npy"), getattr(r, name)()), name
    assert set(np.load(out / "tob.npy")["locate"].tolist()) == {1, 2}
    assert len(np.load(out / "snapshots.npy")) > 0


def test_cli_gen_itch_same_seed_same_file_other_seed_differs(capsys, tmp_path):
    a, b, c = tmp_path / "a.itch", tmp_path / "b.itch", tmp_path / "c.itch"
    for path, seed in ((a, 5), (b, 5), (c, 6)):
        code, out, _ = run_cli(capsys, "gen-itch", str(path), "--messages", "20000", "--symbols",
                               "4", "--seed", str(seed), "--no-progress")
        assert code == 0 and "wrote 20,000 ITCH 5.0 messages for 4 symbols" in out
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert a.read_bytes() == itch.generate(None, messages=20_000, symbols=4, seed=5)


def test_cli_gen_itch_to_a_fifo_summary_claims_no_size_of_zero(capsys, tmp_path):
    # the size was the output's st_size: "0.0 MB" for the 0.6 MB a FIFO reader got
    import os
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    try:
        code, out, _ = run_cli(capsys, "gen-itch", str(fifo), "--messages", "20000",
                               "--symbols", "4", "--seed", "5", "--no-progress")
    finally:
        reader.join(30)
    assert code == 0
    assert got == [itch.generate(None, messages=20_000, symbols=4, seed=5)]
    line = out.strip()
    assert line.startswith(f"wrote 20,000 ITCH 5.0 messages for 4 symbols (seed 5) to {fifo} in ")
    assert "MB" not in line


def test_cli_gen_itch_dash_writes_stdout_not_a_file_named_dash(tmp_path):
    # every other output takes '-' for stdout; gen-itch wrote a file named '-'
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "matchcore", "gen-itch", "-", "--messages",
                        "20000", "--symbols", "4", "--seed", "5", "--no-progress"],
                       cwd=tmp_path, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout == itch.generate(None, messages=20_000, symbols=4, seed=5)
    assert p.stderr.decode().startswith("wrote 20,000 ITCH 5.0 messages for 4 symbols (seed 5) "
                                        "to stdout in ")
    assert list(tmp_path.iterdir()) == []


def test_itch_generate_stream_taking_part_of_each_write_gets_every_byte():
    # A pipe's write can take part of the bytes and say so in its return value, without an
    # error (its reader gone while the write waited for room; a signal): the rest of the
    # chunk was dropped, and the stream held a day with a hole in it.
    import io

    class Short(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            part = bytes(b[:65536])
            self.data += part
            return len(part)

    out = Short()
    assert itch.generate(out, messages=20_000, symbols=4, seed=5) is out
    assert bytes(out.data) == itch.generate(None, messages=20_000, symbols=4, seed=5)


def test_cli_gen_itch_gz_name_writes_gzip(capsys, tmp_path):
    # a .gz name held plain ITCH: gunzip and other tools refuse such a file
    import gzip

    path = tmp_path / "day.itch.gz"
    code, out, _ = run_cli(capsys, "gen-itch", str(path), "--messages", "20000", "--symbols",
                           "4", "--seed", "5", "--no-progress")
    assert code == 0 and f"to {path}" in out
    raw = path.read_bytes()
    want = itch.generate(None, messages=20_000, symbols=4, seed=5)
    assert raw[:2] == b"\x1f\x8b" and len(raw) < len(want)
    assert gzip.decompress(raw) == want
    assert itch.replay_file(path).stats["messages"] == 20_000


def test_cli_replay_missing_file_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "replay", str(tmp_path / "none.itch"), "--no-progress")
    assert code == 1 and "no such file" in err


def test_cli_replay_lobster_prints_its_summary(capsys, tmp_path):
    pytest.importorskip("matchcore.lobster", reason="matchcore.lobster is not in this build")
    out_csv = tmp_path / "lob.csv"
    code, out, _ = run_cli(capsys, "replay", str(shared(LOBSTER)), "--format", "lobster",
                           "--verify", "--dump-book", str(out_csv), "--no-progress")
    assert code == 0 and "LOBSTER messages" in out and "verify" in out
    rows = list(csv.reader(open(out_csv, newline="")))
    assert rows[0] == ["locate", "symbol", "side", "level", "price", "qty", "orders"]
    assert {r[1] for r in rows[1:]} == {"AAPL"}


def test_cli_replay_native_through_process(capsys, tmp_path):
    native = pytest.importorskip("matchcore.native", reason="matchcore.native is not in this build")
    from matchcore import COMMAND_DTYPE, OrderBook

    cmds = np.zeros(6, dtype=COMMAND_DTYPE)
    cmds["order_id"] = [1, 2, 3, 4, 5, 6]
    cmds["side"] = [1, 1, 0, 0, 1, 0]
    cmds["price"] = [101, 102, 99, 101, 103, 98]
    cmds["qty"] = [5, 5, 5, 2, 1, 7]
    cmds["symbol"] = [0, 0, 0, 0, 1, 1]
    path = tmp_path / "flow.mccmd"
    native.write_commands(path, cmds)
    out_csv = tmp_path / "native.csv"
    code, out, _ = run_cli(capsys, "replay", str(path), "--format", "native", "--dump-book",
                           str(out_csv), "--no-progress")
    assert code == 0 and "replayed 6 native commands" in out and "FILL 1" in out
    rows = list(csv.reader(open(out_csv, newline="")))
    b0 = OrderBook()
    b0.process(cmds[:4])
    bids, asks = b0.depth_orders(10)
    want0 = [["0", "0", "B", str(i), *map(str, r)] for i, r in enumerate(bids.tolist(), 1)] + \
            [["0", "0", "S", str(i), *map(str, r)] for i, r in enumerate(asks.tolist(), 1)]
    assert rows[1:1 + len(want0)] == want0
    assert rows[1 + len(want0):] == [["1", "1", "B", "1", "98", "7", "1"], ["1", "1", "S", "1", "103", "1", "1"]]


def _native_file(tmp_path):
    native = pytest.importorskip("matchcore.native", reason="matchcore.native is not in this build")
    from matchcore import COMMAND_DTYPE

    cmds = np.zeros(3, dtype=COMMAND_DTYPE)
    cmds["order_id"] = [1, 2, 3]
    cmds["side"] = [1, 0, 0]
    cmds["price"] = [101, 99, 101]
    cmds["qty"] = [5, 5, 2]
    path = tmp_path / "flow.mccmd"
    native.write_commands(path, cmds)
    return path


@pytest.mark.parametrize("extra, named", [
    (["--symbols", "5"], "--symbols"), (["--snapshot-every", "3"], "--snapshot-every"),
    (["--snapshot-every-ns", "1000"], "--snapshot-every-ns"),
    (["--infer-lengths"], "--infer-lengths"), (["--verify"], "--verify"),
    (["--plot", "PLOTS"], "--plot"),
    (["--symbols", "5", "--infer-lengths"], "--symbols, --infer-lengths"),
    # --depth sets the snapshot depth, which a native replay has not: --depth 0 passed too
    (["--depth", "3"], "--depth"), (["--depth", "0"], "--depth"),
])
def test_cli_replay_native_refuses_options_it_would_ignore(capsys, tmp_path, extra, named):
    path = _native_file(tmp_path)
    extra = [str(tmp_path / "plots") if a == "PLOTS" else a for a in extra]
    code, out, err = run_cli(capsys, "replay", str(path), "--format", "native", *extra,
                             "--no-progress")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert f"{named} do" in err and "native command files" in err
    assert not (tmp_path / "plots").exists()


@pytest.mark.parametrize("extra", [["--plot", "PLOTS"], ["--symbols", "AAPL"],
                                   ["--snapshot-every", "3"], ["--infer-lengths"],
                                   ["--depth", "3"], ["--depth", "0"]])
def test_cli_replay_lobster_refuses_options_it_would_ignore(capsys, tmp_path, extra):
    path = tmp_path / "AAPL_2012-06-21_34200000_57600000_message_1.csv"
    path.write_text("34200.0,1,1,100,5000000,1\n")
    extra = [str(tmp_path / "plots") if a == "PLOTS" else a for a in extra]
    code, out, err = run_cli(capsys, "replay", str(path), "--format", "lobster", *extra,
                             "--no-progress")
    assert code == 1 and out == "" and f"{extra[0]} does not apply to LOBSTER files" in err
    assert not (tmp_path / "plots").exists()


def test_cli_replay_itch_refuses_verify(capsys, day):
    code, out, err = run_cli(capsys, "replay", str(day), "--verify", "--no-progress")
    assert code == 1 and out == "" and "--verify does not apply to ITCH files" in err


def test_cli_replay_native_file_detected_by_its_magic_without_format(capsys, tmp_path):
    path = _native_file(tmp_path)
    code, out, _ = run_cli(capsys, "replay", str(path), "--no-progress")
    assert code == 0 and "replayed 3 native commands" in out and "FILL 1" in out


@pytest.mark.parametrize("extra", [["--publish", "nats://127.0.0.1:1"], ["--metrics-port", "0"],
                                   ["--publish", "nats://127.0.0.1:1", "--metrics-port", "0"]])
@pytest.mark.parametrize("files, dask", [(2, []), (1, ["--dask", "local"])])
def test_cli_replay_several_files_or_dask_refuse_publish_metrics_before_work(
        capsys, tmp_path, extra, files, dask):
    paths = []
    for i in range(files):
        paths.append(tmp_path / f"d{i}.itch")
        itch.generate(paths[-1], messages=500, symbols=2, seed=i)
    out = tmp_path / "out"
    code = main(["replay", *map(str, paths), *dask, "--out", str(out), *extra])
    cap = capsys.readouterr()
    assert code == 1
    # one option "works", two "work" (one said "--metrics-port ... work")
    opts = [o for o in extra if o.startswith("--")]
    assert f" {'work' if len(opts) > 1 else 'works'} with one ITCH file" in cap.err
    for opt in extra:
        if opt.startswith("--"):
            assert opt in cap.err
    assert "replayed" not in cap.out and not out.exists()      # nothing was replayed


def test_cli_replay_several_files_out_subdirectories_named_as_readme_says(capsys, tmp_path):
    # README: each file's sinks go under DIR/<its name up to the first dot>/, a repeated one
    # numbered -2, -3, ...; summary.json names the directory of each file
    (tmp_path / "b").mkdir()
    paths = [tmp_path / "day.itch", tmp_path / "b" / "day.itch.gz", tmp_path / "x.y.itch"]
    itch.generate(paths[0], messages=500, symbols=2, seed=1)
    itch.generate(paths[2], messages=500, symbols=2, seed=2)
    import gzip
    paths[1].write_bytes(gzip.compress(paths[0].read_bytes()))
    out = tmp_path / "out"
    code = main(["replay", *map(str, paths), "--out", str(out), "--no-progress"])
    capsys.readouterr()
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["day", "day-2", "summary.json", "x"]
    summary = json.loads((out / "summary.json").read_text())
    assert [f["dir"] for f in summary["files"]] == ["day", "day-2", "x"]
    for d in ("day", "day-2", "x"):
        assert sorted(p.name for p in (out / d).iterdir()) == ["snapshots.npy",
                                                                "system_events.npy", "tob.npy",
                                                                "trades.npy"]


def test_cli_replay_and_book_gzip_cut_short_report_no_traceback(capsys, tmp_path):
    import gzip

    raw = shared(AAPL).read_bytes()
    gz = gzip.compress(raw)
    cut = tmp_path / "cut.itch.gz"
    cut.write_bytes(gz[: len(gz) // 2])
    code, out, err = run_cli(capsys, "replay", str(cut), "--no-progress")
    assert code == 0 and "Traceback" not in err
    assert "truncated: the gzip stream ended before its end marker" in out
    assert "unknown order references" in out
    code, out, err = run_cli(capsys, "book", str(cut), "--symbol", "AAPL", "--no-progress")
    assert code == 0 and "AAPL (locate 13)" in out
    magic = tmp_path / "magic.itch.gz"
    magic.write_bytes(gz[:2])
    code, out, err = run_cli(capsys, "replay", str(magic), "--no-progress")
    assert code == 0 and "replayed 0 ITCH 5.0 messages" in out
    assert "truncated: the gzip stream ended before its end marker" in out


def test_cli_replay_gzip_cut_short_on_stdin_and_fifo_summary_like_file(capsys, tmp_path):
    # `zcat`-less use: a cut .gz piped in, or fed through a FIFO, is replayed as the file is
    # (it used to fail on the pipe with "Illegal seek" and block forever on the FIFO)
    import gzip
    import os
    import subprocess
    import sys

    raw = shared(AAPL).read_bytes()
    gz = gzip.compress(raw)
    data = gz[: len(gz) // 2]
    cut = tmp_path / "cut.itch.gz"
    cut.write_bytes(data)
    code, want, _ = run_cli(capsys, "replay", str(cut), "--no-progress")
    assert code == 0

    def summary(text):           # the lines that do not depend on timing or the size on disk
        return [x for x in text.splitlines() if not x.startswith("replayed")]

    cli = [sys.executable, "-m", "matchcore", "replay"]
    p = subprocess.run(cli + ["/dev/stdin", "--format", "itch", "--no-progress"], input=data,
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert summary(p.stdout.decode()) == summary(want)
    assert "truncated: the gzip stream ended before its end marker" in p.stdout.decode()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(cli + [str(fifo), "--format", "itch", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with open(fifo, "wb") as f:
            f.write(data)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err.decode()
    assert summary(out.decode()) == summary(want)


def test_cli_replay_stdin_summary_gives_bytes_read_not_zero_on_disk(capsys, tmp_path):
    # a pipe's size on disk is 0: the summary said "0.0 MB on disk" for every piped replay
    import subprocess
    import sys

    data = itch.generate(None, messages=60_000, symbols=2, seed=13)
    path = tmp_path / "d.itch"
    path.write_bytes(data)
    code, out, _ = run_cli(capsys, "replay", str(path), "--no-progress")
    assert code == 0 and f"({len(data) / 1e6:,.1f} MB on disk)" in out.splitlines()[0]
    p = subprocess.run([sys.executable, "-m", "matchcore", "replay", "/dev/stdin", "--format",
                        "itch", "--no-progress"], input=data, capture_output=True, timeout=120)
    first = p.stdout.decode().splitlines()[0]
    assert p.returncode == 0 and f"({len(data) / 1e6:,.1f} MB read from a pipe)" in first, first


def test_cli_replay_native_dump_book_level_total_beyond_int64_written_exactly(capsys, tmp_path):
    # Level totals are 128-bit by design: two legal orders can make one beyond int64, and the
    # dump must write it, not end in depth_orders()'s OverflowError.
    from matchcore import COMMAND_DTYPE, native
    cmds = np.zeros(3, dtype=COMMAND_DTYPE)
    cmds["order_id"] = [1, 2, 3]
    cmds["side"] = [0, 0, 1]
    cmds["price"] = [100, 100, 105]
    cmds["qty"] = [2**63 - 1, 10, 4]
    path = tmp_path / "big.mccmd"
    native.write_commands(path, cmds)
    out_csv = tmp_path / "big.csv"
    code, out, _ = run_cli(capsys, "replay", str(path), "--format", "native", "--dump-book",
                           str(out_csv), "--no-progress")
    assert code == 0 and "book dump: 2 levels" in out
    rows = list(csv.reader(open(out_csv, newline="")))
    assert rows[1:] == [["0", "0", "B", "1", "100", str(2**63 + 9), "2"],
                        ["0", "0", "S", "1", "105", "4", "1"]]


def test_cli_replay_fifo_with_format_itch_reads_it_all(tmp_path, capsys):
    # `matchcore replay <(zcat day.itch.gz) --format itch`: a pipe cannot tell() its position
    import os
    import threading

    data = itch.generate(None, messages=20_000, symbols=2, seed=12)
    fifo = tmp_path / "feed.itch"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as w:
            w.write(data)

    t = threading.Thread(target=write)
    t.start()
    assert main(["replay", str(fifo), "--format", "itch", "--no-progress"]) == 0
    t.join()
    assert "replayed 20,000 ITCH 5.0 messages" in capsys.readouterr().out


def test_cli_replay_fifo_without_format_refused_before_reading(tmp_path, capsys):
    # detection would eat the first bytes and the replay would count the rest as garbage, exit 0
    import os
    import threading

    data = itch.generate(None, messages=20_000, symbols=2, seed=12)
    fifo = tmp_path / "feed.itch"
    os.mkfifo(fifo)
    done = threading.Event()

    def write():
        try:
            with open(fifo, "wb") as w:     # blocks until a reader opens the FIFO
                w.write(data)
        except BrokenPipeError:
            pass
        done.set()

    t = threading.Thread(target=write, daemon=True)
    t.start()
    try:
        assert main(["replay", str(fifo), "--no-progress"]) == 1
        assert "give --format" in capsys.readouterr().err
    finally:
        if not done.is_set():               # nobody opened it: let the writer go
            with open(fifo, "rb") as r:
                r.read()
        t.join(10)


def _subst(arg: str, subs: dict) -> str:
    for k, v in subs.items():
        arg = arg.replace(k, v)
    return arg


@pytest.mark.parametrize("argv, message", [
    (["replay", "DAY", "--dump-book", "TMP"], "--dump-book TMP: is a directory, not a file"),
    (["replay", "DAY", "--out", "DAY"], "--out DAY: exists and is not a directory"),
    (["replay", "DAY", "--plot", "DAY"], "--plot DAY: exists and is not a directory"),
    (["replay", "DAY", "TMP/other.itch", "--out", "DAY"], "--out DAY: exists and is not a directory"),
    (["book", "DAY", "--symbol", "AAPL", "--plot", "TMP"], "--plot TMP: is a directory, not a file"),
    # a file in a directory that does not exist, or under a file
    (["replay", "DAY", "--dump-book", "TMP/no/b.csv"], "--dump-book TMP/no/b.csv: no directory TMP/no"),
    (["replay", "DAY", "--dump-book", "DAY/b.csv"], "--dump-book DAY/b.csv: DAY is not a directory"),
    (["replay", "DAY", "--out", "DAY/sub/o"], "--out DAY/sub/o: DAY is not a directory"),
    (["book", "DAY", "--symbol", "AAPL", "--plot", "TMP/no/d.png"],
     "--plot TMP/no/d.png: no directory TMP/no"),
    # an empty path was taken for the option not given: nothing written, exit status 0
    (["replay", "DAY", "--dump-book", ""], "--dump-book: an empty path"),
    (["replay", "DAY", "--out", ""], "--out: an empty path"),
    (["replay", "DAY", "--plot", " "], "--plot: an empty path"),
    (["book", "DAY", "--symbol", "AAPL", "--plot", ""], "--plot: an empty path"),
])
def test_cli_output_path_of_the_wrong_kind_refused_before_the_replay(capsys, day, tmp_path, argv,
                                                                      message):
    # found only after the whole file had been replayed and its summary printed
    subs = {"DAY": str(day), "TMP": str(tmp_path)}
    code, out, err = run_cli(capsys, *[_subst(a, subs) for a in argv])
    for k, v in subs.items():
        message = message.replace(k, v)
    assert code == 1 and out == ""
    assert err.strip() == f"matchcore {argv[0]}: error: {message}"


@pytest.mark.parametrize("argv, message", [
    (["replay", ""], "file: an empty path"),
    (["replay", "DAY", " "], "file: an empty path"),
    (["replay", "DAY", "", "--dask", "local"], "file: an empty path"),
    (["book", "", "--symbol", "AAPL"], "file: an empty path"),
    (["gen-itch", "", "--messages", "1000"], "out: an empty path"),
])
def test_cli_empty_file_argument_refused_by_name_not_taken_for_the_directory(
        capsys, day, tmp_path, monkeypatch, argv, message):
    # a script's `matchcore replay "$DAY"` with DAY unset said "Is a directory: '.'", of a
    # directory nobody had named
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *[_subst(a, {"DAY": str(day)}) for a in argv])
    assert code == 1 and out == ""
    assert err == f"matchcore {argv[0]}: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, what", [
    (["replay", "IN", "--dump-book", "OUT"], "--dump-book"),
    (["replay", "OTHER", "IN", "--dump-book", "OUT"], "--dump-book"),
    (["book", "IN", "--symbol", "AAPL", "--plot", "OUT"], "--plot"),
    (["replay", "MSG", "--dump-book", "BOOK"], "--dump-book"),
])
@pytest.mark.parametrize("link", [False, True])
def test_cli_output_file_that_is_an_input_refused_input_left_whole(capsys, day, tmp_path, argv,
                                                                    what, link):
    # the CSV (or PNG) was renamed over the market data file it was made from: the input was
    # gone, exit status 0
    src = tmp_path / "in.itch"
    src.write_bytes(day.read_bytes())
    msg = tmp_path / "x_message_1.csv"
    msg.write_text("34200.1,1,1,100,1000000,1\n")
    book = tmp_path / "x_orderbook_1.csv"
    book.write_text("1000100,100,1000000,100\n")
    target = {"OUT": src, "BOOK": book}[argv[-1]]
    out = target
    if link:
        out = tmp_path / "link"
        out.symlink_to(target)
    before = target.read_bytes()
    subs = {"IN": str(src), "OTHER": str(day), "MSG": str(msg), "OUT": str(out),
            "BOOK": str(out)}
    code, stdout, err = run_cli(capsys, *[subs.get(a, a) for a in argv])
    assert code == 1 and stdout == ""
    assert err.strip() == (f"matchcore {argv[0]}: error: {what} {out}: is the input file "
                           f"{target}, which it would replace")
    assert target.read_bytes() == before


@pytest.mark.parametrize("argv", [["replay", "-", "--dump-book", "IN"],
                                  ["book", "-", "--symbol", "AAPL", "--plot", "IN.png"]])
def test_cli_output_file_that_is_stdins_file_refused_input_left_whole(tmp_path, day, argv):
    # `matchcore replay - --dump-book day.itch < day.itch`: the file stdin reads was replaced
    import subprocess
    import sys

    src = tmp_path / ("in.png" if argv[0] == "book" else "in.itch")
    src.write_bytes(day.read_bytes())
    argv = [str(src) if a in ("IN", "IN.png") else a for a in argv]
    with open(src, "rb") as f:
        p = subprocess.run([sys.executable, "-m", "matchcore", *argv, "--no-progress"], stdin=f,
                           capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and p.stdout == "", p.stderr
    option = argv[-2]
    assert p.stderr.strip() == (f"matchcore {argv[0]}: error: {option} {src}: is the file "
                                f"stdin reads, which it would replace")
    assert src.read_bytes() == day.read_bytes()


@pytest.mark.parametrize("extra, message", [
    (["--publish-kinds", "tob"], "--publish-kinds needs --publish"),
    (["--stream", "S", "--subject-prefix", "p"], "--stream, --subject-prefix need --publish"),
    (["--metrics-hold", "5"], "--metrics-hold needs --metrics-port"),
])
@pytest.mark.parametrize("files", [1, 2])
def test_cli_replay_publish_or_metrics_option_without_its_switch_refused(capsys, day, extra,
                                                                         message, files):
    # ignored before: the replay ran and exited 0 without publishing or holding anything
    code, out, err = run_cli(capsys, "replay", *copies(day, files), *extra)
    assert code == 1 and out == ""
    assert err.strip() == f"matchcore replay: error: {message}"


@pytest.mark.parametrize("files, extra, message", [
    (1, ["--plot-top", "2"], "--plot-top needs --plot"),
    (2, ["--plot-top", "2"], "--plot-top needs --plot"),
    (2, ["--plot", "PLOTS", "--plot-top", "0"], "--plot-top must be >= 1, got 0"),
])
def test_cli_replay_plot_top_checked_before_any_replay(capsys, day, tmp_path, files, extra,
                                                       message):
    # without --plot it was ignored (exit 0); with several files a bad value failed only after
    # every file had been replayed
    code, out, err = run_cli(capsys, "replay", *copies(day, files),
                             *[str(tmp_path / "plots") if a == "PLOTS" else a for a in extra])
    assert code == 1 and out == ""
    assert err.strip() == f"matchcore replay: error: {message}"
    assert not (tmp_path / "plots").exists()


def test_cli_replay_lobster_in_a_directory_named_message_finds_its_orderbook(capsys, tmp_path):
    # the "_message_" of the directory's name was replaced too: --verify found no orderbook file
    d = tmp_path / "x_message_y"
    d.mkdir()
    msg = d / LOBSTER.name
    msg.write_bytes(shared(LOBSTER).read_bytes())
    ob = LOBSTER.with_name(LOBSTER.name.replace("_message_", "_orderbook_"))
    (d / ob.name).write_bytes(ob.read_bytes())
    code, out, err = run_cli(capsys, "replay", str(msg), "--format", "lobster", "--verify")
    assert code == 0 and err == "" and "verify" in out and "note: no orderbook" not in out


def test_cli_replay_lobster_name_without_message_says_so_not_itself(capsys, tmp_path):
    # the orderbook file named was the message file itself ("no orderbook file plain.csv")
    msg = tmp_path / "plain.csv"
    msg.write_bytes(shared(LOBSTER).read_bytes())
    code, out, _ = run_cli(capsys, "replay", str(msg), "--format", "lobster")
    assert code == 0
    assert ("note: no orderbook file: the name plain.csv has no '_message_' to replace with "
            "'_orderbook_': the book started empty") in out
    code, out, err = run_cli(capsys, "replay", str(msg), "--format", "lobster", "--verify")
    assert code == 1 and out == "" and "has no '_message_'" in err


def test_cli_replay_lobster_missing_orderbook_named_by_the_path_looked_at(capsys, tmp_path,
                                                                         monkeypatch):
    # the note named the orderbook file by its name alone: for data/X_message_1.csv it said
    # "no orderbook file X_orderbook_1.csv", a file that may well be in the current directory,
    # not where the replay looked for it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    msg = Path("data") / "X_2012-06-21_34200000_57600000_message_1.csv"
    msg.write_text("34200.001,1,1,100,1000000,1\n34200.002,1,2,50,1001000,-1\n")
    ob = msg.with_name(msg.name.replace("_message_", "_orderbook_"))
    Path(ob.name).write_text("1001000,50,1000000,100\n")     # here, not beside it
    code, out, err = run_cli(capsys, "replay", str(msg), "--no-progress")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == f"note: no orderbook file {ob}: the book started empty"
    code, out, err = run_cli(capsys, "replay", str(msg), "--verify")
    assert (code, out) == (1, "")
    assert err == (f"matchcore replay: error: --verify needs the orderbook file (no orderbook "
                   f"file {ob})\n")


@pytest.mark.parametrize("make", ["directory", "dangling link"])
def test_cli_replay_lobster_orderbook_path_that_is_no_file_refused_naming_it(capsys, tmp_path,
                                                                            make):
    # a directory at the orderbook name failed with a bare "[Errno 21] Is a directory", and a
    # symbolic link to a file that is gone was "no orderbook file ...: the book started empty",
    # a replay of the wrong book exiting 0 while the link said which orderbook was meant
    msg = tmp_path / LOBSTER.name
    msg.write_bytes(b"".join(shared(LOBSTER).read_bytes().splitlines(keepends=True)[:300]))
    ob = tmp_path / LOBSTER.name.replace("_message_", "_orderbook_")
    if make == "directory":
        ob.mkdir()
        why = "is a directory"
    else:
        ob.symlink_to(tmp_path / "gone.csv")
        why = f"is a symbolic link to {tmp_path / 'gone.csv'}, which does not exist"
    for extra in ([], ["--verify"]):
        code, out, err = run_cli(capsys, "replay", str(msg), "--format", "lobster", *extra)
        assert code == 1 and out == "", (extra, out)
        assert err.strip() == f"matchcore replay: error: the orderbook file {ob} {why}"


def test_cli_replay_several_files_with_a_native_one_refused_before_any_replay(capsys, day,
                                                                              tmp_path):
    # the native file was read as ITCH: "0 messages ... truncated yes", exit 0
    import matchcore as mc
    from matchcore.native import write_commands

    cmds = np.zeros(2, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = [1, 2]
    cmds["price"] = 100
    cmds["qty"] = 5
    native = tmp_path / "flow.mccmd"
    write_commands(native, cmds)
    code, out, err = run_cli(capsys, "replay", str(day), str(native))
    assert code == 1 and out == ""
    assert err.strip() == (f"matchcore replay: error: {native} is a native command file: several "
                           "files or --dask take ITCH or DBN files (replay it by itself)")


def test_cli_replay_several_files_with_a_fifo_and_no_format_refused(capsys, day, tmp_path):
    # detection read the FIFO's first bytes and the replay lost them: a shifted stream with
    # fewer messages and unknown references, exit 0
    import os

    fifo = tmp_path / "feed.itch"
    os.mkfifo(fifo)
    code, out, err = run_cli(capsys, "replay", str(day), str(fifo))
    assert code == 1 and out == ""
    assert err.strip() == (f"matchcore replay: error: {fifo} is a pipe or device: its format "
                           "cannot be detected without consuming it; give --format")


def test_cli_exit_1_errors_one_line_saying_error(capsys, day):
    # exit status 1 is "an error, said in one line on stderr (matchcore CMD: error: ...)"
    code, _, err = run_cli(capsys, "book", str(day), "--symbol", "NOPE", "--no-progress")
    assert code == 1 and err.startswith("matchcore book: error: no symbol 'NOPE'")
    assert err.count("\n") == 1
    pytest.importorskip("nats", reason="nats-py not installed: pip install 'matchcore[nats]'")
    with socket.socket() as s:                      # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run_cli(capsys, "subscribe", f"nats://127.0.0.1:{port}", "--timeout", "2")
    assert code == 1
    assert err.startswith(f"matchcore subscribe: error: cannot read MATCHCORE at "
                          f"nats://127.0.0.1:{port}: ") and err.count("\n") == 1


@pytest.mark.parametrize("gz", [False, True])
def test_replay_file_fifo_replays_messages_as_they_arrive(tmp_path, gz):
    # From a pipe or FIFO a fill waited for a whole 4 MiB chunk or the end of the stream: the
    # first messages of a slow writer were replayed only when it closed
    import gzip

    raw = itch.generate(None, messages=20_000, symbols=2, seed=5)
    data = gzip.compress(raw) if gz else raw
    fifo = tmp_path / "live.itch"
    with slow_fifo_writer(fifo, data[: len(data) // 2], data[len(data) // 2:], 30) as (seen, early):

        def on_chunk(r):
            if r.stats["messages"] > 0:
                seen.set()

        r = itch.replay_file(fifo, on_chunk=on_chunk)
    assert early == [True]                   # the replay saw messages before the rest came
    want = itch.replay_file(_write(tmp_path / "whole.itch", raw))
    assert r.stats["messages"] == want.stats["messages"] == 20_000
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in want.books.items()}


def _write(path, data):
    path.write_bytes(data)
    return path


def test_cli_replay_native_empty_file_events_npy_has_event_dtype(capsys, tmp_path):
    native = pytest.importorskip("matchcore.native", reason="matchcore.native is not in this build")
    from matchcore import COMMAND_DTYPE, EVENT_DTYPE

    path = tmp_path / "empty.mccmd"
    native.write_commands(path, np.empty(0, dtype=COMMAND_DTYPE))
    code, out, _ = run_cli(capsys, "replay", str(path), "--out", str(tmp_path / "o"),
                           "--no-progress")
    assert code == 0 and "replayed 0 native commands" in out
    ev = np.load(tmp_path / "o" / "events.npy")
    assert ev.dtype == EVENT_DTYPE and len(ev) == 0


def test_cli_replay_files_no_replay_takes_refused_naming_what_they_are(capsys, tmp_path, day):
    # Each was replayed as ITCH without --format: zero messages (a bad length prefix, or
    # nothing at all), exit status 0.
    import gzip

    import matchcore.native as native
    from matchcore import COMMAND_DTYPE
    from matchcore.cluster.dask import detect_format

    cmds = tmp_path / "flow.mccmd"
    c = np.zeros(10, COMMAND_DTYPE)
    c["order_id"], c["price"], c["qty"] = np.arange(1, 11), 100, 1
    native.write_commands(cmds, c)
    lobster_gz = tmp_path / "msg.csv.gz"
    lobster_gz.write_bytes(gzip.compress(shared(LOBSTER).read_bytes()))
    cases = {
        tmp_path / "empty.itch": (b"", "an empty file: nothing to replay"),
        tmp_path / "empty.itch.gz": (gzip.compress(b""), "a gzip stream of no bytes"),
        tmp_path / "flow.mccmd.gz": (gzip.compress(cmds.read_bytes()),
                                     "a gzip'd native command file: native command files are "
                                     "read uncompressed"),
        lobster_gz: (None, "a gzip'd LOBSTER message CSV file: LOBSTER message CSV files are "
                           "read uncompressed"),
        tmp_path / "notes.txt": (b"symbol,price\nAAPL,100\n", "a text file that is not a "
                                 "LOBSTER message CSV"),
    }
    for path, (data, why) in cases.items():
        if data is not None:
            path.write_bytes(data)
        code, out, err = run_cli(capsys, "replay", str(path), "--no-progress")
        assert code == 1 and out == "" and err.startswith(f"matchcore replay: error: {path}: "), err
        assert why in err
        code, out, err = run_cli(capsys, "replay", str(day), str(path), "--no-progress")
        assert code == 1 and why in err and "replayed" not in out
        with pytest.raises(ValueError, match=why):
            detect_format(path)
    # with the format forced, the native and LOBSTER readers say the file is gzip'd
    for path, fmt in ((tmp_path / "flow.mccmd.gz", "native"), (lobster_gz, "lobster")):
        code, out, err = run_cli(capsys, "replay", str(path), "--format", fmt, "--no-progress")
        assert code == 1 and "a gzip'd file" in err and "decompress it first" in err, err
    # the ITCH reader refuses what it can tell is not ITCH
    for path, what in ((cmds, "a native command file"),
                       (tmp_path / "flow.mccmd.gz", "a gzip'd native command file"),
                       (shared(LOBSTER), "a text file"), (lobster_gz, "a gzip'd text file")):
        with pytest.raises(ValueError, match=f"{what}.*, not ITCH 5.0"):
            itch.replay_file(path)
        code, _, err = run_cli(capsys, "replay", str(path), "--format", "itch", "--no-progress")
        assert code == 1 and "not ITCH 5.0" in err


def test_cli_replay_lobster_message_csv_without_format_replayed_as_lobster(capsys):
    # it was replayed as ITCH: zero messages, a bad length prefix, exit status 0
    path = str(shared(LOBSTER))
    code, out, err = run_cli(capsys, "replay", path, "--no-progress")
    code2, out2, _ = run_cli(capsys, "replay", path, "--format", "lobster", "--no-progress")
    assert code == code2 == 0 and err == ""
    assert out.splitlines()[0].split(" in ")[0] == "999 LOBSTER messages"
    assert out.splitlines()[1:] == out2.splitlines()[1:]


def test_cli_replay_file_compressed_twice_refused_naming_it(capsys, day, tmp_path):
    # a .gz.gz or .zst.gz file: the gzip layer was taken off and the rest read as ITCH, zero
    # messages and one bad length prefix, exit status 0
    import gzip

    zstd = pytest.importorskip("zstandard")
    data = day.read_bytes()
    twice = {"gz.gz": gzip.compress(gzip.compress(data)),
             "zst.gz": gzip.compress(zstd.ZstdCompressor().compress(data))}
    for ext, blob in twice.items():
        p = tmp_path / f"day.itch.{ext}"
        p.write_bytes(blob)
        kind = ext.split(".")[0].replace("gz", "gzip").replace("zst", "zstd")
        for fmt in ([], ["--format", "itch"]):
            assert main(["replay", str(p), "--no-progress", *fmt]) == 1
            err = capsys.readouterr().err
            assert f"a gzip'd file holding a {kind}-compressed stream (compressed twice)" in err
        for read in (itch.replay_file, itch.decode):
            with pytest.raises(ValueError, match=r"compressed twice\), not ITCH 5\.0"):
                read(p)
    from matchcore.moldudp import MoldUDP64Publisher

    with pytest.raises(ValueError, match="the source buffer: a gzip-compressed stream, not ITCH"):
        MoldUDP64Publisher(gzip.compress(data), 9)
    assert main(["replay", str(day), "--no-progress"]) == 0       # once compressed: replayed


def test_cli_replay_lobster_empty_symbols_refused_as_not_applying(capsys, tmp_path):
    # --symbols "" was taken as not given: ignored without a word, where it applies it is
    # refused for naming nothing
    path = tmp_path / "AAPL_2012-06-21_34200000_57600000_message_1.csv"
    path.write_text("34200.0,1,1,100,5000000,1\n")
    code, out, err = run_cli(capsys, "replay", str(path), "--format", "lobster",
                             "--symbols", "", "--no-progress")
    assert code == 1 and out == "" and "--symbols does not apply to LOBSTER files" in err


@pytest.mark.parametrize("gz", [False, True])
def test_replay_file_fifo_first_small_write_replayed_before_the_next(tmp_path, gz):
    # A writer's first few KB waited for its next write: the plain reader's readinto1 copied
    # the bytes at hand and then read the FIFO again for the rest of the chunk; the gzip one
    # read again before the bytes its format check had inflated were replayed.
    import zlib

    raw = itch.generate(None, messages=2_000, symbols=2, seed=5)
    first, rest = raw[:3000], raw[3000:]
    if gz:
        c = zlib.compressobj(wbits=31)
        first, rest = c.compress(first) + c.flush(zlib.Z_SYNC_FLUSH), c.compress(rest) + c.flush()
    with slow_fifo_writer(tmp_path / "live.itch", first, rest) as (seen, early):

        def on_chunk(r):
            if r.stats["messages"] > 0:
                seen.set()

        r = itch.replay_file(tmp_path / "live.itch", on_chunk=on_chunk)
    assert early == [True]                   # the first write's messages were replayed
    want = itch.replay_file(_write(tmp_path / "whole.itch", raw))
    assert r.stats["messages"] == want.stats["messages"] == 2_000
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in want.books.items()}


@pytest.mark.parametrize("fmt", ["itch", "dbn"])
def test_cli_replay_compressed_stdin_summary_gives_compressed_bytes_read(tmp_path, fmt):
    # From a pipe the summary said "N MB read from a pipe" with N the decompressed bytes (and
    # replay_file's progress, documented as compressed bytes for gzip, gave them too)
    import gzip
    import subprocess
    import sys

    if fmt == "itch":
        data = gzip.compress(itch.generate(None, messages=60_000, symbols=2, seed=13))
        path = tmp_path / "d.itch.gz"
        path.write_bytes(data)
        seen = []
        itch.replay_file(path, progress=seen.append)
        with open(path, "rb") as f:
            fifo = tmp_path / "f.itch.gz"
            import os
            import threading

            os.mkfifo(fifo)
            t = threading.Thread(target=lambda: fifo.write_bytes(f.read()))
            t.start()
            piped = []
            itch.replay_file(fifo, progress=piped.append)
            t.join()
        assert seen[-1] == piped[-1] == len(data)
    else:
        pytest.importorskip("databento_dbn")
        zstandard = pytest.importorskip("zstandard")
        from matchcore.feeds.dbn_gen import generate_mbo

        data = zstandard.ZstdCompressor().compress(generate_mbo(None, records=60_000, seed=3))
    p = subprocess.run([sys.executable, "-m", "matchcore", "replay", "/dev/stdin", "--format",
                        fmt, "--no-progress"], input=data, capture_output=True, timeout=120)
    first = p.stdout.decode().splitlines()[0]
    # "(N MB ..." for ITCH, "...; N MB ..." for DBN
    assert p.returncode == 0 and f"{len(data) / 1e6:,.1f} MB read from a pipe)" in first, first


def test_cli_replay_summary_lines_are_those_the_readme_example_shows(capsys, day):
    # the README's example summary lacked the counter the CLI had gained since
    # (the invalid trades): every summary line but the timing, numbers aside
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ matchcore replay day.itch --dump-book book.csv\n", 1)[1]
    shown = block.split("\n$ ", 1)[0].splitlines()
    code, out, _ = run_cli(capsys, "replay", str(day), "--no-progress")
    assert code == 0

    def shape(line):
        return re.sub(r"\b\d[\d,.]*", "N", line)

    for prefix in ("unknown order references", "unknown message types", "truncated"):
        want = next(x for x in shown if x.startswith(prefix))
        got = next(x for x in out.splitlines() if x.startswith(prefix))
        assert shape(got) == shape(want), (got, want)


def test_cli_replay_records_dropped_out_of_memory_reported_exit_1(tmp_path, day):
    # Snapshot records the sink could not allocate were counted in stats["out_of_memory"]
    # and nowhere else: the summary said nothing, --out wrote an empty snapshots.npy, exit 0.
    p = run_cli_in_2gib("replay", day, "--snapshot-every", "10000", "--depth", "44739242",
                        "--no-progress", "--out", tmp_path / "o")
    assert p.returncode == 1, p.stderr
    assert "replayed 30,000 ITCH 5.0 messages" in p.stdout
    assert p.stderr.startswith("matchcore replay: error: out of memory: ")
    assert "records or orders dropped" in p.stderr and p.stderr.count("\n") == 1


def test_cli_replay_several_files_records_dropped_out_of_memory_reported_exit_1(tmp_path, day):
    # several files (the path --dask shares): the out-of-memory drops of each file's sinks
    # were in summary.json's stats only; the lines per file said nothing and exit status was 0
    import shutil

    other = tmp_path / "other.itch"
    shutil.copy(day, other)
    p = run_cli_in_2gib("replay", day, other, "--snapshot-every", "10000", "--depth",
                        "44739242", "--no-progress", "--out", tmp_path / "o")
    assert p.returncode == 1, p.stderr
    assert "replayed 2 files in this process" in p.stdout
    assert p.stderr.startswith("matchcore replay: error: out of memory: ")
    assert "records or orders dropped" in p.stderr and p.stderr.count("\n") == 1
    assert f" in {day}, {other};" in p.stderr


def test_cli_replay_native_file_as_itch_hint_names_format_native(capsys, tmp_path):
    # the hint named only matchcore.native.replay_commands: the command-line user needs
    # --format native (as the DBN and LOBSTER hints name both)
    from matchcore import COMMAND_DTYPE
    from matchcore.native import write_commands

    p = tmp_path / "c.mccmd"
    write_commands(p, np.zeros(3, COMMAND_DTYPE))
    code, out, err = run_cli(capsys, "replay", str(p), "--format", "itch", "--no-progress")
    assert code == 1 and out == ""
    assert err.rstrip().endswith("replay it with matchcore.native.replay_commands (matchcore "
                                 "replay --format native)"), err


@pytest.mark.parametrize("files", [1, 2])
def test_cli_replay_depth_without_a_snapshot_cadence_refused_before_the_replay(capsys, day,
                                                                               files, tmp_path):
    # --depth is the snapshots' depth: without --snapshot-every(-ns) no snapshot is taken, and
    # the option was accepted and did nothing a user could see (an empty snapshots.npy)
    code, out, err = run_cli(capsys, "replay", *copies(day, files), "--depth", "5",
                             "--no-progress")
    assert code == 1 and out == ""
    assert "--depth needs --snapshot-every or --snapshot-every-ns" in err
    code, out, _ = run_cli(capsys, "replay", str(day), "--depth", "5", "--snapshot-every",
                           "10000", "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 0 and "replayed" in out


def test_cli_replay_itch_cut_mid_message_refused_as_unframed_never_as_text(capsys, tmp_path):
    # `tail -c +N day.itch` starting inside a stock name or other ASCII field: the ITCH reader
    # called the bytes "a text file" and pointed to the LOBSTER replay, about one start offset
    # in six of the real NASDAQ file
    import gzip

    data = shared(AAPL).read_bytes()[:20_000]
    cut = tmp_path / "cut.itch"
    refused = 0
    for off in range(1, 400):
        cut.write_bytes(data[off:])
        try:
            itch.decode(cut)
        except ValueError as e:
            refused += 1
            msg = str(e)
            assert "text" not in msg and "LOBSTER" not in msg, (off, msg)
            assert "not ITCH 5.0 framing" in msg and "length prefix" in msg, (off, msg)
    assert refused
    off = data.index(b"AAPL    ")              # the first bytes are printable ASCII
    cut.write_bytes(data[off:])
    cutgz = tmp_path / "cut.itch.gz"
    cutgz.write_bytes(gzip.compress(data[off:]))
    for path in (cut, cutgz):
        with pytest.raises(ValueError, match="not ITCH 5.0 framing") as e:
            itch.replay_file(path)
        assert "text" not in str(e.value)
        for fmt in ([], ["--format", "itch"]):
            code, out, err = run_cli(capsys, "replay", str(path), "--no-progress", *fmt)
            assert code == 1 and out == "" and "not ITCH 5.0 framing" in err, err
            assert "text" not in err and "LOBSTER" not in err, err
        code, out, err = run_cli(capsys, "book", str(path), "--symbol", "AAPL", "--no-progress")
        assert code == 1 and "not ITCH 5.0 framing" in err and "text" not in err, err
    # a text file is still called one
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"symbol,price,size,venue,comment\n" * 8)
    with pytest.raises(ValueError, match="a text file"):
        itch.decode(notes)


def test_cli_replay_and_book_dash_read_stdin_format_detected_as_for_files(capsys, tmp_path):
    # `zcat day.itch.gz | matchcore replay -` said "no such file: -"
    import gzip
    import subprocess
    import sys

    data = itch.generate(None, messages=20_000, symbols=3, seed=5)
    path = tmp_path / "d.itch"
    path.write_bytes(data)
    gz = tmp_path / "d.itch.gz"
    gz.write_bytes(gzip.compress(data))

    def summary(text):           # the lines that do not depend on timing or the size on disk
        return [x for x in text.splitlines() if not x.startswith("replayed")]

    cli = [sys.executable, "-m", "matchcore"]
    code, want, _ = run_cli(capsys, "replay", str(path), "--no-progress")
    code2, want_book, _ = run_cli(capsys, "book", str(path), "--symbol", "MSFT", "--no-progress")
    assert code == code2 == 0
    for blob in (data, gz.read_bytes()):
        p = subprocess.run(cli + ["replay", "-", "--no-progress"], input=blob,
                           capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr.decode()
        assert summary(p.stdout.decode()) == summary(want)
        assert "read from a pipe" in p.stdout.decode().splitlines()[0]
        p = subprocess.run(cli + ["book", "-", "--symbol", "MSFT", "--no-progress"], input=blob,
                           capture_output=True, timeout=120)
        assert p.returncode == 0 and p.stdout.decode() == want_book, p.stderr.decode()
    with open(gz, "rb") as f:                       # redirected from a file: `< d.itch.gz`
        p = subprocess.run(cli + ["replay", "-", "--no-progress"], stdin=f,
                           capture_output=True, timeout=120)
    assert p.returncode == 0 and summary(p.stdout.decode()) == summary(want)
    # where stdin cannot work: refused naming it, before any replay
    for argv, blob, words in (
            (["replay", "-", str(path)], data, "- (stdin) is replayed alone"),
            (["replay", "-"], shared(LOBSTER).read_bytes(), "holds a LOBSTER file"),
            (["replay", "-", "--format", "native"], data, "holds a native command file"),
            (["replay", "-"], b"", "<stdin>: an empty stream")):
        p = subprocess.run(cli + argv + ["--no-progress"], input=blob, capture_output=True,
                           timeout=120)
        err = p.stderr.decode()
        assert p.returncode == 1 and p.stdout == b"", err
        assert err.startswith("matchcore replay: error: ") and words in err, err


def test_cli_replay_dash_reads_dbn_from_stdin_plain_or_compressed(capsys, tmp_path):
    import gzip
    import subprocess
    import sys

    pytest.importorskip("databento_dbn")
    zstandard = pytest.importorskip("zstandard")
    from matchcore.feeds.dbn_gen import generate_mbo

    data = generate_mbo(None, records=5_000, seed=3)
    path = tmp_path / "m.dbn"
    path.write_bytes(data)
    code, want, _ = run_cli(capsys, "replay", str(path), "--no-progress")
    assert code == 0
    for blob in (data, zstandard.ZstdCompressor().compress(data), gzip.compress(data)):
        p = subprocess.run([sys.executable, "-m", "matchcore", "replay", "-", "--no-progress"],
                           input=blob, capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr.decode()
        assert p.stdout.decode().splitlines()[1:] == want.splitlines()[1:]


def test_cli_replay_several_files_with_one_cut_mid_message_refused_before_any(capsys, tmp_path,
                                                                              monkeypatch, day):
    # refused by the ITCH reader only at its turn: the files before it were replayed first
    from matchcore.cluster.dask import detect_format

    cut = tmp_path / "cut.itch"
    data = shared(AAPL).read_bytes()
    cut.write_bytes(data[data.index(b"AAPL    "):])
    with pytest.raises(ValueError, match="cut.itch: not ITCH 5.0 framing"):
        detect_format(cut)
    replayed = []
    real = itch.replay_file
    monkeypatch.setattr(itch, "replay_file", lambda *a, **k: replayed.append(a) or real(*a, **k))
    code, out, err = run_cli(capsys, "replay", str(day), str(cut), "--no-progress")
    assert code == 1 and out == "" and "not ITCH 5.0 framing" in err and replayed == []


def test_cli_replay_native_several_symbols_events_npy_carry_their_symbol(capsys, tmp_path):
    # One book per symbol: the events of symbols 1 and 2 (same ids in both) all said symbol 0,
    # so events.npy could not tell one symbol's fills from the other's.
    native = pytest.importorskip("matchcore.native", reason="matchcore.native is not in this build")
    from matchcore import COMMAND_DTYPE, EventKind

    cmds = np.zeros(4, COMMAND_DTYPE)
    cmds["symbol"] = [2, 1, 2, 1]
    cmds["order_id"] = [1, 1, 2, 2]
    cmds["side"] = [1, 1, 0, 0]
    cmds["price"] = 100
    cmds["qty"] = [5, 6, 2, 3]
    cmds["ts_ns"] = [10, 20, 30, 40]
    path = tmp_path / "two.mccmd"
    native.write_commands(path, cmds)
    code, out, _ = run_cli(capsys, "replay", str(path), "--out", str(tmp_path / "o"),
                           "--no-progress")
    assert code == 0 and "books: 2: 1, 2; open orders: 2" in out
    ev = np.load(tmp_path / "o" / "events.npy")
    got = [(int(e["symbol"]), EventKind(e["kind"]).name, int(e["order_id"]), int(e["qty"]))
           for e in ev]
    assert got == [(1, "ACCEPTED", 1, 6), (1, "ACCEPTED", 2, 3), (1, "FILL", 2, 3),
                   (2, "ACCEPTED", 1, 5), (2, "ACCEPTED", 2, 2), (2, "FILL", 2, 2)]


def test_cli_replay_native_many_symbols_summary_names_first_ten(capsys, tmp_path):
    # every symbol was listed: a file of 5,000 symbols printed a books line of 30,000
    # characters, where the ITCH and DBN summaries name ten and count the rest
    native = pytest.importorskip("matchcore.native", reason="matchcore.native is not in this build")
    from matchcore import COMMAND_DTYPE

    cmds = np.zeros(25, COMMAND_DTYPE)
    cmds["symbol"] = np.arange(25)[::-1]
    cmds["order_id"] = 1
    cmds["price"] = 100
    cmds["qty"] = 1
    path = tmp_path / "many.mccmd"
    native.write_commands(path, cmds)
    code, out, _ = run_cli(capsys, "replay", str(path), "--no-progress")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("books:"))
    assert line == "books: 25: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 (+15 more); open orders: 25"


class _CountedReads(np.ndarray):
    """A command array that counts the selections made from it (indexing it by a field, a
    mask or an index array)."""

    reads = 0

    def __getitem__(self, key):
        type(self).reads += 1
        return super().__getitem__(key)


def test_cli_replay_native_records_selected_once_not_once_per_symbol(capsys, tmp_path,
                                                                      monkeypatch):
    # Each symbol's records were selected by a pass over the whole file (its symbol column
    # compared, then a mask applied): quadratic in the symbols, 44 s of selection for a file of
    # 5,000 symbols and 2,000,000 records. The books and events stay those of a book per symbol.
    import matchcore.native as native
    from matchcore import COMMAND_DTYPE, OrderBook

    rng = np.random.default_rng(3)
    n = 3000
    cmds = np.zeros(n, COMMAND_DTYPE)
    cmds["symbol"] = rng.integers(0, 60, n)
    cmds["order_id"] = rng.integers(1, 40, n)
    cmds["kind"] = rng.choice([0, 0, 2, 3], n)
    cmds["side"] = rng.integers(0, 2, n)
    cmds["price"] = rng.integers(95, 105, n)
    cmds["qty"] = rng.integers(1, 9, n)
    cmds["ts_ns"] = np.arange(n)
    path = tmp_path / "many.mccmd"
    native.write_commands(path, cmds)
    read = native._read_mapped

    def counted(p, committed=False):
        hdr, arr = read(p, committed)
        return hdr, arr.view(_CountedReads)

    monkeypatch.setattr(native, "_read_mapped", counted)
    monkeypatch.setattr(_CountedReads, "reads", 0)
    code, out, _ = run_cli(capsys, "replay", str(path), "--out", str(tmp_path / "o"),
                           "--dump-book", str(tmp_path / "b.csv"), "--no-progress")
    assert code == 0 and "books: 60: " in out
    assert _CountedReads.reads <= 4, _CountedReads.reads
    want, rows = [], []
    for s in range(60):
        book = OrderBook()
        ev = book.process(cmds[cmds["symbol"] == s])
        ev["symbol"] = s
        want.append(ev)
        bids, asks = book.depth_orders(1000)
        rows += [[str(s), str(s), side, str(i), *map(str, r)]
                 for side, lv in (("B", bids), ("S", asks)) for i, r in enumerate(lv, 1)]
    assert np.load(tmp_path / "o" / "events.npy").tobytes() == np.concatenate(want).tobytes()
    with open(tmp_path / "b.csv", newline="") as f:
        assert list(csv.reader(f))[1:] == rows


def test_cli_replay_and_gen_itch_small_file_size_not_said_as_0_0_mb(capsys, tmp_path):
    # sizes were said in MB with one decimal: a 4,096-byte file read "(0.0 MB on disk)", a
    # small generated day "to day.itch: 0.0 MB"
    code, out, _ = run_cli(capsys, "replay", str(shared(HEAD)), "--no-progress")
    assert code == 0 and "(4.1 kB on disk)" in out.splitlines()[0], out
    path = tmp_path / "small.itch"
    code, out, _ = run_cli(capsys, "gen-itch", str(path), "--messages", "1000", "--symbols",
                           "1", "--no-progress")
    size = path.stat().st_size
    assert code == 0 and 1_000 <= size < 50_000
    assert f"to {path}: {size / 1e3:,.1f} kB in " in out, out
    empty = tmp_path / "empty.itch"
    empty.write_bytes(b"")
    code, out, _ = run_cli(capsys, "replay", str(empty), "--format", "itch", "--no-progress")
    assert code == 0 and "(0 bytes on disk)" in out.splitlines()[0], out
    assert "0.0 MB" not in out


def test_cli_replay_small_file_rate_not_shown_as_zero(capsys, tmp_path):
    # the rate was always in millions with two decimals: a replay of 20 messages in a few
    # milliseconds (thousands a second) read "0.00 M msg/s"
    import re

    path = itch.generate(tmp_path / "small.itch", messages=20, symbols=1, seed=2)
    code, out, _ = run_cli(capsys, "replay", str(path), "--no-progress")
    assert code == 0
    line = out.splitlines()[0]
    m = re.fullmatch(r"replayed 20 ITCH 5\.0 messages \(.*\) in [0-9.]+ s: "
                     r"([0-9.,]+|inf)( M)? msg/s", line)
    assert m is not None, line
    assert float(m.group(1).replace(",", "")) > 0, line


@pytest.mark.parametrize("per_s, shown", [(5_480_000, "5.48 M msg/s"), (100_000, "0.10 M msg/s"),
                                          (99_999.4, "99,999 msg/s"), (5_000, "5,000 msg/s"),
                                          (2.5, "2.5 msg/s"), (0, "0 msg/s"),
                                          (float("inf"), "inf M msg/s")])
def test_rate_text_millions_from_a_tenth_of_a_million_else_as_it_is(per_s, shown):
    from matchcore._cliutil import rate_text

    assert rate_text(per_s) == shown
    assert rate_text(per_s, "records") == shown.replace("msg", "records")
