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


def _same_depth(book, ref):
    book.check_invariants()
    for got, want in zip(book.depth(1 << 20), ref.depth(1 << 20)):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", range(6))
def test_ladder_inserts_at_both_ends_and_middle_recentred_depth_equals_reference(seed):
    # The ladder's entries move towards whichever end is nearer to a new level, and back to the
    # middle of their allocation when that end is full: streaks of levels deeper than the book,
    # nearer than the touch and in between, with cancels emptying levels (kept in the array,
    # then compacted), copies, clear() and a snapshot round trip on the way.
    rng = np.random.default_rng(seed)
    book, ref = mc.OrderBook(capacity=64), mc.ReferenceBook()
    oid, deep, near = 1, 5_000, 4_999
    live = []
    for step in range(40):
        kind = rng.integers(0, 4)
        count = int(rng.integers(1, 400))
        for _ in range(count):
            if kind == 0:                  # deeper than every level
                deep += int(rng.integers(1, 3))
                d = deep
            elif kind == 1:                # nearer than the touch
                near -= 1 if near > 1 else 0
                d = near
            else:                          # anywhere in between
                d = int(rng.integers(max(near, 1), deep + 1))
            for side, price in ((0, 100_000 - d), (1, 100_000 + d)):
                q = 1 + d % 5
                book.submit(oid, side, price, q)
                ref.submit(oid, side, price, q)
                live.append(oid)
                oid += 1
        for victim in rng.choice(live, size=len(live) // 3, replace=False).tolist():
            assert book.cancel(victim) == ref.cancel(victim)
        live = [o for o in live if book.get(o) is not None]
        if step % 7 == 3:
            _same_depth(book.copy(), ref)
        if step % 11 == 5:
            book = mc.OrderBook.from_snapshot(book.snapshot())
        if step == 20:
            book.clear()
            ref = mc.ReferenceBook()
            live = []
            deep, near = 5_000, 4_999
        _same_depth(book, ref)
    assert book.level_count(0) > 100


def test_ladder_built_from_touch_outwards_and_inwards_both_ends_cheap_depth_equal():
    # Levels created in price order away from the touch (how a quoting loop fills a deep book)
    # used to move every entry of the ladder each time; checked here for the result only.
    for outwards in (True, False):
        book, ref = mc.OrderBook(), mc.ReferenceBook()
        ds = range(1, 30_001) if outwards else range(30_000, 0, -1)
        oid = 1
        for d in ds:
            for side, price in ((0, 1_000_000 - d), (1, 1_000_000 + d)):
                book.submit(oid, side, price, 3)
                ref.submit(oid, side, price, 3)
                oid += 1
        _same_depth(book, ref)
        assert book.level_count(0) == book.level_count(1) == 30_000


@pytest.mark.parametrize("deeper", [True, False], ids=["created_deep", "created_at_touch"])
def test_ladder_walking_book_recentres_depth_equals_reference(deeper):
    # A book that walks: each step creates a level at one end and removes one at the other, so
    # the number of levels stays put while one end of the ladder's allocation is used up over
    # and over (its entries are moved back to the middle each time), for both ends.
    rng = np.random.default_rng(11)
    book, ref = mc.OrderBook(capacity=64), mc.ReferenceBook()
    resting = {}                       # price -> ids, bids only
    oid = 1
    for d in range(1, 41):             # 40 levels to start with
        p = 1_000_000 - d
        for b in (book, ref):
            b.submit(oid, 0, p, 1 + d % 3)
        resting[p] = [oid]
        oid += 1
    for step in range(6_000):
        if deeper:
            p = min(resting) - int(rng.integers(1, 3))
            gone = max(resting)
        else:
            p = max(resting) + int(rng.integers(1, 3))
            gone = min(resting)
        for b in (book, ref):
            b.submit(oid, 0, p, 1 + step % 4)
        resting[p] = [oid]
        oid += 1
        for victim in resting.pop(gone):
            assert book.cancel(victim) == ref.cancel(victim)
        if step % 997 == 0:
            _same_depth(book, ref)
    _same_depth(book, ref)
    assert book.level_count(0) == 40
