"""The id index (open addressing in Robin Hood order, backward-shift deletion) under crowding.

Ids are picked to share home slots: the index hashes blocks of 4 consecutive ids, so ids whose
blocks land on the same home fill each other's slots and force the displaced inserts and the
shifting deletions that sequential ids seldom reach. Every state is checked against a dict of
the resting orders and with check_invariants(), which verifies the Robin Hood order the early
stop of a deletion relies on.
"""
from __future__ import annotations

import os
import random

from hypothesis import given, settings, strategies as st

from matchcore import OrderBook

GOLDEN = 0x9E3779B97F4A7C15
BUY, SELL = 0, 1
SOAK = os.environ.get("MATCHCORE_SOAK") == "1"


def _home(key: int, bits: int) -> int:
    """The index's home slot of `key` in a table of 2**bits slots (as _home in _map.pxd)."""
    shift = 64 - bits
    return (((((key >> 2) * GOLDEN) & (2**64 - 1)) >> (shift + 2)) << 2) | (key & 3)


def _crowded_ids(bits: int, homes: int, per_home: int, seed: int) -> list[int]:
    """Ids whose homes, in a table of 2**bits slots, fall on `homes` neighbouring slots."""
    rng = random.Random(seed)
    target = rng.randrange(0, 2**bits, 4)
    wanted = {(target + k) % 2**bits for k in range(homes)}
    out: list[int] = []
    counts: dict[int, int] = {}
    while len(out) < homes * per_home:
        key = rng.randrange(1, 2**40)
        h = _home(key, bits)
        if h in wanted and counts.get(h, 0) < per_home:
            counts[h] = counts.get(h, 0) + 1
            out.append(key)
    return out


def _check(book: OrderBook, model: dict[int, tuple[int, int, int]]) -> None:
    book.check_invariants()
    assert len(book) == len(model)
    for oid, want in model.items():
        assert book.get(oid) == want


@settings(max_examples=1500 if SOAK else 60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(50, 400))
def test_crowded_ids_keep_index_exact(seed, n_ops):
    # capacity 1024 gives an index of 2048 slots, and the ids crowd 8 of them: runs of up to
    # dozens of displaced entries, wrapping past the table's end when the target is near it
    rng = random.Random(seed)
    ids = _crowded_ids(11, homes=8, per_home=6, seed=seed)
    book = OrderBook(capacity=1024)
    model: dict[int, tuple[int, int, int]] = {}
    for _ in range(n_ops):
        oid = rng.choice(ids)
        op = rng.random()
        if op < 0.5:
            if oid in model:
                continue
            # bids and asks far apart: nothing trades, every submit rests
            side = rng.randrange(2)
            price = rng.randrange(100, 110) if side == BUY else rng.randrange(200, 210)
            qty = rng.randrange(1, 50)
            assert book.submit(oid, side, price, qty) == 0
            model[oid] = (side, price, qty)
        elif op < 0.85:
            got = book.cancel(oid)
            assert got == (model.pop(oid)[2] if oid in model else 0)
        else:
            if oid not in model:
                assert book.modify(oid, 5) is False
                continue
            side, price, _ = model[oid]
            price = price + rng.choice((-1, 1))
            assert book.modify(oid, 7, price) is True
            model[oid] = (side, price, 7)
        _check(book, model)
    for oid in list(model):
        book.cancel(oid)
        del model[oid]
    _check(book, model)


def test_crowded_ids_through_index_growth():
    # from the smallest index up: each growth re-inserts every crowded entry in the new table
    rng = random.Random(7)
    book = OrderBook(capacity=0)
    model: dict[int, tuple[int, int, int]] = {}
    ids = _crowded_ids(5, homes=4, per_home=40, seed=3)
    for oid in ids:
        book.submit(oid, BUY, 100 + oid % 5, 3)
        model[oid] = (BUY, 100 + oid % 5, 3)
        _check(book, model)
    for oid in rng.sample(ids, len(ids)):
        assert book.cancel(oid) == 3
        del model[oid]
        _check(book, model)


def test_index_slots_wrap_around_the_table_end():
    # homes on the last slots of the table: runs continue at slot 0
    bits = 11
    rng = random.Random(5)
    last = {2**bits - 4 + k for k in range(4)}
    ids = []
    while len(ids) < 24:
        key = rng.randrange(1, 2**40)
        if _home(key, bits) in last:
            ids.append(key)
    book = OrderBook(capacity=1024)
    model = {}
    for oid in ids:
        book.submit(oid, SELL, 500, 2)
        model[oid] = (SELL, 500, 2)
    _check(book, model)
    for oid in ids[::2] + ids[1::2]:
        assert book.cancel(oid) == 2
        del model[oid]
        _check(book, model)
