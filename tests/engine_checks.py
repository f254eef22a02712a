"""Helpers shared by the Engine test files and the durability and pickle tests: a 3-symbol engine
with or without limits, one command row through the per-call methods, a deep multi-symbol flow,
and the rejects of an event array as (order id, reason, symbol)."""
from __future__ import annotations

import numpy as np

import matchcore as mc
from matchcore._core import COMMAND_DTYPE, EVENT_DTYPE
from matchcore._engine import Engine
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
