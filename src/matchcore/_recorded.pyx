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
"""

from matchcore._enums import OrderRejected


def recorded(call, tuple args, dict kwargs, bytearray buf, pack, tuple fields):
    """``call(*args, **kwargs)``, then ``pack(*fields)`` (or the bytes ``fields[0]`` when
    ``pack`` is None) appended to ``buf``; also when the call raises ``OrderRejected`` (a
    refusal the book made: journaled), which is then raised. Any other exception is raised
    with nothing appended (the book refused the arguments and applied nothing)."""
    try:
        out = call(*args, **kwargs)
    except OrderRejected:
        buf += fields[0] if pack is None else pack(*fields)
        raise
    buf += fields[0] if pack is None else pack(*fields)
    return out
