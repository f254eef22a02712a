"""``itch.generate``'s NOII messages (I): the imbalance shares agree with the imbalance
direction, as the specification defines it."""
from __future__ import annotations

import pytest

import matchcore.itch as itch


@pytest.mark.parametrize("messages, symbols, seed", [(200_000, 20, 1), (60_000, 3, 9)])
def test_itch_generate_noii_imbalance_shares_follow_the_direction(messages, symbols, seed):
    # the direction was drawn apart from the shares: "N" (no imbalance) came with thousands
    # of imbalance shares, "B" or "S" (a buy or sell imbalance) now and then with none
    noii = itch.decode(itch.generate(None, messages=messages, symbols=symbols, seed=seed))["I"]
    direction, shares = noii["imbalance_direction"], noii["imbalance_shares"]
    assert (direction == b"N").any() and (direction == b"B").any()
    assert (shares[(direction == b"N") | (direction == b"O")] == 0).all()
    assert (shares[(direction == b"B") | (direction == b"S")] > 0).all()
