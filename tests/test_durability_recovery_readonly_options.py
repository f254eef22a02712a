"""A read-only recovery writes nothing: writer options given to it are refused, as the CLI
refuses ``recover --fsync`` without ``--repair``."""
from __future__ import annotations

import os

import pytest

import matchcore as mc
from durability_checks import _files_and_sizes, journaled


def _journal(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.submit(1, 2, 1, 100, 2)
    eng.close()
    return d


@pytest.mark.parametrize("option", [{"fsync": "never"}, {"fsync": "batch"},
                                    {"segment_bytes": 1 << 20}, {"batch_records": 8},
                                    {"batch_us": 100}, {"buffer_bytes": 1 << 20}], ids=str)
def test_recover_readonly_with_a_writer_option_refused_naming_it(tmp_path, option):
    # silently taken (and ignored: no writer is made), while the CLI refuses --fsync without
    # --repair
    d = _journal(tmp_path)
    before = _files_and_sizes(d)
    name = next(iter(option))
    with pytest.raises(ValueError, match=f"^{name} does not apply to a read-only recovery: "
                                         f"it writes nothing"):
        mc.Engine.recover(d, readonly=True, **option)
    assert _files_and_sizes(d) == before
    # refused before the directory is looked at
    with pytest.raises(ValueError, match=f"^{name} does not apply"):
        mc.Engine.recover(tmp_path / "missing", readonly=True, **option)
    assert not os.path.lexists(tmp_path / "missing")
    # a recovery that writes takes it
    mc.Engine.recover(d, **option).close()


def test_recover_readonly_trades_selects_what_is_read_and_is_kept(tmp_path):
    # trades= is not a writer option: read-only, it selects whether the trade journal is read
    d = _journal(tmp_path)
    rep = mc.Engine.recover(d, readonly=True, trades=False).recovery_report
    assert not rep.trade_capture
    rep = mc.Engine.recover(d, readonly=True, trades=True).recovery_report
    assert rep.trade_capture and rep.last_trade_seq == 1
