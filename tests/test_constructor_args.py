"""The constructors of the compiled classes (OrderBook, Engine, Replayer, DbnReplayer): a wrong
argument is refused in Python's words naming the class, not Cython's ``__cinit__``, and
``inspect.signature`` / ``help`` show the parameters the constructor binds.

Each constructor binds ``*args, **kwargs`` with a ``_Params`` list and carries the same list as
the text signature at the head of its docstring; these tests hold the two equal, so that the
signature a user reads is the one that is enforced."""
from __future__ import annotations

import inspect
import pickle

import pytest

from matchcore import STP, Engine, OrderBook
from matchcore._core import _BOOK_PARAMS
from matchcore._engine import _ENGINE_PARAMS
from matchcore.feeds._dbn import _DBN_PARAMS, DbnReplayer
from matchcore.itch import Replayer
from matchcore.itch._replay import _REPLAYER_PARAMS

CLASSES = [
    pytest.param(OrderBook, _BOOK_PARAMS, id="OrderBook"),
    pytest.param(Engine, _ENGINE_PARAMS, id="Engine"),
    pytest.param(Replayer, _REPLAYER_PARAMS, id="Replayer"),
    pytest.param(DbnReplayer, _DBN_PARAMS, id="DbnReplayer"),
]


@pytest.mark.parametrize("cls, params", CLASSES)
def test_signature_is_the_bound_parameter_list(cls, params):
    sig = inspect.signature(cls)
    shown = [(None if p.kind is p.VAR_KEYWORD else p.name, p.kind.name,
              None if p.kind is p.VAR_KEYWORD else p.default)
             for p in sig.parameters.values()]
    assert shown == params.parameters()
    assert params.name == cls.__name__
    # help() and the docstring: the signature is not repeated in the text below it
    assert not cls.__doc__.lstrip().startswith(cls.__name__ + "(")
    assert inspect.getdoc(cls).split("\n")[0].strip()


@pytest.mark.parametrize("cls, params", CLASSES)
def test_too_many_positional_arguments_name_the_class(cls, params):
    npos = sum(kind == "POSITIONAL_OR_KEYWORD" for _, kind, _ in params.parameters())
    with pytest.raises(TypeError) as e:
        cls(*([None] * (npos + 1)))
    assert str(e.value) == (f"{cls.__name__}() takes from 0 to {npos} positional arguments "
                            f"but {npos + 1} were given")


@pytest.mark.parametrize("cls, params", CLASSES)
def test_an_argument_given_twice_names_the_class(cls, params):
    first = params.parameters()[0][0]
    default = params.parameters()[0][2]
    with pytest.raises(TypeError) as e:
        cls(default, **{first: default})
    assert str(e.value) == f"{cls.__name__}() got multiple values for argument {first!r}"


@pytest.mark.parametrize("cls", [OrderBook, Replayer, DbnReplayer])
def test_an_unknown_keyword_names_the_class(cls):
    with pytest.raises(TypeError) as e:
        cls(bogus=1)
    assert str(e.value) == f"{cls.__name__}() got an unexpected keyword argument 'bogus'"
    assert "__cinit__" not in str(e.value)


def test_engine_other_keywords_are_journal_options():
    # **journal_options: an unknown keyword is an unknown journal option, named with the known
    with pytest.raises(TypeError, match=r"unknown journal option\(s\) \['bogus'\]; known"):
        Engine(bogus=1)
    with pytest.raises(TypeError, match=r"need journal=DIR"):
        Engine(segment_bytes=1 << 20)


def test_positional_and_keyword_give_the_same_book():
    assert OrderBook(STP.CANCEL_TAKER).stp == OrderBook(stp=STP.CANCEL_TAKER).stp \
        == STP.CANCEL_TAKER
    assert OrderBook().stp == STP.CANCEL_RESTING
    assert not OrderBook(record_events=False).record_events
    assert Engine(STP.CANCEL_BOTH).stp == Engine(stp=STP.CANCEL_BOTH).stp == STP.CANCEL_BOTH
    assert Replayer(["AAPL"]).feed(b"") == Replayer(symbols=["AAPL"]).feed(b"") == 0


def test_copy_pickle_and_from_snapshot_still_construct():
    # they make their instances through cls.__new__ with keywords, so through the same binding
    book = OrderBook(STP.CANCEL_TAKER, capacity=8)
    book.submit(1, 0, 100, 5)
    for twin in (book.copy(), pickle.loads(pickle.dumps(book)),
                 OrderBook.from_snapshot(book.snapshot())):
        assert twin.best_bid() == (100, 5)

    class Sub(OrderBook):
        pass

    sub = Sub(STP.CANCEL_TAKER)
    assert type(sub.copy()) is Sub and sub.copy().stp == STP.CANCEL_TAKER
    with pytest.raises(TypeError, match=r"^OrderBook\(\) got an unexpected keyword"):
        Sub(bogus=1)


# ---- Python subclasses whose __init__ takes its own arguments ----

class _DeskBook(OrderBook):
    """A subclass whose __init__ takes its own arguments and passes OrderBook's on."""

    def __init__(self, desk, *, capacity=1000, quiet=False):
        super().__init__(STP.CANCEL_TAKER, record_events=not quiet, capacity=capacity)
        self.desk = desk


class _DeskEngine(Engine):
    def __init__(self, desk, **journal):
        super().__init__(STP.NONE, record_events=False, **journal)
        self.desk = desk


def test_subclass_init_with_own_arguments_passes_orderbooks_on():
    # OrderBook.__cinit__ parsed the subclass's arguments as OrderBook's: a subclass whose
    # __init__ takes others could not be made ("invalid stp", unexpected keyword)
    book = _DeskBook("rates", capacity=10, quiet=True)
    assert (book.desk, book.stp, book.record_events) == ("rates", STP.CANCEL_TAKER, False)
    assert book.submit(1, 0, 100, 5) == 0 and book.events().shape == (0,)
    for twin in (book.copy(), pickle.loads(pickle.dumps(book))):
        assert type(twin) is _DeskBook and twin.desk == "rates"
        assert twin.stp == STP.CANCEL_TAKER and twin.record_events is False
        assert twin.state_hash() == book.state_hash()
    with pytest.raises(ValueError, match="^capacity"):
        _DeskBook("rates", capacity=-1)         # OrderBook's own checks, from super().__init__
    with pytest.raises(TypeError, match=r"^OrderBook\(\) got an unexpected keyword"):
        OrderBook("rates", tag=1)               # OrderBook itself: as before


def test_engine_subclass_init_with_own_arguments_passes_engines_on(tmp_path):
    eng = _DeskEngine("fx", journal=tmp_path / "j", fsync="never")
    assert (eng.desk, eng.stp, eng.record_events) == ("fx", STP.NONE, False)
    assert eng.journal is not None
    eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    want = eng.state_hash()
    eng.close()
    again = _DeskEngine.recover(tmp_path / "j")
    assert type(again) is _DeskEngine and again.stp == STP.NONE and again.state_hash() == want
    again.close()
    plain = _DeskEngine("fx")
    assert plain.journal is None and pickle.loads(pickle.dumps(plain)).stp == STP.NONE


def test_subclass_without_super_init_gets_a_default_book():
    class Bare(OrderBook):
        def __init__(self, desk):
            self.desk = desk

    class BareEngine(Engine):
        def __init__(self, desk):
            self.desk = desk

    book = Bare(STP.CANCEL_BOTH)        # its argument, not OrderBook's
    assert book.stp == STP.CANCEL_RESTING and book.record_events is True
    assert book.submit(1, 0, 100, 5) == 0 and book.best_bid() == (100, 5)
    eng = BareEngine(STP.NONE)
    assert eng.stp == STP.CANCEL_RESTING and eng.journal is None


def test_subclass_init_again_on_a_used_book_is_refused_unchanged():
    book = _DeskBook("rates")
    book.submit(1, 0, 100, 5)
    before = book.state_hash()
    with pytest.raises(ValueError, match=r"^_DeskBook.__init__\(\): the book is already in use"):
        book.__init__("credit")
    assert book.state_hash() == before and book.desk == "rates" and len(book) == 1
    book.cancel(1)
    book.events()
    with pytest.raises(ValueError, match="holds or has held orders"):
        book.__init__("credit")       # its next arrival number would start again
    assert book.snapshot() != _DeskBook("rates").snapshot()
    eng = _DeskEngine("fx")
    eng.add_symbol(1)
    with pytest.raises(ValueError, match=r"^_DeskEngine.__init__\(\): the engine is already"):
        eng.__init__("rates")
    assert list(eng.symbols) == [1] and eng.desk == "fx"


def test_plain_init_again_checks_its_arguments_and_refuses_a_used_book_unchanged(tmp_path):
    # OrderBook.__init__ / Engine.__init__ called again on a plain (not subclassed) object
    # returned at once: invalid arguments passed without a word, valid ones were dropped, and
    # a used book or engine was not refused as the README says. A second call now does what a
    # subclass's does: the constructor's checks, then the object set up anew while unused,
    # refused once in use, unchanged either way on refusal.
    book = OrderBook(STP.CANCEL_BOTH, capacity=16)
    with pytest.raises(ValueError, match="^unknown self-trade prevention mode 99"):
        book.__init__(stp=99)
    with pytest.raises(ValueError, match="^capacity"):
        book.__init__(capacity=-1)
    with pytest.raises(TypeError, match=r"^OrderBook\(\) got an unexpected keyword"):
        book.__init__(bogus=1)
    assert book.stp == STP.CANCEL_BOTH and book.record_events is True
    book.__init__(STP.CANCEL_TAKER, record_events=False)        # unused: set up anew
    assert book.stp == STP.CANCEL_TAKER and book.record_events is False
    book.submit(1, 0, 100, 5)
    before = book.snapshot()
    with pytest.raises(ValueError, match=r"^OrderBook.__init__\(\): the book is already in use"):
        book.__init__()
    assert book.snapshot() == before and book.stp == STP.CANCEL_TAKER
    # made without __init__ (a copy, a pickle, from_snapshot): its first __init__ is a second
    for twin in (book.copy(), pickle.loads(pickle.dumps(book)),
                 OrderBook.from_snapshot(before)):
        with pytest.raises(ValueError, match="already in use"):
            twin.__init__()
        assert twin.snapshot() == before
    fresh = OrderBook.from_snapshot(OrderBook().snapshot())
    fresh.__init__(STP.NONE)
    assert fresh.stp == STP.NONE

    eng = Engine(STP.CANCEL_BOTH)
    with pytest.raises(ValueError, match="^unknown self-trade prevention mode 99"):
        eng.__init__(stp=99)
    with pytest.raises(TypeError, match="need journal=DIR"):
        eng.__init__(fsync="never")
    assert eng.stp == STP.CANCEL_BOTH and eng.journal is None
    eng.__init__(STP.NONE, record_events=False)                 # unused: set up anew
    assert eng.stp == STP.NONE and eng.record_events is False
    eng.add_symbol(1)
    with pytest.raises(ValueError, match=r"^Engine.__init__\(\): the engine is already in use"):
        eng.__init__(journal=tmp_path / "j")
    assert list(eng.symbols) == [1] and eng.journal is None and not (tmp_path / "j").exists()
    for twin in (pickle.loads(pickle.dumps(eng)),):
        with pytest.raises(ValueError, match="already in use"):
            twin.__init__()
        assert list(twin.symbols) == [1] and twin.stp == STP.NONE


def test_plain_new_then_init_takes_the_init_arguments():
    # construction in its two steps, OrderBook.__new__(OrderBook) then __init__(...), as a
    # framework may take them: __new__ made a default book and __init__'s arguments were
    # dropped, bad ones included
    book = OrderBook.__new__(OrderBook)
    book.__init__(STP.CANCEL_TAKER, record_events=False, capacity=8)
    assert book.stp == STP.CANCEL_TAKER and book.record_events is False
    with pytest.raises(ValueError, match="^unknown self-trade prevention mode 99"):
        OrderBook.__new__(OrderBook).__init__(99)
    eng = Engine.__new__(Engine)
    eng.__init__(STP.NONE, record_events=False)
    assert eng.stp == STP.NONE and eng.record_events is False
    with pytest.raises(TypeError, match="need journal=DIR"):
        Engine.__new__(Engine).__init__(fsync="never")
    # the arguments given to __new__ are the construction's: its __init__ call has nothing to do
    taken = OrderBook.__new__(OrderBook, STP.CANCEL_BOTH)
    taken.__init__(STP.CANCEL_BOTH)
    assert taken.stp == STP.CANCEL_BOTH


def _child_stdout(code):
    """What a fresh interpreter running `code` prints, once it has exited cleanly (a crash of
    the book there leaves this process standing)."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_subclass_book_remade_by_an_argument_mid_call_takes_the_order_in_the_new_book():
    # An argument's __index__ runs while the call converts its arguments; one that calls
    # OrderBook.__init__ on the still unused subclass book remakes it, freeing the struct the
    # call had already read: the order went into freed memory (a crash). The call reads the
    # book once its arguments are converted, so the order lands in the remade book. Each
    # entry method in a child process: before the fix it crashed.
    code = (
        "import matchcore as mc\n"
        "class Book(mc.OrderBook):\n"
        "    pass\n"
        "class Remakes:\n"
        "    def __init__(self, book, value):\n"
        "        self.book, self.value = book, value\n"
        "    def __index__(self):\n"
        "        mc.OrderBook.__init__(self.book, mc.STP.CANCEL_TAKER, capacity=64)\n"
        "        return self.value\n"
        "calls = {\n"
        "    'submit': lambda b: b.submit(1, 0, Remakes(b, 100), 5),\n"
        "    'submit_market': lambda b: b.submit_market(Remakes(b, 1), 0, 5),\n"
        "    'cancel': lambda b: b.cancel(Remakes(b, 1), ts_ns=7),\n"
        "    'modify': lambda b: b.modify(1, Remakes(b, 3), ts_ns=7),\n"
        "    'place': lambda b: b.place(1, 0, 100, Remakes(b, 5)),\n"
        "    'reduce': lambda b: b.reduce(1, Remakes(b, 2), ts_ns=7),\n"
        "}\n"
        "for name, call in calls.items():\n"
        "    book = Book()\n"
        "    for _ in range(200):\n"
        "        Book()          # books made and freed around it, reusing the freed memory\n"
        "    result = call(book)\n"
        "    book.check_invariants()\n"
        "    print(name, result, book.stp.name, len(book), book.best_bid(),\n"
        "          [int(k) for k in book.events()['kind']])\n")
    out = _child_stdout(code)
    assert out.splitlines() == [
        "submit 0 CANCEL_TAKER 1 (100, 5) [0]",
        "submit_market 0 CANCEL_TAKER 0 None [0, 3]",
        "cancel 0 CANCEL_TAKER 0 None [4]",
        "modify False CANCEL_TAKER 0 None [4]",
        "place None CANCEL_TAKER 1 (100, 5) [0]",
        "reduce 0 CANCEL_TAKER 0 None [4]",
    ], out


def test_book_of_a_capacity_memory_cannot_hold_says_so_naming_it():
    # a capacity inside [0, 2**30] that this process cannot allocate: the MemoryError names
    # the capacity (it was a bare MemoryError() with no message)
    code = (
        "import resource, matchcore as mc\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "try:\n"
        "    mc.OrderBook(capacity=2**30)\n"
        "except MemoryError as e:\n"
        "    print('MemoryError:', e)\n")
    out = _child_stdout(code)
    assert out.startswith("MemoryError: ") and "capacity 1,073,741,824" in out, out


# ---- the replayers: Python subclasses whose __init__ takes its own arguments ----

class _DeskReplayer(Replayer):
    def __init__(self, desk, *, symbols=None, **options):
        super().__init__(symbols, record_l2=True, **options)
        self.desk = desk


class _DeskDbnReplayer(DbnReplayer):
    def __init__(self, desk, **options):
        super().__init__({7: "ES"}, max_books=3, **options)
        self.desk = desk


def test_replayer_subclass_init_with_own_arguments_passes_replayers_on():
    # Replayer.__cinit__ / DbnReplayer.__cinit__ parsed the subclass's arguments as their own:
    # a subclass whose __init__ takes others could not be made ("symbols is an iterable of
    # names or numbers, not a single str", "names is a mapping")
    import matchcore.itch as itch
    data = itch.generate(None, messages=2000, symbols=3, seed=1)
    r = _DeskReplayer("eq", symbols=["AAPL"])
    assert r.desk == "eq" and r.feed(data) == len(data)
    plain = Replayer(["AAPL"], record_l2=True)
    plain.feed(data)
    assert list(r.books) == [1] == list(plain.books) and r.symbols[1] == "AAPL"
    assert r.l2().shape == plain.l2().shape and len(r.l2()) > 0
    with pytest.raises(ValueError, match="^symbols"):
        _DeskReplayer("eq", symbols=[])             # Replayer's own checks, via super().__init__
    with pytest.raises(TypeError, match=r"^Replayer\(\) got an unexpected keyword"):
        _DeskReplayer("eq", bogus=1)
    with pytest.raises(TypeError, match="not a single str"):
        Replayer("eq")                              # Replayer itself: as before
    d = _DeskDbnReplayer("fut", until_ns=5)
    assert d.desk == "fut" and d.symbols == {} and d.stats["records"] == 0
    assert d.feed(b"\x00" * 64) == 63               # max_books=3, names= taken
    with pytest.raises(ValueError, match="^max_books"):
        DbnReplayer(max_books=0)
    with pytest.raises(ValueError, match="until_ns"):
        _DeskDbnReplayer("fut", until_ns=-1)
    with pytest.raises(TypeError, match="names is a mapping"):
        DbnReplayer("fut")
    for made in (r, d):
        with pytest.raises(TypeError, match="^cannot pickle or copy"):
            pickle.dumps(made)


def test_replayer_subclass_without_super_init_gets_a_default_replayer():
    class Bare(Replayer):
        def __init__(self, desk):
            self.desk = desk

    class BareDbn(DbnReplayer):
        def __init__(self, desk):
            self.desk = desk

    r = Bare("eq")                      # its argument, not Replayer's
    import matchcore.itch as itch
    data = itch.generate(None, messages=2000, symbols=3, seed=1)
    assert r.feed(data) == len(data) and len(r.symbols) == 3
    assert BareDbn("fut").symbols == {}


def test_replayer_subclass_init_again_on_a_used_replayer_is_refused_unchanged():
    import matchcore.itch as itch
    data = itch.generate(None, messages=2000, symbols=3, seed=1)
    r = _DeskReplayer("eq")
    r.__init__("rates", symbols=["MSFT"])       # nothing fed yet: set up anew
    assert r.desk == "rates"
    r.feed(data[:100])
    with pytest.raises(ValueError, match=r"^_DeskReplayer.__init__\(\): the replayer is "
                                         r"already in use"):
        r.__init__("credit")
    assert r.desk == "rates"
    r.feed(data[r.stats["bytes_consumed"]:])
    assert [r.symbols[k] for k in r.books] == ["MSFT"]
    done = _DeskReplayer("eq")
    done.finish(b"")
    with pytest.raises(ValueError, match="already in use"):
        done.__init__("eq")
    d = _DeskDbnReplayer("fut")
    d.feed(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"^_DeskDbnReplayer.__init__\(\): the replayer is "
                                         r"already in use"):
        d.__init__("fut")
    assert d.stats["bytes_consumed"] == 63 and d.desk == "fut"


def _mbo(instrument_id, ts, order_id, price, size, action=b"A", side=b"B"):
    # one DBN MBO record (rtype 0xA0, 14 words), F_LAST set
    import struct
    return struct.pack("<BBHIQQqIBBccQiI", 14, 0xA0, 1, instrument_id, ts, order_id, price,
                       size, 0x80, 0, action, side, ts, 0, 0)


def test_plain_replayer_init_again_checks_its_arguments_and_refuses_a_used_one_unchanged():
    # Replayer.__init__ / DbnReplayer.__init__ called again on a plain (not subclassed)
    # replayer returned at once: invalid arguments passed without a word, valid ones were
    # dropped, and a replayer in use was not refused. A second call now does what a
    # subclass's does, as OrderBook's and Engine's do.
    import matchcore.itch as itch
    data = itch.generate(None, messages=2000, symbols=3, seed=1)
    r = Replayer(["AAPL"])
    with pytest.raises(TypeError, match="not a single str"):
        r.__init__("str")
    with pytest.raises(ValueError, match="^symbols"):
        r.__init__([])
    with pytest.raises(TypeError, match=r"^Replayer\(\) got an unexpected keyword"):
        r.__init__(bogus=1)
    r.__init__(["MSFT"], record_l2=True)        # nothing fed yet: set up anew
    assert r.feed(data[:100]) > 0
    with pytest.raises(ValueError, match=r"^Replayer.__init__\(\): the replayer is already in "
                                         r"use"):
        r.__init__(["AAPL"])
    r.feed(data[r.stats["bytes_consumed"]:])
    assert [r.symbols[k] for k in r.books] == ["MSFT"] and len(r.l2()) > 0
    done = Replayer()
    done.finish(b"")
    with pytest.raises(ValueError, match="already in use"):
        done.__init__()
    # construction in two steps takes __init__'s arguments
    two = Replayer.__new__(Replayer)
    two.__init__(["MSFT"])
    two.feed(data)
    assert [two.symbols[k] for k in two.books] == ["MSFT"]
    with pytest.raises(ValueError, match="^symbols"):
        Replayer.__new__(Replayer).__init__([])

    recs = _mbo(1001, 10, 1, 100, 5) + _mbo(1002, 11, 2, 200, 5)
    d = DbnReplayer()
    with pytest.raises(ValueError, match="^max_books"):
        d.__init__(max_books=0)
    with pytest.raises(TypeError, match="names is a mapping"):
        d.__init__("fut")
    d.__init__({1002: "ES"}, ["ES"])             # nothing fed yet: set up anew
    assert d.feed(recs) == len(recs)
    assert [d.symbols[k] for k in d.books] == ["ES"]
    with pytest.raises(ValueError, match=r"^DbnReplayer.__init__\(\): the replayer is already "
                                         r"in use"):
        d.__init__()
    assert [d.symbols[k] for k in d.books] == ["ES"]
    assert d.stats["bytes_consumed"] == len(recs)
    two = DbnReplayer.__new__(DbnReplayer)
    two.__init__(symbols=[1001])
    two.feed(recs)
    assert [two.instruments[k] for k in two.books] == [1001]
    with pytest.raises(ValueError, match="^max_books"):
        DbnReplayer.__new__(DbnReplayer).__init__(max_books=0)


def test_init_again_on_a_book_an_open_recorder_holds_is_refused_unchanged(tmp_path):
    # An unused book held by a native.Recorder was made anew by a second __init__: another
    # STP mode than the journal's header names, and the Recorder's hold on the C table dropped
    # with the old struct. The session then traded (STP NONE) where its journal replays a
    # self-trade cancel (the header's CANCEL_RESTING).
    from matchcore.native import Recorder, replay_commands

    path = tmp_path / "s.mccmd"
    book = OrderBook()
    rec = Recorder(book, path)
    with pytest.raises(ValueError, match=r"^OrderBook.__init__\(\): the book is journaled by "
                                         r"an open Recorder"):
        book.__init__(STP.NONE)
    assert book.stp == STP.CANCEL_RESTING and book.record_events is True
    rec.submit(1, 1, 100, 5, owner=7)
    rec.submit(2, 0, 100, 5, owner=7)
    live = book.events()
    rec.close()
    assert replay_commands(path).tolist() == live.tolist()
    # closed, the Recorder holds it no more: an unused book is set up anew again
    spare = OrderBook()
    Recorder(spare, tmp_path / "t.mccmd").close()
    spare.__init__(STP.NONE)
    assert spare.stp == STP.NONE
