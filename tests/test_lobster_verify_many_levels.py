"""verify=True with an orderbook of more levels than an int16 counts: the count of levels that
agree after a message is the number of levels compared, not a wrapped negative number."""
from __future__ import annotations

import numpy as np

from matchcore.lobster import ASK_DUMMY, BID_DUMMY, LobsterMessages, replay_lobster


def _rows(levels: int, rows: int) -> np.ndarray:
    ob = np.zeros((rows, 4 * levels), dtype=np.int64)
    ob[:, 0::4] = ASK_DUMMY
    ob[:, 2::4] = BID_DUMMY
    ob[:, 0:4] = (6000, 100, 5000, 100)     # one level a side, every deeper one empty
    return ob


def test_lobster_verify_more_levels_than_int16_agree_whole_rows():
    levels = 2**15 + 1                      # 32769: one above the largest int16
    msgs = LobsterMessages(ts_ns=np.array([1, 2], dtype=np.int64),
                           type=np.array([5, 5], dtype=np.int8),      # hidden executions
                           order_id=np.array([7, 8], dtype=np.int64),
                           size=np.array([10, 10], dtype=np.int64),
                           price=np.array([5500, 5500], dtype=np.int64),
                           direction=np.array([1, -1], dtype=np.int8))
    r = replay_lobster(msgs, _rows(levels, 2), verify=True)
    assert r.levels == levels
    assert r.agree_levels.tolist() == [levels, levels]
    assert r.agree.all()
    assert r.agreement_rate == 1.0 and r.top_of_book_rate == 1.0
    assert r.first_disagreement is None
