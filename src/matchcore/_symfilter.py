"""The ``symbols=`` filter of the replay loops (ITCH, DBN), made once for both."""
from __future__ import annotations


def symbol_filter(symbols, what: str = "symbols"):
    """``None`` (keep every symbol) or the set of strings a symbol's name or number is looked up
    in. ``symbols`` is an iterable of names and numbers (int or digit strings). A lone ``str``
    is refused: iterated, ``"AAPL"`` would be the letters A, P, L and match nothing. A number
    written with leading zeros (``"01"``) also matches its plain form (locate 1). O(len)."""
    if symbols is None:
        return None
    if isinstance(symbols, (str, bytes, bytearray)):
        raise TypeError(f"{what} is an iterable of names or numbers, not a single "
                        f"{type(symbols).__name__} ({symbols!r}): write [{symbols!r}]")
    out = set()
    for s in symbols:
        s = str(s).strip()
        out.add(s)
        out.add(plain_number(s))
    return out


def plain_number(symbol: str) -> str:
    """A symbol number written with leading zeros (``"001"``) in its plain form (``"1"``), as a
    locate or instrument id is named; any other symbol unchanged."""
    return str(int(symbol)) if symbol.isascii() and symbol.isdigit() else symbol
