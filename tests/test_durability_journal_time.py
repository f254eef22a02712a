"""A journal record's wall-clock time is one reading per call, as the README says: a call
whose records fill more than the writer's buffer (written out part way) read the clock again
for each buffer, so one process() call looked like several in the journal."""
from __future__ import annotations

import numpy as np

import matchcore as mc
from matchcore.durability import read_journal, read_trades


def test_journal_time_large_process_call_one_reading_per_journal(tmp_path):
    eng = mc.Engine(journal=tmp_path, buffer_bytes=8192)   # about 93 command records
    eng.add_symbol(1)
    n = 1000
    cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    cmds["symbol"] = 1
    cmds["order_id"] = np.arange(1, n + 1)
    cmds["side"] = np.arange(n) % 2                          # every sell fills the buy before it
    cmds["price"] = 100
    cmds["qty"] = 1
    eng.process(cmds)
    eng.submit(1, n + 1, mc.Side.BUY, 100, 1)
    eng.submit(1, n + 2, mc.Side.SELL, 100, 1)
    eng.close()
    index = read_journal(str(tmp_path))["index"]
    ts = index["ts_ns"]
    assert index["seq"].tolist() == list(range(1, n + 4))
    batch = ts[1:n + 1]
    assert np.unique(batch).tolist() == [batch[0]]
    # the calls before and after read the clock of their own
    assert ts[0] <= batch[0] <= ts[n + 1] <= ts[n + 2]
    trades = read_trades(str(tmp_path))
    assert len(trades) == n // 2 + 1
    fills = trades["journal_ts_ns"][:n // 2]
    assert np.unique(fills).tolist() == [fills[0]] and fills[0] >= batch[0]
    assert trades["journal_ts_ns"][-1] >= ts[n + 2]
