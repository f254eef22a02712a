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
