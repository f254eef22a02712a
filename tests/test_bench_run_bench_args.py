"""``matchcore.cli_bench.run_bench``: its keyword arguments are checked before any work, and
the result records them as plain JSON values."""
from __future__ import annotations

import numpy as np
import pytest

from matchcore.bench.report import json_text
from matchcore.cli_bench import run_bench


@pytest.mark.parametrize("seed, words", [("1", "seed must be an integer, got str '1'"),
                                         (True, "seed must be an integer, got bool True"),
                                         (1.5, "seed must be an integer, got float 1.5")])
def test_run_bench_seed_not_an_integer_refused_before_work(monkeypatch, seed, words):
    # "1" was refused as "'<=' not supported between instances of 'int' and 'str'", naming
    # nothing; True ran as seed 1 and was recorded as true; 1.5 was refused by the generator,
    # after the machine and the clock had been measured
    import matchcore.bench.machine as machine

    def machine_info():
        raise AssertionError("machine_info ran: the work started")

    monkeypatch.setattr(machine, "machine_info", machine_info)
    with pytest.raises(TypeError) as exc:
        run_bench(["standard"], messages=2000, quick=True, progress=False, seed=seed)
    assert str(exc.value) == words


def test_run_bench_numpy_seed_recorded_as_int():
    res = run_bench(["standard"], messages=2000, quick=True, progress=False, seed=np.int64(3))
    assert type(res["command"]["seed"]) is int and res["command"]["seed"] == 3
    assert '"seed": 3' in json_text(res)


def test_run_bench_rate_bool_refused_before_work(monkeypatch):
    # rate=True ran the open loop at 1 message/s: 2,000 messages took over half an hour
    import matchcore.bench.machine as machine

    def machine_info():
        raise AssertionError("machine_info ran: the work started")

    monkeypatch.setattr(machine, "machine_info", machine_info)
    with pytest.raises(TypeError) as exc:
        run_bench(["standard"], messages=2000, quick=True, progress=False, rate=True)
    assert str(exc.value) == "rate must be a number of messages/s, got bool True"


@pytest.mark.parametrize("kw, exc_type, words", [
    ({"targets": None}, TypeError, "targets must be a list of workload and section names, got "
                                   "NoneType None"),
    ({"targets": 5}, TypeError, "targets must be a list of workload and section names, got int 5"),
    ({"targets": [5]}, TypeError, "targets must be a list of workload and section names, got "
                                  "int 5 among them"),
    ({"messages": True}, TypeError, "messages must be an integer, got bool True"),
    ({"save_dir": 5}, TypeError, "save_dir must be a path (str or os.PathLike), got int 5"),
    # "" is Path("."): the workloads went into the current directory, where the command
    # refuses --save-workloads "" as an empty path
    ({"save_dir": ""}, ValueError, "save_dir: an empty path"),
    ({"save_dir": "  "}, ValueError, "save_dir: an empty path"),
    ({"clock": "bogus"}, ValueError, "unknown clock 'bogus': use 'auto', 'tsc' or 'monotonic'"),
])
def test_run_bench_bad_argument_refused_naming_its_keyword_before_work(monkeypatch, kw, exc_type,
                                                                       words):
    # save_dir=5 failed once the first workload was generated and measured, targets=None as
    # "'NoneType' object is not iterable", and messages=True ran one message
    import matchcore.bench.machine as machine
    import matchcore.workloads as W

    def started(*a, **k):
        raise AssertionError("the work started")

    monkeypatch.setattr(machine, "machine_info", started)
    monkeypatch.setattr(W, "generate", started)
    args = {"targets": ["standard"], "messages": 2000, **kw}
    with pytest.raises(exc_type) as exc:
        run_bench(args.pop("targets"), quick=True, progress=False, **args)
    assert str(exc.value) == words


def test_run_bench_save_dir_existing_file_refused_before_work(monkeypatch, tmp_path):
    # a regular file as save_dir failed only once the first workload had been generated and
    # measured, with mkdir's raw FileExistsError
    import matchcore.bench.machine as machine
    import matchcore.workloads as W

    def started(*a, **k):
        raise AssertionError("the work started")

    monkeypatch.setattr(machine, "machine_info", started)
    monkeypatch.setattr(W, "generate", started)
    f = tmp_path / "workloads"
    f.write_text("kept\n")
    for given in (f, str(f)):
        with pytest.raises(ValueError) as exc:
            run_bench(["standard"], messages=2000, quick=True, progress=False, save_dir=given)
        assert str(exc.value) == f"save_dir {f}: exists and is not a directory"
    assert f.read_text() == "kept\n"


@pytest.mark.parametrize("name", ["standard_2000_1.npz", "standard_2000_1.flow.mccmd"])
def test_run_bench_save_dir_directory_at_a_workload_file_refused_before_work(monkeypatch,
                                                                             tmp_path, name):
    # a directory where a workload's file goes was found once the machine, the clock and the
    # workload had been measured and generated, in the words of the command's option
    # (--save-workloads), which a caller of run_bench never gave
    import matchcore.bench.machine as machine
    import matchcore.workloads as W

    def started(*a, **k):
        raise AssertionError("the work started")

    monkeypatch.setattr(machine, "machine_info", started)
    monkeypatch.setattr(W, "generate", started)
    (tmp_path / name).mkdir()
    with pytest.raises(ValueError) as exc:
        run_bench(["standard"], messages=2000, quick=True, progress=False, save_dir=tmp_path)
    assert str(exc.value) == (f"save_dir {tmp_path}: {tmp_path / name} is a directory, where it "
                              f"writes a file")


@pytest.mark.parametrize("targets, kw, words", [
    (["standard"], {"rate": 0}, "rate must be a finite number of messages/s > 0, got 0"),
    (["standard"], {"rate": 2e9}, "rate 2e+09: arrivals less than 1 ns apart: at most 1e+09 "
                                  "messages/s"),
    (["standard"], {"seed": -1}, "seed must be in [0, 2**64), got -1"),
    (["standard"], {"messages": 0}, "messages must be > 0, got 0"),
    (["standard"], {"messages": 2**63}, f"messages {2**63:,}: more commands than the generated "
                                        f"workloads number with 63-bit order ids: at most "
                                        f"9,223,372,036,854,774,807"),
    (["itch"], {"messages": 5}, "messages 5: the itch workload's 8-symbol day needs at least "
                                "38 messages"),
    (["itch"], {"rate": 1e6}, "rate applies to the generated workloads (standard, market_maker, "
                              "deep_book, sweep, wide_book, stale_cancel, market_heavy), and "
                              "none is chosen"),
    (["itch"], {"rate": 1e6, "save_dir": "w"}, "rate and save_dir apply to the generated "
                                               "workloads (standard, market_maker, deep_book, "
                                               "sweep, wide_book, stale_cancel, market_heavy), "
                                               "and none is chosen"),
])
def test_run_bench_bad_value_refused_naming_its_keyword_not_the_option(monkeypatch, tmp_path,
                                                                      targets, kw, words):
    # the value errors named the command's options (--rate, --seed, --messages,
    # --save-workloads), which a caller of run_bench never gave, where its type errors named
    # the keywords
    import matchcore.bench.machine as machine
    import matchcore.workloads as W

    def started(*a, **k):
        raise AssertionError("the work started")

    monkeypatch.setattr(machine, "machine_info", started)
    monkeypatch.setattr(W, "generate", started)
    monkeypatch.chdir(tmp_path)
    args = {"messages": 2000, **kw}
    with pytest.raises(ValueError) as exc:
        run_bench(targets, quick=True, progress=False, **args)
    assert str(exc.value) == words
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("rate", [__import__("fractions").Fraction(10**6), np.float32(1e6)])
def test_run_bench_rate_of_another_real_type_recorded_as_float(rate):
    # a Fraction was taken (a real number), ran the whole benchmark and was recorded as is:
    # the result could not be written as JSON ("Object of type Fraction is not JSON
    # serializable"), the figures lost after the run
    res = run_bench(["standard"], messages=2000, quick=True, progress=False, rate=rate)
    assert type(res["command"]["rate"]) is float and res["command"]["rate"] == 1e6
    assert type(res["workloads"]["standard"]["open"]["rate_per_s"]) is float
    assert '"rate": 1000000.0' in json_text(res)
