"""The examples run and agree: the Numba, C and Python market makers end in the same state for
the same seed, and the C program built against the installed header replays a random session
with exactly the Python results."""
from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import matchcore as mc
from matchcore import _capi
from matchcore._core import COMMAND_DTYPE, EVENT_DTYPE
from conftest import assert_events_equal
from test_capi import random_commands, run_python_calls

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SRC = Path(mc.__file__).resolve().parents[1]
STEPS = "3000"


def _env(tmp_path=None):
    env = dict(os.environ)
    # the embedded interpreter of the C example needs matchcore and numpy on its path
    paths = [str(SRC), *site.getsitepackages()]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    env["OPENBLAS_NUM_THREADS"] = "1"
    if tmp_path is not None:
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    return env


def _summary(text: str) -> dict:
    nums = {}
    m = re.search(r"flow orders (\d+), agent orders (\d+), fills (\d+) \((\d+) lots\)", text)
    assert m, text
    nums["counts"] = tuple(map(int, m.groups()))
    m = re.search(r"position (-?\d+), cash (-?\d+), mark-to-mid PnL (-?[\d.]+)", text)
    assert m, text
    nums["pnl"] = m.groups()
    m = re.search(r"(\d+) resting orders, state hash (0x[0-9a-f]+)", text)
    assert m, text
    nums["book"] = m.groups()
    return nums


def _run(cmd, env, timeout=300):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def c_program(tmp_path_factory):
    """examples/c_market_maker.c compiled with the system C compiler against the installed
    matchcore.h, embedding this Python (python3-config --embed equivalent from sysconfig)."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc/clang) on PATH: the C example is not built")
    py_inc = sysconfig.get_paths()["include"]
    if not (Path(py_inc) / "Python.h").exists():
        pytest.skip(f"Python.h not found in {py_inc}: cannot embed Python in the C example")
    libdir = sysconfig.get_config_var("LIBDIR")
    ldver = sysconfig.get_config_var("LDVERSION")
    tmp = tmp_path_factory.mktemp("cbuild")
    link = [f"-L{libdir}", f"-Wl,-rpath,{libdir}", f"-lpython{ldver}", "-ldl", "-lm"]
    exe = tmp / "c_market_maker"
    cmd = [cc, "-O2", "-Wall", "-Werror", "-I", _capi.get_include(), "-I", py_inc,
           str(EXAMPLES / "c_market_maker.c"), "-o", str(exe), *link]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        # Tell "this Python cannot be embedded here" (skip) from a broken example (fail).
        probe = tmp / "probe.c"
        probe.write_text("#include <Python.h>\nint main(void){Py_Initialize();return 0;}\n")
        ok = subprocess.run([cc, "-I", py_inc, str(probe), "-o", str(tmp / "probe"), *link],
                            capture_output=True, text=True)
        if ok.returncode != 0:
            pytest.skip(f"cannot link an embedded Python here (libpython{ldver} in {libdir}?): "
                        f"{ok.stderr.strip()[:300]}")
        pytest.fail(f"examples/c_market_maker.c does not build:\n{out.stderr}")
    return exe


def test_examples_python_agent_prints_summary():
    out = _run([sys.executable, str(EXAMPLES / "python_agent.py"), "--steps", STEPS], _env())
    s = _summary(out)
    assert s["counts"][0] > 0 and s["counts"][2] > 0  # flow orders and agent fills happened


def test_examples_numba_market_maker_matches_python_agent(tmp_path):
    pytest.importorskip("numba", reason="numba not installed: the Numba example is skipped")
    nb = _summary(_run([sys.executable, str(EXAMPLES / "numba_market_maker.py"),
                        "--steps", STEPS], _env(tmp_path)))
    py = _summary(_run([sys.executable, str(EXAMPLES / "python_agent.py"), "--steps", STEPS],
                       _env()))
    assert nb == py


def test_examples_c_market_maker_matches_python_agent(c_program):
    c = _summary(_run([str(c_program), STEPS, "42"], _env()))
    py = _summary(_run([sys.executable, str(EXAMPLES / "python_agent.py"), "--steps", STEPS],
                       _env()))
    assert c == py


@pytest.mark.parametrize("args", [["saftey"], ["2000O", "42"], ["100", "x"],
                                  ["100", str(2**64)], ["1", "2", "3"], ["safety", "x"]])
def test_examples_c_market_maker_bad_arguments_usage_exit_2(c_program, args):
    # atoll() read a misspelt "safety" as 0 steps: nothing ran and the exit status said success
    out = subprocess.run([str(c_program), *args], capture_output=True, text=True, env=_env(),
                         timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert "usage:" in out.stderr


@pytest.mark.parametrize("seed", [1, 2])
def test_examples_c_replay_matches_python_results(c_program, tmp_path, seed):
    cmds = random_commands(2000, seed)
    cmd_file, ev_file = tmp_path / "cmds.bin", tmp_path / "events.bin"
    cmd_file.write_bytes(cmds.tobytes())
    out = _run([str(c_program), "replay", str(cmd_file), str(ev_file)], _env())
    book = mc.OrderBook()
    expect = run_python_calls(book, cmds)
    got = np.frombuffer(ev_file.read_bytes(), dtype=EVENT_DTYPE)
    assert_events_equal(got, expect, labels=("C program", "Python calls"))
    fields = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert int(fields["state_hash"], 16) == book.state_hash()
    assert int(fields["resting"]) == len(book)
    assert fields["process_matches"] == "yes"
    assert fields["snapshot_restore"] == "exact"


def test_examples_c_replay_cancel_modify_with_owner_matches_process(c_program, tmp_path):
    # The per-call replay sent cancels and modifies through the table's cancel/modify, which
    # take no owner: a command naming its sender for an id that is not resting gave a REJECTED
    # event without that owner, where process() and the Python calls carry it, and the
    # program said "process_matches no" (exit 3) on a valid command file.
    cmds = random_commands(2000, 5)
    amend = cmds["kind"] >= 2
    cmds["owner"][amend] = np.arange(amend.sum()) % 3 + 1
    cmd_file, ev_file = tmp_path / "cmds.bin", tmp_path / "events.bin"
    cmd_file.write_bytes(cmds.tobytes())
    out = subprocess.run([str(c_program), "replay", str(cmd_file), str(ev_file)],
                         capture_output=True, text=True, env=_env(), timeout=120)
    fields = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert fields["process_matches"] == "yes" and out.returncode == 0, out.stdout
    expect = run_python_calls(mc.OrderBook(), cmds)
    got = np.frombuffer(ev_file.read_bytes(), dtype=EVENT_DTYPE)
    assert_events_equal(got, expect, labels=("C program", "Python calls"))
    assert (got["owner"][got["reason"] == mc.Reason.ORDER_NOT_FOUND] > 0).any()


@pytest.mark.parametrize("stp", [None, mc.STP.CANCEL_BOTH])
def test_examples_c_replay_of_a_native_command_file_matches_replay_commands(c_program, tmp_path,
                                                                             stp):
    # A .mccmd file (what write_commands, a Recorder and bench --save-workloads write, the
    # README's "command file") was read as raw records: its 32-byte header is not a whole
    # record, and the program said only "cannot read commands from ..." (exit 2)
    from matchcore.native import replay_commands, write_commands

    cmds = random_commands(2000, 3)
    cmds["owner"][cmds["kind"] == 0] %= 2          # owner 1 meets itself: STP decides
    cmd_file, ev_file = tmp_path / "flow.mccmd", tmp_path / "events.bin"
    write_commands(cmd_file, cmds, stp=stp)
    out = _run([str(c_program), "replay", str(cmd_file), str(ev_file)], _env())
    book = mc.OrderBook(stp if stp is not None else mc.STP.CANCEL_RESTING)
    expect = replay_commands(cmd_file, book)
    got = np.frombuffer(ev_file.read_bytes(), dtype=EVENT_DTYPE)
    assert_events_equal(got, expect, labels=("C program", "replay_commands"))
    assert (expect["reason"] == mc.Reason.SELF_TRADE).any()
    fields = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert int(fields["state_hash"], 16) == book.state_hash()
    assert fields["process_matches"] == "yes" and fields["snapshot_restore"] == "exact"


@pytest.mark.parametrize("case, why", [
    ("truncated", "whose size is not its header's count"),
    ("version", "of another version or layout"),
    ("odd_size", "neither a native command file nor whole mc_command records"),
    ("stp", "with an unknown STP mode"),
])
def test_examples_c_replay_of_a_bad_command_file_says_why_exit_2(c_program, tmp_path, case, why):
    from matchcore.native import write_commands

    cmd_file = tmp_path / "bad.mccmd"
    write_commands(cmd_file, random_commands(10, 1))
    data = bytearray(cmd_file.read_bytes())
    if case == "truncated":
        data = data[:-1]
    elif case == "version":
        data[6] = 2
    elif case == "stp":
        data[24] = 7
    else:
        data = data[32:] + b"x"
    cmd_file.write_bytes(bytes(data))
    out = subprocess.run([str(c_program), "replay", str(cmd_file), str(tmp_path / "ev.bin")],
                         capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"cannot read commands from {cmd_file}: ") and why in out.stderr
    assert not (tmp_path / "ev.bin").exists()


@pytest.mark.parametrize("native", [True, False])
def test_examples_c_replay_of_several_symbols_refused_as_replay_commands_refuses(c_program,
                                                                                tmp_path, native):
    # The replay applies every record to one book: symbol 1's bid and symbol 2's ask at one
    # price traded with each other, and the program reported the replay as exact (exit 0),
    # where replay_commands refuses such a file before any record
    from matchcore.native import replay_commands, write_commands

    cmds = np.zeros(3, COMMAND_DTYPE)
    cmds["order_id"] = [1, 2, 3]
    cmds["side"] = [0, 1, 1]
    cmds["price"] = 100
    cmds["qty"] = 5
    cmds["symbol"] = [1, 1, 2]
    cmd_file, ev_file = tmp_path / ("two.mccmd" if native else "two.bin"), tmp_path / "ev.bin"
    if native:
        write_commands(cmd_file, cmds)
        with pytest.raises(ValueError, match="records of symbols 1, 2"):
            replay_commands(cmd_file)
    else:
        cmd_file.write_bytes(cmds.tobytes())
    out = subprocess.run([str(c_program), "replay", str(cmd_file), str(ev_file)],
                         capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 2 and out.stdout == "", (out.returncode, out.stdout)
    assert out.stderr.startswith(f"cannot read commands from {cmd_file}: records of symbols "
                                 f"1 and 2 (record 3): ")
    assert not ev_file.exists()


@pytest.mark.parametrize("case, why", [
    ("missing", "No such file or directory"),
    ("directory", "is a directory, not a command file"),
    ("pipe", "not a regular file (a pipe, FIFO or device): write the commands to a file first"),
])
def test_examples_c_replay_of_an_unreadable_command_path_says_why(c_program, tmp_path, case,
                                                                  why):
    # Every path that could not be read was "cannot be read": a typo, a directory and a pipe
    # (/dev/stdin, a shell's <(...)) alike, as the file's size was taken with fseek / ftell
    ev_file = tmp_path / "ev.bin"
    cmd_path = {"missing": str(tmp_path / "nope.bin"), "directory": str(tmp_path),
                "pipe": "/dev/stdin"}[case]
    out = subprocess.run([str(c_program), "replay", cmd_path, str(ev_file)],
                         input=random_commands(10, 1).tobytes() if case == "pipe" else None,
                         capture_output=True, env=_env(), timeout=60)
    assert out.returncode == 2 and out.stdout == b""
    assert out.stderr.decode() == f"cannot read commands from {cmd_path}: {why}\n"
    assert not ev_file.exists()


@pytest.mark.parametrize("case", ["full", "missing_dir"])
def test_examples_c_replay_events_not_written_fails_saying_why(c_program, tmp_path, case):
    # The events went through stdio's buffer and fclose()'s result was not read: a file the
    # system could not take (a full disk; /dev/full here) lost them with exit status 0 and
    # the summary printed, when they fitted in one buffer. Neither message said why.
    if case == "full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    cmd_file = tmp_path / "cmds.bin"
    cmd_file.write_bytes(random_commands(10, 1).tobytes())
    ev_path = "/dev/full" if case == "full" else str(tmp_path / "no" / "ev.bin")
    why = "No space left on device" if case == "full" else "No such file or directory"
    out = subprocess.run([str(c_program), "replay", str(cmd_file), ev_path],
                         capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 2 and out.stdout == "", (out.returncode, out.stdout)
    assert out.stderr == f"cannot write events to {ev_path}: {why}\n"


def test_examples_c_safety_refuses_every_dead_or_foreign_handle(c_program):
    out = _run([str(c_program), "safety"], _env())
    lines = out.strip().splitlines()
    checks = [line.split() for line in lines if line.startswith("check ")]
    assert len(checks) >= 25
    assert all(c[2] == "ok" for c in checks), [c for c in checks if c[2] != "ok"]
    names = {c[1] for c in checks}
    assert {"freed_book_submit", "garbage_handles", "collected_python_book_submit",
            "freed_engine_submit", "freed_engine_book_handle", "bad_side_refused"} <= names
    assert lines[-1] == f"safety checks {len(checks)} failed 0"


def _py_examples():
    progs = [EXAMPLES / "python_agent.py"]
    try:
        import numba  # noqa: F401
        progs.append(EXAMPLES / "numba_market_maker.py")
    except ImportError:
        pass
    return progs


@pytest.mark.parametrize("seed", [str(2**64), str(-2**64), "x"])
def test_examples_python_examples_seed_out_of_range_usage_exit_2(seed, tmp_path):
    # --seed 2**64 failed in Numba with a typing error (a traceback, exit 1) and was wrapped
    # modulo 2**64 by the Python agent, where the C program refuses it with a usage error
    for prog in _py_examples():
        out = subprocess.run([sys.executable, str(prog), "--steps", "10", "--seed", seed],
                             capture_output=True, text=True, env=_env(tmp_path), timeout=300)
        assert out.returncode == 2 and out.stdout == "", (prog, out.stderr)
        assert "usage:" in out.stderr and "--seed" in out.stderr
        assert "Traceback" not in out.stderr


@pytest.mark.parametrize("steps", ["-1", str(2**63)])
def test_examples_steps_outside_0_2_63_usage_exit_2_by_all_three(c_program, tmp_path, steps):
    # -1 ran nothing and reported "-1 steps" with exit 0 in all three; 2**63 was a usage error
    # in C, a traceback in Numba (OverflowError, exit 1) and a run without end in Python
    outs = [subprocess.run([str(c_program), steps, "42"], capture_output=True, text=True,
                           env=_env(), timeout=60)]
    outs += [subprocess.run([sys.executable, str(p), "--steps", steps], capture_output=True,
                            text=True, env=_env(tmp_path), timeout=60) for p in _py_examples()]
    for out in outs:
        assert out.returncode == 2 and out.stdout == "", out.stderr
        assert "usage:" in out.stderr and "Traceback" not in out.stderr


def test_examples_seed_below_2_64_taken_modulo_2_64_by_all_three(c_program, tmp_path):
    # the accepted range is the C program's (strtoull): all three end in the same state
    want = _summary(_run([str(c_program), "200", str(2**64 - 1)], _env()))
    for prog in _py_examples():
        for seed in ("-1", str(2**64 - 1)):
            got = _summary(_run([sys.executable, str(prog), "--steps", "200", "--seed", seed],
                                _env(tmp_path)))
            assert got == want, (prog, seed)


def test_examples_zero_steps_print_no_rate(c_program, tmp_path):
    # "0 book calls in 0.0 ms (0 ns per call)" reported a time per call of no calls
    outs = [_run([str(c_program), "0", "42"], _env())]
    outs += [_run([sys.executable, str(p), "--steps", "0"], _env(tmp_path))
             for p in _py_examples()]
    for out in outs:
        assert re.search(r"\b0 book calls in [\d.]+ ms\n", out), out
        assert "per call" not in out


@pytest.mark.parametrize("args", [["1_000", "42"], ["100", "4_2"], ["\u0661\u0660", "42"],
                                  ["100", "\u0664\u0662"], ["100 ", "42"], ["100", "42 "]])
def test_examples_not_a_c_decimal_integer_usage_exit_2_by_all_three(c_program, tmp_path, args):
    # int() takes "1_000", Unicode digits and trailing blanks, which the C program's strtoll /
    # strtoull refuse with a usage error: the Python and Numba examples ran such a value
    steps, seed = args
    outs = [subprocess.run([str(c_program), steps, seed], capture_output=True, text=True,
                           env=_env(), timeout=60)]
    outs += [subprocess.run([sys.executable, str(p), "--steps", steps, "--seed", seed],
                            capture_output=True, text=True, env=_env(tmp_path), timeout=300)
             for p in _py_examples()]
    for out in outs:
        assert out.returncode == 2 and out.stdout == "", (args, out.stderr)
        assert "usage:" in out.stderr and "Traceback" not in out.stderr


def test_examples_one_step_said_in_the_singular_by_all_three(c_program, tmp_path):
    # --steps 1 was summarized as "1 steps"
    outs = [_run([str(c_program), "1", "42"], _env())]
    outs += [_run([sys.executable, str(p), "--steps", "1"], _env(tmp_path))
             for p in _py_examples()]
    for out in outs:
        assert re.match(r"[a-z ]+: 1 step, seed 42\n", out), out
    assert len({re.sub(r"^[a-z ]+: ", "", o.splitlines()[0]) for o in outs}) == 1
