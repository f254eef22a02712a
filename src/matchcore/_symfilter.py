"""The ``symbols=`` filter of the replay loops (ITCH, DBN), made once for both."""
from __future__ import annotations

import operator
import re

import numpy as np

# a book label (matchcore.io.book_label): NAME@locateN, one of the books of a name that several
# locates carry; a locate is a u16. The name part is taken without surrounding spaces, as a
# bare name is (symbol_name): " AAPL @locate2" is AAPL@locate2 everywhere a label is read
LABEL = re.compile(r"\s*(.+?)\s*@locate0*([0-9]{1,5})")

# the numbers= of symbol_filter for each format: (the largest id, what an id is)
ITCH_LOCATES = (0xFFFF, "an ITCH stock locate is a uint16")
DBN_INSTRUMENTS = (0xFFFFFFFF, "a DBN instrument id is a uint32")


def whole_number(x) -> int | None:
    """``x`` as a Python int when it is a whole number (an int, a numpy integer, an IntEnum
    member; not a bool, which ``__index__`` would take for 1 or 0), else None. O(1)."""
    if isinstance(x, (bool, np.bool_)):
        return None
    try:
        return operator.index(x)
    except TypeError:
        return None


def symbol_number(given) -> int | None:
    """The number an entry of a symbol selection names (an int, a numpy integer, or a string of
    ASCII digits with spaces around it), None for a name: :func:`symbol_filter`'s rule for
    telling them apart ("١٣" or "²" is a name). O(len(given))."""
    if isinstance(given, str):
        s = given.strip()
        return int(s) if s.isascii() and s.isdigit() else None
    return whole_number(given)


def once_listed(symbols):
    """``symbols`` as a list when it is a one-shot iterator (a generator, ``iter(...)``), which
    the checks made before a replay (a replayer built with the options, once per format) used
    up, so that the replay itself found it empty; anything else as it is (None, a list, a lone
    str or number, which :func:`symbol_filter` takes or refuses). O(len(symbols))."""
    if symbols is None or isinstance(symbols, (str, bytes, bytearray)):
        return symbols
    try:
        one_shot = iter(symbols) is symbols
    except TypeError:
        return symbols
    return list(symbols) if one_shot else symbols


def symbol_filter(symbols, what: str = "symbols", numbers: tuple[int, str] | None = None):
    """``None`` (keep every symbol) or the set of strings a symbol's name or number is looked up
    in. ``symbols`` is an iterable of names and numbers (int or digit strings; anything else,
    such as bytes or a float, raises ``TypeError``). A lone ``str`` is refused: iterated,
    ``"AAPL"`` would be the letters A, P, L and match nothing; so is a lone number
    (``TypeError``). An empty one is refused (``ValueError``): it kept no symbol, where a
    consumer of a NATS stream took it for every symbol; None keeps every symbol. So is a blank
    name in it. A number written with leading zeros (``"01"``) also matches its plain form (locate 1), and a book label ``NAME@locate007`` its
    plain form ``NAME@locate7``. ``numbers``: ``(largest, why)``, the id range of the format
    (:data:`ITCH_LOCATES`, :data:`DBN_INSTRUMENTS`): a number (an int or a string of digits),
    or a book label of a locate, outside ``0..largest`` names no book of any file of it, and
    raises ``ValueError`` naming the value and the range. O(len)."""
    if symbols is None:
        return None
    if isinstance(symbols, (str, bytes, bytearray)):
        raise TypeError(f"{what} is an iterable of names or numbers, not a single "
                        f"{type(symbols).__name__} ({symbols!r}): write [{symbols!r}]")
    try:
        items = iter(symbols)
    except TypeError:
        # a lone number (symbols=5) failed on iter(): "'int' object is not iterable"
        how = (f"write [{symbols!r}]" if whole_number(symbols) is not None
               else "a name is a str, a number an int or a string of digits")
        raise TypeError(f"{what} is an iterable of names or numbers, not a single "
                        f"{type(symbols).__name__} ({symbols!r}): {how}") from None
    out = set()
    for given in items:
        if not isinstance(given, str):
            # str() of bytes, a float, None or a bool ("b'AAPL'", "1.0", "True") matched
            # no symbol: a replay of nothing, without a word
            number = whole_number(given)
            if number is None:
                raise TypeError(f"{what} holds {given!r} ({type(given).__name__}): a name is "
                                f"a str, a number an int or a string of digits")
            given = number
        s = str(given).strip()
        if not s:
            # no symbol is named "": it selected no book, and the replay said nothing
            raise ValueError(f"{what} holds an empty name ({given!r}): it selects no symbol")
        number = symbol_number(given)
        if numbers is not None and number is not None and not 0 <= number <= numbers[0]:
            # selected nothing, and the replay said nothing of it
            raise ValueError(f"{what} holds {given!r}, outside 0..{numbers[0]} ({numbers[1]}): "
                             f"it selects no book")
        out.add(s)
        out.add(plain_number(s))
        m = LABEL.fullmatch(s)
        if m:
            if numbers is not None and int(m.group(2)) > numbers[0]:
                # (a locate is a uint16: only an ITCH range can be below a label's number)
                raise ValueError(f"{what} holds {given!r}, a book label of locate "
                                 f"{int(m.group(2))}, outside 0..{numbers[0]} ({numbers[1]}): "
                                 f"it selects no book")
            out.add(f"{m.group(1)}@locate{int(m.group(2))}")
    if not out:
        raise ValueError(f"{what} is empty: it selects no symbol (None selects every symbol)")
    return out


def label_locates(filt) -> frozenset:
    """The locates N of the book labels ``NAME@locateN`` in a :func:`symbol_filter` set (empty
    for None). A label keeps locate N's book whatever the locate is named when its first order
    arrives: it names the book as the replay summary does, by the name the locate has in the
    end, which a stock directory message may give it later in the day; whether locate N carries
    NAME is checked after the replay (:func:`label_errors`). O(len(filt))."""
    out = set()
    for s in filt or ():
        m = LABEL.fullmatch(s)
        if m:
            out.add(int(m.group(2)))
    return frozenset(out)


def plain_number(symbol: str) -> str:
    """A symbol number written with leading zeros (``"001"``) in its plain form (``"1"``), as a
    locate or instrument id is named; any other symbol unchanged."""
    return str(int(symbol)) if symbol.isascii() and symbol.isdigit() else symbol


def book_symbol(symbol, number: str):
    """A replayer's book() argument: a name (str, returned as it is) or a ``number`` (an
    integer: anything with ``__index__`` but a bool, returned as an int); anything else raises
    TypeError saying what book() takes (a float or a bool was looked up as a name and raised
    KeyError, as if the replay had no such book)."""
    if isinstance(symbol, str):
        return symbol
    value = whole_number(symbol)
    if value is not None:
        return value
    article = "an" if number[:1] in ("a", "e", "i", "o", "u") else "a"
    raise TypeError(f"book() takes a symbol name (str) or {article} {number} (int), not "
                    f"{type(symbol).__name__} {symbol!r}")


def split_symbols(text, option: str = "--symbols"):
    """A command line's comma-separated selection (``--symbols AAPL,7``) as a list, None when
    the option was not given. One that names nothing (``--symbols ""``, ``--symbols ,``) is
    refused (``ValueError`` naming ``option``): it selected every symbol or none, whichever the
    command took an empty list for."""
    if text is None:
        return None
    out = [s.strip() for s in text.split(",") if s.strip()]
    if not out:
        raise ValueError(f"{option} {text!r} names nothing (leave {option} out to select "
                         f"everything)")
    return out


def label_errors(symbols, names: dict) -> list[tuple[str, str]]:
    """``(label, reason)`` for each book label ``NAME@locateN`` of ``symbols`` that names no
    book after a replay: locate N does not occur or carries another name in the end
    (``names``: the replay's ``{locate: name}``). ``matchcore book --symbol`` and ``matchcore
    replay --symbols`` refuse a label for the same reasons. O(len(symbols))."""
    out = []
    for s in symbols or ():
        m = LABEL.fullmatch(s)
        if m:
            L = int(m.group(2))
            # without surrounding spaces, as the summary labels it (book_labels)
            if str(names.get(L)).strip() != m.group(1):
                out.append((s, f"locate {L} is {names[L]!r}" if L in names
                            else f"locate {L} does not occur"))
    return out


def partition_arg(partition) -> tuple[int, int]:
    """``partition=(k, n)`` of a feed replayer (keep the books whose number ``% n == k``) as two
    Python ints, ``(0, 1)`` for None; the one rule of both replayers. Ints, numpy integers and
    IntEnum members are taken (as the books' integer arguments); a bool (taken for 1 or 0), a
    float or a string raises ``TypeError``; a value that is not a pair, or outside
    ``0 <= k < n < 2**63``, ``ValueError``. O(1)."""
    if partition is None:
        return 0, 1
    try:
        k, n = partition
    except (TypeError, ValueError):
        raise ValueError(f"partition must be (k, n) with 0 <= k < n < 2**63, "
                         f"not {partition!r}") from None
    wk, wn = whole_number(k), whole_number(n)
    if wk is None or wn is None:
        raise TypeError(f"partition must be (k, n) of integers, not {partition!r}")
    if not 0 <= wk < wn < 2**63:
        raise ValueError(f"partition must be (k, n) with 0 <= k < n < 2**63, not {partition!r}")
    return wk, wn
