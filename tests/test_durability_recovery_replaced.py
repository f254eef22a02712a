"""Recovery with other options than an empty last segment records: that segment is replaced,
and reported as replaced (replaced_files, read-only files_to_replace), not as created."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import matchcore as mc
from cli_replay_checks import run_cli
from durability_checks import journaled
from matchcore.durability import _journal as _j
from matchcore.durability import inspect, read_trades
from matchcore.durability.journal import segment_files, KIND_COMMANDS, KIND_TRADES


def _flow(eng, n):
    cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    cmds["symbol"] = 1
    cmds["order_id"] = np.arange(1, n + 1)
    cmds["side"] = np.arange(n) % 2
    cmds["price"] = 100
    cmds["qty"] = 1
    eng.process(cmds)


def test_recovery_replacing_an_empty_last_segment_reports_it_replaced_not_created(tmp_path,
                                                                                  capsys):
    # the empty segment started for other options, replaced by one recording the options
    # given, was reported under created_files ("created journal-...mcj", read-only "would
    # create") though the file was there already
    eng, d = journaled(tmp_path, fsync="always")
    eng.add_symbol(1)
    _flow(eng, 10)
    eng.close()
    mc.Engine.recover(d, fsync="never").close()           # starts an empty segment
    name = segment_files(d, KIND_COMMANDS)[-1][1]
    assert os.path.getsize(name) == _j.SEG_HEADER
    base = os.path.basename(name)
    copy = str(tmp_path / "copy")
    shutil.copytree(d, copy)
    code, out, _ = run_cli(capsys, "recover", copy, "--repair", "--fsync", "batch", "--json",
                           "-", "--no-progress")
    assert code == 0
    report = json.loads(out)["report"]
    assert report["replaced_files"] == [os.path.join(copy, base)]
    assert report["created_files"] == []
    rec = mc.Engine.recover(d, fsync="batch")
    rep = rec.recovery_report
    rec.close()
    assert rep.replaced_files == [name] and rep.created_files == []
    assert rep.files_to_replace == []
    text = rep.summary()
    assert f"replaced {base}" in text and "created" not in text
    assert len(segment_files(d, KIND_COMMANDS)) == 2


def test_readonly_recovery_previews_an_empty_last_segment_replaced_not_created(tmp_path):
    # read-only, the replacement is "would replace", not "would create" (trades=, the one
    # option a read-only recovery takes, is what differs from the empty segment's header)
    eng, d = journaled(tmp_path, trades=False)
    eng.add_symbol(1)
    _flow(eng, 10)
    eng.close()
    mc.Engine.recover(d, trades=True).close()             # starts an empty segment
    name = segment_files(d, KIND_COMMANDS)[-1][1]
    assert os.path.getsize(name) == _j.SEG_HEADER
    ro = mc.Engine.recover(d, readonly=True, trades=False).recovery_report
    assert ro.files_to_replace == [name] and ro.files_to_create == []
    assert ro.replaced_files == []
    text = ro.summary()
    assert f"would replace {os.path.basename(name)}" in text and "would create" not in text
    rec = mc.Engine.recover(d, trades=False)
    rep = rec.recovery_report
    rec.close()
    assert rep.replaced_files == [name] and rep.options_changed == ro.options_changed


@pytest.mark.parametrize("options", [{"fsync": "always", "segment_bytes": 1 << 20},
                                     {"trades": False}])
def test_recovery_starting_new_segments_gives_back_the_killed_writers_preallocation(tmp_path,
                                                                                    options):
    # A writer killed with its segments open leaves their preallocated blocks (fallocate,
    # keep size) past their ends; an appending writer gives them back when it closes. One
    # recovered with other options starts new segments instead (or, without trade capture,
    # writes no trade segment), and the old last segments kept the whole preallocation
    # (64 MiB each by default) for good.
    import signal
    d = tmp_path / "j"
    pid = os.fork()
    if pid == 0:                                        # the writer, killed mid-session
        try:
            eng = mc.Engine(journal=d, fsync="never")
            eng.add_symbol(1)
            _flow(eng, 10)
            os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    os.waitpid(pid, 0)
    old = [f for kind in (KIND_COMMANDS, KIND_TRADES) for _, f in segment_files(d, kind)]
    assert len(old) == 2
    rec = mc.Engine.recover(d, **options)
    rec.close()
    assert rec.recovery_report.options_changed
    assert len(segment_files(d, KIND_COMMANDS)) == 2
    for f in old:
        # what the file holds, in whole blocks: nothing preallocated past its end
        assert os.stat(f).st_blocks * 512 <= os.path.getsize(f) + 4096, f


@pytest.mark.parametrize("trades", [None, False])
def test_recovery_keeps_the_empty_trade_segment_a_recovery_started(tmp_path, trades):
    # A recovery with other options starts an empty trade segment after the last fill; the
    # engine closed with no fill since, every later recovery took that segment for one
    # "wholly after the cut", dropped it and made it again: modified True after a clean
    # close, "dropped 1 trailing file(s)", and "segment_bytes ... given" though none was
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    _flow(eng, 10)                                      # fills: the trade journal holds them
    eng.close()
    mc.Engine.recover(d, segment_bytes=1 << 20).close()
    empty = segment_files(d, KIND_TRADES)[-1][1]
    assert len(segment_files(d, KIND_TRADES)) == 2 and os.path.getsize(empty) == _j.SEG_HEADER
    before = sorted(os.listdir(d))
    ro = mc.Engine.recover(d, readonly=True, trades=trades).recovery_report
    # (trades=False given: the last command segment records capture on, and is replaced)
    changed = [] if trades is None else ["trades"]
    assert ro.files_to_drop == [] and ro.files_to_create == []
    assert [c[1] for c in ro.options_changed] == changed
    rec = mc.Engine.recover(d, trades=trades)
    rep = rec.recovery_report
    assert rep.dropped_files == [] and rep.created_files == []
    assert [c[1] for c in rep.options_changed] == changed
    assert rep.modified is False and "dropped" not in rep.summary()
    if trades is None:
        assert rec.trade_journal.segment_bytes == 1 << 20
        rec.submit(1, 100, mc.Side.BUY, 100, 1)
        rec.submit(1, 101, mc.Side.SELL, 100, 1)        # a fill: into the kept segment
    rec.close()
    assert sorted(os.listdir(d)) == before
    if trades is None:
        first = segment_files(d, KIND_TRADES)[-1][0]
        assert read_trades(d)["seq"].tolist()[-1] == first and os.path.getsize(empty) > 64
    assert inspect(d)["journals"]["trades"]["segments_to_drop"] == []


def test_recovery_cuts_a_torn_first_fill_of_the_empty_trade_segment_it_keeps(tmp_path):
    # the empty trade segment a recovery started, killed while writing its first fill: the
    # torn record is cut before the writer appends (appended after it, every later fill was
    # hidden behind a torn tail)
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    _flow(eng, 10)
    eng.close()
    mc.Engine.recover(d, segment_bytes=1 << 20).close()
    empty = segment_files(d, KIND_TRADES)[-1][1]
    with open(empty, "ab") as fh:
        fh.write(b"\x68\x00\x00\x00" + b"\x01" * 30)
    ro = mc.Engine.recover(d, readonly=True).recovery_report
    assert ro.bytes_to_cut == 34 and ro.files_to_drop == []
    rec = mc.Engine.recover(d)
    rep = rec.recovery_report
    assert rep.cut_bytes == 34 and rep.dropped_files == []
    assert os.path.getsize(empty) == _j.SEG_HEADER
    rec.submit(1, 100, mc.Side.BUY, 100, 1)
    rec.submit(1, 101, mc.Side.SELL, 100, 1)
    rec.close()
    t = read_trades(d, allow_torn_tail=False)
    assert t["seq"].tolist() == list(range(1, 7)) and t["cmd_seq"].tolist()[-1] == 13


def test_recovery_does_not_call_a_segment_size_it_took_from_the_journal_given(tmp_path):
    # Segments resized while trade capture was off: the trade journal's last segment records
    # the old size, the command journal's the new one. A later recovery that turns capture
    # back on without segment_bytes= takes the journal's own size (the newest command
    # segment's) and starts a trade segment recording it, but its summary said "segment_bytes
    # 200000 given" though no size was given.
    d = str(tmp_path / "j")
    eng = mc.Engine(journal=d, segment_bytes=100_000)
    eng.add_symbol(1)
    _flow(eng, 4)
    eng.close()
    mc.Engine.recover(d, segment_bytes=200_000, trades=False).close()
    trade_seg = segment_files(d, KIND_TRADES)[-1][1]
    command_seg = os.path.basename(segment_files(d, KIND_COMMANDS)[-1][1])
    for readonly in (True, False):
        rec = mc.Engine.recover(d, readonly=readonly, trades=True)
        rep = rec.recovery_report
        rec.close()
        assert (trade_seg, "segment_bytes", 100_000, 200_000) in rep.options_changed
        text = rep.summary()
        assert "segment_bytes 200000 given" not in text
        assert "trades True given" in text
        assert (f"segment_bytes 200000, the journal's own ({command_seg} records it), "
                f"{os.path.basename(trade_seg)} records 100000: "
                f"{'would start' if readonly else 'started'} a new segment recording it"
                ) in text, text
    # given, it is called given
    rec = mc.Engine.recover(d, segment_bytes=300_000)
    rec.close()
    assert rec.recovery_report.options_kept == {}
    assert "segment_bytes 300000 given" in rec.recovery_report.summary()
