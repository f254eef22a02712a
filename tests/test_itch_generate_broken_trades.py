"""``itch.generate``'s broken trade messages (B) break a trade of the day: one of the stock
their locate names, once."""
from __future__ import annotations

import pytest

import matchcore.itch as itch


def _trades_by_match(msgs) -> dict:
    out = {}
    for t in "ECPQ":
        if t in msgs:
            for loc, match in zip(msgs[t]["stock_locate"].tolist(),
                                  msgs[t]["match_number"].tolist()):
                out[match] = loc
    return out


@pytest.mark.parametrize("messages, symbols, seed", [(60_000, 6, 2), (40_000, 30, 11),
                                                     (20_000, 1, 4)])
def test_itch_generate_broken_trade_names_its_trades_locate_once(messages, symbols, seed):
    # a B message took a random symbol's locate and any match number of the day: most broke a
    # trade of another stock (a consumer amending per-symbol trades found no such match
    # there), and one match could be broken twice
    msgs = itch.decode(itch.generate(None, messages=messages, symbols=symbols, seed=seed))
    assert len(msgs["B"]) > 10
    trades = _trades_by_match(msgs)
    broken = msgs["B"]["match_number"].tolist()
    assert all(m in trades for m in broken)
    assert [trades[m] for m in broken] == msgs["B"]["stock_locate"].tolist()
    assert len(set(broken)) == len(broken)


def test_itch_generate_broken_trade_follows_its_trade():
    # a trade is broken after it was printed, never before
    data = itch.generate(None, messages=60_000, symbols=4, seed=8)
    msgs = itch.decode(data)
    first = {}
    for t in "ECPQ":
        for ts, match in zip(msgs[t]["timestamp"].tolist(), msgs[t]["match_number"].tolist()):
            first[match] = ts
    assert all(first[m] <= ts for m, ts in zip(msgs["B"]["match_number"].tolist(),
                                                msgs["B"]["timestamp"].tolist()))
