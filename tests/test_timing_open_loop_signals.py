"""An open loop whose schedule lasts long waits inside one compiled call: a signal that arrives
meanwhile (Ctrl-C, SIGTERM under the command line's handlers) must still end it."""
import signal

import numpy as np
import pytest

import matchcore as mc
from matchcore import _timing


class _Alarm(Exception):
    pass


def _raise_alarm(signum, frame):
    raise _Alarm()


def _commands(n):
    cmds = np.zeros(n, dtype=mc.COMMAND_DTYPE)
    cmds["order_id"] = np.arange(1, n + 1)
    cmds["price"] = 100 + np.arange(n)
    cmds["qty"] = 1
    cmds["side"] = 1
    return cmds


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
@pytest.mark.parametrize("clock", ["monotonic", "tsc"])
@pytest.mark.parametrize("schedule", ["arrivals", "rate"])
def test_process_open_loop_signal_while_waiting_raised_book_usable(clock, schedule):
    # the second message is due 20 s after the first: the loop waits for it in compiled code,
    # where the handler's exception was raised only once the whole schedule had run (an open
    # loop at --rate 1e-3 could not be stopped by Ctrl-C for days)
    if clock == "tsc" and _timing.resolve_clock("auto") != "tsc":
        pytest.skip("no invariant TSC here")
    book = mc.OrderBook()
    cmds = _commands(2)
    kwargs = ({"arrivals_ns": np.array([0.0, 20e9])} if schedule == "arrivals"
              else {"rate": 0.05})
    old = signal.signal(signal.SIGALRM, _raise_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(_Alarm):
            _timing.process_open_loop(book, cmds, clock=clock, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    # the message before the signal was applied, the one it waited for was not, and the book
    # is no longer held by the loop
    assert len(book) == 1 and book.get(1) is not None and book.get(2) is None
    assert book.submit(3, mc.Side.BUY, 50, 1) == 0
