"""Command-line options: a bad value ends in one error line (no traceback), before any work."""
from __future__ import annotations

import re

import pytest

from matchcore.__main__ import main
from matchcore.cli_bench import run_bench

BENCH = ["bench", "standard", "--messages", "2000", "--quick", "--no-progress"]


def _run(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("extra, option", [
    (["--rate", "0"], "--rate"), (["--rate", "-1"], "--rate"), (["--seed", "-1"], "--seed"),
    (["--seed", str(2**64)], "--seed"), (["--messages", "0"], "--messages"),
    (["--json", "/proc/matchcore-no/x.json"], "--json"),
])
def test_cli_bench_bad_value_one_line_error_exit_1_before_work(capsys, extra, option):
    rc, out, err = _run(capsys, BENCH + extra)
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("matchcore bench: error: ") and option in err


@pytest.mark.parametrize("rate, shown", [("1e30", "1e+30"), ("2e9", "2e+09")])
def test_cli_bench_rate_below_one_ns_apart_refused_naming_option_and_value(capsys, rate, shown):
    # --rate 1e30 was taken: arrivals 1e-21 ns apart, which no clock can schedule
    rc, out, err = _run(capsys, BENCH + ["--rate", rate])
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"matchcore bench: error: --rate {shown}: ") and "1 ns" in err
    with pytest.raises(ValueError, match=re.escape(f"rate {shown}: ")) as exc:
        run_bench(["standard"], messages=2000, quick=True, rate=float(rate), progress=False)
    assert str(exc.value).startswith(f"rate {shown}: ")      # the keyword, not the option


@pytest.mark.parametrize("argv", [
    ["bench", "standard", "--no-progress", "--messages", str(10**14)],
    ["demo", "--messages", str(10**14)],
])
def test_cli_messages_beyond_memory_one_line_error_exit_1_no_traceback(capsys, argv):
    # 4 PiB of commands: numpy's MemoryError came out as a traceback
    rc, out, err = _run(capsys, argv)
    assert rc == 1 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"matchcore {argv[0]}: error: out of memory")


@pytest.mark.parametrize("option", ["--plot", "--save-workloads"])
def test_cli_bench_directory_option_on_a_file_refused_before_work(capsys, tmp_path, option):
    f = tmp_path / "afile"
    f.write_text("keep")
    rc, out, err = _run(capsys, BENCH + [option, str(f)])
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert option in err and "not a directory" in err
    assert f.read_text() == "keep"


def test_cli_bench_json_into_a_directory_refused_before_work(capsys, tmp_path):
    rc, out, err = _run(capsys, BENCH + ["--json", str(tmp_path)])
    assert rc == 1 and out == "" and "--json" in err and "is a directory" in err


@pytest.mark.parametrize("option", ["--json", "--plot", "--save-workloads"])
@pytest.mark.parametrize("value", ["", " "])
def test_cli_bench_empty_output_path_refused_before_work(capsys, tmp_path, monkeypatch, option,
                                                         value):
    # a script's --json "$OUT" with OUT unset: --json and --plot were taken for "not given"
    # (the run measured, wrote nothing, exit status 0) and --save-workloads wrote the
    # workloads into the current directory
    monkeypatch.chdir(tmp_path)
    rc, out, err = _run(capsys, BENCH + [option, value])
    assert rc == 1 and out == ""
    assert err == f"matchcore bench: error: {option}: an empty path\n"
    assert list(tmp_path.iterdir()) == []


def test_cli_bench_json_into_a_fifo_its_reader_gets_the_json(tmp_path):
    # the check before the run opened the FIFO for writing and closed it: its reader took
    # that for the end of an empty stream, and the JSON written after the run then waited
    # for a reader that never came (the command hung)
    import json
    import os
    import subprocess
    import sys
    import threading

    fifo = tmp_path / "result.json"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    p = subprocess.Popen([sys.executable, "-m", "matchcore", *BENCH, "--json", str(fifo)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        reader.join(300)
        assert got and got[0], "the reader got an empty stream"
    finally:
        if not (got and got[0]):
            p.kill()            # waiting for a reader that will not come
        err = p.communicate(timeout=300)[1]
    assert p.returncode == 0, err
    assert json.loads(got[0])["command"]["messages"] == 2000


@pytest.mark.parametrize("made, refused, shown", [
    (["--json", "NEW/sub/b.json", "--plot", "NEW/sub"], ["--save-workloads", "/proc/matchcore-no/w"],
     "--save-workloads /proc/matchcore-no/w"),
    (["--plot", "NEW/p"], ["--save-workloads", "/proc/matchcore-no/w"],
     "--save-workloads /proc/matchcore-no/w"),
    (["--plot", "NEW/p"], ["--json", "/proc/matchcore-no.json"], "--json /proc/matchcore-no.json"),
])
def test_cli_bench_refused_output_leaves_no_directory_made_for_another(capsys, tmp_path, made,
                                                                        refused, shown):
    # the check of one output made its directories (with their parents) before the next
    # output was refused: the run never started, and the new directories stayed; the refusal
    # of a --json file named its directory, not the path given
    new = tmp_path / "new"
    rc, out, err = _run(capsys, BENCH + [a.replace("NEW", str(new)) for a in made] + refused)
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"matchcore bench: error: {shown}: cannot write there")
    assert not new.exists()


@pytest.mark.parametrize("argv, option", [
    (["bench", "standard", "--messages", "2000", "--quick", "--json", "{out}"], "--json"),
    (["replay", "{day}", "--dump-book", "{out}"], "--dump-book"),
    (["book", "{day}", "--symbol", "AAPL", "--plot", "{out}"], "--plot"),
    (["journal", "inspect", "{j}", "--json", "{out}"], "--json"),
    (["journal", "trades", "{j}", "--csv", "{out}"], "--csv"),
    (["recover", "{j}", "--json", "{out}"], "--json"),
    (["gen-itch", "{out}", "--messages", "2000"], "out"),
])
def test_cli_file_output_in_a_missing_directory_refused_before_work_one_wording(
        capsys, tmp_path, argv, option):
    # bench --json made the directory (and its parents), gen-itch said "[Errno 2] No such
    # file or directory", where the other file outputs refuse it: one rule, one wording
    import matchcore as mc
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    eng = mc.Engine(journal=tmp_path / "j", fsync="never")
    eng.close()
    missing = tmp_path / "new" / "sub"
    target = missing / "x.out"
    argv = [a.format(day=day, j=tmp_path / "j", out=target) for a in argv] + ["--no-progress"]
    rc, out, err = _run(capsys, argv)
    assert (rc, out) == (1, "")
    assert err == f"matchcore {argv[0]}: error: {option} {target}: no directory {missing}\n"
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("made", ["--plot", "--save-workloads"])
def test_cli_bench_json_in_the_directory_another_output_makes_written(capsys, tmp_path, made):
    # as replay --out D --dump-book D/book.csv: the directory is made by the run
    d = tmp_path / "d"
    out_json = d / "b.json"
    rc, out, err = _run(capsys, BENCH + ["--json", str(out_json), made, str(d)])
    assert rc == 0, err
    assert out_json.read_text().startswith("{")


@pytest.mark.parametrize("extra, option", [
    (["--messages", "0"], "--messages"), (["--messages", "-5"], "--messages"),
    (["--seed", "-1"], "--seed"), (["--seed", str(2**64)], "--seed"), (["--fills", "-1"], "--fills"),
])
def test_cli_demo_bad_value_one_line_error_exit_1_before_work(capsys, extra, option):
    rc, out, err = _run(capsys, ["demo", "--messages", "1000", *extra])
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("matchcore demo: error: ") and option in err


@pytest.mark.parametrize("seed", [-1, 2**64, 2**64 + 5])
def test_itch_generate_seed_outside_64_bits_refused(seed):
    import matchcore.itch as itch

    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64\)"):
        itch.generate(None, messages=10, symbols=1, seed=seed)


@pytest.mark.parametrize("kwargs, name", [
    ({"messages": 100.7}, "messages"), ({"symbols": 2.5}, "symbols"), ({"seed": 1.5}, "seed"),
    ({"seed": "1"}, "seed"),
])
def test_itch_generate_non_integer_argument_raises_type_error(kwargs, name):
    # int() cut 100.7 messages to 100 and seed 1.5 to seed 1: another day, silently
    import numpy as np

    import matchcore.itch as itch

    args = {"messages": 100, "symbols": 2, "seed": 1, **kwargs}
    with pytest.raises(TypeError, match=f"{name} must be an integer"):
        itch.generate(None, **args)
    assert itch.generate(None, messages=np.int64(100), symbols=np.uint16(2), seed=np.uint64(1)) \
        == itch.generate(None, messages=100, symbols=2, seed=1)


def test_itch_generate_empty_path_value_error_as_native_writers_nothing_written(
        tmp_path, monkeypatch):
    # FileNotFoundError (open()'s), where the native and LOBSTER readers and writers raise
    # ValueError("path: an empty path")
    import matchcore.itch as itch

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as exc:
        itch.generate("", messages=1000)
    assert str(exc.value) == "path: an empty path"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stream", ["StringIO", "text file"])
def test_itch_generate_text_stream_type_error_asks_for_a_binary_one(tmp_path, stream):
    # sys.stdout (not sys.stdout.buffer) failed inside the first write with "string argument
    # expected, got 'memoryview'", which named neither the argument nor what it takes
    import io

    import matchcore.itch as itch

    f = io.StringIO() if stream == "StringIO" else open(tmp_path / "t", "w")
    with f, pytest.raises(TypeError) as exc:
        itch.generate(f, messages=1000)
    assert str(exc.value).startswith("path: a text stream (")
    assert "binary file object" in str(exc.value)
    if stream == "text file":
        assert (tmp_path / "t").read_bytes() == b""


def test_itch_generate_largest_64_bit_seed_accepted():
    import matchcore.itch as itch

    assert itch.generate(None, messages=10, symbols=1, seed=2**64 - 1) != \
        itch.generate(None, messages=10, symbols=1, seed=0)


def test_cli_gen_itch_seed_2_pow_64_refused_and_nothing_written(capsys, tmp_path):
    out_path = tmp_path / "s.itch"
    rc, out, err = _run(capsys, ["gen-itch", str(out_path), "--messages", "10",
                                 "--seed", str(2**64), "--no-progress"])
    assert rc == 1 and out == "" and "seed" in err and err.count("\n") == 1
    assert not out_path.exists()


@pytest.mark.parametrize("argv, option", [
    (["replay", "DAY", "--depth", str(10**20)], "--depth"),
    (["replay", "DAY", "--snapshot-every", str(2**63)], "--snapshot-every"),
    (["replay", "DAY", "--snapshot-every-ns", str(-2**63 - 1)], "--snapshot-every-ns"),
    (["book", "DAY", "--symbol", "AAPL", "--depth", str(10**20)], "--depth"),
    (["gen-itch", "OUT", "--messages", str(10**20)], "--messages"),
    (["recover", "DIR", "--depth", str(10**20)], "--depth"),
    (["demo", "--messages", str(10**20)], "--messages"),
])
def test_cli_int_option_beyond_int64_usage_error_exit_2_no_traceback(capsys, tmp_path, argv,
                                                                        option):
    # a value past int64 reached the compiled code and came out as an OverflowError traceback
    day = tmp_path / "day.itch"
    day.write_bytes(b"")
    argv = [{"DAY": str(day), "OUT": str(tmp_path / "out.itch"), "DIR": str(tmp_path)}.get(a, a)
            for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    assert exc.value.code == 2 and "Traceback" not in out.err
    assert f"argument {option}: " in out.err and "outside the int64 range" in out.err
    assert not (tmp_path / "out.itch").exists()


@pytest.mark.parametrize("value", ["1_000", "+5", " 5", "5 ", "\u0665", "0x10"])
@pytest.mark.parametrize("argv", [["demo", "--messages"], ["gen-itch", "OUT", "--symbols"],
                                  ["replay", "DAY", "--depth"], ["recover", "DIR", "--depth"]])
def test_cli_count_option_not_plain_digits_usage_error_exit_2(capsys, tmp_path, argv, value):
    # Python's int() took "1_000", "+5", padding and non-ASCII digits as counts
    day = tmp_path / "day.itch"
    day.write_bytes(b"")
    argv = [{"DAY": str(day), "OUT": str(tmp_path / "out.itch"), "DIR": str(tmp_path)}.get(a, a)
            for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv + [value])
    out = capsys.readouterr()
    assert exc.value.code == 2 and "Traceback" not in out.err
    assert f"argument {argv[-1]}: invalid int64 value: {value!r}" in out.err
    assert not (tmp_path / "out.itch").exists()


@pytest.mark.parametrize("argv, words", [
    (["demo", "--messages", str(2**63 - 1)], f"--messages {2**63 - 1:,}: more commands than "
     f"the generated workloads number with 63-bit order ids: at most {2**63 - 1 - 1000:,}"),
    (["gen-itch", "OUT", "--symbols", str(2**63 - 1)], "--symbols must be in 1..65535"),
])
def test_cli_int64_value_the_command_refuses_one_line_error_exit_1(capsys, tmp_path, argv, words):
    # within int64 but refused by the workload / generator: a ValueError (demo) and an
    # OverflowError of the generator's C int (gen-itch) came out as tracebacks
    argv = [str(tmp_path / "out.itch") if a == "OUT" else a for a in argv]
    rc, out, err = _run(capsys, argv)
    assert rc == 1 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"matchcore {argv[0]}: error: ") and words in err
    assert not (tmp_path / "out.itch").exists()


@pytest.mark.parametrize("kw", [{"symbols": 2**40}, {"symbols": 0}, {"messages": 2**63},
                                {"messages": -1}])
def test_itch_generate_count_outside_range_value_error(kw):
    import matchcore.itch as itch

    with pytest.raises(ValueError, match="must be in"):
        itch.generate(None, **kw)


def test_cli_bench_json_dash_is_stdout_report_on_stderr_no_file(capsys, tmp_path, monkeypatch):
    # '--json -' wrote a file named "-" in the working directory
    import json

    monkeypatch.chdir(tmp_path)
    rc, out, err = _run(capsys, BENCH + ["--json", "-"])
    assert rc == 0 and not (tmp_path / "-").exists()
    res = json.loads(out)
    assert res["command"] and "standard" in err


def test_cli_bench_rate_too_low_for_the_clock_refused_before_any_workload(capsys, tmp_path):
    # 2,000 messages at 1e-12/s: the open loop refused the schedule only after the workload had
    # been generated (and saved) and its closed loop measured
    saved = tmp_path / "w"
    rc, out, err = _run(capsys, BENCH + ["--rate", "1e-12", "--save-workloads", str(saved)])
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("matchcore bench: error: --rate") and "raise the rate" in err
    assert not saved.exists() or not any(saved.iterdir())
    from matchcore.cli_bench import run_bench

    with pytest.raises(ValueError, match="^rate 1e-12: "):
        run_bench(["standard"], messages=2000, rate=1e-12, quick=True, progress=False)
    # a slow but countable schedule is left alone
    from matchcore.cli_bench import _check_values

    _check_values(1e-3, 1, 2000)


def test_cli_bench_too_few_messages_for_itch_refused_before_any_workload(capsys, tmp_path):
    # --messages 20 with itch: the 8-symbol day needs 38, found only after every workload before
    # it had been generated, saved and measured (the whole run lost)
    from matchcore.itch import generate
    from matchcore.itch._gen import min_messages

    saved = tmp_path / "w"
    rc, out, err = _run(capsys, ["bench", "standard", "itch", "--messages", "20", "--quick",
                                 "--no-progress", "--save-workloads", str(saved)])
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("matchcore bench: error: --messages 20") and "itch" in err
    assert not saved.exists() or not any(saved.iterdir())
    least = min_messages(8)
    with pytest.raises(ValueError, match="need at least"):
        generate(None, messages=least - 1, symbols=8)
    assert len(generate(None, messages=least, symbols=8)) > 0
    rc, out, err = _run(capsys, ["bench", "itch", "--messages", str(least), "--quick",
                                 "--no-progress"])
    assert rc == 0 and "ITCH replay" in out


def test_cli_bench_plot_without_matplotlib_refused_before_work_exit_2(capsys, tmp_path,
                                                                    monkeypatch):
    # --plot without the plot extra measured every section, wrote the JSON, then ended in a
    # ModuleNotFoundError traceback
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import now raises ImportError
    out_json = tmp_path / "o.json"
    rc, out, err = _run(capsys, BENCH + ["--plot", str(tmp_path / "p"), "--json", str(out_json)])
    assert rc == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("matchcore bench: error: benchmark charts need matplotlib")
    assert "pip install 'matchcore[plot]'" in err and not out_json.exists()


def test_cli_bench_repeated_target_measured_once(capsys, tmp_path):
    import json

    out_json = tmp_path / "o.json"
    rc, out, _ = _run(capsys, ["bench", "standard", "market_maker", "standard", "--messages",
                               "2000", "--quick", "--no-progress", "--json", str(out_json)])
    assert rc == 0
    res = json.loads(out_json.read_text())
    assert res["command"]["targets"] == ["standard", "market_maker"]
    assert out.count("\nstandard ") == 2        # one row in each of the two tables


@pytest.mark.parametrize("several", [False, True])
@pytest.mark.parametrize("extra, option, words", [
    (["--depth", "0"], "--depth", "--depth must be >= 1, got 0"),
    (["--snapshot-every", "-5"], "--snapshot-every", "--snapshot-every must be >= 0, got -5"),
    (["--snapshot-every-ns", "-1"], "--snapshot-every-ns",
     "--snapshot-every-ns must be >= 0, got -1"),
])
def test_cli_replay_bad_snapshot_option_error_names_that_option_and_value(capsys, tmp_path,
                                                                          several, extra, option,
                                                                          words):
    # one message for three options ("--snapshot-every/--snapshot-every-ns must be >= 0 and
    # --depth >= 1") left the user to guess which value was refused, and named options not given
    import shutil

    from cli_replay_checks import AAPL, shared

    files = [str(shared(AAPL))]
    if several:
        files.append(str(shutil.copyfile(AAPL, tmp_path / AAPL.name)))
    rc, out, err = _run(capsys, ["replay", *files, "--no-progress", *extra])
    assert rc == 1 and out == ""
    assert err == f"matchcore replay: error: {words}\n"
    others = {"--depth", "--snapshot-every", "--snapshot-every-ns"} - {option}
    assert not any(f"{o} " in err or f"{o}/" in err for o in others)


@pytest.mark.parametrize("files", [1, 2])
def test_cli_replay_plot_without_matplotlib_refused_before_the_replay_exit_2(capsys, tmp_path,
                                                                            monkeypatch, files):
    # as book --plot and bench --plot: the whole replay ran, its summary and outputs written,
    # and only then the missing extra ended the command
    import sys

    import matchcore.itch as itch

    paths = []
    for i in range(files):
        paths.append(str(tmp_path / f"d{i}.itch"))
        itch.generate(paths[-1], messages=2000, symbols=2, seed=i)
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import now raises ImportError
    dump = tmp_path / "book.csv"
    extra = ["--dump-book", str(dump)] if files == 1 else []
    rc, out, err = _run(capsys, ["replay", *paths, "--plot", str(tmp_path / "p"),
                                 "--no-progress", *extra])
    assert rc == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "pip install 'matchcore[plot]'" in err and not dump.exists()


@pytest.mark.parametrize("inputs", ["itch", "dbn", "several"])
def test_cli_replay_both_snapshot_cadences_refused_naming_the_options(capsys, tmp_path, inputs):
    # the refusal named the library's keywords ("give snapshot_every (messages) or
    # snapshot_every_ns (time), not both"), options the command line does not have
    from cli_replay_checks import AAPL, shared

    files = [str(shared(AAPL))] if inputs != "dbn" else None
    if inputs == "several":
        import shutil

        files.append(str(shutil.copyfile(AAPL, tmp_path / AAPL.name)))
    if files is None:
        pytest.importorskip("databento_dbn")
        from matchcore.feeds.dbn_gen import generate_mbo

        files = [str(generate_mbo(tmp_path / "m.dbn", records=200, instruments=2, seed=1))]
    rc, out, err = _run(capsys, ["replay", *files, "--no-progress", "--snapshot-every", "10",
                                 "--snapshot-every-ns", "5"])
    assert rc == 1 and out == ""
    assert err == ("matchcore replay: error: give --snapshot-every or --snapshot-every-ns, "
                   "not both\n")


@pytest.mark.parametrize("targets", [["depth"], ["baselines"], ["itch", "baselines"]])
@pytest.mark.parametrize("extra, named", [
    (["--clock", "monotonic"], "--clock applies"),
    (["--clock", "auto"], "--clock applies"),
    (["--subtract-overhead"], "--subtract-overhead applies"),
    (["--clock", "tsc", "--subtract-overhead"], "--clock and --subtract-overhead apply"),
])
def test_cli_bench_clock_options_without_a_timed_section_refused_before_work(
        capsys, targets, extra, named):
    # itch, depth and baselines take no per-message clock: the clock chosen and the overhead
    # subtraction were accepted and ignored, the report saying "subtracted below" of figures
    # that were not
    rc, out, err = _run(capsys, ["bench", *targets, "--messages", "2000", "--quick",
                                 "--no-progress", *extra])
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"matchcore bench: error: {named} to the sections timed per message")


def test_itch_generate_progress_not_callable_refused_before_generating(tmp_path):
    # progress=5 generated the first chunk of messages and then raised "'int' object is not
    # callable", naming neither the argument nor what it takes
    import matchcore.itch as itch

    with pytest.raises(TypeError, match=r"^progress must be callable\(messages_done\) or None, "
                                        r"got int 5$"):
        itch.generate(tmp_path / "day.itch", messages=100, progress=5)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, pair", [
    (BENCH + ["--json", "{x}", "--plot", "{x}"], "--json and --plot"),
    (BENCH + ["--json", "{x}", "--save-workloads", "{dot}"], "--json and --save-workloads"),
    (["replay", "{day}", "--dump-book", "{x}", "--out", "{x}", "--no-progress"],
     "--dump-book and --out"),
    (["replay", "{day}", "--dump-book", "{x}", "--plot", "{dot}", "--no-progress"],
     "--dump-book and --plot"),
    (["journal", "trades", "{x}", "--json", "-", "--csv", "-"], "--json and --csv"),
])
def test_cli_two_outputs_naming_one_path_usage_error_exit_2_before_work(capsys, tmp_path, argv,
                                                                        pair):
    # accepted, and the second output overwrote the first (or failed on the directory the first
    # had made) after the whole run
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    x = tmp_path / "same"
    dot = tmp_path / "sub" / ".." / "same"      # the same path written otherwise
    argv = [a.format(x=x, dot=dot, day=day) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == "" and "Traceback" not in err, err
    assert f"error: {pair} name the same path" in err.splitlines()[-1], err
    assert err.splitlines()[-1].startswith(f"matchcore {argv[0]}: error: ")
    assert not x.exists()


def test_cli_replay_out_and_plot_may_share_a_directory(capsys, tmp_path):
    # two directory outputs whose files do not collide (.npy/.json beside <symbol>.png)
    import matchcore.itch as itch

    pytest.importorskip("matplotlib")
    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    d = tmp_path / "o"
    rc, _, err = _run(capsys, ["replay", str(day), "--out", str(d), "--plot", str(d),
                               "--no-progress"])
    assert rc == 0, err
    assert (d / "summary.json").exists() and list(d.glob("*.png"))


@pytest.mark.parametrize("module, argv, words", [
    ("databento_dbn", ["replay", "{dbn}", "--no-progress"], "databento_dbn"),
    ("distributed", ["replay", "{day}", "--dask", "local", "--no-progress"], "dask"),
    ("nats", ["subscribe", "nats://127.0.0.1:1", "--timeout", "1"], "nats"),
    ("matchcore.native", ["replay", "{mccmd}", "--format", "native", "--no-progress"],
     "matchcore.native"),
    ("matchcore.lobster", ["replay", "{csv}", "--format", "lobster", "--no-progress"],
     "matchcore.lobster"),
    ("matplotlib", ["book", "{day}", "--symbol", "AAPL", "--plot", "{png}", "--no-progress"],
     "matplotlib"),
])
def test_cli_missing_extra_exit_2_one_line_saying_error(capsys, tmp_path, monkeypatch, module,
                                                        argv, words):
    # "matchcore replay: DBN replay needs ...", "matchcore subscribe: matchcore.io.nats needs
    # ...": the exit-2 lines of a missing extra lacked the "error:" every other error has
    import sys

    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    dbn = tmp_path / "day.dbn"
    dbn.write_bytes(b"DBN\x02" + bytes(200))
    csv = tmp_path / "AAPL_message_1.csv"
    csv.write_text("34200.0,1,1,100,5000000,1\n")
    mccmd = tmp_path / "flow.mccmd"
    mccmd.write_bytes(b"MCCMD" + bytes(100))
    monkeypatch.setitem(sys.modules, module, None)       # import now raises ImportError
    argv = [a.format(day=day, dbn=dbn, csv=csv, mccmd=mccmd, png=tmp_path / "d.png")
            for a in argv]
    rc, out, err = _run(capsys, argv)
    assert rc == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"matchcore {argv[0]}: error: ") and words in err, err


@pytest.mark.parametrize("targets", [["core"], ["depth"], ["baselines"], ["itch", "baselines"]])
def test_cli_bench_plot_without_a_charted_section_refused_before_work(capsys, tmp_path, targets):
    # charts are drawn for the generated workloads, rates and scaling only: with none of them
    # chosen --plot was accepted and ignored, the run ending with exit status 0, no chart and
    # an empty directory made for them
    charts = tmp_path / "charts"
    rc, out, err = _run(capsys, ["bench", *targets, "--messages", "2000", "--quick",
                                 "--no-progress", "--plot", str(charts)])
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("matchcore bench: error: --plot applies to the sections with charts "
                          "(standard, market_maker, deep_book, sweep, wide_book, stale_cancel, "
                          "market_heavy, rates, scaling), and none is chosen")
    assert not charts.exists()


@pytest.mark.parametrize("argv, option", [
    (["replay", "DAY", "--dump-book", "OUT/"], "--dump-book"),
    (["book", "DAY", "--symbol", "AAPL", "--plot", "OUT/"], "--plot"),
    (["gen-itch", "OUT/", "--messages", "100"], "out"),
    (BENCH + ["--json", "OUT/"], "--json"),
], ids=["replay", "book", "gen-itch", "bench"])
def test_cli_output_file_named_with_trailing_slash_refused_not_written_without_it(
        capsys, tmp_path, argv, option):
    # "OUT/" names a directory: open() refuses it ("Is a directory"), but the path went
    # through pathlib, which drops the slash, and a file named OUT was written in its place
    # ("book dump: 57 levels -> OUT/")
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    out = str(tmp_path / "out") + "/"
    argv = [str(day) if a == "DAY" else out if a == "OUT/" else a for a in argv]
    rc, _, err = _run(capsys, argv)
    assert rc == 1 and err.count("\n") == 1
    assert err == (f"matchcore {argv[0]}: error: {option} {out}: names a directory (it "
                   f"ends with /), not a file\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day.itch"]


@pytest.mark.parametrize("argv, said", [
    (["gen-itch", "OUT", "--messages", "-1"], "--messages must be >= 0, got -1"),
    (["gen-itch", "OUT", "--symbols", "0"], "--symbols must be in 1..65535, got 0"),
    (["gen-itch", "OUT", "--seed", "-3"], "--seed must be in [0, 2**64), got -3"),
    # "8 symbols need at least 38 messages": neither option named, the default --symbols unseen
    (["gen-itch", "OUT", "--messages", "10"], "--messages 10 is too few for --symbols 8: it "
     "needs at least 38 (directory, trading actions, crosses, system events)\n"),
    (["gen-itch", "OUT", "--messages", "9", "--symbols", "1"], "--messages 9 is too few for "
     "--symbols 1: it needs at least 10 (directory"),
    (["replay", "DAY", "DAY2", "--dask", "local", "--split", "0"], "--split must be >= 1, got 0"),
    # "--depth must be >= 1": the value refused left out, as replay's own --depth says it
    (["book", "DAY", "--symbol", "AAPL", "--depth", "0"], "--depth must be >= 1, got 0\n"),
    (["bench", "standard", "--quick", "--messages", "0"], "--messages must be > 0, got 0\n"),
    (["replay", "DAY", "--plot", "OUT", "--plot-top", "0"], "--plot-top must be >= 1, got 0\n"),
    (["replay", "DAY", "DAY2", "--dask", "local", "--split", "5000"],
     "--split must be at most 1024, not 5000"),
])
def test_cli_bad_count_error_names_the_option_as_given(capsys, tmp_path, argv, said):
    # "messages must be in [0, 2**63)", "split must be >= 1": the library's keyword, not the
    # option the command line gave
    from matchcore import itch

    itch.generate(tmp_path / "day.itch", messages=100, symbols=1)
    itch.generate(tmp_path / "day2.itch", messages=100, symbols=1)
    names = {"DAY": str(tmp_path / "day.itch"), "DAY2": str(tmp_path / "day2.itch"),
             "OUT": str(tmp_path / "out.itch")}
    rc, out, err = _run(capsys, [names.get(a, a) for a in argv] + ["--no-progress"])
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"matchcore {argv[0]}: error: {said}"), err
    assert not (tmp_path / "out.itch").exists()


@pytest.mark.parametrize("argv, option, what", [
    (["book", "{day}", "--symbol", "AAPL", "--plot", "-", "--no-progress"], "--plot",
     "an image"),
    (["replay", "{day}", "--out", "-", "--no-progress"], "--out", "a directory"),
    (["replay", "{day}", "--plot", "-", "--no-progress"], "--plot", "a directory"),
    (BENCH + ["--plot", "-"], "--plot", "a directory"),
    (BENCH + ["--save-workloads", "-"], "--save-workloads", "a directory"),
], ids=["book-plot", "replay-out", "replay-plot", "bench-plot", "bench-save-workloads"])
def test_cli_dash_for_an_output_that_cannot_go_to_stdout_usage_error_exit_2(
        capsys, tmp_path, monkeypatch, argv, option, what):
    # '-' is stdout for --dump-book, --json and --csv; given to a directory or image output it
    # made a directory (or a PNG) named "-" in the current directory, after the whole run
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    monkeypatch.chdir(tmp_path)
    argv = [a.format(day=day) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == "" and "Traceback" not in err, err
    assert err.splitlines()[-1] == (f"matchcore {argv[0]}: error: {option} -: writes {what}, "
                                    f"which cannot go to stdout ('-' is stdout)"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day.itch"]


@pytest.mark.parametrize("argv, file_option, dir_option", [
    (["replay", "{day}", "--out", "{d}", "--dump-book", "{d}/summary.json"], "--dump-book",
     "--out"),
    (["replay", "{day}", "--out", "{d}", "--dump-book", "{d}/tob.npy"], "--dump-book", "--out"),
    (["replay", "{day}", "--out", "{d}", "--dump-book", "{link}/trades.npy"], "--dump-book",
     "--out"),
    (["replay", "{day}", "{day2}", "--out", "{d}", "--dump-book", "{d}/day/snapshots.npy"],
     "--dump-book", "--out"),
    (["replay", "{day}", "--plot", "{d}", "--dump-book", "{d}/AAPL.png"], "--dump-book",
     "--plot"),
    (BENCH + ["--json", "{d}/latency_percentiles.png", "--plot", "{d}"], "--json", "--plot"),
    (BENCH + ["--json", "{d}/standard_2000_1.npz", "--save-workloads", "{d}"], "--json",
     "--save-workloads"),
    (BENCH + ["--json", "{d}/standard_2000_1.setup.mccmd", "--save-workloads", "{d}"], "--json",
     "--save-workloads"),
    (["replay", "{day}", "--out", "{d}", "--plot", "{d}/summary.json"], "--plot", "--out"),
    (BENCH + ["--plot", "{d}", "--save-workloads", "{d}/rate_sweep.png"], "--save-workloads",
     "--plot"),
], ids=["summary", "tob", "through-a-symlink", "several-files", "replay-plot", "bench-plot",
        "bench-workloads", "bench-workloads-native", "replay-plot-directory", "bench-workloads-directory"])
def test_cli_file_output_among_a_directory_outputs_files_usage_error_exit_2(
        capsys, tmp_path, argv, file_option, dir_option):
    # the file output was written, then replaced by the directory output's file of that name
    # (or the other way round) after the whole run: one of the two outputs silently lost
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    day2 = tmp_path / "other.itch"
    day2.write_bytes(day.read_bytes())
    d = tmp_path / "d"
    d.mkdir()
    (tmp_path / "link").symlink_to(d)
    argv = [a.format(day=day, day2=day2, d=d, link=tmp_path / "link") for a in argv]
    value = argv[argv.index(file_option) + 1]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == "" and "Traceback" not in err, err
    assert err.splitlines()[-1] == (
        f"matchcore {argv[0]}: error: {file_option} {value}: is a file {dir_option} {d} "
        f"writes: one would overwrite the other"), err
    assert list(d.iterdir()) == []


def test_cli_replay_other_file_in_the_out_directory_written(capsys, tmp_path):
    # a name the directory output does not write is no clash
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    d = tmp_path / "d"
    d.mkdir()
    rc, _, err = _run(capsys, ["replay", str(day), "--out", str(d), "--dump-book",
                               str(d / "book.csv"), "--no-progress"])
    assert rc == 0, err
    assert (d / "book.csv").exists() and (d / "summary.json").exists()


@pytest.mark.parametrize("several", [False, True], ids=["one-file", "several-files"])
def test_cli_replay_dump_book_in_the_out_directory_it_makes_written(capsys, tmp_path, several):
    # --out makes its directory, yet a file output there was refused ("no directory D") when
    # D did not exist before the run
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    inputs = [str(day)]
    if several:
        (tmp_path / "other.itch").write_bytes(day.read_bytes())
        inputs.append(str(tmp_path / "other.itch"))
    d = tmp_path / "new" / "d"
    rc, _, err = _run(capsys, ["replay", *inputs, "--out", str(d), "--dump-book",
                               str(d / "book.csv"), "--no-progress"])
    assert rc == 0, err
    assert (d / "book.csv").read_text().count("\n") > 1 and (d / "summary.json").exists()


def test_cli_replay_dump_book_under_a_missing_directory_out_does_not_make_refused(
        capsys, tmp_path):
    # only the directory --out itself makes is accepted: D/sub is made by nobody
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    d = tmp_path / "d"
    rc, out, err = _run(capsys, ["replay", str(day), "--out", str(d), "--dump-book",
                                 str(d / "sub" / "book.csv"), "--no-progress"])
    assert rc == 1 and out == "" and not d.exists()
    assert err == (f"matchcore replay: error: --dump-book {d}/sub/book.csv: no directory "
                   f"{d}/sub\n")


@pytest.mark.parametrize("made", ["--out", "--plot"])
def test_cli_replay_dump_book_in_a_parent_the_out_directory_makes_written(capsys, tmp_path,
                                                                          made):
    # --out run/sinks makes run as well (with its parents), yet --dump-book run/book.csv was
    # refused, "no directory run", before the work
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    run = tmp_path / "run"
    rc, _, err = _run(capsys, ["replay", str(day), made, str(run / "a" / "sinks"),
                               "--dump-book", str(run / "book.csv"), "--no-progress"])
    assert rc == 0, err
    assert (run / "book.csv").read_text().startswith("locate,symbol,side,level,")
    assert (run / "a" / "sinks").is_dir()


def test_cli_bench_json_in_a_parent_the_plot_directory_makes_written(capsys, tmp_path):
    run = tmp_path / "run"
    rc, out, err = _run(capsys, BENCH + ["--json", str(run / "b.json"), "--plot",
                                         str(run / "charts")])
    assert rc == 0, err
    assert (run / "b.json").read_text().startswith("{")
    assert any(p.suffix == ".png" for p in (run / "charts").iterdir())


def test_cli_replay_dump_book_beside_a_missing_out_parent_refused(capsys, tmp_path):
    # a sibling of a directory --out makes is made by nobody
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    rc, out, err = _run(capsys, ["replay", str(day), "--out", str(tmp_path / "run" / "a"),
                                 "--dump-book", str(tmp_path / "runs" / "book.csv"),
                                 "--no-progress"])
    assert rc == 1 and out == "" and not (tmp_path / "run").exists()
    assert err == (f"matchcore replay: error: --dump-book {tmp_path}/runs/book.csv: no "
                   f"directory {tmp_path}/runs\n")


@pytest.mark.parametrize("fmt, taken", [
    ("itch", "tob.npy"), ("itch", "summary.json"), ("native", "events.npy"),
    ("several", "day/trades.npy"),
])
def test_cli_replay_directory_where_out_writes_a_file_refused_before_work(
        capsys, tmp_path, fmt, taken):
    # found only after the whole replay, its summary printed and the other files written
    import numpy as np

    import matchcore.itch as itch
    from matchcore import COMMAND_DTYPE, native

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    inputs = [str(day)]
    if fmt == "several":
        (tmp_path / "other.itch").write_bytes(day.read_bytes())
        inputs.append(str(tmp_path / "other.itch"))
    elif fmt == "native":
        cmds = np.zeros(2, COMMAND_DTYPE)
        cmds["order_id"], cmds["price"], cmds["qty"] = [1, 2], [100, 101], [5, 5]
        native.write_commands(tmp_path / "flow.mccmd", cmds)
        inputs = [str(tmp_path / "flow.mccmd")]
    d = tmp_path / "d"
    (d / taken).mkdir(parents=True)
    before = sorted(p.relative_to(d) for p in d.rglob("*"))
    rc, out, err = _run(capsys, ["replay", *inputs, "--out", str(d), "--no-progress"])
    assert rc == 1 and out == "", (out, err)
    assert err == (f"matchcore replay: error: --out {d}: {d / taken} is a directory, where it "
                   f"writes a file\n")
    assert sorted(p.relative_to(d) for p in d.rglob("*")) == before


def test_cli_replay_directory_at_a_name_this_format_does_not_write_no_clash(capsys, tmp_path):
    # a native replay writes events.npy and summary.json only: tob.npy is not its name
    import numpy as np

    from matchcore import COMMAND_DTYPE, native

    cmds = np.zeros(2, COMMAND_DTYPE)
    cmds["order_id"], cmds["price"], cmds["qty"] = [1, 2], [100, 101], [5, 5]
    native.write_commands(tmp_path / "flow.mccmd", cmds)
    d = tmp_path / "d"
    (d / "tob.npy").mkdir(parents=True)
    rc, _, err = _run(capsys, ["replay", str(tmp_path / "flow.mccmd"), "--out", str(d),
                               "--no-progress"])
    assert rc == 0, err
    assert (d / "events.npy").is_file() and (d / "summary.json").is_file()


@pytest.mark.parametrize("target, before_flow", [
    ("standard", 1000), ("market_maker", 200), ("sweep", 20_000), ("wide_book", 1_000_000),
    ("core", 1000),
])
def test_cli_bench_messages_the_workload_cannot_number_refused_naming_the_largest(
        capsys, target, before_flow):
    # "first_id=1 leaves no room for the ... ids": an option the command does not have, and
    # no word of how many messages it takes
    largest = 2**63 - 1 - before_flow
    rc, out, err = _run(capsys, ["bench", target, "--no-progress", "--messages",
                                 str(largest + 1)])
    assert rc == 1 and out == "" and "first_id" not in err
    assert err == (f"matchcore bench: error: --messages {largest + 1:,}: more commands than "
                   f"the generated workloads number with 63-bit order ids: at most "
                   f"{largest:,}\n"), err
    # the largest itself passes the check (generating it would take exabytes: not run)
    from matchcore.cli_bench import _plan

    assert _plan([target], False, largest) == ([target], largest)


@pytest.mark.parametrize("option, taken", [
    ("--plot", "latency_percentiles.png"), ("--save-workloads", "standard_2000_1.npz"),
    ("--save-workloads", "standard_2000_1.flow.mccmd"),
])
def test_cli_bench_directory_where_an_output_writes_a_file_refused_before_work(
        capsys, tmp_path, option, taken):
    # found after the whole run (--plot, its report printed) or after the workload had been
    # generated and the ones before it measured (--save-workloads)
    d = tmp_path / "d"
    (d / taken).mkdir(parents=True)
    rc, out, err = _run(capsys, BENCH + [option, str(d)])
    assert rc == 1 and out == "", (out, err)
    assert err == (f"matchcore bench: error: {option} {d}: {d / taken} is a directory, where "
                   f"it writes a file\n")
    assert [p.name for p in d.iterdir()] == [taken]


def test_cli_bench_directory_at_a_chart_name_not_drawn_no_clash(capsys, tmp_path):
    # the standard workload draws latency percentiles only: rate_sweep.png is not its name
    d = tmp_path / "d"
    (d / "rate_sweep.png").mkdir(parents=True)
    rc, _, err = _run(capsys, BENCH + ["--plot", str(d)])
    if rc == 2 and "matplotlib" in err:
        pytest.skip("--plot needs matplotlib")
    assert rc == 0, err
    assert (d / "latency_percentiles.png").is_file()


@pytest.mark.parametrize("argv, option", [
    (["replay", "{day}", "--no-progress"], "--out"),
    (["replay", "{day}", "--no-progress"], "--plot"),
    (BENCH, "--plot"),
    (BENCH, "--save-workloads"),
])
def test_cli_directory_output_a_dangling_symlink_refused_before_work(capsys, tmp_path, argv,
                                                                      option):
    # the directory cannot be made there ("[Errno 17] File exists"), found after the whole run
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone" / "d")
    rc, out, err = _run(capsys, [a.format(day=day) for a in argv] + [option, str(link)])
    assert rc == 1 and out == "", (out, err)
    assert err == (f"matchcore {argv[0]}: error: {option} {link}: a symlink to "
                   f"{tmp_path / 'gone' / 'd'}, which does not exist\n")
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("argv, option", [
    (["replay", "{day}", "--no-progress"], "--out"),
    (["replay", "{day}", "--no-progress"], "--plot"),
    (BENCH, "--plot"),
    (BENCH, "--save-workloads"),
])
def test_cli_directory_output_under_a_dangling_symlink_refused_before_work(capsys, tmp_path,
                                                                          argv, option):
    # the directory and its parents are made: a parent that is a symlink to nothing cannot
    # be ("[Errno 17] File exists: 'link'"), found after the whole replay, its summary printed
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone" / "d")
    value = link / "sub" / "d"
    rc, out, err = _run(capsys, [a.format(day=day) for a in argv] + [option, str(value)])
    assert rc == 1 and out == "", (out, err)
    assert err == (f"matchcore {argv[0]}: error: {option} {value}: {link} is a symlink to "
                   f"{tmp_path / 'gone' / 'd'}, which does not exist\n")
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("option, value", [
    ("--out", "/proc/matchcore-no"), ("--plot", "/proc/matchcore-no"),
    ("--dump-book", "/proc/matchcore-no.csv"),
])
def test_cli_replay_output_where_nothing_can_be_written_refused_before_work(
        capsys, tmp_path, option, value):
    # found after the whole replay, its summary printed ("No such file or directory"), where
    # bench refuses such a place before its run
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    rc, out, err = _run(capsys, ["replay", str(day), option, value, "--no-progress"])
    assert rc == 1 and out == "", (out, err)
    assert err.startswith(f"matchcore replay: error: {option} {value}: cannot write there (")
    assert err.count("\n") == 1


@pytest.mark.parametrize("option", [["--publish", ""], ["--publish", "nats://127.0.0.1:1"],
                                    ["--metrics-port", "0"]])
def test_cli_replay_lobster_publish_or_metrics_refused_before_replay_even_empty_url(
        capsys, tmp_path, option):
    # --publish "" (an empty URL) on a LOBSTER file was ignored: the file was replayed with
    # nothing published, exit 0, where any other URL is refused
    csv = tmp_path / "AAPL_message_1.csv"
    csv.write_text("34200.0,1,1,100,5000000,1\n")
    rc, out, err = _run(capsys, ["replay", str(csv), "--format", "lobster", "--no-progress"]
                        + option)
    assert rc == 1 and out == ""
    assert err == (f"matchcore replay: error: {option[0]} works with ITCH replays, not with a "
                   f"LOBSTER file\n")


@pytest.mark.parametrize("outs", [["--plot", "P"], ["--out", "O", "--plot", "P"]],
                         ids=["plot", "out-and-plot"])
def test_cli_replay_dump_book_in_the_plot_directory_it_makes_written(capsys, tmp_path, outs):
    # --plot makes its directory as --out does, yet a file output there was refused ("no
    # directory D") when D did not exist before the run, where --out D was accepted
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    argv = [str(tmp_path / "new" / v) if v in ("O", "P") else v for v in outs]
    plot = tmp_path / "new" / "P"
    rc, _, err = _run(capsys, ["replay", str(day), *argv, "--dump-book",
                               str(plot / "book.csv"), "--no-progress"])
    assert rc == 0, err
    assert (plot / "book.csv").read_text().count("\n") > 1
    assert any(p.suffix == ".png" for p in plot.iterdir())


@pytest.mark.parametrize("option, name", [("--out", "tob.npy"), ("--out", "summary.json"),
                                          ("--plot", "AAPL.png")])
def test_cli_replay_directory_output_over_an_input_refused_input_left_whole(capsys, tmp_path,
                                                                            option, name):
    # --dump-book naming an input is refused, but --out D (--plot D) wrote its tob.npy
    # (AAPL.png) over an input file of that name in D: the input was gone, exit status 0
    import matchcore.itch as itch

    d = tmp_path / "d"
    d.mkdir()
    day = d / name
    itch.generate(day, messages=2000, symbols=2, seed=1)
    data = day.read_bytes()
    rc, out, err = _run(capsys, ["replay", str(day), "--format", "itch", option, str(d),
                                 "--no-progress"])
    assert rc == 1 and out == ""
    assert err == (f"matchcore replay: error: {option} {d}: writes {day}, the input file, "
                   f"which it would replace\n")
    assert day.read_bytes() == data and list(d.iterdir()) == [day]


@pytest.mark.parametrize("argv, status", [
    (["demo", "--messages", "2000", "--fills", "1"], 0),
    (["journal", "inspect", "{j}"], 0),
    (["journal", "trades", "{j}"], 0),
    (["recover", "{j}"], 0),
    # refused for its --depth, after the parse and before any connection
    (["subscribe", "nats://127.0.0.1:1", "--depth", "-1"], 1),
])
def test_cli_no_progress_accepted_by_commands_without_a_bar(capsys, tmp_path, argv, status):
    # a script passing --no-progress to every command broke on these four: argparse's
    # "unrecognized arguments" (exit 2), where the commands with a bar take it
    import matchcore as mc

    eng = mc.Engine(journal=tmp_path / "j", fsync="never")
    eng.add_symbol(1, "A")
    eng.submit(1, 1, 0, 100, 5)
    eng.submit(1, 2, 1, 100, 3)
    eng.close()
    argv = [a.format(j=tmp_path / "j") for a in argv] + ["--no-progress"]
    rc, out, err = _run(capsys, argv)
    assert rc == status, err
    assert "unrecognized arguments" not in err and "Traceback" not in err
    if status == 0:
        assert out != "" and err == ""


def test_cli_replay_dump_book_dash_is_stdout_beside_a_directory_named_dash(
        capsys, tmp_path, monkeypatch):
    # '-' is stdout: the check of --dump-book looked at a path "-" in the current directory,
    # and a directory of that name refused the stdout CSV ("--dump-book -: is a directory")
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").mkdir()
    rc, out, err = _run(capsys, ["replay", str(day), "--dump-book", "-", "--no-progress"])
    assert rc == 0, err
    assert out.splitlines()[0] == "locate,symbol,side,level,price,qty,orders"
    assert len(out.splitlines()) > 1 and "replayed 2,000" in err


@pytest.mark.parametrize("argv, option", [
    (["replay", "{day}", "--dump-book", "{out}"], "--dump-book"),
    (["book", "{day}", "--symbol", "AAPL", "--plot", "{out}"], "--plot"),
    (["gen-itch", "{out}", "--messages", "2000"], "out"),
    (["bench", "standard", "--messages", "2000", "--quick", "--json", "{out}"], "--json"),
])
def test_cli_file_output_a_symlink_into_a_missing_directory_refused_before_work(
        capsys, tmp_path, argv, option):
    # open() writes a symlink's target, whose directory does not exist: replay found it only
    # after the whole replay, its summary printed ("[Errno 2] No such file or directory")
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    link = tmp_path / "out.png"
    link.symlink_to(tmp_path / "new" / "out.png")
    argv = [a.format(day=day, out=link) for a in argv] + ["--no-progress"]
    rc, out, err = _run(capsys, argv)
    assert (rc, out) == (1, "")
    assert err == (f"matchcore {argv[0]}: error: {option} {link}: no directory "
                   f"{tmp_path / 'new'} (a symlink to {tmp_path / 'new' / 'out.png'})\n")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("argv, option", [
    (["replay", "{day}", "--dump-book", "{out}"], "--dump-book"),
    (["gen-itch", "{out}", "--messages", "2000"], "out"),
    (["bench", "standard", "--messages", "2000", "--quick", "--json", "{out}"], "--json"),
    (["replay", "{day}", "--out", "{out}"], "--out"),
    (["bench", "standard", "--messages", "2000", "--quick", "--save-workloads", "{out}"],
     "--save-workloads"),
])
def test_cli_output_a_symlink_loop_refused_before_work(capsys, tmp_path, argv, option):
    # open() cannot follow it: "[Errno 40] Too many levels of symbolic links" after the whole
    # replay, its summary printed. A directory output said "a symlink to b.out, which does not
    # exist", of a link that exists
    import matchcore.itch as itch

    day = tmp_path / "day.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    a, b = tmp_path / "a.out", tmp_path / "b.out"
    a.symlink_to(b)
    b.symlink_to(a)
    argv = [x.format(day=day, out=a) for x in argv] + ["--no-progress"]
    rc, out, err = _run(capsys, argv)
    assert (rc, out) == (1, "")
    assert err == f"matchcore {argv[0]}: error: {option} {a}: a symlink loop\n"


def test_cli_bench_json_through_a_symlink_to_a_new_file_writes_the_target(capsys, tmp_path):
    # the check before the run created the link's target and then unlinked the path given:
    # the symlink was gone (replaced by a plain file after the run) and an empty target left
    import os

    target = tmp_path / "results" / "b.json"
    target.parent.mkdir()
    link = tmp_path / "b.json"
    link.symlink_to(target)
    rc, out, err = _run(capsys, BENCH + ["--json", str(link)])
    assert rc == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().startswith("{")


@pytest.mark.parametrize("argv, option, name, said", [
    (["replay", "{day}", "--no-progress"], "--out", "tob.npy", "no directory"),
    (["replay", "{day}", "{day2}", "--no-progress"], "--out", "day", "the sinks of"),
    (BENCH, "--save-workloads", "standard_2000_1.npz", "no directory"),
])
def test_cli_directory_output_a_symlink_to_nothing_at_a_name_it_writes_refused_before_work(
        capsys, tmp_path, argv, option, name, said):
    # a symlink at D/tob.npy (with several files, at the directory D/<file>) to a place that
    # cannot be made: "[Errno 2] No such file or directory: 'D/tob.npy'" ("[Errno 17] File
    # exists: 'D/day'") after the whole replay, its summary printed
    import matchcore.itch as itch

    day, day2 = tmp_path / "day.itch", tmp_path / "day2.itch"
    itch.generate(day, messages=2000, symbols=2, seed=1)
    itch.generate(day2, messages=2000, symbols=2, seed=2)
    d = tmp_path / "d"
    d.mkdir()
    (d / name).symlink_to(tmp_path / "gone" / name)
    argv = [a.format(day=day, day2=day2) for a in argv] + [option, str(d)]
    rc, out, err = _run(capsys, argv)
    assert (rc, out) == (1, ""), err
    assert err.startswith(f"matchcore {argv[0]}: error: {option} {d}: {d / name}")
    assert said in err and err.count("\n") == 1
    assert sorted(p.name for p in d.iterdir()) == [name] and not (tmp_path / "gone").exists()


def test_cli_gen_itch_one_symbol_summary_says_symbol(capsys, tmp_path):
    # "wrote 100 ITCH 5.0 messages for 1 symbols"
    rc, out, _ = _run(capsys, ["gen-itch", str(tmp_path / "d.itch"), "--messages", "100",
                               "--symbols", "1", "--no-progress"])
    assert rc == 0 and out.startswith("wrote 100 ITCH 5.0 messages for 1 symbol (seed 1) to ")
