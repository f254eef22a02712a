"""Signals held while a step that must not be cut short runs (the start or the close of a
Dask cluster, a NATS publisher's closing flush): a Ctrl-C there left worker processes or
batches behind, closed later by an exit hook with a traceback, or never."""
from __future__ import annotations

import signal


def held(call, on_raise=None):
    """``call()`` with SIGINT, SIGTERM and SIGHUP held until it returns, where they have Python
    handlers (the main thread only; elsewhere signals go to the main thread anyway); each
    signal held is then delivered to its handler. When one raises (Ctrl-C's
    ``KeyboardInterrupt``), ``on_raise(result)`` runs first, for a result that is not None.
    Returns what ``call()`` returned. A step taking seconds keeps the signal that long."""
    caught: list = []
    saved = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and callable(signal.getsignal(sig)):
                saved[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    except ValueError:          # not the main thread
        pass
    result = None
    try:
        result = call()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        try:
            for signum in caught:
                saved[signum](signum, None)
        except BaseException:
            if on_raise is not None and result is not None:
                on_raise(result)
            raise
    return result
