"""Numba entry: @njit code drives a book / engine by handle and sees the same events and state
as the Python methods and process(); cache=True works across processes; numba stays lazy."""
from __future__ import annotations

import os
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
def _drive_book(book, cmds, evbuf):
    k = 0
    for i in range(cmds.shape[0]):
        c = cmds[i]
        mcn.set_time(book, c.ts_ns)
        if c.kind == 0:
            mcn.submit(book, c.order_id, c.side, c.price, c.qty, c.tif, c.owner, c.post_only)
        elif c.kind == 1:
            mcn.market(book, c.order_id, c.side, c.qty, c.owner)
        elif c.kind == 2:
            mcn.cancel(book, c.order_id)
        else:
            mcn.modify(book, c.order_id, c.qty, c.price)
        k += mcn.drain_events(book, evbuf[k:])
    return k


@numba.njit
def _drive_engine(eng, cmds, evbuf):
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
            mcn.engine_cancel(eng, c.symbol, c.order_id)
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
