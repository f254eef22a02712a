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
import matchcore.bench.core as _bench_core
import matchcore.bench.harness as _harness
import matchcore.durability.journal as _journal
import matchcore.feeds.dbn_gen as _dbn_gen      # databento only when called
import matchcore.io.nats as _nats               # the nats package only when connecting
import matchcore.workloads as _workloads
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


@pytest.mark.parametrize("make", [
    pytest.param(lambda **kw: OrderBook(**kw), id="OrderBook"),
    pytest.param(lambda **kw: mc.ReferenceBook(**kw), id="ReferenceBook"),
    pytest.param(lambda **kw: mc.Engine().add_symbol(1, **kw), id="Engine.add_symbol"),
])
def test_capacity_none_raises_type_error_in_same_words(make):
    # The reference model's default was None, and None was taken as "no capacity given",
    # where the compiled book and the engine refuse it as any other non-integer
    with pytest.raises(TypeError, match="capacity must be an integer, got NoneType None"):
        make(capacity=None)


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
def test_record_events_not_a_flag_raises_type_error(make):
    # A truth test took any object: record_events="no" or None quietly chose for the caller.
    # It is a flag as every other one (see the tests of flags below).
    for bad in ("no", "False", None, 2, -1, 1.0, np.int64(2), [False]):
        with pytest.raises(TypeError, match=r"record_events must be True or False, got "):
            make(record_events=bad)
    for off in (False, 0, np.bool_(False), np.int64(0)):
        assert make(record_events=off).record_events is False
    for on in (True, 1, np.bool_(True), np.uint8(1)):
        assert make(record_events=on).record_events is True


def test_book_constructor_several_bad_arguments_refused_for_the_same_one_as_reference():
    # The compiled book checks stp, record_events, then capacity (its signature's order); the
    # reference model checked capacity before record_events, and a call with both wrong was
    # refused for another argument, in other words, than by the book it specifies.
    for kw in (dict(record_events="x", capacity=-1), dict(record_events=2, capacity=2**31),
               dict(record_events=None, capacity=1.5)):
        errors = []
        for cls in (OrderBook, mc.ReferenceBook):
            with pytest.raises((TypeError, ValueError)) as info:
                cls(**kw)
            errors.append((type(info.value), str(info.value)))
        assert errors[0] == errors[1], kw
        assert errors[0][0] is TypeError and "record_events must be True or False" in errors[0][1]


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


# ---- flags ----
# A flag is True, False, a numpy bool or an integer equal to 0 or 1 (anything with __index__);
# anything else, another integer included, raises TypeError naming it, before anything changes.

FLAG_BAD = ["no", "yes", "", None, 2, -1, 2**64, 1.0, 0.0, [], [True], np.int64(2),
            np.float64(1.0), 1j, b"\x01"]
FLAG_GOOD = [(True, True), (False, False), (1, True), (0, False), (np.bool_(True), True),
             (np.bool_(False), False), (np.int64(1), True), (np.int64(0), False),
             (np.uint8(1), True)]


def _flag_book(cls):
    b = cls()
    b.submit(1, Side.SELL, 105, 5, owner=7)
    b.submit(2, Side.BUY, 95, 5, owner=8)
    b.events()
    return b


def _flag_engine():
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.submit(1, 1, Side.SELL, 105, 5)
    eng.submit(1, 2, Side.BUY, 95, 5)
    eng.events()
    return eng


def _flag_state(obj):
    # the whole state and the events (draining them)
    if isinstance(obj, mc.ReferenceBook):
        return (len(obj), [np.asarray(a).tolist() for a in obj.depth(10)],
                [obj.get(i) for i in (1, 2, 3)],
                obj.events().tobytes())
    return len(obj), obj.state_hash(), obj.events().tobytes()


# (id, flag, make, call(obj, value)): a post-only buy at 105 would cross the ask (REJECTED,
# returns 0), an ordinary one trades
FLAG_CALLS = [
    ("OrderBook.submit", "post_only", lambda: _flag_book(OrderBook),
     lambda o, v: o.submit(3, Side.BUY, 105, 2, post_only=v)),
    ("ReferenceBook.submit", "post_only", lambda: _flag_book(mc.ReferenceBook),
     lambda o, v: o.submit(3, Side.BUY, 105, 2, post_only=v)),
    ("Engine.submit", "post_only", _flag_engine,
     lambda o, v: o.submit(1, 3, Side.BUY, 105, 2, post_only=v)),
    ("OrderBook.submit-all-args", "post_only", lambda: _flag_book(OrderBook),
     lambda o, v: o.submit(3, Side.BUY, 105, 2, TIF.IOC, owner=9, post_only=v, ts_ns=5)),
    ("OrderBook.reduce", "execution", lambda: _flag_book(OrderBook),
     lambda o, v: o.reduce(1, 2, execution=v, ts_ns=3)),
]
_FLAG_IDS = [c[0] for c in FLAG_CALLS]


@pytest.mark.parametrize("flag,make,call", [c[1:] for c in FLAG_CALLS], ids=_FLAG_IDS)
@pytest.mark.parametrize("bad", FLAG_BAD, ids=repr)
def test_flag_refuses_non_flags_and_changes_nothing(flag, make, call, bad):
    obj = make()
    before = _flag_state(make())
    with pytest.raises(TypeError) as exc:
        call(obj, bad)
    assert str(exc.value) == f"{flag} must be True or False, got {bad!r}"
    assert _flag_state(obj) == before


@pytest.mark.parametrize("flag,make,call", [c[1:] for c in FLAG_CALLS], ids=_FLAG_IDS)
@pytest.mark.parametrize("value,as_bool", FLAG_GOOD, ids=repr)
def test_flag_accepts_bools_and_0_1_as_the_bool(flag, make, call, value, as_bool):
    obj, want = make(), make()
    assert _outcome(lambda: call(obj, value)) == _outcome(lambda: call(want, as_bool))
    assert _flag_state(obj) == _flag_state(want)


def test_post_only_flag_gives_the_same_outcome_in_book_and_reference():
    # the compiled book against the reference model on each value, good or bad, and the bad
    # ones in the same words
    for v in FLAG_BAD + [g for g, _ in FLAG_GOOD]:
        for tif in (TIF.GTC, TIF.IOC):
            for price in (100, 105):
                got = []
                for cls in (OrderBook, mc.ReferenceBook):
                    b = _flag_book(cls)
                    try:
                        out = ("ok", b.submit(3, Side.BUY, price, 2, tif, post_only=v))
                    except TypeError as e:
                        out = ("raised", str(e))
                    got.append((out, len(b), b.best_bid(), b.best_ask(),
                                b.events().tobytes()))
                assert got[0] == got[1], (v, tif, price)


@pytest.mark.parametrize("make", [
    pytest.param(lambda: OrderBook(), id="OrderBook"),
    pytest.param(lambda: mc.ReferenceBook(), id="ReferenceBook"),
    pytest.param(lambda: _flag_engine(), id="Engine"),
])
def test_allow_crossed_is_a_flag(make):
    obj = make()
    if isinstance(obj, OrderBook):
        obj.place(1, Side.BUY, 101, 5)
        obj.place(2, Side.SELL, 100, 5)
    for bad in FLAG_BAD:
        with pytest.raises(TypeError, match=r"allow_crossed must be True or False, got "):
            obj.check_invariants(allow_crossed=bad)
    for value, as_bool in FLAG_GOOD:
        assert (_outcome(lambda: obj.check_invariants(allow_crossed=value))
                == _outcome(lambda: obj.check_invariants(allow_crossed=as_bool)))


def _fed_itch():
    import matchcore.itch as itch
    r = itch.Replayer(snapshot_every=500, record_l2=True)
    r.feed(itch.generate(None, messages=3000, symbols=2, seed=1))
    return r


def _fed_dbn():
    pytest.importorskip("databento_dbn")
    import io

    from matchcore.feeds.dbn import DbnReplayer, read_metadata
    from matchcore.feeds.dbn_gen import generate_mbo
    data = generate_mbo(records=2000, instruments=2, seed=1)
    meta = read_metadata(io.BytesIO(data))
    r = DbnReplayer(names=meta.names, ts_out=meta.ts_out, snapshot_every=500)
    r.feed(data[meta.header_bytes:])
    return r


@pytest.mark.parametrize("make,sinks", [
    pytest.param(_fed_itch, ("tob", "trades", "l2", "snapshots"), id="itch.Replayer"),
    pytest.param(_fed_dbn, ("tob", "trades", "snapshots"), id="DbnReplayer"),
])
def test_replayer_sink_clear_is_a_flag(make, sinks):
    r = make()
    for sink in sinks:
        before = getattr(r, sink)()
        assert len(before) > 0, sink
        for bad in FLAG_BAD:
            with pytest.raises(TypeError, match=r"clear must be True or False, got "):
                getattr(r, sink)(clear=bad)
        for keep in (False, 0, np.bool_(False)):
            assert getattr(r, sink)(clear=keep).tobytes() == before.tobytes(), sink
        assert getattr(r, sink)(np.int64(1)).tobytes() == before.tobytes()
        assert len(getattr(r, sink)()) == 0, sink


@pytest.mark.parametrize("which,names", [
    pytest.param("itch", ("infer_lengths", "callback_on_tob", "record_tob", "record_trades",
                          "record_l2"), id="itch.Replayer"),
    pytest.param("dbn", ("ts_out", "record_tob", "record_trades", "tob_on_last"),
                 id="DbnReplayer"),
])
def test_replayer_constructor_flags(which, names):
    if which == "itch":
        import matchcore.itch as itch
        make = itch.Replayer
    else:
        from matchcore.feeds.dbn import DbnReplayer as make
    for name in names:
        for bad in ("no", None, 2, 1.0, []):
            with pytest.raises(TypeError, match=rf"{name} must be True or False, got "):
                make(**{name: bad})
        # (callback_on_tob=True needs a callback)
        extra = {"callback": lambda *a: None} if name == "callback_on_tob" else {}
        for good, _ in FLAG_GOOD:
            assert make(**{name: good}, **extra).done is False


def test_itch_decode_flags():
    import matchcore.itch as itch
    from matchcore.itch._decode import decode_chunk
    data = itch.generate(None, messages=200, symbols=2, seed=1)
    for bad in ("no", None, 2, 1.0, []):
        with pytest.raises(TypeError, match=r"infer_lengths must be True or False, got "):
            itch.decode(data, bad)
        with pytest.raises(TypeError, match=r"infer_lengths must be True or False, got "):
            itch.decode(b"", infer_lengths=bad)
        for name in ("infer_lengths", "resync", "final"):
            with pytest.raises(TypeError, match=rf"{name} must be True or False, got "):
                decode_chunk(data, **{name: bad})
    want = itch.decode(data, False)
    for good in (0, np.bool_(False)):
        assert itch.decode(data, good).stats == want.stats


def test_process_batch_ns_emit_is_a_flag():
    from matchcore import _timing
    cmds = np.zeros(2, dtype=mc.COMMAND_DTYPE)
    cmds["qty"] = 1
    cmds["price"] = 100
    cmds["order_id"] = [1, 2]
    cmds["side"] = [0, 0]
    book = OrderBook()
    for bad in ("no", None, 2, 1.0, []):
        with pytest.raises(TypeError, match=r"emit must be True or False, got "):
            _timing.process_batch_ns(book, cmds, bad)
    assert len(book) == 0
    assert _timing.process_batch_ns(book, cmds, np.int64(0)) > 0
    assert len(book) == 2


def test_recover_and_journal_flags(tmp_path):
    from matchcore.durability.journal import check_journal_options
    d = tmp_path / "j"
    eng = mc.Engine(journal=str(d))
    eng.add_symbol(1)
    eng.submit(1, 7, Side.BUY, 100, 5)
    eng.close()
    files = sorted((p.name, p.stat().st_size) for p in d.iterdir())
    for name in ("snapshot", "readonly", "trades", "record_events"):
        # trades=None is the journal's own choice, and the refusal says so
        allowed = "True, False or None" if name == "trades" else "True or False"
        for bad in ("no", 2, 1.0, []) if name == "trades" else ("no", None, 2, 1.0, []):
            with pytest.raises(TypeError, match=rf"{name} must be {allowed}, got "):
                mc.Engine.recover(str(d), **{name: bad})
    # a refused call cut, locked and wrote nothing
    assert sorted((p.name, p.stat().st_size) for p in d.iterdir()) == files
    with pytest.raises(TypeError, match=r"trades must be True or False, got 2"):
        check_journal_options("batch", 2)
    check_journal_options("batch", np.bool_(True))
    eng = mc.Engine.recover(str(d), readonly=1, record_events=np.bool_(False))
    assert eng.record_events is False and eng.get(7) == (1, 0, 100, 5)


def test_bad_flag_reported_first_as_before_by_book_engine_and_reference():
    # post_only is converted before the other arguments (where the bint parameter was): a call
    # with several bad arguments names the flag, the same in the book, engine and reference
    from matchcore.reference import ReferenceBook
    eng = mc.Engine()
    eng.add_symbol(1)
    for submit in (mc.OrderBook().submit, ReferenceBook().submit,
                   lambda *a, **k: eng.submit(1, *a, **k)):
        with pytest.raises(TypeError, match="post_only must be True or False, got 'no'"):
            submit("x", 0, 1.5, 5, post_only="no")


# ---- flags of the pure-Python functions ----
# The same rule, converted at the top of the function: a refused call has read, written,
# locked, started or changed nothing (a truth test took verify="no" for True and None for
# False).

PY_FLAG_BAD = ["no", None, 2, 1.0, []]


def _tree(root):
    # every path under root with its size
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1)
                  for p in root.rglob("*"))


def _scrape(registry):
    import prometheus_client as prom
    # the _created samples carry the time the metric was made
    return [ln for ln in prom.generate_latest(registry).decode().splitlines()
            if "_created" not in ln]


class _Ctx:
    """What one flag call works on: files under ``root`` and, through ``state``, any object."""

    def __init__(self, root, state=lambda: None, **objs):
        self.root, self.state = root, state
        self.__dict__.update(objs)

    def snapshot(self):
        return _tree(self.root), self.state()


def _lobster_ctx(d):
    d.mkdir()
    m, o = d / "X_message_2.csv", d / "X_orderbook_2.csv"
    m.write_text("34200.000000001,1,1,5,10000,1\n34200.5,2,1,2,10000,1\n"
                 "34201.25,4,77,4,10100,-1\n")
    o.write_text("10100,10,10000,5,10200,20,9900,30\n10100,10,10000,3,10200,20,9900,30\n"
                 "10100,6,10000,3,10200,20,9900,30\n")
    book = OrderBook()
    return _Ctx(d, lambda: (len(book), book.state_hash(), book.events().tobytes()),
                m=m, o=o, book=book)


def _lobster_call(c, v):
    from matchcore.lobster import replay_lobster
    r = replay_lobster(c.m, c.o, verify=v, book=c.book)
    return r.messages, r.counts, r.counters, r.agreement_rate, r.transition_rate


def _journal_ctx(d, torn=False):
    eng = mc.Engine(journal=str(d))
    eng.add_symbol(1)
    eng.submit(1, 1, Side.BUY, 100, 5)
    eng.submit(1, 2, Side.SELL, 100, 2)
    eng.close()
    if torn:
        with open(next(d.glob("trades-*.mct")), "ab") as fh:
            fh.write(b"\x01\x02\x03")
    return _Ctx(d)


def _trades(c, v):
    from matchcore.durability.trades import read_trades
    t = read_trades(str(c.root), allow_torn_tail=v)
    return [t[f].tolist() for f in t.dtype.names if f != "journal_ts_ns"]   # not the wall clock


def _open_writers(path, v, flag):
    from matchcore.durability.journal import open_writers
    jc, jt = open_writers(str(path), 0, **{flag: v})
    jc.close()
    if jt is not None:
        jt.close()
    return jt is None


def _metrics_ctx(d):
    pytest.importorskip("prometheus_client")
    import prometheus_client as prom

    import matchcore.itch as itch
    from matchcore.io.metrics import ReplayMetrics
    d.mkdir()
    m = ReplayMetrics(registry=prom.CollectorRegistry())
    r = itch.Replayer()
    r.feed(itch.generate(None, messages=500, symbols=2, seed=1))
    return _Ctx(d, lambda: (_scrape(m.registry), m._chunks, m._bytes_seen, dict(m._names)),
                m=m, r=r)


def _itch_ref_ctx(d):
    import matchcore.itch as itch
    from matchcore.itch.reference import ReferenceReplay
    d.mkdir()
    data = itch.generate(None, messages=2000, symbols=2, seed=1)
    ref, rep = ReferenceReplay(), itch.Replayer()
    ref.feed(data)
    rep.feed(data)
    return _Ctx(d, lambda: (ref.messages, ref.consumed, rep.stats["messages"]),
                ref=ref, rep=rep, data=data)


def _recorder_ctx(d):
    d.mkdir()
    book = OrderBook()
    book.submit(1, Side.BUY, 100, 5)
    book.events()
    return _Ctx(d, lambda: (len(book), book.state_hash()), book=book)


def _recorder_call(c, v):
    from matchcore.native import Recorder
    with Recorder(c.book, c.root / "j.mccmd", require_empty=v) as rec:
        rec.submit(2, Side.SELL, 101, 1)
    return (c.root / "j.mccmd").stat().st_size


def _dbn_call(flag):
    def call(c, v):
        pytest.importorskip("databento_dbn")
        from matchcore.feeds.dbn_gen import generate_mbo
        p = generate_mbo(c.root / "x.dbn", records=40, instruments=2, **{flag: v})
        return p.name, p.read_bytes()
    return call


def _bench_flow():
    setup, flow = _workloads.standard_mix(300, resting=200)
    return _harness.build_book(setup, flow), flow


def _empty(d):
    d.mkdir()
    return _Ctx(d)


# (id, flag, prepare(dir) -> _Ctx, call(ctx, value) -> what the value did)
PY_FLAG_CALLS = [
    ("lobster.replay_lobster", "verify", _lobster_ctx, _lobster_call),
    ("durability.read_trades", "allow_torn_tail", lambda d: _journal_ctx(d, torn=True),
     lambda c, v: _trades(c, v)),
    ("durability.scan_journal", "keep_data", lambda d: _journal_ctx(d, torn=True),
     lambda c, v: [(s.records, s.data is None)
                   for s in _journal.scan_journal(str(c.root), keep_data=v).segments]),
    ("durability.scan_journal", "keep_index", lambda d: _journal_ctx(d, torn=True),
     lambda c, v: [(s.records, s.index is None, s.data is None)
                   for s in _journal.scan_journal(str(c.root), keep_index=v).segments]),
    ("durability.open_writers-used-dir", "new", _journal_ctx,
     lambda c, v: _open_writers(c.root, v, "new")),
    ("durability.open_writers-new-dir", "new", _empty,
     lambda c, v: _open_writers(c.root / "j", v, "new")),
    ("durability.open_writers", "trades", _empty,
     lambda c, v: _open_writers(c.root / "j", v, "trades")),
    ("workloads.deep_book", "spread", _empty,
     lambda c, v: [a.tobytes() for a in _workloads.deep_book(50, resting=1200, spread=v)]),
    ("dbn_gen.generate_mbo", "ts_out", _empty, _dbn_call("ts_out")),
    ("dbn_gen.generate_mbo", "with_names", _empty, _dbn_call("with_names")),
    ("dbn_gen.generate_mbo", "compress", _empty, _dbn_call("compress")),
    ("dbn_gen.mbo_record", "ts_out", _empty,
     lambda c, v: (pytest.importorskip("databento_dbn"),
                   _dbn_gen.mbo_record(1001, 5, 1, 100, 2, "A", "B", ts_out=v))[1]),
    ("io.ReplayMetrics.update", "final", _metrics_ctx,
     lambda c, v: (c.m.update(c.r, final=v), _scrape(c.m.registry))[1]),
    ("io.ReplayPublisher", "keep", _empty,
     lambda c, v: (lambda rp: (type(rp.keep), rp.keep))(
         _nats.ReplayPublisher(object(), keep=v))),
    ("itch.ReferenceReplay", "infer_lengths", _itch_ref_ctx,
     lambda c, v: (lambda ref: (ref.infer_lengths, _outcome(lambda: ref.feed(c.data)),
                                ref.messages))(type(c.ref)(infer_lengths=v))),
    ("itch.ReferenceReplay.diff", "fifo", _itch_ref_ctx,
     lambda c, v: c.ref.diff(c.rep, fifo=v)),
    ("native.Recorder", "require_empty", _recorder_ctx, _recorder_call),
    ("bench.reference_messages", "quick", _empty,
     lambda c, v: _bench_core.reference_messages(100_000, v)),
    ("bench.closed_loop", "warmup", _empty,
     lambda c, v: len(_harness.closed_loop(*_bench_flow(), warmup=v))),
    ("bench.open_loop", "warmup", _empty,
     lambda c, v: [len(a) for a in _harness.open_loop(*_bench_flow(), 1e6, warmup=v)]),
]
_PY_FLAG_IDS = [f"{c[0]}-{c[1]}" for c in PY_FLAG_CALLS]
# flags that document None as a value of their own (compress=None: by the file name)
_NONE_VALID = {("dbn_gen.generate_mbo", "compress")}


@pytest.mark.parametrize("flag,prepare,call,bad", [
    pytest.param(*c[1:], bad, id=f"{i}-{bad!r}")
    for c, i in zip(PY_FLAG_CALLS, _PY_FLAG_IDS) for bad in PY_FLAG_BAD
    if not (bad is None and c[:2] in _NONE_VALID)])
def test_python_flag_refuses_non_flags_and_changes_nothing(tmp_path, flag, prepare, call, bad):
    ctx = prepare(tmp_path / "a")
    before = ctx.snapshot()
    with pytest.raises(TypeError) as exc:
        call(ctx, bad)
    assert str(exc.value) == f"{flag} must be True or False, got {bad!r}"
    assert ctx.snapshot() == before


@pytest.mark.parametrize("flag,prepare,call", [c[1:] for c in PY_FLAG_CALLS],
                         ids=_PY_FLAG_IDS)
@pytest.mark.parametrize("value,as_bool", FLAG_GOOD, ids=repr)
def test_python_flag_accepts_bools_and_0_1_as_the_bool(tmp_path, flag, prepare, call, value,
                                                       as_bool):
    got, want = prepare(tmp_path / "a"), prepare(tmp_path / "b")
    assert _outcome(lambda: call(got, value)) == _outcome(lambda: call(want, as_bool))
    assert got.snapshot() == want.snapshot()


def test_generate_mbo_compress_none_still_goes_by_the_file_name(tmp_path):
    pytest.importorskip("databento_dbn")
    pytest.importorskip("zstandard")
    from matchcore.feeds.dbn_gen import generate_mbo
    (tmp_path / "auto").mkdir()
    (tmp_path / "by_flag").mkdir()
    for name in ("x.dbn", "x.dbn.zst"):
        auto = generate_mbo(tmp_path / "auto" / name, records=40, compress=None)
        named = generate_mbo(tmp_path / "by_flag" / name, records=40,
                             compress=name.endswith(".zst"))
        assert auto.read_bytes() == named.read_bytes()


def test_python_flags_differ_on_true_and_false(tmp_path):
    # the cases above see the flag at work: True and False give different results
    for n, (name, flag, prepare, call) in enumerate(PY_FLAG_CALLS):
        if name in ("bench.closed_loop", "bench.open_loop", "itch.ReferenceReplay.diff",
                    "durability.open_writers-new-dir"):
            continue    # the same result either way (timings; equal books; an empty directory)
        on = _outcome(lambda: call(prepare(tmp_path / f"{n}-on"), True))
        off = _outcome(lambda: call(prepare(tmp_path / f"{n}-off"), False))
        assert on != off, (name, flag)


def test_python_flags_of_long_or_networked_calls_refuse_before_starting(tmp_path):
    # the refusal comes before a benchmark runs, a server starts or a connection is tried
    import time

    from matchcore.bench.core import run_core
    from matchcore.bench.harness import measure_workload
    from matchcore.bench.report import format_report
    from matchcore.cli_bench import run_bench
    from matchcore.io.replay_hooks import ReplayHooks
    calls = [
        ("quick", lambda v: run_core(quick=v)),
        ("quick", lambda v: run_bench(["standard"], quick=v, progress=False,
                                      save_dir=tmp_path / "wl")),
        ("progress", lambda v: run_bench(["standard"], quick=True, progress=v,
                                         save_dir=tmp_path / "wl")),
        ("keep_samples", lambda v: measure_workload(None, None, keep_samples=v)),
        ("net", lambda v: format_report({}, net=v)),
        ("keep_sinks", lambda v: ReplayHooks(metrics_port=0, keep_sinks=v)),
    ]
    try:
        from matchcore.io.nats import consume
        calls.append(("follow", lambda v: consume("nats://127.0.0.1:9", follow=v, timeout=5)))
    except ImportError:
        pass
    for name, call in calls:
        for bad in PY_FLAG_BAD:
            t0 = time.perf_counter()
            with pytest.raises(TypeError, match=rf"^{name} must be True or False, got "):
                call(bad)
            assert time.perf_counter() - t0 < 1.0, (name, bad)
    assert list(tmp_path.iterdir()) == []
    # the good values reach the body: format_report reads the result dict, measure_workload
    # keeps its samples
    for good, as_bool in FLAG_GOOD:
        assert _outcome(lambda: format_report({}, net=good)) == ("raised", KeyError)
    setup, flow = mc.workloads.standard_mix(300, resting=200)
    for good, as_bool in ((np.bool_(True), True), (0, False)):
        assert ("_samples" in measure_workload(setup, flow, keep_samples=good)) is as_bool


def test_dask_processes_is_a_flag_checked_before_any_cluster(tmp_path):
    # Refused before a cluster exists (no LocalCluster is made: the set of live clusters is
    # unchanged); a good value starts a real one, of threads for False
    pytest.importorskip("distributed")
    from distributed.deploy.spec import SpecCluster
    import matchcore.cluster.dask as cdask
    import matchcore.itch as itch

    path = itch.generate(tmp_path / "a.itch", messages=200, symbols=2, seed=1)
    before = set(SpecCluster._instances)
    # (None is processes not given: the default for "local", nothing for an address)
    for bad in [b for b in PY_FLAG_BAD if b is not None]:
        with pytest.raises(TypeError, match=r"processes must be True or False, got "):
            cdask.connect("local", processes=bad)
        with pytest.raises(TypeError, match=r"processes must be True or False, got "):
            cdask.connect("tcp://127.0.0.1:9", processes=bad)
        with pytest.raises(TypeError, match=r"processes must be True or False, got "):
            cdask.replay_files([path], "local", processes=bad)
    assert set(SpecCluster._instances) == before
    for good in (np.bool_(False), 0):
        client = cdask.connect("local", workers=1, processes=good)
        try:
            assert all(type(w).__name__ == "Worker" for w in client.cluster.workers.values())
        finally:
            cluster = client.cluster
            client.close()
            cluster.close()


@pytest.mark.parametrize("method", ["depth", "depth_orders"])
@pytest.mark.parametrize("bad,exc,words", [
    (1.5, TypeError, "n must be an integer, got float 1.5"),
    ("3", TypeError, "n must be an integer, got str '3'"),
    (None, TypeError, "n must be an integer, got NoneType None"),
    (2**63, OverflowError, "n=9223372036854775808 is outside the int64 range"),
    (-1, ValueError, "{method}(n) needs n >= 0, got -1"),
], ids=["float", "str", "None", "beyond-int64", "negative"])
def test_depth_n_errors_name_the_argument_as_the_reference_model_does(method, bad, exc, words):
    # depth(n) is an integer argument of the book's queries too: the book, the engine and the
    # reference model refuse a bad n in the same words, naming it
    eng = mc.Engine()
    eng.add_symbol(0)
    targets = {"book": getattr(OrderBook(), method),
               "engine": lambda n: getattr(eng, method)(0, n),
               "reference": getattr(mc.ReferenceBook(), method)}
    for on, call in targets.items():
        with pytest.raises(exc) as info:
            call(bad)
        assert str(info.value) == words.format(method=method), on


@pytest.mark.parametrize("method", ["depth", "depth_orders"])
def test_depth_n_takes_every_integer_carrier(method):
    book = _seeded()
    want = [a.tolist() for a in getattr(book, method)(1)]
    for one in _carriers(1) + [Px.A]:
        got = [a.tolist() for a in getattr(book, method)(one)]
        assert got == (want if one == 1 else [a.tolist() for a in getattr(book, method)(101)])
    assert [len(a) for a in getattr(book, method)(2**63 - 1)] == [book.level_count(0),
                                                                 book.level_count(1)]


@pytest.mark.parametrize("call", [
    lambda b, side: b.level(side, 100),
    lambda b, side: b.level(side, 1.5),             # the side is refused first
    lambda b, side: b.level_count(side),
], ids=["level", "level-bad-price-too", "level_count"])
@pytest.mark.parametrize("side", [2, -1, np.int64(2), MyInt(5)])
def test_book_queries_unknown_side_refused_in_the_reference_models_words(call, side):
    eng = mc.Engine()
    eng.add_symbol(0)
    targets = {"book": OrderBook(), "reference": mc.ReferenceBook(),
               "engine": type("EngineSymbol0", (), {
                   "level": lambda self, s, p: eng.level(0, s, p),
                   "level_count": lambda self, s: eng.level_count(0, s)})()}
    for on, target in targets.items():
        with pytest.raises(ValueError) as info:
            call(target, side)
        assert str(info.value) == f"side must be 0 (BUY) or 1 (SELL), got {int(side)}", on
