"""A deliberately naive, pure-Python DBN market-by-order book builder: the executable
specification of the compiled DBN replay's semantics, for the tests.

It shares no code with the compiled loop: records are unpacked with ``struct`` from the layout of
the DBN specification, orders live in a plain dict and each book side is a dict
``price -> {order_id: size}`` (dicts keep insertion order: the FIFO queue of the level).

Rules (Databento's MBO book-building guide, as the compiled replay applies them):

* A rests an order (side B/A, size > 0, 0 < price < UNDEF; else counted invalid; an id that is
  resting is counted duplicate). With F_TOB the side is emptied and, unless the price is UNDEF or
  the size 0, one level rests under the id ``TOB_OID_BASE + side``.
* C takes ``min(size, open)`` off the order (clamped when larger); the order leaves at zero; an
  id not resting is counted unknown.
* M: unknown id -> added (counted); size 0 -> removed; another side -> removed and re-added
  (counted); a new price or a larger size -> to the back of the (new) level; a smaller size ->
  reduced in place; price <= 0 or UNDEF -> counted invalid, nothing changes.
* R empties the book; T and F are trades (no book change); N nothing.
* A side other than B/A/N, or an action outside ACMRTFN, is counted (bad_sides, bad_actions) and
  the record skipped; an A with side N is an invalid add, an M with side N an invalid modify.
* The top of book of a changed book is read after a record of that book with F_LAST.
* Books are kept per (publisher_id, instrument_id), numbered in order of first appearance.
"""
from __future__ import annotations

import struct

MBO = struct.Struct("<BBHIQQqIBBccQiI")     # header + MBO body, 56 bytes
assert MBO.size == 56
UNDEF_PRICE = (1 << 63) - 1
TOB_OID_BASE = 0xFFFFFFFFFFFFFFF0
F_LAST = 0x80
F_TOB = 0x40
BUY, SELL = 0, 1
SIDES = {b"B": BUY, b"A": SELL}


class RefBook:
    def __init__(self):
        self.orders: dict[int, list] = {}              # oid -> [side, price, size]
        self.sides: list[dict[int, dict[int, int]]] = [{}, {}]

    def rest(self, oid, side, price, size):
        self.orders[oid] = [side, price, size]
        self.sides[side].setdefault(price, {})[oid] = size

    def remove(self, oid):
        side, price, _ = self.orders.pop(oid)
        lvl = self.sides[side][price]
        del lvl[oid]
        if not lvl:
            del self.sides[side][price]

    def set_size(self, oid, size):
        o = self.orders[oid]
        o[2] = size
        self.sides[o[0]][o[1]][oid] = size

    def best(self, side):
        lv = self.sides[side]
        if not lv:
            return 0, 0
        p = max(lv) if side == BUY else min(lv)
        return p, sum(lv[p].values())

    def depth(self, side):
        lv = self.sides[side]
        prices = sorted(lv, reverse=(side == BUY))
        return [(p, sum(lv[p].values()), len(lv[p])) for p in prices]


class RefReplay:
    """Records in, books and sinks out; counters named as the compiled replay's stats."""

    def __init__(self, tob_on_last=True):
        self.books: dict[int, RefBook] = {}      # book number -> book
        self.number: dict[tuple, int] = {}       # (publisher, instrument id) -> book number
        self.tob: list[tuple] = []
        self.trades: list[tuple] = []
        self.last_tob: dict[int, tuple] = {}
        self.pending: set[int] = set()
        self.tob_on_last = tob_on_last
        self.c = dict.fromkeys(
            ["unknown_refs", "cancels_clamped", "duplicate_refs", "invalid_adds",
             "invalid_modifies", "modifies_as_adds", "side_changes", "tob_adds", "clears",
             "bad_actions", "bad_sides"], 0)
        self.messages = 0

    def _rest(self, b, oid, side, price, size):
        if size <= 0 or price <= 0 or price == UNDEF_PRICE:
            self.c["invalid_adds"] += 1
            return False
        if oid in b.orders:
            self.c["duplicate_refs"] += 1
            return False
        b.rest(oid, side, price, size)
        return True

    def apply(self, rec: bytes):
        (_, _, pub, iid, _, oid, price, size, flags, _, action, side_ch, ts, _, seq) = \
            MBO.unpack(rec)
        # a book per instrument and publisher: each venue's orders and clears are its own
        L = self.number.setdefault((pub, iid), len(self.number))
        b = self.books.setdefault(L, RefBook())
        self.messages += 1
        if action not in b"ACMRTFN":
            self.c["bad_actions"] += 1
            return
        if side_ch not in (b"A", b"B", b"N"):
            self.c["bad_sides"] += 1
            return
        side = SIDES.get(side_ch)
        changed = False
        if action == b"A":
            if side is None:
                self.c["invalid_adds"] += 1
            elif flags & F_TOB:
                self.c["tob_adds"] += 1
                for o in [o for o, v in b.orders.items() if v[0] == side]:
                    b.remove(o)
                    changed = True
                if price != UNDEF_PRICE and size > 0:
                    changed |= self._rest(b, TOB_OID_BASE + side, side, price, size)
            else:
                changed = self._rest(b, oid, side, price, size)
        elif action == b"C":
            o = b.orders.get(oid)
            if o is None:
                self.c["unknown_refs"] += 1
            else:
                take = size
                if take > o[2]:
                    take = o[2]
                    self.c["cancels_clamped"] += 1
                if take > 0:
                    changed = True
                    if take == o[2]:
                        b.remove(oid)
                    else:
                        b.set_size(oid, o[2] - take)
        elif action == b"M":
            if side is None or price <= 0 or price == UNDEF_PRICE:
                self.c["invalid_modifies"] += 1
            elif oid not in b.orders:
                self.c["modifies_as_adds"] += 1
                changed = self._rest(b, oid, side, price, size)
            else:
                o_side, o_price, o_size = b.orders[oid]
                changed = True
                if size <= 0:
                    b.remove(oid)
                elif o_side != side:
                    self.c["side_changes"] += 1
                    b.remove(oid)
                    self._rest(b, oid, side, price, size)
                elif o_price != price or size > o_size:
                    b.remove(oid)
                    self._rest(b, oid, side, price, size)
                elif size < o_size:
                    b.set_size(oid, size)
                else:
                    changed = False
        elif action == b"R":
            self.c["clears"] += 1
            if b.orders:
                b.orders.clear()
                b.sides = [{}, {}]
                changed = True
        elif action in (b"T", b"F"):
            kind = action
            s = {BUY: b"B", SELL: b"S"}.get(side, b" ")
            self.trades.append((ts, oid, seq, price, size, L, kind, s))
        if changed:
            self.pending.add(L)
        if L in self.pending and (flags & F_LAST or not self.tob_on_last):
            self.pending.discard(L)
            bp, bq = b.best(BUY)
            ap, aq = b.best(SELL)
            cur = (bp, bq, ap, aq)
            if self.last_tob.get(L, (0, 0, 0, 0)) != cur:
                self.last_tob[L] = cur
                self.tob.append((ts, bp, bq, ap, aq, L))

    def feed_records(self, records):
        for rec in records:
            self.apply(rec)
        return self
