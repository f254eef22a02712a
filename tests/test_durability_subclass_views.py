"""A subclass of Engine that presents its state its own way (limits(), book(), symbols) still
journals and snapshots the engine's own state: the files are read back by Engine.recover."""
from __future__ import annotations

import matchcore as mc
from matchcore.durability import load_snapshot


class Limits:
    """What a desk's subclass hands its own callers instead of the limits dict."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class DeskEngine(mc.Engine):
    def limits(self, symbol):
        return Limits(**super().limits(symbol))

    def book(self, symbol):
        return ("desk view", super().book(symbol))

    @property
    def symbols(self):
        return sorted(mc.Engine.symbols.__get__(self))


def test_journaled_add_symbol_subclass_own_limits_view_journals_engine_limits(tmp_path):
    # add_symbol read the limits it journals through self.limits(): an override returning
    # another type raised after the symbol was added and before its record was written, so
    # the engine took orders on a symbol the journal never had (recovery: "replay diverged")
    d = tmp_path / "j"
    eng = DeskEngine(journal=d, fsync="never")
    eng.add_symbol(1, "A", tick=5, max_qty=100)
    eng.submit(1, 1, 0, 100, 5)
    want = mc.Engine.state_hash(eng)
    eng.close()
    rec = mc.Engine.recover(d, readonly=True)
    assert mc.Engine.state_hash(rec) == want
    assert rec.symbols == {1: "A"} and mc.Engine.limits(rec, 1)["tick"] == 5
    assert mc.Engine.limits(rec, 1)["max_qty"] == 100


def test_snapshot_subclass_own_views_writes_engine_state(tmp_path):
    # the snapshot read symbols, book() and limits() through the subclass's overrides
    eng = DeskEngine()
    eng.add_symbol(1, "A", tick=5)
    eng.add_symbol(2, "B", max_qty=7)
    eng.submit(2, 1, 1, 100, 5)
    path = eng.snapshot(tmp_path / "s")
    loaded, head = load_snapshot(path)
    assert head["state_hash"] == mc.Engine.state_hash(eng) == loaded.state_hash()
    assert loaded.symbols == {1: "A", 2: "B"} and loaded.limits(2)["max_qty"] == 7
