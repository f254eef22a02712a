"""The docstrings' examples are code: every one in the package runs and gives the output it
shows, and every public method of the book, the engine and the reference model has one, with
its complexity (the convention of ../shared/DESIGN.md)."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import matchcore as mc
from matchcore.reference import ReferenceBook

# attributes with no docstring of their own: plain data, described in their class's docstring
_DATA_ATTRIBUTES = {"record_events", "recovery_report"}


def _modules():
    return sorted(m.name for m in pkgutil.walk_packages(mc.__path__, "matchcore.")
                  if m.name != "matchcore.__main__")


def test_docstring_examples_every_module_gives_the_output_it_shows():
    failed, attempted, without = [], 0, 0
    for name in _modules():
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            if exc.name and not exc.name.startswith("matchcore"):
                continue            # an optional extra not installed: its tests skip too
            raise
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, report=False)
        attempted += res.attempted
        without += res.attempted == 0
        if res.failed:
            failed.append((name, res.failed))
    assert failed == []
    assert attempted > 300, attempted      # the examples were found, compiled modules' too
    assert without < len(_modules())


@pytest.mark.parametrize("cls", [mc.OrderBook, mc.Engine, ReferenceBook],
                         ids=lambda c: c.__name__)
def test_docstring_public_methods_have_example_and_complexity(cls):
    missing = []
    for name, obj in sorted(vars(cls).items()):
        if name.startswith("_") or name in _DATA_ATTRIBUTES:
            continue
        doc = (obj.fget.__doc__ if isinstance(obj, property) else getattr(obj, "__doc__", "")) or ""
        if isinstance(obj, (classmethod, staticmethod)):
            doc = obj.__func__.__doc__ or ""
        if ">>>" not in doc or "O(" not in doc:
            missing.append(name)
    assert missing == []


@pytest.mark.parametrize("method", [mc.OrderBook.copy, mc.OrderBook.restore,
                                    mc.Engine.add_symbol],
                         ids=lambda m: m.__qualname__)
def test_docstring_complexity_of_calls_sized_by_capacity_names_the_capacity(method):
    # copy() duplicates and restore() rebuilds the pools and id index the book's capacity
    # sizes, and add_symbol() makes a book of the capacity it is given (the README's API
    # table): with one resting order, at capacity=4_194_304, each takes tens of ms, so a
    # docstring complexity in orders and levels alone tells a caller it is cheap
    doc = method.__doc__ or ""
    stated = doc[doc.index("O("):doc.index(">>>")]
    assert "capacity" in stated, stated
