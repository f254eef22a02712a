"""Pickling and copying. An OrderBook or Engine that went through pickle (protocols 2..5, also into
a spawned process), copy.copy or copy.deepcopy at any point of a session behaves exactly like the
original from there on: the same events (those still pending at the copy included), the same
state hash, the same invariants. A journaled Engine and the objects that hold live resources
(sockets, open files, threads, C decoder state) refuse with a TypeError saying why."""
from __future__ import annotations

import copy
import ctypes
import multiprocessing
import pickle
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import matchcore as mc
from matchcore._core import COMMAND_DTYPE, EVENT_DTYPE, SnapshotError
from conftest import assert_events_equal
from test_book_property import (
    fresh_ids, maybe_bad_price, maybe_bad_qty, maybe_bad_side, maybe_bad_tif, owners, ts,
)
from test_capi import run_python_calls
from engine_checks import apply_engine_command, make_engine

PROTOCOLS = range(2, pickle.HIGHEST_PROTOCOL + 1)
HOWS = ("pickle", "deepcopy", "copy")

_SETTINGS = settings(max_examples=50, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def commands(symbols=(0,), max_size=50):
    """Command streams as COMMAND_DTYPE arrays: every kind, ids from a small pool (so cancels,
    modifies and duplicates hit) or anywhere in [0, 2**64), and now and then a bad field."""
    ids = st.one_of(st.integers(0, 12), st.integers(0, 12), fresh_ids)
    row = st.tuples(ts, ids, maybe_bad_price, maybe_bad_qty, owners, st.sampled_from(symbols),
                    st.sampled_from([0, 0, 0, 0, 1, 2, 2, 3, 3]), maybe_bad_side, maybe_bad_tif,
                    st.sampled_from([0, 0, 0, 1]))
    return st.lists(row, max_size=max_size).map(lambda rows: np.array(rows, dtype=COMMAND_DTYPE))


def twin_of(obj, how: str, protocol: int = pickle.HIGHEST_PROTOCOL):
    if how == "pickle":
        return pickle.loads(pickle.dumps(obj, protocol))
    return copy.deepcopy(obj) if how == "deepcopy" else copy.copy(obj)


def orders_capacity(book: mc.OrderBook) -> int:
    # mc_book.orders_cap: the int32 after the orders pointer (no Python API shows it)
    return ctypes.c_int32.from_address(book.raw_address + 8).value


def assert_same_book(twin: mc.OrderBook, book: mc.OrderBook) -> None:
    assert twin is not book and twin.handle != book.handle
    assert twin.state_hash() == book.state_hash()
    # the snapshot holds what the hash does not: the clock and the next arrival number
    assert twin.snapshot() == book.snapshot()
    assert (twin.stp, twin.record_events, len(twin)) == (book.stp, book.record_events, len(book))
    assert orders_capacity(twin) == orders_capacity(book)
    for a, b in zip(twin.depth_orders(1000), book.depth_orders(1000)):
        np.testing.assert_array_equal(a, b)
    twin.check_invariants()


def continue_both(book, twin, cmds, finish: str) -> None:
    if finish == "process":
        assert_events_equal(twin.process(cmds), book.process(cmds), labels=("copy", "original"))
    else:
        run_python_calls(book, cmds, drain=False)
        run_python_calls(twin, cmds, drain=False)
    # what was pending at the copy comes out of both, before what followed
    assert_events_equal(twin.events(), book.events(), labels=("copy", "original"))


# ---- OrderBook ----

@pytest.mark.parametrize("how", HOWS)
@_SETTINGS
@given(cmds=commands(), data=st.data(), stp=st.sampled_from(list(mc.STP)),
       record_events=st.sampled_from([True, True, False]),
       capacity=st.sampled_from([0, 100, 5000]))
def test_book_copied_at_random_point_behaves_as_original(how, cmds, data, stp, record_events,
                                                         capacity):
    cut = data.draw(st.integers(0, len(cmds)), label="cut")
    book = mc.OrderBook(stp, record_events=record_events, capacity=capacity)
    run_python_calls(book, cmds[:cut], drain=False)
    if data.draw(st.sampled_from([False, False, True]), label="read events before the copy"):
        book.events()
    twin = twin_of(book, how, data.draw(st.sampled_from(PROTOCOLS), label="protocol"))
    assert_same_book(twin, book)
    continue_both(book, twin, cmds[cut:], data.draw(st.sampled_from(["calls", "process"])))
    assert_same_book(twin, book)
    # independent: emptying the copy leaves the original alone
    h = book.state_hash()
    twin.clear()
    assert book.state_hash() == h


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_book_pickle_keeps_pending_events_clock_and_mode(protocol):
    book = mc.OrderBook(mc.STP.CANCEL_BOTH, capacity=3000)
    book.submit(1, mc.Side.SELL, 101, 4, owner=9, post_only=True, ts_ns=5)
    book.submit(2, mc.Side.BUY, 101, 1, owner=8, ts_ns=7)
    twin = pickle.loads(pickle.dumps(book, protocol))
    assert twin.stp == mc.STP.CANCEL_BOTH
    assert_events_equal(twin.events(), book.events())
    assert len(twin.events()) == 0
    assert_same_book(twin, book)


def test_book_copy_keeps_pending_events_and_copy_module_agrees():
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    book.submit(2, 1, 100, 2)
    pending = book.copy().events()
    assert len(pending) == 3        # ACCEPTED, ACCEPTED, FILL: not lost by copying
    for twin in (copy.copy(book), copy.deepcopy(book), pickle.loads(pickle.dumps(book))):
        assert_events_equal(twin.events(), pending)
    assert_events_equal(book.events(), pending)


def test_book_without_events_pickles_none():
    book = mc.OrderBook(record_events=False)
    book.submit(1, 0, 100, 5)
    twin = pickle.loads(pickle.dumps(book))
    assert not twin.record_events and len(twin.events()) == 0
    twin.submit(2, 1, 100, 5)
    assert len(twin.events()) == 0


def test_book_pickle_of_crossed_replay_book_restores():
    book = mc.OrderBook()
    book.place(1, 0, 105, 3)
    book.place(2, 1, 100, 3)        # crossed, as exchange data can be
    twin = pickle.loads(pickle.dumps(book))
    assert twin.state_hash() == book.state_hash()
    twin.check_invariants(allow_crossed=True)


def test_book_pickle_of_another_format_is_refused_clearly():
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    fn, args = book.__reduce__()[:2]
    with pytest.raises(SnapshotError, match="pickle format 99"):
        fn(99, *args[1:])
    snap = bytearray(args[1])
    snap[8:12] = (7).to_bytes(4, "little")
    with pytest.raises(SnapshotError, match="snapshot format 7"):
        fn(args[0], bytes(snap), *args[2:])
    with pytest.raises(SnapshotError, match="truncated"):
        fn(*args[:4], b"\0" * 63)
    assert fn(*args).state_hash() == book.state_hash()


def test_engine_book_pickles_and_copies_as_a_standalone_book():
    eng = make_engine(2)
    eng.submit(1, 10, 0, 100, 4)
    for how in HOWS:
        alone = twin_of(eng.book(1), how)
        assert alone.state_hash() == eng.book(1).state_hash()
        alone.submit(11, 1, 100, 4)     # trades in the copy only
        assert len(alone) == 0 and eng.get(10) == (1, 0, 100, 4)


def test_engine_book_twins_keep_its_symbol_in_their_events_a_new_book_has_0():
    # The README's event table said symbol is "0 for a single book", while a standalone copy,
    # pickle or snapshot of an engine's book keeps the book's symbol id and writes it into
    # its events (the README's pickling section lists the symbol id among what a twin holds)
    eng = mc.Engine()
    eng.add_symbol(7)
    eng.submit(7, 10, 0, 100, 4)
    book = eng.book(7)
    restored = mc.OrderBook()
    restored.restore(book.snapshot())
    twins = [twin_of(book, how) for how in HOWS] + [
        book.copy(), mc.OrderBook.from_snapshot(book.snapshot()), restored]
    for i, alone in enumerate(twins):
        alone.events()
        assert alone.submit(100 + i, 1, 100, 1) == 1
        ev = alone.events()
        assert len(ev) == 2 and ev["symbol"].tolist() == [7, 7]
    new = mc.OrderBook()
    new.submit(1, 0, 100, 1)
    assert new.events()["symbol"].tolist() == [0]
    restored.restore(new.snapshot())        # a new book's snapshot brings its 0 back
    restored.cancel(1)
    assert restored.events()["symbol"].tolist() == [0]


@pytest.mark.parametrize("record_events", [True, False])
def test_engine_book_copy_without_events_takes_orders_as_a_standalone_book(record_events):
    # The copy kept the engine's read-only mark: a book that records no events (its guard byte
    # non-zero) then raised ReadOnlyBookError on every order, as if it were the engine's.
    from test_capi import CTable
    api = CTable()
    eng = make_engine(2, limits=False, record_events=record_events)
    eng.submit(1, 10, 0, 100, 4)
    book = eng.book(1)
    twins = [twin_of(book, how) for how in HOWS] + [book.copy()]
    for i, alone in enumerate(twins):
        assert alone.record_events == record_events
        assert alone.submit(100 + i, 1, 100, 1) == 1 and alone.get(10) == (0, 100, 3)
        alone.cancel(10)
        assert len(alone) == 0
        alone.process(np.zeros(0, COMMAND_DTYPE))
        assert api.submit(alone.handle, 200 + i, 0, 90, 1, 0, 0, 0) == 0 and len(alone) == 1
    c = api.book_copy(book.handle)      # a C-owned copy takes orders from C too
    assert api.submit(c, 300, 1, 100, 1, 0, 0, 0) == 1 and api.count(c) == 1
    assert api.book_free(c) == 0
    assert eng.get(10) == (1, 0, 100, 4) and len(eng) == 1
    with pytest.raises(mc.ReadOnlyBookError):
        book.submit(400, 1, 100, 1)


# ---- Engine ----

@pytest.mark.parametrize("how", HOWS)
@_SETTINGS
@given(cmds=commands(symbols=(0, 1, 2, 7)), data=st.data(), stp=st.sampled_from(list(mc.STP)),
       record_events=st.sampled_from([True, True, False]), limits=st.booleans())
def test_engine_copied_at_random_point_behaves_as_original(how, cmds, data, stp, record_events,
                                                           limits):
    cut = data.draw(st.integers(0, len(cmds)), label="cut")
    eng = make_engine(3, limits=limits, stp=stp, record_events=record_events)
    rows = cmds.tolist()
    for row in rows[:cut]:
        apply_engine_command(eng, row)
    if data.draw(st.sampled_from([False, False, True]), label="read events before the copy"):
        eng.events()
    twin = twin_of(eng, how, data.draw(st.sampled_from(PROTOCOLS), label="protocol"))
    assert_same_engine(twin, eng)
    if data.draw(st.sampled_from(["calls", "process"])) == "process":
        assert_events_equal(twin.process(cmds[cut:]), eng.process(cmds[cut:]))
    else:
        for row in rows[cut:]:
            apply_engine_command(eng, row)
            apply_engine_command(twin, row)
    assert_events_equal(twin.events(), eng.events(), labels=("copy", "original"))
    assert_same_engine(twin, eng)
    for oid in set(cmds["order_id"].tolist()):
        assert twin.get(oid) == eng.get(oid)


def assert_same_engine(twin: mc.Engine, eng: mc.Engine) -> None:
    assert twin is not eng and twin.handle != eng.handle
    assert twin.state_hash() == eng.state_hash()
    assert (twin.stp, twin.record_events, len(twin)) == (eng.stp, eng.record_events, len(eng))
    assert twin.symbols == eng.symbols
    for sym in eng.symbols:
        assert twin.limits(sym) == eng.limits(sym)
        assert twin.book(sym) is not eng.book(sym)
        assert twin.book(sym).snapshot() == eng.book(sym).snapshot()
    twin.check_invariants()


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("call", ["cancel", "modify", "process cancel", "process modify"])
def test_engine_copy_cancel_of_a_filled_id_leaves_the_same_book_clock(how, call):
    # the engine's id index keeps entries of filled orders (reclaimed later); a copy's index
    # is rebuilt without them. A cancel or modify of such an id asked the book, which set its
    # clock (now_ns) before saying "not found", while the copy rejected it at once: the same
    # events, but the books' snapshots differed from then on
    eng = make_engine(2)
    eng.submit(0, 1, 0, 100, 5, ts_ns=10)
    eng.submit(0, 2, 1, 100, 5, ts_ns=20)            # fills order 1: its entry is stale
    twin = twin_of(eng, how)
    cmd = np.zeros(1, COMMAND_DTYPE)
    cmd["kind"] = mc.CommandKind.CANCEL if call.endswith("cancel") else mc.CommandKind.MODIFY
    cmd["order_id"], cmd["qty"], cmd["ts_ns"] = 1, 3, 30
    events = []
    for e in (eng, twin):
        e.events()
        if call.startswith("process"):
            events.append(e.process(cmd))
            continue
        try:
            getattr(e, call)(1, *(() if call == "cancel" else (3,)), ts_ns=30)
        except mc.OrderRejected:
            pass
        events.append(e.events())
    got = events[0]
    assert got["kind"].tolist() == [mc.EventKind.REJECTED] and got["ts_ns"].tolist() == [30]
    assert_events_equal(events[1], got, labels=("copy", "original"))
    assert twin.book(0).snapshot() == eng.book(0).snapshot()


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_engine_books_held_beside_it_stay_its_books(how):
    eng = make_engine(2)
    eng.submit(0, 5, 0, 100, 3)
    book, twin = twin_of((eng.book(0), eng), how)
    assert book is twin.book(0)
    twin.submit(0, 6, 1, 100, 3)
    assert len(book) == 0 and len(eng.book(0)) == 1


def test_engine_copy_copy_does_not_share_books():
    eng = make_engine(1)
    eng.submit(0, 5, 0, 100, 3)
    twin = copy.copy(eng)
    twin.cancel(5)
    assert eng.get(5) == (0, 0, 100, 3) and twin.get(5) is None


def test_engine_pickle_of_another_format_is_refused_clearly():
    fn, args = make_engine(1).__reduce__()[:2]
    with pytest.raises(SnapshotError, match="Engine was pickled .* pickle format 0"):
        fn(0, *args[1:])


def test_journaled_engine_refuses_to_be_pickled_or_copied(tmp_path):
    eng = mc.Engine(journal=tmp_path / "j", fsync="never")
    eng.add_symbol(1, "AAA")
    eng.submit(1, 7, 0, 100, 5)
    for fn in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="journal attached .* LOCKed"):
            fn(eng)
    with pytest.raises(TypeError, match="JournalWriter: it holds an open segment file"):
        pickle.dumps(eng.journal)
    # the way the message offers: an unjournaled engine of the same state
    eng.sync()
    plain = mc.Engine.recover(tmp_path / "j", readonly=True)
    assert plain.journal is None and plain.state_hash() == eng.state_hash()
    assert pickle.loads(pickle.dumps(plain)).state_hash() == eng.state_hash()
    eng.close()
    with pytest.raises(TypeError, match="journal attached"):
        pickle.dumps(eng)


def test_closed_journaled_engine_refusal_offers_what_works_after_close(tmp_path):
    # after close() the refusal still said the engine "holds LOCKed" its directory (close()
    # released it) and offered "eng.sync(), then Engine.recover(DIR, readonly=True)": sync()
    # of a closed engine raises "journal ... is closed"; the writer's own refusal said it
    # "holds an open segment file, the directory's LOCK"
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1, "AAA")
    eng.submit(1, 7, 0, 100, 5)
    eng.close()
    for fn in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="journal attached") as err:
            fn(eng)
        msg = str(err.value)
        assert "LOCKed" not in msg and "eng.sync()" not in msg, msg
        assert "closed" in msg and "Engine.recover(DIR, readonly=True)" in msg, msg
    with pytest.raises(TypeError, match="JournalWriter") as err:
        pickle.dumps(eng.journal)
    assert "open segment file" not in str(err.value) and "closed" in str(err.value)
    # the way it offers: an unjournaled engine of the state the journal holds
    plain = mc.Engine.recover(d, readonly=True)
    assert pickle.loads(pickle.dumps(plain)).state_hash() == eng.state_hash()


class TaggedBook(mc.OrderBook):
    tag = None


class TaggedEngine(mc.Engine):
    tag = None


@pytest.mark.parametrize("how", HOWS)
def test_subclasses_keep_their_class_and_attributes(how):
    book = TaggedBook(record_events=False)
    book.tag = ["a"]
    book.submit(1, 0, 100, 5)
    eng = TaggedEngine(stp=mc.STP.NONE)
    eng.tag = {"k": 1}
    eng.add_symbol(3)
    eng.submit(3, 1, 0, 100, 5)
    for obj in (book, eng):
        twin = twin_of(obj, how)
        assert type(twin) is type(obj) and twin.tag == obj.tag
        assert twin.state_hash() == obj.state_hash() and twin.stp == obj.stp
        # copy.copy of a book shares its attributes; of an engine it is a deep copy
        assert (twin.tag is obj.tag) == (how == "copy" and obj is book)


class SlottedBook(mc.OrderBook):
    __slots__ = ("tag", "unset")


class SlottedEngine(mc.Engine):
    __slots__ = ("tag",)


class SlottedTaggedBook(TaggedBook):
    __slots__ = ("slot",)


@pytest.mark.parametrize("how", HOWS + ("book.copy",))
def test_subclasses_keep_their_slots(how):
    book = SlottedBook()
    book.tag = ["a"]
    book.submit(1, 0, 100, 5)
    eng = SlottedEngine()
    eng.tag = ("b",)
    both = SlottedTaggedBook()
    both.slot, both.tag = 1, 2
    for obj in (book, eng, both):
        if how == "book.copy" and obj is eng:
            continue
        twin = obj.copy() if how == "book.copy" else twin_of(obj, how)
        assert type(twin) is type(obj) and twin.state_hash() == obj.state_hash()
        assert twin.tag == obj.tag
    assert not hasattr(twin_of(book, "pickle"), "unset")
    assert twin_of(both, "pickle").slot == 1


class DeskNewBook(mc.OrderBook):
    # a subclass with a __new__ of its own signature, as a registry of instances may have
    def __new__(cls, desk="rates"):
        return super().__new__(cls)

    def __init__(self, desk="rates"):
        super().__init__(mc.STP.CANCEL_TAKER, record_events=False)
        self.desk = desk


@pytest.mark.parametrize("how", HOWS + ("book.copy",))
def test_subclass_with_its_own_new_copies_as_it_pickles(how):
    # copy() called cls.__new__ with OrderBook's arguments (stp, record_events=, capacity=),
    # which such a __new__ refuses (TypeError) while pickle, which calls cls.__new__(cls),
    # made the twin
    book = DeskNewBook("credit")
    book.submit(1, 0, 100, 5)
    twin = book.copy() if how == "book.copy" else twin_of(book, how)
    assert type(twin) is DeskNewBook and twin.desk == "credit"
    assert twin.snapshot() == book.snapshot() and twin.stp == mc.STP.CANCEL_TAKER
    assert twin.record_events is False and len(twin.events()) == 0
    assert twin.submit(2, 1, 100, 2) == 2 and book.get(1) == (0, 100, 5)


class HistoryBook(mc.OrderBook):
    # copy() in the usual Python idiom: copy.copy(self), then what a shallow copy shares
    def __init__(self):
        super().__init__()
        self.history = []

    def copy(self):
        twin = copy.copy(self)
        twin.history = list(self.history)
        return twin


class SummaryBook(mc.OrderBook):
    # a copy() of another meaning, as a subclass is free to give its own methods
    def copy(self):
        return {"orders": len(self)}


def test_subclass_copy_method_is_not_what_copy_copy_calls():
    # OrderBook.__copy__ called self.copy(): a subclass's copy() written as copy.copy(self)
    # recursed until RecursionError, and one of another meaning was what copy.copy returned
    book = HistoryBook()
    book.submit(1, 0, 100, 5)
    book.history.append("submit 1")
    twin = book.copy()
    assert type(twin) is HistoryBook and twin.snapshot() == book.snapshot()
    assert twin.history == ["submit 1"] and twin.history is not book.history
    other = SummaryBook()
    other.submit(1, 0, 100, 5)
    assert other.copy() == {"orders": 1}
    for twin in (copy.copy(other), copy.deepcopy(other)):
        assert type(twin) is SummaryBook and twin.snapshot() == other.snapshot()


class ResetCountingBook(mc.OrderBook):
    # restore() overridden to count the resets of a simulation, with an attribute __init__ sets
    def __init__(self):
        super().__init__()
        self.resets = 0

    def restore(self, data):
        super().restore(data)
        self.resets += 1


@pytest.mark.parametrize("how", ["pickle", "from_snapshot"])
def test_subclass_restore_method_is_not_what_unpickling_calls(how):
    # unpickling and from_snapshot filled the new book through book.restore(): a subclass's
    # override ran on an instance made without __init__ (AttributeError here)
    book = ResetCountingBook()
    book.submit(1, 0, 100, 5)
    book.restore(book.snapshot())
    twin = (pickle.loads(pickle.dumps(book)) if how == "pickle"
            else ResetCountingBook.from_snapshot(book.snapshot()))
    assert type(twin) is ResetCountingBook and twin.snapshot() == book.snapshot()
    assert getattr(twin, "resets", None) == (1 if how == "pickle" else None)


def _registry_new(cls, base, desk, registry):
    # a __new__ that needs its argument: one book per desk, kept in a registry
    self = base.__new__(cls)
    self.desk = desk
    registry.setdefault(desk, []).append(self)
    return self


class RegistryBook(mc.OrderBook):
    registry: dict = {}

    def __new__(cls, desk):
        return _registry_new(cls, mc.OrderBook, desk, cls.registry)

    def __init__(self, desk):
        super().__init__(mc.STP.CANCEL_TAKER)

    def __getnewargs__(self):
        # the protocol pickle and copy use to call such a __new__
        return (self.desk,)


class RegistryBookKw(mc.OrderBook):
    registry: dict = {}

    def __new__(cls, *, desk):
        return _registry_new(cls, mc.OrderBook, desk, cls.registry)

    def __init__(self, *, desk):
        super().__init__(mc.STP.CANCEL_TAKER)

    def __getnewargs_ex__(self):
        return (), {"desk": self.desk}


class RegistryReferenceBook(mc.ReferenceBook):
    registry: dict = {}

    def __new__(cls, desk):
        return _registry_new(cls, mc.ReferenceBook, desk, cls.registry)

    def __init__(self, desk):
        super().__init__(mc.STP.CANCEL_TAKER)

    def __getnewargs__(self):
        return (self.desk,)


@pytest.mark.parametrize("cls, make", [(RegistryBook, lambda: RegistryBook("credit")),
                                       (RegistryBookKw, lambda: RegistryBookKw(desk="credit")),
                                       (RegistryReferenceBook,
                                        lambda: RegistryReferenceBook("credit"))])
@pytest.mark.parametrize("how", HOWS + ("book.copy", "pickle protocol 0"))
def test_subclass_new_with_arguments_gets_them_from_getnewargs(cls, make, how):
    # A __new__ that needs arguments takes them from __getnewargs__ / __getnewargs_ex__, as
    # for any Python object (the reference model, a plain class, is made so). The compiled
    # book called cls.__new__(cls): pickle.dumps wrote a pickle that loads refused with
    # TypeError, and every copy failed.
    if how == "book.copy" and cls is RegistryReferenceBook:
        pytest.skip("ReferenceBook has no copy() method")
    if how == "pickle protocol 0" and cls is RegistryReferenceBook:
        pytest.skip("protocol 0 makes a plain object without its __new__")
    book = make()
    book.submit(1, 0, 100, 5, owner=3)
    made = len(cls.registry["credit"])
    if how == "book.copy":
        twin = book.copy()
    elif how == "pickle protocol 0":
        twin = twin_of(book, "pickle", 0)
    else:
        twin = twin_of(book, how)
    assert type(twin) is cls and twin is not book and twin.desk == "credit"
    assert len(cls.registry["credit"]) == made + 1 and cls.registry["credit"][-1] is twin
    assert twin.stp == mc.STP.CANCEL_TAKER and twin.level(0, 100) == [(1, 5)]
    assert twin.submit(2, 1, 100, 2) == 2 and book.get(1) == (0, 100, 5)


@pytest.mark.parametrize("bad, error", [
    ("desk", "__getnewargs__ should return a tuple, not 'str'"),
    (None, "__getnewargs__ should return a tuple, not 'NoneType'"),
])
def test_subclass_getnewargs_not_a_tuple_refused_as_pickle_refuses(bad, error):
    class Bad(RegistryBook):
        def __getnewargs__(self):
            return bad

    book = Bad("credit")
    book.submit(1, 0, 100, 5)
    before = book.snapshot()
    for how in ("copy", "deepcopy", "book.copy"):
        with pytest.raises(TypeError, match=error):
            book.copy() if how == "book.copy" else twin_of(book, how)
    assert book.snapshot() == before


class RegistryEngine(mc.Engine):
    registry: dict = {}

    def __new__(cls, desk):
        return _registry_new(cls, mc.Engine, desk, cls.registry)

    def __init__(self, desk):
        super().__init__(mc.STP.CANCEL_TAKER)

    def __getnewargs__(self):
        return (self.desk,)


class RegistryEngineKw(mc.Engine):
    registry: dict = {}

    def __new__(cls, *, desk):
        return _registry_new(cls, mc.Engine, desk, cls.registry)

    def __init__(self, *, desk):
        super().__init__(mc.STP.CANCEL_TAKER)

    def __getnewargs_ex__(self):
        return (), {"desk": self.desk}


@pytest.mark.parametrize("cls, make", [(RegistryEngine, lambda: RegistryEngine("credit")),
                                       (RegistryEngineKw, lambda: RegistryEngineKw(desk="credit"))])
@pytest.mark.parametrize("how", HOWS + ("pickle protocol 0",))
def test_engine_subclass_new_with_arguments_gets_them_from_getnewargs(cls, make, how):
    # As for OrderBook subclasses: the engine called cls.__new__(cls), so a subclass whose
    # __new__ needs arguments could be pickled but not unpickled, nor copied.
    eng = make()
    eng.add_symbol(4, "FOUR")
    eng.set_limits(4, tick=5)
    eng.submit(4, 1, 0, 100, 5, owner=3)
    made = len(cls.registry["credit"])
    if how == "pickle protocol 0":
        twin = twin_of(eng, "pickle", 0)
    else:
        twin = twin_of(eng, how)
    assert type(twin) is cls and twin is not eng and twin.desk == "credit"
    assert len(cls.registry["credit"]) == made + 1 and cls.registry["credit"][-1] is twin
    assert twin.stp == mc.STP.CANCEL_TAKER and twin.state_hash() == eng.state_hash()
    assert twin.limits(4) == eng.limits(4) and twin.symbol_id("FOUR") == 4
    assert twin.submit(4, 2, 1, 100, 2) == 2 and eng.get(1) == (4, 0, 100, 5)
    twin.check_invariants()


class _Desk:
    def __init__(self, name):
        self.name = name


def test_engine_subclass_recovery_calls_new_without_arguments(tmp_path):
    # Recovery has no instance to ask for its __getnewargs__, and the journal holds none of
    # a subclass's own state: its __new__ is called with no arguments (as Engine.recover's
    # docstring says; it said cls.__new__(cls, stp)), and one that needs them refuses
    # before the directory is touched.
    d = tmp_path / "j"
    eng = mc.Engine(journal=d, fsync="never")
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    eng.close()
    files = {p.name: p.read_bytes() for p in d.iterdir()}
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'desk'"):
        RegistryEngine.recover(d)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == files
    rec = TaggedEngine.recover(d, readonly=True)
    assert type(rec) is TaggedEngine and rec.get(1) == (1, 0, 100, 5)
    assert "``cls.__new__(cls)``, with no arguments" in mc.Engine.recover.__doc__


def test_engine_subclass_new_arguments_deep_copied_with_the_memo():
    # copy.deepcopy takes the arguments of __new__ deeply, with the memo of the whole copy
    eng = RegistryEngine(_Desk("credit"))
    twin, desk = copy.deepcopy((eng, eng.desk))
    assert twin.desk.name == "credit" and twin.desk is not eng.desk and twin.desk is desk


@pytest.mark.parametrize("bad, error", [
    ("desk", "__getnewargs__ should return a tuple, not 'str'"),
    (None, "__getnewargs__ should return a tuple, not 'NoneType'"),
])
def test_engine_subclass_getnewargs_not_a_tuple_refused_as_pickle_refuses(bad, error):
    class Bad(RegistryEngine):
        def __getnewargs__(self):
            return bad

    eng = Bad("credit")
    eng.add_symbol(2)
    eng.submit(2, 1, 0, 100, 5)
    state = eng.state_hash()
    made = len(Bad.registry["credit"])
    for how in ("pickle", "copy", "deepcopy"):
        with pytest.raises(TypeError, match=error):
            twin_of(eng, how)
    assert len(Bad.registry["credit"]) == made and eng.state_hash() == state
    # (and not left held: the next call goes through)
    assert eng.get(1) == (2, 0, 100, 5) and eng.submit(2, 2, 1, 100, 2) == 2


def test_engine_pickles_without_getnewargs_keep_their_arguments():
    # The arguments are carried only for a subclass that defines __getnewargs__(_ex__): the
    # pickles of Engine and of other subclasses hold what they held before.
    for eng in (mc.Engine(), TaggedEngine(), RegistryEngine("credit")):
        eng.add_symbol(1)
        args = eng.__reduce__()[1]
        assert len(args) == (9 if type(eng) is RegistryEngine else 8)
        assert args[7] is (None if type(eng) is mc.Engine else type(eng))


def test_engine_unpickle_refuses_new_arguments_not_args_and_kwargs():
    eng = RegistryEngine("credit")
    fn, args, state = eng.__reduce__()
    with pytest.raises(TypeError, match="RegistryEngine.__new__ are not \\(args, kwargs\\)"):
        fn(*args[:8], ("credit",))


class _LockedState:
    """A subclass's own pickling protocol: __getstate__ leaves out a lock (which cannot be
    pickled or copied), __setstate__ makes a new one and counts its calls."""

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.Lock()
        self.restored = state.get("restored", 0) + 1


class LockedBook(_LockedState, mc.OrderBook):
    pass


class LockedEngine(_LockedState, mc.Engine):
    pass


class LockedReferenceBook(_LockedState, mc.ReferenceBook):
    pass


@pytest.mark.parametrize("how", HOWS + ("book.copy",))
def test_subclasses_own_getstate_and_setstate_used_as_for_any_python_object(how):
    # The book and engine handed their subclass's __dict__ to pickle and copy without asking
    # its __getstate__, and copies set it without its __setstate__: a subclass holding a lock
    # (or a file, a socket) that its __getstate__ leaves out could not be pickled or copied,
    # where a Python class (the reference book's subclass) can.
    book = LockedBook()
    book.submit(1, 0, 100, 5)
    eng = LockedEngine()
    eng.add_symbol(3)
    eng.submit(3, 1, 0, 100, 5)
    ref = LockedReferenceBook()
    ref.submit(1, 0, 100, 5)
    for obj in (book, eng, ref):
        if how == "book.copy" and obj is not book:
            continue
        obj.lock = threading.Lock()
        obj.tag = ["a"]
        twin = obj.copy() if how == "book.copy" else twin_of(obj, how)
        assert type(twin) is type(obj) and twin.tag == obj.tag and len(twin) == len(obj)
        assert twin.lock is not obj.lock and isinstance(twin.lock, type(obj.lock))
        assert twin.restored == 1 and not hasattr(obj, "restored")


class CountedBook(mc.OrderBook):
    states = []

    def __setstate__(self, state):
        CountedBook.states.append(state)
        self.__dict__.update(state)


@pytest.mark.parametrize("how", HOWS + ("book.copy",))
def test_subclass_copy_sets_its_state_once_deep_copy_deeply(how):
    # copy.deepcopy made a shallow copy first, attributes included, then set the deep-copied
    # ones over them: a __setstate__ ran twice (once with the original's very objects)
    book = CountedBook()
    book.tag = ["a"]
    book.submit(1, 0, 100, 5)
    CountedBook.states.clear()
    twin = book.copy() if how == "book.copy" else twin_of(book, how)
    assert len(CountedBook.states) == 1 and twin.tag == ["a"]
    assert (twin.tag is book.tag) == (how in ("copy", "book.copy"))


# ---- across processes ----

def _continue_in_child(book_blob: bytes, eng_blob: bytes, book_cmds, eng_cmds):
    book, eng = pickle.loads(book_blob), pickle.loads(eng_blob)
    book_events = run_python_calls(book, book_cmds)
    for row in eng_cmds.tolist():
        apply_engine_command(eng, row)
    book.check_invariants()
    eng.check_invariants()
    return book.state_hash(), book_events.tobytes(), eng.state_hash(), eng.events().tobytes()


def test_pickled_book_and_engine_continue_identically_in_a_spawned_process():
    from test_capi import random_commands

    cmds = random_commands(1200, 11)
    eng_cmds = random_commands(1200, 12, n_symbols=3)
    book = mc.OrderBook(mc.STP.CANCEL_TAKER)
    run_python_calls(book, cmds[:600], drain=False)       # events left pending
    eng = make_engine(3)
    for row in eng_cmds[:600].tolist():
        apply_engine_command(eng, row)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        child = pool.apply_async(_continue_in_child, (pickle.dumps(book), pickle.dumps(eng),
                                                      cmds[600:], eng_cmds[600:])).get(300)
    book_events = run_python_calls(book, cmds[600:])
    for row in eng_cmds[600:].tolist():
        apply_engine_command(eng, row)
    assert child[0] == book.state_hash()
    assert_events_equal(np.frombuffer(child[1], EVENT_DTYPE), book_events,
                        labels=("child", "parent"))
    assert child[2] == eng.state_hash()
    assert_events_equal(np.frombuffer(child[3], EVENT_DTYPE), eng.events(),
                        labels=("child", "parent"))


# ---- the other public classes ----

def test_reference_book_copies_are_independent_and_keep_events():
    ref = mc.ReferenceBook()
    ref.submit(1, 0, 100, 5)
    for how in HOWS:
        twin = twin_of(ref, how)
        assert len(twin.events()) == 1
        twin.submit(2, 1, 100, 5)
        assert len(ref) == 1 and len(twin) == 0


def _same_depth(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.depth_orders(), b.depth_orders()))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_reference_book_pickles_with_every_protocol_the_book_pickles_with(protocol):
    # the reference model's orders (a __slots__ class) could not be pickled with protocols 0
    # and 1 ("a class that defines __slots__ without defining __getstate__"), which the
    # compiled book takes
    made = []
    for cls in (mc.OrderBook, mc.ReferenceBook):
        book = cls(mc.STP.CANCEL_BOTH)
        book.submit(1, 0, 100, 5, owner=3)
        book.submit(2, 0, 100, 2, owner=4, post_only=True)
        book.submit(3, 1, 103, 7, ts_ns=9)
        twin = pickle.loads(pickle.dumps(book, protocol))
        assert type(twin) is cls and twin.stp == mc.STP.CANCEL_BOTH
        assert_events_equal(twin.events(), book.events(), labels=("twin", "original"))
        assert _same_depth(twin, book)
        for b in (book, twin):
            b.submit(4, 1, 100, 6, owner=4, ts_ns=10)
        assert_events_equal(twin.events(), book.events(), labels=("twin", "original"))
        assert [twin.get(i) for i in range(1, 5)] == [book.get(i) for i in range(1, 5)]
        made.append(twin)
    assert _same_depth(made[0], made[1])
    assert_events_equal(made[1].events(), made[0].events(), labels=("reference", "compiled"))


class SlottedReferenceBook(mc.ReferenceBook):
    __slots__ = ("tag",)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_reference_book_subclass_with_slots_pickles_with_every_protocol(protocol):
    # protocols 0 and 1 refuse a class with __slots__ whose __getstate__ is object's: a
    # slotted subclass of the reference book failed where one of OrderBook pickles
    for cls in (SlottedBook, SlottedReferenceBook):
        book = cls()
        book.tag = ["a"]
        book.submit(1, 0, 100, 5)
        twin = pickle.loads(pickle.dumps(book, protocol))
        assert type(twin) is cls and twin.tag == ["a"] and twin.get(1) == book.get(1)
        assert len(twin.events()) == 1


@pytest.mark.parametrize("exc", [
    mc.OrderRejected(mc.Reason.DUPLICATE_ORDER_ID, 42),
    mc.OrderRejected(mc.Reason.INVALID_QTY, 7, "qty must be > 0"),
    SnapshotError(3, "snapshot is truncated"),
])
def test_exceptions_cross_process_boundaries(exc):
    # a worker's exception comes back pickled: it must rebuild with its fields
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc)
    assert back.__dict__ == exc.__dict__


def test_durability_errors_pickle_with_their_location():
    from matchcore.durability import JournalError

    back = pickle.loads(pickle.dumps(JournalError("bad record", "seg-1.mcj", 4096)))
    assert (str(back), back.path, back.offset) == ("bad record", "seg-1.mcj", 4096)


def test_moldudp_packet_pickles_with_its_blocks():
    from matchcore.moldudp import build_packet, parse_packet

    pkt = parse_packet(build_packet("S1", 5, [b"abc", b"de"]))
    for how in HOWS:
        twin = twin_of(pkt, how)
        assert (twin.session, twin.seq, twin.count) == (pkt.session, pkt.seq, pkt.count)
        assert twin.messages() == [b"abc", b"de"]


def test_result_objects_pickle():
    from matchcore.durability import RecoveryReport
    from matchcore.workloads import generate

    w = pickle.loads(pickle.dumps(generate("standard", 200, seed=1)))
    np.testing.assert_array_equal(w.flow, generate("standard", 200, seed=1).flow)
    rep = RecoveryReport(path="x", replayed_commands=3)
    assert pickle.loads(pickle.dumps(rep)) == rep


def _itch_replayer():
    import matchcore.itch as itch

    r = itch.Replayer()
    r.feed(itch.generate(None, messages=500, symbols=2, seed=1))
    return r


def _dbn_replayer():
    from matchcore.feeds.dbn import DbnReplayer

    return DbnReplayer()


def _generator():
    from matchcore.itch._gen import Generator

    return Generator(100, 2, 1)


def _recorder(tmp_path):
    from matchcore.native import Recorder

    return Recorder(mc.OrderBook(), tmp_path / "s.mccmd")


def _receiver():
    from matchcore.moldudp import MoldUDP64Receiver

    return MoldUDP64Receiver(0)


def _replay_metrics():
    pytest.importorskip("prometheus_client")
    from matchcore.io.metrics import ReplayMetrics

    return ReplayMetrics()


@pytest.mark.parametrize("make, name, why", [
    (lambda tmp: _itch_replayer(), "matchcore.itch.Replayer", "decoder state"),
    (lambda tmp: _dbn_replayer(), "matchcore.feeds.dbn.DbnReplayer", "decoder state"),
    (lambda tmp: _generator(), "matchcore.itch generator", "same bytes"),
    (_recorder, "matchcore.native.Recorder", "open command file"),
    (lambda tmp: _receiver(), "matchcore.moldudp.MoldUDP64Receiver", "UDP socket"),
    (lambda tmp: _replay_metrics(), "matchcore.io.metrics.ReplayMetrics", "CollectorRegistry"),
], ids=["itch-replayer", "dbn-replayer", "itch-generator", "recorder", "moldudp-receiver",
        "replay-metrics"])
def test_live_objects_refuse_pickle_and_copy_naming_class_and_reason(tmp_path, make, name, why):
    obj = make(tmp_path)
    try:
        for fn in (pickle.dumps, copy.copy, copy.deepcopy):
            with pytest.raises(TypeError, match=f"cannot pickle or copy a {name}: .*{why}"):
                fn(obj)
    finally:
        close = getattr(obj, "close", None)
        if close is not None:
            close()


def test_replayer_books_pickle():
    r = _itch_replayer()
    for sym, book in r.books.items():
        assert pickle.loads(pickle.dumps(book)).state_hash() == book.state_hash()


@pytest.mark.parametrize("how", HOWS + ("book.copy",))
def test_replayer_book_copies_are_plain_books_that_record_events(how):
    # A replayer's books write no events (replay mode); a copy or pickle of one is a plain
    # book, which records events as its record_events says, whichever way it was made.
    r = _itch_replayer()
    book = next(iter(r.books.values()))
    twin = book.copy() if how == "book.copy" else twin_of(book, how)
    assert twin.record_events and not twin.busy and twin.handle != book.handle
    twin.submit(10**15, 0, 1, 1)
    assert len(twin.events()) == 1


def test_engine_unpickle_refuses_one_book_under_two_symbols():
    # A tampered pickle listing one book for two symbols: two slots would drive one book.
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.add_symbol(2)
    fn, args, state = eng.__reduce__()
    args = list(args)
    symbols = [list(s) for s in args[4]]
    symbols[1][4] = symbols[0][4] = mc.OrderBook()
    args[4] = [tuple(s) for s in symbols]
    with pytest.raises(ValueError, match="already belongs"):
        fn(*args)


def _engine_pickle_of_books(names, books):
    # a hand-made pickle of an engine of symbols 1, 2, ... named `names`, holding `books`
    eng = mc.Engine()
    eng.add_symbol(1)
    fn, args = eng.__reduce__()[:2]
    args = list(args)
    args[4] = [(sym, name, 1024, (1, 0, 0, 0, 0, 0, 0), book)
               for sym, (name, book) in enumerate(zip(names, books), 1)]
    return fn, args


def test_engine_unpickle_refuses_one_name_for_two_symbols_naming_both():
    # it said "symbol 2 appears twice", a symbol that appears once
    fn, args = _engine_pickle_of_books(["AAA", "AAA"], [mc.OrderBook(), mc.OrderBook()])
    with pytest.raises(ValueError, match=r"^pickled Engine: symbols 1 and 2 are both named "
                                         r"'AAA'$"):
        fn(*args)
    fn, args = _engine_pickle_of_books(["AAA", "BBB"], [mc.OrderBook(), mc.OrderBook()])
    args[4][1] = (1,) + args[4][1][1:]
    with pytest.raises(ValueError, match=r"^pickled Engine: symbol 1 appears twice$"):
        fn(*args)


def test_engine_unpickle_refuses_an_id_resting_in_two_books_naming_it_and_both_symbols():
    # it said "an order id rests in two books": neither the id nor the books, of books
    # that may hold thousands of orders
    books = [mc.OrderBook(), mc.OrderBook(), mc.OrderBook()]
    for i in range(200):
        books[0].submit(1000 + i, 0, 50 + i % 7, 1)
        books[2].submit(5000 + i, 1, 90 + i % 5, 1)
    books[2].submit(1077, 1, 99, 3)
    fn, args = _engine_pickle_of_books(["A", None, "C"], books)
    with pytest.raises(ValueError, match=r"^pickled Engine: order id 1077 rests in two books, "
                                         r"of symbols 1 and 3$"):
        fn(*args)
    # the same books with other ids load
    books = [pickle.loads(pickle.dumps(b)) for b in books]
    books[2].cancel(1077)
    fn, args = _engine_pickle_of_books(["A", None, "C"], books)
    eng = fn(*args)
    eng.check_invariants()
    assert len(eng) == 400 and eng.get(1077) == (1, 0, 50, 1)


_PENDING_OOM_SCRIPT = r"""
import copy, pickle, resource, sys
import matchcore as mc

eng = mc.Engine()
eng.add_symbol(1)
for oid in range(500_000):              # pending events: a REJECTED cancel each (32 MiB)
    eng.cancel(oid)
data = pickle.dumps(eng)
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
# room for a copy of the engine without its events, and (pickle) for the 32 MiB of their bytes
# that the unpickler reads from the data before the engine is made
room = 48 if sys.argv[1] == "pickle" else 16
resource.setrlimit(resource.RLIMIT_AS, (vm + room * 2**20, resource.RLIM_INFINITY))
try:
    {"pickle": lambda: pickle.loads(data), "deepcopy": lambda: copy.deepcopy(eng),
     "dumps": lambda: pickle.dumps(eng)}[sys.argv[1]]()
except MemoryError as ex:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
    print(ex)
else:
    raise SystemExit("no MemoryError under the limit")
assert len(eng.events()) == 500_000
"""


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_engine_copy_out_of_memory_for_its_pending_events_says_so(how):
    # the room for the original's pending events, made last: a bare MemoryError() with no
    # message, where the words say what ran out (and how the original sheds them)
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _PENDING_OOM_SCRIPT, how], capture_output=True,
                       text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == ("matchcore: out of memory for the engine's 500,000 pending "
                                "events (events() reads and drops them)"), r.stdout


def test_engine_pickle_out_of_memory_for_its_pending_events_says_so():
    # the bytes of the pending events, read under the engine's hold: a bare MemoryError()
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _PENDING_OOM_SCRIPT, "dumps"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == ("matchcore: out of memory pickling the engine's 500,000 pending "
                                "events (32,000,000 bytes; events() reads and drops them); the "
                                "engine is unchanged"), r.stdout


_BOOK_OOM_SCRIPT = r"""
import copy, json, pickle, resource
import numpy as np
import matchcore as mc

n = 1_000_000
cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
cmds["order_id"] = np.arange(1, n + 1)
cmds["side"] = np.arange(n) % 2
cmds["price"] = np.where(cmds["side"] == 0, 1000, 2000) + np.arange(n) % 500
cmds["qty"] = 1
book = mc.OrderBook(capacity=2**22, record_events=False)
book.process(cmds)
del cmds
before = (book.state_hash(), len(book))
facts = {"capacity": book.__reduce__()[1][3],       # the order capacity (pools) it keeps
         "orders": len(book), "snapshot": len(book.snapshot())}
empty = pickle.dumps(mc.OrderBook(capacity=2**22))
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
# room for neither the copy's pools nor the snapshot's 40 MB
resource.setrlimit(resource.RLIMIT_AS, (vm + 16 * 2**20, resource.RLIM_INFINITY))
out = {}
for name, call in [("copy", book.copy), ("deepcopy", lambda: copy.deepcopy(book)),
                   ("snapshot", book.snapshot), ("pickle", lambda: pickle.dumps(book)),
                   ("unpickle", lambda: pickle.loads(empty))]:
    try:
        call()
    except MemoryError as ex:
        out[name] = str(ex)
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)
book.check_invariants()
assert (book.state_hash(), len(book)) == before
book.submit(n + 1, 0, 1, 1)            # usable: not left busy by a refused call
print(json.dumps({"facts": facts, "errors": out}))
"""


def test_book_copy_pickle_snapshot_out_of_memory_say_what_ran_out():
    # copies, pickles and snapshots are sized by the order capacity or the resting orders,
    # which a user picks: each ran out with a bare MemoryError() naming neither
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _BOOK_OOM_SCRIPT], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads(r.stdout)
    cap, orders, size = (got["facts"][k] for k in ("capacity", "orders", "snapshot"))
    copied = (f"matchcore: out of memory copying an OrderBook of order capacity {cap:,} "
              f"({orders:,} resting orders, 0 pending events); the book is unchanged")
    assert got["errors"] == {
        "copy": copied,
        "deepcopy": copied,
        "snapshot": f"matchcore: out of memory for a snapshot of {size:,} bytes ({orders:,} "
                    f"resting orders); the book is unchanged",
        "pickle": f"matchcore: out of memory pickling an OrderBook: its state takes {size:,} "
                  f"bytes; the book is unchanged",
        "unpickle": "matchcore: out of memory unpickling an OrderBook of order capacity "
                    "4,194,304 (its pools and id index are allocated whole)",
    }


def test_engine_pickle_stores_each_book_once():
    # The engine's pickle carries its books' state as read under its hold and the book objects
    # (for identity); a book still in that state gives the pickler the same objects, so the
    # pickle holds each book once.
    eng = make_engine(3, limits=False, record_events=False)
    for i in range(3000):
        side = i & 1
        eng.submit(i % 3, i + 1, side, 1000 + (100 + i % 50) * (1 if side else -1), 5)
    assert len(eng) == 3000
    books = sum(len(eng.book(s).snapshot()) for s in eng.symbols)
    for protocol in PROTOCOLS:
        assert len(pickle.dumps(eng, protocol)) < books * 1.1 + 4096


def test_engine_pickle_of_format_1_still_loads():
    # format 1 (before the books' state travelled with the engine): symbols without it
    eng = make_engine(2)
    eng.submit(1, 7, 0, 100, 4)
    fn, args = eng.__reduce__()[:2]
    old = list(pickle.loads(pickle.dumps(args)))         # its books as standalone copies
    old[0] = 1
    old[4] = [entry[:5] for entry in old[4]]
    twin = fn(*old)
    assert twin.state_hash() == eng.state_hash() and twin.get(7) == eng.get(7)
    twin.check_invariants()


def _state_bytes_held_by(book) -> int:
    # bytes objects the book's own attributes keep alive (two levels down)
    import gc
    total = 0
    for x in gc.get_referents(book):
        for y in [x] + (list(gc.get_referents(x)) if isinstance(x, tuple) else []):
            if isinstance(y, bytes):
                total += len(y)
    return total


@pytest.mark.parametrize("how", ["book_first", "reduce_only"])
def test_engine_pickle_state_read_for_a_book_not_kept_after_pickling(how):
    # The state an Engine's pickle reads for each book (under its hold) goes to the book's own
    # pickle only while that pickling runs: a book the pickler had already stored, or an
    # __reduce__ whose result is dropped, leave no copy of the book's state on the book.
    eng = mc.Engine()
    book = eng.add_symbol(1)
    for i in range(1, 3001):
        eng.submit(1, i, 1, 100 + i % 50, 1)
    eng.events()
    if how == "book_first":
        pickle.dumps((book, eng))
    else:
        eng.__reduce__()
    assert _state_bytes_held_by(book) == 0
    twin = pickle.loads(pickle.dumps((book, eng)))
    assert twin[1].book(1) is twin[0] and twin[1].state_hash() == eng.state_hash()


class _Map_c(ctypes.Structure):
    _fields_ = [("tab", ctypes.c_void_p), ("mask", ctypes.c_uint64), ("shift", ctypes.c_int32),
                ("n", ctypes.c_int64)]


class _Ladder_c(ctypes.Structure):
    _fields_ = [("keys", ctypes.c_void_p), ("lv", ctypes.c_void_p), ("n", ctypes.c_int32),
                ("cap", ctypes.c_int32), ("empties", ctypes.c_int32), ("head", ctypes.c_int32),
                ("gaps", ctypes.c_int32), ("map", _Map_c)]


class _BookIndex_c(ctypes.Structure):
    """mc_book up to its id index (no Python API shows the index's size)."""
    _fields_ = [("orders", ctypes.c_void_p), ("orders_cap", ctypes.c_int32),
                ("free_order", ctypes.c_int32), ("n_orders", ctypes.c_int64),
                ("levels", ctypes.c_void_p), ("levels_cap", ctypes.c_int32),
                ("free_level", ctypes.c_int32), ("side", _Ladder_c * 2), ("index", _Map_c)]


def id_index_entries(book: mc.OrderBook) -> int:
    b = _BookIndex_c.from_address(book.raw_address)
    # the layout as the book says it is: one index entry per resting order
    assert b.n_orders == len(book) == b.index.n and b.orders_cap == orders_capacity(book)
    return b.index.mask + 1


def _fill_to_growth(book: mc.OrderBook) -> None:
    # resting bids with fresh ids until the order pool is full, then one more: the pool grows
    oid, cap = 1 << 60, orders_capacity(book)
    while len(book) <= cap:
        book.submit(oid, mc.Side.BUY, 1, 1)
        oid += 1


def test_book_copy_of_many_symbols_replay_book_grows_as_its_pickle():
    # A replay of 400+ symbols marks its books' id indexes lean (load <= 1/2, for cache room
    # among thousands of books). copy() kept the mark, pickle did not: the copy, a standalone
    # book, then grew its index 4x smaller than its pickled twin did.
    import matchcore.itch as itch

    r = itch.Replayer()
    data = itch.generate(None, messages=20_000, symbols=450, seed=4)
    n = r.feed(data)
    r.finish(data[n:])
    assert len(r.books) >= 400
    book = max(r.books.values(), key=len)
    twins = {how: twin_of(book, how) for how in HOWS}
    twins["method"] = book.copy()
    sizes = {}
    for how, twin in twins.items():
        assert orders_capacity(twin) == orders_capacity(book)
        _fill_to_growth(twin)
        assert orders_capacity(twin) == 2 * orders_capacity(book)
        twin.check_invariants()
        sizes[how] = id_index_entries(twin)
    fresh = mc.OrderBook(capacity=orders_capacity(book))
    _fill_to_growth(fresh)
    assert sizes == {how: id_index_entries(fresh) for how in sizes}, sizes


def _crafted(obj, i, value):
    # obj's pickle with argument i of its reconstructor replaced
    fn, args = obj.__reduce__()[:2]
    args = list(args)
    args[i] = value
    return fn, tuple(args)


@pytest.mark.parametrize("i, value, exc, match", [
    (3, -5, ValueError, r"capacity must be in \[0, 2\*\*30\]"),
    (3, 2**40, ValueError, r"capacity must be in \[0, 2\*\*30\]"),
    (3, 2.5, TypeError, "capacity"),
    (2, 7, TypeError, "record_events must be True or False"),
    (2, "no", TypeError, "record_events must be True or False"),
])
def test_book_unpickle_refuses_what_the_constructor_refuses(i, value, exc, match):
    # a hand-made pickle of a book with capacity -5 or record_events=7 was accepted (7 read as
    # True through a bint, a negative capacity grew nothing), values OrderBook() refuses
    book = mc.OrderBook()
    book.submit(1, mc.Side.BUY, 100, 5)
    fn, args = _crafted(book, i, value)
    with pytest.raises(exc, match=match):
        fn(*args)
    fn, args = book.__reduce__()[:2]
    assert fn(*args).state_hash() == book.state_hash()


@pytest.mark.parametrize("value", [7, "no", None])
def test_engine_unpickle_record_events_refuses_what_the_constructor_refuses(value):
    eng = mc.Engine()
    eng.add_symbol(1)
    fn, args = _crafted(eng, 2, value)
    with pytest.raises(TypeError, match="record_events must be True or False"):
        fn(*args)


def test_engine_unpickle_symbol_capacity_refuses_what_add_symbol_refuses():
    eng = mc.Engine()
    eng.add_symbol(1)
    fn, args = eng.__reduce__()[:2]
    args = list(args)
    entry = list(args[4][0])
    entry[2] = -5
    args[4] = [tuple(entry)]
    with pytest.raises(ValueError, match=r"capacity must be in \[0, 2\*\*30\]"):
        fn(*args)


@pytest.mark.parametrize("name, exc, match", [
    (b"AAA", TypeError, "symbol name must be a str or None, got bytes b'AAA'"),
    (5, TypeError, "symbol name must be a str or None, got int 5"),
    ("x" * 4097, ValueError, r"symbol name longer than 4096 bytes \(UTF-8\)"),
    # a lone surrogate: the codec's UnicodeEncodeError, not a word of which argument or why
    ("A\udc80", ValueError, r"symbol name 'A\\udc80' cannot be encoded as UTF-8 \(surrogates "
                            r"not allowed at index 1\): names must be encodable as UTF-8"),
])
def test_engine_unpickle_symbol_name_refuses_what_add_symbol_refuses(name, exc, match):
    # a hand-made pickle of an engine took any name: b"AAA" came back named "b'AAA'" and 5 as
    # "5" (names no call can give), and a name beyond 4096 bytes was kept, so that the
    # engine's snapshot file was written and then refused by load_snapshot
    eng = mc.Engine()
    eng.add_symbol(1, "AAA")
    before = eng.state_hash()
    fn, args = eng.__reduce__()[:2]
    args = list(args)
    entry = list(args[4][0])
    entry[1] = name
    args[4] = [tuple(entry)]
    with pytest.raises(exc, match=match):
        eng.add_symbol(2, name)
    with pytest.raises(exc, match=match):
        fn(*args)
    assert eng.symbols == {1: "AAA"} and eng.state_hash() == before
    twin = pickle.loads(pickle.dumps(eng))
    assert twin.symbols == {1: "AAA"} and twin.state_hash() == eng.state_hash()


@pytest.mark.parametrize("limits", [(5, 0, 0, 0, 0, 7), (5, 0, 0, 0, 0, 7, 1000, 9)])
def test_engine_unpickle_refuses_a_symbol_with_another_count_of_limits(limits):
    # the seven limits were read with zip(): a symbol's tuple of six came back without its
    # max_notional (no limit, silently), and one of eight lost its last value unseen
    eng = mc.Engine()
    eng.add_symbol(1, tick=5, max_qty=7, max_notional=1000)
    fn, args = eng.__reduce__()[:2]
    args = list(args)
    entry = list(args[4][0])
    assert entry[3] == (5, 0, 0, 0, 0, 7, 1000)
    entry[3] = limits
    entry[4:] = [mc.OrderBook(), None]     # an empty book, as unpickled without its state
    args[4] = [tuple(entry)]
    with pytest.raises(SnapshotError, match=f"symbol 1 holds {len(limits)} limits, not 7"):
        fn(*args)
    assert pickle.loads(pickle.dumps(eng)).limits(1) == eng.limits(1)


@pytest.mark.parametrize("how", HOWS + ("book.copy",))
def test_book_and_engine_are_weakly_referenceable_and_copy_as_before(how):
    # weakref.ref(book) raised TypeError, where a Python subclass's objects could be referenced
    import gc
    import weakref
    book = mc.OrderBook()
    book.submit(1, 0, 100, 5)
    eng = mc.Engine()
    held = eng.add_symbol(3, "C")
    eng.submit(3, 2, 1, 100, 2)
    for obj in (book, eng, held):
        ref = weakref.ref(obj)
        assert ref() is obj
        if how == "book.copy" and obj is eng:
            continue
        twin = obj.copy() if how == "book.copy" else twin_of(obj, how)
        assert type(twin) is type(obj) and twin.state_hash() == obj.state_hash()
        assert weakref.ref(twin)() is twin and ref() is obj
    proxy = weakref.proxy(book)
    assert len(proxy) == 1
    refs = [weakref.ref(o) for o in (book, eng)]
    del book, eng, held, obj, proxy, twin
    gc.collect()
    assert [r() for r in refs] == [None, None]


class OnePerDeskEngine(mc.Engine):
    # a __new__ that hands out one engine per desk: copying or unpickling one gets it back
    desks: dict = {}

    def __new__(cls, desk):
        if desk in cls.desks:
            return cls.desks[desk]
        self = mc.Engine.__new__(cls)
        self.desk = desk
        cls.desks[desk] = self
        return self

    def __init__(self, desk):
        super().__init__()

    def __getnewargs__(self):
        return (self.desk,)


@pytest.mark.parametrize("how", HOWS)
def test_engine_subclass_new_returning_an_engine_in_use_refused_naming_new(how):
    # The engine __new__ gave back was set up as if by __init__: refused in __init__'s words
    # ("OnePerDeskEngine.__init__(): the engine is already in use"), a call never made.
    eng = OnePerDeskEngine(f"rates {how}")      # (a desk of its own: desks outlive a test)
    eng.add_symbol(1, "ONE")
    eng.submit(1, 1, 0, 100, 5)
    state = eng.state_hash()
    with pytest.raises(ValueError, match=r"OnePerDeskEngine\.__new__ returned an engine "
                                         r"already in use"):
        twin_of(eng, how)
    assert eng.state_hash() == state and eng.symbols == {1: "ONE"} and eng.get(1) == (1, 0, 100, 5)
    assert eng.submit(1, 2, 1, 100, 2) == 2
    eng.check_invariants()
