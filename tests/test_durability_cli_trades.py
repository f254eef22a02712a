"""``matchcore journal trades``: what it says of the fills it lists, against what recovery does."""
from __future__ import annotations

import os

import pytest

import matchcore as mc
from matchcore.durability.errors import JournalError
from matchcore.durability.journal import KIND_COMMANDS, segment_files
from cli_replay_checks import run_cli
from durability_checks import journal_of_segments


def test_cli_journal_trades_claims_no_cut_in_a_directory_recovery_refuses(capsys, tmp_path):
    # a journal that starts after seq 1 with no snapshot, its command tail lost: recovery
    # refuses the directory and cuts nothing, yet journal trades said of the fills of commands
    # after the last seq "(recovery cuts them)"
    d = journal_of_segments(tmp_path)
    segs = segment_files(d, KIND_COMMANDS)
    assert len(segs) > 2
    os.unlink(segs[0][1])
    os.truncate(segs[-1][1], 256)                 # commands lost, their fills still journaled
    with pytest.raises(JournalError, match="no valid snapshot holds the state"):
        mc.Engine.recover(d, readonly=True)
    code, out, err = run_cli(capsys, "journal", "trades", str(d), "--limit", "1")
    assert code == 0 and err == ""
    assert out.startswith("150 trades, 750 lots\n")
    assert "recovery cuts" not in out
