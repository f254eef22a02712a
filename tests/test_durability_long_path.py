"""A journal directory whose path is longer than the writers take is refused before anything
is made, cut or renamed: by ``Engine(journal=DIR)`` and by a writing ``Engine.recover(DIR)``
(a journal moved into a deeper directory), with a message naming the directory and the limit.
A read-only recovery, which makes no writer, still reads it."""
from __future__ import annotations

import os
import shutil

import pytest

import matchcore as mc
from matchcore.durability import _journal as _j


def _long_dir(tmp_path, length: int) -> str:
    """A path of exactly ``length`` bytes under tmp_path, its parent made (components of at
    most 200 bytes)."""
    p = os.path.abspath(tmp_path)
    while length - len(p) > 250:
        p = os.path.join(p, "d" * 200)
    os.makedirs(p, exist_ok=True)
    return os.path.join(p, "j" * (length - len(p) - 1))


def _files(d):
    return {f: open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))}


def test_durability_long_path_new_journal_refused_nothing_made(tmp_path):
    d = _long_dir(tmp_path, _j.MAX_DIR_BYTES + 1)
    with pytest.raises(ValueError, match=f"{_j.MAX_DIR_BYTES + 1} bytes long, at most "
                                         f"{_j.MAX_DIR_BYTES}"):
        mc.Engine(journal=d)
    assert not os.path.lexists(d)


def test_durability_long_path_recover_refused_before_cutting(tmp_path):
    src = str(tmp_path / "src")
    eng = mc.Engine(journal=src, fsync="never")
    eng.add_symbol(1)
    for i in range(10):
        eng.submit(1, i + 1, i % 2, 100, 3)
    eng.snapshot()
    eng.submit(1, 50, 0, 99, 1)
    eng.sync()
    crashed = str(tmp_path / "crashed")
    shutil.copytree(src, crashed)           # as a kill -9 leaves it: no close()
    eng.close()
    seg = os.path.join(crashed, "journal-00000000000000000001.mcj")
    os.truncate(seg, os.path.getsize(seg) - 3)              # a torn tail recovery cuts
    d = _long_dir(tmp_path, _j.MAX_DIR_BYTES + 10)
    os.rename(crashed, d)
    before = _files(d)
    with pytest.raises(ValueError, match="bytes long, at most") as exc:
        mc.Engine.recover(d)
    assert os.fsdecode(os.fsencode(d)) in str(exc.value)
    assert _files(d) == before              # the torn tail is still there to be cut
    # read-only: no writer, nothing to name; it reports the cut a writing recovery makes
    ro = mc.Engine.recover(d, readonly=True)
    assert ro.recovery_report.bytes_to_cut > 0
    assert _files(d) == before


def test_durability_long_path_at_limit_journals(tmp_path):
    d = _long_dir(tmp_path, _j.MAX_DIR_BYTES)
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.snapshot()
    eng.close()
    assert mc.Engine.recover(d).get(1) == (1, 0, 100, 5)
