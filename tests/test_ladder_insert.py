"""New price levels land in the right place of a large ladder whatever the insert order (the
insert position is found by galloping down from the touch): the compiled book's depth equals the
reference model's, level by level, and every invariant holds."""
from __future__ import annotations

import numpy as np
import pytest

import matchcore as mc


@pytest.mark.parametrize("order", ["random", "far_first", "near_first"])
def test_ladder_insert_any_order_depth_equals_reference(order):
    rng = np.random.default_rng(5)
    dist = rng.choice(np.arange(1, 20_001), 3_000, replace=False)
    if order == "far_first":
        dist = np.sort(dist)[::-1]
    elif order == "near_first":
        dist = np.sort(dist)
    book, ref = mc.OrderBook(), mc.ReferenceBook()
    oid = 1
    for d in dist.tolist():
        for side, price in ((0, 100_000 - d), (1, 100_000 + d)):
            book.submit(oid, side, price, 1 + d % 7)
            ref.submit(oid, side, price, 1 + d % 7)
            oid += 1
    # a few more next to the touch and deep in the book, and levels emptied and re-created
    for d in (1, 2, 5, 20_500, 3, 10_000):
        for side, price in ((0, 100_000 - d), (1, 100_000 + d)):
            for b in (book, ref):
                b.submit(oid, side, price, 2)
            oid += 1
    for victim in range(1, oid, 17):
        book.cancel(victim)
        ref.cancel(victim)
    book.check_invariants()
    n = 10_000
    for side, (got, want) in enumerate(zip(book.depth(n), ref.depth(n))):
        assert np.array_equal(got, want)
        assert book.level_count(side) == len(want) > 2_500
