"""The README's Workloads paragraph against the generators: which workloads are made by applying
each command to a book (no cancel of an order that is gone), and which are drawn in NumPy."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import matchcore as mc
from matchcore import workloads as W

README = Path(__file__).resolve().parents[1] / "README.md"

# small enough for a quick run, the same generators as the defaults
SMALL = {"standard": {}, "market_maker": {}, "deep_book": {"resting": 3_000},
         "sweep": {"resting": 4_000, "levels": 400}, "wide_book": {"resting": 4_000},
         "stale_cancel": {"resting": 4_000}, "market_heavy": {"resting": 4_000}}


def _paragraph() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### Workloads")
    start = text.index("\n\n", start) + 2
    return " ".join(text[start:text.index("\n\n", start)].split())


def _named(sentence_start: str) -> list:
    para = _paragraph()
    at = para.index(sentence_start)
    return re.findall(r"`([a-z_]+)`", para[at:para.index(")", at)])


def _not_found(w) -> int:
    book = mc.OrderBook()
    book.process(w.setup)
    ev = book.process(w.flow)
    return int(np.count_nonzero((ev["kind"] == mc.EventKind.REJECTED)
                                & (ev["reason"] == mc.Reason.ORDER_NOT_FOUND)))


def test_readme_workloads_paragraph_says_which_flows_follow_a_book():
    # The paragraph said every workload was generated in compiled code against a book, so that
    # every cancel named a resting order and the tests found zero ORDER_NOT_FOUND; the touch
    # workloads are drawn in NumPy and their stale cancels are ORDER_NOT_FOUND by design
    on_book = _named("The order-flow workloads (")
    drawn = _named("The touch workloads (")
    assert sorted(on_book + drawn) == sorted(W.WORKLOADS)
    for name in on_book:
        w = W.generate(name, 3_000, seed=1, **SMALL[name])
        assert _not_found(w) == 0, name
        assert w.stats["compiled"] is bool(W._k().HAVE_NUMBA), name
    for name in drawn:
        w = W.generate(name, 3_000, seed=1, **SMALL[name])
        assert _not_found(w) == w.stats["cancels_not_found"] > 0, name
        assert w.stats["compiled"] is False, name
