"""Seeded order-flow generators that write :data:`COMMAND_DTYPE` arrays.

The standard mix follows the shape customary for matching-engine benchmarks: 9% new GTC orders,
3% marketable IOC orders, 6% cancels and 82% reprices of a resting order, with about 1,000
resting orders over about 750 price levels. Commands are generated against a live book so that
every cancel and reprice names an order that is resting when the command arrives.
"""
from __future__ import annotations

import numpy as np

from matchcore._core import COMMAND_DTYPE, OrderBook

MID = 1_000_000  # ticks; far from 0 so that prices never leave the positive range


class _LiveSet:
    """Resting ids with O(1) random pick and removal (order does not matter here)."""

    def __init__(self):
        self.ids: list[int] = []
        self.pos: dict[int, int] = {}

    def add(self, oid: int) -> None:
        self.pos[oid] = len(self.ids)
        self.ids.append(oid)

    def discard(self, oid: int) -> None:
        i = self.pos.pop(oid, None)
        if i is None:
            return
        last = self.ids.pop()
        if last != oid:
            self.ids[i] = last
            self.pos[last] = i

    def __len__(self) -> int:
        return len(self.ids)


def standard_mix(n: int, *, seed: int = 1, resting: int = 1000, levels: int = 750,
                 background: int = 0, first_id: int = 1):
    """Generate ``n`` commands of the standard mix.

    Returns ``(setup, flow)``: ``setup`` places the initial resting orders (``resting`` active
    orders within ``levels`` levels around the mid, plus ``background`` passive orders on
    levels beyond them, 100 per level, that the flow never touches); ``flow`` is the measured
    mix. Replaying ``setup`` then ``flow`` into an empty book with the default STP mode
    reproduces the book the generator saw. O(n) with a Python loop (about 1 µs per command).

    >>> setup, flow = standard_mix(1000, seed=7)
    >>> len(flow)
    1000
    """
    rng = np.random.default_rng(seed)
    half = max(levels // 2, 1)
    book = OrderBook(record_events=True, capacity=resting + background + 1024)
    live = _LiveSet()
    setup = []
    next_id = first_id

    def passive_price(side: int) -> int:
        off = 1 + int(rng.integers(0, half))
        return MID - off if side == 0 else MID + off

    for k in range(background):
        side = k & 1
        lvl = half + 10 + (k // 2) // 100
        price = MID - lvl if side == 0 else MID + lvl
        setup.append((0, next_id, side, price, 100, 0))
        book.submit(next_id, side, price, 100)
        next_id += 1
    for k in range(resting):
        side = k & 1
        qty = int(rng.integers(1, 200))
        price = passive_price(side)
        setup.append((0, next_id, side, price, qty, 0))
        book.submit(next_id, side, price, qty)
        live.add(next_id)
        next_id += 1
    book.events()

    flow = np.zeros(n, dtype=COMMAND_DTYPE)
    kinds = rng.random(n)
    for i in range(n):
        r = kinds[i]
        rec = flow[i]
        if r < 0.09 or len(live) < 2:          # new passive GTC order
            side = int(rng.integers(0, 2))
            qty = int(rng.integers(1, 200))
            price = passive_price(side)
            rec["kind"], rec["order_id"], rec["side"], rec["price"], rec["qty"] = 0, next_id, side, price, qty
            book.submit(next_id, side, price, qty)
            live.add(next_id)
            next_id += 1
        elif r < 0.12:                         # marketable IOC at the opposite touch
            side = int(rng.integers(0, 2))
            best = book.best_ask() if side == 0 else book.best_bid()
            price = best[0] if best else passive_price(1 - side)
            # Sized to take about one resting order at the target book size and more when the
            # book is larger, so that adds (9%) minus cancels (6%) stay balanced by IOC takes.
            pressure = min(max(len(live) / max(resting, 1), 0.5), 4.0)
            qty = int(rng.integers(1, int(260 * pressure) + 2))
            rec["kind"], rec["order_id"], rec["side"], rec["price"], rec["qty"], rec["tif"] = 0, next_id, side, price, qty, 1
            book.submit(next_id, side, price, qty, 1)
            for ev in book.events():
                if ev["kind"] == 1 and book.get(int(ev["maker_id"])) is None:
                    live.discard(int(ev["maker_id"]))
            next_id += 1
        elif r < 0.18:                         # cancel
            oid = live.ids[int(rng.integers(0, len(live)))]
            rec["kind"], rec["order_id"] = 2, oid
            book.cancel(oid)
            live.discard(oid)
        else:                                  # reprice a resting order on its own side
            oid = live.ids[int(rng.integers(0, len(live)))]
            side = book.get(oid)[0]
            price = passive_price(side)
            qty = int(rng.integers(1, 200))
            rec["kind"], rec["order_id"], rec["price"], rec["qty"] = 3, oid, price, qty
            book.modify(oid, qty, price)
        book.events()

    s = np.zeros(len(setup), dtype=COMMAND_DTYPE)
    if setup:
        arr = np.array(setup, dtype=np.int64)
        s["kind"], s["order_id"], s["side"], s["price"], s["qty"] = (
            arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4])
    return s, flow
