"""``matchcore journal inspect|trades`` and ``matchcore recover`` end to end."""
from __future__ import annotations

import contextlib
import csv
import json
import os

import pytest

import matchcore as mc
from matchcore.__main__ import main
from matchcore.durability.journal import KIND_COMMANDS, segment_files
from durability_flow import apply_steps, make_flow
from durability_checks import journal_last_command_lost, journal_of_segments, journaled


@pytest.fixture
def jdir(tmp_path):
    steps, cmds = make_flow(31, 600)
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="batch", segment_bytes=16384)
    apply_steps(eng, steps[:300], cmds)
    eng.snapshot()
    apply_steps(eng, steps[300:], cmds)
    eng.close()
    return d, eng, len(steps)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_journal_inspect_clean_reports_records_segments_last_seq(capsys, jdir):
    d, eng, n = jdir
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0
    assert f"last seq {n}" in out and "snapshot-00000000000000000300.mcs" in out
    assert "DAMAGE" not in out and "CORRUPT" not in out
    code, out, _ = run_cli(capsys, "journal", "inspect", d, "--json", "-")
    info = json.loads(out)
    assert info["journals"]["commands"]["records"] == n
    assert len(info["journals"]["commands"]["segments"]) == len(segment_files(d, KIND_COMMANDS))


def test_cli_journal_inspect_torn_and_corrupt_reported(capsys, jdir):
    d, eng, n = jdir
    last = segment_files(d, KIND_COMMANDS)[-1][1]
    os.truncate(last, os.path.getsize(last) - 5)
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0 and "torn tail" in out and "truncated record" in out
    first = segment_files(d, KIND_COMMANDS)[0][1]
    with open(first, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x00")
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 1 and "CORRUPT" in out and os.path.basename(first) in out
    assert "before the corruption" in out
    for _, f in segment_files(d, KIND_COMMANDS)[1:]:     # every file listed, past the damage too
        assert f"{os.path.basename(f)}  seq" in out
    assert out.count("(after the corruption)") == len(segment_files(d, KIND_COMMANDS)) - 1
    code, out, _ = run_cli(capsys, "journal", "inspect", d, "--json", "-")
    segs = json.loads(out)["journals"]["commands"]["segments"]
    assert [s["file"] for s in segs] == [os.path.basename(f)
                                         for _, f in segment_files(d, KIND_COMMANDS)]
    assert segs[-1]["after_corruption"] and segs[-1]["records"] > 0
    code, out, err = run_cli(capsys, "recover", d)
    assert code == 1 and "offset" in err and os.path.basename(first) in err


@pytest.mark.parametrize("json_out", [None, "-"])
def test_cli_journal_inspect_corrupt_exits_1_with_error_line(capsys, jdir, json_out):
    # exit status 1 is "an error, said in one line on stderr": inspect finding corruption
    # exited 1 with nothing on stderr (with --json -, a script saw only the status)
    d, eng, n = jdir
    first = segment_files(d, KIND_COMMANDS)[0][1]
    with open(first, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x00")
    code, out, err = run_cli(capsys, "journal", "inspect", d,
                             *([] if json_out is None else ["--json", json_out]))
    corrupt = (json.loads(out) if json_out else mc.durability.inspect(d))[
        "journals"]["commands"]["corrupt"]
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("matchcore journal: error: ") and "recovery refuses" in err
    assert os.path.basename(first) in err and f"offset {corrupt['offset']}" in err


def test_cli_journal_inspect_unreadable_last_segment_not_said_followed_by_valid_data(
        capsys, jdir):
    # A segment that cannot be read is the corruption (what it holds is unknown), but the
    # CORRUPT line said "valid data follows" of it, also when it was the last file, where
    # recovery's own error says what it holds is unknown.
    d, eng, n = jdir
    name = d / f"journal-{n + 1:020d}.mcj"
    name.mkdir()
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    line = next(x for x in out.splitlines() if "CORRUPT" in x)
    assert code == 1 and name.name in line and "cannot be read" in line
    assert "valid data follows" not in line and "unknown" in line
    code, out, _ = run_cli(capsys, "journal", "inspect", d, "--json", "-")
    corrupt = json.loads(out)["journals"]["commands"]["corrupt"]
    assert code == 1 and corrupt["file"] == name.name and corrupt["unreadable"] is True
    code, out, err = run_cli(capsys, "recover", d)
    assert code == 1 and "what it holds is unknown" in err


def test_cli_journal_trades_prints_and_writes_csv(capsys, jdir, tmp_path):
    d, eng, n = jdir
    code, out, _ = run_cli(capsys, "journal", "trades", d, "--limit", "5")
    assert code == 0 and "trades" in out and "maker_id" in out
    code, out, _ = run_cli(capsys, "journal", "trades", d, "--csv", tmp_path / "t.csv")
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert len(rows) == len(mc.durability.read_trades(d)) > 0
    assert set(rows[0]) >= {"seq", "cmd_seq", "taker_id", "maker_id", "price", "qty"}


@pytest.mark.parametrize("dest", ["file", "stdout"])
def test_cli_journal_trades_csv_has_every_trade_field_in_dtype_order(capsys, jdir, tmp_path,
                                                                     dest):
    # the CSV left out journal_ts_ns and last (a command's last fill), which read_trades has:
    # an export could not tell where a command's fills end, nor when they were journaled
    d, eng, n = jdir
    out = tmp_path / "t.csv" if dest == "file" else "-"
    code, text, _ = run_cli(capsys, "journal", "trades", d, "--csv", out)
    assert code == 0
    rows = list(csv.reader(open(out) if dest == "file" else text.splitlines()))
    t = mc.durability.read_trades(d)
    names = [f for f in mc.durability.TRADE_DTYPE.names if not f.startswith("_")]
    assert rows[0] == names
    assert len(rows) - 1 == len(t) > 0
    for name in names:
        assert [int(r[names.index(name)]) for r in rows[1:]] == t[name].tolist(), name


def test_cli_recover_prints_state_hash_and_books(capsys, jdir):
    d, eng, n = jdir
    code, out, _ = run_cli(capsys, "recover", d, "--depth", "2")
    assert code == 0
    assert f"state hash {eng.state_hash():#018x}" in out
    assert "snapshot-00000000000000000300.mcs" in out and "S0" in out
    code, out, _ = run_cli(capsys, "recover", d, "--no-snapshot", "--json", "-")
    res = json.loads(out)
    assert res["state_hash"] == eng.state_hash() and res["report"]["snapshot"] is None


def test_cli_recover_depth_0_shows_orders_not_empty_sides(capsys, tmp_path):
    # --depth 0 asks for no levels, but the line said "bid - ask -", which is how an empty
    # book is shown: a book with resting orders on both sides read as empty
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1, "AAPL")
    eng.submit(1, 1, 0, 100, 10)
    eng.submit(1, 2, 1, 101, 5)
    eng.close()
    code, out, _ = run_cli(capsys, "recover", d, "--depth", "0")
    line = [ln for ln in out.splitlines() if "AAPL" in ln][0]
    assert code == 0 and line.split() == ["1", "AAPL", "orders", "2"], line
    code, out, _ = run_cli(capsys, "recover", d)
    line = [ln for ln in out.splitlines() if "AAPL" in ln][0]
    assert "bid 100x10" in line and "ask 101x5" in line


def test_cli_recover_no_trades_gets_past_a_corrupt_trade_journal(capsys, jdir):
    # the README's way past a corrupt trade journal is trades=False, which the command line
    # could not ask for: recover refused the directory and nothing showed its state
    from matchcore.durability.journal import KIND_TRADES

    d, eng, _ = jdir
    seg = segment_files(d, KIND_TRADES)[0][1]
    with open(seg, "r+b") as fh:              # damage with valid records after it
        fh.seek(os.path.getsize(seg) // 3)
        b = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([b[0] ^ 0x40]))
    before = {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)}
    code, _, err = run_cli(capsys, "recover", d)
    assert code == 1 and "trade" in err.lower()
    # the way past it said as journal inspect says it (recover did not name --no-trades)
    way = " (recover --no-trades rebuilds the engine without reading the trade journal)"
    assert err.count("\n") == 1 and err.endswith(way + "\n")
    code, _, inspect_err = run_cli(capsys, "journal", "inspect", d)
    assert code == 1 and inspect_err.endswith(way + "\n")
    code, out, _ = run_cli(capsys, "recover", d, "--no-trades")
    assert code == 0 and f"state hash {eng.state_hash():#018x}" in out
    assert {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)} == before


def test_cli_recover_missing_dir_errors(capsys, tmp_path):
    code, out, err = run_cli(capsys, "recover", tmp_path / "nope")
    assert code == 1 and "not a directory" not in err
    assert f"no journal directory {tmp_path / 'nope'}" in err


@pytest.mark.parametrize("argv", [["journal", "inspect"], ["journal", "trades"], ["recover"],
                                  ["recover", "--repair"]])
def test_cli_journal_commands_missing_dir_said_missing_a_file_not_a_directory(capsys, tmp_path,
                                                                                argv):
    # A mistyped directory was "X is not a directory", as if something else stood there
    missing = tmp_path / "nope" / "j"
    code, out, err = run_cli(capsys, *argv, missing)
    assert code == 1 and out == ""
    assert err == f"matchcore {argv[0]}: error: no journal directory {missing}\n"
    assert not (tmp_path / "nope").exists()
    afile = tmp_path / "file"
    afile.write_bytes(b"x")
    code, out, err = run_cli(capsys, *argv, afile)
    assert code == 1 and err == f"matchcore {argv[0]}: error: {afile} is not a directory\n"


def test_cli_recover_level_total_beyond_int64_printed_exactly(capsys, tmp_path):
    # Level totals are 128-bit by design; the recovered engine's books must print, not end in
    # depth()'s OverflowError.
    d = tmp_path / "big"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1, "BIG")
    eng.submit(1, 1, 0, 100, 2**63 - 1)
    eng.submit(1, 2, 0, 100, 10)
    eng.submit(1, 3, 1, 105, 4)
    eng.close()
    code, out, _ = run_cli(capsys, "recover", d)
    assert code == 0 and f"bid 100x{2**63 + 9}" in out and "ask 105x4" in out
    code, out, _ = run_cli(capsys, "recover", d, "--json", "-")
    book = json.loads(out)["books"][0]
    assert book["bids"] == [[100, 2**63 + 9]] and book["asks"] == [[105, 4]]


@pytest.mark.parametrize("argv", [("journal", "trades", "{d}", "--limit", "-1"),
                                  ("recover", "{d}", "--depth", "-2"),
                                  ("recover", "{d}", "--repair", "--depth", "-1")])
def test_cli_durability_negative_limit_or_depth_exit_1_nothing_changed(capsys, jdir, argv):
    d, _, _ = jdir
    seg = segment_files(d, KIND_COMMANDS)[-1][1]
    with open(seg, "ab") as fh:           # a torn tail that --repair would cut
        fh.write(b"\x58\0\0\0junk")
    before = {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)}
    code, out, err = run_cli(capsys, *[a.format(d=d) for a in argv])
    assert code == 1 and out == ""
    assert "must be >= 0" in err and argv[-2] in err
    assert {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)} == before


@pytest.mark.parametrize("action, extra, named", [
    ("trades", ["--json", "OUT"], "--json does not apply to journal trades"),
    ("inspect", ["--csv", "OUT"], "--csv does not apply to journal inspect"),
    ("inspect", ["--limit", "3", "--symbol", "1"], "--limit, --symbol do not apply to journal inspect"),
])
def test_cli_journal_option_of_the_other_action_refused_exit_1_nothing_written(
        capsys, jdir, tmp_path, action, extra, named):
    # journal trades --json OUT wrote nothing and exited 0: the option was silently ignored
    out = tmp_path / "out.file"
    code, stdout, err = run_cli(capsys, "journal", action, jdir[0],
                                *[out if a == "OUT" else a for a in extra])
    assert code == 1 and stdout == ""
    assert err.strip() == f"matchcore journal: error: {named}"
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (("journal", "inspect", "{d}", "--json", ""), "--json: an empty path"),
    (("journal", "trades", "{d}", "--csv", " "), "--csv: an empty path"),
    (("recover", "{d}", "--json", ""), "--json: an empty path"),
    (("recover", "{d}", "--repair", "--json", ""), "--json: an empty path"),
    (("journal", "inspect", ""), "dir: an empty path"),
    (("recover", " "), "dir: an empty path"),
])
def test_cli_durability_empty_path_refused_before_work_not_taken_for_not_given(
        capsys, jdir, tmp_path, monkeypatch, argv, message):
    # a script's --json "$OUT" with OUT unset: inspect, trades and recover ran, wrote no file
    # and exited 0; an empty DIR said " is not a directory", of no name
    d = jdir[0]
    seg = segment_files(d, KIND_COMMANDS)[-1][1]
    with open(seg, "ab") as fh:           # a torn tail that --repair would cut
        fh.write(b"\x58\0\0\0junk")
    before = {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)}
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out, err = run_cli(capsys, *[a.format(d=d) for a in argv])
    assert code == 1 and out == ""
    assert err == f"matchcore {argv[0]}: error: {message}\n"
    assert {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)} == before
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("dest", ["file", "-"])
def test_cli_journal_trades_limit_with_csv_refused_not_ignored(capsys, jdir, tmp_path,
                                                              monkeypatch, dest):
    # --csv writes every trade: `--limit 2 --csv OUT` wrote them all and exited 0, the limit
    # silently ignored, as the other action's options were before they were refused
    where = tmp_path / "out"
    where.mkdir()
    monkeypatch.chdir(where)
    out = where / "t.csv" if dest == "file" else "-"
    code, stdout, err = run_cli(capsys, "journal", "trades", jdir[0], "--limit", "2",
                                "--csv", out)
    assert code == 1 and stdout == ""
    assert err == ("matchcore journal: error: --limit does not apply to journal trades "
                   "--csv (it writes every trade)\n")
    assert os.listdir(where) == []


def test_cli_journal_trades_default_limit_prints_last_20(capsys, jdir):
    code, out, _ = run_cli(capsys, "journal", "trades", jdir[0])
    n = int(out.split(" trades", 1)[0])
    assert n > 20
    assert code == 0 and len(out.strip().splitlines()) == 2 + min(n, 20)


def test_cli_journal_trades_csv_dash_is_stdout_same_rows_as_file(capsys, jdir, tmp_path,
                                                                 monkeypatch):
    # '--csv -' wrote a file named "-" (while '--json -' of inspect is stdout)
    d = jdir[0]
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "journal", "trades", d, "--csv", "-")
    assert code == 0 and not (tmp_path / "-").exists()
    run_cli(capsys, "journal", "trades", d, "--csv", tmp_path / "t.csv")
    assert list(csv.reader(out.splitlines())) == list(csv.reader(open(tmp_path / "t.csv")))
    assert len(out.splitlines()) == 1 + len(mc.durability.read_trades(d)) > 1


def test_cli_journal_trades_csv_dash_same_bytes_as_the_file(capsys, jdir, tmp_path):
    # stdout's rows ended in "\n", the file's in "\r\n" (csv's own, as replay --dump-book
    # writes both): `--csv - > t.csv` gave another file than `--csv t.csv`
    d = jdir[0]
    code, out, _ = run_cli(capsys, "journal", "trades", d, "--csv", "-")
    assert code == 0
    run_cli(capsys, "journal", "trades", d, "--csv", tmp_path / "t.csv")
    assert out.encode() == (tmp_path / "t.csv").read_bytes()


@pytest.mark.parametrize("symbol, status", [("-1", 1), (str(2**32), 1), (str(10**20), 2)])
def test_cli_journal_trades_symbol_no_engine_can_hold_refused(capsys, jdir, symbol, status):
    # a negative or too wide --symbol printed "0 trades" and exited 0, as if none were made
    d, _, _ = jdir
    with pytest.raises(SystemExit) if status == 2 else contextlib.nullcontext() as exit_info:
        code, out, err = run_cli(capsys, "journal", "trades", d, "--symbol", symbol)
    if status == 2:
        assert exit_info.value.code == 2
        assert "outside the int64 range" in capsys.readouterr().err
    else:
        assert code == 1 and out == ""
        assert err.strip() == (f"matchcore journal: error: --symbol must be a symbol id in "
                               f"[0, 2**32), got {symbol}")


def _cli_at_rename(argv, sig):
    """``matchcore ARGV`` in a forked child that sends itself ``sig`` as it calls os.replace
    (its output is complete in its temporary file, not yet renamed); returns the child's pid
    once it has died or stopped there."""
    import signal
    import sys

    pid = os.fork()
    if pid == 0:
        try:
            def hook(frame, event, arg):
                if event == "c_call" and arg is os.replace:
                    sys.setprofile(None)
                    os.kill(os.getpid(), sig)
            with open(os.devnull, "w") as nul, contextlib.redirect_stdout(nul):
                sys.setprofile(hook)
                code = main([str(a) for a in argv])
        finally:
            os._exit(0 if locals().get("code") == 0 else 3)
    _, status = os.waitpid(pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status) if sig == signal.SIGSTOP else os.WTERMSIG(status) == sig
    return pid


def _parts(d):
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".part"))


def test_cli_journal_trades_csv_killed_before_rename_part_removed_by_next_run(
        capsys, jdir, tmp_path):
    # a command killed between writing its output and renaming it left its .part for good
    import signal

    d, _, _ = jdir
    out = tmp_path / "trades.csv"
    _cli_at_rename(["journal", "trades", d, "--csv", out], signal.SIGKILL)
    assert len(_parts(tmp_path)) == 1 and not out.exists()
    code, _, _ = run_cli(capsys, "journal", "trades", d, "--csv", out)
    assert code == 0 and _parts(tmp_path) == []
    with open(out) as fh:
        assert len(list(csv.reader(fh))) == len(mc.durability.read_trades(d)) + 1


def test_cli_journal_inspect_json_live_writer_part_kept(capsys, jdir, tmp_path):
    # the .part of a command still running (stopped before its rename) is never removed
    import signal

    d, _, _ = jdir
    out = tmp_path / "inspect.json"
    pid = _cli_at_rename(["journal", "inspect", d, "--json", out], signal.SIGSTOP)
    try:
        held = _parts(tmp_path)
        assert len(held) == 1
        code, _, _ = run_cli(capsys, "journal", "inspect", d, "--json", out)
        assert code == 0 and _parts(tmp_path) == held
    finally:
        os.kill(pid, signal.SIGCONT)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and _parts(tmp_path) == []
    assert json.loads(out.read_text())["path"] == str(d)


def test_cli_journal_inspect_shows_state_a_seeded_journal_continues(capsys, tmp_path):
    # the state hash a journal's first segment records is shown beside the snapshots' hashes,
    # so a snapshot-0 that recovery sets aside can be told from the journal's own
    d = tmp_path / "seeded"
    s = mc.Engine()
    s.add_symbol(1)
    s.submit(1, 5, 1, 100, 5)
    s.snapshot(d)
    mc.Engine.recover(d).close()
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0
    assert f"(continues state hash {s.state_hash():#018x})" in out
    assert f"state hash {s.state_hash():#018x}" in out.split("snapshots:")[1]
    info = mc.durability.inspect(d)
    assert info["journals"]["commands"]["segments"][0]["start_state_hash"] == s.state_hash()
    assert info["journals"]["trades"]["segments"][0]["start_state_hash"] is None


@pytest.mark.parametrize("action", ["inspect", "trades"])
def test_cli_journal_on_a_directory_without_a_journal_refused_not_an_empty_journal(
        capsys, tmp_path, action):
    # a mistyped directory (or one a journal has not been written to) read as a journal of
    # 0 records, exit 0, where recover refuses it: the user took an empty journal for real
    (tmp_path / "other.txt").write_text("x")
    code, out, err = run_cli(capsys, "journal", action, tmp_path)
    assert code == 1 and out == ""
    assert "holds no engine journal (no journal segment, no snapshot)" in err
    code, _, err = run_cli(capsys, "recover", tmp_path)
    assert code == 1 and "nothing to recover" in err
    eng = mc.Engine(journal=tmp_path / "j", fsync="never", trades=False)
    eng.close()
    code, out, _ = run_cli(capsys, "journal", action, tmp_path / "j")
    assert code == 0


@pytest.mark.parametrize("action", ["inspect", "trades"])
def test_cli_journal_on_a_directory_holding_only_trade_segments_reads_them(
        capsys, tmp_path, jdir, action):
    # trade segments kept apart from their command journal (an audit archive): read_trades(DIR)
    # lists their fills, but journal trades/inspect refused the directory as holding "no
    # journal segment"
    import shutil

    from matchcore.durability.journal import KIND_TRADES
    d, _, _ = jdir
    archive = tmp_path / "archive"
    archive.mkdir()
    for _, f in segment_files(d, KIND_TRADES):
        shutil.copy(f, archive)
    want = mc.durability.read_trades(archive)
    assert len(want) > 0
    code, out, err = run_cli(capsys, "journal", action, archive)
    if action == "trades":
        assert code == 0 and err == ""
        assert f"{len(want)} trades, {int(want['qty'].sum())} lots" in out
    else:
        # reported, then refused as recover refuses it: there is nothing to recover
        assert f"trades: {len(want)} records" in out and "commands: 0 records" in out
        assert code == 1 and "nothing to recover" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, which", [
    (("journal", "trades", "DIR", "--csv", "OUT"), "trades"),
    (("journal", "inspect", "DIR", "--json", "OUT"), "journal"),
    (("recover", "DIR", "--json", "OUT"), "journal"),
    (("recover", "DIR", "--repair", "--json", "OUT"), "snapshot"),
    (("journal", "inspect", "DIR", "--json", "OUT"), "link")])
def test_cli_durability_output_naming_a_journal_file_refused_nothing_replaced(capsys, jdir,
                                                                              argv, which):
    from matchcore.durability.journal import KIND_TRADES
    from matchcore.durability.snapshot import list_snapshots

    d, eng, n = jdir
    files = {"journal": segment_files(d, KIND_COMMANDS)[-1][1],
             "trades": segment_files(d, KIND_TRADES)[-1][1],
             "snapshot": list_snapshots(d)[-1][1],
             "link": str(d.parent / "link.json")}
    os.symlink(files["journal"], files["link"])            # written in place, through the link
    paths = [os.path.join(d, f) for f in os.listdir(d)]
    before = {f: open(f, "rb").read() for f in paths}
    code, out, err = run_cli(capsys, *[{"DIR": d, "OUT": files[which]}.get(a, a) for a in argv])
    # the output replaced a segment or snapshot of the journal it read, exit status 0: the
    # acknowledged commands in that segment were gone, by a read-only recover too
    assert code == 1 and "would replace" in err and os.path.basename(files[which]) in err
    assert sorted(os.listdir(d)) == sorted(os.path.basename(f) for f in paths)
    assert {f: open(f, "rb").read() for f in paths} == before
    assert mc.Engine.recover(d, readonly=True).recovery_report.last_seq == n


@pytest.mark.parametrize("where", ["missing", "dir", "under_file", "no_new_file"])
def test_cli_recover_repair_unwritable_json_refused_before_any_file_changes(capsys, jdir,
                                                                           where):
    d, eng, n = jdir
    last = segment_files(d, KIND_COMMANDS)[-1][1]
    os.truncate(last, os.path.getsize(last) - 5)            # a torn tail --repair would cut
    size = os.path.getsize(last)
    (d.parent / "afile").write_text("x")
    out = {"missing": d.parent / "nodir" / "r.json", "dir": d.parent,
           "under_file": d.parent / "afile" / "r.json",
           "no_new_file": "/proc/matchcore-no.json"}[where]     # (/proc takes no new file)
    code, _, err = run_cli(capsys, "recover", d, "--repair", "--json", out)
    # the repair cut the tail, then writing the report failed: exit 1, the report of what was
    # changed never printed, and an OSError naming no option
    assert code == 1 and f"--json {out}" in err
    assert os.path.getsize(last) == size
    code, _, err = run_cli(capsys, "journal", "trades", d, "--csv", out)
    assert code == 1 and f"--csv {out}" in err


def test_cli_journal_trades_lots_beyond_int64_summed_exactly(capsys, tmp_path):
    # two fills of 2**62 lots each: their sum, 2**63, wrapped to -2**63 in an int64 sum
    d = tmp_path / "big"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    for oid, side in ((1, 1), (2, 1), (3, 0), (4, 0)):
        eng.submit(1, oid, side, 100, 2**62)
    eng.close()
    code, out, _ = run_cli(capsys, "journal", "trades", d)
    assert code == 0 and out.splitlines()[0] == f"2 trades, {2**63} lots"


def test_cli_journal_inspect_creation_cut_short_not_said_cut_by_recovery(capsys, tmp_path):
    # a crash inside Engine(journal=DIR), before the first header was written: inspect said
    # "torn tail ...: recovery cuts it", and recover then refused the directory
    d = tmp_path / "j"
    d.mkdir()
    (d / "journal-00000000000000000001.mcj").write_bytes(bytes(10))
    (d / "trades-00000000000000000001.mct").write_bytes(b"")
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert "recovery cuts it" not in out
    assert "creation was cut short" in out and "Engine(journal=" in out
    code, _, err = run_cli(capsys, "recover", d)
    assert code == 1 and "creation was cut short" in err
    mc.Engine(journal=d).close()                     # what inspect says to do


@pytest.mark.parametrize("json_out", [None, "-", "file"])
def test_cli_journal_inspect_creation_cut_short_exits_1_as_recover_refuses(capsys, tmp_path,
                                                                           json_out):
    # a journal with no start (its creation cut short) was reported and exited 0, while
    # recover refuses it (exit 1): a script checking the directory with inspect went on
    d = tmp_path / "j"
    d.mkdir()
    seg = "journal-00000000000000000001.mcj"
    (d / seg).write_bytes(bytes(10))
    (d / "trades-00000000000000000001.mct").write_bytes(b"")
    extra = [] if json_out is None else ["--json", tmp_path / "i.json" if json_out == "file"
                                         else "-"]
    code, out, err = run_cli(capsys, "journal", "inspect", d, *extra)
    report = json.loads(out) if json_out == "-" else out
    assert ("creation was cut short" in report if json_out != "-"
            else report["journals"]["commands"]["torn_tail"]["file"] == seg)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("matchcore journal: error: ")
    assert "recovery refuses" in err and "creation was cut short" in err and seg in err
    rcode, _, rerr = run_cli(capsys, "recover", d)
    assert rcode == 1 and "creation was cut short" in rerr


def _drop_start(jdir, tmp_path, case):
    d, eng, n = jdir
    snaps = [f for f in os.listdir(d) if f.startswith("snapshot-")]
    if case == "after_seq_1":                  # earlier segments and the snapshot deleted
        os.unlink(segment_files(d, KIND_COMMANDS)[0][1])
        for f in snaps:
            os.unlink(d / f)
    elif case == "seed_gone":                  # a seeded journal whose snapshot-0 is gone
        d = tmp_path / "seeded"
        s = mc.Engine()
        s.add_symbol(1)
        s.submit(1, 5, 1, 100, 5)
        s.snapshot(d)
        e = mc.Engine.recover(d)
        e.submit(1, 6, 0, 90, 3)
        e.close()
        os.unlink(d / [f for f in os.listdir(d) if f.startswith("snapshot-")][0])
    else:                                      # trade segments alone
        for _, f in segment_files(d, KIND_COMMANDS):
            os.unlink(f)
        for f in snaps:
            os.unlink(d / f)
    return d


@pytest.mark.parametrize("json_out", [None, "-"])
@pytest.mark.parametrize("case", ["after_seq_1", "seed_gone", "trades_only"])
def test_cli_journal_inspect_exits_1_where_recover_refuses_the_start(capsys, jdir, tmp_path,
                                                                     case, json_out):
    # inspect passed (exit 0) directories that recover refuses for where their journal
    # starts: a script checking a backup with inspect took it for a recoverable journal
    d = _drop_start(jdir, tmp_path, case)
    rcode, _, rerr = run_cli(capsys, "recover", d)
    assert rcode == 1 and rerr.startswith("matchcore recover: error: ")
    code, out, err = run_cli(capsys, "journal", "inspect", d,
                             *([] if json_out is None else ["--json", json_out]))
    assert (json.loads(out)["path"] == str(d) if json_out else f"journal directory {d}" in out)
    assert code == 1 and err.count("\n") == 1
    assert err == rerr.replace("matchcore recover: ", "matchcore journal: ", 1)


def _last_command_lost(tmp_path):
    # three commands, the last (one fill) lost from the command journal: its fill, in the
    # trade journal, belongs to no command any more
    return journal_last_command_lost(tmp_path / "lost")


def test_cli_recover_no_trades_previews_the_fills_repair_cuts_and_says_what_it_cut(
        capsys, tmp_path):
    # read-only --no-trades said "trades: kept through command 0, ... last trade seq 0" of a
    # trade journal it never read, then "trade journal not read" while --repair --no-trades
    # cut a fill; --repair --no-trades said "kept through command 3, rewrote 0 fills" and cut
    # a fill without a word
    from matchcore.durability import _journal as _j
    from matchcore.durability import read_trades
    d = _last_command_lost(tmp_path)
    code, out, _ = run_cli(capsys, "recover", d, "--no-trades")
    assert code == 0 and "not read" not in out
    assert "kept through command 0" not in out and "last trade seq 0" not in out
    line = [ln for ln in out.splitlines() if ln.startswith("  trades:")][0]
    assert line == ("  trades: capture off (trades=False); trade journal kept through command 3, "
                    "last trade seq 1, 1 fill record(s) of commands after it to cut (read-only: "
                    "Engine.recover, matchcore recover --repair cut them)")
    code, out, _ = run_cli(capsys, "recover", d, "--no-trades", "--json", "-")
    rep = json.loads(out)["report"]
    assert rep["trades_kept_through"] == 3 and rep["last_trade_seq"] == 1
    assert rep["trades_to_cut"] == 1 and rep["bytes_to_cut"] == _j.TRADE_RECORD_DTYPE.itemsize
    assert len(read_trades(d)) == 2
    code, out, _ = run_cli(capsys, "recover", d, "--no-trades", "--repair")
    assert code == 0 and len(read_trades(d)) == 1
    line = [ln for ln in out.splitlines() if ln.startswith("  trades:")][0]
    assert line == ("  trades: capture off (trades=False); trade journal kept through command 3, "
                    "last trade seq 1, cut 1 fill record(s) of commands after it")


def test_cli_recover_says_how_many_fills_repair_cuts_from_the_trade_journal(capsys, tmp_path):
    # with trades read, the summary said nothing of the fill it cut (that of a command the
    # command journal lost); read-only, nothing of the fill a repair cuts
    from matchcore.durability import read_trades
    d = _last_command_lost(tmp_path)
    code, out, _ = run_cli(capsys, "recover", d)
    assert code == 0 and len(read_trades(d)) == 2
    assert ("1 fill record(s) of commands after it to cut (read-only: Engine.recover, "
            "matchcore recover --repair cut them)") in out
    code, out, _ = run_cli(capsys, "recover", d, "--json", "-")
    rep = json.loads(out)["report"]
    assert rep["trades_to_cut"] == 1 and rep["trades_cut"] == 0
    code, out, _ = run_cli(capsys, "recover", d, "--repair", "--json", "-")
    rep = json.loads(out)["report"]
    assert rep["trades_to_cut"] == 0 and rep["trades_cut"] == 1
    assert len(read_trades(d)) == 1


def test_cli_journal_inspect_creation_cut_short_lists_no_file_recovery_would_drop(capsys,
                                                                                tmp_path):
    # beside "recovery refuses the directory", inspect listed the cut-short segment under
    # "trailing segment(s) with nothing valid", the line of files recovery drops: recovery
    # drops nothing there, it refuses the directory
    from matchcore.durability import inspect
    d = tmp_path / "j"
    d.mkdir()
    (d / "journal-00000000000000000001.mcj").write_bytes(bytes(10))
    (d / "trades-00000000000000000001.mct").write_bytes(b"")
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 1 and "creation was cut short" in out
    assert "trailing segment(s) with nothing valid" not in out
    code, out, _ = run_cli(capsys, "journal", "inspect", d, "--json", "-")
    assert code == 1
    assert json.loads(out)["journals"]["commands"]["dropped_segments"] == []
    assert inspect(d)["journals"]["commands"]["dropped_segments"] == []
    with pytest.raises(mc.durability.JournalError, match="creation was cut short"):
        mc.Engine.recover(d)
    assert {"journal-00000000000000000001.mcj",
            "trades-00000000000000000001.mct"} <= set(os.listdir(d))       # nothing dropped


def test_cli_journal_inspect_torn_header_segment_said_dropped_not_cut(capsys, tmp_path):
    # a trailing segment with a torn header is deleted by recovery, yet inspect said "torn
    # tail: <file> at offset 0 (torn segment header): recovery cuts it"
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    torn = f"journal-{eng.journal_seq + 1:020d}.mcj"
    (d / torn).write_bytes(bytes(10))
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0
    assert f"torn tail: {torn} at offset 0 (torn segment header): recovery drops it" in out
    assert "recovery cuts it" not in out
    rec = mc.Engine.recover(d)
    rec.close()
    rep = rec.recovery_report
    assert rep.dropped_files == [str(d / torn)] and rep.cut_bytes == 0


def test_cli_journal_inspect_flags_snapshots_recovery_skips_for_the_journal(capsys, tmp_path):
    # inspect listed a snapshot ahead of the journal, one of another STP mode and one taken
    # from another journal as plain valid snapshots, where recovery skips them (and sets aside
    # those that can never be states of this journal)
    import shutil
    from matchcore.durability import inspect, read_journal
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    for k in range(6):
        eng.submit(1, 1 + k, mc.Side.BUY, 100 - k, 5)
    ahead = eng.snapshot()
    eng.submit(1, 50, mc.Side.SELL, 120, 5)
    eng.close()
    rec = read_journal(d)
    seg = segment_files(d, KIND_COMMANDS)[-1][1]
    os.truncate(seg, int(rec["index"]["offset"][-3]))   # the snapshot's record and after: lost
    other = mc.Engine(stp=mc.STP.CANCEL_BOTH)             # no symbol: the empty state's hash
    shutil.copy(other.snapshot(tmp_path / "other"), d)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    mc.Engine.recover(d, readonly=True, snapshot=False)
    want = {os.path.basename(f): why for f, why in ro.skipped_snapshots}
    assert len(want) == 2 and any("ahead of the journal" in w for w in want.values())
    assert any("STP mode" in w for w in want.values())
    aside = {os.path.basename(f) for f, _ in ro.snapshots_to_set_aside}
    assert aside == {os.path.basename(ahead)}
    info = inspect(d)
    got = {s["file"]: s["unusable"] for s in info["snapshots"]}
    assert got == want
    assert {s["file"] for s in info["snapshots"] if s["set_aside"]} == aside
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0
    for name, why in want.items():
        line = [ln for ln in out.splitlines() if ln.startswith(f"  {name}")][0]
        done = "skips it and sets it aside" if name in aside else "skips it"
        assert line.endswith(f"  NOT USABLE: {why} (recovery {done})")
    # a snapshot the journal continues is not flagged
    eng = mc.Engine(journal=tmp_path / "ok", fsync="never")
    eng.add_symbol(1)
    eng.snapshot()
    eng.close()
    assert [s["unusable"] for s in inspect(tmp_path / "ok")["snapshots"]] == [None]


def test_cli_journal_trades_says_how_many_fills_are_of_commands_the_journal_lost(
        capsys, tmp_path):
    # the fill of a command lost from the command journal was listed like any other, though
    # recovery cuts it: nothing told the user it belongs to no journaled command
    from matchcore.durability import read_journal, read_trades
    d = _last_command_lost(tmp_path)
    last = int(read_journal(d)["seqs"][-1])
    t = read_trades(d)
    beyond = int((t["cmd_seq"] > last).sum())
    assert beyond == 1 and len(t) == 2
    note = (f"{beyond} of them of commands after the command journal's last seq {last} "
            f"(recovery cuts them)")
    code, out, err = run_cli(capsys, "journal", "trades", d)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"2 trades, {sum(t['qty'].tolist())} lots; {note}"
    code, out, err = run_cli(capsys, "journal", "trades", d, "--csv", "-")
    assert code == 0 and len(list(csv.reader(out.splitlines()))) == 3
    assert err == f"matchcore journal: 2 trades; {note}\n"
    code, out, err = run_cli(capsys, "journal", "trades", d, "--csv", tmp_path / "t.csv")
    assert code == 0 and out == f"wrote 2 trades to {tmp_path / 't.csv'}; {note}\n"
    # --symbol: only the fills listed are counted
    code, out, _ = run_cli(capsys, "journal", "trades", d, "--symbol", 2)
    assert code == 0 and out == "0 trades, 0 lots\n"
    # recovery cuts that fill: afterwards there is nothing to say
    mc.Engine.recover(d).close()
    code, out, _ = run_cli(capsys, "journal", "trades", d)
    assert code == 0 and "recovery cuts" not in out


def test_cli_journal_inspect_says_how_many_fills_recovery_cuts(capsys, tmp_path):
    # inspect listed a trade journal holding fills of commands the command journal lost as
    # clean, where recovery cuts them (and drops a segment holding only such fills)
    from matchcore.durability import inspect
    d = _last_command_lost(tmp_path)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.trades_to_cut == 1
    info = inspect(d)
    assert info["journals"]["trades"]["fills_to_cut"] == ro.trades_to_cut
    assert info["journals"]["trades"]["kept_through"] == ro.trades_kept_through
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0
    assert (f"  recovery cuts {ro.trades_to_cut} fill record(s) after command "
            f"{ro.trades_kept_through}'s last fill (of commands the command journal does not "
            f"hold, or not complete)") in out
    mc.Engine.recover(d).close()
    assert inspect(d)["journals"]["trades"]["fills_to_cut"] == 0
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert "recovery cuts" not in out


def test_cli_journal_inspect_says_recovery_drops_a_torn_trade_segment_after_the_cut(
        capsys, tmp_path):
    # a torn trade segment holding only fills of commands the command journal lost is
    # dropped by recovery; inspect said "recovery cuts it"
    from matchcore.durability import inspect
    from matchcore.durability.journal import KIND_TRADES
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never", segment_bytes=16384)
    eng.add_symbol(1)
    for k in range(600):
        eng.submit(1, 1 + 2 * k, mc.Side.BUY, 100, 5)
        eng.submit(1, 2 + 2 * k, mc.Side.SELL, 100, 5)
    eng.close()
    for _, f in segment_files(d, KIND_COMMANDS)[-3:]:
        os.unlink(f)
    last = segment_files(d, KIND_TRADES)[-1][1]
    os.truncate(last, os.path.getsize(last) - 10)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert last in ro.files_to_drop
    info = inspect(d)["journals"]["trades"]
    assert info["segments_to_drop"] == [os.path.basename(f) for f in ro.files_to_drop
                                        if os.path.basename(f).startswith("trades-")]
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0
    assert (f"  torn tail: {os.path.basename(last)} at offset {info['torn_tail']['offset']} "
            f"(truncated record): recovery drops it") in out
    assert f"recovery cuts {ro.trades_to_cut} fill record(s)" in out
    assert f"dropping {', '.join(info['segments_to_drop'])}" in out


def test_cli_journal_inspect_lists_the_snapshot_temporaries_recovery_removes(capsys, tmp_path):
    # a snapshot writer's temporary left by a crash, which recovery deletes, was not shown
    from matchcore.durability import inspect
    from matchcore.durability.snapshot import snapshot_bytes
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.close()
    tmp = d / "snapshot-00000000000000000001.mcs.tmp"
    tmp.write_bytes(snapshot_bytes(mc.Engine())[0][:40])
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.temporaries_to_remove == [str(tmp)]
    assert inspect(d)["temporaries_to_remove"] == [tmp.name]
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0 and tmp.exists()
    assert (f"stale snapshot temporary file(s) (a snapshot interrupted before its rename; "
            f"recovery removes them): {tmp.name}") in out
    mc.Engine.recover(d).close()
    assert inspect(d)["temporaries_to_remove"] == []
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert "temporary" not in out


def test_cli_journal_inspect_shows_the_fsync_policy_its_segments_record(capsys, tmp_path):
    # recovery keeps the policy the newest command segment records: inspect shows it
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="always")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.close()
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0
    line = [ln for ln in out.splitlines() if "journal-00000000000000000001.mcj" in ln][0]
    assert "fsync always" in line
    assert "fsync" not in [ln for ln in out.splitlines() if ".mct" in ln][0]
    info = mc.durability.inspect(d)
    assert info["journals"]["commands"]["segments"][0]["fsync"] == "always"
    assert info["journals"]["trades"]["segments"][0]["fsync"] is None


def test_cli_recover_repair_fsync_is_the_policy_of_the_journal_it_starts(capsys, tmp_path):
    # a directory holding only a seed snapshot-0: --repair starts the journal, whose first
    # segment records the policy given (without --fsync, the journal's own: none here, "batch")
    for given, recorded in (("always", "always"), (None, "batch")):
        d = tmp_path / f"seed-{given}"
        s = mc.Engine()
        s.add_symbol(1)
        s.snapshot(d)
        argv = ["recover", d, "--repair"] + ([] if given is None else ["--fsync", given])
        code, _, err = run_cli(capsys, *argv)
        assert code == 0, err
        info = mc.durability.inspect(d)
        assert info["journals"]["commands"]["segments"][0]["fsync"] == recorded
        rec = mc.Engine.recover(d)
        assert rec.journal.policy == recorded
        rec.close()


def test_cli_recover_fsync_without_repair_refused_not_ignored(capsys, jdir):
    d, eng, n = jdir
    code, out, err = run_cli(capsys, "recover", d, "--fsync", "always")
    assert code == 1 and out == ""
    assert "--fsync does not apply to recover without --repair" in err


@pytest.mark.parametrize("name", [f"journal-{4:020d}.mcj", f"trades-{2:020d}.mct",
                                  f"snapshot-{9:020d}.mcs", f"journal-{3:020d}.mcj.new",
                                  "LOCK"])
@pytest.mark.parametrize("argv", [["journal", "trades", "{d}", "--csv"],
                                  ["journal", "inspect", "{d}", "--json"],
                                  ["recover", "{d}", "--json"]])
def test_cli_output_named_as_a_new_file_of_the_journal_directory_refused(capsys, tmp_path,
                                                                         name, argv):
    # an output written into the journal directory under a name recovery reads as its own
    # (a segment, a snapshot, a segment temporary, LOCK) that does not exist yet was written:
    # the next recovery took the CSV/JSON for a torn trailing segment (and deleted it), a
    # damaged snapshot, a stale temporary (deleted) or the directory's LOCK
    d = journal_last_command_lost(tmp_path / "j")
    os.unlink(d / "LOCK")
    before = sorted(os.listdir(d))
    out = d / name
    code, _, err = run_cli(capsys, *[str(d) if a == "{d}" else a for a in argv], out)
    assert code == 1 and f"{out}" in err and "journal directory" in err
    assert sorted(os.listdir(d)) == before
    # through a symbolic link from elsewhere too
    link = tmp_path / "out.txt"
    link.symlink_to(out)
    code, _, err = run_cli(capsys, *[str(d) if a == "{d}" else a for a in argv], link)
    assert code == 1 and "journal directory" in err
    assert sorted(os.listdir(d)) == before
    # a name recovery does not read is written there as before
    code, _, err = run_cli(capsys, *[str(d) if a == "{d}" else a for a in argv],
                           d / "report.txt")
    assert code == 0, err
    assert (d / "report.txt").exists()


def _wrong_state_hash(snap):
    # a whole snapshot (CRC and layout intact) whose stored state hash is not its books'
    import struct
    import zlib
    data = bytearray(open(snap, "rb").read())
    data[56:64] = (int.from_bytes(data[56:64], "little") ^ 1).to_bytes(8, "little")
    data[-8:-4] = struct.pack("<I", zlib.crc32(bytes(data[:-8])))
    open(snap, "wb").write(data)


def test_cli_journal_inspect_judges_snapshots_as_recovery_loads_them(capsys, tmp_path):
    # inspect judged a snapshot by its header and CRC only: one whose books do not give its
    # stored state hash was listed as valid, while recovery skips it; without command
    # segments, its seq was then taken for where the journal ends (kept_through, fills_to_cut,
    # the note of journal trades)
    from matchcore.durability import inspect
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.snapshot()
    eng.submit(1, 2, mc.Side.SELL, 100, 2)
    bad = eng.snapshot()
    eng.submit(1, 3, mc.Side.SELL, 100, 1)
    eng.close()
    _wrong_state_hash(bad)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    why = dict(ro.skipped_snapshots)[str(bad)]
    assert "state hash" in why
    snaps = {s["file"]: s for s in inspect(d)["snapshots"]}
    assert snaps[os.path.basename(bad)]["valid"] is False
    assert snaps[os.path.basename(bad)]["error"] == why
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0 and f"  {os.path.basename(bad)}  INVALID: {why}" in out.splitlines()
    # no command segment left: the journal ends at the snapshot recovery uses
    for _, f in segment_files(d, KIND_COMMANDS):
        os.unlink(f)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.snapshot_seq == 2 and ro.trades_to_cut == 2
    trades = inspect(d)["journals"]["trades"]
    assert (trades["kept_through"], trades["fills_to_cut"]) == (ro.trades_kept_through,
                                                                ro.trades_to_cut)
    code, out, _ = run_cli(capsys, "journal", "trades", d)
    assert code == 0 and out.splitlines()[0] == (
        "2 trades, 3 lots; 2 of them of commands after the command journal's last seq 2 "
        "(recovery cuts them)")


@pytest.mark.parametrize("damage", ["gap", "header", "crc"])
def test_cli_journal_inspect_segment_count_adds_up_with_a_corrupt_segment(capsys, jdir, damage):
    # "N records in K segment(s)" counted a corrupt segment listed on its own (a sequence gap
    # before it, a bad header) among K while its records were not among N
    from matchcore.durability import inspect
    d, _, _ = jdir
    segs = segment_files(d, KIND_COMMANDS)
    assert len(segs) >= 3
    if damage == "gap":
        os.unlink(segs[1][1])
    elif damage == "header":
        with open(segs[1][1], "r+b") as fh:
            fh.write(b"XX")
    else:                                       # mid-segment: its records before it count
        with open(segs[1][1], "r+b") as fh:
            fh.seek(3000)
            fh.write(b"\0\0")
    j = inspect(d)["journals"]["commands"]
    first = j["segments"][0]
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 1
    line = [ln for ln in out.splitlines() if ln.startswith("commands: ")][0]
    if damage == "crc":
        damaged = j["segments"][1]
        assert damaged["file"] == j["corrupt"]["file"] and damaged["records"] > 0
        assert j["records"] == first["records"] + damaged["records"]
        assert line.startswith(f"commands: {j['records']} records in 2 readable segment(s), "
                               f"last seq ")
    else:
        assert j["records"] == first["records"]
        assert line.startswith(f"commands: {j['records']} records in 1 readable segment(s), "
                               f"1 corrupt, last seq ")


def test_cli_journal_inspect_sets_aside_only_snapshots_newer_than_the_one_used(capsys, tmp_path):
    # inspect said recovery sets aside a snapshot of another journal older than the one it
    # uses; recovery (snapshot=True) looks at none older, only snapshot=False sets it aside
    import shutil
    from matchcore.durability import inspect
    d, o = tmp_path / "j", tmp_path / "o"
    eng, other = mc.Engine(journal=d, fsync="never"), mc.Engine(journal=o, fsync="never")
    for e, price in ((eng, 100), (other, 101)):
        e.add_symbol(1)
        e.submit(1, 1, mc.Side.BUY, price, 5)
    foreign = other.snapshot()
    other.close()
    eng.submit(1, 2, mc.Side.BUY, 99, 5)
    eng.snapshot()
    eng.close()
    shutil.copy(foreign, d)
    name = os.path.basename(foreign)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.snapshots_to_set_aside == [] and ro.snapshot_seq == 3
    full = mc.Engine.recover(d, readonly=True, snapshot=False).recovery_report
    assert [os.path.basename(f) for f, _ in full.snapshots_to_set_aside] == [name]
    snaps = {s["file"]: s for s in inspect(d)["snapshots"]}
    assert "another journal" in snaps[name]["unusable"]
    assert snaps[name]["set_aside"] is False
    code, out, _ = run_cli(capsys, "journal", "inspect", d)
    assert code == 0
    line = [ln for ln in out.splitlines() if ln.startswith(f"  {name}")][0]
    assert "sets it aside" not in line
    assert "recovery uses a newer snapshot and leaves it as it is" in line


def test_cli_journal_inspect_claims_no_repair_in_a_directory_recovery_refuses(capsys, tmp_path):
    # a journal that starts after seq 1 with no snapshot: recovery refuses the directory and
    # changes nothing, yet inspect said "recovery cuts it", listed the trade journal's cut and
    # the temporaries "recovery removes"
    from matchcore.durability import inspect
    from matchcore.durability.errors import JournalError
    d = journal_of_segments(tmp_path)
    segs = segment_files(d, KIND_COMMANDS)
    assert len(segs) > 2
    os.unlink(segs[0][1])
    with open(segs[-1][1], "ab") as f:
        f.write(b"\x01" * 10)                            # a torn tail
    (d / "snapshot-00000000000000000009.mcs.tmp").write_bytes(b"")
    with pytest.raises(JournalError, match="no valid snapshot holds the state") as exc:
        mc.Engine.recover(d, readonly=True)
    info = inspect(d)
    assert info["start_refused"] == str(exc.value)
    assert info["temporaries_to_remove"] == []
    assert info["journals"]["commands"]["torn_tail"] is not None
    assert info["journals"]["commands"]["dropped_segments"] == []
    t = info["journals"]["trades"]
    assert (t["kept_through"], t["fills_to_cut"], t["segments_to_drop"]) == (None, None, [])
    code, out, err = run_cli(capsys, "journal", "inspect", d)
    assert code == 1 and str(exc.value) in err
    assert "recovery refuses the directory and leaves it as it is" in out
    assert "recovery cuts" not in out and "recovery removes" not in out


def test_journal_inspect_trades_off_without_trade_journal_kept_through_none(tmp_path):
    # a journal made with trades=False has no trade journal: recovery reports
    # trades_kept_through None, inspect said 0
    from matchcore.durability import inspect
    eng, d = journaled(tmp_path, trades=False)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 5)
    eng.close()
    rep = mc.Engine.recover(d, readonly=True).recovery_report
    assert rep.trade_capture is False and rep.trades_kept_through is None
    t = inspect(d)["journals"]["trades"]
    assert t["kept_through"] is rep.trades_kept_through
    assert t["fills_to_cut"] == rep.trades_to_cut == 0 and t["segments_to_drop"] == []
