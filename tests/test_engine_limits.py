"""The Engine's per-symbol limits (tick, price range, reference band, max qty and notional):
what each refuses, in which order, and that limits accepting no order are refused whole."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import matchcore as mc
from matchcore._core import COMMAND_DTYPE
from matchcore._engine import Engine
from engine_checks import K, R


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
