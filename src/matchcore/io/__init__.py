"""Integrations with other systems, each in its own module and each importing its optional
dependency only when used:

* :mod:`matchcore.io.metrics` -- Prometheus metrics of a replay or an embedded book / engine
  (``pip install 'matchcore[metrics]'``).
* :mod:`matchcore.io.nats` -- trades, top of book and L2 changes per symbol over NATS JetStream,
  publisher and consumer (``pip install 'matchcore[nats]'``).
"""
from __future__ import annotations

__all__ = ["book_label", "book_labels"]


def symbol_name(name) -> str:
    """``name`` as books are named by :func:`book_labels` and a NATS subject carries it
    (:func:`matchcore.io.nats.subject_token`): without leading and trailing spaces, so that
    `` AAPL`` and ``AAPL`` are one name everywhere. O(len(name)).

    >>> symbol_name(" AAPL")
    'AAPL'
    """
    return str(name).strip()


def book_label(name: str, locate: int) -> str:
    """The label of the book of ``locate`` when its symbol ``name`` is carried by more than one
    locate: ``NAME@locateN``. Never an ITCH name (those have at most 8 characters), so it
    cannot be mistaken for another symbol's.

    >>> book_label("AAPL", 2)
    'AAPL@locate2'
    """
    return f"{name}@locate{int(locate)}"


def book_labels(names: dict, locates) -> dict:
    """``{locate: label}`` for every locate of ``locates``: its name in ``names`` (the locate
    number when it has none), or :func:`book_label` when two or more of ``locates`` carry that
    name. The one rule of the replay summary, the Prometheus ``symbol`` labels and the books a
    NATS subscriber rebuilds; names are taken by :func:`symbol_name` (`` AAPL`` and ``AAPL``
    are two books of ``AAPL``, as a subscriber reads them from their one subject).
    O(len(locates)).

    >>> book_labels({1: "AAPL", 2: "AAPL", 3: "MSFT"}, [1, 2, 3])
    {1: 'AAPL@locate1', 2: 'AAPL@locate2', 3: 'MSFT'}
    >>> book_labels({1: "AAPL", 2: "AAPL"}, [1])      # the other locate has no book
    {1: 'AAPL'}
    >>> book_labels({1: "AAPL", 2: " AAPL"}, [1, 2])
    {1: 'AAPL@locate1', 2: 'AAPL@locate2'}
    """
    locs = [int(L) for L in locates]
    # the name a subscriber reads back from the subject: " AAPL" was labelled " AAPL" here
    # and AAPL@locate2 by the subscriber, whose subject ignores the leading space
    named = {L: symbol_name(names.get(L, str(L))) for L in locs}
    count: dict = {}
    for n in named.values():
        count[n] = count.get(n, 0) + 1
    return {L: (book_label(n, L) if count[n] > 1 else n) for L, n in named.items()}
