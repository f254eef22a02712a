"""The fsync option of Engine(journal=) and Engine.recover: a value that is no policy name is
refused in the option's own words, whatever its type, before any file is made or touched."""
from __future__ import annotations

import pytest

import matchcore as mc
from durability_checks import _files_and_sizes, journaled

# unhashable values raised TypeError: unhashable type: 'list' (the name lookup's own words)
_BAD = [["batch"], {"always": 1}, {"never"}, 1, b"batch"]


@pytest.mark.parametrize("fsync", _BAD, ids=repr)
def test_engine_journal_fsync_not_a_policy_valueerror_nothing_made(tmp_path, fsync):
    with pytest.raises(ValueError, match="fsync must be one of"):
        mc.Engine(journal=tmp_path / "j", fsync=fsync)
    assert not (tmp_path / "j").exists()


@pytest.mark.parametrize("fsync", _BAD, ids=repr)
def test_recover_fsync_not_a_policy_valueerror_files_untouched(tmp_path, fsync):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.close()
    before = _files_and_sizes(d)
    with pytest.raises(ValueError, match="fsync must be one of"):
        mc.Engine.recover(d, fsync=fsync)
    assert _files_and_sizes(d) == before
