"""Checked handles: no call through the C table (or Numba, see test_numba_ext.py) with the handle
of a freed book or engine, a foreign handle or a made-up value touches freed memory; each is
refused with -MC_ERR_HANDLE (state_hash 0, book_new/book_copy/engine_book 0). Also: a book that
records no events writes none from C either."""
from __future__ import annotations

import ctypes
import gc
import threading

import numpy as np
import pytest

import matchcore as mc
from matchcore._core import EVENT_DTYPE
from matchcore._engine import Engine
from matchcore._handles import live_handles
from conftest import assert_events_equal
from test_capi import CTable, random_commands, run_c_calls, run_python_calls

E = -101  # -MC_ERR_HANDLE


@pytest.fixture(scope="module")
def api():
    return CTable()


def _every_book_call(api, h):
    """Each book function of the table once, on handle h: {field: result}."""
    p, q, s = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int()
    cmd = random_commands(1, 1)
    out = np.zeros(16, EVENT_DTYPE)
    buf = np.zeros(4096, np.uint8)
    lv = np.zeros((4, 3), np.int64)
    return {
        "set_time": api.set_time(h, 5),
        "submit": api.submit(h, 1, 0, 100, 5, 0, 0, 0),
        "market": api.market(h, 2, 1, 1, 0),
        "cancel": api.cancel(h, 1),
        "modify": api.modify(h, 1, 2, 0),
        "apply": api.apply(h, cmd.ctypes.data),
        "process": api.process(h, cmd.ctypes.data, 1),
        "best": api.best(h, 0, ctypes.byref(p), ctypes.byref(q)),
        "depth": api.depth(h, 0, 4, lv.ctypes.data),
        "depth_orders": api.depth_orders(h, 0, 4, lv.ctypes.data),
        "get": api.get(h, 1, ctypes.byref(s), ctypes.byref(p), ctypes.byref(q)),
        "queue_position": api.queue_position(h, 1),
        "count": api.count(h),
        "level_count": api.level_count(h, 0),
        "pending_events": api.pending_events(h),
        "drain_events": api.drain_events(h, out.ctypes.data, 16),
        "drain_events_owner": api.drain_events_owner(h, 0, out.ctypes.data, 16),
        "clear_events": api.clear_events(h),
        "snapshot_size": api.snapshot_size(h),
        "snapshot_write": api.snapshot_write(h, buf.ctypes.data, 4096),
        "snapshot_restore": api.snapshot_restore(h, buf.ctypes.data, 4096),
        "book_clear": api.book_clear(h),
        "state_hash": api.state_hash(h),
        "book_copy": api.book_copy(h),
        "book_valid": api.book_valid(h),
        "book_free": api.book_free(h),
    }


def _every_engine_call(api, h):
    sym, s = ctypes.c_uint32(), ctypes.c_int()
    p, q = ctypes.c_int64(), ctypes.c_int64()
    cmd = random_commands(1, 1)
    out = np.zeros(16, EVENT_DTYPE)
    return {
        "engine_set_time": api.engine_set_time(h, 5),
        "engine_submit": api.engine_submit(h, 1, 1, 0, 100, 5, 0, 0, 0),
        "engine_market": api.engine_market(h, 1, 2, 1, 1, 0),
        "engine_cancel": api.engine_cancel(h, 1, 1),
        "engine_modify": api.engine_modify(h, 1, 1, 2, 0),
        "engine_process": api.engine_process(h, cmd.ctypes.data, 1),
        "engine_get": api.engine_get(h, 1, ctypes.byref(sym), ctypes.byref(s), ctypes.byref(p),
                                     ctypes.byref(q)),
        "engine_count": api.engine_count(h),
        "engine_pending_events": api.engine_pending_events(h),
        "engine_drain_events": api.engine_drain_events(h, out.ctypes.data, 16),
        "engine_drain_events_owner": api.engine_drain_events_owner(h, 0, out.ctypes.data, 16),
        "engine_state_hash": api.engine_state_hash(h),
        "engine_book": api.engine_book(h, 1),
        "engine_valid": api.engine_valid(h),
    }


_ZERO = {"state_hash", "book_copy", "book_valid", "engine_state_hash", "engine_book",
         "engine_valid"}


def _assert_all_refused(results):
    for field, r in results.items():
        assert r == (0 if field in _ZERO else E), (field, r)


def test_handles_freed_python_book_every_call_refused(api):
    book = mc.OrderBook()
    book.submit(1, 1, 100, 5)
    h = book.handle
    assert api.book_valid(h) == 1
    del book
    gc.collect()
    _assert_all_refused(_every_book_call(api, h))


def test_handles_freed_c_book_every_call_refused_and_slot_reuse_keeps_it_dead(api):
    h = api.book_new(int(mc.STP.CANCEL_RESTING), 64)
    assert h != 0 and api.submit(h, 1, 0, 100, 5, 0, 0, 0) == 0
    assert api.book_free(h) == 0
    _assert_all_refused(_every_book_call(api, h))
    h2 = api.book_new(int(mc.STP.CANCEL_RESTING), 64)   # likely the same slot, a new generation
    try:
        assert h2 != h
        assert api.submit(h, 2, 0, 100, 5, 0, 0, 0) == E
        assert api.count(h2) == 0
    finally:
        assert api.book_free(h2) == 0


@pytest.mark.parametrize("value", [0, 1, 2, 3, 0xFFFFFFFF, 1 << 32, (1 << 32) + 12345,
                                   0xDEADBEEFCAFE, (1 << 64) - 1, (1 << 63) + 1])
def test_handles_garbage_value_every_call_refused(api, value):
    _assert_all_refused(_every_book_call(api, value))
    _assert_all_refused(_every_engine_call(api, value))


def test_handles_raw_pointer_and_neighbour_handles_refused_book_unchanged(api):
    book = mc.OrderBook()
    book.submit(1, 1, 100, 5)
    before = book.state_hash()
    h = book.handle
    for value in (book.raw_address, h + 1, h - 1, h ^ (1 << 34), h ^ (1 << 33), h | (3 << 32)):
        assert value != h
        _assert_all_refused(_every_book_call(api, value))
    assert book.state_hash() == before and len(book) == 1
    assert api.count(h) == 1


def test_handles_engine_gone_engine_and_its_books_refused(api):
    eng = Engine()
    eng.add_symbol(1)
    e = eng.handle
    b = api.engine_book(e, 1)
    assert b == eng.book(1).handle and api.engine_book(e, 99) == 0
    assert api.engine_submit(e, 1, 7, 0, 100, 3, 0, 0, 0) == 0
    assert api.count(b) == 1
    del eng
    gc.collect()
    _assert_all_refused(_every_engine_call(api, e))
    _assert_all_refused(_every_book_call(api, b))


def test_handles_journaled_engine_handle_refused_engine_and_journal_unchanged(api, tmp_path):
    # A journaled engine refuses to give out its handle (the table would bypass the journal),
    # but handles are issued in sequence: the number was easy to come by. It is found here as
    # the next generation of a slot just freed, which the engine's constructor takes.
    gc.collect()
    gc.disable()
    try:
        probe = Engine()
        freed = probe.handle
        del probe
        eng = Engine(journal=str(tmp_path), fsync="never")
    finally:
        gc.enable()
    eng.add_symbol(1)
    eng.submit(1, 5, 0, 100, 3)
    slot, gen = freed & 0xFFFFFFFF, (freed >> 32) >> 2
    guesses = [((((gen + k) << 2) | 2) << 32) | slot for k in (1, 2, 3)]
    before, seq = eng.state_hash(), eng.journal_seq
    for h in guesses:
        _assert_all_refused(_every_engine_call(api, h))
    assert eng.state_hash() == before and len(eng) == 1 and eng.journal_seq == seq
    assert eng.get(1) is None and len(eng.events()) == 1
    with pytest.raises(ValueError, match="journal"):
        eng.handle
    h_book = eng.book(1).handle
    assert api.count(h_book) == 1
    assert api.submit(h_book, 9, 0, 100, 1, 0, 0, 0) == -103
    eng.close()
    assert Engine.recover(str(tmp_path), readonly=True).state_hash() == before


def test_handles_engine_book_kept_by_python_outlives_engine_as_standalone(api):
    eng = Engine()
    book = eng.add_symbol(1)
    e, b = eng.handle, book.handle
    assert api.engine_submit(e, 1, 7, 0, 100, 3, 0, 0, 0) == 0
    del eng
    gc.collect()
    assert api.engine_count(e) == E
    # the OrderBook object is alive, so its handle is too: a standalone book now
    assert api.book_valid(b) == 1 and api.count(b) == 1 and book.get(7) == (0, 100, 3)
    assert api.cancel(b, 7) == 3 and len(book) == 0
    del book
    gc.collect()
    assert api.count(b) == E



def test_handles_feed_replayer_book_kept_by_python_outlives_replayer_records_events(api):
    # A feed replayer switches its books' event writing off while they are its own. A book
    # kept after the replayer is gone is a standalone book (record_events=True), but it went
    # on writing no events: its orders, from Python or C, gave events() nothing to read.
    from matchcore import itch
    rep = itch.Replayer()
    rep.feed(itch.generate(None, messages=3000, symbols=1, seed=5))
    book = next(iter(rep.books.values()))
    twin = book.copy()
    del rep
    gc.collect()
    assert book.record_events and not book.busy
    cmds = random_commands(300, 12, price_lo=1, price_hi=10**6)
    cmds["order_id"] += 1 << 40
    expect = run_python_calls(twin, cmds)
    assert len(expect) > 0
    assert_events_equal(run_python_calls(book, cmds), expect)
    assert book.state_hash() == twin.state_hash()
    assert api.submit(book.handle, 1 << 41, 0, 1, 1, 0, 0, 0) == 0
    assert api.pending_events(book.handle) == 1

def test_handles_kind_mismatch_refused(api):
    eng = Engine()
    eng.add_symbol(1)
    book = mc.OrderBook()
    _assert_all_refused(_every_book_call(api, eng.handle))
    _assert_all_refused(_every_engine_call(api, book.handle))
    assert len(book) == 0 and len(eng) == 0


def test_handles_python_owned_books_cannot_be_freed_from_c(api):
    book = mc.OrderBook()
    eng = Engine()
    eb = eng.add_symbol(1)
    assert api.book_free(book.handle) == E
    assert api.book_free(eb.handle) == E
    assert api.submit(book.handle, 1, 0, 100, 5, 0, 0, 0) == 0 and len(book) == 1


def test_handles_copy_has_own_handle_restore_and_clear_keep_it():
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    h = book.handle
    c = book.copy()
    assert c.handle not in (0, h) and c.raw_address != book.raw_address
    snap = book.snapshot()
    book.clear()
    book.restore(snap)
    assert book.handle == h


def test_handles_c_book_copy_is_owned_by_caller(api):
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    c = api.book_copy(book.handle)
    assert c != 0 and api.state_hash(c) == book.state_hash()
    assert api.book_free(c) == 0 and api.count(c) == E


def test_handles_released_when_objects_die_never_reissued():
    gc.collect()
    base = live_handles()
    seen = set()
    for _ in range(200):
        b = mc.OrderBook(capacity=0)
        e = Engine()
        e.add_symbol(3)
        seen.update((b.handle, e.handle, e.book(3).handle))
        del b, e
    gc.collect()
    assert len(seen) == 600
    assert live_handles() == base


def test_handles_registry_concurrent_new_free_from_threads(api):
    # ctypes releases the GIL: both threads take and return registry slots at the same time.
    got = [[], []]

    def work(k):
        for i in range(2000):
            h = api.book_new(0, 0)
            api.submit(h, i + 1, 0, 100, 1, 0, 0, 0)
            got[k].append((h, api.count(h)))
            api.book_free(h)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handles = [h for g in got for h, _ in g]
    assert len(set(handles)) == len(handles) == 4000 and 0 not in handles
    assert all(n == 1 for g in got for _, n in g)


# ---- record_events=False: nothing is written, whoever calls ----

def test_handles_record_events_false_c_calls_leave_no_events(api):
    cmds = random_commands(1500, 4)
    quiet = mc.OrderBook(record_events=False)
    loud = mc.OrderBook()
    assert len(run_c_calls(api, quiet.handle, cmds)) == 0
    assert api.pending_events(quiet.handle) == 0
    assert len(run_c_calls(api, loud.handle, cmds)) > 0
    assert quiet.state_hash() == loud.state_hash()
    assert api.process(quiet.handle, cmds.ctypes.data, len(cmds)) == len(cmds)
    assert api.pending_events(quiet.handle) == 0
    # the Python batch call still returns its events, and leaves none behind
    assert len(mc.OrderBook(record_events=False).process(cmds)) > 0


def test_handles_record_events_false_engine_c_calls_leave_no_events(api):
    cmds = random_commands(1500, 6, n_symbols=2, unknown_symbol=True)

    def make(rec):
        e = Engine(record_events=rec)
        for s in range(2):
            e.add_symbol(s, max_qty=18)
        return e

    quiet, loud = make(False), make(True)
    for eng in (quiet, loud):
        assert api.engine_process(eng.handle, cmds.ctypes.data, len(cmds)) == len(cmds)
    assert api.engine_pending_events(quiet.handle) == 0
    assert api.engine_pending_events(loud.handle) > 0
    assert quiet.state_hash() == loud.state_hash()
    assert len(quiet.process(cmds[:50])) > 0 and api.engine_pending_events(quiet.handle) == 0
