"""Shared fixtures and helpers: every hand-written book test runs on the compiled OrderBook and on
the ReferenceBook; helpers build expected events and compare EVENT_DTYPE arrays field by field."""
from __future__ import annotations

import contextlib
import os
import signal
import threading

import numpy as np
import pytest

from matchcore._enums import EVENT_DTYPE, EventKind, Reason  # noqa: E402

EVENT_FIELDS = EVENT_DTYPE.names

# A run started as a background job of a non-interactive shell (`.ci/run &` in a script) inherits
# SIGINT ignored, and so would every command the Ctrl-C tests start: they would wait out their
# timeouts. A handler here is reset to the default in each child at exec, as a terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _compiled_cls():
    import matchcore

    return matchcore.OrderBook


def _reference_cls():
    import matchcore

    return matchcore.ReferenceBook


BOOK_IMPLS = {"compiled": _compiled_cls, "reference": _reference_cls}


@pytest.fixture(params=sorted(BOOK_IMPLS))
def book_cls(request):
    """The book class under test: the compiled ``OrderBook`` or the ``ReferenceBook``."""
    return BOOK_IMPLS[request.param]()


@pytest.fixture
def book(book_cls):
    """A fresh book with the default STP mode (CANCEL_RESTING) recording events."""
    return book_cls()


def ev(kind, order_id, **fields) -> dict:
    """An expected event as a dict of every EVENT_DTYPE field (unspecified fields are 0)."""
    unknown = set(fields) - set(EVENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown event fields {sorted(unknown)}")
    row = {name: 0 for name in EVENT_FIELDS}
    row.update(fields)
    row["kind"] = int(kind)
    row["order_id"] = int(order_id)
    return {k: int(v) for k, v in row.items()}


def event_dicts(arr: np.ndarray) -> list[dict]:
    """EVENT_DTYPE array -> list of plain-int dicts (readable diffs in assertion failures)."""
    assert arr.dtype == EVENT_DTYPE, f"events have dtype {arr.dtype}, expected EVENT_DTYPE"
    columns = {name: arr[name].tolist() for name in EVENT_FIELDS}
    return [{name: int(columns[name][i]) for name in EVENT_FIELDS} for i in range(len(arr))]


def describe_event(row) -> str:
    """One event as a short human-readable line."""
    d = dict(row) if isinstance(row, dict) else {n: int(row[n]) for n in EVENT_FIELDS}
    kind = EventKind(d["kind"]).name if d["kind"] in EventKind._value2member_map_ else d["kind"]
    reason = Reason(d["reason"]).name if d["reason"] in Reason._value2member_map_ else d["reason"]
    rest = ", ".join(f"{k}={d[k]}" for k in EVENT_FIELDS if k not in ("kind", "reason") and d[k])
    return f"{kind}({rest}, reason={reason})"


def assert_events_equal(actual: np.ndarray, expected: np.ndarray, *, labels=("actual", "expected"),
                        context: str = "") -> None:
    """Assert two EVENT_DTYPE arrays are equal field by field, naming the first difference."""
    a_name, b_name = labels
    assert actual.dtype == EVENT_DTYPE, f"{a_name} dtype {actual.dtype} != EVENT_DTYPE"
    assert expected.dtype == EVENT_DTYPE, f"{b_name} dtype {expected.dtype} != EVENT_DTYPE"
    n = min(len(actual), len(expected))
    for name in EVENT_FIELDS:
        diff = np.flatnonzero(actual[name][:n] != expected[name][:n])
        if diff.size:
            i = int(diff[0])
            lo = max(0, i - 3)
            raise AssertionError(
                f"{context}events differ first at index {i} (field {name!r}):\n"
                f"  {a_name}: {describe_event(actual[i])}\n"
                f"  {b_name}: {describe_event(expected[i])}\n"
                f"  preceding {a_name} events: "
                + "; ".join(describe_event(actual[j]) for j in range(lo, i)))
    if len(actual) != len(expected):
        longer, name = (actual, a_name) if len(actual) > len(expected) else (expected, b_name)
        raise AssertionError(
            f"{context}{a_name} has {len(actual)} events, {b_name} has {len(expected)}; "
            f"first extra event in {name}: {describe_event(longer[n])}")


def assert_events(book, expected: list[dict]) -> None:
    """Drain ``book.events()`` and assert it equals the expected list of ``ev(...)`` dicts."""
    assert event_dicts(book.events()) == expected


def outcome(call):
    """``("ok", result)`` of ``call()``, or ``(exception type, message)``: for comparing what
    two paths take and refuse, exception for exception."""
    try:
        return "ok", call()
    except Exception as e:        # the kind and the message are what is compared
        return type(e), str(e)


def snapshot(book, n: int = 1000):
    """Everything observable about a book's resting state, for "nothing changed" assertions."""
    bids, asks = book.depth(n)
    levels = tuple(
        (side, int(price), tuple(book.level(side, int(price))))
        for side, rows in ((0, bids), (1, asks)) for price, _ in rows)
    return (len(book), book.best_bid(), book.best_ask(), bids.tolist(), asks.tolist(), levels)


@contextlib.contextmanager
def slow_fifo_writer(fifo, first: bytes, rest: bytes, timeout: float = 20):
    """A FIFO made at ``fifo`` and written by a thread as a live feed writes it: ``first``,
    then, once the test sets the event this yields (or after ``timeout`` s), ``rest`` (a
    reader that has stopped reading is not an error). Yields ``(event, early)``: ``early`` then
    holds whether the event came before the timeout, i.e. whether the reader got through the
    first part before the rest came."""
    os.mkfifo(fifo)
    seen = threading.Event()
    early = []

    def writer():
        with open(fifo, "wb") as w:
            w.write(first)
            w.flush()
            early.append(seen.wait(timeout))
            try:
                w.write(rest)
                w.flush()
            except BrokenPipeError:
                pass

    t = threading.Thread(target=writer)
    t.start()
    try:
        yield seen, early
    finally:
        seen.set()
        t.join()


def watch_fsync_and_replace(monkeypatch) -> list:
    """Watch os.fsync and os.replace, which still do their work: the list returned gets
    ("fsync", inode, is a directory, size) and ("replace", source inode) in call order."""
    import stat

    calls = []
    fsync, replace = os.fsync, os.replace

    def watched_fsync(fd):
        s = os.fstat(fd)
        calls.append(("fsync", s.st_ino, stat.S_ISDIR(s.st_mode), s.st_size))
        return fsync(fd)

    def watched_replace(src, dst, **kw):
        calls.append(("replace", os.stat(src).st_ino))
        return replace(src, dst, **kw)

    monkeypatch.setattr(os, "fsync", watched_fsync)
    monkeypatch.setattr(os, "replace", watched_replace)
    return calls


def run_cli_in_2gib(*argv, timeout: float = 300):
    """``python -m matchcore ARGV`` in a child whose address space is 2 GiB (RLIMIT_AS): no room
    for one 2.1 GB snapshot record (``--depth 44739242``). Its CompletedProcess (text)."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run([sys.executable, "-m", "matchcore", *map(str, argv)],
                          preexec_fn=limit, capture_output=True, text=True, timeout=timeout)
