"""Engine.process(out=): a caller-owned events buffer reused across calls, what happens when an
order's events may not fit, and process() of any size against every other way in."""
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
from engine_checks import K, make_engine, run_engine_calls
from test_book_random_session import _four_cmds, _strided_and_unaligned_cmds_with_out_over_them


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


def test_engine_process_out_sharing_memory_with_copied_commands_raises():
    # as OrderBook.process and the reference model: the check was made against the engine's
    # aligned contiguous copy of a strided or unaligned batch, so an out= over the caller's
    # commands was taken and the events were written over them
    for cmds, out in _strided_and_unaligned_cmds_with_out_over_them():
        eng = Engine()
        eng.add_symbol(0)
        with pytest.raises(ValueError, match="share memory"):
            eng.process(cmds, out=out)
        assert len(eng) == 0 and len(eng.events()) == 0
        assert cmds.tobytes() == _four_cmds().tobytes()
        apart = np.zeros(8, dtype=EVENT_DTYPE)
        assert len(eng.process(cmds, out=apart)) > 0
