"""New price levels land in the right place of a large ladder whatever the insert order (the
insert position is found by galloping down from the touch): the compiled book's depth equals the
reference model's, level by level, and every invariant holds.

A level created more than MC_LADDER_NEAR (1,024) entries from both ends of a side's ladder takes
a gap (see mc_ladder in _core.pxd): the tests from ``_session`` on build books of thousands of
levels to reach that path, run every batch through the compiled book and the reference model
side by side (events equal one for one), then compare the whole state and check the compiled
book's invariants (which verify the gaps: sorted keys, each gap holding its next level's key,
the counters).
"""
from __future__ import annotations

import copy
import os
import pickle

import numpy as np
import pytest
from conftest import assert_events_equal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matchcore as mc
from matchcore._enums import COMMAND_DTYPE, TIF, CommandKind, EventKind


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


SOAK = os.environ.get("MATCHCORE_SOAK") == "1"
MID = 1_000_000_000


def _cmds(rows):
    a = np.zeros(len(rows), COMMAND_DTYPE)
    for i, (kind, oid, side, price, qty, tif) in enumerate(rows):
        a[i]["kind"] = kind
        a[i]["order_id"] = oid
        a[i]["side"] = side
        a[i]["price"] = price
        a[i]["qty"] = qty
        a[i]["tif"] = tif
    return a


def _build(prices_bid, prices_ask, first_id=1, qty=3):
    """Submits of one order per price: bids, then asks (never crossing: bids < MID < asks)."""
    n_b, n_a = len(prices_bid), len(prices_ask)
    a = np.zeros(n_b + n_a, COMMAND_DTYPE)
    a["kind"] = int(CommandKind.SUBMIT)
    a["order_id"] = np.arange(first_id, first_id + n_b + n_a)
    a["side"][:n_b] = 0
    a["side"][n_b:] = 1
    a["price"][:n_b] = prices_bid
    a["price"][n_b:] = prices_ask
    a["qty"] = qty
    return a


def _same_state(book, ref):
    book.check_invariants()
    ref.check_invariants()
    assert len(book) == len(ref)
    for side in (0, 1):
        assert book.level_count(side) == ref.level_count(side)
    nb = max(book.level_count(0), book.level_count(1), 1)
    for mine, theirs in zip(book.depth_orders(nb), ref.depth_orders(nb)):
        np.testing.assert_array_equal(mine, theirs)
    assert book.best_bid() == ref.best_bid()
    assert book.best_ask() == ref.best_ask()


def _run(book, ref, cmds):
    assert_events_equal(book.process(cmds), ref.process(cmds))
    _same_state(book, ref)


def _session(seed, levels, rounds, band_mult=3):
    """A deep two-sided book built in random price order, then rounds of: new levels between
    existing ones, cancels that empty levels anywhere, reprices, and IOC sweeps through the
    top levels (which pop gaps and empty levels with them)."""
    rng = np.random.default_rng(seed)
    band = levels * band_mult
    bids = MID - 1 - rng.choice(band, levels, replace=False)
    asks = MID + 1 + rng.choice(band, levels, replace=False)
    book, ref = mc.OrderBook(), mc.ReferenceBook()
    _run(book, ref, _build(bids, asks))
    live = list(range(1, 2 * levels + 1))
    next_id = 2 * levels + 1
    for _ in range(rounds):
        rows = []
        for _ in range(int(rng.integers(200, 600))):
            r = rng.random()
            side = int(rng.integers(0, 2))
            if r < 0.55:
                off = int(rng.integers(0, band))
                px = MID - 1 - off if side == 0 else MID + 1 + off
                rows.append((int(CommandKind.SUBMIT), next_id, side, px,
                             int(rng.integers(1, 6)), int(TIF.GTC)))
                live.append(next_id)
                next_id += 1
            elif r < 0.85 and live:
                oid = live.pop(int(rng.integers(0, len(live))))
                rows.append((int(CommandKind.CANCEL), oid, 0, 0, 0, 0))
            elif r < 0.95 and live:
                oid = live[int(rng.integers(0, len(live)))]
                off = int(rng.integers(0, band))
                # the order's side is not known here: a reprice to the wrong side's band is a
                # crossing modify, which both books must treat alike
                px = MID - 1 - off if rng.random() < 0.5 else MID + 1 + off
                rows.append((int(CommandKind.MODIFY), oid, 0, px, int(rng.integers(1, 6)), 0))
            else:
                # a marketable IOC through a few dozen levels near the touch
                px = MID + band if side == 0 else MID - band
                rows.append((int(CommandKind.SUBMIT), next_id, side, px,
                             int(rng.integers(20, 200)), int(TIF.IOC)))
                next_id += 1
        _run(book, ref, _cmds(rows))
    return book, ref


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ladder_random_order_deep_book_matches_reference(seed):
    book, ref = _session(seed, levels=5_000, rounds=6)
    # the far path ran: copies, snapshots and pickles of a ladder holding gaps are the same book
    for twin in (book.copy(), copy.deepcopy(book), pickle.loads(pickle.dumps(book)),
                 mc.OrderBook.from_snapshot(book.snapshot())):
        twin.check_invariants()
        assert twin.state_hash() == book.state_hash()
        _same_state(twin, ref)


def test_ladder_levels_created_at_one_point_stay_sorted():
    """Each new level lands at the same place of the ladder, between the same two old levels,
    in turn below the one made before (then above it): the adversarial case of a gapped array,
    whose gaps near that place run out again and again."""
    book, ref = mc.OrderBook(), mc.ReferenceBook()
    base = MID - 10_000 * np.arange(1, 6_001)        # 6,000 bid levels far apart
    _run(book, ref, _build(base, np.array([MID + 1])))
    hi = int(base[2_999])
    rows = [(int(CommandKind.SUBMIT), 100_000 + k, 0, hi - 1 - k, 1, int(TIF.GTC))
            for k in range(5_000)]
    for chunk in range(0, len(rows), 1_000):
        _run(book, ref, _cmds(rows[chunk:chunk + 1_000]))
    assert book.level_count(0) == 11_000
    lo = int(base[3_500])
    rows = [(int(CommandKind.SUBMIT), 200_000 + k, 0, lo + 1 + k, 1, int(TIF.GTC))
            for k in range(5_000)]
    for chunk in range(0, len(rows), 1_000):
        _run(book, ref, _cmds(rows[chunk:chunk + 1_000]))
    assert book.level_count(0) == 16_000


def test_ladder_sweep_through_gapped_levels_fills_in_price_order():
    """A market order through the whole side after random-order inserts and cancels: every
    level is reached best first; gaps and empty levels are never traded against."""
    rng = np.random.default_rng(7)
    asks = MID + 1 + rng.choice(40_000, 8_000, replace=False)
    book, ref = mc.OrderBook(), mc.ReferenceBook()
    _run(book, ref, _build(np.array([MID - 1]), asks))
    rows = [(int(CommandKind.CANCEL), int(i), 0, 0, 0, 0)
            for i in rng.choice(np.arange(2, 8_002), 2_600, replace=False)]
    _run(book, ref, _cmds(rows))
    left = 3 * (8_000 - 2_600)
    assert book.submit_market(10**7, 0, 3 * 8_000) == ref.submit_market(10**7, 0, 3 * 8_000) == left
    mine = book.events()
    assert_events_equal(mine, ref.events())
    fills = mine[mine["kind"] == int(EventKind.FILL)]
    assert len(fills) == 8_000 - 2_600
    assert np.all(np.diff(fills["price"]) > 0)      # one order a level, best (lowest) first
    _same_state(book, ref)
    assert book.level_count(1) == 0
    assert len(book) == 1


def test_ladder_gaps_after_clear_and_reuse():
    book, ref = _session(11, levels=3_000, rounds=2)
    book.clear()
    ref = mc.ReferenceBook()
    _same_state(book, ref)
    rng = np.random.default_rng(12)
    bids = MID - 1 - rng.choice(9_000, 3_000, replace=False)
    asks = MID + 1 + rng.choice(9_000, 3_000, replace=False)
    _run(book, ref, _build(bids, asks, first_id=10**6))


@settings(max_examples=200 if SOAK else 12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), levels=st.integers(2_500, 5_000),
       band_mult=st.integers(2, 6))
def test_ladder_deep_random_sessions_match_reference(seed, levels, band_mult):
    _session(seed, levels=levels, rounds=3, band_mult=band_mult)
