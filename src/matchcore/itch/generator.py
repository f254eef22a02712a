"""A deterministic, realistic NASDAQ TotalView-ITCH 5.0 order flow (standard framing).

The day: system events (start of messages, system hours, market hours ... end of messages), one
stock directory and one trading action per symbol, opening and closing crosses, and in between a
seeded order flow over a Zipf-like symbol mix: adds near the touch (some with MPID attribution),
deletes, partial cancels, replaces, executions of the oldest order at the best level (some with
their own price, some non-printable), hidden-order trades, occasional NOII messages and broken
trades. The flow is kept consistent by running it through the compiled book, so it never refers
to an order that is not open and never crosses a book.
"""
from __future__ import annotations

import gzip
import io
import operator
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, overload

from matchcore._args import check_callable

__all__ = ["generate", "symbol_names"]

_CHUNK = 1 << 20     # messages per compiled chunk when writing a file


def _integer(name: str, value) -> None:
    # integers as the books take them: int() cut messages=1000.7 to 1000 and seed=1.5 to
    # seed 1 (another seed's day under the name of this one), without a word
    try:
        operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} "
                        f"{value!r}") from None


def _check_symbols(symbols) -> None:
    _integer("symbols", symbols)
    if not 1 <= symbols <= 65535:
        # locates are 16 bits (checked here too: a huge int would not reach the generator's own
        # check, it would overflow its C int first)
        raise ValueError(f"symbols must be in 1..65535, got {symbols}")


def symbol_names(symbols: int) -> list[str]:
    """The ticker names ``generate`` uses for ``symbols`` symbols (locate i+1 is name i);
    ``symbols`` as ``generate`` takes it (an integer in 1..65535: ``TypeError``,
    ``ValueError`` otherwise). O(symbols).

    >>> symbol_names(3)
    ['AAPL', 'MSFT', 'AMZN']
    """
    # a count generate refuses gave names of no day: -1 the well-known tickers but the last
    # (a slice), 1.5 one name, 70000 names of locates that do not exist
    _check_symbols(symbols)
    from matchcore.itch._gen import symbol_names as _names

    return [n.decode() for n in _names(symbols)]


@overload
def generate(path: None = None, *, messages: int = 1_000_000, symbols: int = 8, seed: int = 1,
             progress: Callable[[int], object] | None = None) -> bytes: ...
@overload
def generate(path: str | os.PathLike[str], *, messages: int = 1_000_000, symbols: int = 8,
             seed: int = 1, progress: Callable[[int], object] | None = None) -> Path: ...
@overload
def generate(path: BinaryIO, *, messages: int = 1_000_000, symbols: int = 8, seed: int = 1,
             progress: Callable[[int], object] | None = None) -> BinaryIO: ...
def generate(path=None, *, messages: int = 1_000_000, symbols: int = 8, seed: int = 1,
             progress=None):
    """Generate ``messages`` ITCH 5.0 messages for ``symbols`` symbols (locates 1..symbols).

    Returns the bytes when ``path`` is None, else writes the file (in chunks, memory flat) and
    returns its ``Path``; a name ending in ``.gz`` (in any case: ``.GZ`` too) is written gzip'd
    (no timestamp or file name in the header, so the file too is the same for the same
    arguments), and a
    binary file object (``sys.stdout.buffer``) is written to and returned. The same (messages,
    symbols, seed) always gives the same bytes. An empty ``path`` (``""``) raises
    ``ValueError``, a text stream (``sys.stdout``) ``TypeError``.
    ``progress(messages_done)`` is called after every chunk of about a million messages.
    O(messages); a few million messages per second on one core (a ``.gz`` file at gzip's
    default level 6: the compression takes most of the time, some 200,000 a second).

    >>> data = generate(None, messages=1000, symbols=2, seed=7)
    >>> data[:3]                      # length prefix 12, then a system event
    b'\\x00\\x0cS'
    """
    from matchcore.itch._gen import Generator

    for name, value in (("messages", messages), ("symbols", symbols), ("seed", seed)):
        _integer(name, value)
    if not 0 <= messages < 2**63:
        # the generator counts messages in int64
        raise ValueError(f"messages must be in [0, 2**63), got {messages}")
    _check_symbols(symbols)
    if not 0 <= seed < 2**64:
        # the generator's state is 64 bits: a larger seed would alias a smaller one
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    check_callable(progress, "progress", "messages_done")
    if isinstance(path, str) and not path:
        # as the native and LOBSTER readers and writers refuse it (open() said "No such file
        # or directory: ''")
        raise ValueError("path: an empty path")
    if isinstance(path, io.TextIOBase):
        # (sys.stdout, not sys.stdout.buffer) failed in its first write with "string argument
        # expected, got 'memoryview'"
        raise TypeError(f"path: a text stream ({type(path).__name__}); generate writes bytes: "
                        f"give a binary file object (sys.stdout.buffer, open(name, 'wb'))")
    gen = Generator(int(messages), int(symbols), int(seed))
    if path is None:
        parts = []
        while gen.remaining:
            parts.append(gen.chunk(_CHUNK))
            if progress is not None:
                progress(messages - gen.remaining)
        return b"".join(parts)
    from matchcore._cliutil import atomic_output, write_all

    def write(f):
        while gen.remaining:
            # (a pipe may take part of a chunk: the rest written, or its error raised)
            write_all(f, gen.chunk(_CHUNK))
            if progress is not None:
                progress(messages - gen.remaining)

    if hasattr(path, "write"):
        write(path)
        return path
    given, path = path, Path(path)
    # complete or not there at all; /dev/stdout, a FIFO or a symlink is written in place
    # (the name as given: "out/" is refused as a directory, as open() refuses it)
    with atomic_output(given, "wb") as f:
        if path.suffix.lower() == ".gz":
            # a .gz name holding plain bytes is refused by gunzip and every other tool (which
            # take .GZ as well). No file name in the header either: GzipFile takes the open
            # file's, which a file written in place (a symlink, a hard link) has and the
            # renamed temporary file does not, so the same arguments gave other bytes
            # gzip's own default level: GzipFile's (9) took about ten times as long for
            # some 1.5% less size, tens of thousands of messages a second
            with gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0,
                               compresslevel=6) as gz:
                write(gz)
        else:
            write(f)
    return path
