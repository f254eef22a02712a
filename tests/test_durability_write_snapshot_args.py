"""write_snapshot's engine argument: anything but an Engine is refused in words that say what the
call takes, before anything is made."""
from __future__ import annotations

import pytest

import matchcore as mc


@pytest.mark.parametrize("what", [mc.OrderBook, lambda: None, lambda: "state/"],
                         ids=["OrderBook", "None", "str"])
def test_write_snapshot_of_no_engine_typeerror_naming_it_nothing_made(tmp_path, what):
    # it raised AttributeError ("'OrderBook' object has no attribute 'journal'")
    with pytest.raises(TypeError, match="write_snapshot.. needs an Engine"):
        mc.durability.write_snapshot(what(), tmp_path / "snaps")
    assert not (tmp_path / "snaps").exists()
