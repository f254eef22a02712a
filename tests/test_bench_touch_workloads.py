"""The touch workloads (wide_book, stale_cancel, market_heavy): deterministic per seed, shaped as
documented (a deep, wide book; new orders near the mid; cancels of recently issued ids, many
already gone; market orders), and their statistics are those of a real book replaying them."""
from __future__ import annotations

import numpy as np
import pytest

import matchcore as mc
from matchcore import workloads as W

NAMES = sorted(W.TOUCH_MIXES)
N, RESTING = 20_000, 5_000


def _gen(name, seed=3, **kw):
    return W.generate(name, N, seed=seed, resting=RESTING, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_touch_workload_same_seed_identical_commands(name):
    a, b = _gen(name), _gen(name)
    assert a.setup.tobytes() == b.setup.tobytes() and a.flow.tobytes() == b.flow.tobytes()
    assert a.stats == b.stats


@pytest.mark.parametrize("name", NAMES)
def test_touch_workload_other_seed_different_commands(name):
    assert _gen(name, seed=3).flow.tobytes() != _gen(name, seed=4).flow.tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_touch_workload_setup_wide_book_far_levels_first(name):
    w = _gen(name)
    s = w.setup
    assert len(s) == RESTING and (s["kind"] == mc.CommandKind.SUBMIT).all()
    levels = RESTING // 5
    for side, sign in ((0, -1), (1, 1)):
        part = s[s["side"] == side]
        dist = (part["price"] - W.MID) * sign
        assert dist.min() >= 1 and dist.max() <= levels
        assert (np.diff(dist) <= 0).all()              # far to near: each new level is the best
    book = mc.OrderBook()
    assert len(book.process(s)) == RESTING             # ACCEPTED only: nothing crosses
    assert book.level_count(0) + book.level_count(1) > levels   # about levels a side


@pytest.mark.parametrize("name", NAMES)
def test_touch_workload_flow_shares_and_shapes(name):
    w = _gen(name)
    f = w.flow
    new_p, cancel_p, market_p = W.TOUCH_MIXES[name]
    k = f["kind"]
    assert abs(np.mean(k == mc.CommandKind.SUBMIT) - new_p) < 0.02
    assert abs(np.mean(k == mc.CommandKind.CANCEL) - cancel_p) < 0.02
    assert abs(np.mean(k == mc.CommandKind.MARKET) - market_p) < 0.02
    new = f[k == mc.CommandKind.SUBMIT]
    dist = np.where(new["side"] == 0, W.MID - new["price"], new["price"] - W.MID)
    assert dist.min() >= 1 and dist.max() <= 20       # passive, within 20 ticks of the mid
    assert (f["qty"][k != mc.CommandKind.CANCEL] >= 1).all()
    assert (f["qty"][k != mc.CommandKind.CANCEL] <= 100).all()
    # ids: new and market orders continue the setup's sequence; cancels name one of the last
    # 1,000 ids issued before them
    adds = k != mc.CommandKind.CANCEL
    issued = RESTING + np.cumsum(adds) - adds
    assert (f["order_id"][adds] == 1 + issued[adds]).all()
    back = issued[~adds] - f["order_id"][~adds].astype(np.int64)
    assert back.min() >= 0 and back.max() < 1000


@pytest.mark.parametrize("name", NAMES)
def test_touch_workload_stats_equal_real_book_replay(name):
    w = _gen(name)
    book = mc.OrderBook()
    book.process(w.setup)
    ev = book.process(w.flow)
    book.check_invariants()
    assert book.state_hash() == w.stats["state_hash"]
    assert len(book) == w.stats["resting_at_end"]
    not_found = int(np.count_nonzero((ev["kind"] == mc.EventKind.REJECTED)
                                     & (ev["reason"] == mc.Reason.ORDER_NOT_FOUND)))
    assert not_found == w.stats["cancels_not_found"] > 0     # stale cancels, by design
    assert w.stats["rejected"] == not_found                    # and no other reject
    assert w.stats["fills"] > 0


def test_touch_flow_default_levels_follow_resting():
    w = W.generate("wide_book", 100, resting=10_000)
    assert w.params["levels"] == 2_000 and w.params["band"] == 20


def test_touch_flow_unknown_mix_raises_value_error():
    with pytest.raises(ValueError, match="unknown mix"):
        W.touch_flow(10, "nope", resting=100)


def test_generate_touch_unknown_parameter_raises_type_error():
    with pytest.raises(TypeError, match="no parameter"):
        W.generate("stale_cancel", 10, spread=True)


def test_touch_flow_bad_sizes_raise_value_error():
    with pytest.raises(ValueError):
        W.generate("wide_book", 10, resting=1)
    with pytest.raises(ValueError):
        W.generate("wide_book", 10, resting=100, band=0)
