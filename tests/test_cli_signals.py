"""The command line interrupted or piped, with real processes and real signals: Ctrl-C (SIGINT)
and SIGTERM end a command with one line on stderr, no traceback, status 130 / 143, a partial
summary, and no output file presented as complete; a reader that goes away (``| head``) ends it
quietly with status 141; a journal's LOCK left by a killed writer does not stand in the way.

The interruption is made certain, not timed: the replay reads a FIFO that the test fills with
more than one 4 MiB chunk and then keeps open, so the command is blocked inside its replay
(after feeding its first chunk) when the signal arrives."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import matchcore as mc

needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/wchan"),
                                reason="needs Linux /proc to see a process block on a FIFO")
import matchcore.itch as itch
from matchcore.__main__ import main
from matchcore._cliutil import atomic_output
from conftest import watch_fsync_and_replace

CLI = [sys.executable, "-m", "matchcore"]


@pytest.fixture(scope="module")
def day():
    """~9.4 MB of ITCH: more than two of the replay's 4 MiB chunks."""
    return itch.generate(None, messages=300_000, symbols=4, seed=3)


def _wait_blocked_reading(pid, timeout=30):
    """Until the process sleeps in read(2) on the FIFO. A signal that arrives while it is still
    inside a C read loop is handled only when that loop returns, and here it would never return:
    Python's own limit, not what the test is about."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/wchan") as f:
            if "pipe_read" in f.read():
                time.sleep(0.05)             # settled: still there a moment later
                with open(f"/proc/{pid}/wchan") as f2:
                    if "pipe_read" in f2.read():
                        return
        time.sleep(0.01)
    raise AssertionError("the command never blocked on the FIFO")


def _wait_blocked_writing(proc, timeout):
    """Until the process sleeps in write(2) on a full pipe (its reader about to leave)."""
    deadline = time.monotonic() + timeout
    while True:
        with open(f"/proc/{proc.pid}/wchan") as f:
            if "pipe_write" in f.read():
                return
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)


def _run_on_fifo(tmp_path, day, argv, sig, size=6_000_000):
    """Start ``matchcore ARGV FIFO``, write ``size`` bytes of ``day`` into the FIFO (6 MB: the
    process has fed its first chunk once that write returns), send ``sig`` while the FIFO is
    still open, and return (status, stdout, stderr, seconds from the signal to the exit)."""
    fifo = tmp_path / "feed.itch"
    os.mkfifo(fifo)
    proc = subprocess.Popen(CLI + [a if a != "FIFO" else str(fifo) for a in argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, cwd=tmp_path)
    try:
        with open(fifo, "wb") as w:                 # opens once the command opened it to read
            w.write(day[:size])
            w.flush()
            _wait_blocked_reading(proc.pid)
            t0 = time.monotonic()
            os.kill(proc.pid, sig)
            out, err = proc.communicate(timeout=30)  # the FIFO is still open: no EOF
            elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err, elapsed


@needs_proc
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_replay_signal_mid_replay_partial_summary_no_dump_status(tmp_path, day, sig, status):
    code, out, err, elapsed = _run_on_fifo(
        tmp_path, day, ["replay", "FIFO", "--format", "itch", "--no-progress",
                        "--dump-book", "book.csv", "--out", "sinks"], sig)
    assert code == status, err
    assert err == f"matchcore replay: interrupted by {signal.Signals(sig).name}\n"
    assert elapsed < 5
    line = out.strip().splitlines()[-1]
    assert line.startswith("interrupted after ") and "ITCH 5.0 messages" in line, out
    n = int(line.split()[2].replace(",", ""))
    assert 0 < n < 300_000                        # the first chunk was replayed, not the file
    assert "not written: --dump-book, --out" in line
    assert not (tmp_path / "book.csv").exists() and not (tmp_path / "sinks").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["feed.itch"]      # no temporary left


@needs_proc
def test_cli_replay_several_files_signal_partial_summary(tmp_path, day):
    # several files stopped by Ctrl-C said only "interrupted by SIGINT", where one file's
    # replay says how far it got and which outputs were not written
    whole = tmp_path / "first.itch"
    whole.write_bytes(day[:1_000_000])
    code, out, err, _ = _run_on_fifo(
        tmp_path, day, ["replay", str(whole), "FIFO", "--format", "itch", "--no-progress",
                        "--out", "sinks", "--dump-book", "book.csv"], signal.SIGINT)
    assert code == 130 and err == "matchcore replay: interrupted by SIGINT\n", err
    line = out.strip().splitlines()[-1]
    assert line.startswith("interrupted after 1 of 2 files in "), out
    assert line.endswith("; not written: --dump-book, --out"), out
    assert not (tmp_path / "book.csv").exists() and not (tmp_path / "sinks").exists()


@needs_proc
def test_cli_replay_dbn_signal_mid_replay_partial_summary(tmp_path):
    # The DBN replay said only "interrupted by SIGINT": not how far it got, as the ITCH one
    # does (and as the README says a replay does); from a live FIFO that is the whole answer
    pytest.importorskip("databento_dbn")
    from matchcore.feeds.dbn_gen import generate_mbo

    data = generate_mbo(None, records=20_000, instruments=3, seed=2)
    code, out, err, _ = _run_on_fifo(
        tmp_path, data, ["replay", "FIFO", "--format", "dbn", "--no-progress",
                         "--dump-book", "book.csv"], signal.SIGINT, size=len(data) // 2)
    assert code == 130 and err == "matchcore replay: interrupted by SIGINT\n", err
    line = out.strip().splitlines()[-1]
    assert line.startswith("interrupted after ") and "DBN MBO records" in line, out
    assert 0 < int(line.split()[2].replace(",", "")) < 20_000
    assert "not written: --dump-book" in line and not (tmp_path / "book.csv").exists()


@needs_proc
def test_cli_book_sigint_mid_replay_one_line_no_traceback(tmp_path, day):
    code, out, err, _ = _run_on_fifo(tmp_path, day, ["book", "FIFO", "--symbol", "AAPL"],
                                     signal.SIGINT)
    assert (code, out, err) == (130, "", "matchcore book: interrupted by SIGINT\n")


@needs_proc
def test_cli_replay_metrics_sigterm_mid_replay_server_stopped(tmp_path, day):
    code, out, err, _ = _run_on_fifo(
        tmp_path, day, ["replay", "FIFO", "--format", "itch", "--metrics-port", "0"],
        signal.SIGTERM)
    assert code == 143 and "Traceback" not in err, err
    assert out.startswith("metrics: http://") and "interrupted after " in out


def test_cli_gen_itch_sigterm_leaves_no_partial_file(tmp_path):
    out = tmp_path / "day.itch"
    proc = subprocess.Popen(CLI + ["gen-itch", str(out), "--messages", "100000000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob(".day.itch.*.part")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(tmp_path.glob(".day.itch.*.part"))
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143
    assert err == "matchcore gen-itch: interrupted by SIGTERM\n"
    assert list(tmp_path.iterdir()) == []          # neither the file nor its .part


# ---- a closed pipe: `matchcore ... | head` ----

@pytest.fixture(scope="module")
def small_day(tmp_path_factory):
    path = tmp_path_factory.mktemp("pipe") / "d.itch"
    itch.generate(path, messages=20_000, symbols=2, seed=4)
    return path


@pytest.fixture(scope="module")
def journal_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("journal") / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1, "AAA")
    for i in range(200):
        eng.submit("AAA", i + 1, mc.Side.BUY if i % 2 else mc.Side.SELL, 100, 10)
    eng.close()
    return d


def _run_reader_gone(argv):
    """Run the CLI with stdout a pipe whose reader has already gone; (status, stderr)."""
    r, w = os.pipe()
    os.close(r)
    proc = subprocess.Popen(CLI + argv, stdout=w, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    os.close(w)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("argv", [
    ["replay", "DAY"],
    ["book", "DAY", "--symbol", "AAPL", "--depth", "50"],
    ["gen-itch", "TMP/g.itch", "--messages", "1000"],
    ["journal", "trades", "JDIR", "--limit", "0"],
    ["journal", "inspect", "JDIR", "--json", "-"],
    ["recover", "JDIR"],
    ["demo", "--messages", "2000"],
    ["bench", "--quick", "standard", "--messages", "2000", "--no-progress"],
], ids=lambda a: " ".join(a[:2]))
def test_cli_stdout_reader_gone_quiet_status_141(argv, small_day, journal_dir, tmp_path):
    subst = {"DAY": str(small_day), "JDIR": str(journal_dir)}
    argv = [subst.get(a, a.replace("TMP", str(tmp_path))) for a in argv]
    code, err = _run_reader_gone(argv)
    assert (code, err) == (141, "")                 # no BrokenPipeError, no "Exception ignored"


def test_cli_replay_pipe_to_head_no_traceback(small_day):
    import shlex

    # quoted: the interpreter's path holds a space when the clone's path does
    cmd = shlex.join([*CLI, "replay", str(small_day)])
    proc = subprocess.run(f"{cmd} | head -c 1 >/dev/null",
                          shell=True, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""


def _into_fifo_whose_reader_leaves(fifo, argv, stdout=subprocess.PIPE):
    """``matchcore *argv`` writing into the FIFO ``fifo`` (made here) whose reader takes 10
    bytes and goes away while the command is blocked on the full pipe: (status, stdout,
    stderr)."""
    os.mkfifo(fifo)
    proc = subprocess.Popen(CLI + argv, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        fd = os.open(fifo, os.O_RDONLY)        # returns once the command opened it to write
        os.read(fd, 10)
        os.close(fd)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def _gen_itch_into_fifo_whose_reader_leaves(tmp_path, stdout):
    """``matchcore gen-itch FIFO`` (~6 MB) with a reader that takes 10 bytes and goes away
    while the command is blocked on the full pipe: (status, stdout, stderr)."""
    fifo = tmp_path / "out.itch"
    return _into_fifo_whose_reader_leaves(
        fifo, ["gen-itch", str(fifo), "--messages", "200000", "--no-progress"], stdout)


@needs_proc
def test_cli_gen_itch_stdout_reader_gone_during_write_quiet_141_not_success():
    # The reader left while the command waited for room in the full pipe: that write returned
    # the bytes it had taken, with no error, and the rest was dropped; the command said
    # "wrote 200,000 ITCH 5.0 messages" and exited 0.
    proc = subprocess.Popen(CLI + ["gen-itch", "-", "--messages", "200000", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        _wait_blocked_writing(proc, 60)         # the pipe is full
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, err) == (141, "")


@needs_proc
def test_cli_bench_json_to_stdout_reader_gone_during_write_quiet_141_not_success():
    # bench --json - wrote its JSON in one call; the reader left while that write waited for
    # room in the full pipe (a 4 KiB one here: the small run's JSON is bigger), the write
    # returned the part it took, the text layer dropped the rest without a word, and the
    # command exited 0 as if the JSON had gone out whole.
    import fcntl

    r, w = os.pipe()
    fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    proc = subprocess.Popen(CLI + ["bench", "--quick", "standard", "--messages", "2000",
                                   "--no-progress", "--json", "-"],
                            stdout=w, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    os.close(w)
    try:
        _wait_blocked_writing(proc, 120)         # the pipe is full
        os.close(r)
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "error" not in err


def test_cli_output_fifo_reader_gone_is_an_error_status_1(tmp_path):
    # A broken pipe that is not stdout (here an output FIFO; as well a socket or a
    # subprocess) is a real error: one line, status 1, not a quiet 141.
    code, out, err = _gen_itch_into_fifo_whose_reader_leaves(tmp_path, subprocess.PIPE)
    assert code == 1, err
    assert err.startswith("matchcore gen-itch: error: broken pipe") and err.count("\n") == 1
    assert "Traceback" not in err and out == ""


def test_cli_stdout_and_output_fifo_both_gone_is_quiet_141(tmp_path):
    # stdout's reader left too: the command ends quietly, whichever pipe raised first
    r, w = os.pipe()
    os.close(r)
    try:
        code, _, err = _gen_itch_into_fifo_whose_reader_leaves(tmp_path, w)
    finally:
        os.close(w)
    assert (code, err) == (141, "")


def test_signal_during_handler_restore_leaves_no_handler_installed(tmp_path):
    # SIGHUP sent while the handlers are put back (here: as SIGTERM's is). It used to reach the
    # command's handler, still installed, whose exception left the loop half way with both
    # handlers installed. Now it is held until every handler is back, then raised: the command
    # still reports it.
    script = tmp_path / "restore.py"
    script.write_text("""
import os, signal
from matchcore import __main__ as m
# the premise: both at their default, whatever the runner passed down (nohup ignores SIGHUP)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
real = signal.signal
sent = []

def hooked(sig, handler):
    if sig == signal.SIGTERM and handler == signal.SIG_DFL and not sent:
        sent.append(os.kill(os.getpid(), signal.SIGHUP))
    return real(sig, handler)

try:
    with m._signals_as_exceptions():
        signal.signal = hooked
except KeyboardInterrupt as e:
    print("raised", getattr(e, "signum", None))
signal.signal = real
print("restored", signal.getsignal(signal.SIGTERM) == signal.getsignal(signal.SIGHUP)
      == signal.SIG_DFL, flush=True)
""")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "raised 1\nrestored True\n", "")


# ---- a journal's LOCK after its writer was killed ----

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_journal_lock_of_killed_writer_taken_over_by_recover(tmp_path, sig):
    d = tmp_path / "j"
    child = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
import matchcore as mc
eng = mc.Engine(journal={str(d)!r}, fsync="always")
eng.add_symbol(1, "AAA")
for i in range(50):
    eng.submit("AAA", i + 1, mc.Side.BUY, 100 - i % 5, 10)
print("ready", flush=True)
time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        with pytest.raises(mc.durability.JournalError):      # held while the writer lives
            mc.Engine.recover(d)
        os.kill(child.pid, sig)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert (d / "LOCK").exists()          # the file stays; the kernel released its flock
    proc = subprocess.run(CLI + ["recover", str(d), "--repair"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    eng = mc.Engine.recover(d)
    assert eng.journal_seq == 51 and len(eng) == 50
    eng.close()


# ---- in-process pieces ----

def test_main_restores_signal_handlers(small_day, capsys):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    assert main(["replay", str(small_day)]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


def test_atomic_output_interrupted_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(path) as f:
            f.write("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with atomic_output(path) as f:
        f.write("new\n")
    assert path.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_atomic_output_signal_as_temporary_is_created_leaves_no_temporary(tmp_path, monkeypatch):
    # A signal's exception is raised as os.open returns, before the descriptor reaches the code
    # that would remove the file; gen-itch killed at that moment left its .part behind.
    import matchcore._cliutil as cliutil

    real_open = os.open

    def open_then_signal(*args, **kwargs):
        real_open(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(cliutil.os, "open", open_then_signal)
    for existing in (False, True):
        path = tmp_path / "out.csv"
        if existing:
            path.write_text("old\n")
        with pytest.raises(KeyboardInterrupt):
            with atomic_output(path) as f:
                f.write("never")
        assert [p.name for p in tmp_path.iterdir()] == (["out.csv"] if existing else [])


@pytest.mark.parametrize("command", ["replay", "book", "bench"])
def test_plot_interrupted_while_written_leaves_old_file_or_none(tmp_path, monkeypatch, capsys,
                                                                 command):
    # the PNGs were written in place: a command interrupted while matplotlib wrote one left a
    # truncated image under its final name (replacing the one there), as no other output does
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    def cut(self, fname, *args, **kwargs):
        if hasattr(fname, "write"):
            fname.write(b"half")
        else:
            with open(fname, "wb") as f:
                f.write(b"half")
        raise KeyboardInterrupt

    day = itch.generate(tmp_path / "day.itch", messages=20_000, symbols=2, seed=5)
    plots = tmp_path / "plots"
    plots.mkdir()
    old = plots / "book.png"
    old.write_bytes(b"old")
    argv = {"replay": ["replay", str(day), "--plot", str(plots)],
            "book": ["book", str(day), "--symbol", "AAPL", "--plot", str(old)],
            "bench": ["bench", "standard", "--quick", "--messages", "2000", "--plot",
                      str(plots)]}[command]
    monkeypatch.setattr(Figure, "savefig", cut)
    assert main(argv + ["--no-progress"]) == 130
    assert "interrupted by SIGINT" in capsys.readouterr().err
    assert [p.name for p in plots.iterdir()] == ["book.png"] and old.read_bytes() == b"old"


def test_atomic_output_symlink_written_in_place(tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with atomic_output(link) as f:
        f.write("x\n")
    assert link.is_symlink() and target.read_text() == "x\n"


def test_atomic_output_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "private.csv"
    path.write_text("old\n")
    path.chmod(0o600)
    with atomic_output(path) as f:
        f.write("new\n")
    assert path.read_text() == "new\n" and (path.stat().st_mode & 0o777) == 0o600


def test_atomic_output_new_file_mode_as_open(tmp_path):
    with atomic_output(tmp_path / "a.csv") as f:
        f.write("x")
    with open(tmp_path / "b.csv", "w") as f:
        f.write("x")
    assert (tmp_path / "a.csv").stat().st_mode == (tmp_path / "b.csv").stat().st_mode


def test_atomic_output_hard_linked_file_written_in_place(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    other = tmp_path / "other.csv"
    os.link(path, other)
    with atomic_output(path) as f:
        f.write("new\n")
    assert other.read_text() == "new\n" and path.stat().st_ino == other.stat().st_ino


def test_atomic_output_planted_temporary_symlink_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    path = tmp_path / "out.csv"
    # the temporary name the first version used: predictable, and opened following symlinks
    (tmp_path / f".out.csv.{os.getpid()}.part").symlink_to(victim)
    with atomic_output(path) as f:
        f.write("new\n")
    assert victim.read_text() == "keep\n" and path.read_text() == "new\n"
    assert not path.is_symlink()


def test_atomic_output_append_mode_refused(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_output(tmp_path / "x", "a"):
            pass


@pytest.mark.skipif(os.geteuid() != 0 or not hasattr(os, "setresuid"),
                    reason="needs root to run a child as another user")
def test_atomic_output_writable_file_in_read_only_directory_written_in_place(request):
    """A file the user may write in a directory where they may not create one: open() wrote
    it; so must atomic_output (in place), not fail on its temporary."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp())          # pytest's tmp_path is not reachable by others
    request.addfinalizer(lambda: shutil.rmtree(top, ignore_errors=True))
    top.chmod(0o755)
    d = top / "ro"
    d.mkdir()
    d.chmod(0o755)          # not through mkdir(mode=): the umask (077) took the others' bits
    path = d / "out.csv"
    path.write_text("old\n")
    os.chown(path, 65534, 65534)
    code = (f"import os\nfrom matchcore._cliutil import atomic_output\n"      # imports as root
            f"os.setgroups([]); os.setresgid(65534, 65534, 65534); "
            f"os.setresuid(65534, 65534, 65534)\n"
            f"with atomic_output({str(path)!r}) as f: f.write('new\\n')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert path.read_text() == "new\n" and os.listdir(d) == ["out.csv"]


def test_gen_itch_into_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "target.itch"
    target.write_bytes(b"")
    link = tmp_path / "link.itch"
    link.symlink_to(target)
    code = subprocess.run(CLI + ["gen-itch", str(link), "--messages", "1000", "--no-progress"],
                          capture_output=True, text=True).returncode
    assert code == 0
    assert link.is_symlink() and target.read_bytes() == itch.generate(None, messages=1000)


def test_gen_itch_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "day.itch"
    path.write_bytes(b"old")
    path.chmod(0o600)
    itch.generate(path, messages=1000)
    assert (path.stat().st_mode & 0o777) == 0o600 and sorted(os.listdir(tmp_path)) == ["day.itch"]


def test_gen_itch_to_stdout_pipe_carries_only_the_data():
    r = subprocess.run(CLI + ["gen-itch", "/dev/stdout", "--messages", "1000", "--no-progress"],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == itch.generate(None, messages=1000)
    assert r.stderr.startswith(b"wrote 1,000 ITCH 5.0 messages")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["demo", "--messages", "1000"],
                                  ["gen-itch", "OUT", "--messages", "1000"]])
def test_cli_stdout_on_a_full_disk_one_error_line_exit_1(tmp_path, argv):
    # demo printed an OSError traceback when its stdout could not be written
    argv = [str(tmp_path / "g.itch") if a == "OUT" else a for a in argv]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(CLI + argv, stdout=full, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == (f"matchcore {argv[0]}: error: stdout: cannot be written: "
                           f"[Errno 28] No space left on device\n")


_ENDS_WITH = r"""
import sys
import matchcore.demo as demo
from matchcore.__main__ import main


def run(args):
    print("partial summary")         # held in stdout's buffer until the final flush
    raise {"interrupt": KeyboardInterrupt(), "memory": MemoryError()}[sys.argv[1]]


demo.run = run
sys.exit(main(["demo"]))
"""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("how, rc, first", [
    ("interrupt", 130, "matchcore demo: interrupted by SIGINT"),
    ("memory", 1, "matchcore demo: error: out of memory")])
def test_cli_ended_with_stdout_full_status_kept_flush_failure_one_line(how, rc, first):
    # the flush of the partial output failed and was swallowed; the flush at exit failed again:
    # "Exception ignored ... OSError" and exit status 120 in place of 130 or 1
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-c", _ENDS_WITH, how], stdout=full,
                              stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                              env=env, timeout=120)
    assert proc.returncode == rc
    assert proc.stderr == (f"{first}\nmatchcore demo: error: stdout: cannot be written: "
                           f"[Errno 28] No space left on device\n")


@pytest.mark.parametrize("argv, option", [
    (["replay", "DAY", "--dump-book", "-"], "--dump-book"),
    (["journal", "trades", "JDIR", "--csv", "-"], "--csv"),
    (["journal", "inspect", "JDIR", "--json", "-"], "--json"),
    (["recover", "JDIR", "--json", "-"], "--json"),
    (["bench", "--quick", "standard", "--messages", "2000", "--no-progress", "--json", "-"],
     "--json"),
    (["gen-itch", "-", "--messages", "1000", "--no-progress"], "out"),
], ids=lambda a: " ".join(a[:2]) if isinstance(a, list) else a)
def test_cli_output_to_dash_with_stdout_closed_one_error_line_exit_1(argv, option, small_day,
                                                                     journal_dir):
    # `>&-`: '-' was Python's None for stdout; --dump-book/--csv - ended in a TypeError
    # traceback, bench --json - in an AttributeError after the whole run, journal inspect and
    # recover --json - exited 0 with the JSON asked for written nowhere; gen-itch - ended in an
    # AttributeError traceback
    subst = {"DAY": str(small_day), "JDIR": str(journal_dir)}
    argv = [subst.get(a, a) for a in argv]
    proc = subprocess.run(CLI + argv, stderr=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL, timeout=120,
                          preexec_fn=lambda: os.close(1))
    assert proc.returncode == 1
    assert proc.stderr == (f"matchcore {argv[0]}: error: {option} -: stdout is closed, "
                           f"nothing can be written to it\n")


def test_cli_output_files_fsynced_before_rename_and_directory_after(tmp_path, monkeypatch,
                                                                    capsys, day):
    # atomic_output renamed its temporary file over the target without an fsync, unlike
    # matchcore.native.write_commands: after a power loss the final name could hold an empty
    # or short file; nor was the directory fsynced after the rename.
    # (os.fsync and os.replace are watched, and still do their work.)
    calls = watch_fsync_and_replace(monkeypatch)

    out = tmp_path / "out"
    src = tmp_path / "day.itch"
    src.write_bytes(day)
    assert main(["replay", str(src), "--no-progress", "--out", str(out),
                 "--dump-book", str(tmp_path / "book.csv")]) == 0
    monkeypatch.undo()
    capsys.readouterr()
    for p in [tmp_path / "book.csv"] + sorted(out.iterdir()):
        ino, size = p.stat().st_ino, p.stat().st_size
        renamed = calls.index(("replace", ino))
        assert ("fsync", ino, False, size) in calls[:renamed], p       # the whole file, before
        assert ("fsync", p.parent.stat().st_ino, True) in [c[:3] for c in calls[renamed:]], p


def test_atomic_output_empty_path_refused_as_open_refuses_it(tmp_path, monkeypatch):
    # "" is "." to Path: the error said "Is a directory: '.'", of a directory nobody named;
    # open("") says "No such file or directory: ''"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        open("", "w")
    with pytest.raises(FileNotFoundError) as got:
        atomic_output("").__enter__()
    assert str(got.value) == str(err.value) and got.value.filename == ""
    assert list(tmp_path.iterdir()) == []


def _run_stdout_to(argv, out_txt):
    """Run the CLI with stdout a pipe (out_txt None) or the file out_txt (as `> out.txt`):
    the finished process and the bytes its stdout received."""
    if out_txt is None:
        r = subprocess.run(argv, capture_output=True, timeout=120)
        return r, r.stdout
    with open(out_txt, "wb") as f:
        r = subprocess.run(argv, stdout=f, stderr=subprocess.PIPE, timeout=120)
    return r, out_txt.read_bytes()


@pytest.mark.parametrize("to_file", [False, True])
def test_replay_dump_book_dev_stdout_carries_only_the_csv_summary_on_stderr(tmp_path, to_file):
    # --dump-book /dev/stdout reopened stdout: in a pipe the CSV was mixed into the summary,
    # and in a file (> out.txt) it was truncated, the summary lost and NUL bytes left where it
    # had been; as '-' does (and gen-itch /dev/stdout), the CSV alone goes to stdout
    day = itch.generate(tmp_path / "day.itch", messages=2000, symbols=2, seed=1)
    argv = CLI + ["replay", str(day), "--dump-book", "/dev/stdout", "--no-progress"]
    r, stdout = _run_stdout_to(argv, tmp_path / "out.txt" if to_file else None)
    assert r.returncode == 0, r.stderr
    lines = stdout.decode().splitlines()
    assert lines[0] == "locate,symbol,side,level,price,qty,orders"
    assert all(ln.count(",") == 6 for ln in lines) and b"\0" not in stdout
    assert b"replayed 2,000 ITCH 5.0 messages" in r.stderr
    assert b"book dump: " in r.stderr


@pytest.mark.parametrize("to_file", [False, True])
def test_book_plot_dev_stdout_refused_as_plot_dash_is(tmp_path, to_file):
    # --plot - is refused (an image cannot go to stdout), but --plot /dev/stdout wrote the PNG
    # into the ladder's text: in a pipe text and image bytes one after the other, neither
    # readable, and in a file (> out.txt) the image opened over the ladder already written
    day = itch.generate(tmp_path / "day.itch", messages=2000, symbols=2, seed=1)
    argv = CLI + ["book", str(day), "--symbol", "AAPL", "--plot", "/dev/stdout",
                  "--no-progress"]
    r, stdout = _run_stdout_to(argv, tmp_path / "out.txt" if to_file else None)
    assert r.returncode == 2 and stdout == b""
    assert r.stderr.decode().splitlines()[-1] == (
        "matchcore book: error: --plot /dev/stdout: writes an image, which cannot go to stdout "
        "(it names the file stdout writes to)")


def test_plot_and_dump_book_to_dev_null_with_stdout_there_written_as_before(tmp_path):
    # the null device is stdout's file too when stdout is discarded, but nothing written
    # there can be mixed up or lost: book --plot /dev/null is no image sent to stdout, and
    # replay --dump-book /dev/null does not move the summary to stderr
    day = itch.generate(tmp_path / "day.itch", messages=2000, symbols=2, seed=1)
    with open(os.devnull, "wb") as null:
        r = subprocess.run(CLI + ["book", str(day), "--symbol", "AAPL", "--plot", os.devnull,
                                  "--no-progress"], stdout=null, stderr=subprocess.PIPE,
                           timeout=120)
        assert r.returncode == 0 and r.stderr == b"", r.stderr
        r = subprocess.run(CLI + ["replay", str(day), "--dump-book", os.devnull,
                                  "--no-progress"], stdout=null, stderr=subprocess.PIPE,
                           timeout=120)
        assert r.returncode == 0 and r.stderr == b"", r.stderr


def test_cli_output_fifo_reader_gone_error_names_the_output(tmp_path):
    # "error: broken pipe: the reader of an output other than stdout ... went away" named
    # neither the option nor the file, where a full disk names both
    code, out, err = _gen_itch_into_fifo_whose_reader_leaves(tmp_path, subprocess.PIPE)
    assert code == 1, err
    assert err.startswith(f"matchcore gen-itch: error: broken pipe writing out "
                          f"{tmp_path / 'out.itch'}: "), err


def test_cli_replay_dump_book_fifo_reader_gone_names_dump_book_not_out(tmp_path):
    # of two outputs, the one whose reader left is named (here --dump-book, beside --out)
    src = tmp_path / "day.itch"
    itch.generate(src, messages=300_000, symbols=300, seed=5)   # a CSV of ~100 kB: > a pipe
    fifo = tmp_path / "book.csv"
    code, _, err = _into_fifo_whose_reader_leaves(
        fifo, ["replay", str(src), "--dump-book", str(fifo), "--out", str(tmp_path / "out"),
               "--no-progress"])
    assert code == 1, err
    assert f"matchcore replay: error: broken pipe writing --dump-book {fifo}: " in err, err
    assert "Traceback" not in err


_SECOND_CTRL_C = r"""
import os, signal, sys
import matchcore.demo as demo
from matchcore.__main__ import main


class Stream:
    # a second Ctrl-C that arrives while the first is being reported: sent (once) by the first
    # flush of the report's stream, once the text is out
    def __init__(self, stream):
        self.stream, self.sent = stream, False

    def flush(self):
        self.stream.flush()
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def run(args):
    setattr(sys, sys.argv[1], Stream(getattr(sys, sys.argv[1])))
    print("partial summary")         # held in stdout's buffer until the final flush
    raise KeyboardInterrupt


signal.signal(signal.SIGINT, signal.default_int_handler)    # whatever the runner passed down
demo.run = run
sys.exit(main(["demo"]))
"""


@pytest.mark.parametrize("during, out, err", [
    # stdout's partial summary flushed: the line on stderr not written yet
    ("stdout", "partial summary\n", ""),
    # the line on stderr written
    ("stderr", "partial summary\n", "matchcore demo: interrupted by SIGINT\n")])
def test_cli_second_ctrl_c_while_reporting_the_first_ends_at_once_no_traceback(during, out, err):
    # Ctrl-C pressed twice: the second, arriving as the first was reported (the partial output
    # flushed, the line written, stdout put back), was raised there as a KeyboardInterrupt that
    # nothing caught, and the command ended in a traceback after its one line. It now takes
    # SIGINT's default action: the process ends at once, status 130 to the shell.
    proc = subprocess.run([sys.executable, "-c", _SECOND_CTRL_C, during], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (-signal.SIGINT, out, err)


def test_cli_interrupted_in_process_puts_sigint_handler_back(monkeypatch, capsys):
    # while the interruption is reported SIGINT takes its default action (see above); a caller
    # of main() gets its handler back afterwards, as the command's other handlers
    import matchcore.demo as demo

    def run(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run", run)
    before = signal.getsignal(signal.SIGINT)
    assert main(["demo"]) == 130
    assert signal.getsignal(signal.SIGINT) is before
    assert capsys.readouterr().err == "matchcore demo: interrupted by SIGINT\n"


def test_cli_interrupted_in_a_thread_returns_130(monkeypatch, capsys):
    # main() run in another thread (as a test or an embedding application may): the change of
    # SIGINT's handler while an interruption is reported is for the main thread alone
    import threading

    import matchcore.demo as demo

    def run(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run", run)
    box = {}
    t = threading.Thread(target=lambda: box.update(rc=main(["demo"])))
    t.start()
    t.join(60)
    assert box == {"rc": 130}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert capsys.readouterr().err == "matchcore demo: interrupted by SIGINT\n"


# ---- stderr closed: `matchcore ... 2>&-` ----

def _run_stderr_closed(argv, cwd):
    """Run the CLI with its stderr closed (`2>&-`): (status, the bytes on stdout)."""
    proc = subprocess.run(CLI + argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          cwd=cwd, timeout=120, preexec_fn=lambda: os.close(2))
    return proc.returncode, proc.stdout


@pytest.mark.parametrize("argv, first", [
    (["replay", "DAY"], b"replayed 20,000 ITCH 5.0 messages"),
    (["book", "DAY", "--symbol", "AAPL"], b"AAPL (locate 1) at end of file"),
    (["gen-itch", "g.itch", "--messages", "1000"], b""),    # its summary is on stdout:
    (["bench", "--quick", "standard", "--messages", "2000"], b"machine: "),
], ids=lambda a: " ".join(a[:2]) if isinstance(a, list) else None)
def test_cli_stderr_closed_command_runs_as_without_a_terminal(argv, first, small_day, tmp_path):
    # with stderr closed Python's sys.stderr is None: the progress bar's check for a terminal
    # (sys.stderr.isatty()) raised AttributeError, and replay, book, gen-itch and bench did
    # nothing and exited 1, their traceback written nowhere
    argv = [str(small_day) if a == "DAY" else a for a in argv]
    code, out = _run_stderr_closed(argv, tmp_path)
    assert code == 0 and out.startswith(first or b"wrote 1,000 ITCH 5.0 messages")


def test_cli_stderr_closed_stdout_data_holds_no_stderr_text(tmp_path):
    # what goes to stderr went to stdout (print(file=None) writes there): gen-itch - left its
    # summary after the day's last message, and an error or usage message went into the data
    code, out = _run_stderr_closed(["gen-itch", "-", "--messages", "1000", "--no-progress"],
                                   tmp_path)
    assert (code, out) == (0, itch.generate(None, messages=1000))
    for argv, status in ((["replay", "nothing.itch", "--no-progress"], 1),
                         (["replay", "nothing.itch", "--no-such-option"], 2)):
        assert _run_stderr_closed(argv, tmp_path) == (status, b"")
