"""Numba entry: @njit code drives a book / engine by handle and sees the same events and state
as the Python methods and process(); cache=True works across processes; numba stays lazy."""
from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

numba = pytest.importorskip("numba", reason="numba is not installed; the Numba entry is optional")

import matchcore as mc  # noqa: E402
from matchcore import numba_ext as mcn  # noqa: E402
from matchcore._core import EVENT_DTYPE  # noqa: E402
from matchcore._engine import Engine  # noqa: E402
from conftest import assert_events_equal  # noqa: E402
from test_capi import random_commands, run_python_calls  # noqa: E402

SRC = Path(mc.__file__).resolve().parents[1]


@numba.njit
def _drive_book(book, cmds, evbuf, by=False):
    # by: cancels and modifies name their sender (cancel_by / modify_by)
    k = 0
    for i in range(cmds.shape[0]):
        c = cmds[i]
        mcn.set_time(book, c.ts_ns)
        if c.kind == 0:
            mcn.submit(book, c.order_id, c.side, c.price, c.qty, c.tif, c.owner, c.post_only)
        elif c.kind == 1:
            mcn.market(book, c.order_id, c.side, c.qty, c.owner)
        elif c.kind == 2:
            if by:
                mcn.cancel_by(book, c.order_id, c.owner)
            else:
                mcn.cancel(book, c.order_id)
        elif by:
            mcn.modify_by(book, c.order_id, c.qty, c.price, c.owner)
        else:
            mcn.modify(book, c.order_id, c.qty, c.price)
        k += mcn.drain_events(book, evbuf[k:])
    return k


@numba.njit
def _drive_engine(eng, cmds, evbuf, by=False):
    k = 0
    for i in range(cmds.shape[0]):
        c = cmds[i]
        mcn.engine_set_time(eng, c.ts_ns)
        if c.kind == 0:
            mcn.engine_submit(eng, c.symbol, c.order_id, c.side, c.price, c.qty, c.tif, c.owner,
                              c.post_only)
        elif c.kind == 1:
            mcn.engine_market(eng, c.symbol, c.order_id, c.side, c.qty, c.owner)
        elif c.kind == 2:
            if by:
                mcn.engine_cancel_by(eng, c.symbol, c.order_id, c.owner)
            else:
                mcn.engine_cancel(eng, c.symbol, c.order_id)
        elif by:
            mcn.engine_modify_by(eng, c.symbol, c.order_id, c.qty, c.price, c.owner)
        else:
            mcn.engine_modify(eng, c.symbol, c.order_id, c.qty, c.price)
        k += mcn.engine_drain_events(eng, evbuf[k:])
    return k


@pytest.mark.parametrize("seed", [1, 2])
def test_numba_random_session_matches_python_calls_and_process(seed):
    cmds = random_commands(2000, seed)
    book = mc.OrderBook()
    evbuf = np.zeros(40 * len(cmds), EVENT_DTYPE)
    n = _drive_book(book.address, cmds, evbuf)
    py_book = mc.OrderBook()
    expect = run_python_calls(py_book, cmds)
    assert_events_equal(evbuf[:n], expect, labels=("numba", "Python calls"))
    batch = mc.OrderBook()
    assert_events_equal(batch.process(cmds), expect, labels=("process()", "Python calls"))
    assert book.state_hash() == py_book.state_hash() == batch.state_hash()
    book.check_invariants()


def test_numba_engine_session_matches_process():
    cmds = random_commands(2000, 3, n_symbols=3, unknown_symbol=True)

    def make():
        e = Engine()
        for s in range(3):
            e.add_symbol(s, tick=1 + s, max_qty=18)
        return e

    eng = make()
    evbuf = np.zeros(40 * len(cmds), EVENT_DTYPE)
    n = _drive_engine(eng.address, cmds, evbuf)
    ref = make()
    assert_events_equal(evbuf[:n], ref.process(cmds), labels=("numba engine", "process()"))
    assert eng.state_hash() == ref.state_hash()
    eng.check_invariants()


@numba.njit
def _queries(book, out):
    ok_b, bp, bq = mcn.best(book, 0)
    ok_a, ap, aq = mcn.best(book, 1)
    found, side, price, qty = mcn.get(book, 2)
    missing = mcn.get(book, 999)[0]
    nd = mcn.depth_into(book, 0, out)
    return (ok_b, bp, bq, ok_a, found, side, price, qty, missing, nd,
            mcn.queue_position(book, 2), mcn.count(book), mcn.level_count(book, 0))


def test_numba_queries_match_python_methods():
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    book.submit(2, 0, 100, 3)
    book.submit(3, 0, 99, 4)
    out = np.zeros((1, 2), np.int64)
    r = _queries(book.address, out)
    assert r == (1, 100, 8, 0, 1, 0, 100, 3, 0, 1, 5, 3, 2)
    assert out.tolist() == book.depth(1)[0].tolist()


@numba.njit
def _bad_side_queries(book, side, out):
    return (mcn.best(book, side)[0], mcn.depth(book, side, 4, out),
            mcn.depth_orders(book, side, 4, out), mcn.level_count(book, side),
            mcn.depth_into(book, side, out[:4].reshape((2, 2))),
            mcn.submit(book, 10, side, 100, 1, 0, 0, 0), mcn.market(book, 11, side, 1, 0))


@numba.njit
def _bad_side_engine(eng, side):
    return (mcn.engine_submit(eng, 1, 12, side, 100, 1, 0, 0, 0),
            mcn.engine_market(eng, 1, 13, side, 1, 0))


@pytest.mark.parametrize("side", [2, -1, 255, 2**31 - 1, -2**31])
def test_numba_bad_side_every_side_taking_intrinsic_returns_invalid_side(side):
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    book.submit(2, 1, 101, 7)
    book.events()
    before = book.state_hash()
    out = np.full(12, -7, np.int64)
    bad = -int(mc.Reject.INVALID_SIDE)
    assert _bad_side_queries(book, side, out) == (bad,) * 7
    assert (out == -7).all() and book.state_hash() == before
    eng = Engine()
    eng.add_symbol(1)
    assert _bad_side_engine(eng, side) == (bad, bad)
    assert len(eng) == 0


@numba.njit
def _owner_drain(book, owner, out):
    mcn.submit(book, 1, 1, 100, 5, 0, 7, 0)
    mcn.submit(book, 2, 0, 100, 2, 0, 8, 0)
    mcn.submit(book, 3, 0, 90, 1, 0, 7, 0)
    return mcn.drain_events_owner(book, owner, out), mcn.pending_events(book)


def test_numba_drain_owner_short_buffer_keeps_later_events():
    book = mc.OrderBook()
    out = np.zeros(2, EVENT_DTYPE)
    n, pending_after = _owner_drain(book.address, 7, out)
    assert n == 2 and pending_after == 1
    assert out["order_id"].tolist() == [1, 2]        # ACCEPTED 1, FILL (7 as maker)
    assert out["maker_owner"].tolist() == [0, 7]
    assert book.events()["order_id"].tolist() == [3]


def test_numba_intrinsic_accepts_matchcore_enums():
    @numba.njit
    def enums(book):
        mcn.submit(book, 1, mc.Side.SELL, 100, 5, mc.TIF.GTC, 0, 0)
        return mcn.submit(book, 2, mc.Side.BUY, 100, 3, mc.TIF.IOC, 0, 0)

    book = mc.OrderBook()
    assert enums(book.address) == 3
    assert book.best_ask() == (100, 2)


def test_numba_intrinsic_rejects_non_integer_argument():
    @numba.njit
    def bad(book):
        return mcn.cancel(book, 1.5)

    with pytest.raises(numba.core.errors.TypingError):
        bad(mc.OrderBook().address)


def _env(cache_dir):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    return env


def test_numba_cache_true_loads_compiled_code_in_a_new_process(tmp_path):
    mod = tmp_path / "strategy_mod.py"
    mod.write_text(textwrap.dedent("""
        import numba
        import matchcore as mc
        from matchcore import numba_ext as mcn

        @numba.njit(cache=True)
        def session(book, n):
            filled = 0
            for i in range(n):
                mcn.submit(book, 2 * i + 1, 1, 100 + i % 5, 3, 0, 1, 0)
                filled += mcn.submit(book, 2 * i + 2, 0, 102, 2, 0, 2, 0)
            mcn.clear_events(book)
            return filled

        book = mc.OrderBook()
        print(session(book.address, 1000), book.state_hash(),
              sum(session.stats.cache_hits.values()), sum(session.stats.cache_misses.values()))
    """))
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, str(mod)], capture_output=True, text=True,
                             env=_env(tmp_path / "cache"), cwd=tmp_path, timeout=300)
        assert out.returncode == 0, out.stderr
        runs.append(out.stdout.split())
    (f1, h1, hits1, miss1), (f2, h2, hits2, miss2) = runs
    assert (f1, h1) == (f2, h2)
    assert (int(hits1), int(miss1)) == (0, 1)   # compiled and written to the cache
    assert (int(hits2), int(miss2)) == (1, 0)   # loaded from the cache, symbols resolved by name


def test_numba_not_imported_by_import_matchcore():
    code = "import sys, matchcore, matchcore._capi, matchcore._engine; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(Path("/tmp")), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("missing", ["numba", "llvmlite"])
def test_numba_ext_without_numba_names_the_extra_to_install(missing):
    # "No module named 'llvmlite'" named a package the user never asked for and not the extra
    # that installs it, as the other optional modules (metrics, nats, dbn, plots) do
    code = (f"import sys; sys.modules[{missing!r}] = None\n"
            "try:\n    import matchcore.numba_ext\n"
            "except ImportError as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(Path("/tmp")), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ImportError matchcore.numba_ext needs numba"), out.stdout
    assert "pip install 'matchcore[numba]'" in out.stdout


# ---- OrderBook / Engine objects as arguments; dead handles refused ----

@numba.njit
def _churn(book, n):
    """The issue's shape: submits on a narrow band and cancels of recent ids."""
    filled = 0
    for i in range(n):
        if i % 10 < 7:
            r = mcn.submit(book, i + 1, i % 2, 100 + (i * 7) % 20, 1 + i % 5, 0, 0, 0)
            if r > 0:
                filled += r
        else:
            mcn.cancel(book, i - (i * 13) % 50)
    return filled, mcn.count(book), mcn.pending_events(book)


def test_numba_temporary_book_object_is_kept_alive_for_the_call():
    ref = mc.OrderBook(record_events=False)
    expect = _churn(ref, 5000)
    assert expect[1] == len(ref) > 0
    # the temporary is held by the call: same result as with a named book
    assert _churn(mc.OrderBook(record_events=False), 5000) == expect
    assert _churn(mc.OrderBook(), 5000)[:2] == expect[:2]


def test_numba_temporary_book_handle_is_refused_not_freed_memory():
    # the handle of a book that is gone before the call: every call refused, nothing touched
    filled, count, pending = _churn(mc.OrderBook().handle, 5000)
    assert (filled, count, pending) == (0, -mcn.ERR_HANDLE, -mcn.ERR_HANDLE)


@numba.njit
def _counts(book, n):
    for _ in range(n):
        yield mcn.count(book)


def test_numba_generator_does_not_hold_its_book_steps_after_it_is_gone_refused():
    # the README's exception to "held until the compiled function returns": a compiled
    # generator holds the handle, not the object; a step after the book is gone is refused
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    assert list(_counts(book, 2)) == [1, 1]
    steps = _counts(mc.OrderBook(), 2)         # the temporary is gone once this returns
    assert list(steps) == [-mcn.ERR_HANDLE, -mcn.ERR_HANDLE]


@numba.njit
def _every_book_intrinsic(book, evbuf, cmds, lv, snap):
    return (mcn.set_time(book, 1), mcn.submit(book, 1, 0, 100, 1, 0, 0, 0),
            mcn.market(book, 2, 0, 1, 0), mcn.cancel(book, 1), mcn.modify(book, 1, 1, 0),
            mcn.apply(book, cmds), mcn.process(book, cmds), mcn.best(book, 0)[0],
            mcn.depth_into(book, 0, lv), mcn.get(book, 1)[0], mcn.queue_position(book, 1),
            mcn.count(book), mcn.level_count(book, 0), mcn.pending_events(book),
            mcn.drain_events(book, evbuf), mcn.drain_events_owner(book, 0, evbuf),
            mcn.clear_events(book), mcn.snapshot_size(book),
            mcn.snapshot_write(book, snap, snap.shape[0]),
            mcn.snapshot_restore(book, snap, snap.shape[0]), mcn.book_clear(book),
            mcn.state_hash(book), mcn.book_copy(book), mcn.book_valid(book),
            mcn.book_free(book))


@numba.njit
def _every_engine_intrinsic(eng, evbuf, cmds):
    return (mcn.engine_set_time(eng, 1), mcn.engine_submit(eng, 1, 1, 0, 100, 1, 0, 0, 0),
            mcn.engine_market(eng, 1, 2, 0, 1, 0), mcn.engine_cancel(eng, 1, 1),
            mcn.engine_modify(eng, 1, 1, 1, 0), mcn.engine_process(eng, cmds),
            mcn.engine_get(eng, 1)[0], mcn.engine_count(eng), mcn.engine_pending_events(eng),
            mcn.engine_drain_events(eng, evbuf), mcn.engine_drain_events_owner(eng, 0, evbuf),
            mcn.engine_state_hash(eng), mcn.engine_book(eng, 1), mcn.engine_valid(eng))


def _args():
    return (np.zeros(8, EVENT_DTYPE), random_commands(2, 1), np.zeros((2, 2), np.int64),
            np.zeros(4096, np.uint8))


def test_numba_freed_garbage_and_foreign_handles_every_intrinsic_refused():
    E = -mcn.ERR_HANDLE
    book_expect = (E,) * 21 + (0, 0, 0, E)
    engine_expect = (E,) * 11 + (0, 0, 0)
    b = mc.OrderBook()
    dead = b.handle
    del b
    eng = Engine()
    eng.add_symbol(1)
    live_book = mc.OrderBook()
    for h in (dead, 0, 12345, (1 << 40) + 7, live_book.raw_address, eng.handle):
        assert _every_book_intrinsic(h, *_args()) == book_expect, h
    dead_engine = Engine()
    dead_engine.add_symbol(1)
    de, db = dead_engine.handle, dead_engine.book(1).handle
    del dead_engine
    for h in (de, 0, 99, live_book.handle, live_book.raw_address):
        assert _every_engine_intrinsic(h, _args()[0], _args()[1]) == engine_expect, h
    assert _every_book_intrinsic(db, *_args()) == book_expect
    assert len(live_book) == 0 and len(eng) == 0


def test_numba_engine_object_argument_and_wrong_kind_typing_error():
    eng = Engine()
    eng.add_symbol(1)
    res = _every_engine_intrinsic(eng, *_args()[:2])
    assert res[0] == 0 and res[-1] == 1 and res[-2] == eng.book(1).handle

    @numba.njit
    def wrong(book):
        return mcn.engine_count(book)

    with pytest.raises(numba.core.errors.TypingError, match="Engine or an engine handle"):
        wrong(mc.OrderBook())
    with pytest.raises(numba.core.errors.TypingError, match="OrderBook or a book handle"):
        _churn(eng, 1)


@numba.njit
def _overlong_counts(book, lv, evbuf, cmds):
    n_cmds = mcn.process_raw(book, cmds, 10 ** 9)
    n_lv = mcn.depth(book, 0, 10 ** 9, lv)
    n_ev = mcn.drain_events_raw(book, evbuf, 10 ** 9)
    n_own = mcn.drain_events_owner_raw(book, 0, evbuf, 10 ** 9)
    return n_cmds, n_lv, n_ev, n_own


@numba.njit
def _apply_one(book, cmd):
    return mcn.apply(book, cmd)


def test_numba_apply_array_shorter_than_a_command_refused():
    book = mc.OrderBook()
    cmds = random_commands(1, 3, invalid=False)
    assert _apply_one(book, cmds[:0]) == -int(mc.Reason.INVALID_COMMAND)
    assert _apply_one(book, np.zeros(47, np.uint8)) == -int(mc.Reason.INVALID_COMMAND)
    assert len(book.events()) == 0
    assert _apply_one(book, cmds) >= 0 and len(book.events()) > 0


def test_numba_counts_clamped_to_the_array_passed():
    cmds = random_commands(300, 9, invalid=False)
    book = mc.OrderBook()
    for i in range(6):
        book.submit(10 ** 6 + i, 0, 50 + i, 10 ** 6)   # 6 bid levels the flow cannot take
    lv = np.zeros((3, 2), np.int64)
    evbuf = np.zeros(5, EVENT_DTYPE)
    n_cmds, n_lv, n_ev, n_own = _overlong_counts(book, lv, evbuf, cmds)
    assert n_cmds == 300 and n_lv == 3 and n_ev == 5 and n_own <= 5
    assert lv.tolist() == book.depth(3)[0].tolist()


def test_numba_record_events_false_book_writes_no_events_from_compiled_code():
    quiet = mc.OrderBook(record_events=False)
    loud = mc.OrderBook()
    f1, n1, pending_quiet = _churn(quiet, 3000)
    f2, n2, pending_loud = _churn(loud, 3000)
    assert (f1, n1) == (f2, n2) and pending_quiet == 0 and pending_loud > 0
    assert quiet.state_hash() == loud.state_hash()


def test_numba_cache_true_with_book_object_argument_in_a_new_process(tmp_path):
    mod = tmp_path / "strategy_obj.py"
    mod.write_text(textwrap.dedent("""
        import numba
        import matchcore as mc
        from matchcore import numba_ext as mcn

        @numba.njit(cache=True)
        def session(book, eng, n):
            filled = 0
            for i in range(n):
                mcn.submit(book, 2 * i + 1, 1, 100 + i % 5, 3, 0, 1, 0)
                filled += mcn.submit(book, 2 * i + 2, 0, 102, 2, 0, 2, 0)
                mcn.engine_submit(eng, 1, i + 1, i % 2, 100, 1, 0, 0, 0)
            return filled, mcn.engine_count(eng)

        eng = mc.Engine(record_events=False)
        eng.add_symbol(1)
        book = mc.OrderBook(record_events=False)
        f, c = session(book, eng, 1000)
        print(f, c, book.state_hash(), sum(session.stats.cache_hits.values()),
              sum(session.stats.cache_misses.values()))
    """))
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, str(mod)], capture_output=True, text=True,
                             env=_env(tmp_path / "cache"), cwd=tmp_path, timeout=300)
        assert out.returncode == 0, out.stderr
        runs.append(out.stdout.split())
    assert runs[0][:3] == runs[1][:3]
    assert (runs[0][3], runs[0][4]) == ("0", "1") and (runs[1][3], runs[1][4]) == ("1", "0")


def test_numba_process_multi_dimensional_commands_raise_and_change_nothing():
    # process()/engine_process() take shape[0] as the count: a 2-D batch is refused rather
    # than cut short (the compiled and reference books' process() refuse it the same way)
    cmds = random_commands(8, 5, invalid=False)
    book = mc.OrderBook()
    with pytest.raises(ValueError, match="1-D array of commands"):
        mcn.process(book, cmds.reshape(2, 4))
    assert len(book) == 0 and len(book.events()) == 0
    eng = mc.Engine()
    eng.add_symbol(0)
    eng_cmds = cmds.copy()
    eng_cmds["symbol"] = 0
    with pytest.raises(ValueError, match="1-D array of commands"):
        mcn.engine_process(eng, eng_cmds.reshape(4, 2))
    assert len(eng) == 0 and len(eng.events()) == 0
    assert mcn.process(book, cmds) == 8


def test_numba_drains_multi_dimensional_events_raise_and_keep_the_events():
    # drain_events() and its owner/engine variants took a 2-D event array (shape[0] rows as
    # the count), where process() refuses a 2-D batch: event arrays are 1-D too
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5, owner=7)
    book.submit(2, 1, 100, 2, owner=8)
    eng = mc.Engine()
    eng.add_symbol(0)
    eng.submit(0, 1, 0, 100, 5, owner=7)
    eng.submit(0, 2, 1, 100, 2, owner=8)
    book_twin, eng_twin = book.copy(), copy.deepcopy(eng)
    out = mcn.event_buffer(8).reshape(4, 2)
    calls = [
        ("drain_events()", lambda: mcn.drain_events(book, out)),
        ("drain_events_owner()", lambda: mcn.drain_events_owner(book, 7, out)),
        ("engine_drain_events()", lambda: mcn.engine_drain_events(eng, out)),
        ("engine_drain_events_owner()", lambda: mcn.engine_drain_events_owner(eng, 7, out)),
    ]
    for name, call in calls:
        with pytest.raises(ValueError, match=re.escape(f"{name} needs a 1-D array of events")):
            call()
    for obj, twin in ((book, book_twin), (eng, eng_twin)):
        expected = twin.events()
        assert len(expected) > 0
        assert_events_equal(obj.events(), expected)


@numba.njit
def _process_any(book, cmds):
    return mcn.process(book, cmds)


@numba.njit
def _engine_process_any(eng, cmds):
    return mcn.engine_process(eng, cmds)


@numba.njit
def _drains_any(book, eng, out):
    return (mcn.drain_events(book, out), mcn.drain_events_owner(book, 0, out),
            mcn.engine_drain_events(eng, out), mcn.engine_drain_events_owner(eng, 0, out))


@pytest.mark.parametrize("dtype", [np.int64, np.float64, np.uint8])
def test_numba_process_and_drain_array_not_record_dtype_typing_error_book_unchanged(dtype):
    # C reads a process() array as commands and writes events into a drain's array: 48 bytes
    # of an int64 array were applied as a command (this one rested order 1 at 100), where
    # OrderBook.process() refuses any array that is not COMMAND_DTYPE
    book = mc.OrderBook()
    eng = mc.Engine()
    eng.add_symbol(0)
    cmds = np.array([0, 1, 100, 5, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.int64).view(dtype)
    with pytest.raises(numba.core.errors.TypingError, match="needs an array of matchcore"
                                                            ".COMMAND_DTYPE"):
        _process_any(book, cmds)
    with pytest.raises(numba.core.errors.TypingError, match="needs an array of matchcore"
                                                            ".COMMAND_DTYPE"):
        _engine_process_any(eng, cmds)
    assert len(book) == len(eng) == 0 and len(book.events()) == len(eng.events()) == 0
    book.submit(1, 0, 100, 5)
    eng.submit(0, 1, 0, 100, 5)
    out = np.zeros(64, np.uint8).view(dtype)
    with pytest.raises(numba.core.errors.TypingError, match="needs an array of matchcore"
                                                            ".EVENT_DTYPE"):
        _drains_any(book, eng, out)
    assert not out.any() and len(book.events()) == len(eng.events()) == 1
    good = np.zeros(1, mc.COMMAND_DTYPE)
    good[0] = (0, 2, 100, 5, 0, 0, mc.CommandKind.SUBMIT, mc.Side.SELL, mc.TIF.GTC, 0)
    assert _process_any(book, good) == 1 and _engine_process_any(eng, good) == 1
    assert _drains_any(book, eng, np.zeros(4, mc.EVENT_DTYPE)) == (2, 0, 2, 0)


@numba.njit
def _process_one_record(book, eng, cmds):
    return mcn.process(book, cmds[0]) + mcn.engine_process(eng, cmds[0])


@numba.njit
def _drains_one_record(book, eng, out):
    return (mcn.drain_events(book, out[0]), mcn.drain_events_owner(book, 0, out[0]),
            mcn.engine_drain_events(eng, out[0]), mcn.engine_drain_events_owner(eng, 0, out[0]))


def test_numba_process_and_drain_given_one_record_typing_error_names_the_dtype():
    # A single record (cmds[0], out[0]) where the helpers take an array of them failed with
    # "KeyError: 'ndim'" raised from inside Numba's type inference, naming neither the helper
    # nor what it takes; it is refused as any other non-array is, nothing run or drained
    book = mc.OrderBook()
    eng = mc.Engine()
    eng.add_symbol(0)
    book.submit(1, 0, 100, 5)
    eng.submit(0, 1, 0, 100, 5)
    cmds = np.zeros(1, mc.COMMAND_DTYPE)
    cmds[0] = (0, 2, 100, 5, 0, 0, mc.CommandKind.SUBMIT, mc.Side.SELL, mc.TIF.GTC, 0)
    with pytest.raises(numba.core.errors.TypingError,
                       match=r"process\(\) needs an array of matchcore\.COMMAND_DTYPE, got Record"):
        _process_one_record(book, eng, cmds)
    out = np.zeros(4, EVENT_DTYPE)
    with pytest.raises(numba.core.errors.TypingError,
                       match=r"drain_events\(\) needs an array of "
                             r"matchcore\.EVENT_DTYPE, got Record"):
        _drains_one_record(book, eng, out)
    assert len(book) == len(eng) == 1 and not out.view(np.uint8).any()
    assert len(book.events()) == len(eng.events()) == 1


def _aligned_struct(dtype):
    # the same fields at the same offsets, declared as a C struct is (align=True): numpy holds
    # it equal to `dtype`, and OrderBook.process() / Engine.process() take it
    return np.dtype([(name, dtype.fields[name][0]) for name in dtype.names], align=True)


@numba.njit
def _drain_both(book, eng, out_book, out_eng):
    return mcn.drain_events(book, out_book), mcn.engine_drain_events(eng, out_eng)


def test_numba_process_and_drain_take_an_equal_aligned_struct_dtype_as_python_does():
    # The helpers refused (typing error) an array whose dtype numpy and process() hold equal to
    # COMMAND_DTYPE / EVENT_DTYPE, only because it was declared with align=True: the same
    # records, the same bytes, that OrderBook.process() and Engine.process() apply.
    cmd_dt, ev_dt = _aligned_struct(mc.COMMAND_DTYPE), _aligned_struct(EVENT_DTYPE)
    assert cmd_dt == mc.COMMAND_DTYPE and ev_dt == EVENT_DTYPE and cmd_dt.isalignedstruct
    cmds = np.zeros(2, cmd_dt)
    cmds["order_id"] = [1, 2]
    cmds["side"] = [0, 1]
    cmds["price"] = 100
    cmds["qty"] = [5, 3]
    book, eng = mc.OrderBook(), mc.Engine()
    eng.add_symbol(0)
    assert _process_any(book, cmds) == 2 and _engine_process_any(eng, cmds) == 2
    py_book, py_eng = mc.OrderBook(), mc.Engine()
    py_eng.add_symbol(0)
    want_book, want_eng = py_book.process(cmds), py_eng.process(cmds)
    out_book, out_eng = np.zeros(8, ev_dt), np.zeros(8, ev_dt)
    n_book, n_eng = _drain_both(book, eng, out_book, out_eng)
    assert out_book[:n_book].tobytes() == want_book.tobytes()
    assert out_eng[:n_eng].tobytes() == want_eng.tobytes()
    assert book.state_hash() == py_book.state_hash() and eng.state_hash() == py_eng.state_hash()
    book.submit(3, 0, 99, 1, owner=7)
    eng.submit(0, 3, 0, 99, 1, owner=7)
    assert _drains_any(book, eng, out_book) == (1, 0, 1, 0)


# ---- integer arguments that do not fit their C parameter ----

@numba.njit
def _submit_nb(book, oid, side, price, qty, tif, owner, post_only):
    return mcn.submit(book, oid, side, price, qty, tif, owner, post_only)


def _rejected_like_c(side=0, price=100, qty=5, tif=0, c_side=0, c_price=100, c_qty=5, c_tif=0):
    """(result, events) from Numba with the out-of-range values, and from C with invalid ones."""
    from test_capi import CTable
    nb_book, c_book = mc.OrderBook(), mc.OrderBook()
    got = _submit_nb(nb_book, 1, side, price, qty, tif, 0, 0)
    want = CTable().submit(c_book.handle, 1, c_side, c_price, c_qty, c_tif, 0, 0)
    return (got, nb_book.events().tobytes(), len(nb_book)), (want, c_book.events().tobytes(),
                                                             len(c_book))


@pytest.mark.parametrize("kw, c_kw, reason", [
    (dict(side=2**32), dict(c_side=-1), "INVALID_SIDE"),             # was BUY
    (dict(side=-2**32 + 1), dict(c_side=-1), "INVALID_SIDE"),        # was SELL
    (dict(tif=2**32 + 1), dict(c_tif=-1), "INVALID_TIF"),            # was IOC
    (dict(price=np.uint64(2**64 - 100)), dict(c_price=-1), "INVALID_PRICE"),
    (dict(qty=np.uint64(2**63)), dict(c_qty=-1), "INVALID_QTY"),
])
def test_numba_out_of_range_signed_argument_rejected_as_c_rejects_an_invalid_value(kw, c_kw,
                                                                                   reason):
    got, want = _rejected_like_c(**kw, **c_kw)
    assert got == want
    assert got[0] == -int(mc.Reject[reason]) and got[2] == 0


@numba.njit
def _unsigned_cases(book, eng, bad):
    return (mcn.submit(book, bad, 0, 100, 5, 0, 0, 0),       # order id
            mcn.submit(book, 7, 0, 100, 5, 0, bad, 0),        # owner
            mcn.market(book, bad, 0, 5, 0),
            mcn.cancel(book, bad),
            mcn.modify(book, bad, 1, 0),
            mcn.get(book, bad)[0],
            mcn.queue_position(book, bad),
            mcn.drain_events_owner_raw(book, bad, 0, 0),
            mcn.engine_submit(eng, bad, 8, 0, 100, 5, 0, 0, 0),   # symbol
            mcn.engine_cancel(eng, 1, bad),
            mcn.engine_get(eng, bad)[0])


def test_numba_negative_id_owner_or_symbol_refused_without_a_call():
    # An order id, owner or symbol has no invalid value in its unsigned C type: -1 would become
    # 2**64-1, a valid id. The call is not made and -MC_R_INVALID_COMMAND is returned.
    book = mc.OrderBook()
    book.submit(2**64 - 1, 1, 200, 1)
    book.events()
    eng = Engine()
    eng.add_symbol(1)
    eng.add_symbol(0)
    before = (book.state_hash(), eng.state_hash())
    assert _unsigned_cases(book, eng, -1) == (-int(mc.Reject.INVALID_COMMAND),) * 11
    assert (book.state_hash(), eng.state_hash()) == before
    assert len(book.events()) == 0 and len(eng.events()) == 0


@numba.njit
def _engine_symbol(eng, sym):
    return mcn.engine_submit(eng, sym, 9, 0, 100, 5, 0, 0, 0), mcn.engine_book(eng, sym)


def test_numba_symbol_beyond_u32_not_routed_to_a_wrapped_symbol():
    eng = Engine()
    eng.add_symbol(1)
    assert _engine_symbol(eng, 2**32 + 1) == (-int(mc.Reject.INVALID_COMMAND), 0)
    assert len(eng) == 0
    assert _engine_symbol(eng, np.uint32(1))[0] == 0 and eng.get(9) == (1, 0, 100, 5)


@numba.njit
def _misc(book, wide):
    return (mcn.level_count(book, wide), mcn.best(book, wide)[0],
            mcn.book_new(wide, 16))


def test_numba_other_wide_values_refused_not_wrapped():
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    # side 2**32 was BUY; stp 2**32 made a NONE book (a handle nobody frees)
    assert _misc(book, 2**32) == (-int(mc.Reject.INVALID_SIDE), -int(mc.Reject.INVALID_SIDE), 0)


def test_numba_in_range_values_of_any_integer_type_pass_unchanged():
    book = mc.OrderBook()
    assert _submit_nb(book, np.uint64(2**64 - 1), np.int8(1), np.uint64(100), np.int16(5),
                      np.uint8(0), np.uint64(2**64 - 2), True) == 0
    assert book.get(2**64 - 1) == (1, 100, 5)
    # post_only 2**32 (was 0 once wrapped): any non-zero value is post-only, which would cross
    bad = -int(mc.Reject.POST_ONLY_WOULD_CROSS)
    assert _submit_nb(book, 3, 0, 101, 2, 0, 0, 2**32) == bad and book.get(3) is None


@numba.njit
def _enter_on(book, oid):
    return (mcn.submit(book, oid, 0, 100, 1, 0, 0, 0), mcn.cancel(book, 5),
            mcn.modify(book, 5, 1, 0), mcn.market(book, oid, 1, 1, 0), mcn.count(book))


def test_numba_engine_book_refuses_order_entry_engine_takes_it():
    # an engine's book (by object or handle) refuses Numba order entry as Python does; its
    # queries answer, and the engine's own entry takes the order and routes it
    eng = Engine()
    eng.add_symbol(1)
    eng.add_symbol(2)
    eng.submit(1, 5, 0, 100, 3)
    before = eng.state_hash()
    ro = -mcn.ERR_READONLY
    assert _enter_on(eng.book(1), 9) == (ro, ro, ro, ro, 1)
    assert _enter_on(eng.book(1).handle, 9) == (ro, ro, ro, ro, 1)
    assert eng.state_hash() == before
    assert mcn.ERR_BUSY == 102 and mcn.ERR_READONLY == 103
    assert _engine_enter(eng, 1, 9) == 0
    assert eng.get(9) is not None
    eng.check_invariants()


@numba.njit
def _engine_enter(eng, sym, oid):
    return mcn.engine_submit(eng, sym, oid, 0, 99, 1, 0, 0, 0)


@numba.njit
def _set_time_nb(book, ts):
    return mcn.set_time(book, ts)


def test_numba_set_time_on_engine_book_refused_clock_unchanged():
    # the book's Python methods refuse a ts_ns on an engine's book; Numba's set_time moved its
    # clock. Refused as order entry is, by object and by handle; the engine's own set_time works
    eng = Engine()
    eng.add_symbol(1)
    eng.submit(1, 5, 0, 100, 3, ts_ns=7)
    before = eng.book(1).snapshot()
    ro = -mcn.ERR_READONLY
    assert (_set_time_nb(eng.book(1), 99), _set_time_nb(eng.book(1).handle, 99)) == (ro, ro)
    assert eng.book(1).snapshot() == before
    assert _set_time_nb(mc.OrderBook(), 99) == 0


@numba.njit
def _restore_nb(book, snap):
    return mcn.snapshot_restore(book, snap, snap.shape[0])


def test_numba_feed_replayer_book_refuses_snapshot_restore_as_python_book_unchanged():
    # restore() refuses a feed replayer's book (the replay goes on building it); Numba's
    # snapshot_restore, by object or handle, returns -ERR_READONLY and changes nothing
    from matchcore import itch
    rep = itch.Replayer()
    rep.feed(itch.generate(None, messages=3000, symbols=1, seed=5))
    book = next(iter(rep.books.values()))
    before = book.snapshot()
    other = mc.OrderBook()
    other.submit(1, 0, 100, 5)
    snap = np.frombuffer(other.snapshot(), np.uint8).copy()
    ro = -mcn.ERR_READONLY
    assert (_restore_nb(book, snap), _restore_nb(book.handle, snap)) == (ro, ro)
    assert book.snapshot() == before
    mine = mc.OrderBook()
    assert _restore_nb(mine, snap) == 0 and mine.snapshot() == other.snapshot()


@numba.njit
def _write_targets(book, eng, snap, evbuf, lv):
    return (mcn.snapshot_write(book, snap, snap.shape[0]), mcn.drain_events(book, evbuf),
            mcn.drain_events_owner(book, 0, evbuf), mcn.engine_drain_events(eng, evbuf),
            mcn.engine_drain_events_owner(eng, 0, evbuf), mcn.depth_into(book, 0, lv))


def test_numba_read_only_array_as_write_target_typing_error_nothing_written(tmp_path):
    # C wrote into these: into an immutable bytes object, and through a read-only memory map
    # the process died with SIGSEGV
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    eng = Engine()
    eng.add_symbol(1)
    eng.submit(1, 2, 0, 100, 5)
    raw = bytes(4096)
    path = tmp_path / "zero.bin"
    path.write_bytes(raw)
    snap_ro = np.memmap(path, dtype=np.uint8, mode="r")
    ev_ro = np.frombuffer(raw, dtype=EVENT_DTYPE)
    lv_ro = np.zeros((4, 2), np.int64)
    lv_ro.flags.writeable = False
    snap, ev, lv = np.zeros(4096, np.uint8), np.zeros(8, EVENT_DTYPE), np.zeros((4, 2), np.int64)
    for args in [(snap_ro, ev, lv), (snap, ev_ro, lv), (snap, ev, lv_ro)]:
        with pytest.raises(numba.core.errors.TypingError, match="must be a writable array"):
            _write_targets(book, eng, *args)
    assert raw == bytes(4096) and path.read_bytes() == bytes(4096) and not lv_ro.any()
    assert len(book.events()) == 1 and len(eng.events()) == 1
    book.submit(3, 1, 101, 5)
    eng.submit(1, 4, 1, 101, 5)
    r = _write_targets(book, eng, snap, ev, lv)
    assert r[0] == len(book.snapshot()) and r[1] == 1 and r[3] == 1 and r[5] == 1


@pytest.mark.parametrize("dtype", [np.int32, np.float64, np.uint8])
def test_numba_depth_into_array_not_int64_typing_error_not_garbage(dtype):
    # C writes int64 values: an int32 array got half-values, a float64 one denormals
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)

    @numba.njit
    def depth_into(book, out):
        return mcn.depth_into(book, 0, out)

    @numba.njit
    def depth_orders(book, out):
        return mcn.depth_orders(book, 0, out.shape[0], out)

    out = np.zeros((4, 2), dtype)
    with pytest.raises(numba.core.errors.TypingError, match="must be an int64 array"):
        depth_into(book, out)
    with pytest.raises(numba.core.errors.TypingError, match="must be an int64 array"):
        depth_orders(book, np.zeros((4, 3), dtype))
    assert not out.any()
    assert depth_into(book, np.zeros((4, 2), np.int64)) == 1


@pytest.mark.parametrize("out", [None, 3, "kind"])
def test_numba_depth_into_not_an_array_typing_error_in_its_words(out):
    # depth_into read out.ndim before anything checked what out was: Numba's own "Unknown
    # attribute 'ndim' of type none", from inside matchcore's source, and for a record
    # (evbuf[0], an easy slip beside the drain helpers) of that record's whole type
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)

    @numba.njit
    def depth_into(book, out):
        return mcn.depth_into(book, 0, out)

    @numba.njit
    def depth_into_record(book, evbuf):
        return mcn.depth_into(book, 0, evbuf[0])

    if out == "kind":
        call, args = depth_into_record, (book, mcn.event_buffer(2))
    else:
        call, args = depth_into, (book, out)
    with pytest.raises(numba.core.errors.TypingError,
                       match=re.escape("depth_into() needs an int64 array of shape (k, 2), got ")):
        call(*args)
    assert len(book) == 1 and book.depth(4)[0].tolist() == [[100, 5]]


@numba.njit
def _book_new_nb(stp, capacity):
    return mcn.book_new(stp, capacity)


def test_numba_book_new_out_of_range_capacity_gives_handle_zero_as_documented():
    # a capacity that does not fit int64 is passed as -1: "book_new the handle 0", as the
    # module says; C made a book of it (and nobody frees that handle)
    import gc

    from matchcore._handles import live_handles
    # books earlier tests left in reference cycles are not counted: the collector frees them
    # at its own time, here while numba compiles
    gc.collect()
    before = live_handles()
    assert _book_new_nb(0, np.uint64(2**63)) == 0
    assert _book_new_nb(0, -1) == 0 and _book_new_nb(0, 2**30 + 1) == 0
    assert live_handles() == before
    h = _book_new_nb(0, 16)
    assert h != 0 and mcn.ADDRESSES and live_handles() == before + 1
    from test_capi import CTable
    assert CTable().book_free(h) == 0 and live_handles() == before


def test_numba_book_or_engine_as_global_or_closure_variable_typing_error_names_the_way():
    # A global or closure variable would be frozen into the compiled code with its handle;
    # it is refused while typing, with a message saying to pass the object as an argument
    # (not an internal lowering error), and nothing reaches the book. The globals live only
    # during the test: made at import, the first book of the process held the first handle
    # for the whole run, which test_handles uses as a value no book holds.
    global _GLOBAL_BOOK, _GLOBAL_ENGINE
    _GLOBAL_BOOK, _GLOBAL_ENGINE = mc.OrderBook(), Engine()
    try:
        _refused_as_global_or_closure()
    finally:
        del _GLOBAL_BOOK, _GLOBAL_ENGINE


def _refused_as_global_or_closure():
    @numba.njit
    def via_global():
        return mcn.submit(_GLOBAL_BOOK, 1, 0, 100, 5, 0, 0, 0)

    @numba.njit
    def via_global_engine():
        return mcn.engine_count(_GLOBAL_ENGINE)

    def make(book):
        @numba.njit
        def via_closure(oid):
            return mcn.submit(book, oid, 0, 100, 5, 0, 0, 0)
        return via_closure

    closed = mc.OrderBook()
    for fn, arg, what in ((via_global, (), "OrderBook"), (via_global_engine, (), "Engine"),
                          (make(closed), (1,), "OrderBook")):
        with pytest.raises(numba.core.errors.TypingError,
                           match=f"matchcore {what} cannot be used as a global or closure "
                                 f"variable.*pass the {what} as an argument"):
            fn(*arg)
    assert len(_GLOBAL_BOOK) == 0 and len(closed) == 0

    @numba.njit
    def as_argument(book, oid):
        return mcn.submit(book, oid, 0, 100, 5, 0, 0, 0)

    assert as_argument(closed, 1) == 0 and len(closed) == 1


def test_numba_recorder_argument_refused_in_words_that_say_why(tmp_path):
    # A Recorder stands in for its book in Python ("returns the Recorder to use as the
    # book"), so it is what a user hands to compiled code next: Numba said only "non-precise
    # type pyobject ... Cannot determine Numba type of <class 'matchcore.native.Recorder'>"
    from matchcore.native import Recorder, read_commands

    @numba.njit
    def enter(book):
        return mcn.submit(book, 1, 0, 100, 5, 0, 0, 0)

    # object mode calls the Recorder's own methods, which journal: it keeps taking one
    @numba.jit(forceobj=True)
    def enter_as_object(rec):
        return rec.submit(2, 0, 100, 5)

    path = tmp_path / "j.mccmd"
    with Recorder(mc.OrderBook(), path) as rec:
        with pytest.raises(numba.core.errors.TypingError,
                           match=r"a matchcore\.native\.Recorder cannot be passed to compiled "
                                 r"code: .*bypass its journal"):
            enter(rec)
        assert len(rec) == 0
        assert enter_as_object(rec) == 0
    assert read_commands(path)["order_id"].tolist() == [2]


def test_numba_book_or_engine_as_default_argument_value_refused_message_names_it():
    # A default argument value is frozen into the compiled code as a global is; the refusal
    # said "global or closure variable" and to pass the object as an argument, to a caller
    # whose function did take it as an argument (by default).
    book, eng = mc.OrderBook(), Engine()

    @numba.njit
    def default_book(oid, b=book):
        return mcn.submit(b, oid, 0, 100, 5, 0, 0, 0)

    @numba.njit
    def default_engine(e=eng):
        return mcn.engine_count(e)

    for fn, arg, what in ((default_book, (1,), "OrderBook"), (default_engine, (), "Engine")):
        with pytest.raises(ValueError, match=f"matchcore {what} cannot be used as a global or "
                                             f"closure variable or a default argument value"
                                             f".*pass the {what} as an argument"):
            fn(*arg)
    assert len(book) == 0 and default_book(2, book) == 0 and len(book) == 1


def test_numba_busy_book_object_argument_raises_busy_error_int_handle_returns_err_busy():
    # While another thread's call that released the GIL uses the book, a compiled function
    # given the OrderBook itself is refused when the call starts (the object's handle is read
    # then, as any Python access to the book): BusyError, the function not entered. Given the
    # int handle, it runs and each table call returns -ERR_BUSY. The book is unchanged.
    import threading
    import time
    from matchcore._timing import process_open_loop

    @numba.njit(nogil=True)
    def enter(book):
        return mcn.submit(book, 10 ** 12, 0, 5, 1, 0, 0, 0), mcn.count(book)

    book = mc.OrderBook()
    book.submit(1, 1, 500, 3)
    h = book.handle
    enter(mc.OrderBook())                       # compiled before the hold
    enter(mc.OrderBook().handle)
    before = book.state_hash()
    cmds = np.zeros(2, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = [900_000_001, 900_000_002]
    cmds["price"] = 9
    cmds["qty"] = 1
    t = threading.Thread(target=process_open_loop, args=(book, cmds),
                         kwargs={"arrivals_ns": np.array([0, 400_000_000], np.float64)})
    t.start()
    deadline = time.monotonic() + 10
    while not book.busy:
        assert t.is_alive() and time.monotonic() < deadline
        time.sleep(0)
    with pytest.raises(mc.BusyError, match="OrderBook is busy"):
        enter(book)
    by_handle = enter(h)
    still = book.busy
    t.join()
    if not still:
        pytest.skip("the hold ended before the calls were made")
    assert by_handle == (-mcn.ERR_BUSY, -mcn.ERR_BUSY)
    for oid in (900_000_001, 900_000_002):
        assert book.cancel(oid) == 1
    assert book.state_hash() == before and book.get(10 ** 12) is None


def test_numba_cancel_by_modify_by_carry_the_sender_as_process():
    # mcn.cancel / mcn.modify name no sender; the _by forms give the REJECTED event of an id
    # resting nowhere the sender's owner, as process() and the Python owner= do
    from test_capi import with_senders

    cmds = with_senders(random_commands(2000, 7), 7)
    book = mc.OrderBook()
    evbuf = np.zeros(40 * len(cmds), EVENT_DTYPE)
    n = _drive_book(book, cmds, evbuf, True)
    want = mc.OrderBook().process(cmds)
    assert_events_equal(evbuf[:n], want, labels=("numba *_by", "process()"))
    assert (want["owner"][want["kind"] == int(mc.EventKind.REJECTED)] != 0).any()
    ecmds = with_senders(random_commands(2000, 8, n_symbols=3, unknown_symbol=True), 8)

    def make():
        e = Engine()
        for s in range(3):
            e.add_symbol(s)
        return e

    eng = make()
    n = _drive_engine(eng, ecmds, evbuf, True)
    assert_events_equal(evbuf[:n], make().process(ecmds), labels=("numba engine *_by",
                                                                  "process()"))


def test_numba_typing_error_names_the_parameter_as_the_header_does():
    # "matchcore_submit: argument 3 must be an integer" counted from 0 with the book first,
    # and named nothing: argument 3 read as the side, and it was the price
    @numba.njit
    def bad_price(book):
        return mcn.submit(book, 1, 0, 1.5, 5, 0, 0, 0)

    @numba.njit
    def bad_symbol(eng):
        return mcn.engine_submit(eng, 1.0, 1, 0, 100, 5, 0, 0, 0)

    @numba.njit
    def bad_order_id(book):
        return mcn.get(book, 2.5)

    @numba.njit
    def bad_out(book, out):
        return mcn.depth(book, 0, 3, out)

    book = mc.OrderBook()
    for fn, args, name in ((bad_price, (book,), "price"), (bad_symbol, (Engine(),), "symbol"),
                           (bad_order_id, (book,), "order_id"),
                           (bad_out, (book, np.zeros(6)), "out")):
        with pytest.raises(numba.core.errors.TypingError) as err:
            fn(*args)
        assert f"({name})" in str(err.value), (name, str(err.value))
    assert len(book) == 0 and len(book.events()) == 0


def test_numba_parameter_names_are_those_of_matchcore_h():
    import re
    from matchcore import _capi
    text = (Path(_capi.get_include()) / "matchcore.h").read_text()
    header = {}
    for fn_type, params in re.findall(r"typedef [\w ]+\(\*(mc_\w+_fn)\)\(([^)]*)\);", text):
        header[fn_type] = tuple(p.split()[-1].lstrip("*") for p in params.split(","))
    names = {}
    for line in text.split("typedef struct mc_api_v2")[1].splitlines():
        m = re.match(r"\s+(mc_\w+_fn) (\w+);", line)
        if m:
            names[m.group(2)] = header[m.group(1)]
    assert set(mcn._PARAM_NAMES) == {"matchcore_" + f for f in names}
    for field, params in names.items():
        assert mcn._PARAM_NAMES["matchcore_" + field] == params, field


def test_numba_table_intrinsics_take_their_matchcore_h_parameter_names():
    # The table's intrinsics were defined with parameters a0, a1, ...: a call one argument
    # short said "missing 3 required positional arguments: 'a5', 'a6', and 'a7'", and the
    # Python methods' keywords (owner=, post_only=) were "unexpected keyword arguments"
    @numba.njit
    def short(book):
        return mcn.submit(book, 1, mc.Side.SELL, 101, 5)

    with pytest.raises(TypeError, match="'tif', 'owner', and 'post_only'"):
        short(mc.OrderBook())

    @numba.njit
    def by_name(book):
        rest = mcn.submit(book, 1, mc.Side.SELL, 101, 5, mc.TIF.GTC, owner=7, post_only=0)
        cross = mcn.submit(book, 2, mc.Side.BUY, 101, 3, tif=mc.TIF.GTC, post_only=1, owner=8)
        gone = mcn.cancel_by(book, order_id=9, owner=8)
        return rest, cross, gone, mcn.modify(book, 1, qty=4, price=0)

    book = mc.OrderBook()
    assert by_name(book) == (0, -mc.Reason.POST_ONLY_WOULD_CROSS, -mc.Reason.ORDER_NOT_FOUND, 0)
    ev = book.events()
    assert [int(e["owner"]) for e in ev[:3]] == [7, 8, 8]
    assert book.get(1) == (mc.Side.SELL, 101, 4)


def test_numba_star_import_gives_the_buffer_helpers():
    # __all__ was written before event_buffer and command_buffer were added: a star import
    # gave every intrinsic but not the buffers the README passes to them
    ns = {}
    exec("from matchcore.numba_ext import *", ns)
    assert ns["event_buffer"](4).dtype == EVENT_DTYPE
    assert ns["command_buffer"](4).dtype == mc.COMMAND_DTYPE
    assert all(hasattr(mcn, name) for name in mcn.__all__)


def _unaligned(dtype, shape):
    """A zeroed, writeable C-contiguous array of ``dtype`` one byte off an 8-byte boundary."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.zeros(n + 16, np.uint8)
    start = 1 if raw.ctypes.data % 8 == 0 else 9 - raw.ctypes.data % 8
    out = raw[start:start + n].view(dtype).reshape(shape)
    assert out.ctypes.data % 8 != 0 and out.flags.c_contiguous and out.flags.writeable
    return out


@numba.njit
def _depth_calls(book, which, out):
    if which == 0:
        return mcn.depth_into(book, 0, out)
    if which == 1:
        return mcn.depth(book, 0, out.shape[0], out)
    return mcn.depth_orders(book, 0, out.shape[0], out)


@numba.njit
def _event_calls(book, eng, which, out):
    if which == 0:
        return mcn.drain_events(book, out)
    if which == 1:
        return mcn.drain_events_owner(book, 7, out)
    if which == 2:
        return mcn.engine_drain_events(eng, out)
    if which == 3:
        return mcn.engine_drain_events_owner(eng, 7, out)
    return mcn.drain_events_raw(book, out, out.shape[0])


@numba.njit
def _command_calls(book, eng, which, cmds):
    if which == 0:
        return mcn.process(book, cmds)
    if which == 1:
        return mcn.engine_process(eng, cmds)
    if which == 2:
        return mcn.process_raw(book, cmds, cmds.shape[0])
    return mcn.apply(book, cmds)


def test_numba_unaligned_arrays_refused_as_python_depth_into_refuses_them():
    # C read and wrote int64 values and records at an address off their alignment (undefined
    # behaviour in C; Python's depth_into refuses such an array): a check of the data address
    # at each call, whose message says what Python's says
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5, owner=7)
    eng = mc.Engine()
    eng.add_symbol(0)
    eng.submit(0, 1, 0, 100, 5, owner=7)
    with pytest.raises(ValueError, match="at an 8-byte aligned address"):
        book.depth_into(_unaligned(np.int64, (4, 2)), np.zeros((4, 2), np.int64))
    for which, cols in ((0, 2), (1, 2), (2, 3)):
        out = _unaligned(np.int64, (4, cols))
        with pytest.raises(ValueError, match="at an 8-byte aligned address"):
            _depth_calls(book, which, out)
        assert not out.any()
        assert _depth_calls(book, which, np.zeros((4, cols), np.int64)) == 1
    for which in range(5):
        out = _unaligned(EVENT_DTYPE, (4,))
        with pytest.raises(ValueError, match="at an 8-byte aligned address"):
            _event_calls(book, eng, which, out)
        assert not out.view(np.uint8).any()
    assert len(book.events()) == 1 and len(eng.events()) == 1
    cmds = random_commands(4, 5, invalid=False)
    for which in range(4):
        odd = _unaligned(cmds.dtype, cmds.shape)
        odd[:] = cmds
        odd["symbol"] = 0
        with pytest.raises(ValueError, match="at an 8-byte aligned address"):
            _command_calls(book, eng, which, odd)
    assert len(book) == len(eng) == 1 and len(book.events()) == len(eng.events()) == 0
    aligned = cmds.copy()
    aligned["symbol"] = 0
    assert _command_calls(book, eng, 0, aligned) == 4


@numba.njit
def _owner_drains(book, eng, out, cap):
    return (mcn.drain_events_owner_raw(book, 7, out, cap),
            mcn.engine_drain_events_owner_raw(eng, 7, out, cap))


@pytest.mark.parametrize("cap", [-1, -(2**63), np.uint64(2**64 - 1)])
def test_numba_drain_events_owner_raw_negative_or_wide_count_refused_events_kept(cap):
    # a negative count (or one beyond int64, passed to C as -1) was taken as 0: every event of
    # another owner before owner 7's first was dropped, and the call returned 0
    book, eng = mc.OrderBook(), Engine()
    eng.add_symbol(1)
    book.submit(1, 1, 100, 5, owner=8)
    book.submit(2, 1, 101, 5, owner=7)
    eng.submit(1, 1, 1, 100, 5, owner=8)
    eng.submit(1, 2, 1, 101, 5, owner=7)
    out = np.zeros(4, EVENT_DTYPE)
    bad = -int(mc.Reason.INVALID_COMMAND)
    assert _owner_drains(book, eng, out, cap) == (bad, bad)
    assert not out.view(np.uint8).any()
    assert book.events()["order_id"].tolist() == [1, 2]
    assert eng.events()["order_id"].tolist() == [1, 2]
