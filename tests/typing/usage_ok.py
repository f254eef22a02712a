"""The documented API as a user script, type-checked with ``mypy --strict`` (must give no error)
and run (tests/test_typing.py): the README's Python examples, written so that every value has a
precise type from the stubs. Not collected by pytest itself."""
from __future__ import annotations

import copy
import pickle
import sys
import tempfile

import numpy as np
from numpy.typing import NDArray

import matchcore as mc
import matchcore.itch as itch
from matchcore._timing import clock_overhead_ns, process_timed
from matchcore.durability import RecoveryReport, read_trades


def book_in_five_lines() -> list[str]:
    book = mc.OrderBook()                                # stp=mc.STP.CANCEL_RESTING by default
    book.submit(1, mc.Side.SELL, 10_050, 300)            # GTC limit: rests, returns 0 executed
    book.submit(2, mc.Side.SELL, 10_060, 200)
    executed: int = book.submit(3, mc.Side.BUY, 10_060, 400, mc.TIF.IOC)
    assert executed == 400
    ask: tuple[int, int] | None = book.best_ask()
    assert ask == (10060, 100)
    out = []
    for ev in book.events():
        out.append(f"{mc.EventKind(ev['kind']).name} {ev['order_id']} {ev['price']} {ev['qty']}")
    return out


def api_table() -> None:
    book = mc.OrderBook(mc.STP.CANCEL_BOTH, record_events=True, capacity=1024)
    book.submit(1, mc.Side.SELL, 101, 5, owner=7, post_only=False, ts_ns=10)
    book.submit(2, 1, np.int64(102), 5, mc.TIF.GTC, owner=np.uint64(8))
    book.submit_market(3, mc.Side.BUY, 1, owner=9, ts_ns=11)
    removed: int = book.cancel(2, ts_ns=12)
    changed: bool = book.modify(1, 3, None, ts_ns=13)
    changed = book.modify(1, 3, price=101)
    assert removed == 5 and changed
    bids, asks = book.depth(5)
    assert bids.dtype == np.int64 and asks.shape[1] == 2
    rows: tuple[NDArray[np.int64], NDArray[np.int64]] = book.depth_orders(5)
    assert rows[1].shape[1] == 3
    got = book.get(1)
    if got is not None:
        side, price, open_qty = got
        assert mc.Side(side) is mc.Side.SELL and price == 101 and open_qty == 3
    ahead: int = book.queue_position(1)
    level: list[tuple[int, int]] = book.level(mc.Side.SELL, 101)
    assert ahead == 0 and level == [(1, 3)]
    assert len(book) == 1 and book.level_count(mc.Side.SELL) == 1
    mine: NDArray[np.void] = book.events(owner=7)
    assert mine.dtype == mc.EVENT_DTYPE
    bids_out = np.zeros((4, 2), dtype=np.int64)
    n_bids, n_asks = book.depth_into(bids_out, np.zeros((4, 2), dtype=np.int64))
    assert (n_bids, n_asks) == (0, 1)
    book.check_invariants()
    book.check_invariants(allow_crossed=True)
    h: int = book.state_hash()
    data: bytes = book.snapshot()
    twin = mc.OrderBook.from_snapshot(data, record_events=False)
    assert twin.state_hash() == h and not twin.record_events
    twin.restore(data)
    assert book.copy().state_hash() == copy.deepcopy(book).state_hash() == h
    assert pickle.loads(pickle.dumps(book)).state_hash() == h
    assert book.handle == book.address > 0 and book.raw_address != 0
    assert book.stp is mc.STP.CANCEL_BOTH and not book.busy
    replay = mc.OrderBook()
    replay.place(1, mc.Side.BUY, 100, 5, owner=0, ts_ns=0)
    taken: int = replay.reduce(1, 2, execution=True, ts_ns=1)
    assert taken == 2
    replay.clear()


def batches() -> NDArray[np.void]:
    cmds = np.zeros(3, dtype=mc.COMMAND_DTYPE)
    cmds[0] = (0, 1, 100, 5, 0, 0, mc.CommandKind.SUBMIT, mc.Side.SELL, mc.TIF.GTC, 0)
    cmds[1] = (0, 2, 100, 3, 0, 0, mc.CommandKind.SUBMIT, mc.Side.BUY, mc.TIF.IOC, 0)
    cmds[2] = (0, 9, 0, 0, 0, 0, mc.CommandKind.CANCEL, 0, 0, 0)        # unknown id: REJECTED
    book = mc.OrderBook()
    events = book.process(cmds)
    assert mc.Reason(events["reason"][-1]) is mc.Reject.ORDER_NOT_FOUND
    buf = np.empty(64, dtype=mc.EVENT_DTYPE)
    cmds["order_id"] += 10
    return book.process(cmds, out=buf)


def errors() -> None:
    try:
        mc.OrderBook().submit(1, mc.Side.BUY, 100, 0)
    except mc.OrderRejected as e:
        reason: mc.Reason = e.reason
        assert reason is mc.Reason.INVALID_QTY and e.order_id == 1
    try:
        mc.OrderBook().restore(b"nonsense")
    except mc.SnapshotError as e:
        code: int = e.code
        assert code != 0
    assert issubclass(mc.BusyError, RuntimeError)


def engine() -> None:
    eng = mc.Engine()                                          # stp= as for OrderBook
    aapl: mc.OrderBook = eng.add_symbol(1, "AAPL", tick=5, max_qty=10_000,
                                        max_notional=50_000_000)
    eng.add_symbol(2, "MSFT", min_price=1, max_price=100_000, ref_price=41_000, band=2_000)
    eng.submit("AAPL", 10, mc.Side.BUY, 18_995, 100, owner=7, ts_ns=5)
    assert eng.get(10) == (1, 0, 18_995, 100) and len(aapl) == 1
    eng.cancel(10)                                             # found by id, whatever the symbol
    eng.cancel(10, symbol="MSFT", ts_ns=6)
    eng.events(owner=7)                                        # events carry `symbol`
    commands = np.zeros(2, dtype=mc.COMMAND_DTYPE)             # kind 0 = SUBMIT
    commands["symbol"] = 2
    commands["order_id"] = [11, 12]
    commands["side"] = [0, 1]
    commands["price"] = 41_000
    commands["qty"] = 5
    eng.process(commands)                                      # `symbol` picks the book
    buf = np.empty(1 << 10, dtype=mc.EVENT_DTYPE)
    commands["order_id"] += 2
    eng.process(commands, out=buf)
    eng.set_limits("MSFT", band=3_000)
    eng.set_reference_price(2, 41_500)
    limits: dict[str, int] = eng.limits(2)
    assert limits["band"] == 3_000 and eng.symbol_id("MSFT") == 2
    names: dict[int, str | None] = eng.symbols
    assert names == {1: "AAPL", 2: "MSFT"}
    eng.submit_market(2, 20, mc.Side.BUY, 1)
    eng.modify(13, 4, price=None, symbol=2, ts_ns=7)
    assert eng.best_bid(2) is None or eng.best_bid(2) is not None
    eng.depth("MSFT", 3)
    eng.depth_into(2, np.zeros((2, 2), np.int64), np.zeros((2, 2), np.int64))
    eng.check_invariants()
    eng.check_invariants(allow_crossed=True)
    assert eng.book("MSFT").level_count(mc.Side.SELL) >= 0 and eng.stp is mc.STP.CANCEL_RESTING


class MyEngine(mc.Engine):
    pass


def durability() -> None:
    d = tempfile.mkdtemp()
    eng = mc.Engine(journal=d, fsync="batch")
    eng.add_symbol(1, "AAA")
    eng.submit(1, 1, mc.Side.SELL, 100, 5)
    eng.submit(1, 2, mc.Side.BUY, 100, 2)
    durable: int = eng.sync()
    assert durable == eng.journal_seq == eng.durable_seq
    path: str = eng.snapshot()
    assert path and eng.journal is not None and eng.trade_journal is not None
    eng.close()
    again = mc.Engine.recover(d, trades=True, readonly=True)
    report: RecoveryReport | None = again.recovery_report
    assert report is not None and report.last_seq == durable
    mine: MyEngine = MyEngine.recover(d, readonly=True)     # an instance of the subclass
    assert type(mine) is MyEngine and mine.state_hash() == again.state_hash()
    print(report.summary(), file=sys.stderr)
    trades = read_trades(d)
    assert len(trades) == 1 and mc.durability.read_trades(d).shape == trades.shape


def replays() -> None:
    data = itch.generate(None, messages=2000, symbols=3, seed=1)
    r = itch.Replayer(snapshot_every=500, snapshot_depth=5)
    consumed: int = r.feed(data)
    assert consumed == len(data)
    stats = r.finish(data[consumed:])
    assert stats["messages"] > 0 and not r.done      # done: stopped at until_ns
    names: dict[int, str] = r.symbols
    book: mc.OrderBook = r.book(names[1])
    book.best_bid()
    tob = r.tob()
    assert tob.dtype == itch.TOB_DTYPE and r.trades().dtype == itch.TRADE_DTYPE
    r.snapshots(clear=True)
    r.l2()
    latency = process_timed(mc.OrderBook(), np.zeros(0, dtype=mc.COMMAND_DTYPE))
    assert latency.dtype == np.int64 and clock_overhead_ns(1000) >= 0.0


def reference() -> None:
    ref = mc.ReferenceBook()
    ref.submit(1, mc.Side.SELL, 101, 5)
    assert mc.OrderBook().submit(1, mc.Side.SELL, 101, 5) == 0


if __name__ == "__main__":
    book_in_five_lines()
    api_table()
    batches()
    errors()
    engine()
    durability()
    replays()
    reference()
    print("ok")
