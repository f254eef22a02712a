"""The replay mode (``place``, ``reduce``): the exchange already matched, the book only applies
what it reports. ``events(owner=)`` is the compiled book's alone; the state machine of
``test_book_property`` holds both books equal in this mode."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import assert_events, ev

import matchcore as mc

K = mc.EventKind
R = mc.Reason
BUY, SELL = int(mc.Side.BUY), int(mc.Side.SELL)


@pytest.mark.parametrize("execution", [False, True])
@pytest.mark.parametrize("qty", [0, -3])
def test_reduce_refused_for_bad_qty_on_resting_order_carries_its_owner_and_side(qty, execution):
    # As for a refused modify: the refusal is about the resting order, so its event carries
    # that order's owner and side, and events(owner=) shows it to the order's participant
    book = mc.OrderBook()
    book.place(1, SELL, 100, 5, owner=7)
    book.events()
    with pytest.raises(mc.OrderRejected) as info:
        book.reduce(1, qty, execution=execution)
    assert info.value.reason == R.INVALID_QTY
    assert_events(book, [ev(K.REJECTED, 1, side=SELL, qty=qty, owner=7, reason=R.INVALID_QTY)])
    with pytest.raises(mc.OrderRejected):
        book.reduce(1, qty, execution=execution)
    assert book.events(owner=7)["reason"].tolist() == [R.INVALID_QTY]
    assert book.get(1) == (SELL, 100, 5)


def test_reduce_refused_for_id_not_resting_carries_no_owner(book_cls):
    # an id that is not resting has no order to take an owner or side from
    book = book_cls()
    book.place(1, SELL, 100, 5, owner=7)
    book.events()
    assert book.reduce(2, 3) == 0
    with pytest.raises(mc.OrderRejected):
        book.reduce(2, 0)
    assert_events(book, [ev(K.REJECTED, 2, qty=3, reason=R.ORDER_NOT_FOUND),
                         ev(K.REJECTED, 2, reason=R.INVALID_QTY)])


@pytest.mark.parametrize("price", [None, 100])
def test_post_only_order_grown_in_a_book_place_crossed_refused_takes_no_liquidity(book_cls,
                                                                                 price):
    # A post-only order never takes liquidity. A larger qty at its own price re-enters it, and
    # in a book that place() left crossed its own price crosses: the re-entry traded as a taker
    # (FILL at 99), where a reprice that crosses is refused and leaves the order as it was.
    book = book_cls()
    book.submit(1, BUY, 100, 5, owner=3, post_only=True)
    book.place(2, SELL, 99, 5, owner=4)
    book.events()
    assert book.modify(1, 8, price=price) is False
    assert_events(book, [ev(K.REJECTED, 1, side=BUY, price=100, qty=8, owner=3,
                            reason=R.POST_ONLY_WOULD_CROSS)])
    assert book.get(1) == (BUY, 100, 5) and book.get(2) == (SELL, 99, 5)
    # shrinking in place re-enters nothing: taken, with its place kept
    assert book.modify(1, 4, price=price) is True
    assert_events(book, [ev(K.MODIFIED, 1, side=BUY, price=100, qty=4, owner=3)])
    book.check_invariants(allow_crossed=True)
    # an order that is not post-only re-enters and trades, as documented for modify
    book.submit(3, BUY, 98, 2)
    book.events()
    assert book.modify(3, 3, price=99) is True
    assert [int(k) for k in book.events()["kind"]] == [K.MODIFIED, K.FILL]


@pytest.mark.parametrize("maker_side", [BUY, SELL])
def test_reduce_execution_fill_has_no_aggressor_as_the_events_table_says(book_cls, maker_side):
    # the README's events table said a FILL's order_id is the aggressor, with no word on the
    # FILL of an execution the exchange reported, which has none in the book: order id 0,
    # owner 0, the maker's opposite side (as ReferenceBook.reduce's docstring says)
    book = book_cls()
    book.place(5, maker_side, 100, 10, owner=3, ts_ns=1)
    book.events()
    assert book.reduce(5, 4, execution=True, ts_ns=2) == 4
    assert_events(book, [ev(K.FILL, 0, maker_id=5, side=1 - maker_side, price=100, qty=4,
                            owner=0, maker_owner=3, ts_ns=2)])
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert ("for `FILL`, the aggressor (0 for the `FILL` of `reduce(..., execution=True)`, an "
            "exchange's execution with no aggressor in the book: its `owner` is 0 and its "
            "`side` the maker's opposite)") in readme
