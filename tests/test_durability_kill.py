"""Proof (b): kill -9 at random moments loses no acknowledged command.

A forked child runs a seeded flow on ``Engine(journal=DIR, fsync="always")`` (process() batches
or per-call methods, segments rolling, snapshots now and then) and writes the journal seq to a
pipe after every call returns: that is the acknowledgement. The parent SIGKILLs it at a random
moment, recovers the directory and checks that every acknowledged command is in the journal,
that the journal holds exactly the flow's first n steps, and that the state hash equals a fresh
engine fed those n steps. 200 kill points by default; MATCHCORE_SOAK=1 runs 1,200. The same
flow under ``fsync="batch"`` and ``"never"`` is killed a quarter as often: a process crash loses
nothing acknowledged under any policy.

The same check follows kills inside ``Engine.recover()`` itself, on a directory that gives it
everything to do (a torn command tail to cut, lost fills to write again, a snapshot ahead of the
journal to set aside, a stale snapshot temporary to remove): the next recovery finishes the job.
"""
from __future__ import annotations

import os
import shutil
import signal
import struct
import time

import numpy as np
import pytest

import matchcore as mc
from matchcore.durability import _journal as _j
from matchcore.durability.snapshot import snapshot_bytes
from matchcore.durability import read_journal, read_trades
from matchcore.durability.journal import KIND_COMMANDS, KIND_TRADES, segment_files
from durability_flow import PrefixHashes, apply_steps, make_flow

SOAK = os.environ.get("MATCHCORE_SOAK") == "1"
KILLS = 1200 if SOAK else 200


def _child(d, steps, cmds, w, seed, fsync="always"):
    rng = np.random.default_rng(seed)
    per_call = bool(seed % 2)
    eng = mc.Engine(journal=d, fsync=fsync, segment_bytes=16384)

    def ack():
        os.write(w, struct.pack("<Q", eng.journal_seq))
        if rng.random() < 0.03:
            eng.snapshot()

    apply_steps(eng, steps, cmds, per_call=per_call, batch=int(rng.integers(1, 30)),
                on_call=ack)


def _fork(body):
    """A child process running body(w), w the write end of a pipe; returns (pid, read end)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            body(w)
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _child_says(body, nbytes: int = 256) -> bytes:
    """Run body(w) in a child of _fork; its first write of up to ``nbytes`` bytes (its
    verdict), once it has exited with status 0."""
    pid, r = _fork(body)
    got = os.read(r, nbytes)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return got


def _read_acks(r, want):
    buf = b""
    while len(buf) < 8 * want:
        chunk = os.read(r, 8 * want - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def _kill_and_acks(pid, r, head=b""):
    """SIGKILL the child of _fork and reap it; returns every 8-byte ack it wrote (``head``:
    those already read) as a tuple of ints."""
    os.kill(pid, signal.SIGKILL)
    rest = _read_acks(r, 1 << 20)              # acks written before it died
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) or os.waitstatus_to_exitcode(status) == 0, status
    return struct.unpack(f"<{(len(head) + len(rest)) // 8}Q", head + rest)


@pytest.fixture(scope="module")
def flow():
    steps, cmds = make_flow(21, 3000)
    return steps, cmds, PrefixHashes(steps, cmds)


# The README says a process crash loses nothing acknowledged under every policy: a call
# returns after its records were handed to the OS with write(2), which a SIGKILL does not undo
# (the policies differ only on power loss). "batch" and "never" are held to it with fewer kills.
@pytest.mark.parametrize("policy,kills", [("always", KILLS), ("batch", KILLS // 4),
                                          ("never", KILLS // 4)])
def test_engine_kill9_loses_no_acknowledged_command(tmp_path, flow, policy, kills):
    steps, cmds, prefix = flow
    cmd_steps = np.cumsum([s[0] == "cmd" for s in steps])
    rng = np.random.default_rng(2026)
    worst_gap, snapshots_used, torn, temps = 0, 0, 0, 0
    for k in range(kills):
        d = str(tmp_path / f"k{k}")
        pid, r = _fork(lambda w: _child(d, steps, cmds, w, k, policy))
        target = int(rng.integers(0, 20))
        head = _read_acks(r, target)
        delay = rng.random() * 1e-3
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < delay:
            pass
        acks = _kill_and_acks(pid, r, head)
        acked = max(acks) if acks else 0
        if not os.path.exists(d) or not os.listdir(d):
            assert acked == 0
            continue
        try:
            # "never" after recovery: the checks read the files, no need to wait for fsyncs
            eng = mc.Engine.recover(d, fsync="never")
        except mc.durability.JournalError as exc:
            if acked == 0 and "nothing to recover" in str(exc):
                continue                           # killed before the first record
            raise
        rep = eng.recovery_report
        n = rep.last_seq
        assert n >= acked, f"kill {k}: acknowledged seq {acked}, recovered only {n}"
        assert eng.state_hash() == prefix[n], f"kill {k}: state differs from the first {n} steps"
        got = read_journal(d)
        m = int(cmd_steps[n - 1]) if n else 0
        assert got["commands"].tobytes() == cmds[:m].tobytes()
        trades = read_trades(d)
        assert np.array_equal(trades["seq"], np.arange(1, len(trades) + 1))
        assert len(trades) == 0 or int(trades["cmd_seq"][-1]) <= n
        worst_gap = max(worst_gap, n - acked)
        snapshots_used += rep.snapshot is not None
        torn += rep.torn_tail is not None
        # a snapshot the kill cut short before its rename left nothing recovery kept
        temps += len(rep.removed_temporaries)
        assert not [f for f in os.listdir(d) if ".mcs.tmp" in f], f"kill {k}"
        eng.close()
    # the kills landed in different places: some after snapshots, some inside a write
    assert snapshots_used > 0
    print(f"\n{kills} kills ({policy}): max unacknowledged-but-journaled {worst_gap}, "
          f"{snapshots_used} via snapshots, {torn} torn tails, {temps} snapshot temporaries "
          f"removed")


def _damaged_directory(d, steps, cmds, n, rng):
    # a crashed engine's directory: snapshot, a snapshot that the cut below puts ahead of the
    # journal, a torn command tail, half the trade journal lost, a snapshot temporary
    eng = mc.Engine(journal=d, fsync="never", segment_bytes=16384)
    apply_steps(eng, steps[:n // 2], cmds, batch=13)
    eng.snapshot()
    apply_steps(eng, steps[n // 2:n], cmds, batch=7)
    eng.snapshot()
    eng.close()
    seg = segment_files(d, KIND_COMMANDS)[-1][1]
    os.truncate(seg, os.path.getsize(seg) - int(rng.integers(1, 80)))
    tsegs = segment_files(d, KIND_TRADES)
    first, cut = tsegs[int(rng.integers(len(tsegs)))]
    os.truncate(cut, max(_j.SEG_HEADER, os.path.getsize(cut) // 2 + 3))
    for f, path in tsegs:
        if f > first:
            os.unlink(path)
    with open(os.path.join(d, "snapshot-00000000000000000005.mcs.tmp"), "wb") as fh:
        fh.write(snapshot_bytes(mc.Engine())[0][:60])  # a torn one


def test_engine_kill9_during_recovery_next_recovery_completes_it(tmp_path, flow):
    steps, cmds, prefix = flow
    ref = tmp_path / "ref"                      # the fills of the whole flow, uninterrupted
    eng = mc.Engine(journal=ref, fsync="never")
    apply_steps(eng, steps, cmds)
    eng.close()
    ref_trades = read_trades(ref)
    cmd_steps = np.cumsum([s[0] == "cmd" for s in steps])
    rng = np.random.default_rng(7)
    inside = 0
    for k in range(KILLS // 5):
        d = str(tmp_path / f"r{k}")
        _damaged_directory(d, steps, cmds, int(rng.integers(400, len(steps) - 400)), rng)
        probe = str(tmp_path / "probe")
        shutil.copytree(d, probe)
        t0 = time.perf_counter()
        mc.Engine.recover(probe, fsync="never").close()       # how long recovery takes here
        took = time.perf_counter() - t0
        shutil.rmtree(probe)
        def child(w, d=d):
            os.write(w, struct.pack("<Q", 0))              # recovery starts
            rec = mc.Engine.recover(d, fsync="always")
            os.write(w, struct.pack("<Q", rec.journal_seq))
            apply_steps(rec, steps[rec.journal_seq:], cmds, batch=int(rng.integers(1, 30)),
                        on_call=lambda: os.write(w, struct.pack("<Q", rec.journal_seq)))

        pid, r = _fork(child)
        _read_acks(r, 1)
        time.sleep(rng.random() * took * 1.5)
        acks = _kill_and_acks(pid, r)
        inside += not acks
        acked = max(acks) if acks else 0
        rec = mc.Engine.recover(d, fsync="never")
        n = rec.recovery_report.last_seq
        assert n >= acked, f"kill {k}: acknowledged seq {acked}, recovered only {n}"
        assert rec.state_hash() == prefix[n], f"kill {k}: state differs from the first {n} steps"
        rec.close()
        m = int(cmd_steps[n - 1]) if n else 0
        assert read_journal(d)["commands"].tobytes() == cmds[:m].tobytes()
        got, want = read_trades(d), ref_trades[ref_trades["cmd_seq"] <= n]
        assert len(got) == len(want), f"kill {k}: {len(got)} fills, {len(want)} made"
        for c in got.dtype.names:
            if c != "journal_ts_ns":                          # rewritten fills: a new clock
                assert np.array_equal(got[c], want[c]), (k, c)
        again = mc.Engine.recover(d, fsync="never")
        assert not again.recovery_report.modified and again.recovery_report.last_seq == n
        again.close()
        assert not [f for f in os.listdir(d) if ".mcs.tmp" in f]
        shutil.rmtree(d)
    assert inside > 0                                # some kills landed inside recover()
    print(f"\n{KILLS // 5} kills after recovery began: {inside} inside recover()")


def _fill_heavy_batch(n_rounds, makers=10):
    # each round: `makers` asks of 1 lot at 100, then one buy IOC that takes them all
    per = makers + 1
    cmds = np.zeros(n_rounds * per, dtype=mc.COMMAND_DTYPE)
    cmds["symbol"] = 1
    cmds["order_id"] = np.arange(1, len(cmds) + 1)
    cmds["price"] = 100
    cmds["qty"] = 1
    cmds["side"] = mc.Side.SELL
    cmds["tif"] = mc.TIF.GTC
    takers = cmds[makers::per]
    takers["side"] = mc.Side.BUY
    takers["tif"] = mc.TIF.IOC
    takers["qty"] = makers
    cmds[makers::per] = takers
    return cmds


def test_engine_kill9_mid_batch_trade_journal_holds_no_fills_of_unjournaled_commands(tmp_path):
    # Within one process() batch the trade buffer filled (10 fills per 11 commands) and went
    # to the OS while the batch's command records still waited for the end of the call: a kill
    # in between left trade records naming command seqs the command journal did not hold.
    cmds = _fill_heavy_batch(20_000)
    rng = np.random.default_rng(7)
    checked = 0
    for k in range(12):
        d = str(tmp_path / f"b{k}")
        def child(w, d=d):
            eng = mc.Engine(journal=d, fsync="never", buffer_bytes=1 << 16)
            eng.add_symbol(1)
            os.write(w, b"g")
            eng.process(cmds)
            os.write(w, b"d")

        pid, r = _fork(child)
        assert os.read(r, 1) == b"g"
        time.sleep(float(rng.uniform(0.0, 0.03)))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        trades = read_trades(d)
        j = read_journal(d)
        last_cmd = int(j["seqs"].max()) if len(j["seqs"]) else 0
        if len(trades):
            checked += 1
            assert int(trades["cmd_seq"].max()) <= last_cmd, (k, last_cmd)
        # and recovery rebuilds exactly the journaled prefix (seq 1 is add_symbol)
        fresh = mc.Engine()
        fresh.add_symbol(1)
        fresh.process(cmds[:max(last_cmd - 1, 0)])
        assert mc.Engine.recover(d, readonly=True).state_hash() == fresh.state_hash()
    assert checked >= 6        # most kills landed after fills were on file


def _at_rename(body, sig):
    """A forked child running ``body()`` that sends itself ``sig`` as it calls os.replace (the
    step after its temporary file is written, and fsynced where its writer syncs), so that it
    dies or stops exactly between the two; returns its pid once it has (a stopped child is left
    stopped). Used by the Recorder's kill tests too."""
    import sys

    def run(w):
        def hook(frame, event, arg):
            if event == "c_call" and arg is os.replace:
                sys.setprofile(None)
                os.kill(os.getpid(), sig)
        sys.setprofile(hook)
        body()

    pid, r = _fork(run)
    os.close(r)
    _, status = os.waitpid(pid, os.WUNTRACED)
    if sig == signal.SIGSTOP:
        assert os.WIFSTOPPED(status)
    else:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig
    return pid


def _snapshot_temps(d):
    return sorted(f for f in os.listdir(d) if ".mcs.tmp" in f)


def test_snapshot_killed_before_rename_temp_removed_by_next_snapshot(tmp_path):
    # eng.snapshot(DIR) into a directory no recovery ever reads (a backup): a writer killed
    # before its rename left snapshot-<seq>.mcs.tmp there for good, whatever came next
    backup = tmp_path / "backup"

    def body():
        eng = mc.Engine(journal=tmp_path / "a", fsync="never")
        eng.add_symbol(1)
        eng.submit(1, 1, 0, 100, 5)
        eng.snapshot(backup)

    _at_rename(body, signal.SIGKILL)
    assert len(_snapshot_temps(backup)) == 1 and mc.durability.list_snapshots(backup) == []
    other = mc.Engine(journal=tmp_path / "b", fsync="never")
    other.add_symbol(7)
    written = other.snapshot(backup)
    other.close()
    assert _snapshot_temps(backup) == []
    assert os.path.basename(written) == "snapshot-00000000000000000001.mcs"
    assert mc.durability.load_snapshot(written)[0].symbols == {7: None}


def test_snapshot_two_writers_of_one_seq_both_complete(tmp_path):
    # two engines writing a snapshot of the same seq into one directory shared the temporary
    # name: the second truncated and renamed the first's file, and the first's rename failed
    d = tmp_path / "snaps"

    def body():
        eng = mc.Engine()
        eng.add_symbol(1)
        eng.submit(1, 1, 0, 100, 5)
        eng.snapshot(d)

    pid = _at_rename(body, signal.SIGSTOP)
    try:
        held = _snapshot_temps(d)
        assert len(held) == 1
        eng = mc.Engine()
        eng.add_symbol(2)
        eng.snapshot(d)                              # the stopped writer's file is kept
        assert _snapshot_temps(d) == held
        assert mc.durability.load_snapshot(d / f"snapshot-{0:020d}.mcs")[0].symbols == {2: None}
    finally:
        os.kill(pid, signal.SIGCONT)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _snapshot_temps(d) == []
    loaded = mc.durability.load_snapshot(d / f"snapshot-{0:020d}.mcs")[0]
    assert loaded.symbols == {1: None} and loaded.get(1) == (1, 0, 100, 5)


def test_recovery_snapshot_killed_before_rename_temp_removed_user_files_kept(tmp_path):
    d = tmp_path / "j"

    def body():
        eng = mc.Engine(journal=d, fsync="always")
        eng.add_symbol(1)
        eng.submit(1, 1, 0, 100, 5)
        eng.snapshot()

    _at_rename(body, signal.SIGKILL)
    left = _snapshot_temps(d)
    assert len(left) == 1
    mine = {"notes.mcs.tmp": b"mine", "snapshot-00000000000000000002.mcs.tmp": b"mine too",
            # a snapshot's bytes under a name no writer gives (no random part), pid gone
            f"snapshot-00000000000000000002.mcs.tmp{2**22 + 12345}":
                snapshot_bytes(mc.Engine())[0]}
    for name, data in mine.items():
        (d / name).write_bytes(data)
    rep = mc.Engine.recover(d).recovery_report
    assert rep.removed_temporaries == [str(d / left[0])] and rep.snapshot is None
    assert _snapshot_temps(d) == sorted(mine)
    assert all((d / n).read_bytes() == data for n, data in mine.items())


def test_snapshot_write_failing_file_too_large_leaves_no_temporary(tmp_path):
    # a snapshot whose write fails (here: past the process's file size limit, EFBIG, as a full
    # disk fails it with ENOSPC) left its half-written temporary file behind
    import resource

    d = tmp_path / "snaps"

    def body(w):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        eng = mc.Engine()
        eng.add_symbol(1)
        for i in range(500):
            eng.submit(1, i + 1, 0, 100 - i % 50, 1)
        try:
            eng.snapshot(d)
        except OSError as exc:
            os.write(w, struct.pack("<Q", exc.errno))

    pid, r = _fork(body)
    got = _read_acks(r, 1)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    import errno
    assert struct.unpack("<Q", got)[0] == errno.EFBIG
    assert os.listdir(d) == []
