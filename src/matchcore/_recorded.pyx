# cython: language_level=3
"""A ``native.Recorder`` call and its journal record as one step for Python signal handlers.

A handler's exception (Ctrl-C's ``KeyboardInterrupt``, a ``SIGALRM`` timeout) is raised where
the interpreter next looks for pending signals, and it looks right after every call returns: a
signal that came while the book applied a command was raised between the book's call and the
Recorder's record. The book then held a command (a whole batch, when it came during a
``process()``, which runs long without the GIL) that its journal never did, and the journal no
longer replayed to the book. Called from compiled code, the book's method and the append of its
record run with no such look in between: the signal is raised once both are done (or before
either), and the journal and the book stay one.

Each function calls the book's method and appends the record ``pack`` makes of the command
(``native._RECORD.pack``), also when the book refuses the command with ``OrderRejected`` (a
refusal is journaled too), which is then raised. Any other exception is raised with nothing
appended: the book refused the arguments and applied nothing. One function per method, with
the method's own arguments: the per-call Recorder pays no argument tuples or dicts for it.
"""

cimport cython

from matchcore._enums import OrderRejected


def submit(call, bytearray buf, pack, symbol, int kind, order_id, side, price, qty, tif,
           owner, post_only, ts_ns):
    try:
        out = call(order_id, side, price, qty, tif, owner=owner, post_only=post_only,
                   ts_ns=ts_ns)
    except OrderRejected:
        buf += pack(ts_ns, order_id, price, qty, owner, symbol, kind, side, tif,
                    post_only)
        raise
    buf += pack(ts_ns, order_id, price, qty, owner, symbol, kind, side, tif, post_only)
    return out


def market(call, bytearray buf, pack, symbol, int kind, order_id, side, qty, owner,
           ts_ns):
    try:
        out = call(order_id, side, qty, owner=owner, ts_ns=ts_ns)
    except OrderRejected:
        buf += pack(ts_ns, order_id, 0, qty, owner, symbol, kind, side, 0, 0)
        raise
    buf += pack(ts_ns, order_id, 0, qty, owner, symbol, kind, side, 0, 0)
    return out


def cancel(call, bytearray buf, pack, symbol, int kind, order_id, owner, ts_ns):
    # (a cancel refuses without raising)
    out = call(order_id, owner=owner, ts_ns=ts_ns)
    buf += pack(ts_ns, order_id, 0, 0, owner, symbol, kind, 0, 0, 0)
    return out


def modify(call, bytearray buf, pack, symbol, int kind, order_id, qty, price, owner,
           ts_ns):
    try:
        out = call(order_id, qty, price, owner=owner, ts_ns=ts_ns)
    except OrderRejected:
        buf += pack(ts_ns, order_id, 0 if price is None else price, qty, owner, symbol,
                    kind, 0, 0, 0)
        raise
    buf += pack(ts_ns, order_id, 0 if price is None else price, qty, owner, symbol, kind,
                0, 0, 0)
    return out


def batch(call, bytearray buf, commands, out, records):
    """``call(commands, out=out)`` (the book's ``process``), then ``records`` (the batch's
    records, made before it ran) appended; nothing appended when it raises. Returns the
    call's result and whether the records were appended: the buffer's growth may find no
    memory once the batch is applied, and the caller then journals them another way (a
    MemoryError raised here left the batch in the book and out of the journal)."""
    res = call(commands, out=out)
    try:
        buf += records
    except MemoryError:
        return res, False
    return res, True


def flushed(recorder, bytearray buf, count, Py_ssize_t written):
    """A flush's bookkeeping once its records and count are on file: ``recorder.count`` set
    to ``count`` and the ``written`` bytes taken off ``buf``, with no look for signals between
    the two. Split by a signal handler's exception, the next flush wrote those records again
    after the count that already took them in: the journal held them twice (a market order
    replayed twice), or, the other way round, wrote the next ones over them."""
    recorder.count = count
    del buf[:written]


@cython.auto_pickle(False)
cdef class Gate:
    """A lock taken without waiting, for a ``with`` block: ``refuse()`` (which raises) when
    it is held already. The Recorder's per-call lock, taken as ``lock.acquire(False)`` in
    Python and released in a ``finally`` that only began after it: a signal handler's
    exception raised as ``acquire`` returned (the interpreter's first look for signals after
    it) came before that ``finally``, and the lock stayed held for good. Every later call,
    ``close()`` included, was refused as busy, and the records buffered were never written.
    Entering a ``with`` block runs ``__enter__`` with no such look between it and the block.
    ``refuse``: a ``weakref.WeakMethod`` (the Recorder's own method, held weakly: the gate is
    the Recorder's attribute, and a strong one made a cycle that left a dropped Recorder, its
    file unflushed, to the cyclic collector)."""
    cdef object _lock
    cdef object _refuse

    def __cinit__(self, lock, refuse):
        self._lock = lock
        self._refuse = refuse

    def __enter__(self):
        if not self._lock.acquire(False):
            refuse = self._refuse()
            if refuse is not None:
                refuse()
            raise RuntimeError("the lock is held")
        return self

    def __exit__(self, *exc):
        self._lock.release()
        return False
