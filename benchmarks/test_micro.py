"""Per-operation micro-benchmarks of the compiled book through its Python API.

Each benchmark keeps the book in a steady state across rounds (an order submitted is cancelled
again, a reprice alternates between two prices), so the timed call does the same work every time.
With ``--benchmark-disable`` every function runs once as a plain test.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import matchcore as mc
from matchcore.workloads import standard_mix

MID = 1_000_000


@pytest.fixture
def book():
    """1,000 resting orders over 750 levels, like the standard mix."""
    setup, _ = standard_mix(0, seed=1)
    b = mc.OrderBook(record_events=False, capacity=4096)
    b.process(setup)
    return b


def test_noop_floor(benchmark, book):
    benchmark(book._noop4, 10**9, 0, MID - 1, 10)


def test_submit_and_cancel(benchmark, book):
    # a submit alone would grow the book round after round; this pair keeps it steady
    ids = itertools.count(10**9)

    def submit_then_cancel():
        oid = next(ids)
        book.submit(oid, 0, MID - 5, 10)
        book.cancel(oid)

    benchmark(submit_then_cancel)
    assert book.get(10**9) is None


def test_cancel(benchmark, book):
    ids = itertools.count(10**9)

    def setup():
        oid = next(ids)
        book.submit(oid, 1, MID + 7, 10)
        return (oid,), {}

    benchmark.pedantic(book.cancel, setup=setup, rounds=2000)
    assert len(book) == 1000


def test_modify_reprice(benchmark, book):
    book.submit(10**9, 0, MID - 3, 10)
    prices = itertools.cycle((MID - 4, MID - 3))

    def reprice():
        return book.modify(10**9, 10, next(prices))

    assert benchmark(reprice) is True


def test_marketable_order_with_its_maker(benchmark, book):
    ids = itertools.count(10**9)

    def take_one():
        # a fresh ask at the touch, then a buy IOC that takes exactly it
        oid = next(ids)
        book.submit(oid, 1, MID, 5)
        return book.submit(oid + 10**6, 0, MID, 5, mc.TIF.IOC)

    assert benchmark(take_one) == 5


def test_best_bid(benchmark, book):
    assert benchmark(book.best_bid) is not None


def test_depth_10(benchmark, book):
    bids, asks = benchmark(book.depth, 10)
    assert bids.shape == (10, 2) and asks.shape == (10, 2)


def test_process_1k_messages(benchmark):
    setup, flow = standard_mix(1000, seed=2)
    base = mc.OrderBook(capacity=4096)
    base.process(setup)

    def fresh():
        return (base.copy(), flow), {}

    ev = benchmark.pedantic(mc.OrderBook.process, setup=fresh, rounds=200)
    assert len(ev) >= len(flow)
    assert not np.any((ev["kind"] == mc.EventKind.REJECTED))


def test_process_1k_messages_into_reused_buffer(benchmark):
    # process(out=): the events land in one caller-owned buffer, no array made per call
    setup, flow = standard_mix(1000, seed=2)
    base = mc.OrderBook(capacity=4096)
    base.process(setup)
    buf = np.zeros(4 * len(flow), dtype=mc.EVENT_DTYPE)

    def fresh():
        return (base.copy(), flow), {"out": buf}

    ev = benchmark.pedantic(mc.OrderBook.process, setup=fresh, rounds=200)
    assert len(ev) >= len(flow) and np.shares_memory(ev, buf)
    assert not np.any((ev["kind"] == mc.EventKind.REJECTED))
