"""An output file its user may not write (``chmod a-w``): refused as ``open()`` refuses it,
and left as it was. The temporary file renamed over it replaced a file that ``open()`` (and
the shell's ``>``) would not write."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import matchcore.itch as itch

_AS_NOBODY = pytest.mark.skipif(os.geteuid() != 0 or not hasattr(os, "setresuid"),
                                reason="needs root to run a child as another user "
                                       "(root may write any file)")

NOBODY = 65534


def _as_nobody(code: str, cwd, warm: str = "") -> subprocess.CompletedProcess:
    # imports as root (the interpreter's library may not be readable by others; ``warm`` runs
    # the command once as root elsewhere so that every module it imports is in), then drops
    # to nobody
    prelude = ("import os, sys\n"
               "import matchcore._cliutil, matchcore.__main__, matchcore.cli_replay\n"
               + warm +
               "os.setgroups([]); "
               f"os.setresgid({NOBODY}, {NOBODY}, {NOBODY}); "
               f"os.setresuid({NOBODY}, {NOBODY}, {NOBODY})\n")
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.fixture
def workdir(request):
    top = Path(tempfile.mkdtemp())          # pytest's tmp_path is not reachable by others
    request.addfinalizer(lambda: shutil.rmtree(top, ignore_errors=True))
    top.chmod(0o755)
    d = top / "w"
    d.mkdir()
    os.chown(d, NOBODY, NOBODY)             # nobody may make files here
    itch.generate(d / "day.itch", messages=5_000, symbols=2, seed=3)
    os.chmod(d / "day.itch", 0o644)
    return d


def _protected(d: Path, name: str) -> Path:
    path = d / name
    path.write_bytes(b"keep me\n")
    os.chown(path, NOBODY, NOBODY)
    path.chmod(0o444)
    return path


@_AS_NOBODY
def test_atomic_output_write_protected_file_refused_as_open_refuses_it(workdir):
    path = _protected(workdir, "out.csv")
    r = _as_nobody("from matchcore._cliutil import atomic_output\n"
                   "try:\n"
                   "    open('out.csv', 'w')\n"
                   "except PermissionError:\n"
                   "    print('open refused')\n"
                   "try:\n"
                   "    with atomic_output('out.csv') as f:\n"
                   "        f.write('new')\n"
                   "except PermissionError as e:\n"
                   "    print('atomic refused', e.filename)\n", workdir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["open refused", "atomic refused out.csv"]
    assert path.read_bytes() == b"keep me\n" and sorted(os.listdir(workdir)) == ["day.itch",
                                                                                 "out.csv"]


@_AS_NOBODY
@pytest.mark.parametrize("argv, name, option", [
    (["replay", "day.itch", "--dump-book", "book.csv"], "book.csv", "--dump-book"),
    (["replay", "day.itch", "--out", "."], "tob.npy", "--out .: tob.npy"),
    (["gen-itch", "g.itch", "--messages", "1000", "--symbols", "1"], "g.itch", "out"),
    (["book", "day.itch", "--symbol", "AAPL", "--plot", "d.png"], "d.png", "--plot"),
])
def test_cli_write_protected_output_refused_before_work_left_as_it_was(workdir, argv, name,
                                                                       option):
    if option == "--plot":
        pytest.importorskip("matplotlib")
    path = _protected(workdir, name)
    scratch = Path(tempfile.mkdtemp())
    try:
        warm = [str(scratch / a) if a in (name, ".") else str(workdir / a)
                if a == "day.itch" else a for a in argv]
        r = _as_nobody("from matchcore.__main__ import main\n"
                       f"sys.exit(main({[*argv, '--no-progress']!r}))\n", workdir,
                       warm="import contextlib, io\n"
                            "with contextlib.redirect_stdout(io.StringIO()):\n"
                            f"    assert matchcore.__main__.main({[*warm, '--no-progress']!r}) "
                            f"== 0\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert r.returncode == 1, r.stdout + r.stderr
    # one line, before any work: no summary printed
    assert r.stdout == "" and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    shown = option if option.startswith("--out") else f"{option} {name}:"
    assert r.stderr.startswith(f"matchcore {argv[0]}: error: {shown} cannot be "
                               f"written: [Errno 13] Permission denied")
    assert path.read_bytes() == b"keep me\n"
    assert sorted(os.listdir(workdir)) == sorted({"day.itch", name})


@_AS_NOBODY
def test_cli_dump_book_to_dev_stdout_not_openable_by_name_written_through_stdout(workdir):
    # /dev/stdout naming a file the user may not open (a terminal another user owns, after
    # su): replay writes the CSV through its stdout, which is open already, and must not
    # refuse it as a protected file
    out = _protected(workdir, "captured.txt")
    out.write_bytes(b"")
    warm = (f"import contextlib, io\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert matchcore.__main__.main(['replay', {str(workdir / 'day.itch')!r}, "
            f"'--dump-book', '-', '--no-progress']) == 0\n")
    code = ("fd = os.open('captured.txt', os.O_WRONLY)\n"     # as root, before dropping
            "os.dup2(fd, 1)\n")
    r = subprocess.run([sys.executable, "-c",
                        "import os, sys\n"
                        "import matchcore._cliutil, matchcore.__main__, matchcore.cli_replay\n"
                        + warm + code +
                        "os.setgroups([]); "
                        f"os.setresgid({NOBODY}, {NOBODY}, {NOBODY}); "
                        f"os.setresuid({NOBODY}, {NOBODY}, {NOBODY})\n"
                        # dumpable again, as a process started by the user is: /proc/self/fd
                        # (behind /dev/stdout) is otherwise root's
                        "import ctypes; ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)\n"
                        "from matchcore.__main__ import main\n"
                        "sys.exit(main(['replay', 'day.itch', '--dump-book', '/dev/stdout', "
                        "'--no-progress']))\n"],
                       capture_output=False, stderr=subprocess.PIPE, text=True, cwd=workdir,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("locate,symbol,side,level,price,qty,orders\n")


def test_cli_output_file_on_a_read_only_mount_refused_naming_that(tmp_path, monkeypatch,
                                                                  capsys):
    # access() refuses every writer there, root too: the refusal said "Permission denied",
    # where open() says "Read-only file system" (no read-only mount to be had in a test: the
    # file system's answers are given)
    import matchcore._cliutil as cliutil
    from matchcore.__main__ import main

    out = tmp_path / "g.itch"
    out.write_bytes(b"keep me\n")
    real_statvfs = os.statvfs

    class ReadOnly:
        def __init__(self, st):
            self.st = st

        def __getattr__(self, name):
            return getattr(self.st, name)

        f_flag = os.ST_RDONLY

    monkeypatch.setattr(cliutil.os, "access", lambda *a, **k: False)
    monkeypatch.setattr(cliutil.os, "statvfs", lambda p: ReadOnly(real_statvfs(p)))
    code = main(["gen-itch", str(out), "--messages", "1000", "--symbols", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and out.read_bytes() == b"keep me\n"
    assert err == (f"matchcore gen-itch: error: out {out}: cannot be written: [Errno 30] "
                   f"Read-only file system\n")


@_AS_NOBODY
def test_cli_output_of_another_user_in_a_sticky_directory_written_as_open_writes_it(request):
    # /tmp-like: anyone makes files, nobody replaces another's. A file there that its owner
    # let others write (0666) was written by open(), but the temporary renamed over it was
    # refused (EPERM) after the whole replay, its error naming the temporary file
    top = Path(tempfile.mkdtemp())
    request.addfinalizer(lambda: shutil.rmtree(top, ignore_errors=True))
    top.chmod(0o755)
    sticky = top / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    itch.generate(sticky / "day.itch", messages=5_000, symbols=2, seed=3)
    os.chmod(sticky / "day.itch", 0o644)
    shared = sticky / "shared.csv"
    shared.write_text("old\n")                  # root's
    shared.chmod(0o666)
    warm = ("import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert matchcore.__main__.main(['replay', 'day.itch', '--dump-book', '-', "
            "'--no-progress']) == 0\n")
    r = _as_nobody("from matchcore.__main__ import main\n"
                   "sys.exit(main(['replay', 'day.itch', '--dump-book', 'shared.csv', "
                   "'--no-progress']))\n", sticky, warm=warm)
    assert r.returncode == 0, r.stderr
    assert shared.read_bytes().startswith(b"locate,symbol,side,level,price,qty,orders\r\n")
    assert sorted(os.listdir(sticky)) == ["day.itch", "shared.csv"]
    assert shared.stat().st_uid == 0
