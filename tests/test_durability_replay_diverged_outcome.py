"""A replay that diverges from the journal names both outcomes: the recorded one and the one the
engine gave, so that a reader can tell a different fill quantity from a refusal, and which."""
from __future__ import annotations

import re
import struct

import pytest

import matchcore as mc
from matchcore.durability import JournalError
from matchcore.durability.journal import segment_files, KIND_COMMANDS
from durability_checks import _crc32c_py, journaled


def _set_last_outcome(d, value):
    seg = segment_files(d, KIND_COMMANDS)[0][1]
    data = bytearray(open(seg, "rb").read())
    off = len(data) - 88                                       # the last command record
    struct.pack_into("<q", data, off + 80, value)              # its recorded outcome
    struct.pack_into("<I", data, off + 4, _crc32c_py(bytes(data[off + 8:off + 88])))
    open(seg, "wb").write(bytes(data))
    return seg, off


@pytest.mark.parametrize("readonly", [True, False])
def test_replay_diverged_fill_qty_names_the_engines_outcome(tmp_path, readonly):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)
    assert eng.submit(1, 2, mc.Side.SELL, 100, 3) == 3         # seq 3 executed 3
    eng.close()
    seg, off = _set_last_outcome(d, 2)
    with pytest.raises(JournalError) as err:
        mc.Engine.recover(d, readonly=readonly)
    msg = str(err.value)
    assert f"replay diverged at seq 3 ({seg}, offset {off})" in msg
    assert re.search(r"recorded outcome 2, the engine gave 3\b", msg), msg


def test_replay_diverged_refusal_names_the_reason(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    assert eng.cancel(9) == 0                                  # seq 2: ORDER_NOT_FOUND
    eng.close()
    _set_last_outcome(d, 4)
    with pytest.raises(JournalError) as err:
        mc.Engine.recover(d, readonly=True)
    assert "recorded outcome 4, the engine gave -6 (ORDER_NOT_FOUND)" in str(err.value), \
        str(err.value)


def test_replay_diverged_recorded_refusal_named_too(tmp_path):
    eng, d = journaled(tmp_path)
    eng.add_symbol(1)
    eng.submit(1, 1, mc.Side.BUY, 100, 5)                      # seq 2 rests: outcome 0
    eng.close()
    _set_last_outcome(d, -mc.Reason.DUPLICATE_ORDER_ID)
    with pytest.raises(JournalError) as err:
        mc.Engine.recover(d, readonly=True)
    assert ("recorded outcome -5 (DUPLICATE_ORDER_ID), the engine gave 0"
            in str(err.value)), str(err.value)
