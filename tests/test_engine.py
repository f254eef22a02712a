"""The multi-symbol Engine: symbol routing, one order-id space, the same events from the per-call
methods, process() and the C table, events by owner, symbols and level queries."""
from __future__ import annotations

import ctypes
import pickle

import numpy as np
import pytest

import matchcore as mc
from matchcore import _capi
from matchcore._core import COMMAND_DTYPE, EVENT_DTYPE
from matchcore._engine import Engine
from conftest import assert_events_equal
from test_capi import random_commands
from engine_checks import (K, R, apply_engine_command, big_book_commands, make_engine, reject,
                           run_engine_calls)



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


_ROUTING_OOM_SCRIPT = r"""
import copy, pickle, resource, sys
import numpy as np
import matchcore as mc


def within(room_mib, call):
    # call() with only room_mib MiB of address space beyond what the child holds now
    vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (vm * 1024 + room_mib * 2**20, resource.RLIM_INFINITY))
    try:
        call()
    except MemoryError as ex:
        return str(ex)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
    raise SystemExit("no MemoryError under the limit")


eng = mc.Engine()
eng.add_symbol(1, "ONE", capacity=300_000)
n = 300_000
cmds = np.zeros(n, mc.COMMAND_DTYPE)
cmds["symbol"], cmds["order_id"], cmds["qty"] = 1, np.arange(1, n + 1), 1
cmds["price"] = 1 + np.arange(n) % 100
eng.process(cmds)
del cmds
before = eng.state_hash()
if sys.argv[1] == "add_symbol":
    # room for a book of capacity 0, not for the routing of 300,000 resting orders (64 MiB)
    print(within(16, lambda: eng.add_symbol(2, "TWO", capacity=0)))
    assert eng.symbols == {1: "ONE"} and eng.state_hash() == before and len(eng) == n
    eng.add_symbol(2, "TWO", capacity=0)
    eng.check_invariants()
    assert eng.symbols == {1: "ONE", 2: "TWO"} and eng.get(n) == (1, 0, 100, 1)
elif sys.argv[1] == "unpickle":
    eng.add_symbol(2, "TWO", capacity=0)
    data = pickle.dumps(eng)
    # room for the books (about 50 MiB), not for their routing (64 MiB more)
    print(within(90, lambda: pickle.loads(data)))
    assert pickle.loads(data).state_hash() == eng.state_hash()
else:
    # a copy or unpickled engine within room for its books and one routing of their orders
    # (about 115 MiB), where the first book's orders were routed twice (about 170 MiB)
    eng.add_symbol(2, "TWO", capacity=0)
    data = pickle.dumps(eng)
    vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (vm * 1024 + 145 * 2**20, resource.RLIM_INFINITY))
    twin = pickle.loads(data) if sys.argv[1] == "unpickle_fits" else copy.deepcopy(eng)
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
    twin.check_invariants()
    assert twin.state_hash() == eng.state_hash() and twin.get(n) == (1, 0, 100, 1)
    print("fits")
"""


@pytest.mark.parametrize("how, said", [
    ("add_symbol", "matchcore: out of memory adding symbol 2 (a second symbol routes the first "
                   "one's 300,000 resting orders by id); the symbol was not added"),
    ("unpickle", "matchcore: out of memory routing the 300,000 resting orders of 2 symbols by id"),
])
def test_engine_id_routing_out_of_memory_says_so(how, said):
    # The second symbol routes the first one's resting orders by id, and unpickling (a copy,
    # a snapshot's load) routes every book's; memory running out there raised a bare
    # MemoryError() with no message at all. It says what ran out now; add_symbol adds nothing,
    # and the same call succeeds once the memory is there.
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _ROUTING_OOM_SCRIPT, how], capture_output=True,
                       text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == said, r.stdout


@pytest.mark.parametrize("how", ["unpickle_fits", "copy_fits"])
def test_engine_copy_routes_its_orders_once(how):
    # Unpickling and copying route every book's resting orders once all the books are in;
    # the second book also routed the first one's as it came in, so those were routed twice
    # and two routing tables held at once: unpickling an engine of 300,000 resting orders
    # took about 170 MiB beyond what the process held, where about 115 do now.
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _ROUTING_OOM_SCRIPT, how], capture_output=True,
                       text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "fits", r.stdout + r.stderr


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


def test_engine_str_subclass_name_is_kept_as_its_text(tmp_path):
    # a str subclass name was stored as str(name): a (str, Enum) member became "Sym.AAA" (and
    # was journaled so), a name no lookup with the member, or with its text, could find
    import enum

    class Sym(str, enum.Enum):
        AAA = "AAA"

    eng = Engine(journal=tmp_path / "j", fsync="never")
    eng.add_symbol(1, Sym.AAA)
    assert eng.symbols == {1: "AAA"} and type(eng.symbols[1]) is str
    assert eng.symbol_id(Sym.AAA) == eng.symbol_id("AAA") == 1
    assert eng.submit(Sym.AAA, 10, 0, 100, 3) == 0 and eng.get(10) == (1, 0, 100, 3)
    with pytest.raises(ValueError, match="symbol name 'AAA' already exists"):
        eng.add_symbol(2, "AAA")
    twin = Engine()
    twin.add_symbol(1, "AAA")
    twin.submit(1, 10, 0, 100, 3)
    assert eng.state_hash() == twin.state_hash()
    eng.close()
    assert Engine.recover(tmp_path / "j").symbols == {1: "AAA"}


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


@pytest.mark.parametrize("bad", [b"AAA", 1.0, None, ["AAA"]])
def test_engine_symbol_of_another_type_error_names_id_or_name(bad):
    # a symbol is an id or a name wherever one is taken, but a bytes, float or None was refused
    # with "symbol must be an integer", as if a name were not accepted
    eng = Engine()
    eng.add_symbol(1, "AAA")
    eng.submit(1, 5, 0, 100, 3)
    before = eng.state_hash()
    want = f"symbol must be an integer id or a str name, got {type(bad).__name__} {bad!r}"
    for call in (lambda: eng.submit(bad, 6, 0, 100, 1), lambda: eng.cancel(5, symbol=bad),
                 lambda: eng.modify(5, 2, symbol=bad), lambda: eng.best_bid(bad),
                 lambda: eng.book(bad), lambda: eng.limits(bad), lambda: eng.symbol_id(bad),
                 lambda: eng.set_reference_price(bad, 100)):
        with pytest.raises(TypeError) as err:
            call()
        assert str(err.value) == want
    assert eng.state_hash() == before
    # add_symbol takes an id only: its words stay those of an integer argument
    with pytest.raises(TypeError, match=r"^symbol must be an integer, got "):
        eng.add_symbol(bad)


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


def test_engine_state_hash_carries_the_stp_mode_through_its_books(tmp_path):
    # documented: the engine's own mode is hashed through its books only (a journal records it
    # in its segment headers), so a recovered empty engine keeps its mode though the hash
    # recorded for it cannot tell
    a, b = mc.Engine(mc.STP.NONE), mc.Engine(mc.STP.CANCEL_RESTING)
    assert a.state_hash() == b.state_hash()
    a.add_symbol(1)
    b.add_symbol(1)
    assert a.state_hash() != b.state_hash()
    eng = mc.Engine(mc.STP.NONE, journal=tmp_path / "j", fsync="never")
    eng.close()
    back = mc.Engine.recover(tmp_path / "j")
    assert back.stp == mc.STP.NONE
    back.add_symbol(1)
    assert back.state_hash() == a.state_hash()
    back.close()


# ---- a refused call moves no clock ----

def _refusals():
    # (name, call) for every kind of refusal an Engine gives, each made at ts_ns=999 on an
    # engine whose clocks stand at 10 (see _clocked_engine); each leaves every order as it was
    from refusal_makers import batch, call

    K_ = mc.CommandKind
    return [
        ("submit qty 0", call("submit", 1, 50, 0, 100, 0)),
        ("submit price 0", call("submit", 1, 50, 0, 0, 5)),
        ("submit side 7", call("submit", 1, 50, 7, 100, 5)),
        ("submit tif 9", call("submit", 1, 50, 0, 100, 5, 9)),
        ("submit duplicate in its book", call("submit", 1, 1, 0, 90, 5)),
        ("submit duplicate in another book", call("submit", 2, 1, 0, 90, 5)),
        ("submit post-only crossing", call("submit", 1, 50, 0, 101, 5, post_only=True)),
        ("submit above max_qty", call("submit", 1, 50, 0, 100, 10**6)),
        ("submit off tick", call("submit", 2, 50, 0, 101, 5)),
        ("submit unknown symbol", call("submit", 9, 50, 0, 100, 5)),
        ("market qty 0", call("submit_market", 1, 50, 0, 0)),
        ("market side 7", call("submit_market", 1, 50, 7, 5)),
        ("market duplicate", call("submit_market", 1, 2, 0, 5)),
        ("market above max_qty", call("submit_market", 1, 50, 0, 10**6)),
        ("cancel unknown id", call("cancel", 77)),
        ("modify unknown id", call("modify", 77, 3)),
        ("modify qty 0", call("modify", 1, 0)),
        ("modify post-only crossing", call("modify", 3, 5, 101)),
        ("modify above max_qty", call("modify", 1, 10**6)),
        ("process submit qty 0", batch(kind=K_.SUBMIT, symbol=1, order_id=50, price=100)),
        ("process duplicate", batch(kind=K_.SUBMIT, symbol=1, order_id=1, price=90, qty=5)),
        ("process market side 7", batch(kind=K_.MARKET, symbol=1, order_id=50, side=7, qty=5)),
        ("process cancel unknown id", batch(kind=K_.CANCEL, order_id=77)),
        ("process modify qty 0", batch(kind=K_.MODIFY, order_id=1)),
        ("process modify unknown id", batch(kind=K_.MODIFY, order_id=77, qty=3)),
        ("process unknown kind", batch(kind=9, order_id=50)),
        ("process unknown symbol", batch(kind=K_.SUBMIT, symbol=9, order_id=50, price=100,
                                         qty=5)),
    ]


def _clocked_engine(journal=None):
    eng = Engine(journal=journal, fsync="never") if journal else Engine()
    eng.add_symbol(1, max_qty=1000)
    eng.add_symbol(2, tick=2)
    eng.submit(1, 1, 0, 100, 5, ts_ns=10)
    eng.submit(1, 2, 1, 101, 5, ts_ns=10)
    eng.submit(1, 3, 0, 99, 5, post_only=True, ts_ns=10)
    eng.submit(2, 4, 0, 100, 5, ts_ns=10)
    eng.events()
    return eng


def _engine_state_bytes(eng):
    # every book's snapshot (the book's clock among its bytes) and, where it pickles, the
    # whole engine (its own clock too)
    books = [eng.book(s).snapshot() for s in eng.symbols]
    return books, (None if eng.journal is not None else pickle.dumps(eng))


@pytest.mark.parametrize("journaled", [False, True])
@pytest.mark.parametrize("name,refuse", _refusals(), ids=[n for n, _ in _refusals()])
def test_engine_refused_call_leaves_every_clock_and_byte_unchanged(name, refuse, journaled,
                                                                   tmp_path):
    # The engine moved a book's clock (its snapshot, state and pickle bytes) on the refusals
    # its book made (a bad field, a duplicate in the same book, a post-only cross) and not on
    # its own (limits, unknown symbol, a duplicate in another book): one rule now, a refusal
    # moves no clock, the engine's as its books'
    eng = _clocked_engine(tmp_path / "j" if journaled else None)
    before = _engine_state_bytes(eng)
    try:
        got = refuse(eng)
    except mc.OrderRejected:
        got = None
    events = got if name.startswith("process") else eng.events()
    assert events["kind"].tolist() == [K.REJECTED] and events["ts_ns"].tolist() == [999]
    assert _engine_state_bytes(eng) == before
    # the next accepted command moves them as before
    eng.submit(1, 60, 0, 90, 1, ts_ns=1234)
    assert _engine_state_bytes(eng)[0][0] != before[0][0]
    if journaled:
        eng.close()


def test_state_hash_covers_what_decides_matching_and_not_the_clock_events_or_symbol():
    # What the README's API table says the hash covers: books that will match alike hash
    # equal whatever their clocks, pending events or symbol ids; a change in queue order,
    # owner or post-only flag (each of which decides a future fill) changes it.
    import matchcore as mc
    a, b = mc.OrderBook(), mc.OrderBook()
    a.submit(1, 0, 99, 5, ts_ns=5)
    b.submit(1, 0, 99, 5, ts_ns=77)
    b.events()
    eng = mc.Engine()
    eng.add_symbol(42)
    eng.submit(42, 1, 0, 99, 5, ts_ns=123)
    assert a.state_hash() == b.state_hash() == eng.book(42).state_hash()
    base = a.state_hash()
    c, d = mc.OrderBook(), mc.OrderBook()
    for book, order in ((c, (2, 3)), (d, (3, 2))):      # same orders, other queue order
        for oid in order:
            book.submit(oid, 0, 99, 1)
    assert c.state_hash() != d.state_hash()
    e, f = mc.OrderBook(), mc.OrderBook()
    e.submit(1, 0, 99, 5, owner=1)
    f.submit(1, 0, 99, 5, owner=2)
    assert e.state_hash() != f.state_hash() != base
    g = mc.OrderBook()
    g.submit(1, 0, 99, 5, post_only=True)
    assert g.state_hash() != base
