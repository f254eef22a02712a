"""The C entry (mc_api_v1 table, capsule, header) drives the same book as the Python methods.

Also home of the seeded random session generator and the per-call drivers that the Numba,
engine and snapshot tests import (``from test_capi import ...``).
"""
from __future__ import annotations

import ctypes
import re
from pathlib import Path

import numpy as np
import pytest

import matchcore as mc
from matchcore import _capi
from matchcore._core import COMMAND_DTYPE, EVENT_DTYPE
from conftest import assert_events_equal

HEADER = Path(_capi.get_include()) / "matchcore.h"


# ----------------------------------------------------------------------------------------------
# seeded random sessions and per-call drivers (shared with the other embedding tests)
# ----------------------------------------------------------------------------------------------

def random_commands(n: int, seed: int, *, n_symbols: int = 1, unknown_symbol: bool = False,
                    invalid: bool = True, price_lo: int = 95, price_hi: int = 105) -> np.ndarray:
    """A seeded mix of submits (GTC/IOC/FOK, post-only), markets, cancels and modifies, with
    duplicates, misses and (if ``invalid``) bad fields. Ids belong to one symbol each
    (symbol s uses ids s*10**6 + k), so separate books and an engine see the same id reuse."""
    rng = np.random.default_rng(seed)
    cmds = np.zeros(n, dtype=COMMAND_DTYPE)
    used = [[] for _ in range(n_symbols)]
    next_id = [s * 10**6 + 1 for s in range(n_symbols)]
    cols = {name: [] for name in COMMAND_DTYPE.names}
    for i in range(n):
        sym = int(rng.integers(n_symbols))
        u = rng.random()
        kind = 0 if u < 0.55 else 1 if u < 0.65 else 2 if u < 0.85 else 3
        side = int(rng.integers(2))
        price = int(rng.integers(price_lo, price_hi + 1))
        qty = int(rng.integers(1, 21))
        tif = int(rng.choice([0, 0, 0, 0, 0, 0, 0, 0, 1, 2]))
        owner = int(rng.integers(4))
        post = int(rng.random() < 0.1)
        if kind in (0, 1):
            if used[sym] and rng.random() < 0.05:
                oid = int(rng.choice(used[sym]))  # duplicate if still resting
            else:
                oid = next_id[sym]
                next_id[sym] += 1
                used[sym].append(oid)
            if kind == 1:
                qty = int(rng.integers(1, 31))
                price, tif, post = 0, 0, 0
        else:
            oid = int(rng.choice(used[sym])) if used[sym] else next_id[sym]
            if kind == 2:
                price, qty, side, tif, post, owner = 0, 0, 0, 0, 0, 0
            else:
                price = 0 if rng.random() < 0.5 else price
                side, tif, post, owner = 0, 0, 0, 0
        if invalid and rng.random() < 0.03:
            which = int(rng.integers(4))
            if which == 0:
                qty = 0
            elif which == 1:
                price = -1 if kind == 3 else 0
            elif which == 2 and kind in (0, 1):
                side = 2
            elif kind == 0:
                tif = 3
        if unknown_symbol and kind in (0, 1) and rng.random() < 0.02:
            sym = n_symbols + 5
        row = dict(ts_ns=1000 + 10 * i, order_id=oid, price=price, qty=qty, owner=owner,
                   symbol=sym, kind=kind, side=side, tif=tif, post_only=post)
        for k, v in row.items():
            cols[k].append(v)
    for k, v in cols.items():
        cmds[k] = v
    return cmds


def run_python_calls(book, cmds: np.ndarray, drain: bool = True) -> np.ndarray:
    """Apply commands through the per-call Python methods; returns every event in order (with
    ``drain=False`` the events stay pending in the book and an empty array is returned)."""
    out = []
    for ts, oid, price, qty, owner, _sym, kind, side, tif, post in cmds.tolist():
        try:
            if kind == 0:
                book.submit(oid, side, price, qty, tif, owner=owner, post_only=bool(post), ts_ns=ts)
            elif kind == 1:
                book.submit_market(oid, side, qty, owner=owner, ts_ns=ts)
            elif kind == 2:
                book.cancel(oid, owner=owner, ts_ns=ts)
            else:
                book.modify(oid, qty, price or None, owner=owner, ts_ns=ts)
        except mc.OrderRejected:
            pass
        if drain:
            out.append(book.events())
    return np.concatenate(out) if out else np.zeros(0, EVENT_DTYPE)


class CTable:
    """The mc_api_v2 functions called through ctypes at their raw addresses (h: a handle)."""

    def __init__(self):
        a = _capi.c_api_addresses()
        i64, u64, i32, p = ctypes.c_int64, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p
        h = ctypes.c_uint64
        f = ctypes.CFUNCTYPE
        self.book_new = f(h, i32, i64)(a["book_new"])
        self.book_free = f(i32, h)(a["book_free"])
        self.book_copy = f(h, h)(a["book_copy"])
        self.book_clear = f(i32, h)(a["book_clear"])
        self.book_valid = f(i32, h)(a["book_valid"])
        self.engine_valid = f(i32, h)(a["engine_valid"])
        self.set_time = f(i32, h, i64)(a["set_time"])
        self.submit = f(i64, h, u64, i32, i64, i64, i32, u64, i32)(a["submit"])
        self.market = f(i64, h, u64, i32, i64, u64)(a["market"])
        self.cancel = f(i64, h, u64)(a["cancel"])
        self.modify = f(i64, h, u64, i64, i64)(a["modify"])
        self.apply = f(i64, h, p)(a["apply"])
        self.process = f(i64, h, p, i64)(a["process"])
        self.best = f(i32, h, i32, ctypes.POINTER(i64), ctypes.POINTER(i64))(a["best"])
        self.depth = f(i64, h, i32, i64, p)(a["depth"])
        self.depth_orders = f(i64, h, i32, i64, p)(a["depth_orders"])
        self.get = f(i32, h, u64, ctypes.POINTER(i32), ctypes.POINTER(i64),
                     ctypes.POINTER(i64))(a["get"])
        self.queue_position = f(i64, h, u64)(a["queue_position"])
        self.count = f(i64, h)(a["count"])
        self.level_count = f(i64, h, i32)(a["level_count"])
        self.state_hash = f(u64, h)(a["state_hash"])
        self.pending_events = f(i64, h)(a["pending_events"])
        self.drain_events = f(i64, h, p, i64)(a["drain_events"])
        self.drain_events_owner = f(i64, h, u64, p, i64)(a["drain_events_owner"])
        self.clear_events = f(i32, h)(a["clear_events"])
        self.snapshot_size = f(i64, h)(a["snapshot_size"])
        self.snapshot_write = f(i64, h, p, i64)(a["snapshot_write"])
        self.snapshot_restore = f(i32, h, p, i64)(a["snapshot_restore"])
        self.engine_set_time = f(i32, h, i64)(a["engine_set_time"])
        self.engine_submit = f(i64, h, ctypes.c_uint32, u64, i32, i64, i64, i32, u64,
                               i32)(a["engine_submit"])
        self.engine_market = f(i64, h, ctypes.c_uint32, u64, i32, i64, u64)(a["engine_market"])
        self.engine_cancel = f(i64, h, ctypes.c_uint32, u64)(a["engine_cancel"])
        self.engine_modify = f(i64, h, ctypes.c_uint32, u64, i64, i64)(a["engine_modify"])
        self.engine_process = f(i64, h, p, i64)(a["engine_process"])
        self.engine_book = f(h, h, ctypes.c_uint32)(a["engine_book"])
        self.engine_get = f(i32, h, u64, ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(i32),
                            ctypes.POINTER(i64), ctypes.POINTER(i64))(a["engine_get"])
        self.engine_count = f(i64, h)(a["engine_count"])
        self.engine_state_hash = f(u64, h)(a["engine_state_hash"])
        self.engine_pending_events = f(i64, h)(a["engine_pending_events"])
        self.engine_drain_events = f(i64, h, p, i64)(a["engine_drain_events"])
        self.engine_drain_events_owner = f(i64, h, u64, p, i64)(a["engine_drain_events_owner"])
        self.cancel_by = f(i64, h, u64, u64)(a["cancel_by"])
        self.modify_by = f(i64, h, u64, i64, i64, u64)(a["modify_by"])
        self.engine_cancel_by = f(i64, h, ctypes.c_uint32, u64, u64)(a["engine_cancel_by"])
        self.engine_modify_by = f(i64, h, ctypes.c_uint32, u64, i64, i64,
                                 u64)(a["engine_modify_by"])

    def drain(self, b) -> np.ndarray:
        n = self.pending_events(b)
        out = np.zeros(n, EVENT_DTYPE)
        assert self.drain_events(b, out.ctypes.data, n) == n
        return out


def run_c_calls(api: CTable, b, cmds: np.ndarray, by: bool = False) -> np.ndarray:
    """Apply commands one by one through the C table (ctypes); returns the events. ``by``:
    cancels and modifies through cancel_by / modify_by with the command's owner."""
    for ts, oid, price, qty, owner, _sym, kind, side, tif, post in cmds.tolist():
        api.set_time(b, ts)
        if kind == 0:
            api.submit(b, oid, side, price, qty, tif, owner, post)
        elif kind == 1:
            api.market(b, oid, side, qty, owner)
        elif kind == 2:
            api.cancel_by(b, oid, owner) if by else api.cancel(b, oid)
        else:
            api.modify_by(b, oid, qty, price, owner) if by else api.modify(b, oid, qty, price)
    return api.drain(b)


@pytest.fixture(scope="module")
def api():
    return CTable()


# ----------------------------------------------------------------------------------------------
# layout, table, capsule
# ----------------------------------------------------------------------------------------------

def test_capi_header_layout_matches_numpy_dtypes():
    layout = _capi.header_layout()
    for cname, dtype in (("mc_event", EVENT_DTYPE), ("mc_command", COMMAND_DTYPE)):
        size, offsets = layout[cname]
        assert size == dtype.itemsize
        assert offsets == {name: dtype.fields[name][1] for name in dtype.names}


def test_capi_header_static_asserts_sizes():
    text = HEADER.read_text()
    assert re.search(r"sizeof\(mc_event\) == 64", text)
    assert re.search(r"sizeof\(mc_command\) == 48", text)
    assert EVENT_DTYPE.itemsize == 64 and COMMAND_DTYPE.itemsize == 48


def test_capi_capsule_named_and_points_at_versioned_table():
    cap = _capi.c_api_capsule()
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
    get_ptr.restype, get_ptr.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    assert get_name(cap) == b"matchcore._capi._C_API"
    ptr = get_ptr(cap, b"matchcore._capi._C_API")
    assert ptr == _capi.c_api_table_address()
    version, size, ev_size, cmd_size = (ctypes.c_uint32 * 4).from_address(ptr)
    n_fields = len(re.findall(r"^\s+mc_\w+_fn\s+\w+;", HEADER.read_text(), re.M))
    assert (version, ev_size, cmd_size) == (_capi.API_VERSION, 64, 48)
    assert size == 16 + 8 * n_fields
    assert len(_capi.c_api_addresses()) == n_fields


def test_capi_table_functions_are_handle_checks_around_the_core_functions():
    # One implementation: each table function validates its handle and calls the function of
    # matchcore._core / _engine that the Python methods call; none holds any logic of its own.
    src = (Path(_capi.__file__).parent / "_capi.pyx").read_text()
    fields = set(_capi.c_api_addresses()) - {"book_valid", "engine_valid"}
    for field in fields:
        m = re.search(rf"^cdef \w+ h_{field}\(.*?\n\n\n", src, re.M | re.S)
        assert m, field
        body = m.group(0)
        assert f"mc_{field}(" in body, field
        assert "_bk(h)" in body or "_en(h)" in body or field == "book_new", field
        assert body.count("\n") < 16, field   # a check and a call, nothing else
    assert len(fields) == 43


def test_capi_get_include_contains_header():
    assert HEADER.is_file()
    assert "mc_api_v2" in HEADER.read_text()


def test_capi_book_handle_is_stable_while_alive():
    book = mc.OrderBook()
    a = book.address
    r = book.raw_address
    assert a == book._handle() == book.handle and a != 0 and r != 0
    book.submit(1, 0, 100, 5)
    snap = book.snapshot()
    book.clear()
    book.restore(snap)
    assert book.address == a and book.raw_address == r


# ----------------------------------------------------------------------------------------------
# same events, same book
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_capi_random_session_c_calls_python_calls_process_identical(api, seed):
    cmds = random_commands(1500, seed)
    py_book = mc.OrderBook()
    py_events = run_python_calls(py_book, cmds)
    batch_book = mc.OrderBook()
    batch_events = batch_book.process(cmds)
    c_book = mc.OrderBook()  # a Python-owned book driven through its handle
    c_events = run_c_calls(api, c_book.address, cmds)
    assert_events_equal(c_events, py_events, labels=("C calls", "Python calls"))
    assert_events_equal(batch_events, py_events, labels=("process()", "Python calls"))
    assert py_book.state_hash() == batch_book.state_hash() == c_book.state_hash()
    c_book.check_invariants()
    # events stamped with the caller's clock
    assert set(np.unique(py_events["ts_ns"])) <= set(cmds["ts_ns"].tolist())


def test_capi_c_created_book_process_matches_python(api):
    cmds = random_commands(800, 11)
    b = api.book_new(int(mc.STP.CANCEL_RESTING), 16)
    try:
        assert api.process(b, cmds.ctypes.data, len(cmds)) == len(cmds)
        events = api.drain(b)
        ref = mc.OrderBook()
        assert_events_equal(events, ref.process(cmds), labels=("C process", "Python process"))
        assert api.state_hash(b) == ref.state_hash()
        assert api.count(b) == len(ref)
        c2 = api.book_copy(b)
        assert api.state_hash(c2) == api.state_hash(b)
        api.book_free(c2)
    finally:
        api.book_free(b)


@pytest.mark.parametrize("stp, capacity", [(1, -1), (1, -2**63), (1, 2**30 + 1), (1, 2**62),
                                           (1, 2**63 - 1), (4, 64), (-1, 64)])
def test_capi_book_new_refuses_what_orderbook_refuses_handle_zero(api, stp, capacity):
    # a negative capacity made a book (OrderBook raises ValueError); one above 2**30, which no
    # book can hold, grew the pools towards it (gigabytes written) before failing
    import gc

    from matchcore._handles import live_handles
    with pytest.raises(ValueError):
        mc.OrderBook(stp, capacity=capacity)
    gc.collect()            # books earlier tests left in reference cycles are not counted
    before = live_handles()
    assert api.book_new(stp, capacity) == 0
    assert live_handles() == before


def test_capi_book_new_capacity_bounds_accepted(api):
    for capacity in (0, 1, 64):
        h = api.book_new(0, capacity)
        assert h != 0 and api.submit(h, 1, 0, 100, 5, 0, 0, 0) == 0 and api.count(h) == 1
        assert api.book_free(h) == 0


def test_capi_queries_match_python_methods(api):
    book = mc.OrderBook()
    book.process(random_commands(600, 5, invalid=False))
    b = book.address
    p, q = ctypes.c_int64(), ctypes.c_int64()
    for side, expect in ((0, book.best_bid()), (1, book.best_ask())):
        found = api.best(b, side, ctypes.byref(p), ctypes.byref(q))
        assert (found, (p.value, q.value) if found else None) == (int(expect is not None), expect)
    out = np.zeros((5, 2), np.int64)
    n = api.depth(b, 0, 5, out.ctypes.data)
    assert out[:n].tolist() == book.depth(5)[0].tolist()
    bids, _ = book.depth(100)
    oid = book.level(0, int(bids[0, 0]))[-1][0]
    s, pr, qt = ctypes.c_int(), ctypes.c_int64(), ctypes.c_int64()
    assert api.get(b, oid, ctypes.byref(s), ctypes.byref(pr), ctypes.byref(qt)) == 1
    assert (s.value, pr.value, qt.value) == book.get(oid)
    assert api.queue_position(b, oid) == book.queue_position(oid)
    assert api.queue_position(b, 987654321) == -1
    assert api.count(b) == len(book)


def test_capi_state_hash_is_the_python_hash_without_clock_or_pending_events(api):
    # matchcore.h called it "hash of the full state": books with other clocks and other
    # pending events hash equal, as OrderBook.state_hash() (the README's API table) says
    a, b = api.book_new(1, 16), api.book_new(1, 16)
    api.set_time(a, 5)
    api.set_time(b, 77)
    for h in (a, b):
        assert api.submit(h, 1, 0, 99, 5, 0, 3, 0) == 0
    api.clear_events(b)
    assert api.pending_events(a) == 1 and api.pending_events(b) == 0
    py = mc.OrderBook()
    py.submit(1, 0, 99, 5, owner=3)
    assert api.state_hash(a) == api.state_hash(b) == py.state_hash() == api.state_hash(py.handle)
    c = api.book_new(1, 16)
    api.submit(c, 1, 0, 99, 5, 0, 4, 0)             # another owner: another hash
    assert api.state_hash(c) != api.state_hash(a)
    for h in (a, b, c):
        assert api.book_free(h) == 0


BAD_SIDES = (2, 3, -1, 255, 2**31 - 1, -2**31)


def test_capi_bad_side_every_side_taking_function_returns_invalid_side(api):
    # best / depth / depth_orders / level_count index the side's ladder: a side other than 0/1
    # must be refused before any read (it crashed or read garbage), like order entry refuses it.
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    book.submit(2, 1, 101, 7)
    book.events()
    eng = mc.Engine()
    eng.add_symbol(1)
    b, e, before = book.handle, eng.handle, book.state_hash()
    bad = -int(mc.Reject.INVALID_SIDE)
    p, q = ctypes.c_int64(-7), ctypes.c_int64(-7)
    out = np.full(12, -7, np.int64)
    for side in BAD_SIDES:
        assert api.best(b, side, ctypes.byref(p), ctypes.byref(q)) == bad
        assert api.depth(b, side, 4, out.ctypes.data) == bad
        assert api.depth_orders(b, side, 4, out.ctypes.data) == bad
        assert api.level_count(b, side) == bad
        assert api.submit(b, 10, side, 100, 1, 0, 0, 0) == bad
        assert api.market(b, 11, side, 1, 0) == bad
        assert api.engine_submit(e, 1, 12, side, 100, 1, 0, 0, 0) == bad
        assert api.engine_market(e, 1, 13, side, 1, 0) == bad
    assert (p.value, q.value) == (-7, -7) and (out == -7).all()
    assert book.state_hash() == before and len(eng) == 0
    assert api.level_count(b, 0) == 1 and api.level_count(b, 1) == 1


def test_capi_drain_events_short_buffer_keeps_rest(api):
    book = mc.OrderBook()
    b = book.address
    for i in range(5):
        api.submit(b, i + 1, 0, 100 + i, 1, 0, 0, 0)
    first = np.zeros(3, EVENT_DTYPE)
    assert api.drain_events(b, first.ctypes.data, 3) == 3
    assert first["order_id"].tolist() == [1, 2, 3]
    assert api.pending_events(b) == 2
    assert book.events()["order_id"].tolist() == [4, 5]


def test_capi_drain_events_owner_filters_and_keeps_rest_when_short(api):
    book = mc.OrderBook()
    b = book.address
    api.submit(b, 1, 1, 100, 5, 0, 7, 0)   # owner 7 rests
    api.submit(b, 2, 1, 101, 5, 0, 8, 0)   # owner 8 rests
    api.submit(b, 3, 0, 101, 7, 0, 9, 0)   # owner 9 takes 5 from 7 (maker) and 2 from 8
    api.submit(b, 4, 0, 90, 1, 0, 7, 0)    # owner 7 again
    out = np.zeros(2, EVENT_DTYPE)
    n = api.drain_events_owner(b, 7, out.ctypes.data, 2)
    assert n == 2
    assert out["kind"].tolist() == [int(mc.EventKind.ACCEPTED), int(mc.EventKind.FILL)]
    assert out["maker_owner"].tolist() == [0, 7]
    rest = book.events(owner=7)  # the later owner-7 event stayed pending
    assert rest["order_id"].tolist() == [4]


def test_capi_snapshot_functions_round_trip(api):
    book = mc.OrderBook()
    book.process(random_commands(500, 8))
    b = book.address
    size = api.snapshot_size(b)
    buf = np.zeros(size, np.uint8)
    assert api.snapshot_write(b, buf.ctypes.data, size - 1) == -1
    assert api.snapshot_write(b, buf.ctypes.data, size) == size
    assert buf.tobytes() == book.snapshot()
    other = mc.OrderBook()
    assert api.snapshot_restore(other.address, buf.ctypes.data, size) == 0
    assert other.state_hash() == book.state_hash()
    buf[size // 2] ^= 0xFF
    assert api.snapshot_restore(other.address, buf.ctypes.data, size) == -4  # checksum
    assert other.state_hash() == book.state_hash()


def test_capi_calls_release_gil_concurrent_books_independent(api):
    # ctypes drops the GIL around each call; two threads on two books must not interfere.
    import threading
    cmds = random_commands(1000, 21)
    expect = mc.OrderBook().process(cmds)
    results = [None, None]
    books = [mc.OrderBook(), mc.OrderBook()]

    def work(k):
        results[k] = run_c_calls(api, books[k].address, cmds)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert_events_equal(r, expect)


def test_capi_header_compiles_as_cplusplus_and_c(tmp_path):
    import shutil
    import subprocess
    for compiler, src_name, flags in (("cc", "t.c", ["-std=c11"]), ("c++", "t.cpp", ["-std=c++11"])):
        exe = shutil.which(compiler)
        if exe is None:
            pytest.skip(f"no {compiler} compiler on PATH; header compile check skipped")
        src = tmp_path / src_name
        src.write_text('#include "matchcore.h"\nint main(void) { return sizeof(mc_api_v2) > 0 ? 0 : 1; }\n')
        subprocess.run([exe, *flags, "-Wall", "-Werror", "-I", _capi.get_include(), str(src),
                        "-o", str(tmp_path / (src_name + ".out"))], check=True)


_OLDER_STANDARDS = (("cc", "t.c", "-std=c99"), ("c++", "t.cpp", "-std=c++98"),
                    ("c++", "t.cpp", "-std=c++03"))


@pytest.mark.parametrize("compiler,src_name,std", _OLDER_STANDARDS)
def test_capi_header_compiles_pedantic_as_c99_and_cplusplus98(tmp_path, compiler, src_name, std):
    # The header is for C and C++ callers of any age: its layout checks must not need C11's
    # _Static_assert or C++11's static_assert (a C++98 build stopped with "expected
    # constructor, destructor, or type conversion before '(' token" in matchcore.h).
    import shutil
    import subprocess
    exe = shutil.which(compiler)
    if exe is None:
        pytest.skip(f"no {compiler} compiler on PATH; header compile check skipped")
    src = tmp_path / src_name
    src.write_text('#include "matchcore.h"\nint main(void) { return sizeof(mc_api_v2) > 0 ? 0 : 1; }\n')
    res = subprocess.run([exe, std, "-Wall", "-Wextra", "-pedantic-errors", "-Werror", "-I",
                          _capi.get_include(), str(src), "-o", str(tmp_path / "t.out")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    # and the checks still stop the compiler where a condition is false
    src.write_text('#include "matchcore.h"\nMC_STATIC_ASSERT(sizeof(mc_event) == 63, "no");\n'
                   'int main(void) { return 0; }\n')
    res = subprocess.run([exe, std, "-I", _capi.get_include(), str(src), "-o",
                          str(tmp_path / "t.out")], capture_output=True, text=True)
    assert res.returncode != 0


# ----------------------------------------------------------------------------------------------
# refusals: an engine's book, a book or engine in use by a call that released the GIL
# ----------------------------------------------------------------------------------------------

ERR_BUSY, ERR_READONLY = 102, 103


def test_capi_header_names_the_refusal_codes():
    text = HEADER.read_text()
    assert f"MC_ERR_BUSY = {ERR_BUSY}" in text and f"MC_ERR_READONLY = {ERR_READONLY}" in text


def test_capi_engine_book_refuses_order_entry_queries_answer(api):
    # Orders entered on an engine's book would skip the engine's id routing, limits and journal:
    # every entry function returns -MC_ERR_READONLY and changes nothing; queries answer.
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.add_symbol(2)
    eng.submit(1, 5, 0, 100, 3)
    eng.events()
    bh = api.engine_book(eng.handle, 1)
    assert bh == eng.book(1).handle
    before = eng.state_hash()
    cmds = np.zeros(1, COMMAND_DTYPE)
    cmds["order_id"] = 9
    cmds["price"] = 100
    cmds["qty"] = 1
    cmds["side"] = 1
    snap = np.frombuffer(mc.OrderBook().snapshot(), np.uint8).copy()
    for name, call in {
        "submit": lambda: api.submit(bh, 9, 1, 100, 1, 0, 0, 0),
        "market": lambda: api.market(bh, 9, 1, 1, 0),
        "cancel": lambda: api.cancel(bh, 5),
        "modify": lambda: api.modify(bh, 5, 1, 0),
        "apply": lambda: api.apply(bh, cmds.ctypes.data),
        "process": lambda: api.process(bh, cmds.ctypes.data, 1),
        "book_clear": lambda: api.book_clear(bh),
        "snapshot_restore": lambda: api.snapshot_restore(bh, snap.ctypes.data, len(snap)),
    }.items():
        assert call() == -ERR_READONLY, name
    assert eng.state_hash() == before and len(eng.book(1)) == 1
    assert eng.pending_events() == 0 if hasattr(eng, "pending_events") else eng.events().size == 0
    eng.check_invariants()
    price, qty = ctypes.c_int64(), ctypes.c_int64()
    assert api.best(bh, 0, ctypes.byref(price), ctypes.byref(qty)) == 1
    assert (price.value, qty.value) == (100, 3)
    assert api.count(bh) == 1 and api.queue_position(bh, 5) == 0
    assert api.state_hash(bh) == eng.book(1).state_hash()
    # through the engine the same order is taken, and routed
    assert api.engine_submit(eng.handle, 1, 9, 1, 100, 1, 0, 0, 0) == 1
    eng.check_invariants()
    # a book the engine no longer holds is a standalone book again
    book = eng.book(2)
    del eng
    import gc
    gc.collect()
    assert api.submit(book.handle, 1, 0, 50, 1, 0, 0, 0) == 0 and len(book) == 1


def test_capi_set_time_on_engine_book_refused_as_python_clock_unchanged(api):
    # The engine stamps its books' clock from its own; the book's Python methods refuse a
    # ts_ns (ReadOnlyBookError). The table's set_time moved an engine book's clock (its
    # snapshot, and so an engine snapshot, changed): it is refused as order entry is.
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.submit(1, 5, 0, 100, 3, ts_ns=7)
    book = eng.book(1)
    before = book.snapshot()
    with pytest.raises(mc.ReadOnlyBookError, match="belongs to an Engine"):
        book.submit(9, 0, 90, 1, ts_ns=999)
    assert book.snapshot() == before
    assert api.set_time(book.handle, 12345) == -ERR_READONLY
    assert api.set_time(api.engine_book(eng.handle, 1), 12345) == -ERR_READONLY
    assert book.snapshot() == before
    # through the engine the clock moves, and a standalone book's set_time is taken
    assert api.engine_set_time(eng.handle, 50) == 0
    assert api.engine_submit(eng.handle, 1, 6, 0, 99, 1, 0, 0, 0) == 0
    assert eng.events()["ts_ns"][-1] == 50
    other = mc.OrderBook()
    assert api.set_time(other.handle, 60) == 0
    assert api.submit(other.handle, 1, 0, 99, 1, 0, 0, 0) == 0
    assert other.events()["ts_ns"][0] == 60


def test_capi_calls_on_a_book_busy_in_another_thread_return_busy(api):
    # A timed loop (released GIL) holds the book busy for HOLD seconds: table calls on it from
    # this thread are refused with -MC_ERR_BUSY (state_hash, book_copy: 0) and change nothing.
    import threading
    import time
    from matchcore._timing import process_open_loop
    book = mc.OrderBook()
    book.submit(1, 0, 10, 5)
    h = book.handle
    before = book.state_hash()
    cmds = np.zeros(2, dtype=COMMAND_DTYPE)
    cmds["order_id"] = [900_000_001, 900_000_002]
    cmds["price"] = 9
    cmds["qty"] = 1
    box = {}
    t = threading.Thread(target=lambda: box.setdefault(
        "r", process_open_loop(book, cmds, arrivals_ns=np.array([0, 400e6]))))
    t.start()
    deadline = time.monotonic() + 10
    while not book.busy:
        assert t.is_alive() and time.monotonic() < deadline
        time.sleep(0)
    price, qty = ctypes.c_int64(), ctypes.c_int64()
    got = {
        "submit": api.submit(h, 7, 0, 10, 1, 0, 0, 0), "cancel": api.cancel(h, 1),
        "count": api.count(h), "best": api.best(h, 0, ctypes.byref(price), ctypes.byref(qty)),
        "pending_events": api.pending_events(h), "set_time": api.set_time(h, 5),
        "state_hash": api.state_hash(h), "book_copy": api.book_copy(h),
    }
    still = book.busy
    t.join()
    assert still, "the timed loop ended before the calls were made"
    assert got == {"submit": -ERR_BUSY, "cancel": -ERR_BUSY, "count": -ERR_BUSY,
                   "best": -ERR_BUSY, "pending_events": -ERR_BUSY, "set_time": -ERR_BUSY,
                   "state_hash": 0, "book_copy": 0}
    assert api.cancel(h, 900_000_001) == 1 and api.cancel(h, 900_000_002) == 1
    assert book.state_hash() == before


def test_capi_calls_on_an_engine_busy_in_another_thread_return_busy(api):
    # Engine.process() of a long batch releases the GIL: a table call on the engine meanwhile
    # returns -MC_ERR_BUSY, and the result equals the batch alone.
    import threading
    from matchcore.workloads import standard_mix
    setup, flow = standard_mix(400_000, seed=5)
    eng, ref = mc.Engine(), mc.Engine()
    for e in (eng, ref):
        e.add_symbol(0)
        e.process(setup)
    expect = ref.process(flow)
    h = eng.handle
    for attempt in range(10):
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("r", eng.process(flow)))
        t.start()
        while not eng.busy and t.is_alive():
            pass
        r = api.engine_submit(h, 0, 10**12, 0, 1, 1, 0, 0, 0)
        c = api.engine_count(h)
        overlapped = eng.busy
        t.join()
        if overlapped and r == -ERR_BUSY:
            assert c == -ERR_BUSY
            break
        # the batch ended first: start again from the same state
        eng = mc.Engine()
        eng.add_symbol(0)
        eng.process(setup)
        h = eng.handle
    else:
        pytest.skip("Engine.process() never overlapped the table call")
    assert_events_equal(box["r"], expect)
    assert eng.state_hash() == ref.state_hash()


def test_capi_queries_beyond_int64_read_int64_max_as_documented(api):
    # levels are summed in 128 bits: C (int64 out-parameters) reads a total beyond int64 as
    # INT64_MAX, as matchcore.h and the README say; the Python methods give the exact sum
    top = 2**63 - 1
    book = mc.OrderBook()
    for oid in (1, 2, 3):
        book.submit(oid, 0, 100, top)
    book.submit(4, 0, 99, 5)
    book.submit(5, 0, 100, 7)
    b = book.handle
    assert book.best_bid() == (100, 3 * top + 7) and book.queue_position(5) == 3 * top
    p, q = ctypes.c_int64(), ctypes.c_int64()
    assert api.best(b, 0, ctypes.byref(p), ctypes.byref(q)) == 1
    assert (p.value, q.value) == (100, top)
    out = np.zeros((2, 2), np.int64)
    assert api.depth(b, 0, 2, out.ctypes.data) == 2
    assert out.tolist() == [[100, top], [99, 5]]
    assert api.queue_position(b, 5) == top and api.queue_position(b, 2) == top
    assert api.queue_position(b, 1) == 0
    text = HEADER.read_text()
    assert "INT64_MAX" in text[text.index("---- queries"):text.index("mc_best_fn best;")]


def test_capi_process_cancel_reject_reaches_drain_events_owner(api):
    # The C table's batch runs the book's own functions: a participant draining its own
    # events sees its refused cancel of an id that rests nowhere.
    book = mc.OrderBook()
    b = book.address
    cmds = np.zeros(1, mc.COMMAND_DTYPE)
    cmds["kind"] = mc.CommandKind.CANCEL
    cmds["order_id"] = 4
    cmds["owner"] = 8
    assert api.process(b, cmds.ctypes.data, 1) == 1
    out = np.zeros(2, EVENT_DTYPE)
    assert api.drain_events_owner(b, 8, out.ctypes.data, 2) == 1
    assert out[0]["kind"] == mc.EventKind.REJECTED and out[0]["owner"] == 8
    assert out[0]["reason"] == mc.Reason.ORDER_NOT_FOUND


def with_senders(cmds: np.ndarray, seed: int) -> np.ndarray:
    """``cmds`` with an owner (1-4, the sender) on every cancel and modify."""
    rng = np.random.default_rng(seed)
    out = cmds.copy()
    cm = out["kind"] >= 2
    out["owner"][cm] = rng.integers(1, 5, int(cm.sum()))
    return out


@pytest.mark.parametrize("seed", [4, 5])
def test_capi_cancel_by_modify_by_carry_the_sender_as_python_owner_and_process(api, seed):
    # cancel and modify of the table name no sender: the REJECTED event of an id resting
    # nowhere had owner 0 where the Python owner= and process() give the sender. cancel_by and
    # modify_by, appended to the table, take it.
    cmds = with_senders(random_commands(1500, seed), seed)
    py_book = mc.OrderBook()
    want = run_python_calls(py_book, cmds)
    assert_events_equal(mc.OrderBook().process(cmds), want, labels=("process()", "Python"))
    book = mc.OrderBook()
    assert_events_equal(run_c_calls(api, book.handle, cmds, by=True), want,
                        labels=("C cancel_by/modify_by", "Python"))
    assert book.state_hash() == py_book.state_hash()
    rejected = want[want["kind"] == int(mc.EventKind.REJECTED)]
    assert (rejected["owner"] != 0).any()
    # a made-up handle is refused as by every table function (MC_ERR_HANDLE)
    assert api.cancel_by(0, 1, 1) == -101 and api.modify_by(0, 1, 1, 0, 1) == -101


def test_capi_engine_cancel_by_modify_by_carry_the_sender_as_engine_process(api):
    cmds = with_senders(random_commands(1500, 6, n_symbols=3, unknown_symbol=True), 6)

    def make():
        eng = mc.Engine()
        for sym in range(3):
            eng.add_symbol(sym)
        return eng

    want = make().process(cmds)
    eng = make()
    e = eng.handle
    out = []
    for ts, oid, price, qty, owner, sym, kind, side, tif, post in cmds.tolist():
        api.engine_set_time(e, ts)
        if kind == 0:
            api.engine_submit(e, sym, oid, side, price, qty, tif, owner, post)
        elif kind == 1:
            api.engine_market(e, sym, oid, side, qty, owner)
        elif kind == 2:
            api.engine_cancel_by(e, sym, oid, owner)
        else:
            api.engine_modify_by(e, sym, oid, qty, price, owner)
        n = api.engine_pending_events(e)
        ev = np.zeros(n, EVENT_DTYPE)
        assert api.engine_drain_events(e, ev.ctypes.data, n) == n
        out.append(ev)
    assert_events_equal(np.concatenate(out), want, labels=("C engine_*_by", "process()"))
    assert api.engine_cancel_by(0, 0, 1, 1) == -101 and api.engine_modify_by(0, 0, 1, 1, 0, 1) == -101


def test_capi_book_copy_of_a_feed_replayer_book_writes_events_as_its_python_copy(api):
    # A feed replayer's books write no events while it replays (whatever record_events says);
    # their Python copy() and pickle are plain books that do. The C table's copy kept the
    # replayer's "write nothing": the same orders then gave events in one copy and none in
    # the other.
    from matchcore import itch
    rep = itch.Replayer()
    rep.feed(itch.generate(None, messages=3000, symbols=1, seed=5))
    book = next(iter(rep.books.values()))
    assert len(book) > 0
    py = book.copy()
    h = api.book_copy(book.handle)
    assert h != 0
    try:
        cmds = random_commands(300, 12, price_lo=1, price_hi=10**6)
        cmds["order_id"] += 1 << 40
        expect = run_python_calls(py, cmds)
        got = run_c_calls(api, h, cmds, by=True)
        assert len(expect) > 0
        assert_events_equal(got, expect)
        assert api.state_hash(h) == py.state_hash()
    finally:
        assert api.book_free(h) == 0


def test_capi_book_copy_keeps_pending_events_as_python_copy_does(api):
    # Python copy() and pickle keep the events the caller has not read yet; the C table's
    # book_copy started the copy with none, so the same book copied two ways differed
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    book.submit(2, 1, 100, 3)
    book.submit(3, 1, 101, 4)
    py = book.copy()
    expect = py.events()
    assert len(expect) > 0
    h = api.book_copy(book.handle)
    assert h != 0
    try:
        assert api.pending_events(h) == len(expect)
        assert_events_equal(api.drain(h), expect, labels=("C book_copy", "copy()"))
        assert api.state_hash(h) == py.state_hash()
        assert len(book.events()) == len(expect)       # the original's are still its own
    finally:
        assert api.book_free(h) == 0


def test_capi_engine_book_of_an_engine_held_in_another_thread_is_refused(api):
    # engine_book reads the engine's symbol index and book array, which add_symbol grows under
    # the engine's hold (a realloc): a C or Numba thread asking for a book meanwhile read
    # memory being freed. It is refused as every other engine call is (handle 0), and answers
    # again once the hold is released.
    import threading
    eng = mc.Engine()
    eng.add_symbol(1)
    h = eng.handle
    book_h = api.engine_book(h, 1)
    assert book_h == eng.book(1).handle
    held, release = threading.Event(), threading.Event()

    def hold():
        with eng._holding():
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(10)
        got = (api.engine_book(h, 1), api.engine_count(h))
        assert eng.busy
    finally:
        release.set()
        t.join()
    assert got == (0, -ERR_BUSY)
    assert api.engine_book(h, 1) == book_h


@pytest.mark.parametrize("cap", [-1, -5, -(2**63)])
def test_capi_drain_events_owner_negative_cap_refused_events_kept(api, cap):
    # a negative count was taken as 0, which drops every other owner's event before owner 7's
    # first: the call returned 0 and owner 8's events were gone
    book = mc.OrderBook()
    b = book.address
    api.submit(b, 1, 1, 100, 5, 0, 8, 0)
    api.submit(b, 2, 1, 101, 5, 0, 7, 0)
    before = book.snapshot()
    out = np.zeros(4, EVENT_DTYPE)
    assert api.drain_events_owner(b, 7, out.ctypes.data, cap) == -int(mc.Reason.INVALID_COMMAND)
    assert api.pending_events(b) == 2 and not out.view(np.uint8).any()
    assert book.snapshot() == before
    assert book.events()["order_id"].tolist() == [1, 2]


@pytest.mark.parametrize("cap", [-1, -(2**63)])
def test_capi_engine_drain_events_owner_negative_cap_refused_events_kept(api, cap):
    eng = mc.Engine()
    eng.add_symbol(1)
    e = eng.handle
    api.engine_submit(e, 1, 1, 1, 100, 5, 0, 8, 0)
    api.engine_submit(e, 1, 2, 1, 101, 5, 0, 7, 0)
    out = np.zeros(4, EVENT_DTYPE)
    got = api.engine_drain_events_owner(e, 7, out.ctypes.data, cap)
    assert got == -int(mc.Reason.INVALID_COMMAND)
    assert api.engine_pending_events(e) == 2 and not out.view(np.uint8).any()
    assert eng.events()["order_id"].tolist() == [1, 2]
