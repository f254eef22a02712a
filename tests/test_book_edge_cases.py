"""Hand-written edge cases of the core book; each runs on the compiled book and the reference."""
from __future__ import annotations

import random
from enum import IntEnum

import numpy as np
import pytest
from conftest import assert_events, ev, event_dicts, snapshot

from matchcore._enums import STP, TIF, EventKind, OrderRejected, Reason, Side

K = EventKind
R = Reason
BUY, SELL = int(Side.BUY), int(Side.SELL)
MAX_I64 = 2**63 - 1
MAX_U64 = 2**64 - 1


def accepted(oid, side, price, qty, owner=0):
    return ev(K.ACCEPTED, oid, side=side, price=price, qty=qty, owner=owner)


def fill(oid, maker, side, price, qty, owner=0, maker_owner=0):
    return ev(K.FILL, oid, maker_id=maker, side=side, price=price, qty=qty, owner=owner,
              maker_owner=maker_owner)


# ---------------------------------------------------------------- levels / sweeps


def test_cancel_best_level_removes_level_no_phantom(book):
    book.submit(1, BUY, 100, 5)
    book.submit(2, BUY, 99, 7)
    book.submit(3, SELL, 102, 4)
    book.events()
    assert book.cancel(1) == 5
    assert book.best_bid() == (99, 7)
    assert book.level(BUY, 100) == []
    bids, _ = book.depth(10)
    assert bids.tolist() == [[99, 7]]
    # A sell at 100 must rest, not trade against the cancelled level.
    assert book.submit(4, SELL, 100, 3) == 0
    assert book.best_ask() == (100, 3)
    assert book.best_bid() == (99, 7)
    book.check_invariants()


def test_fill_of_whole_best_level_removes_level_no_phantom(book):
    book.submit(1, SELL, 100, 5)
    book.submit(2, SELL, 101, 5)
    assert book.submit(3, BUY, 100, 5) == 5
    assert book.best_ask() == (101, 5)
    assert book.level(SELL, 100) == []
    # A post-only buy at 100 no longer crosses anything.
    assert book.submit(4, BUY, 100, 1, post_only=True) == 0
    assert book.best_bid() == (100, 1)
    book.check_invariants()


def test_modify_last_order_out_of_level_removes_level(book):
    book.submit(1, BUY, 100, 5)
    book.submit(2, BUY, 98, 1)
    assert book.modify(1, 5, price=97)
    assert book.level(BUY, 100) == []
    assert book.best_bid() == (98, 1)
    assert book.depth(5)[0].tolist() == [[98, 1], [97, 5]]
    book.check_invariants()


def test_sweep_several_levels_exact_total_leaves_nothing(book):
    book.submit(1, SELL, 100, 2)
    book.submit(2, SELL, 100, 3)
    book.submit(3, SELL, 101, 4)
    book.submit(4, SELL, 102, 1)
    book.events()
    assert book.submit(9, BUY, 102, 10) == 10
    assert_events(book, [
        accepted(9, BUY, 102, 10),
        fill(9, 1, BUY, 100, 2),
        fill(9, 2, BUY, 100, 3),
        fill(9, 3, BUY, 101, 4),
        fill(9, 4, BUY, 102, 1),
    ])
    assert len(book) == 0
    assert book.best_ask() is None and book.best_bid() is None
    bids, asks = book.depth(10)
    assert bids.shape == (0, 2) and asks.shape == (0, 2)
    for oid in (1, 2, 3, 4, 9):
        assert book.get(oid) is None
    book.check_invariants()


def test_sweep_several_levels_with_remainder_rests_at_limit(book):
    book.submit(1, BUY, 100, 2)
    book.submit(2, BUY, 99, 3)
    book.events()
    assert book.submit(9, SELL, 99, 8) == 5
    assert_events(book, [
        accepted(9, SELL, 99, 8),
        fill(9, 1, SELL, 100, 2),
        fill(9, 2, SELL, 99, 3),
    ])
    assert book.best_bid() is None
    assert book.best_ask() == (99, 3)
    assert book.get(9) == (SELL, 99, 3)
    book.check_invariants()


def test_sweep_stops_at_limit_price(book):
    book.submit(1, SELL, 100, 2)
    book.submit(2, SELL, 102, 2)
    assert book.submit(9, BUY, 101, 5) == 2
    assert book.best_bid() == (101, 3)
    assert book.best_ask() == (102, 2)
    book.check_invariants()


# ---------------------------------------------------------------- time in force


def test_ioc_remainder_expired_never_rests(book):
    book.submit(1, SELL, 100, 3)
    book.events()
    assert book.submit(2, BUY, 101, 5, TIF.IOC, owner=7, ts_ns=42) == 3
    assert_events(book, [
        ev(K.ACCEPTED, 2, side=BUY, price=101, qty=5, owner=7, ts_ns=42),
        ev(K.FILL, 2, maker_id=1, side=BUY, price=100, qty=3, owner=7, ts_ns=42),
        ev(K.EXPIRED, 2, side=BUY, price=101, qty=2, owner=7, reason=R.IOC_REMAINDER, ts_ns=42),
    ])
    assert len(book) == 0
    assert book.get(2) is None


def test_ioc_fully_filled_no_expired_event(book):
    book.submit(1, SELL, 100, 5)
    book.events()
    assert book.submit(2, BUY, 100, 5, TIF.IOC) == 5
    assert_events(book, [accepted(2, BUY, 100, 5), fill(2, 1, BUY, 100, 5)])


def test_ioc_no_liquidity_expires_whole_qty(book):
    book.submit(1, SELL, 105, 5)
    book.events()
    assert book.submit(2, BUY, 100, 4, TIF.IOC) == 0
    assert_events(book, [
        accepted(2, BUY, 100, 4),
        ev(K.EXPIRED, 2, side=BUY, price=100, qty=4, reason=R.IOC_REMAINDER),
    ])
    assert len(book) == 1


def test_market_remainder_expired_never_rests(book):
    book.submit(1, BUY, 100, 2)
    book.submit(2, BUY, 90, 3)
    book.events()
    assert book.submit_market(5, SELL, 9, owner=3) == 5
    assert_events(book, [
        ev(K.ACCEPTED, 5, side=SELL, price=0, qty=9, owner=3),
        fill(5, 1, SELL, 100, 2, owner=3),
        fill(5, 2, SELL, 90, 3, owner=3),
        ev(K.EXPIRED, 5, side=SELL, price=0, qty=4, owner=3, reason=R.MARKET_REMAINDER),
    ])
    assert len(book) == 0
    assert book.best_ask() is None and book.best_bid() is None


def test_market_on_empty_book_expires_whole_qty(book):
    assert book.submit_market(1, BUY, 5) == 0
    assert_events(book, [
        ev(K.ACCEPTED, 1, side=BUY, qty=5),
        ev(K.EXPIRED, 1, side=BUY, qty=5, reason=R.MARKET_REMAINDER),
    ])
    assert len(book) == 0


def test_fok_not_fillable_expires_book_unchanged(book):
    book.submit(1, SELL, 100, 3)
    book.submit(2, SELL, 101, 3)
    book.submit(3, SELL, 103, 10)  # beyond the limit: does not count
    before = snapshot(book)
    book.events()
    assert book.submit(9, BUY, 102, 7, TIF.FOK) == 0
    assert_events(book, [
        accepted(9, BUY, 102, 7),
        ev(K.EXPIRED, 9, side=BUY, price=102, qty=7, reason=R.FOK_NOT_FILLABLE),
    ])
    assert snapshot(book) == before
    book.check_invariants()


def test_fok_exactly_fillable_fills_completely(book):
    book.submit(1, SELL, 100, 3)
    book.submit(2, SELL, 101, 3)
    book.submit(3, SELL, 102, 10)
    book.events()
    assert book.submit(9, BUY, 102, 7, TIF.FOK) == 7
    assert_events(book, [
        accepted(9, BUY, 102, 7),
        fill(9, 1, BUY, 100, 3),
        fill(9, 2, BUY, 101, 3),
        fill(9, 3, BUY, 102, 1),
    ])
    assert book.best_ask() == (102, 9)
    assert book.get(9) is None
    book.check_invariants()


def test_fok_on_empty_book_expires(book):
    assert book.submit(1, SELL, 100, 1, TIF.FOK) == 0
    assert_events(book, [
        accepted(1, SELL, 100, 1),
        ev(K.EXPIRED, 1, side=SELL, price=100, qty=1, reason=R.FOK_NOT_FILLABLE),
    ])
    assert len(book) == 0


# ---------------------------------------------------------------- post-only


def test_post_only_crossing_rejected_book_unchanged(book):
    book.submit(1, SELL, 101, 5)
    book.submit(2, BUY, 99, 5)
    before = snapshot(book)
    book.events()
    # buy at the best ask is a cross (price >= best ask): returns 0, does not raise
    assert book.submit(3, BUY, 101, 2, post_only=True, owner=4) == 0
    assert_events(book, [ev(K.REJECTED, 3, side=BUY, price=101, qty=2, owner=4,
                            reason=R.POST_ONLY_WOULD_CROSS)])
    assert book.submit(4, SELL, 98, 2, post_only=True) == 0
    assert_events(book, [ev(K.REJECTED, 4, side=SELL, price=98, qty=2,
                            reason=R.POST_ONLY_WOULD_CROSS)])
    assert snapshot(book) == before
    assert book.get(3) is None and book.get(4) is None


def test_post_only_not_crossing_rests(book):
    book.submit(1, SELL, 101, 5)
    book.events()
    assert book.submit(2, BUY, 100, 2, post_only=True) == 0
    assert_events(book, [accepted(2, BUY, 100, 2)])
    assert book.best_bid() == (100, 2)


def test_post_only_reprice_crossing_modify_rejected_order_unchanged(book):
    book.submit(1, SELL, 101, 5)
    book.submit(2, BUY, 100, 2, owner=6, post_only=True)
    book.events()
    assert book.modify(2, 1, price=101) is False
    assert_events(book, [ev(K.REJECTED, 2, side=BUY, price=101, qty=1, owner=6,
                            reason=R.POST_ONLY_WOULD_CROSS)])
    assert book.get(2) == (BUY, 100, 2)
    # a non-crossing reprice of a post-only order is fine
    assert book.modify(2, 1, price=99) is True
    assert book.get(2) == (BUY, 99, 1)


# ---------------------------------------------------------------- cancel


def test_cancel_partly_filled_returns_open_qty(book):
    book.submit(1, SELL, 100, 10, owner=2)
    book.submit(2, BUY, 100, 4)
    book.events()
    assert book.cancel(1, ts_ns=9) == 6
    assert_events(book, [ev(K.CANCELLED, 1, side=SELL, price=100, qty=6, owner=2,
                            reason=R.CANCEL_REQUESTED, ts_ns=9)])
    assert len(book) == 0


def test_cancel_stale_after_full_fill_returns_zero_rejected(book):
    book.submit(1, SELL, 100, 4)
    book.submit(2, BUY, 100, 4)
    book.submit(3, BUY, 99, 1)
    before = snapshot(book)
    book.events()
    assert book.cancel(1) == 0
    assert_events(book, [ev(K.REJECTED, 1, reason=R.ORDER_NOT_FOUND)])
    assert snapshot(book) == before
    assert book.cancel(1) == 0  # and again
    assert_events(book, [ev(K.REJECTED, 1, reason=R.ORDER_NOT_FOUND)])


def test_cancel_twice_second_returns_zero(book):
    book.submit(1, BUY, 100, 4)
    assert book.cancel(1) == 4
    assert book.cancel(1) == 0
    assert len(book) == 0


# ---------------------------------------------------------------- ids


@pytest.mark.parametrize("how", ["filled", "cancelled", "ioc_expired", "market", "fok_expired"])
def test_submit_reused_id_after_order_left_accepted(book, how):
    if how == "filled":
        book.submit(1, SELL, 100, 2)
        book.submit(2, BUY, 100, 2)
    elif how == "cancelled":
        book.submit(1, SELL, 100, 2)
        book.cancel(1)
    elif how == "ioc_expired":
        book.submit(1, SELL, 100, 2, TIF.IOC)
    elif how == "market":
        book.submit_market(1, SELL, 2)
    else:
        book.submit(1, SELL, 100, 2, TIF.FOK)
    assert book.get(1) is None
    book.events()
    assert book.submit(1, SELL, 105, 3) == 0
    assert_events(book, [accepted(1, SELL, 105, 3)])
    assert book.get(1) == (SELL, 105, 3)


def test_submit_duplicate_resting_id_rejected_before_matching(book):
    book.submit(1, BUY, 100, 5, owner=1)
    book.submit(2, SELL, 105, 5)
    before = snapshot(book)
    book.events()
    # The same id on the other side would cross order 1 itself: it must be rejected first.
    with pytest.raises(OrderRejected) as info:
        book.submit(1, SELL, 100, 5, owner=2)
    assert isinstance(info.value, ValueError)
    assert info.value.reason == R.DUPLICATE_ORDER_ID
    assert info.value.order_id == 1
    assert_events(book, [ev(K.REJECTED, 1, side=SELL, price=100, qty=5, owner=2,
                            reason=R.DUPLICATE_ORDER_ID)])
    assert snapshot(book) == before
    assert book.get(1) == (BUY, 100, 5)


def test_submit_market_duplicate_resting_id_rejected_before_matching(book):
    book.submit(1, BUY, 100, 5)
    before = snapshot(book)
    book.events()
    with pytest.raises(OrderRejected) as info:
        book.submit_market(1, SELL, 5)
    assert info.value.reason == R.DUPLICATE_ORDER_ID
    assert_events(book, [ev(K.REJECTED, 1, side=SELL, price=0, qty=5,
                            reason=R.DUPLICATE_ORDER_ID)])
    assert snapshot(book) == before


def test_order_ids_near_uint64_max_round_trip(book):
    for oid in (MAX_U64, MAX_U64 - 1, 2**63, 2**63 - 1, 0):
        book.submit(oid, SELL, 100, 1)
    assert [oid for oid, _ in book.level(SELL, 100)] == [MAX_U64, MAX_U64 - 1, 2**63, 2**63 - 1, 0]
    assert book.get(MAX_U64) == (SELL, 100, 1)
    book.events()
    assert book.submit(MAX_U64 - 2, BUY, 100, 2, owner=MAX_U64) == 2
    assert_events(book, [
        accepted(MAX_U64 - 2, BUY, 100, 2, owner=MAX_U64),
        fill(MAX_U64 - 2, MAX_U64, BUY, 100, 1, owner=MAX_U64),
        fill(MAX_U64 - 2, MAX_U64 - 1, BUY, 100, 1, owner=MAX_U64),
    ])
    assert book.cancel(2**63) == 1
    assert book.queue_position(0) == 1
    book.check_invariants()


@pytest.mark.parametrize("oid", [-1, 2**64, 2**70])
def test_order_id_outside_uint64_raises_before_book(book, oid):
    book.submit(1, BUY, 100, 1)
    before = snapshot(book)
    book.events()
    with pytest.raises((OverflowError, ValueError)) as info:
        book.submit(oid, SELL, 100, 1)
    assert not isinstance(info.value, OrderRejected)
    with pytest.raises((OverflowError, ValueError)):
        book.cancel(oid)
    assert len(book.events()) == 0
    assert snapshot(book) == before


# ---------------------------------------------------------------- modify


def test_modify_partly_filled_new_qty_is_new_open_qty(book):
    book.submit(1, SELL, 100, 10)
    book.submit(2, SELL, 100, 1)
    book.submit(3, BUY, 100, 4)  # fills 4 of order 1: open 6
    assert book.get(1) == (SELL, 100, 6)
    book.events()
    assert book.modify(1, 5) is True  # 5 <= 6: in place, keeps priority
    assert_events(book, [ev(K.MODIFIED, 1, side=SELL, price=100, qty=5)])
    assert book.get(1) == (SELL, 100, 5)
    assert book.level(SELL, 100) == [(1, 5), (2, 1)]
    assert book.modify(1, 7) is True  # 7 > 5 open: new open qty 7, loses priority
    assert book.get(1) == (SELL, 100, 7)
    assert book.level(SELL, 100) == [(2, 1), (1, 7)]
    assert book.best_ask() == (100, 8)


def test_modify_smaller_qty_keeps_priority(book):
    for oid in (1, 2, 3):
        book.submit(oid, BUY, 100, 5)
    assert book.modify(1, 2, ts_ns=5)
    assert book.level(BUY, 100) == [(1, 2), (2, 5), (3, 5)]
    assert book.queue_position(2) == 2
    assert book.modify(2, 5)  # same qty: still in place
    assert book.level(BUY, 100) == [(1, 2), (2, 5), (3, 5)]


def test_modify_larger_qty_loses_priority(book):
    for oid in (1, 2, 3):
        book.submit(oid, BUY, 100, 5, owner=oid)
    book.events()
    assert book.modify(1, 6)
    assert_events(book, [ev(K.MODIFIED, 1, side=BUY, price=100, qty=6, owner=1)])
    assert book.level(BUY, 100) == [(2, 5), (3, 5), (1, 6)]
    assert book.queue_position(1) == 10


def test_modify_new_price_loses_priority(book):
    book.submit(1, BUY, 100, 5)
    book.submit(2, BUY, 99, 5)
    assert book.modify(1, 1, price=99)  # smaller qty but new price: back of the queue
    assert book.level(BUY, 99) == [(2, 5), (1, 1)]
    assert book.level(BUY, 100) == []
    assert book.best_bid() == (99, 6)


def test_modify_explicit_same_price_smaller_keeps_priority(book):
    book.submit(1, SELL, 100, 5)
    book.submit(2, SELL, 100, 5)
    assert book.modify(1, 4, price=100)
    assert book.level(SELL, 100) == [(1, 4), (2, 5)]


def test_modify_crossing_fills_at_maker_price(book):
    book.submit(1, SELL, 101, 3, owner=8)
    book.submit(2, SELL, 102, 3, owner=8)
    book.submit(5, BUY, 99, 2, owner=1)
    book.events()
    assert book.modify(5, 4, price=103, ts_ns=7) is True
    assert_events(book, [
        ev(K.MODIFIED, 5, side=BUY, price=103, qty=4, owner=1, ts_ns=7),
        ev(K.FILL, 5, maker_id=1, side=BUY, price=101, qty=3, owner=1, maker_owner=8, ts_ns=7),
        ev(K.FILL, 5, maker_id=2, side=BUY, price=102, qty=1, owner=1, maker_owner=8, ts_ns=7),
    ])
    assert book.get(5) is None
    assert book.best_ask() == (102, 2)
    assert book.best_bid() is None


def test_modify_crossing_remainder_rests_at_new_price(book):
    book.submit(1, SELL, 101, 3)
    book.submit(5, BUY, 99, 2)
    assert book.modify(5, 5, price=101)
    assert book.get(5) == (BUY, 101, 2)
    assert book.best_ask() is None
    book.check_invariants()


def test_modify_unknown_order_returns_false_rejected(book):
    book.submit(1, BUY, 100, 1)
    before = snapshot(book)
    book.events()
    assert book.modify(99, 3, price=101) is False
    assert_events(book, [ev(K.REJECTED, 99, price=101, qty=3, reason=R.ORDER_NOT_FOUND)])
    assert book.modify(98, 3) is False
    assert_events(book, [ev(K.REJECTED, 98, qty=3, reason=R.ORDER_NOT_FOUND)])
    assert snapshot(book) == before


@pytest.mark.parametrize("qty,price,reason", [
    (0, None, R.INVALID_QTY),
    (-3, 101, R.INVALID_QTY),
    (0, -1, R.INVALID_QTY),  # first failing check wins
    (2, -1, R.INVALID_PRICE),
])
def test_modify_invalid_args_raise_order_rejected_book_unchanged(book, qty, price, reason):
    book.submit(1, BUY, 100, 5, owner=3)
    before = snapshot(book)
    book.events()
    with pytest.raises(OrderRejected) as info:
        book.modify(1, qty, price)
    assert info.value.reason == reason
    assert info.value.order_id == 1
    # the order is known: its refusal carries its owner (and side, BUY here)
    assert_events(book, [ev(K.REJECTED, 1, side=BUY, price=price or 0, qty=qty, owner=3,
                            reason=reason)])
    assert snapshot(book) == before


def test_modify_invalid_qty_of_unknown_order_raises(book):
    with pytest.raises(OrderRejected) as info:
        book.modify(7, 0)
    assert info.value.reason == R.INVALID_QTY


# ---------------------------------------------------------------- large sweeps / extreme values


def test_sweep_5000_fills_one_price_fifo_maker_order(book):
    rng = random.Random(5)
    makers = rng.sample(range(1, 10**9), 5000)
    for oid in makers:
        book.submit(oid, SELL, 100, 1, owner=oid % 3)
    book.submit(10**9 + 1, SELL, 101, 1)
    book.events()
    assert book.submit(0, BUY, 100, 6000, TIF.IOC, owner=7) == 5000
    events = book.events()
    kinds = events["kind"].tolist()
    assert kinds[0] == K.ACCEPTED and kinds[-1] == K.EXPIRED
    fills = events[1:-1]
    assert (fills["kind"] == K.FILL).all()
    assert fills["maker_id"].tolist() == makers
    assert (fills["price"] == 100).all() and (fills["qty"] == 1).all()
    assert fills["maker_owner"].tolist() == [oid % 3 for oid in makers]
    assert int(events["qty"][-1]) == 1000 and int(events["reason"][-1]) == R.IOC_REMAINDER
    assert len(book) == 1
    assert book.best_ask() == (101, 1)
    book.check_invariants()


def test_price_near_int64_ceiling_rests_and_fills(book):
    book.submit(1, SELL, MAX_I64, 2)
    book.submit(2, SELL, MAX_I64 - 1, 2)
    book.submit(3, BUY, MAX_I64 - 2, 1)
    assert book.best_ask() == (MAX_I64 - 1, 2)
    assert book.best_bid() == (MAX_I64 - 2, 1)
    book.events()
    assert book.submit(4, BUY, MAX_I64, 3) == 3
    assert_events(book, [
        accepted(4, BUY, MAX_I64, 3),
        fill(4, 2, BUY, MAX_I64 - 1, 2),
        fill(4, 1, BUY, MAX_I64, 1),
    ])
    assert book.best_ask() == (MAX_I64, 1)
    bids, asks = book.depth(5)
    assert asks.tolist() == [[MAX_I64, 1]]
    assert bids.tolist() == [[MAX_I64 - 2, 1]]
    assert book.submit(5, BUY, MAX_I64, 1, post_only=True) == 0  # crosses at the ceiling
    assert int(book.events()["reason"][-1]) == R.POST_ONLY_WOULD_CROSS
    book.check_invariants()


def test_modify_to_int64_ceiling_and_market_sweep(book):
    book.submit(1, SELL, 100, 2)
    assert book.modify(1, 2, price=MAX_I64)
    assert book.get(1) == (SELL, MAX_I64, 2)
    assert book.submit_market(2, BUY, 2) == 2
    assert len(book) == 0


@pytest.mark.parametrize("price", [2**63, -(2**63) - 1])
def test_price_outside_int64_raises_before_book(book, price):
    with pytest.raises((OverflowError, ValueError)) as info:
        book.submit(1, BUY, price, 1)
    assert not isinstance(info.value, OrderRejected)
    assert len(book.events()) == 0
    assert len(book) == 0


def test_qty_near_int64_ceiling_rests_and_fills(book):
    book.submit(1, SELL, 100, MAX_I64)
    assert book.best_ask() == (100, MAX_I64)
    assert book.submit(2, BUY, 100, MAX_I64 - 1) == MAX_I64 - 1
    assert book.get(1) == (SELL, 100, 1)


# ---------------------------------------------------------------- self-trade prevention


def _stp_book(book_cls, mode):
    book = book_cls(stp=mode)
    book.submit(1, SELL, 100, 2, owner=5)   # other owner, first in queue
    book.submit(2, SELL, 100, 3, owner=7)   # same owner as the taker
    book.submit(3, SELL, 101, 4, owner=5)
    book.events()
    return book


def test_stp_cancel_resting_cancels_own_order_and_continues(book_cls):
    book = _stp_book(book_cls, STP.CANCEL_RESTING)
    assert book.stp == STP.CANCEL_RESTING
    assert book.submit(9, BUY, 101, 5, owner=7) == 5
    assert_events(book, [
        accepted(9, BUY, 101, 5, owner=7),
        fill(9, 1, BUY, 100, 2, owner=7, maker_owner=5),
        ev(K.CANCELLED, 2, side=SELL, price=100, qty=3, owner=7, reason=R.SELF_TRADE),
        fill(9, 3, BUY, 101, 3, owner=7, maker_owner=5),
    ])
    assert book.get(2) is None
    assert book.best_ask() == (101, 1)
    book.check_invariants()


def test_stp_cancel_resting_is_default(book_cls):
    assert book_cls().stp == STP.CANCEL_RESTING


def test_stp_cancel_taker_expires_taker_nothing_rests(book_cls):
    book = _stp_book(book_cls, STP.CANCEL_TAKER)
    assert book.submit(9, BUY, 101, 5, owner=7) == 2
    assert_events(book, [
        accepted(9, BUY, 101, 5, owner=7),
        fill(9, 1, BUY, 100, 2, owner=7, maker_owner=5),
        ev(K.EXPIRED, 9, side=BUY, price=101, qty=3, owner=7, reason=R.SELF_TRADE),
    ])
    assert book.get(9) is None
    assert book.level(SELL, 100) == [(2, 3)]
    assert book.best_bid() is None
    book.check_invariants()


def test_stp_cancel_both_cancels_resting_and_taker(book_cls):
    book = _stp_book(book_cls, STP.CANCEL_BOTH)
    assert book.submit(9, BUY, 101, 5, TIF.IOC, owner=7) == 2
    # no IOC_REMAINDER after a self-trade stop: the SELF_TRADE expiry covers it
    assert_events(book, [
        accepted(9, BUY, 101, 5, owner=7),
        fill(9, 1, BUY, 100, 2, owner=7, maker_owner=5),
        ev(K.CANCELLED, 2, side=SELL, price=100, qty=3, owner=7, reason=R.SELF_TRADE),
        ev(K.EXPIRED, 9, side=BUY, price=101, qty=3, owner=7, reason=R.SELF_TRADE),
    ])
    assert book.level(SELL, 100) == []
    assert book.best_ask() == (101, 4)
    assert book.get(9) is None
    book.check_invariants()


def test_stp_none_allows_self_trade(book_cls):
    book = _stp_book(book_cls, STP.NONE)
    assert book.submit(9, BUY, 101, 5, owner=7) == 5
    assert_events(book, [
        accepted(9, BUY, 101, 5, owner=7),
        fill(9, 1, BUY, 100, 2, owner=7, maker_owner=5),
        fill(9, 2, BUY, 100, 3, owner=7, maker_owner=7),
    ])
    assert book.best_ask() == (101, 4)


@pytest.mark.parametrize("mode", list(STP))
def test_stp_owner_zero_never_self_trade_prevented(book_cls, mode):
    book = book_cls(stp=mode)
    book.submit(1, SELL, 100, 2, owner=0)
    assert book.submit(2, BUY, 100, 2, owner=0) == 2
    assert len(book) == 0


def test_stp_cancel_taker_market_expiry_price_zero_no_market_remainder(book_cls):
    book = book_cls(stp=STP.CANCEL_TAKER)
    book.submit(1, BUY, 100, 4, owner=3)
    book.events()
    assert book.submit_market(2, SELL, 6, owner=3) == 0
    assert_events(book, [
        ev(K.ACCEPTED, 2, side=SELL, qty=6, owner=3),
        ev(K.EXPIRED, 2, side=SELL, price=0, qty=6, owner=3, reason=R.SELF_TRADE),
    ])
    assert book.get(1) == (BUY, 100, 4)


def test_stp_cancel_taker_on_modify_reentry_drops_order(book_cls):
    book = book_cls(stp=STP.CANCEL_TAKER)
    book.submit(1, SELL, 101, 4, owner=3)
    book.submit(2, BUY, 99, 4, owner=3)
    book.events()
    assert book.modify(2, 4, price=101) is True
    assert_events(book, [
        ev(K.MODIFIED, 2, side=BUY, price=101, qty=4, owner=3),
        ev(K.EXPIRED, 2, side=BUY, price=101, qty=4, owner=3, reason=R.SELF_TRADE),
    ])
    assert book.get(2) is None
    assert book.get(1) == (SELL, 101, 4)


@pytest.mark.parametrize("mode,expect_fill", [
    # liquidity: 2 (owner 5) then 3 (own, owner 7) then 4 (owner 5) at 101; FOK qty 6
    (STP.NONE, True),            # all 9 count
    (STP.CANCEL_RESTING, True),  # own 3 skipped: 2 + 4 = 6 >= 6
    (STP.CANCEL_TAKER, False),   # counting stops at own order: 2 < 6
    (STP.CANCEL_BOTH, False),
])
def test_fok_stp_liquidity_counting(book_cls, mode, expect_fill):
    book = _stp_book(book_cls, mode)
    before = snapshot(book)
    got = book.submit(9, BUY, 101, 6, TIF.FOK, owner=7)
    events = event_dicts(book.events())
    if expect_fill:
        assert got == 6
        assert sum(e["qty"] for e in events if e["kind"] == K.FILL) == 6
        assert events[-1]["kind"] == K.FILL
    else:
        assert got == 0
        assert events == [
            accepted(9, BUY, 101, 6, owner=7),
            ev(K.EXPIRED, 9, side=BUY, price=101, qty=6, owner=7, reason=R.FOK_NOT_FILLABLE),
        ]
        assert snapshot(book) == before


def test_fok_stp_cancel_resting_one_more_lot_not_fillable(book_cls):
    book = _stp_book(book_cls, STP.CANCEL_RESTING)
    before = snapshot(book)
    assert book.submit(9, BUY, 101, 7, TIF.FOK, owner=7) == 0  # only 6 tradeable
    assert snapshot(book) == before  # own order not cancelled either


def test_fok_stp_cancel_taker_enough_before_own_order_fills(book_cls):
    book = _stp_book(book_cls, STP.CANCEL_TAKER)
    assert book.submit(9, BUY, 101, 2, TIF.FOK, owner=7) == 2
    assert book.level(SELL, 100) == [(2, 3)]


# ---------------------------------------------------------------- invalid arguments


@pytest.mark.parametrize("kwargs,reason", [
    (dict(qty=0), R.INVALID_QTY),
    (dict(qty=-5), R.INVALID_QTY),
    (dict(price=0), R.INVALID_PRICE),
    (dict(price=-100), R.INVALID_PRICE),
    (dict(side=2), R.INVALID_SIDE),
    (dict(tif=3), R.INVALID_TIF),
    (dict(qty=0, price=0, side=2, tif=3), R.INVALID_QTY),  # first failing check wins
    (dict(price=0, side=2), R.INVALID_PRICE),
    (dict(side=2, tif=3), R.INVALID_SIDE),
    (dict(oid=1, tif=3), R.INVALID_TIF),                   # tif before duplicate id
    (dict(oid=1, post_only=True), R.DUPLICATE_ORDER_ID),   # duplicate before post-only
])
def test_submit_invalid_args_raise_order_rejected_book_unchanged(book, kwargs, reason):
    book.submit(1, SELL, 100, 5)
    before = snapshot(book)
    book.events()
    args = dict(oid=3, side=BUY, price=100, qty=4, tif=TIF.GTC, post_only=False)
    args.update(kwargs)
    with pytest.raises(OrderRejected) as info:
        book.submit(args["oid"], args["side"], args["price"], args["qty"], args["tif"],
                    owner=9, post_only=args["post_only"], ts_ns=11)
    assert isinstance(info.value, ValueError)
    assert info.value.reason == reason
    assert info.value.order_id == args["oid"]
    assert_events(book, [ev(K.REJECTED, args["oid"], side=args["side"], price=args["price"],
                            qty=args["qty"], owner=9, reason=reason, ts_ns=11)])
    assert snapshot(book) == before
    book.check_invariants()


@pytest.mark.parametrize("side,qty,reason", [
    (BUY, 0, R.INVALID_QTY),
    (SELL, -1, R.INVALID_QTY),
    (2, 5, R.INVALID_SIDE),
    (2, 0, R.INVALID_QTY),
])
def test_submit_market_invalid_args_raise_order_rejected(book, side, qty, reason):
    book.submit(1, SELL, 100, 5)
    before = snapshot(book)
    book.events()
    with pytest.raises(OrderRejected) as info:
        book.submit_market(4, side, qty, owner=2)
    assert info.value.reason == reason
    assert_events(book, [ev(K.REJECTED, 4, side=side, price=0, qty=qty, owner=2, reason=reason)])
    assert snapshot(book) == before


def test_reject_alias_is_reason(book):
    import matchcore

    assert matchcore.Reject is matchcore.Reason
    assert issubclass(matchcore.OrderRejected, ValueError)


# ---------------------------------------------------------------- queries


def test_queue_position_counts_open_qty_ahead(book):
    book.submit(1, BUY, 100, 5)
    book.submit(2, BUY, 100, 3)
    book.submit(3, BUY, 100, 4)
    book.submit(4, BUY, 99, 10)
    assert [book.queue_position(i) for i in (1, 2, 3, 4)] == [0, 5, 8, 0]
    book.submit(5, SELL, 100, 2)  # partial fill of the head
    assert [book.queue_position(i) for i in (1, 2, 3)] == [0, 3, 6]
    book.cancel(2)
    assert book.queue_position(3) == 3
    with pytest.raises(KeyError):
        book.queue_position(2)
    with pytest.raises(KeyError):
        book.queue_position(12345)


@pytest.mark.parametrize("oid", [np.uint64(2**64 - 1), np.int32(7), IntEnum("Id", {"A": 9}).A, True])
def test_queue_position_not_resting_key_error_holds_the_int_id(book, oid):
    # The compiled book raised KeyError with the argument as given (KeyError(np.uint64(...)),
    # printed "np.uint64(18446744073709551615)"), the reference model with the int id
    book.submit(3, BUY, 100, 5)
    with pytest.raises(KeyError) as err:
        book.queue_position(oid)
    assert type(err.value.args[0]) is int and err.value.args[0] == int(oid)
    assert str(err.value) == str(int(oid))


def test_depth_orders_levels_best_first_and_truncates(book):
    for oid, (side, price, qty) in enumerate([
            (BUY, 98, 1), (BUY, 100, 2), (BUY, 99, 3), (BUY, 100, 4),
            (SELL, 103, 5), (SELL, 101, 6), (SELL, 102, 7), (SELL, 101, 8)], start=1):
        book.submit(oid, side, price, qty)
    bids, asks = book.depth(10)
    assert bids.dtype == np.int64 and asks.dtype == np.int64
    assert bids.tolist() == [[100, 6], [99, 3], [98, 1]]
    assert asks.tolist() == [[101, 14], [102, 7], [103, 5]]
    bids, asks = book.depth(2)
    assert bids.tolist() == [[100, 6], [99, 3]]
    assert asks.tolist() == [[101, 14], [102, 7]]
    bids, asks = book.depth(0)
    assert bids.shape == (0, 2) and asks.shape == (0, 2)
    with pytest.raises(ValueError):
        book.depth(-1)


def test_fills_happen_at_maker_price(book):
    book.submit(1, SELL, 100, 2)
    book.submit(2, BUY, 90, 2)
    book.events()
    book.submit(3, BUY, 105, 2)
    book.submit(4, SELL, 80, 2)
    fills = [e for e in event_dicts(book.events()) if e["kind"] == K.FILL]
    assert [(e["order_id"], e["maker_id"], e["price"]) for e in fills] == [(3, 1, 100), (4, 2, 90)]


def test_best_bid_ask_aggregate_level_qty(book):
    assert book.best_bid() is None and book.best_ask() is None
    book.submit(1, BUY, 100, 2)
    book.submit(2, BUY, 100, 3)
    book.submit(3, BUY, 99, 50)
    book.submit(4, SELL, 101, 4)
    book.submit(5, SELL, 101, 1)
    assert book.best_bid() == (100, 5)
    assert book.best_ask() == (101, 5)
    book.submit(6, SELL, 100, 1)  # partial fill of order 1
    assert book.best_bid() == (100, 4)
    book.modify(2, 1)
    assert book.best_bid() == (100, 2)
    price, qty = book.best_ask()
    assert type(price) is int and type(qty) is int


def test_get_returns_plain_ints_or_none(book):
    book.submit(1, SELL, 100, 2)
    got = book.get(1)
    assert got == (SELL, 100, 2)
    assert all(type(x) is int for x in got)
    assert book.get(2) is None


def test_level_lists_fifo_and_empty_for_missing(book):
    book.submit(3, SELL, 100, 2)
    book.submit(1, SELL, 100, 5)
    book.submit(2, SELL, 100, 1)
    assert book.level(SELL, 100) == [(3, 2), (1, 5), (2, 1)]
    assert book.level(SELL, 101) == []
    assert book.level(BUY, 100) == []


# ---------------------------------------------------------------- events buffer / construction


def test_events_returns_since_previous_call_and_clears(book):
    book.submit(1, SELL, 100, 2, ts_ns=1)
    first = book.events()
    assert first["ts_ns"].tolist() == [1]
    assert len(book.events()) == 0
    book.cancel(1, ts_ns=2)
    assert book.events()["ts_ns"].tolist() == [2]


def test_record_events_false_keeps_no_events_but_process_returns_them(book_cls):
    from matchcore._enums import COMMAND_DTYPE, CommandKind

    book = book_cls(record_events=False)
    book.submit(1, SELL, 100, 2)
    assert book.submit(2, BUY, 100, 1) == 1
    with pytest.raises(OrderRejected):
        book.submit(3, BUY, 0, 1)
    assert len(book.events()) == 0
    cmds = np.zeros(1, dtype=COMMAND_DTYPE)
    cmds["ts_ns"] = 5
    cmds["order_id"] = 1
    cmds["kind"] = CommandKind.CANCEL
    out = book.process(cmds)
    assert event_dicts(out) == [ev(K.CANCELLED, 1, side=SELL, price=100, qty=1,
                                   reason=R.CANCEL_REQUESTED, ts_ns=5)]
    assert len(book.events()) == 0


def test_record_events_false_events_empty_after_successful_submit(book_cls):
    book = book_cls(record_events=False)
    assert book.submit(1, SELL, 100, 2) == 0
    assert len(book.events()) == 0


def test_stp_property_is_read_only(book_cls):
    book = book_cls(stp=STP.CANCEL_BOTH)
    assert book.stp == STP.CANCEL_BOTH
    with pytest.raises(AttributeError):
        book.stp = STP.NONE
    assert book.stp == STP.CANCEL_BOTH


def test_enum_arguments_accept_plain_ints(book_cls):
    book = book_cls(stp=2)
    assert book.stp == STP.CANCEL_TAKER
    assert book.submit(1, 1, 100, 2, 0) == 0
    assert book.submit(2, Side.BUY, 100, 1, TIF.IOC) == 1


@pytest.mark.parametrize("side", [-1, -2, 256, 257, 2**31 - 1])
def test_submit_side_outside_byte_rejected_event_side_255(book, side):
    # the event's side is one byte: an invalid side outside it is recorded as 255 (invalid
    # too), never wrapped into another value (256 as 0 made an INVALID_SIDE reject read BUY),
    # as a journaled engine records it
    with pytest.raises(OrderRejected) as info:
        book.submit(1, side, 100, 1)
    assert info.value.reason == R.INVALID_SIDE
    with pytest.raises(OrderRejected):
        book.submit_market(2, side, 5)
    assert_events(book, [ev(K.REJECTED, 1, side=255, price=100, qty=1, reason=R.INVALID_SIDE),
                         ev(K.REJECTED, 2, side=255, price=0, qty=5, reason=R.INVALID_SIDE)])
    assert len(book) == 0


@pytest.mark.parametrize("side", [-1, 256, 2**31 - 1])
def test_engine_side_outside_byte_same_reject_event_journaled_or_not(tmp_path, side):
    from matchcore import Engine

    events = []
    for journal in (None, tmp_path / "j"):
        eng = Engine(journal=journal) if journal else Engine()
        eng.add_symbol(1)
        for call in (lambda: eng.submit(1, 1, side, 100, 1),
                     lambda: eng.submit_market(1, 2, side, 5),
                     lambda: eng.submit(7, 3, side, 100, 1)):     # unknown symbol too
            with pytest.raises(OrderRejected):
                call()
        events.append(eng.events())
        eng.close()
    assert events[0]["side"].tolist() == [255, 255, 255]
    assert events[0].tobytes() == events[1].tobytes()


@pytest.mark.parametrize("kwargs", [dict(side=2**31), dict(side=-(2**31) - 1), dict(tif=2**31),
                                    dict(qty=2**63), dict(owner=-1), dict(owner=2**64),
                                    dict(ts_ns=2**63)])
def test_submit_argument_outside_c_type_raises_overflow_before_book(book, kwargs):
    args = dict(side=BUY, tif=0, qty=1, owner=0, ts_ns=0)
    args.update(kwargs)
    with pytest.raises(OverflowError):
        book.submit(1, args["side"], 100, args["qty"], args["tif"], owner=args["owner"],
                    ts_ns=args["ts_ns"])
    assert len(book.events()) == 0
    assert len(book) == 0


@pytest.mark.parametrize("call", [
    lambda b: b.submit(1, BUY, 100.7, 1),
    lambda b: b.submit(1, BUY, 100, 2.5),
    lambda b: b.submit(1.0, BUY, 100, 1),
    lambda b: b.submit(1, BUY, np.float64(100.0), 1),
    lambda b: b.submit_market(1, BUY, 2.0),
    lambda b: b.modify(5, 3.9),
    lambda b: b.modify(5, 3, 99.99),
], ids=["price", "qty", "order_id", "np_float_price", "market_qty", "modify_qty",
        "modify_price"])
def test_float_arguments_raise_type_error_never_truncated(book, call):
    # Prices are integer ticks and quantities integer lots: a float is a caller bug (a price in
    # currency units passed by mistake), and truncating it would trade at the wrong price.
    book.submit(5, BUY, 90, 5)
    before = snapshot(book)
    book.events()
    with pytest.raises(TypeError):
        call(book)
    assert len(book.events()) == 0
    assert snapshot(book) == before


def test_depth_level_beyond_int64_same_overflow_message_both_books():
    # the reference model is the specification of the exceptions too: same type, same words
    import matchcore as mc

    msgs = []
    for cls in (mc.OrderBook, mc.ReferenceBook):
        b = cls()
        b.submit(1, BUY, 99, 2**62)
        b.submit(2, BUY, 99, 2**62)
        b.submit(3, BUY, 98, 1)
        for call in (lambda: b.depth(5), lambda: b.depth_orders(5)):
            with pytest.raises(OverflowError) as info:
                call()
            msgs.append(str(info.value))
        assert b.best_bid() == (99, 2**63)
    assert msgs[0] == msgs[2] and msgs[1] == msgs[3], msgs
    assert msgs[0].startswith("level 99 holds 9223372036854775808 lots")


def test_process_bad_command_array_same_exception_both_books():
    import numpy as np

    import matchcore as mc

    good = np.zeros(4, mc.COMMAND_DTYPE)
    bads = [np.zeros(4, np.int64), good.astype(mc.COMMAND_DTYPE.newbyteorder(">")),
            good.reshape(2, 2), good[0], np.zeros((), mc.COMMAND_DTYPE)]
    for bad in bads:
        got = []
        for cls in (mc.OrderBook, mc.ReferenceBook):
            with pytest.raises((TypeError, ValueError)) as info:
                cls().process(bad)
            got.append((type(info.value), str(info.value)))
        assert got[0] == got[1], got


def test_level_qty_sum_beyond_int64_never_reported_negative(book):
    # Each order's qty fits int64 but the level total (2**63) does not: the aggregate must be
    # exact or refused with OverflowError, never wrapped to a negative quantity.
    book.submit(1, SELL, 100, 2**62)
    book.submit(2, SELL, 100, 2**62)
    book.submit(3, SELL, 100, 1)
    try:
        best = book.best_ask()
    except OverflowError:
        pass
    else:
        assert best == (100, 2**63 + 1)
    try:
        ahead = book.queue_position(3)
    except OverflowError:
        pass
    else:
        assert ahead == 2**63
    try:
        _, asks = book.depth(1)
    except OverflowError:
        pass
    else:
        assert (asks[:, 1] > 0).all(), asks.tolist()
    # matching is unaffected: a FOK for the whole of the first two orders fills
    assert book.submit(4, BUY, 100, 2**63 - 1, TIF.FOK) == 2**63 - 1
    assert book.best_ask() == (100, 2)


def test_depth_into_overlapping_arrays_refused_arrays_untouched():
    import matchcore as mc

    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    book.submit(2, 1, 101, 7)
    a = np.full((4, 2), -9, np.int64)
    for bids, asks in ((a, a), (a[:2], a[1:3]), (a[1:], a[:2])):
        with pytest.raises(ValueError, match="share memory"):
            book.depth_into(bids, asks)
        assert (a == -9).all()
    assert book.depth_into(a[:2], a[2:]) == (1, 1)
    assert a.tolist() == [[100, 5], [-9, -9], [101, 7], [-9, -9]]


def test_modify_refused_for_bad_fields_on_resting_order_carries_its_owner_and_side(book):
    # The order is known: the refusal is about it, so it goes to its owner (events(owner=))
    book.submit(1, SELL, 100, 5, owner=7)
    book.events()
    for qty, price, reason in ((0, None, R.INVALID_QTY), (-2, 101, R.INVALID_QTY),
                               (3, -1, R.INVALID_PRICE)):
        with pytest.raises(OrderRejected):
            book.modify(1, qty, price)
        assert_events(book, [ev(K.REJECTED, 1, side=SELL, price=price or 0, qty=qty, owner=7,
                                reason=reason)])
    assert book.get(1) == (SELL, 100, 5)


def test_process_cancel_and_modify_rejects_carry_command_owner_or_order_owner(book):
    # An id that is not resting has no order to take an owner from: the command's owner is
    # the only one; a resting order's refusal carries the order's owner, whoever sent it.
    from matchcore._core import COMMAND_DTYPE
    from matchcore._enums import CommandKind
    book.submit(1, SELL, 100, 5, owner=7)
    book.events()
    cmds = np.zeros(5, COMMAND_DTYPE)
    cmds["kind"] = [CommandKind.CANCEL, CommandKind.MODIFY, CommandKind.MODIFY,
                    CommandKind.MODIFY, CommandKind.CANCEL]
    cmds["order_id"] = [9, 9, 9, 1, 8]
    cmds["qty"] = [0, 3, 0, 0, 0]
    cmds["price"] = [0, 101, 0, 0, 0]
    cmds["owner"] = [8, 8, 8, 8, 0]
    out = book.process(cmds)
    assert event_dicts(out) == [
        ev(K.REJECTED, 9, owner=8, reason=R.ORDER_NOT_FOUND),
        ev(K.REJECTED, 9, price=101, qty=3, owner=8, reason=R.ORDER_NOT_FOUND),
        ev(K.REJECTED, 9, owner=8, reason=R.INVALID_QTY),
        ev(K.REJECTED, 1, side=SELL, owner=7, reason=R.INVALID_QTY),
        ev(K.REJECTED, 8, reason=R.ORDER_NOT_FOUND)]
    assert book.get(1) == (SELL, 100, 5)


def test_cancel_and_modify_owner_keyword_labels_reject_of_unknown_id_only(book):
    # the per-call twin of a command's owner field: process() and the calls give equal events
    book.submit(1, BUY, 100, 5, owner=3)
    book.events()
    assert book.cancel(9, owner=4) == 0
    assert book.modify(9, 2, owner=4) is False
    assert book.modify(1, 2, 101, owner=4) is True      # a resting order keeps its own owner
    assert_events(book, [ev(K.REJECTED, 9, owner=4, reason=R.ORDER_NOT_FOUND),
                         ev(K.REJECTED, 9, qty=2, owner=4, reason=R.ORDER_NOT_FOUND),
                         ev(K.MODIFIED, 1, side=BUY, price=101, qty=2, owner=3)])
    with pytest.raises(OverflowError):
        book.cancel(1, owner=-1)
    assert book.get(1) == (BUY, 101, 2)
