"""A process() batch that a journal I/O error cuts short: what the disk holds, and recovers."""
from __future__ import annotations

import os

import numpy as np
import pytest

import matchcore as mc
from matchcore.durability import JournalError, read_trades

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and setrlimit")


def _batch(n):
    cmds = np.zeros(n, mc.COMMAND_DTYPE)
    cmds["symbol"] = 1
    cmds["order_id"] = np.arange(1, n + 1)
    cmds["side"] = np.arange(n) % 2           # alternating sides at one price: many fills
    cmds["price"] = 100
    cmds["qty"] = 1 + np.arange(n) % 3
    cmds["kind"] = mc.CommandKind.SUBMIT
    return cmds


@pytest.mark.parametrize("fsync", ["always", "never"])
def test_batch_cut_by_a_journal_io_error_recovers_the_commands_on_file(tmp_path, fsync):
    # The README said only that the engine may be ahead of the disk by the failed call. For a
    # batch the disk may hold part of that call: each command is its own record, and those
    # written before the error are on file. Recovery applies exactly them, in order, and
    # rewrites their fills: the state of the batch's first k commands, for the k on file.
    import resource
    import signal

    d = tmp_path / "j"
    n = 200
    cmds = _batch(n)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            eng = mc.Engine(journal=d, fsync=fsync, buffer_bytes=8192)
            eng.add_symbol(1)
            eng.sync()
            seg = d / "journal-00000000000000000001.mcj"
            # room for some of the batch's records, not all of them
            resource.setrlimit(resource.RLIMIT_FSIZE,
                               (os.path.getsize(seg) + 6000, resource.RLIM_INFINITY))
            try:
                eng.process(cmds)
                code = 3
            except JournalError:
                code = 0 if len(eng) == mc_len_after(cmds) else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0   # the batch raised, applied in memory
    rec = mc.Engine.recover(d)
    k = rec.recovery_report.last_seq - 1           # seq 1 is add_symbol
    assert 0 < k < n, k                             # part of the batch is on file
    fresh = mc.Engine()
    fresh.add_symbol(1)
    events = fresh.process(cmds[:k])
    assert rec.state_hash() == fresh.state_hash()
    rec.close()
    fills = events[events["kind"] == mc.EventKind.FILL]
    trades = read_trades(d)
    assert len(fills) > 0
    assert trades["taker_id"].tolist() == fills["order_id"].tolist()
    assert trades["maker_id"].tolist() == fills["maker_id"].tolist()
    assert trades["qty"].tolist() == fills["qty"].tolist()


def mc_len_after(cmds):
    """Resting orders after the whole batch, applied in memory (the failed call's state)."""
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.process(cmds)
    return len(eng)
