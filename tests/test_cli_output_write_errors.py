"""An output file that fails while it is written (a full disk, a file size limit): the error
names the option and the path, and no partial file is left under the output's name."""
from __future__ import annotations

import resource
import subprocess
import sys

import pytest

import matchcore as mc
import matchcore.itch as itch
from durability_flow import apply_steps, make_flow


def _run_limited(*argv, cwd, size):
    # size: the bytes a file may grow to in the child (RLIMIT_FSIZE)
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return subprocess.run([sys.executable, "-m", "matchcore", *map(str, argv), "--no-progress"],
                          preexec_fn=limit, capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    path = tmp_path_factory.mktemp("day") / "day.itch"
    itch.generate(path, messages=20_000, symbols=2, seed=3)
    return path


@pytest.fixture(scope="module")
def journal_dir(tmp_path_factory):
    steps, cmds = make_flow(31, 600)
    path = tmp_path_factory.mktemp("journal") / "j"
    eng = mc.Engine(journal=path, fsync="batch", segment_bytes=16384)
    apply_steps(eng, steps, cmds)
    eng.close()
    return path


@pytest.mark.parametrize("argv, size, option, target", [
    (["gen-itch", "big.itch", "--messages", "20000"], 20_000, "out", "big.itch"),
    (["replay", "DAY", "--dump-book", "book.csv"], 100, "--dump-book", "book.csv"),
    (["replay", "DAY", "--dump-book", "book.csv"], 20_000, None, None),
    (["replay", "DAY", "--out", "od"], 20_000, "--out", "od/tob.npy"),
    (["bench", "standard", "--messages", "2000", "--quick", "--json", "b.json"], 500, "--json",
     "b.json"),
    (["bench", "standard", "--messages", "2000", "--quick", "--save-workloads", "w"], 500,
     "--save-workloads", "w"),
    (["replay", "DAY", "--plot", "p"], 500, "--plot", "p"),
    (["journal", "inspect", "JDIR", "--json", "i.json"], 500, "--json", "i.json"),
    (["journal", "trades", "JDIR", "--csv", "t.csv"], 500, "--csv", "t.csv"),
], ids=["gen-itch", "dump-book", "dump-book-fits", "out", "bench-json", "save-workloads",
        "plot", "journal-json", "journal-csv"])
def test_cli_output_failing_while_written_names_option_and_path(tmp_path, day, journal_dir,
                                                                 argv, size, option, target):
    # "[Errno 27] File too large" (ENOSPC: "[Errno 28] No space left on device") named no
    # output, and numpy's "9215 requested and 15 written" for --out not even the error
    if "--plot" in argv:
        pytest.importorskip("matplotlib")
    named = {"DAY": str(day), "JDIR": str(journal_dir)}
    p = _run_limited(*[named.get(a, a) for a in argv], cwd=tmp_path, size=size)
    if option is None:          # outputs under the limit: written as ever
        assert p.returncode == 0, p.stderr
        return
    assert p.returncode == 1, p.stderr
    assert p.stderr == (f"matchcore {argv[0]}: error: {option} {target}: cannot be written: "
                        f"[Errno 27] File too large\n")
    assert not (tmp_path / target).is_file()
    assert not [x for x in tmp_path.rglob("*") if x.name.endswith(".part")]


def _to_full_stdout(argv, day, journal_dir, unbuffered):
    """``matchcore ARGV > /dev/full``, with stdout unbuffered (``unbuffered`` "1", python -u)
    or buffered as in a user's shell (""): whichever the test run's environment sets."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    with open("/dev/full", "wb") as full:
        return subprocess.run([sys.executable, "-m", "matchcore",
                               *[{"DAY": str(day), "JDIR": str(journal_dir)}.get(a, a)
                                 for a in argv], "--no-progress"],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=300,
                              env=env)


@pytest.mark.parametrize("unbuffered", ["1", ""])
@pytest.mark.parametrize("argv, option", [
    (["gen-itch", "-", "--messages", "2000"], "out"),
    (["replay", "DAY", "--dump-book", "-"], "--dump-book"),
    (["bench", "standard", "--messages", "2000", "--quick", "--json", "-"], "--json"),
    (["journal", "inspect", "JDIR", "--json", "-"], "--json"),
    (["journal", "trades", "JDIR", "--csv", "-"], "--csv"),
], ids=["gen-itch", "dump-book", "bench-json", "journal-json", "journal-csv"])
def test_cli_output_to_full_stdout_names_option_and_stdout(day, journal_dir, argv, option,
                                                           unbuffered):
    # '> /dev/full': the output sent to '-' failed with "[Errno 28] No space left on device",
    # naming neither the option nor stdout. With stdout buffered, the bytes it still held
    # failed again as the command ended: a second line, "stdout: cannot be written"
    p = _to_full_stdout(argv, day, journal_dir, unbuffered)
    assert p.returncode == 1, p.stderr
    assert [line for line in p.stderr.splitlines() if "error:" in line] == [
        f"matchcore {argv[0]}: error: {option} - (stdout): cannot be written: [Errno 28] No "
        f"space left on device"], p.stderr


@pytest.mark.parametrize("unbuffered", ["1", ""])
@pytest.mark.parametrize("argv", [["replay", "DAY"], ["journal", "inspect", "JDIR"],
                                  ["demo", "--messages", "1000"]],
                         ids=["replay", "journal-inspect", "demo"])
def test_cli_summary_to_full_stdout_names_stdout(day, journal_dir, argv, unbuffered):
    # '> /dev/full': the plain summary failed with "[Errno 28] No space left on device" alone,
    # where every output sent to '-' is named
    p = _to_full_stdout(argv, day, journal_dir, unbuffered)
    assert p.returncode == 1, p.stderr
    assert p.stderr == (f"matchcore {argv[0]}: error: stdout: cannot be written: "
                        f"[Errno 28] No space left on device\n")


@pytest.mark.parametrize("unbuffered", ["1", ""])
@pytest.mark.parametrize("argv", [["replay", "--help"], ["--help"]], ids=["replay", "top"])
def test_cli_help_to_full_stdout_exit_1_names_stdout(argv, unbuffered):
    # argparse ignores an OSError writing the help: with stdout unbuffered (python -u) the help
    # was lost on a full disk and the command exited 0
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    with open("/dev/full", "wb") as full:
        p = subprocess.run([sys.executable, "-m", "matchcore", *argv], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    who = "matchcore" + (f" {argv[0]}" if argv[0] != "--help" else "")
    assert p.returncode == 1, p.stderr
    assert p.stderr == (f"{who}: error: stdout: cannot be written: "
                        f"[Errno 28] No space left on device\n")


@pytest.mark.parametrize("code", ["ENOSPC", "EDQUOT", "EMFILE"])
def test_atomic_output_temporary_not_made_for_lack_of_room_keeps_old_file(tmp_path, monkeypatch,
                                                                         code):
    # a full disk (or quota, or descriptors) refusing the temporary file was taken for a
    # directory that refuses new files: the old file was opened in place, truncated, and the
    # write then failed for the same lack of room, the previous file lost
    import errno
    import os

    import matchcore._cliutil as cliutil

    path = tmp_path / "book.csv"
    path.write_text("old\n")
    real_open = os.open

    def no_room(p, *args, **kwargs):
        if str(p).endswith(".part"):
            raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), str(p))
        return real_open(p, *args, **kwargs)

    monkeypatch.setattr(cliutil.os, "open", no_room)
    with pytest.raises(OSError) as info:
        with cliutil.atomic_output(path) as f:
            f.write("new\n")
    assert info.value.errno == getattr(errno, code)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["book.csv"]
