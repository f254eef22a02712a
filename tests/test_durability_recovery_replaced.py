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
    ro = mc.Engine.recover(d, readonly=True, fsync="batch").recovery_report
    assert ro.files_to_replace == [name] and ro.files_to_create == []
    base = os.path.basename(name)
    text = ro.summary()
    assert f"would replace {base}" in text and "would create" not in text
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
    assert rep.files_to_replace == [] and ro.replaced_files == []
    text = rep.summary()
    assert f"replaced {base}" in text and "created" not in text
    assert len(segment_files(d, KIND_COMMANDS)) == 2


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
