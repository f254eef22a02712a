"""Depth walks from the touch and the emptied levels a ladder keeps below it.

A level emptied below the touch stays in the ladder (so a price coming back moves nothing) until
emptied levels outnumber live ones. A depth query walks from the touch past them: after a mass
cancel just below the best bid, every ``depth(2)`` read the same thousands of hidden entries
again. A walk that passes many packs what it walked, so the next one reads only what it returns.
These tests check that through the compiled ladder itself (a ctypes mirror of ``mc_ladder``, as
``test_invariants.py`` reads it), never by timing, and that the book's contents, state hash,
snapshot and later behaviour are exactly those of the reference model throughout.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_events_equal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_invariants import _BookLadders_c

import matchcore as mc

BUY, SELL = 0, 1
LIVE, EMPTIED = 3_000, 1_000     # live bid levels below the emptied band; emptied levels


def _ladder(book, side=BUY):
    return _BookLadders_c.from_address(book.raw_address).side[side]


def _hidden_below_touch(book, side=BUY):
    """(emptied levels, gaps) the ladder of `side` holds."""
    L = _ladder(book, side)
    return L.empties, L.gaps


def _mass_cancelled(far_first=True, book=None):
    """Bids at 1..LIVE+EMPTIED+1, one order each, an ask far above; then the EMPTIED levels just
    below the best bid cancelled (the farthest first: each is then far from the touch when it
    empties, so the ladder keeps it)."""
    book = mc.OrderBook() if book is None else book
    ref = mc.ReferenceBook()
    top = LIVE + EMPTIED + 1
    for p in range(1, top + 1):
        book.submit(p, BUY, p, 1)
        ref.submit(p, BUY, p, 1)
    book.submit(10**6, SELL, 10**6, 1)
    ref.submit(10**6, SELL, 10**6, 1)
    band = range(LIVE + 1, top) if far_first else range(top - 1, LIVE, -1)
    for oid in band:
        assert book.cancel(oid) == ref.cancel(oid) == 1
    assert_events_equal(book.events(), ref.events())
    return book, ref


def _same_book(book, ref):
    book.check_invariants()
    assert len(book) == len(ref)
    for side in (BUY, SELL):
        assert book.level_count(side) == ref.level_count(side)
    assert book.best_bid() == ref.best_bid() and book.best_ask() == ref.best_ask()
    nb = max(book.level_count(BUY), book.level_count(SELL), 1)
    for mine, theirs in zip(book._depth_exact(nb), ref.depth_orders(nb)):
        assert mine == [tuple(r) for r in theirs.tolist()]


def _query_depth(book, n):
    return [a.tolist() for a in book.depth(n)]


def _query_depth_orders(book, n):
    return [a[:, :2].tolist() for a in book.depth_orders(n)]


def _query_depth_into(book, n):
    bids, asks = np.zeros((n, 2), np.int64), np.zeros((n, 2), np.int64)
    nb, na = book.depth_into(bids, asks)
    return [bids[:nb].tolist(), asks[:na].tolist()]


QUERIES = [_query_depth, _query_depth_orders, _query_depth_into]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.__name__[7:])
def test_depth_walk_past_mass_cancel_packs_the_emptied_levels(query):
    book, ref = _mass_cancelled()
    assert _hidden_below_touch(book)[0] == EMPTIED, "the ladder no longer keeps emptied levels"
    before = (book.state_hash(), book.snapshot())
    top = LIVE + EMPTIED + 1
    assert query(book, 2) == [[[top, 1], [LIVE, 1]], [[10**6, 1]]]
    # the walk read past the emptied band once, and packed it: none is left for the next walk
    assert _hidden_below_touch(book)[0] == 0
    L = _ladder(book)
    assert L.n - L.gaps == LIVE + 1
    assert L.keys[L.n - 1] == top and L.keys[L.n - 2] == LIVE
    # what the book holds is unchanged, to the byte
    assert (book.state_hash(), book.snapshot()) == before
    _same_book(book, ref)
    assert query(book, 2) == [[[top, 1], [LIVE, 1]], [[10**6, 1]]]


def test_depth_walk_past_few_emptied_levels_keeps_them():
    """Fewer emptied levels than are worth a pack (a market maker's pulled quotes) stay for
    their prices to come back to."""
    book = mc.OrderBook()
    for p in range(1, 2_001):
        book.submit(p, BUY, p, 1)
    for oid in range(1_800, 2_000):
        book.cancel(oid)
    assert _hidden_below_touch(book)[0] == 200
    assert book.depth(2)[0].tolist() == [[2_000, 1], [1_799, 1]]
    assert _hidden_below_touch(book)[0] == 200
    book.submit(10**6, BUY, 1_900, 1)     # a price coming back takes its kept level
    assert _hidden_below_touch(book)[0] == 199


@pytest.mark.parametrize("fn", ["depth", "depth_orders"])
def test_c_table_depth_packs_the_emptied_levels(fn):
    from test_capi import CTable

    book, ref = _mass_cancelled()
    h = book.state_hash()
    cols = 2 if fn == "depth" else 3
    out = np.zeros((2, cols), np.int64)
    assert getattr(CTable(), fn)(book.address, BUY, 2, out.ctypes.data) == 2
    assert out[:, :2].tolist() == [[LIVE + EMPTIED + 1, 1], [LIVE, 1]]
    assert _hidden_below_touch(book)[0] == 0
    assert book.state_hash() == h
    _same_book(book, ref)


def test_engine_depth_packs_its_books_ladder():
    eng = mc.Engine()
    eng.add_symbol(1)
    for p in range(1, LIVE + EMPTIED + 2):
        eng.submit(1, p, BUY, p, 1)
    for oid in range(LIVE + 1, LIVE + EMPTIED + 1):
        eng.cancel(oid)
    book = eng.book(1)
    assert _hidden_below_touch(book)[0] == EMPTIED
    h = eng.state_hash()
    assert eng.depth(1, 2)[0].tolist() == [[LIVE + EMPTIED + 1, 1], [LIVE, 1]]
    assert _hidden_below_touch(book)[0] == 0
    assert eng.state_hash() == h
    eng.check_invariants()


def test_packed_ladder_takes_new_levels_back_and_matches_like_the_reference():
    """After the pack, prices of the freed levels come back as new levels; reprices, fills
    through the band and cancels give the reference model's events and book."""
    book, ref = _mass_cancelled()
    book.depth(2)
    assert _hidden_below_touch(book)[0] == 0
    rng = np.random.default_rng(5)
    next_id = 10**7
    top = LIVE + EMPTIED + 1
    for _ in range(3_000):
        r = rng.random()
        if r < 0.5:
            p = int(rng.integers(LIVE - 50, top + 5))
            args = (next_id, BUY, p, int(rng.integers(1, 4)))
            assert book.submit(*args) == ref.submit(*args)
            next_id += 1
        elif r < 0.8:
            oid = int(rng.integers(LIVE - 100, next_id))
            assert book.cancel(oid) == ref.cancel(oid)
        elif r < 0.95:
            oid = int(rng.integers(LIVE - 100, next_id))
            p = int(rng.integers(LIVE - 50, top + 5))
            assert book.modify(oid, 2, p) == ref.modify(oid, 2, p)
        else:
            args = (next_id, SELL, int(rng.integers(1, 20)))
            assert book.submit_market(*args) == ref.submit_market(*args)
            next_id += 1
        if rng.random() < 0.05:
            n = int(rng.integers(0, 40))
            for mine, theirs in zip(book.depth_orders(n), ref.depth_orders(n)):
                np.testing.assert_array_equal(mine, theirs)
    assert_events_equal(book.events(), ref.events())
    _same_book(book, ref)


def test_copies_of_a_ladder_with_emptied_levels_and_gaps_are_the_same_book():
    """Copies taken while the ladder still holds its emptied band (and gaps), then queried: each
    packs its own ladder and stays the same book as the original, which is left as it was."""
    import copy
    import pickle

    book, ref = _mass_cancelled()
    for twin in (book.copy(), copy.deepcopy(book), pickle.loads(pickle.dumps(book)),
                 mc.OrderBook.from_snapshot(book.snapshot())):
        twin.check_invariants()
        assert twin.state_hash() == book.state_hash()
        assert twin.depth(2)[0].tolist() == [[LIVE + EMPTIED + 1, 1], [LIVE, 1]]
        _same_book(twin, ref)
    assert _hidden_below_touch(book)[0] == EMPTIED
    _same_book(book, ref)


def test_depth_walk_that_stops_at_an_overflowing_level_changes_nothing_visible():
    """depth() refuses a level total beyond int64 (OverflowError); its walk may still have packed
    the emptied levels it passed, which changes no level, order or hash."""
    book = mc.OrderBook()
    big = 2**62
    book.submit(1, BUY, 10, big)
    book.submit(2, BUY, 10, big)          # 2**63 at price 10: beyond int64
    for p in range(11, 11 + 400):
        book.submit(p, BUY, p, 1)
    book.submit(10**6, BUY, 500, 1)
    for oid in range(11, 11 + 400):
        book.cancel(oid)
    h = book.state_hash()
    with pytest.raises(OverflowError):
        book.depth(2)
    assert book.state_hash() == h
    book.check_invariants()
    assert book.depth(1)[0].tolist() == [[500, 1]]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), levels=st.integers(100, 1_500),
       query_every=st.integers(1, 60), far_first=st.booleans())
def test_random_mass_cancels_and_depth_walks_match_reference(seed, levels, query_every, far_first):
    """Sessions of band cancels (the farthest or the nearest first), new orders into the band,
    marketable orders and depth queries of any size, against the reference model."""
    rng = np.random.default_rng(seed)
    book, ref = mc.OrderBook(), mc.ReferenceBook()
    mid = 1_000_000
    for i in range(levels):
        for b, side, p in ((book, BUY, mid - 1 - i), (ref, BUY, mid - 1 - i),
                           (book, SELL, mid + 1 + i), (ref, SELL, mid + 1 + i)):
            b.submit(2 * i + side + 1, side, p, 2)
    next_id = 2 * levels + 1
    for step in range(400):
        r = rng.random()
        side = int(rng.integers(0, 2))
        if r < 0.05:
            # a band of levels emptied below one side's touch
            lo, hi = sorted(int(x) for x in rng.integers(1, levels, 2))
            ids = [2 * i + side + 1 for i in range(lo, hi)]
            for oid in (ids[::-1] if far_first else ids):
                assert book.cancel(oid) == ref.cancel(oid)
        elif r < 0.6:
            off = int(rng.integers(0, levels + 20))
            p = mid - 1 - off if side == BUY else mid + 1 + off
            args = (next_id, side, p, int(rng.integers(1, 4)))
            assert book.submit(*args) == ref.submit(*args)
            next_id += 1
        elif r < 0.85:
            oid = int(rng.integers(1, next_id))
            assert book.cancel(oid) == ref.cancel(oid)
        else:
            args = (next_id, side, int(rng.integers(1, 30)))
            assert book.submit_market(*args) == ref.submit_market(*args)
            next_id += 1
        if step % query_every == 0:
            n = int(rng.integers(0, 12)) if rng.random() < 0.8 else int(rng.integers(0, 3 * levels))
            for mine, theirs in zip(book.depth_orders(n), ref.depth_orders(n)):
                np.testing.assert_array_equal(mine, theirs)
            book.check_invariants()
    assert_events_equal(book.events(), ref.events())
    _same_book(book, ref)
