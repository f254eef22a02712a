"""Integer arguments of the per-call methods: whatever object carries the value (a plain int, an
IntEnum member, a bool, another int subclass, a numpy integer, an int of more than two digits),
the compiled book does exactly what it does for ``int(value)``, and a value that is not an integer
or does not fit raises the same error before the book is touched.

Small ints and int subclasses are read inline (include/mc_pyint.h); everything else takes the
general conversion. These tests pin the two paths to each other, on the book and on the engine."""
from __future__ import annotations

import enum

import numpy as np
import pytest

import matchcore as mc
from matchcore import OrderBook, Side, TIF


class MyInt(int):
    """An int subclass with an __index__ that lies: PyNumber_Index returns an int subclass as it
    is, so its stored value counts, never __index__ (CPython >= 3.10)."""

    def __index__(self):
        return 999


class Px(enum.IntEnum):
    A = 101
    B = 2**40 + 3


def _carriers(v: int) -> list:
    """Objects that carry the integer v."""
    out = [v, MyInt(v)]
    if v in (0, 1):
        out.append(bool(v))
    if -2**63 <= v < 2**63:
        out.append(np.int64(v))
    if 0 <= v < 2**64:
        out.append(np.uint64(v))
    if -2**31 <= v < 2**31:
        out.append(np.int32(v))
    return out


def _state(book: OrderBook):
    # the whole book and its events (draining them)
    return book.snapshot(), book.events().tobytes()


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:  # the type and the book afterwards are what is compared
        return ("raised", type(exc))


def _seeded() -> OrderBook:
    b = OrderBook()
    b.submit(1, Side.SELL, 105, 5, owner=7)
    b.submit(2, Side.BUY, 95, 5, owner=8)
    b.submit(2**61 + 5, Side.SELL, 106, 3)          # an id beyond two digits
    b.events()
    return b


# (method, positional template, keyword template, index or name of the argument varied, values)
VALUES = [0, 1, 2, 3, 100, 105, 2**30 - 1, 2**30, 2**31 - 1, 2**31, 2**60 - 1, 2**60, 2**61 + 5,
          2**63 - 1, 2**63, 2**64 - 1, 2**64, -1, -2, -2**30, -2**60, -2**63, -2**63 - 1]

CASES = [
    ("submit", [10, Side.BUY, 100, 4], {}, 0),
    ("submit", [10, Side.BUY, 100, 4], {}, 1),
    ("submit", [10, Side.BUY, 100, 4], {}, 2),
    ("submit", [10, Side.BUY, 100, 4], {}, 3),
    ("submit", [10, Side.BUY, 105, 4, TIF.GTC], {}, 4),
    ("submit", [10, Side.BUY, 105, 4], {"owner": 0}, "owner"),
    ("submit", [10, Side.BUY, 100, 4], {"ts_ns": 0}, "ts_ns"),
    ("submit_market", [10, Side.BUY, 2], {}, 1),
    ("submit_market", [10, Side.BUY, 2], {}, 2),
    ("cancel", [1], {}, 0),
    ("cancel", [1], {"ts_ns": 0}, "ts_ns"),
    ("modify", [2, 3], {}, 0),
    ("modify", [2, 3], {}, 1),
    ("modify", [2, 3, 96], {}, 2),
    ("modify", [2, 3], {"ts_ns": 0}, "ts_ns"),
]


def _call(method, args, kwargs, where, value):
    """(outcome, state) of one call on a fresh seeded book, with ``value`` at ``where``."""
    book = _seeded()
    a, k = list(args), dict(kwargs)
    if isinstance(where, int):
        a[where] = value
    else:
        k[where] = value
    return _outcome(lambda: getattr(book, method)(*a, **k)), _state(book)


@pytest.mark.parametrize("method,args,kwargs,where", CASES,
                         ids=[f"{m}-{w}" for m, _, _, w in CASES])
def test_any_integer_carrier_acts_as_its_int(method, args, kwargs, where):
    for v in VALUES:
        want = _call(method, args, kwargs, where, v)
        for obj in _carriers(v):
            assert _call(method, args, kwargs, where, obj) == want, (method, where, v,
                                                                     type(obj).__name__)


@pytest.mark.parametrize("bad", [1.0, 100.5, "100", b"1", None, [1], 1j])
@pytest.mark.parametrize("where", [0, 1, 2, 3])
def test_non_integers_raise_type_error_and_change_nothing(where, bad):
    book = _seeded()
    before = _state(book)
    args = [10, Side.BUY, 100, 4]
    args[where] = bad
    with pytest.raises(TypeError):
        book.submit(*args)
    assert _state(book) == before


_OUT_OF_RANGE = [
    ("order_id", 0, 2**64), ("order_id", 0, -1), ("side", 1, 2**31), ("price", 2, 2**63),
    ("qty", 3, -2**63 - 1), ("tif", 4, -2**31 - 1), ("owner", "owner", 2**64),
    ("ts_ns", "ts_ns", 2**63),
]


@pytest.mark.parametrize("name,where,bad", _OUT_OF_RANGE,
                         ids=[f"{n}={v}" for n, _, v in _OUT_OF_RANGE])
@pytest.mark.parametrize("on", ["book", "engine", "reference"])
def test_errors_name_the_argument_as_the_reference_model_does(on, name, where, bad):
    # the message is the reference model's, so the three raise the same text for the same call
    target = {"book": OrderBook(), "reference": mc.ReferenceBook(), "engine": mc.Engine()}[on]
    args, kw = [10, Side.BUY, 100, 4, TIF.GTC], {}
    if isinstance(where, int):
        args[where] = bad
    else:
        kw[where] = bad
    if on == "engine":
        target.add_symbol(0)
        call = lambda: target.submit(0, *args, **kw)         # noqa: E731
    else:
        call = lambda: target.submit(*args, **kw)            # noqa: E731
    with pytest.raises(OverflowError, match=rf"^{name}={bad} is outside the "):
        call()
    assert len(target) == 0
    with pytest.raises(TypeError, match=rf"^{name} must be an integer, got float"):
        args2, kw2 = list(args), dict(kw)
        if isinstance(where, int):
            args2[where] = 1.5
        else:
            kw2[where] = 1.5
        (target.submit(0, *args2, **kw2) if on == "engine" else target.submit(*args2, **kw2))


def test_enum_members_give_their_values():
    a, b = OrderBook(), OrderBook()
    a.submit(1, Side.SELL, Px.A, 5, TIF.GTC)
    a.submit(2, Side.BUY, Px.A, 2, TIF.IOC)
    a.submit(3, Side.SELL, Px.B, 1)
    b.submit(1, 1, 101, 5, 0)
    b.submit(2, 0, 101, 2, 1)
    b.submit(3, 1, 2**40 + 3, 1)
    assert _state(a) == _state(b)
    assert a.best_ask() == (101, 3)


def test_engine_takes_the_same_carriers():
    for obj in _carriers(3):
        eng = mc.Engine()
        eng.add_symbol(obj)
        eng.submit(obj, 1, Side.SELL, 100, 5)
        assert eng.submit(np.uint32(3), MyInt(2), False, 100, np.int8(2), TIF.IOC) == 2
        assert eng.cancel(MyInt(1), symbol=obj) == 3
        assert eng.best_ask(3) is None


NON_INTEGERS = [1.0, 1.9, "1", b"1"]


@pytest.mark.parametrize("bad", NON_INTEGERS)
@pytest.mark.parametrize("call", [
    lambda b, x: b.get(x),
    lambda b, x: b.queue_position(x),
    lambda b, x: b.level(x, 105),
    lambda b, x: b.level(Side.SELL, x),
    lambda b, x: b.level_count(x),
    lambda b, x: b.events(owner=x),
], ids=["get", "queue_position", "level-side", "level-price", "level_count", "events-owner"])
def test_book_queries_refuse_non_integers(call, bad):
    book = _seeded()
    book.submit(20, Side.SELL, 105, 1, owner=1)
    before = book.snapshot()
    with pytest.raises(TypeError):
        call(book, bad)
    assert book.snapshot() == before
    assert book.events()["order_id"].tolist() == [20]      # events(owner=bad) consumed nothing


def test_book_queries_take_every_integer_carrier():
    book = _seeded()
    for one in _carriers(1):
        assert book.get(one) == (1, 105, 5)
        assert book.queue_position(one) == 0
        assert book.level(one, Px.A) == [] and book.level(one, np.int64(105)) == [(1, 5)]
        assert book.level_count(one) == 2
    assert book.get(np.uint64(2**61 + 5)) == (1, 106, 3)
    with pytest.raises(OverflowError):
        book.get(-1)
    with pytest.raises(OverflowError):
        book.level(2**31, 105)


@pytest.mark.parametrize("cls", [OrderBook, mc.Engine])
def test_stp_and_capacity_take_integers_only(cls):
    for bad in (1.9, "2", b"3", "0x1"):
        with pytest.raises(TypeError, match="stp"):
            cls(bad)
    for ok in (2, np.int64(2), mc.STP.CANCEL_TAKER, MyInt(2)):
        assert cls(ok).stp == mc.STP.CANCEL_TAKER
    assert cls(True).stp == mc.STP.CANCEL_RESTING
    for bad in (4, -1, 2**70):
        with pytest.raises(ValueError):
            cls(bad)
    if cls is OrderBook:
        with pytest.raises(TypeError, match="capacity"):
            OrderBook(capacity=10.5)
        with pytest.raises(OverflowError, match="capacity"):
            OrderBook(capacity=2**63)
        assert len(OrderBook(capacity=np.int32(16))) == 0


def test_engine_symbol_limits_and_reference_price_take_integers_only():
    eng = mc.Engine()
    eng.add_symbol(1, "A")
    eng.add_symbol(2, "B")
    before = (eng.state_hash(), eng.symbols)
    for bad in (1.9, b"2", 2.0):
        with pytest.raises(TypeError, match="symbol"):
            eng.submit(bad, 10, Side.BUY, 100, 1)
        with pytest.raises(TypeError, match="symbol"):
            eng.add_symbol(bad)
    for kw in (dict(tick=2.5), dict(max_qty=1e3), dict(band="3"), dict(capacity=8.0)):
        with pytest.raises(TypeError, match=next(iter(kw))):
            eng.add_symbol(3, **kw)
        with pytest.raises(TypeError):
            eng.set_limits(1, **kw)
    with pytest.raises(TypeError, match="price"):
        eng.set_reference_price(1, 100.5)
    with pytest.raises(OverflowError, match="price"):
        eng.set_reference_price(1, 2**63)
    for bad in (1.5, b"1"):
        with pytest.raises(TypeError):
            eng.get(bad)
        with pytest.raises(TypeError):
            eng.queue_position(bad)
        with pytest.raises(TypeError):
            eng.events(owner=bad)
    assert (eng.state_hash(), eng.symbols) == before and len(eng.events()) == 0
    # the integer carriers of the order methods work here too
    eng.add_symbol(np.int64(3), tick=np.uint16(5), max_qty=Px.A, capacity=np.int32(64))
    eng.set_limits(MyInt(3), band=np.int8(10), ref_price=True)
    eng.set_reference_price(np.uint32(3), Px.A)
    assert eng.limits(3) == dict(tick=5, min_price=0, max_price=0, ref_price=101, band=10,
                                 max_qty=101, max_notional=0)
    eng.submit(np.int64(3), 7, Side.BUY, 100, 1)
    assert eng.get(np.uint64(7)) == (3, 0, 100, 1) and eng.queue_position(np.int64(7)) == 0


@pytest.mark.parametrize("make", [
    pytest.param(lambda **kw: OrderBook(**kw), id="OrderBook"),
    pytest.param(lambda **kw: mc.ReferenceBook(**kw), id="ReferenceBook"),
    pytest.param(lambda **kw: mc.Engine().add_symbol(1, **kw), id="Engine.add_symbol"),
])
def test_capacity_beyond_most_orders_a_book_holds_raises_value_error_in_same_words(make):
    # A book's pools stop growing at 2**30 orders: a larger capacity can never be met, and
    # once failed with a bare MemoryError after trying to allocate it (the reference model
    # ignored it). Every face refuses it, and a bad stp or capacity, in the same words.
    for bad in (2**30 + 1, 2**31, 2**62, -1):
        with pytest.raises(ValueError, match=rf"capacity must be in \[0, 2\*\*30\] .*got {bad}"):
            make(capacity=bad)
    with pytest.raises(OverflowError, match="capacity=9223372036854775808 is outside the int64"):
        make(capacity=2**63)
    with pytest.raises(TypeError, match="capacity must be an integer, got float 8.0"):
        make(capacity=8.0)
    assert len(make(capacity=np.int32(16))) == 0


@pytest.mark.parametrize("cls", [OrderBook, mc.ReferenceBook])
def test_book_constructor_bad_stp_raises_in_same_words(cls):
    with pytest.raises(TypeError, match="stp must be an integer, got float 1.5"):
        cls(1.5)
    with pytest.raises(ValueError, match="unknown self-trade prevention mode 7"):
        cls(7)


@pytest.mark.parametrize("make", [
    pytest.param(lambda **kw: OrderBook(**kw), id="OrderBook"),
    pytest.param(lambda **kw: OrderBook.from_snapshot(OrderBook().snapshot(), **kw),
                 id="OrderBook.from_snapshot"),
    pytest.param(lambda **kw: mc.ReferenceBook(**kw), id="ReferenceBook"),
    pytest.param(lambda **kw: mc.Engine(**kw), id="Engine"),
])
def test_record_events_not_a_bool_raises_type_error(make):
    # A truth test took any object: record_events="no" or None quietly chose for the caller.
    # recover() and the journal options already took True or False only.
    for bad in ("no", "False", None, 0, 1, np.bool_(False), [False]):
        with pytest.raises(TypeError, match=r"record_events must be True or False, got "):
            make(record_events=bad)
    assert make(record_events=False).record_events is False
    assert make(record_events=True).record_events is True


def _replayers():
    import matchcore.itch as itch
    from matchcore.feeds.dbn import DbnReplayer
    return [itch.Replayer, DbnReplayer]


@pytest.mark.parametrize("cls", _replayers(), ids=lambda c: c.__name__)
def test_replayer_integer_options_refuse_floats_and_bad_book_capacity_at_construction(cls):
    # A C int64 parameter truncated a float (snapshot_every=2.5 snapshotted every 2), and a
    # book_capacity no book can have raised only when the feed made its first book.
    for name in ("snapshot_every", "snapshot_every_ns", "snapshot_depth", "until_ns",
                 "book_capacity"):
        with pytest.raises(TypeError, match=rf"{name} must be an integer, got float 2.5"):
            cls(**{name: 2.5})
    for bad in (-1, 2**30 + 1):
        with pytest.raises(ValueError, match=rf"book_capacity must be in \[0, 2\*\*30\] .*{bad}"):
            cls(book_capacity=bad)
    with pytest.raises(OverflowError, match="snapshot_every=9223372036854775808 is outside"):
        cls(snapshot_every=2**63)
    assert cls(snapshot_every=np.int64(100), snapshot_depth=Px.A, book_capacity=MyInt(64),
               until_ns=np.uint32(5)).done is False
