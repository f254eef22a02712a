"""A signal handler's exception (Ctrl-C's KeyboardInterrupt) raised while a Recorder's call runs
must not split the book's call from its journal record: whatever the book applied, the journal
holds, so that it still replays to the book; nor may it leave the Recorder held for good."""
import signal
import sys
import threading

import numpy as np
import pytest

import matchcore as mc
from matchcore import native


class _Interrupted(Exception):
    pass


def _raise_interrupted(signum, frame):
    raise _Interrupted()


@pytest.fixture
def handler():
    old = signal.signal(signal.SIGUSR1, _raise_interrupted)
    old_alarm = signal.signal(signal.SIGALRM, _raise_interrupted)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGUSR1, old)
    signal.signal(signal.SIGALRM, old_alarm)


def _resting(n, side, first_id=1):
    cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = first_id + np.arange(n)
    cmds["side"] = side
    cmds["price"] = 100 + np.arange(n) % 50 if side == mc.Side.SELL else 99 - np.arange(n) % 50
    cmds["qty"] = 1
    return cmds


def _replays_to(path, book):
    replayed = mc.OrderBook()
    native.replay_commands(path, replayed)
    return replayed.state_hash() == book.state_hash()


def test_recorder_process_interrupted_while_its_batch_runs_journals_the_batch(tmp_path, handler):
    # the signal comes while the batch runs without the GIL; its handler's exception was raised
    # as the book's process() returned, before the records were appended: the whole batch was
    # applied to the book and never journaled
    path = tmp_path / "s.mccmd"
    book = mc.OrderBook()
    rec = native.Recorder(book, path)
    cmds = _resting(400_000, mc.Side.SELL)
    main = threading.get_ident()
    done = threading.Event()

    def poke():
        while not book.busy and not done.is_set():
            pass
        if book.busy:
            signal.pthread_kill(main, signal.SIGUSR1)

    t = threading.Thread(target=poke)
    t.start()
    try:
        with pytest.raises(_Interrupted):
            try:
                rec.process(cmds)
            finally:
                done.set()
    finally:
        t.join()
    assert len(book) == len(cmds)      # the batch ran whole: the signal came while it ran
    rec.close()
    assert native.read_header(path).count == len(cmds)
    assert _replays_to(path, book)


def test_recorder_submit_interrupted_while_it_sweeps_the_book_journals_it(tmp_path, handler):
    # A buy sweeping 300,000 resting sells runs long in the book; the timer's signal comes
    # meanwhile (or, on a slow start, before the book is called: nothing applied then). Either
    # way the journal replays to the book.
    path = tmp_path / "s.mccmd"
    book = mc.OrderBook()
    n = 300_000
    with native.Recorder(book, path) as rec:
        rec.process(_resting(n, mc.Side.SELL))
        landed = False
        for attempt in range(5):
            try:
                try:
                    signal.setitimer(signal.ITIMER_REAL, 0.002)
                    rec.submit(10_000_000 + attempt, mc.Side.BUY, 1_000, n)
                except _Interrupted:
                    landed = len(book) == 0     # raised after the book swept
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except _Interrupted:
                pass                            # came once the call had returned
            if landed:
                break
            if len(book) == 0:
                # swept without the signal: another batch to sweep
                rec.process(_resting(n, mc.Side.SELL, 1 + (attempt + 1) * n))
    assert _replays_to(path, book)
    if not landed:
        pytest.skip("the timer's signal never came while the book swept")


class _InterruptAfterEntryLock:
    # a profile hook raising as the Recorder's per-call lock is taken from Python code: where a
    # signal handler's exception is raised when the signal came during the acquire (the
    # interpreter looks for pending signals as each call returns)
    def __init__(self, lock):
        self.lock, self.fired = lock, False

    def __call__(self, frame, event, arg):
        if event == "c_return" and getattr(arg, "__self__", None) is self.lock \
                and getattr(arg, "__name__", "") == "acquire":
            sys.setprofile(None)
            self.fired = True
            raise _Interrupted()


@pytest.mark.parametrize("call", ["submit", "cancel", "process"])
def test_recorder_interrupted_as_it_takes_its_lock_stays_usable(tmp_path, call):
    # the exception came after the lock was taken and before the block that releases it: the
    # Recorder refused every later call and close() as busy, and its buffered records were
    # never written
    path = tmp_path / "s.mccmd"
    book = mc.OrderBook()
    rec = native.Recorder(book, path)
    rec.submit(1, mc.Side.BUY, 99, 5)
    calls = {"submit": lambda: rec.submit(2, mc.Side.BUY, 98, 5),
             "cancel": lambda: rec.cancel(1),
             "process": lambda: rec.process(_resting(3, mc.Side.SELL, 10))}
    sys.setprofile(_InterruptAfterEntryLock(rec._entry))
    try:
        calls[call]()
    except _Interrupted:
        pass
    finally:
        sys.setprofile(None)
    rec.submit(3, mc.Side.BUY, 97, 5)
    rec.close()
    assert _replays_to(path, book)
    assert native.read_header(path).count >= 2


def test_recorder_flush_interrupted_after_its_count_writes_no_record_twice(tmp_path):
    # the exception came once the flush had taken the new count in and before it had taken the
    # flushed records off its buffer: the next flush wrote them again after that count, and
    # the journal replayed the market order twice
    path = tmp_path / "s.mccmd"
    book = mc.OrderBook()
    rec = native.Recorder(book, path, flush_every=1 << 20)
    rec.submit(1, mc.Side.SELL, 99, 5)
    rec.submit_market(2, mc.Side.BUY, 1)

    def interrupt(frame, event, arg):
        # at the flush's first look for signals once its count is taken in
        if event == "c_return" and frame.f_code.co_name == "flush" and rec.count == 2:
            sys.setprofile(None)
            raise _Interrupted()

    sys.setprofile(interrupt)
    try:
        rec.flush()
    except _Interrupted:
        pass
    finally:
        sys.setprofile(None)
    rec.submit(3, mc.Side.BUY, 97, 5)
    rec.close()
    assert native.read_header(path).count == 3
    assert _replays_to(path, book)
