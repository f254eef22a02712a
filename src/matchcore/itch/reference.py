"""A deliberately naive, pure-Python ITCH 5.0 book builder: the executable specification of the
replay semantics, for tests and as the baseline of the replay benchmark.

It shares no code with the compiled decoder: its message formats are ``struct`` format strings
written from the specification, each message is unpacked in Python, orders live in a plain dict
and each book side is a dict ``price -> {ref: open shares}`` (dicts keep insertion order, which
is the FIFO queue of the level).

Semantics (the compiled :class:`~matchcore.itch.Replayer` follows the same rules):

* A/F rest an order (side B/S, shares > 0, price > 0, reference not open; else skipped and
  counted as invalid or duplicate);
* E/C/X/D/U find the order by reference in the book of the stock locate the message carries
  (real files always repeat the add's locate); a reference that is not open there is counted in
  ``unknown_refs`` and skipped;
* E/C/X take ``min(shares, open)`` off the order (counted as clamped when larger); the order
  leaves at zero; zero shares change nothing and are counted in ``invalid_reductions``;
* D removes the order; U removes the original and rests the new reference with the same side at
  the back of its new price (only when the original is open). A U with zero shares or a zero
  price (``invalid_replaces``) or a new reference already open (``duplicate_refs``) changes
  nothing: the original stays.

>>> from matchcore.itch import generate
>>> ref = ReferenceReplay()
>>> n = ref.feed(generate(None, messages=1000, symbols=2, seed=5))
>>> ref.messages, ref.unknown_refs
(1000, 0)
"""
from __future__ import annotations

import struct

__all__ = ["ReferenceReplay", "LENGTH_BY_TYPE"]

# Total message lengths from the specification (type byte included).
LENGTH_BY_TYPE = {
    b"S": 12, b"R": 39, b"H": 25, b"Y": 20, b"L": 26, b"V": 35, b"W": 12, b"K": 28, b"J": 35,
    b"h": 21, b"A": 36, b"F": 40, b"E": 31, b"C": 36, b"X": 23, b"D": 19, b"U": 35, b"P": 44,
    b"Q": 40, b"B": 19, b"I": 50, b"N": 20, b"O": 48,
}

# Header: type, stock locate, tracking number, 6-byte timestamp.
_ADD = struct.Struct(">cHH6sQcI8sI")            # A (F adds a 4-byte attribution)
_EXEC = struct.Struct(">cHH6sQIQ")              # E
_EXEC_PRICE = struct.Struct(">cHH6sQIQcI")      # C
_CANCEL = struct.Struct(">cHH6sQI")             # X
_DELETE = struct.Struct(">cHH6sQ")              # D
_REPLACE = struct.Struct(">cHH6sQQII")          # U
_TS = struct.Struct(">HI")


def _ts(raw6: bytes) -> int:
    hi, lo = _TS.unpack(raw6)
    return (hi << 32) | lo


def _name(stock: bytes, locate: int) -> str:
    """A book's name from an 8-byte stock field: latin-1, trailing spaces and NULs removed;
    an empty one is the locate number."""
    return stock.decode("latin-1").rstrip(" \x00") or str(locate)


class ReferenceReplay:
    """Pure-Python market-by-order books per stock locate from ITCH 5.0 bytes. O(1) dict work
    per message, but every message goes through the interpreter (about 1 M messages/s)."""

    def __init__(self, infer_lengths: bool = False):
        # the compiled Replayer's rule for a flag (a truth test took "no" for True)
        from matchcore._core import _flag_arg
        self.infer_lengths = _flag_arg(infer_lengths, "infer_lengths")
        self.orders: dict[tuple, list] = {}          # (locate, ref) -> [locate, side, price, shares]
        self.books: dict[int, tuple[dict, dict]] = {}  # locate -> (bids, asks)
        self.names: dict[int, str] = {}
        self.counts: dict[str, int] = {}
        self.messages = 0
        self.unknown_refs = 0
        self.executions_clamped = 0
        self.cancels_clamped = 0
        self.duplicate_refs = 0
        self.invalid_adds = 0
        self.invalid_replaces = 0
        self.invalid_reductions = 0
        self.last_ts = 0
        self.consumed = 0

    # ---- input ----

    def feed(self, data: bytes, until_ns: int | None = None, max_messages: int | None = None) -> int:
        """Apply every complete message of ``data`` (standard framing, or zero prefixes with
        ``infer_lengths``); returns the bytes consumed. Raises ValueError on a bad prefix."""
        pos, n, done = 0, len(data), 0
        while pos + 3 <= n:
            if max_messages is not None and done >= max_messages:
                break
            prefix = int.from_bytes(data[pos:pos + 2], "big")
            t = data[pos + 2:pos + 3]
            if self.infer_lengths:
                length = LENGTH_BY_TYPE.get(t)
                if length is None or prefix not in (0, length):
                    raise ValueError(f"bad frame at offset {pos}")
            else:
                length = prefix
                if length == 0 or (t in LENGTH_BY_TYPE and LENGTH_BY_TYPE[t] != length):
                    raise ValueError(f"bad length prefix at offset {pos}")
            if pos + 2 + length > n:
                break
            msg = data[pos + 2:pos + 2 + length]
            if until_ns is not None and t in LENGTH_BY_TYPE and _ts(msg[5:11]) > until_ns:
                break
            self.apply(msg)
            done += 1
            pos += 2 + length
        self.consumed += pos
        return pos

    def apply(self, msg: bytes) -> int | None:
        """Apply one message (type byte first); returns the locate whose book it touched."""
        t = msg[:1]
        key = t.decode("latin-1")
        self.counts[key] = self.counts.get(key, 0) + 1
        self.messages += 1
        if t not in LENGTH_BY_TYPE:
            return None
        self.last_ts = _ts(msg[5:11])
        if t == b"A" or t == b"F":
            _, locate, _, _, ref, side, shares, stock, price = _ADD.unpack_from(msg)
            self.names.setdefault(locate, _name(stock, locate))
            return self._add(ref, locate, side, shares, price)
        if t == b"E":
            _, locate, _, _, ref, shares, _ = _EXEC.unpack(msg)
            return self._reduce((locate, ref), shares, True)
        if t == b"C":
            _, locate, _, _, ref, shares, _, _, _ = _EXEC_PRICE.unpack(msg)
            return self._reduce((locate, ref), shares, True)
        if t == b"X":
            _, locate, _, _, ref, shares = _CANCEL.unpack(msg)
            return self._reduce((locate, ref), shares, False)
        if t == b"D":
            _, locate, _, _, ref = _DELETE.unpack(msg)
            o = self.orders.pop((locate, ref), None)
            if o is None:
                self.unknown_refs += 1
                return None
            self._unlink(ref, o)
            return o[0]
        if t == b"U":
            _, locate, _, _, old, new, shares, price = _REPLACE.unpack(msg)
            o = self.orders.get((locate, old))
            if o is None:
                self.unknown_refs += 1
                return None
            if shares == 0 or price == 0:
                self.invalid_replaces += 1
                return None
            if new != old and (locate, new) in self.orders:
                self.duplicate_refs += 1
                return None
            del self.orders[(locate, old)]
            self._unlink(old, o)
            self._add(new, o[0], b"B" if o[1] == 0 else b"S", shares, price)
            return o[0]
        locate = int.from_bytes(msg[1:3], "big")
        if t == b"R":
            self.names[locate] = _name(msg[11:19], locate)
        elif t == b"H" or t == b"P":
            # a trading action names a locate not named yet, as its first trade does
            self.names.setdefault(locate, _name(msg[11:19] if t == b"H" else msg[24:32], locate))
        elif t == b"Q":
            self.names.setdefault(locate, _name(msg[19:27], locate))
        return None

    # ---- book rules ----

    def _add(self, ref, locate, side, shares, price):
        if side not in (b"B", b"S") or shares == 0 or price == 0:
            self.invalid_adds += 1
            return None
        if (locate, ref) in self.orders:
            self.duplicate_refs += 1
            return None
        s = 0 if side == b"B" else 1
        self.orders[(locate, ref)] = [locate, s, price, shares]
        level = self.books.setdefault(locate, ({}, {}))[s].setdefault(price, {})
        level[ref] = shares
        return locate

    def _reduce(self, key, shares, is_exec):
        o = self.orders.get(key)
        if o is None:
            self.unknown_refs += 1
            return None
        if shares == 0:
            self.invalid_reductions += 1
            return None
        take = shares
        if shares > o[3]:
            take = o[3]
            if is_exec:
                self.executions_clamped += 1
            else:
                self.cancels_clamped += 1
        o[3] -= take
        if o[3] == 0:
            del self.orders[key]
            self._unlink(key[1], o)
        else:
            self.books[o[0]][o[1]][o[2]][key[1]] = o[3]
        return o[0]

    def _unlink(self, ref, o):
        side = self.books[o[0]][o[1]]
        level = side[o[2]]
        del level[ref]
        if not level:
            del side[o[2]]

    # ---- queries ----

    def depth(self, locate: int) -> tuple[list, list]:
        """(bids, asks): lists of (price, qty, orders), best first, every level."""
        bids, asks = self.books.get(locate, ({}, {}))
        out = []
        for side, rev in ((bids, True), (asks, False)):
            out.append([(p, sum(side[p].values()), len(side[p]))
                        for p in sorted(side, reverse=rev)])
        return out[0], out[1]

    def level(self, locate: int, side: int, price: int) -> list[tuple[int, int]]:
        """[(ref, open shares)] of a level in FIFO order."""
        return list(self.books.get(locate, ({}, {}))[side].get(price, {}).items())

    def best(self, locate: int) -> tuple[int, int, int, int]:
        """(bid, bid_qty, ask, ask_qty) with 0 for an empty side."""
        bids, asks = self.depth(locate)
        b = bids[0][:2] if bids else (0, 0)
        a = asks[0][:2] if asks else (0, 0)
        return (b[0], b[1], a[0], a[1])

    def diff(self, replayer, *, fifo: bool = True) -> str | None:
        """Compare with a compiled :class:`~matchcore.itch.Replayer`: every locate's full depth
        (price, qty, orders per level) and, with ``fifo``, every level's queue (refs and open
        shares in order). Returns a description of the first difference, or None when equal.
        O(orders)."""
        from matchcore._core import _flag_arg
        fifo = _flag_arg(fifo, "fifo")
        books = replayer.books
        locates = {loc for loc, (b, a) in self.books.items() if b or a} | set(books)
        for loc in sorted(locates):
            want_bids, want_asks = self.depth(loc)
            book = books.get(loc)
            if book is None:
                return f"locate {loc}: the reference has orders, the replay has no book"
            bids, asks = book.depth_orders(1 << 30)
            for name, got, want in (("bid", bids, want_bids), ("ask", asks, want_asks)):
                got = [tuple(int(x) for x in row) for row in got]
                if got != want:
                    k = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w),
                             min(len(got), len(want)))
                    return (f"locate {loc}: {name} depth differs at level {k + 1}: replay "
                            f"{got[k:k + 1]}, reference {want[k:k + 1]} "
                            f"({len(got)} vs {len(want)} levels)")
            if fifo:
                for side, rows in ((0, want_bids), (1, want_asks)):
                    for price, _, _ in rows:
                        got = [(int(o), int(q)) for o, q in book.level(side, price)]
                        if got != self.level(loc, side, price):
                            return f"locate {loc} side {side} price {price}: queue differs"
        return None
