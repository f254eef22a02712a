"""Reads made of several steps (pickling or copying an engine or a book, an engine snapshot file,
check_invariants) are atomic for other threads: while one runs, the engine (or book) is busy and
a call from another thread raises BusyError, so a copy is always a state that existed.

A writer thread submits orders on several symbols in a fixed round (symbol 0, 1, 2, then 0 again),
retrying a call that raised BusyError; every state it leaves behind has n_0 >= n_1 >= n_2 >=
n_0 - 1 resting orders (n_s on symbol s), with exactly the ids of those rounds. A copy that read
one book before a round and another after it breaks that. A tiny switch interval makes the GIL
change hands every few microseconds, so that the pure-Python readers (copy.deepcopy, the Python
pickler, a pickler with a reducer_override as cloudpickle's, the snapshot file writer) would be
interrupted between two books many times a second without the hold.
"""
from __future__ import annotations

import copy
import io
import pickle
import sys
import threading
import time

import pytest

import matchcore as mc
from matchcore import BusyError
from matchcore.durability.snapshot import load_snapshot, snapshot_bytes

N_SYMS = 3
PRICE = 100
RUN_S = 0.6


def _engine(**kw):
    eng = mc.Engine(record_events=False, **kw)
    for s in range(N_SYMS):
        eng.add_symbol(s, f"S{s}", capacity=1 << 16)
    return eng


class _Writer:
    """Submits order id k*N_SYMS + s on symbol s, round k after round k, retrying on BusyError."""

    def __init__(self, eng):
        self.eng = eng
        self.stop = threading.Event()
        self.busy = 0
        self.done = 0
        self.error = None
        self.go = threading.Event()         # set by the reader as it starts
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        try:
            self.go.wait(10)
            k = 0
            while not self.stop.is_set() and k < 5_000:
                for s in range(N_SYMS):
                    while True:
                        try:
                            self.eng.submit(s, k * N_SYMS + s, 0, PRICE, 1)
                            break
                        except BusyError:
                            self.busy += 1
                            if self.stop.is_set():
                                return
                    self.done += 1
                k += 1
        except BaseException as exc:        # anything but BusyError: reported by the test
            self.error = exc

    def __enter__(self):
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        sys.setswitchinterval(self._interval)
        if self.error is not None:
            raise AssertionError(f"the writer thread failed: {self.error!r}") from self.error


def _torn(eng) -> str | None:
    """None if ``eng`` (a copy) is a state the writer left behind, else what is wrong."""
    counts = []
    for s in range(N_SYMS):
        book = eng.book(s)
        ids = [oid for oid, _ in book.level(0, PRICE)] if len(book) else []
        n = len(ids)
        if ids != [k * N_SYMS + s for k in range(n)]:
            return f"symbol {s} holds ids {ids[:5]}..."
        counts.append(n)
    if not all(a >= b for a, b in zip(counts, counts[1:])) or counts[-1] < counts[0] - 1:
        return f"resting orders per symbol {counts}: no state the writer went through"
    return None


class _OverridePickler(pickle.Pickler):
    # as cloudpickle's: Python code runs for every object pickled
    def reducer_override(self, obj):
        return NotImplemented


def _override_dumps(obj):
    buf = io.BytesIO()
    _OverridePickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def _python_dumps(obj):
    buf = io.BytesIO()
    pickle._Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


ENGINE_COPIES = {
    "pickle": lambda eng: pickle.loads(pickle.dumps(eng)),
    "python_pickler": lambda eng: pickle.loads(_python_dumps(eng)),
    "reducer_override": lambda eng: pickle.loads(_override_dumps(eng)),
    "deepcopy": copy.deepcopy,
    "copy": copy.copy,
    "with_its_book": lambda eng: copy.deepcopy((eng.book(1), eng))[1],
    "pickled_with_its_book": lambda eng: pickle.loads(_python_dumps((eng.book(1), eng)))[1],
    "snapshot_bytes": lambda eng: load_snapshot(snapshot_bytes(eng)[0])[0],
}


def _copies_while_writing(make_copy, eng) -> tuple[int, list[str], _Writer]:
    copies, torn = 0, []
    with _Writer(eng) as w:
        end = time.monotonic() + RUN_S
        w.go.set()
        while time.monotonic() < end:
            try:
                twin = make_copy(eng)
            except BusyError:
                continue            # the writer's call held it (a plain call: never, here)
            copies += 1
            why = None if twin is None else _torn(twin)
            if why is not None:
                torn.append(why)
    return copies, torn, w


@pytest.mark.parametrize("how", list(ENGINE_COPIES))
def test_engine_copy_while_another_thread_submits_is_a_state_that_existed(how):
    eng = _engine()
    copies, torn, w = _copies_while_writing(ENGINE_COPIES[how], eng)
    assert copies > 0 and w.done > 0
    assert not torn, f"{len(torn)} of {copies} copies torn, e.g. {torn[0]}"
    # the original is whole too, and the writer only ever saw BusyError
    assert _torn(eng) is None
    eng.check_invariants()
    assert not eng.busy


def test_engine_check_invariants_while_another_thread_submits_never_misreports():
    eng = _engine()
    errors = []

    def check(e):
        try:
            e.check_invariants()
        except AssertionError as exc:
            errors.append(str(exc))
    copies, torn, w = _copies_while_writing(check, eng)
    assert copies > 0 and not errors and not torn


def test_journaled_engine_snapshot_names_the_seq_of_the_state_it_holds(tmp_path):
    # Engine.snapshot(): the journal position and the books read as one: the orders in the
    # file are exactly the commands up to its seq (3 add_symbol records first).
    eng = _engine(journal=tmp_path / "j", fsync="never")
    files = 0
    with _Writer(eng) as w:
        end = time.monotonic() + RUN_S
        w.go.set()
        while time.monotonic() < end:
            try:
                path = eng.snapshot(tmp_path / "snaps")
            except BusyError:
                # Retried at once, the call took the GIL back each time the writer released
                # it, which a journaled submit does while it holds the engine (its append runs
                # without the GIL): every try found the engine busy, for the whole run in some
                # runs. A short sleep lets the writer finish its call first.
                time.sleep(1e-4)
                continue
            twin, head = load_snapshot(path)
            files += 1
            assert _torn(twin) is None
            assert len(twin) == head["seq"] - N_SYMS, (len(twin), head["seq"])
    assert files > 0
    eng.close()


BOOK_COPIES = {
    "pickle": lambda b: pickle.loads(pickle.dumps(b)),
    "python_pickler": lambda b: pickle.loads(_python_dumps(b)),
    "deepcopy": copy.deepcopy,
    "copy": lambda b: b.copy(),
}


@pytest.mark.parametrize("how", list(BOOK_COPIES))
def test_book_copy_while_another_thread_trades_on_it_is_whole(how):
    # One book, events recorded: a copy's pending events are those of its orders (each submit
    # writes one ACCEPTED), never a count read before the orders and the records after.
    book = mc.OrderBook(capacity=1 << 16)
    stop = threading.Event()
    box = {}

    def write():
        try:
            k = 0
            while not stop.is_set() and k < 50_000:
                try:
                    book.submit(k, 0, PRICE, 1)
                    k += 1
                except BusyError:
                    pass
        except BaseException as exc:
            box["error"] = exc
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    t = threading.Thread(target=write)
    t.start()
    bad = []
    try:
        end = time.monotonic() + RUN_S
        while time.monotonic() < end:
            try:
                twin = BOOK_COPIES[how](book)
            except BusyError:
                continue
            ev = twin.events()
            if len(ev) != len(twin) or ev["order_id"].tolist() != list(range(len(twin))):
                bad.append((len(twin), len(ev)))
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(interval)
    assert "error" not in box, box
    assert not bad, bad[:3]


# ---- the same, deterministic: another thread's call made at a known point between two books ----

def _in_other_thread(call):
    """Run ``call()`` in another thread, now, to its end: what it returned or raised."""
    box = {}

    def run():
        try:
            box["out"] = call()
        except BaseException as exc:
            box["out"] = exc
    t = threading.Thread(target=run)
    t.start()
    t.join()
    return box["out"]


def _pair_process(eng, oid):
    # one engine call that changes two books: a copy holding one of them changed is torn
    import numpy as np
    cmds = np.zeros(2, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = [oid, oid + 1]
    cmds["symbol"] = [0, 1]
    cmds["price"] = PRICE
    cmds["qty"] = 1
    return lambda: eng.process(cmds)


def _paired_engine(cls=mc.Engine):
    eng = cls(record_events=False)
    for s in range(2):
        eng.add_symbol(s)
    eng.submit(0, 1, 0, PRICE, 1)
    eng.submit(1, 2, 0, PRICE, 1)
    return eng


class _MemoHook(dict):
    # copy.deepcopy's memo, asked for each object before it is copied: the hook runs when the
    # copy reaches the engine's second book
    def __init__(self, book, call):
        super().__init__()
        self.book, self.call, self.outcome = book, call, "not reached"

    def get(self, key, default=None):
        if key == id(self.book) and self.outcome == "not reached":
            self.outcome = _in_other_thread(self.call)
        return super().get(key, default)


def test_engine_deepcopy_refuses_a_call_between_its_books():
    eng = _paired_engine()
    before = eng.state_hash()
    memo = _MemoHook(eng.book(1), _pair_process(eng, 10))
    twin = copy.deepcopy(eng, memo)
    assert isinstance(memo.outcome, BusyError), memo.outcome
    assert "a read in several steps" in str(memo.outcome)
    assert twin.state_hash() == eng.state_hash() == before
    twin.check_invariants()


def test_engine_pickle_is_the_state_it_started_from_whatever_the_pickler_runs():
    # a pickler running Python code for every object (as cloudpickle's reducer_override): a
    # call made when it reaches the second book changes nothing in the pickle, read before
    eng = _paired_engine()
    before = eng.state_hash()
    outcomes = []

    class Hooked(pickle.Pickler):
        def reducer_override(self, obj):
            if obj is eng.book(1) and not outcomes:
                outcomes.append(_in_other_thread(_pair_process(eng, 10)))
            return NotImplemented
    buf = io.BytesIO()
    Hooked(buf, protocol=pickle.HIGHEST_PROTOCOL).dump((eng, eng.book(1)))
    assert outcomes and not isinstance(outcomes[0], BaseException)     # it ran, after the read
    twin, book = pickle.loads(buf.getvalue())
    assert book is twin.book(1) and twin.state_hash() == before != eng.state_hash()
    twin.check_invariants()


def test_engine_snapshot_refuses_a_call_between_its_books():
    # the hook runs after the first book is read, before the second: the snapshot reads the
    # books and limits through Engine's own accessors (a subclass's book() is not called), and
    # asks the engine for each symbol's capacity as it goes
    outcomes = []

    class Hooked(mc.Engine):
        def _capacity_of(self, symbol):
            if symbol == 0 and not outcomes:
                outcomes.append(_in_other_thread(_pair_process(self, 10)))
            return super()._capacity_of(symbol)
    eng = _paired_engine(Hooked)
    before = eng.state_hash()
    twin, _ = load_snapshot(snapshot_bytes(eng)[0])
    assert isinstance(outcomes[0], BusyError), outcomes
    assert twin.state_hash() == eng.state_hash() == before


class _SnapshotHookBook(mc.OrderBook):
    # a subclass's snapshot() (what OrderBook.__reduce__ called between reading the pending
    # events' count and copying them): another thread submits there
    outcomes: list = []

    def snapshot(self):
        if not self.outcomes:
            self.outcomes.append(_in_other_thread(lambda: self.submit(5, 0, PRICE, 1)))
        return super().snapshot()


def test_book_pickle_reads_state_and_pending_events_as_one():
    book = _SnapshotHookBook()
    book.outcomes = []
    book.submit(1, 0, PRICE, 1)
    twin = pickle.loads(pickle.dumps(book))
    # whatever ran meanwhile, the twin's pending events are those of its orders
    assert len(twin.events()) == len(twin) == len(book) - len(book.outcomes)


def test_engine_holding_same_context_entered_twice_released_by_outer_exit():
    # one _holding() object entered inside itself (a reader calling a helper that holds
    # again with it): the inner exit keeps the hold, the outer one releases it; an exit
    # without an enter releases nothing
    eng = mc.Engine()
    eng.add_symbol(1)
    h = eng._holding()
    with h:
        with h:
            assert eng.busy
        assert eng.busy
        assert isinstance(_in_other_thread(lambda: eng.submit(1, 1, 0, 100, 1)), BusyError)
    assert not eng.busy
    h.__exit__(None, None, None)
    other = eng._holding()
    with other:
        h.__exit__(None, None, None)
        assert eng.busy
    assert not eng.busy
    assert _in_other_thread(lambda: eng.submit(1, 2, 0, 100, 1)) == 0
