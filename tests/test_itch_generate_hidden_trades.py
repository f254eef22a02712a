"""``itch.generate``'s non-cross trade messages (P): their Buy/Sell indicator is ``B``, as
NASDAQ has sent it since July 2014 whatever the side of the hidden order (the real file in the
shared data, of 2019, has only ``B``)."""
from __future__ import annotations

import pytest

import matchcore.itch as itch


@pytest.mark.parametrize("messages, symbols, seed", [(200_000, 20, 1), (60_000, 3, 9)])
def test_itch_generate_hidden_trades_carry_buy_indicator(messages, symbols, seed):
    # the indicator was drawn at random, half the day's hidden trades marked "S"
    p = itch.decode(itch.generate(None, messages=messages, symbols=symbols, seed=seed))["P"]
    assert len(p) > 10
    assert (p["buy_sell_indicator"] == b"B").all()
