"""Snapshots and the trade journals beside them: a directory that holds another engine's trade
journal and no command journal is refused, as Engine(journal=DIR) refuses it, and the engine's
own trade journal left open is named, before anything is written."""
from __future__ import annotations

import os

import pytest

import matchcore as mc
from matchcore.durability import JournalError, read_trades
from matchcore.durability.journal import KIND_COMMANDS, segment_files
from durability_checks import _files_and_sizes, journaled


def _trades_only(tmp_path):
    # a closed journal with one fill whose command segments are gone (archived, deleted):
    # only its trade segment is left
    eng, d = journaled(tmp_path, "trades_only")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 5)
    eng.close()
    for _, fpath in segment_files(d, KIND_COMMANDS):
        os.unlink(fpath)
    return d, read_trades(d)


def test_snapshot_into_trades_only_dir_unjournaled_engine_refused_nothing_written(tmp_path):
    # the engine's snapshot-0 there made Engine.recover(DIR) start a journal over that trade
    # journal and cut its fills ("cut 1 fill record(s) of commands after it")
    d, fills = _trades_only(tmp_path)
    other = mc.Engine()
    other.add_symbol(2)
    before = _files_and_sizes(d)
    with pytest.raises(ValueError, match="trade journal"):
        other.snapshot(d)
    with pytest.raises(ValueError, match="trade journal"):
        mc.durability.write_snapshot(other, d)
    assert _files_and_sizes(d) == before
    assert read_trades(d).tobytes() == fills.tobytes()
    with pytest.raises(ValueError, match="only trade segments"):
        mc.Engine(journal=d)                            # the refusal it now matches


def test_snapshot_into_trades_only_dir_of_journaled_engine_refused(tmp_path):
    # a journaled engine's snapshot-N there: recovery took the other engine's fills for the
    # snapshot's own (a fill of 5 lots where this engine's command filled 1)
    d, fills = _trades_only(tmp_path)
    eng, _ = journaled(tmp_path, "own")
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.submit(1, 2, mc.Side.SELL, 100, 1)
    before = _files_and_sizes(d)
    with pytest.raises(ValueError, match="trade journal"):
        eng.snapshot(d)
    assert _files_and_sizes(d) == before
    assert read_trades(d).tobytes() == fills.tobytes()
    assert os.path.basename(eng.snapshot()) == f"snapshot-{3:020d}.mcs"     # its own: written
    eng.close()
    assert os.path.basename(eng.snapshot()) == f"snapshot-{3:020d}.mcs"     # also once closed


def test_snapshot_after_closing_the_command_journal_alone_names_the_open_trade_journal(tmp_path):
    # closing eng.journal alone leaves the trade journal open, holding the LOCK (README,
    # "Files"); the snapshot into the engine's own directory said the directory was "in use
    # by another engine", where only this engine's own trade journal holds it
    eng, d = journaled(tmp_path, fsync="batch")      # closed durably
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    eng.journal.close()
    before = _files_and_sizes(d)
    with pytest.raises(JournalError, match="trade journal is still open") as err:
        eng.snapshot()
    assert "another engine" not in str(err.value)
    assert _files_and_sizes(d) == before
    eng.close()
    assert os.path.basename(eng.snapshot()) == f"snapshot-{2:020d}.mcs"
