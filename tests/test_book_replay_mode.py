"""The replay mode (``place``, ``reduce``): the exchange already matched, the book only applies
what it reports. ``events(owner=)`` is the compiled book's alone; the state machine of
``test_book_property`` holds both books equal in this mode."""
from __future__ import annotations

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
