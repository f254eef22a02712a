"""The multi-symbol Engine: symbol routing, one order-id space, per-symbol limits, the same
events from the per-call methods, process() and the C table."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import matchcore as mc
from matchcore import _capi
from matchcore._core import COMMAND_DTYPE, EVENT_DTYPE
from matchcore._engine import Engine
from conftest import assert_events_equal
from test_capi import random_commands

R = mc.Reason
K = mc.EventKind


def big_book_commands(n_symbols, seed):
    """45,000 deep orders over n_symbols books far from the flow's prices (more than the 32,768
    resting orders from which batch loops cut big batches into timed chunks), then a random
    flow near the touch and cancels and reprices of deep orders."""
    rng = np.random.default_rng(seed)
    n_deep = 45_000
    deep = np.zeros(n_deep, COMMAND_DTYPE)
    deep["kind"] = int(mc.CommandKind.SUBMIT)
    deep["symbol"] = rng.integers(0, n_symbols, n_deep)
    deep["order_id"] = np.arange(10**12, 10**12 + n_deep)
    deep["side"] = rng.integers(0, 2, n_deep)
    deep["price"] = np.where(deep["side"] == 0, rng.integers(1, 60, n_deep),
                             rng.integers(150, 400, n_deep))
    deep["qty"] = rng.integers(1, 50, n_deep)
    flow = random_commands(6000, seed, n_symbols=n_symbols, price_lo=88, price_hi=112)
    pick = rng.choice(n_deep, 5000, replace=False)
    spread = deep[pick].copy()
    spread["kind"] = np.where(rng.random(len(pick)) < 0.5, int(mc.CommandKind.CANCEL),
                              int(mc.CommandKind.MODIFY))
    spread["qty"] = rng.integers(1, 60, len(pick))
    spread["price"] = np.where(rng.random(len(pick)) < 0.5, 0, rng.integers(1, 60, len(pick)))
    return np.concatenate([deep, flow, spread])


def apply_engine_command(eng: Engine, row) -> None:
    """One COMMAND_DTYPE row (as a tuple) through the Engine's per-call method for its kind;
    a rejection is left to the events."""
    ts, oid, price, qty, owner, sym, kind, side, tif, post = row
    try:
        if kind == 0:
            eng.submit(sym, oid, side, price, qty, tif, owner=owner, post_only=bool(post),
                       ts_ns=ts)
        elif kind == 1:
            eng.submit_market(sym, oid, side, qty, owner=owner, ts_ns=ts)
        elif kind == 2:
            eng.cancel(oid, symbol=sym, owner=owner, ts_ns=ts)
        else:
            eng.modify(oid, qty, price or None, symbol=sym, owner=owner, ts_ns=ts)
    except mc.OrderRejected:
        pass


def run_engine_calls(eng: Engine, cmds: np.ndarray) -> np.ndarray:
    """Apply commands through the Engine's per-call methods; returns every event."""
    out = []
    for row in cmds.tolist():
        apply_engine_command(eng, row)
        out.append(eng.events())
    return np.concatenate(out) if out else np.zeros(0, EVENT_DTYPE)


def make_engine(n_symbols=3, limits=True, **kw) -> Engine:
    eng = Engine(**kw)
    for s in range(n_symbols):
        lim = dict(tick=1 + s, max_qty=18, max_notional=1900, min_price=94,
                   ref_price=100, band=9) if limits else {}
        eng.add_symbol(s, f"S{s}", **lim)
    return eng


def reject(events):
    return [(int(e["order_id"]), R(int(e["reason"])).name, int(e["symbol"]))
            for e in events if e["kind"] == K.REJECTED]


# ---- same events from every entry point ----

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_engine_random_session_calls_and_process_identical(seed):
    cmds = random_commands(2000, seed, n_symbols=3, unknown_symbol=True, price_lo=88,
                           price_hi=112)
    a, b = make_engine(), make_engine()
    ev_calls = run_engine_calls(a, cmds)
    ev_batch = b.process(cmds)
    assert_events_equal(ev_batch, ev_calls, labels=("process()", "per-call"))
    assert a.state_hash() == b.state_hash()
    a.check_invariants()
    # the limits and the unknown symbol actually fired
    reasons = set(ev_calls["reason"][ev_calls["kind"] == K.REJECTED].tolist())
    for r in (R.UNKNOWN_SYMBOL, R.PRICE_NOT_ON_TICK, R.PRICE_OUTSIDE_BAND, R.QTY_ABOVE_MAX):
        assert int(r) in reasons, r.name


@pytest.mark.parametrize("n_symbols,seed", [(1, 21), (2, 22), (3, 23)])
def test_engine_process_on_big_books_equals_small_batches(n_symbols, seed):
    # From 32,768 resting orders across its books, an engine's batch of 64 commands or more
    # runs in parts, each timed in one of two loops (one also reads eight commands ahead
    # through the books): results must not depend on the loop. The same commands in batches of
    # 32 run the simple loop only; with and without out=. Deep books far from the flow's prices,
    # then the flow and cancels and reprices of the deep orders.
    cmds = big_book_commands(n_symbols, seed)
    engines = []
    for _ in range(3):
        eng = Engine()
        for s in range(n_symbols):
            eng.add_symbol(s)
        engines.append(eng)
    big, small, big_out = engines
    out = np.zeros(700, EVENT_DTYPE)              # spills to the engine's buffer
    ev_big, ev_small, ev_out = [], [], []
    for start in range(0, len(cmds), 4000):
        part = cmds[start:start + 4000]
        ev_big.append(big.process(part))
        ev_small.append(np.concatenate([small.process(part[i:i + 32])
                                        for i in range(0, len(part), 32)]))
        ev_out.append(big_out.process(part, out=out).copy())
    assert sum(len(big.book(s)) for s in range(n_symbols)) > 32_768
    want = np.concatenate(ev_small)
    assert_events_equal(np.concatenate(ev_big), want, labels=("big batches", "batches of 32"))
    assert_events_equal(np.concatenate(ev_out), want, labels=("big batches, out=",
                                                              "batches of 32"))
    assert big.state_hash() == small.state_hash() == big_out.state_hash()
    big.check_invariants()


@pytest.mark.parametrize("seed, stp", [(4, mc.STP.CANCEL_RESTING), (5, mc.STP.CANCEL_RESTING),
                                       (6, mc.STP.CANCEL_TAKER), (7, mc.STP.CANCEL_BOTH),
                                       (8, mc.STP.NONE)])
def test_engine_without_limits_equals_one_book_per_symbol(seed, stp):
    # Under every self-trade mode: a GTC order that a self-trade stop cancels leaves the engine
    # an id entry that is stale from the start, and later commands naming it must still be
    # routed as the symbol's own book answers them.
    cmds = random_commands(2400, seed, n_symbols=3)
    eng = make_engine(limits=False, stp=stp)
    ev = eng.process(cmds)
    if stp != mc.STP.NONE:
        assert (ev["reason"] == R.SELF_TRADE).any()
    for s in range(3):
        book = mc.OrderBook(stp)
        expect = book.process(cmds[cmds["symbol"] == s])
        got = ev[ev["symbol"] == s].copy()
        got["symbol"] = 0
        assert_events_equal(got, expect, labels=(f"engine symbol {s}", "own book"))
        assert eng.book(s).state_hash() == book.state_hash()
    assert len(eng) == sum(len(eng.book(s)) for s in range(3))


def test_engine_c_table_matches_process():
    a = _capi.c_api_addresses()
    f, i64, u64, u32, i32, p = (ctypes.CFUNCTYPE, ctypes.c_int64, ctypes.c_uint64,
                                ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p)
    set_time = f(None, p, i64)(a["engine_set_time"])
    submit = f(i64, p, u32, u64, i32, i64, i64, i32, u64, i32)(a["engine_submit"])
    market = f(i64, p, u32, u64, i32, i64, u64)(a["engine_market"])
    cancel = f(i64, p, u32, u64)(a["engine_cancel"])
    modify = f(i64, p, u32, u64, i64, i64)(a["engine_modify"])
    pending = f(i64, p)(a["engine_pending_events"])
    drain = f(i64, p, p, i64)(a["engine_drain_events"])
    process = f(i64, p, p, i64)(a["engine_process"])
    state_hash = f(u64, p)(a["engine_state_hash"])
    cmds = random_commands(1500, 7, n_symbols=3, unknown_symbol=True)
    eng = make_engine()
    e = eng.address
    for ts, oid, price, qty, owner, sym, kind, side, tif, post in cmds.tolist():
        set_time(e, ts)
        if kind == 0:
            submit(e, sym, oid, side, price, qty, tif, owner, post)
        elif kind == 1:
            market(e, sym, oid, side, qty, owner)
        elif kind == 2:
            cancel(e, sym, oid)
        else:
            modify(e, sym, oid, qty, price)
    n = pending(e)
    got = np.zeros(n, EVENT_DTYPE)
    assert drain(e, got.ctypes.data, n) == n
    ref = make_engine()
    assert_events_equal(got, ref.process(cmds), labels=("C engine calls", "process()"))
    assert state_hash(e) == ref.state_hash() == eng.state_hash()
    other = make_engine()
    assert process(other.address, cmds.ctypes.data, len(cmds)) == len(cmds)
    assert other.state_hash() == ref.state_hash()


# ---- one order-id space ----

def test_engine_id_resting_in_other_symbol_is_duplicate():
    eng = make_engine(limits=False)
    eng.submit(0, 42, 0, 100, 5)
    with pytest.raises(mc.OrderRejected) as info:
        eng.submit(1, 42, 1, 200, 5)
    assert info.value.reason == R.DUPLICATE_ORDER_ID
    with pytest.raises(mc.OrderRejected):
        eng.submit_market(2, 42, 1, 5)
    assert reject(eng.events()) == [(42, "DUPLICATE_ORDER_ID", 1), (42, "DUPLICATE_ORDER_ID", 2)]
    eng.cancel(42)
    eng.submit(1, 42, 1, 200, 5)  # free again once it left
    assert eng.get(42) == (1, 1, 200, 5)


def test_engine_cancel_and_modify_find_the_book_by_id():
    eng = make_engine(limits=False)
    eng.submit(2, 7, 1, 103, 5, ts_ns=11)
    assert eng.modify(7, 3, ts_ns=12)
    assert eng.cancel(7, ts_ns=13) == 3
    ev = eng.events()
    assert ev["symbol"].tolist() == [2, 2, 2]
    assert ev["ts_ns"].tolist() == [11, 12, 13]
    assert ev["kind"].tolist() == [K.ACCEPTED, K.MODIFIED, K.CANCELLED]
    assert eng.cancel(7, symbol=1) == 0
    assert not eng.modify(7, 1)
    assert reject(eng.events()) == [(7, "ORDER_NOT_FOUND", 1), (7, "ORDER_NOT_FOUND", 0)]


def _engine_with_7_traded_away(limits):
    # order 7 filled in book 2 (the engine's entry for it there is stale); 9 rests in book 1
    eng = make_engine(limits=limits)
    eng.submit(2, 7, 1, 102, 5, ts_ns=1)
    eng.submit(2, 8, 0, 102, 5, ts_ns=2)            # takes all of 7
    eng.submit(1, 9, 1, 100, 5, ts_ns=3)
    eng.events()
    return eng


def test_engine_cancel_of_an_order_that_traded_away_echoes_the_commands_symbol():
    # The id's index entry still names book 2 after its order filled there (entries go stale):
    # the reject must be the one for an id that rests nowhere, whatever book the entry names,
    # through the per-call method and through process() alike.
    def run(use_process):
        eng = _engine_with_7_traded_away(limits=False)
        if use_process:
            cmds = np.zeros(3, COMMAND_DTYPE)
            cmds[0] = (4, 7, 0, 0, 0, 1, 2, 0, 0, 0)    # cancel 7, symbol 1
            cmds[1] = (5, 7, 0, 0, 0, 3, 2, 0, 0, 0)    # again, symbol 3 (unknown)
            cmds[2] = (6, 9, 0, 0, 0, 0, 2, 0, 0, 0)    # 9 rests in book 1
            ev = eng.process(cmds)
        else:
            assert eng.cancel(7, symbol=1, ts_ns=4) == 0
            assert eng.cancel(7, symbol=3, ts_ns=5) == 0
            assert eng.cancel(9, ts_ns=6) == 5
            ev = eng.events()
        eng.check_invariants()
        return ev, eng

    for use_process in (False, True):
        ev, eng = run(use_process)
        assert reject(ev) == [(7, "ORDER_NOT_FOUND", 1), (7, "ORDER_NOT_FOUND", 3)]
        rej = ev[ev["kind"] == K.REJECTED]
        assert rej["ts_ns"].tolist() == [4, 5]
        for f in ("maker_id", "price", "qty", "owner", "maker_owner", "side"):
            assert not rej[f].any(), f
        assert ev[-1]["kind"] == K.CANCELLED and ev[-1]["symbol"] == 1
        assert len(eng) == 0 and eng.get(7) is None
        eng.submit(1, 7, 0, 99, 1)                    # the id is free for any book
        assert eng.get(7) == (1, 0, 99, 1)


@pytest.mark.parametrize("limits", [False, True])
def test_engine_modify_of_an_order_that_traded_away_echoes_the_commands_symbol(limits):
    # As for cancel: the entry of 7 still names book 2 after its order filled there. Without
    # limits the book itself is asked (and rejects it with its own symbol); either way the
    # reject is the one for an id that rests nowhere, with the command's symbol, and a modify
    # with bad fields is still rejected for them first.
    def run(use_process):
        eng = _engine_with_7_traded_away(limits=limits)
        cmds = np.zeros(5, COMMAND_DTYPE)
        cmds[0] = (4, 7, 101, 3, 0, 1, 3, 0, 0, 0)      # modify 7, symbol 1
        cmds[1] = (5, 7, 0, 2, 0, 3, 3, 0, 0, 0)        # again, symbol 3 (unknown)
        cmds[2] = (6, 7, 0, 0, 0, 4, 3, 0, 0, 0)        # qty 0
        cmds[3] = (7, 7, -1, 2, 0, 5, 3, 0, 0, 0)       # price below 0
        cmds[4] = (8, 9, 100, 4, 0, 0, 3, 0, 0, 0)      # 9 rests in book 1
        if use_process:
            return eng.process(cmds), eng
        for c in cmds:
            apply_engine_command(eng, c)
        return eng.events(), eng

    for use_process in (False, True):
        ev, eng = run(use_process)
        assert reject(ev) == [(7, "ORDER_NOT_FOUND", 1), (7, "ORDER_NOT_FOUND", 3),
                              (7, "INVALID_QTY", 4), (7, "INVALID_PRICE", 5)]
        rej = ev[ev["kind"] == K.REJECTED]
        assert rej["ts_ns"].tolist() == [4, 5, 6, 7]
        assert rej["price"].tolist() == [101, 0, 0, -1] and rej["qty"].tolist() == [3, 2, 0, 2]
        for f in ("maker_id", "owner", "maker_owner", "side"):
            assert not rej[f].any(), f
        assert ev[-1]["kind"] == K.MODIFIED and ev[-1]["symbol"] == 1
        assert eng.get(7) is None and eng.get(9) == (1, 1, 100, 4)
        eng.check_invariants()


@pytest.mark.parametrize("via", ["set_limits", "set_reference_price"])
def test_engine_limits_set_later_then_cleared_apply_only_while_set(via):
    # a symbol added without limits gets some later: a reprice and a new order are then
    # checked, and not again once they are cleared
    eng = Engine()
    eng.add_symbol(0)
    eng.submit(0, 1, 0, 100, 8)
    assert eng.modify(1, 8, 120)
    if via == "set_limits":
        eng.set_limits(0, tick=5)
    else:
        eng.set_limits(0, band=10)
        eng.set_reference_price(0, 100)
    with pytest.raises(mc.OrderRejected) as info:
        eng.modify(1, 8, 133)
    assert info.value.reason == (R.PRICE_NOT_ON_TICK if via == "set_limits"
                                 else R.PRICE_OUTSIDE_BAND)
    cmds = np.zeros(2, COMMAND_DTYPE)
    cmds[0] = (0, 1, 133, 8, 0, 0, 3, 0, 0, 0)          # modify 1 to 133
    cmds[1] = (0, 2, 133, 1, 0, 0, 0, 1, 0, 0)          # sell 1 at 133
    assert reject(eng.process(cmds)) == [(1, info.value.reason.name, 0),
                                         (2, info.value.reason.name, 0)]
    if via == "set_limits":
        eng.set_limits(0, tick=1)
    else:
        eng.set_reference_price(0, 0)
    assert eng.modify(1, 8, 133)
    assert eng.get(1) == (0, 0, 133, 8)
    assert eng.submit(0, 2, 1, 133, 1) == 1


def test_engine_process_symbol_added_after_a_batch_named_it_is_routed():
    # a batch whose last command names an unknown symbol, then add_symbol: the next batch
    # finds its book
    eng = Engine()
    eng.add_symbol(1)
    cmds = np.zeros(2, COMMAND_DTYPE)
    cmds[0] = (0, 2, 100, 5, 0, 1, 0, 0, 0, 0)
    cmds[1] = (0, 1, 100, 5, 0, 7, 0, 0, 0, 0)
    assert reject(eng.process(cmds)) == [(1, "UNKNOWN_SYMBOL", 7)]
    eng.add_symbol(7)
    ev = eng.process(cmds[1:])
    assert ev["kind"].tolist() == [K.ACCEPTED] and ev["symbol"].tolist() == [7]
    assert eng.get(1) == (7, 0, 100, 5) and eng.get(2) == (1, 0, 100, 5)


def test_engine_gtc_taker_stopped_by_self_trade_is_routed_nowhere():
    # The taker trades part of its qty, then meets its owner's own order and is cancelled: it
    # does not rest, whatever the engine noted for its id on the way.
    for via_process in (False, True):
        eng = make_engine(limits=False, stp=mc.STP.CANCEL_TAKER)
        eng.submit(1, 1, 1, 100, 2, owner=5)
        eng.submit(1, 2, 1, 101, 4, owner=9)           # the taker's own order, behind the first
        if via_process:
            cmds = np.zeros(1, COMMAND_DTYPE)
            cmds[0] = (0, 3, 101, 5, 9, 1, 0, 0, 0, 0)
            ev = eng.process(cmds)
        else:
            assert eng.submit(1, 3, 0, 101, 5, owner=9) == 2
            ev = eng.events()
        assert [(K(int(e["kind"])).name, int(e["order_id"])) for e in ev][-2:] == [
            ("FILL", 3), ("EXPIRED", 3)]
        assert ev[-1]["reason"] == R.SELF_TRADE and ev[-1]["qty"] == 3
        assert eng.get(3) is None and len(eng) == 1
        assert eng.cancel(3, symbol=2) == 0
        assert reject(eng.events()) == [(3, "ORDER_NOT_FOUND", 2)]
        assert eng.modify(3, 1, symbol=0) is False
        eng.submit(2, 3, 0, 99, 1)                     # the id is free for any symbol
        assert eng.get(3) == (2, 0, 99, 1)
        assert eng.cancel(3) == 1 and eng.cancel(2) == 4
        eng.check_invariants()


def test_engine_many_orders_cycling_keeps_routing_exact():
    # Ids come and go far beyond the index's first size: stale entries must be reclaimed
    # without losing a live one.
    eng = make_engine(n_symbols=4, limits=False)
    live = {}
    rng = np.random.default_rng(0)
    for oid in range(1, 30001):
        sym = int(rng.integers(4))
        eng.submit(sym, oid, 0, 100 + sym, 1)
        live[oid] = sym
        if oid % 3:
            victim = int(rng.choice(list(live))) if len(live) < 50 else oid - 40
            if victim in live:
                assert eng.cancel(victim) == 1
                del live[victim]
    eng.events()
    assert len(eng) == len(live)
    for oid, sym in list(live.items())[:: max(1, len(live) // 500)]:
        assert eng.get(oid) == (sym, 0, 100 + sym, 1)
    eng.check_invariants()


@pytest.mark.parametrize("how", ["as_is", "pickled", "copied", "engine_process"])
def test_engine_second_symbol_routes_the_first_books_resting_orders(how):
    # An engine of one symbol keeps no id routing of its own: its book's index answers. Adding
    # a second symbol builds the routing from the first book's resting orders, whichever way
    # the engine came to hold them: they are found by id, cancelled and modified in their book,
    # and their ids are duplicates in the new symbol; ids that have left are free again.
    import copy
    import pickle
    eng = Engine()
    eng.add_symbol(1, "ONE")
    for oid in range(1, 401):
        side = oid % 2
        eng.submit(1, oid, side, 90 + oid % 10 if side == 0 else 101 + oid % 10, 1 + oid % 3)
    for oid in range(1, 101):
        eng.cancel(oid)
    eng.submit_market(1, 1000, 0, 5)                   # fills asks: their ids leave too
    eng.events()
    gone = [oid for oid in range(1, 401) if eng.get(oid) is None]
    assert len(gone) > 100
    if how == "pickled":
        eng = pickle.loads(pickle.dumps(eng))
    elif how == "copied":
        eng = copy.deepcopy(eng)
    resting = [oid for oid in range(1, 401) if eng.get(oid) is not None]
    if how == "engine_process":
        cmds = np.zeros(1, COMMAND_DTYPE)
        cmds["symbol"], cmds["order_id"], cmds["price"], cmds["qty"] = 2, 5000, 50, 1
        eng.add_symbol(2, "TWO")
        eng.process(cmds)
    else:
        eng.add_symbol(2, "TWO")
    eng.check_invariants()
    assert [oid for oid in range(1, 401) if eng.get(oid) is not None] == resting
    with pytest.raises(mc.OrderRejected) as exc:
        eng.submit(2, resting[0], 0, 50, 1)
    assert exc.value.reason == R.DUPLICATE_ORDER_ID
    with pytest.raises(mc.OrderRejected) as exc:
        eng.submit_market(2, resting[1], 0, 1)
    assert exc.value.reason == R.DUPLICATE_ORDER_ID
    assert eng.submit(2, gone[0], 0, 50, 2) == 0      # a gone id is free in any symbol
    assert eng.get(gone[0]) == (2, 0, 50, 2)
    open_qty = eng.get(resting[2])[3]
    assert eng.cancel(resting[2]) == open_qty
    assert eng.get(resting[2]) is None and eng.book(1).get(resting[2]) is None
    assert eng.modify(resting[3], 9) is True
    assert eng.get(resting[3])[0] == 1 and eng.get(resting[3])[3] == 9
    assert eng.cancel(gone[1], symbol=2) == 0
    assert reject(eng.events())[-1] == (gone[1], "ORDER_NOT_FOUND", 2)
    eng.check_invariants()


def test_engine_one_symbol_rejects_as_a_routed_engine_does():
    # Without routing (one symbol) the book decides what the routing decided: the same events,
    # the echoed symbol of an id that rests nowhere included, with and without limits.
    cmds = random_commands(1500, 11, price_lo=90, price_hi=110)
    cmds["symbol"] = 0
    idle = np.zeros(0, COMMAND_DTYPE)
    for limits in ({}, dict(tick=2, max_qty=12, band=6, ref_price=100)):
        one, routed = Engine(), Engine()
        one.add_symbol(0, **limits)
        routed.add_symbol(0, **limits)
        routed.add_symbol(1)                          # routed, and never named by the flow
        routed.process(idle)
        stray = cmds.copy()
        stray["symbol"][stray["kind"] >= 2] = 7       # cancels/modifies echo a symbol of theirs
        assert_events_equal(one.process(stray), routed.process(stray),
                            labels=("one symbol", "two symbols"))
        assert one.book(0).state_hash() == routed.book(0).state_hash()
        one.check_invariants()
        routed.check_invariants()


# ---- per-symbol limits ----

@pytest.mark.parametrize("args, reason", [
    ((1, 101, 1), R.PRICE_NOT_ON_TICK),
    ((1, 80, 1), R.PRICE_OUTSIDE_BAND),          # below min_price
    ((1, 130, 1), R.PRICE_OUTSIDE_BAND),         # above ref + band
    ((1, 100, 19), R.QTY_ABOVE_MAX),
    ((1, 106, 18), R.NOTIONAL_ABOVE_MAX),        # 1908 > 1900
    ((9, 100, 1), R.UNKNOWN_SYMBOL),
    ((1, 100, 0), R.INVALID_QTY),                # the book's own checks come first
    ((1, 101, 0), R.INVALID_QTY),
])
def test_engine_limit_rejects_name_reason_and_change_nothing(args, reason):
    eng = Engine()
    eng.add_symbol(1, tick=2, min_price=90, ref_price=100, band=20, max_qty=18,
                   max_notional=1900)
    h = eng.state_hash()
    sym, price, qty = args
    with pytest.raises(mc.OrderRejected) as info:
        eng.submit(sym, 5, 0, price, qty, ts_ns=3, owner=4)
    assert info.value.reason == reason
    ev = eng.events()
    assert len(ev) == 1 and ev["kind"][0] == K.REJECTED
    assert (int(ev["symbol"][0]), int(ev["price"][0]), int(ev["qty"][0]), int(ev["owner"][0]),
            int(ev["ts_ns"][0])) == (sym, price, qty, 4, 3)
    assert eng.state_hash() == h and len(eng) == 0


def test_engine_limit_check_order_tick_band_qty_notional_then_duplicate():
    eng = Engine()
    eng.add_symbol(0, tick=5, max_price=200, max_qty=10, max_notional=500)
    eng.submit(0, 1, 0, 50, 1)
    eng.add_symbol(1)
    for (sym, price, qty), reason in [((0, 203, 11), R.PRICE_NOT_ON_TICK),
                                      ((0, 205, 11), R.PRICE_OUTSIDE_BAND),
                                      ((0, 100, 11), R.QTY_ABOVE_MAX),
                                      ((0, 100, 6), R.NOTIONAL_ABOVE_MAX),
                                      ((0, 100, 5), R.DUPLICATE_ORDER_ID)]:
        with pytest.raises(mc.OrderRejected) as info:
            eng.submit(sym, 1, 0, price, qty)
        assert info.value.reason == reason


def test_engine_notional_limit_does_not_overflow():
    eng = Engine()
    eng.add_symbol(0, max_notional=10**18)
    with pytest.raises(mc.OrderRejected) as info:
        eng.submit(0, 1, 0, 2**40, 2**40)  # price * qty overflows int64
    assert info.value.reason == R.NOTIONAL_ABOVE_MAX


def test_engine_band_follows_reference_price():
    eng = Engine()
    eng.add_symbol(0, ref_price=100, band=5)
    with pytest.raises(mc.OrderRejected):
        eng.submit(0, 1, 0, 110, 1)
    eng.set_reference_price(0, 108)
    eng.submit(0, 1, 0, 110, 1)
    assert eng.limits(0)["ref_price"] == 108


@pytest.mark.parametrize("ref, band", [(2**63 - 6, 10), (100, 2**63 - 1), (2**62, 2**62)])
def test_engine_band_near_int64_limit_accepts_prices_inside_it(ref, band):
    # ref_price + band above 2**63-1 once wrapped negative and refused every price
    eng = Engine()
    eng.add_symbol(0, ref_price=ref, band=band)
    assert eng.submit(0, 1, 0, ref, 1) == 0
    cmds = np.zeros(1, COMMAND_DTYPE)
    cmds[0] = (0, 2, ref, 1, 0, 0, 0, 1, 0, 0)
    assert eng.process(cmds)["kind"].tolist() == [K.ACCEPTED, K.FILL]
    if ref - band > 1:
        with pytest.raises(mc.OrderRejected) as info:
            eng.submit(0, 3, 0, ref - band - 1, 1)
        assert info.value.reason == R.PRICE_OUTSIDE_BAND
    if ref + band < 2**63 - 1:
        with pytest.raises(mc.OrderRejected) as info:
            eng.submit(0, 4, 0, ref + band + 1, 1)
        assert info.value.reason == R.PRICE_OUTSIDE_BAND
    assert len(eng) == 0


def test_engine_market_checks_max_qty_only():
    eng = Engine()
    eng.add_symbol(0, max_qty=5, max_notional=7, tick=7)    # limit orders: qty 1 at 7 only
    with pytest.raises(mc.OrderRejected) as info:
        eng.submit_market(0, 1, 0, 6)
    assert info.value.reason == R.QTY_ABOVE_MAX
    assert eng.submit_market(0, 2, 0, 5) == 0  # no liquidity: expires, no limit reject
    assert eng.events()["reason"].tolist()[-1] == R.MARKET_REMAINDER


# ---- limits that together accept no limit order ----

LIMIT_NAMES = ("tick", "min_price", "max_price", "ref_price", "band", "max_qty", "max_notional")
NO_LIMITS = dict(tick=1, min_price=0, max_price=0, ref_price=0, band=0, max_qty=0, max_notional=0)


def _accepts(lim: dict, price: int) -> bool:
    """Whether a limit order of qty 1 at ``price`` passes the limits: the checks of the hot
    path (``_limits`` in _engine.pyx), written out per price."""
    if lim["tick"] > 1 and price % lim["tick"]:
        return False
    if (lim["min_price"] and price < lim["min_price"]) or (lim["max_price"]
                                                           and price > lim["max_price"]):
        return False
    if lim["band"] and lim["ref_price"] and abs(price - lim["ref_price"]) > lim["band"]:
        return False
    return not (lim["max_notional"] and price > lim["max_notional"])


CONTRADICTORY_LIMITS = [
    (dict(min_price=101, max_price=100), r"min_price 101 > max_price 100"),
    (dict(ref_price=100, band=5, max_price=90), r"band ref_price 100 \+- band 5 = \[95, 105\]"),
    (dict(ref_price=100, band=5, min_price=110), r"band ref_price 100 \+- band 5"),
    (dict(tick=10, min_price=11, max_price=19), r"no multiple of tick 10 .*\[11, 19\]"),
    (dict(tick=10, ref_price=15, band=4), r"no multiple of tick 10 .*\[11, 19\]"),
    (dict(min_price=100, max_notional=99), r"max_notional 99 < 100"),
    (dict(ref_price=100, band=10, max_notional=89), r"max_notional 89 < 90"),
    (dict(tick=7, max_notional=6), r"no multiple of tick 7 .*max_notional"),
]


@pytest.mark.parametrize("limits, match", CONTRADICTORY_LIMITS)
def test_engine_add_symbol_limits_accepting_no_order_raise_and_add_nothing(limits, match):
    eng = Engine()
    eng.add_symbol(1, "A", tick=5)
    before = (eng.state_hash(), eng.symbols, eng.limits(1))
    with pytest.raises(ValueError, match=match):
        eng.add_symbol(2, "B", **limits)
    assert (eng.state_hash(), eng.symbols, eng.limits(1)) == before
    assert not any(_accepts(dict(NO_LIMITS, **limits), p) for p in range(1, 400))
    eng.add_symbol(2, "B")                          # the id and the name are still free


@pytest.mark.parametrize("limits, match", CONTRADICTORY_LIMITS)
def test_engine_set_limits_merged_limits_accepting_no_order_raise_and_change_nothing(limits,
                                                                                      match):
    # the limits given apart, one call each: the last call makes the contradiction with the
    # ones set before it, which set_limits keeps
    eng = Engine()
    eng.add_symbol(1)
    *first, last = limits.items()
    for key, value in first:
        eng.set_limits(1, **{key: value})
    eng.submit(1, 1, 0, 1, 1) if _accepts(eng.limits(1), 1) else None
    before = (eng.state_hash(), eng.limits(1), len(eng))
    with pytest.raises(ValueError, match=match):
        eng.set_limits(1, **dict([last]))
    assert (eng.state_hash(), eng.limits(1), len(eng)) == before


def test_engine_set_limits_merged_result_decides_not_each_value():
    # a new band both below the old one is fine when given in one call
    eng = Engine()
    eng.add_symbol(1, min_price=90, max_price=110)
    with pytest.raises(ValueError, match="min_price 90 > max_price 60"):
        eng.set_limits(1, max_price=60)
    eng.set_limits(1, min_price=50, max_price=60)
    assert eng.submit(1, 1, 0, 55, 1) == 0
    # 0 disables one: the other side of the band alone never contradicts
    eng.set_limits(1, max_price=0, min_price=200)
    assert eng.limits(1)["min_price"] == 200 and eng.limits(1)["max_price"] == 0
    # a band without a reference price, or a reference price without a band, is inactive
    eng.add_symbol(2, band=5, min_price=90, max_price=110)
    assert eng.submit(2, 2, 0, 100, 1) == 0
    eng.add_symbol(3, ref_price=500, max_price=110)
    assert eng.submit(3, 3, 0, 100, 1) == 0


def test_engine_set_reference_price_band_accepting_no_order_raises_and_changes_nothing():
    eng = Engine()
    eng.add_symbol(1, tick=5, min_price=90, max_price=110, band=1, ref_price=100)
    before = (eng.state_hash(), eng.limits(1))
    with pytest.raises(ValueError, match=r"band ref_price 200 \+- band 1 .* lies outside"):
        eng.set_reference_price(1, 200)
    with pytest.raises(ValueError, match=r"no multiple of tick 5 .*\[97, 99\]"):
        eng.set_reference_price(1, 98)
    assert (eng.state_hash(), eng.limits(1)) == before
    eng.set_reference_price(1, 104)                # [103, 105] holds 105
    eng.set_reference_price(1, 0)                  # 0 disables the band: always accepted
    assert eng.limits(1)["ref_price"] == 0


@pytest.mark.parametrize("key", LIMIT_NAMES)
def test_engine_limit_outside_int64_or_negative_raises_naming_it(key):
    eng = Engine()
    eng.add_symbol(1)
    with pytest.raises(OverflowError, match=rf"{key} must be below 2\*\*63 .* got {2**63}"):
        eng.set_limits(1, **{key: 2**63})
    with pytest.raises(ValueError, match=rf"{key} must be >= {int(key == 'tick')}.* got -1"):
        eng.set_limits(1, **{key: -1})
    with pytest.raises(OverflowError, match=key):
        eng.add_symbol(2, **{key: 2**64})
    assert eng.limits(1) == NO_LIMITS and list(eng.symbols) == [1]


_limit_value = st.one_of(st.integers(0, 40), st.integers(-2, 300),
                         st.sampled_from([2**63 - 1, 2**63, -(2**63), 1.5, 2.0, "3", None]))
_limit_dict = st.dictionaries(st.sampled_from(LIMIT_NAMES + ("tickk",)), _limit_value,
                              max_size=4)


def _valid(value) -> bool:
    return type(value) is int and 0 <= value < 2**63


@settings(max_examples=300, deadline=None)
@given(st.lists(_limit_dict, min_size=1, max_size=6), st.booleans())
def test_engine_random_limits_apply_exactly_or_raise_and_change_nothing(calls, via_add):
    # Each call either sets exactly the limits given (the others kept) or raises and changes
    # nothing; it raises for limits that together accept no order, and only for those (or for
    # a bad value).
    eng = Engine()
    if not via_add:
        eng.add_symbol(0)
    expected = dict(NO_LIMITS)
    for k, limits in enumerate(calls):
        merged = dict(expected, **{key: v for key, v in limits.items() if key in expected})
        sound = (all(_valid(v) for v in limits.values()) and "tickk" not in limits
                 and merged["tick"] >= 1)
        small = sound and all(v <= 300 for v in merged.values())
        before = (eng.state_hash(), eng.symbols)
        try:
            if via_add:
                eng.add_symbol(k, **limits)
            else:
                eng.set_limits(0, **limits)
        except (TypeError, ValueError, OverflowError):
            assert (eng.state_hash(), eng.symbols) == before
            assert not small or not any(_accepts(merged, p) for p in range(1, 1300))
            if via_add:
                assert k not in eng.symbols
            continue
        assert sound
        if via_add:
            merged = dict(NO_LIMITS, **limits)
            assert eng.limits(k) == merged
        else:
            assert eng.limits(0) == merged
            expected = merged
        if small:
            # values up to 300: every price that can pass is below 1300
            assert any(_accepts(merged, p) for p in range(1, 1300))


def test_engine_modify_reentry_checked_shrink_always_allowed():
    eng = Engine()
    eng.add_symbol(3, tick=5, max_qty=10, ref_price=100, band=10)
    eng.submit(3, 1, 0, 100, 8, owner=6)
    eng.set_reference_price(3, 200)        # the resting order is now outside the band
    assert eng.modify(1, 4)                # shrinking in place passes
    with pytest.raises(mc.OrderRejected) as info:
        eng.modify(1, 6)                   # larger qty re-enters: band applies
    assert info.value.reason == R.PRICE_OUTSIDE_BAND
    with pytest.raises(mc.OrderRejected) as info:
        eng.modify(1, 4, 203)
    assert info.value.reason == R.PRICE_NOT_ON_TICK
    ev = eng.events()
    last = ev[-1]
    assert (int(last["side"]), int(last["owner"]), int(last["symbol"])) == (0, 6, 3)
    assert eng.get(1) == (3, 0, 100, 4)


# ---- owner filter, record_events, symbols ----

def test_engine_events_owner_filter_across_symbols():
    eng = make_engine(limits=False)
    eng.submit(0, 1, 1, 100, 5, owner=7)
    eng.submit(1, 2, 1, 100, 5, owner=8)
    eng.submit(1, 3, 0, 100, 2, owner=7)   # 7 takes from 8
    eng.submit(0, 4, 0, 100, 1, owner=9)   # 9 takes from 7
    ev = eng.events(owner=7)
    assert [(int(k), int(s)) for k, s in zip(ev["kind"], ev["symbol"])] == [
        (K.ACCEPTED, 0), (K.ACCEPTED, 1), (K.FILL, 1), (K.FILL, 0)]
    assert len(eng.events()) == 0


def test_events_owner_zero_gets_only_events_of_orders_without_owner():
    # maker_owner is 0 outside fills: the filter must not read it there, or owner 0 (no owner)
    # would take in every other participant's events
    book = mc.OrderBook()
    eng = make_engine(limits=False)
    for place in (lambda *a, **k: book.submit(*a, **k), lambda *a, **k: eng.submit(0, *a, **k)):
        place(1, 1, 100, 5, owner=7)
        place(2, 0, 99, 5)                    # no owner
        place(3, 0, 100, 2)                   # no owner, takes from 7
    for src in (book, eng):
        ev = src.events(owner=0)
        assert ev["order_id"].tolist() == [2, 3, 3] and (ev["owner"] == 0).all()
        assert ev["kind"].tolist() == [K.ACCEPTED, K.ACCEPTED, K.FILL]


def test_engine_record_events_false_keeps_nothing_but_process_returns_events():
    eng = Engine(record_events=False)
    eng.add_symbol(0)
    eng.submit(0, 1, 0, 100, 1)
    assert len(eng.events()) == 0
    cmds = np.zeros(1, COMMAND_DTYPE)
    cmds[0] = (5, 2, 100, 1, 0, 0, 0, 1, 0, 0)
    assert eng.process(cmds)["kind"].tolist() == [K.ACCEPTED, K.FILL]


def test_engine_process_invalid_kind_and_bad_dtype():
    eng = make_engine(limits=False)
    cmds = np.zeros(1, COMMAND_DTYPE)
    cmds[0] = (5, 2, 100, 1, 0, 1, 9, 1, 0, 0)
    ev = eng.process(cmds)
    assert reject(ev) == [(2, "INVALID_COMMAND", 1)]
    with pytest.raises(TypeError):
        eng.process(np.zeros(3, np.int64))


def test_engine_process_multi_dimensional_commands_raise_and_change_nothing():
    # the engine's loop reads shape[0] records: a 2-D batch is refused, not cut short
    eng = make_engine(limits=False)
    cmds = np.zeros(8, COMMAND_DTYPE)
    cmds["order_id"] = np.arange(1, 9)
    cmds["price"] = 100 + np.arange(8)
    cmds["qty"] = 5
    for out in (None, np.zeros(64, EVENT_DTYPE)):
        with pytest.raises(ValueError, match="1-D array of commands"):
            eng.process(cmds.reshape(2, 4), out=out)
    assert len(eng) == 0 and len(eng.events()) == 0
    assert len(eng.process(cmds)) == 8


def test_engine_process_zero_dimensional_or_overlapping_out_raise_and_change_nothing():
    eng = make_engine(limits=False)
    cmds = np.zeros(4, COMMAND_DTYPE)
    cmds["order_id"] = np.arange(1, 5)
    cmds["price"] = 100 + np.arange(4)
    cmds["qty"] = 5
    for bad in (cmds[0], cmds[:1].reshape(())):
        with pytest.raises(ValueError, match="1-D array of commands"):
            eng.process(bad)
    with pytest.raises(ValueError, match="share memory"):
        eng.process(cmds, out=cmds.view(np.uint8)[:128].view(EVENT_DTYPE))
    assert len(eng) == 0 and len(eng.events()) == 0
    assert len(eng.process(cmds[::2])) == 2          # strided: run as its copy


# ---- process(out=): a caller-owned buffer reused across calls ----

@pytest.mark.parametrize("size", [0, 1, 50, 400, 5000])
def test_engine_process_out_same_events_as_without(size):
    # a view of the buffer when the batch's events fit, a new array with all of them when not;
    # either way the same events, and the per-call events pending before the batch stay pending
    cmds = random_commands(1500, 7, n_symbols=3, unknown_symbol=True, price_lo=88,
                           price_hi=112)
    a, b = make_engine(), make_engine()
    for eng in (a, b):
        eng.submit(0, 999_999, 0, 94, 1)
    buf = np.zeros(size, EVENT_DTYPE)
    got_all = []
    expected_all = []
    for lo in range(0, len(cmds), 300):
        expected = a.process(cmds[lo:lo + 300])
        got = b.process(cmds[lo:lo + 300], out=buf)
        assert np.shares_memory(got, buf) == (0 < len(expected) <= size)
        assert_events_equal(got, expected, labels=("process(out=)", "process()"))
        got_all.append(got.copy())
        expected_all.append(expected)
    assert sum(map(len, expected_all)) > 1500
    assert a.state_hash() == b.state_hash()
    assert [int(k) for k in b.events()["kind"]] == [K.ACCEPTED]


@pytest.mark.parametrize("room", ["exact", "one_short", "half", "first_block", "none"])
def test_engine_process_out_runs_short_at_any_block(room):
    # process(out=) moves the events into the buffer block by block: wherever the buffer runs
    # short (in the first block, the last, or not at all), the result holds every event once,
    # in order, and the engine's state is the same as without out=.
    cmds = random_commands(2000, 11, n_symbols=3, unknown_symbol=True, price_lo=88,
                           price_hi=112)
    a, b = make_engine(), make_engine()
    expected = a.process(cmds)
    size = {"exact": len(expected), "one_short": len(expected) - 1, "half": len(expected) // 2,
            "first_block": 40, "none": 0}[room]
    buf = np.zeros(size, EVENT_DTYPE)
    got = b.process(cmds, out=buf)
    assert_events_equal(got, expected, labels=("process(out=)", "process()"))
    assert np.shares_memory(got, buf) == (room == "exact")
    assert a.state_hash() == b.state_hash()
    assert len(b.events()) == 0


@pytest.mark.parametrize("sweep_at", [0, 1000, 2047])
def test_engine_process_large_batch_without_out_sweep_beyond_its_array(sweep_at):
    # A batch of 2,048 commands or more gets its result array made up front (two events a
    # command) and filled block by block; a sweep of 5,000 makers overruns it wherever it comes,
    # and every event still comes back once, in order, as from small batches.
    def engine():
        eng = make_engine(n_symbols=1, limits=False)
        for i in range(5000):
            eng.submit(0, 10_000 + i, 1, 100 + i, 1)
        eng.events()
        return eng

    cmds = np.zeros(2048, COMMAND_DTYPE)
    cmds["kind"] = 2                                   # cancels of ids that rest nowhere
    cmds["order_id"] = np.arange(1, 2049)
    cmds[sweep_at] = (7, 99_999, 0, 5000, 3, 0, 1, 0, 0, 0)    # market buy of every ask
    big, small = engine(), engine()
    got = big.process(cmds)
    expected = np.concatenate([small.process(cmds[i:i + 500]) for i in range(0, 2048, 500)])
    assert len(got) == len(expected) > 2 * len(cmds) + 64
    assert_events_equal(got, expected, labels=("one batch", "batches of 500"))
    assert big.state_hash() == small.state_hash() and len(big) == 0


def test_engine_process_out_record_events_false():
    eng = Engine(record_events=False)
    eng.add_symbol(0)
    cmds = np.zeros(2, COMMAND_DTYPE)
    cmds[0] = (5, 1, 100, 3, 0, 0, 0, 1, 0, 0)
    cmds[1] = (6, 2, 100, 1, 0, 0, 0, 0, 0, 0)
    buf = np.zeros(8, EVENT_DTYPE)
    ev = eng.process(cmds, out=buf)
    assert np.shares_memory(ev, buf)
    assert ev["kind"].tolist() == [K.ACCEPTED, K.ACCEPTED, K.FILL]
    assert len(eng.events()) == 0


# ---- process(out=) writes into the caller's array while an operation's bound fits ----
# Every order is given room for the events it can write before it runs (one per lot, at most one
# per resting order); where the caller's array has less left, the rest of that block of 128
# commands runs in the engine's own buffer and its events are moved over at the block's end, if
# they fit.

def _resting_engine(n_resting, **kw):
    # one symbol, n_resting asks far above the bids the flow uses, one event pending
    eng = Engine(**kw)
    eng.add_symbol(0, capacity=n_resting + 4096)
    for i in range(n_resting):
        eng.submit(0, 10**6 + i, 1, 500 + i % 50, 1 + i % 7)
    eng.events()
    eng.submit(0, 999_999, 0, 10, 1)
    return eng


def _misses(n, first_id=1):
    # cancels of ids that rest nowhere: one REJECTED event each, room for one asked
    cmds = np.zeros(n, COMMAND_DTYPE)
    cmds["kind"] = 2
    cmds["order_id"] = np.arange(first_id, first_id + n)
    return cmds


def _reprices(n, rng):
    # modifies of resting asks, on their own side, to more lots than the book has orders (bound:
    # one event per resting order)
    cmds = np.zeros(n, COMMAND_DTYPE)
    cmds["kind"] = 3
    cmds["order_id"] = 10**6 + rng.integers(0, 200, n)
    cmds["price"] = rng.integers(500, 560, n)
    cmds["qty"] = 10**6 + rng.integers(1, 9, n)
    return cmds


def test_engine_process_out_short_of_bound_mid_block_then_direct_again_returns_view():
    # block 1: 128 misses written straight into out; block 2 starts with a reprice whose bound
    # (201 resting + 4) does not fit in what is left (300 - 128): the block goes to the engine's
    # buffer and is moved over (256 <= 300); block 3's misses are written straight in again
    a, b = _resting_engine(200), _resting_engine(200)
    rng = np.random.default_rng(5)
    cmds = np.concatenate([_misses(128), _reprices(1, rng), _misses(127, 1000), _misses(40, 2000)])
    expected = a.process(cmds)
    buf = np.zeros(300, EVENT_DTYPE)
    got = b.process(cmds, out=buf)
    assert len(expected) == 296
    assert np.shares_memory(got, buf) and got.ctypes.data == buf.ctypes.data
    assert_events_equal(got, expected, labels=("process(out=)", "process()"))
    assert a.state_hash() == b.state_hash()
    assert b.events()["order_id"].tolist() == [999_999]


@pytest.mark.parametrize("room", ["exact", "slack", "one_short", "half", "last_block_short"])
def test_engine_process_out_bound_beyond_room_every_event_once_in_order(room):
    # 600 resting orders and a flow of reprices and misses: near the end of out (and, below 600,
    # from the first reprice on) blocks run in the engine's buffer; whatever the room, the result
    # is every event once, in order, a view of out exactly when they all fit, and the per-call
    # event pending before the batch stays pending
    rng = np.random.default_rng(7)
    parts = []
    for j in range(12):
        parts.append(_reprices(int(rng.integers(1, 90)), rng))
        parts.append(_misses(int(rng.integers(1, 90)), 10_000 * (j + 1)))
    cmds = np.concatenate(parts)
    a, b = _resting_engine(600), _resting_engine(600)
    expected = a.process(cmds)
    k = len(expected)
    size = {"exact": k, "slack": k + 3, "one_short": k - 1, "half": k // 2,
            "last_block_short": k - 5}[room]
    buf = np.zeros(size, EVENT_DTYPE)
    got = b.process(cmds, out=buf)
    assert_events_equal(got, expected, labels=("process(out=)", "process()"))
    assert np.shares_memory(got, buf) == (k <= size)
    assert a.state_hash() == b.state_hash()
    assert b.events()["order_id"].tolist() == [999_999]


@pytest.mark.parametrize("record_events", [True, False])
def test_engine_process_out_deep_book_bound_never_fits_returns_view(record_events):
    # 3,000 resting orders against an out of 2,500: no reprice's bound ever fits, every block
    # from the first on runs in the engine's buffer and is moved over; the caller's array is
    # never grown or freed
    rng = np.random.default_rng(9)
    cmds = np.concatenate([_reprices(700, rng), _misses(300), random_commands(900, 4)])
    a = _resting_engine(3000, record_events=record_events)
    b = _resting_engine(3000, record_events=record_events)
    expected = a.process(cmds)
    buf = np.zeros(2500, EVENT_DTYPE)
    for _ in range(2):
        got = b.process(cmds, out=buf)
        assert np.shares_memory(got, buf) == (len(expected) <= len(buf))
    assert 1900 < len(expected) <= len(buf)
    assert_events_equal(got, a.process(cmds), labels=("process(out=)", "process()"))
    assert a.state_hash() == b.state_hash()
    assert len(b.events()) == (1 if record_events else 0)


@pytest.mark.parametrize("stp", list(mc.STP))
@pytest.mark.parametrize("seed", [1, 2])
def test_engine_process_out_deep_book_small_orders_equal_calls_and_own_book(stp, seed):
    # 4,000 resting orders, an out of 1,000 and orders of at most 30 lots: each order's own
    # bound fits where one event per resting order never would, so the books write into out
    # (under cancel-resting STP an order with an owner still asks for the whole book's room). The
    # books start with room for 64 orders and grow while they hold the engine's buffer.
    rng = np.random.default_rng(seed)
    n = 4000
    setup = np.zeros(n, dtype=COMMAND_DTYPE)
    setup["order_id"] = 5_000_000 + np.arange(n)
    setup["side"] = np.arange(n) % 2
    setup["price"] = np.where(setup["side"] == 0, 95 - rng.integers(0, 40, n),
                              105 + rng.integers(0, 40, n))
    setup["qty"] = rng.integers(1, 4, n)
    setup["owner"] = rng.integers(0, 4, n)
    flow = random_commands(3000, seed)
    engines = []
    for _ in range(3):
        eng = Engine(stp=stp)
        eng.add_symbol(0, capacity=64)
        eng.process(setup)
        eng.events()
        engines.append(eng)
    batch, calls, piecewise = engines
    book = mc.OrderBook(stp=stp, capacity=64)
    book.process(setup)
    book.events()
    want = book.process(flow)
    buf = np.zeros(1000, EVENT_DTYPE)
    got = [batch.process(flow[i:i + 300], out=buf).copy() for i in range(0, len(flow), 300)]
    assert_events_equal(np.concatenate(got), want, labels=("engine process(out=)", "own book"))
    assert_events_equal(run_engine_calls(calls, flow), want, labels=("engine per call", "own book"))
    assert_events_equal(piecewise.process(flow), want, labels=("engine process()", "own book"))
    assert len(batch) > len(buf)
    assert (batch.book(0).state_hash() == calls.book(0).state_hash()
            == piecewise.book(0).state_hash() == book.state_hash())
    for eng in engines:
        eng.check_invariants()
        assert len(eng.events()) == 0


def test_engine_process_out_spill_mid_batch_then_per_call_events_unmixed():
    # the batch outgrows out in its middle: a new array with all its events; the events pending
    # before it stay pending, and the next calls' events are theirs alone
    rng = np.random.default_rng(3)
    cmds = np.concatenate([_misses(300), _reprices(300, rng), _misses(300, 5000)])
    a, b = _resting_engine(100), _resting_engine(100)
    expected = a.process(cmds)
    buf = np.zeros(len(expected) // 2, EVENT_DTYPE)
    got = b.process(cmds, out=buf)
    assert not np.shares_memory(got, buf)
    assert_events_equal(got, expected, labels=("process(out=)", "process()"))
    b.cancel(42)
    assert b.events()["order_id"].tolist() == [999_999, 42]
    again = b.process(cmds[:10], out=buf)
    assert np.shares_memory(again, buf) and len(again) == 10


def _read_only_events(n):
    a = np.zeros(n, dtype=EVENT_DTYPE)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("make_bad, exc", [
    (lambda: np.zeros(8, dtype=np.int64), TypeError),
    (lambda: [0] * 8, TypeError),
    (lambda: np.zeros((2, 8), dtype=EVENT_DTYPE), ValueError),
    (lambda: np.zeros(16, dtype=EVENT_DTYPE)[::2], ValueError),
    (lambda: _read_only_events(16), ValueError),
])
def test_engine_process_out_bad_buffer_raises_engine_unchanged(make_bad, exc):
    cmds = random_commands(200, 3, n_symbols=2)
    eng = make_engine(limits=False)
    before = eng.state_hash()
    with pytest.raises(exc):
        eng.process(cmds, out=make_bad())
    assert eng.state_hash() == before and len(eng) == 0


def test_engine_symbols_names_and_errors():
    eng = Engine()
    book = eng.add_symbol(5, "ABC", tick=2)
    assert eng.symbols == {5: "ABC"} and eng.symbol_id("ABC") == 5 and eng.book("ABC") is book
    with pytest.raises(ValueError):
        eng.add_symbol(5)
    with pytest.raises(ValueError):
        eng.add_symbol(6, "ABC")
    with pytest.raises(TypeError):
        eng.add_symbol(7, tickk=3)
    with pytest.raises(ValueError):
        eng.add_symbol(8, tick=0)
    with pytest.raises(ValueError):
        eng.add_symbol(2**32)
    assert 7 not in eng.symbols and 8 not in eng.symbols
    with pytest.raises(mc.OrderRejected) as info:
        eng.submit("NOPE", 1, 0, 100, 1)
    assert info.value.reason == R.UNKNOWN_SYMBOL and len(eng.events()) == 0
    with pytest.raises(KeyError):
        eng.set_limits(99, tick=1)
    eng.submit("ABC", 1, 0, 100, 3)
    assert book.level(0, 100) == [(1, 3)]
    assert eng.best_bid("ABC") == (100, 3) and eng.best_ask(5) is None
    assert eng.queue_position(1) == 0
    bids = np.zeros((2, 2), np.int64)
    assert eng.depth_into(5, bids, np.zeros((2, 2), np.int64)) == (1, 0)


@pytest.mark.parametrize("oid", [np.uint64(2**64 - 1), np.int32(7), True])
def test_engine_queue_position_rests_nowhere_key_error_holds_the_int_id(oid):
    # KeyError carried the argument as given (np.uint64(...)), where the books' and the
    # reference model's carry the int id
    eng = Engine()
    eng.add_symbol(1)
    eng.add_symbol(2)
    eng.submit(2, 3, 0, 100, 5)
    with pytest.raises(KeyError) as err:
        eng.queue_position(oid)
    assert type(err.value.args[0]) is int and err.value.args[0] == int(oid)


@pytest.mark.parametrize("name", [b"X", 1, 3.5, ["X"]])
def test_engine_add_symbol_name_not_str_raises_typeerror_adds_nothing(name, tmp_path):
    # str(name) was stored: b"X" became the name "b'X'" (and was journaled so), 1 became "1"
    eng = Engine(journal=tmp_path / "j", fsync="never")
    eng.add_symbol(1, "AAA")
    seq = eng.journal_seq
    with pytest.raises(TypeError, match="symbol name must be a str"):
        eng.add_symbol(2, name)
    assert eng.symbols == {1: "AAA"} and eng.journal_seq == seq
    eng.add_symbol(2, "BBB")            # the id is still free
    eng.close()
    assert Engine.recover(tmp_path / "j").symbols == {1: "AAA", 2: "BBB"}


def test_engine_order_entry_symbol_forms():
    # The symbol of an order: a plain int is read inline, every other form by the general path;
    # both name the same book, and a bad one is refused before the engine is touched.
    import enum

    class Sym(enum.IntEnum):
        XYZ = 4_000_000_000

    eng = Engine()
    eng.add_symbol(4_000_000_000, "XYZ")
    eng.add_symbol(0, "ZERO")
    for i, sym in enumerate([4_000_000_000, np.uint32(4_000_000_000), np.int64(4_000_000_000),
                             Sym.XYZ, "XYZ"]):
        assert eng.submit(sym, 100 + i, 0, 50 + i, 1) == 0
        assert eng.get(100 + i) == (4_000_000_000, 0, 50 + i, 1)
    assert eng.submit(False, 200, 0, 50, 1) == 0 and eng.get(200)[0] == 0
    before = eng.state_hash()
    for bad, exc in [(-1, ValueError), (2**32, ValueError), (2**70, ValueError),
                     (-(2**62), ValueError), ("NOPE", mc.OrderRejected)]:
        with pytest.raises(exc):
            eng.submit(bad, 300, 0, 50, 1)
        with pytest.raises(exc):
            eng.cancel(100, symbol=bad)
    assert eng.state_hash() == before and len(eng) == 6
    with pytest.raises(mc.OrderRejected) as info:
        eng.submit(7, 300, 0, 50, 1)                    # a plain int naming no symbol
    assert info.value.reason == R.UNKNOWN_SYMBOL
    assert eng.cancel(999, symbol=4_000_000_000) == 0
    assert reject(eng.events())[-2:] == [(300, "UNKNOWN_SYMBOL", 7),
                                         (999, "ORDER_NOT_FOUND", 4_000_000_000)]


@pytest.mark.parametrize("stp, owner", [(mc.STP.CANCEL_RESTING, 0), (mc.STP.CANCEL_RESTING, 2),
                                        (mc.STP.CANCEL_TAKER, 2), (mc.STP.NONE, 1)])
def test_engine_deep_book_sweeps_and_self_trades_equal_own_book(stp, owner):
    # A book writes into the event buffer the engine lends it, and checks its room against the
    # order's own bound (the order's lots, or the whole book under cancel-resting STP with an
    # owner). A sweep through thousands of one-lot makers of alternating owners exercises both.
    n = 5000
    setup = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    setup["kind"], setup["side"], setup["qty"] = mc.CommandKind.SUBMIT, 1, 1
    setup["price"] = 101 + np.arange(n) // 4
    setup["order_id"] = 1 + np.arange(n)
    setup["owner"] = 1 + np.arange(n) % 3
    flow = np.zeros(6, dtype=mc.COMMAND_DTYPE)
    flow["kind"] = [mc.CommandKind.MARKET, mc.CommandKind.SUBMIT, mc.CommandKind.MARKET, mc.CommandKind.SUBMIT, mc.CommandKind.MODIFY, mc.CommandKind.CANCEL]
    flow["side"] = [0, 0, 0, 1, 0, 0]
    flow["price"] = [0, 200, 0, 99, 2000, 0]
    flow["qty"] = [1500, 900, 7, 3, 800, 0]
    flow["order_id"] = [n + 1, n + 2, n + 3, n + 4, n + 4, n + 4]
    flow["owner"] = owner
    batch, calls = Engine(stp=stp), Engine(stp=stp)
    for eng in (batch, calls):
        eng.add_symbol(0)
        eng.process(setup)
    book = mc.OrderBook(stp=stp)
    book.process(setup)
    for i in range(len(flow)):
        want = book.process(flow[i:i + 1])
        assert_events_equal(batch.process(flow[i:i + 1]), want, labels=("engine", "own book"))
        assert_events_equal(run_engine_calls(calls, flow[i:i + 1]), want,
                            labels=("engine per call", "own book"))
    assert batch.book(0).state_hash() == calls.book(0).state_hash() == book.state_hash()
    batch.check_invariants()


def _behind_the_engines_back(eng, symbol, enter):
    # Orders entered on a copy of a symbol's book, restored into the engine's book unrouted (as
    # a damaged snapshot could leave them): the engine's own book refuses direct entry.
    side = mc.OrderBook.from_snapshot(eng.book(symbol).snapshot())
    enter(side)
    eng._restore_book(symbol, side.snapshot())


def test_engine_check_invariants_level_total_beyond_int64_passes_and_still_checks_routing():
    # Level totals are 128-bit by design; the engine's walk over its books must not go through
    # depth(), which refuses a total beyond int64.
    eng = Engine()
    eng.add_symbol(1)
    eng.add_symbol(2)
    eng.submit(1, 1, 0, 100, 2**63 - 1)
    eng.submit(1, 2, 0, 100, 10)
    eng.submit(2, 3, 1, 50, 2**63 - 1)
    eng.submit(2, 4, 1, 50, 2**63 - 1)
    assert eng.best_bid(1) == (100, 2**63 + 9)
    eng.check_invariants()
    # the same id entered behind the engine's back
    _behind_the_engines_back(eng, 2, lambda b: b.submit(1, 1, 60, 1))
    with pytest.raises(AssertionError, match="order 1 rests in symbols"):
        eng.check_invariants()


def test_engine_check_invariants_crossed_book_passes_only_when_allowed():
    # A book built with place() (replay mode) can be crossed; an engine holding one (here its
    # pickle, which routes every resting id again) passes only with allow_crossed, which
    # leaves the other checks on.
    import pickle
    eng = Engine()
    eng.add_symbol(1)
    eng.add_symbol(2)
    eng.submit(2, 9, 0, 100, 1)
    _behind_the_engines_back(eng, 1, lambda b: (b.place(1, 1, 100, 5),
                                                b.place(2, 0, 103, 2)))    # bid above the ask
    with pytest.raises(AssertionError, match="resting in symbol 1 is not routed"):
        eng.check_invariants(allow_crossed=True)    # entered behind the engine's back
    twin = pickle.loads(pickle.dumps(eng))
    with pytest.raises(AssertionError, match="crossed: best bid 103 >= best ask 100"):
        twin.check_invariants()
    twin.check_invariants(allow_crossed=True)
    # an id that rests in symbol 2 as well
    _behind_the_engines_back(twin, 1, lambda b: b.place(9, 1, 110, 1))
    with pytest.raises(AssertionError, match="order 9 rest"):
        twin.check_invariants(allow_crossed=True)


def test_engine_level_queries_are_the_symbol_books():
    # level(), level_count() and depth_orders() answer per symbol, as best_bid()/depth() do,
    # with the book's own errors for an unknown side or symbol
    eng = Engine()
    eng.add_symbol(1, "AAA")
    eng.add_symbol(2, "BBB")
    eng.submit(1, 10, 0, 100, 5)
    eng.submit(1, 11, 0, 100, 3)
    eng.submit(1, 12, 0, 99, 1)
    eng.submit(2, 20, 1, 200, 7)
    book = eng.book(1)
    assert eng.level(1, 0, 100) == book.level(0, 100) == [(10, 5), (11, 3)]
    assert eng.level(2, 0, 100) == []
    assert (eng.level_count(1, 0), eng.level_count(1, 1)) == (2, 0)
    assert (eng.level_count(2, 0), eng.level_count("BBB", 1)) == (0, 1)
    bids, asks = eng.depth_orders(1, 5)
    assert bids.tolist() == [[100, 8, 2], [99, 1, 1]] and asks.tolist() == []
    assert [a.tolist() for a in eng.depth_orders(2)] == [[], [[200, 7, 1]]]
    with pytest.raises(ValueError):
        eng.level_count(1, 2)
    with pytest.raises(KeyError):
        eng.level(3, 0, 100)


# ---- differential: process(out=) of any size against every other way in ----

def _shared_id_commands(rng, n, n_symbols, n_ids):
    # ids drawn from one pool across the symbols (and one unknown symbol): an id that traded
    # away in one book is reused in another, so routing entries go stale across books;
    # invalid kinds and fields now and then
    rows = []
    for i in range(n):
        sym = rng.randrange(n_symbols + 1)
        u = rng.random()
        kind = 0 if u < 0.5 else 1 if u < 0.6 else 2 if u < 0.78 else 3
        if rng.random() < 0.01:
            kind = 9
        oid, side = rng.randrange(1, n_ids + 1), rng.randrange(2)
        price, qty = rng.randrange(95, 106), rng.randrange(1, 15)
        tif, owner, post = rng.choice([0] * 7 + [1, 2]), rng.randrange(4), int(rng.random() < .1)
        if kind == 1:
            price, tif, post, qty = 0, 0, 0, rng.randrange(1, 40)
        elif kind == 2:
            price, qty, side, tif, post, owner = 0, 0, 0, 0, 0, 0
        elif kind == 3:
            price = 0 if rng.random() < 0.4 else price
            qty, side, tif, post, owner = rng.randrange(1, 25), 0, 0, 0, 0
        if rng.random() < 0.03:
            qty = rng.choice([0, -1, 10**6])
        rows.append((i + 1, oid, price, qty, owner, sym, kind, side, tif, post))
    cmds = np.zeros(n, COMMAND_DTYPE)
    cmds[:] = rows
    return cmds


_DIFF_LIMITS = [dict(tick=2, max_qty=12, max_notional=1200, min_price=96, ref_price=100, band=4),
                dict(max_qty=13), dict(band=3, ref_price=100)]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_symbols=st.integers(1, 3),
       stp=st.sampled_from(list(mc.STP)), limit_mask=st.integers(0, 7),
       sizes=st.lists(st.sampled_from([0, 1, 2, 3, 5, 17, 128, 4096]), min_size=1, max_size=6),
       n_ids=st.sampled_from([6, 40, 300]))
def test_engine_process_out_any_size_matches_calls_c_table_and_books(seed, n_symbols, stp,
                                                                    limit_mask, sizes, n_ids):
    import random
    rng = random.Random(seed)
    cmds = _shared_id_commands(rng, 600, n_symbols, n_ids)

    def engine():
        eng = Engine(stp)
        for s in range(n_symbols):
            eng.add_symbol(s, **(_DIFF_LIMITS[s] if limit_mask >> s & 1 else {}))
        return eng

    whole = engine().process(cmds)
    # the per-call methods and the C table see no invalid kinds: compare on the others
    valid = cmds[cmds["kind"] <= 3]
    expect = engine().process(valid)
    assert_events_equal(run_engine_calls(engine(), valid), expect, labels=("per-call", "process()"))
    a = _capi.c_api_addresses()
    f, i64, u64, u32, i32, p = (ctypes.CFUNCTYPE, ctypes.c_int64, ctypes.c_uint64,
                                ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p)
    calls = {0: f(i64, p, u32, u64, i32, i64, i64, i32, u64, i32)(a["engine_submit"]),
             1: f(i64, p, u32, u64, i32, i64, u64)(a["engine_market"]),
             2: f(i64, p, u32, u64)(a["engine_cancel"]),
             3: f(i64, p, u32, u64, i64, i64)(a["engine_modify"])}
    set_time = f(None, p, i64)(a["engine_set_time"])
    c_eng = engine()
    h = c_eng.handle
    for ts, oid, price, qty, owner, sym, kind, side, tif, post in valid.tolist():
        set_time(h, ts)
        args = {0: (sym, oid, side, price, qty, tif, owner, post), 1: (sym, oid, side, qty, owner),
                2: (sym, oid), 3: (sym, oid, qty, price)}[kind]
        calls[kind](h, *args)
    assert_events_equal(c_eng.events(), expect, labels=("C table", "process()"))
    # process(out=) in pieces, each with its own out (sizes cycle), one event left pending
    eng = engine()
    eng.cancel(10**9, symbol=1)
    got, i, j = [], 0, 0
    while i < len(cmds):
        m = (7, 1, 128, 129, 300)[j % 5]
        size = sizes[j % len(sizes)]
        pad = np.zeros(size + 2, EVENT_DTYPE)
        pad["ts_ns"] = -7
        res = eng.process(cmds[i:i + m], out=pad[1:size + 1])
        assert pad["ts_ns"][0] == -7 and pad["ts_ns"][-1] == -7     # never beyond out
        assert np.shares_memory(res, pad) == (0 < len(res) <= size)
        got.append(res.copy())
        i, j = i + m, j + 1
    assert_events_equal(np.concatenate(got), whole, labels=("process(out=)", "process()"))
    assert eng.events()["order_id"].tolist() == [10**9]
    eng.check_invariants()
    # one symbol without limits: its own book and the reference model agree
    if not limit_mask & 1:
        mine = cmds[cmds["symbol"] == 0]
        one = Engine(stp)
        one.add_symbol(0)
        ev = one.process(mine, out=np.zeros(sizes[0], EVENT_DTYPE))
        book_ev = mc.OrderBook(stp).process(mine)
        assert_events_equal(ev, book_ev, labels=("engine", "OrderBook"))
        assert_events_equal(book_ev, mc.ReferenceBook(stp).process(mine),
                            labels=("OrderBook", "ReferenceBook"))


def _engine_book_entries(book):
    cmds = np.zeros(1, dtype=COMMAND_DTYPE)
    cmds["order_id"] = 99
    cmds["price"] = 100
    cmds["qty"] = 1
    return {
        "submit": lambda: book.submit(99, 0, 100, 1),
        "submit_market": lambda: book.submit_market(99, 1, 1),
        "cancel": lambda: book.cancel(5),
        "modify": lambda: book.modify(5, 1, 101),
        "place": lambda: book.place(99, 0, 100, 1),
        "reduce": lambda: book.reduce(5, 1),
        "process": lambda: book.process(cmds),
        "process_out": lambda: book.process(cmds, out=np.zeros(8, dtype=EVENT_DTYPE)),
        "clear": lambda: book.clear(),
        "restore": lambda: book.restore(mc.OrderBook().snapshot()),
    }


@pytest.mark.parametrize("made", ["add_symbol", "pickle", "load_snapshot", "recover"])
def test_engine_book_refuses_order_entry_and_changes_nothing(made, tmp_path):
    # An order entered on eng.book(s) would skip the engine's id routing, limits and journal;
    # each entry method raises ReadOnlyBookError before anything changes, on every engine
    # however made, and the queries answer as before.
    import pickle
    from matchcore.durability import load_snapshot
    jdir = tmp_path / "j"
    eng = Engine(journal=str(jdir)) if made == "recover" else Engine()
    eng.add_symbol(1, max_qty=10)
    eng.add_symbol(2)
    eng.submit(1, 5, 0, 100, 3)
    eng.submit(2, 6, 1, 200, 4)
    eng.events()
    if made == "pickle":
        eng = pickle.loads(pickle.dumps(eng))
    elif made == "load_snapshot":
        eng = load_snapshot(eng.snapshot(str(tmp_path / "s.mcs")))[0]
    elif made == "recover":
        eng.close()
        eng = Engine.recover(str(jdir), readonly=True)
    before = eng.state_hash()
    for symbol in (1, 2):
        book = eng.book(symbol)
        for name, call in _engine_book_entries(book).items():
            with pytest.raises(mc.ReadOnlyBookError, match="belongs to an Engine"):
                call()
        assert not book.busy and not eng.busy
    assert eng.state_hash() == before
    assert eng.events().size == 0 and eng.book(1).events().size == 0
    assert eng.book(1).best_bid() == (100, 3) and eng.book(2).depth(1)[1].tolist() == [[200, 4]]
    assert eng.book(1).get(5) == eng.get(5)[1:]
    eng.check_invariants()
    # the engine takes the same order, with its limits
    with pytest.raises(mc.OrderRejected, match="QTY_ABOVE_MAX"):
        eng.submit(1, 99, 0, 100, 11)
    eng.submit(1, 99, 0, 100, 1)
    eng.check_invariants()


def test_engine_unknown_symbol_name_refused_no_event_nothing_journaled(tmp_path):
    OrderRejected, Reason = mc.OrderRejected, mc.Reason
    # a name never added has no id for an event or a journal record: OrderRejected
    # (UNKNOWN_SYMBOL), nothing changed, written or journaled, even for a resting id; an
    # unregistered integer symbol is an id (REJECTED event; cancel still finds the order)
    eng = Engine(journal=tmp_path / "j")
    eng.add_symbol(1, "A")
    eng.submit(1, 3, 0, 100, 5)
    eng.events()
    seq, state = eng.journal_seq, eng.state_hash()
    for call in (lambda: eng.submit("NOPE", 4, 0, 100, 1),
                 lambda: eng.submit_market("NOPE", 4, 0, 1),
                 lambda: eng.cancel(3, symbol="NOPE"),
                 lambda: eng.modify(3, 1, symbol="NOPE")):
        with pytest.raises(OrderRejected, match="unknown symbol name 'NOPE'") as info:
            call()
        assert info.value.reason == Reason.UNKNOWN_SYMBOL
    assert len(eng.events()) == 0 and eng.journal_seq == seq and eng.state_hash() == state
    with pytest.raises(OrderRejected) as info:
        eng.submit(7, 4, 0, 100, 1)
    assert info.value.reason == Reason.UNKNOWN_SYMBOL
    assert [(int(e["kind"]), int(e["symbol"])) for e in eng.events()] == [(4, 7)]
    assert eng.cancel(3, symbol=7) == 5 and eng.get(3) is None
    eng.close()


_RESULT_OOM_SCRIPT = r"""
import resource, sys
import numpy as np
import matchcore as mc
from matchcore._core import COMMAND_DTYPE, EVENT_DTYPE
from matchcore._engine import Engine


def make():
    if sys.argv[1] == "engine":
        e = Engine()
        e.add_symbol(0)
        return e
    return mc.OrderBook()


n = 3_000_000
rng = np.random.default_rng(1)
flow = np.zeros(n, COMMAND_DTYPE)
flow["order_id"] = np.arange(1, n + 1)
flow["side"] = np.arange(n) % 2
flow["price"] = np.where(flow["side"] == 0, 1 + np.arange(n) % 40, 101 + np.arange(n) % 40)
flow["qty"] = 1
c = rng.random(n) < 0.2
flow["kind"][c] = int(mc.CommandKind.CANCEL)
flow["order_id"][c] = rng.integers(1, n, c.sum())
obj = make()
out = np.zeros(1000, EVENT_DTYPE)
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 100 * 2**20, resource.RLIM_INFINITY))
try:
    obj.process(flow, out=out)
    print("returned")
    sys.exit(0)
except MemoryError as ex:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
    msg = str(ex)
assert " after " in msg, msg
done = int(msg.split(" after ")[1].split()[0])
assert not obj.busy
assert len(obj.events()) == 0
obj.check_invariants()
ref = make()
ref.process(flow[:done])
assert ref.state_hash() == obj.state_hash(), done
print("MemoryError", done)
"""


@pytest.mark.parametrize("what", ["engine", "book"])
def test_process_out_of_memory_for_result_says_applied_count_leaves_no_events(what):
    # The commands of a batch all ran, but the array joining the events that did not fit in
    # out= could not be made: numpy's MemoryError came out without the count of commands
    # applied, and the batch's events left in the buffer came back from the next events().
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _RESULT_OOM_SCRIPT, what], capture_output=True,
                       text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stderr
    word, done = r.stdout.split()
    assert word == "MemoryError" and 0 < int(done) < 3_000_000


@pytest.mark.parametrize("limits", [False, True])
def test_engine_cancel_modify_rejects_carry_command_owner_or_order_owner(limits):
    # Unknown id: the command's owner (the only one there is); resting order: its own owner
    # and side. So events(owner=) shows a participant its refused cancels and modifies.
    eng = Engine()
    eng.add_symbol(1)
    if limits:
        eng.set_limits(1, tick=1, max_qty=1000)
    eng.submit(1, 1, 1, 100, 5, owner=7)
    eng.events()
    cmds = np.zeros(5, COMMAND_DTYPE)
    cmds["kind"] = [mc.CommandKind.CANCEL, mc.CommandKind.MODIFY, mc.CommandKind.MODIFY,
                    mc.CommandKind.MODIFY, mc.CommandKind.CANCEL]
    cmds["order_id"] = [9, 9, 9, 1, 1]
    cmds["qty"] = [0, 3, 0, 0, 0]
    cmds["owner"] = 8
    cmds["symbol"] = 1
    ev = eng.process(cmds)
    assert ev[["order_id", "owner", "side", "reason"]].tolist() == [
        (9, 8, 0, int(mc.Reason.ORDER_NOT_FOUND)), (9, 8, 0, int(mc.Reason.ORDER_NOT_FOUND)),
        (9, 8, 0, int(mc.Reason.INVALID_QTY)), (1, 7, 1, int(mc.Reason.INVALID_QTY)),
        (1, 7, 1, int(mc.Reason.CANCEL_REQUESTED))]
    eng.submit(1, 2, 1, 100, 5, owner=7)
    eng.events()
    with pytest.raises(mc.OrderRejected):
        eng.modify(2, 0)
    assert eng.events(owner=7)[["order_id", "side", "reason"]].tolist() == [
        (2, 1, int(mc.Reason.INVALID_QTY))]



@pytest.mark.parametrize("symbol", [2, np.int64(2)])
def test_engine_unknown_symbol_queries_keyerror_same_words_as_limits(symbol):
    # book()/best_bid()/depth() raised KeyError(2), limits()/set_limits() 'unknown symbol 2'
    eng = Engine()
    eng.add_symbol(1, "A")
    want = f"unknown symbol {symbol!r}"
    calls = [lambda: eng.book(symbol), lambda: eng.best_bid(symbol),
             lambda: eng.best_ask(symbol), lambda: eng.depth(symbol, 3),
             lambda: eng.depth_orders(symbol, 3), lambda: eng.level_count(symbol, 0),
             lambda: eng.level(symbol, 0, 100), lambda: eng.symbol_id(symbol),
             lambda: eng.limits(symbol), lambda: eng.set_limits(symbol, tick=1)]
    for call in calls:
        with pytest.raises(KeyError) as err:
            call()
        assert err.value.args == (want,)
    with pytest.raises(KeyError) as err:
        eng.book("B")
    assert err.value.args == ("unknown symbol name 'B'",)
