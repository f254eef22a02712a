"""Stateful property test: the Engine against one ReferenceBook per symbol.

The model routes by hand what the engine routes in compiled code: a symbol's limits checked in
Python, one order-id space (an id resting in any symbol's book is a duplicate in every one),
cancels and modifies sent to the book the id rests in, and REJECTED events of ids that rest
nowhere echoing the command's symbol. Each step compares the return value or exception, every
event, and the observable state of every symbol, its book's clock included (the time of the
last command that book took); refused configuration calls must change
neither the state hash nor the pending events, and a refused order (by id or by name, or
entered on a symbol's own book) no byte of the engine's pickle, clocks included; copies and
pickles continue as the original. Batches run through process() (with and without out=)
or through EngineMetrics.process(), whose counts must be those of the model's events. Now and
then a symbol's book is added with a capacity of 0 to 5 orders, so that it grows mid-call.
"""
from __future__ import annotations

import copy
import os
import pickle
import shutil
import tempfile

import numpy as np
from conftest import assert_events_equal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import matchcore as mc
from matchcore import ReferenceBook
from matchcore._enums import COMMAND_DTYPE, EVENT_DTYPE, EventKind, OrderRejected, Reason
from matchcore._engine import Engine
from matchcore.durability import load_snapshot

try:
    from matchcore.io.metrics import EngineMetrics
    import prometheus_client  # noqa: F401
except ImportError:             # without the metrics extra the batches run through process()
    EngineMetrics = None

SOAK = os.environ.get("MATCHCORE_SOAK") == "1"

symbols = st.integers(0, 3)           # 3 is never added: an unregistered symbol id
# now and then a value at the limit of its type: ids 0 and 2**64-1 (and one past int64) in the
# engine's id routing, a buy at 2**63-1 crossing everything (and a notional far past int64),
# the largest owner, the clock's extremes
EDGE_IDS = [0, 2**63, 2**64 - 1]
prices = st.one_of(st.integers(90, 110), st.integers(90, 110), st.integers(90, 110),
                   st.sampled_from([1, 2**63 - 1]))
qtys = st.integers(1, 25)
owners = st.one_of(st.integers(0, 2), st.integers(0, 2), st.just(2**64 - 1))
ts = st.one_of(st.integers(0, 2**40), st.integers(0, 2**40), st.sampled_from([-(2**63), 2**63 - 1]))
oids = st.one_of(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40),
                 st.sampled_from(EDGE_IDS))
maybe_bad_qty = st.one_of(qtys, qtys, qtys, qtys, qtys, st.sampled_from([0, -1]))
maybe_bad_price = st.one_of(prices, prices, prices, prices, prices, st.sampled_from([0, -1]))
sides = st.one_of(st.sampled_from([0, 1]), st.sampled_from([0, 1]), st.sampled_from([0, 1]),
                  st.just(2))
tifs = st.one_of(st.sampled_from([0, 1, 2]), st.sampled_from([0, 1, 2]), st.just(3))
limit_sets = st.fixed_dictionaries({}, optional={
    "tick": st.sampled_from([1, 2, 5]),
    "min_price": st.sampled_from([0, 92, 95]),
    "max_price": st.sampled_from([0, 105, 108]),
    "ref_price": st.sampled_from([0, 98, 100, 103]),
    "band": st.sampled_from([0, 3, 6]),
    "max_qty": st.sampled_from([0, 10, 20]),
    "max_notional": st.sampled_from([0, 1000, 2000]),
})
# a book's room for orders: now and then almost none, so that its pools and id index grow in
# the middle of a sweep or a batch (a default book never holds enough orders to grow)
capacities = st.sampled_from([1024, 1024, 1024, 0, 1, 5])
NO_LIMITS = {"tick": 1, "min_price": 0, "max_price": 0, "ref_price": 0, "band": 0, "max_qty": 0,
             "max_notional": 0}


def _limit_reason(lim, price, qty):
    """The first limit a limit order breaks (Reason.NONE if none), as the engine documents."""
    if lim["tick"] > 1 and price % lim["tick"]:
        return Reason.PRICE_NOT_ON_TICK
    if (lim["min_price"] and price < lim["min_price"]) or (lim["max_price"]
                                                          and price > lim["max_price"]):
        return Reason.PRICE_OUTSIDE_BAND
    if lim["band"] and lim["ref_price"] and abs(price - lim["ref_price"]) > lim["band"]:
        return Reason.PRICE_OUTSIDE_BAND
    if lim["max_qty"] and qty > lim["max_qty"]:
        return Reason.QTY_ABOVE_MAX
    if lim["max_notional"] and price * qty > lim["max_notional"]:
        return Reason.NOTIONAL_ABOVE_MAX
    return Reason.NONE


def _event(ts_ns, oid, side, price, qty, owner, symbol, reason):
    ev = np.zeros(1, EVENT_DTYPE)
    ev["ts_ns"], ev["order_id"], ev["side"], ev["price"] = ts_ns, oid, side, price
    ev["qty"], ev["owner"], ev["symbol"] = qty, owner, symbol
    ev["kind"], ev["reason"] = EventKind.REJECTED, reason
    return ev


def _price_in_range(price):
    """A price moved from a valid one, kept a valid one (near 1 and 2**63-1 too)."""
    return min(max(price, 1), 2**63 - 1)


def _side_byte(side):
    return side if 0 <= side <= 255 else 255


class EngineModel:
    """One ReferenceBook per symbol behind the engine's routing and limits, in Python."""

    def __init__(self, stp):
        self.stp = stp
        self.books: dict[int, ReferenceBook] = {}
        self.limits: dict[int, dict] = {}
        # each book's clock: the time of the last command that book took (a command the engine
        # or the book refused moves none)
        self.clocks: dict[int, int] = {}

    def add_symbol(self, sym, limits):
        self.books[sym] = ReferenceBook(self.stp)
        self.limits[sym] = dict(NO_LIMITS, **limits)
        self.clocks[sym] = 0

    def rests_in(self, oid):
        for sym, book in self.books.items():
            if book.get(oid) is not None:
                return sym
        return None

    def command(self, c):
        """One COMMAND_DTYPE row as a dict: (result, events), result as process() sees it:
        ('ok', value) or ('rejected', reason)."""
        kind, sym, oid = c["kind"], c["symbol"], c["order_id"]
        t = c["ts_ns"]
        one = np.zeros(1, COMMAND_DTYPE)
        for name in COMMAND_DTYPE.names:
            one[name] = c[name]
        if kind in (mc.CommandKind.SUBMIT, mc.CommandKind.MARKET):
            market = kind == mc.CommandKind.MARKET
            price = 0 if market else c["price"]
            if sym not in self.books:
                return (Reason.UNKNOWN_SYMBOL,
                        _event(t, oid, _side_byte(c["side"]), price, c["qty"], c["owner"], sym,
                               Reason.UNKNOWN_SYMBOL))
            fields_ok = c["qty"] > 0 and c["side"] in (0, 1) and (
                market or (c["price"] > 0 and c["tif"] in (0, 1, 2)))
            reason = Reason.NONE
            if fields_ok:
                lim = self.limits[sym]
                if market:
                    if lim["max_qty"] and c["qty"] > lim["max_qty"]:
                        reason = Reason.QTY_ABOVE_MAX
                else:
                    reason = _limit_reason(lim, c["price"], c["qty"])
                if reason == Reason.NONE:
                    where = self.rests_in(oid)
                    if where is not None and where != sym:
                        reason = Reason.DUPLICATE_ORDER_ID
            if reason != Reason.NONE:
                return reason, _event(t, oid, c["side"], price, c["qty"], c["owner"], sym, reason)
            return None, self._run(sym, one)
        if kind == mc.CommandKind.CANCEL:
            where = self.rests_in(oid)
            if where is None:
                return None, _event(t, oid, 0, 0, 0, c["owner"], sym, Reason.ORDER_NOT_FOUND)
            return None, self._run(where, one)
        if kind == mc.CommandKind.MODIFY:
            where = self.rests_in(oid)
            qty, price = c["qty"], c["price"]
            if where is None:
                reason = (Reason.INVALID_QTY if qty <= 0 else Reason.INVALID_PRICE if price < 0
                          else Reason.ORDER_NOT_FOUND)
                return None, _event(t, oid, 0, price, qty, c["owner"], sym, reason)
            if qty > 0 and price >= 0:
                side, old_price, open_qty = self.books[where].get(oid)
                new_price = price or old_price
                if new_price != old_price or qty > open_qty:
                    reason = _limit_reason(self.limits[where], new_price, qty)
                    if reason != Reason.NONE:
                        owner = self._owner(where, oid)
                        return reason, _event(t, oid, side, new_price, qty, owner, where, reason)
            return None, self._run(where, one)
        return None, _event(t, oid, c["side"], c["price"], c["qty"], c["owner"], sym,
                            Reason.INVALID_COMMAND)

    def _owner(self, sym, oid):
        return self.books[sym]._orders[oid].owner

    def _run(self, sym, one):
        ev = self.books[sym].process(one)
        ev["symbol"] = sym
        if ev["kind"][0] != EventKind.REJECTED:
            self.clocks[sym] = int(one["ts_ns"][0])
        return ev


def _row(kind, sym, oid, side=0, price=0, qty=0, tif=0, owner=0, post_only=0, ts_ns=0):
    return {"kind": int(kind), "symbol": sym, "order_id": oid, "side": side, "price": price,
            "qty": qty, "tif": tif, "owner": owner, "post_only": int(post_only), "ts_ns": ts_ns}


class EngineComparison(RuleBasedStateMachine):
    stp_mode = mc.STP.CANCEL_RESTING

    def __init__(self):
        super().__init__()
        self.eng = Engine(self.stp_mode)
        self.model = EngineModel(self.stp_mode)
        self.pending = np.zeros(0, EVENT_DTYPE)
        self.log: list[str] = []
        self.snapshot_dir = None

    def teardown(self):
        if self.snapshot_dir is not None:
            shutil.rmtree(self.snapshot_dir, ignore_errors=True)

    def _expect(self, events):
        self.pending = np.concatenate([self.pending, events])

    def _check_pending(self, context):
        got = self.eng.events()
        assert_events_equal(got, self.pending, labels=("engine", "model"),
                            context=f"{context}\nhistory: {self.log[-12:]}\n")
        self.pending = np.zeros(0, EVENT_DTYPE)

    def _check_raised(self, got, events, context):
        # what the call raised (a Reason, or None) against the model's events: a refused
        # order is one REJECTED event alone
        rej = events[events["kind"] == EventKind.REJECTED]
        want = Reason(int(rej["reason"][0])) if len(rej) and len(events) == 1 else None
        assert got == want, f"{context}: engine raised {got}, model {want}"

    def _state_bytes(self):
        # the engine's whole state (books, limits, names, clocks) with no event pending
        return pickle.dumps(self.eng)

    def _unchanged_if_refused(self, before, events, context):
        # a command refused alone (one REJECTED event, nothing else) leaves every byte of the
        # engine as it was: clocks, books, routing
        if len(events) == 1 and events["kind"][0] == EventKind.REJECTED:
            assert self._state_bytes() == before, f"{context}: a refused command changed the engine"

    def _refused_changes_nothing(self, call, exc_types):
        before = self.eng.state_hash()
        try:
            call()
        except exc_types:
            pass
        else:
            return False
        assert self.eng.state_hash() == before
        assert len(self.eng.events()) == 0
        return True

    # ------------------------------------------------------------------ configuration

    @initialize(n=st.integers(1, 3),
                limits=st.lists(st.one_of(st.just({}), limit_sets), min_size=3, max_size=3),
                capacities=st.lists(capacities, min_size=3, max_size=3))
    def first_symbols(self, n, limits, capacities):
        # Every example starts with books to trade in, most of them without limits: with the
        # symbols left to add_symbol, which a run of rules may leave out altogether, and limits
        # that refuse most orders, the default run compared almost no fill.
        for sym in range(n):
            self._add_symbol(sym, limits[sym], capacities[sym])

    @precondition(lambda self: len(self.model.books) < 3)
    @rule(limits=limit_sets, data=st.data(), capacity=capacities)
    def add_symbol(self, limits, data, capacity):
        sym = data.draw(st.sampled_from([s for s in range(3) if s not in self.model.books]))
        self._add_symbol(sym, limits, capacity)

    def _add_symbol(self, sym, limits, capacity=1024):
        self.log.append(f"add_symbol({sym}, {limits}, capacity={capacity})")
        if self._refused_changes_nothing(
                lambda: self.eng.add_symbol(sym, f"S{sym}", capacity=capacity, **limits),
                ValueError):
            assert sym not in self.eng.symbols
            return
        self.model.add_symbol(sym, limits)

    @precondition(lambda self: self.model.books)
    @rule(limits=limit_sets, data=st.data())
    def set_limits(self, limits, data):
        sym = data.draw(st.sampled_from(sorted(self.model.books)))
        self.log.append(f"set_limits({sym}, {limits})")
        before = self.eng.limits(sym)
        if self._refused_changes_nothing(lambda: self.eng.set_limits(sym, **limits), ValueError):
            assert self.eng.limits(sym) == before
            return
        self.model.limits[sym].update(limits)
        assert self.eng.limits(sym) == self.model.limits[sym]

    @precondition(lambda self: self.model.books)
    @rule(price=st.sampled_from([0, 95, 100, 104, 200]), data=st.data())
    def set_reference_price(self, price, data):
        sym = data.draw(st.sampled_from(sorted(self.model.books)))
        self.log.append(f"set_reference_price({sym}, {price})")
        if self._refused_changes_nothing(lambda: self.eng.set_reference_price(sym, price),
                                         ValueError):
            return
        self.model.limits[sym]["ref_price"] = price

    # ------------------------------------------------------------------ order entry

    @rule(sym=symbols, oid=oids, side=sides, price=maybe_bad_price, qty=maybe_bad_qty, tif=tifs,
          owner=owners, post_only=st.booleans(), t=ts)
    def submit(self, sym, oid, side, price, qty, tif, owner, post_only, t):
        row = _row(mc.CommandKind.SUBMIT, sym, oid, side, price, qty, tif, owner, post_only, t)
        reason, events = self.model.command(row)
        self.log.append(f"submit {row}")
        before = self._state_bytes()
        try:
            self.eng.submit(sym, oid, side, price, qty, tif, owner=owner, post_only=post_only,
                            ts_ns=t)
            got = None
        except OrderRejected as exc:
            got = Reason(exc.reason)
        self._expect(events)
        self._check_pending(f"submit {row}")
        self._unchanged_if_refused(before, events, f"submit {row}")
        rej = events[events["kind"] == EventKind.REJECTED]
        want = None
        if len(rej) and rej["reason"][0] != Reason.POST_ONLY_WOULD_CROSS and len(events) == 1:
            want = Reason(int(rej["reason"][0]))
        assert got == want, f"submit {row}: engine raised {got}, model {want}"

    @rule(data=st.data(), oid=oids, side=sides, price=prices, qty=qtys, owner=owners)
    def submit_gtc(self, data, oid, side, price, qty, owner):
        # resting liquidity, most often in a symbol that exists, for the rules that meet it
        sym = data.draw(st.one_of(symbols, st.sampled_from(sorted(self.model.books) or [3])))
        self.submit(sym, oid, side, price, qty, 0, owner, False, 0)

    @precondition(lambda self: self.model.books)
    @rule(data=st.data(), oid=oids, side=st.sampled_from([0, 1]), price=prices, qty=qtys,
          tif=st.sampled_from([0, 1, 2]), owner=owners, market=st.booleans())
    def submit_by_name(self, data, oid, side, price, qty, tif, owner, market):
        # the name add_symbol gave routes as the id does
        sym = data.draw(st.sampled_from(sorted(self.model.books)))
        kind = mc.CommandKind.MARKET if market else mc.CommandKind.SUBMIT
        row = _row(kind, sym, oid, side, 0 if market else price, qty, 0 if market else tif,
                   owner)
        reason, events = self.model.command(row)
        self.log.append(f"by name S{sym}: {row}")
        try:
            if market:
                self.eng.submit_market(f"S{sym}", oid, side, qty, owner=owner)
            else:
                self.eng.submit(f"S{sym}", oid, side, price, qty, tif, owner=owner)
            got = None
        except OrderRejected as exc:
            got = Reason(exc.reason)
        self._expect(events)
        self._check_pending(f"by name S{sym}: {row}")
        self._check_raised(got, events, f"by name {row}")

    @rule(sym=symbols, oid=oids, side=sides, qty=maybe_bad_qty, owner=owners, t=ts)
    def submit_market(self, sym, oid, side, qty, owner, t):
        row = _row(mc.CommandKind.MARKET, sym, oid, side, 0, qty, 0, owner, 0, t)
        reason, events = self.model.command(row)
        self.log.append(f"market {row}")
        before = self._state_bytes()
        try:
            self.eng.submit_market(sym, oid, side, qty, owner=owner, ts_ns=t)
            got = None
        except OrderRejected as exc:
            got = Reason(exc.reason)
        self._expect(events)
        self._check_pending(f"market {row}")
        self._unchanged_if_refused(before, events, f"market {row}")
        self._check_raised(got, events, f"market {row}")

    @rule(sym=symbols, oid=oids, owner=owners, t=ts)
    def cancel(self, sym, oid, owner, t):
        row = _row(mc.CommandKind.CANCEL, sym, oid, owner=owner, ts_ns=t)
        _, events = self.model.command(row)
        self.log.append(f"cancel {row}")
        before = self._state_bytes()
        got = self.eng.cancel(oid, symbol=sym, owner=owner, ts_ns=t)
        self._expect(events)
        self._check_pending(f"cancel {row}")
        self._unchanged_if_refused(before, events, f"cancel {row}")
        want = int(events["qty"][0]) if events["kind"][0] == EventKind.CANCELLED else 0
        assert got == want

    @rule(sym=symbols, oid=oids, qty=maybe_bad_qty,
          price=st.one_of(st.none(), prices, prices, st.sampled_from([-1])), owner=owners, t=ts)
    def modify(self, sym, oid, qty, price, owner, t):
        row = _row(mc.CommandKind.MODIFY, sym, oid, price=price or 0, qty=qty, owner=owner,
                   ts_ns=t)
        reason, events = self.model.command(row)
        self.log.append(f"modify {row}")
        before = self._state_bytes()
        try:
            got = self.eng.modify(oid, qty, price, symbol=sym, owner=owner, ts_ns=t)
        except OrderRejected as exc:
            got = Reason(exc.reason)
        self._expect(events)
        self._check_pending(f"modify {row}")
        self._unchanged_if_refused(before, events, f"modify {row}")
        rej = events[events["kind"] == EventKind.REJECTED]
        if len(rej) and rej["reason"][0] in (Reason.ORDER_NOT_FOUND,
                                             Reason.POST_ONLY_WOULD_CROSS):
            want = False
        elif len(rej):
            want = Reason(int(rej["reason"][0]))
        else:
            want = True
        assert got == want, f"modify {row}: engine {got}, model {want}"

    @precondition(lambda self: self.model.books)
    @rule(data=st.data(), oid=oids, qty=maybe_bad_qty, price=st.one_of(st.none(), prices),
          owner=owners, kind=st.sampled_from(["cancel", "modify"]))
    def cancel_or_modify_by_name(self, data, oid, qty, price, owner, kind):
        # a registered name only labels the reject of an id that rests nowhere, as its id does
        sym = data.draw(st.sampled_from(sorted(self.model.books)))
        if kind == "cancel":
            row = _row(mc.CommandKind.CANCEL, sym, oid, owner=owner)
        else:
            row = _row(mc.CommandKind.MODIFY, sym, oid, price=price or 0, qty=qty, owner=owner)
        reason, events = self.model.command(row)
        self.log.append(f"{kind} by name S{sym}: {row}")
        before = self._state_bytes()
        try:
            if kind == "cancel":
                got = self.eng.cancel(oid, symbol=f"S{sym}", owner=owner)
            else:
                got = self.eng.modify(oid, qty, price, symbol=f"S{sym}", owner=owner)
        except OrderRejected as exc:
            got = Reason(exc.reason)
        self._expect(events)
        self._check_pending(f"{kind} by name S{sym}: {row}")
        self._unchanged_if_refused(before, events, f"{kind} by name {row}")
        rej = events[events["kind"] == EventKind.REJECTED]
        if kind == "cancel":
            want = int(events["qty"][0]) if events["kind"][0] == EventKind.CANCELLED else 0
        elif len(rej) and rej["reason"][0] in (Reason.ORDER_NOT_FOUND,
                                               Reason.POST_ONLY_WOULD_CROSS):
            want = False
        else:
            want = Reason(int(rej["reason"][0])) if len(rej) else True
        assert got == want, f"{kind} by name {row}: engine {got}, model {want}"

    @precondition(lambda self: self.model.books)
    @rule(data=st.data(), oid=oids, side=st.sampled_from([0, 1]), price=prices, qty=qtys,
          how=st.sampled_from(["submit", "market", "cancel", "modify", "process", "clear"]))
    def book_order_entry_refused(self, data, oid, side, price, qty, how):
        # a symbol's book takes no order of its own: refused, every byte of the engine kept
        sym = data.draw(st.sampled_from(sorted(self.model.books)))
        self.log.append(f"book({sym}).{how}")
        book = self.eng.book(sym)
        cmds = np.zeros(1, COMMAND_DTYPE)
        cmds["order_id"], cmds["side"], cmds["price"], cmds["qty"] = oid, side, price, qty
        call = {"submit": lambda: book.submit(oid, side, price, qty),
                "market": lambda: book.submit_market(oid, side, qty),
                "cancel": lambda: book.cancel(oid),
                "modify": lambda: book.modify(oid, qty, price),
                "process": lambda: book.process(cmds),
                "clear": book.clear}[how]
        before = self._state_bytes()
        try:
            call()
        except mc.ReadOnlyBookError:
            pass
        else:
            raise AssertionError(f"book({sym}).{how} was not refused")
        assert self._state_bytes() == before
        self._check_pending(f"book({sym}).{how} refused")

    @rule(data=st.data(), n=st.integers(1, 10),
          how=st.sampled_from(["plain", "out", "metrics"]))
    def process_batch(self, data, n, how):
        cmds = np.zeros(n, COMMAND_DTYPE)
        expect = []
        for i in range(n):
            row = _row(data.draw(st.sampled_from([0, 0, 0, 1, 2, 3, 7])), data.draw(symbols),
                       data.draw(oids), data.draw(sides), data.draw(st.one_of(
                           maybe_bad_price, st.just(0))), data.draw(maybe_bad_qty),
                       data.draw(tifs), data.draw(owners), data.draw(st.sampled_from([0, 0, 1])),
                       data.draw(ts))
            for k, v in row.items():
                cmds[k][i] = v
            expect.append(self.model.command({k: cmds[k][i].item() for k in row})[1])
        self.log.append(f"process({cmds.tolist()})")
        want = np.concatenate(expect)
        if how == "metrics" and EngineMetrics is not None:
            # the timed loop of EngineMetrics applies the batch as process() does, and counts
            # exactly the events it returns
            metrics = EngineMetrics(self.eng, sample_every=data.draw(st.integers(1, 3)))
            got = metrics.process(cmds)
            self._check_counted(metrics, want, n)
        else:
            out = np.zeros(data.draw(st.integers(0, 12)), EVENT_DTYPE) if how == "out" else None
            got = self.eng.process(cmds, out=out)
        assert_events_equal(got, want, labels=("engine", "model"),
                            context=f"process ({how}): history {self.log[-12:]}\n")

    def _check_counted(self, metrics, events, n):
        snap = metrics.snapshot()
        kinds = {EventKind(k).name.lower(): int(c)
                 for k, c in enumerate(np.bincount(events["kind"], minlength=8)) if c}
        assert snap["events"] == kinds, f"counted {snap['events']}, model {kinds}"
        rej = events["reason"][events["kind"] == EventKind.REJECTED]
        reasons = {Reason(r).name.lower(): int(c)
                   for r, c in enumerate(np.bincount(rej, minlength=1)) if c}
        assert snap["rejects"] == reasons, f"counted {snap['rejects']}, model {reasons}"
        fills = {}
        for ev in events[events["kind"] == EventKind.FILL]:
            n_fills, lots = fills.get(f"S{int(ev['symbol'])}", (0, 0))
            fills[f"S{int(ev['symbol'])}"] = (n_fills + 1, lots + int(ev["qty"]))
        assert snap["fills"] == fills, f"counted {snap['fills']}, model {fills}"
        assert snap["commands"] == n
        assert snap["open_orders"] == sum(len(b) for b in self.model.books.values())

    def _resting(self):
        """(symbol, id, side, price, open qty) of every order resting in the model's books."""
        return [(sym, oid, o.side, o.price, o.qty) for sym, book in sorted(self.model.books.items())
                for oid, o in sorted(book._orders.items())]

    @precondition(lambda self: any(len(b) for b in self.model.books.values()))
    @rule(data=st.data(), oid=oids, qty=qtys, owner=owners, through=st.integers(0, 2),
          how=st.sampled_from(["limit", "limit", "market"]), tif=st.sampled_from([0, 1, 2]), t=ts)
    def meet_resting(self, data, oid, qty, owner, through, how, tif, t):
        """An order from the other side at (or through) a resting order's price, or a market
        order: it trades, cancels its owner's own orders or expires against them (STP), takes
        the level's FIFO head first, checks FOK liquidity."""
        sym, _, side, price, _ = data.draw(st.sampled_from(self._resting()))
        if how == "market":
            self.submit_market(sym, oid, 1 - side, qty, owner, t)
        else:
            at = price - through if side == 0 else price + through
            self.submit(sym, oid, 1 - side, _price_in_range(at), qty, tif, owner, False, t)

    @precondition(lambda self: any(len(b) for b in self.model.books.values()))
    @rule(data=st.data(), delta=st.sampled_from([-2, -1, 0, 1, 3]),
          to=st.sampled_from(["keep", "keep", "same", "near", "through"]),
          how=st.sampled_from(["modify", "modify", "cancel"]), owner=owners, t=ts)
    def change_resting(self, data, delta, to, how, owner, t):
        """A cancel or a modify of a resting order: in place (same price, qty not above the open
        qty, keeping its queue place) or re-entering (more qty, a new price, one through the
        opposite touch, which trades as the aggressor)."""
        sym, oid, side, price, open_qty = data.draw(st.sampled_from(self._resting()))
        if how == "cancel":
            self.cancel(sym, oid, owner, t)
            return
        qty = max(1, open_qty + delta)
        book = self.model.books[sym]
        touch = book.best_ask() if side == 0 else book.best_bid()
        if to == "keep":
            new = None
        elif to == "same":
            new = price
        elif to == "near":
            new = _price_in_range(price + data.draw(st.integers(-3, 3)))
        else:
            new = price if touch is None else _price_in_range(touch[0] + (1 if side == 0 else -1))
        self.modify(sym, oid, qty, new, owner, t)

    @rule(sym=symbols, oid=oids, side=st.sampled_from([0, 1]), price=prices, qty=qtys,
          owner=owners, who=owners)
    def events_of_one_owner(self, sym, oid, side, price, qty, owner, who):
        # an order left pending, then only one owner's events read: the others are dropped
        row = _row(mc.CommandKind.SUBMIT, sym, oid, side, price, qty, 0, owner)
        self.log.append(f"submit {row}, then events(owner={who})")
        _, events = self.model.command(row)
        try:
            self.eng.submit(sym, oid, side, price, qty, owner=owner)
        except OrderRejected:
            pass
        mine = (events["owner"] == who) | ((events["kind"] == EventKind.FILL)
                                           & (events["maker_owner"] == who))
        assert_events_equal(self.eng.events(owner=who), events[mine],
                            labels=("engine", "model"), context=f"events(owner={who}): ")
        assert len(self.eng.events()) == 0

    # ------------------------------------------------------------------ copies and refusals

    @rule(how=st.sampled_from(["pickle", "deepcopy", "copy"]))
    def continue_on_a_copy(self, how):
        self.log.append(f"copy via {how}")
        before = self.eng.state_hash()
        twin = {"pickle": lambda e: pickle.loads(pickle.dumps(e)), "deepcopy": copy.deepcopy,
                "copy": copy.copy}[how](self.eng)
        assert twin.state_hash() == before
        assert twin.symbols == self.eng.symbols
        for sym in self.model.books:
            assert twin.limits(sym) == self.eng.limits(sym)
        twin.check_invariants()
        self.eng = twin

    @rule()
    def continue_on_a_snapshot_file(self):
        # an engine snapshot file (matchcore.durability) loads as the engine it was written
        # from: same books, names, limits and routing, and it goes on as the original would
        self.log.append("snapshot file, loaded")
        if self.snapshot_dir is None:
            self.snapshot_dir = tempfile.mkdtemp(prefix="mc-engine-ref-")
        before = self.eng.state_hash()
        loaded, header = load_snapshot(self.eng.snapshot(self.snapshot_dir))
        assert header["state_hash"] == before == loaded.state_hash()
        assert loaded.stp == self.eng.stp
        assert loaded.symbols == self.eng.symbols
        for sym in self.model.books:
            assert loaded.limits(sym) == self.eng.limits(sym)
            assert loaded.book(sym).snapshot() == self.eng.book(sym).snapshot()
        loaded.check_invariants()
        self.eng = loaded

    @rule(oid=oids, sym=st.sampled_from(["NOPE", -1, 2**32, 1.5]), kind=st.sampled_from(
        ["submit", "market", "cancel", "modify"]))
    def refused_symbol_changes_nothing(self, oid, sym, kind):
        before = self.eng.state_hash()
        call = {"submit": lambda: self.eng.submit(sym, oid, 0, 100, 1),
                "market": lambda: self.eng.submit_market(sym, oid, 0, 1),
                "cancel": lambda: self.eng.cancel(oid, symbol=sym),
                "modify": lambda: self.eng.modify(oid, 1, symbol=sym)}[kind]
        try:
            call()
        except (OrderRejected, ValueError, TypeError):
            pass
        else:
            raise AssertionError(f"{kind} with symbol {sym!r} was not refused")
        assert self.eng.state_hash() == before
        self._check_pending(f"refused {kind} symbol {sym!r}")

    @rule(sym=st.integers(0, 2), kw=st.sampled_from([
        {"tick": 0}, {"max_qty": -1}, {"min_price": 2**63}, {"band": 1.5}, {"nope": 1},
        {"min_price": 200, "max_price": 100}]))
    def refused_limits_change_nothing(self, sym, kw):
        before = self.eng.state_hash()
        try:
            self.eng.set_limits(sym, **kw)
        except (ValueError, TypeError, OverflowError, KeyError):
            pass
        else:
            raise AssertionError(f"set_limits({sym}, {kw}) was not refused")
        assert self.eng.state_hash() == before
        self._check_pending(f"refused set_limits {kw}")

    # ------------------------------------------------------------------ state

    @invariant()
    def same_state(self):
        eng, model = self.eng, self.model
        assert len(eng) == sum(len(b) for b in model.books.values())
        eng.check_invariants()
        for sym, book in model.books.items():
            # the clock in the book's snapshot header, kept by copies, pickles and snapshot files
            clock = int.from_bytes(eng.book(sym).snapshot()[48:56], "little", signed=True)
            assert clock == model.clocks[sym], (
                f"symbol {sym}: the book's clock is {clock}, the last command it took was at "
                f"{model.clocks[sym]}\nhistory: {self.log[-12:]}")
            assert eng.best_bid(sym) == book.best_bid()
            assert eng.best_ask(sym) == book.best_ask()
            for side in (0, 1):
                assert eng.level_count(sym, side) == book.level_count(side)
            for g, w in zip(eng.depth_orders(sym, 50), book.depth_orders(50)):
                assert g.tolist() == w.tolist()
            for g, w in zip(eng.depth(f"S{sym}", 3), book.depth(3)):
                assert g.tolist() == w.tolist()
            for side, rows in enumerate(book.depth(50)):
                for price, _ in rows.tolist():
                    assert eng.level(sym, side, price) == book.level(side, price)
        for oid in [*range(1, 41), *EDGE_IDS]:
            where = model.rests_in(oid)
            if where is None:
                assert eng.get(oid) is None
            else:
                assert eng.get(oid) == (where, *model.books[where].get(oid))
                assert eng.queue_position(oid) == model.books[where].queue_position(oid)


def _settings():
    return settings(max_examples=400 if SOAK else 60, stateful_step_count=40,
                    deadline=None, suppress_health_check=list(HealthCheck))


class EngineComparisonNone(EngineComparison):
    stp_mode = mc.STP.NONE


class EngineComparisonCancelBoth(EngineComparison):
    stp_mode = mc.STP.CANCEL_BOTH


class EngineComparisonCancelTaker(EngineComparison):
    stp_mode = mc.STP.CANCEL_TAKER


TestEngineAgainstReference = EngineComparison.TestCase
TestEngineAgainstReference.settings = _settings()
TestEngineAgainstReferenceNoStp = EngineComparisonNone.TestCase
TestEngineAgainstReferenceNoStp.settings = _settings()
TestEngineAgainstReferenceCancelBoth = EngineComparisonCancelBoth.TestCase
TestEngineAgainstReferenceCancelBoth.settings = _settings()
TestEngineAgainstReferenceCancelTaker = EngineComparisonCancelTaker.TestCase
TestEngineAgainstReferenceCancelTaker.settings = _settings()
