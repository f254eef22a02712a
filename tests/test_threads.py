"""One book (or engine) is used by one thread at a time: the calls that release the GIL mark it
busy, and a call from another thread meanwhile raises BusyError and changes nothing. Real
threads, no mocks; the overlap is made certain by waiting for ``busy`` to read True."""
import threading
import time

import numpy as np
import pytest

import matchcore as mc
from matchcore import BusyError, COMMAND_DTYPE
from matchcore.workloads import standard_mix
from matchcore._timing import (process_batch_ns, process_histogram, process_open_loop,
                               process_timed, reserve_events)

# Orders the other thread rests far from the flow's prices (around 1,000,000, limit orders
# only): they never trade with it, so the book is the flow's book plus exactly these.
FAR_BID = 10
FAR_OID = 10**11            # an id the flows never use
HOLD_NS = 400_000_000       # how long a held-busy book stays busy (an open-loop wait)


def _hold_cmds():
    # two commands, the second due HOLD_NS after the first: process_open_loop spins (without
    # the GIL) for that long, so the book is busy for a known time
    cmds = np.zeros(2, dtype=COMMAND_DTYPE)
    cmds["order_id"] = [900_000_001, 900_000_002]
    cmds["side"] = 0
    cmds["price"] = FAR_BID - 1
    cmds["qty"] = 1
    return cmds, np.array([0, HOLD_NS], dtype=np.float64)


def _in_thread(fn, *args, **kwargs):
    box = {}

    def run():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:        # re-raised by the caller of join()
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, box


def _join(t, box):
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _call_while_busy(obj, call, fn, *args, match=None):
    """Run ``fn(*args)`` in a thread; as soon as ``obj`` is busy (or the thread has ended), make
    ``call()`` here. Returns (whether ``call`` was refused with BusyError, whether the thread
    was still running right after, ``fn``'s result). ``match``: a refusal must name it."""
    t, box = _in_thread(fn, *args)
    while not obj.busy and t.is_alive():
        time.sleep(0)
    try:
        call()
        refused = False
    except BusyError as exc:
        if match is not None:
            assert match in str(exc)
        refused = True
    still = t.is_alive()
    return refused, still, _join(t, box)


def _wait_busy(obj, t):
    deadline = time.monotonic() + 10
    while not obj.busy:
        assert t.is_alive(), "the busy call ended before it was seen busy"
        assert time.monotonic() < deadline
        time.sleep(0)
    return time.monotonic()


def _seeded_book(**kw):
    book = mc.OrderBook(**kw)
    setup, flow = standard_mix(2000, seed=3)
    book.process(setup)
    book.process(flow)
    book.submit(FAR_OID, 0, FAR_BID, 2)
    book.events()
    return book


def _book_calls(book, snap):
    cmds = np.zeros(1, dtype=COMMAND_DTYPE)
    cmds["order_id"] = 77
    cmds["qty"] = 1
    cmds["price"] = FAR_BID
    bids = np.zeros((4, 2), np.int64)
    asks = np.zeros((4, 2), np.int64)
    return {
        "submit": lambda: book.submit(10**9, 0, FAR_BID, 1),
        "submit_market": lambda: book.submit_market(10**9 + 1, 1, 1),
        "cancel": lambda: book.cancel(FAR_OID),
        "modify": lambda: book.modify(FAR_OID, 1),
        "place": lambda: book.place(10**9 + 2, 0, FAR_BID, 1),
        "reduce": lambda: book.reduce(FAR_OID, 1),
        "process": lambda: book.process(cmds),
        "events": lambda: book.events(),
        "events_owner": lambda: book.events(owner=1),
        "best_bid": lambda: book.best_bid(),
        "best_ask": lambda: book.best_ask(),
        "depth": lambda: book.depth(5),
        "depth_orders": lambda: book.depth_orders(5),
        "depth_into": lambda: book.depth_into(bids, asks),
        "get": lambda: book.get(FAR_OID),
        "queue_position": lambda: book.queue_position(FAR_OID),
        "level": lambda: book.level(0, FAR_BID),
        "level_count": lambda: book.level_count(0),
        "len": lambda: len(book),
        "repr": lambda: repr(book),
        "stp": lambda: book.stp,
        "state_hash": lambda: book.state_hash(),
        "snapshot": lambda: book.snapshot(),
        "restore": lambda: book.restore(snap),
        "clear": lambda: book.clear(),
        "copy": lambda: book.copy(),
        "check_invariants": lambda: book.check_invariants(allow_crossed=True),
        "process_timed": lambda: process_timed(book, cmds),
        "process_batch_ns": lambda: process_batch_ns(book, cmds),
        "process_histogram": lambda: process_histogram(book, cmds, np.array([1e3]),
                                                       np.zeros(3, np.int64)),
        "reserve_events": lambda: reserve_events(book, 10),
    }


def test_book_busy_every_call_raises_and_changes_nothing():
    book = _seeded_book()
    other = _seeded_book()
    snap = other.snapshot()
    before = book.state_hash()
    cmds, arrivals = _hold_cmds()
    t, box = _in_thread(process_open_loop, book, cmds, arrivals_ns=arrivals)
    seen = _wait_busy(book, t)
    raised = {}
    for name, call in _book_calls(book, snap).items():
        with pytest.raises(BusyError) as info:
            call()
        raised[name] = str(info.value)
    assert time.monotonic() - seen < HOLD_NS / 1e9, "the calls took longer than the hold"
    assert book.busy
    _join(t, box)
    assert not book.busy
    assert all("OrderBook is busy" in msg and "another thread" in msg for msg in raised.values())
    # nothing changed: the held batch's two orders are all that is new
    for oid in (900_000_001, 900_000_002):
        assert book.cancel(oid) == 1
    assert book.state_hash() == before
    book.check_invariants()
    # and every call runs again (the order the calls name is gone by now: KeyError is fine)
    for name, call in _book_calls(book, snap).items():
        try:
            call()
        except KeyError:
            assert name == "queue_position"


def test_book_process_concurrent_process_restore_clear_raise():
    setup, flow = standard_mix(400_000, seed=2)
    book = mc.OrderBook()
    book.process(setup)
    ref = book.copy()
    expect = ref.process(flow)
    snap = book.snapshot()
    for attempt in range(5):
        t, box = _in_thread(book.process, flow)
        try:
            _wait_busy(book, t)
        except AssertionError:
            _join(t, box)
            book.restore(snap)
            continue
        calls = [lambda: book.process(flow), lambda: book.restore(snap), lambda: book.clear(),
                 lambda: book.submit(1, 0, 100, 1)]
        outcomes = []
        for call in calls:
            try:
                call()
                outcomes.append("ran")
            except BusyError as exc:
                assert "process() is running on it in another thread" in str(exc)
                outcomes.append("busy")
        got = _join(t, box)
        if "ran" in outcomes:       # the batch ended before the calls: try again
            book.restore(snap)
            continue
        assert np.array_equal(got, expect)
        assert book.state_hash() == ref.state_hash()
        book.check_invariants()
        return
    pytest.skip("process() never stayed busy long enough on this machine")


def test_book_restore_marks_busy():
    setup, _ = standard_mix(10, seed=1, resting=200_000, levels=5000)
    big = mc.OrderBook()
    big.process(setup)
    snap = big.snapshot()
    book = mc.OrderBook()
    for attempt in range(10):
        refused, _, _ = _call_while_busy(book, book.best_bid, book.restore, snap,
                                         match="restore() is running")
        if refused:
            break
    else:
        pytest.skip("restore() never stayed busy long enough on this machine")
    assert book.state_hash() == big.state_hash()
    book.check_invariants()


def test_book_reproducer_no_crash_other_thread_gets_busy():
    # The bug report's reproducer: another thread hammers the book while process() runs.
    # Its orders rest far from the flow, so the final book is the flow's book plus exactly
    # the orders whose submit succeeded.
    setup, flow = standard_mix(100_000, seed=1)
    book = mc.OrderBook()
    book.process(setup)
    ref = book.copy()
    stop = threading.Event()
    placed = []
    counts = {"busy": 0, "ok": 0}

    def other():
        i = 10**12
        while not stop.is_set():
            try:
                book.submit(i, 0, FAR_BID - (i % 5), 3)
                placed.append(i)
                counts["ok"] += 1
            except BusyError:
                counts["busy"] += 1
            i += 1
            for q in (lambda: book.best_bid(), lambda: book.events(), lambda: book.depth(3)):
                try:
                    q()
                except BusyError:
                    counts["busy"] += 1

    t = threading.Thread(target=other)
    t.start()
    try:
        # at least 6 batches, and more until the other thread has met one: on a loaded machine
        # the OS may not run it during the first few (bounded: a few seconds at most)
        for i in range(400):
            book.process(flow)
            ref.process(flow)
            time.sleep(0.001)
            if i >= 5 and counts["busy"] > 0:
                break
    finally:
        stop.set()
        t.join()
    book.check_invariants()
    assert counts["busy"] > 0
    for oid in placed:
        assert book.cancel(oid) == 3
    assert book.state_hash() == ref.state_hash()
    assert len(book) == len(ref)


def test_two_books_two_threads_run_in_parallel():
    setup, flow = standard_mix(200_000, seed=5)
    books = [mc.OrderBook(), mc.OrderBook()]
    ref = mc.OrderBook()
    ref.process(setup)
    expect = ref.process(flow)
    for b in books:
        b.process(setup)
    barrier = threading.Barrier(2)

    def run(b):
        barrier.wait()
        return b.process(flow)

    threads = [_in_thread(run, b) for b in books]
    results = [_join(t, box) for t, box in threads]
    for b, ev in zip(books, results):
        assert np.array_equal(ev, expect)
        assert b.state_hash() == ref.state_hash()
        b.check_invariants()


def _engine():
    eng = mc.Engine()
    eng.add_symbol(1, "AAA")
    eng.add_symbol(2, "BBB")
    eng.submit(1, 5, 0, FAR_BID, 2)
    eng.submit(2, 6, 1, 500, 2)
    eng.events()
    return eng


def _engine_calls(eng):
    cmds = np.zeros(1, dtype=COMMAND_DTYPE)
    cmds["order_id"] = 77
    cmds["qty"] = 1
    cmds["price"] = FAR_BID
    cmds["symbol"] = 1
    return {
        "submit": lambda: eng.submit(1, 10**9, 0, FAR_BID, 1),
        "submit_market": lambda: eng.submit_market(1, 10**9 + 1, 1, 1),
        "cancel": lambda: eng.cancel(5),
        "modify": lambda: eng.modify(5, 1),
        "process": lambda: eng.process(cmds),
        "events": lambda: eng.events(),
        "get": lambda: eng.get(5),
        "best_bid": lambda: eng.best_bid(1),
        "depth": lambda: eng.depth(2),
        "queue_position": lambda: eng.queue_position(5),
        "len": lambda: len(eng),
        "state_hash": lambda: eng.state_hash(),
        "add_symbol": lambda: eng.add_symbol(3),
        "set_limits": lambda: eng.set_limits(1, max_qty=10),
        "set_reference_price": lambda: eng.set_reference_price(1, 100),
        "check_invariants": lambda: eng.check_invariants(),
        "process_histogram": lambda: process_histogram(eng, cmds, np.array([1e3]),
                                                       np.zeros(3, np.int64)),
    }


def test_engine_book_refuses_a_timed_loop_and_changes_nothing():
    # A timed loop on eng.book(1) would enter orders behind the engine (no routing, limits or
    # journal): it is refused before the book is marked busy, and the engine stays usable.
    eng = _engine()
    before = eng.state_hash()
    cmds, arrivals = _hold_cmds()
    cmds["symbol"] = 1
    with pytest.raises(mc.ReadOnlyBookError, match="belongs to an Engine"):
        process_open_loop(eng.book(1), cmds, arrivals_ns=arrivals)
    assert not eng.busy and not eng.book(1).busy
    assert eng.state_hash() == before
    eng.check_invariants()
    for name, call in _engine_calls(eng).items():
        try:
            call()
        except KeyError:
            assert name == "queue_position"       # order 5 was cancelled just before


def test_engine_process_marks_engine_and_books_busy():
    setup, flow = standard_mix(300_000, seed=4)
    for arr in (setup, flow):
        arr["symbol"] = 1
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.add_symbol(2)
    eng.process(setup)
    ref = mc.Engine()
    ref.add_symbol(1)
    ref.add_symbol(2)
    ref.process(setup)
    expect = ref.process(flow)
    snap = mc.OrderBook().snapshot()
    if True:
        t, box = _in_thread(eng.process, flow)
        try:
            _wait_busy(eng, t)
        except AssertionError:
            _join(t, box)
            pytest.skip("Engine.process() ended before it was seen busy")
        outcomes = []
        for call in (lambda: eng.submit(2, 10**9, 0, 100, 1), lambda: eng.book(2).best_bid(),
                     lambda: eng.book(1).depth(), lambda: eng.process(flow[:10]),
                     lambda: eng.book(1).restore(snap), lambda: eng.book(2).process(flow[:10])):
            try:
                call()
                outcomes.append("ran")
            except BusyError as exc:
                assert ("process() is running on it in another thread" in str(exc)
                        or "process() is running on its Engine in another thread" in str(exc))
                outcomes.append("busy")
            except mc.ReadOnlyBookError:
                # order entry on an engine's book is refused first, busy or not
                outcomes.append("read-only")
        got = _join(t, box)
        assert "ran" not in outcomes, outcomes
        assert np.array_equal(got, expect)
        assert eng.state_hash() == ref.state_hash()
        eng.check_invariants()


def test_engine_book_process_refused_engine_unchanged():
    # eng.book(s).process() would run on a book the engine routes into, behind its back
    setup, flow = standard_mix(4_000, seed=6)
    eng = mc.Engine()
    eng.add_symbol(0)
    eng.process(setup)
    before = eng.state_hash()
    with pytest.raises(mc.ReadOnlyBookError):
        eng.book(0).process(flow)
    assert not eng.busy and eng.state_hash() == before
    eng.process(flow)
    eng.check_invariants()


def test_lobster_replay_marks_book_busy():
    from matchcore._lobster import replay
    n = 300_000
    kind = np.ones(n, dtype=np.int8)
    ts = np.arange(n, dtype=np.int64)
    oid = np.arange(1, n + 1, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    price = 1000 + (np.arange(n, dtype=np.int64) % 500)
    side = np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8)
    ref = mc.OrderBook()
    replay(ref, kind, ts, oid, size, price, side, None, 0)
    for attempt in range(10):
        book = mc.OrderBook()
        refused, _, _ = _call_while_busy(book, lambda: book.submit(10**12, 0, 1, 1), replay,
                                         book, kind, ts, oid, size, price, side, None, 0,
                                         match="replay")
        if refused:
            assert book.state_hash() == ref.state_hash()
            book.check_invariants(allow_crossed=True)
            return
    pytest.skip("replay never stayed busy long enough on this machine")


def _hold_on(book):
    # hold `book` busy (HOLD_NS) from another thread; returns (thread, box, time seen busy)
    cmds, arrivals = _hold_cmds()
    cmds["order_id"] += 10**15      # ids no feed uses
    t, box = _in_thread(process_open_loop, book, cmds, arrivals_ns=arrivals)
    return t, box, _wait_busy(book, t)


def test_itch_replayer_busy_while_one_of_its_books_is_held():
    import matchcore.itch as itch
    data = itch.generate(None, messages=20_000, symbols=3, seed=1)
    r = itch.Replayer()
    cut = len(data) // 2
    used = r.feed(data[:cut])
    rest = data[used:]
    books = list(r.books.values())
    before = [b.state_hash() for b in books]
    t, box, seen = _hold_on(books[0])
    for call in (lambda: r.feed(rest), lambda: r.stats, lambda: r.tob(),
                 lambda: r.trades(), lambda: r.symbols, lambda: r.finish(b"")):
        with pytest.raises(BusyError, match="Replayer is busy: a timed loop"):
            call()
    assert r.bytes_consumed == used         # the stream position stays readable
    with pytest.raises(BusyError, match="on another book of its Engine or replayer"):
        books[1].best_bid()
    assert time.monotonic() - seen < HOLD_NS / 1e9
    _join(t, box)
    books[0].cancel(10**15 + 900_000_001)
    books[0].cancel(10**15 + 900_000_002)
    assert [b.state_hash() for b in books] == before
    # the replay goes on and ends where one uninterrupted feed does
    r.finish(rest[r.feed(rest):])
    whole = itch.Replayer()
    whole.finish(data[whole.feed(data):])
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in whole.books.items()}


def test_itch_replayer_feed_marks_its_books_busy():
    import matchcore.itch as itch
    data = itch.generate(None, messages=300_000, symbols=2, seed=2)
    whole = itch.Replayer()
    whole.finish(data[whole.feed(data):])
    for attempt in range(10):
        r = itch.Replayer()
        head = r.feed(data[:5000])          # the books exist from here
        book = next(iter(r.books.values()))
        refused, _, used = _call_while_busy(book, book.best_bid, r.feed, data[head:],
                                            match="a feed replay is running on its replayer")
        if refused:
            r.finish(data[head + used:])
            assert {k: b.state_hash() for k, b in r.books.items()} == \
                {k: b.state_hash() for k, b in whole.books.items()}
            return
    pytest.skip("feed() never stayed busy long enough on this machine")


def test_itch_replayer_callback_reads_the_book_but_cannot_feed():
    import matchcore.itch as itch
    data = itch.generate(None, messages=5000, symbols=2, seed=3)
    seen = []

    def cb(name, book, ts):
        seen.append(book.best_bid())        # between messages: the book is whole and usable
        with pytest.raises(BusyError, match="feed"):
            r.feed(data)

    r = itch.Replayer(callback=cb, callback_every=500)
    r.finish(data[r.feed(data):])
    assert seen
    whole = itch.Replayer()
    whole.finish(data[whole.feed(data):])
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in whole.books.items()}


def test_itch_replayer_callback_cannot_finish_the_stream_mid_feed():
    # finish() from the callback ended the stream (finished True, stats final) and feed() then
    # went on applying the rest of its buffer to the "finished" replayer
    import matchcore.itch as itch
    data = itch.generate(None, messages=5000, symbols=2, seed=3)
    raised = []

    def cb(name, book, ts):
        with pytest.raises(BusyError, match="feed") as e:
            r.finish()
        raised.append(str(e.value))
        assert not r.finished

    r = itch.Replayer(callback=cb, callback_every=500)
    r.finish(data[r.feed(data):])
    assert raised and r.finished and r.stats["messages"] == 5000


def test_dbn_replayer_busy_while_one_of_its_books_is_held():
    import io
    from matchcore.feeds.dbn import DbnReplayer, read_metadata
    from matchcore.feeds.dbn_gen import generate_mbo
    data = generate_mbo(None, records=6000, instruments=2, seed=1)
    meta = read_metadata(io.BytesIO(data))
    body = data[meta.header_bytes:]
    r = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
    used = r.feed(body[:len(body) // 2])
    books = list(r.books.values())
    t, box, seen = _hold_on(books[0])
    for call in (lambda: r.feed(body[used:]), lambda: r.stats, lambda: r.tob()):
        with pytest.raises(BusyError, match="DbnReplayer is busy"):
            call()
    assert r.bytes_consumed == used         # the stream position stays readable
    with pytest.raises(BusyError):
        books[1].depth()
    _join(t, box)
    books[0].cancel(10**15 + 900_000_001)
    books[0].cancel(10**15 + 900_000_002)
    rest = body[used:]
    r.finish(rest[r.feed(rest):])
    whole = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
    whole.finish(body[whole.feed(body):])
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in whole.books.items()}


def test_engine_outlived_by_its_book_leaves_it_standalone():
    eng = mc.Engine()
    book = eng.add_symbol(1)
    eng.submit(1, 1, 0, 100, 5)
    del eng
    import gc
    gc.collect()
    assert not book.busy
    setup, flow = standard_mix(1000, seed=1)
    book.process(setup)          # no engine to mark busy any more
    book.check_invariants()


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
def test_engine_copy_books_refuse_order_entry(how):
    # The copy's books belong to the copy as add_symbol's do: their own order entry is refused,
    # the copy unchanged, and the copy takes the orders itself.
    import copy
    import pickle
    eng = _engine()
    twin = (pickle.loads(pickle.dumps(eng)) if how == "pickle"
            else copy.deepcopy(eng) if how == "deepcopy" else copy.copy(eng))
    before = twin.state_hash()
    cmds, arrivals = _hold_cmds()
    for call in (lambda: twin.book(1).submit(10**15, 0, FAR_BID, 1),
                 lambda: twin.book(1).cancel(5), lambda: twin.book(2).clear(),
                 lambda: process_open_loop(twin.book(1), cmds, arrivals_ns=arrivals)):
        with pytest.raises(mc.ReadOnlyBookError):
            call()
    assert twin.state_hash() == before and not twin.busy
    twin.submit(1, 10**15, 0, FAR_BID, 1)
    assert twin.get(10**15) is not None
    twin.check_invariants()


def test_engine_pickle_while_it_processes_raises():
    # Engine.__reduce__ reads the pending events and limits with the GIL only: while process()
    # writes (and may reallocate) them in another thread it must refuse, as every other call.
    import pickle
    # (no symbol: no book whose own pickling would refuse, only the engine's state to read)
    eng = mc.Engine()
    cmds = np.zeros(400_000, dtype=COMMAND_DTYPE)      # unknown symbol: one reject event each
    cmds["order_id"] = np.arange(1, len(cmds) + 1)
    cmds["qty"] = 1
    cmds["price"] = 100
    cmds["symbol"] = 2
    for attempt in range(10):
        overlapped, still, _ = _call_while_busy(eng, lambda: pickle.dumps(eng), eng.process,
                                                cmds)
        if overlapped:
            return
        assert not still, "pickled an engine while its process() ran in another thread"
    pytest.skip("process() never stayed busy long enough on this machine")


def test_itch_replayer_book_taken_during_callback_stops_feed():
    # The callback runs between two messages with the books not busy, and other threads run
    # meanwhile. One of them starting a GIL-free call on a book (here, before the callback
    # returns) must stop feed() from applying messages to it, not race it.
    import matchcore.itch as itch
    data = itch.generate(None, messages=20_000, symbols=2, seed=3)
    held = {}

    def cb(name, book, ts):
        if not held:
            held["book"] = book
            held["before"] = book.state_hash()
            held["hold"] = _hold_on(book)

    r = itch.Replayer(callback=cb, callback_every=500)
    with pytest.raises(BusyError, match="feed\\(\\) stopped after"):
        r.feed(data)
    t, box, seen = held["hold"]
    assert time.monotonic() - seen < HOLD_NS / 1e9, "the hold ended before feed() resumed"
    assert held["book"].busy
    _join(t, box)
    assert not held["book"].busy
    held["book"].cancel(10**15 + 900_000_001)
    held["book"].cancel(10**15 + 900_000_002)
    assert held["book"].state_hash() == held["before"]
    # the replay goes on from where it stopped and ends where one uninterrupted feed does
    rest = data[r.stats["bytes_consumed"]:]
    r.finish(rest[r.feed(rest):])
    whole = itch.Replayer()
    whole.finish(data[whole.feed(data):])
    assert {k: b.state_hash() for k, b in r.books.items()} == \
        {k: b.state_hash() for k, b in whole.books.items()}


def test_engine_in_a_reference_cycle_outlived_by_its_book_leaves_it_standalone():
    # The engine is freed by the cyclic GC (a cycle through its recovery_report), which may
    # clear the engine's containers first: its book held here must still be unhooked from the
    # engine's busy byte, not left reading freed memory. The freed memory is then refilled with
    # 0xFF, which such a dangling busy byte would read as "busy".
    import ctypes
    import gc
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def make():
        eng = mc.Engine()
        book = eng.add_symbol(1)
        eng.submit(1, 1, 0, 100, 5)
        eng.recovery_report = {"engine": eng}
        return book

    book = make()
    gc.collect()
    blocks = []
    try:
        for size in range(16, 1024, 8):
            for _ in range(64):
                p = libc.malloc(size)
                ctypes.memset(p, 0xFF, size)
                blocks.append(p)
        assert not book.busy
        assert book.best_bid() == (100, 5)
    finally:
        for p in blocks:
            libc.free(p)
    book.submit(2, 1, 100, 5)
    book.check_invariants()


def test_recorder_close_while_its_process_runs_in_another_thread_raises(tmp_path):
    # Recorder.process() releases the GIL for the batch: a close() from another thread then
    # closed the journal under it, and the batch, applied to the book, was never written (no
    # error anywhere). close() is refused meanwhile and changes nothing; the journal, closed
    # afterwards, replays to the live book.
    from matchcore.native import Recorder, replay_commands
    setup, flow = standard_mix(400_000, seed=2)
    for attempt in range(5):
        path = tmp_path / f"session{attempt}.mccmd"
        rec = Recorder(mc.OrderBook(), path)
        rec.process(setup)
        t, box = _in_thread(rec.process, flow)
        try:
            _wait_busy(rec.book, t)
        except AssertionError:
            _join(t, box)
            rec.close()
            continue
        with pytest.raises(BusyError, match="process\\(\\) is running through it"):
            rec.close()
        with pytest.raises(BusyError):
            rec.flush()
        _join(t, box)
        rec.close()
        replayed = mc.OrderBook()
        replay_commands(path, replayed)
        assert replayed.state_hash() == rec.book.state_hash()
        return
    pytest.skip("process() never stayed busy long enough on this machine")


def test_dbn_replayer_feed_marks_its_books_busy():
    # as the ITCH replayer's: while feed() applies records without the GIL, a call on one of
    # its books from another thread is refused and the replay ends as the whole one does
    import io
    from matchcore.feeds.dbn import DbnReplayer, read_metadata
    from matchcore.feeds.dbn_gen import generate_mbo
    data = generate_mbo(None, records=400_000, instruments=2, seed=2)
    meta = read_metadata(io.BytesIO(data))
    body = data[meta.header_bytes:]
    whole = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
    whole.finish(body[whole.feed(body):])
    for attempt in range(10):
        r = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
        head = r.feed(body[:20_000])            # the books exist from here
        book = next(iter(r.books.values()))
        refused, _, used = _call_while_busy(book, book.best_bid, r.feed, body[head:],
                                            match="a feed replay is running on its replayer")
        if refused:
            r.finish(body[head + used:])
            assert {k: b.state_hash() for k, b in r.books.items()} == \
                {k: b.state_hash() for k, b in whole.books.items()}
            return
    pytest.skip("feed() never stayed busy long enough on this machine")


def test_recorder_call_while_another_thread_flushes_is_journaled(tmp_path):
    # flush() releases the GIL while it writes the buffer: a submit() from another thread
    # meanwhile reached the book, then failed to append its record to the buffer the write
    # held (BufferError), and the journal no longer replayed to the live book
    from matchcore.native import Recorder, replay_commands
    setup, flow = standard_mix(400_000, seed=2)
    path = tmp_path / "session.mccmd"
    rec = Recorder(mc.OrderBook(), path, flush_every=10**7)
    rec.process(setup)
    oid, during = 10**12, 0
    for attempt in range(5):
        rec.process(flow)
        t, box = _in_thread(rec.flush)
        while t.is_alive():
            rec.submit(oid, 0, FAR_BID, 1)      # a BufferError here failed the test
            oid += 1
            during += t.is_alive()
        _join(t, box)
        if during:
            break
    rec.close()
    replayed = mc.OrderBook()
    replay_commands(path, replayed)
    assert replayed.state_hash() == rec.book.state_hash()
    if not during:
        pytest.skip("flush() never overlapped a call on this machine")


def _in_thread_now(call):
    # run call() in another thread to its end: what it returned or raised
    t, box = _in_thread(call)
    t.join()
    return box.get("error", box.get("result"))


def _between_runs(replayer, call):
    """Arrange for ``call`` to run in another thread (to its end) at the first garbage
    collection once the replayer holds a book: during feed() that is between two compiled runs,
    with the GIL (a new book is being made), where any other thread may run. Returns (the list
    that gets its outcome, the function that undoes the arrangement)."""
    import gc
    seen = []

    def hook(phase, info):
        if phase == "start" and not seen and replayer.books:
            seen.append(_in_thread_now(call))
    gc.callbacks.append(hook)
    old = gc.get_threshold()
    gc.set_threshold(1)
    return seen, lambda: (gc.set_threshold(*old), gc.callbacks.remove(hook))


def test_dbn_replayer_finish_from_another_thread_mid_feed_raises():
    # finish() from another thread while feed() was between two runs (making a book) ended the
    # stream there (finished True, stats of the records so far) and feed() went on applying
    # the rest of its buffer to the "finished" replayer
    import io
    from matchcore.feeds.dbn import DbnReplayer, read_metadata
    from matchcore.feeds.dbn_gen import generate_mbo
    data = generate_mbo(None, records=6000, instruments=3, seed=1)
    meta = read_metadata(io.BytesIO(data))
    body = data[meta.header_bytes:]
    r = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
    seen, undo = _between_runs(r, r.finish)
    try:
        used = r.feed(body)
    finally:
        undo()
    assert seen, "feed() never collected garbage between two runs"
    assert isinstance(seen[0], BusyError), seen[0]
    assert "feed() is under way in another thread" in str(seen[0])
    assert not r.finished
    stats = r.finish(body[used:])
    whole = DbnReplayer(names=meta.names, ts_out=meta.ts_out)
    assert stats == whole.finish(body[whole.feed(body):])
    assert stats["records"] == 6000


class _ArrayHook:
    """Commands given as an object numpy converts (``__array__``): the ``n``-th conversion
    runs ``call`` in another thread first."""

    def __init__(self, arr, n, call):
        self.arr, self.n, self.call, self.outcome = arr, n, call, "not reached"

    def __array__(self, dtype=None, copy=None):
        self.n -= 1
        if self.n == 0:
            self.outcome = _in_thread_now(self.call)
        return self.arr


def test_recorder_call_between_a_batch_and_its_records_raises(tmp_path, monkeypatch):
    # the batch had run and the book was no longer busy, its records not yet appended: another
    # thread's market order then traded on the book after the batch, was journaled before it,
    # and the journal replayed to another state
    import matchcore.native as native
    from matchcore.native import Recorder, replay_commands
    setup, flow = standard_mix(4000, seed=2)
    path = tmp_path / "session.mccmd"
    rec = Recorder(mc.OrderBook(), path)
    rec.process(setup)
    before = rec.book.state_hash()
    # the other thread's call made once the batch has run and its records are appended, before
    # the Recorder's process() returns (the batch is converted once: no conversion of the
    # caller's object comes between them)
    hook = {"outcome": "not reached"}
    recorded = native._recorded.batch

    def appending(*args):
        out = recorded(*args)
        hook["outcome"] = _in_thread_now(lambda: rec.submit_market(10**12, 0, 5))
        return out

    monkeypatch.setattr(native._recorded, "batch", appending)
    rec.process(flow)
    assert isinstance(hook["outcome"], BusyError), hook["outcome"]
    assert "process() is being applied and journaled through it" in str(hook["outcome"])
    assert rec.book.state_hash() != before
    rec.close()
    replayed = mc.OrderBook()
    replay_commands(path, replayed)
    assert replayed.state_hash() == rec.book.state_hash()


@pytest.mark.parametrize("other", ["process", "close", "submit"])
def test_recorder_call_between_an_order_and_its_record_refuses_the_other(tmp_path, other):
    # a submit applied to the book, its record not yet appended: another thread's batch (or
    # call) then went into the journal before it though applied after it, and a close() lost
    # its record (appended to a closed Recorder)
    from matchcore.native import Recorder, replay_commands
    setup, flow = standard_mix(4000, seed=2)
    path = tmp_path / "session.mccmd"
    rec = Recorder(mc.OrderBook(), path)
    rec.process(setup)
    calls = {"process": lambda: rec.process(flow), "close": rec.close,
             "submit": lambda: rec.submit(10**12 + 1, 1, 1, 3)}
    # the other thread's call made once the book has applied the submit, before its record
    # (the arguments are read once, before the book: no conversion comes between them)
    hook = {"outcome": "not reached"}
    applied = rec._submit

    def applying(*args, **kwargs):
        result = applied(*args, **kwargs)
        hook["outcome"] = _in_thread_now(calls[other])
        return result

    rec._submit = applying
    rec.submit(10**12, 0, 10**6, 3, owner=7)            # crosses the book's asks
    assert isinstance(hook["outcome"], BusyError), hook["outcome"]
    assert "another call is being applied and journaled through it" in str(hook["outcome"])
    rec.close()
    replayed = mc.OrderBook()
    replay_commands(path, replayed)
    assert replayed.state_hash() == rec.book.state_hash()


class _CallsBack:
    # an argument whose conversion calls back into the Recorder converting it (Python code
    # run mid-call by __index__ / __array__), in the same thread
    def __init__(self, value, call):
        self.value, self.call, self.outcome = value, call, "not reached"

    def _run(self):
        try:
            self.call()
            self.outcome = "ran"
        except BusyError as exc:
            self.outcome = exc

    def __index__(self):
        self._run()
        return self.value

    def __array__(self, dtype=None, copy=None):
        self._run()
        return self.value


@pytest.mark.parametrize("outer", ["submit", "process"])
def test_recorder_call_from_inside_its_own_call_is_refused_naming_this_thread(tmp_path, outer):
    # refused (it would be applied between the outer call's conversion and its record), but
    # said to come from "another thread": the caller looked for a thread that did not exist
    from matchcore.native import Recorder, replay_commands
    setup, flow = standard_mix(2000, seed=2)
    path = tmp_path / "session.mccmd"
    rec = Recorder(mc.OrderBook(), path)
    rec.process(setup)
    inner = (lambda: rec.submit_market(10**12 + 1, 1, 3)) if outer == "submit" else rec.close
    if outer == "submit":
        arg = _CallsBack(10**12, inner)
        rec.submit(arg, 0, FAR_BID, 3)
    else:
        arg = _CallsBack(flow, inner)
        rec.process(arg)
    assert isinstance(arg.outcome, BusyError), arg.outcome
    message = str(arg.outcome)
    assert "in this " in message and "__index__ or __array__" in message, message
    if outer == "process":
        assert "process() is being applied and journaled through it in this thread" in message
    assert rec.book.get(10**12 + 1) is None
    rec.close()
    replayed = mc.OrderBook()
    replay_commands(path, replayed)
    assert replayed.state_hash() == rec.book.state_hash()


class _Rewritten:
    # an argument read from a buffer that another thread refills: each reading after the
    # first gives the new value (a 0-d array written meanwhile reads so)
    def __init__(self, first, then):
        self.value, self.then = first, then

    def __index__(self):
        value, self.value = self.value, self.then
        return value


@pytest.mark.parametrize("method", ["submit", "submit_market", "cancel", "modify"])
def test_recorder_argument_rewritten_after_the_book_read_it_journal_holds_what_was_applied(
        tmp_path, method):
    # The book converted each argument, and the record was packed from the caller's objects
    # again: an argument that read otherwise the second time (another thread refilling the
    # buffer it comes from) was applied as one value and journaled as another, and the
    # journal replayed to another state.
    from matchcore.native import Recorder, read_commands, replay_commands
    path = tmp_path / "session.mccmd"
    rec = Recorder(mc.OrderBook(), path)
    rec.submit(1, 1, 105, 4)
    rec.submit(2, 0, 95, 4)
    calls = {
        "submit": lambda: rec.submit(_Rewritten(3, 4), 0, _Rewritten(105, 104),
                                     _Rewritten(1, 3)),
        "submit_market": lambda: rec.submit_market(3, 0, _Rewritten(1, 3)),
        "cancel": lambda: rec.cancel(_Rewritten(1, 2)),
        "modify": lambda: rec.modify(_Rewritten(2, 1), _Rewritten(6, 2), _Rewritten(96, 99)),
    }
    calls[method]()
    rec.close()
    replayed = mc.OrderBook()
    replay_commands(path, replayed)
    assert replayed.state_hash() == rec.book.state_hash()
    last = read_commands(path)[-1]
    want = {"submit": (3, 105, 1), "submit_market": (3, 0, 1), "cancel": (1, 0, 0),
            "modify": (2, 96, 6)}[method]
    assert (int(last["order_id"]), int(last["price"]), int(last["qty"])) == want


def test_recorder_post_only_rewritten_after_its_record_read_it_journal_holds_what_was_applied(
        tmp_path):
    # The flag was read for the record and the caller's object handed to the book, which read
    # it again: a flag that read 1 for the record and 0 for the book (a 0-d array another
    # thread refills) crossed the book and was journaled as a post-only order, which the
    # replay refused (it would cross), leaving the ask that the live book had filled.
    from matchcore.native import Recorder, read_commands, replay_commands
    path = tmp_path / "session.mccmd"
    rec = Recorder(mc.OrderBook(), path)
    rec.submit(1, 1, 100, 4)
    rec.submit(2, 0, 100, 4, post_only=_Rewritten(1, 0))
    rec.close()
    assert rec.book.get(1) is not None            # refused as post-only, as journaled
    assert int(read_commands(path)[-1]["post_only"]) == 1
    replayed = mc.OrderBook()
    replay_commands(path, replayed)
    assert replayed.state_hash() == rec.book.state_hash()


def test_engine_queue_position_reads_the_order_id_once():
    # The engine found the book by the id it read, and the book read the id again: an id that
    # read otherwise the second time (a buffer another thread refills) gave the position of
    # another order, or KeyError for an order that rests.
    eng = mc.Engine()
    eng.add_symbol(1)
    eng.add_symbol(2)
    eng.submit(1, 10, 0, 100, 5)
    eng.submit(1, 11, 0, 100, 7)
    eng.submit(2, 20, 0, 100, 3)
    assert eng.queue_position(_Rewritten(11, 10)) == 5
    assert eng.queue_position(_Rewritten(11, 20)) == 5


def test_recorder_many_calls_while_another_thread_processes_replay_to_the_book(tmp_path):
    # real threads: whatever the interleaving, each call is refused or journaled in the order
    # the book applied it
    from matchcore.native import Recorder, replay_commands
    setup, flow = standard_mix(100_000, seed=2)
    path = tmp_path / "session.mccmd"
    rec = Recorder(mc.OrderBook(), path, flush_every=10**8)
    rec.process(setup)
    stop = threading.Event()
    counts = {"ok": 0, "busy": 0}

    def other():
        oid = 10**12
        while not stop.is_set():
            try:
                rec.submit_market(oid, oid % 2, 1)      # trades: its place in the order matters
                counts["ok"] += 1
            except BusyError:
                counts["busy"] += 1
            oid += 1
    t = threading.Thread(target=other)
    t.start()
    try:
        for i in range(3):
            batch = flow.copy()
            batch["order_id"] += (i + 1) * 10**9
            while True:
                try:
                    rec.process(batch)      # refused while the other thread's call is under way
                    break
                except BusyError:
                    time.sleep(1e-4)
    finally:
        stop.set()
        t.join()
    rec.close()
    replayed = mc.OrderBook()
    replay_commands(path, replayed)
    assert replayed.state_hash() == rec.book.state_hash()
    assert counts["ok"] > 0


@pytest.mark.parametrize("call", ["process", "process_batch_ns"])
def test_itch_replayer_freed_while_a_call_runs_on_its_book_leaves_it_recording(call):
    # A replayer's books write no events while they are its own; freed, it leaves them
    # standalone, writing events as record_events says. Freed while another thread's process()
    # ran on one of them, that call then put back the replayer's setting as it ended: the book
    # said record_events=True and wrote no event again.
    import matchcore.itch as itch
    data = itch.generate(None, messages=3000, symbols=1, seed=1)
    setup, flow = standard_mix(400_000, seed=1)
    flow["order_id"] += 10**12
    run = {"process": lambda b: b.process(flow),
           "process_batch_ns": lambda b: process_batch_ns(b, flow)}[call]
    for attempt in range(10):
        r = itch.Replayer()
        r.finish(data[r.feed(data):])
        book = next(iter(r.books.values()))
        t, box = _in_thread(run, book)
        try:
            _wait_busy(book, t)
        except AssertionError:
            _join(t, box)
            continue
        del r                       # its last reference: the books are unhooked now
        still = t.is_alive()
        _join(t, box)
        if not still:
            continue
        assert not book.busy and book.record_events
        book.events()
        book.submit(10**15, 0, 1, 1)
        assert book.events()["order_id"].tolist() == [10**15]
        book.check_invariants()
        return
    pytest.skip(f"{call} never stayed busy long enough on this machine")


@pytest.mark.parametrize("call", ["finish", "feed"])
def test_itch_replayer_call_from_another_thread_mid_feed_names_the_thread(call):
    # refused (BusyError), but in the words meant for the callback ("its callback may read
    # the books and the replayer, not finish the stream") when there was no callback at all
    import matchcore.itch as itch
    data = itch.generate(None, messages=6000, symbols=3, seed=1)
    r = itch.Replayer()
    other = {"finish": r.finish, "feed": lambda: r.feed(data)}[call]
    seen, undo = _between_runs(r, other)
    try:
        used = r.feed(data)
    finally:
        undo()
    assert seen, "feed() never collected garbage between two runs"
    assert isinstance(seen[0], BusyError), seen[0]
    assert "feed() is under way in another thread" in str(seen[0])
    assert "callback" not in str(seen[0])
    assert not r.finished
    stats = r.finish(data[used:])
    whole = itch.Replayer()
    assert stats == whole.finish(data[whole.feed(data):])


def test_book_depth_into_refuses_a_call_started_while_its_arrays_are_converted():
    # depth_into() checked the book before converting its arrays, which runs Python code (here
    # an array subclass's dtype property): a call that another thread started on the book then
    # (a timed loop, without the GIL) had its book read under it
    book = _seeded_book()
    before = book.state_hash()
    held = {}

    class Arr(np.ndarray):
        @property
        def dtype(self):
            if not held:
                held["hold"] = _hold_on(book)
            return super().dtype
    bids = np.zeros((4, 2), np.int64).view(Arr)
    asks = np.full((4, 2), -1, np.int64)
    with pytest.raises(BusyError, match="a timed loop"):
        book.depth_into(bids, asks)
    t, box, seen = held["hold"]
    assert time.monotonic() - seen < HOLD_NS / 1e9, "the hold ended before depth_into() read"
    _join(t, box)
    assert (asks == -1).all()           # nothing written
    for oid in (900_000_001, 900_000_002):
        assert book.cancel(10**15 + oid) == 1
    assert book.state_hash() == before
    assert book.depth_into(np.zeros((4, 2), np.int64).view(Arr), asks)[0] > 0


class _FlagHook:
    """A ``clear=`` flag whose conversion (``__index__``) runs ``call`` first: Python code
    between a replayer's busy check and its read of the sink."""

    def __init__(self, call):
        self.call = call

    def __index__(self):
        if self.call is not None:
            call, self.call = self.call, None
            call()
        return 0


def _feed_until_busy(r, buf, started):
    # another thread's feed() of buf, returned once it runs without the GIL (or has ended)
    t, box = _in_thread(r.feed, buf)
    book = next(iter(r.books.values()))
    while not book.busy and t.is_alive():
        time.sleep(0)
    started.append((t, box, book.busy))


def _check_sink_read_refuses_a_feed_started_while_clear_converts(make, body, sink, words=None):
    """tob(clear=...) and the other sink reads checked the replayer before converting clear,
    which may run Python code: a feed() started by another thread then appended to (and grew)
    the very sink being copied out, without the GIL. Read with a clear= that starts a feed of
    the rest: refused, and the replay ends as one straight through."""
    for attempt in range(10):
        r = make()
        head = r.feed(body[:20_000])
        started = []
        hook = _FlagHook(lambda: _feed_until_busy(r, body[head:], started))
        try:
            getattr(r, sink)(clear=hook)
            outcome = "read"
        except BusyError as exc:
            outcome = exc
        t, box, was_busy = started[0]
        used = _join(t, box)
        if not was_busy:
            continue            # the feed ended before it was seen busy: try again
        assert isinstance(outcome, BusyError), outcome
        if words is not None:
            assert words in str(outcome)
        r.finish(body[head + used:])
        whole = make()
        whole.finish(body[whole.feed(body):])
        assert np.array_equal(getattr(r, sink)(), getattr(whole, sink)())
        return
    pytest.skip("feed() never stayed busy long enough on this machine")


@pytest.mark.parametrize("sink", ["tob", "trades", "l2", "snapshots"])
def test_itch_replayer_sink_read_refuses_a_feed_started_while_clear_converts(sink):
    import matchcore.itch as itch
    data = itch.generate(None, messages=400_000, symbols=2, seed=2)
    _check_sink_read_refuses_a_feed_started_while_clear_converts(
        lambda: itch.Replayer(record_l2=True, snapshot_every=100), data, sink,
        "a feed replay is running on it")


@pytest.mark.parametrize("sink", ["tob", "trades", "snapshots"])
def test_dbn_replayer_sink_read_refuses_a_feed_started_while_clear_converts(sink):
    import io
    from matchcore.feeds.dbn import DbnReplayer, read_metadata
    from matchcore.feeds.dbn_gen import generate_mbo
    data = generate_mbo(None, records=400_000, instruments=2, seed=2)
    meta = read_metadata(io.BytesIO(data))
    _check_sink_read_refuses_a_feed_started_while_clear_converts(
        lambda: DbnReplayer(names=meta.names, ts_out=meta.ts_out, snapshot_every=100),
        data[meta.header_bytes:], sink)


@pytest.mark.parametrize("loop", ["process_timed", "process_open_loop", "process_batch_ns",
                                  "process_histogram"])
def test_timed_loop_refuses_a_recorder_opened_while_its_commands_convert(tmp_path, loop):
    # The timed loops refuse a book an open Recorder journals (they would apply commands no
    # record holds), but checked that before converting the commands, which may run Python
    # code (an object's __array__) and other threads': a Recorder opened meanwhile then
    # journaled a book the loop changed behind it, and its journal no longer replayed to it.
    from matchcore.native import Recorder, replay_commands
    setup, flow = standard_mix(2000, seed=4)
    book = mc.OrderBook()
    path = tmp_path / "session.mccmd"
    opened = []
    hook = _ArrayHook(flow, 1, lambda: opened.append(Recorder(book, path,
                                                               require_empty=False)))
    book.process(setup)
    before = book.state_hash()
    run = {"process_timed": lambda: process_timed(book, hook),
           "process_open_loop": lambda: process_open_loop(book, hook, rate=1e9),
           "process_batch_ns": lambda: process_batch_ns(book, hook),
           "process_histogram": lambda: process_histogram(book, hook, np.array([1e3]),
                                                          np.zeros(3, np.int64))}[loop]
    with pytest.raises(mc.ReadOnlyBookError, match="journaled by an open native.Recorder"):
        run()
    rec = opened[0]
    assert book.state_hash() == before and not book.busy
    rec.submit(10**12, 0, FAR_BID, 1)
    rec.close()
    replayed = mc.OrderBook()
    replayed.process(setup)
    replay_commands(path, replayed)
    assert replayed.state_hash() == book.state_hash()


class _StrHook:
    # a stream_error whose str() (taken by finish()) runs ``call`` first
    def __init__(self, call):
        self.call = call

    def __str__(self):
        if self.call is not None:
            call, self.call = self.call, None
            call()
        return "cut short"


@pytest.mark.parametrize("kind", ["itch", "dbn"])
def test_replayer_finish_refuses_a_feed_started_while_its_arguments_convert(kind):
    # finish() checked the replayer, then took str(stream_error), which runs Python code (and
    # other threads): a feed() started by another thread then ran while finish() ended the
    # stream (finished True), and finish() itself then raised BusyError from reading its stats
    import io
    import matchcore.itch as itch
    from matchcore.feeds.dbn import DbnReplayer, read_metadata
    from matchcore.feeds.dbn_gen import generate_mbo
    if kind == "itch":
        data = itch.generate(None, messages=400_000, symbols=2, seed=2)

        def make():
            return itch.Replayer()
    else:
        raw = generate_mbo(None, records=400_000, instruments=2, seed=2)
        meta = read_metadata(io.BytesIO(raw))
        data = raw[meta.header_bytes:]

        def make():
            return DbnReplayer(names=meta.names, ts_out=meta.ts_out)
    for attempt in range(10):
        r = make()
        head = r.feed(data[:20_000])
        started = []
        try:
            r.finish(b"", stream_error=_StrHook(lambda: _feed_until_busy(r, data[head:],
                                                                          started)))
            outcome = "finished"
        except BusyError as exc:
            outcome = exc
        t, box, was_busy = started[0]
        used = _join(t, box)
        if not was_busy:
            continue
        assert isinstance(outcome, BusyError), outcome
        assert not r.finished
        stats = r.finish(data[head + used:])
        whole = make()
        assert stats == whole.finish(data[whole.feed(data):])
        return
    pytest.skip("feed() never stayed busy long enough on this machine")


# A per-call market order on a journaled engine sweeps 20,000 resting asks: its fills overflow
# the trade journal's 8 KiB buffer many times within the call. The trade segment's descriptor is
# a full pipe for the call, drained by a thread of the same process.
_SWEEP_INTO_A_PIPE = r'''
import fcntl, os, sys, threading
import numpy as np
import matchcore as mc

N = 20_000
eng = mc.Engine(journal=sys.argv[1], fsync="never", buffer_bytes=8192)
eng.add_symbol(1, capacity=1 << 16)
cmds = np.zeros(N, dtype=mc.COMMAND_DTYPE)
cmds["symbol"] = 1
cmds["order_id"] = np.arange(1, N + 1)
cmds["side"] = 1
cmds["price"] = 100
cmds["qty"] = 1
eng.process(cmds)
eng.sync()


def link(f):
    try:
        return os.readlink(f"/proc/self/fd/{f}")
    except OSError:
        return ""


(fd,) = [int(f) for f in os.listdir("/proc/self/fd") if link(f).endswith(".mct")]
saved = os.dup(fd)
r, w = os.pipe()
flags = fcntl.fcntl(w, fcntl.F_GETFL)
fcntl.fcntl(w, fcntl.F_SETFL, flags | os.O_NONBLOCK)
try:
    while True:
        os.write(w, bytes(4096))
except BlockingIOError:
    pass
fcntl.fcntl(w, fcntl.F_SETFL, flags)
drained = []


def drain():
    while True:
        data = os.read(r, 1 << 16)
        if not data:
            return
        drained.append(len(data))


t = threading.Thread(target=drain, daemon=True)
t.start()
os.dup2(w, fd)
filled = eng.submit_market(1, N + 1, 0, N)
os.dup2(saved, fd)
os.close(w)
t.join()
print(filled, sum(drained))
'''


def test_journaled_engine_per_call_journal_writes_let_other_threads_run(tmp_path):
    # A per-call order was applied and its records appended with the GIL held: the writes a
    # full buffer makes (and a segment roll's fsyncs) held every other thread up, and a write
    # blocked on a full pipe that another thread drains never returned (the drain thread
    # waited for the GIL the blocked call held). The timeout guards against that hang; it
    # times nothing.
    import subprocess
    import sys
    try:
        done = subprocess.run([sys.executable, "-c", _SWEEP_INTO_A_PIPE, str(tmp_path / "j")],
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the per-call order's journal writes never let the draining thread run")
    assert done.returncode == 0, done.stderr
    filled, drained = map(int, done.stdout.split())
    assert filled == 20_000 and drained > 1 << 20
