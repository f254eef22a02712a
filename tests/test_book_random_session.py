"""A long seeded random session through three paths that must agree exactly:

(a) the compiled OrderBook through its per-call Python API,
(b) the compiled OrderBook through process() on a COMMAND_DTYPE array of the same commands,
(c) the ReferenceBook through its per-call API.

Events, return values (a) vs (c), final depth and len must be identical; check_invariants() runs at
checkpoints. Plus a small process() vs per-call test including invalid commands.
"""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
from conftest import assert_events_equal, ev, event_dicts

from matchcore import OrderBook, ReferenceBook
from matchcore._enums import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    STP,
    TIF,
    CommandKind,
    EventKind,
    OrderRejected,
    Reason,
)

SOAK = os.environ.get("MATCHCORE_SOAK") == "1"
N_COMMANDS = 1_000_000 if SOAK else 100_000
CHECKPOINT = 10_000

SUBMIT, MARKET, CANCEL, MODIFY = (int(k) for k in CommandKind)


def generate_session(n: int, seed: int, stp: STP = STP.CANCEL_RESTING) -> np.ndarray:
    """A realistic command mix around a drifting mid price.

    ~50% GTC limits (some post-only, some crossing), 5% IOC, 3% FOK, 2% market (a few large ones
    sweep several levels), 24% cancels and 13% modifies (qty down, qty up, reprice), ~3% invalid
    commands (qty <= 0, price <= 0, side 2, tif 3, a resting id reused). Cancels and modifies mostly target
    live orders (a ReferenceBook tracks which ids rest while generating); ~10% target stale ids
    (filled, cancelled or never used).
    """
    rng = random.Random(seed)
    oracle = ReferenceBook(stp=stp, record_events=False)
    rows = []
    mid = 10_000
    next_id = 1
    recent: list[int] = []  # ids of GTC orders; dead ones are dropped when found
    gone: list[int] = []    # ids known to have left the book

    def pick_live():
        for _ in range(6):
            if not recent:
                return None
            j = rng.randrange(max(0, len(recent) - 400), len(recent))
            oid = recent[j]
            if oracle.get(oid) is not None:
                return oid
            recent[j] = recent[-1]
            recent.pop()
            gone.append(oid)
        return None

    def pick_stale():
        if gone and rng.random() < 0.7:
            return rng.choice(gone[-1000:])
        return rng.randrange(next_id, next_id + 10**6)  # never used

    for i in range(n):
        if rng.random() < 0.05:
            mid = max(100, mid + rng.choice((-1, 1)))
        r = rng.random()
        s = rng.randrange(2)
        sign = 1 if s == 0 else -1  # passive buys below mid, passive sells above
        o = rng.choice((0, 0, 1, 2, 3))
        q = rng.choice((1, 1, 2, 3, 5, 10, 25, 100))
        kind, oid, side, price, qty, tif, owner, post = SUBMIT, next_id, s, 0, q, 0, o, 0
        if r < 0.50:  # GTC limit
            off = 1 + int(rng.expovariate(0.15))
            if rng.random() < 0.08:
                off = -rng.randrange(1, 4)  # aggressive: crosses the spread
            price = mid - sign * off
            post = int(rng.random() < 0.1)
            recent.append(next_id)
            next_id += 1
        elif r < 0.58:  # IOC / FOK, usually marketable
            price = mid + sign * rng.randrange(0, 6)
            tif = TIF.IOC if r < 0.55 else TIF.FOK
            next_id += 1
        elif r < 0.60:  # market, now and then larger than the whole book side
            kind, qty = MARKET, q * (1 if rng.random() < 0.9 else 40)
            next_id += 1
        elif r < 0.84:  # cancel
            kind = CANCEL
            live = pick_live() if rng.random() < 0.9 else None
            oid = live if live is not None else pick_stale()
        elif r < 0.97:  # modify: keep price (qty down or up) or reprice
            kind = MODIFY
            live = pick_live() if rng.random() < 0.9 else None
            oid = live if live is not None else pick_stale()
            if live is not None and rng.random() < 0.5:
                qty = max(1, oracle.get(live)[2] - rng.randrange(0, 3))  # often in place
            price = 0 if rng.random() < 0.6 else mid + rng.randrange(-8, 9)
        else:  # invalid
            price = mid
            next_id += 1
            bad = rng.randrange(7)
            if bad == 0:
                qty = rng.choice((0, -1))
            elif bad == 1:
                price = rng.choice((0, -5))
            elif bad == 2:
                side = 2
            elif bad == 3:
                tif = 3
            elif bad == 4:
                oid = pick_live() or 1  # a resting id: DUPLICATE_ORDER_ID
            elif bad == 5:
                kind, qty = MODIFY, rng.choice((0, -3))
                oid = pick_live() or 1
            else:
                kind, qty = MARKET, 0
        ts = 1_700_000_000_000_000_000 + i * 1_000
        rows.append((kind, oid, side, price, qty, tif, owner, post, ts))
        apply_per_call(oracle, [rows[-1]])
    cmds = np.zeros(n, dtype=COMMAND_DTYPE)
    for name, column in zip(_COMMAND_FIELDS, zip(*rows)):
        cmds[name] = column
    return cmds


_COMMAND_FIELDS = ("kind", "order_id", "side", "price", "qty", "tif", "owner", "post_only",
                   "ts_ns")


def apply_per_call(book, cmds) -> list:
    """Apply commands (a COMMAND_DTYPE array or tuples in ``_COMMAND_FIELDS`` order) through the
    per-call API; return each call's result or ("rejected", reason)."""
    results = []
    if isinstance(cmds, np.ndarray):
        cmds = zip(*[cmds[name].tolist() for name in _COMMAND_FIELDS])
    for kind, oid, side, price, qty, tif, owner, post_only, ts in cmds:
        try:
            if kind == SUBMIT:
                r = book.submit(oid, side, price, qty, tif, owner=owner, post_only=bool(post_only),
                                ts_ns=ts)
            elif kind == MARKET:
                r = book.submit_market(oid, side, qty, owner=owner, ts_ns=ts)
            elif kind == CANCEL:
                r = book.cancel(oid, owner=owner, ts_ns=ts)
            elif kind == MODIFY:
                r = book.modify(oid, qty, price or None, owner=owner, ts_ns=ts)
            else:
                raise AssertionError(f"no per-call method for command kind {kind}")
        except OrderRejected as exc:
            r = ("rejected", int(exc.reason))
        results.append(r)
    return results


def assert_books_equal(a, b, labels):
    assert len(a) == len(b), f"{labels}: len {len(a)} != {len(b)}"
    (ab, aa), (bb, ba) = a.depth(1_000_000), b.depth(1_000_000)
    assert ab.tolist() == bb.tolist(), f"{labels}: bid depth differs"
    assert aa.tolist() == ba.tolist(), f"{labels}: ask depth differs"
    assert a.best_bid() == b.best_bid() and a.best_ask() == b.best_ask()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("stp,seed", [(STP.CANCEL_RESTING, 20240501), (STP.CANCEL_BOTH, 7)])
def test_random_session_three_paths_zero_divergence(stp, seed):
    cmds = generate_session(N_COMMANDS, seed, stp)
    per_call, batch, ref = OrderBook(stp=stp), OrderBook(stp=stp), ReferenceBook(stp=stp)
    ev_a, ev_b, ev_c = [], [], []
    n_results = 0
    for start in range(0, len(cmds), CHECKPOINT):
        chunk = cmds[start:start + CHECKPOINT]
        res_a = apply_per_call(per_call, chunk)
        ev_b.append(batch.process(chunk))
        res_c = apply_per_call(ref, chunk)
        for i, (x, y) in enumerate(zip(res_a, res_c)):
            assert x == y and type(x) is type(y), (
                f"command {start + i} {chunk[i]}: compiled returned {x!r}, reference {y!r}")
        n_results += len(res_a)
        ev_a.append(per_call.events())
        ev_c.append(ref.events())
        assert_events_equal(ev_a[-1], ev_b[-1], labels=("per-call", "process"),
                            context=f"commands {start}..{start + len(chunk)}: ")
        assert_events_equal(ev_a[-1], ev_c[-1], labels=("compiled", "reference"),
                            context=f"commands {start}..{start + len(chunk)}: ")
        for book in (per_call, batch, ref):
            book.check_invariants()
        assert_books_equal(per_call, ref, "per-call vs reference")
        assert_books_equal(per_call, batch, "per-call vs process")

    assert n_results == len(cmds)
    events = np.concatenate(ev_a)
    assert_events_equal(events, np.concatenate(ev_b), labels=("per-call", "process"))
    assert_events_equal(events, np.concatenate(ev_c), labels=("compiled", "reference"))
    # The session really exercised the book: every event kind and the main reasons occur.
    kinds = set(events["kind"].tolist())
    assert kinds == {int(k) for k in EventKind}, kinds
    reasons = set(events["reason"].tolist())
    for reason in (Reason.IOC_REMAINDER, Reason.FOK_NOT_FILLABLE, Reason.MARKET_REMAINDER,
                   Reason.SELF_TRADE, Reason.POST_ONLY_WOULD_CROSS, Reason.ORDER_NOT_FOUND,
                   Reason.DUPLICATE_ORDER_ID, Reason.INVALID_QTY, Reason.INVALID_PRICE,
                   Reason.INVALID_SIDE, Reason.INVALID_TIF, Reason.CANCEL_REQUESTED):
        assert int(reason) in reasons, reason.name
    n_fills = int((events["kind"] == EventKind.FILL).sum())
    assert n_fills > N_COMMANDS // 10, n_fills
    assert len(per_call) > 50  # a real standing book at the end, not an empty one


@pytest.mark.parametrize("stp,seed", [(STP.CANCEL_RESTING, 11), (STP.CANCEL_BOTH, 12)])
def test_process_on_big_book_equals_per_call_and_reference(stp, seed):
    # From 32,768 resting orders on, process() runs in chunks and times its two loops (one
    # reads eight commands ahead, through the index, the order, its level and a reprice's
    # price map) to keep the faster one: both loops run in every batch of 1,024 or more
    # commands, and neither may change a result. A deep book of 40k orders far from the
    # session's mid, then the random session and cancels and reprices of the deep orders.
    rng = np.random.default_rng(seed)
    deep = np.zeros(40_000, COMMAND_DTYPE)
    deep["kind"] = SUBMIT
    deep["order_id"] = np.arange(10**12, 10**12 + len(deep))
    deep["side"] = rng.integers(0, 2, len(deep))
    deep["price"] = np.where(deep["side"] == 0, rng.integers(1, 5_000, len(deep)),
                             rng.integers(20_000, 60_000, len(deep)))
    deep["qty"] = rng.integers(1, 50, len(deep))
    deep["owner"] = rng.integers(0, 3, len(deep))
    touch = generate_session(12_000, seed, stp)
    pick = rng.choice(deep["order_id"], 6_000, replace=False)
    spread = np.zeros(len(pick), COMMAND_DTYPE)
    spread["order_id"] = pick
    spread["kind"] = np.where(rng.random(len(pick)) < 0.5, CANCEL, MODIFY)
    spread["qty"] = rng.integers(1, 60, len(pick))
    spread["price"] = np.where(rng.random(len(pick)) < 0.5, 0, rng.integers(1, 5_000, len(pick)))
    per_call, batch, ref = OrderBook(stp=stp), OrderBook(stp=stp), ReferenceBook(stp=stp)
    for cmds in (deep, touch, spread, touch[:0]):
        for start in range(0, len(cmds), 4_000):
            chunk = cmds[start:start + 4_000]
            res_a = apply_per_call(per_call, chunk)
            got = batch.process(chunk)
            assert res_a == apply_per_call(ref, chunk)
            want = per_call.events()
            assert_events_equal(want, got, labels=("per-call", "process"),
                                context=f"commands {start}..{start + len(chunk)}: ")
            assert_events_equal(want, ref.events(), labels=("compiled", "reference"))
        batch.check_invariants()
        assert_books_equal(per_call, batch, "per-call vs process")
        assert_books_equal(per_call, ref, "per-call vs reference")
        assert batch.state_hash() == per_call.state_hash()
        assert len(batch) > 32_768


def _cmd(kind, oid, side=0, price=0, qty=0, tif=0, owner=0, post_only=0, ts_ns=0):
    return (kind, oid, side, price, qty, tif, owner, post_only, ts_ns)


SMALL_BATCH = [
    _cmd(SUBMIT, 1, 1, 101, 5, owner=1, ts_ns=10),
    _cmd(SUBMIT, 2, 1, 102, 5, owner=2, ts_ns=11),
    _cmd(SUBMIT, 3, 0, 0, 5, ts_ns=12),                 # INVALID_PRICE
    _cmd(SUBMIT, 4, 0, 101, 0, ts_ns=13),               # INVALID_QTY
    _cmd(SUBMIT, 5, 2, 101, 1, ts_ns=14),               # INVALID_SIDE
    _cmd(SUBMIT, 6, 0, 101, 1, tif=3, ts_ns=15),        # INVALID_TIF
    _cmd(SUBMIT, 1, 0, 101, 1, ts_ns=16),               # DUPLICATE_ORDER_ID
    _cmd(SUBMIT, 7, 0, 101, 1, post_only=1, ts_ns=17),  # POST_ONLY_WOULD_CROSS
    _cmd(9, 8, 1, 100, 3, owner=4, ts_ns=18),           # unknown kind: INVALID_COMMAND
    _cmd(SUBMIT, 9, 0, 102, 7, tif=TIF.IOC, owner=3, ts_ns=19),
    _cmd(CANCEL, 1, ts_ns=20),                          # filled: ORDER_NOT_FOUND
    _cmd(MODIFY, 2, qty=9, price=103, ts_ns=21),
    _cmd(MODIFY, 2, qty=-1, ts_ns=22),                  # INVALID_QTY
    _cmd(MODIFY, 2, qty=1, price=-4, ts_ns=23),         # INVALID_PRICE
    _cmd(MARKET, 10, 0, 0, 4, owner=1, ts_ns=24),
    _cmd(MARKET, 11, 3, 0, 4, ts_ns=25),                # INVALID_SIDE
    _cmd(SUBMIT, 12, 0, 50, 2, tif=TIF.FOK, ts_ns=26),
    _cmd(CANCEL, 2, ts_ns=27),
]


def _small_batch_array():
    cmds = np.zeros(len(SMALL_BATCH), dtype=COMMAND_DTYPE)
    for name, column in zip(_COMMAND_FIELDS, zip(*SMALL_BATCH)):
        cmds[name] = column
    return cmds


def test_process_small_batch_with_invalid_commands_equals_per_call(book_cls):
    cmds = _small_batch_array()
    per_call = book_cls()
    apply_per_call(per_call, cmds[cmds["kind"] <= MODIFY])
    expected = per_call.events()
    batch = book_cls()
    batch.submit(1000, 0, 1, 1)  # a pending per-call event that process() must leave alone
    out = batch.process(cmds)
    pending = batch.events()
    assert event_dicts(pending) == [ev(EventKind.ACCEPTED, 1000, side=0, price=1, qty=1)]
    batch.cancel(1000)
    batch.events()

    rows = event_dicts(out)
    invalid = [r for r in rows if r["reason"] == Reason.INVALID_COMMAND]
    # the unknown kind is REJECTED with the command's fields, and the batch went on
    assert invalid == [ev(EventKind.REJECTED, 8, side=1, price=100, qty=3, owner=4,
                          reason=Reason.INVALID_COMMAND, ts_ns=18)]
    without_invalid = out[out["reason"] != Reason.INVALID_COMMAND]
    assert_events_equal(without_invalid, expected, labels=("process", "per-call"))
    reasons = [r["reason"] for r in rows if r["kind"] == EventKind.REJECTED]
    assert reasons == [Reason.INVALID_PRICE, Reason.INVALID_QTY, Reason.INVALID_SIDE,
                       Reason.INVALID_TIF, Reason.DUPLICATE_ORDER_ID,
                       Reason.POST_ONLY_WOULD_CROSS, Reason.INVALID_COMMAND,
                       Reason.ORDER_NOT_FOUND, Reason.INVALID_QTY, Reason.INVALID_PRICE,
                       Reason.INVALID_SIDE]
    assert rows[-1]["kind"] == EventKind.CANCELLED and rows[-1]["ts_ns"] == 27
    assert len(batch) == len(per_call) == 0
    batch.check_invariants()


def test_process_empty_batch_returns_empty_events(book_cls):
    out = book_cls().process(np.zeros(0, dtype=COMMAND_DTYPE))
    assert len(out) == 0 and out.dtype == EVENT_DTYPE


def test_process_wrong_dtype_raises_type_error(book_cls):
    with pytest.raises(TypeError):
        book_cls().process(np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize("shape", [(2, 4), (4, 2), (1, 8), (2, 2, 2)])
def test_process_multi_dimensional_commands_raise_and_change_nothing(book_cls, shape):
    # A 2-D batch once ran only its first axis's worth of records in the compiled book (2 of 8
    # for shape (2, 4)) while the reference ran all of them; both now refuse it before any
    # command, with or without out=.
    cmds = np.zeros(8, dtype=COMMAND_DTYPE)
    cmds["order_id"] = np.arange(1, 9)
    cmds["side"] = [0, 1] * 4
    cmds["price"] = [100, 110] * 4
    cmds["qty"] = 5
    book = book_cls()
    book.submit(100, 0, 90, 3)
    pending = book.events()
    for out in (None, np.zeros(64, dtype=EVENT_DTYPE)):
        with pytest.raises(ValueError, match="1-D array of commands"):
            book.process(cmds.reshape(shape), out=out)
    assert len(book) == 1 and book.get(100) is not None and len(book.events()) == 0
    bids, asks = book.depth(5)
    assert bids.tolist() == [[90, 3]] and len(asks) == 0 and len(pending) == 1
    assert len(book.process(cmds)) == 8      # the same records as a 1-D batch run in full


def _four_cmds():
    cmds = np.zeros(4, dtype=COMMAND_DTYPE)
    cmds["order_id"] = [1, 2, 3, 4]
    cmds["side"] = [0, 1, 0, 1]
    cmds["price"] = [100, 100, 99, 101]
    cmds["qty"] = [5, 3, 2, 1]
    return cmds


@pytest.mark.parametrize("make", [lambda c: c[0], lambda c: c[:1].reshape(())],
                         ids=["np.void", "0-d"])
def test_process_zero_dimensional_commands_raise_and_change_nothing(book_cls, make):
    # ascontiguousarray turned a 0-d array or a single record into a 1-element batch, which
    # ran, where the documented contract is a 1-D array.
    book = book_cls()
    for out in (None, np.zeros(8, dtype=EVENT_DTYPE)):
        with pytest.raises(ValueError, match="1-D array of commands"):
            book.process(make(_four_cmds()), out=out)
    assert len(book) == 0 and len(book.events()) == 0


def test_process_strided_and_unaligned_commands_run_as_their_copy(book_cls):
    cmds = _four_cmds()
    raw = np.zeros(cmds.nbytes + 1, dtype=np.uint8)
    raw[1:] = cmds.view(np.uint8)
    unaligned = raw[1:].view(COMMAND_DTYPE)
    assert unaligned.__array_interface__["data"][0] % 8 != 0
    two = np.repeat(cmds, 2)[::2]
    assert not two.flags.c_contiguous
    want = book_cls().process(cmds)
    for view in (unaligned, two):
        assert book_cls().process(view).tobytes() == want.tobytes()


def test_process_out_sharing_memory_with_commands_raises_before_any_command(book_cls):
    # Events written over the commands not yet run silently changed the batch.
    cmds = _four_cmds()
    book = book_cls()
    for out in (cmds.view(np.uint8)[:192].view(EVENT_DTYPE),
                cmds.view(np.uint8)[64:128].view(EVENT_DTYPE)):
        with pytest.raises(ValueError, match="share memory"):
            book.process(cmds, out=out)
    assert len(book) == 0 and len(book.events()) == 0
    assert cmds.tobytes() == _four_cmds().tobytes()
    apart = np.zeros(8, dtype=EVENT_DTYPE)
    assert book.process(cmds, out=apart).tobytes() == book_cls().process(cmds).tobytes()


def _strided_and_unaligned_cmds_with_out_over_them():
    # a strided view and an unaligned one of the commands (both copied before they run), each
    # with an out= array over the same bytes
    raw = np.zeros(48 * 16, np.uint8)
    strided = raw.view(COMMAND_DTYPE)[::2][:4]
    strided[:] = _four_cmds()
    raw2 = np.zeros(64 * 16 + 8, np.uint8)
    unaligned = raw2[4:4 + 48 * 4].view(COMMAND_DTYPE)
    unaligned[:] = _four_cmds()
    return [(strided, raw.view(EVENT_DTYPE)), (unaligned, raw2[8:8 + 64 * 8].view(EVENT_DTYPE))]


def test_process_out_sharing_memory_with_copied_commands_raises_as_reference(book_cls):
    # The compiled book compared out= with its aligned contiguous copy of a strided or unaligned
    # batch, not with the caller's array: it took an out= over the caller's commands (the
    # reference model refuses it) and wrote the events over them.
    for cmds, out in _strided_and_unaligned_cmds_with_out_over_them():
        book = book_cls()
        with pytest.raises(ValueError, match="share memory"):
            book.process(cmds, out=out)
        assert len(book) == 0 and len(book.events()) == 0
        assert cmds.tobytes() == _four_cmds().tobytes()


def test_process_compiled_equals_reference_on_session_prefix():
    """process() of both books on a 20k-command prefix (the reference's own batch path)."""
    for stp in STP:
        cmds = generate_session(20_000, 99, stp)
        a = OrderBook(stp=stp).process(cmds)
        b = ReferenceBook(stp=stp).process(cmds)
        assert_events_equal(a, b, labels=("compiled", "reference"), context=f"{stp.name}: ")


@pytest.mark.parametrize("width", [3, 200, 2000])
def test_process_compiled_equals_reference_across_price_widths(width):
    """Prices up to ``width`` ticks from a fixed mid: from a handful of deep levels to hundreds of
    sparse ones (levels that empty and come back, ladders that grow and shrink), checked level
    by level."""
    rng = np.random.default_rng(width)
    n = 20_000
    cmds = np.zeros(n, dtype=COMMAND_DTYPE)
    cmds["kind"] = rng.choice([SUBMIT, MARKET, CANCEL, MODIFY], size=n, p=[0.5, 0.03, 0.25, 0.22])
    cmds["ts_ns"] = np.arange(n)
    cmds["side"] = rng.integers(0, 2, n)
    # passive: buys below 10_000, sells above; 10% on the wrong side of the mid (they cross)
    sign = np.where(cmds["side"] == 0, -1, 1) * np.where(rng.random(n) < 0.1, -1, 1)
    cmds["price"] = 10_000 + sign * rng.integers(0, width + 1, n)
    cmds["qty"] = rng.integers(1, 30, n)
    cmds["tif"] = rng.choice([0, 0, 0, 1, 2], n)
    cmds["owner"] = rng.integers(0, 3, n)
    cmds["post_only"] = rng.random(n) < 0.1
    new = np.isin(cmds["kind"], [SUBMIT, MARKET])
    cmds["order_id"][new] = np.flatnonzero(new)
    # cancels/modifies target one of the last 500 order ids issued before them
    issued = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    old = ~new
    cmds["order_id"][old] = np.maximum(0, issued[old] - rng.integers(0, 500, old.sum()))
    keep_price = old & (rng.random(n) < 0.5)
    cmds["price"][keep_price] = 0
    for stp in STP:
        a, b = OrderBook(stp=stp, capacity=1), ReferenceBook(stp=stp)
        for start in range(0, n, 2_000):
            chunk = cmds[start:start + 2_000]
            assert_events_equal(a.process(chunk), b.process(chunk), labels=("compiled", "reference"),
                                context=f"{stp.name} width {width} commands {start}..: ")
            a.check_invariants()
            b.check_invariants()
            assert_books_equal(a, b, f"{stp.name} width {width}")
            bids, asks = b.depth(1_000_000)
            for side, rows in ((0, bids), (1, asks)):
                for price, _ in rows.tolist():
                    assert a.level(side, price) == b.level(side, price), (side, price)
