"""Orders entered on a feed replayer's book write their events, as any default book's do.

A feed replayer's book (``r.book(s)``) takes orders (README, "Simulator conveniences") and says
``record_events`` True, but the replayer builds it with event writing switched off, so a
simulator's own order on it traded and ``events()`` gave nothing: its fills were lost. The
calls made through the book's Python methods now write their events; the replay's own
messages still write none.
"""
from __future__ import annotations

import numpy as np
import pytest

import matchcore as mc
from test_snapshot import _feed_replayer


def _mid_replay_book(feed):
    rep, data = _feed_replayer(feed)
    half = rep.feed(data[:len(data) // 2])
    book = next(b for b in rep.books.values() if b.best_ask() and b.best_bid())
    return rep, data[half:], book


def _kinds(ev):
    return [mc.EventKind(k).name for k in ev["kind"]]


@pytest.mark.parametrize("feed", ["itch", "dbn"])
def test_replayer_book_per_call_orders_write_their_events_as_a_standalone_twin(feed):
    rep, rest, book = _mid_replay_book(feed)
    assert book.record_events and len(book.events()) == 0
    twin = book.copy()
    ask, _ = book.best_ask()
    bid, _ = book.best_bid()
    big = 2**63
    calls = [
        lambda b: b.submit(big, mc.Side.BUY, ask, 1, mc.TIF.IOC, owner=5, ts_ns=7),
        lambda b: b.submit(big + 1, mc.Side.SELL, ask + 1000, 3, owner=5, ts_ns=8),
        lambda b: b.modify(big + 1, 2, ts_ns=9),
        lambda b: b.cancel(big + 1, ts_ns=10),
        lambda b: b.cancel(big + 2, owner=5, ts_ns=11),
        lambda b: b.submit_market(big + 3, mc.Side.SELL, 1, owner=5, ts_ns=12),
        lambda b: b.place(big + 4, mc.Side.BUY, bid, 4, owner=5, ts_ns=13),
        lambda b: b.reduce(big + 4, 1, execution=True, ts_ns=14),
    ]
    for call in calls:
        assert call(book) == call(twin)
        got, want = book.events(), twin.events()
        assert len(got) > 0
        assert got.tobytes() == want.tobytes(), (_kinds(got), _kinds(want))
    with pytest.raises(mc.OrderRejected):
        book.submit(big + 5, mc.Side.BUY, 0, 1)
    assert _kinds(book.events()) == ["REJECTED"]
    # events(owner=) filters them as on any book
    book.submit(big + 6, mc.Side.SELL, ask + 1000, 1, owner=9)
    book.submit(big + 7, mc.Side.SELL, ask + 1000, 1, owner=5)
    assert book.events(owner=5)["order_id"].tolist() == [big + 7]
    # the replay itself still writes none: nothing piles up while it goes on
    book.cancel(big + 6)
    book.cancel(big + 7)
    book.cancel(big + 4)
    book.events()
    rep.feed(rest)
    assert len(book.events()) == 0
    assert all(len(b.events()) == 0 for b in rep.books.values())
    book.check_invariants(allow_crossed=True)


def test_replayer_book_process_keeps_pending_events_of_per_call_orders():
    rep, rest, book = _mid_replay_book("itch")
    ask, _ = book.best_ask()
    book.submit(2**63, mc.Side.SELL, ask + 1000, 2, owner=5)
    cmds = np.zeros(1, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = 2**63 + 1
    cmds["side"] = mc.Side.SELL
    cmds["price"] = ask + 1000
    cmds["qty"] = 1
    assert _kinds(book.process(cmds)) == ["ACCEPTED"]
    assert book.events()["order_id"].tolist() == [2**63]


@pytest.mark.parametrize("feed", ["itch", "dbn"])
def test_replayer_book_c_table_orders_leave_their_events_pending(feed):
    # the same from C (and Numba, which calls the table): a replayer's book said
    # record_events True and its orders' events never reached drain_events
    from test_capi import CTable
    api = CTable()
    rep, rest, book = _mid_replay_book(feed)
    twin = book.copy()
    ask, _ = book.best_ask()
    big = 2**63
    for b in (book, twin):
        h = b.handle
        assert api.submit(h, big, mc.Side.BUY, ask, 1, mc.TIF.IOC, 5, 0) == 1
        assert api.submit(h, big + 1, mc.Side.SELL, ask + 1000, 3, mc.TIF.GTC, 5, 0) == 0
        assert api.modify(h, big + 1, 2, 0) == 0
        assert api.cancel(h, big + 1) == 2
        cmds = np.zeros(2, dtype=mc.COMMAND_DTYPE)
        cmds["order_id"] = [big + 2, big + 3]
        cmds["side"] = mc.Side.SELL
        cmds["price"] = ask + 1000
        cmds["qty"] = 1
        assert api.process(h, cmds.ctypes.data, 2) == 2
        assert api.apply(h, cmds[:1].ctypes.data) < 0       # a duplicate id: REJECTED
    assert api.pending_events(book.handle) == api.pending_events(twin.handle) > 0
    got, want = book.events(), twin.events()
    assert got.tobytes() == want.tobytes(), (_kinds(got), _kinds(want))
    rep.feed(rest)
    assert api.pending_events(book.handle) == 0
