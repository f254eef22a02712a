"""The README's Semantics section against the book: the event order it gives for one call."""
from __future__ import annotations

from pathlib import Path

import pytest

import matchcore as mc

README = Path(__file__).resolve().parents[1] / "README.md"


def _first_clause() -> str:
    # the kinds the README says a call's events start with, before "then `FILL`s"
    text = " ".join(README.read_text(encoding="utf-8").split())
    start = text.index("Event order for one call:")
    return text[start:text.index("then `FILL`s", start)]


@pytest.mark.parametrize("book_cls", [mc.OrderBook, mc.ReferenceBook])
def test_readme_event_order_names_the_first_event_of_every_call_that_trades(book_cls):
    # The sentence said every call's events start with ACCEPTED (or REJECTED), then fills; a
    # modify that re-enters and trades starts with MODIFIED, which it did not name
    b = book_cls()
    b.submit(1, mc.Side.SELL, 105, 5)
    b.submit(2, mc.Side.BUY, 100, 10)
    b.events()
    b.submit(3, mc.Side.BUY, 105, 2)
    b.modify(2, 10, 105)
    b.submit(4, mc.Side.BUY, 90, 1, post_only=True)
    b.submit(5, mc.Side.SELL, 80, 1, post_only=True)
    ev = b.events()
    calls = [ev[ev["order_id"] == i] for i in (3, 2, 4, 5)]
    assert [len(c) > 0 for c in calls] == [True] * 4
    assert mc.EventKind.FILL in calls[0]["kind"] and mc.EventKind.FILL in calls[1]["kind"]
    firsts = {mc.EventKind(int(c["kind"][0])).name for c in calls}
    assert len(calls[3]) == 1          # a refusal writes its REJECTED alone
    assert firsts == {"ACCEPTED", "MODIFIED", "REJECTED"}
    clause = _first_clause()
    assert [k for k in sorted(firsts) if f"`{k}`" not in clause] == []
