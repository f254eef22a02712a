"""The matching rules checked from the events alone, independently of both books.

The property tests hold the compiled book equal to the reference model, so a rule both get wrong
the same way passes them. ``EventLedger`` keeps its own account of the resting orders, built only
from what the events of each call say, and checks every event against the stated rules before
applying it: price-time priority (each fill takes the oldest order of the best opposite level),
fills at the maker's price and within the aggressor's limit, every event stamped with its
call's time and the fields its kind does not use left 0, quantities conserved (an accepted
order's quantity is filled, rested or expired, nothing else), self-trade prevention as the mode
says, FOK all or nothing, post-only never taking liquidity, refusals only when the rule says so,
and, after the call, no resting order that the aggressor could still have traded with. After each
call the book must hold exactly the ledger's orders, in the ledger's FIFO order, and its clock
must be the time of the last call it took. A per-call method's result is held to its events
as well: the lots traded, cancelled or taken, whether a modify was made, and which refusals
raise ``OrderRejected`` rather than return.
"""
from __future__ import annotations

from matchcore._enums import STP, TIF, EventKind, OrderRejected, Reason

BUY, SELL = 0, 1
_K = EventKind
_UNSEEN = object()      # apply() without a per-call result (a batch, or a call not made)


class LedgerError(AssertionError):
    pass


def _crosses(side, limit, maker_price):
    """Whether an aggressor of ``side`` limited at ``limit`` (0: market) trades at maker_price."""
    if limit == 0:
        return True
    return maker_price <= limit if side == BUY else maker_price >= limit


class EventLedger:
    """Resting orders as the events tell them: oid -> [side, price, qty, owner, post_only, seq]."""

    def __init__(self, stp, allow_crossed=False):
        self.stp = STP(stp)
        # place() rests without matching: the book may then be locked or crossed
        self.allow_crossed = allow_crossed
        self.orders: dict[int, list] = {}
        self.seq = 0
        # the book's clock: the time of the last call it took (a refused one leaves it)
        self.clock = 0

    # ------------------------------------------------------------------ the book as told

    def _queue(self, side):
        """The resting orders of one side, best price first, oldest first within a price."""
        rows = [(oid, o) for oid, o in self.orders.items() if o[0] == side]
        sign = -1 if side == BUY else 1
        return sorted(rows, key=lambda r: (sign * r[1][1], r[1][5]))

    def _head(self, side):
        q = self._queue(side)
        return q[0] if q else None

    def _rest(self, oid, side, price, qty, owner, post_only):
        self.seq += 1
        self.orders[oid] = [side, price, qty, owner, post_only, self.seq]

    # ------------------------------------------------------------------ one call

    def apply(self, call: dict, events, result=_UNSEEN) -> None:
        """Check and apply the events of one call. ``call``: {"kind": "submit" | "market" |
        "cancel" | "modify" | "place" | "reduce", "oid", "ts_ns" (the time every event of the
        call carries; 0 if absent), for a submit "tif" and "post_only", for a reduce "qty" and
        "execution"}. ``result``, when given: what the per-call method returned, or the
        ``OrderRejected`` it raised, held to what the events say it must be."""
        rows = [dict(zip(events.dtype.names, e)) for e in events.tolist()]
        rows = [{k: int(v) for k, v in r.items()} for r in rows]
        if result is not _UNSEEN and rows:
            self._check_result(call, rows, result)
        stamps = {r["ts_ns"] for r in rows} - {call.get("ts_ns", 0)}
        if stamps:
            raise LedgerError(f"events of a call at ts_ns={call.get('ts_ns', 0)} stamped "
                              f"{sorted(stamps)}\n  call: {call}\n  events: {rows}")
        for r in rows:
            # the fields an event of its kind does not use stay 0 (a stale maker, a reason
            # on an accepted order would read as facts), and a single book is symbol 0
            kind = _K(r["kind"])
            unused = {"maker_id": r["maker_id"], "maker_owner": r["maker_owner"],
                      "symbol": r["symbol"]} if kind != _K.FILL else {"symbol": r["symbol"]}
            if kind in (_K.ACCEPTED, _K.FILL, _K.MODIFIED):
                unused["reason"] = r["reason"]
            if any(unused.values()):
                raise LedgerError(f"{kind.name} event with {unused}\n  call: {call}\n  "
                                  f"events: {rows}")
        try:
            self._apply(call, rows)
        except LedgerError as exc:
            raise LedgerError(f"{exc}\n  call: {call}\n  events: {rows}") from None
        if rows[0]["kind"] != _K.REJECTED:
            self.clock = call.get("ts_ns", 0)

    def _fail(self, msg):
        raise LedgerError(msg)

    def _check_result(self, call, rows, result):
        """A per-call method's return value (or refusal raised) as its documentation states it
        from the call's events: both books can agree on a wrong one, as on a wrong event."""
        kind, first = call["kind"], rows[0]
        refused = first["kind"] == _K.REJECTED
        reason = Reason(first["reason"]) if refused else None
        # the refusals each method raises (OrderRejected); the others it returns
        raises = {"submit": reason not in (None, Reason.POST_ONLY_WOULD_CROSS),
                  "market": reason is not None,
                  "place": reason is not None,
                  "cancel": False,
                  "modify": reason in (Reason.INVALID_QTY, Reason.INVALID_PRICE),
                  "reduce": reason == Reason.INVALID_QTY}[kind]
        if raises:
            want = ("raised", int(reason))
        elif kind in ("submit", "market"):
            # the lots this call traded as the aggressor
            want = 0 if refused else sum(r["qty"] for r in rows if r["kind"] == _K.FILL)
        elif kind == "cancel":
            want = 0 if refused else first["qty"]
        elif kind == "modify":
            want = not refused
        elif kind == "reduce":
            want = 0 if refused else first["qty"]
        else:
            want = None
        got = result
        if isinstance(result, OrderRejected):
            got = ("raised", int(result.reason))
            if result.order_id != call["oid"]:
                self._fail(f"{kind} raised OrderRejected for order {result.order_id}; its "
                           f"events say order {call['oid']}")
        if got != want or type(got) is not type(want):
            self._fail(f"{kind} of order {call['oid']} gave {got!r}; its events say {want!r}")

    def _apply(self, call, rows):
        kind, oid = call["kind"], call["oid"]
        if not rows:
            self._fail("a call wrote no event")
        first, rest = rows[0], rows[1:]
        self._check_echo(call, first)
        if kind == "reduce" and first["kind"] != _K.REJECTED:
            self._reduce(call, rows)
            return
        if first["order_id"] != oid:
            self._fail(f"first event is about order {first['order_id']}, the call about {oid}")
        if first["kind"] == _K.REJECTED:
            if rest:
                self._fail("events after a REJECTED")
            self._check_refusal(call, first)
            return
        if kind == "cancel":
            o = self.orders.get(oid)
            if o is None:
                self._fail(f"cancel of order {oid}, which does not rest, was not refused")
            if rest or first["kind"] != _K.CANCELLED or first["reason"] != Reason.CANCEL_REQUESTED:
                self._fail("a cancel writes one CANCELLED (CANCEL_REQUESTED)")
            self._same_order(first, o, qty=o[2])
            del self.orders[oid]
            return
        if kind == "modify":
            o = self.orders.get(oid)
            if o is None:
                self._fail(f"modify of order {oid}, which does not rest, was not refused")
            if first["kind"] != _K.MODIFIED:
                self._fail("a modify starts with MODIFIED")
            side, price, qty, owner, post_only, _ = o
            if (first["side"], first["owner"]) != (side, owner):
                self._fail("MODIFIED changed the order's side or owner")
            new_price, new_qty = first["price"], first["qty"]
            if new_price == price and new_qty <= qty:
                if rest:
                    self._fail("an in-place modify writes one event")
                o[2] = new_qty              # keeps its place in the queue
                return
            if post_only and self._would_cross(side, new_price):
                self._fail("a post-only re-entry that crosses was accepted")
            del self.orders[oid]            # leaves its level, re-enters as a GTC order
            self._aggress(oid, side, new_price, new_qty, owner, TIF.GTC, post_only, rest)
            return
        if first["kind"] != _K.ACCEPTED:
            self._fail(f"an order entry starts with ACCEPTED or REJECTED, not {first['kind']}")
        if oid in self.orders:
            self._fail(f"order {oid} accepted while an order of that id rests")
        if kind == "place":
            if rest:
                self._fail("place writes ACCEPTED alone: it never matches")
            self._rest(oid, first["side"], first["price"], first["qty"], first["owner"], False)
            return
        market = kind == "market"
        if market and first["price"] != 0:
            self._fail("a market order's ACCEPTED carries price 0")
        tif = TIF.IOC if market else TIF(call["tif"])
        post_only = bool(call.get("post_only")) and not market
        if post_only and self._would_cross(first["side"], first["price"]):
            self._fail("a crossing post-only order was accepted")
        self._aggress(oid, first["side"], first["price"], first["qty"], first["owner"], tif,
                      post_only, rest, market=market)

    def _entry_reason(self, call):
        """The refusal the rules give an order entry (Reason.NONE: taken), the checks in their
        documented order: qty, price, side, TIF, a resting id, a post-only cross."""
        kind, side, price = call["kind"], call["side"], call["price"]
        if call["qty"] <= 0:
            return Reason.INVALID_QTY
        if kind != "market" and price <= 0:
            return Reason.INVALID_PRICE
        if side not in (BUY, SELL):
            return Reason.INVALID_SIDE
        if kind == "submit" and call["tif"] not in (TIF.GTC, TIF.IOC, TIF.FOK):
            return Reason.INVALID_TIF
        if call["oid"] in self.orders:
            return Reason.DUPLICATE_ORDER_ID
        if kind == "submit" and call.get("post_only") and self._would_cross(side, price):
            return Reason.POST_ONLY_WOULD_CROSS
        return Reason.NONE

    def _modify_reason(self, call):
        qty, price = call["qty"], call["price"]
        o = self.orders.get(call["oid"])
        if qty <= 0:
            return Reason.INVALID_QTY
        if price < 0:
            return Reason.INVALID_PRICE
        if o is None:
            return Reason.ORDER_NOT_FOUND
        new_price = price or o[1]
        if not (new_price == o[1] and qty <= o[2]) and o[4] and self._would_cross(o[0], new_price):
            return Reason.POST_ONLY_WOULD_CROSS
        return Reason.NONE

    def _check_echo(self, call, first):
        """The first event of a call against the call's own arguments: taken or refused as the
        rules say, with the reason they give, and carrying the order's id, side, price, qty and
        owner as the call gave them (or as the resting order has them), whatever both books
        agree on. Only for a call given with its arguments (kind, oid and ts_ns alone: not
        checked)."""
        kind, oid = call["kind"], call["oid"]
        if "qty" not in call and "owner" not in call:
            return
        rejected = first["kind"] == _K.REJECTED
        o = self.orders.get(oid)
        if kind in ("submit", "market", "place"):
            want = self._entry_reason(call)
            side = call["side"] if 0 <= call["side"] <= 255 else 255
            expect = (oid, side, call["price"], call["qty"], call["owner"])
        elif kind == "cancel":
            want = Reason.NONE if o is not None else Reason.ORDER_NOT_FOUND
            expect = (oid, 0, 0, 0, call["owner"]) if rejected else None
        elif kind == "modify":
            want = self._modify_reason(call)
            if want == Reason.NONE:
                expect = (oid, o[0], call["price"] or o[1], call["qty"], o[3])
            elif want == Reason.POST_ONLY_WOULD_CROSS:
                expect = (oid, o[0], call["price"] or o[1], call["qty"], o[3])
            else:
                # about the resting order if there is one, else about the sender
                expect = (oid, o[0] if o else 0, call["price"], call["qty"],
                          o[3] if o else call["owner"])
        elif kind == "reduce":
            want = (Reason.INVALID_QTY if call["qty"] <= 0 else
                    Reason.ORDER_NOT_FOUND if o is None else Reason.NONE)
            mine = o is not None and want == Reason.INVALID_QTY
            expect = (oid, o[0] if mine else 0, 0, call["qty"], o[3] if mine else 0) \
                if rejected else None
        else:
            want = Reason.INVALID_COMMAND
            expect = (oid, call["side"], call["price"], call["qty"], call["owner"])
        got = Reason(first["reason"]) if rejected else None
        if got != (want or None):
            self._fail(f"{kind} of order {oid} {'refused for ' + got.name if rejected else 'taken'}"
                       f"; the rules say {'refused for ' + want.name if want else 'taken'}")
        fields = (first["order_id"], first["side"], first["price"], first["qty"], first["owner"])
        if expect is not None and fields != expect:
            self._fail(f"{kind}: first event (id, side, price, qty, owner) {fields}, the call "
                       f"says {expect}")

    def _reduce(self, call, rows):
        oid = call["oid"]
        o = self.orders.get(oid)
        if o is None:
            self._fail(f"reduce of order {oid}, which does not rest, was not refused")
        if len(rows) != 1:
            self._fail("a reduce writes one event")
        e = rows[0]
        take = min(call["qty"], o[2])
        if call.get("execution"):
            # the exchange's execution: the order is the maker, the aggressor is not known
            if (e["kind"], e["order_id"], e["maker_id"], e["owner"]) != (_K.FILL, 0, oid, 0):
                self._fail("an execution reduce writes a FILL with the order as maker")
            if (e["side"], e["price"], e["qty"], e["maker_owner"]) != (1 - o[0], o[1], take, o[3]):
                self._fail(f"execution {e} is not {take} lots of the resting order {o}")
        else:
            if e["kind"] != _K.CANCELLED or e["reason"] != Reason.CANCEL_REQUESTED \
                    or e["order_id"] != oid:
                self._fail("a reduce writes a CANCELLED (CANCEL_REQUESTED) of the order")
            self._same_order(e, o, qty=take)
        o[2] -= take                        # keeps its place in the queue
        if o[2] == 0:
            del self.orders[oid]

    def _would_cross(self, side, price):
        head = self._head(1 - side)
        return head is not None and _crosses(side, price, head[1][1])

    def _same_order(self, e, o, qty):
        if (e["side"], e["price"], e["qty"], e["owner"]) != (o[0], o[1], qty, o[3]):
            self._fail(f"event {e} does not describe the resting order {o}")

    def _check_refusal(self, call, e):
        reason, oid = e["reason"], call["oid"]
        resting = oid in self.orders
        if reason == Reason.DUPLICATE_ORDER_ID and not resting:
            self._fail(f"order {oid} refused as a duplicate, but no order of that id rests")
        if reason == Reason.ORDER_NOT_FOUND and resting:
            self._fail(f"order {oid} refused as not found, but it rests")
        if reason == Reason.POST_ONLY_WOULD_CROSS:
            side = e["side"]
            if not self._would_cross(side, e["price"]):
                self._fail(f"post-only order {oid} refused at {e['price']}, which does not cross")
        if reason == Reason.INVALID_QTY and e["qty"] > 0:
            self._fail("INVALID_QTY for a positive quantity")

    # ------------------------------------------------------------------ matching

    def _aggress(self, oid, side, limit, qty, owner, tif, post_only, rows, market=False):
        if qty <= 0:
            self._fail("an accepted order of no quantity")
        stp_on = owner != 0 and self.stp != STP.NONE
        rem = qty
        filled = 0
        ended = False                       # the remainder expired
        i = 0
        if tif == TIF.FOK and rows and rows[0]["kind"] == _K.EXPIRED \
                and rows[0]["reason"] == Reason.FOK_NOT_FILLABLE:
            if len(rows) != 1 or rows[0]["qty"] != qty:
                self._fail("a FOK that cannot fill expires whole, alone")
            if self._fok_liquidity(side, limit, owner, qty) >= qty:
                self._fail(f"FOK {oid} expired though {qty} lots were there to trade")
            return
        while i < len(rows):
            e = rows[i]
            i += 1
            if ended:
                self._fail(f"event after the remainder expired: {e}")
            k = e["kind"]
            if k == _K.FILL:
                if post_only:
                    self._fail("a post-only order took liquidity")
                if e["order_id"] != oid or e["side"] != side or e["owner"] != owner:
                    self._fail(f"FILL {e} is not of the aggressor {oid}")
                head = self._head(1 - side)
                if head is None:
                    self._fail("FILL against an empty side")
                m_oid, m = head
                if e["maker_id"] != m_oid:
                    self._fail(f"FILL against {e['maker_id']}, but the oldest order of the best "
                               f"opposite level is {m_oid}")
                if e["price"] != m[1]:
                    self._fail(f"FILL at {e['price']}, the maker rests at {m[1]}")
                if e["maker_owner"] != m[3]:
                    self._fail("FILL names another maker owner")
                if not _crosses(side, limit, m[1]):
                    self._fail(f"FILL at {m[1]} beyond the aggressor's limit {limit}")
                if stp_on and m[3] == owner:
                    self._fail(f"FILL between two orders of owner {owner} under {self.stp.name}")
                if e["qty"] != min(rem, m[2]):
                    self._fail(f"FILL of {e['qty']}, not the smaller of {rem} wanted and {m[2]} "
                               f"resting")
                m[2] -= e["qty"]
                if m[2] == 0:
                    del self.orders[m_oid]
                rem -= e["qty"]
                filled += e["qty"]
            elif k == _K.CANCELLED:
                if e["reason"] != Reason.SELF_TRADE:
                    self._fail(f"CANCELLED {e} while matching")
                if self.stp not in (STP.CANCEL_RESTING, STP.CANCEL_BOTH) or not stp_on:
                    self._fail(f"a self-trade cancel under {self.stp.name}, owner {owner}")
                if self.stp == STP.CANCEL_BOTH and (
                        i == len(rows) or rows[i]["kind"] != _K.EXPIRED
                        or rows[i]["reason"] != Reason.SELF_TRADE):
                    self._fail("under CANCEL_BOTH a self-trade cancel is followed by the "
                               "aggressor's self-trade expiry")
                head = self._head(1 - side)
                if head is None or head[0] != e["order_id"]:
                    self._fail("a self-trade cancel of an order that is not next in priority")
                m = head[1]
                if m[3] != owner or not _crosses(side, limit, m[1]):
                    self._fail("a self-trade cancel of another owner's or a non-crossing order")
                self._same_order(e, m, qty=m[2])
                del self.orders[e["order_id"]]
            elif k == _K.EXPIRED:
                if e["order_id"] != oid or e["qty"] != rem or e["side"] != side:
                    self._fail(f"EXPIRED {e} is not the aggressor's remainder {rem}")
                if e["price"] != limit:
                    self._fail("EXPIRED carries another price than the order's")
                reason = e["reason"]
                if reason == Reason.SELF_TRADE:
                    if self.stp not in (STP.CANCEL_TAKER, STP.CANCEL_BOTH) or not stp_on:
                        self._fail(f"a self-trade expiry under {self.stp.name}")
                    head = self._head(1 - side)
                    if self.stp == STP.CANCEL_BOTH and (
                            rows[i - 2]["kind"] != _K.CANCELLED if i >= 2 else True):
                        self._fail("a self-trade expiry under CANCEL_BOTH without the cancel")
                    if self.stp == STP.CANCEL_TAKER:
                        if head is None or head[1][3] != owner \
                                or not _crosses(side, limit, head[1][1]):
                            self._fail("a self-trade expiry with no own order next in priority")
                else:
                    want = (Reason.MARKET_REMAINDER if market else
                            Reason.IOC_REMAINDER if tif == TIF.IOC else None)
                    if reason != want:
                        self._fail(f"EXPIRED {Reason(reason).name} for a {tif.name} order"
                                   f"{' (market)' if market else ''}")
                    if self._would_cross(side, limit):
                        self._fail("the remainder expired while the opposite side still crossed")
                ended = True
            else:
                self._fail(f"{_K(k).name} while matching")
        if tif == TIF.FOK and rem > 0 and not ended:
            self._fail(f"FOK {oid} neither filled whole nor expired")
        if tif == TIF.FOK and ended and rem > 0:
            self._fail(f"FOK {oid} filled {filled} of {qty}")
        if rem > 0 and not ended:
            if tif != TIF.GTC or market:
                self._fail(f"a {tif.name} remainder of {rem} neither rested nor expired")
            if self._would_cross(side, limit):
                self._fail(f"order {oid} rests at {limit} while the opposite side crosses it")
            self._rest(oid, side, limit, rem, owner, post_only)

    def _fok_liquidity(self, side, limit, owner, needed):
        stp_on = owner != 0 and self.stp != STP.NONE
        total = 0
        for _, o in self._queue(1 - side):
            if not _crosses(side, limit, o[1]):
                break
            if stp_on and o[3] == owner:
                if self.stp == STP.CANCEL_RESTING:
                    continue
                break
            total += o[2]
            if total >= needed:
                break
        return total

    # ------------------------------------------------------------------ the book against it

    def apply_batch(self, commands, events) -> None:
        """Check and apply the events of a COMMAND_DTYPE batch, command by command: each
        command's events are one ACCEPTED, REJECTED, MODIFIED or requested CANCELLED, then the
        fills, self-trade cancels and expiry it caused."""
        kinds = {0: "submit", 1: "market", 2: "cancel", 3: "modify"}
        starts = [j for j, e in enumerate(events.tolist()) if self._starts_call(events[j])]
        if len(starts) != len(commands):
            raise LedgerError(f"{len(commands)} commands wrote {len(starts)} first events")
        starts.append(len(events))
        for c, a, b in zip(commands, starts, starts[1:]):
            kind = kinds.get(int(c["kind"]), "invalid")
            call = {"kind": kind, "oid": int(c["order_id"]), "side": int(c["side"]),
                    "price": 0 if kind == "market" else int(c["price"]), "qty": int(c["qty"]),
                    "tif": int(c["tif"]), "owner": int(c["owner"]),
                    "post_only": int(c["post_only"]) != 0, "ts_ns": int(c["ts_ns"])}
            self.apply(call, events[a:b])

    @staticmethod
    def _starts_call(e) -> bool:
        k = int(e["kind"])
        return k in (_K.ACCEPTED, _K.REJECTED, _K.MODIFIED) or (
            k == _K.CANCELLED and int(e["reason"]) == Reason.CANCEL_REQUESTED)

    def check_book(self, book) -> None:
        """The book holds exactly the ledger's orders, each level in the ledger's FIFO order,
        and its clock (in its snapshot's header) is the time of the last call it took."""
        clock = int.from_bytes(book.snapshot()[48:56], "little", signed=True)
        if clock != self.clock:
            raise LedgerError(f"the book's clock is {clock}, the last call it took was at "
                              f"{self.clock}")
        if len(book) != len(self.orders):
            raise LedgerError(f"the book holds {len(book)} orders, the events leave "
                              f"{len(self.orders)}")
        for side in (BUY, SELL):
            levels: dict[int, list] = {}
            for oid, o in self._queue(side):
                levels.setdefault(o[1], []).append((oid, o[2]))
            for price, queue in levels.items():
                got = book.level(side, price)
                if got != queue:
                    raise LedgerError(f"side {side} level {price}: the book holds {got}, the "
                                      f"events leave {queue}")
            if book.level_count(side) != len(levels):
                raise LedgerError(f"side {side}: {book.level_count(side)} levels in the book, "
                                  f"{len(levels)} from the events")
        bid, ask = self._head(BUY), self._head(SELL)
        if not self.allow_crossed and bid is not None and ask is not None and bid[1][1] >= ask[1][1]:
            raise LedgerError(f"crossed after matching: bid {bid[1][1]} >= ask {ask[1][1]}")
